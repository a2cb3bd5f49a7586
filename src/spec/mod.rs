//! The spec: the desired-state file (YAML or TOML) → raw spanned types → the
//! validated [`Model`]. No I/O beyond reading the file.

pub mod model;

pub use model::*;

// TEMPORARY stubs until the spec branch lands.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("spec loading is not implemented yet")]
pub struct SpecError;
pub fn load_file(_path: &std::path::Path) -> Result<Model, SpecError> {
    Err(SpecError)
}
pub fn discover(_dir: &std::path::Path) -> Result<std::path::PathBuf, SpecError> {
    Err(SpecError)
}
pub fn digest(src: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(src.as_bytes()))
}
