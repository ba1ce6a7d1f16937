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
