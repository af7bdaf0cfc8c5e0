//! Data: serving our exposed records to a peer (origin), and pulling a
//! peer's records into local records through a mapping (destination).
//!
//! The origin pages by a keyset on (changed_at, id), where changed_at is
//! assigned strictly increasing per module in commit order, so no change can
//! be skipped or repeated: not by updates within one second, not by clock
//! skew between nodes (the keyset is the origin's own), not by a failure
//! between pages. Cursors are signed, bound to the pair and the module, and
//! carry the `lastSync` filter; fedsync destinations also get a `resume`
//! cursor after the last record of every page, so the next run starts there.
//!
//! The destination applies each page in one transaction with the cursor it
//! reached, through the link table (peer, exposed module, origin record) ->
//! local record, so a crash at any point resumes with no loss and no
//! duplicate. For Corteza origins, which page by id and filter by `lastSync`,
//! the watermark is the newest origin timestamp seen and advances only when a
//! run completes; re-delivered records are recognised by their link.

//!
//! `serve.rs` is the origin side (`read_ahead.rs` makes a pull's next page
//! ready while the peer writes this one); the destination is `DataSync`, its runs
//! in `pull.rs` and the page it applies in `transform.rs`.

mod ahead;
mod fetch;
mod fields;
mod pages;
mod pull;
mod read_ahead;
mod serve;
#[cfg(test)]
mod test_support;
mod transform;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::pairing_flow::PairingService;
use crate::domain::{Id, IdGenerator, NodeId};
use crate::store::Store;
use crate::sync::ports::{DataPeer, LocalData, LocalRecords};
pub use read_ahead::{ReadAhead, ServeContext};
pub use serve::{
    RecordCursor, RecordsPageRequest, ServedRecord, ServedRecords, ServedValue, open_cursor,
    seal_cursor, serve_records,
};

pub const DEFAULT_RECORDS_PAGE: u32 = 100;
pub const MAX_RECORDS_PAGE: u32 = 1000;
/// A pull that needs more pages than this is cut off (a looping origin).
pub const MAX_PAGES: u64 = 1_000_000;
const CURSOR_PURPOSE: &str = "records-page";

/// The destination side of data sync.
pub struct DataSync {
    store: Arc<dyn Store>,
    local: Arc<dyn LocalData>,
    records: Arc<dyn LocalRecords>,
    pairing: Arc<PairingService>,
    peer: Arc<dyn DataPeer>,
    ids: Arc<IdGenerator>,
    /// This process, as written into its runs.
    owner: String,
    page_size: u32,
    running: Mutex<HashMap<(NodeId, Id), JobLock>>,
    progress: super::progress::ProgressBus,
}

/// Held while one (node, shared module) pull runs, so pulls never overlap.
type JobLock = Arc<tokio::sync::Mutex<()>>;

impl DataSync {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        local: Arc<dyn LocalData>,
        records: Arc<dyn LocalRecords>,
        pairing: Arc<PairingService>,
        peer: Arc<dyn DataPeer>,
        ids: Arc<IdGenerator>,
        page_size: u32,
        owner: String,
    ) -> DataSync {
        DataSync {
            store,
            local,
            records,
            pairing,
            peer,
            ids,
            owner,
            page_size: page_size.clamp(1, MAX_RECORDS_PAGE),
            running: Mutex::new(HashMap::new()),
            progress: super::progress::ProgressBus::new(),
        }
    }

    /// Where runs report their progress page by page.
    pub fn progress(&self) -> &super::progress::ProgressBus {
        &self.progress
    }
}
