//! Route set `steps`: the four-step mobile-app registration, login with a
//! token, and the `{"code": 1|0, "message"}` envelope (SPEC §4). Each step is
//! one call into the flow; the order is enforced there.

use axum::extract::{FromRequest, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::StepsReply;
use super::envelope::{self, Msg};
use super::extract::{Client, JsonBody, lang_of};
use super::ihome::profile;
use super::{AppState, actions};
use crate::domain::Lang;
use crate::flow::{self, FlowError, ParamError, StepsClient};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(step1))
        .routes(routes!(step2))
        .routes(routes!(step3))
        .routes(routes!(step4))
        .routes(routes!(login))
        .routes(routes!(user))
        .routes(routes!(logout))
}

/// A JSON body whose rejection is this route set's envelope.
struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(req.headers());
        match JsonBody::<T>::from_request(req, state).await {
            Ok(JsonBody(b)) => Ok(Body(b)),
            // Transport answers (413, 408) keep their status.
            Err(resp) if matches!(resp.status().as_u16(), 408 | 413) => Err(resp),
            Err(_) => Err(envelope::steps_error(
                lang,
                &FlowError::Param(ParamError::Body),
            )),
        }
    }
}

/// A step's success: its message and, for some, one extra field.
type Done = (Msg, Option<(&'static str, Value)>);

fn reply(lang: Lang, result: Result<Done, FlowError>) -> Response {
    match result {
        Ok((msg, extra)) => envelope::steps_ok(lang, msg, extra),
        Err(e) => envelope::steps_error(lang, &e),
    }
}

const VERIFIED: Msg = Msg {
    zh: "验证成功",
    en: "Code verified",
};
const PASSWORD_SET: Msg = Msg {
    zh: "密码已设置",
    en: "Password set",
};
const LOGGED_OUT: Msg = Msg {
    zh: "已退出",
    en: "Logged out",
};

#[derive(Deserialize, ToSchema)]
struct Step1 {
    phone_number: Option<String>,
    image_code: Option<String>,
    image_code_id: Option<String>,
}

/// Step 1: send the SMS code (a captcha too when `compat.steps_require_captcha`).
#[utoipa::path(post, path = "/register-step-1", tag = "steps", request_body = Step1,
    responses(
        (status = 200, description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)", body = StepsReply),
        (status = 403, description = "Cross-site request refused"),
        (status = 413, description = "Body over 16 KiB"),
    ))]
async fn step1(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    Body(b): Body<Step1>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(b.phone_number.as_deref())?;
        let captcha = if s.steps_require_captcha {
            let answer = flow::parse_captcha_answer(b.image_code.as_deref())?;
            let id = flow::parse_captcha_id(b.image_code_id.as_deref(), "image_code_id")?;
            Some((id, answer))
        } else {
            None
        };
        let captcha = captcha.as_ref().map(|(id, a)| (id, a));
        s.flow.request_code(&mobile, captcha, &client, lang).await?;
        Ok((actions::SENT, None))
    }
    .await;
    reply(lang, result)
}

#[derive(Deserialize, ToSchema)]
struct Step2 {
    phone_number: Option<String>,
    validate_number: Option<String>,
}

/// Step 2: check the code; the verification holds 120 s for the holder of
/// the returned `step_token` (or, without one, for this client address).
#[utoipa::path(post, path = "/register-step-2", tag = "steps", request_body = Step2,
    responses(
        (status = 200, description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)", body = StepsReply),
        (status = 403, description = "Cross-site request refused"),
        (status = 413, description = "Body over 16 KiB"),
    ))]
async fn step2(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    Body(b): Body<Step2>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(b.phone_number.as_deref())?;
        let code = flow::parse_sms_code(b.validate_number.as_deref())?;
        let token = s.flow.steps_verify(&mobile, &code, &client).await?;
        Ok((VERIFIED, Some(("step_token", Value::String(token)))))
    }
    .await;
    reply(lang, result)
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
    responses(
        (status = 200, description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)", body = StepsReply),
        (status = 403, description = "Cross-site request refused"),
        (status = 413, description = "Body over 16 KiB"),
    ))]
async fn step3(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    headers: HeaderMap,
    Body(b): Body<Step3>,
) -> Response {
    let by = StepsClient {
        client: &client,
        token: step_token(b.step_token.as_deref(), &headers),
    };
    let result = async {
        let mobile = s.flow.parse_mobile(b.phone_number.as_deref())?;
        let confirm = flow::present(b.password_confirm.as_deref(), "password_confirm")?;
        let password = s
            .flow
            .parse_new_password(b.password.as_deref(), Some(confirm))?;
        s.flow.steps_set_password(&mobile, &password, &by).await?;
        Ok((PASSWORD_SET, None))
    }
    .await;
    reply(lang, result)
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
    responses(
        (status = 200, description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)", body = StepsReply),
        (status = 403, description = "Cross-site request refused"),
        (status = 413, description = "Body over 16 KiB"),
    ))]
async fn step4(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    headers: HeaderMap,
    Body(b): Body<Step4>,
) -> Response {
    let by = StepsClient {
        client: &client,
        token: step_token(b.step_token.as_deref(), &headers),
    };
    let result = async {
        let mobile = s.flow.parse_mobile(b.phone_number.as_deref())?;
        let nickname = flow::parse_nickname(b.nickname.as_deref())?;
        let user = s.flow.steps_finish(&mobile, nickname, &by).await?;
        Ok((actions::REGISTERED, Some(("data", profile(&user)))))
    }
    .await;
    reply(lang, result)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = StepsLoginBody)]
struct LoginBody {
    phone_number: Option<String>,
    password: Option<String>,
}

/// Login; the answer carries the token that `/user` and `/logout` take in
/// the `token` header.
#[utoipa::path(post, path = "/login", tag = "steps", request_body = LoginBody,
    responses(
        (status = 200, description = "code 1 on success; code 0 with the reason otherwise (Retry-After on limits)", body = StepsReply),
        (status = 403, description = "Cross-site request refused"),
        (status = 413, description = "Body over 16 KiB"),
    ))]
async fn login(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    Body(b): Body<LoginBody>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(b.phone_number.as_deref())?;
        let password = s.flow.parse_login_password(b.password.as_deref())?;
        let user = s.flow.login(&mobile, &password, &client).await?;
        let token = s.flow.start_session(&user).await?;
        Ok((actions::LOGGED_IN, Some(("token", Value::String(token)))))
    }
    .await;
    reply(lang, result)
}

/// Step 2's token, from the body or the `Step-Token` header; empty is none.
fn step_token<'a>(body: Option<&'a str>, headers: &'a HeaderMap) -> Option<&'a str> {
    body.or_else(|| headers.get("step-token").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The user of the `token` header.
#[utoipa::path(get, path = "/user", tag = "steps",
    params(("token" = Option<String>, Header, description = "The token from POST /login")),
    responses((status = 200, description = "code 1 with the user, or code 0", body = StepsReply)))]
async fn user(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    let result = async {
        let id = token(&headers).ok_or(FlowError::NotLoggedIn)?;
        let session = s.flow.session(id).await?.ok_or(FlowError::NotLoggedIn)?;
        let user = s.flow.user(session.user_id).await?;
        Ok((Msg::OK, Some(("data", profile(&user)))))
    }
    .await;
    reply(lang, result)
}

/// Ends the session of the `token` header.
#[utoipa::path(get, path = "/logout", tag = "steps",
    params(("token" = Option<String>, Header, description = "The token from POST /login")),
    responses((status = 200, description = "code 1", body = StepsReply)))]
async fn logout(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    let result = async {
        if let Some(id) = token(&headers) {
            s.flow.end_session(id).await?;
        }
        Ok((LOGGED_OUT, None))
    }
    .await;
    reply(lang, result)
}
