//! Custodia's cryptography: the key hierarchy, field envelopes, blind indexes and keyed digests.
//!
//! ```text
//! root key (KEK, versioned; key file or environment)
//!   ├── wraps one data key (DEK) per data subject  ── seals that subject's field values
//!   └── wraps the index key                        ── HKDF per domain ── HMAC keyed digests
//!                                                     (blind index per field, audit subject,
//!                                                      ledger IP, tokens)
//! ```
//!
//! All primitives come from aws-lc-rs (AES-256-GCM, HMAC-SHA256, HKDF-SHA256). Key material
//! lives in zeroizing buffers and no key type implements `Debug` in a way that prints bytes.

mod blind_index;
mod envelope;
mod error;
#[cfg(test)]
mod fuzz;
mod keyring;
mod password;
mod provider;
mod random;
mod secret;
pub mod shamir;
mod totp;

pub use blind_index::{BLIND_INDEX_LEN, BlindIndexer, Domain, IndexKey};
pub use envelope::{DataKey, FieldContext, WrappedKey, raw_aes_gcm_seal};
pub use error::CryptoError;
pub use keyring::{KEY_FILE_NAME, Keyring, ROOT_KEY_ENV, RootKey, read_private, replace_private};
pub use password::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, check_new_password, hash_password, verify_nobody, verify_password,
};
pub use provider::{
    EnvProvider, FileProvider, KeyProvider, PASSPHRASE_KEY_FILE, PassphraseProvider, ROOT_KEY_PASSPHRASE_ENV,
};
pub use random::{random_array, random_hex};
pub use secret::{KEY_LEN, SecretKey};
pub use totp::{TOTP_DIGITS, TOTP_STEP_SECS, TotpRefusal, TotpSecret, totp_step};

/// Constant-time equality of two byte strings (secret comparisons, e.g. API key hashes).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
