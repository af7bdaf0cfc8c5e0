//! The catalog: local modules, what is exposed to which peer (origin side),
//! and how shared modules map onto local ones (destination side). Every
//! change is checked against what depends on it, so nothing is left
//! pointing at a field that no longer exists, and is audited.

mod rules;

use std::sync::Arc;

use super::audit;
use super::ports::{LocalData, LocalError, NewModule};
use crate::domain::{
    self, Actor, AuditResult, ExposedModule, Id, IdGenerator, LocalField, LocalModule,
    MappingStatus, ModuleField, ModuleMapping, Node, NodeId, SharedModule,
};
use crate::mapping::build_mapping;
use crate::store::{Store, StoreError};

pub use rules::{check_field_name, check_handle, parse_field_spec};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changes to a local module; `None` keeps what is there.
#[derive(Debug, Clone, Default)]
pub struct ModuleUpdate {
    pub handle: Option<String>,
    pub name: Option<String>,
    pub fields: Option<Vec<LocalField>>,
}

/// A mapping with what it joins, for display.
#[derive(Debug, Clone)]
pub struct MappingView {
    pub mapping: ModuleMapping,
    pub shared: SharedModule,
    pub local: Option<LocalModule>,
}

pub struct Catalog {
    store: Arc<dyn Store>,
    local: Arc<dyn LocalData>,
    ids: Arc<IdGenerator>,
    /// Told when what peers see changes (live changes).
    live: Option<Arc<super::live::LiveChanges>>,
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>, local: Arc<dyn LocalData>, ids: Arc<IdGenerator>) -> Catalog {
        Catalog {
            store,
            local,
            ids,
            live: None,
        }
    }

    /// Exposure and module changes are announced to peers through `live`.
    pub fn with_live(mut self, live: Arc<super::live::LiveChanges>) -> Catalog {
        self.live = Some(live);
        self
    }

    /// A mapping came or went: its job does at once, not on the next tick
    /// (a change notice can wake only a job that exists).
    fn jobs_changed(&self) {
        if let Some(live) = &self.live {
            live.jobs_changed();
        }
    }

    fn exposures_changed(&self, node: NodeId) {
        if let Some(live) = &self.live {
            live.exposures_changed(node);
        }
    }

    pub fn local(&self) -> &Arc<dyn LocalData> {
        &self.local
    }

    async fn record(
        &self,
        actor: &Actor,
        event: &str,
        node: Option<NodeId>,
        detail: serde_json::Value,
    ) -> Result<(), CatalogError> {
        let event = audit::event(&self.ids, actor, event, AuditResult::Ok, node, "", detail);
        Ok(self.store.append_audit(&event).await?)
    }

    // ---- local modules ----

    pub async fn create_module(
        &self,
        actor: &Actor,
        handle: &str,
        name: &str,
        fields: Vec<LocalField>,
    ) -> Result<LocalModule, CatalogError> {
        check_handle(handle).map_err(CatalogError::Invalid)?;
        rules::check_fields(&fields).map_err(CatalogError::Invalid)?;
        let name = rules::module_name(name, handle).map_err(CatalogError::Invalid)?;
        let module = self
            .local
            .create_module(NewModule {
                handle: handle.to_owned(),
                name,
                fields,
            })
            .await?;
        self.record(
            actor,
            "module.created",
            None,
            serde_json::json!({ "moduleId": module.id.to_string(), "handle": module.handle }),
        )
        .await?;
        Ok(module)
    }

    pub async fn module(&self, key: &str) -> Result<LocalModule, CatalogError> {
        self.local.find_module(key).await?.ok_or_else(|| {
            CatalogError::NotFound(format!(
                "no local module `{key}` (give its id or handle; `fedsync module list` shows them)"
            ))
        })
    }

    pub async fn list_modules(&self) -> Result<Vec<LocalModule>, CatalogError> {
        Ok(self.local.list_modules().await?)
    }

    /// Changes a module. A field that is exposed to a peer or written by a
    /// mapping cannot be removed or changed in kind or multiplicity.
    pub async fn update_module(
        &self,
        actor: &Actor,
        key: &str,
        update: ModuleUpdate,
    ) -> Result<LocalModule, CatalogError> {
        let before = self.module(key).await?;
        let mut module = before.clone();
        if let Some(handle) = update.handle {
            check_handle(&handle).map_err(CatalogError::Invalid)?;
            module.handle = handle;
        }
        if let Some(name) = update.name {
            module.name =
                rules::module_name(&name, &module.handle).map_err(CatalogError::Invalid)?;
        }
        if let Some(fields) = update.fields {
            rules::check_fields(&fields).map_err(CatalogError::Invalid)?;
            module.fields = fields;
            for used in self.fields_in_use(&before).await? {
                let still = module.field(&used.name);
                if still.is_none_or(|f| f.kind != used.kind || f.is_multi != used.is_multi) {
                    return Err(CatalogError::Conflict(format!(
                        "field `{}` is {}; change that first",
                        used.name, used.by
                    )));
                }
            }
        }
        module.updated_at = domain::now();
        self.local.update_module(&module).await?;
        if let Some(live) = &self.live {
            live.module_changed(module.id);
        }
        self.record(
            actor,
            "module.updated",
            None,
            serde_json::json!({ "moduleId": module.id.to_string(), "handle": module.handle }),
        )
        .await?;
        Ok(module)
    }

    /// Removes a module that nothing exposes or maps onto.
    pub async fn delete_module(
        &self,
        actor: &Actor,
        key: &str,
    ) -> Result<LocalModule, CatalogError> {
        let module = self.module(key).await?;
        if let Some(used) = self.fields_in_use(&module).await?.into_iter().next() {
            return Err(CatalogError::Conflict(format!(
                "module `{}` is in use: field `{}` is {}",
                module.handle, used.name, used.by
            )));
        }
        let exposed = self.store.list_exposures_of_module(module.id).await?;
        if let Some(e) = exposed.first() {
            return Err(CatalogError::Conflict(format!(
                "module `{}` is exposed to node {}; run `fedsync expose rm {} {}` first",
                module.handle, e.node_id, e.node_id, module.handle
            )));
        }
        self.local.delete_module(&module).await?;
        self.record(
            actor,
            "module.deleted",
            None,
            serde_json::json!({ "moduleId": module.id.to_string(), "handle": module.handle }),
        )
        .await?;
        Ok(module)
    }

    /// Fields of `module` that exposures or mappings rely on.
    async fn fields_in_use(&self, module: &LocalModule) -> Result<Vec<UsedField>, CatalogError> {
        let mut used = Vec::new();
        for exposure in self.store.list_exposures_of_module(module.id).await? {
            for f in &exposure.fields {
                if let Some(field) = module.field(&f.name) {
                    used.push(UsedField {
                        name: field.name.clone(),
                        kind: field.kind,
                        is_multi: field.is_multi,
                        by: format!(
                            "exposed to node {} (`fedsync expose update`)",
                            exposure.node_id
                        ),
                    });
                }
            }
        }
        for mapping in self.store.list_mappings_to(module.id).await? {
            for m in &mapping.fields {
                if let Some(field) = module.field(&m.destination.name) {
                    used.push(UsedField {
                        name: field.name.clone(),
                        kind: field.kind,
                        is_multi: field.is_multi,
                        by: format!(
                            "written by a mapping from node {} (`fedsync map set`)",
                            mapping.node_id
                        ),
                    });
                }
            }
        }
        Ok(used)
    }

    // ---- exposure (origin) ----

    async fn node(&self, key: &str) -> Result<Node, CatalogError> {
        let id = key
            .parse::<Id>()
            .map(NodeId)
            .map_err(|e| CatalogError::Invalid(e.to_string()))?;
        match self.store.get_node(id).await? {
            Some(node) if node.deleted_at.is_none() => Ok(node),
            _ => Err(CatalogError::NotFound(format!("node {id} does not exist"))),
        }
    }

    fn exposed_fields(
        module: &LocalModule,
        names: &[String],
    ) -> Result<Vec<ModuleField>, CatalogError> {
        if names.is_empty() {
            return Err(CatalogError::Invalid(
                "give at least one --field to expose".into(),
            ));
        }
        for name in names {
            if module.field(name).is_none() {
                let has: Vec<&str> = module.fields.iter().map(|f| f.name.as_str()).collect();
                return Err(CatalogError::Invalid(format!(
                    "module `{}` has no field `{name}` (it has: {})",
                    module.handle,
                    has.join(", ")
                )));
            }
        }
        // In the module's order, each once.
        Ok(module
            .fields
            .iter()
            .filter(|f| names.contains(&f.name))
            .map(LocalField::to_module_field)
            .collect())
    }

    pub async fn expose(
        &self,
        actor: &Actor,
        node_key: &str,
        module_key: &str,
        fields: &[String],
    ) -> Result<ExposedModule, CatalogError> {
        let node = self.node(node_key).await?;
        let module = self.module(module_key).await?;
        if self
            .store
            .find_exposed_module(node.id, module.id)
            .await?
            .is_some()
        {
            return Err(CatalogError::Conflict(format!(
                "module `{}` is already exposed to node {}; use `fedsync expose update`",
                module.handle, node.id
            )));
        }
        let now = domain::now();
        let exposed = ExposedModule {
            id: self.ids.next_id(),
            node_id: node.id,
            module_id: module.id,
            namespace_id: module.namespace_id,
            handle: module.handle.clone(),
            name: module.name.clone(),
            fields: Self::exposed_fields(&module, fields)?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        self.store
            .insert_exposed_module(&exposed)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CatalogError::Conflict(format!(
                    "module `{}` is already exposed to node {}",
                    module.handle, node.id
                )),
                other => other.into(),
            })?;
        self.record(
            actor,
            "module.exposed",
            Some(node.id),
            serde_json::json!({
                "exposedModuleId": exposed.id.to_string(), "moduleId": module.id.to_string(),
                "fields": exposed.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        self.exposures_changed(node.id);
        Ok(exposed)
    }

    async fn exposure(
        &self,
        node: &Node,
        module_key: &str,
    ) -> Result<(ExposedModule, LocalModule), CatalogError> {
        let module = self.module(module_key).await?;
        let exposed = self
            .store
            .find_exposed_module(node.id, module.id)
            .await?
            .ok_or_else(|| {
                CatalogError::NotFound(format!(
                    "module `{}` is not exposed to node {}",
                    module.handle, node.id
                ))
            })?;
        Ok((exposed, module))
    }

    pub async fn update_exposure(
        &self,
        actor: &Actor,
        node_key: &str,
        module_key: &str,
        fields: &[String],
    ) -> Result<ExposedModule, CatalogError> {
        let node = self.node(node_key).await?;
        let (mut exposed, module) = self.exposure(&node, module_key).await?;
        exposed.fields = Self::exposed_fields(&module, fields)?;
        exposed.handle = module.handle.clone();
        exposed.name = module.name.clone();
        exposed.updated_at = domain::now();
        self.store.update_exposed_module(&exposed).await?;
        self.record(
            actor,
            "module.exposure_updated",
            Some(node.id),
            serde_json::json!({
                "exposedModuleId": exposed.id.to_string(),
                "fields": exposed.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        self.exposures_changed(node.id);
        Ok(exposed)
    }

    /// Stops exposing: a tombstone the destination sees on its next sync.
    pub async fn unexpose(
        &self,
        actor: &Actor,
        node_key: &str,
        module_key: &str,
    ) -> Result<ExposedModule, CatalogError> {
        let node = self.node(node_key).await?;
        let (mut exposed, _) = self.exposure(&node, module_key).await?;
        let now = domain::now();
        exposed.deleted_at = Some(now);
        exposed.updated_at = now;
        self.store.update_exposed_module(&exposed).await?;
        self.record(
            actor,
            "module.unexposed",
            Some(node.id),
            serde_json::json!({ "exposedModuleId": exposed.id.to_string() }),
        )
        .await?;
        self.exposures_changed(node.id);
        Ok(exposed)
    }

    pub async fn list_exposures(&self, node_key: &str) -> Result<Vec<ExposedModule>, CatalogError> {
        let node = self.node(node_key).await?;
        Ok(self.store.list_exposed_modules(node.id).await?)
    }

    // ---- shared modules and mappings (destination) ----

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

struct UsedField {
    name: String,
    kind: crate::domain::FieldKind,
    is_multi: bool,
    by: String,
}
