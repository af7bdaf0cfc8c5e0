//! The driver's command line (`bench/run --help`).

use std::path::PathBuf;

use crate::Result;

/// The PostgreSQL server of the PostgreSQL round unless `--postgres URL`
/// names another: this machine's (trust authentication, user postgres).
pub(crate) const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

pub(crate) struct Args {
    pub(crate) quick: bool,
    /// Only the flood scenario.
    pub(crate) flood_only: bool,
    /// Only the live-changes round (`--live`).
    pub(crate) live_only: bool,
    /// Only the many-peers round (`--many-peers`).
    pub(crate) many_peers_only: bool,
    /// Only the initial sync at N and the incremental one (`--incremental`).
    pub(crate) incremental_only: bool,
    /// Only the sidecar round (`--sidecar`).
    pub(crate) sidecar_only: bool,
    /// Only the PostgreSQL round (`--postgres [URL]`).
    pub(crate) postgres_only: bool,
    /// The PostgreSQL server of the PostgreSQL round (`--postgres URL`).
    pub(crate) postgres_url: String,
    /// Records each way of the sidecar round (`--sidecar-records`).
    pub(crate) sidecar_records: u64,
    pub(crate) records: u64,
    pub(crate) peers: u64,
    pub(crate) out: Option<PathBuf>,
    /// Extra `FEDSYNC_*` settings for every daemon (`--daemon-env K=V`).
    pub(crate) daemon_env: Vec<(String, String)>,
}

pub(crate) fn args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        flood_only: false,
        live_only: false,
        many_peers_only: false,
        incremental_only: false,
        sidecar_only: false,
        postgres_only: false,
        postgres_url: DEFAULT_POSTGRES.to_owned(),
        sidecar_records: 0,
        records: 0,
        peers: 0,
        out: None,
        daemon_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--quick" => args.quick = true,
            "--flood" => args.flood_only = true,
            "--many-peers" => args.many_peers_only = true,
            "--live" => args.live_only = true,
            "--incremental" => args.incremental_only = true,
            "--sidecar" => args.sidecar_only = true,
            "--postgres" => {
                args.postgres_only = true;
                if let Some(url) = it.next_if(|a| !a.starts_with("--")) {
                    args.postgres_url = url;
                }
            }
            "--sidecar-records" => {
                args.sidecar_records = it
                    .next()
                    .ok_or("--sidecar-records needs a number")?
                    .parse()?
            }
            "--records" => args.records = it.next().ok_or("--records needs a number")?.parse()?,
            "--peers" => args.peers = it.next().ok_or("--peers needs a number")?.parse()?,
            "--out" => args.out = Some(it.next().ok_or("--out needs a file")?.into()),
            "--daemon-env" => {
                let pair = it.next().ok_or("--daemon-env needs KEY=VALUE")?;
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(k, _)| k.starts_with("FEDSYNC_"))
                    .ok_or("--daemon-env takes FEDSYNC_KEY=VALUE")?;
                args.daemon_env.push((key.to_owned(), value.to_owned()));
            }
            "-h" | "--help" => {
                println!(
                    "bench/run [--quick] [--flood|--many-peers|--live|--incremental|--sidecar|--postgres [URL]] [--records N] [--peers P] [--out FILE]\n\
                     \n\
                     --quick      N = 20,000 and 50 peers (under two minutes)\n\
                     --flood      only the flood scenario (one pair floods, another's latency is measured)\n\
                     --many-peers only the many-peers round (to profile GetSyncStatus)\n\
                     --live       only the live-changes round (20 destinations, 180 fake peers, 100 changes)\n\
                     --incremental only the initial sync at N and the incremental sync after it\n\
                     --sidecar    only the sidecar round (issue 27): fedsync into and out of a fake Corteza\n\
                     --postgres [URL]  only the PostgreSQL round (issue 30; default URL postgres://postgres@127.0.0.1:5432)\n\
                     --sidecar-records N  records each way of the sidecar round (default 2,000; 500 with --quick)\n\
                     --records N  records of the initial sync (default 200,000); growth runs N and 5N\n\
                     --peers P    peers of the many-peers round (default 200)\n\
                     --out FILE   also write the figures as JSON\n\
                     --daemon-env FEDSYNC_KEY=VALUE  a setting for every daemon (repeatable)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)").into()),
        }
    }
    if args.records == 0 {
        args.records = if args.quick { 20_000 } else { 200_000 };
    }
    if args.sidecar_records == 0 {
        args.sidecar_records = if args.quick { 500 } else { 2_000 };
    }
    if args.peers == 0 {
        args.peers = if args.quick { 50 } else { 200 };
    }
    Ok(args)
}
