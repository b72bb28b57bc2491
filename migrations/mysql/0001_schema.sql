-- phoneauth on MySQL or MariaDB: the schema the PostgreSQL and SQLite
-- migrations reach, in one step. Text compares byte for byte (utf8mb4_bin),
-- as it does in the other databases, so names differing in case are two
-- names. Times of users are UTC; the other tables keep Unix milliseconds.
CREATE TABLE users (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    mobile         VARCHAR(32)  NOT NULL,
    name           VARCHAR(191) NOT NULL,
    password_hash  TEXT         NOT NULL,
    avatar_url     TEXT,
    disabled       BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at     DATETIME(6)  NOT NULL,
    real_name      TEXT,
    id_card_sealed TEXT,
    id_card_masked TEXT,
    CONSTRAINT users_mobile_key UNIQUE (mobile),
    CONSTRAINT users_name_key UNIQUE (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The deployment's MAC key when none is configured (see deployment_secret.rs).
CREATE TABLE server_secret (
    id     SMALLINT       NOT NULL PRIMARY KEY,
    secret VARBINARY(64)  NOT NULL
) ENGINE = InnoDB;

CREATE TABLE list_entries (
    seq        BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    list       VARCHAR(8)  NOT NULL,
    kind       VARCHAR(8)  NOT NULL,
    value      VARCHAR(64) NOT NULL,
    created_ms BIGINT      NOT NULL,
    CONSTRAINT list_entries_key UNIQUE (list, kind, value)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE audit_events (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    event      VARCHAR(64) NOT NULL,
    user_id    BIGINT,
    mobile     VARCHAR(32),
    country    VARCHAR(8),
    client_net VARCHAR(64),
    request_id VARCHAR(64),
    detail     TEXT,
    INDEX audit_events_at (at_ms),
    INDEX audit_events_user (user_id, at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE token_keys (
    kid        VARCHAR(64) NOT NULL PRIMARY KEY,
    sealed     TEXT        NOT NULL,
    created_ms BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- `claim` marks the rows one instance took in one claim: MySQL has no
-- UPDATE … RETURNING, so the rows are claimed, then read by their mark.
CREATE TABLE webhook_outbox (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    msg_id     VARCHAR(64)  NOT NULL,
    endpoint   TEXT         NOT NULL,
    event      VARCHAR(64)  NOT NULL,
    payload    MEDIUMTEXT   NOT NULL,
    created_ms BIGINT       NOT NULL,
    next_ms    BIGINT       NOT NULL,
    locked_ms  BIGINT       NOT NULL DEFAULT 0,
    claim      VARCHAR(32),
    attempts   INT          NOT NULL DEFAULT 0,
    done_ms    BIGINT,
    INDEX webhook_outbox_due (done_ms, next_ms),
    INDEX webhook_outbox_claim (claim)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
