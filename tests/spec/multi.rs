//! Spec sets: several files (`-f` repeated, `-f DIR`, `-f -`) form one
//! model. Cross-file references resolve, each file keeps its owner, and
//! every diagnostic names the file and line of each place it points at.

use std::path::{Path, PathBuf};

use wi::spec::{self, Format, Owner, SpecError, SpecSource};

use crate::harness::command::{clean_command, wi_binary, wi_offline, wi_offline_in};
use crate::harness::root;

const MULTI: &str = "tests/fixtures/specs/multi";

fn multi(name: &str) -> PathBuf {
    root().join(MULTI).join(name)
}

/// A file of the set, in memory, named `name` in diagnostics.
fn text(name: &str, body: &str) -> SpecSource {
    SpecSource::Text {
        name: name.to_owned(),
        text: body.to_owned(),
        format: Format::Yaml,
    }
}

fn platform() -> SpecSource {
    text(
        "platform.yaml",
        &std::fs::read_to_string(multi("platform.yaml")).expect("read"),
    )
}

fn team(name: &str) -> SpecSource {
    text(name, &std::fs::read_to_string(multi(name)).expect("read"))
}

fn invalid(sources: &[SpecSource]) -> SpecError {
    match spec::load_set(sources) {
        Ok((model, _)) => panic!("should be invalid, got {model:#?}"),
        Err(e) => e,
    }
}

fn render(err: &SpecError) -> String {
    spec::render_plain(err, 100)
}

#[test]
fn a_directory_is_one_model_with_an_owner_per_file() {
    let (model, set) = spec::load_set(&[SpecSource::Path(root().join(MULTI))]).expect("valid");
    let names: Vec<String> = set
        .files
        .iter()
        .map(|f| {
            Path::new(&f.name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // Byte order of the path.
    assert_eq!(names, ["payments.yaml", "platform.yaml", "search.yaml"]);
    assert_eq!(
        model.owners,
        [
            Owner::Named("payments".into()),
            Owner::Named("platform".into()),
            Owner::Named("search".into())
        ]
    );
    // Team files map into the platform file's clusters and group.
    assert_eq!(model.clusters.len(), 2);
    assert!(
        model
            .clusters
            .iter()
            .all(|c| c.origin.file.ends_with("platform.yaml"))
    );
    let payments: Vec<_> = model
        .mappings
        .iter()
        .filter(|m| m.namespace == "payments")
        .collect();
    assert_eq!(payments.len(), 2, "the `prod` group has both clusters");
    for m in &payments {
        assert_eq!(m.owner, Owner::Named("payments".into()));
        assert!(m.origin.file.ends_with("payments.yaml"), "{}", m.origin);
        assert_eq!(m.origin.line, 11);
    }
    let search = model
        .service_accounts
        .iter()
        .find(|g| g.account_id == "search-indexer")
        .expect("search account");
    assert_eq!(search.owner, Owner::Named("search".into()));
    assert_eq!(search.origin.line, 7);

    // The same files named one by one give the same model and digest.
    let listed: Vec<SpecSource> = ["payments.yaml", "platform.yaml", "search.yaml"]
        .iter()
        .map(|n| SpecSource::Path(root().join(MULTI).join(n)))
        .collect();
    let (again, set2) = spec::load_set(&listed).expect("valid");
    assert_eq!(again, model);
    assert_eq!(set2.digest(), set.digest());
    // Another order is another set (the digest covers order and names).
    let mut reordered = listed.clone();
    reordered.reverse();
    let (_, set3) = spec::load_set(&reordered).expect("valid");
    assert_ne!(set3.digest(), set.digest());
}

#[test]
fn one_file_keeps_the_digest_of_its_text() {
    let path = root().join("examples/quickstart.yaml");
    let (_, set) = spec::load_set(&[SpecSource::Path(path.clone())]).expect("valid");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(set.digest(), spec::digest(&text));
}

#[test]
fn a_team_file_alone_does_not_know_the_clusters() {
    let err = invalid(&[team("payments.yaml")]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["wi::spec::unknown_cluster"]);
    insta::assert_snapshot!("multi_team_file_alone", render(&err));
    // With the platform file, the cluster group is found.
    spec::load_set(&[platform(), team("payments.yaml")]).expect("valid with the platform file");
}

#[test]
fn a_typo_of_a_cluster_of_another_file_suggests_it_and_names_the_file() {
    let body = std::fs::read_to_string(multi("search.yaml"))
        .expect("read")
        .replace("clusters: [prod-us]", "clusters: [prod-uss]");
    let err = invalid(&[platform(), text("search.yaml", &body)]);
    let p = &err.problems()[0];
    assert_eq!(p.code(), "wi::spec::unknown_cluster");
    assert_eq!(p.file_name(), "search.yaml");
    assert_eq!(
        p.help_text(),
        Some("did you mean `prod-us` (declared in platform.yaml)?")
    );
    insta::assert_snapshot!("multi_cluster_typo", render(&err));
}

#[test]
fn a_typo_in_a_team_file_names_that_file_and_line() {
    let body = std::fs::read_to_string(multi("payments.yaml"))
        .expect("read")
        .replace("namespace: payments", "namespace: Payments");
    let err = invalid(&[
        platform(),
        text("payments.yaml", &body),
        team("search.yaml"),
    ]);
    let p = &err.problems()[0];
    assert_eq!(p.code(), "wi::spec::invalid_namespace");
    assert_eq!(p.file_name(), "payments.yaml");
    assert_eq!(p.line_col().map(|(l, _)| l), Some(13));
    insta::assert_snapshot!("multi_team_typo", render(&err));
}

#[test]
fn duplicates_across_files_name_both_places() {
    let mut search = std::fs::read_to_string(multi("search.yaml")).expect("read");
    // A cluster the platform file declares, and the payments team's KSA.
    search = search.replace(
        "serviceAccounts:",
        "clusters:\n  - name: prod-us\n    location: us-central1\nserviceAccounts:",
    );
    search.push_str(
        "  - serviceAccount: search-indexer\n    clusters: [prod-eu]\n    namespace: payments\n    ksa: api\n",
    );
    let err = invalid(&[
        platform(),
        team("payments.yaml"),
        text("search.yaml", &search),
    ]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(
        codes,
        ["wi::spec::duplicate_cluster", "wi::spec::ksa_mapped_twice"]
    );
    let dup = &err.problems()[0];
    assert_eq!(dup.file_name(), "search.yaml");
    assert_eq!(
        dup.other_places(),
        [(
            "platform.yaml".to_owned(),
            9,
            "first declared in platform.yaml".to_owned()
        )]
    );
    let clash = &err.problems()[1];
    assert_eq!(clash.other_places()[0].0, "payments.yaml");
    insta::assert_snapshot!("multi_duplicates", render(&err));
}

#[test]
fn a_mapping_to_another_owners_account_is_refused() {
    let mut search = std::fs::read_to_string(multi("search.yaml")).expect("read");
    search.push_str(
        "  - serviceAccount: payments-api\n    clusters: [prod-us]\n    namespace: search\n    ksa: billing\n",
    );
    let err = invalid(&[
        platform(),
        team("payments.yaml"),
        text("search.yaml", &search),
    ]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["wi::spec::foreign_account"]);
    insta::assert_snapshot!("multi_foreign_account", render(&err));
}

#[test]
fn the_same_owner_may_split_its_spec_in_files() {
    let a = "version: 1\nowner: payments\ndefaults: {project: acme-prod}\nserviceAccounts:\n  - name: payments-api\n";
    let b = "version: 1\nowner: payments\nmappings:\n  - serviceAccount: payments-api\n    clusters: [prod]\n    namespace: payments\n    ksa: api\n";
    let (model, _) =
        spec::load_set(&[platform(), text("a.yaml", a), text("b.yaml", b)]).expect("valid");
    assert_eq!(model.mappings.len(), 2);
    assert_eq!(
        model.owners,
        [
            Owner::Named("payments".into()),
            Owner::Named("platform".into())
        ]
    );
}

#[test]
fn defaults_apply_to_their_own_file() {
    // The platform file's defaults.location does not reach another file's clusters.
    let other = "version: 1\nclusters:\n  - name: batch\n    project: acme-prod\n";
    let err = invalid(&[platform(), text("batch.yaml", other)]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["wi::spec::missing_location"]);
}

#[test]
fn a_file_given_twice_and_an_empty_directory_are_errors() {
    let p = multi("platform.yaml");
    let err =
        spec::load_set(&[SpecSource::Path(p.clone()), SpecSource::Path(p)]).expect_err("twice");
    assert!(matches!(err, SpecError::GivenTwice { .. }), "{err}");
    let err = spec::load_set(&[
        SpecSource::Path(root().join(MULTI)),
        SpecSource::Path(multi("search.yaml")),
    ])
    .expect_err("file inside a given directory");
    assert!(matches!(err, SpecError::GivenTwice { .. }), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".hidden")).expect("mkdir");
    std::fs::write(dir.path().join(".hidden/wi.yaml"), "version: 1\n").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a spec").expect("write");
    let err = spec::load_set(&[SpecSource::Path(dir.path().to_path_buf())]).expect_err("empty");
    assert!(matches!(err, SpecError::EmptyDirectory { .. }), "{err}");
}

#[test]
fn a_directory_is_read_recursively_in_byte_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("teams/b")).expect("mkdir");
    std::fs::copy(multi("platform.yaml"), d.join("platform.yaml")).expect("copy");
    std::fs::copy(multi("search.yaml"), d.join("teams/b/search.yml")).expect("copy");
    std::fs::copy(multi("payments.yaml"), d.join("teams/a.yaml")).expect("copy");
    std::fs::write(d.join("teams/.draft.yaml"), "not: [valid").expect("write");
    let (_, set) = spec::load_set(&[SpecSource::Path(d.to_path_buf())]).expect("valid");
    let rel: Vec<String> = set
        .files
        .iter()
        .map(|f| {
            Path::new(&f.name)
                .strip_prefix(d)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(rel, ["platform.yaml", "teams/a.yaml", "teams/b/search.yml"]);
}

#[tokio::test]
async fn validate_a_directory_lists_its_files_in_order() {
    let out = wi_offline(&["validate", "-f", MULTI]).await;
    assert_output_snapshot!("validate_multi_dir", out);
}

#[tokio::test]
async fn validate_repeated_files() {
    let out = wi_offline(&[
        "validate",
        "-f",
        "tests/fixtures/specs/multi/platform.yaml",
        "-f",
        "tests/fixtures/specs/multi/search.yaml",
    ])
    .await;
    assert_output_snapshot!("validate_multi_repeated", out);
    let bad = wi_offline(&["validate", "-f", "tests/fixtures/specs/multi/search.yaml"]).await;
    assert_output_snapshot!("validate_multi_team_alone", bad);
}

#[tokio::test]
async fn print_model_shows_owners_and_origins() {
    let out = wi_offline(&["validate", "-f", MULTI, "--print-model"])
        .await
        .expect(0);
    let model: serde_json::Value = serde_json::from_str(&out.stdout).expect("model JSON");
    assert_eq!(
        model["owners"],
        serde_json::json!([{"named": "payments"}, {"named": "platform"}, {"named": "search"}])
    );
    let m = &model["mappings"][0];
    assert_eq!(m["owner"], serde_json::json!({"named": "payments"}));
    assert_eq!(
        m["origin"],
        serde_json::json!({"file": "tests/fixtures/specs/multi/payments.yaml", "line": 11})
    );
}

#[tokio::test]
async fn stdin_is_a_file_of_the_set() {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = clean_command(wi_binary(), home.path());
    cmd.args([
        "validate",
        "-f",
        "tests/fixtures/specs/multi/platform.yaml",
        "-f",
        "-",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wi");
    let body = std::fs::read_to_string(multi("payments.yaml"))
        .expect("read")
        .replace("namespace: payments", "namespace: Payments");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(body.as_bytes()).await.expect("write");
    }
    let out: crate::harness::command::Output = child.wait_with_output().await.expect("wait").into();
    assert_output_snapshot!("validate_stdin_in_set", out);
}

#[tokio::test]
async fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("wi.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // Nothing ever writes to the FIFO: opening it would block forever.
    let out = wi_offline_in(dir.path(), &["validate", "-f", "wi.yaml"]).await;
    assert_output_snapshot!("validate_fifo", out);
    // Inside a directory too, and through discovery.
    let out = wi_offline_in(dir.path(), &["validate", "-f", "."]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("wi::spec::not_a_file"),
        "{}",
        out.stderr
    );
    // Discovery looks for regular files only.
    let out = wi_offline_in(dir.path(), &["validate"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
}

/// `wi plan` takes the set: the quickstart split in a clusters file and a
/// team file (in a directory, and as two `-f`, and with the team file on
/// standard input) plans the same changes as the one file.
#[tokio::test]
async fn plan_of_a_split_spec_equals_the_plan_of_the_one_file() {
    let world = crate::harness::TestWorld::start("examples/quickstart.seed.yaml").await;
    let whole = std::fs::read_to_string(root().join("examples/quickstart.yaml")).expect("read");
    let (head, tail) = whole.split_once("serviceAccounts:").expect("split point");
    let dir = world.path("specs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("clusters.yaml"), head).expect("write");
    let team = format!("version: 1\ndefaults:\n  project: wi-demo\nserviceAccounts:{tail}");
    std::fs::write(dir.join("team.yaml"), &team).expect("write");

    let addresses = |out: &crate::harness::command::Output| -> Vec<(String, String)> {
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
        plan["resource_changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| (c["address"].to_string(), c["change"]["actions"].to_string()))
            .collect()
    };
    let one = world
        .wi(&["plan", "--json", "-f", "examples/quickstart.yaml"])
        .await
        .expect(0);
    let dir_s = dir.to_string_lossy().into_owned();
    let by_dir = world.wi(&["plan", "--json", "-f", &dir_s]).await.expect(0);
    let clusters = dir.join("clusters.yaml").to_string_lossy().into_owned();
    let team_path = dir.join("team.yaml").to_string_lossy().into_owned();
    let by_files = world
        .wi(&["plan", "--json", "-f", &clusters, "-f", &team_path])
        .await
        .expect(0);
    assert!(!addresses(&one).is_empty());
    assert_eq!(addresses(&by_dir), addresses(&one));
    assert_eq!(addresses(&by_files), addresses(&one));
    let digest = |out: &crate::harness::command::Output| {
        serde_json::from_str::<serde_json::Value>(&out.stdout).expect("JSON")["spec_digest"].clone()
    };
    assert_eq!(digest(&by_dir), digest(&by_files), "same files, same order");
    assert_ne!(digest(&by_dir), digest(&one));
    world.stop().await;
}

/// clap keeps only one side of `-f` given before and after the subcommand:
/// that is refused, never a set silently missing a file.
#[tokio::test]
async fn file_flags_on_both_sides_of_the_subcommand_are_refused() {
    let out = wi_offline(&[
        "-f",
        "tests/fixtures/specs/multi/platform.yaml",
        "validate",
        "-f",
        "tests/fixtures/specs/multi/search.yaml",
    ])
    .await;
    assert_output_snapshot!("validate_file_flags_split", out);
    wi_offline(&[
        "-f",
        "tests/fixtures/specs/multi/platform.yaml",
        "-f",
        "tests/fixtures/specs/multi/search.yaml",
        "validate",
    ])
    .await
    .expect(0);
}

#[test]
fn json_from_standard_input_joins_the_set() {
    // `-f -` reads YAML, and JSON through the YAML parser: the same as a
    // named JSON text in memory.
    let team = r#"{"version": 1, "owner": "search", "defaults": {"project": "acme-prod"},
      "serviceAccounts": [{"name": "search-indexer"}],
      "mappings": [{"serviceAccount": "search-indexer", "clusters": ["prod"],
                    "namespace": "search", "ksa": "indexer"}]}"#;
    let (model, set) = spec::load_set(&[platform(), text(spec::STDIN_NAME, team)]).expect("valid");
    assert_eq!(set.names(), ["platform.yaml", "<stdin>"]);
    assert_eq!(model.mappings.len(), 2);
    assert!(model.mappings.iter().all(|m| m.origin.file == "<stdin>"));
}
