//! The SQLite engine: the embedded default, one file in the data directory,
//! write-ahead logging, a busy timeout, foreign keys on. The write-ahead log
//! is checkpointed by a background task, not by the commit that fills it.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod bulk;

/// The connection a page's statements run on (`records_sql`).
type PageConn = sqlx::SqliteConnection;

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
    /// The admin interface's reads (token lookups, the status of every
    /// node), so they never wait for a connection behind the syncs' writes
    /// (a writer waiting for SQLite's lock holds its connection). With
    /// write-ahead logging, readers do not wait for the writer.
    admin_pool: SqlitePool,
    _checkpoints: Option<Arc<Checkpointer>>,
}

/// How often the background task checkpoints the write-ahead log.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// SQLite's own checkpoint, left as a backstop should the task fall behind:
/// the commit that takes the log past this many pages (4 KiB each) copies
/// it into the database itself. SQLite's default is 1,000 pages, which a
/// page of 500 updated records passes on every commit: the commit then
/// waited for the copy and its fsync (tens of milliseconds) while the sync
/// behind it waited for the commit.
const BACKSTOP_PAGES: &str = "16384";

/// The checkpoint task, stopped when the last copy of the store is dropped.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies the write-ahead log into the database every `CHECKPOINT_EVERY`,
/// without blocking readers or writers (PASSIVE), until the pool closes.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            // The next tick tries again; the backstop bounds the log meanwhile.
            Err(e) => tracing::debug!(error = %e, "write-ahead log checkpoint failed"),
        }
    }
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
            .pragma("wal_autocheckpoint", BACKSTOP_PAGES)
            // Statement journals (one multi-row statement's undo pages) in
            // memory, not spilled to temporary files past 64 KiB.
            .pragma("temp_store", "memory")
            .foreign_keys(true);
        let filename = connect.get_filename();
        if let Some(parent) = filename.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // The database holds token hashes and ciphertext: owner-only. SQLite
        // gives its -wal and -shm files the mode of the main file.
        let on_disk = filename != Path::new(":memory:");
        if on_disk {
            create_private_file(filename).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", filename.display()))
            })?;
        }
        let acquire_timeout = options.busy_timeout + Duration::from_secs(5);
        let pool = open_pool(&connect, options.max_connections, acquire_timeout).await?;
        // (An in-memory database exists once per connection: one pool.)
        let admin_pool = if on_disk {
            open_pool(&connect, super::ADMIN_CONNECTIONS, acquire_timeout).await?
        } else {
            pool.clone()
        };
        let checkpoints =
            on_disk.then(|| Arc::new(Checkpointer(tokio::spawn(checkpoint_loop(pool.clone())))));
        Ok(SqliteStore {
            pool,
            admin_pool,
            _checkpoints: checkpoints,
        })
    }
}

impl SqliteStore {
    /// A batch wrote records and links: SQLite's plans of fedsync's
    /// lookups take the primary keys without statistics.
    pub(crate) fn rows_written(&self, _records: usize, _links: usize) {}
}

#[cfg(test)]
impl SqliteStore {
    /// The main pool, for tests that look at SQLite's own view (plans).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A pool of `size` connections, all opened now, one after the other (at
/// once, on a new file, they raced to switch it to WAL: "database is
/// locked"). Opened on demand, the first calls of a busy moment each waited
/// 10-90 ms for a new connection (its PRAGMAs wait behind the writers),
/// which was the tail of the status calls during a round of syncs.
/// Connections to an embedded file never go stale: they stay open.
async fn open_pool(
    connect: &SqliteConnectOptions,
    size: u32,
    acquire_timeout: Duration,
) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(size)
        .idle_timeout(None)
        .max_lifetime(None)
        // No ping before each use (a round trip to the connection's
        // thread, one per statement or transaction of a sync's page).
        .test_before_acquire(false)
        .acquire_timeout(acquire_timeout)
        .connect_with(connect.clone())
        .await?;
    // (`connect_with` left one idle: the first acquire takes it, each
    // further one, while the others are held, opens a new one.)
    let mut warm = Vec::new();
    for _ in 0..size {
        warm.push(pool.acquire().await?);
    }
    drop(warm);
    Ok(pool)
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
    // SQLite's write lock (BEGIN IMMEDIATE) already serialises writers:
    // no statement (and no round trip to the database's thread).
    None::<&'static str>,
    "IN (SELECT CAST(value AS INTEGER) FROM json_each('[' || $3 || ']'))",
    // One writer at a time: a claim needs no row locks.
    "",
    // The all-nodes status: one JSON array of rows, each a positional array.
    "json_group_array",
    "json_array",
    // Records as one JSON array of positional arrays (`records_from_json`),
    // joined as text: the values column is JSON text already, and parsing
    // it again (`json()`) was a twentieth of an origin's CPU.
    "'[' || COALESCE(group_concat('[' || id || ',' || module_id || ',' || \"values\" || ',' || \
     IFNULL(origin_node_id, 'null') || ',' || created_at || ',' || updated_at || ',' || \
     IFNULL(deleted_at, 'null') || ',' || changed_at || ',' || revision || ']'), '') || ']'"
);
