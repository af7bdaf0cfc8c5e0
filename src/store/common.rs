//! The SQL both engines share, written once and stamped onto each engine's
//! store type by `impl_common_store!`. PostgreSQL and SQLite both accept `$N`
//! placeholders, `ON CONFLICT`, `RETURNING` and partial indexes, so the text
//! is identical; the macro only changes the Rust types it is checked against.

/// Implements the store traits for `$store`, which must have a
/// `pool: sqlx::Pool<_>` field; `$migrator` is the engine's embedded
/// `sqlx::migrate::Migrator`.
macro_rules! impl_common_store {
    ($store:ty, $engine:expr, $migrator:ident) => {
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
                use $crate::store::to_micros;
                sqlx::query(concat!(
                    "INSERT INTO nodes (",
                    $crate::store::rows::node_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                     $15, $16, $17, $18, $19, $20, $21)"
                ))
                .bind(node.id.as_i64())
                .bind(node.shared_node_id.map(|id| id.as_i64()))
                .bind(node.name.as_str())
                .bind(node.base_url.as_str())
                .bind(node.contact.as_str())
                .bind(node.status.as_str())
                .bind(node.status_reason.as_str())
                .bind(node.peer_kind.as_str())
                .bind(node.handshake_requested_at.map(to_micros))
                .bind(node.handshake_source_addr.as_str())
                .bind(node.peer_token_fingerprint.as_str())
                .bind(node.structure_status.as_str())
                .bind(node.structure_synced_at.map(to_micros))
                .bind(node.structure_error.as_str())
                .bind(node.data_status.as_str())
                .bind(node.data_synced_at.map(to_micros))
                .bind(node.data_error.as_str())
                .bind(node.paused)
                .bind(to_micros(node.created_at))
                .bind(to_micros(node.updated_at))
                .bind(node.deleted_at.map(to_micros))
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
        }

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
                .fetch_optional(&self.pool)
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
                sqlx::query(
                    "INSERT INTO audit_events \
                     (id, at, event, result, node_id, actor, token_id, source_addr, reason, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(event.id.as_i64())
                .bind($crate::store::to_micros(event.at))
                .bind(event.event.as_str())
                .bind(event.result.as_str())
                .bind(event.node_id.map(|id| id.as_i64()))
                .bind(event.actor.as_str())
                .bind(event.token_id.map(|id| id.as_i64()))
                .bind(event.source_addr.as_str())
                .bind(event.reason.as_str())
                .bind(event.detail.as_str())
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
