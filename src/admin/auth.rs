//! Admin authentication: every admin RPC carries `authorization: Bearer
//! <admin JWT>`, verified on each request (signature, issuer, audience,
//! expiry) and checked against the registered, unrevoked `jti` in the store.
//! gRPC health and reflection stay open.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::AUTHORIZATION;
use tonic::Status;

use super::server::AdminState;
use crate::crypto::{TokenRejection, parse_bearer, verify_admin_token};
use crate::domain::{self, AdminTokenKind, AuditEvent, AuditEventId, AuditResult, TokenId};
use crate::telemetry::ReasonLabels;

/// gRPC paths that need no credential.
const OPEN_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Who is calling, attached to the request of every authenticated RPC.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminIdentity {
    pub token_id: TokenId,
    pub name: String,
    pub kind: AdminTokenKind,
    pub source_addr: String,
}

impl AdminIdentity {
    /// Refuses read-only tokens on operations that change state.
    pub fn require_write(&self) -> Result<(), Status> {
        match self.kind {
            AdminTokenKind::Admin => Ok(()),
            AdminTokenKind::ReadOnly => Err(Status::permission_denied(format!(
                "admin token `{}` is read-only",
                self.name
            ))),
        }
    }
}

/// Axum middleware in front of the gRPC services.
pub async fn require_admin(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
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
        Err(rejection) => {
            Status::unauthenticated(format!("admin token rejected: {rejection}")).into_http()
        }
    }
}

/// Checks the admin token of a request (gRPC or REST); a refusal is
/// counted, logged and audited here.
pub(crate) async fn authenticate_request(
    state: &AdminState,
    headers: &http::HeaderMap,
    source_addr: &str,
    path: &str,
) -> Result<AdminIdentity, TokenRejection> {
    match authenticate(state, headers).await {
        Ok(mut identity) => {
            identity.source_addr = source_addr.to_owned();
            Ok(identity)
        }
        Err(rejection) => {
            state
                .metrics
                .admin_auth_failures
                .get_or_create(&ReasonLabels {
                    reason: rejection.code(),
                })
                .inc();
            tracing::warn!(reason = rejection.code(), source_addr = %source_addr, path = %path, "admin request refused");
            let event = AuditEvent {
                id: AuditEventId(state.ids.next_id()),
                at: domain::now(),
                event: "admin.auth_failed".to_owned(),
                result: AuditResult::Refused,
                node_id: None,
                actor: String::new(),
                token_id: None,
                source_addr: source_addr.to_owned(),
                reason: rejection.code().to_owned(),
                detail: serde_json::json!({ "path": path }).to_string(),
            };
            if let Err(error) = state.store.append_audit(&event).await {
                tracing::error!(error = %error, "cannot write audit event");
            }
            Err(rejection)
        }
    }
}

async fn authenticate(
    state: &AdminState,
    headers: &http::HeaderMap,
) -> Result<AdminIdentity, TokenRejection> {
    let token = bearer_token(headers)?;
    let now = domain::now();
    let claims = verify_admin_token(&state.signing_key, token, now)?;
    let registered = state
        .store
        .get_admin_token(claims.id)
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "cannot look up admin token");
            TokenRejection::UnknownOrRevoked
        })?
        .filter(|t| t.is_active(now))
        .ok_or(TokenRejection::UnknownOrRevoked)?;
    Ok(AdminIdentity {
        token_id: registered.id,
        name: registered.name,
        kind: registered.kind,
        source_addr: String::new(),
    })
}

/// The token of exactly one `authorization: Bearer <token>` header.
fn bearer_token(headers: &http::HeaderMap) -> Result<&str, TokenRejection> {
    let values: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    parse_bearer(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[&str], expected: Result<&str, TokenRejection>) {
        let mut headers = http::HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, http::HeaderValue::from_str(v).unwrap());
        }
        assert_eq!(bearer_token(&headers), expected, "{values:?}");
    }

    #[test]
    fn bearer_parsing_is_strict() {
        check(&["Bearer abc.def.ghi"], Ok("abc.def.ghi"));
        check(&[], Err(TokenRejection::Missing));
        check(&["bearer abc"], Err(TokenRejection::MalformedHeader));
        check(&["Bearer  abc"], Err(TokenRejection::MalformedHeader));
        check(&["Bearer abc "], Err(TokenRejection::MalformedHeader));
        check(&["Bearer "], Err(TokenRejection::MalformedHeader));
        check(
            &["Basic YWJjOmRlZg=="],
            Err(TokenRejection::MalformedHeader),
        );
        check(
            &["Bearer a", "Bearer b"],
            Err(TokenRejection::MalformedHeader),
        );
    }
}
