//! The Google APIs the emulator serves, one file each, and the one table that
//! routes to them: URL prefix (what `CLOUDSDK_API_ENDPOINT_OVERRIDES_*` points
//! at), service host (for error messages), the discovery method id of a
//! request, and the handler. Adding a Google API means one row here and one
//! file beside this one; the router and the env exports read this table.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Response};

use super::core::Core;
use super::request::Req;
use super::wire::GoogleApiResult;
use super::world::Principal;

pub(crate) mod crm;
pub(crate) mod gke;
pub(crate) mod iam;
pub(crate) mod permissions;
pub(crate) mod policy;
pub(crate) mod serviceusage;
pub(crate) mod tokens;

/// The future a Google method handler returns.
pub(crate) type CallFuture<'a> = Pin<Box<dyn Future<Output = GoogleApiResult> + Send + 'a>>;

/// How an API is served.
pub(crate) enum Serve {
    /// REST methods: the router picks the method id, injects faults and
    /// authenticates the caller, then calls the handler.
    Methods {
        /// The discovery method id (`projects.locations.clusters.get`), or
        /// `None` for a path the API does not have.
        method_id: fn(&Req) -> Option<&'static str>,
        call: for<'a> fn(&'a Arc<Core>, &'a Req, &'a Principal, &'static str) -> CallFuture<'a>,
    },
    /// A token endpoint (`POST /{prefix}/v1/token`) that authenticates by its body.
    TokenEndpoint(fn(&Arc<Core>, &HeaderMap, &[u8]) -> Response<Body>),
}

/// One Google API.
pub(crate) struct GoogleApi {
    /// First path segment, e.g. `container`.
    pub prefix: &'static str,
    /// Service host, e.g. `container.googleapis.com`.
    pub host: &'static str,
    /// Suffix of the gcloud override variable `CLOUDSDK_API_ENDPOINT_OVERRIDES_{env}`.
    pub env: &'static str,
    pub serve: Serve,
}

/// Every Google API, in the order of the exported variables.
pub(crate) const APIS: &[GoogleApi] = &[
    GoogleApi {
        prefix: "container",
        host: "container.googleapis.com",
        env: "CONTAINER",
        serve: Serve::Methods {
            method_id: gke::method_id,
            call: |core, req, who, method| Box::pin(gke::call(core, req, who, method)),
        },
    },
    GoogleApi {
        prefix: "iam",
        host: "iam.googleapis.com",
        env: "IAM",
        serve: Serve::Methods {
            method_id: iam::method_id,
            call: |core, req, who, method| Box::pin(iam::call(core, req, who, method)),
        },
    },
    GoogleApi {
        prefix: "cloudresourcemanager",
        host: "cloudresourcemanager.googleapis.com",
        env: "CLOUDRESOURCEMANAGER",
        serve: Serve::Methods {
            method_id: crm::method_id,
            call: |core, req, who, method| {
                Box::pin(std::future::ready(crm::call(core, req, who, method)))
            },
        },
    },
    GoogleApi {
        prefix: "serviceusage",
        host: "serviceusage.googleapis.com",
        env: "SERVICEUSAGE",
        serve: Serve::Methods {
            method_id: serviceusage::method_id,
            call: |core, req, who, method| {
                Box::pin(std::future::ready(serviceusage::call(
                    core, req, who, method,
                )))
            },
        },
    },
    GoogleApi {
        prefix: "iamcredentials",
        host: "iamcredentials.googleapis.com",
        env: "IAMCREDENTIALS",
        serve: Serve::Methods {
            method_id: tokens::iamcredentials_method_id,
            call: |core, req, who, _| {
                Box::pin(std::future::ready(tokens::generate_access_token(
                    core, req, who,
                )))
            },
        },
    },
    GoogleApi {
        prefix: "sts",
        host: "sts.googleapis.com",
        env: "STS",
        serve: Serve::TokenEndpoint(tokens::sts_token),
    },
];

/// The API served under `prefix`.
pub(crate) fn api(prefix: &str) -> Option<&'static GoogleApi> {
    APIS.iter().find(|a| a.prefix == prefix)
}
