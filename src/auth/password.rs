//! argon2id password hashing with OWASP's parameters (19 MiB, 2 iterations, 1 lane).
//!
//! Each hash costs tens of milliseconds of CPU, so it runs on the blocking pool behind a
//! semaphore (one permit per hashing thread, `--password-threads`): a login storm queues
//! here instead of stalling the async runtime that carries every chat session.
//!
//! Each running hash needs 19 MiB of working memory. Allocating it per hash let glibc's
//! malloc grow the heap without bound under a login storm (its mmap threshold adapts
//! to the first freed 19 MiB block, after which every block comes from fragmented
//! arenas: 14 GiB of RSS after 1,000 logins), and faulting in fresh pages cost more
//! than a third of each login. So the hasher keeps one buffer per permit and reuses it.

use std::sync::{Arc, Mutex};

use actors::domain::Password;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Hashing failed (a bug or resource exhaustion, never a wrong password).
#[derive(Debug, Clone, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords off the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Working memory of finished hashes, at most one per permit.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
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
        let dummy = uuid::Uuid::new_v4().to_string();
        let dummy_hash = new_hash(dummy.as_bytes(), &mut Vec::new())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of a fresh argon2id hash.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.run(move |memory| new_hash(password.expose().as_bytes(), memory))
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
        self.run(move |memory| {
            let parsed = PasswordHash::new(&hash).map_err(failed)?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Err(HashError("stored hash has no salt or output".into()));
            };
            // The stored hash's own parameters: accounts keep verifying after a change.
            let algorithm = Algorithm::try_from(parsed.algorithm).map_err(failed)?;
            let version = match parsed.version {
                Some(v) => Version::try_from(v).map_err(failed)?,
                None => Version::default(),
            };
            let params = Params::try_from(&parsed).map_err(failed)?;
            let argon = Argon2::new(algorithm, version, params);
            let computed = compute(
                &argon,
                password.as_bytes(),
                salt,
                Some(expected.len()),
                memory,
            )?;
            // `Output`'s equality is constant-time.
            Ok(computed == expected && real)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let result = work(&mut memory);
            lock(&pool).push(memory);
            result
        })
        .await
        .map_err(|e| HashError(e.to_string()))?
    }
}

/// The PHC string of a fresh argon2id hash of `password`, with a new salt.
fn new_hash(password: &[u8], memory: &mut Vec<Block>) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = argon2();
    let output = compute(&argon, password, salt.as_salt(), None, memory)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Runs argon2 over `memory` (grown to the parameters' size the first time), into an
/// output of `len` bytes (the parameters' default when `None`).
fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: argon2::password_hash::Salt<'_>,
    len: Option<usize>,
    memory: &mut Vec<Block>,
) -> Result<Output, HashError> {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(failed)?;
    let len = len.unwrap_or_else(|| {
        argon
            .params()
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN)
    });
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(Into::into)
    })
    .map_err(failed)
}

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError(e.to_string())
}

/// The pool guards plain buffers: a panic mid-hash leaves nothing inconsistent.
fn lock(pool: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn password(s: &str) -> Password {
        Password::parse(s).expect("a valid password")
    }

    #[tokio::test]
    async fn hashes_verify_both_ways_with_the_reference_implementation() {
        let hasher = PasswordHasher::new(2).unwrap();
        let ours = hasher
            .hash(&password("correct horse battery"))
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

        // A hash written by the reference code (as every stored account has) verifies.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .hash_password(b"another secret one", &salt)
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("another secret one", Some(&theirs))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("another secret two", Some(&theirs))
                .await
                .unwrap()
        );
        assert!(
            hasher
                .verify("correct horse battery", Some(&ours))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
    }

    #[tokio::test]
    async fn a_stored_hash_with_other_parameters_still_verifies() {
        // Smaller and larger memory than the pool's buffers hold.
        for m in [8 * 1024, 32 * 1024] {
            let params = Params::new(m, 1, 1, None).unwrap();
            let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let salt = SaltString::generate(&mut OsRng);
            let stored = other
                .hash_password(b"old parameters", &salt)
                .unwrap()
                .to_string();
            let hasher = PasswordHasher::new(1).unwrap();
            // Warm the pool with a default-sized buffer first.
            hasher.hash(&password("warm the pool up")).await.unwrap();
            assert!(
                hasher
                    .verify("old parameters", Some(&stored))
                    .await
                    .unwrap()
            );
            assert!(
                !hasher
                    .verify("new parameters", Some(&stored))
                    .await
                    .unwrap()
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(hasher.verify("x", Some("not a phc string")).await.is_err());
    }
}
