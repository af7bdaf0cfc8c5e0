//! Nodes: the peers this node federates with, and their statuses.

use super::{NodeId, Role, Timestamp, UnknownVariant};

/// Where a node is in the pairing handshake. Spelled as Corteza spells it on
/// the wire; `failed` is ours (Corteza has no failed state) and always comes
/// with a reason saying what failed and what the admin can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairingStatus {
    Pending,
    PairRequested,
    Paired,
    Failed,
}

impl PairingStatus {
    pub const ALL: [PairingStatus; 4] = [
        PairingStatus::Pending,
        PairingStatus::PairRequested,
        PairingStatus::Paired,
        PairingStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PairingStatus::Pending => "pending",
            PairingStatus::PairRequested => "pair_requested",
            PairingStatus::Paired => "paired",
            PairingStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Result<PairingStatus, UnknownVariant> {
        PairingStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| UnknownVariant {
                what: "pairing status",
                value: value.to_owned(),
                expected: "pending, pair_requested, paired, failed",
            })
    }
}

/// The state of one kind of sync (structure or data) for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Never ran; spelled as the empty string.
    Never,
    Syncing,
    Synced,
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Never => "",
            SyncStatus::Syncing => "syncing",
            SyncStatus::Synced => "synced",
            SyncStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Result<SyncStatus, UnknownVariant> {
        [
            SyncStatus::Never,
            SyncStatus::Syncing,
            SyncStatus::Synced,
            SyncStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
        .ok_or_else(|| UnknownVariant {
            what: "sync status",
            value: value.to_owned(),
            expected: "syncing, synced, failed or empty",
        })
    }
}

/// What software the peer runs, learned during the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    Unknown,
    Corteza,
    Fedsync,
}

impl PeerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::Unknown => "unknown",
            PeerKind::Corteza => "corteza",
            PeerKind::Fedsync => "fedsync",
        }
    }

    pub fn parse(value: &str) -> Result<PeerKind, UnknownVariant> {
        [PeerKind::Unknown, PeerKind::Corteza, PeerKind::Fedsync]
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| UnknownVariant {
                what: "peer kind",
                value: value.to_owned(),
                expected: "unknown, corteza, fedsync",
            })
    }
}

/// A peer node as this node knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: NodeId,
    /// The pair identifier (the inviter's node id), once known.
    pub shared_node_id: Option<NodeId>,
    /// Which side of the pair we are.
    pub role: Role,
    pub name: String,
    pub base_url: String,
    pub contact: String,
    pub status: PairingStatus,
    pub status_reason: String,
    pub peer_kind: PeerKind,
    pub handshake_requested_at: Option<Timestamp>,
    pub handshake_source_addr: String,
    pub peer_token_fingerprint: String,
    pub structure_status: SyncStatus,
    pub structure_synced_at: Option<Timestamp>,
    pub structure_error: String,
    pub data_status: SyncStatus,
    pub data_synced_at: Option<Timestamp>,
    pub data_error: String,
    pub paused: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl Node {
    /// A fresh node record in `pending`, with nothing synced yet.
    pub fn new_pending(
        id: NodeId,
        role: Role,
        name: &str,
        base_url: &str,
        contact: &str,
        now: Timestamp,
    ) -> Node {
        Node {
            id,
            shared_node_id: None,
            role,
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            contact: contact.to_owned(),
            status: PairingStatus::Pending,
            status_reason: String::new(),
            peer_kind: PeerKind::Unknown,
            handshake_requested_at: None,
            handshake_source_addr: String::new(),
            peer_token_fingerprint: String::new(),
            structure_status: SyncStatus::Never,
            structure_synced_at: None,
            structure_error: String::new(),
            data_status: SyncStatus::Never,
            data_synced_at: None,
            data_error: String::new(),
            paused: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }
}

/// Which nodes a listing returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFilter {
    pub status: Option<PairingStatus>,
    /// Case-insensitive substring of the name or the base URL.
    pub query: Option<String>,
    pub include_deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_in_corteza_spelling() {
        for status in PairingStatus::ALL {
            assert_eq!(PairingStatus::parse(status.as_str()), Ok(status));
        }
        assert_eq!(PairingStatus::PairRequested.as_str(), "pair_requested");
        assert!(PairingStatus::parse("pairing").is_err());
        assert_eq!(SyncStatus::parse(""), Ok(SyncStatus::Never));
        assert_eq!(PeerKind::parse("corteza"), Ok(PeerKind::Corteza));
    }
}
