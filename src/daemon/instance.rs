//! The id instance lease: taken at start, renewed while the daemon runs,
//! given back on shutdown. Losing it (another process took the number after
//! it expired) stops the daemon, because ids could then collide.

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
