//! Where a spec set comes from: the `-f` arguments (files, directories,
//! standard input) turned into an ordered list of [`SpecFile`]s, each read
//! whole and bounded before parsing. All of them form one model.
//!
//! A directory contributes every `*.yaml`, `*.yml` and `*.toml` under it,
//! recursively, in byte order of the path; hidden files and directories
//! (a name starting with `.`) and symlinked directories are skipped. A path
//! that is not a regular file (a FIFO, a device) is refused before it is
//! opened, so `wi` never blocks on it.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::diagnostic::SpecError;

/// The largest spec file accepted, in bytes (4 MiB).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The syntax of a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (also reads JSON).
    Yaml,
    /// TOML 1.0.
    Toml,
}

impl Format {
    /// The format a file name implies: `.toml` is TOML, anything else YAML.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Yaml,
        }
    }

    pub(crate) fn language(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}

/// The SHA-256 of the spec text, lowercase hex: the fingerprint a saved plan records.
pub fn digest(src: &str) -> String {
    hex::encode(Sha256::digest(src.as_bytes()))
}

/// The name standard input has in diagnostics and origins.
pub const STDIN_NAME: &str = "<stdin>";

/// Most files one spec set may hold.
pub const MAX_FILES: usize = 1_000;

/// The most bytes one spec set may hold, all files together (64 MiB).
pub const MAX_SET_BYTES: u64 = 64 * 1024 * 1024;

/// One `-f` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// A file, or a directory (every spec file under it).
    Path(PathBuf),
    /// Standard input (`-f -`), read as YAML (or JSON).
    Stdin,
    /// Text already in memory, with the name diagnostics give it.
    Text {
        /// The name in diagnostics and origins.
        name: String,
        /// The spec text.
        text: String,
        /// Its syntax.
        format: Format,
    },
}

impl SpecSource {
    /// `-` is standard input; anything else a path.
    pub fn from_arg(arg: &Path) -> SpecSource {
        if arg == Path::new("-") {
            SpecSource::Stdin
        } else {
            SpecSource::Path(arg.to_path_buf())
        }
    }

    /// How the source is named to the user.
    pub fn display(&self) -> String {
        match self {
            SpecSource::Path(p) => p.display().to_string(),
            SpecSource::Stdin => STDIN_NAME.to_owned(),
            SpecSource::Text { name, .. } => name.clone(),
        }
    }
}

/// One spec file of a set, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// The name in diagnostics and origins: the path as given (joined with
    /// the path under a directory), or `<stdin>`.
    pub name: String,
    /// The whole text.
    pub text: String,
    /// Its syntax (from the extension; standard input is YAML).
    pub format: Format,
}

/// The files a spec set was loaded from, in order: what a saved plan's
/// digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecSet {
    /// The files, in the order of the `-f` arguments (a directory's in byte order of the path).
    pub files: Vec<SpecFile>,
    /// How the set is named to the user: the one file, or the sources as given.
    pub display: String,
}

impl SpecSet {
    /// The fingerprint a saved plan records (see [`set_digest`]).
    pub fn digest(&self) -> String {
        set_digest(&self.files)
    }

    /// The names of the files, in order.
    pub fn names(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.name.as_str()).collect()
    }
}

/// The digest of a set of spec files, lowercase hex SHA-256.
///
/// A set of one file has the digest of its text ([`super::digest`]), as
/// before sets existed, so a plan saved from one file stays valid. A larger
/// set hashes every file's name and text, in order, each length-prefixed:
/// renaming, reordering, adding or removing a file changes the digest.
pub fn set_digest(files: &[SpecFile]) -> String {
    if let [one] = files {
        return digest(&one.text);
    }
    let mut h = Sha256::new();
    h.update(b"wi-spec-set-v1\0");
    h.update((files.len() as u64).to_be_bytes());
    for f in files {
        h.update((f.name.len() as u64).to_be_bytes());
        h.update(f.name.as_bytes());
        h.update((f.text.len() as u64).to_be_bytes());
        h.update(f.text.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Reads every source, in order, into a [`SpecSet`].
pub fn read_sources(sources: &[SpecSource]) -> Result<SpecSet, SpecError> {
    let mut files = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut stdin_used = false;
    for source in sources {
        match source {
            SpecSource::Stdin => {
                if stdin_used {
                    return Err(SpecError::StdinTwice);
                }
                stdin_used = true;
                let text = read_stdin()?;
                files.push(SpecFile {
                    name: STDIN_NAME.to_owned(),
                    text,
                    format: Format::Yaml,
                });
            }
            SpecSource::Text { name, text, format } => files.push(SpecFile {
                name: name.clone(),
                text: text.clone(),
                format: *format,
            }),
            SpecSource::Path(path) => {
                let meta = std::fs::metadata(path).map_err(|source| SpecError::Io {
                    path: path.clone(),
                    source,
                })?;
                let paths = if meta.is_dir() {
                    let found = walk(path)?;
                    if found.is_empty() {
                        return Err(SpecError::EmptyDirectory { dir: path.clone() });
                    }
                    found
                } else {
                    vec![path.clone()]
                };
                for p in paths {
                    let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                    if !seen.insert(key) {
                        return Err(SpecError::GivenTwice { path: p });
                    }
                    let text = read_bounded(&p)?;
                    files.push(SpecFile {
                        name: p.display().to_string(),
                        format: Format::from_path(&p),
                        text,
                    });
                }
            }
        }
        if files.len() > MAX_FILES {
            return Err(SpecError::TooManyFiles { limit: MAX_FILES });
        }
        let total: u64 = files.iter().map(|f| f.text.len() as u64).sum();
        if total > MAX_SET_BYTES {
            return Err(SpecError::SetTooLarge {
                size: total,
                limit: MAX_SET_BYTES,
            });
        }
    }
    let display = match (sources, files.as_slice()) {
        (_, [one]) => one.name.clone(),
        _ => {
            let given: Vec<String> = sources.iter().map(SpecSource::display).collect();
            format!("{} ({} files)", given.join(", "), files.len())
        }
    };
    Ok(SpecSet { files, display })
}

/// Every spec file under `dir`, sorted by the bytes of the path.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, SpecError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let io = |source| SpecError::Io {
            path: d.clone(),
            source,
        };
        for entry in std::fs::read_dir(&d).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                pending.push(path);
            } else if is_spec_name(&path) {
                if kind.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                out.push(path);
            }
        }
        if out.len() > MAX_FILES {
            return Err(SpecError::TooManyFiles { limit: MAX_FILES });
        }
    }
    out.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(out)
}

/// `*.yaml`, `*.yml` or `*.toml` (any case).
fn is_spec_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "toml"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8. Anything
/// else (a FIFO, a device, a socket) is refused before it is opened.
pub(crate) fn read_bounded(path: &Path) -> Result<String, SpecError> {
    let io = |source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(SpecError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SpecError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = read_limited(file).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| SpecError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Never more than one byte past the limit (the file may grow while read).
fn read_limited(r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_stdin() -> Result<String, SpecError> {
    let path = PathBuf::from(STDIN_NAME);
    let bytes = read_limited(std::io::stdin().lock()).map_err(|source| SpecError::Io {
        path: path.clone(),
        source,
    })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            path,
            size: bytes.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| SpecError::NotUtf8 { path })
}

/// "a FIFO", "a directory", ...: what a path is when it is not a regular file.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SpecFile {
        SpecFile {
            name: name.into(),
            text: text.into(),
            format: Format::Yaml,
        }
    }

    #[test]
    fn one_file_keeps_the_text_digest_and_sets_cover_names_and_order() {
        let a = file("a.yaml", "version: 1\n");
        let b = file("b.yaml", "version: 1\n");
        assert_eq!(set_digest(std::slice::from_ref(&a)), super::digest(&a.text));
        let ab = set_digest(&[a.clone(), b.clone()]);
        assert_ne!(ab, set_digest(&[b.clone(), a.clone()]));
        let renamed = file("c.yaml", "version: 1\n");
        assert_ne!(ab, set_digest(&[a.clone(), renamed]));
        // The length prefix keeps name/text boundaries apart.
        assert_ne!(
            set_digest(&[file("a", "bc"), file("d", "")]),
            set_digest(&[file("ab", "c"), file("d", "")])
        );
    }
}
