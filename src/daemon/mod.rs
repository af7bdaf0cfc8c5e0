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
mod services;
mod shutdown;
mod tls;
mod tokens;

use services::{live_changes, local_data_plane, notices, pairing_service, read_pacing};
use tokens::ensure_local_admin_token;
pub use tokens::{list_admin_tokens, mint_admin_token, mint_console_login, revoke_admin_token};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, anyhow, bail};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::crypto::{EncryptionKey, SigningKey};
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
    // Sync attempts and pairing steps run as these tasks, not inside the
    // requests that start them; shutdown waits for them (then cuts them).
    let work = crate::sync::work::Work::new();
    let notices = Arc::new(notices(config, store.clone(), ids.clone(), lease.owner())?);
    let (pairing, peer) = pairing_service(config, store.clone(), &keys, ids.clone())?;
    let pairing = Arc::new(
        pairing
            .with_notices(notices.clone())
            .with_work(work.clone()),
    );
    let (local, plain_records) = local_data_plane(config, store.clone(), ids.clone())?;
    read_pacing(&metrics, &plain_records);
    // Claims wake on this too: change notices from peers record triggers.
    let wake = Arc::new(crate::sync::wake::Wake::new());
    let live = live_changes(config, &store, &pairing, &peer, &wake, &work, &metrics);
    let records = live.watch(plain_records.clone());
    let catalog =
        Arc::new(Catalog::new(store.clone(), local.clone(), ids.clone()).with_live(live.clone()));
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
        .with_notices(notices.clone())
        .with_live(live.clone()),
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
        .with_notices(notices.clone())
        .with_work(work.clone())
        .with_wake(wake),
    );
    let read_ahead = Arc::new(crate::sync::data::ReadAhead::new(
        crate::sync::data::ServeContext {
            store: store.clone(),
            records: records.clone(),
            key: keys.signing.clone(),
            reexport: config.sync.reexport,
        },
    ));
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
        live: live.clone(),
        capabilities: Arc::new(services::our_capabilities(config)),
        read_ahead,
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
        work: work.clone(),
        live: live.clone(),
        tokens: Arc::new(crate::sync::admin_tokens::AdminTokens::new(
            store.clone(),
            keys.signing.clone(),
            ids.clone(),
        )),
        console: admin::ui::ConsoleSettings::new(&config.admin.public_url),
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
    // Owned by the daemon's work: shutdown waits for them to end.
    drop(work.start(live.clone().run(stop_serving.clone())));
    drop(work.start(live.poll_local(plain_records, stop_serving.clone())));
    let notifier = tokio::spawn(notices.run(stop_serving.clone()));

    tracing::info!(
        federation = %federation_addr,
        admin = %admin_addr,
        engine = store.engine().as_str(),
        instance = lease.instance_no(),
        data_dir = %data_dir.display(),
        "fedsync is serving"
    );

    let supervisor = tokio::spawn(
        shutdown::Shutdown {
            requested: shutdown.clone(),
            grace: config.daemon.shutdown_grace,
            health,
            stop_serving,
            servers: [("federation", federation_server), ("admin", admin_server)],
            dispatcher,
            work,
            notifier,
            renewer,
            lease,
            store,
        }
        .run(),
    );

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
