//! The vocabulary of fedsync: nodes, statuses, ids, audit events, admin tokens.
//!
//! Invariant: plain Rust types with no IO and no serde, sqlx or prost derives.
//! Each boundary (store rows, gRPC messages, federation wire documents, CLI
//! JSON) has its own twin type and converts to and from these in one place.

pub mod audit;
pub mod id;
pub mod id_hash;
pub mod job;
pub mod live;
pub mod module;
pub mod net;
pub mod node;
pub mod notification;
pub mod pairing;
pub mod record;
pub mod sync;
pub mod token;

pub use audit::{Actor, AuditEvent, AuditFilter, AuditResult};
pub use id::{AuditEventId, Id, IdGenerator, InstanceLease, NodeId, ParseIdError, TokenId};
pub use id_hash::{IdMap, IdSet};
pub use job::{JobState, SyncJob};
pub use live::PeerCapabilities;
pub use module::{
    ExposedModule, FieldKind, FieldMapping, LocalField, LocalModule, MappingStatus, ModuleField,
    ModuleMapping, SharedModule,
};
pub use node::{Node, NodeFilter, PairingStatus, PeerKind, SyncStatus};
pub use notification::{Channel, Delivery, Notification};
pub use pairing::{
    CredentialKind, IssuedToken, OttChange, PairingChange, PairingToken, PeerCredential,
    Revocation, Role,
};
pub use record::{Record, RecordLink, RecordValues};
pub use sync::{RunCounts, RunStatus, SyncKind, SyncRun};
pub use token::{AdminToken, AdminTokenKind};

/// A point in time, always UTC. Stores keep it with microsecond precision.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The current time truncated to what every store can hold (microseconds),
/// so a value read back compares equal to the value written.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// A status string that is not one of the known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}
