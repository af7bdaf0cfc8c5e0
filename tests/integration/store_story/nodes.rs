//! Nodes: inserted with every field and read back, a duplicate refused,
//! listed by filter.

use fedsync::domain::{
    self, Id, IdGenerator, NodeFilter, NodeId, PairingStatus, PeerKind, SyncStatus,
};
use fedsync::store::{Store, StoreError};

use super::node;

pub(super) async fn nodes(store: &dyn Store, ids: &IdGenerator) {
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
