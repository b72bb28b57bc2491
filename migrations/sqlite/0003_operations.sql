-- Operator control (SPEC §10): the block and safe lists every instance
-- caches (`seq` only grows, so COUNT and MAX(seq) change with every change
-- of the lists), and the append-only audit log (times in Unix milliseconds).
CREATE TABLE list_entries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    list       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX list_entries_key ON list_entries (list, kind, value);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    user_id    INTEGER,
    mobile     TEXT,
    country    TEXT,
    client_net TEXT,
    request_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_at ON audit_events (at_ms);
CREATE INDEX audit_events_user ON audit_events (user_id, at_ms);
