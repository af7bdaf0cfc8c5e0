//! Building audit events, the same way for every service.

use crate::domain::{self, Actor, AuditEvent, AuditEventId, AuditResult, IdGenerator, NodeId};

/// An audit event at the current time.
pub fn event(
    ids: &IdGenerator,
    actor: &Actor,
    event: &str,
    result: AuditResult,
    node_id: Option<NodeId>,
    reason: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: AuditEventId(ids.next_id()),
        at: domain::now(),
        event: event.to_owned(),
        result,
        node_id,
        actor: actor.name.clone(),
        token_id: actor.token_id,
        source_addr: actor.source_addr.clone(),
        reason: reason.to_owned(),
        detail: detail.to_string(),
    }
}
