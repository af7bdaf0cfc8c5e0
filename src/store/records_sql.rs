//! The SQL of records, record links, pull cursors and run errors.
//!
//! `$lock_module` serialises writers of one module for the rest of a
//! transaction (PostgreSQL: an advisory lock; SQLite: its write lock already
//! does), so `changed_at` is assigned in commit order and a reader paging
//! by it can never pass a change that commits later. `$in_ids` matches a
//! column against `$3`, a comma-separated list of ids.
//!
//! Paging conditions are plain ranges (`id > $n`, `(changed_at, id) >
//! ($a, $b)`), never `($n IS NULL OR ...)`: with the OR, SQLite cannot seek
//! the index and scans from the start on every page (a full pull went
//! quadratic).

macro_rules! record_columns {
    () => {
        "id, module_id, \"values\", origin_node_id, created_at, updated_at, deleted_at, changed_at, revision"
    };
}
pub(crate) use record_columns;

macro_rules! link_columns {
    () => {
        "node_id, exposed_module_id, origin_record_id, local_module_id, local_record_id, \
         origin_changed_at, created_at, updated_at"
    };
}
pub(crate) use link_columns;

/// Links of a peer whose `$column` is one of `$ids`, in one exposed module
/// (`$module` > 0) or any (0); no query for no ids.
macro_rules! links_where_in {
    ($store:expr, $in_ids:literal, $column:literal, $node:expr, $ids:expr) => {{
        let ids: &[$crate::domain::Id] = $ids;
        if ids.is_empty() {
            Ok(Vec::new())
        } else {
            let sql = concat!(
                "SELECT ",
                $crate::store::records_sql::link_columns!(),
                // `$in_ids` reads the ids from `$3`.
                " FROM record_links WHERE node_id = $1 AND $2 = 0 AND ",
                $column,
                " ",
                $in_ids
            );
            let rows = sqlx::query_as::<_, $crate::store::record_rows::RecordLinkRow>(sql)
                .bind($node.as_i64())
                .bind(0i64)
                .bind($crate::store::sql_set(ids.iter()))
                .fetch_all(&$store.pool)
                .await?;
            rows.into_iter()
                .map($crate::domain::RecordLink::try_from)
                .collect()
        }
    }};
}
pub(crate) use links_where_in;

/// The revision each of `records` has once written in order, from the
/// revisions they had (`current`, by id): an upsert adds one to a stored
/// record's and a new record starts at 1. A record twice in a batch counts
/// both writes.
pub(crate) fn revisions_after(
    records: &[crate::domain::Record],
    current: &[(i64, i64)],
) -> std::collections::HashMap<i64, i64> {
    let mut revisions: std::collections::HashMap<i64, i64> = current.iter().copied().collect();
    let mut written = std::collections::HashMap::with_capacity(records.len());
    for record in records {
        let id = record.id.as_i64();
        let revision = revisions.get(&id).map_or(1, |r| r + 1);
        revisions.insert(id, revision);
        written.insert(id, revision);
    }
    written
}

/// Rows written by one multi-row statement: a whole page of the largest
/// size (9 parameters a row: 9,000, under SQLite's 32,766 and PostgreSQL's
/// 65,535), so a page's records take one round trip to the database and
/// its links another.
pub(crate) const ROWS_PER_STATEMENT: usize = 1000;

/// `items` in runs of at most `ROWS_PER_STATEMENT`, each without a repeated
/// key (a statement may update a row only once).
pub(crate) fn unique_chunks<T, K: std::hash::Hash + Eq>(
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if i - start == ROWS_PER_STATEMENT || !seen.insert(key(item)) {
            chunks.push(&items[start..i]);
            start = i;
            seen.clear();
            seen.insert(key(item));
        }
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

macro_rules! impl_record_store {
    ($store:ty, $begin:literal, $lock_module:expr, $in_ids:literal, $json_agg:literal, $json_row:literal, $records_json:literal) => {
        impl $store {
            /// A module's links by origin ids (`$1` the node, `$2` the
            /// module, `$3` the ids): each page of a pull looks its records
            /// up with it. Public so that its plan can be tested.
            /// The links come as one row holding a JSON array (as a
            /// page of changes does), not a row each.
            pub const LINKS_OF_MODULE_BY_ORIGIN: &'static str = concat!(
                "SELECT CAST(COALESCE(", $json_agg, "(", $json_row, "(",
                $crate::store::records_sql::link_columns!(),
                // The primary key (node, origin record, module) leads with
                // what this binds, whatever the statistics say.
                ")), '[]') AS TEXT) FROM record_links WHERE node_id = $1 AND ",
                "exposed_module_id = $2 AND origin_record_id ",
                $in_ids
            );

            /// Each record's change time: after the newest of its module,
            /// under the module's lock (the first module's came with the
            /// BEGIN), so change times follow commit order.
            async fn change_times(
                tx: &mut PageConn,
                batch: &$crate::store::RecordBatch,
                first_module: Option<i64>,
                now: i64,
            ) -> Result<Vec<i64>, $crate::store::StoreError> {
                let mut next: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
                let mut changed = Vec::with_capacity(batch.records.len());
                for record in &batch.records {
                    let module = record.module_id.as_i64();
                    if !next.contains_key(&module) {
                        if let (Some(lock), false) = ($lock_module, Some(module) == first_module) {
                            sqlx::query(lock).bind(module).execute(&mut *tx).await?;
                        }
                        let (max,): (Option<i64>,) =
                            sqlx::query_as("SELECT MAX(changed_at) FROM local_records WHERE module_id = $1")
                                .bind(module)
                                .fetch_one(&mut *tx)
                                .await?;
                        next.insert(module, now.max(max.unwrap_or(0) + 1));
                    }
                    let changed_at = next[&module];
                    next.insert(module, changed_at + 1);
                    changed.push(changed_at);
                }
                Ok(changed)
            }

            /// The revision each record of `batch` has once written.
            async fn stored_revisions(
                tx: &mut PageConn,
                batch: &$crate::store::RecordBatch,
            ) -> Result<std::collections::HashMap<i64, i64>, $crate::store::StoreError> {
                // The revisions the stored records have now, in one row;
                // new ones (revision 0: a fresh id) are not looked up.
                // After the module locks: no writer of these records runs
                // between this read and the writes.
                let stored: Vec<i64> = batch
                    .records
                    .iter()
                    .filter(|r| r.revision != 0)
                    .map(|r| r.id.as_i64())
                    .collect();
                let current: Vec<(i64, i64)> = match (stored.iter().min(), stored.iter().max()) {
                    (Some(low), Some(high)) => {
                        let (found,): (String,) = sqlx::query_as(concat!(
                            "SELECT CAST(COALESCE(", $json_agg, "(", $json_row,
                            "(id, revision)), '[]') AS TEXT) \
                             FROM local_records WHERE id >= $1 AND id <= $2 AND id ",
                            $in_ids
                        ))
                        .bind(*low)
                        .bind(*high)
                        .bind($crate::store::sql_set(stored.iter()))
                        .fetch_one(&mut *tx)
                        .await?;
                        serde_json::from_str(&found).map_err(|e| {
                            $crate::store::StoreError::Database(format!("record revisions: {e}"))
                        })?
                    }
                    _ => Vec::new(),
                };
                Ok($crate::store::records_sql::revisions_after(&batch.records, &current))
            }

            /// Writes `batch`'s records (with their change times), links,
            /// errors, cursor and counts.
            async fn write_rows(
                tx: &mut PageConn,
                batch: &$crate::store::RecordBatch,
                changed: &[i64],
                now: i64,
            ) -> Result<(), $crate::store::StoreError> {
                // Up to ROWS_PER_STATEMENT rows a statement (a round trip to
                // the database each, not one per row); a chunk never holds
                // one id twice, as a statement may update a row only once.
                // New records only (a first pull's pages): a plain insert,
                // without the upsert's speculative insertion (on PostgreSQL
                // a second log record a row). No RETURNING: SQLite's driver
                // hands each returned row to the runtime as a message of its
                // own; the revisions were read before, in one row.
                let records: Vec<_> = batch.records.iter().zip(changed.iter().copied()).collect();
                for chunk in $crate::store::records_sql::unique_chunks(&records, |(r, _)| r.id) {
                    let upsert = chunk.iter().any(|(record, _)| record.revision != 0);
                    Self::write_records(&mut *tx, chunk, upsert).await?;
                }
                // New links inserted, others upserted whole; touched links
                // get only their two timestamps.
                use $crate::store::page_sql::LinkWrite;
                for (links, seen_run, kind) in [
                    (&batch.new_links, batch.seen_run, LinkWrite::New),
                    (&batch.links, batch.seen_run, LinkWrite::Whole),
                    (&batch.touched, 0, LinkWrite::Touch),
                ] {
                    for chunk in $crate::store::records_sql::unique_chunks(links, |l| {
                        (l.node_id, l.exposed_module_id, l.origin_record_id)
                    }) {
                        Self::write_links(&mut *tx, chunk, seen_run, kind).await?;
                    }
                }
                for error in &batch.errors {
                    sqlx::query(
                        "INSERT INTO sync_run_errors (run_id, seq, origin_record_id, message) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(error.run_id.as_i64())
                    .bind(i64::try_from(error.seq).unwrap_or(i64::MAX))
                    .bind(error.origin_record_id.map(|i| i.as_i64()).unwrap_or(0))
                    .bind(error.message.clone())
                    .execute(&mut *tx)
                    .await?;
                }
                Self::write_bookkeeping(&mut *tx, batch.cursor.as_ref(), batch.progress.as_ref(), now)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::RecordStore for $store {
            async fn apply_record_batch(
                &self,
                batch: $crate::store::RecordBatch,
            ) -> Result<Vec<$crate::domain::Record>, $crate::store::StoreError> {
                // The first module's lock comes with the BEGIN.
                let first_module = batch.records.first().map(|r| r.module_id.as_i64());
                let now = $crate::store::to_micros($crate::domain::now());
                let mut tx = self.begin_page(first_module).await?;
                let (changed, revisions) =
                    match Self::write_new_page(&mut *tx, first_module, &batch, now).await? {
                        Some(first) => ((first..).take(batch.records.len()).collect(), Default::default()),
                        None => {
                            let changed = Self::change_times(&mut *tx, &batch, first_module, now).await?;
                            let revisions = Self::stored_revisions(&mut *tx, &batch).await?;
                            Self::write_rows(&mut *tx, &batch, &changed, now).await?;
                            (changed, revisions)
                        }
                    };
                tx.commit().await?;
                self.rows_written(batch.records.len(), batch.links.len() + batch.new_links.len());
                // The batch's records become the stored ones, not copies.
                let written = batch
                    .records
                    .into_iter()
                    .zip(changed)
                    .map(|(mut stored, changed_at)| {
                        stored.changed_at = changed_at;
                        stored.revision = revisions
                            .get(&stored.id.as_i64())
                            .and_then(|r| u64::try_from(*r).ok())
                            .unwrap_or(1);
                        stored
                    })
                    .collect();
                Ok(written)
            }

            async fn get_records(
                &self,
                ids: &[$crate::domain::Id],
            ) -> Result<Vec<$crate::domain::Record>, $crate::store::StoreError> {
                let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
                    return Ok(Vec::new());
                };
                // One row holding a JSON array, as a page of changes.
                let (records,): (String,) = sqlx::query_as(concat!(
                    "SELECT ", $records_json, " FROM local_records WHERE id >= $1 AND id <= $2 AND id ",
                    $in_ids
                ))
                .bind(low.as_i64())
                .bind(high.as_i64())
                .bind($crate::store::sql_set(ids.iter()))
                .fetch_one(&self.pool)
                .await?;
                $crate::store::record_rows::records_from_json(&records)
            }

            async fn get_record(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::Record>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::record_rows::RecordRow>(concat!(
                    "SELECT ",
                    $crate::store::records_sql::record_columns!(),
                    " FROM local_records WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::Record::try_from).transpose()
            }

            async fn list_records(
                &self,
                module_id: $crate::domain::Id,
                include_deleted: bool,
                after: Option<$crate::domain::Id>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::Record>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::record_rows::RecordRow>(concat!(
                    "SELECT ",
                    $crate::store::records_sql::record_columns!(),
                    " FROM local_records WHERE module_id = $1 AND ($2 OR deleted_at IS NULL) \
                      AND id > $3 ORDER BY id LIMIT $4"
                ))
                .bind(module_id.as_i64())
                .bind(include_deleted)
                .bind(after.map_or(i64::MIN, |i| i.as_i64()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::Record::try_from).collect()
            }

            async fn page_record_changes(
                &self,
                q: &$crate::store::ChangeQuery,
            ) -> Result<Vec<$crate::domain::Record>, $crate::store::StoreError> {
                let (after_changed, after_id) = q.lower_bound();
                // The page as one JSON array in one row: sqlx hands every
                // row from the database's thread to ours as a message of
                // its own, and a page of 500 made as many hand-offs.
                let (page,): (String,) = sqlx::query_as(concat!(
                    "SELECT ", $records_json, " FROM (SELECT ",
                    $crate::store::records_sql::record_columns!(),
                    " FROM local_records WHERE module_id = $1 \
                      AND (changed_at, id) > ($2, $3) \
                      AND (CAST($4 AS BIGINT) IS NULL OR origin_node_id IS NULL OR origin_node_id <> $4) \
                      AND (NOT $5 OR origin_node_id IS NULL) \
                     ORDER BY changed_at, id LIMIT $6) AS page"
                ))
                .bind(q.module_id.as_i64())
                .bind(after_changed)
                .bind(after_id)
                .bind(q.exclude_origin.map(|n| n.as_i64()))
                .bind(q.exclude_received)
                .bind(i64::from(q.limit))
                .fetch_one(&self.pool)
                .await?;
                $crate::store::record_rows::records_from_json(&page)
            }

            async fn count_record_changes(
                &self,
                q: &$crate::store::ChangeQuery,
            ) -> Result<u64, $crate::store::StoreError> {
                let (after_changed, after_id) = q.lower_bound();
                let (n,): (i64,) = sqlx::query_as($crate::store::records_sql::COUNT_CHANGES)
                .bind(q.module_id.as_i64())
                .bind(after_changed)
                .bind(after_id)
                .bind(q.exclude_origin.map(|n| n.as_i64()))
                .bind(q.exclude_received)
                .fetch_one(&self.pool)
                .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn find_links(
                &self,
                node_id: $crate::domain::NodeId,
                exposed_module_id: $crate::domain::Id,
                origin_ids: &[$crate::domain::Id],
            ) -> Result<Vec<$crate::domain::RecordLink>, $crate::store::StoreError> {
                if origin_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let (links,): (String,) = sqlx::query_as(<$store>::LINKS_OF_MODULE_BY_ORIGIN)
                    .bind(node_id.as_i64())
                    .bind(exposed_module_id.as_i64())
                    .bind($crate::store::sql_set(origin_ids.iter()))
                    .fetch_one(&self.pool)
                    .await?;
                $crate::store::record_rows::links_from_json(&links)
            }

            async fn find_links_any_module(
                &self,
                node_id: $crate::domain::NodeId,
                origin_ids: &[$crate::domain::Id],
            ) -> Result<Vec<$crate::domain::RecordLink>, $crate::store::StoreError> {
                $crate::store::records_sql::links_where_in!(
                    self, $in_ids, "origin_record_id", node_id, origin_ids
                )
            }

            async fn find_links_by_local(
                &self,
                node_id: $crate::domain::NodeId,
                local_ids: &[$crate::domain::Id],
            ) -> Result<Vec<$crate::domain::RecordLink>, $crate::store::StoreError> {
                $crate::store::records_sql::links_where_in!(
                    self, $in_ids, "local_record_id", node_id, local_ids
                )
            }

            async fn count_links_into(
                &self,
                node_id: $crate::domain::NodeId,
                local_module_id: $crate::domain::Id,
            ) -> Result<u64, $crate::store::StoreError> {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM record_links WHERE node_id = $1 AND local_module_id = $2",
                )
                .bind(node_id.as_i64())
                .bind(local_module_id.as_i64())
                .fetch_one(&self.pool)
                .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn links_not_seen(
                &self,
                node_id: $crate::domain::NodeId,
                exposed_module_id: $crate::domain::Id,
                run_id: i64,
                after: Option<$crate::domain::Id>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::RecordLink>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::record_rows::RecordLinkRow>(concat!(
                    "SELECT ",
                    $crate::store::records_sql::link_columns!(),
                    " FROM record_links WHERE node_id = $1 AND exposed_module_id = $2 AND seen_run <> $3 \
                      AND origin_record_id > $4 \
                     ORDER BY origin_record_id LIMIT $5"
                ))
                .bind(node_id.as_i64())
                .bind(exposed_module_id.as_i64())
                .bind(run_id)
                .bind(after.map_or(i64::MIN, |i| i.as_i64()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::RecordLink::try_from).collect()
            }

            async fn get_sync_cursor(
                &self,
                node_id: $crate::domain::NodeId,
                shared_module_id: $crate::domain::Id,
            ) -> Result<Option<$crate::store::CursorWrite>, $crate::store::StoreError> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT cursor, last_sync FROM sync_cursors WHERE node_id = $1 AND shared_module_id = $2",
                )
                .bind(node_id.as_i64())
                .bind(shared_module_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(cursor, last_sync)| $crate::store::CursorWrite { node_id, shared_module_id, cursor, last_sync }))
            }

            async fn delete_sync_cursors(
                &self,
                node_id: $crate::domain::NodeId,
                shared_module_id: Option<$crate::domain::Id>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "DELETE FROM sync_cursors WHERE node_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR shared_module_id = $2)",
                )
                .bind(node_id.as_i64())
                .bind(shared_module_id.map(|i| i.as_i64()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_run_errors(
                &self,
                run_id: $crate::domain::Id,
            ) -> Result<Vec<$crate::store::RunError>, $crate::store::StoreError> {
                let rows: Vec<(i64, i64, String)> = sqlx::query_as(
                    "SELECT seq, origin_record_id, message FROM sync_run_errors WHERE run_id = $1 ORDER BY seq",
                )
                .bind(run_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, origin, message)| $crate::store::RunError {
                        run_id,
                        seq: u64::try_from(seq).unwrap_or(0),
                        origin_record_id: $crate::domain::Id::from_i64(origin),
                        message,
                    })
                    .collect())
            }

            async fn count_records(
                &self,
                module_id: $crate::domain::Id,
            ) -> Result<u64, $crate::store::StoreError> {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM local_records WHERE module_id = $1 AND deleted_at IS NULL")
                        .bind(module_id.as_i64())
                        .fetch_one(&self.pool)
                        .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }
        }
    };
}
pub(crate) use impl_record_store;

/// The changes after a cursor that a page's total counts (the filters of
/// `page_record_changes`); the changes index covers every column it names.
pub(crate) const COUNT_CHANGES: &str = "SELECT COUNT(*) FROM local_records WHERE module_id = $1 \
     AND (changed_at, id) > ($2, $3) \
     AND (CAST($4 AS BIGINT) IS NULL OR origin_node_id IS NULL OR origin_node_id <> $4) \
     AND (NOT $5 OR origin_node_id IS NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_count_every_write_from_the_stored_one() {
        let record = |id: u64, revision: u64| crate::domain::Record {
            id: crate::domain::Id::new(id).unwrap(),
            module_id: crate::domain::Id::new(1).unwrap(),
            values: Default::default(),
            origin_node_id: None,
            created_at: crate::domain::now(),
            updated_at: crate::domain::now(),
            deleted_at: None,
            changed_at: 0,
            revision,
        };
        // 10 stored at 4, written twice; 11 new; 12 stored at 1.
        let records = [record(10, 4), record(11, 0), record(10, 4), record(12, 1)];
        let revisions = revisions_after(&records, &[(10, 4), (12, 1)]);
        assert_eq!(revisions.len(), 3);
        assert_eq!((revisions[&10], revisions[&11], revisions[&12]), (6, 1, 2));
    }

    #[test]
    fn chunks_are_bounded_and_never_repeat_a_key() {
        let items: Vec<u32> = (0..2500).collect();
        let sizes: Vec<usize> = unique_chunks(&items, |i| *i)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        let repeated = [1, 2, 1, 3, 3];
        let chunks = unique_chunks(&repeated, |i| *i);
        assert_eq!(chunks, vec![&[1, 2][..], &[1, 3][..], &[3][..]]);
        assert!(unique_chunks(&[] as &[u32], |i| *i).is_empty());
    }

    /// The total of a first page of changes is counted from the changes
    /// index alone (migration 7), never by reading each changed row.
    #[tokio::test]
    async fn the_count_of_changes_reads_only_the_index() {
        use crate::store::StoreAdmin;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = crate::store::sqlite::SqliteStore::connect(
            &url,
            &crate::store::sqlite::SqliteOptions {
                max_connections: 1,
                busy_timeout: std::time::Duration::from_secs(5),
            },
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {COUNT_CHANGES}"
        )))
        .bind(1_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(Some(2_i64))
        .bind(true)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let detail: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert_eq!(
            detail,
            [
                "SEARCH local_records USING COVERING INDEX local_records_changes (module_id=? AND changed_at>?)"
            ],
            "{plan:?}"
        );
    }
}
