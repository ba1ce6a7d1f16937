//! Entry tags: an HMAC-SHA256 of an audit entry under a key only the vault holds, written
//! into the entry as its last member, so that a row inserted into the database by someone
//! without the vault's keys is told from one the vault wrote before any checkpoint signs it.
//!
//! ```text
//! entry   {"v":1,"at":5,...,"fields":[]}
//! tagged  {"v":1,"at":5,...,"fields":[],"tag":"<64 lowercase hex>"}
//!                                        ^ HMAC-SHA256(key, entry), the untagged text
//! ```
//!
//! The tag is part of the entry's text, so the leaf hash covers it and an RFC 6962 verifier
//! needs to know nothing of it. Entries written before tags existed carry none, and are
//! covered by checkpoints signed then: the server signs no entry without a tag of its key,
//! and a verifier without the key refuses an untagged entry after a tagged one.

use aws_lc_rs::hmac;

/// What follows the untagged entry's members: `,"tag":"`, 64 hex digits, `"}`.
const OPEN: &str = ",\"tag\":\"";
const CLOSE: &str = "\"}";
const HEX_LEN: usize = 64;

/// Why an entry's tag is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("the entry is not a JSON object's text")]
    NotAnObject,
    #[error("the entry carries no tag")]
    Missing,
    #[error("the entry's tag was not made with this vault's key")]
    Mismatch,
}

/// The key entries are tagged with. Never printed.
pub struct TagKey(hmac::Key);

impl std::fmt::Debug for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TagKey(..)")
    }
}

impl TagKey {
    /// The tag key of 32 secret bytes.
    #[must_use]
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// `entry` (an object's text, untagged) with its tag as its last member.
    pub fn tag(&self, entry: &str) -> Result<String, TagError> {
        let body = entry.strip_suffix('}').ok_or(TagError::NotAnObject)?;
        if !body.starts_with('{') {
            return Err(TagError::NotAnObject);
        }
        let mac = hmac::sign(&self.0, entry.as_bytes());
        let mut out = String::with_capacity(entry.len() + OPEN.len() + HEX_LEN + CLOSE.len());
        out.push_str(body);
        out.push_str(OPEN);
        for b in mac.as_ref() {
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
        out.push_str(CLOSE);
        Ok(out)
    }

    /// Whether `tagged` carries the tag this key gives its untagged text (compared in
    /// constant time).
    pub fn check(&self, tagged: &str) -> Result<(), TagError> {
        let (head, hex) = split(tagged).ok_or(TagError::Missing)?;
        let mut mac = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let value = |d: u8| char::from(d).to_digit(16).and_then(|v| u8::try_from(v).ok());
            let (Some(hi), Some(lo)) = (value(pair[0]), value(pair[1])) else {
                return Err(TagError::Mismatch);
            };
            mac[i] = hi << 4 | lo;
        }
        // the untagged text is the head and its closing brace, read in place
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(head.as_bytes());
        ctx.update(b"}");
        aws_lc_rs::constant_time::verify_slices_are_equal(ctx.sign().as_ref(), &mac).map_err(|_| TagError::Mismatch)
    }
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(n & 0xf)])
}

/// Whether `entry` ends with a tag (of the right shape; whose, [`TagKey::check`] says).
#[must_use]
pub fn is_tagged(entry: &str) -> bool {
    split(entry).is_some()
}

/// The untagged text of a tagged entry but its closing brace, and its tag's hex digits.
fn split(tagged: &str) -> Option<(&str, &str)> {
    let body = tagged.strip_suffix(CLOSE)?;
    let at = body.len().checked_sub(HEX_LEN)?;
    let (head, hex) = (body.get(..at)?, body.get(at..)?);
    let head = head.strip_suffix(OPEN)?;
    if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) || !head.starts_with('{') {
        return None;
    }
    Some((head, hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the known-answer vectors: bytes 0 to 31.
    const KEY: [u8; 32] = crate::tests::COUNTING_KEY;

    /// Recomputed with Python's `hmac.new(bytes(range(32)), b'{"v":1,"at":5}',
    /// hashlib.sha256).hexdigest()`.
    #[test]
    fn known_answer() {
        let tagged = TagKey::new(&KEY).tag("{\"v\":1,\"at\":5}").unwrap();
        assert_eq!(
            tagged,
            "{\"v\":1,\"at\":5,\"tag\":\"cc8b617cbfed2973895411f8444c66f61a1caef0e10bef3f7f3aafc132864351\"}"
        );
        assert_eq!(TagKey::new(&KEY).check(&tagged), Ok(()));
    }

    #[test]
    fn every_byte_changed_is_refused() {
        let key = TagKey::new(&KEY);
        let tagged = key
            .tag("{\"v\":1,\"at\":5,\"principal\":\"prn_1\",\"fields\":[\"email\"]}")
            .unwrap();
        for i in 0..tagged.len() {
            let mut bytes = tagged.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(key.check(&changed).is_err(), "byte {i} changed: {changed}");
        }
        let other = TagKey::new(&[7; 32]);
        assert_eq!(other.check(&tagged), Err(TagError::Mismatch));
    }

    #[test]
    fn untagged_and_malformed_texts() {
        let key = TagKey::new(&KEY);
        assert_eq!(key.check("{\"v\":1}"), Err(TagError::Missing));
        assert_eq!(key.tag("[1]"), Err(TagError::NotAnObject));
        assert_eq!(key.tag("\"}"), Err(TagError::NotAnObject));
        assert!(!is_tagged("{\"tag\":\"00\"}"));
        assert!(!is_tagged(""));
        // a tag's shape with capitals or a non-hex digit is no tag
        assert!(is_tagged(&key.tag("{\"v\":1}").unwrap()));
        assert!(is_tagged(&format!("{{\"v\":1,\"tag\":\"{}\"}}", "a".repeat(64))));
        assert!(!is_tagged(&format!("{{\"v\":1,\"tag\":\"{}\"}}", "A".repeat(64))));
        assert!(!is_tagged(&format!("{{\"v\":1,\"tag\":\"{}\"}}", "a".repeat(63))));
    }
}
