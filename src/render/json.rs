//! The machine plan (`wi plan --json`), shaped like `terraform show -json`
//! so CI tooling that already scans Terraform plans (`change.actions`
//! containing `"delete"`, `resource_changes[].address`) works unchanged.
//!
//! Stability contract: `format_version` is [`FORMAT_VERSION`]; minor bumps
//! only add keys, so consumers must ignore keys they do not know and reject an
//! unknown major version. Keys are emitted in a fixed order and `before` /
//! `after` attribute maps are sorted, so the same plan always serialises to
//! the same bytes.

use serde_json::{Value, json};

use crate::plan::{Action, FORMAT_VERSION, Plan, ResourceChange, Warning};

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
    let summary = plan.summary();
    json!({
        "format_version": FORMAT_VERSION,
        "wi_version": crate::VERSION,
        "spec_digest": plan.spec_digest,
        "resource_changes": plan.changes.iter().map(resource_change).collect::<Vec<_>>(),
        "warnings": plan.warnings.iter().map(warning).collect::<Vec<_>>(),
        "summary": {
            "add": summary.add,
            "change": summary.change,
            "destroy": summary.destroy,
        },
        "has_changes": plan.has_changes(),
        "fingerprints": plan.fingerprints.iter().map(|f| json!({
            "source": f.source,
            "version": f.version,
        })).collect::<Vec<_>>(),
    })
}

fn resource_change(c: &ResourceChange) -> Value {
    json!({
        "address": c.address,
        "type": c.resource.type_name(),
        "group": serde_json::to_value(c.resource.group()).unwrap_or(Value::Null),
        "resource": identity(c),
        "change": {
            "actions": actions(c.action),
            "before": c.before,
            "after": c.after,
        },
        "action_reason": c.reason.code,
        "reason": c.reason.message,
        "depends_on": c.depends_on,
        "warnings": c.warnings.iter().map(warning).collect::<Vec<_>>(),
    })
}

/// The fields that identify the resource (project, cluster, names), without
/// the serde tag of [`crate::plan::Resource`], whose spelling differs from
/// `type` and would only confuse.
fn identity(c: &ResourceChange) -> Value {
    match serde_json::to_value(&c.resource) {
        Ok(Value::Object(mut map)) => {
            map.shift_remove("type");
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

fn warning(w: &Warning) -> Value {
    json!({
        "code": w.code,
        "message": w.message,
        "address": w.address,
    })
}
