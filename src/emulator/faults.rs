//! Fault injection: `--faults 'iam.setIamPolicy=409:0.3,container.*=503:0.1,*=429:0.05'`.
//! Each rule names methods as `service.method` (the method may be the short
//! name `setIamPolicy` or the full discovery path `projects.serviceAccounts.setIamPolicy`),
//! `service.*` or `*`, and gives the HTTP status to inject and its probability.

/// One rule of a fault spec.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultRule {
    /// `*` or a service name (`container`, `iam`, `kubernetes`, ...).
    pub service: String,
    /// `*` or a method name.
    pub method: String,
    /// HTTP status to answer with.
    pub code: u16,
    /// Probability in `[0, 1]`.
    pub probability: f64,
}

impl FaultRule {
    /// True when this rule covers `service.method` (method = full dotted id).
    pub(crate) fn matches(&self, service: &str, method: &str) -> bool {
        let service_ok = self.service == "*" || self.service == service;
        let method_ok = self.method == "*"
            || self.method == method
            || method.ends_with(&format!(".{}", self.method));
        service_ok && method_ok
    }
}

/// Parses a fault spec. Errors say which rule is wrong and why.
pub(crate) fn parse(spec: &str) -> Result<Vec<FaultRule>, String> {
    let mut rules = Vec::new();
    for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, action) = raw
            .split_once('=')
            .ok_or_else(|| format!("rule `{raw}`: expected NAME=CODE:PROBABILITY"))?;
        let (code, prob) = action
            .split_once(':')
            .ok_or_else(|| format!("rule `{raw}`: expected CODE:PROBABILITY after `=`"))?;
        let code: u16 = code
            .trim()
            .parse()
            .ok()
            .filter(|c| (400..600).contains(c))
            .ok_or_else(|| {
                format!("rule `{raw}`: status `{code}` is not an HTTP error code (400-599)")
            })?;
        let probability: f64 = prob
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=1.0).contains(p))
            .ok_or_else(|| {
                format!("rule `{raw}`: probability `{prob}` is not a number in [0, 1]")
            })?;
        let name = name.trim();
        let (service, method) = if name == "*" {
            ("*".to_string(), "*".to_string())
        } else {
            let (s, m) = name.split_once('.').ok_or_else(|| {
                format!(
                    "rule `{raw}`: method `{name}` must look like service.method, service.* or *"
                )
            })?;
            if s.is_empty() || m.is_empty() {
                return Err(format!("rule `{raw}`: empty service or method in `{name}`"));
            }
            (s.to_string(), m.to_string())
        };
        rules.push(FaultRule {
            service,
            method,
            code,
            probability,
        });
    }
    Ok(rules)
}

/// The first rule covering `service.method` whose dice roll (`roll` in `[0,1)`) hits.
pub(crate) fn pick<'a>(
    rules: &'a [FaultRule],
    service: &str,
    method: &str,
    mut roll: impl FnMut() -> f64,
) -> Option<&'a FaultRule> {
    rules
        .iter()
        .filter(|r| r.matches(service, method))
        .find(|r| roll() < r.probability)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let rules = parse("iam.setIamPolicy=409:0.3,container.*=503:0.1,*=429:0.05").unwrap();
        assert_eq!(rules.len(), 3);
        assert!(rules[0].matches("iam", "projects.serviceAccounts.setIamPolicy"));
        assert!(!rules[0].matches("iam", "projects.serviceAccounts.getIamPolicy"));
        assert!(rules[1].matches("container", "projects.locations.clusters.create"));
        assert!(rules[2].matches("kubernetes", "get"));
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(parse("iam=409:0.3").unwrap_err().contains("service.method"));
        assert!(parse("*=200:0.3").unwrap_err().contains("400-599"));
        assert!(parse("*=503:2").unwrap_err().contains("[0, 1]"));
        assert!(parse("*").is_err());
    }

    #[test]
    fn pick_uses_probability() {
        let rules = parse("*=429:0.5").unwrap();
        assert!(pick(&rules, "iam", "x", || 0.4).is_some());
        assert!(pick(&rules, "iam", "x", || 0.6).is_none());
    }
}
