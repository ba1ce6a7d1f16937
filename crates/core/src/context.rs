//! `Custodia-Context`: facts about a request (an open ticket, say) that Cedar policies test.
//! A fact restricts the caller that states it, so it is accepted only from a role the
//! registry trusts to state it (`assert_context`), or signed by the system that knows it: a
//! `[context_signers]` entry of the registry, with a key derived for it by name from the
//! index key (`custodia context-key <signer>` prints it), over the context, the time and
//! the request's subject. Anything else is refused (403 `context_not_allowed`, audited).
//!
//! ```text
//! Custodia-Context: {"open_ticket": true}
//! Custodia-Context-Signature: signer=ticketing, t=<unix seconds>, sig=<hex>
//! sig = HMAC-SHA256(key, "custodia-context-v1\n" + t + "\n" + subject_id + "\n" + context)
//! ```
//!
//! `context` is the header's text exactly as sent; a signature is good from
//! [`MAX_CONTEXT_AHEAD_SECS`] before its time to [`MAX_CONTEXT_SKEW_SECS`] after it (by the
//! server's clock), and only on a route with that subject in its path. It is not bound to the
//! calling principal: within that window any key whose role the policies allow may reuse it.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use custodia_registry::{Capability, ContextType};

use crate::audit::{Allowed, AuditEvent};
use crate::error::quoted_name;
use crate::{ContextValue, Principal, SubjectId, Timestamp, Vault, VaultError, gate};

/// How far behind the server's clock a signed context's time may be.
pub const MAX_CONTEXT_SKEW_SECS: i64 = 300;
/// How far ahead of the server's clock a signature's time may be (clocks differ a little; a
/// time far ahead would stretch a signature's life past the skew window).
pub const MAX_CONTEXT_AHEAD_SECS: i64 = 30;

const SIGNATURE_LABEL: &str = "custodia-context-v1";

/// The bytes a context signature covers.
#[must_use]
pub fn context_signing_input(unix_secs: i64, subject_id: &str, context: &str) -> Vec<u8> {
    format!("{SIGNATURE_LABEL}\n{unix_secs}\n{subject_id}\n{context}").into_bytes()
}

/// A parsed `Custodia-Context-Signature` header.
struct Signature {
    signer: String,
    at: i64,
    tag: Vec<u8>,
}

fn parse_signature(header: &str) -> Result<Signature, VaultError> {
    let bad = || {
        VaultError::bad_request(
            "invalid_context_signature",
            "Custodia-Context-Signature must be `signer=<name>, t=<unix seconds>, sig=<hex HMAC-SHA256>`",
        )
    };
    let (mut signer, mut at, mut tag) = (None, None, None);
    // each key once: a second would be read one way here and maybe another by whoever signed
    let once = |slot: bool| if slot { Err(bad()) } else { Ok(()) };
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(bad)?;
        match k.trim() {
            "signer" => {
                once(signer.is_some())?;
                signer = Some(v.trim().to_owned());
            }
            "t" => {
                once(at.is_some())?;
                at = Some(v.trim().parse::<i64>().map_err(|_| bad())?);
            }
            "sig" => {
                once(tag.is_some())?;
                tag = Some(hex::decode(v.trim()).map_err(|_| bad())?);
            }
            _ => return Err(bad()),
        }
    }
    match (signer, at, tag) {
        (Some(signer), Some(at), Some(tag)) => Ok(Signature { signer, at, tag }),
        _ => Err(bad()),
    }
}

/// The start of the error a JSON object with a key given twice makes ([`UniqueKeys`]).
const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON object whose keys are each given once (serde_json keeps the last of a key given
/// twice, without a word).
struct UniqueKeys(serde_json::Map<String, serde_json::Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(DUPLICATE_KEY));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueKeys(out))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn not_allowed(message: String) -> VaultError {
    VaultError::forbidden("context_not_allowed", message)
}

impl Vault {
    /// The context a request asserts (`header`, the text of `Custodia-Context`), accepted
    /// only from a role with `assert_context` or signed (`signature`, the text of
    /// `Custodia-Context-Signature`) by a registry context signer for the request's subject
    /// (`subject`, from the route's path). Both decisions are audited.
    pub async fn accept_context(
        &self,
        principal: &Principal,
        now: Timestamp,
        header: &str,
        signature: Option<&str>,
        subject: Option<&str>,
    ) -> Result<BTreeMap<String, ContextValue>, VaultError> {
        let context = self.parse_context(header)?;
        let names: Vec<String> = context.keys().cloned().collect();
        let mut event = AuditEvent::new("context.assert", principal).fields(&names);
        if let Some(subject) = subject.and_then(|s| SubjectId::parse(s).ok()) {
            event = self.about(event, &subject)?;
        }
        self.audited(event, now, async {
            match signature {
                None => {
                    gate::require(&self.policies, principal, Capability::AssertContext).map_err(|_| {
                        not_allowed(
                            "Custodia-Context is accepted only from a role with the `assert_context` capability, \
                             or signed by a system named in the registry's [context_signers] \
                             (header Custodia-Context-Signature)"
                                .to_owned(),
                        )
                    })?;
                }
                Some(signature) => self.check_signature(&parse_signature(signature)?, now, header, subject, &names)?,
            }
            Ok(Allowed::Read(context, Some(names.clone())))
        })
        .await
    }

    fn check_signature(
        &self,
        sig: &Signature,
        now: Timestamp,
        header: &str,
        subject: Option<&str>,
        names: &[String],
    ) -> Result<(), VaultError> {
        let signer = self.registry.context_signers.get(&sig.signer).ok_or_else(|| {
            not_allowed(format!(
                "no context signer {} is named in the registry's [context_signers]",
                quoted_name(&sig.signer, false)
            ))
        })?;
        if let Some(name) = names.iter().find(|n| !signer.attributes.contains(*n)) {
            return Err(not_allowed(format!(
                "context signer `{}` may not assert `{name}`",
                signer.name
            )));
        }
        // (wide enough for any `t` a header carries: `t=-9223372036854775808` is a time like any other)
        let age = i128::from(now.0.div_euclid(1000)) - i128::from(sig.at);
        if age > i128::from(MAX_CONTEXT_SKEW_SECS) || -age > i128::from(MAX_CONTEXT_AHEAD_SECS) {
            return Err(not_allowed(format!(
                "the context signature's time is more than {MAX_CONTEXT_SKEW_SECS} s behind or {MAX_CONTEXT_AHEAD_SECS} s ahead of the server's clock"
            )));
        }
        let subject = subject.ok_or_else(|| {
            not_allowed(
                "a signed Custodia-Context is bound to a subject: it is accepted on routes with a subject in the path"
                    .to_owned(),
            )
        })?;
        let key = self.keys.context_signer(&signer.name)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
        hmac::verify(&key, &context_signing_input(sig.at, subject, header), &sig.tag).map_err(|_| {
            not_allowed(format!(
                "the context signature does not verify with signer `{}`'s key for this subject",
                signer.name
            ))
        })
    }

    /// The key (hex) registry context signer `signer` signs with, for its operator.
    pub fn context_signer_key(&self, signer: &str) -> Result<zeroize::Zeroizing<String>, VaultError> {
        if !self.registry.context_signers.contains_key(signer) {
            return Err(VaultError::not_found(
                "unknown_context_signer",
                format!(
                    "no context signer {} is named in the registry's [context_signers]",
                    quoted_name(signer, false)
                ),
            ));
        }
        let key = self.keys.context_signer(signer)?;
        Ok(zeroize::Zeroizing::new(hex::encode(key.expose())))
    }

    /// Parses a `Custodia-Context` header (a JSON object) against the registry's
    /// `[policy_context]` declarations.
    fn parse_context(&self, header: &str) -> Result<BTreeMap<String, ContextValue>, VaultError> {
        let bad = |msg: String| VaultError::bad_request("invalid_context", msg);
        // (a key given twice would mean one thing here, the last, and maybe another to whoever
        // signed it: refused)
        let object: UniqueKeys = serde_json::from_str(header).map_err(|e| {
            bad(if e.to_string().starts_with(DUPLICATE_KEY) {
                "Custodia-Context names an attribute twice".into()
            } else {
                "Custodia-Context must be a JSON object".into()
            })
        })?;
        let mut out = BTreeMap::new();
        for (name, v) in &object.0 {
            let declared = self.registry.policy_context.get(name).ok_or_else(|| {
                bad(format!(
                    "context attribute {} is not declared in the registry's [policy_context]",
                    quoted_name(name, false)
                ))
            })?;
            let parsed = match (declared, v) {
                (ContextType::Bool, serde_json::Value::Bool(b)) => ContextValue::Bool(*b),
                (ContextType::String, serde_json::Value::String(s)) if s.len() <= 256 => {
                    ContextValue::String(s.clone())
                }
                (ContextType::Long, serde_json::Value::Number(n)) if n.is_i64() => {
                    ContextValue::Long(n.as_i64().unwrap_or_default())
                }
                _ => {
                    return Err(bad(format!(
                        "context attribute `{name}` must be a {}",
                        declared.cedar_type()
                    )));
                }
            };
            out.insert(name.clone(), parsed);
        }
        Ok(out)
    }
}
