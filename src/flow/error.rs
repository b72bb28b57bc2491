//! What can go wrong in the flow, as meanings only: which errno, HTTP status
//! and words a client sees is the HTTP layer's business (`http::error`,
//! `http::messages`).

use crate::limits::{LimitError, Refusal};
use crate::passwords::HashError;
use crate::sms::SmsError;
use crate::store::StoreError;
use crate::users::RepoError;

/// A step of the four-step registration that must come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 2: the SMS code.
    Verified,
    /// Step 3: the password.
    Password,
}

/// Why a request was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    Missing(&'static str),
    Mobile,
    CaptchaId,
    Code,
    PasswordPolicy {
        min: usize,
        max: usize,
    },
    PasswordMismatch,
    Body,
    Nickname,
    /// A user name or real name outside 1–32 printable characters.
    Name,
    Purpose,
    IdCard,
    /// A session handle that is not one.
    SessionId,
    /// Neither a password nor a `confirm` code proves who is asking.
    Proof,
    /// An avatar that is not a JPEG, PNG, WebP or GIF, or is too large.
    Image,
    /// A list entry that is not one (the reason, for the operator).
    ListEntry(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("bad parameter: {0:?}")]
    Param(ParamError),
    #[error("rate limited ({})", .0.scope.as_str())]
    Limited(Refusal),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Database(#[from] RepoError),
    #[error("captcha missing or expired")]
    CaptchaMissing,
    #[error("captcha answer wrong")]
    CaptchaWrong,
    #[error("SMS code missing or expired")]
    CodeMissing,
    #[error("SMS code wrong ({remaining} guesses left)")]
    CodeWrong { remaining: u32 },
    #[error("mobile already registered")]
    MobileTaken,
    #[error("name taken")]
    NameTaken,
    #[error("identity already recorded")]
    IdentitySet,
    #[error("no such session")]
    SessionMissing,
    #[error("avatar storage: {0}")]
    Avatars(String),
    #[error("refused by the defence ({})", .0.reason())]
    Refused(crate::defence::Refusal),
    #[error("wrong mobile or password")]
    BadCredentials,
    #[error("user disabled")]
    UserDisabled,
    #[error("user not found")]
    UserMissing,
    #[error("not logged in")]
    NotLoggedIn,
    #[error("SMS provider: {0}")]
    Sms(#[from] SmsError),
    #[error("password hashing busy")]
    Busy,
    #[error("registration step missing: {0:?}")]
    StepMissing(Step),
    #[error("step token missing or wrong")]
    StepToken,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<LimitError> for FlowError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Refused(r) => FlowError::Limited(r),
            LimitError::Store(s) => FlowError::Store(s),
        }
    }
}

impl From<crate::tokens::TokenError> for FlowError {
    fn from(e: crate::tokens::TokenError) -> Self {
        match e {
            crate::tokens::TokenError::Database(e) => FlowError::Database(e),
            crate::tokens::TokenError::Key(m) => FlowError::Internal(m),
        }
    }
}

impl From<HashError> for FlowError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => FlowError::Busy,
            HashError::Internal(m) => FlowError::Internal(m),
        }
    }
}

impl From<ParamError> for FlowError {
    fn from(p: ParamError) -> Self {
        FlowError::Param(p)
    }
}
