//! Statistics that follow what fedsync loads. Without them (right after a
//! bulk load, before autovacuum's analyze, or on a server without
//! autovacuum) PostgreSQL takes a page's lookup of its links by origin ids
//! to select every link (`= ANY` of a few hundred ids at the default
//! selectivity) and reads all links of the peer: 2.1 s a page at 60,000
//! links instead of 0.05 ms. So the links table is analyzed once this
//! process has written [`FIRST`] links, then each time it has written half
//! as many again as the table held at the last analyze (at least
//! [`FIRST`]): about a dozen analyzes over a first pull of 100,000
//! records, each a sample of 30,000 rows.

use std::sync::atomic::{AtomicU64, Ordering};

use super::PgStore;

/// Links written before the first analyze.
const FIRST: u64 = 1_000;

#[derive(Debug, Default)]
pub(super) struct Freshness {
    written: AtomicU64,
    /// Analyze once `written` reaches this (0: `FIRST`).
    next: AtomicU64,
    /// One analyze at a time; a dropped call leaves `next` as it was.
    running: tokio::sync::Mutex<()>,
}

impl PgStore {
    /// `n` links were just written.
    pub(crate) async fn links_written(&self, n: usize) {
        let f = &self.freshness;
        let written = f.written.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if written < f.next.load(Ordering::Relaxed).max(FIRST) {
            return;
        }
        let Ok(_running) = f.running.try_lock() else {
            return;
        };
        if let Err(e) = sqlx::query("ANALYZE record_links")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "cannot analyze record_links; lookups may be slow until autovacuum does");
            return;
        }
        let rows: i64 = sqlx::query_as::<_, (i64,)>(
            "SELECT GREATEST(reltuples, 0)::BIGINT FROM pg_class WHERE relname = 'record_links'",
        )
        .fetch_one(&self.pool)
        .await
        .map(|(n,)| n)
        .unwrap_or(0);
        let more = (rows.max(0) as u64 / 2).max(FIRST);
        f.next.store(written + more, Ordering::Relaxed);
        tracing::debug!(rows, next_at = written + more, "analyzed record_links");
    }
}
