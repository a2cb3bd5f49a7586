//! `schema/plan.schema.json` is generated from the plan document types and
//! committed; this test fails when it is stale (regenerate with
//! `WI_UPDATE_SCHEMA=1 cargo test --test render schema::`). Every reason and
//! warning code is listed in it with its meaning, and every plan the
//! fixtures make validates against it.

use std::path::PathBuf;

use crate::harness::fixtures as fx;
use serde_json::Value;
use wi::plan::file;
use wi::plan::{ReasonCode, WarningCode};

fn schema() -> Value {
    serde_json::from_str(&file::schema_json()).expect("the plan schema is JSON")
}

#[test]
fn committed_plan_schema_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let generated = file::schema_json();
    if std::env::var_os("WI_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/plan.schema.json is stale: run `WI_UPDATE_SCHEMA=1 cargo test --test render schema::` and commit it"
    );
}

/// The `{const: description}` pairs of a code enum's definition.
fn listed(definition: &str) -> Vec<(String, String)> {
    let schema = schema();
    let one_of = schema["definitions"][definition]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{definition} is not a oneOf of documented constants"));
    one_of
        .iter()
        .map(|v| {
            (
                v["const"].as_str().unwrap_or_default().to_string(),
                v["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn assert_all_listed(definition: &str, codes: &[&str]) {
    let listed = listed(definition);
    let names: Vec<&str> = listed.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, codes, "{definition}: the schema lists other codes");
    for (code, meaning) in &listed {
        assert!(
            meaning.trim().len() > 10,
            "{definition} `{code}` has no meaning in the schema (a doc comment on the variant)"
        );
    }
}

#[test]
fn every_reason_code_is_in_the_schema_with_its_meaning() {
    let codes: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_all_listed("ReasonCode", &codes);
}

#[test]
fn every_warning_code_is_in_the_schema_with_its_meaning() {
    let codes: Vec<&str> = WarningCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_all_listed("WarningCode", &codes);
}

#[test]
fn every_fixture_plan_validates_against_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    for plan in [
        fx::create_everything(),
        fx::partial_drift(),
        fx::foreign_members(),
        fx::removal(),
        fx::no_changes(),
        fx::structured_values(),
    ] {
        let doc = wi::render::json(&plan);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    // And the schema is strict enough to refuse what no plan looks like.
    let mut bad = wi::render::json(&fx::removal());
    bad["resource_changes"][0]["action_reason"] = Value::from("because");
    assert!(!validator.is_valid(&bad));
}
