//! Per-caller rate limits (token buckets), for routes whose cost an attacker with a valid key
//! could otherwise multiply: audit proofs read tiles and write an audit entry each. Pure
//! arithmetic on the time passed in, so tests move the clock.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{Timestamp, VaultError};

/// At most this many callers are tracked; beyond, the oldest-refilled are forgotten (a
/// forgotten caller starts with a full bucket, which only ever loosens the limit).
const MAX_CALLERS: usize = 10_000;

/// A token bucket per caller: `per_second` requests a second on average, `burst` at once;
/// `per` says what a caller is in the refusal ("per API key", "per subject").
pub(crate) struct RateLimit {
    per_second: f64,
    burst: f64,
    per: &'static str,
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

impl RateLimit {
    pub(crate) fn new(per_second: f64, burst: f64, per: &'static str) -> Self {
        Self {
            per_second,
            burst,
            per,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The average rate as the refusal says it: how many, a second or (when slower) a minute.
    fn rate(&self) -> (f64, &'static str) {
        if self.per_second >= 1.0 {
            (self.per_second, "a second")
        } else {
            ((self.per_second * 60.0).round(), "a minute")
        }
    }

    /// Takes one request from `caller`'s bucket at `now`, or refuses with 429.
    pub(crate) fn take(&self, caller: &str, now: Timestamp, what: &str) -> Result<(), VaultError> {
        let refused = || {
            VaultError::too_many_requests(
                "rate_limited",
                format!(
                    "at most {} {what} {} {} (bursts of {}); retry shortly",
                    self.rate().0,
                    self.rate().1,
                    self.per,
                    self.burst
                ),
            )
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(refused());
        };
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            let oldest = buckets.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                buckets.remove(&oldest);
            }
        }
        let (tokens, at) = buckets.entry(caller.to_owned()).or_insert((self.burst, now.0));
        let elapsed = (now.0.saturating_sub(*at)).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *at = now.0.max(*at);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_on_a_moved_clock() {
        let limit = RateLimit::new(10.0, 5.0, "per API key");
        for _ in 0..5 {
            limit.take("a", Timestamp(0), "proofs").unwrap();
        }
        let refused = limit.take("a", Timestamp(0), "proofs").unwrap_err();
        assert_eq!(refused.code, "rate_limited");
        assert!(
            refused.message.contains("at most 10 proofs a second per API key"),
            "{}",
            refused.message
        );
        // Another caller has a bucket of its own.
        limit.take("b", Timestamp(0), "proofs").unwrap();
        // 100 ms later one more token is there, and only one.
        limit.take("a", Timestamp(100), "proofs").unwrap();
        assert!(limit.take("a", Timestamp(100), "proofs").is_err());
        // A clock moved back gives nothing.
        assert!(limit.take("a", Timestamp(50), "proofs").is_err());
        // A long pause refills to the burst, not beyond.
        for _ in 0..5 {
            limit.take("a", Timestamp(60_000), "proofs").unwrap();
        }
        assert!(limit.take("a", Timestamp(60_000), "proofs").is_err());
    }
}
