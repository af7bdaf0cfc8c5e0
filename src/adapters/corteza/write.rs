//! Writing records to Corteza: a batch's records created (unless an
//! earlier, cut-off batch made them), updated or deleted with the meta of
//! their origin, concurrently up to the limiter's limit, then the rest of
//! the batch (links with Corteza's ids, cursor, errors, progress) to the
//! store as one unit.
//!
//! A write Corteza did not answer (a timeout, 5xx, 429) is tried again, up
//! to [`TRIES`] times; a create first looks up the record by its meta, as
//! after a lost commit, since Corteza may have made it before failing to
//! answer. The first write that fails for good fails the page: the writes
//! not started yet are not sent, those in flight end, and the writes that
//! landed are found by their meta on the next run (a failed run makes the
//! next one look, see `all_linked`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{CallError, retry_unavailable};
use super::json::{record_from, values_json};
use super::{CortezaData, META_EXTRECORD, META_FEDERATION, META_NODE};
use crate::domain::{self, Id, NodeId, Record};
use crate::store::RecordBatch;
use crate::sync::ports::LocalError;

/// Tries of one write while Corteza does not answer it.
const TRIES: u32 = 4;
/// The wait before the second try; four times longer before each next.
const FIRST_WAIT: Duration = Duration::from_millis(200);

/// Where the records of a batch came from.
struct Origins {
    /// Local record id -> (peer, origin record id).
    of: HashMap<Id, (NodeId, Id)>,
    /// Peer -> its base URL (Corteza's `federation` meta).
    urls: HashMap<NodeId, String>,
    /// (peer, module) -> every record of the peer in the module is linked:
    /// none needs looking up before it is made.
    linked: HashMap<(NodeId, Id), bool>,
}

impl Origins {
    fn meta(&self, record: &Record) -> Option<Value> {
        self.of.get(&record.id).map(|(node, origin)| {
            json!({
                META_FEDERATION: self.urls.get(node).cloned().unwrap_or_default(),
                META_EXTRECORD: origin.to_string(),
                META_NODE: node.to_string(),
            })
        })
    }

    /// A new record's origin, and whether an earlier batch may have made
    /// it (not every record of the peer in the module is linked).
    fn origin_of_new(&self, record: &Record) -> (Option<(NodeId, Id)>, bool) {
        let origin = self.of.get(&record.id).copied();
        let unsure = origin.is_some_and(|(node, _)| {
            !self
                .linked
                .get(&(node, record.module_id))
                .copied()
                .unwrap_or(false)
        });
        (origin, unsure)
    }
}

impl CortezaData {
    /// One create (no `existing`) or update in `module` (its path).
    async fn write_record(
        &self,
        module: &str,
        record: &Record,
        meta: Option<&Value>,
        existing: Option<Id>,
    ) -> Result<Record, CallError> {
        let mut body = json!({ "values": values_json(&record.values) });
        if let Some(meta) = meta {
            body["meta"] = meta.clone();
        }
        let path = match existing {
            Some(id) => format!("{module}/record/{id}"),
            None => format!("{module}/record/"),
        };
        let value = self.call(Method::POST, &path, &[], Some(&body)).await?;
        // An answer that is not a record: Corteza did answer, so it is
        // not tried again.
        record_from(&value).map_err(|e| CallError::Refused {
            kind: "invalidAnswer".into(),
            message: e.to_string(),
        })
    }

    async fn delete_record(&self, record: &Record) -> Result<Record, LocalError> {
        let path = format!(
            "{}/record/{}",
            self.module_path(record.module_id).await?,
            record.id
        );
        retry_unavailable(TRIES as usize, || async {
            match self.call(Method::DELETE, &path, &[], None).await {
                Err(e) if e.not_found() => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .await
        .map_err(LocalError::from)?;
        let mut deleted = record.clone();
        let now = domain::now();
        deleted.deleted_at.get_or_insert(now);
        deleted.changed_at = now.timestamp_micros();
        Ok(deleted)
    }

    /// A new record: made, or, when an earlier write may have made it
    /// (`look_first`, or a create of this call that Corteza did not answer),
    /// found by its meta (`origin`) and updated.
    async fn create_record(
        &self,
        record: &Record,
        meta: Option<&Value>,
        (origin, look_first): (Option<(NodeId, Id)>, bool),
    ) -> Result<Record, LocalError> {
        let module = self.module_path(record.module_id).await?;
        let mut look = origin.filter(|_| look_first);
        let mut wait = FIRST_WAIT;
        let mut tries = 1;
        loop {
            if let Some((node, origin)) = look {
                match self.made_before(record.module_id, node, origin).await? {
                    Some(found) if found.deleted_at.is_some() => return Ok(found),
                    Some(found) => {
                        return retry_unavailable(TRIES as usize, || {
                            self.write_record(&module, record, meta, Some(found.id))
                        })
                        .await
                        .map_err(|e| refusal(e, "update", record));
                    }
                    None => {}
                }
            }
            match self.write_record(&module, record, meta, None).await {
                Err(CallError::Unavailable { message, .. }) if tries < TRIES => {
                    tracing::debug!(%message, "a record create Corteza did not answer is tried again");
                    // Corteza may have made it: look before making it again.
                    // Without the origin's meta it could not be found.
                    let Some(origin) = origin else {
                        return Err(LocalError::Unavailable(message));
                    };
                    look = Some(origin);
                    tries += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
                other => return other.map_err(|e| refusal(e, "create", record)),
            }
        }
    }

    async fn update_record(
        &self,
        record: &Record,
        meta: Option<&Value>,
    ) -> Result<Record, LocalError> {
        let module = self.module_path(record.module_id).await?;
        retry_unavailable(TRIES as usize, || {
            self.write_record(&module, record, meta, Some(record.id))
        })
        .await
        .map_err(|e| refusal(e, "update", record))
    }

    /// One record of a batch written; `None` when a write before it failed
    /// and it was not sent.
    async fn write_one(
        &self,
        record: &Record,
        origins: &Origins,
        failed: &AtomicBool,
    ) -> Option<Result<Record, LocalError>> {
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        let meta = origins.meta(record);
        let written = if record.revision == 0 {
            self.create_record(record, meta.as_ref(), origins.origin_of_new(record))
                .await
        } else if record.deleted_at.is_some() {
            self.delete_record(record).await
        } else {
            self.update_record(record, meta.as_ref()).await
        };
        if written.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        Some(written)
    }

    async fn origins(&self, batch: &RecordBatch) -> Result<Origins, LocalError> {
        let mut origins = Origins {
            of: HashMap::new(),
            urls: HashMap::new(),
            linked: HashMap::new(),
        };
        for link in batch
            .links
            .iter()
            .chain(&batch.new_links)
            .chain(&batch.touched)
        {
            origins
                .of
                .insert(link.local_record_id, (link.node_id, link.origin_record_id));
        }
        let nodes: std::collections::BTreeSet<NodeId> =
            origins.of.values().map(|(node, _)| *node).collect();
        for node in nodes {
            let url = self
                .store
                .get_node(node)
                .await?
                .map(|n| n.base_url)
                .unwrap_or_default();
            origins.urls.insert(node, url);
        }
        // New records are made unless an earlier, cut-off batch made them.
        let run = batch.progress.map(|(run, _)| run);
        let keys: std::collections::BTreeSet<(NodeId, Id)> = batch
            .records
            .iter()
            .filter(|r| r.revision == 0)
            .filter_map(|r| origins.of.get(&r.id).map(|(node, _)| (*node, r.module_id)))
            .collect();
        for (node, module) in keys {
            let all = self.all_linked(node, module, run).await?;
            origins.linked.insert((node, module), all);
        }
        Ok(origins)
    }

    pub(super) async fn write_batch(&self, batch: &RecordBatch) -> Result<Vec<Record>, LocalError> {
        let origins = self.origins(batch).await?;
        let failed = AtomicBool::new(false);
        let width = self.settings.max_concurrent.max(1) as usize;
        // Futures are lazy: `buffered` starts them `width` at a time, in order.
        let writes: Vec<_> = batch
            .records
            .iter()
            .map(|record| self.write_one(record, &origins, &failed))
            .collect();
        let results: Vec<Option<Result<Record, LocalError>>> = futures::stream::iter(writes)
            .buffered(width)
            .collect()
            .await;
        let mut renamed: HashMap<Id, Id> = HashMap::new();
        let mut written = Vec::with_capacity(batch.records.len());
        let mut first_error = None;
        for (record, result) in batch.records.iter().zip(results) {
            match result {
                Some(Ok(stored)) => {
                    if stored.id != record.id {
                        renamed.insert(record.id, stored.id);
                    }
                    written.push(stored);
                }
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                None => {}
            }
        }
        self.remember(&written);
        if let Some(error) = first_error {
            return Err(error);
        }
        // New links are upserted with the others on this path.
        let links = batch
            .links
            .iter()
            .chain(&batch.new_links)
            .map(|l| {
                let mut l = l.clone();
                if let Some(id) = renamed.get(&l.local_record_id) {
                    l.local_record_id = *id;
                }
                l
            })
            .collect();
        self.store
            .apply_record_batch(RecordBatch {
                records: Vec::new(),
                links,
                new_links: Vec::new(),
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

/// A write Corteza refused, in words naming what and where.
fn refusal(error: CallError, action: &str, record: &Record) -> LocalError {
    match error {
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
    }
}
