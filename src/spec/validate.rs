//! Raw spec → validated [`Model`]: every name checked, every reference
//! resolved, fleet shorthands (defaults, groups, `*`, `ksas`) expanded.
//!
//! Validation never stops at the first problem: each check records a
//! [`Problem`] pointing at the offending value and carries on, so a user sees
//! everything wrong with the file in one run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use miette::NamedSource;

use super::diagnostic::Problem;
use super::model::{
    AbsentMember, Cluster, ClusterCreate, ClusterKey, Gsa, KsaManagement, Mapping, Model,
    PoolSelection, gsa_email,
};
use super::names;
use super::raw::{Manage, MetadataServer, RawSpec, Sp, SpList};

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
}

impl Ctx {
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
    let mut cx = Ctx {
        src,
        problems: Vec::new(),
    };

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

fn validate_clusters<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    default_project: Option<&'a Sp<String>>,
    default_location: Option<&'a Sp<String>>,
) -> (Vec<Cluster>, Vec<ClusterInfo<'a>>) {
    let mut out = Vec::new();
    let mut infos = Vec::new();
    let mut seen: HashMap<(String, String), &Sp<String>> = HashMap::new();
    if let Some(extra) = raw.clusters.get(MAX_CLUSTERS) {
        cx.too_many("clusters", MAX_CLUSTERS, extra.span());
    }
    for item in raw.clusters.iter().take(MAX_CLUSTERS) {
        let c = &item.value;
        cx.name(
            &c.name,
            "cluster name",
            "wi::spec::invalid_cluster_name",
            names::check_cluster_name,
        );

        let project = cx.or_default(c.project.as_ref(), default_project, PROJECT_ID, |cx| {
            cx.new_problem(
                "wi::spec::missing_project",
                format!("cluster `{}` has no project", c.name.value),
            )
            .label(c.name.span(), "no `project` here and no `defaults.project`")
            .help("set `project` on the cluster, or `defaults.project`")
        });
        let location = cx.or_default(
            c.location.as_ref(),
            default_location,
            (
                "location",
                "wi::spec::invalid_location",
                names::check_location,
            ),
            |cx| {
                cx.new_problem(
                    "wi::spec::missing_location",
                    format!("cluster `{}` has no location", c.name.value),
                )
                .label(
                    c.name.span(),
                    "no `location` here and no `defaults.location`",
                )
                .help("set `location` (a region or zone) on the cluster, or `defaults.location`")
            },
        );

        let workload_identity = c.workload_identity.as_ref().is_none_or(|w| w.value);
        let wi_span = c.workload_identity.as_ref().and_then(Sp::span);
        let metadata_server = match (&c.metadata_server, workload_identity) {
            (None, true) => PoolSelection::All,
            (None, false) => PoolSelection::None,
            (Some(m), wi) => match &m.value {
                MetadataServer::None => PoolSelection::None,
                MetadataServer::All | MetadataServer::Pools(_) if !wi => {
                    let p = cx
                        .new_problem(
                            "wi::spec::metadata_server_without_workload_identity",
                            format!(
                                "cluster `{}` asks for the GKE metadata server without Workload Identity",
                                c.name.value
                            ),
                        )
                        .label(m.span(), "needs `workloadIdentity: true`")
                        .label(wi_span.clone(), "Workload Identity is off here")
                        .help("node pools can run the GKE metadata server only on a cluster with a workload pool: turn Workload Identity on, or use `metadataServer: none`");
                    cx.push(p);
                    PoolSelection::None
                }
                MetadataServer::All => PoolSelection::All,
                MetadataServer::Pools(pools) => {
                    let list = Sp {
                        value: pools.clone(),
                        span: m.span(),
                    };
                    let mut names_ok = BTreeSet::new();
                    for pool in cx.list(&list, "node pools") {
                        if cx.name(
                            pool,
                            "node pool name",
                            "wi::spec::invalid_pool_name",
                            names::check_pool_name,
                        ) {
                            names_ok.insert(pool.value.clone());
                        }
                    }
                    PoolSelection::Only(names_ok.into_iter().collect())
                }
            },
        };

        if let Some(groups) = &c.groups {
            for g in cx.list(groups, "groups") {
                cx.name(
                    g,
                    "group name",
                    "wi::spec::invalid_group_name",
                    names::check_group_name,
                );
            }
        }

        let kube_context = c.kube_context.as_ref().map(|k| {
            if k.value.trim().is_empty() || k.value.chars().any(char::is_control) {
                let p = cx
                    .new_problem(
                        "wi::spec::invalid_kube_context",
                        "invalid kubeconfig context name",
                    )
                    .label(k.span(), "empty or contains control characters")
                    .help("name a context of your kubeconfig, or remove `kubeContext`");
                cx.push(p);
            }
            k.value.clone()
        });

        let create = c.create.as_ref().map(|cr| {
            let cr = &cr.value;
            let initial_node_count = match &cr.initial_node_count {
                Some(n) if n.value == 0 || n.value > 1000 => {
                    let p = cx
                        .new_problem(
                            "wi::spec::invalid_create",
                            format!("initialNodeCount {} is out of range", n.value),
                        )
                        .label(n.span(), "must be 1-1000")
                        .help("a new cluster needs at least one node");
                    cx.push(p);
                    n.value
                }
                Some(n) => n.value,
                None => 1,
            };
            if let Some(mt) = &cr.machine_type {
                cx.name(
                    mt,
                    "machine type",
                    "wi::spec::invalid_create",
                    names::check_machine_type,
                );
            }
            ClusterCreate {
                initial_node_count,
                machine_type: cr.machine_type.as_ref().map(|m| m.value.clone()),
                release_channel: cr
                    .release_channel
                    .as_ref()
                    .map(|r| r.value.as_str().to_owned()),
            }
        });

        let duplicate = cx.first_declaration(
            &mut seen,
            &project,
            &c.name,
            (
                "cluster",
                "wi::spec::duplicate_cluster",
                Some("cluster names are unique within a project"),
            ),
        );

        let key = ClusterKey {
            project,
            location,
            name: c.name.value.clone(),
        };
        // A duplicate is reported once; references resolve to the first declaration.
        if duplicate.is_none() {
            infos.push(ClusterInfo {
                key: key.clone(),
                name: &c.name,
                groups: c.groups.as_ref(),
                workload_identity,
                wi_span,
            });
        }
        out.push(Cluster {
            key,
            workload_identity,
            metadata_server,
            create,
            kube_context,
        });
    }
    (out, infos)
}

/// Group name → member cluster indices. A group named like a cluster is an error.
fn collect_groups(cx: &mut Ctx, infos: &[ClusterInfo<'_>]) -> BTreeMap<String, Vec<usize>> {
    let cluster_names: HashMap<&str, &Sp<String>> = infos
        .iter()
        .map(|i| (i.key.name.as_str(), i.name))
        .collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for (idx, info) in infos.iter().enumerate() {
        let Some(list) = info.groups else {
            continue;
        };
        for g in &list.value {
            if let Some(cluster) = cluster_names.get(g.value.as_str()) {
                if reported.insert(g.value.clone()) {
                    let p = cx
                        .new_problem(
                            "wi::spec::group_name_conflict",
                            format!("group `{}` has the name of a cluster", g.value),
                        )
                        .label(g.span(), "group named here")
                        .label(cluster.span(), "cluster of the same name")
                        .help("mappings name clusters and groups the same way: rename the group");
                    cx.push(p);
                }
                continue;
            }
            let members = groups.entry(g.value.clone()).or_default();
            if !members.contains(&idx) {
                members.push(idx);
            }
        }
    }
    groups
}

fn validate_accounts<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    default_project: Option<&'a Sp<String>>,
) -> (Vec<Gsa>, Vec<AccountInfo<'a>>) {
    let mut out = Vec::new();
    let mut infos = Vec::new();
    let mut seen: HashMap<(String, String), &Sp<String>> = HashMap::new();
    if let Some(extra) = raw.service_accounts.get(MAX_ITEMS) {
        cx.too_many("service accounts", MAX_ITEMS, extra.span());
    }
    for item in raw.service_accounts.iter().take(MAX_ITEMS) {
        let a = &item.value;
        cx.name(
            &a.name,
            "account id",
            "wi::spec::invalid_account_id",
            names::check_account_id,
        );
        let project = cx.or_default(a.project.as_ref(), default_project, PROJECT_ID, |cx| {
            cx.new_problem(
                "wi::spec::missing_project",
                format!("service account `{}` has no project", a.name.value),
            )
            .label(a.name.span(), "no `project` here and no `defaults.project`")
            .help("set `project` on the account, or `defaults.project`")
        });
        if let Some(d) = &a.display_name
            && d.value.chars().count() > MAX_DISPLAY_NAME
        {
            let p = cx
                .new_problem("wi::spec::invalid_display_name", "display name is too long")
                .label(d.span(), format!("{} characters", d.value.chars().count()))
                .help(format!("IAM accepts at most {MAX_DISPLAY_NAME} characters"));
            cx.push(p);
        }
        if let Some(d) = &a.description
            && d.value.chars().count() > MAX_DESCRIPTION
        {
            let p = cx
                .new_problem("wi::spec::invalid_description", "description is too long")
                .label(d.span(), format!("{} characters", d.value.chars().count()))
                .help(format!(
                    "at most {MAX_DESCRIPTION} characters: IAM accepts 256 and wi adds its ownership marker"
                ));
            cx.push(p);
        }
        let mut roles = BTreeSet::new();
        if let Some(list) = &a.roles {
            for r in cx.list(list, "roles") {
                if cx.name(r, "role", "wi::spec::invalid_role", names::check_role) {
                    roles.insert(r.value.clone());
                }
            }
        }
        let duplicate = cx.first_declaration(
            &mut seen,
            &project,
            &a.name,
            ("service account", "wi::spec::duplicate_account", None),
        );
        if duplicate.is_none() {
            infos.push(AccountInfo {
                project: project.clone(),
                name: &a.name,
            });
        }
        out.push(Gsa {
            project,
            account_id: a.name.value.clone(),
            display_name: a.display_name.as_ref().map(|d| d.value.clone()),
            description: a.description.as_ref().map(|d| d.value.clone()),
            roles: roles.into_iter().collect(),
            adopt: a.adopt.as_ref().is_some_and(|b| b.value),
        });
    }
    (out, infos)
}

struct Resolver<'r, 'a> {
    clusters: &'r [ClusterInfo<'a>],
    groups: &'r BTreeMap<String, Vec<usize>>,
    accounts: &'r [AccountInfo<'a>],
    /// Cluster name → indices (one per project using the name).
    clusters_by_name: HashMap<&'r str, Vec<usize>>,
    /// Account id → indices (one per project using the id).
    accounts_by_name: HashMap<&'r str, Vec<usize>>,
}

impl<'r, 'a> Resolver<'r, 'a> {
    fn new(
        clusters: &'r [ClusterInfo<'a>],
        groups: &'r BTreeMap<String, Vec<usize>>,
        accounts: &'r [AccountInfo<'a>],
    ) -> Self {
        let mut clusters_by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, c) in clusters.iter().enumerate() {
            clusters_by_name
                .entry(c.key.name.as_str())
                .or_default()
                .push(i);
        }
        let mut accounts_by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, a) in accounts.iter().enumerate() {
            accounts_by_name
                .entry(a.name.value.as_str())
                .or_default()
                .push(i);
        }
        Resolver {
            clusters,
            groups,
            accounts,
            clusters_by_name,
            accounts_by_name,
        }
    }

    /// Resolves one entry of a mapping's `clusters` to cluster indices.
    fn clusters(&self, cx: &mut Ctx, r: &Sp<String>) -> Option<Vec<usize>> {
        let v = r.value.as_str();
        if v == "*" {
            return Some((0..self.clusters.len()).collect());
        }
        let found: Vec<usize> = match v.split('/').collect::<Vec<_>>().as_slice() {
            [name] => {
                if let Some(g) = self.groups.get(*name) {
                    return Some(g.clone());
                }
                self.matching(name, |_| true)
            }
            [project, name] => self.matching(name, |k| k.project == *project),
            [project, location, name] => {
                self.matching(name, |k| k.project == *project && k.location == *location)
            }
            _ => Vec::new(),
        };
        match found.len() {
            1 => Some(found),
            0 => {
                let mut candidates: Vec<&str> =
                    self.clusters.iter().map(|c| c.key.name.as_str()).collect();
                candidates.extend(self.groups.keys().map(String::as_str));
                let mut p = cx
                    .new_problem(
                        "wi::spec::unknown_cluster",
                        format!("unknown cluster or group `{v}`"),
                    )
                    .label(r.span(), "no cluster or group has this name");
                p = match closest(v, &candidates) {
                    Some(c) => p.help(format!("did you mean `{c}`?")),
                    None => p.help(
                        "name a cluster declared under `clusters` (`name`, `project/name` or \
                         `project/location/name`), a group, or `*` for all clusters",
                    ),
                };
                cx.push(p);
                None
            }
            _ => {
                let options: Vec<String> = found
                    .iter()
                    .map(|&i| {
                        let k = &self.clusters[i].key;
                        format!("`{}/{}`", k.project, k.name)
                    })
                    .collect();
                let p = cx
                    .new_problem(
                        "wi::spec::ambiguous_cluster",
                        format!("`{v}` names {} clusters", found.len()),
                    )
                    .label(r.span(), "ambiguous")
                    .help(format!("write one of {}", options.join(", ")));
                cx.push(p);
                None
            }
        }
    }

    /// Clusters called `name` whose key also satisfies `pred`.
    fn matching(&self, name: &str, pred: impl Fn(&ClusterKey) -> bool) -> Vec<usize> {
        self.clusters_by_name
            .get(name)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| pred(&self.clusters[i].key))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Resolves a `serviceAccount` reference: a declared name or any account's email.
    fn account(&self, cx: &mut Ctx, r: &Sp<String>) -> Option<GsaRef> {
        let v = r.value.as_str();
        if v.contains('@') {
            return match names::parse_gsa_email(v) {
                Ok((_, project)) => Some(GsaRef {
                    email: v.to_owned(),
                    project: project.to_owned(),
                }),
                Err(rule) => {
                    let p = cx
                        .new_problem(
                            "wi::spec::invalid_gsa_email",
                            format!("`{v}` is not a Google service account email"),
                        )
                        .label(r.span(), "not ACCOUNT@PROJECT.iam.gserviceaccount.com")
                        .help(rule);
                    cx.push(p);
                    None
                }
            };
        }
        let found: Vec<&AccountInfo<'_>> = self
            .accounts_by_name
            .get(v)
            .map(|v| v.iter().map(|&i| &self.accounts[i]).collect())
            .unwrap_or_default();
        match found.as_slice() {
            [a] => Some(GsaRef {
                email: gsa_email(&a.project, v),
                project: a.project.clone(),
            }),
            [] => {
                let candidates: Vec<&str> = self
                    .accounts
                    .iter()
                    .map(|a| a.name.value.as_str())
                    .collect();
                let mut p = cx
                    .new_problem(
                        "wi::spec::unknown_service_account",
                        format!("unknown service account `{v}`"),
                    )
                    .label(r.span(), "not declared under `serviceAccounts`");
                p = match closest(v, &candidates) {
                    Some(c) => p.help(format!("did you mean `{c}`?")),
                    None => p.help(
                        "declare it under `serviceAccounts`, or write the full email of an \
                         account managed elsewhere (NAME@PROJECT.iam.gserviceaccount.com)",
                    ),
                };
                cx.push(p);
                None
            }
            many => {
                let options: Vec<String> = many
                    .iter()
                    .map(|a| format!("`{}`", gsa_email(&a.project, v)))
                    .collect();
                let p = cx
                    .new_problem(
                        "wi::spec::ambiguous_service_account",
                        format!("`{v}` names {} service accounts", many.len()),
                    )
                    .label(r.span(), "ambiguous")
                    .help(format!("write the email: {}", options.join(" or ")));
                cx.push(p);
                None
            }
        }
    }
}

/// Two mappings giving the same KSA: (first mapping, second mapping, namespace,
/// KSA, same GSA?).
type ClashKey = (usize, usize, String, String, bool);
/// The two origins and the clusters where they clash.
type Clash = (Origin, Origin, Vec<String>);

/// Where an expanded mapping came from, for diagnostics.
#[derive(Clone)]
struct Origin {
    mapping: usize,
    gsa_span: Option<Range<usize>>,
}

fn validate_mappings(
    cx: &mut Ctx,
    raw: &RawSpec,
    resolver: &Resolver<'_, '_>,
) -> Vec<(Mapping, Origin)> {
    // (cluster index, namespace, ksa) → expanded mapping.
    let mut expanded: BTreeMap<(usize, String, String), (Mapping, Origin)> = BTreeMap::new();
    // (first mapping, second mapping, namespace, ksa, same GSA?) → clusters where they clash.
    let mut clashes: BTreeMap<ClashKey, Clash> = BTreeMap::new();
    let mut over_limit = false;

    if let Some(extra) = raw.mappings.get(MAX_ITEMS) {
        cx.too_many("mappings", MAX_ITEMS, extra.span());
    }
    for (mi, item) in raw.mappings.iter().take(MAX_ITEMS).enumerate() {
        let m = &item.value;
        let gsa = resolver.account(cx, &m.service_account);
        let ns_ok = cx.name(
            &m.namespace,
            "namespace",
            "wi::spec::invalid_namespace",
            names::check_namespace,
        );

        let ksas: Vec<&Sp<String>> = match (&m.ksa, &m.ksas) {
            (Some(k), None) => vec![k],
            (None, Some(list)) => cx
                .list(list, "Kubernetes service accounts")
                .iter()
                .collect(),
            (Some(k), Some(list)) => {
                let p = cx
                    .new_problem("wi::spec::ksa_and_ksas", "both `ksa` and `ksas` are set")
                    .label(k.span(), "`ksa` here")
                    .label(list.span(), "`ksas` here")
                    .help("use `ksa` for one Kubernetes service account or `ksas` for several, not both");
                cx.push(p);
                Vec::new()
            }
            (None, None) => {
                let p = cx
                    .new_problem(
                        "wi::spec::missing_ksa",
                        "mapping names no Kubernetes service account",
                    )
                    .label(
                        m.namespace.span(),
                        "which service account in this namespace?",
                    )
                    .help("add `ksa: NAME` or `ksas: [NAME, ...]`");
                cx.push(p);
                Vec::new()
            }
        };
        let mut ksa_ok = true;
        for k in &ksas {
            ksa_ok &= cx.name(
                k,
                "Kubernetes service account name",
                "wi::spec::invalid_ksa_name",
                names::check_ksa_name,
            );
        }

        let mut targets: BTreeSet<usize> = BTreeSet::new();
        for r in cx.list(&m.clusters, "clusters") {
            let Some(found) = resolver.clusters(cx, r) else {
                continue;
            };
            let off: Vec<&ClusterInfo<'_>> = found
                .iter()
                .map(|&i| &resolver.clusters[i])
                .filter(|c| !c.workload_identity)
                .collect();
            if let Some(first) = off.first() {
                let names: Vec<String> = off.iter().map(|c| format!("`{}`", c.key)).collect();
                let p = cx
                    .new_problem(
                        "wi::spec::workload_identity_disabled",
                        format!(
                            "mapping targets {} with Workload Identity off: {}",
                            if off.len() == 1 { "a cluster" } else { "clusters" },
                            list_some(&names)
                        ),
                    )
                    .label(r.span(), "includes a cluster with `workloadIdentity: false`")
                    .label(first.wi_span.clone(), "turned off here")
                    .help("a KSA can only act as a Google service account on a cluster with a workload pool: turn Workload Identity on or leave the cluster out");
                cx.push(p);
            }
            targets.extend(
                found
                    .into_iter()
                    .filter(|&i| resolver.clusters[i].workload_identity),
            );
        }

        let Some(gsa) = gsa else { continue };
        if !ns_ok || !ksa_ok || over_limit {
            continue;
        }
        let management = match m.manage.as_ref().map(|s| s.value) {
            Some(Manage::Annotate) => KsaManagement::AnnotateExisting,
            Some(Manage::Create) | None => KsaManagement::Create,
        };
        let origin = Origin {
            mapping: mi,
            gsa_span: m.service_account.span(),
        };
        for &ci in &targets {
            for k in &ksas {
                let key = (ci, m.namespace.value.clone(), k.value.clone());
                if let Some((prev, prev_origin)) = expanded.get(&key) {
                    let same = prev.gsa_email == gsa.email;
                    let entry = clashes
                        .entry((prev_origin.mapping, mi, key.1.clone(), key.2.clone(), same))
                        .or_insert_with(|| (prev_origin.clone(), origin.clone(), Vec::new()));
                    entry.2.push(format!("`{}`", resolver.clusters[ci].key));
                    continue;
                }
                if expanded.len() >= MAX_EXPANDED {
                    over_limit = true;
                    cx.too_many(
                        "expanded mappings (cluster, namespace, KSA)",
                        MAX_EXPANDED,
                        item.span(),
                    );
                    break;
                }
                let mapping = Mapping {
                    cluster: resolver.clusters[ci].key.clone(),
                    namespace: key.1.clone(),
                    ksa: key.2.clone(),
                    gsa_email: gsa.email.clone(),
                    gsa_project: gsa.project.clone(),
                    management,
                };
                expanded.insert(key, (mapping, origin.clone()));
            }
            if over_limit {
                break;
            }
        }
    }

    for ((_, _, ns, ksa, same), (first, second, clusters)) in clashes {
        let where_ = list_some(&clusters);
        let p = if same {
            cx.new_problem(
                "wi::spec::duplicate_mapping",
                format!("KSA `{ns}/{ksa}` is mapped twice to the same account in {where_}"),
            )
            .label(second.gsa_span, "mapped again here")
            .label(first.gsa_span, "first mapped here")
            .help("remove one of the mappings (check overlapping groups and `*`)")
        } else {
            let first_email = raw
                .mappings
                .get(first.mapping)
                .map(|m| m.value.service_account.value.clone())
                .unwrap_or_default();
            let second_email = raw
                .mappings
                .get(second.mapping)
                .map(|m| m.value.service_account.value.clone())
                .unwrap_or_default();
            cx.new_problem(
                "wi::spec::ksa_mapped_twice",
                format!("KSA `{ns}/{ksa}` is mapped to two service accounts in {where_}"),
            )
            .label(second.gsa_span, format!("mapped to `{second_email}` here"))
            .label(first.gsa_span, format!("and to `{first_email}` here"))
            .help("a Kubernetes service account acts as one Google service account: its annotation holds a single email")
        };
        cx.push(p);
    }

    expanded.into_values().collect()
}

fn validate_absent(
    cx: &mut Ctx,
    raw: &RawSpec,
    resolver: &Resolver<'_, '_>,
    mappings: &[(Mapping, Origin)],
) -> Vec<AbsentMember> {
    let bound: HashMap<(String, String), &Origin> = mappings
        .iter()
        .map(|(m, o)| ((m.gsa_email.clone(), m.member()), o))
        .collect();
    let mut seen: HashMap<(String, String), &Sp<String>> = HashMap::new();
    let mut out = Vec::new();
    if let Some(extra) = raw.absent.get(MAX_ITEMS) {
        cx.too_many("absent entries", MAX_ITEMS, extra.span());
    }
    for item in raw.absent.iter().take(MAX_ITEMS) {
        let a = &item.value;
        let gsa = resolver.account(cx, &a.service_account);
        let member_ok = cx.name(
            &a.member,
            "IAM member",
            "wi::spec::invalid_member",
            names::check_member,
        );
        let (Some(gsa), true) = (gsa, member_ok) else {
            continue;
        };
        let key = (gsa.email.clone(), a.member.value.clone());
        if let Some(first) = seen.get(&key) {
            let p = cx
                .new_problem(
                    "wi::spec::duplicate_absent",
                    format!(
                        "`{}` is listed as absent twice for `{}`",
                        a.member.value, gsa.email
                    ),
                )
                .label(a.member.span(), "listed again here")
                .label(first.span(), "first listed here");
            cx.push(p);
            continue;
        }
        seen.insert(key.clone(), &a.member);
        if let Some(origin) = bound.get(&key) {
            let p = cx
                .new_problem(
                    "wi::spec::absent_conflict",
                    format!(
                        "`{}` must be absent from `{}`, but a mapping binds it",
                        a.member.value, gsa.email
                    ),
                )
                .label(a.member.span(), "must be absent here")
                .label(origin.gsa_span.clone(), "but this mapping binds it")
                .help("remove the mapping or the absent entry");
            cx.push(p);
            continue;
        }
        out.push(AbsentMember {
            gsa_email: gsa.email,
            gsa_project: gsa.project,
            member: a.member.value.clone(),
        });
    }
    out
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
