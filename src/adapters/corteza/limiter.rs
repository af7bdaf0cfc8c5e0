//! How hard fedsync uses Corteza: an adaptive limit on the requests in
//! flight, and an optional hard cap on requests a second (`Pace`).
//!
//! The limit follows Corteza's latency, as TCP Vegas and the
//! concurrency-limit libraries do: while Corteza has idle workers, one more
//! request in flight does not make the others slower; once they are all
//! busy, it only waits in Corteza's queue, making every answer slower (and
//! Corteza's other users wait behind it). Each answer's latency is
//! compared with the lowest Corteza has shown for that kind of request (a
//! record write, another write, a GET of one object, a list of about that
//! many records); the
//! lowest is forgotten after [`FLOOR_EPOCH`], so a Corteza that became
//! slower for good is measured afresh. Over a window of about `limit`
//! answers (at least four), the median ratio `r` of latency to lowest
//! decides (the median: one slow answer is no trend):
//!
//! - `r` under [`GROW_BELOW`] while the limit was reached: one more.
//! - `r` over [`SHRINK_ABOVE`] (a latency rise): × [`SHRINK`].
//! - 429, 502, 503, 504 or a timeout: halved at once, at most once per
//!   [`CUT_GAP`] (the answers of one burst cut once).
//!
//! Between 1 and `max` (`local.corteza_max_concurrent`). A cut is logged,
//! at most once per [`LOG_GAP`], with why.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::ports::PacingStatus;

/// How long the lowest latency of a kind is trusted.
const FLOOR_EPOCH: Duration = Duration::from_secs(30);
/// Grow while the median latency is below this many times the lowest.
const GROW_BELOW: f64 = 1.25;
/// Shrink once it is above this many times the lowest.
const SHRINK_ABOVE: f64 = 1.4;
/// The factor of a shrink on a latency rise.
const SHRINK: f64 = 0.8;
/// Overload answers closer together than this cut the limit once.
const CUT_GAP: Duration = Duration::from_millis(250);
/// A cut is logged at most this often.
const LOG_GAP: Duration = Duration::from_secs(10);
/// Latencies kept for the p50 shown in `sync status`.
const RECENT: usize = 256;
/// The limit a new limiter starts at (below `max`).
const START: f64 = 4.0;

/// What an answer says of Corteza's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// An answer (a refusal too): its latency is a sample.
    Answered,
    /// 429: Corteza asks for less.
    Throttled,
    /// 502, 503, 504: Corteza (or its proxy) is overloaded.
    Overloaded(u16),
    /// Another 5xx: counted, not a load signal.
    ServerError(u16),
    /// No answer in time.
    TimedOut,
    /// Not reached (refused connection...): not a load signal.
    Unreached,
}

/// The kind of a request, whose latencies are compared with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// A record made, changed or removed.
    Write,
    /// Another write (a module made or changed).
    OtherWrite,
    /// A GET of one object.
    One,
    /// A list, by the power of two of the records it held.
    List(u8),
}

impl Kind {
    pub(super) fn list(items: usize) -> Kind {
        Kind::List((usize::BITS - items.leading_zeros()) as u8)
    }
}

/// Spaces requests at least `interval` apart (the optional hard cap).
pub(super) struct Pace {
    pub(super) interval: Duration,
    pub(super) next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    pub(super) fn per_second(rate: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(1) / rate.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    pub(super) async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    cuts: AtomicU64,
}

/// The lowest latency of a kind in this epoch and the one before.
#[derive(Clone, Copy)]
struct Floor {
    current: Duration,
    previous: Duration,
    since: Instant,
}

#[derive(Default)]
struct Window {
    /// Each answer's latency over the lowest of its kind.
    ratios: Vec<f64>,
    /// Some request of the window reached the limit.
    limited: bool,
}

struct State {
    limit: f64,
    in_flight: usize,
    floors: HashMap<Kind, Floor>,
    window: Window,
    last_cut: Option<Instant>,
    last_log: Option<Instant>,
    unlogged_cuts: u32,
    recent: VecDeque<Duration>,
}

pub(super) struct Limiter {
    max: usize,
    state: Mutex<State>,
    freed: tokio::sync::Notify,
    counters: Counters,
}

/// A request's place in the limit; freed when dropped.
pub(super) struct Permit<'a> {
    limiter: &'a Limiter,
    started: Instant,
}

impl Limiter {
    pub(super) fn new(max: u32) -> Limiter {
        let max = max.max(1) as usize;
        Limiter {
            max,
            state: Mutex::new(State {
                limit: START.min(max as f64),
                in_flight: 0,
                floors: HashMap::new(),
                window: Window::default(),
                last_cut: None,
                last_log: None,
                unlogged_cuts: 0,
                recent: VecDeque::with_capacity(RECENT),
            }),
            freed: tokio::sync::Notify::new(),
            counters: Counters::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("limiter lock")
    }

    /// Waits for a place under the limit.
    pub(super) async fn acquire(&self) -> Permit<'_> {
        let mut waited = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.state();
                if (state.in_flight as f64) < state.limit.floor().max(1.0) {
                    state.in_flight += 1;
                    state.window.limited |=
                        waited || state.in_flight as f64 >= state.limit.floor().max(1.0);
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    return Permit {
                        limiter: self,
                        started: Instant::now(),
                    };
                }
            }
            waited = true;
            freed.await;
        }
    }

    fn cut(&self, state: &mut State, factor: f64, why: String) {
        let now = Instant::now();
        let old = state.limit;
        state.limit = (state.limit * factor).max(1.0);
        state.last_cut = Some(now);
        state.window = Window::default();
        if old.floor() == state.limit.floor() {
            return;
        }
        self.counters.cuts.fetch_add(1, Ordering::Relaxed);
        if state.last_log.is_some_and(|at| now - at < LOG_GAP) {
            state.unlogged_cuts += 1;
            return;
        }
        let earlier = std::mem::take(&mut state.unlogged_cuts);
        state.last_log = Some(now);
        tracing::warn!(
            from = old.floor() as u64,
            to = state.limit.floor() as u64,
            cuts_not_logged = earlier,
            "Corteza is {why}: fedsync cut its requests in flight from {} to {}",
            old.floor(),
            state.limit.floor()
        );
    }

    fn overload(&self, state: &mut State, why: String) {
        if state
            .last_cut
            .is_some_and(|at| Instant::now() - at < CUT_GAP)
        {
            return;
        }
        self.cut(state, 0.5, why);
    }

    fn sample(&self, state: &mut State, kind: Kind, latency: Duration) {
        let now = Instant::now();
        if state.recent.len() == RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(latency);
        let floor = state.floors.entry(kind).or_insert(Floor {
            current: latency,
            previous: latency,
            since: now,
        });
        if now - floor.since > FLOOR_EPOCH {
            floor.previous = floor.current;
            floor.current = latency;
            floor.since = now;
        }
        floor.current = floor.current.min(latency);
        let lowest = floor
            .current
            .min(floor.previous)
            .max(Duration::from_micros(50));
        let window = &mut state.window;
        window
            .ratios
            .push(latency.as_secs_f64() / lowest.as_secs_f64());
        if (window.ratios.len() as f64) < state.limit.max(4.0) {
            return;
        }
        let mut ratios = std::mem::take(&mut window.ratios);
        let limited = std::mem::take(&mut window.limited);
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        if ratio > SHRINK_ABOVE {
            let why = format!("slower ({ratio:.1} times its lowest latency)");
            self.cut(state, SHRINK, why);
        } else if ratio < GROW_BELOW && limited && state.limit < self.max as f64 {
            state.limit = (state.limit + 1.0).min(self.max as f64);
            self.freed.notify_waiters();
        }
    }

    /// Takes what an answer says: a latency sample or an overload.
    fn observe(&self, kind: Kind, signal: Signal, latency: Duration) {
        let mut state = self.state();
        match signal {
            Signal::Answered => self.sample(&mut state, kind, latency),
            Signal::Throttled => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                self.overload(&mut state, "throttling (HTTP 429)".into());
            }
            Signal::Overloaded(status) => {
                self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
                self.overload(&mut state, format!("overloaded (HTTP {status})"));
            }
            Signal::TimedOut => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                self.overload(&mut state, "not answering in time".into());
            }
            Signal::ServerError(_) => {
                self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            Signal::Unreached => {}
        }
    }

    pub(super) fn status(&self) -> PacingStatus {
        let state = self.state();
        let mut recent: Vec<Duration> = state.recent.iter().copied().collect();
        recent.sort();
        let p50 = recent.get(recent.len() / 2).copied();
        let c = &self.counters;
        PacingStatus {
            limit: state.limit.floor() as u32,
            max: self.max as u32,
            in_flight: state.in_flight as u32,
            p50_latency: p50,
            requests: c.requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            cuts: c.cuts.load(Ordering::Relaxed),
        }
    }
}

impl Permit<'_> {
    /// The request ended with `signal`; `kind` says what it was.
    pub(super) fn done(self, kind: Kind, signal: Signal) {
        self.limiter.observe(kind, signal, self.started.elapsed());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.state().in_flight -= 1;
        self.limiter.freed.notify_one();
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
