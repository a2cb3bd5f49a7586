//! Test binary `engine`: the real `wi` against the in-process emulator,
//! end to end, under faults, killed, at fleet size, and for secrets
//! (e2e, faults, kill, fleet, secrets, bench_calls, partial).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod audit;
mod autopilot;
mod bench_calls;
mod call_order;
mod cli_settings;
mod concurrent;
mod contract;
mod direct;
mod drift;
mod e2e;
mod examples;
mod faults;
mod fleet;
mod hygiene;
mod import;
mod install;
mod kill;
mod owners;
mod partial;
mod permissions;
mod pr_comment;
mod quota;
mod saved_plans;
mod secrets;
mod targeting;
mod verify;
