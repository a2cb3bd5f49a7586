//! IAM steps: one read-modify-write per policy, carrying every member edit of
//! its task; only unconditional bindings are touched, except for the grants
//! of an account being pruned, which go from every binding of their role.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, StepError};
use crate::gcp::types::{Binding, IamPolicy};
use crate::gcp::{GcpError, PolicyTarget};
use crate::plan::{Action, ReasonCode, Resource, ResourceChange};

/// One read-modify-write of a policy carrying every member edit of the task.
/// The client re-reads and re-applies only these edits on an etag conflict,
/// and waits while an account the plan creates or the workload pool is not
/// yet visible to IAM (eventual consistency), within the step deadline.
///
/// When IAM refuses the write for one member whose account is gone (`400
/// "Service account X does not exist."`), the write is made again without
/// that member's edits, so the other accounts' grants still land; the
/// refused member's changes are returned by address, each with its error.
pub(super) async fn edit_policy(
    ctx: &Context,
    target: PolicyTarget,
    changes: &[ResourceChange],
) -> Result<HashMap<String, Arc<StepError>>, StepError> {
    let mut adds: Vec<(String, String)> = Vec::new();
    let mut removes: Vec<(String, String)> = Vec::new();
    let mut purges: Vec<(String, String)> = Vec::new();
    for c in changes {
        let (role, member) = match &c.resource {
            Resource::ServiceAccountIamMember { role, member, .. }
            | Resource::ProjectIamMember { role, member, .. } => (role.clone(), member.clone()),
            _ => continue,
        };
        match c.action {
            Action::Create => adds.push((role, member)),
            Action::Delete if c.reason.code == ReasonCode::OrphanPruned => {
                purges.push((role, member))
            }
            Action::Delete => removes.push((role, member)),
            _ => {}
        }
    }
    let address = changes
        .first()
        .map(|c| c.address.clone())
        .unwrap_or_default();
    let deadline = Instant::now() + ctx.options.step_deadline;
    let left = || deadline.saturating_duration_since(Instant::now());
    // Members IAM refused, with the refusal.
    let mut refused: BTreeMap<String, Arc<GcpError>> = BTreeMap::new();
    loop {
        let keep = |edits: &[(String, String)]| -> Vec<(String, String)> {
            edits
                .iter()
                .filter(|(_, m)| !refused.contains_key(m))
                .cloned()
                .collect()
        };
        let (now_adds, now_removes, now_purges) = (keep(&adds), keep(&removes), keep(&purges));
        let edit = move |policy: &mut IamPolicy| {
            let purged = purge_members(policy, &now_purges);
            edit_members(policy, &now_adds, &now_removes) || purged
        };
        let err = match ctx.gcp.modify_iam_policy(&target, left(), &edit).await {
            Ok(_) => break,
            Err(e) => e,
        };
        if err.is_service_account_missing()
            && let Some(member) = gone_member(&err, &adds, &ctx.created, &refused)
        {
            // Said on the refused member's own step.
            let on = changes
                .iter()
                .find(|c| {
                    matches!(&c.resource,
                        Resource::ServiceAccountIamMember { member: m, .. }
                        | Resource::ProjectIamMember { member: m, .. } if *m == member)
                })
                .map_or(address.as_str(), |c| c.address.as_str());
            ctx.progress.note(
                on,
                &format!("IAM refuses {member} (its account does not exist); writing the other members without it"),
            );
            refused.insert(member, Arc::new(err));
            continue;
        }
        let settling = err.is_service_account_missing()
            || err.is_identity_pool_missing()
            || (matches!(target, PolicyTarget::ServiceAccount { .. }) && err.is_not_found());
        if !settling {
            return Err(err.into());
        }
        let progress = ctx.progress.clone();
        let waiting = address.clone();
        let on_wait = move |e: &GcpError, delay: Duration| {
            let why = if e.is_identity_pool_missing() {
                "the workload pool is not visible to IAM yet"
            } else {
                "the service account is not visible to IAM yet"
            };
            progress.note(
                &waiting,
                &format!("{why}; retrying in {}ms", delay.as_millis()),
            );
        };
        ctx.gcp
            .modify_iam_policy_waiting(&target, left(), &edit, &on_wait)
            .await?;
        break;
    }
    let policy = target.to_string();
    Ok(changes
        .iter()
        .filter_map(|c| {
            let member = match &c.resource {
                Resource::ServiceAccountIamMember { member, .. }
                | Resource::ProjectIamMember { member, .. } => member,
                _ => return None,
            };
            let source = refused.get(member)?.clone();
            Some((
                c.address.clone(),
                Arc::new(StepError::MemberRefused {
                    member: member.clone(),
                    policy: policy.clone(),
                    source,
                }),
            ))
        })
        .collect())
}

/// The member of `adds` whose account IAM says does not exist, when it is
/// not one the plan creates (those are only not visible yet) and was not
/// refused already.
fn gone_member(
    err: &GcpError,
    adds: &[(String, String)],
    created: &BTreeSet<String>,
    refused: &BTreeMap<String, Arc<GcpError>>,
) -> Option<String> {
    let GcpError::Api { message, .. } = err else {
        return None;
    };
    adds.iter().find_map(|(_, member)| {
        let email = member.strip_prefix("serviceAccount:")?;
        (message.contains(email) && !created.contains(email) && !refused.contains_key(member))
            .then(|| member.clone())
    })
}

/// Removes members from every binding of their role, conditional ones too
/// (the grants of an account being deleted). Returns whether the policy changed.
pub(crate) fn purge_members(policy: &mut IamPolicy, purges: &[(String, String)]) -> bool {
    let mut changed = false;
    for (role, member) in purges {
        for b in policy.bindings.iter_mut().filter(|b| &b.role == role) {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            changed |= b.members.len() != before;
        }
    }
    policy.bindings.retain(|b| !b.members.is_empty());
    changed
}

/// Adds and removes members in unconditional bindings only; conditional
/// bindings, other roles and other members are never touched. Returns whether
/// the policy changed.
pub(crate) fn edit_members(
    policy: &mut IamPolicy,
    adds: &[(String, String)],
    removes: &[(String, String)],
) -> bool {
    let mut changed = false;
    for (role, member) in removes {
        for b in policy
            .bindings
            .iter_mut()
            .filter(|b| &b.role == role && b.condition.is_none())
        {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            changed |= b.members.len() != before;
        }
    }
    policy.bindings.retain(|b| !b.members.is_empty());
    for (role, member) in adds {
        if let Some(b) = policy
            .bindings
            .iter_mut()
            .find(|b| &b.role == role && b.condition.is_none())
        {
            if !b.members.contains(member) {
                b.members.push(member.clone());
                changed = true;
            }
        } else {
            policy.bindings.push(Binding {
                role: role.clone(),
                members: vec![member.clone()],
                condition: None,
                rest: Default::default(),
            });
            changed = true;
        }
    }
    changed
}

/// Enables an account the plan found disabled (`disabled: true -> false` in
/// its change); a change that does not enable is left alone.
pub(super) async fn enable_if_disabled(
    ctx: &Context,
    email: &str,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let was = |side: Option<&crate::plan::Attributes>| {
        // The attribute the plan sets only when the live account is disabled.
        side.and_then(|a| a.get("disabled"))
            .and_then(serde_json::Value::as_bool)
    };
    if was(change.before.as_ref()) == Some(true) && was(change.after.as_ref()) == Some(false) {
        ctx.gcp.enable_service_account(email).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ownership::WORKLOAD_IDENTITY_USER;

    #[test]
    fn edit_members_touches_only_its_own_members() {
        let cond = json!({"title": "t", "expression": "true"});
        let mut policy = IamPolicy {
            version: Some(1),
            etag: Some("BwX".into()),
            bindings: vec![
                Binding {
                    role: WORKLOAD_IDENTITY_USER.into(),
                    members: vec!["a".into(), "b".into()],
                    ..Default::default()
                },
                Binding {
                    role: WORKLOAD_IDENTITY_USER.into(),
                    members: vec!["c".into()],
                    condition: Some(cond.clone()),
                    ..Default::default()
                },
                Binding {
                    role: "roles/x".into(),
                    members: vec!["c".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let role = WORKLOAD_IDENTITY_USER.to_string();
        assert!(edit_members(
            &mut policy,
            &[(role.clone(), "d".into())],
            &[(role.clone(), "a".into()), (role.clone(), "c".into())]
        ));
        assert_eq!(
            policy.bindings[0].members,
            vec!["b".to_string(), "d".to_string()]
        );
        assert_eq!(
            policy.bindings[1].members,
            vec!["c".to_string()],
            "conditional binding untouched"
        );
        assert_eq!(policy.bindings[1].condition, Some(cond));
        assert_eq!(policy.bindings[2].members, vec!["c".to_string()]);
        assert!(
            !edit_members(&mut policy, &[(role.clone(), "d".into())], &[]),
            "idempotent"
        );
        // A pruned account's member goes from the conditional binding too.
        assert!(purge_members(&mut policy, &[(role.clone(), "c".into())]));
        assert_eq!(
            policy.bindings.len(),
            2,
            "the emptied conditional binding goes"
        );
        assert_eq!(
            policy.bindings[1].members,
            vec!["c".to_string()],
            "other roles untouched"
        );
        assert!(!purge_members(&mut policy, &[(role, "c".into())]));
    }
}
