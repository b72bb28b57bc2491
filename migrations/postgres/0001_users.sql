-- Users of phoneauth. `mobile` is the canonical E.164 form; the unique
-- constraint is what makes concurrent registrations of one number race-safe.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mobile        TEXT        NOT NULL,
    name          TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    avatar_url    TEXT,
    disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_mobile_key UNIQUE (mobile)
);
