//! API-level tests of the emulator's Google side: reqwest against an
//! in-process `Emulator`, every response checked against the discovery docs.

use crate::harness;

use std::time::Duration;

use crate::harness::TestEmu;
use reqwest::Method;
use serde_json::{Value, json};

fn clusters(t: &TestEmu, loc: &str) -> String {
    format!(
        "/container/v1/projects/{}/locations/{loc}/clusters",
        t.project
    )
}

fn sa_path(t: &TestEmu, email: &str) -> String {
    format!("/iam/v1/projects/{}/serviceAccounts/{email}", t.project)
}

fn no_schema_problems(t: &TestEmu) {
    let p = t.schema_problems();
    assert!(
        p.is_empty(),
        "responses that break the discovery schema:\n{}",
        p.join("\n")
    );
}

async fn create_cluster(t: &TestEmu, name: &str, wi: bool) -> Value {
    let mut cluster = json!({"name": name, "initialNodeCount": 1});
    if wi {
        cluster["workloadIdentityConfig"] =
            json!({"workloadPool": format!("{}.svc.id.goog", t.project)});
    }
    let a = t
        .call(
            Method::POST,
            &clusters(t, "us-central1-a"),
            Some(json!({"cluster": cluster})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

async fn create_sa(t: &TestEmu, id: &str) -> Value {
    let a = t
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            Some(json!({"accountId": id, "serviceAccount": {"displayName": id}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

#[tokio::test]
async fn calls_without_a_valid_token_get_401() {
    let t = harness::start(|_| {}).await;
    let a = t.call_as(None, Method::GET, &clusters(&t, "-"), None).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body["error"]["status"], "UNAUTHENTICATED");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request is missing required authentication credential.")
    );
    let a = t
        .call_as(Some("ya29.forged"), Method::GET, &clusters(&t, "-"), None)
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials.")
    );
    assert!(a.headers.get("www-authenticate").is_some());
    let ok = t.call(Method::GET, &clusters(&t, "-"), None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, json!({}));
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn a_principal_without_a_role_gets_403_until_granted() {
    let t = harness::start(|_| {}).await;
    let alice = t.emu.issue_user_token("alice@example.com");
    let a = t
        .call_as(Some(&alice), Method::GET, &clusters(&t, "-"), None)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        a.body["error"]["message"],
        format!(
            "Required \"container.clusters.list\" permission(s) for \"projects/{}\".",
            t.project
        )
    );
    let a = t
        .call_as(
            Some(&alice),
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:getIamPolicy",
                t.project
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body["error"]["message"],
        "The caller does not have permission"
    );

    // Grant roles/viewer: reads pass, writes still fail.
    let pol = t
        .call(
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:getIamPolicy",
                t.project
            ),
            Some(json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await;
    let mut bindings = pol.body["bindings"].as_array().cloned().unwrap();
    bindings.push(json!({"role": "roles/viewer", "members": ["user:alice@example.com"]}));
    let set = t
        .call(
            Method::POST,
            &format!("/cloudresourcemanager/v1/projects/{}:setIamPolicy", t.project),
            Some(json!({"policy": {"etag": pol.body["etag"], "bindings": bindings, "version": 3}, "updateMask": "bindings,etag,auditConfigs"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["version"], 1);
    assert_ne!(set.body["etag"], pol.body["etag"]);
    let a = t
        .call_as(Some(&alice), Method::GET, &clusters(&t, "-"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = t
        .call_as(
            Some(&alice),
            Method::POST,
            &clusters(&t, "us-central1-a"),
            Some(json!({"cluster": {"name": "x"}})),
        )
        .await;
    assert_eq!(a.status, 403);
    let a = t
        .call_as(
            Some(&alice),
            Method::POST,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            Some(json!({"accountId": "abcdefg"})),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body["error"]["message"],
        "Permission 'iam.serviceAccounts.create' denied on resource (or it may not exist)."
    );
    // A project that does not exist answers like a forbidden one.
    let a = t
        .call(
            Method::GET,
            "/cloudresourcemanager/v1/projects/no-such-project",
            None,
        )
        .await;
    assert_eq!(a.status, 403);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn operations_progress_and_block_incompatible_mutations() {
    let t = harness::start(|c| c.operation_duration = Duration::from_millis(1500)).await;
    let op = create_cluster(&t, "c1", false).await;
    assert_eq!(op["operationType"], "CREATE_CLUSTER");
    assert_eq!(op["status"], "RUNNING");
    assert!(op["name"].as_str().unwrap().starts_with("operation-"));
    let number = t
        .call(
            Method::GET,
            &format!("/cloudresourcemanager/v1/projects/{}", t.project),
            None,
        )
        .await
        .body["projectNumber"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        op["selfLink"],
        format!(
            "https://container.googleapis.com/v1/projects/{number}/zones/us-central1-a/operations/{}",
            op["name"].as_str().unwrap()
        )
    );
    let c = t
        .call(
            Method::GET,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(c.body["status"], "PROVISIONING");
    // A second mutation while the create runs.
    let busy = t
        .call(
            Method::PUT,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            Some(json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": format!("{}.svc.id.goog", t.project)}}})),
        )
        .await;
    assert_eq!(busy.status, 400);
    assert_eq!(busy.body["error"]["status"], "FAILED_PRECONDITION");
    assert_eq!(
        busy.body["error"]["errors"][0]["reason"],
        "failedPrecondition"
    );
    assert_eq!(
        busy.body["error"]["message"],
        format!(
            "Cluster is running incompatible operation {}.",
            op["name"].as_str().unwrap()
        )
    );
    assert_eq!(
        busy.body["error"]["details"][0]["reason"],
        "CLUSTER_ALREADY_HAS_OPERATION"
    );
    let done = t.wait_op("us-central1-a", &op).await;
    assert!(done["endTime"].is_string());
    let c = t
        .call(
            Method::GET,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(c.body["status"], "RUNNING");
    assert!(
        c.body["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(
        c.body["masterAuth"]["clusterCaCertificate"]
            .as_str()
            .unwrap()
            .starts_with("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t")
    );
    assert!(
        c.body["nodePools"][0]["config"]
            .get("workloadMetadataConfig")
            .is_none()
    );

    // GKE_METADATA without a workload pool is refused.
    let np = format!(
        "{}/c1/nodePools/default-pool",
        clusters(&t, "us-central1-a")
    );
    let a = t
        .call(
            Method::PUT,
            &np,
            Some(json!({"workloadMetadataConfig": {"mode": "GKE_METADATA"}})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["status"], "INVALID_ARGUMENT");
    // Empty update.
    let a = t
        .call(
            Method::PUT,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            Some(json!({"update": {}})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["error"]["message"],
        "Must specify a field to update."
    );
    assert_eq!(a.body["error"]["errors"][0]["reason"], "badRequest");

    // Enable WI later: existing pools untouched, new pools GKE_METADATA.
    let up = t
        .call(
            Method::PUT,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            Some(json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": format!("{}.svc.id.goog", t.project)}}})),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["operationType"], "UPDATE_CLUSTER");
    let c = t
        .call(
            Method::GET,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(c.body["status"], "RECONCILING");
    t.wait_op("us-central1-a", &up.body).await;
    let c = t
        .call(
            Method::GET,
            &format!("{}/c1", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(
        c.body["workloadIdentityConfig"]["workloadPool"],
        format!("{}.svc.id.goog", t.project)
    );
    assert!(
        c.body["nodePools"][0]["config"]
            .get("workloadMetadataConfig")
            .is_none()
    );
    // Node-pool update: UPGRADE_NODES, PENDING → RUNNING → DONE.
    let a = t.call(Method::PUT, &np, Some(json!({"name": "ignored-if-matching", "workloadMetadataConfig": {"mode": "GKE_METADATA"}}))).await;
    assert_eq!(a.status, 400, "a mismatching name is refused: {}", a.body);
    let a = t.call(Method::PUT, &np, Some(json!({"nodePoolId": "default-pool", "workloadMetadataConfig": {"mode": "GKE_METADATA"}}))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["operationType"], "UPGRADE_NODES");
    assert_eq!(a.body["status"], "PENDING");
    // Poll (not a fixed sleep) until it leaves PENDING: the next state seen is RUNNING.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mid = loop {
        let mid = t
            .call(
                Method::GET,
                &format!(
                    "/container/v1/projects/{}/locations/us-central1-a/operations/{}",
                    t.project,
                    a.body["name"].as_str().unwrap()
                ),
                None,
            )
            .await;
        if mid.body["status"] != "PENDING" {
            break mid;
        }
        assert!(std::time::Instant::now() < deadline, "still PENDING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(mid.body["status"], "RUNNING");
    t.wait_op("us-central1-a", &a.body).await;
    let pool = t.call(Method::GET, &np, None).await;
    assert_eq!(
        pool.body["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    let add = t
        .call(
            Method::POST,
            &format!("{}/c1/nodePools", clusters(&t, "us-central1-a")),
            Some(json!({"nodePool": {"name": "pool-2", "initialNodeCount": 1}})),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.body);
    assert_eq!(add.body["operationType"], "CREATE_NODE_POOL");
    t.wait_op("us-central1-a", &add.body).await;
    let p2 = t
        .call(
            Method::GET,
            &format!("{}/c1/nodePools/pool-2", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(
        p2.body["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    let list = t
        .call(
            Method::GET,
            &format!("{}/c1/nodePools", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(list.body["nodePools"].as_array().unwrap().len(), 2);

    // 404 texts.
    let a = t
        .call(
            Method::GET,
            &format!("{}/nope", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.body["error"]["message"],
        format!(
            "Not found: projects/{}/zones/us-central1-a/clusters/nope.",
            t.project
        )
    );
    let a = t
        .call(
            Method::GET,
            &format!("{}/c1/nodePools/nope", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(
        a.body["error"]["message"],
        "Not found: node pool \"nope\" not found."
    );

    // Created with WI: every pool GKE_METADATA.
    let op = create_cluster(&t, "c2", true).await;
    t.wait_op("us-central1-a", &op).await;
    let c2 = t
        .call(
            Method::GET,
            &format!("{}/c2", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(
        c2.body["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    assert_eq!(
        c2.body["nodeConfig"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    // Duplicate.
    let dup = t
        .call(
            Method::POST,
            &clusters(&t, "us-central1-a"),
            Some(json!({"cluster": {"name": "c2"}})),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body["error"]["message"],
        format!(
            "Already exists: projects/{}/zones/us-central1-a/clusters/c2.",
            t.project
        )
    );
    // Delete: STOPPING then gone; kubeconfig follows.
    let kubeconfig = std::fs::read_to_string(t.dir.path().join("work/kubeconfig")).unwrap();
    assert!(kubeconfig.contains(&format!("gke_{}_us-central1-a_c2", t.project)));
    let del = t
        .call(
            Method::DELETE,
            &format!("{}/c2", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(del.body["operationType"], "DELETE_CLUSTER");
    t.wait_op("us-central1-a", &del.body).await;
    let gone = t
        .call(
            Method::GET,
            &format!("{}/c2", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
    // The kubeconfig is rewritten after the deletion: wait for it (not a fixed time).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let kubeconfig = loop {
        let text = std::fs::read_to_string(t.dir.path().join("work/kubeconfig")).unwrap();
        if !text.contains("_c2") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "c2 stays in the kubeconfig"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(kubeconfig.contains("_c1"));
    let ops = t
        .call(
            Method::GET,
            &format!(
                "/container/v1/projects/{}/locations/-/operations",
                t.project
            ),
            None,
        )
        .await;
    assert!(ops.body["operations"].as_array().unwrap().len() >= 6);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn stale_etag_is_409_aborted_and_noop_keeps_etag() {
    let t = harness::start(|_| {}).await;
    let sa = create_sa(&t, "etag-test").await;
    let email = sa["email"].as_str().unwrap();
    let get = t
        .call(
            Method::POST,
            &format!(
                "{}:getIamPolicy?options.requestedPolicyVersion=3",
                sa_path(&t, email)
            ),
            None,
        )
        .await;
    assert_eq!(get.body, json!({"etag": "ACAB"}));
    let body = json!({"policy": {"etag": "ACAB", "bindings": [{"role": "roles/iam.serviceAccountUser", "members": ["user:bob@example.com"]}]}});
    let first = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, email)),
            Some(body.clone()),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body["etag"].as_str().unwrap().starts_with("Bw"));
    let stale = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, email)),
            Some(body),
        )
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body["error"]["status"], "ABORTED");
    assert_eq!(stale.body["error"]["errors"][0]["reason"], "aborted");
    assert_eq!(
        stale.body["error"]["message"],
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
    );
    let same = json!({"policy": {"etag": first.body["etag"], "bindings": first.body["bindings"]}});
    let again = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, email)),
            Some(same),
        )
        .await;
    assert_eq!(again.body["etag"], first.body["etag"]);
    // Version 3 and conditions survive verbatim.
    let cond = json!({"title": "until 2030", "description": "d", "expression": "request.time < timestamp(\"2030-01-01T00:00:00Z\")"});
    let v3 = json!({"policy": {"version": 3, "etag": first.body["etag"], "bindings": [
        {"role": "roles/iam.serviceAccountUser", "members": ["user:bob@example.com"], "condition": cond}]}});
    let set = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, email)),
            Some(v3),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["version"], 3);
    let get = t
        .call(
            Method::POST,
            &format!(
                "{}:getIamPolicy?options.requestedPolicyVersion=3",
                sa_path(&t, email)
            ),
            None,
        )
        .await;
    assert_eq!(get.body["bindings"][0]["condition"], cond);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn identity_pool_exists_only_after_a_workload_identity_cluster() {
    let t = harness::start(|_| {}).await;
    let sa = create_sa(&t, "pool-test").await;
    let email = sa["email"].as_str().unwrap().to_string();
    let member = format!("serviceAccount:{}.svc.id.goog[team-a/app]", t.project);
    let body = json!({"policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser", "members": [member]}]}});
    let a = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(body.clone()),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        a.body["error"]["message"],
        format!(
            "Identity Pool does not exist ({}.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API.",
            t.project
        )
    );
    // A missing account member.
    let ghost = json!({"policy": {"bindings": [{"role": "roles/iam.serviceAccountUser", "members": [format!("serviceAccount:ghost@{}.iam.gserviceaccount.com", t.project)]}]}});
    let a = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(ghost),
        )
        .await;
    assert_eq!(
        a.body["error"]["message"],
        format!(
            "Service account ghost@{}.iam.gserviceaccount.com does not exist.",
            t.project
        )
    );
    let op = create_cluster(&t, "wi", true).await;
    t.wait_op("us-central1-a", &op).await;
    let a = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(body),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The pool outlives the cluster.
    let del = t
        .call(
            Method::DELETE,
            &format!("{}/wi", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    t.wait_op("us-central1-a", &del.body).await;
    let number = t
        .call(
            Method::GET,
            &format!("/cloudresourcemanager/v1/projects/{}", t.project),
            None,
        )
        .await
        .body["projectNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let principal = json!({"policy": {"etag": a.body["etag"], "bindings": [{"role": "roles/iam.workloadIdentityUser", "members": [
        format!("principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{}.svc.id.goog/subject/ns/team-a/sa/app", t.project)]}]}});
    let b = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(principal),
        )
        .await;
    assert_eq!(b.status, 200, "{}", b.body);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn new_service_accounts_are_invisible_during_the_delay() {
    let t = harness::start(|c| c.visibility_delay = Duration::from_millis(2000)).await;
    let sa = create_sa(&t, "slowpoke").await;
    let email = sa["email"].as_str().unwrap().to_string();
    assert_eq!(sa["uniqueId"].as_str().unwrap().len(), 21);
    let a = t.call(Method::GET, &sa_path(&t, &email), None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"]["message"], "Unknown service account");
    let member = json!({"policy": {"bindings": [{"role": "roles/viewer", "members": [format!("serviceAccount:{email}")]}]}});
    let a = t
        .call(
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:setIamPolicy",
                t.project
            ),
            Some(member.clone()),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["error"]["message"],
        format!("Service account {email} does not exist.")
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = t.call(Method::GET, &sa_path(&t, &email), None).await;
    assert_eq!(a.status, 200);
    let list = t
        .call(
            Method::GET,
            &format!("/iam/v1/projects/{}/serviceAccounts?pageSize=1", t.project),
            None,
        )
        .await;
    assert_eq!(list.body["accounts"].as_array().unwrap().len(), 1);
    let token = list.body["nextPageToken"].as_str().unwrap();
    let page2 = t
        .call(
            Method::GET,
            &format!(
                "/iam/v1/projects/{}/serviceAccounts?pageSize=1&pageToken={token}",
                t.project
            ),
            None,
        )
        .await;
    assert_eq!(page2.body["accounts"].as_array().unwrap().len(), 1);
    assert!(page2.body.get("nextPageToken").is_none());
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn a_recreated_service_account_has_a_new_unique_id_and_no_old_bindings() {
    let t = harness::start(|_| {}).await;
    let sa = create_sa(&t, "phoenix").await;
    let email = sa["email"].as_str().unwrap().to_string();
    let body = json!({"policy": {"bindings": [{"role": "roles/iam.serviceAccountUser", "members": ["user:bob@example.com"]}]}});
    t.call(
        Method::POST,
        &format!("{}:setIamPolicy", sa_path(&t, &email)),
        Some(body),
    )
    .await;
    // Also a project binding naming the account.
    let pol = t
        .call(
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:getIamPolicy",
                t.project
            ),
            Some(json!({})),
        )
        .await;
    let mut bindings = pol.body["bindings"].as_array().cloned().unwrap();
    bindings.push(json!({"role": "roles/viewer", "members": [format!("serviceAccount:{email}")]}));
    let set = t
        .call(
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:setIamPolicy",
                t.project
            ),
            Some(json!({"policy": {"bindings": bindings, "etag": pol.body["etag"]}})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let del = t.call(Method::DELETE, &sa_path(&t, &email), None).await;
    assert_eq!(del.body, json!({}));
    let again = create_sa(&t, "phoenix").await;
    assert_ne!(again["uniqueId"], sa["uniqueId"]);
    let pol = t
        .call(
            Method::POST,
            &format!("{}:getIamPolicy", sa_path(&t, &email)),
            None,
        )
        .await;
    assert_eq!(pol.body, json!({"etag": "ACAB"}));
    let proj = t
        .call(
            Method::POST,
            &format!(
                "/cloudresourcemanager/v1/projects/{}:getIamPolicy",
                t.project
            ),
            Some(json!({})),
        )
        .await;
    let text = proj.body.to_string();
    assert!(
        text.contains(&format!(
            "deleted:serviceAccount:{email}?uid={}",
            sa["uniqueId"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(!text.contains(&format!("\"serviceAccount:{email}\"")));
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn faults_are_injected_with_retry_after_and_counted() {
    let t = harness::start(|c| {
        c.faults = Some("iam.list=429:1,container.*=503:0.5".into());
        c.fault_seed = Some(7);
    })
    .await;
    let a = t
        .call(
            Method::GET,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            None,
        )
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(a.headers.get("retry-after").unwrap(), "1");
    // Other IAM methods are not affected.
    let a = t
        .call(
            Method::GET,
            &sa_path(
                &t,
                &format!("wi-admin@{}.iam.gserviceaccount.com", t.project),
            ),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let mut unavailable = 0;
    for _ in 0..40 {
        let a = t.call(Method::GET, &clusters(&t, "-"), None).await;
        match a.status {
            503 => {
                assert_eq!(a.body["error"]["status"], "UNAVAILABLE");
                unavailable += 1;
            }
            200 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (5..=35).contains(&unavailable),
        "{unavailable} of 40 at p=0.5"
    );
    let stats = t.emu.stats();
    assert_eq!(stats.faults_injected, unavailable + 1);
    assert_eq!(
        stats.faults_by_method["container.projects.locations.clusters.list"],
        unavailable
    );
    let http: Value = reqwest::get(format!("{}/emulator/stats", t.emu.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http["faults_injected"], unavailable + 1);
    no_schema_problems(&t);
    t.emu.shutdown().await;
    println!("faults injected: {}", unavailable + 1);
}

#[tokio::test]
async fn the_concurrent_writer_changes_a_policy_between_read_and_write() {
    let t = harness::start(|c| {
        c.concurrent_writer = Some(1.0);
        c.fault_seed = Some(1);
    })
    .await;
    let sa = create_sa(&t, "contended").await;
    let email = sa["email"].as_str().unwrap().to_string();
    let read = t
        .call(
            Method::POST,
            &format!("{}:getIamPolicy", sa_path(&t, &email)),
            None,
        )
        .await;
    let body = json!({"policy": {"etag": read.body["etag"], "bindings": [{"role": "roles/iam.serviceAccountUser", "members": ["user:bob@example.com"]}]}});
    let write = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(body),
        )
        .await;
    assert_eq!(write.status, 409);
    assert_eq!(write.body["error"]["status"], "ABORTED");
    assert!(t.emu.stats().concurrent_writes >= 1);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_field_never_a_crash() {
    let t = harness::start(|_| {}).await;
    let a = t
        .call(
            Method::POST,
            &clusters(&t, "us-central1-a"),
            Some(json!({"cluster": {"name": 42}})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cluster.name"),
        "{}",
        a.body
    );
    let a = t
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            Some(json!({"serviceAccount": {}})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("accountId"),
        "{}",
        a.body
    );
    let a = t
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{}/serviceAccounts", t.project),
            Some(json!({"accountId": "x"})),
        )
        .await;
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("accountId"),
        "{}",
        a.body
    );
    let a = t
        .call(
            Method::POST,
            &format!(
                "{}:setIamPolicy",
                sa_path(
                    &t,
                    &format!("wi-admin@{}.iam.gserviceaccount.com", t.project)
                )
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("policy"),
        "{}",
        a.body
    );
    let a = t
        .call(
            Method::POST,
            &clusters(&t, "us-central1-a"),
            Some(json!({"cluster": {"name": "ok"}, "surprise": 1})),
        )
        .await;
    assert_eq!(
        a.body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"surprise\": Cannot find field."
    );

    // Extreme numbers are refused or clamped, never overflowed.
    let a = t
        .call(
            Method::POST,
            &clusters(&t, "us-central1-a"),
            Some(json!({"cluster": {"name": "big", "initialNodeCount": i64::MAX}})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialNodeCount")
    );
    let a = t
        .call(
            Method::GET,
            &format!(
                "/iam/v1/projects/{}/serviceAccounts?pageSize=100&pageToken={}",
                t.project,
                usize::MAX
            ),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({}));

    // A small fuzz: malformed bodies at every write endpoint.
    let admin = format!("wi-admin@{}.iam.gserviceaccount.com", t.project);
    let endpoints = [
        (Method::POST, clusters(&t, "us-central1-a")),
        (Method::PUT, format!("{}/x", clusters(&t, "us-central1-a"))),
        (
            Method::POST,
            format!("{}/x/nodePools", clusters(&t, "us-central1-a")),
        ),
        (
            Method::PUT,
            format!("{}/x/nodePools/y", clusters(&t, "us-central1-a")),
        ),
        (
            Method::POST,
            format!("/iam/v1/projects/{}/serviceAccounts", t.project),
        ),
        (Method::PATCH, sa_path(&t, &admin)),
        (
            Method::POST,
            format!("{}:setIamPolicy", sa_path(&t, &admin)),
        ),
        (
            Method::POST,
            format!(
                "/cloudresourcemanager/v1/projects/{}:setIamPolicy",
                t.project
            ),
        ),
        (
            Method::POST,
            format!(
                "/cloudresourcemanager/v3/projects/{}:getIamPolicy",
                t.project
            ),
        ),
        (
            Method::POST,
            format!(
                "/serviceusage/v1/projects/{}/services:batchEnable",
                t.project
            ),
        ),
        (
            Method::POST,
            format!("/iamcredentials/v1/projects/-/serviceAccounts/{admin}:generateAccessToken"),
        ),
    ];
    let bodies: [&'static [u8]; 9] = [
        b"{",
        b"[]",
        b"\"str\"",
        b"{\"cluster\": []}",
        b"{\"policy\": {\"bindings\": [{\"role\": 7}]}}",
        b"{\"policy\": {\"bindings\": \"x\"}}",
        b"{\"update\": {\"desiredWorkloadIdentityConfig\": 3}}",
        b"{\"serviceIds\": [1, 2]}",
        b"\xff\xfe\x00",
    ];
    let mut count = 0;
    for (m, path) in &endpoints {
        for b in bodies {
            let a = t.call_raw(m.clone(), path, b).await;
            assert!(
                (400..500).contains(&a.status),
                "{m} {path} with {:?} → {} {}",
                String::from_utf8_lossy(b),
                a.status,
                a.body
            );
            count += 1;
        }
    }
    assert_eq!(count, endpoints.len() * bodies.len());
    // Still alive.
    assert_eq!(
        t.call(Method::GET, &clusters(&t, "-"), None).await.status,
        200
    );
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn service_usage_and_iam_credentials() {
    let t = harness::start(|_| {}).await;
    let svc = format!(
        "/serviceusage/v1/projects/{}/services/iamcredentials.googleapis.com",
        t.project
    );
    let a = t.call(Method::GET, &svc, None).await;
    assert_eq!(a.body["state"], "DISABLED");
    assert!(a.body.get("parent").is_none());
    let target = create_sa(&t, "target-sa").await;
    let email = target["email"].as_str().unwrap().to_string();
    let gen_path =
        format!("/iamcredentials/v1/projects/-/serviceAccounts/{email}:generateAccessToken");
    let req =
        json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "600s"});
    // Owner alone may not mint tokens.
    let a = t.call(Method::POST, &gen_path, Some(req.clone())).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body["error"]["message"],
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    );
    let grant = json!({"policy": {"bindings": [{"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:admin@wi-emulator.local"]}]}});
    let s = t
        .call(
            Method::POST,
            &format!("{}:setIamPolicy", sa_path(&t, &email)),
            Some(grant),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let a = t.call(Method::POST, &gen_path, Some(req.clone())).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body["error"]["details"][1]["reason"], "SERVICE_DISABLED",
        "{}",
        a.body
    );
    let en = t
        .call(Method::POST, &format!("{svc}:enable"), Some(json!({})))
        .await;
    let op = en.body["name"].as_str().unwrap();
    assert!(op.starts_with("operations/"));
    let done = t
        .call(Method::GET, &format!("/serviceusage/v1/{op}"), None)
        .await;
    assert_eq!(done.body["done"], true);
    assert_eq!(done.body["response"]["service"]["state"], "ENABLED");
    let a = t.call(Method::POST, &gen_path, Some(req)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let minted = a.body["accessToken"].as_str().unwrap().to_string();
    assert!(a.body["expireTime"].is_string());
    // The minted token is the service account: it has no project role.
    let b = t
        .call_as(Some(&minted), Method::GET, &clusters(&t, "-"), None)
        .await;
    assert_eq!(b.status, 403);
    // Wrong project segment.
    let a = t
        .call(
            Method::POST,
            &format!(
                "/iamcredentials/v1/projects/{}/serviceAccounts/{email}:generateAccessToken",
                t.project
            ),
            Some(json!({"scope": ["x"]})),
        )
        .await;
    assert_eq!(a.status, 400);
    // TokenReview webhook.
    let http = reqwest::Client::new();
    let review: Value = http
        .post(format!("{}/authn/tokenreview", t.emu.http_url()))
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t.token}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(
        review["status"]["user"]["username"],
        "admin@wi-emulator.local"
    );
    let review: Value = http
        .post(format!("{}/authn/tokenreview", t.emu.http_url()))
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "nope"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(review["status"]["authenticated"], false);
    // STS refuses tokens no cluster issued, OAuth-style.
    let sts = http
        .post(format!("{}/sts/v1/token", t.emu.http_url()))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("audience", &format!("identitynamespace:{}.svc.id.goog:https://container.googleapis.com/v1/projects/{}/locations/us-central1-a/clusters/c", t.project, t.project)),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("subject_token", "a.b.c"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sts.status(), 400);
    let body: Value = sts.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn the_key_file_works_with_gcp_auth_and_forged_assertions_fail() {
    let t = harness::start(|_| {}).await;
    let key_path = t
        .dir
        .path()
        .join("work/application_default_credentials.json");
    let key: Value = serde_json::from_str(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    assert!(
        key["token_uri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let sa = gcp_auth::CustomServiceAccount::from_file(&key_path).unwrap();
    use gcp_auth::TokenProvider;
    let token = sa
        .token(&["https://www.googleapis.com/auth/cloud-platform"])
        .await
        .unwrap();
    let a = t
        .call_as(Some(token.as_str()), Method::GET, &clusters(&t, "-"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // A JWT signed with another key.
    let other = wi::emulator::crypto::generate_rsa_key().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({"iss": key["client_email"], "aud": key["token_uri"], "iat": now, "exp": now + 3600, "scope": "x"});
    let jwt = wi::emulator::crypto::sign_jwt(
        &other.private_pkcs8_pem,
        key["private_key_id"].as_str().unwrap(),
        &claims,
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(key["token_uri"].as_str().unwrap())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &jwt),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    );
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn the_example_seeds_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = harness::start(|c| c.seed = Some(root.join("examples/quickstart.seed.yaml"))).await;
    assert_eq!(t.project, "wi-demo");
    let list = t.call(Method::GET, &clusters(&t, "-"), None).await;
    let cs = list.body["clusters"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    for c in cs {
        assert!(c.get("workloadIdentityConfig").is_none());
        assert_eq!(c["status"], "RUNNING");
        for p in c["nodePools"].as_array().unwrap() {
            let mode = p["config"]["workloadMetadataConfig"]["mode"].as_str();
            assert!(mode.is_none() || mode == Some("GCE_METADATA"), "{p}");
        }
    }
    let kubeconfig = std::fs::read_to_string(t.dir.path().join("work/kubeconfig")).unwrap();
    assert!(kubeconfig.contains("gke_wi-demo_us-central1-a_alpha"));
    assert!(kubeconfig.contains("gke_wi-demo_europe-west1-b_beta"));
    t.emu.shutdown().await;

    let t = harness::start(|c| c.seed = Some(root.join("examples/emulator.seed.yaml"))).await;
    assert_eq!(t.project, "shop-prod");
    let sa = t
        .call(
            Method::POST,
            &format!(
                "{}:getIamPolicy",
                sa_path(&t, "catalog-reader@shop-prod.iam.gserviceaccount.com")
            ),
            None,
        )
        .await;
    assert_eq!(
        sa.body["bindings"][0]["members"][0],
        "serviceAccount:shop-prod.svc.id.goog[shop/catalog]"
    );
    let proj = t
        .call(
            Method::POST,
            "/cloudresourcemanager/v1/projects/shop-prod:getIamPolicy",
            Some(json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await;
    assert_eq!(proj.body["version"], 3);
    let np = t
        .call(
            Method::GET,
            "/container/v1/projects/shop-prod/locations/europe-west1-b/clusters/prod-eu/nodePools",
            None,
        )
        .await;
    assert_eq!(
        np.body["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    assert_eq!(
        np.body["nodePools"][1]["config"]["workloadMetadataConfig"]["mode"],
        "GCE_METADATA"
    );
    let svc = t
        .call(
            Method::GET,
            "/serviceusage/v1/projects/shop-prod/services/iamcredentials.googleapis.com",
            None,
        )
        .await;
    assert_eq!(svc.body["state"], "ENABLED");
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn service_account_keys_mint_working_key_files() {
    use base64::Engine;
    use gcp_auth::TokenProvider;
    let t = harness::start(|_| {}).await;
    let sa = create_sa(&t, "keyed-sa").await;
    let email = sa["email"].as_str().unwrap().to_string();
    let keys = format!("/iam/v1/projects/-/serviceAccounts/{email}/keys");
    let created = t
        .call(Method::POST, &keys, Some(json!({"keyAlgorithm": "KEY_ALG_RSA_2048", "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE"})))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let file = base64::engine::general_purpose::STANDARD
        .decode(created.body["privateKeyData"].as_str().unwrap())
        .unwrap();
    let provider =
        gcp_auth::CustomServiceAccount::from_json(std::str::from_utf8(&file).unwrap()).unwrap();
    let token = provider
        .token(&["https://www.googleapis.com/auth/cloud-platform"])
        .await
        .unwrap();
    let me = t
        .call_as(
            Some(token.as_str()),
            Method::GET,
            &sa_path(&t, &email),
            None,
        )
        .await;
    // The key's account has no role: authenticated, then refused.
    assert_eq!(me.status, 403, "{}", me.body);
    let name = created.body["name"].as_str().unwrap();
    let id = name.rsplit('/').next().unwrap();
    let list = t
        .call(
            Method::GET,
            &format!(
                "/iam/v1/projects/{}/serviceAccounts/{email}/keys",
                t.project
            ),
            None,
        )
        .await;
    assert_eq!(list.body["keys"].as_array().unwrap().len(), 1);
    assert!(list.body["keys"][0].get("privateKeyData").is_none());
    let del = t.call(Method::DELETE, &format!("{keys}/{id}"), None).await;
    assert_eq!(del.body, json!({}));
    let gone = t.call(Method::GET, &format!("{keys}/{id}"), None).await;
    assert_eq!(gone.status, 404);
    let bad = t
        .call(
            Method::POST,
            &keys,
            Some(json!({"privateKeyType": "TYPE_PKCS12_FILE"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("private_key_type")
    );
    no_schema_problems(&t);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let t = harness::start(|c| c.latency = Some(Duration::from_millis(150))).await;
    let started = std::time::Instant::now();
    let a = t.call(Method::GET, &clusters(&t, "-"), None).await;
    assert_eq!(a.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    t.emu.shutdown().await;
}

#[tokio::test]
async fn faults_reach_the_kubernetes_api_too() {
    use base64::Engine;
    let t = harness::start(|c| c.faults = Some("kubernetes.*=503:1".into())).await;
    let op = create_cluster(&t, "faulty", false).await;
    t.wait_op("us-central1-a", &op).await;
    let c = t
        .call(
            Method::GET,
            &format!("{}/faulty", clusters(&t, "us-central1-a")),
            None,
        )
        .await;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            c.body["masterAuth"]["clusterCaCertificate"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let kube = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let resp = kube
        .get(format!(
            "https://{}/api/v1/namespaces",
            c.body["endpoint"].as_str().unwrap()
        ))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert_eq!(t.emu.stats().faults_by_method["kubernetes.get"], 1);
    no_schema_problems(&t);
    t.emu.shutdown().await;
}
