//! Test binary `clients`: request-level tests of the Google and Kubernetes
//! clients against scripted fake servers (gcp, kube).

mod gcp;
mod kube;
