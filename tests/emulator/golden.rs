//! Recorded truth agrees: every exchange of `tests/data/gcp-golden/*.log`
//! (HTTP recorded against real GCP, see its SOURCE.md) that goes to an API the
//! emulator serves is replayed against a fresh emulator, in order, with the
//! placeholders substituted; status codes and response shapes (field names and
//! JSON types, values ignored) are compared, and every response is validated
//! against the discovery document of its method. Counts are printed; the
//! known differences are listed in docs/emulator.md.

use crate::harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

#[derive(Debug)]
struct Exchange {
    method: String,
    url: String,
    body: Option<Value>,
    status: u16,
    response: Value,
}

fn parse_log(text: &str) -> Vec<Exchange> {
    let mut out = Vec::new();
    for block in text.split("\n---\n") {
        let lines: Vec<&str> = block.lines().collect();
        let mut i = 0;
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        let Some((method, url)) = lines.get(i).and_then(|l| l.split_once(' ')) else {
            continue;
        };
        i += 1;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1; // request headers
        }
        let mut req_body = String::new();
        while i < lines.len() && !is_status_line(lines[i]) {
            req_body.push_str(lines[i]);
            req_body.push('\n');
            i += 1;
        }
        let Some(status) = lines.get(i).and_then(|l| l[..3].parse::<u16>().ok()) else {
            continue;
        };
        i += 1;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1; // response headers
        }
        let resp_body: String = lines[i.min(lines.len())..].join("\n");
        out.push(Exchange {
            method: method.to_string(),
            url: url.to_string(),
            body: (!req_body.trim().is_empty())
                .then(|| serde_json::from_str(&req_body).ok())
                .flatten(),
            status,
            response: serde_json::from_str(resp_body.trim()).unwrap_or(Value::Null),
        });
    }
    out
}

fn is_status_line(l: &str) -> bool {
    l.len() >= 4 && l[..3].chars().all(|c| c.is_ascii_digit()) && l.as_bytes()[3] == b' '
}

/// Shape differences between a golden body and the emulator's.
#[derive(Default)]
struct Shape {
    type_mismatch: Vec<String>,
    missing: Vec<String>,
    extra: Vec<String>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare(golden: &Value, emu: &Value, at: &str, out: &mut Shape) {
    if kind(golden) != kind(emu) {
        out.type_mismatch.push(format!(
            "{at}: golden {} vs emulator {}",
            kind(golden),
            kind(emu)
        ));
        return;
    }
    match (golden, emu) {
        (Value::Object(g), Value::Object(e)) => {
            for (k, gv) in g {
                match e.get(k) {
                    Some(ev) => compare(gv, ev, &format!("{at}.{k}"), out),
                    None => out.missing.push(format!("{at}.{k}")),
                }
            }
            for k in e.keys() {
                if !g.contains_key(k) {
                    out.extra.push(format!("{at}.{k}"));
                }
            }
        }
        (Value::Array(g), Value::Array(e)) => {
            if let (Some(g0), Some(e0)) = (g.first(), e.first()) {
                compare(g0, e0, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

/// Exchanges whose status is known to differ, with the reason (also in docs/emulator.md).
fn known_status_difference(file: &str, ex: &Exchange) -> Option<&'static str> {
    if file.starts_with("projectiampolicy-") && ex.url.contains(":setIamPolicy") {
        return Some(
            "the log names service accounts that do not exist (test-sa@test-project...); SOURCE.md marks these responses UNVERIFIED/mock-shaped, real IAM answers 400 \"Service account ... does not exist.\"",
        );
    }
    None
}

/// Exchanges whose shape is known to differ, with the reason.
fn known_shape_difference(file: &str, ex: &Exchange) -> Option<&'static str> {
    if file.starts_with("projectiampolicy-") && ex.url.contains("/v1/operations/") {
        return Some(
            "this UNVERIFIED log answers a v1 projects.create operation with a v3 Project (string parent \"organizations/organizations/...\"); the gcloud log of the same call (resourcemanager-project-gcloud-crud) shows the v1 shape the emulator returns",
        );
    }
    None
}

#[tokio::test]
async fn golden_logs_replay_with_the_same_status_and_shape() {
    let mut files: Vec<_> = std::fs::read_dir(harness::data("gcp-golden"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut not_covered = 0;
    let mut replayed = 0;
    let mut exact = 0;
    let mut subset = 0;
    let mut known = Vec::new();
    let mut not_emulated = BTreeSet::new();
    let mut failures = Vec::new();
    let mut missing_fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut extra_fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let exchanges = parse_log(&std::fs::read_to_string(file).unwrap());
        let t = harness::start(|c| c.operation_duration = Duration::from_millis(100)).await;
        let number = t
            .call(
                Method::GET,
                &format!("/cloudresourcemanager/v1/projects/{}", t.project),
                None,
            )
            .await
            .body["projectNumber"]
            .as_str()
            .unwrap()
            .to_string();
        let mut op_id = String::new();
        let mut last_etag = String::new();
        let mut key_id = String::new();
        for ex in &exchanges {
            total += 1;
            let Some(rest) = ex.url.strip_prefix("https://") else {
                continue;
            };
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = match host {
                "container.googleapis.com" => "container",
                "iam.googleapis.com" => "iam",
                "cloudresourcemanager.googleapis.com" => "cloudresourcemanager",
                "serviceusage.googleapis.com" => "serviceusage",
                _ => {
                    not_covered += 1;
                    continue;
                }
            };
            let subst = |s: &str| {
                s.replace("${projectId}", &t.project)
                    .replace("${projectNumber}", &number)
                    .replace("${uniqueId}", "golden1")
                    .replace("${operationID}", &op_id)
                    .replace("${serviceAccountKeyID}", &key_id)
            };
            let path = format!("/{prefix}/{}", subst(path));
            let body = ex.body.as_ref().map(|b| {
                // Recorded etags are normalised placeholders: send the one the emulator gave.
                let text = subst(&b.to_string()).replace("abcdef0123A=", &last_etag);
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
            });
            let method = Method::from_bytes(ex.method.as_bytes()).unwrap();
            // Polls finish when the recording says they did.
            let want_done = ex.response["status"] == "DONE" || ex.response["done"] == true;
            let mut answer = t.call(method.clone(), &path, body.clone()).await;
            for _ in 0..60 {
                if !want_done
                    || answer.body["status"] == "DONE"
                    || answer.body["done"] == true
                    || answer.status != 200
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                answer = t.call(method.clone(), &path, body.clone()).await;
            }
            if answer.status == 404
                && answer.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("The requested URL"))
            {
                not_emulated.insert(format!(
                    "{} {}",
                    ex.method,
                    ex.url.split('?').next().unwrap_or("")
                ));
                continue;
            }
            replayed += 1;
            if path.contains("IamPolicy")
                && let Some(e) = answer.body["etag"].as_str()
            {
                last_etag = e.to_string();
            }
            if let Some(n) = answer.body["name"].as_str()
                && let Some((_, id)) = n.split_once("/keys/")
            {
                key_id = id.to_string();
            }
            if let Some(n) = answer.body["name"].as_str()
                && (n.starts_with("operation-") || n.starts_with("operations/"))
            {
                op_id = n.trim_start_matches("operations/").to_string();
            }
            if answer.status != ex.status {
                if let Some(reason) = known_status_difference(&name, ex) {
                    known.push(format!(
                        "{name}: {} {} → {} (recorded {}): {reason}",
                        ex.method, path, answer.status, ex.status
                    ));
                    continue;
                }
                failures.push(format!(
                    "{name}: {} {path}: status {} (recorded {})\n  emulator: {}\n  recorded: {}",
                    ex.method, answer.status, ex.status, answer.body, ex.response
                ));
                continue;
            }
            let mut shape = Shape::default();
            compare(&ex.response, &answer.body, "", &mut shape);
            if !shape.type_mismatch.is_empty()
                && let Some(reason) = known_shape_difference(&name, ex)
            {
                known.push(format!(
                    "{name}: {} {path}: {:?}: {reason}",
                    ex.method, shape.type_mismatch
                ));
                continue;
            }
            if !shape.type_mismatch.is_empty() {
                failures.push(format!(
                    "{name}: {} {path}: type mismatch {:?}",
                    ex.method, shape.type_mismatch
                ));
                continue;
            }
            let key = format!("{} {}", ex.method, generic(&path));
            if shape.missing.is_empty() && shape.extra.is_empty() {
                exact += 1;
            } else {
                subset += 1;
                missing_fields
                    .entry(key.clone())
                    .or_default()
                    .extend(shape.missing);
                extra_fields.entry(key).or_default().extend(shape.extra);
            }
        }
        problems.extend(t.schema_problems());
        t.emu.shutdown().await;
    }
    println!("golden exchanges: {total} total, {not_covered} to APIs the emulator does not serve");
    println!(
        "replayed {replayed}: {exact} same shape, {subset} same status and types with fields the emulator omits or adds, {} known differences, {} failures",
        known.len(),
        failures.len()
    );
    println!("not emulated ({}):", not_emulated.len());
    for n in &not_emulated {
        println!("  {n}");
    }
    for k in &known {
        println!("known: {k}");
    }
    for (k, v) in &missing_fields {
        if !v.is_empty() {
            println!(
                "omitted by the emulator in {k}: {}",
                v.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    for (k, v) in &extra_fields {
        if !v.is_empty() {
            println!(
                "added by the emulator in {k}: {}",
                v.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    println!(
        "responses validated against discovery: {}",
        harness::validated_count()
    );
    assert!(
        failures.is_empty(),
        "{} golden exchanges differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        problems.is_empty(),
        "discovery schema problems:\n{}",
        problems.join("\n")
    );
    assert!(replayed >= 60, "only {replayed} exchanges replayed");
}

/// A path with names replaced by `*` (for grouping).
fn generic(path: &str) -> String {
    let segs: Vec<&str> = path.split('?').next().unwrap_or("").split('/').collect();
    segs.iter()
        .enumerate()
        .map(|(i, s)| {
            let prev = if i > 0 { segs[i - 1] } else { "" };
            if matches!(
                prev,
                "projects"
                    | "clusters"
                    | "nodePools"
                    | "operations"
                    | "serviceAccounts"
                    | "services"
                    | "locations"
            ) {
                match s.split_once(':') {
                    Some((_, verb)) => format!("*:{verb}"),
                    None => "*".to_string(),
                }
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
