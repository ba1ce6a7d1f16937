//! Field envelopes: each value sealed with AES-256-GCM under its subject's data key, with a
//! versioned header and associated data that binds it to (collection, subject, record, field).
//!
//! ```text
//! byte 0      format (0x02 = AES-256-GCM field envelope v2, padded;
//!                     0x01 = v1, unpadded: still opened, no longer written)
//! bytes 1..5  data key version (u32, big endian)
//! bytes 5..17 random 96-bit nonce
//! bytes 17..  ciphertext || 16-byte tag
//! AAD = header || "custodia.field.v1" || len-prefixed collection, subject, record, field
//!
//! v2 plaintext = value || 0x80 || 0x00 ... to padded_len(len(value) + 1):
//!   up to 256 bytes: the next multiple of 32;
//!   beyond: Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
//!   Communication with PURBs", PETS 2019): the low bits of the length cleared, at most 12%
//!   more, the length's magnitude all that shows.
//! ```
//!
//! Why padded: a ciphertext's length was its value's plus 33 bytes, so whoever holds the
//! database file read the length of every value, and with it values from a short list
//! (`male` or `female`, `yes` or `no`, a country code or name, a card's brand by its digits).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::random::random_nonce;
use crate::{CryptoError, Keyring, SecretKey};

const FIELD_FORMAT_V1: u8 = 0x01;
const FIELD_FORMAT_V2: u8 = 0x02;
/// The end of a v2 value, before the zeros that pad it.
const PAD_MARK: u8 = 0x80;
/// Up to this many bytes (value and mark), a plaintext is padded to a multiple of
/// [`PAD_STEP`]; beyond, by Padmé.
const PAD_LINEAR_UP_TO: usize = 256;
const PAD_STEP: usize = 32;
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
        self.seal_with_nonce(ctx, plaintext, random_nonce()?)
    }

    fn seal_with_nonce(
        &self,
        ctx: &FieldContext<'_>,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let padded = padded_len(plaintext.len() + 1);
        let mut out = Vec::with_capacity(HEADER_LEN + padded + TAG_LEN);
        out.push(FIELD_FORMAT_V2);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&nonce);
        let aad = ctx.aad(&out);
        out.extend_from_slice(plaintext);
        out.push(PAD_MARK);
        out.resize(HEADER_LEN + padded, 0);
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
        let padded = match sealed[0] {
            FIELD_FORMAT_V2 => true,
            FIELD_FORMAT_V1 => false,
            other => return Err(CryptoError::Format(format!("field envelope format {other:#04x}"))),
        };
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
        if padded {
            // authenticated, so written by `seal`: a missing mark is a broken store or build
            let Some(mark) = body.iter().rposition(|&b| b != 0).filter(|&i| body[i] == PAD_MARK) else {
                body.fill(0);
                return Err(CryptoError::Format("field envelope padding".into()));
            };
            body.truncate(mark);
        }
        Ok(body)
    }
}

/// The length a v2 plaintext of `n` bytes (value and mark) is padded to (see the module's
/// documentation).
fn padded_len(n: usize) -> usize {
    if n <= PAD_LINEAR_UP_TO {
        return n.div_ceil(PAD_STEP).max(1) * PAD_STEP;
    }
    // Padmé: with E = floor(log2 n) and S = floor(log2 E) + 1, clear the low E - S bits
    // (rounding up)
    let e = n.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1usize << (e - s)) - 1;
    (n + mask) & !mask
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

    /// Known answer for v1 (unpadded, written before v2): a fixed key, nonce and context give
    /// this exact envelope, which still opens, so the on-disk format cannot change by accident. Computed independently with Python's
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

    /// Known answer for the padded format: the value, its mark and zeros to 32 bytes, and a
    /// 300-byte value padded by Padmé to 304. Computed independently with Python's
    /// `cryptography` AESGCM over the documented header, AAD and padding.
    #[test]
    fn known_answer_envelope_v2() {
        let key = DataKey::from_secret(1, &SecretKey::from_slice(&[0x11; 32]).unwrap()).unwrap();
        let c = ctx("s1", "r1", "email");
        let sealed = key.seal_with_nonce(&c, b"alice@example.com", [0; 12]).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            "0200000001000000000000000000000000a5a6770484eff8e16077cd69bedcb9e09ce08f9ef8a45eec79e5439b045d905e8132aa8bcc4af17da264c74e0ae1bf88"
        );
        assert_eq!(key.open(&c, &sealed).unwrap(), b"alice@example.com");
        let long = vec![b'x'; 300];
        let sealed = key.seal_with_nonce(&c, &long, [0; 12]).unwrap();
        assert_eq!(sealed.len(), 337);
        assert_eq!(
            hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &sealed)),
            "d596c75de6dc115a2d46c4d449cb3d7f29d6cb6dd4dde5ded8ef2b5f4f0cf8f9"
        );
        assert_eq!(key.open(&c, &sealed).unwrap(), long);
    }

    /// Whoever holds the database reads a value's length only to its bucket: every value of
    /// up to 31 bytes seals to the same length (`male` and `female`, `yes` and `no`), and a
    /// longer one to at most 12% (or 32 bytes) more than it holds.
    #[test]
    fn lengths_show_only_the_bucket() {
        let (key, _) = DataKey::generate(&ring(), "s1").unwrap();
        let c = ctx("s1", "r1", "gender");
        let short: Vec<usize> = [&b""[..], b"male", b"female", b"no", b"yes", &[b'z'; 31]]
            .iter()
            .map(|v| key.seal(&c, v).unwrap().len())
            .collect();
        assert!(short.iter().all(|&l| l == HEADER_LEN + 32 + TAG_LEN), "{short:?}");
        let mut last = 0;
        for n in 0..5000 {
            let value = vec![0xa5; n];
            let sealed = key.seal(&c, &value).unwrap();
            let body = sealed.len() - HEADER_LEN - TAG_LEN;
            assert_eq!(body, padded_len(n + 1), "{n}");
            assert!(body > n && body >= last, "{n}: {body}");
            assert!(body - n <= 32 || (body - n) * 100 <= 12 * n, "{n}: {body}");
            last = body;
            assert_eq!(key.open(&c, &sealed).unwrap(), value, "{n}");
        }
    }

    /// An authentic v2 envelope without its mark (a store or build that wrote it otherwise)
    /// is refused, never cut somewhere.
    #[test]
    fn padding_without_its_mark_is_refused() {
        let key = DataKey::from_secret(1, &SecretKey::from_slice(&[0x11; 32]).unwrap()).unwrap();
        let c = ctx("s1", "r1", "email");
        let mut header = vec![FIELD_FORMAT_V2, 0, 0, 0, 1];
        header.extend_from_slice(&[7u8; 12]);
        for plain in [vec![0u8; 32], b"abc".to_vec(), vec![]] {
            let mut body = plain.clone();
            let tag = key
                .aead
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([7; 12]),
                    Aad::from(&c.aad(&header)),
                    &mut body,
                )
                .unwrap();
            let mut sealed = header.clone();
            sealed.extend_from_slice(&body);
            sealed.extend_from_slice(tag.as_ref());
            assert!(
                matches!(key.open(&c, &sealed), Err(CryptoError::Format(_))),
                "{plain:?}"
            );
        }
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
