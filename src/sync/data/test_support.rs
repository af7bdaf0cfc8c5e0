//! Helpers the data tests share.

use crate::domain::{Id, ModuleField};

pub(super) fn id(n: u64) -> Id {
    Id::new(n).unwrap()
}

/// A single-valued origin field.
pub(super) fn field(name: &str, kind: &str) -> ModuleField {
    ModuleField {
        kind: kind.into(),
        name: name.into(),
        label: name.into(),
        is_multi: false,
    }
}
