//! Password hashing with argon2id, off the async runtime and bounded: at most
//! `max_concurrent_hashes` run at once, and a request that cannot get a slot
//! within the queue timeout is refused instead of piling up.
//!
//! Hashes run on a fixed set of threads started once, one per slot, not on
//! tokio's blocking pool: each argon2id run takes `argon2_memory_kib` (19 MiB
//! by default), and the allocator keeps what a thread used in that thread's
//! arena, so a burst spread over hundreds of blocking threads left the
//! process at 600-865 MB. With a fixed set, memory stays at about one hash
//! per slot (BENCHMARKS.md).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
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

/// Work for a hashing thread; it sends its own answer.
type Job = Box<dyn FnOnce() + Send + 'static>;

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
        let dummy_hash = hash_now(&params, &dummy)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
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
        self.run(move || hash_now(&params, &pw)).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there
    /// is no user, so that the answer takes the same time either way.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let pw = password.expose().to_owned();
        let ok = self
            .run(move || {
                Ok(Argon2::default()
                    .verify_password(pw.as_bytes(), hash.as_str())
                    .is_ok())
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
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

fn hash_now(params: &Params, password: &str) -> Result<String, HashError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
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
