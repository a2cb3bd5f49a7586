//! Test binary `clients`.

mod gcp;
mod kube;
