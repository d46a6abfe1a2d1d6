//! Plain-text passwords on their way to the hasher. The type never prints its value, so
//! a stray `{:?}` cannot leak one into a log.

use std::fmt;

use super::Invalid;

/// A password of 8 to 128 characters.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks a password's length (in characters, not bytes).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.chars().count() {
            0 => Err(Invalid("is required")),
            1..8 => Err(Invalid("must be at least 8 characters")),
            8..=128 => Ok(Self(raw.to_owned())),
            _ => Err(Invalid("must be at most 128 characters")),
        }
    }

    /// The secret itself, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert!(Password::parse("1234567").is_err());
        let p = Password::parse("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }
}
