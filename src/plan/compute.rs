//! Planning: (model, live) → Plan. Pure.

use super::Plan;

/// Placeholder until live state lands.
pub fn compute() -> Option<Plan> {
    None
}
