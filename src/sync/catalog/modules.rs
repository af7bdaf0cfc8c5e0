//! Local modules in the catalog: created, found, listed, updated and
//! deleted through the data plane, each change checked against the fields
//! exposures and mappings rely on, and audited.

use super::rules::{self, check_handle};
use super::{Catalog, CatalogError};
use crate::domain::{self, Actor, LocalField, LocalModule};
use crate::sync::ports::NewModule;

/// Changes to a local module; `None` keeps what is there.
#[derive(Debug, Clone, Default)]
pub struct ModuleUpdate {
    pub handle: Option<String>,
    pub name: Option<String>,
    pub fields: Option<Vec<LocalField>>,
}

impl Catalog {
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
}

struct UsedField {
    name: String,
    kind: crate::domain::FieldKind,
    is_multi: bool,
    by: String,
}
