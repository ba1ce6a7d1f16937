//! Shamir's secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1): a secret is
//! split into `n` shares of which any `k` give it back and fewer give nothing about it. Used to
//! split the root key file among several people (`custodia keys split` / `keys combine`).
//!
//! ```text
//! share = custodia-share-v1:<k>:<x>:<base64 of y, one byte per secret byte>:<tag>
//! y[i]  = s[i] + a1[i]·x + ... + a(k-1)[i]·x^(k-1)      (fresh random a's per byte)
//! tag   = hex of the first 8 bytes of SHA-256(secret): combining checks it, so a wrong or
//!         mistyped share is named as such rather than giving a wrong key
//! ```
//!
//! Field arithmetic takes the same steps whatever the values (no tables indexed by secrets).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::{CryptoError, random_array, sha256};

const PREFIX: &str = "custodia-share-v1";

/// Multiplication in GF(2^8), in constant time.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The inverse in GF(2^8) (a^254); 0 for 0.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

fn tag(secret: &[u8]) -> String {
    let digest = sha256(secret);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn bad(message: impl Into<String>) -> CryptoError {
    CryptoError::Format(message.into())
}

/// Splits `secret` into `n` shares, any `k` of which give it back (2 <= k <= n <= 255).
pub fn split(secret: &[u8], k: u8, n: u8) -> Result<Vec<Zeroizing<String>>, CryptoError> {
    if k < 2 || k > n {
        return Err(bad("a split needs 2 <= threshold <= shares <= 255"));
    }
    let t = tag(secret);
    let mut ys: Vec<Zeroizing<Vec<u8>>> = (0..n)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len())))
        .collect();
    for &s in secret {
        // One random polynomial per byte: s + c1·x + ... + c(k-1)·x^(k-1).
        let mut coefficients = Zeroizing::new(vec![s]);
        for _ in 1..k {
            coefficients.push(random_array::<1>()?[0]);
        }
        for (i, y) in ys.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            // Horner's rule from the highest coefficient.
            let value = coefficients.iter().rev().fold(0u8, |acc, &c| mul(acc, x) ^ c);
            y.push(value);
        }
    }
    Ok(ys
        .iter()
        .enumerate()
        .map(|(i, y)| Zeroizing::new(format!("{PREFIX}:{k}:{}:{}:{t}", i + 1, B64.encode(y.as_slice()))))
        .collect())
}

/// One parsed share: threshold, x, y and tag.
type Share = (u8, u8, Zeroizing<Vec<u8>>, String);

fn parse(share: &str) -> Result<Share, CryptoError> {
    let parts: Vec<&str> = share.trim().split(':').collect();
    let [prefix, k, x, y, t] = parts.as_slice() else {
        return Err(bad("a share reads custodia-share-v1:K:X:DATA:TAG"));
    };
    if *prefix != PREFIX {
        return Err(bad("a share starts with custodia-share-v1"));
    }
    let k = k
        .parse::<u8>()
        .map_err(|_| bad("a share's threshold is not a number"))?;
    let x = x
        .parse::<u8>()
        .ok()
        .filter(|x| *x > 0)
        .ok_or_else(|| bad("a share's number is 1..255"))?;
    let y = Zeroizing::new(
        B64.decode(y)
            .map_err(|_| bad(format!("share {x} is damaged (not base64)")))?,
    );
    Ok((k, x, y, (*t).to_owned()))
}

/// The secret from `k` or more shares of one split; a share of another split, a repeated or
/// damaged one, or too few, are refused by name.
pub fn combine(shares: &[&str]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let parsed = shares.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
    let Some((k, _, first_y, first_tag)) = parsed.first() else {
        return Err(bad("no share given"));
    };
    let (k, len) = (usize::from(*k), first_y.len());
    if parsed
        .iter()
        .any(|(kk, _, y, t)| usize::from(*kk) != k || y.len() != len || t != first_tag)
    {
        return Err(bad("the shares come from different splits"));
    }
    let mut xs: Vec<u8> = parsed.iter().map(|(_, x, _, _)| *x).collect();
    xs.sort_unstable();
    xs.dedup();
    if xs.len() != parsed.len() {
        return Err(bad("a share is given twice"));
    }
    if parsed.len() < k {
        return Err(bad(format!("{} share(s) given; this split needs {k}", parsed.len())));
    }
    let used = &parsed[..k];
    // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i) (subtraction is xor).
    let basis: Vec<u8> = used
        .iter()
        .map(|(_, xi, _, _)| {
            used.iter()
                .filter(|(_, xj, _, _)| xj != xi)
                .fold(1u8, |acc, (_, xj, _, _)| mul(acc, mul(*xj, inv(xj ^ xi))))
        })
        .collect();
    let mut secret = Zeroizing::new(Vec::with_capacity(len));
    for byte in 0..len {
        let value = used
            .iter()
            .zip(&basis)
            .fold(0u8, |acc, ((_, _, y, _), l)| acc ^ mul(y[byte], *l));
        secret.push(value);
    }
    if tag(&secret) != *first_tag {
        return Err(bad(
            "the shares do not give back the secret they were split from (a share is wrong or mistyped)",
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_matches_the_aes_field() {
        // FIPS 197 section 4.2: {57} · {83} = {c1}, {57} · {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn any_k_shares_give_the_secret_back_and_fewer_do_not() {
        let secret = b"custodia-root-key-v1\n1 c2VjcmV0IGtleSBtYXRlcmlhbCBoZXJlIDMyYnl0ZXM=\n";
        let shares = split(secret, 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        let all: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
        for (a, b, c) in [(0, 1, 2), (0, 2, 4), (4, 3, 1), (1, 3, 4)] {
            let back = combine(&[all[a], all[b], all[c]]).unwrap();
            assert_eq!(back.as_slice(), secret);
        }
        assert_eq!(combine(&all).unwrap().as_slice(), secret, "more than k is fine");
        assert!(combine(&all[..2]).unwrap_err().to_string().contains("needs 3"));
        assert!(
            combine(&[all[0], all[0], all[1]])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        // A share from another split, or one mistyped, is named as such.
        let other = split(secret, 3, 5).unwrap();
        assert!(combine(&[all[0], all[1], other[2].as_str()]).is_err());
        let mut typo = all[2].to_owned();
        let at = typo.find(':').unwrap() + 8;
        typo.replace_range(at..at + 1, if &typo[at..at + 1] == "A" { "B" } else { "A" });
        assert!(combine(&[all[0], all[1], &typo]).is_err());
        assert!(split(secret, 1, 3).is_err() && split(secret, 4, 3).is_err());
        assert!(combine(&["nonsense"]).is_err());
    }
}
