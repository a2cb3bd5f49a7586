//! One change → one step: which client call a (resource, action) pair makes,
//! with the values the plan carries for it (typed, from [`ResourceChange`]'s
//! accessors), and the re-checks that make each step converge.

use super::{Context, StepError, gke, kubernetes};
use crate::ids::gsa_email;
use crate::ownership::Owner;
use crate::plan::{Action, Resource, ResourceChange};

pub(super) async fn run_change(ctx: &Context, change: &ResourceChange) -> Result<(), StepError> {
    let o = &ctx.options;
    match (&change.resource, change.action) {
        (Resource::ProjectService { project, service }, Action::Create) => {
            ctx.gcp
                .enable_service(project, service, o.step_deadline)
                .await?;
            Ok(())
        }
        (Resource::Cluster { cluster }, Action::Create) => {
            gke::create_cluster(ctx, cluster, change).await
        }
        (Resource::Cluster { cluster }, Action::Update) => {
            let pool = change.workload_pool().map(str::to_string);
            gke::cluster_mutation(
                ctx,
                cluster,
                change,
                |c| c.workload_pool() == pool.as_deref(),
                || {
                    let pool = pool.clone();
                    let key = cluster.clone();
                    async move { ctx.gcp.set_workload_pool(&key, pool.as_deref()).await }
                },
            )
            .await
        }
        (Resource::NodePool { cluster, pool }, Action::Update) => {
            let mode = change.metadata_mode().unwrap_or("GKE_METADATA").to_string();
            gke::cluster_mutation(
                ctx,
                cluster,
                change,
                |c| {
                    c.node_pools
                        .iter()
                        .any(|p| &p.name == pool && p.metadata_mode() == Some(mode.as_str()))
                },
                || {
                    let key = cluster.clone();
                    let mode = mode.clone();
                    async move { ctx.gcp.set_node_pool_metadata_mode(&key, pool, &mode).await }
                },
            )
            .await
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Create,
        ) => {
            let values = change.account_values();
            match ctx
                .gcp
                .create_service_account(
                    project,
                    account_id,
                    values.display_name.as_deref(),
                    values.description.as_deref(),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => {
                    let email = gsa_email(project, account_id);
                    match ctx.gcp.get_service_account(&email).await? {
                        Some(sa)
                            if Owner::from_description(sa.description.as_deref()).as_ref()
                                == Some(&change.owner) =>
                        {
                            Ok(())
                        }
                        _ => Err(StepError::RacedCreate { email }),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Update,
        ) => {
            let email = gsa_email(project, account_id);
            let values = change.account_values();
            ctx.gcp
                .patch_service_account(
                    &email,
                    values.display_name.as_deref(),
                    values.description.as_deref(),
                )
                .await?;
            super::iam::enable_if_disabled(ctx, &email, change).await
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Delete,
        ) => {
            let email = gsa_email(project, account_id);
            match ctx.gcp.delete_service_account(&email).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        (Resource::Namespace { cluster, name }, Action::Create | Action::Update) => {
            kubernetes::create_namespace(ctx, cluster, name, change).await
        }
        (
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            },
            Action::Create | Action::Update,
        ) => kubernetes::apply_service_account(ctx, cluster, namespace, name, change).await,
        (
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            },
            Action::Delete,
        ) => kubernetes::delete_service_account(ctx, cluster, namespace, name, change).await,
        (resource, action) => Err(StepError::Unsupported {
            action,
            address: resource.address(),
        }),
    }
}
