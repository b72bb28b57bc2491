//! Every word a client reads, in Chinese (the default) and English: the
//! `errmsg`/`message` of each flow error, the success messages, and the
//! transport answers (404, 405, 408, 413, 403, 500). `error.rs` decides the
//! errno and status; this file only says it in words.

use std::borrow::Cow;

use crate::domain::Lang;
use crate::flow::{FlowError, ParamError, STEP_TTL, Step};
use crate::limits::Scope;

/// A message in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Msg {
    pub zh: &'static str,
    pub en: &'static str,
}

impl Msg {
    pub fn get(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

const fn msg(zh: &'static str, en: &'static str) -> Msg {
    Msg { zh, en }
}

// ---- successes -----------------------------------------------------------------

pub const OK: Msg = msg("成功", "OK");
pub const SENT: Msg = msg("发送成功", "Code sent");
pub const REGISTERED: Msg = msg("注册成功", "Registered");
pub const LOGGED_IN: Msg = msg("登录成功", "Logged in");
pub const LOGGED_OUT: Msg = msg("已退出", "Logged out");
pub const VERIFIED: Msg = msg("验证成功", "Code verified");
pub const PASSWORD_SET: Msg = msg("密码已设置", "Password set");
pub const PASSWORD_CHANGED: Msg = msg("密码已修改", "Password changed");
pub const MOBILE_CHANGED: Msg = msg("手机号已修改", "Mobile number changed");
pub const SESSIONS_ENDED: Msg = msg("会话已结束", "Sessions ended");
pub const ACCOUNT_DELETED: Msg = msg("账号已注销", "Account deleted");
pub const SAVED: Msg = msg("保存成功", "Saved");

// ---- transport answers ------------------------------------------------------------

pub const NO_ROUTE: Msg = msg("接口不存在", "No such route");
pub const METHOD_NOT_ALLOWED: Msg = msg("请求方法不允许", "Method not allowed");
pub const BODY_TOO_LARGE: Msg = msg("请求数据过大", "Request body too large");
pub const BODY_TIMED_OUT: Msg = msg("请求数据超时", "The request body did not arrive in time");
pub const CROSS_SITE: Msg = msg("跨站请求被拒绝", "Cross-site request refused");
pub const INTERNAL: Msg = msg("内部错误", "Internal error");

// ---- flow errors ------------------------------------------------------------------

/// The text a person sees for `e`. Internal details never reach it.
pub fn error_text(e: &FlowError, lang: Lang) -> Cow<'static, str> {
    let zh = lang == Lang::Zh;
    let pick = |z: &'static str, e: &'static str| Cow::Borrowed(if zh { z } else { e });
    match e {
        FlowError::Param(p) => param_text(p, zh),
        FlowError::Limited(r) => match r.scope {
            Scope::Cooldown => pick(
                "发送过于频繁，请稍后再试",
                "Please wait before requesting another code",
            ),
            Scope::DailyPerMobile => pick(
                "该手机号今日短信已达上限",
                "This number has had too many codes today",
            ),
            Scope::Budget => pick(
                "短信服务繁忙，请稍后再试",
                "SMS sending is paused, please try later",
            ),
            Scope::Login | Scope::LoginPerIp => pick(
                "登录失败次数过多，请稍后再试",
                "Too many failed logins, please try later",
            ),
            Scope::CaptchaPerIp | Scope::SmsRequestsPerIp | Scope::SentPerIp => pick(
                "请求过于频繁，请稍后再试",
                "Too many requests, please slow down",
            ),
        },
        FlowError::Store(_) | FlowError::Database(_) => pick("数据库异常", "Database error"),
        FlowError::CaptchaMissing => pick("图片验证码已过期", "The captcha has expired"),
        FlowError::CaptchaWrong => pick("图片验证码错误", "Wrong captcha answer"),
        FlowError::CodeMissing => pick("短信验证码已过期", "The SMS code has expired"),
        FlowError::CodeWrong { remaining: 0 } => pick(
            "短信验证码错误次数过多，请重新获取",
            "Too many wrong codes, please request a new one",
        ),
        FlowError::CodeWrong { .. } => pick("短信验证码错误", "Wrong SMS code"),
        FlowError::MobileTaken => pick("手机号已注册", "This mobile number is already registered"),
        FlowError::NameTaken => pick("用户名已存在", "This name is taken"),
        FlowError::IdentitySet => pick("实名信息已设置", "The real-name details are already set"),
        FlowError::SessionMissing => pick("会话不存在", "No such session"),
        FlowError::Avatars(_) => pick("头像保存失败", "The avatar could not be stored"),
        // No hint of which list or rule matched.
        FlowError::Refused(_) => pick("请求被拒绝", "Request refused"),
        FlowError::BadCredentials => pick("用户名或密码错误", "Wrong mobile number or password"),
        FlowError::UserDisabled => pick("用户已被禁用", "This account is disabled"),
        FlowError::UserMissing => pick("用户不存在", "User not found"),
        FlowError::NotLoggedIn => pick("用户未登录", "Not logged in"),
        FlowError::Sms(_) => pick("短信发送失败", "The SMS could not be sent"),
        FlowError::Busy => pick("服务器繁忙，请稍后再试", "The server is busy, please retry"),
        FlowError::StepMissing(step) => Cow::Owned(step_text(*step, zh)),
        FlowError::StepToken => pick(
            "步骤令牌缺失或错误，请使用第二步返回的 step_token",
            "The step token is missing or wrong: send the step_token from step 2",
        ),
        FlowError::Internal(_) => Cow::Borrowed(INTERNAL.get(lang)),
    }
}

fn param_text(p: &ParamError, zh: bool) -> Cow<'static, str> {
    let pick = |z: &'static str, e: &'static str| Cow::Borrowed(if zh { z } else { e });
    match p {
        ParamError::Missing(_) => pick("参数不完整", "Missing parameter"),
        ParamError::Mobile => pick("手机号格式错误", "Invalid mobile number"),
        ParamError::CaptchaId => pick("图片验证码编号无效", "Invalid captcha id"),
        ParamError::Code => pick("短信验证码格式错误", "The SMS code must be 6 digits"),
        ParamError::PasswordPolicy { min, max } => Cow::Owned(if zh {
            format!("密码长度须为{min}到{max}个字符，且不含控制字符")
        } else {
            format!("The password must be {min} to {max} characters, without control characters")
        }),
        ParamError::PasswordMismatch => pick("两次密码不一致", "The passwords do not match"),
        ParamError::Body => pick("请求数据格式错误", "Malformed request body"),
        ParamError::Nickname => pick(
            "昵称须为1到32个字符，且不含控制字符",
            "The nickname must be 1 to 32 characters, without control characters",
        ),
        ParamError::Name => pick(
            "名称须为1到32个字符，且不含控制字符",
            "The name must be 1 to 32 characters, without control characters",
        ),
        ParamError::Purpose => pick(
            "验证码用途无效（register、login、reset、change_mobile、confirm）",
            "Unknown purpose (register, login, reset, change_mobile, confirm)",
        ),
        ParamError::IdCard => pick("身份证号码无效", "Invalid ID card number"),
        ParamError::SessionId => pick("会话编号无效", "Invalid session id"),
        ParamError::Proof => pick(
            "请提供密码或确认验证码",
            "Give your password or a confirmation code",
        ),
        ParamError::ListEntry(why) => Cow::Owned(if zh {
            format!("名单条目无效：{why}")
        } else {
            format!("Invalid list entry: {why}")
        }),
        ParamError::Image => pick(
            "头像须为不超过上限的 JPEG、PNG、WebP 或 GIF 图片",
            "The avatar must be a JPEG, PNG, WebP or GIF image within the size limit",
        ),
    }
}

fn step_text(step: Step, zh: bool) -> String {
    let secs = STEP_TTL.as_secs();
    match (step, zh) {
        (Step::Verified, true) => format!("请先完成短信验证（第二步），验证在{secs}秒内有效"),
        (Step::Verified, false) => {
            format!("Verify the SMS code first (step 2); it holds for {secs} seconds")
        }
        (Step::Password, true) => format!("请先设置密码（第三步），密码在{secs}秒内有效"),
        (Step::Password, false) => {
            format!("Set the password first (step 3); it holds for {secs} seconds")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_messages_state_the_real_time_limit() {
        let text = error_text(&FlowError::StepMissing(Step::Verified), Lang::En);
        assert!(text.contains(&STEP_TTL.as_secs().to_string()), "{text}");
        let text = error_text(&FlowError::StepMissing(Step::Password), Lang::Zh);
        assert_eq!(text, "请先设置密码（第三步），密码在120秒内有效");
    }

    #[test]
    fn internal_details_never_reach_the_text() {
        let e = FlowError::Internal("secret detail".into());
        assert!(!error_text(&e, Lang::En).contains("secret"));
    }
}
