//! `wi`: GKE Workload Identity as code.
//!
//! The engine is a one-way pipeline, one module per stage. Each layer imports
//! only layers to its left (a unit test, `layering`, fails otherwise):
//!
//! ```text
//! ids, ownership  →  spec  →  gcp, kube  →  live  →  plan, audit, drift, import  →  apply, verify, permissions  →  render  →  cli
//! ```
//!
//! - [`ids`]: names every layer shares (cluster keys, service-account emails,
//!   IAM members, workload pools); [`ownership`]: how `wi` knows, without a
//!   state file, what is its own.
//! - `spec` (file → validated [`spec::Model`]); `gcp` and `kube`: REST
//!   clients behind small types, taking plain endpoints (neither imports
//!   `spec` or the other).
//! - `live` (what exists, read through the clients, with its fingerprints) →
//!   `plan` (pure diff into a [`plan::Plan`]) → `apply` (plan → steps against
//!   the same clients, an [`apply::ApplyResult`]) → `render` (plans and apply
//!   results → text / JSON) → `cli`. `verify` (beside `apply`, over `live`
//!   and the same clients) proves each mapping yields its Google identity.
//!   [`audit`] stands beside `plan`: it reads through `live` (every cluster of
//!   the spec's projects, declared or not) and reports who else gets the
//!   spec's identities; it never writes. [`drift`] stands beside `plan` too:
//!   a read-only plan turned into a drift report, sharded and merged.
//!   spec's identities; it never writes. [`import`] stands beside it too:
//!   it reads the live world of some projects through `live` and the
//!   clients and writes a spec text that reproduces it (never plans).
//! - [`permissions`]: the IAM permissions and Kubernetes accesses each
//!   command needs, what one plan needs, and the pre-flight that asks Google
//!   and the clusters before anything changes (beside `apply`).
//!
//! `emulator` is the local GKE / IAM / STS / Kubernetes emulator used by
//! `wi demo`, `wi emulator` and the tests; it stands beside the engine: the
//! engine never imports it and it never imports the engine.

pub mod apply;
pub mod audit;
pub mod cli;
pub mod drift;
pub mod emulator;
pub mod gcp;
pub mod ids;
pub mod import;
pub mod kube;
#[cfg(test)]
mod layering;
pub mod live;
pub mod ownership;
pub mod permissions;
mod permute;
pub mod plan;
pub mod render;
pub mod spec;
pub mod verify;

/// The `wi` version written into JSON plans and saved plan files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
