-- The webhook outbox (SPEC §11): each audit event for each endpoint that
-- wants it, kept until delivered or given up, shared by every instance (a
-- row is claimed with a lease, so one instance sends it).
CREATE TABLE webhook_outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id     TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL,
    next_ms    BIGINT  NOT NULL,
    locked_ms  BIGINT  NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    done_ms    BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_ms) WHERE done_ms IS NULL;
