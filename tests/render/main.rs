//! Test binary `render`.

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod fuzz_corpus;
mod plan_file;
mod plans;
