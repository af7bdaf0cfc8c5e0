//! When a job runs: an interval (`30s`, `5m`) or a cron expression
//! (`*/5 * * * *`, five fields, or six with seconds first), in UTC.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;

use crate::domain::Timestamp;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

/// The shortest interval accepted: a schedule is not a busy loop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl Schedule {
    /// Parses an interval (`humantime`: `30s`, `5m`, `1h 30m`) or a cron
    /// expression; the error says which and why.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a schedule is an interval such as `1m` or a cron expression".into());
        }
        if text.split_whitespace().count() == 1 && !text.contains('*') {
            let every = humantime::parse_duration(text)
                .map_err(|e| format!("`{text}` is not an interval ({e}) nor a cron expression"))?;
            if every < MIN_INTERVAL {
                return Err(format!("`{text}` is shorter than 1s"));
            }
            return Ok(Schedule::Every(every));
        }
        let cron = croner::Cron::from_str(text)
            .map_err(|e| format!("`{text}` is not a cron expression: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        match self {
            Schedule::Every(every) => {
                after + chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX)
            }
            Schedule::Cron(cron) => cron
                .find_next_occurrence(&after.with_timezone(&Utc), false)
                .unwrap_or(after + chrono::Duration::days(366)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn intervals_and_cron_expressions() {
        let t = at("2026-11-22T10:02:30Z");
        let every = Schedule::parse("30s").unwrap();
        assert_eq!(every.next_after(t), at("2026-11-22T10:03:00Z"));
        let cron = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(cron.next_after(t), at("2026-11-22T10:05:00Z"));
        assert_eq!(
            cron.next_after(at("2026-11-22T10:05:00Z")),
            at("2026-11-22T10:10:00Z"),
            "strictly after"
        );
        let hourly = Schedule::parse("0 * * * *").unwrap();
        assert_eq!(hourly.next_after(t), at("2026-11-22T11:00:00Z"));
    }

    #[test]
    fn bad_schedules_say_why() {
        for (text, needle) in [
            ("", "interval"),
            ("soon", "not an interval"),
            ("10ms", "shorter than 1s"),
            ("*/5 * * *", "cron"),
            ("61 * * * *", "cron"),
        ] {
            let error = Schedule::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
