//! Reading what fedsync asks of a record list: the parameters, the page
//! it wants, and the `query` forms the fake takes.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::objects::error;

pub(super) fn params(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A page of `items` after `pageCursor`, in 123's envelope, and how many
/// items it holds.
pub(super) fn page(
    items: Vec<Value>,
    params: &[(String, String)],
    mut filter: Value,
) -> (Response, usize) {
    let limit: usize = param(params, "limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let start: usize = match param(params, "pageCursor") {
        None => 0,
        Some(c) => match c.strip_prefix("fake:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return (error("invalid page cursor", "invalidPageCursor"), 0),
        },
    };
    let total = items.len();
    let end = start.saturating_add(limit).min(total);
    let set: Vec<Value> = items.get(start..end).unwrap_or(&[]).to_vec();
    if end < total {
        filter["nextPage"] = json!(format!("fake:{end}"));
    }
    if limit != usize::MAX {
        filter["limit"] = json!(limit);
    }
    // Corteza leaves a total of 0 out (`omitempty`).
    if param(params, "incTotal") == Some("true") && total > 0 {
        filter["total"] = json!(total);
    }
    let count = set.len();
    (
        Json(json!({"response": {"filter": filter, "set": set}})).into_response(),
        count,
    )
}

/// The ids of a query `(id = A OR id = B …)`.
pub(super) fn ids_of(query: &str) -> Option<Vec<String>> {
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(" OR ")
        .map(|part| {
            let id = part.strip_prefix("id = ")?;
            id.parse::<u64>().ok().map(|_| id.to_owned())
        })
        .collect()
}

/// A list going on after an id inside a second, `(column >= 'T+1' OR
/// (column >= 'T' AND id > X))`: the attribute, T+1, T and X.
pub(super) fn continued(query: &str) -> Option<(&'static str, String, String, u64)> {
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    let (later, within) = inner.split_once(" OR (")?;
    let within = within.strip_suffix(')')?;
    let (same, id) = within.split_once(" AND id > ")?;
    let id: u64 = id.parse().ok()?;
    let (attribute, next) = at_or_after(later)?;
    let (again, t) = at_or_after(same)?;
    (attribute == again).then_some((attribute, next, t, id))
}

/// `column >= 'T'`: the record attribute of the column, and T.
pub(super) fn at_or_after(part: &str) -> Option<(&'static str, String)> {
    [
        ("created_at", "createdAt"),
        ("updated_at", "updatedAt"),
        ("deleted_at", "deletedAt"),
    ]
    .into_iter()
    .find_map(|(column, attribute)| {
        let t = part.strip_prefix(column)?.strip_prefix(" >= '")?;
        Some((attribute, t.strip_suffix('\'')?.to_owned()))
    })
}

/// A record query fedsync sends: the record attributes compared and the
/// time (a record is selected when any of them is at or after it), or
/// `None` for a query of another form.
pub(super) fn since(query: &str) -> Option<(Vec<&'static str>, String)> {
    if let Some(one) = at_or_after(query) {
        return Some((vec![one.0], one.1));
    }
    if query.starts_with("(id = ") {
        return None;
    }
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    let parts: Vec<&str> = inner.split(" OR ").collect();
    match parts.as_slice() {
        [a, b, c] => {
            let t = a.strip_prefix("updated_at >= '")?.strip_suffix('\'')?;
            (*b == format!("created_at >= '{t}'") && *c == format!("deleted_at >= '{t}'"))
                .then(|| (vec!["updatedAt", "createdAt", "deletedAt"], t.to_owned()))
        }
        // Whether anything was updated or removed since T.
        [a, b] => {
            let t = a.strip_prefix("updated_at >= '")?.strip_suffix('\'')?;
            (*b == format!("deleted_at >= '{t}'"))
                .then(|| (vec!["updatedAt", "deletedAt"], t.to_owned()))
        }
        _ => None,
    }
}
