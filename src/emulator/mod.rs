//! The local emulator of every API `wi` calls: GKE, IAM, Resource Manager,
//! Service Usage, OAuth token, STS, IAM Credentials and, per emulated cluster,
//! the Kubernetes API. Used by `wi demo`, `wi emulator` and the tests.

pub mod kube;

// TEMPORARY stubs until the emulator branch lands.
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    pub listen: Option<std::net::SocketAddr>,
    pub seed: Option<std::path::PathBuf>,
    pub work_dir: std::path::PathBuf,
    pub operation_duration: std::time::Duration,
}
#[derive(Debug, thiserror::Error)]
#[error("emulator not implemented")]
pub struct EmulatorError;
pub struct Emulator;
impl Emulator {
    pub async fn start(_config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        Err(EmulatorError)
    }
    pub fn env(&self) -> Vec<(String, String)> {
        vec![]
    }
    pub async fn shutdown(self) {}
}
