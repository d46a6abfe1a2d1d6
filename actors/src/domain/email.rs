//! Email addresses, normalised so that one mailbox has one spelling: trimmed and
//! lower-cased. Validation is deliberately structural (what a person could mistype),
//! not a full RFC 5322 parser: deliverability is proven by mail, not by regex.

use std::fmt;

use super::Invalid;

/// A syntactically valid, normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// The longest address a mail system accepts (RFC 5321 path limit less the brackets).
const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Trims, lower-cases and checks an address.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // Normalise first and validate what is stored: lower-casing can lengthen a
        // string ('İ' is 2 bytes, its lower case 3), and stored emails are parsed again
        // when read back, so parsing must be idempotent.
        let lowered = raw.trim().to_lowercase();
        let s = lowered.as_str();
        if s.is_empty() {
            return Err(Invalid("is required"));
        }
        if s.chars().count() > MAX_EMAIL_LEN {
            return Err(Invalid("must be at most 254 characters"));
        }
        let invalid = Invalid("is not a valid email address");
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(invalid.clone())?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid);
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid);
        }
        Ok(Self(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
            "ada\u{0}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
