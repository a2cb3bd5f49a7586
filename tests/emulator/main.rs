//! Test binary `emulator`: the emulator's Google APIs, its Kubernetes API,
//! real gcloud/kubectl against it, recorded GCP traffic, persistence and the
//! Workload Identity token flow, quota mode and call counts (api, kube,
//! env_file, gcloud, golden, quota, state, tokens_kubectl, wi_flow).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod api;
mod autopilot;
mod env_file;
mod gcloud;
mod golden;
mod kube;
mod principals;
mod quota;
mod state;
mod tokens_kubectl;
mod wi_flow;
