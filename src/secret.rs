//! The server secret and what is derived from it: the MACs under which codes
//! and captcha answers are stored, and random tokens.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::{Rng, RngExt};
use sha2::{Digest, Sha256};

/// Smallest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The key of every MAC. All instances of one deployment must share it.
#[derive(Clone)]
pub struct ServerSecret(Vec<u8>);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must be at least {MIN_SECRET_LEN} bytes written as hex")]
    TooShort,
    #[error("the secret is not valid hex")]
    NotHex,
    #[error("cannot read or write the secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ServerSecret {
    pub fn from_hex(hex_text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(hex_text.trim()).map_err(|_| SecretError::NotHex)?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        Ok(Self(bytes))
    }

    /// The key bytes, for storing a generated secret where all instances read it.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn generate() -> Self {
        let mut bytes = vec![0u8; MIN_SECRET_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads the secret kept in `path`, or creates it (readable by the owner
    /// only) on first start. Embedded mode keeps it beside the database so
    /// codes survive a restart.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = Self::generate();
                write_private(path, &hex::encode(&secret.0)).map_err(io)?;
                Ok(secret)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// HMAC-SHA256 over `parts`, each prefixed by its length so that no two
    /// different part lists give the same input.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part);
        }
        m.finalize().into_bytes().into()
    }

    /// Encrypts `plain` (ChaCha20-Poly1305 under a key derived for
    /// `purpose`, a random nonce): base64 of nonce and ciphertext. For data
    /// kept only to be recovered by an operator with the secret, such as an
    /// ID number.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, SealError> {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let key = self.mac("seal-key", &[purpose.as_bytes()]);
        let key =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| SealError)?);
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose),
            &mut sealed,
        )
        .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            out,
        ))
    }

    /// Reverses [`ServerSecret::seal`]; `None` when the text was not sealed
    /// for `purpose` under this secret.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed).ok()?;
        let (nonce, body) = (raw.get(..12)?, raw.get(12..)?);
        let key = self.mac("seal-key", &[purpose.as_bytes()]);
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).ok()?);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(purpose), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("encryption failed")]
pub struct SealError;

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// `bytes` random bytes from the thread-local CSPRNG, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A six-digit code, uniform over 000000–999999.
pub fn random_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// 32 random bytes: a MAC no code matches, to keep a code's place.
pub fn random_bytes32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b
}

/// Hex SHA-256, for keys derived from bearer secrets such as session ids.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sealed_text_opens_only_with_its_secret_and_purpose() {
        let a = ServerSecret::generate();
        let sealed = a.seal("id-card", b"11010519491231002X").expect("sealed");
        assert!(!sealed.contains("19491231"));
        assert_eq!(
            a.open("id-card", &sealed).as_deref(),
            Some(&b"11010519491231002X"[..])
        );
        assert_eq!(a.open("other", &sealed), None);
        assert_eq!(ServerSecret::generate().open("id-card", &sealed), None);
        // Every seal has its own nonce.
        assert_ne!(
            sealed,
            a.seal("id-card", b"11010519491231002X").expect("sealed")
        );
    }

    #[test]
    fn mac_separates_purposes_and_part_boundaries() {
        let s = ServerSecret::generate();
        assert_ne!(s.mac("a", &[b"x"]), s.mac("b", &[b"x"]));
        assert_ne!(s.mac("a", &[b"ab", b"c"]), s.mac("a", &[b"a", b"bc"]));
        assert_eq!(s.mac("a", &[b"x"]), s.mac("a", &[b"x"]));
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert!(matches!(
            ServerSecret::from_hex("00ff"),
            Err(SecretError::TooShort)
        ));
        assert!(matches!(
            ServerSecret::from_hex("zz"),
            Err(SecretError::NotHex)
        ));
        assert!(ServerSecret::from_hex(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn secret_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("phoneauth-secret-{}", random_hex(6)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("phoneauth.secret");
        let a = ServerSecret::load_or_create(&path).expect("created");
        let b = ServerSecret::load_or_create(&path).expect("read back");
        assert_eq!(a.mac("t", &[]), b.mac("t", &[]));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn codes_cover_all_six_digit_values_evenly() {
        // 20 000 draws into 10 buckets by first digit: each bucket should hold
        // about 2 000; a biased generator (e.g. modulo of a small range) drifts.
        let mut buckets = [0u32; 10];
        for _ in 0..20_000 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            buckets[usize::from(c.as_bytes()[0] - b'0')] += 1;
        }
        for b in buckets {
            assert!(
                (1_700..2_300).contains(&b),
                "uneven first digit: {buckets:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_code_is_always_six_digits(_i in 0..200u32) {
            let c = random_code();
            prop_assert_eq!(c.len(), 6);
            prop_assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
