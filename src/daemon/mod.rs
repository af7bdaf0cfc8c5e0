//! The composition root: the only place that names concrete types (store
//! engines), wires the layers together, and owns start-up and shutdown.
//!
//! Start-up: data dir, store (connect, migrate), keys, id instance lease,
//! local admin token, then both listeners are bound before either serves, and
//! READY goes to systemd. Shutdown (SIGTERM/SIGINT or `stop`): STOPPING,
//! health NOT_SERVING, servers stop accepting and finish in-flight requests
//! within `daemon.shutdown_grace`, the lease is released, the store closed.

mod instance;
pub mod keys;
mod notify;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adapters::{CortezaData, CortezaSettings, CortezaToken, EmbeddedData};
use crate::admin::node::NodeApi;
use crate::admin::proto::v1::node_service_server::NodeServiceServer;
use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::crypto::{
    AdminTokenClaims, EncryptionKey, SigningKey, mint_admin_token as sign_admin_token,
    verify_admin_token,
};
use crate::domain::{self, AdminToken, AdminTokenKind, IdGenerator, TokenId};
use crate::federation::client::{PeerClient, PeerClientConfig};
use crate::federation::server::{
    self as federation_server, FederationState, LimitSettings, Limits,
};
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{AppliedMigration, Store};
use crate::sync::catalog::Catalog;
use crate::sync::data::DataSync;
use crate::sync::records::RecordService;
use crate::sync::structure::StructureSync;
use crate::sync::{
    LocalData, LocalRecords, NoticeSettings, Notices, PairingService, PairingSettings,
};
use crate::telemetry::Metrics;
use instance::IdLease;

/// The node's keys.
#[derive(Clone, Debug)]
pub struct Keys {
    pub signing: SigningKey,
    pub encryption: EncryptionKey,
}

/// Opens the store named by the database URL (`sqlite://` or `postgres://`).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let url = url.expose();
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    let store: Arc<dyn Store> = match scheme {
        "sqlite" => Arc::new(
            SqliteStore::connect(
                url,
                &SqliteOptions {
                    max_connections: config.database.max_connections,
                    busy_timeout: config.database.busy_timeout,
                },
            )
            .await
            .context("cannot open the SQLite database")?,
        ),
        "postgres" | "postgresql" => Arc::new(
            PgStore::connect(
                url,
                &PgOptions {
                    max_connections: config.database.max_connections,
                    connect_timeout: config.database.connect_timeout,
                },
            )
            .await
            .context("cannot connect to PostgreSQL")?,
        ),
        other => bail!("config key `database.url`: unsupported scheme `{other}`"),
    };
    Ok(store)
}

/// Opens the store and applies pending migrations.
pub async fn open_migrated_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Vec<AppliedMigration>)> {
    let store = open_store(config).await?;
    let applied = store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    for step in &applied {
        tracing::info!(version = step.version, description = %step.description, "applied migration");
    }
    Ok((store, applied))
}

/// Loads (or creates on first start) the signing and encryption keys.
pub fn load_keys(config: &Config) -> anyhow::Result<Keys> {
    let data_dir = config.data_dir();
    keys::ensure_private_dir(&data_dir)?;
    Ok(Keys {
        signing: SigningKey(keys::load_or_create_key(
            &config.keys.signing_key,
            "keys.signing_key",
            &data_dir,
            "signing.key",
        )?),
        encryption: EncryptionKey(keys::load_or_create_key(
            &config.keys.encryption_key,
            "keys.encryption_key",
            &data_dir,
            "encryption.key",
        )?),
    })
}

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

async fn issue_admin_token(
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
async fn ensure_local_admin_token(
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

/// A daemon that is serving. Drop does not stop it; call `stop`.
pub struct RunningDaemon {
    pub federation_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub instance_no: u16,
    shutdown: CancellationToken,
    supervisor: JoinHandle<anyhow::Result<()>>,
    scheduler: Arc<crate::scheduler::Scheduler>,
}

impl RunningDaemon {
    /// A token that, when cancelled, starts a graceful shutdown; it is also
    /// cancelled when the daemon stops on its own (e.g. the lease was lost).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the daemon has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.supervisor
            .await
            .map_err(|e| anyhow!("daemon supervisor panicked: {e}"))?
    }

    /// Starts a graceful shutdown and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Starts the daemon: binds both listeners, returns once both serve.
pub async fn start(config: Config) -> anyhow::Result<RunningDaemon> {
    let federation_listener = TcpListener::bind(config.federation.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (federation.listen)",
                config.federation.listen
            )
        })?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin.listen)", config.admin.listen))?;
    start_with_listeners(config, federation_listener, admin_listener).await
}

/// Starts the daemon on listeners the caller bound (tests bind first so the
/// public URL can name the port).
pub async fn start_with_listeners(
    config: Config,
    federation_listener: TcpListener,
    admin_listener: TcpListener,
) -> anyhow::Result<RunningDaemon> {
    let data_dir = config.data_dir();
    keys::ensure_private_dir(&data_dir)?;
    let (store, _) = open_migrated_store(&config).await?;
    let lease = match IdLease::acquire(store.clone(), config.daemon.instance_lease).await {
        Ok(lease) => Arc::new(lease),
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    let listeners = (federation_listener, admin_listener);
    match launch(&config, &data_dir, store.clone(), lease.clone(), listeners).await {
        Ok(daemon) => Ok(daemon),
        Err(error) => {
            // Nothing half-started stays behind: the number goes back at once.
            lease.release().await;
            store.close().await;
            Err(error)
        }
    }
}

async fn launch(
    config: &Config,
    data_dir: &Path,
    store: Arc<dyn Store>,
    lease: Arc<IdLease>,
    (federation_listener, admin_listener): (TcpListener, TcpListener),
) -> anyhow::Result<RunningDaemon> {
    let keys = load_keys(config)?;
    let ids = lease.ids();
    ensure_local_admin_token(&*store, &keys.signing, &ids, data_dir).await?;

    let federation_addr = federation_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    keys::replace_public_file(
        &data_dir.join(keys::ADMIN_ADDR_FILE),
        &format!("{admin_addr}\n"),
    )?;

    let reclaimed =
        crate::sync::runs::reclaim_interrupted(&*store, lease.owner(), instance::owner_is_gone)
            .await?;
    if reclaimed > 0 {
        tracing::warn!(
            runs = reclaimed,
            "closed sync runs interrupted by a stopped daemon"
        );
    }

    let metrics = Metrics::new();
    let notices = Arc::new(notices(config, store.clone(), ids.clone(), lease.owner())?);
    let (pairing, peer) = pairing_service(config, store.clone(), &keys, ids.clone())?;
    let pairing = Arc::new(pairing.with_notices(notices.clone()));
    let (local, records) = local_data_plane(config, store.clone(), ids.clone())?;
    let catalog = Arc::new(Catalog::new(store.clone(), local.clone(), ids.clone()));
    let record_service = Arc::new(RecordService::new(
        local.clone(),
        records.clone(),
        ids.clone(),
    ));
    let data = Arc::new(DataSync::new(
        store.clone(),
        local,
        records.clone(),
        pairing.clone(),
        peer.clone(),
        ids.clone(),
        config.sync.data_page_size,
        lease.owner().to_owned(),
    ));
    let structure = Arc::new(
        StructureSync::new(
            store.clone(),
            pairing.clone(),
            peer.clone(),
            ids.clone(),
            config.sync.structure_page_size,
            lease.owner().to_owned(),
        )
        .with_notices(notices.clone()),
    );
    let settings =
        crate::scheduler::SchedulerSettings::from_config(&config.sync).map_err(|e| anyhow!(e))?;
    let scheduler = Arc::new(
        crate::scheduler::Scheduler::new(
            store.clone(),
            Arc::new(crate::scheduler::SyncJobs {
                structure: structure.clone(),
                data: data.clone(),
            }),
            ids.clone(),
            settings,
            lease.owner().to_owned(),
            crate::scheduler::Clock::start(),
        )
        .with_metrics(metrics.sync.clone())
        .with_notices(notices.clone()),
    );
    let federation_state = FederationState {
        store: store.clone(),
        pairing: pairing.clone(),
        records,
        reexport: config.sync.reexport,
        signing_key: keys.signing.clone(),
        public_base: if config.federation.public_url.is_empty() {
            "/federation".to_owned()
        } else {
            config.federation.public_url.clone()
        },
        metrics: metrics.clone(),
        limits: Arc::new(Limits::new(&LimitSettings {
            handshake_limit: config.federation.handshake_limit,
            handshake_window: config.federation.handshake_window,
            handshake_lockout_after: config.federation.handshake_lockout_after,
            handshake_lockout: config.federation.handshake_lockout,
            peer_requests_per_second: config.federation.peer_requests_per_second,
            peer_burst: config.federation.peer_burst,
            max_concurrent_requests: config.federation.max_concurrent_requests,
        })),
        listeners_bound: Arc::new(AtomicBool::new(false)),
        trusted_proxies: Arc::new(
            crate::domain::net::parse_ip_ranges(&config.federation.trusted_proxies)
                .map_err(|e| anyhow!("config key `federation.trusted_proxies`: {e}"))?,
        ),
    };
    let (admin_router, health) = admin::router(AdminState {
        store: store.clone(),
        pairing: pairing.clone(),
        catalog,
        structure,
        data,
        scheduler: scheduler.clone(),
        records: record_service,
        signing_key: keys.signing.clone(),
        metrics: metrics.clone(),
        ids: ids.clone(),
        notices: notices.clone(),
    })
    .await
    .map_err(|e| anyhow!(e))?;

    let shutdown = CancellationToken::new();
    let stop_serving = CancellationToken::new();
    let federation_router = federation_server::router(federation_state.clone());
    let federation_server = if config.federation.tls_cert.as_os_str().is_empty() {
        tokio::spawn(serve(
            federation_listener,
            federation_router,
            stop_serving.clone(),
        ))
    } else {
        let tls = tls::TlsConfig::load(&config.federation.tls_cert, &config.federation.tls_key)?;
        let listener = tls::TlsListener::new(federation_listener, tls, stop_serving.clone())?;
        tokio::spawn(serve_tls(listener, federation_router, stop_serving.clone()))
    };
    let admin_server = tokio::spawn(serve(admin_listener, admin_router, stop_serving.clone()));
    federation_state.mark_listeners_bound();
    let renewer = tokio::spawn(
        lease
            .clone()
            .keep_renewed(stop_serving.clone(), shutdown.clone()),
    );
    let dispatcher = tokio::spawn(scheduler.clone().run(stop_serving.clone()));
    let notifier = tokio::spawn(notices.run(stop_serving.clone()));

    tracing::info!(
        federation = %federation_addr,
        admin = %admin_addr,
        engine = store.engine().as_str(),
        instance = lease.instance_no(),
        data_dir = %data_dir.display(),
        "fedsync is serving"
    );

    let grace = config.daemon.shutdown_grace;
    let supervisor_shutdown = shutdown.clone();
    let supervisor = tokio::spawn(async move {
        supervisor_shutdown.cancelled().await;
        tracing::info!("shutting down");
        health.set_not_serving::<NodeServiceServer<NodeApi>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        stop_serving.cancel();
        let servers = async {
            let (f, a) = tokio::join!(federation_server, admin_server);
            for (name, result) in [("federation", f), ("admin", a)] {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(listener = name, error = %error, "listener failed")
                    }
                    Err(error) => {
                        tracing::error!(listener = name, error = %error, "listener task panicked")
                    }
                }
            }
        };
        if tokio::time::timeout(grace, servers).await.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "in-flight requests did not finish in time; cancelled"
            );
        }
        let _ = dispatcher.await;
        let _ = notifier.await;
        let _ = renewer.await;
        lease.release().await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    });

    Ok(RunningDaemon {
        federation_addr,
        admin_addr,
        data_dir: data_dir.to_owned(),
        instance_no: ids.instance_no(),
        shutdown,
        supervisor,
        scheduler,
    })
}

/// The notification service with the real SMTP and webhook sender.
fn notices(
    config: &Config,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    owner: &str,
) -> anyhow::Result<Notices> {
    use crate::adapters::notify::{Sender, SenderSettings, SmtpSecurity, SmtpSettings};
    let notify = &config.notify;
    let smtp = &notify.smtp;
    let sender = Sender::new(SenderSettings {
        smtp: (!smtp.host.is_empty()).then(|| SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port(),
            security: match smtp.security {
                crate::config::SmtpSecurity::Starttls => SmtpSecurity::Starttls,
                crate::config::SmtpSecurity::Tls => SmtpSecurity::Tls,
                crate::config::SmtpSecurity::None => SmtpSecurity::None,
            },
            credentials: (!smtp.username.is_empty()).then(|| {
                (
                    smtp.username.clone(),
                    zeroize::Zeroizing::new(smtp.password.expose().to_owned()),
                )
            }),
            from: smtp.from.clone(),
            ca_file: (!smtp.ca_file.as_os_str().is_empty()).then(|| smtp.ca_file.clone()),
        }),
        webhook_secret: zeroize::Zeroizing::new(notify.webhook_secret.expose().to_owned()),
        timeout: notify.timeout,
    })
    .map_err(|e| anyhow!(e))?;
    Ok(Notices::new(
        store,
        ids,
        Arc::new(sender),
        NoticeSettings {
            label: config.federation.label.clone(),
            admin_emails: notify.admin_emails(),
            webhook_urls: notify.webhook_urls(),
            failing_for: Some(notify.failing_for).filter(|d| !d.is_zero()),
            retry_base: notify.retry_base,
            retry_cap: notify.retry_cap,
            give_up_after: notify.give_up_after,
        },
        owner.to_owned(),
    ))
}

/// The pairing service with the real peer client.
fn pairing_service(
    config: &Config,
    store: Arc<dyn Store>,
    keys: &Keys,
    ids: Arc<IdGenerator>,
) -> anyhow::Result<(PairingService, Arc<PeerClient>)> {
    let federation = &config.federation;
    let peer = PeerClient::new(&PeerClientConfig {
        allow_insecure_peers: federation.allow_insecure_peers,
        ca_file: (!federation.peer_ca_file.as_os_str().is_empty())
            .then(|| federation.peer_ca_file.clone()),
        connect_timeout: federation.peer_connect_timeout,
        request_timeout: federation.peer_request_timeout,
        max_response_bytes: federation.peer_max_response_bytes,
    })
    .map_err(|e| anyhow!("config key `federation.peer_ca_file`: {e}"))?;
    let public_url = match federation.public_url.as_str() {
        "" => None,
        url => Some(url::Url::parse(url).context("config key `federation.public_url`")?),
    };
    let peer = Arc::new(peer);
    let service = PairingService::new(
        store,
        peer.clone(),
        keys.signing.clone(),
        keys.encryption.clone(),
        ids,
        PairingSettings {
            public_url,
            label: federation.label.clone(),
            allow_insecure_peers: federation.allow_insecure_peers,
            ott_ttl: config.pairing.ott_ttl,
            max_failed_attempts: config.pairing.max_failed_attempts,
            token_idle_timeout: Some(config.pairing.token_idle_timeout).filter(|d| !d.is_zero()),
        },
    );
    Ok((service, peer))
}

/// Serves a router on a bound listener until `stop` fires, then finishes
/// in-flight requests.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small answers (a gRPC status, a JSON page's last bytes) go out at once:
    // without TCP_NODELAY, Nagle and delayed ACKs add about 40 ms.
    axum::serve(
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.cancelled_owned())
    .await
}

async fn serve_tls(
    listener: tls::TlsListener,
    router: axum::Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // `tap_io` lets the connection's address reach handlers as ConnectInfo.
    axum::serve(
        listener.tap_io(|_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.cancelled_owned())
    .await
}

/// Runs the daemon until SIGTERM or SIGINT; what `fedsync serve` calls.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let daemon = start(config).await?;
    notify::ready(&format!(
        "federation={} admin={}",
        daemon.federation_addr, daemon.admin_addr
    ));
    let scheduler = daemon.scheduler.clone();
    let watchdog = notify::spawn_watchdog(daemon.shutdown_token(), move || scheduler.is_turning());
    let shutdown = daemon.shutdown_token();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!(signal = "SIGTERM", "received signal"),
        result = tokio::signal::ctrl_c() => {
            result.context("cannot listen for SIGINT")?;
            tracing::info!(signal = "SIGINT", "received signal");
        }
        _ = shutdown.cancelled() => {}
    }
    notify::stopping();
    let result = daemon.stop().await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    result
}

/// The data plane `[local] kind` names: fedsync's own store, or a Corteza
/// instance beside it (not contacted here: it may start after us).
fn local_data_plane(
    config: &Config,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
) -> anyhow::Result<(Arc<dyn LocalData>, Arc<dyn LocalRecords>)> {
    Ok(match config.local.kind {
        crate::config::LocalKind::Embedded => {
            let embedded = Arc::new(EmbeddedData::new(store, ids));
            (embedded.clone(), embedded)
        }
        crate::config::LocalKind::Corteza => {
            let local = &config.local;
            let token = match &local.corteza_token_file {
                Some(path) => CortezaToken::File(path.clone()),
                None => CortezaToken::Inline(zeroize::Zeroizing::new(
                    local.corteza_token.expose().to_owned(),
                )),
            };
            let corteza = Arc::new(
                CortezaData::new(
                    CortezaSettings {
                        url: local.corteza_url.clone(),
                        token,
                        namespace: local.corteza_namespace.trim().to_owned(),
                        requests_per_second: local.corteza_requests_per_second,
                        max_concurrent: local.corteza_max_concurrent,
                        page_size: local.corteza_page_size,
                        timeout: local.corteza_timeout,
                    },
                    store,
                )
                .map_err(anyhow::Error::msg)?,
            );
            tracing::info!(
                url = %local.corteza_url,
                namespace = %local.corteza_namespace,
                "local data plane: Corteza"
            );
            (corteza.clone(), corteza)
        }
    })
}
