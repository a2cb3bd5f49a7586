//! IAM policy semantics shared by IAM (service-account policies) and Resource
//! Manager (project policies): read-modify-write with etags, version 3 and
//! conditions kept verbatim, member validation (unknown service accounts and
//! workload pools that do not exist yet are refused as real IAM does).

use serde_json::{Value, json};

use crate::emulator::wire::{self, GoogleApiError, check_keys, opt_array, opt_str};
use crate::emulator::world::{EmulatorWorld, IamPolicyRecord, new_policy_etag};

/// Why a policy member is refused, or `Ok`.
fn check_member(world: &EmulatorWorld, member: &str, now: i64) -> Result<(), GoogleApiError> {
    let pool_missing = |pool: &str| {
        GoogleApiError::invalid(format!(
            "Identity Pool does not exist ({pool}). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API."
        ))
    };
    let pool_exists = |pool: &str| {
        pool.strip_suffix(".svc.id.goog")
            .and_then(|p| world.projects.get(p))
            .is_some_and(|p| p.workload_pool_exists)
    };
    if member == "allUsers" || member == "allAuthenticatedUsers" {
        return Ok(());
    }
    let (kind, value) = member.split_once(':').ok_or_else(|| {
        GoogleApiError::invalid(format!(
            "Invalid member \"{member}\": members must look like TYPE:VALUE (user:, serviceAccount:, group:, domain:, principal://...)."
        ))
    })?;
    match kind {
        "serviceAccount" => {
            if let Some((pool, rest)) = value.split_once('[') {
                if !rest.ends_with(']') || !rest.contains('/') {
                    return Err(GoogleApiError::invalid(format!(
                        "Invalid service account ({value})."
                    )));
                }
                if !pool_exists(pool) {
                    return Err(pool_missing(pool));
                }
                return Ok(());
            }
            if value.ends_with(".iam.gserviceaccount.com") {
                let visible = world
                    .service_accounts
                    .get(value)
                    .is_some_and(|s| s.visible_ms <= now);
                if !visible {
                    return Err(GoogleApiError::invalid(format!(
                        "Service account {value} does not exist."
                    )));
                }
            } else if !value.contains('@') {
                return Err(GoogleApiError::invalid(format!(
                    "Invalid service account ({value})."
                )));
            }
            Ok(())
        }
        "user" | "group" => {
            if value.contains('@') {
                Ok(())
            } else {
                Err(GoogleApiError::invalid(format!(
                    "Invalid {kind} ({value})."
                )))
            }
        }
        "domain" | "deleted" => Ok(()),
        "principal" | "principalSet" => check_principal(world, member, kind == "principalSet")
            .map_err(|e| match e {
                // IAM's answer to a member it cannot parse (quoted in
                // terraform-provider-google#12672).
                PrincipalError::Malformed => GoogleApiError::invalid(format!(
                    "The member {member} is of an unknown type. Please set a valid type prefix for the member."
                )),
                PrincipalError::PoolMissing(pool) => pool_missing(&pool),
                PrincipalError::WrongNumber { pool, number } => GoogleApiError::invalid(format!(
                    "Invalid principal identifier ({member}): workload identity pool {pool} does not belong to project number {number}."
                )),
            }),
        _ => Err(GoogleApiError::invalid(format!(
            "Invalid member type \"{kind}\" in \"{member}\"."
        ))),
    }
}

/// Why a `principal://` or `principalSet://` member is refused.
enum PrincipalError {
    /// Not one of the identifier formats IAM knows.
    Malformed,
    /// A GKE workload pool (`P.svc.id.goog`) no cluster has created yet.
    PoolMissing(String),
    /// The project number of the path is not the pool project's.
    WrongNumber { pool: String, number: String },
}

/// A `principal://` or `principalSet://` member as IAM parses it: the
/// Google-account, service-account, workforce and workload-pool forms.
/// Workload pools of GKE (`PROJECT.svc.id.goog`) must exist and be named
/// under their project's number, with the GKE subject forms
/// (`subject/ns/NS/sa/KSA`, `namespace/NS`, `kubernetes.cluster/URL`).
fn check_principal(world: &EmulatorWorld, member: &str, set: bool) -> Result<(), PrincipalError> {
    use PrincipalError::Malformed;
    let scheme = if set {
        "principalSet://"
    } else {
        "principal://"
    };
    let rest = member.strip_prefix(scheme).ok_or(Malformed)?;
    let segment = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    if let Some(r) = rest.strip_prefix("goog/") {
        let ok = if set {
            r == "public:all"
                || r.strip_prefix("group/").is_some_and(|g| g.contains('@'))
                || r.strip_prefix("cloudIdentityCustomerId/")
                    .is_some_and(segment)
        } else {
            r.strip_prefix("subject/").is_some_and(|e| e.contains('@'))
        };
        return if ok { Ok(()) } else { Err(Malformed) };
    }
    let r = rest.strip_prefix("iam.googleapis.com/").ok_or(Malformed)?;
    if let Some(sa) = r.strip_prefix("projects/-/serviceAccounts/") {
        return if !set && sa.contains('@') {
            Ok(())
        } else {
            Err(Malformed)
        };
    }
    if let Some(w) = r.strip_prefix("locations/global/workforcePools/") {
        let (pool, tail) = w.split_once('/').ok_or(Malformed)?;
        return if segment(pool) && pool_tail(tail, set) {
            Ok(())
        } else {
            Err(Malformed)
        };
    }
    let r = r.strip_prefix("projects/").ok_or(Malformed)?;
    let (number, r) = r.split_once('/').ok_or(Malformed)?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(Malformed);
    }
    let r = r
        .strip_prefix("locations/global/workloadIdentityPools/")
        .ok_or(Malformed)?;
    let (pool, tail) = r.split_once('/').ok_or(Malformed)?;
    if !segment(pool) {
        return Err(Malformed);
    }
    let Some(project) = pool.strip_suffix(".svc.id.goog") else {
        // A federation pool the emulator does not model: its forms only.
        return if pool_tail(tail, set) {
            Ok(())
        } else {
            Err(Malformed)
        };
    };
    let gke_form = if set {
        tail.strip_prefix("namespace/").is_some_and(segment)
            || tail
                .strip_prefix("kubernetes.cluster/https://container.googleapis.com/v1/projects/")
                .is_some_and(|c| {
                    let parts: Vec<&str> = c.split('/').collect();
                    parts.len() == 5
                        && parts[1] == "locations"
                        && parts[3] == "clusters"
                        && parts.iter().all(|p| segment(p))
                })
    } else {
        tail.strip_prefix("subject/ns/")
            .and_then(|t| t.split_once("/sa/"))
            .is_some_and(|(ns, sa)| segment(ns) && segment(sa) && !sa.contains('/'))
    };
    if !gke_form {
        return Err(Malformed);
    }
    let owner = world
        .projects
        .get(project)
        .filter(|p| p.workload_pool_exists)
        .ok_or_else(|| PrincipalError::PoolMissing(pool.to_string()))?;
    if owner.number != number {
        return Err(PrincipalError::WrongNumber {
            pool: pool.to_string(),
            number: number.to_string(),
        });
    }
    Ok(())
}

/// The identity part of a federation pool member (`subject/S`, or for a set
/// `group/G`, `attribute.NAME/V`, `*`).
fn pool_tail(tail: &str, set: bool) -> bool {
    if set {
        tail == "*"
            || tail.strip_prefix("group/").is_some_and(|g| !g.is_empty())
            || tail
                .strip_prefix("attribute.")
                .and_then(|a| a.split_once('/'))
                .is_some_and(|(n, v)| !n.is_empty() && !v.is_empty())
    } else {
        tail.strip_prefix("subject/").is_some_and(|s| !s.is_empty())
    }
}

/// Etags are bytes: clients may send them base64url-encoded or without padding
/// (apitools does), so compare the decoded bytes.
fn same_etag(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('=').replace('-', "+").replace('_', "/");
    norm(a) == norm(b)
}

/// Validates a setIamPolicy request against the current policy and returns the next policy.
pub(crate) fn set_policy(
    world: &EmulatorWorld,
    current: &IamPolicyRecord,
    body: &Value,
    now: i64,
) -> Result<IamPolicyRecord, GoogleApiError> {
    check_keys(body, "", &["policy", "updateMask"])?;
    let policy = match body.get("policy") {
        Some(v @ Value::Object(_)) => v,
        Some(other) => return Err(wire::type_error("policy", "TYPE_MESSAGE", other)),
        None => {
            return Err(GoogleApiError::invalid_field(
                "policy",
                "Missing required field \"policy\".",
            ));
        }
    };
    check_keys(
        policy,
        "policy",
        &["version", "etag", "bindings", "auditConfigs"],
    )?;
    let mask: Vec<String> = match opt_str(body, "updateMask")? {
        Some(m) if !m.trim().is_empty() => m.split(',').map(|s| s.trim().to_string()).collect(),
        _ => vec!["bindings".into(), "etag".into()],
    };
    for f in &mask {
        if !matches!(
            f.as_str(),
            "bindings" | "etag" | "auditConfigs" | "audit_configs" | "version"
        ) {
            return Err(GoogleApiError::invalid_field(
                "update_mask",
                format!(
                    "Invalid update_mask path \"{f}\": only bindings, etag and auditConfigs can be set."
                ),
            ));
        }
    }
    if let Some(etag) = opt_str(policy, "etag")?
        && !etag.is_empty()
        && !same_etag(etag, &current.etag)
    {
        return Err(GoogleApiError::concurrent_policy_change());
    }
    let mut next = current.clone();
    if mask.iter().any(|m| m == "bindings") {
        let bindings = opt_array(policy, "bindings")?.cloned().unwrap_or_default();
        let mut merged: Vec<Value> = Vec::new();
        for (i, b) in bindings.iter().enumerate() {
            let field = format!("policy.bindings[{i}]");
            if !b.is_object() {
                return Err(wire::type_error(&field, "TYPE_MESSAGE", b));
            }
            check_keys(b, &field, &["role", "members", "condition"])?;
            let role = opt_str(b, "role")?.unwrap_or("");
            if role.is_empty() {
                return Err(GoogleApiError::invalid_field(
                    &format!("{field}.role"),
                    format!("Missing required field \"{field}.role\"."),
                ));
            }
            if !(role.starts_with("roles/")
                || role.starts_with("projects/")
                || role.starts_with("organizations/"))
            {
                return Err(GoogleApiError::invalid_field(
                    &format!("{field}.role"),
                    format!("Role ({role}) does not exist in the resource's hierarchy."),
                ));
            }
            let members = opt_array(b, "members")?.cloned().unwrap_or_default();
            let mut ms: Vec<String> = Vec::new();
            for (j, m) in members.iter().enumerate() {
                let m = m.as_str().ok_or_else(|| {
                    wire::type_error(&format!("{field}.members[{j}]"), "TYPE_STRING", m)
                })?;
                check_member(world, m, now)?;
                if !ms.iter().any(|x| x == m) {
                    ms.push(m.to_string());
                }
            }
            if let Some(cond) = b.get("condition") {
                if !cond.is_object() {
                    return Err(wire::type_error(
                        &format!("{field}.condition"),
                        "TYPE_MESSAGE",
                        cond,
                    ));
                }
                check_keys(
                    cond,
                    &format!("{field}.condition"),
                    &["title", "description", "expression", "location"],
                )?;
                if opt_str(cond, "expression")?.unwrap_or("").is_empty() {
                    return Err(GoogleApiError::invalid_field(
                        &format!("{field}.condition.expression"),
                        "Condition expression must not be empty.",
                    ));
                }
            }
            if ms.is_empty() {
                continue;
            }
            let cond = b.get("condition").cloned();
            if let Some(existing) = merged
                .iter_mut()
                .find(|x| x["role"] == role && x.get("condition").cloned() == cond)
            {
                if let Some(arr) = existing["members"].as_array_mut() {
                    for m in ms {
                        if !arr.iter().any(|x| x.as_str() == Some(m.as_str())) {
                            arr.push(json!(m));
                        }
                    }
                }
                continue;
            }
            let mut nb = json!({"role": role, "members": ms});
            if let Some(c) = cond {
                nb["condition"] = c;
            }
            merged.push(nb);
        }
        if merged.iter().any(|b| b.get("condition").is_some()) {
            let version = wire::opt_i64(policy, "version")?.unwrap_or(1);
            if version < 3 {
                return Err(GoogleApiError::invalid_field(
                    "policy.version",
                    "Invalid policy version: policies with conditional role bindings must set version 3.",
                ));
            }
        }
        next.bindings = merged;
    }
    if mask
        .iter()
        .any(|m| m == "auditConfigs" || m == "audit_configs")
    {
        next.audit_configs = opt_array(policy, "auditConfigs")?
            .cloned()
            .unwrap_or_default();
    }
    if next.bindings != current.bindings || next.audit_configs != current.audit_configs {
        next.etag = new_policy_etag();
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::world::ProjectRecord;

    fn world() -> EmulatorWorld {
        let mut w = EmulatorWorld::default();
        w.projects.insert(
            "p".into(),
            ProjectRecord {
                id: "p".into(),
                number: "123".into(),
                name: "p".into(),
                create_ms: 0,
                services: Default::default(),
                policy: IamPolicyRecord::empty(),
                workload_pool_exists: false,
                labels: None,
                parent: None,
            },
        );
        w
    }

    #[test]
    fn identity_pool_must_exist() {
        let mut w = world();
        let body = json!({"policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser",
            "members": ["serviceAccount:p.svc.id.goog[ns/ksa]"]}]}});
        let err = set_policy(&w, &IamPolicyRecord::empty(), &body, 0).unwrap_err();
        assert_eq!(
            err.message,
            "Identity Pool does not exist (p.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API."
        );
        w.projects.get_mut("p").unwrap().workload_pool_exists = true;
        let p = set_policy(&w, &IamPolicyRecord::empty(), &body, 0).unwrap();
        assert_eq!(p.bindings.len(), 1);
        assert!(p.etag.starts_with("BwU") || p.etag.starts_with("BwX") || p.etag.starts_with("Bw"));
    }

    #[test]
    fn etags_compare_as_bytes() {
        assert!(same_etag("BwX+a/b=", "BwX-a_b"));
        assert!(!same_etag("BwXa", "BwXb"));
    }

    #[test]
    fn stale_etag_and_noop_keep_etag() {
        let w = world();
        let body =
            json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["user:a@b.c"]}]}});
        let p1 = set_policy(&w, &IamPolicyRecord::empty(), &body, 0).unwrap();
        let again = json!({"policy": {"etag": p1.etag, "bindings": [{"role": "roles/viewer", "members": ["user:a@b.c"]}]}});
        let p2 = set_policy(&w, &p1, &again, 0).unwrap();
        assert_eq!(p1.etag, p2.etag);
        let stale = json!({"policy": {"etag": "BwAAAAAAAAA=", "bindings": []}});
        assert_eq!(
            set_policy(&w, &p1, &stale, 0).unwrap_err().status,
            "ABORTED"
        );
    }

    #[test]
    fn unknown_sa_member_and_conditions() {
        let w = world();
        let body = json!({"policy": {"bindings": [{"role": "roles/viewer",
            "members": ["serviceAccount:nope@p.iam.gserviceaccount.com"]}]}});
        assert_eq!(
            set_policy(&w, &IamPolicyRecord::empty(), &body, 0)
                .unwrap_err()
                .message,
            "Service account nope@p.iam.gserviceaccount.com does not exist."
        );
        let cond = json!({"policy": {"version": 3, "bindings": [{"role": "roles/viewer", "members": ["user:a@b.c"],
            "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}}]}});
        let p = set_policy(&w, &IamPolicyRecord::empty(), &cond, 0).unwrap();
        assert_eq!(p.to_json()["version"], 3);
        assert_eq!(p.bindings[0]["condition"]["title"], "t");
    }
}
