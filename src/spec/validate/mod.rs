//! Raw spec → validated [`Model`]: every name checked, every reference
//! resolved, fleet shorthands (defaults, groups, `*`, `ksas`) expanded.
//!
//! Validation never stops at the first problem: each check records a
//! [`Problem`] pointing at the offending value and carries on, so a user sees
//! everything wrong with the file in one run.
//!
//! A spec set is validated as one model: each file's header (owner,
//! version, defaults, projects), clusters and accounts first, then every
//! file's mappings and `absent` entries against everything declared in any
//! file. A problem that points at two files labels its own file and shows
//! the other as a note.
//!
//! The shared context ([`Ctx`]: files, problems, name checks, limits) lives here;
//! each section of the spec has its own file (`clusters`, `accounts`,
//! `mappings` with `absent`), and `resolve` turns references into declared
//! clusters and accounts.

mod accounts;
mod clusters;
mod mappings;
mod resolve;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use miette::NamedSource;

use accounts::validate_accounts;
use clusters::{collect_groups, validate_clusters};
use mappings::{validate_absent, validate_mappings};
use resolve::Resolver;

pub(crate) use super::suggest::closest;

use super::diagnostic::Problem;
use super::model::{ClusterKey, Model, Origin, Owner};
use super::names;
use super::raw::{RawSpec, Sp, SpList, Version};

/// The hash maps of validation, keyed by names from the spec: std's, with
/// foldhash's hasher (several times faster than SipHash on short keys; a
/// spec is the user's own file, so no defence against crafted collisions
/// is needed).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The hash sets of validation (see [`HashMap`]).
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Most clusters one file may declare.
const MAX_CLUSTERS: usize = 5_000;
/// Most service accounts, mappings or absent entries one file may declare.
const MAX_ITEMS: usize = 20_000;
/// Most (cluster, namespace, KSA) mappings after expansion, in the whole set.
const MAX_EXPANDED: usize = 200_000;
/// Longest display name IAM accepts.
const MAX_DISPLAY_NAME: usize = 100;
/// IAM allows 256; `wi` keeps room for its ownership marker.
const MAX_DESCRIPTION: usize = 200;

/// One file of the set: its source, owner and line index.
struct FileCx {
    src: Arc<NamedSource<String>>,
    /// The owner the file declares (`owner:`), else unnamed.
    owner: Owner,
    /// Byte offset of every line start of the source, for [`Ctx::origin`].
    line_starts: Vec<usize>,
}

/// The validation context of a spec set: every file, the one being
/// validated, and the problems found so far in all of them.
struct Ctx {
    files: Vec<FileCx>,
    /// Index of the file being validated.
    cur: usize,
    problems: Vec<Problem>,
}

impl Ctx {
    /// The owner of the file being validated.
    fn owner(&self) -> &Owner {
        &self.files[self.cur].owner
    }

    /// Where a span of the current file sits: the file's name and the 1-based line.
    fn origin(&self, span: Option<Range<usize>>) -> Origin {
        self.origin_in(self.cur, span)
    }

    /// Where a span of file `file` sits.
    fn origin_in(&self, file: usize, span: Option<Range<usize>>) -> Origin {
        let f = &self.files[file];
        let line = span.map_or(0, |s| f.line_starts.partition_point(|&l| l <= s.start));
        Origin {
            file: f.src.name().to_owned(),
            line,
        }
    }

    /// The name of file `file`.
    fn file_name(&self, file: usize) -> &str {
        self.files[file].src.name()
    }

    fn new_problem(&self, code: &'static str, message: impl Into<String>) -> Problem {
        Problem::new(code, message, self.files[self.cur].src.clone()).in_file(self.cur)
    }

    /// Labels `span` of file `file` on `p`: in place when it is the current
    /// file, else as a note showing that file.
    fn label_at(
        &self,
        p: Problem,
        file: usize,
        span: Option<Range<usize>>,
        text: impl Into<String>,
    ) -> Problem {
        p.label_in(&self.files[file].src, span, text)
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
        // Most lists are short (a mapping's clusters, a cluster's groups):
        // scanning the earlier entries beats building a hash map for each.
        const SCAN_UP_TO: usize = 16;
        let mut seen: HashMap<&str, &Sp<String>> = HashMap::default();
        for (i, item) in list.value.iter().enumerate() {
            let earlier = if list.value.len() <= SCAN_UP_TO {
                list.value[..i].iter().find(|e| e.value == item.value)
            } else {
                seen.get(item.value.as_str()).copied()
            };
            if let Some(first) = earlier {
                let p = self
                    .new_problem(
                        "wi::spec::duplicate_entry",
                        format!("`{}` appears twice in this list of {what}", item.value),
                    )
                    .label(item.span(), "repeated here")
                    .label(first.span(), "first listed here");
                self.push(p);
            } else if list.value.len() > SCAN_UP_TO {
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
        seen: &mut Declared<'a>,
        project: &str,
        name: &'a Sp<String>,
        (kind, code, help): (&str, &'static str, Option<&str>),
    ) -> Option<(usize, &'a Sp<String>)> {
        let duplicate = seen.get(&(project.to_owned(), name.value.clone())).copied();
        match duplicate {
            Some((file, first)) => {
                let mut p = self
                    .new_problem(
                        code,
                        format!(
                            "{kind} `{}` is declared twice in project `{project}`",
                            name.value
                        ),
                    )
                    .label(name.span(), "declared again here");
                let text = if file == self.cur {
                    "first declared here".to_owned()
                } else {
                    format!("first declared in {}", self.file_name(file))
                };
                p = self.label_at(p, file, first.span(), text);
                if let Some(help) = help {
                    p = p.help(help);
                }
                self.push(p);
            }
            None => {
                seen.insert((project.to_owned(), name.value.clone()), (self.cur, name));
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

/// (project, name) → the file and name of its first declaration.
type Declared<'a> = HashMap<(String, String), (usize, &'a Sp<String>)>;

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
    /// The file that declares it.
    file: usize,
    key: ClusterKey,
    name: &'a Sp<String>,
    groups: Option<&'a SpList>,
    workload_identity: bool,
    wi_span: Option<Range<usize>>,
}

/// The resolved facts about one declared service account.
struct AccountInfo<'a> {
    /// The file that declares it.
    file: usize,
    project: String,
    name: &'a Sp<String>,
    /// The owner of that file.
    owner: Owner,
}

/// A resolved `serviceAccount` reference.
struct GsaRef {
    email: String,
    project: String,
    /// The declared account it names (index into the set's accounts), if any.
    declared: Option<usize>,
}

/// Validates the raw files of a spec set as one model; on success the
/// model, otherwise every problem found in any file.
///
/// Each file has its own `owner:` and `defaults` (a file's defaults apply to
/// its own clusters and accounts only); clusters, groups and accounts
/// declared in any file may be named from every file; a name declared twice,
/// or a KSA mapped twice, is reported naming both places.
pub(crate) fn validate_set(
    files: &[(RawSpec, Arc<NamedSource<String>>)],
) -> Result<Model, Vec<Problem>> {
    let mut cx = Ctx {
        files: files
            .iter()
            .map(|(_, src)| FileCx {
                line_starts: std::iter::once(0)
                    .chain(src.inner().match_indices('\n').map(|(i, _)| i + 1))
                    .collect(),
                src: src.clone(),
                owner: Owner::Unnamed,
            })
            .collect(),
        cur: 0,
        problems: Vec::new(),
    };

    let mut projects: BTreeSet<String> = BTreeSet::new();
    let mut clusters = Vec::new();
    let mut cluster_infos = Vec::new();
    let mut accounts = Vec::new();
    let mut account_infos = Vec::new();
    let mut seen_clusters: Declared<'_> = HashMap::default();
    let mut seen_accounts: Declared<'_> = HashMap::default();
    for (i, (raw, _)) in files.iter().enumerate() {
        cx.cur = i;
        validate_header(&mut cx, raw, &mut projects);
        let defaults = raw.defaults.as_ref().map(|d| &d.value);
        let default_project = defaults.and_then(|d| d.project.as_ref());
        let default_location = defaults.and_then(|d| d.location.as_ref());
        let (c, ci) = validate_clusters(
            &mut cx,
            raw,
            default_project,
            default_location,
            &mut seen_clusters,
        );
        clusters.extend(c);
        cluster_infos.extend(ci);
        let (a, ai) = validate_accounts(&mut cx, raw, default_project, &mut seen_accounts);
        accounts.extend(a);
        account_infos.extend(ai);
    }
    let groups = collect_groups(&mut cx, &cluster_infos);

    for c in &cluster_infos {
        projects.insert(c.key.project.clone());
    }
    for a in &account_infos {
        projects.insert(a.project.clone());
    }
    projects.remove("");

    let resolver = Resolver::new(&cluster_infos, &groups, &account_infos);
    let mut expansion = mappings::Expansion::default();
    for (i, (raw, _)) in files.iter().enumerate() {
        cx.cur = i;
        validate_mappings(&mut cx, raw, &resolver, &mut expansion);
    }
    expansion.report_clashes(&mut cx);
    expansion.report_escalations(&mut cx);
    let mut absent = Vec::new();
    let mut seen_absent = HashMap::default();
    let bound = if files.iter().any(|(raw, _)| !raw.absent.is_empty()) {
        expansion.bound_members()
    } else {
        HashMap::default()
    };
    for (i, (raw, _)) in files.iter().enumerate() {
        cx.cur = i;
        absent.extend(validate_absent(
            &mut cx,
            raw,
            &resolver,
            &bound,
            &mut seen_absent,
        ));
    }
    drop(bound);

    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }

    let owners: BTreeSet<Owner> = cx.files.iter().map(|f| f.owner.clone()).collect();
    // Each declared cluster's place in key order: the mappings' sort key.
    let mut by_key: Vec<usize> = (0..cluster_infos.len()).collect();
    by_key.sort_by(|&a, &b| cluster_infos[a].key.cmp(&cluster_infos[b].key));
    let mut cluster_rank = vec![0; cluster_infos.len()];
    for (rank, &i) in by_key.iter().enumerate() {
        cluster_rank[i] = rank;
    }
    let (mappings, direct) = expansion.into_mappings(&cluster_rank);
    let mut model = Model {
        projects: projects.into_iter().collect(),
        clusters,
        service_accounts: accounts,
        mappings,
        direct,
        absent,
        owners: owners.into_iter().collect(),
    };
    model.clusters.sort_by(|a, b| a.key.cmp(&b.key));
    model
        .service_accounts
        .sort_by(|a, b| (&a.project, &a.account_id).cmp(&(&b.project, &b.account_id)));
    // `into_mappings` sorted the mappings already, by (cluster, namespace, KSA).
    debug_assert!(model.mappings.is_sorted_by(|a, b| {
        (&a.cluster, &a.namespace, &a.ksa) <= (&b.cluster, &b.namespace, &b.ksa)
    }));
    model
        .absent
        .sort_by(|a, b| (&a.gsa_email, &a.member).cmp(&(&b.gsa_email, &b.member)));
    Ok(model)
}

/// The file's own settings: `owner`, `version`, `defaults` and `projects`.
fn validate_header(cx: &mut Ctx, raw: &RawSpec, projects: &mut BTreeSet<String>) {
    if let Some(o) = &raw.owner
        && cx.name(o, "owner", "wi::spec::invalid_owner", names::check_owner)
    {
        cx.files[cx.cur].owner = Owner::Named(o.value.clone());
    }

    match &raw.version.value {
        Version::Number(1) => {}
        Version::Number(n) => {
            let p = cx
                .new_problem(
                    "wi::spec::unsupported_version",
                    format!("unsupported spec version {n}"),
                )
                .label(raw.version.span(), "this wi reads version 1")
                .help("set `version: 1`");
            cx.push(p);
        }
        Version::Text(t) => {
            let p = cx
                .new_problem(
                    "wi::spec::version_not_a_number",
                    format!("the spec version is the text {t:?}, not a number"),
                )
                .label(raw.version.span(), "a string")
                .help("write the number without quotes: `version: 1`");
            cx.push(p);
        }
    }

    let defaults = raw.defaults.as_ref().map(|d| &d.value);
    if let Some(p) = defaults.and_then(|d| d.project.as_ref()) {
        cx.name(
            p,
            "project id",
            "wi::spec::invalid_project_id",
            names::check_project_id,
        );
    }
    if let Some(l) = defaults.and_then(|d| d.location.as_ref()) {
        cx.name(
            l,
            "location",
            "wi::spec::invalid_location",
            names::check_location,
        );
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_some_truncates() {
        let v: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        assert_eq!(list_some(&v), "1, 2, 3 and 2 more");
        assert_eq!(list_some(&v[..2]), "1, 2");
    }
}
