//! Differential test: one list of Kubernetes scenarios (the ones `wi` meets on
//! users' clusters) run against both the emulator's Kubernetes API and the real
//! upstream kube-apiserver, with the same Google access token on both sides (the
//! real server asks the emulator's TokenReview webhook, as GKE asks Google).
//!
//! For every step it compares the HTTP status code, the Status `reason` and
//! `message`, and the resulting object's labels, annotations and managed-field
//! owners (manager, operation, field set); times, uids and resourceVersion
//! values are left out. Any difference fails the scenario, except the
//! deliberate ones listed in `docs/real-apiserver.md` ("Deliberate
//! differences") and in [`DELIBERATE`]. Each scenario is its own test, named
//! after it, in its own namespace; all of them share one emulator and one
//! real API server per test binary. A table of its steps is printed
//! (`--nocapture`).

use crate::harness::apiserver;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use wi::emulator::{Emulator, EmulatorConfig};
use wi::gcp::types::{GkeCluster, MasterAuth};
use wi::kube::{ClusterConnection, KubeError};

const PROJECT: &str = "wi-diff";
const LOCATION: &str = "us-central1-a";
const CLUSTER: &str = "diff";
const POOL: &str = "wi-diff.svc.id.goog";
/// Holds `roles/container.admin` on the emulator, `cluster-admin` on the real server.
const OPERATOR: &str = "operator@example.com";
/// Holds no project role and no RoleBinding.
const NOBODY: &str = "nobody@example.com";
/// Raw requests send this User-Agent: the default field manager is `wi-difftest`.
const USER_AGENT: &str = "wi-difftest/1.0 (differential test)";
const GSA_A: &str = "payments-api@wi-diff.iam.gserviceaccount.com";
const GSA_B: &str = "someone-else@wi-diff.iam.gserviceaccount.com";
const WI_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// Steps whose comparison is skipped on purpose: `(scenario/step, reason)`.
/// Each entry is also listed in docs/real-apiserver.md under "Deliberate differences".
const DELIBERATE: &[(&str, &str)] = &[];

const SEED: &str = r#"
projects:
  - id: wi-diff
    iamPolicy:
      - role: roles/container.admin
        members: ["user:operator@example.com"]
    clusters:
      - name: diff
        location: us-central1-a
        workloadPool: wi-diff.svc.id.goog
        nodePools:
          - name: default-pool
"#;

/// One Kubernetes API server under test.
struct Side {
    name: &'static str,
    url: String,
    http: reqwest::Client,
    cluster: GkeCluster,
}

/// One managedFields entry: (manager, operation, subresource, apiVersion, fieldsV1 paths).
type Owner = (String, String, String, String, BTreeSet<String>);

/// The object a step leaves behind, reduced to what both servers must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjView {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// (manager, operation, subresource, apiVersion, flattened fieldsV1 paths).
    managed: BTreeSet<Owner>,
}

/// What one step observed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// HTTP status, or `ok` for a successful call through `wi`'s client (which
    /// does not expose the success code).
    code: String,
    reason: String,
    message: String,
    /// Extra facts the step checks (e.g. token claims), compared as text.
    facts: String,
    /// The object after the step (`None`: not fetched; `Some(None)`: absent).
    object: Option<Option<ObjView>>,
}

impl Outcome {
    fn short(&self) -> String {
        let mut s = self.code.clone();
        if !self.reason.is_empty() {
            let _ = write!(s, " {}", self.reason);
        }
        s
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    if let Some(m) = v.as_object() {
        for (k, child) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}/{k}")
            };
            out.insert(path.clone());
            flatten(&path, child, out);
        }
    }
}

fn view(obj: &Value) -> ObjView {
    let strings = |ptr: &str| -> BTreeMap<String, String> {
        obj.pointer(ptr)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let managed = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let mut fields = BTreeSet::new();
                    flatten("", e.get("fieldsV1").unwrap_or(&Value::Null), &mut fields);
                    (
                        s("manager"),
                        s("operation"),
                        s("subresource"),
                        s("apiVersion"),
                        fields,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ObjView {
        labels: strings("/metadata/labels"),
        annotations: strings("/metadata/annotations"),
        managed,
    }
}

fn render_view(v: &Option<Option<ObjView>>) -> String {
    match v {
        None => "-".into(),
        Some(None) => "(absent)".into(),
        Some(Some(v)) => {
            let mut s = format!(
                "labels={:?} annotations={:?} managedFields=[",
                v.labels, v.annotations
            );
            for (m, op, sub, api, fields) in &v.managed {
                let _ = write!(s, "\n      {m} {op} {sub} {api} {fields:?}");
            }
            s.push(']');
            s
        }
    }
}

impl Side {
    /// A raw request as `token`; answers (status, JSON body).
    async fn raw(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.raw_accept(token, method, path, content_type, body, "application/json")
            .await
    }

    /// [`Side::raw`] with another `Accept` header.
    async fn raw_accept(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
        accept: &str,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("user-agent", USER_AGENT)
            .header("accept", accept);
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name));
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A raw request turned into an outcome (code, reason, message of a Status).
    async fn step(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> Outcome {
        let (code, v) = self.raw(token, method, path, content_type, body).await;
        let failed = v.get("kind").and_then(Value::as_str) == Some("Status")
            && v.get("status").and_then(Value::as_str) == Some("Failure");
        let s = |k: &str| {
            if failed {
                v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
            } else {
                String::new()
            }
        };
        Outcome {
            code: code.to_string(),
            reason: s("reason"),
            message: s("message"),
            facts: String::new(),
            object: None,
        }
    }

    /// The object at `path` (read as the operator), reduced.
    async fn object(&self, token: &str, path: &str) -> Option<ObjView> {
        let (code, v) = self.raw(token, reqwest::Method::GET, path, "", None).await;
        match code {
            200 => Some(view(&v)),
            404 => None,
            other => panic!("{}: GET {path} answered {other}: {v}", self.name),
        }
    }

    async fn conn(&self, token: &str) -> ClusterConnection {
        wi::live::connect_cluster(&self.cluster, SecretString::from(token.to_string()), None)
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.name))
    }

    async fn create_namespace(&self, token: &str, ns: &str) {
        let o = self
            .step(
                token,
                reqwest::Method::POST,
                "/api/v1/namespaces",
                "application/json",
                Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
            )
            .await;
        assert_eq!(o.code, "201", "{}: create namespace {ns}: {o:?}", self.name);
    }
}

/// The outcome of a call through `wi`'s client.
fn client_outcome<T>(r: Result<T, KubeError>) -> Outcome {
    let (code, reason, message) = match r {
        Ok(_) => ("ok".to_string(), String::new(), String::new()),
        Err(KubeError::Api {
            status,
            reason,
            message,
        }) => (status.to_string(), reason, message),
        Err(e) => (format!("error: {e}"), String::new(), String::new()),
    };
    Outcome {
        code,
        reason,
        message,
        facts: String::new(),
        object: None,
    }
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sa_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}")
}

/// Tokens issued fresh for one scenario (the real server caches a successful
/// token login for 10 s; fresh tokens keep scenarios independent).
struct Tokens {
    operator: String,
    nobody: String,
}

type Steps = Vec<(String, Outcome)>;

async fn with_object(side: &Side, t: &Tokens, path: &str, mut o: Outcome) -> Outcome {
    o.object = Some(side.object(&t.operator, path).await);
    o
}

/// Verifies an RS256 JWT against the server's JWKS; returns its claims.
async fn verify_with_jwks(side: &Side, t: &Tokens, jwt: &str) -> Result<Value, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts[..] else {
        return Err("not a compact JWS".into());
    };
    let header: Value = serde_json::from_slice(&b64.decode(h).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&b64.decode(c).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let sig = b64.decode(sig).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let (code, jwks) = side
        .raw_accept(
            &t.operator,
            reqwest::Method::GET,
            "/openid/v1/jwks",
            "",
            None,
            "application/jwk-set+json",
        )
        .await;
    if code != 200 {
        return Err(format!("JWKS answered {code}"));
    }
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("no JWKS key with the token's kid")?;
    let n = b64
        .decode(key["n"].as_str().unwrap_or(""))
        .map_err(|e| e.to_string())?;
    let e = b64
        .decode(key["e"].as_str().unwrap_or(""))
        .map_err(|e| e.to_string())?;
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{h}.{c}").as_bytes(),
            &sig,
        )
        .map_err(|_| "signature does not verify".to_string())?;
    let (code, disc) = side
        .raw(
            &t.operator,
            reqwest::Method::GET,
            "/.well-known/openid-configuration",
            "",
            None,
        )
        .await;
    if code != 200 || disc["issuer"] != claims["iss"] {
        return Err(format!(
            "issuer {} is not the server's ({code} {})",
            claims["iss"], disc["issuer"]
        ));
    }
    Ok(claims)
}

async fn scenario(name: &str, side: &Side, t: &Tokens, ns: &str) -> Steps {
    use reqwest::Method;
    let mut steps: Steps = Vec::new();
    let sa = sa_path(ns, "app");
    let none = BTreeMap::new();
    let wi_ann = annotations(&[(WI_ANNOTATION, GSA_A)]);
    match name {
        "create" => {
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    "/api/v1/namespaces",
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "labels": {"team": "payments"}}})),
                )
                .await;
            let o = with_object(side, t, &format!("/api/v1/namespaces/{ns}"), o).await;
            steps.push(("create namespace".into(), o));
            let body = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "app", "labels": {"tier": "backend"},
                             "annotations": {WI_ANNOTATION: GSA_A}}});
            let path = format!("/api/v1/namespaces/{ns}/serviceaccounts");
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &path,
                    "application/json",
                    Some(body.clone()),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("create KSA".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &path,
                    "application/json",
                    Some(body),
                )
                .await;
            steps.push(("create KSA again".into(), o));
        }
        "ssa-annotate" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply (creates KSA)".into(), o));
            let labels = annotations(&[("wi.example.com/managed", "true")]);
            let o = client_outcome(
                c.apply_service_account(ns, "app", &labels, &wi_ann, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply again (+label)".into(), o));
        }
        "conflict-update-manager" | "conflict-apply-manager" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let (manager, o) = if name == "conflict-update-manager" {
                // What `kubectl annotate --overwrite` + `kubectl label` send.
                let o = side
                    .step(
                        &t.operator,
                        Method::PATCH,
                        &format!("{sa}?fieldManager=kubectl-annotate"),
                        "application/merge-patch+json",
                        Some(json!({"metadata": {"annotations": {WI_ANNOTATION: GSA_B},
                                                  "labels": {"owner": "someone"}}})),
                    )
                    .await;
                ("kubectl-annotate", o)
            } else {
                let o = side
                    .step(
                        &t.operator,
                        Method::PATCH,
                        &format!("{sa}?fieldManager=helm&force=true"),
                        "application/apply-patch+yaml",
                        Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": "app", "namespace": ns,
                                "annotations": {WI_ANNOTATION: GSA_B},
                                "labels": {"app.kubernetes.io/managed-by": "Helm"}}})),
                    )
                    .await;
                ("helm", o)
            };
            let o = with_object(side, t, &sa, o).await;
            steps.push((format!("{manager} takes the annotation"), o));
            let mut o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            o.facts = format!("message names {manager}: {}", o.message.contains(manager));
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply (conflict)".into(), o));
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, true)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply --force-conflicts".into(), o));
        }
        "untracked-then-apply" => {
            // `kubectl create serviceaccount` (no fields), then `kubectl annotate`:
            // the annotation is not tracked; wi's first apply meets `before-first-apply`.
            side.create_namespace(&t.operator, ns).await;
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts?fieldManager=kubectl-create"),
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app"}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("kubectl create KSA".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=kubectl-annotate"),
                    "application/merge-patch+json",
                    Some(json!({"metadata": {"annotations": {WI_ANNOTATION: GSA_B, "team": "x"}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("kubectl annotate (untracked)".into(), o));
            let c = side.conn(&t.operator).await;
            let mut o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            o.facts = format!(
                "message names before-first-apply: {}",
                o.message.contains("before-first-apply")
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply".into(), o));
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, true)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply --force-conflicts".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=kubectl-label"),
                    "application/merge-patch+json",
                    Some(json!({"metadata": {"labels": {"tier": "backend"}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("kubectl label (now tracked)".into(), o));
        }
        "shared-value" => {
            // Another manager sets the same value wi applies: no conflict, both own it.
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=helm"),
                    "application/apply-patch+yaml",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app", "namespace": ns,
                            "annotations": {WI_ANNOTATION: GSA_A}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("helm applies the same value".into(), o));
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &none, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi releases (helm keeps it)".into(), o));
        }
        "legacy-handover" => {
            // A named owner claims a KSA an older wi (manager `wi`) wrote:
            // it applies the same values as `wi/team-a`, then an empty
            // apply as `wi` releases the old manager's fields; the values
            // stay, owned by `wi/team-a` alone.
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let legacy_labels = annotations(&[("app.kubernetes.io/managed-by", "wi")]);
            let o = client_outcome(
                c.apply_service_account(ns, "app", &legacy_labels, &wi_ann, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("older wi applies".into(), o));
            let labels = annotations(&[
                ("app.kubernetes.io/managed-by", "wi"),
                ("wi.dev/owner", "team-a"),
            ]);
            let owned = annotations(&[(WI_ANNOTATION, GSA_A), ("wi.dev/declared-in", "a.yaml")]);
            let o = client_outcome(
                c.apply_service_account_as("wi/team-a", ns, "app", &labels, &owned, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi/team-a applies the same and more".into(), o));
            let o = client_outcome(
                c.apply_service_account_as("wi", ns, "app", &none, &none, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("empty apply as wi releases it".into(), o));
        }
        "namespace-apply" => {
            let c = side.conn(&t.operator).await;
            let labels = annotations(&[("team", "payments"), ("wi.example.com/managed", "true")]);
            let o = client_outcome(c.apply_namespace(ns, &labels, false).await);
            let o = with_object(side, t, &format!("/api/v1/namespaces/{ns}"), o).await;
            steps.push(("wi apply namespace".into(), o));
            let labels = annotations(&[("team", "payments")]);
            let o = client_outcome(c.apply_namespace(ns, &labels, false).await);
            let o = with_object(side, t, &format!("/api/v1/namespaces/{ns}"), o).await;
            steps.push(("wi apply with one label less".into(), o));
        }
        "delete" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let o = side.step(&t.operator, Method::DELETE, &sa, "", None).await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("DELETE KSA".into(), o));
            let o = side.step(&t.operator, Method::DELETE, &sa, "", None).await;
            steps.push(("DELETE KSA again".into(), o));
            let o = client_outcome(c.delete_service_account(ns, "app").await);
            steps.push(("wi delete (already gone)".into(), o));
        }
        "dry-run" => {
            side.create_namespace(&t.operator, ns).await;
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=wi&dryRun=All"),
                    "application/apply-patch+yaml",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app", "namespace": ns,
                            "annotations": {WI_ANNOTATION: GSA_A}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("apply with dryRun=All".into(), o));
        }
        "invalid" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let bad = annotations(&[("bad key!", "x")]);
            let o = client_outcome(c.apply_service_account(ns, "app", &none, &bad, false).await);
            steps.push(("wi apply with a bad annotation key".into(), o));
            let bad = annotations(&[("tier", "not a valid value!")]);
            let o = client_outcome(c.apply_service_account(ns, "app", &bad, &none, false).await);
            steps.push(("wi apply with a bad label value".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=wi"),
                    "application/apply-patch+yaml",
                    Some(json!({"kind": "ServiceAccount", "metadata": {"name": "app"}})),
                )
                .await;
            steps.push(("apply without apiVersion".into(), o));
            for (what, config) in [
                (
                    "without kind",
                    json!({"apiVersion": "v1", "metadata": {"name": "app"}}),
                ),
                (
                    "without apiVersion and kind",
                    json!({"metadata": {"name": "app"}}),
                ),
                (
                    "with apiVersion apps/v1",
                    json!({"apiVersion": "apps/v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}),
                ),
                (
                    "with kind Pod",
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"}}),
                ),
            ] {
                let o = side
                    .step(
                        &t.operator,
                        Method::PATCH,
                        &format!("{sa}?fieldManager=wi"),
                        "application/apply-patch+yaml",
                        Some(config),
                    )
                    .await;
                steps.push((format!("apply {what}"), o));
            }
            // The same checks on an object that exists.
            let c2 = side.conn(&t.operator).await;
            let o = client_outcome(
                c2.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply (valid)".into(), o));
            for (what, config) in [
                (
                    "without kind",
                    json!({"apiVersion": "v1", "metadata": {"name": "app"}}),
                ),
                (
                    "with apiVersion apps/v1",
                    json!({"apiVersion": "apps/v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}),
                ),
                (
                    "with another name",
                    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
                ),
            ] {
                let o = side
                    .step(
                        &t.operator,
                        Method::PATCH,
                        &format!("{sa}?fieldManager=wi"),
                        "application/apply-patch+yaml",
                        Some(config),
                    )
                    .await;
                let o = with_object(side, t, &sa, o).await;
                steps.push((format!("apply to existing {what}"), o));
            }
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &sa,
                    "application/apply-patch+yaml",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app"}})),
                )
                .await;
            steps.push(("apply without fieldManager".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "Not_Valid"}})),
                )
                .await;
            steps.push(("create KSA with a bad name".into(), o));
        }
        "token-expiration" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            for secs in [60, 600] {
                let (code, v) = side
                    .raw(
                        &t.operator,
                        Method::POST,
                        &format!("{sa}/token"),
                        "application/json",
                        Some(
                            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"audiences": [POOL], "expirationSeconds": secs}}),
                        ),
                    )
                    .await;
                let o = Outcome {
                    code: code.to_string(),
                    reason: v["reason"].as_str().unwrap_or("").to_string(),
                    message: v["message"].as_str().unwrap_or("").to_string(),
                    facts: format!(
                        "status.expirationTimestamp set: {}; spec.expirationSeconds={}",
                        v.pointer("/status/expirationTimestamp").is_some(),
                        v.pointer("/spec/expirationSeconds")
                            .cloned()
                            .unwrap_or_default()
                    ),
                    object: None,
                };
                steps.push((format!("TokenRequest for {secs}s"), o));
            }
        }
        "release" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let labels = annotations(&[("wi.example.com/managed", "true")]);
            let o = client_outcome(
                c.apply_service_account(ns, "app", &labels, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &format!("{sa}?fieldManager=kubectl-annotate"),
                    "application/merge-patch+json",
                    Some(json!({"metadata": {"annotations": {"team": "payments"},
                                              "labels": {"tier": "backend"}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("kubectl-annotate adds its own".into(), o));
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &none, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply without its fields".into(), o));
        }
        "resource-version-conflict" => {
            side.create_namespace(&t.operator, ns).await;
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app"}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("create KSA".into(), o));
            let (_, stale) = side.raw(&t.operator, Method::GET, &sa, "", None).await;
            let o = side
                .step(
                    &t.operator,
                    Method::PATCH,
                    &sa,
                    "application/merge-patch+json",
                    Some(json!({"metadata": {"labels": {"bumped": "yes"}}})),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("someone else updates".into(), o));
            let mut put = stale.clone();
            put["metadata"]["annotations"] = json!({WI_ANNOTATION: GSA_A});
            if let Some(m) = put["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            let o = side
                .step(
                    &t.operator,
                    Method::PUT,
                    &sa,
                    "application/json",
                    Some(put.clone()),
                )
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("PUT with stale resourceVersion".into(), o));
            let (_, fresh) = side.raw(&t.operator, Method::GET, &sa, "", None).await;
            put["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"].clone();
            let o = side
                .step(&t.operator, Method::PUT, &sa, "application/json", Some(put))
                .await;
            let o = with_object(side, t, &sa, o).await;
            steps.push(("PUT with fresh resourceVersion".into(), o));
        }
        "missing-namespace" => {
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "app"}})),
                )
                .await;
            steps.push(("POST KSA".into(), o));
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let o = side.step(&t.operator, Method::GET, &sa, "", None).await;
            steps.push(("GET KSA".into(), o));
        }
        "forbidden" => {
            side.create_namespace(&t.operator, ns).await;
            let o = side
                .step(
                    &t.nobody,
                    Method::GET,
                    &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    "",
                    None,
                )
                .await;
            steps.push(("list KSAs".into(), o));
            let c = side.conn(&t.nobody).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            let o = with_object(side, t, &sa, o).await;
            steps.push(("wi apply".into(), o));
            let o = side
                .step(
                    &t.nobody,
                    Method::POST,
                    "/api/v1/namespaces",
                    "application/json",
                    Some(json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": format!("{ns}-x")}})),
                )
                .await;
            steps.push(("create namespace".into(), o));
            let o = client_outcome(c.request_token(ns, "app", POOL).await);
            steps.push(("TokenRequest".into(), o));
        }
        "token-request" => {
            side.create_namespace(&t.operator, ns).await;
            let c = side.conn(&t.operator).await;
            let o = client_outcome(
                c.apply_service_account(ns, "app", &none, &wi_ann, false)
                    .await,
            );
            steps.push(("wi apply".into(), o));
            let o = side
                .step(
                    &t.operator,
                    Method::POST,
                    &format!("{sa}/token"),
                    "application/json",
                    Some(
                        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"audiences": [POOL], "expirationSeconds": 3600}}),
                    ),
                )
                .await;
            steps.push(("POST token (raw)".into(), o));
            let token = c.request_token(ns, "app", POOL).await;
            let mut o = client_outcome(
                token
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| KubeError::Decode(e.to_string())),
            );
            if let Ok(tok) = &token {
                use secrecy::ExposeSecret as _;
                o.facts = match verify_with_jwks(side, t, tok.expose_secret()).await {
                    Ok(claims) => {
                        let keys: BTreeSet<&String> = claims
                            .as_object()
                            .map(|m| m.keys().collect())
                            .unwrap_or_default();
                        let lifetime = claims["exp"].as_i64().unwrap_or(0)
                            - claims["iat"].as_i64().unwrap_or(0);
                        format!(
                            "verifies; aud={} sub={} lifetime={lifetime}s claims={keys:?} kubernetes.io={}",
                            claims["aud"], claims["sub"], claims["kubernetes.io"]["namespace"]
                        )
                    }
                    Err(e) => format!("does not verify: {e}"),
                };
            }
            steps.push(("wi request_token (P.svc.id.goog)".into(), o));
            let o = client_outcome(c.request_token(ns, "ghost", POOL).await);
            steps.push(("TokenRequest for a missing KSA".into(), o));
            for accept in ["application/json", "application/jwk-set+json", "*/*"] {
                let (code, body) = side
                    .raw_accept(
                        &t.operator,
                        Method::GET,
                        "/openid/v1/jwks",
                        "",
                        None,
                        accept,
                    )
                    .await;
                let o = Outcome {
                    code: code.to_string(),
                    reason: String::new(),
                    message: String::new(),
                    facts: format!("has keys: {}", body["keys"].is_array()),
                    object: None,
                };
                eprintln!("{}: JWKS with Accept {accept}: {code} {body}", side.name);
                steps.push((format!("GET JWKS, Accept {accept}"), o));
            }
        }
        "pod-field-selectors" => {
            // What `wi` asks before it changes a KSA: the host-network pods and
            // the pods of one account, selected by the server.
            side.create_namespace(&t.operator, ns).await;
            for account in ["app", "other"] {
                let o = side
                    .step(
                        &t.operator,
                        Method::POST,
                        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                        "application/json",
                        Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": account}})),
                    )
                    .await;
                steps.push((format!("create KSA {account}"), o));
            }
            for (pod, account, host) in [
                ("h1", "app", true),
                ("p1", "app", false),
                ("p2", "other", false),
            ] {
                let mut spec = json!({"serviceAccountName": account,
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]});
                if host {
                    spec["hostNetwork"] = json!(true);
                }
                let o = side
                    .step(
                        &t.operator,
                        Method::POST,
                        &format!("/api/v1/namespaces/{ns}/pods"),
                        "application/json",
                        Some(json!({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod}, "spec": spec})),
                    )
                    .await;
                steps.push((format!("create pod {pod}"), o));
            }
            let selectors = [
                "spec.hostNetwork=true".to_string(),
                "spec.hostNetwork!=true".to_string(),
                "spec.hostNetwork==false".to_string(),
                "spec.serviceAccountName=app".to_string(),
                "spec.serviceAccountName!=app".to_string(),
                "spec.serviceAccountName=app,spec.hostNetwork=false".to_string(),
                "metadata.name=p2".to_string(),
                format!("metadata.namespace={ns},spec.serviceAccountName=other"),
                "spec.bogus=1".to_string(),
                "spec.hostNetwork".to_string(),
            ];
            for (scope, base) in [
                ("namespace", format!("/api/v1/namespaces/{ns}/pods")),
                ("all namespaces", "/api/v1/pods".to_string()),
            ] {
                for sel in &selectors {
                    let path = format!(
                        "{base}?fieldSelector={}",
                        url::form_urlencoded::byte_serialize(sel.as_bytes()).collect::<String>()
                    );
                    let (code, v) = side.raw(&t.operator, Method::GET, &path, "", None).await;
                    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let failed = s("kind") == "Status";
                    // Across namespaces, only this scenario's pods.
                    let mut names: Vec<String> = v["items"]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter(|i| i["metadata"]["namespace"] == json!(ns))
                                .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    names.sort();
                    let o = Outcome {
                        code: code.to_string(),
                        reason: if failed { s("reason") } else { String::new() },
                        message: if failed { s("message") } else { String::new() },
                        facts: format!("{names:?}"),
                        object: None,
                    };
                    steps.push((format!("list pods ({scope}) fieldSelector={sel}"), o));
                }
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    steps
}

/// One `#[tokio::test]` per scenario, named after it, so one broken
/// scenario does not hide the others and each runs by name
/// (`cargo test --test apiserver differential::create`).
macro_rules! scenarios {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                differ($name).await;
            }
        )*
    };
}

scenarios! {
    create => "create",
    ssa_annotate => "ssa-annotate",
    conflict_update_manager => "conflict-update-manager",
    conflict_apply_manager => "conflict-apply-manager",
    untracked_then_apply => "untracked-then-apply",
    shared_value => "shared-value",
    legacy_handover => "legacy-handover",
    release => "release",
    namespace_apply => "namespace-apply",
    delete => "delete",
    dry_run => "dry-run",
    invalid => "invalid",
    token_expiration => "token-expiration",
    resource_version_conflict => "resource-version-conflict",
    missing_namespace => "missing-namespace",
    forbidden => "forbidden",
    token_request => "token-request",
    pod_field_selectors => "pod-field-selectors",
}

fn client_with_ca(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM")])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// The emulated cluster as GKE describes it (endpoint, CA), read through the emulator's GKE API.
async fn emulated_cluster(emu: &Emulator) -> GkeCluster {
    let ca = std::fs::read_to_string(emu.ca_file().expect("CA file")).expect("read CA");
    let http = client_with_ca(&ca);
    let url = format!(
        "{}/container/v1/projects/{PROJECT}/locations/{LOCATION}/clusters/{CLUSTER}",
        emu.base_url()
    );
    let resp = http
        .get(url)
        .bearer_auth(emu.admin_token())
        .send()
        .await
        .expect("GKE get cluster");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("cluster JSON")
}

/// What every scenario runs against: the emulator (its Kubernetes side) and
/// the real kube-apiserver, set up once per test binary.
struct Sides {
    emu: Emulator,
    emulated: Side,
    real: Side,
    _server: apiserver::RealApiServer,
    _dir: tempfile::TempDir,
}

/// The runtime the shared sides live on. Each `#[tokio::test]` has its own
/// runtime, which ends with the test; the emulator's server tasks and the
/// clients' connections must outlive any one test, so they live here.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("differential runtime")
    })
}

/// Runs one scenario on both sides (on the shared runtime) and fails with
/// every difference and the scenario's table of steps.
async fn differ(name: &'static str) {
    let result = runtime()
        .spawn(async move {
            let sides = sides().await;
            compare(name, sides).await
        })
        .await;
    let (table, failures) = match result {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    println!("{table}");
    assert!(
        failures.is_empty(),
        "the emulator differs from the real kube-apiserver:\n{}\n{table}",
        failures.join("\n")
    );
}

async fn sides() -> &'static Sides {
    static SIDES: tokio::sync::OnceCell<Sides> = tokio::sync::OnceCell::const_new();
    SIDES.get_or_init(start_sides).await
}

async fn start_sides() -> Sides {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let begun = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let emu = Emulator::start(EmulatorConfig {
        seed: Some(seed),
        work_dir: dir.path().join("emulator"),
        operation_duration: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("emulator starts");

    // Its own server, not `apiserver::shared`: that one has no webhook when
    // the smoke test starts it first. Kept in a static, it is stopped by its
    // watchdog when the test process exits.
    let real = apiserver::start(apiserver::ApiServerOptions {
        token_webhook_url: Some(format!("{}/authn/tokenreview", emu.http_url())),
        ..Default::default()
    })
    .await
    .expect("real kube-apiserver starts (WI_KUBE_APISERVER_BIN / WI_ETCD_BIN or .ci/build-kube-apiserver)");
    eprintln!("real kube-apiserver ready in {:?}", real.startup);

    // RBAC on the real server: the operator is cluster-admin, nobody has nothing.
    {
        use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
        let admin = real.admin_client().await.expect("admin client");
        let crb: ClusterRoleBinding = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "wi-diff-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR}],
        }))
        .expect("binding");
        kube::Api::<ClusterRoleBinding>::all(admin)
            .create(&kube::api::PostParams::default(), &crb)
            .await
            .expect("create ClusterRoleBinding");
    }

    let emulated = Side {
        name: "emulator",
        url: String::new(),
        http: reqwest::Client::new(),
        cluster: emulated_cluster(&emu).await,
    };
    let emu_ca = base64::engine::general_purpose::STANDARD
        .decode(
            emulated
                .cluster
                .master_auth
                .as_ref()
                .and_then(|m| m.cluster_ca_certificate.clone())
                .unwrap_or_default(),
        )
        .expect("cluster CA base64");
    let emulated = Side {
        url: format!(
            "https://{}",
            emulated.cluster.endpoint.clone().unwrap_or_default()
        ),
        http: client_with_ca(&String::from_utf8_lossy(&emu_ca)),
        ..emulated
    };
    let real_side = Side {
        name: "real",
        url: real.url.clone(),
        http: client_with_ca(&real.ca_pem),
        cluster: GkeCluster {
            name: CLUSTER.into(),
            endpoint: Some(real.endpoint()),
            master_auth: Some(MasterAuth {
                cluster_ca_certificate: Some(real.ca_base64()),
                ..Default::default()
            }),
            ..Default::default()
        },
    };

    // The binding takes effect once the RBAC informer sees it.
    let probe = emu.issue_user_token(OPERATOR);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, _) = real_side
            .raw(&probe, reqwest::Method::GET, "/api/v1/namespaces", "", None)
            .await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "operator never authorized on the real server ({code})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    eprintln!("differential sides ready in {:?}", begun.elapsed());
    Sides {
        emu,
        emulated,
        real: real_side,
        _server: real,
        _dir: dir,
    }
}

/// One scenario on both sides: the table of its steps and its differences.
async fn compare(name: &str, sides: &Sides) -> (String, Vec<String>) {
    let (emu, emulated, real_side) = (&sides.emu, &sides.emulated, &sides.real);
    let mut table = String::new();
    let mut failures = Vec::new();
    let _ = writeln!(
        table,
        "{:<28} {:<34} {:<22} {:<22} match",
        "scenario", "step", "emulator", "real"
    );
    {
        let ns = format!("d-{name}");
        let tokens = || Tokens {
            operator: emu.issue_user_token(OPERATOR),
            nobody: emu.issue_user_token(NOBODY),
        };
        let on_emu = scenario(name, emulated, &tokens(), &ns).await;
        let on_real = scenario(name, real_side, &tokens(), &ns).await;
        assert_eq!(on_emu.len(), on_real.len(), "{name}: step counts differ");
        for ((step, e), (_, r)) in on_emu.iter().zip(on_real.iter()) {
            if !r.message.is_empty() {
                eprintln!("{name}/{step}: real says {:?}", r.message);
            }
            let key = format!("{name}/{step}");
            let deliberate = DELIBERATE.iter().find(|(k, _)| *k == key);
            let verdict = if e == r {
                "yes".to_string()
            } else if let Some((_, why)) = deliberate {
                format!("skipped (deliberate: {why})")
            } else {
                let mut d = format!("{key}:\n");
                if (&e.code, &e.reason) != (&r.code, &r.reason) {
                    let _ = writeln!(d, "  status: emulator {} / real {}", e.short(), r.short());
                }
                if e.message != r.message {
                    let _ = writeln!(
                        d,
                        "  message:\n    emulator {:?}\n    real     {:?}",
                        e.message, r.message
                    );
                }
                if e.facts != r.facts {
                    let _ = writeln!(
                        d,
                        "  facts:\n    emulator {}\n    real     {}",
                        e.facts, r.facts
                    );
                }
                if e.object != r.object {
                    let _ = writeln!(
                        d,
                        "  object:\n    emulator {}\n    real     {}",
                        render_view(&e.object),
                        render_view(&r.object)
                    );
                }
                failures.push(d);
                "NO".to_string()
            };
            let _ = writeln!(
                table,
                "{:<28} {:<34} {:<22} {:<22} {verdict}",
                name,
                step,
                e.short(),
                r.short()
            );
        }
    }
    (table, failures)
}
