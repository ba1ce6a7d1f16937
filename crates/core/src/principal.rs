//! Principals (services and people) and their API keys.
//!
//! An API key is `cst_<key id: 16 hex>_<secret: 64 hex>`. The database keeps the key id and
//! SHA-256 of the secret; a 256-bit random secret needs no slow hash. Comparison is
//! constant-time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custodia_crypto::{constant_time_eq, random_hex, sha256};
use custodia_store::PrincipalRow;
use zeroize::Zeroizing;

use crate::{Timestamp, VaultError};

/// How long a principal read from the store is trusted before it is read again. A key revoked
/// through this server stops working at once; one revoked through another server node
/// sharing the database stops working within this time.
pub const PRINCIPAL_CACHE_TTL: Duration = Duration::from_secs(5);
const PRINCIPAL_CACHE_MAX: usize = 10_000;

/// Recently read principals by API key id, so that authenticating a request does not cost
/// a database query. Holds key hashes, never keys.
#[derive(Default)]
pub(crate) struct PrincipalCache {
    entries: Mutex<HashMap<String, (PrincipalRow, Instant)>>,
}

impl PrincipalCache {
    pub(crate) fn get(&self, key_id: &str) -> Option<PrincipalRow> {
        let entries = self.entries.lock().ok()?;
        let (row, fetched) = entries.get(key_id)?;
        (fetched.elapsed() < PRINCIPAL_CACHE_TTL).then(|| row.clone())
    }

    pub(crate) fn put(&self, row: PrincipalRow) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= PRINCIPAL_CACHE_MAX {
                entries.clear();
            }
            entries.insert(row.key_id.clone(), (row, Instant::now()));
        }
    }

    pub(crate) fn forget_principal(&self, principal_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (row, _)| row.principal_id != principal_id);
        }
    }
}

/// An authenticated caller, with the request attributes it asserts for Cedar policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Attributes declared in the registry's `[policy_context]`, asserted by the caller for
    /// this request (e.g. `open_ticket`); policies read them as `context.<name>`.
    pub context: BTreeMap<String, ContextValue>,
}

/// A policy context attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Bool(bool),
    String(String),
    Long(i64),
}

/// A freshly issued API key: shown once, then only its hash exists.
pub struct IssuedKey {
    pub key_id: String,
    pub secret_hash: Vec<u8>,
    pub token: Zeroizing<String>,
}

/// Issues a new API key.
pub fn issue_key() -> Result<IssuedKey, VaultError> {
    let key_id = random_hex::<8>()?;
    let secret = Zeroizing::new(random_hex::<32>()?);
    let token = Zeroizing::new(format!("cst_{key_id}_{}", secret.as_str()));
    Ok(IssuedKey {
        secret_hash: sha256(secret.as_bytes()).to_vec(),
        key_id,
        token,
    })
}

/// Splits a presented token into key id and secret; `None` if it is not shaped like a key.
pub(crate) fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("cst_")?;
    let (key_id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(key_id, 16) && hex(secret, 64)).then_some((key_id, secret))
}

/// Checks a presented secret against a stored principal.
pub(crate) fn verify(row: &PrincipalRow, secret: &str) -> Result<Principal, VaultError> {
    let matches = constant_time_eq(&sha256(secret.as_bytes()), &row.key_hash);
    if !matches {
        return Err(VaultError::unauthenticated("invalid API key"));
    }
    if row.revoked_at.is_some() {
        return Err(VaultError::unauthenticated("this API key has been revoked"));
    }
    Ok(Principal {
        id: row.principal_id.clone(),
        name: row.name.clone(),
        roles: row.roles.clone(),
        context: BTreeMap::new(),
    })
}

/// Validates a principal's name: a label such as `checkout-service`.
pub(crate) fn check_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(VaultError::bad_request(
            "invalid_name",
            "name must be 1-64 characters of A-Z, a-z, 0-9, _ - .",
        ))
    }
}

/// A new principal row and its key.
pub(crate) fn new_principal(
    name: &str,
    roles: Vec<String>,
    now: Timestamp,
) -> Result<(PrincipalRow, IssuedKey), VaultError> {
    let key = issue_key()?;
    let row = PrincipalRow {
        principal_id: format!("prn_{}", random_hex::<12>()?),
        name: name.to_owned(),
        roles,
        key_id: key.key_id.clone(),
        key_hash: key.secret_hash.clone(),
        created_at: now.0,
        revoked_at: None,
    };
    Ok((row, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_verify_and_others_do_not() {
        let (row, key) = new_principal("svc", vec!["admin".into()], Timestamp(1)).unwrap();
        let (id, secret) = split_token(&key.token).unwrap();
        assert_eq!(id, row.key_id);
        assert_eq!(verify(&row, secret).unwrap().name, "svc");
        let mut wrong = secret.to_owned();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert!(verify(&row, &wrong).is_err());
        let revoked = PrincipalRow {
            revoked_at: Some(2),
            ..row
        };
        assert!(verify(&revoked, secret).is_err());
    }

    #[test]
    fn malformed_tokens() {
        for bad in ["", "cst_", "Bearer x", "cst_abc_def", "cst_0123456789abcdef_zz"] {
            assert!(split_token(bad).is_none(), "{bad}");
        }
    }
}
