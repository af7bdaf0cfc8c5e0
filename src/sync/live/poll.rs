//! A data plane whose records change without us (Corteza beside a
//! sidecar): each module exposed to a peer that takes change notices is
//! looked at every `local.corteza_change_poll` (one small request, paced
//! like every request to it), and a change becomes a signal once a page
//! can serve it (a second is served only once it is over). Changes we
//! wrote ourselves are seen too: the peer they came from is told once
//! more and pulls nothing (records never go back to their peer).

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Change, LiveChanges};
use crate::domain::{Id, Timestamp};
use crate::sync::ports::LocalRecords;

impl LiveChanges {
    /// Looks for changes of `records` until `stop`; returns at once when
    /// the data plane says when its records change (every one but Corteza)
    /// or live changes are off.
    pub async fn poll_local(
        self: Arc<Self>,
        records: Arc<dyn LocalRecords>,
        stop: CancellationToken,
    ) {
        if !self.settings.enabled || !records.polls_for_changes() {
            return;
        }
        let mut marks: HashMap<Id, i64> = HashMap::new();
        let mut waiting: Vec<(Timestamp, Id)> = Vec::new();
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = waiting.iter().map(|(at, _)| *at).min();
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = until(next) => {}
                _ = tick.tick() => self.look(&*records, &mut marks, &mut waiting).await,
            }
            let now = crate::domain::now();
            waiting.retain(|(at, module)| {
                if *at <= now {
                    self.signal(Change::Records {
                        module: *module,
                        from_peer: None,
                    });
                    false
                } else {
                    true
                }
            });
        }
    }

    /// One look at every module peers want to hear of.
    async fn look(
        &self,
        records: &dyn LocalRecords,
        marks: &mut HashMap<Id, i64>,
        waiting: &mut Vec<(Timestamp, Id)>,
    ) {
        let modules = match self.store.live_modules().await {
            Ok(modules) => modules,
            Err(error) => {
                tracing::warn!(error = %error, "cannot list the modules peers want to hear of");
                return;
            }
        };
        marks.retain(|module, _| modules.contains(module));
        for module in modules {
            let newest = match records.newest_change(module).await {
                Ok(Some(newest)) => newest,
                Ok(None) => continue,
                Err(error) => {
                    tracing::debug!(module = %module, error = %error, "cannot look for changes");
                    continue;
                }
            };
            // The first look only learns where the module stands.
            if let Some(mark) = marks.insert(module, newest.at)
                && newest.at > mark
                && !waiting.iter().any(|(_, m)| *m == module)
            {
                waiting.push((newest.servable_at, module));
            }
        }
    }
}

async fn until(at: Option<Timestamp>) {
    match at.and_then(|at| (at - crate::domain::now()).to_std().ok()) {
        Some(wait) => tokio::time::sleep(wait).await,
        None if at.is_some() => {}
        None => std::future::pending().await,
    }
}
