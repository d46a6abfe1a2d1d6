//! Keyed rate limits (GCRA token buckets from `governor`), for login attempts per email
//! and per client address, and for sends per user. Memory is bounded by sweeping keys
//! whose buckets are full again. Each limiter has a name, the `limiter` label of the
//! `parley_rate_limit_hits_total` metric its refusals are counted in.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// A key was over its limit; retry after this long.
#[derive(Debug, Clone, Copy)]
pub struct RateLimited {
    /// How long until the next attempt would be allowed.
    pub retry_after: Duration,
}

/// A named rate limit per key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: Arc<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Clone for KeyedLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            limiter: self.limiter.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedLimiter<K> {
    /// `per_minute` attempts a minute, all of which may come at once.
    pub fn per_minute(name: &'static str, per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self::with_quota(name, Quota::per_minute(n).allow_burst(n))
    }

    /// `per_second` sustained, with bursts of up to `burst`.
    pub fn per_second(name: &'static str, per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self::with_quota(name, Quota::per_second(rate).allow_burst(burst))
    }

    fn with_quota(name: &'static str, quota: Quota) -> Self {
        Self {
            name,
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
        }
    }

    /// Counts one attempt for `key`; a refusal is also counted in the metrics.
    pub fn check(&self, key: &K) -> Result<(), RateLimited> {
        self.limiter.check_key(key).map_err(|not_until| {
            crate::metrics::rate_limited(self.name);
            RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }
        })
    }

    /// Forgets keys whose buckets have refilled, so memory follows recent activity.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
