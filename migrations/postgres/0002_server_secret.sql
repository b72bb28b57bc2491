-- The deployment's MAC key when none is configured: created by the first
-- instance that starts, read by every other one, so all instances agree.
CREATE TABLE server_secret (
    id         SMALLINT    PRIMARY KEY CHECK (id = 1),
    secret     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
