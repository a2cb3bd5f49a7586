//! The `mappings` and `absent` sections, expanded to one (cluster, namespace,
//! KSA) mapping each, with clashes between mappings reported once.

use std::collections::{BTreeMap, BTreeSet};

use super::{HashMap, HashSet};
use std::ops::Range;

use super::resolve::Resolver;
use super::{ClusterInfo, Ctx, MAX_EXPANDED, MAX_ITEMS, list_some};
use crate::permute::permute;
use crate::spec::model::{
    AbsentMember, ClusterKey, DirectGrant, DirectPrincipal, DirectResource, DirectRole,
    KsaManagement, Mapping, Risk,
};
use crate::spec::names;
use crate::spec::raw::{Manage, PrincipalSetKind, RawMapping, RawSpec, Sp};

/// A mapping item: (file, index in that file's `mappings`).
type ItemId = (usize, usize);
/// Two mappings giving the same KSA: (first mapping, second mapping, namespace,
/// KSA, same GSA?).
type ClashKey<'a> = (ItemId, ItemId, &'a str, &'a str, bool);
/// The two origins and the clusters where they clash.
type Clash = (Origin, Origin, Vec<String>);

/// Where an expanded mapping came from, for diagnostics.
#[derive(Clone)]
pub(super) struct Origin {
    item: ItemId,
    gsa_span: Option<Range<usize>>,
    /// The `serviceAccount` as written.
    gsa_text: String,
}

/// One expanded mapping: a mapping item placed in one cluster for one KSA.
struct Placed {
    /// Index of the cluster in the resolver's clusters.
    cluster: usize,
    mapping: Mapping,
    /// Index of the item's [`Origin`] in [`Expansion::origins`].
    origin: usize,
}

/// Every file's mappings expanded to (cluster, namespace, KSA), with the
/// clashes between them (within a file or across files).
///
/// Built for fleets: one hash lookup per placement (keys borrow the names
/// from the raw files), mappings stored in placement order and sorted once
/// at the end, and each item's [`Origin`] stored once however many clusters
/// it is placed in.
#[derive(Default)]
pub(super) struct Expansion<'a> {
    /// (cluster index, namespace, KSA) → index in `placed`.
    placed_at: HashMap<(usize, &'a str, &'a str), usize>,
    /// The expanded mappings, in placement order.
    placed: Vec<Placed>,
    /// The origin of every mapping item that placed a mapping.
    origins: Vec<Origin>,
    clashes: BTreeMap<ClashKey<'a>, Clash>,
    /// Direct grants by (cluster, principal), roles merged.
    direct: BTreeMap<(ClusterKey, DirectPrincipal), DirectGrant>,
    over_limit: bool,
}

impl Expansion<'_> {
    /// The expanded mappings sorted by (cluster, namespace, KSA), given each
    /// cluster's rank in key order (`cluster_rank[i]` for cluster `i`), and
    /// the direct grants.
    pub(super) fn into_mappings(self, cluster_rank: &[usize]) -> (Vec<Mapping>, Vec<DirectGrant>) {
        let placed = self.placed;
        // Sort indices, not the mappings themselves (far less to move), then
        // move each mapping once, in place.
        let mut order: Vec<usize> = (0..placed.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&placed[a], &placed[b]);
            (
                cluster_rank[a.cluster],
                &a.mapping.namespace,
                &a.mapping.ksa,
            )
                .cmp(&(
                    cluster_rank[b.cluster],
                    &b.mapping.namespace,
                    &b.mapping.ksa,
                ))
        });
        let mut placed = placed;
        permute(&mut placed, order);
        let mappings = placed.into_iter().map(|p| p.mapping).collect();
        (mappings, self.direct.into_values().collect())
    }

    /// Reports each clash once, naming both places (in either file).
    pub(super) fn report_clashes(&mut self, cx: &mut Ctx) {
        for ((_, _, ns, ksa, same), (first, second, clusters)) in std::mem::take(&mut self.clashes)
        {
            cx.cur = second.item.0;
            let where_ = list_some(&clusters);
            let elsewhere = first.item.0 != second.item.0;
            let in_file = |text: &str| {
                if elsewhere {
                    format!("{text} in {}", cx.file_name(first.item.0))
                } else {
                    format!("{text} here")
                }
            };
            let p = if same {
                let p = cx
                    .new_problem(
                        "wi::spec::duplicate_mapping",
                        format!("KSA `{ns}/{ksa}` is mapped twice to the same account in {where_}"),
                    )
                    .label(second.gsa_span, "mapped again here")
                    .help("remove one of the mappings (check overlapping groups and `*`)");
                cx.label_at(p, first.item.0, first.gsa_span, in_file("first mapped"))
            } else {
                let p = cx
                    .new_problem(
                        "wi::spec::ksa_mapped_twice",
                        format!("KSA `{ns}/{ksa}` is mapped to two service accounts in {where_}"),
                    )
                    .label(second.gsa_span, format!("mapped to `{}` here", second.gsa_text))
                    .help("a Kubernetes service account acts as one Google service account: its annotation holds a single email");
                let text = in_file(&format!("and to `{}`", first.gsa_text));
                cx.label_at(p, first.item.0, first.gsa_span, text)
            };
            cx.push(p);
        }
    }
}

impl Expansion<'_> {
    /// The same namespace/KSA acting as different accounts in clusters of one
    /// project: the workload pool `P.svc.id.goog` names the KSA once for
    /// every cluster of P, so each such cluster's KSA gets every one of those
    /// accounts. Reported once per (project, namespace, KSA), pointing at the
    /// first mapping of each account.
    pub(super) fn report_escalations(&self, cx: &mut Ctx) {
        // First the identities mapped to more than one account (rare), in one
        // cheap pass; the labels are built for those only.
        let mut first_email: HashMap<(&str, &str, &str), (&str, bool)> =
            HashMap::with_capacity_and_hasher(self.placed.len(), Default::default());
        for Placed { mapping: m, .. } in &self.placed {
            let seen = first_email
                .entry((&m.cluster.project, &m.namespace, &m.ksa))
                .or_insert((&m.gsa_email, false));
            seen.1 |= seen.0 != m.gsa_email;
        }
        let shared: HashSet<(&str, &str, &str)> = first_email
            .into_iter()
            .filter(|(_, (_, several))| *several)
            .map(|(identity, _)| identity)
            .collect();
        if shared.is_empty() {
            return;
        }
        type Accounts<'a> = BTreeMap<&'a str, (&'a Origin, BTreeSet<String>)>;
        let mut by_identity: BTreeMap<(&str, &str, &str), Accounts<'_>> = BTreeMap::new();
        for Placed {
            mapping: m, origin, ..
        } in &self.placed
        {
            let origin = &self.origins[*origin];
            let identity = (
                m.cluster.project.as_str(),
                m.namespace.as_str(),
                m.ksa.as_str(),
            );
            if !shared.contains(&identity) {
                continue;
            }
            let entry = by_identity
                .entry(identity)
                .or_default()
                .entry(&m.gsa_email)
                .or_insert_with(|| (origin, BTreeSet::new()));
            if origin.item < entry.0.item {
                entry.0 = origin;
            }
            entry.1.insert(format!("`{}`", m.cluster));
        }
        for ((project, ns, ksa), accounts) in by_identity {
            if accounts.len() < 2 {
                continue;
            }
            let mut origins: Vec<(&str, &Origin, &BTreeSet<String>)> = accounts
                .iter()
                .map(|(email, (o, clusters))| (*email, *o, clusters))
                .collect();
            origins.sort_by_key(|(_, o, _)| o.item);
            let last = origins[origins.len() - 1].1;
            cx.cur = last.item.0;
            let clusters: BTreeSet<&String> = origins.iter().flat_map(|(_, _, c)| *c).collect();
            let clusters: Vec<String> = clusters.into_iter().cloned().collect();
            let emails: Vec<String> = origins.iter().map(|(e, _, _)| format!("`{e}`")).collect();
            let mut p = cx
                .new_problem(
                    "wi::spec::shared_identity_escalation",
                    format!(
                        "KSA `{ns}/{ksa}` is mapped to {} accounts in clusters of project `{project}`, which share one workload pool",
                        origins.len()
                    ),
                )
                .help(format!(
                    "every cluster of project `{project}` presents `{ns}/{ksa}` as one identity, \
                     `serviceAccount:{project}.svc.id.goog[{ns}/{ksa}]`, so its pods in {} can act \
                     as each of {}; map `{ns}/{ksa}` to one account, once, in a mapping that lists \
                     all those clusters (or their group), or give the workload of each cluster its \
                     own namespace or KSA name",
                    list_some(&clusters),
                    list_some(&emails)
                ));
            for (email, origin, clusters) in &origins {
                let text = format!(
                    "`{email}` for {}",
                    list_some(&clusters.iter().cloned().collect::<Vec<_>>())
                );
                let text = if origin.item.0 == cx.cur {
                    text
                } else {
                    format!("{text} in {}", cx.file_name(origin.item.0))
                };
                p = cx.label_at(p, origin.item.0, origin.gsa_span.clone(), text);
            }
            cx.push(p);
        }
    }
}

/// Expands the current file's mappings into `ex`.
pub(super) fn validate_mappings<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    resolver: &Resolver<'_, '_>,
    ex: &mut Expansion<'a>,
) {
    if let Some(extra) = raw.mappings.get(MAX_ITEMS) {
        cx.too_many("mappings", MAX_ITEMS, extra.span());
    }
    for (mi, item) in raw.mappings.iter().take(MAX_ITEMS).enumerate() {
        let m = &item.value;
        if !mapping_shape(cx, m, item.span()) {
            continue;
        }
        let gsa = m
            .service_account
            .as_ref()
            .map(|sa| resolver.account(cx, sa));
        let roles = direct_roles(cx, m, resolver);
        let empty_ns = Sp::unspanned(String::new());
        let namespace = m.namespace.as_ref().unwrap_or(&empty_ns);
        let ns_ok = m.namespace.is_none()
            || cx.name(
                namespace,
                "namespace",
                "wi::spec::invalid_namespace",
                names::check_namespace,
            );

        let ksas: Vec<&'a Sp<String>> = match (&m.ksa, &m.ksas) {
            _ if m.principal_set.is_some() => Vec::new(),
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
                        namespace.span().or(item.span()),
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
                    .help("a KSA can only act as a Google service account on a cluster with a workload pool: turn Workload Identity on or leave the cluster out");
                let p = cx.label_at(p, first.file, first.wi_span.clone(), "turned off here");
                cx.push(p);
            }
            targets.extend(
                found
                    .into_iter()
                    .filter(|&i| resolver.clusters[i].workload_identity),
            );
        }

        if let Some(set) = &m.principal_set
            && set.value == PrincipalSetKind::Namespace
        {
            let projects: BTreeSet<&str> = targets
                .iter()
                .map(|&i| resolver.clusters[i].key.project.as_str())
                .collect();
            if projects.len() > 1 {
                let p = cx
                    .new_problem(
                        "wi::spec::principal_set_projects",
                        "a namespace principal set names clusters of several projects",
                    )
                    .label(m.clusters.span(), "clusters of several projects")
                    .help("a namespace set is one workload pool's: list clusters of one project, or write one mapping per project");
                cx.push(p);
                continue;
            }
        }
        if let Some(roles) = &roles
            && ns_ok
            && ksa_ok
            && !ex.over_limit
        {
            let management = match m.manage.as_ref().map(|s| s.value) {
                Some(Manage::Annotate) => KsaManagement::AnnotateExisting,
                Some(Manage::Create) | None => KsaManagement::Create,
            };
            let accept = accepted_risks(cx, m.accept.as_ref());
            let principals: Vec<DirectPrincipal> = match m.principal_set.as_ref().map(|s| s.value) {
                Some(PrincipalSetKind::Namespace) => vec![DirectPrincipal::Namespace {
                    namespace: namespace.value.clone(),
                }],
                Some(PrincipalSetKind::Cluster) => vec![DirectPrincipal::Cluster],
                None => ksas
                    .iter()
                    .map(|k| DirectPrincipal::Ksa {
                        namespace: namespace.value.clone(),
                        ksa: k.value.clone(),
                    })
                    .collect(),
            };
            for &ci in &targets {
                let key = &resolver.clusters[ci].key;
                let resolved: Vec<DirectRole> = roles
                    .iter()
                    .map(|(role, resource)| DirectRole {
                        role: role.clone(),
                        resource: resource
                            .clone()
                            .unwrap_or_else(|| DirectResource::Project(key.project.clone())),
                    })
                    .collect();
                for principal in &principals {
                    let grant = ex
                        .direct
                        .entry((key.clone(), principal.clone()))
                        .or_insert_with(|| DirectGrant {
                            cluster: key.clone(),
                            principal: principal.clone(),
                            roles: Vec::new(),
                            management,
                            owner: cx.owner().clone(),
                            origin: cx.origin(item.span()),
                            accept: accept.clone(),
                        });
                    grant.roles.extend(resolved.iter().cloned());
                    grant.roles.sort();
                    grant.roles.dedup();
                }
            }
        }
        let Some(service_account) = &m.service_account else {
            continue;
        };
        let Some(Some(gsa)) = gsa else { continue };
        if let Some(ai) = gsa.declared {
            let account = &resolver.accounts[ai];
            if &account.owner != cx.owner() {
                let p = cx
                    .new_problem(
                        "wi::spec::foreign_account",
                        format!(
                            "a mapping of owner {} names `{}`, an account of owner {}",
                            cx.owner(),
                            gsa.email,
                            account.owner
                        ),
                    )
                    .label(
                        service_account.span(),
                        format!("mapped by owner {} here", cx.owner()),
                    )
                    .help(format!(
                        "declare the mapping in the spec of owner {} ({}): the members of an \
                         account are its owner's, and that owner's next run would remove this one",
                        account.owner,
                        cx.file_name(account.file)
                    ));
                let p = cx.label_at(
                    p,
                    account.file,
                    account.name.span(),
                    format!("declared by owner {} here", account.owner),
                );
                cx.push(p);
                continue;
            }
        }
        if !ns_ok || !ksa_ok || ex.over_limit {
            continue;
        }
        let accept = accepted_risks(cx, m.accept.as_ref());
        let management = match m.manage.as_ref().map(|s| s.value) {
            Some(Manage::Annotate) => KsaManagement::AnnotateExisting,
            Some(Manage::Create) | None => KsaManagement::Create,
        };
        let origin_index = ex.origins.len();
        ex.origins.push(Origin {
            item: (cx.cur, mi),
            gsa_span: service_account.span(),
            gsa_text: service_account.value.clone(),
        });
        // Every placement of the item is declared at the item's line.
        let declared_at = cx.origin(item.span());
        let ns: &'a str = m.namespace.as_ref().map_or("", |n| n.value.as_str());
        for &ci in &targets {
            for k in &ksas {
                let key = (ci, ns, k.value.as_str());
                if let Some(&prev) = ex.placed_at.get(&key) {
                    let prev = &ex.placed[prev];
                    let same = prev.mapping.gsa_email == gsa.email;
                    let prev_origin = &ex.origins[prev.origin];
                    let origin = &ex.origins[origin_index];
                    let entry = ex
                        .clashes
                        .entry((prev_origin.item, origin.item, key.1, key.2, same))
                        .or_insert_with(|| (prev_origin.clone(), origin.clone(), Vec::new()));
                    entry.2.push(format!("`{}`", resolver.clusters[ci].key));
                    continue;
                }
                if ex.placed.len() >= MAX_EXPANDED {
                    ex.over_limit = true;
                    cx.too_many(
                        "expanded mappings (cluster, namespace, KSA)",
                        MAX_EXPANDED,
                        item.span(),
                    );
                    break;
                }
                let mapping = Mapping {
                    cluster: resolver.clusters[ci].key.clone(),
                    namespace: key.1.to_owned(),
                    ksa: key.2.to_owned(),
                    gsa_email: gsa.email.clone(),
                    gsa_project: gsa.project.clone(),
                    management,
                    owner: cx.owner().clone(),
                    origin: declared_at.clone(),
                    accept: accept.clone(),
                };
                ex.placed_at.insert(key, ex.placed.len());
                ex.placed.push(Placed {
                    cluster: ci,
                    mapping,
                    origin: origin_index,
                });
            }
            if ex.over_limit {
                break;
            }
        }
    }
}

/// The combinations of `serviceAccount`, `roles`, `principalSet`,
/// `namespace`, `ksa`/`ksas` and `manage` a mapping may have; false (each
/// problem reported) when the mapping is malformed.
fn mapping_shape(cx: &mut Ctx, m: &RawMapping, span: Option<Range<usize>>) -> bool {
    let mut ok = true;
    if m.service_account.is_none() && m.roles.is_none() && m.principal_set.is_none() {
        let p = cx
            .new_problem(
                "wi::spec::mapping_grants_nothing",
                "mapping has neither `serviceAccount` nor `roles`",
            )
            .label(m.clusters.span().or(span.clone()), "this mapping grants nothing")
            .help("add `serviceAccount: NAME` (GSA mode) or `roles: [roles/NAME]` (direct mode: the KSA itself gets the roles)");
        cx.push(p);
        ok = false;
    }
    if let Some(roles) = &m.roles
        && roles.is_empty()
    {
        let p = cx
            .new_problem("wi::spec::empty_list", "empty list of roles")
            .label(m.clusters.span().or(span.clone()), "`roles` is empty")
            .help("list at least one role, or remove `roles`");
        cx.push(p);
        ok = false;
    }
    if let Some(set) = &m.principal_set {
        let kind = match set.value {
            PrincipalSetKind::Namespace => "namespace",
            PrincipalSetKind::Cluster => "cluster",
        };
        let mut forbid = |cx: &mut Ctx, field: &str, at: Option<Range<usize>>| {
            let p = cx
                .new_problem(
                    "wi::spec::principal_set_field",
                    format!("`{field}` cannot be used with `principalSet: {kind}`"),
                )
                .label(at, format!("`{field}` here"))
                .label(set.span(), "a principal set")
                .help("a principal set grants `roles` to every KSA of the set: it has no KSA, no Google service account and nothing to manage");
            cx.push(p);
            ok = false;
        };
        if let Some(sa) = &m.service_account {
            forbid(cx, "serviceAccount", sa.span());
        }
        if let Some(k) = &m.ksa {
            forbid(cx, "ksa", k.span());
        }
        if let Some(k) = &m.ksas {
            forbid(cx, "ksas", k.span());
        }
        if let Some(k) = &m.manage {
            forbid(cx, "manage", k.span());
        }
        match (set.value, &m.namespace) {
            (PrincipalSetKind::Namespace, None) => {
                let p = cx
                    .new_problem(
                        "wi::spec::missing_namespace",
                        "`principalSet: namespace` names no namespace",
                    )
                    .label(set.span(), "which namespace?")
                    .help("add `namespace: NAME`");
                cx.push(p);
                ok = false;
            }
            (PrincipalSetKind::Cluster, Some(ns)) => {
                forbid(cx, "namespace", ns.span());
            }
            _ => {}
        }
        if m.roles.is_none() {
            let p = cx
                .new_problem(
                    "wi::spec::principal_set_without_roles",
                    "a principal set needs `roles`",
                )
                .label(set.span(), "grants nothing")
                .help("add `roles: [roles/NAME]`");
            cx.push(p);
            ok = false;
        }
    } else if m.namespace.is_none() {
        let p = cx
            .new_problem("wi::spec::missing_namespace", "mapping names no namespace")
            .label(m.clusters.span().or(span), "in which namespace?")
            .help("add `namespace: NAME`");
        cx.push(p);
        ok = false;
    }
    ok
}

/// The direct roles of a mapping, each with the resource it names (`None`:
/// the clusters' own project); `None` when it has no `roles` or one is
/// invalid (reported).
fn direct_roles(
    cx: &mut Ctx,
    m: &RawMapping,
    resolver: &Resolver<'_, '_>,
) -> Option<Vec<(String, Option<DirectResource>)>> {
    let roles = m.roles.as_ref()?;
    let mut out = Vec::new();
    let mut ok = true;
    for item in roles.iter().take(MAX_ITEMS) {
        let r = &item.value;
        let role = Sp {
            value: r.role.value.clone(),
            span: r.role.span().or(item.span()),
        };
        ok &= cx.name(&role, "role", "wi::spec::invalid_role", names::check_role);
        let resource = match (&r.project, &r.service_account) {
            (Some(p), Some(sa)) => {
                let p = cx
                    .new_problem(
                        "wi::spec::role_two_resources",
                        "a role names both `project` and `serviceAccount`",
                    )
                    .label(p.span(), "`project` here")
                    .label(sa.span(), "`serviceAccount` here")
                    .help("grant it on one resource per entry: write the role twice to grant it on both");
                cx.push(p);
                ok = false;
                None
            }
            (Some(p), None) => {
                ok &= cx.name(
                    p,
                    "project id",
                    "wi::spec::invalid_project_id",
                    names::check_project_id,
                );
                Some(DirectResource::Project(p.value.clone()))
            }
            (None, Some(sa)) => match resolver.account(cx, sa) {
                Some(gsa) => Some(DirectResource::ServiceAccount {
                    email: gsa.email,
                    project: gsa.project,
                }),
                None => {
                    ok = false;
                    None
                }
            },
            (None, None) => None,
        };
        out.push((role.value, resource));
    }
    ok.then_some(out)
}

/// The risks an `accept:` list names, sorted; an unknown name is reported
/// with the closest known one.
fn accepted_risks(cx: &mut Ctx, list: Option<&crate::spec::raw::SpList>) -> Vec<Risk> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    for item in cx.list(list, "accepted risks") {
        match Risk::ALL.iter().find(|(_, name)| *name == item.value) {
            Some((risk, _)) => {
                out.insert(*risk);
            }
            None => {
                let names: Vec<&str> = Risk::ALL.iter().map(|(_, n)| *n).collect();
                let help = match super::closest(&item.value, &names) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("a mapping can accept: {}", names.join(", ")),
                };
                let p = cx
                    .new_problem(
                        "wi::spec::unknown_risk",
                        format!("`{}` is not a risk a mapping can accept", item.value),
                    )
                    .label(item.span(), "unknown risk")
                    .help(help);
                cx.push(p);
            }
        }
    }
    out.into_iter().collect()
}

/// (account email, member) → the file and member of its first `absent` entry.
pub(super) type SeenAbsent<'a> = HashMap<(String, String), (usize, &'a Sp<String>)>;

/// (account email, member) → the cluster index and origin of a mapping that
/// binds the member to the account.
pub(super) type Bound<'e> = HashMap<(String, String), (usize, &'e Origin)>;

impl Expansion<'_> {
    /// Every (account email, member) the mappings bind, for the `absent`
    /// checks; built once for the whole set, and only when some file has
    /// `absent` entries. When several clusters bind the same member, the one
    /// declared last among the clusters is kept.
    pub(super) fn bound_members(&self) -> Bound<'_> {
        let mut bound: Bound<'_> =
            HashMap::with_capacity_and_hasher(self.placed.len(), Default::default());
        for p in &self.placed {
            let here = (p.cluster, &self.origins[p.origin]);
            bound
                .entry((p.mapping.gsa_email.clone(), p.mapping.member()))
                .and_modify(|kept| {
                    if here.0 > kept.0 {
                        *kept = here;
                    }
                })
                .or_insert(here);
        }
        bound
    }
}

/// The current file's `absent` entries; a member a mapping of any file binds
/// (`bound`, from [`Expansion::bound_members`]) is an error.
pub(super) fn validate_absent<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    resolver: &Resolver<'_, '_>,
    bound: &Bound<'_>,
    seen: &mut SeenAbsent<'a>,
) -> Vec<AbsentMember> {
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
        if let Some(&(file, first)) = seen.get(&key) {
            let p = cx
                .new_problem(
                    "wi::spec::duplicate_absent",
                    format!(
                        "`{}` is listed as absent twice for `{}`",
                        a.member.value, gsa.email
                    ),
                )
                .label(a.member.span(), "listed again here");
            let p = cx.label_at(p, file, first.span(), "first listed here");
            cx.push(p);
            continue;
        }
        seen.insert(key.clone(), (cx.cur, &a.member));
        if let Some(&(_, origin)) = bound.get(&key) {
            let p = cx
                .new_problem(
                    "wi::spec::absent_conflict",
                    format!(
                        "`{}` must be absent from `{}`, but a mapping binds it",
                        a.member.value, gsa.email
                    ),
                )
                .label(a.member.span(), "must be absent here")
                .help("remove the mapping or the absent entry");
            let p = cx.label_at(
                p,
                origin.item.0,
                origin.gsa_span.clone(),
                "but this mapping binds it",
            );
            cx.push(p);
            continue;
        }
        out.push(AbsentMember {
            gsa_email: gsa.email,
            gsa_project: gsa.project,
            member: a.member.value.clone(),
            owner: cx.owner().clone(),
            origin: cx.origin(a.member.span()),
        });
    }
    out
}
