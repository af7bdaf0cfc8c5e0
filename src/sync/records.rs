//! Records of the local data plane as the admin edits them: values checked
//! against the module (fields exist, one value for single-value fields,
//! each value in its kind's canonical form), soft deletes kept for sync,
//! bulk imports one transaction per batch.

use std::sync::Arc;

use super::ports::{LocalData, LocalError, LocalRecords};
use crate::domain::{self, Id, IdGenerator, LocalModule, Record, RecordValues};
use crate::mapping::values::normalize;
use crate::store::RecordBatch;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// Values given as `(field, values)`, checked and normalised for `module`.
/// Fields not given are absent; a field given with no values is cleared.
pub fn check_values(
    module: &LocalModule,
    given: Vec<(String, Vec<String>)>,
) -> Result<RecordValues, String> {
    let mut values = RecordValues::new();
    for (name, list) in given {
        let field = module.field(&name).ok_or_else(|| {
            let names: Vec<&str> = module.fields.iter().map(|f| f.name.as_str()).collect();
            format!(
                "module `{}` has no field `{name}` (it has: {})",
                module.handle,
                names.join(", ")
            )
        })?;
        let entry = values.entry(name.clone()).or_default();
        for value in list {
            entry.push(normalize(field.kind, &value).map_err(|e| format!("field `{name}`: {e}"))?);
        }
        if !field.is_multi && entry.len() > 1 {
            return Err(format!(
                "field `{name}` holds one value; {} were given",
                entry.len()
            ));
        }
    }
    values.retain(|_, v| !v.is_empty());
    Ok(values)
}

/// `NAME=VALUE` pairs (repeated for each value of a multi-value field).
pub fn parse_value_pairs(pairs: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not NAME=VALUE"))?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value.to_owned()),
            None => out.push((name.to_owned(), vec![value.to_owned()])),
        }
    }
    Ok(out)
}

/// A JSON object (one line of an import): field name to a value or, for
/// multi-value fields, an array. Numbers and booleans are taken as text;
/// `null` clears.
pub fn values_from_json(object: &serde_json::Value) -> Result<Vec<(String, Vec<String>)>, String> {
    let map = object
        .as_object()
        .ok_or("each line must be a JSON object of field values")?;
    let scalar = |name: &str, v: &serde_json::Value| -> Result<Option<String>, String> {
        match v {
            serde_json::Value::String(s) => Ok(Some(s.clone())),
            serde_json::Value::Number(n) => Ok(Some(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Some(if *b { "1".into() } else { "0".into() })),
            serde_json::Value::Null => Ok(None),
            _ => Err(format!(
                "field `{name}`: values are strings, numbers or booleans"
            )),
        }
    };
    map.iter()
        .map(|(name, value)| {
            let list = match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|v| scalar(name, v))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
                other => scalar(name, other)?.into_iter().collect(),
            };
            Ok((name.clone(), list))
        })
        .collect()
}

/// The records the admin edits.
pub struct RecordService {
    local: Arc<dyn LocalData>,
    records: Arc<dyn LocalRecords>,
    ids: Arc<IdGenerator>,
}

impl RecordService {
    /// How hard the data plane is used, when it is paced (Corteza).
    pub fn pacing(&self) -> Option<crate::sync::ports::PacingStatus> {
        self.records.pacing()
    }

    pub fn new(
        local: Arc<dyn LocalData>,
        records: Arc<dyn LocalRecords>,
        ids: Arc<IdGenerator>,
    ) -> RecordService {
        RecordService {
            local,
            records,
            ids,
        }
    }

    pub async fn module(&self, key: &str) -> Result<LocalModule, RecordError> {
        self.local
            .find_module(key)
            .await?
            .ok_or_else(|| RecordError::NotFound(format!("no local module `{key}`")))
    }

    fn new_record(&self, module: &LocalModule, values: RecordValues) -> Record {
        let now = domain::now();
        Record {
            id: self.ids.next_id(),
            module_id: module.id,
            values,
            origin_node_id: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            changed_at: 0,
            revision: 0,
        }
    }

    pub async fn create(
        &self,
        module_key: &str,
        given: Vec<(String, Vec<String>)>,
    ) -> Result<Record, RecordError> {
        let module = self.module(module_key).await?;
        let values = check_values(&module, given).map_err(RecordError::Invalid)?;
        let record = self.new_record(&module, values);
        let written = self
            .records
            .apply_batch(RecordBatch {
                records: vec![record],
                ..Default::default()
            })
            .await?;
        Ok(written.into_iter().next().expect("one record written"))
    }

    async fn existing(&self, module: &LocalModule, id: Id) -> Result<Record, RecordError> {
        self.records
            .get_records(&[id])
            .await?
            .into_iter()
            .find(|r| r.module_id == module.id && r.deleted_at.is_none())
            .ok_or_else(|| {
                RecordError::NotFound(format!("module `{}` has no record {id}", module.handle))
            })
    }

    /// Replaces the given fields' values; the others stay.
    pub async fn update(
        &self,
        module_key: &str,
        id: Id,
        given: Vec<(String, Vec<String>)>,
    ) -> Result<Record, RecordError> {
        let module = self.module(module_key).await?;
        let mut record = self.existing(&module, id).await?;
        let cleared: Vec<String> = given
            .iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        let values = check_values(&module, given).map_err(RecordError::Invalid)?;
        for name in cleared {
            record.values.remove(&name);
        }
        record.values.extend(values);
        record.updated_at = domain::now();
        let written = self
            .records
            .apply_batch(RecordBatch {
                records: vec![record],
                ..Default::default()
            })
            .await?;
        Ok(written.into_iter().next().expect("one record written"))
    }

    /// Soft delete: the record stays so peers learn of the deletion.
    pub async fn delete(&self, module_key: &str, id: Id) -> Result<Record, RecordError> {
        let module = self.module(module_key).await?;
        let mut record = self.existing(&module, id).await?;
        let now = domain::now();
        record.deleted_at = Some(now);
        record.updated_at = now;
        let written = self
            .records
            .apply_batch(RecordBatch {
                records: vec![record],
                ..Default::default()
            })
            .await?;
        Ok(written.into_iter().next().expect("one record written"))
    }

    pub async fn list_page(
        &self,
        module: &LocalModule,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, RecordError> {
        Ok(self
            .records
            .list_records(module.id, include_deleted, after, limit)
            .await?)
    }

    /// Creates records in one transaction.
    pub async fn import(
        &self,
        module: &LocalModule,
        rows: Vec<RecordValues>,
    ) -> Result<usize, RecordError> {
        let records: Vec<Record> = rows
            .into_iter()
            .map(|values| self.new_record(module, values))
            .collect();
        let count = records.len();
        self.records
            .apply_batch(RecordBatch {
                records,
                ..Default::default()
            })
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldKind, LocalField, now};

    fn module() -> LocalModule {
        let f = |name: &str, kind, multi| LocalField {
            name: name.into(),
            kind,
            label: name.into(),
            is_multi: multi,
        };
        LocalModule {
            id: Id::new(1).unwrap(),
            namespace_id: Id::new(2).unwrap(),
            handle: "contact".into(),
            name: "Contact".into(),
            fields: vec![
                f("Name", FieldKind::String, false),
                f("Age", FieldKind::Number, false),
                f("Vip", FieldKind::Bool, false),
                f("Tags", FieldKind::String, true),
            ],
            created_at: now(),
            updated_at: now(),
            deleted_at: None,
        }
    }

    #[test]
    fn values_are_checked_against_the_module() {
        let m = module();
        let pairs = parse_value_pairs(&[
            "Name=Alice".into(),
            "Tags=red".into(),
            "Tags=blue".into(),
            "Vip=true".into(),
        ])
        .unwrap();
        let values = check_values(&m, pairs).unwrap();
        assert_eq!(values["Tags"], ["red", "blue"]);
        assert_eq!(values["Vip"], ["1"]);
        let err = |pairs: &[&str]| {
            check_values(
                &m,
                parse_value_pairs(&pairs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap(),
            )
            .unwrap_err()
        };
        assert!(err(&["Fax=1"]).contains("has no field `Fax` (it has: Name, Age, Vip, Tags)"));
        assert!(err(&["Age=old"]).contains("field `Age`: `old` is not a number"));
        assert!(err(&["Name=a", "Name=b"]).contains("holds one value"));
        assert!(parse_value_pairs(&["Name".into()]).is_err());
    }

    #[test]
    fn import_lines_take_values_or_arrays() {
        let m = module();
        let line: serde_json::Value =
            serde_json::json!({"Name": "Bob", "Age": 42, "Vip": false, "Tags": ["a", "b"]});
        let values = check_values(&m, values_from_json(&line).unwrap()).unwrap();
        assert_eq!(values["Age"], ["42"]);
        assert_eq!(values["Vip"], ["0"]);
        assert_eq!(values["Tags"], ["a", "b"]);
        assert!(values_from_json(&serde_json::json!([1])).is_err());
        assert!(values_from_json(&serde_json::json!({"Name": {"x": 1}})).is_err());
        let cleared = check_values(
            &m,
            values_from_json(&serde_json::json!({"Name": null})).unwrap(),
        )
        .unwrap();
        assert!(cleared.is_empty());
    }
}
