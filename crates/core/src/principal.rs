//! Principals (services and people) and their API keys.
//!
//! An API key is `cst_<key id: 16 hex>_<secret: 64 hex>`. The database keeps the key id and
//! SHA-256 of the secret; a 256-bit random secret needs no slow hash. Comparison is
//! constant-time.

use std::collections::BTreeMap;
use std::sync::Arc;

use custodia_crypto::{constant_time_eq, random_hex, sha256};
use custodia_store::PrincipalRow;
use zeroize::Zeroizing;

use custodia_registry::Capability;
use custodia_store::AuditRow;
use custodia_types::PrincipalInfo;

use crate::audit::{Allowed, AuditEvent};
use crate::{Timestamp, Vault, VaultError, gate};

/// An authenticated caller, with the request attributes it asserts for Cedar policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Attributes declared in the registry's `[policy_context]`, asserted by the caller for
    /// this request (e.g. `open_ticket`); policies read them as `context.<name>`.
    pub context: BTreeMap<String, ContextValue>,
    /// Set when the caller is an operator (a person) signed in with a session, not a
    /// service's API key.
    pub operator: Option<crate::operators::OperatorSession>,
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

/// Checks a presented secret against a stored principal, at `now`, over a connection that
/// presented the client certificate `client_cert` (its SHA-256), if any.
pub(crate) fn verify(
    row: &PrincipalRow,
    secret: &str,
    now: Timestamp,
    client_cert: Option<&[u8; 32]>,
) -> Result<Principal, VaultError> {
    let matches = constant_time_eq(&sha256(secret.as_bytes()), &row.key_hash);
    if !matches {
        return Err(VaultError::unauthenticated("invalid API key"));
    }
    if let Some(bound) = &row.client_cert {
        let presented = client_cert.is_some_and(|c| constant_time_eq(c, bound));
        if !presented {
            return Err(VaultError::unauthenticated(
                "this API key works only over TLS with its client certificate (mTLS)",
            ));
        }
    }
    if row.revoked_at.is_some() {
        return Err(VaultError::unauthenticated("this API key has been revoked"));
    }
    if row.expires_at.is_some_and(|at| now.0 >= at) {
        return Err(VaultError::unauthenticated("this API key has expired"));
    }
    Ok(Principal {
        id: row.principal_id.clone(),
        name: row.name.clone(),
        roles: row.roles.clone(),
        context: BTreeMap::new(),
        operator: None,
    })
}

/// When each key's use was last written down (`principals.last_used_at`, to the hour): once
/// an hour per key, not once per request.
#[derive(Default)]
pub(crate) struct KeyUse(std::sync::Mutex<std::collections::HashMap<String, i64>>);

const HOUR_MS: i64 = 3_600_000;

impl KeyUse {
    /// The hour to write for `principal_id` at `now`, if its last written hour is older.
    fn due(&self, row: &PrincipalRow, now: Timestamp) -> Option<i64> {
        let hour = now.0 - now.0.rem_euclid(HOUR_MS);
        let mut seen = self.0.lock().ok()?;
        let last = seen
            .get(&row.principal_id)
            .copied()
            .or(row.last_used_at)
            .unwrap_or(i64::MIN);
        if last >= hour {
            return None;
        }
        seen.insert(row.principal_id.clone(), hour);
        Some(hour)
    }
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

/// An API key's expiry as a request gives it (RFC 3339), if any.
pub fn parse_expiry(text: Option<&str>) -> Result<Option<Timestamp>, VaultError> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).ok_or_else(|| {
            VaultError::bad_request(
                "invalid_expires_at",
                "expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z",
            )
            .with_field("expires_at")
        })
    })
    .transpose()
}

/// Refuses an expiry that is not in the future.
fn check_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> Result<(), VaultError> {
    match expires_at {
        Some(at) if at <= now => Err(VaultError::unprocessable(
            "expiry_in_the_past",
            "expires_at must be in the future",
        )
        .with_field("expires_at")),
        _ => Ok(()),
    }
}

/// A new principal row and its key.
pub(crate) fn new_principal(
    name: &str,
    roles: Vec<String>,
    now: Timestamp,
    expires_at: Option<Timestamp>,
    created_by: Option<&str>,
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
        expires_at: expires_at.map(|t| t.0),
        last_used_at: None,
        created_by: created_by.map(str::to_owned),
        client_cert: None,
        seal: None,
    };
    Ok((row, key))
}

/// Refuses a change to a principal whose row does not carry the vault's seal (written or
/// changed in the database by hand): a rotation or a certificate would seal it anew.
fn altered(target: Option<&PrincipalRow>, seal: &crate::keys::AccessSeal) -> Result<(), VaultError> {
    match target {
        Some(row) if !seal.holds(row) => Err(VaultError::new(
            crate::ErrorKind::Conflict,
            "principal_altered",
            "this principal's row was written or changed in the database outside the vault; it is refused until an administrator has looked (revoke it)",
        )),
        _ => Ok(()),
    }
}

/// Principal management: authentication, creation, listing, revocation.
impl Vault {
    /// Authenticates a bearer token at `now` (an expired key is refused) on a connection
    /// without a client certificate.
    pub async fn authenticate(&self, token: &str, now: Timestamp) -> Result<Principal, VaultError> {
        self.authenticate_over(token, now, None).await
    }

    /// Authenticates a bearer token at `now` on a connection that presented the client
    /// certificate whose SHA-256 is `client_cert` (mTLS), if any: a key bound to a certificate
    /// works only with it.
    pub async fn authenticate_over(
        &self,
        token: &str,
        now: Timestamp,
        client_cert: Option<&[u8; 32]>,
    ) -> Result<Principal, VaultError> {
        self.accepting_access()?;
        if token.starts_with("css_") {
            return self.authenticate_session(token, now).await;
        }
        let (key_id, secret) = split_token(token).ok_or_else(|| VaultError::unauthenticated("malformed API key"))?;
        let row = match self.caches.principals.get(key_id) {
            Some(row) => row,
            None => {
                let generation = self.caches.principals.generation();
                let row = self
                    .store
                    .reader()
                    .await?
                    .principals()
                    .by_key_id(key_id)
                    .await?
                    .ok_or_else(|| VaultError::unauthenticated("invalid API key"))?;
                if !self.keys.access_seal.holds(&row) {
                    tracing::error!(
                        principal = %row.principal_id,
                        "a principal's row does not carry the vault's seal: it was written or changed in the database by hand; its key is refused"
                    );
                    return Err(VaultError::unauthenticated("invalid API key"));
                }
                self.caches.principals.put(key_id, generation, row.clone());
                row
            }
        };
        let principal = verify(&row, secret, now, client_cert)?;
        if let Some(hour) = self.key_use.due(&row, now) {
            let id = row.principal_id.clone();
            // Best effort: a key's last use is for access reviews, not for authentication.
            if let Err(e) = self
                .store
                .write(move |mut tx| Box::pin(async move { tx.principals().touch(&id, hour).await }))
                .await
            {
                tracing::warn!(error = %e, "could not note an API key's last use");
            }
        }
        Ok(principal)
    }

    /// Creates a principal with `roles` and returns its id and API key (shown once); the key
    /// stops working at `expires_at`, if given.
    pub async fn create_principal(
        &self,
        caller: &Principal,
        now: Timestamp,
        name: &str,
        roles: &[String],
        expires_at: Option<Timestamp>,
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        let event = AuditEvent::new("principal.create", caller).fields(roles);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManagePrincipals)?;
            // Unknown roles are refused by `add_principal` (422); known ones must be grantable.
            for role in roles.iter().filter(|r| self.registry.role(r).is_some()) {
                gate::require_grantable(&self.policies, caller, role)?;
            }
            Ok(Allowed::Written(
                self.add_principal(now, name, roles, expires_at, Some(&allow), Some(&caller.id))
                    .await?,
            ))
        })
        .await
    }

    /// Creates a principal without an authenticated caller: for `custodia init` and other
    /// operator commands run on the server's own machine.
    pub async fn insert_principal(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        self.add_principal(now, name, roles, None, None, None).await
    }

    /// Validates and stores a principal, with its audit entry in the same transaction.
    async fn add_principal(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
        expires_at: Option<Timestamp>,
        audit: Option<&AuditRow>,
        created_by: Option<&str>,
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        check_name(name)?;
        check_expiry(expires_at, now)?;
        if roles.is_empty() {
            return Err(VaultError::bad_request(
                "no_roles",
                "a principal needs at least one role",
            ));
        }
        for role in roles {
            if self.registry.role(role).is_none() {
                let known: Vec<&str> = self.registry.roles.keys().map(String::as_str).collect();
                return Err(VaultError::unprocessable(
                    "unknown_role",
                    format!(
                        "no role {} in the registry; roles: {}",
                        crate::error::quoted_name(role, false),
                        known.join(", ")
                    ),
                )
                .with_field("roles"));
            }
        }
        let mut unique = roles.to_vec();
        unique.sort();
        unique.dedup();
        let (mut row, key) = new_principal(name, unique, now, expires_at, created_by)?;
        row.seal = Some(self.keys.access_seal.of(&row));
        let (stored, audit) = (row.clone(), audit.cloned());
        let seal = Arc::clone(&self.keys.access_seal);
        let inserted = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.principals().insert(&stored, &*seal).await?;
                    tx.audit().append(audit.as_slice()).await
                })
            })
            .await;
        inserted.map_err(|e| match e {
            custodia_store::StoreError::Conflict(_) => VaultError::new(
                crate::ErrorKind::Conflict,
                "principal_exists",
                format!("a principal named `{name}` already exists"),
            ),
            other => other.into(),
        })?;
        Ok((row.principal_id, key.token))
    }

    /// Every principal (never their keys).
    pub async fn list_principals(&self, caller: &Principal, now: Timestamp) -> Result<Vec<PrincipalInfo>, VaultError> {
        let event = AuditEvent::new("principal.list", caller);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManagePrincipals)?;
            Ok(Allowed::Read(self.principal_infos().await?, None))
        })
        .await
    }

    async fn principal_infos(&self) -> Result<Vec<PrincipalInfo>, VaultError> {
        Ok(self
            .store
            .reader()
            .await?
            .principals()
            .all()
            .await?
            .into_iter()
            .map(|p| PrincipalInfo {
                altered: !self.keys.access_seal.holds(&p),
                principal_id: p.principal_id,
                name: p.name,
                roles: p.roles,
                created_at: Timestamp(p.created_at).to_rfc3339(),
                revoked_at: p.revoked_at.map(|t| Timestamp(t).to_rfc3339()),
                expires_at: p.expires_at.map(|t| Timestamp(t).to_rfc3339()),
                last_used_at: p.last_used_at.map(|t| Timestamp(t).to_rfc3339()),
                created_by: p.created_by,
                client_cert_sha256: p.client_cert.as_deref().map(hex::encode),
            })
            .collect())
    }

    /// Binds principal `principal_id`'s key to a client certificate (`sha256_hex`: SHA-256 of
    /// its DER, 64 hex digits): from then on the key works only over TLS with that certificate.
    /// Needs `manage_principals` and `grant` on each of the principal's roles.
    pub async fn bind_client_cert(
        &self,
        caller: &Principal,
        now: Timestamp,
        principal_id: &str,
        sha256_hex: &str,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("principal.bind_cert", caller).fields([&crate::error::shown(principal_id)]);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManagePrincipals)?;
            if principal_id == caller.id {
                // Bound, the key is refused on every connection without that certificate,
                // this one included: another key with manage_principals binds it.
                return Err(VaultError::unprocessable(
                    "own_key",
                    "a key cannot bind a certificate to itself; another key with manage_principals can",
                )
                .into());
            }
            let target = self.store.reader().await?.principals().by_id(principal_id).await?;
            for role in target.iter().flat_map(|t| &t.roles) {
                gate::require_grantable(&self.policies, caller, role)?;
            }
            let digest = hex::decode(sha256_hex.trim())
                .ok()
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    VaultError::bad_request(
                        "invalid_certificate_digest",
                        "sha256 must be the certificate's SHA-256 (of its DER form) in 64 hex digits",
                    )
                    .with_field("sha256")
                })?;
            altered(target.as_ref(), &self.keys.access_seal)?;
            let id = principal_id.to_owned();
            let seal = Arc::clone(&self.keys.access_seal);
            let bound = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        let bound = tx.principals().bind_client_cert(&id, &digest).await?;
                        if bound {
                            crate::keys::reseal_principal(&mut tx, &seal, &id).await?;
                            tx.audit().append(&[allow]).await?;
                        }
                        Ok(bound)
                    })
                })
                .await?;
            self.caches.forget_principal(principal_id);
            if bound {
                Ok(Allowed::Written(()))
            } else {
                Err(VaultError::not_found("principal_not_found", "no active principal with that id").into())
            }
        })
        .await
    }

    /// Revokes a principal's API key at once.
    pub async fn revoke_principal(
        &self,
        caller: &Principal,
        now: Timestamp,
        principal_id: &str,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("principal.revoke", caller).fields([&crate::error::shown(principal_id)]);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            self.revoke(caller, now, principal_id, allow).await?;
            Ok(Allowed::Written(()))
        })
        .await
    }

    /// Gives a principal a new API key (shown once) and makes its old key stop working at
    /// once, on every node. `id` is a principal id (`prn_...`) or the key id of its current
    /// key (the 16 hex digits after `cst_`). Needs `manage_principals`, and for another
    /// principal's key `grant` on each of its roles (as revoking does): a new key of a role is
    /// that role's powers handed out. The new key expires at `expires_at` if given, else never.
    pub async fn rotate_key(
        &self,
        caller: &Principal,
        now: Timestamp,
        id: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        let event = AuditEvent::new("principal.rotate", caller).fields([&crate::error::shown(id)]);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            Ok(Allowed::Written(self.rotate(caller, now, id, expires_at, allow).await?))
        })
        .await
    }

    async fn rotate(
        &self,
        caller: &Principal,
        now: Timestamp,
        id: &str,
        expires_at: Option<Timestamp>,
        allow: AuditRow,
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        let not_found = || VaultError::not_found("principal_not_found", "no active principal with that id");
        let mut reader = self.store.reader().await?;
        let target = if id.starts_with("prn_") {
            reader.principals().by_id(id).await?
        } else {
            reader.principals().by_key_id(id).await?
        };
        drop(reader);
        let target = target.filter(|t| t.revoked_at.is_none());
        gate::require(&self.policies, caller, Capability::ManagePrincipals)?;
        for role in target
            .iter()
            .filter(|t| t.principal_id != caller.id)
            .flat_map(|t| &t.roles)
        {
            gate::require_grantable(&self.policies, caller, role)?;
        }
        let target = target.ok_or_else(not_found)?;
        altered(Some(&target), &self.keys.access_seal)?;
        check_expiry(expires_at, now)?;
        // A key rotating itself never extends its life (else a key could renew itself past
        // what its grantor set); whoever may grant its roles (checked above) sets the new
        // key's expiry, later too: that is how a service key is renewed, and they could make
        // a new principal of those roles all the same. No expiry asked: the key keeps its own.
        let expires_at = match (target.expires_at, expires_at) {
            (Some(current), Some(asked)) if target.principal_id == caller.id && asked.0 > current => {
                return Err(VaultError::unprocessable(
                    "expiry_not_extended",
                    format!(
                        "a key cannot extend its own life (it expires at {}): a principal that may grant its roles rotates it with a later expiry",
                        Timestamp(current).to_rfc3339()
                    ),
                )
                .with_field("expires_at"));
            }
            (Some(current), None) => Some(Timestamp(current)),
            (_, asked) => asked,
        };
        let key = issue_key()?;
        let principal_id = target.principal_id;
        let (stored_id, key_id, key_hash) = (principal_id.clone(), key.key_id.clone(), key.secret_hash.clone());
        // Whoever rotates another principal's key holds the new one: it is theirs, as a key
        // they created would be (an operator may not attest their training with it).
        let issued_by = (principal_id != caller.id).then(|| caller.id.clone());
        let seal = Arc::clone(&self.keys.access_seal);
        let rotated = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let rotated = tx
                        .principals()
                        .rotate(
                            &stored_id,
                            &key_id,
                            &key_hash,
                            expires_at.map(|t| t.0),
                            issued_by.as_deref(),
                        )
                        .await?;
                    if rotated {
                        crate::keys::reseal_principal(&mut tx, &seal, &stored_id).await?;
                        tx.audit().append(&[allow]).await?;
                    }
                    Ok(rotated)
                })
            })
            .await?;
        self.caches.forget_principal(&principal_id);
        if rotated {
            Ok((principal_id, key.token))
        } else {
            Err(not_found())
        }
    }

    async fn revoke(
        &self,
        caller: &Principal,
        now: Timestamp,
        principal_id: &str,
        allow: AuditRow,
    ) -> Result<(), VaultError> {
        gate::require(&self.policies, caller, Capability::ManagePrincipals)?;
        if caller.id == principal_id {
            // An administrator locking themselves (perhaps the last one) out helps no one.
            return Err(VaultError::new(
                crate::ErrorKind::Conflict,
                "cannot_revoke_self",
                "a principal cannot revoke its own key; ask another administrator",
            ));
        }
        // Revoking is granting undone: the target's every role must be one the caller may grant.
        // (A principal's roles never change, so reading them before the write is exact.)
        let target = self.store.reader().await?.principals().by_id(principal_id).await?;
        if let Some(target) = &target {
            for role in &target.roles {
                gate::require_grantable(&self.policies, caller, role)?;
            }
        }
        let id = principal_id.to_owned();
        let seal = Arc::clone(&self.keys.access_seal);
        let revoked = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let revoked = tx.principals().revoke(&id, now.0).await?;
                    if revoked {
                        crate::keys::reseal_principal(&mut tx, &seal, &id).await?;
                        tx.audit().append(&[allow]).await?;
                    }
                    Ok(revoked)
                })
            })
            .await?;
        if revoked {
            self.caches.forget_principal(principal_id);
            Ok(())
        } else {
            Err(VaultError::not_found(
                "principal_not_found",
                "no active principal with that id",
            ))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An administrator (the example registry's `admin` role), as tests call the vault.
    pub(crate) fn admin() -> Principal {
        Principal {
            id: "prn_admin".into(),
            name: "admin".into(),
            roles: vec!["admin".into()],
            context: BTreeMap::new(),
            operator: None,
        }
    }

    #[test]
    fn issued_keys_verify_and_others_do_not() {
        let (row, key) = new_principal("svc", vec!["admin".into()], Timestamp(1), None, None).unwrap();
        let (id, secret) = split_token(&key.token).unwrap();
        assert_eq!(id, row.key_id);
        assert_eq!(verify(&row, secret, Timestamp(2), None).unwrap().name, "svc");
        let mut wrong = secret.to_owned();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert!(verify(&row, &wrong, Timestamp(2), None).is_err());
        let revoked = PrincipalRow {
            revoked_at: Some(2),
            ..row.clone()
        };
        assert!(verify(&revoked, secret, Timestamp(2), None).is_err());
        // An expiring key works until its expiry, and not from then on.
        let expiring = PrincipalRow {
            expires_at: Some(1000),
            ..row
        };
        assert!(verify(&expiring, secret, Timestamp(999), None).is_ok());
        // A key bound to a client certificate works only with that certificate.
        let bound = PrincipalRow {
            client_cert: Some(vec![7; 32]),
            ..expiring.clone()
        };
        assert!(verify(&bound, secret, Timestamp(2), None).is_err());
        assert!(verify(&bound, secret, Timestamp(2), Some(&[8; 32])).is_err());
        assert!(verify(&bound, secret, Timestamp(2), Some(&[7; 32])).is_ok());
        let err = verify(&expiring, secret, Timestamp(1000), None).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Unauthenticated);
        assert!(err.message.contains("expired"), "{}", err.message);
    }

    #[test]
    fn malformed_tokens() {
        for bad in ["", "cst_", "Bearer x", "cst_abc_def", "cst_0123456789abcdef_zz"] {
            assert!(split_token(bad).is_none(), "{bad}");
        }
    }
}
