//! CSV and TSV, record by record (RFC 4180 quoting, newlines inside quoted fields). The
//! first record is the header: each column's name is context for its values, and the
//! summary says which entities each column holds.

use std::io::{BufRead, Read};
use std::sync::Arc;

use super::{BlockStart, ColumnSummary, InputStats, Segment, Sink, scan_block};
use crate::scanner::Scanner;

/// A record (or, with an unbalanced quote, the run of lines it swallows) longer than this
/// is scanned as it stands, so a malformed file cannot make memory grow with its size.
const MAX_RECORD: u64 = 16 << 20;

/// Columns named and summarized; cells beyond are scanned without a name (a record of 16 MiB
/// of commas named 16 million columns: 2 GB of memory).
const MAX_COLUMNS: usize = 4096;

/// Reads one record (with its line end) into `out`; false at the end of the input.
fn read_record(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<bool> {
    out.clear();
    let mut quoted = false;
    loop {
        let start = out.len();
        let room = MAX_RECORD.saturating_sub(start as u64).max(1);
        let n = reader.by_ref().take(room).read_until(b'\n', out)?;
        if n == 0 {
            return Ok(!out.is_empty());
        }
        quoted ^= out[start..].iter().filter(|&&b| b == b'"').count() % 2 == 1;
        if !quoted || out.len() as u64 >= MAX_RECORD {
            return Ok(true);
        }
    }
}

/// Field content ranges of a record: inside the quotes for quoted fields.
fn fields(record: &[u8], delim: u8) -> Vec<(usize, usize)> {
    let mut end = record.len();
    while end > 0 && matches!(record[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i < end && record[i] == b'"' {
            let s = i + 1;
            let mut j = s;
            while j < end {
                if record[j] == b'"' {
                    if record.get(j + 1) == Some(&b'"') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            i = j + 1;
            while i < end && record[i] != delim {
                i += 1;
            }
            // text after the closing quote (`"Weber, J"x`, not CSV) is the cell's too: a
            // value there is scanned, not dropped
            out.push((s, if i > j + 1 { i } else { j.min(end) }));
        } else {
            let s = i;
            while i < end && record[i] != delim {
                i += 1;
            }
            out.push((s, i));
        }
        if i >= end {
            break;
        }
        i += 1; // the delimiter
    }
    out
}

/// The delimiter a CSV file's first record uses: of `,` `;` tab and `|` (outside quotes), the
/// one it holds most (a semicolon is the CSV of spreadsheets in German, French, Dutch,
/// Italian and Spanish, where the comma is the decimal sign); `,` when none.
fn sniff_delimiter(record: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in record {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(k) = CANDIDATES.iter().position(|&c| c == b) {
            counts[k] += 1;
        }
    }
    // the first of those held most: a tie is read as a comma
    let most = counts.iter().copied().max().unwrap_or(0);
    match counts.iter().position(|&n| n == most) {
        Some(k) if most > 0 => CANDIDATES[k],
        _ => b',',
    }
}

/// Scans CSV (`delim`, or the delimiter its first record uses when `None`), record by record.
pub(crate) fn scan(
    scanner: &Scanner,
    mut reader: impl BufRead,
    delim: Option<u8>,
    sink: &mut dyn Sink,
) -> std::io::Result<InputStats> {
    let mut delim = delim;
    let mut stats = InputStats::default();
    let mut record = Vec::new();
    let mut header: Vec<Arc<str>> = Vec::new();
    let mut offset = 0u64;
    let mut line = 1u64;
    let mut first = true;
    while read_record(&mut reader, &mut record)? {
        // Excel's `sep=;` line before the header names the delimiter
        if first && delim.is_none() {
            let text = record.strip_suffix(b"\n").unwrap_or(&record);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if let Some(&[d]) = text.strip_prefix(b"sep=") {
                delim = Some(d);
                // (handed on as it is: redaction writes it back)
                scan_block(scanner, &record, BlockStart::line(offset, line), Vec::new(), &[], sink)?;
                offset += record.len() as u64;
                line += 1;
                continue;
            }
        }
        let delim = *delim.get_or_insert_with(|| sniff_delimiter(&record));
        let ranges = fields(&record, delim);
        // an empty cell holds nothing to scan (a record of commas alone was 100 bytes of
        // memory a cell)
        let segments = ranges
            .iter()
            .enumerate()
            .filter(|(_, (s, e))| s < e)
            .map(|(k, &(s, e))| Segment {
                start: s,
                end: e,
                field: if first { None } else { header.get(k).cloned() },
                pointer: None,
                written: super::Written::AsIs,
            })
            .collect();
        let found = scan_block(scanner, &record, BlockStart::line(offset, line), segments, &[], sink)?;
        // the findings of each cell: both are in order, so one walk (a wide row of
        // addresses asked every finding for each cell: quadratic)
        let mut next = 0;
        let mut in_cell = |s: usize, e: usize| {
            while found.get(next).is_some_and(|f| f.start < s) {
                next += 1;
            }
            let first = next;
            while found.get(next).is_some_and(|f| f.start < e) {
                next += 1;
            }
            &found[first..next]
        };
        if first {
            // Header names are context and appear in the output; a cell that holds personal
            // data (a file without a header row) is named by its position instead, whatever
            // entity types the scan looks for.
            header = ranges
                .iter()
                .take(MAX_COLUMNS)
                .enumerate()
                .map(|(k, &(s, e))| {
                    if scanner.names_personal_data(&record[s..e]) {
                        Arc::from(format!("column {}", k + 1))
                    } else {
                        Arc::from(String::from_utf8_lossy(&record[s..e]).replace("\"\"", "\"").trim())
                    }
                })
                .collect();
            stats.columns = header
                .iter()
                .map(|h| ColumnSummary {
                    column: h.to_string(),
                    ..Default::default()
                })
                .collect();
        } else {
            if ranges.len() > MAX_COLUMNS && stats.note.is_none() {
                stats.note = Some(format!(
                    "line {line} has more than {MAX_COLUMNS} columns; those beyond are scanned unnamed and not summarized"
                ));
            }
            for (k, &(s, e)) in ranges.iter().take(MAX_COLUMNS).enumerate() {
                if k >= stats.columns.len() {
                    stats.columns.push(ColumnSummary {
                        column: format!("column {}", k + 1),
                        ..Default::default()
                    });
                }
                let col = &mut stats.columns[k];
                col.rows += 1;
                let mut seen: Vec<&str> = Vec::new();
                for f in in_cell(s, e) {
                    if !seen.contains(&&*f.entity_type) {
                        seen.push(&f.entity_type);
                        *col.entities.entry(f.entity_type.to_string()).or_default() += 1;
                    }
                }
            }
        }
        first = false;
        line += memchr::memchr_iter(b'\n', &record).count() as u64;
        offset += record.len() as u64;
        stats.bytes = offset;
        sink.progress(offset);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::scan_str;
    use super::*;

    #[test]
    fn quoted_fields() {
        assert_eq!(fields(b"a,\"b,\"\"c\",d\r\n", b','), vec![(0, 1), (3, 8), (10, 11)]);
        assert_eq!(fields(b"a\tb", b'\t'), vec![(0, 1), (2, 3)]);
        assert_eq!(fields(b"", b','), vec![(0, 0)]);
    }

    #[test]
    fn columns_are_context_and_summarized() {
        let csv = "id,contact,note\n1,alice@example.com,\"call 078-05-1123\nlater\"\n2,bob@example.org,none\n";
        let (found, stats) = scan_str(csv, Format::Csv);
        let emails: Vec<_> = found
            .iter()
            .filter(|l| &*l.finding.entity_type == "EMAIL_ADDRESS")
            .collect();
        assert_eq!(emails.len(), 2);
        assert_eq!(&csv[emails[1].finding.start..emails[1].finding.end], "bob@example.org");
        assert_eq!((emails[1].line, emails[1].column), (4, 3));
        assert_eq!(emails[0].field.as_deref(), Some("contact"));
        let contact = &stats.columns[1];
        assert_eq!((contact.rows, contact.entities.get("EMAIL_ADDRESS")), (2, Some(&2)));
        let ssn = found.iter().find(|l| &*l.finding.entity_type == "US_SSN");
        assert!(ssn.is_some_and(|l| &csv[l.finding.start..l.finding.end] == "078-05-1123" && l.line == 2));
    }

    #[test]
    fn tsv_columns() {
        let tsv = "ip\tcomment, with comma\n203.0.113.9\tfine\n";
        let (found, stats) = scan_str(tsv, Format::Tsv);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field.as_deref(), Some("ip"));
        assert_eq!(&tsv[found[0].finding.start..found[0].finding.end], "203.0.113.9");
        assert_eq!(stats.columns[1].column, "comment, with comma");
    }

    #[test]
    fn wide_rows_name_and_summarize_their_first_columns() {
        // every cell is scanned; empty cells and columns beyond the cap cost no memory each
        let wide = MAX_COLUMNS + 100;
        let header: Vec<String> = (0..wide).map(|k| format!("email{k}")).collect();
        let row: Vec<String> = (0..wide).map(|k| format!("jo{k}@example.com")).collect();
        let csv = format!("{}\n{}\n{}\n", header.join(","), row.join(","), ",".repeat(wide));
        let (found, stats) = scan_str(&csv, Format::Csv);
        assert_eq!(found.len(), wide);
        assert_eq!(found[wide - 1].field, None);
        assert_eq!(found[0].field.as_deref(), Some("email0"));
        assert_eq!(stats.columns.len(), MAX_COLUMNS);
        assert_eq!(stats.columns[7].entities.get("EMAIL_ADDRESS"), Some(&1));
        assert_eq!(stats.columns[7].rows, 2);
        assert!(stats.note.is_some_and(|n| n.contains("more than 4096 columns")));
    }

    /// Spreadsheets in most of Europe write CSV with `;`: its rows are read by that, a
    /// quoted comma in a cell splits nothing, and text after a closing quote is scanned.
    #[test]
    fn the_delimiter_is_the_one_the_header_uses() {
        assert_eq!(sniff_delimiter(b"Name;E-Mail;Notiz\n"), b';');
        assert_eq!(sniff_delimiter(b"\"a,b\"|c|d\n"), b'|');
        assert_eq!(sniff_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a;b,c\n"), b',');
        assert_eq!(sniff_delimiter(b"name\n"), b',');
        let csv = "Name;E-Mail;Telefon\n\"Weber, J\u{fc}rgen\";j.weber@gmx.de;+49 30 12345678\n";
        let (found, stats) = scan_str(csv, Format::Csv);
        let cells: Vec<_> = found
            .iter()
            .map(|l| (l.finding.entity_type.as_ref(), l.field.as_deref()))
            .collect();
        assert!(cells.contains(&("EMAIL_ADDRESS", Some("E-Mail"))), "{cells:?}");
        assert!(cells.contains(&("PHONE_NUMBER", Some("Telefon"))), "{cells:?}");
        assert_eq!(stats.columns.len(), 3);
        assert_eq!(fields(b"\"a\"jo@example.com,b\n", b','), [(1, 17), (18, 19)]);
        assert_eq!(fields(b"\"a,b\",c\n", b','), [(1, 4), (6, 7)]);
    }

    /// Excel's `sep=;` line names the delimiter; the header is the line after it.
    #[test]
    fn a_sep_line_names_the_delimiter() {
        let csv = "sep=;\r\n\"Name\";\"Steuer-ID\"\r\n\"Meier\";\"86095742719\"\r\n";
        let (found, stats) = scan_str(csv, Format::Csv);
        let columns: Vec<_> = stats.columns.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(columns, ["Name", "Steuer-ID"]);
        assert!(
            found
                .iter()
                .any(|l| l.field.as_deref() == Some("Steuer-ID") && l.line == 3),
            "{found:?}"
        );
    }

    #[test]
    fn a_header_cell_with_personal_data_is_not_a_column_name() {
        let csv = "alice@example.com,note\nbob@example.org,ok\n";
        let (found, stats) = scan_str(csv, Format::Csv);
        assert_eq!(found.len(), 2, "the first row is scanned too");
        assert_eq!(stats.columns[0].column, "column 1");
        assert_eq!(stats.columns[1].column, "note");
        assert!(found.iter().all(|l| l.field.as_deref() != Some("alice@example.com")));
    }
}
