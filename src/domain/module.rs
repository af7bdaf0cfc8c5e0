//! Modules as federation sees them: fields, exposed modules (origin side).

use super::id::Id;
use super::{NodeId, Timestamp};

/// A module field as federation carries it: Corteza's four attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleField {
    /// Compose field kind: String, Number, Bool, DateTime, Email, Url,
    /// Select, Record, User, File, Geometry (others are kept as text).
    pub kind: String,
    pub name: String,
    pub label: String,
    pub is_multi: bool,
}

/// A local module exposed to one peer, with the fields it may see.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposedModule {
    pub id: Id,
    pub node_id: NodeId,
    /// The local (compose) module and its namespace.
    pub module_id: Id,
    pub namespace_id: Id,
    pub handle: String,
    pub name: String,
    pub fields: Vec<ModuleField>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}
