//! The SQLite engine: the embedded default, one file in the data directory,
//! write-ahead logging, a busy timeout, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::common::impl_common_store;
use super::{Engine, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("src/store/sqlite/migrations");

/// Options for opening a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite://PATH` URL. The
    /// parent directory is created too.
    pub async fn connect(url: &str, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let filename = connect.get_filename();
        if let Some(parent) = filename.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // The database holds token hashes and ciphertext: owner-only. SQLite
        // gives its -wal and -shm files the mode of the main file.
        if filename != Path::new(":memory:") {
            create_private_file(filename).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", filename.display()))
            })?;
        }
        // Connections to an embedded file never go stale: keep them open.
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5))
            .connect_with(connect)
            .await?;
        Ok(SqliteStore { pool })
    }
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

impl_common_store!(
    SqliteStore,
    Engine::Sqlite,
    MIGRATOR,
    "BEGIN IMMEDIATE",
    // SQLite's write lock (BEGIN IMMEDIATE) already serialises writers.
    "SELECT $1",
    "IN (SELECT CAST(value AS INTEGER) FROM json_each('[' || $3 || ']'))",
    // One writer at a time: a claim needs no row locks.
    ""
);
