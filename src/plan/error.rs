//! Why planning can fail: problems in the live world that make the spec
//! impossible to plan, reported all at once.

/// Something in the live world that makes the spec impossible to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub address: String,
    pub message: String,
    pub help: Option<String>,
}

/// Planning failed: every problem found, at once.
#[derive(Debug, thiserror::Error)]
#[error("planning failed: {} problem(s)", problems.len())]
pub struct PlanError {
    pub problems: Vec<PlanProblem>,
}

impl miette::Diagnostic for PlanError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("wi::plan::failed"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let lines: Vec<String> = self
            .problems
            .iter()
            .map(|p| match &p.help {
                Some(h) => format!("{}: {}\n    {}", p.address, p.message, h),
                None => format!("{}: {}", p.address, p.message),
            })
            .collect();
        Some(Box::new(lines.join("\n")))
    }
}
