//! Notifications: due ones leased to one owner, failed tries counted and
//! due again, expired leases taken over, retention.

use chrono::Duration;
use fedsync::domain::{self, Id, IdGenerator};
use fedsync::store::Store;

pub(super) async fn notifications(store: &dyn Store, ids: &IdGenerator) {
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
