//! Data routes: Corteza's internal data document, the records index, the
//! documented `/exposed/...records` variants, and Activity Streams 2.0 pages
//! done as they should be (Corteza's are broken, W24).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::FederationState;
use super::peer::{authenticate, page_request, serve_error};
use crate::domain::PeerKind;
use crate::federation::wire::{
    ACTIVITY_STREAMS, ActivityLink, ActivityPage, DataDoc, DataFilter, Envelope, IndexSet, LinkDoc,
    LinkFilter, LinkSet, RecordDoc, rfc3339,
};
use crate::store::{ChangeQuery, ExposedPageQuery};
use crate::sync::data::{RecordsPageRequest, ServedRecords};
use crate::sync::structure::ServeError;

async fn served(
    state: &FederationState,
    headers: &HeaderMap,
    path_node: Option<&str>,
    module: &str,
    query: Option<&str>,
    addr: &ConnectInfo<SocketAddr>,
) -> Result<(ServedRecords, crate::sync::AuthenticatedPeer), Response> {
    let peer = authenticate(state, headers, path_node, addr).await?;
    let request = page_request(query).map_err(IntoResponse::into_response)?;
    let include_total = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "incTotal" && matches!(v.as_ref(), "true" | "1"));
    let request = RecordsPageRequest {
        last_sync: request.last_sync,
        limit: request.limit,
        cursor: request.cursor,
        include_total,
    };
    let page = state
        .read_ahead
        .serve(&peer.node, module, request)
        .await
        .map_err(serve_error)?;
    Ok((page, peer))
}

/// Bytes a served record takes in the document, about: its buffer is
/// sized once for the page instead of growing by copies.
const RECORD_BYTES: usize = 640;

/// The data document of `page` as a JSON response.
fn data_response(page: &ServedRecords, ours: bool) -> Response {
    let namespace = page.exposure.namespace_id.to_string();
    let envelope = Envelope {
        response: data_doc(page, ours, &namespace),
    };
    let mut body = Vec::with_capacity((page.records.len() + 1) * RECORD_BYTES);
    match serde_json::to_writer(&mut body, &envelope) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the page: {e}"),
        )
            .into_response(),
    }
}

fn data_doc<'a>(page: &'a ServedRecords, ours: bool, namespace: &'a str) -> DataDoc<'a> {
    DataDoc {
        filter: DataFilter {
            module_id: page.exposure.module_id.to_string(),
            namespace_id: namespace.to_owned(),
            query: String::new(),
            deleted: 1,
            sort: "changed".to_owned(),
            limit: page.limit,
            next_page: page.next_cursor.clone(),
            resume: ours.then(|| page.resume_cursor.clone()),
            total: page.total,
        },
        set: page
            .records
            .iter()
            .map(|r| RecordDoc::new(&r.record, &r.values, namespace))
            .collect(),
    }
}

/// `GET /federation/nodes/{id}/modules/{module}/records/`: the changed
/// records of a module exposed to the calling pair, only its exposed fields.
pub async fn records(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path((id, module)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match served(
        &state,
        &headers,
        Some(&id),
        &module,
        query.as_deref(),
        &addr,
    )
    .await
    {
        Ok((page, peer)) => data_response(&page, peer.node.peer_kind == PeerKind::Fedsync),
        Err(response) => response,
    }
}

/// `GET /federation/exposed/modules/{module}/records?after=T` (documented variant).
pub async fn documented_records(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(module): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match served(&state, &headers, None, &module, query.as_deref(), &addr).await {
        Ok((page, peer)) => data_response(&page, peer.node.peer_kind == PeerKind::Fedsync),
        Err(response) => response,
    }
}

/// Exposed modules of the pair with records changed since `lastSync`.
async fn changed_modules(
    state: &FederationState,
    peer: &crate::sync::AuthenticatedPeer,
    last_sync: Option<i64>,
) -> Result<Vec<crate::domain::ExposedModule>, Response> {
    let exposures = state
        .store
        .page_exposed_modules(&ExposedPageQuery {
            node_id: peer.node.id,
            since: None,
            after: None,
            include_deleted: false,
            limit: 100_000,
        })
        .await
        .map_err(|e| serve_error(ServeError::Store(e)))?;
    let mut changed = Vec::new();
    for exposure in exposures {
        let any = state
            .records
            .page_changes(&ChangeQuery {
                module_id: exposure.module_id,
                after: None,
                since: last_sync
                    .filter(|t| *t > 0)
                    .map(|t| t.saturating_mul(1_000_000)),
                exclude_origin: Some(peer.node.id),
                exclude_received: !state.reexport,
                limit: 1,
            })
            .await
            .map_err(|e| serve_error(ServeError::Local(e.to_string())))?;
        if !any.is_empty() {
            changed.push(exposure);
        }
    }
    Ok(changed)
}

/// `GET /federation/nodes/{id}/modules/exposed/records/`: links to the
/// pair's exposed modules with changed records (Corteza's index, with the
/// `/federation` prefix its links lack, W25).
pub async fn records_index(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, Some(&id), &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let request = match page_request(query.as_deref()) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let changed = match changed_modules(&state, &peer, request.last_sync).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
    let set = changed
        .iter()
        .map(|m| LinkDoc {
            kind: "GET".into(),
            rel: "Federation Module".into(),
            // Relative to the federation API root, as Corteza writes it.
            href: format!("/nodes/{shared}/modules/{}/records/", m.id),
        })
        .collect();
    Json(Envelope {
        response: IndexSet { set },
    })
    .into_response()
}

/// `GET /federation/exposed/records?after=T` (documented variant).
pub async fn documented_record_links(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, None, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let request = match page_request(query.as_deref()) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let changed = match changed_modules(&state, &peer, request.last_sync).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let after = request.last_sync.unwrap_or(0);
    let base = state.public_base.trim_end_matches('/');
    let set: Vec<LinkDoc> = changed
        .iter()
        .map(|m| LinkDoc {
            kind: "GET".into(),
            rel: m.name.clone(),
            href: format!("{base}/exposed/modules/{}/records?after={after}", m.id),
        })
        .collect();
    let count = set.len() as u64;
    Json(Envelope {
        response: LinkSet {
            filter: LinkFilter {
                query: format!("after={after}"),
                page: 1,
                per_page: count.max(1) as u32,
                count,
            },
            set,
        },
    })
    .into_response()
}

fn next_link(href_base: &str, limit: u32, cursor: &Option<String>) -> Option<ActivityLink> {
    cursor.as_ref().map(|c| {
        let encoded: String = url::form_urlencoded::byte_serialize(c.as_bytes()).collect();
        ActivityLink {
            kind: "Link",
            name: "Next page",
            href: format!("{href_base}?limit={limit}&pageCursor={encoded}"),
        }
    })
}

/// `GET /federation/nodes/{id}/modules/{module}/records/activity-stream/`.
pub async fn records_activity(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path((id, module)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (page, peer) = match served(
        &state,
        &headers,
        Some(&id),
        &module,
        query.as_deref(),
        &addr,
    )
    .await
    {
        Ok(x) => x,
        Err(response) => return response,
    };
    let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
    let base = state.public_base.trim_end_matches('/');
    let module_url = format!(
        "{base}/nodes/{shared}/modules/{}/records/",
        page.exposure.id
    );
    let items = page
        .records
        .iter()
        .map(|r| {
            let mut item = serde_json::json!({
                "@context": ACTIVITY_STREAMS,
                "type": "Record",
                "id": format!("{module_url}{}", r.record.id),
                "summary": format!("Data for module {} on node {shared}", page.exposure.name),
                "url": module_url,
                "node": shared.to_string(),
                "federationModule": page.exposure.id.to_string(),
                "composeModule": page.exposure.module_id.to_string(),
                "composeNamespace": page.exposure.namespace_id.to_string(),
                "recordID": r.record.id.to_string(),
                "createdAt": rfc3339(r.record.created_at),
                "values": r.values.iter().map(|v| serde_json::json!({ "name": v.name, "value": v.value })).collect::<Vec<_>>(),
            });
            if r.record.updated_at != r.record.created_at {
                item["updatedAt"] = rfc3339(r.record.updated_at).into();
            }
            if let Some(deleted) = r.record.deleted_at {
                item["deletedAt"] = rfc3339(deleted).into();
            }
            item
        })
        .collect();
    let href_base = format!(
        "{base}/nodes/{shared}/modules/{}/records/activity-stream/",
        page.exposure.id
    );
    Json(ActivityPage {
        context: ACTIVITY_STREAMS,
        kind: "OrderedCollectionPage",
        items_per_page: page.limit,
        next: next_link(&href_base, page.limit, &page.next_cursor),
        items,
    })
    .into_response()
}

/// `GET /federation/nodes/{id}/modules/exposed/activity-stream`.
pub async fn structure_activity(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, Some(&id), &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let request = match page_request(query.as_deref()) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let page = match crate::sync::structure::serve_page(
        &*state.store,
        &state.signing_key,
        &peer.node,
        false,
        request,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return serve_error(e),
    };
    let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
    let base = state.public_base.trim_end_matches('/');
    let items = page
        .modules
        .iter()
        .map(|m| {
            serde_json::json!({
                "@context": ACTIVITY_STREAMS,
                "type": "Module",
                "id": format!("{base}/nodes/{shared}/modules/{}/", m.id),
                "summary": format!("Structure for module {} on node {shared}", m.name),
                "name": m.name,
                "handle": m.handle,
                "url": format!("{base}/nodes/{shared}/modules/{}/records/", m.id),
                "node": shared.to_string(),
                "federationModule": m.id.to_string(),
                "composeModule": m.module_id.to_string(),
                "composeNamespace": m.namespace_id.to_string(),
                "createdAt": rfc3339(m.created_at),
                "fields": m.fields.iter().map(|f| serde_json::json!({ "kind": f.kind, "name": f.name, "label": f.label, "isMulti": f.is_multi })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let href_base = format!("{base}/nodes/{shared}/modules/exposed/activity-stream");
    Json(ActivityPage {
        context: ACTIVITY_STREAMS,
        kind: "OrderedCollectionPage",
        items_per_page: page.limit,
        next: next_link(&href_base, page.limit, &page.next_cursor),
        items,
    })
    .into_response()
}
