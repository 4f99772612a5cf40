//! Login throttling on three keys, so that neither password spraying (many
//! user names from one address) nor a distributed guess at one user (one user
//! name from many addresses) goes unchecked, while an attacker cannot lock a
//! user out:
//!
//! - **address + user name**: at most `logins_per_minute` attempts (a token
//!   bucket, every attempt counts);
//! - **address** (IPv6 by /64), any user name: after `address_failures` failed
//!   attempts in the window, each further attempt from it waits an exponential
//!   backoff (1 s, 2 s, 4 s … at most `max_backoff_secs`);
//! - **user name**, any address: after `user_failures` failed attempts in the
//!   window, the same backoff — but an address with no failures of its own
//!   waits at most `clean_address_wait_secs`. The per-user limit slows guessing
//!   and never locks: the real user on a clean address gets in within seconds.
//!
//! Failures are forgotten `window_secs` after the last one; a successful login
//! clears the user name's failures. The clock is injectable for tests.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Entries kept per map before expired ones are swept.
const SWEEP_AT: usize = 50_000;

/// Login throttling settings (`[login]` in `switchyard.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginLimits {
    /// Failed attempts for one user name (any address) before backoff starts.
    pub user_failures: u32,
    /// Failed attempts from one address (any user name) before backoff starts.
    pub address_failures: u32,
    /// Longest backoff, in seconds.
    pub max_backoff_secs: u64,
    /// Longest wait imposed on an address without failures by another
    /// address's failures at the same user name, in seconds.
    pub clean_address_wait_secs: u64,
    /// Seconds after the last failure when a key's failures are forgotten.
    pub window_secs: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            user_failures: 10,
            address_failures: 20,
            max_backoff_secs: 60,
            clean_address_wait_secs: 2,
            window_secs: 15 * 60,
        }
    }
}

/// Milliseconds since some fixed point.
pub type ClockFn = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
}

#[derive(Default)]
struct State {
    by_user: HashMap<String, Failures>,
    by_address: HashMap<IpAddr, Failures>,
}

/// Failure counts by user name and by address.
pub struct FailureLimiter {
    limits: LoginLimits,
    clock: ClockFn,
    state: Mutex<State>,
}

/// The address key: IPv4 as is, IPv6 by its /64 (one host's usual share).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

impl FailureLimiter {
    /// A limiter with `limits`, reading time from `clock`.
    pub fn new(limits: LoginLimits, clock: ClockFn) -> Self {
        Self {
            limits,
            clock,
            state: Mutex::default(),
        }
    }

    /// The backoff after `over` failures beyond the free ones, in ms.
    fn backoff_ms(&self, over: u32) -> u64 {
        let max = self.limits.max_backoff_secs.max(1) * 1000;
        1000u64.saturating_mul(1 << over.min(20)).min(max)
    }

    /// Live failures of an entry (`None` once the window passed).
    fn live(&self, f: Option<&Failures>, now: u64) -> Option<Failures> {
        f.copied()
            .filter(|f| now.saturating_sub(f.last_ms) < self.limits.window_secs * 1000)
    }

    /// How long (ms) an entry with `f` and `free` free failures must still wait.
    fn wait(&self, f: Option<Failures>, free: u32, cap_ms: u64, now: u64) -> u64 {
        match f {
            Some(f) if f.count >= free => {
                let until = f.last_ms + self.backoff_ms(f.count - free).min(cap_ms);
                until.saturating_sub(now)
            }
            _ => 0,
        }
    }

    /// `Err(seconds to wait)` when an attempt at `user` from `client` must wait.
    pub fn check(&self, client: IpAddr, user: &str) -> Result<(), u64> {
        let now = (self.clock)();
        let Ok(state) = self.state.lock() else {
            return Ok(());
        };
        let address = self.live(state.by_address.get(&address_key(client)), now);
        let by_user = self.live(state.by_user.get(user), now);
        let clean = address.is_none_or(|a| a.count == 0);
        let user_cap = if clean {
            self.limits.clean_address_wait_secs * 1000
        } else {
            u64::MAX
        };
        let wait = self
            .wait(address, self.limits.address_failures, u64::MAX, now)
            .max(self.wait(by_user, self.limits.user_failures, user_cap, now));
        if wait == 0 {
            Ok(())
        } else {
            Err(wait.div_ceil(1000).max(1))
        }
    }

    /// Count a failed attempt.
    pub fn failed(&self, client: IpAddr, user: &str) {
        let now = (self.clock)();
        let window = self.limits.window_secs * 1000;
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let bump = |f: Option<&Failures>| Failures {
            count: f
                .filter(|f| now.saturating_sub(f.last_ms) < window)
                .map_or(0, |f| f.count)
                .saturating_add(1),
            last_ms: now,
        };
        let key = address_key(client);
        let next = bump(state.by_address.get(&key));
        state.by_address.insert(key, next);
        let next = bump(state.by_user.get(user));
        state.by_user.insert(user.to_string(), next);
        if state.by_user.len() > SWEEP_AT || state.by_address.len() > SWEEP_AT {
            state
                .by_user
                .retain(|_, f| now.saturating_sub(f.last_ms) < window);
            state
                .by_address
                .retain(|_, f| now.saturating_sub(f.last_ms) < window);
        }
    }

    /// A successful login: the user name's failures are forgotten.
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.by_user.remove(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn limiter(limits: LoginLimits) -> (FailureLimiter, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = now.clone();
        let limiter = FailureLimiter::new(limits, Arc::new(move || clock.load(Ordering::SeqCst)));
        (limiter, now)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn spraying_user_names_from_one_address_backs_off() {
        let (l, now) = limiter(LoginLimits::default());
        for n in 0..20 {
            assert!(l.check(ip(1), &format!("user{n}")).is_ok(), "attempt {n}");
            l.failed(ip(1), &format!("user{n}"));
        }
        assert_eq!(l.check(ip(1), "user99"), Err(1));
        assert!(
            l.check(ip(2), "user99").is_ok(),
            "other addresses are unaffected"
        );
        now.fetch_add(1000, Ordering::SeqCst);
        assert!(l.check(ip(1), "user99").is_ok());
        l.failed(ip(1), "user99");
        assert_eq!(l.check(ip(1), "user99"), Err(2), "the backoff doubles");
    }

    #[test]
    fn many_addresses_at_one_user_back_off_but_a_clean_address_gets_in() {
        let (l, now) = limiter(LoginLimits::default());
        for n in 0..10 {
            l.failed(ip(n), "alice");
        }
        for n in 10..15 {
            l.failed(ip(n), "alice");
        }
        assert_eq!(
            l.check(ip(3), "alice"),
            Err(32),
            "an attacking address waits long"
        );
        assert_eq!(
            l.check(ip(200), "alice"),
            Err(2),
            "a clean address waits briefly"
        );
        now.fetch_add(2000, Ordering::SeqCst);
        assert!(l.check(ip(200), "alice").is_ok());
        assert!(l.check(ip(3), "alice").is_err());
        l.succeeded("alice");
        assert!(l.check(ip(3), "alice").is_ok(), "a success clears the user");
    }

    #[test]
    fn failures_are_forgotten_after_the_window_and_backoff_is_capped() {
        let (l, now) = limiter(LoginLimits::default());
        for _ in 0..40 {
            l.failed(ip(1), "bob");
        }
        assert_eq!(l.check(ip(1), "bob"), Err(60));
        now.fetch_add(15 * 60 * 1000, Ordering::SeqCst);
        assert!(l.check(ip(1), "bob").is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), ip(1));
    }
}
