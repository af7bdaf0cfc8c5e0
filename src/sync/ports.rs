//! Ports: the traits the engine needs from the outside world. The federation
//! client implements `Peer`; tests may implement it with fakes.

use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::domain::{NodeId, PeerKind};

/// What an invitee sends to the inviter to request the handshake.
pub struct HandshakeInit {
    /// The inviter's node id from the node URI (path and `sharedNodeID`).
    pub shared_node_id: NodeId,
    /// The OTT from the node URI.
    pub pair_token: Zeroizing<String>,
    /// The token we issued for the peer to call us with.
    pub auth_token: Zeroizing<String>,
}

/// What we learnt from a successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReply {
    /// `Fedsync` when the peer answered with our extension, else `Corteza`.
    pub peer_kind: PeerKind,
    /// What a fedsync peer says it can do.
    pub capabilities: Option<crate::domain::PeerCapabilities>,
}

/// A failed call to a peer, classified where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The peer answered and said no (a non-200 status, or Corteza's
    /// `{"error": ...}` with 200).
    #[error("the peer refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// HTTP 429: the peer asks us to slow down, for `retry_after` when it
    /// says (`Retry-After`).
    #[error("the peer asks us to slow down (HTTP 429{}): {message}", retry_hint(.retry_after))]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("cannot reach the peer: {0}")]
    Unreachable(String),
    #[error("the peer did not answer within {}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The SSRF guard refused the address; nothing was sent.
    #[error("not contacted: {0}")]
    Blocked(String),
    #[error("the peer answered with a redirect to {0}; redirects are never followed")]
    Redirect(String),
    #[error("the peer's answer is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the peer's answer is not understood: {0}")]
    Protocol(String),
}

impl PeerError {
    /// Whether trying again later can help (as opposed to an admin acting).
    pub fn is_retriable(&self) -> bool {
        match self {
            PeerError::Unreachable(_) | PeerError::Timeout(_) | PeerError::Throttled { .. } => true,
            PeerError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The peer refused our credential: the pair must be re-established.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            PeerError::Refused {
                status: 401 | 403,
                ..
            }
        )
    }
}

fn retry_hint(after: &Option<Duration>) -> String {
    after.map_or_else(String::new, |d| format!(", retry after {}s", d.as_secs()))
}

/// The longest `Retry-After` waited out within an attempt; a longer one
/// ends the attempt and the job's backoff honours it.
pub const MAX_PAGE_WAIT: Duration = Duration::from_secs(5);

/// Whether a page request is worth retrying within the attempt: errors
/// that may pass, and a 429 that asks for a short wait (a peer's per-pair
/// rate limit); a longer or unspecified 429 ends the attempt.
pub fn retry_page(error: &PeerError) -> bool {
    match error {
        PeerError::Throttled { retry_after, .. } => {
            retry_after.is_some_and(|wait| wait <= MAX_PAGE_WAIT)
        }
        other => other.is_retriable(),
    }
}

/// The wait before retrying a page: what a 429 asked for, else the backoff's.
pub fn page_wait(error: &PeerError, backoff: Option<Duration>) -> Option<Duration> {
    match error {
        PeerError::Throttled {
            retry_after: Some(wait),
            ..
        } => backoff.map(|_| *wait),
        _ => backoff,
    }
}

/// How one page request is retried within an attempt: twice more, after
/// 100 ms then up to 1 s (jittered), and only for errors that may pass
/// (timeouts, refused connections, 5xx, 429). The job's own backoff takes
/// over when the attempt fails.
pub fn page_retry() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(2)
        .with_jitter()
}

/// Calls to a peer's federation routes. `base_url` is the peer's federation
/// base URL as the admin configured it (never taken from a request).
#[async_trait]
pub trait Peer: Send + Sync {
    /// `POST {base}/nodes/{shared}/handshake`, unauthenticated.
    async fn handshake_init(
        &self,
        base_url: &str,
        request: &HandshakeInit,
    ) -> Result<PeerReply, PeerError>;
    /// `POST {base}/nodes/{shared}/handshake-complete` with `Bearer <bearer>`.
    async fn handshake_complete(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        auth_token: &str,
    ) -> Result<PeerReply, PeerError>;
    /// An authenticated read (`GET {base}/nodes/{shared}/modules/exposed/?limit=1`)
    /// that succeeds only if the peer accepts `bearer`.
    async fn check_token(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError>;
    /// Tells a fedsync peer we removed the pair (best effort).
    async fn unpair_notice(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError>;
}

/// A module as an origin's structure document describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteModule {
    /// The origin's exposed module id.
    pub external_id: crate::domain::Id,
    pub compose_module_id: Option<crate::domain::Id>,
    pub compose_namespace_id: Option<crate::domain::Id>,
    pub handle: String,
    pub name: String,
    pub fields: Vec<crate::domain::ModuleField>,
    /// The origin stopped exposing it (sent by fedsync origins only).
    pub deleted: bool,
}

/// One page of an origin's structure listing.
#[derive(Debug, Clone, PartialEq)]
pub struct StructurePage {
    pub modules: Vec<RemoteModule>,
    /// The cursor of the next page, verbatim; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Structure reads from a peer (an extension of `Peer` kept separate so
/// pairing fakes need not implement it).
#[async_trait]
pub trait StructurePeer: Send + Sync {
    /// `GET {base}/nodes/{shared}/modules/exposed/?limit=..[&pageCursor=..]`.
    async fn structure_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<StructurePage, PeerError>;
}

/// Why the local data plane refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotSupported(String),
    #[error("the local data plane is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A new module for the local data plane.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModule {
    pub handle: String,
    pub name: String,
    pub fields: Vec<crate::domain::LocalField>,
}

/// The local data plane: where this node's modules and records live (its
/// own store, or a Corteza instance beside it).
#[async_trait]
pub trait LocalData: Send + Sync {
    /// `embedded` or `corteza`.
    fn kind(&self) -> &'static str;
    /// The namespace federation documents name as `composeNamespaceID`.
    async fn namespace_id(&self) -> Result<crate::domain::Id, LocalError>;
    async fn list_modules(&self) -> Result<Vec<crate::domain::LocalModule>, LocalError>;
    /// A live module by id or handle.
    async fn find_module(
        &self,
        key: &str,
    ) -> Result<Option<crate::domain::LocalModule>, LocalError>;
    async fn create_module(
        &self,
        module: NewModule,
    ) -> Result<crate::domain::LocalModule, LocalError>;
    /// Rewrites a module's handle, name and fields.
    async fn update_module(&self, module: &crate::domain::LocalModule) -> Result<(), LocalError>;
    async fn delete_module(&self, module: &crate::domain::LocalModule) -> Result<(), LocalError>;
}

/// A record as an origin's data document describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRecord {
    pub id: crate::domain::Id,
    /// In order; a multi-value field repeats its name.
    pub values: Vec<RemoteValue>,
    pub created_at: Option<crate::domain::Timestamp>,
    pub updated_at: Option<crate::domain::Timestamp>,
    pub deleted_at: Option<crate::domain::Timestamp>,
}

/// One value of an origin record.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteValue {
    pub name: String,
    /// `None` is Corteza's value-less entry (a false Bool).
    pub value: Option<String>,
    /// A reference to one of our own records, as our id (fedsync origins
    /// send back references to records that came from us this way).
    pub yours: bool,
}

/// One page of an origin's changed records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    pub records: Vec<RemoteRecord>,
    /// The next page's cursor, verbatim; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Where to start the next run (fedsync origins only): after the last
    /// record of this page, also on the last page.
    pub resume_cursor: Option<String>,
    /// How many records this page and the ones after it hold, when the
    /// origin says (fedsync origins, asked with `incTotal`).
    pub total: Option<u64>,
}

/// What to ask an origin for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordsRequest {
    pub limit: u32,
    pub cursor: Option<String>,
    /// Corteza's `lastSync`, unix seconds (first page only).
    pub last_sync: Option<i64>,
    /// Ask for the number of records to come (`incTotal`; fedsync origins).
    pub include_total: bool,
}

/// Record reads from a peer.
#[async_trait]
pub trait DataPeer: Send + Sync {
    /// `GET {base}/nodes/{shared}/modules/{exposed}/records/?...`.
    async fn records_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        exposed_module_id: crate::domain::Id,
        bearer: &str,
        request: &RecordsRequest,
    ) -> Result<RecordsPage, PeerError>;
}

/// Records in the local data plane.
#[async_trait]
pub trait LocalRecords: Send + Sync {
    /// Writes a batch (records, links, cursor, errors) as one unit; the
    /// records as stored (the batch is the store's: nothing is copied).
    async fn apply_batch(
        &self,
        batch: crate::store::RecordBatch,
    ) -> Result<Vec<crate::domain::Record>, LocalError>;
    async fn get_records(
        &self,
        ids: &[crate::domain::Id],
    ) -> Result<Vec<crate::domain::Record>, LocalError>;
    /// `get_records` of ids that are most likely records of `module_id`
    /// (a data plane that files records under their module, Corteza, looks
    /// there first).
    async fn get_module_records(
        &self,
        module_id: crate::domain::Id,
        ids: &[crate::domain::Id],
    ) -> Result<Vec<crate::domain::Record>, LocalError> {
        let _ = module_id;
        self.get_records(ids).await
    }
    async fn list_records(
        &self,
        module_id: crate::domain::Id,
        include_deleted: bool,
        after: Option<crate::domain::Id>,
        limit: u32,
    ) -> Result<Vec<crate::domain::Record>, LocalError>;
    /// Changed records of a module, in change order.
    async fn page_changes(
        &self,
        query: &crate::store::ChangeQuery,
    ) -> Result<Vec<crate::domain::Record>, LocalError>;
    /// How many changed records `page_changes` would page through; `None`
    /// when the data plane cannot tell without reading them all (Corteza):
    /// the destination then shows progress without a total.
    async fn count_changes(
        &self,
        query: &crate::store::ChangeQuery,
    ) -> Result<Option<u64>, LocalError>;
    /// Whether the data plane answers now (for `/readyz`); the reason when
    /// not. The embedded one lives in the store, which is checked apart.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether its records change without us (Corteza's do): then live
    /// changes look at `newest_change` of the modules peers want to hear of.
    fn polls_for_changes(&self) -> bool {
        false
    }
    /// The newest change of a module's records (created, updated or
    /// removed), as cheaply as the data plane can tell it.
    async fn newest_change(
        &self,
        module_id: crate::domain::Id,
    ) -> Result<Option<NewestChange>, LocalError> {
        let _ = module_id;
        Ok(None)
    }
    /// How hard the data plane is being used, when it is paced (Corteza).
    fn pacing(&self) -> Option<PacingStatus> {
        None
    }
}

/// The newest change of a module, as a data plane whose records change
/// without us tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestChange {
    /// Its time (an opaque, increasing mark: microseconds for Corteza).
    pub at: i64,
    /// When a page of changes can serve it (a second is served once over).
    pub servable_at: crate::domain::Timestamp,
}

/// The pacing of a data plane fedsync must not overload (Corteza): its
/// adaptive limit on requests in flight and what it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacingStatus {
    /// Requests allowed in flight now.
    pub limit: u32,
    /// The bound of `limit` (`local.corteza_max_concurrent`).
    pub max: u32,
    pub in_flight: u32,
    /// The median latency of the recent answers.
    pub p50_latency: Option<std::time::Duration>,
    /// Requests sent since the daemon started.
    pub requests: u64,
    /// Answers 429.
    pub throttled: u64,
    /// Answers 5xx.
    pub server_errors: u64,
    /// Requests not answered in time.
    pub timeouts: u64,
    /// Times the limit was cut.
    pub cuts: u64,
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// No retry can help (the server refused the address, the receiver
    /// answered 4xx).
    pub permanent: bool,
}

impl SendError {
    pub fn retriable(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// What delivers notifications: mail through SMTP, webhooks over HTTP.
#[async_trait]
pub trait NoticeSender: Send + Sync {
    /// Whether mail can be sent at all (an SMTP server is configured).
    fn email_enabled(&self) -> bool;
    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError>;
    /// POSTs `body` (JSON) to `url`, signed. `delivery` is the notification
    /// id, sent so a receiver can drop a repeated delivery.
    async fn post_webhook(
        &self,
        url: &str,
        event: &str,
        delivery: &str,
        body: &str,
    ) -> Result<(), SendError>;
}
