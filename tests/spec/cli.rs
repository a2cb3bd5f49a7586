//! `wi validate` and `wi schema` as a user runs them: the real binary, a
//! clean environment, exit codes, stdout and stderr.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn wi() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("wi"));
    let home = std::env::temp_dir();
    cmd.env_clear()
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(root());
    cmd
}

#[test]
fn quickstart_is_valid() {
    wi().args(["validate", "-f", "examples/quickstart.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "✓ examples/quickstart.yaml is valid: 2 clusters, 2 service accounts, 4 KSA mappings",
        ))
        .stderr(predicate::str::is_empty());
}

#[test]
fn toml_is_valid_too() {
    wi().args(["validate", "--file", "examples/quickstart.toml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("quickstart.toml is valid"));
}

#[test]
fn bad_spec_exits_1_and_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\ndefaults:\n  project: wi-demo\nserviceAccounts:\n  - name: Bad_Name\n",
    )
    .expect("write");
    wi().arg("validate")
        .arg("-f")
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("bad.yaml:5:11"))
        .stderr(predicate::str::contains("invalid account id `Bad_Name`"))
        .stderr(predicate::str::contains("wi::spec::invalid_account_id"));
}

#[test]
fn every_problem_of_a_file_is_reported() {
    let out = wi()
        .args([
            "validate",
            "-f",
            "tests/fixtures/specs/invalid/many_problems.yaml",
        ])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).expect("utf-8");
    assert_eq!(stderr.matches("Error: wi::spec::").count(), 8, "{stderr}");
    for line in [
        ":8:15]", ":12:11]", ":13:13]", ":16:21]", ":17:23]", ":18:16]", ":21:16]", ":23:10]",
    ] {
        assert!(stderr.contains(line), "missing {line} in\n{stderr}");
    }
}

#[test]
fn malformed_toml_names_the_line() {
    wi().args([
        "validate",
        "-f",
        "tests/fixtures/specs/invalid/malformed_toml.toml",
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("malformed_toml.toml:5:11"));
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    wi().args(["validate", "-f", "does/not/exist.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read does/not/exist.yaml"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn validate_discovers_wi_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        root().join("examples/quickstart.yaml"),
        dir.path().join("wi.yaml"),
    )
    .expect("copy");
    wi().current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("✓ wi.yaml is valid"));

    let empty = tempfile::tempdir().expect("tempdir");
    wi().current_dir(empty.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no spec found"));
}

#[test]
fn print_model_is_json() {
    let out = wi()
        .args([
            "validate",
            "-f",
            "examples/quickstart.yaml",
            "--print-model",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let model: wi::spec::Model = serde_json::from_slice(&out).expect("model JSON");
    assert_eq!(model.mappings.len(), 4);
}

#[test]
fn schema_prints_the_committed_schema() {
    let committed =
        std::fs::read_to_string(root().join("schema/wi.schema.json")).expect("schema file");
    wi().arg("schema")
        .assert()
        .code(0)
        .stdout(predicate::eq(committed));
}
