//! Inbound limits of the federation listener (federation-security 3.9):
//! a per-address rate limit and lockout on the unauthenticated handshake
//! route, a per-pair token bucket on the authenticated routes (429 with
//! `Retry-After`), and a cap on requests served at once (503).
//!
//! The limiters take the time as an argument, so their arithmetic is tested
//! with a made-up clock; the handlers pass `Instant::now()`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::TokenId;

/// Keys tracked by one limiter before idle ones are dropped. Past it, after
/// dropping every idle key, a new key is refused (fail closed): a flood from
/// countless addresses cannot grow the table without bound.
const MAX_KEYS: usize = 100_000;

/// How often refusals of one key are reported (`Verdict::Limited::first`).
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// Settings of the federation listener's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// Handshakes per client address per `handshake_window`.
    pub handshake_limit: u32,
    pub handshake_window: Duration,
    /// Refused handshakes from one address after which it is locked out of
    /// the handshake route for `handshake_lockout`.
    pub handshake_lockout_after: u32,
    pub handshake_lockout: Duration,
    /// Requests per second of one paired peer on the authenticated routes,
    /// and the burst allowed above that rate.
    pub peer_requests_per_second: u32,
    pub peer_burst: u32,
    /// Requests served at once by the listener.
    pub max_concurrent_requests: u32,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        LimitSettings {
            handshake_limit: 10,
            handshake_window: Duration::from_secs(60),
            handshake_lockout_after: 5,
            handshake_lockout: Duration::from_secs(15 * 60),
            peer_requests_per_second: 100,
            peer_burst: 200,
            max_concurrent_requests: 64,
        }
    }
}

/// What a limiter says of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Allowed,
    /// Refused; try again after this long. `first` is true for the key's
    /// first refusal in `NOTE_EVERY` (at most one audit event a minute per
    /// key, however long a flood lasts).
    Limited {
        retry_after: Duration,
        first: bool,
    },
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// When a refusal of this key was last reported.
    noted: Option<Instant>,
}

/// A token bucket per key: `capacity` requests at once, refilled at
/// `per_second`.
pub struct RateLimiter<K> {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(capacity: u32, per_second: f64) -> RateLimiter<K> {
        RateLimiter {
            capacity: f64::from(capacity.max(1)),
            per_second: per_second.max(f64::MIN_POSITIVE),
            buckets: Mutex::new(HashMap::new()),
            max_keys: MAX_KEYS,
        }
    }

    #[cfg(test)]
    fn with_max_keys(mut self, max_keys: usize) -> RateLimiter<K> {
        self.max_keys = max_keys;
        self
    }

    /// Takes one token for `key` at `now`.
    pub fn check(&self, key: &K, now: Instant) -> Verdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let (capacity, per_second) = (self.capacity, self.per_second);
            buckets.retain(|_, b| level(b, now, per_second) < capacity);
            if buckets.len() >= self.max_keys {
                return Verdict::Limited {
                    retry_after: Duration::from_secs(1),
                    first: false,
                };
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
            noted: None,
        });
        bucket.tokens = level(bucket, now, self.per_second).min(self.capacity);
        bucket.at = now.max(bucket.at);
        // A hair below one is float error in the refill, not a missing token.
        if bucket.tokens >= 1.0 - 1e-9 {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            return Verdict::Allowed;
        }
        let first = bucket
            .noted
            .is_none_or(|at| now.saturating_duration_since(at) >= NOTE_EVERY);
        if first {
            bucket.noted = Some(now);
        }
        Verdict::Limited {
            retry_after: Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second),
            first,
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

/// The bucket's tokens at `now` (not capped).
fn level(bucket: &Bucket, now: Instant, per_second: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens + elapsed * per_second
}

struct Strikes {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Counts refused handshakes per address; `after` of them within `period`
/// lock the address out for `period`.
pub struct Lockout {
    after: u32,
    period: Duration,
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

impl Lockout {
    pub fn new(after: u32, period: Duration) -> Lockout {
        Lockout {
            after: after.max(1),
            period,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` stays locked out, if it is.
    pub fn locked(&self, key: &IpAddr, now: Instant) -> Option<Duration> {
        let strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        let until = strikes.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts one refusal; true when it locked the address out.
    pub fn strike(&self, key: &IpAddr, now: Instant) -> bool {
        let mut strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        if !strikes.contains_key(key) && strikes.len() >= MAX_KEYS {
            let period = self.period;
            strikes.retain(|_, s| {
                s.locked_until.is_some_and(|u| u > now) || now.duration_since(s.since) < period
            });
        }
        let entry = strikes.entry(*key).or_insert(Strikes {
            count: 0,
            since: now,
            locked_until: None,
        });
        let expired = entry.locked_until.is_some_and(|u| u <= now)
            || (entry.locked_until.is_none()
                && now.saturating_duration_since(entry.since) >= self.period);
        if expired {
            *entry = Strikes {
                count: 0,
                since: now,
                locked_until: None,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= self.after && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.period);
            return true;
        }
        false
    }
}

/// The address a limit counts: an IPv4 address, or the /64 an IPv6 address
/// is in (one host usually holds a whole /64).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
        v4 => v4,
    }
}

/// All the limits of one federation listener.
pub struct Limits {
    pub handshakes: RateLimiter<IpAddr>,
    pub lockout: Lockout,
    /// Per peer token (a pair normally holds one).
    pub peers: RateLimiter<TokenId>,
    inflight: Arc<Semaphore>,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Limits {
        let window = settings.handshake_window.as_secs_f64().max(0.001);
        Limits {
            handshakes: RateLimiter::new(
                settings.handshake_limit,
                f64::from(settings.handshake_limit.max(1)) / window,
            ),
            lockout: Lockout::new(settings.handshake_lockout_after, settings.handshake_lockout),
            peers: RateLimiter::new(
                settings.peer_burst.max(1),
                f64::from(settings.peer_requests_per_second.max(1)),
            ),
            inflight: Arc::new(Semaphore::new(
                settings.max_concurrent_requests.max(1) as usize
            )),
        }
    }

    /// A place among the requests served at once, or `None` when all are
    /// taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.inflight.clone().try_acquire_owned().ok()
    }
}

/// `Retry-After` in whole seconds, at least one.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_refilled() {
        let limiter: RateLimiter<u32> = RateLimiter::new(10, 10.0 / 60.0);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check(&1, t0), Verdict::Allowed);
        }
        let Verdict::Limited { retry_after, first } = limiter.check(&1, t0) else {
            panic!("the 11th request in a minute is refused");
        };
        assert!(first);
        assert!(
            (retry_after.as_secs_f64() - 6.0).abs() < 0.01,
            "{retry_after:?}"
        );
        assert!(matches!(
            limiter.check(&1, t0 + secs(1.0)),
            Verdict::Limited { first: false, .. }
        ));
        // Another key has its own bucket.
        assert_eq!(limiter.check(&2, t0), Verdict::Allowed);
        // One token back after six seconds, and only one; the refusal after
        // it is not reported again within the minute.
        assert_eq!(limiter.check(&1, t0 + secs(6.0)), Verdict::Allowed);
        assert!(matches!(
            limiter.check(&1, t0 + secs(6.0)),
            Verdict::Limited { first: false, .. }
        ));
        // A long pause refills to the burst, never beyond.
        let later = t0 + secs(3600.0);
        for _ in 0..10 {
            assert_eq!(limiter.check(&1, later), Verdict::Allowed);
        }
        // A minute on, a refusal is reported again.
        assert!(matches!(
            limiter.check(&1, later),
            Verdict::Limited { first: true, .. }
        ));
    }

    #[test]
    fn a_clock_going_backwards_gives_nothing_away() {
        let limiter: RateLimiter<u32> = RateLimiter::new(1, 1.0);
        let t0 = Instant::now() + secs(10.0);
        assert_eq!(limiter.check(&1, t0), Verdict::Allowed);
        assert!(matches!(
            limiter.check(&1, t0 - secs(5.0)),
            Verdict::Limited { .. }
        ));
        assert_eq!(limiter.check(&1, t0 + secs(1.0)), Verdict::Allowed);
    }

    #[test]
    fn the_key_table_is_bounded_and_idle_keys_make_room() {
        let limiter: RateLimiter<u32> = RateLimiter::new(2, 1.0).with_max_keys(3);
        let t0 = Instant::now();
        for key in 0..3 {
            assert_eq!(limiter.check(&key, t0), Verdict::Allowed);
        }
        // Full, nothing idle yet: a new key is refused, known keys still work.
        assert!(matches!(limiter.check(&9, t0), Verdict::Limited { .. }));
        assert_eq!(limiter.check(&0, t0), Verdict::Allowed);
        assert_eq!(limiter.keys(), 3);
        // Once refilled, idle keys are dropped for the new one.
        assert_eq!(limiter.check(&9, t0 + secs(5.0)), Verdict::Allowed);
        assert_eq!(limiter.keys(), 1);
    }

    #[test]
    fn refusals_lock_an_address_out_for_the_period_then_it_starts_over() {
        let lockout = Lockout::new(3, secs(60.0));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(!lockout.strike(&a, t0));
        assert!(!lockout.strike(&a, t0 + secs(1.0)));
        assert_eq!(lockout.locked(&a, t0 + secs(1.0)), None);
        assert!(lockout.strike(&a, t0 + secs(2.0)));
        assert_eq!(lockout.locked(&a, t0 + secs(2.0)), Some(secs(60.0)));
        assert_eq!(lockout.locked(&a, t0 + secs(32.0)), Some(secs(30.0)));
        assert_eq!(lockout.locked(&b, t0 + secs(2.0)), None);
        // Over: unlocked, and the count starts again.
        assert_eq!(lockout.locked(&a, t0 + secs(62.0)), None);
        assert!(!lockout.strike(&a, t0 + secs(62.0)));
        assert_eq!(lockout.locked(&a, t0 + secs(62.0)), None);
        // Refusals spread wider than the period never add up.
        assert!(!lockout.strike(&b, t0));
        assert!(!lockout.strike(&b, t0 + secs(61.0)));
        assert!(!lockout.strike(&b, t0 + secs(62.0)));
        assert_eq!(lockout.locked(&b, t0 + secs(62.0)), None);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn the_concurrency_cap_admits_up_to_its_size_and_frees_on_drop() {
        let limits = Limits::new(&LimitSettings {
            max_concurrent_requests: 2,
            ..LimitSettings::default()
        });
        let one = limits.admit().unwrap();
        let _two = limits.admit().unwrap();
        assert!(limits.admit().is_none());
        drop(one);
        assert!(limits.admit().is_some());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(secs(0.2)), 1);
        assert_eq!(retry_after_seconds(secs(6.0)), 6);
        assert_eq!(retry_after_seconds(secs(6.01)), 7);
    }
}
