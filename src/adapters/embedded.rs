//! The embedded data plane: modules of one default namespace, kept in the
//! store (`local_modules`, `local_module_fields`).

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{self, Id, IdGenerator, LocalModule, Record};
use crate::store::{ChangeQuery, RecordBatch, Store, StoreError};
use crate::sync::ports::{LocalData, LocalError, LocalRecords, NewModule};

pub struct EmbeddedData {
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
}

impl EmbeddedData {
    pub fn new(store: Arc<dyn Store>, ids: Arc<IdGenerator>) -> EmbeddedData {
        EmbeddedData { store, ids }
    }
}

fn conflict_or(error: StoreError, handle: &str) -> LocalError {
    match error {
        StoreError::Conflict(_) => {
            LocalError::Conflict(format!("a module with handle `{handle}` already exists"))
        }
        other => LocalError::Store(other),
    }
}

#[async_trait]
impl LocalData for EmbeddedData {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn namespace_id(&self) -> Result<Id, LocalError> {
        Ok(self.store.embedded_namespace_id(self.ids.next_id()).await?)
    }

    async fn list_modules(&self) -> Result<Vec<LocalModule>, LocalError> {
        Ok(self.store.list_local_modules().await?)
    }

    async fn find_module(&self, key: &str) -> Result<Option<LocalModule>, LocalError> {
        if let Ok(id) = key.parse::<Id>()
            && let Some(module) = self.store.get_local_module(id).await?
        {
            return Ok(module.deleted_at.is_none().then_some(module));
        }
        Ok(self.store.find_local_module(key).await?)
    }

    async fn create_module(&self, module: NewModule) -> Result<LocalModule, LocalError> {
        let now = domain::now();
        let created = LocalModule {
            id: self.ids.next_id(),
            namespace_id: self.namespace_id().await?,
            handle: module.handle,
            name: module.name,
            fields: module.fields,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        self.store
            .insert_local_module(&created)
            .await
            .map_err(|e| conflict_or(e, &created.handle))?;
        Ok(created)
    }

    async fn update_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        self.store
            .update_local_module(module)
            .await
            .map_err(|e| conflict_or(e, &module.handle))
    }

    async fn delete_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        let mut removed = module.clone();
        let now = domain::now();
        removed.deleted_at = Some(now);
        removed.updated_at = now;
        Ok(self.store.update_local_module(&removed).await?)
    }
}

#[async_trait]
impl LocalRecords for EmbeddedData {
    async fn apply_batch(&self, batch: RecordBatch) -> Result<Vec<Record>, LocalError> {
        Ok(self.store.apply_record_batch(batch).await?)
    }

    async fn get_records(&self, ids: &[Id]) -> Result<Vec<Record>, LocalError> {
        // Bounded statements: one per thousand ids.
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            records.extend(self.store.get_records(chunk).await?);
        }
        Ok(records)
    }

    async fn list_records(
        &self,
        module_id: Id,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, LocalError> {
        Ok(self
            .store
            .list_records(module_id, include_deleted, after, limit)
            .await?)
    }

    async fn page_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, LocalError> {
        Ok(self.store.page_record_changes(query).await?)
    }

    async fn count_changes(&self, query: &ChangeQuery) -> Result<Option<u64>, LocalError> {
        Ok(Some(self.store.count_record_changes(query).await?))
    }
}
