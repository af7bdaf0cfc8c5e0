//! Housekeeping of the dispatcher: jobs made to match the paired nodes and
//! their mappings, runs dead processes or failed stores left `running`
//! closed, orphaned leases freed, old history pruned.

use std::collections::{HashMap, HashSet};

use super::{JobKey, Scheduler, chrono_of};
use crate::domain::{
    JobState, NodeFilter, NodeId, PairingStatus, PeerCapabilities, SyncJob, SyncKind, SyncRun,
    Timestamp,
};
use crate::store::StoreError;

impl Scheduler {
    /// What the dispatcher does every tick besides claiming.
    pub(super) async fn housekeeping(&self) {
        if let Err(error) = self.reconcile().await {
            tracing::warn!(error = %error, "cannot reconcile sync jobs; retrying");
        }
        // A replica that died (on any host) loses its job leases when they
        // expire; its runs are closed once its instance lease has expired
        // too.
        match crate::sync::runs::reclaim_interrupted(&*self.store, &self.owner, |_, _| false).await
        {
            Ok(0) => {}
            Ok(runs) => tracing::warn!(runs, "closed sync runs of a daemon process that stopped"),
            Err(error) => tracing::warn!(error = %error, "cannot close interrupted sync runs"),
        }
        self.close_unrecorded_runs().await;
        self.free_orphaned_leases().await;
    }

    /// Closes the runs of this process whose attempt ended without
    /// recording its outcome (the store failed as it ended, or the lease was
    /// lost and the attempt dropped); without this they would say `running`
    /// until the process stops.
    async fn close_unrecorded_runs(&self) {
        let in_flight = self.in_flight().clone();
        let since = crate::domain::now();
        let key = |run: &SyncRun| (run.node_id, run.kind, run.shared_module_id);
        match crate::sync::runs::close_unrecorded(
            &*self.store,
            &self.owner,
            since,
            |run| {
                in_flight
                    .get(&key(run))
                    .is_some_and(|started| run.started_at >= *started)
            },
            |run| !self.in_flight().contains_key(&key(run)),
        )
        .await
        {
            Ok(0) => {}
            Ok(runs) => tracing::warn!(runs, "closed sync runs whose outcome was not recorded"),
            Err(error) => tracing::warn!(error = %error, "cannot close unrecorded sync runs"),
        }
    }

    /// Makes the jobs match the paired nodes and their mappings: missing
    /// ones are created (due at once), extra ones removed, schedules
    /// updated; a job stopped before the admin changed the node or the
    /// mapping gets another chance.
    ///
    /// Callers that arrive together share one pass: a pass that started
    /// after a caller arrived sees whatever that caller changed before, so
    /// the caller need not run another (200 simultaneous `sync now` calls
    /// made 200 passes and queued the admin's reads behind them).
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        // Any pass numbered above this one starts after we arrived.
        let arrived = self.reconciles.load(Ordering::SeqCst);
        let mut finished = self.reconciled.lock().await;
        if *finished > arrived {
            return Ok(());
        }
        let number = self.reconciles.fetch_add(1, Ordering::SeqCst) + 1;
        self.reconcile_pass().await?;
        *finished = number;
        Ok(())
    }

    /// The jobs the paired nodes and their mappings call for, with their
    /// schedules and when what they depend on last changed. A data job of
    /// a peer that sends change notices defaults to the live schedule.
    /// Four queries whatever the number of nodes (this runs before every
    /// `sync now` and on every change of nodes or mappings).
    async fn wanted_jobs(&self) -> Result<HashMap<JobKey, (String, Timestamp)>, StoreError> {
        let nodes = self
            .store
            .list_nodes(&NodeFilter {
                status: Some(PairingStatus::Paired),
                ..NodeFilter::default()
            })
            .await?;
        let mut schedules: HashMap<NodeId, (String, String)> = self
            .store
            .node_schedules()
            .await?
            .into_iter()
            .map(|(id, s, d)| (id, (s, d)))
            .collect();
        let mut mappings: HashMap<NodeId, Vec<_>> = HashMap::new();
        for mapping in self.store.list_all_mappings().await? {
            mappings.entry(mapping.node_id).or_default().push(mapping);
        }
        let live: HashSet<NodeId> = match &self.settings.live_data_every {
            None => HashSet::new(),
            Some(_) => self
                .store
                .all_peer_capabilities()
                .await?
                .into_iter()
                .filter(|(_, caps)| caps.has(PeerCapabilities::CHANGE_NOTICES))
                .map(|(node, _)| node)
                .collect(),
        };
        let mut wanted = HashMap::new();
        for node in &nodes {
            let (structure, mut data) = schedules.remove(&node.id).unwrap_or_default();
            if data.is_empty() && live.contains(&node.id) {
                data = self.settings.live_data_every.clone().unwrap_or_default();
            }
            wanted.insert(
                (node.id, SyncKind::Structure, None),
                (structure, node.updated_at),
            );
            for mapping in mappings.remove(&node.id).unwrap_or_default() {
                wanted.insert(
                    (node.id, SyncKind::Data, Some(mapping.shared_module_id)),
                    (data.clone(), mapping.updated_at.max(node.updated_at)),
                );
            }
        }
        Ok(wanted)
    }

    async fn reconcile_pass(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let wanted = self.wanted_jobs().await?;
        let mut present = HashSet::new();
        for mut job in self.store.list_jobs(None).await? {
            let key = (job.node_id, job.kind, job.shared_module_id);
            let Some((schedule, changed_at)) = wanted.get(&key) else {
                self.store.delete_job(job.id).await?;
                continue;
            };
            present.insert(key);
            let mut dirty = false;
            if job.schedule != *schedule {
                job.schedule = schedule.clone();
                if job.state == JobState::Idle {
                    job.next_run_at = self
                        .schedule_of(&job)
                        .next_after(now)
                        .min(job.next_run_at.max(now));
                }
                dirty = true;
            }
            if job.state == JobState::Stopped && job.last_error_at.is_some_and(|t| *changed_at > t)
            {
                job.state = JobState::Idle;
                job.stop_reason.clear();
                job.next_run_at = now;
                dirty = true;
            }
            if dirty {
                job.updated_at = now;
                self.store.update_job(&job, None).await?;
            }
        }
        for (key, (schedule, _)) in wanted {
            if !present.contains(&key) {
                // The first run comes one period from now; `sync now` runs at once.
                let mut job = SyncJob::new(self.ids.next_id(), key.0, key.1, key.2, &schedule, now);
                job.next_run_at = self.schedule_of(&job).next_after(now);
                self.store.insert_job(&job).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn prune(&self, now: Timestamp) {
        let before = now - chrono_of(self.settings.history_retention);
        match self.store.prune_history(before).await {
            Ok((0, 0)) => {}
            Ok((runs, audit)) => {
                tracing::info!(
                    runs,
                    audit_events = audit,
                    "removed history past its retention"
                )
            }
            Err(error) => tracing::warn!(error = %error, "cannot remove old history"),
        }
        match self
            .store
            .prune_runs_beyond(self.settings.history_runs_per_job)
            .await
        {
            Ok(0) => {}
            Ok(runs) => tracing::info!(runs, "removed runs beyond the number kept per job"),
            Err(error) => tracing::warn!(error = %error, "cannot remove old runs"),
        }
    }
}
