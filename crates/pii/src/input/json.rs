//! JSON documents and NDJSON lines. Every string (and number) value is scanned with its
//! key as context and reported with its JSON pointer. Content that is not valid JSON is
//! scanned as text, with a note.

use std::io::{BufRead, Read};
use std::sync::Arc;

use super::{BlockStart, InputStats, Placed, Segment, Sink, Written, scan_block, scan_segments};
use crate::mapped::Mapped;
use crate::scanner::Scanner;

/// Longest NDJSON line parsed as JSON.
const MAX_LINE: u64 = 16 << 20;

/// Deepest nesting read; deeper documents are scanned as text.
const MAX_DEPTH: usize = 256;

/// Where and why a JSON text is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub message: &'static str,
}

struct Parser<'a> {
    b: &'a [u8],
    /// Keys are data too (a map keyed by email address): a key with a finding is scanned
    /// as a segment and stands as `*` in pointers, which are printed. Without a scanner
    /// (where only the shape of the JSON is asked for) every key is a segment.
    scanner: Option<&'a Scanner>,
    i: usize,
    out: Vec<Segment>,
    path: Vec<String>,
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> JsonError {
        JsonError {
            offset: self.i,
            message,
        }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn pointer(&self) -> String {
        self.path.iter().map(|t| format!("/{}", escape_pointer(t))).collect()
    }

    /// The raw content range of a string starting at the opening quote.
    fn string(&mut self) -> Result<(usize, usize), JsonError> {
        let s = self.i + 1;
        let mut j = s;
        while j < self.b.len() {
            match self.b[j] {
                b'"' => {
                    self.i = j + 1;
                    return Ok((s, j));
                }
                b'\\' => {
                    // an escape JSON knows, or the text is no JSON (read as text, with a note)
                    let known = match self.b.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') if hex4(self.b, j + 2).is_some() => 6,
                        _ => {
                            return Err(JsonError {
                                offset: j,
                                message: "invalid escape in a string",
                            });
                        }
                    };
                    j += known;
                }
                c if c < 0x20 => {
                    return Err(JsonError {
                        offset: j,
                        message: "control character in a string",
                    });
                }
                _ => j += 1,
            }
        }
        Err(self.err("unterminated string"))
    }

    fn value(&mut self, key: Option<&Arc<str>>, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let (s, e) = self.string()?;
                    // decoded as the value is (a lone surrogate is U+FFFD, not the raw key:
                    // `"\ud800jo\u0040example.com"` is an address all the same)
                    let mut name = String::from_utf8_lossy(&unescape(&self.b[s..e]).text).into_owned();
                    if self.scanner.is_none_or(|s| s.names_personal_data(name.as_bytes())) {
                        self.path.push("*".to_owned());
                        self.out.push(Segment {
                            start: s,
                            end: e,
                            field: None,
                            pointer: Some(self.pointer()),
                            written: Written::JsonString,
                        });
                        self.path.pop();
                        name = "*".to_owned();
                    }
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.i += 1;
                    let field: Arc<str> = Arc::from(name.as_str());
                    self.path.push(name);
                    self.value(Some(&field), depth + 1)?;
                    self.path.pop();
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut index = 0usize;
                loop {
                    self.path.push(index.to_string());
                    self.value(key, depth + 1)?;
                    self.path.pop();
                    index += 1;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => {
                let (s, e) = self.string()?;
                self.out.push(Segment {
                    start: s,
                    end: e,
                    field: key.cloned(),
                    pointer: Some(self.pointer()),
                    written: Written::JsonString,
                });
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let s = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                self.out.push(Segment {
                    start: s,
                    end: self.i,
                    field: key.cloned(),
                    pointer: Some(self.pointer()),
                    written: Written::JsonNumber,
                });
                Ok(())
            }
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(())
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(())
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

/// The string and number values of a JSON text, with their keys and pointers.
pub(crate) fn segments(doc: &[u8], scanner: &Scanner) -> Result<Vec<Segment>, JsonError> {
    // a byte order mark before the value (RFC 8259 lets a parser pass over it)
    let from = if doc.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let (segments, end) = leading_value(doc, from, Some(scanner))?;
    if end != doc.len() {
        return Err(JsonError {
            offset: end,
            message: "data after the JSON value",
        });
    }
    Ok(segments)
}

/// The segments of the JSON value starting at `from` (after white space), and where it and
/// the white space after it end.
fn leading_value(doc: &[u8], from: usize, scanner: Option<&Scanner>) -> Result<(Vec<Segment>, usize), JsonError> {
    let mut p = Parser {
        b: doc,
        scanner,
        i: from,
        out: Vec::new(),
        path: Vec::new(),
    };
    p.value(None, 0)?;
    p.ws();
    Ok((p.out, p.i))
}

/// The digits of a JSON number written with a fraction or an exponent whose value is a
/// whole number of at most 24 digits (`4000056655665556.0`, `4.000056655665556E+15`: a float
/// column exported), with no leading zero; `None` for any other number (one written as an
/// integer is scanned as written), a negative one, or a malformed one.
pub(crate) fn whole_number_digits(raw: &[u8]) -> Option<Vec<u8>> {
    const LONGEST: usize = 24;
    let exp_at = raw.iter().position(|b| matches!(b, b'e' | b'E'));
    let (mantissa, exponent) = match exp_at {
        Some(k) => (&raw[..k], Some(&raw[k + 1..])),
        None => (raw, None),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(k) => (&mantissa[..k], Some(&mantissa[k + 1..])),
        None => (mantissa, None),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if (frac.is_none() && exponent.is_none()) || !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(b"+").or_else(|| e.strip_prefix(b"-")).unwrap_or(e);
            if !digits(unsigned) || unsigned.len() > 3 {
                return None;
            }
            let value = std::str::from_utf8(unsigned).ok()?.parse::<i64>().ok()?;
            if e.first() == Some(&b'-') { -value } else { value }
        }
    };
    let mut all: Vec<u8> = int.iter().chain(frac.unwrap_or_default()).copied().collect();
    // the place of the decimal point among `all`, moved by the exponent
    let point = i64::try_from(int.len()).ok()? + exponent;
    let point = usize::try_from(point).ok()?;
    if point < all.len() {
        if all[point..].iter().any(|&d| d != b'0') {
            return None;
        }
        all.truncate(point);
    } else {
        if point > LONGEST {
            return None;
        }
        all.resize(point, b'0');
    }
    let first = all
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(all.len().saturating_sub(1));
    let whole = all.split_off(first);
    (!whole.is_empty() && whole.len() <= LONGEST).then_some(whole)
}

/// Four hex digits at `at`, as a UTF-16 code unit.
fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}

/// Decodes the escapes of a JSON string's raw content (RFC 8259 section 7): a lone surrogate
/// is U+FFFD, an escape JSON does not know is kept as written.
pub(crate) fn unescape(raw: &[u8]) -> Mapped {
    let mut out = Mapped::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        // a run of characters up to the next escape, as they are
        let run = memchr::memchr(b'\\', &raw[i..]).unwrap_or(raw.len() - i);
        out.copy(&raw[i..i + run], i);
        i += run;
        if i >= raw.len() {
            break;
        }
        let simple: Option<&[u8]> = match raw.get(i + 1) {
            Some(b'"') => Some(b"\""),
            Some(b'\\') => Some(b"\\"),
            Some(b'/') => Some(b"/"),
            Some(b'b') => Some(b"\x08"),
            Some(b'f') => Some(b"\x0c"),
            Some(b'n') => Some(b"\n"),
            Some(b'r') => Some(b"\r"),
            Some(b't') => Some(b"\t"),
            _ => None,
        };
        if let Some(bytes) = simple {
            out.put(bytes, i);
            i += 2;
            continue;
        }
        let unit = (raw.get(i + 1) == Some(&b'u')).then(|| hex4(raw, i + 2)).flatten();
        let Some(unit) = unit else {
            // not an escape JSON knows: the backslash is kept as written
            out.put(b"\\", i);
            i += 1;
            continue;
        };
        let (c, len) = match unit {
            0xD800..=0xDBFF => match (raw.get(i + 6..i + 8), hex4(raw, i + 8)) {
                (Some(b"\\u"), Some(lo @ 0xDC00..=0xDFFF)) => {
                    (char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (lo - 0xDC00)), 12)
                }
                _ => (None, 6),
            },
            _ => (char::from_u32(unit), 6),
        };
        let mut utf8 = [0u8; 4];
        out.put(
            c.unwrap_or(char::REPLACEMENT_CHARACTER)
                .encode_utf8(&mut utf8)
                .as_bytes(),
            i,
        );
        i += len;
    }
    out.finish(raw.len())
}

/// The JSON objects written in lines of text (`2024-06-01 INFO {"msg":"Jos\u00e9 …"}`) whose
/// strings hold escapes: each object's range in `text`, the start of its line and its
/// segments (offsets in the line). An object starts at `{"` and is the longest JSON value
/// from there (a line may hold several, and text around them); one that does not parse, or
/// holds no escape, is left as text. `scanner` reads the keys (for pointers).
fn escaped_objects(text: &[u8], scanner: &Scanner) -> Vec<(usize, usize, usize, Vec<Segment>)> {
    // objects tried a line at most: a line of `{` that never close costs a parse each
    const TRIES: usize = 16;
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        let mut from = 0;
        let mut tries = 0;
        // each object of the line in turn (`req={"id":1} user={…}`), from a `{"` on
        while memchr::memchr(b'\\', &line[from..]).is_some()
            && tries < TRIES
            && let Some(open) = memchr::memmem::find(&line[from..], b"{\"").map(|i| from + i)
        {
            tries += 1;
            let Ok((segments, close)) = leading_value(line, open, Some(scanner)) else {
                from = open + 1;
                continue;
            };
            let escaped = segments
                .iter()
                .any(|s| s.written == Written::JsonString && line[s.start..s.end].contains(&b'\\'));
            if escaped {
                out.push((at + open, at + close, at, segments));
            }
            from = close;
        }
        at = end + 1;
    }
    out
}

/// [`escaped_objects`] with their findings, scanned as a JSON text's are (escapes decoded,
/// keys as field names, pointers), placed in `text`: each object's range and its findings.
/// Whether a span (asked in order of start) overlaps one of `objects` (as
/// [`objects_in_lines`] gives them, in order): spans and objects both in order, one walk.
pub(crate) fn in_objects<T>(objects: &[(usize, usize, T)]) -> impl FnMut(usize, usize) -> bool + '_ {
    let mut next = 0;
    move |s, e| {
        while objects.get(next).is_some_and(|o| o.1 <= s) {
            next += 1;
        }
        objects[next..].iter().take_while(|o| o.0 < e).any(|o| s < o.1)
    }
}

/// `depth`: how many JSON strings `text` stands in (see [`scan_segments`]).
pub(crate) fn objects_in_lines(text: &[u8], scanner: &Scanner, depth: usize) -> Vec<(usize, usize, Vec<Placed>)> {
    escaped_objects(text, scanner)
        .into_iter()
        .map(|(open, close, line, segments)| {
            let mut found = scan_segments(scanner, &text[line..close], segments, depth);
            for (f, _, _) in &mut found {
                f.start += line;
                f.end += line;
            }
            (open, close, found)
        })
        .collect()
}

/// A reader's bytes up to and including its next line end.
struct ToLineEnd<'a, R> {
    inner: &'a mut R,
    /// How many bytes the last [`BufRead::fill_buf`] handed out, and whether they end the line.
    handed: (usize, bool),
    done: bool,
}

impl<'a, R: BufRead> ToLineEnd<'a, R> {
    fn new(inner: &'a mut R) -> Self {
        Self {
            inner,
            handed: (0, false),
            done: false,
        }
    }
}

impl<R: BufRead> std::io::Read for ToLineEnd<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for ToLineEnd<'_, R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.done {
            return Ok(&[]);
        }
        let buf = self.inner.fill_buf()?;
        let end = memchr::memchr(b'\n', buf).map_or(buf.len(), |i| i + 1);
        self.handed = (end, end > 0 && buf[end - 1] == b'\n');
        Ok(&buf[..end])
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        if self.handed.1 && n >= self.handed.0 {
            self.done = true;
        }
        self.handed = (self.handed.0.saturating_sub(n), self.handed.1);
    }
}

fn whole(block: &[u8]) -> Vec<Segment> {
    vec![Segment {
        start: 0,
        end: block.len(),
        field: None,
        pointer: None,
        written: Written::AsIs,
    }]
}

pub(crate) fn scan_lines(scanner: &Scanner, reader: impl BufRead, sink: &mut dyn Sink) -> std::io::Result<InputStats> {
    scan_lines_of_at_most(scanner, reader, sink, MAX_LINE)
}

/// [`scan_lines`], a line longer than `max_line` bytes read in pieces.
fn scan_lines_of_at_most(
    scanner: &Scanner,
    mut reader: impl BufRead,
    sink: &mut dyn Sink,
    max_line: u64,
) -> std::io::Result<InputStats> {
    let mut stats = InputStats::default();
    let mut line_buf = Vec::new();
    let mut line = 1u64;
    let mut bad = 0u64;
    loop {
        line_buf.clear();
        if reader.by_ref().take(max_line).read_until(b'\n', &mut line_buf)? == 0 {
            break;
        }
        let start = BlockStart::line(stats.bytes, line);
        if !line_buf.ends_with(b"\n") && (line_buf.len() as u64) >= max_line {
            // a line longer than the cap is text: read by the text reader to its end, in
            // blocks cut where no finding stands (a value across the cap is read whole),
            // placed on its line
            if stats.note.is_none() {
                let cap = match max_line {
                    m if m % (1 << 20) == 0 => format!("{} MiB", m >> 20),
                    m => format!("{m} bytes"),
                };
                stats.note = Some(format!("line {line} is longer than {cap}; scanned as text"));
            }
            let rest = std::io::Cursor::new(std::mem::take(&mut line_buf)).chain(ToLineEnd::new(&mut reader));
            stats.bytes += super::text::scan_from(scanner, rest, sink, start)?.bytes;
            line += 1;
            continue;
        }
        let body_end = line_buf
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        // (segments, and whether the line is JSON)
        let (segs, json) = if body_end == 0 {
            (Vec::new(), false)
        } else {
            match segments(&line_buf[..body_end], scanner) {
                Ok(s) => (s, true),
                Err(_) => {
                    bad += 1;
                    if stats.note.is_none() {
                        stats.note = Some(format!("line {line} is not JSON; such lines were scanned as text"));
                    }
                    (whole(&line_buf), false)
                }
            }
        };
        scan_block(
            scanner,
            &line_buf,
            start,
            segs,
            &[(0, body_end)][..usize::from(json)],
            sink,
        )?;
        stats.bytes += line_buf.len() as u64;
        line += 1;
        sink.progress(stats.bytes);
    }
    if bad > 1
        && let Some(n) = &mut stats.note
    {
        n.push_str(&format!(" ({bad} lines)"));
    }
    Ok(stats)
}

pub(crate) fn scan_document(
    scanner: &Scanner,
    mut reader: impl BufRead,
    sink: &mut dyn Sink,
) -> std::io::Result<InputStats> {
    let mut doc = Vec::new();
    reader.read_to_end(&mut doc)?;
    let mut stats = InputStats {
        bytes: doc.len() as u64,
        ..Default::default()
    };
    let (segs, json) = match segments(&doc, scanner) {
        Ok(s) => (s, vec![(0, doc.len())]),
        Err(e) => {
            stats.note = Some(format!(
                "not JSON ({} at byte {}); scanned as text",
                e.message, e.offset
            ));
            (whole(&doc), Vec::new())
        }
    };
    scan_block(scanner, &doc, BlockStart::line(0, 1), segs, &json, sink)?;
    sink.progress(stats.bytes);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::scan_str;
    use super::*;

    #[test]
    fn pointers_and_keys() {
        let doc =
            r#"{"user": {"emails": ["a@example.com", "b@example.com"], "a/b": "078-05-1123", "n": 4111111111111111}}"#;
        let (found, stats) = scan_str(doc, Format::Json);
        assert!(stats.note.is_none());
        let ptrs: Vec<_> = found
            .iter()
            .map(|l| (l.finding.entity_type.to_string(), l.pointer.clone().unwrap_or_default()))
            .collect();
        assert!(
            ptrs.contains(&("EMAIL_ADDRESS".into(), "/user/emails/1".into())),
            "{ptrs:?}"
        );
        assert!(ptrs.contains(&("US_SSN".into(), "/user/a~1b".into())), "{ptrs:?}");
        assert!(ptrs.contains(&("CREDIT_CARD".into(), "/user/n".into())), "{ptrs:?}");
        for l in &found {
            assert!(doc[l.finding.start..l.finding.end].chars().all(|c| c != '"'));
        }
    }

    /// A float column exported writes a card or a phone number as `4000056655665556.0` or
    /// `4.000056655665556e15`: found as its digits, on the whole number.
    #[test]
    fn whole_numbers_written_as_floats_are_read_as_their_digits() {
        let digits = |raw: &str| whole_number_digits(raw.as_bytes()).map(|d| String::from_utf8_lossy(&d).into_owned());
        for (raw, want) in [
            ("4000056655665556.0", Some("4000056655665556")),
            ("4000056655665556.000", Some("4000056655665556")),
            ("4.000056655665556e15", Some("4000056655665556")),
            ("4.000056655665556E+15", Some("4000056655665556")),
            ("400005665566555.6e1", Some("4000056655665556")),
            ("40000566556655560e-1", Some("4000056655665556")),
            ("0.0", Some("0")),
            ("0012.0", Some("12")),
            ("1e3", Some("1000")),
            // written as an integer: scanned as written
            ("4000056655665556", None),
            // not whole, negative, too long, malformed
            ("4000056655665556.5", None),
            ("1.5e-3", None),
            ("-4000056655665556.0", None),
            ("1e300", None),
            ("1e-4000", None),
            ("1.", None),
            (".5", None),
            ("1e", None),
            ("1e+", None),
            ("1.0.0", None),
            ("1-2.0", None),
        ] {
            assert_eq!(digits(raw).as_deref(), want, "{raw}");
        }
        let doc = r#"{"card": 4000056655665556.0, "n": [4.000056655665556e15, 0.5, 2.0]}"#;
        let (found, _) = scan_str(doc, Format::Json);
        let spans: Vec<(&str, &str, Option<&str>)> = found
            .iter()
            .map(|l| {
                (
                    &*l.finding.entity_type,
                    &doc[l.finding.start..l.finding.end],
                    l.pointer.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                ("CREDIT_CARD", "4000056655665556.0", Some("/card")),
                ("CREDIT_CARD", "4.000056655665556e15", Some("/n/0")),
            ]
        );
    }

    #[test]
    fn ndjson_lines_and_bad_lines() {
        let text = "{\"ip\": \"203.0.113.9\"}\nnot json 203.0.113.10\n\n{\"ip\": \"203.0.113.11\"}\n";
        let (found, stats) = scan_str(text, Format::Ndjson);
        let lines: Vec<u64> = found
            .iter()
            .filter(|l| &*l.finding.entity_type == "IP_ADDRESS")
            .map(|l| l.line)
            .collect();
        assert_eq!(lines, vec![1, 2, 4]);
        assert!(stats.note.is_some_and(|n| n.contains("line 2")));
    }

    /// A line longer than the cap is read as text, a value across the cap whole, and the
    /// lines after keep their numbers.
    #[test]
    fn a_line_longer_than_the_cap_is_read_whole_as_text() -> std::io::Result<()> {
        let scanner = crate::Scanner::builder().build().map_err(std::io::Error::other)?;
        // (the first address stands across the cap: bytes 60 to 71)
        let long = format!(
            "{{\"a\":\"{} 203.0.113.6 {}\", \"ip\": \"203.0.113.7\"}}",
            "x".repeat(53),
            "y".repeat(60)
        );
        let text = format!("{{\"ip\": \"203.0.113.9\"}}\n{long}\n{{\"ip\": \"203.0.113.11\"}}\n");
        let mut found = crate::input::Collect::default();
        let stats = scan_lines_of_at_most(&scanner, text.as_bytes(), &mut found, 64)?;
        let ips: Vec<(u64, u64, &str)> = found
            .found
            .iter()
            .filter(|l| &*l.finding.entity_type == "IP_ADDRESS")
            .map(|l| (l.line, l.column, &text[l.finding.start..l.finding.end]))
            .collect();
        let column = |ip: &str| long.find(ip).map_or(0, |c| c as u64 + 1);
        assert_eq!(column("203.0.113.6"), 61);
        assert_eq!(
            ips,
            vec![
                (1, 9, "203.0.113.9"),
                (2, column("203.0.113.6"), "203.0.113.6"),
                (2, column("203.0.113.7"), "203.0.113.7"),
                (3, 9, "203.0.113.11")
            ]
        );
        // one note, of the long line: the rest of it is no line that is no JSON
        assert_eq!(
            stats.note.as_deref(),
            Some("line 2 is longer than 64 bytes; scanned as text")
        );
        assert_eq!(stats.bytes, text.len() as u64);
        Ok(())
    }

    #[test]
    fn keys_with_personal_data_are_found_and_kept_out_of_pointers() {
        let doc = r#"{"users": {"bob@example.com": {"ip": "203.0.113.9"}}}"#;
        let (found, _) = scan_str(doc, Format::Json);
        let email = found.iter().find(|l| &*l.finding.entity_type == "EMAIL_ADDRESS");
        assert!(email.is_some_and(|l| &doc[l.finding.start..l.finding.end] == "bob@example.com"));
        for l in &found {
            let p = l.pointer.clone().unwrap_or_default();
            assert!(!p.contains("bob"), "{p}");
        }
        assert!(
            found.iter().any(|l| l.pointer.as_deref() == Some("/users/*/ip")),
            "{found:?}"
        );
    }

    #[test]
    fn escapes_decode_with_their_places() {
        let raw = br#"a\n\u5c71\"\ud83d\ude00\x\u12\ud800z"#;
        let d = unescape(raw);
        assert_eq!(
            String::from_utf8_lossy(&d.text),
            "a\n\u{5c71}\"\u{1f600}\\x\\u12\u{fffd}z"
        );
        // each decoded character maps back to the whole escape that wrote it
        let places: Vec<(usize, usize)> = String::from_utf8_lossy(&d.text)
            .char_indices()
            .map(|(i, c)| (d.original(i), d.original(i + c.len_utf8())))
            .collect();
        let pieces: Vec<&str> = places
            .iter()
            .map(|&(s, e)| std::str::from_utf8(&raw[s..e]).unwrap_or("?"))
            .collect();
        assert_eq!(
            pieces,
            [
                "a",
                r"\n",
                r"\u5c71",
                r#"\""#,
                r"\ud83d\ude00",
                r"\",
                "x",
                r"\",
                "u",
                "1",
                "2",
                r"\ud800",
                "z"
            ]
        );
        assert_eq!(d.original(d.text.len()), raw.len());
        let plain = unescape("naïve".as_bytes());
        assert_eq!(plain.text, "naïve".as_bytes());
        assert_eq!(plain.original(4), 4);
    }

    #[test]
    fn values_are_scanned_with_their_escapes_decoded() {
        // a line break, a tab or a letter written as an escape no longer glues a letter to
        // the number after it, and a finding covers the escapes that wrote it
        let doc = r#"{"note":"first line\n536-90-4399 is mine","c":"card\t4111111111111111","e":"\u5c71\u7530@example.jp","k":"\u5361\u53f74111111111111111","t":"tel:\u002b44 20 7946 0958","\u0062ob@example.com":1}"#;
        for format in [Format::Json, Format::Ndjson] {
            let (found, _) = scan_str(doc, format);
            let spans: Vec<(&str, &str)> = found
                .iter()
                .map(|l| (&*l.finding.entity_type, &doc[l.finding.start..l.finding.end]))
                .collect();
            for want in [
                ("US_SSN", "536-90-4399"),
                ("CREDIT_CARD", "4111111111111111"),
                ("EMAIL_ADDRESS", r"\u5c71\u7530@example.jp"),
                ("PHONE_NUMBER", r"\u002b44 20 7946 0958"),
                ("EMAIL_ADDRESS", r"\u0062ob@example.com"),
            ] {
                assert!(spans.contains(&want), "{want:?} in {spans:?}");
            }
            assert_eq!(spans.iter().filter(|s| s.0 == "CREDIT_CARD").count(), 2, "{spans:?}");
            let key = found
                .iter()
                .find(|l| l.finding.start == doc.find(r"\u0062ob").unwrap_or(0));
            assert!(key.is_some_and(|l| l.pointer.as_deref() == Some("/*")), "{found:?}");
        }
    }

    /// A JSON string holding a JSON document (a log message logged in a JSON log) has its
    /// objects read as JSON: the escaped line break before an address is no letter of it,
    /// and a redaction keeps the inner document valid.
    #[test]
    fn json_strings_holding_json_are_read_as_json() -> crate::Result<()> {
        let doc = r#"{"msg":"{\"e\":\"\\nsmith@example.com\",\"t\":\"\\t4111111111111111\"}"}"#;
        for format in [Format::Json, Format::Ndjson] {
            let (found, _) = scan_str(doc, format);
            let spans: Vec<(&str, &str, Option<&str>, Option<&str>)> = found
                .iter()
                .map(|l| {
                    (
                        &*l.finding.entity_type,
                        &doc[l.finding.start..l.finding.end],
                        l.pointer.as_deref(),
                        l.field.as_deref(),
                    )
                })
                .collect();
            assert_eq!(
                spans,
                vec![
                    ("EMAIL_ADDRESS", "smith@example.com", Some("/msg"), Some("e")),
                    ("CREDIT_CARD", "4111111111111111", Some("/msg"), Some("t")),
                ]
            );
        }
        let scanner = Scanner::builder().build()?;
        let r = crate::redact::Redactor::new(std::collections::HashMap::new(), crate::redact::Operator::Replace, None)?;
        let mut out = Vec::new();
        crate::redact::redact_reader(&scanner, &r, doc.as_bytes(), Format::Json, &mut out)?;
        let outer: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| crate::Error::Invalid(e.to_string()))?;
        let inner: serde_json::Value = serde_json::from_str(outer["msg"].as_str().unwrap_or_default())
            .map_err(|e| crate::Error::Invalid(e.to_string()))?;
        assert_eq!(inner["e"], "\n<EMAIL_ADDRESS>");
        assert_eq!(inner["t"], "\t<CREDIT_CARD>");
        Ok(())
    }

    #[test]
    fn json_objects_in_log_lines_are_read_as_json() {
        // escapes in a JSON log line are decoded as in a JSON file: the address after `\n`
        // is `john@…`, not `njohn@…`; `jos\u00e9@…` is whole; the card written with an
        // escape is found; the key names the value
        let text = concat!(
            "2024-06-01 INFO call 4111 1111 1111 1111\n",
            r#"2024-06-01 INFO {"msg":"Jos\u00e9 jos\u00e9@example.com","card":"\u0034111111111111111","note":"mail\njohn@example.com"}"#,
            "\n",
            r#"{"plain":"bob@example.com"}"#,
            "\n",
            r#"msg="{" req={"id":1} user={"email":"j\u00f6rg.m\u00fcller@example.de"} {end}"#,
            "\n",
            "\u{feff}",
            r#"{"e":"jo\u0068n@example.com","app_version":"10.2.0.15"}"#,
            "\n"
        );
        let (found, _) = scan_str(text, Format::Text);
        let spans: Vec<(&str, &str, Option<&str>)> = found
            .iter()
            .map(|l| {
                (
                    &*l.finding.entity_type,
                    &text[l.finding.start..l.finding.end],
                    l.pointer.as_deref(),
                )
            })
            .collect();
        for want in [
            ("CREDIT_CARD", "4111 1111 1111 1111", None),
            ("EMAIL_ADDRESS", r"jos\u00e9@example.com", Some("/msg")),
            ("CREDIT_CARD", r"\u0034111111111111111", Some("/card")),
            ("EMAIL_ADDRESS", "john@example.com", Some("/note")),
            ("EMAIL_ADDRESS", "bob@example.com", None),
            ("EMAIL_ADDRESS", r"j\u00f6rg.m\u00fcller@example.de", Some("/email")),
            ("EMAIL_ADDRESS", r"jo\u0068n@example.com", Some("/e")),
        ] {
            assert!(spans.contains(&want), "{want:?} in {spans:?}");
        }
        assert!(
            !spans
                .iter()
                .any(|s| s.1.starts_with("njohn") || s.1.starts_with("u00e9")),
            "{spans:?}"
        );
        assert_eq!(
            found
                .windows(2)
                .filter(|w| w[0].finding.start > w[1].finding.start)
                .count(),
            0
        );
    }

    #[test]
    fn keys_and_escapes_json_does_not_know() {
        // a lone surrogate in a key decodes to U+FFFD: the address after it is still read
        let doc = r#"{"\ud800jo\u0040example.com":1,"\udc00ssn":"536-22-1234"}"#;
        let (found, stats) = scan_str(doc, Format::Json);
        assert!(stats.note.is_none());
        let spans: Vec<(&str, &str)> = found
            .iter()
            .map(|l| (&*l.finding.entity_type, &doc[l.finding.start..l.finding.end]))
            .collect();
        assert!(spans.contains(&("EMAIL_ADDRESS", r"jo\u0040example.com")), "{spans:?}");
        // a byte order mark before the value is passed over
        let (found, stats) = scan_str("\u{feff}{\"e\":\"jo\\u0068n@example.com\"}", Format::Json);
        assert!(stats.note.is_none() && found.len() == 1, "{stats:?} {found:?}");
        // an escape JSON does not know makes the text no JSON: read as text, with a note
        for bad in [r#"{"a":"\q"}"#, r#"{"a":"\uZZZZjo@example.com"}"#, r#"{"a":"\u12"}"#] {
            let (_, stats) = scan_str(bad, Format::Json);
            assert!(stats.note.is_some_and(|n| n.contains("invalid escape")), "{bad}");
        }
    }

    #[test]
    fn malformed_documents() -> crate::Result<()> {
        let scanner = Scanner::builder().build()?;
        let segments = |d: &[u8]| segments(d, &scanner);
        for bad in ["{", "[1,]", "{\"a\" 1}", "\"abc", "[1] 2", "{\"a\":tru}"] {
            assert!(segments(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(segments(deep.as_bytes()).is_err());
        Ok(())
    }
}
