//! A page's records and links written to SQLite as one multi-row
//! statement each (up to `ROWS_PER_STATEMENT` rows): one round trip to the
//! database's thread, not one a row.

use sqlx::SqliteConnection;

use super::SqliteStore;
use crate::domain::{Id, RunCounts};
use crate::domain::{Record, RecordLink};
use crate::store::page_sql::{
    LinkWrite, cursor_upsert, link_conflict, link_touch_set, link_upsert_set, progress_binds,
    progress_update, record_upsert,
};
use crate::store::records_sql::{link_columns, record_columns};
use crate::store::{CursorWrite, StoreError, to_micros, values_json::values_to_json};

impl SqliteStore {
    /// Begins a page's transaction. SQLite's write lock (BEGIN IMMEDIATE)
    /// serialises the writers of every module.
    pub(crate) async fn begin_page(
        &self,
        _module: Option<i64>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A first pull's page takes the general path: SQLite's round trips
    /// stay in the process (PostgreSQL's `write_new_page` saves three).
    pub(crate) async fn write_new_page(
        _conn: &mut SqliteConnection,
        _module: Option<i64>,
        _batch: &crate::store::RecordBatch,
        _now: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// Writes the cursor a page reached and its run's counts.
    pub(crate) async fn write_bookkeeping(
        conn: &mut SqliteConnection,
        cursor: Option<&CursorWrite>,
        progress: Option<&(Id, RunCounts)>,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(cursor) = cursor {
            sqlx::query(cursor_upsert!("$1", "$2", "$3", "$4", "$5"))
                .bind(cursor.node_id.as_i64())
                .bind(cursor.shared_module_id.as_i64())
                .bind(cursor.cursor.as_str())
                .bind(cursor.last_sync)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        if let Some((run, counts)) = progress {
            let mut update =
                sqlx::query(progress_update!("$1", "$2", "$3", "$4", "$5", "$6", "$7"))
                    .bind(run.as_i64());
            for n in progress_binds(counts) {
                update = update.bind(n);
            }
            update.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Writes `rows` (a record and its `changed_at`; no id twice), as an
    /// upsert when any may be stored already.
    pub(crate) async fn write_records(
        conn: &mut SqliteConnection,
        rows: &[(&Record, i64)],
        upsert: bool,
    ) -> Result<(), StoreError> {
        let mut insert = sqlx::QueryBuilder::new(concat!(
            "INSERT INTO local_records (",
            record_columns!(),
            ") "
        ));
        insert.push_values(rows, |mut row, (record, changed_at)| {
            row.push_bind(record.id.as_i64())
                .push_bind(record.module_id.as_i64())
                .push_bind(values_to_json(&record.values))
                .push_bind(record.origin_node_id.map(|n| n.as_i64()))
                .push_bind(to_micros(record.created_at))
                .push_bind(to_micros(record.updated_at))
                .push_bind(record.deleted_at.map(to_micros))
                .push_bind(*changed_at)
                .push_bind(1i64);
        });
        if upsert {
            insert.push(record_upsert!());
        }
        insert.build().execute(conn).await?;
        Ok(())
    }

    /// Writes `links` (no key twice) as `kind` says.
    pub(crate) async fn write_links(
        conn: &mut SqliteConnection,
        links: &[RecordLink],
        seen_run: i64,
        kind: LinkWrite,
    ) -> Result<(), StoreError> {
        let mut insert = sqlx::QueryBuilder::new(concat!(
            "INSERT INTO record_links (",
            link_columns!(),
            ", seen_run) "
        ));
        insert.push_values(links, |mut row, link| {
            row.push_bind(link.node_id.as_i64())
                .push_bind(link.exposed_module_id.as_i64())
                .push_bind(link.origin_record_id.as_i64())
                .push_bind(link.local_module_id.as_i64())
                .push_bind(link.local_record_id.as_i64())
                .push_bind(link.origin_changed_at)
                .push_bind(to_micros(link.created_at))
                .push_bind(to_micros(link.updated_at))
                .push_bind(seen_run);
        });
        match kind {
            LinkWrite::New => {}
            LinkWrite::Whole => {
                insert.push(concat!(link_conflict!(), link_upsert_set!()));
            }
            LinkWrite::Touch => {
                insert.push(concat!(link_conflict!(), link_touch_set!()));
            }
        }
        insert.build().execute(conn).await?;
        Ok(())
    }
}
