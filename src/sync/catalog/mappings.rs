//! Shared modules and mappings (destination side): the modules a peer
//! shares with us, and how each maps onto a local module; a mapping set or
//! deleted wakes its job and is audited.

use super::{Catalog, CatalogError};
use crate::domain::{self, Actor, Id, LocalModule, MappingStatus, ModuleMapping, SharedModule};
use crate::mapping::build_mapping;

/// A mapping with what it joins, for display.
#[derive(Debug, Clone)]
pub struct MappingView {
    pub mapping: ModuleMapping,
    pub shared: SharedModule,
    pub local: Option<LocalModule>,
}

impl Catalog {
    pub async fn list_shared(
        &self,
        node_key: &str,
        include_removed: bool,
    ) -> Result<Vec<SharedModule>, CatalogError> {
        let node = self.node(node_key).await?;
        Ok(self
            .store
            .list_shared_modules(node.id, include_removed)
            .await?)
    }

    /// A shared module of a node by its id, its origin's id or its handle.
    pub async fn shared(&self, node_key: &str, key: &str) -> Result<SharedModule, CatalogError> {
        let node = self.node(node_key).await?;
        let all = self.store.list_shared_modules(node.id, true).await?;
        let by_id = key.parse::<Id>().ok();
        let mut found: Vec<SharedModule> = all
            .into_iter()
            .filter(|m| {
                Some(m.id) == by_id || Some(m.external_module_id) == by_id || m.handle == key
            })
            .collect();
        // A live module wins over a removed one of the same handle.
        found.sort_by_key(|m| m.deleted_at.is_some());
        found.into_iter().next().ok_or_else(|| {
            CatalogError::NotFound(format!(
                "node {} shares no module `{key}` (`fedsync shared list {}` shows what arrived)",
                node.id, node.id
            ))
        })
    }

    pub async fn set_mapping(
        &self,
        actor: &Actor,
        node_key: &str,
        shared_key: &str,
        local_key: &str,
        pairs: &[(String, String)],
    ) -> Result<MappingView, CatalogError> {
        let shared = self.shared(node_key, shared_key).await?;
        if shared.deleted_at.is_some() {
            return Err(CatalogError::Invalid(format!(
                "node {} no longer exposes `{}`",
                shared.node_id, shared.handle
            )));
        }
        let local = self.module(local_key).await?;
        let fields = build_mapping(&shared, &local, pairs).map_err(CatalogError::Invalid)?;
        let now = domain::now();
        let previous = self.store.get_mapping(shared.id).await?;
        let mapping = ModuleMapping {
            id: previous
                .as_ref()
                .map(|m| m.id)
                .unwrap_or_else(|| self.ids.next_id()),
            node_id: shared.node_id,
            shared_module_id: shared.id,
            local_module_id: local.id,
            namespace_id: local.namespace_id,
            fields,
            status: MappingStatus::Ok,
            status_reason: String::new(),
            created_at: previous.as_ref().map(|m| m.created_at).unwrap_or(now),
            updated_at: now,
        };
        self.store.put_mapping(&mapping).await?;
        self.record(actor, "mapping.set", Some(shared.node_id), serde_json::json!({
            "sharedModuleId": shared.id.to_string(), "moduleId": local.id.to_string(),
            "fields": mapping.fields.iter().map(|m| format!("{}={}", m.origin.name, m.destination.name)).collect::<Vec<_>>(),
        })).await?;
        self.jobs_changed();
        Ok(MappingView {
            mapping,
            shared,
            local: Some(local),
        })
    }

    pub async fn mapping(
        &self,
        node_key: &str,
        shared_key: &str,
    ) -> Result<MappingView, CatalogError> {
        let shared = self.shared(node_key, shared_key).await?;
        let mapping = self.store.get_mapping(shared.id).await?.ok_or_else(|| {
            CatalogError::NotFound(format!(
                "shared module `{}` is not mapped (`fedsync map set`)",
                shared.handle
            ))
        })?;
        let local = self
            .local
            .find_module(&mapping.local_module_id.to_string())
            .await?;
        Ok(MappingView {
            mapping,
            shared,
            local,
        })
    }

    pub async fn delete_mapping(
        &self,
        actor: &Actor,
        node_key: &str,
        shared_key: &str,
    ) -> Result<MappingView, CatalogError> {
        let view = self.mapping(node_key, shared_key).await?;
        self.store.delete_mapping(view.shared.id).await?;
        self.record(
            actor,
            "mapping.removed",
            Some(view.shared.node_id),
            serde_json::json!({ "sharedModuleId": view.shared.id.to_string() }),
        )
        .await?;
        self.jobs_changed();
        Ok(view)
    }
}
