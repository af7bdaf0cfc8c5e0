//! The origin's read-ahead. A destination asks for a page only once it
//! has the one before (the cursor is in it), so every page used to wait for
//! the origin's query and encoding: in the initial sync's profile the
//! destination waited ~3 ms a page for the next one (issue 30). When a
//! page goes out with a next cursor, the page after it is served now, in a
//! task of its own, and the peer's request for it takes it.
//!
//! A page made ready early is the page the request would have got a moment
//! before: the keyset moves only forward, so a change committed meanwhile
//! comes on a later page. It is taken only by the same peer, for the same
//! module, cursor and page size, within `MAX_AGE`, and while the module is
//! exposed with the same fields; otherwise the page is served afresh. The
//! request is authenticated as always before anything is taken.
//!
//! Each task is owned by its slot: a slot replaced, evicted or taken by a
//! request that then goes away ends it. At most `MAX_SLOTS` slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;

use super::serve::{RecordsPageRequest, ServedRecords, serve_records};
use crate::crypto::SigningKey;
use crate::domain::{Node, NodeId};
use crate::store::Store;
use crate::sync::ports::LocalRecords;
use crate::sync::structure::ServeError;

/// How long a page made ready may wait for its request.
const MAX_AGE: Duration = Duration::from_secs(5);
/// Pages made ready at once, across all peers and modules.
const MAX_SLOTS: usize = 16;

/// What serving a page needs, owned (a page made ready runs in a task).
#[derive(Clone)]
pub struct ServeContext {
    pub store: Arc<dyn Store>,
    pub records: Arc<dyn LocalRecords>,
    pub key: SigningKey,
    /// Serve records that arrived from other peers too.
    pub reexport: bool,
}

/// The next page of each (peer, module) pull being served.
pub struct ReadAhead {
    context: Arc<ServeContext>,
    slots: Mutex<HashMap<(NodeId, String), Slot>>,
}

struct Slot {
    cursor: String,
    limit: Option<u32>,
    started: Instant,
    page: AbortOnDropHandle<Result<ServedRecords, ServeError>>,
}

impl ReadAhead {
    pub fn new(context: ServeContext) -> ReadAhead {
        ReadAhead {
            context: Arc::new(context),
            slots: Mutex::default(),
        }
    }

    /// One page of `module`'s records for `node`, the one made ready if it
    /// fits the request; the page after it is made ready.
    pub async fn serve(
        &self,
        node: &Node,
        module: &str,
        request: RecordsPageRequest,
    ) -> Result<ServedRecords, ServeError> {
        let context = &*self.context;
        let limit = request.limit;
        let page = match self.take(node.id, module, &request) {
            Some(slot) => match slot.page.await {
                Ok(Ok(page)) if still_exposed(context, &page).await? => page,
                _ => serve(context, node, module, request).await?,
            },
            None => serve(context, node, module, request).await?,
        };
        if let Some(next) = &page.next_cursor {
            self.prepare(node, module, next, limit);
        }
        Ok(page)
    }

    /// The slot made ready for exactly this request, if any.
    fn take(&self, node: NodeId, module: &str, request: &RecordsPageRequest) -> Option<Slot> {
        let cursor = request.cursor.as_deref()?;
        if request.include_total {
            return None;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.remove(&(node, module.to_owned()))?;
        (slot.cursor == cursor && slot.limit == request.limit && slot.started.elapsed() < MAX_AGE)
            .then_some(slot)
    }

    fn prepare(&self, node: &Node, module: &str, cursor: &str, limit: Option<u32>) {
        let request = RecordsPageRequest {
            last_sync: None,
            limit,
            cursor: Some(cursor.to_owned()),
            include_total: false,
        };
        let key = (node.id, module.to_owned());
        let (context, node, module) = (self.context.clone(), node.clone(), module.to_owned());
        let page = AbortOnDropHandle::new(tokio::spawn(async move {
            serve(&context, &node, &module, request).await
        }));
        let slot = Slot {
            cursor: cursor.to_owned(),
            limit,
            started: Instant::now(),
            page,
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // The pull's own slot is replaced, not counted against the cap.
        slots.remove(&key);
        slots.retain(|_, s| s.started.elapsed() < MAX_AGE);
        if slots.len() >= MAX_SLOTS
            && let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
        {
            slots.remove(&oldest);
        }
        slots.insert(key, slot);
    }
}

async fn serve(
    context: &ServeContext,
    node: &Node,
    module: &str,
    request: RecordsPageRequest,
) -> Result<ServedRecords, ServeError> {
    serve_records(
        &*context.store,
        &*context.records,
        &context.key,
        node,
        module,
        request,
        context.reexport,
    )
    .await
}

/// Whether the module is still exposed as it was when `page` was made.
async fn still_exposed(context: &ServeContext, page: &ServedRecords) -> Result<bool, ServeError> {
    let now = context.store.get_exposed_module(page.exposure.id).await?;
    Ok(now.as_ref() == Some(&page.exposure))
}
