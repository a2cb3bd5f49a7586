//! The `mappings` and `absent` sections, expanded to one (cluster, namespace,
//! KSA) mapping each, with clashes between mappings reported once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use super::resolve::Resolver;
use super::{ClusterInfo, Ctx, MAX_EXPANDED, MAX_ITEMS, list_some};
use crate::spec::model::{AbsentMember, KsaManagement, Mapping, Risk};
use crate::spec::names;
use crate::spec::raw::{Manage, RawSpec, Sp};

/// A mapping item: (file, index in that file's `mappings`).
type ItemId = (usize, usize);
/// Two mappings giving the same KSA: (first mapping, second mapping, namespace,
/// KSA, same GSA?).
type ClashKey = (ItemId, ItemId, String, String, bool);
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

/// Every file's mappings expanded to (cluster, namespace, KSA), with the
/// clashes between them (within a file or across files).
#[derive(Default)]
pub(super) struct Expansion {
    expanded: BTreeMap<(usize, String, String), (Mapping, Origin)>,
    clashes: BTreeMap<ClashKey, Clash>,
    over_limit: bool,
}

impl Expansion {
    /// The expanded mappings.
    pub(super) fn into_mappings(self) -> Vec<Mapping> {
        self.expanded.into_values().map(|(m, _)| m).collect()
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

impl Expansion {
    /// The same namespace/KSA acting as different accounts in clusters of one
    /// project: the workload pool `P.svc.id.goog` names the KSA once for
    /// every cluster of P, so each such cluster's KSA gets every one of those
    /// accounts. Reported once per (project, namespace, KSA), pointing at the
    /// first mapping of each account.
    pub(super) fn report_escalations(&self, cx: &mut Ctx) {
        type Accounts<'a> = BTreeMap<&'a str, (&'a Origin, BTreeSet<String>)>;
        let mut by_identity: BTreeMap<(&str, &str, &str), Accounts<'_>> = BTreeMap::new();
        for (m, origin) in self.expanded.values() {
            let entry = by_identity
                .entry((&m.cluster.project, &m.namespace, &m.ksa))
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
pub(super) fn validate_mappings(
    cx: &mut Ctx,
    raw: &RawSpec,
    resolver: &Resolver<'_, '_>,
    ex: &mut Expansion,
) {
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

        let Some(gsa) = gsa else { continue };
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
                        m.service_account.span(),
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
        let origin = Origin {
            item: (cx.cur, mi),
            gsa_span: m.service_account.span(),
            gsa_text: m.service_account.value.clone(),
        };
        for &ci in &targets {
            for k in &ksas {
                let key = (ci, m.namespace.value.clone(), k.value.clone());
                if let Some((prev, prev_origin)) = ex.expanded.get(&key) {
                    let same = prev.gsa_email == gsa.email;
                    let entry = ex
                        .clashes
                        .entry((
                            prev_origin.item,
                            origin.item,
                            key.1.clone(),
                            key.2.clone(),
                            same,
                        ))
                        .or_insert_with(|| (prev_origin.clone(), origin.clone(), Vec::new()));
                    entry.2.push(format!("`{}`", resolver.clusters[ci].key));
                    continue;
                }
                if ex.expanded.len() >= MAX_EXPANDED {
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
                    namespace: key.1.clone(),
                    ksa: key.2.clone(),
                    gsa_email: gsa.email.clone(),
                    gsa_project: gsa.project.clone(),
                    management,
                    owner: cx.owner().clone(),
                    origin: cx.origin(item.span()),
                    accept: accept.clone(),
                };
                ex.expanded.insert(key, (mapping, origin.clone()));
            }
            if ex.over_limit {
                break;
            }
        }
    }
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

/// The current file's `absent` entries; a member a mapping of any file binds is an error.
pub(super) fn validate_absent<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    resolver: &Resolver<'_, '_>,
    ex: &Expansion,
    seen: &mut SeenAbsent<'a>,
) -> Vec<AbsentMember> {
    let bound: HashMap<(String, String), &Origin> = ex
        .expanded
        .values()
        .map(|(m, o)| ((m.gsa_email.clone(), m.member()), o))
        .collect();
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
