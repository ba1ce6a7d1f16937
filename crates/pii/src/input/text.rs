//! Plain text and logs, read in blocks cut at a line end. A line longer than a block is
//! cut where no finding stands, and the words before the cut are read again with the next
//! block, so that a value written with spaces (`+44 20 7946 0958` in a one-line SQL dump)
//! is neither split nor stripped of its context.

use std::io::BufRead;

use super::{BlockStart, InputStats, Sink, chars, emit_block};
use crate::context::{TableShape, TextTables};
use crate::finding::Finding;
use crate::scanner::Scanner;

/// Block size. A value longer than this without whitespace may be split.
pub(crate) const BLOCK: usize = 1 << 20;

/// In a line longer than a block, the bytes before the block's end that are scanned again
/// with the next block: the cut is made before them, so that a finding near it was read
/// whole, with the words after it.
const TAIL: usize = 4 << 10;

/// In a line longer than a block, about how many bytes before the cut the next block reads
/// again as context (a value's context words are the five before it), from a whitespace.
const LEAD: usize = 256;

pub(crate) fn scan(scanner: &Scanner, mut reader: impl BufRead, sink: &mut dyn Sink) -> std::io::Result<InputStats> {
    let mut stats = InputStats::default();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + LEAD);
    let mut offset = 0u64;
    let mut line = 1u64;
    let mut column = 1u64;
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
                    // last whitespace and read the block up to it alone
                    let cut = buf[lead..]
                        .iter()
                        .rposition(u8::is_ascii_whitespace)
                        .map_or(buf.len(), |i| lead + i + 1);
                    found = scanner.scan_table(&buf[..cut], tables);
                    cut
                }
            },
        };
        let block = &buf[lead..cut];
        let rel = found
            .into_iter()
            .filter(|f| f.start >= lead && f.end <= cut)
            .map(|mut f| {
                f.start -= lead;
                f.end -= lead;
                (f, None, None)
            })
            .collect();
        let start = BlockStart { offset, line, column };
        emit_block(block, start, rel, sink)?;
        line += memchr::memchr_iter(b'\n', block).count() as u64;
        // a block cut inside a line longer than a block: the next goes on with its columns
        column = match memchr::memrchr(b'\n', block) {
            Some(last) => 1 + chars(&block[last + 1..]),
            None => column + chars(block),
        };
        offset += block.len() as u64;
        stats.bytes += block.len() as u64;
        sink.progress(stats.bytes);
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

/// Where to cut a block that holds no line end: at least [`TAIL`] bytes before its end, at
/// the last character that no finding spans (`found`: the block's findings in order of
/// start). Not necessarily at whitespace: in a one-line dump every space may stand inside a
/// value; the next block reads the words before the cut again, so a value just after it is
/// read as in the whole line. `None` if there is no such place in the block's second half
/// (each block then reports half a block at least: a scan stays linear in the input).
fn cut_in_line(buf: &[u8], lead: usize, found: &[Finding]) -> Option<usize> {
    let mut cut = buf.len().checked_sub(TAIL)?;
    // not inside a character
    while cut > lead && buf.get(cut).is_some_and(|&b| b & 0xC0 == 0x80) {
        cut -= 1;
    }
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
    (cut > lead + BLOCK / 2).then_some(cut)
}

/// The start of the words read again before `cut`: after the first whitespace of the
/// [`LEAD`] bytes before it, or else of the last before those (a token longer than them
/// is read whole), back to [`TAIL`] bytes; the cut itself if there is none.
fn context_start(buf: &[u8], cut: usize) -> usize {
    let near = cut.saturating_sub(LEAD);
    let far = cut.saturating_sub(TAIL);
    match buf
        .get(near..cut)
        .and_then(|b| b.iter().position(u8::is_ascii_whitespace))
    {
        Some(i) => near + i + 1,
        None => buf
            .get(far..near)
            .and_then(|b| b.iter().rposition(u8::is_ascii_whitespace))
            .map_or(cut, |i| far + i + 1),
    }
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
        let buf = vec![b'a'; BLOCK];
        let limit = BLOCK - TAIL;
        assert_eq!(cut_in_line(&buf, 0, &[]), Some(limit));
        assert_eq!(cut_in_line(&buf, 0, &[at(10, 20), at(limit, limit + 5)]), Some(limit));
        // findings overlapping one another across the place: before the first of them
        let chain = [
            at(10, 20),
            at(limit - 50, limit - 10),
            at(limit - 20, limit + 3),
            at(limit + 1, limit + 9),
        ];
        assert_eq!(cut_in_line(&buf, 0, &chain), Some(limit - 50));
        // not inside a character
        let mut wide = buf.clone();
        wide[limit - 1..limit + 2].copy_from_slice("€".as_bytes());
        assert_eq!(cut_in_line(&wide, 0, &[]), Some(limit - 1));
        // a finding over most of the block: no place, the caller falls back
        assert_eq!(cut_in_line(&buf, 0, &[at(100, BLOCK)]), None);
        assert_eq!(cut_in_line(&buf[..TAIL], 0, &[]), None);
    }

    #[test]
    fn the_next_block_reads_the_words_before_the_cut_from_a_word_start() {
        let text = b"aaaa bbbb cccc";
        // the first word start within the lead: as many words as it holds
        assert_eq!(context_start(text, 12), 5);
        // no whitespace within the lead: the last one before it, back to the tail
        let mut long = b"xy ".to_vec();
        long.extend(std::iter::repeat_n(b'z', LEAD + 100));
        assert_eq!(context_start(&long, long.len()), 3);
        // a token longer than the tail: the cut itself
        let blob = vec![b'z'; TAIL + LEAD];
        assert_eq!(context_start(&blob, blob.len()), blob.len());
    }
}
