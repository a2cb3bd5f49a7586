//! Test binary `spec`.

mod cli;
mod diagnostics;
mod model;
mod robustness;
mod schema;
