-- Users of phoneauth. `mobile` is the canonical E.164 form; the unique index
-- is what makes concurrent registrations of one number race-safe.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mobile        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    avatar_url    TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL
);

CREATE UNIQUE INDEX users_mobile_key ON users (mobile);
