//! The objects of the fake's world as recorded Corteza makes them: the
//! clock, ids, modules and records, and its error envelope.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::World;
use crate::common::fake_peer::fixture;

pub(super) fn now(w: &mut World) -> String {
    if w.wall_clock {
        let now = chrono::Utc::now();
        w.clock = Some(now);
        return now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let step = match (w.clock, w.clock_held) {
        (Some(_), true) => chrono::Duration::zero(),
        _ => chrono::Duration::seconds(1),
    };
    let next = w
        .clock
        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::hours(1))
        + step;
    w.clock = Some(next);
    next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn error(message: &str, kind: &str) -> Response {
    Json(json!({"error": {"message": message, "meta": {"type": kind}}})).into_response()
}

pub(super) fn next(w: &mut World) -> String {
    w.next_id += 1;
    w.next_id.to_string()
}

pub(super) fn make_module(
    w: &mut World,
    namespace: &str,
    body: &Value,
    id: Option<String>,
) -> Value {
    let id = id.unwrap_or_else(|| next(w));
    let recorded = &fixture("014-A-compose-create-module.json")["response"]["body"]["response"];
    let field_shape = recorded["fields"][0].clone();
    let mut module = recorded.clone();
    module["moduleID"] = json!(id);
    module["namespaceID"] = json!(namespace);
    module["name"] = body["name"].clone();
    module["handle"] = body["handle"].clone();
    module["createdAt"] = json!(now(w));
    let mut fields = Vec::new();
    for f in body["fields"].as_array().cloned().unwrap_or_default() {
        let mut field = field_shape.clone();
        field["fieldID"] = match f.get("fieldID") {
            Some(id) if !id.is_null() => id.clone(),
            _ => json!(next(w)),
        };
        field["namespaceID"] = json!(namespace);
        field["moduleID"] = json!(id);
        for key in ["name", "kind", "label"] {
            field[key] = f[key].clone();
        }
        field["isMulti"] = json!(f["isMulti"].as_bool().unwrap_or(false));
        field["isRequired"] = json!(f["isRequired"].as_bool().unwrap_or(false));
        fields.push(field);
    }
    module["fields"] = Value::Array(fields);
    module
}

pub(super) fn make_record(w: &mut World, module: &str, body: &Value) -> Value {
    let id = next(w);
    let namespace = w
        .modules
        .iter()
        .find(|m| m["moduleID"] == module)
        .map(|m| m["namespaceID"].clone())
        .unwrap_or(Value::Null);
    let mut record =
        fixture("015-A-compose-create-record-1.json")["response"]["body"]["response"].clone();
    record["recordID"] = json!(id);
    record["moduleID"] = json!(module);
    record["namespaceID"] = namespace;
    record["values"] = body["values"].clone();
    record["createdAt"] = json!(now(w));
    record["revision"] = json!(1);
    if let Some(meta) = body.get("meta").filter(|m| m.is_object()) {
        record["meta"] = meta.clone();
    }
    record
}

pub(super) fn apply_update(record: &mut Value, body: &Value, stamp: String) {
    record["values"] = body["values"].clone();
    if let Some(meta) = body.get("meta").filter(|m| m.is_object()) {
        record["meta"] = meta.clone();
    }
    record["revision"] = json!(record["revision"].as_u64().unwrap_or(1) + 1);
    record["updatedAt"] = json!(stamp);
    record["updatedBy"] = record["ownedBy"].clone();
}
