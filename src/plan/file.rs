//! Saved plan files (`wi plan --out FILE`, then `wi apply FILE`).
//!
//! A saved plan is applied without asking again because it was reviewed, so
//! the file must be exactly what was reviewed: it carries a sha256 checksum of
//! the canonical plan JSON and `read` refuses a file whose plan does not
//! match it, as well as unknown major versions, malformed JSON and files over
//! [`MAX_PLAN_FILE_BYTES`]. Staleness against live state is the plan's own
//! check, `Plan::check_fresh` (plan/fresh.rs), over the plan's fingerprints.
//!
//! The file is a JSON envelope:
//! `{"wi_plan": "1.0", "wi_version": "0.1.0", "checksum": "sha256:…", "plan": {…}}`.
//!
//! A plan contains no secrets by construction: its attributes are project
//! ids, account ids and emails, display names, roles, IAM members, namespace
//! and KSA names, annotations and labels, and its fingerprints are etags and
//! resourceVersions. No token, key or credential ever enters a [`Plan`], so a
//! saved plan can be kept as a CI artifact. The checksum detects accidental
//! or casual edits; it is not a signature against a determined attacker who
//! can recompute it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Plan};

/// Largest plan file `read` accepts (64 MiB).
pub const MAX_PLAN_FILE_BYTES: u64 = 64 * 1024 * 1024;

const CHECKSUM_PREFIX: &str = "sha256:";

/// Why a saved plan file cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanFileError {
    /// The file could not be opened or read.
    #[error("cannot read plan file {}", path.display())]
    #[diagnostic(code(wi::plan_file::io))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is over [`MAX_PLAN_FILE_BYTES`].
    #[error("plan file {} is larger than the {limit}-byte limit", path.display())]
    #[diagnostic(
        code(wi::plan_file::too_large),
        help("a wi plan file is a few kilobytes per change; is this the right file?")
    )]
    TooLarge { path: PathBuf, limit: u64 },
    /// The file is not JSON.
    #[error("plan file {} is not valid JSON (line {line}, column {column})", path.display())]
    #[diagnostic(
        code(wi::plan_file::malformed),
        help("save a plan with `wi plan --out FILE`; plan files are not meant to be edited")
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is not a `wi` plan envelope.
    #[error("{} is not a wi plan file: {detail}", path.display())]
    #[diagnostic(
        code(wi::plan_file::not_a_plan),
        help("save a plan with `wi plan --out FILE`")
    )]
    NotAPlan { path: PathBuf, detail: String },
    /// The envelope's major version is not one this `wi` reads.
    #[error(
        "plan file {} has format version {found}, which this wi (v{ours}) cannot read (it reads {supported}.x)",
        path.display(),
        ours = crate::VERSION
    )]
    #[diagnostic(
        code(wi::plan_file::unsupported_version),
        help("make the plan again with this version of wi: `wi plan --out FILE`")
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: String,
    },
    /// The plan does not match its checksum: the file changed after it was written.
    #[error("plan file {} was modified after it was written (checksum mismatch)", path.display())]
    #[diagnostic(
        code(wi::plan_file::checksum_mismatch),
        help(
            "a saved plan is applied without asking again, so it must be exactly what was reviewed; make a new one with `wi plan --out FILE`"
        )
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The checksum matches but the plan does not have the expected shape.
    #[error("plan file {} does not contain a valid plan", path.display())]
    #[diagnostic(code(wi::plan_file::invalid_plan))]
    InvalidPlan {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl PlanFileError {
    /// The file changed after `wi plan --out` wrote it.
    pub fn is_tampered(&self) -> bool {
        matches!(self, PlanFileError::ChecksumMismatch { .. })
    }

    /// Written by a `wi` with another major format version.
    pub fn is_unsupported_version(&self) -> bool {
        matches!(self, PlanFileError::UnsupportedVersion { .. })
    }

    /// The file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PlanFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PlanFileError::Io { path, .. }
            | PlanFileError::TooLarge { path, .. }
            | PlanFileError::Malformed { path, .. }
            | PlanFileError::NotAPlan { path, .. }
            | PlanFileError::UnsupportedVersion { path, .. }
            | PlanFileError::ChecksumMismatch { path, .. }
            | PlanFileError::InvalidPlan { path, .. } => path,
        }
    }
}

/// The bytes of a plan file for `plan` (pretty JSON, trailing newline).
pub fn encode(plan: &Plan) -> io::Result<Vec<u8>> {
    let value = serde_json::to_value(plan).map_err(io::Error::other)?;
    let checksum = checksum(&value);
    let mut envelope = Map::new();
    envelope.insert("wi_plan".into(), Value::String(FORMAT_VERSION.into()));
    envelope.insert("wi_version".into(), Value::String(crate::VERSION.into()));
    envelope.insert("checksum".into(), Value::String(checksum));
    envelope.insert("plan".into(), value);
    let mut bytes =
        serde_json::to_vec_pretty(&Value::Object(envelope)).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `plan` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`. A reader never sees half a
/// plan, and a failed write leaves any previous file in place. On Unix the
/// file is created readable by its owner only (mode 0600), like the
/// temporary file it was.
pub fn write(plan: &Plan, path: &Path) -> io::Result<()> {
    let bytes = encode(plan)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".wi-plan-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Reads and checks a plan file written by [`write`].
pub fn read(path: &Path) -> Result<Plan, PlanFileError> {
    let io_err = |source| PlanFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let too_large = || PlanFileError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_PLAN_FILE_BYTES,
    };
    if file.metadata().map_err(io_err)?.len() > MAX_PLAN_FILE_BYTES {
        return Err(too_large());
    }
    // The length check above can race a growing file or be meaningless for
    // a pipe; never read more than the limit.
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_PLAN_FILE_BYTES {
        return Err(too_large());
    }
    decode(&bytes, path)
}

/// Checks and decodes plan file bytes; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Plan, PlanFileError> {
    let path_buf = || path.to_path_buf();
    let not_a_plan = |detail: &str| PlanFileError::NotAPlan {
        path: path_buf(),
        detail: detail.to_string(),
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|source| PlanFileError::Malformed {
            path: path_buf(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    let Value::Object(mut envelope) = value else {
        return Err(not_a_plan("the top level is not a JSON object"));
    };
    let version = match envelope.get("wi_plan") {
        Some(Value::String(v)) => v.clone(),
        Some(_) => return Err(not_a_plan("`wi_plan` is not a string")),
        None => return Err(not_a_plan("there is no `wi_plan` version key")),
    };
    if major(&version).is_none() || major(&version) != major(FORMAT_VERSION) {
        return Err(PlanFileError::UnsupportedVersion {
            path: path_buf(),
            found: version,
            supported: major(FORMAT_VERSION).unwrap_or(FORMAT_VERSION).to_string(),
        });
    }
    let expected = match envelope.get("checksum") {
        Some(Value::String(c)) => c.clone(),
        _ => return Err(not_a_plan("there is no `checksum` string")),
    };
    let Some(plan) = envelope.remove("plan") else {
        return Err(not_a_plan("there is no `plan` object"));
    };
    let actual = checksum(&plan);
    if actual != expected {
        return Err(PlanFileError::ChecksumMismatch {
            path: path_buf(),
            expected,
            actual,
        });
    }
    let plan: Plan = serde_json::from_value(plan).map_err(|source| PlanFileError::InvalidPlan {
        path: path_buf(),
        source,
    })?;
    // The envelope and the plan it carries must agree on the major version.
    if major(&plan.format_version) != major(FORMAT_VERSION) {
        return Err(PlanFileError::UnsupportedVersion {
            path: path_buf(),
            found: plan.format_version,
            supported: major(FORMAT_VERSION).unwrap_or(FORMAT_VERSION).to_string(),
        });
    }
    Ok(plan)
}

/// `1` of `1.0`; `None` when not `DIGITS.…`.
fn major(version: &str) -> Option<&str> {
    let m = version.split('.').next()?;
    (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then_some(m)
}

/// `sha256:HEX` of the canonical form of a plan value: compact JSON with
/// object keys sorted at every level, so the checksum does not depend on
/// formatting or on key order (and survives additive minor versions, whose
/// unknown keys are still covered).
pub fn checksum(plan: &Value) -> String {
    let canonical = canonicalize(plan);
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("{CHECKSUM_PREFIX}{}", hex::encode(Sha256::digest(&bytes)))
}

fn canonicalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(inner) = map.get(k) {
                    out.insert(k.clone(), canonicalize(inner));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_parsing() {
        assert_eq!(major("1.0"), Some("1"));
        assert_eq!(major("12.3"), Some("12"));
        assert_eq!(major("x.1"), None);
        assert_eq!(major(""), None);
    }

    #[test]
    fn checksum_ignores_key_order_but_not_content() {
        let a = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        let b = serde_json::json!({"b": {"d": "x", "c": [1, 2]}, "a": 1});
        let c = serde_json::json!({"b": {"d": "y", "c": [1, 2]}, "a": 1});
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&c));
        assert!(checksum(&a).starts_with("sha256:"));
    }
}
