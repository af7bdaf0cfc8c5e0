//! Which entries of a module mapping still fit both modules, and the
//! values of an origin record they read: its fields' values, and the
//! records it references (the origin's, or ours sent back).

use crate::domain::{FieldKind, FieldMapping, Id, LocalModule, ModuleMapping, SharedModule};
use crate::mapping::convertible;
use crate::sync::ports::RemoteRecord;

/// A mapping entry that still fits both modules.
pub(super) struct Usable<'a> {
    pub(super) mapping: &'a FieldMapping,
    pub(super) dest_kind: FieldKind,
    pub(super) dest_multi: bool,
    /// No later usable mapping reads the same origin field: the mapping
    /// may take the values out of the page's records.
    pub(super) last_of_origin: bool,
}

pub(super) fn usable_fields<'a>(
    mapping: &'a ModuleMapping,
    shared: &SharedModule,
    local: &LocalModule,
) -> Vec<Usable<'a>> {
    let mut usable: Vec<Usable<'a>> = mapping
        .fields
        .iter()
        .filter_map(|m| {
            let origin = shared.field(&m.origin.name)?;
            let dest = local.field(&m.destination.name)?;
            convertible(&origin.kind, origin.is_multi, dest).ok()?;
            Some(Usable {
                mapping: m,
                dest_kind: dest.kind,
                dest_multi: dest.is_multi,
                last_of_origin: true,
            })
        })
        .collect();
    for k in 0..usable.len() {
        let origin = &usable[k].mapping.origin.name;
        usable[k].last_of_origin = !usable[k + 1..]
            .iter()
            .any(|later| &later.mapping.origin.name == origin);
    }
    usable
}

/// The origin's records `remote` names in the mapping's Record fields.
pub(super) fn references<'a>(
    remote: &'a RemoteRecord,
    usable: &'a [Usable<'_>],
) -> impl Iterator<Item = Id> + 'a {
    usable
        .iter()
        .filter(|u| u.dest_kind == FieldKind::Record)
        .flat_map(move |u| origin_values(remote, &u.mapping.origin.name))
        .filter_map(|v| v.parse::<Id>().ok())
}

/// Our own records `remote` names, sent back as our ids.
pub(super) fn own_references(remote: &RemoteRecord) -> impl Iterator<Item = Id> + '_ {
    remote
        .values
        .iter()
        .filter(|v| v.yours)
        .filter_map(|v| v.value.as_deref()?.parse::<Id>().ok())
}

/// Origin values of a field that are references of the origin's (not ours).
fn origin_values<'a>(
    remote: &'a RemoteRecord,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    remote
        .values
        .iter()
        .filter(move |v| v.name == name && !v.yours)
        .filter_map(|v| v.value.as_deref())
}

/// Values of an origin field, each with its `yours` flag; Corteza sends a
/// false Bool as no value at all. Taken out of the page's record when no
/// later mapping reads the same origin field (no copy), copied otherwise.
pub(super) fn take_origin_values<'a>(
    remote: &'a mut RemoteRecord,
    usable: &'a Usable<'_>,
) -> impl Iterator<Item = (String, bool)> + 'a {
    let origin = &usable.mapping.origin;
    let is_bool = origin.kind.eq_ignore_ascii_case("Bool");
    remote
        .values
        .iter_mut()
        .filter(move |v| v.name == origin.name)
        .filter_map(move |v| {
            let value = if usable.last_of_origin {
                v.value.take()
            } else {
                v.value.clone()
            };
            match value {
                Some(value) => Some((value, v.yours)),
                None if is_bool => Some(("0".to_owned(), false)),
                None => None,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LocalField, MappingStatus, NodeId, now};
    use crate::sync::data::test_support::{field, id};
    use crate::sync::ports::RemoteValue;

    fn local(name: &str, kind: FieldKind) -> LocalField {
        LocalField {
            name: name.into(),
            kind,
            label: name.into(),
            is_multi: false,
        }
    }

    #[test]
    fn an_origin_field_mapped_twice_reaches_both_and_is_copied_only_once() {
        let shared = SharedModule {
            id: id(1),
            node_id: NodeId::from(id(2)),
            external_module_id: id(3),
            origin_module_id: None,
            origin_namespace_id: None,
            handle: "people".into(),
            name: "People".into(),
            fields: vec![field("name", "String"), field("vip", "Bool")],
            created_at: now(),
            updated_at: now(),
            deleted_at: None,
        };
        let module = LocalModule {
            id: id(4),
            namespace_id: id(5),
            handle: "people".into(),
            name: "People".into(),
            fields: vec![
                local("name", FieldKind::String),
                local("alias", FieldKind::String),
                local("vip", FieldKind::Bool),
            ],
            created_at: now(),
            updated_at: now(),
            deleted_at: None,
        };
        let map = |from: &str, kind: &str, to: &str, dest: FieldKind| FieldMapping {
            origin: field(from, kind),
            destination: local(to, dest).to_module_field(),
        };
        let mapping = ModuleMapping {
            id: id(6),
            node_id: NodeId::from(id(2)),
            shared_module_id: id(1),
            local_module_id: id(4),
            namespace_id: id(5),
            fields: vec![
                map("name", "String", "name", FieldKind::String),
                map("name", "String", "alias", FieldKind::String),
                map("vip", "Bool", "vip", FieldKind::Bool),
            ],
            status: MappingStatus::Ok,
            status_reason: String::new(),
            created_at: now(),
            updated_at: now(),
        };
        let usable = usable_fields(&mapping, &shared, &module);
        let last: Vec<bool> = usable.iter().map(|u| u.last_of_origin).collect();
        assert_eq!(last, [false, true, true]);
        let mut remote = RemoteRecord {
            id: id(7),
            values: vec![
                RemoteValue {
                    name: "name".into(),
                    value: Some("Alice".into()),
                    yours: false,
                },
                RemoteValue {
                    name: "vip".into(),
                    value: None,
                    yours: false,
                },
            ],
            created_at: None,
            updated_at: None,
            deleted_at: None,
        };
        let taken: Vec<Vec<(String, bool)>> = usable
            .iter()
            .map(|u| take_origin_values(&mut remote, u).collect())
            .collect();
        let alice = vec![("Alice".to_owned(), false)];
        // Both mappings of `name` get it; a false Bool comes as no value.
        assert_eq!(taken, [alice.clone(), alice, vec![("0".to_owned(), false)]]);
        // The last reader took it out of the page: nothing was copied twice.
        assert_eq!(remote.values[0].value, None);
    }
}
