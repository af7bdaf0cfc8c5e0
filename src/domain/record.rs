//! Records of the local data plane, and the links that give received
//! records their identity.

use std::collections::BTreeMap;

use super::id::Id;
use super::{NodeId, Timestamp};

/// Field name to its values, in order (one value for a single-value field).
pub type RecordValues = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Id,
    pub module_id: Id,
    pub values: RecordValues,
    /// The peer the record arrived from (never sent back to it).
    pub origin_node_id: Option<NodeId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// Strictly increasing per module in commit order: the change keyset.
    pub changed_at: i64,
    /// 1 when created, one more on every write (Corteza's `revision`); set
    /// by the data plane. 0 on a record the engine is about to create (it
    /// is in no data plane yet, and a Corteza data plane gives it its own
    /// id).
    pub revision: u64,
}

/// (peer, origin exposed module, origin record) -> local record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordLink {
    pub node_id: NodeId,
    pub exposed_module_id: Id,
    pub origin_record_id: Id,
    pub local_module_id: Id,
    pub local_record_id: Id,
    /// The origin's change time of what we applied last (micros).
    pub origin_changed_at: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
