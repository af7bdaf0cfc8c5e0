//! Answering a request as Corteza's compose API does.

use std::sync::Mutex;

use axum::Json;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::objects::*;
use super::query::*;
use super::{Seen, World};
use crate::common::fake_peer::fixture;

pub(super) fn answer(
    world: &Mutex<World>,
    method: Method,
    uri: Uri,
    query: Option<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut w = world.lock().unwrap();
    w.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone().unwrap_or_default(),
    });
    if let Some((_, status)) = w.outages.iter().find(|(p, _)| path.starts_with(p.as_str())) {
        return StatusCode::from_u16(*status).unwrap().into_response();
    }
    if method == Method::POST && path.ends_with("/record/") {
        if w.faults.throttled > 0 {
            w.faults.throttled -= 1;
            return StatusCode::TOO_MANY_REQUESTS.into_response();
        }
        match w.creates_left {
            Some(0) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Some(n) => w.creates_left = Some(n - 1),
            None => {}
        }
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !w.tokens.contains(token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "unauthorized"}})),
        )
            .into_response();
    }
    if w.forbidden.iter().any(|p| path.starts_with(p.as_str())) {
        return error(
            "not allowed to read records of this module",
            "notAllowedToRead",
        );
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let params = params(&query);
    let parts: Vec<&str> = path
        .trim_start_matches("/api/compose/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["namespace"]) => {
            let slug = param(&params, "slug");
            let set: Vec<Value> = w
                .namespaces
                .iter()
                .filter(|n| slug.is_none_or(|s| n["slug"] == s))
                .cloned()
                .collect();
            page(
                set,
                &params,
                json!({"slug": slug.unwrap_or(""), "query": ""}),
            )
            .0
        }
        ("GET", ["namespace", ns]) => match w.namespaces.iter().find(|n| n["namespaceID"] == *ns) {
            Some(n) => Json(json!({"response": n})).into_response(),
            None => error("namespace does not exist", "notFound"),
        },
        (_, ["namespace", ns, ..]) if !w.namespaces.iter().any(|n| n["namespaceID"] == *ns) => {
            error("namespace does not exist", "notFound")
        }
        ("GET", ["namespace", ns, "module"]) => {
            let handle = param(&params, "handle");
            let set: Vec<Value> = w
                .modules
                .iter()
                .filter(|m| m["namespaceID"] == *ns && m["deletedAt"].is_null())
                .filter(|m| handle.is_none_or(|h| m["handle"] == h))
                .cloned()
                .collect();
            page(
                set,
                &params,
                json!({"namespaceID": ns, "handle": handle.unwrap_or(""), "query": "", "sort": ""}),
            )
            .0
        }
        ("POST", ["namespace", ns, "module"]) => {
            if w.modules
                .iter()
                .any(|m| m["namespaceID"] == *ns && m["handle"] == body["handle"])
            {
                return error("handle not unique", "handleNotUnique");
            }
            let module = make_module(&mut w, ns, &body, None);
            w.modules.push(module.clone());
            Json(json!({"response": module})).into_response()
        }
        (_, ["namespace", _, "module", m, ..])
            if !w
                .modules
                .iter()
                .any(|x| x["moduleID"] == *m && x["deletedAt"].is_null()) =>
        {
            error("module does not exist", "notFound")
        }
        ("GET", ["namespace", _, "module", m]) => {
            let module = w.modules.iter().find(|x| x["moduleID"] == *m).unwrap();
            Json(json!({"response": module})).into_response()
        }
        ("POST", ["namespace", ns, "module", m]) => {
            let mut updated = make_module(&mut w, ns, &body, Some(m.to_string()));
            let index = w.modules.iter().position(|x| x["moduleID"] == *m).unwrap();
            updated["createdAt"] = w.modules[index]["createdAt"].clone();
            updated["updatedAt"] = json!(now(&mut w));
            w.modules[index] = updated.clone();
            Json(json!({"response": updated})).into_response()
        }
        ("DELETE", ["namespace", _, "module", m]) => {
            let index = w.modules.iter().position(|x| x["moduleID"] == *m).unwrap();
            let stamp = now(&mut w);
            w.modules[index]["deletedAt"] = json!(stamp);
            Json(fixture("108-A-compose-delete-record-carol.json")["response"]["body"].clone())
                .into_response()
        }
        ("GET", ["namespace", ns, "module", m, "record"]) => {
            let deleted = param(&params, "deleted").unwrap_or("0");
            let query = param(&params, "query").unwrap_or("");
            let since = since(query);
            let ids = ids_of(query).filter(|_| !w.no_id_queries);
            let continued = continued(query).filter(|_| !w.no_id_continuation);
            if !query.is_empty() && since.is_none() && ids.is_none() && continued.is_none() {
                return error("invalid query", "invalidQuery");
            }
            let sort = param(&params, "sort").unwrap_or("");
            if !["", "createdAt", "updatedAt", "deletedAt"].contains(&sort) {
                return error(&format!("unknown attribute \"{sort}\""), "invalidSort");
            }
            let metas: Vec<(&str, &str)> = params
                .iter()
                .filter(|(k, _)| k == "meta")
                .filter_map(|(_, v)| v.split_once('='))
                .collect();
            let set: Vec<Value> = w
                .records
                .values()
                .filter(|r| r["moduleID"] == *m)
                .filter(|r| match deleted {
                    "1" => true,
                    "2" => !r["deletedAt"].is_null(),
                    _ => r["deletedAt"].is_null(),
                })
                .filter(|r| metas.iter().all(|(k, v)| r["meta"][*k] == *v))
                .filter(|r| {
                    ids.as_ref()
                        .is_none_or(|ids| ids.iter().any(|id| r["recordID"] == *id))
                })
                .filter(|r| {
                    continued.as_ref().is_none_or(|(k, next, t, after)| {
                        r[*k].as_str().is_some_and(|at| {
                            at >= next.as_str()
                                || (at >= t.as_str()
                                    && r["recordID"]
                                        .as_str()
                                        .and_then(|id| id.parse::<u64>().ok())
                                        .is_some_and(|id| id > *after))
                        })
                    })
                })
                .filter(|r| {
                    since.as_ref().is_none_or(|(columns, t)| {
                        columns
                            .iter()
                            .any(|k| r[*k].as_str().is_some_and(|at| at >= t.as_str()))
                    })
                })
                .cloned()
                .collect();
            // The records map is by ID; a stable sort keeps ID as the tie-break.
            let mut set = set;
            if !sort.is_empty() {
                set.sort_by(|a, b| a[sort].as_str().cmp(&b[sort].as_str()));
            }
            let answer = page(
                set,
                &params,
                json!({"moduleID": m, "namespaceID": ns, "query": query, "deleted": deleted.parse::<u64>().unwrap_or(0), "sort": if sort.is_empty() { "ID".to_owned() } else { format!("{sort}, ID") }}),
            );
            w.listed += answer.1;
            answer.0
        }
        ("POST", ["namespace", _, "module", m, "record"]) => {
            let refused = body["values"].as_array().is_some_and(|values| {
                values
                    .iter()
                    .any(|v| w.faults.refused_values.iter().any(|r| v["value"] == *r))
            });
            if refused {
                return error("invalid record values input", "invalidValues");
            }
            let record = make_record(&mut w, m, &body);
            w.records.insert(
                record["recordID"].as_str().unwrap().parse().unwrap(),
                record.clone(),
            );
            w.faults.created += 1;
            if w.faults.made_then_502 > 0 {
                w.faults.made_then_502 -= 1;
                return StatusCode::BAD_GATEWAY.into_response();
            }
            Json(json!({"response": record})).into_response()
        }
        (verb, ["namespace", _, "module", m, "record", r]) => {
            let Ok(id) = r.parse::<u64>() else {
                return error("invalid ID", "invalidID");
            };
            let stamp = now(&mut w);
            let record = w
                .records
                .get_mut(&id)
                .filter(|x| x["moduleID"] == *m && (verb == "GET" || x["deletedAt"].is_null()));
            let Some(record) = record else {
                return error("record does not exist", "notFound");
            };
            match verb {
                "GET" => Json(json!({"response": record})).into_response(),
                "POST" => {
                    apply_update(record, &body, stamp);
                    Json(json!({"response": record})).into_response()
                }
                "DELETE" => {
                    record["deletedAt"] = json!(stamp);
                    record["deletedBy"] = record["ownedBy"].clone();
                    Json(
                        fixture("108-A-compose-delete-record-carol.json")["response"]["body"]
                            .clone(),
                    )
                    .into_response()
                }
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
    }
}
