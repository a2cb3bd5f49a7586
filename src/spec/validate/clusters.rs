//! The `clusters` section: each cluster's key, name checks, Workload Identity
//! and node-pool settings, and the groups clusters join.

use std::collections::{BTreeMap, BTreeSet};

use super::HashMap;

use super::{ClusterInfo, Ctx, Declared, MAX_CLUSTERS, PROJECT_ID};
use crate::spec::model::{Cluster, ClusterCreate, ClusterKey, PoolSelection};
use crate::spec::names;
use crate::spec::raw::{MetadataServer, RawCluster, RawSpec, Sp};

pub(super) fn validate_clusters<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    default_project: Option<&'a Sp<String>>,
    default_location: Option<&'a Sp<String>>,
    seen: &mut Declared<'a>,
) -> (Vec<Cluster>, Vec<ClusterInfo<'a>>) {
    let mut out = Vec::new();
    let mut infos = Vec::new();
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

        let autopilot = validate_autopilot(cx, c, location.as_str());
        // What an Autopilot cluster cannot honour, for the plan to refuse
        // when the live cluster is Autopilot but the spec does not say so.
        let restricted_at = match (&c.workload_identity, &c.metadata_server) {
            (Some(w), _) if !w.value => Some(cx.origin(w.span())),
            (_, Some(m)) if m.value != MetadataServer::All => Some(cx.origin(m.span())),
            _ => None,
        };

        let mut groups = BTreeSet::new();
        if let Some(list) = &c.groups {
            for g in cx.list(list, "groups") {
                if cx.name(
                    g,
                    "group name",
                    "wi::spec::invalid_group_name",
                    names::check_group_name,
                ) {
                    groups.insert(g.value.clone());
                }
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
                autopilot: cr.autopilot.as_ref().is_some_and(|a| a.value),
                initial_node_count,
                machine_type: cr.machine_type.as_ref().map(|m| m.value.clone()),
                release_channel: cr
                    .release_channel
                    .as_ref()
                    .map(|r| r.value.as_str().to_owned()),
            }
        });

        let duplicate = cx.first_declaration(
            seen,
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
                file: cx.cur,
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
            autopilot,
            restricted_at,
            groups: groups.into_iter().collect(),
            origin: cx.origin(c.name.span()),
        });
    }
    (out, infos)
}

/// Whether the cluster is declared Autopilot (`autopilot: true`, or
/// `create: {autopilot: true}`), with an error at the line of each setting
/// an Autopilot cluster cannot have.
fn validate_autopilot(cx: &mut Ctx, c: &RawCluster, location: &str) -> bool {
    let create = c.create.as_ref().map(|cr| &cr.value);
    let created = create
        .and_then(|cr| cr.autopilot.as_ref())
        .filter(|a| a.value);
    let declared = c.autopilot.as_ref();
    if let (Some(d), Some(cr)) = (declared, created)
        && !d.value
    {
        let p = cx
            .new_problem(
                "wi::spec::autopilot_conflict",
                format!(
                    "cluster `{}` says `autopilot: false` but creates an Autopilot cluster",
                    c.name.value
                ),
            )
            .label(d.span(), "not Autopilot here")
            .label(cr.span(), "Autopilot here")
            .help("remove one of the two");
        cx.push(p);
    }
    let autopilot = declared.is_some_and(|d| d.value) || created.is_some();
    if !autopilot {
        return false;
    }
    let at = declared
        .filter(|d| d.value)
        .and_then(Sp::span)
        .or_else(|| created.and_then(Sp::span));
    if let Some(w) = &c.workload_identity
        && !w.value
    {
        let p = cx
            .new_problem(
                "wi::spec::autopilot_workload_identity",
                format!(
                    "cluster `{}` is an Autopilot cluster: Workload Identity cannot be turned off",
                    c.name.value
                ),
            )
            .label(w.span(), "turns Workload Identity off")
            .label(at.clone(), "Autopilot declared here")
            .help(
                "Autopilot clusters always run Workload Identity: remove `workloadIdentity: false`",
            );
        cx.push(p);
    }
    if let Some(m) = &c.metadata_server
        && m.value != MetadataServer::All
    {
        let p = cx
            .new_problem(
                "wi::spec::autopilot_metadata_server",
                format!(
                    "cluster `{}` is an Autopilot cluster: its node pools cannot be chosen",
                    c.name.value
                ),
            )
            .label(m.span(), "restricts the GKE metadata server")
            .label(at.clone(), "Autopilot declared here")
            .help("GKE runs every Autopilot node pool on the GKE metadata server: remove `metadataServer`");
        cx.push(p);
    }
    if let Some(cr) = create.filter(|_| created.is_some()) {
        let fixed = [
            cr.initial_node_count.as_ref().and_then(Sp::span),
            cr.machine_type.as_ref().and_then(Sp::span),
        ];
        for span in fixed.into_iter().flatten() {
            let p = cx
                .new_problem(
                    "wi::spec::invalid_create",
                    format!(
                        "cluster `{}` is created as Autopilot: GKE picks its nodes",
                        c.name.value
                    ),
                )
                .label(Some(span), "not for an Autopilot cluster")
                .help(
                    "remove `initialNodeCount` and `machineType` from an Autopilot `create` block",
                );
            cx.push(p);
        }
        if crate::spec::locations::is_known_zone(location) {
            let p = cx
                .new_problem(
                    "wi::spec::invalid_create",
                    format!(
                        "cluster `{}` is created as Autopilot in zone `{location}`",
                        c.name.value
                    ),
                )
                .label(
                    created.and_then(Sp::span),
                    "Autopilot clusters are regional",
                )
                .help("give the cluster a region (`us-central1`), not a zone");
            cx.push(p);
        }
    }
    true
}

/// Group name → member cluster indices. A group named like a cluster is an error.
pub(super) fn collect_groups(
    cx: &mut Ctx,
    infos: &[ClusterInfo<'_>],
) -> BTreeMap<String, Vec<usize>> {
    let cluster_names: HashMap<&str, (usize, &Sp<String>)> = infos
        .iter()
        .map(|i| (i.key.name.as_str(), (i.file, i.name)))
        .collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for (idx, info) in infos.iter().enumerate() {
        let Some(list) = info.groups else {
            continue;
        };
        for g in &list.value {
            if let Some(&(file, cluster)) = cluster_names.get(g.value.as_str()) {
                if reported.insert(g.value.clone()) {
                    cx.cur = info.file;
                    let p = cx
                        .new_problem(
                            "wi::spec::group_name_conflict",
                            format!("group `{}` has the name of a cluster", g.value),
                        )
                        .label(g.span(), "group named here")
                        .help("mappings name clusters and groups the same way: rename the group");
                    let p = cx.label_at(p, file, cluster.span(), "cluster of the same name");
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
