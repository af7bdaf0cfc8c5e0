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
