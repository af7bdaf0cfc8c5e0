//! PostgreSQL plans that must not depend on statistics someone else keeps:
//! on a server without autovacuum (this machine's), links loaded by a first
//! pull have none until fedsync analyzes them, and a page's lookup of its
//! records' links read every link of the module (2.1 s a page at 60,000
//! links). Loaded through the store, as a pull loads them, the lookup goes
//! through the primary key, which leads with the origin ids; records
//! written in bulk get their statistics too (a page of a module's records after an id read every
//! remaining record without them: 56 ms a page at 200,000).

use fedsync::domain::{
    self, Id, IdGenerator, LocalModule, PairingStatus, Record, RecordLink, RecordValues,
};
use fedsync::store::postgres::{PgOptions, PgStore};
use fedsync::store::{RecordBatch, Store};
use sqlx::Connection;

use super::node;
use crate::common::{self, pg::TestDatabase};

/// The plan of the store's statement, generic (as a prepared statement
/// reused by the pool) or for these values.
async fn plan(conn: &mut sqlx::PgConnection, mode: &str, node: i64, module: i64) -> String {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    let ids: Vec<String> = (59_001..59_201).map(|i| i.to_string()).collect();
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN EXECUTE links_by_origin({node}, {module}, '{}')",
        ids.join(",")
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(l,)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What PostgreSQL believes `local_records` holds (-1: never analyzed).
async fn record_tuples(conn: &mut sqlx::PgConnection) -> f32 {
    sqlx::query_as::<_, (f32,)>("SELECT reltuples FROM pg_class WHERE relname = 'local_records'")
        .fetch_one(conn)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_pages_link_lookup_uses_the_primary_key_without_statistics() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    // The engine itself, to wait for the analyzes it runs beside the writes.
    let pg = PgStore::connect(
        &db.url,
        &PgOptions {
            max_connections: 4,
            connect_timeout: std::time::Duration::from_secs(10),
        },
    )
    .await
    .unwrap();
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(pg.clone());
    store.migrate().await.unwrap();
    let ids = IdGenerator::new(1, 0);
    let peer = node(
        &ids,
        "Plans peer",
        "https://p.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (tuples,): (f32,) =
        sqlx::query_as("SELECT reltuples FROM pg_class WHERE relname = 'record_links'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        tuples < 0.0,
        "the table starts without statistics ({tuples})"
    );
    // 60,000 links of one module, in pages of 1,000 as a pull writes them.
    let id = |n: u64| Id::new(n).unwrap();
    for page in 0..60u64 {
        let links = (1..=1_000)
            .map(|i| {
                let n = page * 1_000 + i;
                RecordLink {
                    node_id: peer.id,
                    exposed_module_id: id(100),
                    origin_record_id: id(n),
                    local_module_id: id(200),
                    local_record_id: id(1_000_000 + n),
                    origin_changed_at: 0,
                    created_at: domain::now(),
                    updated_at: domain::now(),
                }
            })
            .collect();
        store
            .apply_record_batch(RecordBatch {
                records: Vec::new(),
                links,
                new_links: Vec::new(),
                touched: Vec::new(),
                seen_run: 7,
                cursor: None,
                errors: Vec::new(),
                progress: None,
            })
            .await
            .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE links_by_origin(bigint, bigint, text) AS {}",
        PgStore::LINKS_OF_MODULE_BY_ORIGIN
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let plan = plan(&mut conn, mode, peer.id.as_i64(), 100).await;
        assert!(
            plan.contains("record_links_pkey") && plan.contains("origin_record_id = ANY"),
            "{mode}:\n{plan}"
        );
    }
    // And it finds them: 200 links of the module, none of another.
    let found = store
        .find_links(
            peer.id,
            fedsync::domain::Id::new(100).unwrap(),
            &(59_001..59_201)
                .map(|i| fedsync::domain::Id::new(i).unwrap())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 200);
    let none = store
        .find_links(
            peer.id,
            fedsync::domain::Id::new(101).unwrap(),
            &[fedsync::domain::Id::new(59_001).unwrap()],
        )
        .await
        .unwrap();
    assert!(none.is_empty());

    // A module's records written in pages as an import writes them: the
    // records table is analyzed too.
    let now = domain::now();
    let ns = store.embedded_namespace_id(ids.next_id()).await.unwrap();
    let module = LocalModule {
        id: ids.next_id(),
        namespace_id: ns,
        handle: "ledger".into(),
        name: "Ledger".into(),
        fields: Vec::new(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    store.insert_local_module(&module).await.unwrap();
    assert!(record_tuples(&mut conn).await < 0.0);
    for _ in 0..3 {
        let records = (0..500)
            .map(|_| Record {
                id: ids.next_id(),
                module_id: module.id,
                values: RecordValues::new(),
                origin_node_id: None,
                created_at: now,
                updated_at: now,
                deleted_at: None,
                changed_at: 0,
                revision: 0,
            })
            .collect();
        store
            .apply_record_batch(RecordBatch {
                records,
                links: Vec::new(),
                new_links: Vec::new(),
                touched: Vec::new(),
                seen_run: 0,
                cursor: None,
                errors: Vec::new(),
                progress: None,
            })
            .await
            .unwrap();
    }
    pg.statistics_settled().await;
    let analyzed = record_tuples(&mut conn).await;
    assert!(analyzed >= 1_000.0, "local_records analyzed: {analyzed}");
    conn.close().await.ok();
    db.drop_database().await;
}
