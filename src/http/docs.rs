//! Schemas of the OpenAPI document: the wire envelopes and their `data`. Each
//! route carries its own `#[utoipa::path]` beside its handler, and the
//! router registers route and document together (`utoipa_axum::routes!`), so
//! the two cannot drift.

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

pub use super::wire::{Profile, SessionInfo};

/// Always a string: `0` OK, `4001` DBERR, `4002` NODATA, `4003`
/// DATAEXIST, `4004` DATAERR, `4101` SESSIONERR, `4102` LOGINERR, `4103`
/// PARAMERR, `4104` USERERR, `4105` ROLEERR, `4106` PWDERR, `4201` REQERR,
/// `4202` IPERR, `4301` THIRDERR, `4302` IOERR, `4500` SERVERERR, `4501`
/// UNKOWNERR.
#[derive(Serialize, ToSchema)]
#[schema(
    pattern = "^(0|4001|4002|4003|4004|4101|4102|4103|4104|4105|4106|4201|4202|4301|4302|4500|4501)$",
    example = "0"
)]
pub struct ErrnoCode(String);

/// The errno envelope (SPEC §2). Business outcomes, limits and outages
/// included, answer HTTP 200 with this; limits add `Retry-After`.
#[derive(Serialize, ToSchema)]
pub struct Envelope {
    #[schema(inline)]
    pub errno: ErrnoCode,
    /// Chinese unless `Accept-Language` prefers English.
    pub errmsg: String,
}

/// Login state: `errmsg` is `"true"` (errno `0`, with `data`) or `"false"`
/// (errno `4101`).
#[derive(Serialize, ToSchema)]
pub struct SessionReply {
    #[schema(inline)]
    pub errno: ErrnoCode,
    pub errmsg: String,
    pub data: Option<SessionInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileReply {
    #[schema(inline)]
    pub errno: ErrnoCode,
    pub errmsg: String,
    pub data: Option<Profile>,
}

/// The four-step flow's envelope: `code` 1 is success, 0 failure.
#[derive(Serialize, ToSchema)]
pub struct StepsReply {
    #[schema(minimum = 0, maximum = 1)]
    pub code: i32,
    pub message: String,
    /// `POST /login` only.
    pub token: Option<String>,
    /// `POST /register-step-2` only: present it to steps 3 and 4 (body
    /// `step_token` or header `Step-Token`).
    pub step_token: Option<String>,
    /// `POST /register-step-4` and `GET /user` only.
    pub data: Option<Profile>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// `/readyz` when not ready: `store` or `database`.
    pub failing: Option<String>,
}

/// The answers of an errno route set's JSON POST besides its 200.
#[derive(IntoResponses)]
#[allow(dead_code)] // a document type: never built
pub enum PostRefusals {
    #[response(status = 403, description = "Cross-site request refused")]
    CrossSite(Envelope),
    #[response(status = 413, description = "Body over 16 KiB")]
    TooLarge(Envelope),
}

/// The error answers an image route shares with every other one.
#[derive(IntoResponses)]
#[allow(dead_code)] // a document type: never built
pub enum ImageRefusals {
    #[response(
        status = 429,
        description = "Per-client captcha limit (REQERR, Retry-After)"
    )]
    Limited(Envelope),
    #[response(status = 503, description = "Store unavailable (DBERR)")]
    StoreDown(Envelope),
}

/// Every answer of a `steps` POST.
#[derive(IntoResponses)]
#[allow(dead_code)] // a document type: never built
pub enum StepsAnswers {
    #[response(
        status = 200,
        description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)"
    )]
    Reply(StepsReply),
    #[response(status = 403, description = "Cross-site request refused")]
    CrossSite,
    #[response(status = 413, description = "Body over 16 KiB")]
    TooLarge,
}
