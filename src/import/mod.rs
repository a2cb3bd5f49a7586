//! `wi import`: the live world of some projects written as a spec that
//! reproduces it, for adopting what teams already made by hand, Terraform
//! or Helm.
//!
//! `read` lists what exists (clusters with their node pools, the KSAs of
//! each cluster, every account of the projects and its policy, the project
//! policies); `build` decides, purely, what the spec declares (grouping KSAs
//! and clusters as a person would, noting what it cannot decide); `emit`
//! writes the document as YAML or TOML. Import stands beside `audit`: it
//! reads through `live` and the clients and never plans or writes.

mod build;
mod emit;
mod read;

pub use build::{ImportCounts, ImportOptions};
pub use emit::{Document, Item, Section, Value};
pub use read::{ImportCluster, ImportState, read};

/// The spec format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Yaml,
    Toml,
}

/// The spec text of what was read, and what it declares.
pub fn spec_text(
    state: &ImportState,
    opts: &ImportOptions,
    format: ImportFormat,
) -> (String, ImportCounts) {
    let (doc, counts) = build::document(state, opts);
    let text = match format {
        ImportFormat::Yaml => emit::yaml(&doc),
        ImportFormat::Toml => emit::toml(&doc),
    };
    (text, counts)
}
