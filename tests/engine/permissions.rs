//! Least privilege, proven: a caller holding exactly the documented custom
//! role (`examples/iam/wi-apply.role.yaml`) plans and applies the
//! quickstart; taking any one permission away makes `wi` name it before
//! anything changes; and a caller without `iam.serviceAccounts.setIamPolicy`
//! is refused by the pre-flight with no write reaching the emulator.
//!
//! The caller is a Google service account with a key; its role is a custom
//! role changed through the emulator's IAM API between runs (one emulator).

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::TestWorld;

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";
const ROLE_FILE: &str = "examples/iam/wi-apply.role.yaml";
const ROLE_ID: &str = "wiApply";

/// The emulator's Google APIs, called as its admin.
struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
    project: String,
}

impl Admin {
    fn new(world: &TestWorld) -> Admin {
        let emu = world.emulator.as_ref().expect("emulator");
        let ca = std::fs::read(emu.ca_file().expect("ca")).expect("read ca");
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca pem")])
            .build()
            .expect("client");
        Admin {
            client,
            base: emu.base_url(),
            token: emu.admin_token(),
            project: world.project.clone(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("emulator answers");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sets the custom role's permissions.
    async fn set_role(&self, permissions: &[&str]) {
        let path = format!(
            "/iam/v1/projects/{}/roles/{ROLE_ID}?updateMask=includedPermissions",
            self.project
        );
        let role = self
            .call(
                Method::PATCH,
                &path,
                json!({"includedPermissions": permissions}),
            )
            .await;
        assert_eq!(
            role["includedPermissions"].as_array().unwrap().len(),
            permissions.len()
        );
    }

    /// A service account `deployer` holding only the custom role (with
    /// `permissions`) on the project, and a key file for it.
    async fn deployer(&self, world: &TestWorld, permissions: &[&str]) -> (String, String) {
        let p = &self.project;
        self.call(
            Method::POST,
            &format!("/iam/v1/projects/{p}/roles"),
            json!({"roleId": ROLE_ID, "role": {"title": "wi apply", "includedPermissions": permissions}}),
        )
        .await;
        let sa = self
            .call(
                Method::POST,
                &format!("/iam/v1/projects/{p}/serviceAccounts"),
                json!({"accountId": "deployer"}),
            )
            .await;
        let email = sa["email"].as_str().expect("email").to_string();
        let key = self
            .call(
                Method::POST,
                &format!("/iam/v1/projects/{p}/serviceAccounts/{email}/keys"),
                json!({}),
            )
            .await;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key["privateKeyData"].as_str().expect("key data"))
            .expect("base64");
        let key_path = world.write("deployer.json", &String::from_utf8(key).expect("utf-8"));
        let policy = format!("/cloudresourcemanager/v1/projects/{p}");
        let mut current = self
            .call(Method::POST, &format!("{policy}:getIamPolicy"), json!({}))
            .await;
        current["bindings"]
            .as_array_mut()
            .expect("bindings")
            .push(json!({"role": format!("projects/{p}/roles/{ROLE_ID}"), "members": [format!("serviceAccount:{email}")]}));
        self.call(
            Method::POST,
            &format!("{policy}:setIamPolicy"),
            json!({"policy": current}),
        )
        .await;
        (email, key_path.display().to_string())
    }

    /// Calls per method so far (`GET /emulator/stats`).
    async fn calls(&self) -> BTreeMap<String, u64> {
        let stats = self
            .client
            .get(format!("{}/emulator/stats", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("stats")
            .json::<Value>()
            .await
            .expect("stats JSON");
        serde_json::from_value(stats["calls"].clone()).expect("calls")
    }
}

/// The permissions of the documented role, as the committed file lists them.
fn documented_role() -> Vec<String> {
    crate::harness::read(ROLE_FILE)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect()
}

/// Runs `wi` as the deployer.
async fn wi_as(world: &TestWorld, key: &str, args: &[&str]) -> crate::harness::Output {
    world
        .wi_env(
            args,
            &[("GOOGLE_APPLICATION_CREDENTIALS", key)],
            &["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"],
        )
        .await
}

/// Methods that change something, among `calls` (Kubernetes writes and
/// Google writes; the pre-flight's own calls are reads).
fn writes(calls: &BTreeMap<String, u64>) -> Vec<String> {
    calls
        .keys()
        .filter(|m| {
            let m = m.as_str();
            !m.contains("testIamPermissions")
                && !m.contains("selfsubjectaccessreviews")
                && [
                    "setIamPolicy",
                    ".create",
                    ".update",
                    ".patch",
                    ".delete",
                    ".enable",
                    "k8s create",
                    "k8s patch",
                    "k8s delete",
                    "k8s update",
                ]
                .iter()
                .any(|w| m.contains(w))
        })
        .cloned()
        .collect()
}

/// The case: no `iam.serviceAccounts.setIamPolicy`. `wi apply` lists
/// what is missing, names the caller, exits 1, and no write reaches the
/// emulator; `wi plan --check-permissions` says the same.
#[tokio::test]
async fn a_caller_without_set_iam_policy_is_refused_before_any_change() {
    let world = TestWorld::start(SEED).await;
    let admin = Admin::new(&world);
    let role = documented_role();
    let without: Vec<&str> = role
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "iam.serviceAccounts.setIamPolicy")
        .collect();
    let (_, key) = admin.deployer(&world, &without).await;
    let before = admin.calls().await;

    let apply = wi_as(&world, &key, &["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(1);
    assert!(
        apply
            .stderr
            .contains("deployer@wi-demo.iam.gserviceaccount.com may not do every step"),
        "{}",
        apply.stderr
    );
    // The plan on stdout is the quickstart's (snapshotted elsewhere); the refusal is what matters.
    let refusal = crate::harness::Output {
        stdout: String::new(),
        ..apply
    };
    assert_output_snapshot!("permissions_apply_refused", refusal);

    let after = admin.calls().await;
    let new: BTreeMap<String, u64> = after
        .iter()
        .filter(|(m, n)| before.get(*m) != Some(n))
        .map(|(m, n)| (m.clone(), n - before.get(m).copied().unwrap_or(0)))
        .collect();
    assert!(
        writes(&new).is_empty(),
        "writes reached the emulator: {new:?}"
    );
    assert!(
        new.keys().any(|m| m.contains("testIamPermissions")),
        "the pre-flight asked Google: {new:?}"
    );

    let plan = wi_as(&world, &key, &["plan", "-f", SPEC, "--check-permissions"])
        .await
        .expect(1);
    assert!(
        plan.stderr
            .contains("iam.serviceAccounts.setIamPolicy on project wi-demo"),
        "{}",
        plan.stderr
    );
    world.stop().await;
}

/// The documented role is exactly enough: with it the quickstart plans,
/// passes the pre-flight and applies; without any one of the permissions
/// the quickstart's apply uses, `wi` names that permission (the pre-flight,
/// or the refused read of live state) and changes nothing. The role's other
/// permissions serve steps the quickstart has none of (cluster creation,
/// prune, account updates), and their absence does not stop it.
#[tokio::test]
async fn the_documented_role_is_enough_and_each_permission_counts() {
    let world = TestWorld::start(SEED).await;
    let admin = Admin::new(&world);
    let role = documented_role();
    let all: Vec<&str> = role.iter().map(String::as_str).collect();
    let (_, key) = admin.deployer(&world, &all).await;

    let mut named = Vec::new();
    let mut unused = Vec::new();
    for p in &all {
        let without: Vec<&str> = all.iter().copied().filter(|x| x != p).collect();
        admin.set_role(&without).await;
        let out = wi_as(&world, &key, &["plan", "-f", SPEC, "--check-permissions"]).await;
        match out.code {
            1 => {
                assert!(
                    out.stderr.contains(p),
                    "without {p}, wi must name it:\n{}",
                    out.stderr
                );
                // A refused read of live state, as users see it.
                if matches!(
                    *p,
                    "resourcemanager.projects.getIamPolicy" | "container.pods.list"
                ) {
                    // Clusters are read concurrently: either may be refused first.
                    let stderr = out
                        .stderr
                        .replace("wi-demo/europe-west1-b/beta", "[CLUSTER]")
                        .replace("wi-demo/us-central1-a/alpha", "[CLUSTER]");
                    let refusal = crate::harness::Output {
                        stdout: String::new(),
                        stderr,
                        ..out
                    };
                    assert_output_snapshot!(
                        format!("permissions_read_refused_without_{p}"),
                        refusal
                    );
                }
                named.push(*p);
            }
            0 => unused.push(*p),
            other => panic!("without {p}: exit {other}\n{}", out.stderr),
        }
    }
    assert_eq!(
        unused,
        [
            "container.clusters.create",
            "container.serviceAccounts.delete",
            "iam.serviceAccounts.delete",
            "iam.serviceAccounts.enable",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.update",
            "resourcemanager.projects.get",
        ],
        "the permissions the quickstart does not use (named: {named:?})"
    );

    admin.set_role(&all).await;
    let check = wi_as(&world, &key, &["plan", "-f", SPEC, "--check-permissions"])
        .await
        .expect(0);
    assert!(
        check
            .stderr
            .contains("deployer@wi-demo.iam.gserviceaccount.com may do every step"),
        "{}",
        check.stderr
    );
    wi_as(&world, &key, &["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    wi_as(&world, &key, &["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

/// The emulator answers `testIamPermissions` (projects and accounts) and
/// `SelfSubjectAccessReview` with exactly what a custom role holds, as
/// `wi`'s own clients ask them, and follows the role as it changes.
#[tokio::test]
async fn the_emulator_answers_with_exactly_the_held_permissions() {
    let world = TestWorld::start(SEED).await;
    let admin = Admin::new(&world);
    let held = [
        "container.clusters.get",
        "container.pods.list",
        "iam.serviceAccounts.getIamPolicy",
    ];
    let (email, key) = admin.deployer(&world, &held).await;
    let env: BTreeMap<String, String> = world.env.iter().cloned().collect();
    let get = |k: &str| env.get(k).cloned();
    let gcp = wi::gcp::GcpClient::new(
        wi::gcp::Endpoints::from_env_vars(get).expect("endpoints"),
        std::sync::Arc::new(wi::gcp::AdcTokenSource::from_key_file(&key)),
        wi::gcp::ClientOptions::from_env_vars(get),
    )
    .expect("client");
    let asked = [
        "container.clusters.get",
        "container.clusters.update",
        "iam.serviceAccounts.getIamPolicy",
        "iam.serviceAccounts.setIamPolicy",
    ];
    let on_project = gcp
        .test_project_permissions(&world.project, &asked)
        .await
        .expect("project");
    assert_eq!(
        on_project,
        ["container.clusters.get", "iam.serviceAccounts.getIamPolicy"]
    );
    let on_account = gcp
        .test_service_account_permissions(&email, &asked[2..])
        .await
        .expect("account");
    assert_eq!(on_account, ["iam.serviceAccounts.getIamPolicy"]);

    let key_alpha = wi::spec::ClusterKey {
        project: world.project.clone(),
        location: "us-central1-a".into(),
        name: "alpha".into(),
    };
    let cluster = gcp
        .get_cluster(&key_alpha)
        .await
        .expect("get")
        .expect("exists");
    let token = gcp.access_token().await.expect("token");
    let conn = wi::live::connect_cluster(&cluster, token, None)
        .await
        .expect("connect");
    let access = |verb, resource, subresource, namespace: Option<&str>| wi::kube::Access {
        verb,
        resource,
        subresource,
        namespace: namespace.map(str::to_string),
    };
    let list_pods = access("list", "pods", "", None);
    assert!(conn.can_i(&list_pods).await.expect("review"));
    assert!(
        !conn
            .can_i(&access("patch", "serviceaccounts", "", Some("payments")))
            .await
            .expect("review")
    );
    assert!(
        !conn
            .can_i(&access(
                "create",
                "serviceaccounts",
                "token",
                Some("payments")
            ))
            .await
            .expect("review")
    );

    // Take container.pods.list away: both answers follow.
    admin.set_role(&held[..1]).await;
    admin.set_role(&[held[0], held[2]]).await;
    assert!(!conn.can_i(&list_pods).await.expect("review"));
    let on_project = gcp
        .test_project_permissions(&world.project, &["container.pods.list"])
        .await
        .expect("project");
    assert!(on_project.is_empty(), "{on_project:?}");
    world.stop().await;
}

/// A step refused after the pre-flight passed (here IAM refuses every
/// `setIamPolicy`, as it does when a deny policy or a just-revoked role
/// stands in the way) names the identity and the permission the call needs.
#[tokio::test]
async fn a_refused_apply_step_names_the_identity_and_the_permission() {
    let world = TestWorld::start_with(SEED, |c| {
        c.faults = Some("iam.setIamPolicy=403:1".into());
    })
    .await;
    let out = world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(1);
    // The failed steps are listed in the apply report (stdout) or the error.
    let all = format!("{}\n{}", out.stdout, out.stderr);
    let flat = all.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("lacks the permission iam.serviceAccounts.setIamPolicy"),
        "{all}"
    );
    assert!(
        flat.contains("the identity of the access token in"),
        "the identity in use is named: {all}"
    );
    world.stop().await;
}
