//! Quota mode (`--quota`) and the request accounting over real HTTPS: a Google
//! API past its rate answers Google's 429 RESOURCE_EXHAUSTED (no
//! Retry-After), per API and project; a cluster past its requests in flight
//! answers the apiserver's 429 TooManyRequests with `Retry-After: 1`; every
//! request is counted by method.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;

use crate::harness::world::{self, TestWorld};

#[tokio::test]
async fn a_google_api_past_its_rate_answers_resource_exhausted() {
    let emu = world::start(|c| c.quota = Some("iam=2".into())).await;
    let list = format!("/iam/v1/projects/{}/serviceAccounts", emu.project);
    // The bucket holds one second: two pass, the third is refused.
    for _ in 0..2 {
        assert_eq!(emu.call(Method::GET, &list, None).await.status, 200);
    }
    let refused = emu.call(Method::GET, &list, None).await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.headers.get("retry-after").is_none(),
        "Google sends no Retry-After"
    );
    // Other APIs, and other projects of the same API, have their own quota.
    let clusters = format!(
        "/container/v1/projects/{}/locations/-/clusters",
        emu.project
    );
    assert_eq!(emu.call(Method::GET, &clusters, None).await.status, 200);
    let other = emu
        .call(
            Method::GET,
            "/iam/v1/projects/another-project/serviceAccounts",
            None,
        )
        .await;
    assert_ne!(other.status, 429, "{:?}", other.body);

    let number = emu
        .call(
            Method::GET,
            &format!("/cloudresourcemanager/v1/projects/{}", emu.project),
            None,
        )
        .await
        .body["projectNumber"]
        .as_str()
        .expect("project number")
        .to_string();
    let body = serde_json::to_string_pretty(&refused.body)
        .expect("json")
        .replace(&number, "[NUMBER]");
    insta::assert_snapshot!(body);

    let stats = emu.emu.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.throttled_by_api.get("iam"), Some(&1));
    assert_eq!(
        stats.calls.get("iam.projects.serviceAccounts.list"),
        Some(&4)
    );
    assert_eq!(
        stats
            .calls
            .get("container.projects.locations.clusters.list"),
        Some(&1)
    );
}

#[tokio::test]
async fn a_cluster_past_its_requests_in_flight_answers_too_many_requests() {
    let w = TestWorld::start_with("examples/quickstart.seed.yaml", |c| {
        c.quota = Some("kubernetes=1".into());
        c.latency = Some(Duration::from_millis(300));
    })
    .await;
    let gcp = w.gcp().await;
    let key = wi::spec::ClusterKey {
        project: w.project.clone(),
        location: "us-central1-a".into(),
        name: "alpha".into(),
    };
    let cluster = gcp.get_cluster(&key).await.expect("get").expect("cluster");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            cluster
                .master_auth
                .as_ref()
                .and_then(|m| m.cluster_ca_certificate.clone())
                .expect("CA"),
        )
        .expect("base64 CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
        .build()
        .expect("client");
    let url = format!(
        "https://{}/api/v1/namespaces",
        cluster.endpoint.expect("endpoint")
    );
    let token = w.emulator.as_ref().expect("emulator").admin_token();
    let get = || http.get(&url).bearer_auth(&token).send();
    // Both are in flight at once (300 ms each); one gets the only slot.
    let (a, b) = tokio::join!(get(), get());
    let mut answers = [a.expect("answer"), b.expect("answer")];
    answers.sort_by_key(|r| r.status().as_u16());
    let [ok, refused] = answers;
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or("")),
        Some("1")
    );
    let body: serde_json::Value = refused.json().await.expect("Status body");
    insta::assert_json_snapshot!(body);
    // The slot is free again.
    assert_eq!(get().await.expect("answer").status().as_u16(), 200);

    let stats = w.emulator.as_ref().expect("emulator").stats();
    assert_eq!(stats.throttled_by_api.get("kubernetes"), Some(&1));
    assert_eq!(stats.calls.get("k8s list namespaces"), Some(&3));
    w.stop().await;
}
