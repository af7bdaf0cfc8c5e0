//! The SQL of scheduled jobs (`JobStore`). `$skip_locked` is what the engine
//! adds to the claim's inner select: PostgreSQL `FOR UPDATE SKIP LOCKED`, so
//! replicas claiming at once never wait on or take the same row; SQLite
//! nothing (its single writer already makes the claim atomic).
//!
//! A job's triggers are columns of its own that only `trigger_job` raises
//! and only `settle_job` serves: every other write leaves them alone, so a
//! read-modify-write of a job (a reconcile, a pause, an outcome) never
//! loses a trigger recorded meanwhile.

macro_rules! job_columns {
    () => {
        "id, node_id, kind, shared_module_id, schedule, state, next_run_at, attempts, \
         last_error, last_error_at, last_success_at, stop_reason, lease_owner, \
         lease_expires_at, triggered_at, created_at, updated_at, failing_since, \
         trigger_seq, claimed_seq, served_seq, reset_seq, trigger_reason, claimed_trigger, \
         last_run_id"
    };
}
pub(crate) use job_columns;

/// What `update_job` and `settle_job` write (`$2`..`$17`, bound by
/// `bind_job_state!`); never the triggers.
macro_rules! job_state_set {
    () => {
        "node_id = $2, kind = $3, shared_module_id = $4, schedule = $5, state = $6, \
         next_run_at = $7, attempts = $8, last_error = $9, last_error_at = $10, \
         last_success_at = $11, stop_reason = $12, lease_owner = $13, lease_expires_at = $14, \
         created_at = $15, updated_at = $16, failing_since = $17"
    };
}
pub(crate) use job_state_set;

/// A trigger recorded and not yet claimed.
macro_rules! pending {
    () => {
        "j.trigger_seq > j.claimed_seq"
    };
}
pub(crate) use pending;

/// A job may be claimed: not leased by a live worker, its node paired and
/// not removed, the node has fewer than `$4` jobs leased right now, and
/// either a trigger is pending (whatever its state or the node's pause:
/// `sync now` and `sync reset` run stopped jobs and paused nodes) or it is
/// due, not stopped, and its node not paused. `$1` = now. A job still
/// `running` whose lease ran out lost its worker before the outcome was
/// written (the process died, or the store was down when the attempt
/// ended): it is due at once, not at the next run set before it ran.
macro_rules! claimable {
    () => {
        concat!(
            "(j.lease_expires_at IS NULL OR j.lease_expires_at < $1) AND (",
            $crate::store::jobs_sql::pending!(),
            " OR (j.state <> 'stopped' AND (j.next_run_at <= $1 OR j.state = 'running'))) \
             AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node_id AND n.status = 'paired' \
                         AND n.deleted_at IS NULL AND (n.paused = FALSE OR ",
            $crate::store::jobs_sql::pending!(),
            ")) AND (SELECT COUNT(*) FROM sync_jobs r WHERE r.node_id = j.node_id \
              AND r.lease_expires_at IS NOT NULL AND r.lease_expires_at >= $1) < $4"
        )
    };
}
pub(crate) use claimable;

/// What a claim serves, from the row as it was: a reset not yet served
/// (its attempt pulls everything again), a pending trigger's reason, or the
/// schedule.
macro_rules! claimed_trigger {
    () => {
        "CASE WHEN reset_seq > served_seq THEN 'reset' \
         WHEN trigger_seq > claimed_seq THEN \
         (CASE WHEN trigger_reason = '' THEN 'manual' ELSE trigger_reason END) \
         ELSE 'schedule' END"
    };
}
pub(crate) use claimed_trigger;

/// The key of the lock claims take turns under (`$lock_module`, whose other
/// keys are module ids; no id is negative).
pub const CLAIM_LOCK: i64 = -1;

macro_rules! impl_job_store {
    ($store:ty, $begin:literal, $lock_module:expr, $skip_locked:literal) => {
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
                         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
                         ON CONFLICT (node_id, kind, shared_module_id) DO NOTHING"
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
                let done = $crate::store::jobs_sql::bind_job_state!(
                    sqlx::query(concat!(
                        "UPDATE sync_jobs SET ",
                        $crate::store::jobs_sql::job_state_set!(),
                        " WHERE id = $1 AND ($18 = '' OR lease_owner = $18)"
                    )),
                    job
                )
                .bind(leased_by.unwrap_or(""))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn settle_job(
                &self,
                job: &$crate::domain::SyncJob,
                owner: &str,
                served: i64,
                run: Option<$crate::domain::Id>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $crate::store::jobs_sql::bind_job_state!(
                    sqlx::query(concat!(
                        "UPDATE sync_jobs SET ",
                        $crate::store::jobs_sql::job_state_set!(),
                        ", served_seq = $19, last_run_id = $20 \
                         WHERE id = $1 AND lease_owner = $18 AND $18 <> ''"
                    )),
                    job
                )
                .bind(owner)
                .bind(served)
                .bind(run.map(|r| r.as_i64()).unwrap_or(0))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn trigger_job(
                &self,
                id: $crate::domain::Id,
                now: $crate::domain::Timestamp,
                trigger: $crate::store::TriggerRequest<'_>,
            ) -> Result<Option<i64>, $crate::store::StoreError> {
                // Every right-hand side reads the row as it was.
                let seq: Option<(i64,)> = sqlx::query_as(
                    "UPDATE sync_jobs SET \
                     trigger_seq = CASE WHEN $4 AND trigger_seq > served_seq THEN trigger_seq \
                                   ELSE trigger_seq + 1 END, \
                     reset_seq = CASE WHEN $5 THEN (CASE WHEN $4 AND trigger_seq > served_seq \
                                 THEN trigger_seq ELSE trigger_seq + 1 END) ELSE reset_seq END, \
                     trigger_reason = CASE WHEN $4 AND trigger_seq > served_seq THEN trigger_reason \
                                      WHEN trigger_seq > claimed_seq AND trigger_reason = 'manual' \
                                      THEN trigger_reason ELSE $3 END, \
                     triggered_at = CASE WHEN $4 AND trigger_seq > served_seq THEN triggered_at \
                                    WHEN trigger_seq > claimed_seq AND triggered_at IS NOT NULL \
                                    THEN triggered_at ELSE $2 END \
                     WHERE id = $1 RETURNING trigger_seq",
                )
                .bind(id.as_i64())
                .bind($crate::store::to_micros(now))
                .bind(trigger.reason)
                .bind(trigger.join)
                .bind(trigger.reset)
                .fetch_optional(&self.pool)
                .await?;
                Ok(seq.map(|(s,)| s))
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
                if let Some(lock) = $lock_module {
                    sqlx::query(lock)
                        .bind($crate::store::jobs_sql::CLAIM_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query_as::<_, $crate::store::rows::SyncJobRow>(concat!(
                    "UPDATE sync_jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, \
                     updated_at = $1, claimed_seq = trigger_seq, triggered_at = NULL, \
                     trigger_reason = '', claimed_trigger = ",
                    $crate::store::jobs_sql::claimed_trigger!(),
                    " WHERE id = (SELECT j.id FROM sync_jobs j WHERE ",
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

            async fn release_job_lease(
                &self,
                id: $crate::domain::Id,
                owner: &str,
                until: $crate::domain::Timestamp,
                now: $crate::domain::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE sync_jobs SET lease_owner = '', lease_expires_at = NULL, updated_at = $4, \
                     state = CASE WHEN state = 'running' THEN 'idle' ELSE state END \
                     WHERE id = $1 AND lease_owner = $2 AND lease_expires_at = $3",
                )
                .bind(id.as_i64())
                .bind(owner)
                .bind($crate::store::to_micros(until))
                .bind($crate::store::to_micros(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn next_job_due(
                &self,
            ) -> Result<Option<$crate::domain::Timestamp>, $crate::store::StoreError> {
                let (next,): (Option<i64>,) = sqlx::query_as(concat!(
                    "SELECT MIN(CASE WHEN ",
                    $crate::store::jobs_sql::pending!(),
                    " THEN 0 \
                     WHEN j.lease_expires_at IS NOT NULL AND j.lease_expires_at > j.next_run_at \
                     THEN j.lease_expires_at ELSE j.next_run_at END) FROM sync_jobs j \
                     WHERE (j.state <> 'stopped' OR ",
                    $crate::store::jobs_sql::pending!(),
                    ") AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node_id \
                     AND n.status = 'paired' AND n.deleted_at IS NULL AND (n.paused = FALSE OR ",
                    $crate::store::jobs_sql::pending!(),
                    "))"
                ))
                .fetch_one(&self.pool)
                .await?;
                next.map($crate::store::from_micros).transpose()
            }
        }
    };
}
pub(crate) use impl_job_store;

/// Binds a job's schedule, state, errors and lease in the order of
/// `job_state_set!` (`$1` its id).
macro_rules! bind_job_state {
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
            .bind(to_micros(job.created_at))
            .bind(to_micros(job.updated_at))
            .bind(job.failing_since.map(to_micros))
    }};
}
pub(crate) use bind_job_state;

/// Binds a whole job in the order of `job_columns!`.
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
            .bind(job.trigger_seq)
            .bind(job.claimed_seq)
            .bind(job.served_seq)
            .bind(job.reset_seq)
            .bind(job.trigger_reason.clone())
            .bind(job.claimed_trigger.clone())
            .bind(job.last_run_id.map(|r| r.as_i64()).unwrap_or(0))
    }};
}
pub(crate) use bind_job;
