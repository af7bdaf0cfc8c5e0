//! Pages of an origin's records, fetched with the page retries; the next
//! page is fetched (and parsed) in a task of its own while this one is
//! written, so the two run on different cores. The task is owned by its
//! handle: dropping the handle (a pull that fails or is cancelled) ends it.

use std::sync::Arc;

use backon::Retryable;
use tokio_util::task::AbortOnDropHandle;

use crate::domain::{Id, NodeId};
use crate::sync::ports::{DataPeer, RecordsPage, RecordsRequest};
use crate::sync::structure::SyncError;

/// Where one pull's pages come from.
#[derive(Clone)]
pub(super) struct PageSource {
    pub(super) peer: Arc<dyn DataPeer>,
    pub(super) base_url: String,
    pub(super) shared_node_id: NodeId,
    pub(super) exposed_module_id: Id,
    /// The peer's token, wiped from memory when the last clone is dropped.
    pub(super) token: Arc<zeroize::Zeroizing<String>>,
}

impl PageSource {
    /// One page, retried while the origin is throttling or briefly down.
    pub(super) async fn fetch(&self, request: RecordsRequest) -> Result<RecordsPage, SyncError> {
        (|| {
            self.peer.records_page(
                &self.base_url,
                self.shared_node_id,
                self.exposed_module_id,
                self.token.as_str(),
                &request,
            )
        })
        .retry(crate::sync::ports::page_retry())
        .when(crate::sync::ports::retry_page)
        .adjust(crate::sync::ports::page_wait)
        .await
        .map_err(SyncError::from)
    }

    /// `fetch` in a task of its own, ended when the handle is dropped.
    pub(super) fn prefetch(&self, request: RecordsRequest) -> Prefetch {
        let source = self.clone();
        Prefetch(AbortOnDropHandle::new(tokio::spawn(async move {
            source.fetch(request).await
        })))
    }
}

/// A page being fetched in the background.
pub(super) struct Prefetch(AbortOnDropHandle<Result<RecordsPage, SyncError>>);

impl Prefetch {
    pub(super) async fn page(self) -> Result<RecordsPage, SyncError> {
        self.0.await.map_err(|e| {
            SyncError::Protocol(format!("fetching the next page of records failed: {e}"))
        })?
    }
}
