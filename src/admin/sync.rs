//! `SyncService`: run a sync now, see how syncs went.

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::node::writer;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::{from_catalog, from_control, from_store};
use super::sync_now;
use crate::domain::{Id, MappingStatus, NodeId, SyncKind};

/// Runs the jobs and answers with their runs, or with `no_wait` records
/// the triggers and answers with the jobs started.
async fn respond(
    state: &AdminState,
    node_id: NodeId,
    kind: SyncKind,
    only: Option<Id>,
    trigger: crate::store::TriggerRequest<'_>,
    no_wait: bool,
) -> Result<v1::SyncNowResponse, Status> {
    if no_wait {
        let started = sync_now::start_jobs(state, node_id, kind, only, trigger).await?;
        return Ok(v1::SyncNowResponse {
            runs: Vec::new(),
            started,
        });
    }
    let runs = sync_now::run_jobs(state, node_id, kind, only, trigger).await?;
    Ok(v1::SyncNowResponse {
        runs: runs.iter().map(proto::run).collect(),
        started: Vec::new(),
    })
}

/// The node and kind a `SyncNowRequest` names.
fn sync_target(r: &v1::SyncNowRequest) -> Result<(NodeId, SyncKind), Status> {
    let node_id = NodeId::from_u64(r.node_id)
        .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
    let kind = SyncKind::parse(&r.kind).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok((node_id, kind))
}

pub struct SyncApi {
    state: AdminState,
}

impl SyncApi {
    pub fn new(state: AdminState) -> SyncApi {
        SyncApi { state }
    }
}

#[tonic::async_trait]
impl v1::sync_service_server::SyncService for SyncApi {
    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn sync_now(
        &self,
        request: Request<v1::SyncNowRequest>,
    ) -> Result<Response<v1::SyncNowResponse>, Status> {
        writer(&request)?;
        let (node_id, kind) = sync_target(request.get_ref())?;
        let no_wait = request.get_ref().no_wait;
        let trigger = sync_now::manual(false);
        Ok(Response::new(
            respond(&self.state, node_id, kind, None, trigger, no_wait).await?,
        ))
    }

    type FollowSyncNowStream = ReceiverStream<Result<v1::SyncProgress, Status>>;

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn follow_sync_now(
        &self,
        request: Request<v1::SyncNowRequest>,
    ) -> Result<Response<Self::FollowSyncNowStream>, Status> {
        writer(&request)?;
        let (node_id, kind) = sync_target(request.get_ref())?;
        Ok(Response::new(sync_now::follow(
            self.state.clone(),
            node_id,
            kind,
        )))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn reset_sync(
        &self,
        request: Request<v1::ResetSyncRequest>,
    ) -> Result<Response<v1::SyncNowResponse>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node_id = NodeId::from_u64(r.node_id)
            .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        let shared = match r.shared.trim() {
            "" => None,
            key => Some(
                self.state
                    .catalog
                    .shared(&node_id.to_string(), key)
                    .await
                    .map_err(from_catalog)?
                    .id,
            ),
        };
        Ok(Response::new(
            respond(
                &self.state,
                node_id,
                SyncKind::Data,
                shared,
                sync_now::RESET,
                r.no_wait,
            )
            .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_run_errors(
        &self,
        request: Request<v1::ListRunErrorsRequest>,
    ) -> Result<Response<v1::ListRunErrorsResponse>, Status> {
        let run_id = Id::new(request.get_ref().run_id)
            .ok_or_else(|| Status::invalid_argument("run_id is required"))?;
        let errors = self
            .state
            .store
            .list_run_errors(run_id)
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListRunErrorsResponse {
            errors: errors
                .into_iter()
                .map(|e| v1::RunError {
                    seq: e.seq,
                    origin_record_id: e.origin_record_id.map(|i| i.get()).unwrap_or(0),
                    message: e.message,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_sync_status(
        &self,
        request: Request<v1::GetSyncStatusRequest>,
    ) -> Result<Response<v1::GetSyncStatusResponse>, Status> {
        let store = &self.state.store;
        if let Some(id) = NodeId::from_u64(request.get_ref().node_id) {
            let node = store
                .get_node(id)
                .await
                .map_err(from_store)?
                .filter(|n| n.deleted_at.is_none())
                .ok_or_else(|| Status::not_found(format!("node {id} does not exist")))?;
            return Ok(Response::new(v1::GetSyncStatusResponse {
                nodes: vec![self.node_status(&node).await?],
                corteza_pacing: self.state.records.pacing().map(proto::pacing),
            }));
        }
        // Every node: three statements whatever their number, at once (a
        // status page polled during a busy round must stay quick).
        let (snapshot, broken, capabilities) = tokio::try_join!(
            store.status_snapshot(),
            store.list_broken_mappings(),
            store.all_peer_capabilities()
        )
        .map_err(from_store)?;
        let capabilities: std::collections::HashMap<_, _> = capabilities.into_iter().collect();
        let mut problems = std::collections::HashMap::<NodeId, Vec<_>>::new();
        for b in broken {
            problems
                .entry(b.node_id)
                .or_default()
                .push(v1::MappingProblem {
                    shared_module_id: b.shared_module_id.get(),
                    shared_handle: b.shared_handle,
                    reason: b.reason,
                });
        }
        let mut jobs = std::collections::HashMap::<NodeId, Vec<_>>::new();
        for job in snapshot.jobs {
            jobs.entry(job.node_id).or_default().push(job);
        }
        let out = snapshot
            .nodes
            .into_iter()
            .map(|(node, structure, data)| {
                let caps = capabilities.get(&node.id);
                let live = proto::live(&self.state.live.peer_status(&node, caps), caps);
                status_view(
                    &node,
                    problems.remove(&node.id).unwrap_or_default(),
                    (structure, data),
                    jobs.remove(&node.id).unwrap_or_default(),
                    live,
                )
            })
            .collect();
        Ok(Response::new(v1::GetSyncStatusResponse {
            nodes: out,
            corteza_pacing: self.state.records.pacing().map(proto::pacing),
        }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn set_schedule(
        &self,
        request: Request<v1::SetScheduleRequest>,
    ) -> Result<Response<v1::NodeSyncStatus>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node = self.live_node(r.node_id).await?;
        self.state
            .scheduler
            .set_schedule(node.id, r.structure.as_deref(), r.data.as_deref())
            .await
            .map_err(from_control)?;
        Ok(Response::new(self.node_status(&node).await?))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn set_paused(
        &self,
        request: Request<v1::SetPausedRequest>,
    ) -> Result<Response<v1::NodeSyncStatus>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node = self.live_node(r.node_id).await?;
        self.state
            .scheduler
            .set_paused(node.id, r.paused)
            .await
            .map_err(from_store)?;
        let node = self.live_node(r.node_id).await?;
        Ok(Response::new(self.node_status(&node).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sync_runs(
        &self,
        request: Request<v1::ListSyncRunsRequest>,
    ) -> Result<Response<v1::ListSyncRunsResponse>, Status> {
        let r = request.into_inner();
        let node_id = NodeId::from_u64(r.node_id)
            .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        let runs = self
            .state
            .store
            .list_sync_runs(node_id, r.limit.min(1000))
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListSyncRunsResponse {
            runs: runs.iter().map(proto::run).collect(),
        }))
    }
}

impl SyncApi {
    /// One node's status: its broken mappings (a query each, for the
    /// handle), schedules and jobs.
    async fn node_status(&self, node: &crate::domain::Node) -> Result<v1::NodeSyncStatus, Status> {
        let store = &self.state.store;
        let mut problems = Vec::new();
        for mapping in store.list_mappings(node.id).await.map_err(from_store)? {
            if mapping.status == MappingStatus::Broken {
                let handle = store
                    .get_shared_module(mapping.shared_module_id)
                    .await
                    .map_err(from_store)?
                    .map(|m| m.handle)
                    .unwrap_or_default();
                problems.push(v1::MappingProblem {
                    shared_module_id: mapping.shared_module_id.get(),
                    shared_handle: handle,
                    reason: mapping.status_reason.clone(),
                });
            }
        }
        let schedule = store.node_schedule(node.id).await.map_err(from_store)?;
        let jobs = store.list_jobs(Some(node.id)).await.map_err(from_store)?;
        let live = self.state.live_status(node).await.map_err(from_store)?;
        Ok(status_view(node, problems, schedule, jobs, live))
    }

    async fn live_node(&self, id: u64) -> Result<crate::domain::Node, Status> {
        let node_id =
            NodeId::from_u64(id).ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        self.state
            .store
            .get_node(node_id)
            .await
            .map_err(from_store)?
            .filter(|n| n.deleted_at.is_none())
            .ok_or_else(|| Status::not_found(format!("node {node_id} does not exist")))
    }
}

/// A node's status as the admin API shows it.
fn status_view(
    node: &crate::domain::Node,
    problems: Vec<v1::MappingProblem>,
    (schedule_structure, schedule_data): (String, String),
    jobs: Vec<crate::domain::SyncJob>,
    live: v1::LiveStatus,
) -> v1::NodeSyncStatus {
    let full = proto::node(node);
    v1::NodeSyncStatus {
        node_id: full.id,
        name: full.name,
        status: full.status,
        structure_status: full.structure_status,
        structure_synced_at: full.structure_synced_at,
        structure_error: full.structure_error,
        data_status: full.data_status,
        data_synced_at: full.data_synced_at,
        data_error: full.data_error,
        problems,
        paused: node.paused,
        schedule_structure,
        schedule_data,
        jobs: jobs.iter().map(proto::job).collect(),
        live: Some(live),
    }
}
