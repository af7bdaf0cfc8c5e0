//! The fence around the generated protobuf code, and the conversions between
//! domain types and admin messages (the only place that knows both).

#![allow(clippy::all, missing_docs)]

use crate::domain::{
    AuditEvent, ExposedModule, LocalField, LocalModule, ModuleField, ModuleMapping, Node, Record,
    SharedModule, SyncRun, Timestamp,
};

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
        live: None,
    }
}

/// The pacing of the Corteza data plane.
pub fn pacing(p: crate::sync::ports::PacingStatus) -> v1::CortezaPacing {
    v1::CortezaPacing {
        limit: p.limit,
        max: p.max,
        in_flight: p.in_flight,
        p50_latency_ms: p.p50_latency.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        requests: p.requests,
        throttled: p.throttled,
        server_errors: p.server_errors,
        timeouts: p.timeouts,
        limit_cuts: p.cuts,
    }
}

/// Live changes with one peer.
pub fn live(
    live: &crate::sync::live::PeerLive,
    caps: Option<&crate::domain::PeerCapabilities>,
) -> v1::LiveStatus {
    v1::LiveStatus {
        on: live.on,
        last_received_at: opt_timestamp(live.last_received),
        last_sent_at: opt_timestamp(live.last_sent),
        peer_version: caps.map(|c| c.version.clone()).unwrap_or_default(),
        peer_capabilities: caps.map(|c| c.capabilities.clone()).unwrap_or_default(),
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

pub fn field(f: &ModuleField) -> v1::Field {
    v1::Field {
        name: f.name.clone(),
        kind: f.kind.clone(),
        label: f.label.clone(),
        is_multi: f.is_multi,
    }
}

pub fn local_field(f: &LocalField) -> v1::Field {
    field(&f.to_module_field())
}

pub fn module(m: &LocalModule) -> v1::Module {
    v1::Module {
        id: m.id.get(),
        namespace_id: m.namespace_id.get(),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: m.fields.iter().map(local_field).collect(),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
    }
}

pub fn exposed(m: &ExposedModule) -> v1::ExposedModule {
    v1::ExposedModule {
        id: m.id.get(),
        node_id: m.node_id.get(),
        module_id: m.module_id.get(),
        namespace_id: m.namespace_id.get(),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: m.fields.iter().map(field).collect(),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
        deleted_at: opt_timestamp(m.deleted_at),
    }
}

pub fn shared(m: &SharedModule, mapping_status: &str) -> v1::SharedModule {
    v1::SharedModule {
        id: m.id.get(),
        node_id: m.node_id.get(),
        external_module_id: m.external_module_id.get(),
        origin_module_id: m.origin_module_id.map(|i| i.get()).unwrap_or(0),
        origin_namespace_id: m.origin_namespace_id.map(|i| i.get()).unwrap_or(0),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: m.fields.iter().map(field).collect(),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
        deleted_at: opt_timestamp(m.deleted_at),
        mapping_status: mapping_status.to_owned(),
    }
}

pub fn mapping(m: &ModuleMapping, shared_handle: &str, module_handle: &str) -> v1::Mapping {
    v1::Mapping {
        id: m.id.get(),
        node_id: m.node_id.get(),
        shared_module_id: m.shared_module_id.get(),
        shared_handle: shared_handle.to_owned(),
        module_id: m.local_module_id.get(),
        module_handle: module_handle.to_owned(),
        namespace_id: m.namespace_id.get(),
        fields: m
            .fields
            .iter()
            .map(|f| v1::FieldMapping {
                origin: Some(field(&f.origin)),
                destination: Some(field(&f.destination)),
            })
            .collect(),
        status: m.status.as_str().to_owned(),
        status_reason: m.status_reason.clone(),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
    }
}

pub fn run(r: &SyncRun) -> v1::SyncRun {
    v1::SyncRun {
        id: r.id.get(),
        node_id: r.node_id.get(),
        kind: r.kind.as_str().to_owned(),
        shared_module_id: r.shared_module_id.map(|i| i.get()).unwrap_or(0),
        trigger: r.trigger.clone(),
        status: r.status.as_str().to_owned(),
        started_at: Some(timestamp(r.started_at)),
        finished_at: opt_timestamp(r.finished_at),
        pages: r.counts.pages,
        created: r.counts.created,
        updated: r.counts.updated,
        deleted: r.counts.deleted,
        skipped: r.counts.skipped,
        errors: r.counts.errors,
        error: r.error.clone(),
    }
}

/// A record with its values in the module's field order; values of fields
/// the module no longer has come last.
pub fn record(r: &Record, module: &LocalModule) -> v1::Record {
    let mut values: Vec<v1::RecordValue> = module
        .fields
        .iter()
        .filter_map(|f| {
            r.values.get(&f.name).map(|list| v1::RecordValue {
                name: f.name.clone(),
                values: list.clone(),
                multi: f.is_multi,
            })
        })
        .collect();
    for (name, list) in &r.values {
        if module.field(name).is_none() {
            values.push(v1::RecordValue {
                name: name.clone(),
                values: list.clone(),
                multi: list.len() > 1,
            });
        }
    }
    v1::Record {
        id: r.id.get(),
        module_id: r.module_id.get(),
        values,
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        deleted_at: opt_timestamp(r.deleted_at),
        origin_node_id: r.origin_node_id.map(|n| n.get()).unwrap_or(0),
    }
}

pub fn job(j: &crate::domain::SyncJob) -> v1::Job {
    v1::Job {
        id: j.id.get(),
        kind: j.kind.as_str().to_owned(),
        shared_module_id: j.shared_module_id.map(|i| i.get()).unwrap_or(0),
        schedule: j.schedule.clone(),
        state: j.state.as_str().to_owned(),
        next_run_at: Some(timestamp(j.next_run_at)),
        attempts: j.attempts,
        last_error: j.last_error.clone(),
        last_error_at: j.last_error_at.map(timestamp),
        last_success_at: j.last_success_at.map(timestamp),
        stop_reason: j.stop_reason.clone(),
        triggered: j.trigger_pending(),
    }
}

pub fn admin_token(t: &crate::domain::AdminToken, now: Timestamp) -> v1::AdminToken {
    v1::AdminToken {
        id: t.id.get(),
        name: t.name.clone(),
        kind: t.kind.as_str().to_owned(),
        created_at: Some(timestamp(t.created_at)),
        expires_at: opt_timestamp(t.expires_at),
        revoked_at: opt_timestamp(t.revoked_at),
        state: t.state(now).to_owned(),
    }
}
