//! Field mapping rules: which origin field may land in which local field,
//! and whether a mapping still fits after a structure change.
//!
//! Invariant: pure functions over domain types; no IO. Value conversion
//! (per record) lands with data sync; here only the kinds are judged.

mod plain_url;
pub mod values;

use crate::domain::{FieldKind, FieldMapping, LocalField, LocalModule, SharedModule};

/// Whether values of an origin field (kind as the peer spelled it) can be
/// written to `dest`. `Err` says why not.
pub fn convertible(origin_kind: &str, origin_multi: bool, dest: &LocalField) -> Result<(), String> {
    use FieldKind::*;
    if origin_multi && !dest.is_multi {
        return Err(format!(
            "origin field is multi-value and `{}` holds one value; values would be lost",
            dest.name
        ));
    }
    let origin = FieldKind::parse(origin_kind).ok();
    let ok = match (origin, dest.kind) {
        (Some(o), d) if o == d => true,
        // References point at records, users and files of the other node: they
        // map only onto the same kind (translated by data sync).
        (Some(Record | User | File), _) => false,
        (_, String) => true,
        (Some(String), Email | Url | Number | Bool | DateTime | Select) => true,
        (Some(Bool), Number) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {origin_kind} field cannot be written to `{}` ({})",
            dest.name,
            dest.kind.as_str()
        ))
    }
}

/// Builds a mapping from `ORIGIN=DEST` pairs, checked against both modules:
/// every field exists, kinds convert, no destination gets two origins.
pub fn build_mapping(
    shared: &SharedModule,
    local: &LocalModule,
    pairs: &[(String, String)],
) -> Result<Vec<FieldMapping>, String> {
    if pairs.is_empty() {
        return Err("give at least one --field ORIGIN=DEST".into());
    }
    let mut mapped = Vec::with_capacity(pairs.len());
    for (origin_name, dest_name) in pairs {
        let origin = shared.field(origin_name).ok_or_else(|| {
            format!(
                "shared module `{}` has no field `{origin_name}` (it has: {})",
                shared.handle,
                names(shared.fields.iter().map(|f| f.name.as_str()))
            )
        })?;
        let dest = local.field(dest_name).ok_or_else(|| {
            format!(
                "local module `{}` has no field `{dest_name}` (it has: {})",
                local.handle,
                names(local.fields.iter().map(|f| f.name.as_str()))
            )
        })?;
        if let Some(previous) = mapped
            .iter()
            .find(|m: &&FieldMapping| m.destination.name == *dest_name)
        {
            return Err(format!(
                "`{}` and `{origin_name}` both map onto `{dest_name}`; a destination field takes one origin",
                previous.origin.name
            ));
        }
        convertible(&origin.kind, origin.is_multi, dest)
            .map_err(|e| format!("{origin_name}={dest_name}: {e}"))?;
        mapped.push(FieldMapping {
            origin: origin.clone(),
            destination: dest.to_module_field(),
        });
    }
    Ok(mapped)
}

/// Whether a stored mapping still fits the shared and local modules as they
/// are now. `Err` names each field that broke.
pub fn check_mapping(
    fields: &[FieldMapping],
    shared: &SharedModule,
    local: Option<&LocalModule>,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if shared.deleted_at.is_some() {
        problems.push("the origin no longer exposes the module".to_owned());
    }
    let Some(local) = local else {
        return Err("the local module was removed".into());
    };
    for m in fields {
        match shared.field(&m.origin.name) {
            None => problems.push(format!("origin field `{}` was removed", m.origin.name)),
            Some(origin) => match local.field(&m.destination.name) {
                None => problems.push(format!("local field `{}` was removed", m.destination.name)),
                Some(dest) => {
                    if let Err(e) = convertible(&origin.kind, origin.is_multi, dest) {
                        problems.push(format!("{}: {e}", m.origin.name));
                    }
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Parses `ORIGIN=DEST`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((o, d)) if !o.trim().is_empty() && !d.trim().is_empty() => {
            Ok((o.trim().to_owned(), d.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not ORIGIN=DEST")),
    }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = names.collect();
    if list.is_empty() {
        "no fields".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Id, ModuleField, NodeId, now};

    fn local_field(name: &str, kind: FieldKind, multi: bool) -> LocalField {
        LocalField {
            name: name.into(),
            kind,
            label: name.into(),
            is_multi: multi,
        }
    }

    fn check(origin: &str, multi: bool, dest: FieldKind, dest_multi: bool, ok: bool) {
        let result = convertible(origin, multi, &local_field("d", dest, dest_multi));
        assert_eq!(
            result.is_ok(),
            ok,
            "{origin}{} -> {dest:?}{}: {result:?}",
            if multi { "[]" } else { "" },
            if dest_multi { "[]" } else { "" }
        );
    }

    #[test]
    fn the_conversion_table() {
        use FieldKind::*;
        check("Url", false, String, false, true); // LinkedIn (Url) -> Social (String)
        check("String", false, Url, false, true);
        check("String", false, Number, false, true);
        check("Number", false, String, false, true);
        check("Number", false, Bool, false, false);
        check("Bool", false, Number, false, true);
        check("DateTime", false, String, false, true);
        check("Email", false, Url, false, false);
        check("Record", false, Record, false, true);
        check("Record", false, String, false, false);
        check("User", false, User, true, true);
        check("Text", false, String, false, true); // unknown kinds land as text
        check("Text", false, Number, false, false);
        check("string", false, String, false, true);
        check("String", true, String, true, true);
        check("String", false, String, true, true);
        check("String", true, String, false, false);
    }

    fn modules() -> (SharedModule, LocalModule) {
        let t = now();
        let f = |kind: &str, name: &str, multi: bool| ModuleField {
            kind: kind.into(),
            name: name.into(),
            label: name.into(),
            is_multi: multi,
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
                f("String", "Phone", false),
                f("Url", "LinkedIn", false),
                f("String", "Tags", true),
            ],
            created_at: t,
            updated_at: t,
            deleted_at: None,
        };
        let local = LocalModule {
            id: Id::new(4).unwrap(),
            namespace_id: Id::new(5).unwrap(),
            handle: "contact".into(),
            name: "Contact".into(),
            fields: vec![
                local_field("Tel", FieldKind::String, false),
                local_field("Social", FieldKind::String, false),
                local_field("Labels", FieldKind::String, true),
            ],
            created_at: t,
            updated_at: t,
            deleted_at: None,
        };
        (shared, local)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn mappings_are_checked_against_both_modules() {
        let (shared, local) = modules();
        let ok = build_mapping(
            &shared,
            &local,
            &pairs(&[("Phone", "Tel"), ("LinkedIn", "Social"), ("Tags", "Labels")]),
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[1].destination.kind, "String");
        let err = |p: &[(&str, &str)]| build_mapping(&shared, &local, &pairs(p)).unwrap_err();
        assert!(err(&[("Fax", "Tel")]).contains("no field `Fax`"));
        assert!(err(&[("Phone", "Fax")]).contains("has: Tel, Social, Labels"));
        assert!(err(&[("Phone", "Tel"), ("LinkedIn", "Tel")]).contains("both map onto `Tel`"));
        assert!(err(&[("Tags", "Tel")]).contains("multi-value"));
        assert!(err(&[]).contains("at least one"));
    }

    #[test]
    fn a_changed_structure_breaks_only_what_it_touches() {
        let (mut shared, local) = modules();
        let mapping = build_mapping(
            &shared,
            &local,
            &pairs(&[("Phone", "Tel"), ("LinkedIn", "Social")]),
        )
        .unwrap();
        assert!(check_mapping(&mapping, &shared, Some(&local)).is_ok());
        // A new field does not break anything.
        shared.fields.push(ModuleField {
            kind: "String".into(),
            name: "Fax".into(),
            label: String::new(),
            is_multi: false,
        });
        assert!(check_mapping(&mapping, &shared, Some(&local)).is_ok());
        shared.fields.retain(|f| f.name != "LinkedIn");
        let reason = check_mapping(&mapping, &shared, Some(&local)).unwrap_err();
        assert_eq!(reason, "origin field `LinkedIn` was removed");
        assert!(
            check_mapping(&mapping, &shared, None)
                .unwrap_err()
                .contains("local module was removed")
        );
    }

    #[test]
    fn pairs_parse() {
        assert_eq!(
            parse_pair("LinkedIn=Social"),
            Ok(("LinkedIn".into(), "Social".into()))
        );
        assert!(parse_pair("LinkedIn").is_err());
        assert!(parse_pair("=x").is_err());
    }
}
