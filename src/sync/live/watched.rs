//! The data plane, watched: every batch that commits signals the modules
//! its records belong to (once each), with the peer they came from when
//! they all came from one. Reads pass through untouched.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Change, LiveChanges};
use crate::domain::{Id, NodeId, Record};
use crate::store::{ChangeQuery, RecordBatch};
use crate::sync::ports::{LocalError, LocalRecords, NewestChange};

pub struct Watched {
    inner: Arc<dyn LocalRecords>,
    live: Arc<LiveChanges>,
}

impl Watched {
    pub fn new(inner: Arc<dyn LocalRecords>, live: Arc<LiveChanges>) -> Watched {
        Watched { inner, live }
    }
}

/// The modules a batch's records belong to, each with the peer every one
/// of its records came from (`None`: some were written here).
pub(super) fn touched(records: &[Record]) -> Vec<(Id, Option<NodeId>)> {
    let mut modules: HashMap<Id, Option<NodeId>> = HashMap::new();
    for record in records {
        modules
            .entry(record.module_id)
            .and_modify(|from| {
                if *from != record.origin_node_id {
                    *from = None;
                }
            })
            .or_insert(record.origin_node_id);
    }
    let mut out: Vec<_> = modules.into_iter().collect();
    out.sort_unstable_by_key(|(module, _)| *module);
    out
}

#[async_trait]
impl LocalRecords for Watched {
    async fn apply_batch(&self, batch: RecordBatch) -> Result<Vec<Record>, LocalError> {
        let touched = touched(&batch.records);
        let written = self.inner.apply_batch(batch).await?;
        for (module, from_peer) in touched {
            self.live.signal(Change::Records { module, from_peer });
        }
        Ok(written)
    }

    async fn get_records(&self, ids: &[Id]) -> Result<Vec<Record>, LocalError> {
        self.inner.get_records(ids).await
    }

    async fn get_module_records(
        &self,
        module_id: Id,
        ids: &[Id],
    ) -> Result<Vec<Record>, LocalError> {
        self.inner.get_module_records(module_id, ids).await
    }

    async fn list_records(
        &self,
        module_id: Id,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, LocalError> {
        self.inner
            .list_records(module_id, include_deleted, after, limit)
            .await
    }

    async fn page_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, LocalError> {
        self.inner.page_changes(query).await
    }

    async fn count_changes(&self, query: &ChangeQuery) -> Result<Option<u64>, LocalError> {
        self.inner.count_changes(query).await
    }

    fn pacing(&self) -> Option<crate::sync::ports::PacingStatus> {
        self.inner.pacing()
    }

    async fn ready(&self) -> Result<(), String> {
        self.inner.ready().await
    }

    fn polls_for_changes(&self) -> bool {
        self.inner.polls_for_changes()
    }

    async fn newest_change(&self, module_id: Id) -> Result<Option<NewestChange>, LocalError> {
        self.inner.newest_change(module_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RecordValues;

    fn record(module: u64, from: Option<u64>) -> Record {
        let now = crate::domain::now();
        Record {
            id: Id::new(module * 100 + from.unwrap_or(0) + 1).unwrap(),
            module_id: Id::new(module).unwrap(),
            values: RecordValues::default(),
            origin_node_id: from.map(|n| NodeId::from_u64(n).unwrap()),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            changed_at: 0,
            revision: 1,
        }
    }

    #[test]
    fn a_batch_names_each_module_once_with_the_peer_all_its_records_came_from() {
        let batch = [
            record(7, Some(3)),
            record(7, Some(3)),
            record(9, Some(3)),
            record(9, None),
            record(11, Some(4)),
        ];
        let n = |i| NodeId::from_u64(i).unwrap();
        assert_eq!(
            touched(&batch),
            vec![
                (Id::new(7).unwrap(), Some(n(3))),
                (Id::new(9).unwrap(), None),
                (Id::new(11).unwrap(), Some(n(4))),
            ]
        );
        assert!(touched(&[]).is_empty());
    }
}
