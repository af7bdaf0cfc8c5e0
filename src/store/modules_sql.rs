//! The SQL of modules, shared modules, mappings and sync runs, shared by
//! both engines like `common.rs`.

/// Columns of `ExposedModuleRow`.
macro_rules! exposed_columns {
    () => {
        "id, node_id, module_id, namespace_id, handle, name, fields, created_at, updated_at, deleted_at"
    };
}
pub(crate) use exposed_columns;

macro_rules! shared_columns {
    () => {
        "id, node_id, external_module_id, origin_module_id, origin_namespace_id, handle, name, \
         fields, created_at, updated_at, deleted_at"
    };
}
pub(crate) use shared_columns;

macro_rules! mapping_columns {
    () => {
        "id, node_id, shared_module_id, local_module_id, namespace_id, fields, status, \
         status_reason, created_at, updated_at"
    };
}
pub(crate) use mapping_columns;

macro_rules! run_columns {
    () => {
        "id, node_id, kind, shared_module_id, trigger, status, started_at, finished_at, pages, \
         created, updated, deleted, skipped, errors, error, owner"
    };
}
pub(crate) use run_columns;

/// The module-related store traits for `$store` (see `impl_common_store!`).
macro_rules! impl_module_stores {
    ($store:ty, $begin:literal) => {
        impl $store {
            /// Loads fields for module rows and builds the modules.
            async fn local_modules_with_fields(
                &self,
                rows: Vec<$crate::store::rows::LocalModuleRow>,
            ) -> Result<Vec<$crate::domain::LocalModule>, $crate::store::StoreError> {
                let mut modules = Vec::with_capacity(rows.len());
                for row in rows {
                    let fields = sqlx::query_as::<_, $crate::store::rows::LocalFieldRow>(
                        "SELECT module_id, name, kind, label, is_multi FROM local_module_fields \
                         WHERE module_id = $1 ORDER BY position",
                    )
                    .bind(row.id)
                    .fetch_all(&self.pool)
                    .await?;
                    modules.push(row.into_module(fields)?);
                }
                Ok(modules)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ModuleStore for $store {
            async fn insert_exposed_module(
                &self,
                module: &$crate::domain::ExposedModule,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                sqlx::query(concat!(
                    "INSERT INTO exposed_modules (",
                    $crate::store::modules_sql::exposed_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(module.id.as_i64())
                .bind(module.node_id.as_i64())
                .bind(module.module_id.as_i64())
                .bind(module.namespace_id.as_i64())
                .bind(module.handle.clone())
                .bind(module.name.clone())
                .bind($crate::store::rows::fields_to_json(&module.fields))
                .bind(to_micros(module.created_at))
                .bind(to_micros(module.updated_at))
                .bind(module.deleted_at.map(to_micros))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn update_exposed_module(
                &self,
                module: &$crate::domain::ExposedModule,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                sqlx::query(
                    "UPDATE exposed_modules SET handle = $2, name = $3, fields = $4, \
                     updated_at = $5, deleted_at = $6 WHERE id = $1",
                )
                .bind(module.id.as_i64())
                .bind(module.handle.clone())
                .bind(module.name.clone())
                .bind($crate::store::rows::fields_to_json(&module.fields))
                .bind(to_micros(module.updated_at))
                .bind(module.deleted_at.map(to_micros))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_exposed_module(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::ExposedModule>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::ExposedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::exposed_columns!(),
                    " FROM exposed_modules WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::ExposedModule::try_from).transpose()
            }

            async fn find_exposed_module(
                &self,
                node_id: $crate::domain::NodeId,
                module_id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::ExposedModule>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::ExposedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::exposed_columns!(),
                    " FROM exposed_modules WHERE node_id = $1 AND module_id = $2 AND deleted_at IS NULL"
                ))
                .bind(node_id.as_i64())
                .bind(module_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::ExposedModule::try_from).transpose()
            }

            async fn list_exposed_modules(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<Vec<$crate::domain::ExposedModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::ExposedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::exposed_columns!(),
                    " FROM exposed_modules WHERE node_id = $1 AND deleted_at IS NULL ORDER BY id"
                ))
                .bind(node_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ExposedModule::try_from).collect()
            }

            async fn list_exposures_of_module(
                &self,
                module_id: $crate::domain::Id,
            ) -> Result<Vec<$crate::domain::ExposedModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::ExposedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::exposed_columns!(),
                    " FROM exposed_modules WHERE module_id = $1 AND deleted_at IS NULL ORDER BY id"
                ))
                .bind(module_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ExposedModule::try_from).collect()
            }

            async fn page_exposed_modules(
                &self,
                query: &$crate::store::ExposedPageQuery,
            ) -> Result<Vec<$crate::domain::ExposedModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::ExposedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::exposed_columns!(),
                    " FROM exposed_modules WHERE node_id = $1 \
                       AND (CAST($2 AS BIGINT) IS NULL OR updated_at >= $2) \
                       AND (CAST($3 AS BIGINT) IS NULL OR id > $3) \
                       AND ($4 OR deleted_at IS NULL) \
                     ORDER BY id LIMIT $5"
                ))
                .bind(query.node_id.as_i64())
                .bind(query.since.map($crate::store::to_micros))
                .bind(query.after.map(|id| id.as_i64()))
                .bind(query.include_deleted)
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ExposedModule::try_from).collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::LocalModuleStore for $store {
            async fn embedded_namespace_id(
                &self,
                candidate: $crate::domain::Id,
            ) -> Result<$crate::domain::Id, $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('embedded_namespace_id', $1) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(candidate.to_string())
                .execute(&self.pool)
                .await?;
                let (value,): (String,) =
                    sqlx::query_as("SELECT value FROM settings WHERE key = 'embedded_namespace_id'")
                        .fetch_one(&self.pool)
                        .await?;
                value.parse().map_err(|_| {
                    $crate::store::StoreError::Corrupt(format!("settings.embedded_namespace_id: `{value}`"))
                })
            }

            async fn insert_local_module(
                &self,
                module: &$crate::domain::LocalModule,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "INSERT INTO local_modules (id, namespace_id, handle, name, created_at, updated_at, deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(module.id.as_i64())
                .bind(module.namespace_id.as_i64())
                .bind(module.handle.clone())
                .bind(module.name.clone())
                .bind(to_micros(module.created_at))
                .bind(to_micros(module.updated_at))
                .bind(module.deleted_at.map(to_micros))
                .execute(&mut *tx)
                .await?;
                $crate::store::modules_sql::write_fields!(tx, module);
                tx.commit().await?;
                Ok(())
            }

            async fn update_local_module(
                &self,
                module: &$crate::domain::LocalModule,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "UPDATE local_modules SET handle = $2, name = $3, updated_at = $4, deleted_at = $5 WHERE id = $1",
                )
                .bind(module.id.as_i64())
                .bind(module.handle.clone())
                .bind(module.name.clone())
                .bind(to_micros(module.updated_at))
                .bind(module.deleted_at.map(to_micros))
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM local_module_fields WHERE module_id = $1")
                    .bind(module.id.as_i64())
                    .execute(&mut *tx)
                    .await?;
                $crate::store::modules_sql::write_fields!(tx, module);
                tx.commit().await?;
                Ok(())
            }

            async fn get_local_module(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::LocalModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::LocalModuleRow>(
                    "SELECT id, namespace_id, handle, name, created_at, updated_at, deleted_at \
                     FROM local_modules WHERE id = $1",
                )
                .bind(id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                Ok(self.local_modules_with_fields(rows).await?.pop())
            }

            async fn find_local_module(
                &self,
                handle: &str,
            ) -> Result<Option<$crate::domain::LocalModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::LocalModuleRow>(
                    "SELECT id, namespace_id, handle, name, created_at, updated_at, deleted_at \
                     FROM local_modules WHERE handle = $1 AND deleted_at IS NULL",
                )
                .bind(handle)
                .fetch_all(&self.pool)
                .await?;
                Ok(self.local_modules_with_fields(rows).await?.pop())
            }

            async fn list_local_modules(
                &self,
            ) -> Result<Vec<$crate::domain::LocalModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::LocalModuleRow>(
                    "SELECT id, namespace_id, handle, name, created_at, updated_at, deleted_at \
                     FROM local_modules WHERE deleted_at IS NULL ORDER BY handle",
                )
                .fetch_all(&self.pool)
                .await?;
                self.local_modules_with_fields(rows).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SharedStore for $store {
            async fn apply_structure_change(
                &self,
                change: &$crate::store::StructureChange,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                let mut tx = self.pool.begin_with($begin).await?;
                for m in &change.upsert_shared {
                    sqlx::query(concat!(
                        "INSERT INTO shared_modules (",
                        $crate::store::modules_sql::shared_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (node_id, external_module_id) DO UPDATE SET \
                         origin_module_id = excluded.origin_module_id, \
                         origin_namespace_id = excluded.origin_namespace_id, handle = excluded.handle, \
                         name = excluded.name, fields = excluded.fields, updated_at = excluded.updated_at, \
                         deleted_at = excluded.deleted_at"
                    ))
                    .bind(m.id.as_i64())
                    .bind(m.node_id.as_i64())
                    .bind(m.external_module_id.as_i64())
                    .bind(m.origin_module_id.map(|i| i.as_i64()).unwrap_or(0))
                    .bind(m.origin_namespace_id.map(|i| i.as_i64()).unwrap_or(0))
                    .bind(m.handle.clone())
                    .bind(m.name.clone())
                    .bind($crate::store::rows::fields_to_json(&m.fields))
                    .bind(to_micros(m.created_at))
                    .bind(to_micros(m.updated_at))
                    .bind(m.deleted_at.map(to_micros))
                    .execute(&mut *tx)
                    .await?;
                }
                for (id, status, reason, at) in &change.mapping_status {
                    sqlx::query("UPDATE module_mappings SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1")
                        .bind(id.as_i64())
                        .bind(status.as_str())
                        .bind(reason.clone())
                        .bind(to_micros(*at))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_shared_module(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::SharedModule>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::SharedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::shared_columns!(),
                    " FROM shared_modules WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::SharedModule::try_from).transpose()
            }

            async fn find_shared_module(
                &self,
                node_id: $crate::domain::NodeId,
                external_module_id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::SharedModule>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::SharedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::shared_columns!(),
                    " FROM shared_modules WHERE node_id = $1 AND external_module_id = $2"
                ))
                .bind(node_id.as_i64())
                .bind(external_module_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::SharedModule::try_from).transpose()
            }

            async fn list_shared_modules(
                &self,
                node_id: $crate::domain::NodeId,
                include_deleted: bool,
            ) -> Result<Vec<$crate::domain::SharedModule>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::SharedModuleRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::shared_columns!(),
                    " FROM shared_modules WHERE node_id = $1 AND ($2 OR deleted_at IS NULL) ORDER BY id"
                ))
                .bind(node_id.as_i64())
                .bind(include_deleted)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::SharedModule::try_from).collect()
            }

            async fn put_mapping(
                &self,
                m: &$crate::domain::ModuleMapping,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::to_micros;
                sqlx::query(concat!(
                    "INSERT INTO module_mappings (",
                    $crate::store::modules_sql::mapping_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (shared_module_id) DO UPDATE SET local_module_id = excluded.local_module_id, \
                     namespace_id = excluded.namespace_id, fields = excluded.fields, status = excluded.status, \
                     status_reason = excluded.status_reason, updated_at = excluded.updated_at"
                ))
                .bind(m.id.as_i64())
                .bind(m.node_id.as_i64())
                .bind(m.shared_module_id.as_i64())
                .bind(m.local_module_id.as_i64())
                .bind(m.namespace_id.as_i64())
                .bind($crate::store::rows::mappings_to_json(&m.fields))
                .bind(m.status.as_str())
                .bind(m.status_reason.clone())
                .bind(to_micros(m.created_at))
                .bind(to_micros(m.updated_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_mapping(
                &self,
                shared_module_id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::ModuleMapping>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::MappingRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::mapping_columns!(),
                    " FROM module_mappings WHERE shared_module_id = $1"
                ))
                .bind(shared_module_id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::ModuleMapping::try_from).transpose()
            }

            async fn delete_mapping(
                &self,
                shared_module_id: $crate::domain::Id,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM module_mappings WHERE shared_module_id = $1")
                    .bind(shared_module_id.as_i64())
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn list_mappings(
                &self,
                node_id: $crate::domain::NodeId,
            ) -> Result<Vec<$crate::domain::ModuleMapping>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::MappingRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::mapping_columns!(),
                    " FROM module_mappings WHERE node_id = $1 ORDER BY id"
                ))
                .bind(node_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ModuleMapping::try_from).collect()
            }

            async fn list_all_mappings(
                &self,
            ) -> Result<Vec<$crate::domain::ModuleMapping>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::MappingRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::mapping_columns!(),
                    " FROM module_mappings ORDER BY node_id, id"
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ModuleMapping::try_from).collect()
            }

            async fn list_broken_mappings(
                &self,
            ) -> Result<Vec<$crate::store::BrokenMapping>, $crate::store::StoreError> {
                let rows: Vec<(i64, i64, Option<String>, String)> = sqlx::query_as(
                    "SELECT m.node_id, m.shared_module_id, s.handle, m.status_reason \
                     FROM module_mappings m LEFT JOIN shared_modules s ON s.id = m.shared_module_id \
                     WHERE m.status = 'broken' ORDER BY m.node_id, m.id",
                )
                .fetch_all(&self.admin_pool)
                .await?;
                rows.into_iter()
                    .map(|(node, shared, handle, reason)| {
                        let corrupt = || {
                            $crate::store::StoreError::Corrupt(format!(
                                "module_mappings: node {node} or shared module {shared} is not an id"
                            ))
                        };
                        Ok($crate::store::BrokenMapping {
                            node_id: $crate::domain::NodeId::from_i64(node).ok_or_else(corrupt)?,
                            shared_module_id: $crate::domain::Id::from_i64(shared)
                                .ok_or_else(corrupt)?,
                            shared_handle: handle.unwrap_or_default(),
                            reason,
                        })
                    })
                    .collect()
            }

            async fn list_mappings_to(
                &self,
                local_module_id: $crate::domain::Id,
            ) -> Result<Vec<$crate::domain::ModuleMapping>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::MappingRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::mapping_columns!(),
                    " FROM module_mappings WHERE local_module_id = $1 ORDER BY id"
                ))
                .bind(local_module_id.as_i64())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::ModuleMapping::try_from).collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SyncStore for $store {
            async fn insert_sync_run(
                &self,
                run: &$crate::domain::SyncRun,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::modules_sql::bind_run!(
                    sqlx::query(concat!(
                        "INSERT INTO sync_runs (",
                        $crate::store::modules_sql::run_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                    )),
                    run
                )
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn finish_sync_run(
                &self,
                run: &$crate::domain::SyncRun,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::modules_sql::bind_run!(
                    sqlx::query(
                        "UPDATE sync_runs SET node_id = $2, kind = $3, shared_module_id = $4, trigger = $5, \
                         status = $6, started_at = $7, finished_at = $8, pages = $9, created = $10, \
                         updated = $11, deleted = $12, skipped = $13, errors = $14, error = $15, owner = $16 \
                         WHERE id = $1"
                    ),
                    run
                )
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_sync_runs(
                &self,
                node_id: $crate::domain::NodeId,
                limit: u32,
            ) -> Result<Vec<$crate::domain::SyncRun>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::SyncRunRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::run_columns!(),
                    " FROM sync_runs WHERE node_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(node_id.as_i64())
                .bind(i64::from(if limit == 0 { 100 } else { limit }))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::SyncRun::try_from).collect()
            }

            async fn get_sync_run(
                &self,
                id: $crate::domain::Id,
            ) -> Result<Option<$crate::domain::SyncRun>, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::SyncRunRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::run_columns!(),
                    " FROM sync_runs WHERE id = $1"
                ))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::domain::SyncRun::try_from).transpose()
            }

            async fn unsucceeded_runs_since(
                &self,
                run_id: $crate::domain::Id,
                since: $crate::domain::Id,
            ) -> Result<u64, $crate::store::StoreError> {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM sync_runs r JOIN sync_runs p \
                       ON p.node_id = r.node_id AND p.kind = r.kind \
                      AND p.shared_module_id = r.shared_module_id \
                     WHERE r.id = $1 AND p.id >= $2 AND p.id <> r.id AND p.status <> 'succeeded'",
                )
                .bind(run_id.as_i64())
                .bind(since.as_i64())
                .fetch_one(&self.pool)
                .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn list_running_sync_runs(
                &self,
            ) -> Result<Vec<$crate::domain::SyncRun>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::SyncRunRow>(concat!(
                    "SELECT ",
                    $crate::store::modules_sql::run_columns!(),
                    " FROM sync_runs WHERE status = 'running' ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::domain::SyncRun::try_from).collect()
            }

            async fn live_instance_owners(
                &self,
                now: $crate::domain::Timestamp,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT owner FROM instances WHERE expires_at > $1")
                        .bind($crate::store::to_micros(now))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|(o,)| o).collect())
            }

            async fn set_sync_state(
                &self,
                node_id: $crate::domain::NodeId,
                kind: $crate::domain::SyncKind,
                status: $crate::domain::SyncStatus,
                synced_at: Option<$crate::domain::Timestamp>,
                error: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = match kind {
                    $crate::domain::SyncKind::Structure => {
                        "UPDATE nodes SET structure_status = $2, \
                         structure_synced_at = COALESCE($3, structure_synced_at), structure_error = $4 WHERE id = $1"
                    }
                    $crate::domain::SyncKind::Data => {
                        "UPDATE nodes SET data_status = $2, \
                         data_synced_at = COALESCE($3, data_synced_at), data_error = $4 WHERE id = $1"
                    }
                };
                sqlx::query(sql)
                    .bind(node_id.as_i64())
                    .bind(status.as_str())
                    .bind(synced_at.map($crate::store::to_micros))
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_module_stores;

/// Writes a local module's fields (inside a transaction `$tx`).
macro_rules! write_fields {
    ($tx:ident, $module:expr) => {
        for (position, field) in $module.fields.iter().enumerate() {
            sqlx::query(
                "INSERT INTO local_module_fields (module_id, position, name, kind, label, is_multi, options) \
                 VALUES ($1, $2, $3, $4, $5, $6, '{}')",
            )
            .bind($module.id.as_i64())
            .bind(position as i64)
            .bind(field.name.clone())
            .bind(field.kind.as_str())
            .bind(field.label.clone())
            .bind(field.is_multi)
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(crate) use write_fields;

/// Binds a sync run in the order of `run_columns!`.
macro_rules! bind_run {
    ($query:expr, $run:expr) => {{
        use $crate::store::to_micros;
        let run: &$crate::domain::SyncRun = $run;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        $query
            .bind(run.id.as_i64())
            .bind(run.node_id.as_i64())
            .bind(run.kind.as_str())
            .bind(run.shared_module_id.map(|i| i.as_i64()).unwrap_or(0))
            .bind(run.trigger.clone())
            .bind(run.status.as_str())
            .bind(to_micros(run.started_at))
            .bind(run.finished_at.map(to_micros))
            .bind(n(run.counts.pages))
            .bind(n(run.counts.created))
            .bind(n(run.counts.updated))
            .bind(n(run.counts.deleted))
            .bind(n(run.counts.skipped))
            .bind(n(run.counts.errors))
            .bind(run.error.clone())
            .bind(run.owner.clone())
    }};
}
pub(crate) use bind_run;
