//! A node's life after pairing as the admin drives it: its details, its
//! removal (a fedsync peer is told, as the daemon's work), a check that the
//! peer still takes our token, and its return after a removal.

use std::sync::Arc;

use super::{
    MAX_CONTACT_CHARS, MAX_NAME_CHARS, NodeCheck, NodeUpdate, PairingError, PairingService,
    check_text,
};
use crate::domain::{
    self, Actor, AuditResult, CredentialKind, Node, NodeId, PairingChange, PairingStatus, PeerKind,
    Revocation,
};
use crate::pairing::parse_base_url;

impl PairingService {
    pub async fn update_node(
        &self,
        actor: &Actor,
        id: NodeId,
        update: &NodeUpdate,
    ) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let mut node = before.clone();
        if let Some(name) = &update.name {
            node.name = check_text("name", name, MAX_NAME_CHARS, false)?;
        }
        if let Some(contact) = &update.contact {
            node.contact = check_text("contact", contact, MAX_CONTACT_CHARS, true)?;
        }
        if let Some(base_url) = &update.base_url {
            node.base_url = parse_base_url(base_url, self.settings.allow_insecure_peers)
                .map_err(|e| PairingError::Invalid(format!("--base-url: {e}")))?;
        }
        node.updated_at = domain::now();
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.audit = vec![self.audit(
            actor,
            "node.updated",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({ "name": node.name, "contact": node.contact, "baseUrl": node.base_url }),
        )];
        self.apply(&change).await?;
        Ok(node)
    }

    /// Removes a node: its tokens are revoked at once, held secrets and the
    /// OTT deleted; a fedsync peer gets a best-effort unpair notice. Its
    /// exposures, mappings and record links stay in the store.
    pub async fn delete_node(
        self: &Arc<Self>,
        actor: &Actor,
        id: NodeId,
    ) -> Result<Node, PairingError> {
        let actor = actor.clone();
        self.owned(move |me| async move { me.delete_step(&actor, id).await })
            .await
    }

    async fn delete_step(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let mut notified = false;
        if before.status == PairingStatus::Paired
            && before.peer_kind == PeerKind::Fedsync
            && let Some(token) = self.open(id, CredentialKind::AuthToken).await?
        {
            let shared = before.shared_node_id.unwrap_or(before.id);
            match self
                .peer
                .unpair_notice(&before.base_url, shared, &token)
                .await
            {
                Ok(()) => notified = true,
                Err(error) => {
                    tracing::warn!(node_id = %id, error = %error, "the unpair notice did not reach the peer")
                }
            }
        }
        let now = domain::now();
        let mut node = before.clone();
        node.deleted_at = Some(now);
        node.updated_at = now;
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.delete_ott = true;
        change.delete_credentials = vec![CredentialKind::AuthToken, CredentialKind::PairToken];
        change.revoke_tokens = Some(Revocation::AllExcept(Vec::new(), "node removed".into()));
        change.audit = vec![
            self.audit(
                actor,
                "node.deleted",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({ "peerNotified": notified }),
            ),
            self.audit(
                actor,
                "token.revoked",
                AuditResult::Ok,
                Some(id),
                "node_removed",
                serde_json::json!({ "all": true }),
            ),
        ];
        self.apply(&change).await?;
        Ok(node)
    }

    /// Calls the peer with the token it gave us.
    pub async fn check_node(&self, id: NodeId) -> Result<NodeCheck, PairingError> {
        let node = self.load(id).await?;
        if node.status != PairingStatus::Paired {
            return Ok(NodeCheck {
                ok: false,
                message: format!("node {id} is {}, not paired", node.status.as_str()),
            });
        }
        let Some(token) = self.open(id, CredentialKind::AuthToken).await? else {
            return Ok(NodeCheck {
                ok: false,
                message: format!("node {id} holds no token from the peer"),
            });
        };
        let shared = node.shared_node_id.unwrap_or(node.id);
        Ok(
            match self.peer.check_token(&node.base_url, shared, &token).await {
                Ok(()) => NodeCheck {
                    ok: true,
                    message: format!("{} answers and accepts our token", node.base_url),
                },
                Err(error) => NodeCheck {
                    ok: false,
                    message: error.to_string(),
                },
            },
        )
    }

    /// Shows a removed node again (Corteza's undelete). Its tokens were
    /// revoked when it was removed, so it comes back `pending` and must be
    /// paired again.
    pub async fn undelete_node(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = match self.store.get_node(id).await? {
            Some(node) => node,
            None => return Err(PairingError::NotFound(id)),
        };
        if before.deleted_at.is_none() {
            return Ok(before);
        }
        let mut node = before.clone();
        node.deleted_at = None;
        node.status = PairingStatus::Pending;
        node.status_reason = "restored after removal: pair again (its tokens were revoked)".into();
        node.updated_at = domain::now();
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.audit = vec![self.audit(
            actor,
            "node.undeleted",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({}),
        )];
        self.apply(&change).await?;
        Ok(node)
    }

    /// The federation base URL for a bare domain (Corteza's documented
    /// `domain`): `https://DOMAIN/federation`, or `http://` when insecure
    /// peers are allowed. A value with a scheme is taken as a base URL.
    pub fn base_url_for_domain(&self, domain: &str) -> String {
        let domain = domain.trim();
        if domain.contains("://") {
            return domain.to_owned();
        }
        let scheme = if self.settings.allow_insecure_peers {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/federation", domain.trim_end_matches('/'))
    }
}
