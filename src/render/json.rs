//! The machine plan (`wi plan --json`, `wi show --json`): the plan's one
//! versioned JSON document, [`crate::plan::file::PlanDocument`], the same
//! text a saved plan file holds. Its shape, stability contract and schema
//! (`schema/plan.schema.json`) are documented there.

use serde_json::Value;

use crate::plan::Action;
use crate::plan::Plan;
use crate::plan::file::PlanDocument;

/// Terraform's `change.actions` list for an action.
pub fn actions(action: Action) -> [&'static str; 1] {
    match action {
        Action::NoOp => ["no-op"],
        Action::Create => ["create"],
        Action::Update => ["update"],
        Action::Delete => ["delete"],
    }
}

/// The versioned JSON form of a plan. No-op changes are kept (as Terraform
/// does) so consumers can see what was checked.
pub fn json(plan: &Plan) -> Value {
    serde_json::to_value(PlanDocument::of(plan)).unwrap_or(Value::Null)
}
