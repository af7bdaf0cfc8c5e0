//! The SQL of scheduled jobs. `$skip_locked` is what the engine adds to the
//! claim's inner select: PostgreSQL `FOR UPDATE SKIP LOCKED`, so replicas
//! claiming at once never wait on or take the same row; SQLite nothing (its
//! single writer already makes the claim atomic).

macro_rules! job_columns {
    () => {
        "id, node_id, kind, shared_module_id, schedule, state, next_run_at, attempts, \
         last_error, last_error_at, last_success_at, stop_reason, lease_owner, \
         lease_expires_at, triggered_at, created_at, updated_at, failing_since"
    };
}
pub(crate) use job_columns;

/// A job may be claimed: not stopped, due (or triggered), not leased by a
/// live worker, its node paired, not paused, not removed, and the node has
/// fewer than `$4` jobs leased right now. `$1` = now. A job still
/// `running` whose lease ran out lost its worker before the outcome was
/// written (the process died, or the store was down when the attempt
/// ended): it is due at once, not at the next run set before it ran.
macro_rules! claimable {
    () => {
        "j.state <> 'stopped' \
         AND (j.next_run_at <= $1 OR j.triggered_at IS NOT NULL OR j.state = 'running') \
         AND (j.lease_expires_at IS NULL OR j.lease_expires_at < $1) \
         AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node_id AND n.status = 'paired' \
                     AND n.paused = FALSE AND n.deleted_at IS NULL) \
         AND (SELECT COUNT(*) FROM sync_jobs r WHERE r.node_id = j.node_id \
              AND r.lease_expires_at IS NOT NULL AND r.lease_expires_at >= $1) < $4"
    };
}
pub(crate) use claimable;

/// The key of the lock claims take turns under (`$lock_module`, whose other
/// keys are module ids; no id is negative).
pub const CLAIM_LOCK: i64 = -1;

macro_rules! impl_job_store {
    ($store:ty, $begin:literal, $lock_module:literal, $skip_locked:literal, $json_agg:literal, $json_row:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::JobStore for $store {
            async fn list_jobs(
                &self,
                node_id: Option<$crate::domain::NodeId>,
            ) -> Result<Vec<$crate::domain::SyncJob>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::SyncJobRow>(concat!(
                    "SELECT ",
                    $crate::store::jobs_sql::job_columns!(),
                    " FROM sync_jobs WHERE ($1 = 0 OR node_id = $1) ORDER BY node_id, kind DESC, shared_module_id"
                ))
                .bind(node_id.map(|n| n.as_i64()).unwrap_or(0))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::SyncJob::try_from).collect()
            }

            async fn get_job(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::SyncJob>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::SyncJobRow>(concat!(
                    "SELECT ",
                    $crate::store::jobs_sql::job_columns!(),
                    " FROM sync_jobs WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::SyncJob::try_from).transpose()
            }

            async fn insert_job(
                &self,
                job: &$crate::domain::SyncJob,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $crate::store::jobs_sql::bind_job!(
                    sqlx::query(concat!(
                        "INSERT INTO sync_jobs (",
                        $crate::store::jobs_sql::job_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                         $15, $16, $17, $18) ON CONFLICT (node_id, kind, shared_module_id) DO NOTHING"
                    )),
                    job
                )
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_job(
                &self,
                id: $crate::domain::Id,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM sync_jobs WHERE id = $1")
                    .bind(id.as_i64())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn update_job(
                &self,
                job: &$crate::domain::SyncJob,
                leased_by: Option<&str>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $crate::store::jobs_sql::bind_job!(
                    sqlx::query(
                        "UPDATE sync_jobs SET node_id = $2, kind = $3, shared_module_id = $4, \
                         schedule = $5, state = $6, next_run_at = $7, attempts = $8, \
                         last_error = $9, last_error_at = $10, last_success_at = $11, \
                         stop_reason = $12, lease_owner = $13, lease_expires_at = $14, \
                         triggered_at = $15, created_at = $16, updated_at = $17, failing_since = $18 \
                         WHERE id = $1 AND ($19 = '' OR lease_owner = $19)"
                    ),
                    job
                )
                .bind(leased_by.unwrap_or(""))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_due_job(
                &self,
                now: $crate::domain::Timestamp,
                owner: &str,
                lease_until: $crate::domain::Timestamp,
                per_peer: u32,
            ) -> Result<Option<$crate::domain::SyncJob>, $crate::store::StoreError> {
                // Claims take turns (PostgreSQL: an advisory lock; SQLite's
                // write lock already does), so the count of a node's leased
                // jobs a claim reads includes every claim committed before
                // it, on any replica: the per-peer limit holds across them.
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query($lock_module)
                    .bind($crate::store::jobs_sql::CLAIM_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query_as::<_, $crate::store::rows::SyncJobRow>(concat!(
                    "UPDATE sync_jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, \
                     updated_at = $1 WHERE id = (SELECT j.id FROM sync_jobs j WHERE ",
                    $crate::store::jobs_sql::claimable!(),
                    " ORDER BY COALESCE(j.triggered_at, j.next_run_at), j.id LIMIT 1",
                    $skip_locked,
                    ") RETURNING ",
                    $crate::store::jobs_sql::job_columns!()
                ))
                .bind($crate::store::to_micros(now))
                .bind(owner)
                .bind($crate::store::to_micros(lease_until))
                .bind(i64::from(per_peer))
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.map($crate::domain::SyncJob::try_from).transpose()
            }

            async fn claim_job(
                &self,
                id: $crate::domain::Id,
                now: $crate::domain::Timestamp,
                owner: &str,
                lease_until: $crate::domain::Timestamp,
            ) -> Result<Option<$crate::domain::SyncJob>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::SyncJobRow>(concat!(
                    "UPDATE sync_jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, \
                     updated_at = $1 WHERE id = $4 \
                     AND (lease_expires_at IS NULL OR lease_expires_at < $1) RETURNING ",
                    $crate::store::jobs_sql::job_columns!()
                ))
                .bind($crate::store::to_micros(now))
                .bind(owner)
                .bind($crate::store::to_micros(lease_until))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::SyncJob::try_from).transpose()
            }

            async fn renew_job_lease(
                &self,
                id: $crate::domain::Id,
                owner: &str,
                lease_until: $crate::domain::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE sync_jobs SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 \
                     AND lease_expires_at IS NOT NULL",
                )
                .bind(id.as_i64())
                .bind(owner)
                .bind($crate::store::to_micros(lease_until))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn next_job_due(
                &self,
            ) -> Result<Option<$crate::domain::Timestamp>, $crate::store::StoreError> {
                let (next,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MIN(CASE WHEN j.triggered_at IS NOT NULL THEN 0 \
                     WHEN j.lease_expires_at IS NOT NULL AND j.lease_expires_at > j.next_run_at \
                     THEN j.lease_expires_at ELSE j.next_run_at END) FROM sync_jobs j \
                     WHERE j.state <> 'stopped' AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node_id \
                     AND n.status = 'paired' AND n.paused = FALSE AND n.deleted_at IS NULL)",
                )
                .fetch_one(&self.pool)
                .await?;
                next.map($crate::store::from_micros).transpose()
            }

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
        }
    };
}
pub(crate) use impl_job_store;

/// Binds a job in the order of `job_columns!`.
macro_rules! bind_job {
    ($query:expr, $job:expr) => {{
        use $crate::store::to_micros;
        let job: &$crate::domain::SyncJob = $job;
        $query
            .bind(job.id.as_i64())
            .bind(job.node_id.as_i64())
            .bind(job.kind.as_str())
            .bind(job.shared_module_id.map(|i| i.as_i64()).unwrap_or(0))
            .bind(job.schedule.clone())
            .bind(job.state.as_str())
            .bind(to_micros(job.next_run_at))
            .bind(i64::from(job.attempts))
            .bind(job.last_error.clone())
            .bind(job.last_error_at.map(to_micros))
            .bind(job.last_success_at.map(to_micros))
            .bind(job.stop_reason.clone())
            .bind(job.lease_owner.clone())
            .bind(job.lease_expires_at.map(to_micros))
            .bind(job.triggered_at.map(to_micros))
            .bind(to_micros(job.created_at))
            .bind(to_micros(job.updated_at))
            .bind(job.failing_since.map(to_micros))
    }};
}
pub(crate) use bind_job;
