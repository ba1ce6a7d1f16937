//! Text written in UTF-16 (what Windows PowerShell's `>` and Excel's "Unicode text" write),
//! read as UTF-8: every other byte of its ASCII is NUL, so it looked binary and was passed
//! over, personal data and all.

use std::io::{BufRead, Read};

/// The byte order of UTF-16 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Little,
    Big,
}

impl Order {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Little => "UTF-16LE",
            Self::Big => "UTF-16BE",
        }
    }
}

/// Whether `head` (the first bytes of an input) is UTF-16 text: a byte order mark, or, with
/// none, text whose every other byte is NUL as ASCII in UTF-16 is (at least 8 bytes: four
/// characters, fewer hold no personal data and `,\0"\\` is no text; half of one side NUL,
/// one in twenty at most of the other). A binary file is rarely so
/// regular; one that is is read as text, which costs a scan and no finding.
pub(crate) fn order(head: &[u8]) -> Option<Order> {
    // a mark is believed unless what follows is UTF-32 (`FF FE 00 00`) or reads as UTF-8
    // without a NUL (two bytes put before UTF-8 text would hide it all as UTF-16)
    let utf8 = |rest: &[u8]| {
        !rest.contains(&0) && std::str::from_utf8(rest).map_or_else(|e| e.error_len().is_none(), |_| true)
    };
    match head {
        [0xFF, 0xFE, 0, 0, ..] => return None,
        [0xFF, 0xFE, rest @ ..] if !utf8(rest) => return Some(Order::Little),
        [0xFE, 0xFF, rest @ ..] if !utf8(rest) => return Some(Order::Big),
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => return None,
        _ => {}
    }
    let pairs: Vec<&[u8]> = head.chunks_exact(2).take(256).collect();
    if pairs.len() < 4 {
        return None;
    }
    let nul = |side: usize| pairs.iter().filter(|p| p[side] == 0).count();
    let (even, odd, n) = (nul(0), nul(1), pairs.len());
    // (text beyond Latin has fewer NULs on its high side: half will do; NUL characters in
    // text are rare, so the low side has hardly any)
    if 2 * odd >= n && 20 * even <= n {
        Some(Order::Little)
    } else if 2 * even >= n && 20 * odd <= n {
        Some(Order::Big)
    } else {
        None
    }
}

/// UTF-16 read as UTF-8, streaming (`encoding_rs`: a byte order mark is dropped; an unpaired
/// surrogate or a lone last byte is U+FFFD).
pub(crate) struct Decoder<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    /// Decoded bytes not yet read, from `at`.
    out: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: BufRead> Decoder<R> {
    pub(crate) fn new(inner: R, order: Order) -> Self {
        let encoding = match order {
            Order::Little => encoding_rs::UTF_16LE,
            Order::Big => encoding_rs::UTF_16BE,
        };
        Self {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            out: Vec::new(),
            at: 0,
            done: false,
        }
    }

    /// Decodes what the input holds next into `out`; false at its end.
    fn refill(&mut self) -> std::io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let src = self.inner.fill_buf()?;
        let last = src.is_empty();
        let room = self
            .decoder
            .max_utf8_buffer_length(src.len())
            .unwrap_or(src.len().saturating_mul(3) + 16);
        self.out.resize(room, 0);
        let (_, read, written, _) = self.decoder.decode_to_utf8(src, &mut self.out, last);
        self.out.truncate(written);
        self.at = 0;
        self.inner.consume(read);
        self.done = last;
        Ok(written > 0 || !last)
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, order: Order, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for u in bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16()) {
            out.extend_from_slice(&match order {
                Order::Little => u.to_le_bytes(),
                Order::Big => u.to_be_bytes(),
            });
        }
        out
    }

    fn decoded(bytes: &[u8], order: Order) -> String {
        let mut out = String::new();
        // a reader giving one byte at a time: units and surrogate pairs cut anywhere
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                if buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let reader = std::io::BufReader::with_capacity(1, Dribble(bytes));
        match Decoder::new(reader, order).read_to_string(&mut out) {
            Ok(_) => out,
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn utf16_is_told_and_read() {
        let text = "Kontakt: jürgen@bücher.de 😀 山田\r\n";
        for order in [Order::Little, Order::Big] {
            for bom in [true, false] {
                let bytes = utf16(text, order, bom);
                assert_eq!(super::order(&bytes), Some(order), "{order:?} {bom}");
                assert_eq!(decoded(&bytes, order), text, "{order:?} {bom}");
            }
        }
        // a lone surrogate and a lone last byte are U+FFFD
        assert_eq!(
            decoded(&[0x00, 0xD8, 0x41, 0x00, 0x42], Order::Little),
            "\u{FFFD}A\u{FFFD}"
        );
        // UTF-8 text and binary are not UTF-16, nor UTF-8 text after a mark, nor UTF-32
        assert_eq!(order(b"plain text, nothing odd"), None);
        assert_eq!(order(b"\xff\xfessn 536-90-4399 card 4111111111111111"), None);
        assert_eq!(order(b"\xfe\xffj\xc3\xbcrgen@example.de"), None);
        assert_eq!(order(&[0xFF, 0xFE, 0, 0, b'A', 0, 0, 0]), None);
        assert_eq!(order(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0]), None);
        assert_eq!(order(&[0u8; 64]), None);
        // too short to tell
        assert_eq!(order(b",\0\"\\\""), None);
        assert_eq!(order(b"a\0b\0c\0"), None);
        assert_eq!(order(b"a\0b\0c\0d\0"), Some(Order::Little));
    }
}
