//! The id instance lease: taken at start, renewed while the daemon runs,
//! given back on shutdown. Losing it (another process took the number after
//! it expired) stops the daemon, because ids could then collide.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::crypto::random_bytes;
use crate::domain::{self, IdGenerator, InstanceLease};
use crate::store::Store;

pub struct IdLease {
    store: Arc<dyn Store>,
    lease: InstanceLease,
    ids: Arc<IdGenerator>,
    ttl: Duration,
}

impl IdLease {
    /// Takes an instance number for this process.
    pub async fn acquire(store: Arc<dyn Store>, ttl: Duration) -> anyhow::Result<IdLease> {
        let owner = owner_name();
        let now = domain::now();
        let expires_at =
            now + chrono::Duration::from_std(ttl).context("instance lease too long")?;
        let lease = store
            .acquire_instance(&owner, now, expires_at)
            .await
            .context("cannot lease an id instance number")?;
        let ids = Arc::new(IdGenerator::new(lease.instance_no, lease.last_id_ms));
        tracing::debug!(instance = lease.instance_no, owner = %owner, "leased id instance number");
        Ok(IdLease {
            store,
            lease,
            ids,
            ttl,
        })
    }

    pub fn ids(&self) -> Arc<IdGenerator> {
        self.ids.clone()
    }

    /// `host:pid:nonce`: who holds the lease, also written into sync runs.
    pub fn owner(&self) -> &str {
        &self.lease.owner
    }

    pub fn instance_no(&self) -> u16 {
        self.lease.instance_no
    }

    /// Extends the lease; `Ok(false)` when it is no longer ours.
    pub async fn renew(&self) -> anyhow::Result<bool> {
        let expires_at = domain::now() + chrono::Duration::from_std(self.ttl)?;
        Ok(self
            .store
            .renew_instance(&self.lease, expires_at, self.ids.last_ms())
            .await?)
    }

    pub async fn release(&self) {
        if let Err(error) = self
            .store
            .release_instance(&self.lease, self.ids.last_ms())
            .await
        {
            tracing::warn!(error = %error, "cannot release the id instance lease; it expires by itself");
        }
    }

    /// Renews every third of the lease time until `stop` fires. Cancels
    /// `on_lost` if the lease was taken by someone else.
    pub async fn keep_renewed(
        self: Arc<Self>,
        stop: CancellationToken,
        on_lost: CancellationToken,
    ) {
        let period = self.ttl / 3;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            match self.renew().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        instance = self.lease.instance_no,
                        "the id instance lease was lost; stopping so ids cannot collide"
                    );
                    on_lost.cancel();
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot renew the id instance lease; retrying");
                }
            }
        }
    }
}

fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let mut nonce = [0u8; 4];
    let _ = random_bytes(&mut nonce);
    format!("{host}:{}:{}", std::process::id(), hex::encode(nonce))
}

/// Whether the process that wrote `owner` (an `owner_name()`) is surely gone:
/// it ran on this host, and its pid is no longer a process or is ours now
/// (a restarted container gets the same pid, with another nonce).
pub fn owner_is_gone(owner: &str, ours: &str) -> bool {
    let mut theirs = owner.rsplitn(3, ':');
    let mut mine = ours.rsplitn(3, ':');
    let (Some(_), Some(their_pid), Some(their_host)) =
        (theirs.next(), theirs.next(), theirs.next())
    else {
        return false;
    };
    let (Some(_), Some(my_pid), Some(my_host)) = (mine.next(), mine.next(), mine.next()) else {
        return false;
    };
    if owner == ours || their_host != my_host {
        return false;
    }
    their_pid == my_pid || !process_lives(their_pid)
}

/// The state letter of process `pid` (digits), if it exists.
fn process_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).ok()?;
    // `pid (comm) S ...`: the name may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Whether process `pid` still runs: a zombie (killed, and not yet reaped
/// by a parent that waits late or never, as some container inits do) does
/// not. A pid that is not a number cannot be judged: it lives.
fn process_lives(pid: &str) -> bool {
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    !matches!(process_state(pid), None | Some('Z' | 'X' | 'x'))
}

#[cfg(test)]
mod tests {
    use super::{owner_is_gone, process_state};

    /// A daemon killed and restarted at once may find the old process not
    /// yet reaped (here PID 1 reaps about two seconds late): its jobs are
    /// free then, not when their leases end.
    #[test]
    fn a_killed_process_not_yet_reaped_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let ours = format!("h:{}:aaaa", std::process::id());
        let theirs = format!("h:{pid}:bbbb");
        assert!(!owner_is_gone(&theirs, &ours), "a running process");
        child.kill().unwrap();
        // Not waited for: it stays a zombie until `wait`. The kill lands
        // asynchronously, so look until the kernel says so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_state(&pid) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "never a zombie");
            std::thread::yield_now();
        }
        assert!(owner_is_gone(&theirs, &ours), "a zombie");
        child.wait().unwrap();
        assert!(owner_is_gone(&theirs, &ours), "reaped");
    }

    #[test]
    fn a_dead_process_on_this_host_is_gone_and_others_are_not_judged() {
        let ours = format!("h:{}:aaaa", std::process::id());
        // Same pid, other nonce: an earlier life of this process slot.
        assert!(owner_is_gone(
            &format!("h:{}:bbbb", std::process::id()),
            &ours
        ));
        // A pid that cannot exist.
        assert!(owner_is_gone("h:4294967295:cccc", &ours));
        // A live process on this host (pid 1 always exists).
        assert!(!owner_is_gone("h:1:dddd", &ours));
        // Another host: only its lease can tell.
        assert!(!owner_is_gone("other:4294967295:cccc", &ours));
        assert!(!owner_is_gone(&ours, &ours));
        assert!(!owner_is_gone("garbage", &ours));
    }
}
