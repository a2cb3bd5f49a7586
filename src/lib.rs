//! `wi`: GKE Workload Identity as code.
//!
//! The engine is a one-way pipeline, one module per stage:
//! `spec` (file → validated [`spec::Model`]) → `live` (what exists, read through
//! `gcp` and `kube` clients) → `plan` (pure diff into a [`plan::Plan`]) →
//! `render` (plan → text / JSON) and `apply` (plan → steps against the same clients).
//! `emulator` is the local GKE / IAM / STS / Kubernetes emulator used by `wi demo`,
//! `wi emulator` and the tests; the engine never imports it.

pub mod apply;
pub mod cli;
pub mod emulator;
pub mod gcp;
pub mod kube;
pub mod live;
pub mod plan;
pub mod render;
pub mod spec;
