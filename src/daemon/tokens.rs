//! Admin tokens kept by the store: minted, listed and revoked by the
//! store-side commands (`fedsync token ...`, beside a live daemon or not),
//! and the local CLI's own token in the data directory.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::instance::IdLease;
use super::{keys, load_keys, open_migrated_store};
use crate::config::Config;
use crate::crypto::{
    AdminTokenClaims, SigningKey, mint_admin_token as sign_admin_token, verify_admin_token,
};
use crate::domain::{self, AdminToken, AdminTokenKind, IdGenerator, TokenId};
use crate::store::Store;

/// Mints and registers an admin token; returns the bare JWT. Used by
/// `fedsync token admin`, which may run beside a live daemon.
pub async fn mint_admin_token(
    config: &Config,
    name: &str,
    ttl: Option<Duration>,
    kind: AdminTokenKind,
) -> anyhow::Result<String> {
    let (store, _) = open_migrated_store(config).await?;
    let keys = load_keys(config)?;
    let lease = IdLease::acquire(store.clone(), Duration::from_secs(60)).await?;
    let result = issue_admin_token(&*store, &keys.signing, &lease.ids(), name, ttl, kind).await;
    lease.release().await;
    store.close().await;
    result
}

/// The registered admin tokens (`fedsync token list`), oldest first.
pub async fn list_admin_tokens(config: &Config) -> anyhow::Result<Vec<AdminToken>> {
    let (store, _) = open_migrated_store(config).await?;
    let tokens = store.list_admin_tokens().await;
    store.close().await;
    Ok(tokens?)
}

/// Revokes an admin token at once (`fedsync token revoke ID`): every
/// daemon on this store refuses it from its next request. Audited.
pub async fn revoke_admin_token(config: &Config, id: &str) -> anyhow::Result<AdminToken> {
    let token_id = id
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(crate::domain::Id::new)
        .map(TokenId)
        .with_context(|| format!("`{id}` is not a token id (see `fedsync token list`)"))?;
    let (store, _) = open_migrated_store(config).await?;
    let result = async {
        let token = store
            .get_admin_token(token_id)
            .await?
            .with_context(|| format!("no admin token has the id {id}"))?;
        let now = domain::now();
        store.revoke_admin_token(token_id, now).await?;
        let lease = IdLease::acquire(store.clone(), Duration::from_secs(60)).await?;
        let event = crate::domain::AuditEvent {
            id: crate::domain::AuditEventId(lease.ids().next_id()),
            at: now,
            event: "admin_token.revoked".to_owned(),
            result: crate::domain::AuditResult::Ok,
            node_id: None,
            actor: "local cli".to_owned(),
            token_id: Some(token_id),
            source_addr: String::new(),
            reason: String::new(),
            detail: serde_json::json!({ "name": token.name }).to_string(),
        };
        let appended = store.append_audit(&event).await;
        lease.release().await;
        appended?;
        Ok(AdminToken {
            revoked_at: token.revoked_at.or(Some(now)),
            ..token
        })
    }
    .await;
    store.close().await;
    result
}

pub(super) async fn issue_admin_token(
    store: &dyn Store,
    key: &SigningKey,
    ids: &IdGenerator,
    name: &str,
    ttl: Option<Duration>,
    kind: AdminTokenKind,
) -> anyhow::Result<String> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        bail!("token name must be 1 to 128 printable characters");
    }
    let now = domain::now();
    let expires_at = match ttl {
        Some(ttl) => Some(now + chrono::Duration::from_std(ttl).context("--ttl is too long")?),
        None => None,
    };
    let claims = AdminTokenClaims {
        id: TokenId(ids.next_id()),
        name: name.to_owned(),
        kind,
        issued_at: now,
        expires_at,
    };
    let token = sign_admin_token(key, &claims)?;
    store
        .insert_admin_token(&AdminToken {
            id: claims.id,
            name: claims.name,
            kind,
            created_at: now,
            expires_at,
            revoked_at: None,
        })
        .await
        .context("cannot register the admin token")?;
    Ok(token)
}

/// Makes sure `<data_dir>/admin.token` holds a registered admin token for the
/// local CLI, minting one on first start.
pub(super) async fn ensure_local_admin_token(
    store: &dyn Store,
    key: &SigningKey,
    ids: &IdGenerator,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let path = data_dir.join(keys::ADMIN_TOKEN_FILE);
    if let Some(text) = keys::read_private_file(&path)? {
        match verify_admin_token(key, text.trim(), domain::now()) {
            Ok(claims) => {
                match store.get_admin_token(claims.id).await? {
                    Some(registered) if registered.revoked_at.is_some() => {
                        tracing::warn!(path = %path.display(), "the local admin token was revoked; mint another with `fedsync token admin`");
                    }
                    Some(_) => {}
                    None => {
                        // A fresh database (e.g. a new PostgreSQL URL) with
                        // an existing data dir: register the token again.
                        store
                            .insert_admin_token(&AdminToken {
                                id: claims.id,
                                name: claims.name,
                                kind: claims.kind,
                                created_at: claims.issued_at,
                                expires_at: claims.expires_at,
                                revoked_at: None,
                            })
                            .await?;
                    }
                }
                return Ok(());
            }
            Err(rejection) => {
                tracing::warn!(path = %path.display(), reason = rejection.code(), "the local admin token does not verify with the signing key; minting a new one");
            }
        }
    }
    let token =
        issue_admin_token(store, key, ids, "local-admin", None, AdminTokenKind::Admin).await?;
    keys::replace_private_file(&path, token.as_bytes())?;
    tracing::info!(path = %path.display(), "wrote the local admin token");
    Ok(())
}
