//! Kubernetes: namespaces and KSAs of the mappings, written for the mapping's
//! owner (field manager `wi/O`, owner label); a named owner's claim of a KSA
//! an older `wi` annotated; collisions with another owner's claim; the
//! release of an owner's annotation where its mapping left the spec (or, with
//! `--prune`, the deletion of a KSA it created, unless someone else
//! co-manages it); and host-network warnings.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::direct::record_key;
use super::{
    Planner, annotation_key, create, delete, has_member, label_key, noop, owner_label_key, reason,
    same_file, update,
};
use crate::ids::{ClusterKey, ksa_member};
use crate::live::{KubeObject, LiveKube};
use crate::ownership::{
    GSA_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL, Owner, WORKLOAD_IDENTITY_USER,
};
use crate::plan::{Action, Attributes, KubeWrite, ReasonCode, Resource, Warning, WarningCode};
use crate::spec::KsaManagement;

impl Planner<'_> {
    /// Labels of a namespace or KSA `owner` creates.
    pub(super) fn created_labels(owner: &Owner) -> Attributes {
        let mut a = Attributes::new();
        a.insert(label_key(), json!("wi"));
        if let Some(name) = owner.label() {
            a.insert(owner_label_key(), json!(name));
        }
        a
    }

    pub(super) fn kubernetes(&mut self) {
        let mut by_cluster: BTreeMap<&ClusterKey, Vec<&crate::spec::Mapping>> = BTreeMap::new();
        for m in &self.model.mappings {
            by_cluster.entry(&m.cluster).or_default().push(m);
        }
        let run_files = self.run_files();
        // The bindings this plan creates, by account and member, indexed
        // once: the KSA steps wait for them (a scan per KSA would make the
        // planner quadratic in the fleet's size).
        let new_bindings = self.new_bindings();
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
                        let mut after = Self::created_labels(&m.owner);
                        after.insert("name", json!(m.namespace));
                        self.push(
                            create(
                                ns_resource,
                                after,
                                reason(
                                    ReasonCode::Missing,
                                    "the namespace of a mapped KSA does not exist",
                                ),
                            )
                            .with_deps(cluster_dep.clone())
                            .for_owner(&m.owner),
                        );
                    }
                } else if namespaces_done.insert(m.namespace.clone()) {
                    let a = attrs!({"name": m.namespace});
                    self.push(noop(
                        ns_resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "exists"),
                    ));
                }
                // The annotation waits for the binding that makes it work.
                let member = crate::ids::ksa_member(&key.project, &m.namespace, &m.ksa);
                if let Some(addresses) = new_bindings.get(&(m.gsa_email.clone(), member)) {
                    ksa_deps.extend(addresses.iter().cloned());
                }
                self.ksa(key, m, kube, ksa_deps);
            }
            // Direct-mode KSAs no GSA mapping names: created (or found)
            // without an annotation, holding the record of their roles.
            let direct: Vec<&crate::spec::DirectGrant> = self
                .model
                .direct
                .iter()
                .filter(|g| &g.cluster == key)
                .collect();
            for g in direct {
                let crate::spec::DirectPrincipal::Ksa { namespace, ksa } = &g.principal else {
                    continue;
                };
                if !declared.insert((namespace.clone(), ksa.clone())) {
                    continue; // a GSA mapping writes it, record included
                }
                if self.direct_member(g).is_none() {
                    continue; // the pool project is unknown
                }
                let ns_resource = Resource::Namespace {
                    cluster: key.clone(),
                    name: namespace.clone(),
                };
                let mut ksa_deps = cluster_dep.clone();
                if !kube.namespaces.contains_key(namespace) {
                    if g.management == KsaManagement::AnnotateExisting {
                        self.problem(
                            ns_resource.address(),
                            format!("namespace {namespace} does not exist in cluster {key}, and the mapping only records roles on an existing KSA"),
                            Some("set `manage: create` to let wi create the namespace and the KSA"),
                        );
                        continue;
                    }
                    ksa_deps.push(ns_resource.address());
                    if namespaces_done.insert(namespace.clone()) {
                        let mut after = Self::created_labels(&g.owner);
                        after.insert("name", json!(namespace));
                        self.push(
                            create(
                                ns_resource,
                                after,
                                reason(
                                    ReasonCode::Missing,
                                    "the namespace of a mapped KSA does not exist",
                                ),
                            )
                            .with_deps(cluster_dep.clone())
                            .for_owner(&g.owner),
                        );
                    }
                } else if namespaces_done.insert(namespace.clone()) {
                    let a = attrs!({"name": namespace});
                    self.push(noop(
                        ns_resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "exists"),
                    ));
                }
                self.direct_ksa(key, g, namespace, ksa, kube, ksa_deps);
            }
            for ((ns, name), sa) in &kube.service_accounts {
                if !declared.contains(&(ns.clone(), name.clone())) {
                    self.undeclared_ksa(key, ns, name, sa, &run_files);
                }
            }
        }
    }

    /// A KSA no mapping declares: each of this run's owners releases its
    /// annotation (or, with `--prune`, deletes the KSA it created, unless
    /// another field manager co-manages it: then it releases it whole).
    fn undeclared_ksa(
        &mut self,
        key: &ClusterKey,
        ns: &str,
        name: &str,
        sa: &KubeObject,
        run_files: &BTreeSet<String>,
    ) {
        let fields = sa.ksa_fields();
        let creator = sa.created_by();
        let resource = Resource::KubernetesServiceAccount {
            cluster: key.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let address = resource.address();
        let record_owner = super::direct::record_of(sa).and_then(|(o, _)| o);
        for owner in self.owners() {
            let mine = fields.of(&owner);
            if !mine.any() && record_owner.as_ref() != Some(&owner) {
                continue;
            }
            // A named owner's spec split over several files: the KSA's file
            // must be part of the run (the unnamed owner keeps older wi's
            // one-spec behaviour).
            if mine.annotation
                && !owner.is_unnamed()
                && let Some(file) = sa.declared_in()
                && !run_files.iter().any(|f| same_file(f, file))
            {
                self.problem(
                    address.clone(),
                    format!(
                        "KSA {ns}/{name} is {owner}'s, declared in {file}, which is not part of this run, and no file of this run declares it: this run would release it"
                    ),
                    Some(&format!(
                        "one owner's spec split in several files is planned as one set: pass every file of {} (`-f {file}` too, or `-f DIR`); if {file} was renamed, remove the annotation once (`kubectl annotate serviceaccount -n {ns} {name} wi.dev/declared-in-`)",
                        owner.name()
                    )),
                );
                return;
            }
            let before = ksa_attributes(sa);
            let mut warnings = Vec::new();
            if mine.annotation
                && let Some(gsa) = sa.annotation(GSA_ANNOTATION)
                && let Some(w) = self.binding_remains(key, ns, name, gsa, &address)
            {
                self.warnings.push(w);
            }
            let change = if creator.as_ref() == Some(&owner) && self.options.prune {
                let co = fields.others_than(&owner);
                if co.is_empty() {
                    delete(
                        resource.clone(),
                        before,
                        reason(
                            ReasonCode::OrphanPruned,
                            "created by wi, no mapping declares it, and --prune was given",
                        ),
                    )
                } else {
                    warnings.push(Warning {
                        code: WarningCode::ReleasedNotDeleted,
                        message: format!(
                            "KSA {ns}/{name} was created by wi, but field manager {} co-manages it now: --prune releases wi's fields instead of deleting it",
                            co.join(", ")
                        ),
                        address: Some(address.clone()),
                    });
                    update(
                        resource.clone(),
                        before,
                        Attributes::new(),
                        reason(
                            ReasonCode::OrphanPruned,
                            format!(
                                "created by wi, no mapping declares it, --prune was given, and {} co-manages it: wi releases its fields",
                                co.join(", ")
                            ),
                        ),
                    )
                }
            } else if mine.annotation {
                let mut after = Attributes::new();
                if mine.managed_by_label {
                    after.insert(label_key(), json!("wi"));
                }
                if mine.owner_label
                    && let Some(n) = owner.label()
                {
                    after.insert(owner_label_key(), json!(n));
                }
                update(
                    resource.clone(),
                    before,
                    after,
                    reason(
                        ReasonCode::NotInSpec,
                        "no mapping declares this KSA any more: wi releases its annotation",
                    ),
                )
                .with_deps(self.removed_members_of(key, ns, name))
            } else if record_owner.as_ref() == Some(&owner) {
                let mut after = Attributes::new();
                if mine.managed_by_label {
                    after.insert(label_key(), json!("wi"));
                }
                if mine.owner_label
                    && let Some(n) = owner.label()
                {
                    after.insert(owner_label_key(), json!(n));
                }
                let deps = self.removed_members_of(key, ns, name);
                update(
                    resource.clone(),
                    before,
                    after,
                    reason(
                        ReasonCode::NotInSpec,
                        "no mapping declares this KSA any more: wi removes its record of direct roles",
                    ),
                )
                .with_deps(deps)
            } else {
                continue;
            };
            self.push(change.with_warnings(warnings).for_owner(&owner));
            return;
        }
    }

    /// The warning for a released KSA whose binding sits on an account this
    /// run does not manage: the binding stays, so the privilege does too.
    fn binding_remains(
        &self,
        key: &ClusterKey,
        ns: &str,
        name: &str,
        gsa: &str,
        address: &str,
    ) -> Option<Warning> {
        if self.manages_account(gsa) {
            return None; // the account's owner removes the member
        }
        let member = ksa_member(&key.project, ns, name);
        let policy = self.live.account_policies.get(gsa);
        if policy.is_some() && !has_member(policy, WORKLOAD_IDENTITY_USER, &member) {
            return None;
        }
        let whose = match self.marked_owner(gsa) {
            Some(o) => format!("is owned by {o}"),
            None => "exists, not managed by wi".to_string(),
        };
        let binding = Resource::ServiceAccountIamMember {
            project: self.account_project(gsa),
            email: gsa.to_string(),
            role: WORKLOAD_IDENTITY_USER.to_string(),
            member: member.clone(),
        };
        Some(Warning {
            code: WarningCode::BindingRemains,
            message: format!(
                "The mapping of {ns}/{name} left the spec, but its binding {} stays: {gsa} {whose}, so wi only adds its members, and the KSA can still act as {gsa}.\nTo revoke it, list the member under `absent` (serviceAccount: {gsa}, member: {member}).",
                binding.address()
            ),
            address: Some(address.to_string()),
        })
    }

    /// Why a mapped KSA that exists is not `owner`'s, though `wi` sets its
    /// annotation: nobody's (made by hand, or by Helm: its other field
    /// managers are named), or another owner's (its `wi.dev/owner` label).
    /// `None` when `owner` created it, or claims it from an older `wi`.
    fn ksa_not_managed(
        owner: &Owner,
        fields: &crate::ownership::KsaFields,
        creator: Option<&Owner>,
        claim: bool,
    ) -> Option<String> {
        match creator {
            Some(c) if c == owner => None,
            Some(Owner::Unnamed) if claim => None,
            Some(other) => Some(format!(
                "exists, owned by {other}: wi only sets its annotation"
            )),
            None if fields.co_managers.is_empty() => {
                Some("exists, not created by wi: wi only sets its annotation".to_string())
            }
            None => {
                let managers: Vec<String> = fields
                    .co_managers
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect();
                Some(format!(
                    "exists, managed by {}: wi only sets its annotation",
                    managers.join(", ")
                ))
            }
        }
    }

    /// The workload-identity bindings this plan creates for a mapping's
    /// KSA on its account: its annotation is written after them, so a pod
    /// never holds an annotation its account does not honour yet.
    /// The `roles/iam.workloadIdentityUser` members this plan creates: the
    /// addresses of their changes by (account email, member).
    fn new_bindings(&self) -> BTreeMap<(String, String), Vec<String>> {
        let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for c in &self.changes {
            if c.action != Action::Create {
                continue;
            }
            if let Resource::ServiceAccountIamMember {
                email,
                role,
                member,
                ..
            } = &c.resource
                && role == crate::ownership::WORKLOAD_IDENTITY_USER
            {
                out.entry((email.clone(), member.clone()))
                    .or_default()
                    .push(c.address.clone());
            }
        }
        out
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
        let write = KubeWrite {
            declared_in: Some(m.origin.file.clone()),
            release_managers: Vec::new(),
        };
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
            let mut after = Self::created_labels(&m.owner);
            after.insert(annotation_key(), json!(m.gsa_email));
            let (record, record_deps) = self.ksa_record(key, &m.namespace, &m.ksa, None, false);
            if let Some(record) = record {
                after.insert(record_key(), json!(record));
            }
            let mut deps = deps;
            deps.extend(record_deps);
            let mut change = create(
                resource,
                after,
                reason(ReasonCode::Missing, "the KSA does not exist"),
            )
            .with_deps(deps)
            .for_owner(&m.owner);
            change.kube = write;
            self.push(change);
            return;
        };
        let fields = live.ksa_fields();
        // Another named owner's claim: a collision, nothing is planned.
        if let Some(other) = fields
            .annotation_owners()
            .into_iter()
            .find(|o| *o != &m.owner && !o.is_unnamed())
        {
            let place = live
                .declared_in()
                .map(|f| format!(" (declared in {f}, from the KSA's wi.dev/declared-in)"))
                .unwrap_or_default();
            self.problem(
                address,
                format!(
                    "KSA {}/{} in cluster {key} is claimed by {other}{place}; {} declares it at {}",
                    m.namespace, m.ksa, m.owner, m.origin
                ),
                Some(&format!(
                    "a KSA has one owner: remove the mapping from one of the two specs ({other}'s annotation is its field manager `{}`)",
                    other.field_manager()
                )),
            );
            return;
        }
        let owner = &m.owner;
        let mine = fields.of(owner);
        let legacy = fields.of(&Owner::Unnamed);
        let claim = !owner.is_unnamed() && legacy.any();
        let creator = live.created_by();
        let current = live.annotation(GSA_ANNOTATION).map(str::to_string);
        let before = ksa_attributes(live);
        let not_managed = Self::ksa_not_managed(owner, &fields, creator.as_ref(), claim);
        let mut after = Attributes::new();
        after.insert(annotation_key(), json!(m.gsa_email));
        // Moving from direct mode: the annotation goes first, the direct
        // members after it, so the record keeps their entries.
        let annotates = current.as_deref() != Some(m.gsa_email.as_str());
        let live_record = super::direct::record_of(live)
            .filter(|(o, _)| o.as_ref() == Some(&m.owner))
            .map(|(_, e)| e);
        let (record, record_deps) =
            self.ksa_record(key, &m.namespace, &m.ksa, live_record.as_ref(), annotates);
        if let Some(record) = &record {
            after.insert(record_key(), json!(record));
        }
        let mut deps = deps;
        deps.extend(record_deps);
        let take_label = mine.managed_by_label
            || (claim && legacy.managed_by_label)
            || (creator.as_ref() == Some(owner) && m.management == KsaManagement::Create);
        if take_label {
            after.insert(label_key(), json!("wi"));
            let created_here = creator.as_ref() == Some(owner)
                || (claim && creator.as_ref() == Some(&Owner::Unnamed));
            if let Some(n) = owner.label()
                && (mine.owner_label || created_here)
            {
                after.insert(owner_label_key(), json!(n));
            }
        }
        // Labels this owner neither owns nor takes (Helm's KSA, another
        // owner's) are not this write's: the diff does not show them leaving.
        let mut before = before;
        for (key, owned) in [
            (label_key(), mine.managed_by_label),
            (owner_label_key(), mine.owner_label),
            (record_key(), live_record.is_some()),
        ] {
            if !owned && !after.contains_key(&key) {
                before.remove(&key);
            }
        }
        // Pods of this KSA on the host network cannot use Workload Identity.
        let host_network = kube
            .host_network_pods
            .get(&(m.namespace.clone(), m.ksa.clone()));
        for pod in host_network.into_iter().flatten() {
            self.warnings.push(Warning {
                code: WarningCode::HostNetwork,
                message: format!(
                    "pod {}/{pod} runs as this KSA on the host network: it gets the node's identity, not {}",
                    m.namespace, m.gsa_email
                ),
                address: Some(address.clone()),
            });
        }
        let in_sync = current.as_deref() == Some(m.gsa_email.as_str())
            && after.iter().all(|(k, v)| before.get(k) == Some(v))
            && before.get(&record_key()) == after.get(&record_key())
            && !claim;
        if in_sync {
            let mut change = noop(
                resource,
                before,
                after,
                reason(ReasonCode::InSync, "annotated"),
            );
            change.not_managed = not_managed;
            self.push(change);
            return;
        }
        let mut warnings = Vec::new();
        if current.is_some()
            && !fields.annotation_others.is_empty()
            && !self.options.force_conflicts
        {
            warnings.push(Warning {
                code: WarningCode::FieldConflict,
                message: format!(
                    "the annotation is owned by field manager {}: apply stops with a conflict unless --force-conflicts is given",
                    fields.annotation_others.join(", ")
                ),
                address: Some(address.clone()),
            });
        }
        let why = match current {
            _ if claim => reason(
                ReasonCode::Adopt,
                format!(
                    "an older wi (field manager `wi`, no owner) manages this KSA: {owner} claims it and releases the old manager's fields"
                ),
            ),
            None => reason(ReasonCode::Missing, "the KSA is not annotated with its GSA"),
            Some(other) if other != m.gsa_email => reason(
                ReasonCode::Drift,
                format!("the KSA is annotated with {other}"),
            ),
            Some(_) => reason(ReasonCode::Drift, "wi's label is missing"),
        };
        let mut change = update(resource, before, after, why)
            .with_deps(deps)
            .with_warnings(warnings)
            .for_owner(owner);
        change.not_managed = not_managed;
        change.kube = KubeWrite {
            release_managers: if claim {
                vec![Owner::Unnamed.field_manager()]
            } else {
                vec![]
            },
            ..write
        };
        self.push(change);
    }
}

/// The attributes of a live KSA that `wi` may manage.
fn ksa_attributes(sa: &KubeObject) -> Attributes {
    let mut a = Attributes::new();
    if let Some(v) = sa.annotation(GSA_ANNOTATION) {
        a.insert(annotation_key(), json!(v));
    }
    if let Some(v) = sa.annotation(crate::spec::DIRECT_ROLES_ANNOTATION) {
        a.insert(record_key(), json!(v));
    }
    if let Some(v) = sa.label(MANAGED_BY_LABEL) {
        a.insert(label_key(), json!(v));
    }
    if let Some(v) = sa.label(OWNER_LABEL) {
        a.insert(owner_label_key(), json!(v));
    }
    a
}

impl Planner<'_> {
    /// The direct members of a KSA this plan removes: its record goes after them.
    fn removed_members_of(&self, key: &ClusterKey, ns: &str, name: &str) -> Vec<String> {
        let Some(number) = self.live.project_numbers.get(&key.project) else {
            return Vec::new();
        };
        let member = crate::spec::DirectPrincipal::Ksa {
            namespace: ns.to_string(),
            ksa: name.to_string(),
        }
        .member(number, key);
        self.changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .filter(|c| match &c.resource {
                Resource::ProjectIamMember { member: m, .. }
                | Resource::ServiceAccountIamMember { member: m, .. } => m == &member,
                _ => false,
            })
            .map(|c| c.address.clone())
            .collect()
    }

    /// A direct-mode KSA no GSA mapping names: created without a GSA
    /// annotation, or found and given the record of its roles. A GSA
    /// annotation this owner wrote goes (the move from GSA mode: after the
    /// direct members are granted, before the binding goes).
    fn direct_ksa(
        &mut self,
        key: &ClusterKey,
        g: &crate::spec::DirectGrant,
        namespace: &str,
        name: &str,
        kube: &LiveKube,
        deps: Vec<String>,
    ) {
        let resource = Resource::KubernetesServiceAccount {
            cluster: key.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let address = resource.address();
        let owner = &g.owner;
        let live = kube
            .service_accounts
            .get(&(namespace.to_string(), name.to_string()));
        let Some(live) = live else {
            if g.management == KsaManagement::AnnotateExisting {
                self.problem(
                    address,
                    format!("KSA {namespace}/{name} does not exist in cluster {key}, and the mapping only records roles on an existing KSA"),
                    Some("create it first (Helm, kubectl) or set `manage: create`"),
                );
                return;
            }
            let (record, record_deps) = self.ksa_record(key, namespace, name, None, false);
            let mut after = Self::created_labels(owner);
            if let Some(record) = record {
                after.insert(record_key(), json!(record));
            }
            let mut deps = deps;
            deps.extend(record_deps);
            let change = create(
                resource,
                after,
                reason(ReasonCode::Missing, "the KSA does not exist"),
            )
            .with_deps(deps)
            .for_owner(owner);
            self.push(change);
            return;
        };
        let fields = live.ksa_fields();
        if let Some(other) = fields
            .annotation_owners()
            .into_iter()
            .find(|o| *o != owner && !o.is_unnamed())
        {
            self.problem(
                address,
                format!(
                    "KSA {namespace}/{name} in cluster {key} is claimed by {other}; {owner} declares it at {}",
                    g.origin
                ),
                Some("a KSA has one owner: remove the mapping from one of the two specs"),
            );
            return;
        }
        let mine = fields.of(owner);
        let creator = live.created_by();
        let live_record = super::direct::record_of(live)
            .filter(|(o, _)| o.as_ref() == Some(owner))
            .map(|(_, e)| e);
        let (record, record_deps) =
            self.ksa_record(key, namespace, name, live_record.as_ref(), false);
        let mut before = ksa_attributes(live);
        let mut after = Attributes::new();
        if let Some(record) = &record {
            after.insert(record_key(), json!(record));
        }
        let take_label = mine.managed_by_label
            || (creator.as_ref() == Some(owner) && g.management == KsaManagement::Create);
        if take_label {
            after.insert(label_key(), json!("wi"));
            if let Some(n) = owner.label()
                && (mine.owner_label || creator.as_ref() == Some(owner))
            {
                after.insert(owner_label_key(), json!(n));
            }
        }
        // Fields this owner does not own are not this write's.
        for (k, owned) in [
            (label_key(), mine.managed_by_label),
            (owner_label_key(), mine.owner_label),
            (record_key(), live_record.is_some()),
            (annotation_key(), mine.annotation),
        ] {
            if !owned && !after.contains_key(&k) {
                before.remove(&k);
            }
        }
        let current = live.annotation(GSA_ANNOTATION).map(str::to_string);
        let mut warnings = Vec::new();
        if let Some(gsa) = &current {
            let message = if mine.annotation {
                format!(
                    "KSA {namespace}/{name} moves from GSA mode ({gsa}) to direct mode: its direct roles are granted first, then its annotation goes, then its binding on {gsa}; tokens already issued for {gsa} keep working for up to 30 minutes"
                )
            } else {
                format!(
                    "KSA {namespace}/{name} keeps an annotation wi does not own, naming {gsa}: its pods impersonate {gsa} (where a binding lets them) instead of using their direct roles; remove the annotation"
                )
            };
            warnings.push(Warning {
                code: WarningCode::ModeMigration,
                message,
                address: Some(address.clone()),
            });
        }
        let in_sync = before == after;
        if in_sync {
            let change = noop(
                resource,
                before,
                after,
                reason(ReasonCode::InSync, "recorded"),
            )
            .with_warnings(warnings);
            self.push(change);
            return;
        }
        let why = if mine.annotation {
            reason(
                ReasonCode::Drift,
                "the mapping moved to direct mode: the GSA annotation goes",
            )
        } else {
            reason(
                ReasonCode::Missing,
                "the KSA does not record its direct roles",
            )
        };
        let mut deps = deps;
        deps.extend(record_deps);
        let change = update(resource, before, after, why)
            .with_deps(deps)
            .with_warnings(warnings)
            .for_owner(owner);
        self.push(change);
    }
}
