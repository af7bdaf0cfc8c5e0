//! Waiting for work the daemon does (a sync, a reset, a handshake): the
//! work belongs to the daemon, so Ctrl-C only stops the waiting. On a
//! terminal, a wait that lasts says what it waits for and that Ctrl-C
//! leaves the work running; Ctrl-C ends the wait with `Interrupted`, whose
//! message says how to watch the work (exit code 130).

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long a call may wait before the CLI says what it waits for.
const NOTICE_AFTER: Duration = Duration::from_secs(3);

/// Ctrl-C stopped the wait; the message says what goes on and how to watch
/// it. Not a failure of the work: printed without `error: `, exit code 130.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    pub message: String,
}

/// Ctrl-C (SIGINT), listened for from the moment this is made: a Ctrl-C
/// between `listen` and the first wait is not lost, and no longer kills the
/// process.
pub(super) struct CtrlC(Option<Signal>);

impl CtrlC {
    pub(super) fn listen() -> CtrlC {
        // Without a handler (none can be installed), Ctrl-C stays the
        // default: the process ends at once.
        CtrlC(signal(SignalKind::interrupt()).ok())
    }

    /// Returns when Ctrl-C is pressed (again).
    pub(super) async fn pressed(&mut self) {
        match &mut self.0 {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Runs `call`, or stops waiting for it at Ctrl-C.
    pub(super) async fn race<F: Future>(
        &mut self,
        work: &Work,
        call: F,
    ) -> Result<F::Output, Interrupted> {
        tokio::select! {
            biased;
            () = self.pressed() => Err(work.interrupted()),
            output = call => Ok(output),
        }
    }
}

/// Work the daemon does while the CLI waits: what to say about it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Work {
    /// What the CLI waits for ("the data sync of node 7").
    waiting_for: String,
    /// What Ctrl-C leaves running ("the sync goes on in the daemon").
    goes_on: String,
    /// How to see it go on, after Ctrl-C.
    watch: String,
}

impl Work {
    /// A sync of a node (`kind`: structure or data).
    pub(super) fn sync(node: u64, kind: &str) -> Work {
        Work {
            waiting_for: format!("the {kind} sync of node {node}"),
            goes_on: "the sync goes on in the daemon".into(),
            watch: watch_sync(node, kind),
        }
    }

    /// A reset of a node's data sync, or of one shared module's.
    pub(super) fn reset(node: u64, shared: Option<&str>) -> Work {
        let what = match shared {
            Some(shared) => format!("shared module {shared} of node {node}"),
            None => format!("node {node}"),
        };
        Work {
            waiting_for: format!("the reset of {what}"),
            goes_on: "the reset goes on in the daemon".into(),
            watch: watch_sync(node, "data"),
        }
    }

    /// A handshake step (`node pair`, `node confirm`) waiting for the peer.
    pub(super) fn handshake(node: u64) -> Work {
        Work {
            waiting_for: format!("the handshake with node {node}"),
            goes_on: "the handshake goes on in the daemon".into(),
            watch: format!("`fedsync node show {node}` shows how it ended"),
        }
    }

    /// The line shown on a terminal once the wait lasts.
    pub(super) fn notice(&self) -> String {
        format!(
            "waiting for {} (Ctrl-C stops waiting; {})",
            self.waiting_for, self.goes_on
        )
    }

    /// The error Ctrl-C ends the wait with.
    pub(super) fn interrupted(&self) -> Interrupted {
        Interrupted {
            message: format!(
                "stopped waiting for {}: {}; {}",
                self.waiting_for, self.goes_on, self.watch
            ),
        }
    }
}

fn watch_sync(node: u64, kind: &str) -> String {
    format!(
        "watch it with `fedsync sync status {node}`, `fedsync sync runs {node}`, \
         or attach with `fedsync sync now {node} --kind {kind} --follow`"
    )
}

/// Runs `call` (an RPC) until it answers or Ctrl-C stops the wait. If it
/// has not answered after a few seconds and stderr is a terminal, says on
/// stderr what it waits for.
pub(super) async fn wait_for<F: Future>(work: &Work, call: F) -> Result<F::Output, Interrupted> {
    wait_with_notice(work, call, std::io::stderr().is_terminal(), NOTICE_AFTER).await
}

async fn wait_with_notice<F: Future>(
    work: &Work,
    call: F,
    notice: bool,
    after: Duration,
) -> Result<F::Output, Interrupted> {
    let mut ctrl_c = CtrlC::listen();
    let call = std::pin::pin!(call);
    let mut call = call;
    if notice {
        tokio::select! {
            biased;
            () = ctrl_c.pressed() => return Err(work.interrupted()),
            output = &mut call => return Ok(output),
            () = tokio::time::sleep(after) => eprintln!("{}", work.notice()),
        }
    }
    ctrl_c.race(work, call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_say_what_goes_on_and_how_to_watch_it() {
        let sync = Work::sync(7, "data");
        assert_eq!(
            sync.notice(),
            "waiting for the data sync of node 7 (Ctrl-C stops waiting; the sync goes on in the daemon)"
        );
        assert_eq!(
            sync.interrupted().to_string(),
            "stopped waiting for the data sync of node 7: the sync goes on in the daemon; \
             watch it with `fedsync sync status 7`, `fedsync sync runs 7`, \
             or attach with `fedsync sync now 7 --kind data --follow`"
        );
        let reset = Work::reset(7, Some("contact"));
        assert!(
            reset
                .interrupted()
                .message
                .starts_with("stopped waiting for the reset of shared module contact of node 7: the reset goes on in the daemon; watch it with `fedsync sync status 7`"),
            "{}",
            reset.interrupted()
        );
        assert_eq!(
            Work::handshake(3).interrupted().message,
            "stopped waiting for the handshake with node 3: the handshake goes on in the daemon; \
             `fedsync node show 3` shows how it ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_answers_is_waited_for_past_the_notice() {
        let work = Work::sync(1, "structure");
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            42
        };
        let answer = wait_with_notice(&work, slow, true, Duration::from_secs(3)).await;
        assert_eq!(answer.unwrap(), 42);
        let quick = wait_with_notice(&work, async { 7 }, false, NOTICE_AFTER).await;
        assert_eq!(quick.unwrap(), 7);
    }
}
