//! Entry links: each audit entry's place in the log, sealed with a key only the vault holds,
//! stored beside the entry (not in its text) by the store as it appends it.
//!
//! ```text
//! link(0) = 32 zero bytes                          before the first linked entry
//! link(n) = HMAC-SHA256(key, link(n-1) || leaf(n))  leaf(n): the entry's RFC 6962 leaf hash
//! ```
//!
//! An entry's tag (`tag.rs`) says the vault wrote its text; its link says the vault appended
//! it right after the entry before it. Someone with the database alone can copy an entry the
//! vault wrote, tag and all, to the log's end, but not make its link there: the copy's link is
//! its original's, made after another entry. An entry without a link (written before links
//! existed) counts as linking [`START`]. The links are checked only where the key is held (the
//! server, before it signs a checkpoint): a signed checkpoint then vouches for the entries and
//! their order, and the links are not needed any more.

use aws_lc_rs::hmac;

/// An entry's link.
pub type Link = [u8; 32];

/// The link before the first linked entry, and what an unlinked entry counts as.
pub const START: Link = [0; 32];

/// The key entries are linked with. Never printed.
pub struct ChainKey(hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// The chain key of 32 secret bytes.
    #[must_use]
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The link of the entry of leaf hash `leaf` appended after the entry linked `previous`.
    #[must_use]
    pub fn link(&self, previous: &Link, leaf: &[u8]) -> Link {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(previous);
        ctx.update(leaf);
        let mut out = START;
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Whether `stored` is the link of the entry of leaf hash `leaf` appended after the entry
    /// linked `previous` (compared in constant time).
    #[must_use]
    pub fn check(&self, previous: &Link, leaf: &[u8], stored: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.link(previous, leaf), stored).is_ok()
    }
}

/// The link a stored one is: none for no link (NULL, written before links existed), a value
/// that is not 32 bytes, or [`START`] itself (which no HMAC makes). The entry after such an
/// entry follows [`START`]; the verifier refuses an unlinked entry after a linked one.
#[must_use]
pub fn stored_link(stored: Option<&[u8]>) -> Option<Link> {
    stored
        .and_then(|bytes| Link::try_from(bytes).ok())
        .filter(|link| *link != START)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the known-answer vectors: bytes 0 to 31.
    const KEY: [u8; 32] = crate::tests::COUNTING_KEY;

    /// Recomputed with Python:
    /// `hmac.new(bytes(range(32)), bytes(32) + bytes([0xab]) * 32, hashlib.sha256).hexdigest()`,
    /// then that digest as `previous` for the leaf `bytes([0xcd]) * 32`.
    #[test]
    fn known_answer() {
        let key = ChainKey::new(&KEY);
        let first = key.link(&START, &[0xab; 32]);
        assert_eq!(hex::encode(first), FIRST);
        let second = key.link(&first, &[0xcd; 32]);
        assert_eq!(hex::encode(second), SECOND);
        assert!(key.check(&START, &[0xab; 32], &first));
        assert!(key.check(&first, &[0xcd; 32], &second));
    }

    const FIRST: &str = "ad7c7c0f2f869ac775a32accb0832d69ca557699bbbd4ed6df2479ed9c6ee179";
    const SECOND: &str = "d6bdd0fbdd0c8874a252aa93dd0a618a616fe7b18056fd02ea534da07cc95d60";

    #[test]
    fn a_link_holds_only_in_its_place() {
        let key = ChainKey::new(&KEY);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let la = key.link(&START, &a);
        let lb = key.link(&la, &b);
        // the same entry copied to the end: its link is made after another entry
        assert!(!key.check(&lb, &a, &la));
        // swapped entries
        assert!(!key.check(&START, &b, &lb));
        // every bit of the link, the previous link and the leaf matters
        for i in 0..32 {
            for bit in 0..8 {
                let flip = |v: &[u8; 32]| {
                    let mut v = *v;
                    v[i] ^= 1 << bit;
                    v
                };
                assert!(!key.check(&la, &b, &flip(&lb)));
                assert!(!key.check(&flip(&la), &b, &lb));
                assert!(!key.check(&la, &flip(&b), &lb));
            }
        }
        assert!(!ChainKey::new(&[7; 32]).check(&la, &b, &lb));
        assert!(!key.check(&la, &b, &lb[..31]));
    }

    #[test]
    fn stored_links() {
        assert_eq!(stored_link(None), None);
        assert_eq!(stored_link(Some(&[9; 32])), Some([9; 32]));
        assert_eq!(stored_link(Some(&START)), None);
        assert_eq!(stored_link(Some(&[9; 31])), None);
        assert_eq!(stored_link(Some(&[9; 33])), None);
        assert_eq!(stored_link(Some(&[])), None);
    }
}
