//! Vaulted tokens: values replaced by tokens that stand for them. The token table keeps each
//! value sealed under its subject's data key (bound to the token), so erasing the subject
//! kills its tokens too. Kinds:
//! - `random`: `tok_` and 32 random hex digits;
//! - `format_preserving`: a random token in the format of the field's type (see [`shaped`]):
//!   digits for card numbers (Luhn-valid, optionally the last four kept), phone numbers and
//!   dates, an IBAN with valid check digits, an address at `token.invalid` for emails, and 16
//!   letters for any text. Nothing of the value is copied into it (but the last four digits of
//!   a card number when asked): not its letters, its script, its punctuation or the lengths
//!   of its words;
//! - `deterministic`: the same format, drawn from a keyed HMAC stream of the value, so the
//!   same value of the same field always gets the same token (tokens join across datasets).
//!
//! A token is unique across the vault: it is claimed inside the transaction that stores it
//! (`Tokens::claim`), a random token for one subject's value alone, a deterministic one for
//! every subject's rows of the same value (a keyed digest of the value binds it). A token that
//! is taken is drawn again (a deterministic one re-derived from the next block of its stream)
//! in the same transaction, and a token is returned only once its row is stored. Tokens are
//! stored under a keyed digest of themselves, never in clear.

use custodia_crypto::{DataKey, FieldContext, random_array};
use custodia_registry::{Field, FieldType};
use custodia_store::{DEFAULT_KEY_CLASS, StoreError, SubjectKeyRow, TokenRow, Tx};
use custodia_types::{DetokenizeRequest, DetokenizeResponse, DetokenizedValue, TokenizeRequest};
use zeroize::Zeroizing;

use crate::audit::{Allowed, AuditEvent, Refused};
use crate::call::Call;
use crate::error::ErrorKind;
use crate::keys::TokenKeys;
use crate::{SubjectId, Timestamp, Vault, VaultError, values};

/// Most values or tokens in one request.
pub const MAX_TOKEN_BATCH: usize = 1000;

/// Draws of a token for one value before its tokenization gives up (each draw taken already).
const MAX_DRAWS: u32 = 16;

/// Text tokens are this many letters, whatever the value's length.
const TEXT_TOKEN_LEN: usize = 16;

/// The domain of every format-preserving email token: reserved (RFC 2606), never delivered.
const EMAIL_TOKEN_DOMAIN: &str = "@token.invalid";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Random,
    FormatPreserving,
    Deterministic,
}

impl TokenKind {
    fn parse(kind: Option<&str>) -> Result<Self, VaultError> {
        let name = kind.unwrap_or("random");
        match crate::vocabulary::one_of(crate::vocabulary::TOKEN_KINDS, name, "kind", "invalid_kind")? {
            "format_preserving" => Ok(Self::FormatPreserving),
            "deterministic" => Ok(Self::Deterministic),
            _ => Ok(Self::Random),
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

/// Where a token's characters come from.
enum Bytes<'a> {
    Random {
        pool: [u8; 64],
        used: usize,
    },
    /// The keyed stream of a deterministic token: draw `attempt` of `value` reads blocks
    /// `attempt << 8 | keep_last4 << 7 | i` for i = 0, 1, ... (at most 128 blocks a draw).
    Keyed {
        keys: &'a TokenKeys,
        collection: &'a str,
        field: &'a str,
        value: &'a str,
        base: u32,
        block: [u8; 16],
        used: usize,
        next: u32,
    },
}

impl<'a> Bytes<'a> {
    fn random() -> Self {
        Self::Random {
            pool: [0; 64],
            used: 64,
        }
    }

    fn keyed(
        keys: &'a TokenKeys,
        collection: &'a str,
        field: &'a str,
        value: &'a str,
        attempt: u32,
        keep_last4: bool,
    ) -> Self {
        Self::Keyed {
            keys,
            collection,
            field,
            value,
            base: (attempt << 8) | (u32::from(keep_last4) << 7),
            block: [0; 16],
            used: 16,
            next: 0,
        }
    }

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
                keys,
                collection,
                field,
                value,
                base,
                block,
                used,
                next,
            } => {
                if *used == block.len() {
                    if *next >= 128 {
                        return Err(VaultError::internal(&"a deterministic token ran out of stream"));
                    }
                    *block = keys.block(collection, field, *base | *next, value)?;
                    *next += 1;
                    *used = 0;
                }
                *used += 1;
                Ok(block[*used - 1])
            }
        }
    }

    /// A uniform number below `n` (1 <= n <= 256), by rejection sampling.
    fn below(&mut self, n: u16) -> Result<u8, VaultError> {
        let limit = 256 - (256 % n);
        loop {
            let b = self.next()?;
            if u16::from(b) < limit {
                return Ok((u16::from(b) % n) as u8);
            }
        }
    }

    fn digit(&mut self) -> Result<char, VaultError> {
        Ok(char::from(b'0' + self.below(10)?))
    }

    fn letter(&mut self, base: u8) -> Result<char, VaultError> {
        Ok(char::from(base + self.below(26)?))
    }
}

/// A token in the format of `ty`, drawn from `bytes`, sharing nothing with `value` but its
/// type's fixed characters (`+`, `-`, `@token.invalid`) and, with `keep_last4` (card numbers
/// only), its last four digits. Lengths follow the value only where the type fixes them
/// within a narrow range (card, phone and IBAN digits); text and email tokens have one length.
fn shaped(ty: FieldType, value: &str, keep_last4: bool, bytes: &mut Bytes<'_>) -> Result<String, VaultError> {
    let n = value.chars().count();
    for _attempt in 0..16 {
        let token: String = match ty {
            FieldType::CardNumber => {
                let keep_from = if keep_last4 { n.saturating_sub(4) } else { n };
                let mut out = (0..keep_from).map(|_| bytes.digit()).collect::<Result<Vec<_>, _>>()?;
                out.extend(value.chars().skip(keep_from));
                fix_luhn(&mut out, keep_from);
                out.into_iter().collect()
            }
            FieldType::Phone => {
                let mut out = String::from("+");
                out.push(char::from(b'1' + bytes.below(9)?));
                for _ in 2..n {
                    out.push(bytes.digit()?);
                }
                out
            }
            FieldType::Date => {
                let year = (1 + u32::from(bytes.below(9)?)) * 1000
                    + u32::from(bytes.below(100)?) * 10
                    + u32::from(bytes.below(10)?);
                let month = 1 + bytes.below(12)?;
                let day = 1 + bytes.below(28)?;
                format!("{year:04}-{month:02}-{day:02}")
            }
            FieldType::Iban => iban_token(value, bytes)?,
            FieldType::Email => {
                const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                let mut out = (0..TEXT_TOKEN_LEN)
                    .map(|_| Ok(char::from(ALPHABET[usize::from(bytes.below(36)?)])))
                    .collect::<Result<String, VaultError>>()?;
                out.push_str(EMAIL_TOKEN_DOMAIN);
                out
            }
            FieldType::String | FieldType::Text => {
                let mut out = String::with_capacity(TEXT_TOKEN_LEN);
                out.push(bytes.letter(b'A')?);
                for _ in 1..TEXT_TOKEN_LEN {
                    out.push(bytes.letter(b'a')?);
                }
                out
            }
        };
        if token != value {
            return Ok(token);
        }
    }
    Err(VaultError::unprocessable(
        "untokenizable",
        "this value has too few characters to replace with a distinct token",
    ))
}

/// An IBAN-shaped token: a letter for every letter of `value`, a digit for every digit, and
/// check digits that pass mod-97 (so it still reads as an IBAN).
fn iban_token(value: &str, bytes: &mut Bytes<'_>) -> Result<String, VaultError> {
    let mut out = value
        .bytes()
        .map(|c| {
            if c.is_ascii_digit() {
                bytes.digit()
            } else {
                bytes.letter(b'A')
            }
        })
        .collect::<Result<Vec<char>, _>>()?;
    if out.len() < 4 {
        return Ok(out.into_iter().collect());
    }
    out[2] = '0';
    out[3] = '0';
    let mut rem = 0u32;
    for c in out[4..].iter().chain(&out[..4]) {
        rem = match c.to_digit(36) {
            Some(d) if d < 10 => (rem * 10 + d) % 97,
            Some(d) => (rem * 100 + d) % 97,
            None => rem,
        };
    }
    let check = 98 - rem;
    out[2] = char::from(b'0' + (check / 10) as u8);
    out[3] = char::from(b'0' + (check % 10) as u8);
    Ok(out.into_iter().collect())
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

/// A value waiting for its token.
pub(crate) struct Pending {
    pub(crate) collection: String,
    pub(crate) field: String,
    pub(crate) field_type: FieldType,
    pub(crate) kind: TokenKind,
    pub(crate) keep_last4: bool,
    pub(crate) value: Zeroizing<String>,
    /// When the value was collected, for a token a read hands out of a stored value: its
    /// time runs from there, not from the read (`None`: from now, a value handed in).
    pub(crate) collected_at: Option<i64>,
}

impl Pending {
    pub(crate) fn new(collection: &str, field: &Field, kind: TokenKind, keep_last4: bool, value: &str) -> Self {
        Self {
            collection: collection.to_owned(),
            field: field.name.clone(),
            field_type: field.field_type,
            kind,
            keep_last4,
            value: Zeroizing::new(value.to_owned()),
            collected_at: None,
        }
    }

    /// The token of a stored value collected at `at` (a read in token form hands it out).
    pub(crate) fn collected(self, at: i64) -> Self {
        Self {
            collected_at: Some(at),
            ..self
        }
    }
}

/// Draws the tokens of a batch: draw `attempt` of the token for value `i`, and the row that
/// vaults it. Owned, so that the write job that claims the tokens can draw again.
pub(crate) trait Draw: Send + Sync + 'static {
    fn len(&self) -> usize;
    fn draw(&self, i: usize, attempt: u32) -> Result<(String, TokenRow), VaultError>;
}

/// Draws tokens for one subject's values and seals each under the subject's data key.
pub(crate) struct Minter {
    pub(crate) keys: TokenKeys,
    pub(crate) key: DataKey,
    pub(crate) subject: String,
    pub(crate) now: Timestamp,
    pub(crate) pending: Vec<Pending>,
    /// The purpose the tokens are handed out under.
    pub(crate) purpose: String,
}

impl Minter {
    /// Draw `attempt` of the token for `p`, with the binding of a deterministic one.
    fn token(&self, p: &Pending, attempt: u32) -> Result<(String, Option<Vec<u8>>), VaultError> {
        let (collection, field, value) = (p.collection.as_str(), p.field.as_str(), p.value.as_str());
        Ok(match p.kind {
            TokenKind::Random => (format!("tok_{}", custodia_crypto::random_hex::<16>()?), None),
            TokenKind::FormatPreserving => (shaped(p.field_type, value, p.keep_last4, &mut Bytes::random())?, None),
            TokenKind::Deterministic => {
                let mut bytes = Bytes::keyed(&self.keys, collection, field, value, attempt, p.keep_last4);
                let token = shaped(p.field_type, value, p.keep_last4, &mut bytes)?;
                (token, Some(self.keys.binding(collection, field, value)?))
            }
        })
    }

    /// The row that vaults `p`'s value under `token`: stored under the token's keyed name,
    /// the value sealed under the subject's key and bound to the token.
    pub(crate) fn row(&self, p: &Pending, token: &str, binding: Option<Vec<u8>>) -> Result<TokenRow, VaultError> {
        let ctx = FieldContext {
            collection: &p.collection,
            subject: &self.subject,
            record: token,
            field: &p.field,
        };
        Ok(TokenRow {
            name: self.keys.name(token)?,
            subject_id: self.subject.clone(),
            collection: p.collection.clone(),
            field: p.field.clone(),
            kind: p.kind.name().to_owned(),
            binding,
            ciphertext: self.key.seal(&ctx, p.value.as_bytes())?,
            created_at: p.collected_at.map_or(self.now.0, |at| at.min(self.now.0)),
            purpose: Some(self.purpose.clone()),
        })
    }

    fn pending(&self, i: usize) -> Result<&Pending, VaultError> {
        self.pending
            .get(i)
            .ok_or_else(|| VaultError::internal(&"no such pending token"))
    }
}

impl Draw for Minter {
    fn len(&self) -> usize {
        self.pending.len()
    }

    fn draw(&self, i: usize, attempt: u32) -> Result<(String, TokenRow), VaultError> {
        let p = self.pending(i)?;
        let (token, binding) = self.token(p, attempt)?;
        let row = self.row(p, &token, binding)?;
        Ok((token, row))
    }
}

/// Inside a write: claims a token for every value of `draw`, drawing again those taken (up to
/// [`MAX_DRAWS`] each; then the job fails with [`StoreError::Conflict`] and nothing is
/// stored). Returns the tokens in order, every one stored.
pub(crate) async fn claim(tx: &mut Tx<'_>, draw: &impl Draw) -> Result<Vec<String>, StoreError> {
    let drawn = |i: usize, attempt: u32| draw.draw(i, attempt).map_err(|e| StoreError::Aborted(e.to_string()));
    let mut tokens: Vec<Option<String>> = vec![None; draw.len()];
    let mut open: Vec<(usize, u32)> = (0..draw.len()).map(|i| (i, 0)).collect();
    while !open.is_empty() {
        let mut rows = Vec::with_capacity(open.len());
        let mut texts = Vec::with_capacity(open.len());
        for &(i, attempt) in &open {
            let (token, row) = drawn(i, attempt)?;
            texts.push(token);
            rows.push(row);
        }
        let stored = tx.tokens().claim(&rows).await?;
        let mut again = Vec::new();
        for ((&(i, attempt), token), ok) in open.iter().zip(texts).zip(stored) {
            if ok {
                tokens[i] = Some(token);
            } else if attempt + 1 < MAX_DRAWS {
                again.push((i, attempt + 1));
            } else {
                return Err(StoreError::Conflict("token_names: every token drawn is taken".into()));
            }
        }
        open = again;
    }
    tokens
        .into_iter()
        .map(|t| t.ok_or_else(|| StoreError::Aborted("a token was not drawn".into())))
        .collect()
}

/// Whether the rows of one token may stand for one value: they are of one field, and either
/// one row or all deterministic (whose values are then compared once opened). Tokens issued
/// before schema version 8 could be shared by several subjects' values; since then a random or
/// format-preserving token has one row, and a deterministic one the rows of one value.
fn may_stand_for_one_value(rows: &[TokenRow]) -> bool {
    let Some(first) = rows.first() else { return false };
    let one_field = rows
        .iter()
        .all(|r| r.collection == first.collection && r.field == first.field);
    let shared = rows.iter().all(|r| r.kind == TokenKind::Deterministic.name());
    one_field && (rows.len() == 1 || shared)
}

impl Vault {
    /// Stores the tokens of `minter`'s values, with `audit` (the write's entry), provided the
    /// key they are sealed under is still the subject's (`fresh_key`: or it is new). Returns
    /// the tokens, in order.
    pub(crate) async fn store_tokens(
        &self,
        minter: impl Draw,
        sealed_under: SubjectKeyRow,
        fresh_key: bool,
        audit: Option<custodia_store::AuditRow>,
    ) -> Result<Vec<String>, VaultError> {
        if minter.len() == 0 {
            return Ok(Vec::new());
        }
        let stored = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.subjects().seal_under(&sealed_under, fresh_key).await?;
                    let tokens = claim(&mut tx, &minter).await?;
                    tx.audit().append(audit.as_slice()).await?;
                    Ok(tokens)
                })
            })
            .await;
        match stored {
            Ok(tokens) => Ok(tokens),
            Err(StoreError::SubjectKeyConflict) => Err(crate::records::subject_erased()),
            Err(StoreError::Conflict(_)) => Err(VaultError::new(
                ErrorKind::Conflict,
                "token_space_exhausted",
                format!("every token drawn for a value was taken ({MAX_DRAWS} draws); use kind random"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Tokenizes values of one subject's field. `gpc`: the request carried a Global Privacy
    /// Control signal, recorded once the call has passed the gate (as a write records it) and
    /// then held against it: a token under a purpose of sale or sharing is refused.
    pub async fn tokenize(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        req: &TokenizeRequest,
        gpc: bool,
    ) -> Result<Vec<String>, VaultError> {
        let subject = SubjectId::parse(&req.subject_id)?;
        let event = AuditEvent::new("token.create", principal)
            .purpose(&req.purpose)
            .collection(&req.collection);
        let event = self.about(event.fields([&req.field]), &subject)?;
        let allow = self.audit_row(&event, now, None)?;
        let call = Call::new(principal, &req.purpose, now).with_gpc(gpc);
        self.audited(event, now, async {
            let grant = self.authorize(&call, &req.collection)?;
            // A token stores its value for the subject: a write like any other.
            self.refuse_if_read_only(&req.collection).await?;
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
            if req.keep_last4 && (kind == TokenKind::Random || field.field_type != FieldType::CardNumber) {
                return Err(VaultError::unprocessable(
                    "invalid_keep_last4",
                    "keep_last4 applies to format_preserving and deterministic tokens of card numbers only",
                )
                .with_field("keep_last4")
                .into());
            }
            self.ledger_permits(&call, &subject, grant.purpose).await?;
            let pending = req
                .values
                .iter()
                .map(|v| {
                    let value = Zeroizing::new(values::normalize(field.field_type, v).map_err(|why| {
                        VaultError::unprocessable("invalid_field", format!("field `{}`: {why}", field.name))
                            .with_field(&field.name)
                    })?);
                    Ok(Pending::new(
                        &grant.collection.name,
                        field,
                        kind,
                        req.keep_last4,
                        &value,
                    ))
                })
                .collect::<Result<Vec<_>, VaultError>>()?;
            let (key, sealed_under, fresh_key) = self
                .keys
                .sealing_key(&self.store, &subject, DEFAULT_KEY_CLASS, now)
                .await?;
            let minter = Minter {
                keys: self.keys.tokens(),
                key,
                subject: subject.as_str().to_owned(),
                now,
                pending,
                purpose: call.purpose.to_owned(),
            };
            let tokens = self.store_tokens(minter, sealed_under, fresh_key, Some(allow)).await?;
            Ok(Allowed::Written(tokens))
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
            // A caller whose grant reaches no collection under this purpose (a role without
            // it, an operator whose training lapsed) is refused before any token is looked
            // up: refused only for tokens that exist, it would learn which are still live
            // (whether a customer was erased).
            let mut grants = self.registry.collections.keys().map(|c| self.authorize(&call, c));
            if let Some(Err(first)) = grants.next()
                && grants.all(|g| g.is_err())
            {
                return Err(first.into());
            }
            let keys = self.keys.tokens();
            let mut by_name = std::collections::HashMap::new();
            for token in &req.tokens {
                by_name.insert(keys.name(token)?, token.as_str());
            }
            let names: Vec<Vec<u8>> = by_name.keys().cloned().collect();
            let mut reader = self.store.reader().await?;
            let mut rows: std::collections::BTreeMap<&str, Vec<TokenRow>> = std::collections::BTreeMap::new();
            for row in reader.tokens().get(&names).await? {
                if let Some(token) = by_name.get(&row.name) {
                    rows.entry(token).or_default().push(row);
                }
            }
            let older: Vec<&str> = by_name.values().copied().filter(|t| !rows.contains_key(t)).collect();
            let owned: Vec<String> = older.iter().map(|t| (*t).to_owned()).collect();
            for row in reader.tokens().get_v1(&owned).await? {
                if let Some(&token) = older.iter().find(|t| t.as_bytes() == row.name.as_slice()) {
                    rows.entry(token).or_default().push(row);
                }
            }
            drop(reader);
            let mut about = Vec::new();
            let mut found = std::collections::HashMap::new();
            for (&token, rows) in &rows {
                if !may_stand_for_one_value(rows) {
                    continue;
                }
                let mut value: Option<String> = None;
                let mut agreed = true;
                // a subject's rows (one a purpose) are one access to its value
                let mut logged = std::collections::HashSet::new();
                for row in rows {
                    let subject = SubjectId::stored(&row.subject_id)?;
                    let event = self.about(base.clone().collection(&row.collection).fields([&row.field]), &subject)?;
                    // A refusal of the call's grant fails the whole batch; a row this purpose
                    // may not use is passed over.
                    let opened = self
                        .open_token(&call, token, row, &subject)
                        .await
                        .map_err(|error| Refused {
                            error,
                            about: Some(event.clone()),
                        })?;
                    let Some(opened) = opened else { continue };
                    if logged.insert(row.subject_id.as_str()) {
                        about.push(event);
                    }
                    match &value {
                        Some(v) if *v != opened => agreed = false,
                        Some(_) => {}
                        None => value = Some(opened),
                    }
                }
                if let (true, Some(v)) = (agreed, value) {
                    found.insert(token, v);
                }
            }
            // Tokens that open to nothing (unknown, or not one value) are a probe as far as the
            // log can tell: one deny entry counts them (the tokens themselves are not logged).
            let unknown = req.tokens.iter().filter(|t| !found.contains_key(t.as_str())).count();
            if unknown > 0 {
                about.push(
                    base.clone()
                        .refused("unknown_token")
                        .detail("count", unknown.to_string()),
                );
            }
            let response = DetokenizeResponse {
                values: req
                    .tokens
                    .iter()
                    .map(|t| DetokenizedValue {
                        token: t.clone(),
                        value: found.get(t.as_str()).cloned(),
                    })
                    .collect(),
            };
            Ok(Allowed::ReadAbout(response, about))
        })
        .await
    }

    /// The value behind one stored row of `token`: an error if the call may not see its field
    /// in plain form at all, `None` if this row is not the purpose's to use.
    async fn open_token(
        &self,
        call: &Call<'_>,
        token: &str,
        row: &TokenRow,
        subject: &SubjectId,
    ) -> Result<Option<String>, VaultError> {
        // A refusal that only a stored row could cause (the row's field not the caller's to
        // see) would tell the caller the token is live: of a deterministic token, that someone
        // holds the value guessed; of any token from a leaked list, that its customer was not
        // erased. The row is passed over instead: the token answers as an unknown one does
        // (and is counted in the call's `unknown_token` deny entry).
        let refused = |_: VaultError| Ok(None);
        let grant = match self.authorize(call, &row.collection) {
            Ok(grant) => grant,
            Err(e) => return refused(e),
        };
        let field = match grant.declared_field(&row.field) {
            Ok(field) => field,
            Err(e) => return refused(e),
        };
        if let Err(e) = grant.may_detokenize(field) {
            return refused(e);
        }
        // From here the row is one subject's value under one purpose. A token stands for a
        // value held for the purpose it was handed out under: only that purpose, or one
        // declared compatible with it, may turn it back, and only while the subject's ledger
        // lets both be used (as a read would). A row that fails this is passed over, as if it
        // were not there: a refusal would tell whoever drew the same deterministic token (the
        // same value of the field, any subject) that another purpose or subject holds it.
        let state = self.subject_state(subject).await?;
        if state.permits(grant.purpose).is_err() {
            return Ok(None);
        }
        if let Some(issued) = &row.purpose {
            let Some(holder) = self.registry.purpose(issued) else {
                return Ok(None);
            };
            let usable =
                self.registry.may_use(&grant.purpose.name, issued) && crate::retention::ledger_allows(holder, &state);
            if !usable {
                return Ok(None);
            }
            // The token's value is held for its purpose as a value written when the token was
            // (last) handed out: its retention rule, and an end the ledger took back too late,
            // expire it as they would that value (a token of a value stored in no record would
            // otherwise outlive every rule).
            let times = crate::retention::token_times(holder, row.created_at, &state);
            if times.expires_at.is_some_and(|e| call.now.0 >= e) {
                return Ok(None);
            }
        }
        let Some((key, _)) = self.keys.subject_key(&self.store, subject, DEFAULT_KEY_CLASS).await? else {
            return Ok(None);
        };
        let ctx = FieldContext {
            collection: &row.collection,
            subject: &row.subject_id,
            record: token,
            field: &row.field,
        };
        let plain = Zeroizing::new(key.open(&ctx, &row.ciphertext)?);
        String::from_utf8(plain.to_vec())
            .map(Some)
            .map_err(|_| VaultError::internal(&"token value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests;
