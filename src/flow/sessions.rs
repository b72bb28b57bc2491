//! Sessions: 256-bit random ids, kept in the store under a hash of the id,
//! listed per user so that a user holds at most `sessions.max_per_user` and
//! all of them can be ended together.

use serde::{Deserialize, Serialize};

use super::{Flow, FlowError};
use crate::meter;
use crate::secret;
use crate::store::{IndexAdd, keys};
use crate::users::User;

/// What a session remembers; stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user_id: i64,
    pub name: String,
    pub mobile: String,
}

impl Flow {
    /// Starts a session for `user` and returns its id. Beyond
    /// `max_sessions_per_user` the user's oldest sessions end.
    pub async fn start_session(&self, user: &User) -> Result<String, FlowError> {
        let id = secret::random_hex(32);
        let hash = secret::sha256_hex(id.as_bytes());
        let data = SessionData {
            user_id: user.id,
            name: user.name.clone(),
            mobile: user.mobile.display(),
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
        let Some(data) = self.stored_session(id).await? else {
            return Ok(None);
        };
        match super::optional_lookup(self.users.by_id(data.user_id)).await {
            Some(Some(user)) if !user.disabled => Ok(Some(data)),
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
        let v = self.store.get(&session_key(id)).await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
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

    /// Ends every session of `user_id` (a disabled or deleted account).
    pub async fn end_user_sessions(&self, user_id: i64) -> Result<(), FlowError> {
        let index = keys::user_sessions(user_id);
        for hash in self.store.index_members(&index).await? {
            self.store.delete(&keys::session(&hash)).await?;
        }
        self.store.delete(&index).await?;
        Ok(())
    }
}

/// Sessions are keyed by a hash of the id, so a store dump holds no usable id.
fn session_key(id: &str) -> String {
    keys::session(&secret::sha256_hex(id.as_bytes()))
}

fn is_token_shaped(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
