//! Test binary `render`: rendered plans, saved plan files and the fuzz
//! corpora as regression tests (plans, plan_file, fuzz_corpus), the plan JSON
//! Schema (schema), `wi show` (show), and the
//! check that no snapshot is committed twice (snapshot_files).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod fuzz_corpus;
mod plan_file;
mod plans;
mod pr_formats;
mod schema;
mod show;
mod snapshot_files;
