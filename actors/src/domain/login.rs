//! Logins: one user signed in on one device. A login is the family of every access and
//! refresh token descended from one sign-in, so signing a device out, or catching a
//! stolen refresh token, ends exactly that family.

use std::fmt;

use super::{Invalid, LoginId, Timestamp, UserId, text};

/// Longest device name kept, in characters.
const MAX_DEVICE_CHARS: usize = 100;

/// What a device calls itself (a name the client gives, or its User-Agent): 1 to 100
/// characters as given, kept in NFKC and trimmed, with no control, bidi or invisible
/// characters, since it is shown back in the list of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceName(String);

impl DeviceName {
    /// Checks a name a client gave its device.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().count() > MAX_DEVICE_CHARS {
            return Err(Invalid("must be at most 100 characters"));
        }
        Self::normalised(raw)
    }

    /// A name read back from a store: NFKC may have made it longer than it was given.
    pub fn from_stored(stored: &str) -> Result<Self, Invalid> {
        if stored.chars().count() > MAX_DEVICE_CHARS * text::MAX_NFKC_GROWTH {
            return Err(Invalid("is too long"));
        }
        Self::normalised(stored)
    }

    fn normalised(raw: &str) -> Result<Self, Invalid> {
        let normalised = text::nfkc(raw);
        let s = normalised.trim();
        if s.is_empty() {
            return Err(Invalid("is required"));
        }
        if s.chars().any(refused) {
            return Err(Invalid(
                "must not contain control, bidirectional or invisible characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// What a device name may be, as a JSON Schema `pattern` (with `maxLength` 100):
    /// whitespace at either end around text with no refused character and at least one
    /// that is not whitespace. Computed from the checks above, as
    /// [`super::DisplayName::pattern`] is.
    pub fn pattern() -> String {
        text::trimmed_pattern(refused, |c| !c.is_whitespace())
    }

    /// A name from a User-Agent header, which nobody validated: what cannot be shown is
    /// dropped and the rest cut to length, and an empty result is "unknown device". A
    /// header is never a reason to refuse a login.
    pub fn from_user_agent(raw: Option<&str>) -> Self {
        let cleaned: String = text::nfkc(raw.unwrap_or_default())
            .chars()
            .filter(|&c| !refused(c))
            .take(MAX_DEVICE_CHARS)
            .collect();
        Self::parse(&cleaned).unwrap_or_else(|_| Self("unknown device".to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Only stores and the services' own messages deserialise a device name.
impl TryFrom<String> for DeviceName {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::from_stored(&s)
    }
}

/// A character no device name may hold: control, bidi and invisible characters.
fn refused(c: char) -> bool {
    c.is_control() || text::is_bidi_control(c) || text::is_invisible(c)
}

impl From<DeviceName> for String {
    fn from(d: DeviceName) -> String {
        d.0
    }
}

/// The SHA-256 of a refresh token: what the store keeps instead of the token, so a copy
/// of the store signs nobody in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshHash(pub [u8; 32]);

impl RefreshHash {
    /// The hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A hash read back from [`Self::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, Invalid> {
        let bad = Invalid("must be 64 hex digits");
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad);
        }
        let mut out = [0; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad.clone())?;
        }
        Ok(Self(out))
    }
}

// Never printed whole: a hash is not the token, but logs have no use for it.
impl fmt::Debug for RefreshHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl serde::Serialize for RefreshHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for RefreshHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// One sign-in of a user on a device, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    /// Its id (the `sid` of its access tokens).
    pub id: LoginId,
    /// Whose.
    pub user: UserId,
    /// What the device calls itself.
    pub device: DeviceName,
    /// When the user signed in.
    pub created_at: Timestamp,
    /// When a token of it was last used (to the minute) or refreshed.
    pub last_seen_at: Timestamp,
    /// The hash of the one refresh token that may be used next. Any other token of the
    /// family presented later is a reuse.
    pub refresh_hash: RefreshHash,
    /// When the current refresh token expires; past it the login is over.
    pub expires_at: Timestamp,
}

impl Login {
    /// Whether the login is still signed in at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_refuse_what_cannot_be_shown() {
        assert_eq!(
            DeviceName::parse("  Ada's phone ").unwrap().as_str(),
            "Ada's phone"
        );
        assert!(DeviceName::parse("").is_err());
        assert!(DeviceName::parse("a\u{202E}b").is_err());
        assert!(DeviceName::parse("a\nb").is_err());
        assert!(DeviceName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn a_user_agent_becomes_a_name_whatever_it_holds() {
        let long = "Mozilla/5.0 ".repeat(20);
        assert_eq!(
            DeviceName::from_user_agent(Some(&long))
                .as_str()
                .chars()
                .count(),
            100
        );
        assert_eq!(
            DeviceName::from_user_agent(Some("curl/8\u{202E}\u{0}")).as_str(),
            "curl/8"
        );
        assert_eq!(DeviceName::from_user_agent(None).as_str(), "unknown device");
    }

    #[test]
    fn refresh_hashes_round_trip_through_hex() {
        let hash = RefreshHash([0xab; 32]);
        assert_eq!(RefreshHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert!(RefreshHash::from_hex("zz").is_err());
        assert!(!format!("{hash:?}").contains(&hash.to_hex()));
    }

    /// As for display names: the pattern the API documents and `parse` agree on every
    /// character.
    #[test]
    fn the_documented_pattern_agrees_with_parse_on_every_character() {
        let pattern = regex::Regex::new(&DeviceName::pattern()).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("phone{c}"), format!("{c}phone ")] {
                assert_eq!(pattern.is_match(&s), DeviceName::parse(&s).is_ok(), "{s:?}");
            }
        }
    }

    #[test]
    fn a_stored_name_longer_than_given_reads_back() {
        let long = DeviceName::parse(&"\u{FDFA}".repeat(100)).unwrap();
        assert_eq!(DeviceName::try_from(String::from(long.clone())), Ok(long));
    }
}
