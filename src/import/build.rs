//! From what was read to the spec document: the decisions of `wi import`
//! (pure). Everything it cannot decide becomes a `# wi import: ...` note or
//! a commented-out mapping, never a guess.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ServiceAccount;

use super::emit::{Document, Item, Section, Value};
use super::read::{ImportCluster, ImportState};
use crate::gcp::types::IamPolicy;
use crate::ids::{ClusterKey, gsa_account_id, gsa_project};
use crate::ownership::{
    FIELD_MANAGER, GSA_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL, Owner, WORKLOAD_IDENTITY_USER,
    description_declared_in, user_description,
};

/// What the user asked of `wi import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--cluster`: names, `project/name` or `project/location/name`; empty: all.
    pub clusters: Vec<String>,
    /// `--owner`.
    pub owner: Option<String>,
    /// `--adopt`: `adopt: true` on the accounts `wi` does not own yet.
    pub adopt: bool,
    /// The header's "when" (RFC 3339), given by the caller.
    pub when: String,
}

/// How many of each thing the document declares (for the CLI's summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub clusters: usize,
    pub service_accounts: usize,
    pub mappings: usize,
    /// Notes and commented-out mappings: what a person must decide.
    pub undecided: usize,
}

fn selected(opts: &ImportOptions, key: &ClusterKey) -> bool {
    opts.clusters.is_empty()
        || opts.clusters.iter().any(|c| {
            *c == key.name || *c == format!("{}/{}", key.project, key.name) || *c == key.to_string()
        })
}

fn is_autopilot(c: &ImportCluster) -> bool {
    c.gke
        .rest
        .get("autopilot")
        .and_then(|a| a.get("enabled"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The KSA member `serviceAccount:P.svc.id.goog[NS/KSA]` taken apart.
fn parse_ksa_member(member: &str) -> Option<(String, String, String)> {
    let rest = member.strip_prefix("serviceAccount:")?;
    let (pool, tail) = rest.split_once('[')?;
    let project = pool.strip_suffix(".svc.id.goog")?;
    let (ns, ksa) = tail.strip_suffix(']')?.split_once('/')?;
    Some((project.to_owned(), ns.to_owned(), ksa.to_owned()))
}

/// A direct member: a KSA principal or a principal set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Principal {
    Ksa {
        pool_project: String,
        namespace: String,
        ksa: String,
    },
    Namespace {
        pool_project: String,
        namespace: String,
    },
    Cluster {
        pool_project: String,
        key: ClusterKey,
    },
}

fn parse_principal(member: &str) -> Option<Principal> {
    let (set, rest) = if let Some(r) = member.strip_prefix("principal://iam.googleapis.com/") {
        (false, r)
    } else {
        (
            true,
            member.strip_prefix("principalSet://iam.googleapis.com/")?,
        )
    };
    let (_, rest) = rest.split_once("/locations/global/workloadIdentityPools/")?;
    let (pool, rest) = rest.split_once('/')?;
    let pool_project = pool.strip_suffix(".svc.id.goog")?.to_owned();
    if !set {
        let (ns, ksa) = rest.strip_prefix("subject/ns/")?.split_once("/sa/")?;
        return Some(Principal::Ksa {
            pool_project,
            namespace: ns.to_owned(),
            ksa: ksa.to_owned(),
        });
    }
    if let Some(ns) = rest.strip_prefix("namespace/") {
        return Some(Principal::Namespace {
            pool_project,
            namespace: ns.to_owned(),
        });
    }
    let path = rest.strip_prefix("kubernetes.cluster/https://container.googleapis.com/v1/")?;
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "locations", l, "clusters", c] => Some(Principal::Cluster {
            pool_project,
            key: ClusterKey {
                project: (*p).to_owned(),
                location: (*l).to_owned(),
                name: (*c).to_owned(),
            },
        }),
        _ => None,
    }
}

/// A role of a direct mapping, on its pool's project, another project or an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum DirectRole {
    Pool(String),
    Project { role: String, project: String },
    Account { role: String, email: String },
}

/// A KSA of a pool: (pool project, namespace, name).
type KsaId = (String, String, String);

/// One KSA (namespace/name of one pool) and what import found for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KsaEntry {
    namespace: String,
    ksa: String,
    clusters: BTreeSet<ClusterKey>,
    gsa: Option<String>,
    roles: BTreeSet<DirectRole>,
    annotate: bool,
    notes: Vec<String>,
}

fn unconditional(policy: &IamPolicy) -> impl Iterator<Item = (&str, &str)> {
    policy
        .bindings
        .iter()
        .filter(|b| b.condition.is_none())
        .flat_map(|b| b.members.iter().map(move |m| (b.role.as_str(), m.as_str())))
}

fn annotation(sa: &ServiceAccount) -> Option<&str> {
    sa.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GSA_ANNOTATION))
        .map(String::as_str)
}

fn wi_created(sa: &ServiceAccount) -> bool {
    sa.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == FIELD_MANAGER)
}

/// The shortest unambiguous way a mapping names a cluster.
fn cluster_refs(clusters: &[&ImportCluster]) -> BTreeMap<ClusterKey, String> {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_project_name: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for c in clusters {
        *by_name.entry(&c.key.name).or_default() += 1;
        *by_project_name
            .entry((&c.key.project, &c.key.name))
            .or_default() += 1;
    }
    clusters
        .iter()
        .map(|c| {
            let k = &c.key;
            let r = if by_name[k.name.as_str()] == 1 {
                k.name.clone()
            } else if by_project_name[&(k.project.as_str(), k.name.as_str())] == 1 {
                format!("{}/{}", k.project, k.name)
            } else {
                k.to_string()
            };
            (k.clone(), r)
        })
        .collect()
}

/// Builds the spec document of what was read.
pub fn document(state: &ImportState, opts: &ImportOptions) -> (Document, ImportCounts) {
    let single_project = (state.projects.len() == 1).then(|| state.projects[0].clone());
    let mut in_scope: Vec<&ImportCluster> = state
        .clusters
        .iter()
        .filter(|c| selected(opts, &c.key))
        .collect();
    in_scope.sort_by(|a, b| display_order(&a.key).cmp(&display_order(&b.key)));
    let refs = cluster_refs(&in_scope);
    let mut counts = ImportCounts {
        clusters: in_scope.len(),
        ..ImportCounts::default()
    };
    let pool_of = |c: &ImportCluster| -> Option<String> {
        c.gke
            .workload_pool()
            .and_then(|p| p.strip_suffix(".svc.id.goog"))
            .map(str::to_owned)
            .or_else(|| is_autopilot(c).then(|| c.key.project.clone()))
    };

    // KSA entries keyed by (pool project, namespace, ksa).
    let mut entries: BTreeMap<(String, String, String), KsaEntry> = BTreeMap::new();
    let mut notes_out: Vec<Item> = Vec::new();

    // Where each (pool, ns, ksa) exists, in scope and outside it.
    let mut present: BTreeMap<KsaId, Vec<(&ImportCluster, &ServiceAccount)>> = BTreeMap::new();
    let mut present_outside: BTreeMap<(String, String, String), Vec<&ImportCluster>> =
        BTreeMap::new();
    for c in &state.clusters {
        let Some(pool) = pool_of(c) else { continue };
        for ((ns, name), sa) in c.service_accounts.iter().flatten() {
            let k = (pool.clone(), ns.clone(), name.clone());
            if selected(opts, &c.key) {
                present.entry(k).or_default().push((c, sa));
            } else {
                present_outside.entry(k).or_default().push(c);
            }
        }
    }

    // Workload Identity bindings on the accounts.
    let mut bound: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    let mut named_accounts: BTreeSet<String> = BTreeSet::new();
    for (email, policy) in &state.account_policies {
        for (role, member) in unconditional(policy) {
            if role != WORKLOAD_IDENTITY_USER {
                continue;
            }
            if let Some((pool, ns, ksa)) = parse_ksa_member(member) {
                bound.insert((pool, ns, ksa, email.clone()));
                named_accounts.insert(email.clone());
            }
        }
    }
    for (pool, ns, ksa, email) in &bound {
        let k = (pool.clone(), ns.clone(), ksa.clone());
        let here = present.get(&k).map(Vec::as_slice).unwrap_or_default();
        let annotated: Vec<&(&ImportCluster, &ServiceAccount)> = here
            .iter()
            .filter(|(_, sa)| annotation(sa) == Some(email.as_str()))
            .collect();
        if annotated.is_empty() {
            let elsewhere: Vec<String> = present_outside
                .get(&k)
                .into_iter()
                .flatten()
                .map(|c| c.key.to_string())
                .collect();
            let why = if here.is_empty() && !elsewhere.is_empty() {
                format!(
                    "the KSA {ns}/{ksa} exists only outside --cluster ({})",
                    elsewhere.join(", ")
                )
            } else if here.is_empty() {
                format!("no cluster of the pool {pool}.svc.id.goog has the KSA {ns}/{ksa}")
            } else {
                format!(
                    "the KSA {ns}/{ksa} exists but is not annotated with {email}: the binding gives nothing yet"
                )
            };
            notes_out.push(Item {
                comments: vec![format!("wi import: {why}; uncomment to keep the binding")],
                fields: vec![
                    (
                        "serviceAccount".into(),
                        Value::Str(account_ref(email, &single_project)),
                    ),
                    (
                        "clusters".into(),
                        Value::strs(pool_clusters(&in_scope, pool, &refs, &pool_of)),
                    ),
                    ("namespace".into(), Value::Str(ns.clone())),
                    ("ksa".into(), Value::Str(ksa.clone())),
                    ("manage".into(), Value::Str("annotate".into())),
                ],
                commented_out: true,
            });
            continue;
        }
        let e = entries.entry(k.clone()).or_insert_with(|| KsaEntry {
            namespace: ns.clone(),
            ksa: ksa.clone(),
            clusters: BTreeSet::new(),
            gsa: None,
            roles: BTreeSet::new(),
            annotate: false,
            notes: Vec::new(),
        });
        if e.gsa.is_some() {
            continue;
        }
        e.gsa = Some(email.clone());
        for (c, sa) in &annotated {
            e.clusters.insert(c.key.clone());
            e.annotate |= !wi_created(sa);
        }
        for (c, sa) in here {
            if annotation(sa) != Some(email.as_str()) {
                e.notes.push(format!(
                    "wi import: {ns}/{ksa} in {} is not annotated with {email}, so that cluster is left out",
                    refs[&c.key]
                ));
            }
        }
    }

    // Conditional bindings: a spec grants unconditionally, so they are noted.
    for (email, policy) in &state.account_policies {
        for b in policy.bindings.iter().filter(|b| b.condition.is_some()) {
            for (pool, ns, ksa) in b.members.iter().filter_map(|m| parse_ksa_member(m)) {
                if b.role != WORKLOAD_IDENTITY_USER {
                    continue;
                }
                let title = b
                    .condition
                    .as_ref()
                    .and_then(|c| c.get("title"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("untitled");
                notes_out.push(Item {
                    comments: vec![format!(
                        "wi import: {email} binds {ns}/{ksa} of {pool}.svc.id.goog only under the condition \"{title}\"; wi grants unconditionally, so it is left out (wi never removes it)"
                    )],
                    fields: vec![
                        ("serviceAccount".into(), Value::Str(account_ref(email, &single_project))),
                        ("clusters".into(), Value::strs(pool_clusters(&in_scope, &pool, &refs, &pool_of))),
                        ("namespace".into(), Value::Str(ns)),
                        ("ksa".into(), Value::Str(ksa)),
                        ("manage".into(), Value::Str("annotate".into())),
                    ],
                    commented_out: true,
                });
            }
        }
    }

    // Annotations without a binding.
    for ((pool, ns, ksa), here) in &present {
        for (c, sa) in here {
            let Some(email) = annotation(sa) else {
                continue;
            };
            if bound.contains(&(pool.clone(), ns.clone(), ksa.clone(), email.to_owned())) {
                continue;
            }
            let readable = state.account_policies.contains_key(email);
            let why = if readable {
                format!(
                    "{ns}/{ksa} in {} is annotated with {email}, which does not bind it (roles/iam.workloadIdentityUser)",
                    refs[&c.key]
                )
            } else {
                format!(
                    "{ns}/{ksa} in {} is annotated with {email}, an account outside the imported projects whose policy was not read",
                    refs[&c.key]
                )
            };
            notes_out.push(Item {
                comments: vec![format!("wi import: {why}; uncomment to make the binding")],
                fields: vec![
                    (
                        "serviceAccount".into(),
                        Value::Str(account_ref(email, &single_project)),
                    ),
                    ("clusters".into(), Value::strs([refs[&c.key].clone()])),
                    ("namespace".into(), Value::Str(ns.clone())),
                    ("ksa".into(), Value::Str(ksa.clone())),
                    ("manage".into(), Value::Str("annotate".into())),
                ],
                commented_out: true,
            });
        }
    }

    // Direct grants: principal members of the project and account policies.
    let mut set_roles: BTreeMap<Principal, BTreeSet<DirectRole>> = BTreeMap::new();
    let mut direct = |principal: Principal, role: DirectRole| {
        set_roles.entry(principal).or_default().insert(role);
    };
    for (project, policy) in &state.project_policies {
        for (role, member) in unconditional(policy) {
            if let Some(p) = parse_principal(member) {
                let pool = match &p {
                    Principal::Ksa { pool_project, .. }
                    | Principal::Namespace { pool_project, .. }
                    | Principal::Cluster { pool_project, .. } => pool_project.clone(),
                };
                let r = if pool == *project {
                    DirectRole::Pool(role.to_owned())
                } else {
                    DirectRole::Project {
                        role: role.to_owned(),
                        project: project.clone(),
                    }
                };
                direct(p, r);
            }
        }
    }
    for (email, policy) in &state.account_policies {
        for (role, member) in unconditional(policy) {
            if let Some(p) = parse_principal(member) {
                direct(
                    p,
                    DirectRole::Account {
                        role: role.to_owned(),
                        email: email.clone(),
                    },
                );
            }
        }
    }
    let mut principal_sets: Vec<Item> = Vec::new();
    for (p, roles) in set_roles {
        match p {
            Principal::Ksa {
                pool_project,
                namespace,
                ksa,
            } => {
                let k = (pool_project.clone(), namespace.clone(), ksa.clone());
                let here = present.get(&k).map(Vec::as_slice).unwrap_or_default();
                if here.is_empty() {
                    notes_out.push(Item {
                        comments: vec![format!(
                            "wi import: no cluster of the pool {pool_project}.svc.id.goog has the KSA {namespace}/{ksa} that these roles are granted to; uncomment to keep them"
                        )],
                        fields: vec![
                            ("clusters".into(), Value::strs(pool_clusters(&in_scope, &pool_project, &refs, &pool_of))),
                            ("namespace".into(), Value::Str(namespace)),
                            ("ksa".into(), Value::Str(ksa)),
                            ("manage".into(), Value::Str("annotate".into())),
                            ("roles".into(), roles_value(&roles)),
                        ],
                        commented_out: true,
                    });
                    continue;
                }
                let e = entries.entry(k).or_insert_with(|| KsaEntry {
                    namespace: namespace.clone(),
                    ksa: ksa.clone(),
                    clusters: here.iter().map(|(c, _)| c.key.clone()).collect(),
                    gsa: None,
                    roles: BTreeSet::new(),
                    annotate: here.iter().any(|(_, sa)| !wi_created(sa)),
                    notes: Vec::new(),
                });
                e.roles.extend(roles);
            }
            Principal::Namespace {
                pool_project,
                namespace,
            } => {
                let clusters: Vec<String> = in_scope
                    .iter()
                    .filter(|c| pool_of(c).as_deref() == Some(pool_project.as_str()))
                    .filter(|c| {
                        c.namespaces
                            .as_ref()
                            .is_some_and(|n| n.contains_key(&namespace))
                    })
                    .map(|c| refs[&c.key].clone())
                    .collect();
                let mut item = Item {
                    comments: vec![format!(
                        "Every KSA of the namespace {namespace}, in every cluster of the pool {pool_project}.svc.id.goog."
                    )],
                    fields: vec![
                        ("principalSet".into(), Value::Str("namespace".into())),
                        ("clusters".into(), Value::strs(clusters.clone())),
                        ("namespace".into(), Value::Str(namespace.clone())),
                        ("roles".into(), roles_value(&roles)),
                    ],
                    commented_out: false,
                };
                if clusters.is_empty() {
                    item.comments = vec![format!(
                        "wi import: no imported cluster of the pool {pool_project}.svc.id.goog has the namespace {namespace}; name one to keep these roles"
                    )];
                    item.commented_out = true;
                }
                principal_sets.push(item);
            }
            Principal::Cluster { key, .. } => {
                let found = refs.get(&key).cloned();
                principal_sets.push(Item {
                    comments: match &found {
                        Some(_) => vec![format!("Every KSA of the cluster {key}.")],
                        None => vec![format!(
                            "wi import: the cluster {key} was not imported; import it to keep these roles"
                        )],
                    },
                    fields: vec![
                        ("principalSet".into(), Value::Str("cluster".into())),
                        ("clusters".into(), Value::strs([found.clone().unwrap_or_else(|| key.to_string())])),
                        ("roles".into(), roles_value(&roles)),
                    ],
                    commented_out: found.is_none(),
                });
            }
        }
    }

    // KSAs also present in clusters outside --cluster.
    for ((pool, ns, ksa), e) in entries.iter_mut() {
        for c in present_outside
            .get(&(pool.clone(), ns.clone(), ksa.clone()))
            .into_iter()
            .flatten()
        {
            e.notes.push(format!(
                "wi import: {ns}/{ksa} also exists in {} (outside --cluster): its pods get the same identity",
                c.key
            ));
        }
    }

    // Group: one mapping per (account, namespace, clusters, manage) with its KSAs.
    type GroupKey = (String, String, Vec<ClusterKey>, bool);
    let mut grouped: BTreeMap<GroupKey, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut singles: Vec<KsaEntry> = Vec::new();
    for e in entries.into_values() {
        match (&e.gsa, e.roles.is_empty()) {
            (Some(gsa), true) => {
                let g = grouped
                    .entry((
                        gsa.clone(),
                        e.namespace.clone(),
                        e.clusters.iter().cloned().collect(),
                        e.annotate,
                    ))
                    .or_default();
                g.0.push(e.ksa.clone());
                g.1.extend(e.notes);
            }
            _ => singles.push(e),
        }
    }
    struct Mapping {
        gsa: Option<String>,
        namespace: String,
        ksas: Vec<String>,
        clusters: Vec<ClusterKey>,
        annotate: bool,
        roles: BTreeSet<DirectRole>,
        notes: Vec<String>,
    }
    let mut mappings: Vec<Mapping> = grouped
        .into_iter()
        .map(
            |((gsa, namespace, clusters, annotate), (ksas, notes))| Mapping {
                gsa: Some(gsa),
                namespace,
                ksas,
                clusters,
                annotate,
                roles: BTreeSet::new(),
                notes,
            },
        )
        .chain(singles.into_iter().map(|e| Mapping {
            gsa: e.gsa,
            namespace: e.namespace,
            ksas: vec![e.ksa],
            clusters: e.clusters.into_iter().collect(),
            annotate: e.annotate,
            roles: e.roles,
            notes: e.notes,
        }))
        .collect();
    mappings.sort_by(|a, b| (&a.namespace, &a.ksas, &a.gsa).cmp(&(&b.namespace, &b.ksas, &b.gsa)));

    // Cluster groups: a set of two or more clusters that several mappings name.
    let mut uses: BTreeMap<Vec<ClusterKey>, usize> = BTreeMap::new();
    for m in &mappings {
        if m.clusters.len() >= 2 {
            *uses.entry(m.clusters.clone()).or_default() += 1;
        }
    }
    let mut groups: BTreeMap<Vec<ClusterKey>, String> = BTreeMap::new();
    let taken: BTreeSet<&str> = in_scope.iter().map(|c| c.key.name.as_str()).collect();
    for (set, n) in uses {
        if n >= 2 {
            let mut name = if set.len() == in_scope.len() {
                "all".to_string()
            } else {
                format!("group-{}", groups.len() + 1)
            };
            if taken.contains(name.as_str()) {
                name = format!("wi-{name}");
            }
            groups.insert(set, name);
        }
    }
    // Every cluster of the scope, named once: `*` is never written, so a
    // cluster added later does not silently join every mapping.
    let clusters_value = |set: &[ClusterKey]| -> Value {
        match groups.get(set) {
            Some(g) => Value::strs([g.clone()]),
            None => {
                let mut keys: Vec<&ClusterKey> = set.iter().collect();
                keys.sort_by(|a, b| display_order(a).cmp(&display_order(b)));
                Value::strs(keys.into_iter().map(|k| refs[k].clone()))
            }
        }
    };

    // Accounts: those bound to a KSA or named by a mapping, in the projects read.
    for m in &mappings {
        if let Some(g) = &m.gsa {
            named_accounts.insert(g.clone());
        }
    }
    // The owner: --owner, else the one named owner the accounts' markers record.
    // (Or, with no account, the owner label of the KSAs wi created.)
    let mut marked: BTreeSet<String> = named_accounts
        .iter()
        .filter_map(|e| state.accounts.get(e))
        .filter_map(
            |sa| match Owner::from_description(sa.description.as_deref()) {
                Some(Owner::Named(n)) => Some(n),
                _ => None,
            },
        )
        .collect();
    if named_accounts.is_empty() {
        marked.extend(
            present
                .values()
                .flatten()
                .filter_map(|(_, sa)| sa.metadata.labels.as_ref()?.get(OWNER_LABEL).cloned()),
        );
    }
    let owner: Option<String> = opts.owner.clone().or_else(|| {
        (marked.len() == 1)
            .then(|| marked.iter().next().cloned())
            .flatten()
    });
    let spec_owner = owner.clone().map_or(Owner::Unnamed, Owner::Named);
    let mut account_items = Vec::new();
    for email in &named_accounts {
        let Some(sa) = state.accounts.get(email) else {
            continue;
        };
        let project = gsa_project(email).unwrap_or(&sa.project_id).to_owned();
        let mut fields = vec![("name".into(), Value::Str(gsa_account_id(email).to_owned()))];
        if single_project.as_deref() != Some(project.as_str()) {
            fields.push(("project".into(), Value::Str(project.clone())));
        }
        if let Some(d) = sa.display_name.as_ref().filter(|d| !d.is_empty()) {
            fields.push(("displayName".into(), Value::Str(d.clone())));
        }
        if let Some(d) = user_description(sa.description.as_deref()) {
            fields.push(("description".into(), Value::Str(d)));
        }
        let member = format!("serviceAccount:{email}");
        let roles: BTreeSet<&str> = state
            .project_policies
            .get(&project)
            .map(|p| {
                unconditional(p)
                    .filter(|(_, m)| *m == member)
                    .map(|(r, _)| r)
                    .collect()
            })
            .unwrap_or_default();
        if !roles.is_empty() {
            fields.push(("roles".into(), Value::strs(roles)));
        }
        let marker = Owner::from_description(sa.description.as_deref());
        if opts.adopt && marker.is_none() {
            fields.push(("adopt".into(), Value::Bool(true)));
        }
        let mut comments = Vec::new();
        if let Some(file) = description_declared_in(sa.description.as_deref()) {
            comments.push(format!(
                "wi import: wi's record on the account names the spec file {file}: save this spec under that name, or the first plan updates the record"
            ));
        }
        match &marker {
            Some(m) if *m != spec_owner && !(m.is_unnamed() && owner.is_some()) => {
                comments.push(format!(
                    "wi import: wi manages the account for {m}, not for this spec's owner: it leaves the account as it is and only adds bindings"
                ));
            }
            _ => {}
        }
        if sa.disabled {
            comments.push(
                "wi import: the account is disabled; a first apply of an adopted account enables it"
                    .to_string(),
            );
        }
        account_items.push(Item {
            comments,
            fields,
            commented_out: false,
        });
    }
    counts.service_accounts = account_items.len();

    // Clusters.
    let mut cluster_items = Vec::new();
    for c in &in_scope {
        let mut fields = vec![("name".into(), Value::Str(c.key.name.clone()))];
        if single_project.as_deref() != Some(c.key.project.as_str()) {
            fields.push(("project".into(), Value::Str(c.key.project.clone())));
        }
        fields.push(("location".into(), Value::Str(c.key.location.clone())));
        let mut comments = Vec::new();
        if is_autopilot(c) {
            fields.push(("autopilot".into(), Value::Bool(true)));
        } else if c.gke.workload_pool().is_none() {
            fields.push(("workloadIdentity".into(), Value::Bool(false)));
        } else {
            let gke: Vec<&str> = c
                .gke
                .node_pools
                .iter()
                .filter(|p| p.metadata_mode() == Some("GKE_METADATA"))
                .map(|p| p.name.as_str())
                .collect();
            if gke.is_empty() && !c.gke.node_pools.is_empty() {
                fields.push(("metadataServer".into(), Value::Str("none".into())));
            } else if gke.len() < c.gke.node_pools.len() {
                fields.push(("metadataServer".into(), Value::strs(gke)));
            }
        }
        let in_groups: Vec<String> = groups
            .iter()
            .filter(|(set, _)| set.contains(&c.key))
            .map(|(_, g)| g.clone())
            .collect();
        if !in_groups.is_empty() {
            fields.push(("groups".into(), Value::strs(in_groups)));
        }
        if let Some(e) = &c.kube_error {
            comments.push(format!(
                "wi import: its Kubernetes API could not be read ({e}): its KSAs are not imported"
            ));
        }
        cluster_items.push(Item {
            comments,
            fields,
            commented_out: false,
        });
    }

    // Mappings.
    let mut mapping_items: Vec<Item> = Vec::new();
    for m in &mappings {
        let mut fields = Vec::new();
        if let Some(g) = &m.gsa {
            fields.push((
                "serviceAccount".into(),
                Value::Str(account_ref(g, &single_project)),
            ));
        }
        fields.push(("clusters".into(), clusters_value(&m.clusters)));
        fields.push(("namespace".into(), Value::Str(m.namespace.clone())));
        match m.ksas.as_slice() {
            [one] => fields.push(("ksa".into(), Value::Str(one.clone()))),
            many => fields.push(("ksas".into(), Value::strs(many.iter().cloned()))),
        }
        if !m.roles.is_empty() {
            fields.push(("roles".into(), roles_value(&m.roles)));
        }
        if m.annotate {
            fields.push(("manage".into(), Value::Str("annotate".into())));
        }
        mapping_items.push(Item {
            comments: m.notes.clone(),
            fields,
            commented_out: false,
        });
    }
    counts.mappings =
        mapping_items.len() + principal_sets.iter().filter(|i| !i.commented_out).count();
    mapping_items.extend(principal_sets);
    notes_out.sort_by(|a, b| a.comments.cmp(&b.comments));
    mapping_items.extend(notes_out);
    counts.undecided = mapping_items
        .iter()
        .chain(&cluster_items)
        .chain(&account_items)
        .map(|i| {
            if i.commented_out {
                1
            } else {
                i.comments
                    .iter()
                    .filter(|c| c.starts_with("wi import:"))
                    .count()
            }
        })
        .sum();

    let mut top = vec![("version".to_string(), Value::Int(1))];
    if let Some(o) = &owner {
        top.push(("owner".into(), Value::Str(o.clone())));
    }
    if let Some(p) = &single_project {
        top.push((
            "defaults".into(),
            Value::Map(vec![("project".into(), Value::Str(p.clone()))]),
        ));
    }
    let mut header = vec![format!(
        "Written by `wi import` at {} from the project{} {}.",
        opts.when,
        if state.projects.len() == 1 { "" } else { "s" },
        state.projects.join(", ")
    )];
    if !opts.clusters.is_empty() {
        header.push(format!(
            "Only the clusters given with --cluster: {}.",
            opts.clusters.join(", ")
        ));
    }
    header.push(format!(
        "{} cluster{}, {} service account{}, {} mapping{}.",
        counts.clusters,
        plural(counts.clusters),
        counts.service_accounts,
        plural(counts.service_accounts),
        counts.mappings,
        plural(counts.mappings),
    ));
    header.push(match counts.undecided {
        0 => "Nothing was left undecided.".to_string(),
        n => format!(
            "{n} note{} `# wi import:` mark{} what it could not decide: review them.",
            plural(n),
            if n == 1 { "s" } else { "" }
        ),
    });
    header.push(String::new());
    header
        .push("  wi validate -f FILE && wi plan -f FILE --detailed-exitcode   # No changes".into());
    let doc = Document {
        header,
        top,
        sections: vec![
            Section {
                key: "clusters".into(),
                items: cluster_items,
            },
            Section {
                key: "serviceAccounts".into(),
                items: account_items,
            },
            Section {
                key: "mappings".into(),
                items: mapping_items,
            },
        ],
    };
    (doc, counts)
}

/// Clusters as a person lists them: by project, then name.
fn display_order(k: &ClusterKey) -> (&str, &str, &str) {
    (&k.project, &k.name, &k.location)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A declared account's name when it is in the single project (the spec
/// declares it), the full email otherwise.
fn account_ref(email: &str, single_project: &Option<String>) -> String {
    match (gsa_project(email), single_project) {
        (Some(p), Some(s)) if p == s => gsa_account_id(email).to_owned(),
        _ => email.to_owned(),
    }
}

fn pool_clusters(
    in_scope: &[&ImportCluster],
    pool: &str,
    refs: &BTreeMap<ClusterKey, String>,
    pool_of: &dyn Fn(&ImportCluster) -> Option<String>,
) -> Vec<String> {
    in_scope
        .iter()
        .filter(|c| pool_of(c).as_deref() == Some(pool))
        .map(|c| refs[&c.key].clone())
        .collect()
}

fn roles_value(roles: &BTreeSet<DirectRole>) -> Value {
    Value::Seq(
        roles
            .iter()
            .map(|r| match r {
                DirectRole::Pool(role) => Value::Str(role.clone()),
                DirectRole::Project { role, project } => Value::Map(vec![
                    ("role".into(), Value::Str(role.clone())),
                    ("project".into(), Value::Str(project.clone())),
                ]),
                DirectRole::Account { role, email } => Value::Map(vec![
                    ("role".into(), Value::Str(role.clone())),
                    // The full email: the account may not be declared here.
                    ("serviceAccount".into(), Value::Str(email.clone())),
                ]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::types::GkeCluster;

    #[test]
    fn members_are_taken_apart() {
        assert_eq!(
            parse_ksa_member("serviceAccount:p1.svc.id.goog[ns/ksa]"),
            Some(("p1".into(), "ns".into(), "ksa".into()))
        );
        assert_eq!(
            parse_ksa_member("serviceAccount:a@p.iam.gserviceaccount.com"),
            None
        );
        let pool =
            "iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p1.svc.id.goog";
        assert_eq!(
            parse_principal(&format!("principal://{pool}/subject/ns/ns1/sa/k1")),
            Some(Principal::Ksa {
                pool_project: "p1".into(),
                namespace: "ns1".into(),
                ksa: "k1".into()
            })
        );
        assert_eq!(
            parse_principal(&format!("principalSet://{pool}/namespace/batch")),
            Some(Principal::Namespace {
                pool_project: "p1".into(),
                namespace: "batch".into()
            })
        );
        assert_eq!(
            parse_principal(&format!(
                "principalSet://{pool}/kubernetes.cluster/https://container.googleapis.com/v1/projects/p1/locations/us-central1-a/clusters/alpha"
            )),
            Some(Principal::Cluster {
                pool_project: "p1".into(),
                key: ClusterKey {
                    project: "p1".into(),
                    location: "us-central1-a".into(),
                    name: "alpha".into()
                }
            })
        );
        assert_eq!(parse_principal("user:a@example.com"), None);
    }

    fn cluster(name: &str, ksas: &[(&str, &str, &str)]) -> ImportCluster {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let gke = GkeCluster {
            name: name.into(),
            location: "us-central1-a".into(),
            workload_identity_config: Some(crate::gcp::types::WorkloadIdentityConfig {
                workload_pool: "p1-proj.svc.id.goog".into(),
            }),
            ..GkeCluster::default()
        };
        let service_accounts = ksas
            .iter()
            .map(|(ns, k, gsa)| {
                let sa = ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some((*k).into()),
                        namespace: Some((*ns).into()),
                        annotations: Some(
                            [(GSA_ANNOTATION.to_string(), (*gsa).to_string())].into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    ..ServiceAccount::default()
                };
                (((*ns).to_string(), (*k).to_string()), sa)
            })
            .collect();
        ImportCluster {
            key: ClusterKey {
                project: "p1-proj".into(),
                location: "us-central1-a".into(),
                name: name.into(),
            },
            gke,
            namespaces: Some(BTreeMap::new()),
            service_accounts: Some(service_accounts),
            kube_error: None,
        }
    }

    /// A set of clusters several mappings name becomes a group; a set named
    /// once stays a list; KSAs of one namespace and account share a mapping.
    #[test]
    fn recurring_cluster_sets_become_groups() {
        let g = "app@p1-proj.iam.gserviceaccount.com";
        let both = [("web", "front", g), ("web", "back", g), ("jobs", "cron", g)];
        let state = ImportState {
            projects: vec!["p1-proj".into()],
            clusters: vec![
                cluster("east", &both),
                cluster("west", &both),
                cluster("solo", &[("ops", "tool", g)]),
            ],
            accounts: [(
                g.to_string(),
                crate::gcp::types::GoogleServiceAccount {
                    email: g.into(),
                    project_id: "p1-proj".into(),
                    ..Default::default()
                },
            )]
            .into(),
            account_policies: [(
                g.to_string(),
                IamPolicy {
                    bindings: vec![crate::gcp::types::Binding {
                        role: WORKLOAD_IDENTITY_USER.into(),
                        members: ["web/front", "web/back", "jobs/cron", "ops/tool"]
                            .iter()
                            .map(|k| format!("serviceAccount:p1-proj.svc.id.goog[{k}]"))
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )]
            .into(),
            project_policies: BTreeMap::new(),
        };
        let (doc, counts) = document(&state, &ImportOptions::default());
        assert_eq!(counts.mappings, 3);
        let text = super::super::emit::yaml(&doc);
        let clusters = text.split("serviceAccounts:").next().unwrap();
        assert!(
            clusters.contains("  - name: east\n    location: us-central1-a\n    groups: [group-1]"),
            "{text}"
        );
        assert!(
            !clusters.contains("name: solo\n    location: us-central1-a\n    groups"),
            "{text}"
        );
        assert!(
            text.contains("clusters: [group-1]\n    namespace: jobs\n    ksa: cron"),
            "{text}"
        );
        assert!(
            text.contains("clusters: [group-1]\n    namespace: web\n    ksas: [back, front]"),
            "{text}"
        );
        assert!(
            text.contains("clusters: [solo]\n    namespace: ops"),
            "{text}"
        );
    }
}
