//! What an SMS code is for (SPEC §9). The purpose is part of the code's MAC
//! and of its store key, so a code sent for one purpose never verifies for
//! another.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Registration (`GET /sms_codes/{mobile}` always sends this one).
    Register,
    /// Sign in with a code (`POST /sessions/sms`).
    Login,
    /// Password reset (`POST /password/reset`).
    Reset,
    /// Sent to the new number of a mobile change.
    ChangeMobile,
    /// Sent to the logged-in user's own number, for sensitive actions.
    Confirm,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Register,
        Purpose::Login,
        Purpose::Reset,
        Purpose::ChangeMobile,
        Purpose::Confirm,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(raw.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Login => "login",
            Purpose::Reset => "reset",
            Purpose::ChangeMobile => "change_mobile",
            Purpose::Confirm => "confirm",
        }
    }

    /// Sending it needs a logged-in user.
    pub fn needs_session(self) -> bool {
        matches!(self, Purpose::ChangeMobile | Purpose::Confirm)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_parses_from_its_name_and_nothing_else_does() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::parse(" LOGIN "), Some(Purpose::Login));
        assert_eq!(Purpose::parse("changemobile"), None);
        assert_eq!(Purpose::parse(""), None);
    }
}
