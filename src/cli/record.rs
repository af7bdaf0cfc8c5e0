//! `fedsync record ...`: records of the embedded data plane.
//!
//! `record list` and `record export` print as the server streams, so they
//! hold one record at a time however many there are. `record import` reads
//! the file twice: first to check every line against the module (nothing is
//! sent if any line is wrong), then to stream batches, each written by the
//! daemon in one transaction.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Subcommand;
use tokio_stream::wrappers::ReceiverStream;

use super::GlobalArgs;
use super::client::{RpcError, authorized, connect, parse_id, resolve};
use super::output;
use crate::admin::proto::v1;
use crate::domain::{FieldKind, Id, LocalField, LocalModule};
use crate::sync::records::{check_values, parse_value_pairs, values_from_json};

/// Rows per import message (one transaction each on the daemon).
const IMPORT_BATCH: usize = 500;
/// Problems listed before a check of an import file gives up.
const MAX_REPORTED: usize = 20;

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Create a record: `--value NAME=VALUE`, repeated for each value of a multi-value field.
    Create {
        /// Module id or handle.
        module: String,
        #[arg(long = "value", value_name = "NAME=VALUE")]
        values: Vec<String>,
    },
    /// Replace the values of the given fields; other fields keep theirs.
    Update {
        module: String,
        id: String,
        #[arg(long = "value", value_name = "NAME=VALUE")]
        values: Vec<String>,
        /// Remove every value of this field.
        #[arg(long = "clear", value_name = "NAME")]
        clear: Vec<String>,
    },
    /// Remove a record (kept as removed so peers learn of it).
    Rm { module: String, id: String },
    /// Every live record of a module (removed ones too with --deleted).
    List {
        module: String,
        #[arg(long)]
        deleted: bool,
    },
    /// Create records from a JSON Lines file: one object per line, field
    /// name to a value or, for multi-value fields, an array of values.
    Import { module: String, file: PathBuf },
    /// Print live records as JSON Lines that `record import` reads back.
    Export { module: String },
}

fn values(pairs: Vec<(String, Vec<String>)>) -> Vec<v1::RecordValue> {
    pairs
        .into_iter()
        .map(|(name, values)| v1::RecordValue {
            name,
            values,
            multi: false,
        })
        .collect()
}

fn record_id(text: &str) -> anyhow::Result<u64> {
    parse_id(text).map_err(|_| anyhow!("`{text}` is not a record id"))
}

pub async fn record(global: &GlobalArgs, command: &RecordCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let channel = connect(&target).await?;
    let mut client = v1::record_service_client::RecordServiceClient::new(channel.clone());
    let json = global.json;
    match command {
        RecordCommand::Create {
            module,
            values: pairs,
        } => {
            let pairs = parse_value_pairs(pairs).map_err(|e| anyhow!("--value {e}"))?;
            let request = v1::WriteRecordRequest {
                module: module.clone(),
                id: 0,
                values: values(pairs),
            };
            let record = client
                .create_record(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::record(json, &record.into_inner(), "created");
        }
        RecordCommand::Update {
            module,
            id,
            values: pairs,
            clear,
        } => {
            let mut pairs = parse_value_pairs(pairs).map_err(|e| anyhow!("--value {e}"))?;
            for name in clear {
                if pairs.iter().any(|(n, _)| n == name) {
                    return Err(anyhow!(
                        "field `{name}` is both set (--value) and cleared (--clear)"
                    ));
                }
                pairs.push((name.clone(), Vec::new()));
            }
            if pairs.is_empty() {
                return Err(anyhow!(
                    "nothing to change: give --value NAME=VALUE or --clear NAME"
                ));
            }
            let request = v1::WriteRecordRequest {
                module: module.clone(),
                id: record_id(id)?,
                values: values(pairs),
            };
            let record = client
                .update_record(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::record(json, &record.into_inner(), "updated");
        }
        RecordCommand::Rm { module, id } => {
            let request = v1::RecordRef {
                module: module.clone(),
                id: record_id(id)?,
            };
            let record = client
                .delete_record(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::record(json, &record.into_inner(), "removed");
        }
        RecordCommand::List { module, deleted } => {
            let request = v1::ListRecordsRequest {
                module: module.clone(),
                include_deleted: *deleted,
            };
            let mut stream = client
                .list_records(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            let mut printer = output::RecordPrinter::new(json);
            while let Some(record) = stream.message().await.map_err(RpcError::from)? {
                printer.record(&record)?;
            }
            printer.finish()?;
        }
        RecordCommand::Export { module } => {
            let request = v1::ListRecordsRequest {
                module: module.clone(),
                include_deleted: false,
            };
            let mut stream = client
                .list_records(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            while let Some(record) = stream.message().await.map_err(RpcError::from)? {
                serde_json::to_writer(&mut out, &output::values_object(&record.values))
                    .map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        RecordCommand::Import { module, file } => {
            let mut modules = v1::module_service_client::ModuleServiceClient::new(channel);
            let found = modules
                .get_module(authorized(
                    &target,
                    v1::ModuleRef {
                        key: module.clone(),
                    },
                )?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            let local = local_module(&found)?;
            let rows = check_file(&local, file)?;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let path = file.clone();
            let module_key = found.id.to_string();
            let reader = tokio::task::spawn_blocking(move || send_batches(&path, &module_key, tx));
            let response = client
                .import_records(authorized(&target, ReceiverStream::new(rx))?)
                .await
                .map_err(RpcError::from);
            reader.await.context("the import reader stopped")??;
            let response = response?.into_inner();
            if response.imported != rows {
                return Err(anyhow!(
                    "the daemon imported {} of {rows} records; check `fedsync record list {}`",
                    response.imported,
                    found.handle
                ));
            }
            output::imported(json, &response, &found.handle);
        }
    }
    Ok(())
}

/// The module as the record checks need it.
fn local_module(m: &v1::Module) -> anyhow::Result<LocalModule> {
    let now = crate::domain::now();
    Ok(LocalModule {
        id: Id::new(m.id).ok_or_else(|| anyhow!("the daemon sent a module without id"))?,
        namespace_id: Id::new(m.namespace_id).unwrap_or(Id::new(1).expect("non-zero")),
        handle: m.handle.clone(),
        name: m.name.clone(),
        fields: m
            .fields
            .iter()
            .map(|f| {
                Ok(LocalField {
                    name: f.name.clone(),
                    kind: FieldKind::parse(&f.kind).map_err(|e| anyhow!("{e}"))?,
                    label: f.label.clone(),
                    is_multi: f.is_multi,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    })
}

fn open(path: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufReader::new(file))
}

/// Field values by name, in file order.
type LineValues = Vec<(String, Vec<String>)>;

/// One line of an import file as field values; `None` for a blank line.
fn parse_line(line: &str) -> Result<Option<LineValues>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    values_from_json(&value).map(Some)
}

/// Checks every line against the module; the number of records, or every
/// problem (up to a limit) with its line number.
fn check_file(module: &LocalModule, path: &Path) -> anyhow::Result<u64> {
    let mut problems = Vec::new();
    let mut rows = 0u64;
    for (n, line) in open(path)?.lines().enumerate() {
        let line =
            line.with_context(|| format!("cannot read {} line {}", path.display(), n + 1))?;
        match parse_line(&line).and_then(|v| v.map(|v| check_values(module, v)).transpose()) {
            Ok(Some(_)) => rows += 1,
            Ok(None) => {}
            Err(e) => {
                problems.push(format!("line {}: {e}", n + 1));
                if problems.len() >= MAX_REPORTED {
                    problems.push("(stopped checking here)".into());
                    break;
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(anyhow!(
            "nothing was imported; {} has problems:\n  {}",
            path.display(),
            problems.join("\n  ")
        ));
    }
    if rows == 0 {
        return Err(anyhow!("{} holds no records", path.display()));
    }
    Ok(rows)
}

/// Streams the (checked) file in batches.
fn send_batches(
    path: &Path,
    module: &str,
    tx: tokio::sync::mpsc::Sender<v1::ImportRecordsRequest>,
) -> anyhow::Result<()> {
    let mut rows = Vec::with_capacity(IMPORT_BATCH);
    let mut first = true;
    let send = |rows: Vec<v1::ImportRow>, first: &mut bool| {
        let message = v1::ImportRecordsRequest {
            module: if *first {
                module.to_owned()
            } else {
                String::new()
            },
            rows,
        };
        *first = false;
        // A closed channel means the call ended; its status tells why.
        let _ = tx.blocking_send(message);
    };
    for (n, line) in open(path)?.lines().enumerate() {
        let line =
            line.with_context(|| format!("cannot read {} line {}", path.display(), n + 1))?;
        let Some(pairs) = parse_line(&line).map_err(|e| anyhow!("line {}: {e}", n + 1))? else {
            continue;
        };
        rows.push(v1::ImportRow {
            values: values(pairs),
        });
        if rows.len() == IMPORT_BATCH {
            send(
                std::mem::replace(&mut rows, Vec::with_capacity(IMPORT_BATCH)),
                &mut first,
            );
        }
    }
    if !rows.is_empty() {
        send(rows, &mut first);
    }
    Ok(())
}
