//! Records: `{"id", "moduleId", "values": {name: value or [values]},
//! "createdAt", "updatedAt", "deletedAt"}`; lists stream as they arrive.

use std::io::Write;

use serde::Serialize;

use super::{print_json, rfc3339};
use crate::admin::proto::v1;

/// Field name to a value or, for multi-value fields, an array of values.
pub fn values_object(values: &[v1::RecordValue]) -> serde_json::Map<String, serde_json::Value> {
    values
        .iter()
        .map(|v| {
            let value = if v.multi {
                serde_json::Value::Array(
                    v.values
                        .iter()
                        .cloned()
                        .map(serde_json::Value::String)
                        .collect(),
                )
            } else {
                v.values
                    .first()
                    .cloned()
                    .map(serde_json::Value::String)
                    .unwrap_or(serde_json::Value::Null)
            };
            (v.name.clone(), value)
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordJson {
    id: String,
    module_id: String,
    values: serde_json::Map<String, serde_json::Value>,
    created_at: Option<String>,
    updated_at: Option<String>,
    deleted_at: Option<String>,
}

fn record_json(r: &v1::Record) -> RecordJson {
    RecordJson {
        id: r.id.to_string(),
        module_id: r.module_id.to_string(),
        values: values_object(&r.values),
        created_at: rfc3339(&r.created_at),
        updated_at: rfc3339(&r.updated_at),
        deleted_at: rfc3339(&r.deleted_at),
    }
}

fn values_text(values: &[v1::RecordValue]) -> String {
    values
        .iter()
        .map(|v| {
            if v.multi {
                format!("{}=[{}]", v.name, v.values.join(", "))
            } else {
                format!(
                    "{}={}",
                    v.name,
                    v.values.first().map(String::as_str).unwrap_or("")
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn record(json: bool, r: &v1::Record, action: &str) {
    if json {
        return print_json(&record_json(r));
    }
    println!("record {} {action}: {}", r.id, values_text(&r.values));
}

/// Prints records as a stream arrives: a JSON array written element by
/// element, or one line per record.
pub struct RecordPrinter {
    json: bool,
    count: u64,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl RecordPrinter {
    pub fn new(json: bool) -> RecordPrinter {
        RecordPrinter {
            json,
            count: 0,
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    pub fn record(&mut self, r: &v1::Record) -> std::io::Result<()> {
        if self.json {
            self.out
                .write_all(if self.count == 0 { b"[\n  " } else { b",\n  " })?;
            serde_json::to_writer(&mut self.out, &record_json(r))?;
        } else {
            if self.count == 0 {
                writeln!(self.out, "{:<20} {:<27} VALUES", "ID", "UPDATED")?;
            }
            let removed = if r.deleted_at.is_some() {
                " (removed)"
            } else {
                ""
            };
            writeln!(
                self.out,
                "{:<20} {:<27} {}{removed}",
                r.id,
                rfc3339(&r.updated_at).unwrap_or_default(),
                values_text(&r.values)
            )?;
        }
        self.count += 1;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        if self.json {
            self.out
                .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        } else if self.count == 0 {
            writeln!(self.out, "no records")?;
        }
        self.out.flush()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportedJson {
    imported: u64,
    batches: u64,
}

pub fn imported(json: bool, r: &v1::ImportRecordsResponse, module: &str) {
    if json {
        return print_json(&ImportedJson {
            imported: r.imported,
            batches: r.batches,
        });
    }
    println!(
        "imported {} records into `{module}` in {} batches",
        r.imported, r.batches
    );
}
