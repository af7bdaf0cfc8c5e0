//! One story walks the whole Store API: on SQLite always, on PostgreSQL when
//! FEDSYNC_TEST_DATABASE_URL is set (each run in its own database).
//!
//! `story` below is the order of the chapters; each chapter is a file.

mod catalog;
mod instances;
mod job_triggers;
mod jobs;
mod nodes;
mod notifications;
mod pairing;
mod plans;
mod records;
mod runs;
mod sqlite;
mod tokens;

use std::sync::Arc;

use chrono::Duration;
use fedsync::domain::{self, IdGenerator, Node, NodeId, PairingStatus, Role};
use fedsync::store::{Engine, Store};

use crate::common::{self, pg::TestDatabase};

use catalog::catalog;
use instances::{instances, migrations};
use job_triggers::job_triggers;
use jobs::jobs;
use nodes::nodes;
use notifications::notifications;
use pairing::pairing;
use records::records;
use tokens::{admin_tokens, audit};

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
