//! The flow's inputs, parsed once at the edge. A route set collects its raw
//! fields (wherever its wire keeps them) into one of the `…Fields` structs;
//! [`InputRules`] turns those into typed inputs, or into the PARAMERR that
//! names what was wrong. Past this module nothing sees a raw string.

use crate::domain::{
    CaptchaAnswer, CaptchaId, Mobile, MobilePolicy, Password, PasswordPolicy, SmsCode,
};

use super::error::{FlowError, ParamError};

/// A captcha id and the answer typed for it.
#[derive(Debug)]
pub struct CaptchaProof {
    pub id: CaptchaId,
    pub answer: CaptchaAnswer,
}

/// A request for an SMS code, with the captcha that pays for it (the
/// four-step flow may go without).
#[derive(Debug)]
pub struct CodeRequest {
    pub mobile: Mobile,
    pub captcha: Option<CaptchaProof>,
}

/// A registration with an SMS code.
#[derive(Debug)]
pub struct Registration {
    pub mobile: Mobile,
    pub code: SmsCode,
    pub password: Password,
}

/// A login with a password.
#[derive(Debug)]
pub struct Credentials {
    pub mobile: Mobile,
    pub password: Password,
}

/// The raw fields of a captcha-checked code request.
#[derive(Debug, Clone, Copy)]
pub struct CodeRequestFields<'a> {
    pub mobile: Option<&'a str>,
    pub image_code: Option<&'a str>,
    pub image_code_id: Option<&'a str>,
    /// What this route set calls the captcha id, for the error message.
    pub id_field: &'static str,
}

/// The raw fields of a registration.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationFields<'a> {
    pub mobile: Option<&'a str>,
    pub sms_code: Option<&'a str>,
    pub password: Option<&'a str>,
    /// The repeated password, when the route set has one.
    pub password2: Option<&'a str>,
}

/// The raw fields of a password login.
#[derive(Debug, Clone, Copy)]
pub struct CredentialFields<'a> {
    pub mobile: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// The configured policies that decide what a valid input is.
#[derive(Debug, Clone)]
pub struct InputRules {
    pub mobile: MobilePolicy,
    pub password: PasswordPolicy,
}

impl InputRules {
    pub fn code_request(&self, f: CodeRequestFields<'_>) -> Result<CodeRequest, FlowError> {
        let answer = captcha_answer(f.image_code)?;
        let id = captcha_id(f.image_code_id, f.id_field)?;
        Ok(CodeRequest {
            mobile: self.mobile(f.mobile)?,
            captcha: Some(CaptchaProof { id, answer }),
        })
    }

    pub fn registration(&self, f: RegistrationFields<'_>) -> Result<Registration, FlowError> {
        Ok(Registration {
            mobile: self.mobile(f.mobile)?,
            code: sms_code(f.sms_code)?,
            password: self.new_password(f.password, f.password2)?,
        })
    }

    pub fn credentials(&self, f: CredentialFields<'_>) -> Result<Credentials, FlowError> {
        let mobile = self.mobile(f.mobile)?;
        let raw = present(f.password, "password")?;
        let password =
            Password::for_login(raw, &self.password).ok_or(ParamError::Missing("password"))?;
        Ok(Credentials { mobile, password })
    }

    pub fn mobile(&self, raw: Option<&str>) -> Result<Mobile, FlowError> {
        Mobile::parse(present(raw, "mobile")?, &self.mobile)
            .map_err(|_| FlowError::Param(ParamError::Mobile))
    }

    /// A password being set: within the policy, and equal to `confirm` when
    /// the route set asks for it twice.
    pub fn new_password(
        &self,
        raw: Option<&str>,
        confirm: Option<&str>,
    ) -> Result<Password, FlowError> {
        let raw = present(raw, "password")?;
        if confirm.is_some_and(|c| c != raw) {
            return Err(ParamError::PasswordMismatch.into());
        }
        let policy = self.password;
        Password::parse(raw, &policy).map_err(|_| {
            FlowError::Param(ParamError::PasswordPolicy {
                min: policy.min_len,
                max: policy.max_len,
            })
        })
    }
}

/// A required field: absent and blank are the same.
pub fn present<'a>(raw: Option<&'a str>, field: &'static str) -> Result<&'a str, FlowError> {
    match raw {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ParamError::Missing(field).into()),
    }
}

pub fn captcha_id(raw: Option<&str>, field: &'static str) -> Result<CaptchaId, FlowError> {
    CaptchaId::parse(present(raw, field)?).ok_or(FlowError::Param(ParamError::CaptchaId))
}

pub fn captcha_answer(raw: Option<&str>) -> Result<CaptchaAnswer, FlowError> {
    Ok(CaptchaAnswer::new(present(raw, "image_code")?))
}

pub fn sms_code(raw: Option<&str>) -> Result<SmsCode, FlowError> {
    SmsCode::parse(present(raw, "sms_code")?).ok_or(FlowError::Param(ParamError::Code))
}

/// An optional display name: 1–32 characters, no control characters.
pub fn nickname(raw: Option<&str>) -> Result<Option<String>, FlowError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > 32 || raw.chars().any(char::is_control) {
        return Err(ParamError::Nickname.into());
    }
    Ok(Some(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> InputRules {
        InputRules {
            mobile: MobilePolicy::default(),
            password: PasswordPolicy::default(),
        }
    }

    #[test]
    fn fields_are_checked_in_the_order_the_wire_documents() {
        let err = rules()
            .code_request(CodeRequestFields {
                mobile: Some("not a number"),
                image_code: None,
                image_code_id: Some("bad id!"),
                id_field: "uuid",
            })
            .expect_err("no answer");
        assert!(matches!(
            err,
            FlowError::Param(ParamError::Missing("image_code"))
        ));
        let err = rules()
            .code_request(CodeRequestFields {
                mobile: Some("not a number"),
                image_code: Some("ABCD"),
                image_code_id: None,
                id_field: "uuid",
            })
            .expect_err("no id");
        assert!(matches!(err, FlowError::Param(ParamError::Missing("uuid"))));
    }

    #[test]
    fn a_second_password_must_match() {
        let r = rules().registration(RegistrationFields {
            mobile: Some("13812345678"),
            sms_code: Some("123456"),
            password: Some("a good password"),
            password2: Some("another password"),
        });
        assert!(matches!(
            r,
            Err(FlowError::Param(ParamError::PasswordMismatch))
        ));
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(
            nickname(Some("  小明 ")).expect("ok").as_deref(),
            Some("小明")
        );
        assert_eq!(nickname(Some("   ")).expect("blank is none"), None);
        assert!(nickname(Some(&"x".repeat(33))).is_err());
        assert!(nickname(Some("a\u{7}b")).is_err());
    }
}
