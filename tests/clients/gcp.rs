//! Request-level tests of the Google REST clients against a scripted fake
//! Google endpoint (an axum server on 127.0.0.1:0, one per test). Each test
//! scripts the answers and asserts the exact method, path, query and body the
//! client sent, plus retries, etag conflicts, operations and auth.
//! This is NOT the emulator: it knows nothing beyond what each test scripts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;
use wi::gcp::types::{Binding, IamPolicy, Operation};
use wi::gcp::{
    ClientOptions, Endpoints, GcpClient, GcpError, PolicyTarget, RetryPolicy, StaticTokenSource,
    TokenSource, token_source_from_env,
};
use wi::spec::ClusterKey;

const TOKEN: &str = "ya29.test-token-must-never-leak";

/// One request as the fake Google endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    body: Value,
    raw_body: String,
}

impl Seen {
    fn query_map(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }
}

/// A scripted answer.
struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body,
        headers: vec![],
    }
}

fn google_error(status: u16, code: &str, reason: &str, message: &str) -> Reply {
    Reply {
        status,
        body: json!({"error": {"code": status, "message": message, "status": code,
            "errors": [{"domain": "global", "message": message, "reason": reason}]}}),
        headers: vec![],
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// The scripted fake Google endpoint.
struct FakeGoogle {
    base: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeGoogle {
    async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let (s, h) = (seen.clone(), handler.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, handler) = (s.clone(), h.clone());
                async move {
                    let raw_body = String::from_utf8_lossy(&body).into_owned();
                    let req = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: uri.query().map(str::to_owned),
                        auth: header(&headers, "authorization"),
                        content_type: header(&headers, "content-type"),
                        content_length: header(&headers, "content-length"),
                        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
                        raw_body,
                    };
                    seen.lock().unwrap().push(req.clone());
                    let reply = handler(&req);
                    let mut resp: Response = (
                        StatusCode::from_u16(reply.status).unwrap(),
                        [("content-type", "application/json; charset=UTF-8")],
                        reply.body.to_string(),
                    )
                        .into_response();
                    for (k, v) in reply.headers {
                        resp.headers_mut().insert(k, v.parse().unwrap());
                    }
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self) -> GcpClient {
        self.client_with(RetryPolicy::fast())
    }

    fn client_with(&self, retry: RetryPolicy) -> GcpClient {
        GcpClient::new(
            Endpoints::all_under(&self.base).unwrap(),
            Arc::new(StaticTokenSource::new(
                SecretString::from(TOKEN),
                "test token",
            )),
            ClientOptions {
                retry,
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn key() -> ClusterKey {
    ClusterKey {
        project: "p1".into(),
        location: "us-central1-a".into(),
        name: "c1".into(),
    }
}

const CLUSTER: &str = "/container/v1/projects/p1/locations/us-central1-a/clusters/c1";

#[tokio::test]
async fn get_cluster_sends_bearer_and_maps_404_to_none() {
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with("/c1") {
            ok(json!({"name": "c1", "location": "us-central1-a", "status": "RUNNING",
                "workloadIdentityConfig": {"workloadPool": "p1.svc.id.goog"},
                "nodePools": [{"name": "default-pool", "config": {"workloadMetadataConfig": {"mode": "GKE_METADATA"}}}]}))
        } else {
            google_error(
                404,
                "NOT_FOUND",
                "notFound",
                "Not found: projects/p1/zones/us-central1-a/clusters/c2.",
            )
        }
    })
    .await;
    let client = fake.client();
    let cluster = client.get_cluster(&key()).await.unwrap().unwrap();
    assert_eq!(cluster.workload_pool(), Some("p1.svc.id.goog"));
    assert_eq!(cluster.node_pools[0].metadata_mode(), Some("GKE_METADATA"));
    let missing = ClusterKey {
        name: "c2".into(),
        ..key()
    };
    assert!(client.get_cluster(&missing).await.unwrap().is_none());
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "404 must not be retried");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, CLUSTER);
    assert_eq!(seen[0].query, None);
    assert_eq!(seen[0].auth.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    assert_eq!(
        seen[1].path,
        "/container/v1/projects/p1/locations/us-central1-a/clusters/c2"
    );
}

#[tokio::test]
async fn cluster_writes_have_the_documented_bodies() {
    let fake = FakeGoogle::start(|r| {
        let kind = if r.path.contains("nodePools") {
            "UPGRADE_NODES"
        } else if r.method == "POST" {
            "CREATE_CLUSTER"
        } else {
            "UPDATE_CLUSTER"
        };
        ok(json!({"name": "operation-1", "operationType": kind, "status": "RUNNING"}))
    })
    .await;
    let client = fake.client();
    let op = client
        .create_cluster(&key(), json!({"initialNodeCount": 1}))
        .await
        .unwrap();
    assert_eq!(op.operation_type, "CREATE_CLUSTER");
    client
        .set_workload_pool(&key(), Some("p1.svc.id.goog"))
        .await
        .unwrap();
    client.set_workload_pool(&key(), None).await.unwrap();
    let op = client
        .set_node_pool_metadata_mode(&key(), "pool-a", "GKE_METADATA")
        .await
        .unwrap();
    assert_eq!(op.operation_type, "UPGRADE_NODES");

    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        (
            "POST",
            "/container/v1/projects/p1/locations/us-central1-a/clusters"
        )
    );
    assert_eq!(
        seen[0].body,
        json!({"cluster": {"initialNodeCount": 1, "name": "c1"},
               "parent": "projects/p1/locations/us-central1-a"})
    );
    assert!(
        seen[0]
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("PUT", CLUSTER)
    );
    assert_eq!(
        seen[1].body,
        json!({"name": "projects/p1/locations/us-central1-a/clusters/c1",
               "update": {"desiredWorkloadIdentityConfig": {"workloadPool": "p1.svc.id.goog"}}})
    );
    assert_eq!(
        seen[2].body["update"]["desiredWorkloadIdentityConfig"],
        json!({"workloadPool": ""}),
        "disabling sends the empty string, not an absent field"
    );
    assert_eq!(seen[3].method, "PUT");
    assert_eq!(seen[3].path, format!("{CLUSTER}/nodePools/pool-a"));
    assert_eq!(
        seen[3].body,
        json!({"name": "projects/p1/locations/us-central1-a/clusters/c1/nodePools/pool-a",
               "workloadMetadataConfig": {"mode": "GKE_METADATA"}})
    );
}

#[tokio::test]
async fn list_service_accounts_follows_every_page() {
    let fake = FakeGoogle::start(|r| {
        let q = r.query_map();
        assert_eq!(q.get("pageSize").map(String::as_str), Some("100"));
        let (ids, next): (std::ops::Range<usize>, Option<&str>) =
            match q.get("pageToken").map(String::as_str) {
                None => (0..100, Some("t1")),
                Some("t1") => (100..200, Some("t2")),
                Some("t2") => (200..203, None),
                other => panic!("unexpected page token {other:?}"),
            };
        let accounts: Vec<Value> = ids
            .map(|i| json!({"email": format!("sa-{i:04}@p1.iam.gserviceaccount.com"), "projectId": "p1"}))
            .collect();
        let mut body = json!({ "accounts": accounts });
        if let Some(n) = next {
            body["nextPageToken"] = json!(n);
        }
        ok(body)
    })
    .await;
    let accounts = fake.client().list_service_accounts("p1").await.unwrap();
    assert_eq!(accounts.len(), 203);
    let unique: BTreeSet<_> = accounts.iter().map(|a| a.email.clone()).collect();
    assert_eq!(unique.len(), 203);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|r| r.method == "GET" && r.path == "/iam/v1/projects/p1/serviceAccounts")
    );
    assert_eq!(seen[0].query.as_deref(), Some("pageSize=100"));
    assert_eq!(seen[2].query.as_deref(), Some("pageSize=100&pageToken=t2"));
}

#[tokio::test]
async fn service_account_calls_have_the_documented_shapes() {
    let fake = FakeGoogle::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p.ends_with("/gone@p1.iam.gserviceaccount.com") => {
            google_error(404, "NOT_FOUND", "notFound", "Unknown service account")
        }
        ("DELETE", p) if p.contains("gone@") => {
            google_error(404, "NOT_FOUND", "notFound", "Unknown service account")
        }
        ("DELETE", _) => ok(json!({})),
        ("POST", p) if p.ends_with(":getIamPolicy") => ok(json!({"version": 1, "etag": "BwX1",
            "bindings": [{"role": "roles/iam.workloadIdentityUser", "members": ["serviceAccount:p1.svc.id.goog[ns/ksa]"]}]})),
        ("POST", p) if p.ends_with(":setIamPolicy") => {
            let mut p = r.body["policy"].clone();
            p["etag"] = json!("BwX2");
            ok(p)
        }
        ("PATCH", _) => ok(json!({"name": "projects/p1/serviceAccounts/gsa-a@p1.iam.gserviceaccount.com",
            "description": r.body["serviceAccount"]["description"].clone()})),
        _ => ok(json!({"name": "projects/p1/serviceAccounts/gsa-a@p1.iam.gserviceaccount.com",
            "projectId": "p1", "uniqueId": "1234", "email": "gsa-a@p1.iam.gserviceaccount.com",
            "displayName": "A"})),
    })
    .await;
    let c = fake.client();
    let email = "gsa-a@p1.iam.gserviceaccount.com";
    let created = c
        .create_service_account("p1", "gsa-a", Some("A"), Some("managed by wi"))
        .await
        .unwrap();
    assert_eq!(created.email, email);
    assert_eq!(
        c.get_service_account(email)
            .await
            .unwrap()
            .unwrap()
            .unique_id,
        "1234"
    );
    assert!(
        c.get_service_account("gone@p1.iam.gserviceaccount.com")
            .await
            .unwrap()
            .is_none()
    );
    let patched = c
        .patch_service_account(email, None, Some("wi: owned"))
        .await
        .unwrap();
    assert_eq!(patched.description.as_deref(), Some("wi: owned"));
    assert!(matches!(
        c.patch_service_account(email, None, None).await,
        Err(GcpError::Config(_))
    ));
    c.delete_service_account(email).await.unwrap();
    c.delete_service_account("gone@p1.iam.gserviceaccount.com")
        .await
        .unwrap();
    let policy = c.get_service_account_iam_policy(email).await.unwrap();
    assert_eq!(policy.etag.as_deref(), Some("BwX1"));
    let written = c
        .set_service_account_iam_policy(email, &policy)
        .await
        .unwrap();
    assert_eq!(written.etag.as_deref(), Some("BwX2"));

    let seen = fake.seen();
    let sa = format!("/iam/v1/projects/p1/serviceAccounts/{email}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/iam/v1/projects/p1/serviceAccounts");
    assert_eq!(
        seen[0].body,
        json!({"accountId": "gsa-a", "serviceAccount": {"displayName": "A", "description": "managed by wi"}})
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", sa.as_str())
    );
    assert_eq!(seen[3].method, "PATCH");
    assert_eq!(seen[3].path, sa);
    assert_eq!(
        seen[3].body,
        json!({"serviceAccount": {"description": "wi: owned",
                                  "name": format!("projects/p1/serviceAccounts/{email}")},
               "updateMask": "description"})
    );
    assert_eq!(seen.len(), 8, "the empty patch must not reach the server");
    assert_eq!(
        (seen[4].method.as_str(), seen[4].path.as_str()),
        ("DELETE", sa.as_str())
    );
    // getIamPolicy: POST, version in the query, no body.
    assert_eq!(seen[6].method, "POST");
    assert_eq!(seen[6].path, format!("{sa}:getIamPolicy"));
    assert_eq!(
        seen[6].query.as_deref(),
        Some("options.requestedPolicyVersion=3")
    );
    assert_eq!(seen[6].raw_body, "");
    // Google front ends answer 411 to a POST without Content-Length.
    assert_eq!(seen[6].content_length.as_deref(), Some("0"));
    assert_eq!(seen[7].path, format!("{sa}:setIamPolicy"));
    assert_eq!(seen[7].body["updateMask"], json!("bindings,etag"));
    assert_eq!(seen[7].body["policy"]["etag"], json!("BwX1"));
    assert_eq!(
        seen[7].body["policy"]["bindings"][0]["members"][0],
        json!("serviceAccount:p1.svc.id.goog[ns/ksa]")
    );
}

#[tokio::test]
async fn project_and_service_usage_calls() {
    let fake = FakeGoogle::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/cloudresourcemanager/v1/projects/p1") => {
            ok(json!({"projectId": "p1", "projectNumber": "123456789012", "lifecycleState": "ACTIVE"}))
        }
        ("GET", "/cloudresourcemanager/v1/projects/nope") => {
            google_error(404, "NOT_FOUND", "notFound", "not found")
        }
        ("POST", "/cloudresourcemanager/v1/projects/p1:getIamPolicy") => {
            ok(json!({"version": 1, "etag": "BwP1", "bindings": [], "auditConfigs": [{"service": "allServices"}]}))
        }
        ("POST", "/cloudresourcemanager/v1/projects/p1:setIamPolicy") => ok(r.body["policy"].clone()),
        ("GET", "/serviceusage/v1/projects/p1/services/iamcredentials.googleapis.com") => {
            ok(json!({"name": "projects/123456789012/services/iamcredentials.googleapis.com", "state": "DISABLED"}))
        }
        ("POST", "/serviceusage/v1/projects/p1/services/iamcredentials.googleapis.com:enable") => {
            ok(json!({"name": "operations/acf.p2-123"}))
        }
        ("GET", "/serviceusage/v1/operations/acf.p2-123") => ok(json!({"name": "operations/acf.p2-123", "done": true,
            "response": {"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse"}})),
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let c = fake.client();
    let p = c.get_project("p1").await.unwrap().unwrap();
    assert_eq!(p.project_number, "123456789012");
    assert!(c.get_project("nope").await.unwrap().is_none());
    let policy = c.get_project_iam_policy("p1").await.unwrap();
    assert_eq!(
        policy.rest["auditConfigs"][0]["service"],
        json!("allServices")
    );
    c.set_project_iam_policy("p1", &policy).await.unwrap();
    let svc = c
        .get_service("p1", "iamcredentials.googleapis.com")
        .await
        .unwrap();
    assert_eq!(svc.state, "DISABLED");
    c.enable_service(
        "p1",
        "iamcredentials.googleapis.com",
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    let seen = fake.seen();
    assert_eq!(
        seen[2].body,
        json!({"options": {"requestedPolicyVersion": 3}})
    );
    assert_eq!(seen[3].body["updateMask"], json!("bindings,etag"));
    assert_eq!(
        seen[3].body["policy"]["auditConfigs"],
        json!([{"service": "allServices"}]),
        "unknown policy fields are carried through"
    );
    assert_eq!(seen[5].body, json!({}));
    assert_eq!(seen[6].path, "/serviceusage/v1/operations/acf.p2-123");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let fake = FakeGoogle::start(move |_| {
        if m.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut r = google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "rateLimitExceeded",
                "Quota exceeded",
            );
            r.headers.push(("retry-after", "1".into()));
            r
        } else {
            ok(json!({"projectId": "p1"}))
        }
    })
    .await;
    let c = fake.client();
    let start = Instant::now();
    c.get_project("p1").await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "waited only {waited:?}: Retry-After ignored (the fast policy alone waits ~5 ms)"
    );
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert_eq!(c.stats().retries, 1);
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let fake = FakeGoogle::start(move |r| {
        if r.path.ends_with("/bad") {
            return google_error(400, "INVALID_ARGUMENT", "badRequest", "Invalid project id.");
        }
        match m.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => google_error(
                503,
                "UNAVAILABLE",
                "backendError",
                "The service is currently unavailable.",
            ),
            _ => ok(json!({"projectId": "p1"})),
        }
    })
    .await;
    let c = fake.client();
    c.get_project("p1").await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(c.stats().retries, 2);

    let err = c.get_project("bad").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(!err.is_retryable());
    assert_eq!(fake.seen().len(), 4, "a 400 is sent exactly once");
    assert_eq!(c.stats().retries, 2);
    match err {
        GcpError::Api {
            service,
            method,
            code,
            reason,
            ..
        } => {
            assert_eq!(service, "cloudresourcemanager");
            assert_eq!(method, "projects.get");
            assert_eq!(code, "INVALID_ARGUMENT");
            assert_eq!(reason.as_deref(), Some("badRequest"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn persistent_503_gives_up_at_the_deadline() {
    let fake =
        FakeGoogle::start(|_| google_error(503, "UNAVAILABLE", "backendError", "down")).await;
    let c = fake.client_with(RetryPolicy {
        max_elapsed: Duration::from_millis(300),
        ..RetryPolicy::fast()
    });
    let start = Instant::now();
    let err = c.get_project("p1").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    // It gave up (at 300 ms) instead of retrying on; the bound is loose so a
    // loaded machine does not fail it.
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(fake.seen().len() >= 3);
}

/// A fake IAM policy store with real etag semantics and a foreign writer that
/// strikes between the client's first read and its write.
#[tokio::test]
async fn etag_conflict_rereads_and_keeps_the_foreign_member() {
    struct State {
        policy: Value,
        etag: u32,
        reads: u32,
    }
    let state = Arc::new(Mutex::new(State {
        policy: json!({"version": 1, "bindings": [
            {"role": "roles/iam.workloadIdentityUser", "members": ["serviceAccount:p1.svc.id.goog[a/x]"]}]}),
        etag: 1,
        reads: 0,
    }));
    let s = state.clone();
    let fake = FakeGoogle::start(move |r| {
        let mut st = s.lock().unwrap();
        if r.path.ends_with(":getIamPolicy") {
            st.reads += 1;
            let mut p = st.policy.clone();
            p["etag"] = json!(format!("BwE{}", st.etag));
            if st.reads == 1 {
                // Another pipeline writes right after our first read.
                let members = st.policy["bindings"][0]["members"].as_array_mut().unwrap();
                members.push(json!("user:foreign@example.com"));
                st.etag += 1;
            }
            ok(p)
        } else {
            let sent = r.body["policy"].clone();
            if sent["etag"] != json!(format!("BwE{}", st.etag)) {
                return google_error(409, "ABORTED", "aborted",
                    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.");
            }
            st.policy = sent;
            st.etag += 1;
            let mut p = st.policy.clone();
            p["etag"] = json!(format!("BwE{}", st.etag));
            ok(p)
        }
    })
    .await;
    let c = fake.client();
    let ours = "serviceAccount:p1.svc.id.goog[b/y]";
    let edits = Arc::new(AtomicUsize::new(0));
    let e2 = edits.clone();
    let edit = move |p: &mut IamPolicy| {
        e2.fetch_add(1, Ordering::SeqCst);
        let role = "roles/iam.workloadIdentityUser";
        match p.bindings.iter_mut().find(|b| b.role == role) {
            Some(b) if b.members.iter().any(|m| m == ours) => false,
            Some(b) => {
                b.members.push(ours.into());
                true
            }
            None => {
                p.bindings.push(Binding {
                    role: role.into(),
                    members: vec![ours.into()],
                    ..Default::default()
                });
                true
            }
        }
    };
    let target = PolicyTarget::ServiceAccount {
        email: "gsa@p1.iam.gserviceaccount.com".into(),
    };
    let final_policy = c
        .modify_iam_policy(&target, Duration::from_secs(5), &edit)
        .await
        .unwrap();
    let members = &final_policy.bindings[0].members;
    assert!(
        members.contains(&"user:foreign@example.com".to_string()),
        "{members:?}"
    );
    assert!(members.contains(&ours.to_string()));
    assert!(members.contains(&"serviceAccount:p1.svc.id.goog[a/x]".to_string()));
    assert_eq!(
        edits.load(Ordering::SeqCst),
        2,
        "edit re-applied on the fresh read"
    );

    let sets: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|r| r.path.ends_with(":setIamPolicy"))
        .collect();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        sets[0].body["policy"]["etag"],
        json!("BwE1"),
        "first write: the etag read"
    );
    assert_eq!(
        sets[1].body["policy"]["etag"],
        json!("BwE2"),
        "second write: the fresh etag"
    );
    assert!(
        sets[1].body["policy"]["bindings"][0]["members"]
            .as_array()
            .unwrap()
            .contains(&json!("user:foreign@example.com")),
        "the second write is computed from the fresh read"
    );
    assert!(c.stats().retries >= 1);

    // Already converged: edit returns false, nothing is written.
    let before = fake.seen().len();
    let unchanged = c
        .modify_iam_policy(&target, Duration::from_secs(5), &edit)
        .await
        .unwrap();
    assert_eq!(unchanged.etag.as_deref(), Some("BwE3"));
    let after = fake.seen();
    assert_eq!(after.len(), before + 1);
    assert!(after.last().unwrap().path.ends_with(":getIamPolicy"));
}

#[tokio::test]
async fn endless_etag_conflicts_end_in_a_timeout() {
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with(":getIamPolicy") {
            ok(json!({"etag": "BwZ"}))
        } else {
            google_error(
                409,
                "ABORTED",
                "aborted",
                "There were concurrent policy changes.",
            )
        }
    })
    .await;
    let c = fake.client();
    let err = c
        .modify_iam_policy(
            &PolicyTarget::Project {
                project: "p1".into(),
            },
            Duration::from_millis(300),
            &|p: &mut IamPolicy| {
                p.bindings.push(Binding {
                    role: "roles/viewer".into(),
                    members: vec!["user:a@example.com".into()],
                    ..Default::default()
                });
                true
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GcpError::Timeout { .. }), "{err:?}");
    let seen = fake.seen();
    assert!(
        seen.iter()
            .all(|r| r.path.starts_with("/cloudresourcemanager/v1/projects/p1:"))
    );
    assert!(seen.len() >= 4);
}

#[tokio::test]
async fn incompatible_operation_is_detected_and_waited_out() {
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let fake = FakeGoogle::start(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("PUT", _) => Reply {
            status: 400,
            body: json!({"error": {"code": 400, "status": "FAILED_PRECONDITION",
                "message": "Cluster is running incompatible operation operation-77.",
                "errors": [{"reason": "failedPrecondition"}],
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "CLUSTER_ALREADY_HAS_OPERATION", "domain": "container.googleapis.com"}]}}),
            headers: vec![],
        },
        ("GET", p) if p.ends_with("/operations") => {
            let status = if d.load(Ordering::SeqCst) > 0 { "DONE" } else { "RUNNING" };
            ok(json!({"operations": [
                {"name": "operation-77", "operationType": "UPGRADE_NODES", "status": status,
                 "targetLink": "https://container.googleapis.com/v1/projects/123/zones/us-central1-a/clusters/c1/nodePools/np"},
                {"name": "operation-78", "operationType": "UPDATE_CLUSTER", "status": "RUNNING",
                 "targetLink": "https://container.googleapis.com/v1/projects/123/zones/us-central1-a/clusters/other"}]}))
        }
        ("GET", p) if p.ends_with("/operations/operation-77") => {
            d.fetch_add(1, Ordering::SeqCst);
            ok(json!({"name": "operation-77", "operationType": "UPGRADE_NODES", "status": "DONE"}))
        }
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let c = fake.client();
    let err = c
        .set_workload_pool(&key(), Some("p1.svc.id.goog"))
        .await
        .unwrap_err();
    assert!(err.is_incompatible_operation(), "{err:?}");
    assert_eq!(fake.seen().len(), 1, "a 400 is not retried blindly");

    let running = c.running_operations(&key()).await.unwrap();
    assert_eq!(running.len(), 1, "only operations on c1 count");
    assert_eq!(running[0].name, "operation-77");
    let seen_ops = Arc::new(Mutex::new(Vec::new()));
    let so = seen_ops.clone();
    c.wait_cluster_idle(&key(), Duration::from_secs(5), &move |op: &Operation| {
        so.lock().unwrap().push(op.status.clone())
    })
    .await
    .unwrap();
    assert_eq!(*seen_ops.lock().unwrap(), vec!["RUNNING", "DONE"]);
    let paths: Vec<String> = fake.seen().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(
        &"/container/v1/projects/p1/locations/us-central1-a/operations/operation-77".to_string()
    ));
}

#[tokio::test]
async fn wait_operation_polls_to_done_and_survives_a_503() {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let fake = FakeGoogle::start(move |r| {
        assert_eq!(
            r.path,
            "/container/v1/projects/p1/locations/us-central1-a/operations/operation-1"
        );
        let status = match m.fetch_add(1, Ordering::SeqCst) {
            0 => "PENDING",
            1 => return google_error(503, "UNAVAILABLE", "backendError", "try later"),
            2 => "RUNNING",
            _ => "DONE",
        };
        ok(json!({"name": "operation-1", "operationType": "UPGRADE_NODES", "status": status}))
    })
    .await;
    let c = fake.client();
    let started = Operation {
        name: "operation-1".into(),
        operation_type: "UPGRADE_NODES".into(),
        status: "PENDING".into(),
        ..Default::default()
    };
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let s = statuses.clone();
    let done = c
        .wait_operation(
            "p1",
            "us-central1-a",
            &started,
            Duration::from_secs(5),
            &move |op| s.lock().unwrap().push(op.status.clone()),
        )
        .await
        .unwrap();
    assert_eq!(done.status, "DONE");
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(statuses.first().map(String::as_str), Some("PENDING"));
    assert_eq!(statuses.last().map(String::as_str), Some("DONE"));
    assert!(statuses.contains(&"RUNNING".to_string()));
    assert_eq!(n.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn wait_operation_reports_done_with_error_and_times_out() {
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with("operation-bad") {
            ok(json!({"name": "operation-bad", "operationType": "UPDATE_CLUSTER", "status": "DONE",
                "error": {"code": 9, "message": "Node pool np could not be upgraded."},
                "statusMessage": "Node pool np could not be upgraded."}))
        } else {
            ok(json!({"name": "operation-slow", "operationType": "UPDATE_CLUSTER", "status": "RUNNING"}))
        }
    })
    .await;
    let c = fake.client();
    let op = |name: &str| Operation {
        name: name.into(),
        operation_type: "UPDATE_CLUSTER".into(),
        status: "RUNNING".into(),
        ..Default::default()
    };
    let err = c
        .wait_operation(
            "p1",
            "l1",
            &op("operation-bad"),
            Duration::from_secs(5),
            &|_| {},
        )
        .await
        .unwrap_err();
    match &err {
        GcpError::OperationFailed {
            operation,
            operation_type,
            message,
        } => {
            assert_eq!(operation, "operation-bad");
            assert_eq!(operation_type, "UPDATE_CLUSTER");
            assert_eq!(message, "Node pool np could not be upgraded.");
        }
        other => panic!("{other:?}"),
    }
    let err = c
        .wait_operation(
            "p1",
            "l1",
            &op("operation-slow"),
            Duration::from_millis(200),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GcpError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn endpoint_overrides_keep_their_path_prefix() {
    let fake = FakeGoogle::start(|_| ok(json!({"projectId": "p1", "name": "c1"}))).await;
    let base = fake.base.clone();
    let endpoints = Endpoints::from_env_vars(|k| match k {
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER" => Some(format!("{base}gke/prefix")),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER" => Some(format!("{base}crm/")),
        _ => None,
    })
    .unwrap();
    assert_eq!(endpoints.iam.as_str(), "https://iam.googleapis.com/");
    let c = GcpClient::new(
        endpoints,
        Arc::new(StaticTokenSource::new(SecretString::from(TOKEN), "t")),
        ClientOptions {
            retry: RetryPolicy::fast(),
            ..Default::default()
        },
    )
    .unwrap();
    c.get_cluster(&key()).await.unwrap();
    c.get_project("p1").await.unwrap();
    let seen = fake.seen();
    assert_eq!(
        seen[0].path,
        "/gke/prefix/v1/projects/p1/locations/us-central1-a/clusters/c1"
    );
    assert_eq!(seen[1].path, "/crm/v1/projects/p1");
}

#[tokio::test]
async fn token_comes_from_the_access_token_file() {
    let fake = FakeGoogle::start(|_| ok(json!({"projectId": "p1"}))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "  ya29.from-file\n").unwrap();
    let p = path.to_string_lossy().into_owned();
    let tokens = token_source_from_env(|k| match k {
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE" => Some(p.clone()),
        // The token file wins over a key file, as in gcloud.
        "GOOGLE_APPLICATION_CREDENTIALS" => Some("/nonexistent/key.json".into()),
        _ => None,
    })
    .await
    .unwrap();
    assert!(tokens.describe().contains("access token file"));
    let c = GcpClient::new(
        Endpoints::all_under(&fake.base).unwrap(),
        tokens,
        ClientOptions::default(),
    )
    .unwrap();
    c.get_project("p1").await.unwrap();
    assert_eq!(
        fake.seen()[0].auth.as_deref(),
        Some("Bearer ya29.from-file")
    );

    std::fs::write(&path, "\n").unwrap();
    let empty =
        token_source_from_env(|k| (k == "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE").then(|| p.clone()))
            .await;
    assert!(matches!(empty, Err(GcpError::Auth(m)) if m.contains("empty")));
}

/// gcp_auth with a service-account key whose token_uri is the fake server:
/// the JWT-bearer grant is checked (claims and RS256 signature) and the
/// minted token is what the API call carries.
#[tokio::test]
async fn service_account_key_mints_a_token_at_its_token_uri() {
    use base64::Engine as _;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public = rsa::RsaPublicKey::from(&private);
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let grants = Arc::new(Mutex::new(Vec::<Value>::new()));
    let g = grants.clone();
    let fake = FakeGoogle::start(move |r| {
        if r.path == "/token" {
            let form: BTreeMap<String, String> = url::form_urlencoded::parse(r.raw_body.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(
                form.get("grant_type").map(String::as_str),
                Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
            );
            let jwt = form.get("assertion").expect("assertion");
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3);
            // JWT parts are base64url; accept them with or without padding.
            let b64 = base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
            let sig = b64.decode(parts[2]).unwrap();
            let digest =
                <sha2::Sha256 as sha2::Digest>::digest(format!("{}.{}", parts[0], parts[1]));
            // PKCS#1 v1.5 with the SHA-256 DigestInfo prefix (RS256).
            let mut prefixed = vec![
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            prefixed.extend_from_slice(&digest);
            public
                .verify(rsa::Pkcs1v15Sign::new_unprefixed(), &prefixed, &sig)
                .expect("RS256 signature by the key in the key file");
            g.lock().unwrap().push(claims);
            ok(json!({"access_token": "ya29.minted", "expires_in": 3599, "token_type": "Bearer"}))
        } else {
            ok(json!({"projectId": "p1"}))
        }
    })
    .await;
    let token_uri = format!("{}token", fake.base);
    let key = json!({
        "type": "service_account", "project_id": "p1", "private_key_id": "k1",
        "private_key": pem.as_str(), "client_email": "deployer@p1.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    std::fs::write(&path, key.to_string()).unwrap();
    let p = path.to_string_lossy().into_owned();
    let tokens =
        token_source_from_env(|k| (k == "GOOGLE_APPLICATION_CREDENTIALS").then(|| p.clone()))
            .await
            .unwrap();
    let c = GcpClient::new(
        Endpoints::all_under(&fake.base).unwrap(),
        tokens,
        ClientOptions::default(),
    )
    .unwrap();
    c.get_project("p1").await.unwrap();
    c.get_project("p1").await.unwrap();
    let seen = fake.seen();
    let api_calls: Vec<&Seen> = seen.iter().filter(|r| r.path != "/token").collect();
    assert_eq!(api_calls.len(), 2);
    assert!(
        api_calls
            .iter()
            .all(|r| r.auth.as_deref() == Some("Bearer ya29.minted"))
    );
    let grants = grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 1, "the token is cached");
    assert_eq!(
        grants[0]["iss"],
        json!("deployer@p1.iam.gserviceaccount.com")
    );
    assert_eq!(grants[0]["aud"], json!(token_uri));
    assert!(
        grants[0]["scope"]
            .as_str()
            .unwrap()
            .contains("auth/cloud-platform")
    );
    let secret = c.access_token().await.unwrap();
    assert_eq!(secret.expose_secret(), "ya29.minted");
}

#[tokio::test]
async fn no_token_in_debug_or_display_of_errors_and_clients() {
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with("/decode") {
            ok(json!({"projectId": 5}))
        } else {
            google_error(
                403,
                "PERMISSION_DENIED",
                "forbidden",
                "The caller does not have permission",
            )
        }
    })
    .await;
    let c = fake.client();
    let mut rendered = vec![format!("{c:?}")];
    let denied = c.get_project("p1").await.unwrap_err();
    assert!(denied.is_permission_denied());
    rendered.push(format!("{denied:?} {denied}"));
    let decode = c.get_project("decode").await.unwrap_err();
    assert!(matches!(decode, GcpError::Decode(_)));
    rendered.push(format!("{decode:?} {decode}"));

    // A closed port: unreachable, at once (resending cannot heal it).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let unreachable = GcpClient::new(
        Endpoints::all_under(&Url::parse(&format!("http://{closed}/")).unwrap()).unwrap(),
        Arc::new(StaticTokenSource::new(SecretString::from(TOKEN), "t")),
        ClientOptions {
            retry: RetryPolicy {
                max_elapsed: Duration::from_millis(200),
                ..RetryPolicy::fast()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let transport = unreachable.get_project("p1").await.unwrap_err();
    assert!(transport.is_unreachable(), "{transport:?}");
    assert_eq!(unreachable.stats().retries, 0);
    rendered.push(format!("{transport:?} {transport}"));
    let source = StaticTokenSource::new(SecretString::from(TOKEN), "t");
    rendered.push(format!("{source:?}"));
    for text in rendered {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("test-token"), "token leaked: {text}");
        assert!(
            !text.to_lowercase().contains("bearer"),
            "auth header leaked: {text}"
        );
    }
}

#[tokio::test]
async fn custom_ca_file_is_trusted_for_tls_endpoints() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.clone().into_bytes(),
        cert.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    let app = axum::Router::new()
        .fallback(|| async { axum::Json(json!({"projectId": "p1", "projectNumber": "42"})) });
    let h = handle.clone();
    tokio::spawn(async move {
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), config)
            .handle(h)
            .serve(app.into_make_service())
            .await
            .unwrap()
    });
    let addr = handle.listening().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();
    let endpoints =
        Endpoints::all_under(&Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).unwrap())
            .unwrap();
    let tokens: Arc<dyn TokenSource> =
        Arc::new(StaticTokenSource::new(SecretString::from(TOKEN), "t"));
    let ca_path = ca.to_string_lossy().into_owned();
    let trusting = GcpClient::new(
        endpoints.clone(),
        tokens.clone(),
        ClientOptions::from_env_vars(|k| {
            (k == "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE").then(|| ca_path.clone())
        }),
    )
    .unwrap();
    let p = trusting.get_project("p1").await.unwrap().unwrap();
    assert_eq!(p.project_number, "42");
    let strict = GcpClient::new(
        endpoints,
        tokens,
        ClientOptions {
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::fast()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let err = strict.get_project("p1").await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    handle.shutdown();
}

#[tokio::test]
async fn run_cluster_operation_waits_out_a_foreign_operation_then_starts_its_own() {
    let puts = Arc::new(AtomicUsize::new(0));
    let p = puts.clone();
    let foreign_done = Arc::new(AtomicUsize::new(0));
    let f = foreign_done.clone();
    let fake = FakeGoogle::start(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("PUT", _) => {
            if p.fetch_add(1, Ordering::SeqCst) == 0 {
                google_error(400, "FAILED_PRECONDITION", "failedPrecondition",
                    "Cluster is running incompatible operation operation-foreign.")
            } else {
                ok(json!({"name": "operation-ours", "operationType": "UPDATE_CLUSTER", "status": "RUNNING"}))
            }
        }
        ("GET", p) if p.ends_with("/operations") => {
            let status = if f.load(Ordering::SeqCst) > 0 { "DONE" } else { "RUNNING" };
            ok(json!({"operations": [{"name": "operation-foreign", "operationType": "UPGRADE_NODES",
                "status": status,
                "targetLink": "https://container.googleapis.com/v1/projects/1/zones/us-central1-a/clusters/c1/nodePools/np"}]}))
        }
        ("GET", p) if p.ends_with("/operation-foreign") => {
            f.fetch_add(1, Ordering::SeqCst);
            ok(json!({"name": "operation-foreign", "operationType": "UPGRADE_NODES", "status": "DONE"}))
        }
        ("GET", p) if p.ends_with("/operation-ours") => {
            ok(json!({"name": "operation-ours", "operationType": "UPDATE_CLUSTER", "status": "DONE"}))
        }
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let c = fake.client();
    let k = key();
    let watched = Arc::new(Mutex::new(Vec::new()));
    let w = watched.clone();
    let op = c
        .run_cluster_operation(
            &k,
            Duration::from_secs(5),
            &move |op: &Operation| w.lock().unwrap().push(format!("{} {}", op.name, op.status)),
            || c.set_workload_pool(&k, Some("p1.svc.id.goog")),
        )
        .await
        .unwrap();
    assert_eq!(op.name, "operation-ours");
    assert_eq!(op.status, "DONE");
    assert_eq!(
        puts.load(Ordering::SeqCst),
        2,
        "the change is sent again once the cluster is idle"
    );
    let watched = watched.lock().unwrap().clone();
    assert!(
        watched.contains(&"operation-foreign RUNNING".to_string()),
        "{watched:?}"
    );
    assert_eq!(
        watched.last().map(String::as_str),
        Some("operation-ours DONE")
    );
}

#[tokio::test]
async fn policy_writes_wait_for_the_identity_pool_and_new_accounts() {
    let sets = Arc::new(AtomicUsize::new(0));
    let s = sets.clone();
    let fake = FakeGoogle::start(move |r| {
        if r.path.ends_with(":getIamPolicy") {
            return ok(json!({"etag": "BwA"}));
        }
        match s.fetch_add(1, Ordering::SeqCst) {
            0 => google_error(400, "INVALID_ARGUMENT", "badRequest",
                "Identity Pool does not exist (p1.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API."),
            1 => google_error(400, "INVALID_ARGUMENT", "badRequest",
                "Service account gsa@p1.iam.gserviceaccount.com does not exist."),
            _ => {
                let mut p = r.body["policy"].clone();
                p["etag"] = json!("BwB");
                ok(p)
            }
        }
    })
    .await;
    let c = fake.client();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let target = PolicyTarget::ServiceAccount {
        email: "gsa@p1.iam.gserviceaccount.com".into(),
    };
    let add = |p: &mut IamPolicy| {
        p.bindings.push(Binding {
            role: "roles/iam.workloadIdentityUser".into(),
            members: vec!["serviceAccount:p1.svc.id.goog[ns/ksa]".into()],
            ..Default::default()
        });
        true
    };
    // Without waiting, the first refusal is returned at once.
    let err = c
        .modify_iam_policy(&target, Duration::from_secs(5), &add)
        .await
        .unwrap_err();
    assert!(err.is_identity_pool_missing(), "{err:?}");
    let policy = c
        .modify_iam_policy_waiting(&target, Duration::from_secs(5), &add, &move |e, _| {
            w.lock().unwrap().push(e.to_string())
        })
        .await
        .unwrap();
    assert_eq!(policy.etag.as_deref(), Some("BwB"));
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0].contains("does not exist"));
    assert_eq!(sets.load(Ordering::SeqCst), 3);

    // A genuine refusal is not waited on.
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with(":getIamPolicy") {
            ok(json!({"etag": "BwA"}))
        } else {
            google_error(
                400,
                "INVALID_ARGUMENT",
                "badRequest",
                "Role roles/nope is not supported.",
            )
        }
    })
    .await;
    let err = fake
        .client()
        .modify_iam_policy_waiting(&target, Duration::from_secs(5), &add, &|_, _| {
            panic!("must not wait")
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(fake.seen().len(), 2);
}

/// Log capture for the tests that read what the clients log.
///
/// Why not `tracing::subscriber::set_default` in the test: tracing caches each
/// callsite's interest process-wide, computed once by whichever thread reaches
/// the callsite first. While only one dispatcher is registered, tracing-core
/// asks that thread's own default (tokio-rs/tracing#3611): a sibling test
/// running the same client code without a subscriber caches
/// `Interest::never()`, and the capturing test then misses the event. The
/// rebuild `set_default` triggers only covers callsites registered before it,
/// so `rebuild_interest_cache()` would narrow the window, not close it.
///
/// So the binary installs ONE global subscriber at TRACE, once, before any
/// capture: every thread then registers callsites against it, and no
/// callsite is ever cached as `never`. Its writer appends to the buffer of
/// the test capturing on the current thread and drops everything else. A
/// `#[tokio::test]` runs its tasks on its own thread (current-thread
/// runtime), so a test captures exactly its own events.
struct LogCapture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Writes into the buffer of the current thread's capture (or nowhere).
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(buf) = c.borrow().as_ref() {
                buf.lock().unwrap().extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs the global subscriber (first call only) and starts capturing
    /// this thread's events.
    fn start() -> LogCapture {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(|| CaptureWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
        });
        let buf = Arc::new(Mutex::new(Vec::new()));
        CAPTURING.with(|c| *c.borrow_mut() = Some(buf.clone()));
        LogCapture(buf)
    }

    /// Everything captured so far.
    fn logs(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.with(|c| *c.borrow_mut() = None);
    }
}

/// Everything the clients (and reqwest, hyper, gcp_auth underneath) log at
/// TRACE while minting a token from a key, retrying a 503 and failing a 409
/// is captured: no access token, no key material, no Authorization header.
#[tokio::test]
async fn trace_logs_carry_no_secret() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    let capture = LogCapture::start();

    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let minted = "ya29.minted-secret-for-trace-test";
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let fake = FakeGoogle::start(move |r| {
        if r.path == "/token" {
            return ok(json!({"access_token": minted, "expires_in": 3599, "token_type": "Bearer"}));
        }
        match m.fetch_add(1, Ordering::SeqCst) {
            0 => google_error(503, "UNAVAILABLE", "backendError", "try again"),
            1 => ok(json!({"projectId": "p1"})),
            _ => google_error(
                409,
                "ALREADY_EXISTS",
                "alreadyExists",
                "Service account x already exists within project projects/p1.",
            ),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.json");
    let key = json!({"type": "service_account", "project_id": "p1", "private_key_id": "k1",
        "private_key": pem.as_str(), "client_email": "d@p1.iam.gserviceaccount.com",
        "token_uri": format!("{}token", fake.base)});
    std::fs::write(&key_path, key.to_string()).unwrap();
    let kp = key_path.to_string_lossy().into_owned();
    let tokens =
        token_source_from_env(|k| (k == "GOOGLE_APPLICATION_CREDENTIALS").then(|| kp.clone()))
            .await
            .unwrap();
    let c = GcpClient::new(
        Endpoints::all_under(&fake.base).unwrap(),
        tokens,
        ClientOptions {
            retry: RetryPolicy::fast(),
            ..Default::default()
        },
    )
    .unwrap();
    c.get_project("p1").await.unwrap();
    let err = c
        .create_service_account("p1", "xxxxxx", None, None)
        .await
        .unwrap_err();
    assert!(err.is_already_exists());
    tracing::error!(error = %err, debug = ?err, client = ?c, "final");

    let logs = capture.logs();
    assert!(logs.contains("retrying"), "the retry is logged:\n{logs}");
    assert!(logs.contains("google api"), "requests are logged");
    let key_body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    for secret in [minted, &key_body[..40], "PRIVATE KEY", "assertion="] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
    assert!(
        !logs.to_lowercase().contains("bearer "),
        "an Authorization header leaked"
    );
    assert!(
        fake.seen()
            .iter()
            .any(|r| r.auth.as_deref() == Some(&*format!("Bearer {minted}")))
    );
}

#[tokio::test]
async fn a_stale_operation_list_does_not_spin_forever() {
    // operations.list keeps saying RUNNING while operations.get says DONE.
    let fake = FakeGoogle::start(|r| {
        if r.path.ends_with("/operations") {
            ok(json!({"operations": [{"name": "operation-9", "status": "RUNNING",
                "targetLink": "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1"}]}))
        } else {
            ok(json!({"name": "operation-9", "status": "DONE"}))
        }
    })
    .await;
    let start = Instant::now();
    let err = fake
        .client()
        .wait_cluster_idle(&key(), Duration::from_millis(300), &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // Timed out (at 300 ms) rather than spinning; loose bound for loaded machines.
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        fake.seen().len() < 200,
        "{} requests: spinning",
        fake.seen().len()
    );
}
