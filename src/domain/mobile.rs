//! A mobile number, parsed once at the edge and carried in canonical E.164 form.

use std::fmt;

use phonenumber::{Mode, Type, country, metadata::DATABASE};

/// Longest raw input worth handing to the parser; real numbers with spaces and
/// an international prefix stay well under this.
const MAX_RAW_LEN: usize = 32;

/// A valid mobile number of an allowed region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mobile {
    e164: String,
    region: country::Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("the mobile number is malformed")]
    Malformed,
    #[error("the number is not a valid mobile number")]
    NotMobile,
    #[error("numbers of this region are not accepted")]
    RegionRefused,
}

/// Which regions are accepted. CN is the default region for numbers written
/// without a country code and is always accepted.
#[derive(Debug, Clone)]
pub struct MobilePolicy {
    allowed: Vec<country::Id>,
}

impl Default for MobilePolicy {
    fn default() -> Self {
        Self {
            allowed: vec![country::Id::CN],
        }
    }
}

impl MobilePolicy {
    /// Builds the policy from region codes such as `"HK"`; CN is always added.
    pub fn new<S: AsRef<str>>(regions: &[S]) -> Result<Self, String> {
        let mut allowed = vec![country::Id::CN];
        for r in regions {
            let code = r.as_ref().trim().to_ascii_uppercase();
            let id: country::Id = code
                .parse()
                .map_err(|_| format!("unknown region code {code:?}"))?;
            if !allowed.contains(&id) {
                allowed.push(id);
            }
        }
        Ok(Self { allowed })
    }
}

impl Mobile {
    /// Parses what a client sent. Only ASCII digits, `+`, spaces, `-`, `.` and
    /// parentheses are accepted: libphonenumber would also read full-width and
    /// other Unicode digits, but no honest client sends them and they make
    /// look-alike numbers possible.
    pub fn parse(raw: &str, policy: &MobilePolicy) -> Result<Self, MobileError> {
        let raw = raw.trim();
        if raw.is_empty()
            || raw.len() > MAX_RAW_LEN
            || !raw
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+ -.()".contains(&b))
        {
            return Err(MobileError::Malformed);
        }
        let number =
            phonenumber::parse(Some(country::Id::CN), raw).map_err(|_| MobileError::Malformed)?;
        if number.extension().is_some() || !number.is_valid_with(&DATABASE) {
            return Err(MobileError::NotMobile);
        }
        if !matches!(
            number.number_type(&DATABASE),
            Type::Mobile | Type::FixedLineOrMobile
        ) {
            return Err(MobileError::NotMobile);
        }
        let region = number
            .metadata(&DATABASE)
            .and_then(|m| m.id().parse::<country::Id>().ok())
            .ok_or(MobileError::NotMobile)?;
        if !policy.allowed.contains(&region) {
            return Err(MobileError::RegionRefused);
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        Ok(Self { e164, region })
    }

    /// Rebuilds a number read back from our own storage.
    pub fn from_e164(e164: &str) -> Result<Self, MobileError> {
        let number = phonenumber::parse(None, e164).map_err(|_| MobileError::Malformed)?;
        let region = number
            .metadata(&DATABASE)
            .and_then(|m| m.id().parse::<country::Id>().ok())
            .ok_or(MobileError::NotMobile)?;
        Ok(Self {
            e164: number.format().mode(Mode::E164).to_string(),
            region,
        })
    }

    /// Canonical form, used for storage and store keys.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// What clients see: the national number for CN, E.164 otherwise.
    pub fn display(&self) -> String {
        match self.region {
            country::Id::CN => self.e164.trim_start_matches("+86").to_owned(),
            _ => self.e164.clone(),
        }
    }

    /// The region as ISO 3166 alpha-2: `CN`.
    pub fn country(&self) -> &str {
        self.region.as_ref()
    }

    /// The anti-pumping prefix (SPEC §10): the E.164 digits without the
    /// last four, `861381234` for `+8613812345678`.
    pub fn pumping_prefix(&self) -> &str {
        let digits = self.e164.trim_start_matches('+');
        &digits[..digits.len().saturating_sub(4)]
    }

    /// The form allowed in logs: `138****5678`.
    pub fn masked(&self) -> String {
        mask(&self.display())
    }
}

/// Keeps the first three and last four characters of a number and hides the rest.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// `Display` masks, so a number dropped into a log line by mistake stays masked.
impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cn(raw: &str) -> Result<Mobile, MobileError> {
        Mobile::parse(raw, &MobilePolicy::default())
    }

    #[test]
    fn national_international_and_00_prefix_give_one_number() {
        let a = cn("13812345678").expect("national");
        let b = cn("+86 138 1234 5678").expect("international");
        let c = cn("008613812345678").expect("00 prefix");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.e164(), "+8613812345678");
        assert_eq!(a.display(), "13812345678");
        assert_eq!(a.masked(), "138****5678");
        assert_eq!(a.to_string(), "138****5678");
    }

    #[test]
    fn newer_cn_mobile_ranges_are_accepted() {
        for n in [
            "17612345678",
            "19912345678",
            "16612345678",
            "19212345678",
            "14712345678",
        ] {
            assert!(cn(n).is_ok(), "{n} should be a valid CN mobile");
        }
    }

    #[test]
    fn landlines_short_numbers_and_junk_are_refused() {
        assert_eq!(cn("01012345678"), Err(MobileError::NotMobile));
        for bad in [
            "",
            "1381234567",
            "138123456789",
            "abc",
            "1381234567８",
            "138\u{0}12345678",
        ] {
            assert!(cn(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn full_width_digits_are_malformed() {
        assert_eq!(cn("１３８１２３４５６７８"), Err(MobileError::Malformed));
    }

    #[test]
    fn other_regions_need_to_be_allowed() {
        assert_eq!(cn("+85291234567"), Err(MobileError::RegionRefused));
        let hk = MobilePolicy::new(&["hk"]).expect("policy");
        let m = Mobile::parse("+852 9123 4567", &hk).expect("HK mobile");
        assert_eq!(m.display(), "+85291234567");
    }

    #[test]
    fn round_trips_through_storage_form() {
        let a = cn("13912345678").expect("valid");
        assert_eq!(Mobile::from_e164(a.e164()).expect("stored"), a);
    }

    proptest! {
        #[test]
        fn every_138_number_parses_and_masks(rest in 0u32..100_000_000) {
            let raw = format!("138{rest:08}");
            let m = cn(&raw).expect("138 range is mobile");
            prop_assert_eq!(m.display(), raw.clone());
            prop_assert_eq!(m.masked(), format!("{}****{}", &raw[..3], &raw[7..]));
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = cn(&s);
        }
    }
}
