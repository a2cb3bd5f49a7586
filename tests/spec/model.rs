//! The loader's output: defaults, groups, `*` and `ksas` expanded into one
//! mapping per (cluster, namespace, KSA); external accounts; sorting; the
//! same model from YAML and TOML; file discovery and read limits.

use std::path::{Path, PathBuf};

use wi::spec::{
    self, ClusterKey, Format, KsaManagement, Mapping, Model, Origin, Owner, PoolSelection,
    SpecError,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The model without where each item is declared (two files that say the
/// same thing in different places give the same stripped model).
fn stripped(mut m: Model) -> Model {
    for c in &mut m.clusters {
        c.origin = Origin::default();
    }
    for a in &mut m.service_accounts {
        a.origin = Origin::default();
    }
    for x in &mut m.mappings {
        x.origin = Origin::default();
    }
    for x in &mut m.absent {
        x.origin = Origin::default();
    }
    m
}

fn load(rel: &str) -> Model {
    match spec::load_file(&root().join(rel)) {
        Ok(m) => m,
        Err(e) => panic!("{rel}: {}", spec::render_plain(&e, 100)),
    }
}

fn yaml(src: &str) -> Result<Model, SpecError> {
    spec::load_str(src, "test.yaml", Format::Yaml)
}

fn key(project: &str, location: &str, name: &str) -> ClusterKey {
    ClusterKey {
        project: project.into(),
        location: location.into(),
        name: name.into(),
    }
}

/// (cluster name, namespace, ksa, gsa email) of every mapping, in model order.
fn triples(m: &Model) -> Vec<(String, String, String, String)> {
    m.mappings
        .iter()
        .map(|x| {
            (
                x.cluster.name.clone(),
                x.namespace.clone(),
                x.ksa.clone(),
                x.gsa_email.clone(),
            )
        })
        .collect()
}

fn t(c: &str, ns: &str, ksa: &str, gsa: &str) -> (String, String, String, String) {
    (c.into(), ns.into(), ksa.into(), gsa.into())
}

#[test]
fn quickstart_yaml_is_the_documented_demo() {
    let m = load("examples/quickstart.yaml");
    assert_eq!(m.projects, vec!["wi-demo"]);
    let keys: Vec<&ClusterKey> = m.clusters.iter().map(|c| &c.key).collect();
    assert_eq!(
        keys,
        // Sorted by (project, location, name).
        vec![
            &key("wi-demo", "europe-west1-b", "beta"),
            &key("wi-demo", "us-central1-a", "alpha")
        ]
    );
    assert!(
        m.clusters
            .iter()
            .all(|c| c.workload_identity && c.metadata_server == PoolSelection::All)
    );
    let emails: Vec<String> = m.service_accounts.iter().map(|g| g.email()).collect();
    assert_eq!(
        emails,
        vec![
            "payments-api@wi-demo.iam.gserviceaccount.com",
            "reports-reader@wi-demo.iam.gserviceaccount.com"
        ]
    );
    assert_eq!(m.service_accounts[0].roles, vec!["roles/cloudsql.client"]);
    assert_eq!(
        m.service_accounts[1].roles,
        vec!["roles/bigquery.dataViewer"]
    );
    let pay = "payments-api@wi-demo.iam.gserviceaccount.com";
    let rep = "reports-reader@wi-demo.iam.gserviceaccount.com";
    assert_eq!(
        triples(&m),
        vec![
            t("beta", "payments", "api", pay),
            t("beta", "reports", "reader", rep),
            t("alpha", "payments", "api", pay),
            t("alpha", "payments", "worker", pay),
        ]
    );
    assert!(
        m.mappings
            .iter()
            .all(|x| x.gsa_project == "wi-demo" && x.management == KsaManagement::Create)
    );
    assert_eq!(
        m.mappings[0].member(),
        "serviceAccount:wi-demo.svc.id.goog[payments/api]"
    );
}

#[test]
fn quickstart_toml_and_yaml_give_the_same_model() {
    assert_eq!(
        stripped(load("examples/quickstart.yaml")),
        stripped(load("examples/quickstart.toml"))
    );
}

#[test]
fn groups_star_and_qualified_names_expand() {
    let m = load("tests/fixtures/specs/valid/groups_and_star.yaml");
    let pay = "payments-api@acme-prod.iam.gserviceaccount.com";
    let log = "logging-agent@acme-prod.iam.gserviceaccount.com";
    assert_eq!(
        triples(&m),
        vec![
            t("dev", "logging", "fluent-bit", log),
            t("dev", "payments", "worker", pay),
            t("prod-eu", "logging", "fluent-bit", log),
            t("prod-eu", "payments", "api", pay),
            t("prod-eu", "payments", "worker", pay),
            t("prod-us", "logging", "fluent-bit", log),
            t("prod-us", "payments", "api", pay),
        ]
    );
    assert_eq!(m.projects, vec!["acme-dev", "acme-prod"]);
    // The mapping's GSA lives in acme-prod even where the cluster is in acme-dev.
    let dev = &m.mappings[1];
    assert_eq!(dev.cluster, key("acme-dev", "us-central1-a", "dev"));
    assert_eq!(dev.gsa_project, "acme-prod");
    assert_eq!(
        dev.member(),
        "serviceAccount:acme-dev.svc.id.goog[payments/worker]"
    );
}

#[test]
fn ksas_defaults_pools_and_management() {
    let m = load("tests/fixtures/specs/valid/ksas_and_defaults.yaml");
    let main = &m.clusters[1];
    assert_eq!(main.key, key("acme-prod", "us-east4", "main"));
    assert_eq!(main.metadata_server, PoolSelection::All);
    assert_eq!(main.create, None);
    let other = &m.clusters[0];
    assert_eq!(other.key, key("acme-other", "us-east4-b", "other"));
    assert_eq!(
        other.metadata_server,
        PoolSelection::Only(vec!["pool-a".into(), "pool-b".into()])
    );
    let create = other.create.as_ref().expect("create block");
    assert_eq!(create.initial_node_count, 1);
    assert_eq!(create.machine_type, None);
    assert_eq!(create.release_channel.as_deref(), Some("STABLE"));
    assert_eq!(
        m.service_accounts[0].roles,
        vec!["roles/bigquery.jobUser", "roles/storage.objectViewer"]
    );
    assert_eq!(m.mappings.len(), 6);
    assert!(
        m.mappings
            .iter()
            .all(|x| x.management == KsaManagement::AnnotateExisting)
    );
    let ksas: Vec<&str> = m.mappings.iter().map(|x| x.ksa.as_str()).collect();
    assert_eq!(
        ksas,
        vec![
            "cleanup",
            "runner",
            "scheduler",
            "cleanup",
            "runner",
            "scheduler"
        ]
    );
}

#[test]
fn external_accounts_are_named_by_email() {
    let m = load("tests/fixtures/specs/valid/external_gsa.yaml");
    assert!(m.service_accounts.is_empty());
    // The external account's project is not managed: only the cluster's is.
    assert_eq!(m.projects, vec!["acme-apps"]);
    assert_eq!(
        m.mappings,
        vec![Mapping {
            cluster: key("acme-apps", "europe-west4", "apps"),
            namespace: "reports".into(),
            ksa: "reader".into(),
            gsa_email: "data-reader@acme-data.iam.gserviceaccount.com".into(),
            gsa_project: "acme-data".into(),
            management: KsaManagement::Create,
            owner: Owner::Unnamed,
            origin: Origin {
                file: m.mappings[0].origin.file.clone(),
                line: m.mappings[0].origin.line,
            },
            accept: Vec::new(),
        }]
    );
    assert!(m.mappings[0].origin.file.ends_with("external_gsa.yaml"));
    assert!(m.mappings[0].origin.line > 1);
    let absent: Vec<(&str, &str)> = m
        .absent
        .iter()
        .map(|a| (a.gsa_project.as_str(), a.member.as_str()))
        .collect();
    assert_eq!(
        absent,
        vec![
            (
                "acme-data",
                "serviceAccount:acme-apps.svc.id.goog[legacy/reader]"
            ),
            ("acme-data", "user:old-admin@example.com"),
        ]
    );
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let m = load("tests/fixtures/specs/valid/anchors_and_merge.yaml");
    let names: Vec<(&str, &str)> = m
        .clusters
        .iter()
        .map(|c| (c.key.name.as_str(), c.key.location.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("prod-a", "us-central1"),
            ("prod-c", "us-east1"),
            ("prod-b", "us-west1")
        ]
    );
    assert_eq!(m.mappings.len(), 3, "the merged cluster kept the group");
}

#[test]
fn a_cluster_without_workload_identity_is_fine_when_unmapped() {
    let m = load("tests/fixtures/specs/valid/wi_off_cluster.yaml");
    let legacy = &m.clusters[0];
    assert_eq!(legacy.key.name, "legacy");
    assert!(!legacy.workload_identity);
    assert_eq!(legacy.metadata_server, PoolSelection::None);
    assert_eq!(m.mappings.len(), 1);
}

#[test]
fn toml_fleet_features() {
    let m = load("tests/fixtures/specs/valid/groups.toml");
    assert_eq!(m.projects, vec!["acme-prod", "acme-shared"]);
    let eu = &m.clusters[0];
    assert_eq!(eu.key.name, "prod-eu");
    assert_eq!(
        eu.kube_context.as_deref(),
        Some("gke_acme-prod_europe-west1_prod-eu")
    );
    assert_eq!(eu.create.as_ref().map(|c| c.initial_node_count), Some(3));
    assert_eq!(
        m.clusters[1].metadata_server,
        PoolSelection::Only(vec!["default-pool".into()])
    );
    assert!(m.service_accounts[0].adopt);
    assert_eq!(m.mappings.len(), 4);
}

#[test]
fn fleet_example_expands() {
    let m = load("examples/fleet.yaml");
    assert_eq!(m.projects, vec!["acme-prod", "acme-shared", "acme-staging"]);
    assert_eq!(m.clusters.len(), 6);
    assert_eq!(m.service_accounts.len(), 4);
    // prod: 2 clusters x 2 KSAs; staging 2; ledger: prod(2)+batch(1); ci: 5; analytics: us(2).
    assert_eq!(m.mappings.len(), 4 + 2 + 3 + 5 + 2);
    assert!(m.mappings.iter().all(|x| x.cluster.name != "legacy"));
    assert_eq!(m.absent.len(), 1);
}

#[test]
fn model_does_not_depend_on_item_order() {
    let a = r#"
version: 1
defaults: {project: acme-prod, location: us-central1}
clusters:
  - {name: zeta, groups: [all]}
  - {name: alpha, groups: [all]}
serviceAccounts:
  - {name: second-account, roles: [roles/b.x, roles/a.y]}
  - {name: first-account}
mappings:
  - {serviceAccount: second-account, clusters: [all], namespace: ns-b, ksas: [z, a]}
  - {serviceAccount: first-account, clusters: [zeta], namespace: ns-a, ksa: k}
"#;
    let b = r#"
version: 1
defaults: {location: us-central1, project: acme-prod}
clusters:
  - {name: alpha, groups: [all]}
  - {name: zeta, groups: [all]}
serviceAccounts:
  - {name: first-account}
  - {name: second-account, roles: [roles/a.y, roles/b.x]}
mappings:
  - {serviceAccount: first-account, clusters: [zeta], namespace: ns-a, ksa: k}
  - {serviceAccount: second-account, clusters: [all], namespace: ns-b, ksas: [a, z]}
"#;
    let ma = yaml(a).expect("a is valid");
    let mb = yaml(b).expect("b is valid");
    assert_eq!(stripped(ma.clone()), stripped(mb));
    assert_eq!(ma.service_accounts[1].roles, vec!["roles/a.y", "roles/b.x"]);
}

#[test]
fn overlapping_groups_within_one_mapping_are_merged() {
    let src = r#"
version: 1
defaults: {project: acme-prod, location: us-central1}
clusters:
  - {name: one, groups: [a, b]}
serviceAccounts:
  - {name: some-account}
mappings:
  - {serviceAccount: some-account, clusters: [a, b, one, "*"], namespace: ns, ksa: k}
"#;
    assert_eq!(yaml(src).expect("valid").mappings.len(), 1);
}

#[test]
fn yaml_and_toml_values_carry_spans() {
    let y = "version: 1\nclusters:\n  - name: alpha\n";
    let raw = spec::parse_raw(y, "x.yaml", Format::Yaml).expect("parses");
    let name = &raw.clusters[0].value.name;
    assert_eq!(&y[name.span().expect("yaml span")], "alpha");

    let t = "version = 1\n\n[[clusters]]\nname = \"alpha\"\n";
    let raw = spec::parse_raw(t, "x.toml", Format::Toml).expect("parses");
    let name = &raw.clusters[0].value.name;
    assert_eq!(&t[name.span().expect("toml span")], "\"alpha\"");
    assert_eq!(&t[raw.version.span().expect("toml span")], "1");
}

#[test]
fn digest_is_sha256_hex() {
    assert_eq!(
        spec::digest(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(spec::digest("version: 1\n"), spec::digest("version: 1"));
    assert_eq!(spec::digest("version: 1\n").len(), 64);
}

#[test]
fn discover_finds_exactly_one_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = spec::discover(dir.path()).expect_err("empty dir");
    assert!(err.is_not_found(), "{err}");

    std::fs::write(dir.path().join("wi.toml"), "version = 1\n").expect("write");
    assert_eq!(
        spec::discover(dir.path()).expect("found"),
        dir.path().join("wi.toml")
    );

    std::fs::write(dir.path().join("wi.yaml"), "version: 1\n").expect("write");
    let err = spec::discover(dir.path()).expect_err("two specs");
    assert!(matches!(err, SpecError::AmbiguousFile { .. }), "{err}");
    assert!(!err.is_not_found());
}

#[test]
fn load_file_errors_are_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = spec::load_file(&dir.path().join("nope.yaml")).expect_err("missing");
    assert!(missing.is_not_found() && !missing.is_invalid());

    let big = dir.path().join("big.yaml");
    let body = format!(
        "version: 1\n#{}\n",
        "x".repeat(spec::MAX_FILE_BYTES as usize)
    );
    std::fs::write(&big, body).expect("write");
    let err = spec::load_file(&big).expect_err("too large");
    assert!(matches!(err, SpecError::TooLarge { .. }), "{err}");

    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, b"version: 1\n\xff\xfe\n").expect("write");
    let err = spec::load_file(&bin).expect_err("not utf-8");
    assert!(matches!(err, SpecError::NotUtf8 { .. }), "{err}");

    let (model, src) =
        spec::load_file_with_source(&root().join("examples/quickstart.yaml")).expect("loads");
    assert_eq!(model.clusters.len(), 2);
    assert_eq!(
        spec::digest(&src),
        spec::digest(
            &std::fs::read_to_string(root().join("examples/quickstart.yaml")).expect("read")
        )
    );
}

#[test]
fn problems_are_capped_but_counted() {
    let mut src = String::from("version: 1\ndefaults: {project: acme-prod}\nserviceAccounts:\n");
    for i in 0..300 {
        src.push_str(&format!("  - name: BAD{i}\n"));
    }
    let err = yaml(&src).expect_err("invalid");
    assert_eq!(err.problems().len(), spec::MAX_PROBLEMS);
    let SpecError::Invalid(inv) = &err else {
        panic!("not Invalid: {err}")
    };
    assert_eq!(inv.omitted, 300 - spec::MAX_PROBLEMS);
    assert!(err.to_string().contains("300 problems"), "{err}");
}

#[test]
fn too_many_items_is_a_problem() {
    let mut src = String::from(
        "version: 1\ndefaults: {project: acme-prod, location: us-central1}\nclusters:\n",
    );
    for i in 0..5_001 {
        src.push_str(&format!("  - name: c{i}\n"));
    }
    let err = yaml(&src).expect_err("too many");
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, vec!["wi::spec::too_many_items"]);
    assert_eq!(err.problems()[0].line_col(), Some((5_004, 5)));
}

#[test]
fn format_follows_the_extension() {
    assert_eq!(Format::from_path(Path::new("wi.toml")), Format::Toml);
    assert_eq!(Format::from_path(Path::new("x/wi.TOML")), Format::Toml);
    assert_eq!(Format::from_path(Path::new("wi.yml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("spec")), Format::Yaml);
}

#[test]
fn a_large_fleet_loads() {
    // 300 clusters in 3 projects and 10 groups, 500 accounts, 2,000 mappings.
    let mut src = String::from("version: 1\ndefaults: {location: us-central1}\nclusters:\n");
    for i in 0..300 {
        src.push_str(&format!(
            "  - {{name: c{i}, project: proj-{}, groups: [g{}]}}\n",
            i % 3,
            i % 10
        ));
    }
    src.push_str("serviceAccounts:\n");
    for i in 0..500 {
        src.push_str(&format!("  - {{name: account-{i}, project: proj-0}}\n"));
    }
    src.push_str("mappings:\n");
    for i in 0..2_000 {
        src.push_str(&format!(
            "  - {{serviceAccount: account-{}, clusters: [g{}], namespace: ns-{i}, ksas: [a, b]}}\n",
            i % 500,
            i % 10
        ));
    }
    // How fast it loads is measured by the fleet bench (`cargo bench --bench
    // fleet`), not here: a timed test fails on a busy machine, not on a regression.
    let m = yaml(&src).unwrap_or_else(|e| panic!("{}", spec::render_plain(&e, 100)));
    // Each group has 30 clusters; each mapping names one group and two KSAs.
    assert_eq!(m.mappings.len(), 2_000 * 30 * 2);
    assert_eq!(m.projects, vec!["proj-0", "proj-1", "proj-2"]);
    assert!(m.mappings.iter().all(|x| x.origin.line > 3));
}

#[test]
fn mappings_come_out_sorted_by_cluster_key_whatever_the_declaration_order() {
    // Declared neither in key order (project, location, name) nor in
    // mapping order: the model still lists mappings by (cluster, namespace, KSA).
    let src = r#"
version: 1
clusters:
  - {name: c1, project: proj-b, location: us-east1}
  - {name: c2, project: proj-a, location: us-west1}
  - {name: c0, project: proj-a, location: us-east1}
  - {name: c3, project: proj-b, location: asia-east1}
serviceAccounts:
  - {name: account-1, project: proj-a}
mappings:
  - {serviceAccount: account-1@proj-a.iam.gserviceaccount.com, clusters: [c3, c1], namespace: zz, ksas: [b, a]}
  - {serviceAccount: account-1, clusters: ["*"], namespace: aa, ksa: k}
"#;
    let m = yaml(src).unwrap_or_else(|e| panic!("{}", spec::render_plain(&e, 100)));
    let order: Vec<(String, String, String)> = m
        .mappings
        .iter()
        .map(|x| (x.cluster.name.clone(), x.namespace.clone(), x.ksa.clone()))
        .collect();
    let expect = [
        ("c0", "aa", "k"),
        ("c2", "aa", "k"),
        ("c3", "aa", "k"),
        ("c3", "zz", "a"),
        ("c3", "zz", "b"),
        ("c1", "aa", "k"),
        ("c1", "zz", "a"),
        ("c1", "zz", "b"),
    ];
    let expect: Vec<(String, String, String)> = expect
        .iter()
        .map(|(c, n, k)| ((*c).into(), (*n).into(), (*k).into()))
        .collect();
    assert_eq!(order, expect);
    assert!(m.mappings.is_sorted_by(|a, b| {
        (&a.cluster, &a.namespace, &a.ksa) <= (&b.cluster, &b.namespace, &b.ksa)
    }));
    // The email and the name of the declared account are the same account.
    assert!(
        m.mappings
            .iter()
            .all(|x| x.gsa_email == "account-1@proj-a.iam.gserviceaccount.com")
    );
}
