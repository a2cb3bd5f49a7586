//! The CI and Kubernetes examples under `examples/ci/` and `examples/k8s/`
//! are what users copy: they must parse, have the shape they claim (the
//! events, the apply's one-at-a-time guard, Workload Identity Federation),
//! and every `wi` command line in them must be one the real binary accepts.
//! Each line is run as typed (shell variables replaced by placeholders) with
//! `--help` appended: clap parses every flag and value before it prints the
//! help, so an unknown flag or format value exits 1 and fails the test.
//! (The manifests' `kubectl apply --dry-run=server` against the real
//! kube-apiserver is `tests/apiserver/examples.rs`.)

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::command::wi_offline;

const GITHUB: &str = "examples/ci/github-actions.yml";
const GITLAB: &str = "examples/ci/gitlab-ci.yml";
const K8S: &str = "examples/k8s";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The `wi` invocations of a shell script, each as its argument list (after
/// `wi`), with line continuations joined, redirections dropped and shell
/// variables replaced by placeholders.
fn wi_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        for segment in line.split(['|', ';', '&']) {
            let mut words = segment.split_whitespace();
            if words.next() != Some("wi") {
                continue;
            }
            let args: Vec<String> = words
                .take_while(|w| !w.starts_with('>') && !w.starts_with("2>"))
                .map(placeholder)
                .collect();
            commands.push(args);
        }
    }
    commands
}

/// A word as the shell would hand it over, near enough for clap: quotes
/// removed, a Kubernetes `$(JOB_COMPLETION_INDEX)` an index, any other
/// variable a plain value.
fn placeholder(word: &str) -> String {
    let word = word.trim_matches(['"', '\'']);
    if word.contains("$(JOB_COMPLETION_INDEX)") {
        word.replace("$(JOB_COMPLETION_INDEX)", "0")
    } else if word.contains('$') {
        "placeholder".to_string()
    } else {
        word.to_string()
    }
}

/// Every script of a GitHub workflow (`run:` of every step of every job).
fn github_scripts(workflow: &Value) -> Vec<String> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|step| step["run"].as_str().map(str::to_string))
        .collect()
}

/// Every script line of a GitLab pipeline (`script` and `before_script`).
fn gitlab_scripts(pipeline: &Value) -> Vec<String> {
    pipeline
        .as_object()
        .expect("a mapping")
        .values()
        .flat_map(|job| {
            let mut lines = strings(&job["before_script"]);
            lines.extend(strings(&job["script"]));
            lines
        })
        .collect()
}

/// Runs `wi ARGS --help`: the line parses (exit 0) or the clap error.
async fn check_command(args: &[String]) -> Result<(), String> {
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.push("--help");
    let run = wi_offline(&argv).await;
    if run.code == 0 {
        Ok(())
    } else {
        Err(format!("wi {}: {}", args.join(" "), run.stderr.trim()))
    }
}

async fn check_all(source: &str, commands: &[Vec<String>]) {
    let mut failures = Vec::new();
    for args in commands {
        if let Err(e) = check_command(args).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{source}: wi command lines the binary refuses:\n{}",
        failures.join("\n")
    );
}

fn subcommands(commands: &[Vec<String>]) -> Vec<&str> {
    let mut names: Vec<&str> = commands
        .iter()
        .filter_map(|c| c.first().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The checker itself: a line with a flag or value that does not exist is
/// refused, one that does is accepted (else the tests below prove nothing).
#[tokio::test]
async fn the_command_line_check_refuses_what_wi_does_not_accept() {
    let lines = wi_commands(
        "wi plan -f \"$SPEC\" --out plan.wiplan --format markdown > plan.md || [ $? -eq 2 ]\n\
         set -e; wi plan --no-such-flag\n\
         wi plan --format yaml\n\
         wi frobnicate",
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        [
            "plan",
            "-f",
            "placeholder",
            "--out",
            "plan.wiplan",
            "--format",
            "markdown"
        ]
    );
    check_command(&lines[0]).await.expect("a line wi accepts");
    for refused in &lines[1..] {
        assert!(check_command(refused).await.is_err(), "{refused:?}");
    }
}

#[tokio::test]
async fn the_github_actions_workflow_plans_applies_the_reviewed_plan_and_checks_drift() {
    let workflow = yaml(GITHUB);
    let on = &workflow["on"];
    assert!(on["pull_request"].is_object(), "plan on pull_request: {on}");
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]));
    assert!(on["schedule"][0]["cron"].is_string(), "nightly drift: {on}");
    let jobs = &workflow["jobs"];
    for (job, event) in [
        ("plan", "pull_request"),
        ("apply", "push"),
        ("drift", "schedule"),
    ] {
        let condition = jobs[job]["if"].as_str().unwrap_or_default();
        assert!(
            condition.contains(event),
            "{job} runs on {event}: {condition}"
        );
        // Workload Identity Federation: an OIDC token, never a key.
        assert_eq!(jobs[job]["permissions"]["id-token"], "write", "{job}");
        let steps = jobs[job]["steps"].as_array().expect("steps");
        let auth = steps
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("google-github-actions/auth@"))
            })
            .unwrap_or_else(|| panic!("{job} authenticates with google-github-actions/auth"));
        assert!(auth["with"]["workload_identity_provider"].is_string());
        assert!(auth["with"]["credentials_json"].is_null(), "no key");
    }
    // One apply at a time, never cancelled halfway.
    assert_eq!(jobs["apply"]["concurrency"]["group"], "wi-apply");
    assert_eq!(jobs["apply"]["concurrency"]["cancel-in-progress"], false);
    let script_of = |job: &str| -> String {
        jobs[job]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The plan is saved and posted as markdown; apply runs that saved plan.
    let plan = wi_commands(&script_of("plan"));
    assert!(
        plan.iter().any(|c| c[0] == "plan"
            && c.windows(2).any(|w| w == ["--format", "markdown"])
            && c.iter().any(|a| a == "--out")),
        "{plan:?}"
    );
    assert!(script_of("plan").contains("gh pr comment"));
    assert_eq!(wi_commands(&script_of("apply")), [["apply", "plan.wiplan"]]);
    let drift = wi_commands(&script_of("drift"));
    assert!(
        drift
            .iter()
            .any(|c| c[0] == "drift" && c.windows(2).any(|w| w == ["--format", "github"])),
        "{drift:?}"
    );
    let commands: Vec<_> = github_scripts(&workflow)
        .iter()
        .flat_map(|s| wi_commands(s))
        .collect();
    assert_eq!(
        subcommands(&commands),
        ["apply", "drift", "plan", "validate"]
    );
    check_all(GITHUB, &commands).await;
}

#[tokio::test]
async fn the_gitlab_pipeline_plans_applies_one_at_a_time_and_checks_drift() {
    let pipeline = yaml(GITLAB);
    let rules = |job: &str| pipeline[job]["rules"].to_string();
    assert!(
        rules("plan").contains("merge_request_event"),
        "{}",
        rules("plan")
    );
    assert!(
        rules("apply").contains("CI_DEFAULT_BRANCH"),
        "{}",
        rules("apply")
    );
    assert!(rules("drift").contains("schedule"), "{}", rules("drift"));
    assert_eq!(pipeline["apply"]["resource_group"], "wi-apply");
    // Workload Identity Federation from the job's ID token, never a key.
    assert!(pipeline[".google"]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"].is_string());
    for job in ["plan", "apply", "drift"] {
        assert_eq!(pipeline[job]["extends"], ".google", "{job}");
    }
    let apply: Vec<_> = strings(&pipeline["apply"]["script"])
        .iter()
        .flat_map(|s| wi_commands(s))
        .collect();
    assert_eq!(apply, [["apply", "plan.wiplan"]]);
    let commands: Vec<_> = gitlab_scripts(&pipeline)
        .iter()
        .flat_map(|s| wi_commands(s))
        .collect();
    assert_eq!(
        subcommands(&commands),
        ["apply", "drift", "plan", "validate"]
    );
    check_all(GITLAB, &commands).await;
}

/// The containers of a Kubernetes workload manifest (CronJob or Job).
fn pod_spec(manifest: &Value) -> &Value {
    match manifest["kind"].as_str() {
        Some("CronJob") => &manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        Some("Job") => &manifest["spec"]["template"]["spec"],
        other => panic!("not a workload: {other:?}"),
    }
}

fn wi_args(manifest: &Value) -> Vec<String> {
    let container = &pod_spec(manifest)["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .is_some_and(|i| i.contains("/wi:")),
        "{container}"
    );
    strings(&container["args"])
        .iter()
        .map(|a| placeholder(a))
        .collect()
}

#[tokio::test]
async fn the_drift_cronjob_checks_a_valid_spec_that_declares_its_own_mapping() {
    let kustomization = yaml(&format!("{K8S}/kustomization.yaml"));
    let generator = &kustomization["configMapGenerator"][0];
    assert_eq!(generator["name"], "wi-spec");
    assert_eq!(generator["files"], serde_json::json!(["wi.yaml"]));
    assert_eq!(
        kustomization["generatorOptions"]["disableNameSuffixHash"],
        true
    );

    // The spec in the ConfigMap is valid.
    let validated = wi_offline(&["validate", "-f", &format!("{K8S}/wi.yaml")])
        .await
        .expect(0);
    assert!(
        validated.stdout.contains("is valid"),
        "{}",
        validated.stdout
    );

    // It declares the job's own mapping, to the account the KSA names.
    let spec = yaml(&format!("{K8S}/wi.yaml"));
    let own = spec["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .find(|m| m["namespace"] == "wi-system" && m["ksa"] == "wi-drift")
        .expect("the drift job's mapping");
    assert_eq!(own["serviceAccount"], "wi-drift");
    let ksa = yaml(&format!("{K8S}/serviceaccount.yaml"));
    assert_eq!(ksa["metadata"]["namespace"], "wi-system");
    assert_eq!(ksa["metadata"]["name"], "wi-drift");
    assert_eq!(
        ksa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        format!(
            "wi-drift@{}.iam.gserviceaccount.com",
            spec["defaults"]["project"].as_str().expect("a project")
        )
    );
    // Least privilege: the account holds only the drift role, which is
    // exactly what `wi plan` reads (generated from the permission catalogue).
    let gsa = spec["serviceAccounts"]
        .as_array()
        .expect("serviceAccounts")
        .iter()
        .find(|a| a["name"] == "wi-drift")
        .expect("the drift account");
    assert_eq!(
        gsa["roles"],
        serde_json::json!(["projects/wi-demo/roles/wiDrift"])
    );
    assert_eq!(
        read(&format!("{K8S}/wi-drift.role.yaml")),
        wi::permissions::role_yaml(
            "wi drift",
            "Read-only access for wi plan and wi drift",
            &[wi::permissions::Command::Plan]
        )
    );

    // The CronJob runs as that KSA, on the spec it mounts.
    let cronjob = yaml(&format!("{K8S}/cronjob.yaml"));
    let pod = pod_spec(&cronjob);
    assert_eq!(pod["serviceAccountName"], "wi-drift");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "wi-spec");
    let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .expect("a mount");
    let args = wi_args(&cronjob);
    assert_eq!(args[0], "drift");
    let file = args
        .windows(2)
        .find(|w| w[0] == "-f")
        .map(|w| w[1].clone())
        .expect("-f");
    assert_eq!(file, format!("{mount}/wi.yaml"));
    assert!(
        root().join(K8S).join("README.md").is_file(),
        "examples/k8s/README.md"
    );

    // The sharded Job: N indexed pods, shard I/N each, and a merge of N reports.
    let sharded = yaml(&format!("{K8S}/sharded-job.yaml"));
    assert_eq!(sharded["spec"]["completionMode"], "Indexed");
    let n = sharded["spec"]["completions"]
        .as_u64()
        .expect("completions");
    assert_eq!(sharded["spec"]["parallelism"].as_u64(), Some(n));
    let shard_args = strings(&pod_spec(&sharded)["containers"][0]["args"]);
    assert!(
        shard_args
            .windows(2)
            .any(|w| w[0] == "--shard" && w[1] == format!("$(JOB_COMPLETION_INDEX)/{n}")),
        "{shard_args:?}"
    );
    let merge = yaml(&format!("{K8S}/merge-job.yaml"));
    let merge_args = wi_args(&merge);
    assert_eq!(merge_args[..2], ["drift", "--merge"]);
    assert_eq!(merge_args.len() as u64 - 2, n, "{merge_args:?}");

    let commands = vec![args, wi_args(&sharded), merge_args];
    check_all(K8S, &commands).await;
}
