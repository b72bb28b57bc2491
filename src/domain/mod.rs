//! Newtypes that raw client input becomes at the edge: past a handler's first
//! lines nothing handles unparsed strings.

mod errno;
mod id_card;
mod mobile;
mod purpose;

pub use errno::Errno;
pub use id_card::IdCard;
pub use mobile::{Mobile, MobileError, MobilePolicy, mask};
pub use purpose::Purpose;

use std::fmt;

/// Language of `errmsg` and of messages shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// The id a client picks for its captcha: 1–64 characters of `[A-Za-z0-9_-]`
/// (UUIDs, with or without dashes, fit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaptchaId(String);

impl CaptchaId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A six-digit SMS code as typed by a person.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

impl SmsCode {
    pub const LEN: usize = 6;

    /// Accepts exactly six ASCII digits, ignoring surrounding spaces.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == Self::LEN && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode(******)")
    }
}

/// What a person typed as the captcha answer. Never logged.
#[derive(Clone)]
pub struct CaptchaAnswer(String);

impl CaptchaAnswer {
    /// Longest answer kept; anything longer cannot match a captcha anyway.
    const MAX_LEN: usize = 32;

    /// Any input is an answer to compare (and burns the captcha); only a
    /// missing one is a parameter error, decided by the caller.
    pub fn new(raw: &str) -> Self {
        Self(raw.trim().chars().take(Self::MAX_LEN).collect())
    }

    /// The answer in the form it is compared in: upper case, so the comparison
    /// ignores case as the originals' did.
    pub fn normalised(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl fmt::Debug for CaptchaAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptchaAnswer(****)")
    }
}

/// A password that meets the policy. Never logged.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password length is outside the policy")]
    Length,
    #[error("password contains control characters")]
    Control,
}

/// Password length bounds, counted in characters.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_len: usize,
    pub max_len: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            max_len: 128,
        }
    }
}

impl Password {
    pub fn parse(raw: &str, policy: &PasswordPolicy) -> Result<Self, PasswordError> {
        let len = raw.chars().count();
        if len < policy.min_len || len > policy.max_len {
            return Err(PasswordError::Length);
        }
        if raw.chars().any(char::is_control) {
            return Err(PasswordError::Control);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A login attempt is checked against the stored hash even when it is
    /// shorter than today's policy allows (older accounts may be); only what
    /// no account can have is refused up front.
    pub fn for_login(raw: &str, policy: &PasswordPolicy) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= policy.max_len
            && !raw.chars().any(char::is_control);
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(********)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn captcha_ids_follow_the_documented_alphabet() {
        assert!(CaptchaId::parse("0b6e6a4c-2f1d-4a4f-9d7b-1f5b3e2a9c11").is_some());
        assert!(CaptchaId::parse(&"a".repeat(64)).is_some());
        assert!(CaptchaId::parse(&"a".repeat(65)).is_none());
        assert!(CaptchaId::parse("").is_none());
        assert!(CaptchaId::parse("a/b").is_none());
        assert!(CaptchaId::parse("a b").is_none());
    }

    #[test]
    fn sms_codes_are_six_ascii_digits() {
        assert!(SmsCode::parse("012345").is_some());
        assert!(SmsCode::parse(" 012345 ").is_some());
        assert!(SmsCode::parse("12345").is_none());
        assert!(SmsCode::parse("１２３４５６").is_none());
        assert!(SmsCode::parse("12345a").is_none());
    }

    #[test]
    fn password_policy_counts_characters_and_refuses_control_characters() {
        let p = PasswordPolicy::default();
        assert!(Password::parse("密码密码密码密码", &p).is_ok());
        assert_eq!(
            Password::parse("short", &p).err(),
            Some(PasswordError::Length)
        );
        assert_eq!(
            Password::parse(&"x".repeat(129), &p).err(),
            Some(PasswordError::Length)
        );
        assert_eq!(
            Password::parse("long\u{0}enough", &p).err(),
            Some(PasswordError::Control)
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let p = Password::parse("hunter2hunter2", &PasswordPolicy::default()).expect("valid");
        assert!(!format!("{p:?}").contains("hunter2"));
        let c = SmsCode::parse("123456").expect("valid");
        assert!(!format!("{c:?}").contains("123456"));
    }

    proptest! {
        #[test]
        fn captcha_id_parse_accepts_exactly_the_alphabet(s in "[A-Za-z0-9_-]{1,64}") {
            prop_assert!(CaptchaId::parse(&s).is_some());
        }
    }
}
