//! TokenRequest (`serviceaccounts/NAME/token`): audience-bound service-account
//! tokens signed with the cluster's key, with kube-apiserver's checks in its order.

use serde_json::{Value, json};

use super::KubeCluster;
use super::errors::{ApiError, FieldError};
use super::objects::KubeResource;
use crate::emulator::time::{now_unix, rfc3339_unix};

/// Longest token lifetime GKE grants (`--service-account-max-token-expiration`).
const MAX_TOKEN_SECONDS: i64 = 48 * 3600;

/// POST `serviceaccounts/NAME/token`: a signed, audience-bound token, with
/// the checks of kube-apiserver's `TokenREST.Create` in the same order.
/// Returns the TokenRequest and an optional `Warning` header text.
pub(super) fn token_request(
    cluster: &KubeCluster,
    namespace: &str,
    name: &str,
    req: &Value,
) -> Result<(Value, Option<String>), ApiError> {
    let group = "authentication.k8s.io";
    let text = |p: &str| {
        req.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (req_name, req_ns) = (text("/metadata/name"), text("/metadata/namespace"));
    if !req_name.is_empty() && req_name != name {
        return Err(ApiError::invalid(
            group,
            "TokenRequest",
            name,
            vec![FieldError::invalid(
                "metadata.name",
                &req_name,
                "must match the service account name if specified",
            )],
        ));
    }
    if !req_ns.is_empty() && req_ns != namespace {
        return Err(ApiError::invalid(
            group,
            "TokenRequest",
            name,
            vec![FieldError::invalid(
                "metadata.namespace",
                &req_ns,
                "must match the service account namespace if specified",
            )],
        ));
    }
    let sa = cluster
        .lock()
        .get(KubeResource::ServiceAccounts, Some(namespace), name)?;
    let spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![cluster.identity.issuer()]);
    let requested = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let invalid = |detail: &str| {
        ApiError::invalid(
            group,
            "TokenRequest",
            "",
            vec![FieldError::invalid_number(
                "spec.expirationSeconds",
                requested,
                detail,
            )],
        )
    };
    if requested < 600 {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    if requested > 1 << 32 {
        return Err(invalid(
            "may not specify a duration larger than 2^32 seconds",
        ));
    }

    let mut kube_claim = json!({
        "namespace": namespace,
        "serviceaccount": {
            "name": name,
            "uid": sa.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or(""),
        },
    });
    let bound = spec.get("boundObjectRef").filter(|v| !v.is_null());
    if let Some(r) = bound {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (kind, api_version, ref_name, ref_uid) = (
            field("kind"),
            field("apiVersion"),
            field("name"),
            field("uid"),
        );
        let (group_of, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let uid = match (group_of.as_str(), kind.as_str()) {
            ("", "Pod") => {
                let pod = cluster
                    .lock()
                    .get(KubeResource::Pods, Some(namespace), &ref_name)?;
                if pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    != Some(name)
                {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                    )));
                }
                let uid = pod
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                kube_claim["pod"] = json!({"name": ref_name, "uid": uid});
                if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
                    // No Node objects here: the claim carries the name only,
                    // as the real server does for a node it cannot find.
                    kube_claim["node"] = json!({"name": node});
                }
                uid
            }
            ("", "Secret") => return Err(ApiError::not_found("secrets", &ref_name)),
            ("", "Node") => return Err(ApiError::not_found("nodes", &ref_name)),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group_of}/{version}, Kind={kind}"
                )));
            }
        };
        if !ref_uid.is_empty() && ref_uid != uid {
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Operation cannot be fulfilled on {kind} {ref_name:?}: the UID in the bound object reference ({ref_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
                details: Some(Box::new(super::errors::Details {
                    name: ref_name.clone(),
                    kind: kind.clone(),
                    ..Default::default()
                })),
            });
        }
    }

    let mut warning = None;
    let lifetime = if requested > MAX_TOKEN_SECONDS {
        warning = Some(format!(
            "requested expiration of {requested} seconds shortened to {MAX_TOKEN_SECONDS} seconds"
        ));
        MAX_TOKEN_SECONDS
    } else {
        requested
    };
    let signer = cluster
        .signer()
        .ok_or_else(|| ApiError::internal("this cluster has no service-account signing key"))?;
    let now = now_unix();
    let exp = now + lifetime;
    let claims = json!({
        "aud": audiences,
        "exp": exp,
        "iat": now,
        "iss": cluster.identity.issuer(),
        "jti": uuid::Uuid::new_v4().to_string(),
        // go-jose writes claims through a map: keys come out sorted.
        "kubernetes.io": sorted_keys(kube_claim),
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    });
    let token = signer
        .sign(&claims)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339_unix(now)},
        "spec": {
            "audiences": audiences,
            "expirationSeconds": lifetime,
            "boundObjectRef": bound.cloned().unwrap_or(Value::Null),
        },
        "status": {"token": token, "expirationTimestamp": rfc3339_unix(exp)},
    });
    Ok((out, warning))
}

fn sorted_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        other => other,
    }
}
