//! PostgreSQL's service role, as `custodia init --service-role` and `custodia migrate
//! --service-role` set it up: the owner's URL migrates the schema, then the store grants the
//! service role exactly what the server needs (`Store::grant_service_role`). A new role (or
//! one whose password is reset) gets a random password; PostgreSQL receives only its
//! SCRAM-SHA-256 verifier, so the password never reaches the database server or its logs, and
//! the operator receives it once, inside the service role's connection URL.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custodia_store::{Store, TableGrant};
use zeroize::Zeroizing;

use crate::SetupError;

/// PBKDF2 iterations of the verifier: PostgreSQL's default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// What provisioning did.
#[derive(Debug)]
pub struct ServiceRole {
    /// The service role's connection URL with its new password, when one was set.
    pub database_url: Option<Zeroizing<String>>,
    /// The privileges granted, table by table.
    pub grants: Vec<TableGrant>,
}

/// Migrates the PostgreSQL database at `owner_url` (as the owner) and creates the service role
/// `role`, or updates its grants. A new role gets a random password, as does an existing one
/// when `new_password`; the returned URL is `owner_url` with the service role's name and
/// password in place of the owner's.
pub async fn provision_service_role(
    owner_url: &str,
    role: &str,
    new_password: bool,
) -> Result<ServiceRole, SetupError> {
    if !(owner_url.starts_with("postgres://") || owner_url.starts_with("postgresql://")) {
        return Err(SetupError::Other(
            "--service-role needs a PostgreSQL --database-url (the owner role's)".into(),
        ));
    }
    let store = Store::open(owner_url).await?;
    let password = Zeroizing::new(custodia_crypto::random_hex::<32>()?);
    let verifier = scram_verifier(&password, &custodia_crypto::random_array::<16>()?)?;
    let granted = store.grant_service_role(role, &verifier, new_password).await?;
    let database_url = if granted.password_set {
        Some(service_url(owner_url, role, &password)?)
    } else {
        None
    };
    Ok(ServiceRole {
        database_url,
        grants: granted.tables,
    })
}

/// A PostgreSQL SCRAM-SHA-256 password verifier (RFC 5802, RFC 7677; the form of
/// `pg_authid.rolpassword`), which `PASSWORD '...'` stores as given.
fn scram_verifier(password: &str, salt: &[u8]) -> Result<String, SetupError> {
    let iterations = NonZeroU32::new(SCRAM_ITERATIONS).ok_or_else(|| SetupError::Other("iterations".into()))?;
    let mut salted = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut *salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &*salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    Ok(format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    ))
}

/// `url` logging in as `role` with `password` (both URL-safe: the role name is a plain
/// identifier, the password hex): the user information of `url` replaced, the rest kept.
fn service_url(url: &str, role: &str, password: &str) -> Result<Zeroizing<String>, SetupError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| SetupError::Other("the database URL has no scheme".into()))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest[..authority_end]
        .rsplit_once('@')
        .map_or(&rest[..authority_end], |(_, host)| host);
    Ok(Zeroizing::new(format!(
        "{scheme}://{role}:{password}@{host}{}",
        &rest[authority_end..]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python's hashlib and hmac.
    #[test]
    fn the_verifier_is_postgresql_scram_sha_256() {
        let salt: Vec<u8> = (0..16).collect();
        assert_eq!(
            scram_verifier("pencil", &salt).unwrap(),
            "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
        );
    }

    #[test]
    fn the_service_url_replaces_only_the_user() {
        let cases = [
            (
                "postgres://owner@db.example:5432/vault",
                "postgres://svc:pw@db.example:5432/vault",
            ),
            (
                "postgresql://owner:secret@h/db?sslmode=require",
                "postgresql://svc:pw@h/db?sslmode=require",
            ),
            ("postgres://h:5432/db", "postgres://svc:pw@h:5432/db"),
            ("postgres://o@h", "postgres://svc:pw@h"),
        ];
        for (owner, service) in cases {
            assert_eq!(service_url(owner, "svc", "pw").unwrap().as_str(), service, "{owner}");
        }
    }
}
