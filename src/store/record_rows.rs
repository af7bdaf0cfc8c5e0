//! Rows of records and record links, as sqlx reads them and as one JSON
//! array of positional rows, and their conversions to domain types (the
//! invariant of `rows.rs`: a value the code would never write is
//! `StoreError::Corrupt` naming its column).

use super::StoreError;
use super::from_micros;
use super::rows::{corrupt, id, node_id, opt_time};
use crate::domain::{NodeId, Record, RecordLink};

#[derive(Debug, sqlx::FromRow)]
pub struct RecordRow {
    pub id: i64,
    pub module_id: i64,
    pub values: String,
    pub origin_node_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub changed_at: i64,
    pub revision: i64,
}

/// A record's row with its values decoded: as `RecordRow`, or as a
/// positional JSON array (`record_columns` order, values embedded as JSON).
#[derive(serde::Deserialize)]
struct DecodedRecordRow(
    i64,
    i64,
    crate::domain::RecordValues,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
);

impl TryFrom<DecodedRecordRow> for Record {
    type Error = StoreError;

    fn try_from(row: DecodedRecordRow) -> Result<Record, StoreError> {
        let DecodedRecordRow(
            id_,
            module,
            values,
            origin,
            created,
            updated,
            deleted,
            changed,
            revision,
        ) = row;
        Ok(Record {
            id: id("local_records.id", id_)?,
            module_id: id("local_records.module_id", module)?,
            values,
            origin_node_id: origin.and_then(NodeId::from_i64),
            created_at: from_micros(created)?,
            updated_at: from_micros(updated)?,
            deleted_at: opt_time(deleted)?,
            changed_at: changed,
            revision: u64::try_from(revision).unwrap_or(1),
        })
    }
}

/// Records read as one JSON array of positional rows, in (changed_at, id)
/// order whatever order the aggregate kept.
pub fn records_from_json(text: &str) -> Result<Vec<Record>, StoreError> {
    let rows: Vec<DecodedRecordRow> =
        serde_json::from_str(text).map_err(|e| corrupt("local_records", e))?;
    let mut records = rows
        .into_iter()
        .map(Record::try_from)
        .collect::<Result<Vec<_>, StoreError>>()?;
    records.sort_unstable_by_key(|r| (r.changed_at, r.id));
    Ok(records)
}

impl TryFrom<RecordRow> for Record {
    type Error = StoreError;

    fn try_from(row: RecordRow) -> Result<Record, StoreError> {
        let values =
            serde_json::from_str(&row.values).map_err(|e| corrupt("local_records.values", e))?;
        Record::try_from(DecodedRecordRow(
            row.id,
            row.module_id,
            values,
            row.origin_node_id,
            row.created_at,
            row.updated_at,
            row.deleted_at,
            row.changed_at,
            row.revision,
        ))
    }
}

/// Also read from a positional JSON row, in this field order.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct RecordLinkRow {
    pub node_id: i64,
    pub exposed_module_id: i64,
    pub origin_record_id: i64,
    pub local_module_id: i64,
    pub local_record_id: i64,
    pub origin_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Links read as one JSON array of positional rows (`link_columns`).
pub fn links_from_json(text: &str) -> Result<Vec<RecordLink>, StoreError> {
    let rows: Vec<RecordLinkRow> =
        serde_json::from_str(text).map_err(|e| corrupt("record_links", e))?;
    rows.into_iter().map(RecordLink::try_from).collect()
}

impl TryFrom<RecordLinkRow> for RecordLink {
    type Error = StoreError;

    fn try_from(row: RecordLinkRow) -> Result<RecordLink, StoreError> {
        Ok(RecordLink {
            node_id: node_id("record_links.node_id", row.node_id)?,
            exposed_module_id: id("record_links.exposed_module_id", row.exposed_module_id)?,
            origin_record_id: id("record_links.origin_record_id", row.origin_record_id)?,
            local_module_id: id("record_links.local_module_id", row.local_module_id)?,
            local_record_id: id("record_links.local_record_id", row.local_record_id)?,
            origin_changed_at: row.origin_changed_at,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_read_as_json_keep_every_column_and_bad_rows_are_named() {
        let links = links_from_json("[[3, 9, 500, 7, 1000, 42, 5, 6]]").unwrap();
        assert_eq!(links.len(), 1);
        let link = &links[0];
        assert_eq!(
            (
                link.node_id.get(),
                link.exposed_module_id.get(),
                link.origin_record_id.get()
            ),
            (3, 9, 500)
        );
        assert_eq!(
            (link.local_module_id.get(), link.local_record_id.get()),
            (7, 1000)
        );
        assert_eq!(link.origin_changed_at, 42);
        assert_eq!(link.updated_at.timestamp_micros(), 6);
        assert!(links_from_json("[]").unwrap().is_empty());
        let error = links_from_json("[[3, 9, 0, 7, 1000, 42, 5, 6]]").unwrap_err();
        assert!(
            error.to_string().contains("record_links.origin_record_id"),
            "{error}"
        );
        let error = links_from_json("[[3, 9]]").unwrap_err();
        assert!(error.to_string().contains("record_links"), "{error}");
    }

    #[test]
    fn a_page_read_as_json_comes_in_change_order_and_bad_rows_are_named() {
        let page = r#"[[7, 2, {"Name": ["b"]}, null, 1000, 1000, null, 11, 1],
                       [5, 2, {"Name": ["a"], "Tags": ["x", "y"]}, 9, 1000, 2000, 3000, 10, 2]]"#;
        let records = records_from_json(page).unwrap();
        assert_eq!(
            records.iter().map(|r| r.changed_at).collect::<Vec<_>>(),
            [10, 11]
        );
        assert_eq!(records[0].values["Tags"], ["x", "y"]);
        assert_eq!(records[0].revision, 2);
        assert!(records[0].deleted_at.is_some() && records[1].deleted_at.is_none());
        assert!(records_from_json("[]").unwrap().is_empty());
        let error = records_from_json(r#"[[0, 2, {}, null, 1, 1, null, 1, 1]]"#).unwrap_err();
        assert!(error.to_string().contains("local_records.id"), "{error}");
        let error = records_from_json(r#"[[1, 2, "not values"]]"#).unwrap_err();
        assert!(error.to_string().contains("local_records"), "{error}");
    }
}
