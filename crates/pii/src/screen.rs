//! Screening a short text a person writes where no personal data belongs (a reason, a note
//! on how an identity was checked): the vault keeps such texts in the clear, so one naming
//! someone is refused. The scanner reads the text as written and in the forms people use to
//! slip past a scanner by accident or on purpose: other spaces and dashes, all lower or upper
//! case, accents, full-width letters, emails spelled out. A word mixing scripts (a Cyrillic
//! `а` among Latin letters) counts as a finding: it is there to fool a reader.
//!
//! A screen, not a proof: a name the scanner's lists do not hold (many non-Latin names)
//! passes.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::MixedScript;

use crate::Scanner;

/// Whether `scanner` finds personal data in any reading of `text`, or `text` has a word of
/// mixed scripts.
#[must_use]
pub fn holds_personal_data(scanner: &Scanner, text: &str) -> bool {
    spoofed(text)
        || readings(text)
            .iter()
            .any(|reading| !scanner.scan(reading.as_bytes()).is_empty())
}

/// A word (between white space) whose letters come from more than one script.
fn spoofed(text: &str) -> bool {
    text.split(char::is_whitespace).any(|word| !word.is_single_script())
}

/// The text as written, then: compatibility-folded (full-width `＠` is `@`) with every run of
/// spaces, dashes and underscores between words one space; that in title case (names written
/// `ada lovelace` or `ADA LOVELACE`); that without accents (`José García` as the lists hold
/// it); and the lower-case form with `at`/`dot` read as `@`/`.` (`bob dot smith at example
/// dot com`).
#[must_use]
pub fn readings(text: &str) -> Vec<String> {
    let folded = words(&text.nfkc().collect::<String>());
    let titled = title_case(&folded);
    let plain: String = titled.nfd().filter(|c| !is_combining_mark(*c)).collect();
    let spelled = spelled_out_email(&folded.to_lowercase());
    let mut all = vec![text.to_owned(), folded, titled, plain, spelled];
    all.dedup();
    all
}

/// Runs of white space, dashes and underscores as one ASCII space.
fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        }
    }
    out
}

/// Each word's first letter upper case, the rest lower.
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if c.is_alphabetic() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = c.is_whitespace() || c == '(' || c == '"' || c == '\'';
        }
    }
    out
}

/// ` at `, `(at)`, `[at]` as `@` and ` dot `, `(dot)`, `[dot]` as `.`, without the spaces.
fn spelled_out_email(lower: &str) -> String {
    let mut s = format!(" {lower} ");
    for (from, to) in [
        ("(at)", "@"),
        ("[at]", "@"),
        ("{at}", "@"),
        (" at ", "@"),
        ("(dot)", "."),
        ("[dot]", "."),
        ("{dot}", "."),
        (" dot ", "."),
    ] {
        // Twice: ` dot com dot ` shares its spaces.
        s = s.replace(from, to).replace(from, to);
    }
    s.replace(" @", "@")
        .replace("@ ", "@")
        .replace(" .", ".")
        .replace(". ", ".")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> Scanner {
        Scanner::builder().build().unwrap()
    }

    #[test]
    fn names_and_addresses_are_found_however_they_are_written() {
        let s = scanner();
        for text in [
            "Ada Lovelace",
            "Ada  Lovelace",
            "Ada\u{a0}Lovelace",
            "Ada\u{2003}Lovelace",
            "Ada-Lovelace",
            "ADA LOVELACE",
            "ada lovelace",
            "José García",
            "passport of jose garcia",
            "mr smith",
            "ada@example.com",
            "ada＠example．com",
            "bob dot smith at gmail dot com",
            "bob (at) example (dot) com",
            "\u{410}da L\u{43e}velace",
            "call +44 20 7946 0958",
        ] {
            assert!(holds_personal_data(&s, text), "{text:?}: {:?}", readings(text));
        }
    }

    #[test]
    fn references_and_descriptions_pass() {
        let s = scanner();
        for text in [
            "passport checked at the desk",
            "signed-in account",
            "ticket LEG-1234, matter 2026/77",
            "We need 45 more days: the request covers 12 systems.",
            "Identity could not be verified.",
            "incident 77",
            "Kunde hat sich am Schalter ausgewiesen",
            "litigation hold at the request of the legal team",
            "Заявка проверена",
        ] {
            assert!(!holds_personal_data(&s, text), "{text:?}: {:?}", readings(text));
        }
    }

    #[test]
    fn readings_fold_spaces_case_accents_and_spelled_emails() {
        assert_eq!(
            readings("bob dot smith at gmail dot com"),
            [
                "bob dot smith at gmail dot com",
                "Bob Dot Smith At Gmail Dot Com",
                "bob.smith@gmail.com"
            ]
        );
        let r = readings("ZOË—ÅNGSTRÖM");
        assert!(r.contains(&"Zoë Ångström".to_owned()), "{r:?}");
        assert!(r.contains(&"Zoe Angstrom".to_owned()), "{r:?}");
    }
}
