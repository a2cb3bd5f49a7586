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

/// Calls in flight a quota partition starts with (or the ceiling, if lower).
pub const START_IN_FLIGHT: usize = 16;
/// The ceiling of calls in flight per quota partition unless the client is
/// told otherwise (`--parallelism`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// The share of the limit a server announces (`quota_limit_value` of a 429's
/// `ErrorInfo`) that a partition is paced at: a margin for the calls of
/// other clients and for the server's own clock.
const ANNOUNCED_SHARE: f64 = 0.95;

/// Adaptive concurrency and pacing of the calls of one client, per quota
/// partition (a Google API and the project its call names, as Google keeps
/// rate quotas).
///
/// - **Calls in flight**: a partition starts with [`START_IN_FLIGHT`] calls
///   at once and, while its calls succeed, grows by one per success (twice
///   as many each round trip) up to the client's ceiling (`--parallelism`);
///   a 429 halves it, and from then on it grows by one per round trip. So a
///   read of thousands of account policies runs as wide as the server takes
///   it, and no wider than the ceiling.
/// - **Rate**: a partition is unpaced until its first 429. Then its rate is
///   what the server announced (the 429's `quota_limit_value`, per minute
///   or per second, times [`ANNOUNCED_SHARE`]) or, when it announced none,
///   the calls that succeeded in the last second; from then on each success
///   raises the rate a little (about [`RATE_GAIN`] requests per second every
///   second, never above an announced limit) and each 429 cuts it to
///   [`RATE_CUT`] of itself (once per round: a 429 of a call sent before the
///   last cut cuts nothing). Calls of a paced partition leave `1 / rate`
///   apart, so `wi` runs at the quota rather than below it or far into it.
///   A `Retry-After`, when the server sends one, also holds the whole
///   partition until then; Google's `RESOURCE_EXHAUSTED` sends none, and the
///   refused call itself backs off under the [`RetryPolicy`].
#[derive(Debug)]
pub(crate) struct Throttles {
    partitions: std::sync::Mutex<HashMap<(&'static str, String), Throttle>>,
    /// The most calls in flight per partition.
    max_in_flight: usize,
}

impl Default for Throttles {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_IN_FLIGHT)
    }
}

#[derive(Debug)]
struct Throttle {
    /// Requests per second; `None` until the first 429.
    rate: Option<f64>,
    /// The rate the server announced in a 429, per second.
    announced: Option<f64>,
    /// When the next call may leave.
    next_at: Instant,
    /// When the rate was last cut.
    cut_at: Option<Instant>,
    /// Successes of the last second (until the partition is paced).
    recent: VecDeque<Instant>,
    /// Calls allowed in flight (fractional while it grows by 1 per round).
    window: f64,
    /// Whether the window still doubles each round (no 429 yet).
    slow_start: bool,
    /// Calls in flight now.
    in_flight: usize,
    /// Wakes callers waiting for a place in the window.
    freed: Arc<tokio::sync::Notify>,
}

/// A call's place among its partition's calls in flight; freed when dropped
/// (also when the call is abandoned).
pub(crate) struct InFlight<'a> {
    throttles: &'a Throttles,
    api: &'static str,
    project: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let freed = self.throttles.with(self.api, &self.project, |t| {
            t.in_flight = t.in_flight.saturating_sub(1);
            t.freed.clone()
        });
        freed.notify_one();
    }
}

impl Throttles {
    fn with<R>(&self, api: &'static str, project: &str, f: impl FnOnce(&mut Throttle) -> R) -> R {
        let mut map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let t = map
            .entry((api, project.to_string()))
            .or_insert_with(|| Throttle {
                rate: None,
                announced: None,
                next_at: Instant::now(),
                cut_at: None,
                recent: VecDeque::new(),
                window: START_IN_FLIGHT.min(self.max_in_flight) as f64,
                slow_start: true,
                in_flight: 0,
                freed: Arc::new(tokio::sync::Notify::new()),
            });
        f(t)
    }

    /// Throttles whose partitions allow at most `max_in_flight` calls at once.
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self {
            partitions: std::sync::Mutex::new(HashMap::new()),
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// Waits for a place among the partition's calls in flight.
    pub(crate) async fn enter(&self, api: &'static str, project: &str) -> InFlight<'_> {
        loop {
            let freed = self.with(api, project, |t| {
                if t.in_flight < (t.window as usize).max(1) {
                    t.in_flight += 1;
                    None
                } else {
                    Some(t.freed.clone())
                }
            });
            let Some(freed) = freed else {
                return InFlight {
                    throttles: self,
                    api,
                    project: project.to_string(),
                };
            };
            let wait = freed.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            // Freed between the check and `enable`: look again.
            let free = self.with(api, project, |t| t.in_flight < (t.window as usize).max(1));
            if !free {
                wait.await;
            }
        }
    }

    /// Calls the partition allows in flight now.
    #[cfg(test)]
    pub(crate) fn window(&self, api: &'static str, project: &str) -> usize {
        self.with(api, project, |t| t.window as usize)
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
        let max = self.max_in_flight as f64;
        let grown = self.with(api, project, |t| {
            let now = Instant::now();
            let before = t.window as usize;
            t.window = if t.slow_start {
                t.window + 1.0
            } else {
                t.window + 1.0 / t.window.max(1.0)
            }
            .min(max);
            let ceiling = t.announced.map_or(MAX_RATE, |a| a * ANNOUNCED_SHARE);
            match &mut t.rate {
                Some(rate) => *rate = (*rate + RATE_GAIN / rate.max(1.0)).min(ceiling),
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
            ((t.window as usize) > before).then(|| t.freed.clone())
        });
        if let Some(freed) = grown {
            freed.notify_waiters();
        }
    }

    /// A call of the partition sent at `sent` was refused with 429.
    pub(crate) fn throttled(
        &self,
        api: &'static str,
        project: &str,
        sent: Instant,
        retry_after: Option<Duration>,
        announced: Option<f64>,
    ) {
        self.with(api, project, |t| {
            let now = Instant::now();
            if let Some(after) = retry_after {
                t.next_at = t.next_at.max(now + after);
            }
            let first_announcement = announced.is_some() && t.announced.is_none();
            if let Some(a) = announced.filter(|a| a.is_finite() && *a > 0.0) {
                t.announced = Some(a);
            }
            if t.cut_at.is_some_and(|cut| sent <= cut) && !first_announcement {
                return;
            }
            t.slow_start = false;
            t.window = (t.window / 2.0).max(1.0);
            let rate = match (t.rate, t.announced) {
                (_, Some(a)) if first_announcement => a * ANNOUNCED_SHARE,
                (Some(rate), _) => rate * RATE_CUT,
                (None, _) => t
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
///
/// An error `requeue` accepts (a 429 of a partition that [`Throttles`] now
/// paces) is resent as soon as the pace admits it, after no more than the
/// server's `Retry-After`, instead of after the backoff: the pace already
/// spaces the partition's calls at the quota, and a refused call that sleeps
/// seconds on top of that leaves the quota unused. Such resends still count
/// as retries and end at the deadline, but not against `max_retries`: each
/// 429 cuts the pace, so they cannot go on at the same rate.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    counters: &Arc<Counters>,
    what: &str,
    retry_on: impl Fn(&GcpError) -> bool,
    requeue: impl Fn(&GcpError) -> bool,
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
        if !retry_on(&err) {
            return Err(err);
        }
        if requeue(&err) {
            let delay = err.retry_after().unwrap_or(Duration::ZERO);
            if start.elapsed() + delay > policy.max_elapsed {
                return Err(err);
            }
            counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(call = what, error = %err, "resending at the partition's pace");
            tokio::time::sleep(delay).await;
            continue;
        }
        if retries >= policy.max_retries {
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
        t.throttled("iam", "p", sent, None, None);
        assert_eq!(
            t.rate("iam", "p"),
            Some(10.0),
            "the successes of the last second"
        );
        assert_eq!(t.rate("iam", "q"), None, "another project, its own pace");
        assert_eq!(t.rate("container", "p"), None, "another API, its own pace");
        // A 429 of a call sent before the cut cuts nothing more.
        t.throttled("iam", "p", sent, None, None);
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
        t.throttled("iam", "p", sent, None, None);
        let cut = t.rate("iam", "p").unwrap();
        assert!((cut - grown * RATE_CUT).abs() < 1e-9, "{cut}");
        // Retry-After holds the whole partition.
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, Some(Duration::from_millis(300)), None);
        let next = t.admit("iam", "p").await;
        assert!(
            next - sent >= Duration::from_millis(300),
            "{:?}",
            next - sent
        );
    }

    #[tokio::test]
    async fn a_partitions_calls_in_flight_grow_while_they_succeed_and_halve_on_a_429() {
        let t = Throttles::new(40);
        assert_eq!(t.window("iam", "p"), START_IN_FLIGHT);
        // The window's places are taken; one more waits for a freed place.
        let held: Vec<_> =
            futures::future::join_all((0..START_IN_FLIGHT).map(|_| t.enter("iam", "p"))).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), t.enter("iam", "p")).await;
        assert!(waiting.is_err(), "a 17th call waits while 16 are in flight");
        let other = tokio::time::timeout(Duration::from_millis(50), t.enter("iam", "q")).await;
        assert!(other.is_ok(), "another project has its own window");
        drop(other);
        drop(held);
        // Each success widens it by one (twice as wide each round trip), up to the ceiling.
        for _ in 0..10 {
            t.succeeded("iam", "p");
        }
        assert_eq!(t.window("iam", "p"), 26);
        for _ in 0..100 {
            t.succeeded("iam", "p");
        }
        assert_eq!(t.window("iam", "p"), 40, "never past --parallelism");
        // A 429 halves it; then it grows by one per round trip (1 / window per success).
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, None, None);
        assert_eq!(t.window("iam", "p"), 20);
        for _ in 0..20 {
            t.succeeded("iam", "p");
        }
        assert_eq!(
            t.window("iam", "p"),
            20,
            "grows by under one in a round of 20"
        );
        for _ in 0..2 {
            t.succeeded("iam", "p");
        }
        assert_eq!(t.window("iam", "p"), 21);
        // A waiter is woken when the window widens, not only when a call ends.
        let t = Throttles::new(64);
        let held: Vec<_> =
            futures::future::join_all((0..START_IN_FLIGHT).map(|_| t.enter("iam", "p"))).await;
        let (entered, ()) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(5), t.enter("iam", "p")),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t.succeeded("iam", "p");
            }
        );
        assert!(
            entered.is_ok(),
            "the widened window let the waiting call in"
        );
        drop(held);
    }

    #[tokio::test]
    async fn an_announced_quota_sets_the_pace_and_caps_its_growth() {
        let t = Throttles::default();
        for _ in 0..50 {
            t.succeeded("iam", "p");
        }
        let sent = t.admit("iam", "p").await;
        t.throttled("iam", "p", sent, None, Some(20.0));
        let rate = t.rate("iam", "p").unwrap();
        assert!(
            (rate - 20.0 * ANNOUNCED_SHARE).abs() < 1e-9,
            "{rate}: not the 50 successes"
        );
        for _ in 0..1000 {
            t.succeeded("iam", "p");
        }
        let grown = t.rate("iam", "p").unwrap();
        assert!(
            (grown - 20.0 * ANNOUNCED_SHARE).abs() < 1e-9,
            "{grown}: never past what was announced"
        );
    }

    /// Runs a call that always fails with `failure` (nothing requeued):
    /// the last error and how many attempts were made.
    async fn always_failing(
        p: &RetryPolicy,
        counters: &Arc<Counters>,
        failure: fn() -> GcpError,
    ) -> (Result<(), GcpError>, usize) {
        let mut attempts = 0;
        let r = run(
            p,
            counters,
            "x",
            GcpError::is_retryable,
            |_| false,
            || {
                attempts += 1;
                async move { Err(failure()) }
            },
        )
        .await;
        (r, attempts)
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
        let (r, n) = always_failing(&p, &counters, || GcpError::Config("no".into())).await;
        assert!(r.is_err());
        assert_eq!(n, 1);
        let (r, m) = always_failing(&p, &counters, || GcpError::Transport("reset".into())).await;
        assert!(matches!(r, Err(GcpError::Transport(_))));
        assert_eq!(
            m,
            MAX_TRANSPORT_RETRIES + 1,
            "transport failures: a short budget"
        );
        let before = counters.snapshot().retries;
        let (r, k) = always_failing(&p, &counters, || {
            crate::gcp::error::api_error("c", "x", 503, None, "")
        })
        .await;
        assert!(r.is_err());
        assert_eq!(k, p.max_retries + 1, "5xx: the whole budget");
        assert_eq!(counters.snapshot().retries - before, p.max_retries as u64);
        let (r, u) =
            always_failing(&p, &counters, || GcpError::Unreachable("refused".into())).await;
        assert!(r.is_err());
        assert_eq!(u, 1, "an unreachable endpoint is never retried");
    }

    #[tokio::test]
    async fn a_paced_429_is_resent_without_the_backoff_and_past_the_retry_budget() {
        let counters = Arc::new(Counters::default());
        // A backoff this long would make the six resends take minutes.
        let p = RetryPolicy {
            min_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60),
            max_retries: 3,
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let mut n = 0;
        let r: Result<u32, _> = run(
            &p,
            &counters,
            "x",
            GcpError::is_retryable,
            |e| e.status() == Some(429),
            || {
                n += 1;
                let n = n;
                async move {
                    if n <= 6 {
                        Err(crate::gcp::error::api_error("iam", "x", 429, None, ""))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(
            r.unwrap(),
            7,
            "six refusals, more than max_retries, then the answer"
        );
        assert_eq!(counters.snapshot().retries, 6);
        assert!(
            started.elapsed() < p.min_delay,
            "no backoff sleep between resends: {:?}",
            started.elapsed()
        );
    }
}
