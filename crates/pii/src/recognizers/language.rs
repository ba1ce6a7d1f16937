//! PERSON, LOCATION and ADDRESS without a language model (none can be downloaded here):
//! dictionaries shipped in the crate (US Census first and last names, GeoNames places), the
//! shapes of names and places (titles, initials, toponymic prefixes and suffixes) and the
//! words around them. See `data/` for sources and licences.

use std::sync::LazyLock;

use regex::bytes::Regex;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{Hit, Meta, Recognizer, Tier, words};
use crate::context::Fields;
use crate::error::{Error, Result};
use crate::finding::{Evidence, EvidenceKind};

pub(super) fn list(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Places by their first word; each entry is the place's words.
static PLACES: LazyLock<FxHashMap<&'static str, Vec<Vec<&'static str>>>> = LazyLock::new(|| {
    let mut map: FxHashMap<&'static str, Vec<Vec<&'static str>>> = FxHashMap::default();
    for place in list(include_str!("../../data/places.txt")) {
        let parts: Vec<&'static str> = place.split(' ').collect();
        if let Some(first) = parts.first() {
            map.entry(first).or_default().push(parts);
        }
    }
    for v in map.values_mut() {
        v.sort_by_key(|p| std::cmp::Reverse(p.len()));
    }
    map
});
static COUNTRIES_AND_STATES: LazyLock<FxHashSet<&'static str>> =
    LazyLock::new(|| PLACE_ANCHORS.iter().copied().collect());

/// Countries, US states and world cities so well known that they need no preposition.
const PLACE_ANCHORS: &[&str] = &[
    "Alabama",
    "Alaska",
    "Arizona",
    "Arkansas",
    "California",
    "Colorado",
    "Connecticut",
    "Delaware",
    "Florida",
    "Hawaii",
    "Idaho",
    "Illinois",
    "Indiana",
    "Iowa",
    "Kansas",
    "Kentucky",
    "Louisiana",
    "Maine",
    "Maryland",
    "Massachusetts",
    "Michigan",
    "Minnesota",
    "Mississippi",
    "Missouri",
    "Montana",
    "Nebraska",
    "Nevada",
    "Ohio",
    "Oklahoma",
    "Oregon",
    "Pennsylvania",
    "Tennessee",
    "Texas",
    "Utah",
    "Vermont",
    "Wisconsin",
    "Wyoming",
    "Germany",
    "France",
    "Spain",
    "Italy",
    "Portugal",
    "Netherlands",
    "Belgium",
    "Switzerland",
    "Austria",
    "Poland",
    "Sweden",
    "Norway",
    "Denmark",
    "Finland",
    "Ireland",
    "Scotland",
    "England",
    "Wales",
    "Canada",
    "Mexico",
    "Brazil",
    "Argentina",
    "Chile",
    "Peru",
    "Colombia",
    "India",
    "Pakistan",
    "Bangladesh",
    "Japan",
    "Korea",
    "Vietnam",
    "Thailand",
    "Indonesia",
    "Philippines",
    "Australia",
    "Zealand",
    "Nigeria",
    "Kenya",
    "Egypt",
    "Morocco",
    "Israel",
    "Turkey",
    "Greece",
    "Russia",
    "Ukraine",
    "Romania",
    "Hungary",
    "London",
    "Paris",
    "Berlin",
    "Madrid",
    "Rome",
    "Amsterdam",
    "Tokyo",
    "Beijing",
    "Shanghai",
    "Mumbai",
    "Delhi",
    "Sydney",
    "Toronto",
    "Chicago",
    "Boston",
    "Seattle",
    "Manchester",
    "Munich",
    "Hamburg",
    "Vienna",
    "Prague",
    "Warsaw",
    "Dublin",
];

const PREPOSITIONS: &[&str] = &[
    "in", "to", "from", "at", "near", "of", "via", "visiting", "leaving", "around", "outside",
];
const PLACE_PREFIXES: &[&str] = &[
    "North", "South", "East", "West", "New", "Lake", "Port", "Fort", "Mount", "Saint", "St.", "San", "Santa", "Los",
    "Las", "El", "Little", "Great", "Upper", "Lower",
];
const PLACE_SUFFIXES: &[&str] = &[
    "ton", "ville", "burgh", "borough", "berg", "bury", "chester", "furt", "haven", "land", "mouth", "port", "shire",
    "side", "stad", "town", "view", "field", "ford", "ham", "dale", "wood", "fort", "stadt", "heim", "polis", "burg",
];

/// A word of the text: byte span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word {
    pub(super) s: usize,
    pub(super) e: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphabetic() || b >= 0x80 || b == b'\''
}

/// A text's words, and the text as UTF-8 when it is: then a word's text is a slice of it,
/// not checked again (each word is read several times, and checking each alone cost more
/// than finding the names).
#[derive(Debug, Default)]
pub(crate) struct Words<'t> {
    list: Vec<Word>,
    bytes: &'t [u8],
    text: Option<&'t str>,
}

impl std::ops::Deref for Words<'_> {
    type Target = [Word];

    fn deref(&self) -> &[Word] {
        &self.list
    }
}

impl<'t> Words<'t> {
    /// The text of `w`; empty if it is not UTF-8. Words start and end on character
    /// boundaries of a UTF-8 text (every byte of a multi-byte character is a word byte), so
    /// the slice is the word as checked alone.
    pub(super) fn str(&self, w: Word) -> &'t str {
        match self.text {
            Some(text) => text.get(w.s..w.e).unwrap_or(""),
            None => self
                .bytes
                .get(w.s..w.e)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
        }
    }
}

pub(crate) fn words_of(text: &[u8]) -> Words<'_> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_alphabetic() || text[i] >= 0x80 {
            let s = i;
            while i < text.len()
                && (is_word_byte(text[i]) || (text[i] == b'-' && text.get(i + 1).is_some_and(u8::is_ascii_alphabetic)))
            {
                i += 1;
            }
            // a closing quote is no part of the word (`user_name='Alan Turing'`)
            let mut e = i;
            while e > s + 1 && text[e - 1] == b'\'' {
                e -= 1;
            }
            out.push(Word { s, e });
        } else {
            i += 1;
        }
    }
    Words {
        list: out,
        bytes: text,
        text: std::str::from_utf8(text).ok(),
    }
}

/// `Capitalized`: an upper-case letter, then at least one lower-case letter (`Müller`,
/// `Élodie`, `Ölçer`).
pub(super) fn capitalized(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
}

/// Whether only "sep" (one space, or ". " after an initial) stands between two words.
pub(super) fn joined(text: &[u8], a: Word, b: Word) -> bool {
    let gap = &text[a.e..b.s];
    gap == b" " || (a.e - a.s == 1 && gap == b". ")
}

fn preceded_by(text: &[u8], words: &Words<'_>, i: usize, set: &[&str]) -> bool {
    i > 0 && {
        let p = words.str(words[i - 1]).to_ascii_lowercase();
        set.contains(&p.as_str()) && text[words[i - 1].e..words[i].s].iter().all(|&b| b == b' ')
    }
}

pub(crate) struct LocationRecognizer {
    meta: Meta,
}

impl LocationRecognizer {
    pub(crate) fn new() -> Self {
        Self {
            meta: Meta::new(
                "LOCATION",
                Tier::Language,
                words(&[
                    "city", "town", "lives", "moved", "born", "located", "country", "state", "village",
                ]),
            ),
        }
    }
}

impl Recognizer for LocationRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, text: &[u8], out: &mut Vec<Hit>) {
        self.find_with_words(text, &words_of(text), &Fields::default(), out);
    }

    fn uses_words(&self) -> bool {
        true
    }

    fn find_with_words(&self, text: &[u8], ws: &Words<'_>, _fields: &Fields<'_>, out: &mut Vec<Hit>) {
        let mut i = 0;
        while i < ws.len() {
            let t = ws.str(ws[i]);
            if !capitalized(t) {
                i += 1;
                continue;
            }
            let after_prep = preceded_by(text, ws, i, PREPOSITIONS);
            // dictionary: the longest place that starts with this word
            let mut hit: Option<(usize, f32, &'static str)> = None;
            if let Some(cands) = PLACES.get(t) {
                for cand in cands {
                    let n = cand.len();
                    if i + n <= ws.len()
                        && (0..n)
                            .all(|k| ws.str(ws[i + k]) == cand[k] && (k == 0 || joined(text, ws[i + k - 1], ws[i + k])))
                    {
                        let anchor = COUNTRIES_AND_STATES.contains(t) && n == 1;
                        let score = if n > 1 || anchor || after_prep { 0.6 } else { 0.0 };
                        if score > 0.0 {
                            hit = Some((i + n - 1, score, "places"));
                        }
                        break;
                    }
                }
            }
            // shape: toponymic prefix + capitalized word, or a word with a toponymic suffix
            if hit.is_none() {
                let next_cap = i + 1 < ws.len() && joined(text, ws[i], ws[i + 1]) && capitalized(ws.str(ws[i + 1]));
                if PLACE_PREFIXES.contains(&t) && next_cap && after_prep {
                    hit = Some((i + 1, 0.5, "place_prefix"));
                } else if after_prep && PLACE_SUFFIXES.iter().any(|s| t.len() >= s.len() + 3 && t.ends_with(s)) {
                    hit = Some((i, 0.4, "place_suffix"));
                }
            }
            match hit {
                Some((end, score, why)) => {
                    let kind = if why == "places" {
                        EvidenceKind::Dictionary
                    } else {
                        EvidenceKind::Pattern
                    };
                    let mut evidence = vec![Evidence::new(kind, why)];
                    if after_prep {
                        evidence.push(Evidence::new(
                            EvidenceKind::Context,
                            ws.str(ws[i - 1]).to_ascii_lowercase(),
                        ));
                    }
                    out.push(Hit::new(ws[i].s, ws[end].e, score, evidence));
                    i = end + 1;
                }
                None => i += 1,
            }
        }
    }
}

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const TIME_PREPOSITIONS: &[&str] = &[
    "in", "on", "since", "until", "till", "by", "during", "of", "from", "through", "last", "next", "early", "late",
    "mid",
];

/// DATE_TIME for a month named alone after a time preposition (`in May`, `since March`);
/// dates with digits are found by the identifier patterns.
pub(crate) struct MonthRecognizer {
    meta: Meta,
}

impl MonthRecognizer {
    pub(crate) fn new() -> Self {
        Self {
            meta: Meta::new(
                "DATE_TIME",
                Tier::Language,
                words(&["date", "month", "born", "birthday", "since"]),
            ),
        }
    }
}

impl Recognizer for MonthRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, text: &[u8], out: &mut Vec<Hit>) {
        self.find_with_words(text, &words_of(text), &Fields::default(), out);
    }

    fn uses_words(&self) -> bool {
        true
    }

    fn find_with_words(&self, text: &[u8], ws: &Words<'_>, _fields: &Fields<'_>, out: &mut Vec<Hit>) {
        for i in 1..ws.len() {
            // bytes, not text: a month name is ASCII, and most words are none (checking each
            // for UTF-8 first cost more than the rest of the search)
            let t = &text[ws[i].s..ws[i].e];
            if !MONTHS.iter().any(|m| m.as_bytes() == t) {
                continue;
            }
            let digit_follows = text[ws[i].e..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(u8::is_ascii_digit);
            if !digit_follows && preceded_by(text, ws, i, TIME_PREPOSITIONS) {
                out.push(Hit::new(
                    ws[i].s,
                    ws[i].e,
                    0.3,
                    vec![Evidence::new(EvidenceKind::Pattern, "month_name")],
                ));
            }
        }
    }
}

/// Postal addresses: a house number, street words, an optional unit, a town, and a US state
/// code with a ZIP code; or a house number and street with a street-type word.
pub(crate) struct AddressRecognizer {
    meta: Meta,
    full: Regex,
    street: Regex,
}

impl AddressRecognizer {
    pub(crate) fn new() -> Result<Self> {
        let word = "[A-Z][A-Za-z]+";
        let full = format!(
            r"(?-u)\b(?:[0-9]{{1,6}}(?: {word}){{1,4}}\.?(?: (?:Apt\.?|Suite|Unit|#) ?[0-9A-Z]+)?|(?:PSC [0-9]{{4}}, Box [0-9]{{4}}|USNS {word}|USS {word}|Unit [0-9]{{4}} Box [0-9]{{4}}))(?:,? |,?\r?\n)(?:{word} ){{0,3}}{word}\.?,? [A-Z]{{2}} [0-9]{{5}}(?:-[0-9]{{4}})?\b"
        );
        let street = format!(
            r"(?-u)\b[0-9]{{1,6}}(?: {word}){{1,3}} (?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Circle|Highway|Hwy|Parkway|Pkwy|Square|Sq|Straße|Strasse|Close|Crescent)\b\.?"
        );
        let compile = |re: &str| {
            Regex::new(re).map_err(|e| Error::Pattern {
                entity: "ADDRESS".into(),
                message: e.to_string(),
            })
        };
        Ok(Self {
            full: compile(&full)?,
            street: compile(&street)?,
            meta: Meta::new(
                "ADDRESS",
                Tier::Language,
                words(&[
                    "address",
                    "ship",
                    "lives",
                    "live",
                    "mail",
                    "street",
                    "deliver",
                    "located",
                    "residence",
                ]),
            ),
        })
    }
}

impl Recognizer for AddressRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, text: &[u8], out: &mut Vec<Hit>) {
        let mut last_end = 0;
        for m in self.full.find_iter(text) {
            out.push(Hit::new(
                m.start(),
                m.end(),
                0.85,
                vec![Evidence::new(EvidenceKind::Pattern, "postal_address")],
            ));
            last_end = m.end();
        }
        for m in self.street.find_iter(text) {
            if m.start() >= last_end || !out.iter().any(|h| h.start <= m.start() && m.end() <= h.end) {
                out.push(Hit::new(
                    m.start(),
                    m.end(),
                    0.5,
                    vec![Evidence::new(EvidenceKind::Pattern, "street_address")],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// A word read as a slice of the whole text is the word checked alone, in UTF-8 text
        /// and in text that is not (a stray byte, a character cut short).
        #[test]
        fn a_words_text_is_the_word_checked_alone(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    &b"Anna"[..], b" ", b"-", b"'", b"M\xc3\xbcller", b"\xc3", b"\xbc", b"\xff",
                    b"\xe6\x9d\x8e", b"x", b"1", b".", b"O'Neil",
                ]),
                0..30,
            )
        ) {
            let text = pieces.concat();
            let words = words_of(&text);
            for &w in words.iter() {
                let alone = std::str::from_utf8(&text[w.s..w.e]).unwrap_or("");
                proptest::prop_assert_eq!(words.str(w), alone);
            }
        }
    }

    fn run(r: &dyn Recognizer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        r.find(text.as_bytes(), &mut out);
        out.iter().map(|h| text[h.start..h.end].to_owned()).collect()
    }

    #[test]
    fn places() {
        let r = LocationRecognizer::new();
        assert_eq!(run(&r, "she moved to New York last year"), vec!["New York"]);
        assert_eq!(
            run(&r, "moved to Lake Jennifer and then to Smithborough"),
            vec!["Lake Jennifer", "Smithborough"]
        );
        assert!(run(&r, "Reading is fun").is_empty());
    }

    #[test]
    fn addresses() -> Result<()> {
        let r = AddressRecognizer::new()?;
        assert_eq!(
            run(
                &r,
                "Ship to 0474 Bradley Hills Apt. 585, North Gregorychester, WA 24937 today"
            ),
            vec!["0474 Bradley Hills Apt. 585, North Gregorychester, WA 24937"]
        );
        assert_eq!(run(&r, "at 12 Baker Street."), vec!["12 Baker Street."]);
        Ok(())
    }
}
