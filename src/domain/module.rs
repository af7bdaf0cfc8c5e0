//! Modules as federation sees them: local modules of the embedded data
//! plane, modules exposed to a peer (origin side), modules a peer shares
//! with us (destination side), and how shared fields map onto local ones.

use super::id::Id;
use super::{NodeId, Timestamp, UnknownVariant};

/// A compose field kind, as Corteza spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    String,
    Number,
    Bool,
    DateTime,
    Email,
    Url,
    Select,
    Record,
    User,
    File,
    Geometry,
}

impl FieldKind {
    pub const ALL: [FieldKind; 11] = [
        FieldKind::String,
        FieldKind::Number,
        FieldKind::Bool,
        FieldKind::DateTime,
        FieldKind::Email,
        FieldKind::Url,
        FieldKind::Select,
        FieldKind::Record,
        FieldKind::User,
        FieldKind::File,
        FieldKind::Geometry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::String => "String",
            FieldKind::Number => "Number",
            FieldKind::Bool => "Bool",
            FieldKind::DateTime => "DateTime",
            FieldKind::Email => "Email",
            FieldKind::Url => "Url",
            FieldKind::Select => "Select",
            FieldKind::Record => "Record",
            FieldKind::User => "User",
            FieldKind::File => "File",
            FieldKind::Geometry => "Geometry",
        }
    }

    /// Accepts Corteza's spelling, case-insensitively.
    pub fn parse(value: &str) -> Result<FieldKind, UnknownVariant> {
        FieldKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| UnknownVariant {
                what: "field kind",
                value: value.to_owned(),
                expected: "String, Number, Bool, DateTime, Email, Url, Select, Record, User, File, Geometry",
            })
    }
}

/// A module field as federation carries it: Corteza's four attributes. The
/// kind is kept as the peer spelled it (Corteza copies kinds verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleField {
    pub kind: String,
    pub name: String,
    pub label: String,
    pub is_multi: bool,
}

/// A field of a local module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalField {
    pub name: String,
    pub kind: FieldKind,
    pub label: String,
    pub is_multi: bool,
}

impl LocalField {
    /// The field as federation documents carry it.
    pub fn to_module_field(&self) -> ModuleField {
        ModuleField {
            kind: self.kind.as_str().to_owned(),
            name: self.name.clone(),
            label: self.label.clone(),
            is_multi: self.is_multi,
        }
    }
}

/// A module of the local data plane.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModule {
    pub id: Id,
    pub namespace_id: Id,
    pub handle: String,
    pub name: String,
    pub fields: Vec<LocalField>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl LocalModule {
    pub fn field(&self, name: &str) -> Option<&LocalField> {
        self.fields.iter().find(|f| f.name == name)
    }
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

/// A module a peer exposes to us, as structure sync delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedModule {
    pub id: Id,
    pub node_id: NodeId,
    /// The origin's exposed module id (Corteza's `externalFederationModuleID`).
    pub external_module_id: Id,
    pub origin_module_id: Option<Id>,
    pub origin_namespace_id: Option<Id>,
    pub handle: String,
    pub name: String,
    pub fields: Vec<ModuleField>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set when the origin stopped exposing the module.
    pub deleted_at: Option<Timestamp>,
}

impl SharedModule {
    pub fn field(&self, name: &str) -> Option<&ModuleField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One origin field landing in one destination field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    pub origin: ModuleField,
    pub destination: ModuleField,
}

/// Whether a mapping still fits the structures it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingStatus {
    Ok,
    /// A mapped field disappeared or changed kind; the reason says which.
    Broken,
}

impl MappingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingStatus::Ok => "ok",
            MappingStatus::Broken => "broken",
        }
    }

    pub fn parse(value: &str) -> Result<MappingStatus, UnknownVariant> {
        match value {
            "ok" => Ok(MappingStatus::Ok),
            "broken" => Ok(MappingStatus::Broken),
            other => Err(UnknownVariant {
                what: "mapping status",
                value: other.to_owned(),
                expected: "ok, broken",
            }),
        }
    }
}

/// How a shared module's fields land in a local module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleMapping {
    pub id: Id,
    pub node_id: NodeId,
    pub shared_module_id: Id,
    pub local_module_id: Id,
    pub namespace_id: Id,
    pub fields: Vec<FieldMapping>,
    pub status: MappingStatus,
    pub status_reason: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
