//! Test binary `spec`: the spec loader and `wi validate` / `wi schema`
//! (model, diagnostics, schema, robustness, cli).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod cli;
mod diagnostics;
mod direct;
mod model;
mod multi;
mod robustness;
mod sameness;
mod schema;
mod subset;
mod validate_fixes;
