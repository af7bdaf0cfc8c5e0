//! The sidecar round's figures: the plain client's rates, each timed sync
//! with what the fake served fedsync and what the user saw meanwhile, the
//! ratios, printed and as JSON with the targets of issue 27.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::model::{self, Counts};
use crate::report::Latency;

/// The least a write or read ratio should be, and the most the user's p50
/// may rise (issue 27).
const MIN_RATIO: f64 = 0.8;
const MAX_USER_RISE: f64 = 3.0;

/// What the plain client got: creates a second by connections, its best,
/// and the list rate.
pub(super) struct Plain {
    pub(super) per_level: u64,
    pub(super) writes: BTreeMap<String, f64>,
    pub(super) best: f64,
    pub(super) list_rate: f64,
    pub(super) list_requests: u64,
}

/// One timed data sync of `n` records.
pub(super) struct Phase {
    pub(super) records: u64,
    pub(super) secs: f64,
    pub(super) counts: Counts,
    pub(super) user: Latency,
}

impl Phase {
    pub(super) fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }

    fn per_record(&self) -> f64 {
        self.counts.served() as f64 / self.records as f64
    }

    fn json(&self, ratio: f64) -> Value {
        json!({
            "records": self.records, "seconds": self.secs, "records_per_sec": self.rate(),
            "ratio": ratio, "requests": self.counts.json(),
            "requests_per_record": self.per_record(),
            "answered_429": self.counts.of(model::Kind::TooMany),
            "user": series(self.user),
        })
    }
}

fn series(l: Latency) -> Value {
    json!({ "calls": l.calls, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms })
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Prints the round's figures and returns them with the targets.
pub(super) fn report(n: u64, plain: &Plain, write: &Phase, read: &Phase, idle: Latency) -> Value {
    let write_ratio = write.rate() / plain.best;
    let read_ratio = read.rate() / plain.list_rate;
    let user_ratio = |p: &Phase| p.user.p50_ms / idle.p50_ms;
    let user_worst = user_ratio(write).max(user_ratio(read));
    for (label, phase, ratio) in [("write", write, write_ratio), ("read ", read, read_ratio)] {
        let kinds: Vec<String> = phase
            .counts
            .requests
            .iter()
            .map(|(k, v)| format!("{} {v}", k.name()))
            .collect();
        println!(
            "sidecar {label}  {} records {:>8.2} s {:>8.1} rec/s  ratio {ratio:.3}   requests {} ({:.3} a record: {}); user p50 {:.2} ms (x{:.2}), p99 {:.2} ms",
            phase.records,
            phase.secs,
            phase.rate(),
            phase.counts.served(),
            phase.per_record(),
            kinds.join(", "),
            phase.user.p50_ms,
            user_ratio(phase),
            phase.user.p99_ms,
        );
    }
    println!(
        "sidecar user   idle p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        idle.p50_ms, idle.p99_ms, idle.calls
    );
    json!({
        "records": n,
        "model": {
            "workers": model::WORKERS, "write_ms": ms(model::WRITE),
            "listed_record_ms": ms(model::PER_RECORD), "counted_record_ms": ms(model::PER_COUNTED),
            "max_waiting": model::MAX_WAITING,
        },
        "plain": {
            "creates_per_connection_count": plain.per_level, "write_records_per_sec": plain.writes,
            "write_best": plain.best, "list_records_per_sec": plain.list_rate,
            "list_requests": plain.list_requests,
        },
        "write": write.json(write_ratio),
        "read": read.json(read_ratio),
        "user": {
            "idle": series(idle),
            "p50_ratio_write": user_ratio(write), "p50_ratio_read": user_ratio(read),
        },
        "targets": {
            "write_at_least_0_8_of_plain": write_ratio >= MIN_RATIO,
            "read_at_least_0_8_of_plain": read_ratio >= MIN_RATIO,
            "user_p50_within_3x_idle": user_worst <= MAX_USER_RISE,
        },
    })
}
