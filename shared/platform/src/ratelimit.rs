//! Per-caller rate limits on the RPCs phones call (`server.rate_limit`): each caller
//! (role and subject) has one token bucket shared by those RPCs, refilled at
//! `per_second` up to `burst`. A call without a token is `RESOURCE_EXHAUSTED`
//! (`RATE_LIMITED`) with `RetryInfo` saying when the next one is due. Services are
//! not limited: they have their own concurrency limit and back-off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::RateLimitSettings;

/// Buckets kept before idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;
/// A bucket idle this long is full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    methods: Vec<String>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            per_second: settings.per_second,
            burst: f64::from(settings.burst.max(1)),
            methods: settings.methods.clone(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether calls to the HTTP/2 `path` are limited.
    pub fn applies_to(&self, path: &str) -> bool {
        self.per_second > 0.0
            && path
                .rsplit('/')
                .next()
                .is_some_and(|method| self.methods.iter().any(|m| m == method))
    }

    /// Takes a token from `caller`'s bucket at `now`, or says how long until one is
    /// due.
    pub fn take(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock means a panic elsewhere; do not turn it into refusals.
            return Ok(());
        };
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < IDLE);
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(&RateLimitSettings {
            per_second,
            burst,
            methods: vec!["GetMyRoute".into()],
        })
    }

    #[test]
    fn a_burst_passes_then_calls_wait_for_the_refill() {
        let limiter = limiter(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("driver:d-1", start).is_ok());
        }
        let wait = limiter.take("driver:d-1", start).expect_err("burst spent");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Another caller has a bucket of their own.
        assert!(limiter.take("driver:d-2", start).is_ok());
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.take("driver:d-1", later).is_ok());
        assert!(limiter.take("driver:d-1", later).is_err());
        // Idle for long, the bucket is full again but never beyond the burst.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take("driver:d-1", much_later).is_ok());
        }
        assert!(limiter.take("driver:d-1", much_later).is_err());
    }

    #[test]
    fn only_the_configured_methods_are_limited_and_zero_turns_limits_off() {
        let limiter = limiter(1.0, 1);
        assert!(limiter.applies_to("/distnet.logistics.v1.LogisticsService/GetMyRoute"));
        assert!(!limiter.applies_to("/distnet.logistics.v1.LogisticsService/GetPlan"));
        assert!(!self::limiter(0.0, 1).applies_to("/distnet.logistics.v1.LogisticsService/GetMyRoute"));
    }
}
