//! The spec: the desired-state file (YAML or TOML) → raw spanned types → the
//! validated [`Model`]. No I/O beyond reading the file.

pub mod model;

pub use model::*;
