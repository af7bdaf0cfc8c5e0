//! `fedsync record ...`: records of the embedded data plane.
//!
//! `record list` and `record export` print as the server streams, so they
//! hold one record at a time however many there are. `record import` is in
//! `import.rs`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::Subcommand;

use super::GlobalArgs;
use super::client::{RpcError, authorized, parse_id, resolve};
use super::connect::connect;
use super::output;
use crate::admin::proto::v1;
use crate::sync::records::parse_value_pairs;

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
    /// Ctrl-C stops sending; the batches committed stay, and the CLI says
    /// how to go on.
    Import {
        module: String,
        file: PathBuf,
        /// Skip the first N records of the file (non-blank lines, in file
        /// order), e.g. those an import stopped by Ctrl-C committed.
        #[arg(long, default_value_t = 0, value_name = "N")]
        skip: u64,
    },
    /// Print live records as JSON Lines that `record import` reads back.
    Export { module: String },
}

pub(super) fn values(pairs: Vec<(String, Vec<String>)>) -> Vec<v1::RecordValue> {
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
    if let RecordCommand::Import { module, file, skip } = command {
        return super::import::run(global, module, file, *skip).await;
    }
    let target = resolve(global)?;
    let channel = connect(&target).await?;
    let mut client = v1::record_service_client::RecordServiceClient::new(channel);
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
                ..Default::default()
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
                ..Default::default()
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
        // Run above, on a connection without a deadline.
        RecordCommand::Import { .. } => {}
    }
    Ok(())
}
