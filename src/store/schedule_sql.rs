//! The SQL of nodes' schedules and pauses, the status of every node, and
//! pruning old history (`ScheduleStore`).

/// The finished runs of job (`$1` node, `$2` kind, `$3` shared module)
/// older than its `$4 + 1`-th newest run.
macro_rules! older_than_kept {
    () => {
        "node_id = $1 AND kind = $2 AND shared_module_id = $3 AND status <> 'running' \
         AND id < (SELECT id FROM sync_runs WHERE node_id = $1 AND kind = $2 \
         AND shared_module_id = $3 ORDER BY id DESC LIMIT 1 OFFSET $4)"
    };
}
pub(crate) use older_than_kept;

macro_rules! impl_schedule_store {
    ($store:ty, $json_agg:literal, $json_row:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::ScheduleStore for $store {
            async fn node_schedule(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<(String, String), $crate::store::StoreError> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT schedule_structure, schedule_data FROM nodes WHERE id = $1",
                )
                .bind(node_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.unwrap_or_default())
            }

            async fn node_schedules(
                &self,
            ) -> Result<Vec<($crate::domain::NodeId, String, String)>, $crate::store::StoreError> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT id, schedule_structure, schedule_data FROM nodes ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, s, d)| {
                        $crate::domain::NodeId::from_i64(id)
                            .map(|id| (id, s, d))
                            .ok_or_else(|| {
                                $crate::store::StoreError::Corrupt(format!(
                                    "nodes.id: {id} is not a node id"
                                ))
                            })
                    })
                    .collect()
            }

            async fn status_snapshot(
                &self,
            ) -> Result<$crate::store::StatusSnapshot, $crate::store::StoreError> {
                // Rows as positional JSON arrays, in the order of the row
                // structs' fields (a node: its row, then its schedules).
                let (nodes, jobs): (String, String) = sqlx::query_as(concat!(
                    "SELECT (SELECT CAST(COALESCE(", $json_agg, "(", $json_row, "(", $json_row, "(",
                    $crate::store::rows::node_columns!(),
                    "), schedule_structure, schedule_data)), '[]') AS TEXT) \
                     FROM nodes WHERE deleted_at IS NULL), \
                     (SELECT CAST(COALESCE(", $json_agg, "(", $json_row, "(",
                    $crate::store::jobs_sql::job_columns!(),
                    ")), '[]') AS TEXT) FROM sync_jobs)"
                ))
                .fetch_one(&self.admin_pool)
                .await?;
                $crate::store::rows::status_snapshot(&nodes, &jobs)
            }

            async fn set_node_schedule(
                &self,
                node_id: $crate::domain::NodeId,
                structure: &str,
                data: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE nodes SET schedule_structure = $2, schedule_data = $3 \
                     WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(node_id.as_i64())
                .bind(structure)
                .bind(data)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_node_paused(
                &self,
                node_id: $crate::domain::NodeId,
                paused: bool,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE nodes SET paused = $2 WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(node_id.as_i64())
                .bind(paused)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune_history(
                &self,
                before: $crate::domain::Timestamp,
            ) -> Result<(u64, u64), $crate::store::StoreError> {
                let before = $crate::store::to_micros(before);
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "DELETE FROM sync_run_errors WHERE run_id IN \
                     (SELECT id FROM sync_runs WHERE started_at < $1 AND status <> 'running')",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?;
                let runs = sqlx::query("DELETE FROM sync_runs WHERE started_at < $1 AND status <> 'running'")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "DELETE FROM notifications WHERE COALESCE(sent_at, given_up_at) < $1",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?;
                let audit = sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok((runs, audit))
            }

            async fn prune_runs_beyond(
                &self,
                keep: u32,
            ) -> Result<u64, $crate::store::StoreError> {
                let keep = i64::from(keep.max(1));
                let jobs: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT node_id, kind, shared_module_id FROM sync_runs \
                     GROUP BY node_id, kind, shared_module_id HAVING COUNT(*) > $1",
                )
                .bind(keep)
                .fetch_all(&self.pool)
                .await?;
                let mut removed = 0;
                for (node, kind, shared) in jobs {
                    // Finished runs older than the oldest one kept go.
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(concat!(
                        "DELETE FROM sync_run_errors WHERE run_id IN (SELECT id FROM sync_runs WHERE ",
                        $crate::store::schedule_sql::older_than_kept!(),
                        ")"
                    ))
                    .bind(node)
                    .bind(&kind)
                    .bind(shared)
                    .bind(keep - 1)
                    .execute(&mut *tx)
                    .await?;
                    removed += sqlx::query(concat!(
                        "DELETE FROM sync_runs WHERE ",
                        $crate::store::schedule_sql::older_than_kept!()
                    ))
                    .bind(node)
                    .bind(&kind)
                    .bind(shared)
                    .bind(keep - 1)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                }
                Ok(removed)
            }
        }
    };
}
pub(crate) use impl_schedule_store;
