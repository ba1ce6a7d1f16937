//! National identifiers beyond the first set: each a pattern, a validator (a checksum where
//! the number has one) and context words in its country's languages.
//!
//! Scores follow the built-in set: a value whose checksum is strong (two check digits, or
//! one beside a strict shape) is reported alone; a bare run of digits that only a one-digit
//! checksum backs (about one random number in ten passes it) scores under the default
//! minimum 0.4, so that only a context word (`BSN`, `TFN`, `Aadhaar`) reports it. The
//! validators take the matched bytes, separators included, and never panic.

use super::Boundary;
use super::builtin::{Spec, p};
use crate::validate::{is_date, luhn_digits};

/// The specs of the national identifiers (see [`super::builtin::all`]).
pub(crate) fn specs() -> Vec<Spec> {
    vec![
        Spec {
            entity: "DE_TAX_ID",
            boundary: Boundary::Number,
            patterns: vec![
                p("steuer_id_grouped", r"[1-9][0-9] [0-9]{3} [0-9]{3} [0-9]{3}", 0.6),
                p("steuer_id_digits", r"[1-9][0-9]{10}", 0.3),
            ],
            check: Some(("steuer_id_mod11_10", de_tax_id, None, true, true)),
            context: &[
                "steueridentifikationsnummer",
                "identifikationsnummer",
                "steuerliche",
                "steuer",
                "steuerid",
                "idnr",
                "steuernummer",
                "bzst",
                "tin",
                "tax",
            ],
        },
        // The printed number (9 characters) carries no check digit; the machine-readable
        // zone adds one after it (`C01X00T478` for the specimen `C01X00T47`).
        Spec {
            entity: "DE_PASSPORT",
            boundary: Boundary::Word,
            patterns: vec![p(
                "reisepass_mrz",
                r"(?i)[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}[0-9]",
                0.5,
            )],
            check: Some(("icao_check_digit", de_passport, None, true, true)),
            context: DE_PASSPORT_CONTEXT,
        },
        Spec {
            entity: "DE_PASSPORT",
            boundary: Boundary::Word,
            patterns: vec![p("reisepass", r"(?i)[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}", 0.1)],
            check: Some(("passport_letters", de_passport_number, None, false, true)),
            context: DE_PASSPORT_CONTEXT,
        },
        Spec {
            entity: "FR_NIR",
            boundary: Boundary::Number,
            patterns: vec![
                p(
                    "nir_grouped",
                    r"[1-478] [0-9]{2} [0-9]{2} (?:[0-9]{2}|2[ABab]) [0-9]{3} [0-9]{3} [0-9]{2}",
                    0.7,
                ),
                p(
                    "nir_key_apart",
                    r"[1-478][0-9]{4}(?:[0-9]{2}|2[ABab])[0-9]{6} [0-9]{2}",
                    0.6,
                ),
                p("nir_digits", r"[1-478][0-9]{4}(?:[0-9]{2}|2[ABab])[0-9]{8}", 0.3),
            ],
            check: Some(("nir_mod97", fr_nir, None, true, true)),
            context: &[
                "nir",
                "insee",
                "sécurité",
                "securite",
                "sociale",
                "sécu",
                "secu",
                "vitale",
                "immatriculation",
                "social",
                "security",
                "ssn",
            ],
        },
        Spec {
            entity: "NL_BSN",
            boundary: Boundary::Number,
            patterns: vec![
                p(
                    "bsn_grouped",
                    r"[0-9]{4}\.[0-9]{2}\.[0-9]{3}|[0-9]{3}\.[0-9]{3}\.[0-9]{3}|[0-9]{3} [0-9]{3} [0-9]{3}|[0-9]{3}-[0-9]{3}-[0-9]{3}",
                    0.3,
                ),
                p("bsn_digits", r"[0-9]{9}", 0.2),
            ],
            check: Some(("bsn_11_test", nl_bsn, None, true, true)),
            context: &[
                "bsn",
                "burgerservicenummer",
                "sofinummer",
                "sofi",
                "persoonsnummer",
                "citizen",
                "service",
            ],
        },
        Spec {
            entity: "BE_NATIONAL_NUMBER",
            boundary: Boundary::Number,
            patterns: vec![
                p(
                    "rrn_printed",
                    r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}[ -][0-9]{3}[.-][0-9]{2}",
                    0.8,
                ),
                p(
                    "rrn_grouped",
                    r"[0-9]{6}-[0-9]{3}-[0-9]{2}|[0-9]{6} [0-9]{3} [0-9]{2}",
                    0.6,
                ),
                p("rrn_digits", r"[0-9]{11}", 0.3),
            ],
            check: Some(("rrn_mod97", be_national_number, None, true, true)),
            context: &[
                "rijksregisternummer",
                "rijksregister",
                "rijksregisternr",
                "nationalregisternummer",
                "registre",
                "national",
                "nationaal",
                "insz",
                "niss",
                "identificatienummer",
                "rrn",
            ],
        },
        Spec {
            entity: "SE_PERSONNUMMER",
            // often glued to the word before (`is199003052397`)
            boundary: Boundary::NoDigits,
            patterns: vec![
                p("personnummer_long_delimited", r"(?:18|19|20)[0-9]{6}[-+][0-9]{4}", 0.7),
                p("personnummer_delimited", r"[0-9]{6}[-+][0-9]{4}", 0.6),
                p("personnummer_long_digits", r"(?:18|19|20)[0-9]{10}", 0.35),
                p("personnummer_digits", r"[0-9]{10}", 0.2),
            ],
            check: Some(("personnummer_luhn", se_personnummer, None, true, true)),
            context: &[
                "personnummer",
                "personnr",
                "pnr",
                "samordningsnummer",
                "svenskt",
                "swedish",
                "personal",
                "identity",
                "ssn",
            ],
        },
        // a CPR number issued before 2007 passes the mod-11 test; one issued since may not,
        // so the test raises the score and a valid date alone is enough to report it
        Spec {
            entity: "DK_CPR",
            boundary: Boundary::Number,
            patterns: vec![
                p("cpr_delimited", r"[0-9]{6}-[0-9]{4}", 0.6),
                p("cpr_digits", r"[0-9]{10}", 0.3),
            ],
            check: Some(("cpr_mod11", dk_cpr_mod11, None, true, true)),
            context: DK_CPR_CONTEXT,
        },
        Spec {
            entity: "DK_CPR",
            boundary: Boundary::Number,
            patterns: vec![
                p("cpr_delimited", r"[0-9]{6}-[0-9]{4}", 0.3),
                p("cpr_digits", r"[0-9]{10}", 0.05),
            ],
            check: Some(("cpr_date", dk_cpr, None, false, true)),
            context: DK_CPR_CONTEXT,
        },
        Spec {
            entity: "IN_AADHAAR",
            boundary: Boundary::Number,
            patterns: vec![
                p(
                    "aadhaar_grouped",
                    r"[2-9][0-9]{3} [0-9]{4} [0-9]{4}|[2-9][0-9]{3}-[0-9]{4}-[0-9]{4}|[2-9][0-9]{3}:[0-9]{4}:[0-9]{4}",
                    0.3,
                ),
                p("aadhaar_digits", r"[2-9][0-9]{11}", 0.3),
            ],
            check: Some(("aadhaar_verhoeff", in_aadhaar, None, true, true)),
            context: &["aadhaar", "aadhar", "adhaar", "uidai", "uid", "आधार"],
        },
        Spec {
            entity: "IN_PAN",
            boundary: Boundary::Word,
            patterns: vec![p("pan", r"(?i)[A-Z]{5}[0-9]{4}[A-Z]", 0.05)],
            // the fourth letter says who holds it (P a person, C a company, ...)
            check: Some(("pan_holder_type", in_pan, Some(0.3), false, false)),
            context: &["pan", "permanent", "pancard", "income"],
        },
        Spec {
            entity: "AU_TFN",
            boundary: Boundary::Number,
            patterns: vec![
                p("tfn_grouped", r"[0-9]{3} [0-9]{3} [0-9]{3}", 0.3),
                p("tfn_digits", r"[0-9]{9}", 0.2),
            ],
            check: Some(("tfn_mod11", au_tfn, None, true, true)),
            context: &["tfn", "tax", "taxation", "ato"],
        },
        Spec {
            entity: "AU_ABN",
            boundary: Boundary::Number,
            patterns: vec![
                p("abn_grouped", r"[0-9]{2} [0-9]{3} [0-9]{3} [0-9]{3}", 0.6),
                p("abn_digits", r"[0-9]{11}", 0.3),
            ],
            check: Some(("abn_mod89", au_abn, None, true, true)),
            context: &["abn", "australian", "business", "abr"],
        },
        Spec {
            entity: "AU_MEDICARE",
            boundary: Boundary::Number,
            patterns: vec![
                p("medicare_grouped", r"[2-6][0-9]{3} [0-9]{5} [0-9]", 0.35),
                p("medicare_digits", r"[2-6][0-9]{9}", 0.2),
            ],
            check: Some(("medicare_mod10", au_medicare, None, true, true)),
            context: &["medicare", "irn", "health"],
        },
        Spec {
            entity: "SG_NRIC_FIN",
            boundary: Boundary::Word,
            patterns: vec![p("nric", r"(?i)[STFGM][0-9]{7}[A-Z]", 0.6)],
            check: Some(("nric_check_letter", sg_nric_fin, None, true, true)),
            context: &["nric", "nric#", "fin", "fin#", "uin", "ic", "singapore", "identity"],
        },
        // the check digit holds for numbers issued before October 2020 only (since then the
        // last six digits are random): a valid date is enough, the checksum raises the score
        Spec {
            entity: "KR_RRN",
            boundary: Boundary::Number,
            patterns: vec![
                p("rrn_delimited", r"[0-9]{6}-[1-4][0-9]{6}", 0.7),
                p("rrn_digits", r"[0-9]{6}[1-4][0-9]{6}", 0.35),
            ],
            check: Some(("rrn_checksum", kr_rrn_checksum, None, true, true)),
            context: KR_RRN_CONTEXT,
        },
        Spec {
            entity: "KR_RRN",
            boundary: Boundary::Number,
            patterns: vec![
                p("rrn_delimited", r"[0-9]{6}-[1-4][0-9]{6}", 0.3),
                p("rrn_digits", r"[0-9]{6}[1-4][0-9]{6}", 0.05),
            ],
            check: Some(("rrn_date", kr_rrn, None, false, true)),
            context: KR_RRN_CONTEXT,
        },
        Spec {
            entity: "UK_PASSPORT",
            boundary: Boundary::Word,
            patterns: vec![p("uk_passport", r"(?i)[A-Z]{2}[0-9]{7}", 0.1)],
            check: None,
            context: &[
                "passport",
                "passports",
                "passport#",
                "passportno",
                "travel",
                "document",
                "hmpo",
                "british",
            ],
        },
        Spec {
            entity: "UK_DRIVING_LICENCE",
            boundary: Boundary::Word,
            patterns: vec![p("dvla", DVLA, 0.5), p("dvla_any_case", &format!("(?i){DVLA}"), 0.3)],
            check: Some(("dvla_rules", uk_driving_licence, None, false, true)),
            context: &["driving", "licence", "license", "dvla", "driver", "drivers", "dl"],
        },
        Spec {
            entity: "MEDICAL_LICENSE",
            boundary: Boundary::Word,
            patterns: vec![p("dea", r"(?i)[A-HJ-MPRSTUX][A-Z9][0-9]{7}", 0.3)],
            check: Some(("dea_checksum", us_dea, None, true, true)),
            context: &[
                "dea",
                "medical",
                "certificate",
                "license",
                "licence",
                "prescriber",
                "registration",
            ],
        },
    ]
}

const DK_CPR_CONTEXT: &[&str] = &[
    "cpr",
    "cprnr",
    "personnummer",
    "personnr",
    "sygesikring",
    "sygesikringsbevis",
    "sundhedskort",
    "danish",
];

const KR_RRN_CONTEXT: &[&str] = &[
    "rrn",
    "rrn#",
    "resident",
    "registration",
    "korean",
    "주민등록번호",
    "주민번호",
];

/// DVLA driving licence number: surname (5, padded with 9), decade, month (+50 for women),
/// day, year, two initials (the second 9 when there is none), a digit, two check letters.
const DVLA: &str =
    r"[A-Z][A-Z9]{4}[0-9](?:0[1-9]|1[0-2]|5[1-9]|6[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9][A-Z][A-Z9][0-9][A-Z]{2}";

/// The digits of `s`; `None` if anything but a digit or one of `separators` is in it.
fn digits_only(s: &[u8], separators: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_digit() {
            out.push(u32::from(b - b'0'));
        } else if !separators.contains(&b) {
            return None;
        }
    }
    Some(out)
}

/// The digits of `s` if there are exactly `N` and nothing but `separators` between them.
fn digits_n<const N: usize>(s: &[u8], separators: &[u8]) -> Option<[u32; N]> {
    digits_only(s, separators)?.try_into().ok()
}

/// The number the digits `d` spell.
fn number(d: &[u32]) -> u64 {
    d.iter()
        .fold(0u64, |a, &x| a.wrapping_mul(10).wrapping_add(u64::from(x)))
}

/// German tax identification number (Steuerliche Identifikationsnummer): 11 digits, the
/// first not 0; in the first ten, exactly one digit occurs twice or three times (three
/// times never in a row) and the others at most once; ISO 7064 MOD 11,10 check digit.
pub(crate) fn de_tax_id(s: &[u8]) -> bool {
    let Some(d) = digits_n::<11>(s, b" ") else {
        return false;
    };
    let [first, .., check] = d;
    if first == 0 {
        return false;
    }
    let body = d.get(..10).unwrap_or_default();
    let mut counts = [0u32; 10];
    for &x in body {
        if let Some(c) = counts.get_mut(x as usize) {
            *c += 1;
        }
    }
    let repeated: Vec<(usize, u32)> = counts.iter().copied().enumerate().filter(|&(_, c)| c > 1).collect();
    let [(digit, times)] = repeated.as_slice() else {
        return false;
    };
    if !(2..=3).contains(times) {
        return false;
    }
    if *times == 3 && body.windows(3).any(|w| w.iter().all(|&x| x as usize == *digit)) {
        return false;
    }
    let mut product = 10;
    for &x in body {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    (11 - product) % 10 == check
}

/// Context words of a German passport number: not `passport` alone (beside it a US
/// passport's letter and eight digits take the German shape), nor `pass` (a gate pass).
const DE_PASSPORT_CONTEXT: &[&str] = &[
    "reisepass",
    "reisepassnummer",
    "passnummer",
    "german",
    "deutscher",
    "deutschen",
    "dokumentennummer",
    "ausweisdokument",
    "mrz",
];

/// The letters of German passport numbers (no vowels, no B, D, Q, S).
const DE_PASSPORT_LETTERS: &[u8] = b"CFGHJKLMNPRTVWXYZ";

/// A German passport number as printed: 9 characters of [`DE_PASSPORT_LETTERS`] and digits,
/// the first a letter. It has no check digit.
pub(crate) fn de_passport_number(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    u.len() == 9
        && u.first().is_some_and(|c| DE_PASSPORT_LETTERS.contains(c))
        && u.iter().all(|c| c.is_ascii_digit() || DE_PASSPORT_LETTERS.contains(c))
}

/// A German passport number with the check digit the machine-readable zone adds: the 9
/// characters of [`de_passport_number`], then an ICAO 9303 check digit over them (letters
/// counted A = 10 to Z = 35, weights 7, 3, 1, mod 10).
pub(crate) fn de_passport(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    let [number @ .., check] = u.as_slice() else {
        return false;
    };
    if u.len() != 10 || !de_passport_number(number) || !check.is_ascii_digit() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in number.iter().enumerate() {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => u32::from(c - b'A') + 10,
        };
        sum += value * [7, 3, 1][i % 3];
    }
    sum % 10 == u32::from(check - b'0')
}

/// French NIR (numéro de sécurité sociale): sex (1, 2; 3, 4, 7, 8 for provisional numbers),
/// year, month (01-12, or 20, 30-42, 50-99 when unknown), department (2A and 2B for
/// Corsica), commune, serial, and a key of 97 minus the first 13 digits mod 97 (2A counted
/// as 19, 2B as 18).
pub(crate) fn fr_nir(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().filter(|&&b| b != b' ').map(u8::to_ascii_uppercase).collect();
    if u.len() != 15 {
        return false;
    }
    let mut d: Vec<u32> = Vec::with_capacity(15);
    for (i, &b) in u.iter().enumerate() {
        let corsica = i == 6 && u.get(5) == Some(&b'2');
        match b {
            b'0'..=b'9' => d.push(u32::from(b - b'0')),
            // 2A counts as 19, 2B as 18
            b'A' | b'B' if corsica => {
                d.pop();
                d.extend([1, if b == b'A' { 9 } else { 8 }]);
            }
            _ => return false,
        }
    }
    let (Some(head), Some(key)) = (d.get(..13), d.get(13..)) else {
        return false;
    };
    let sex = head.first().copied().unwrap_or(0);
    let month = number(head.get(3..5).unwrap_or_default());
    let department = number(head.get(5..7).unwrap_or_default());
    if !matches!(sex, 1..=4 | 7 | 8) || !matches!(month, 1..=12 | 20 | 30..=42 | 50..=99) || department == 0 {
        return false;
    }
    97 - number(head) % 97 == number(key)
}

/// Dutch BSN (burgerservicenummer): 9 digits passing the 11-test (weights 9 to 2, and -1
/// for the last), not all zero.
pub(crate) fn nl_bsn(s: &[u8]) -> bool {
    let Some(d) = digits_n::<9>(s, b" .-") else {
        return false;
    };
    let sum: i64 = d
        .iter()
        .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
        .map(|(&x, w)| i64::from(x) * w)
        .sum();
    d.iter().any(|&x| x != 0) && sum.rem_euclid(11) == 0
}

/// Belgian national register number (rijksregisternummer / numéro de registre national):
/// YYMMDD (month +20 or +40 for BIS numbers, 00 for an unknown month or day), a serial of
/// 001-998, and 97 minus the first nine digits mod 97 (with 2 in front for births since
/// 2000, which also tells the century the date is checked in).
pub(crate) fn be_national_number(s: &[u8]) -> bool {
    let Some(d) = digits_n::<11>(s, b" .-") else {
        return false;
    };
    let head = number(d.get(..9).unwrap_or_default());
    let key = number(d.get(9..).unwrap_or_default());
    let century = if 97 - head % 97 == key {
        1900
    } else if 97 - (2_000_000_000 + head) % 97 == key {
        2000
    } else {
        return false;
    };
    let [y1, y2, m1, m2, d1, d2, s1, s2, s3, _, _] = d;
    let yy = y1 * 10 + y2;
    let month = match m1 * 10 + m2 {
        m @ 40..=52 => m - 40,
        m @ 20..=32 => m - 20,
        m => m,
    };
    let day = d1 * 10 + d2;
    let serial = s1 * 100 + s2 * 10 + s3;
    if month > 12 || day > 31 || !(1..=998).contains(&serial) {
        return false;
    }
    month == 0 || day == 0 || is_date(Some(century + yy), yy, month, day)
}

/// Swedish personnummer (or samordningsnummer, day + 60): YYMMDD or YYYYMMDD, `-` or `+`,
/// then 4 digits; Luhn over the 10 digits without the century.
pub(crate) fn se_personnummer(s: &[u8]) -> bool {
    let Some(d) = digits_only(s, b"-+") else {
        return false;
    };
    if s.iter().filter(|b| !b.is_ascii_digit()).count() > 1 {
        return false;
    }
    let (year, ten) = match d.len() {
        12 => (d.get(..4).map(|c| number(c) as u32), d.get(2..).unwrap_or_default()),
        10 => (None, d.as_slice()),
        _ => return false,
    };
    if year.is_some_and(|y| !(1800..2100).contains(&y)) {
        return false;
    }
    let [y1, y2, m1, m2, d1, d2, ..] = *ten else {
        return false;
    };
    let day = match d1 * 10 + d2 {
        day @ 61..=91 => day - 60,
        day => day,
    };
    is_date(year, y1 * 10 + y2, m1 * 10 + m2, day) && luhn_digits(ten)
}

/// Danish CPR number: DDMMYY-SSSS with a date that exists in the century the seventh digit
/// and the year give.
pub(crate) fn dk_cpr(s: &[u8]) -> bool {
    let Some(d) = digits_n::<10>(s, b"-") else {
        return false;
    };
    let [d1, d2, m1, m2, y1, y2, c, ..] = d;
    let yy = y1 * 10 + y2;
    let century = match c {
        0..=3 => 1900,
        4 | 9 if yy <= 36 => 2000,
        4 | 9 => 1900,
        _ if yy <= 57 => 2000,
        _ => 1800,
    };
    is_date(Some(century + yy), yy, m1 * 10 + m2, d1 * 10 + d2)
}

/// [`dk_cpr`] and the mod-11 test (weights 4 3 2 7 6 5 4 3 2 1) that CPR numbers issued
/// before 2007 pass.
pub(crate) fn dk_cpr_mod11(s: &[u8]) -> bool {
    let Some(d) = digits_n::<10>(s, b"-") else {
        return false;
    };
    let sum: u32 = d.iter().zip([4, 3, 2, 7, 6, 5, 4, 3, 2, 1]).map(|(x, w)| x * w).sum();
    dk_cpr(s) && sum.is_multiple_of(11)
}

/// Indian Aadhaar: 12 digits, the first 2-9, Verhoeff check digit, not a palindrome.
pub(crate) fn in_aadhaar(s: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let Some(d) = digits_n::<12>(s, b" -:") else {
        return false;
    };
    if d[0] < 2 || d.iter().eq(d.iter().rev()) {
        return false;
    }
    let mut c = 0u8;
    for (i, &x) in d.iter().rev().enumerate() {
        let permuted = P[i % 8][x as usize % 10];
        c = D[usize::from(c)][usize::from(permuted)];
    }
    c == 0
}

/// Indian PAN: five letters, four digits, a letter, the fourth letter a holder type (P a
/// person, C a company, H a Hindu undivided family, F a firm, A an association, T a trust,
/// B a body of individuals, L a local authority, J an artificial juridical person, G a
/// government agency).
pub(crate) fn in_pan(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    let [a, b, c, holder, e, n1, n2, n3, n4, last] = u.as_slice() else {
        return false;
    };
    [a, b, c, holder, e, last].iter().all(|x| x.is_ascii_uppercase())
        && [n1, n2, n3, n4].iter().all(|x| x.is_ascii_digit())
        && b"ABCFGHJLPT".contains(holder)
}

/// Australian tax file number: 9 digits, weights 1 4 3 7 5 8 6 9 10, sum divisible by 11.
pub(crate) fn au_tfn(s: &[u8]) -> bool {
    let Some(d) = digits_n::<9>(s, b" -") else {
        return false;
    };
    let sum: u32 = d.iter().zip([1, 4, 3, 7, 5, 8, 6, 9, 10]).map(|(x, w)| x * w).sum();
    sum != 0 && sum.is_multiple_of(11)
}

/// Australian business number: 11 digits; 1 taken from the first, weights 10 1 3 5 7 9 11
/// 13 15 17 19, sum divisible by 89.
pub(crate) fn au_abn(s: &[u8]) -> bool {
    let Some(mut d) = digits_n::<11>(s, b" ") else {
        return false;
    };
    if d[0] == 0 {
        return false;
    }
    d[0] -= 1;
    let sum: u32 = d
        .iter()
        .zip([10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19])
        .map(|(x, w)| x * w)
        .sum();
    sum.is_multiple_of(89)
}

/// Australian Medicare card number: 10 digits, the first 2-6; the ninth is the sum of the
/// first eight weighted 1 3 7 9 1 3 7 9, mod 10; the tenth is the card's issue number.
pub(crate) fn au_medicare(s: &[u8]) -> bool {
    let Some(d) = digits_n::<10>(s, b" ") else {
        return false;
    };
    let sum: u32 = d.iter().zip([1, 3, 7, 9, 1, 3, 7, 9]).map(|(x, w)| x * w).sum();
    (2..=6).contains(&d[0]) && sum % 10 == d[8]
}

/// Singapore NRIC / FIN: S, T (citizens), F, G, M (foreigners), 7 digits and a check letter
/// (weights 2 7 6 5 4 3 2, plus 4 for T and G, plus 3 for M, mod 11).
pub(crate) fn sg_nric_fin(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    let [prefix, body @ .., check] = u.as_slice() else {
        return false;
    };
    if body.len() != 7 || !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = body
        .iter()
        .zip([2, 7, 6, 5, 4, 3, 2])
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    let (offset, letters): (u32, &[u8; 11]) = match prefix {
        b'S' => (0, b"JZIHGFEDCBA"),
        b'T' => (4, b"JZIHGFEDCBA"),
        b'F' => (0, b"XWUTRQPNMLK"),
        b'G' => (4, b"XWUTRQPNMLK"),
        b'M' => (3, b"XWUTRQPNJLK"),
        _ => return false,
    };
    letters.get(((sum + offset) % 11) as usize) == Some(check)
}

/// Korean resident registration number: YYMMDD, `-`, then the sex and century digit (1, 2
/// for births in the 1900s, 3, 4 since 2000) and 6 digits; the date must exist.
pub(crate) fn kr_rrn(s: &[u8]) -> bool {
    let Some(d) = digits_n::<13>(s, b"-") else {
        return false;
    };
    if s.len() > 14 {
        return false;
    }
    let [y1, y2, m1, m2, d1, d2, g, ..] = d;
    let century = match g {
        1 | 2 => 1900,
        3 | 4 => 2000,
        _ => return false,
    };
    let yy = y1 * 10 + y2;
    is_date(Some(century + yy), yy, m1 * 10 + m2, d1 * 10 + d2)
}

/// [`kr_rrn`], with a region code of 00-95 and the check digit of numbers issued before
/// October 2020: (11 - sum mod 11) mod 10, weights 2 3 4 5 6 7 8 9 2 3 4 5.
pub(crate) fn kr_rrn_checksum(s: &[u8]) -> bool {
    let Some(d) = digits_n::<13>(s, b"-") else {
        return false;
    };
    let sum: u32 = d
        .iter()
        .zip([2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5])
        .map(|(x, w)| x * w)
        .sum();
    let region = d[7] * 10 + d[8];
    kr_rrn(s) && region <= 95 && (11 - sum % 11) % 10 == d[12]
}

/// UK (DVLA) driving licence number: the surname's letters padded with 9 (never a letter
/// after a 9), and a date of birth that exists (month + 50 for women).
pub(crate) fn uk_driving_licence(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    let Ok(u): Result<[u8; 16], _> = u.try_into() else {
        return false;
    };
    let [n1, n2, n3, n4, n5, decade, m1, m2, d1, d2, year, i1, i2, digit, c1, c2] = u;
    let surname = [n1, n2, n3, n4, n5];
    let letters = surname.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if letters == 0 || surname.iter().skip(letters).any(|&b| b != b'9') {
        return false;
    }
    let date = [decade, m1, m2, d1, d2, year, digit];
    if !date.iter().all(u8::is_ascii_digit)
        || !i1.is_ascii_uppercase()
        || !(i2.is_ascii_uppercase() || i2 == b'9')
        || !c1.is_ascii_uppercase()
        || !c2.is_ascii_uppercase()
    {
        return false;
    }
    let v = |b: u8| u32::from(b - b'0');
    let month = match v(m1) * 10 + v(m2) {
        m @ 51..=62 => m - 50,
        m => m,
    };
    let yy = v(decade) * 10 + v(year);
    is_date(None, yy, month, v(d1) * 10 + v(d2))
}

/// US DEA registration number: a registrant-type letter, a letter (the registrant's
/// surname) or 9, 7 digits; the last digit of (d1 + d3 + d5) + 2 (d2 + d4 + d6) is d7.
pub(crate) fn us_dea(s: &[u8]) -> bool {
    let u: Vec<u8> = s.iter().map(u8::to_ascii_uppercase).collect();
    let [kind, second, body @ ..] = u.as_slice() else {
        return false;
    };
    if !b"ABCDEFGHJKLMPRSTUX".contains(kind) || !(second.is_ascii_uppercase() || *second == b'9') {
        return false;
    }
    let Some(d) = digits_n::<7>(body, b"") else {
        return false;
    };
    let [a, b, c, e, f, g, check] = d;
    (a + c + f + 2 * (b + e + g)) % 10 == check
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Scanner;

    type Validator = fn(&[u8]) -> bool;

    const ALL: &[(&str, Validator)] = &[
        ("de_tax_id", de_tax_id),
        ("de_passport", de_passport),
        ("de_passport_number", de_passport_number),
        ("fr_nir", fr_nir),
        ("nl_bsn", nl_bsn),
        ("be_national_number", be_national_number),
        ("se_personnummer", se_personnummer),
        ("dk_cpr", dk_cpr),
        ("dk_cpr_mod11", dk_cpr_mod11),
        ("in_aadhaar", in_aadhaar),
        ("in_pan", in_pan),
        ("au_tfn", au_tfn),
        ("au_abn", au_abn),
        ("au_medicare", au_medicare),
        ("sg_nric_fin", sg_nric_fin),
        ("kr_rrn", kr_rrn),
        ("kr_rrn_checksum", kr_rrn_checksum),
        ("uk_driving_licence", uk_driving_licence),
        ("us_dea", us_dea),
    ];

    /// Every value made from `valid` by changing one digit among the positions `at` (all
    /// digit positions when empty) fails `f`.
    fn each_digit_changed_fails(f: Validator, valid: &str, at: &[usize]) {
        assert!(f(valid.as_bytes()), "{valid} is valid");
        let bytes = valid.as_bytes();
        let positions: Vec<usize> = (0..bytes.len())
            .filter(|i| bytes[*i].is_ascii_digit())
            .enumerate()
            .filter(|(k, _)| at.is_empty() || at.contains(k))
            .map(|(_, i)| i)
            .collect();
        assert!(!positions.is_empty());
        for i in positions {
            for d in b'0'..=b'9' {
                if d == bytes[i] {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = d;
                assert!(!f(&changed), "{} passes", String::from_utf8_lossy(&changed));
            }
        }
    }

    fn lengths_fail(f: Validator, valid: &str) {
        let mut longer = valid.to_owned();
        longer.push('0');
        assert!(!f(longer.as_bytes()), "{longer}");
        let mut shorter = valid.to_owned();
        shorter.pop();
        assert!(!f(shorter.as_bytes()), "{shorter}");
        assert!(!f(b""));
    }

    #[test]
    fn german_tax_id() {
        // the examples of ELSTER's specification
        for ok in [
            "02476291358",
            "86095742719",
            "47036892816",
            "65929970489",
            "57549285017",
            "25768131411",
            "86 095 742 719",
        ] {
            assert_eq!(de_tax_id(ok.as_bytes()), !ok.starts_with('0'), "{ok}");
        }
        for ok in ["86095742719", "47036892816", "65929970489"] {
            each_digit_changed_fails(de_tax_id, ok, &[]);
            lengths_fail(de_tax_id, ok);
        }
        assert!(!de_tax_id(b"86095742710"), "check digit");
        // a right check digit, but no digit repeated in the first ten
        assert!(!de_tax_id(b"12345678903") && !de_tax_id(b"98765432106"));
        // a digit three times in a row (the check digit right)
        assert!(!de_tax_id(b"11123456786") && !de_tax_id(b"11111111111"));
    }

    #[test]
    fn german_passport() {
        // the specimen C01X00T47 and its machine-readable form C01X00T478
        for ok in [
            "C01X00T478",
            "F204004812",
            "C012345650",
            "c012345650",
            "L01X00T448",
            "G000000024",
            "CZ6311T036",
        ] {
            assert!(de_passport(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(de_passport, "C01X00T478", &[]);
        lengths_fail(de_passport, "C01X00T478");
        assert!(
            !de_passport(b"C012345651") && !de_passport(b"A012345650"),
            "check digit, letter set"
        );
        assert!(!de_passport(b"9012345670"));
        assert!(de_passport_number(b"C01X00T47") && de_passport_number(b"cz6311t03"));
        assert!(
            !de_passport_number(b"A01X00T47") && !de_passport_number(b"C01X00T4") && !de_passport_number(b"C01A00T47")
        );
    }

    #[test]
    fn french_nir() {
        for ok in [
            "295109912611193",
            "2 95 10 99 126 111 93",
            "253072B07300470",
            "253072A07300443",
            "253072a07300443",
            "2951099126111 93",
        ] {
            assert!(fr_nir(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(fr_nir, "295109912611193", &[]);
        each_digit_changed_fails(fr_nir, "253072B07300470", &[]);
        lengths_fail(fr_nir, "295109912611193");
        assert!(!fr_nir(b"295109912611199"), "key");
        assert!(!fr_nir(b"253072C07300443"), "2C is no department");
        assert!(!fr_nir(b"253072A07300470"), "2A is not 2B");
        assert!(!fr_nir(b"595109912611193") && !fr_nir(b"295139912611193"), "sex, month");
    }

    #[test]
    fn dutch_bsn() {
        for ok in ["111222333", "123456782", "1234.56.782", "123 456 782"] {
            assert!(nl_bsn(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(nl_bsn, "123456782", &[]);
        lengths_fail(nl_bsn, "123456782");
        assert!(!nl_bsn(b"123456789") && !nl_bsn(b"000000000"));
    }

    #[test]
    fn belgian_national_number() {
        // 1985, and 2017 (the 2 in front)
        for ok in ["85073003328", "85.07.30-033.28", "17073003384", "850730 033 28"] {
            assert!(be_national_number(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(be_national_number, "85073003328", &[]);
        each_digit_changed_fails(be_national_number, "17073003384", &[]);
        lengths_fail(be_national_number, "85073003328");
        assert!(!be_national_number(b"85073003329"), "key");
        // 30 February, serial 000
        assert!(!be_national_number(b"85023003390") && !be_national_number(b"85073000061"));
    }

    #[test]
    fn swedish_personnummer() {
        for ok in [
            "811228-9874",
            "8112289874",
            "198112289874",
            "19811228-9874",
            "871220-2384",
            "189004119807",
            "811228+9874",
            // samordningsnummer: day + 60
            "701063-2391",
        ] {
            assert!(se_personnummer(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(se_personnummer, "811228-9874", &[]);
        each_digit_changed_fails(se_personnummer, "198112289874", &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        lengths_fail(se_personnummer, "8112289874");
        assert!(!se_personnummer(b"811228-9875"), "Luhn");
        assert!(
            !se_personnummer(b"19001309-2393") && !se_personnummer(b"200504422381"),
            "dates"
        );
        assert!(!se_personnummer(b"811228--9874") && !se_personnummer(b"178112289874"));
    }

    #[test]
    fn danish_cpr() {
        // 1 January 1970; 29 February 2000 (the seventh digit 4, the year 00)
        for ok in ["010170-1234", "0101701234", "290200-4321"] {
            assert!(dk_cpr(ok.as_bytes()), "{ok}");
        }
        assert!(!dk_cpr(b"290201-1234") && !dk_cpr(b"320170-1234") && !dk_cpr(b"011370-1234"));
        // 1900 is no leap year: 29 February 00 with the seventh digit 0
        assert!(!dk_cpr(b"290200-0321"));
        lengths_fail(dk_cpr, "010170-1234");
        // mod 11: 0707614285 is the classic example
        assert!(dk_cpr_mod11(b"070761-4285") && !dk_cpr_mod11(b"010170-1234"));
        each_digit_changed_fails(dk_cpr_mod11, "070761-4285", &[]);
    }

    #[test]
    fn indian_aadhaar_and_pan() {
        for ok in ["312345678909", "3998 7654 3211", "3123-4567-8909", "4001:2345:6787"] {
            assert!(in_aadhaar(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(in_aadhaar, "312345678909", &[]);
        lengths_fail(in_aadhaar, "312345678909");
        assert!(!in_aadhaar(b"123456789012") && !in_aadhaar(b"312345678908"));
        for ok in ["ABCPD1234Z", "abcpd1234z", "AAACB1234Q"] {
            assert!(in_pan(ok.as_bytes()), "{ok}");
        }
        assert!(!in_pan(b"ABCND1234Z") && !in_pan(b"ABCP1234ZZ") && !in_pan(b"ABCPD1234"));
    }

    #[test]
    fn australian_numbers() {
        assert!(au_tfn(b"876 543 210") && au_tfn(b"876543210") && au_tfn(b"123456782"));
        each_digit_changed_fails(au_tfn, "876543210", &[]);
        lengths_fail(au_tfn, "876543210");
        assert!(!au_tfn(b"824753557") && !au_tfn(b"000000000"));
        assert!(au_abn(b"51 824 753 556") && au_abn(b"51824753556"));
        each_digit_changed_fails(au_abn, "51824753556", &[]);
        lengths_fail(au_abn, "51824753556");
        assert!(!au_abn(b"52824753556") && !au_abn(b"00000000560"));
        assert!(au_medicare(b"2123 45670 1") && au_medicare(b"2123456701"));
        // the tenth digit is the issue number, outside the checksum
        each_digit_changed_fails(au_medicare, "2123456701", &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        lengths_fail(au_medicare, "2123456701");
        assert!(!au_medicare(b"2123258701") && !au_medicare(b"7123456701"));
    }

    #[test]
    fn singapore_nric_fin() {
        for ok in [
            "S1234567D",
            "T1234567J",
            "F1234567N",
            "G1234567X",
            "M1234567K",
            "s1234567d",
        ] {
            assert!(sg_nric_fin(ok.as_bytes()), "{ok}");
        }
        each_digit_changed_fails(sg_nric_fin, "S1234567D", &[]);
        each_digit_changed_fails(sg_nric_fin, "M1234567K", &[]);
        lengths_fail(sg_nric_fin, "S1234567D");
        assert!(!sg_nric_fin(b"S1234567A") && !sg_nric_fin(b"A1234567D") && !sg_nric_fin(b"M1234567L"));
    }

    #[test]
    fn korean_rrn() {
        for ok in ["960121-1234567", "9601211021413", "000505-3637892", "050912-2000019"] {
            assert!(kr_rrn(ok.as_bytes()), "{ok}");
        }
        assert!(!kr_rrn(b"001332-1234567") && !kr_rrn(b"960230-1234567") && !kr_rrn(b"960121-5234567"));
        // 29 February 2000 (3: born since 2000), not 1900 (1)
        assert!(kr_rrn(b"000229-3234567") && !kr_rrn(b"000229-1234567"));
        lengths_fail(kr_rrn, "960121-1234567");
        assert!(kr_rrn_checksum(b"960121-1021413") && !kr_rrn_checksum(b"960121-1021414"));
        // a changed digit moves the weighted sum; (11 - r) mod 10 takes r = 0 and r = 10 to
        // the same check digit, so count the changes that slip through that way
        let valid = b"9601211021413";
        let mut slipped = 0;
        for i in 0..13 {
            for d in b'0'..=b'9' {
                let mut changed = valid.to_vec();
                if changed[i] == d {
                    continue;
                }
                changed[i] = d;
                if kr_rrn_checksum(&changed) {
                    slipped += 1;
                }
            }
        }
        assert!(slipped <= 3, "{slipped}");
    }

    #[test]
    fn uk_driving_licence_rules() {
        for ok in [
            "MORGA607054SM9IJ",
            "MORGA657054SM9IJ",
            "FO999512018AA1AB",
            "JONES710153J99EF",
            "SMITH802290AB1CD",
            "morga607054sm9ij",
        ] {
            assert!(uk_driving_licence(ok.as_bytes()), "{ok}");
        }
        // a letter after the padding, no surname, 31 April, 29 February 1981
        for bad in [
            "FO9A9512018AA1AB",
            "99999512018AA1AB",
            "SMITH804310AB1CD",
            "SMITH802291AB1CD",
        ] {
            assert!(!uk_driving_licence(bad.as_bytes()), "{bad}");
        }
        lengths_fail(uk_driving_licence, "MORGA607054SM9IJ");
    }

    #[test]
    fn dea_numbers() {
        for ok in ["GL0285191", "EU4488929", "K92993548", "BB1388568", "bb1388568"] {
            assert!(us_dea(ok.as_bytes()), "{ok}");
        }
        assert!(!us_dea(b"BG8207031") && !us_dea(b"IB1388568") && !us_dea(b"B-1388568"));
        // weights 1 and 2: a change of 5 at a weight 2 goes unseen
        each_digit_changed_fails(us_dea, "BB1388568", &[0, 2, 4, 6]);
        lengths_fail(us_dea, "BB1388568");
    }

    fn found(text: &str, entity: &str) -> Vec<String> {
        let scanner = Scanner::builder().entities([entity.to_owned()]).build().unwrap();
        scanner
            .scan(text.as_bytes())
            .into_iter()
            .map(|f| text[f.start..f.end].to_owned())
            .collect()
    }

    #[test]
    fn weak_checksums_need_a_context_word() {
        for (entity, bare, with_context) in [
            ("NL_BSN", "value 123456782 ok", "BSN: 123456782"),
            ("AU_TFN", "value 876543210 ok", "my TFN is 876 543 210"),
            ("IN_AADHAAR", "value 312345678909 ok", "Aadhaar 3123 4567 8909"),
            ("AU_MEDICARE", "value 2123456701 ok", "Medicare card 2123 45670 1"),
            ("DE_PASSPORT", "value C01X00T47 ok", "Reisepass C01X00T47"),
            ("UK_PASSPORT", "value AB1234567 ok", "passport AB1234567"),
            ("MEDICAL_LICENSE", "value BB1388568 ok", "DEA number BB1388568"),
            ("DK_CPR", "value 010170-1234 ok", "CPR-nr. 010170-1234"),
            ("KR_RRN", "value 9601211234567 ok", "주민등록번호 9601211234567"),
            ("IN_PAN", "value ABCPD1234Z ok", "PAN ABCPD1234Z"),
        ] {
            assert!(found(bare, entity).is_empty(), "{entity}: {bare}");
            assert_eq!(found(with_context, entity).len(), 1, "{entity}: {with_context}");
        }
    }

    #[test]
    fn strong_checksums_stand_alone() {
        for (entity, text, value) in [
            ("DE_TAX_ID", "IdNr 86095742719.", "86095742719"),
            ("FR_NIR", "n° 2 95 10 99 126 111 93", "2 95 10 99 126 111 93"),
            ("BE_NATIONAL_NUMBER", "nr 85.07.30-033.28", "85.07.30-033.28"),
            ("SE_PERSONNUMMER", "pnr 19811228-9874 here", "19811228-9874"),
            ("AU_ABN", "ABN 51 824 753 556", "51 824 753 556"),
            ("SG_NRIC_FIN", "id S1234567D here", "S1234567D"),
            ("KR_RRN", "id 960121-1021413", "960121-1021413"),
            ("UK_DRIVING_LICENCE", "id MORGA607054SM9IJ", "MORGA607054SM9IJ"),
            ("DK_CPR", "id 070761-4285", "070761-4285"),
        ] {
            assert_eq!(found(text, entity), [value], "{entity}: {text}");
        }
        // a label says a number is something else
        assert!(found("Bestellnummer 86095742719", "DE_TAX_ID").is_empty());
    }

    /// Values of every entity here, for texts that run them together.
    const EXAMPLES: &[&str] = &[
        "86095742719",
        "86 095 742 719",
        "C01X00T41",
        "2 95 10 99 126 111 93",
        "253072B07300470",
        "1234.56.782",
        "85.07.30-033.28",
        "19811228-9874",
        "811228+9874",
        "070761-4285",
        "3123 4567 8909",
        "ABCPD1234Z",
        "876 543 210",
        "51 824 753 556",
        "2123 45670 1",
        "S1234567D",
        "960121-1021413",
        "AB1234567",
        "MORGA607054SM9IJ",
        "BB1388568",
    ];

    /// The hits of each recognizer here, run alone and in one [`Joint`] automaton.
    fn alone_and_joint(text: &[u8]) -> std::result::Result<(), String> {
        use super::super::builtin::build;
        use super::super::joint::Joint;
        use super::super::{Hit, PatternRecognizer, Recognizer};
        let all: Vec<Box<dyn Recognizer>> = specs()
            .into_iter()
            .map(build)
            .collect::<crate::error::Result<_>>()
            .map_err(|e| e.to_string())?;
        let members: Vec<&PatternRecognizer> = all.iter().filter_map(|r| r.as_joinable()).collect();
        assert_eq!(members.len(), all.len(), "every national recognizer joins");
        let joint = Joint::new(&members).map_err(|e| e.to_string())?;
        let spans = |hits: &[Hit]| -> Vec<(usize, usize, String)> {
            hits.iter()
                .map(|h| (h.start, h.end, format!("{:.2} {:?}", h.score, h.evidence)))
                .collect()
        };
        let mut scratch = crate::recognizers::joint::Scratch::default();
        joint.find(text, &members, &mut scratch);
        for (r, together) in members.iter().zip(scratch.out) {
            let mut alone = Vec::new();
            r.find(text, &mut alone);
            if spans(&alone) != spans(&together) {
                return Err(format!(
                    "{} in {:?}: alone {:?}, together {:?}",
                    r.entity(),
                    String::from_utf8_lossy(text),
                    spans(&alone),
                    spans(&together)
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn joint_finds_what_each_finds() -> std::result::Result<(), String> {
        alone_and_joint(EXAMPLES.join(" ").as_bytes())?;
        alone_and_joint(EXAMPLES.join("").as_bytes())?;
        alone_and_joint(EXAMPLES.join("-").as_bytes())
    }

    proptest! {
        #[test]
        fn joint_is_each_alone(
            pieces in proptest::collection::vec(
                prop_oneof![
                    4 => proptest::sample::select(EXAMPLES.to_vec()).prop_map(str::to_owned),
                    6 => proptest::sample::select(b"0123456789".to_vec()).prop_map(|b| char::from(b).to_string()),
                    3 => proptest::sample::select(b" -+.:\n".to_vec()).prop_map(|b| char::from(b).to_string()),
                    2 => proptest::sample::select(b"ABCDFGKMSTZabcms9".to_vec()).prop_map(|b| char::from(b).to_string()),
                ],
                0..24,
            )
        ) {
            alone_and_joint(pieces.concat().as_bytes()).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn validators_take_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..24)) {
            for (_, f) in ALL {
                let _ = f(&data);
            }
        }

        #[test]
        fn validators_take_any_digits_and_separators(
            data in proptest::collection::vec(
                proptest::sample::select(b"0123456789 -+.:ABSTMFGKZ9a".to_vec()),
                0..20,
            )
        ) {
            for (_, f) in ALL {
                let _ = f(&data);
            }
        }
    }
}
