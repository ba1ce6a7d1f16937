//! Inputs made to hurt: long runs that could make a recognizer quadratic, malformed CSV and
//! JSON, invalid UTF-8. Each must be scanned (no panic, no hang) with sane offsets.

use custodia_pii::Scanner;
use custodia_pii::input::{Collect, Format, Located, scan_reader};

fn scan(data: &[u8], format: Format) -> Vec<Located> {
    let scanner = Scanner::builder()
        .min_score(0.0)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut sink = Collect::default();
    let stats = scan_reader(&scanner, data, format, &mut sink).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.bytes, data.len() as u64);
    for l in &sink.found {
        assert!(l.finding.start < l.finding.end && l.finding.end <= data.len(), "{l:?}");
    }
    sink.found
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

/// One JSON string or CSV cell is scanned whole, not in blocks: runs there must stay linear
/// without the blocks' help (a string of `www.` repeated, numbers after an identifier's name
/// among other findings, a row of thousands of addresses were each quadratic).
#[test]
fn long_values_stay_linear() {
    let www = format!("[\"{}\"]", "www.".repeat(500_000));
    let _ = scan(www.as_bytes(), Format::Json);
    let mixed = format!(
        "[\"{}{}\"]",
        "1.1.1.1 ".repeat(30_000),
        "ssn 020 7946 0018 ".repeat(15_000)
    );
    assert!(scan(mixed.as_bytes(), Format::Json).len() >= 30_000);
    let row: Vec<String> = (0..40_000).map(|k| format!("jo{k}@example.com")).collect();
    let wide = format!("contact\n{}\n", row.join(","));
    assert_eq!(scan(wide.as_bytes(), Format::Csv).len(), 40_000);
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

/// A text input streams in blocks: a 24 MiB reader reaches the sink in many blocks, each
/// bounded, so memory does not grow with the input.
#[test]
fn text_streams_in_bounded_blocks() {
    struct Blocks {
        count: usize,
        largest: usize,
        bytes: usize,
    }
    impl custodia_pii::input::Sink for Blocks {
        fn findings(&mut self, _: Vec<Located>) -> std::io::Result<()> {
            Ok(())
        }
        fn block(&mut self, bytes: &[u8], _: &[custodia_pii::Finding], _: &[(usize, usize)]) -> std::io::Result<()> {
            self.count += 1;
            self.largest = self.largest.max(bytes.len());
            self.bytes += bytes.len();
            Ok(())
        }
    }
    /// The same line forever, never held whole in memory.
    struct Lines(&'static [u8], usize);
    impl std::io::Read for Lines {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            for (i, b) in buf.iter_mut().enumerate().take(4096) {
                *b = self.0[(self.1 + i) % self.0.len()];
            }
            let n = buf.len().min(4096);
            self.1 += n;
            Ok(n)
        }
    }
    let total = 24 << 20;
    let reader = std::io::Read::take(
        Lines(b"mail bob@example.com about 078-05-1123 today\n", 0),
        total as u64,
    );
    let scanner = Scanner::builder().entities(["US_SSN"]).build().unwrap();
    let mut sink = Blocks {
        count: 0,
        largest: 0,
        bytes: 0,
    };
    scan_reader(&scanner, reader, Format::Text, &mut sink).unwrap();
    assert_eq!(sink.bytes, total);
    assert!(sink.count >= 20, "{} blocks", sink.count);
    assert!(sink.largest <= (1 << 20) + 4096, "largest block {}", sink.largest);
}
