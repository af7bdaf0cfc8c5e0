//! The SQL fragments of a page's writes that both engines' statements
//! are made of (`sqlite/bulk.rs`, `postgres/bulk.rs`, `postgres/page.rs`):
//! what an upsert sets, the cursor and a run's counts, how links are
//! written.

/// The conflict clause of a records upsert and what it sets.
macro_rules! record_upsert {
    () => {
        " ON CONFLICT (id) DO UPDATE SET \"values\" = excluded.\"values\", updated_at = excluded.updated_at, \
         deleted_at = excluded.deleted_at, changed_at = excluded.changed_at, \
         revision = local_records.revision + 1"
    };
}
pub(crate) use record_upsert;

/// The conflict clause of a links upsert.
macro_rules! link_conflict {
    () => {
        " ON CONFLICT (node_id, origin_record_id, exposed_module_id) DO UPDATE SET "
    };
}
pub(crate) use link_conflict;

/// What an upsert of a link sets: all but its key and creation.
macro_rules! link_upsert_set {
    () => {
        "local_module_id = excluded.local_module_id, local_record_id = excluded.local_record_id, \
         origin_changed_at = excluded.origin_changed_at, updated_at = excluded.updated_at, \
         seen_run = CASE WHEN excluded.seen_run > 0 THEN excluded.seen_run ELSE record_links.seen_run END"
    };
}
pub(crate) use link_upsert_set;

/// What a touched link gets: only its two timestamps (a SET naming an
/// indexed column rewrites that index's entry even when its value stays).
macro_rules! link_touch_set {
    () => {
        "origin_changed_at = excluded.origin_changed_at, updated_at = excluded.updated_at"
    };
}
pub(crate) use link_touch_set;

/// How a chunk of links is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkWrite {
    /// Inserted: none is stored (a conflict fails the statement).
    New,
    /// Upserted whole.
    Whole,
    /// Only their two timestamps set: they are stored, unmoved.
    Touch,
}

/// The upsert of a pull's cursor, its parameters named by the caller.
macro_rules! cursor_upsert {
    ($node:literal, $module:literal, $cursor:literal, $last_sync:literal, $now:literal) => {
        concat!(
            "INSERT INTO sync_cursors (node_id, shared_module_id, cursor, last_sync, updated_at) VALUES (",
            $node, ", ", $module, ", ", $cursor, ", ", $last_sync, ", ", $now,
            ") ON CONFLICT (node_id, shared_module_id) DO UPDATE SET cursor = excluded.cursor, \
             last_sync = excluded.last_sync, updated_at = excluded.updated_at"
        )
    };
}
pub(crate) use cursor_upsert;

/// The update of a run's counts: `$run` its id, then pages, created,
/// updated, deleted, skipped, errors.
macro_rules! progress_update {
    ($run:literal, $pages:literal, $created:literal, $updated:literal, $deleted:literal, $skipped:literal, $errors:literal) => {
        concat!(
            "UPDATE sync_runs SET pages = ",
            $pages,
            ", created = ",
            $created,
            ", updated = ",
            $updated,
            ", deleted = ",
            $deleted,
            ", skipped = ",
            $skipped,
            ", errors = ",
            $errors,
            " WHERE id = ",
            $run
        )
    };
}
pub(crate) use progress_update;

/// A run's counts as bound: pages, created, updated, deleted, skipped,
/// errors.
pub(crate) fn progress_binds(counts: &crate::domain::RunCounts) -> [i64; 6] {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    [
        n(counts.pages),
        n(counts.created),
        n(counts.updated),
        n(counts.deleted),
        n(counts.skipped),
        n(counts.errors),
    ]
}
