//! Password hashing with argon2id, off the async runtime and bounded: at most
//! `max_concurrent_hashes` run at once, and a request that cannot get a slot
//! within the queue timeout is refused instead of piling up.
//!
//! Hashes run on a fixed set of threads started once, one per slot, each
//! reusing its own argon2 memory (`argon2_memory_kib`, 19 MiB by default)
//! from one hash to the next. Allocating it per hash on tokio's blocking pool
//! left the process at 600-865 MB after a burst: the allocator keeps freed
//! blocks in per-thread arenas, and a fixed set of threads alone still
//! reached 394 MB. Reused, the memory is one block set per slot
//! (BENCHMARKS.md). PHC strings are written and read with the `password-hash`
//! types, so stored hashes stay standard `$argon2id$v=19$…`.

mod legacy;

pub use legacy::is_legacy;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;
use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("all password-hashing slots are busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Work for a hashing thread, given the thread's argon2 memory; it sends its
/// own answer.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send + 'static>;

/// The stored hash of an account made by a `login` code, which has no
/// password until one is set (no password matches it).
pub const NO_PASSWORD: &str = "!";

pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    queue_timeout: Duration,
    /// A real hash of a random password, verified against when the user does
    /// not exist so that both cases cost the same.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(cfg: &PasswordConfig) -> Result<Self, HashError> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| HashError::Internal(e.to_string()))?;
        let slots = match cfg.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let dummy = crate::secret::random_hex(16);
        let dummy_hash = hash_with(&params, &dummy, &mut Vec::new())?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // This thread's argon2 memory, kept between hashes.
                    let mut blocks: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut blocks),
                            // The hasher was dropped: nothing more will come.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| HashError::Internal(e.to_string()))?;
        }
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(slots)),
            jobs,
            queue_timeout: Duration::from_millis(cfg.queue_timeout_ms),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let params = self.params.clone();
        let pw = password.expose().to_owned();
        self.run(move |blocks| hash_with(&params, &pw, blocks))
            .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there
    /// is no user, so that the answer takes the same time either way.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, HashError> {
        // An account without a password (`NO_PASSWORD`) costs the same
        // check as an unknown one, and matches nothing.
        let stored = stored.filter(|h| h.starts_with('$') || legacy::is_legacy(h));
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let dummy = self.dummy_hash.clone();
        let pw = password.expose().to_owned();
        let keep = self.params.block_count();
        let ok = self
            .run(move |blocks| {
                // An imported site's hash is checked as its library made it,
                // after the dummy argon2id check an unknown number costs, so
                // an imported account does not answer faster than none.
                let ok = if legacy::is_legacy(&hash) {
                    let _ = verify_with(&pw, &dummy, blocks);
                    legacy::verify(&pw, &hash)
                } else {
                    verify_with(&pw, &hash, blocks)
                };
                // A stored hash with more memory than ours (an old or
                // imported one) does not leave the thread holding it.
                if blocks.len() > keep {
                    blocks.truncate(keep);
                    blocks.shrink_to_fit();
                }
                Ok(ok)
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let _permit = permit;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(blocks)))
                .unwrap_or_else(|_| Err(HashError::Internal("password hashing panicked".into())));
            let _ = done.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| HashError::Internal("the hashing threads are gone".into()))?;
        answer
            .await
            .map_err(|_| HashError::Internal("a hashing thread dropped its work".into()))?
    }
}

/// The first `params.block_count()` blocks of `blocks`, grown when needed.
fn memory_for<'a>(blocks: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    &mut blocks[..need]
}

fn internal(e: impl std::fmt::Display) -> HashError {
    HashError::Internal(e.to_string())
}

/// An argon2id PHC string for `password` with a fresh 16-byte salt.
fn hash_with(
    params: &Params,
    password: &str,
    blocks: &mut Vec<Block>,
) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut salt_bytes);
    let salt = Salt::new(&salt_bytes).map_err(internal)?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            memory_for(blocks, params),
        )
        .map_err(internal)?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(internal)?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(internal)?),
    };
    Ok(phc.to_string())
}

/// The most an imported argon2 hash may ask of one login: 256 MiB and 16
/// passes (phoneauth's own default is 19 MiB and 2).
const IMPORT_MAX_ARGON2_KIB: u32 = 256 * 1024;
const IMPORT_MAX_ARGON2_PASSES: u32 = 16;

/// Whether a password could ever be checked against `stored`, at a bounded
/// cost: an argon2 PHC string as the login reads it, or a legacy hash that
/// reads (`legacy::is_checkable`). What an import requires of a hash.
pub fn is_checkable(stored: &str) -> bool {
    if legacy::is_legacy(stored) {
        return legacy::is_checkable(stored);
    }
    read_phc(stored).is_some_and(|(_, _, _, params)| {
        params.m_cost() <= IMPORT_MAX_ARGON2_KIB && params.t_cost() <= IMPORT_MAX_ARGON2_PASSES
    })
}

/// An argon2 PHC string read as [`verify_with`] uses it.
fn read_phc(stored: &str) -> Option<(PasswordHash, Algorithm, Version, Params)> {
    let phc = PasswordHash::new(stored).ok()?;
    if phc.salt.is_none() || phc.hash.is_none() {
        return None;
    }
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).ok()?;
    let version = phc
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(&phc).ok()?;
    Some((phc, algorithm, version, params))
}

/// Whether `password` matches the PHC string `stored` (any argon2 variant
/// and parameters); a string that does not parse matches nothing.
fn verify_with(password: &str, stored: &str, blocks: &mut Vec<Block>) -> bool {
    let Some((phc, algorithm, version, params)) = read_phc(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
        memory_for(blocks, &params),
    );
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PasswordPolicy;

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..PasswordConfig::default()
        }
    }

    fn pw(s: &str) -> Password {
        Password::parse(s, &PasswordPolicy::default()).expect("valid password")
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let h = PasswordHasher::new(&cheap()).expect("hasher");
        let stored = h.hash(&pw("correct horse")).await.expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(
            h.verify(&pw("correct horse"), Some(&stored))
                .await
                .expect("verify")
        );
        assert!(
            !h.verify(&pw("wrong horse!"), Some(&stored))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let h = PasswordHasher::new(&cheap()).expect("hasher");
        assert!(
            !h.verify(&pw("anything at all"), None)
                .await
                .expect("verify")
        );
    }

    #[test]
    fn our_hashes_read_as_standard_argon2_and_standard_hashes_verify() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(64, 1, 1, None).expect("params");
        let mut blocks = Vec::new();
        // Ours, checked by the argon2 crate's own verifier.
        let ours = hash_with(&params, "correct horse", &mut blocks).expect("hash");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        // The crate's own (other parameters), checked by ours with the
        // memory the thread already holds.
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).expect("params"),
        )
        .hash_password(b"battery staple")
        .expect("hash")
        .to_string();
        assert!(verify_with("battery staple", &theirs, &mut blocks));
        assert!(!verify_with("battery stapler", &theirs, &mut blocks));
        assert!(!verify_with("battery staple", "not a hash", &mut blocks));
        assert_eq!(
            blocks.len(),
            128,
            "the memory grew to the larger hash and stays"
        );
    }

    #[test]
    fn default_parameters_are_owasp_argon2id() {
        let c = PasswordConfig::default();
        assert!(c.argon2_memory_kib >= 19 * 1024);
        assert!(c.argon2_iterations >= 2);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_promptly() {
        let cfg = PasswordConfig {
            max_concurrent_hashes: 1,
            queue_timeout_ms: 20,
            ..cheap()
        };
        let h = PasswordHasher::new(&cfg).expect("hasher");
        let held = h.slots.clone().acquire_owned().await.expect("permit");
        let started = std::time::Instant::now();
        assert!(matches!(
            h.hash(&pw("password1")).await,
            Err(HashError::Busy)
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(held);
        assert!(h.hash(&pw("password1")).await.is_ok());
    }
}
