//! Inputs: plain text and logs, CSV/TSV (column-aware), JSON and NDJSON (key-aware), any of
//! them gzip-compressed; files, directories (honouring .gitignore, skipping binaries) and
//! standard input. Everything streams in blocks, so memory stays flat on large inputs,
//! except a `.json` document, which is read whole.
//!
//! Offsets in findings are byte offsets into the (decompressed) content; lines and columns
//! count from 1, columns in Unicode characters.

mod csv;
mod json;
mod text;
mod utf16;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::finding::Finding;
use crate::scanner::Scanner;

pub use self::json::JsonError;
pub(crate) use self::json::unescape;

/// How a content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Csv,
    Tsv,
    Json,
    Ndjson,
}

impl Format {
    /// From a file name (`.gz` stripped first): `.csv`, `.tsv`, `.json`, `.ndjson`/`.jsonl`,
    /// anything else is text.
    pub fn from_path(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        match name.rsplit('.').next() {
            Some("csv") => Self::Csv,
            Some("tsv") | Some("tab") => Self::Tsv,
            Some("json") => Self::Json,
            Some("ndjson") | Some("jsonl") => Self::Ndjson,
            _ => Self::Text,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" | "txt" | "log" => Self::Text,
            "csv" => Self::Csv,
            "tsv" => Self::Tsv,
            "json" => Self::Json,
            "ndjson" | "jsonl" => Self::Ndjson,
            _ => return None,
        })
    }
}

/// A finding placed in its input.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    #[serde(flatten)]
    pub finding: Finding,
    pub line: u64,
    pub column: u64,
    /// JSON pointer of the value (JSON and NDJSON inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Header of the column (CSV and TSV inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Which entities a CSV column holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnSummary {
    pub column: String,
    pub rows: u64,
    /// Rows with at least one finding of each entity type.
    pub entities: BTreeMap<String, u64>,
}

/// What a scan of one input produced besides findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputStats {
    pub bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnSummary>,
    /// Why the input was read as text instead of its declared format, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A block of the input: bytes with their absolute offset and first line, split into
/// segments (the whole block, or each CSV field / JSON string with its name).
pub(crate) struct Segment {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) field: Option<Arc<str>>,
    pub(crate) pointer: Option<String>,
    pub(crate) written: Written,
}

/// How a segment's bytes write its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// As they are (text, a CSV field).
    AsIs,
    /// The raw content of a JSON string: scanned with its escapes decoded (`\n` is a line
    /// break, `\u5c71` a letter), its findings placed on the escapes that wrote them.
    JsonString,
    /// A JSON number: one written with a fraction or an exponent that is a whole number
    /// (`4000056655665556.0`, `4.000056655665556e15`, as a float column is exported) is
    /// scanned as its digits, a finding covering the whole number.
    JsonNumber,
}

/// Receives findings and, for redaction, the blocks themselves.
pub trait Sink {
    /// Findings of a block, ordered by start.
    fn findings(&mut self, found: Vec<Located>) -> std::io::Result<()>;
    /// The raw bytes of a block, the findings in it, and the stretches of it read as JSON
    /// (a JSON document, an NDJSON line, an object in a log line: redaction writes JSON
    /// there), offsets relative to the block. Scanning ignores it; redaction rewrites the
    /// block.
    fn block(&mut self, _bytes: &[u8], _found: &[Finding], _json: &[(usize, usize)]) -> std::io::Result<()> {
        Ok(())
    }
    /// Bytes read so far, for progress.
    fn progress(&mut self, _bytes: u64) {}
}

/// A sink that keeps every finding and where the input was read as JSON (for texts that
/// fit in memory: an HTTP body, a test).
#[derive(Debug, Default)]
pub struct Collect {
    pub found: Vec<Located>,
    /// The stretches read as JSON, offsets in the input, in order: what
    /// [`crate::Redactor::redact`] redacts as JSON.
    pub json: Vec<(usize, usize)>,
    /// Where the next block starts in the input.
    read: usize,
}

impl Sink for Collect {
    fn findings(&mut self, found: Vec<Located>) -> std::io::Result<()> {
        self.found.extend(found);
        Ok(())
    }

    fn block(&mut self, bytes: &[u8], _found: &[Finding], json: &[(usize, usize)]) -> std::io::Result<()> {
        let at = self.read;
        self.json.extend(json.iter().map(|&(s, e)| (at + s, at + e)));
        self.read += bytes.len();
        Ok(())
    }
}

/// Where a block starts in its input: byte offset, line, and column (characters; 1 unless
/// the block starts inside a line longer than a block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockStart {
    pub(crate) offset: u64,
    pub(crate) line: u64,
    pub(crate) column: u64,
}

impl BlockStart {
    pub(crate) fn line(offset: u64, line: u64) -> Self {
        Self {
            offset,
            line,
            column: 1,
        }
    }
}

/// Scans the segments of a block and hands the results to the sink.
pub(crate) fn scan_block(
    scanner: &Scanner,
    block: &[u8],
    start: BlockStart,
    segments: Vec<Segment>,
    json: &[(usize, usize)],
    sink: &mut dyn Sink,
) -> std::io::Result<Vec<Finding>> {
    let rel = scan_segments(scanner, block, segments, 0);
    emit_block(block, start, rel, json, sink)
}

/// A finding with its offsets in a block, and its JSON pointer and field name, if any.
pub(crate) type Placed = (Finding, Option<String>, Option<String>);

/// The findings of a block's segments, each scanned with its field name as context (a JSON
/// string with its escapes decoded), placed in the block.
/// A JSON string holding JSON objects whose strings hold escapes (a log message that is a JSON
/// document, logged in a JSON document) has those objects read as JSON, as a text's are
/// ([`json::objects_in_lines`]): `"{\"e\":\"\\nsmith@…\"}"` holds `smith@…` after a line
/// break, not `nsmith@…`. `depth` is how many such strings this one stands in; deeper than
/// [`NESTED_JSON`] its objects are read as text.
pub(crate) fn scan_segments(scanner: &Scanner, block: &[u8], segments: Vec<Segment>, depth: usize) -> Vec<Placed> {
    let mut rel: Vec<Placed> = Vec::new();
    for seg in segments {
        let raw = &block[seg.start..seg.end];
        let decoded = match seg.written {
            Written::JsonString if raw.contains(&b'\\') => Some(json::unescape(raw)),
            Written::JsonNumber => json::whole_number_digits(raw).map(|digits| {
                // every digit stands for the whole number
                let mut m = crate::mapped::Mapped::with_capacity(digits.len());
                m.put(&digits, 0);
                m.finish(raw.len())
            }),
            _ => None,
        };
        let text = decoded.as_ref().map_or(raw, |d| &d.text[..]);
        let mut found: Vec<(Finding, Option<String>)> = scanner
            .scan_field(text, seg.field.as_deref())
            .into_iter()
            .map(|f| (f, seg.field.as_deref().map(str::to_owned)))
            .collect();
        if seg.written == Written::JsonString && depth < NESTED_JSON && memchr::memchr(b'\\', text).is_some() {
            let objects = json::objects_in_lines(text, scanner, depth + 1);
            if !objects.is_empty() {
                // what the text's scan found in an object gives way to what its JSON holds
                let mut in_objects = json::in_objects(&objects);
                found.retain(|(f, _)| !in_objects(f.start, f.end));
                drop(in_objects);
                for (_, _, inner) in objects {
                    found.extend(
                        inner
                            .into_iter()
                            .map(|(f, _, field)| (f, field.or_else(|| seg.field.as_deref().map(str::to_owned)))),
                    );
                }
            }
        }
        for (mut f, field) in found {
            if let Some(d) = &decoded {
                (f.start, f.end) = d.original_span((f.start, f.end));
            }
            f.start += seg.start;
            f.end += seg.start;
            rel.push((f, seg.pointer.clone(), field));
        }
    }
    rel
}

/// How deep JSON strings holding JSON are read as JSON ([`scan_segments`]).
const NESTED_JSON: usize = 3;

/// Hands a block's findings (offsets in the block, with their JSON pointer and field name)
/// to the sink, located by line and column, with the stretches of the block read as JSON.
pub(crate) fn emit_block(
    block: &[u8],
    start: BlockStart,
    mut rel: Vec<Placed>,
    json: &[(usize, usize)],
    sink: &mut dyn Sink,
) -> std::io::Result<Vec<Finding>> {
    rel.sort_by_key(|(f, _, _)| f.start);
    // lines and columns, walking the block once (columns counted from the previous finding
    // on the same line, so a long line with many findings stays linear)
    let BlockStart {
        offset: base_offset,
        mut line,
        mut column,
    } = start;
    let mut at = 0usize;
    let mut located = Vec::with_capacity(rel.len());
    let mut block_findings = Vec::with_capacity(rel.len());
    for (f, pointer, field) in rel {
        let gap = &block[at..f.start];
        match memchr::memrchr(b'\n', gap) {
            Some(last) => {
                line += memchr::memchr_iter(b'\n', gap).count() as u64;
                column = 1 + chars(&gap[last + 1..]);
            }
            None => column += chars(gap),
        }
        at = f.start;
        block_findings.push(f.clone());
        let mut abs = f;
        abs.start += base_offset as usize;
        abs.end += base_offset as usize;
        located.push(Located {
            finding: abs,
            line,
            column,
            pointer,
            field,
        });
    }
    sink.block(block, &block_findings, json)?;
    sink.findings(located)?;
    Ok(block_findings)
}

/// Characters (not bytes) in UTF-8 text.
pub(crate) fn chars(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| (c & 0xC0) != 0x80).count() as u64
}

/// Scans a reader. Gzip is recognized by its magic bytes.
pub fn scan_reader(
    scanner: &Scanner,
    reader: impl Read,
    format: Format,
    sink: &mut dyn Sink,
) -> crate::Result<InputStats> {
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let gz = buffered
        .fill_buf()
        .map_err(|e| io_err("input", e))?
        .starts_with(&[0x1f, 0x8b]);
    if gz {
        let decoder = flate2::bufread::MultiGzDecoder::new(buffered);
        scan_text_of(scanner, BufReader::with_capacity(1 << 16, decoder), format, sink)
    } else {
        scan_text_of(scanner, buffered, format, sink)
    }
}

/// Scans text in UTF-8, or in UTF-16 read as UTF-8 (offsets are then those of its UTF-8
/// form, which a note says).
fn scan_text_of(
    scanner: &Scanner,
    mut reader: impl BufRead,
    format: Format,
    sink: &mut dyn Sink,
) -> crate::Result<InputStats> {
    let head = reader.fill_buf().map_err(|e| io_err("input", e))?;
    let Some(order) = utf16::order(&head[..head.len().min(512)]) else {
        return scan_plain(scanner, reader, format, sink);
    };
    let decoded = BufReader::with_capacity(1 << 16, utf16::Decoder::new(reader, order));
    let mut stats = scan_plain(scanner, decoded, format, sink)?;
    let read = format!(
        "read as {}: offsets and sizes are those of its UTF-8 form (and redaction writes UTF-8)",
        order.name()
    );
    stats.note = Some(match stats.note.take() {
        Some(note) => format!("{read}; {note}"),
        None => read,
    });
    Ok(stats)
}

fn io_err(what: &str, e: std::io::Error) -> crate::Error {
    crate::Error::Io {
        path: what.into(),
        source: e,
    }
}

fn scan_plain(
    scanner: &Scanner,
    reader: impl BufRead,
    format: Format,
    sink: &mut dyn Sink,
) -> crate::Result<InputStats> {
    match format {
        Format::Text => text::scan(scanner, reader, sink),
        Format::Csv => csv::scan(scanner, reader, None, sink),
        Format::Tsv => csv::scan(scanner, reader, Some(b'\t'), sink),
        Format::Ndjson => json::scan_lines(scanner, reader, sink),
        Format::Json => json::scan_document(scanner, reader, sink),
    }
    .map_err(|e| io_err("input", e))
}

/// Whether the first bytes look binary: a NUL byte (as git and ripgrep decide), unless the
/// text is UTF-16 (read as text), or is text around a few NULs (a log with one: valid UTF-8
/// once they are left out, NULs and other control bytes at most 1% of it). A gate that skipped
/// such a file would let personal data through behind one NUL.
pub fn looks_binary(head: &[u8]) -> bool {
    if memchr::memchr(0, head).is_none() || utf16::order(&head[..head.len().min(512)]).is_some() {
        return false;
    }
    let text: Vec<u8> = head.iter().copied().filter(|&b| b != 0).collect();
    // (the head may end inside a character)
    let utf8 = std::str::from_utf8(&text).map_or_else(|e| e.error_len().is_none(), |_| true);
    let odd = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    !(utf8 && odd * 100 <= head.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_text_does_not_make_it_binary() {
        let mut log = b"a\0b zz-unique-83@example.org\n".to_vec();
        log.extend(b"more text, lines of it\n".repeat(20));
        assert!(!looks_binary(&log));
        assert!(!looks_binary(b"plain text"));
        // an image, an executable, a run of NULs: binary
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0"));
        assert!(looks_binary(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0"));
        assert!(looks_binary(&[0u8; 64]));
        assert!(looks_binary(b"text\xff\xfe\0 with invalid bytes"));
    }

    pub(crate) fn scan_str(text: &str, format: Format) -> (Vec<Located>, InputStats) {
        let scanner = Scanner::builder().build().ok();
        let mut sink = Collect::default();
        let stats = scanner
            .as_ref()
            .and_then(|s| scan_reader(s, text.as_bytes(), format, &mut sink).ok())
            .unwrap_or_default();
        (sink.found, stats)
    }

    /// A key or header that holds personal data is printed as `*` or `column N` whatever the
    /// scan is narrowed to: looking for phones only, or at high scores only, does not print
    /// the email address or name a key is.
    #[test]
    fn names_holding_personal_data_stay_hidden_in_a_narrowed_scan() -> crate::Result<()> {
        let narrowed = [
            Scanner::builder().entities(["PHONE_NUMBER"]).build()?,
            Scanner::builder().min_score(0.95).build()?,
            Scanner::builder().language(false).build()?,
        ];
        for scanner in &narrowed {
            let scan = |text: &str, format| -> crate::Result<(Vec<Located>, InputStats)> {
                let mut sink = Collect::default();
                let stats = scan_reader(scanner, text.as_bytes(), format, &mut sink)?;
                Ok((sink.found, stats))
            };
            let (found, _) = scan(r#"{"quagga77@example.org":{"phone":"+44 20 7946 0958"}}"#, Format::Json)?;
            let pointers: Vec<_> = found.iter().filter_map(|l| l.pointer.as_deref()).collect();
            assert!(pointers.contains(&"/*/phone"), "{scanner:?}: {pointers:?}");
            let (found, stats) = scan("quagga77@example.org,Anna Schmidt\n+44 20 7946 0958,x\n", Format::Csv)?;
            let fields: Vec<_> = found.iter().filter_map(|l| l.field.as_deref()).collect();
            let columns: Vec<_> = stats.columns.iter().map(|c| c.column.as_str()).collect();
            assert!(
                fields.iter().all(|f| f.starts_with("column ")),
                "{scanner:?}: {fields:?}"
            );
            assert_eq!(columns, ["column 1", "column 2"], "{scanner:?}");
        }
        Ok(())
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(Format::from_path(Path::new("a/b.CSV.gz")), Format::Csv);
        assert_eq!(Format::from_path(Path::new("x.jsonl")), Format::Ndjson);
        assert_eq!(Format::from_path(Path::new("server.log")), Format::Text);
    }

    #[test]
    fn text_lines_and_columns() {
        let text = "first line\nmail: bob@example.com\nnaïve é 078-05-1123\n";
        let (found, stats) = scan_str(text, Format::Text);
        assert_eq!(stats.bytes, text.len() as u64);
        let email = found.iter().find(|l| &*l.finding.entity_type == "EMAIL_ADDRESS");
        assert!(email.is_some_and(|l| l.line == 2
            && l.column == 7
            && &text[l.finding.start..l.finding.end] == "bob@example.com"));
        let ssn = found.iter().find(|l| &*l.finding.entity_type == "US_SSN");
        assert!(ssn.is_some_and(|l| l.line == 3 && l.column == 9), "{found:?}");
    }

    #[test]
    fn a_table_in_a_text_file_names_its_columns_in_every_block() {
        // a bare national phone number is reported beside its column's header, in the
        // first block and in the later ones
        let mut text = String::from("Name;E-Mail;Telefon;Karte\n");
        let row = "Jo Beck;jo@example.com;0285361092;x\n";
        while text.len() < text::BLOCK + 100 {
            text.push_str(row);
        }
        let (found, _) = scan_str(&text, Format::Text);
        let phones: Vec<usize> = found
            .iter()
            .filter(|l| &*l.finding.entity_type == "PHONE_NUMBER")
            .map(|l| l.finding.start)
            .collect();
        let rows = text.lines().count() - 1;
        assert_eq!(phones.len(), rows);
        assert!(phones.last().is_some_and(|&p| p > text::BLOCK), "a later block");
    }

    #[test]
    fn columns_go_on_in_a_line_longer_than_a_block() {
        // a line longer than a block is cut at whitespace; the email after the cut is
        // still on line 2 at its column
        let mut text = String::from("first\n");
        while text.len() < text::BLOCK + 10 {
            text.push_str("word ");
        }
        let column = text.len() - "first\n".len() + 1;
        text.push_str("bob@example.com\n");
        let (found, _) = scan_str(&text, Format::Text);
        let email = found.iter().find(|l| &*l.finding.entity_type == "EMAIL_ADDRESS");
        assert!(
            email.is_some_and(|l| l.line == 2 && l.column == column as u64),
            "{:?}",
            email.map(|l| (l.line, l.column))
        );
    }

    /// A line longer than a block (a one-line SQL dump, a minified export) is cut where no
    /// finding stands, with the words before the cut read again: its findings are those of
    /// the whole line scanned at once, values written with spaces included (cut at the last
    /// whitespace, `+44 20 | 7946 0958` was two numbers, or none, at every block's end).
    #[test]
    fn a_line_longer_than_a_block_is_not_cut_inside_a_value() -> std::result::Result<(), String> {
        let scanner = Scanner::builder().build().map_err(|e| e.to_string())?;
        // each record, and the least findings of the whole line (in the second, nothing:
        // the groups after `xx4111` are no number; cut at whitespace, a block began with
        // `1111 1111 x`, a phone number)
        let records: [(&dyn Fn(usize) -> String, usize); 7] = [
            (
                &|k| format!("({k},'Jo Beck','+44 20 7946 0{:03}','4111 1111 1111 1111'),", k % 1000),
                100_000,
            ),
            (&|_| "xx4111 1111 1111 1111 x ".to_owned(), 0),
            (
                &|k| format!("call {} 555 {:04} or mail {k}@example.com; ", 200 + k % 700, k % 10_000),
                50_000,
            ),
            // context words with a long word between them and the value, before and after
            (
                &|k| format!("phone {} 020 7946 0{:03} ", "x".repeat(300 + (k % 7) * 700), k % 1000),
                500,
            ),
            (
                &|k| format!("020 7946 0{:03} {} phone ", k % 1000, "y".repeat(300 + (k % 7) * 700)),
                500,
            ),
            // email addresses longer than the bytes read after a cut
            (&|k| format!("{}@example.com ", "x".repeat(3000 + (k % 5) * 1500)), 200),
            // Chinese, no whitespace anywhere: cut between its letters
            (
                &|k| format!("{}卡号4111111111111111，山田@example.jp", "中".repeat(1000 + k % 997)),
                500,
            ),
        ];
        for (record, least) in records {
            let mut text = String::new();
            let mut k = 0;
            while text.len() < 2 * text::BLOCK + 3000 {
                text.push_str(&record(k));
                k += 1;
            }
            let mut sink = Collect::default();
            scan_reader(&scanner, text.as_bytes(), Format::Text, &mut sink).map_err(|e| e.to_string())?;
            let blocks: Vec<_> = sink.found.iter().map(|l| (l.finding.start, l.finding.end)).collect();
            let whole: Vec<_> = scanner.scan(text.as_bytes()).iter().map(|f| (f.start, f.end)).collect();
            assert!(whole.len() >= least, "{} findings in {:?}", whole.len(), record(0));
            if blocks != whole {
                let first = blocks.iter().zip(&whole).position(|(a, b)| a != b);
                return Err(format!(
                    "{:?}: {} findings in blocks, {} in the whole line; first difference at {first:?}",
                    record(0).chars().take(60).collect::<String>(),
                    blocks.len(),
                    whole.len()
                ));
            }
        }
        Ok(())
    }

    /// Chinese has no whitespace: a line of it longer than a block is cut between its
    /// letters, never inside the identifier standing at the block's end (a cut at the
    /// block's last byte lost the card, the next block reading it as context only).
    #[test]
    fn a_line_without_whitespace_is_cut_between_letters() -> std::result::Result<(), String> {
        let scanner = Scanner::builder().build().map_err(|e| e.to_string())?;
        let card = "4111111111111111";
        for card_start in [
            text::BLOCK - 10,
            text::BLOCK - 16,
            text::BLOCK - 17,
            text::BLOCK - 1,
            text::BLOCK,
        ] {
            // ASCII `x`s put the card where wanted among letters of three bytes
            let pad = card_start % 3;
            let text = format!(
                "{}{}{card}{}",
                "x".repeat(pad),
                "中".repeat(card_start / 3),
                "中".repeat(300_000)
            );
            let mut sink = Collect::default();
            scan_reader(&scanner, text.as_bytes(), Format::Text, &mut sink).map_err(|e| e.to_string())?;
            let cards: Vec<_> = sink
                .found
                .iter()
                .filter(|l| &*l.finding.entity_type == "CREDIT_CARD")
                .map(|l| &text[l.finding.start..l.finding.end])
                .collect();
            if cards != [card] {
                return Err(format!("card at {card_start}: {cards:?}"));
            }
        }
        Ok(())
    }

    /// Redaction rewrites the blocks the sink is handed: in lines longer than a block too,
    /// every byte is handed over once, in order, and each finding lies inside its block.
    #[test]
    fn blocks_hand_every_byte_over_once() -> std::result::Result<(), String> {
        #[derive(Default)]
        struct Blocks {
            bytes: Vec<u8>,
            outside: usize,
        }
        impl Sink for Blocks {
            fn findings(&mut self, _: Vec<Located>) -> std::io::Result<()> {
                Ok(())
            }
            fn block(&mut self, bytes: &[u8], found: &[Finding], _: &[(usize, usize)]) -> std::io::Result<()> {
                self.outside += found.iter().filter(|f| f.start > f.end || f.end > bytes.len()).count();
                self.bytes.extend_from_slice(bytes);
                Ok(())
            }
        }
        let scanner = Scanner::builder().build().map_err(|e| e.to_string())?;
        let mut dump = String::from("INSERT INTO t VALUES ");
        while dump.len() < 3 * text::BLOCK {
            dump.push_str("(7,'Jo Beck','+44 20 7946 0958','jo@example.com'),");
        }
        // a URL longer than a block (the cut falls back to whitespace), a token of a
        // megabyte and more without whitespace, lines of both kinds after one another
        let url = format!("see https://example.com/{} now\n", "a".repeat(text::BLOCK + 500));
        let blob = format!("{}\nshort line 555 0100\n{dump}", "Zm9v4111".repeat(text::BLOCK / 5));
        for text in [dump.clone(), url, blob] {
            let mut sink = Blocks::default();
            scan_reader(&scanner, text.as_bytes(), Format::Text, &mut sink).map_err(|e| e.to_string())?;
            assert_eq!(sink.outside, 0, "findings outside their block");
            assert!(sink.bytes == text.as_bytes(), "the blocks are not the input");
        }
        Ok(())
    }

    /// A reader that hands over a few bytes at a time, as many as its pattern says.
    struct Trickle<'a> {
        data: &'a [u8],
        sizes: std::iter::Cycle<std::slice::Iter<'a, usize>>,
        ready: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.fill_buf()?.len().min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.consume(n);
            Ok(n)
        }
    }

    impl std::io::BufRead for Trickle<'_> {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            if self.ready == 0 {
                self.ready = self.sizes.next().copied().unwrap_or(1).min(self.data.len());
            }
            Ok(&self.data[..self.ready])
        }
        fn consume(&mut self, n: usize) {
            self.data = &self.data[n..];
            self.ready -= n;
        }
    }

    /// The findings of a text read from a pipe do not depend on how its reads fall: blocks
    /// end where the bytes say, not where a read did (a value's context word at a block's
    /// edge was found in one run and not in the next).
    #[test]
    fn blocks_do_not_depend_on_how_the_reader_hands_bytes_over() -> std::result::Result<(), String> {
        let mut text = String::new();
        let mut k = 0u64;
        while text.len() < 2 * text::BLOCK + 5000 {
            k += 1;
            // the context word of each number on the line after it, so that a block ending
            // between the two lines changes the number's evidence; lines of several lengths
            text.push_str(&format!(
                "{} 4111 1111 1111 1111\ncard zz yy ww vv uu tt ss rr qq pp oo nn mm ll kk jj\n",
                "x".repeat((k % 7) as usize)
            ));
        }
        let scanner = Scanner::builder().build().map_err(|e| e.to_string())?;
        let run = |sizes: &[usize]| -> std::result::Result<Vec<(usize, usize, String)>, String> {
            let mut sink = Collect::default();
            let reader = Trickle {
                data: text.as_bytes(),
                sizes: sizes.iter().cycle(),
                ready: 0,
            };
            scan_reader(&scanner, reader, Format::Text, &mut sink).map_err(|e| e.to_string())?;
            Ok(sink
                .found
                .iter()
                .map(|l| (l.finding.start, l.finding.end, format!("{:?}", l.finding.evidence)))
                .collect())
        };
        let whole = run(&[usize::MAX])?;
        assert!(whole.len() > 1000);
        for sizes in [&[8192][..], &[1, 4093, 65536, 17], &[3000, 5000, 700]] {
            assert_eq!(run(sizes)?, whole, "reads of {sizes:?}");
        }
        Ok(())
    }

    #[test]
    fn gzip_is_decompressed() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = enc.write_all(b"card 4111 1111 1111 1111\n");
        let gz = enc.finish().unwrap_or_default();
        let scanner = Scanner::builder().build().ok();
        let mut sink = Collect::default();
        if let Some(s) = &scanner {
            let _ = scan_reader(s, &gz[..], Format::Text, &mut sink);
        }
        assert_eq!(sink.found.len(), 1);
        assert_eq!((sink.found[0].finding.start, sink.found[0].finding.end), (5, 24));
    }
}
