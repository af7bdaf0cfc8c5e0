//! How long a failed job waits before its next attempt: exponential, capped,
//! with full jitter (a uniformly random wait between zero and the capped
//! exponential), so peers that failed together do not retry together.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: f64,
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the wait after `attempts` failed attempts (1 = the first).
    pub fn ceiling(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(64) as i32;
        let secs = self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        if !secs.is_finite() || secs >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The wait after `attempts` failed attempts, for a uniform `unit` in
    /// [0, 1); never under 100 ms, so a job cannot spin.
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempts);
        ceiling
            .mul_f64(unit.clamp(0.0, 1.0))
            .max(Duration::from_millis(100).min(ceiling))
    }
}

/// A uniform number in [0, 1) from the OS.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if crate::crypto::random_bytes(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        base: Duration::from_secs(1),
        factor: 2.0,
        cap: Duration::from_secs(300),
    };

    #[test]
    fn grows_then_is_capped() {
        let ceilings: Vec<u64> = (1..=11).map(|a| POLICY.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(POLICY.ceiling(u32::MAX), POLICY.cap);
    }

    #[test]
    fn full_jitter_spreads_waits_under_the_ceiling() {
        assert_eq!(POLICY.delay(5, 0.5), Duration::from_secs(8));
        assert_eq!(POLICY.delay(5, 0.0), Duration::from_millis(100));
        assert!(POLICY.delay(5, 0.999) < Duration::from_secs(16));
        let waits: std::collections::BTreeSet<u128> = (0..50)
            .map(|_| POLICY.delay(8, random_unit()).as_millis())
            .collect();
        assert!(waits.len() > 40, "random waits differ: {waits:?}");
        assert!(waits.iter().all(|w| *w <= 128_000));
    }
}
