-- Records count their writes, as Corteza's `revision` does.
ALTER TABLE local_records ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;

-- The run that last saw each received record (a full re-pull removes local
-- copies of records the origin no longer has), and where per-record sync
-- errors are looked up by run.
ALTER TABLE record_links ADD COLUMN seen_run BIGINT NOT NULL DEFAULT 0;
CREATE INDEX record_links_module ON record_links (node_id, exposed_module_id, seen_run);
