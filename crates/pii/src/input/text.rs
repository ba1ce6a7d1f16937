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
    let least = lead + BLOCK / 2;
    let mut cut = buf.len().checked_sub(TAIL)?;
    loop {
        // not inside a character
        while cut > least && buf.get(cut).is_some_and(|&b| b & 0xC0 == 0x80) {
            cut -= 1;
        }
        if cut <= least {
            return None;
        }
        // a finding that starts before the cut and ends after it: cut before it
        match found
            .iter()
            .filter(|f| f.start < cut && f.end > cut)
            .map(|f| f.start)
            .min()
        {
            Some(start) => cut = start,
            None => return Some(cut),
        }
    }
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
