//! A first pull's page in one statement: after the BEGIN that takes the
//! module's lock, one statement reads where the module's change times stand
//! and inserts the page's records and links, its cursor and its run's
//! counts; then COMMIT. Three round trips to the server, where the general
//! path (`records_sql`) takes six. Its CTEs share one snapshot, taken after
//! the lock, so the change times follow commit order as the general path's
//! do.

use sqlx::PgConnection;

use super::PgStore;
use super::bulk::{bind_links, bind_records, link_arrays, record_arrays};
use crate::store::page_sql::{cursor_upsert, progress_binds, progress_update};
use crate::store::records_sql::{ROWS_PER_STATEMENT, link_columns, record_columns};
use crate::store::{RecordBatch, StoreError};

const PAGE: &str = concat!(
    "WITH base AS (SELECT GREATEST(CAST($1 AS BIGINT), COALESCE(MAX(changed_at), 0) + 1) AS at \
     FROM local_records WHERE module_id = $2), \
     records AS (INSERT INTO local_records (",
    record_columns!(),
    ") SELECT r.id, $2, r.v, r.o, r.c, r.u, r.d, base.at + r.n - 1, 1 FROM base, UNNEST(",
    record_arrays!("$3", "$4", "$5", "$6", "$7", "$8"),
    ") WITH ORDINALITY AS r(id, v, o, c, u, d, n)), \
     links AS (INSERT INTO record_links (",
    link_columns!(),
    ", seen_run) SELECT *, CAST($17 AS BIGINT) FROM ",
    link_arrays!(9),
    "), cursor AS (",
    cursor_upsert!("$18", "$19", "$20", "$21", "$1"),
    "), progress AS (",
    progress_update!("$22", "$23", "$24", "$25", "$26", "$27", "$28"),
    ") SELECT at FROM base"
);

impl PgStore {
    /// Writes `batch` in one statement when it is a first pull's page: new
    /// records of one module (`module`, locked), each once, new links, its
    /// cursor and counts, nothing else. Returns the change time of its
    /// first record (the others follow it by one each), or `None` when the
    /// batch is another kind, for the general path.
    pub(crate) async fn write_new_page(
        conn: &mut PgConnection,
        module: Option<i64>,
        batch: &RecordBatch,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (Some(module), Some(cursor), Some((run, counts))) =
            (module, &batch.cursor, &batch.progress)
        else {
            return Ok(None);
        };
        let mut ids = std::collections::HashSet::with_capacity(batch.records.len());
        let simple = batch.records.len() <= ROWS_PER_STATEMENT
            && batch.new_links.len() <= ROWS_PER_STATEMENT
            && batch.links.is_empty()
            && batch.touched.is_empty()
            && batch.errors.is_empty()
            && batch
                .records
                .iter()
                .all(|r| r.revision == 0 && r.module_id.as_i64() == module && ids.insert(r.id));
        let mut keys = std::collections::HashSet::with_capacity(batch.new_links.len());
        if !simple
            || !batch
                .new_links
                .iter()
                .all(|l| keys.insert((l.node_id, l.exposed_module_id, l.origin_record_id)))
        {
            return Ok(None);
        }
        let query = sqlx::query(PAGE).bind(now).bind(module);
        let query = bind_records(query, batch.records.iter());
        let mut query = bind_links(query, &batch.new_links)
            .bind(batch.seen_run)
            .bind(cursor.node_id.as_i64())
            .bind(cursor.shared_module_id.as_i64())
            .bind(cursor.cursor.as_str())
            .bind(cursor.last_sync)
            .bind(run.as_i64());
        for n in progress_binds(counts) {
            query = query.bind(n);
        }
        let row = query.fetch_one(conn).await?;
        Ok(Some(sqlx::Row::try_get(&row, 0)?))
    }
}
