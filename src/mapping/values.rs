//! Values: what a field of each kind accepts, in the canonical text form
//! Corteza stores (all values are strings; Bool is `1` or `0`).

use crate::domain::FieldKind;

/// The canonical form of `value` for a field of `kind`, or why it does not fit.
pub fn normalize(kind: FieldKind, value: &str) -> Result<String, String> {
    Ok(match canonical(kind, value)? {
        Canonical::Whole => value.to_owned(),
        Canonical::Trimmed => value.trim().to_owned(),
        Canonical::Other(other) => other,
    })
}

/// `normalize` of a value the caller gives up: the value itself when it is
/// already canonical, without a copy (a pull maps every value of a page).
pub fn normalize_owned(kind: FieldKind, value: String) -> Result<String, String> {
    Ok(match canonical(kind, &value)? {
        Canonical::Trimmed if value.trim().len() != value.len() => value.trim().to_owned(),
        Canonical::Whole | Canonical::Trimmed => value,
        Canonical::Other(other) => other,
    })
}

/// What `value`'s canonical form is.
enum Canonical {
    /// The value as given.
    Whole,
    /// The value without surrounding whitespace.
    Trimmed,
    Other(String),
}

fn canonical(kind: FieldKind, value: &str) -> Result<Canonical, String> {
    let bad = |what: &str| Err(format!("`{}` is not {what}", shorten(value)));
    let v = value.trim();
    match kind {
        FieldKind::String | FieldKind::Select => Ok(Canonical::Whole),
        FieldKind::Number => match v.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Canonical::Trimmed),
            _ => bad("a number"),
        },
        FieldKind::Bool => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" => Ok(Canonical::Other("1".into())),
            "0" | "false" | "f" | "no" | "" => Ok(Canonical::Other("0".into())),
            _ => bad("true or false"),
        },
        FieldKind::DateTime => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
                Ok(Canonical::Other(
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ))
            } else if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
                Ok(Canonical::Trimmed)
            } else {
                bad("an RFC 3339 date-time")
            }
        }
        FieldKind::Email => match v.split_once('@') {
            Some((user, domain))
                if !user.is_empty()
                    && domain.contains('.')
                    && !v.contains(char::is_whitespace)
                    && !domain.contains('@') =>
            {
                Ok(Canonical::Trimmed)
            }
            _ => bad("an email address"),
        },
        FieldKind::Url if super::plain_url::plain_http_url(v) => Ok(Canonical::Trimmed),
        FieldKind::Url => match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Canonical::Trimmed),
            _ => bad("an http(s) URL"),
        },
        FieldKind::Record | FieldKind::User | FieldKind::File => {
            match v.parse::<crate::domain::Id>() {
                Ok(id) => Ok(Canonical::Other(id.to_string())),
                Err(_) => bad("an id"),
            }
        }
        FieldKind::Geometry => match serde_json::from_str::<serde_json::Value>(value) {
            Ok(_) => Ok(Canonical::Whole),
            Err(_) => bad("GeoJSON"),
        },
    }
}

fn shorten(value: &str) -> String {
    let short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: FieldKind, input: &str, expected: Result<&str, ()>) {
        let got = normalize(kind, input);
        match expected {
            Ok(v) => assert_eq!(got.as_deref(), Ok(v), "{kind:?} {input:?}"),
            Err(()) => assert!(got.is_err(), "{kind:?} {input:?} gave {got:?}"),
        }
    }

    #[test]
    fn the_value_table() {
        use FieldKind::*;
        check(String, "anything at all", Ok("anything at all"));
        check(Number, "31", Ok("31"));
        check(Number, "-2.5", Ok("-2.5"));
        check(Number, "NaN", Err(()));
        check(Number, "thirty", Err(()));
        check(Bool, "true", Ok("1"));
        check(Bool, "1", Ok("1"));
        check(Bool, "", Ok("0"));
        check(Bool, "maybe", Err(()));
        check(
            DateTime,
            "2026-11-22T06:09:24+01:00",
            Ok("2026-11-22T05:09:24Z"),
        );
        check(DateTime, "2026-11-22", Ok("2026-11-22"));
        check(DateTime, "yesterday", Err(()));
        check(Email, "alice@example.org", Ok("alice@example.org"));
        check(Email, "alice", Err(()));
        check(Email, "a b@example.org", Err(()));
        check(
            Url,
            "https://linkedin.com/in/alice",
            Ok("https://linkedin.com/in/alice"),
        );
        check(Url, "javascript:alert(1)", Err(()));
        check(Record, "523615093120041061", Ok("523615093120041061"));
        check(Record, "alice", Err(()));
        check(
            Geometry,
            r#"{"type":"Point","coordinates":[1,2]}"#,
            Ok(r#"{"type":"Point","coordinates":[1,2]}"#),
        );
        check(Geometry, "{", Err(()));
    }
}
