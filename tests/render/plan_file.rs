//! Saved plan files: round trip, atomic writes, and refusal of tampered,
//! malformed, oversized and unknown-version files.

use std::fs;
use std::path::Path;

use crate::harness::fixtures as fx;
use miette::Diagnostic;
use serde_json::Value;
use wi::plan::file::{self, MAX_PLAN_FILE_BYTES, PlanFileError};

fn saved(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("wi.plan");
    file::write(&fx::create_everything(), &path).expect("write plan");
    path
}

fn envelope(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn code(err: &PlanFileError) -> String {
    err.code().map(|c| c.to_string()).unwrap_or_default()
}

#[test]
fn round_trip_gives_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    for plan in [
        fx::create_everything(),
        fx::partial_drift(),
        fx::foreign_members(),
        fx::removal(),
        fx::no_changes(),
        fx::structured_values(),
    ] {
        let path = dir.path().join("p.json");
        file::write(&plan, &path).unwrap();
        assert_eq!(file::read(&path).unwrap(), plan);
    }
}

#[test]
fn envelope_is_versioned_and_checksummed() {
    let dir = tempfile::tempdir().unwrap();
    let v = envelope(&saved(dir.path()));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["wi_plan", "wi_version", "checksum", "plan"]);
    assert_eq!(v["wi_plan"], wi::plan::FORMAT_VERSION);
    assert_eq!(v["wi_version"], wi::VERSION);
    let sum = v["checksum"].as_str().unwrap();
    assert!(sum.starts_with("sha256:") && sum.len() == 7 + 64, "{sum}");
    assert_eq!(sum, file::checksum(&v["plan"]));
}

#[test]
fn write_replaces_atomically_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wi.plan");
    fs::write(&path, "old content").unwrap();
    file::write(&fx::removal(), &path).unwrap();
    file::write(&fx::no_changes(), &path).unwrap();
    assert_eq!(file::read(&path).unwrap(), fx::no_changes());
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["wi.plan"]);
}

#[test]
fn write_into_a_missing_directory_fails_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let err = file::write(&fx::removal(), &dir.path().join("nope/wi.plan")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_changed_value_is_detected_as_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let text = fs::read_to_string(&path).unwrap();
    // Point a binding at another member: one byte changed.
    let tampered = text.replacen("[payments/api]", "[payments/apj]", 1);
    assert_ne!(text, tampered);
    fs::write(&path, tampered).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(err.is_tampered(), "{err:?}");
    assert_eq!(code(&err), "wi::plan_file::checksum_mismatch");
    assert!(err.to_string().contains("modified after it was written"));
}

#[test]
fn flipping_any_single_byte_of_the_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let original = fs::read(&path).unwrap();
    let start = original
        .windows(8)
        .position(|w| w == b"\"plan\": ")
        .expect("plan key");
    // Every 13th byte of the plan part, flipped: never accepted (either the
    // JSON breaks or the content no longer matches the checksum).
    for i in (start..original.len() - 2).step_by(13) {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert!(file::read(&path).is_err(), "byte {i} flipped and accepted");
    }
}

#[test]
fn reformatting_and_reordering_keys_is_not_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let v = envelope(&path);
    // Compact, and with the envelope keys reversed.
    let mut reversed = serde_json::Map::new();
    for (k, val) in v.as_object().unwrap().iter().rev() {
        reversed.insert(k.clone(), val.clone());
    }
    fs::write(&path, serde_json::to_vec(&Value::Object(reversed)).unwrap()).unwrap();
    assert_eq!(file::read(&path).unwrap(), fx::create_everything());
}

#[test]
fn unknown_major_version_is_refused_and_newer_minor_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut v = envelope(&path);

    v["wi_plan"] = Value::from("2.0");
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(err.is_unsupported_version(), "{err:?}");
    assert_eq!(code(&err), "wi::plan_file::unsupported_version");
    assert!(err.to_string().contains("format version 2.0"), "{err}");

    v["wi_plan"] = Value::from("banana");
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(file::read(&path).unwrap_err().is_unsupported_version());

    // A newer minor version may add keys; they are covered by the checksum
    // and ignored by this reader.
    v["wi_plan"] = Value::from("1.7");
    v["plan"]["added_in_1_7"] = Value::from(true);
    v["checksum"] = Value::from(file::checksum(&v["plan"]));
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(file::read(&path).unwrap(), fx::create_everything());
}

#[test]
fn malformed_json_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wi.plan");
    fs::write(&path, "{\n  \"wi_plan\": \"1.0\",\n  oops\n}").unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(
        matches!(err, PlanFileError::Malformed { line: 3, .. }),
        "{err:?}"
    );
    assert_eq!(code(&err), "wi::plan_file::malformed");
}

#[test]
fn json_that_is_not_a_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wi.plan");
    for body in [
        "[]",
        "{}",
        "{\"wi_plan\": 1}",
        "{\"wi_plan\": \"1.0\"}",
        "{\"wi_plan\": \"1.0\", \"checksum\": \"x\"}",
    ] {
        fs::write(&path, body).unwrap();
        let err = file::read(&path).unwrap_err();
        assert!(
            matches!(err, PlanFileError::NotAPlan { .. }),
            "{body}: {err:?}"
        );
    }
    // Right checksum, wrong shape.
    let plan = serde_json::json!({"changes": "nope"});
    let body =
        serde_json::json!({"wi_plan": "1.0", "checksum": file::checksum(&plan), "plan": plan});
    fs::write(&path, body.to_string()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(matches!(err, PlanFileError::InvalidPlan { .. }), "{err:?}");
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.plan");
    let f = fs::File::create(&path).unwrap();
    f.set_len(MAX_PLAN_FILE_BYTES + 1).unwrap(); // sparse: nothing is written
    let err = file::read(&path).unwrap_err();
    assert!(matches!(err, PlanFileError::TooLarge { .. }), "{err:?}");
    assert_eq!(code(&err), "wi::plan_file::too_large");
}

#[test]
fn missing_file_is_reported_as_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = file::read(&dir.path().join("absent.plan")).unwrap_err();
    assert!(err.is_not_found());
    assert!(!err.is_tampered());
    assert_eq!(err.path(), dir.path().join("absent.plan"));
}

#[test]
fn plan_of_another_major_version_inside_a_current_envelope_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut v = envelope(&path);
    v["plan"]["format_version"] = Value::from("3.1");
    v["checksum"] = Value::from(file::checksum(&v["plan"]));
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(err.is_unsupported_version(), "{err:?}");
}
