//! The token-signing secret: from configuration, or generated once and kept in the data
//! dir (mode 0600) so tokens survive a restart with zero setup.

use std::io::Write;
use std::path::Path;

use rand::RngCore;

use crate::config::Secret;

/// Shortest secret accepted (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;
const FILE_NAME: &str = "jwt-secret";

/// Why no usable secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured secret is too short.
    #[error(
        "PARLEY_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (it has {0}); generate one with `openssl rand -hex 32`"
    )]
    TooShort(usize),
    /// The secret file could not be read or written.
    #[error("cannot use the secret file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The secret's bytes: the configured one, or the one kept in `data_dir`.
pub fn load_or_create(
    configured: Option<&Secret>,
    data_dir: &Path,
) -> Result<Vec<u8>, SecretError> {
    if let Some(Secret(s)) = configured {
        if s.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(s.len()));
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE_NAME);
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => {
            return Ok(text.trim().as_bytes().to_vec());
        }
        Ok(text) => return Err(SecretError::TooShort(text.trim().len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io)?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok(hex.into_bytes())
}
