//! What a page's write changes that the next page could read: the next
//! page is made ready while this one is written only when it reads none
//! of it (its reads see the store as it was before the write commits).

use super::fields::{Usable, own_references, references};
use crate::domain::IdSet;
use crate::store::RecordBatch;
use crate::sync::ports::RemoteRecord;

/// The keys a batch writes.
pub(super) struct Writes {
    /// Origin records whose links it writes.
    origin: IdSet,
    /// Local records it writes.
    local: IdSet,
}

impl Writes {
    pub(super) fn of(batch: &RecordBatch) -> Writes {
        Writes {
            origin: batch
                .links
                .iter()
                .chain(&batch.new_links)
                .chain(&batch.touched)
                .map(|l| l.origin_record_id)
                .collect(),
            local: batch.records.iter().map(|r| r.id).collect(),
        }
    }

    /// Whether making `page` ready reads a link or a record these writes
    /// change: the same origin record again, a reference to one of its
    /// records, or one of ours it writes.
    pub(super) fn read_by(&self, page: &[RemoteRecord], usable: &[Usable<'_>]) -> bool {
        page.iter().any(|r| {
            self.origin.contains(&r.id)
                || references(r, usable).any(|id| self.origin.contains(&id))
                || own_references(r).any(|id| self.local.contains(&id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldKind, FieldMapping, NodeId, Record, RecordLink, now};
    use crate::sync::data::test_support::{field, id};
    use crate::sync::ports::RemoteValue;

    /// A batch that writes origin record 10 as our record 100.
    fn batch() -> RecordBatch {
        let link = RecordLink {
            node_id: NodeId::from(id(1)),
            exposed_module_id: id(2),
            origin_record_id: id(10),
            local_module_id: id(3),
            local_record_id: id(100),
            origin_changed_at: 0,
            created_at: now(),
            updated_at: now(),
        };
        let record = Record {
            id: id(100),
            module_id: id(3),
            values: Default::default(),
            origin_node_id: Some(NodeId::from(id(1))),
            created_at: now(),
            updated_at: now(),
            deleted_at: None,
            changed_at: 0,
            revision: 0,
        };
        RecordBatch {
            records: vec![record],
            links: vec![link],
            new_links: Vec::new(),
            ..Default::default()
        }
    }

    fn remote(origin: u64, values: &[(&str, &str, bool)]) -> RemoteRecord {
        RemoteRecord {
            id: id(origin),
            values: values
                .iter()
                .map(|(name, value, yours)| RemoteValue {
                    name: (*name).into(),
                    value: Some((*value).into()),
                    yours: *yours,
                })
                .collect(),
            created_at: None,
            updated_at: None,
            deleted_at: None,
        }
    }

    #[test]
    fn a_page_waits_only_for_what_it_reads() {
        let mappings = [
            FieldMapping {
                origin: field("name", "String"),
                destination: field("name", "String"),
            },
            FieldMapping {
                origin: field("boss", "Record"),
                destination: field("boss", "Record"),
            },
        ];
        let usable = [
            Usable {
                mapping: &mappings[0],
                dest_kind: FieldKind::String,
                dest_multi: false,
                last_of_origin: true,
            },
            Usable {
                mapping: &mappings[1],
                dest_kind: FieldKind::Record,
                dest_multi: false,
                last_of_origin: true,
            },
        ];
        let writes = Writes::of(&batch());
        let read = |page: &[RemoteRecord]| writes.read_by(page, &usable);
        // Other records, a String value that looks like the id: no wait.
        assert!(!read(&[remote(11, &[("name", "10", false)])]));
        assert!(!read(&[remote(11, &[("boss", "12", false)])]));
        // The same origin record again.
        assert!(read(&[remote(11, &[]), remote(10, &[])]));
        // A reference to the origin record the batch links.
        assert!(read(&[remote(11, &[("boss", "10", false)])]));
        // One of our records the batch writes, sent back as ours.
        assert!(read(&[remote(11, &[("boss", "100", true)])]));
        assert!(!read(&[remote(11, &[("boss", "101", true)])]));
    }
}
