//! The parts of a message a client gives: its body and its retry key.

use std::fmt;

use super::{Invalid, text};

/// A message body: not blank, at most a configured number of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Checks a body against the configured limit (in characters). The body is kept
    /// exactly as sent: whitespace is the sender's to choose.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid("must not be empty"));
        }
        // Count only as far as needed: a megabyte body is refused without a full scan.
        if raw.chars().nth(max_chars).is_some() {
            return Err(Invalid("is too long"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// What a body may be, as a JSON Schema `pattern` (with `maxLength`, the configured
    /// limit): some character that is not whitespace, as [`str::trim`] has it.
    pub fn pattern() -> String {
        text::negated(&text::regex_class(char::is_whitespace))
    }

    /// Rebuilds a body read back from the store, which only holds parsed bodies.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id a client gives a send so that a retry is recognised: 1 to 64 printable ASCII
/// characters (a UUID, a counter, a timestamp).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// What a client id may be, as a JSON Schema `pattern`.
    pub const PATTERN: &'static str = r"^[\x20-\x7e]{1,64}$";

    /// Checks a client id.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid("must not be empty"));
        }
        if raw.len() > 64 {
            return Err(Invalid("must be at most 64 characters"));
        }
        if !raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(Invalid("must be printable ASCII"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A client id read back from a store. Ids stored before they were held to ASCII
    /// may be any 64 bytes without control characters, and still name their sends.
    pub fn from_stored(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 64 || raw.chars().any(char::is_control) {
            return Err(Invalid("is not a client id"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_kept_exactly_and_bounded_in_characters() {
        assert_eq!(MessageBody::parse(" hi ", 10).unwrap().as_str(), " hi ");
        assert!(MessageBody::parse(&"é".repeat(10), 10).is_ok());
        assert!(MessageBody::parse(&"é".repeat(11), 10).is_err());
        assert!(MessageBody::parse(" \n\t", 10).is_err());
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(ClientId::parse("c-1").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"x".repeat(65)).is_err());
        assert!(ClientId::parse("a\nb").is_err());
        assert!(
            ClientId::parse("caf\u{e9}").is_err(),
            "printable ASCII only"
        );
        assert!(
            ClientId::from_stored("caf\u{e9}").is_ok(),
            "as stored before"
        );
        let pattern = regex::Regex::new(ClientId::PATTERN).unwrap();
        for s in [
            "c-1",
            " ",
            "~",
            "",
            "caf\u{e9}",
            "a\tb",
            &"x".repeat(64),
            &"x".repeat(65),
        ] {
            assert_eq!(pattern.is_match(s), ClientId::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn the_documented_body_pattern_agrees_with_parse_on_every_character() {
        let pattern = regex::Regex::new(&MessageBody::pattern()).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for s in [c.to_string(), format!(" {c}\n")] {
                assert_eq!(
                    pattern.is_match(&s),
                    MessageBody::parse(&s, 10).is_ok(),
                    "{s:?}"
                );
            }
        }
    }
}
