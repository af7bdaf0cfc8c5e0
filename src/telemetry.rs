//! Logs and metrics.
//!
//! Logs go to stderr through tracing-subscriber, as JSON lines (journald,
//! Kubernetes) or human-readable text; stdout stays free for command output.
//! Metrics live in one Prometheus registry that the admin listener serves at
//! `/metrics`. Invariant: no secret is ever a field of a log event or a label
//! of a metric.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a filter directive; `RUST_LOG`
/// overrides it. Calling it twice keeps the first subscriber.
pub fn init_tracing(json: bool, level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| format!("invalid log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    // An already-installed subscriber (tests, several daemons in a process)
    // is fine: events still go somewhere.
    let _ = result;
    Ok(())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub listener: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A scheduled job's kind (`structure`, `data`) and peer (the node id).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: &'static str,
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcomeLabels {
    pub kind: &'static str,
    pub peer: String,
    /// `succeeded`, `retry` (failed, will be tried again), `stopped`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    pub kind: &'static str,
    pub peer: String,
    /// `created`, `updated`, `deleted`, `skipped`, `errors`.
    pub action: &'static str,
}

type DurationFamily = Family<JobLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 10 ms .. about 14 min.
    Histogram::new(exponential_buckets(0.01, 3.0, 11))
}

/// Sync job metrics, per job kind and peer.
#[derive(Clone)]
pub struct SyncMetrics {
    /// Attempts, by outcome.
    pub runs: Family<JobOutcomeLabels, Counter>,
    /// Attempts that failed (retried or stopped).
    pub failures: Family<JobLabels, Counter>,
    /// Records moved by data runs, by what happened to them here.
    pub records: Family<RecordLabels, Counter>,
    pub duration: DurationFamily,
    /// The wait before the next attempt of a failing job; 0 when the last
    /// attempt succeeded (or the job stopped).
    pub backoff: Family<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl SyncMetrics {
    /// Records one finished attempt; `records` by action (`created`, ...).
    pub fn attempt(
        &self,
        kind: &'static str,
        peer: String,
        outcome: &'static str,
        records: &[(&'static str, u64)],
        seconds: f64,
        backoff_seconds: f64,
    ) {
        let job = JobLabels {
            kind,
            peer: peer.clone(),
        };
        self.runs
            .get_or_create(&JobOutcomeLabels {
                kind,
                peer: peer.clone(),
                outcome,
            })
            .inc();
        if outcome != "succeeded" {
            self.failures.get_or_create(&job).inc();
        }
        for (action, n) in records {
            self.records
                .get_or_create(&RecordLabels {
                    kind,
                    peer: peer.clone(),
                    action,
                })
                .inc_by(*n);
        }
        self.duration.get_or_create(&job).observe(seconds);
        self.backoff.get_or_create(&job).set(backoff_seconds);
    }
}

mod pacing;
pub use pacing::{PacingFigures, PacingSource};

/// The daemon's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pacing: pacing::PacingCollector,
    /// HTTP responses by listener (`federation`, `admin`) and status code.
    pub http_responses: Family<HttpLabels, Counter>,
    /// Admin requests refused for their credential, by reason code.
    pub admin_auth_failures: Family<ReasonLabels, Counter>,
    /// Federation requests refused by an inbound limit: `handshake_rate`,
    /// `handshake_lockout`, `peer_rate`, `busy`.
    pub federation_limited: Family<ReasonLabels, Counter>,
    /// 1 while the store answers readiness checks, else 0.
    pub store_up: Gauge,
    pub sync: SyncMetrics,
    /// Live change notices, by event: `sent`, `received`, `coalesced`,
    /// `dropped`, `refused`, `failed`.
    pub live_notices: Family<EventLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fedsync");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "Build information", build_info);
        let http_responses = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by listener and status code",
            http_responses.clone(),
        );
        let admin_auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "admin_auth_failures",
            "Admin requests refused for their credential, by reason",
            admin_auth_failures.clone(),
        );
        let federation_limited = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "federation_limited",
            "Federation requests refused by an inbound limit, by reason",
            federation_limited.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "store_up",
            "1 while the store answers readiness checks",
            store_up.clone(),
        );
        let sync = SyncMetrics {
            runs: Family::default(),
            failures: Family::default(),
            records: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            backoff: Family::default(),
        };
        registry.register(
            "sync_job_runs",
            "Sync job attempts by kind, peer and outcome",
            sync.runs.clone(),
        );
        registry.register(
            "sync_job_failures",
            "Sync job attempts that failed, by kind and peer",
            sync.failures.clone(),
        );
        registry.register(
            "sync_records",
            "Records moved by sync runs, by kind, peer and what happened here",
            sync.records.clone(),
        );
        registry.register_with_unit(
            "sync_job_duration",
            "How long sync job attempts took",
            prometheus_client::registry::Unit::Seconds,
            sync.duration.clone(),
        );
        registry.register_with_unit(
            "sync_job_backoff",
            "The wait before a failing job's next attempt; 0 when it last succeeded",
            prometheus_client::registry::Unit::Seconds,
            sync.backoff.clone(),
        );
        let live_notices = Family::<EventLabels, Counter>::default();
        registry.register(
            "live_notices",
            "Live change notices sent, received, coalesced, dropped, refused or failed",
            live_notices.clone(),
        );
        let pacing = pacing::PacingCollector::default();
        registry.register_collector(Box::new(pacing.clone()));
        Metrics {
            registry: Arc::new(registry),
            pacing,
            sync,
            live_notices,
            http_responses,
            admin_auth_failures,
            federation_limited,
            store_up,
        }
    }

    /// Where `/metrics` reads the data plane's pacing (set once, by the
    /// daemon with a Corteza data plane).
    pub fn read_pacing_from(&self, source: PacingSource) {
        let _ = self.pacing.source.set(source);
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}
