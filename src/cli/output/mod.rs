//! What commands print: JSON twins of the admin messages (the `--json`
//! convention) and plain tables for people.

use serde::Serialize;

use crate::admin::proto::{self, v1};
use crate::store::AppliedMigration;

pub(super) fn rfc3339(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref()
        .and_then(proto::from_timestamp)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

pub(super) fn id_string(id: u64) -> Option<String> {
    (id != 0).then(|| id.to_string())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeJson {
    id: String,
    shared_node_id: Option<String>,
    role: String,
    name: String,
    base_url: String,
    contact: String,
    status: String,
    status_reason: String,
    peer_kind: String,
    handshake_requested_at: Option<String>,
    handshake_source_addr: String,
    peer_token_fingerprint: String,
    structure_status: String,
    structure_synced_at: Option<String>,
    structure_error: String,
    data_status: String,
    data_synced_at: Option<String>,
    data_error: String,
    paused: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
    deleted_at: Option<String>,
    #[serde(flatten)]
    live: live::LiveJson,
}

impl From<&v1::Node> for NodeJson {
    fn from(n: &v1::Node) -> NodeJson {
        NodeJson {
            id: n.id.to_string(),
            shared_node_id: id_string(n.shared_node_id),
            role: n.role.clone(),
            name: n.name.clone(),
            base_url: n.base_url.clone(),
            contact: n.contact.clone(),
            status: n.status.clone(),
            status_reason: n.status_reason.clone(),
            peer_kind: n.peer_kind.clone(),
            handshake_requested_at: rfc3339(&n.handshake_requested_at),
            handshake_source_addr: n.handshake_source_addr.clone(),
            peer_token_fingerprint: n.peer_token_fingerprint.clone(),
            structure_status: n.structure_status.clone(),
            structure_synced_at: rfc3339(&n.structure_synced_at),
            structure_error: n.structure_error.clone(),
            data_status: n.data_status.clone(),
            data_synced_at: rfc3339(&n.data_synced_at),
            data_error: n.data_error.clone(),
            paused: n.paused,
            created_at: rfc3339(&n.created_at),
            updated_at: rfc3339(&n.updated_at),
            deleted_at: rfc3339(&n.deleted_at),
            live: live::LiveJson::of(&n.live),
        }
    }
}

pub(super) fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdminTokenJson {
    id: String,
    name: String,
    kind: &'static str,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    /// active | expired | revoked
    state: &'static str,
}

fn admin_token_json(t: &crate::domain::AdminToken) -> AdminTokenJson {
    let now = crate::domain::now();
    let time = |t: crate::domain::Timestamp| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    AdminTokenJson {
        id: t.id.0.to_string(),
        name: t.name.clone(),
        kind: t.kind.as_str(),
        created_at: time(t.created_at),
        expires_at: t.expires_at.map(time),
        revoked_at: t.revoked_at.map(time),
        state: t.state(now),
    }
}

/// `token list`: a table, or a JSON list.
pub fn admin_tokens(json: bool, tokens: &[crate::domain::AdminToken]) {
    let rows: Vec<AdminTokenJson> = tokens.iter().map(admin_token_json).collect();
    if json {
        return print_json(&rows);
    }
    table(
        &["ID", "NAME", "KIND", "CREATED", "EXPIRES", "STATE"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.kind.to_owned(),
                    r.created_at.clone(),
                    r.expires_at.clone().unwrap_or_else(|| "never".into()),
                    r.state.to_owned(),
                ]
            })
            .collect::<Vec<_>>(),
    );
}

/// `token revoke`: the token as it is now.
pub fn admin_token_revoked(json: bool, token: &crate::domain::AdminToken) {
    let row = admin_token_json(token);
    if json {
        return print_json(&row);
    }
    println!("admin token {} (`{}`) is revoked", row.id, row.name);
}

/// Prints a JSON value, pretty.
pub fn print_json_value(value: &serde_json::Value) {
    print_json(value);
}

/// Prints rows as left-aligned columns under a header.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub(super) fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

pub fn nodes(json: bool, nodes: &[v1::Node]) {
    if json {
        let rows: Vec<NodeJson> = nodes.iter().map(NodeJson::from).collect();
        print_json(&rows);
        return;
    }
    if nodes.is_empty() {
        println!("no nodes");
        return;
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                or_dash(&n.name),
                n.status.clone(),
                or_dash(&n.base_url),
                or_dash(&n.structure_status),
                or_dash(&n.data_status),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "STATUS", "BASE URL", "STRUCTURE", "DATA"],
        &rows,
    );
}

pub fn node(json: bool, node: &v1::Node) {
    let view = NodeJson::from(node);
    if json {
        print_json(&view);
        return;
    }
    let fields: Vec<(&str, String)> = vec![
        ("id", view.id),
        ("name", or_dash(&view.name)),
        ("role", view.role),
        ("status", view.status),
        ("status reason", or_dash(&view.status_reason)),
        ("base url", or_dash(&view.base_url)),
        ("contact", or_dash(&view.contact)),
        (
            "shared node id",
            view.shared_node_id.unwrap_or_else(|| "-".into()),
        ),
        ("peer kind", view.peer_kind),
        (
            "handshake requested",
            view.handshake_requested_at.unwrap_or_else(|| "-".into()),
        ),
        ("handshake from", or_dash(&view.handshake_source_addr)),
        ("peer token", or_dash(&view.peer_token_fingerprint)),
        ("structure", or_dash(&view.structure_status)),
        (
            "structure synced",
            view.structure_synced_at.unwrap_or_else(|| "-".into()),
        ),
        ("structure error", or_dash(&view.structure_error)),
        ("data", or_dash(&view.data_status)),
        (
            "data synced",
            view.data_synced_at.unwrap_or_else(|| "-".into()),
        ),
        ("data error", or_dash(&view.data_error)),
        ("paused", view.paused.to_string()),
        ("live changes", view.live.human()),
        ("created", view.created_at.unwrap_or_else(|| "-".into())),
        ("updated", view.updated_at.unwrap_or_else(|| "-".into())),
        ("deleted", view.deleted_at.unwrap_or_else(|| "-".into())),
    ];
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{key:<width$}  {value}");
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MigrationJson {
    version: i64,
    description: String,
}

pub fn migrations(json: bool, applied_now: &[AppliedMigration], total: usize) {
    if json {
        let rows: Vec<MigrationJson> = applied_now
            .iter()
            .map(|m| MigrationJson {
                version: m.version,
                description: m.description.clone(),
            })
            .collect();
        print_json(&rows);
        return;
    }
    for m in applied_now {
        println!("applied {:04} {}", m.version, m.description);
    }
    println!("database is up to date ({total} migrations applied)");
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeWithUriJson {
    #[serde(flatten)]
    node: NodeJson,
    node_uri: String,
    node_uri_expires_at: Option<String>,
}

/// A node and the node URI just generated for it.
pub fn node_with_uri(json: bool, created: &v1::NodeWithUri, what: &str) {
    let Some(node) = &created.node else { return };
    let expires = rfc3339(&created.node_uri_expires_at);
    if json {
        print_json(&NodeWithUriJson {
            node: NodeJson::from(node),
            node_uri: created.node_uri.clone(),
            node_uri_expires_at: expires,
        });
        return;
    }
    println!("node {} {what} ({})", node.id, node.status);
    println!(
        "node URI, a secret valid until {}: give it to the peer's admin over a secure channel",
        expires.unwrap_or_else(|| "-".into())
    );
    println!("{}", created.node_uri);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvitedJson {
    #[serde(flatten)]
    node: NodeJson,
    sent_to: String,
    node_uri_expires_at: Option<String>,
}

/// A node whose new node URI was emailed.
pub fn invited(json: bool, invited: &v1::InviteNodeResponse) {
    let Some(node) = &invited.node else { return };
    let expires = rfc3339(&invited.node_uri_expires_at);
    if json {
        print_json(&InvitedJson {
            node: NodeJson::from(node),
            sent_to: invited.sent_to.clone(),
            node_uri_expires_at: expires,
        });
        return;
    }
    println!(
        "sent a new node URI for node {} to {} (valid until {}); when the peer asks to pair, approve with `fedsync node confirm {}`",
        node.id,
        invited.sent_to,
        expires.unwrap_or_else(|| "-".into()),
        node.id
    );
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AddedNodeJson {
    #[serde(flatten)]
    node: NodeJson,
    readded: bool,
}

/// A node registered from a node URI.
pub fn added_node(json: bool, added: &v1::AddNodeFromUriResponse) {
    let Some(node) = &added.node else { return };
    if json {
        print_json(&AddedNodeJson {
            node: NodeJson::from(node),
            readded: added.readded,
        });
        return;
    }
    let verb = if added.readded {
        "reset for re-pairing"
    } else {
        "added"
    };
    println!(
        "node {} {verb}: `{}` at {}",
        node.id, node.name, node.base_url
    );
    println!(
        "the inviter's node id is {}; check the host and this id with its admin, then run `fedsync node pair {}`",
        node.shared_node_id, node.id
    );
}

/// A node after an action, with what happens next.
pub fn node_after(json: bool, node: &v1::Node, action: &str) {
    if json {
        print_json(&NodeJson::from(node));
        return;
    }
    match action {
        "pair" if node.peer_kind == "corteza" => println!(
            "handshake request accepted by {}; node {} is {}: the peer's admin now confirms it in Corteza (Admin > Federation, or `POST /federation/nodes/{}/handshake-confirm`)",
            node.base_url, node.id, node.status, node.shared_node_id
        ),
        "pair" => println!(
            "handshake request accepted by {}; node {} is {}: the peer's admin now runs `fedsync node confirm {}`",
            node.base_url, node.id, node.status, node.shared_node_id
        ),
        "confirm" => println!(
            "node {} is {} with {} ({})",
            node.id, node.status, node.name, node.base_url
        ),
        "refuse" => println!(
            "handshake request of node {} refused; it is {}: {}",
            node.id, node.status, node.status_reason
        ),
        "rm" => println!(
            "node {} removed; the tokens it held from us are revoked",
            node.id
        ),
        _ => println!("node {} updated", node.id),
    }
}

#[derive(Serialize)]
struct CheckJson {
    ok: bool,
    message: String,
}

pub fn check(json: bool, check: &v1::CheckNodeResponse) {
    if json {
        print_json(&CheckJson {
            ok: check.ok,
            message: check.message.clone(),
        });
    } else if check.ok {
        println!("ok: {}", check.message);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditJson {
    id: String,
    at: Option<String>,
    event: String,
    result: String,
    node_id: Option<String>,
    actor: String,
    token_id: Option<String>,
    source_addr: String,
    reason: String,
    detail: serde_json::Value,
}

pub fn audit(json: bool, events: &[v1::AuditEvent]) {
    let rows: Vec<AuditJson> = events
        .iter()
        .map(|e| AuditJson {
            id: e.id.to_string(),
            at: rfc3339(&e.at),
            event: e.event.clone(),
            result: e.result.clone(),
            node_id: id_string(e.node_id),
            actor: e.actor.clone(),
            token_id: id_string(e.token_id),
            source_addr: e.source_addr.clone(),
            reason: e.reason.clone(),
            detail: serde_json::from_str(&e.detail_json).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    if json {
        print_json(&rows);
        return;
    }
    if rows.is_empty() {
        println!("no audit events");
        return;
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|e| {
            vec![
                e.at.clone().unwrap_or_default(),
                e.event.clone(),
                e.result.clone(),
                e.node_id.clone().unwrap_or_else(|| "-".into()),
                or_dash(&e.actor),
                or_dash(&e.source_addr),
                or_dash(&e.reason),
            ]
        })
        .collect();
    table(
        &["AT", "EVENT", "RESULT", "NODE", "ACTOR", "FROM", "REASON"],
        &table_rows,
    );
}

mod catalog;
mod jobs;
mod live;
mod record;
mod status;
pub use catalog::*;
pub use jobs::*;
pub use record::*;
pub use status::*;
