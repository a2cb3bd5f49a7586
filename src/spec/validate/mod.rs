//! Raw spec → validated [`Model`]: every name checked, every reference
//! resolved, fleet shorthands (defaults, groups, `*`, `ksas`) expanded.
//!
//! Validation never stops at the first problem: each check records a
//! [`Problem`] pointing at the offending value and carries on, so a user sees
//! everything wrong with the file in one run.
//!
//! The shared context ([`Ctx`]: problems, name checks, limits) lives here;
//! each section of the spec has its own file (`clusters`, `accounts`,
//! `mappings` with `absent`), and `resolve` turns references into declared
//! clusters and accounts.

mod accounts;
mod clusters;
mod mappings;
mod resolve;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use miette::NamedSource;

use accounts::validate_accounts;
use clusters::{collect_groups, validate_clusters};
use mappings::{validate_absent, validate_mappings};
use resolve::Resolver;

use super::diagnostic::Problem;
use super::model::{ClusterKey, Model, Origin, Owner};
use super::names;
use super::raw::{RawSpec, Sp, SpList};

/// Most clusters one spec may declare.
const MAX_CLUSTERS: usize = 5_000;
/// Most service accounts, mappings or absent entries one spec may declare.
const MAX_ITEMS: usize = 20_000;
/// Most (cluster, namespace, KSA) mappings after expansion.
const MAX_EXPANDED: usize = 200_000;
/// Longest display name IAM accepts.
const MAX_DISPLAY_NAME: usize = 100;
/// IAM allows 256; `wi` keeps room for its ownership marker.
const MAX_DESCRIPTION: usize = 200;

struct Ctx {
    src: Arc<NamedSource<String>>,
    problems: Vec<Problem>,
    /// The owner of the file being validated.
    owner: Owner,
    /// Byte offset of every line start of the source, for [`Ctx::origin`].
    line_starts: Vec<usize>,
}

impl Ctx {
    /// Where a span sits: the file's name and the 1-based line.
    fn origin(&self, span: Option<Range<usize>>) -> Origin {
        let line = span.map_or(0, |s| self.line_starts.partition_point(|&l| l <= s.start));
        Origin {
            file: self.src.name().to_owned(),
            line,
        }
    }

    fn new_problem(&self, code: &'static str, message: impl Into<String>) -> Problem {
        Problem::new(code, message, self.src.clone())
    }

    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// Checks a name with `check`, reporting `code` at the value on failure.
    fn name(
        &mut self,
        sp: &Sp<String>,
        what: &str,
        code: &'static str,
        check: fn(&str) -> Result<(), String>,
    ) -> bool {
        match check(&sp.value) {
            Ok(()) => true,
            Err(rule) => {
                let p = self
                    .new_problem(code, format!("invalid {what} `{}`", sp.value))
                    .label(sp.span(), format!("not a valid {what}"))
                    .help(rule);
                self.push(p);
                false
            }
        }
    }

    /// Checks that a list is not empty and has no repeated entry; returns the entries.
    fn list<'a>(&mut self, list: &'a SpList, what: &str) -> &'a [Sp<String>] {
        if list.value.is_empty() {
            let p = self
                .new_problem("wi::spec::empty_list", format!("empty list of {what}"))
                .label(list.span(), "empty list")
                .help("an empty list means nothing here: add an entry or remove the field");
            self.push(p);
        }
        let mut seen: HashMap<&str, &Sp<String>> = HashMap::new();
        for item in &list.value {
            if let Some(first) = seen.get(item.value.as_str()) {
                let p = self
                    .new_problem(
                        "wi::spec::duplicate_entry",
                        format!("`{}` appears twice in this list of {what}", item.value),
                    )
                    .label(item.span(), "repeated here")
                    .label(first.span(), "first listed here");
                self.push(p);
            } else {
                seen.insert(&item.value, item);
            }
        }
        &list.value
    }

    /// An item's own value, checked like [`Ctx::name`], or else the spec's
    /// default; with neither, records the problem `missing` builds and yields "".
    fn or_default(
        &mut self,
        own: Option<&Sp<String>>,
        default: Option<&Sp<String>>,
        (what, code, check): NameCheck,
        missing: impl FnOnce(&Self) -> Problem,
    ) -> String {
        match (own, default) {
            (Some(v), _) => {
                self.name(v, what, code, check);
                v.value.clone()
            }
            (None, Some(d)) => d.value.clone(),
            (None, None) => {
                let p = missing(self);
                self.push(p);
                String::new()
            }
        }
    }

    /// Records `name` as declared in `project`; a second declaration is
    /// reported (`{kind} ... is declared twice`) and yields the first one.
    fn first_declaration<'a>(
        &mut self,
        seen: &mut HashMap<(String, String), &'a Sp<String>>,
        project: &str,
        name: &'a Sp<String>,
        (kind, code, help): (&str, &'static str, Option<&str>),
    ) -> Option<&'a Sp<String>> {
        let duplicate = seen.get(&(project.to_owned(), name.value.clone())).copied();
        match duplicate {
            Some(first) => {
                let mut p = self
                    .new_problem(
                        code,
                        format!(
                            "{kind} `{}` is declared twice in project `{project}`",
                            name.value
                        ),
                    )
                    .label(name.span(), "declared again here")
                    .label(first.span(), "first declared here");
                if let Some(help) = help {
                    p = p.help(help);
                }
                self.push(p);
            }
            None => {
                seen.insert((project.to_owned(), name.value.clone()), name);
            }
        }
        duplicate
    }

    fn too_many(&mut self, what: &str, limit: usize, span: Option<Range<usize>>) {
        let p = self
            .new_problem(
                "wi::spec::too_many_items",
                format!("more than {limit} {what} in one spec"),
            )
            .label(span, format!("item {} of {what}", limit + 1))
            .help("split the fleet into several specs");
        self.push(p);
    }
}

/// How one kind of name is checked: what it is called, the problem code, the rule.
type NameCheck = (&'static str, &'static str, fn(&str) -> Result<(), String>);

/// How a project id is checked wherever one is written.
const PROJECT_ID: NameCheck = (
    "project id",
    "wi::spec::invalid_project_id",
    names::check_project_id,
);

/// The resolved facts about one declared cluster.
struct ClusterInfo<'a> {
    key: ClusterKey,
    name: &'a Sp<String>,
    groups: Option<&'a SpList>,
    workload_identity: bool,
    wi_span: Option<Range<usize>>,
}

/// The resolved facts about one declared service account.
struct AccountInfo<'a> {
    project: String,
    name: &'a Sp<String>,
}

/// A resolved `serviceAccount` reference.
struct GsaRef {
    email: String,
    project: String,
}

/// Validates a raw spec; on success the model, otherwise every problem found.
pub(crate) fn validate(
    raw: &RawSpec,
    src: Arc<NamedSource<String>>,
) -> Result<Model, Vec<Problem>> {
    let line_starts = std::iter::once(0)
        .chain(src.inner().match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut cx = Ctx {
        src,
        problems: Vec::new(),
        owner: Owner::Unnamed,
        line_starts,
    };
    if let Some(o) = &raw.owner
        && cx.name(o, "owner", "wi::spec::invalid_owner", names::check_owner)
    {
        cx.owner = Owner::Named(o.value.clone());
    }

    if raw.version.value != 1 {
        let p = cx
            .new_problem(
                "wi::spec::unsupported_version",
                format!("unsupported spec version {}", raw.version.value),
            )
            .label(raw.version.span(), "this wi reads version 1")
            .help("set `version: 1`");
        cx.push(p);
    }

    // Defaults.
    let defaults = raw.defaults.as_ref().map(|d| &d.value);
    let default_project = defaults.and_then(|d| d.project.as_ref());
    let default_location = defaults.and_then(|d| d.location.as_ref());
    if let Some(p) = default_project {
        cx.name(
            p,
            "project id",
            "wi::spec::invalid_project_id",
            names::check_project_id,
        );
    }
    if let Some(l) = default_location {
        cx.name(
            l,
            "location",
            "wi::spec::invalid_location",
            names::check_location,
        );
    }

    // Declared projects.
    let mut projects: BTreeSet<String> = BTreeSet::new();
    if let Some(list) = &raw.projects {
        for p in cx.list(list, "projects") {
            if cx.name(
                p,
                "project id",
                "wi::spec::invalid_project_id",
                names::check_project_id,
            ) {
                projects.insert(p.value.clone());
            }
        }
    }

    let (clusters, cluster_infos) =
        validate_clusters(&mut cx, raw, default_project, default_location);
    let groups = collect_groups(&mut cx, &cluster_infos);
    let (accounts, account_infos) = validate_accounts(&mut cx, raw, default_project);

    for c in &cluster_infos {
        projects.insert(c.key.project.clone());
    }
    for a in &account_infos {
        projects.insert(a.project.clone());
    }
    projects.remove("");

    let resolver = Resolver::new(&cluster_infos, &groups, &account_infos);
    let mappings = validate_mappings(&mut cx, raw, &resolver);
    let absent = validate_absent(&mut cx, raw, &resolver, &mappings);

    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }

    let mut model = Model {
        projects: projects.into_iter().collect(),
        clusters,
        service_accounts: accounts,
        mappings: mappings.into_iter().map(|(m, _)| m).collect(),
        absent,
        owners: vec![cx.owner.clone()],
    };
    model.clusters.sort_by(|a, b| a.key.cmp(&b.key));
    model
        .service_accounts
        .sort_by(|a, b| (&a.project, &a.account_id).cmp(&(&b.project, &b.account_id)));
    model.mappings.sort_by(|a, b| {
        (&a.cluster, &a.namespace, &a.ksa).cmp(&(&b.cluster, &b.namespace, &b.ksa))
    });
    model
        .absent
        .sort_by(|a, b| (&a.gsa_email, &a.member).cmp(&(&b.gsa_email, &b.member)));
    Ok(model)
}

/// "`a`, `b`, `c` and 4 more".
fn list_some(items: &[String]) -> String {
    const SHOW: usize = 3;
    match items.len() {
        0 => String::new(),
        n if n <= SHOW => items.join(", "),
        n => format!("{} and {} more", items[..SHOW].join(", "), n - SHOW),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let max = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= max)
        .min()
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and
/// adjacent transpositions (`alpah` → `alpha` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("alpah", &["alpha", "beta"]), Some("alpha"));
        assert_eq!(closest("gamma", &["alpha", "beta"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("alpah", "alpha"), 1);
    }

    #[test]
    fn list_some_truncates() {
        let v: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        assert_eq!(list_some(&v), "1, 2, 3 and 2 more");
        assert_eq!(list_some(&v[..2]), "1, 2");
    }
}
