//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA1, 30-second steps,
//! 6 digits): what every authenticator app computes from an `otpauth://` URI.
//!
//! ```text
//! step   = floor(unix seconds / 30)
//! mac    = HMAC-SHA1(secret, step as u64 big endian)
//! offset = mac[19] & 0x0f
//! code   = (mac[offset..offset+4] as u32 big endian & 0x7fff_ffff) mod 10^digits
//! ```
//!
//! A code is accepted for the current step and one step either side (clock drift), and only
//! for a step later than the last one accepted: a code seen once (replayed, or read over a
//! shoulder) never works again, nor does any earlier one.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::{CryptoError, constant_time_eq, random_array};

/// Seconds per step.
pub const TOTP_STEP_SECS: i64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: u32 = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const TOTP_SECRET_LEN: usize = 20;
/// Steps either side of the current one a code may come from.
const DRIFT_STEPS: i64 = 1;

/// A TOTP shared secret. Never printed by `Debug`.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRefusal {
    /// Not six digits.
    Malformed,
    /// No step in the window gives this code.
    Wrong,
    /// The code is right for a step at or before the last one accepted (a replay).
    Reused,
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(random_array::<TOTP_SECRET_LEN>()?.to_vec())))
    }

    /// A secret from its bytes (as stored, after unsealing).
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// A secret from its base32 form (upper or lower case, spaces and padding ignored), as
    /// an authenticator app shows it; `None` if it is not base32.
    #[must_use]
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes().filter(|c| !matches!(c, b' ' | b'=')) {
            let v = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buffer >> bits) & 0xff) as u8);
            }
            buffer &= (1 << bits) - 1;
        }
        Some(Self(out))
    }

    /// The secret's bytes, to be sealed before storing.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps take it.
    #[must_use]
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32(&self.0))
    }

    /// The `otpauth://totp/` URI an authenticator app (or its QR code) enrols from.
    /// `issuer` and `account` are percent-encoded.
    #[must_use]
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let (issuer, account) = (percent_encode(issuer), percent_encode(account));
        Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
            self.to_base32().as_str()
        ))
    }

    /// The code of `step`, zero-padded to [`TOTP_DIGITS`].
    #[must_use]
    pub fn code_at_step(&self, step: i64) -> String {
        format!("{:0width$}", self.hotp(step, TOTP_DIGITS), width = TOTP_DIGITS as usize)
    }

    /// RFC 4226 HOTP value of counter `step` with `digits` digits.
    fn hotp(&self, step: i64, digits: u32) -> u32 {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
        let tag = hmac::sign(&key, &counter);
        let mac = tag.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let word = u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]) & 0x7fff_ffff;
        word % 10u32.pow(digits)
    }

    /// Checks `code` at Unix time `unix_secs`: the step it was made for, if it is one of the
    /// window's steps and later than `last_step` (the last accepted, if any). Every step of
    /// the window is computed and compared in constant time, whichever matches.
    pub fn verify(&self, code: &str, unix_secs: i64, last_step: Option<i64>) -> Result<i64, TotpRefusal> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpRefusal::Malformed);
        }
        let now = unix_secs.div_euclid(TOTP_STEP_SECS);
        let mut matched = None;
        for step in (now - DRIFT_STEPS)..=(now + DRIFT_STEPS) {
            if step >= 0 && constant_time_eq(self.code_at_step(step).as_bytes(), code.as_bytes()) && matched.is_none() {
                matched = Some(step);
            }
        }
        match matched {
            None => Err(TotpRefusal::Wrong),
            Some(step) if last_step.is_some_and(|last| step <= last) => Err(TotpRefusal::Reused),
            Some(step) => Ok(step),
        }
    }
}

/// The step a Unix time falls in.
#[must_use]
pub fn totp_step(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(TOTP_STEP_SECS)
}

/// RFC 4648 base32, upper case, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits; 6 digits are their last six).
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(i64, u32); 6] = [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];

    #[test]
    fn rfc_6238_known_answers() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        for (time, expected) in RFC_VECTORS {
            assert_eq!(secret.hotp(totp_step(time), 8), expected, "t = {time}");
            assert_eq!(
                secret.code_at_step(totp_step(time)),
                format!("{:06}", expected % 1_000_000)
            );
        }
    }

    /// RFC 4226 Appendix D: HOTP values of counters 0..9 for the same secret.
    #[test]
    fn rfc_4226_known_answers() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871, 520_489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(secret.hotp(counter as i64, 6), value);
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        // RFC 4648 section 10, without padding.
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
        assert_eq!(
            TotpSecret::from_bytes(RFC_SECRET).to_base32().as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        for input in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = base32(input.as_bytes());
            assert_eq!(TotpSecret::from_base32(&encoded).unwrap().expose(), input.as_bytes());
            assert_eq!(
                TotpSecret::from_base32(&encoded.to_lowercase()).unwrap().expose(),
                input.as_bytes()
            );
        }
        assert!(TotpSecret::from_base32("MZXW1").is_none(), "1 is not base32");
    }

    #[test]
    fn window_drift_and_replay() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let t = 1_111_111_111;
        let step = totp_step(t);
        let code = secret.code_at_step(step);
        assert_eq!(secret.verify(&code, t, None), Ok(step));
        // One step of drift either way is accepted; two are not.
        assert_eq!(secret.verify(&code, t + 30, None), Ok(step));
        assert_eq!(secret.verify(&code, t - 30, None), Ok(step));
        assert_eq!(secret.verify(&code, t + 60, None), Err(TotpRefusal::Wrong));
        // Once accepted, the same code (and any earlier one) is a replay.
        assert_eq!(secret.verify(&code, t, Some(step)), Err(TotpRefusal::Reused));
        let earlier = secret.code_at_step(step - 1);
        assert_eq!(secret.verify(&earlier, t, Some(step)), Err(TotpRefusal::Reused));
        let next = secret.code_at_step(step + 1);
        assert_eq!(secret.verify(&next, t + 30, Some(step)), Ok(step + 1));
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(secret.verify(bad, t, None), Err(TotpRefusal::Malformed), "{bad:?}");
        }
        let other = TotpSecret::generate().unwrap();
        assert_ne!(other.expose(), secret.expose());
        assert!(!format!("{other:?}").contains(&*other.to_base32()));
    }

    #[test]
    fn otpauth_uri_is_encoded() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        assert_eq!(
            secret.otpauth_uri("Acme Vault", "ops@acme").as_str(),
            "otpauth://totp/Acme%20Vault:ops%40acme?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Vault&algorithm=SHA1&digits=6&period=30"
        );
    }
}
