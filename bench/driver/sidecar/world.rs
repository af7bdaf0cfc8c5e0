//! What the fake compose API holds: namespaces and modules as Corteza
//! answers them, records typed (ids, times in seconds, values and meta as
//! Corteza takes them), and the workers' schedule and counts; answers are
//! built on the payloads recorded from a real Corteza
//! (`tests/fixtures/corteza-wire/`: a namespace 013, a module 014, a record
//! 015, a deletion 108), read once.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::model::{Counts, Workers};
use super::query::{Column, Columns};
use crate::Result;
use crate::daemon::repo;

/// A time in seconds as Corteza writes it.
pub(super) fn stamp(second: i64) -> String {
    chrono::DateTime::from_timestamp(second, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A record as the fake keeps it.
pub(super) struct Rec {
    pub(super) id: u64,
    pub(super) values: Value,
    pub(super) meta: Value,
    pub(super) created: i64,
    pub(super) updated: Option<i64>,
    pub(super) deleted: Option<i64>,
    pub(super) revision: u64,
}

impl Columns for Rec {
    fn column(&self, column: Column) -> Option<i64> {
        match column {
            Column::Id => Some(self.id as i64),
            Column::CreatedAt => Some(self.created),
            Column::UpdatedAt => self.updated,
            Column::DeletedAt => self.deleted,
        }
    }
}

/// The recorded payloads answers are built on.
pub(super) struct Recorded {
    pub(super) namespace: Value,
    pub(super) module: Value,
    pub(super) record: Value,
    pub(super) deleted: Value,
}

pub(super) fn recorded() -> Result<Recorded> {
    let read = |name: &str| -> Result<Value> {
        let path = repo().join("tests/fixtures/corteza-wire").join(name);
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        Ok(file["response"]["body"].clone())
    };
    Ok(Recorded {
        namespace: read("013-A-compose-create-namespace.json")?["response"].clone(),
        module: read("014-A-compose-create-module.json")?["response"].clone(),
        record: read("015-A-compose-create-record-1.json")?["response"].clone(),
        deleted: read("108-A-compose-delete-record-carol.json")?,
    })
}

pub(super) struct World {
    /// Token -> the client it stands for (fedsync, the user, the plain
    /// client), whose requests are counted apart.
    pub(super) tokens: HashMap<String, &'static str>,
    pub(super) next_id: u64,
    pub(super) recorded: Recorded,
    pub(super) namespaces: Vec<Value>,
    pub(super) modules: Vec<Value>,
    /// module id -> record id -> record
    pub(super) records: HashMap<u64, BTreeMap<u64, Rec>>,
    pub(super) workers: Workers,
    /// Client -> what it was served.
    pub(super) counts: BTreeMap<&'static str, Counts>,
}

impl World {
    pub(super) fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn namespace_of(&self, module: u64) -> Value {
        self.modules
            .iter()
            .find(|m| m["moduleID"].as_str().and_then(|id| id.parse().ok()) == Some(module))
            .map_or(Value::Null, |m| m["namespaceID"].clone())
    }

    pub(super) fn render(&self, module: u64, r: &Rec) -> Value {
        let mut out = self.recorded.record.clone();
        out["recordID"] = json!(r.id.to_string());
        out["moduleID"] = json!(module.to_string());
        out["namespaceID"] = self.namespace_of(module);
        out["values"] = r.values.clone();
        out["revision"] = json!(r.revision);
        out["createdAt"] = json!(stamp(r.created));
        if r.meta.as_object().is_some_and(|m| !m.is_empty()) {
            out["meta"] = r.meta.clone();
        }
        if let Some(t) = r.updated {
            out["updatedAt"] = json!(stamp(t));
            out["updatedBy"] = out["ownedBy"].clone();
        }
        if let Some(t) = r.deleted {
            out["deletedAt"] = json!(stamp(t));
            out["deletedBy"] = out["ownedBy"].clone();
        }
        out
    }

    pub(super) fn make_module(
        &mut self,
        namespace: &str,
        body: &Value,
        id: Option<String>,
    ) -> Value {
        let id = id.unwrap_or_else(|| self.next().to_string());
        let field_shape = self.recorded.module["fields"][0].clone();
        let mut module = self.recorded.module.clone();
        module["moduleID"] = json!(id);
        module["namespaceID"] = json!(namespace);
        module["name"] = body["name"].clone();
        module["handle"] = body["handle"].clone();
        module["createdAt"] = json!(stamp(now()));
        let mut fields = Vec::new();
        for f in body["fields"].as_array().cloned().unwrap_or_default() {
            let mut field = field_shape.clone();
            field["fieldID"] = match f.get("fieldID") {
                Some(id) if !id.is_null() => id.clone(),
                _ => json!(self.next().to_string()),
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
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
