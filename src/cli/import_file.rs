//! The file of `record import`: every line checked against the module
//! before anything is sent, then streamed in batches (past `--skip N`
//! records), and where a count of records ends in it.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, anyhow};
use tokio::sync::mpsc;

use super::record::values;
use crate::admin::proto::v1;
use crate::domain::{FieldKind, Id, LocalField, LocalModule};
use crate::sync::records::{check_values, values_from_json};

/// Rows per import message (one transaction each on the daemon).
const IMPORT_BATCH: usize = 500;
/// Problems listed before a check of an import file gives up.
const MAX_REPORTED: usize = 20;

/// The module as the record checks need it.
pub(super) fn local_module(m: &v1::Module) -> anyhow::Result<LocalModule> {
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
pub(super) fn check_file(module: &LocalModule, path: &Path) -> anyhow::Result<u64> {
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

/// Streams the (checked) file in batches, past the first `skip` records;
/// stops when the call no longer takes them.
pub(super) fn send_batches(
    path: &Path,
    module: &str,
    skip: u64,
    tx: mpsc::Sender<v1::ImportRecordsRequest>,
) -> anyhow::Result<()> {
    let mut first = true;
    // A closed channel means the call ended; its status tells why.
    let mut send = |rows: Vec<v1::ImportRow>| {
        let module = if std::mem::take(&mut first) {
            module.to_owned()
        } else {
            String::new()
        };
        tx.blocking_send(v1::ImportRecordsRequest { module, rows })
            .is_ok()
    };
    let mut rows = Vec::with_capacity(IMPORT_BATCH);
    let mut seen = 0u64;
    for (n, line) in open(path)?.lines().enumerate() {
        let line =
            line.with_context(|| format!("cannot read {} line {}", path.display(), n + 1))?;
        if seen < skip {
            seen += u64::from(!line.trim().is_empty());
            continue;
        }
        let Some(pairs) = parse_line(&line).map_err(|e| anyhow!("line {}: {e}", n + 1))? else {
            continue;
        };
        rows.push(v1::ImportRow {
            values: values(pairs),
        });
        if rows.len() == IMPORT_BATCH
            && !send(std::mem::replace(
                &mut rows,
                Vec::with_capacity(IMPORT_BATCH),
            ))
        {
            return Ok(());
        }
    }
    if !rows.is_empty() {
        send(rows);
    }
    Ok(())
}

/// The lines holding records `after + 1` to `upto` (counted from 1 in file
/// order): from the line after record `after` (or line 1) to record `upto`'s.
pub(super) fn lines_of(path: &Path, after: u64, upto: u64) -> Option<(usize, usize)> {
    let mut first = (after == 0).then_some(1);
    let mut seen = 0u64;
    for (n, line) in open(path).ok()?.lines().enumerate() {
        if line.ok()?.trim().is_empty() {
            continue;
        }
        seen += 1;
        if seen == after {
            first = Some(n + 2);
        }
        if seen == upto {
            return Some((first?, n + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_records_are_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.jsonl");
        std::fs::write(&file, "{\"n\":\"1\"}\n\n{\"n\":\"2\"}\n{\"n\":\"3\"}\n").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        send_batches(&file, "7", 1, tx).unwrap();
        let message = rx.try_recv().unwrap();
        assert_eq!(message.module, "7");
        let names: Vec<&str> = message
            .rows
            .iter()
            .map(|r| r.values[0].values[0].as_str())
            .collect();
        assert_eq!(names, ["2", "3"]);
        assert!(rx.try_recv().is_err());
    }
}
