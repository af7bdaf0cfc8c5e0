//! SQLite only: record links kept when step 6 moves them into a clustered
//! table, and the write-ahead log checkpointed in the background.

use fedsync::domain::{self, Id, IdGenerator, NodeId};

use super::open;

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
        ["record_links_local"]
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
        .apply_record_batch(RecordBatch {
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
