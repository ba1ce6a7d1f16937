//! Plain text and logs, read in blocks cut at a line end. A line longer than a block is
//! cut where no finding stands, and the words before the cut are read again with the next
//! block, so that a value written with spaces (`+44 20 7946 0958` in a one-line SQL dump)
//! is neither split nor stripped of its context.

use std::io::BufRead;

use super::{BlockStart, InputStats, Sink, chars, emit_block};
use crate::context::{TableShape, TextTables, word_ending_before};
use crate::finding::Finding;
use crate::recognizers::{Beyond, beyond_at};
use crate::scanner::Scanner;

/// Block size. A value longer than this without whitespace may be split.
pub(crate) const BLOCK: usize = 1 << 20;

/// In a line longer than a block, the least bytes after the cut that the block reads: a
/// finding that reaches past them is made of one token longer than them (a URL, an email
/// address), and the cut falls at whitespace, never inside a token the block ends in.
const TAIL: usize = 4 << 10;

/// Words (as context words are read: [`word_ending_before`]) a
/// value is read with on either side of a cut in a long line: five before and three after
/// are its context, two before a label; twice as many for room.
const WORDS_AROUND: usize = 16;

/// How far back the next block reads those words at most (words longer than this are no
/// context words).
const CONTEXT_MAX: usize = 64 << 10;

pub(crate) fn scan(scanner: &Scanner, reader: impl BufRead, sink: &mut dyn Sink) -> std::io::Result<InputStats> {
    scan_from(scanner, reader, sink, BlockStart::line(0, 1))
}

/// [`scan`] of text that stands at `start` in its input (the rest of a line too long for an
/// NDJSON line); the bytes counted are those read here.
pub(crate) fn scan_from(
    scanner: &Scanner,
    mut reader: impl BufRead,
    sink: &mut dyn Sink,
    start: BlockStart,
) -> std::io::Result<InputStats> {
    let mut stats = InputStats::default();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    let BlockStart {
        mut offset,
        mut line,
        mut column,
    } = start;
    let mut eof = false;
    // a table written as text that a block ends in goes on in the next
    let mut carried: Option<TableShape> = None;
    // bytes at the start of `buf` reported with the block before (a long line's words
    // before the cut): read as context, not reported again
    let mut lead = 0usize;
    while !eof || buf.len() > lead {
        while !eof && buf.len() < BLOCK + lead {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                eof = true;
                break;
            }
            // exactly a block, however the reader hands the bytes over: where a block ends
            // decides which words stand beside a value, and a pipe's reads vary from run
            // to run
            let take = chunk.len().min(BLOCK + lead - buf.len());
            buf.extend_from_slice(&chunk[..take]);
            reader.consume(take);
        }
        let line_end = if eof {
            Some(buf.len())
        } else {
            memchr::memrchr(b'\n', &buf[lead..]).map(|i| lead + i + 1)
        };
        let scanned = line_end.unwrap_or(buf.len());
        let tables = TextTables::sniff(&buf[..scanned], carried.take());
        carried = tables.open_at_end();
        let tables = Some(&tables).filter(|t| !t.is_empty());
        let mut found = scanner.scan_table(&buf[..scanned], tables);
        let cut = match line_end {
            Some(end) => end,
            None => match cut_in_line(&buf, lead, &found) {
                Some(cut) => cut,
                None => {
                    // a finding spans most of the block (a URL of a megabyte): cut at the
                    // last place one can be cut and read the block up to it alone
                    let cut = last_cut_place(&buf, lead + 1, buf.len()).unwrap_or(buf.len());
                    // (a block of one token is cut at its end: what was read stands)
                    if cut < scanned {
                        found = scanner.scan_table(&buf[..cut], tables);
                    }
                    cut
                }
            },
        };
        let block = &buf[lead..cut];
        // a JSON object written in a line with escapes in its strings (a JSON log line) is
        // read as JSON: what the text's scan found in it gives way
        let objects = if memchr::memchr(b'\\', block).is_some() {
            super::json::objects_in_lines(block, scanner, 0)
        } else {
            Vec::new()
        };
        let mut in_objects = super::json::in_objects(&objects);
        let mut rel: Vec<_> = found
            .into_iter()
            .filter(|f| f.start >= lead && f.end <= cut && !in_objects(f.start - lead, f.end - lead))
            .map(|mut f| {
                f.start -= lead;
                f.end -= lead;
                (f, None, None)
            })
            .collect();
        drop(in_objects);
        let json: Vec<_> = objects.iter().map(|&(open, close, _)| (open, close)).collect();
        rel.extend(objects.into_iter().flat_map(|(_, _, found)| found));
        let start = BlockStart { offset, line, column };
        emit_block(block, start, rel, &json, sink)?;
        line += memchr::memchr_iter(b'\n', block).count() as u64;
        // a block cut inside a line longer than a block: the next goes on with its columns
        column = match memchr::memrchr(b'\n', block) {
            Some(last) => 1 + chars(&block[last + 1..]),
            None => column + chars(block),
        };
        offset += block.len() as u64;
        stats.bytes += block.len() as u64;
        sink.progress(start.offset + stats.bytes);
        // inside a line, the words just before the cut go on as the next block's context
        let keep = if line_end.is_some() {
            cut
        } else {
            context_start(&buf, cut)
        };
        lead = cut - keep;
        buf.drain(..keep);
    }
    Ok(stats)
}

/// Where to cut a block that holds no line end: at the last whitespace at least [`TAIL`]
/// bytes and [`WORDS_AROUND`] words before its end, or, if a finding (`found`, in order of
/// start) spans that place, at the start of the stretch of findings that does. So the
/// findings before the cut were read whole, with the words after them, and the token the
/// cut falls in ends inside the block. Not necessarily at whitespace: in a one-line dump
/// every space may stand inside a value; the next block reads the words before the cut
/// again ([`context_start`]), so a value just after it is read as in the whole line. `None`
/// if there is no such place in the block's second half (each block then reports half a
/// block at least: a scan stays linear in the input).
fn cut_in_line(buf: &[u8], lead: usize, found: &[Finding]) -> Option<usize> {
    let floor = lead + BLOCK / 2;
    let last_words = words_back(buf, buf.len(), WORDS_AROUND, floor);
    let tail = buf.len().checked_sub(TAIL)?;
    // text without words to count (Chinese with no space): the tail's bytes suffice
    let upto = if last_words > floor { tail.min(last_words) } else { tail };
    let mut cut = last_cut_place(buf, floor, upto)?;
    // the findings before the cut merged into disjoint stretches: if the last one holds
    // the cut, the cut goes to its start (which no other finding spans)
    let mut last: Option<(usize, usize)> = None;
    for f in found.iter().take_while(|f| f.start < cut) {
        last = match last {
            Some((s, e)) if f.start < e => Some((s, e.max(f.end))),
            _ => Some((f.start, f.end)),
        };
    }
    if let Some((s, e)) = last
        && e > cut
    {
        cut = s;
    }
    (cut > floor).then_some(cut)
}

/// Whether a line may be cut at `i`, before `buf[i]`: at whitespace, or before a character
/// beyond ASCII that ends an identifier (punctuation, a letter of a script written without
/// spaces: Chinese has no whitespace to cut at; a cut there split `…中4111111111111111中…`
/// and lost the card). Only an email's local part holds such letters; a finding over the
/// place moves the cut anyway.
fn cut_place(buf: &[u8], i: usize) -> bool {
    match buf[i] {
        b if b < 0x80 => b.is_ascii_whitespace(),
        0x80..=0xBF => false,
        _ => beyond_at(buf, i).0 != Beyond::Word,
    }
}

/// The last [`cut_place`] in `from..upto`.
fn last_cut_place(buf: &[u8], from: usize, upto: usize) -> Option<usize> {
    (from..upto.min(buf.len())).rev().find(|&i| cut_place(buf, i))
}

/// Where the next block starts reading before `cut`: at the start of the token holding the
/// [`WORDS_AROUND`]th word before it, back [`CONTEXT_MAX`] bytes at most (at a character's
/// start).
fn context_start(buf: &[u8], cut: usize) -> usize {
    let mut floor = cut.saturating_sub(CONTEXT_MAX);
    while floor < cut && buf.get(floor).is_some_and(|&b| b & 0xC0 == 0x80) {
        floor += 1;
    }
    let word = words_back(buf, cut, WORDS_AROUND, floor);
    buf.get(floor..word)
        .and_then(|back| back.iter().rposition(u8::is_ascii_whitespace))
        .map_or(floor, |i| floor + i + 1)
}

/// The start of the `n`th word before `end` (as context words are read:
/// [`word_ending_before`]), or `floor` if it lies before.
fn words_back(buf: &[u8], end: usize, n: usize, floor: usize) -> usize {
    let Some(within) = buf.get(floor..end) else {
        return floor;
    };
    let mut i = within.len();
    for _ in 0..n {
        match word_ending_before(within, i) {
            Some((s, _)) => i = s,
            None => return floor,
        }
    }
    floor + i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: usize, end: usize) -> Finding {
        Finding {
            entity_type: "X".into(),
            start,
            end,
            score: 1.0,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn a_long_line_is_cut_before_the_findings_that_span_its_place() {
        // words of four letters and a space
        let buf: Vec<u8> = b"abc ".iter().copied().cycle().take(BLOCK).collect();
        let limit = BLOCK - TAIL - 1;
        assert_eq!(buf[limit], b' ');
        assert_eq!(cut_in_line(&buf, 0, &[]), Some(limit));
        assert_eq!(
            cut_in_line(&buf, 0, &[at(10, 20), at(limit + 1, limit + 5)]),
            Some(limit)
        );
        // findings overlapping one another across the place: before the first of them
        let chain = [
            at(10, 20),
            at(limit - 50, limit - 10),
            at(limit - 20, limit + 3),
            at(limit + 1, limit + 9),
        ];
        assert_eq!(cut_in_line(&buf, 0, &chain), Some(limit - 50));
        // a finding over most of the block: no place, the caller falls back
        assert_eq!(cut_in_line(&buf, 0, &[at(100, BLOCK)]), None);
        assert_eq!(cut_in_line(&buf[..TAIL], 0, &[]), None);
        // long words at the end: the cut leaves the last words to the block, however long
        let mut long = buf.clone();
        for _ in 0..WORDS_AROUND {
            long.push(b' ');
            long.extend(std::iter::repeat_n(b'w', 1000));
        }
        assert_eq!(cut_in_line(&long, 0, &[]), Some(BLOCK));
        // no whitespace in the block's second half: none
        let mut blob = buf[..BLOCK / 2].to_vec();
        blob.resize(BLOCK, b'z');
        assert_eq!(cut_in_line(&blob, 0, &[]), None);
    }

    #[test]
    fn the_next_block_reads_the_words_before_the_cut_from_a_token_start() {
        let text = b"aa bb-cc dd";
        assert_eq!(context_start(text, text.len()), 0);
        // the word before the cut sixteen words back, from the start of its token
        let mut words = b"x-y ".repeat(20);
        words.extend_from_slice(b"lead ");
        words.extend_from_slice(&b"a b ".repeat(WORDS_AROUND / 2));
        let cut = words.len();
        assert_eq!(context_start(&words, cut), cut - WORDS_AROUND * 2);
        // a long word between a context word and the cut is one word
        let mut long = b"phone ".to_vec();
        long.extend(std::iter::repeat_n(b'z', 5000));
        long.push(b' ');
        assert_eq!(context_start(&long, long.len()), 0);
        // a token longer than the reach: from where the reach ends
        let blob = vec![b'z'; CONTEXT_MAX + 10];
        assert_eq!(context_start(&blob, blob.len()), 10);
    }
}
