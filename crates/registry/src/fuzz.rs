//! Fuzzing as plain tests (issue 17): proptest over arbitrary text and over mutations of the
//! example registry. [`Registry::parse`] must never panic, and every problem must come back
//! as a [`Diagnostic`] that points at a place in the text (a line that exists, a column in
//! it). The smaller parsers of registry values (dates, time limits, request types) are fuzzed
//! beside it.
//!
//! A parse of the example takes one or two milliseconds in a debug build, so the case
//! counts are modest; `PROPTEST_CASES=5000 cargo test -p custodia-registry fuzz` fuzzes longer.

use proptest::prelude::*;
use proptest::sample::Index;

use crate::{Date, EXAMPLE_REGISTRY, Registry, RequestType, TimeLimit};

/// Cases per property: `default`, or `PROPTEST_CASES` when it is set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        ..ProptestConfig::default()
    }
}

/// Parses `text` and checks what comes back: a registry, or diagnostics that each name the
/// file and a line and column inside `text`.
fn parse_checked(text: &str) -> Result<Option<Registry>, TestCaseError> {
    match Registry::parse("fuzz.toml", text) {
        Ok(registry) => Ok(Some(registry)),
        Err(err) => {
            prop_assert!(!err.diagnostics.is_empty(), "an error without a diagnostic");
            let lines: Vec<&str> = text.split('\n').collect();
            for d in &err.diagnostics {
                prop_assert_eq!(&d.file, "fuzz.toml");
                prop_assert!(
                    (1..=lines.len()).contains(&d.line),
                    "{} is not a line of a text of {} lines",
                    d,
                    lines.len()
                );
                let width = lines[d.line - 1].chars().count();
                prop_assert!((1..=width + 1).contains(&d.column), "{} is not a column of its line", d);
                prop_assert!(!d.message.is_empty());
            }
            Ok(None)
        }
    }
}

/// Values a registry key may be given: right and wrong types, edges of numbers, dates,
/// periods, names, control and bidirectional-override characters.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"\"",
            "\"x\"",
            "\"GB\"",
            "\"gb\"",
            "\"en\"",
            "\"pt-BR\"",
            "\"e-\"",
            "\"-\"",
            "true",
            "false",
            "0",
            "-1",
            "1",
            "255",
            "4294967296",
            "9223372036854775807",
            "-9223372036854775808",
            "1.5",
            "nan",
            "inf",
            "1979-05-27",
            "1979-05-27T07:32:00Z",
            "[]",
            "[\"\"]",
            "[1, \"a\"]",
            "{}",
            "{ period = \"\" }",
            "{ period = \"0d\", from = \"collection\" }",
            "{ period = \"99999999999y\", from = \"collection\" }",
            "{ period = \"-1m\", from = \"last_update\" }",
            "{ period = \"1d\", from = \"consent_withdrawn\" }",
            "\"0 days\"",
            "\"999 business_days\"",
            "\"1000 months\"",
            "\"45 days\"",
            "\"1 month\"",
            "\"9999-12-31\"",
            "\"0000-01-01\"",
            "\"2027-02-29\"",
            "\"2028-02-29\"",
            "\"-001-01-01\"",
            "[\"2027-02-30\"]",
            "[\"9999-12-31\", \"0000-01-01\"]",
            "\"https://\"",
            "\"http://localhost\"",
            "\"http://127.0.0.1.example\"",
            "\"a\\u0000b\"",
            "\"\\r\"",
            "\"\\u202e\"",
            "\"line\\nbreak\"",
            "\"\\t\"",
            "\"ﬁ\"",
            "\"é\"",
            "\"\\u{1F600}\"",
            "\"user.contact.email\"",
            "\"user\"",
            "\"email\"",
            "\"consent\"",
            "\"legitimate_interests\"",
            "\"masked\"",
            "\"token\"",
            "\"admin\"",
            "\"without undue delay\"",
            "\"72 hours\"",
            "\"0 hours\"",
            "\"3651 days\"",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[a-z_]{0,8}\"",
        "\"[ -~]{0,12}\"".prop_map(|s| s.replace('\\', "/")),
        "\\[(\"[a-z_.]{0,10}\", ){0,3}\\]",
    ]
}

/// Lines a registry could hold: keys, tables and arrays of tables of every section, and
/// tables the registry does not know.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec![
                "name",
                "contact",
                "country",
                "language",
                "category",
                "type",
                "searchable",
                "legal_basis",
                "fields",
                "retention",
                "purposes",
                "recipients",
                "output",
                "capabilities",
                "description",
                "interest",
                "survives_erasure",
                "sale_or_sharing",
                "compatible_with",
                "write",
                "delete",
                "grantable_roles",
                "role",
                "country_code",
                "transfer",
                "dates",
                "respond_within",
                "extension",
                "holidays",
                "request_types",
                "next_working_day",
                "laws",
                "title",
                "jurisdictions",
                "to",
                "within",
                "when",
                "citation",
                "session_minutes",
                "max_failed_logins",
                "break_glass_minutes",
                "break_glass_roles",
                "alert_webhook",
                "valid_days",
                "remind_days",
                "attributes",
                "open_ticket",
                "unknown_key",
            ]),
            value(),
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        prop::sample::select(vec![
            "[organization]",
            "[collections.customers]",
            "[collections.x.fields.y]",
            "[collections.Bad]",
            "[purposes.p]",
            "[purposes.order_fulfillment]",
            "[recipients.r]",
            "[roles.r]",
            "[roles.admin.output]",
            "[policy_context]",
            "[context_signers.s]",
            "[jurisdictions.gdpr]",
            "[jurisdictions.j.types.access]",
            "[jurisdictions.j.types.nope]",
            "[holidays.GB]",
            "[holidays.US-VA]",
            "[holidays.x]",
            "[breach_laws.b]",
            "[[breach_laws.b.notices]]",
            "[[breach_laws.gdpr.notices]]",
            "[incidents]",
            "[operators]",
            "[training.t]",
            "[nonsense]",
            "[[collections]]",
            "",
            "# comment",
        ])
        .prop_map(str::to_owned),
    ]
}

/// One change to the example registry, by line (so that most results are still TOML and
/// reach the validation) or by character (so that some are not).
#[derive(Debug, Clone)]
enum Edit {
    /// Remove a line.
    Delete(Index),
    /// Copy a line to another place (a duplicate key or table).
    Duplicate(Index, Index),
    /// Exchange two lines (a key moves to another table).
    Swap(Index, Index),
    /// Give the key of a `key = value` line another value.
    Revalue(Index, String),
    /// Insert a line.
    Insert(Index, String),
    /// Replace a run of characters with other text.
    Splice(Index, usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        4 => (any::<Index>(), value()).prop_map(|(a, v)| Edit::Revalue(a, v)),
        2 => (any::<Index>(), line()).prop_map(|(a, l)| Edit::Insert(a, l)),
        1 => (any::<Index>(), 0usize..8, prop_oneof!["[\\[\\]=\"'{},.#a-z0-9 \\n]{0,4}", any::<String>()])
            .prop_map(|(a, n, s)| Edit::Splice(a, n, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    for edit in edits {
        let n = lines.len();
        match edit {
            Edit::Delete(i) if n > 1 => {
                lines.remove(i.index(n));
            }
            Edit::Delete(_) => {}
            Edit::Duplicate(from, to) => {
                let copy = lines[from.index(n)].clone();
                lines.insert(to.index(n + 1), copy);
            }
            Edit::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Revalue(i, value) => {
                // The i-th `key = value` line, counted cyclically.
                let keyed: Vec<usize> = (0..n).filter(|&j| lines[j].contains(" = ")).collect();
                if !keyed.is_empty() {
                    let j = keyed[i.index(keyed.len())];
                    if let Some((key, _)) = lines[j].split_once(" = ") {
                        lines[j] = format!("{key} = {value}");
                    }
                }
            }
            Edit::Insert(i, line) => lines.insert(i.index(n + 1), line.clone()),
            Edit::Splice(i, len, with) => {
                let mut chars: Vec<char> = lines.join("\n").chars().collect();
                let at = i.index(chars.len() + 1);
                let end = (at + len).min(chars.len());
                chars.splice(at..end, with.chars());
                lines = chars
                    .into_iter()
                    .collect::<String>()
                    .split('\n')
                    .map(str::to_owned)
                    .collect();
            }
        }
    }
    lines.join("\n")
}

/// Whether `text` is TOML at all (the validation, not the TOML parser, then judges it).
fn is_toml(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok()
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text, and text made of registry-like lines, never makes the parser panic;
    /// whatever is wrong is reported at a line and column of the text.
    #[test]
    fn arbitrary_text_is_parsed_or_refused(
        text in prop_oneof![
            any::<String>(),
            proptest::collection::vec(line(), 0..24).prop_map(|lines| lines.join("\n")),
        ],
    ) {
        parse_checked(&text)?;
    }

    /// Mutations of the example registry (lines removed, duplicated, swapped, inserted,
    /// values replaced by values of every type, characters spliced) never make the parser
    /// panic. Whatever is wrong is reported at a line and column of the text; a text that is
    /// still TOML is refused by the validation with diagnostics, not by a panic.
    #[test]
    fn example_mutations_are_parsed_or_refused(edits in proptest::collection::vec(edit(), 1..6)) {
        let text = apply(EXAMPLE_REGISTRY, &edits);
        let parsed = parse_checked(&text)?;
        if parsed.is_some() {
            prop_assert!(is_toml(&text));
        }
    }

    /// `YYYY-MM-DD` dates: arbitrary text is read or refused, and what is read prints back
    /// as the same text.
    #[test]
    fn dates_round_trip(
        text in prop_oneof![any::<String>(), "[0-9]{4}-[0-9]{2}-[0-9]{2}", "[0-9+-]{10}"],
        days in prop_oneof![any::<i64>(), -800_000i64..3_000_000],
    ) {
        if let Ok(date) = Date::parse(&text) {
            prop_assert_eq!(date.to_string(), text);
        }
        if let Some(date) = Date::from_days_since_epoch(days)
            && (0..=9999).contains(&date.year())
        {
            prop_assert_eq!(Date::parse(&date.to_string()).ok(), Some(date));
        }
    }

    /// Time limits and request types: arbitrary text is read or refused, and what is read
    /// prints as text that reads back the same.
    #[test]
    fn time_limits_and_request_types_round_trip(
        text in prop_oneof![
            any::<String>(),
            "[0-9]{1,4} (day|days|business_day|business_days|month|months|week)",
            "[ 0-9a-z_+-]{0,20}",
        ],
    ) {
        if let Ok(limit) = text.parse::<TimeLimit>() {
            prop_assert!((1..=999).contains(&limit.count));
            prop_assert_eq!(limit.to_string().parse::<TimeLimit>(), Ok(limit));
        }
        if let Ok(kind) = text.parse::<RequestType>() {
            prop_assert_eq!(kind.as_str(), text.as_str());
        }
    }
}

/// The mutation machinery leaves the example alone when asked to change nothing, and the
/// example parses: the properties above start from a valid registry.
#[test]
fn the_example_is_the_starting_point() {
    assert_eq!(apply(EXAMPLE_REGISTRY, &[]), EXAMPLE_REGISTRY);
    assert!(parse_checked(EXAMPLE_REGISTRY).is_ok_and(|r| r.is_some()));
}
