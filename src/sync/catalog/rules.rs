//! What a valid module, handle and field look like.

use crate::domain::{FieldKind, LocalField};

const MAX_NAME_CHARS: usize = 128;

/// Handles start with a letter (so they never read as ids) and use letters,
/// digits, `_` and `-`, at most 64 characters.
pub fn check_handle(handle: &str) -> Result<(), String> {
    let mut chars = handle.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && handle.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "handle `{handle}` is not valid: start with a letter, then letters, digits, `_` or `-` (at most 64)"
        ))
    }
}

/// Field names start with a letter and use letters, digits and `_`.
pub fn check_field_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "field name `{name}` is not valid: start with a letter, then letters, digits or `_` (at most 64)"
        ))
    }
}

pub fn check_fields(fields: &[LocalField]) -> Result<(), String> {
    if fields.is_empty() {
        return Err("a module needs at least one --field NAME:KIND".into());
    }
    for (i, field) in fields.iter().enumerate() {
        check_field_name(&field.name)?;
        if fields[..i].iter().any(|f| f.name == field.name) {
            return Err(format!("field `{}` is given twice", field.name));
        }
    }
    Ok(())
}

pub fn module_name(name: &str, handle: &str) -> Result<String, String> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "--name must be at most {MAX_NAME_CHARS} printable characters"
        ));
    }
    Ok(if name.is_empty() {
        handle.to_owned()
    } else {
        name.to_owned()
    })
}

/// Parses `NAME:KIND[:multi]` (the label is the name).
pub fn parse_field_spec(spec: &str) -> Result<LocalField, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, kind, multi) = match parts.as_slice() {
        [name, kind] => (*name, *kind, false),
        [name, kind, "multi"] => (*name, *kind, true),
        _ => return Err(format!("`{spec}` is not NAME:KIND or NAME:KIND:multi")),
    };
    check_field_name(name)?;
    let kind = FieldKind::parse(kind).map_err(|e| format!("`{spec}`: {e}"))?;
    Ok(LocalField {
        name: name.to_owned(),
        kind,
        label: name.to_owned(),
        is_multi: multi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_specs() {
        let f = parse_field_spec("LinkedIn:Url").unwrap();
        assert_eq!(
            (f.name.as_str(), f.kind, f.is_multi),
            ("LinkedIn", FieldKind::Url, false)
        );
        assert!(parse_field_spec("Tags:String:multi").unwrap().is_multi);
        assert!(
            parse_field_spec("tags:string").is_ok(),
            "kinds are case-insensitive"
        );
        for bad in [
            "Tags",
            "Tags:Text",
            "Tags:String:many",
            "1x:String",
            "a b:String",
            ":String",
        ] {
            assert!(parse_field_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn handles_never_read_as_ids() {
        assert!(check_handle("account").is_ok());
        assert!(check_handle("Contact_fed-2").is_ok());
        for bad in ["", "1account", "acc ount", "acc/ount", &"a".repeat(65)] {
            assert!(check_handle(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_are_unique_and_present() {
        let f = parse_field_spec("Phone:String").unwrap();
        assert!(check_fields(&[]).is_err());
        assert!(check_fields(std::slice::from_ref(&f)).is_ok());
        assert!(check_fields(&[f.clone(), f]).unwrap_err().contains("twice"));
    }
}
