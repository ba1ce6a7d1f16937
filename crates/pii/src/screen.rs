//! Screening a short text a person writes where no personal data belongs (a reason, a note
//! on how an identity was checked): the vault keeps such texts in the clear, so one naming
//! someone is refused. The scanner reads the text as written and in the forms people use to
//! slip past a scanner by accident or on purpose: other spaces, dots and dashes between
//! words, invisible characters, accents, full-width or lookalike letters, upper case (an IBAN
//! written in lower case), emails spelled out. A word mixing scripts (a Cyrillic `а` among
//! Latin letters) counts as a finding: it is there to fool a reader.
//!
//! It looks for identifiers and names only: dates, places and web addresses are what such
//! texts are made of ("on 2026-11-02 at the London office"). Names written as no scanner
//! takes them (an initial and a surname, a name in lower case) are looked for with the name
//! lists. A screen, not a proof: a name the lists do not hold passes.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::MixedScript;

use crate::Scanner;

/// Entities a screen does not look for: what ordinary operator texts hold.
const NOT_SCREENED: &[&str] = &["DATE_TIME", "URL", "LOCATION"];

/// The scanner a screen uses: every built-in entity but [`NOT_SCREENED`], and no label
/// before a number taken as saying it is no phone or card (`claim +44 20 7219 3000`, `ref
/// 4111 1111 1111 1111`: a text kept in the clear is refused on the number's shape alone).
pub fn scanner() -> crate::Result<Scanner> {
    Scanner::builder()
        .labels_veto(false)
        .entities(
            crate::BUILTIN_ENTITIES
                .iter()
                .filter(|e| !NOT_SCREENED.contains(e))
                .copied(),
        )
        .build()
}

/// Whether `scanner` (see [`scanner`]) finds personal data in any reading of `text`, or
/// `text` has a word of mixed scripts.
#[must_use]
pub fn holds_personal_data(scanner: &Scanner, text: &str) -> bool {
    let readings = readings(text);
    spoofed(text)
        // (not in the reading in capitals made of a text that is not: every `a` there is an
        // initial)
        || readings
            .iter()
            .filter(|r| text.to_uppercase() == text || r.to_uppercase() != **r)
            .any(|reading| unmarked_name(reading))
        || readings
            .iter()
            .any(|reading| !scanner.scan(reading.as_bytes()).is_empty())
}

/// A name as people write it in a hurry, which the scanner does not take for one without
/// more (a title, a context word): a listed surname after an initial (`J. Smith`, `J.
/// SMITH`) or before one (`SMITH J.`, `Smith, J`), or a listed first name and a listed surname
/// side by side in either order, in any case, joined by a dot or an underscore too (`ada
/// lovelace`, `Smith John`, `lovelace ada`, `Ada.Lovelace`).
fn unmarked_name(reading: &str) -> bool {
    use crate::recognizers::person::{listed_first_name, listed_last_name};
    let title = |w: &str| -> String {
        let mut cs = w.chars();
        cs.next()
            .map(|first| first.to_uppercase().chain(cs.flat_map(char::to_lowercase)).collect())
            .unwrap_or_default()
    };
    // words, each with whether a dot ended it; `'s` and brackets left out
    let mut words: Vec<(String, bool)> = Vec::new();
    for raw in reading.split(|c: char| c.is_whitespace() || matches!(c, ',' | '_' | '(' | ')' | '/')) {
        let mut rest = raw;
        while !rest.is_empty() {
            let (word, dotted, after) = match rest.find('.') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, ""),
            };
            let word = word.trim_end_matches("'s").trim_end_matches("\u{2019}s");
            if !word.is_empty() {
                words.push((word.to_owned(), dotted));
            }
            rest = after;
        }
    }
    let alphabetic = |w: &str| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic);
    let first = |w: &str| alphabetic(w) && listed_first_name(&title(w));
    let last = |w: &str| alphabetic(w) && listed_last_name(&title(w));
    let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    let initial = |w: &str| w.chars().count() == 1 && w.chars().all(|c| c.is_ascii_uppercase());
    words.iter().enumerate().skip(1).any(|(i, (b, b_dot))| {
        let (a, a_dot) = &words[i - 1];
        // (a capital letter alone after a word in capitals is as often a word: `CLIENT A`;
        // one after a capitalised word labels a part: `Option B. Green-lit`, `Annex C. Hall`)
        let in_capitals = a.to_uppercase() == *a;
        let labelled = i >= 2 && capitalised(&words[i - 2].0);
        (initial(a) && *a_dot && !labelled && capitalised(b) && last(b))
            || (capitalised(a) && last(a) && initial(b) && (*b_dot || !in_capitals))
            || (first(a) && last(b))
            || (last(a) && first(b))
    })
}

/// A word (between white space) whose letters come from more than one script.
fn spoofed(text: &str) -> bool {
    text.split(char::is_whitespace).any(|word| !word.is_single_script())
}

/// Characters that show nothing (or a blank) and so may sit inside a word unseen.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The text as written, then: compatibility-folded (full-width `＠` is `@`) without
/// invisible characters, with every run of spaces, dashes, underscores, middle dots,
/// bullets, slashes and pluses between words one space; that without accents; that in upper
/// case; its lookalike skeleton (Cyrillic `Јеѕѕіса` read as `Jessica`) when it is not ASCII;
/// and the lower-case form with `at`/`dot` read as `@`/`.` (`bob dot smith at example dot
/// com`).
#[must_use]
pub fn readings(text: &str) -> Vec<String> {
    let folded = words(&text.nfkc().filter(|c| !invisible(*c)).collect::<String>());
    let plain: String = folded.nfd().filter(|c| !is_combining_mark(*c)).collect();
    let upper = plain.to_uppercase();
    let spelled = spelled_out_email(&plain.to_lowercase());
    let named = names_as_written_in_prose(&plain);
    let mut all = vec![text.to_owned(), folded, plain, upper, spelled, named];
    if !text.is_ascii() {
        all.push(unicode_security::skeleton(&all[2]).collect());
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|reading| seen.insert(reading.clone()));
    all
}

/// Words written in capitals (two letters or more) in title case, and a name written surname
/// first (`LOVELACE, ADA`, `Hopper, Grace`) turned round: as a name is written in prose,
/// where the name lists are matched (`ADA LOVELACE` and `Lovelace, Ada` are Ada Lovelace).
fn names_as_written_in_prose(plain: &str) -> String {
    let title = |w: &str| -> String {
        let letters = w.chars().filter(|c| c.is_alphabetic()).count();
        if letters >= 2 && w.chars().all(|c| !c.is_lowercase()) {
            let mut cs = w.chars();
            cs.next()
                .map(|first| first.to_uppercase().chain(cs.flat_map(char::to_lowercase)).collect())
                .unwrap_or_default()
        } else {
            w.to_owned()
        }
    };
    let caps = |w: &str| w.chars().filter(|c| c.is_alphabetic()).count() >= 2 && w.chars().all(|c| !c.is_lowercase());
    let written: Vec<&str> = plain.split(' ').collect();
    let words: Vec<String> = written.iter().map(|w| title(w)).collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
        // a surname in capitals before a given name (`SMITH John`)
        if let (Some(surname), Some(given)) = (written.get(i), written.get(i + 1))
            && caps(surname)
            && !caps(given)
            && capitalised(given)
            && given.chars().all(char::is_alphabetic)
            && surname.chars().all(char::is_alphabetic)
        {
            out.push((*given).to_owned());
            out.extend(words.get(i).cloned());
            i += 2;
            continue;
        }
        match (words.get(i), words.get(i + 1)) {
            (Some(surname), Some(given))
                if surname.len() > 2
                    && surname.ends_with(',')
                    && capitalised(surname)
                    && capitalised(given)
                    && given.chars().all(char::is_alphabetic) =>
            {
                out.push(given.clone());
                out.push(surname.trim_end_matches(',').to_owned());
                i += 2;
            }
            (Some(w), _) => {
                out.push(w.clone());
                i += 1;
            }
            (None, _) => break,
        }
    }
    out.join(" ")
}

/// Runs of white space and joining marks as one ASCII space.
fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if c.is_whitespace()
            || matches!(
                c,
                '-' | '_' | '/' | '+' | '·' | '•' | '∙' | '\u{2010}'..='\u{2015}' | '\u{2212}'
            )
        {
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

/// `at` and `dot` (bare, or in `()`, `[]`, `{}`, `<>`) as `@` and `.`, without the spaces.
fn spelled_out_email(lower: &str) -> String {
    let mut s = format!(" {lower} ");
    for (from, to) in [
        ("(at)", "@"),
        ("[at]", "@"),
        ("{at}", "@"),
        ("<at>", "@"),
        (" at ", "@"),
        ("(dot)", "."),
        ("[dot]", "."),
        ("{dot}", "."),
        ("<dot>", "."),
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
        super::scanner().unwrap()
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
            "José García",
            "Ada·Lovelace",
            "Ada \u{34f}Lovelace",
            "Ada /Lovelace",
            "\u{408}\u{435}\u{455}\u{455}\u{456}\u{441}\u{430} \u{421}\u{43e}\u{445}",
            "ada@example.com",
            "de89370400440532013000",
            "4111/1111/1111/1111",
            "ada＠example．com",
            "bob dot smith at gmail dot com",
            "bob (at) example (dot) com",
            "\u{410}da L\u{43e}velace",
            "call +44 20 7946 0958",
            "ADA LOVELACE",
            "GRACE HOPPER",
            "JOHN SMITH",
            "Lovelace, Ada",
            "Hopper, Grace",
            "ticket for LOVELACE, ADA",
            "SMITH John",
            "call from HOPPER Grace",
            "J. SMITH",
            "SMITH J.",
            "A. Lovelace",
            "call J.Smith back",
            "Lovelace, A.",
            "ada lovelace",
            "called grace hopper about it",
            "Smith John",
            "smith john",
            "lovelace ada",
            "Ada.Lovelace",
            "ada.lovelace",
            "Smith J",
            "Smith, J.",
            "smith, john",
            "john smith's order",
            "Smith (J)",
            // a label before a number does not make a phone or a card something else here
            "claim +44 20 7219 3000",
            "claim 07912 345678",
            "ref 4111 1111 1111 1111",
            "ticket 4111111111111111",
            "ref (415) 867-5309",
            "order: +1 415 867 5309",
            "invoice 0049 30 901820",
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
            "logged-in session",
            "signed-in session",
            "verified in person",
            "received on 2026-11-02",
            "verified at 14:30 on 2 November 2026",
            "see https://tickets.example.com/browse/LEG-1234",
            "from the London office",
            "Customer in Paris office",
            "We will review the case",
            "Le client a présenté sa carte d'identité au guichet",
            "El cliente mostró su pasaporte en la tienda",
            "Il cliente ha mostrato il documento",
            "GDPR request, see JIRA LEG-1234",
            "ID CHECKED AT THE DESK",
            "URGENT: DPO ASKED FOR THE EXPORT",
            "Smith, the DPO, approved",
            "GDPR Request from the shop",
            "URGENT Ticket 42",
            "see section A. Overview of the policy",
            "Plan B. Approved by the DPO",
            "will review the case with legal",
            "grace period ends on 2026-12-31",
            "customer asked for the april statement",
            "mark as done after the export",
            "U.S. customer, CCPA request",
            "ticket 42 per J. from legal",
            "please check the order status",
            "customer called about a late delivery",
            "refund approved by the finance team",
            "grant access for the quarterly audit",
            "mark as done once the carrier confirms",
            "A Black box was returned",
            "Plan B. Approved",
            "TICKET 42: CLIENT A ASKED FOR A COPY",
            "Option B. Green-lit by legal",
            "Part C. Hall booking",
            "Annex B. Turner prize",
            "order 12345",
            "invoice 2026-0042",
            "ref INC-2026-0042",
            "ticket 932196",
            "build 1.4.2",
            "version 10.0.0.1",
            "case 2026/1187",
        ] {
            assert!(!holds_personal_data(&s, text), "{text:?}: {:?}", readings(text));
        }
    }

    #[test]
    fn readings_fold_spaces_accents_case_and_spelled_emails() {
        assert_eq!(
            readings("bob dot smith at gmail dot com"),
            [
                "bob dot smith at gmail dot com",
                "BOB DOT SMITH AT GMAIL DOT COM",
                "bob.smith@gmail.com"
            ]
        );
        let r = readings("ZOË—ÅNGSTRÖM");
        assert!(r.contains(&"ZOË ÅNGSTRÖM".to_owned()), "{r:?}");
        assert!(r.contains(&"ZOE ANGSTROM".to_owned()), "{r:?}");
    }
}
