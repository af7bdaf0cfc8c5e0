-- Record references are translated by the origin's record id whatever the
-- exposed module (the primary key starts with the module): without this,
-- each page with references scanned every link of the peer.
CREATE INDEX record_links_origin ON record_links (node_id, origin_record_id);
