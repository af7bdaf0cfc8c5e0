//! A page's records and links written to PostgreSQL as one statement each,
//! the rows bound as one array a column (`UNNEST`): one parse and plan
//! whatever the page holds (a multi-row `VALUES` binds nine parameters a
//! row, and its plan grows with them), and one prepared statement a kind,
//! reused by the connection.

use sqlx::PgConnection;

use super::PgStore;
use crate::domain::{Id, RunCounts};
use crate::domain::{Record, RecordLink};
use crate::store::page_sql::{
    LinkWrite, cursor_upsert, link_conflict, link_touch_set, link_upsert_set, progress_binds,
    progress_update, record_upsert,
};
use crate::store::records_sql::{link_columns, record_columns};
use crate::store::{CursorWrite, StoreError, to_micros, values_json::values_to_json};

/// A statement being bound.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The arrays of a record's own columns (for `UNNEST`), as `bind_records`
/// binds them from `$a` on: id, values, origin node, created, updated,
/// deleted.
macro_rules! record_arrays {
    ($a:literal, $b:literal, $c:literal, $d:literal, $e:literal, $f:literal) => {
        concat!(
            "CAST(",
            $a,
            " AS BIGINT[]), CAST(",
            $b,
            " AS TEXT[]), CAST(",
            $c,
            " AS BIGINT[]), CAST(",
            $d,
            " AS BIGINT[]), CAST(",
            $e,
            " AS BIGINT[]), CAST(",
            $f,
            " AS BIGINT[])"
        )
    };
}
pub(super) use record_arrays;

/// A link's columns as arrays (`bind_links`) from `$1`, or, in
/// `page.rs`'s statement, from `$9`.
macro_rules! link_arrays {
    (1) => {
        "UNNEST(CAST($1 AS BIGINT[]), CAST($2 AS BIGINT[]), CAST($3 AS BIGINT[]), \
         CAST($4 AS BIGINT[]), CAST($5 AS BIGINT[]), CAST($6 AS BIGINT[]), CAST($7 AS BIGINT[]), \
         CAST($8 AS BIGINT[]))"
    };
    (9) => {
        "UNNEST(CAST($9 AS BIGINT[]), CAST($10 AS BIGINT[]), CAST($11 AS BIGINT[]), \
         CAST($12 AS BIGINT[]), CAST($13 AS BIGINT[]), CAST($14 AS BIGINT[]), CAST($15 AS BIGINT[]), \
         CAST($16 AS BIGINT[]))"
    };
}
pub(super) use link_arrays;

/// Records from arrays: `$1`-`$6` as `record_arrays`, `$7` the modules,
/// `$8` the change times.
macro_rules! insert_records {
    ($conflict:expr) => {
        concat!(
            "INSERT INTO local_records (",
            record_columns!(),
            ") SELECT id, m, v, o, c, u, d, ch, 1 FROM UNNEST(",
            record_arrays!("$1", "$2", "$3", "$4", "$5", "$6"),
            ", CAST($7 AS BIGINT[]), CAST($8 AS BIGINT[])) AS r(id, v, o, c, u, d, m, ch)",
            $conflict
        )
    };
}

macro_rules! insert_links {
    ($set:expr) => {
        concat!(
            "INSERT INTO record_links (",
            link_columns!(),
            ", seen_run) SELECT *, CAST($9 AS BIGINT) FROM ",
            link_arrays!(1),
            $set
        )
    };
}

/// Binds the record arrays of `record_arrays`.
pub(super) fn bind_records<'q, 'r>(
    query: PgQuery<'q>,
    records: impl Iterator<Item = &'r Record> + Clone,
) -> PgQuery<'q> {
    let column = |f: fn(&Record) -> i64| records.clone().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&Record) -> Option<i64>| records.clone().map(f).collect::<Vec<_>>();
    query
        .bind(column(|r| r.id.as_i64()))
        .bind(
            records
                .clone()
                .map(|r| values_to_json(&r.values))
                .collect::<Vec<_>>(),
        )
        .bind(optional(|r| r.origin_node_id.map(|n| n.as_i64())))
        .bind(column(|r| to_micros(r.created_at)))
        .bind(column(|r| to_micros(r.updated_at)))
        .bind(optional(|r| r.deleted_at.map(to_micros)))
}

/// Binds the link arrays of `link_arrays`.
pub(super) fn bind_links<'q>(query: PgQuery<'q>, links: &[RecordLink]) -> PgQuery<'q> {
    let column = |f: fn(&RecordLink) -> i64| links.iter().map(f).collect::<Vec<_>>();
    query
        .bind(column(|l| l.node_id.as_i64()))
        .bind(column(|l| l.exposed_module_id.as_i64()))
        .bind(column(|l| l.origin_record_id.as_i64()))
        .bind(column(|l| l.local_module_id.as_i64()))
        .bind(column(|l| l.local_record_id.as_i64()))
        .bind(column(|l| l.origin_changed_at))
        .bind(column(|l| to_micros(l.created_at)))
        .bind(column(|l| to_micros(l.updated_at)))
}

/// A page's cursor and its run's counts in one statement (one round trip).
const CURSOR_AND_PROGRESS: &str = concat!(
    "WITH cursor AS (",
    cursor_upsert!("$1", "$2", "$3", "$4", "$5"),
    ") ",
    progress_update!("$6", "$7", "$8", "$9", "$10", "$11", "$12")
);

impl PgStore {
    /// Begins a page's transaction holding `module`'s lock: both in one
    /// round trip (a simple query of two statements).
    pub(crate) async fn begin_page(
        &self,
        module: Option<i64>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let begin = match module {
            Some(module) => format!("BEGIN; SELECT pg_advisory_xact_lock({module})"),
            None => "BEGIN".to_owned(),
        };
        Ok(self.pool.begin_with(sqlx::AssertSqlSafe(begin)).await?)
    }

    /// Writes the cursor a page reached and its run's counts, in one
    /// statement when both are there.
    pub(crate) async fn write_bookkeeping(
        conn: &mut PgConnection,
        cursor: Option<&CursorWrite>,
        progress: Option<&(Id, RunCounts)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = match (cursor, progress) {
            (Some(_), Some(_)) => CURSOR_AND_PROGRESS,
            (Some(_), None) => cursor_upsert!("$1", "$2", "$3", "$4", "$5"),
            (None, Some(_)) => progress_update!("$1", "$2", "$3", "$4", "$5", "$6", "$7"),
            (None, None) => return Ok(()),
        };
        let mut query = sqlx::query(sql);
        if let Some(cursor) = cursor {
            query = query
                .bind(cursor.node_id.as_i64())
                .bind(cursor.shared_module_id.as_i64())
                .bind(cursor.cursor.as_str())
                .bind(cursor.last_sync)
                .bind(now);
        }
        if let Some((run, counts)) = progress {
            query = query.bind(run.as_i64());
            for n in progress_binds(counts) {
                query = query.bind(n);
            }
        }
        query.execute(conn).await?;
        Ok(())
    }

    /// Writes `rows` (a record and its `changed_at`; no id twice), as an
    /// upsert when any may be stored already.
    pub(crate) async fn write_records(
        conn: &mut PgConnection,
        rows: &[(&Record, i64)],
        upsert: bool,
    ) -> Result<(), StoreError> {
        let sql = if upsert {
            insert_records!(record_upsert!())
        } else {
            insert_records!("")
        };
        bind_records(sqlx::query(sql), rows.iter().map(|(r, _)| *r))
            .bind(
                rows.iter()
                    .map(|(r, _)| r.module_id.as_i64())
                    .collect::<Vec<_>>(),
            )
            .bind(
                rows.iter()
                    .map(|(_, changed_at)| *changed_at)
                    .collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Writes `links` (no key twice) as `kind` says.
    pub(crate) async fn write_links(
        conn: &mut PgConnection,
        links: &[RecordLink],
        seen_run: i64,
        kind: LinkWrite,
    ) -> Result<(), StoreError> {
        let sql = match kind {
            LinkWrite::New => insert_links!(""),
            LinkWrite::Whole => insert_links!(concat!(link_conflict!(), link_upsert_set!())),
            LinkWrite::Touch => insert_links!(concat!(link_conflict!(), link_touch_set!())),
        };
        bind_links(sqlx::query(sql), links)
            .bind(seen_run)
            .execute(conn)
            .await?;
        Ok(())
    }
}
