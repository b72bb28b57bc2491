//! Short-lived JWTs for the site's other services (SPEC §11): EdDSA
//! (Ed25519), `sub` the user id, `exp` at most 15 minutes away, `iss` and
//! `aud` from `tokens.*`. The signing keys live in the database (the private
//! half sealed under the server secret), so every instance signs with the
//! same newest key and publishes the same set at `/.well-known/jwks.json`.
//! A key older than `tokens.rotate_hours` is replaced by a new one; the
//! previous key stays published while tokens it signed may still be alive.

use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::clock::SharedClock;
use crate::secret::{self, ServerSecret};
use crate::users::{RepoError, SharedUserRepo, TokenKey};

/// The longest a token lives (SPEC §11).
pub const MAX_TTL_SECS: u64 = 15 * 60;
/// How long a new key is published before it signs: the key set's
/// `max-age` (`http::tokens`), so cached sets know it.
const PUBLISHED_BEFORE_USE_MS: i64 = 300_000;
/// What the server secret seals token keys for.
const SEAL: &str = "token-key";
/// How long an instance serves the key set it last built. The route is
/// public: without this, each request would read and unseal every key. New
/// keys are published five minutes before they sign, so 5 s is harmless.
const JWKS_CACHE_MS: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss`; empty: the public base URL of the request.
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
    pub rotate_hours: u64,
}

struct Key {
    kid: String,
    pair: Ed25519KeyPair,
    created_ms: i64,
}

pub struct Tokens {
    settings: TokenSettings,
    users: SharedUserRepo,
    secret: ServerSecret,
    clock: SharedClock,
    /// Newest first, as last read.
    keys: RwLock<Vec<Key>>,
    /// One reader (or maker) of keys at a time: a rotation makes one key.
    refresh: tokio::sync::Mutex<()>,
    /// The key set as last published, and when it was built.
    published: RwLock<Option<(i64, Value)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Database(#[from] RepoError),
    #[error("token key: {0}")]
    Key(String),
}

impl Tokens {
    pub fn new(
        settings: TokenSettings,
        users: SharedUserRepo,
        secret: ServerSecret,
        clock: SharedClock,
    ) -> Self {
        Self {
            settings,
            users,
            secret,
            clock,
            keys: RwLock::new(Vec::new()),
            refresh: tokio::sync::Mutex::new(()),
            published: RwLock::new(None),
        }
    }

    /// A token for `user_id`; `issuer` is used when `tokens.issuer` is
    /// unset. Answers the token and its lifetime in seconds.
    pub async fn issue(&self, user_id: i64, issuer: &str) -> Result<(String, u64), TokenError> {
        self.ensure_current_key().await?;
        let now = self.clock.now().unix_timestamp();
        let ttl = self.settings.ttl_secs.min(MAX_TTL_SECS);
        let iss = if self.settings.issuer.is_empty() {
            issuer
        } else {
            &self.settings.issuer
        };
        let claims = json!({
            "sub": user_id.to_string(),
            "iss": iss,
            "aud": self.settings.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl as i64,
            "jti": secret::random_hex(16),
        });
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        // A new key signs only once verifiers that cache the key set
        // (`max-age` of the JWKS) have seen it; until then the one before.
        let key = keys
            .iter()
            .find(|k| self.age_ms(k) >= PUBLISHED_BEFORE_USE_MS)
            .or_else(|| keys.first())
            .ok_or_else(|| TokenError::Key("no signing key".into()))?;
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": key.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.pair.sign(signing_input.as_bytes());
        Ok((
            format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature.as_ref())
            ),
            ttl,
        ))
    }

    /// The published keys: every key younger than two rotations (a token
    /// signed just before a rotation stays verifiable).
    ///
    /// Read from the database (at most every [`JWKS_CACHE_MS`]), so every
    /// instance publishes every key, whoever made it.
    pub async fn jwks(&self) -> Result<Value, TokenError> {
        let now = self.now_ms();
        if let Some((at, set)) = &*self.published.read().unwrap_or_else(|p| p.into_inner())
            && now - at < JWKS_CACHE_MS
        {
            return Ok(set.clone());
        }
        self.ensure_current_key().await?;
        let keys = self.load().await?;
        let published: Vec<Value> = keys
            .iter()
            .filter(|k| self.age_ms(k) < 2 * self.rotation_ms())
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(k.pair.public_key().as_ref()),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        let set = json!({ "keys": published });
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = Some((now, set.clone()));
        Ok(set)
    }

    fn rotation_ms(&self) -> i64 {
        (self.settings.rotate_hours.max(1) * 3_600_000) as i64
    }

    fn age_ms(&self, k: &Key) -> i64 {
        self.now_ms() - k.created_ms
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Reads the keys when this instance has none or its newest is due for
    /// rotation, and makes a new one when the database has none younger
    /// than a rotation either.
    async fn ensure_current_key(&self) -> Result<(), TokenError> {
        let fresh = |keys: &[Key]| {
            keys.first()
                .is_some_and(|k| self.age_ms(k) < self.rotation_ms())
        };
        if fresh(&self.keys.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        let _one = self.refresh.lock().await;
        if fresh(&self.keys.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(()); // another request refreshed them meanwhile
        }
        let mut loaded = self.load().await?;
        if !fresh(&loaded) {
            self.create().await?;
            loaded = self.load().await?;
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    async fn load(&self) -> Result<Vec<Key>, TokenError> {
        let mut keys = Vec::new();
        for row in self.users.token_keys().await? {
            let pkcs8 = self.secret.open(SEAL, &row.sealed).ok_or_else(|| {
                TokenError::Key(format!("key {} was sealed under another secret", row.kid))
            })?;
            let pair =
                Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| TokenError::Key(e.to_string()))?;
            keys.push(Key {
                kid: row.kid,
                pair,
                created_ms: row.created_ms,
            });
        }
        Ok(keys)
    }

    async fn create(&self) -> Result<(), TokenError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let sealed = self
            .secret
            .seal(SEAL, pkcs8.as_ref())
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let key = TokenKey {
            kid: secret::random_hex(8),
            sealed,
            created_ms: self.now_ms(),
        };
        self.users.add_token_key(&key).await?;
        tracing::info!(kid = %key.kid, "new token signing key");
        Ok(())
    }
}
