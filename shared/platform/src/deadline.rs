//! Deadlines: a call's deadline is the shorter of the caller's (`grpc-timeout`) and
//! the server's `request_timeout_ms`. The middleware ends a call that outlives it with
//! `DEADLINE_EXCEEDED` (so work against a slow dependency does not pile up), and the
//! calls a handler makes to other services inherit what is left of it ([`remaining`]).

use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The `grpc-timeout` header's value (`100m`, `5S`, …) as a duration.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Runs `work` with `deadline` visible to [`remaining`].
pub async fn scope<F: std::future::Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// What is left of the current call's deadline, if the task serves one.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// `default`, or less when the current call's deadline is nearer.
pub fn budget(default: Duration) -> Duration {
    remaining().map_or(default, |left| left.min(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_junk_does_not() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for junk in ["", "m", "10", "10x", "123456789S", "-1S", "1.5S", "界S"] {
            assert_eq!(parse_grpc_timeout(junk), None, "{junk}");
        }
    }

    #[tokio::test]
    async fn the_remaining_budget_shrinks_to_the_calls_deadline() {
        assert_eq!(remaining(), None);
        assert_eq!(budget(Duration::from_secs(10)), Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_millis(200);
        scope(deadline, async {
            let left = budget(Duration::from_secs(10));
            assert!(left <= Duration::from_millis(200) && left > Duration::from_millis(100));
        })
        .await;
    }
}
