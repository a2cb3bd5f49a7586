//! The local emulator of every API `wi` calls: GKE, IAM, Resource Manager,
//! Service Usage, OAuth token, STS, IAM Credentials and, per emulated cluster,
//! the Kubernetes API. Used by `wi demo`, `wi emulator` and the tests.

pub mod kube;
