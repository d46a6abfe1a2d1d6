//! Display names: what other people see next to a user's messages. A name is shown
//! beside someone's words, so it must not be blank to the eye, nor reorder the text
//! around it (bidi controls turn `Ada\u{202E}nimda` into `Adaadmin`).

use std::fmt;

use super::Invalid;
use super::text;

/// Longest display name, in characters as given (before normalisation), so a client
/// can hold a name to the same limit without normalising it first.
const MAX_NAME_CHARS: usize = 64;

/// A display name of 1 to 64 characters as given, kept in NFKC and trimmed, with at
/// least one visible character and no control, bidi or other format characters (bar
/// the joiners that emoji and some scripts need).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Normalises (NFKC), trims and checks a name someone gave.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid("must be at most 64 characters"));
        }
        Self::normalised(raw)
    }

    /// A name read back from a store, which holds names [`Self::parse`] gave: NFKC may
    /// have made one longer than it was given (`ﷺ` is 18 characters normalised), so
    /// only that growth's bound applies here.
    pub fn from_stored(stored: &str) -> Result<Self, Invalid> {
        if stored.chars().count() > MAX_NAME_CHARS * text::MAX_NFKC_GROWTH {
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
        if s.chars().any(char::is_control) {
            return Err(Invalid("must not contain control characters"));
        }
        if s.chars().any(text::is_bidi_control) {
            return Err(Invalid("must not contain bidirectional controls"));
        }
        if s.chars()
            .any(|c| text::is_invisible(c) && !allowed_invisible(c))
        {
            return Err(Invalid(
                "must not contain invisible or formatting characters",
            ));
        }
        if !s.chars().any(is_visible) {
            return Err(Invalid("must contain a visible character"));
        }
        Ok(Self(s.to_owned()))
    }

    /// What a name may be, as a JSON Schema `pattern` (with `maxLength` 64): whitespace
    /// at either end, which is trimmed, around text with no refused character and at
    /// least one visible one. It is computed from the checks above, and a test holds the
    /// two to agree on every character, so the API's document cannot drift from them.
    pub fn pattern() -> String {
        text::trimmed_pattern(refused, is_visible)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A character no name may hold, once normalised. No character outside this set
/// normalises into it (a test checks every one), so the set reads the same before NFKC.
fn refused(c: char) -> bool {
    c.is_control() || text::is_bidi_control(c) || (text::is_invisible(c) && !allowed_invisible(c))
}

/// A character that draws something: neither whitespace nor invisible.
fn is_visible(c: char) -> bool {
    !c.is_whitespace() && !text::is_invisible(c)
}

/// Invisible characters a name may still hold: the zero-width joiner and non-joiner
/// (emoji sequences such as 👩‍💻, and Persian or Indic spelling) and variation selectors
/// (an emoji's colour form). They change how visible neighbours are drawn, never hide a
/// name or reorder it, and a name made only of them is still refused.
fn allowed_invisible(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}') || text::is_variation_selector(c)
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for DisplayName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_stored(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        assert!(
            DisplayName::parse(" Ada\n").is_ok(),
            "whitespace at the ends is trimmed"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("Ada\u{7}").is_err());
    }

    #[test]
    fn names_of_only_invisible_characters_are_refused() {
        for blank in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}\u{FEFF}",
            "\u{3164}",
            "\u{00AD}",
            " \u{200D} ",
        ] {
            assert!(DisplayName::parse(blank).is_err(), "{blank:?} was accepted");
        }
    }

    #[test]
    fn bidi_controls_and_format_characters_are_refused() {
        assert_eq!(
            DisplayName::parse("Ada\u{202E}nimda"),
            Err(Invalid("must not contain bidirectional controls"))
        );
        for bad in ["\u{2067}Ada", "Ada\u{200F}", "Ada\u{061C}"] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(Invalid("must not contain bidirectional controls")),
                "{bad:?}"
            );
        }
        for bad in ["A\u{200B}da", "A\u{00AD}da", "Ada\u{E0041}"] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(Invalid(
                    "must not contain invisible or formatting characters"
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn emoji_sequences_and_joined_scripts_are_kept() {
        for ok in [
            "Ada \u{1F469}\u{200D}\u{1F4BB}",
            "\u{2764}\u{FE0F} Ada",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
        ] {
            assert_eq!(DisplayName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn fullwidth_names_fold_to_their_plain_letters() {
        assert_eq!(
            DisplayName::parse("\u{FF21}\u{FF44}\u{FF41}")
                .unwrap()
                .as_str(),
            "Ada"
        );
    }

    #[test]
    fn the_limit_counts_characters_as_given_and_a_stored_name_reads_back() {
        // U+FDFA is one character given and 18 once normalised.
        let long = DisplayName::parse(&"\u{FDFA}".repeat(64)).unwrap();
        assert_eq!(long.as_str().chars().count(), 64 * 18);
        assert_eq!(DisplayName::from_stored(long.as_str()), Ok(long.clone()));
        let json = serde_json::to_string(&long).unwrap();
        assert_eq!(serde_json::from_str::<DisplayName>(&json).unwrap(), long);
        assert!(DisplayName::parse(&"\u{FDFA}".repeat(65)).is_err());
        assert!(DisplayName::from_stored(&"a".repeat(64 * 18 + 1)).is_err());
    }

    /// The API documents names by [`DisplayName::pattern`]; a name the pattern allows
    /// and `parse` refuses is a request the document calls valid answered with 400.
    #[test]
    fn the_documented_pattern_agrees_with_parse_on_every_character() {
        let pattern = regex::Regex::new(&DisplayName::pattern()).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for s in [
                c.to_string(),
                format!("Ada{c}"),
                format!("{c}Ada "),
                format!("\u{200D}{c}"),
            ] {
                assert_eq!(
                    pattern.is_match(&s),
                    DisplayName::parse(&s).is_ok(),
                    "{s:?}: {:?}",
                    DisplayName::parse(&s)
                );
            }
        }
        for s in [
            "\tAda\u{0085}",
            "\u{00A8}",
            "\u{200D}\u{FE0F}",
            " \u{3000} ",
            "A\u{00AD}da",
        ] {
            assert_eq!(pattern.is_match(s), DisplayName::parse(s).is_ok(), "{s:?}");
        }
    }
}
