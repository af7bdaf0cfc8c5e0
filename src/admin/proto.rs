//! The fence around the generated protobuf code, and the conversions between
//! domain types and admin messages (the only place that knows both).

#![allow(clippy::all, missing_docs)]

use crate::domain::{AuditEvent, Node, Timestamp};

/// The generated `fedsync.admin.v1` package.
pub mod v1 {
    tonic::include_proto!("fedsync.admin.v1");
}

/// The encoded descriptor set of the admin protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fedsync_admin_descriptor.bin"));

pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn opt_timestamp(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

/// The domain time of a message timestamp; `None` when out of range.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn node(node: &Node) -> v1::Node {
    v1::Node {
        id: node.id.get(),
        shared_node_id: node.shared_node_id.map(|id| id.get()).unwrap_or(0),
        name: node.name.clone(),
        base_url: node.base_url.clone(),
        contact: node.contact.clone(),
        status: node.status.as_str().to_owned(),
        status_reason: node.status_reason.clone(),
        peer_kind: node.peer_kind.as_str().to_owned(),
        handshake_requested_at: opt_timestamp(node.handshake_requested_at),
        handshake_source_addr: node.handshake_source_addr.clone(),
        peer_token_fingerprint: node.peer_token_fingerprint.clone(),
        structure_status: node.structure_status.as_str().to_owned(),
        structure_synced_at: opt_timestamp(node.structure_synced_at),
        structure_error: node.structure_error.clone(),
        data_status: node.data_status.as_str().to_owned(),
        data_synced_at: opt_timestamp(node.data_synced_at),
        data_error: node.data_error.clone(),
        paused: node.paused,
        created_at: Some(timestamp(node.created_at)),
        updated_at: Some(timestamp(node.updated_at)),
        deleted_at: opt_timestamp(node.deleted_at),
        role: node.role.as_str().to_owned(),
    }
}

pub fn audit_event(event: &AuditEvent) -> v1::AuditEvent {
    v1::AuditEvent {
        id: event.id.get(),
        at: Some(timestamp(event.at)),
        event: event.event.clone(),
        result: event.result.as_str().to_owned(),
        node_id: event.node_id.map(|id| id.get()).unwrap_or(0),
        actor: event.actor.clone(),
        token_id: event.token_id.map(|id| id.get()).unwrap_or(0),
        source_addr: event.source_addr.clone(),
        reason: event.reason.clone(),
        detail_json: event.detail.clone(),
    }
}
