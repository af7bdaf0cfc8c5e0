//! Store-side credential commands: `fedsync token admin|list|revoke` and
//! `fedsync ui` (a one-time login link to the web console). They work on
//! the store directly, beside a live daemon or not.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, output};
use crate::config::Config;
use crate::daemon;
use crate::daemon::keys::ADMIN_ADDR_FILE;
use crate::domain::AdminTokenKind;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an admin token and print it alone on stdout.
    Admin {
        /// Who the token is for.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Lifetime, e.g. 1h, 24h, 30d; `never` for no expiry.
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Ttl,
        /// A token that may only read.
        #[arg(long)]
        readonly: bool,
    },
    /// The registered admin tokens: id, name, kind, created, expires, state.
    List,
    /// Revoke an admin token at once (every daemon on this store refuses it).
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// A read-only session: every page, no change.
    #[arg(long)]
    pub readonly: bool,
    /// How long the link may be opened, e.g. 5m (at most 1h). It works once.
    #[arg(long, default_value = "5m", value_parser = parse_ttl)]
    pub ttl: Ttl,
}

/// A token lifetime; `None` never expires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ttl(pub Option<Duration>);

fn parse_ttl(text: &str) -> Result<Ttl, String> {
    if text == "never" {
        return Ok(Ttl(None));
    }
    let ttl = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    if ttl.is_zero() {
        return Err("a lifetime must be positive (or `never`)".into());
    }
    Ok(Ttl(Some(ttl)))
}

/// `fedsync token ...`.
pub(super) async fn token(
    global: &GlobalArgs,
    config: &Config,
    command: &TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Admin {
            name,
            ttl,
            readonly,
        } => {
            let token = daemon::mint_admin_token(config, name, ttl.0, kind(*readonly)).await?;
            println!("{token}");
        }
        TokenCommand::List => {
            let tokens = daemon::list_admin_tokens(config).await?;
            output::admin_tokens(global.json, &tokens);
        }
        TokenCommand::Revoke { id } => {
            let token = daemon::revoke_admin_token(config, id).await?;
            output::admin_token_revoked(global.json, &token);
        }
    }
    Ok(())
}

fn kind(readonly: bool) -> AdminTokenKind {
    if readonly {
        AdminTokenKind::ReadOnly
    } else {
        AdminTokenKind::Admin
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginLink {
    url: String,
    expires_at: String,
}

/// `fedsync ui`: a login link on `admin.public_url`, else on the address
/// the running daemon recorded (else `admin.listen`).
pub(super) async fn ui(global: &GlobalArgs, config: &Config, args: &UiArgs) -> anyhow::Result<()> {
    let Some(ttl) = args.ttl.0 else {
        anyhow::bail!("--ttl must be a duration (at most 1h): a login link is for opening now");
    };
    let minted = daemon::mint_console_login(config, kind(args.readonly), ttl).await?;
    let origin = console_origin(global, config);
    let link = LoginLink {
        url: format!("{origin}/ui/login?token={}", minted.token),
        expires_at: minted
            .registered
            .expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    };
    if global.json {
        output::print_json(&link);
    } else {
        println!("{}", link.url);
        eprintln!(
            "open it within {} (until {}); it works once{}",
            humantime::format_duration(ttl),
            link.expires_at,
            if args.readonly {
                ", for a read-only session"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn console_origin(global: &GlobalArgs, config: &Config) -> String {
    let public = config.admin.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return public.to_owned();
    }
    let addr = global.admin_addr.clone().or_else(|| {
        std::fs::read_to_string(config.data_dir().join(ADMIN_ADDR_FILE))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    let addr = addr.unwrap_or_else(|| config.admin.listen.to_string());
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr
    } else {
        format!("http://{addr}")
    }
}
