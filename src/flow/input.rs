//! The flow's inputs, parsed once at the edge. A route set collects its raw
//! fields (wherever its wire keeps them) into one of the `…Fields` structs;
//! [`InputRules`] turns those into typed inputs, or into the PARAMERR that
//! names what was wrong. Past this module nothing sees a raw string.

use crate::domain::{
    CaptchaAnswer, CaptchaId, IdCard, Mobile, MobilePolicy, Password, PasswordPolicy, Purpose,
    SmsCode,
};

use super::error::{FlowError, ParamError};

/// A captcha id and the answer typed for it.
#[derive(Debug)]
pub struct CaptchaProof {
    pub id: CaptchaId,
    pub answer: CaptchaAnswer,
}

/// A request for an SMS code of a purpose, with the captcha that pays for
/// it (the four-step flow may go without). `mobile` is `None` only for
/// `confirm`, whose code goes to the logged-in user's own number.
#[derive(Debug)]
pub struct CodeRequest {
    pub mobile: Option<Mobile>,
    pub purpose: Purpose,
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
    /// `register` where the route has no purpose field (SPEC §3, §4).
    pub purpose: Option<&'a str>,
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
        let purpose = match f.purpose {
            None => Purpose::Register,
            Some(raw) => {
                Purpose::parse(present(Some(raw), "purpose")?).ok_or(ParamError::Purpose)?
            }
        };
        let answer = captcha_answer(f.image_code)?;
        let id = captcha_id(f.image_code_id, f.id_field)?;
        // `confirm` goes to the user's own number: a number sent along is
        // not used (nor checked).
        let mobile = match purpose {
            Purpose::Confirm => None,
            _ => Some(self.mobile(f.mobile)?),
        };
        Ok(CodeRequest {
            mobile,
            purpose,
            captcha: Some(CaptchaProof { id, answer }),
        })
    }

    /// A sign-in with a `login` code.
    pub fn code_login(
        &self,
        mobile: Option<&str>,
        code: Option<&str>,
    ) -> Result<(Mobile, SmsCode), FlowError> {
        Ok((self.mobile(mobile)?, sms_code(code)?))
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
        let password = self.login_password(f.password, "password")?;
        Ok(Credentials { mobile, password })
    }

    /// A password being checked (not set): any length the policy could
    /// have allowed.
    pub fn login_password(
        &self,
        raw: Option<&str>,
        field: &'static str,
    ) -> Result<Password, FlowError> {
        let raw = present(raw, field)?;
        Password::for_login(raw, &self.password).ok_or(ParamError::Missing(field).into())
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
    if raw.chars().count() > 32 || raw.chars().any(is_unprintable) {
        return Err(ParamError::Nickname.into());
    }
    Ok(Some(raw.to_owned()))
}

/// A user name being set (SPEC §9): like a nickname, but required.
pub fn user_name(raw: Option<&str>) -> Result<String, FlowError> {
    printable_name(present(raw, "name")?)
}

/// 1–32 characters after trimming, none of them unprintable.
fn printable_name(raw: &str) -> Result<String, FlowError> {
    nickname(Some(raw))
        .ok()
        .flatten()
        .ok_or(FlowError::Param(ParamError::Name))
}

/// A real name and an ID number (SPEC §9).
pub fn identity(
    real_name: Option<&str>,
    id_card: Option<&str>,
) -> Result<(String, IdCard), FlowError> {
    let name = printable_name(present(real_name, "real_name")?)?;
    let id = IdCard::parse(present(id_card, "id_card")?).ok_or(ParamError::IdCard)?;
    Ok((name, id))
}

/// Control characters, and the invisible formatting ones (bidi overrides,
/// zero-width) that make one name look like another.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
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
                purpose: None,
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
                purpose: None,
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
