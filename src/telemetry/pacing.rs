//! `/metrics` for the Corteza data plane's pacing: read from the data
//! plane at each scrape (its own counters are the truth; nothing is copied
//! on every request).

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What the data plane tells at a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacingFigures {
    pub limit: u32,
    pub max: u32,
    pub in_flight: u32,
    pub p50_latency_seconds: f64,
    pub requests: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub limit_cuts: u64,
}

/// Reads the figures; `None` when the data plane is not paced.
pub type PacingSource = Arc<dyn Fn() -> Option<PacingFigures> + Send + Sync>;

#[derive(Clone, Default)]
pub(super) struct PacingCollector {
    pub(super) source: Arc<OnceLock<PacingSource>>,
}

impl std::fmt::Debug for PacingCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacingCollector")
    }
}

impl Collector for PacingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(figures) = self.source.get().and_then(|source| source()) else {
            return Ok(());
        };
        let gauges: [(&str, &str, f64); 4] = [
            (
                "corteza_concurrency_limit",
                "Requests allowed in flight to Corteza now (the adaptive limit)",
                f64::from(figures.limit),
            ),
            (
                "corteza_concurrency_max",
                "The bound of the adaptive limit (local.corteza_max_concurrent)",
                f64::from(figures.max),
            ),
            (
                "corteza_in_flight",
                "Requests in flight to Corteza now",
                f64::from(figures.in_flight),
            ),
            (
                "corteza_latency_p50_seconds",
                "The median latency of Corteza's recent answers",
                figures.p50_latency_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        let counters = [
            (
                "corteza_requests",
                "Requests sent to Corteza",
                figures.requests,
            ),
            (
                "corteza_throttled",
                "Corteza answers 429 Too Many Requests",
                figures.throttled,
            ),
            (
                "corteza_server_errors",
                "Corteza answers 5xx",
                figures.server_errors,
            ),
            (
                "corteza_timeouts",
                "Requests to Corteza not answered in time",
                figures.timeouts,
            ),
            (
                "corteza_limit_cuts",
                "Times the adaptive limit was cut (429, 502-504, timeouts, a latency rise)",
                figures.limit_cuts,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}
