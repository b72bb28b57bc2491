//! Mainland China resident ID numbers (GB 11643-1999): 17 digits — region,
//! birth date, sequence — and a check digit over them (ISO 7064 MOD 11-2,
//! `X` for 10). Held only as long as it takes to encrypt it; `Debug` never
//! shows it.

use std::fmt;

/// A valid 18-character ID number, upper-cased.
#[derive(Clone, PartialEq, Eq)]
pub struct IdCard(String);

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

impl IdCard {
    /// Accepts 18 characters: 17 digits whose birth date (characters 7–14)
    /// is a real day, and the right check digit (`x` taken as `X`).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_uppercase();
        let b = raw.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sum: u32 = b[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        if CHECK[(sum % 11) as usize] != b[17] || !birth_date_is_real(&raw[6..14]) {
            return None;
        }
        Some(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What may be shown: region and last four, `110105********1234`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

fn birth_date_is_real(yyyymmdd: &str) -> bool {
    let num = |r: std::ops::Range<usize>| yyyymmdd[r].parse::<u16>().ok();
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(4..6), num(6..8)) else {
        return false;
    };
    let Ok(month) = time::Month::try_from(m as u8) else {
        return false;
    };
    (1900..=2100).contains(&y) && time::Date::from_calendar_date(y.into(), month, d as u8).is_ok()
}

impl fmt::Debug for IdCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdCard({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_digit_decides() {
        // Check digits worked by hand: 11010519491231002 → X, 44030019900101123 → 8.
        let id = IdCard::parse("11010519491231002x").expect("valid");
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(id.masked(), "110105********002X");
        assert!(IdCard::parse("440300199001011238").is_some());
        assert!(
            IdCard::parse("440300199001011237").is_none(),
            "wrong check digit"
        );
        assert!(
            IdCard::parse("11010519491231002").is_none(),
            "17 characters"
        );
        assert!(IdCard::parse("1101051949123100X2").is_none(), "X inside");
    }

    #[test]
    fn the_birth_date_must_be_a_real_day() {
        // 19490230 is 30 February; its check digit is right, the date is not.
        let body = "11010519490230002";
        let sum: u32 = body
            .bytes()
            .zip(WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let id = format!("{body}{}", CHECK[(sum % 11) as usize] as char);
        assert!(IdCard::parse(&id).is_none());
    }

    #[test]
    fn debug_never_shows_the_number() {
        let id = IdCard::parse("11010519491231002X").expect("valid");
        assert!(!format!("{id:?}").contains("19491231"));
    }
}
