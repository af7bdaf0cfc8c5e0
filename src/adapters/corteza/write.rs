//! Writing records to Corteza: a batch's records created (unless an
//! earlier, cut-off batch made them), updated or deleted with the meta of
//! their origin, then the rest of the batch (links with Corteza's ids,
//! cursor, errors, progress) to the store as one unit.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::CallError;
use super::json::{record_from, values_json};
use super::{CortezaData, META_EXTRECORD, META_FEDERATION, META_NODE};
use crate::domain::{self, Id, NodeId, Record};
use crate::store::RecordBatch;
use crate::sync::ports::LocalError;

impl CortezaData {
    async fn write_record(
        &self,
        record: &Record,
        meta: Option<&Value>,
        existing: Option<Id>,
    ) -> Result<Record, LocalError> {
        let module = self.module_path(record.module_id).await?;
        let mut body = json!({ "values": values_json(&record.values) });
        if let Some(meta) = meta {
            body["meta"] = meta.clone();
        }
        let (path, action) = match existing {
            Some(id) => (format!("{module}/record/{id}"), "update"),
            None => (format!("{module}/record/"), "create"),
        };
        let value = self
            .call(Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|e| match e {
                CallError::Refused { message, kind } => LocalError::Invalid(format!(
                    "Corteza refused to {action} a record in module {}: {message}{}",
                    record.module_id,
                    if kind.starts_with("notAllowed") {
                        " (give the token's user the permission)"
                    } else {
                        ""
                    }
                )),
                other => other.into(),
            })?;
        record_from(&value)
    }

    async fn delete_record(&self, record: &Record) -> Result<Record, LocalError> {
        let path = format!(
            "{}/record/{}",
            self.module_path(record.module_id).await?,
            record.id
        );
        match self.call(Method::DELETE, &path, &[], None).await {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let mut deleted = record.clone();
        let now = domain::now();
        deleted.deleted_at.get_or_insert(now);
        deleted.changed_at = now.timestamp_micros();
        Ok(deleted)
    }

    pub(super) async fn write_batch(&self, batch: &RecordBatch) -> Result<Vec<Record>, LocalError> {
        let mut origin_of: HashMap<Id, (NodeId, Id)> = HashMap::new();
        for link in batch.links.iter().chain(&batch.touched) {
            origin_of.insert(link.local_record_id, (link.node_id, link.origin_record_id));
        }
        let mut node_urls: HashMap<NodeId, String> = HashMap::new();
        for (node, _) in origin_of.values() {
            if !node_urls.contains_key(node) {
                let url = self
                    .store
                    .get_node(*node)
                    .await?
                    .map(|n| n.base_url)
                    .unwrap_or_default();
                node_urls.insert(*node, url);
            }
        }
        let meta_for = |record: &Record| {
            origin_of.get(&record.id).map(|(node, origin)| {
                json!({
                    META_FEDERATION: node_urls.get(node).cloned().unwrap_or_default(),
                    META_EXTRECORD: origin.to_string(),
                    META_NODE: node.to_string(),
                })
            })
        };
        // New records are made unless an earlier, cut-off batch made them.
        let run = batch.progress.map(|(run, _)| run);
        let mut linked: HashMap<(NodeId, Id), bool> = HashMap::new();
        for record in batch.records.iter().filter(|r| r.revision == 0) {
            if let Some((node, _)) = origin_of.get(&record.id) {
                let key = (*node, record.module_id);
                if let std::collections::hash_map::Entry::Vacant(e) = linked.entry(key) {
                    e.insert(self.all_linked(key.0, key.1, run).await?);
                }
            }
        }
        let mut renamed: HashMap<Id, Id> = HashMap::new();
        let mut written = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            let meta = meta_for(record);
            let stored = if record.revision == 0 {
                let before = match origin_of.get(&record.id) {
                    Some((node, origin)) if !linked[&(*node, record.module_id)] => {
                        self.made_before(record.module_id, *node, *origin).await?
                    }
                    _ => None,
                };
                match before {
                    Some(found) if found.deleted_at.is_some() => found,
                    Some(found) => {
                        self.write_record(record, meta.as_ref(), Some(found.id))
                            .await?
                    }
                    None => self.write_record(record, meta.as_ref(), None).await?,
                }
            } else if record.deleted_at.is_some() {
                self.delete_record(record).await?
            } else {
                self.write_record(record, meta.as_ref(), Some(record.id))
                    .await?
            };
            if stored.id != record.id {
                renamed.insert(record.id, stored.id);
            }
            written.push(stored);
        }
        self.remember(&written);
        let links = batch
            .links
            .iter()
            .map(|l| {
                let mut l = l.clone();
                if let Some(id) = renamed.get(&l.local_record_id) {
                    l.local_record_id = *id;
                }
                l
            })
            .collect();
        self.store
            .apply_record_batch(&RecordBatch {
                records: Vec::new(),
                links,
                touched: batch.touched.clone(),
                seen_run: batch.seen_run,
                cursor: batch.cursor.clone(),
                errors: batch.errors.clone(),
                progress: batch.progress,
            })
            .await?;
        Ok(written)
    }
}
