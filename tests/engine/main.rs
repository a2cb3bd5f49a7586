//! Test binary `engine`.

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod e2e;
mod faults;
mod fleet;
mod kill;
mod secrets;
