//! `sync now --follow`: live progress of the runs a sync makes.
//!
//! On a terminal, a progress bar per run on stderr (records done, rate and,
//! when the origin says how many records the run will see, the total and an
//! ETA). Otherwise one plain line per update on stdout, or with `--json` one
//! compact JSON object per line, so scripts and logs get the same facts.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::admin::proto::v1;

/// How progress is shown.
pub enum Display {
    /// A progress bar drawn on this target.
    Bar(ProgressDrawTarget),
    /// Plain lines on stdout.
    Lines,
    /// JSON lines on stdout.
    Json,
}

impl Display {
    /// A bar when both stdout and stderr are terminals, else lines.
    pub fn detect(json: bool) -> Display {
        if json {
            Display::Json
        } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Display::Bar(ProgressDrawTarget::stderr())
        } else {
            Display::Lines
        }
    }
}

struct Current {
    run_id: u64,
    since: Instant,
    bar: Option<ProgressBar>,
}

/// Follows the progress messages of one `sync now`.
pub struct Follower {
    display: Option<Display>,
    current: Option<Current>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressJson<'a> {
    run_id: String,
    node_id: String,
    kind: &'a str,
    shared_module_id: Option<String>,
    status: &'a str,
    pages: u64,
    records: u64,
    total: Option<u64>,
    per_second: f64,
}

/// Records a run has been through: written, skipped or refused.
pub fn records_done(run: &v1::SyncRun) -> u64 {
    run.created + run.updated + run.deleted + run.skipped + run.errors
}

impl Follower {
    pub fn new(display: Display) -> Follower {
        Follower {
            display: Some(display),
            current: None,
        }
    }

    /// One progress message: a run as it stands.
    pub fn update(&mut self, run: &v1::SyncRun, total: Option<u64>) {
        if self.current.as_ref().is_none_or(|c| c.run_id != run.id) {
            self.finish_bar();
            let bar = match self.display.take() {
                Some(Display::Bar(target)) => {
                    // The target moves to each run's bar in turn.
                    let bar = ProgressBar::with_draw_target(None, target);
                    bar.set_prefix(describe(run));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.display = Some(Display::Bar(ProgressDrawTarget::hidden()));
                    Some(bar)
                }
                other => {
                    self.display = other;
                    None
                }
            };
            self.current = Some(Current {
                run_id: run.id,
                since: Instant::now(),
                bar,
            });
        }
        let Some(current) = &self.current else {
            return;
        };
        let done = records_done(run);
        let elapsed = current.since.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        if let Some(bar) = &current.bar {
            match total {
                Some(total) => {
                    bar.set_length(total.max(done));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {pos}/{len} records, {rate}, ETA {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .with_key("rate", rate_key)
                        .progress_chars("=> "),
                    );
                }
                None => bar.set_style(
                    ProgressStyle::with_template("{prefix} {spinner} {pos} records, {rate}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner())
                        .with_key("rate", rate_key),
                ),
            }
            bar.set_position(done);
            bar.set_message(run.status.clone());
            return;
        }
        match &self.display {
            Some(Display::Json) => {
                let line = ProgressJson {
                    run_id: run.id.to_string(),
                    node_id: run.node_id.to_string(),
                    kind: &run.kind,
                    shared_module_id: (run.shared_module_id != 0)
                        .then(|| run.shared_module_id.to_string()),
                    status: &run.status,
                    pages: run.pages,
                    records: done,
                    total,
                    per_second: (rate * 10.0).round() / 10.0,
                };
                if let Ok(text) = serde_json::to_string(&line) {
                    println!("{text}");
                }
            }
            _ => println!("{}", plain_line(run, total, rate)),
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.current.take().and_then(|c| c.bar) {
            // Left as it stands: a run that failed halfway shows where.
            bar.abandon();
        }
    }

    /// The sync ended: the last bar stays as it was.
    pub fn finish(&mut self) {
        self.finish_bar();
    }
}

fn rate_key(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} records/s", state.per_sec());
}

fn describe(run: &v1::SyncRun) -> String {
    if run.shared_module_id == 0 {
        format!("{} sync of node {}", run.kind, run.node_id)
    } else {
        format!(
            "{} sync of node {}, shared module {}",
            run.kind, run.node_id, run.shared_module_id
        )
    }
}

/// One line of progress: what, how far, how fast, how long still.
pub fn plain_line(run: &v1::SyncRun, total: Option<u64>, rate: f64) -> String {
    let done = records_done(run);
    let mut line = format!(
        "{} {}: {} pages, {} records",
        describe(run),
        run.status,
        run.pages,
        done
    );
    if let Some(total) = total {
        line.push_str(&format!(" of {total}"));
    }
    line.push_str(&format!(", {rate:.0} records/s"));
    if let Some(total) = total
        && rate > 0.0
        && run.status == "running"
    {
        let left = total.saturating_sub(done) as f64 / rate;
        line.push_str(&format!(", ETA {}s", left.ceil() as u64));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, created: u64, status: &str) -> v1::SyncRun {
        v1::SyncRun {
            id,
            node_id: 7,
            kind: "data".into(),
            shared_module_id: 9,
            status: status.into(),
            pages: created / 100,
            created,
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_line_says_how_far_how_fast_and_how_long_still() {
        let line = plain_line(&run(1, 300, "running"), Some(2000), 100.0);
        assert_eq!(
            line,
            "data sync of node 7, shared module 9 running: 3 pages, 300 records of 2000, 100 records/s, ETA 17s"
        );
        let unknown = plain_line(&run(1, 300, "running"), None, 150.0);
        assert_eq!(
            unknown,
            "data sync of node 7, shared module 9 running: 3 pages, 300 records, 150 records/s"
        );
        let done = plain_line(&run(1, 2000, "succeeded"), Some(2000), 100.0);
        assert!(!done.contains("ETA"), "{done}");
    }

    #[test]
    fn on_a_terminal_a_bar_shows_records_of_the_total() {
        let term = indicatif::InMemoryTerm::new(4, 120);
        let mut follower = Follower::new(Display::Bar(ProgressDrawTarget::term_like(Box::new(
            term.clone(),
        ))));
        follower.update(&run(1, 0, "running"), None);
        follower.update(&run(1, 300, "running"), Some(2000));
        follower.finish();
        let screen = term.contents();
        assert!(screen.contains("300/2000 records"), "{screen}");
        assert!(screen.contains("ETA"), "{screen}");
        assert!(
            screen.contains("data sync of node 7, shared module 9"),
            "{screen}"
        );
    }
}
