//! IP addresses (v4, v6 with embedded v4 and zones) and URLs (not the domains of emails).

use std::cell::Cell;
use std::net::Ipv6Addr;

use memchr::{memchr, memchr_iter, memchr2};

use super::{Boundary, Hit, Meta, Recognizer, Tier, bounded, next_char, word_after, word_before, words};
use crate::error::{Error, Result};
use crate::finding::{Evidence, EvidenceKind};
use crate::lexer::is_space;
use crate::re::{Re, Run};

pub(crate) struct IpRecognizer {
    meta: Meta,
    v4: Re,
}

/// The number of parts of the run of digits, each dot between two, starting at `s` (a
/// range `192.168.1.1..192.168.1.254` is two runs).
fn dotted_parts(hay: &[u8], s: usize) -> usize {
    let mut parts = 1;
    let mut i = s;
    while let Some(&b) = hay.get(i) {
        if b == b'.' && hay.get(i + 1).is_some_and(u8::is_ascii_digit) {
            parts += 1;
        } else if !b.is_ascii_digit() {
            break;
        }
        i += 1;
    }
    parts
}

impl IpRecognizer {
    pub(crate) fn new() -> Result<Self> {
        let v4 =
            Re::new(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", false).map_err(|message| Error::Pattern {
                entity: "IP_ADDRESS".into(),
                message,
            })?;
        Ok(Self {
            v4,
            meta: Meta::new(
                "IP_ADDRESS",
                Tier::Identifier,
                words(&[
                    "ip", "ipv4", "ipv6", "address", "host", "server", "client", "from", "login",
                ]),
            )
            // four numbers after `version` or `firmware` are one (`3.19.20.206`)
            .vetoed_by_versions(),
        })
    }
}

fn v4_valid(s: &[u8]) -> bool {
    s.split(|&b| b == b'.')
        .all(|o| !o.is_empty() && o.len() <= 3 && o.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')) <= 255)
}

fn is_v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

impl Recognizer for IpRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    /// (an invisible character written into an address hides nothing: `192.168\u{200b}.1.10`)
    fn reads_separators_in_ascii(&self) -> bool {
        true
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.find_v4(hay, out, |pos| self.v4.find_in_runs(hay, pos, dotted_digits));
        self.find_v6(hay, out);
    }
}

impl IpRecognizer {
    /// IPv4: octets of at most 255; a letter or digit may not touch the address. `search`
    /// gives the leftmost candidate starting at or after a place.
    fn find_v4(&self, hay: &[u8], out: &mut Vec<Hit>, search: impl Fn(usize) -> Option<(usize, usize)>) {
        let mut pos = 0;
        while let Some((s, e)) = search(pos) {
            let before_ok = s == 0 || !(word_before(hay, s) || hay[s - 1] == b'.');
            // nor the first four parts of a run of six or more (an OID, `1.3.6.1.4.1.41248`);
            // `192.168.1.1.1` still holds one, as Presidio reads it
            let after_ok = !word_after(hay, e) && dotted_parts(hay, s) < 6;
            if before_ok && after_ok && v4_valid(&hay[s..e]) {
                out.push(Hit::new(s, e, 0.6, vec![Evidence::new(EvidenceKind::Pattern, "ipv4")]));
                pos = e;
            } else {
                // every later start in this run of digits and dots has a digit or a dot
                // before it: skip the run (`1.1.1.1.1...` was one search per digit)
                pos = next_char(hay, s);
                while pos < hay.len() && (hay[pos].is_ascii_digit() || hay[pos] == b'.') {
                    pos += 1;
                }
            }
        }
    }

    fn find_v6(&self, hay: &[u8], out: &mut Vec<Hit>) {
        // IPv6: grow a run of hex digits, colons and dots around each "::" or ':' and let
        // the standard library's parser decide.
        let mut done_until = 0;
        for colon in memchr_iter(b':', hay) {
            if colon < done_until {
                continue;
            }
            let mut s = colon;
            while s > 0 && is_v6_char(hay[s - 1]) {
                s -= 1;
            }
            let mut e = colon;
            while e < hay.len() && is_v6_char(hay[e]) {
                e += 1;
            }
            done_until = e;
            // try each start within the run whose left neighbour is not a letter, digit or ':'
            let mut start = s;
            while start < colon + 1 {
                let left_ok = start == 0 || !(word_before(hay, start) || hay[start - 1] == b':');
                if left_ok && let Some(end) = v6_at(hay, start, e) {
                    out.push(Hit::new(
                        start,
                        end,
                        0.6,
                        vec![Evidence::new(EvidenceKind::Pattern, "ipv6")],
                    ));
                    break;
                }
                start += 1;
            }
        }
    }
}

/// The first run of digits and dots at or after `pos` that holds a digit, a dot and a digit
/// (an IPv4 match is such a run or lies inside one), from `pos` at the earliest: the v4
/// pattern is searched there only, not through the text between (on text dense with
/// numbers the unanchored search stopped at every number).
fn dotted_digits(hay: &[u8], pos: usize) -> Option<Run> {
    let mut from = pos;
    loop {
        let dot = from + memchr(b'.', hay.get(from..)?)?;
        let digit_at = |i: usize| hay.get(i).is_some_and(u8::is_ascii_digit);
        if dot > pos && digit_at(dot - 1) && digit_at(dot + 1) {
            let numeric = |b: &u8| b.is_ascii_digit() || *b == b'.';
            let start = hay[pos..dot]
                .iter()
                .rposition(|b| !numeric(b))
                .map_or(pos, |i| pos + i + 1);
            let end = hay[dot..]
                .iter()
                .position(|b| !numeric(b))
                .map_or(hay.len(), |i| dot + i);
            return Some(Run::whole(start, end));
        }
        from = dot + 1;
    }
}

/// The end of an IPv6 address starting at `s` within the run ending at `run_end`.
fn v6_at(hay: &[u8], s: usize, run_end: usize) -> Option<usize> {
    let mut e = run_end;
    // trailing sentence dots and a single trailing colon are not part of the address
    while e > s && hay[e - 1] == b'.' {
        e -= 1;
    }
    if e > s + 1 && hay[e - 1] == b':' && hay[e - 2] != b':' {
        e -= 1;
    }
    let text = std::str::from_utf8(&hay[s..e]).ok()?;
    if text.matches(':').count() < 2 || text.parse::<Ipv6Addr>().is_err() {
        return None;
    }
    // a zone index (fe80::1%eth0) belongs to the address
    let mut end = e;
    if hay.get(end) == Some(&b'%') {
        let mut z = end + 1;
        while z < hay.len() && hay[z].is_ascii_alphanumeric() {
            z += 1;
        }
        if z > end + 1 {
            end = z;
        }
    }
    (!word_after(hay, end)).then_some(end)
}

/// Whether `tld` is in `list`, without case.
fn listed(list: &[&str], tld: &[u8]) -> bool {
    list.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(tld))
}

/// Whether a bare domain may end in `tld`: a generic top-level domain, or a two-letter
/// country code that is no common file extension (`config.py`, `notes.md`).
pub(crate) fn known_tld(tld: &[u8]) -> bool {
    listed(GENERIC_TLDS, tld) || (tld.len() == 2 && !listed(FILE_EXTENSIONS, tld))
}

/// The two-letter country-code top-level domains: ISO 3166-1 alpha-2 codes and `ac`, `eu`,
/// `uk` (`self.df`, `obj.xy` are code).
const COUNTRY_CODES: &str = "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn \
    bo bq br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec \
    ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn \
    hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls \
    lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no \
    np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk \
    sl sm sn so sr ss st sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk um us uy uz va \
    vc ve vg vi vn vu wf ws ye yt za zm zw";

/// Whether `tld` is one of [`COUNTRY_CODES`], without case.
pub(crate) fn country_code(tld: &[u8]) -> bool {
    tld.len() == 2
        && COUNTRY_CODES
            .split_ascii_whitespace()
            .any(|c| c.as_bytes().eq_ignore_ascii_case(tld))
}

/// Top-level domains accepted for bare domains (`microsoft.com`): generic ones and all
/// two-letter country codes except those that are also common file extensions.
const GENERIC_TLDS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "io", "app", "dev", "site", "online", "store",
    "shop", "tech", "cloud", "ai", "co", "me", "tv", "xyz", "club", "blog", "news", "email", "live", "pro", "name",
    "mobi", "asia", "jobs", "travel", "museum", "aero", "coop", "webcam", "page", "link", "website", "space",
];
const FILE_EXTENSIONS: &[&str] = &[
    "py", "rs", "md", "sh", "js", "ts", "go", "pl", "cc", "cs", "so", "gz", "db", "hs", "ml",
];

const MAX_URL: usize = 2048;

/// Longer than the shortest match any URL starts with: a label of 63 characters, a dot and
/// a letter (`https://x` and `www.x` are shorter).
const URL_PREFIX: usize = 128;

trait CharBoundary {
    fn is_char_boundary_at(&self, i: usize) -> bool;
}

impl CharBoundary for [u8] {
    fn is_char_boundary_at(&self, i: usize) -> bool {
        i >= self.len() || (self[i] & 0xC0) != 0x80
    }
}

pub(crate) struct UrlRecognizer {
    meta: Meta,
    re: Re,
}

impl UrlRecognizer {
    pub(crate) fn new() -> Result<Self> {
        let label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
        let re = Re::new(
            // a URL holds no quote, backslash or brace (RFC 3986 leaves them out): in a JSON
            // log line read as text, `"u":"https://example.com/a\\"}` ends before `\`
            &format!(
                r#"(?-u)(?i:(?:https?|ftp)://[^\s<>"\\{{}}]+|www\.[^\s<>"\\{{}}]+|{label}(?:\.{label})+(?:[/?#][^\s<>"\\{{}}]*)?)"#
            ),
            false,
        )
        .map_err(|message| Error::Pattern {
            entity: "URL".into(),
            message,
        })?;
        Ok(Self {
            re,
            meta: Meta::new(
                "URL",
                Tier::Identifier,
                words(&["url", "website", "link", "web", "site", "visit"]),
            ),
        })
    }
}

/// The first run without whitespace at or after `pos` that holds a URL's anchor, from `pos`
/// at the earliest. Every URL [`UrlRecognizer::find_with`] reports holds one (`://`, or a
/// dot between a label's letter or digit and a letter: its top-level domain is letters)
/// and no ASCII whitespace (the pattern's `\s`), so it lies in such a run: the pattern is
/// searched there only, not through the text between. Runs of numbers (`132.4.188.13`,
/// `1.5`) hold none: on text dense with them, their searches were a twentieth of a scan.
///
/// `known` is the last run found: a run holding many anchors (`x.y@x.y@...`,
/// `jo@example.com,jo@...`) is asked for once per candidate, and reading to its end each time
/// made a long one quadratic (800 KB without whitespace took 28 s).
///
/// The search reads the run to [`MAX_URL`] bytes past the anchor and [`URL_PREFIX`] more, so
/// that each candidate of a run of megabytes (one JSON string of `www.` repeated) costs a few
/// KiB, not the rest of the run. The leftmost match is the same as in the whole run: a match
/// starting earlier has a prefix that is a match (`a.b`, `www.x`, `ftp://x`) within
/// `URL_PREFIX` bytes, so when the stretch holds no match the search goes on that far before
/// its end. A match may end at the cut: [`UrlRecognizer::find`] reads it again from its start.
fn anchored_run(hay: &[u8], pos: usize, known: &Cell<KnownRun>) -> Option<Run> {
    let mut from = pos;
    loop {
        let at = from + memchr2(b'.', b':', hay.get(from..)?)?;
        let anchor = if hay[at] == b'.' {
            at > pos && hay[at - 1].is_ascii_alphanumeric() && hay.get(at + 1).is_some_and(u8::is_ascii_alphabetic)
        } else {
            hay.get(at + 1..at + 3) == Some(b"//")
        };
        if anchor {
            let start = hay[pos..at]
                .iter()
                .rposition(|&b| is_space(b))
                .map_or(pos, |i| pos + i + 1);
            let mut run = known.get();
            if !(run.start <= at && at < run.end) {
                run.start = at;
                run.end = hay[at..]
                    .iter()
                    .position(|&b| is_space(b))
                    .map_or(hay.len(), |i| at + i);
            }
            run.cut = (at + MAX_URL + URL_PREFIX).min(run.end);
            known.set(run);
            return Some(Run {
                start,
                end: run.cut,
                resume: if run.cut < run.end {
                    run.cut - URL_PREFIX
                } else {
                    run.end
                },
            });
        }
        from = at + 1;
    }
}

/// The run without whitespace [`anchored_run`] found last (from its first anchor), and where
/// the stretch of it searched last was cut.
#[derive(Debug, Clone, Copy, Default)]
struct KnownRun {
    start: usize,
    end: usize,
    cut: usize,
}

fn host_of(url: &[u8]) -> (&[u8], bool) {
    let (rest, scheme) = match url.windows(3).position(|w| w == b"://") {
        Some(i) => (&url[i + 3..], true),
        None => (url, false),
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#' | b':'))
        .unwrap_or(rest.len());
    (&rest[..end], scheme)
}

impl Recognizer for UrlRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let known = Cell::new(KnownRun::default());
        self.find_with(hay, out, |pos| {
            let (s, e) = self
                .re
                .find_in_runs(hay, pos, |hay, pos| anchored_run(hay, pos, &known))?;
            let run = known.get();
            if run.cut < run.end && e + URL_PREFIX > run.cut {
                // the match may go on past the cut: read it from its start, as far as is
                // reported of it
                let end = run.end.min(s + MAX_URL + URL_PREFIX);
                return Some((s, self.re.end_of_match_at(hay, s, end).unwrap_or(e)));
            }
            Some((s, e))
        });
    }
}

impl UrlRecognizer {
    /// The URLs of `hay`; `search` gives the leftmost candidate starting at or after a place.
    fn find_with(&self, hay: &[u8], out: &mut Vec<Hit>, search: impl Fn(usize) -> Option<(usize, usize)>) {
        let mut pos = 0;
        while let Some((s, mut e)) = search(pos) {
            // a "URL" of megabytes is a blob, not an address: report its first 2 KiB at most
            // (and keep the overlap resolution of what it contains linear)
            e = e.min(s + MAX_URL);
            while !hay.is_char_boundary_at(e) {
                e -= 1;
            }
            // closing punctuation and quotes around a URL are not part of it
            while e > s
                && matches!(
                    hay[e - 1],
                    b'.' | b',' | b';' | b':' | b'!' | b'?' | b'"' | b'\'' | b')' | b']'
                )
            {
                e -= 1;
            }
            pos = e.max(next_char(hay, s));
            if !bounded(hay, s, e, Boundary::Word) {
                continue;
            }
            // the domain of an email address is not a URL (nor of one spelt out:
            // `jo(at)example.com/path`)
            if (s > 0 && matches!(hay[s - 1], b'@' | b'.' | b'-' | b'_'))
                || hay[s..e].contains(&b'@')
                || super::spelled_email::at_word_ending(hay, s)
            {
                continue;
            }
            let (host, scheme) = host_of(&hay[s..e]);
            let Some(tld) = host.rsplit(|&b| b == b'.').next().filter(|_| host.contains(&b'.')) else {
                continue;
            };
            // (compared without case and without a copy: most candidates are no URL)
            let punycode = tld.len() >= 4 && tld[..4].eq_ignore_ascii_case(b"xn--");
            if !tld.iter().all(u8::is_ascii_alphabetic) && !punycode {
                continue;
            }
            let www = host.len() > 4 && host[..4].eq_ignore_ascii_case(b"www.");
            let generic = listed(GENERIC_TLDS, tld);
            let known = known_tld(tld);
            let (score, name) = if scheme {
                if tld.len() < 2 {
                    continue;
                }
                (0.6, "url_with_scheme")
            } else if known && www {
                (0.5, "url_www")
            } else if known {
                (if generic { 0.4 } else { 0.3 }, "domain_name")
            } else {
                continue;
            };
            out.push(Hit::new(s, e, score, vec![Evidence::new(EvidenceKind::Pattern, name)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        if let Ok(r) = IpRecognizer::new() {
            r.find(text.as_bytes(), &mut out);
        }
        out.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ips("from 192.168.0.1."), vec!["192.168.0.1"]);
        assert_eq!(ips("x 300.1.1.1 1.2.3"), Vec::<&str>::new());
        assert_eq!(ips("fe80::1%eth0 up"), vec!["fe80::1%eth0"]);
        assert_eq!(ips("std::cout MyClass::x 12:34:56"), Vec::<&str>::new());
        assert_eq!(ips("[2001:db8::1]:8080"), vec!["2001:db8::1"]);
        assert_eq!(ips("x1.2.3.4 999.1.1.1.5 then 8.8.4.4"), vec!["8.8.4.4"]);
        // a longer dotted run (an OID, a version) holds no address; read once, not from
        // every digit
        assert_eq!(ips("oid 1.3.6.1.4.1.41248 and 10.0.0.1.5"), vec!["10.0.0.1"]);
        // a range's first address (the second has a dot before it, as before)
        assert_eq!(
            ips("range 192.168.1.1..192.168.1.254, 10.0.0.1...10.0.0.9"),
            vec!["192.168.1.1", "10.0.0.1"]
        );
        assert_eq!(ips(&"1.".repeat(50_000)), Vec::<&str>::new());
    }

    fn urls(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        if let Ok(r) = UrlRecognizer::new() {
            r.find(text.as_bytes(), &mut out);
        }
        out.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn urls_but_not_email_domains() {
        assert_eq!(
            urls("see https://a.example.com/x?y=1."),
            vec!["https://a.example.com/x?y=1"]
        );
        assert_eq!(urls("mail bob@example.com"), Vec::<&str>::new());
        // no quote, backslash or brace in a URL: a JSON log line's string ends it
        assert_eq!(
            urls(r#"{"u":"https://example.com/p?q=1\"} {"v":"www.example.org"}"#),
            vec!["https://example.com/p?q=1", "www.example.org"]
        );
        assert_eq!(
            urls("my domains: microsoft.com google.co.il"),
            vec!["microsoft.com", "google.co.il"]
        );
        assert_eq!(urls("www.microsoft and main.rs"), Vec::<&str>::new());
    }

    #[test]
    fn top_level_domains_in_any_case() {
        assert_eq!(urls("Visit WWW.Example.COM today"), vec!["WWW.Example.COM"]);
        assert_eq!(urls("see Shop.Example.De"), vec!["Shop.Example.De"]);
        // a file extension is no country code, whatever its case; a punycode top-level
        // domain counts with a scheme only
        assert_eq!(urls("edit Main.RS and lib.Py"), Vec::<&str>::new());
        assert_eq!(
            urls("go HTTPS://Beispiel.XN--P1AI/a"),
            vec!["HTTPS://Beispiel.XN--P1AI/a"]
        );
        assert_eq!(urls("go beispiel.xn--p1ai"), Vec::<&str>::new());
        assert_eq!(urls("bad https://host.c0m/x"), Vec::<&str>::new());
    }

    fn spans(hits: &[Hit]) -> Vec<(usize, usize, f32)> {
        hits.iter().map(|h| (h.start, h.end, h.score)).collect()
    }

    /// A run longer than a URL is searched a stretch at a time: what it reports is what a
    /// search of the whole text reports, wherever a URL stands against a stretch's end.
    #[test]
    fn long_runs_are_searched_in_stretches() -> Result<()> {
        let url = UrlRecognizer::new()?;
        let mut texts = vec![
            "www.".repeat(3000),
            format!("see https://example.com/{}", "a".repeat(5000)),
            "jo@example.com,".repeat(1000),
        ];
        for gap in (MAX_URL - 8..MAX_URL + URL_PREFIX + 80).step_by(3) {
            // an anchor with no match (`x://`), then a URL at every place around the cut
            texts.push(format!(
                "x://{}{}.example.com/p{}",
                "~".repeat(gap),
                "a".repeat(60),
                "~".repeat(300)
            ));
            texts.push(format!("x://{}ftp://h.example.org/~", "~".repeat(gap)));
        }
        for text in &texts {
            let text = text.as_bytes();
            let (mut whole, mut runs) = (Vec::new(), Vec::new());
            url.find_with(text, &mut whole, |pos| url.re.find_at(text, pos));
            url.find(text, &mut runs);
            assert_eq!(spans(&whole), spans(&runs), "{}", String::from_utf8_lossy(&text[..40]));
        }
        assert!(texts.iter().skip(3).all(|t| {
            let mut hits = Vec::new();
            url.find(t.as_bytes(), &mut hits);
            !hits.is_empty()
        }));
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Searching the pattern only in runs that hold an anchor reports what a search of
        /// the whole text reports.
        #[test]
        fn runs_with_an_anchor_hold_every_match(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    6 => proptest::sample::select(b"0123456789".to_vec()),
                    4 => proptest::sample::select(b"..:/-@".to_vec()),
                    3 => proptest::sample::select(b" \t\n\x0b\x0c\r<>".to_vec()),
                    4 => proptest::sample::select(b"abcowwwhtpsfWXe".to_vec()),
                    1 => proptest::sample::select(vec![0xc3u8, 0xa9, 0x80]),
                ],
                0..80,
            )
        ) {
            let ip = IpRecognizer::new().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let (mut whole, mut runs) = (Vec::new(), Vec::new());
            ip.find_v4(&text, &mut whole, |pos| ip.v4.find_at(&text, pos));
            ip.find(&text, &mut runs);
            ip.find_v6(&text, &mut whole);
            proptest::prop_assert_eq!(spans(&whole), spans(&runs));
            let url = UrlRecognizer::new().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let (mut whole, mut runs) = (Vec::new(), Vec::new());
            url.find_with(&text, &mut whole, |pos| url.re.find_at(&text, pos));
            url.find(&text, &mut runs);
            proptest::prop_assert_eq!(spans(&whole), spans(&runs));
        }
    }
}
