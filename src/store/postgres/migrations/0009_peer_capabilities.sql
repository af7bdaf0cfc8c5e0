-- What a fedsync peer says it can do (its handshake's `fedsync` extension,
-- or its capability document, fetched on each structure sync): its
-- version and capabilities, comma-separated (`change-notices`: it sends
-- and takes live change notices). Written only by the statements that
-- learn it, never by a node's row writes.
CREATE TABLE peer_capabilities (
    node_id       BIGINT NOT NULL PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    version       TEXT   NOT NULL DEFAULT '',
    capabilities  TEXT   NOT NULL DEFAULT '',
    updated_at    BIGINT NOT NULL
);
