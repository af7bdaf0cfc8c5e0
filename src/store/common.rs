//! The SQL both engines share, written once and stamped onto each engine's
//! store type by `impl_common_store!`. PostgreSQL and SQLite both accept `$N`
//! placeholders, `ON CONFLICT`, `RETURNING` and partial indexes, so the text
//! is identical; the macro only changes the Rust types it is checked against.

/// Implements the store traits for `$store`, which must have a
/// `pool: sqlx::Pool<_>` field; `$migrator` is the engine's embedded
/// `sqlx::migrate::Migrator`.
macro_rules! impl_common_store {
    ($store:ty, $engine:expr, $migrator:ident, $begin:literal, $lock_module:expr, $in_ids:literal, $skip_locked:literal, $json_agg:literal, $json_row:literal, $records_json:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::StoreAdmin for $store {
            fn engine(&self) -> $crate::store::Engine {
                $engine
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn migrate(
                &self,
            ) -> Result<Vec<$crate::store::AppliedMigration>, $crate::store::StoreError> {
                let before = self.applied_migrations().await.unwrap_or_default();
                $migrator
                    .run(&self.pool)
                    .await
                    .map_err(|e| $crate::store::StoreError::Migration(e.to_string()))?;
                let after = self.applied_migrations().await?;
                Ok(after.into_iter().filter(|m| !before.contains(m)).collect())
            }

            async fn applied_migrations(
                &self,
            ) -> Result<Vec<$crate::store::AppliedMigration>, $crate::store::StoreError> {
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT version, description FROM _sqlx_migrations \
                     WHERE success ORDER BY version",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(version, description)| $crate::store::AppliedMigration {
                        version,
                        description,
                    })
                    .collect())
            }

            fn known_migrations(&self) -> Vec<$crate::store::AppliedMigration> {
                $migrator
                    .iter()
                    .map(|m| $crate::store::AppliedMigration {
                        version: m.version,
                        description: m.description.to_string(),
                    })
                    .collect()
            }

            async fn close(&self) {
                self.pool.close().await;
                self.admin_pool.close().await;
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::InstanceStore for $store {
            async fn acquire_instance(
                &self,
                owner: &str,
                now: $crate::domain::Timestamp,
                expires_at: $crate::domain::Timestamp,
            ) -> Result<$crate::domain::InstanceLease, $crate::store::StoreError> {
                use $crate::store::rows::InstanceRow;
                use $crate::store::to_micros;
                let max = i64::from($crate::domain::id::MAX_INSTANCE);
                // Two statements, each atomic on its own; a lost race returns
                // no row and the loop tries again.
                for _ in 0..16 {
                    let taken = sqlx::query_as::<_, InstanceRow>(
                        "UPDATE instances SET owner = $1, acquired_at = $2, expires_at = $3 \
                         WHERE instance_no = (SELECT instance_no FROM instances \
                                              WHERE expires_at < $2 ORDER BY instance_no LIMIT 1) \
                           AND expires_at < $2 \
                         RETURNING instance_no, last_id_ms",
                    )
                    .bind(owner)
                    .bind(to_micros(now))
                    .bind(to_micros(expires_at))
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = taken {
                        return row.into_lease(owner, expires_at);
                    }
                    let added = sqlx::query_as::<_, InstanceRow>(
                        "INSERT INTO instances (instance_no, owner, acquired_at, expires_at, last_id_ms) \
                         SELECT next_no, $1, $2, $3, 0 FROM \
                           (SELECT COALESCE(MAX(instance_no) + 1, 0) AS next_no FROM instances) AS candidate \
                         WHERE next_no <= $4 \
                         ON CONFLICT (instance_no) DO NOTHING \
                         RETURNING instance_no, last_id_ms",
                    )
                    .bind(owner)
                    .bind(to_micros(now))
                    .bind(to_micros(expires_at))
                    .bind(max)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = added {
                        return row.into_lease(owner, expires_at);
                    }
                    let (count,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM instances WHERE expires_at >= $1",
                    )
                    .bind(to_micros(now))
                    .fetch_one(&self.pool)
                    .await?;
                    if count > max {
                        break;
                    }
                }
                Err($crate::store::StoreError::Conflict(format!(
                    "all {} id instance numbers are leased by running daemons",
                    max + 1
                )))
            }

            async fn renew_instance(
                &self,
                lease: &$crate::domain::InstanceLease,
                expires_at: $crate::domain::Timestamp,
                last_id_ms: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE instances SET expires_at = $3, last_id_ms = $4 \
                     WHERE instance_no = $1 AND owner = $2",
                )
                .bind(i64::from(lease.instance_no))
                .bind(lease.owner.as_str())
                .bind($crate::store::to_micros(expires_at))
                .bind(i64::try_from(last_id_ms).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn release_instance(
                &self,
                lease: &$crate::domain::InstanceLease,
                last_id_ms: u64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE instances SET expires_at = 0, last_id_ms = $3 \
                     WHERE instance_no = $1 AND owner = $2",
                )
                .bind(i64::from(lease.instance_no))
                .bind(lease.owner.as_str())
                .bind(i64::try_from(last_id_ms).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::NodeStore for $store {
            async fn insert_node(
                &self,
                node: &$crate::domain::Node,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::common::bind_node!(
                    sqlx::query($crate::store::common::INSERT_NODE),
                    node
                )
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_node(
                &self,
                id: $crate::domain::NodeId,
            ) -> Result<Option<$crate::domain::Node>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::NodeRow>(concat!(
                    "SELECT ",
                    $crate::store::rows::node_columns!(),
                    " FROM nodes WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::Node::try_from).transpose()
            }

            async fn list_nodes(
                &self,
                filter: &$crate::domain::NodeFilter,
            ) -> Result<Vec<$crate::domain::Node>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::NodeRow>(concat!(
                    "SELECT ",
                    $crate::store::rows::node_columns!(),
                    " FROM nodes \
                     WHERE ($1 OR deleted_at IS NULL) \
                       AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
                       AND (CAST($3 AS TEXT) IS NULL \
                            OR LOWER(name) LIKE $3 ESCAPE '\\' \
                            OR LOWER(base_url) LIKE $3 ESCAPE '\\') \
                     ORDER BY id DESC"
                ))
                .bind(filter.include_deleted)
                .bind(filter.status.map(|s| s.as_str()))
                .bind(
                    filter
                        .query
                        .as_deref()
                        .filter(|q| !q.is_empty())
                        .map($crate::store::like_pattern),
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::Node::try_from).collect()
            }

            async fn find_invitee_node(
                &self,
                base_url: &str,
                shared_node_id: $crate::domain::NodeId,
            ) -> Result<Option<$crate::domain::Node>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::NodeRow>(concat!(
                    "SELECT ",
                    $crate::store::rows::node_columns!(),
                    " FROM nodes WHERE base_url = $1 AND shared_node_id = $2 \
                     AND role = 'invitee' AND deleted_at IS NULL ORDER BY id LIMIT 1"
                ))
                .bind(base_url)
                .bind(shared_node_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::Node::try_from).transpose()
            }
        }

        $crate::store::common::impl_pairing_store!($store, $begin);

        $crate::store::modules_sql::impl_module_stores!($store, $begin);
        $crate::store::records_sql::impl_record_store!(
            $store,
            $begin,
            $lock_module,
            $in_ids,
            $json_agg,
            $json_row,
            $records_json
        );
        $crate::store::jobs_sql::impl_job_store!($store, $begin, $lock_module, $skip_locked);
        $crate::store::schedule_sql::impl_schedule_store!($store, $json_agg, $json_row);
        $crate::store::notify_sql::impl_notification_store!($store, $skip_locked);
        $crate::store::live_sql::impl_live_store!($store);

        #[async_trait::async_trait]
        impl $crate::store::AdminTokenStore for $store {
            async fn insert_admin_token(
                &self,
                token: &$crate::domain::AdminToken,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                sqlx::query(
                    "INSERT INTO admin_tokens (id, name, kind, created_at, expires_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token.id.as_i64())
                .bind(token.name.as_str())
                .bind(token.kind.as_str())
                .bind(to_micros(token.created_at))
                .bind(token.expires_at.map(to_micros))
                .bind(token.revoked_at.map(to_micros))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_admin_token(
                &self,
                id: $crate::domain::TokenId,
            ) -> Result<Option<$crate::domain::AdminToken>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::AdminTokenRow>(
                    "SELECT id, name, kind, created_at, expires_at, revoked_at \
                     FROM admin_tokens WHERE id = $1",
                )
                .bind(id.as_i64())
                // Every admin call looks its token up: never behind the syncs.
                .fetch_optional(&self.admin_pool)
                .await?;
                row.map($crate::domain::AdminToken::try_from).transpose()
            }

            async fn list_admin_tokens(
                &self,
            ) -> Result<Vec<$crate::domain::AdminToken>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::AdminTokenRow>(
                    "SELECT id, name, kind, created_at, expires_at, revoked_at \
                     FROM admin_tokens ORDER BY id DESC",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::AdminToken::try_from).collect()
            }

            async fn revoke_admin_token(
                &self,
                id: $crate::domain::TokenId,
                at: $crate::domain::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id.as_i64())
                .bind($crate::store::to_micros(at))
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(
                &self,
                event: &$crate::domain::AuditEvent,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::common::bind_audit!(
                    sqlx::query($crate::store::common::INSERT_AUDIT),
                    event
                )
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                filter: &$crate::domain::AuditFilter,
            ) -> Result<Vec<$crate::domain::AuditEvent>, $crate::store::StoreError> {
                let limit = if filter.limit == 0 { 1000 } else { i64::from(filter.limit) };
                let rows = sqlx::query_as::<_, $crate::store::rows::AuditRow>(
                    "SELECT id, at, event, result, node_id, actor, token_id, source_addr, reason, detail \
                     FROM audit_events \
                     WHERE (CAST($1 AS BIGINT) IS NULL OR node_id = $1) \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(filter.node_id.map(|id| id.as_i64()))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::AuditEvent::try_from).collect()
            }
        }
    };
}

pub(crate) use impl_common_store;

/// Inserts a node; binds in the order of `node_columns!`.
pub(crate) const INSERT_NODE: &str = concat!(
    "INSERT INTO nodes (",
    crate::store::rows::node_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22)"
);

/// Rewrites a node whose status is in the set `$23` (empty: any status);
/// binds in the order of `node_columns!`.
pub(crate) const UPDATE_NODE: &str = "UPDATE nodes SET shared_node_id = $2, role = $3, name = $4, \
     base_url = $5, contact = $6, status = $7, status_reason = $8, peer_kind = $9, \
     handshake_requested_at = $10, handshake_source_addr = $11, peer_token_fingerprint = $12, \
     structure_status = $13, structure_synced_at = $14, structure_error = $15, data_status = $16, \
     data_synced_at = $17, data_error = $18, paused = $19, created_at = $20, updated_at = $21, \
     deleted_at = $22 \
     WHERE id = $1 AND ($23 = '' OR (',' || $23 || ',') LIKE ('%,' || status || ',%'))";

/// Binds every node column to a query, in the order of `node_columns!`.
macro_rules! bind_node {
    ($query:expr, $node:expr) => {{
        use $crate::store::to_micros;
        let node: &$crate::domain::Node = $node;
        $query
            .bind(node.id.as_i64())
            .bind(node.shared_node_id.map(|id| id.as_i64()))
            .bind(node.role.as_str())
            .bind(node.name.clone())
            .bind(node.base_url.clone())
            .bind(node.contact.clone())
            .bind(node.status.as_str())
            .bind(node.status_reason.clone())
            .bind(node.peer_kind.as_str())
            .bind(node.handshake_requested_at.map(to_micros))
            .bind(node.handshake_source_addr.clone())
            .bind(node.peer_token_fingerprint.clone())
            .bind(node.structure_status.as_str())
            .bind(node.structure_synced_at.map(to_micros))
            .bind(node.structure_error.clone())
            .bind(node.data_status.as_str())
            .bind(node.data_synced_at.map(to_micros))
            .bind(node.data_error.clone())
            .bind(node.paused)
            .bind(to_micros(node.created_at))
            .bind(to_micros(node.updated_at))
            .bind(node.deleted_at.map(to_micros))
    }};
}

pub(crate) use bind_node;

/// `PairingStore` for `$store`; `$begin` starts a write transaction (SQLite
/// takes the write lock up front so a transaction never fails half-way on
/// lock upgrade).
macro_rules! impl_pairing_store {
    ($store:ty, $begin:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::PairingStore for $store {
            async fn apply_pairing_change(
                &self,
                change: &$crate::domain::PairingChange,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::domain::OttChange;
                use $crate::store::{sql_set, to_micros};
                let node = &change.node;
                let now = to_micros(node.updated_at);
                let mut tx = self.pool.begin_with($begin).await?;
                if change.insert {
                    $crate::store::common::bind_node!(
                        sqlx::query($crate::store::common::INSERT_NODE),
                        node
                    )
                    .execute(&mut *tx)
                    .await?;
                } else {
                    let expected = sql_set(change.expect_status.iter().map(|s| s.as_str()));
                    let updated = $crate::store::common::bind_node!(
                        sqlx::query($crate::store::common::UPDATE_NODE),
                        node
                    )
                    .bind(expected)
                    .execute(&mut *tx)
                    .await?;
                    if updated.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                if change.delete_ott {
                    sqlx::query("DELETE FROM pairing_tokens WHERE node_id = $1")
                        .bind(node.id.as_i64())
                        .execute(&mut *tx)
                        .await?;
                }
                match &change.ott {
                    None => {}
                    Some(OttChange::Replace { token_hash, expires_at }) => {
                        sqlx::query(
                            "INSERT INTO pairing_tokens \
                             (node_id, token_hash, created_at, expires_at, failed_attempts, consumed_at, locked_at) \
                             VALUES ($1, $2, $3, $4, 0, NULL, NULL) \
                             ON CONFLICT (node_id) DO UPDATE SET token_hash = excluded.token_hash, \
                             created_at = excluded.created_at, expires_at = excluded.expires_at, \
                             failed_attempts = 0, consumed_at = NULL, locked_at = NULL",
                        )
                        .bind(node.id.as_i64())
                        .bind(token_hash.clone())
                        .bind(now)
                        .bind(to_micros(*expires_at))
                        .execute(&mut *tx)
                        .await?;
                    }
                    Some(OttChange::Consume { token_hash, now: at }) => {
                        let consumed = sqlx::query(
                            "UPDATE pairing_tokens SET token_hash = NULL, consumed_at = $3 \
                             WHERE node_id = $1 AND token_hash = $2 AND consumed_at IS NULL \
                               AND locked_at IS NULL AND expires_at > $3",
                        )
                        .bind(node.id.as_i64())
                        .bind(token_hash.clone())
                        .bind(to_micros(*at))
                        .execute(&mut *tx)
                        .await?;
                        if consumed.rows_affected() != 1 {
                            tx.rollback().await?;
                            return Ok(false);
                        }
                    }
                }
                for kind in &change.delete_credentials {
                    sqlx::query("DELETE FROM peer_credentials WHERE node_id = $1 AND kind = $2")
                        .bind(node.id.as_i64())
                        .bind(kind.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                for credential in &change.put_credentials {
                    sqlx::query(
                        "INSERT INTO peer_credentials (node_id, kind, ciphertext, fingerprint, created_at) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (node_id, kind) DO UPDATE SET ciphertext = excluded.ciphertext, \
                         fingerprint = excluded.fingerprint, created_at = excluded.created_at",
                    )
                    .bind(credential.node_id.as_i64())
                    .bind(credential.kind.as_str())
                    .bind(credential.ciphertext.clone())
                    .bind(credential.fingerprint.clone())
                    .bind(to_micros(credential.created_at))
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(revocation) = &change.revoke_tokens {
                    use $crate::domain::Revocation;
                    let (ids, reason, only) = match revocation {
                        Revocation::AllExcept(ids, reason) => (ids, reason, false),
                        Revocation::Only(ids, reason) => (ids, reason, true),
                    };
                    // The set of ids as `a,b,c`: kept (AllExcept) or revoked (Only).
                    sqlx::query(
                        "UPDATE issued_tokens SET revoked_at = $2, revoked_reason = $3 \
                         WHERE node_id = $1 AND revoked_at IS NULL \
                           AND CASE WHEN $5 \
                                THEN (',' || $4 || ',') LIKE ('%,' || CAST(id AS TEXT) || ',%') \
                                ELSE ($4 = '' OR (',' || $4 || ',') NOT LIKE ('%,' || CAST(id AS TEXT) || ',%')) END",
                    )
                    .bind(node.id.as_i64())
                    .bind(now)
                    .bind(reason.clone())
                    .bind(sql_set(ids.iter()))
                    .bind(only)
                    .execute(&mut *tx)
                    .await?;
                }
                for token in &change.issue_tokens {
                    sqlx::query(
                        "INSERT INTO issued_tokens \
                         (id, node_id, token_hash, scope, created_at, last_used_at, last_used_addr, revoked_at, revoked_reason) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(token.id.as_i64())
                    .bind(token.node_id.as_i64())
                    .bind(token.token_hash.clone())
                    .bind(token.scope.clone())
                    .bind(to_micros(token.created_at))
                    .bind(token.last_used_at.map(to_micros))
                    .bind(token.last_used_addr.clone())
                    .bind(token.revoked_at.map(to_micros))
                    .bind(token.revoked_reason.clone())
                    .execute(&mut *tx)
                    .await?;
                }
                for event in &change.audit {
                    $crate::store::common::bind_audit!(
                        sqlx::query($crate::store::common::INSERT_AUDIT),
                        event
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                for n in &change.notifications {
                    $crate::store::notify_sql::bind_notification!(
                        sqlx::query($crate::store::notify_sql::INSERT_NOTIFICATION),
                        n
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn get_pairing_token(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<Option<$crate::domain::PairingToken>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::PairingTokenRow>(
                    "SELECT node_id, token_hash, created_at, expires_at, failed_attempts, consumed_at, locked_at \
                     FROM pairing_tokens WHERE node_id = $1",
                )
                .bind(node_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::PairingToken::try_from).transpose()
            }

            async fn record_ott_failure(
                &self,
                node_id: $crate::domain::NodeId,
                max_attempts: u32,
                now: $crate::domain::Timestamp,
            ) -> Result<Option<$crate::store::OttFailure>, $crate::store::StoreError> {
                // One statement: counts the attempt and voids the token when
                // this attempt reaches the limit, so racing guesses cannot
                // slip past it.
                let row: Option<(i64, Option<i64>)> = sqlx::query_as(
                    "UPDATE pairing_tokens SET failed_attempts = failed_attempts + 1, \
                       locked_at = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_at END, \
                       token_hash = CASE WHEN failed_attempts + 1 >= $2 THEN NULL ELSE token_hash END \
                     WHERE node_id = $1 AND token_hash IS NOT NULL \
                     RETURNING failed_attempts, locked_at",
                )
                .bind(node_id.as_i64())
                .bind(i64::from(max_attempts))
                .bind($crate::store::to_micros(now))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(attempts, locked_at)| $crate::store::OttFailure {
                    failed_attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    locked: locked_at.is_some(),
                }))
            }

            async fn void_ott(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE pairing_tokens SET token_hash = NULL WHERE node_id = $1 AND token_hash IS NOT NULL",
                )
                .bind(node_id.as_i64())
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn get_issued_token(
                &self,
                id: $crate::domain::TokenId,
            ) -> Result<Option<$crate::domain::IssuedToken>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::IssuedTokenRow>(
                    "SELECT id, node_id, token_hash, scope, created_at, last_used_at, last_used_addr, \
                     revoked_at, revoked_reason FROM issued_tokens WHERE id = $1",
                )
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::IssuedToken::try_from).transpose()
            }

            async fn list_issued_tokens(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<Vec<$crate::domain::IssuedToken>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::IssuedTokenRow>(
                    "SELECT id, node_id, token_hash, scope, created_at, last_used_at, last_used_addr, \
                     revoked_at, revoked_reason FROM issued_tokens WHERE node_id = $1 ORDER BY id DESC",
                )
                .bind(node_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::IssuedToken::try_from).collect()
            }

            async fn touch_issued_token(
                &self,
                id: $crate::domain::TokenId,
                at: $crate::domain::Timestamp,
                addr: &str,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE issued_tokens SET last_used_at = $2, last_used_addr = $3 WHERE id = $1")
                    .bind(id.as_i64())
                    .bind($crate::store::to_micros(at))
                    .bind(addr)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_issued_token(
                &self,
                id: $crate::domain::TokenId,
                at: $crate::domain::Timestamp,
                reason: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE issued_tokens SET revoked_at = $2, revoked_reason = $3 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id.as_i64())
                .bind($crate::store::to_micros(at))
                .bind(reason)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn get_peer_credential(
                &self,
                node_id: $crate::domain::NodeId,
                kind: $crate::domain::CredentialKind,
            ) -> Result<Option<$crate::domain::PeerCredential>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::PeerCredentialRow>(
                    "SELECT node_id, kind, ciphertext, fingerprint, created_at \
                     FROM peer_credentials WHERE node_id = $1 AND kind = $2",
                )
                .bind(node_id.as_i64())
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::PeerCredential::try_from).transpose()
            }
        }
    };
}

pub(crate) use impl_pairing_store;

/// Appends an audit event.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (id, at, event, result, node_id, actor, token_id, source_addr, reason, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Binds an audit event in the order of `INSERT_AUDIT`.
macro_rules! bind_audit {
    ($query:expr, $event:expr) => {{
        let event: &$crate::domain::AuditEvent = $event;
        $query
            .bind(event.id.as_i64())
            .bind($crate::store::to_micros(event.at))
            .bind(event.event.clone())
            .bind(event.result.as_str())
            .bind(event.node_id.map(|id| id.as_i64()))
            .bind(event.actor.clone())
            .bind(event.token_id.map(|id| id.as_i64()))
            .bind(event.source_addr.clone())
            .bind(event.reason.clone())
            .bind(event.detail.clone())
    }};
}

pub(crate) use bind_audit;
