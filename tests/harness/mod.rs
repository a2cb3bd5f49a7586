//! The one harness of the integration tests, included by every test binary
//! (`tests/<area>/main.rs`) as `mod harness`:
//! - [`world`]: an emulator started in-process on loopback, `wi`'s own clients for it;
//! - [`command`]: the real `wi`, `gcloud` and `kubectl` run against it with a clean
//!   environment and a temporary HOME (through `tokio::process`, so a plain
//!   `#[tokio::test]` works), and the filters that make their output snapshot-stable;
//! - [`http`]: an HTTPS client trusting the emulator's CA, every answer checked
//!   against Google's discovery documents;
//! - [`apiserver`]: the real upstream kube-apiserver and etcd;
//! - [`fixtures`]: the plan situations (model, live) whose planner-made plans the
//!   render, plan-file and fuzz-seed tests share.
//!
//! Each binary uses part of it, hence the one `allow(dead_code)`.

#![allow(dead_code, unused_macros, unused_imports)]

/// Prints a summary line straight to stderr: libtest captures `println!`
/// of passing tests, and these totals belong in the CI log.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod apiserver;
#[macro_use]
pub mod command;
pub mod fixtures;
pub mod http;
pub mod world;

pub use command::{Output, wi_binary};
pub use http::{Answer, check_response, validated_count};
pub use world::{TestEmu, TestWorld, init_tls, start};

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a file under `tests/data`.
pub fn data(rel: &str) -> PathBuf {
    root().join("tests/data").join(rel)
}

/// Reads a file of the repository.
pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(root().join(path)).expect("read file")
}
