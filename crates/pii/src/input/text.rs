//! Plain text and logs, read in blocks cut at a line end (or, in a line longer than a
//! block, at whitespace) so no value is split between blocks.

use std::io::BufRead;

use super::{BlockStart, InputStats, Segment, Sink, chars, scan_block};
use crate::context::{TableShape, TextTables};
use crate::scanner::Scanner;

/// Block size. A value longer than this without whitespace may be split.
pub(crate) const BLOCK: usize = 1 << 20;

pub(crate) fn scan(scanner: &Scanner, mut reader: impl BufRead, sink: &mut dyn Sink) -> std::io::Result<InputStats> {
    let mut stats = InputStats::default();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    let mut offset = 0u64;
    let mut line = 1u64;
    let mut column = 1u64;
    let mut eof = false;
    // a table written as text that a block ends in goes on in the next
    let mut carried: Option<TableShape> = None;
    while !eof || !buf.is_empty() {
        while !eof && buf.len() < BLOCK {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                eof = true;
                break;
            }
            // exactly a block, however the reader hands the bytes over: where a block ends
            // decides which words stand beside a value, and a pipe's reads vary from run
            // to run
            let take = chunk.len().min(BLOCK - buf.len());
            buf.extend_from_slice(&chunk[..take]);
            reader.consume(take);
        }
        let cut = if eof {
            buf.len()
        } else {
            memchr::memrchr(b'\n', &buf)
                .map(|i| i + 1)
                .or_else(|| buf.iter().rposition(u8::is_ascii_whitespace).map(|i| i + 1))
                .unwrap_or(buf.len())
        };
        let block = &buf[..cut];
        let segments = vec![Segment {
            start: 0,
            end: block.len(),
            field: None,
            pointer: None,
        }];
        let tables = TextTables::sniff(block, carried.take());
        carried = tables.open_at_end();
        let tables = Some(&tables).filter(|t| !t.is_empty());
        let start = BlockStart { offset, line, column };
        scan_block(scanner, block, start, segments, tables, sink)?;
        line += memchr::memchr_iter(b'\n', block).count() as u64;
        // a block cut inside a line longer than a block: the next goes on with its columns
        column = match memchr::memrchr(b'\n', block) {
            Some(last) => 1 + chars(&block[last + 1..]),
            None => column + chars(block),
        };
        offset += cut as u64;
        stats.bytes += cut as u64;
        sink.progress(stats.bytes);
        buf.drain(..cut);
    }
    Ok(stats)
}
