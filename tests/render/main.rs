//! Test binary `render`: rendered plans, saved plan files and the fuzz
//! corpora as regression tests (plans, plan_file, fuzz_corpus).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod fuzz_corpus;
mod plan_file;
mod plans;
