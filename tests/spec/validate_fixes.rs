//! Validate accepts what Google accepts, and nothing else (the rendered
//! diagnostics are snapshotted with the other fixtures): real locations
//! only, `version` as a number, names as plain text, and Google-managed
//! service accounts as external accounts (their project is IAM's `-`
//! wildcard unless the email names it), which IAM and the emulator resolve
//! under `projects/-/serviceAccounts/EMAIL`.

use reqwest::Method;
use serde_json::json;
use wi::spec::{self, Format, SpecError};

use crate::harness;
use crate::harness::root;

fn load_fixture(rel: &str) -> Result<wi::spec::Model, SpecError> {
    let path = root().join(rel);
    let src = std::fs::read_to_string(&path).expect("fixture");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    spec::load_str(&src, &name, Format::from_path(&path))
}

fn codes_and_lines(err: &SpecError) -> Vec<(String, usize)> {
    err.problems()
        .iter()
        .map(|p| (p.code().to_owned(), p.line_col().map_or(0, |(l, _)| l)))
        .collect()
}

#[test]
fn unknown_locations_are_refused_at_their_line_with_a_suggestion() {
    let err = load_fixture("tests/fixtures/specs/invalid/unknown_location.yaml").expect_err("bad");
    let c = |l| ("wi::spec::invalid_location".to_owned(), l);
    assert_eq!(codes_and_lines(&err), [c(6), c(8), c(10)]);
    let helps: Vec<&str> = err
        .problems()
        .iter()
        .filter_map(|p| p.help_text())
        .collect();
    assert!(
        helps[0].contains("gcloud compute regions list"),
        "{}",
        helps[0]
    );
    assert_eq!(helps[1], "did you mean `us-central1-a`?");
    assert_eq!(helps[2], "did you mean `us-central1`?");
}

#[test]
fn a_version_given_as_a_string_is_refused() {
    for rel in [
        "tests/fixtures/specs/invalid/version_string.yaml",
        "tests/fixtures/specs/invalid/version_string.toml",
    ] {
        let err = load_fixture(rel).expect_err("string version");
        assert_eq!(
            codes_and_lines(&err),
            [("wi::spec::version_not_a_number".to_owned(), 1)],
            "{rel}"
        );
    }
}

#[test]
fn names_smuggled_through_tags_are_refused() {
    let err = load_fixture("tests/fixtures/specs/invalid/binary_name.yaml").expect_err("tags");
    let c = |l| ("wi::spec::tagged_value".to_owned(), l);
    // `!!str` (line 10) is a plain string and passes.
    assert_eq!(codes_and_lines(&err), [c(5), c(6)]);
}

#[test]
fn google_managed_accounts_are_external_accounts() {
    let model =
        load_fixture("tests/fixtures/specs/valid/google_managed_accounts.yaml").expect("valid");
    let by_email: Vec<(&str, &str)> = model
        .mappings
        .iter()
        .map(|m| (m.gsa_email.as_str(), m.gsa_project.as_str()))
        .collect();
    assert!(by_email.contains(&("123456789012-compute@developer.gserviceaccount.com", "-")));
    assert!(by_email.contains(&("acme-legacy@appspot.gserviceaccount.com", "acme-legacy")));
    assert!(by_email.contains(&(
        "service-123456789012@gcp-sa-cloudbuild.iam.gserviceaccount.com",
        "-"
    )));
    assert!(by_email.contains(&("123456789012@cloudservices.gserviceaccount.com", "-")));
    // The wildcard is no project the spec manages.
    assert_eq!(model.projects, ["acme-prod"]);

    let bad = spec::load_str(
        "version: 1\ndefaults: {project: acme-prod, location: us-central1}\nclusters: [{name: prod}]\n\
         mappings:\n  - serviceAccount: abc-compute@developer.gserviceaccount.com\n    \
         clusters: [prod]\n    namespace: a\n    ksa: b\n",
        "bad.yaml",
        Format::Yaml,
    )
    .expect_err("not a project number");
    assert_eq!(bad.problems()[0].code(), "wi::spec::invalid_gsa_email");
}

#[tokio::test]
async fn iam_resolves_an_account_under_the_project_wildcard() {
    let t = harness::start(|_| {}).await;
    let created = t
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            Some(json!({"accountId": "wildcard-sa", "serviceAccount": {}})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let email = created.body["email"].as_str().expect("email").to_owned();
    let under = |suffix: &str| format!("/iam/v1/projects/-/serviceAccounts/{email}{suffix}");

    let got = t.call(Method::GET, &under(""), None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["email"], json!(email));
    assert_eq!(
        got.body["name"],
        json!(format!("projects/{}/serviceAccounts/{email}", t.project))
    );

    let policy = t.call(Method::POST, &under(":getIamPolicy"), None).await;
    assert_eq!(policy.status, 200, "{}", policy.body);
    let member = "user:alice@example.com".to_owned();
    let set = t
        .call(
            Method::POST,
            &under(":setIamPolicy"),
            Some(json!({"policy": {
                "etag": policy.body["etag"],
                "bindings": [{"role": "roles/iam.workloadIdentityUser", "members": [member]}]
            }})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let again = t.call(Method::POST, &under(":getIamPolicy"), None).await;
    assert_eq!(again.body["bindings"][0]["members"], json!([member]));

    let missing = t
        .call(
            Method::GET,
            "/iam/v1/projects/-/serviceAccounts/123456789012-compute@developer.gserviceaccount.com",
            None,
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
}
