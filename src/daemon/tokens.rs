//! Admin tokens kept by the store: minted, listed and revoked by the
//! store-side commands (`fedsync token ...`, beside a live daemon or not),
//! and the local CLI's own token in the data directory.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::instance::IdLease;
use super::{keys, load_keys, open_migrated_store};
use crate::config::Config;
use crate::crypto::{Audience, SigningKey, verify_admin_token};
use crate::domain::{self, AdminToken, AdminTokenKind, IdGenerator, TokenId};
use crate::store::Store;
use crate::sync::admin_tokens;

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
        let lease = IdLease::acquire(store.clone(), Duration::from_secs(60)).await?;
        let actor = domain::Actor {
            name: "local cli".to_owned(),
            token_id: None,
            source_addr: String::new(),
        };
        let revoked = admin_tokens::revoke(&*store, &lease.ids(), &actor, token_id).await;
        lease.release().await;
        Ok(revoked?)
    }
    .await;
    store.close().await;
    result
}

/// Mints a one-time login link for the web console (`fedsync ui`): its
/// secret and expiry, registered in the store beside a live daemon.
pub async fn mint_console_login(
    config: &Config,
    kind: AdminTokenKind,
    ttl: Duration,
) -> anyhow::Result<admin_tokens::Minted> {
    let (store, _) = open_migrated_store(config).await?;
    let keys = load_keys(config)?;
    let result = async {
        let lease = IdLease::acquire(store.clone(), Duration::from_secs(60)).await?;
        let service =
            admin_tokens::AdminTokens::new(store.clone(), keys.signing.clone(), lease.ids());
        let minted = service.console_login(kind, ttl).await;
        lease.release().await;
        Ok(minted?)
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
    let expires_at = match ttl {
        Some(ttl) => Some(admin_tokens::expiry(domain::now(), ttl)?),
        None => None,
    };
    match admin_tokens::mint(store, key, ids, name, kind, expires_at, Audience::Admin).await {
        Ok(minted) => Ok(minted.token),
        Err(invalid @ admin_tokens::TokenError::Invalid(_)) => Err(invalid.into()),
        Err(error) => Err(anyhow::Error::new(error).context("cannot register the admin token")),
    }
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
