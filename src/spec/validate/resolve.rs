//! Resolving references: a mapping's `clusters` entries (names, `project/name`,
//! groups, `*`) to declared clusters, and `serviceAccount` to a declared or
//! external Google service account.

use std::collections::BTreeMap;

use super::HashMap;

use super::{AccountInfo, ClusterInfo, Ctx, GsaRef, closest};
use crate::spec::model::{ClusterKey, gsa_email};
use crate::spec::names;
use crate::spec::raw::Sp;

pub(super) struct Resolver<'r, 'a> {
    pub(super) clusters: &'r [ClusterInfo<'a>],
    groups: &'r BTreeMap<String, Vec<usize>>,
    pub(super) accounts: &'r [AccountInfo<'a>],
    /// Cluster name → indices (one per project using the name).
    clusters_by_name: HashMap<&'r str, Vec<usize>>,
    /// Account id → indices (one per project using the id).
    accounts_by_name: HashMap<&'r str, Vec<usize>>,
    /// Email → index of the declared account with that email, so an email
    /// reference is one lookup, not a scan of every account.
    accounts_by_email: HashMap<String, usize>,
}

impl<'r, 'a> Resolver<'r, 'a> {
    pub(super) fn new(
        clusters: &'r [ClusterInfo<'a>],
        groups: &'r BTreeMap<String, Vec<usize>>,
        accounts: &'r [AccountInfo<'a>],
    ) -> Self {
        let mut clusters_by_name: HashMap<&str, Vec<usize>> = HashMap::default();
        for (i, c) in clusters.iter().enumerate() {
            clusters_by_name
                .entry(c.key.name.as_str())
                .or_default()
                .push(i);
        }
        let mut accounts_by_name: HashMap<&str, Vec<usize>> = HashMap::default();
        for (i, a) in accounts.iter().enumerate() {
            accounts_by_name
                .entry(a.name.value.as_str())
                .or_default()
                .push(i);
        }
        let mut accounts_by_email: HashMap<String, usize> = HashMap::default();
        for (i, a) in accounts.iter().enumerate() {
            accounts_by_email
                .entry(gsa_email(&a.project, &a.name.value))
                .or_insert(i);
        }
        Resolver {
            clusters,
            groups,
            accounts,
            clusters_by_name,
            accounts_by_name,
            accounts_by_email,
        }
    }

    /// Resolves one entry of a mapping's `clusters` to cluster indices.
    pub(super) fn clusters(&self, cx: &mut Ctx, r: &Sp<String>) -> Option<Vec<usize>> {
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
                    Some(c) => {
                        // Name the file when the cluster (or a group member) lives elsewhere.
                        let file = self
                            .clusters
                            .iter()
                            .find(|i| i.key.name == c)
                            .or_else(|| {
                                self.groups
                                    .get(c)
                                    .and_then(|g| g.first())
                                    .map(|&i| &self.clusters[i])
                            })
                            .map(|i| i.file)
                            .filter(|&f| f != cx.cur);
                        match file {
                            Some(f) => p.help(format!(
                                "did you mean `{c}` (declared in {})?",
                                cx.file_name(f)
                            )),
                            None => p.help(format!("did you mean `{c}`?")),
                        }
                    }
                    None => p.help(
                        "name a cluster declared under `clusters` in any file of the set \
                         (`name`, `project/name` or `project/location/name`), a group, or `*` \
                         for all clusters; pass the file that declares it with another `-f`",
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
    pub(super) fn account(&self, cx: &mut Ctx, r: &Sp<String>) -> Option<GsaRef> {
        let v = r.value.as_str();
        if v.contains('@') {
            return match names::gsa_email_project(v) {
                Ok(project) => Some(GsaRef {
                    email: v.to_owned(),
                    declared: self
                        .accounts_by_email
                        .get(v)
                        .copied()
                        .filter(|&i| self.accounts[i].project == project),
                    project,
                }),
                Err(rule) => {
                    let p = cx
                        .new_problem(
                            "wi::spec::invalid_gsa_email",
                            format!("`{v}` is not a Google service account email"),
                        )
                        .label(r.span(), "not a service account email")
                        .help(rule);
                    cx.push(p);
                    None
                }
            };
        }
        let indices: Vec<usize> = self.accounts_by_name.get(v).cloned().unwrap_or_default();
        let found: Vec<&AccountInfo<'_>> = indices.iter().map(|&i| &self.accounts[i]).collect();
        match found.as_slice() {
            [a] => Some(GsaRef {
                email: gsa_email(&a.project, v),
                project: a.project.clone(),
                declared: indices.first().copied(),
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
                    Some(c) => {
                        let file = self
                            .accounts
                            .iter()
                            .find(|a| a.name.value == c)
                            .map(|a| a.file)
                            .filter(|&f| f != cx.cur);
                        match file {
                            Some(f) => p.help(format!(
                                "did you mean `{c}` (declared in {})?",
                                cx.file_name(f)
                            )),
                            None => p.help(format!("did you mean `{c}`?")),
                        }
                    }
                    None => p.help(
                        "declare it under `serviceAccounts` in any file of the set, or write \
                         the full email of an account managed elsewhere \
                         (NAME@PROJECT.iam.gserviceaccount.com)",
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
