//! Corteza's modules as `LocalData`: the namespace fedsync works in
//! (looked up once by slug or id), module paths, and listing, finding,
//! creating, updating and deleting modules, fields of kinds fedsync does
//! not carry left as they are.

use std::collections::HashMap;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::CortezaData;
use super::client::CallError;
use super::json::{id_of, set, time_of};
use crate::domain::{FieldKind, Id, LocalField, LocalModule};
use crate::sync::ports::{LocalData, LocalError, NewModule};

#[derive(Debug, Clone)]
pub(super) struct Namespace {
    pub(super) id: Id,
    slug: String,
}

impl CortezaData {
    pub(super) async fn ns(&self) -> Result<&Namespace, LocalError> {
        self.namespace
            .get_or_try_init(|| async {
                let key = self.settings.namespace.trim();
                let found = if key.parse::<Id>().is_ok() {
                    match self.get(&format!("/compose/namespace/{key}"), &[]).await {
                        Ok(ns) => Some(ns),
                        Err(e) if e.not_found() => None,
                        Err(e) => return Err(LocalError::from(e)),
                    }
                } else {
                    let list = self
                        .get("/compose/namespace/", &[("slug", key.to_owned())])
                        .await?;
                    set(&list)
                        .iter()
                        .find(|n| n.get("slug").and_then(Value::as_str) == Some(key))
                        .cloned()
                };
                let ns = found.ok_or_else(|| {
                    LocalError::Invalid(format!(
                        "Corteza has no namespace `{key}` (local.corteza_namespace), or the token's user cannot read it"
                    ))
                })?;
                Ok(Namespace {
                    id: id_of(&ns, "namespaceID").ok_or_else(|| {
                        LocalError::Invalid("Corteza's namespace has no namespaceID".into())
                    })?,
                    slug: ns
                        .get("slug")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
            })
            .await
    }

    pub(super) async fn module_path(&self, module_id: Id) -> Result<String, LocalError> {
        Ok(format!(
            "/compose/namespace/{}/module/{module_id}",
            self.ns().await?.id
        ))
    }

    async fn read_module(&self, id: Id) -> Result<Option<Value>, LocalError> {
        match self.get(&self.module_path(id).await?, &[]).await {
            Ok(module) => Ok(Some(module)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn module_from(value: &Value) -> Result<LocalModule, LocalError> {
    let bad = |what: &str| LocalError::Unavailable(format!("Corteza sent a module without {what}"));
    let mut fields = Vec::new();
    for f in value
        .get("fields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let kind = f.get("kind").and_then(Value::as_str).unwrap_or("String");
        let Ok(kind) = FieldKind::parse(kind) else {
            tracing::debug!(
                field = name,
                kind,
                "a Corteza field of a kind fedsync does not carry"
            );
            continue;
        };
        fields.push(LocalField {
            name: name.to_owned(),
            kind,
            label: f
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            is_multi: f.get("isMulti").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    let created_at = time_of(value, "createdAt")?.ok_or_else(|| bad("createdAt"))?;
    Ok(LocalModule {
        id: id_of(value, "moduleID").ok_or_else(|| bad("a moduleID"))?,
        namespace_id: id_of(value, "namespaceID").ok_or_else(|| bad("a namespaceID"))?,
        handle: value
            .get("handle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        name: value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        fields,
        created_at,
        updated_at: time_of(value, "updatedAt")?.unwrap_or(created_at),
        deleted_at: time_of(value, "deletedAt")?,
    })
}

/// Fields as Corteza's module create and update take them; `ids` keeps the
/// `fieldID` of fields that exist, so their values stay.
fn fields_json(fields: &[LocalField], ids: &HashMap<String, Value>) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| {
                let mut field = json!({
                    "name": f.name,
                    "kind": f.kind.as_str(),
                    "label": f.label,
                    "isMulti": f.is_multi,
                });
                if let Some(id) = ids.get(&f.name) {
                    field["fieldID"] = id.clone();
                }
                field
            })
            .collect(),
    )
}

#[async_trait]
impl LocalData for CortezaData {
    fn kind(&self) -> &'static str {
        "corteza"
    }

    async fn namespace_id(&self) -> Result<Id, LocalError> {
        Ok(self.ns().await?.id)
    }

    async fn list_modules(&self) -> Result<Vec<LocalModule>, LocalError> {
        let path = format!("/compose/namespace/{}/module/", self.ns().await?.id);
        let mut modules = Vec::new();
        self.list_all(&path, &[], |m| {
            modules.push(module_from(m)?);
            Ok(())
        })
        .await?;
        Ok(modules)
    }

    /// By id, handle, or `namespace/module` (the namespace must be ours).
    async fn find_module(&self, key: &str) -> Result<Option<LocalModule>, LocalError> {
        let ns = self.ns().await?;
        let key = match key.split_once('/') {
            Some((space, module)) => {
                if space != ns.slug && space != ns.id.to_string() {
                    return Err(LocalError::Invalid(format!(
                        "`{key}`: fedsync works in Corteza namespace `{}` (id {}), not `{space}`",
                        ns.slug, ns.id
                    )));
                }
                module
            }
            None => key,
        };
        if let Ok(id) = key.parse::<Id>() {
            return match self.read_module(id).await? {
                Some(m) => Ok(Some(module_from(&m)?).filter(|m| m.deleted_at.is_none())),
                None => Ok(None),
            };
        }
        let path = format!("/compose/namespace/{}/module/", ns.id);
        let list = self.get(&path, &[("handle", key.to_owned())]).await?;
        set(&list)
            .iter()
            .find(|m| m.get("handle").and_then(Value::as_str) == Some(key))
            .map(module_from)
            .transpose()
    }

    async fn create_module(&self, module: NewModule) -> Result<LocalModule, LocalError> {
        let path = format!("/compose/namespace/{}/module/", self.ns().await?.id);
        let body = json!({
            "name": module.name,
            "handle": module.handle,
            "fields": fields_json(&module.fields, &HashMap::new()),
            "meta": {},
        });
        match self.call(Method::POST, &path, &[], Some(&body)).await {
            Ok(created) => module_from(&created),
            Err(CallError::Refused { message, .. })
                if message.contains("handle") && message.contains("not unique") =>
            {
                Err(LocalError::Conflict(format!(
                    "a module with handle `{}` already exists",
                    module.handle
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        let current = self
            .read_module(module.id)
            .await?
            .ok_or_else(|| LocalError::Invalid(format!("Corteza has no module {}", module.id)))?;
        let ids: HashMap<String, Value> = current
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f.get("name")?.as_str()?.to_owned(),
                    f.get("fieldID")?.clone(),
                ))
            })
            .collect();
        // Fields of kinds fedsync does not carry are kept as they are.
        let ours: std::collections::HashSet<&str> =
            module.fields.iter().map(|f| f.name.as_str()).collect();
        let mut fields = fields_json(&module.fields, &ids);
        if let (Some(list), Some(theirs)) = (
            fields.as_array_mut(),
            current.get("fields").and_then(Value::as_array),
        ) {
            for f in theirs {
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                let kind = f.get("kind").and_then(Value::as_str).unwrap_or_default();
                if !ours.contains(name) && FieldKind::parse(kind).is_err() {
                    list.push(f.clone());
                }
            }
        }
        let body = json!({
            "name": module.name,
            "handle": module.handle,
            "fields": fields,
            "meta": current.get("meta").cloned().unwrap_or_else(|| json!({})),
            "updatedAt": current.get("updatedAt").cloned().unwrap_or(Value::Null),
        });
        self.call(
            Method::POST,
            &self.module_path(module.id).await?,
            &[],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    async fn delete_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        match self
            .call(
                Method::DELETE,
                &self.module_path(module.id).await?,
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
