//! Stateless ownership: how `wi` knows, without a state file, what is whose.
//!
//! Every object records its [`Owner`] on itself; a run plans removals,
//! releases, prunes and orphan warnings only for objects of the owners its
//! model declares (`Model::owners`):
//! - a Google service account: its description marker ([`Owner::marker`],
//!   `[managed-by: wi owner=O]`, [`OWNERSHIP_MARKER`] for the unnamed owner).
//!   Its [`WORKLOAD_IDENTITY_USER`] members and its own project-role grants
//!   are attributed to the account's owner (IAM members carry no metadata),
//!   who removes the undeclared ones; on an account nobody owns, or an owner
//!   not loaded owns, members are only added, and removed only through
//!   `absent`. A named owner's account also records the spec file that
//!   declares it (`[wi.dev/declared-in: FILE]` after the marker, when it
//!   fits): a run of one of the owner's files never strips or prunes an
//!   account another of its files declares;
//! - a KSA's GSA annotation: the server-side-apply field manager of the
//!   owner ([`Owner::field_manager`], `wi/O`, [`FIELD_MANAGER`] for the
//!   unnamed owner), read from `managedFields` by [`ksa_fields`], plus the
//!   informational [`DECLARED_IN_ANNOTATION`];
//! - a namespace or KSA `wi` created: [`MANAGED_BY_LABEL`]` = wi` and
//!   [`OWNER_LABEL`]` = O` (no owner label for the unnamed owner).
//!
//! Objects of the unnamed owner are what older `wi` wrote; a named owner
//! that declares one claims it (re-marks the account; applies the KSA as
//! `wi/O`, then releases manager `wi`'s fields by an empty apply).
//!
//! Every layer that asks "is this mine?" (live reads, the planner, apply's
//! re-checks, the Kubernetes writes) asks it here, so the rule is changed in
//! one file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The role that lets a KSA act as a GSA.
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// Marks, in a service account's description, an account `wi` owns.
pub const OWNERSHIP_MARKER: &str = "[managed-by: wi]";
/// The field manager of every server-side apply `wi` sends.
pub const FIELD_MANAGER: &str = "wi";
/// The annotation that maps a KSA to its GSA.
pub const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// The label on Kubernetes objects `wi` created (its value is [`FIELD_MANAGER`]).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The label naming the owner on Kubernetes objects a named owner created or manages.
pub const OWNER_LABEL: &str = "wi.dev/owner";
/// The annotation naming the spec file that declares a KSA's mapping
/// (informational: named in collision diagnostics, never diffed).
pub const DECLARED_IN_ANNOTATION: &str = "wi.dev/declared-in";

/// Who a spec's objects belong to. Every file of a spec set names its owner
/// with a top-level `owner:`; a file without one is [`Owner::Unnamed`], the
/// owner older `wi` versions wrote (`[managed-by: wi]`, field manager `wi`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// No `owner:` in the spec, or an object marked by an older `wi`.
    #[default]
    Unnamed,
    /// `owner: NAME`.
    Named(String),
}

impl Owner {
    /// The marker written into a service account's description.
    pub fn marker(&self) -> String {
        match self {
            Owner::Unnamed => OWNERSHIP_MARKER.to_string(),
            Owner::Named(n) => format!("[managed-by: wi owner={n}]"),
        }
    }

    /// The server-side-apply field manager of this owner's writes.
    pub fn field_manager(&self) -> String {
        match self {
            Owner::Unnamed => FIELD_MANAGER.to_string(),
            Owner::Named(n) => format!("{FIELD_MANAGER}/{n}"),
        }
    }

    /// The owner named by a field manager, when it is one of `wi`'s.
    pub fn from_field_manager(manager: &str) -> Option<Owner> {
        if manager == FIELD_MANAGER {
            return Some(Owner::Unnamed);
        }
        manager
            .strip_prefix(FIELD_MANAGER)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|n| !n.is_empty())
            .map(|n| Owner::Named(n.to_string()))
    }

    /// The owner a service account's description records, if any.
    pub fn from_description(description: Option<&str>) -> Option<Owner> {
        let d = description?;
        let start = d.find("[managed-by: wi")?;
        let rest = &d[start + "[managed-by: wi".len()..];
        let end = rest.find(']')?;
        let inner = rest[..end].trim();
        if inner.is_empty() {
            return Some(Owner::Unnamed);
        }
        inner
            .strip_prefix("owner=")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| Owner::Named(n.to_string()))
    }

    /// The owner's name as users read it.
    pub fn name(&self) -> &str {
        match self {
            Owner::Unnamed => "(unnamed)",
            Owner::Named(n) => n,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Unnamed => f.write_str("an unnamed owner (no `owner:`)"),
            Owner::Named(n) => write!(f, "`{n}`"),
        }
    }
}

impl Owner {
    /// Whether this is the unnamed owner (no `owner:`, or older `wi`).
    pub fn is_unnamed(&self) -> bool {
        matches!(self, Owner::Unnamed)
    }

    /// The description `wi` writes for this owner: the user's text followed
    /// by the owner's marker.
    pub fn description(&self, user: Option<&str>) -> String {
        match user.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => format!("{d} {}", self.marker()),
            None => self.marker(),
        }
    }

    /// The value of [`OWNER_LABEL`] on objects this owner creates (`None`
    /// for the unnamed owner, which older `wi` wrote without one).
    pub fn label(&self) -> Option<&str> {
        match self {
            Owner::Unnamed => None,
            Owner::Named(n) => Some(n),
        }
    }
}

/// IAM's limit on a service account's description, in UTF-8 bytes.
pub const DESCRIPTION_MAX_BYTES: usize = 256;

/// How a named owner's account records the spec file that declares it, after
/// the marker: `[wi.dev/declared-in: FILE]` (the file's name, without its
/// directories, so another checkout of the same files reads the same). One
/// owner's spec split over several files is planned as one set: an account
/// whose file is not part of the run is not this run's to prune or strip.
const DECLARED_IN_TAG: &str = "[wi.dev/declared-in:";

impl Owner {
    /// The description a named owner writes for an account declared in
    /// `file`: [`Owner::description`] followed by the file tag, when the whole
    /// fits in [`DESCRIPTION_MAX_BYTES`] (otherwise without it). The unnamed
    /// owner writes what older `wi` wrote, with no tag.
    pub fn description_in(&self, user: Option<&str>, file: &str) -> String {
        let plain = self.description(user);
        let Some(tag) = file_tag(file).filter(|_| !self.is_unnamed()) else {
            return plain;
        };
        let tagged = format!("{plain} {DECLARED_IN_TAG} {tag}]");
        if tagged.len() <= DESCRIPTION_MAX_BYTES {
            tagged
        } else {
            plain
        }
    }
}

/// The name a spec path is recorded by in an account's description (its last
/// component; `None` for standard input or a name that would break the tag).
pub fn file_tag(file: &str) -> Option<&str> {
    let name = std::path::Path::new(file).file_name()?.to_str()?;
    (!name.is_empty() && name != "-" && !name.contains([']', '[']) && !name.trim().is_empty())
        .then_some(name)
}

/// The spec file an account's description records (`[wi.dev/declared-in: FILE]`).
pub fn description_declared_in(description: Option<&str>) -> Option<&str> {
    let d = description?;
    let start = d.find(DECLARED_IN_TAG)?;
    let rest = &d[start + DECLARED_IN_TAG.len()..];
    let end = rest.find(']')?;
    let file = rest[..end].trim();
    (!file.is_empty()).then_some(file)
}

/// Whether a description carries a `wi` ownership marker (of any owner).
pub fn is_owned(description: Option<&str>) -> bool {
    Owner::from_description(description).is_some()
}

/// The description older `wi` (the unnamed owner) writes: the user's text
/// followed by [`OWNERSHIP_MARKER`].
pub fn owned_description(user: Option<&str>) -> String {
    Owner::Unnamed.description(user)
}

/// A description without `wi`'s marker (of any owner) and file tag: the
/// user's own text.
pub fn user_description(description: Option<&str>) -> Option<String> {
    let mut text = description?.to_string();
    for opening in ["[managed-by: wi", DECLARED_IN_TAG] {
        if let Some(start) = text.find(opening) {
            let rest = &text[start..];
            let end = rest.find(']').map_or(text.len(), |e| start + e + 1);
            text = format!("{}{}", &text[..start], &text[end..]);
        }
    }
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Which metadata fields of a Kubernetes object one `wi` field manager owns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WiFields {
    pub(crate) annotation: bool,
    pub(crate) managed_by_label: bool,
    pub(crate) owner_label: bool,
    pub(crate) declared_in: bool,
}

impl WiFields {
    pub(crate) fn any(&self) -> bool {
        self.annotation || self.managed_by_label || self.owner_label || self.declared_in
    }
}

/// Who owns what of a KSA, from its `managedFields`.
#[derive(Debug, Default, Clone)]
pub(crate) struct KsaFields {
    /// What each `wi` owner's server-side applies own (`wi` = unnamed, `wi/O`).
    pub(crate) wi: std::collections::BTreeMap<Owner, WiFields>,
    /// Other managers (sorted, deduplicated) that own the GSA annotation.
    pub(crate) annotation_others: Vec<String>,
    /// Managers other than `wi`'s (sorted, deduplicated) that own any field:
    /// the KSA is co-managed (Helm, kubectl), so a prune releases it instead
    /// of deleting it.
    pub(crate) co_managers: Vec<String>,
}

impl KsaFields {
    /// What `owner`'s applies own.
    pub(crate) fn of(&self, owner: &Owner) -> WiFields {
        self.wi.get(owner).copied().unwrap_or_default()
    }

    /// The `wi` owners whose applies own the GSA annotation.
    pub(crate) fn annotation_owners(&self) -> Vec<&Owner> {
        self.wi
            .iter()
            .filter(|(_, f)| f.annotation)
            .map(|(o, _)| o)
            .collect()
    }

    /// Managers other than `owner`'s own that own any field (other `wi`
    /// owners included).
    pub(crate) fn others_than(&self, owner: &Owner) -> Vec<String> {
        let mut out: Vec<String> = self.co_managers.clone();
        out.extend(
            self.wi
                .iter()
                .filter(|(o, f)| *o != owner && f.any())
                .map(|(o, _)| o.field_manager()),
        );
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_decides_ownership() {
        assert_eq!(owned_description(None), OWNERSHIP_MARKER);
        assert_eq!(owned_description(Some("  ")), OWNERSHIP_MARKER);
        assert_eq!(owned_description(Some("app")), "app [managed-by: wi]");
        assert!(is_owned(Some(&owned_description(Some("app")))));
        assert!(!is_owned(Some("app")));
        assert!(!is_owned(None));
    }

    #[test]
    fn owners_round_trip_through_markers_and_managers() {
        let named = Owner::Named("payments".into());
        for owner in [Owner::Unnamed, named.clone()] {
            let description = format!("app {}", owner.marker());
            assert_eq!(
                Owner::from_description(Some(&description)),
                Some(owner.clone())
            );
            assert_eq!(
                Owner::from_field_manager(&owner.field_manager()),
                Some(owner)
            );
        }
        assert_eq!(named.marker(), "[managed-by: wi owner=payments]");
        assert_eq!(named.field_manager(), "wi/payments");
        assert_eq!(Owner::from_description(Some("plain")), None);
        assert_eq!(Owner::from_field_manager("helm"), None);
        assert_eq!(Owner::from_field_manager("wizard"), None);
        assert_eq!(
            named.description(Some("app")),
            "app [managed-by: wi owner=payments]"
        );
        assert!(is_owned(Some("x [managed-by: wi owner=payments]")));
    }

    #[test]
    fn the_user_description_is_the_text_around_the_marker() {
        assert_eq!(
            user_description(Some("app [managed-by: wi]")),
            Some("app".into())
        );
        assert_eq!(
            user_description(Some("app [managed-by: wi owner=a] more")),
            Some("app  more".into())
        );
        assert_eq!(user_description(Some("[managed-by: wi owner=a]")), None);
        assert_eq!(
            user_description(Some(
                "app [managed-by: wi owner=a] [wi.dev/declared-in: a.yaml]"
            )),
            Some("app".into())
        );
        assert_eq!(user_description(Some("plain")), Some("plain".into()));
        assert_eq!(user_description(None), None);
    }

    #[test]
    fn a_named_owners_account_records_its_file_when_it_fits() {
        let a = Owner::Named("team-a".into());
        let d = a.description_in(Some("app"), "/ci/checkout/specs/team-a.yaml");
        assert_eq!(
            d,
            "app [managed-by: wi owner=team-a] [wi.dev/declared-in: team-a.yaml]"
        );
        assert_eq!(description_declared_in(Some(&d)), Some("team-a.yaml"));
        assert_eq!(Owner::from_description(Some(&d)), Some(a.clone()));
        assert_eq!(
            Owner::Unnamed.description_in(Some("app"), "a.yaml"),
            "app [managed-by: wi]"
        );
        assert_eq!(a.description_in(None, "-"), a.marker());
        let long = "x".repeat(200);
        let d = a.description_in(Some(&long), "team-a.yaml");
        assert!(
            d.len() <= DESCRIPTION_MAX_BYTES && !d.contains("declared-in"),
            "{d}"
        );
        assert_eq!(description_declared_in(Some("app [managed-by: wi]")), None);
    }
}
