//! Wire types that more than one route set speaks, serialised as they are
//! documented: the login body of `ihome` and `passport`, and the user
//! profile and session summary that the route sets answer with.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::flow::{CredentialFields, SessionData};
use crate::users::User;

// `{mobile, password}`: login in the `ihome` and `passport` route sets. (A
// comment, not a doc comment: the OpenAPI document names it by type alone.)
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    pub mobile: Option<String>,
    pub password: Option<String>,
}

impl LoginBody {
    pub fn fields(&self) -> CredentialFields<'_> {
        CredentialFields {
            mobile: self.mobile.as_deref(),
            password: self.password.as_deref(),
        }
    }
}

/// A user as clients see it.
#[derive(Serialize, ToSchema)]
pub struct Profile {
    pub user_id: i64,
    /// Defaults to the mobile number.
    pub name: String,
    /// National number for CN (`13812345678`), E.164 otherwise.
    pub mobile: String,
    pub avatar: Option<String>,
    #[schema(format = DateTime)]
    pub create_time: String,
}

impl Profile {
    /// `avatar`: the address of the user's avatar ([`crate::flow::Flow::avatar_url`]).
    pub fn new(user: &User, avatar: Option<String>) -> Self {
        Self {
            user_id: user.id,
            name: user.name.clone(),
            mobile: user.mobile.display(),
            avatar,
            // Formatting a stored time as RFC 3339 cannot fail for the
            // years a user row can hold.
            create_time: user.created_at.format(&Rfc3339).unwrap_or_default(),
        }
    }
}

// Who is logged in, as `GET /session` tells it (as above).
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub user_id: i64,
    pub name: String,
}

impl From<&SessionData> for SessionInfo {
    fn from(s: &SessionData) -> Self {
        Self {
            user_id: s.user_id,
            name: s.name.clone(),
        }
    }
}
