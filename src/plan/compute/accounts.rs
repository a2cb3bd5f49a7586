//! Google service accounts: create, adopt or claim for the spec's owner,
//! leave alone what this owner does not own, refuse an account another
//! owner owns, and find (or, with `--prune`, delete) this owner's accounts
//! the spec dropped.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Planner, create, delete, noop, owner_suffix, reason, update};
use crate::ids::{gsa_account_id, gsa_member};
use crate::ownership::{Owner, description_declared_in, file_tag, user_description};
use crate::plan::desired::{DESCRIPTION, DISPLAY_NAME};
use crate::plan::{ReasonCode, Resource, Warning, WarningCode};

/// The attribute of a disabled account (only present when the live one is).
const DISABLED: &str = "disabled";

impl Planner<'_> {
    pub(super) fn accounts(&mut self) {
        for gsa in &self.model.service_accounts {
            let email = gsa.email();
            let resource = Resource::ServiceAccount {
                project: gsa.project.clone(),
                account_id: gsa.account_id.clone(),
            };
            let address = resource.address();
            if let Some(other) = self.account_collision(gsa) {
                self.problem(
                    address,
                    format!(
                        "{email} is owned by {other} (its description carries `{}`), and {} declares it at {}",
                        other.marker(),
                        gsa.owner,
                        gsa.origin
                    ),
                    Some(&format!(
                        "an account has one owner: declare it (and its mappings) in {other}'s spec, or remove it from this one; `adopt` never takes over another owner's account"
                    )),
                );
                continue;
            }
            let live = self.live.account(&gsa.project, &email);
            // What the spec leaves out stays as it is.
            let display_name = gsa
                .display_name
                .clone()
                .or_else(|| live.and_then(|l| l.display_name.clone()));
            let user_text = gsa
                .description
                .clone()
                .or_else(|| live.and_then(|l| user_description(l.description.as_deref())));
            let desired = attrs!({
                "email": email,
                DISPLAY_NAME: display_name,
                DESCRIPTION: gsa.owner.description_in(user_text.as_deref(), &gsa.origin.file),
            });
            let Some(live) = live else {
                self.push(
                    create(
                        resource,
                        desired,
                        reason(ReasonCode::Missing, "the account does not exist"),
                    )
                    .for_owner(&gsa.owner),
                );
                continue;
            };
            let marker = Owner::from_description(live.description.as_deref());
            let mut before = attrs!({
                "email": email,
                DISPLAY_NAME: live.display_name,
                DESCRIPTION: live.description,
            });
            let owned = self.account_owner(&email).as_ref() == Some(&gsa.owner);
            // A disabled account mints no tokens: every mapping to it is
            // broken. The key appears only then, so in-sync plans keep their shape.
            let mut desired = desired;
            if live.disabled {
                before.insert(DISABLED, json!(true));
                desired.insert(DISABLED, json!(!owned));
                if !owned {
                    self.warnings.push(Warning {
                        code: WarningCode::DisabledAccount,
                        message: format!(
                            "{email} is disabled, so no KSA can act as it; wi does not manage it: ask its owner to enable it (gcloud iam service-accounts enable {email})"
                        ),
                        address: Some(address.clone()),
                    });
                }
            }
            if owned {
                if live.disabled
                    && before.get(DISPLAY_NAME) == desired.get(DISPLAY_NAME)
                    && before.get(DESCRIPTION) == desired.get(DESCRIPTION)
                {
                    self.push(
                        update(
                            resource,
                            before,
                            desired,
                            reason(
                                ReasonCode::Disabled,
                                "the account is disabled: its KSAs get no tokens; wi enables it",
                            ),
                        )
                        .for_owner(&gsa.owner),
                    );
                    continue;
                }
                if before == desired {
                    self.push(noop(
                        resource,
                        before,
                        desired,
                        reason(ReasonCode::InSync, "as declared"),
                    ));
                    continue;
                }
                let only_the_file = before.get(DISPLAY_NAME) == desired.get(DISPLAY_NAME)
                    && user_description(live.description.as_deref()) == user_text
                    && description_declared_in(live.description.as_deref())
                        != file_tag(&gsa.origin.file);
                let why = match &marker {
                    Some(m) if m == &gsa.owner && only_the_file => reason(
                        ReasonCode::Drift,
                        "the description does not name the spec file that declares the account",
                    ),
                    Some(m) if m == &gsa.owner => reason(
                        ReasonCode::Drift,
                        "display name or description differ from the spec",
                    ),
                    Some(_) => reason(
                        ReasonCode::Adopt,
                        format!(
                            "an older wi (no owner) manages the account: {} claims it",
                            gsa.owner
                        ),
                    ),
                    None => reason(
                        ReasonCode::Adopt,
                        format!(
                            "adopt: true marks the account as managed by wi{}",
                            owner_suffix(&gsa.owner)
                        ),
                    ),
                };
                self.push(update(resource, before, desired, why).for_owner(&gsa.owner));
            } else {
                self.push(noop(
                    resource,
                    before.clone(),
                    before,
                    reason(
                        ReasonCode::NotOwned,
                        "exists, not managed by wi: bindings are only added",
                    ),
                ));
                if gsa.display_name.is_some() && live.display_name != gsa.display_name {
                    self.warnings.push(Warning {
                        code: WarningCode::NotOwned,
                        message: format!("{email} is not managed by wi, so its display name and description are left as they are; set `adopt: true` to manage it"),
                        address: Some(address),
                    });
                }
            }
        }
        self.disabled_external_accounts();
        self.orphan_accounts();
    }

    /// Accounts mappings name that the spec does not declare and that are
    /// disabled: `wi` does not manage them, so it warns.
    fn disabled_external_accounts(&mut self) {
        let declared: BTreeSet<String> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.email())
            .collect();
        let named: BTreeSet<(&str, &str)> = self
            .model
            .mappings
            .iter()
            .filter(|m| !declared.contains(&m.gsa_email))
            .map(|m| (m.gsa_project.as_str(), m.gsa_email.as_str()))
            .collect();
        for (project, email) in named {
            if self
                .live
                .account(project, email)
                .is_some_and(|a| a.disabled)
            {
                self.warnings.push(Warning {
                    code: WarningCode::DisabledAccount,
                    message: format!(
                        "{email} is disabled, so no KSA can act as it; wi does not manage it: ask its owner to enable it (gcloud iam service-accounts enable {email})"
                    ),
                    address: None,
                });
            }
        }
    }

    /// Accounts of this run's owners, in the spec's projects, that the spec
    /// no longer declares.
    fn orphan_accounts(&mut self) {
        let declared: BTreeSet<String> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.email())
            .collect();
        for (project, live) in &self.live.projects {
            for (email, sa) in &live.service_accounts {
                let Some(owner) = Owner::from_description(sa.description.as_deref()) else {
                    continue;
                };
                if !self.loaded(&owner) || declared.contains(email) {
                    continue;
                }
                let account_id = gsa_account_id(email).to_string();
                let resource = Resource::ServiceAccount {
                    project: project.clone(),
                    account_id,
                };
                // A named owner's spec split over several files: the
                // account's file must be part of the run (the unnamed owner
                // keeps older wi's one-spec behaviour).
                if !owner.is_unnamed()
                    && let Some(file) = description_declared_in(sa.description.as_deref())
                    && !self.in_run(file)
                {
                    self.problem(
                        resource.address(),
                        format!(
                            "{email} is {owner}'s, declared in {file}, which is not part of this run, and no file of this run declares it: this run would remove its members and, with --prune, delete it"
                        ),
                        Some(&format!(
                            "one owner's spec split in several files is planned as one set: pass every file of {} (`-f {file}` too, or `-f DIR`); if {file} was deleted or renamed, remove `[wi.dev/declared-in: {file}]` from the account's description once (`gcloud iam service-accounts update {email} --description=...`)",
                            owner.name()
                        )),
                    );
                    continue;
                }
                if !self.options.prune {
                    self.warnings.push(Warning {
                        code: WarningCode::Orphan,
                        message: format!("{email} is managed by wi{} but no longer in the spec; run with --prune to delete it", owner_suffix(&owner)),
                        address: Some(resource.address()),
                    });
                    continue;
                }
                let before = attrs!({
                    "email": email,
                    DISPLAY_NAME: sa.display_name,
                    DESCRIPTION: sa.description,
                });
                // Its grants in its project go first, conditional ones too
                // (IAM would keep them as `deleted:` members).
                let member = gsa_member(email);
                let mut grants: Vec<(String, Vec<String>)> = Vec::new();
                for b in live.policy.iter().flat_map(|p| p.bindings.iter()) {
                    if !b.members.contains(&member) {
                        continue;
                    }
                    let title = b.condition.as_ref().map(|c| {
                        c.get("title")
                            .and_then(|t| t.as_str())
                            .unwrap_or("(untitled)")
                            .to_string()
                    });
                    match grants.iter_mut().find(|(r, _)| r == &b.role) {
                        Some((_, titles)) => titles.extend(title),
                        None => grants.push((b.role.clone(), title.into_iter().collect())),
                    }
                }
                let mut deps = Vec::new();
                for (role, conditions) in grants {
                    let grant = Resource::ProjectIamMember {
                        project: project.clone(),
                        role: role.clone(),
                        member: member.clone(),
                    };
                    deps.push(grant.address());
                    let mut a = attrs!({"project": project, "role": role, "member": member});
                    if !conditions.is_empty() {
                        a.insert("conditions", json!(conditions));
                    }
                    self.push(
                        delete(
                            grant,
                            a,
                            reason(
                                ReasonCode::OrphanPruned,
                                "the account is pruned: every grant of it in its project goes first",
                            ),
                        )
                        .for_owner(&owner),
                    );
                }
                self.warnings.push(Warning {
                    code: WarningCode::GrantsElsewhere,
                    message: format!("{email} is deleted: grants of it outside project {project} (other projects, buckets, datasets) are not removed by wi and remain as `deleted:{member}` members; remove them before applying"),
                    address: Some(resource.address()),
                });
                self.push(
                    delete(
                        resource,
                        before,
                        reason(
                            ReasonCode::OrphanPruned,
                            format!("managed by wi{}, no longer in the spec, and --prune was given", owner_suffix(&owner)),
                        ),
                    )
                    .with_deps(deps)
                    .with_warnings(vec![Warning {
                        code: WarningCode::AccountRevocationDelay,
                        message: "tokens already issued for this account keep working until they expire (up to 1 hour)".into(),
                        address: None,
                    }])
                    .for_owner(&owner),
                );
            }
        }
    }
}
