//! What the fake compose server costs, modelled on the Corteza 2024.9
//! measured for issue 27 (PostgreSQL, 2 cores): two workers; a record
//! create, update or delete takes 5.2 ms of one (about 383 writes a second
//! at best); a listed record 0.3 ms (a page of 200: 60 ms), any request at
//! least that (a GET of one record); a counted record (`incTotal`) 0.13 ms
//! (bench/README.md: Corteza counted 100,000 records in about 13 s); at
//! most 64 requests wait for a worker, those beyond are answered 429 at
//! once.
//!
//! Worker time is not spent but scheduled: each worker has the instant it
//! is free at, a request goes to the one free soonest in the order requests
//! arrive (FIFO) and its answer is held until its computed end. The
//! schedule is exact (nanoseconds); only the wake-up is late, by tokio's
//! timer granularity (up to 1 ms), which adds to each answer's latency but
//! never to the workers' time, so errors do not accumulate and the fake
//! uses no CPU for the work it stands for.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

pub(super) const WORKERS: usize = 2;
/// A record create, update or delete (and a module's).
pub(super) const WRITE: Duration = Duration::from_micros(5_200);
/// A listed record, and the least a request costs (a GET of one record).
pub(super) const PER_RECORD: Duration = Duration::from_micros(300);
/// A record counted for `incTotal`.
pub(super) const PER_COUNTED: Duration = Duration::from_micros(130);
/// Requests waiting for a worker; one more is answered 429.
pub(super) const MAX_WAITING: usize = 64;

/// The workers' schedule.
pub(super) struct Workers {
    free_at: [Instant; WORKERS],
    /// When each request still waiting starts (in arrival order, which is
    /// also start order: FIFO onto the worker free soonest).
    waiting: VecDeque<Instant>,
}

impl Workers {
    pub(super) fn new() -> Workers {
        let now = Instant::now();
        Workers {
            free_at: [now; WORKERS],
            waiting: VecDeque::new(),
        }
    }

    /// Whether a request arriving `now` may wait for a worker: fewer than
    /// `MAX_WAITING` are waiting.
    pub(super) fn admit(&mut self, now: Instant) -> bool {
        while self.waiting.front().is_some_and(|start| *start <= now) {
            self.waiting.pop_front();
        }
        self.waiting.len() < MAX_WAITING
    }

    /// Puts a request of `cost` that arrived `now` on the worker free
    /// soonest; returns when it is done.
    pub(super) fn schedule(&mut self, now: Instant, cost: Duration) -> Instant {
        let worker = (0..WORKERS)
            .min_by_key(|w| self.free_at[*w])
            .unwrap_or_default();
        let start = self.free_at[worker].max(now);
        if start > now {
            self.waiting.push_back(start);
        }
        self.free_at[worker] = start + cost;
        start + cost
    }
}

/// What a request is, as the fake counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// A record made.
    Create,
    /// A record changed.
    Update,
    /// A record removed (Corteza's soft delete).
    Delete,
    /// One record read.
    Get,
    /// A record list.
    List,
    /// A record list with `incTotal` (a count).
    Count,
    /// Namespaces and modules read.
    Structure,
    /// A module made, changed or removed.
    ModuleWrite,
    /// A refused or unknown request.
    Other,
    /// Answered 429: more than `MAX_WAITING` were waiting.
    TooMany,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Get => "get",
            Kind::List => "list",
            Kind::Count => "count",
            Kind::Structure => "structure",
            Kind::ModuleWrite => "module_write",
            Kind::Other => "other",
            Kind::TooMany => "429",
        }
    }

    /// The worker time of a request of this kind that listed `listed`
    /// records and counted `counted`.
    pub(super) fn cost(self, listed: usize, counted: usize) -> Duration {
        let least = match self {
            Kind::Create | Kind::Update | Kind::Delete | Kind::ModuleWrite => WRITE,
            _ => PER_RECORD,
        };
        least.max(PER_RECORD * listed as u32) + PER_COUNTED * counted as u32
    }
}

/// Requests of one client served, by kind, the records listed and the
/// worker time they took.
#[derive(Clone, Default, Debug)]
pub(super) struct Counts {
    pub(super) requests: BTreeMap<Kind, u64>,
    pub(super) listed: u64,
    pub(super) busy: Duration,
}

impl Counts {
    /// Every request but those answered 429.
    pub(super) fn served(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(k, _)| **k != Kind::TooMany)
            .map(|(_, n)| n)
            .sum()
    }

    pub(super) fn of(&self, kind: Kind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// What happened between `before` and this.
    pub(super) fn since(&self, before: &Counts) -> Counts {
        Counts {
            requests: self
                .requests
                .iter()
                .map(|(k, n)| (*k, n - before.of(*k)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            listed: self.listed - before.listed,
            busy: self.busy - before.busy,
        }
    }

    pub(super) fn json(&self) -> serde_json::Value {
        let by_kind: serde_json::Map<String, serde_json::Value> = self
            .requests
            .iter()
            .map(|(k, n)| (k.name().to_owned(), (*n).into()))
            .collect();
        serde_json::json!({
            "served": self.served(),
            "by_kind": by_kind,
            "records_listed": self.listed,
            "worker_seconds": self.busy.as_secs_f64(),
        })
    }
}
