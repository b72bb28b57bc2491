//! The account routes of SPEC §9 on the canonical API (`/api/v1.0`, alias
//! `/api/v1_0`): codes with a purpose, sign in by code, password reset and
//! change, mobile change, the session list, deletion, and the iHome account
//! pages' profile, avatar and identity.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client_address::{Client, Origin};
use super::docs::{Envelope, PostRefusals, ProfileReply};
use super::error::ApiError;
use super::extract::{BodyDeadline, JsonBody};
use super::wire::Profile;
use super::{AppState, actions, envelope, messages, session};
use crate::flow::input;
use crate::flow::{CodeRequestFields, FlowError, ParamError, Proof, is_handle_shaped};

/// The routes, to be nested under the API prefixes. `upload_limit` bounds
/// the avatar upload's body.
pub fn routes(upload_limit: usize) -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_avatar))
        .layer(DefaultBodyLimit::max(upload_limit));
    OpenApiRouter::new()
        .routes(routes!(request_code))
        .routes(routes!(code_login))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
        .routes(routes!(change_mobile))
        .routes(routes!(user_profile, delete_account))
        .routes(routes!(list_sessions, end_sessions))
        .routes(routes!(end_one_session))
        .routes(routes!(set_name))
        .routes(routes!(identity, set_identity))
        .merge(upload)
}

#[derive(Deserialize, ToSchema)]
struct CodeBody {
    mobile: Option<String>,
    /// `register`, `login`, `reset`, `change_mobile` or `confirm`.
    purpose: Option<String>,
    image_code: Option<String>,
    image_code_id: Option<String>,
}

/// Sends an SMS code for a purpose, in the check order of
/// `GET /sms_codes/{mobile}`. `change_mobile` and `confirm` need a session;
/// `confirm` goes to the session user's own number (`mobile` may be left
/// out).
#[utoipa::path(post, path = "/sms_codes", tag = "accounts", request_body = CodeBody,
    responses(
        (status = 200, description = "OK, or PARAMERR, SESSIONERR, REQERR, NODATA, DATAERR, DATAEXIST, USERERR, DBERR, THIRDERR", body = Envelope),
        PostRefusals,
    ))]
async fn request_code(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let fields = CodeRequestFields {
        mobile: b.mobile.as_deref(),
        purpose: Some(b.purpose.as_deref().unwrap_or_default()),
        image_code: b.image_code.as_deref(),
        image_code_id: b.image_code_id.as_deref(),
        id_field: "image_code_id",
    };
    actions::send_code(&s, &client, &headers, fields).await
}

#[derive(Deserialize, ToSchema)]
struct CodeLoginBody {
    mobile: Option<String>,
    sms_code: Option<String>,
}

/// What a sign-in by code answers.
#[derive(Serialize, ToSchema)]
struct CodeLoginData {
    user_id: i64,
    name: String,
    /// The code created the account (`accounts.sign_up_by_code`).
    created: bool,
}

/// Signs in with a `login` code and starts a session.
#[utoipa::path(post, path = "/sessions/sms", tag = "accounts", request_body = CodeLoginBody,
    responses(
        (status = 200, description = "OK with {user_id, name, created} (sets the session cookie), or PARAMERR, NODATA, DATAERR, USERERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn code_login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    JsonBody(b): JsonBody<CodeLoginBody>,
) -> Result<Response, ApiError> {
    let (mobile, code) = s
        .flow
        .inputs()
        .code_login(b.mobile.as_deref(), b.sms_code.as_deref())?;
    let (user, created) = s.flow.code_login(&mobile, &code).await?;
    let data = envelope::data(&CodeLoginData {
        user_id: user.id,
        name: user.name.clone(),
        created,
    });
    session::logged_in(
        &s,
        &headers,
        &origin,
        &user,
        messages::LOGGED_IN,
        Some(data),
    )
    .await
}

#[derive(Deserialize, ToSchema)]
struct ResetBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

/// Sets a new password with a `reset` code: every session of the user ends,
/// the number's failed logins are cleared, and a new session starts.
#[utoipa::path(post, path = "/password/reset", tag = "accounts", request_body = ResetBody,
    responses(
        (status = 200, description = "OK (sets the session cookie), or PARAMERR, NODATA, DATAERR, USERERR, REQERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn reset_password(
    State(s): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    JsonBody(b): JsonBody<ResetBody>,
) -> Result<Response, ApiError> {
    let rules = s.flow.inputs();
    let mobile = rules.mobile(b.mobile.as_deref())?;
    let code = input::sms_code(b.sms_code.as_deref())?;
    let password = rules.new_password(b.password.as_deref(), b.password2.as_deref())?;
    let user = s.flow.reset_password(&mobile, &code, &password).await?;
    session::logged_in(&s, &headers, &origin, &user, messages::PASSWORD_SET, None).await
}

#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    old_password: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

/// Changes the password after checking the old one (counted as a login
/// attempt); every other session ends.
#[utoipa::path(put, path = "/user/password", tag = "accounts", request_body = PasswordBody,
    responses(
        (status = 200, description = "OK, or PARAMERR, SESSIONERR, DATAERR, REQERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn change_password(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    let rules = s.flow.inputs();
    let old = rules.login_password(b.old_password.as_deref(), "old_password")?;
    let new = rules.new_password(b.password.as_deref(), b.password2.as_deref())?;
    let (data, id) = session::required(&s, &headers).await?;
    s.flow
        .change_password(&data, id, old, &new, &client)
        .await?;
    Ok(envelope::ok(messages::PASSWORD_CHANGED, None))
}

#[derive(Deserialize, ToSchema)]
struct MobileBody {
    /// The new number.
    mobile: Option<String>,
    /// The `change_mobile` code sent to the new number.
    sms_code: Option<String>,
    /// Proof of the owner: the password…
    old_password: Option<String>,
    /// …or a `confirm` code sent to the current number.
    confirm_code: Option<String>,
}

/// Moves the account to a new number; both codes are consumed and every
/// other session ends.
#[utoipa::path(put, path = "/user/mobile", tag = "accounts", request_body = MobileBody,
    responses(
        (status = 200, description = "OK with the profile, or PARAMERR, SESSIONERR, NODATA, DATAERR, DATAEXIST, REQERR, DBERR", body = ProfileReply),
        PostRefusals,
    ))]
async fn change_mobile(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<MobileBody>,
) -> Result<Response, ApiError> {
    let rules = s.flow.inputs();
    let mobile = rules.mobile(b.mobile.as_deref())?;
    let code = input::sms_code(b.sms_code.as_deref())?;
    let proof = proof(&s, b.old_password.as_deref(), b.confirm_code.as_deref())?;
    let (data, id) = session::required(&s, &headers).await?;
    let user = s
        .flow
        .change_mobile(&data, id, &mobile, &code, proof, &client)
        .await?;
    let profile = Profile::new(&user, s.flow.avatar_url(&user));
    Ok(envelope::ok(
        messages::MOBILE_CHANGED,
        Some(envelope::data(&profile)),
    ))
}

/// The password or the `confirm` code, whichever was given (the password
/// first when both are).
fn proof(s: &AppState, password: Option<&str>, code: Option<&str>) -> Result<Proof, FlowError> {
    let given = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
    if given(password) {
        let p = s.flow.inputs().login_password(password, "password")?;
        Ok(Proof::Password(p))
    } else if given(code) {
        Ok(Proof::Code(input::sms_code(code)?))
    } else {
        Err(ParamError::Proof.into())
    }
}

/// The logged-in user's profile.
#[utoipa::path(get, path = "/user", tag = "ihome",
    responses((status = 200, description = "OK with the profile, or SESSIONERR, USERERR, DBERR", body = ProfileReply)))]
async fn user_profile(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let data = session::current(&s, &headers)
        .await?
        .ok_or(FlowError::NotLoggedIn)?;
    let user = s.flow.user(data.user_id).await?;
    let profile = Profile::new(&user, s.flow.avatar_url(&user));
    Ok(envelope::ok(messages::OK, Some(envelope::data(&profile))))
}

#[derive(Deserialize, ToSchema)]
struct DeleteBody {
    password: Option<String>,
    /// A `confirm` code sent to the account's number, instead of the password.
    confirm_code: Option<String>,
}

/// Deletes the account: profile, avatar and identity data are erased, the
/// number is free again, every session ends.
#[utoipa::path(delete, path = "/user", tag = "accounts", request_body = DeleteBody,
    responses(
        (status = 200, description = "OK (clears the session cookie), or PARAMERR, SESSIONERR, NODATA, DATAERR, REQERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn delete_account(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<DeleteBody>,
) -> Result<Response, ApiError> {
    let proof = proof(&s, b.password.as_deref(), b.confirm_code.as_deref())?;
    let (data, _) = session::required(&s, &headers).await?;
    s.flow.delete_account(&data, proof, &client).await?;
    let mut resp = envelope::ok(messages::ACCOUNT_DELETED, None);
    session::clear(&mut resp, s.cookies);
    Ok(resp)
}

/// One session in the user's list.
#[derive(Serialize, ToSchema)]
struct SessionEntry {
    /// A public handle (never the session's secret id).
    id: String,
    #[schema(format = DateTime)]
    created: String,
    #[schema(format = DateTime)]
    last_seen: String,
    /// The client's network, masked: `203.0.113.0/24`, `2001:db8:1::/48`.
    ip: String,
    user_agent: String,
    /// The session this list was asked from.
    current: bool,
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The user's live sessions, newest first.
#[utoipa::path(get, path = "/user/sessions", tag = "accounts",
    responses((status = 200, description = "OK with data.sessions, or SESSIONERR, DBERR", body = Envelope)))]
async fn list_sessions(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (data, id) = session::required(&s, &headers).await?;
    let sessions: Vec<SessionEntry> = s
        .flow
        .list_sessions(data.user_id, id)
        .await?
        .into_iter()
        .map(|v| SessionEntry {
            id: v.data.handle,
            created: rfc3339(v.data.created),
            last_seen: rfc3339(v.data.last_seen),
            ip: v.data.network,
            user_agent: v.data.user_agent,
            current: v.current,
        })
        .collect();
    Ok(envelope::ok(
        messages::OK,
        Some(json!({ "sessions": envelope::data(&sessions) })),
    ))
}

#[derive(Deserialize)]
struct EndQuery {
    all: Option<String>,
}

/// Ends every other session of the user; with `?all=true` this one too.
#[utoipa::path(delete, path = "/user/sessions", tag = "accounts",
    params(("all" = Option<bool>, Query, description = "true: end this session too")),
    responses(
        (status = 200, description = "OK, or SESSIONERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn end_sessions(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EndQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| ParamError::Body)?;
    let all = matches!(q.all.as_deref().map(str::trim), Some("true" | "1"));
    let (data, id) = session::required(&s, &headers).await?;
    let mut resp = envelope::ok(messages::SESSIONS_ENDED, None);
    if all {
        s.flow.end_user_sessions(data.user_id).await?;
        session::clear(&mut resp, s.cookies);
    } else {
        s.flow.end_other_sessions(data.user_id, id).await?;
    }
    Ok(resp)
}

/// Ends one of the user's sessions, named by its `id` from the list.
#[utoipa::path(delete, path = "/user/sessions/{id}", tag = "accounts",
    params(("id" = String, Path, description = "A session's id from GET /user/sessions")),
    responses(
        (status = 200, description = "OK, or PARAMERR, SESSIONERR, NODATA (no such session of this user), DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn end_one_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    handle: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let handle = handle
        .ok()
        .map(|Path(h)| h)
        .filter(|h| is_handle_shaped(h))
        .ok_or(ParamError::SessionId)?;
    let (data, _) = session::required(&s, &headers).await?;
    let own = data.handle == handle;
    if !s.flow.end_session_by_handle(data.user_id, &handle).await? {
        return Err(FlowError::SessionMissing.into());
    }
    let mut resp = envelope::ok(messages::SESSIONS_ENDED, None);
    if own {
        session::clear(&mut resp, s.cookies);
    }
    Ok(resp)
}

#[derive(Deserialize, ToSchema)]
struct NameBody {
    name: Option<String>,
}

/// Sets the user's name: 1–32 characters, no control characters, unique. A
/// taken name answers errno `"4001"`, which the iHome page shows as
/// "用户名已存在".
#[utoipa::path(put, path = "/users/name", tag = "ihome", request_body = NameBody,
    responses(
        (status = 200, description = "OK with {name}, or PARAMERR, SESSIONERR, 4001 (name taken, or database error)", body = Envelope),
        PostRefusals,
    ))]
async fn set_name(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<NameBody>,
) -> Result<Response, ApiError> {
    let name = input::user_name(b.name.as_deref())?;
    let (data, _) = session::required(&s, &headers).await?;
    s.flow.set_name(data.user_id, &name).await?;
    Ok(envelope::ok(messages::OK, Some(json!({ "name": name }))))
}

/// Stores a new avatar: the `avatar` field of a `multipart/form-data` body,
/// a JPEG, PNG, WebP or GIF (by content) within `avatars.max_bytes`.
#[utoipa::path(post, path = "/users/avatar", tag = "ihome",
    request_body(content_type = "multipart/form-data", description = "Field `avatar`: the image"),
    responses(
        (status = 200, description = "OK with {avatar_url}, or PARAMERR (not an image, too large), SESSIONERR, DBERR, IOERR", body = Envelope),
        PostRefusals,
    ))]
async fn upload_avatar(
    State(s): State<AppState>,
    headers: HeaderMap,
    deadline: Option<axum::Extension<BodyDeadline>>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let (data, _) = session::required(&s, &headers).await?;
    let form = form.map_err(|_| ParamError::Body)?;
    let limit = s.flow.avatar_limit();
    let read = avatar_field(form, limit);
    let image = match deadline {
        Some(axum::Extension(BodyDeadline(at))) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| ParamError::Body)??,
        None => read.await?,
    };
    let url = s.flow.set_avatar(data.user_id, image).await?;
    Ok(envelope::ok(
        messages::OK,
        Some(json!({ "avatar_url": url })),
    ))
}

/// The bytes of the form's `avatar` field, refused past `limit`.
async fn avatar_field(mut form: Multipart, limit: usize) -> Result<Vec<u8>, FlowError> {
    while let Some(mut field) = form.next_field().await.map_err(|_| ParamError::Body)? {
        if field.name() != Some("avatar") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|_| ParamError::Image)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ParamError::Image.into());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(bytes);
    }
    Err(ParamError::Missing("avatar").into())
}

/// The real-name identity as recorded: `{real_name, id_card}`, the number
/// masked (`110105********1234`); both null when unset.
#[utoipa::path(get, path = "/users/auth", tag = "ihome",
    responses((status = 200, description = "OK with {real_name, id_card}, or SESSIONERR, DBERR", body = Envelope)))]
async fn identity(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (data, _) = session::required(&s, &headers).await?;
    let user = s.flow.user(data.user_id).await?;
    Ok(envelope::ok(
        messages::OK,
        Some(json!({ "real_name": user.real_name, "id_card": user.id_card_masked })),
    ))
}

#[derive(Deserialize, ToSchema)]
struct IdentityBody {
    real_name: Option<String>,
    /// An 18-character mainland ID number (GB 11643 check digit).
    id_card: Option<String>,
}

/// Records the real name and ID number, once (then DATAEXIST). The number
/// is kept encrypted under the server secret and never logged.
#[utoipa::path(post, path = "/users/auth", tag = "ihome", request_body = IdentityBody,
    responses(
        (status = 200, description = "OK, or PARAMERR, SESSIONERR, DATAEXIST, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn set_identity(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<IdentityBody>,
) -> Result<Response, ApiError> {
    let (real_name, id_card) = input::identity(b.real_name.as_deref(), b.id_card.as_deref())?;
    let (data, _) = session::required(&s, &headers).await?;
    s.flow
        .set_identity(data.user_id, &real_name, &id_card)
        .await?;
    Ok(envelope::ok(messages::SAVED, None))
}
