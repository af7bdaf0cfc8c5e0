//! Errors in words: the services' own texts (the ones the CLI prints after
//! `error:`), each with an HTTP status, shown as a page.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

use super::layout;
use crate::scheduler::ControlError;
use crate::store::StoreError;
use crate::sync::PairingError;
use crate::sync::admin_tokens::TokenError;
use crate::sync::catalog::CatalogError;
use crate::sync::invite::InviteError;
use crate::sync::records::RecordError;

/// A refused or failed request, as the page that says so.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub message: String,
}

pub type Answer = Result<Response, UiError>;

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = layout::error_page(self.status, &self.message);
        (self.status, Html(page.into_string())).into_response()
    }
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> UiError {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => {
                tracing::error!(error = %e, "store error in a console request");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        UiError::new(status, e.to_string())
    }
}

impl From<PairingError> for UiError {
    fn from(e: PairingError) -> UiError {
        let status = match &e {
            PairingError::NotFound(_) => StatusCode::NOT_FOUND,
            PairingError::Invalid(_) => StatusCode::BAD_REQUEST,
            PairingError::WrongState(_)
            | PairingError::NotConfigured(_)
            | PairingError::Conflict(_) => StatusCode::CONFLICT,
            PairingError::Peer { .. } => StatusCode::BAD_GATEWAY,
            PairingError::Store(_) | PairingError::Crypto(_) => {
                tracing::error!(error = %e, "console request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        UiError::new(status, e.to_string())
    }
}

impl From<CatalogError> for UiError {
    fn from(e: CatalogError) -> UiError {
        let status = match &e {
            CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
            CatalogError::Invalid(_) => StatusCode::BAD_REQUEST,
            CatalogError::Conflict(_) => StatusCode::CONFLICT,
            CatalogError::Local(_) | CatalogError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        UiError::new(status, e.to_string())
    }
}

impl From<RecordError> for UiError {
    fn from(e: RecordError) -> UiError {
        let status = match &e {
            RecordError::NotFound(_) => StatusCode::NOT_FOUND,
            RecordError::Invalid(_) => StatusCode::BAD_REQUEST,
            RecordError::Local(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        UiError::new(status, e.to_string())
    }
}

impl From<TokenError> for UiError {
    fn from(e: TokenError) -> UiError {
        let status = match &e {
            TokenError::NotFound(_) => StatusCode::NOT_FOUND,
            TokenError::Invalid(_) => StatusCode::BAD_REQUEST,
            TokenError::Store(_) | TokenError::Crypto(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        UiError::new(status, e.to_string())
    }
}

impl From<InviteError> for UiError {
    fn from(e: InviteError) -> UiError {
        match e {
            InviteError::Pairing(e) => e.into(),
            InviteError::Invalid(_) => UiError::bad(e.to_string()),
            InviteError::NotConfigured(_) => UiError::new(StatusCode::CONFLICT, e.to_string()),
            InviteError::NotSent { .. } => {
                UiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

impl From<ControlError> for UiError {
    fn from(e: ControlError) -> UiError {
        match e {
            ControlError::Invalid(_) => UiError::bad(e.to_string()),
            ControlError::Store(e) => e.into(),
        }
    }
}

/// The `sync now` helpers answer with gRPC statuses; their messages are
/// the texts the CLI prints.
impl From<tonic::Status> for UiError {
    fn from(s: tonic::Status) -> UiError {
        use tonic::Code;
        let status = match s.code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition | Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Aborted => StatusCode::BAD_GATEWAY,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        UiError::new(status, s.message())
    }
}
