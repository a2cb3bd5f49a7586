//! Every bad-input class yields a diagnostic that names the line and column of
//! the offending value. Rendered reports are snapshotted (tests/spec/snapshots/).

use std::path::{Path, PathBuf};

use wi::spec::{self, Format, SpecError};

fn invalid_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs/invalid")
}

/// Loads an invalid fixture as `load_file` would, but names it by file name
/// only so snapshots do not depend on the checkout path.
fn load_fixture(name: &str) -> SpecError {
    let path = invalid_dir().join(name);
    let src = std::fs::read_to_string(&path).expect("fixture is readable");
    match spec::load_str(&src, name, Format::from_path(&path)) {
        Ok(model) => panic!("{name} should be invalid, got {model:#?}"),
        Err(e) => e,
    }
}

fn render(err: &SpecError) -> String {
    spec::render_plain(err, 100)
}

/// Every fixture, the codes it must produce (in file order) and the line of the first problem.
const CASES: &[(&str, &[&str], usize)] = &[
    ("malformed_yaml.yaml", &["wi::spec::syntax"], 4),
    ("malformed_indent.yaml", &["wi::spec::syntax"], 4),
    ("malformed_toml.toml", &["wi::spec::syntax"], 5),
    ("unknown_field.yaml", &["wi::spec::unknown_field"], 7),
    ("unknown_field.toml", &["wi::spec::unknown_field"], 9),
    ("wrong_type.yaml", &["wi::spec::wrong_type"], 7),
    ("wrong_type_list.yaml", &["wi::spec::wrong_type"], 9),
    ("metadata_server_value.yaml", &["wi::spec::wrong_type"], 6),
    ("duplicate_key.yaml", &["wi::spec::duplicate_key"], 6),
    ("missing_field.yaml", &["wi::spec::missing_field"], 6),
    (
        "unsupported_version.yaml",
        &["wi::spec::unsupported_version"],
        1,
    ),
    ("empty.yaml", &["wi::spec::empty"], 1),
    (
        "version_string.yaml",
        &["wi::spec::version_not_a_number"],
        1,
    ),
    (
        "version_string.toml",
        &["wi::spec::version_not_a_number"],
        1,
    ),
    (
        "binary_name.yaml",
        &["wi::spec::tagged_value", "wi::spec::tagged_value"],
        5,
    ),
    (
        "unknown_location.yaml",
        &[
            "wi::spec::invalid_location",
            "wi::spec::invalid_location",
            "wi::spec::invalid_location",
        ],
        6,
    ),
    (
        "invalid_account_id.yaml",
        &[
            "wi::spec::invalid_account_id",
            "wi::spec::invalid_account_id",
            "wi::spec::invalid_account_id",
        ],
        5,
    ),
    (
        "invalid_project_id.yaml",
        &[
            "wi::spec::invalid_project_id",
            "wi::spec::invalid_project_id",
            "wi::spec::invalid_project_id",
        ],
        3,
    ),
    (
        "invalid_location.yaml",
        &["wi::spec::invalid_location", "wi::spec::invalid_location"],
        6,
    ),
    (
        "invalid_kubernetes_names.yaml",
        &[
            "wi::spec::invalid_namespace",
            "wi::spec::invalid_ksa_name",
            "wi::spec::invalid_namespace",
            "wi::spec::invalid_ksa_name",
        ],
        12,
    ),
    (
        "invalid_cluster_name.yaml",
        &[
            "wi::spec::invalid_cluster_name",
            "wi::spec::invalid_cluster_name",
            "wi::spec::invalid_group_name",
            "wi::spec::invalid_pool_name",
        ],
        6,
    ),
    (
        "invalid_role.yaml",
        &[
            "wi::spec::invalid_role",
            "wi::spec::invalid_role",
            "wi::spec::invalid_role",
        ],
        7,
    ),
    (
        "invalid_member.yaml",
        &["wi::spec::invalid_member", "wi::spec::invalid_member"],
        8,
    ),
    (
        "invalid_gsa_email.yaml",
        &["wi::spec::invalid_gsa_email"],
        8,
    ),
    (
        "unknown_reference.yaml",
        &[
            "wi::spec::unknown_service_account",
            "wi::spec::unknown_cluster",
            "wi::spec::unknown_service_account",
            "wi::spec::unknown_cluster",
            "wi::spec::unknown_cluster",
        ],
        12,
    ),
    (
        "ambiguous_reference.yaml",
        &[
            "wi::spec::ambiguous_service_account",
            "wi::spec::ambiguous_cluster",
        ],
        15,
    ),
    ("ksa_mapped_twice.yaml", &["wi::spec::ksa_mapped_twice"], 18),
    (
        "duplicates.yaml",
        &[
            "wi::spec::duplicate_cluster",
            "wi::spec::duplicate_entry",
            "wi::spec::duplicate_account",
            "wi::spec::duplicate_mapping",
            "wi::spec::duplicate_absent",
        ],
        7,
    ),
    (
        "ksa_and_ksas.yaml",
        &["wi::spec::ksa_and_ksas", "wi::spec::missing_ksa"],
        13,
    ),
    (
        "empty_lists.yaml",
        &[
            "wi::spec::empty_list",
            "wi::spec::empty_list",
            "wi::spec::empty_list",
            "wi::spec::empty_list",
            "wi::spec::empty_list",
        ],
        7,
    ),
    (
        "workload_identity_off.yaml",
        &[
            "wi::spec::metadata_server_without_workload_identity",
            "wi::spec::workload_identity_disabled",
            "wi::spec::workload_identity_disabled",
        ],
        8,
    ),
    (
        "group_name_conflict.yaml",
        &["wi::spec::group_name_conflict"],
        7,
    ),
    (
        "missing_project.yaml",
        &[
            "wi::spec::missing_project",
            "wi::spec::missing_location",
            "wi::spec::missing_project",
        ],
        3,
    ),
    ("absent_conflict.yaml", &["wi::spec::absent_conflict"], 16),
    ("invalid_create.yaml", &["wi::spec::wrong_type"], 9),
    (
        "semantic.toml",
        &[
            "wi::spec::invalid_account_id",
            "wi::spec::unknown_service_account",
            "wi::spec::unknown_cluster",
            "wi::spec::invalid_namespace",
        ],
        11,
    ),
    (
        "many_problems.yaml",
        &[
            "wi::spec::invalid_location",
            "wi::spec::invalid_account_id",
            "wi::spec::invalid_role",
            "wi::spec::unknown_service_account",
            "wi::spec::unknown_cluster",
            "wi::spec::invalid_namespace",
            "wi::spec::workload_identity_disabled",
            "wi::spec::ksa_and_ksas",
        ],
        8,
    ),
    ("alias_bomb.yaml", &["wi::spec::limit"], 0),
    // Typed deserialization stops at the first `[`: depth never builds up.
    ("deep_nesting.yaml", &["wi::spec::wrong_type"], 2),
    ("deep_nesting.toml", &["wi::spec::limit"], 0),
];

#[test]
fn every_fixture_has_a_case() {
    let mut names: Vec<String> = std::fs::read_dir(invalid_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut cases: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    cases.sort();
    assert_eq!(names, cases);
}

#[test]
fn codes_and_lines() {
    let mut failures = Vec::new();
    for (name, codes, line) in CASES {
        let err = load_fixture(name);
        assert!(err.is_invalid(), "{name}: {err:?}");
        let got: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
        if got != *codes {
            failures.push(format!("{name}: codes {got:?}, want {codes:?}"));
        }
        if *line > 0 {
            let first = err.problems().first().and_then(|p| p.line_col());
            if first.map(|(l, _)| l) != Some(*line) {
                failures.push(format!(
                    "{name}: first problem at {first:?}, want line {line}"
                ));
            }
        }
        // Every problem except pure limits points somewhere in the file.
        for p in err.problems() {
            if p.code() != "wi::spec::limit" && p.line_col().is_none() {
                failures.push(format!("{name}: `{}` has no location", p.message()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendered_diagnostics() {
    for (name, _, _) in CASES {
        let err = load_fixture(name);
        let rendered = render(&err);
        let snap = name.replace('.', "_");
        insta::assert_snapshot!(snap, rendered);
    }
}

#[test]
fn rendered_reports_name_file_line_and_column() {
    let err = load_fixture("unknown_reference.yaml");
    let rendered = render(&err);
    assert!(
        rendered.contains("unknown_reference.yaml:12:"),
        "{rendered}"
    );
    assert!(
        rendered.contains("unknown_reference.yaml:13:16"),
        "{rendered}"
    );
    assert!(rendered.contains("did you mean `alpha`?"), "{rendered}");
}

#[test]
fn many_problems_are_reported_in_one_error() {
    let err = load_fixture("many_problems.yaml");
    assert_eq!(err.problems().len(), 8);
    let rendered = render(&err);
    assert!(
        rendered.contains("many_problems.yaml is not a valid spec: 8 problems"),
        "{rendered}"
    );
}
