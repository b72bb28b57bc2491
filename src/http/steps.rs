//! Route set `steps`: the four-step mobile-app registration, login with a
//! token, and the `{"code": 1|0, "message"}` envelope (SPEC §4). Each step is
//! one call into the flow; the order is enforced there.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::middleware;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client_address::{Client, Origin};
use super::docs::{StepsAnswers, StepsReply};
use super::envelope::{data, steps_ok};
use super::error::{self, ApiError, Wire};
use super::extract::JsonBody;
use super::session;
use super::wire::{LoginBody, Profile};
use super::{AppState, messages};
use crate::domain::Purpose;
use crate::flow::input::{self, present};
use crate::flow::{CodeRequest, CodeRequestFields, FlowError, StepsClient};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(step1))
        .routes(routes!(step2))
        .routes(routes!(step3))
        .routes(routes!(step4))
        .routes(routes!(login))
        .routes(routes!(user))
        .routes(routes!(logout))
        // Every answer of this set, errors included, is `{code, message}`.
        .layer(middleware::from_fn(error::steps_wire))
}

#[derive(Deserialize, ToSchema)]
struct Step1 {
    phone_number: Option<String>,
    image_code: Option<String>,
    image_code_id: Option<String>,
}

/// Step 1: send the SMS code (a captcha too when `compat.steps_require_captcha`).
#[utoipa::path(post, path = "/register-step-1", tag = "steps", request_body = Step1,
    responses(StepsAnswers))]
async fn step1(
    State(s): State<AppState>,
    Client(client): Client,
    JsonBody(b): JsonBody<Step1>,
) -> Result<Response, ApiError> {
    let request = if s.steps_require_captcha {
        s.flow.inputs().code_request(CodeRequestFields {
            mobile: b.phone_number.as_deref(),
            purpose: None,
            image_code: b.image_code.as_deref(),
            image_code_id: b.image_code_id.as_deref(),
            id_field: "image_code_id",
        })?
    } else {
        CodeRequest {
            mobile: Some(s.flow.inputs().mobile(b.phone_number.as_deref())?),
            purpose: Purpose::Register,
            captcha: None,
        }
    };
    s.flow
        .request_code(&request, None, &client, Wire::current().lang)
        .await?;
    Ok(steps_ok(messages::SENT, None))
}

#[derive(Deserialize, ToSchema)]
struct Step2 {
    phone_number: Option<String>,
    validate_number: Option<String>,
}

/// Step 2: check the code; the verification holds 120 s for the holder of
/// the returned `step_token` (or, without one, for this client address).
#[utoipa::path(post, path = "/register-step-2", tag = "steps", request_body = Step2,
    responses(StepsAnswers))]
async fn step2(
    State(s): State<AppState>,
    Client(client): Client,
    JsonBody(b): JsonBody<Step2>,
) -> Result<Response, ApiError> {
    let mobile = s.flow.inputs().mobile(b.phone_number.as_deref())?;
    let code = input::sms_code(b.validate_number.as_deref())?;
    let token = s.flow.steps_verify(&mobile, &code, &client).await?;
    Ok(steps_ok(
        messages::VERIFIED,
        Some(("step_token", Value::String(token))),
    ))
}

#[derive(Deserialize, ToSchema)]
struct Step3 {
    phone_number: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
    /// Step 2's `step_token` (or header `Step-Token`).
    step_token: Option<String>,
}

/// Step 3: the password (kept only as its hash, 120 s).
#[utoipa::path(post, path = "/register-step-3", tag = "steps", request_body = Step3,
    responses(StepsAnswers))]
async fn step3(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<Step3>,
) -> Result<Response, ApiError> {
    let by = StepsClient::new(&client, step_token(b.step_token.as_deref(), &headers));
    let mobile = s.flow.inputs().mobile(b.phone_number.as_deref())?;
    let confirm = present(b.password_confirm.as_deref(), "password_confirm")?;
    let password = s
        .flow
        .inputs()
        .new_password(b.password.as_deref(), Some(confirm))?;
    s.flow.steps_set_password(&mobile, &password, &by).await?;
    Ok(steps_ok(messages::PASSWORD_SET, None))
}

#[derive(Deserialize, ToSchema)]
struct Step4 {
    phone_number: Option<String>,
    nickname: Option<String>,
    /// Step 2's `step_token` (or header `Step-Token`).
    step_token: Option<String>,
}

/// Step 4: create the user.
#[utoipa::path(post, path = "/register-step-4", tag = "steps", request_body = Step4,
    responses(StepsAnswers))]
async fn step4(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<Step4>,
) -> Result<Response, ApiError> {
    let by = StepsClient::new(&client, step_token(b.step_token.as_deref(), &headers));
    let mobile = s.flow.inputs().mobile(b.phone_number.as_deref())?;
    let nickname = input::nickname(b.nickname.as_deref())?;
    let user = s.flow.steps_finish(&mobile, nickname, &by).await?;
    Ok(steps_ok(
        messages::REGISTERED,
        Some(("data", data(&Profile::new(&user, s.flow.avatar_url(&user))))),
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = StepsLoginBody)]
struct StepsLoginBody {
    phone_number: Option<String>,
    password: Option<String>,
}

/// Login; the answer carries the token that `/user` and `/logout` take in
/// the `token` header.
#[utoipa::path(post, path = "/login", tag = "steps", request_body = StepsLoginBody,
    responses(StepsAnswers))]
async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    Origin(origin): Origin,
    JsonBody(b): JsonBody<StepsLoginBody>,
) -> Result<Response, ApiError> {
    let credentials = LoginBody {
        mobile: b.phone_number,
        password: b.password,
    };
    let credentials = s.flow.inputs().credentials(credentials.fields())?;
    let user = s.flow.login(&credentials, &client).await?;
    let token = s.flow.start_session(&user, &origin).await?;
    Ok(steps_ok(
        messages::LOGGED_IN,
        Some(("token", Value::String(token))),
    ))
}

/// Step 2's token, from the body or the `Step-Token` header; empty is none.
fn step_token<'a>(body: Option<&'a str>, headers: &'a HeaderMap) -> Option<&'a str> {
    body.or_else(|| headers.get("step-token").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The user of the `token` header.
#[utoipa::path(get, path = "/user", tag = "steps",
    params(("token" = Option<String>, Header, description = "The token from POST /login")),
    responses((status = 200, description = "code 1 with the user, or code 0", body = StepsReply)))]
async fn user(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = session::token(&headers).ok_or(FlowError::NotLoggedIn)?;
    let session = s.flow.session(id).await?.ok_or(FlowError::NotLoggedIn)?;
    let user = s.flow.user(session.user_id).await?;
    Ok(steps_ok(
        messages::OK,
        Some(("data", data(&Profile::new(&user, s.flow.avatar_url(&user))))),
    ))
}

/// Ends the session of the `token` header.
#[utoipa::path(get, path = "/logout", tag = "steps",
    params(("token" = Option<String>, Header, description = "The token from POST /login")),
    responses((status = 200, description = "code 1", body = StepsReply)))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session::token(&headers) {
        s.flow.end_session(id).await?;
    }
    Ok(steps_ok(messages::LOGGED_OUT, None))
}
