//! One story walks the whole Store API: on SQLite always, on PostgreSQL when
//! FEDSYNC_TEST_DATABASE_URL is set (each run in its own database).

use std::sync::Arc;

use chrono::Duration;
use fedsync::domain::{
    self, AdminToken, AdminTokenKind, AuditEvent, AuditEventId, AuditFilter, AuditResult, Id,
    IdGenerator, Node, NodeFilter, NodeId, PairingStatus, PeerKind, Role, SyncStatus, TokenId,
};
use fedsync::store::{Engine, Store, StoreError};

use crate::common::{self, pg::TestDatabase};

async fn open(url: &str) -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path(), Some(url));
    fedsync::daemon::open_store(&config).await.unwrap()
}

#[tokio::test]
async fn store_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/story.db", dir.path().display());
    let store = open(&url).await;
    assert_eq!(store.engine(), Engine::Sqlite);
    story(store).await;
}

#[tokio::test]
async fn store_story_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let store = open(&db.url).await;
    assert_eq!(store.engine(), Engine::Postgres);
    story(store).await;
    db.drop_database().await;
}

/// Two replicas claiming due jobs of one node at the same moment: the
/// second waits for the first to commit, then counts its lease, so the
/// per-peer limit holds across replicas (each used to count only the leases
/// committed when its statement began, one more job each).
#[tokio::test]
async fn a_claim_waits_for_another_replicas_claim_and_counts_it() {
    use fedsync::domain::{SyncJob, SyncKind};
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let store = open(&db.url).await;
    store.migrate().await.unwrap();
    let ids = IdGenerator::new(1, 0);
    let now = domain::now();
    let peer = node(
        &ids,
        "Claims peer",
        "https://c.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut jobs = Vec::new();
    for (kind, shared) in [
        (SyncKind::Structure, None),
        (SyncKind::Data, Some(ids.next_id())),
    ] {
        let mut job = SyncJob::new(ids.next_id(), peer.id, kind, shared, "", now);
        job.next_run_at = now - Duration::seconds(1);
        assert!(store.insert_job(&job).await.unwrap());
        jobs.push(job);
    }
    let lease = now + Duration::seconds(60);

    // Replica A is inside its claim: it holds the claim lock and has leased
    // the first job, not yet committed.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut a = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(fedsync::store::CLAIM_LOCK)
        .execute(&mut *a)
        .await
        .unwrap();
    sqlx::query("UPDATE sync_jobs SET state = 'running', lease_owner = 'a', lease_expires_at = $2 WHERE id = $1")
        .bind(jobs[0].id.as_i64())
        .bind(lease.timestamp_micros())
        .execute(&mut *a)
        .await
        .unwrap();
    // Replica B claims with a limit of one job per peer.
    let b = tokio::spawn({
        let store = store.clone();
        async move { store.claim_due_job(now, "b", lease, 1).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            !b.is_finished(),
            "B claimed without waiting for A: {:?}",
            b.await
        );
        assert!(std::time::Instant::now() < deadline, "B never waited for A");
        tokio::task::yield_now().await;
    }
    a.commit().await.unwrap();
    let claimed = b.await.unwrap().unwrap();
    assert_eq!(claimed, None, "the node already has one job leased (A's)");
    pool.close().await;
    db.drop_database().await;
}

async fn story(store: Arc<dyn Store>) {
    migrations(&*store).await;
    store.ping().await.unwrap();
    instances(&*store).await;
    let ids = IdGenerator::new(5, 0);
    nodes(&*store, &ids).await;
    admin_tokens(&*store, &ids).await;
    audit(&*store, &ids).await;
    pairing(&*store, &ids).await;
    catalog(&*store, &ids).await;
    records(&*store, &ids).await;
    jobs(&*store, &ids).await;
    job_triggers(&*store, &ids).await;
    notifications(&*store, &ids).await;
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store refuses work");
}

async fn migrations(store: &dyn Store) {
    let applied = store.migrate().await.unwrap();
    assert_eq!(
        applied,
        store.known_migrations(),
        "a fresh database gets every step"
    );
    assert!(!applied.is_empty());
    assert_eq!(
        store.migrate().await.unwrap(),
        vec![],
        "migrating again applies nothing"
    );
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        store.known_migrations()
    );
}

async fn instances(store: &dyn Store) {
    let now = domain::now();
    let later = now + Duration::minutes(5);
    let a = store.acquire_instance("a", now, later).await.unwrap();
    let b = store.acquire_instance("b", now, later).await.unwrap();
    assert_ne!(
        a.instance_no, b.instance_no,
        "two live daemons never share a number"
    );

    assert!(store.renew_instance(&a, later, 1_000).await.unwrap());
    let mut impostor = a.clone();
    impostor.owner = "someone-else".into();
    assert!(!store.renew_instance(&impostor, later, 0).await.unwrap());

    // A released number is reused, with its id high-water mark.
    store.release_instance(&a, 2_000).await.unwrap();
    let c = store.acquire_instance("c", now, later).await.unwrap();
    assert_eq!(c.instance_no, a.instance_no);
    assert_eq!(c.last_id_ms, 2_000);
    // The previous holder has lost it.
    assert!(!store.renew_instance(&a, later, 0).await.unwrap());

    // An expired lease is taken over; a live one is not.
    let much_later = later + Duration::minutes(1);
    let d = store
        .acquire_instance("d", much_later, much_later + Duration::minutes(5))
        .await
        .unwrap();
    assert!(d.instance_no == b.instance_no || d.instance_no == c.instance_no);
    for lease in [&c, &d] {
        store.release_instance(lease, 0).await.unwrap();
    }
    let b_now = store.acquire_instance("e", now, later).await.unwrap();
    store.release_instance(&b_now, 0).await.unwrap();
}

fn node(ids: &IdGenerator, name: &str, base_url: &str, status: PairingStatus) -> Node {
    let now = domain::now();
    let mut node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Inviter,
        name,
        base_url,
        "ops@example.com",
        now,
    );
    node.status = status;
    node
}

async fn nodes(store: &dyn Store, ids: &IdGenerator) {
    let mut full = node(
        ids,
        "Server B",
        "https://b.example.com/federation",
        PairingStatus::Paired,
    );
    full.shared_node_id = Some(full.id);
    full.peer_kind = PeerKind::Corteza;
    full.status_reason = "paired after handshake".into();
    full.handshake_requested_at = Some(domain::now());
    full.handshake_source_addr = "192.0.2.7:41234".into();
    full.peer_token_fingerprint = "sha256:0123456789ab".into();
    full.structure_status = SyncStatus::Synced;
    full.structure_synced_at = Some(domain::now());
    full.data_status = SyncStatus::Failed;
    full.data_error = "peer answered 401: re-pair".into();
    full.paused = true;
    store.insert_node(&full).await.unwrap();
    assert_eq!(
        store.get_node(full.id).await.unwrap(),
        Some(full.clone()),
        "every field round-trips"
    );

    let pending = node(
        ids,
        "Percent 100%",
        "https://c.example.com/federation",
        PairingStatus::Pending,
    );
    store.insert_node(&pending).await.unwrap();
    let mut deleted = node(
        ids,
        "Gone",
        "https://d.example.com/federation",
        PairingStatus::Failed,
    );
    deleted.deleted_at = Some(domain::now());
    store.insert_node(&deleted).await.unwrap();

    let err = store.insert_node(&pending).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.get_node(NodeId(Id::new(1).unwrap())).await.unwrap(),
        None
    );

    let list = |filter: NodeFilter| async move {
        store
            .list_nodes(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(NodeFilter::default()).await,
        ["Percent 100%", "Server B"],
        "newest first, no deleted"
    );
    assert_eq!(
        list(NodeFilter {
            include_deleted: true,
            ..Default::default()
        })
        .await,
        ["Gone", "Percent 100%", "Server B"]
    );
    assert_eq!(
        list(NodeFilter {
            status: Some(PairingStatus::Paired),
            ..Default::default()
        })
        .await,
        ["Server B"]
    );
    assert_eq!(
        list(NodeFilter {
            query: Some("B.EXAMPLE".into()),
            ..Default::default()
        })
        .await,
        ["Server B"],
        "query matches the base URL case-insensitively"
    );
    assert_eq!(
        list(NodeFilter {
            query: Some("100%".into()),
            ..Default::default()
        })
        .await,
        ["Percent 100%"],
        "% is a literal, not a wildcard"
    );
    assert!(
        list(NodeFilter {
            query: Some("_".into()),
            ..Default::default()
        })
        .await
        .is_empty(),
        "_ is a literal, not a wildcard"
    );
}

async fn admin_tokens(store: &dyn Store, ids: &IdGenerator) {
    let now = domain::now();
    let token = AdminToken {
        id: TokenId(ids.next_id()),
        name: "ops".into(),
        kind: AdminTokenKind::ReadOnly,
        created_at: now,
        expires_at: Some(now + Duration::hours(24)),
        revoked_at: None,
    };
    store.insert_admin_token(&token).await.unwrap();
    let forever = AdminToken {
        id: TokenId(ids.next_id()),
        name: "local-admin".into(),
        kind: AdminTokenKind::Admin,
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    store.insert_admin_token(&forever).await.unwrap();
    assert_eq!(
        store.get_admin_token(token.id).await.unwrap(),
        Some(token.clone())
    );
    let listed: Vec<TokenId> = store
        .list_admin_tokens()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [forever.id, token.id]);

    assert!(store.revoke_admin_token(token.id, now).await.unwrap());
    assert!(
        !store.revoke_admin_token(token.id, now).await.unwrap(),
        "revoking twice reports nothing to do"
    );
    let revoked = store.get_admin_token(token.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(now));
    assert!(!revoked.is_active(now));
    assert!(
        store
            .get_admin_token(forever.id)
            .await
            .unwrap()
            .unwrap()
            .is_active(now)
    );
}

async fn audit(store: &dyn Store, ids: &IdGenerator) {
    let node_id = NodeId(ids.next_id());
    for (i, event) in ["pairing.started", "admin.auth_failed", "pairing.finished"]
        .iter()
        .enumerate()
    {
        store
            .append_audit(&AuditEvent {
                id: AuditEventId(ids.next_id()),
                at: domain::now(),
                event: (*event).into(),
                result: if i == 1 {
                    AuditResult::Refused
                } else {
                    AuditResult::Ok
                },
                node_id: (i != 1).then_some(node_id),
                actor: "local-admin".into(),
                token_id: None,
                source_addr: "127.0.0.1:5000".into(),
                reason: if i == 1 {
                    "bad_signature".into()
                } else {
                    String::new()
                },
                detail: r#"{"k":"v"}"#.into(),
            })
            .await
            .unwrap();
    }
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["pairing.finished", "admin.auth_failed", "pairing.started"]
    );
    assert_eq!(all[1].result, AuditResult::Refused);
    assert_eq!(all[1].reason, "bad_signature");
    let for_node = store
        .list_audit(&AuditFilter {
            node_id: Some(node_id),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(for_node.len(), 1);
    assert_eq!(for_node[0].event, "pairing.finished");
}

async fn pairing(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{
        CredentialKind, ExposedModule, IssuedToken, ModuleField, OttChange, PairingChange,
        PeerCredential, Revocation,
    };
    let now = domain::now();
    let hash = |text: &str| fedsync::crypto::sha256(text.as_bytes()).to_vec();
    let issued = |node: &Node, n: u8| IssuedToken {
        id: TokenId(ids.next_id()),
        node_id: node.id,
        token_hash: vec![n; 32],
        scope: "peer".into(),
        created_at: now,
        last_used_at: None,
        last_used_addr: String::new(),
        revoked_at: None,
        revoked_reason: String::new(),
    };
    let event = |name: &str, node: &Node| AuditEvent {
        id: AuditEventId(ids.next_id()),
        at: now,
        event: name.into(),
        result: AuditResult::Ok,
        node_id: Some(node.id),
        actor: "test".into(),
        token_id: None,
        source_addr: String::new(),
        reason: String::new(),
        detail: "{}".into(),
    };

    // One step inserts the node, its OTT, a held secret, a token and an event.
    let mut node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Invitee,
        "Peer",
        "https://p.example/federation",
        "",
        now,
    );
    node.shared_node_id = Some(NodeId(Id::new(42).unwrap()));
    let first = issued(&node, 1);
    let mut change = PairingChange::update(node.clone());
    change.insert = true;
    change.ott = Some(OttChange::Replace {
        token_hash: hash("ott-1"),
        expires_at: now + Duration::hours(1),
    });
    change.put_credentials = vec![PeerCredential {
        node_id: node.id,
        kind: CredentialKind::PairToken,
        ciphertext: vec![9, 9, 9],
        fingerprint: "sha256:abc".into(),
        created_at: now,
    }];
    change.issue_tokens = vec![first.clone()];
    change.audit = vec![event("node.created", &node)];
    assert!(store.apply_pairing_change(&change).await.unwrap());
    assert_eq!(store.get_node(node.id).await.unwrap(), Some(node.clone()));
    assert_eq!(
        store
            .find_invitee_node("https://p.example/federation", NodeId(Id::new(42).unwrap()))
            .await
            .unwrap()
            .map(|n| n.id),
        Some(node.id)
    );
    assert_eq!(
        store.get_issued_token(first.id).await.unwrap(),
        Some(first.clone())
    );
    let credential = store
        .get_peer_credential(node.id, CredentialKind::PairToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credential.ciphertext, vec![9, 9, 9]);

    // A step whose precondition fails writes nothing at all.
    let mut moved = node.clone();
    moved.status = PairingStatus::Paired;
    let mut change = PairingChange::update(moved.clone());
    change.expect_status = vec![PairingStatus::PairRequested];
    change.issue_tokens = vec![issued(&node, 2)];
    change.audit = vec![event("never", &node)];
    assert!(!store.apply_pairing_change(&change).await.unwrap());
    assert_eq!(
        store.get_node(node.id).await.unwrap().unwrap().status,
        PairingStatus::Pending
    );
    assert_eq!(store.list_issued_tokens(node.id).await.unwrap().len(), 1);
    assert!(
        !store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .iter()
            .any(|e| e.event == "never")
    );

    // Consuming the OTT: only the live one, only once.
    let consume = |token: &str, at| {
        let mut change = PairingChange::update(moved.clone());
        change.expect_status = vec![PairingStatus::Pending];
        change.ott = Some(OttChange::Consume {
            token_hash: hash(token),
            now: at,
        });
        change
    };
    assert!(
        !store
            .apply_pairing_change(&consume("wrong", now))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_pairing_change(&consume("ott-1", now + Duration::hours(2)))
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        store
            .apply_pairing_change(&consume("ott-1", now))
            .await
            .unwrap()
    );
    let ott = store.get_pairing_token(node.id).await.unwrap().unwrap();
    assert!(ott.token_hash.is_none() && ott.consumed_at.is_some());
    assert!(
        !store
            .apply_pairing_change(&consume("ott-1", now))
            .await
            .unwrap(),
        "single use"
    );

    // Failures count and lock at the limit.
    let mut change = PairingChange::update(store.get_node(node.id).await.unwrap().unwrap());
    change.ott = Some(OttChange::Replace {
        token_hash: hash("ott-2"),
        expires_at: now + Duration::hours(1),
    });
    assert!(store.apply_pairing_change(&change).await.unwrap());
    let f1 = store
        .record_ott_failure(node.id, 2, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f1.failed_attempts, f1.locked), (1, false));
    let f2 = store
        .record_ott_failure(node.id, 2, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f2.failed_attempts, f2.locked), (2, true));
    assert_eq!(
        store.record_ott_failure(node.id, 2, now).await.unwrap(),
        None,
        "nothing left to guess"
    );
    let locked = store.get_pairing_token(node.id).await.unwrap().unwrap();
    assert!(locked.token_hash.is_none() && locked.locked_at.is_some());
    assert!(!store.void_ott(node.id).await.unwrap());

    // Revocation: all but some, or just some.
    let current = store.get_node(node.id).await.unwrap().unwrap();
    let (second, third) = (issued(&node, 2), issued(&node, 3));
    let mut change = PairingChange::update(current.clone());
    change.issue_tokens = vec![second.clone(), third.clone()];
    change.revoke_tokens = Some(Revocation::AllExcept(
        vec![second.id, third.id],
        "rotated".into(),
    ));
    assert!(store.apply_pairing_change(&change).await.unwrap());
    assert_eq!(
        store
            .get_issued_token(first.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_reason,
        "rotated"
    );
    let mut change = PairingChange::update(current.clone());
    change.revoke_tokens = Some(Revocation::Only(vec![third.id], "failed step".into()));
    assert!(store.apply_pairing_change(&change).await.unwrap());
    assert!(
        store
            .get_issued_token(second.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert_eq!(
        store
            .get_issued_token(third.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_reason,
        "failed step"
    );
    store
        .touch_issued_token(second.id, now, "10.0.0.7:5000")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_issued_token(second.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_addr,
        "10.0.0.7:5000"
    );
    assert!(
        store
            .revoke_issued_token(second.id, now, "admin")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_issued_token(second.id, now, "admin")
            .await
            .unwrap()
    );

    // Deleting credentials and the OTT in a step.
    let mut change = PairingChange::update(current);
    change.delete_credentials = vec![CredentialKind::PairToken];
    change.delete_ott = true;
    assert!(store.apply_pairing_change(&change).await.unwrap());
    assert_eq!(
        store
            .get_peer_credential(node.id, CredentialKind::PairToken)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_pairing_token(node.id).await.unwrap(), None);

    // Exposed modules: live ones, oldest first.
    let module = |n: u64, deleted: bool| ExposedModule {
        id: Id::new(n).unwrap(),
        node_id: node.id,
        module_id: Id::new(100 + n).unwrap(),
        namespace_id: Id::new(7).unwrap(),
        handle: format!("m{n}"),
        name: format!("Module {n}"),
        fields: vec![ModuleField {
            kind: "Url".into(),
            name: "LinkedIn".into(),
            label: "LinkedIn".into(),
            is_multi: true,
        }],
        created_at: now,
        updated_at: now,
        deleted_at: deleted.then_some(now),
    };
    for m in [module(2, false), module(1, false), module(3, true)] {
        store.insert_exposed_module(&m).await.unwrap();
    }
    let listed = store.list_exposed_modules(node.id).await.unwrap();
    assert_eq!(listed, vec![module(1, false), module(2, false)]);
}

async fn catalog(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{
        ExposedModule, FieldKind, FieldMapping, LocalField, LocalModule, MappingStatus,
        ModuleField, ModuleMapping, RunCounts, RunStatus, SharedModule, SyncKind, SyncRun,
    };
    use fedsync::store::{ExposedPageQuery, StructureChange};
    let now = domain::now();
    let ns = store.embedded_namespace_id(ids.next_id()).await.unwrap();
    assert_eq!(
        store.embedded_namespace_id(ids.next_id()).await.unwrap(),
        ns,
        "recorded once"
    );

    let field = |name: &str, kind, multi| LocalField {
        name: name.into(),
        kind,
        label: name.into(),
        is_multi: multi,
    };
    let mut module = LocalModule {
        id: ids.next_id(),
        namespace_id: ns,
        handle: "account".into(),
        name: "Account".into(),
        fields: vec![
            field("Phone", FieldKind::String, false),
            field("Tags", FieldKind::String, true),
        ],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store.insert_local_module(&module).await.unwrap();
    assert_eq!(
        store.get_local_module(module.id).await.unwrap(),
        Some(module.clone())
    );
    let mut twin = module.clone();
    twin.id = ids.next_id();
    assert!(
        matches!(
            store.insert_local_module(&twin).await,
            Err(StoreError::Conflict(_))
        ),
        "handles are unique"
    );
    module.fields = vec![
        field("LinkedIn", FieldKind::Url, false),
        field("Phone", FieldKind::String, false),
    ];
    store.update_local_module(&module).await.unwrap();
    assert_eq!(
        store
            .find_local_module("account")
            .await
            .unwrap()
            .unwrap()
            .fields,
        module.fields,
        "fields replaced, in order"
    );
    assert_eq!(store.list_local_modules().await.unwrap().len(), 1);

    // Exposed modules: paging by id, the lastSync filter, tombstones on request.
    let node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Inviter,
        "n",
        "https://n.example/federation",
        "",
        now,
    );
    store.insert_node(&node).await.unwrap();
    let mut exposed = Vec::new();
    for i in 0..5 {
        let e = ExposedModule {
            id: ids.next_id(),
            node_id: node.id,
            module_id: if i == 0 {
                module.id
            } else {
                Id::new(1000 + i as u64).unwrap()
            },
            namespace_id: ns,
            handle: format!("e{i}"),
            name: format!("E{i}"),
            fields: vec![ModuleField {
                kind: "Url".into(),
                name: "LinkedIn".into(),
                label: "LinkedIn".into(),
                is_multi: false,
            }],
            created_at: now,
            updated_at: now + Duration::seconds(i),
            deleted_at: (i == 4).then_some(now),
        };
        store.insert_exposed_module(&e).await.unwrap();
        exposed.push(e);
    }
    let page = |since, after, include_deleted, limit| ExposedPageQuery {
        node_id: node.id,
        since,
        after,
        include_deleted,
        limit,
    };
    let first = store
        .page_exposed_modules(&page(None, None, false, 2))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e0", "e1"]
    );
    let next = store
        .page_exposed_modules(&page(None, Some(first[1].id), false, 10))
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e2", "e3"]
    );
    let with_tombstones = store
        .page_exposed_modules(&page(None, Some(first[1].id), true, 10))
        .await
        .unwrap();
    assert_eq!(with_tombstones.len(), 3);
    let since = store
        .page_exposed_modules(&page(Some(now + Duration::seconds(3)), None, true, 10))
        .await
        .unwrap();
    assert_eq!(
        since.iter().map(|m| m.handle.as_str()).collect::<Vec<_>>(),
        ["e3", "e4"]
    );
    assert_eq!(
        store
            .find_exposed_module(node.id, module.id)
            .await
            .unwrap()
            .map(|m| m.handle),
        Some("e0".into())
    );
    assert_eq!(
        store
            .list_exposures_of_module(module.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut changed = exposed[0].clone();
    changed.fields.clear();
    changed.deleted_at = Some(now);
    store.update_exposed_module(&changed).await.unwrap();
    assert_eq!(
        store.get_exposed_module(changed.id).await.unwrap(),
        Some(changed)
    );
    assert_eq!(store.list_exposed_modules(node.id).await.unwrap().len(), 3);

    // Shared modules and mappings move together in a structure change.
    let shared = SharedModule {
        id: ids.next_id(),
        node_id: node.id,
        external_module_id: Id::new(523615093121024101).unwrap(),
        origin_module_id: Some(Id::new(7).unwrap()),
        origin_namespace_id: None,
        handle: "contact_fed".into(),
        name: "Contact".into(),
        fields: vec![ModuleField {
            kind: "Text".into(),
            name: "body".into(),
            label: String::new(),
            is_multi: false,
        }],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store
        .apply_structure_change(&StructureChange {
            upsert_shared: vec![shared.clone()],
            mapping_status: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .find_shared_module(node.id, shared.external_module_id)
            .await
            .unwrap(),
        Some(shared.clone())
    );
    let mapping = ModuleMapping {
        id: ids.next_id(),
        node_id: node.id,
        shared_module_id: shared.id,
        local_module_id: module.id,
        namespace_id: ns,
        fields: vec![FieldMapping {
            origin: shared.fields[0].clone(),
            destination: module.fields[1].to_module_field(),
        }],
        status: MappingStatus::Ok,
        status_reason: String::new(),
        created_at: now,
        updated_at: now,
    };
    store.put_mapping(&mapping).await.unwrap();
    assert_eq!(
        store.get_mapping(shared.id).await.unwrap(),
        Some(mapping.clone())
    );
    let mut renamed = shared.clone();
    renamed.handle = "contact".into();
    renamed.deleted_at = Some(now);
    // The upsert keeps the row (same id) even when given a fresh id.
    let mut fresh_id = renamed.clone();
    fresh_id.id = ids.next_id();
    store
        .apply_structure_change(&StructureChange {
            upsert_shared: vec![fresh_id],
            mapping_status: vec![(
                mapping.id,
                MappingStatus::Broken,
                "origin field `body` was removed".into(),
                now,
            )],
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_shared_module(shared.id).await.unwrap(),
        Some(renamed)
    );
    assert!(
        store
            .list_shared_modules(node.id, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_shared_modules(node.id, true)
            .await
            .unwrap()
            .len(),
        1
    );
    let broken = store.get_mapping(shared.id).await.unwrap().unwrap();
    assert_eq!(
        (broken.status, broken.status_reason.as_str()),
        (MappingStatus::Broken, "origin field `body` was removed")
    );
    assert_eq!(store.list_mappings(node.id).await.unwrap().len(), 1);
    assert_eq!(store.list_mappings_to(module.id).await.unwrap().len(), 1);
    assert!(store.delete_mapping(shared.id).await.unwrap());
    assert!(!store.delete_mapping(shared.id).await.unwrap());

    // Runs and the node's sync state.
    let mut run = SyncRun {
        id: ids.next_id(),
        node_id: node.id,
        kind: SyncKind::Structure,
        shared_module_id: None,
        trigger: "manual".into(),
        status: RunStatus::Running,
        started_at: now,
        finished_at: None,
        counts: RunCounts::default(),
        error: String::new(),
        owner: "host:1:abcd".into(),
    };
    store.insert_sync_run(&run).await.unwrap();
    run.status = RunStatus::Failed;
    run.finished_at = Some(now);
    run.counts = RunCounts {
        pages: 3,
        created: 2,
        updated: 1,
        deleted: 1,
        skipped: 0,
        errors: 1,
    };
    run.error = "the origin failed".into();
    store.finish_sync_run(&run).await.unwrap();
    assert_eq!(
        store.list_sync_runs(node.id, 10).await.unwrap(),
        vec![run.clone()]
    );
    store
        .set_sync_state(
            node.id,
            SyncKind::Structure,
            SyncStatus::Synced,
            Some(now),
            "",
        )
        .await
        .unwrap();
    store
        .set_sync_state(
            node.id,
            SyncKind::Structure,
            SyncStatus::Failed,
            None,
            "boom",
        )
        .await
        .unwrap();
    let n = store.get_node(node.id).await.unwrap().unwrap();
    assert_eq!(
        (
            n.structure_status,
            n.structure_synced_at,
            n.structure_error.as_str()
        ),
        (SyncStatus::Failed, Some(now), "boom")
    );
    store
        .set_sync_state(node.id, SyncKind::Data, SyncStatus::Syncing, None, "")
        .await
        .unwrap();
    assert_eq!(
        store.get_node(node.id).await.unwrap().unwrap().data_status,
        SyncStatus::Syncing
    );

    // Runs left running: one by a process with a live lease (kept), one by a
    // process whose lease is gone (closed at start-up by whoever comes next).
    let live = store
        .acquire_instance("peer-host:77:beef", now, now + Duration::minutes(5))
        .await
        .unwrap();
    let mut orphan = SyncRun {
        id: ids.next_id(),
        kind: SyncKind::Data,
        status: RunStatus::Running,
        finished_at: None,
        owner: "dead-host:12:cafe".into(),
        ..run.clone()
    };
    let kept = SyncRun {
        id: ids.next_id(),
        owner: live.owner.clone(),
        ..orphan.clone()
    };
    store.insert_sync_run(&orphan).await.unwrap();
    store.insert_sync_run(&kept).await.unwrap();
    assert_eq!(
        store.list_running_sync_runs().await.unwrap(),
        vec![orphan.clone(), kept.clone()]
    );
    assert!(
        store
            .live_instance_owners(domain::now())
            .await
            .unwrap()
            .contains(&live.owner)
    );
    let reclaimed = fedsync::sync::runs::reclaim_interrupted(store, "me-host:1:0001", |_, _| false)
        .await
        .unwrap();
    assert_eq!(reclaimed, 1);
    assert_eq!(
        store.list_running_sync_runs().await.unwrap(),
        vec![kept.clone()]
    );
    let closed = store
        .list_sync_runs(node.id, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == orphan.id)
        .unwrap();
    orphan.status = RunStatus::Failed;
    orphan.error = fedsync::sync::runs::INTERRUPTED.into();
    assert_eq!(
        (
            closed.status,
            closed.error.as_str(),
            closed.finished_at.is_some()
        ),
        (orphan.status, orphan.error.as_str(), true)
    );
    let n = store.get_node(node.id).await.unwrap().unwrap();
    assert_eq!(
        (n.data_status, n.data_error.as_str()),
        (SyncStatus::Failed, fedsync::sync::runs::INTERRUPTED)
    );
    // A provably dead owner is closed even while its lease lasts.
    let reclaimed =
        fedsync::sync::runs::reclaim_interrupted(store, "me-host:1:0001", |o, _| o == live.owner)
            .await
            .unwrap();
    assert_eq!(reclaimed, 1);
    assert!(store.list_running_sync_runs().await.unwrap().is_empty());
    store.release_instance(&live, 0).await.unwrap();
}

async fn records(store: &dyn Store, ids: &IdGenerator) {
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
        .apply_record_batch(&RecordBatch {
            records: vec![own.clone(), received.clone()],
            links: vec![link.clone()],
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

    // An update: the revision counts it, changed_at moves past everything.
    let mut again = written[0].clone();
    again.values.insert("Tags".into(), vec!["c".into()]);
    let updated = store
        .apply_record_batch(&RecordBatch {
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
        .apply_record_batch(&RecordBatch {
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
        .apply_record_batch(&RecordBatch {
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
}

/// Triggers live in the job row: recorded at any time, taken by a claim
/// (even of a stopped job or a paused node), served by the outcome; one
/// recorded while an attempt runs makes the job due again after it; a
/// write of the job's state never loses one.
async fn job_triggers(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{JobState, SyncJob, SyncKind};
    use fedsync::store::TriggerRequest;
    let manual = TriggerRequest {
        reason: "manual",
        reset: false,
        join: false,
    };
    let now = domain::now();
    let peer = node(
        ids,
        "Trigger peer",
        "https://t.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut job = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "", now);
    job.next_run_at = now + Duration::hours(1);
    job.state = JobState::Stopped;
    job.stop_reason = "re-pair".into();
    assert!(store.insert_job(&job).await.unwrap());
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    let lease = |t: domain::Timestamp| t + Duration::seconds(30);
    let id = job.id;
    let claim = |owner: &'static str| async move {
        let claimed = store
            .claim_due_job(now, owner, lease(now), 8)
            .await
            .unwrap();
        assert!(claimed.as_ref().is_none_or(|j| j.id == id), "{claimed:?}");
        claimed
    };
    assert!(claim("a").await.is_none(), "stopped, paused, not due");

    // Two triggers before a claim: one attempt serves both.
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        store.next_job_due().await.unwrap(),
        Some(chrono::DateTime::UNIX_EPOCH)
    );
    let pending = store.get_job(job.id).await.unwrap().unwrap();
    assert!(pending.trigger_pending() && pending.triggered_at == Some(now));
    let claimed = claim("a")
        .await
        .expect("a trigger runs a stopped job of a paused node");
    assert_eq!(
        (
            claimed.claimed_seq,
            claimed.claimed_trigger.as_str(),
            claimed.triggered_at
        ),
        (2, "manual", None)
    );
    assert!(!claimed.trigger_pending() && claimed.trigger_unserved());
    // A state write while it runs keeps the triggers (a reconcile's).
    let mut edited = claimed.clone();
    edited.schedule = "5m".into();
    edited.trigger_seq = 0;
    assert!(store.update_job(&edited, None).await.unwrap());
    // A trigger while it runs, and a watcher joining: one more run after.
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(3)
    );
    let join = TriggerRequest {
        join: true,
        ..manual
    };
    assert_eq!(store.trigger_job(job.id, now, join).await.unwrap(), Some(3));
    assert!(claim("b").await.is_none(), "leased");
    let mut settled = edited.clone();
    settled.state = JobState::Idle;
    settled.lease_owner.clear();
    settled.lease_expires_at = None;
    let run = ids.next_id();
    assert!(
        store
            .settle_job(&settled, "a", claimed.claimed_seq, Some(run))
            .await
            .unwrap()
    );
    let after = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (
            after.served_seq,
            after.trigger_seq,
            after.last_run_id,
            after.schedule.as_str()
        ),
        (2, 3, Some(run), "5m")
    );
    assert!(
        after.trigger_pending(),
        "the trigger recorded meanwhile waits"
    );
    let again = claim("b").await.expect("due again at once");
    assert_eq!(
        (again.claimed_seq, again.claimed_trigger.as_str()),
        (3, "manual")
    );
    assert!(store.settle_job(&settled, "b", 3, None).await.unwrap());

    // A reset: its attempt pulls everything again; a join serves it too.
    let reset = TriggerRequest {
        reset: true,
        ..manual
    };
    assert_eq!(
        store.trigger_job(job.id, now, reset).await.unwrap(),
        Some(4)
    );
    assert_eq!(store.trigger_job(job.id, now, join).await.unwrap(), Some(4));
    let full = claim("a").await.expect("reset claimed");
    assert!(full.full_pull());
    // Its attempt could not record its end: the reset is not served, and
    // the next attempt (due from the schedule) pulls everything again.
    assert!(
        store
            .release_job_lease(full.id, "a", full.lease_expires_at.unwrap(), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_job_lease(full.id, "a", full.lease_expires_at.unwrap(), now)
            .await
            .unwrap()
    );
    assert!(store.set_node_paused(peer.id, false).await.unwrap());
    let mut due = store.get_job(job.id).await.unwrap().unwrap();
    due.next_run_at = now;
    due.state = JobState::Idle;
    assert!(store.update_job(&due, None).await.unwrap());
    let retried = claim("a").await.expect("due by its schedule");
    assert_eq!(retried.claimed_trigger, "reset");
    assert!(
        store
            .settle_job(&settled, "a", retried.claimed_seq, None)
            .await
            .unwrap()
    );
    let mut scheduled = store.get_job(job.id).await.unwrap().unwrap();
    assert!(!scheduled.trigger_unserved());
    scheduled.next_run_at = now;
    assert!(store.update_job(&scheduled, None).await.unwrap());
    assert_eq!(claim("a").await.unwrap().claimed_trigger, "schedule");
    assert_eq!(
        store.trigger_job(ids.next_id(), now, manual).await.unwrap(),
        None
    );
}

async fn jobs(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{JobState, SyncJob, SyncKind};
    let now = domain::now();
    let mut peer = node(
        ids,
        "Jobs peer",
        "https://j.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut job = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "", now);
    job.next_run_at = now + Duration::seconds(60);
    assert!(store.insert_job(&job).await.unwrap());
    let twin = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "5m", now);
    assert!(
        !store.insert_job(&twin).await.unwrap(),
        "one job per node, kind and module"
    );
    assert_eq!(
        store.list_jobs(Some(peer.id)).await.unwrap(),
        vec![job.clone()]
    );
    assert_eq!(store.next_job_due().await.unwrap(), Some(job.next_run_at));

    // Not due yet: nobody claims it. Due: one claimer gets it, leased.
    let lease = |t: domain::Timestamp| t + Duration::seconds(30);
    assert!(
        store
            .claim_due_job(now, "a", lease(now), 2)
            .await
            .unwrap()
            .is_none()
    );
    let due = job.next_run_at + Duration::seconds(1);
    let claimed = store
        .claim_due_job(due, "a", lease(due), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.state, claimed.lease_owner.as_str()),
        (job.id, JobState::Running, "a")
    );
    assert!(
        store
            .claim_due_job(due, "b", lease(due), 2)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    assert!(
        store
            .renew_job_lease(job.id, "a", lease(due) + Duration::seconds(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_job_lease(job.id, "b", lease(due))
            .await
            .unwrap()
    );
    // Only the holder writes the outcome.
    let mut settled = claimed.clone();
    settled.state = JobState::Retrying;
    settled.attempts = 1;
    settled.lease_owner.clear();
    settled.lease_expires_at = None;
    assert!(!store.settle_job(&settled, "b", 0, None).await.unwrap());
    assert!(store.settle_job(&settled, "a", 0, None).await.unwrap());
    assert_eq!(store.get_job(job.id).await.unwrap().unwrap(), settled);
    // An expired lease is taken over (a replica died).
    let taken = store
        .claim_due_job(due, "a", due, 2)
        .await
        .unwrap()
        .unwrap();
    let later = due + Duration::seconds(1);
    let again = store
        .claim_due_job(later, "b", lease(later), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.id, again.lease_owner.as_str()), (job.id, "b"));

    // Per-peer limit: a second due job of the same node waits.
    let mut data = SyncJob::new(
        ids.next_id(),
        peer.id,
        SyncKind::Data,
        Some(ids.next_id()),
        "",
        now,
    );
    data.next_run_at = now;
    assert!(store.insert_job(&data).await.unwrap());
    assert!(
        store
            .claim_due_job(later, "c", lease(later), 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_due_job(later, "c", lease(later), 2)
            .await
            .unwrap()
            .is_some()
    );

    // Pause, schedules, triggered jobs first.
    assert!(
        store
            .set_node_schedule(peer.id, "*/5 * * * *", "30s")
            .await
            .unwrap()
    );
    assert_eq!(
        store.node_schedule(peer.id).await.unwrap(),
        ("*/5 * * * *".to_owned(), "30s".to_owned())
    );
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    peer = store.get_node(peer.id).await.unwrap().unwrap();
    assert!(peer.paused);
    assert_eq!(
        store.next_job_due().await.unwrap(),
        None,
        "a paused node has nothing due"
    );
    assert!(store.set_node_paused(peer.id, false).await.unwrap());
    store.delete_job(data.id).await.unwrap();
    assert_eq!(store.list_jobs(Some(peer.id)).await.unwrap().len(), 1);

    // The all-nodes status in one statement: the same nodes, schedules and
    // jobs, in the same order, as the queries one by one (a paused node and
    // a second job of another kind included).
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    let mut data_job = SyncJob::new(
        ids.next_id(),
        peer.id,
        SyncKind::Data,
        Some(ids.next_id()),
        "1m",
        now,
    );
    data_job.last_error = "peer said \"no\" \u{e9}".into();
    data_job.last_error_at = Some(now);
    assert!(store.insert_job(&data_job).await.unwrap());
    let snapshot = store.status_snapshot().await.unwrap();
    let schedules: std::collections::HashMap<_, _> = store
        .node_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, s, d)| (id, (s, d)))
        .collect();
    let expected_nodes: Vec<_> = store
        .list_nodes(&NodeFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|n| {
            let (s, d) = schedules[&n.id].clone();
            (n, s, d)
        })
        .collect();
    assert!(expected_nodes.len() > 1);
    assert_eq!(snapshot.nodes, expected_nodes);
    assert!(
        snapshot
            .nodes
            .iter()
            .any(|(n, _, _)| n.id == peer.id && n.paused)
    );
    assert_eq!(snapshot.jobs, store.list_jobs(None).await.unwrap());
    assert!(snapshot.jobs.contains(&data_job));
    store.delete_job(data_job.id).await.unwrap();
    assert!(store.set_node_paused(peer.id, false).await.unwrap());

    // Retention: old finished runs go, running ones stay.
    use fedsync::domain::{RunCounts, RunStatus, SyncRun};
    let old = now - Duration::days(40);
    let run = |status| SyncRun {
        id: ids.next_id(),
        node_id: peer.id,
        kind: SyncKind::Structure,
        shared_module_id: None,
        trigger: "schedule".into(),
        status,
        started_at: old,
        finished_at: None,
        counts: RunCounts::default(),
        error: String::new(),
        owner: "h:1:x".into(),
    };
    let finished = run(RunStatus::Succeeded);
    let running = run(RunStatus::Running);
    store.insert_sync_run(&finished).await.unwrap();
    store.insert_sync_run(&running).await.unwrap();
    let (runs, _) = store.prune_history(now - Duration::days(30)).await.unwrap();
    assert_eq!(runs, 1);
    assert_eq!(
        store.list_sync_runs(peer.id, 100).await.unwrap(),
        vec![running]
    );

    // The runs of a job since one of them that did not succeed: only those
    // of the same job (node, kind, shared module), from `since` on, and
    // not the asking run.
    let shared = ids.next_id();
    let data_run = |status, shared_module_id| SyncRun {
        kind: SyncKind::Data,
        shared_module_id: Some(shared_module_id),
        started_at: now,
        ..run(status)
    };
    let before = data_run(RunStatus::Failed, shared);
    let since = data_run(RunStatus::Succeeded, shared);
    let other_job = data_run(RunStatus::Failed, ids.next_id());
    let asking = data_run(RunStatus::Running, shared);
    for r in [&before, &since, &other_job, &asking] {
        store.insert_sync_run(r).await.unwrap();
    }
    let unsucceeded = || store.unsucceeded_runs_since(asking.id, since.id);
    assert_eq!(unsucceeded().await.unwrap(), 0);
    let mut failed = data_run(RunStatus::Running, shared);
    store.insert_sync_run(&failed).await.unwrap();
    assert_eq!(unsucceeded().await.unwrap(), 1, "a run still running");
    failed.status = RunStatus::Failed;
    failed.finished_at = Some(now);
    store.finish_sync_run(&failed).await.unwrap();
    assert_eq!(unsucceeded().await.unwrap(), 1, "a failed run");
    assert_eq!(
        store
            .unsucceeded_runs_since(asking.id, before.id)
            .await
            .unwrap(),
        2
    );
}

async fn notifications(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{Channel, Delivery, Notification};
    let now = domain::now();
    let row = |channel, target: &str, due: domain::Timestamp| Notification {
        id: ids.next_id(),
        channel,
        target: target.into(),
        event: "pair.requested".into(),
        node_id: None,
        subject: "[fedsync] a subject".into(),
        body: "a body".into(),
        created_at: now,
        attempts: 0,
        next_attempt_at: due,
        last_error: String::new(),
        sent_at: None,
        given_up_at: None,
    };
    let mail = row(Channel::Email, "alice@a.test", now);
    let hook = row(Channel::Webhook, "sha256:00ff", now - Duration::seconds(1));
    let later = row(Channel::Email, "bob@a.test", now + Duration::minutes(5));
    store
        .enqueue_notifications(&[mail.clone(), hook.clone(), later.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.next_notification_due().await.unwrap(),
        Some(hook.next_attempt_at)
    );
    let listed = store.list_notifications(10).await.unwrap();
    assert_eq!(listed.len(), 3);
    let stored = listed.iter().find(|n| n.id == mail.id).unwrap();
    assert_eq!(
        (stored.channel, stored.target.as_str()),
        (Channel::Email, "alice@a.test")
    );
    assert_eq!(stored.subject, mail.subject);

    // The due ones, the most overdue first, leased to one owner; another
    // owner gets nothing while the lease lasts.
    let lease = now + Duration::minutes(1);
    let claimed = store
        .claim_notifications(now, "a", lease, 10)
        .await
        .unwrap();
    let claimed_ids: Vec<Id> = claimed.iter().map(|n| n.id).collect();
    assert_eq!(claimed_ids, vec![hook.id, mail.id]);
    assert!(
        store
            .claim_notifications(now, "b", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_notification_due().await.unwrap(),
        Some(lease),
        "a leased row is due when its lease runs out"
    );

    // A failed try: counted, with its error, due again at the given time.
    let retry_at = now + Duration::seconds(10);
    let retry = Delivery::Retry {
        error: "SMTP: connection refused".into(),
        at: retry_at,
    };
    assert!(
        !store
            .finish_notification(mail.id, "b", &retry, now)
            .await
            .unwrap(),
        "only the lease holder records an outcome"
    );
    assert!(
        store
            .finish_notification(mail.id, "a", &retry, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_notification(hook.id, "a", &Delivery::Sent, now)
            .await
            .unwrap()
    );
    let listed = store.list_notifications(10).await.unwrap();
    let mail_now = listed.iter().find(|n| n.id == mail.id).unwrap();
    assert_eq!(mail_now.attempts, 1);
    assert_eq!(mail_now.last_error, "SMTP: connection refused");
    assert_eq!(mail_now.next_attempt_at, retry_at);
    assert!(mail_now.sent_at.is_none());
    let hook_now = listed.iter().find(|n| n.id == hook.id).unwrap();
    assert_eq!((hook_now.attempts, hook_now.sent_at), (0, Some(now)));
    assert_eq!(store.next_notification_due().await.unwrap(), Some(retry_at));
    // Not yet due again; then due, by anyone (the lease was released).
    assert!(
        store
            .claim_notifications(now, "b", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_notifications(retry_at, "b", retry_at + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![mail.id]
    );
    assert_eq!(again[0].attempts, 1);
    // A lease that ran out (its holder died) is taken over.
    let taken = store
        .claim_notifications(
            retry_at + Duration::minutes(2),
            "c",
            lease + Duration::hours(1),
            10,
        )
        .await
        .unwrap();
    assert!(taken.iter().any(|n| n.id == mail.id), "{taken:?}");
    let give_up = Delivery::GiveUp {
        error: "the SMTP server refused the message".into(),
    };
    assert!(
        store
            .finish_notification(mail.id, "c", &give_up, now)
            .await
            .unwrap()
    );
    let mail_now = store
        .list_notifications(10)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == mail.id)
        .unwrap();
    assert_eq!(mail_now.given_up_at, Some(now));
    assert_eq!(mail_now.attempts, 2);

    // Retention drops delivered and abandoned rows, never waiting ones.
    store
        .prune_history(now + Duration::seconds(1))
        .await
        .unwrap();
    let left: Vec<Id> = store
        .list_notifications(10)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(left, vec![later.id]);
}

/// Step 6 moves SQLite's record links into a WITHOUT ROWID table: a database
/// at step 5 with links keeps every one of them, with its indexes.
#[tokio::test]
async fn sqlite_record_links_survive_the_move_to_a_clustered_table() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().unwrap();
    let steps = dir.path().join("steps");
    std::fs::create_dir(&steps).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sqlite/migrations");
    let mut names: Vec<_> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let step6 = names
        .iter()
        .position(|n| n.starts_with("0006_"))
        .expect("step 6 exists");
    for name in &names[..step6] {
        std::fs::copy(all.join(name), steps.join(name)).unwrap();
    }
    let path = dir.path().join("old.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true),
    )
    .await
    .unwrap();
    sqlx::migrate::Migrator::new(steps.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO nodes (id, created_at, updated_at) VALUES (7, 1, 1)")
        .execute(&pool)
        .await
        .unwrap();
    for origin in 1..=3i64 {
        sqlx::query(
            "INSERT INTO record_links (node_id, exposed_module_id, origin_record_id, local_module_id, \
             local_record_id, origin_changed_at, created_at, updated_at, seen_run) \
             VALUES (7, 9, $1, 11, $2, $3, 1, 2, 5)",
        )
        .bind(origin)
        .bind(100 + origin)
        .bind(1000 + origin)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = open(&format!("sqlite://{}", path.display())).await;
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), names.len() - step6, "steps 6 and later ran");
    let origin = |n: u64| Id::new(n).unwrap();
    let mut links = store
        .find_links(
            NodeId::from_u64(7).unwrap(),
            origin(9),
            &[origin(1), origin(2), origin(3)],
        )
        .await
        .unwrap();
    links.sort_by_key(|l| l.origin_record_id);
    assert_eq!(
        links
            .iter()
            .map(|l| (
                l.origin_record_id.get(),
                l.local_record_id.get(),
                l.origin_changed_at
            ))
            .collect::<Vec<_>>(),
        [(1, 101, 1001), (2, 102, 1002), (3, 103, 1003)]
    );
    assert!(
        store
            .links_not_seen(NodeId::from_u64(7).unwrap(), origin(9), 5, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "seen marks kept"
    );
    store.close().await;

    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    let (table,): (String,) = sqlx::query_as(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'record_links'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(table.contains("WITHOUT ROWID"), "{table}");
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record_links' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
        [
            "record_links_local",
            "record_links_module",
            "record_links_origin"
        ]
    );
    pool.close().await;
}

/// Commits do not copy SQLite's write-ahead log into the database (SQLite's
/// own checkpoint waits for 16,384 pages): a background task does, soon
/// after. About 1,200 pages written here reach the database file only
/// through that task.
#[tokio::test]
async fn sqlite_write_ahead_log_is_checkpointed_in_the_background() {
    use fedsync::domain::{FieldKind, LocalField, LocalModule, Record, RecordValues};
    use fedsync::store::RecordBatch;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = open(&format!("sqlite://{}", path.display())).await;
    store.migrate().await.unwrap();
    let ids = IdGenerator::new(6, 0);
    let now = domain::now();
    let ns = store.embedded_namespace_id(ids.next_id()).await.unwrap();
    let module = LocalModule {
        id: ids.next_id(),
        namespace_id: ns,
        handle: "bulk".into(),
        name: "Bulk".into(),
        fields: vec![LocalField {
            name: "Text".into(),
            kind: FieldKind::String,
            label: "Text".into(),
            is_multi: false,
        }],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store.insert_local_module(&module).await.unwrap();
    let db_size = || std::fs::metadata(&path).unwrap().len();
    let before = db_size();
    let records: Vec<Record> = (0..2000)
        .map(|n| {
            let mut values = RecordValues::new();
            values.insert("Text".into(), vec![format!("{n:04} {}", "x".repeat(2000))]);
            Record {
                id: ids.next_id(),
                module_id: module.id,
                values,
                origin_node_id: None,
                created_at: now,
                updated_at: now,
                deleted_at: None,
                changed_at: 0,
                revision: 1,
            }
        })
        .collect();
    store
        .apply_record_batch(&RecordBatch {
            records,
            ..RecordBatch::default()
        })
        .await
        .unwrap();
    let wal = dir.path().join("wal.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 4_000_000,
        "the commit went to the log"
    );
    // The task runs every half second; waiting up to 10 s allows for a
    // loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db_size() < before + 4_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {} bytes ({} before the writes): no checkpoint",
            db_size(),
            before
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.close().await;
}
