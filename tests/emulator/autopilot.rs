//! GKE Autopilot in the emulator, as the real one behaves: what `gcloud
//! container clusters create-auto` sends makes a cluster with the project's
//! workload pool and every pool on the GKE metadata server, and GKE's
//! refusals of node-pool calls and of turning Workload Identity off.

use crate::harness;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn autopilot_clusters_keep_workload_identity_and_refuse_node_pool_calls() {
    let t = harness::start(|_| {}).await;
    let clusters = format!(
        "/container/v1/projects/{}/locations/us-central1/clusters",
        t.project
    );
    // The body `gcloud container clusters create-auto auto1 --region us-central1` sends.
    let body = json!({"cluster": {
        "autopilot": {"enabled": true},
        "ipAllocationPolicy": {"createSubnetwork": false, "useIpAliases": true},
        "name": "auto1",
        "nodePools": [{"config": {"oauthScopes": ["https://www.googleapis.com/auth/devstorage.read_only"]}, "initialNodeCount": 1, "name": "default-pool"}]
    }, "parent": format!("projects/{}/locations/us-central1", t.project)});
    let op = t.call(Method::POST, &clusters, Some(body.clone())).await;
    assert_eq!(op.status, 200, "{}", op.body);
    t.wait_op("us-central1", &op.body).await;

    // A zone is refused: Autopilot clusters are regional.
    let zonal = t
        .call(
            Method::POST,
            &format!(
                "/container/v1/projects/{}/locations/us-central1-a/clusters",
                t.project
            ),
            Some(json!({"cluster": {"name": "auto-zonal", "autopilot": {"enabled": true}}})),
        )
        .await;
    assert_eq!(zonal.status, 400, "{}", zonal.body);
    assert_eq!(zonal.body["error"]["status"], "INVALID_ARGUMENT");

    let cluster = t
        .call(Method::GET, &format!("{clusters}/auto1"), None)
        .await;
    assert_eq!(cluster.status, 200);
    assert_eq!(cluster.body["autopilot"]["enabled"], true);
    assert_eq!(
        cluster.body["workloadIdentityConfig"]["workloadPool"],
        format!("{}.svc.id.goog", t.project)
    );
    assert_eq!(
        cluster.body["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    let listed = t.call(Method::GET, &clusters, None).await;
    assert_eq!(listed.body["clusters"][0]["autopilot"]["enabled"], true);

    // Every node-pool call: GKE's 400 for Autopilot pools.
    let pool = format!("{clusters}/auto1/nodePools/default-pool");
    let calls = [
        (Method::GET, format!("{clusters}/auto1/nodePools"), None),
        (Method::GET, pool.clone(), None),
        (
            Method::POST,
            format!("{clusters}/auto1/nodePools"),
            Some(json!({"nodePool": {"name": "extra", "initialNodeCount": 1}})),
        ),
        (
            Method::PUT,
            pool.clone(),
            Some(json!({"workloadMetadataConfig": {"mode": "GCE_METADATA"}})),
        ),
        (
            Method::POST,
            format!("{pool}:setManagement"),
            Some(json!({"management": {"autoRepair": false}})),
        ),
        (Method::DELETE, pool.clone(), None),
        (
            Method::PUT,
            format!("{clusters}/auto1"),
            Some(
                json!({"update": {"desiredNodePoolId": "default-pool", "desiredImageType": "UBUNTU_CONTAINERD"}}),
            ),
        ),
    ];
    for (method, path, body) in calls {
        let a = t.call(method.clone(), &path, body).await;
        assert_eq!(a.status, 400, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["status"], "INVALID_ARGUMENT", "{path}");
        assert_eq!(
            a.body["error"]["message"], "Autopilot node pools cannot be accessed or modified.",
            "{method} {path}"
        );
    }

    // Turning Workload Identity off is refused; the pool stays.
    let off = t
        .call(
            Method::PUT,
            &format!("{clusters}/auto1"),
            Some(json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": ""}}})),
        )
        .await;
    assert_eq!(off.status, 400, "{}", off.body);
    assert_eq!(off.body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        off.body["error"]["message"],
        "Workload Identity cannot be disabled on Autopilot clusters."
    );
    let after = t
        .call(Method::GET, &format!("{clusters}/auto1"), None)
        .await;
    assert_eq!(
        after.body["workloadIdentityConfig"],
        cluster.body["workloadIdentityConfig"]
    );
    assert_eq!(after.body["nodePools"], cluster.body["nodePools"]);

    // A Standard cluster still takes setManagement.
    let std_op = t
        .call(
            Method::POST,
            &clusters,
            Some(json!({"cluster": {"name": "std", "initialNodeCount": 1}})),
        )
        .await;
    t.wait_op("us-central1", &std_op.body).await;
    let managed = t
        .call(
            Method::POST,
            &format!("{clusters}/std/nodePools/default-pool:setManagement"),
            Some(json!({"management": {"autoRepair": true, "autoUpgrade": false}})),
        )
        .await;
    assert_eq!(managed.status, 200, "{}", managed.body);
    t.wait_op("us-central1", &managed.body).await;
    let std_pool = t
        .call(
            Method::GET,
            &format!("{clusters}/std/nodePools/default-pool"),
            None,
        )
        .await;
    assert_eq!(std_pool.body["management"], json!({"autoRepair": true}));
    let p = t.schema_problems();
    assert!(p.is_empty(), "{}", p.join("\n"));
    t.emu.shutdown().await;
}
