//! The iHome account pages' data (SPEC §9): the name, the avatar and the
//! real-name identity.

use super::{Flow, FlowError, ParamError};
use crate::avatars;
use crate::domain::IdCard;
use crate::meter;
use crate::users::{RepoError, User, UserChange};

/// What the server secret seals ID numbers for.
const ID_CARD_SEAL: &str = "id-card";

impl Flow {
    /// Renames the user; names are unique (`NameTaken`).
    pub async fn set_name(&self, user_id: i64, name: &str) -> Result<(), FlowError> {
        match self.users.update(user_id, UserChange::Name(name)).await {
            Ok(true) => {
                meter::account_event("name_changed");
                tracing::info!(user_id, "name changed");
                let user = self.user(user_id).await?;
                self.refresh_sessions(&user).await;
                Ok(())
            }
            Ok(false) => Err(FlowError::UserMissing),
            Err(RepoError::NameTaken) => Err(FlowError::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new avatar (an image by its bytes, within
    /// `avatars.max_bytes`) and deletes the old one; returns its address.
    pub async fn set_avatar(&self, user_id: i64, image: Vec<u8>) -> Result<String, FlowError> {
        if image.len() > self.avatars.max_bytes {
            return Err(ParamError::Image.into());
        }
        let kind = avatars::sniff(&image).ok_or(ParamError::Image)?;
        let user = self.user(user_id).await?;
        let name = self
            .avatars
            .put(image, kind)
            .await
            .map_err(|e| FlowError::Avatars(e.to_string()))?;
        match self
            .users
            .update(user_id, UserChange::Avatar(Some(&name)))
            .await
        {
            Ok(true) => {}
            done => {
                self.discard_avatar(name).await;
                done?;
                return Err(FlowError::UserMissing);
            }
        }
        if let Some(old) = user.avatar_url {
            self.discard_avatar(old).await;
        }
        meter::account_event("avatar_changed");
        tracing::info!(user_id, "avatar changed");
        Ok(self.avatars.url(&name))
    }

    /// Deletes a stored avatar in the background; a failure is logged.
    pub(super) async fn discard_avatar(&self, name: String) {
        let avatars = self.avatars.clone();
        crate::budget::cleanup(async move {
            if let Err(e) = avatars.delete(&name).await {
                tracing::warn!(error = %e, "could not delete an avatar");
            }
        })
        .await;
    }

    /// The address of the user's avatar, if they have one.
    pub fn avatar_url(&self, user: &User) -> Option<String> {
        user.avatar_url
            .as_deref()
            .map(|name| self.avatars.url(name))
    }

    /// The largest avatar accepted, in bytes.
    pub fn avatar_limit(&self) -> usize {
        self.avatars.max_bytes
    }

    /// The folder `/avatars/` serves, for a file store.
    pub fn avatar_dir(&self) -> Option<&std::path::Path> {
        self.avatars.local_dir()
    }

    /// Records the user's real name and ID number, once (`IdentitySet`
    /// after that). The number is kept sealed under the server secret,
    /// beside its masked form; it never reaches a log.
    pub async fn set_identity(
        &self,
        user_id: i64,
        real_name: &str,
        id_card: &IdCard,
    ) -> Result<(), FlowError> {
        let sealed = self
            .secret
            .seal(ID_CARD_SEAL, id_card.expose().as_bytes())
            .map_err(|e| FlowError::Internal(e.to_string()))?;
        let masked = id_card.masked();
        let change = UserChange::Identity {
            real_name,
            sealed: &sealed,
            masked: &masked,
        };
        if self.users.update(user_id, change).await? {
            meter::account_event("identity_recorded");
            tracing::info!(user_id, "identity recorded");
            return Ok(());
        }
        // Nothing changed: recorded before, or no such user.
        self.user(user_id).await?;
        Err(FlowError::IdentitySet)
    }
}
