//! Latency percentiles of a series of requests, as every scenario reports
//! them.

/// Latency percentiles of one series of requests, in milliseconds.
#[derive(Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) calls: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

pub(crate) fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if ms.is_empty() {
            return f64::NAN;
        }
        ms[((ms.len() - 1) as f64 * q).round() as usize]
    };
    Latency {
        calls: ms.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}
