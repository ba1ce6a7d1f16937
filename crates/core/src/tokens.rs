//! Vaulted tokens: values replaced by tokens that stand for them. The token table keeps each
//! value sealed under its subject's data key (bound to the token), so erasing the subject
//! kills its tokens too. Kinds:
//! - `random`: `tok_` and 32 random hex digits;
//! - `format_preserving`: same length and character classes (digits stay digits, letters
//!   stay letters of the same case, the rest is kept), optionally the last four kept, and
//!   Luhn-valid for card numbers;
//! - `deterministic`: format-preserving, drawn from a keyed HMAC of the value, so the same
//!   value of the same field always gets the same token (tokens join across datasets).

use custodia_crypto::{DataKey, FieldContext, random_array};
use custodia_registry::{Field, FieldType};
use custodia_store::TokenRow;
use custodia_types::{DetokenizeRequest, DetokenizeResponse, DetokenizedValue, TokenizeRequest};
use zeroize::Zeroizing;

use crate::audit::{Allowed, AuditEvent, Refused};
use crate::call::Call;
use crate::{SubjectId, Timestamp, Vault, VaultError, values};

/// Most values or tokens in one request.
pub const MAX_TOKEN_BATCH: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Random,
    FormatPreserving,
    Deterministic,
}

impl TokenKind {
    fn parse(kind: Option<&str>) -> Result<Self, VaultError> {
        match kind.unwrap_or("random") {
            "random" => Ok(Self::Random),
            "format_preserving" => Ok(Self::FormatPreserving),
            "deterministic" => Ok(Self::Deterministic),
            _ => Err(VaultError::bad_request(
                "invalid_kind",
                "kind must be random, format_preserving or deterministic",
            )
            .with_field("kind")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::FormatPreserving => "format_preserving",
            Self::Deterministic => "deterministic",
        }
    }
}

/// Where a token's randomness comes from.
enum Bytes<'a> {
    Random {
        pool: [u8; 64],
        used: usize,
    },
    Keyed {
        vault: &'a Vault,
        collection: &'a str,
        field: &'a str,
        value: &'a str,
        block: [u8; 16],
        used: usize,
        counter: u32,
    },
}

impl Bytes<'_> {
    fn next(&mut self) -> Result<u8, VaultError> {
        match self {
            Self::Random { pool, used } => {
                if *used == pool.len() {
                    *pool = random_array::<64>()?;
                    *used = 0;
                }
                *used += 1;
                Ok(pool[*used - 1])
            }
            Self::Keyed {
                vault,
                collection,
                field,
                value,
                block,
                used,
                counter,
            } => {
                if *used == block.len() {
                    *block = vault.keys.token_block(collection, field, *counter, value)?;
                    *counter += 1;
                    *used = 0;
                }
                *used += 1;
                Ok(block[*used - 1])
            }
        }
    }

    /// A uniform number below `n` (n <= 26), by rejection sampling.
    fn below(&mut self, n: u8) -> Result<u8, VaultError> {
        let limit = 256 - (256 % u16::from(n));
        loop {
            let b = self.next()?;
            if u16::from(b) < limit {
                return Ok(b % n);
            }
        }
    }
}

/// A token of the same shape as `value`.
fn format_preserving(value: &str, keep_last4: bool, luhn: bool, bytes: &mut Bytes<'_>) -> Result<String, VaultError> {
    let chars: Vec<char> = value.chars().collect();
    let keep_from = if keep_last4 {
        chars.len().saturating_sub(4)
    } else {
        chars.len()
    };
    for _attempt in 0..16 {
        let mut out = Vec::with_capacity(chars.len());
        for (i, &c) in chars.iter().enumerate() {
            out.push(if i >= keep_from {
                c
            } else if c.is_ascii_digit() {
                char::from(b'0' + bytes.below(10)?)
            } else if c.is_ascii_uppercase() {
                char::from(b'A' + bytes.below(26)?)
            } else if c.is_ascii_lowercase() {
                char::from(b'a' + bytes.below(26)?)
            } else {
                c
            });
        }
        if luhn {
            fix_luhn(&mut out, keep_from);
        }
        let token: String = out.into_iter().collect();
        if token != value {
            return Ok(token);
        }
    }
    Err(VaultError::unprocessable(
        "untokenizable",
        "this value has too few characters to replace with a distinct token",
    ))
}

/// Makes the digits of `out` pass the Luhn check by choosing the last replaced digit.
fn fix_luhn(out: &mut [char], keep_from: usize) {
    let Some(pos) = (0..keep_from.min(out.len())).rev().find(|&i| out[i].is_ascii_digit()) else {
        return;
    };
    for d in b'0'..=b'9' {
        out[pos] = char::from(d);
        let digits: String = out.iter().filter(|c| c.is_ascii_digit()).collect();
        if values::luhn(&digits) {
            return;
        }
    }
}

impl Vault {
    /// A token for a value of `field`, per `kind`.
    pub(crate) fn make_token(
        &self,
        kind: TokenKind,
        collection: &str,
        field: &Field,
        value: &str,
        keep_last4: bool,
    ) -> Result<String, VaultError> {
        let luhn = field.field_type == FieldType::CardNumber;
        match kind {
            TokenKind::Random => Ok(format!("tok_{}", custodia_crypto::random_hex::<16>()?)),
            TokenKind::FormatPreserving => format_preserving(
                value,
                keep_last4,
                luhn,
                &mut Bytes::Random {
                    pool: [0; 64],
                    used: 64,
                },
            ),
            TokenKind::Deterministic => {
                let mut bytes = Bytes::Keyed {
                    vault: self,
                    collection,
                    field: &field.name,
                    value,
                    block: [0; 16],
                    used: 16,
                    counter: keep_last4.into(),
                };
                format_preserving(value, keep_last4, luhn, &mut bytes)
            }
        }
    }

    /// The row that vaults `value` under `token`.
    #[expect(clippy::too_many_arguments, reason = "every part of the row and its binding")]
    pub(crate) fn token_row(
        key: &DataKey,
        subject: &str,
        collection: &str,
        field: &str,
        kind: TokenKind,
        token: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<TokenRow, VaultError> {
        let ctx = FieldContext {
            collection,
            subject,
            record: token,
            field,
        };
        Ok(TokenRow {
            token: token.to_owned(),
            subject_id: subject.to_owned(),
            collection: collection.to_owned(),
            field: field.to_owned(),
            kind: kind.name().to_owned(),
            ciphertext: key.seal(&ctx, value.as_bytes())?,
            created_at: now.0,
        })
    }

    /// Tokenizes values of one subject's field.
    pub async fn tokenize(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        req: &TokenizeRequest,
    ) -> Result<Vec<String>, VaultError> {
        let subject = SubjectId::parse(&req.subject_id)?;
        let event = AuditEvent::new("token.create", principal)
            .purpose(&req.purpose)
            .collection(&req.collection);
        let event = self.about(event.fields([&req.field]), &subject)?;
        let allow = self.audit_row(&event, now, None)?;
        let call = Call::new(principal, &req.purpose, now);
        self.audited(event, now, async {
            let grant = self.authorize(&call, &req.collection)?;
            let field = grant.declared_field(&req.field)?;
            let kind = TokenKind::parse(req.kind.as_deref())?;
            grant.may_tokenize(field, kind == TokenKind::Deterministic)?;
            if req.values.is_empty() || req.values.len() > MAX_TOKEN_BATCH {
                return Err(VaultError::bad_request(
                    "invalid_batch",
                    format!("values must hold 1 to {MAX_TOKEN_BATCH} items"),
                )
                .into());
            }
            self.subject_state(&subject).await?.permits(grant.purpose)?;
            let normalized = req
                .values
                .iter()
                .map(|v| {
                    values::normalize(field.field_type, v)
                        .map(Zeroizing::new)
                        .map_err(|why| {
                            VaultError::unprocessable("invalid_field", format!("field `{}`: {why}", field.name))
                                .with_field(&field.name)
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (key, sealed_under, fresh_key) = self.keys.sealing_key(&self.store, &subject, now).await?;
            let mut tokens = Vec::with_capacity(normalized.len());
            let mut rows = Vec::with_capacity(normalized.len());
            for value in &normalized {
                let token = self.make_token(kind, &grant.collection.name, field, value, req.keep_last4)?;
                rows.push(Self::token_row(
                    &key,
                    subject.as_str(),
                    &grant.collection.name,
                    &field.name,
                    kind,
                    &token,
                    value,
                    now,
                )?);
                tokens.push(token);
            }
            let stored = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        tx.subjects().seal_under(&sealed_under, fresh_key).await?;
                        tx.tokens().insert(&rows).await?;
                        tx.audit().append(&[allow]).await
                    })
                })
                .await;
            match stored {
                Ok(()) => Ok(Allowed::Written(tokens)),
                Err(custodia_store::StoreError::SubjectKeyConflict) => Err(crate::records::subject_erased().into()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Returns the values behind tokens, for roles whose output form for their field is plain.
    /// Every decision is audited: a refusal names the token's subject when one was found, and
    /// an allowed batch writes one entry per token's subject before any value is returned.
    pub async fn detokenize(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        req: &DetokenizeRequest,
    ) -> Result<DetokenizeResponse, VaultError> {
        let base = AuditEvent::new("token.detokenize", principal).purpose(&req.purpose);
        let call = Call::new(principal, &req.purpose, now);
        self.audited(base.clone(), now, async {
            if req.tokens.is_empty() || req.tokens.len() > MAX_TOKEN_BATCH {
                return Err(VaultError::bad_request(
                    "invalid_batch",
                    format!("tokens must hold 1 to {MAX_TOKEN_BATCH} items"),
                )
                .into());
            }
            if self.registry.purpose(&req.purpose).is_none() {
                return Err(VaultError::forbidden(
                    "unknown_purpose",
                    format!(
                        "no purpose {} is declared in the registry",
                        crate::error::quoted_name(&req.purpose, false)
                    ),
                )
                .into());
            }
            let rows = self.store.reader().await?.tokens().get(&req.tokens).await?;
            let mut about = Vec::with_capacity(rows.len());
            let mut found = std::collections::HashMap::new();
            for row in &rows {
                let subject = SubjectId::parse(&row.subject_id)?;
                let event = self.about(base.clone().collection(&row.collection).fields([&row.field]), &subject)?;
                // Any refusal fails the whole batch.
                let value = self.open_token(&call, row, &subject).await.map_err(|error| Refused {
                    error,
                    about: Some(event.clone()),
                })?;
                found.entry(row.token.clone()).or_insert(value);
                about.push(event);
            }
            let response = DetokenizeResponse {
                values: req
                    .tokens
                    .iter()
                    .map(|t| DetokenizedValue {
                        token: t.clone(),
                        value: found.get(t).cloned(),
                    })
                    .collect(),
            };
            Ok(Allowed::ReadAbout(response, about))
        })
        .await
    }

    /// The value behind one stored token, if the call may see its field in plain form.
    async fn open_token(&self, call: &Call<'_>, row: &TokenRow, subject: &SubjectId) -> Result<String, VaultError> {
        let grant = self.authorize(call, &row.collection)?;
        let field = grant.declared_field(&row.field)?;
        grant.may_detokenize(field)?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        let (key, _) = self
            .keys
            .subject_key(&self.store, subject)
            .await?
            .ok_or_else(|| VaultError::not_found("token_not_found", "the token's subject has no data any more"))?;
        let ctx = FieldContext {
            collection: &row.collection,
            subject: &row.subject_id,
            record: &row.token,
            field: &row.field,
        };
        let plain = Zeroizing::new(key.open(&ctx, &row.ciphertext)?);
        String::from_utf8(plain.to_vec()).map_err(|_| VaultError::internal(&"token value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random() -> Bytes<'static> {
        Bytes::Random {
            pool: [0; 64],
            used: 64,
        }
    }

    #[test]
    fn format_preserving_keeps_shape_and_last4() {
        for _ in 0..200 {
            let t = format_preserving("4242 4242 4242 4242", true, true, &mut random()).unwrap();
            assert_eq!(t.len(), 19);
            assert!(t.ends_with("4242"));
            assert_eq!(t.chars().filter(|c| *c == ' ').count(), 3);
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            assert!(values::luhn(&digits), "{t} is not Luhn-valid");
            assert_ne!(t, "4242 4242 4242 4242");
        }
        let t = format_preserving("Ab-12.cd", false, false, &mut random()).unwrap();
        let shape = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        'd'
                    } else if c.is_ascii_uppercase() {
                        'U'
                    } else if c.is_ascii_lowercase() {
                        'l'
                    } else {
                        c
                    }
                })
                .collect::<String>()
        };
        assert_eq!(shape(&t), shape("Ab-12.cd"));
    }

    #[test]
    fn tiny_values_cannot_hide() {
        assert!(format_preserving("-", false, false, &mut random()).is_err());
    }
}
