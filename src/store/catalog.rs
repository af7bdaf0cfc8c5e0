//! The catalog stores: exposed modules (origin), the embedded data plane's
//! modules, and shared modules with their mappings (destination).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{
    ExposedModule, Id, LocalModule, MappingStatus, ModuleMapping, NodeId, SharedModule, Timestamp,
};

/// Exposed modules (origin side).
#[async_trait]
pub trait ModuleStore: Send + Sync {
    async fn insert_exposed_module(&self, module: &ExposedModule) -> Result<(), StoreError>;
    /// Rewrites an exposed module (by id), tombstones included.
    async fn update_exposed_module(&self, module: &ExposedModule) -> Result<(), StoreError>;
    async fn get_exposed_module(&self, id: Id) -> Result<Option<ExposedModule>, StoreError>;
    /// The live exposure of a local module to a node.
    async fn find_exposed_module(
        &self,
        node_id: NodeId,
        module_id: Id,
    ) -> Result<Option<ExposedModule>, StoreError>;
    /// The live exposed modules of a node, oldest first.
    async fn list_exposed_modules(&self, node_id: NodeId)
    -> Result<Vec<ExposedModule>, StoreError>;
    /// The live exposures of a local module, to any node.
    async fn list_exposures_of_module(
        &self,
        module_id: Id,
    ) -> Result<Vec<ExposedModule>, StoreError>;
    /// A page of a node's exposed modules in id order: changed at or after
    /// `since`, with an id above `after`, tombstones only when asked.
    async fn page_exposed_modules(
        &self,
        query: &ExposedPageQuery,
    ) -> Result<Vec<ExposedModule>, StoreError>;
}

/// Which exposed modules a page holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposedPageQuery {
    pub node_id: NodeId,
    pub since: Option<Timestamp>,
    pub after: Option<Id>,
    pub include_deleted: bool,
    pub limit: u32,
}

/// Modules of the embedded data plane.
#[async_trait]
pub trait LocalModuleStore: Send + Sync {
    /// The embedded namespace's id, recorded on first use as `candidate`.
    async fn embedded_namespace_id(&self, candidate: Id) -> Result<Id, StoreError>;
    /// Inserts a module with its fields; `Conflict` when the handle is taken.
    async fn insert_local_module(&self, module: &LocalModule) -> Result<(), StoreError>;
    /// Rewrites a module and replaces its fields.
    async fn update_local_module(&self, module: &LocalModule) -> Result<(), StoreError>;
    /// A module by id, removed ones included.
    async fn get_local_module(&self, id: Id) -> Result<Option<LocalModule>, StoreError>;
    /// A live module by handle.
    async fn find_local_module(&self, handle: &str) -> Result<Option<LocalModule>, StoreError>;
    /// The live modules, by handle.
    async fn list_local_modules(&self) -> Result<Vec<LocalModule>, StoreError>;
}

/// What one structure sync writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StructureChange {
    /// Inserted or updated by (node, external module id).
    pub upsert_shared: Vec<SharedModule>,
    /// Mapping status changes: (mapping id, status, reason, at).
    pub mapping_status: Vec<(Id, MappingStatus, String, Timestamp)>,
}

/// Shared modules (destination side) and their mappings.
#[async_trait]
pub trait SharedStore: Send + Sync {
    async fn apply_structure_change(&self, change: &StructureChange) -> Result<(), StoreError>;
    async fn get_shared_module(&self, id: Id) -> Result<Option<SharedModule>, StoreError>;
    async fn find_shared_module(
        &self,
        node_id: NodeId,
        external_module_id: Id,
    ) -> Result<Option<SharedModule>, StoreError>;
    /// A node's shared modules, oldest first; removed ones when asked.
    async fn list_shared_modules(
        &self,
        node_id: NodeId,
        include_deleted: bool,
    ) -> Result<Vec<SharedModule>, StoreError>;
    /// Inserts or replaces the mapping of a shared module.
    async fn put_mapping(&self, mapping: &ModuleMapping) -> Result<(), StoreError>;
    async fn get_mapping(&self, shared_module_id: Id) -> Result<Option<ModuleMapping>, StoreError>;
    async fn delete_mapping(&self, shared_module_id: Id) -> Result<bool, StoreError>;
    async fn list_mappings(&self, node_id: NodeId) -> Result<Vec<ModuleMapping>, StoreError>;
    /// The mappings of every node (one query, for status pages).
    async fn list_all_mappings(&self) -> Result<Vec<ModuleMapping>, StoreError>;
    /// The broken mappings of every node, with their shared module's handle
    /// (one query, for the all-nodes status).
    async fn list_broken_mappings(&self) -> Result<Vec<BrokenMapping>, StoreError>;
    /// Mappings that write into a local module.
    async fn list_mappings_to(&self, local_module_id: Id)
    -> Result<Vec<ModuleMapping>, StoreError>;
}

/// A mapping a structure change broke, as status pages show it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenMapping {
    pub node_id: NodeId,
    pub shared_module_id: Id,
    pub shared_handle: String,
    pub reason: String,
}
