//! Inputs made to hurt: long runs that could make a recognizer quadratic, malformed CSV and
//! JSON, invalid UTF-8. Each must be scanned (no panic, no hang) with sane offsets.

use custodia_pii::Scanner;
use custodia_pii::input::{Format, Located, Sink, scan_reader};

#[derive(Default)]
struct Count(Vec<Located>);

impl Sink for Count {
    fn findings(&mut self, found: Vec<Located>) -> std::io::Result<()> {
        self.0.extend(found);
        Ok(())
    }
}

fn scan(data: &[u8], format: Format) -> Vec<Located> {
    let scanner = Scanner::builder()
        .min_score(0.0)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut sink = Count::default();
    let stats = scan_reader(&scanner, data, format, &mut sink).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.bytes, data.len() as u64);
    for l in &sink.0 {
        assert!(l.finding.start < l.finding.end && l.finding.end <= data.len(), "{l:?}");
    }
    sink.0
}

#[test]
fn long_runs_stay_linear() {
    let cases: Vec<Vec<u8>> = vec![
        "1 ".repeat(200_000).into_bytes(),
        "4111 ".repeat(100_000).into_bytes(),
        format!("AB12 {}", "3456 ".repeat(100_000)).into_bytes(),
        format!("http://x.com/{}", "10.0.0.1/".repeat(50_000)).into_bytes(),
        "::".repeat(200_000).into_bytes(),
        "a@".repeat(200_000).into_bytes(),
        "1".repeat(1_000_000).into_bytes(),
        "May ".repeat(100_000).into_bytes(),
        "Mr. John ".repeat(100_000).into_bytes(),
        "12 Main Street, ".repeat(50_000).into_bytes(),
        vec![0xff; 500_000],
    ];
    for data in cases {
        let _ = scan(&data, Format::Text);
    }
}

#[test]
fn malformed_structured_inputs_fall_back() {
    let unbalanced = format!("a,b\n1,\"{}\n", "x 078-05-1123\n".repeat(10_000));
    let found = scan(unbalanced.as_bytes(), Format::Csv);
    assert!(!found.is_empty());
    let deep = format!("{}\"078-05-1123\"{}", "[".repeat(100_000), "]".repeat(100_000));
    let found = scan(deep.as_bytes(), Format::Json);
    assert_eq!(found.len(), 1, "scanned as text");
    let bad_lines = "{\"a\": \"078-05-1123\"\n\u{0}\u{1}\n{\"b\":\n";
    let _ = scan(bad_lines.as_bytes(), Format::Ndjson);
    let _ = scan(b"\"unterminated 078-05-1123", Format::Json);
    let _ = scan(b"", Format::Csv);
    let _ = scan(b"", Format::Json);
}
