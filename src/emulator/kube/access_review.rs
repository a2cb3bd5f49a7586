//! `SelfSubjectAccessReview` (`POST /apis/authorization.k8s.io/v1/
//! selfsubjectaccessreviews`, JSON or protobuf): `kubectl auth can-i`, and
//! `wi`'s permission pre-flight, ask the cluster's authorizer (GKE's IAM
//! authorizer, see `google::permissions`) about the caller without doing
//! anything. The answer is the one the same request would get.

use serde_json::{Value, json};

use super::errors::ApiError;
use super::{KubeAccess, KubeCluster};

/// `kubectl auth can-i`: asks the host's authorizer about the caller.
pub(super) fn self_subject_access_review(
    cluster: &KubeCluster,
    user: &str,
    mut review: Value,
) -> Result<Value, ApiError> {
    let attrs = review
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(Value::Null);
    let text = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (verb, group, resource, subresource, name, namespace) = (
        text("verb"),
        text("group"),
        text("resource"),
        text("subresource"),
        text("name"),
        text("namespace"),
    );
    let allowed = if attrs.is_null() {
        // Non-resource URLs (`can-i get /healthz`): everyone authenticated may.
        true
    } else {
        (group.is_empty() || group == "*")
            && cluster.host.authorize(
                user,
                &KubeAccess {
                    verb: &verb,
                    resource: &resource,
                    subresource: &subresource,
                    namespace: (!namespace.is_empty()).then_some(namespace.as_str()),
                    name: &name,
                },
            )
    };
    if let Some(m) = review.as_object_mut() {
        m.insert("kind".into(), json!("SelfSubjectAccessReview"));
        m.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        m.insert("metadata".into(), json!({"creationTimestamp": null}));
        m.insert("status".into(), json!({"allowed": allowed}));
    }
    Ok(review)
}
