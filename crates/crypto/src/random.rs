use std::cell::RefCell;

use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| CryptoError::Primitive)?;
    Ok(out)
}

/// `N` random bytes as lower-case hex (2N characters): identifiers and key ids.
pub fn random_hex<const N: usize>() -> Result<String, CryptoError> {
    let bytes = random_array::<N>()?;
    let mut s = String::with_capacity(2 * N);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    Ok(s)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Nonces per refill of a thread's pool.
const POOL_NONCES: usize = 256;

/// A thread's supply of random nonce bytes. Nonces are not secret, but each must be fresh
/// random: a CSPRNG call costs far more than AES-GCM on a short value, so bytes are drawn
/// from the system CSPRNG a pool at a time and every byte is handed out exactly once.
struct NoncePool {
    bytes: [u8; POOL_NONCES * NONCE_LEN],
    used: usize,
}

thread_local! {
    static NONCES: RefCell<NoncePool> = const {
        RefCell::new(NoncePool { bytes: [0; POOL_NONCES * NONCE_LEN], used: POOL_NONCES * NONCE_LEN })
    };
}

/// A fresh random 96-bit AEAD nonce.
pub(crate) fn random_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    NONCES.with(|pool| {
        let mut pool = pool.try_borrow_mut().map_err(|_| CryptoError::Primitive)?;
        if pool.used == pool.bytes.len() {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .map_err(|_| CryptoError::Primitive)?;
            pool.used = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        let start = pool.used;
        nonce.copy_from_slice(&pool.bytes[start..start + NONCE_LEN]);
        pool.used += NONCE_LEN;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_nonces_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(POOL_NONCES * 4 + 3) {
            assert!(seen.insert(random_nonce().unwrap()), "a nonce came out twice");
        }
    }
}
