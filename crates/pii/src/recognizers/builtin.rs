//! The built-in recognizers and their patterns, scores and context words. Patterns are
//! ASCII-only (`(?-u)`) so the regex engine's DFA never falls back on non-ASCII text.

use std::sync::Arc;

use super::language::{AddressRecognizer, LocationRecognizer, MonthRecognizer};
use super::network::{IpRecognizer, UrlRecognizer};
use super::numbers::{CardRecognizer, IbanRecognizer, PhoneRecognizer};
use super::person::PersonRecognizer;
use super::spelled_email::SpelledEmailRecognizer;
use super::{Boundary, Check, Meta, Pattern, PatternRecognizer, Recognizer, Tier, words};
use crate::error::{Error, Result};
use crate::re::Re;
use crate::validate;

/// Every built-in entity type, in the order `--list-entities` prints them.
pub const BUILTIN_ENTITIES: &[&str] = &[
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "US_BANK_NUMBER",
    "ABA_ROUTING_NUMBER",
    "UK_NHS",
    "UK_NINO",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "URL",
    "CRYPTO",
    "DATE_TIME",
    "PERSON",
    "LOCATION",
    "ADDRESS",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
    "DE_TAX_ID",
    "DE_PASSPORT",
    "FR_NIR",
    "NL_BSN",
    "BE_NATIONAL_NUMBER",
    "SE_PERSONNUMMER",
    "DK_CPR",
    "IN_AADHAAR",
    "IN_PAN",
    "AU_TFN",
    "AU_ABN",
    "AU_MEDICARE",
    "SG_NRIC_FIN",
    "KR_RRN",
    "UK_PASSPORT",
    "UK_DRIVING_LICENCE",
    "MEDICAL_LICENSE",
];

const MONTH: &str = "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/// The characters of an email's local part in Latin script: RFC 5322's ASCII ones bar `|`,
/// `/`, `?`, `=` and `&` (legal, unseen in people's addresses, and the delimiters of tables
/// written as text and of URLs: `Jo|0361 8225|jo@example.com` is one address, not three
/// cells; in `/orders/SO8995037?email=jo@example.com` and `user=jo@example.com` the address
/// is `jo@example.com`), Latin letters beyond ASCII (`jürgen`), and the apostrophe and
/// middle dot names are written with (`o’brien`, `ana·maria`).
const LATIN_LOCAL: &str = r"[A-Za-z0-9!#$%'*+^_`{}~-]|(?u:[\p{Latin}\x{2019}\x{00B7}])";

/// The first character of a local part in Latin script: a letter or digit. The others are
/// legal there and unseen in people's addresses, but are what text puts around one: Markdown
/// (`**jo@example.com**`, `_jo@example.com_`, `` `jo@example.com` ``), quotes in SQL and code
/// (`('jo@example.com', …)`).
const LATIN_LOCAL_FIRST: &str = r"[A-Za-z0-9]|(?u:\p{Latin})";

/// The other scripts a local part may be written in (RFC 6531), each a class of its own:
/// Chinese and Japanese together (kanji with kana, halfwidth kana, the kana's middle dot and
/// prolonged sound mark), Arabic with its tatweel (`محمـد`). With each, whether its words
/// stand apart, between spaces (not Korean's: their particles are glued to them).
const OTHER_LOCAL: &[(&str, bool)] = &[
    (
        r"\p{Han}\p{Hiragana}\p{Katakana}\x{30FB}\x{30FC}\x{FF66}-\x{FF9F}",
        false,
    ),
    (r"\p{Hangul}", false),
    (r"\p{Greek}", true),
    (r"\p{Cyrillic}", true),
    (r"\p{Armenian}", true),
    (r"\p{Georgian}", true),
    (r"\p{Hebrew}", true),
    (r"\p{Arabic}\x{0640}", true),
    (r"\p{Devanagari}", true),
    (r"\p{Bengali}", true),
    (r"\p{Gurmukhi}", true),
    (r"\p{Gujarati}", true),
    (r"\p{Oriya}", true),
    (r"\p{Tamil}", true),
    (r"\p{Telugu}", true),
    (r"\p{Kannada}", true),
    (r"\p{Malayalam}", true),
    (r"\p{Sinhala}", true),
    (r"\p{Thai}", false),
    (r"\p{Lao}", false),
    (r"\p{Khmer}", false),
    (r"\p{Myanmar}", false),
    (r"\p{Ethiopic}", true),
];

/// Top-level domains in scripts written with spaces (IANA's root zone): a list, since a
/// rule (letters of such a script) took the sentence after an address written without a
/// space into it (`ivan@mail.ru.Спасибо`). Chinese, Japanese, Korean and Thai ones are left
/// out: their letters run on into the text after them.
const IDN_TLDS: &[&str] = &[
    "рф",
    "укр",
    "бел",
    "срб",
    "мкд",
    "қаз",
    "мон",
    "бг",
    "ελ",
    "ευ",
    "հայ",
    "გე",
    "ישראל",
    "مصر",
    "السعودية",
    "امارات",
    "ایران",
    "پاکستان",
    "الجزائر",
    "المغرب",
    "تونس",
    "سورية",
    "عمان",
    "قطر",
    "البحرين",
    "الاردن",
    "فلسطين",
    "اليمن",
    "عراق",
    "السودان",
    "مليسيا",
    "موريتانيا",
    "بھارت",
    "ڀارت",
    "भारत",
    "भारतम्",
    "भारोत",
    "ভারত",
    "ভাৰত",
    "বাংলা",
    "ਭਾਰਤ",
    "ભારત",
    "ଭାରତ",
    "இந்தியா",
    "இலங்கை",
    "சிங்கப்பூர்",
    "భారత్",
    "ಭಾರತ",
    "ഭാരതം",
    "ලංකා",
];

/// An email address. Its local part is dot-separated atoms of one script (with ASCII digits,
/// `_`, `-` and `+` after a letter of a script other than Latin), each character
/// with the combining marks and joiners after it (`\p{M}`, `\p{Inherited}`: the virama of
/// `हिन्दी`, the accent of a decomposed `é`, the zero-width non-joiner of `می‌خواهم`).
/// One script, because scripts written without spaces run into the address: in
/// `请致电13812345678或发邮件zhang@example.com` the address is `zhang@example.com`, not the
/// clause with the phone number in it. Punctuation of other scripts (`«`, `、`) and bytes
/// that are not UTF-8 end it too. A domain's labels are of one script each as well (IDNA's
/// Unicode form: `jo@bücher.de`, `ivan@пример.рф`), so that text after an address written
/// without a space is not its domain (`zhang@qq.com或访问www.example.com`); its top-level
/// domain is ASCII letters, `xn--`, or one of [`IDN_TLDS`].
/// The context words of an email address, written plainly or spelt out.
const EMAIL_CONTEXT: &[&str] = &["email", "mail", "e-mail", "contact", "address"];

fn email_pattern() -> String {
    // and the invisible characters written into an address to hide it from scanners
    // (`jo@exa\u{200B}mple.com`: a zero-width space, word joiner, byte order mark, soft
    // hyphen)
    let marks = r"(?u:[\p{M}\p{Inherited}\x{200B}\x{2060}\x{FEFF}\x{00AD}])";
    let latin = format!("(?:(?:{LATIN_LOCAL}){marks}*)");
    let mut local = vec![format!("(?:(?:{LATIN_LOCAL_FIRST}){marks}*){latin}*(?:\\.{latin}+)*")];
    // ASCII digits, `_`, `-` and `+` join another script's letters after one of them
    // (`иван_1990@`; `078-05-1120.山田@` is `山田@`, the number before it no address). In a
    // script written without spaces, digits only end the local part (`山田123@`) and the
    // others only join letters (`山田_太郎@`): `電話13812345678山田@` is `山田@`.
    local.extend(OTHER_LOCAL.iter().map(|&(script, spaced)| {
        let letters = format!("(?:(?u:[{script}]){marks}*)+");
        if spaced {
            let any = format!("(?:(?:(?u:[{script}])|[0-9_+-]){marks}*)");
            format!("{letters}{any}*(?:\\.{any}+)*")
        } else {
            let atom = format!("{letters}(?:[_+-]{letters})*");
            format!("{atom}(?:\\.{atom})*[0-9]*")
        }
    }));
    // a domain label: letters and digits of Latin script, or of others, hyphens inside (one
    // class for the others, not one a script: the automaton of two dozen label kinds each
    // repeated made the search four times slower)
    let label = |char: &str| format!("{char}+(?:-+{char}+)*");
    let labels = [
        label(&format!("(?:(?:[A-Za-z0-9]|(?u:\\p{{Latin}})){marks}*)")),
        label(&format!("(?:(?:[0-9]|(?u:[\\p{{L}}\\p{{N}}--\\p{{Latin}}])){marks}*)")),
    ];
    // (`_` after it ends it too, and is left out of the match by the recognizer: an address
    // in Markdown italics, `_jo@example.com_`)
    // (invisible characters between its letters too, `jo@example.c\u{200B}om`: not marks,
    // which no top-level domain in ASCII has)
    let tlds = [
        r"(?:xn--[A-Za-z0-9-]{1,59}|[A-Za-z](?:(?u:[\x{200B}\x{2060}\x{FEFF}\x{00AD}])*[A-Za-z]){1,62})(?:\b|_)"
            .to_owned(),
        format!("(?:{})", IDN_TLDS.join("|")),
    ];
    format!(
        r"(?:{})@(?:(?:{})\.)+(?:{})",
        local.join("|"),
        labels.join("|"),
        tlds.join("|")
    )
}

/// (name, test, score when it passes, checksum?, required?)
pub(crate) type CheckSpec = (&'static str, fn(&[u8]) -> bool, Option<f32>, bool, bool);

pub(crate) struct Spec {
    pub(crate) entity: &'static str,
    pub(crate) boundary: Boundary,
    pub(crate) patterns: Vec<(&'static str, String, f32)>,
    /// (name, test, score when it passes, checksum?, required?)
    pub(crate) check: Option<CheckSpec>,
    pub(crate) context: &'static [&'static str],
}

pub(crate) fn build(spec: Spec) -> Result<Box<dyn Recognizer>> {
    // a prefilter only pays for a rare literal; digit classes make it stop everywhere
    let sources: Vec<&str> = spec.patterns.iter().map(|(_, re, _)| re.as_str()).collect();
    let prefilter = sources.iter().all(|re| re.contains('@'));
    let re = Re::many(&sources, prefilter, false).map_err(|message| Error::Pattern {
        entity: spec.entity.to_owned(),
        message,
    })?;
    let patterns = spec
        .patterns
        .iter()
        .map(|(name, _, score)| Pattern {
            name: Arc::from(*name),
            score: *score,
        })
        .collect();
    Ok(Box::new(PatternRecognizer {
        re,
        patterns,
        check: spec.check.map(|(name, test, score, checksum, required)| Check {
            name: Arc::from(name),
            test,
            score,
            checksum,
            required,
        }),
        boundary: spec.boundary,
        // a number after `order #`, `invoice` or `SKU` is that, not a national id
        meta: match spec.entity {
            "EMAIL_ADDRESS" | "CRYPTO" | "MAC_ADDRESS" | "DATE_TIME" => {
                Meta::new(spec.entity, Tier::Identifier, words(spec.context))
            }
            // a national id named by another's name (`TFN: 817239108` also passes the
            // BSN's 11-test) yields to that one, if found
            _ => Meta::new(spec.entity, Tier::Identifier, words(spec.context))
                .vetoed_by_labels()
                .not_after(&crate::context::IDENTIFIER_NAME_SET),
        },
        neighbors: matches!(spec.entity, "DATE_TIME" | "UK_NINO"),
        email_edges: spec.entity == "EMAIL_ADDRESS",
        // an email's local part starts anywhere: it keeps its own search
        sources: if spec.boundary == Boundary::None {
            Vec::new()
        } else {
            sources.iter().map(|s| (*s).to_owned()).collect()
        },
    }))
}

pub(crate) fn p(name: &'static str, re: &str, score: f32) -> (&'static str, String, f32) {
    (name, re.to_owned(), score)
}

fn date_parts_valid(s: &[u8]) -> bool {
    let nums: Vec<u32> = s
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(|g| g.iter().take(9).fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')))
        .collect();
    let has_month_name = s.iter().any(u8::is_ascii_alphabetic) && !s.contains(&b'T');
    let day = |d: u32| (1..=31).contains(&d);
    let month = |m: u32| (1..=12).contains(&m);
    match nums.as_slice() {
        // ISO: year first
        [y, m, d, ..] if *y >= 1000 => month(*m) && day(*d),
        [a, b, _y] => (month(*a) && day(*b)) || (day(*a) && month(*b)),
        [_, _] if has_month_name => true,
        [a, _b] => month(*a),
        [_] => true,
        _ => false,
    }
}

pub(crate) fn all(phone_regions: &[String]) -> Result<Vec<Box<dyn Recognizer>>> {
    let specs = vec![
        Spec {
            entity: "EMAIL_ADDRESS",
            boundary: Boundary::None,
            patterns: vec![p("email", &email_pattern(), 0.9)],
            check: None,
            context: EMAIL_CONTEXT,
        },
        Spec {
            entity: "US_SSN",
            boundary: Boundary::Number,
            patterns: vec![
                p("ssn_delimited", r"[0-9]{3}[ .-][0-9]{2}[ .-][0-9]{4}", 0.5),
                p("ssn_partly_delimited", r"[0-9]{3}-[0-9]{6}|[0-9]{5}-[0-9]{4}", 0.1),
                p("ssn_digits", r"[0-9]{9}", 0.05),
            ],
            check: Some(("ssn_rules", validate::us_ssn, None, false, true)),
            context: &["social", "security", "ssn", "ssns", "ssid"],
        },
        Spec {
            entity: "US_ITIN",
            boundary: Boundary::Number,
            patterns: vec![
                p("itin_delimited", r"9[0-9]{2}[ -][0-9]{2}[ -][0-9]{4}", 0.5),
                p("itin_partly_delimited", r"9[0-9]{2}-[0-9]{6}|9[0-9]{4}-[0-9]{4}", 0.3),
                p("itin_digits", r"9[0-9]{8}", 0.3),
            ],
            check: Some(("itin_rules", validate::us_itin, None, false, true)),
            context: &["individual", "taxpayer", "itin", "tax", "payer", "taxid", "tin"],
        },
        Spec {
            entity: "UK_NHS",
            boundary: Boundary::Number,
            patterns: vec![p("nhs", r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}", 0.3)],
            // mod 11 passes one ten-digit number in eleven: not reported without a context
            // word (`NHS`, `patient`) or a field name
            check: Some(("nhs_mod11", validate::nhs, Some(0.35), true, true)),
            context: &["national", "health", "service", "nhs", "medical", "patient"],
        },
        Spec {
            entity: "ABA_ROUTING_NUMBER",
            boundary: Boundary::Number,
            patterns: vec![p("aba", r"[0123678][0-9]{8}|[0123678][0-9]{3}-[0-9]{4}-[0-9]", 0.05)],
            check: Some(("aba_checksum", validate::aba, Some(0.3), true, true)),
            context: &["aba", "routing", "abarouting", "association", "bankrouting", "rtn"],
        },
        Spec {
            entity: "US_BANK_NUMBER",
            boundary: Boundary::Number,
            patterns: vec![p("bank_account_digits", r"[0-9]{8,17}", 0.05)],
            check: None,
            context: &["bank", "account", "acct", "checking", "savings", "debit"],
        },
        Spec {
            entity: "US_PASSPORT",
            boundary: Boundary::Number,
            patterns: vec![
                p("passport_digits", r"[0-9]{9}", 0.05),
                p("passport_next_gen", r"[A-Z][0-9]{8}", 0.1),
            ],
            check: None,
            context: &["passport", "travel", "document", "passport#", "passportno"],
        },
        Spec {
            entity: "US_DRIVER_LICENSE",
            boundary: Boundary::Number,
            patterns: vec![
                p("license_alphanumeric", r"[A-Z][0-9]{6,12}|[A-Z]{2}[0-9]{5,8}", 0.3),
                p("license_digits", r"[0-9]{6,14}", 0.01),
            ],
            check: None,
            context: &[
                "driver",
                "license",
                "licence",
                "permit",
                "lic",
                "dl",
                "dls",
                "drivers",
                "identification",
            ],
        },
        Spec {
            entity: "UK_NINO",
            boundary: Boundary::Word,
            patterns: vec![p("nino", r"(?i)[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]", 0.5)],
            check: Some(("nino_rules", validate::uk_nino, Some(0.6), false, true)),
            context: &["national", "insurance", "ni", "nino"],
        },
        Spec {
            entity: "MAC_ADDRESS",
            boundary: Boundary::Number,
            patterns: vec![
                p("mac_colon", r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", 0.6),
                p("mac_dash", r"(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}", 0.6),
                p("mac_cisco", r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}", 0.5),
            ],
            check: Some(("mac_not_reserved", mac_not_reserved, None, false, true)),
            context: &["mac", "hardware", "ethernet", "wifi", "device", "nic", "physical"],
        },
        Spec {
            entity: "CRYPTO",
            boundary: Boundary::Word,
            patterns: vec![p(
                "bitcoin",
                r"(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}|[13][1-9A-HJ-NP-Za-km-z]{25,34}",
                0.3,
            )],
            check: Some(("bitcoin_checksum", validate::bitcoin, Some(1.0), true, true)),
            context: &["wallet", "btc", "bitcoin", "crypto", "address"],
        },
        Spec {
            entity: "DATE_TIME",
            boundary: Boundary::Number,
            patterns: vec![
                p(
                    "iso_8601",
                    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
                    0.3,
                ),
                p(
                    "numeric_date",
                    r"[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:[0-9]{4}|[0-9]{2})|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}",
                    0.3,
                ),
                p("month_year", r"[0-9]{1,2}/(?:[0-9]{4}|[0-9]{2})", 0.2),
                p(
                    "day_month_name",
                    &format!(r"(?i)[0-9]{{1,2}}(?:st|nd|rd|th)?[- ]{MONTH}\.?(?:(?:[- ]|, ?)[0-9]{{4}}|-[0-9]{{2}})?"),
                    0.3,
                ),
                p(
                    "month_name_day",
                    &format!(
                        r"(?i){MONTH}\.?(?:[- ][0-9]{{4}}|-[0-9]{{2}}|\.? [0-9]{{1,2}}(?:st|nd|rd|th)?(?:,? [0-9]{{4}})?)"
                    ),
                    0.3,
                ),
                p("year_phrase", r"(?i)year (?:1[89]|20)[0-9]{2}", 0.3),
                p("bare_year", r"(?:1[89]|20)[0-9]{2}", 0.05),
            ],
            check: Some(("calendar", date_parts_valid, None, false, true)),
            // a date of birth in the languages the other context words cover
            context: &[
                "date",
                "birthday",
                "born",
                "dob",
                "birth",
                "day",
                "on",
                "since",
                "expires",
                // German
                "geburtsdatum",
                "geboren",
                "geb",
                "geburtstag",
                "datum",
                // French
                "né",
                "née",
                "naissance",
                // Spanish
                "nacimiento",
                "nacido",
                "nacida",
                "fecha",
                // Italian
                "nascita",
                "nato",
                "nata",
                "data",
                // Dutch
                "geboortedatum",
            ],
        },
        Spec {
            entity: "ES_NIF",
            // not the fraction of a time (`02:17:03.1234562Z`: seven digits and a letter, one
            // time in 23 a valid NIF; where dates are not looked for, nothing else took it)
            boundary: Boundary::Number,
            patterns: vec![p("nif", r"[0-9]{7,8}-?[A-Za-z]", 0.5)],
            check: Some(("nif_mod23", validate::es_nif, Some(1.0), true, true)),
            context: &["dni", "nif", "documento", "identidad", "identification"],
        },
        Spec {
            entity: "ES_NIE",
            boundary: Boundary::Word,
            patterns: vec![p("nie", r"[XYZxyz]-?[0-9]{7}-?[A-Za-z]", 0.5)],
            check: Some(("nie_mod23", validate::es_nie, Some(1.0), true, true)),
            context: &["nie", "extranjero", "foreigner", "identification"],
        },
        Spec {
            entity: "IT_FISCAL_CODE",
            boundary: Boundary::Word,
            patterns: vec![p(
                "codice_fiscale",
                r"(?i)[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]",
                0.3,
            )],
            check: Some(("fiscal_code_check", validate::it_fiscal_code, Some(1.0), true, false)),
            context: &["codice", "fiscale", "cf", "fiscal", "tax"],
        },
        Spec {
            entity: "PL_PESEL",
            boundary: Boundary::Number,
            // the checksum and the birth date pass one eleven-digit number in about thirty
            // (phone numbers with a country code among them): not reported without `PESEL`
            patterns: vec![p("pesel", r"[0-9]{11}", 0.2)],
            check: Some(("pesel_checksum", validate::pl_pesel, Some(0.35), true, true)),
            context: &["pesel"],
        },
        Spec {
            entity: "FI_PERSONAL_IDENTITY_CODE",
            boundary: Boundary::NoDigits,
            patterns: vec![p("henkilotunnus", r"[0-9]{6}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Ya-y]", 0.5)],
            // 0.9, not 1.0: a Swedish personnummer (`140206-3372`) passes mod 31 one time in 31,
            // and beside `personnummer` it should stay Swedish
            check: Some(("hetu_mod31", validate::fi_pic, Some(0.9), true, true)),
            context: &["hetu", "henkilötunnus", "henkilotunnus", "personal", "identity", "code"],
        },
    ];
    let mut out: Vec<Box<dyn Recognizer>> = Vec::new();
    for spec in specs.into_iter().chain(super::national::specs()) {
        out.push(build(spec)?);
    }
    out.push(Box::new(MonthRecognizer::new()));
    out.push(Box::new(CardRecognizer::new()?));
    out.push(Box::new(IbanRecognizer::new()?));
    out.push(Box::new(PhoneRecognizer::new(phone_regions)?));
    out.push(Box::new(IpRecognizer::new()?));
    out.push(Box::new(UrlRecognizer::new()?));
    out.push(Box::new(SpelledEmailRecognizer::new(words(EMAIL_CONTEXT))));
    out.push(Box::new(PersonRecognizer::new()));
    out.push(Box::new(LocationRecognizer::new()));
    out.push(Box::new(AddressRecognizer::new()?));
    Ok(out)
}

fn mac_not_reserved(s: &[u8]) -> bool {
    let hex: Vec<u8> = s
        .iter()
        .filter(|b| b.is_ascii_hexdigit())
        .map(u8::to_ascii_lowercase)
        .collect();
    !hex.iter().all(|&b| b == b'0') && !hex.iter().all(|&b| b == b'f')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The email recognizer, built once for every case.
    fn email_recognizer() -> Option<&'static dyn Recognizer> {
        static R: std::sync::OnceLock<Option<Box<dyn Recognizer>>> = std::sync::OnceLock::new();
        R.get_or_init(|| {
            all(&[])
                .ok()
                .and_then(|all| all.into_iter().find(|r| &**r.entity() == "EMAIL_ADDRESS"))
        })
        .as_deref()
    }

    fn emails(text: &str) -> Vec<&str> {
        let Some(r) = email_recognizer() else {
            return vec!["no recognizer"];
        };
        let mut out = Vec::new();
        r.find(text.as_bytes(), &mut out);
        out.iter()
            .map(|h| text.get(h.start..h.end).unwrap_or("not on a boundary"))
            .collect()
    }

    /// A percent escape of a delimiter ends what comes before the address (a query
    /// string's); escapes of a local part's own characters are its own.
    #[test]
    fn escaped_delimiters_before_an_address() {
        assert_eq!(emails("q=100%25%20jo@example.com&x=1"), ["jo@example.com"]);
        assert_eq!(emails("to=%22Jo%22%3Cjo@example.com%3E"), ["jo@example.com"]);
        assert_eq!(emails("to=jo%2Bnews@example.com"), ["jo%2Bnews@example.com"]);
        assert_eq!(emails("a%0Ajo@example.com b%20%22@example.com"), ["jo@example.com"]);
        assert_eq!(emails("LIKE '%ada@example.com%'"), ["ada@example.com"]);
    }

    /// What text puts around an address (Markdown, quotes in SQL and code) is not its own.
    #[test]
    fn markup_and_quotes_around_an_address() {
        for text in [
            "**jo@example.com**",
            "_jo@example.com_",
            "__jo@example.com__",
            "`jo@example.com`",
            "~~jo@example.com~~",
            "*jo@example.com*",
            "VALUES ('jo@example.com', 'Anna')",
            "{jo@example.com}",
        ] {
            assert_eq!(emails(text), ["jo@example.com"], "{text}");
        }
        // inside a local part they stay
        assert_eq!(emails("o'brien@example.ie"), ["o'brien@example.ie"]);
        assert_eq!(emails("jo_beck+news@example.com"), ["jo_beck+news@example.com"]);
    }

    #[test]
    fn local_parts_in_any_script() {
        assert_eq!(emails("Kontakt: jürgen@bücher.de"), ["jürgen@bücher.de"]);
        assert_eq!(emails("josé.garcía@correo.es"), ["josé.garcía@correo.es"]);
        assert_eq!(emails("mail 山田@example.jp ok"), ["山田@example.jp"]);
        assert_eq!(emails("Ωμέγα@παράδειγμα.gr"), ["Ωμέγα@παράδειγμα.gr"]);
        // combining marks: a virama, and an accent written as its own character
        assert_eq!(emails("हिन्दी@example.in"), ["हिन्दी@example.in"]);
        assert_eq!(emails("தமிழ்@example.in"), ["தமிழ்@example.in"]);
        assert_eq!(emails("jose\u{301}@example.es"), ["jose\u{301}@example.es"]);
        assert_eq!(
            emails("mail ju\u{308}rgen@bu\u{308}cher.de"),
            ["ju\u{308}rgen@bu\u{308}cher.de"]
        );
        // a zero-width non-joiner inside a Persian word, tone marks in Thai
        assert_eq!(emails("می\u{200c}خواهم@example.ir"), ["می\u{200c}خواهم@example.ir"]);
        assert_eq!(emails("อีเมล น้องแมว@example.th"), ["น้องแมว@example.th"]);
        assert_eq!(emails("やまだタロー@example.jp"), ["やまだタロー@example.jp"]);
        assert_eq!(
            emails("o’brien@example.com ana·maria@example.cat"),
            ["o’brien@example.com", "ana·maria@example.cat"]
        );
    }

    #[test]
    fn punctuation_of_any_script_is_no_local_part() {
        assert_eq!(emails("«anna@example.com»"), ["anna@example.com"]);
        assert_eq!(emails("联系、山田@example.jp"), ["山田@example.jp"]);
        assert_eq!(emails("“jo@example.com”"), ["jo@example.com"]);
        assert_eq!(emails("€5@example.com"), ["5@example.com"]);
        // a dot does not lead a local part, and nothing but punctuation is none
        assert_eq!(emails("«.jo@example.com"), ["jo@example.com"]);
        assert_eq!(emails("«@example.com"), Vec::<&str>::new());
    }

    #[test]
    fn a_local_part_is_of_one_script() {
        // scripts written without spaces run into the address: it is the part in its script
        assert_eq!(
            emails("请致电13812345678或发邮件zhang@example.com联系我"),
            ["zhang@example.com"]
        );
        assert_eq!(emails("张三zhang@example.com"), ["zhang@example.com"]);
        assert_eq!(emails("SSN 078-05-1120.山田@example.jp"), ["山田@example.jp"]);
        assert_eq!(emails("Иван.Petrov@example.ru"), ["Petrov@example.ru"]);
        assert_eq!(emails("電話13812345678山田@example.jp"), ["山田@example.jp"]);
    }

    #[test]
    fn a_domain_is_of_one_script_a_label() {
        assert_eq!(emails("邮箱zhang@qq.com。李四的网站是li.cn"), ["zhang@qq.com"]);
        assert_eq!(emails("请发邮件至zhang@qq.com或访问www.example.com"), ["zhang@qq.com"]);
        assert_eq!(emails("zhang@example.com联系我.de"), ["zhang@example.com"]);
        assert_eq!(emails("ivan@mail.ru.Спасибо"), ["ivan@mail.ru"]);
        assert_eq!(
            emails("иван@пример.рф.иван@пример.рф"),
            ["иван@пример.рф", "иван@пример.рф"]
        );
        // invisible characters written into an address to hide it
        assert_eq!(emails("jo@exa\u{200B}mple.com"), ["jo@exa\u{200B}mple.com"]);
        assert_eq!(emails("j\u{AD}o@example.com"), ["j\u{AD}o@example.com"]);
        assert_eq!(emails("jo@example.c\u{200B}om!"), ["jo@example.c\u{200B}om"]);
        assert_eq!(emails("jo@example.co\u{AD}m"), ["jo@example.co\u{AD}m"]);
        assert_eq!(
            emails("ivan@пример.рф, राजेश@उदाहरण.भारत"),
            ["ivan@пример.рф", "राजेश@उदाहरण.भारत"]
        );
        assert_eq!(
            emails("jo@bücher.de jo@例子.cn jo@xn--e1afmkfd.xn--p1ai"),
            ["jo@bücher.de", "jo@例子.cn", "jo@xn--e1afmkfd.xn--p1ai"]
        );
    }

    #[test]
    fn ascii_digits_and_joiners_after_a_letter_of_another_script() {
        for address in [
            "иван1990@mail.ru",
            "иван_петров@mail.ru",
            "иван-петров+2@mail.ru",
            "иван.1990@mail.ru",
            "山田123@example.jp",
            "山田_太郎@example.jp",
            "やまだ・たろう@example.jp",
            "ﾔﾏﾀﾞ@example.jp",
            "ﾀﾛｰ@example.jp",
            "محمـد@example.com",
        ] {
            assert_eq!(emails(&format!("mail {address} now")), [address], "{address}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_end_the_local_part() {
        let text = b"x\xffjo@example.com \xc3jo@example.com";
        let mut out = Vec::new();
        if let Some(r) = email_recognizer() {
            r.find(text, &mut out);
        }
        let found: Vec<&[u8]> = out.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(found, [&b"jo@example.com"[..], b"jo@example.com"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// In ASCII text the addresses are those of the ASCII pattern this one grew from (its
        /// local part without `/`, `?`, `=` and `&`, from a letter or digit; a `_` after the
        /// top-level domain ends it, left out).
        #[test]
        fn ascii_text_as_the_ascii_pattern(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "Z", "0", ".", "..", "@", "-", "_", "+", "=", "|", " ", "«", "x.co", "com", "xn--p1ai",
                    "\n", ",", "'", "é", "山",
                ]),
                0..40,
            )
        ) {
            let text = pieces.concat();
            let ascii = r"[A-Za-z0-9][A-Za-z0-9!#$%'*+^_`{}~-]*(?:\.[A-Za-z0-9!#$%'*+^_`{}~-]+)*@(?:[A-Za-z0-9\x80-\xFF](?:[A-Za-z0-9\x80-\xFF-]{0,61}[A-Za-z0-9\x80-\xFF])?\.)+(?:xn--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})(?:\b|_)";
            let re = crate::re::Re::new(ascii, true).map_err(proptest::test_runner::TestCaseError::fail)?;
            let mut before = Vec::new();
            let mut pos = 0;
            while let Some((s, e)) = re.find_at(text.as_bytes(), pos) {
                before.push((s, if text.as_bytes()[e - 1] == b'_' { e - 1 } else { e }));
                pos = e;
            }
            let mut now = Vec::new();
            if let Some(r) = email_recognizer() {
                r.find(text.as_bytes(), &mut now);
            }
            let now: Vec<(usize, usize)> = now.iter().map(|h| (h.start, h.end)).collect();
            if text.is_ascii() {
                proptest::prop_assert_eq!(now, before);
            } else {
                // beyond ASCII, none lost (each address of the ASCII pattern overlaps one now)
                // but those whose domain held punctuation or mixed scripts in a label
                for (s, e) in before {
                    let domain = text[s..e].rsplit('@').next().unwrap_or_default();
                    let mixed = domain.contains('山') || domain.contains('«');
                    proptest::prop_assert!(mixed || now.iter().any(|&(ns, ne)| ns < e && s < ne), "{:?} lost in {:?}", &text[s..e], text);
                }
            }
        }
    }

    #[test]
    fn ascii_addresses_as_before() {
        assert_eq!(emails("Jo|0361 8225|jo@example.com"), ["jo@example.com"]);
        assert_eq!(
            emails("GET /api/v2/orders/SO8995037?email=íñigo.etxeberria@bücher.de&user=jo@example.com"),
            ["íñigo.etxeberria@bücher.de", "jo@example.com"]
        );
        assert_eq!(
            emails("a.b+tag@sub.example.co.uk, x@y.museum"),
            ["a.b+tag@sub.example.co.uk", "x@y.museum"]
        );
        assert_eq!(emails("no address @ here, nor a@b"), Vec::<&str>::new());
    }

    #[test]
    fn date_parts() {
        assert!(date_parts_valid(b"2021-05-21"));
        assert!(!date_parts_valid(b"2021-13-21"));
        assert!(date_parts_valid(b"21.5.2021") && date_parts_valid(b"5-20-2021"));
        assert!(!date_parts_valid(b"13/13/2021"));
        assert!(date_parts_valid(b"05/21") && !date_parts_valid(b"13/21"));
    }

    #[test]
    fn mac_reserved() {
        assert!(!mac_not_reserved(b"FF:FF:FF:FF:FF:FF") && !mac_not_reserved(b"00:00:00:00:00:00"));
        assert!(mac_not_reserved(b"00:1A:2B:3C:4D:5E"));
    }
}
