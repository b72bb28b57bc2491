-- The webhook outbox (SPEC §11): each audit event for each endpoint that
-- wants it, kept until delivered or given up, shared by every instance (a
-- row is claimed with a lease, so one instance sends it).
CREATE TABLE webhook_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id     TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    next_ms    INTEGER NOT NULL,
    locked_ms  INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    done_ms    INTEGER
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_ms) WHERE done_ms IS NULL;
