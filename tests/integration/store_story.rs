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

async fn story(store: Arc<dyn Store>) {
    migrations(&*store).await;
    store.ping().await.unwrap();
    instances(&*store).await;
    let ids = IdGenerator::new(5, 0);
    nodes(&*store, &ids).await;
    admin_tokens(&*store, &ids).await;
    audit(&*store, &ids).await;
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
