//! Saved plan files: the one plan document (`wi plan --json` and `--out`),
//! round trip, atomic writes that never replace a symlink, FIFO or device,
//! and refusal of tampered, malformed, oversized, non-regular and
//! other-version files.

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

fn document(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// `v` with its checksum recomputed, as a hand editor who knows the rule would.
fn reseal(mut v: Value) -> Value {
    let map = v.as_object_mut().unwrap();
    map.shift_remove("checksum");
    let sum = file::checksum(&Value::Object(map.clone()));
    map.insert("checksum".into(), Value::from(sum));
    v
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
fn the_saved_file_is_the_json_plan_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let v = document(&path);
    assert_eq!(v, wi::render::json(&fx::create_everything()));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "format_version",
            "wi_version",
            "spec_digest",
            "resource_changes",
            "warnings",
            "summary",
            "has_changes",
            "fingerprints",
            "checksum"
        ]
    );
    assert_eq!(v["format_version"], wi::plan::FORMAT_VERSION);
    assert_eq!(v["wi_version"], wi::VERSION);
    let sum = v["checksum"].as_str().unwrap();
    assert!(sum.starts_with("sha256:") && sum.len() == 7 + 64, "{sum}");
    assert_eq!(reseal(v.clone()), v);
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
    assert_eq!(code(&err), "wi::plan_file::write");
    assert!(
        matches!(&err, PlanFileError::Write { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn out_onto_a_symlink_is_refused_and_the_link_and_its_target_stay() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.txt");
    fs::write(&target, "keep me").unwrap();
    let link = dir.path().join("wi.plan");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = file::write(&fx::removal(), &link).unwrap_err();
    assert!(err.is_not_a_regular_file(), "{err:?}");
    assert_eq!(code(&err), "wi::plan_file::not_a_file");
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
}

#[cfg(unix)]
#[test]
fn out_onto_a_device_or_directory_is_refused() {
    let err = file::write(&fx::removal(), Path::new("/dev/null")).unwrap_err();
    assert!(err.to_string().contains("is a device"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = file::write(&fx::removal(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking_for_reading_and_writing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("wi.plan");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // No writer ever opens the FIFO: opening it would block this test.
    let err = file::read(&fifo).unwrap_err();
    assert!(err.is_not_a_regular_file(), "{err:?}");
    assert!(err.to_string().contains("named pipe (FIFO)"), "{err}");
    let err = file::write(&fx::removal(), &fifo).unwrap_err();
    assert!(err.is_not_a_regular_file(), "{err:?}");
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_plan_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let link = dir.path().join("link.plan");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(file::read(&link).unwrap(), fx::create_everything());
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
    // Every 13th byte, flipped: never accepted (either the JSON breaks or
    // the content no longer matches the checksum).
    for i in (1..original.len() - 2).step_by(13) {
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
    let v = document(&path);
    // Compact, and with the top-level keys reversed.
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
    let mut v = document(&path);

    v["format_version"] = Value::from("3.0");
    fs::write(&path, serde_json::to_vec(&reseal(v.clone())).unwrap()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(err.is_unsupported_version(), "{err:?}");
    assert_eq!(code(&err), "wi::plan_file::unsupported_version");
    assert!(err.to_string().contains("format version 3.0"), "{err}");

    v["format_version"] = Value::from("banana");
    fs::write(&path, serde_json::to_vec(&reseal(v.clone())).unwrap()).unwrap();
    assert!(file::read(&path).unwrap_err().is_unsupported_version());

    // A newer minor version may add keys; they are covered by the checksum
    // and ignored by this reader.
    v["format_version"] = Value::from("2.7");
    v["added_in_2_7"] = Value::from(true);
    fs::write(&path, serde_json::to_vec(&reseal(v)).unwrap()).unwrap();
    assert_eq!(file::read(&path).unwrap(), fx::create_everything());
}

#[test]
fn a_plan_file_of_format_1_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.plan");
    // What wi wrote before the plan file and `--json` became one document.
    let plan = serde_json::json!({"format_version": "1.0", "changes": []});
    let body = serde_json::json!({
        "wi_plan": "1.0", "wi_version": "0.1.0", "checksum": file::checksum(&plan), "plan": plan
    });
    fs::write(&path, body.to_string()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(err.is_unsupported_version(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("format version 1.0") && text.contains("it reads 2.x"),
        "{text}"
    );
    assert!(err.help().unwrap().to_string().contains("wi plan --out"));
}

#[test]
fn malformed_json_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wi.plan");
    fs::write(&path, "{\n  \"format_version\": \"2.0\",\n  oops\n}").unwrap();
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
        "{\"format_version\": 2}",
        "{\"format_version\": \"2.0\"}",
        "{\"format_version\": \"2.0\", \"checksum\": 7}",
    ] {
        fs::write(&path, body).unwrap();
        let err = file::read(&path).unwrap_err();
        assert!(
            matches!(err, PlanFileError::NotAPlan { .. }),
            "{body}: {err:?}"
        );
    }
    // Right checksum, wrong shape.
    let body = reseal(serde_json::json!({"format_version": "2.0", "resource_changes": "nope"}));
    fs::write(&path, body.to_string()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(matches!(err, PlanFileError::InvalidPlan { .. }), "{err:?}");
}

#[test]
fn a_resealed_plan_whose_address_contradicts_its_resource_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut v = document(&path);
    v["resource_changes"][0]["address"] = Value::from("cluster[\"elsewhere\"]");
    fs::write(&path, serde_json::to_vec(&reseal(v)).unwrap()).unwrap();
    let err = file::read(&path).unwrap_err();
    assert!(matches!(err, PlanFileError::Inconsistent { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not match its resource"),
        "{err}"
    );
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
