//! Discovery as kube-apiserver 1.33 on GKE serves it: `/version`, `/api`,
//! `/api/v1`, `/apis` and the group documents, and the `/openapi/v3` root and
//! core document (enough for kubectl's field validation check).

use serde_json::{Value, json};

use super::objects::KubeResource;

/// The version a GKE regular-channel cluster reports.
const GIT_VERSION: &str = "v1.33.5-gke.1000";

pub(super) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "8d4e6a4f1c2b3a59e0f7d6c5b4a3928170615243",
        "gitTreeState": "clean",
        "buildDate": "2025-09-24T04:12:51Z",
        "goVersion": "go1.24.6 X:boringcrypto",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(super) fn api_groups() -> Value {
    let group = |name: &str| {
        let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
        json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
    };
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group("authentication.k8s.io"), group("authorization.k8s.io")],
    })
}

pub(super) fn group_resources(group_version: &str, plural: &str, kind: &str) -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [{"name": plural, "singularName": plural.trim_end_matches('s'),
                       "namespaced": false, "kind": kind, "verbs": ["create"]}],
    })
}

pub(super) fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.128.0.2:443"}],
    })
}

pub(super) fn api_resources() -> Value {
    let verbs = json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]);
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": verbs, "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M="},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": verbs, "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="},
            {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": true, "kind": "ServiceAccount",
             "verbs": verbs, "shortNames": ["sa"], "storageVersionHash": "pbx9ZvyFpBE="},
            {"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io",
             "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
        ],
    })
}

/// Hash of the core/v1 OpenAPI document, as kube-apiserver puts in its root.
const OPENAPI_HASH: &str = "8B3C6A2FD1E0F4A9C7B5D3E1F0A2C4E6B8D0F2A4C6E8B0D2F4A6C8E0B2D4F6A8";

/// `/openapi/v3`: where each group version's document lives.
pub(super) fn openapi_v3_root() -> Value {
    json!({"paths": {"api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={OPENAPI_HASH}")}}})
}

/// `/openapi/v3/api/v1`, reduced to what clients read from it: the PATCH
/// operations of each kind and their query parameters (kubectl checks for
/// `fieldValidation` to decide to validate on the server).
pub(super) fn openapi_v3_core() -> Value {
    let query_param = |name: &str, description: &str, ty: &str| {
        json!({"name": name, "in": "query", "description": description,
               "schema": {"type": ty, "uniqueItems": true}})
    };
    let patch_params = json!([
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string"
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
            "string"
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields.",
            "string"
        ),
        query_param(
            "force",
            "Force is going to \"force\" Apply requests.",
            "boolean"
        ),
    ]);
    let mut paths = serde_json::Map::new();
    for r in KubeResource::ALL {
        let path = if r.namespaced() {
            format!("/api/v1/namespaces/{{namespace}}/{}/{{name}}", r.plural())
        } else {
            format!("/api/v1/{}/{{name}}", r.plural())
        };
        let scope = if r.namespaced() { "Namespaced" } else { "" };
        paths.insert(
            path,
            json!({"patch": {
                "tags": ["core_v1"],
                "description": format!("partially update the specified {}", r.kind()),
                "operationId": format!("patchCoreV1{scope}{}", r.kind()),
                "parameters": patch_params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": r.kind()},
            }}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    })
}
