//! Several replicas on one PostgreSQL database: two daemon processes with
//! one node identity (the same database and keys) run every scheduled job
//! exactly once, and when the one running a job is killed, the other
//! finishes it once the job's lease has expired.

use std::path::Path;
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use sqlx::PgPool;

use crate::common::pg::TestDatabase;
use crate::common::relay::{Fault, Relay};
use crate::common::{self, TestDaemon, cli_json, spawn_child_daemon, spawn_node_with, with_token};
use crate::data::{account_file, share_account};

#[derive(Debug, Clone, sqlx::FromRow)]
struct Run {
    id: i64,
    owner: String,
    status: String,
    started_at: i64,
    finished_at: Option<i64>,
    pages: i64,
    created: i64,
    error: String,
}

async fn data_runs(pool: &PgPool) -> Vec<Run> {
    sqlx::query_as(
        "SELECT id, owner, status, started_at, finished_at, pages, created, error \
         FROM sync_runs WHERE kind = 'data' ORDER BY started_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    n
}

/// Polls the runs until `done` holds (at most two minutes): waiting on a
/// condition in the database, not a guessed sleep.
async fn runs_until(pool: &PgPool, what: &str, done: impl Fn(&[Run]) -> bool) -> Vec<Run> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = data_runs(pool).await;
        if done(&runs) {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Finished runs never overlap, and each starts a full period (1 s, less
/// clock rounding) after the one before ended: no due slot ran twice.
fn assert_each_run_once(runs: &[Run]) {
    let finished: Vec<&Run> = runs.iter().filter(|r| r.status == "succeeded").collect();
    for pair in finished.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let gap = after.started_at - before.finished_at.unwrap();
        assert!(
            gap >= 900_000,
            "run {} started {gap} µs after run {} ended: {runs:#?}",
            after.id,
            before.id
        );
    }
}

fn pid_of(owner: &str) -> u32 {
    owner.rsplit(':').nth(1).unwrap().parse().unwrap()
}

fn write_key(path: &Path) -> String {
    let key = fedsync::crypto::KeyMaterial::generate().unwrap();
    std::fs::write(path, key.to_text()).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn two_replicas_on_one_postgres_run_each_job_once_and_take_over_a_dead_ones_job() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let relay = Relay::start().await;
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);

    // B: two processes, one database, the same keys from config.
    let scratch = tempfile::tempdir().unwrap();
    let signing = write_key(&scratch.path().join("signing.key"));
    let encryption = write_key(&scratch.path().join("encryption.key"));
    let env = [
        ("FEDSYNC_DATABASE__URL", db.url.as_str()),
        ("FEDSYNC_KEYS__SIGNING_KEY_FILE", signing.as_str()),
        ("FEDSYNC_KEYS__ENCRYPTION_KEY_FILE", encryption.as_str()),
        ("FEDSYNC_SYNC__DATA_PAGE_SIZE", "100"),
        ("FEDSYNC_SYNC__JOB_LEASE", "3s"),
        ("FEDSYNC_DAEMON__INSTANCE_LEASE", "6s"),
    ];
    let b1_dir = scratch.path().join("b1");
    let b2_dir = scratch.path().join("b2");
    let (mut b1, b1_federation) = spawn_child_daemon(&b1_dir, scratch.path(), &env).await;
    let (mut b2, _) = spawn_child_daemon(&b2_dir, scratch.path(), &env).await;
    let b = TestDaemon::detached(b1_dir.clone());
    let pool = PgPool::connect(&db.url).await.unwrap();

    // Pairing and mapping through replica 1.
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "b".into(),
                base_url: format!("http://{b1_federation}/federation"),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let a_for_b = created.node.unwrap().id;
    let added = cli_json(&b, &["node", "add-uri", &created.node_uri]).await;
    let b_for_a: u64 = added["id"].as_str().unwrap().parse().unwrap();
    cli_json(&b, &["node", "pair", &b_for_a.to_string()]).await;
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_for_b }, &a.admin_token()))
        .await
        .unwrap();
    share_account(&a, &b, a_for_b, b_for_a).await;
    let first = account_file(scratch.path(), 300);
    cli_json(
        &a,
        &["record", "import", "Account", first.to_str().unwrap()],
    )
    .await;

    // Many scheduled runs, a second apart, both replicas competing for them.
    let node = b_for_a.to_string();
    cli_json(&b, &["node", "schedule", &node, "--data", "1s"]).await;
    runs_until(&pool, "12 scheduled runs", |runs| {
        runs.iter().filter(|r| r.status == "succeeded").count() >= 12
    })
    .await;
    cli_json(&b, &["node", "pause", &node]).await;
    let runs = runs_until(&pool, "the last run to end", |runs| {
        runs.iter().all(|r| r.status != "running")
    })
    .await;
    assert_each_run_once(&runs);
    assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:#?}");
    // The origin saw exactly the pages the runs table accounts for: no run
    // happened that the table does not show.
    let pages: i64 = runs.iter().map(|r| r.pages).sum();
    assert_eq!(relay.requests("/records/").len() as i64, pages);
    assert_eq!(runs.iter().map(|r| r.created).sum::<i64>(), 300);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM local_records").await,
        300
    );
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM record_links").await, 300);
    let mut owners: Vec<&str> = runs.iter().map(|r| r.owner.as_str()).collect();
    owners.sort();
    owners.dedup();
    eprintln!(
        "{} runs by {} replica(s): {owners:?}",
        runs.len(),
        owners.len()
    );

    // 2,000 more; the next run is held at its third page and the replica
    // running it is killed.
    let more_dir = scratch.path().join("more");
    std::fs::create_dir(&more_dir).unwrap();
    let more = account_file(&more_dir, 2_000);
    cli_json(&a, &["record", "import", "Account", more.to_str().unwrap()]).await;
    relay.fault("/records/", 3, Fault::Hold);
    cli_json(&b, &["node", "resume", &node]).await;
    tokio::time::timeout(Duration::from_secs(60), relay.wait_held())
        .await
        .expect("a replica reaches page 3");
    // Page 3 is asked for while page 2 is written: the held run shows
    // pages 1 and 2 once page 2 lands (and no more: page 3 is held).
    let running = runs_until(&pool, "the held run", |runs| {
        runs.iter()
            .any(|r| r.status == "running" && r.created >= 200)
    })
    .await;
    let held = running
        .iter()
        .find(|r| r.status == "running")
        .unwrap()
        .clone();
    assert_eq!(held.created, 200, "pages 1 and 2 are in: {held:?}");
    let (victim, survivor) = if pid_of(&held.owner) == b1.id().unwrap() {
        (&mut b1, &mut b2)
    } else {
        assert_eq!(pid_of(&held.owner), b2.id().unwrap());
        (&mut b2, &mut b1)
    };
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    victim.wait().await.unwrap();
    // The dead replica's lease on the job, as it last renewed it.
    let (lease_until,): (i64,) = sqlx::query_as(
        "SELECT lease_expires_at FROM sync_jobs WHERE kind = 'data' AND lease_expires_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    relay.release();

    // The other replica takes the job over once the dead one's lease (3 s,
    // renewed every second) has run out, and finishes it from page 3.
    let runs = runs_until(&pool, "the job to be finished by the survivor", |runs| {
        runs.iter()
            .any(|r| r.started_at > held.started_at && r.status == "succeeded")
    })
    .await;
    let takeover = runs
        .iter()
        .find(|r| r.started_at > held.started_at && r.status == "succeeded")
        .unwrap();
    assert_eq!(pid_of(&takeover.owner), survivor.id().unwrap());
    assert!(
        takeover.started_at >= lease_until,
        "taken over only after the lease ran out: {takeover:?}, lease until {lease_until}"
    );
    assert_eq!(takeover.created, 1_800, "{takeover:?}");
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM local_records").await,
        2_300
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM record_links").await,
        2_300
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM (SELECT origin_record_id FROM record_links \
             GROUP BY node_id, origin_record_id HAVING COUNT(*) > 1) d"
        )
        .await,
        0,
        "no origin record arrived twice"
    );
    // The dead replica's run is closed once its instance lease expires.
    let runs = runs_until(&pool, "the dead replica's run to be closed", |runs| {
        runs.iter()
            .any(|r| r.id == held.id && r.status == "failed" && r.error.contains("interrupted"))
    })
    .await;
    assert_each_run_once(&runs);

    survivor.kill().await.unwrap();
    pool.close().await;
    a.stop().await;
    db.drop_database().await;
}
