//! Secrets never leak: run plan and apply at maximum verbosity, with both
//! credential paths (a token file, and a service-account key whose token the
//! emulator mints), and search everything printed and every file written for
//! the tokens and private keys in play.

use crate::harness::TestWorld;

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";

/// The secret strings of this world: the admin token, every line of the key
/// file's private key, and the shape of any emulator-issued token.
fn secrets(world: &TestWorld) -> Vec<String> {
    let env: std::collections::BTreeMap<_, _> = world.env.iter().cloned().collect();
    let mut out = Vec::new();
    if let Some(path) = env.get("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE") {
        let token = std::fs::read_to_string(path).expect("token file");
        out.push(token.trim().to_string());
    }
    let key: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.get("GOOGLE_APPLICATION_CREDENTIALS").expect("key file"))
            .unwrap(),
    )
    .unwrap();
    let pem = key["private_key"].as_str().expect("private key");
    out.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_string),
    );
    out.push(key["private_key_id"].as_str().unwrap().to_string());
    assert!(out.len() > 5, "found the secrets to look for");
    out
}

fn scan(haystack: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(!haystack.contains(s.as_str()), "a secret appears in {what}");
    }
    // Any access token the emulator issued (Google's `ya29.` shape).
    assert!(
        !haystack.contains("ya29."),
        "an access token appears in {what}"
    );
    assert!(
        !haystack.contains("PRIVATE KEY"),
        "key material appears in {what}"
    );
}

#[tokio::test]
async fn tokens_and_keys_never_appear_in_output_logs_or_plans() {
    let world = TestWorld::start(SEED).await;
    let secrets = secrets(&world);
    let plan_file = world.path("saved.plan");
    let plan_path = plan_file.to_str().unwrap();
    let mut printed = String::new();

    // Path 1: the access-token file, at maximum verbosity with trace logs.
    for args in [
        vec!["plan", "-f", SPEC, "-vv", "--out", plan_path],
        vec!["plan", "-f", SPEC, "-vv", "--json"],
        vec!["apply", plan_path, "-f", SPEC, "-vv"],
    ] {
        let run = world.wi_env(&args, &[("WI_LOG", "trace")], &[]).await;
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
    }
    // Path 2: no token file, so the key file's JWT grant mints tokens.
    let run = world
        .wi_env(
            &["plan", "-f", SPEC, "-vv", "--detailed-exitcode"],
            &[("WI_LOG", "trace")],
            &["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"],
        )
        .await;
    assert_eq!(run.code, 0, "the key-file path works too: {}", run.stderr);
    printed.push_str(&run.stdout);
    printed.push_str(&run.stderr);

    assert!(
        printed.contains("DEBUG") || printed.contains("TRACE"),
        "verbose logs were on"
    );
    scan(&printed, &secrets, "the output");
    let saved = std::fs::read_to_string(&plan_file).expect("saved plan");
    scan(&saved, &secrets, "the saved plan");
    world.stop().await;
}
