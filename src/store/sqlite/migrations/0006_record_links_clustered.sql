-- record_links becomes a WITHOUT ROWID table: its rows are stored in the
-- order of its primary key (peer, origin exposed module, origin record).
-- Before, a link looked up by that key was found in the key's index and
-- then read from the table by rowid, and every write changed both: two
-- B-trees at random pages for each record a sync touched. The secondary
-- indexes are the same as before.
CREATE TABLE record_links_clustered (
    node_id            BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    exposed_module_id  BIGINT NOT NULL,
    origin_record_id   BIGINT NOT NULL,
    local_module_id    BIGINT NOT NULL,
    local_record_id    BIGINT NOT NULL,
    origin_changed_at  BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    seen_run           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, exposed_module_id, origin_record_id)
) WITHOUT ROWID;

INSERT INTO record_links_clustered (
    node_id, exposed_module_id, origin_record_id, local_module_id, local_record_id,
    origin_changed_at, created_at, updated_at, seen_run
)
SELECT node_id, exposed_module_id, origin_record_id, local_module_id, local_record_id,
       origin_changed_at, created_at, updated_at, seen_run
FROM record_links;

DROP TABLE record_links;
ALTER TABLE record_links_clustered RENAME TO record_links;

CREATE INDEX record_links_local ON record_links (local_record_id);
CREATE INDEX record_links_module ON record_links (node_id, exposed_module_id, seen_run);
CREATE INDEX record_links_origin ON record_links (node_id, origin_record_id);
