//! What makes two identities look alike: compatibility forms (fullwidth letters,
//! ligatures), characters that draw nothing (zero-width spaces, soft hyphens, bidi
//! controls) and letters of one script that pass for another's (Cyrillic `а` for Latin
//! `a`). Emails and display names use these to refuse or fold look-alikes when parsed.

use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};

/// `s` in Unicode normalisation form NFKC: fullwidth `ａ` becomes `a`, the ligature `ﬁ`
/// becomes `fi`, the Kelvin sign becomes `K`.
pub(crate) fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Whether `s` is already in NFKC.
pub(crate) fn is_nfkc(s: &str) -> bool {
    unicode_normalization::is_nfkc(s)
}

/// Bidirectional controls: they reorder what is drawn around them, so `moc.elgoog`
/// can be shown as `google.com`.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Format characters (Unicode general category Cf): the soft hyphen, zero-width space,
/// joiners, word joiner, byte-order mark, bidi controls, tag characters and the rest.
/// They draw nothing in running text. The list is the Cf category of Unicode 16.
pub(crate) fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Characters that draw nothing, or only a blank, yet are not whitespace: format
/// characters, variation selectors, the combining grapheme joiner, Mongolian free
/// variation selectors, the Hangul fillers and the blank Braille pattern.
pub(crate) fn is_invisible(c: char) -> bool {
    is_format(c)
        || is_variation_selector(c)
        || matches!(
            c,
            '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{180B}'
                ..='\u{180D}' | '\u{180F}' | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
        )
}

/// Variation selectors: they pick a glyph (an emoji's colour form) and draw nothing.
pub(crate) fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// The longest a single character grows under NFKC (U+FDFA becomes 18 characters), so
/// text of `n` characters is at most `n * MAX_NFKC_GROWTH` once normalised.
pub(crate) const MAX_NFKC_GROWTH: usize = 18;

/// A regular-expression class (`[...]`) of every character for which `pred` holds, in
/// the escapes that ECMA-262 validators, Python's `re` and Rust's `regex` all read
/// alike (`\uXXXX`, and `\UXXXXXXXX` beyond the BMP). It is how a type documents the
/// characters it refuses: the class is computed from the very check it describes.
pub(crate) fn regex_class(pred: impl Fn(char) -> bool) -> String {
    fn escape(out: &mut String, c: char) {
        use std::fmt::Write;
        let cp = u32::from(c);
        let _ = if cp <= 0xFFFF {
            write!(out, "\\u{cp:04x}")
        } else {
            write!(out, "\\U{cp:08x}")
        };
    }
    let mut runs: Vec<(char, char)> = Vec::new();
    for c in (0..=u32::from(char::MAX))
        .filter_map(char::from_u32)
        .filter(|&c| pred(c))
    {
        // A run ends where `pred` fails, and at the surrogates, which are no chars.
        match runs.last_mut() {
            Some((_, hi)) if u32::from(*hi) + 1 == u32::from(c) => *hi = c,
            _ => runs.push((c, c)),
        }
    }
    let mut out = String::from("[");
    for (lo, hi) in runs {
        escape(&mut out, lo);
        if hi != lo {
            out.push('-');
            escape(&mut out, hi);
        }
    }
    out.push(']');
    out
}

/// The pattern of text that is trimmed and then checked: whitespace at either end,
/// around text with no `refused` character and at least one `shown` one. Display and
/// device names are documented by it.
pub(crate) fn trimmed_pattern(refused: fn(char) -> bool, shown: fn(char) -> bool) -> String {
    let allowed = negated(&regex_class(refused));
    let blank = regex_class(char::is_whitespace);
    // Spelled as a negated class: short, and quick for generators to draw from.
    let shown = negated(&regex_class(|c| refused(c) || !shown(c)));
    format!("^{blank}*{allowed}*{shown}{allowed}*{blank}*$")
}

/// The class of every character a [`regex_class`] leaves out.
pub(crate) fn negated(class: &str) -> String {
    format!("[^{}", &class[1..])
}

/// Sets of scripts that are written together and do not pass for one another (the
/// "highly restrictive" level of Unicode TS #39): Latin with the scripts of Japanese,
/// Chinese (Bopomofo) and Korean.
const MIXES_ALLOWED: [&[Script]; 3] = [
    &[
        Script::Latin,
        Script::Han,
        Script::Hiragana,
        Script::Katakana,
    ],
    &[Script::Latin, Script::Han, Script::Bopomofo],
    &[Script::Latin, Script::Han, Script::Hangul],
];

/// Whether `s` mixes letters of scripts that are not written together, such as Latin
/// with Cyrillic or Greek (`pаypal` with a Cyrillic `а`). Digits, punctuation and
/// combining marks belong to every script and are ignored.
pub(crate) fn mixes_scripts(s: &str) -> bool {
    let mut seen: Vec<Script> = Vec::new();
    for c in s.chars() {
        let script = c.script();
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        if !seen.contains(&script) {
            seen.push(script);
        }
    }
    seen.len() > 1
        && !MIXES_ALLOWED
            .iter()
            .any(|allowed| seen.iter().all(|s| allowed.contains(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullwidth_and_compatibility_forms_fold_to_their_plain_letters() {
        assert_eq!(nfkc("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "ada@example.com");
        assert_eq!(nfkc("\u{FB01}le"), "file");
        assert_eq!(nfkc("\u{212A}"), "K");
    }

    #[test]
    fn characters_that_draw_nothing_are_invisible() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{202E}',
            '\u{2066}',
            '\u{FE0F}',
            '\u{3164}',
            '\u{E0041}',
        ] {
            assert!(is_invisible(c), "{:?}", c);
        }
        for c in ['a', ' ', 'é', 'Ж', '😀', '-', '\u{0301}'] {
            assert!(!is_invisible(c), "{:?}", c);
        }
    }

    #[test]
    fn latin_mixed_with_cyrillic_or_greek_is_a_mix_and_one_script_is_not() {
        assert!(mixes_scripts("p\u{0430}ypal"));
        assert!(mixes_scripts("\u{03BF}pen"));
        assert!(!mixes_scripts("paypal"));
        assert!(!mixes_scripts("\u{0430}\u{0434}\u{0430}"));
        assert!(!mixes_scripts("ada.lovelace+1"));
        assert!(!mixes_scripts("tanaka\u{7530}\u{4E2D}\u{305F}"));
    }

    #[test]
    fn a_regex_class_holds_exactly_the_characters_of_its_predicate() {
        // A run breaks at the surrogates, which no pattern can name.
        let pred = |c: char| matches!(c, 'b'..='d' | '\u{D7FF}' | '\u{E000}' | '\u{10FFFF}');
        let class = regex_class(pred);
        assert_eq!(class, "[\\u0062-\\u0064\\ud7ff\\ue000\\U0010ffff]");
        let re = regex::Regex::new(&format!("^{class}$")).unwrap();
        // (The negation is checked without the surrogate neighbours: Rust's `regex`
        // complements `[^\ud7ff\ue000]` wrongly, and no class Parley documents has them.)
        let pred_not = |c: char| matches!(c, 'b'..='d' | '\u{2066}'..='\u{2069}' | '\u{E0001}');
        let not = regex::Regex::new(&format!("^{}$", negated(&regex_class(pred_not)))).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(re.is_match(&s), pred(c), "{c:?}");
            assert_eq!(not.is_match(&s), !pred_not(c), "{c:?}");
        }
    }
}
