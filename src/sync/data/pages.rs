//! A pull's pages, three at once: while page k is written, page k+1 is
//! made ready (mapped, from a copy of the run's counts) and page k+2 is
//! fetched and parsed in a task of its own. A page that reads what the page
//! before it writes waits for that write (`Writes`).

use std::collections::HashSet;

use super::ahead::Writes;
use super::fetch::{PageSource, Prefetch};
use super::fields::Usable;
use super::{DataSync, MAX_PAGES};
use crate::domain::{Id, LocalModule, Node, SharedModule, SyncRun};
use crate::store::{CursorWrite, RecordBatch};
use crate::sync::ports::{RecordsPage, RecordsRequest};
use crate::sync::structure::SyncError;

/// What a pull's pages share.
pub(super) struct Pull<'a> {
    pub(super) node: &'a Node,
    pub(super) shared: &'a SharedModule,
    pub(super) local: &'a LocalModule,
    pub(super) usable: &'a [Usable<'a>],
    pub(super) source: PageSource,
    /// The origin is a fedsync (signed keyset cursors, `resume`).
    pub(super) ours: bool,
    pub(super) full: bool,
    /// Where the pull started; a Corteza origin's next `lastSync` is the
    /// newest origin time seen once the last page is written.
    pub(super) cursor: Option<String>,
    pub(super) watermark: i64,
}

/// A page made ready while the one before it was written.
struct Ahead {
    page: RecordsPage,
    /// Its next cursor, checked.
    next: Result<Option<String>, SyncError>,
    /// The page after it, being fetched.
    fetching: Option<Prefetch>,
    /// Its batch, unless it reads what the page before writes.
    batch: Option<RecordBatch>,
}

impl DataSync {
    /// Writes every page from `first` on, each in one transaction with the
    /// cursor it reached.
    pub(super) async fn pull_pages(
        &self,
        mut pull: Pull<'_>,
        first: RecordsPage,
        run: &mut SyncRun,
        total: &mut Option<u64>,
    ) -> Result<(), SyncError> {
        let mut seen_cursors = HashSet::new();
        let mut seq = 0u64;
        let mut page = first;
        let mut next = next_cursor(&page, &mut seen_cursors, run.counts.pages + 1);
        let mut fetching = None;
        let mut prepared = None;
        // The highest origin record id of the pages so far (Corteza origins).
        let mut highest: Option<Id> = None;
        loop {
            run.counts.pages += 1;
            if !pull.ours {
                check_ascending(&page, &mut highest)?;
            }
            if total.is_none() {
                *total = page.total;
            }
            pull.watermark = pull.watermark.max(newest(&page));
            let mut batch = match prepared.take() {
                Some(batch) => batch,
                None => {
                    self.make_batch(&pull, &mut page.records, run, &mut seq)
                        .await?
                }
            };
            batch.cursor = cursor_write(&pull, &page);
            batch.progress = Some((run.id, run.counts));
            let prefetch = fetching.take().or_else(|| match &next {
                Ok(Some(next)) => Some(pull.source.prefetch(self.request(next))),
                _ => None,
            });
            let writes = Writes::of(&batch);
            let high = highest;
            let mut ahead_run = run.clone();
            let mut ahead_seq = seq;
            let write = self.records.apply_batch(batch);
            let ahead = async {
                let Some(prefetch) = prefetch else {
                    return Ok(None);
                };
                let mut page = prefetch.page().await?;
                let next = next_cursor(&page, &mut seen_cursors, ahead_run.counts.pages + 1);
                // A page that goes back is refused before anything beyond
                // it is asked for or made ready.
                let back = !pull.ours && goes_back(&page, high).is_some();
                let fetching = match &next {
                    Ok(Some(next)) if !back => Some(pull.source.prefetch(self.request(next))),
                    _ => None,
                };
                let batch = if back || writes.read_by(&page.records, pull.usable) {
                    None
                } else {
                    Some(
                        self.make_batch(&pull, &mut page.records, &mut ahead_run, &mut ahead_seq)
                            .await?,
                    )
                };
                Ok::<_, SyncError>(Some(Ahead {
                    page,
                    next,
                    fetching,
                    batch,
                }))
            };
            let (written, ahead) = tokio::join!(write, ahead);
            written.map_err(SyncError::from)?;
            self.progress.publish(run, *total);
            let (Some(cursor), Some(ahead)) = (next?, ahead?) else {
                break;
            };
            pull.cursor = Some(cursor);
            page = ahead.page;
            next = ahead.next;
            fetching = ahead.fetching;
            if let Some(batch) = ahead.batch {
                run.counts = ahead_run.counts;
                seq = ahead_seq;
                prepared = Some(batch);
            }
        }
        Ok(())
    }

    async fn make_batch(
        &self,
        pull: &Pull<'_>,
        records: &mut [crate::sync::ports::RemoteRecord],
        run: &mut SyncRun,
        seq: &mut u64,
    ) -> Result<RecordBatch, SyncError> {
        self.transform(
            pull.node,
            pull.shared,
            pull.local,
            pull.usable,
            records,
            run,
            seq,
            pull.full,
        )
        .await
    }

    fn request(&self, cursor: &str) -> RecordsRequest {
        RecordsRequest {
            limit: self.page_size,
            cursor: Some(cursor.to_owned()),
            last_sync: None,
            include_total: false,
        }
    }
}

/// The page after `page`, if its cursor is sound; `pages` counts `page`.
fn next_cursor(
    page: &RecordsPage,
    seen: &mut HashSet<String>,
    pages: u64,
) -> Result<Option<String>, SyncError> {
    match &page.next_cursor {
        None => Ok(None),
        // No origin sends a next page after an empty one: a loop with
        // fresh cursors, which the seen set cannot catch.
        Some(_) if page.records.is_empty() => Err(SyncError::Protocol(
            "the origin sent a page cursor but no record on the page".into(),
        )),
        Some(next) if !seen.insert(next.clone()) => Err(SyncError::Protocol(
            "the origin sent the same page cursor twice".into(),
        )),
        Some(_) if pages >= MAX_PAGES => Err(SyncError::Protocol(format!(
            "the origin sent more than {MAX_PAGES} pages"
        ))),
        Some(next) => Ok(Some(next.clone())),
    }
}

/// Corteza pages by record id: a page that goes back is a loop, however
/// fresh its cursor (the seen set cannot tell).
fn check_ascending(page: &RecordsPage, highest: &mut Option<Id>) -> Result<(), SyncError> {
    if let Some((high, low)) = goes_back(page, *highest) {
        return Err(SyncError::Protocol(format!(
            "the origin went back from record {high} to {low}: its page cursor loops (Corteza pages by record id)"
        )));
    }
    *highest = (*highest).max(page.records.iter().map(|r| r.id).max());
    Ok(())
}

/// The highest id before and the lowest of `page`, when it is not above.
fn goes_back(page: &RecordsPage, highest: Option<Id>) -> Option<(Id, Id)> {
    let lowest = page.records.iter().map(|r| r.id).min()?;
    highest
        .filter(|high| lowest <= *high)
        .map(|high| (high, lowest))
}

/// The newest origin time on the page, in seconds.
fn newest(page: &RecordsPage) -> i64 {
    page.records
        .iter()
        .filter_map(|r| {
            [r.created_at, r.updated_at, r.deleted_at]
                .into_iter()
                .flatten()
                .max()
        })
        .map(|t| t.timestamp())
        .max()
        .unwrap_or(i64::MIN)
}

/// Where the pull stands once `page` is written: a fedsync origin's resume
/// cursor; a Corteza origin's watermark, after its last page only.
fn cursor_write(pull: &Pull<'_>, page: &RecordsPage) -> Option<CursorWrite> {
    let at = |cursor: String, last_sync: i64| CursorWrite {
        node_id: pull.node.id,
        shared_module_id: pull.shared.id,
        cursor,
        last_sync,
    };
    if pull.ours {
        page.resume_cursor
            .clone()
            .or_else(|| pull.cursor.clone())
            .map(|c| at(c, 0))
    } else if page.next_cursor.is_none() {
        Some(at(String::new(), pull.watermark))
    } else {
        None
    }
}
