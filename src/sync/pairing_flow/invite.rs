//! A pairing's first steps as the admin drives them: a peer registered to
//! invite with its node URI, a new node URI (and OTT) for an inviter node,
//! which re-pairs one already paired, and the inviter added from the node
//! URI its admin passed on.

use zeroize::Zeroizing;

use super::{MAX_CONTACT_CHARS, MAX_NAME_CHARS, PairingError, PairingService, check_text};
use crate::domain::{
    self, Actor, AuditResult, CredentialKind, Node, NodeId, PairingChange, PairingStatus,
    Revocation, Role, Timestamp,
};
use crate::pairing::{
    Action, Facts, check_action, format_node_uri, parse_base_url, parse_node_uri,
};

/// A freshly generated node URI. The URI is a secret for the admin to pass on.
pub struct IssuedUri {
    pub uri: Zeroizing<String>,
    pub expires_at: Timestamp,
}

impl PairingService {
    /// Registers a peer to invite and returns its node URI.
    pub async fn create_node(
        &self,
        actor: &Actor,
        name: &str,
        base_url: &str,
        contact: &str,
    ) -> Result<(Node, IssuedUri), PairingError> {
        let public_url = self.public_url()?;
        let name = check_text("name", name, MAX_NAME_CHARS, false)?;
        let contact = check_text("contact", contact, MAX_CONTACT_CHARS, true)?;
        let base_url = parse_base_url(base_url, self.settings.allow_insecure_peers)
            .map_err(|e| PairingError::Invalid(format!("--base-url: {e}")))?;
        let now = domain::now();
        let node = Node::new_pending(
            NodeId(self.ids.next_id()),
            Role::Inviter,
            &name,
            &base_url,
            &contact,
            now,
        );
        let (ott, ott_change, expires_at) = self.new_ott(now)?;
        let mut change = PairingChange::update(node.clone());
        change.insert = true;
        change.ott = Some(ott_change);
        change.audit = vec![
            self.audit(
                actor,
                "node.created",
                AuditResult::Ok,
                Some(node.id),
                "",
                serde_json::json!({ "baseUrl": base_url, "role": "inviter" }),
            ),
            self.audit(
                actor,
                "ott.generated",
                AuditResult::Ok,
                Some(node.id),
                "",
                serde_json::json!({ "expiresAt": expires_at.to_rfc3339() }),
            ),
        ];
        self.store.apply_pairing_change(&change).await?;
        let uri = format_node_uri(
            &public_url,
            node.id,
            &ott,
            &self.settings.label,
            self.settings.allow_insecure_peers,
        );
        Ok((node, IssuedUri { uri, expires_at }))
    }

    /// A new OTT and node URI for an inviter node. On a node that is already
    /// paired (or failed), this starts a re-pairing: the node waits for a
    /// new handshake; its exposures, mappings and links stay.
    pub async fn generate_uri(
        &self,
        actor: &Actor,
        id: NodeId,
    ) -> Result<(Node, IssuedUri), PairingError> {
        let public_url = self.public_url()?;
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        check_action(&before, Action::GenerateUri, Facts::default())
            .map_err(PairingError::WrongState)?;
        let now = domain::now();
        let (ott, ott_change, expires_at) = self.new_ott(now)?;
        let mut node = before.clone();
        node.updated_at = now;
        let repairing = before.status != PairingStatus::Pending;
        if repairing {
            node.status = PairingStatus::Pending;
            node.status_reason =
                "re-pairing: waiting for the peer's handshake with the new node URI".into();
        }
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.ott = Some(ott_change);
        change.audit = vec![self.audit(
            actor,
            "ott.generated",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({ "expiresAt": expires_at.to_rfc3339(), "repairing": repairing }),
        )];
        self.apply(&change).await?;
        let uri = format_node_uri(
            &public_url,
            node.id,
            &ott,
            &self.settings.label,
            self.settings.allow_insecure_peers,
        );
        Ok((node, IssuedUri { uri, expires_at }))
    }

    /// Registers the inviter from its node URI (pending). The same peer
    /// added again (same base URL and shared node id) is the same node,
    /// reset for re-pairing, so its exposures, mappings and links stay.
    pub async fn add_from_uri(
        &self,
        actor: &Actor,
        uri: &str,
    ) -> Result<(Node, bool), PairingError> {
        let parsed = parse_node_uri(uri, self.settings.allow_insecure_peers)
            .map_err(|e| PairingError::Invalid(e.to_string()))?;
        if let Some(ours) = self.store.get_node(parsed.node_id).await?
            && ours.role == Role::Inviter
            && self.settings.public_url.as_ref().is_some_and(|u| {
                parse_base_url(u.as_str(), true).is_ok_and(|b| b == parsed.base_url)
            })
        {
            return Err(PairingError::Invalid(
                "this node URI was generated by this node; give it to the peer's admin instead"
                    .into(),
            ));
        }
        let now = domain::now();
        let existing = self
            .store
            .find_invitee_node(&parsed.base_url, parsed.node_id)
            .await?;
        let name = if parsed.name.is_empty() {
            parsed.host.clone()
        } else {
            parsed.name.clone()
        };
        let (node, expect, readded) = match existing {
            Some(before) => {
                let mut node = before.clone();
                node.status = PairingStatus::Pending;
                node.status_reason =
                    "added again from a new node URI; run `fedsync node pair` to re-pair".into();
                node.name = name;
                node.updated_at = now;
                (node, vec![before.status], true)
            }
            None => {
                let mut node = Node::new_pending(
                    NodeId(self.ids.next_id()),
                    Role::Invitee,
                    &name,
                    &parsed.base_url,
                    "",
                    now,
                );
                node.shared_node_id = Some(parsed.node_id);
                (node, Vec::new(), false)
            }
        };
        let mut change = PairingChange::update(node.clone());
        change.insert = !readded;
        change.expect_status = expect;
        change.put_credentials =
            vec![self.seal(node.id, CredentialKind::PairToken, &parsed.token, now)?];
        if readded {
            change.delete_credentials = vec![CredentialKind::AuthToken];
            change.revoke_tokens = Some(Revocation::AllExcept(
                Vec::new(),
                "re-pairing from a new node URI".into(),
            ));
        }
        change.audit = vec![self.audit(
            actor,
            if readded { "node.readded" } else { "node.created" },
            AuditResult::Ok,
            Some(node.id),
            "",
            serde_json::json!({ "baseUrl": node.base_url, "sharedNodeId": parsed.node_id.to_string(), "role": "invitee" }),
        )];
        let _guard = self.lock(node.id).await;
        self.apply(&change).await?;
        Ok((node, readded))
    }
}
