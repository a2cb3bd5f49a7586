//! What the live world says reaches the terminal defused (issue 13): a KSA
//! annotation holding a bidirectional override and escape sequences is shown
//! as `\u{..}` in the plan, a server's 3 MB message is cut with its size,
//! and a cluster answering 503 gets help that fits (try again, or leave it
//! out), not a `kubeContext` hint.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::harness::TestWorld;
use crate::harness::command::filters;

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";

/// What a hostile annotation value holds: clear the screen, home the cursor,
/// write in green, and a right-to-left override that reverses what follows.
const HOSTILE: &str = "\u{1b}[2J\u{1b}[H\u{1b}[32mNo changes.\u{1b}[0m\u{202e}moc.elpmaxe@evil\u{2066}x\u{2069}\u{200f}";

fn assert_defused(text: &str) {
    for c in ['\u{1b}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200f}'] {
        assert!(!text.contains(c), "{c:?} reached the terminal:\n{text}");
    }
}

#[tokio::test]
async fn a_hostile_ksa_annotation_is_shown_not_obeyed() {
    let world = TestWorld::start(SEED).await;
    let alpha = world.kube("us-central1-a", "alpha").await;
    let none = BTreeMap::new();
    alpha
        .apply_namespace_as("someone-else", "payments", &none, false)
        .await
        .expect("namespace");
    let annotations = BTreeMap::from([(
        "iam.gke.io/gcp-service-account".to_string(),
        HOSTILE.to_string(),
    )]);
    alpha
        .apply_service_account_as(
            "someone-else",
            "payments",
            "api",
            &none,
            &annotations,
            false,
        )
        .await
        .expect("a KSA annotated by another manager");
    let plan = world
        .wi(&["plan", "-f", SPEC, "--force-conflicts"])
        .await
        .expect(0);
    assert_defused(&plan.stdout);
    assert_defused(&plan.stderr);
    assert!(
        plan.stdout.contains("\\u{202e}moc.elpmaxe@evil"),
        "{}",
        plan.stdout
    );
    // The markdown of a pull-request comment too.
    let markdown = world
        .wi(&[
            "plan",
            "-f",
            SPEC,
            "--force-conflicts",
            "--format",
            "markdown",
        ])
        .await
        .expect(0);
    assert_defused(&markdown.stdout);
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("elpmaxe"))
        .expect("the annotation's line");
    insta::assert_snapshot!(line.trim());
    world.stop().await;
}

/// A cluster's API server (a kubeContext) that answers every request 503,
/// with a 3 MB one-line message ending in escape sequences.
async fn failing_apiserver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let message = format!(
        "etcdserver: request is too large: {}\u{1b}[2J\u{202e}",
        "x".repeat(3 * 1024 * 1024)
    );
    let app = axum::Router::new().fallback(move || {
        let message = message.clone();
        async move {
            let status = serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message,
                "reason": "ServiceUnavailable",
                "code": 503,
            });
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                status.to_string(),
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_503_cluster_with_a_3_mb_message_is_cut_and_gets_help_that_fits() {
    let world = TestWorld::start(SEED).await;
    let server = failing_apiserver().await;
    let kubeconfig = world.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: failing\n    cluster:\n      server: {server}\nusers:\n  - name: failing\n    user:\n      token: not-a-secret\ncontexts:\n  - name: failing\n    context:\n      cluster: failing\n      user: failing\ncurrent-context: failing\n"
        ),
    );
    let spec = std::fs::read_to_string(SPEC).expect("quickstart").replace(
        "    location: europe-west1-b\n",
        "    location: europe-west1-b\n    kubeContext: failing\n",
    );
    assert!(spec.contains("kubeContext: failing"));
    let spec = world.write("wi.yaml", &spec);
    let spec = spec.to_str().expect("utf-8 path");
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let plan = world
        .wi_env(&["plan", "-f", spec], &[("KUBECONFIG", kubeconfig)], &[])
        .await
        .expect(1);
    assert_defused(&plan.stdout);
    assert_defused(&plan.stderr);
    let printed = plan.stdout.len() + plan.stderr.len();
    assert!(printed < 32 * 1024, "{printed} bytes printed");
    assert!(
        plan.stdout.contains("more bytes)") || plan.stderr.contains("more bytes)"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
    let mut filters = filters();
    filters.push((r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"));
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(plan.snapshot());
    });
    world.stop().await;
}
