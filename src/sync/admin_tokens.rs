//! Admin credentials as a service: list, mint, revoke, and the web
//! console's credentials (one-time login links exchanged for sessions).
//!
//! Every credential is a JWT signed with the node's key whose `jti` is a
//! row of `admin_tokens`; its audience says which door it opens
//! (`crypto::Audience`): gRPC and REST take `Admin` only, the console's
//! cookie `ConsoleSession` only. A credential passes only if it verifies
//! for its audience **and** its row is registered, unexpired and not
//! revoked. A login link is single use: it passes once, because using it
//! revokes its row in the same statement that checks it is live.
//! Tokens themselves are never stored or logged.

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::{AdminTokenClaims, Audience, CryptoError, SigningKey, TokenRejection};
use crate::domain::{
    self, Actor, AdminToken, AdminTokenKind, AuditResult, IdGenerator, Timestamp, TokenId,
};
use crate::store::{Store, StoreError};

/// How long a console session lasts at most.
pub const CONSOLE_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a login link lasts by default, and at most.
pub const CONSOLE_LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
pub const CONSOLE_LOGIN_MAX_TTL: Duration = Duration::from_secs(3600);
/// The names console credentials are registered under (`token list`).
pub const CONSOLE_LOGIN_NAME: &str = "web console login";
pub const CONSOLE_SESSION_PREFIX: &str = "web console session";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A credential just minted: the bearer secret (shown once) and its row.
pub struct Minted {
    pub token: String,
    pub registered: AdminToken,
}

/// Signs and registers a credential for `audience`.
pub async fn mint(
    store: &dyn Store,
    key: &SigningKey,
    ids: &IdGenerator,
    name: &str,
    kind: AdminTokenKind,
    expires_at: Option<Timestamp>,
    audience: Audience,
) -> Result<Minted, TokenError> {
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "token name must be 1 to 128 printable characters".into(),
        ));
    }
    let now = domain::now();
    let claims = AdminTokenClaims {
        id: TokenId(ids.next_id()),
        name: name.to_owned(),
        kind,
        issued_at: now,
        expires_at,
    };
    let token = crate::crypto::mint_token(key, &claims, audience)?;
    let registered = AdminToken {
        id: claims.id,
        name: claims.name,
        kind,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.insert_admin_token(&registered).await?;
    Ok(Minted { token, registered })
}

/// `now + ttl`, or an error naming the flag when it does not fit.
pub fn expiry(now: Timestamp, ttl: Duration) -> Result<Timestamp, TokenError> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| TokenError::Invalid("--ttl is too long".into()))
}

/// Revokes a token at once (audited); the token as it is now. Revoking a
/// revoked token changes nothing and is not an error.
pub async fn revoke(
    store: &dyn Store,
    ids: &IdGenerator,
    actor: &Actor,
    id: TokenId,
) -> Result<AdminToken, TokenError> {
    let token = store
        .get_admin_token(id)
        .await?
        .ok_or_else(|| TokenError::NotFound(format!("no admin token has the id {id}")))?;
    let now = domain::now();
    store.revoke_admin_token(id, now).await?;
    let event = super::audit::event(
        ids,
        actor,
        "admin_token.revoked",
        AuditResult::Ok,
        None,
        "",
        serde_json::json!({ "tokenId": id.to_string(), "name": token.name }),
    );
    store.append_audit(&event).await?;
    Ok(AdminToken {
        revoked_at: token.revoked_at.or(Some(now)),
        ..token
    })
}

/// The admin token service of a running daemon.
pub struct AdminTokens {
    store: Arc<dyn Store>,
    key: SigningKey,
    ids: Arc<IdGenerator>,
}

impl AdminTokens {
    pub fn new(store: Arc<dyn Store>, key: SigningKey, ids: Arc<IdGenerator>) -> AdminTokens {
        AdminTokens { store, key, ids }
    }

    /// Every registered credential, newest first.
    pub async fn list(&self) -> Result<Vec<AdminToken>, TokenError> {
        Ok(self.store.list_admin_tokens().await?)
    }

    pub async fn revoke(&self, actor: &Actor, id: TokenId) -> Result<AdminToken, TokenError> {
        revoke(&*self.store, &self.ids, actor, id).await
    }

    /// The registered row of a credential presented for `audience`:
    /// signature, issuer, audience, expiry, registration, not revoked.
    pub async fn authenticate(
        &self,
        token: &str,
        audience: Audience,
    ) -> Result<AdminToken, TokenRejection> {
        let now = domain::now();
        let claims = crate::crypto::verify_token(&self.key, token, now, audience)?;
        self.store
            .get_admin_token(claims.id)
            .await
            .map_err(|error| {
                tracing::error!(error = %error, "cannot look up admin token");
                TokenRejection::UnknownOrRevoked
            })?
            .filter(|t| t.is_active(now))
            .ok_or(TokenRejection::UnknownOrRevoked)
    }

    /// A one-time login link's secret for the console (`fedsync ui`).
    pub async fn console_login(
        &self,
        kind: AdminTokenKind,
        ttl: Duration,
    ) -> Result<Minted, TokenError> {
        if ttl.is_zero() || ttl > CONSOLE_LOGIN_MAX_TTL {
            return Err(TokenError::Invalid(
                "--ttl must be positive and at most 1h: a login link is for opening now".into(),
            ));
        }
        let expires_at = expiry(domain::now(), ttl)?;
        mint(
            &*self.store,
            &self.key,
            &self.ids,
            CONSOLE_LOGIN_NAME,
            kind,
            Some(expires_at),
            Audience::ConsoleLogin,
        )
        .await
    }

    /// Exchanges a login link's secret for a console session: the link
    /// passes once (its row is revoked as it is used), the session has the
    /// link's kind.
    pub async fn open_session_from_link(
        &self,
        secret: &str,
        source_addr: &str,
    ) -> Result<Minted, TokenRejection> {
        let login = self.authenticate(secret, Audience::ConsoleLogin).await?;
        let used = self
            .store
            .revoke_admin_token(login.id, domain::now())
            .await
            .map_err(|error| {
                tracing::error!(error = %error, "cannot use up a console login link");
                TokenRejection::UnknownOrRevoked
            })?;
        if !used {
            // Another request used it first.
            return Err(TokenRejection::UnknownOrRevoked);
        }
        self.open_session(&login, "login link", source_addr).await
    }

    /// A console session for a pasted admin token: the token's kind, and
    /// no longer than the token lives.
    pub async fn open_session_from_token(
        &self,
        token: &str,
        source_addr: &str,
    ) -> Result<Minted, TokenRejection> {
        let admin = self.authenticate(token, Audience::Admin).await?;
        self.open_session(&admin, &admin.name, source_addr).await
    }

    async fn open_session(
        &self,
        from: &AdminToken,
        who: &str,
        source_addr: &str,
    ) -> Result<Minted, TokenRejection> {
        let now = domain::now();
        let cap = expiry(now, CONSOLE_SESSION_TTL).map_err(|_| TokenRejection::Malformed)?;
        let expires_at = from.expires_at.map_or(cap, |e| e.min(cap));
        let name = format!("{CONSOLE_SESSION_PREFIX} ({who})");
        let name: String = name.chars().take(128).collect();
        let minted = mint(
            &*self.store,
            &self.key,
            &self.ids,
            &name,
            from.kind,
            Some(expires_at),
            Audience::ConsoleSession,
        )
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "cannot register a console session");
            TokenRejection::UnknownOrRevoked
        })?;
        let actor = Actor {
            name: minted.registered.name.clone(),
            token_id: Some(minted.registered.id),
            source_addr: source_addr.to_owned(),
        };
        let event = super::audit::event(
            &self.ids,
            &actor,
            "console.signed_in",
            AuditResult::Ok,
            None,
            "",
            serde_json::json!({ "from": from.id.to_string(), "kind": from.kind.as_str() }),
        );
        if let Err(error) = self.store.append_audit(&event).await {
            tracing::warn!(error = %error, "cannot record a console sign-in in the audit log");
        }
        Ok(minted)
    }
}
