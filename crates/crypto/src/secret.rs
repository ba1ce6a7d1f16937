use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoError, random_array};

/// Length in bytes of every symmetric key Custodia holds (256-bit).
pub const KEY_LEN: usize = 32;

/// 256 bits of key material, wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_array::<KEY_LEN>()?))
    }

    /// Takes ownership of key bytes from a slice; the slice must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidRootKey(format!("a key is {KEY_LEN} bytes, got {}", bytes.len())))?;
        Ok(Self(arr))
    }

    /// The key bytes, for handing to a primitive. Do not copy them elsewhere.
    #[must_use]
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}
