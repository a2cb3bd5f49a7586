//! Kubernetes: namespaces and KSAs of the mappings, the release of `wi`'s
//! annotation where a mapping left the spec, and host-network warnings.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ServiceAccount as K8sServiceAccount;
use serde_json::json;

use super::{Planner, annotation_key, attrs, create, delete, label_key, noop, reason, update};
use crate::ids::ClusterKey;
use crate::live::LiveKube;
use crate::ownership::{GSA_ANNOTATION, MANAGED_BY_LABEL, created_by_wi, ksa_field_owners};
use crate::plan::{Action, Attributes, ReasonCode, Resource, Warning, WarningCode};
use crate::spec::KsaManagement;

impl Planner<'_> {
    pub(super) fn kubernetes(&mut self) {
        let mut by_cluster: BTreeMap<&ClusterKey, Vec<&crate::spec::Mapping>> = BTreeMap::new();
        for m in &self.model.mappings {
            by_cluster.entry(&m.cluster).or_default().push(m);
        }
        for cluster in &self.model.clusters {
            let key = &cluster.key;
            let cluster_created = self.changes.iter().any(|c| {
                matches!(&c.resource, Resource::Cluster { cluster } if cluster == key)
                    && c.action == Action::Create
            });
            let cluster_dep = if cluster_created {
                vec![
                    Resource::Cluster {
                        cluster: key.clone(),
                    }
                    .address(),
                ]
            } else {
                vec![]
            };
            let live_cluster = self.live.clusters.get(key);
            if live_cluster.and_then(|c| c.gke.as_ref()).is_none() && !cluster_created {
                continue; // already reported as a problem
            }
            let empty = LiveKube::default();
            let kube = live_cluster.and_then(|c| c.kube.as_ref()).unwrap_or(&empty);
            let mappings = by_cluster.get(key).cloned().unwrap_or_default();
            let mut namespaces_done = BTreeSet::new();
            let mut declared = BTreeSet::new();
            for m in &mappings {
                declared.insert((m.namespace.clone(), m.ksa.clone()));
                let ns_resource = Resource::Namespace {
                    cluster: key.clone(),
                    name: m.namespace.clone(),
                };
                let ns_exists = kube.namespaces.contains_key(&m.namespace);
                let mut ksa_deps = cluster_dep.clone();
                if !ns_exists {
                    if m.management == KsaManagement::AnnotateExisting {
                        self.problem(
                            ns_resource.address(),
                            format!("namespace {} does not exist in cluster {key}, and the mapping only annotates an existing KSA", m.namespace),
                            Some("set `manage: create` to let wi create the namespace and the KSA"),
                        );
                        continue;
                    }
                    ksa_deps.push(ns_resource.address());
                    if namespaces_done.insert(m.namespace.clone()) {
                        let after = attrs(json!({"name": m.namespace, label_key(): "wi"}));
                        self.push(
                            create(
                                ns_resource,
                                after,
                                reason(
                                    ReasonCode::Missing,
                                    "the namespace of a mapped KSA does not exist",
                                ),
                            )
                            .with_deps(cluster_dep.clone()),
                        );
                    }
                } else if namespaces_done.insert(m.namespace.clone()) {
                    let a = attrs(json!({"name": m.namespace}));
                    self.push(noop(
                        ns_resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "exists"),
                    ));
                }
                self.ksa(key, m, kube, ksa_deps);
            }
            // Release wi's annotation where the mapping left the spec.
            for ((ns, name), sa) in &kube.service_accounts {
                if declared.contains(&(ns.clone(), name.clone())) {
                    continue;
                }
                let (mine, _) = ksa_field_owners(sa);
                if !mine.annotation && !mine.managed_by_label {
                    continue;
                }
                let created_by_wi = created_by_wi(sa);
                let resource = Resource::KubernetesServiceAccount {
                    cluster: key.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                };
                let before = ksa_attributes(sa);
                if created_by_wi && self.options.prune {
                    self.push(delete(
                        resource,
                        before,
                        reason(
                            ReasonCode::OrphanPruned,
                            "created by wi, no mapping declares it, and --prune was given",
                        ),
                    ));
                } else if mine.annotation {
                    let mut after = Attributes::new();
                    if mine.managed_by_label {
                        after.insert(label_key(), json!("wi"));
                    }
                    self.push(update(
                        resource,
                        before,
                        after,
                        reason(
                            ReasonCode::NotInSpec,
                            "no mapping declares this KSA any more: wi releases its annotation",
                        ),
                    ));
                }
            }
        }
    }

    fn ksa(
        &mut self,
        key: &ClusterKey,
        m: &crate::spec::Mapping,
        kube: &LiveKube,
        deps: Vec<String>,
    ) {
        let resource = Resource::KubernetesServiceAccount {
            cluster: key.clone(),
            namespace: m.namespace.clone(),
            name: m.ksa.clone(),
        };
        let address = resource.address();
        let live = kube
            .service_accounts
            .get(&(m.namespace.clone(), m.ksa.clone()));
        let Some(live) = live else {
            if m.management == KsaManagement::AnnotateExisting {
                self.problem(
                    address,
                    format!("KSA {}/{} does not exist in cluster {key}, and the mapping only annotates an existing KSA", m.namespace, m.ksa),
                    Some("create it first (Helm, kubectl) or set `manage: create`"),
                );
                return;
            }
            let after = attrs(json!({annotation_key(): m.gsa_email, label_key(): "wi"}));
            self.push(
                create(
                    resource,
                    after,
                    reason(ReasonCode::Missing, "the KSA does not exist"),
                )
                .with_deps(deps),
            );
            return;
        };
        let (mine, other_owners) = ksa_field_owners(live);
        let current = live
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GSA_ANNOTATION))
            .cloned();
        let before = ksa_attributes(live);
        let mut after = Attributes::new();
        after.insert(annotation_key(), json!(m.gsa_email));
        let created_by_wi = created_by_wi(live);
        if mine.managed_by_label || (created_by_wi && m.management == KsaManagement::Create) {
            after.insert(label_key(), json!("wi"));
        }
        // Pods of this KSA on the host network cannot use Workload Identity.
        for pod in &kube.pods {
            let Some(spec) = &pod.spec else { continue };
            if pod.metadata.namespace.as_deref() == Some(m.namespace.as_str())
                && spec.service_account_name.as_deref() == Some(m.ksa.as_str())
                && spec.host_network == Some(true)
            {
                self.warnings.push(Warning {
                    code: WarningCode::HostNetwork,
                    message: format!(
                        "pod {}/{} runs as this KSA on the host network: it gets the node's identity, not {}",
                        m.namespace,
                        pod.metadata.name.clone().unwrap_or_default(),
                        m.gsa_email
                    ),
                    address: Some(address.clone()),
                });
            }
        }
        if current.as_deref() == Some(m.gsa_email.as_str())
            && (!after.contains_key(&label_key())
                || before.get(&label_key()) == after.get(&label_key()))
        {
            self.push(noop(
                resource,
                before,
                after,
                reason(ReasonCode::InSync, "annotated"),
            ));
            return;
        }
        let mut warnings = Vec::new();
        if current.is_some() && !other_owners.is_empty() && !self.options.force_conflicts {
            warnings.push(Warning {
                code: WarningCode::FieldConflict,
                message: format!(
                    "the annotation is owned by field manager {}: apply stops with a conflict unless --force-conflicts is given",
                    other_owners.join(", ")
                ),
                address: Some(address.clone()),
            });
        }
        let why = match current {
            None => reason(ReasonCode::Missing, "the KSA is not annotated with its GSA"),
            Some(other) if other != m.gsa_email => reason(
                ReasonCode::Drift,
                format!("the KSA is annotated with {other}"),
            ),
            Some(_) => reason(ReasonCode::Drift, "wi's label is missing"),
        };
        self.push(
            update(resource, before, after, why)
                .with_deps(deps)
                .with_warnings(warnings),
        );
    }
}

/// The attributes of a live KSA that `wi` may manage.
fn ksa_attributes(sa: &K8sServiceAccount) -> Attributes {
    let mut a = Attributes::new();
    if let Some(v) = sa
        .metadata
        .annotations
        .as_ref()
        .and_then(|x| x.get(GSA_ANNOTATION))
    {
        a.insert(annotation_key(), json!(v));
    }
    if let Some(v) = sa
        .metadata
        .labels
        .as_ref()
        .and_then(|x| x.get(MANAGED_BY_LABEL))
    {
        a.insert(label_key(), json!(v));
    }
    a
}
