//! Fuzzing as plain tests (issue 17): proptest over the scanner's inputs. Arbitrary UTF-8
//! and arbitrary bytes, alone and dense with personal data, through every entry point (a
//! text, a field's value, a reader as text, CSV, TSV, JSON and NDJSON, gzip-compressed or
//! not): no panic, every span inside the input (on character boundaries when the input is
//! UTF-8) and placed at the right line and column, the same findings every time. Beside
//! them: the validators, the redaction operators and `reveal`.
//!
//! A debug-build scan of a few hundred bytes takes milliseconds, so the case counts are
//! modest; `PROPTEST_CASES=5000 cargo test -p custodia-pii --test it fuzz` fuzzes longer.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use custodia_pii::input::{Collect, Format, Located, scan_reader};
use custodia_pii::redact::{Operator, RedactKey, Redactor, reveal};
use custodia_pii::{Finding, Scanner, validate};
use proptest::prelude::*;

/// Cases per property: `default`, or `PROPTEST_CASES` when it is set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every recognizer, every score: the widest scan (built once; building compiles the patterns).
fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::builder().min_score(0.0).build().unwrap())
}

/// Values recognizers find and words that raise their scores.
const VALUES: &[&str] = &[
    "bob@example.com",
    "078-05-1123",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "+44 20 7123 4567",
    "(212) 555-0123",
    "203.0.113.7",
    "2001:db8::1",
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "121000358",
    "AB123456C",
    "943 476 5919",
    "Jennifer Smith",
    "Mr. John",
    "12 Main Street",
    "5 May 2021",
    "https://x.com/a?b=1",
    "ssn",
    "phone",
    "email",
    "card",
    "routing number",
];

/// What stands between values: separators the lexer and the structured readers react to,
/// and characters that change length when their case changes.
const MARKS: &[&str] = &[
    "İ",
    "ß",
    "\u{212a}",
    "ǅ",
    "é",
    "\u{202e}",
    "\u{0}",
    "\u{10ffff}",
    "ﬁ",
    "\"",
    "\"\"",
    ",",
    "\t",
    "\n",
    "\r\n",
    " ",
    "  ",
    "{",
    "}",
    "[",
    "]",
    ":",
    "\\",
    "\\u00e9",
    "\\ud800",
    "\\\"",
    "1e999",
    "-0",
    "@",
    ".",
    "-",
    "::",
    "#",
];

/// Text dense with [`VALUES`] and [`MARKS`], or any text at all.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(str::to_owned),
        3 => prop::sample::select(MARKS).prop_map(str::to_owned),
        1 => "[ -~]{1,6}",
        1 => any::<String>(),
    ];
    prop_oneof![
        3 => proptest::collection::vec(piece, 0..24).prop_map(|parts| parts.concat()),
        1 => any::<String>(),
    ]
}

/// Bytes: any, or text with bytes that are not UTF-8 spliced in.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            text(),
            proptest::collection::vec((any::<prop::sample::Index>(), 0x80u8..=0xff), 0..4)
        )
            .prop_map(|(text, junk)| {
                let mut bytes = text.into_bytes();
                for (at, b) in junk {
                    let at = at.index(bytes.len() + 1);
                    bytes.insert(at, b);
                }
                bytes
            }),
    ]
}

/// CSV or TSV with a header and quoted and unquoted fields of [`text`].
fn delimited(delim: char) -> impl Strategy<Value = String> {
    let field = prop_oneof![
        text().prop_map(move |t| t.replace([delim, '"', '\n'], " ")),
        text().prop_map(|t| format!("\"{}\"", t.replace('"', "\"\""))),
        text(),
    ];
    proptest::collection::vec(proptest::collection::vec(field, 1..5), 1..6).prop_map(move |rows| {
        rows.iter()
            .map(|r| r.join(&delim.to_string()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// JSON values of [`text`] strings and numbers, nested a little, sometimes broken.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        text().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    let value = leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    (
        value,
        prop_oneof![Just(None), (any::<prop::sample::Index>(), 1usize..4).prop_map(Some)],
    )
        .prop_map(|(value, cut)| {
            let text = value.to_string();
            match cut {
                // Broken JSON: a few characters removed somewhere.
                Some((at, n)) => {
                    let mut chars: Vec<char> = text.chars().collect();
                    let at = at.index(chars.len() + 1);
                    let end = (at + n).min(chars.len());
                    chars.drain(at..end);
                    chars.into_iter().collect()
                }
                None => text,
            }
        })
}

/// Checks a scan of one text's findings: inside it, non-empty, on character boundaries when
/// it is UTF-8, ordered, scored in [0, 1], of an entity the scanner knows.
fn check_findings(data: &[u8], found: &[Finding]) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(data).ok();
    for f in found {
        prop_assert!(
            f.start < f.end && f.end <= data.len(),
            "{:?} outside {} bytes",
            f,
            data.len()
        );
        if let Some(text) = text {
            prop_assert!(
                text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                "{:?} splits a character of {:?}",
                f,
                text
            );
        }
        prop_assert!((0.0..=1.0).contains(&f.score), "{:?}", f);
        prop_assert!(scanner().entities().contains(&f.entity_type), "{:?}", f);
    }
    prop_assert!(
        found.windows(2).all(|w| w[0].start <= w[1].start),
        "not ordered: {:?}",
        found
    );
    Ok(())
}

/// Scans `data` read as `format` and checks the findings and where they are placed: line
/// and column those of the start offset (columns in characters, counted as the scanner
/// counts them: bytes that do not continue a UTF-8 sequence).
fn scan_checked(data: &[u8], format: Format) -> Result<Vec<Located>, TestCaseError> {
    let mut sink = Collect::default();
    let stats = scan_reader(scanner(), data, format, &mut sink);
    let stats = match stats {
        Ok(stats) => stats,
        Err(err) => {
            // Only a gzip stream that does not decompress is refused.
            prop_assert!(data.starts_with(&[0x1f, 0x8b]), "{:?} refused: {}", format, err);
            return Ok(Vec::new());
        }
    };
    // (bytes whose every other one is NUL are read as UTF-16: offsets are then those of the
    // text's UTF-8 form, which the note says)
    if stats.note.as_deref().is_some_and(|n| n.contains("UTF-16")) {
        for l in &sink.found {
            let f = &l.finding;
            prop_assert!(f.start < f.end && f.end as u64 <= stats.bytes, "{:?} outside", l);
        }
        return Ok(sink.found);
    }
    prop_assert_eq!(stats.bytes, data.len() as u64);
    let text = std::str::from_utf8(data).ok();
    for l in &sink.found {
        let f = &l.finding;
        prop_assert!(
            f.start < f.end && f.end <= data.len(),
            "{:?} outside {} bytes",
            l,
            data.len()
        );
        if let Some(text) = text {
            prop_assert!(
                text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                "{:?} splits a character",
                l
            );
        }
        let before = &data[..f.start];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = 1 + data[line_start..f.start].iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64;
        prop_assert_eq!((l.line, l.column), (line, column), "{:?} misplaced", l);
    }
    Ok(sink.found)
}

fn spans(found: &[Located]) -> Vec<(usize, usize, String)> {
    found
        .iter()
        .map(|l| (l.finding.start, l.finding.end, l.finding.entity_type.to_string()))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    /// Any UTF-8 text, scanned alone or as a named field's value: spans inside the text on
    /// character boundaries, ordered, and the same on a second scan.
    #[test]
    fn any_text_scans_to_spans_within_it(text in text(), field in prop_oneof![Just(None), text().prop_map(Some)]) {
        let found = scanner().scan(text.as_bytes());
        check_findings(text.as_bytes(), &found)?;
        prop_assert_eq!(&found, &scanner().scan(text.as_bytes()), "not deterministic");
        let in_field = scanner().scan_field(text.as_bytes(), field.as_deref());
        check_findings(text.as_bytes(), &in_field)?;
        prop_assert_eq!(in_field, scanner().scan_field(text.as_bytes(), field.as_deref()), "not deterministic");
    }

    /// Any bytes (not UTF-8 too): spans inside them, the same on a second scan.
    #[test]
    fn any_bytes_scan_to_spans_within_them(data in bytes()) {
        let found = scanner().scan(&data);
        check_findings(&data, &found)?;
        prop_assert_eq!(found, scanner().scan(&data), "not deterministic");
    }

    /// A reader in every format, over any bytes or text: read whole, findings inside the
    /// input at their line and column, the same every time.
    #[test]
    fn any_input_reads_in_every_format(data in prop_oneof![bytes(), text().prop_map(String::into_bytes)]) {
        for format in [Format::Text, Format::Csv, Format::Tsv, Format::Json, Format::Ndjson] {
            let found = scan_checked(&data, format)?;
            prop_assert_eq!(spans(&found), spans(&scan_checked(&data, format)?), "{:?} not deterministic", format);
        }
    }

    /// CSV and TSV with quoted fields, and JSON and NDJSON documents (some broken): findings
    /// inside the input at their line and column, the same every time.
    #[test]
    fn structured_inputs_read_within_them(
        csv in delimited(','),
        tsv in delimited('\t'),
        document in json(),
        lines in proptest::collection::vec(json(), 0..4),
    ) {
        let ndjson = lines.join("\n");
        for (data, format) in [(&csv, Format::Csv), (&tsv, Format::Tsv), (&document, Format::Json), (&ndjson, Format::Ndjson)] {
            let found = scan_checked(data.as_bytes(), format)?;
            prop_assert_eq!(spans(&found), spans(&scan_checked(data.as_bytes(), format)?), "{:?} not deterministic", format);
        }
    }

    /// A gzip-compressed input gives the findings of the same input uncompressed.
    #[test]
    fn gzip_input_scans_as_its_content(data in text()) {
        let plain = scan_checked(data.as_bytes(), Format::Text)?;
        let mut sink = Collect::default();
        scan_reader(scanner(), &gzip(data.as_bytes())[..], Format::Text, &mut sink).unwrap();
        prop_assert_eq!(spans(&sink.found), spans(&plain));
    }

    /// Encrypting every finding and revealing the result gives the text back; `reveal` over
    /// any text (and over encrypted text changed anywhere) answers or refuses, never panics.
    #[test]
    fn encrypted_findings_reveal_to_the_text(
        text in text(),
        noise in prop_oneof![
            any::<String>(),
            "\\[enc:[A-Z][A-Z0-9_]{0,8}:[A-Za-z0-9_-]{18,60}\\]",
        ],
        flip in (any::<prop::sample::Index>(), any::<u8>()),
    ) {
        let key = Arc::new(RedactKey::from_array(&[7; 32]));
        let redactor = Redactor::new(HashMap::new(), Operator::Encrypt, Some(Arc::clone(&key))).unwrap();
        let found = scanner().scan(text.as_bytes());
        let (redacted, applied) = redactor.redact(text.as_bytes(), &found, &[], None).unwrap();
        prop_assert_eq!(applied.is_empty(), found.is_empty());
        if !text.contains("[enc:") {
            prop_assert_eq!(reveal(&redacted, &key).unwrap(), text.as_bytes());
        }
        let _ = reveal(noise.as_bytes(), &key);
        let mut changed = redacted;
        if !changed.is_empty() {
            let (at, b) = flip;
            let at = at.index(changed.len());
            changed[at] = b;
        }
        let _ = reveal(&changed, &key);
    }

    /// Every redaction operator over any findings (scanned, or made up and overlapping):
    /// an answer or a typed error, never a panic.
    #[test]
    fn redaction_takes_any_findings(
        data in bytes(),
        made_up in proptest::collection::vec((0usize..400, 0usize..400, 0.0f32..=1.0), 0..6),
        operator in prop_oneof![
            Just("mask"), Just("mask:4"), Just("mask:99999999999"), Just("replace"), Just("hash"),
            Just("encrypt"), Just("tokenize"), Just("keep"),
        ],
    ) {
        let mut found = scanner().scan(&data);
        found.extend(made_up.into_iter().map(|(start, end, score)| Finding {
            entity_type: Arc::from("EMAIL_ADDRESS"),
            start,
            end,
            score,
            evidence: Vec::new(),
        }));
        if let Ok(operator) = Operator::parse(operator) {
            let key = Arc::new(RedactKey::from_array(&[9; 32]));
            let redactor = Redactor::new(HashMap::new(), operator, Some(key)).unwrap();
            // as text, and as JSON throughout
            let _ = redactor.redact(&data, &found, &[], None);
            let _ = redactor.redact(&data, &found, &[(0, data.len())], None);
        }
    }

    /// Validators, operator names and redaction keys take any input without a panic.
    #[test]
    fn small_parsers_take_any_input(data in bytes(), text in text()) {
        for name in validate::VALIDATOR_NAMES {
            let check = validate::by_name(name).unwrap();
            let _ = check(&data);
            let _ = check(text.as_bytes());
        }
        for check in [validate::card_iin, validate::us_ssn, validate::it_vat, validate::luhn] {
            let _ = check(&data);
        }
        let _ = Operator::parse(&text);
        let _ = RedactKey::from_hex(&text);
        let _ = custodia_pii::redact::normal_form("EMAIL_ADDRESS", &data);
        let _ = custodia_pii::redact::normal_form("IBAN_CODE", &data);
        let _ = custodia_pii::redact::normal_form("UK_NINO", &data);
    }
}
