//! Email addresses, their local parts in any script (RFC 6531: `jürgen@bücher.de`,
//! `山田@example.jp`). A byte pattern cannot tell a letter from `«` or `、`, so the pattern
//! takes every non-ASCII byte into the local part and the code then starts the address after
//! the last character that is neither a letter or digit nor an ASCII character RFC 5322
//! allows there. Without that, `jürgen@bücher.de` was found as `rgen@bücher.de`, and
//! redaction left `jü` in clear.

use std::sync::Arc;

use memchr::memchr;

use super::{Hit, Meta, Recognizer, Tier, next_char, words};
use crate::error::{Error, Result};
use crate::finding::{Evidence, EvidenceKind};
use crate::re::Re;

/// RFC 5322's local part bar `|` (legal, unseen in addresses, and the delimiter of tables
/// written as text: `Jo|0361 8225|jo@example.com` is one address, not three cells), and any
/// non-ASCII byte; a domain's labels in UTF-8 too (IDNA's Unicode form).
const EMAIL: &str = r"[A-Za-z0-9!#$%&'*+/=?^_`{}~\x80-\xFF-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{}~\x80-\xFF-]+)*@(?:[A-Za-z0-9\x80-\xFF](?:[A-Za-z0-9\x80-\xFF-]{0,61}[A-Za-z0-9\x80-\xFF])?\.)+(?:xn--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})\b";

pub(crate) struct EmailRecognizer {
    meta: Meta,
    re: Re,
    pattern: Arc<str>,
}

impl EmailRecognizer {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            // `@` is rare: the literal prefilter pays
            re: Re::new(EMAIL, true).map_err(|message| Error::Pattern {
                entity: "EMAIL_ADDRESS".into(),
                message,
            })?,
            pattern: Arc::from("email"),
            meta: Meta::new(
                "EMAIL_ADDRESS",
                Tier::Identifier,
                words(&["email", "mail", "e-mail", "contact", "address"]),
            ),
        })
    }
}

impl Recognizer for EmailRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut pos = 0;
        while let Some((s, e)) = self.re.find_at(hay, pos) {
            pos = e.max(next_char(hay, s));
            // the local part holds no `@`: the first is the one before the domain
            let Some(at) = memchr(b'@', &hay[s..e]).map(|i| s + i) else {
                continue;
            };
            let start = local_part_start(hay, s, at);
            if start < at {
                out.push(Hit::new(
                    start,
                    e,
                    0.9,
                    vec![Evidence::new(EvidenceKind::Pattern, self.pattern.clone())],
                ));
            }
        }
    }
}

/// Where the local part in `hay[s..at]` (`at`: the `@`) starts: after the last character
/// that is neither a letter or digit of any script nor ASCII (the pattern let in only the
/// ASCII characters RFC 5322 allows), and after any dots that then lead it.
fn local_part_start(hay: &[u8], s: usize, at: usize) -> usize {
    let mut start = s;
    let mut offset = s;
    for chunk in hay[s..at].utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            if !(c.is_ascii() || c.is_alphanumeric()) {
                start = offset + i + c.len_utf8();
            }
        }
        offset += chunk.valid().len() + chunk.invalid().len();
        if !chunk.invalid().is_empty() {
            start = offset;
        }
    }
    while start < at && hay[start] == b'.' {
        start += 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let Ok(r) = EmailRecognizer::new() else {
            return vec!["no recognizer"];
        };
        r.find(text.as_bytes(), &mut out);
        out.iter()
            .map(|h| text.get(h.start..h.end).unwrap_or("not on a boundary"))
            .collect()
    }

    #[test]
    fn local_parts_in_any_script() {
        assert_eq!(emails("Kontakt: jürgen@bücher.de"), ["jürgen@bücher.de"]);
        assert_eq!(emails("josé.garcía@correo.es"), ["josé.garcía@correo.es"]);
        assert_eq!(emails("mail 山田@example.jp ok"), ["山田@example.jp"]);
        assert_eq!(emails("Ωμέγα@παράδειγμα.gr"), ["Ωμέγα@παράδειγμα.gr"]);
    }

    #[test]
    fn punctuation_of_any_script_is_no_local_part() {
        assert_eq!(emails("«anna@example.com»"), ["anna@example.com"]);
        assert_eq!(emails("联系、山田@example.jp"), ["山田@example.jp"]);
        assert_eq!(emails("“jo@example.com”"), ["jo@example.com"]);
        assert_eq!(emails("€5@example.com"), ["5@example.com"]);
        // a dot does not lead a local part, and nothing but punctuation is none
        assert_eq!(emails("«.jo@example.com"), ["jo@example.com"]);
        assert_eq!(emails("«@example.com"), Vec::<&str>::new());
    }

    #[test]
    fn bytes_that_are_not_utf8_end_the_local_part() {
        let text = b"x\xffjo@example.com \xc3jo@example.com";
        let mut out = Vec::new();
        if let Ok(r) = EmailRecognizer::new() {
            r.find(text, &mut out);
        }
        let found: Vec<&[u8]> = out.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(found, [&b"jo@example.com"[..], b"jo@example.com"]);
    }

    #[test]
    fn ascii_addresses_as_before() {
        assert_eq!(emails("Jo|0361 8225|jo@example.com"), ["jo@example.com"]);
        assert_eq!(
            emails("a.b+tag@sub.example.co.uk, x@y.museum"),
            ["a.b+tag@sub.example.co.uk", "x@y.museum"]
        );
        assert_eq!(emails("no address @ here, nor a@b"), Vec::<&str>::new());
    }
}
