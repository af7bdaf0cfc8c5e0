-- Notifications waiting to be delivered (an outbox): one row per message and
-- recipient, written in the same transaction as the event that caused it
-- where that event is a pairing step. Bodies never hold a secret (invites,
-- which carry a node URI, are sent at once and never stored).
CREATE TABLE notifications (
    id                BIGINT PRIMARY KEY,
    -- 'email' or 'webhook'
    channel           TEXT   NOT NULL,
    -- An email address or a webhook URL.
    target            TEXT   NOT NULL,
    event             TEXT   NOT NULL,
    node_id           BIGINT,
    subject           TEXT   NOT NULL DEFAULT '',
    body              TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    last_error        TEXT   NOT NULL DEFAULT '',
    sent_at           BIGINT,
    given_up_at       BIGINT,
    lease_owner       TEXT   NOT NULL DEFAULT '',
    lease_expires_at  BIGINT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at);

-- When the current run of failures of a job began (NULL: not failing).
ALTER TABLE sync_jobs ADD COLUMN failing_since BIGINT;
