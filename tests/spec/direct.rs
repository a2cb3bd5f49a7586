//! Direct-mode mappings (issue 12): `roles`, `principalSet`, an optional
//! `serviceAccount`; the model they validate to, in YAML and TOML, and a
//! diagnostic at the line for each malformed shape.

use std::path::Path;

use wi::spec::{self, DirectPrincipal, DirectResource, Format};

fn load(text: &str, name: &str, format: Format) -> Result<wi::spec::Model, String> {
    spec::load_str(text, name, format).map_err(|e| spec::render_plain(&e, 100))
}

const HEAD: &str = "version: 1\nclusters:\n  - name: alpha\n    project: wi-demo\n    location: us-central1\n  - name: other\n    project: wi-else\n    location: us-central1\nserviceAccounts:\n  - name: signer\n    project: wi-demo\nmappings:\n";

fn invalid(mappings: &str) -> String {
    let text = format!("{HEAD}{mappings}");
    match load(&text, "wi.yaml", Format::Yaml) {
        Ok(m) => panic!("should be invalid: {m:#?}"),
        Err(report) => report,
    }
}

#[test]
fn the_example_loads_into_direct_grants() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/direct.yaml");
    let m = spec::load_file(&path).expect("examples/direct.yaml is valid");
    assert_eq!(m.mappings.len(), 1, "one GSA mapping");
    let ledger: Vec<_> = m
        .direct
        .iter()
        .filter(|g| matches!(&g.principal, DirectPrincipal::Ksa { ksa, .. } if ksa == "ledger"))
        .collect();
    assert_eq!(ledger.len(), 2, "one grant per cluster");
    let entries: Vec<String> = ledger[0].roles.iter().map(|r| r.entry()).collect();
    assert_eq!(
        entries,
        [
            "projects/wi-data=roles/storage.objectViewer",
            "projects/wi-demo=roles/cloudsql.client",
            "projects/wi-demo/serviceAccounts/reports-reader@wi-demo.iam.gserviceaccount.com=roles/iam.serviceAccountTokenCreator",
        ]
    );
    assert!(
        m.direct
            .iter()
            .any(|g| g.principal == DirectPrincipal::Cluster)
    );
    assert!(m.direct.iter().any(|g| matches!(
        &g.principal,
        DirectPrincipal::Namespace { namespace } if namespace == "batch"
    )));
    // The KSA with both modes keeps its GSA mapping and gets a grant.
    assert!(m.direct.iter().any(|g| matches!(
        &g.principal,
        DirectPrincipal::Ksa { ksa, .. } if ksa == "reader"
    )));
}

#[test]
fn toml_reads_direct_roles_as_yaml_does() {
    let yaml = format!(
        "{HEAD}  - clusters: [alpha]\n    namespace: apps\n    ksa: api\n    roles:\n      - roles/cloudsql.client\n      - role: roles/storage.objectViewer\n        project: wi-data\n"
    );
    let toml = "version = 1\n\n[[clusters]]\nname = \"alpha\"\nproject = \"wi-demo\"\nlocation = \"us-central1\"\n\n[[clusters]]\nname = \"other\"\nproject = \"wi-else\"\nlocation = \"us-central1\"\n\n[[serviceAccounts]]\nname = \"signer\"\nproject = \"wi-demo\"\n\n[[mappings]]\nclusters = [\"alpha\"]\nnamespace = \"apps\"\nksa = \"api\"\nroles = [\"roles/cloudsql.client\", { role = \"roles/storage.objectViewer\", project = \"wi-data\" }]\n";
    let a = load(&yaml, "wi.yaml", Format::Yaml).expect("yaml");
    let b = load(toml, "wi.toml", Format::Toml).expect("toml");
    assert_eq!(a.direct.len(), 1);
    assert_eq!(
        a.direct.iter().map(|g| &g.roles).collect::<Vec<_>>(),
        b.direct.iter().map(|g| &g.roles).collect::<Vec<_>>()
    );
    assert_eq!(
        a.direct[0].roles[0].resource,
        DirectResource::Project("wi-data".into())
    );
}

#[test]
fn a_mapping_with_neither_account_nor_roles() {
    insta::assert_snapshot!(invalid(
        "  - clusters: [alpha]\n    namespace: apps\n    ksa: api\n"
    ));
}

#[test]
fn a_principal_set_with_a_ksa_and_an_account() {
    insta::assert_snapshot!(invalid(
        "  - principalSet: namespace\n    serviceAccount: signer\n    clusters: [alpha]\n    namespace: apps\n    ksa: api\n    roles: [roles/pubsub.subscriber]\n"
    ));
}

#[test]
fn a_cluster_set_with_a_namespace_and_a_namespace_set_without() {
    insta::assert_snapshot!(invalid(
        "  - principalSet: cluster\n    clusters: [alpha]\n    namespace: apps\n    roles: [roles/logging.logWriter]\n  - principalSet: namespace\n    clusters: [alpha]\n    roles: [roles/logging.logWriter]\n"
    ));
}

#[test]
fn a_principal_set_without_roles() {
    insta::assert_snapshot!(invalid(
        "  - principalSet: cluster\n    clusters: [alpha]\n"
    ));
}

#[test]
fn bad_roles_and_resources() {
    insta::assert_snapshot!(invalid(
        "  - clusters: [alpha]\n    namespace: apps\n    ksa: api\n    roles:\n      - cloudsql.client\n      - role: roles/x\n        project: wi-data\n        serviceAccount: signer\n      - role: roles/y\n        serviceAccount: nobody\n"
    ));
}

#[test]
fn a_namespace_set_over_two_pools() {
    insta::assert_snapshot!(invalid(
        "  - principalSet: namespace\n    clusters: [alpha, other]\n    namespace: batch\n    roles: [roles/pubsub.subscriber]\n"
    ));
}
