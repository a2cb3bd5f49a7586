//! Test binary `emulator`.

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod api;
mod gcloud;
mod golden;
mod kube;
mod state;
mod wi_flow;
