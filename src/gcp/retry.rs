//! The one retry policy every Google call goes through: exponential backoff
//! with jitter (backon's `ExponentialBuilder`) on 429 and 5xx, at least as
//! long as the server's `Retry-After`, bounded by a total deadline per call
//! ([`RetryPolicy::max_elapsed`], 5 minutes; an apply step has its own,
//! `WI_STEP_TIMEOUT`). What cannot heal is returned at once: 4xx answers,
//! an unreachable endpoint (connection refused, no answer to a connect or
//! TLS handshake), a bad token. A request that got no answer for another
//! reason (a reset) is retried only [`MAX_TRANSPORT_RETRIES`] times: a
//! transport failure that outlasts a few seconds of retries is a
//! configuration problem, not a blip, and the run should say so then rather
//! than minutes later. Retries are counted so tests and `--verbose` runs can
//! report them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use super::error::GcpError;

/// Retries of a call whose attempts got no HTTP answer at all
/// ([`GcpError::Transport`]): with the default policy, about 3 seconds.
pub const MAX_TRANSPORT_RETRIES: usize = 2;

/// Backoff settings shared by every call of a [`super::GcpClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub min_delay: Duration,
    /// Largest delay between two attempts (a longer `Retry-After` still wins).
    pub max_delay: Duration,
    /// Total time one call may spend retrying before the last error is returned.
    pub max_elapsed: Duration,
    /// Largest number of retries of one call (on top of the deadline).
    pub max_retries: usize,
    /// First interval between polls of a long-running operation.
    pub poll_min: Duration,
    /// Largest interval between polls of a long-running operation.
    pub poll_max: Duration,
}

impl Default for RetryPolicy {
    /// Production values: 1 s doubling to 32 s, 5 minutes, 3 s → 15 s polls.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            max_elapsed: Duration::from_secs(300),
            max_retries: 20,
            poll_min: Duration::from_secs(3),
            poll_max: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// Millisecond delays for tests and the local emulator.
    pub fn fast() -> Self {
        Self {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(10),
            max_retries: 20,
            poll_min: Duration::from_millis(5),
            poll_max: Duration::from_millis(50),
        }
    }

    /// A fresh jittered exponential backoff sequence for one call.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// A backoff sequence for polling operations (no jitter needed: one poller
    /// per operation).
    pub(crate) fn poll_backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.poll_min)
            .with_max_delay(self.poll_max)
            .with_factor(1.5)
            .without_max_times()
            .build()
    }
}

/// Paces one wait of a call that has its own deadline (an operation poll, a
/// re-read after an etag conflict, a wait for IAM to settle): hands out the
/// next delay of a backoff sequence as long as sleeping it still ends before
/// the deadline. Every such loop asks the same question, "next delay or give
/// up?", so it is answered here once.
pub(crate) struct Pacer {
    started: Instant,
    deadline: Duration,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    /// Used if the sequence ever runs dry.
    fallback: Duration,
}

impl Pacer {
    /// Jittered backoff from [`RetryPolicy::backoff`], for retries and re-reads.
    pub(crate) fn retry(policy: &RetryPolicy, deadline: Duration) -> Self {
        Self {
            started: Instant::now(),
            deadline,
            delays: Box::new(policy.backoff()),
            fallback: policy.max_delay,
        }
    }

    /// Polling intervals from [`RetryPolicy::poll_backoff`], for operations.
    pub(crate) fn poll(policy: &RetryPolicy, deadline: Duration) -> Self {
        Self {
            started: Instant::now(),
            deadline,
            delays: Box::new(policy.poll_backoff()),
            fallback: policy.poll_max,
        }
    }

    /// Time left before the deadline (zero once it has passed).
    pub(crate) fn left(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }

    /// The next delay, or `None` when sleeping it would end past the deadline.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.delays.next().unwrap_or(self.fallback);
        (self.started.elapsed() + delay <= self.deadline).then_some(delay)
    }

    /// Sleeps the next delay; `false` (at once, without sleeping) when that
    /// would end past the deadline.
    pub(crate) async fn pause(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }
}

/// How fast a partition's rate grows while its calls succeed: requests per
/// second gained per second of successes (each success adds `1 / rate`).
const RATE_GAIN: f64 = 1.0;
/// The share of its rate a partition keeps when a call is refused with 429.
const RATE_CUT: f64 = 0.8;
/// The slowest a partition is ever paced, in requests per second.
const MIN_RATE: f64 = 0.5;
/// A rate this high is no limit at all (the partition is no longer paced).
const MAX_RATE: f64 = 100_000.0;

/// Adaptive pacing of the calls of one client, per quota partition (a Google
/// API and the project its call names, as Google's rate quotas are kept): a
/// partition starts unpaced, as fast as the callers' own concurrency
/// (`--parallelism`, the read fan-out) sends; its first 429 sets its rate to
/// the calls that succeeded in the last second, and from then on each
/// success raises the rate a little (about [`RATE_GAIN`] requests per second
/// every second) and each 429 cuts it to [`RATE_CUT`] of itself (once per
/// round: a 429 of a call sent before the last cut cuts nothing). Calls of a
/// paced partition leave at `1 / rate` intervals, so `wi` runs at the quota
/// rather than below it or far into it. A `Retry-After`, when the server
/// sends one, also holds the whole partition until then; Google's
/// `RESOURCE_EXHAUSTED` sends none, and the refused call itself backs off
/// under the [`RetryPolicy`].
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    partitions: std::sync::Mutex<HashMap<(&'static str, String), Throttle>>,
}

#[derive(Debug)]
struct Throttle {
    /// Requests per second; `None` until the first 429.
    rate: Option<f64>,
    /// When the next call may leave.
    next_at: Instant,
    /// When the rate was last cut.
    cut_at: Option<Instant>,
    /// Successes of the last second (until the partition is paced).
    recent: VecDeque<Instant>,
}

impl Throttles {
    fn with<R>(&self, api: &'static str, project: &str, f: impl FnOnce(&mut Throttle) -> R) -> R {
        let mut map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let t = map
            .entry((api, project.to_string()))
            .or_insert_with(|| Throttle {
                rate: None,
                next_at: Instant::now(),
                cut_at: None,
                recent: VecDeque::new(),
            });
        f(t)
    }

    /// Waits for the partition's next slot and returns it (when the call leaves).
    pub(crate) async fn admit(&self, api: &'static str, project: &str) -> Instant {
        let slot = self.with(api, project, |t| {
            let now = Instant::now();
            let slot = t.next_at.max(now);
            if let Some(rate) = t.rate {
                t.next_at = slot + Duration::from_secs_f64(1.0 / rate);
            }
            slot
        });
        tokio::time::sleep_until(slot).await;
        slot
    }

    /// A call of the partition succeeded.
    pub(crate) fn succeeded(&self, api: &'static str, project: &str) {
        self.with(api, project, |t| {
            let now = Instant::now();
            match &mut t.rate {
                Some(rate) => *rate = (*rate + RATE_GAIN / rate.max(1.0)).min(MAX_RATE),
                None => {
                    t.recent.push_back(now);
                    while t
                        .recent
                        .front()
                        .is_some_and(|s| now.duration_since(*s) > Duration::from_secs(1))
                    {
                        t.recent.pop_front();
                    }
                }
            }
        });
    }

    /// A call of the partition sent at `sent` was refused with 429.
    pub(crate) fn throttled(
        &self,
        api: &'static str,
        project: &str,
        sent: Instant,
        retry_after: Option<Duration>,
    ) {
        self.with(api, project, |t| {
            let now = Instant::now();
            if let Some(after) = retry_after {
                t.next_at = t.next_at.max(now + after);
            }
            if t.cut_at.is_some_and(|cut| sent <= cut) {
                return;
            }
            let rate = match t.rate {
                Some(rate) => rate * RATE_CUT,
                None => t
                    .recent
                    .iter()
                    .filter(|s| now.duration_since(**s) <= Duration::from_secs(1))
                    .count() as f64,
            };
            let rate = rate.max(MIN_RATE);
            t.rate = Some(rate);
            t.recent.clear();
            t.cut_at = Some(now);
            t.next_at = t.next_at.max(now + Duration::from_secs_f64(1.0 / rate));
            tracing::debug!(api, project, rate, "pacing after 429");
        });
    }

    /// The partition's rate in requests per second; `None` while unpaced.
    pub(crate) fn rate(&self, api: &'static str, project: &str) -> Option<f64> {
        self.with(api, project, |t| t.rate)
    }
}

/// Counters shared by all clones of a client.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt counts).
    pub requests: u64,
    /// Attempts that were retried (429, 5xx, transport, etag conflicts, ...).
    pub retries: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ClientStats {
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// Runs `attempt` until it succeeds, fails with an error `retry_on` rejects,
/// or the policy's deadline / retry budget is spent; returns the last error then.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    counters: &Arc<Counters>,
    what: &str,
    retry_on: impl Fn(&GcpError) -> bool,
    mut attempt: F,
) -> Result<T, GcpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, GcpError>>,
{
    let start = Instant::now();
    let mut backoff = policy.backoff();
    let mut retries = 0usize;
    let mut transport_retries = 0usize;
    loop {
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !retry_on(&err) || retries >= policy.max_retries {
            return Err(err);
        }
        if err.is_transport() {
            if transport_retries >= MAX_TRANSPORT_RETRIES {
                return Err(err);
            }
            transport_retries += 1;
        }
        let mut delay = backoff.next().unwrap_or(policy.max_delay);
        if let Some(after) = err.retry_after() {
            delay = delay.max(after);
        }
        if start.elapsed() + delay > policy.max_elapsed {
            return Err(err);
        }
        retries += 1;
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            call = what,
            attempt = retries,
            delay_ms = delay.as_millis() as u64,
            error = %err,
            "retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::now_utc();
    let secs = (when - now).whole_seconds().clamp(0, 3600);
    Some(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            ..RetryPolicy::fast()
        };
        let delays: Vec<_> = p.backoff().take(6).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(80)));
        assert!(delays[0] >= Duration::from_millis(10));
        assert!(delays[5] >= Duration::from_millis(40));
    }

    #[test]
    fn pacer_stops_before_a_delay_that_would_pass_the_deadline() {
        let p = RetryPolicy {
            poll_min: Duration::from_millis(20),
            poll_max: Duration::from_millis(20),
            ..RetryPolicy::fast()
        };
        let mut pacer = Pacer::poll(&p, Duration::from_secs(10));
        assert_eq!(pacer.next_delay(), Some(Duration::from_millis(20)));
        assert_eq!(pacer.next_delay(), Some(Duration::from_millis(20)));
        assert!(pacer.left() <= Duration::from_secs(10));
        let mut spent = Pacer::retry(&p, Duration::from_millis(4));
        assert_eq!(
            spent.next_delay(),
            None,
            "5 ms minimum delay > 4 ms deadline"
        );
        assert_eq!(Pacer::poll(&p, Duration::ZERO).left(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_partition_is_unpaced_until_a_429_then_grows_and_is_cut() {
        let t = Throttles::default();
        assert_eq!(t.rate("iam", "p"), None);
        for _ in 0..10 {
            t.admit("iam", "p").await;
            t.succeeded("iam", "p");
        }
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, None);
        assert_eq!(
            t.rate("iam", "p"),
            Some(10.0),
            "the successes of the last second"
        );
        assert_eq!(t.rate("iam", "q"), None, "another project, its own pace");
        assert_eq!(t.rate("container", "p"), None, "another API, its own pace");
        // A 429 of a call sent before the cut cuts nothing more.
        t.throttled("iam", "p", sent, None);
        assert_eq!(t.rate("iam", "p"), Some(10.0));
        // Paced: calls leave 1 / rate apart.
        let a = t.admit("iam", "p").await;
        let b = t.admit("iam", "p").await;
        assert_eq!(b - a, Duration::from_millis(100));
        // Successes raise the rate; a later 429 cuts it to 80%.
        for _ in 0..10 {
            t.succeeded("iam", "p");
        }
        let grown = t.rate("iam", "p").unwrap();
        assert!(grown > 10.9 && grown < 11.0, "{grown}");
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, None);
        let cut = t.rate("iam", "p").unwrap();
        assert!((cut - grown * RATE_CUT).abs() < 1e-9, "{cut}");
        // Retry-After holds the whole partition.
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, Some(Duration::from_millis(300)));
        let next = t.admit("iam", "p").await;
        assert!(
            next - sent >= Duration::from_millis(300),
            "{:?}",
            next - sent
        );
    }

    #[tokio::test]
    async fn gives_up_on_non_retryable_and_when_budget_is_spent() {
        let counters = Arc::new(Counters::default());
        let p = RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retries: 5,
            ..RetryPolicy::fast()
        };
        let mut n = 0;
        let r: Result<(), _> = run(&p, &counters, "x", GcpError::is_retryable, || {
            n += 1;
            async { Err(GcpError::Config("no".into())) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(n, 1);
        let mut m = 0;
        let r: Result<(), _> = run(&p, &counters, "x", GcpError::is_retryable, || {
            m += 1;
            async { Err(GcpError::Transport("reset".into())) }
        })
        .await;
        assert!(matches!(r, Err(GcpError::Transport(_))));
        assert_eq!(
            m,
            MAX_TRANSPORT_RETRIES + 1,
            "transport failures: a short budget"
        );
        let before = counters.snapshot().retries;
        let mut k = 0;
        let r: Result<(), _> = run(&p, &counters, "x", GcpError::is_retryable, || {
            k += 1;
            async { Err(crate::gcp::error::api_error("c", "x", 503, None, "")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(k, p.max_retries + 1, "5xx: the whole budget");
        assert_eq!(counters.snapshot().retries - before, p.max_retries as u64);
        let mut u = 0;
        let r: Result<(), _> = run(&p, &counters, "x", GcpError::is_retryable, || {
            u += 1;
            async { Err(GcpError::Unreachable("refused".into())) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(u, 1, "an unreachable endpoint is never retried");
    }
}
