//! The store's own rows: the migrations applied, and instance numbers
//! leased, released, reused and taken over.

use chrono::Duration;
use fedsync::domain::{self};
use fedsync::store::Store;

pub(super) async fn migrations(store: &dyn Store) {
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

pub(super) async fn instances(store: &dyn Store) {
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
