//! Pairing changes: one step writes a node, its OTT, held secrets, tokens
//! and events atomically under a precondition; OTTs consumed once, failures
//! counted, tokens revoked, credentials deleted; exposed modules listed.

use chrono::Duration;
use fedsync::domain::{
    self, AuditEvent, AuditEventId, AuditFilter, AuditResult, Id, IdGenerator, Node, NodeId,
    PairingStatus, Role, TokenId,
};
use fedsync::store::Store;

pub(super) async fn pairing(store: &dyn Store, ids: &IdGenerator) {
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
