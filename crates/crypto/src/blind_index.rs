//! Keyed digests under the index key: blind indexes for equality search over encrypted
//! fields, and the vault's internal keyed digests (audit subject, ledger IP hash,
//! deterministic tokens).
//!
//! `digest = HMAC-SHA256(HKDF-SHA256(index key, salt, info(domain)), value)`, truncated to
//! 16 bytes, where the salt is `custodia.blind-index.v1` and the HKDF `info` names the
//! [`Domain`]:
//!
//! | domain                                   | info                                        |
//! |------------------------------------------|---------------------------------------------|
//! | blind index of `collection.field`        | `collection \0 field`                       |
//! | audit entry subject                      | `custodia:audit-subject`                    |
//! | consent ledger evidence IP               | `custodia:ledger-ip`                        |
//! | deterministic token block `counter`      | `custodia:token:collection:field:counter`   |
//! | a token's stored name (any field)        | `custodia:token-name`                       |
//! | the value a deterministic token binds    | `custodia:token-value:collection:field`     |
//! | key of `Custodia-Context` signer `name`  | `custodia:context-signer:name`              |
//! | Art. 19 webhook secret of recipient `name` | `custodia:webhook-secret:name`            |
//!
//! A context signer's key and a recipient's webhook secret are the derived HMAC key itself
//! ([`BlindIndexer::derived_key`]), handed to the system that signs or verifies; every other
//! domain's key never leaves the vault.
//!
//! The per-field key means equal values in two fields do not share an index, and the index
//! key is separate from every data key, so erasing a subject does not need to touch it. The
//! field info is the one v0.1 used, so indexes written before stay searchable.
//!
//! # Disjointness
//!
//! No two domains derive the same HMAC key (the HKDF infos differ), so no digest of one
//! domain can be replayed or matched as a digest of another:
//!
//! - Collection and field names are registry names, `[a-z][a-z0-9_]{0,62}` (checked again
//!   here before a key is derived: [`CryptoError::InvalidDomain`] otherwise). They contain
//!   neither `\0` nor `:`.
//! - Every field info contains exactly one `\0`; no internal info contains a `\0` (their
//!   parts are fixed text, registry names and a decimal counter). So no field info equals an
//!   internal info, whatever the names, and in particular a registry that declares a field
//!   `subject` in a collection `audit` gets the info `audit\0subject`, not the audit
//!   subject's.
//! - Two field infos are equal only for the same (collection, field): the `\0` splits the
//!   info uniquely since names have none.
//! - Internal infos all start with `custodia:`; what follows the prefix is `audit-subject`,
//!   `ledger-ip`, `token-name` (fixed, and containing no `:`), `token:` followed by three
//!   `:`-separated parts, or `token-value:` followed by two. Split at `:`, a token info has
//!   five parts, a token value info four and the fixed ones two, and names have no `:`, so
//!   equal token infos have equal collection, field and counter, and equal token value infos
//!   equal collection and field.
//!   A context signer info has three parts, the second `context-signer`, and the third a
//!   registry name (checked), so it equals no other info and two are equal only for the
//!   same signer. A webhook secret info is the same with `webhook-secret` as its second
//!   part, so it equals neither a context signer's nor any other.
//!
//! The test `infos_are_disjoint` checks these properties over adversarial names.

use std::collections::HashMap;
use std::sync::RwLock;

use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;

use crate::{CryptoError, Keyring, SecretKey, WrappedKey};

/// Bytes kept of each HMAC: 128 bits makes accidental collisions negligible.
pub const BLIND_INDEX_LEN: usize = 16;
const INDEX_KEY_LABEL: &str = "custodia.index-key.v1";
const HKDF_SALT: &[u8] = b"custodia.blind-index.v1";

/// What a keyed digest is for. Each domain derives its own HMAC key from the index key; see
/// the module documentation for the HKDF infos and why no two domains share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain<'a> {
    /// The blind index of a searchable registry field (v0.1's only domain; unchanged).
    Field { collection: &'a str, field: &'a str },
    /// The subject of an audit entry (stored as a keyed HMAC, never in clear).
    AuditSubject,
    /// The IP address in consent ledger evidence.
    LedgerIp,
    /// Block `counter` of the keyed byte stream a deterministic token is drawn from.
    DeterministicToken {
        collection: &'a str,
        field: &'a str,
        counter: u32,
    },
    /// The name a token is stored under (the token itself is not stored): one domain for
    /// every field, since a token is looked up without its field.
    TokenName,
    /// The value a deterministic token of `collection.field` stands for, stored beside the
    /// token so that a token derived for another value is recognised as taken.
    TokenValue { collection: &'a str, field: &'a str },
    /// The key a system named in the registry's `[context_signers]` signs
    /// `Custodia-Context` assertions with.
    ContextSigner { signer: &'a str },
    /// The secret Art. 19 notifications to registry recipient `recipient` are signed with
    /// (HMAC-SHA256), which the recipient holds to verify them.
    WebhookSecret { recipient: &'a str },
    /// The key preference center links are sealed with (AES-256-GCM): a link names its
    /// subject and expiry, readable and forgeable only with this key.
    PortalLink,
    /// The CSRF token of a preference center link's forms, a digest of the link's id.
    PortalCsrf,
    /// The key operators' TOTP secrets are sealed with (AES-256-GCM) before they are stored.
    OperatorTotp,
    /// The secret alerts to `[operators] alert_webhook` are signed with (HMAC-SHA256).
    AlertSecret,
    /// The key what incident responders write (titles, descriptions, timelines) is sealed
    /// with (AES-256-GCM) before it is stored: a breach record may name people.
    IncidentText,
}

/// Whether `name` is a registry name: `[a-z][a-z0-9_]{0,62}` (see `custodia-registry`).
fn is_registry_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

impl Domain<'_> {
    /// The HKDF info of this domain. Fails when a collection or field is not a registry name
    /// (the disjointness argument depends on it).
    fn info(&self) -> Result<Vec<u8>, CryptoError> {
        let names = |collection: &str, field: &str| {
            if is_registry_name(collection) && is_registry_name(field) {
                Ok(())
            } else {
                Err(CryptoError::InvalidDomain)
            }
        };
        Ok(match *self {
            Self::Field { collection, field } => {
                names(collection, field)?;
                [collection.as_bytes(), b"\0", field.as_bytes()].concat()
            }
            Self::AuditSubject => b"custodia:audit-subject".to_vec(),
            Self::LedgerIp => b"custodia:ledger-ip".to_vec(),
            Self::DeterministicToken {
                collection,
                field,
                counter,
            } => {
                names(collection, field)?;
                format!("custodia:token:{collection}:{field}:{counter}").into_bytes()
            }
            Self::TokenName => b"custodia:token-name".to_vec(),
            Self::TokenValue { collection, field } => {
                names(collection, field)?;
                format!("custodia:token-value:{collection}:{field}").into_bytes()
            }
            Self::ContextSigner { signer } => {
                if !is_registry_name(signer) {
                    return Err(CryptoError::InvalidDomain);
                }
                format!("custodia:context-signer:{signer}").into_bytes()
            }
            Self::WebhookSecret { recipient } => {
                if !is_registry_name(recipient) {
                    return Err(CryptoError::InvalidDomain);
                }
                format!("custodia:webhook-secret:{recipient}").into_bytes()
            }
            Self::PortalLink => b"custodia:portal-link".to_vec(),
            Self::PortalCsrf => b"custodia:portal-csrf".to_vec(),
            Self::OperatorTotp => b"custodia:operator-totp".to_vec(),
            Self::AlertSecret => b"custodia:alert-secret".to_vec(),
            Self::IncidentText => b"custodia:incident-text".to_vec(),
        })
    }
}

/// The index root key. Stored wrapped by the root key.
pub struct IndexKey(SecretKey);

impl IndexKey {
    /// A fresh random index key and its wrapped form.
    pub fn generate(keyring: &Keyring) -> Result<(Self, WrappedKey), CryptoError> {
        let secret = SecretKey::generate()?;
        let wrapped = keyring.wrap(INDEX_KEY_LABEL, b"", &secret)?;
        Ok((Self(secret), wrapped))
    }

    /// Unwraps a stored index key. Fails when the root key is not the one that wrapped it.
    pub fn unwrap(keyring: &Keyring, wrapped: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(keyring.unwrap(INDEX_KEY_LABEL, b"", wrapped)?))
    }

    /// A stored index key wrapped again under the keyring's current version.
    pub fn rewrap(keyring: &Keyring, wrapped: &[u8]) -> Result<WrappedKey, CryptoError> {
        keyring.rewrap(INDEX_KEY_LABEL, b"", wrapped)
    }

    /// From raw bytes (tests and known-answer vectors).
    #[must_use]
    pub fn from_secret(secret: SecretKey) -> Self {
        Self(secret)
    }
}

/// Computes keyed digests, caching each domain's derived HMAC key.
pub struct BlindIndexer {
    key: IndexKey,
    domain_keys: RwLock<HashMap<Vec<u8>, hmac::Key>>,
}

impl BlindIndexer {
    #[must_use]
    pub fn new(key: IndexKey) -> Self {
        Self {
            key,
            domain_keys: RwLock::new(HashMap::new()),
        }
    }

    fn derive(&self, info: &[u8]) -> Result<hmac::Key, CryptoError> {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(self.key.0.expose());
        let info = [info];
        let okm = prk
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| CryptoError::Primitive)?;
        Ok(hmac::Key::from(okm))
    }

    /// The HMAC-SHA256 key of `domain` itself (32 bytes), for a key that is handed out: a
    /// context signer's or a recipient's webhook secret. The same key [`BlindIndexer::digest`]
    /// would use in that domain.
    pub fn derived_key(&self, domain: Domain<'_>) -> Result<SecretKey, CryptoError> {
        let info = domain.info()?;
        let info = [info.as_slice()];
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(self.key.0.expose());
        let okm = prk.expand(&info, HKDF_SHA256).map_err(|_| CryptoError::Primitive)?;
        let mut out = [0u8; 32];
        okm.fill(&mut out).map_err(|_| CryptoError::Primitive)?;
        let key = SecretKey::from_slice(&out);
        zeroize::Zeroize::zeroize(&mut out);
        key
    }

    /// The keyed digest of `value` in `domain` (for [`Domain::Field`], `value` is the
    /// already normalized index form of the field's value).
    pub fn digest(&self, domain: Domain<'_>, value: &str) -> Result<[u8; BLIND_INDEX_LEN], CryptoError> {
        let info = domain.info()?;
        let tag = {
            let cache = self.domain_keys.read().map_err(|_| CryptoError::Primitive)?;
            cache.get(&info).map(|k| hmac::sign(k, value.as_bytes()))
        };
        let tag = match tag {
            Some(tag) => tag,
            None => {
                let key = self.derive(&info)?;
                let tag = hmac::sign(&key, value.as_bytes());
                self.domain_keys
                    .write()
                    .map_err(|_| CryptoError::Primitive)?
                    .insert(info, key);
                tag
            }
        };
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&tag.as_ref()[..BLIND_INDEX_LEN]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexer(byte: u8) -> BlindIndexer {
        BlindIndexer::new(IndexKey::from_secret(SecretKey::from_slice(&[byte; 32]).unwrap()))
    }

    fn field<'a>(collection: &'a str, field: &'a str) -> Domain<'a> {
        Domain::Field { collection, field }
    }

    fn hex_digest(domain: Domain<'_>, value: &str) -> String {
        hex::encode(indexer(0x01).digest(domain, value).unwrap())
    }

    /// Pins every domain's digest for the index key `[0x01; 32]`, so that a change of
    /// derivation cannot pass unnoticed (a changed field digest would make existing databases
    /// unsearchable). Computed independently with Python 3's `hmac` and `hashlib`, HKDF
    /// written out per RFC 5869:
    ///
    /// ```text
    /// prk = HMAC-SHA256(key=b"custodia.blind-index.v1", msg=bytes([1]*32))
    /// okm = HMAC-SHA256(key=prk, msg=info + b"\x01")          # 32 bytes, one block
    /// hex(HMAC-SHA256(key=okm, msg=value.encode())[:16])
    /// ```
    #[test]
    fn known_answers() {
        // The v0.1 vector: the field derivation is unchanged.
        assert_eq!(
            hex_digest(field("customers", "email"), "alice@example.com"),
            "362fdc02162a6431afbb4e604151ae7f"
        );
        // info b"audit\0subject": what v0.1 wrote as the audit subject (the legacy digest).
        assert_eq!(
            hex_digest(field("audit", "subject"), "cus_123"),
            "8db266054af9dce2b8eea038f846a863"
        );
        // info b"custodia:audit-subject"
        assert_eq!(
            hex_digest(Domain::AuditSubject, "cus_123"),
            "80d6d9c7c52beb46069a715c73b90a23"
        );
        // info b"custodia:ledger-ip"
        assert_eq!(
            hex_digest(Domain::LedgerIp, "203.0.113.7"),
            "491a6b0234b3bc2cb0dbcd2d1b462751"
        );
        // info b"custodia:token:customers:email:0"
        let token = Domain::DeterministicToken {
            collection: "customers",
            field: "email",
            counter: 0,
        };
        assert_eq!(
            hex_digest(token, "alice@example.com"),
            "bcbd505399d8fa1eb965f4a77a9cdf80"
        );
        // info b"custodia:token-name"
        assert_eq!(
            hex_digest(Domain::TokenName, "Xqvbmrtkelzpdawn"),
            "88f703a81ee68a3d2dc04dbff68faff3"
        );
        // info b"custodia:token-value:customers:email"
        let value = Domain::TokenValue {
            collection: "customers",
            field: "email",
        };
        assert_eq!(
            hex_digest(value, "alice@example.com"),
            "298a39b181d30927e5c9eb6e9a71624a"
        );
    }

    /// A context signer's handed-out key is the HMAC key of its domain, and refuses names
    /// outside the registry's grammar.
    #[test]
    fn a_derived_key_is_its_domains_hmac_key() {
        let a = indexer(1);
        let domain = Domain::ContextSigner { signer: "ticketing" };
        let key = a.derived_key(domain).unwrap();
        let by_hand = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.expose()), b"v");
        assert_eq!(&by_hand.as_ref()[..BLIND_INDEX_LEN], a.digest(domain, "v").unwrap());
        let other = a.derived_key(Domain::ContextSigner { signer: "billing" }).unwrap();
        assert_ne!(key.expose(), other.expose());
        assert!(matches!(
            a.derived_key(Domain::ContextSigner { signer: "a:b" }),
            Err(CryptoError::InvalidDomain)
        ));
        let secret = a.derived_key(Domain::WebhookSecret { recipient: "ticketing" }).unwrap();
        assert_ne!(
            key.expose(),
            secret.expose(),
            "a recipient named like a signer gets another key"
        );
        assert!(matches!(
            a.derived_key(Domain::WebhookSecret { recipient: "a:b" }),
            Err(CryptoError::InvalidDomain)
        ));
    }

    /// Pins the handed-out keys for the index key `[0x01; 32]` (computed as in
    /// [`known_answers`], the key being `okm` itself).
    #[test]
    fn derived_key_known_answers() {
        let a = indexer(0x01);
        let hex_key = |domain| hex::encode(a.derived_key(domain).unwrap().expose());
        // info b"custodia:context-signer:ticketing"
        assert_eq!(
            hex_key(Domain::ContextSigner { signer: "ticketing" }),
            "1f01493027bee2cfd11f0f8cf481715a74395b690908d4ac579d009f47ec3536"
        );
        // info b"custodia:webhook-secret:parcel_carrier"
        assert_eq!(
            hex_key(Domain::WebhookSecret {
                recipient: "parcel_carrier"
            }),
            "0a8a3d24a4a5393c731e13e417c83de7f2984b7270a3b24e5e6750a7dfd69ef5"
        );
    }

    /// The internal domains never meet a field's, even one a registry names after them.
    #[test]
    fn internal_domains_differ_from_any_field() {
        let a = indexer(1);
        let id = "cus_123";
        let subject = a.digest(Domain::AuditSubject, id).unwrap();
        assert_ne!(subject, a.digest(field("audit", "subject"), id).unwrap());
        assert_ne!(subject, a.digest(Domain::LedgerIp, id).unwrap());
        let ip = "203.0.113.7";
        assert_ne!(
            a.digest(Domain::LedgerIp, ip).unwrap(),
            a.digest(field("ledger", "ip"), ip).unwrap()
        );
        let token = Domain::DeterministicToken {
            collection: "customers",
            field: "email",
            counter: 0,
        };
        assert_ne!(
            a.digest(token, "x").unwrap(),
            a.digest(field("customers", "email"), "x").unwrap()
        );
    }

    /// The HKDF infos are pairwise distinct over names chosen to collide if separators or
    /// prefixes were missing (see "Disjointness" in the module documentation).
    #[test]
    fn infos_are_disjoint() {
        let names = [
            "a", "a_", "a0", "audit", "subject", "ledger", "ip", "custodia", "token", "t0",
        ];
        let mut domains = vec![
            Domain::AuditSubject,
            Domain::LedgerIp,
            Domain::TokenName,
            Domain::PortalLink,
            Domain::PortalCsrf,
            Domain::OperatorTotp,
            Domain::AlertSecret,
            Domain::IncidentText,
        ];
        for signer in names {
            domains.push(Domain::ContextSigner { signer });
            domains.push(Domain::WebhookSecret { recipient: signer });
        }
        for c in names {
            for f in names {
                domains.push(field(c, f));
                domains.push(Domain::TokenValue {
                    collection: c,
                    field: f,
                });
                for counter in [0, 1, 10] {
                    domains.push(Domain::DeterministicToken {
                        collection: c,
                        field: f,
                        counter,
                    });
                }
            }
        }
        let mut seen = HashMap::new();
        for d in &domains {
            let info = d.info().unwrap();
            let internal = !matches!(d, Domain::Field { .. });
            assert_eq!(
                info.iter().filter(|&&b| b == 0).count(),
                usize::from(!internal),
                "{d:?}: a field info has one NUL, an internal one none"
            );
            assert_eq!(internal, info.starts_with(b"custodia:"), "{d:?}");
            if let Some(other) = seen.insert(info, *d) {
                panic!("{d:?} and {other:?} share an HKDF info");
            }
        }
    }

    /// Names outside the registry's grammar cannot reach the derivation.
    #[test]
    fn non_registry_names_are_refused() {
        let a = indexer(1);
        for (c, f) in [
            ("audit", "sub\0ject"),
            ("customers", "token/email/0"),
            ("", "f"),
            ("c", "a:b"),
            ("C", "f"),
        ] {
            assert!(
                matches!(a.digest(field(c, f), "v"), Err(CryptoError::InvalidDomain)),
                "{c:?}.{f:?}"
            );
            let token = Domain::DeterministicToken {
                collection: c,
                field: f,
                counter: 0,
            };
            assert!(
                matches!(a.digest(token, "v"), Err(CryptoError::InvalidDomain)),
                "{c:?}.{f:?}"
            );
            let value = Domain::TokenValue {
                collection: c,
                field: f,
            };
            assert!(
                matches!(a.digest(value, "v"), Err(CryptoError::InvalidDomain)),
                "{c:?}.{f:?}"
            );
        }
        let long = "a".repeat(64);
        assert!(a.digest(field(&long, "f"), "v").is_err());
        assert!(a.digest(field(&long[..63], "f"), "v").is_ok());
    }

    #[test]
    fn deterministic_per_field_and_key() {
        let a = indexer(1);
        let d = |c, f, v| a.digest(field(c, f), v).unwrap();
        let x = d("customers", "email", "a@b.co");
        assert_eq!(x, d("customers", "email", "a@b.co"), "cached key gives the same digest");
        assert_ne!(x, d("customers", "phone", "a@b.co"), "fields have separate keys");
        assert_ne!(x, d("orders", "email", "a@b.co"), "collections have separate keys");
        assert_ne!(
            x,
            indexer(2).digest(field("customers", "email"), "a@b.co").unwrap(),
            "index key matters"
        );
        assert_ne!(x, d("customers", "email", "a@b.cO"));
    }

    #[test]
    fn index_key_wraps() {
        let ring = Keyring::from_keys(vec![(1, SecretKey::generate().unwrap())]).unwrap();
        let (key, wrapped) = IndexKey::generate(&ring).unwrap();
        let before = BlindIndexer::new(key).digest(field("c", "f"), "v").unwrap();
        let after = BlindIndexer::new(IndexKey::unwrap(&ring, &wrapped.0).unwrap())
            .digest(field("c", "f"), "v")
            .unwrap();
        assert_eq!(before, after);
    }
}
