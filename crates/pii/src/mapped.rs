//! Text rewritten before it is scanned (a JSON string's escapes decoded, no-break spaces
//! written as spaces, URL and HTML escapes decoded), with the map from each rewritten byte back to where it came from, so
//! findings are placed on the original.

/// Rewritten text and, for each of its bytes, the offset in the original of the character
/// (or escape) that wrote it.
pub(crate) struct Mapped {
    pub(crate) text: Vec<u8>,
    /// One entry a byte of `text`, and one more: the original's length.
    from: Vec<usize>,
}

impl Mapped {
    pub(crate) fn with_capacity(len: usize) -> Self {
        Self {
            text: Vec::with_capacity(len),
            from: Vec::with_capacity(len + 1),
        }
    }

    /// Bytes written for what stands at `at` in the original (an escape, a no-break space).
    pub(crate) fn put(&mut self, bytes: &[u8], at: usize) {
        self.text.extend_from_slice(bytes);
        self.from.extend(std::iter::repeat_n(at, bytes.len()));
    }

    /// Bytes of the original, as they are, starting at `at`.
    pub(crate) fn copy(&mut self, bytes: &[u8], at: usize) {
        self.text.extend_from_slice(bytes);
        self.from.extend(at..at + bytes.len());
    }

    /// Closes the map: `original_len` is where the end of `text` maps to.
    pub(crate) fn finish(mut self, original_len: usize) -> Self {
        self.from.push(original_len);
        self
    }

    /// `self` rewritten again by `rewrite` (which gives `None` when it changes nothing),
    /// mapped to `self`'s original.
    pub(crate) fn then(self, rewrite: impl FnOnce(&[u8]) -> Option<Mapped>) -> Self {
        match rewrite(&self.text) {
            None => self,
            Some(next) => Self {
                text: next.text,
                from: next.from.iter().map(|&at| self.original(at)).collect(),
            },
        }
    }

    /// Where the escape of the original that `at` stands inside starts, and the first byte
    /// written for it, if `at` stands inside one (`%3C` writes `<`).
    pub(crate) fn written_over(&self, at: usize) -> Option<(usize, u8)> {
        if self.from.binary_search(&at).is_ok() {
            return None;
        }
        let escape = *self.from.get(self.from.partition_point(|&x| x < at).checked_sub(1)?)?;
        let first = self.text.get(self.from.partition_point(|&x| x < escape)).copied()?;
        Some((escape, first))
    }

    /// The original span of a rewritten one (see [`Self::original`]).
    pub(crate) fn original_span(&self, (start, end): (usize, usize)) -> (usize, usize) {
        (self.original(start), self.original(end))
    }

    /// The original offset of a rewritten one: a span of rewritten characters maps to the
    /// whole of what wrote them (a redaction never cuts an escape in two).
    pub(crate) fn original(&self, at: usize) -> usize {
        self.from.get(at).or(self.from.last()).copied().unwrap_or(0)
    }
}

/// Characters that group digits as a space does and that [`ascii_separators`] writes as
/// one: U+00A0 (no-break space; French typography groups phone numbers with it, and word
/// processors put it there), U+202F (the narrow one, French thousands), U+2009 (thin space)
/// and U+2007 (figure space).
const NO_BREAK_SPACES: [&[u8]; 4] = [
    "\u{a0}".as_bytes(),
    "\u{202f}".as_bytes(),
    "\u{2009}".as_bytes(),
    "\u{2007}".as_bytes(),
];

/// Characters that join digits as a hyphen does and that [`ascii_separators`] writes as one
/// between two digits: U+2010 (hyphen), U+2011 (non-breaking hyphen, which word processors put
/// in phone numbers to keep them on one line), U+2012 (figure dash) and U+2212 (minus). Not
/// the en dash: it writes ranges (`1990–1995`), which a hyphen would make a phone's shape.
const DASHES: [&[u8]; 4] = [
    "\u{2010}".as_bytes(),
    "\u{2011}".as_bytes(),
    "\u{2012}".as_bytes(),
    "\u{2212}".as_bytes(),
];

/// The en dash: it writes ranges (`1990–1995`, `pages 12–15`), which a hyphen would make a
/// phone's shape, so [`ascii_separators`] writes it as a hyphen only in a run of three or more
/// digit groups joined by dashes (`555–123–4567`, `536–22–1234`): a range has two ends.
const EN_DASH: &[u8] = "\u{2013}".as_bytes();

/// The separators beyond ASCII that group digits: [`NO_BREAK_SPACES`], [`DASHES`] and
/// [`EN_DASH`].
fn unicode_separators() -> impl Iterator<Item = &'static [u8]> {
    NO_BREAK_SPACES.into_iter().chain(DASHES).chain([EN_DASH])
}

/// How many ASCII digits end at `end`.
fn digits_ending(text: &[u8], end: usize) -> usize {
    text[..end].iter().rev().take_while(|b| b.is_ascii_digit()).count()
}

/// How many ASCII digits start at `from`.
fn digits_from(text: &[u8], from: usize) -> usize {
    text[from..].iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The length of the dash (ASCII, one of [`DASHES`] or [`EN_DASH`]) at `i`, if one stands there.
fn dash_at(text: &[u8], i: usize) -> Option<usize> {
    let rest = text.get(i..)?;
    if rest.first() == Some(&b'-') {
        return Some(1);
    }
    DASHES
        .into_iter()
        .chain([EN_DASH])
        .find(|d| rest.starts_with(d))
        .map(<[u8]>::len)
}

/// The digit groups of the run of digits and dashes that the dash at `i` (digits before it)
/// stands in, counted back from it and on past it; and each dash after `i` (its place, its
/// length, whether an en dash), with the run's end.
fn dash_run(text: &[u8], i: usize) -> (usize, Vec<(usize, usize, bool)>, usize) {
    let digits_before = |end: usize| digits_ending(text, end);
    let mut groups = 1;
    let mut at = i - digits_before(i);
    // a dash ends at `at` (three bytes beyond ASCII, one in it) with digits before it
    while let Some(len) = [1, 3]
        .into_iter()
        .find(|&len| at >= len && dash_at(text, at - len) == Some(len) && digits_before(at - len) > 0)
    {
        groups += 1;
        at -= len;
        at -= digits_before(at);
    }
    let mut dashes = Vec::new();
    let mut at = i;
    while let Some(len) = dash_at(text, at) {
        let digits = digits_from(text, at + len);
        if digits == 0 {
            break;
        }
        dashes.push((at, len, text[at..].starts_with(EN_DASH)));
        groups += 1;
        at += len + digits;
    }
    (groups, dashes, at)
}

/// Characters that show nothing, which [`ascii_separators`] drops between two digits (written
/// into a number to hide it from scanners, or left by a word processor): U+00AD (soft
/// hyphen), U+200B (zero-width space), U+2060 (word joiner), U+FEFF (zero-width no-break
/// space).
const INVISIBLE: [&[u8]; 4] = [
    "\u{ad}".as_bytes(),
    "\u{200b}".as_bytes(),
    "\u{2060}".as_bytes(),
    "\u{feff}".as_bytes(),
];

/// The separator (an ASCII space, hyphen or dot, or one of [`NO_BREAK_SPACES`], [`DASHES`]
/// or [`EN_DASH`]) at `i`, as its bytes.
fn separator_at(text: &[u8], i: usize) -> Option<&[u8]> {
    let rest = text.get(i..)?;
    if rest.first().is_some_and(|b| b" -.".contains(b)) {
        return rest.get(..1);
    }
    unicode_separators().find(|s| rest.starts_with(s))
}

/// The separator (as [`separator_at`]) ending at `end`, as its bytes.
fn separator_ending(text: &[u8], end: usize) -> Option<&[u8]> {
    let before = text.get(..end)?;
    if before.last().is_some_and(|b| b" -.".contains(b)) {
        return before.get(end - 1..);
    }
    unicode_separators().find(|s| before.ends_with(s))
}

/// The run of [`INVISIBLE`] characters at `i`, if one starts there: its end, and what it is
/// read as when it stands inside a number (`None` elsewhere). Inside a number is a digit on
/// one side of the run and a digit or a separator on the other (`4532\u{ad}\u{ad}0151`,
/// `536-\u{200b}22`, `536\u{2011}\u{200b}22`): it is read as nothing, or, between two digits
/// of a number whose groups are separated, as their separator (`4532 0151 1283\u{200b}0366`
/// is `4532 0151 1283 0366`: its groups joined would be no card's).
fn invisible_run(text: &[u8], i: usize) -> Option<(usize, Option<&[u8]>)> {
    let mut end = i;
    while let Some(len) = INVISIBLE.iter().find(|c| text[end..].starts_with(c)).map(|c| c.len()) {
        end += len;
    }
    if end == i {
        return None;
    }
    let digit = |k: usize| text.get(k).is_some_and(u8::is_ascii_digit);
    let digit_before = i > 0 && digit(i - 1);
    let inside = match (digit_before, digit(end)) {
        (true, true) => {
            let group_end = |from: usize| from + digits_from(text, from);
            let left = i - digits_ending(text, i);
            let right = group_end(end);
            // the joints beyond the two groups: a separator with a digit beyond, or another
            // run of invisible characters (then the number is written without separators,
            // and what follows it, ` 12`, is none of its)
            // (not a dot: it ends an IP address's octet, `192.168.1.1\u{ad}0`, and groups no
            // card or phone's digits written with invisible characters)
            let before = separator_ending(text, left)
                .filter(|sep| *sep != b"." && left > sep.len() && digit(left - sep.len() - 1));
            let after = separator_at(text, right).filter(|sep| *sep != b"." && digit(right + sep.len()));
            let hidden_beside = INVISIBLE
                .iter()
                .any(|c| text[..left].ends_with(c) || text[right..].starts_with(c));
            // (a separator after alone counts when it separates the next group too:
            // `4532\u{200b}0151 1283 0366`, not `4532\u{200b}015112830366 3`)
            let again = |sep: &[u8]| {
                let next = group_end(right + sep.len());
                text[next..].starts_with(sep) && digit(next + sep.len())
            };
            let written = match (before, after) {
                _ if hidden_beside => None,
                (Some(b), Some(a)) => (b == a).then_some(b),
                (Some(b), None) => Some(b),
                (None, Some(a)) => again(a).then_some(a),
                (None, None) => None,
            };
            Some(written.unwrap_or(b""))
        }
        (true, false) => separator_at(text, end).map(|_| &b""[..]),
        (false, true) => separator_ending(text, i).map(|_| &b""[..]),
        (false, false) => None,
    };
    Some((end, inside))
}

/// `text` with the invisible characters inside its numbers read as [`invisible_run`] reads
/// them, or `None` when it holds none there.
fn visible(text: &[u8]) -> Option<Mapped> {
    let mut runs: Vec<(usize, usize, &[u8])> = Vec::new();
    let mut from = 0;
    while let Some(k) = memchr::memchr3(0xC2, 0xE2, 0xEF, &text[from..]) {
        let i = from + k;
        // (a run is read once, inside a number or not: a megabyte of soft hyphens is no
        // quadratic walk)
        match invisible_run(text, i) {
            Some((end, inside)) => {
                runs.extend(inside.map(|written| (i, end - i, written)));
                from = end;
            }
            None => from = i + 1,
        }
    }
    rewritten(text, runs)
}

/// `text` with each `(place, length, bytes)` of `changes` (in text order) written as its
/// bytes, or `None` when there are none.
pub(crate) fn rewritten(text: &[u8], changes: Vec<(usize, usize, &[u8])>) -> Option<Mapped> {
    if changes.is_empty() {
        return None;
    }
    let mut out = Mapped::with_capacity(text.len());
    let mut at = 0;
    for (i, len, bytes) in changes {
        out.copy(&text[at..i], at);
        out.put(bytes, i);
        at = i + len;
    }
    out.copy(&text[at..], at);
    Some(out.finish(text.len()))
}

/// `text` with the no-break spaces and dashes that group digits written as an ASCII space and
/// hyphen, and the invisible characters between digits dropped, or `None` when it holds none (nearly always: the text is then scanned as it is).
/// Not the spaces that separate thousands (`12\u{202f}345\u{202f}678 €`,
/// `362\u{a0}521\u{a0}879`: groups of three after the first): an amount or a company number
/// grouped so is no phone or card.
pub(crate) fn ascii_separators(text: &[u8]) -> Option<Mapped> {
    // the invisible characters first: a dash or a no-break space beside one stands between
    // digits once it is gone
    match visible(text) {
        Some(shown) => Some(shown.then(separators_in_ascii)),
        None => separators_in_ascii(text),
    }
}

/// [`ascii_separators`], of a text without invisible characters inside its numbers.
fn separators_in_ascii(text: &[u8]) -> Option<Mapped> {
    let width = |i: usize| {
        NO_BREAK_SPACES
            .iter()
            .find(|s| text[i..].starts_with(s))
            .map(|s| s.len())
    };
    // one of `among` between two digits
    let between_digits = |i: usize, among: &[&[u8]]| {
        let digit_before = i > 0 && text[i - 1].is_ascii_digit();
        among
            .iter()
            .find(|d| text[i..].starts_with(d))
            .map(|d| d.len())
            .filter(|&len| digit_before && text.get(i + len).is_some_and(u8::is_ascii_digit))
    };
    let dash = |i: usize| between_digits(i, &DASHES);
    // (place, length, the ASCII written for it), in text order
    let mut spaces: Vec<(usize, usize, &[u8])> = Vec::new();
    let mut from = 0;
    while let Some(k) = memchr::memchr3(0xC2, 0xE2, 0xEF, &text[from..]) {
        let i = from + k;
        if between_digits(i, &[EN_DASH]).is_some() {
            // the whole run at once, each of its dashes read once
            let (groups, dashes, end) = dash_run(text, i);
            // (an ASCII hyphen is written as it is)
            let written = dashes
                .into_iter()
                .filter(|&(_, len, en)| len > 1 && (!en || groups >= 3));
            spaces.extend(written.map(|(at, len, _)| (at, len, &b"-"[..])));
            from = end;
            continue;
        }
        if let Some(len) = dash(i) {
            spaces.push((i, len, b"-"));
            from = i + len;
            continue;
        }
        let Some(len) = width(i) else {
            from = i + 1;
            continue;
        };
        // the run of digit groups joined by no-break spaces this one stands in
        let mut groups = vec![digits_ending(text, i)];
        let mut run: Vec<(usize, usize, &[u8])> = vec![(i, len, b" ")];
        let mut at = i + len;
        loop {
            let digits = digits_from(text, at);
            groups.push(digits);
            at += digits;
            match (digits > 0).then(|| width(at)).flatten() {
                Some(len) if at < text.len() => {
                    run.push((at, len, b" "));
                    at += len;
                }
                _ => break,
            }
        }
        // (not after a `+`, nor going on with a dash and digits: `+1\u{a0}212-555-0123`)
        let signed = i.checked_sub(groups[0] + 1).is_some_and(|k| text[k] == b'+');
        let goes_on = (text.get(at) == Some(&b'-') && text.get(at + 1).is_some_and(u8::is_ascii_digit))
            || (at < text.len() && dash(at).is_some());
        // (nor a number starting with 0, `030 123 456`, or glued to a letter, an IBAN's
        // `3M02 606`)
        let first = i - groups[0];
        let amount = text.get(first) != Some(&b'0') && !(first > 0 && text[first - 1].is_ascii_alphabetic());
        let thousands =
            (1..=3).contains(&groups[0]) && groups[1..].iter().all(|&g| g == 3) && !signed && !goes_on && amount;
        if !thousands {
            spaces.extend(run);
        }
        from = at.max(i + len);
    }
    rewritten(text, spaces)
}

/// The value of an ASCII hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a URL escape at `i` (`%40`) stands for.
fn percent_escape(text: &[u8], i: usize) -> Option<u8> {
    match text.get(i..i + 3) {
        Some(&[b'%', h, l]) => Some(hex(h)? << 4 | hex(l)?),
        _ => None,
    }
}

/// Characters that show nothing and join nothing, written into an identifier to hide it
/// (`4532&shy;0151…`, `+1&ZeroWidthSpace;212…`): a reference to one writes nothing.
pub(crate) fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

/// The longest name of [`crate::html_entities::NAMED`] (`CounterClockwiseContourIntegral`).
const LONGEST_NAME: usize = 32;

/// The character(s) an HTML character reference at `i` writes (`&#64;`, `&#x40;`, any named
/// one of HTML's table: `&commat;`, `&shy;`, `&eacute;`), and the reference's length. A
/// numeric one may lack its `;` (browsers read `&#64example.com` as `@example.com`), but
/// then writes no control character; so may a legacy name (`&nbsp4111…`, the longest such
/// name the letters begin with), but not before `=` (`?a=1&para=2` is a query, not `¶=2`).
fn html_reference(text: &[u8], i: usize) -> Option<(Written, usize)> {
    let rest = text.get(i + 1..)?;
    if rest.first() != Some(&b'#') {
        let name_len = rest
            .iter()
            .take(LONGEST_NAME + 1)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let (name, len) = if rest.get(name_len) == Some(&b';') {
            (std::str::from_utf8(&rest[..name_len]).ok()?, name_len + 2)
        } else {
            let legacy = crate::html_entities::LEGACY
                .iter()
                .filter(|l| rest[..name_len].starts_with(l.as_bytes()))
                .max_by_key(|l| l.len())?;
            if rest.get(legacy.len()) == Some(&b'=') {
                return None;
            }
            (*legacy, legacy.len() + 1)
        };
        let k = crate::html_entities::NAMED
            .binary_search_by(|(n, _)| n.cmp(&name))
            .ok()?;
        return crate::html_entities::NAMED.get(k).map(|&(_, value)| {
            let value = if value.chars().all(invisible) { "" } else { value };
            (Written::Str(value), len)
        });
    }
    let (radix, digits_at) = match rest.get(1) {
        Some(b'x' | b'X') => (16, 2),
        _ => (10, 1),
    };
    let digits = rest[digits_at..]
        .iter()
        .take(8)
        .take_while(|b| {
            if radix == 16 {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    let end = digits_at + digits;
    let closed = rest.get(end) == Some(&b';');
    if digits == 0 {
        return None;
    }
    let code = u32::from_str_radix(std::str::from_utf8(&rest[digits_at..end]).ok()?, radix).ok()?;
    char::from_u32(code)
        .filter(|c| *c != '\0' && (closed || !c.is_control()))
        .map(|c| {
            let written = if invisible(c) {
                Written::Str("")
            } else {
                Written::Char(c)
            };
            (written, end + 1 + usize::from(closed))
        })
}

/// `text` with its URL escapes (`jo%40example.com`, `%2B44%2020%207946%200958`: query
/// strings in web server logs, form posts), HTML character references (`jo&#64;example.com`,
/// `&commat;`), backslash escapes (`jo\u0040example.com`, `\x40`; then `\n`, `\"` too) decoded
/// and full-width forms (`ｊｏ＠ｅｘａｍｐｌｅ．ｃｏｍ`) read as ASCII, or `None` when it holds
/// none (nearly always). A `+` is a space in a
/// stretch written URL-encoded (a form's encoding; a plus sign is `%2B` there) when it
/// stands between digits (`%2B44+20+7946+0958`), and itself elsewhere. Escapes that decode to a byte are decoded one by one, so `J%C3%BCrgen` is
/// `Jürgen`; a `%` not followed by two hex digits stays as it is. An escape of an escape
/// (`%2540`, `&amp;#64;`, `%252540`) is decoded too: the text is decoded again while a pass
/// wrote one, [`ESCAPE_LEVELS`] times at most.
pub(crate) fn decoded_escapes(text: &[u8]) -> Option<Mapped> {
    let mut passes = escape_passes(text).into_iter();
    let first = passes.next()?;
    Some(passes.fold(first, |decoded, next| decoded.then(|_| Some(next))))
}

/// The passes of [`decoded_escapes`], each mapped to the text of the one before (the first to
/// `text`); empty when `text` holds no escape. A scan reads every one: an escape of a `%`
/// before hex digits (`%254111…`, SQL's `LIKE '%4111…%'` in a query string) is no escape
/// of an escape, and the pass that reads it as one loses what the pass before found.
pub(crate) fn escape_passes(text: &[u8]) -> Vec<Mapped> {
    let mut passes: Vec<Mapped> = Vec::new();
    while passes.len() < ESCAPE_LEVELS {
        // an escape of an escape: the pass before wrote this one
        let Some(next) = decoded_once(passes.last().map_or(text, |p| &p.text)) else {
            break;
        };
        passes.push(next);
    }
    passes
}

/// How many times over an escape is decoded: a value escaped once more at each system it
/// passed through (a form, a proxy's log, a JSON export) is seldom escaped more than thrice;
/// a bound keeps a text of nested escapes from costing a pass per level.
const ESCAPE_LEVELS: usize = 4;

/// What an escape writes.
enum Written {
    Byte(u8),
    Char(char),
    Str(&'static str),
}

/// The escape or folded character at `i` that opens a pass of [`decoded_once`], and its
/// length: a URL escape, an HTML character reference, a backslash escape of a code
/// ([`code_escape`]) or a full-width form ([`full_width`]). The escapes of one character
/// (`\n`, `\"`) open none: they are decoded in a pass that an escape of a code opened (a JSON
/// string holding JSON), not in every text with a Windows path in it.
fn escape_at(text: &[u8], i: usize) -> Option<(Written, usize)> {
    match text.get(i)? {
        b'%' => utf8_of_escapes(i, 3, |at| percent_escape(text, at)),
        b'&' => html_reference(text, i),
        b'\\' => code_escape(text, i),
        0xE3 | 0xEF => full_width(text, i).map(|byte| (Written::Byte(byte), 3)),
        _ => None,
    }
}

/// Where the first escape or folded character of `text` ([`escape_at`]) stands. Two
/// searches, each resumed from where it stopped (a megabyte of `%` and one full-width
/// character at its end is no quadratic walk).
fn first_escape(text: &[u8]) -> Option<usize> {
    let ascii = |from: usize| memchr::memchr3(b'%', b'&', b'\\', &text[from..]).map(|k| from + k);
    let wide = |from: usize| memchr::memchr2(0xE3, 0xEF, &text[from..]).map(|k| from + k);
    let (mut a, mut w) = (ascii(0), wide(0));
    loop {
        let i = match (a, w) {
            (None, None) => return None,
            (Some(a), None) => a,
            (None, Some(w)) => w,
            (Some(a), Some(w)) => a.min(w),
        };
        if escape_at(text, i).is_some() {
            return Some(i);
        }
        if a == Some(i) {
            a = ascii(i + 1);
        } else {
            w = wide(i + 1);
        }
    }
}

/// The ASCII character a full-width form at `i` is (`＠` U+FF20 is `@`, `４` is `4`; the
/// ideographic space U+3000 a space): text typed with an East Asian input method, or written
/// so to slip past a scanner that reads ASCII only.
fn full_width(text: &[u8], i: usize) -> Option<u8> {
    match *text.get(i..i + 3)? {
        // U+FF01..U+FF3F
        [0xEF, 0xBC, c @ 0x81..=0xBF] => Some(c - 0x60),
        // U+FF40..U+FF5E
        [0xEF, 0xBD, c @ 0x80..=0x9E] => Some(c - 0x20),
        [0xE3, 0x80, 0x80] => Some(b' '),
        _ => None,
    }
}

/// The character or byte a backslash escape of a code at `i` writes, and its length:
/// `\u0040` and `\ud83d\ude00` (JSON, JavaScript, Java), `\u{40}` (JavaScript, Rust),
/// `\U00000040` (Python, C) and the bytes `\x40`, `\xc3\xa9` (C, Python's bytes, log
/// escapers): a JSON string holding JSON, logged, keeps its inner escapes as text. A
/// surrogate standing alone, and bytes escaped that make no UTF-8 character, are U+FFFD (as
/// JSON reads the one, a browser the other): a character that is no letter, so what follows
/// it stands alone, as it does after the escape's own backslash. Codes beyond Unicode stay as
/// written.
fn code_escape(text: &[u8], i: usize) -> Option<(Written, usize)> {
    let hex_run = |from: usize, len: usize| -> Option<u32> {
        let digits = text.get(from..from + len)?;
        digits.iter().try_fold(0u32, |v, &b| Some(v << 4 | u32::from(hex(b)?)))
    };
    let (code, len) = match text.get(i + 1)? {
        b'x' => return escaped_bytes(text, i),
        // (a surrogate, or a code beyond Unicode: no character, as below)
        b'U' => (
            hex_run(i + 2, 8).map(|c| if char::from_u32(c).is_some() { c } else { 0xFFFD })?,
            10,
        ),
        b'u' if text.get(i + 2) == Some(&b'{') => {
            let digits = text[i + 3..]
                .iter()
                .take(7)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if !(1..=6).contains(&digits) || text.get(i + 3 + digits) != Some(&b'}') {
                return None;
            }
            (hex_run(i + 3, digits)?, digits + 4)
        }
        b'u' => {
            let code = hex_run(i + 2, 4)?;
            match code {
                // a high surrogate and the low one after it are one character
                0xD800..=0xDBFF => {
                    let low = (text.get(i + 6..i + 8) == Some(b"\\u"))
                        .then(|| hex_run(i + 8, 4))
                        .flatten()
                        .filter(|low| (0xDC00..=0xDFFF).contains(low));
                    match low {
                        Some(low) => (0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), 12),
                        None => (0xFFFD, 6),
                    }
                }
                0xDC00..=0xDFFF => (0xFFFD, 6),
                _ => (code, 6),
            }
        }
        _ => return None,
    };
    char::from_u32(code).map(|c| {
        let written = if invisible(c) {
            Written::Str("")
        } else {
            Written::Char(c)
        };
        (written, len)
    })
}

/// The character the byte escapes from `i` on write (`\x40`; `\xc3\xa9` is `é`), and their
/// length; U+FFFD for one byte that begins no UTF-8 character the escapes after it complete.
fn escaped_bytes(text: &[u8], i: usize) -> Option<(Written, usize)> {
    let byte_at = |at: usize| match text.get(at..at + 4) {
        Some(&[b'\\', b'x', h, l]) => Some(hex(h)? << 4 | hex(l)?),
        _ => None,
    };
    utf8_of_escapes(i, 4, byte_at)
}

/// The character escapes of `width` bytes each write from `i` on, one byte each
/// (`byte_at`), and their length: an ASCII byte as itself, the bytes of one UTF-8 character
/// as that character, and a byte that begins none that the escapes after it complete as
/// U+FFFD (a character that is no letter: what follows it stands apart, as a browser shows it).
fn utf8_of_escapes(i: usize, width: usize, byte_at: impl Fn(usize) -> Option<u8>) -> Option<(Written, usize)> {
    let lead = byte_at(i)?;
    let len = match lead {
        0x00..=0x7F => return Some((Written::Byte(lead), width)),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    };
    let mut bytes = vec![lead];
    for k in 1..len {
        match byte_at(i + width * k) {
            Some(b) if b & 0xC0 == 0x80 => bytes.push(b),
            _ => break,
        }
    }
    match std::str::from_utf8(&bytes).ok().and_then(|s| s.chars().next()) {
        Some(c) => Some((Written::Char(c), width * bytes.len())),
        None => Some((Written::Char('\u{fffd}'), width)),
    }
}

/// What a backslash escape of one character at `i` writes (`\n`, `\"`, `\\`, `\f`, as JSON
/// and C strings write them), and its length 2.
fn char_escape(text: &[u8], i: usize) -> Option<(Written, usize)> {
    let byte = match text.get(i + 1)? {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'f' => 0x0C,
        b'b' => 0x08,
        c @ (b'"' | b'\'' | b'\\' | b'/') => *c,
        _ => return None,
    };
    Some((Written::Byte(byte), 2))
}

/// [`decoded_escapes`], one pass.
fn decoded_once(text: &[u8]) -> Option<Mapped> {
    let first = first_escape(text)?;
    let space = |b: &u8| b.is_ascii_whitespace();
    let stretch_end = |i: usize| text[i..].iter().position(space).map_or(text.len(), |k| i + k);
    // where the stretch being read ends, if it holds a URL escape (its `+` are spaces) or
    // holds none (each byte is looked at once: a megabyte of `+` is no quadratic walk)
    let (mut encoded_until, mut plain_until) = (0, 0);
    let mut out = Mapped::with_capacity(text.len());
    // from the start of the first escape's stretch, for the `+` before it, or from the first
    // backslash, for the escapes of one character before it (`jo\nsmith@… \u0040`)
    let stretch = text[..first].iter().rposition(space).map_or(0, |k| k + 1);
    let mut i = memchr::memchr(b'\\', &text[..first]).map_or(stretch, |b| b.min(stretch));
    let mut copied = 0;
    while i < text.len() {
        let written: Option<(Written, usize)> = match text[i] {
            b'%' => escape_at(text, i).inspect(|_| {
                if i >= encoded_until {
                    encoded_until = stretch_end(i);
                }
            }),
            b'&' | 0xE3 | 0xEF => escape_at(text, i),
            b'\\' => code_escape(text, i).or_else(|| char_escape(text, i)),
            // (between digits only: a form writes `+44+20+7946+0958` so, while a `+` in an
            // address, `jo+news@…`, is one whatever the rest of the line escapes)
            b'+' if i > 0 && text[i - 1].is_ascii_digit() && text.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                if i >= encoded_until && i >= plain_until {
                    let e = stretch_end(i);
                    if (i..e).any(|k| percent_escape(text, k).is_some()) {
                        encoded_until = e;
                    } else {
                        plain_until = e;
                    }
                }
                (i < encoded_until).then_some((Written::Byte(b' '), 1))
            }
            _ => None,
        };
        let Some((written, len)) = written else {
            i += 1;
            continue;
        };
        out.copy(&text[copied..i], copied);
        match written {
            // an escaped byte is that byte, not the character of its code (`%C3%BC`)
            Written::Byte(byte) => out.put(&[byte], i),
            Written::Char(c) => out.put(c.encode_utf8(&mut [0; 4]).as_bytes(), i),
            Written::Str(s) => out.put(s.as_bytes(), i),
        }
        i += len;
        copied = i;
    }
    out.copy(&text[copied..], copied);
    Some(out.finish(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_html_escapes_decoded_with_their_places() {
        let text = b"GET /s?email=jo.beck%40example.com&tel=%2B44+20+7946+0958 x+y 100% &#64;&#x40;&commat;";
        let Some(m) = decoded_escapes(text) else {
            panic!("the escapes were not seen");
        };
        assert_eq!(
            String::from_utf8_lossy(&m.text),
            "GET /s?email=jo.beck@example.com&tel=+44 20 7946 0958 x+y 100% @@@"
        );
        let decoded = String::from_utf8_lossy(&m.text).into_owned();
        let at = |s: &str| decoded.find(s).unwrap_or(usize::MAX);
        // the address maps to all of its escaped form
        let (s, e) = (at("jo.beck"), at(".com") + 4);
        assert_eq!(&text[m.original(s)..m.original(e)], b"jo.beck%40example.com");
        let (s, e) = (at("+44"), at("0958") + 4);
        assert_eq!(&text[m.original(s)..m.original(e)], b"%2B44+20+7946+0958");
        assert_eq!(m.original(m.text.len()), text.len());
        // UTF-8 written byte by byte
        let Some(m) = decoded_escapes(b"name=J%C3%BCrgen") else {
            panic!("not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "name=Jürgen");
        // every named reference of HTML, in its case; numeric ones without `;` too
        for (text, want) in [
            ("mary.o&apos;brien&commat;example.com", "mary.o'brien@example.com"),
            ("x&lowbar;y&#64example.com", "x_y@example.com"),
            ("j&eacute;r&ocirc;me", "jérôme"),
            (
                "jo@exa&shy;mple.com 4532&#173;0151&ZeroWidthSpace;1283",
                "jo@example.com 453201511283",
            ),
            ("2001&colon;db8&colon;&colon;1", "2001:db8::1"),
            // an escape of an escape, and of that; four levels at most
            (
                "jo%2540example.com jo&amp;#64;example.com jo%252540x.org &amp;amp;amp;amp;amp;",
                "jo@example.com jo@example.com jo@x.org &amp;",
            ),
            // `+` a space between digits only: an address keeps its own
            (
                "tel=%2B44+20+7946+0958&to=jo+news@x.com",
                "tel=+44 20 7946 0958&to=jo+news@x.com",
            ),
        ] {
            let Some(m) = decoded_escapes(text.as_bytes()) else {
                panic!("{text}: not seen");
            };
            assert_eq!(String::from_utf8_lossy(&m.text), want);
            assert_eq!(m.original(m.text.len()), text.len());
        }
        // unknown names, the wrong case, a control character without `;`: as written
        for plain in ["&bogus; &COMMAT; &#1x", "AT&T R&D"] {
            assert!(decoded_escapes(plain.as_bytes()).is_none(), "{plain}");
        }
        // nothing to decode: no copy
        for plain in [&b"50% off, R&D, a+b, 100%, &#;, &#xZZ;, %4"[..], b"", b"&", b"%"] {
            assert!(decoded_escapes(plain).is_none(), "{}", String::from_utf8_lossy(plain));
        }
        // a character reference out of Unicode, or NUL, stays as written
        assert!(decoded_escapes(b"&#1114112; &#0;").is_none());
    }

    #[test]
    fn backslash_escapes_and_full_width_forms_decoded_with_their_places() {
        for (text, want) in [
            (
                r#"msg="{\"email\":\"jo\u0040example.com\"}""#,
                r#"msg="{"email":"jo@example.com"}""#,
            ),
            (r"to=jo\x40example.com\n", "to=jo@example.com\n"),
            (r"\u{40} \U00000040 \ud83d\ude00 \u00adx", "@ @ \u{1f600} x"),
            ("ｊｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jo@example.com"),
            ("４０００\u{3000}０５６６ の", "4000 0566 の"),
            // an escaped backslash is one: the escape after it is the next level's
            (r"jo\\u0040x.org \u0040", r"jo\u0040x.org @"),
            // bytes escaped make UTF-8 characters; a surrogate alone, or a byte that begins
            // none, is U+FFFD; NUL is NUL: each no letter to glue to what follows
            (
                r"\xc3\xa9 \xe2\x82\xac \xff4111 \xe2\x82 \ud800x \udc00 \u0000",
                "é € \u{fffd}4111 \u{fffd}\u{fffd} \u{fffd}x \u{fffd} \0",
            ),
            (r"\U00110000 \U0000D800 \f\b", "\u{fffd} \u{fffd} \x0c\x08"),
            // URL escapes alike
            ("a=%C3%A9+%FF4111&b=%E2%82", "a=é+\u{fffd}4111&b=\u{fffd}\u{fffd}"),
        ] {
            let Some(m) = escape_passes(text.as_bytes()).into_iter().next() else {
                panic!("{text}: not seen");
            };
            assert_eq!(String::from_utf8_lossy(&m.text), want, "{text}");
            assert_eq!(m.original(m.text.len()), text.len());
        }
        let Some(m) = decoded_escapes(br"jo\\u0040x.org") else {
            panic!("not seen");
        };
        assert_eq!(m.text, b"jo@x.org");
        // a decoded character maps to all of its escape
        let text = r"x jo\u0040example.com ４１";
        let Some(m) = decoded_escapes(text.as_bytes()) else {
            panic!("not seen");
        };
        let decoded = String::from_utf8_lossy(&m.text).into_owned();
        assert_eq!(decoded, "x jo@example.com 41");
        let at = |s: &str| decoded.find(s).unwrap_or(usize::MAX);
        assert_eq!(&text[m.original(at("@"))..m.original(at("@") + 1)], r"\u0040");
        assert_eq!(&text[m.original(at("41"))..m.original(at("41") + 2)], "４１");
        // nothing that is no escape of a code: no pass (the escapes of one character open
        // none), beyond Unicode, too few digits; other CJK characters
        for plain in [r"C:\Users\new\x", r"\x4 \uZZZZ \u{} \u{1234567} \u{110000}", "の東京 ｱ"] {
            assert!(escape_passes(plain.as_bytes()).is_empty(), "{plain}");
        }
    }

    #[test]
    fn no_break_spaces_become_spaces_with_their_places() {
        let text = "Tél\u{a0}: 01\u{a0}42\u{202f}68 — 53".as_bytes();
        let Some(m) = ascii_separators(text) else {
            panic!("no-break spaces were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "Tél : 01 42 68 — 53");
        let at = |s: &str| String::from_utf8_lossy(&m.text).find(s).unwrap_or(usize::MAX);
        // `01 42 68` maps to `01\u{a0}42\u{202f}68`, whole
        let (s, e) = (at("01"), at("68") + 2);
        assert_eq!(&text[m.original(s)..m.original(e)], "01\u{a0}42\u{202f}68".as_bytes());
        assert_eq!(m.original(m.text.len()), text.len());
        assert!(ascii_separators("naïve — café 01 42".as_bytes()).is_none());
        assert!(ascii_separators(b"").is_none());
        // thousands stay as they are written: no phone, no card in an amount
        for amount in [
            "Total 12\u{202f}345\u{202f}678\u{202f}901 €",
            "SIREN 362\u{a0}521\u{a0}879",
            "1\u{a0}000",
        ] {
            assert!(ascii_separators(amount.as_bytes()).is_none(), "{amount}");
        }
        // nor a number starting with 0, or glued to a letter
        for (text, want) in [
            ("Tel 030\u{a0}123\u{a0}456", "Tel 030 123 456"),
            ("3M02\u{a0}606", "3M02 606"),
        ] {
            let Some(m) = ascii_separators(text.as_bytes()) else {
                panic!("{text}: not seen");
            };
            assert_eq!(String::from_utf8_lossy(&m.text), want);
        }
        // a country code is no thousands
        let Some(m) = ascii_separators("+1\u{a0}212-555-0123".as_bytes()) else {
            panic!("the phone's space was not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "+1 212-555-0123");
        // dashes between digits, thin spaces; not a dash standing apart
        let Some(m) = ascii_separators(
            "212\u{2011}555\u{2010}0123 \u{2009}+1\u{2009}212 a \u{2011} 5 1990\u{2013}1995".as_bytes(),
        ) else {
            panic!("the dashes were not seen");
        };
        assert_eq!(
            String::from_utf8_lossy(&m.text),
            "212-555-0123  +1 212 a \u{2011} 5 1990\u{2013}1995"
        );
        // invisible characters between digits dropped, their places kept
        let text = "4532\u{ad}0151\u{200b}1283\u{feff}0366 a\u{ad}b".as_bytes();
        let Some(m) = ascii_separators(text) else {
            panic!("the soft hyphens were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "4532015112830366 a\u{ad}b");
        assert_eq!(
            &text[m.original(0)..m.original(16)],
            "4532\u{ad}0151\u{200b}1283\u{feff}0366".as_bytes()
        );
        // a run of them, or one beside a separator, inside a number; not between words
        let text = "4532\u{ad}\u{200b}0151 536-\u{ad}22 a\u{ad} -\u{ad} x";
        let Some(m) = ascii_separators(text.as_bytes()) else {
            panic!("the runs were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "45320151 536-22 a\u{ad} -\u{ad} x");
        // between two groups of a number whose groups are separated, their separator; beside
        // a dash beyond ASCII, nothing (and the dash is then read)
        for (text, want) in [
            ("card 4532 0151 1283\u{200b}0366", "card 4532 0151 1283 0366"),
            ("4532-0151-1283\u{ad}0366", "4532-0151-1283-0366"),
            ("536\u{2011}\u{200b}22\u{2011}1234", "536-22-1234"),
            ("536\u{200b}\u{2011}22\u{2011}1234", "536-22-1234"),
            ("4532\u{200b}0151 1283 0366", "4532 0151 1283 0366"),
            // groups joined by invisible characters alone are written joined, whatever follows
            ("4532\u{200b}0151\u{200b}1283\u{200b}0366 12", "4532015112830366 12"),
            ("4532\u{200b}015112830366 3", "4532015112830366 3"),
            ("536\u{ad}22\u{ad}1234 5", "536221234 5"),
        ] {
            let Some(m) = ascii_separators(text.as_bytes()) else {
                panic!("{text}: not seen");
            };
            assert_eq!(String::from_utf8_lossy(&m.text), want);
            assert_eq!(m.original(m.text.len()), text.len());
        }
        let mixed = "12\u{a0}345 € ou 06\u{a0}12\u{a0}34\u{a0}56\u{a0}78";
        let Some(m) = ascii_separators(mixed.as_bytes()) else {
            panic!("the phone's spaces were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "12\u{a0}345 € ou 06 12 34 56 78");
    }

    /// An en dash joins a number's groups when three or more groups stand in its run (with
    /// other dashes too); two groups are a range and stay as they are written.
    #[test]
    fn en_dashes_join_three_groups_or_more() {
        let rewritten = |t: &str| ascii_separators(t.as_bytes()).map(|m| String::from_utf8_lossy(&m.text).into_owned());
        assert_eq!(
            rewritten("call 555\u{2013}123\u{2013}4567").as_deref(),
            Some("call 555-123-4567")
        );
        assert_eq!(rewritten("SSN 536-22\u{2013}1234").as_deref(), Some("SSN 536-22-1234"));
        assert_eq!(rewritten("555\u{2011}123\u{2013}4567").as_deref(), Some("555-123-4567"));
        assert_eq!(
            rewritten("5\u{2013}1\u{2013}2 and 1990\u{2013}1995").as_deref(),
            Some("5-1-2 and 1990\u{2013}1995")
        );
        for range in [
            "1990\u{2013}1995",
            "pages 12\u{2013}15, 20\u{2013}31",
            "12\u{2013} 15",
            "a\u{2013}1\u{2013}2",
        ] {
            assert_eq!(rewritten(range), None, "{range}");
        }
        // every place maps back whole
        let text = "x 555\u{2013}123\u{2013}4567 y".as_bytes();
        let Some(m) = ascii_separators(text) else {
            panic!("the en dashes were not seen");
        };
        assert_eq!(
            &text[m.original(2)..m.original(14)],
            "555\u{2013}123\u{2013}4567".as_bytes()
        );
        // a long run is read once, whatever its length (read once a character, these took
        // minutes)
        let long = "1\u{2013}".repeat(100_000) + "1";
        assert_eq!(rewritten(&long).map(|t| t.len()), Some(200_001));
        let hidden = "4".to_owned() + &"\u{ad}".repeat(300_000);
        assert_eq!(rewritten(&hidden), None);
        assert_eq!(rewritten(&(hidden + "5")).as_deref(), Some("45"));
    }
}
