//! "Can I?": a `SelfSubjectAccessReview` asks the API server whether the
//! identity of this connection may do one verb on one resource, without
//! doing it. The permission pre-flight asks this per cluster for every verb
//! a plan's Kubernetes steps use, so a refused identity is found before
//! anything changes.

use ::kube::api::{Api, PostParams};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};

use super::{ClusterConnection, KubeError};

/// One Kubernetes access: `verb` on `resource` (core group) and, when not
/// empty, its `subresource`, in `namespace` (`None`: every namespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub namespace: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (all namespaces)"),
        }
    }
}

impl ClusterConnection {
    /// Whether this connection's identity may do `access`
    /// (`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`).
    pub async fn can_i(&self, access: &Access) -> Result<bool, KubeError> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(access.verb.to_string()),
                    group: Some(String::new()),
                    resource: Some(access.resource.to_string()),
                    subresource: (!access.subresource.is_empty())
                        .then(|| access.subresource.to_string()),
                    namespace: access.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}
