//! Records: written in batches with their links, cursors, errors and
//! progress; updated with a revision and a later change; paged as
//! changes with the echo and re-export filters; listed and counted.

use chrono::Duration;
use fedsync::domain::{self, IdGenerator, NodeId, PairingStatus};
use fedsync::store::Store;

use super::node;

pub(super) async fn records(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{
        FieldKind, LocalField, LocalModule, Record, RecordLink, RecordValues, RunCounts, RunStatus,
        SyncKind, SyncRun,
    };
    use fedsync::store::{ChangeQuery, CursorWrite, RecordBatch, RunError};
    let now = domain::now();
    let peer = node(
        ids,
        "Records peer",
        "https://r.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let ns = store.embedded_namespace_id(ids.next_id()).await.unwrap();
    let module = LocalModule {
        id: ids.next_id(),
        namespace_id: ns,
        handle: "ledger".into(),
        name: "Ledger".into(),
        fields: vec![LocalField {
            name: "Tags".into(),
            kind: FieldKind::String,
            label: "Tags".into(),
            is_multi: true,
        }],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store.insert_local_module(&module).await.unwrap();
    let record = |tags: &[&str], origin: Option<NodeId>| {
        let mut values = RecordValues::new();
        values.insert("Tags".into(), tags.iter().map(|t| t.to_string()).collect());
        Record {
            id: ids.next_id(),
            module_id: module.id,
            values,
            origin_node_id: origin,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            changed_at: 0,
            revision: 1,
        }
    };
    let own = record(&["b", "a"], None);
    let received = record(&["x"], Some(peer.id));
    let run = SyncRun {
        id: ids.next_id(),
        node_id: peer.id,
        kind: SyncKind::Data,
        shared_module_id: Some(ids.next_id()),
        trigger: "manual".into(),
        status: RunStatus::Running,
        started_at: now,
        finished_at: None,
        counts: RunCounts::default(),
        error: String::new(),
        owner: "h:1:x".into(),
    };
    store.insert_sync_run(&run).await.unwrap();
    let exposed_module = ids.next_id();
    let origin_record = ids.next_id();
    let link = RecordLink {
        node_id: peer.id,
        exposed_module_id: exposed_module,
        origin_record_id: origin_record,
        local_module_id: module.id,
        local_record_id: received.id,
        origin_changed_at: 42,
        created_at: now,
        updated_at: now,
    };
    let counts = RunCounts {
        pages: 1,
        created: 1,
        ..RunCounts::default()
    };
    let written = store
        .apply_record_batch(RecordBatch {
            records: vec![own.clone(), received.clone()],
            links: vec![link.clone()],
            new_links: Vec::new(),
            touched: Vec::new(),
            seen_run: run.id.as_i64(),
            cursor: Some(CursorWrite {
                node_id: peer.id,
                shared_module_id: run.shared_module_id.unwrap(),
                cursor: "c1".into(),
                last_sync: 7,
            }),
            errors: vec![RunError {
                run_id: run.id,
                seq: 1,
                origin_record_id: Some(origin_record),
                message: "Tags -> Tags: too long".into(),
            }],
            progress: Some((run.id, counts)),
        })
        .await
        .unwrap();
    assert!(
        written[0].changed_at < written[1].changed_at,
        "changed_at strictly increases within a module"
    );
    assert_eq!(store.get_record(own.id).await.unwrap().unwrap(), written[0]);
    assert_eq!(written[0].values["Tags"], ["b", "a"], "order kept");
    let progress = store.list_sync_runs(peer.id, 10).await.unwrap();
    assert_eq!(
        (progress[0].counts, progress[0].status),
        (counts, RunStatus::Running),
        "the run's progress is written with its page"
    );

    // A link the page's lookup did not find is inserted; one that exists
    // after all fails its whole batch, which writes nothing.
    let fresh = RecordLink {
        exposed_module_id: ids.next_id(),
        origin_record_id: ids.next_id(),
        local_record_id: ids.next_id(),
        ..link.clone()
    };
    store
        .apply_record_batch(RecordBatch {
            new_links: vec![fresh.clone()],
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    let found = store
        .find_links(peer.id, fresh.exposed_module_id, &[fresh.origin_record_id])
        .await
        .unwrap();
    assert_eq!(found, vec![fresh.clone()]);
    let lost = Record {
        id: ids.next_id(),
        revision: 0,
        ..own.clone()
    };
    let clash = store
        .apply_record_batch(RecordBatch {
            records: vec![lost.clone()],
            new_links: vec![fresh.clone()],
            cursor: Some(CursorWrite {
                node_id: peer.id,
                shared_module_id: run.shared_module_id.unwrap(),
                cursor: "c-lost".into(),
                last_sync: 8,
            }),
            ..RecordBatch::default()
        })
        .await;
    assert!(clash.is_err(), "a stored link written as new: {clash:?}");
    assert_eq!(store.get_record(lost.id).await.unwrap(), None);
    assert_ne!(
        store
            .get_sync_cursor(peer.id, run.shared_module_id.unwrap())
            .await
            .unwrap()
            .map(|c| c.cursor),
        Some("c-lost".to_owned())
    );

    // An update: the revision counts it, changed_at moves past everything.
    let mut again = written[0].clone();
    again.values.insert("Tags".into(), vec!["c".into()]);
    let updated = store
        .apply_record_batch(RecordBatch {
            records: vec![again],
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(updated[0].revision, 2);
    assert!(updated[0].changed_at > written[1].changed_at);
    assert_eq!(store.get_record(own.id).await.unwrap().unwrap().revision, 2);

    // Changes in order, with the echo and re-export filters.
    let page = |after, exclude_origin, exclude_received| ChangeQuery {
        module_id: module.id,
        after,
        since: None,
        exclude_origin,
        exclude_received,
        limit: 10,
    };
    let all = store
        .page_record_changes(&page(None, None, false))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [received.id, own.id]
    );
    let after_first = store
        .page_record_changes(&page(Some((all[0].changed_at, all[0].id)), None, false))
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].id, own.id);
    let no_echo = store
        .page_record_changes(&page(None, Some(peer.id), false))
        .await
        .unwrap();
    assert_eq!(no_echo.iter().map(|r| r.id).collect::<Vec<_>>(), [own.id]);
    let no_reexport = store
        .page_record_changes(&page(None, None, true))
        .await
        .unwrap();
    assert_eq!(no_reexport.len(), 1);
    let since = store
        .page_record_changes(&ChangeQuery {
            since: Some(fedsync::store::to_micros(now) + 3_600_000_000),
            ..page(None, None, false)
        })
        .await
        .unwrap();
    assert!(since.is_empty());

    // Links, cursors, errors.
    assert_eq!(
        store
            .find_links(peer.id, exposed_module, &[origin_record])
            .await
            .unwrap(),
        vec![link.clone()]
    );
    assert!(
        store
            .find_links(peer.id, ids.next_id(), &[origin_record])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .find_links_any_module(peer.id, &[origin_record, ids.next_id()])
            .await
            .unwrap(),
        vec![link.clone()]
    );
    assert_eq!(
        store
            .find_links_by_local(peer.id, &[received.id, own.id])
            .await
            .unwrap(),
        vec![link.clone()]
    );
    assert!(
        store
            .links_not_seen(peer.id, exposed_module, run.id.as_i64(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .links_not_seen(peer.id, exposed_module, run.id.as_i64() + 1, None, 10)
            .await
            .unwrap(),
        vec![link.clone()]
    );
    // A touched link: its two timestamps are written, nothing else, whatever
    // else the batch says (its local record, its seen mark stay).
    let touched = RecordLink {
        local_record_id: own.id,
        origin_changed_at: 99,
        updated_at: now + Duration::seconds(5),
        ..link.clone()
    };
    store
        .apply_record_batch(RecordBatch {
            touched: vec![touched.clone()],
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .find_links(peer.id, exposed_module, &[origin_record])
            .await
            .unwrap(),
        vec![RecordLink {
            origin_changed_at: 99,
            updated_at: touched.updated_at,
            ..link.clone()
        }]
    );
    assert!(
        store
            .links_not_seen(peer.id, exposed_module, run.id.as_i64(), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a touched link keeps its seen mark"
    );
    let cursor = store
        .get_sync_cursor(peer.id, run.shared_module_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cursor.cursor.as_str(), cursor.last_sync), ("c1", 7));
    store.delete_sync_cursors(peer.id, None).await.unwrap();
    assert!(
        store
            .get_sync_cursor(peer.id, run.shared_module_id.unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let errors = store.list_run_errors(run.id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "Tags -> Tags: too long");

    // Listing and counting; a removed record is only listed when asked.
    let mut gone = store.get_record(received.id).await.unwrap().unwrap();
    gone.deleted_at = Some(now);
    store
        .apply_record_batch(RecordBatch {
            records: vec![gone],
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.count_records(module.id).await.unwrap(), 1);
    assert_eq!(
        store
            .list_records(module.id, false, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let listed = store.list_records(module.id, true, None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].id < listed[1].id, "by id");
    let rest = store
        .list_records(module.id, true, Some(listed[0].id), 10)
        .await
        .unwrap();
    assert_eq!(rest, vec![listed[1].clone()]);

    // A first pull's page (new records of one module, new links, cursor
    // and counts; PostgreSQL writes it in one statement): change times
    // after the module's newest, one apart, revision 1, all written.
    let newest = written.iter().map(|r| r.changed_at).max().unwrap();
    let page: Vec<Record> = (0..3)
        .map(|_| Record {
            id: ids.next_id(),
            revision: 0,
            ..own.clone()
        })
        .collect();
    let page_links: Vec<RecordLink> = page
        .iter()
        .map(|r| RecordLink {
            exposed_module_id: fresh.exposed_module_id,
            origin_record_id: ids.next_id(),
            local_record_id: r.id,
            ..link.clone()
        })
        .collect();
    let paged = RunCounts {
        pages: 2,
        created: 4,
        ..RunCounts::default()
    };
    let firsts = store
        .apply_record_batch(RecordBatch {
            records: page.clone(),
            new_links: page_links.clone(),
            seen_run: run.id.as_i64(),
            cursor: Some(CursorWrite {
                node_id: peer.id,
                shared_module_id: run.shared_module_id.unwrap(),
                cursor: "c2".into(),
                last_sync: 9,
            }),
            progress: Some((run.id, paged)),
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    assert!(firsts[0].changed_at > newest);
    assert_eq!(
        firsts
            .iter()
            .map(|r| r.changed_at - firsts[0].changed_at)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for record in &firsts {
        assert_eq!(record.revision, 1);
        assert_eq!(
            store.get_record(record.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    let mut linked = store
        .find_links(
            peer.id,
            fresh.exposed_module_id,
            &page_links
                .iter()
                .map(|l| l.origin_record_id)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    linked.sort_by_key(|l| l.origin_record_id);
    assert_eq!(linked, page_links);
    assert_eq!(
        store
            .get_sync_cursor(peer.id, run.shared_module_id.unwrap())
            .await
            .unwrap()
            .map(|c| c.cursor),
        Some("c2".to_owned())
    );
    let progress = store.list_sync_runs(peer.id, 10).await.unwrap();
    assert_eq!(progress[0].counts, paged);
}
