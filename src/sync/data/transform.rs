//! A page of the origin's records made local: mapped field by field,
//! references translated, written with links, cursor and counts in one
//! transaction; and the local copies a full pull did not see removed.

use super::DataSync;
use super::fields::{Usable, own_references, references, take_origin_values};

use crate::domain::{
    self, FieldKind, Id, IdMap, IdSet, LocalModule, Node, Record, RecordLink, SharedModule, SyncRun,
};
use crate::mapping::values::normalize_owned;
use crate::store::{RecordBatch, RunError};
use crate::sync::ports::RemoteRecord;
use crate::sync::structure::SyncError;

/// Records mapped between two chances for the page being written to go on.
const YIELD_EVERY: usize = 50;

impl DataSync {
    /// Turns a page of origin records into local writes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn transform(
        &self,
        node: &Node,
        shared: &SharedModule,
        local: &LocalModule,
        usable: &[Usable<'_>],
        page: &mut [RemoteRecord],
        run: &mut SyncRun,
        seq: &mut u64,
        full: bool,
    ) -> Result<RecordBatch, SyncError> {
        let now = domain::now();
        let origin_ids: Vec<Id> = page.iter().map(|r| r.id).collect();
        let links: IdMap<RecordLink> = self
            .store
            .find_links(node.id, shared.external_module_id, &origin_ids)
            .await?
            .into_iter()
            .map(|l| (l.origin_record_id, l))
            .collect();
        let local_ids: Vec<Id> = links.values().map(|l| l.local_record_id).collect();
        let current: IdMap<Record> = self
            .records
            .get_module_records(local.id, &local_ids)
            .await
            .map_err(SyncError::from)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        // Record references of the pair, translated to local ids.
        let referenced: Vec<Id> = page.iter().flat_map(|r| references(r, usable)).collect();
        let translations: IdMap<Id> = self
            .store
            .find_links_any_module(node.id, &referenced)
            .await?
            .into_iter()
            .map(|l| (l.origin_record_id, l.local_record_id))
            .collect();
        // References the origin sent back as our own ids: kept if the record
        // is still here.
        let ours: Vec<Id> = page.iter().flat_map(own_references).collect();
        let own: IdSet = if ours.is_empty() {
            IdSet::default()
        } else {
            self.records
                .get_records(&ours)
                .await
                .map_err(SyncError::from)?
                .into_iter()
                .filter(|r| r.deleted_at.is_none())
                .map(|r| r.id)
                .collect()
        };
        let refs = References {
            translations: &translations,
            own: &own,
        };

        let mut batch = RecordBatch {
            seen_run: if full { run.id.as_i64() } else { 0 },
            ..Default::default()
        };
        let mut written: IdMap<usize> = IdMap::default();
        let mut new_links: IdMap<RecordLink> = IdMap::default();
        for (i, remote) in page.iter_mut().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                // The page before this one is written meanwhile, in the
                // same task (`pages.rs`): its next statement goes out as
                // soon as the database answers, not after the whole page.
                tokio::task::yield_now().await;
            }
            let origin_changed = [remote.created_at, remote.updated_at, remote.deleted_at]
                .into_iter()
                .flatten()
                .max()
                .map(|t| t.timestamp_micros())
                .unwrap_or(0);
            let link = new_links.get(&remote.id).or(links.get(&remote.id)).cloned();
            // The same origin record twice in a page: the later one starts
            // from what the earlier one wrote.
            let existing = link
                .as_ref()
                .and_then(|l| match written.get(&l.local_record_id) {
                    Some(&index) => Some(batch.records[index].clone()),
                    None => current.get(&l.local_record_id).cloned(),
                });
            let mut record = if remote.deleted_at.is_some() {
                match existing {
                    Some(mut record) if record.deleted_at.is_none() => {
                        record.deleted_at = Some(now);
                        record.updated_at = now;
                        run.counts.deleted += 1;
                        Some(record)
                    }
                    _ => {
                        run.counts.skipped += 1;
                        None
                    }
                }
            } else {
                let mut mapped =
                    self.map_values(remote, usable, &refs, run, seq, &mut batch.errors);
                match existing {
                    Some(record) if record.deleted_at.is_some() => {
                        // Removed here: the origin does not bring it back.
                        run.counts.skipped += 1;
                        None
                    }
                    Some(mut record) => {
                        let before = record.values.clone();
                        for u in usable {
                            let name = &u.mapping.destination.name;
                            if !mapped.contains_key(name) {
                                record.values.remove(name);
                            }
                        }
                        record.values.append(&mut mapped);
                        if record.values == before {
                            // Nothing to write (a re-delivery, a reset).
                            run.counts.skipped += 1;
                            None
                        } else {
                            record.updated_at = now;
                            run.counts.updated += 1;
                            Some(record)
                        }
                    }
                    None => {
                        run.counts.created += 1;
                        Some(Record {
                            id: self.ids.next_id(),
                            module_id: local.id,
                            values: mapped,
                            origin_node_id: Some(node.id),
                            created_at: now,
                            updated_at: now,
                            deleted_at: None,
                            changed_at: 0,
                            revision: 0,
                        })
                    }
                }
            };
            let local_record_id = record
                .as_ref()
                .map(|r| r.id)
                .or(link.as_ref().map(|l| l.local_record_id));
            if let Some(local_record_id) = local_record_id {
                let l = RecordLink {
                    node_id: node.id,
                    exposed_module_id: shared.external_module_id,
                    origin_record_id: remote.id,
                    local_module_id: local.id,
                    local_record_id,
                    origin_changed_at: origin_changed,
                    created_at: link.as_ref().map(|l| l.created_at).unwrap_or(now),
                    updated_at: now,
                };
                new_links.insert(remote.id, l);
            }
            if let Some(record) = record.take() {
                // The same origin record twice in a page: the later wins.
                match written.get(&record.id) {
                    Some(&index) => batch.records[index] = record,
                    None => {
                        written.insert(record.id, batch.records.len());
                        batch.records.push(record);
                    }
                }
            }
        }
        // Links that stay as they were but for their timestamps are only
        // touched (a full re-pull marks every link seen, so it writes all);
        // links the lookup did not find are inserted.
        for link in new_links.into_values() {
            match links.get(&link.origin_record_id) {
                None => batch.new_links.push(link),
                Some(old)
                    if !full
                        && old.local_module_id == link.local_module_id
                        && old.local_record_id == link.local_record_id =>
                {
                    batch.touched.push(link)
                }
                Some(_) => batch.links.push(link),
            }
        }
        Ok(batch)
    }

    /// The mapped values of one origin record, converted; values that do not
    /// fit are reported, never written wrong.
    fn map_values(
        &self,
        remote: &mut RemoteRecord,
        usable: &[Usable<'_>],
        refs: &References<'_>,
        run: &mut SyncRun,
        seq: &mut u64,
        errors: &mut Vec<RunError>,
    ) -> crate::domain::RecordValues {
        let mut out = crate::domain::RecordValues::new();
        let origin_record_id = remote.id;
        for u in usable {
            let mut converted = Vec::new();
            for (value, yours) in take_origin_values(remote, u) {
                let result = if u.dest_kind == FieldKind::Record {
                    value
                        .parse::<Id>()
                        .ok()
                        .and_then(|id| {
                            if yours {
                                refs.own.get(&id).copied()
                            } else {
                                refs.translations.get(&id).copied()
                            }
                        })
                        .map(|local| local.to_string())
                        .ok_or_else(|| {
                            format!("`{value}` is not a record of this peer that arrived here")
                        })
                } else {
                    normalize_owned(u.dest_kind, value)
                };
                match result {
                    Ok(v) => converted.push(v),
                    Err(e) => {
                        run.counts.errors += 1;
                        *seq += 1;
                        errors.push(RunError {
                            run_id: run.id,
                            seq: *seq,
                            origin_record_id: Some(origin_record_id),
                            message: format!(
                                "{} -> {}: {e}",
                                u.mapping.origin.name, u.mapping.destination.name
                            ),
                        });
                    }
                }
            }
            if !u.dest_multi {
                converted.truncate(1);
            }
            if !converted.is_empty() {
                out.insert(u.mapping.destination.name.clone(), converted);
            }
        }
        out
    }

    /// After a full pull: local copies of records the origin no longer has.
    pub(super) async fn remove_unseen(
        &self,
        node: &Node,
        shared: &SharedModule,
        run: &mut SyncRun,
    ) -> Result<(), SyncError> {
        let mut after = None;
        loop {
            let unseen = self
                .store
                .links_not_seen(
                    node.id,
                    shared.external_module_id,
                    run.id.as_i64(),
                    after,
                    500,
                )
                .await?;
            let Some(last) = unseen.last() else { break };
            after = Some(last.origin_record_id);
            let ids: Vec<Id> = unseen.iter().map(|l| l.local_record_id).collect();
            let now = domain::now();
            let mut batch = RecordBatch::default();
            for mut record in self
                .records
                .get_module_records(last.local_module_id, &ids)
                .await
                .map_err(SyncError::from)?
            {
                if record.deleted_at.is_none() {
                    record.deleted_at = Some(now);
                    record.updated_at = now;
                    run.counts.deleted += 1;
                    batch.records.push(record);
                }
            }
            self.records
                .apply_batch(batch)
                .await
                .map_err(SyncError::from)?;
        }
        Ok(())
    }
}

/// How Record-field values become local ids.
pub(super) struct References<'a> {
    /// Origin record id -> our copy of it.
    translations: &'a IdMap<Id>,
    /// Our own records the origin referenced (sent back as ours).
    own: &'a IdSet,
}
