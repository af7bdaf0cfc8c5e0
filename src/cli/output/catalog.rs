//! Output of the catalog and sync commands.

use serde::Serialize;

use super::{id_string, or_dash, print_json, rfc3339, table};
use crate::admin::proto::v1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldJson {
    name: String,
    kind: String,
    label: String,
    is_multi: bool,
}

fn fields(fields: &[v1::Field]) -> Vec<FieldJson> {
    fields
        .iter()
        .map(|f| FieldJson {
            name: f.name.clone(),
            kind: f.kind.clone(),
            label: f.label.clone(),
            is_multi: f.is_multi,
        })
        .collect()
}

fn field_list(fields: &[v1::Field]) -> String {
    fields
        .iter()
        .map(|f| {
            format!(
                "{}:{}{}",
                f.name,
                f.kind,
                if f.is_multi { ":multi" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModuleJson {
    id: String,
    namespace_id: String,
    handle: String,
    name: String,
    fields: Vec<FieldJson>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

fn module_json(m: &v1::Module) -> ModuleJson {
    ModuleJson {
        id: m.id.to_string(),
        namespace_id: m.namespace_id.to_string(),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: fields(&m.fields),
        created_at: rfc3339(&m.created_at),
        updated_at: rfc3339(&m.updated_at),
    }
}

pub fn module(json: bool, m: &v1::Module) {
    if json {
        return print_json(&module_json(m));
    }
    println!("module {} `{}` ({})", m.id, m.handle, m.name);
    for f in &m.fields {
        println!(
            "  {:<24} {}{}",
            f.name,
            f.kind,
            if f.is_multi { " (multi)" } else { "" }
        );
    }
}

pub fn modules(json: bool, list: &[v1::Module]) {
    if json {
        return print_json(&list.iter().map(module_json).collect::<Vec<_>>());
    }
    if list.is_empty() {
        return println!("no modules");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.handle.clone(),
                m.name.clone(),
                field_list(&m.fields),
            ]
        })
        .collect();
    table(&["ID", "HANDLE", "NAME", "FIELDS"], &rows);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExposedJson {
    id: String,
    node_id: String,
    module_id: String,
    namespace_id: String,
    handle: String,
    name: String,
    fields: Vec<FieldJson>,
    created_at: Option<String>,
    updated_at: Option<String>,
    deleted_at: Option<String>,
}

fn exposed_json(m: &v1::ExposedModule) -> ExposedJson {
    ExposedJson {
        id: m.id.to_string(),
        node_id: m.node_id.to_string(),
        module_id: m.module_id.to_string(),
        namespace_id: m.namespace_id.to_string(),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: fields(&m.fields),
        created_at: rfc3339(&m.created_at),
        updated_at: rfc3339(&m.updated_at),
        deleted_at: rfc3339(&m.deleted_at),
    }
}

pub fn exposed(json: bool, m: &v1::ExposedModule) {
    if json {
        return print_json(&exposed_json(m));
    }
    if m.deleted_at.is_some() {
        println!(
            "module `{}` is no longer exposed to node {}",
            m.handle, m.node_id
        );
    } else {
        println!(
            "module `{}` exposed to node {} with fields: {}",
            m.handle,
            m.node_id,
            field_list(&m.fields)
        );
    }
}

pub fn exposed_list(json: bool, list: &[v1::ExposedModule]) {
    if json {
        return print_json(&list.iter().map(exposed_json).collect::<Vec<_>>());
    }
    if list.is_empty() {
        return println!("nothing exposed to this node");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.handle.clone(),
                m.module_id.to_string(),
                field_list(&m.fields),
            ]
        })
        .collect();
    table(&["ID", "HANDLE", "MODULE", "FIELDS"], &rows);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SharedJson {
    id: String,
    node_id: String,
    external_module_id: String,
    origin_module_id: Option<String>,
    origin_namespace_id: Option<String>,
    handle: String,
    name: String,
    fields: Vec<FieldJson>,
    created_at: Option<String>,
    updated_at: Option<String>,
    deleted_at: Option<String>,
    mapping_status: String,
}

fn shared_json(m: &v1::SharedModule) -> SharedJson {
    SharedJson {
        id: m.id.to_string(),
        node_id: m.node_id.to_string(),
        external_module_id: m.external_module_id.to_string(),
        origin_module_id: id_string(m.origin_module_id),
        origin_namespace_id: id_string(m.origin_namespace_id),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: fields(&m.fields),
        created_at: rfc3339(&m.created_at),
        updated_at: rfc3339(&m.updated_at),
        deleted_at: rfc3339(&m.deleted_at),
        mapping_status: m.mapping_status.clone(),
    }
}

pub fn shared(json: bool, m: &v1::SharedModule) {
    if json {
        return print_json(&shared_json(m));
    }
    println!(
        "shared module {} `{}` ({}) from node {}",
        m.id, m.handle, m.name, m.node_id
    );
    println!("  origin module id  {}", m.external_module_id);
    println!(
        "  mapping           {}",
        if m.mapping_status.is_empty() {
            "not mapped"
        } else {
            &m.mapping_status
        }
    );
    if m.deleted_at.is_some() {
        println!("  the origin no longer exposes it");
    }
    for f in &m.fields {
        println!(
            "  {:<24} {}{}",
            f.name,
            f.kind,
            if f.is_multi { " (multi)" } else { "" }
        );
    }
}

pub fn shared_list(json: bool, list: &[v1::SharedModule]) {
    if json {
        return print_json(&list.iter().map(shared_json).collect::<Vec<_>>());
    }
    if list.is_empty() {
        return println!("nothing shared yet (run `fedsync sync now NODE --kind structure`)");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.handle.clone(),
                or_dash(&m.mapping_status),
                if m.deleted_at.is_some() {
                    "removed".into()
                } else {
                    "-".into()
                },
                field_list(&m.fields),
            ]
        })
        .collect();
    table(&["ID", "HANDLE", "MAPPING", "STATE", "FIELDS"], &rows);
}

#[derive(Serialize)]
struct FieldMappingJson {
    origin: Option<FieldJson>,
    destination: Option<FieldJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MappingJson {
    id: String,
    node_id: String,
    shared_module_id: String,
    shared_handle: String,
    module_id: String,
    module_handle: String,
    namespace_id: String,
    fields: Vec<FieldMappingJson>,
    status: String,
    status_reason: String,
    created_at: Option<String>,
    updated_at: Option<String>,
}

pub fn mapping(json: bool, m: &v1::Mapping) {
    let one = |f: &Option<v1::Field>| {
        f.as_ref()
            .map(|f| fields(std::slice::from_ref(f)).remove(0))
    };
    if json {
        return print_json(&MappingJson {
            id: m.id.to_string(),
            node_id: m.node_id.to_string(),
            shared_module_id: m.shared_module_id.to_string(),
            shared_handle: m.shared_handle.clone(),
            module_id: m.module_id.to_string(),
            module_handle: m.module_handle.clone(),
            namespace_id: m.namespace_id.to_string(),
            fields: m
                .fields
                .iter()
                .map(|f| FieldMappingJson {
                    origin: one(&f.origin),
                    destination: one(&f.destination),
                })
                .collect(),
            status: m.status.clone(),
            status_reason: m.status_reason.clone(),
            created_at: rfc3339(&m.created_at),
            updated_at: rfc3339(&m.updated_at),
        });
    }
    println!(
        "shared `{}` -> local `{}`: {}",
        m.shared_handle, m.module_handle, m.status
    );
    if !m.status_reason.is_empty() {
        println!("  broken: {}", m.status_reason);
    }
    for f in &m.fields {
        let name = |f: &Option<v1::Field>| {
            f.as_ref()
                .map(|f| format!("{} ({})", f.name, f.kind))
                .unwrap_or_default()
        };
        println!("  {:<32} -> {}", name(&f.origin), name(&f.destination));
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunJson {
    id: String,
    node_id: String,
    kind: String,
    shared_module_id: Option<String>,
    trigger: String,
    status: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    pages: u64,
    created: u64,
    updated: u64,
    deleted: u64,
    skipped: u64,
    errors: u64,
    error: String,
}

fn run_json(r: &v1::SyncRun) -> RunJson {
    RunJson {
        id: r.id.to_string(),
        node_id: r.node_id.to_string(),
        kind: r.kind.clone(),
        shared_module_id: id_string(r.shared_module_id),
        trigger: r.trigger.clone(),
        status: r.status.clone(),
        started_at: rfc3339(&r.started_at),
        finished_at: rfc3339(&r.finished_at),
        pages: r.pages,
        created: r.created,
        updated: r.updated,
        deleted: r.deleted,
        skipped: r.skipped,
        errors: r.errors,
        error: r.error.clone(),
    }
}

pub fn run(json: bool, r: &v1::SyncRun) {
    if json {
        return print_json(&run_json(r));
    }
    println!(
        "{} sync of node {} {}: {} pages, {} created, {} updated, {} deleted{}",
        r.kind,
        r.node_id,
        r.status,
        r.pages,
        r.created,
        r.updated,
        r.deleted,
        if r.error.is_empty() {
            String::new()
        } else {
            format!("; {}", r.error)
        }
    );
}

/// The runs a followed sync finished, as one compact JSON line (the last
/// line of `sync now --follow --json`).
pub fn runs_done_line(list: &[v1::SyncRun]) {
    match serde_json::to_string(&list.iter().map(run_json).collect::<Vec<_>>()) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

/// The runs a command just finished (one line each, or a JSON array).
pub fn runs_done(json: bool, list: &[v1::SyncRun]) {
    if json {
        return print_json(&list.iter().map(run_json).collect::<Vec<_>>());
    }
    for r in list {
        println!(
            "{} sync of node {}{} {}: {} pages, {} created, {} updated, {} deleted, {} skipped, {} errors (run {}){}",
            r.kind,
            r.node_id,
            if r.shared_module_id == 0 {
                String::new()
            } else {
                format!(", shared module {}", r.shared_module_id)
            },
            r.status,
            r.pages,
            r.created,
            r.updated,
            r.deleted,
            r.skipped,
            r.errors,
            r.id,
            if r.error.is_empty() {
                String::new()
            } else {
                format!("; {}", r.error)
            }
        );
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunErrorJson {
    seq: u64,
    origin_record_id: Option<String>,
    message: String,
}

pub fn run_errors(json: bool, list: &[v1::RunError]) {
    if json {
        return print_json(
            &list
                .iter()
                .map(|e| RunErrorJson {
                    seq: e.seq,
                    origin_record_id: id_string(e.origin_record_id),
                    message: e.message.clone(),
                })
                .collect::<Vec<_>>(),
        );
    }
    if list.is_empty() {
        return println!("no record errors in this run");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                id_string(e.origin_record_id).unwrap_or_else(|| "-".into()),
                e.message.clone(),
            ]
        })
        .collect();
    table(&["SEQ", "ORIGIN RECORD", "ERROR"], &rows);
}

pub fn runs(json: bool, list: &[v1::SyncRun]) {
    if json {
        return print_json(&list.iter().map(run_json).collect::<Vec<_>>());
    }
    if list.is_empty() {
        return println!("no runs yet");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                rfc3339(&r.started_at).unwrap_or_default(),
                r.kind.clone(),
                r.status.clone(),
                r.pages.to_string(),
                r.created.to_string(),
                r.updated.to_string(),
                r.deleted.to_string(),
                r.skipped.to_string(),
                or_dash(&r.error),
            ]
        })
        .collect();
    table(
        &[
            "STARTED", "KIND", "STATUS", "PAGES", "CREATED", "UPDATED", "DELETED", "SKIPPED",
            "ERROR",
        ],
        &rows,
    );
}

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
    }
}

pub fn sync_status(json: bool, nodes: &[v1::NodeSyncStatus]) {
    let rows: Vec<StatusJson> = nodes.iter().map(status_json).collect();
    if json {
        return print_json(&rows);
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
