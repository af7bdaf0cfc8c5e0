-- fedsync schema, SQLite engine. Append-only: never edit a released step,
-- add a new numbered file. The PostgreSQL twin has the same steps.
--
-- Conventions: ids are Corteza-style 64-bit integers; every *_at column is
-- microseconds since the Unix epoch (UTC); JSON is stored as TEXT; secrets
-- are stored only as hashes or as ciphertext.

-- Process instance numbers for id generation (one lease per running daemon).
CREATE TABLE instances (
    instance_no   INTEGER PRIMARY KEY,
    owner         TEXT    NOT NULL,
    acquired_at   BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    last_id_ms    BIGINT  NOT NULL DEFAULT 0
);

-- Small named values that belong to the node (e.g. the embedded namespace id).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Peers. status: pending | pair_requested | paired | failed.
-- structure_status / data_status: '' (never) | syncing | synced | failed.
CREATE TABLE nodes (
    id                      INTEGER PRIMARY KEY,
    shared_node_id          BIGINT,
    name                    TEXT    NOT NULL DEFAULT '',
    base_url                TEXT    NOT NULL DEFAULT '',
    contact                 TEXT    NOT NULL DEFAULT '',
    status                  TEXT    NOT NULL DEFAULT 'pending',
    status_reason           TEXT    NOT NULL DEFAULT '',
    peer_kind               TEXT    NOT NULL DEFAULT 'unknown',
    handshake_requested_at  BIGINT,
    handshake_source_addr   TEXT    NOT NULL DEFAULT '',
    peer_token_fingerprint  TEXT    NOT NULL DEFAULT '',
    structure_status        TEXT    NOT NULL DEFAULT '',
    structure_synced_at     BIGINT,
    structure_error         TEXT    NOT NULL DEFAULT '',
    data_status             TEXT    NOT NULL DEFAULT '',
    data_synced_at          BIGINT,
    data_error              TEXT    NOT NULL DEFAULT '',
    paused                  BOOLEAN NOT NULL DEFAULT FALSE,
    schedule_structure      TEXT    NOT NULL DEFAULT '',
    schedule_data           TEXT    NOT NULL DEFAULT '',
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL,
    deleted_at              BIGINT
);
CREATE INDEX nodes_shared_node_id ON nodes (shared_node_id);

-- One-time pairing tokens we generated (inviter side): only the SHA-256.
-- token_hash is NULL once consumed or voided.
CREATE TABLE pairing_tokens (
    node_id          INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    token_hash       BLOB,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    failed_attempts  BIGINT  NOT NULL DEFAULT 0,
    consumed_at      BIGINT,
    locked_at        BIGINT
);

-- Tokens we issued to peers (JWTs whose jti is the id): only the SHA-256.
CREATE TABLE issued_tokens (
    id              INTEGER PRIMARY KEY,
    node_id         BIGINT  NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    token_hash      BLOB    NOT NULL,
    scope           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    last_used_addr  TEXT    NOT NULL DEFAULT '',
    revoked_at      BIGINT,
    revoked_reason  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX issued_tokens_node ON issued_tokens (node_id);

-- Secrets we hold for peers, encrypted with the node's encryption key.
-- kind: 'auth_token' (the token the peer issued us) | 'pair_token' (the OTT
-- from a node URI, until the handshake consumes it).
CREATE TABLE peer_credentials (
    node_id      BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind         TEXT   NOT NULL,
    ciphertext   BLOB   NOT NULL,
    fingerprint  TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (node_id, kind)
);

-- Admin tokens (JWTs whose jti is the id). kind: admin | readonly.
CREATE TABLE admin_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);

-- Embedded data plane: modules of the one default namespace.
CREATE TABLE local_modules (
    id            INTEGER PRIMARY KEY,
    namespace_id  BIGINT NOT NULL,
    handle        TEXT   NOT NULL,
    name          TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE UNIQUE INDEX local_modules_handle ON local_modules (namespace_id, handle) WHERE deleted_at IS NULL;

-- Fields of embedded modules, in display order. kind as in Corteza compose.
CREATE TABLE local_module_fields (
    module_id  BIGINT  NOT NULL REFERENCES local_modules (id) ON DELETE CASCADE,
    position   BIGINT  NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    label      TEXT    NOT NULL DEFAULT '',
    is_multi   BOOLEAN NOT NULL DEFAULT FALSE,
    options    TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (module_id, name)
);

-- Records of embedded modules. values: JSON object, field name -> value or
-- [values]. changed_at is the latest of created/updated/deleted and, with id,
-- the keyset the origin pages by. origin_node_id is set on records that
-- arrived from a peer (never re-exported to it).
CREATE TABLE local_records (
    id              INTEGER PRIMARY KEY,
    module_id       BIGINT NOT NULL REFERENCES local_modules (id),
    "values"        TEXT   NOT NULL DEFAULT '{}',
    origin_node_id  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    changed_at      BIGINT NOT NULL
);
CREATE INDEX local_records_changes ON local_records (module_id, changed_at, id);

-- Origin side: a local module exposed to one peer, with the fields it may see
-- (JSON array of {kind, name, label, isMulti}).
CREATE TABLE exposed_modules (
    id            INTEGER PRIMARY KEY,
    node_id       BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    module_id     BIGINT NOT NULL,
    namespace_id  BIGINT NOT NULL,
    handle        TEXT   NOT NULL DEFAULT '',
    name          TEXT   NOT NULL DEFAULT '',
    fields        TEXT   NOT NULL DEFAULT '[]',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE UNIQUE INDEX exposed_modules_node_module ON exposed_modules (node_id, module_id) WHERE deleted_at IS NULL;
CREATE INDEX exposed_modules_changes ON exposed_modules (node_id, updated_at, id);

-- Destination side: a module a peer exposed to us, as its structure sync
-- delivered it. external_module_id is the origin's exposed module id.
CREATE TABLE shared_modules (
    id                  INTEGER PRIMARY KEY,
    node_id             BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    external_module_id  BIGINT NOT NULL,
    origin_module_id    BIGINT NOT NULL DEFAULT 0,
    origin_namespace_id BIGINT NOT NULL DEFAULT 0,
    handle              TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    fields              TEXT   NOT NULL DEFAULT '[]',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT
);
CREATE UNIQUE INDEX shared_modules_node_external ON shared_modules (node_id, external_module_id);

-- Destination side: how a shared module's fields land in a local module
-- (JSON array of {origin, destination}). status: ok | broken.
CREATE TABLE module_mappings (
    id                INTEGER PRIMARY KEY,
    node_id           BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    shared_module_id  BIGINT NOT NULL REFERENCES shared_modules (id) ON DELETE CASCADE,
    local_module_id   BIGINT NOT NULL,
    namespace_id      BIGINT NOT NULL DEFAULT 0,
    fields            TEXT   NOT NULL DEFAULT '[]',
    status            TEXT   NOT NULL DEFAULT 'ok',
    status_reason     TEXT   NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX module_mappings_shared ON module_mappings (shared_module_id);

-- Scheduled work: one structure job per paired node, one data job per
-- (node, mapped shared module; 0 for structure). state: idle | running |
-- backoff | stopped | paused. A running job holds a lease.
CREATE TABLE sync_jobs (
    id                INTEGER PRIMARY KEY,
    node_id           BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind              TEXT   NOT NULL,
    shared_module_id  BIGINT NOT NULL DEFAULT 0,
    schedule          TEXT   NOT NULL DEFAULT '',
    state             TEXT   NOT NULL DEFAULT 'idle',
    next_run_at       BIGINT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT   NOT NULL DEFAULT '',
    last_error_at     BIGINT,
    last_success_at   BIGINT,
    stop_reason       TEXT   NOT NULL DEFAULT '',
    lease_owner       TEXT   NOT NULL DEFAULT '',
    lease_expires_at  BIGINT,
    triggered_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX sync_jobs_identity ON sync_jobs (node_id, kind, shared_module_id);
CREATE INDEX sync_jobs_due ON sync_jobs (next_run_at);

-- Where each pull stands: the opaque cursor the origin gave us and, for
-- Corteza origins, the lastSync value to send. shared_module_id 0 = structure.
CREATE TABLE sync_cursors (
    node_id           BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    shared_module_id  BIGINT NOT NULL,
    cursor            TEXT   NOT NULL DEFAULT '',
    last_sync         BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (node_id, shared_module_id)
);

-- History of sync runs with their counts. status: running | succeeded | failed.
CREATE TABLE sync_runs (
    id                INTEGER PRIMARY KEY,
    job_id            BIGINT NOT NULL DEFAULT 0,
    node_id           BIGINT NOT NULL,
    kind              TEXT   NOT NULL,
    shared_module_id  BIGINT NOT NULL DEFAULT 0,
    trigger           TEXT   NOT NULL DEFAULT 'schedule',
    owner             TEXT   NOT NULL DEFAULT '',
    status            TEXT   NOT NULL DEFAULT 'running',
    started_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    pages             BIGINT NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL DEFAULT 0,
    updated           BIGINT NOT NULL DEFAULT 0,
    deleted           BIGINT NOT NULL DEFAULT 0,
    skipped           BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    error             TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX sync_runs_node ON sync_runs (node_id, started_at);

-- Per-record problems of a run (values the destination cannot hold, ...).
CREATE TABLE sync_run_errors (
    run_id            BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    origin_record_id  BIGINT NOT NULL DEFAULT 0,
    message           TEXT   NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Identity of received records: (peer, origin exposed module, origin record)
-- -> local record. The only place record identity lives.
CREATE TABLE record_links (
    node_id            BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    exposed_module_id  BIGINT NOT NULL,
    origin_record_id   BIGINT NOT NULL,
    local_module_id    BIGINT NOT NULL,
    local_record_id    BIGINT NOT NULL,
    origin_changed_at  BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (node_id, exposed_module_id, origin_record_id)
);
CREATE INDEX record_links_local ON record_links (local_record_id);

-- Append-only audit log. result: ok | refused | failed. detail: JSON object.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY,
    at           BIGINT NOT NULL,
    event        TEXT   NOT NULL,
    result       TEXT   NOT NULL,
    node_id      BIGINT,
    actor        TEXT   NOT NULL DEFAULT '',
    token_id     BIGINT,
    source_addr  TEXT   NOT NULL DEFAULT '',
    reason       TEXT   NOT NULL DEFAULT '',
    detail       TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_node ON audit_events (node_id, id);
CREATE INDEX audit_events_at ON audit_events (at);
