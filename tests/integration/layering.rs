//! Keeps the layering of ARCHITECTURE.md true: each module may import only
//! the modules its layer allows (imports point down; modules on one layer do
//! not import each other). Reads the `crate::` paths of every source file.

use std::collections::BTreeSet;
use std::path::Path;

/// Module -> the top-level modules it may import.
#[rustfmt::skip]
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli", &["daemon", "admin", "sync", "mapping", "store", "config", "crypto", "telemetry", "domain"]),
    ("daemon", &["admin", "federation", "adapters", "scheduler", "sync", "pairing", "store", "config", "crypto", "telemetry", "domain"]),
    ("admin", &["scheduler", "sync", "store", "crypto", "telemetry", "domain"]),
    ("scheduler", &["sync", "store", "config", "crypto", "telemetry", "domain"]),
    ("federation", &["sync", "pairing", "store", "crypto", "telemetry", "domain"]),
    ("adapters", &["sync", "store", "crypto", "domain"]),
    ("sync", &["pairing", "mapping", "store", "crypto", "domain"]),
    ("pairing", &["crypto", "domain"]),
    ("mapping", &["domain"]),
    ("store", &["domain"]),
    ("config", &["domain"]),
    ("crypto", &["domain"]),
    ("telemetry", &[]),
    ("domain", &[]),
];

fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        // `$crate::` (macros) and `fedsync::crate` do not count; `crate::x` does.
        if matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        // `use crate::{a, b}` lists several.
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for part in list[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_follow_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let allowed = ALLOWED
            .iter()
            .find(|(module, _)| *module == top)
            .unwrap_or_else(|| panic!("module `{top}` is not in the layer table; add it"))
            .1;
        let text = std::fs::read_to_string(&file).unwrap();
        for import in crate_imports(&text) {
            checked += 1;
            if import != top && !allowed.contains(&import.as_str()) {
                violations.push(format!("{} imports crate::{import}", relative.display()));
            }
        }
    }
    assert!(
        checked > 20,
        "the scan found too few imports ({checked}); is it reading the sources?"
    );
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_imports() {
    let found =
        crate_imports("use crate::{domain, store::Store};\nuse crate::config::X; $crate::store::y");
    assert_eq!(
        found,
        BTreeSet::from(["config".into(), "domain".into(), "store".into()])
    );
}

#[test]
fn both_engines_have_the_same_migration_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let names = |engine: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(engine).join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
