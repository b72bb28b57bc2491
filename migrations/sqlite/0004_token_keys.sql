-- Signing keys of the short-lived JWTs (SPEC §11): Ed25519, the private half
-- sealed under the server secret, shared by every instance.
CREATE TABLE token_keys (
    kid        TEXT    PRIMARY KEY,
    sealed     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
