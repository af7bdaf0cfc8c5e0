//! Reading records from Corteza: by id (a hundred at a time by one list
//! query where Corteza takes it, else one by one, in the module a record
//! is known to live in), a module's records in id order, and the pages
//! and counts of changes served to peers, merged from Corteza's three
//! time-sorted lists (`changes`) up to the settled second.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::changes::{ChangeList, ChangeMerge, Listed};
use super::client::CallError;
use super::json::{record_from, set, time_of};
use super::{CortezaData, META_EXTRECORD, SETTLE_SECONDS};
use crate::domain::{self, Id, Record};
use crate::store::ChangeQuery;
use crate::sync::ports::{LocalData, LocalError};

/// Records asked for by one list query (`(id = … OR id = …)`, about 25
/// bytes of URL each).
const IDS_PER_LIST: usize = 100;

/// The fewest records a list read asks for.
const MIN_READ: usize = 10;

/// Changes before this (microseconds) are served: their second is over.
fn settled() -> i64 {
    (domain::now().timestamp() - SETTLE_SECONDS + 1) * 1_000_000
}

impl CortezaData {
    pub(super) fn remember(&self, records: &[Record]) {
        let mut homes = self.homes.lock().expect("homes lock");
        if homes.len() > 100_000 {
            homes.clear();
        }
        for r in records {
            homes.insert(r.id, r.module_id);
        }
    }

    async fn read_record(&self, module_id: Id, id: Id) -> Result<Option<Record>, LocalError> {
        let path = format!("{}/record/{id}", self.module_path(module_id).await?);
        match self.get(&path, &[]).await {
            Ok(value) => Ok(Some(record_from(&value)?)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The records of `ids` in `module` (deleted ones included), read with
    /// one list query; `None` when Corteza refuses the query.
    async fn list_by_ids(&self, module: Id, ids: &[Id]) -> Result<Option<Vec<Record>>, LocalError> {
        let path = format!("{}/record/", self.module_path(module).await?);
        let any: Vec<String> = ids.iter().map(|id| format!("id = {id}")).collect();
        let query = [
            ("deleted", "1".to_owned()),
            ("query", format!("({})", any.join(" OR "))),
            ("limit", ids.len().to_string()),
        ];
        match self.get(&path, &query).await {
            Ok(page) => {
                let asked: std::collections::HashSet<Id> = ids.iter().copied().collect();
                let mut out = Vec::with_capacity(ids.len());
                for item in set(&page) {
                    let record = record_from(item)?;
                    // Checked here too: the query is Corteza's to honour.
                    if asked.contains(&record.id) && record.module_id == module {
                        out.push(record);
                    }
                }
                Ok(Some(out))
            }
            Err(CallError::Refused { message, .. }) => {
                tracing::info!(
                    %message,
                    "Corteza refused a record query by ids; records are read one by one"
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records by id, looked for in their known module, else in `hint`,
    /// else in every module of the namespace. Those whose module is known
    /// are read a hundred at a time by one list query; the rest, and any
    /// such a query did not return, one by one. One missing from the
    /// module it belongs to (removed in Corteza) comes back deleted, so a
    /// sync does not make it again.
    pub(super) async fn read_records(
        &self,
        hint: Option<Id>,
        ids: &[Id],
    ) -> Result<Vec<Record>, LocalError> {
        use std::sync::atomic::Ordering;
        let home = |id: Id| {
            self.homes
                .lock()
                .expect("homes lock")
                .get(&id)
                .copied()
                .or(hint)
        };
        let mut listed: HashMap<Id, Record> = HashMap::new();
        if !self.no_ids_query.load(Ordering::Relaxed) {
            let mut by_module: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
            for &id in ids {
                if let Some(module) = home(id) {
                    by_module.entry(module).or_default().push(id);
                }
            }
            'modules: for (module, group) in by_module {
                for chunk in group.chunks(IDS_PER_LIST) {
                    match self.list_by_ids(module, chunk).await? {
                        Some(records) => listed.extend(records.into_iter().map(|r| (r.id, r))),
                        None => {
                            self.no_ids_query.store(true, Ordering::Relaxed);
                            break 'modules;
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut modules: Option<Vec<Id>> = None;
        for &id in ids {
            if let Some(record) = listed.remove(&id) {
                out.push(record);
                continue;
            }
            let home = home(id);
            let candidates = match home {
                Some(module) => vec![module],
                None => {
                    if modules.is_none() {
                        modules = Some(self.list_modules().await?.iter().map(|m| m.id).collect());
                    }
                    modules.clone().unwrap_or_default()
                }
            };
            let mut found = None;
            for module in &candidates {
                if let Some(record) = self.read_record(*module, id).await? {
                    found = Some(record);
                    break;
                }
            }
            match (found, home) {
                (Some(record), _) => out.push(record),
                (None, Some(module)) => {
                    let now = domain::now();
                    out.push(Record {
                        id,
                        module_id: module,
                        values: BTreeMap::new(),
                        origin_node_id: None,
                        created_at: now,
                        updated_at: now,
                        deleted_at: Some(now),
                        changed_at: now.timestamp_micros(),
                        revision: 1,
                    });
                }
                (None, None) => {}
            }
        }
        self.remember(&out);
        Ok(out)
    }

    /// Whether Corteza holds no update or removal from `second` on in
    /// `module`: one request of at most one record for both lists, sent
    /// unless the last pages of the module found some (`busy_sides`), as
    /// the lists of a first pull or of new records are mostly empty.
    async fn no_updates_or_removals(
        &self,
        path: &str,
        module: Id,
        second: i64,
    ) -> Result<bool, LocalError> {
        if self
            .busy_sides
            .lock()
            .expect("busy_sides lock")
            .contains(&module)
        {
            return Ok(false);
        }
        let Some(t) = DateTime::<Utc>::from_timestamp(second, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        else {
            return Ok(false);
        };
        let query = [
            ("deleted", "1".to_owned()),
            (
                "query",
                format!("(updated_at >= '{t}' OR deleted_at >= '{t}')"),
            ),
        ];
        let (items, _) = self.list_page(path, &query, None, 1).await?;
        let none = items.is_empty();
        if !none {
            self.busy_sides
                .lock()
                .expect("busy_sides lock")
                .insert(module);
        }
        Ok(none)
    }

    /// One page of at most `limit` records of a list and Corteza's cursor
    /// to the next, if any.
    async fn list_page(
        &self,
        path: &str,
        query: &[(&str, String)],
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Value>, Option<String>), LocalError> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("limit", limit.to_string()));
        if let Some(c) = cursor {
            q.push(("pageCursor", c.to_owned()));
        }
        let mut page = self.get(path, &q).await?;
        let next = page
            .pointer("/filter/nextPage")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let items = match page.get_mut("set").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Ok((items, next))
    }

    /// The query selecting a module's records whose `column` is at or
    /// after `second` (Corteza compares to the second), or, with `after`,
    /// those of that second with a greater id and all of later seconds.
    pub(super) fn since_query(
        column: &str,
        second: i64,
        after: Option<i64>,
    ) -> Option<(&'static str, String)> {
        let at = |s: i64| {
            DateTime::<Utc>::from_timestamp(s, 0)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        };
        let t = at(second)?;
        let query = match after {
            None => format!("{column} >= '{t}'"),
            Some(id) => {
                let next = at(second.checked_add(1)?)?;
                format!("({column} >= '{next}' OR ({column} >= '{t}' AND id > {id}))")
            }
        };
        Some(("query", query))
    }

    /// The page of changes a query selects, in change order: the three
    /// lists Corteza sorts by time, merged (see `changes`).
    pub(super) async fn select_changes(
        &self,
        query: &ChangeQuery,
    ) -> Result<Vec<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(query.module_id).await?);
        use std::sync::atomic::Ordering;
        let settled = settled();
        let mut merge = ChangeMerge::new(query, settled);
        // Every list starts at the cursor (its second, after its id); at
        // the epoch for a reader with none, so that `updated_at` and
        // `deleted_at` leave out the unset.
        let (second, mut after) = merge.start().unwrap_or((0, None));
        if self.no_id_continuation.load(Ordering::Relaxed) {
            after = None;
        }
        if self
            .no_updates_or_removals(&path, query.module_id, second)
            .await?
        {
            merge.read_out(ChangeList::Updated);
            merge.read_out(ChangeList::Deleted);
        }
        let mut sides_empty = true;
        let mut cursors: [Option<String>; 3] = Default::default();
        let mut seen: [std::collections::HashSet<String>; 3] = Default::default();
        while let Some(list) = merge.next_list() {
            let cursor = cursors[list as usize].take();
            let q = |after: Option<i64>| {
                let mut q = vec![
                    ("deleted", "1".to_owned()),
                    ("sort", list.sort().to_owned()),
                ];
                q.extend(Self::since_query(list.column(), second, after));
                q
            };
            // As many records as the page still needs (a page of changes
            // costs about a list page per `page_size` records).
            let limit = (merge.wanted().max(MIN_READ) as u32).min(self.settings.page_size);
            let answer = match self
                .list_page(&path, &q(after), cursor.as_deref(), limit)
                .await
            {
                // A Corteza that does not take the continuation by id is
                // read by whole seconds from then on (the merge is right
                // either way; it only reads more).
                Err(LocalError::Invalid(message)) if after.is_some() && cursor.is_none() => {
                    tracing::info!(
                        %message,
                        "Corteza refused a record list going on after an id; seconds are read whole"
                    );
                    self.no_id_continuation.store(true, Ordering::Relaxed);
                    after = None;
                    self.list_page(&path, &q(None), None, limit).await
                }
                other => other,
            };
            let (items, next) = answer?;
            if let Some(next) = &next
                && (items.is_empty() || !seen[list as usize].insert(next.clone()))
            {
                return Err(LocalError::Unavailable(format!(
                    "Corteza's list {path} sorted by {} loops (the same page cursor twice)",
                    list.sort()
                )));
            }
            sides_empty &= list == ChangeList::Created || items.is_empty();
            let page = items.iter().map(listed).collect::<Result<Vec<_>, _>>()?;
            merge.add(list, page, next.is_some())?;
            cursors[list as usize] = next;
        }
        if sides_empty {
            self.busy_sides
                .lock()
                .expect("busy_sides lock")
                .remove(&query.module_id);
        }
        let selected = merge.finish();
        self.remember(&selected);
        Ok(selected)
    }

    pub(super) async fn list_module_records(
        &self,
        module_id: Id,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(module_id).await?);
        let query = [(
            "deleted",
            if include_deleted { "1" } else { "0" }.to_owned(),
        )];
        let mut out = Vec::new();
        self.list_all(&path, &query, |item| {
            let record = record_from(item)?;
            if after.is_none_or(|a| record.id > a) {
                out.push(record);
            }
            Ok(())
        })
        .await?;
        out.sort_by_key(|r| r.id);
        out.truncate(limit as usize);
        self.remember(&out);
        Ok(out)
    }
}

/// A record of a change list as the merge takes it.
pub(super) fn listed(item: &Value) -> Result<Listed, LocalError> {
    Ok(Listed {
        record: record_from(item)?,
        updated: time_of(item, "updatedAt")?.is_some(),
        received: item.pointer(&format!("/meta/{META_EXTRECORD}")).is_some(),
    })
}
