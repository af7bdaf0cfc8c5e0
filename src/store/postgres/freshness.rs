//! Statistics that follow what fedsync loads. Without them (right after a
//! bulk load, before autovacuum's analyze, or on a server without
//! autovacuum) PostgreSQL misjudges fedsync's own lookups: a page's lookup
//! of its links by origin ids (`= ANY` of a few hundred ids at the default
//! selectivity) read every link of the peer, 2.1 s a page at 60,000 links
//! instead of 0.05 ms; a page of a module's records after an id read and
//! sorted every remaining record, 56 ms a page at 200,000 instead of
//! 0.26 ms. So each table this process writes in bulk is analyzed once it
//! has written [`FIRST`] rows of it, then each time it has written half as
//! many again as the table held at the last analyze (at least [`FIRST`]):
//! about a dozen analyzes over a first pull of 100,000 records, each a
//! sample of 30,000 rows.
//!
//! An analyze runs beside the writes, not in their way: a task of its own
//! (one a table at a time), owned by the store and aborted with it. A
//! pull's writes awaited 2.3 s of analyzes over 200,000 records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::PgPool;
use tokio::task::JoinHandle;

use super::PgStore;

/// Rows written before the first analyze.
const FIRST: u64 = 1_000;

#[derive(Debug, Default)]
pub(super) struct Freshness {
    links: Arc<Table>,
    records: Arc<Table>,
    /// The analyzes running or done, the latest of each table; aborted
    /// when the last clone of the store goes.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Freshness {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .map(|t| t.drain(..))
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    written: AtomicU64,
    /// Analyze once `written` reaches this (0: `FIRST`).
    next: AtomicU64,
    /// An analyze of the table is under way.
    running: AtomicBool,
}

impl PgStore {
    /// A batch wrote `records` records and `links` links.
    pub(crate) fn rows_written(&self, records: usize, links: usize) {
        self.written(&self.freshness.links, "record_links", links);
        self.written(&self.freshness.records, "local_records", records);
    }

    /// Waits for the analyzes started so far (tests and benchmarks that
    /// look at the statistics).
    pub async fn statistics_settled(&self) {
        let tasks: Vec<_> = match self.freshness.tasks.lock() {
            Ok(mut tasks) => tasks.drain(..).collect(),
            Err(_) => return,
        };
        for task in tasks {
            task.await.ok();
        }
    }

    fn written(&self, table: &Arc<Table>, name: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        let written = table.written.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if written < table.next.load(Ordering::Relaxed).max(FIRST)
            || table.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let task = tokio::spawn(analyze(self.pool.clone(), table.clone(), name, written));
        if let Ok(mut tasks) = self.freshness.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }
}

/// Analyzes `name`, which had `written` rows written, and sets when next.
async fn analyze(pool: PgPool, table: Arc<Table>, name: &'static str, written: u64) {
    let analyzed = sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {name}")))
        .execute(&pool)
        .await;
    if let Err(e) = analyzed {
        tracing::warn!(error = %e, table = name, "cannot analyze; lookups may be slow until autovacuum does");
        table.running.store(false, Ordering::Release);
        return;
    }
    let rows: i64 = sqlx::query_as::<_, (i64,)>(
        "SELECT GREATEST(reltuples, 0)::BIGINT FROM pg_class WHERE relname = $1",
    )
    .bind(name)
    .fetch_one(&pool)
    .await
    .map(|(n,)| n)
    .unwrap_or(0);
    let more = (rows.max(0) as u64 / 2).max(FIRST);
    table.next.store(written + more, Ordering::Relaxed);
    table.running.store(false, Ordering::Release);
    tracing::debug!(table = name, rows, next_at = written + more, "analyzed");
}
