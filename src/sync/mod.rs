//! The engine: what fedsync does, behind ports to the outside world.
//!
//! Invariants: one service layer under every edge (gRPC, the peer routes,
//! later the Corteza-compatible REST API), so no logic is written twice; the
//! engine talks to peers only through the `Peer` port and to storage only
//! through `Store`; every multi-row write of a step is one transaction.

pub mod audit;
pub mod catalog;
pub mod data;
pub mod notices;
pub mod pairing_flow;
pub mod ports;
pub mod progress;
pub mod records;
pub mod runs;
pub mod structure;

pub use notices::{Event, NoticeSettings, Notices};
pub use pairing_flow::{
    AuthenticatedPeer, InboundHandshake, IssuedUri, NodeCheck, NodeUpdate, PairingError,
    PairingService, PairingSettings, PeerAuthError,
};
pub use ports::{
    DataPeer, HandshakeInit, LocalData, LocalError, LocalRecords, NewModule, NoticeSender, Peer,
    PeerError, PeerReply, RecordsPage, RecordsRequest, RemoteModule, RemoteRecord, RemoteValue,
    SendError, StructurePage, StructurePeer,
};
