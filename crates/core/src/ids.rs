//! Identifiers parsed at the edge, so the core never handles an unchecked string.

use crate::{Timestamp, VaultError};

/// A data subject's identifier, chosen by the business (e.g. its customer number).
/// 1-128 characters of `A-Z a-z 0-9 _ . : -`: no `@`, so an email cannot be used as one
/// and end up in plaintext in the database. Not dots alone: `.` and `..` are path segments
/// every HTTP client collapses, so the routes of such a subject could never be reached (its
/// erasure went to another route).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectId(String);

impl SubjectId {
    pub fn parse(s: &str) -> Result<Self, VaultError> {
        if s.bytes().any(|b| b != b'.') {
            Self::stored(s)
        } else {
            Err(invalid_subject_id())
        }
    }

    /// An id read back from the store, as earlier versions accepted it (dots alone too): a
    /// subject written before is swept, searched and erased like any other, never refused as
    /// input would be (one such id stopped the sweeper for every subject; review).
    pub(crate) fn stored(s: &str) -> Result<Self, VaultError> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid_subject_id())
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text` names subject `id`, however written: its letters and digits as one or more
/// words in a row (`ref:cust_zq8`, `CUST ZQ8`, `custzq8`), spelled out or percent-escaped
/// (`c-u-s-t-z-q-8`, `cust%5Fzq8`) once the id has five or more of them (a shorter one only
/// as words, or `s1` would be found in every `ops1`). A text kept in the clear beside an
/// entry naming its subject by keyed digest must not name it.
#[must_use]
pub fn names_subject(text: &str, id: &str) -> bool {
    let runs = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let parts = runs(id);
    let whole: String = parts.concat();
    if whole.is_empty() {
        return false;
    }
    let text = percent_decoded(text);
    if whole.len() >= 5 {
        let folded: String = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        return folded.contains(&whole);
    }
    let words = runs(&text);
    (1..=parts.len()).any(|k| words.windows(k).any(|w| w.concat() == whole))
}

/// `text` with each `%XX` escape of an ASCII character decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(u8::is_ascii);
        match escaped {
            Some(c) => {
                out.push(char::from(c));
                i += 3;
            }
            None => {
                // (a char boundary: `b` starts one, `%` escapes aside)
                let c = text
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                out.push(c);
                i += c.len_utf8().max(1);
            }
        }
    }
    out
}

fn invalid_subject_id() -> VaultError {
    VaultError::bad_request(
        "invalid_subject_id",
        "subject_id must be 1-128 characters of A-Z, a-z, 0-9, _ . : -, not dots alone (an opaque id, not personal data such as an email)",
    )
}

/// A record identifier: `rec_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

impl RecordId {
    /// A new id: the millisecond it was made (12 hex digits) and 80 random bits (20 hex
    /// digits).
    ///
    /// Why not all random: every table and index keyed by record id (the records, their
    /// fields, their bindings, the blind index's back references) then takes each new record
    /// on a random leaf page, so each create dirtied a page per index anywhere in files of
    /// gigabytes, and the write-ahead log carried whole pages for each. Ids that grow with
    /// time put new records side by side at the right edge of those indexes. Milliseconds,
    /// not seconds: the records of one second (thousands under load) took their places at
    /// random among the pages that second filled, so each commit still dirtied a page per
    /// record in every such index; within a millisecond they are a handful.
    /// An id thus tells when its record was created, to the millisecond; the record's own
    /// `created_at` says as much to anyone who may read it. 80 random bits keep ids
    /// unguessable and unique (a collision is refused by the primary key, never overwritten).
    pub(crate) fn generate(now: Timestamp) -> Result<Self, VaultError> {
        // 12 hex digits of milliseconds run to the year 10889; a time before 1970 is 0
        let millis = u64::try_from(now.0).unwrap_or(0).min((1 << 48) - 1);
        Ok(Self(format!(
            "rec_{millis:012x}{}",
            custodia_crypto::random_hex::<10>()?
        )))
    }

    /// When the record was created, in milliseconds, as its id tells (see [`Self::generate`]).
    pub(crate) fn created_millis(&self) -> i64 {
        self.0
            .get(4..16)
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .unwrap_or(0)
    }

    /// Parses a record id; one that cannot exist is reported as not found.
    pub fn parse(s: &str) -> Result<Self, VaultError> {
        let ok = s.len() == 36
            && s.starts_with("rec_")
            && s.bytes()
                .skip(4)
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(VaultError::not_found(
                "record_not_found",
                "no such record (record ids look like rec_ and 32 hex digits)",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A justification naming the call's subject is found however the id is written.
    #[test]
    fn a_subject_id_is_found_in_other_words() {
        for text in [
            "ref:cust_zq8",
            "about cust_zq8.",
            "ticket-cust_zq8",
            "cust-zq8 called",
            "CUST ZQ8",
            "custzq8",
            "(cust_zq8)",
            "c-u-s-t-z-q-8",
            "c u s t zq8",
            "cu st_zq8",
            "cust%5Fzq8",
        ] {
            assert!(names_subject(text, "cust_zq8"), "{text}");
        }
        for text in ["ticket INC-2041", "cust_zq", "zq8 cust", "%", "%5", "é%41"] {
            assert!(!names_subject(text, "cust_zq8"), "{text}");
        }
        assert!(!names_subject("anything", ":::"));
        assert!(names_subject("call s1 back", "s1"));
        assert!(!names_subject("INC s10 ops1", "s1"));
    }

    #[test]
    fn subject_ids() {
        assert!(SubjectId::parse("cust_42").is_ok());
        assert!(SubjectId::parse("a.b:c-d").is_ok());
        assert!(SubjectId::parse(".x").is_ok());
        assert!(SubjectId::parse("..-").is_ok());
        for bad in [
            "",
            "alice@example.com",
            "a b",
            "x/y",
            "é",
            &"x".repeat(129),
            ".",
            "..",
            "...",
        ] {
            assert!(SubjectId::parse(bad).is_err(), "{bad}");
        }
        // what earlier versions stored is read back
        assert!(SubjectId::stored("..").is_ok());
        assert!(SubjectId::stored("x/y").is_err());
    }

    #[test]
    fn record_ids() {
        let id = RecordId::generate(Timestamp(1_764_758_400_123)).unwrap();
        assert_eq!(RecordId::parse(id.as_str()).unwrap(), id);
        // The millisecond, then randomness: ids of later milliseconds sort after, two of one differ.
        // 1_764_758_400_123 ms = 0x019ae3cc2c7b
        assert!(id.as_str().starts_with("rec_019ae3cc2c7b"), "{}", id.as_str());
        let same = RecordId::generate(Timestamp(1_764_758_400_123)).unwrap();
        assert_ne!(id, same);
        assert!(RecordId::generate(Timestamp(1_764_758_400_124)).unwrap().as_str() > same.as_str());
        assert!(RecordId::generate(Timestamp(1_764_758_401_000)).unwrap().as_str() > same.as_str());
        // out of range times still make well-formed ids
        for t in [i64::MIN, -1, i64::MAX] {
            let id = RecordId::generate(Timestamp(t)).unwrap();
            assert_eq!(RecordId::parse(id.as_str()).unwrap(), id);
        }
        for bad in [
            "",
            "rec_",
            "rec_XYZ",
            "../etc/passwd",
            "rec_0123456789abcdef0123456789ABCDEF",
        ] {
            assert!(RecordId::parse(bad).is_err(), "{bad}");
        }
    }
}
