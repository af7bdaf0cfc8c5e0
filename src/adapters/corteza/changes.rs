//! The changes after a reader's cursor, in (change time, id) order, from
//! the lists Corteza can give.
//!
//! A Corteza record's change time is the latest of its creation, update and
//! deletion times, and Corteza cannot sort by that. It can list the records
//! whose `created_at` (or `updated_at`, or `deleted_at`) is at or after a
//! time, sorted by that column (then by id). A record's change time is its
//! time in one of those three lists, so once each list has been read up to
//! a time B, every record changed before B has been seen in at least one of
//! them. [`ChangeMerge`] reads the three lists page by page, always the one
//! holding that bound back, until the page the reader asked for is known:
//! a page costs about a page of reads per list instead of every record
//! changed since the cursor.
//!
//! Corteza keeps times to the second and sorts each list by (time, id),
//! so positions in a list are (time, id) pairs: once each list has been
//! read up to (t, id), every change at or before it has been seen, and a
//! page may end inside a second. A page that starts inside a second asks
//! each list to go on after the cursor's id in that second
//! ([`ChangeMerge::start`]) instead of reading the second again, so a bulk
//! import of thousands of records in one second costs about a page of
//! reads per page too. [`MAX_SCAN`] bounds what one page may read.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{Id, Record};
use crate::store::ChangeQuery;
use crate::sync::ports::LocalError;

/// Records read from Corteza to answer one page; past it the page fails
/// with a clear error rather than hold an unbounded set in memory.
pub(super) const MAX_SCAN: usize = 200_000;

/// A list of changed records Corteza can give: the column it filters on
/// (as Corteza's query language names it) and the attribute it sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum ChangeList {
    Created,
    Updated,
    Deleted,
}

impl ChangeList {
    pub(super) const ALL: [ChangeList; 3] = [
        ChangeList::Created,
        ChangeList::Updated,
        ChangeList::Deleted,
    ];

    /// The column in Corteza's record query (`created_at >= '…'`).
    pub(super) fn column(self) -> &'static str {
        match self {
            ChangeList::Created => "created_at",
            ChangeList::Updated => "updated_at",
            ChangeList::Deleted => "deleted_at",
        }
    }

    /// The record attribute Corteza sorts by (`sort=createdAt`).
    pub(super) fn sort(self) -> &'static str {
        match self {
            ChangeList::Created => "createdAt",
            ChangeList::Updated => "updatedAt",
            ChangeList::Deleted => "deletedAt",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The record's time in this list (microseconds); `None` if it is not
    /// in it. `updated_at` of a record never updated is its creation (the
    /// engine's `Record`), so the caller says whether Corteza sent one.
    fn time(self, record: &Record, updated: bool) -> Option<i64> {
        match self {
            ChangeList::Created => Some(record.created_at),
            ChangeList::Updated => updated.then_some(record.updated_at),
            ChangeList::Deleted => record.deleted_at,
        }
        .map(|t| t.timestamp_micros())
    }
}

/// One record of a list page as the merge needs it.
pub(super) struct Listed {
    pub record: Record,
    /// Corteza sent an `updatedAt`.
    pub updated: bool,
    /// The record came from a peer (its meta names the origin record).
    pub received: bool,
}

/// Reads the three lists just far enough for one page of changes.
pub(super) struct ChangeMerge {
    lower: (i64, i64),
    settled: i64,
    limit: usize,
    exclude_origin: Option<crate::domain::NodeId>,
    exclude_received: bool,
    /// Per list: every record whose (time in it, id) is at or before this
    /// has been read; `None` once the list has been read to its end.
    read_through: [Option<(i64, i64)>; 3],

    /// The records that may be served, by (change time, id).
    found: BTreeMap<(i64, i64), Record>,
    keys: HashMap<Id, (i64, i64)>,
    scanned: usize,
}

impl ChangeMerge {
    /// `settled`: only changes before it (microseconds) are served.
    pub(super) fn new(query: &ChangeQuery, settled: i64) -> ChangeMerge {
        ChangeMerge {
            lower: query.lower_bound(),
            settled,
            limit: query.limit as usize,
            exclude_origin: query.exclude_origin,
            exclude_received: query.exclude_received,
            read_through: [Some((i64::MIN, i64::MIN)); 3],
            found: BTreeMap::new(),
            keys: HashMap::new(),
            scanned: 0,
        }
    }

    /// The second every list is read from: that of the cursor (Corteza
    /// compares to the second); `None` for a reader with no cursor.
    pub(super) fn since_second(&self) -> Option<i64> {
        (self.lower.0 != i64::MIN).then(|| self.lower.0.div_euclid(1_000_000))
    }

    /// Where every list starts: after the cursor's id in the cursor's
    /// second (Corteza compares times to the second); `None` for a reader
    /// with no cursor. Nothing a list leaves out is needed: a record whose
    /// (time, id) in it is at or before the cursor changed then (already
    /// served) or later, and then it is in the list of that later time.
    pub(super) fn start(&self) -> Option<(i64, Option<i64>)> {
        let second = self.since_second()?;
        Some((second, (self.lower.1 != i64::MIN).then_some(self.lower.1)))
    }

    /// `list` is known to hold nothing from where every list starts
    /// (`start`): it is not read.
    pub(super) fn read_out(&mut self, list: ChangeList) {
        self.read_through[list.index()] = None;
    }

    /// How many more changes the page needs: the records to ask the next
    /// list read for.
    pub(super) fn wanted(&self) -> usize {
        let ready = self.found.range(..self.known_below()).count();
        self.limit.saturating_sub(ready).max(1)
    }

    /// Every change before this (change time, id) has been seen.
    fn known_below(&self) -> (i64, i64) {
        self.read_through
            .iter()
            .map(|r| match r {
                Some((time, id)) => (*time, id.saturating_add(1)),
                None => (i64::MAX, i64::MAX),
            })
            .fold((self.settled, i64::MIN), std::cmp::min)
    }

    /// The list to read a page more of, or `None` once the page is known.
    pub(super) fn next_list(&self) -> Option<ChangeList> {
        let below = self.known_below();
        if below >= (self.settled, i64::MIN) {
            return None;
        }
        let ready = self.found.range(..below).take(self.limit).count();
        if ready >= self.limit {
            return None;
        }
        ChangeList::ALL
            .into_iter()
            .filter_map(|list| self.read_through[list.index()].map(|r| (r, list)))
            .min()
            .map(|(_, list)| list)
    }

    /// A page of `list`, in Corteza's order; `more` when Corteza has a
    /// next page.
    pub(super) fn add(
        &mut self,
        list: ChangeList,
        page: Vec<Listed>,
        more: bool,
    ) -> Result<(), LocalError> {
        self.scanned += page.len();
        if self.scanned > MAX_SCAN {
            return Err(LocalError::Unavailable(format!(
                "more than {MAX_SCAN} Corteza records would be read for one page of changes (too many records changed in the same second)"
            )));
        }
        let mut through = self.read_through[list.index()].unwrap_or((i64::MAX, i64::MAX));
        for listed in page {
            let Some(time) = list.time(&listed.record, listed.updated) else {
                return Err(LocalError::Unavailable(format!(
                    "Corteza listed record {} by {} without that time",
                    listed.record.id,
                    list.sort()
                )));
            };
            let at = (time, listed.record.id.as_i64());
            if at < through && through != (i64::MIN, i64::MIN) {
                return Err(LocalError::Unavailable(format!(
                    "Corteza's record list sorted by {} is not in order (record {})",
                    list.sort(),
                    listed.record.id
                )));
            }
            through = at;
            self.offer(listed);
        }
        self.read_through[list.index()] = if more { Some(through) } else { None };
        Ok(())
    }

    fn offer(&mut self, listed: Listed) {
        let record = listed.record;
        let key = (record.changed_at, record.id.as_i64());
        if key <= self.lower
            || (self.exclude_received && listed.received)
            || (self.exclude_origin.is_some() && record.origin_node_id == self.exclude_origin)
        {
            return;
        }
        // The same record from two lists: keep its latest state (it may
        // have changed between the reads).
        match self.keys.get(&record.id) {
            Some(old) if *old >= key => return,
            Some(old) => {
                self.found.remove(old);
            }
            None => {}
        }
        self.keys.insert(record.id, key);
        self.found.insert(key, record);
    }

    /// The page: the first changes after the cursor, all known.
    pub(super) fn finish(self) -> Vec<Record> {
        let below = self.known_below();
        self.found
            .into_iter()
            .take_while(|(key, _)| *key < below)
            .take(self.limit)
            .map(|(_, record)| record)
            .collect()
    }
}

/// A query for the first `limit` changes of module 1, nothing left out.
#[cfg(test)]
pub(super) fn from_the_start(limit: u32) -> ChangeQuery {
    ChangeQuery {
        module_id: Id::new(1).unwrap(),
        after: None,
        since: None,
        exclude_origin: None,
        exclude_received: false,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NodeId, RecordValues, Timestamp};

    fn at(second: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(second, 0).unwrap()
    }

    /// A record as Corteza would list it: times in seconds.
    struct Stored {
        record: Record,
        updated: bool,
        received: bool,
    }

    fn stored(id: u64, created: i64, updated: Option<i64>, deleted: Option<i64>) -> Stored {
        let changed = [Some(created), updated, deleted]
            .into_iter()
            .flatten()
            .max();
        Stored {
            record: Record {
                id: Id::new(id).unwrap(),
                module_id: Id::new(1).unwrap(),
                values: RecordValues::new(),
                origin_node_id: None,
                created_at: at(created),
                updated_at: at(updated.unwrap_or(created)),
                deleted_at: deleted.map(at),
                changed_at: changed.unwrap() * 1_000_000,
                revision: 1,
            },
            updated: updated.is_some(),
            received: false,
        }
    }

    /// Corteza's side: each list filtered by `column >= second`, sorted by
    /// (time, id), in pages of `page`; counts the records it sends.
    struct Corteza {
        records: Vec<Stored>,
        page: usize,
        sent: usize,
        /// Takes the continuation by id (else lists whole seconds, as a
        /// Corteza that refused it is read).
        continue_by_id: bool,
        /// Tells the merge which lists are empty from the start, as the
        /// adapter does after one query for both updates and removals
        /// (`read_out`).
        seed: bool,
    }

    impl Corteza {
        /// Corteza's list from `start`: `column >= second`, or with an id
        /// `(column >= second + 1 OR (column >= second AND id > id))`.
        fn list(
            &mut self,
            list: ChangeList,
            start: (i64, Option<i64>),
            from: usize,
            limit: usize,
        ) -> (Vec<Listed>, Option<usize>) {
            let (second, after) = if self.continue_by_id {
                start
            } else {
                (start.0, None)
            };
            let mut rows: Vec<(i64, u64, &Stored)> = self
                .records
                .iter()
                .filter_map(|s| {
                    let t = list.time(&s.record, s.updated)?;
                    let id = s.record.id.as_i64();
                    let selected = match after {
                        None => t >= second * 1_000_000,
                        Some(after) => {
                            t >= (second + 1) * 1_000_000 || (t >= second * 1_000_000 && id > after)
                        }
                    };
                    selected.then_some((t, s.record.id.get(), s))
                })
                .collect();
            rows.sort_by_key(|(t, id, _)| (*t, *id));
            let end = (from + limit).min(rows.len());
            let page: Vec<Listed> = rows[from..end]
                .iter()
                .map(|(_, _, s)| Listed {
                    record: s.record.clone(),
                    updated: s.updated,
                    received: s.received,
                })
                .collect();
            self.sent += page.len();
            (page, (end < rows.len()).then_some(end))
        }

        /// One page of changes, as the adapter reads it.
        fn serve(&mut self, query: &ChangeQuery, settled: i64) -> Vec<Record> {
            let mut merge = ChangeMerge::new(query, settled);
            let start = merge.start().unwrap_or((0, None));
            if self.seed {
                for list in ChangeList::ALL {
                    let empty = !self.records.iter().any(|s| {
                        list.time(&s.record, s.updated)
                            .is_some_and(|t| t >= start.0 * 1_000_000)
                    });
                    if empty {
                        merge.read_out(list);
                    }
                }
            }
            let mut next = [0usize; 3];
            while let Some(list) = merge.next_list() {
                // As the adapter asks: what the page still needs, at most
                // a page of Corteza's.
                let limit = merge.wanted().min(self.page);
                let (page, more) = self.list(list, start, next[list as usize], limit);
                merge.add(list, page, more.is_some()).unwrap();
                next[list as usize] = more.unwrap_or(usize::MAX);
            }
            merge.finish()
        }

        /// Every page from the start, each after the last record of the
        /// one before, as a reader follows the cursors.
        fn walk(&mut self, limit: u32, settled: i64, exclude_received: bool) -> Vec<(i64, u64)> {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let query = ChangeQuery {
                    module_id: Id::new(1).unwrap(),
                    after,
                    since: None,
                    exclude_origin: Some(NodeId::from_u64(7).unwrap()),
                    exclude_received,
                    limit,
                };
                let page = self.serve(&query, settled);
                let Some(last) = page.last() else {
                    return out;
                };
                after = Some((last.changed_at, last.id));
                out.extend(page.iter().map(|r| (r.changed_at, r.id.get())));
                assert!(out.len() <= self.records.len(), "the walk repeats records");
            }
        }

        /// What the walk must give: every record to serve, in order.
        fn expected(&self, settled: i64, exclude_received: bool) -> Vec<(i64, u64)> {
            let mut all: Vec<(i64, u64)> = self
                .records
                .iter()
                .filter(|s| s.record.changed_at < settled && !(exclude_received && s.received))
                .filter(|s| s.record.origin_node_id != NodeId::from_u64(7))
                .map(|s| (s.record.changed_at, s.record.id.get()))
                .collect();
            all.sort();
            all
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Few seconds, so many records share one; pages and limits small,
        /// so a second spans pages.
        #[test]
        fn following_the_cursors_serves_every_change_once_in_order(
            times in proptest::collection::vec(
                (0i64..12, proptest::option::of(0i64..6), proptest::option::of(0i64..6), 0u8..4),
                0..60,
            ),
            page in 1usize..6,
            limit in 1u32..8,
            settled_second in 0i64..25,
            exclude_received in proptest::bool::ANY,
            continue_by_id in proptest::bool::ANY,
            seed in proptest::bool::ANY,
        ) {
            let records = times
                .iter()
                .enumerate()
                .map(|(i, (created, updated, deleted, flag))| {
                    // Ids not in creation order.
                    let id = (i as u64 * 7919) % 10_007 + 1;
                    let mut s = stored(id, *created, updated.map(|u| created + u), deleted.map(|d| created + d));
                    s.received = *flag == 1;
                    if *flag == 2 {
                        s.record.origin_node_id = NodeId::from_u64(7);
                    }
                    s
                })
                .collect();
            let mut corteza = Corteza { records, page, sent: 0, continue_by_id, seed };
            let settled = settled_second * 1_000_000;
            let walked = corteza.walk(limit, settled, exclude_received);
            proptest::prop_assert_eq!(walked, corteza.expected(settled, exclude_received));
        }
    }

    /// The records Corteza sends for a first pull of `n` records (one
    /// created a second, every third updated and every tenth deleted
    /// later; or all created, updated and deleted in three seconds: a bulk
    /// import), in pages of 200, and the entries of the three lists.
    fn first_pull(n: u64, bulk: bool) -> (usize, usize) {
        let records: Vec<Stored> = (0..n)
            .map(|i| {
                let created = if bulk { 0 } else { i as i64 };
                let updated = (i % 3 == 0).then_some(if bulk { 1 } else { created + 500 });
                let deleted = (i % 10 == 0).then_some(if bulk { 2 } else { created + 700 });
                stored(i + 1, created, updated, deleted)
            })
            .collect();
        let listed: usize = records
            .iter()
            .map(|s| 1 + usize::from(s.updated) + usize::from(s.record.deleted_at.is_some()))
            .sum();
        let mut corteza = Corteza {
            records,
            page: 200,
            sent: 0,
            continue_by_id: true,
            seed: false,
        };
        let walked = corteza.walk(201, i64::MAX, true);
        assert_eq!(walked.len() as u64, n);
        (corteza.sent, listed)
    }

    /// A first pull reads in proportion to the records: each list entry
    /// once, plus at most a page of each list per page served. Reading
    /// every record changed since each page's cursor grew with the square.
    #[test]
    fn a_first_pull_reads_in_proportion_to_the_records() {
        for bulk in [false, true] {
            let (small, listed) = first_pull(2_000, bulk);
            let pages = 2_000 / 201 + 1;
            assert!(
                small <= listed + pages * 3 * 200,
                "bulk {bulk}: read {small} for {listed} entries"
            );
            let (large, _) = first_pull(8_000, bulk);
            // Four times the records: four times the reads (sixteen when it
            // grew with the square, as a second read again by every page
            // that starts inside it did).
            assert!(
                large <= small * 5,
                "bulk {bulk}: 2,000 records: {small} read; 8,000: {large}"
            );
        }
    }

    #[test]
    fn a_list_out_of_time_order_is_refused() {
        let query = from_the_start(10);
        let mut merge = ChangeMerge::new(&query, i64::MAX);
        let page = |ids: &[(u64, i64)]| {
            ids.iter()
                .map(|(id, created)| Listed {
                    record: stored(*id, *created, None, None).record,
                    updated: false,
                    received: false,
                })
                .collect()
        };
        merge
            .add(ChangeList::Created, page(&[(1, 5), (2, 9)]), true)
            .unwrap();
        let error = merge
            .add(ChangeList::Created, page(&[(3, 4)]), false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("sorted by createdAt is not in order"),
            "{error}"
        );
    }
}
