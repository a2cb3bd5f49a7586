//! Test binary `apiserver`.

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod differential;
mod engine;
mod smoke;
