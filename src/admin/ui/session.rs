//! Console sessions: signing in (a one-time login link from `fedsync ui`,
//! or a pasted admin token), the session cookie, the checks in front of
//! every page and action, and signing out.
//!
//! The cookie holds a registered credential of audience `ConsoleSession`
//! (`HttpOnly`, `SameSite=Strict`, `Path=/ui/`, `Secure` over https): gRPC
//! and REST refuse it, and it is checked like their tokens (signature,
//! expiry, registration, not revoked) on every request. A POST passes only
//! from the console's own origin, with the session's CSRF token (an HMAC of
//! the session id under the node's key), and from a session that may write
//! (signing out excepted). No credential is ever logged.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use maud::html;
use serde::Deserialize;

use super::errors::UiError;
use super::form::{FormData, MAX_FORM_BYTES};
use super::layout;
use crate::admin::auth::AdminIdentity;
use crate::admin::server::AdminState;
use crate::crypto::{Audience, SigningKey, constant_time_eq};
use crate::domain::{Actor, AdminTokenKind, TokenId};
use crate::sync::admin_tokens::Minted;

pub const COOKIE_NAME: &str = "fedsync_console";
const CSRF_PURPOSE: &str = "console csrf";

/// The signed-in caller of a console request.
#[derive(Debug, Clone)]
pub struct Session {
    pub identity: AdminIdentity,
    /// The token forms carry back.
    pub csrf: String,
}

impl Session {
    pub fn can_write(&self) -> bool {
        self.identity.kind == AdminTokenKind::Admin
    }

    /// The caller as the services record it.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.identity.name.clone(),
            token_id: Some(self.identity.token_id),
            source_addr: self.identity.source_addr.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Session, UiError> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| UiError::new(StatusCode::UNAUTHORIZED, "not signed in"))
    }
}

/// The client's address, as audit events record it.
pub struct Source(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Source, Self::Rejection> {
        Ok(Source(source_addr(&parts.extensions)))
    }
}

fn source_addr(extensions: &http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default()
}

/// The CSRF token of a session: bound to it, unguessable without the key.
pub fn csrf_token(key: &SigningKey, session: TokenId) -> String {
    let sealed = crate::crypto::mac::seal(key, CSRF_PURPOSE, session.to_string().as_bytes());
    sealed
        .split_once('.')
        .map(|(_, tag)| tag.to_owned())
        .unwrap_or(sealed)
}

/// In front of every page and action: a live session; for a POST, the
/// same origin, the CSRF token and a session that may write.
pub async fn require_session(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return UiError::new(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST").into_response();
    }
    let registered = match cookie(request.headers()) {
        Some(token) => state
            .tokens
            .authenticate(token, Audience::ConsoleSession)
            .await
            .ok(),
        None => None,
    };
    let Some(registered) = registered else {
        return if method == Method::POST {
            UiError::new(
                StatusCode::UNAUTHORIZED,
                "not signed in (or the session ended): sign in again, then repeat the action",
            )
            .into_response()
        } else {
            Redirect::to("/ui/login").into_response()
        };
    };
    let session = Session {
        csrf: csrf_token(&state.signing_key, registered.id),
        identity: AdminIdentity {
            token_id: registered.id,
            name: registered.name,
            kind: registered.kind,
            source_addr: source_addr(request.extensions()),
        },
    };
    let mut request = request;
    if method == Method::POST {
        request = match checked_post(&state, &session, request).await {
            Ok(request) => request,
            Err(refusal) => return refusal.into_response(),
        };
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// A POST passes with the same origin, the session's CSRF token (a form
/// field, or `X-CSRF-Token` for the page's script) and, but for signing
/// out, a session that may write. Its form is parsed for the handler.
async fn checked_post(
    state: &AdminState,
    session: &Session,
    request: Request,
) -> Result<Request, UiError> {
    same_origin(&state.console, request.headers())?;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        FormData::parse(&bytes)
    } else {
        FormData::default()
    };
    let presented = match parts.headers.get("x-csrf-token") {
        Some(header) => header.to_str().unwrap_or("").to_owned(),
        None => form.get("csrf").to_owned(),
    };
    if !constant_time_eq(presented.as_bytes(), session.csrf.as_bytes()) {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            "refused: the form's security token is missing or out of date; reload the page and try again",
        ));
    }
    if parts.uri.path() != "/ui/logout" && !session.can_write() {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            format!("admin token `{}` is read-only", session.identity.name),
        ));
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(form);
    Ok(request)
}

/// A state change must come from the console's own pages. The browser
/// says so in `Sec-Fetch-Site` (`same-origin`), and a real `Origin` must be
/// the console's (`admin.public_url` behind a proxy or tunnel, else the
/// address the browser asked for). Under `Referrer-Policy: no-referrer`
/// a form's `Origin` is `null`, so `Sec-Fetch-Site` then decides alone; a
/// request with neither is refused.
fn same_origin(settings: &super::ConsoleSettings, headers: &HeaderMap) -> Result<(), UiError> {
    let refuse = |why: String| UiError::new(StatusCode::FORBIDDEN, why);
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site.filter(|s| *s != "same-origin") {
        return Err(refuse(format!(
            "refused: a change must be made from the console's own pages, not from another site (Sec-Fetch-Site: {site})"
        )));
    }
    let expected = settings.public_origin.clone().or_else(|| {
        headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"))
    });
    let origin = headers
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null");
    match (origin, site) {
        (Some(origin), _) if Some(origin) != expected.as_deref() => Err(refuse(format!(
            "refused: the request came from {origin}, not from the console ({}); if the console is reached through a proxy or tunnel, set admin.public_url",
            expected.unwrap_or_default()
        ))),
        (Some(_), _) | (None, Some(_)) => Ok(()),
        (None, None) => Err(refuse(
            "refused: the request names no origin; changes are accepted only from the console's own pages".into(),
        )),
    }
}

/// The session cookie's value.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME && !value.is_empty()).then_some(value)
        })
}

fn set_cookie(state: &AdminState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.console.secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{COOKIE_NAME}={value}; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    out: Option<String>,
}

/// `GET /ui/login`: with `?token=` (a login link), signs in once;
/// otherwise the form to paste an admin token.
pub async fn login_page(
    State(state): State<AdminState>,
    Source(source): Source,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(secret) = query.token else {
        let message = query.out.is_some().then_some("Signed out.");
        return login_form(StatusCode::OK, message, None);
    };
    match state.tokens.open_session_from_link(&secret, &source).await {
        Ok(minted) => signed_in(&state, minted),
        Err(rejection) => login_form(
            StatusCode::UNAUTHORIZED,
            None,
            Some(&format!(
                "this login link cannot be used: {rejection}. A link works once and for a few minutes: run `fedsync ui` for a new one, or paste an admin token below"
            )),
        ),
    }
}

/// `POST /ui/login`: signs in with a pasted admin token (same origin only).
pub async fn login_with_token(
    State(state): State<AdminState>,
    Source(source): Source,
    request: Request,
) -> Response {
    if let Err(refusal) = same_origin(&state.console, request.headers()) {
        return refusal.into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await else {
        return UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large")
            .into_response();
    };
    let form = FormData::parse(&bytes);
    match state
        .tokens
        .open_session_from_token(form.get("token"), &source)
        .await
    {
        Ok(minted) => signed_in(&state, minted),
        Err(rejection) => login_form(
            StatusCode::UNAUTHORIZED,
            None,
            Some(&format!("admin token rejected: {rejection}")),
        ),
    }
}

/// Sets the cookie and moves on with a same-site navigation (a cookie
/// marked Strict is not sent on a redirect that a link from elsewhere
/// started), so the secret leaves the address bar.
fn signed_in(state: &AdminState, minted: Minted) -> Response {
    let max_age = minted
        .registered
        .expires_at
        .map_or(0, |e| (e - crate::domain::now()).num_seconds().max(0));
    let page = layout::page(
        "Signed in",
        None,
        html! {
            meta http-equiv="refresh" content="0; url=/ui/";
            h1 { "Signed in" }
            p { a href="/ui/" { "Continue to the console" } }
        },
    );
    let mut response = Html(page.into_string()).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(state, &minted.token, max_age));
    response
}

fn login_form(status: StatusCode, notice: Option<&str>, error: Option<&str>) -> Response {
    let page = layout::page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the fedsync console" }
            @if let Some(text) = notice { p.notice role="status" { (text) } }
            @if let Some(text) = error { p.error role="alert" { "error: " (text) } }
            p { "On the daemon's host, " code { "fedsync ui" } " prints a one-time login link. Or paste an admin token (" code { "fedsync token admin" } "; a read-only token gives a read-only session):" }
            form.card method="post" action="/ui/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    );
    (status, Html(page.into_string())).into_response()
}

/// `POST /ui/logout`: revokes the session and drops the cookie.
pub async fn logout(State(state): State<AdminState>, session: Session) -> Response {
    if let Err(error) = state
        .tokens
        .revoke(&session.actor(), session.identity.token_id)
        .await
    {
        return UiError::from(error).into_response();
    }
    let mut response = Redirect::to("/ui/login?out=1").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(&state, "", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::ui::ConsoleSettings;

    fn check(public_url: &str, headers: &[(&'static str, &str)], passes: bool) {
        let mut map = HeaderMap::new();
        map.insert(HOST, HeaderValue::from_static("127.0.0.1:8091"));
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let verdict = same_origin(&ConsoleSettings::new(public_url), &map);
        assert_eq!(
            verdict.is_ok(),
            passes,
            "{public_url:?} {headers:?}: {verdict:?}"
        );
    }

    #[test]
    fn only_the_consoles_own_pages_may_post() {
        let ours = ("origin", "http://127.0.0.1:8091");
        let same = ("sec-fetch-site", "same-origin");
        check("", &[ours, same], true);
        check("", &[ours], true);
        // A form under Referrer-Policy: no-referrer sends Origin: null.
        check("", &[("origin", "null"), same], true);
        check("", &[same], true);
        check("", &[], false);
        check("", &[("origin", "null")], false);
        check("", &[("origin", "http://evil.example"), same], false);
        check("", &[ours, ("sec-fetch-site", "same-site")], false);
        check("", &[ours, ("sec-fetch-site", "cross-site")], false);
        check("", &[ours, ("sec-fetch-site", "none")], false);
        // Behind a proxy, the public origin is the console's, not the Host.
        let proxy = "https://fedsync-admin.example.com";
        check(proxy, &[("origin", proxy), same], true);
        check(proxy, &[ours], false);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; fedsync_console=abc.def; b=2"),
        );
        assert_eq!(cookie(&headers), Some("abc.def"));
        headers.insert(COOKIE, HeaderValue::from_static("fedsync_console=; x=1"));
        assert_eq!(cookie(&headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("xfedsync_console=abc"));
        assert_eq!(cookie(&headers), None);
    }
}
