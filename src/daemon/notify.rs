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

/// Pings the watchdog at half its period from a task on the runtime, so a
/// wedged runtime stops the pings and systemd restarts the daemon.
pub fn spawn_watchdog(stop: CancellationToken) -> Option<JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => send(&[NotifyState::Watchdog]),
            }
        }
    }))
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(error = %error, "cannot notify systemd");
    }
}
