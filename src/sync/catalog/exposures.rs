//! Exposures (origin side): which fields of which local module each peer
//! may read; exposed, updated and unexposed (a tombstone the destination
//! sees on its next sync), announced to peers and audited.

use super::{Catalog, CatalogError};
use crate::domain::{self, Actor, ExposedModule, LocalField, LocalModule, ModuleField, Node};
use crate::store::StoreError;

impl Catalog {
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
}
