//! `wi validate` and `wi schema` as a user runs them: the real binary, a
//! clean environment, exit codes, stdout and stderr (as full snapshots).

use crate::harness::command::{wi_offline, wi_offline_in};
use crate::harness::root;

#[tokio::test]
async fn quickstart_is_valid() {
    let out = wi_offline(&["validate", "-f", "examples/quickstart.yaml"]).await;
    assert_output_snapshot!("validate_quickstart", out);
}

#[tokio::test]
async fn toml_is_valid_too() {
    let out = wi_offline(&["validate", "--file", "examples/quickstart.toml"]).await;
    assert_output_snapshot!("validate_quickstart_toml", out);
}

#[tokio::test]
async fn bad_spec_exits_1_and_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "version: 1\ndefaults:\n  project: wi-demo\nserviceAccounts:\n  - name: Bad_Name\n",
    )
    .expect("write");
    // Run in the temp dir, so the report names `bad.yaml` as the user typed it.
    let out = wi_offline_in(dir.path(), &["validate", "-f", "bad.yaml"]).await;
    assert_output_snapshot!("validate_bad_account_id", out);
}

#[tokio::test]
async fn every_problem_of_a_file_is_reported() {
    let out = wi_offline(&[
        "validate",
        "-f",
        "tests/fixtures/specs/invalid/many_problems.yaml",
    ])
    .await;
    assert_eq!(out.stderr.matches("Error: wi::spec::").count(), 8);
    assert_output_snapshot!("validate_many_problems", out);
}

#[tokio::test]
async fn malformed_toml_names_the_line() {
    let out = wi_offline(&[
        "validate",
        "-f",
        "tests/fixtures/specs/invalid/malformed_toml.toml",
    ])
    .await;
    assert_output_snapshot!("validate_malformed_toml", out);
}

#[tokio::test]
async fn missing_file_is_an_error_not_a_panic() {
    let out = wi_offline(&["validate", "-f", "does/not/exist.yaml"]).await;
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_output_snapshot!("validate_missing_file", out);
}

#[tokio::test]
async fn validate_discovers_wi_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        root().join("examples/quickstart.yaml"),
        dir.path().join("wi.yaml"),
    )
    .expect("copy");
    let found = wi_offline_in(dir.path(), &["validate"]).await;
    assert_output_snapshot!("validate_discovers_wi_yaml", found);

    let empty = tempfile::tempdir().expect("tempdir");
    let none = wi_offline_in(empty.path(), &["validate"]).await;
    assert_output_snapshot!("validate_without_a_spec", none);
}

#[tokio::test]
async fn print_model_is_json() {
    let out = wi_offline(&[
        "validate",
        "-f",
        "examples/quickstart.yaml",
        "--print-model",
    ])
    .await
    .expect(0);
    let model: wi::spec::Model = serde_json::from_str(&out.stdout).expect("model JSON");
    assert_eq!(model.mappings.len(), 4);
}

#[tokio::test]
async fn schema_prints_the_committed_schema() {
    let committed =
        std::fs::read_to_string(root().join("schema/wi.schema.json")).expect("schema file");
    let out = wi_offline(&["schema"]).await.expect(0);
    assert_eq!(out.stdout, committed);
    assert_eq!(out.stderr, "");
}
