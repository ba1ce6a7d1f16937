//! Field envelopes: each value sealed with AES-256-GCM under its subject's data key, with a
//! versioned header and associated data that binds it to (collection, subject, record, field).
//!
//! ```text
//! byte 0      format (0x01 = AES-256-GCM field envelope v1)
//! bytes 1..5  data key version (u32, big endian)
//! bytes 5..17 random 96-bit nonce
//! bytes 17..  ciphertext || 16-byte tag
//! AAD = header || "custodia.field.v1" || len-prefixed collection, subject, record, field
//! ```

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::random::random_nonce;
use crate::{CryptoError, Keyring, SecretKey};

const FIELD_FORMAT_V1: u8 = 0x01;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
const FIELD_DOMAIN: &[u8] = b"custodia.field.v1";
const DEK_LABEL: &str = "custodia.dek.v1";

/// A key wrapped by the root key: safe to store, useless without the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// Where a value lives. Sealing binds the ciphertext to it; opening elsewhere fails.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    pub collection: &'a str,
    pub subject: &'a str,
    pub record: &'a str,
    pub field: &'a str,
}

impl FieldContext<'_> {
    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let parts = [self.collection, self.subject, self.record, self.field];
        let len = header.len() + FIELD_DOMAIN.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>();
        let mut aad = Vec::with_capacity(len);
        aad.extend_from_slice(header);
        aad.extend_from_slice(FIELD_DOMAIN);
        for part in parts {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// A data subject's data key (DEK), unwrapped and ready to seal and open that subject's values.
/// Destroying its wrapped form destroys every value sealed under it (crypto-shredding).
pub struct DataKey {
    version: u32,
    aead: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(v{}, <redacted>)", self.version)
    }
}

impl DataKey {
    /// Builds a data key from raw key material.
    pub fn from_secret(version: u32, secret: &SecretKey) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, secret.expose()).map_err(|_| CryptoError::Primitive)?;
        Ok(Self {
            version,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// Generates a new data key for `subject` and returns it with its wrapped form.
    pub fn generate(keyring: &Keyring, subject: &str) -> Result<(Self, WrappedKey), CryptoError> {
        let secret = SecretKey::generate()?;
        let wrapped = keyring.wrap(DEK_LABEL, subject.as_bytes(), &secret)?;
        Ok((Self::from_secret(1, &secret)?, wrapped))
    }

    /// Unwraps a stored data key of `subject`.
    pub fn unwrap(keyring: &Keyring, subject: &str, version: u32, wrapped: &[u8]) -> Result<Self, CryptoError> {
        let secret = keyring.unwrap(DEK_LABEL, subject.as_bytes(), wrapped)?;
        Self::from_secret(version, &secret)
    }

    /// A stored data key of `subject` wrapped again under the keyring's current version.
    pub fn rewrap(keyring: &Keyring, subject: &str, wrapped: &[u8]) -> Result<WrappedKey, CryptoError> {
        keyring.rewrap(DEK_LABEL, subject.as_bytes(), wrapped)
    }

    /// This data key's version (raised by a data key rotation).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals `plaintext` for the place `ctx`.
    pub fn seal(&self, ctx: &FieldContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_nonce()?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(FIELD_FORMAT_V1);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&nonce);
        let aad = ctx.aad(&out);
        out.extend_from_slice(plaintext);
        let (_, body) = out.split_at_mut(HEADER_LEN);
        let tag = self
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), body)
            .map_err(|_| CryptoError::Primitive)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value sealed by [`DataKey::seal`] for the same place `ctx`.
    pub fn open(&self, ctx: &FieldContext<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::Format("ciphertext is truncated".into()));
        }
        if sealed[0] != FIELD_FORMAT_V1 {
            return Err(CryptoError::Format(format!("field envelope format {:#04x}", sealed[0])));
        }
        let version = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        if version != self.version {
            return Err(CryptoError::UnknownKeyVersion(version));
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[5..HEADER_LEN]).map_err(|_| CryptoError::Primitive)?;
        let aad = ctx.aad(&sealed[..HEADER_LEN]);
        let mut body = sealed[HEADER_LEN..].to_vec();
        let len = self
            .aead
            .open_in_place(nonce, Aad::from(&aad), &mut body)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// Raw AES-256-GCM seal with a random nonce and no envelope: the baseline that the field
/// envelope benchmark compares against.
pub fn raw_aes_gcm_seal(key: &LessSafeKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce = random_nonce()?;
    let mut out = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut out)
        .map_err(|_| CryptoError::Primitive)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring() -> Keyring {
        Keyring::from_keys(vec![(1, SecretKey::from_slice(&[0x42; 32]).unwrap())]).unwrap()
    }

    fn ctx<'a>(subject: &'a str, record: &'a str, field: &'a str) -> FieldContext<'a> {
        FieldContext {
            collection: "customers",
            subject,
            record,
            field,
        }
    }

    /// Known answer: a fixed key, nonce and context must give this exact envelope, so the
    /// on-disk format cannot change by accident. Computed independently with Python's
    /// `cryptography` AESGCM over the documented header and AAD layout.
    #[test]
    fn known_answer_envelope() {
        let key = DataKey::from_secret(1, &SecretKey::from_slice(&[0x11; 32]).unwrap()).unwrap();
        let c = ctx("s1", "r1", "email");
        let mut header = vec![FIELD_FORMAT_V1, 0, 0, 0, 1];
        header.extend_from_slice(&[0u8; 12]);
        let aad = c.aad(&header);
        let mut body = b"alice@example.com".to_vec();
        let tag = key
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(&aad), &mut body)
            .unwrap();
        let mut sealed = header.clone();
        sealed.extend_from_slice(&body);
        sealed.extend_from_slice(tag.as_ref());
        assert_eq!(
            hex::encode(&sealed),
            "0100000001000000000000000000000000a5a6770484eff8e16077cd69bedcb9e09cc4a1fd04d51d51ccde52420082fc809d"
        );
        assert_eq!(key.open(&c, &sealed).unwrap(), b"alice@example.com");
    }

    #[test]
    fn flipping_any_byte_fails() {
        let (key, _) = DataKey::generate(&ring(), "s1").unwrap();
        let c = ctx("s1", "r1", "email");
        let sealed = key.seal(&c, b"alice@example.com").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(key.open(&c, &bad).is_err(), "flip at byte {i} went unnoticed");
        }
        assert!(key.open(&c, &sealed[..sealed.len() - 1]).is_err());
        assert!(key.open(&c, &sealed[..10]).is_err());
    }

    #[test]
    fn moving_a_ciphertext_fails() {
        let ring = ring();
        let (key, _) = DataKey::generate(&ring, "s1").unwrap();
        let sealed = key.seal(&ctx("s1", "r1", "email"), b"alice@example.com").unwrap();
        assert!(key.open(&ctx("s1", "r1", "name"), &sealed).is_err(), "other field");
        assert!(key.open(&ctx("s1", "r2", "email"), &sealed).is_err(), "other record");
        assert!(
            key.open(&ctx("s2", "r1", "email"), &sealed).is_err(),
            "other subject, same key"
        );
        let other = FieldContext {
            collection: "orders",
            ..ctx("s1", "r1", "email")
        };
        assert!(key.open(&other, &sealed).is_err(), "other collection");
        let (key2, _) = DataKey::generate(&ring, "s2").unwrap();
        assert!(
            key2.open(&ctx("s1", "r1", "email"), &sealed).is_err(),
            "other subject's key"
        );
    }

    #[test]
    fn wrapped_data_key_is_bound_to_its_subject() {
        let ring = ring();
        let (key, wrapped) = DataKey::generate(&ring, "s1").unwrap();
        let sealed = key.seal(&ctx("s1", "r", "f"), b"v").unwrap();
        let back = DataKey::unwrap(&ring, "s1", 1, &wrapped.0).unwrap();
        assert_eq!(back.open(&ctx("s1", "r", "f"), &sealed).unwrap(), b"v");
        assert!(DataKey::unwrap(&ring, "s2", 1, &wrapped.0).is_err());
    }

    #[test]
    fn seals_are_randomized() {
        let (key, _) = DataKey::generate(&ring(), "s1").unwrap();
        let c = ctx("s1", "r1", "email");
        assert_ne!(key.seal(&c, b"same").unwrap(), key.seal(&c, b"same").unwrap());
    }

    proptest! {
        #[test]
        fn round_trip(value in proptest::collection::vec(any::<u8>(), 0..512),
                      subject in "[a-z0-9_]{1,40}", record in "[a-f0-9]{1,32}", field in "[a-z_]{1,20}") {
            let (key, _) = DataKey::generate(&ring(), &subject).unwrap();
            let c = ctx(&subject, &record, &field);
            let sealed = key.seal(&c, &value).unwrap();
            prop_assert_eq!(key.open(&c, &sealed).unwrap(), value);
        }
    }
}
