//! The fast first pass over plain YAML (`spec::load_spec_set_fast`) against
//! the span-carrying parsers (`spec::load_spec_set_spanned`): on every spec
//! fixture, example and the benchmark fleet, the first pass yields the same
//! model (origins included) or nothing, and never a model for a spec the
//! full parsers refuse.

use std::path::{Path, PathBuf};

use wi::spec::{self, Format, SpecSet, SpecSource};

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../benches/fleet/world.rs"]
mod world;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the fast pass read `set`; panics when it disagrees with the full parse.
fn agree(set: &SpecSet) -> bool {
    let full = spec::load_spec_set_spanned(set);
    let fast = spec::load_spec_set_fast(set);
    match (full, fast) {
        (Ok(full), Some(fast)) => {
            assert_eq!(fast, full, "{}: the two models differ", set.display);
            true
        }
        (Err(e), Some(_)) => panic!(
            "{}: the fast pass accepted a spec the full parse refuses:\n{}",
            set.display,
            spec::render_plain(&e, 100)
        ),
        (_, None) => false,
    }
}

fn file_set(path: &Path) -> SpecSet {
    spec::read_sources(&[SpecSource::Path(path.to_path_buf())]).expect("readable")
}

fn text_set(text: &str) -> SpecSet {
    spec::read_sources(&[SpecSource::Text {
        name: "t.yaml".into(),
        text: text.into(),
        format: Format::Yaml,
    }])
    .expect("in memory")
}

fn specs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "toml")
                && !p.to_string_lossy().ends_with(".seed.yaml")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fixtures_and_examples_give_the_same_model_or_none() {
    let mut read = Vec::new();
    for dir in [
        "tests/fixtures/specs/valid",
        "tests/fixtures/specs/invalid",
        "examples",
        "examples/iam",
        "examples/k8s",
    ] {
        for path in specs_under(&root().join(dir)) {
            if agree(&file_set(&path)) {
                read.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    // The multi-file set, as one directory.
    assert!(agree(&file_set(&root().join("tests/fixtures/specs/multi"))));
    // The plain fixtures are read by the fast pass (not only left to the full parse).
    for plain in [
        "minimal.yaml",
        "groups_and_star.yaml",
        "ksas_and_defaults.yaml",
        "external_gsa.yaml",
        "quickstart.yaml",
        "fleet.yaml",
        "groups.toml",
    ] {
        assert!(
            read.iter().any(|r| r == plain),
            "{plain} not read: {read:?}"
        );
    }
}

#[test]
fn the_benchmark_fleet_is_read_by_the_fast_pass_with_the_same_model() {
    let fleet = world::Fleet::generate(world::Shape::for_mappings(1_000));
    assert!(agree(&text_set(&fleet.spec())));
}

#[test]
fn block_and_flow_styles_comments_and_quotes_agree() {
    let specs = [
        r#"version: 1
owner: team-a   # who
defaults:
  project: proj-one
  location: 'us-central1'
clusters:
- name: a
  groups: [g1]
  metadataServer: [pool-a, "pool-b"]
  create:
    initialNodeCount: 2
    releaseChannel: STABLE
- {name: b, location: us-east1-b, workloadIdentity: true, autopilot: false}
serviceAccounts:
  - name: app-one
    displayName: The app, one
    roles: [roles/storage.objectViewer]

# mappings
mappings:
  - serviceAccount: app-one
    clusters: [g1]
    namespace: ns
    ksas:
      - k1
      - "k2"
    manage: annotate
  - serviceAccount: 123456-compute@developer.gserviceaccount.com
    clusters: ["*"]
    namespace: other
    ksa: k
  - roles: [roles/pubsub.subscriber, {role: roles/viewer, project: proj-two}]
    clusters: [a]
    namespace: direct
    ksa: d
absent:
  - serviceAccount: app-one
    member: serviceAccount:proj-one.svc.id.goog[ns/old]
"#,
        "version: 1\nclusters:\nmappings: []\n",
        // Invalid ones: the fast pass must give up (the full parse reports them).
        "version: 1\nclusters: [{name: a, project: proj-one, location: us-central1, wat: 1}]\n",
        "version: 1\nclusters:\n  - name: A\n    project: proj-one\n    location: us-central1\n",
        "version: 2\n",
    ];
    for (i, text) in specs.iter().enumerate() {
        let read = agree(&text_set(text));
        assert_eq!(read, i < 2, "spec {i}: read {read}");
    }
}

#[test]
fn nulls_empties_and_typed_scalars_agree_or_are_left_to_the_full_parse() {
    // Each must give the same model both ways, or none from the fast pass.
    for text in [
        "version: 1\nowner: null\nclusters: ~\nmappings:\n",
        "version: 1\nowner:\ndefaults:\nprojects: []\n",
        "version: 1\nowner: ''\n",
        "version: 1\ndefaults: {}\n",
        "version: \"1\"\n",
        "version: 01\n",
        "version: 1\nclusters: [{name: a, project: proj-one, location: us-central1, workloadIdentity: True}]\n",
        "version: 1\nclusters: [{name: a, project: proj-one, location: us-central1, create: {initialNodeCount: \"2\"}}]\n",
        "version: 1\nclusters:\n  - name: a\n    project: proj-one\n    location: us-central1\n    metadataServer: none\n",
        "version: 1\nserviceAccounts:\n  - name: app-one\n    project: proj-one\n    displayName: two  spaces#and hash\n",
        "version: 1\nserviceAccounts:\n  -   name: app-one\n      project: proj-one\n",
        "version: 1\nserviceAccounts:\n- name: app-one\n  project: proj-one\n  roles:\n  - roles/viewer\n",
        "version: 1 # the version\n\n\n# end\n",
        "version: 1",
    ] {
        agree(&text_set(text));
    }
}
