//! The fast path. Identifier entities (cards, IBANs, addresses on the network, national
//! numbers) all contain a digit, an `@`, a `:` or an inner `.`; running prose does not.
//! One pass over the bytes finds the tokens that do, widens each by one neighbouring token
//! (for `May 1st`, `AA 12 34 56 B`) and copies those regions into a buffer, one per line,
//! so that every identifier pattern then runs over a fraction of the input. Regions start
//! and end at whitespace, so word boundaries in the buffer are those of the input.

const WS: u8 = 1;
const DIGIT: u8 = 2;
const TRIGGER: u8 = 4; // '@' or ':'
const DOT: u8 = 8;
const DASH: u8 = 16;
const ALNUM: u8 = 32;
const CLOSE: u8 = 64; // ')', ']' or '}'

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => WS,
            b'0'..=b'9' => DIGIT | ALNUM,
            b'a'..=b'z' | b'A'..=b'Z' | 0x80..=0xff => ALNUM,
            b'@' | b':' => TRIGGER,
            b'.' => DOT,
            b'-' => DASH,
            b')' | b']' | b'}' => CLOSE,
            _ => 0,
        };
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

/// Tokens without digits taken after an identifier (`... 90AB CDEF G`, `5 May 2021 at`).
const RIGHT_TOKENS: u8 = 2;

/// Largest whitespace gap that still joins two tokens into one region.
const JOIN_GAP: usize = 3;

/// A byte without which no token is hot: a digit, `@`, `:`, `.` or `-`.
fn may_heat(b: u8) -> bool {
    b.is_ascii_digit() | (b == b'@') | (b == b':') | (b == b'.') | (b == b'-')
}

/// Whether `b`, followed by `next`, may heat a token: as [`may_heat`], bar a dot before
/// whitespace (a sentence's end), which cannot be an inner dot; prose has one every sentence.
/// And a closing bracket before a letter or digit (`jo[at]example[dot]com`).
fn heats(b: u8, next: u8) -> bool {
    (may_heat(b) & !((b == b'.') & is_space_arith(next))) | (closes(b) & maybe_alphanumeric(next))
}

/// Whether `b` is in `0..=z`, which holds every ASCII letter and digit: one comparison where
/// the exact test takes three (this runs on every byte of prose; [`lex_token`] is exact).
fn maybe_alphanumeric(b: u8) -> bool {
    b.wrapping_sub(b'0') <= b'z' - b'0'
}

/// A closing bracket: one inside a token, before a letter or digit, spells out an email
/// address's `@` or dot (`jo(at)example(dot)com`).
fn closes(b: u8) -> bool {
    (b == b')') | (b == b']') | (b == b'}')
}

/// [`is_space`] by comparisons, not by the class table: a table lookup per byte kept the
/// block test of [`next_may_heat`] from compiling to vector instructions.
fn is_space_arith(b: u8) -> bool {
    (b == b' ') | (b.wrapping_sub(b'\t') < 5)
}

/// The first byte at or after `from` that [`heats`] a token. Prose has few: it is skipped
/// 32 bytes at a time (the test of a block, fixed-size and branch-free, compiles to vector
/// instructions).
fn next_may_heat(text: &[u8], from: usize) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut i = from;
    while let Some(window) = text.get(i..i + BLOCK + 1) {
        let (Ok(block), Ok(next)) = (
            <&[u8; BLOCK]>::try_from(&window[..BLOCK]),
            <&[u8; BLOCK]>::try_from(&window[1..]),
        ) else {
            break;
        };
        if block
            .iter()
            .zip(next)
            .fold(0u8, |any, (&b, &n)| any | u8::from(heats(b, n)))
            != 0
        {
            break;
        }
        i += BLOCK;
    }
    // the end of the text is whitespace to a dot before it
    (i..text.len()).find(|&k| heats(text[k], text.get(k + 1).copied().unwrap_or(b' ')))
}

/// ASCII whitespace, vertical tab included: the bytes that end a token here, and those of a
/// byte pattern's `\s`.
pub(crate) fn is_space(b: u8) -> bool {
    CLASS[usize::from(b)] & WS != 0
}

fn skip_space(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && is_space(text[i]) {
        i += 1;
    }
    i
}

/// The token (run between whitespace) starting at `s`: its end, and whether identifiers can
/// be in it: with a digit, an `@` or a `:`, a dot inside (`example.com`) or a closing
/// bracket inside (`jo[at]example[dot]com`), or a dash and at least 11 bytes
/// (`AA-BB-CC-DD-EE-FF`).
fn lex_token(text: &[u8], s: usize) -> (usize, bool) {
    let mut flags = 0u8;
    let mut inner = false;
    let mut prev = 0u8;
    let mut i = s;
    while let Some(&b) = text.get(i) {
        let c = CLASS[usize::from(b)];
        if c & WS != 0 {
            break;
        }
        inner |= (c & ALNUM != 0) & (prev & (DOT | CLOSE) != 0) & (i > s + 1);
        flags |= c;
        prev = c;
        i += 1;
    }
    let hot = flags & (DIGIT | TRIGGER) != 0 || inner || (flags & DASH != 0 && i - s >= 11);
    (i, hot)
}

/// The token before `s` (a token's start), if any.
fn previous_token(text: &[u8], s: usize) -> Option<(usize, usize)> {
    let mut e = s;
    while e > 0 && is_space(text[e - 1]) {
        e -= 1;
    }
    let mut ps = e;
    while ps > 0 && !is_space(text[ps - 1]) {
        ps -= 1;
    }
    (ps < e).then_some((ps, e))
}

/// Regions of a text copied into one buffer, each followed by `\n`.
#[derive(Debug, Default)]
pub(crate) struct HotBuffer {
    pub(crate) buf: Vec<u8>,
    /// (offset in `buf`, offset in the text) of each region; a region ends a byte (its
    /// `\n`) before the next one starts, or the buffer ends. A text of tokens standing apart
    /// has a region for each, in both buffers at once: so no length is kept.
    map: Vec<(usize, usize)>,
}

/// The two hot buffers of a text: `[0]` of the hot tokens alone (joined when only a little
/// whitespace separates them), `[1]` of each widened by the tokens around it (for patterns
/// that span words without digits, `5 May 2021`, `AA 12 34 56 B`, `... 90AB CDEF G`). Both
/// are built in one pass over the text's tokens, each read once; runs of tokens that cannot
/// be hot are skipped 32 bytes at a time ([`next_may_heat`]). Tokens are never listed (a
/// megabyte of short numbers is half a million of them); only the `wanted` buffers are
/// built, the others are left empty.
pub(crate) fn build_hot(text: &[u8], hot: &mut [HotBuffer; 2], wanted: [bool; 2]) {
    for h in hot.iter_mut() {
        h.buf.clear();
        h.map.clear();
    }
    if wanted == [false, false] {
        return;
    }
    // the region each buffer is growing
    let mut open: [Option<(usize, usize)>; 2] = [None, None];
    // the token before the current one, and how many more tokens without digits the wide
    // region takes after its last hot token
    let mut prev_tok: Option<(usize, usize)> = None;
    let mut right = 0u8;
    let mut i = 0;
    loop {
        let s = skip_space(text, i);
        if s >= text.len() {
            break;
        }
        let (e, is_hot) = lex_token(text, s);
        i = e;
        if is_hot {
            for (neighbors, (h, cur)) in [false, true].into_iter().zip(hot.iter_mut().zip(&mut open)) {
                if !wanted[usize::from(neighbors)] {
                    continue;
                }
                let rs = match prev_tok {
                    Some((ps, pe)) if neighbors && s - pe <= JOIN_GAP => ps,
                    _ => s,
                };
                *cur = Some(match *cur {
                    Some((cs, ce)) if rs <= ce + JOIN_GAP => (cs, ce.max(e)),
                    Some(done) => {
                        h.push(text, done);
                        (rs, e)
                    }
                    None => (rs, e),
                });
            }
            right = if wanted[1] { RIGHT_TOKENS } else { 0 };
        } else if right > 0 {
            match open[1] {
                Some((cs, ce)) if s - ce <= JOIN_GAP => {
                    open[1] = Some((cs, e));
                    right -= 1;
                }
                _ => right = 0,
            }
        }
        prev_tok = Some((s, e));
        if !is_hot && right == 0 {
            // nothing to widen: the tokens up to the next that can heat change nothing but
            // which token stands before it, so they are skipped (prose is mostly these)
            let Some(p) = next_may_heat(text, i) else {
                break;
            };
            let mut ts = p;
            while ts > i && !is_space(text[ts - 1]) {
                ts -= 1;
            }
            prev_tok = previous_token(text, ts);
            i = ts;
        }
    }
    for (h, cur) in hot.iter_mut().zip(open) {
        if let Some(done) = cur {
            h.push(text, done);
        }
    }
}

impl HotBuffer {
    /// The bytes the buffer holds on to.
    pub(crate) fn held(&self) -> usize {
        self.buf.capacity() + self.map.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// Zeroes the copied regions and empties the buffer: the buffer outlives the scan (each
    /// thread keeps it for the next), and what it holds is the text's identifiers.
    pub(crate) fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(self.buf.as_mut_slice());
        self.buf.clear();
        self.map.clear();
    }

    fn push(&mut self, text: &[u8], (s, e): (usize, usize)) {
        self.map.push((self.buf.len(), s));
        self.buf.extend_from_slice(&text[s..e]);
        self.buf.push(b'\n');
    }

    /// Maps a span of the buffer back to the text; `None` if it crosses regions.
    pub(crate) fn to_text(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let idx = self.map.partition_point(|&(b, _)| b <= start).checked_sub(1)?;
        let (b, t) = self.map[idx];
        let next = self.map.get(idx + 1).map_or(self.buf.len(), |&(nb, _)| nb);
        let len = next.checked_sub(b + 1)?;
        (end <= b + len).then(|| (t + start - b, t + end - b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(text: &[u8], neighbors: bool) -> HotBuffer {
        let mut hot = [HotBuffer::default(), HotBuffer::default()];
        build_hot(text, &mut hot, [!neighbors, neighbors]);
        let [tight, wide] = hot;
        assert!(if neighbors {
            tight.buf.is_empty()
        } else {
            wide.buf.is_empty()
        });
        if neighbors { wide } else { tight }
    }

    fn regions(text: &str) -> Vec<String> {
        let h = built(text.as_bytes(), true);
        String::from_utf8(h.buf)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn whitespace_by_comparisons_is_the_class_tables() {
        for b in 0..=255u8 {
            assert_eq!(is_space_arith(b), is_space(b), "byte {b:#04x}");
        }
    }

    #[test]
    fn regions_hold_identifiers_and_their_neighbours() {
        assert_eq!(regions("nothing to see here"), Vec::<String>::new());
        assert_eq!(
            regions("bought on May 1st, 1977 at noon"),
            vec!["May 1st, 1977 at noon"]
        );
        assert_eq!(regions("nino AA 12 34 56 B ok"), vec!["AA 12 34 56 B ok"]);
        assert_eq!(
            regions("mail a@b.co now, then call later 555-0100"),
            vec!["mail a@b.co now, then", "later 555-0100"]
        );
        assert_eq!(regions("mac AA-BB-CC-DD-EE-FF"), vec!["mac AA-BB-CC-DD-EE-FF"]);
        assert_eq!(regions("see microsoft.com. End."), vec!["see microsoft.com. End."]);
        let h = built(b"on May 1st, 1977 call 555 0100 now", false);
        assert_eq!(String::from_utf8_lossy(&h.buf), "1st, 1977\n555 0100\n");
    }

    impl HotBuffer {
        /// The one-pass lexer this module had, byte by byte over every token: the reference
        /// the faster one is held to.
        /// `neighbors`: widen each region by the tokens around it (for patterns that span words
        /// without digits, `5 May 2021`, `AA 12 34 56 B`, `... 90AB CDEF G`); without, regions are
        /// the hot tokens alone (joined when only a little whitespace separates them).
        fn build_reference(&mut self, text: &[u8], neighbors: bool) {
            self.buf.clear();
            self.map.clear();
            let mut cur: Option<(usize, usize)> = None;
            let mut prev_tok: Option<(usize, usize)> = None;
            let mut pending_right = 0u8;
            let mut i = 0;
            let n = text.len();
            while i < n {
                // skip whitespace
                while i < n && CLASS[text[i] as usize] & WS != 0 {
                    i += 1;
                }
                if i >= n {
                    break;
                }
                let s = i;
                let mut flags = 0u8;
                let mut inner_dot = false;
                let mut prev = 0u8;
                while i < n {
                    let c = CLASS[text[i] as usize];
                    if c & WS != 0 {
                        break;
                    }
                    if c & ALNUM != 0 && prev & DOT != 0 && i > s + 1 {
                        inner_dot = true;
                    }
                    flags |= c;
                    prev = c;
                    i += 1;
                }
                let e = i;
                let hot = flags & (DIGIT | TRIGGER) != 0 || inner_dot || (flags & DASH != 0 && e - s >= 11);
                if hot {
                    let rs = match prev_tok {
                        _ if !neighbors => s,
                        Some((ps, pe)) if s - pe <= JOIN_GAP => ps,
                        _ => s,
                    };
                    cur = Some(match cur {
                        Some((cs, ce)) if rs <= ce + JOIN_GAP => (cs, ce.max(e)),
                        Some(done) => {
                            self.push(text, done);
                            (rs, e)
                        }
                        None => (rs, e),
                    });
                    pending_right = if neighbors { RIGHT_TOKENS } else { 0 };
                } else if pending_right > 0 {
                    match cur {
                        Some((cs, ce)) if s - ce <= JOIN_GAP => {
                            cur = Some((cs, e));
                            pending_right -= 1;
                        }
                        _ => pending_right = 0,
                    }
                }
                prev_tok = Some((s, e));
            }
            if let Some(done) = cur {
                self.push(text, done);
            }
        }
    }

    /// Text with a digit, `@`, `:`, `.` or `-` once in `rarity` bytes or so: dense with
    /// identifiers at 1, prose (whose runs without any are skipped) at 40.
    fn text_of_rarity() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (1u32..40).prop_flat_map(|rarity| {
            proptest::collection::vec(
                prop_oneof![
                    rarity => proptest::sample::select(b"aZx ,\n\t  ".to_vec()),
                    1 => proptest::sample::select(b"09.-@:".to_vec()),
                ],
                0..400,
            )
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn the_same_regions_as_the_byte_by_byte_lexer(text in text_of_rarity()) {
            // both buffers at once, and each alone, as the reference builds it
            for wanted in [[true, true], [true, false], [false, true]] {
                let mut built = [HotBuffer::default(), HotBuffer::default()];
                build_hot(&text, &mut built, wanted);
                for (neighbors, fast) in [false, true].into_iter().zip(&built) {
                    let mut reference = HotBuffer::default();
                    if wanted[usize::from(neighbors)] {
                        reference.build_reference(&text, neighbors);
                    }
                    proptest::prop_assert_eq!(&fast.buf, &reference.buf);
                    proptest::prop_assert_eq!(&fast.map, &reference.map);
                }
            }
        }
    }

    #[test]
    fn spans_map_back() {
        let text = "word 12 word word word x@y.z";
        let h = built(text.as_bytes(), true);
        let buf = String::from_utf8(h.buf.clone()).unwrap_or_default();
        let at = buf.find("x@y.z").unwrap_or(0);
        let (s, e) = h.to_text(at, at + 5).unwrap_or((0, 0));
        assert_eq!(&text[s..e], "x@y.z");
        assert!(h.to_text(0, buf.len()).is_none());
        // regions apart: each maps back up to its end, never across its line end
        let text = "a 12    b    345";
        let h = built(text.as_bytes(), false);
        assert_eq!(h.buf, b"12\n345\n");
        assert_eq!(h.to_text(0, 2), Some((2, 4)));
        assert_eq!(h.to_text(0, 3), None);
        assert_eq!(h.to_text(3, 6), Some((13, 16)));
        assert_eq!(h.to_text(4, 7), None);
    }
}
