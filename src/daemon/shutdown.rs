//! Graceful shutdown, once asked for (SIGTERM, SIGINT, `stop`, or the
//! daemon stopping on its own): NOT_SERVING, the listeners stop accepting
//! and finish in-flight requests, the daemon's work gets the same grace and
//! is then cut, and only once every task has ended are the instance lease
//! released and the store closed.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;

use super::instance::IdLease;
use crate::admin::node::NodeApi;
use crate::admin::proto::v1::node_service_server::NodeServiceServer;
use crate::store::Store;
use crate::sync::work::Work;

/// What a running daemon stops, in order.
pub(super) struct Shutdown {
    pub requested: CancellationToken,
    pub grace: Duration,
    pub health: HealthReporter,
    /// Stops the listeners, the dispatcher, the notifier and the renewer.
    pub stop_serving: CancellationToken,
    pub servers: [(&'static str, JoinHandle<std::io::Result<()>>); 2],
    pub dispatcher: JoinHandle<()>,
    pub work: Work,
    pub notifier: JoinHandle<()>,
    pub renewer: JoinHandle<()>,
    pub lease: Arc<IdLease>,
    pub store: Arc<dyn Store>,
}

impl Shutdown {
    /// Waits for the request, then stops everything.
    pub async fn run(self) -> anyhow::Result<()> {
        self.requested.cancelled().await;
        tracing::info!("shutting down");
        self.health
            .set_not_serving::<NodeServiceServer<NodeApi>>()
            .await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        self.stop_serving.cancel();
        let grace = self.grace;
        let [(first, a), (second, b)] = self.servers;
        let servers = async {
            let (a, b) = tokio::join!(a, b);
            for (name, result) in [(first, a), (second, b)] {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(listener = name, error = %error, "listener failed")
                    }
                    Err(error) => {
                        tracing::error!(listener = name, error = %error, "listener task panicked")
                    }
                }
            }
        };
        // Requests waiting for work stop waiting as the dispatcher stops;
        // the work itself (sync attempts, pairing steps) gets the same
        // grace, then is cut at its next await.
        let work = self.work;
        let dispatcher = self.dispatcher;
        let work_done = async {
            let _ = dispatcher.await;
            work.shut_down(grace).await
        };
        let (servers, cut) = tokio::join!(tokio::time::timeout(grace, servers), work_done);
        if servers.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "in-flight requests did not finish in time; cancelled"
            );
        }
        if cut > 0 {
            tracing::warn!(
                tasks = cut,
                grace_secs = grace.as_secs_f64(),
                "sync attempts or pairing steps did not finish in time; cut off (a sync goes on from its last page when the daemon is back)"
            );
        }
        let _ = self.notifier.await;
        let _ = self.renewer.await;
        self.lease.release().await;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
