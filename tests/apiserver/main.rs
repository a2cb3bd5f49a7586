//! Test binary `apiserver`: tests against the real upstream kube-apiserver
//! (needs WI_KUBE_APISERVER_BIN / WI_ETCD_BIN or `.ci/build-kube-apiserver`):
//! the harness smoke test, the emulator-vs-real differential, and `wi` end
//! to end with its Kubernetes side on the real server (smoke, differential,
//! engine).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;

mod differential;
mod engine;
mod examples;
mod smoke;
