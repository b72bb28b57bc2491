//! Sessions: 256-bit random ids, kept in the store under a hash of the id,
//! listed per user so that a user holds at most `sessions.max_per_user` and
//! all of them can be ended together.

use serde::{Deserialize, Serialize};

use super::{Flow, FlowError};
use crate::audit::Record;
use crate::meter;
use crate::secret;
use crate::store::{IndexAdd, keys};
use crate::users::User;

/// How often a session's `last_seen` is written: at most once a minute, so
/// a busy session does not write on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// What a session remembers; stored as JSON. Sessions stored before the
/// session list existed read with empty details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user_id: i64,
    pub name: String,
    pub mobile: String,
    /// The number in E.164, for the site's other services (forward auth).
    #[serde(default)]
    pub e164: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub last_seen: i64,
    /// The client's network, masked (`203.0.113.0/24`), never the address.
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub user_agent: String,
    /// The session's public handle (SPEC §9: never the secret id).
    #[serde(skip)]
    pub handle: String,
}

impl SessionData {
    /// The account's name and number as they are now.
    fn set_user(&mut self, user: &User) {
        self.name = user.name.clone();
        self.mobile = user.mobile.display();
        self.e164 = user.mobile.e164().to_owned();
    }
}

/// Where a session was started from, for the user's session list.
#[derive(Debug, Clone, Default)]
pub struct SessionOrigin {
    /// Masked, as logged: `203.0.113.0/24`.
    pub network: String,
    pub user_agent: String,
}

/// The longest `User-Agent` a session keeps.
const MAX_USER_AGENT: usize = 256;

/// A session in its user's list.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub data: SessionData,
    /// The session the list was asked from.
    pub current: bool,
}

impl Flow {
    /// Starts a session for `user` and returns its id. Beyond
    /// `max_sessions_per_user` the user's oldest sessions end.
    pub async fn start_session(
        &self,
        user: &User,
        origin: &SessionOrigin,
    ) -> Result<String, FlowError> {
        let id = secret::random_hex(32);
        let hash = secret::sha256_hex(id.as_bytes());
        let now = self.clock.now().unix_timestamp();
        let data = SessionData {
            user_id: user.id,
            name: user.name.clone(),
            mobile: user.mobile.display(),
            e164: user.mobile.e164().to_owned(),
            created: now,
            last_seen: now,
            network: origin.network.clone(),
            user_agent: origin.user_agent.chars().take(MAX_USER_AGENT).collect(),
            handle: String::new(),
        };
        let json = serde_json::to_vec(&data).map_err(|e| FlowError::Internal(e.to_string()))?;
        let ttl = self.settings.session_ttl;
        self.store.set(&keys::session(&hash), &json, ttl).await?;
        let add = IndexAdd {
            member: &hash,
            max: self.settings.max_sessions_per_user,
            ttl,
        };
        let evicted = self
            .store
            .index_add(&keys::user_sessions(user.id), add)
            .await;
        let evicted = match evicted {
            Ok(e) => e,
            Err(e) => {
                // Unlisted, it could be neither capped nor ended with the
                // others: do not hand it out.
                let _ = self.store.delete(&keys::session(&hash)).await;
                return Err(e.into());
            }
        };
        for old in evicted {
            self.store.delete(&keys::session(&old)).await?;
            meter::session_evicted();
        }
        // A user disabled between the caller's check and this session's
        // write had every session ended already — but not this one.
        if let Some(Some(u)) = super::optional_lookup(self.users.by_id(user.id)).await
            && u.disabled
        {
            self.end_session(&id).await?;
            return Err(FlowError::UserDisabled);
        }
        Ok(id)
    }

    /// The session's data, while its user exists and is enabled. A session
    /// of a deleted or disabled user is ended on sight, with every other
    /// session of that user. When the database cannot answer, the store's
    /// word stands (sessions keep working through a database outage).
    pub async fn session(&self, id: &str) -> Result<Option<SessionData>, FlowError> {
        if !is_token_shaped(id) {
            return Ok(None);
        }
        let Some(mut data) = self.stored_session(id).await? else {
            return Ok(None);
        };
        self.touch(id, &mut data).await;
        match super::optional_lookup(self.users.by_id(data.user_id)).await {
            Some(Some(user)) if !user.disabled => {
                // The account's name and number as they are now.
                data.set_user(&user);
                Ok(Some(data))
            }
            Some(_) => {
                tracing::info!(
                    user_id = data.user_id,
                    "session of a disabled or deleted user ended"
                );
                self.end_user_sessions(data.user_id).await?;
                Ok(None)
            }
            None => {
                tracing::warn!("user lookup failed while checking a session; trusting the store");
                Ok(Some(data))
            }
        }
    }

    async fn stored_session(&self, id: &str) -> Result<Option<SessionData>, FlowError> {
        let hash = secret::sha256_hex(id.as_bytes());
        self.session_by_hash(&hash).await
    }

    async fn session_by_hash(&self, hash: &str) -> Result<Option<SessionData>, FlowError> {
        let v = self.store.get(&keys::session(hash)).await?;
        Ok(
            v.and_then(|b| serde_json::from_slice::<SessionData>(&b).ok())
                .map(|mut d| {
                    d.handle = handle_of(hash).to_owned();
                    d
                }),
        )
    }

    /// Records that the session is in use, at most once a minute; a failure
    /// costs only the accuracy of `last_seen`.
    async fn touch(&self, id: &str, data: &mut SessionData) {
        let now = self.clock.now().unix_timestamp();
        if now - data.last_seen < TOUCH_EVERY_SECS {
            return;
        }
        data.last_seen = now;
        let Ok(json) = serde_json::to_vec(&*data) else {
            return;
        };
        if let Err(e) = self.store.replace(&session_key(id), &json).await {
            tracing::debug!(error = %e, "could not record a session's last use");
        }
    }

    /// The session's data from the store alone — one read, no database
    /// query — for forward auth, which sits in front of every request of a
    /// site. Sessions of disabled and deleted users are ended when that
    /// happens, and name and number changes are written into every session
    /// ([`Flow::refresh_sessions`]), so the store's word is current.
    pub async fn verify_session(&self, id: &str) -> Result<Option<SessionData>, FlowError> {
        if !is_token_shaped(id) {
            return Ok(None);
        }
        self.stored_session(id).await
    }

    /// Writes the user's current name and number into each of their
    /// sessions (after a rename or a number change, which has committed: a
    /// failure here is logged, not the caller's error); a session that
    /// cannot be written keeps its old words until it ends.
    pub(super) async fn refresh_sessions(&self, user: &User) {
        if let Err(e) = self.write_user_into_sessions(user).await {
            tracing::warn!(user_id = user.id, error = %e, "could not refresh the sessions");
        }
    }

    async fn write_user_into_sessions(&self, user: &User) -> Result<(), FlowError> {
        for hash in self
            .store
            .index_members(&keys::user_sessions(user.id))
            .await?
        {
            let Some(mut data) = self.session_by_hash(&hash).await? else {
                continue;
            };
            data.set_user(user);
            let json = serde_json::to_vec(&data).map_err(|e| FlowError::Internal(e.to_string()))?;
            if let Err(e) = self.store.replace(&keys::session(&hash), &json).await {
                tracing::warn!(error = %e, "could not refresh a session");
            }
        }
        Ok(())
    }

    /// The user's live sessions, newest first; `current_id` is marked.
    pub async fn list_sessions(
        &self,
        user_id: i64,
        current_id: &str,
    ) -> Result<Vec<SessionView>, FlowError> {
        let current = secret::sha256_hex(current_id.as_bytes());
        let mut list = Vec::new();
        for hash in self
            .store
            .index_members(&keys::user_sessions(user_id))
            .await?
        {
            if let Some(data) = self.session_by_hash(&hash).await? {
                list.push(SessionView {
                    data,
                    current: hash == current,
                });
            }
        }
        list.sort_by_key(|v| std::cmp::Reverse(v.data.created));
        Ok(list)
    }

    /// Ends the user's session whose public handle is `handle`; `false`
    /// when the user has none such (another user's handle is none such).
    pub async fn end_session_by_handle(
        &self,
        user_id: i64,
        handle: &str,
    ) -> Result<bool, FlowError> {
        let index = keys::user_sessions(user_id);
        let found = self
            .store
            .index_members(&index)
            .await?
            .into_iter()
            .find(|hash| handle_of(hash) == handle);
        let Some(hash) = found else {
            return Ok(false);
        };
        self.store.delete(&keys::session(&hash)).await?;
        self.store.index_remove(&index, &hash).await?;
        meter::sessions_ended("one");
        self.record(Record::new("sessions_ended").user(user_id).detail("one"));
        Ok(true)
    }

    /// Ends every session of `user_id` but the one whose id is `keep`.
    pub async fn end_other_sessions(&self, user_id: i64, keep: &str) -> Result<(), FlowError> {
        let keep = secret::sha256_hex(keep.as_bytes());
        self.end_sessions(user_id, Some(&keep)).await
    }

    pub async fn end_session(&self, id: &str) -> Result<(), FlowError> {
        if !is_token_shaped(id) {
            return Ok(());
        }
        let hash = secret::sha256_hex(id.as_bytes());
        if let Some(data) = self.stored_session(id).await? {
            self.store
                .index_remove(&keys::user_sessions(data.user_id), &hash)
                .await?;
        }
        self.store.delete(&keys::session(&hash)).await?;
        Ok(())
    }

    /// Ends every session of `user_id` (a disabled or deleted account, a
    /// reset password).
    pub async fn end_user_sessions(&self, user_id: i64) -> Result<(), FlowError> {
        self.end_sessions(user_id, None).await
    }

    /// Ends the user's sessions but the one whose hash is `keep`. Member by
    /// member: a session started meanwhile stays listed (and so can still
    /// be ended) instead of vanishing with the whole index.
    async fn end_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<(), FlowError> {
        let index = keys::user_sessions(user_id);
        for hash in self.store.index_members(&index).await? {
            if Some(hash.as_str()) != keep {
                self.store.delete(&keys::session(&hash)).await?;
                self.store.index_remove(&index, &hash).await?;
            }
        }
        let scope = if keep.is_some() { "others" } else { "all" };
        meter::sessions_ended(scope);
        self.record(Record::new("sessions_ended").user(user_id).detail(scope));
        Ok(())
    }
}

/// A session's public handle: half of the hash of its id — it names the
/// session in the user's list, and neither is nor leads to the id.
fn handle_of(hash: &str) -> &str {
    &hash[..hash.len().min(32)]
}

/// Whether `raw` could be a session handle.
pub fn is_handle_shaped(raw: &str) -> bool {
    raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sessions are keyed by a hash of the id, so a store dump holds no usable id.
fn session_key(id: &str) -> String {
    keys::session(&secret::sha256_hex(id.as_bytes()))
}

fn is_token_shaped(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
