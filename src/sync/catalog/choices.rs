//! The choices a mapping offers: for each field a peer shares, the local
//! fields its values convert to (the same rule `set_mapping` checks).

use crate::domain::{LocalField, LocalModule, ModuleField, SharedModule};
use crate::mapping::convertible;

/// One shared field and the local fields it may map onto.
#[derive(Debug, Clone)]
pub struct FieldChoice {
    pub origin: ModuleField,
    pub candidates: Vec<LocalField>,
}

/// Every field of `shared`, with the fields of `local` each may land in.
pub fn field_choices(shared: &SharedModule, local: &LocalModule) -> Vec<FieldChoice> {
    shared
        .fields
        .iter()
        .map(|origin| FieldChoice {
            origin: origin.clone(),
            candidates: local
                .fields
                .iter()
                .filter(|dest| convertible(&origin.kind, origin.is_multi, dest).is_ok())
                .cloned()
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldKind, Id, NodeId, now};

    fn local(name: &str, kind: FieldKind, is_multi: bool) -> LocalField {
        let label = name.into();
        LocalField {
            name: name.into(),
            kind,
            label,
            is_multi,
        }
    }

    #[test]
    fn each_shared_field_is_offered_the_local_fields_its_values_convert_to() {
        let t = now();
        let origin = |kind: &str, name: &str, is_multi: bool| ModuleField {
            kind: kind.into(),
            name: name.into(),
            label: name.into(),
            is_multi,
        };
        let shared = SharedModule {
            id: Id::new(1).unwrap(),
            node_id: NodeId::from_u64(2).unwrap(),
            external_module_id: Id::new(3).unwrap(),
            origin_module_id: None,
            origin_namespace_id: None,
            handle: "account".into(),
            name: "Account".into(),
            fields: vec![
                origin("Url", "LinkedIn", false),
                origin("Number", "Age", false),
                origin("String", "Tags", true),
            ],
            created_at: t,
            updated_at: t,
            deleted_at: None,
        };
        let module = LocalModule {
            id: Id::new(4).unwrap(),
            namespace_id: Id::new(5).unwrap(),
            handle: "contact".into(),
            name: "Contact".into(),
            fields: vec![
                local("Social", FieldKind::String, false),
                local("Site", FieldKind::Url, false),
                local("Adult", FieldKind::Bool, false),
                local("Labels", FieldKind::String, true),
            ],
            created_at: t,
            updated_at: t,
            deleted_at: None,
        };
        let offered: Vec<(String, Vec<String>)> = field_choices(&shared, &module)
            .into_iter()
            .map(|c| {
                let names = c.candidates.into_iter().map(|f| f.name).collect();
                (c.origin.name, names)
            })
            .collect();
        let expect = |name: &str, fields: &[&str]| {
            (
                name.to_owned(),
                fields.iter().map(|f| f.to_string()).collect(),
            )
        };
        assert_eq!(
            offered,
            vec![
                expect("LinkedIn", &["Social", "Site", "Labels"]),
                expect("Age", &["Social", "Labels"]),
                expect("Tags", &["Labels"]),
            ]
        );
    }
}
