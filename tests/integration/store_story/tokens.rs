//! Admin tokens and the audit log: tokens registered, listed and revoked;
//! events appended and listed by filter.

use chrono::Duration;
use fedsync::domain::{
    self, AdminToken, AdminTokenKind, AuditEvent, AuditEventId, AuditFilter, AuditResult,
    IdGenerator, NodeId, TokenId,
};
use fedsync::store::Store;

pub(super) async fn admin_tokens(store: &dyn Store, ids: &IdGenerator) {
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

pub(super) async fn audit(store: &dyn Store, ids: &IdGenerator) {
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
