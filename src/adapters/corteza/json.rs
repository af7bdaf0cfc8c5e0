//! Corteza's JSON as fedsync reads and writes it: the `set` of a list,
//! ids, times and meta values, a record (`record_from`) and record values
//! as Corteza takes them (`values_json`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::META_NODE;
use crate::domain::{Id, Record, RecordValues, Timestamp};
use crate::sync::ports::LocalError;

pub(super) fn set(value: &Value) -> &[Value] {
    value
        .get("set")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn id_of(value: &Value, key: &str) -> Option<Id> {
    match value.get(key)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(Id::new),
        _ => None,
    }
}

pub(super) fn time_of(value: &Value, key: &str) -> Result<Option<Timestamp>, LocalError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| LocalError::Unavailable(format!("Corteza sent `{key}` = `{s}`: {e}"))),
        Some(other) => Err(LocalError::Unavailable(format!(
            "Corteza sent `{key}` = {other}, not a time"
        ))),
    }
}

pub(super) fn meta_str(value: &Value, key: &str) -> Option<String> {
    match value.get("meta")?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Corteza record as the engine sees it; `changed_at` is its latest
/// time (creation, update, deletion) in microseconds.
pub(super) fn record_from(value: &Value) -> Result<Record, LocalError> {
    let bad = |what: &str| LocalError::Unavailable(format!("Corteza sent a record without {what}"));
    let id = id_of(value, "recordID").ok_or_else(|| bad("a recordID"))?;
    let module_id = id_of(value, "moduleID").ok_or_else(|| bad("a moduleID"))?;
    let mut values = RecordValues::new();
    for v in value
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let (Some(name), Some(text)) = (
            v.get("name").and_then(Value::as_str),
            v.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        if v.get("deletedAt").is_some_and(|d| !d.is_null()) {
            continue;
        }
        values
            .entry(name.to_owned())
            .or_default()
            .push(text.to_owned());
    }
    let created_at = time_of(value, "createdAt")?.ok_or_else(|| bad("createdAt"))?;
    let updated_at = time_of(value, "updatedAt")?;
    let deleted_at = time_of(value, "deletedAt")?;
    let changed = [Some(created_at), updated_at, deleted_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created_at);
    Ok(Record {
        id,
        module_id,
        values,
        origin_node_id: meta_str(value, META_NODE).and_then(|n| n.parse().ok()),
        created_at,
        updated_at: updated_at.unwrap_or(created_at),
        deleted_at,
        changed_at: changed.timestamp_micros(),
        revision: value.get("revision").and_then(Value::as_u64).unwrap_or(1),
    })
}

pub(super) fn values_json(values: &RecordValues) -> Value {
    Value::Array(
        values
            .iter()
            .flat_map(|(name, vs)| vs.iter().map(move |v| json!({ "name": name, "value": v })))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_corteza_record_reads_with_its_change_time_and_origin() {
        let value = json!({
            "recordID": "523615839397478601",
            "moduleID": "523615104884015305",
            "revision": 2,
            "values": [
                {"name": "full_name", "value": "Alice"},
                {"name": "labels", "value": "red"},
                {"name": "labels", "value": "blue"},
                {"name": "is_vip"}
            ],
            "meta": {"federation": "", "federation_extrecord": "523615093120041061", "fedsync_node": "42"},
            "createdAt": "2026-11-22T06:16:03Z",
            "updatedAt": "2026-11-22T06:17:18Z"
        });
        let record = record_from(&value).unwrap();
        assert_eq!(record.id.to_string(), "523615839397478601");
        assert_eq!(record.values["labels"], vec!["red", "blue"]);
        assert!(!record.values.contains_key("is_vip"));
        assert_eq!(record.origin_node_id.map(|n| n.get()), Some(42));
        assert_eq!(record.revision, 2);
        assert_eq!(
            record.changed_at,
            DateTime::parse_from_rfc3339("2026-11-22T06:17:18Z")
                .unwrap()
                .timestamp_micros()
        );
        let mut broken = value.clone();
        broken["createdAt"] = json!("yesterday");
        assert!(
            record_from(&broken)
                .unwrap_err()
                .to_string()
                .contains("createdAt")
        );
    }

    #[test]
    fn values_go_back_as_corteza_takes_them() {
        let mut values = RecordValues::new();
        values.insert("tags".into(), vec!["a".into(), "b".into()]);
        values.insert("name".into(), vec!["x".into()]);
        assert_eq!(
            values_json(&values),
            json!([{"name": "name", "value": "x"}, {"name": "tags", "value": "a"}, {"name": "tags", "value": "b"}])
        );
    }
}
