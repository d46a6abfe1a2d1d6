//! argon2id password hashing with OWASP's parameters (19 MiB, 2 iterations, 1 lane).
//!
//! Each hash costs tens of milliseconds of CPU, so it runs on the blocking pool behind a
//! semaphore sized to the cores: a login storm queues here instead of stalling the async
//! runtime that carries every chat session.

use std::sync::Arc;

use actors::domain::Password;
use argon2::password_hash::{
    PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashing failed (a bug or resource exhaustion, never a wrong password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords off the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verifying against it costs what verifying a
    /// real account does, so an unknown email takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// A hasher that runs at most `parallelism` hashes at once.
    pub fn new(parallelism: usize) -> Result<Self, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy = uuid::Uuid::new_v4().to_string();
        let dummy_hash = argon2()
            .hash_password(dummy.as_bytes(), &salt)
            .map_err(|e| HashError(e.to_string()))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of a fresh argon2id hash.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `hash`; with `None`, spends one verification against
    /// the dummy hash and answers false. Takes any string: a login must not reveal the
    /// password rules by answering differently to a too-short guess.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let password = password.to_owned();
        let (hash, real): (Arc<str>, bool) = match hash {
            Some(h) => (h.into(), true),
            None => (self.dummy_hash.clone(), false),
        };
        self.run(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| HashError(e.to_string()))?;
            let ok = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && real)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))?
    }
}
