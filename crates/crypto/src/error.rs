use thiserror::Error;

/// Errors of the crypto layer. None of them carries key material or plaintext.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// A ciphertext failed authentication: tampered, truncated, moved to another
    /// row/field/subject, or sealed under another key.
    #[error("ciphertext failed authentication (tampered, moved, or sealed under another key)")]
    Decrypt,
    /// A ciphertext does not start with a header this version understands.
    #[error("unsupported ciphertext format: {0}")]
    Format(String),
    /// The root key that a wrapped key names is not in the keyring.
    #[error("root key version {0} is not loaded")]
    UnknownKeyVersion(u32),
    /// A key file or environment value is malformed.
    #[error("invalid root key: {0}")]
    InvalidRootKey(String),
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A keyed digest was asked for a collection or field that is not a registry name.
    #[error("a keyed digest domain names a collection or field that is not a registry name")]
    InvalidDomain,
    /// The system random generator or a primitive failed (should not happen).
    #[error("cryptographic primitive failed")]
    Primitive,
}
