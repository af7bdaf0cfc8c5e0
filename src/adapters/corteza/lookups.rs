//! Looking up what an earlier batch made: whether Corteza holds as many
//! records carrying a peer's meta as there are links into the module
//! (`all_linked`, counted once and then relied on while the job's runs
//! succeed), and else the record made for an origin record, found by its
//! meta (`made_before`).

use std::time::Duration;

use serde_json::Value;

use super::json::{meta_str, record_from, set};
use super::{CortezaData, META_EXTRECORD, META_NODE};
use crate::domain::{Id, NodeId, Record};
use crate::sync::ports::LocalError;

/// How long a count of a peer's records in Corteza is relied on (see
/// `CortezaData::all_linked`).
const RECOUNT_AFTER: Duration = Duration::from_secs(24 * 3600);

impl CortezaData {
    /// Whether every record of `node` in Corteza's `module` has its link:
    /// then no record of a new batch was made before by a batch whose links
    /// were lost, and none needs looking up (`made_before`).
    ///
    /// Counted once (Corteza's count reads every record it counts, about
    /// 13 s for 100,000, so not per run): links never go away but with their
    /// node, so it holds when Corteza counts as many records carrying the
    /// peer's meta (removed ones included) as there are links; our links
    /// are counted first, so a record another job makes meanwhile can only
    /// make the counts differ (and the batch look its records up). Then it
    /// holds in this process while every run of the job since the one that
    /// counted succeeds: only a run that fails can leave records without
    /// links (a batch written to Corteza whose store commit was lost), and
    /// only the job of an origin module makes its records. A new process
    /// counts again (its store may be a restored backup), and so does this
    /// one after a day, past any pruning of the runs it relies on.
    pub(super) async fn all_linked(
        &self,
        node: NodeId,
        module: Id,
        run: Option<Id>,
    ) -> Result<bool, LocalError> {
        let known = self
            .all_linked_in
            .lock()
            .expect("all_linked_in lock")
            .get(&(node, module))
            .copied();
        if let (Some(run), Some((since, at))) = (run, known)
            && at.elapsed() < RECOUNT_AFTER
            && self.store.unsucceeded_runs_since(run, since).await? == 0
        {
            return Ok(true);
        }
        let links = self.store.count_links_into(node, module).await?;
        let path = format!("{}/record/", self.module_path(module).await?);
        let found = self
            .get(
                &path,
                &[
                    ("meta", format!("{META_NODE}={node}")),
                    ("deleted", "1".into()),
                    ("incTotal", "true".into()),
                    ("limit", "1".into()),
                ],
            )
            .await?;
        let total = peer_total(&found, node);
        let all = total == Some(links);
        {
            let mut known = self.all_linked_in.lock().expect("all_linked_in lock");
            match run {
                Some(run) if all => {
                    known.insert((node, module), (run, std::time::Instant::now()));
                }
                _ => {
                    known.remove(&(node, module));
                }
            }
        }
        if !all {
            tracing::info!(
                node = %node,
                module = %module,
                links,
                in_corteza = ?total,
                "records of the peer in Corteza and their links differ: new records are looked up by their meta before they are made"
            );
        }
        Ok(all)
    }

    /// The record fedsync made earlier for this origin record, if any (a
    /// batch whose links were not written: a crash, a store outage).
    pub(super) async fn made_before(
        &self,
        module_id: Id,
        node: NodeId,
        origin: Id,
    ) -> Result<Option<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(module_id).await?);
        let found = self
            .get(
                &path,
                &[
                    ("meta", format!("{META_EXTRECORD}={origin}")),
                    ("meta", format!("{META_NODE}={node}")),
                    ("deleted", "1".into()),
                    ("limit", "10".into()),
                ],
            )
            .await?;
        made_for(&found, node, origin).map(record_from).transpose()
    }
}

/// The record of a list made for `node`'s record `origin`, checked here
/// too: the meta filter is Corteza's to honour.
pub(super) fn made_for(page: &Value, node: NodeId, origin: Id) -> Option<&Value> {
    set(page).iter().find(|r| {
        meta_str(r, META_EXTRECORD) == Some(origin.to_string())
            && meta_str(r, META_NODE) == Some(node.to_string())
    })
}

/// How many records of `node` a count list (`meta=fedsync_node=N`,
/// `incTotal`, `limit=1`) says there are; `None` if it cannot tell.
/// Corteza leaves `total` out when it is 0; a filter it did not apply
/// shows as a record without the peer's meta.
pub(super) fn peer_total(page: &Value, node: NodeId) -> Option<u64> {
    let items = set(page);
    if !items
        .iter()
        .all(|r| meta_str(r, META_NODE) == Some(node.to_string()))
    {
        return None;
    }
    match page.pointer("/filter/total").and_then(Value::as_u64) {
        Some(total) => Some(total),
        None if items.is_empty() => Some(0),
        None => None,
    }
}
