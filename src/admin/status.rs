//! The one place where errors become gRPC statuses.

use tonic::Status;

use crate::store::StoreError;
use crate::sync::LocalError;
use crate::sync::PairingError;
use crate::sync::admin_tokens::TokenError;
use crate::sync::catalog::CatalogError;
use crate::sync::records::RecordError;
use crate::sync::structure::SyncError;

pub fn from_store(error: StoreError) -> Status {
    match error {
        StoreError::Unavailable(_) => Status::unavailable(error.to_string()),
        StoreError::NotFound(_) => Status::not_found(error.to_string()),
        StoreError::Conflict(_) => Status::already_exists(error.to_string()),
        StoreError::Migration(_) | StoreError::Corrupt(_) | StoreError::Database(_) => {
            tracing::error!(error = %error, "store error in admin request");
            Status::internal(error.to_string())
        }
    }
}

pub fn from_pairing(error: PairingError) -> Status {
    match error {
        PairingError::NotFound(_) => Status::not_found(error.to_string()),
        PairingError::Invalid(_) => Status::invalid_argument(error.to_string()),
        PairingError::WrongState(_) | PairingError::NotConfigured(_) => {
            Status::failed_precondition(error.to_string())
        }
        PairingError::Peer {
            error: ref peer, ..
        } if peer.is_retriable() => Status::unavailable(error.to_string()),
        PairingError::Peer { .. } | PairingError::Conflict(_) => Status::aborted(error.to_string()),
        PairingError::Store(e) => from_store(e),
        PairingError::Crypto(e) => {
            tracing::error!(error = %e, "crypto error in admin request");
            Status::internal(e.to_string())
        }
    }
}

pub fn from_local(error: LocalError) -> Status {
    match error {
        LocalError::Invalid(_) => Status::invalid_argument(error.to_string()),
        LocalError::Conflict(_) => Status::already_exists(error.to_string()),
        LocalError::NotSupported(_) => Status::failed_precondition(error.to_string()),
        LocalError::Unavailable(_) => Status::unavailable(error.to_string()),
        LocalError::Store(e) => from_store(e),
    }
}

pub fn from_catalog(error: CatalogError) -> Status {
    match error {
        CatalogError::NotFound(_) => Status::not_found(error.to_string()),
        CatalogError::Invalid(_) => Status::invalid_argument(error.to_string()),
        CatalogError::Conflict(_) => Status::failed_precondition(error.to_string()),
        CatalogError::Local(e) => from_local(e),
        CatalogError::Store(e) => from_store(e),
    }
}

pub fn from_sync(error: SyncError) -> Status {
    match error {
        SyncError::NotFound(_) => Status::not_found(error.to_string()),
        SyncError::WrongState(_) => Status::failed_precondition(error.to_string()),
        SyncError::Peer(_) | SyncError::Protocol(_) => Status::aborted(error.to_string()),
        SyncError::Store(e) => from_store(e),
        SyncError::LocalUnavailable(_) => Status::unavailable(error.to_string()),
    }
}

pub fn from_record(error: RecordError) -> Status {
    match error {
        RecordError::NotFound(_) => Status::not_found(error.to_string()),
        RecordError::Invalid(_) => Status::invalid_argument(error.to_string()),
        RecordError::Local(e) => from_local(e),
    }
}

pub fn from_tokens(error: TokenError) -> Status {
    match error {
        TokenError::NotFound(_) => Status::not_found(error.to_string()),
        TokenError::Invalid(_) => Status::invalid_argument(error.to_string()),
        TokenError::Store(e) => from_store(e),
        TokenError::Crypto(e) => {
            tracing::error!(error = %e, "crypto error in admin request");
            Status::internal(e.to_string())
        }
    }
}

pub fn from_control(error: crate::scheduler::ControlError) -> Status {
    match error {
        crate::scheduler::ControlError::Invalid(_) => Status::invalid_argument(error.to_string()),
        crate::scheduler::ControlError::Store(e) => from_store(e),
    }
}

pub fn from_invite(error: crate::sync::invite::InviteError) -> Status {
    use crate::sync::invite::InviteError;
    match error {
        InviteError::Invalid(_) => Status::invalid_argument(error.to_string()),
        InviteError::NotConfigured(_) => Status::failed_precondition(error.to_string()),
        InviteError::Pairing(e) => from_pairing(e),
        InviteError::NotSent { .. } => Status::unavailable(error.to_string()),
    }
}
