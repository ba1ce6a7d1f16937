//! Keyed blind indexes for equality search over encrypted fields.
//!
//! `index = HMAC-SHA256(HKDF-SHA256(index key, "collection\0field"), normalized value)`,
//! truncated to 16 bytes. The per-field key means equal values in two fields do not share an
//! index, and the index key is separate from every data key, so erasing a subject does not
//! need to touch it.

use std::collections::HashMap;
use std::sync::RwLock;

use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;

use crate::{CryptoError, Keyring, SecretKey, WrappedKey};

/// Bytes kept of each HMAC: 128 bits makes accidental collisions negligible.
pub const BLIND_INDEX_LEN: usize = 16;
const INDEX_KEY_LABEL: &str = "custodia.index-key.v1";
const HKDF_SALT: &[u8] = b"custodia.blind-index.v1";

/// The blind index root key. Stored wrapped by the root key.
pub struct IndexKey(SecretKey);

impl IndexKey {
    /// A fresh random index key and its wrapped form.
    pub fn generate(keyring: &Keyring) -> Result<(Self, WrappedKey), CryptoError> {
        let secret = SecretKey::generate()?;
        let wrapped = keyring.wrap(INDEX_KEY_LABEL, b"", &secret)?;
        Ok((Self(secret), wrapped))
    }

    /// Unwraps a stored index key. Fails when the root key is not the one that wrapped it.
    pub fn unwrap(keyring: &Keyring, wrapped: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(keyring.unwrap(INDEX_KEY_LABEL, b"", wrapped)?))
    }

    /// From raw bytes (tests and known-answer vectors).
    #[must_use]
    pub fn from_secret(secret: SecretKey) -> Self {
        Self(secret)
    }
}

/// Computes blind indexes, caching each field's derived HMAC key.
pub struct BlindIndexer {
    key: IndexKey,
    field_keys: RwLock<HashMap<(String, String), hmac::Key>>,
}

impl BlindIndexer {
    #[must_use]
    pub fn new(key: IndexKey) -> Self {
        Self {
            key,
            field_keys: RwLock::new(HashMap::new()),
        }
    }

    fn derive(&self, collection: &str, field: &str) -> Result<hmac::Key, CryptoError> {
        let info = [collection.as_bytes(), b"\0", field.as_bytes()];
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(self.key.0.expose());
        let okm = prk
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| CryptoError::Primitive)?;
        Ok(hmac::Key::from(okm))
    }

    /// The blind index of an already normalized value of `collection.field`.
    pub fn compute(
        &self,
        collection: &str,
        field: &str,
        normalized: &str,
    ) -> Result<[u8; BLIND_INDEX_LEN], CryptoError> {
        let tag = {
            let cache = self.field_keys.read().map_err(|_| CryptoError::Primitive)?;
            cache
                .get(&(collection.to_owned(), field.to_owned()))
                .map(|k| hmac::sign(k, normalized.as_bytes()))
        };
        let tag = match tag {
            Some(tag) => tag,
            None => {
                let key = self.derive(collection, field)?;
                let tag = hmac::sign(&key, normalized.as_bytes());
                self.field_keys
                    .write()
                    .map_err(|_| CryptoError::Primitive)?
                    .insert((collection.to_owned(), field.to_owned()), key);
                tag
            }
        };
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&tag.as_ref()[..BLIND_INDEX_LEN]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexer(byte: u8) -> BlindIndexer {
        BlindIndexer::new(IndexKey::from_secret(SecretKey::from_slice(&[byte; 32]).unwrap()))
    }

    #[test]
    /// Expected value computed independently (Python hmac + hashlib HKDF per RFC 5869).
    fn known_answer() {
        let idx = indexer(0x01)
            .compute("customers", "email", "alice@example.com")
            .unwrap();
        assert_eq!(hex::encode(idx), "362fdc02162a6431afbb4e604151ae7f");
    }

    #[test]
    fn deterministic_per_field_and_key() {
        let a = indexer(1);
        let x = a.compute("customers", "email", "a@b.co").unwrap();
        assert_eq!(x, a.compute("customers", "email", "a@b.co").unwrap());
        assert_ne!(
            x,
            a.compute("customers", "phone", "a@b.co").unwrap(),
            "fields have separate keys"
        );
        assert_ne!(
            x,
            a.compute("orders", "email", "a@b.co").unwrap(),
            "collections have separate keys"
        );
        assert_ne!(
            x,
            indexer(2).compute("customers", "email", "a@b.co").unwrap(),
            "index key matters"
        );
        assert_ne!(x, a.compute("customers", "email", "a@b.cO").unwrap());
    }

    #[test]
    fn index_key_wraps() {
        let ring = Keyring::from_keys(vec![(1, SecretKey::generate().unwrap())]).unwrap();
        let (key, wrapped) = IndexKey::generate(&ring).unwrap();
        let before = BlindIndexer::new(key).compute("c", "f", "v").unwrap();
        let after = BlindIndexer::new(IndexKey::unwrap(&ring, &wrapped.0).unwrap())
            .compute("c", "f", "v")
            .unwrap();
        assert_eq!(before, after);
    }
}
