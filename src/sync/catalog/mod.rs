//! The catalog: local modules, what is exposed to which peer (origin side),
//! and how shared modules map onto local ones (destination side). Every
//! change is checked against what depends on it, so nothing is left
//! pointing at a field that no longer exists, and is audited.

mod choices;
mod exposures;
mod mappings;
mod modules;
mod rules;

use std::sync::Arc;

use super::audit;
use super::ports::{LocalData, LocalError};
use crate::domain::{Actor, AuditResult, Id, IdGenerator, Node, NodeId};
use crate::store::{Store, StoreError};

pub use choices::{FieldChoice, field_choices};
pub use mappings::MappingView;
pub use modules::ModuleUpdate;
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
}
