//! Email addresses, normalised so that one mailbox has one spelling: NFKC (fullwidth
//! `ａｄａ` is `ada`), trimmed and lower-cased. Validation is deliberately structural
//! (what a person could mistype), not a full RFC 5322 parser: deliverability is proven
//! by mail, not by regex. Look-alikes are refused: an address with characters that draw
//! nothing (zero-width, soft hyphen, bidi controls) or whose local part or a domain label
//! mixes scripts that pass for one another (Latin with Cyrillic or Greek) would show as
//! someone else's address.

use std::fmt;

use super::Invalid;
use super::text;

/// A syntactically valid, normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// The longest address a mail system accepts (RFC 5321 path limit less the brackets).
const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Normalises (NFKC, trimmed, lower-cased) and checks an address.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // Normalise first and validate what is stored: lower-casing can lengthen a
        // string ('İ' is 2 bytes, its lower case 3), and stored emails are parsed again
        // when read back, so parsing must be idempotent.
        let lowered = normalise(raw).ok_or(Invalid("is not a valid email address"))?;
        let s = lowered.as_str();
        if s.is_empty() {
            return Err(Invalid("is required"));
        }
        if s.chars().count() > MAX_EMAIL_LEN {
            return Err(Invalid("must be at most 254 characters"));
        }
        if s.chars().any(text::is_invisible) {
            return Err(Invalid(
                "must not contain invisible or formatting characters",
            ));
        }
        let invalid = Invalid("is not a valid email address");
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(invalid.clone())?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid);
        }
        // A domain's ASCII is letters, digits, `-` and `_` (what DNS names hold); other
        // scripts are allowed (internationalised domains), under the checks below.
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid);
        }
        if text::mixes_scripts(local) || domain.split('.').any(text::mixes_scripts) {
            return Err(Invalid(
                "must not mix look-alike scripts (such as Latin with Cyrillic or Greek)",
            ));
        }
        Ok(Self(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `raw` in NFKC, trimmed and lower-cased, repeated until it stays put (a compatibility
/// form can fold to a capital, `ℌ` to `H`, and a lower case can leave NFKC), so that the
/// result is its own normal form. `None` if it never settles (no known input does).
fn normalise(raw: &str) -> Option<String> {
    let mut s = text::nfkc(raw).trim().to_lowercase();
    for _ in 0..4 {
        if text::is_nfkc(&s) && s.to_lowercase() == s {
            return Some(s);
        }
        s = text::nfkc(&s).to_lowercase();
    }
    None
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
            "ada@example.com*",
            "ada@exa>mple.com",
            "ada@[127.0.0.1].com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn fullwidth_and_compatibility_spellings_are_the_plain_address() {
        for spelling in [
            "\u{FF41}\u{FF44}\u{FF41}@example.com",
            "ada@\u{FF45}\u{FF58}\u{FF41}\u{FF4D}\u{FF50}\u{FF4C}\u{FF45}.com",
            "\u{FF21}\u{FF24}\u{FF21}\u{FF20}EXAMPLE\u{FF0E}COM",
            "\u{1D51E}da@example.com",
        ] {
            assert_eq!(
                Email::parse(spelling).unwrap().as_str(),
                "ada@example.com",
                "{spelling:?}"
            );
        }
        // A capital that only appears once folded is lower-cased too.
        assert_eq!(
            Email::parse("\u{210C}i@example.com").unwrap().as_str(),
            "hi@example.com"
        );
    }

    #[test]
    fn invisible_characters_are_refused_with_a_reason() {
        for bad in [
            "a\u{200B}da@example.com",
            "ada\u{00AD}@example.com",
            "\u{200D}ada@example.com",
            "ada@exam\u{2060}ple.com",
            "ada@example.com\u{FEFF}x",
            "\u{202E}moc.elpmaxe@ada",
            "ada\u{2066}@example.com",
            "ada\u{FE0F}@example.com",
            "ada\u{E0041}@example.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(Invalid(
                    "must not contain invisible or formatting characters"
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn latin_mixed_with_cyrillic_or_greek_is_refused_but_one_script_is_not() {
        let mixed = Err(Invalid(
            "must not mix look-alike scripts (such as Latin with Cyrillic or Greek)",
        ));
        // Cyrillic а (U+0430) and Greek ο (U+03BF) among Latin letters.
        assert_eq!(Email::parse("\u{0430}da@example.com"), mixed);
        assert_eq!(Email::parse("ada@ex\u{0430}mple.com"), mixed);
        assert_eq!(Email::parse("ada@example.c\u{03BF}m"), mixed);
        // Each part in one script, or scripts written together, is fine.
        assert!(Email::parse("\u{0430}\u{0434}\u{0430}@example.com").is_ok());
        assert!(
            Email::parse("ada@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.\u{0440}\u{0444}")
                .is_ok()
        );
        assert!(Email::parse("tanaka\u{7530}\u{4E2D}@example.jp").is_ok());
        assert!(Email::parse("jos\u{00E9}@example.com").is_ok());
    }

    #[test]
    fn an_accepted_address_parses_again_to_itself() {
        for raw in [
            "  Ada@Example.COM ",
            "\u{FF41}\u{FF44}\u{FF41}@example.com",
            "\u{210C}i@example.com",
            "\u{130}\u{130}@example.com",
            "\u{212A}elvin@example.com",
        ] {
            let email = Email::parse(raw).unwrap();
            assert_eq!(Email::parse(email.as_str()), Ok(email.clone()), "{raw:?}");
        }
    }
}
