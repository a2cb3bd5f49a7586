//! Google service accounts: create, adopt, leave alone what `wi` does not own,
//! and find (or, with `--prune`, delete) owned accounts the spec dropped.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Planner, attrs, create, delete, noop, reason, update};
use crate::ids::{gsa_account_id, gsa_member};
use crate::ownership::{is_owned, owned_description};
use crate::plan::desired::{DESCRIPTION, DISPLAY_NAME};
use crate::plan::{ReasonCode, Resource, Warning, WarningCode};

impl Planner<'_> {
    pub(super) fn accounts(&mut self) {
        for gsa in &self.model.service_accounts {
            let email = gsa.email();
            let resource = Resource::ServiceAccount {
                project: gsa.project.clone(),
                account_id: gsa.account_id.clone(),
            };
            let address = resource.address();
            let desired = attrs(json!({
                "email": email,
                DISPLAY_NAME: gsa.display_name,
                DESCRIPTION: owned_description(gsa.description.as_deref()),
            }));
            match self.live.account(&gsa.project, &email) {
                None => self.push(create(
                    resource,
                    desired,
                    reason(ReasonCode::Missing, "the account does not exist"),
                )),
                Some(live) => {
                    let owned = is_owned(live.description.as_deref());
                    let before = attrs(json!({
                        "email": email,
                        DISPLAY_NAME: live.display_name,
                        DESCRIPTION: live.description,
                    }));
                    if owned || gsa.adopt {
                        if before == desired {
                            self.push(noop(
                                resource,
                                before,
                                desired,
                                reason(ReasonCode::InSync, "as declared"),
                            ));
                        } else {
                            let why = if owned {
                                reason(
                                    ReasonCode::Drift,
                                    "display name or description differ from the spec",
                                )
                            } else {
                                reason(
                                    ReasonCode::Adopt,
                                    "adopt: true marks the account as managed by wi",
                                )
                            };
                            self.push(update(resource, before, desired, why));
                        }
                    } else {
                        self.push(noop(
                            resource,
                            before.clone(),
                            before,
                            reason(
                                ReasonCode::NotOwned,
                                "exists and is not managed by wi: only bindings are added",
                            ),
                        ));
                        if live.display_name != gsa.display_name {
                            self.warnings.push(Warning {
                                code: WarningCode::NotOwned,
                                message: format!("{email} is not managed by wi, so its display name and description are left as they are; set `adopt: true` to manage it"),
                                address: Some(address),
                            });
                        }
                    }
                }
            }
        }
        // Orphans: owned accounts in the spec's projects that the spec no longer declares.
        let declared: BTreeSet<String> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.email())
            .collect();
        for (project, live) in &self.live.projects {
            for (email, sa) in &live.service_accounts {
                if !is_owned(sa.description.as_deref()) || declared.contains(email) {
                    continue;
                }
                let account_id = gsa_account_id(email).to_string();
                let resource = Resource::ServiceAccount {
                    project: project.clone(),
                    account_id,
                };
                if self.options.prune {
                    let before = attrs(json!({
                        "email": email,
                        DISPLAY_NAME: sa.display_name,
                        DESCRIPTION: sa.description,
                    }));
                    // Its project grants go first (IAM would keep them as `deleted:` members).
                    let grants: Vec<String> = live
                        .policy
                        .iter()
                        .flat_map(|p| p.bindings.iter())
                        .filter(|b| {
                            b.condition.is_none()
                                && b.members.iter().any(|m| m == &gsa_member(email))
                        })
                        .map(|b| b.role.clone())
                        .collect();
                    let mut deps = Vec::new();
                    for role in grants {
                        let grant = Resource::ProjectIamMember {
                            project: project.clone(),
                            role: role.clone(),
                            member: gsa_member(email),
                        };
                        deps.push(grant.address());
                        let a = attrs(
                            json!({"project": project, "role": role, "member": gsa_member(email)}),
                        );
                        self.push(delete(
                            grant,
                            a,
                            reason(ReasonCode::OrphanPruned, "the account is pruned"),
                        ));
                    }
                    self.push(delete(resource, before, reason(ReasonCode::OrphanPruned, "managed by wi, no longer in the spec, and --prune was given")).with_deps(deps).with_warnings(vec![Warning {
                            code: WarningCode::AccountRevocationDelay,
                            message: "tokens already issued for this account keep working until they expire (up to 1 hour)".into(),
                            address: None,
                        }]));
                } else {
                    self.warnings.push(Warning {
                        code: WarningCode::Orphan,
                        message: format!("{email} is managed by wi but no longer in the spec; run with --prune to delete it"),
                        address: Some(resource.address()),
                    });
                }
            }
        }
    }
}
