//! The routes of the fake compose API: what a request does to the world,
//! what it answers and what it costs (its kind, records listed and
//! counted). Errors come as Corteza sends them: HTTP 200 with `{"error":
//! {"message", "meta": {"type"}}}`.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::model::Kind;
use super::query::{self, Sort};
use super::world::{Rec, World, now, stamp};

/// Corteza's way of saying no: HTTP 200 with an error body.
fn refusal(message: &str, kind: &str) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"error": {"message": message, "meta": {"type": kind}}}),
    )
}

fn ok(response: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({ "response": response }))
}

/// What a request does: its kind, answer, records listed and counted.
pub(super) type Answer = (Kind, StatusCode, Value, usize, usize);

fn structure((status, value): (StatusCode, Value)) -> Answer {
    (Kind::Structure, status, value, 0, 0)
}

pub(super) fn route(
    w: &mut World,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Value,
) -> Answer {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let parts: Vec<&str> = path
        .trim_start_matches("/api/compose/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let other = |message: &str, kind: &str| {
        let (status, value) = refusal(message, kind);
        (Kind::Other, status, value, 0, 0)
    };
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["namespace"]) => {
            let slug = param("slug");
            let set: Vec<Value> = w
                .namespaces
                .iter()
                .filter(|n| slug.is_none_or(|s| n["slug"] == s))
                .cloned()
                .collect();
            structure(ok(
                json!({"filter": {"slug": slug.unwrap_or(""), "query": ""}, "set": set}),
            ))
        }
        ("GET", ["namespace", ns]) => structure(
            match w.namespaces.iter().find(|n| n["namespaceID"] == *ns) {
                Some(n) => ok(n.clone()),
                None => refusal("namespace does not exist", "notFound"),
            },
        ),
        (_, ["namespace", ns, ..]) if !w.namespaces.iter().any(|n| n["namespaceID"] == *ns) => {
            other("namespace does not exist", "notFound")
        }
        ("GET", ["namespace", ns, "module"]) => {
            let handle = param("handle");
            let set: Vec<Value> = w
                .modules
                .iter()
                .filter(|m| m["namespaceID"] == *ns && m["deletedAt"].is_null())
                .filter(|m| handle.is_none_or(|h| m["handle"] == h))
                .cloned()
                .collect();
            let filter =
                json!({"namespaceID": ns, "handle": handle.unwrap_or(""), "query": "", "sort": ""});
            structure(ok(json!({"filter": filter, "set": set})))
        }
        ("POST", ["namespace", ns, "module"]) => {
            if w.modules
                .iter()
                .any(|m| m["namespaceID"] == *ns && m["handle"] == body["handle"])
            {
                return other("handle not unique", "handleNotUnique");
            }
            let module = w.make_module(ns, body, None);
            w.modules.push(module.clone());
            (
                Kind::ModuleWrite,
                StatusCode::OK,
                json!({"response": module}),
                0,
                0,
            )
        }
        (_, ["namespace", _, "module", m, ..])
            if !w
                .modules
                .iter()
                .any(|x| x["moduleID"] == *m && x["deletedAt"].is_null()) =>
        {
            other("module does not exist", "notFound")
        }
        ("GET", ["namespace", _, "module", m]) => {
            let module = w.modules.iter().find(|x| x["moduleID"] == *m).cloned();
            structure(ok(module.unwrap_or_default()))
        }
        ("POST", ["namespace", ns, "module", m]) => {
            let mut updated = w.make_module(ns, body, Some(m.to_string()));
            let Some(index) = w.modules.iter().position(|x| x["moduleID"] == *m) else {
                return other("module does not exist", "notFound");
            };
            updated["createdAt"] = w.modules[index]["createdAt"].clone();
            updated["updatedAt"] = json!(stamp(now()));
            w.modules[index] = updated.clone();
            (
                Kind::ModuleWrite,
                StatusCode::OK,
                json!({"response": updated}),
                0,
                0,
            )
        }
        ("DELETE", ["namespace", _, "module", m]) => {
            if let Some(module) = w.modules.iter_mut().find(|x| x["moduleID"] == *m) {
                module["deletedAt"] = json!(stamp(now()));
            }
            let answer = w.recorded.deleted.clone();
            (Kind::ModuleWrite, StatusCode::OK, answer, 0, 0)
        }
        ("GET", ["namespace", ns, "module", m, "record"]) => {
            let module: u64 = m.parse().unwrap_or_default();
            list(w, ns, module, &params)
        }
        ("POST", ["namespace", _, "module", m, "record"]) => {
            let module: u64 = m.parse().unwrap_or_default();
            let id = w.next();
            let record = Rec {
                id,
                values: body["values"].clone(),
                meta: body
                    .get("meta")
                    .filter(|m| m.is_object())
                    .cloned()
                    .unwrap_or(json!({})),
                created: now(),
                updated: None,
                deleted: None,
                revision: 1,
            };
            let answer = w.render(module, &record);
            w.records.entry(module).or_default().insert(id, record);
            (
                Kind::Create,
                StatusCode::OK,
                json!({"response": answer}),
                0,
                0,
            )
        }
        (verb, ["namespace", _, "module", m, "record", r]) => {
            let (Ok(module), Ok(id)) = (m.parse::<u64>(), r.parse::<u64>()) else {
                return other("invalid ID", "invalidID");
            };
            let kind = match verb {
                "GET" => Kind::Get,
                "POST" => Kind::Update,
                "DELETE" => Kind::Delete,
                _ => return other("method not allowed", "notAllowed"),
            };
            let Some(record) = w
                .records
                .get_mut(&module)
                .and_then(|records| records.get_mut(&id))
                .filter(|x| kind == Kind::Get || x.deleted.is_none())
            else {
                let (status, value) = refusal("record does not exist", "notFound");
                return (kind, status, value, 0, 0);
            };
            match kind {
                Kind::Update => {
                    record.values = body["values"].clone();
                    if let Some(meta) = body.get("meta").filter(|m| m.is_object()) {
                        record.meta = meta.clone();
                    }
                    record.revision += 1;
                    record.updated = Some(now());
                }
                Kind::Delete => record.deleted = Some(now()),
                _ => {}
            }
            let answer = match kind {
                Kind::Delete => w.recorded.deleted.clone(),
                _ => json!({"response": w.render(module, &w.records[&module][&id])}),
            };
            (
                kind,
                StatusCode::OK,
                answer,
                usize::from(kind == Kind::Get),
                0,
            )
        }
        _ => (
            Kind::Other,
            StatusCode::NOT_FOUND,
            json!({"error": {"message": "404 page not found"}}),
            0,
            0,
        ),
    }
}

/// A record list: filtered, sorted, one page after the cursor.
fn list(w: &World, ns: &str, module: u64, params: &[(String, String)]) -> Answer {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let refuse = |message: &str, kind: &str| {
        let (status, value) = refusal(message, kind);
        (Kind::List, status, value, 0, 0)
    };
    let deleted = param("deleted").unwrap_or("0");
    let query_text = param("query").unwrap_or("");
    let Ok(expr) = query::parse(query_text) else {
        return refuse("invalid query", "invalidQuery");
    };
    let sort = match Sort::parse(param("sort").unwrap_or("")) {
        Ok(sort) => sort,
        Err(message) => return refuse(&message, "invalidSort"),
    };
    let metas: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k == "meta")
        .filter_map(|(_, v)| v.split_once('='))
        .collect();
    let limit: usize = param("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut rows: Vec<(Vec<Option<i64>>, &Rec)> = w
        .records
        .get(&module)
        .into_iter()
        .flat_map(BTreeMap::values)
        .filter(|r| match deleted {
            "1" => true,
            "2" => r.deleted.is_some(),
            _ => r.deleted.is_none(),
        })
        .filter(|r| metas.iter().all(|(k, v)| r.meta[*k] == *v))
        .filter(|r| expr.matches(*r))
        .map(|r| (sort.key(r), r))
        .collect();
    rows.sort_by(|a, b| sort.compare(&a.0, &b.0));
    let total = rows.len();
    let start = match param("pageCursor") {
        None | Some("") => 0,
        Some(cursor) => match sort.after(cursor) {
            Ok(after) => rows.partition_point(|(key, _)| sort.compare(key, &after).is_le()),
            Err(message) => return refuse(&message, "invalidPageCursor"),
        },
    };
    let end = start.saturating_add(limit).min(total);
    let set: Vec<Value> = rows[start..end]
        .iter()
        .map(|(_, r)| w.render(module, r))
        .collect();
    let mut filter = json!({
        "moduleID": module.to_string(), "namespaceID": ns, "query": query_text,
        "deleted": deleted.parse::<u64>().unwrap_or(0), "sort": sort.label(),
    });
    if !metas.is_empty() {
        filter["meta"] = metas
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
    }
    if limit != usize::MAX {
        filter["limit"] = json!(limit);
    }
    if end < total {
        filter["nextPage"] = json!(sort.cursor(&rows[end - 1].0));
    }
    let count = param("incTotal") == Some("true");
    // Corteza leaves a total of 0 out (`omitempty`).
    if count && total > 0 {
        filter["total"] = json!(total);
    }
    let kind = if count { Kind::Count } else { Kind::List };
    let listed = set.len();
    let answer = json!({"response": {"filter": filter, "set": set}});
    (
        kind,
        StatusCode::OK,
        answer,
        listed,
        if count { total } else { 0 },
    )
}
