//! Login throttling that stops password guessing without letting a stranger lock an
//! account's owner out.
//!
//! A limit per email alone is a lock-out button: anyone can spend an account's budget
//! with wrong passwords, and then its owner's right password is refused too. So the
//! budget belongs to a pair, (email, client address):
//!
//! - **Per pair, with exponential backoff.** An address may fail
//!   [`LoginPolicy::free_failures`] times for one email; from that failure on it must
//!   wait before its next attempt there, 1 s, then 2 s, 4 s, ... up to 15 min, answered
//!   429 with `Retry-After` meanwhile. A success clears the pair; an hour without
//!   attempts forgets it. One address thus gets about a dozen guesses in the first hour
//!   and four an hour after that.
//! - **Per email, counting failures only, never refusing.** When an email collects more
//!   than [`LoginPolicy::email_failures_per_minute`] failures from all addresses
//!   together, it is under a distributed attack, and free failures are withdrawn for it:
//!   every failure, from any address, makes that address wait (1 s, doubling). An
//!   address with no failure for that email still gets its attempt at once, so the owner
//!   logging in from their own device is never refused; the attacker's addresses each
//!   get one guess before backing off.
//!
//! An attempt is counted as a failure when it starts, and the count is cleared if the
//! password was right: concurrent attempts from one address cannot slip past the count
//! while their passwords are being checked. IPv6 clients are keyed by their /64 (one
//! host usually holds a whole /64), IPv4-mapped ones by their IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::RateLimited;

/// The name of this guard's refusals in `parley_rate_limit_hits_total`.
pub const LIMITER: &str = "login_backoff";

/// How much guessing is allowed.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failures for one email from one address before that address must wait.
    pub free_failures: u32,
    /// Failures per minute for one email from all addresses together past which every
    /// failure makes its address wait.
    pub email_failures_per_minute: u32,
    /// The first wait; each further failure doubles it.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// A pair with no attempt for this long starts afresh.
    pub forget_after: Duration,
}

impl LoginPolicy {
    /// The policy with these two budgets and the standard waits (1 s doubling to 15 min,
    /// forgotten after an hour).
    pub fn new(free_failures: u32, email_failures_per_minute: u32) -> Self {
        Self {
            free_failures: free_failures.max(1),
            email_failures_per_minute: email_failures_per_minute.max(1),
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }

    /// The wait after the `failures`-th failure when `free` are allowed.
    fn wait_after(&self, failures: u32, free: u32) -> Option<Duration> {
        let over = failures.checked_sub(free)?;
        let factor = 2u32.checked_pow(over.min(31)).unwrap_or(u32::MAX);
        Some(self.first_wait.saturating_mul(factor).min(self.max_wait))
    }
}

/// The throttle of login attempts. Cheap to share behind an `Arc`; one lock, held for a
/// few map operations.
pub struct LoginGuard {
    policy: LoginPolicy,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, IpAddr), Pair>,
    emails: HashMap<String, Window>,
}

/// Failures of one email from one address.
struct Pair {
    failures: u32,
    last_attempt: Instant,
    wait_until: Option<Instant>,
}

/// Failures of one email in the current and the previous minute.
struct Window {
    start: Instant,
    count: u32,
    previous: u32,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Window {
    /// Failures in the last minute, the previous minute's weighted by how much of it
    /// still falls in (a sliding window from two counters).
    fn recent(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= 2 * MINUTE {
            return 0.0;
        }
        if elapsed >= MINUTE {
            let into = (elapsed - MINUTE).as_secs_f64() / MINUTE.as_secs_f64();
            return f64::from(self.count) * (1.0 - into);
        }
        let into = elapsed.as_secs_f64() / MINUTE.as_secs_f64();
        f64::from(self.count) + f64::from(self.previous) * (1.0 - into)
    }

    fn add(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= MINUTE {
            self.previous = if elapsed < 2 * MINUTE { self.count } else { 0 };
            self.count = 0;
            self.start = now;
        }
        self.count = self.count.saturating_add(1);
    }
}

/// One login attempt let through: say how it went. Dropped unsettled, it stays counted
/// as a failure.
#[must_use = "settle the attempt with succeeded() or failed()"]
pub struct LoginAttempt<'a> {
    guard: &'a LoginGuard,
    key: (String, IpAddr),
}

impl LoginAttempt<'_> {
    /// The password was right: the pair's failures are forgotten.
    pub fn succeeded(self) {
        self.guard.lock().pairs.remove(&self.key);
    }

    /// The password was wrong (or the email unknown): it counts against the email too.
    pub fn failed(self) {
        self.guard.failed_at(&self.key.0, Instant::now());
    }
}

impl LoginGuard {
    /// A guard with `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// Lets an attempt for `email` from `client` through, or says how long that client
    /// must wait before trying this email again.
    pub fn begin(&self, email: &str, client: IpAddr) -> Result<LoginAttempt<'_>, RateLimited> {
        self.begin_at(email, client, Instant::now())
            .inspect_err(|_| crate::metrics::rate_limited(LIMITER))
    }

    fn begin_at(
        &self,
        email: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<LoginAttempt<'_>, RateLimited> {
        let key = (email.to_owned(), rate_key(client));
        let mut state = self.lock();
        let under_attack = state
            .emails
            .get(email)
            .is_some_and(|w| w.recent(now) >= f64::from(self.policy.email_failures_per_minute));
        let pair = state.pairs.entry(key.clone()).or_insert(Pair {
            failures: 0,
            last_attempt: now,
            wait_until: None,
        });
        if now.saturating_duration_since(pair.last_attempt) > self.policy.forget_after {
            pair.failures = 0;
            pair.wait_until = None;
        }
        let free = if under_attack {
            1
        } else {
            self.policy.free_failures
        };
        // Under attack, failures from before it began make their address wait too.
        let last = pair.last_attempt;
        let wait_until = pair.wait_until.max(
            self.policy
                .wait_after(pair.failures, free)
                .map(|wait| last + wait),
        );
        if let Some(until) = wait_until.filter(|until| now < *until) {
            return Err(RateLimited {
                retry_after: until - now,
            });
        }
        // Counted now, cleared on success: see the module docs.
        pair.failures = pair.failures.saturating_add(1);
        pair.last_attempt = now;
        pair.wait_until = self.policy.wait_after(pair.failures, free).map(|w| now + w);
        drop(state);
        Ok(LoginAttempt { guard: self, key })
    }

    fn failed_at(&self, email: &str, now: Instant) {
        let mut state = self.lock();
        match state.emails.get_mut(email) {
            Some(window) => window.add(now),
            None => {
                state.emails.insert(
                    email.to_owned(),
                    Window {
                        start: now,
                        count: 1,
                        previous: 0,
                    },
                );
            }
        }
    }

    /// Forgets pairs idle past `forget_after` and emails with no failure for two
    /// minutes, so memory follows recent attempts.
    pub fn sweep(&self) {
        let now = Instant::now();
        let forget = self.policy.forget_after;
        let mut state = self.lock();
        state.pairs.retain(|_, p| {
            now.saturating_duration_since(p.last_attempt) <= forget
                || p.wait_until.is_some_and(|until| now < until)
        });
        state
            .emails
            .retain(|_, w| now.saturating_duration_since(w.start) < 2 * MINUTE);
        state.pairs.shrink_to_fit();
        state.emails.shrink_to_fit();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The maps stay consistent whatever panicked while holding the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The part of a client's address that identifies it for rate limits: an IPv4 address
/// (IPv4-mapped IPv6 included), or the /64 of an IPv6 one.
pub fn rate_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: &str = "ada@example.com";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fail(guard: &LoginGuard, client: IpAddr, now: Instant) -> Result<(), RateLimited> {
        let attempt = guard.begin_at(ADA, client, now)?;
        drop(attempt);
        guard.failed_at(ADA, now);
        Ok(())
    }

    #[test]
    fn an_address_waits_after_its_free_failures_and_the_wait_doubles() {
        let guard = LoginGuard::new(LoginPolicy::new(3, 1000));
        let attacker = ip("203.0.113.7");
        let t = Instant::now();
        for _ in 0..3 {
            fail(&guard, attacker, t).unwrap();
        }
        let wait = guard.begin_at(ADA, attacker, t).err().unwrap().retry_after;
        assert_eq!(wait, Duration::from_secs(1));
        let t = t + Duration::from_secs(1);
        fail(&guard, attacker, t).unwrap();
        let wait = guard.begin_at(ADA, attacker, t).err().unwrap().retry_after;
        assert_eq!(wait, Duration::from_secs(2));
        // The wait is capped.
        let mut t = t + wait;
        for _ in 0..40 {
            fail(&guard, attacker, t).unwrap();
            t += guard.begin_at(ADA, attacker, t).err().unwrap().retry_after;
        }
        let wait = guard.begin_at(ADA, attacker, t - Duration::from_secs(1));
        assert_eq!(wait.err().unwrap().retry_after, Duration::from_secs(1));
        fail(&guard, attacker, t).unwrap();
        let wait = guard.begin_at(ADA, attacker, t).err().unwrap().retry_after;
        assert_eq!(wait, Duration::from_secs(15 * 60));
    }

    #[test]
    fn the_owner_from_another_address_is_let_through_even_under_attack() {
        let guard = LoginGuard::new(LoginPolicy::new(3, 5));
        let t = Instant::now();
        // Twenty addresses fail once each: the email is under attack.
        for i in 0..20 {
            fail(&guard, ip(&format!("198.51.100.{i}")), t).unwrap();
        }
        // Every one of them now waits after its single failure, the first ones too...
        assert!(guard.begin_at(ADA, ip("198.51.100.19"), t).is_err());
        assert!(guard.begin_at(ADA, ip("198.51.100.0"), t).is_err());
        // ...and the owner, from an address with no failure, gets in at once.
        let owner = guard.begin_at(ADA, ip("192.0.2.1"), t).unwrap();
        owner.succeeded();
        assert!(guard.begin_at(ADA, ip("192.0.2.1"), t).is_ok());
    }

    #[test]
    fn a_success_clears_the_failures_of_its_address() {
        let guard = LoginGuard::new(LoginPolicy::new(3, 1000));
        let me = ip("192.0.2.1");
        let t = Instant::now();
        fail(&guard, me, t).unwrap();
        fail(&guard, me, t).unwrap();
        guard.begin_at(ADA, me, t).unwrap().succeeded();
        for _ in 0..3 {
            fail(&guard, me, t).unwrap();
        }
        assert!(guard.begin_at(ADA, me, t).is_err(), "three fresh failures");
    }

    #[test]
    fn failures_are_forgotten_after_an_hour_without_attempts() {
        let guard = LoginGuard::new(LoginPolicy::new(2, 1000));
        let me = ip("192.0.2.1");
        let t = Instant::now();
        fail(&guard, me, t).unwrap();
        let t = t + Duration::from_secs(61 * 60);
        fail(&guard, me, t).unwrap();
        assert!(
            guard.begin_at(ADA, me, t).is_ok(),
            "one failure counted, not two"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let guard = LoginGuard::new(LoginPolicy::new(1, 1000));
        let t = Instant::now();
        fail(&guard, ip("2001:db8:1:2::1"), t).unwrap();
        assert!(guard.begin_at(ADA, ip("2001:db8:1:2::ffff"), t).is_err());
        assert!(guard.begin_at(ADA, ip("2001:db8:1:3::1"), t).is_ok());
    }
}
