//! Sync status: each node's pairing, structure and data state, its jobs,
//! live changes and, with a Corteza data plane, how hard Corteza is used.

use serde::Serialize;

use super::{id_string, or_dash, print_json, rfc3339, table};
use crate::admin::proto::v1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemJson {
    shared_module_id: String,
    shared_handle: String,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    node_id: String,
    name: String,
    status: String,
    structure_status: String,
    structure_synced_at: Option<String>,
    structure_error: String,
    data_status: String,
    data_synced_at: Option<String>,
    data_error: String,
    problems: Vec<ProblemJson>,
    paused: bool,
    schedule_structure: String,
    schedule_data: String,
    jobs: Vec<JobJson>,
    #[serde(flatten)]
    live: super::live::LiveJson,
    /// With a Corteza data plane (the same for every node).
    #[serde(skip_serializing_if = "Option::is_none")]
    corteza_pacing: Option<PacingJson>,
}

/// How hard the Corteza data plane is used.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct PacingJson {
    /// Requests allowed in flight now (the adaptive limit).
    limit: u32,
    max_concurrent: u32,
    in_flight: u32,
    p50_latency_ms: f64,
    requests: u64,
    throttled: u64,
    server_errors: u64,
    timeouts: u64,
    limit_cuts: u64,
}

impl PacingJson {
    fn of(p: &v1::CortezaPacing) -> PacingJson {
        PacingJson {
            limit: p.limit,
            max_concurrent: p.max,
            in_flight: p.in_flight,
            p50_latency_ms: (p.p50_latency_ms * 10.0).round() / 10.0,
            requests: p.requests,
            throttled: p.throttled,
            server_errors: p.server_errors,
            timeouts: p.timeouts,
            limit_cuts: p.limit_cuts,
        }
    }

    fn human(&self) -> String {
        format!(
            "Corteza: {} of at most {} requests in flight allowed ({} now), p50 latency {} ms; {} requests sent, {} throttled (429), {} server errors (5xx), {} timeouts; limit cut {} times",
            self.limit,
            self.max_concurrent,
            self.in_flight,
            self.p50_latency_ms,
            self.requests,
            self.throttled,
            self.server_errors,
            self.timeouts,
            self.limit_cuts
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobJson {
    id: String,
    kind: String,
    shared_module_id: Option<String>,
    schedule: String,
    state: String,
    next_run_at: Option<String>,
    attempts: u32,
    last_error: String,
    last_error_at: Option<String>,
    last_success_at: Option<String>,
    stop_reason: String,
    /// A sync now or reset is recorded and not yet served.
    triggered: bool,
}

pub(super) fn job_json(j: &v1::Job) -> JobJson {
    JobJson {
        id: j.id.to_string(),
        kind: j.kind.clone(),
        shared_module_id: id_string(j.shared_module_id),
        schedule: j.schedule.clone(),
        state: j.state.clone(),
        next_run_at: rfc3339(&j.next_run_at),
        attempts: j.attempts,
        last_error: j.last_error.clone(),
        last_error_at: rfc3339(&j.last_error_at),
        last_success_at: rfc3339(&j.last_success_at),
        stop_reason: j.stop_reason.clone(),
        triggered: j.triggered,
    }
}

/// One node's sync state, schedules and jobs (after `node schedule`,
/// `node pause`, `node resume`).
pub fn node_sync(json: bool, n: &v1::NodeSyncStatus) {
    let row = status_json(n);
    if json {
        return print_json(&row);
    }
    println!(
        "node {} ({}){}: structure every {}, data every {}",
        row.node_id,
        row.name,
        if row.paused { " paused" } else { "" },
        if row.schedule_structure.is_empty() {
            "(default)"
        } else {
            &row.schedule_structure
        },
        if row.schedule_data.is_empty() {
            "(default)"
        } else {
            &row.schedule_data
        },
    );
    print_jobs(&row);
}

fn print_jobs(n: &StatusJson) {
    for j in &n.jobs {
        println!(
            "  {} job {}{}: {}{}, next {}, {} failed attempts{}{}",
            j.kind,
            j.id,
            j.shared_module_id
                .as_ref()
                .map(|m| format!(" (shared module {m})"))
                .unwrap_or_default(),
            j.state,
            if j.triggered { ", triggered" } else { "" },
            j.next_run_at.clone().unwrap_or_else(|| "-".into()),
            j.attempts,
            if j.last_error.is_empty() {
                String::new()
            } else {
                format!("; last error: {}", j.last_error)
            },
            if j.stop_reason.is_empty() {
                String::new()
            } else {
                format!("; stopped: {}", j.stop_reason)
            },
        );
    }
}

fn status_json(n: &v1::NodeSyncStatus) -> StatusJson {
    StatusJson {
        node_id: n.node_id.to_string(),
        name: n.name.clone(),
        status: n.status.clone(),
        structure_status: n.structure_status.clone(),
        structure_synced_at: rfc3339(&n.structure_synced_at),
        structure_error: n.structure_error.clone(),
        data_status: n.data_status.clone(),
        data_synced_at: rfc3339(&n.data_synced_at),
        data_error: n.data_error.clone(),
        problems: n
            .problems
            .iter()
            .map(|p| ProblemJson {
                shared_module_id: p.shared_module_id.to_string(),
                shared_handle: p.shared_handle.clone(),
                reason: p.reason.clone(),
            })
            .collect(),
        paused: n.paused,
        schedule_structure: n.schedule_structure.clone(),
        schedule_data: n.schedule_data.clone(),
        jobs: n.jobs.iter().map(job_json).collect(),
        live: super::live::LiveJson::of(&n.live),
        corteza_pacing: None,
    }
}

pub fn sync_status(json: bool, status: &v1::GetSyncStatusResponse) {
    let pacing = status.corteza_pacing.as_ref().map(PacingJson::of);
    let rows: Vec<StatusJson> = status
        .nodes
        .iter()
        .map(|n| StatusJson {
            corteza_pacing: pacing.clone(),
            ..status_json(n)
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    if let Some(pacing) = &pacing {
        println!("{}", pacing.human());
    }
    if rows.is_empty() {
        return println!("no nodes");
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|n| {
            vec![
                n.node_id.clone(),
                n.name.clone(),
                or_dash(&n.structure_status),
                n.structure_synced_at.clone().unwrap_or_else(|| "-".into()),
                or_dash(&n.structure_error),
                or_dash(&n.data_status),
                n.data_synced_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "NODE",
            "NAME",
            "STRUCTURE",
            "LAST STRUCTURE",
            "STRUCTURE ERROR",
            "DATA",
            "LAST DATA",
        ],
        &table_rows,
    );
    for n in &rows {
        println!("node {}: live changes {}", n.node_id, n.live.human());
        print_jobs(n);
        for p in &n.problems {
            println!(
                "node {}: mapping of `{}` is broken: {}",
                n.node_id, p.shared_handle, p.reason
            );
        }
    }
}
