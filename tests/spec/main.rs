//! Test binary `spec`.

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod cli;
mod diagnostics;
mod model;
mod robustness;
mod schema;
