//! Quota mode: `--quota '*=20,iam=10,kubernetes=50'`. A Google API named by
//! its prefix (`iam`, `container`, `cloudresourcemanager`, `serviceusage`,
//! `iamcredentials`, `sts`) or `*` (every Google API) gets a rate in requests
//! per second per project; beyond it the request is answered as Google does,
//! `429 RESOURCE_EXHAUSTED` with an `ErrorInfo` of reason `RATE_LIMIT_EXCEEDED`
//! naming the quota metric, limit and consumer, and no `Retry-After` (Google
//! sends none: clients back off on their own). `kubernetes=N` caps each
//! cluster's API at N requests in flight, as kube-apiserver's
//! `--max-requests-inflight` does: beyond it `429 TooManyRequests` with
//! `Retry-After: 1`.
//!
//! The project a Google request counts against is the one its path names
//! (`projects/P/...`; for `projects/-/serviceAccounts/A@P.iam...` the
//! account's project): the real quota is charged to the caller's consumer
//! project, which for `wi`'s reads per project is the same partition.
//! Each rate is a token bucket holding one second of requests, refilled
//! continuously.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A parsed `--quota` spec with its live counters.
#[derive(Debug, Default)]
pub(crate) struct Quota {
    /// `(api prefix or "*", requests per second per project)`, first match wins.
    rates: Vec<(String, f64)>,
    /// Requests in flight allowed per cluster.
    kube_in_flight: Option<u32>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    in_flight: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why a Google request was refused: the rate it exceeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exceeded {
    /// Requests per second per project.
    pub rate: f64,
}

/// A Kubernetes request in flight; frees its slot when dropped.
pub(crate) struct InFlight(Option<Arc<AtomicU32>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Quota {
    /// Parses `API=N,...`; `known` lists the Google API prefixes.
    pub(crate) fn parse(spec: &str, known: &[&str]) -> Result<Quota, String> {
        let mut q = Quota::default();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (api, n) = raw
                .split_once('=')
                .ok_or_else(|| format!("rule `{raw}`: expected API=N"))?;
            let api = api.trim();
            let n: f64 = n
                .trim()
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("rule `{raw}`: `{}` is not a positive number", n.trim()))?;
            if api == "kubernetes" {
                if n.fract() != 0.0 || n > f64::from(u32::MAX) {
                    return Err(format!(
                        "rule `{raw}`: kubernetes takes a whole number of requests in flight"
                    ));
                }
                q.kube_in_flight = Some(n as u32);
            } else if api == "*" || known.contains(&api) {
                q.rates.push((api.to_string(), n));
            } else {
                return Err(format!(
                    "rule `{raw}`: unknown API `{api}` (expected *, kubernetes or one of {})",
                    known.join(", ")
                ));
            }
        }
        // Named APIs before `*`.
        q.rates.sort_by_key(|(api, _)| api == "*");
        Ok(q)
    }

    /// True when no quota is set.
    pub(crate) fn is_off(&self) -> bool {
        self.rates.is_empty() && self.kube_in_flight.is_none()
    }

    /// Takes one request of `api` for `project` out of its bucket, or says which rate it exceeds.
    pub(crate) fn admit(&self, api: &str, project: &str, now: Instant) -> Result<(), Exceeded> {
        let Some(rate) = self
            .rates
            .iter()
            .find(|(a, _)| a == api || a == "*")
            .map(|(_, r)| *r)
        else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets
            .entry((api.to_string(), project.to_string()))
            .or_insert(Bucket {
                tokens: rate.max(1.0),
                at: now,
            });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate.max(1.0));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Exceeded { rate })
        }
    }

    /// A slot among cluster `key`'s requests in flight, or `None` when all are taken.
    pub(crate) fn enter_kube(&self, key: &str) -> Option<InFlight> {
        let Some(max) = self.kube_in_flight else {
            return Some(InFlight(None));
        };
        let counter = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let taken = counter.fetch_add(1, Ordering::SeqCst);
        let slot = InFlight(Some(counter));
        (taken < max).then_some(slot)
    }
}

/// The project a Google request's path names (`-` when it names none).
pub(crate) fn project_of(segs: &[String]) -> String {
    match segs {
        [first, p, rest @ ..] if first == "projects" => {
            if p == "-" {
                // projects/-/serviceAccounts/NAME@PROJECT.iam.gserviceaccount.com
                rest.get(1)
                    .and_then(|a| a.split_once('@'))
                    .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
                    .unwrap_or("-")
                    .to_string()
            } else {
                p.clone()
            }
        }
        _ => "-".to_string(),
    }
}

/// Whether a discovery method id only reads (Google's quotas count reads and writes apart).
pub(crate) fn is_read(method_id: &str) -> bool {
    let last = method_id.rsplit('.').next().unwrap_or(method_id);
    matches!(
        last,
        "get" | "list" | "getIamPolicy" | "testIamPermissions" | "batchGet" | "search"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const KNOWN: &[&str] = &["iam", "container"];

    #[test]
    fn parses_rates_and_in_flight() {
        let q = Quota::parse("*=20, iam=5,kubernetes=3", KNOWN).unwrap();
        assert_eq!(q.rates, vec![("iam".into(), 5.0), ("*".into(), 20.0)]);
        assert_eq!(q.kube_in_flight, Some(3));
        assert!(Quota::parse("", KNOWN).unwrap().is_off());
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(Quota::parse("iam", KNOWN).unwrap_err().contains("API=N"));
        assert!(
            Quota::parse("iam=0", KNOWN)
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            Quota::parse("bogus=1", KNOWN)
                .unwrap_err()
                .contains("unknown API")
        );
        assert!(
            Quota::parse("kubernetes=1.5", KNOWN)
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn a_bucket_holds_one_second_and_refills() {
        let q = Quota::parse("iam=2", KNOWN).unwrap();
        let t0 = Instant::now();
        assert!(q.admit("iam", "p", t0).is_ok());
        assert!(q.admit("iam", "p", t0).is_ok());
        assert_eq!(q.admit("iam", "p", t0), Err(Exceeded { rate: 2.0 }));
        // Another project, another bucket; another API, no quota.
        assert!(q.admit("iam", "q", t0).is_ok());
        assert!(q.admit("container", "p", t0).is_ok());
        assert!(q.admit("iam", "p", t0 + Duration::from_millis(500)).is_ok());
        assert!(
            q.admit("iam", "p", t0 + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn in_flight_slots_are_freed_on_drop() {
        let q = Quota::parse("kubernetes=1", KNOWN).unwrap();
        let a = q.enter_kube("c").expect("first");
        assert!(q.enter_kube("c").is_none());
        assert!(q.enter_kube("other").is_some());
        drop(a);
        assert!(q.enter_kube("c").is_some());
    }

    #[test]
    fn projects_come_from_the_path() {
        let segs = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(project_of(&segs("projects/p1/serviceAccounts")), "p1");
        assert_eq!(
            project_of(&segs(
                "projects/-/serviceAccounts/a@p2.iam.gserviceaccount.com"
            )),
            "p2"
        );
        assert_eq!(project_of(&segs("operations/x")), "-");
        assert!(is_read("projects.serviceAccounts.getIamPolicy"));
        assert!(!is_read("projects.serviceAccounts.setIamPolicy"));
    }
}
