//! The web console: HTML pages under `/ui/` on the admin listener, a new
//! edge over the same services as gRPC, REST and the CLI.
//!
//! Invariants:
//! - No logic of its own: a page reads through the services and the store
//!   reads gRPC uses, and every action calls the same service method as
//!   the gRPC handler of that action (pairing, catalog, scheduler, admin
//!   tokens, `sync now`). Errors are the services' own texts, the ones the
//!   CLI prints.
//! - The session cookie is a registered admin credential whose audience
//!   (`crypto::Audience::ConsoleSession`) gRPC and REST refuse, and the
//!   console accepts no other credential: the cookie opens `/ui/` only.
//! - Every state change is a POST that passes `session::require_session`:
//!   a live session that may write, a same-origin request (`Origin`,
//!   `Sec-Fetch-Site`), and the session's CSRF token. Every answer carries
//!   a strict Content-Security-Policy (no inline script), `X-Frame-Options:
//!   DENY` and `Referrer-Policy: no-referrer` (`headers.rs`).
//! - Pages are maud templates: checked at compile time, every value
//!   escaped (peer-supplied names included); nothing here writes
//!   `PreEscaped` but the fixed asset links.

mod assets;
mod audit;
mod catalog;
mod errors;
mod form;
mod headers;
mod layout;
mod node;
mod node_actions;
mod overview;
mod peers;
mod progress;
mod records;
mod session;
mod tokens;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Redirect;
use axum::routing::{get, post};

use super::server::AdminState;

/// The console's settings (from `admin.public_url`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// The origin browsers reach the console on, when it is not the
    /// listener's own address (an SSH tunnel, a TLS reverse proxy).
    pub public_origin: Option<String>,
}

impl ConsoleSettings {
    /// From `admin.public_url` (validated by config; empty: none).
    pub fn new(public_url: &str) -> ConsoleSettings {
        let public_origin = url::Url::parse(public_url)
            .ok()
            .map(|u| u.origin().ascii_serialization());
        ConsoleSettings { public_origin }
    }

    /// The cookie is `Secure` when browsers reach the console over https.
    pub fn secure_cookie(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }

    /// The console's origin: the public one, else the listener's address.
    pub fn origin(&self, listener: std::net::SocketAddr) -> String {
        self.public_origin
            .clone()
            .unwrap_or_else(|| format!("http://{listener}"))
    }
}

/// The console's routes; the pages behind a session, the login page and
/// assets open.
pub fn router(state: AdminState) -> Router {
    let pages = Router::new()
        .route("/ui/", get(overview::page))
        .route("/ui/nodes/{id}", get(node::page))
        .route("/ui/nodes/{id}/uri", post(node::new_uri))
        .route("/ui/nodes/{id}/invite", post(node::invite))
        .route("/ui/nodes/{id}/pair", post(node::pair))
        .route("/ui/nodes/{id}/confirm", post(node::confirm))
        .route("/ui/nodes/{id}/refuse", post(node::refuse))
        .route("/ui/nodes/{id}/check", post(node::check))
        .route("/ui/nodes/{id}/schedule", post(node::schedule))
        .route("/ui/nodes/{id}/pause", post(node::pause))
        .route("/ui/nodes/{id}/resume", post(node::resume))
        .route(
            "/ui/nodes/{id}/remove",
            get(node::confirm_remove).post(node::remove),
        )
        .route("/ui/nodes/{id}/sync", post(progress::start))
        .route("/ui/nodes/{id}/sync/follow", post(progress::follow))
        .route(
            "/ui/nodes/{id}/exposures",
            get(catalog::exposures).post(catalog::expose),
        )
        .route(
            "/ui/nodes/{id}/exposures/{module}/remove",
            post(catalog::unexpose),
        )
        .route("/ui/nodes/{id}/shared", get(catalog::shared_list))
        .route(
            "/ui/nodes/{id}/shared/{shared}",
            get(catalog::mapping_page).post(catalog::set_mapping),
        )
        .route("/ui/nodes/{id}/shared/{shared}/unmap", post(catalog::unmap))
        .route("/ui/peers/new", get(peers::page))
        .route("/ui/peers", post(peers::create))
        .route("/ui/peers/uri", post(peers::add_uri))
        .route("/ui/modules", get(records::modules))
        .route("/ui/modules/{module}", get(records::browse))
        .route("/ui/audit", get(audit::page))
        .route("/ui/tokens", get(tokens::page))
        .route("/ui/tokens/{id}/revoke", post(tokens::revoke))
        .route("/ui/logout", post(session::logout))
        .layer(from_fn_with_state(state.clone(), session::require_session));
    let open = Router::new()
        .route(
            "/ui/login",
            get(session::login_page).post(session::login_with_token),
        )
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }));
    pages
        .merge(open)
        .layer(from_fn(headers::secure_headers))
        .with_state(state)
}
