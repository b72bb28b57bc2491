//! Password hashes of the sites phoneauth replaces (SPEC §11), verified as
//! the libraries that made them do, so imported users log in with their old
//! passwords; the caller then replaces the hash with argon2id.
//!
//! - werkzeug `pbkdf2:<digest>[:<iterations>]$<salt>$<hex>` (digest sha256,
//!   sha1 or sha512), `scrypt:<n>:<r>:<p>$<salt>$<hex>` (64 bytes), and the
//!   old `<digest>$<salt>$<hex>` (an HMAC keyed with the salt);
//! - Django `pbkdf2_sha256$<iterations>$<salt>$<base64>` (and `pbkdf2_sha1`);
//! - bcrypt `$2a$`, `$2b$`, `$2y$`.
//!
//! The primitives come from RustCrypto (`pbkdf2`, `scrypt`, `hmac`, `sha1`,
//! `sha2`) and the `bcrypt` crate; comparisons take constant time.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The highest PBKDF2 count and scrypt cost accepted from a stored hash: an
/// imported row must not make one login take minutes.
const MAX_ITERATIONS: u32 = 10_000_000;
const MAX_SCRYPT_LOG_N: u8 = 20;
/// What an imported scrypt hash may need a login: 256 MiB (werkzeug's
/// default, `scrypt:32768:8:1`, takes 32 MiB).
const MAX_SCRYPT_BYTES: u64 = 256 << 20;

/// werkzeug's count for a `pbkdf2:` method written without one.
const WERKZEUG_DEFAULT_ITERATIONS: u32 = 150_000;

/// Whether `stored` is a legacy hash phoneauth can check.
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with("pbkdf2:")
        || stored.starts_with("scrypt:")
        || stored.starts_with("pbkdf2_sha")
        || ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        || ["sha256$", "sha1$", "sha512$", "md5$"]
            .iter()
            .any(|p| stored.starts_with(p))
}

/// A legacy hash, read: what [`verify`] computes and compares.
enum Parsed<'a> {
    Bcrypt(&'a str),
    Pbkdf2 {
        digest: &'a str,
        rounds: u32,
        salt: &'a str,
        expected: Vec<u8>,
    },
    Scrypt {
        params: scrypt::Params,
        salt: &'a str,
        expected: Vec<u8>,
    },
    Hmac {
        digest: &'a str,
        salt: &'a str,
        expected: Vec<u8>,
    },
}

const DIGESTS: [&str; 3] = ["sha256", "sha512", "sha1"];

/// Reads a stored legacy hash; `None` when phoneauth could never check a
/// password against it (unknown digest, out-of-range cost, bad encoding).
fn parse(stored: &str) -> Option<Parsed<'_>> {
    if stored.starts_with("$2") {
        // `$2b$NN$` + 53 characters of salt and hash.
        let cost: u32 = stored.get(4..6)?.parse().ok()?;
        let bcrypt_base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
        let well_formed = ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
            && stored.len() == 60
            && (4..=31).contains(&cost)
            && stored.as_bytes()[6] == b'$'
            && stored.as_bytes()[7..].iter().all(|&b| bcrypt_base64(b));
        return well_formed.then_some(Parsed::Bcrypt(stored));
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_") {
        // Django: `pbkdf2_sha256$<iterations>$<salt>$<base64>`.
        let mut parts = rest.splitn(4, '$');
        let (digest, rounds, salt, expected) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let expected = base64::engine::general_purpose::STANDARD
            .decode(expected)
            .ok()?;
        return pbkdf2_parts(digest, rounds.parse().ok()?, salt, expected);
    }
    let mut parts = stored.splitn(3, '$');
    let (method, salt, expected) = (parts.next()?, parts.next()?, parts.next()?);
    let expected = hex::decode(expected).ok()?;
    let fields: Vec<&str> = method.split(':').collect();
    match fields.as_slice() {
        ["pbkdf2", digest] => pbkdf2_parts(digest, WERKZEUG_DEFAULT_ITERATIONS, salt, expected),
        ["pbkdf2", digest, n] => pbkdf2_parts(digest, n.parse().ok()?, salt, expected),
        ["scrypt", n, r, p] => {
            let n: u64 = n.parse().ok()?;
            let (r, p): (u32, u32) = (r.parse().ok()?, p.parse().ok()?);
            if !n.is_power_of_two() || n < 2 || expected.is_empty() || expected.len() > 128 {
                return None;
            }
            let log_n = u8::try_from(n.trailing_zeros()).ok()?;
            if log_n > MAX_SCRYPT_LOG_N || r > 32 || p > 16 {
                return None;
            }
            let params = scrypt::Params::new(log_n, r, p).ok()?;
            Some(Parsed::Scrypt {
                params,
                salt,
                expected,
            })
        }
        [digest] if DIGESTS.contains(digest) || *digest == "md5" => Some(Parsed::Hmac {
            digest,
            salt,
            expected,
        }),
        _ => None,
    }
}

fn pbkdf2_parts<'a>(
    digest: &'a str,
    rounds: u32,
    salt: &'a str,
    expected: Vec<u8>,
) -> Option<Parsed<'a>> {
    let ok = DIGESTS.contains(&digest)
        && (1..=MAX_ITERATIONS).contains(&rounds)
        && (1..=128).contains(&expected.len());
    ok.then_some(Parsed::Pbkdf2 {
        digest,
        rounds,
        salt,
        expected,
    })
}

/// Whether a password could ever be checked against `stored`: what an
/// import requires of a legacy hash.
pub fn is_checkable(stored: &str) -> bool {
    match parse(stored) {
        // scrypt needs 128·r·N bytes a login; an import takes at most
        // MAX_SCRYPT_BYTES (hashes stored already verify as they always did).
        Some(Parsed::Scrypt { params, .. }) => {
            let n = 1u64 << params.log_n();
            128 * u64::from(params.r()) * n <= MAX_SCRYPT_BYTES
        }
        parsed => parsed.is_some(),
    }
}

/// Checks `password` against a legacy hash; `false` for a wrong password
/// and for a hash that cannot be read.
pub fn verify(password: &str, stored: &str) -> bool {
    let pw = password.as_bytes();
    let (got, expected) = match parse(stored) {
        None => return false,
        Some(Parsed::Bcrypt(hash)) => return bcrypt::verify(password, hash).unwrap_or(false),
        Some(Parsed::Pbkdf2 {
            digest,
            rounds,
            salt,
            expected,
        }) => (
            pbkdf2(digest, pw, salt.as_bytes(), rounds, expected.len()),
            expected,
        ),
        Some(Parsed::Scrypt {
            params,
            salt,
            expected,
        }) => {
            let mut out = vec![0u8; expected.len()];
            let got = scrypt::scrypt(pw, salt.as_bytes(), &params, &mut out)
                .ok()
                .map(|()| out);
            (got, expected)
        }
        Some(Parsed::Hmac {
            digest,
            salt,
            expected,
        }) => (hmac_of(digest, salt.as_bytes(), pw), expected),
    };
    got.is_some_and(|g| bool::from(g.ct_eq(&expected)))
}

fn pbkdf2(digest: &str, pw: &[u8], salt: &[u8], rounds: u32, len: usize) -> Option<Vec<u8>> {
    if len == 0 || len > 128 {
        return None;
    }
    let mut out = vec![0u8; len];
    match digest {
        "sha256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, rounds, &mut out),
        "sha512" => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, rounds, &mut out),
        "sha1" => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, rounds, &mut out),
        _ => return None,
    }
    Some(out)
}

/// werkzeug's oldest form: an HMAC of the password keyed with the salt.
fn hmac_of(digest: &str, key: &[u8], pw: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], pw: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
        m.update(pw);
        Some(m.finalize().into_bytes().to_vec())
    }
    match digest {
        "sha256" => run::<Hmac<sha2::Sha256>>(key, pw),
        "sha512" => run::<Hmac<sha2::Sha512>>(key, pw),
        "sha1" => run::<Hmac<sha1::Sha1>>(key, pw),
        "md5" => run::<Hmac<md5::Md5>>(key, pw),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made by the real libraries (werkzeug 3.1, Django 5 and the
    /// Python `bcrypt` package) for the password `correct horse`.
    #[test]
    fn hashes_of_the_real_libraries_verify() {
        let cases = include_str!("legacy_vectors.txt");
        let mut n = 0;
        for line in cases
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            assert!(is_legacy(line) && is_checkable(line), "{line}");
            assert!(verify("correct horse", line), "{line}");
            assert!(
                !verify("correct horsf", line),
                "a wrong password matched {line}"
            );
            n += 1;
        }
        assert!(n >= 7, "{n} vectors");
    }

    #[test]
    fn unreadable_or_unbounded_hashes_match_nothing() {
        for bad in [
            "pbkdf2:sha256:0$salt$00",
            "pbkdf2:sha256:999999999$salt$00",
            "pbkdf2:whirlpool:1000$salt$00",
            "scrypt:3:8:1$salt$00",
            "scrypt:1048576000:8:1$salt$00",
            "sha256$salt$nothex",
            "pbkdf2_sha256$x$salt$AAAA",
            "$2b$04$invalid",
            "$2b$10$!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "scrypt:144115188075855872:1:1$salt$00",
        ] {
            assert!(!verify("correct horse", bad), "{bad}");
            assert!(!is_checkable(bad), "{bad}");
        }
        // Readable, but more memory than an import accepts (1 GiB).
        assert!(!is_checkable("scrypt:1048576:8:1$salt$00"));
        assert!(!is_legacy("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
    }
}
