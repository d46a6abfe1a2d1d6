//! Refresh tokens: opaque, 256 random bits, naming the login (the token family) they
//! belong to. The store keeps only their SHA-256 (see [`RefreshHash`]); a plain hash is
//! enough because the token is random, not a password someone chose.
//!
//! The form is `prt_` followed by 128 hex digits: the user id, the login id and the
//! secret. The ids are there so a refresh finds its login with one read of a row the
//! store keys by user, and so a token that was already used can be told to belong to
//! that family, which is what lets its reuse revoke the family.

use std::fmt;

use actors::domain::{LoginId, RefreshHash, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "prt_";
const HEX_LEN: usize = 2 * (16 + 16 + 32);

/// A refresh token, parsed or freshly made. Its `Debug` hides the secret.
#[derive(Clone)]
pub struct RefreshToken {
    /// Whose.
    pub user: UserId,
    /// Of which login.
    pub login: LoginId,
    secret: [u8; 32],
}

/// Not a refresh token this server could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a refresh token")]
pub struct NotARefreshToken;

impl RefreshToken {
    /// A fresh token of `login`.
    pub fn generate(user: UserId, login: LoginId) -> Self {
        let mut secret = [0; 32];
        rand::rng().fill_bytes(&mut secret);
        Self {
            user,
            login,
            secret,
        }
    }

    /// Reads a token a client presented.
    pub fn parse(raw: &str) -> Result<Self, NotARefreshToken> {
        let hex = raw.strip_prefix(PREFIX).ok_or(NotARefreshToken)?;
        if hex.len() != HEX_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NotARefreshToken);
        }
        let mut bytes = [0u8; HEX_LEN / 2];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| NotARefreshToken)?;
        }
        let id = |range: std::ops::Range<usize>| -> [u8; 16] {
            bytes[range].try_into().expect("16 bytes by construction")
        };
        Ok(Self {
            user: UserId::from_bytes(id(0..16)),
            login: LoginId::from_bytes(id(16..32)),
            secret: bytes[32..].try_into().expect("32 bytes by construction"),
        })
    }

    /// What the store keeps.
    pub fn hash(&self) -> RefreshHash {
        let mut hasher = Sha256::new();
        hasher.update(self.user.as_bytes());
        hasher.update(self.login.as_bytes());
        hasher.update(self.secret);
        RefreshHash(hasher.finalize().into())
    }

    /// The token to hand to the client, once.
    pub fn expose(&self) -> String {
        let mut out = String::with_capacity(PREFIX.len() + HEX_LEN);
        out.push_str(PREFIX);
        for b in self
            .user
            .as_bytes()
            .iter()
            .chain(self.login.as_bytes())
            .chain(&self.secret)
        {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("user", &self.user)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_its_hash_is_not_the_token() {
        let token = RefreshToken::generate(UserId::generate(), LoginId::generate());
        let text = token.expose();
        let back = RefreshToken::parse(&text).unwrap();
        assert_eq!((back.user, back.login), (token.user, token.login));
        assert_eq!(back.hash(), token.hash());
        assert!(!text.contains(&token.hash().to_hex()));
        assert!(!format!("{token:?}").contains(&text[PREFIX.len() + 64..]));
    }

    #[test]
    fn two_tokens_of_one_login_differ() {
        let (user, login) = (UserId::generate(), LoginId::generate());
        let a = RefreshToken::generate(user, login);
        let b = RefreshToken::generate(user, login);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn anything_else_is_refused() {
        let good = RefreshToken::generate(UserId::generate(), LoginId::generate()).expose();
        for bad in [
            "",
            "prt_",
            &good[..good.len() - 1],
            &good.replace("prt_", "xyz_"),
            &format!("{good}0"),
            &good.replacen('0', "g", 1).replacen('1', "g", 1),
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
        ] {
            if bad == good {
                continue;
            }
            assert!(RefreshToken::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
