//! Identity sameness in the spec: one namespace/KSA mapped to different
//! accounts in clusters of one project (one workload pool) is refused,
//! pointing at every mapping, and `accept:` names only known risks.

use wi::spec::{self, Format, Risk, SpecError, SpecSource};

fn text(name: &str, body: &str) -> SpecSource {
    SpecSource::Text {
        name: name.to_owned(),
        text: body.to_owned(),
        format: Format::Yaml,
    }
}

fn invalid(sources: &[SpecSource]) -> SpecError {
    match spec::load_set(sources) {
        Ok((model, _)) => panic!("should be invalid, got {model:#?}"),
        Err(e) => e,
    }
}

const CLUSTERS: &str = "\
version: 1
defaults:
  project: acme-prod
  location: us-central1
clusters:
  - name: alpha
  - name: beta
  - name: other
    project: acme-dev
";

/// The escalation of the issue: alpha's `payments/api` would get
/// `payments-admin` too, through the shared pool.
const ESCALATION: &str = "\
serviceAccounts:
  - name: payments-app
  - name: payments-admin
    roles: [roles/cloudsql.admin]
mappings:
  - serviceAccount: payments-app
    clusters: [alpha]
    namespace: payments
    ksa: api
  - serviceAccount: payments-admin
    clusters: [beta]
    namespace: payments
    ksa: api
";

#[test]
fn different_accounts_for_one_ksa_in_one_pool_are_refused() {
    let body = format!("{CLUSTERS}{ESCALATION}");
    let err = invalid(&[text("wi.yaml", &body)]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["wi::spec::shared_identity_escalation"]);
    insta::assert_snapshot!(spec::render_plain(&err, 100));
}

#[test]
fn the_escalation_is_found_across_files_of_a_set() {
    let platform =
        format!("{CLUSTERS}serviceAccounts:\n  - name: payments-app\n  - name: payments-admin\n");
    let app = "version: 1\nmappings:\n  - serviceAccount: payments-app\n    clusters: [alpha]\n    namespace: payments\n    ksa: api\n";
    let admin = "version: 1\nmappings:\n  - serviceAccount: payments-admin\n    clusters: [acme-prod/beta]\n    namespace: payments\n    ksa: api\n";
    let err = invalid(&[
        text("platform.yaml", &platform),
        text("app.yaml", app),
        text("admin.yaml", admin),
    ]);
    let codes: Vec<&str> = err.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["wi::spec::shared_identity_escalation"]);
    insta::assert_snapshot!(spec::render_plain(&err, 100));
}

#[test]
fn other_projects_and_one_account_for_all_are_fine() {
    // Same KSA, different account, but in another project (another pool);
    // and one account for both clusters of the pool, said once.
    let body = format!(
        "{CLUSTERS}{}{}{}",
        "serviceAccounts:\n  - name: payments-app\n  - name: payments-dev\n    project: acme-dev\n",
        "mappings:\n  - serviceAccount: payments-app\n    clusters: [alpha, beta]\n    namespace: payments\n    ksa: api\n",
        "  - serviceAccount: payments-dev@acme-dev.iam.gserviceaccount.com\n    clusters: [other]\n    namespace: payments\n    ksa: api\n"
    );
    let (model, _) = spec::load_set(&[text("wi.yaml", &body)]).expect("valid");
    assert_eq!(model.mappings.len(), 3);
}

#[test]
fn accept_names_known_risks_only() {
    let ok = format!(
        "{CLUSTERS}{}{}",
        "serviceAccounts:\n  - name: payments-app\n",
        "mappings:\n  - serviceAccount: payments-app\n    clusters: [alpha]\n    namespace: payments\n    ksa: api\n    accept: [identity-sameness]\n"
    );
    let (model, _) = spec::load_set(&[text("wi.yaml", &ok)]).expect("valid");
    assert_eq!(model.mappings[0].accept, [Risk::IdentitySameness]);

    let typo = ok.replace("[identity-sameness]", "[identity-samenes]");
    let err = invalid(&[text("wi.yaml", &typo)]);
    insta::assert_snapshot!(spec::render_plain(&err, 100));
}
