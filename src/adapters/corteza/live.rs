//! Live changes of a Corteza data plane: Corteza does not say when its
//! records change, so each module peers want to hear of is looked at with
//! one small, paced request: has any record been created, updated or
//! removed since the second it was last looked at? A change becomes
//! servable once its second is over (`SETTLE_SECONDS`).

use chrono::{DateTime, SecondsFormat, Utc};

use super::{CortezaData, SETTLE_SECONDS};
use crate::domain::{self, Id};
use crate::sync::ports::{LocalError, NewestChange};

impl CortezaData {
    /// The newest change of a module as a mark that grows when a look
    /// finds a change (one list request of at most one record).
    pub(super) async fn look_for_changes(
        &self,
        module_id: Id,
    ) -> Result<Option<NewestChange>, LocalError> {
        let now = domain::now();
        let second = now.timestamp();
        let (since, mark) = self
            .looked()
            .get(&module_id)
            .copied()
            .unwrap_or((second, 0));
        let changed = self.changed_since(module_id, since).await?;
        let mark = if changed {
            now.timestamp_micros()
        } else {
            mark
        };
        // The next look starts at this second again: a change later in it
        // is seen then (a change seen twice costs one more notice).
        self.looked().insert(module_id, (second, mark));
        Ok(Some(NewestChange {
            at: mark,
            servable_at: DateTime::<Utc>::from_timestamp(second + 1 + SETTLE_SECONDS, 0)
                .unwrap_or(now),
        }))
    }

    async fn changed_since(&self, module_id: Id, second: i64) -> Result<bool, LocalError> {
        let Some(t) = DateTime::<Utc>::from_timestamp(second, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        else {
            return Ok(false);
        };
        let path = format!("{}/record/", self.module_path(module_id).await?);
        let query = [
            (
                "query",
                format!("(updated_at >= '{t}' OR created_at >= '{t}' OR deleted_at >= '{t}')"),
            ),
            ("deleted", "1".to_owned()),
            ("limit", "1".to_owned()),
        ];
        let page = self.get(&path, &query).await?;
        Ok(page
            .get("set")
            .and_then(|s| s.as_array())
            .is_some_and(|set| !set.is_empty()))
    }

    fn looked(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Id, (i64, i64)>> {
        self.looked.lock().unwrap_or_else(|e| e.into_inner())
    }
}
