//! The adapter against responses recorded from a stock Corteza server
//! (`tests/fixtures/corteza-wire/S01`-`S09`): the lists it reads, by
//! time, by ids and after an id inside a second, and the look-ups by meta.

use chrono::DateTime;
use serde_json::{Value, json};

use super::changes::{ChangeList, ChangeMerge, Listed};
use super::json::{record_from, set};
use super::lookups::{made_for, peer_total};
use super::read::listed;
use super::*;

/// A response recorded from a stock Corteza server (fixtures S01-S05):
/// its records and `filter`.
use std::collections::HashSet;

fn recorded(text: &str) -> (Vec<Value>, Value) {
    let response = recorded_page(text);
    (set(&response).to_vec(), response["filter"].clone())
}

/// The `{filter, set}` Corteza answered in a recorded exchange.
fn recorded_page(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap();
    v["response"]["body"]["response"].clone()
}

/// Real Corteza takes the lists fedsync reads: one time column at or
/// after a time, sorted by it (then by ID, which Corteza adds), paged
/// with `nextPage`; the merge accepts them in that order.
#[test]
fn recorded_corteza_lists_sorted_by_time_are_merged_in_order() {
    let pages = [
        (
            ChangeList::Created,
            include_str!(
                "../../../tests/fixtures/corteza-wire/S01-compose-list-records-by-created-page-1.json"
            ),
        ),
        (
            ChangeList::Created,
            include_str!(
                "../../../tests/fixtures/corteza-wire/S02-compose-list-records-by-created-page-2.json"
            ),
        ),
        (
            ChangeList::Updated,
            include_str!(
                "../../../tests/fixtures/corteza-wire/S03-compose-list-records-by-updated.json"
            ),
        ),
        (
            ChangeList::Deleted,
            include_str!(
                "../../../tests/fixtures/corteza-wire/S04-compose-list-records-by-deleted.json"
            ),
        ),
    ];
    let query = changes::from_the_start(100);
    let mut merge = ChangeMerge::new(&query, i64::MAX);
    let mut read = Vec::new();
    for (list, text) in pages {
        let (items, filter) = recorded(text);
        assert_eq!(filter["sort"], json!(format!("{}, ID", list.sort())));
        assert!(!items.is_empty());
        let page: Vec<Listed> = items.iter().map(|i| listed(i).unwrap()).collect();
        read.extend(page.iter().map(|l| l.record.id));
        let more = filter["nextPage"].as_str().is_some_and(|c| !c.is_empty());
        merge.add(list, page, more).unwrap();
    }
    // Page 2 of the created list (read with page 1's `nextPage`) goes on
    // after page 1: no record twice (the merge checked the time order).
    assert_eq!(read[..4].iter().collect::<HashSet<_>>().len(), 4);
    let served = merge.finish();
    assert!(!served.is_empty());
    assert!(
        served
            .windows(2)
            .all(|w| (w[0].changed_at, w[0].id) < (w[1].changed_at, w[1].id))
    );
}

/// Real Corteza answers a query by ids with those records, deleted ones
/// included (fixture S05).
#[test]
fn a_recorded_corteza_list_by_ids_holds_the_records_asked_for() {
    let text =
        include_str!("../../../tests/fixtures/corteza-wire/S05-compose-list-records-by-ids.json");
    let (items, filter) = recorded(text);
    let asked: Vec<String> = filter["query"]
        .as_str()
        .unwrap()
        .trim_matches(|c| c == '(' || c == ')')
        .split(" OR ")
        .map(|p| p.trim_start_matches("id = ").to_owned())
        .collect();
    let got: Vec<String> = items
        .iter()
        .map(|i| record_from(i).unwrap().id.to_string())
        .collect();
    assert_eq!(got, asked);
    assert!(items.iter().any(|i| !i["deletedAt"].is_null()));
}

/// Real Corteza counts the records carrying a peer's meta (removed
/// ones included) in `filter.total`, and leaves a total of 0 out
/// (fixtures S06, S07).
#[test]
fn a_recorded_corteza_count_of_a_peers_records_is_read() {
    let ours = include_str!(
        "../../../tests/fixtures/corteza-wire/S06-compose-count-records-of-a-peer.json"
    );
    let page = &recorded_page(ours);
    let node: NodeId = page["filter"]["meta"][META_NODE]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(peer_total(page, node), Some(500));
    // The same page read for another peer: not a count of its records.
    let other: NodeId = "1234567".parse().unwrap();
    assert_eq!(peer_total(page, other), None);
    let none = include_str!(
        "../../../tests/fixtures/corteza-wire/S07-compose-count-records-of-another-peer.json"
    );
    let page = &recorded_page(none);
    assert!(page["filter"].get("total").is_none());
    assert_eq!(peer_total(page, other), Some(0));
}

/// Real Corteza takes the query that goes on after an id inside a
/// second, as fedsync writes it, and answers the records of that
/// second after the id, in (createdAt, ID) order (fixture S09).
#[test]
fn a_recorded_corteza_list_goes_on_after_an_id_inside_a_second() {
    let text = include_str!(
        "../../../tests/fixtures/corteza-wire/S09-compose-list-records-after-an-id-in-a-second.json"
    );
    let (items, filter) = recorded(text);
    let query = filter["query"].as_str().unwrap();
    let after: i64 = query
        .rsplit_once("id > ")
        .unwrap()
        .1
        .trim_end_matches(')')
        .parse()
        .unwrap();
    let second = DateTime::parse_from_rfc3339("2026-12-06T18:40:00Z")
        .unwrap()
        .timestamp();
    let ours = CortezaData::since_query("created_at", second, Some(after)).unwrap();
    assert_eq!(ours, ("query", query.to_owned()));
    assert_eq!(filter["sort"], json!("createdAt, ID"));
    let records: Vec<Record> = items.iter().map(|i| record_from(i).unwrap()).collect();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.id.as_i64() > after && r.created_at.timestamp() == second)
    );
    assert!(records.windows(2).all(|w| w[0].id < w[1].id));
}

/// Real Corteza selects by two meta values at once (fixture S08).
#[test]
fn a_record_recorded_from_corteza_is_found_by_its_origin() {
    let text =
        include_str!("../../../tests/fixtures/corteza-wire/S08-compose-find-record-by-origin.json");
    let page = &recorded_page(text);
    let meta = &page["filter"]["meta"];
    let node: NodeId = meta[META_NODE].as_str().unwrap().parse().unwrap();
    let origin: Id = meta[META_EXTRECORD].as_str().unwrap().parse().unwrap();
    assert_eq!(set(page).len(), 1);
    let found = made_for(page, node, origin).expect("the record made for it");
    assert_eq!(found["meta"][META_EXTRECORD], json!(origin.to_string()));
    let elsewhere: Id = "1234567".parse().unwrap();
    assert!(made_for(page, node, elsewhere).is_none());
}
