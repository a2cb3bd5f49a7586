//! TEMPORARY stub until the render branch lands.
use super::Plan;
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
pub struct PlanFileError(pub String);
pub fn write(plan: &Plan, path: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_vec(plan)?)
}
pub fn read(path: &std::path::Path) -> Result<Plan, PlanFileError> {
    let s = std::fs::read(path).map_err(|e| PlanFileError(e.to_string()))?;
    serde_json::from_slice(&s).map_err(|e| PlanFileError(e.to_string()))
}
