//! TEMPORARY stub until the render branch lands.
use crate::plan::Plan;
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}
pub fn human(plan: &Plan, _style: &Style) -> String {
    format!("{:#?}\n", plan.summary())
}
pub fn json(plan: &Plan) -> serde_json::Value {
    serde_json::to_value(plan).unwrap_or_default()
}
