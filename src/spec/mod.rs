//! The spec: the desired-state file (YAML or TOML) → raw spanned types → the
//! validated [`Model`]. No I/O beyond reading the file.
//!
//! Entry points: [`discover`] finds `wi.yaml` / `wi.yml` / `wi.toml` in a
//! directory, [`load_file`] and [`load_str`] parse and validate, [`schema_json`]
//! is the JSON Schema of the format, [`digest`] fingerprints the file text.

pub(crate) mod diagnostic;
mod load;
pub(crate) mod model;
pub(crate) mod names;
pub(crate) mod raw;
mod validate;

pub use diagnostic::{InvalidSpec, Label, Problem, SpecError, render_plain};
pub use load::{
    Format, MAX_FILE_BYTES, MAX_PROBLEMS, digest, discover, load_file, load_file_with_source,
    load_str, parse_raw, schema_json,
};
pub use model::*;
