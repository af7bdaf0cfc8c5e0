//! The command line: one binary for the daemon (`serve`), its maintenance
//! commands (`migrate`, `config`, `token`) and the admin client commands
//! that speak gRPC to a running daemon (`node ...`).
//!
//! Invariant: `--json` output follows one convention every command keeps: a
//! list is a bare JSON array, one thing is one object, ids are decimal strings
//! under `id` (`nodeId`, ... for references), keys are lowerCamelCase,
//! statuses are lowercase Corteza spellings, timestamps are RFC 3339. A
//! failed command prints `error: <reason>` on stderr and exits non-zero;
//! Ctrl-C stopping a wait for the daemon's work prints what goes on and how
//! to watch it (no `error: `) and exits 130.

mod catalog;
mod client;
mod connect;
mod demo;
mod doctor;
mod follow;
mod import;
mod import_file;
mod output;
mod record;
mod sync_cmd;
mod token;
mod wait;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DEFAULT_TOML, LogFormat, Overrides};
use crate::daemon;

pub use client::{error_text, exit_code};
pub use wait::Interrupted;

/// The version and the git revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILD_GIT_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "fedsync",
    version = VERSION,
    about = "Federation sync daemon, wire-compatible with Corteza"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see `fedsync config print-default`.
    #[arg(long, global = true, env = "FEDSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, keys, local admin token and address).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin address of the daemon to talk to (default: from the data dir).
    #[arg(
        long,
        global = true,
        env = "FEDSYNC_ADMIN_ADDR",
        value_name = "HOST:PORT"
    )]
    pub admin_addr: Option<String>,
    /// Admin token (default: <data-dir>/admin.token).
    #[arg(
        long,
        global = true,
        env = "FEDSYNC_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Print or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Mint credentials.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print a one-time login link to the web console (valid a few minutes).
    Ui(token::UiArgs),
    /// Peers this node federates with, and pairing with them.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Modules of the embedded data plane.
    #[command(subcommand)]
    Module(catalog::ModuleCommand),
    /// Records of the embedded data plane.
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// What this node exposes to a peer (origin side).
    #[command(subcommand)]
    Expose(catalog::ExposeCommand),
    /// What a peer exposes to this node (destination side).
    #[command(subcommand)]
    Shared(catalog::SharedCommand),
    /// How a shared module lands in a local module.
    #[command(subcommand)]
    Map(catalog::MapCommand),
    /// Run syncs now and see how syncs went.
    #[command(subcommand)]
    Sync(catalog::SyncCommand),
    /// Two nodes in this process, paired, sharing a module and records:
    /// each step in plain words. Leaves nothing behind.
    Demo {
        /// Sample records to send from A to B.
        #[arg(long, default_value_t = 1000)]
        records: usize,
    },
    /// Check the config, the store and migrations, the daemon, the public
    /// URL, the clock and every paired peer; say what to do. Non-zero if a
    /// check failed.
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The audit log: who did what (no secrets).
    Audit {
        /// Only events about this node.
        #[arg(long)]
        node: Option<String>,
        /// At most this many events, newest first.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database URL: sqlite://PATH or postgres://... (default: SQLite in the data dir).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Public listener for peers and probes.
    #[arg(long, value_name = "ADDR")]
    pub federation_listen: Option<String>,
    /// Admin listener (gRPC and /metrics).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Federation base URL peers use, e.g. https://a.example.com/federation.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// This node's name, sent to peers in node URIs.
    #[arg(long)]
    pub label: Option<String>,
    /// Permit http and loopback/private peers (development and tests only).
    #[arg(long)]
    pub allow_insecure_peers: bool,
    /// Extra CA certificates (PEM) trusted for https peers.
    #[arg(long, value_name = "FILE")]
    pub peer_ca_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the federation listener.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where local modules and records live: embedded, or corteza (a sidecar).
    #[arg(long, value_name = "KIND", value_parser = ["embedded", "corteza"])]
    pub local_kind: Option<String>,
    /// Corteza's API base URL (local.kind = corteza), e.g. http://127.0.0.1:80/api.
    #[arg(long, value_name = "URL")]
    pub corteza_url: Option<String>,
    /// A file holding the Corteza API token, re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub corteza_token_file: Option<PathBuf>,
    /// The Corteza namespace (slug or id) fedsync works in.
    #[arg(long, value_name = "NAMESPACE")]
    pub corteza_namespace: Option<String>,
    /// A reverse proxy (address or CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database URL (default: from config, else SQLite in the data dir).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the documented default configuration file.
    PrintDefault,
    /// Validate a configuration file (with the environment applied), as the daemon would.
    Check {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes.
    List {
        /// Only nodes in this status (pending, pair_requested, paired, failed).
        #[arg(long)]
        status: Option<String>,
        /// Substring of the name or base URL.
        #[arg(long)]
        query: Option<String>,
        /// Include deleted nodes.
        #[arg(long)]
        deleted: bool,
    },
    /// Show one node.
    Show {
        /// Node id.
        id: String,
    },
    /// Inviter: register a peer to invite; prints its node id and node URI.
    Create {
        /// The peer's federation base URL, e.g. https://b.example.com/federation.
        #[arg(long)]
        base_url: String,
        /// A name for the peer.
        #[arg(long)]
        name: String,
        /// Who to contact about it (an email address).
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// Inviter: a new node URI (new one-time token); on a paired node this starts re-pairing.
    Uri {
        /// Node id.
        id: String,
    },
    /// Invitee: register the inviting node from the node URI its admin sent.
    AddUri {
        /// The node URI (https://<id>:<token>@<host>/<path>?name=... or corteza://...).
        uri: String,
    },
    /// Invitee: send the handshake request; waits for the peer's answer
    /// (Ctrl-C stops waiting; the handshake goes on in the daemon).
    Pair {
        /// Node id.
        id: String,
    },
    /// Inviter: approve the handshake request and complete it; waits for the
    /// peer's answer (Ctrl-C stops waiting; the handshake goes on in the daemon).
    Confirm {
        /// Node id.
        id: String,
    },
    /// Inviter: email a new node URI to the peer's admin (needs notify.smtp).
    Invite {
        /// Node id.
        id: String,
        /// The address the node URI goes to (and nowhere else).
        #[arg(long)]
        email: String,
    },
    /// Inviter: decline the peer's handshake request (the node fails; `node uri` invites again).
    Refuse {
        /// Node id.
        id: String,
    },
    /// Change a node's name, contact or base URL.
    Update {
        /// Node id.
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Remove a node: its tokens are revoked at once.
    Rm {
        /// Node id.
        id: String,
    },
    /// Call the peer with the token it gave us; exits non-zero unless it accepts it.
    Check {
        /// Node id.
        id: String,
    },
    /// Set how often the node is synced: an interval (`30s`, `5m`) or a cron
    /// expression in UTC (`*/5 * * * *`); an empty value restores the default.
    Schedule {
        /// Node id.
        id: String,
        #[arg(long)]
        structure: Option<String>,
        #[arg(long)]
        data: Option<String>,
    },
    /// Stop running the node's scheduled syncs (`sync now` still works).
    Pause {
        /// Node id.
        id: String,
    },
    /// Run the node's scheduled syncs again, restarting jobs that stopped on an error.
    Resume {
        /// Node id.
        id: String,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(args) => serve(&cli.global, args).await,
        Command::Migrate(args) => migrate(&cli.global, args).await,
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            config_check(&cli.global, file.as_deref())
        }
        Command::Token(command) => {
            quiet_logs(&cli.global);
            let config = load_config(&cli.global, Overrides::default())?;
            token::token(&cli.global, &config, command).await
        }
        Command::Ui(args) => {
            quiet_logs(&cli.global);
            let config = load_config(&cli.global, Overrides::default())?;
            token::ui(&cli.global, &config, args).await
        }
        Command::Node(command) => {
            quiet_logs(&cli.global);
            client::node(&cli.global, command).await
        }
        Command::Module(command) => {
            quiet_logs(&cli.global);
            catalog::module(&cli.global, command).await
        }
        Command::Record(command) => {
            quiet_logs(&cli.global);
            record::record(&cli.global, command).await
        }
        Command::Expose(command) => {
            quiet_logs(&cli.global);
            catalog::expose(&cli.global, command).await
        }
        Command::Shared(command) => {
            quiet_logs(&cli.global);
            catalog::shared(&cli.global, command).await
        }
        Command::Map(command) => {
            quiet_logs(&cli.global);
            catalog::map(&cli.global, command).await
        }
        Command::Sync(command) => {
            quiet_logs(&cli.global);
            sync_cmd::sync(&cli.global, command).await
        }
        Command::Demo { records } => {
            quiet_logs(&cli.global);
            demo::run(*records).await
        }
        Command::Doctor => {
            quiet_logs(&cli.global);
            doctor::run(&cli.global).await
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "fedsync", &mut script);
            match std::io::stdout().write_all(&script) {
                // `| head` closing the pipe is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::anyhow!("cannot write the completion script: {e}"))
                }
                _ => Ok(()),
            }
        }
        Command::Audit { node, limit } => {
            quiet_logs(&cli.global);
            client::audit(&cli.global, node.as_deref(), *limit).await
        }
    }
}

fn base_overrides(global: &GlobalArgs) -> Overrides {
    let mut overrides = Overrides::default();
    if let Some(dir) = &global.data_dir {
        overrides.set("data_dir", dir.display().to_string());
    }
    if let Some(format) = global.log_format {
        overrides.set(
            "log.format",
            match format {
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            },
        );
    }
    overrides
}

fn load_config(global: &GlobalArgs, extra: Overrides) -> anyhow::Result<Config> {
    let mut overrides = base_overrides(global);
    overrides.extend(extra);
    Ok(Config::load(
        global.config.as_deref(),
        std::env::vars(),
        &overrides,
    )?)
}

/// Client commands log only warnings, so their stdout and stderr stay clean.
fn quiet_logs(global: &GlobalArgs) {
    let _ = crate::telemetry::init_tracing(global.log_format == Some(LogFormat::Json), "warn");
}

async fn serve(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let mut overrides = Overrides::default();
    if let Some(v) = &args.database_url {
        overrides.set("database.url", v.as_str());
    }
    if let Some(v) = &args.federation_listen {
        overrides.set("federation.listen", v.as_str());
    }
    if let Some(v) = &args.admin_listen {
        overrides.set("admin.listen", v.as_str());
    }
    if let Some(v) = &args.public_url {
        overrides.set("federation.public_url", v.as_str());
    }
    if let Some(v) = &args.label {
        overrides.set("federation.label", v.as_str());
    }
    if args.allow_insecure_peers {
        overrides.set("federation.allow_insecure_peers", true);
    }
    if let Some(v) = &args.peer_ca_file {
        overrides.set("federation.peer_ca_file", v.display().to_string());
    }
    if let Some(v) = &args.tls_cert {
        overrides.set("federation.tls_cert", v.display().to_string());
    }
    if let Some(v) = &args.tls_key {
        overrides.set("federation.tls_key", v.display().to_string());
    }
    if let Some(v) = &args.local_kind {
        overrides.set("local.kind", v.as_str());
    }
    if let Some(v) = &args.corteza_url {
        overrides.set("local.corteza_url", v.as_str());
    }
    if let Some(v) = &args.corteza_token_file {
        overrides.set("local.corteza_token_file", v.display().to_string());
    }
    if let Some(v) = &args.corteza_namespace {
        overrides.set("local.corteza_namespace", v.as_str());
    }
    if !args.trusted_proxies.is_empty() {
        overrides.set("federation.trusted_proxies", args.trusted_proxies.join(","));
    }
    let config = load_config(global, overrides)?;
    crate::telemetry::init_tracing(config.log.format == LogFormat::Json, &config.log.level)
        .map_err(anyhow::Error::msg)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.federation.allow_insecure_peers {
        tracing::warn!(
            "allow_insecure_peers is on: http and loopback/private peers are accepted; never use this in production"
        );
    }
    daemon::run(config).await
}

async fn migrate(global: &GlobalArgs, args: &MigrateArgs) -> anyhow::Result<()> {
    quiet_logs(global);
    let mut overrides = Overrides::default();
    if let Some(v) = &args.database_url {
        overrides.set("database.url", v.as_str());
    }
    let config = load_config(global, overrides)?;
    let (store, applied) = daemon::open_migrated_store(&config).await?;
    let all = store.applied_migrations().await?;
    store.close().await;
    output::migrations(global.json, &applied, all.len());
    Ok(())
}

fn config_check(global: &GlobalArgs, file: Option<&Path>) -> anyhow::Result<()> {
    let file = file.or(global.config.as_deref());
    let config = Config::load(file, std::env::vars(), &base_overrides(global))?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    let source = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "defaults and environment".into());
    if global.json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "file": file.map(|f| f.display().to_string()) })
        );
    } else {
        println!("config OK ({source})");
        print!("{}", config.to_redacted_toml());
    }
    Ok(())
}
