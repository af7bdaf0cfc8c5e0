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

use std::sync::atomic::{AtomicU64, Ordering};

use super::PgStore;

/// Rows written before the first analyze.
const FIRST: u64 = 1_000;

#[derive(Debug, Default)]
pub(super) struct Freshness {
    links: Table,
    records: Table,
}

#[derive(Debug, Default)]
struct Table {
    written: AtomicU64,
    /// Analyze once `written` reaches this (0: `FIRST`).
    next: AtomicU64,
    /// One analyze at a time; a dropped call leaves `next` as it was.
    running: tokio::sync::Mutex<()>,
}

impl PgStore {
    /// A batch wrote `records` records and `links` links.
    pub(crate) async fn rows_written(&self, records: usize, links: usize) {
        let f = self.freshness.clone();
        self.written(&f.links, "record_links", links).await;
        self.written(&f.records, "local_records", records).await;
    }

    async fn written(&self, table: &Table, name: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        let written = table.written.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if written < table.next.load(Ordering::Relaxed).max(FIRST) {
            return;
        }
        let Ok(_running) = table.running.try_lock() else {
            return;
        };
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {name}")))
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, table = name, "cannot analyze; lookups may be slow until autovacuum does");
            return;
        }
        let rows: i64 = sqlx::query_as::<_, (i64,)>(
            "SELECT GREATEST(reltuples, 0)::BIGINT FROM pg_class WHERE relname = $1",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map(|(n,)| n)
        .unwrap_or(0);
        let more = (rows.max(0) as u64 / 2).max(FIRST);
        table.next.store(written + more, Ordering::Relaxed);
        tracing::debug!(table = name, rows, next_at = written + more, "analyzed");
    }
}
