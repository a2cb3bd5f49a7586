//! The `mappings` and `absent` sections, expanded to one (cluster, namespace,
//! KSA) mapping each, with clashes between mappings reported once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use super::resolve::Resolver;
use super::{ClusterInfo, Ctx, MAX_EXPANDED, MAX_ITEMS, list_some};
use crate::spec::model::{AbsentMember, KsaManagement, Mapping};
use crate::spec::names;
use crate::spec::raw::{Manage, RawSpec, Sp};

/// Two mappings giving the same KSA: (first mapping, second mapping, namespace,
/// KSA, same GSA?).
type ClashKey = (usize, usize, String, String, bool);
/// The two origins and the clusters where they clash.
type Clash = (Origin, Origin, Vec<String>);

/// Where an expanded mapping came from, for diagnostics.
#[derive(Clone)]
pub(super) struct Origin {
    mapping: usize,
    gsa_span: Option<Range<usize>>,
}

pub(super) fn validate_mappings(
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
                    owner: cx.owner.clone(),
                    origin: cx.origin(item.span()),
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

pub(super) fn validate_absent(
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
            owner: cx.owner.clone(),
            origin: cx.origin(a.member.span()),
        });
    }
    out
}
