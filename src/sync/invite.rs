//! Inviting a peer by email: a new node URI, mailed to one address only,
//! the attempt audited either way. One implementation under every edge.

use crate::domain::{Actor, AuditResult, IdGenerator, Node, NodeId};
use crate::store::Store;

use super::{IssuedUri, Notices, PairingError, PairingService};

/// Why an invite was not sent.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotConfigured(String),
    #[error(transparent)]
    Pairing(#[from] PairingError),
    /// The URI was generated (the old one is void) but the mail failed.
    #[error(
        "a new node URI was generated for node {id} but could not be sent to {to}: {error}; \
         run `fedsync node invite {id} --email {to}` again, or copy a URI from `fedsync node uri {id}`"
    )]
    NotSent {
        id: NodeId,
        to: String,
        error: String,
    },
}

/// Generates a new node URI for `id` and mails it to `to`.
pub async fn invite(
    pairing: &PairingService,
    notices: &Notices,
    store: &dyn Store,
    ids: &IdGenerator,
    actor: &Actor,
    id: NodeId,
    to: &str,
) -> Result<(Node, IssuedUri), InviteError> {
    let to = to.trim();
    if to.is_empty() {
        return Err(InviteError::Invalid(
            "email is required: the address the node URI is sent to".into(),
        ));
    }
    Notices::check_address(to).map_err(InviteError::Invalid)?;
    if !notices.email_enabled() {
        return Err(InviteError::NotConfigured(
            "email is not configured: set notify.smtp.host (or copy the URI from `fedsync node uri`)"
                .into(),
        ));
    }
    let (node, uri) = pairing.generate_uri(actor, id).await?;
    let sent = notices.send_invite(&node, to, &uri).await;
    let event = super::audit::event(
        ids,
        actor,
        "node.invited",
        if sent.is_ok() {
            AuditResult::Ok
        } else {
            AuditResult::Failed
        },
        Some(id),
        sent.as_ref().err().map(String::as_str).unwrap_or(""),
        serde_json::json!({ "to": to }),
    );
    if let Err(error) = store.append_audit(&event).await {
        tracing::warn!(error = %error, "cannot record the invite in the audit log");
    }
    match sent {
        Ok(()) => Ok((node, uri)),
        Err(error) => Err(InviteError::NotSent {
            id,
            to: to.to_owned(),
            error,
        }),
    }
}
