//! The records of the benchmark: a module of 10 fields of mixed kinds, its
//! records, and the same records as JSON lines for the baseline.

use std::collections::BTreeMap;
use std::path::Path;

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::Result;

/// The module of the benchmark: 10 fields of mixed kinds.
pub(crate) const FIELDS: [(&str, &str, bool); 10] = [
    ("name", "String", false),
    ("email", "Email", false),
    ("phone", "String", false),
    ("website", "Url", false),
    ("age", "Number", false),
    ("score", "Number", false),
    ("vip", "Bool", false),
    ("joined", "DateTime", false),
    ("tags", "String", true),
    ("notes", "String", false),
];

/// Record `i`: about 400 bytes as JSON.
pub(crate) fn record(i: u64, generation: u64) -> BTreeMap<&'static str, Vec<String>> {
    let tags = ["red", "green", "blue", "amber", "violet"];
    let mut values = BTreeMap::new();
    values.insert("name", vec![format!("Person {i:07} v{generation}")]);
    values.insert("email", vec![format!("person{i}@example.org")]);
    values.insert("phone", vec![format!("+386 1 555 {:04}", i % 10_000)]);
    values.insert("website", vec![format!("https://example.org/people/{i}")]);
    values.insert("age", vec![(18 + i % 70).to_string()]);
    values.insert("score", vec![format!("{}.{}", i % 100, i % 10)]);
    values.insert(
        "vip",
        vec![if i.is_multiple_of(7) { "1" } else { "0" }.to_owned()],
    );
    values.insert(
        "joined",
        vec![format!(
            "20{:02}-{:02}-{:02}T{:02}:{:02}:00Z",
            10 + i % 15,
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60
        )],
    );
    values.insert(
        "tags",
        vec![
            tags[(i % 5) as usize].to_owned(),
            tags[((i / 5) % 5) as usize].to_owned(),
        ],
    );
    values.insert(
        "notes",
        vec![format!(
            "Generated for the fedsync benchmark, record {i}, generation {generation}. \
             Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
        )],
    );
    values
}

pub(crate) fn wire_values(values: &BTreeMap<&'static str, Vec<String>>) -> Vec<v1::RecordValue> {
    values
        .iter()
        .map(|(name, v)| v1::RecordValue {
            name: (*name).into(),
            values: v.clone(),
            multi: *name == "tags",
        })
        .collect()
}

/// Writes the records as JSON lines (`{"id":..,"values":{..}}`) for the baseline.
pub(crate) fn write_jsonl(path: &Path, n: u64) -> Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut bytes = 0;
    for i in 0..n {
        let values: serde_json::Map<String, Value> = record(i, 0)
            .into_iter()
            .map(|(k, v)| {
                let value = if k == "tags" { json!(v) } else { json!(v[0]) };
                (k.to_owned(), value)
            })
            .collect();
        let line = json!({ "id": i.to_string(), "values": values }).to_string();
        bytes += line.len() as u64;
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(bytes / n.max(1))
}

pub(crate) fn fields() -> Vec<v1::Field> {
    FIELDS
        .iter()
        .map(|(name, kind, multi)| v1::Field {
            name: (*name).into(),
            kind: (*kind).into(),
            label: String::new(),
            is_multi: *multi,
        })
        .collect()
}
