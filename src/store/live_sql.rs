//! The SQL of `LiveStore`.

macro_rules! impl_live_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::LiveStore for $store {
            async fn set_peer_capabilities(
                &self,
                node_id: $crate::domain::NodeId,
                capabilities: &$crate::domain::PeerCapabilities,
                now: $crate::domain::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO peer_capabilities (node_id, version, capabilities, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET \
                     version = excluded.version, capabilities = excluded.capabilities, \
                     updated_at = excluded.updated_at",
                )
                .bind(node_id.as_i64())
                .bind(capabilities.version.chars().take(64).collect::<String>())
                .bind(capabilities.joined())
                .bind($crate::store::to_micros(now))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn peer_capabilities(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<Option<$crate::domain::PeerCapabilities>, $crate::store::StoreError> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT version, capabilities FROM peer_capabilities WHERE node_id = $1",
                )
                .bind(node_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(version, caps)| $crate::domain::PeerCapabilities {
                    version,
                    capabilities: $crate::domain::PeerCapabilities::split(&caps),
                }))
            }

            async fn all_peer_capabilities(
                &self,
            ) -> Result<
                Vec<($crate::domain::NodeId, $crate::domain::PeerCapabilities)>,
                $crate::store::StoreError,
            > {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT node_id, version, capabilities FROM peer_capabilities ORDER BY node_id",
                )
                .fetch_all(&self.admin_pool)
                .await?;
                rows.into_iter()
                    .map(|(id, version, caps)| {
                        let node = $crate::domain::NodeId::from_i64(id).ok_or_else(|| {
                            $crate::store::StoreError::Corrupt(format!(
                                "peer_capabilities.node_id: {id} is not a node id"
                            ))
                        })?;
                        Ok((
                            node,
                            $crate::domain::PeerCapabilities {
                                version,
                                capabilities: $crate::domain::PeerCapabilities::split(&caps),
                            },
                        ))
                    })
                    .collect()
            }

            async fn live_exposures(
                &self,
                module_id: $crate::domain::Id,
            ) -> Result<Vec<($crate::domain::NodeId, $crate::domain::Id)>, $crate::store::StoreError>
            {
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT e.node_id, e.id FROM exposed_modules e \
                     JOIN nodes n ON n.id = e.node_id \
                     JOIN peer_capabilities c ON c.node_id = e.node_id \
                     WHERE e.module_id = $1 AND e.deleted_at IS NULL \
                     AND n.status = 'paired' AND n.deleted_at IS NULL \
                     AND (',' || c.capabilities || ',') LIKE $2 ORDER BY e.node_id",
                )
                .bind(module_id.as_i64())
                .bind(format!(
                    "%,{},%",
                    $crate::domain::PeerCapabilities::CHANGE_NOTICES
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(node, exposed)| {
                        match (
                            $crate::domain::NodeId::from_i64(node),
                            $crate::domain::Id::from_i64(exposed),
                        ) {
                            (Some(node), Some(exposed)) => Ok((node, exposed)),
                            _ => Err($crate::store::StoreError::Corrupt(format!(
                                "exposed_modules: ({node}, {exposed}) are not ids"
                            ))),
                        }
                    })
                    .collect()
            }

            async fn live_modules(
                &self,
            ) -> Result<Vec<$crate::domain::Id>, $crate::store::StoreError> {
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "SELECT DISTINCT e.module_id FROM exposed_modules e \
                     JOIN nodes n ON n.id = e.node_id \
                     JOIN peer_capabilities c ON c.node_id = e.node_id \
                     WHERE e.deleted_at IS NULL AND n.status = 'paired' AND n.deleted_at IS NULL \
                     AND (',' || c.capabilities || ',') LIKE $1 ORDER BY e.module_id",
                )
                .bind(format!(
                    "%,{},%",
                    $crate::domain::PeerCapabilities::CHANGE_NOTICES
                ))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(id,)| $crate::domain::Id::from_i64(id))
                    .collect())
            }

            async fn data_job_of(
                &self,
                node_id: $crate::domain::NodeId,
                external_module_id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::Id>, $crate::store::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT j.id FROM sync_jobs j JOIN shared_modules s ON s.id = j.shared_module_id \
                     WHERE s.node_id = $1 AND s.external_module_id = $2 AND s.deleted_at IS NULL \
                     AND j.node_id = $1 AND j.kind = 'data'",
                )
                .bind(node_id.as_i64())
                .bind(external_module_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(id,)| $crate::domain::Id::from_i64(id)))
            }
        }
    };
}
pub(crate) use impl_live_store;
