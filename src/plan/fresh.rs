//! The freshness check of a saved plan: `wi apply FILE` runs exactly the
//! steps a reviewer saw, so it must refuse a plan made from another version of
//! the spec, or from live state that has moved since (an etag,
//! resourceVersion or hash changed, an object appeared or went away). The
//! check lives with the plan because it is a question about the plan's own
//! inputs; the CLI only renders the typed [`StalePlan`] answer.

use std::collections::BTreeMap;
use std::fmt;

use super::{Fingerprint, Plan};

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
    /// Checks that this (saved) plan was made from the spec whose digest is
    /// `spec_digest` and from the live versions `now` reports.
    pub fn check_fresh(&self, spec_digest: &str, now: &[Fingerprint]) -> Result<(), StalePlan> {
        if self.spec_digest != spec_digest {
            return Err(StalePlan::SpecChanged {
                planned: self.spec_digest.clone(),
                current: spec_digest.to_string(),
            });
        }
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
        }
    }

    #[test]
    fn same_spec_and_versions_is_fresh() {
        let p = plan("d", vec![fp("a", "1"), fp("b", "2")]);
        assert_eq!(p.check_fresh("d", &[fp("b", "2"), fp("a", "1")]), Ok(()));
    }

    #[test]
    fn another_spec_is_stale_before_live_state_is_compared() {
        let p = plan("d", vec![fp("a", "1")]);
        let err = p.check_fresh("e", &[]).unwrap_err();
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
            .check_fresh("d", &[fp("a", "9"), fp("c", "3")])
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
        let text = p.check_fresh("d", &now).unwrap_err().to_string();
        assert!(
            text.contains("  - s09 appeared\n  ... and 2 more"),
            "{text}"
        );
        assert!(!text.contains("s10"), "{text}");
    }
}
