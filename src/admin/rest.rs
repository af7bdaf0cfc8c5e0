//! Corteza's federation admin REST API (and the variant its documentation
//! shows with curl), on the admin listener under `/federation`, over the
//! same services as gRPC: this file only decodes Corteza-shaped requests,
//! calls the pairing and catalog services, and encodes Corteza-shaped
//! answers (`{"response": ...}`, `{"success": {"message": "OK"}}`,
//! `{"error": {"message": ...}}`, ids as strings, `can*` flags).
//!
//! Where fedsync differs from Corteza on purpose: failures carry a real HTTP
//! status (400, 404, 409, 502...) besides Corteza's error body, instead of
//! Corteza's 200; a node update changes only the fields the body names.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AdminIdentity, authenticate_request};
use super::server::AdminState;
use crate::domain::{
    Actor, AdminTokenKind, ExposedModule, Id, ModuleField, ModuleMapping, Node, NodeFilter, NodeId,
    PairingStatus, SharedModule, Timestamp,
};
use crate::sync::catalog::{CatalogError, MappingView};
use crate::sync::{NodeUpdate, PairingError};

/// The REST routes, behind admin authentication.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/federation/nodes/", get(search_nodes).post(create_node))
        .route("/federation/nodes", post(create_node))
        .route(
            "/federation/nodes/{id}",
            get(read_node).post(update_node).delete(delete_node),
        )
        .route("/federation/nodes/{id}/undelete", post(undelete_node))
        .route("/federation/nodes/{id}/uri", post(generate_uri))
        .route("/federation/nodes/{id}/pair", post(pair_node))
        .route(
            "/federation/nodes/{id}/handshake-confirm",
            post(confirm_node),
        )
        .route(
            "/federation/nodes/{id}/modules/",
            get(list_modules).put(expose),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}",
            put(expose_documented).delete(unexpose),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}/exposed",
            get(read_exposed)
                .post(update_exposed)
                .put(update_exposed)
                .delete(unexpose),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}/shared",
            get(read_shared),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}/mapped",
            get(read_mapping).put(set_mapping),
        )
        .layer(from_fn_with_state(state.clone(), require_admin_rest))
        .with_state(state)
}

// ------------------------------------------------------------ envelope

/// A refused request: an HTTP status and Corteza's error body.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (
            self.0,
            axum::Json(json!({ "error": { "message": self.1 } })),
        )
            .into_response()
    }
}

type Answer = Result<Response, Failure>;

fn response(payload: Value) -> Answer {
    Ok(axum::Json(json!({ "response": payload })).into_response())
}

fn success() -> Answer {
    Ok(axum::Json(json!({ "success": { "message": "OK" } })).into_response())
}

fn bad(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.into())
}

impl From<PairingError> for Failure {
    fn from(e: PairingError) -> Failure {
        let status = match &e {
            PairingError::NotFound(_) => StatusCode::NOT_FOUND,
            PairingError::Invalid(_) => StatusCode::BAD_REQUEST,
            PairingError::WrongState(_) | PairingError::Conflict(_) => StatusCode::CONFLICT,
            PairingError::Peer { .. } => StatusCode::BAD_GATEWAY,
            PairingError::NotConfigured(_) => StatusCode::PRECONDITION_FAILED,
            PairingError::Store(_) | PairingError::Crypto(_) => {
                tracing::error!(error = %e, "admin REST call failed");
                return Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unavailable".into(),
                );
            }
        };
        Failure(status, e.to_string())
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Failure {
        let status = match &e {
            CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
            CatalogError::Invalid(_) => StatusCode::BAD_REQUEST,
            CatalogError::Conflict(_) => StatusCode::CONFLICT,
            CatalogError::Local(_) | CatalogError::Store(_) => {
                tracing::error!(error = %e, "admin REST call failed");
                return Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unavailable".into(),
                );
            }
        };
        Failure(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Failure {
        tracing::error!(error = %e, "admin REST call failed");
        Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily unavailable".into(),
        )
    }
}

// ------------------------------------------------------------ auth

/// Admin authentication for the REST routes: the same admin tokens, audit
/// and metrics as gRPC; a refusal is a 401 with Corteza's error body.
async fn require_admin_rest(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let source_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    match authenticate_request(&state, request.headers(), &source_addr, &path).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(rejection) => Failure(
            StatusCode::UNAUTHORIZED,
            format!("admin token rejected: {rejection}"),
        )
        .into_response(),
    }
}

/// The caller, as the services record it; `write` refuses read-only tokens.
fn caller(identity: &AdminIdentity, write: bool) -> Result<Actor, Failure> {
    if write && identity.kind != AdminTokenKind::Admin {
        return Err(Failure(
            StatusCode::FORBIDDEN,
            format!("admin token `{}` is read-only", identity.name),
        ));
    }
    Ok(Actor {
        name: identity.name.clone(),
        token_id: Some(identity.token_id),
        source_addr: identity.source_addr.clone(),
    })
}

/// The identity the middleware attached.
struct Caller(AdminIdentity);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Caller, Failure> {
        parts
            .extensions
            .get::<AdminIdentity>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| Failure(StatusCode::UNAUTHORIZED, "no admin identity".into()))
    }
}

// ------------------------------------------------------------ decoding

fn node_id(text: &str) -> Result<NodeId, Failure> {
    text.parse::<u64>()
        .ok()
        .and_then(NodeId::from_u64)
        .ok_or_else(|| bad(format!("nodeID `{text}` is not a node id")))
}

fn id(what: &str, text: &str) -> Result<Id, Failure> {
    text.parse::<Id>()
        .map_err(|_| bad(format!("{what} `{text}` is not an id")))
}

/// A JSON body, or `{}` when there is none (action routes take empty bodies).
fn body_json(body: &Bytes) -> Result<Value, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

/// A string field (Corteza matches names case-insensitively; ids may come
/// as numbers from hand-written requests).
fn text_field(body: &Value, name: &str) -> Option<String> {
    let object = body.as_object()?;
    let value = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truthy(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes"))
}

/// Field names from a list of Corteza ModuleFields (`[{name, kind, ...}]`),
/// or from `{"fields": [...]}`.
fn field_names(body: &Value) -> Result<Vec<String>, Failure> {
    let list = match body {
        Value::Array(list) => list,
        Value::Object(map) => match map.iter().find(|(k, _)| k.eq_ignore_ascii_case("fields")) {
            Some((_, Value::Array(list))) => list,
            Some((_, Value::Null)) | None => return Ok(Vec::new()),
            Some(_) => return Err(bad("fields must be a list of module fields")),
        },
        _ => return Err(bad("expected a list of module fields")),
    };
    list.iter()
        .map(|f| match f {
            Value::String(name) => Ok(name.clone()),
            other => text_field(other, "name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("every field needs a `name`")),
        })
        .collect()
}

/// (origin, destination) field names from `[{origin: {name}, destination: {name}}]`.
fn mapping_pairs(list: &Value) -> Result<Vec<(String, String)>, Failure> {
    let Value::Array(list) = list else {
        return Err(bad("fields must be a list of {origin, destination}"));
    };
    list.iter()
        .map(|entry| {
            let name = |side: &str| {
                entry
                    .get(side)
                    .and_then(|f| text_field(f, "name"))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad(format!("every mapping entry needs `{side}.name`")))
            };
            Ok((name("origin")?, name("destination")?))
        })
        .collect()
}

// ------------------------------------------------------------ encoding

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn node_json(node: &Node) -> Value {
    let mut out = json!({
        "nodeID": node.id.to_string(),
        "name": node.name,
        "status": node.status.as_str(),
        "baseURL": node.base_url,
        "contact": node.contact,
        "sharedNodeID": node.shared_node_id.map_or_else(|| "0".to_owned(), |id| id.to_string()),
        "createdAt": time(node.created_at),
        "createdBy": "0",
        "updatedAt": time(node.updated_at),
    });
    if let Some(deleted) = node.deleted_at {
        out["deletedAt"] = json!(time(deleted));
    }
    out
}

/// NodePayload: the node and what the caller may do with it.
fn node_payload(node: &Node, identity: &AdminIdentity) -> Value {
    let write = identity.kind == AdminTokenKind::Admin;
    let mut out = node_json(node);
    out["canManageNode"] = json!(write);
    out["canCreateModule"] = json!(write);
    out
}

/// The documented create answer: `{nodeID, sharedNodeID, name, domain, status, nodeURI}`.
fn documented_node(node: &Node, node_uri: &str) -> Value {
    let domain = url::Url::parse(&node.base_url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_default();
    json!({
        "nodeID": node.id.to_string(),
        "sharedNodeID": node.shared_node_id.map_or_else(|| "0".to_owned(), |id| id.to_string()),
        "name": node.name,
        "domain": domain,
        "status": node.status.as_str(),
        "nodeURI": node_uri,
    })
}

fn field_json(f: &ModuleField) -> Value {
    json!({ "kind": f.kind, "name": f.name, "label": f.label, "isMulti": f.is_multi })
}

fn exposed_json(e: &ExposedModule, identity: &AdminIdentity) -> Value {
    let mut out = json!({
        "moduleID": e.id.to_string(),
        "nodeID": e.node_id.to_string(),
        "composeModuleID": e.module_id.to_string(),
        "composeNamespaceID": e.namespace_id.to_string(),
        "handle": e.handle,
        "name": e.name,
        "fields": e.fields.iter().map(field_json).collect::<Vec<_>>(),
        "createdAt": time(e.created_at),
        "createdBy": "0",
        "updatedAt": time(e.updated_at),
        "canManageModule": identity.kind == AdminTokenKind::Admin,
    });
    if let Some(deleted) = e.deleted_at {
        out["deletedAt"] = json!(time(deleted));
    }
    out
}

fn shared_json(m: &SharedModule, identity: &AdminIdentity) -> Value {
    json!({
        "moduleID": m.id.to_string(),
        "nodeID": m.node_id.to_string(),
        "handle": m.handle,
        "name": m.name,
        "externalFederationModuleID": m.external_module_id.to_string(),
        "fields": m.fields.iter().map(field_json).collect::<Vec<_>>(),
        "createdAt": time(m.created_at),
        "createdBy": "0",
        "updatedAt": time(m.updated_at),
        "canMapModule": identity.kind == AdminTokenKind::Admin,
    })
}

/// Corteza's ModuleMapping, with the documented shape's keys beside it
/// (`moduleID`, `handle`, `name`, timestamps, `mapping`).
fn mapping_json(mapping: &ModuleMapping, shared: &SharedModule) -> Value {
    let fields: Vec<Value> = mapping
        .fields
        .iter()
        .map(|f| json!({ "origin": field_json(&f.origin), "destination": field_json(&f.destination) }))
        .collect();
    json!({
        "nodeID": mapping.node_id.to_string(),
        "federationModuleID": mapping.shared_module_id.to_string(),
        "composeModuleID": mapping.local_module_id.to_string(),
        "composeNamespaceID": mapping.namespace_id.to_string(),
        "fields": fields,
        "moduleID": shared.id.to_string(),
        "handle": shared.handle,
        "name": shared.name,
        "createdAt": time(mapping.created_at),
        "updatedAt": time(mapping.updated_at),
        "mapping": fields,
        "status": mapping.status.as_str(),
        "statusReason": mapping.status_reason,
    })
}

fn view_json(view: &MappingView) -> Value {
    mapping_json(&view.mapping, &view.shared)
}

// ------------------------------------------------------------ nodes

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    deleted: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// `GET /nodes/`: `{filter, set}`.
async fn search_nodes(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Query(q): Query<SearchQuery>,
) -> Answer {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(PairingStatus::parse(s).map_err(|e| bad(e.to_string()))?),
    };
    // Corteza's `deleted`: 0 exclude (default), 1 include, 2 only.
    let deleted = q.deleted.as_deref().unwrap_or("0");
    let mut nodes = state
        .store
        .list_nodes(&NodeFilter {
            status,
            query: Some(q.query.clone()).filter(|s| !s.is_empty()),
            include_deleted: deleted != "0",
        })
        .await?;
    if deleted == "2" {
        nodes.retain(|n| n.deleted_at.is_some());
    }
    let limit: usize = q
        .limit
        .as_deref()
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let total = nodes.len();
    nodes.truncate(limit);
    response(json!({
        "filter": {
            "name": q.query,
            "status": q.status,
            "deleted": deleted.parse::<u8>().unwrap_or(0),
            "sort": "id",
            "limit": if limit == usize::MAX { 0 } else { limit },
            "total": total,
        },
        "set": nodes.iter().map(|n| node_payload(n, &identity)).collect::<Vec<_>>(),
    }))
}

/// `POST /nodes/`: Corteza's (`baseURL`, `name`, `contact`, or `pairingURI`)
/// and the documented (`myDomain` with `domain` and `name`, or with `nodeURI`).
async fn create_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let body = body_json(&body)?;
    let field = |name: &str| text_field(&body, name).unwrap_or_default();
    let documented = text_field(&body, "myDomain").is_some();
    for key in ["pairingURI", "nodeURI"] {
        let uri = field(key);
        if !uri.is_empty() {
            let (node, _) = state.pairing.add_from_uri(&actor, &uri).await?;
            return response(if documented || key == "nodeURI" {
                documented_node(&node, &uri)
            } else {
                // Corteza answers a bare Node here (no `can*` flags).
                node_json(&node)
            });
        }
    }
    let base_url = match (field("baseURL"), field("domain")) {
        (url, _) if !url.is_empty() => url,
        (_, domain) if !domain.is_empty() => state.pairing.base_url_for_domain(&domain),
        _ => {
            return Err(bad(
                "give `baseURL` (or the documented `domain`), or a `pairingURI`",
            ));
        }
    };
    let (node, uri) = state
        .pairing
        .create_node(&actor, &field("name"), &base_url, &field("contact"))
        .await?;
    if documented || !field("domain").is_empty() {
        response(documented_node(&node, &uri.uri))
    } else {
        response(node_payload(&node, &identity))
    }
}

async fn read_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let id = node_id(&id)?;
    match state.store.get_node(id).await? {
        Some(node) => response(node_payload(&node, &identity)),
        None => Err(Failure(
            StatusCode::NOT_FOUND,
            format!("node {id} does not exist"),
        )),
    }
}

async fn update_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let id = node_id(&id)?;
    let body = body_json(&body)?;
    let update = NodeUpdate {
        name: text_field(&body, "name"),
        contact: text_field(&body, "contact"),
        base_url: text_field(&body, "baseURL"),
    };
    let node = state.pairing.update_node(&actor, id, &update).await?;
    response(node_payload(&node, &identity))
}

async fn delete_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let actor = caller(&identity, true)?;
    state.pairing.delete_node(&actor, node_id(&id)?).await?;
    success()
}

async fn undelete_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let actor = caller(&identity, true)?;
    state.pairing.undelete_node(&actor, node_id(&id)?).await?;
    success()
}

/// `POST /nodes/{id}/uri`: the node URI as a JSON string (a fresh one-time
/// token each time).
async fn generate_uri(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let actor = caller(&identity, true)?;
    let (_, uri) = state.pairing.generate_uri(&actor, node_id(&id)?).await?;
    response(json!(uri.uri.as_str()))
}

async fn pair_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let actor = caller(&identity, true)?;
    state.pairing.pair(&actor, node_id(&id)?).await?;
    success()
}

async fn confirm_node(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Answer {
    let actor = caller(&identity, true)?;
    state.pairing.confirm(&actor, node_id(&id)?).await?;
    success()
}

// ------------------------------------------------------------ modules

/// `GET /nodes/{id}/modules/?exposed|shared|mapped`: a plain list; the first
/// flag set wins, in that order.
async fn list_modules(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    let node = node_id(&id)?.to_string();
    if truthy(q.get("exposed")) {
        let list = state.catalog.list_exposures(&node).await?;
        return response(json!(
            list.iter()
                .map(|e| exposed_json(e, &identity))
                .collect::<Vec<_>>()
        ));
    }
    if truthy(q.get("shared")) {
        let list = state.catalog.list_shared(&node, false).await?;
        return response(json!(
            list.iter()
                .map(|m| shared_json(m, &identity))
                .collect::<Vec<_>>()
        ));
    }
    if truthy(q.get("mapped")) {
        let node_id = node_id(&id)?;
        let mut out = Vec::new();
        for mapping in state.store.list_mappings(node_id).await? {
            if let Some(shared) = state
                .store
                .get_shared_module(mapping.shared_module_id)
                .await?
            {
                out.push(mapping_json(&mapping, &shared));
            }
        }
        return response(json!(out));
    }
    Err(bad(
        "request parameters invalid: set one of exposed, shared, mapped",
    ))
}

/// The local module a request names: Corteza's `composeModuleID` (checked
/// against `composeNamespaceID` when given).
async fn compose_module(state: &AdminState, body: &Value) -> Result<String, Failure> {
    let module = text_field(body, "composeModuleID")
        .filter(|m| !m.is_empty() && m != "0")
        .ok_or_else(|| bad("composeModuleID is required"))?;
    let local = state.catalog.module(&module).await?;
    if let Some(namespace) =
        text_field(body, "composeNamespaceID").filter(|n| !n.is_empty() && n != "0")
        && id("composeNamespaceID", &namespace)? != local.namespace_id
    {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!(
                "module {module} is not in namespace {namespace} (it is in {})",
                local.namespace_id
            ),
        ));
    }
    Ok(local.id.to_string())
}

/// `PUT /nodes/{id}/modules/`: expose a local module (Corteza's body).
async fn expose(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let node = node_id(&id)?.to_string();
    let body = body_json(&body)?;
    let module = compose_module(&state, &body).await?;
    let fields = field_names(&body)?;
    let exposed = state
        .catalog
        .expose(&actor, &node, &module, &fields)
        .await?;
    response(exposed_json(&exposed, &identity))
}

/// `PUT /nodes/{id}/modules/{module}` (documented): expose a local module
/// with a list of fields.
async fn expose_documented(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let node = node_id(&id)?.to_string();
    let body = body_json(&body)?;
    let fields = field_names(&body)?;
    let exposed = state
        .catalog
        .expose(&actor, &node, &module, &fields)
        .await?;
    response(exposed_json(&exposed, &identity))
}

/// The local module behind `{module}` in an exposure route: an exposed
/// module id of this node (Corteza), or a local module id or handle
/// (documented).
async fn exposed_module_key(
    state: &AdminState,
    node: NodeId,
    module: &str,
) -> Result<String, Failure> {
    if let Ok(exposure_id) = module.parse::<Id>()
        && let Some(e) = state.store.get_exposed_module(exposure_id).await?
        && e.node_id == node
    {
        return Ok(e.module_id.to_string());
    }
    Ok(module.to_owned())
}

async fn read_exposed(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
) -> Answer {
    let node = node_id(&id)?;
    let key = exposed_module_key(&state, node, &module).await?;
    let local = state.catalog.module(&key).await?;
    let exposed = state
        .catalog
        .list_exposures(&node.to_string())
        .await?
        .into_iter()
        .find(|e| e.module_id == local.id)
        .ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                format!("module {module} is not exposed to node {node}"),
            )
        })?;
    response(exposed_json(&exposed, &identity))
}

/// `POST` (Corteza) or `PUT` (documented) `.../{module}/exposed`: the
/// exposed fields change.
async fn update_exposed(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let node = node_id(&id)?;
    let body = body_json(&body)?;
    let key = match text_field(&body, "composeModuleID").filter(|m| !m.is_empty() && m != "0") {
        Some(_) => compose_module(&state, &body).await?,
        None => exposed_module_key(&state, node, &module).await?,
    };
    let fields = field_names(&body)?;
    let exposed = state
        .catalog
        .update_exposure(&actor, &node.to_string(), &key, &fields)
        .await?;
    response(exposed_json(&exposed, &identity))
}

/// `DELETE .../{module}/exposed` (Corteza: `{"response": null}`) and the
/// documented `DELETE .../modules/{module}`.
async fn unexpose(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
) -> Answer {
    let actor = caller(&identity, true)?;
    let node = node_id(&id)?;
    let key = exposed_module_key(&state, node, &module).await?;
    state
        .catalog
        .unexpose(&actor, &node.to_string(), &key)
        .await?;
    response(Value::Null)
}

async fn read_shared(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
) -> Answer {
    let node = node_id(&id)?.to_string();
    let shared = state.catalog.shared(&node, &module).await?;
    response(shared_json(&shared, &identity))
}

#[derive(Debug, Deserialize)]
struct MappingQuery {
    #[serde(default, rename = "composeModuleID")]
    compose_module_id: Option<String>,
}

async fn read_mapping(
    State(state): State<AdminState>,
    Caller(_): Caller,
    Path((id, module)): Path<(String, String)>,
    Query(q): Query<MappingQuery>,
) -> Answer {
    let node = node_id(&id)?.to_string();
    let view = state.catalog.mapping(&node, &module).await?;
    if let Some(wanted) = q.compose_module_id.filter(|m| !m.is_empty() && m != "0")
        && wanted != view.mapping.local_module_id.to_string()
    {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            "module mapping does not exist".into(),
        ));
    }
    response(view_json(&view))
}

/// `PUT .../{module}/mapped`: Corteza's `{composeModuleID,
/// composeNamespaceID, fields}`, or the documented bare list of
/// `{origin, destination}`, which maps into the local module with the
/// shared module's handle.
async fn set_mapping(
    State(state): State<AdminState>,
    Caller(identity): Caller,
    Path((id, module)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let actor = caller(&identity, true)?;
    let node = node_id(&id)?.to_string();
    let body = body_json(&body)?;
    let (local, pairs) = match &body {
        Value::Array(_) => {
            let shared = state.catalog.shared(&node, &module).await?;
            let local = state.catalog.module(&shared.handle).await.map_err(|_| {
                bad(format!(
                    "no local module has the handle `{}`; create it, or send \
                     {{composeModuleID, composeNamespaceID, fields}}",
                    shared.handle
                ))
            })?;
            (local.id.to_string(), mapping_pairs(&body)?)
        }
        _ => {
            let local = compose_module(&state, &body).await?;
            let fields = body
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("fields")))
                .map(|(_, v)| v.clone())
                .unwrap_or(json!([]));
            (local, mapping_pairs(&fields)?)
        }
    };
    let view = state
        .catalog
        .set_mapping(&actor, &node, &module, &local, &pairs)
        .await?;
    response(view_json(&view))
}
