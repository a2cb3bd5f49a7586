//! The one clock and timestamp formatter of the emulator: Google prints
//! RFC 3339 with microseconds (or whole seconds for key validity), the
//! Kubernetes side whole seconds. One copy, so both halves agree.

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with microseconds, as Google prints timestamps.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// RFC 3339 UTC with whole seconds (key validity times).
pub(crate) fn rfc3339_seconds(ms: i64) -> String {
    rfc3339_unix(ms / 1000)
}

/// A Unix time (seconds) as an RFC 3339 UTC timestamp with whole seconds,
/// as the Kubernetes API server writes them.
pub(crate) fn rfc3339_unix(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// Seconds since the epoch.
pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Now, as the Kubernetes API server writes timestamps.
pub(crate) fn now_rfc3339_unix() -> String {
    rfc3339_unix(now_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
        assert_eq!(rfc3339_seconds(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_unix(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
