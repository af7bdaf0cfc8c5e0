//! systemd notifications: READY with a status line, STOPPING, and WATCHDOG
//! pings when the unit sets `WatchdogSec`. Without `NOTIFY_SOCKET` these do
//! nothing.

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pings the watchdog at half its period while `alive` says the daemon's
/// main loop (the dispatcher) still turns: a wedged runtime or a stuck
/// dispatcher stops the pings, and systemd restarts the daemon.
pub fn spawn_watchdog(
    stop: CancellationToken,
    alive: impl Fn() -> bool + Send + 'static,
) -> Option<JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {
                    if alive() {
                        send(&[NotifyState::Watchdog]);
                    } else {
                        tracing::error!("the dispatcher loop has not turned in time; no watchdog ping");
                    }
                }
            }
        }
    }))
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(error = %error, "cannot notify systemd");
    }
}
