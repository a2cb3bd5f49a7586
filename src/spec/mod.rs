//! The spec: the desired-state file (YAML or TOML) → raw spanned types → the
//! validated [`Model`]. No I/O beyond reading the file.
//!
//! Entry points: [`discover`] finds `wi.yaml` / `wi.yml` / `wi.toml` in a
//! directory; [`load_set`] reads a spec set (files, directories, standard
//! input: [`SpecSource`]) and validates it as one model, keeping the files
//! in a [`SpecSet`] whose [`SpecSet::digest`] a saved plan records;
//! [`load_file`] and [`load_str`] do the same for one file; [`schema_json`]
//! is the JSON Schema of the format, [`digest`] fingerprints one file's text.

pub(crate) mod diagnostic;
mod load;
pub mod locations;
pub(crate) mod model;
pub(crate) mod names;
pub(crate) mod raw;
mod source;
mod suggest;
mod tags;
mod validate;
mod yaml_subset;

pub use diagnostic::{InvalidSpec, Label, Problem, SpecError, render_plain};
pub use load::{
    MAX_PROBLEMS, discover, load_file, load_file_with_source, load_set, load_spec_set,
    load_spec_set_fast, load_spec_set_spanned, load_str, parse_raw, schema_json,
};
pub use model::*;
pub use source::{
    Format, MAX_FILE_BYTES, MAX_FILES, MAX_SET_BYTES, STDIN_NAME, SpecFile, SpecSet, SpecSource,
    digest, read_sources, set_digest,
};
