//! GKE: each declared cluster's workload pool, and the metadata mode of the
//! node pools that must run the GKE metadata server (nothing on Autopilot,
//! where GKE keeps both on).

use super::{Planner, create, noop, reason, update};
use crate::plan::desired::{
    AUTOPILOT, INITIAL_NODE_COUNT, MACHINE_TYPE, METADATA_MODE, RELEASE_CHANNEL, WORKLOAD_POOL,
};
use crate::plan::{ReasonCode, Resource, Warning, WarningCode};
use crate::spec::PoolSelection;

impl Planner<'_> {
    pub(super) fn clusters(&mut self) {
        for cluster in &self.model.clusters {
            let resource = Resource::Cluster {
                cluster: cluster.key.clone(),
            };
            let address = resource.address();
            let autopilot_create = cluster.create.as_ref().is_some_and(|c| c.autopilot);
            let desired_pool = (cluster.workload_identity || cluster.autopilot)
                .then(|| cluster.key.workload_pool());
            let live = self
                .live
                .clusters
                .get(&cluster.key)
                .and_then(|c| c.gke.as_ref());
            let Some(live) = live else {
                match &cluster.create {
                    Some(block) if autopilot_create => {
                        // GKE picks an Autopilot cluster's nodes.
                        let after = attrs!({
                            "name": cluster.key.name,
                            "location": cluster.key.location,
                            AUTOPILOT: true,
                            WORKLOAD_POOL: desired_pool,
                            RELEASE_CHANNEL: block.release_channel,
                        });
                        self.push(create(resource, after, reason(ReasonCode::Missing, "the cluster does not exist and the spec has a create block (Autopilot)")));
                    }
                    Some(block) => {
                        let after = attrs!({
                            "name": cluster.key.name,
                            "location": cluster.key.location,
                            WORKLOAD_POOL: desired_pool,
                            INITIAL_NODE_COUNT: block.initial_node_count,
                            MACHINE_TYPE: block.machine_type,
                            RELEASE_CHANNEL: block.release_channel,
                        });
                        self.push(create(resource, after, reason(ReasonCode::Missing, "the cluster does not exist and the spec has a create block")));
                    }
                    None => self.problem(
                        address,
                        format!("cluster {} does not exist", cluster.key.path()),
                        Some("check the name, project and location, or add a `create` block to let wi create it"),
                    ),
                }
                continue;
            };
            if live.autopilot() || cluster.autopilot {
                self.autopilot_cluster(cluster, live, resource);
                continue;
            }
            let live_pool = live.workload_pool().map(str::to_string);
            let before = attrs!({WORKLOAD_POOL: live_pool});
            let after = attrs!({WORKLOAD_POOL: desired_pool});
            if live_pool == desired_pool {
                self.push(noop(
                    resource,
                    before,
                    after,
                    reason(ReasonCode::InSync, "workload pool as declared"),
                ));
            } else {
                let why = if desired_pool.is_some() {
                    "Workload Identity is off: the cluster has no workload pool"
                } else {
                    "the spec turns Workload Identity off"
                };
                let mut warnings = vec![];
                if desired_pool.is_none() {
                    warnings.push(Warning {
                        code: WarningCode::DisablesWorkloadIdentity,
                        message: "pods of this cluster lose their Google identities".into(),
                        address: Some(address.clone()),
                    });
                }
                self.push(
                    update(resource, before, after, reason(ReasonCode::Drift, why))
                        .with_warnings(warnings),
                );
            }
            self.node_pools(cluster, live, &address);
        }
    }

    /// An Autopilot cluster: Workload Identity is always on and GKE keeps
    /// every node pool on the GKE metadata server, so nothing is planned; a
    /// spec that says otherwise, or that declares Autopilot for a Standard
    /// cluster, is refused.
    fn autopilot_cluster(
        &mut self,
        cluster: &crate::spec::Cluster,
        live: &crate::gcp::types::GkeCluster,
        resource: Resource,
    ) {
        let address = resource.address();
        if !live.autopilot() {
            self.problem(
                address,
                format!(
                    "cluster {} is declared Autopilot ({}) but is a Standard cluster",
                    cluster.key.path(),
                    cluster.origin
                ),
                Some("remove `autopilot: true`: a Standard cluster cannot become Autopilot"),
            );
            return;
        }
        if let Some(at) = &cluster.restricted_at {
            let what = if cluster.workload_identity {
                "restricts `metadataServer`"
            } else {
                "turns Workload Identity off"
            };
            self.problem(
                address,
                format!(
                    "cluster {} is an Autopilot cluster, but {at} {what}",
                    cluster.key.path()
                ),
                Some("Autopilot clusters always run Workload Identity on every node pool: remove that setting (and add `autopilot: true` to say so)"),
            );
            return;
        }
        let live_pool = live.workload_pool().map(str::to_string);
        self.push(noop(
            resource,
            attrs!({WORKLOAD_POOL: live_pool}),
            attrs!({WORKLOAD_POOL: live_pool}),
            reason(
                ReasonCode::InSync,
                "Autopilot: Workload Identity is always on and GKE manages the node pools",
            ),
        ));
    }

    fn node_pools(
        &mut self,
        cluster: &crate::spec::Cluster,
        live: &crate::gcp::types::GkeCluster,
        cluster_address: &str,
    ) {
        if !cluster.workload_identity {
            return;
        }
        let selected: Vec<&str> = match &cluster.metadata_server {
            PoolSelection::None => return,
            PoolSelection::All => live.node_pools.iter().map(|p| p.name.as_str()).collect(),
            PoolSelection::Only(pools) => pools.iter().map(String::as_str).collect(),
        };
        let cluster_changes = self.planned(&Resource::Cluster {
            cluster: cluster.key.clone(),
        });
        for pool_name in selected {
            let resource = Resource::NodePool {
                cluster: cluster.key.clone(),
                pool: pool_name.to_string(),
            };
            let Some(pool) = live.node_pools.iter().find(|p| p.name == pool_name) else {
                self.problem(
                    resource.address(),
                    format!(
                        "node pool {pool_name} does not exist in cluster {}",
                        cluster.key
                    ),
                    Some("wi never creates node pools; list existing pools under `metadataServer`"),
                );
                continue;
            };
            let mode = pool.metadata_mode().unwrap_or("GCE_METADATA").to_string();
            let before = attrs!({METADATA_MODE: mode});
            let after = attrs!({METADATA_MODE: "GKE_METADATA"});
            if mode == "GKE_METADATA" {
                self.push(noop(
                    resource,
                    before,
                    after,
                    reason(ReasonCode::InSync, "runs the GKE metadata server"),
                ));
            } else {
                let address = resource.address();
                let deps = if cluster_changes {
                    vec![cluster_address.to_string()]
                } else {
                    vec![]
                };
                self.push(update(resource, before, after, reason(ReasonCode::Drift, "pods on this pool get the node's identity instead of their KSA's: the pool does not run the GKE metadata server")).with_deps(deps).with_warnings(vec![Warning {
                        code: WarningCode::RollsNodes,
                        message: "switching to GKE_METADATA recreates every node of the pool; pods are rescheduled and the operation can take a long time".into(),
                        address: Some(address),
                    }]));
            }
        }
    }
}
