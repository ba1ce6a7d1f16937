//! Recognizers whose candidates need more than one regular expression: card numbers in
//! groups, IBANs in print form, and phone numbers checked against the national number plans.

use std::sync::{Arc, LazyLock};

use super::phone_plan;
use super::{Boundary, Hit, Meta, Recognizer, Tier, bounded, next_start, word_after, word_before, words};
use crate::error::{Error, Result};
use crate::finding::{Evidence, EvidenceKind};
#[cfg(test)]
use crate::re::Re;
use crate::validate;

/// Card numbers: runs of digit groups; every window of whole groups with one separator and
/// 12-19 digits is tried, longest first, against the issuer ranges and Luhn.
pub(crate) struct CardRecognizer {
    meta: Meta,
}

/// The first run of digit groups (`[0-9]+(?:[ -][0-9]+)*`) at or after `pos`: a loop, not
/// a regular expression, since on text dense with numbers a search stopped at every one.
fn digit_group_run(hay: &[u8], pos: usize) -> Option<(usize, usize)> {
    let s = pos + hay.get(pos..)?.iter().position(u8::is_ascii_digit)?;
    let mut i = s;
    while i < hay.len() {
        if hay[i].is_ascii_digit() {
            i += 1;
        } else if matches!(hay[i], b' ' | b'-') && hay.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 2;
        } else {
            break;
        }
    }
    Some((s, i))
}

/// The digit groups from `at` (a group's start in the run of groups ending at `me`) that
/// hold at most 19 digits in all (a card's most): (start, end) of each, none if the first
/// holds more.
fn groups_of_a_card(hay: &[u8], at: usize, me: usize) -> smallvec::SmallVec<[(usize, usize); 19]> {
    let mut groups = smallvec::SmallVec::new();
    let mut total = 0;
    let mut i = at;
    while i < me {
        let s = i;
        while i < me && hay[i].is_ascii_digit() {
            i += 1;
        }
        total += i - s;
        if total > 19 {
            break;
        }
        groups.push((s, i));
        i += 1; // the separator
    }
    groups
}

impl CardRecognizer {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            // Card and payment words: outside the issuers' ranges a Luhn-valid number is a
            // card only beside one of these.
            meta: Meta::new(
                "CREDIT_CARD",
                Tier::Identifier,
                words(&[
                    // English
                    "credit",
                    "card",
                    "visa",
                    "mastercard",
                    "cc",
                    "amex",
                    "discover",
                    "jcb",
                    "diners",
                    "maestro",
                    "debit",
                    "payment",
                    "pay",
                    "paid",
                    "charge",
                    "charged",
                    "checkout",
                    "cardholder",
                    // German
                    "karte",
                    "kreditkarte",
                    "kartennummer",
                    "zahlung",
                    "bezahlt",
                    "bezahlung",
                    "belastet",
                    // French
                    "carte",
                    "paiement",
                    "payé",
                    "débit",
                    // Spanish
                    "tarjeta",
                    "pago",
                    "pagado",
                    "cobro",
                    // Italian
                    "carta",
                    "pagamento",
                    "pagato",
                    "addebito",
                    // Dutch
                    "kaart",
                    "kaartnummer",
                    "betaling",
                    "betaald",
                    "creditcard",
                ]),
            )
            .vetoed_by_labels()
            .unless_named_near()
            // a Luhn-valid 15-digit French NIR or a 12-digit Aadhaar after its name
            .not_after(&crate::context::IDENTIFIER_NAME_SET),
        })
    }
}

/// A card's evidence, made once (not once per card found).
static CARD_EVIDENCE: LazyLock<[Arc<str>; 3]> =
    LazyLock::new(|| ["card_number", "luhn", "issuer_range"].map(Arc::from));

impl Recognizer for CardRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.find_plain(hay, out);
    }

    fn reads_separators_in_ascii(&self) -> bool {
        true
    }
}

/// IBANs, compact (`DE89370400440532013000`) or printed in groups of four separated by one
/// space or dash; checked against the SWIFT registry's country formats and mod 97.
pub(crate) struct IbanRecognizer {
    meta: Meta,
}

impl CardRecognizer {
    /// The hits of `hay` once its no-break spaces are written as spaces.
    fn find_plain(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut pos = 0;
        while let Some((ms, me)) = digit_group_run(hay, pos) {
            pos = me.max(ms + 1);
            if me - ms < 12 {
                continue;
            }
            // a card has 12 digits at least
            if hay[ms..me].iter().filter(|b| b.is_ascii_digit()).count() < 12 {
                continue;
            }
            // from each group in turn, the groups of at most 19 digits in all that follow it
            // (a run can be megabytes of digits: its groups are never listed whole)
            let mut at = Some(ms);
            while let Some(a) = at {
                let groups = groups_of_a_card(hay, a, me);
                let mut found = None;
                // the longest end first, never past it
                let mut b = groups.len();
                while b > 0 {
                    let (s, e) = (groups[0].0, groups[b - 1].1);
                    let digits: usize = groups[..b].iter().map(|(x, y)| y - x).sum();
                    let first_sep = hay.get(groups[0].1).copied();
                    let one_sep = groups[..b - 1].iter().all(|g| hay.get(g.1).copied() == first_sep);
                    let split_ok = (s == ms || hay[s - 1] == b' ') && (e == me || hay.get(e) == Some(&b' '));
                    if (12..=19).contains(&digits)
                        && one_sep
                        && split_ok
                        && bounded(hay, s, e, Boundary::Number)
                        && validate::luhn(&hay[s..e])
                    {
                        let issued = validate::card_iin(&hay[s..e]);
                        // outside the known ranges only a card's shape: 16 digits from 3-6,
                        // or digits grouped as cards print them (reported only beside a
                        // payment word, below)
                        let first = hay[s..e].iter().find(|c| c.is_ascii_digit()).copied().unwrap_or(b'0');
                        // (groups, if any, as cards print them: `609 940 259 490`, a list of
                        // single digits `5 6 8 9 1 2 …` are none)
                        let grouped_as_a_card = card_grouping(&groups[..b]);
                        let alone = b == 1;
                        if grouped_as_a_card || (alone && (issued || (digits == 16 && (b'3'..=b'6').contains(&first))))
                        {
                            found = Some((s, e, issued));
                            break;
                        }
                    }
                    b -= 1;
                }
                match found {
                    Some((s, e, issued)) => {
                        // Luhn alone passes one number in ten: outside the issuers' ranges it
                        // takes a context word (`card`) to be reported
                        let [number, luhn, range] = &*CARD_EVIDENCE;
                        let mut evidence = Vec::with_capacity(3);
                        evidence.push(Evidence::new(EvidenceKind::Pattern, number.clone()));
                        evidence.push(Evidence::new(EvidenceKind::Checksum, luhn.clone()));
                        if issued {
                            evidence.push(Evidence::new(EvidenceKind::Checksum, range.clone()));
                        }
                        out.push(Hit::new(s, e, if issued { 1.0 } else { 0.2 }, evidence));
                        // the next group
                        at = (e < me).then_some(e + 1);
                    }
                    None => {
                        let first_end = a + hay[a..me].iter().take_while(|b| b.is_ascii_digit()).count();
                        at = (first_end < me).then_some(first_end + 1);
                    }
                }
            }
        }
    }
}

/// Whether digit groups are laid out as cards print their numbers: fours with a last group
/// of one to four (`9988 7766 5544 3325`, `6759 6498 2643 8453 210`), or the 4-6-5 and
/// 4-6-4 of American Express and Diners. One group (digits written together) is not.
fn card_grouping(groups: &[(usize, usize)]) -> bool {
    let lens: smallvec::SmallVec<[usize; 19]> = groups.iter().map(|(s, e)| e - s).collect();
    match &lens[..] {
        [4, 6, 5] | [4, 6, 4] => true,
        [first, .., last] => *first == 4 && lens[1..lens.len() - 1].iter().all(|&n| n == 4) && (1..=4).contains(last),
        _ => false,
    }
}

/// Where an IBAN can start: a country code and check digits.
#[cfg(test)]
const IBAN_START: &str = r"(?-u)(?:[A-Z]{2}|[a-z]{2})[0-9]{2}";

/// The first place at or after `pos` that [`IBAN_START`] matches, found by hand (a regex
/// search stopped at every candidate and started again: a few percent of a dense scan). A
/// byte that is no digit rules out the two starts it would be a digit of, and one that is
/// neither a letter nor a digit the four it would be in: the search steps over them.
fn iban_start(hay: &[u8], pos: usize) -> Option<usize> {
    let letter = |b: u8| (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = |b: u8| b.wrapping_sub(b'0') < 10;
    let mut i = pos;
    while let Some(&last) = hay.get(i + 3) {
        if !digit(last) {
            i += if letter(last) { 2 } else { 4 };
            continue;
        }
        let (a, b) = (hay[i], hay[i + 1]);
        if digit(hay[i + 2]) && letter(a) && letter(b) && (a ^ b) & 0x20 == 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// An IBAN's evidence, made once.
static IBAN_EVIDENCE: LazyLock<[Arc<str>; 2]> = LazyLock::new(|| ["iban", "iban_mod97"].map(Arc::from));

impl IbanRecognizer {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            meta: Meta::new(
                "IBAN_CODE",
                Tier::Identifier,
                words(&["iban", "bank", "transaction", "account", "transfer", "wire"]),
            ),
        })
    }
}

fn alnum_run(hay: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < hay.len() && hay[i].is_ascii_alphanumeric() {
        i += 1;
    }
    i
}

impl Recognizer for IbanRecognizer {
    fn needs_neighbors(&self) -> bool {
        true
    }

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.find_plain(hay, out);
    }

    fn reads_separators_in_ascii(&self) -> bool {
        true
    }
}

/// Phone numbers: a shape, then the number plan of the country (libphonenumber's metadata):
/// international numbers (`+`, `00`) by their country code, national ones against each of
/// the configured regions (default US, GB, DE, FR, IN, IL, CA, BR).
pub(crate) struct PhoneRecognizer {
    meta: Meta,
    regions: Vec<&'static phone_plan::Plan>,
}

impl IbanRecognizer {
    /// The hits of `hay` once its no-break spaces are written as spaces.
    fn find_plain(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut pos = 0;
        while let Some(s) = iban_start(hay, pos) {
            pos = next_start(hay, s, Boundary::Word);
            if word_before(hay, s) {
                continue;
            }
            let first = alnum_run(hay, s);
            let mut ends: smallvec::SmallVec<[usize; 9]> = smallvec::smallvec![first];
            if first - s == 4
                && let Some(&sep) = hay.get(first).filter(|&&b| b == b' ' || b == b'-')
            {
                let mut at = first;
                // an IBAN has at most 34 characters: 8 more groups after the first
                while hay.get(at) == Some(&sep) && ends.len() < 9 {
                    let g = alnum_run(hay, at + 1);
                    let len = g - (at + 1);
                    if len == 0 || len > 4 {
                        break;
                    }
                    ends.push(g);
                    if len < 4 {
                        break;
                    }
                    at = g;
                }
            }
            for &e in ends.iter().rev() {
                if e - s < 15 || word_after(hay, e) {
                    continue;
                }
                if validate::iban(&hay[s..e]) {
                    // written in lower case, by hand: the checksum holds, the shape is less
                    // sure (a lower-case code of a log)
                    let score = if hay[s].is_ascii_lowercase() { 0.85 } else { 1.0 };
                    out.push(Hit::new(
                        s,
                        e,
                        score,
                        vec![
                            Evidence::new(EvidenceKind::Pattern, IBAN_EVIDENCE[0].clone()),
                            Evidence::new(EvidenceKind::Checksum, IBAN_EVIDENCE[1].clone()),
                        ],
                    ));
                    pos = e;
                    break;
                }
            }
        }
    }
}

/// The shape of a phone number as the regular expression [`PHONE_SHAPE`] says it, found by
/// hand: that search, run over text dense with numbers, stopped at every one and searched
/// backwards for its start, and was most of a phone scan's time.
#[cfg(test)]
const PHONE_SHAPE: &str = r"(?-u)(?:\+ ?)?\(?[0-9][0-9 ()./-]{5,24}[0-9](?i:(?:x|ext\.?|extension|#|poste|Durchwahl|DW|int\.?|interno|toestel) ?[0-9]{1,6}| (?:x|ext\.?|extension|#|poste|Durchwahl|DW|int\.?|interno|toestel)[0-9]{1,6}| [x#] [0-9]{1,6}| (?:ext\.?|extension|poste|Durchwahl|DW|int\.?|interno|toestel) [0-9]{1,6})?";

/// Extension words, in the order the shape tries them.
const EXTENSION_WORDS: &[&[u8]] = &[
    b"x",
    b"ext.",
    b"ext",
    b"extension",
    b"#",
    b"poste",
    b"Durchwahl",
    b"DW",
    b"int.",
    b"int",
    b"interno",
    b"toestel",
];

/// The leftmost phone shape at or after `pos` ([`PHONE_SHAPE`]'s leftmost-first match).
fn phone_shape(hay: &[u8], pos: usize) -> Option<(usize, usize)> {
    let body = |b: u8| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'.' | b'/' | b'-');
    let at = |i: usize| hay.get(i).copied();
    let mut s = pos;
    while s < hay.len() {
        let b = hay[s];
        if !(b.is_ascii_digit() || b == b'+' || b == b'(') {
            s += 1;
            continue;
        }
        let mut p = s;
        if at(p) == Some(b'+') {
            p += 1;
            if at(p) == Some(b' ') {
                p += 1;
            }
        }
        if at(p) == Some(b'(') {
            p += 1;
        }
        if !at(p).is_some_and(|b| b.is_ascii_digit()) {
            s += 1;
            continue;
        }
        // [0-9 ()./-]{5,24} then a digit: the longest such body
        let from = p + 1;
        let mut run = 0;
        while run < 25 && at(from + run).is_some_and(body) {
            run += 1;
        }
        let Some(k) = (5..run.min(25)).rev().find(|&k| hay[from + k].is_ascii_digit()) else {
            s += 1;
            continue;
        };
        let end = from + k + 1;
        return Some((s, extension_end(hay, end).unwrap_or(end)));
    }
    None
}

/// The end of an extension starting at `e`, if one does: written close to the number, glued
/// to it or to its digits (`x12`, ` ext.77`, `2671ext. 77`), or a word of one character
/// between spaces (` x 12`, ` # 12`). A word standing apart (` ext. 123`, ` poste 4`,
/// ` Durchwahl 12`) only when nothing after its digits could go on with a number
/// (`ext. 123 please`, `ext. 123.`): what follows such a word is as often another number
/// (`ext. 77 34`), and an extension of more than six digits or glued to more (`ext. 77a`)
/// would cost the number itself; those are left out of the span, the number found without
/// them. ([`PHONE_SHAPE`] says all but that last rule, which no regular expression without
/// look-ahead can.)
fn extension_end(hay: &[u8], e: usize) -> Option<usize> {
    let spaced_before = hay.get(e) == Some(&b' ');
    let p = e + usize::from(spaced_before);
    EXTENSION_WORDS.iter().find_map(|w| {
        let mut q = p + w.len();
        if !hay.get(p..q).is_some_and(|h| h.eq_ignore_ascii_case(w)) {
            return None;
        }
        let spaced_after = hay.get(q) == Some(&b' ');
        q += usize::from(spaced_after);
        let digits = hay.get(q..)?.iter().take(6).take_while(|b| b.is_ascii_digit()).count();
        if spaced_before && spaced_after && w.len() > 1 {
            let ends = nothing_goes_on(hay.get(q + digits..).unwrap_or_default());
            return (digits > 0 && ends).then_some(q + digits);
        }
        (digits > 0).then_some(q + digits)
    })
}

/// Whether `rest`, the text after an extension's digits, cannot go on with them: its end, or
/// a byte that is no letter or digit and not a separator before a digit (`. `, `,`, `)`).
fn nothing_goes_on(rest: &[u8]) -> bool {
    match rest {
        [] => true,
        [b, rest @ ..] => {
            let separator_before_digit =
                matches!(b, b' ' | b'-' | b'.' | b'/') && rest.first().is_some_and(u8::is_ascii_digit);
            !(b.is_ascii_alphanumeric() || separator_before_digit)
        }
    }
}

pub const DEFAULT_PHONE_REGIONS: &[&str] = &["US", "GB", "DE", "FR", "IT", "NL", "IN", "IL", "CA", "BR"];

impl PhoneRecognizer {
    pub(crate) fn new(regions: &[String]) -> Result<Self> {
        let mut plans = Vec::new();
        for r in regions {
            let id = r.to_ascii_uppercase();
            let plan = phone_plan::plan(&id).ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown phone region `{r}` (use ISO 3166 codes such as US, GB)"
                ))
            })?;
            plans.push(plan);
        }
        Ok(Self {
            regions: plans,
            meta: Meta::new(
                "PHONE_NUMBER",
                Tier::Identifier,
                words(&[
                    // English
                    "phone",
                    "telephone",
                    "tel",
                    "cell",
                    "cellphone",
                    "mobile",
                    "call",
                    "called",
                    "fax",
                    "reach",
                    "reached",
                    "dial",
                    "contact",
                    "callback",
                    "whatsapp",
                    "msisdn",
                    // German
                    "telefon",
                    "telefonnummer",
                    "rufnummer",
                    "handy",
                    "handynummer",
                    "mobil",
                    "mobilnummer",
                    "festnetz",
                    "anrufen",
                    "erreichbar",
                    "rückruf",
                    "durchwahl",
                    "anruf",
                    // French
                    "téléphone",
                    "tél",
                    "portable",
                    "mobile",
                    "appeler",
                    "contacter",
                    "appelez",
                    "joindre",
                    "fixe",
                    // Spanish
                    "teléfono",
                    "telefono",
                    "móvil",
                    "movil",
                    "celular",
                    "llamar",
                    "contactar",
                    "llame",
                    "llámenos",
                    "llámame",
                    // Italian
                    "cellulare",
                    "chiamare",
                    "chiami",
                    "chiamami",
                    "chiamaci",
                    "contattare",
                    "numero",
                    // Portuguese (Brazil is among the default regions)
                    "telefone",
                    "contato",
                    "ligar",
                    "ligue",
                    // Dutch
                    "telefoon",
                    "telefoonnummer",
                    "mobiel",
                    "bellen",
                    "gsm",
                ]),
            )
            .vetoed_by_labels()
            .not_after(&crate::context::IDENTIFIER_NAME_SET),
        })
    }

    /// The region whose plan holds `candidate` (its digits and punctuation), if any, and
    /// whether the number is valid there (in a shape of its own, or one that other numbers
    /// share) or only of a possible length (an unassigned or reserved range, written as
    /// numbers are).
    fn judge(&self, candidate: &[u8]) -> Option<(&'static str, Plan)> {
        let (region, plan) = self.plan_of(candidate)?;
        // a Brazilian area code in parentheses is a shape many other numbers have
        // (`(12) 3456-7890 items`): valid, but wanting a context word as bare digits do
        let br_parens = region == "BR" && candidate.first() == Some(&b'(') && !candidate.starts_with(b"(0");
        Some((
            region,
            if plan == Plan::Valid && br_parens {
                Plan::ValidAsBare
            } else {
                plan
            },
        ))
    }

    /// [`Self::judge`]'s region and plan, before the way the number is written weighs in.
    fn plan_of(&self, candidate: &[u8]) -> Option<(&'static str, Plan)> {
        // `+44 (0)116 ...`: the trunk prefix in parentheses is not dialled from abroad
        let trunk = if candidate.first() == Some(&b'+') {
            candidate.windows(3).position(|w| w == b"(0)").map(|i| i + 1)
        } else {
            None
        };
        // at most 15 digits (E.164), gathered without allocating: this runs for every
        // candidate of text dense with numbers
        let mut buf = [0u8; 15];
        let mut len = 0;
        for (i, &b) in candidate.iter().enumerate() {
            if b.is_ascii_digit() && Some(i) != trunk {
                *buf.get_mut(len)? = b;
                len += 1;
            }
        }
        if len < 7 {
            return None;
        }
        let digits = std::str::from_utf8(&buf[..len]).ok()?;
        let international = if candidate.first() == Some(&b'+') {
            Some(digits)
        } else {
            digits.strip_prefix("00")
        };
        if let Some(digits) = international {
            return phone_plan::international(digits)
                .map(|r| (r, Plan::Valid))
                .or_else(|| phone_plan::international_possible(digits).map(|r| (r, Plan::Possible)));
        }
        let mut nanp_reader = false;
        for p in &self.regions {
            if p.is_valid_national(digits) {
                return Some((p.region.as_str(), Plan::Valid));
            }
            nanp_reader |= p.country_code() == 1;
        }
        if let Some(p) = self.regions.iter().find(|p| p.is_possible_national(digits)) {
            return Some((p.region.as_str(), Plan::Possible));
        }
        // Brazilians write the area code in parentheses and no trunk prefix: `(11) 2382-5540`
        if matches!(candidate, [b'(', b'1'..=b'9', b'1'..=b'9', b')', ..])
            && let Some(p) = self
                .regions
                .iter()
                .find(|p| p.country_code() == 55 && p.is_valid(digits))
        {
            return Some((p.region.as_str(), Plan::Valid));
        }
        // The NANP spans 25 countries (+1 284 is the British Virgin Islands) and a US or
        // Canadian reader writes them all alike. Every NANP number is NXX-NXX-XXXX (N: 2-9):
        // anything else is refused before the plans are consulted.
        let national = match digits.len() {
            10 => digits,
            11 if digits.starts_with('1') => &digits[1..],
            _ => return None,
        };
        let b = national.as_bytes();
        if nanp_reader && b[0] >= b'2' && b[3] >= b'2' {
            let mut with_code = [b'1'; 11];
            with_code[1..].copy_from_slice(b);
            let with_code = std::str::from_utf8(&with_code).ok()?;
            return Some(match phone_plan::international(with_code) {
                Some(region) => (region, Plan::Valid),
                None => ("US", Plan::Possible),
            });
        }
        None
    }
}

/// How a number fits its country's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// In an assigned range.
    Valid,
    /// In an assigned range, but written in a shape other numbers share: scored as bare
    /// digits.
    ValidAsBare,
    /// Of a length the plan allows only.
    Possible,
}

/// The first digit group of a number and, when one character only stands between its
/// groups, that character (`38113-47753`, `13.404954`).
fn shape_of(number: &[u8]) -> (&[u8], Option<u8>) {
    let start = number.iter().position(u8::is_ascii_digit).unwrap_or(number.len());
    let len = number[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut separators = number[start + len..].iter().copied().filter(|b| !b.is_ascii_digit());
    let lone = match (separators.next(), separators.next()) {
        (Some(b), None) => Some(b),
        _ => None,
    };
    (&number[start..start + len], lone)
}

/// Whether `number` ending at `e` is an amount written with dots between thousands and a
/// decimal comma after it (`12.345.678,90`, German). Groups of three digits after the
/// first, as amounts are written: a phone number in a CSV row before a column of digits
/// (`881.283.0460,2704 ...`) is no amount.
fn amount_with_decimal_comma(number: &[u8], hay: &[u8], e: usize) -> bool {
    let digits = |g: &[u8]| g.iter().all(u8::is_ascii_digit);
    let mut groups = number.split(|&b| b == b'.');
    let thousands = groups.next().is_some_and(|g| (1..=3).contains(&g.len()) && digits(g))
        && number.contains(&b'.')
        && groups.all(|g| g.len() == 3 && digits(g));
    thousands && hay.get(e) == Some(&b',') && hay.get(e + 1).is_some_and(u8::is_ascii_digit)
}

/// Whether a currency stands right after `[s, e)` or right before it (a space between at
/// most): `€`, `$`, `£`, `¥`, or a code (`EUR`, `USD`, `CHF`, `GBP`).
fn beside_a_currency(text: &[u8], s: usize, e: usize) -> bool {
    const SIGNS: [&str; 4] = ["€", "$", "£", "¥"];
    const CODES: [&[u8]; 4] = [b"EUR", b"USD", b"CHF", b"GBP"];
    let after = text.get(e..).unwrap_or_default();
    let after = after.strip_prefix(b" ").unwrap_or(after);
    let code_after = CODES.iter().any(|c| {
        after.len() >= 3 && after[..3].eq_ignore_ascii_case(c) && !after.get(3).is_some_and(u8::is_ascii_alphanumeric)
    });
    let before = text.get(..s).unwrap_or_default();
    let before = before.strip_suffix(b" ").unwrap_or(before);
    let code_before = CODES.iter().any(|c| {
        before.len() >= 3
            && before[before.len() - 3..].eq_ignore_ascii_case(c)
            && !(before.len() > 3 && before[before.len() - 4].is_ascii_alphanumeric())
    });
    code_after
        || code_before
        || SIGNS
            .iter()
            .any(|sign| after.starts_with(sign.as_bytes()) || before.ends_with(sign.as_bytes()))
}

/// Whether the token at `at` is a date or a time (`2023-04-19T05:07:14Z`, `2023-04-19`,
/// `10:30`, anything with a colon), not the next group of a run of digit groups: a log
/// line's timestamp after a phone number does not make the number part of a longer one.
fn date_or_time_follows(hay: &[u8], at: usize) -> bool {
    let rest = hay.get(at..).unwrap_or_default();
    let token = &rest[..rest
        .iter()
        .position(|&b| crate::lexer::is_space(b))
        .unwrap_or(rest.len())];
    let token = token.strip_suffix(b".").unwrap_or(token);
    token.contains(&b':') || looks_like_date_or_ip(token)
}

/// Whether the digits after the space at `e` are a number of their own, not more groups of
/// `number`: both written in groups joined by dashes, dots or slashes and the space between
/// them (`call 202-555-0143 202-555-0178`, a list), where a longer run of groups is written
/// with one separator throughout (a card's `3511 1648 0652 7107`).
fn another_number_follows(number: &[u8], hay: &[u8], e: usize) -> bool {
    let written_in_groups = |token: &[u8]| {
        !token.contains(&b' ')
            && token.iter().any(|b| matches!(b, b'-' | b'.' | b'/'))
            && token
                .iter()
                .all(|&b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'/' | b'(' | b')' | b'+'))
    };
    let rest = hay.get(e + 1..).unwrap_or_default();
    let next = &rest[..rest
        .iter()
        .position(|&b| !(b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'/')))
        .unwrap_or(rest.len())];
    let next = next.strip_suffix(b".").unwrap_or(next);
    hay.get(e) == Some(&b' ') && written_in_groups(number) && written_in_groups(next)
}

/// Groups of one digit: numbers are written in groups of two or more, bar a country or
/// trunk code (`+33 1 42 68 53 00`); `1 1 1 1 1 1 1` is not a phone number.
fn single_digit_groups(c: &[u8]) -> usize {
    c.split(|b| !b.is_ascii_digit()).filter(|g| g.len() == 1).count()
}

fn looks_like_date_or_ip(c: &[u8]) -> bool {
    // the lengths of the first four digit groups and how many there are, counted in place
    let mut lens = [0usize; 4];
    let mut groups = 0;
    for g in c.split(|b| !b.is_ascii_digit()).filter(|g| !g.is_empty()) {
        if let Some(l) = lens.get_mut(groups) {
            *l = g.len();
        }
        groups += 1;
    }
    let dots = c.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    let ssn_shape = groups == 3 && lens[0] == 3 && lens[1] == 2 && lens[2] == 4;
    ssn_shape
        || (dots && groups == 4 && lens.iter().all(|&l| l <= 3))
        || (groups == 3
            && ((lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2) || (lens[0] <= 2 && lens[1] <= 2 && lens[2] == 4)))
}

/// A phone number's pattern evidence, made once.
static PHONE_EVIDENCE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("phone_number"));

impl Recognizer for PhoneRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.find_plain(hay, out);
    }

    fn reads_separators_in_ascii(&self) -> bool {
        true
    }

    /// An extension after a word standing apart (` ext. 123`, ` Durchwahl 12`): the hot
    /// tokens' buffer the number was found in holds its digits, not the word; nor the
    /// currency that makes digits grouped in thousands an amount (`12 345 678 €`,
    /// `CHF 1 234 567`).
    fn read_in_text(&self, text: &[u8], hit: &mut Hit) -> bool {
        if beside_a_currency(text, hit.start, hit.end) {
            return false;
        }
        if let Some(end) = extension_end(text, hit.end) {
            hit.end = end;
        }
        true
    }
}

impl PhoneRecognizer {
    /// The hits of `hay` once its no-break spaces are written as spaces.
    fn find_plain(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut pos = 0;
        while let Some((s, mut e)) = phone_shape(hay, pos) {
            pos = next_start(hay, s, Boundary::Number);
            // an extension stays in the span but not in the number
            let mut ext_at = hay[s..e].iter().position(|&b| b.is_ascii_alphabetic() || b == b'#');
            // two separators in a row end the number (`... 3147759091. (2021`: a sentence
            // goes on), bar those that numbers are written with
            let two_separators = |w: &[u8]| {
                !w[0].is_ascii_digit()
                    && !w[1].is_ascii_digit()
                    && !matches!(w, b") " | b")-" | b"+ " | b"+(" | b" (" | b" /" | b"/ ")
            };
            if let Some(i) = hay[s..s + ext_at.unwrap_or(e - s)].windows(2).position(two_separators) {
                e = s + i;
                while e > s && !(hay[e - 1].is_ascii_digit() || hay[e - 1] == b')') {
                    e -= 1;
                }
                ext_at = None;
            }
            // the shape ran on into the next token (`020 7946 0018 10:30`, a time): the
            // number ends before it
            if ext_at.is_none()
                && !bounded(hay, s, e, Boundary::Number)
                && let Some(i) = hay[s..e].iter().rposition(|&b| b == b' ')
            {
                e = s + i;
                while e > s && !(hay[e - 1].is_ascii_digit() || hay[e - 1] == b')') {
                    e -= 1;
                }
            }
            let digits_part = &hay[s..s + ext_at.unwrap_or(e - s)];
            if e == s || !bounded(hay, s, e, Boundary::Number) || single_digit_groups(digits_part) > 2 {
                continue;
            }
            let number_end = ext_at.map_or(e, |i| {
                let mut j = s + i;
                while j > s && hay[j - 1] == b' ' {
                    j -= 1;
                }
                j
            });
            let mut end = number_end;
            let mut found = None;
            loop {
                let cand = &hay[s..end];
                if !looks_like_date_or_ip(cand)
                    && let Some(judged) = self.judge(cand)
                {
                    found = Some(judged);
                    break;
                }
                // drop the last space-separated group and try again
                match cand.iter().rposition(|&b| b == b' ') {
                    Some(i) if i > 0 => {
                        end = s + i;
                        while end > s && !hay[end - 1].is_ascii_digit() && hay[end - 1] != b')' {
                            end -= 1;
                        }
                    }
                    _ => break,
                }
            }
            if let Some((region, plan)) = found {
                if end < number_end {
                    e = end;
                }
                // a bare digit string that happens to fit a plan is weaker than a number
                // written the way numbers are (`+`, parentheses, separators); a number of a
                // possible length only is weaker still, and never bare
                let number = &hay[s..e];
                let (first_group, lone_separator) = shape_of(number);
                // a decimal (`13.404954`, `18.785075 s`) or an amount (`362.975.591,42`)
                // (and numbers with a decimal point each, space-separated: `0.456 0.789`,
                // `39.99 129.00`)
                let decimals = number.split(|&b| b == b' ').filter(|t| !t.is_empty()).count() >= 2
                    && number.split(|&b| b == b' ').filter(|t| !t.is_empty()).all(|t| {
                        t.iter().filter(|&&b| b == b'.').count() == 1
                            && t.iter().all(|&b| b == b'.' || b.is_ascii_digit())
                    });
                let decimal = decimals || lone_separator == Some(b'.') || amount_with_decimal_comma(number, hay, e);
                if decimal {
                    pos = e;
                    continue;
                }
                // two groups and one dash, the first of five digits or more and no trunk
                // prefix: a range (`pages 38113-47753`) or a reference as often as a number,
                // so no stronger than bare digits
                let range_like =
                    lone_separator == Some(b'-') && first_group.len() >= 5 && !first_group.starts_with(b"0");
                let formatted = number.iter().any(|b| !b.is_ascii_digit()) && !range_like;
                let grouped = !range_like && number.iter().any(|b| matches!(b, b' ' | b'-' | b'.' | b'(' | b'/'));
                // of a possible length only and dotted in groups no number is written in: a
                // version (`10.0.19586.467`, `1033.9.24.9301`)
                let version = plan == Plan::Possible
                    && number.contains(&b'.')
                    && number.iter().all(|&b| b.is_ascii_digit() || b == b'.')
                    && number.split(|&b| b == b'.').any(|g| g.len() == 1 || g.len() > 4);
                if version {
                    pos = e;
                    continue;
                }
                // bare digits of a possible length only: too weak even beside a context word
                // (`reached at ... Passport number 951109670`), a phone number only in a
                // field named so (`"phone": "4537229742"`, a `Telefon` column)
                let (score, field_only) = match (plan, formatted) {
                    (Plan::Valid, true) => (0.75, false),
                    (Plan::Valid, false) | (Plan::ValidAsBare, _) => (0.35, false),
                    (Plan::Possible, true) if number[0] == b'+' || grouped => (0.5, false),
                    (Plan::Possible, _) => (0.0, true),
                };
                // A number stands alone: not a stretch of a longer run of digit groups
                // (`3511 [1648 0652] 7107`, a card's middle or its first groups).
                let continues = |sep: Option<u8>, digit: Option<u8>| {
                    matches!(sep, Some(b' ' | b'-')) && digit.is_some_and(|d| d.is_ascii_digit())
                };
                if (continues(hay.get(e).copied(), hay.get(e + 1).copied())
                    && !date_or_time_follows(hay, e + 1)
                    && !another_number_follows(number, hay, e))
                    || (plan == Plan::Possible
                        && continues(s.checked_sub(1).map(|i| hay[i]), s.checked_sub(2).map(|i| hay[i])))
                {
                    pos = e;
                    continue;
                }
                let hit = Hit::new(
                    s,
                    e,
                    score,
                    vec![
                        Evidence::new(EvidenceKind::Pattern, PHONE_EVIDENCE.clone()),
                        Evidence::new(
                            EvidenceKind::Checksum,
                            phone_plan::evidence(region, plan != Plan::Possible),
                        ),
                    ],
                );
                out.push(if field_only { hit.under_field_only() } else { hit });
                pos = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &dyn Recognizer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        r.find(text.as_bytes(), &mut out);
        out.iter().map(|h| text[h.start..h.end].to_owned()).collect()
    }

    fn shapes(hay: &[u8], mut next: impl FnMut(&[u8], usize) -> Option<(usize, usize)>) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((s, e)) = next(hay, pos) {
            out.push((s, e));
            pos = s + 1;
        }
        out
    }

    /// [`PHONE_SHAPE`]'s last alternative: an extension after a word standing apart, at the
    /// end of a match.
    const APART_EXTENSION: &str =
        r"(?-u)(?i) (?:ext\.?|extension|poste|Durchwahl|DW|int\.?|interno|toestel) [0-9]{1,6}\z";

    /// [`PHONE_SHAPE`]'s match at or after `p`, without an extension after a word standing
    /// apart when something could go on after it (the rule no regular expression says).
    fn by_spec(re: &Re, apart: &Re, h: &[u8], p: usize) -> Option<(usize, usize)> {
        re.find_at(h, p).map(|(s, e)| match apart.find_at(&h[s..e], 0) {
            Some((a, _)) if !nothing_goes_on(&h[e..]) => (s, s + a),
            _ => (s, e),
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The hand-written search finds what the regular expression finds, start and end.
        #[test]
        fn phone_shape_is_the_regex(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "00", "123", "4567",
                    " ", " ", "(", ")", ".", "/", "-", "+", "#", "a", "x", "ext", ".", "ext. ",
                    "extension", "poste ", "Durchwahl", "DW", "int", "int.", "\n",
                ]),
                0..40,
            )
        ) {
            let text = pieces.concat().into_bytes();
            let re = Re::new(PHONE_SHAPE, false).map_err(proptest::test_runner::TestCaseError::fail)?;
            // an extension after a word standing apart, when something could go on after it,
            // is left out (the rule the regular expression cannot say)
            let apart = Re::new(APART_EXTENSION, false).map_err(proptest::test_runner::TestCaseError::fail)?;
            let by_regex = shapes(&text, |h, p| by_spec(&re, &apart, h, p));
            let by_hand = shapes(&text, phone_shape);
            proptest::prop_assert_eq!(by_regex, by_hand, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The hand-written IBAN start is the regular expression's.
        #[test]
        fn iban_start_is_the_regex(
            text in proptest::collection::vec(
                proptest::sample::select(b"ABZaz09 -\n\xc3\xa9@[`{/:".to_vec()),
                0..200,
            )
        ) {
            let re = Re::new(IBAN_START, false).map_err(proptest::test_runner::TestCaseError::fail)?;
            for pos in 0..=text.len() + 1 {
                let by_regex = re.find_at(&text, pos).map(|(s, _)| s);
                proptest::prop_assert_eq!(by_regex, iban_start(&text, pos), "{:?} at {}", String::from_utf8_lossy(&text), pos);
            }
        }
    }

    /// An IBAN's start is found wherever it falls in the masks' chunks, and from wherever
    /// the search starts.
    #[test]
    fn iban_starts_across_chunks() {
        for filler in 0..200 {
            for start in ["DE89", "de89"] {
                let text = format!("{}{start} x", "a1 ".repeat(filler / 3) + &"-".repeat(filler % 3));
                assert_eq!(iban_start(text.as_bytes(), 0), Some(filler), "{text}");
                assert_eq!(iban_start(text.as_bytes(), filler), Some(filler));
                assert_eq!(iban_start(text.as_bytes(), filler + 1), None);
            }
        }
        assert_eq!(iban_start(b"De89 dE89 D89 DE8", 0), None);
    }

    /// A word standing apart before an extension (` ext. 123`) takes it in when nothing
    /// after could go on with a number.
    #[test]
    fn extensions_after_a_word_standing_apart() {
        for (text, want) in [
            ("415-555-2671 ext. 123", Some("415-555-2671 ext. 123")),
            ("415-555-2671 ext. 123 please", Some("415-555-2671 ext. 123")),
            ("+49 30 12345678 Durchwahl 12.", Some("+49 30 12345678 Durchwahl 12")),
            ("+33 1 42 68 53 00 poste 12\n", Some("+33 1 42 68 53 00 poste 12")),
            ("415-555-2671 ext. 77 34", Some("415-555-2671")),
            ("415-555-2671 ext. 77a", Some("415-555-2671")),
            ("415-555-2671 ext. 1234567", Some("415-555-2671")),
        ] {
            let got = phone_shape(text.as_bytes(), 0).map(|(s, e)| &text[s..e]);
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn phone_shape_with_extensions() -> std::result::Result<(), String> {
        let re = Re::new(PHONE_SHAPE, false)?;
        let apart = Re::new(APART_EXTENSION, false)?;
        for text in [
            "call 206.269.0743x9150 today",
            "tel. +1-780-563-6083 ext.77 or ext 12",
            "+1-780-563-6083 extension 77 34",
            "030 1234567 Durchwahl 12a, 030 1234567 DW12",
            "01 42 68 53 00 poste 4.4",
            "+ 44 (20) 7123 4567 int. 1234567",
            "(558)817-9360x729 #12",
            "1234567890123456789012345678901234",
            "12 34 56 78 90 12 34 56 78 90 12 34 5",
        ] {
            let t = text.as_bytes();
            assert_eq!(
                shapes(t, |h, p| by_spec(&re, &apart, h, p)),
                shapes(t, phone_shape),
                "{text}"
            );
        }
        Ok(())
    }

    #[test]
    fn digit_group_runs() {
        fn runs(t: &str) -> Vec<&str> {
            let mut out = Vec::new();
            let mut pos = 0;
            while let Some((s, e)) = digit_group_run(t.as_bytes(), pos) {
                out.push(&t[s..e]);
                pos = e.max(s + 1);
            }
            out
        }
        assert_eq!(runs("a 12 34-5 -6 x7  8 9-"), ["12 34-5", "6", "7", "8 9"]);
        assert_eq!(runs("4111 1111 1111 1111."), ["4111 1111 1111 1111"]);
        assert!(runs("no digits").is_empty());
    }

    #[test]
    fn cards_in_groups() -> Result<()> {
        let r = CardRecognizer::new()?;
        assert_eq!(
            run(&r, "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881"),
            vec!["4012888888881881", "4012-8888-8888-1881", "4012 8888 8888 1881"]
        );
        assert_eq!(
            run(&r, "2223 0031 2200 3222"),
            vec!["2223 0031 2200 3222"],
            "Mastercard 2-series"
        );
        assert!(run(&r, "4012-8888-8888-1882").is_empty());
        Ok(())
    }

    #[test]
    fn a_card_inside_a_long_run_of_groups() -> Result<()> {
        // one run of 10,004 groups: each group is tried as a card's first, with the groups
        // of at most 19 digits after it
        let r = CardRecognizer::new()?;
        let text = format!("{}4012 8888 8888 1881{}", "1 ".repeat(5000), " 7".repeat(5000));
        let mut out = Vec::new();
        r.find(text.as_bytes(), &mut out);
        let spans: Vec<_> = out.iter().map(|h| (h.start, h.end)).collect();
        assert_eq!(spans, [(10_000, 10_019)]);
        Ok(())
    }

    #[test]
    fn ibans_printed_and_compact() -> Result<()> {
        let r = IbanRecognizer::new()?;
        assert_eq!(
            run(&r, "iban VG96 VPVG 0000 0123 4567 8901 X in"),
            vec!["VG96 VPVG 0000 0123 4567 8901"]
        );
        assert_eq!(run(&r, "DE89370400440532013000,"), vec!["DE89370400440532013000"]);
        assert!(run(&r, "DE89 3704 0044 0532 0130 01").is_empty());
        Ok(())
    }

    #[test]
    fn phones_by_number_plan() -> Result<()> {
        let regions: Vec<String> = DEFAULT_PHONE_REGIONS.iter().map(|s| (*s).to_owned()).collect();
        let r = PhoneRecognizer::new(&regions)?;
        assert_eq!(run(&r, "call (415) 555-0132 now"), vec!["(415) 555-0132"]);
        assert_eq!(run(&r, "+44 20 7123 4567"), vec!["+44 20 7123 4567"]);
        assert_eq!(run(&r, "Berlin 030 1234567"), vec!["030 1234567"]);
        assert_eq!(run(&r, "Paris 01 42 68 53 00"), vec!["01 42 68 53 00"]);
        assert_eq!(run(&r, "Mumbai 98765 43210"), vec!["98765 43210"]);
        // a list of numbers, a space between them; a run of groups with one separator is one
        assert_eq!(
            run(&r, "call 202-555-0143 202-555-0178."),
            vec!["202-555-0143", "202-555-0178"]
        );
        assert_eq!(
            run(&r, "call 202.555.0143 0161-496-0000"),
            vec!["202.555.0143", "0161-496-0000"]
        );
        assert_eq!(run(&r, "card 3511-1648-0652 7107"), Vec::<String>::new());
        assert_eq!(
            run(&r, "ip 192.168.100.100 date 2021-05-21 ssn 078-05-1123"),
            Vec::<String>::new()
        );
        Ok(())
    }
}
