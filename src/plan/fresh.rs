//! The freshness check of a saved plan: `wi apply FILE` runs exactly the
//! changes a reviewer saw. It refuses a plan made from another version of
//! the spec ([`Plan::check_fresh`] compares digests), and otherwise re-plans
//! against live state read at apply time: [`Plan::check_replanned`] accepts
//! the new plan only if the changes it would make are the reviewed ones
//! (same addresses, actions, attributes written, owner and Kubernetes write;
//! no-ops ignored) and every account those changes bind to or annotate with
//! is the same account (its fingerprint, which covers its uniqueId, is
//! unchanged). Edits elsewhere (another member on a project policy, a new
//! unrelated account, a comment in the spec) do not refuse a plan; an edit
//! that changes what it would do does, with the difference listed. A plan
//! edited by hand is refused the same way: the re-plan does not make the
//! edited change. [`Plan::check_fingerprints`] is the older, stricter check
//! (any moved input refuses). The check lives with the plan because it is a
//! question about the plan's own inputs; the CLI only renders the typed
//! [`StalePlan`] answer.

use std::collections::BTreeMap;
use std::fmt;

use super::{
    Action, Attributes, Fingerprint, KubeWrite, Owner, Plan, ReasonCode, Resource, ResourceChange,
};

/// How many moved inputs the message lists before summarising the rest.
const SHOWN: usize = 10;

/// Why a saved plan may not be applied any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum StalePlan {
    /// The spec file's text is not the one the plan was made from.
    #[error("plan is stale: it was made from a different version of the spec")]
    #[diagnostic(
        code(wi::apply::stale_plan),
        help("run `wi plan --out FILE` again with the current spec")
    )]
    SpecChanged {
        /// Digest recorded in the plan.
        planned: String,
        /// Digest of the spec file now.
        current: String,
    },
    /// Live inputs of the plan changed, appeared or went away.
    #[error("plan is stale: live state has moved since the plan was made:\n{}", listing(.moved))]
    #[diagnostic(
        code(wi::apply::stale_plan),
        help("run `wi plan --out FILE` again and review the new plan")
    )]
    LiveMoved {
        /// Every moved input: first those the plan read (in source order),
        /// then those that appeared.
        moved: Vec<MovedInput>,
    },
    /// Re-planned against live state now, the changes differ from the
    /// reviewed ones (or an account they rely on was replaced).
    #[error(
        "plan is stale: the changes it would make now differ from the reviewed ones:\n{}",
        difference_listing(.difference)
    )]
    #[diagnostic(
        code(wi::apply::stale_plan),
        help(
            "`-` is the reviewed plan, `+` what wi would do now; run `wi plan --out FILE` again and review the new plan"
        )
    )]
    ChangesDiffer {
        /// One entry per address that differs, in address order.
        difference: Vec<ChangeDifference>,
    },
}

/// One address whose change differs between the reviewed plan and a re-plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDifference {
    /// The address (or, for a replaced account, its fingerprint source).
    pub address: String,
    /// The lines of the difference, each starting `- ` (reviewed) or `+ ` (now).
    pub lines: Vec<String>,
}

/// How many differing addresses the message lists before summarising the rest.
const SHOWN_DIFFERENCES: usize = 20;

fn difference_listing(difference: &[ChangeDifference]) -> String {
    let mut out = Vec::new();
    for d in difference.iter().take(SHOWN_DIFFERENCES) {
        out.push(format!("  {}", d.address));
        out.extend(d.lines.iter().map(|l| format!("    {l}")));
    }
    if difference.len() > SHOWN_DIFFERENCES {
        out.push(format!(
            "  ... and {} more",
            difference.len() - SHOWN_DIFFERENCES
        ));
    }
    out.join("\n")
}

/// What a change does, as compared between the reviewed plan and a re-plan.
#[derive(PartialEq)]
struct Effect<'p> {
    action: Action,
    after: Option<&'p Attributes>,
    /// For an update, what each written attribute is changed from: someone
    /// else changing it since (another manager's annotation) changes what
    /// the update does.
    replaced: Vec<(&'p str, Option<&'p serde_json::Value>)>,
    owner: &'p Owner,
    kube: &'p KubeWrite,
}

impl<'p> Effect<'p> {
    fn of(c: &'p ResourceChange) -> Self {
        let replaced = match (c.action, &c.after) {
            (Action::Update, Some(after)) => after
                .keys()
                .map(|k| (k, c.before.as_ref().and_then(|b| b.get(k))))
                .collect(),
            _ => Vec::new(),
        };
        Effect {
            action: c.action,
            after: c.after.as_ref(),
            replaced,
            owner: &c.owner,
            kube: &c.kube,
        }
    }
}

fn action_name(a: Option<Action>) -> &'static str {
    match a {
        None => "not planned",
        Some(Action::NoOp) => "no-op",
        Some(Action::Create) => "create",
        Some(Action::Update) => "update",
        Some(Action::Delete) => "delete",
    }
}

/// The lines that show how `then` (reviewed) and `now` differ.
fn difference_lines(then: Option<&ResourceChange>, now: Option<&ResourceChange>) -> Vec<String> {
    let mut lines = Vec::new();
    let (ta, na) = (then.map(|c| c.action), now.map(|c| c.action));
    if ta != na {
        lines.push(format!("- {}", action_name(ta)));
        lines.push(format!("+ {}", action_name(na)));
    }
    // Attributes are compared only where both plans write: otherwise the
    // action lines say it all.
    let written = |c: Option<&ResourceChange>| c.is_some_and(|c| c.action != Action::NoOp);
    let (tw, nw) = if written(then) && written(now) {
        let after = |c: Option<&ResourceChange>| -> Attributes {
            c.and_then(|c| c.after.clone()).unwrap_or_default()
        };
        (after(then), after(now))
    } else {
        (Attributes::new(), Attributes::new())
    };
    let keys: std::collections::BTreeSet<&str> = tw.keys().chain(nw.keys()).collect();
    for k in keys {
        let (t, n) = (tw.get(k), nw.get(k));
        if t != n {
            if let Some(t) = t {
                lines.push(format!("- {k} = {t}"));
            }
            if let Some(n) = n {
                lines.push(format!("+ {k} = {n}"));
            }
        }
    }
    if let (Some(t), Some(n)) = (then, now)
        && t.action == Action::Update
        && n.action == Action::Update
    {
        let before =
            |c: &ResourceChange, k: &str| c.before.as_ref().and_then(|b| b.get(k)).cloned();
        for k in t.after.iter().flat_map(|a| a.keys()) {
            let (tb, nb) = (before(t, k), before(n, k));
            if tb != nb {
                let show = |v: Option<serde_json::Value>| {
                    v.map_or("(absent)".to_string(), |v| v.to_string())
                };
                lines.push(format!("- {k} was {}", show(tb)));
                lines.push(format!("+ {k} is {}", show(nb)));
            }
        }
    }
    if let (Some(t), Some(n)) = (then, now) {
        if t.owner != n.owner {
            lines.push(format!("- owner {}", t.owner));
            lines.push(format!("+ owner {}", n.owner));
        }
        if t.kube != n.kube {
            lines.push(format!("- kubernetes write {:?}", t.kube));
            lines.push(format!("+ kubernetes write {:?}", n.kube));
        }
    }
    lines
}

/// The emails of the Google service accounts the plan's changes bind to or
/// annotate a KSA with.
fn accounts_relied_on(plan: &Plan) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for c in plan.actionable() {
        match &c.resource {
            Resource::ServiceAccountIamMember { email, .. } => {
                out.insert(email.clone());
            }
            Resource::ProjectIamMember { member, .. } => {
                if let Some(email) = member.strip_prefix("serviceAccount:")
                    && !email.contains(".svc.id.goog[")
                {
                    out.insert(email.to_string());
                }
            }
            Resource::KubernetesServiceAccount { .. } => {
                for attrs in [&c.before, &c.after].into_iter().flatten() {
                    for (k, v) in attrs {
                        if k.contains("iam.gke.io/gcp-service-account")
                            && let Some(email) = v.as_str()
                        {
                            out.insert(email.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// One live input whose version is not the one the plan saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedInput {
    /// What was read, as in [`Fingerprint::source`].
    pub source: String,
    /// How it moved.
    pub movement: Movement,
}

/// How a live input moved since the plan was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Movement {
    /// Still there, with another version.
    Changed { planned: String, now: String },
    /// The plan read it; it is no longer reported.
    Gone { planned: String },
    /// Reported now; the plan never read it.
    Appeared { now: String },
}

impl fmt::Display for MovedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.movement {
            Movement::Changed { .. } => "changed",
            Movement::Gone { .. } => "is gone",
            Movement::Appeared { .. } => "appeared",
        };
        write!(f, "{} {how}", self.source)
    }
}

fn listing(moved: &[MovedInput]) -> String {
    let mut out: Vec<String> = moved
        .iter()
        .take(SHOWN)
        .map(|m| format!("  - {m}"))
        .collect();
    if moved.len() > SHOWN {
        out.push(format!("  ... and {} more", moved.len() - SHOWN));
    }
    out.join("\n")
}

impl Plan {
    /// Checks that this (saved, reviewed) plan was made from the spec whose
    /// digest is `spec_digest`.
    pub fn check_fresh(&self, spec_digest: &str) -> Result<(), StalePlan> {
        if self.spec_digest != spec_digest {
            return Err(StalePlan::SpecChanged {
                planned: self.spec_digest.clone(),
                current: spec_digest.to_string(),
            });
        }
        Ok(())
    }

    /// Checks that `now`, the plan recomputed from the same spec and choices
    /// against live state read at apply time, makes exactly the changes of
    /// this reviewed plan, and that the accounts they rely on are the same
    /// accounts. No-ops and objects no change touches are ignored.
    pub fn check_replanned(&self, now: &Plan) -> Result<(), StalePlan> {
        self.check_fresh(&now.spec_digest)?;
        let by_address = |p: &'_ Plan| -> BTreeMap<String, ResourceChange> {
            p.changes
                .iter()
                .map(|c| (c.address.clone(), c.clone()))
                .collect()
        };
        let (then_all, now_all) = (by_address(self), by_address(now));
        let addresses: std::collections::BTreeSet<&String> = self
            .actionable()
            .chain(now.actionable())
            .map(|c| &c.address)
            .collect();
        let mut difference = Vec::new();
        for address in addresses {
            let (t, n) = (then_all.get(address), now_all.get(address));
            if t.map(Effect::of) == n.map(Effect::of) {
                continue;
            }
            difference.push(ChangeDifference {
                address: address.clone(),
                lines: difference_lines(t, n),
            });
        }
        let version = |p: &Plan, source: &str| {
            p.fingerprints
                .iter()
                .find(|f| f.source == source)
                .map(|f| f.version.clone())
        };
        for email in accounts_relied_on(self) {
            let source = format!("service_account[\"{email}\"]");
            let (t, n) = (version(self, &source), version(now, &source));
            if t != n {
                let what = match (&t, &n) {
                    (Some(_), Some(_)) => "changed or was deleted and recreated (another uniqueId)",
                    (Some(_), None) => "was deleted",
                    (None, _) => "appeared",
                };
                difference.push(ChangeDifference {
                    address: source,
                    lines: vec![format!(
                        "! the account the plan binds to {what} since the plan was made"
                    )],
                });
            }
        }
        if difference.is_empty() {
            Ok(())
        } else {
            Err(StalePlan::ChangesDiffer { difference })
        }
    }

    /// The strict check: the live versions `now` reports are exactly those
    /// the plan was computed from.
    pub fn check_fingerprints(
        &self,
        spec_digest: &str,
        now: &[Fingerprint],
    ) -> Result<(), StalePlan> {
        self.check_fresh(spec_digest)?;
        let then: BTreeMap<&str, &str> = self
            .fingerprints
            .iter()
            .map(|f| (f.source.as_str(), f.version.as_str()))
            .collect();
        let now: BTreeMap<&str, &str> = now
            .iter()
            .map(|f| (f.source.as_str(), f.version.as_str()))
            .collect();
        let mut moved = Vec::new();
        for (source, planned) in &then {
            let movement = match now.get(source) {
                Some(v) if v == planned => continue,
                Some(v) => Movement::Changed {
                    planned: planned.to_string(),
                    now: v.to_string(),
                },
                None => Movement::Gone {
                    planned: planned.to_string(),
                },
            };
            moved.push(MovedInput {
                source: source.to_string(),
                movement,
            });
        }
        for (source, v) in &now {
            if !then.contains_key(source) {
                moved.push(MovedInput {
                    source: source.to_string(),
                    movement: Movement::Appeared { now: v.to_string() },
                });
            }
        }
        if moved.is_empty() {
            Ok(())
        } else {
            Err(StalePlan::LiveMoved { moved })
        }
    }
}

/// The share of an owner's bindings and annotations a plan may remove
/// without `--allow-mass-removal`, unless told otherwise.
pub const DEFAULT_MAX_REMOVALS_PERCENT: u8 = 50;

/// An owner most of whose access the plan removes (an emptied or truncated
/// spec, a bad merge): applied only with `--allow-mass-removal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassRemoval {
    /// The owner (`(unnamed)` for specs without `owner:`).
    pub owner: String,
    /// Bindings and annotations the plan removes.
    pub removed: usize,
    /// Bindings and annotations the owner has now.
    pub existing: usize,
}

impl fmt::Display for MassRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.owner.starts_with('`') {
            format!("owner {}", self.owner)
        } else {
            self.owner.clone()
        };
        write!(
            f,
            "{who} would lose {} of its {} bindings and annotations",
            self.removed, self.existing
        )
    }
}

/// True for the changes that carry access: IAM members and KSA annotations.
/// Whether a change is about workload access the guard counts: a KSA's
/// workload-identity binding, a project-role grant, a KSA's annotation (a
/// person's or group's membership on an account is not a workload's access).
fn is_access(c: &ResourceChange) -> bool {
    match &c.resource {
        Resource::ServiceAccountIamMember { member, .. } => member.contains(".svc.id.goog["),
        Resource::ProjectIamMember { .. } | Resource::KubernetesServiceAccount { .. } => true,
        _ => false,
    }
}

const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

fn annotated(attrs: Option<&Attributes>) -> bool {
    attrs.is_some_and(|a| {
        a.iter()
            .any(|(k, v)| k.contains(GSA_ANNOTATION) && !v.is_null())
    })
}

impl Plan {
    /// The owners of whom this plan removes every binding and annotation, or
    /// more than `max_percent` of them.
    pub fn mass_removals(&self, max_percent: u8) -> Vec<MassRemoval> {
        // Per owner: (removed, existing, added). A removal the spec asks for
        // by name (`absent`) is not a loss of the owner's access, and one that
        // is replaced in the same plan (a KSA moved to another account, a KSA
        // renamed) is offset by its replacement.
        let mut by_owner: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for c in self.changes.iter().filter(|c| is_access(c)) {
            if c.reason.code == ReasonCode::DeclaredAbsent {
                continue;
            }
            let is_ksa = matches!(c.resource, Resource::KubernetesServiceAccount { .. });
            let (was, will) = if is_ksa {
                (annotated(c.before.as_ref()), annotated(c.after.as_ref()))
            } else {
                (c.before.is_some(), c.after.is_some())
            };
            let entry = by_owner.entry(c.owner.to_string()).or_default();
            if !was {
                if will {
                    entry.2 += 1;
                }
                continue;
            }
            let removed = if is_ksa {
                c.action == Action::Delete || (c.action == Action::Update && !will)
            } else {
                c.action == Action::Delete
            };
            entry.1 += 1;
            if removed {
                entry.0 += 1;
            }
        }
        let by_owner: BTreeMap<String, (usize, usize)> = by_owner
            .into_iter()
            .map(|(owner, (removed, existing, added))| {
                (owner, (removed.saturating_sub(added), existing))
            })
            .collect();
        by_owner
            .into_iter()
            .filter(|(_, (removed, existing))| {
                *removed > 0
                    && (removed == existing || removed * 100 > existing * usize::from(max_percent))
            })
            .map(|(owner, (removed, existing))| MassRemoval {
                owner,
                removed,
                existing,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(source: &str, version: &str) -> Fingerprint {
        Fingerprint {
            source: source.into(),
            version: version.into(),
        }
    }

    fn plan(digest: &str, fingerprints: Vec<Fingerprint>) -> Plan {
        Plan {
            format_version: super::super::FORMAT_VERSION.into(),
            spec_digest: digest.into(),
            changes: Vec::new(),
            warnings: Vec::new(),
            fingerprints,
            unknowns: Vec::new(),
        }
    }

    #[test]
    fn same_spec_and_versions_is_fresh() {
        let p = plan("d", vec![fp("a", "1"), fp("b", "2")]);
        assert_eq!(
            p.check_fingerprints("d", &[fp("b", "2"), fp("a", "1")]),
            Ok(())
        );
    }

    #[test]
    fn another_spec_is_stale_before_live_state_is_compared() {
        let p = plan("d", vec![fp("a", "1")]);
        let err = p.check_fingerprints("e", &[]).unwrap_err();
        assert!(matches!(err, StalePlan::SpecChanged { .. }));
        assert_eq!(
            err.to_string(),
            "plan is stale: it was made from a different version of the spec"
        );
    }

    #[test]
    fn names_what_changed_went_away_and_appeared() {
        let p = plan("d", vec![fp("a", "1"), fp("b", "2")]);
        let err = p
            .check_fingerprints("d", &[fp("a", "9"), fp("c", "3")])
            .unwrap_err();
        let StalePlan::LiveMoved { moved } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            moved[0].movement,
            Movement::Changed {
                planned: "1".into(),
                now: "9".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "plan is stale: live state has moved since the plan was made:\n  - a changed\n  - b is gone\n  - c appeared"
        );
    }

    #[test]
    fn lists_ten_moved_inputs_then_counts_the_rest() {
        let p = plan("d", Vec::new());
        let now: Vec<Fingerprint> = (0..12).map(|i| fp(&format!("s{i:02}"), "1")).collect();
        let text = p.check_fingerprints("d", &now).unwrap_err().to_string();
        assert!(
            text.contains("  - s09 appeared\n  ... and 2 more"),
            "{text}"
        );
        assert!(!text.contains("s10"), "{text}");
    }
}
