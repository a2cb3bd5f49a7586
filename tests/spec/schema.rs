//! `schema/wi.schema.json` is generated from the raw spec types and committed;
//! this test fails when it is stale (regenerate with `WI_UPDATE_SCHEMA=1`).
//! Every example and valid fixture must satisfy the schema and load.

use std::path::{Path, PathBuf};

use wi::spec::{self, Format};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_current() {
    let path = root().join("schema/wi.schema.json");
    let generated = spec::schema_json();
    if std::env::var_os("WI_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/wi.schema.json is stale: run `WI_UPDATE_SCHEMA=1 cargo test --test spec schema::` and commit it"
    );
}

fn spec_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/fixtures/specs/valid"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            // Seed files describe the emulator's world, not a spec.
            let is_seed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".seed."));
            if matches!(ext, "yaml" | "yml" | "toml") && !is_seed {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "found {files:?}");
    files
}

fn as_json(path: &Path) -> serde_json::Value {
    let src = std::fs::read_to_string(path).expect("read");
    match Format::from_path(path) {
        Format::Toml => toml::from_str(&src).expect("toml parses"),
        Format::Yaml => serde_saphyr::from_str(&src).expect("yaml parses"),
    }
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&spec::schema_json()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

#[test]
fn examples_and_valid_fixtures_satisfy_the_schema_and_load() {
    let validator = validator();
    let mut failures = Vec::new();
    for path in spec_files() {
        let instance = as_json(&path);
        for error in validator.iter_errors(&instance) {
            failures.push(format!(
                "{}: {} at {}",
                path.display(),
                error,
                error.instance_path
            ));
        }
        if let Err(e) = spec::load_file(&path) {
            failures.push(spec::render_plain(&e, 100));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn schema_rejects_what_the_loader_rejects_structurally() {
    let validator = validator();
    for (src, why) in [
        ("{}", "version is required"),
        (r#"{"version": 2}"#, "only version 1"),
        (r#"{"version": 1, "cluster": []}"#, "unknown top-level key"),
        (
            r#"{"version": 1, "clusters": [{"name": "a", "workloadIdentiy": true}]}"#,
            "unknown cluster key",
        ),
        (
            r#"{"version": 1, "clusters": [{"name": "a", "metadataServer": "some"}]}"#,
            "metadataServer value",
        ),
        (
            r#"{"version": 1, "mappings": [{"serviceAccount": "a", "clusters": [], "namespace": "n", "ksa": "k"}]}"#,
            "empty clusters",
        ),
        (
            r#"{"version": 1, "serviceAccounts": [{"name": "Bad_Name"}]}"#,
            "account id pattern",
        ),
    ] {
        let instance: serde_json::Value = serde_json::from_str(src).expect("json");
        assert!(!validator.is_valid(&instance), "{why}: {src}");
    }
}

#[test]
fn schema_is_draft_07_with_descriptions() {
    let schema: serde_json::Value = serde_json::from_str(&spec::schema_json()).expect("json");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    let cluster = &schema["definitions"]["Cluster"];
    assert!(cluster["properties"]["workloadIdentity"]["description"].is_string());
    assert_eq!(cluster["additionalProperties"], false);
}
