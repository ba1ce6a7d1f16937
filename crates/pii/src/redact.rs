//! Redaction operators, chosen per entity type:
//! - `mask` (or `mask:N`): letters and digits become `*`, separators stay, the last N stay;
//! - `replace`: the entity label, `<EMAIL_ADDRESS>`;
//! - `hash`: `<EMAIL_ADDRESS:1f0c…>`, the full keyed HMAC-SHA256 (64 hex digits) of the
//!   value's normal form ([`normal_form`]: emails trimmed and lower-cased, card numbers, SSNs
//!   and phone numbers as their digits), stable across records and runs with the same key (so
//!   redacted datasets still join), unlike a random salt; [`RedactKey::for_dataset`] gives
//!   each release a key of its own, so two releases join only if they share a key id;
//! - `encrypt`: `[enc:EMAIL_ADDRESS:…]`, AES-256-GCM under the key, reversible with
//!   [`reveal`] and the same key;
//! - `tokenize`: a vault token, from a tokenizer the caller supplies (the server's vault);
//! - `keep`: left as is.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::finding::Finding;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Mask { keep_last: usize },
    Replace,
    Hash,
    Encrypt,
    Tokenize,
    Keep,
}

impl Operator {
    /// The operators by name (`mask:N` aside: the API says `keep_last`).
    pub const NAMES: &'static [&'static str] = &["mask", "replace", "hash", "encrypt", "tokenize", "keep"];

    /// `mask`, `mask:4`, `replace`, `hash`, `encrypt`, `tokenize` or `keep`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "unknown operator `{s}` (one of mask, mask:N, replace, hash, encrypt, tokenize, keep)"
            ))
        };
        Ok(match s {
            "mask" => Self::Mask { keep_last: 0 },
            "replace" => Self::Replace,
            "hash" => Self::Hash,
            "encrypt" => Self::Encrypt,
            "tokenize" => Self::Tokenize,
            "keep" => Self::Keep,
            _ => match s.strip_prefix("mask:") {
                Some(n) => Self::Mask {
                    keep_last: n.parse().map_err(|_| bad())?,
                },
                None => return Err(bad()),
            },
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Mask { .. } => "mask",
            Self::Replace => "replace",
            Self::Hash => "hash",
            Self::Encrypt => "encrypt",
            Self::Tokenize => "tokenize",
            Self::Keep => "keep",
        }
    }

    /// Whether the operator uses the redaction key (`hash`, `encrypt`).
    #[must_use]
    pub fn needs_key(&self) -> bool {
        matches!(self, Self::Hash | Self::Encrypt)
    }
}

/// A 256-bit redaction key. Zeroized on drop; never printed.
pub struct RedactKey {
    /// The key as given, from which dataset keys are derived.
    master: hmac::Key,
    hash: hmac::Key,
    encrypt: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RedactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedactKey(..)")
    }
}

impl RedactKey {
    /// From 32 bytes; the hashing and encryption keys are derived from it separately.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let array: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Invalid(format!("a redaction key is 32 bytes, not {}", bytes.len())))?;
        Ok(Self::from_array(array))
    }

    pub fn from_array(bytes: &[u8; 32]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let hash_key = Zeroizing::new(hmac::sign(&master, b"custodia redact v1 hash").as_ref().to_vec());
        let mut encrypt = Zeroizing::new([0u8; 32]);
        encrypt.copy_from_slice(&hmac::sign(&master, b"custodia redact v1 encrypt").as_ref()[..32]);
        Self {
            master,
            hash: hmac::Key::new(hmac::HMAC_SHA256, &hash_key),
            encrypt,
        }
    }

    /// The key of one dataset (a release, an export): derived from this key and `key_id`, so
    /// hashes and ciphertexts of two datasets with different ids cannot be joined or opened
    /// with each other's key; the same id gives the same key again. `key_id` is a lower-case
    /// identifier (`[a-z][a-z0-9_]{0,62}`), which keeps the derivation input unambiguous.
    pub fn for_dataset(&self, key_id: &str) -> Result<Self> {
        let b = key_id.as_bytes();
        let valid = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !valid {
            return Err(Error::Invalid(
                "key_id must be 1-63 characters of a-z, 0-9 and _, starting with a letter".into(),
            ));
        }
        // Labels of the hash and encrypt keys hold no NUL, so no key id reaches them.
        let mut ctx = hmac::Context::with_key(&self.master);
        ctx.update(b"custodia redact v1 dataset\0");
        ctx.update(b);
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(ctx.sign().as_ref());
        Ok(Self::from_array(&bytes))
    }

    fn aead(&self) -> Result<LessSafeKey> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.encrypt[..]).map_err(|_| Error::Invalid("bad key".into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| Error::Invalid("a redaction key is 64 hex digits".into()))?,
        );
        Self::from_bytes(&bytes)
    }

    /// A new random key, as hex.
    pub fn generate_hex() -> Result<Zeroizing<String>> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| Error::Invalid("no randomness".into()))?;
        Ok(Zeroizing::new(hex::encode(&bytes[..])))
    }

    fn keyed_hash(&self, entity: &str, value: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.hash);
        ctx.update(entity.as_bytes());
        ctx.update(&[0]);
        ctx.update(normal_form(entity, value).as_bytes());
        hex::encode(ctx.sign().as_ref())
    }

    fn encrypt(&self, entity: &str, value: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Invalid("no randomness".into()))?;
        let mut data = value.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(entity.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Invalid("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn decrypt(&self, entity: &str, sealed: &str) -> Result<Vec<u8>> {
        let fail = || {
            Error::Invalid(format!(
                "cannot decrypt an encrypted {entity}: wrong key or altered text"
            ))
        };
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| fail())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(entity.as_bytes()), &mut buf)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

/// The form of a value that `hash` digests, so that one value written two ways hashes alike:
/// emails trimmed and lower-cased; card, social security, tax and phone numbers and bank
/// accounts as their digits; IBANs as upper-case letters and digits; anything else trimmed,
/// with runs of white space as one space, lower-cased.
#[must_use]
pub fn normal_form(entity: &str, value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let digits_only = matches!(
        entity,
        "CREDIT_CARD"
            | "US_SSN"
            | "US_ITIN"
            | "PHONE_NUMBER"
            | "US_BANK_NUMBER"
            | "UK_NHS"
            | "UK_NINO"
            | "SG_NRIC_FIN"
            | "AU_TFN"
            | "AU_MEDICARE"
            | "AU_ABN"
            | "AU_ACN"
            | "IN_AADHAAR"
    );
    if entity == "EMAIL_ADDRESS" {
        text.trim().to_lowercase()
    } else if entity == "IBAN_CODE" {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    } else if digits_only && text.chars().any(|c| c.is_ascii_digit()) {
        let keep_letters = matches!(entity, "UK_NINO" | "SG_NRIC_FIN");
        text.chars()
            .filter(|c| c.is_ascii_digit() || (keep_letters && c.is_ascii_alphabetic()))
            .map(|c| c.to_ascii_uppercase())
            .collect()
    } else {
        text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
    }
}

/// One replacement made, with offsets into the original text.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub entity_type: String,
    pub start: usize,
    pub end: usize,
    pub operator: &'static str,
}

/// Turns an entity type and value into a vault token.
pub type Tokenizer<'a> = dyn FnMut(&str, &[u8]) -> Result<String> + 'a;

/// Operators per entity type, a default, and the key for `hash` and `encrypt`.
#[derive(Debug)]
pub struct Redactor {
    operators: HashMap<String, Operator>,
    default: Operator,
    key: Option<Arc<RedactKey>>,
}

impl Redactor {
    pub fn new(operators: HashMap<String, Operator>, default: Operator, key: Option<Arc<RedactKey>>) -> Result<Self> {
        if key.is_none()
            && let Some(op) = operators
                .values()
                .chain(std::iter::once(&default))
                .find(|o| o.needs_key())
        {
            return Err(Error::Invalid(format!(
                "the {} operator needs a key (--key-file, or CUSTODIA_REDACT_KEY with 64 hex digits)",
                op.name()
            )));
        }
        Ok(Self {
            operators,
            default,
            key,
        })
    }

    pub fn operator_for(&self, entity: &str) -> &Operator {
        self.operators.get(entity).unwrap_or(&self.default)
    }

    /// The text with every finding replaced. Overlapping findings are merged into one span
    /// (under the better-scored entity), so no part of either survives. `json`: the
    /// stretches of the text that are JSON, as the scan read them ([`crate::input::Collect`]
    /// keeps them: a document, an NDJSON line, an object read as JSON in a log line), where
    /// a value in a string is hashed as the value its escapes write (masked so in any text),
    /// and a value in a number is replaced whole, quoted (`{"card":4111111111111111}` becomes
    /// `{"card":"<CREDIT_CARD>"}`, still JSON).
    pub fn redact(
        &self,
        text: &[u8],
        findings: &[Finding],
        json: &[(usize, usize)],
        mut tokenizer: Option<&mut Tokenizer<'_>>,
    ) -> Result<(Vec<u8>, Vec<Applied>)> {
        let mut spans: Vec<(usize, usize, &str, f32)> = Vec::new();
        let mut sorted: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.end <= text.len() && f.start < f.end)
            .collect();
        sorted.sort_by_key(|f| f.start);
        // of overlapping findings, the span is replaced as the best-scored one's entity is,
        // bar one kept as it is: a phone's shape inside an Aadhaar number, phones kept, does
        // not keep the Aadhaar number
        let redacts = |entity: &str| *self.operator_for(entity) != Operator::Keep;
        for f in sorted {
            match spans.last_mut() {
                Some(last) if f.start < last.1 => {
                    last.1 = last.1.max(f.end);
                    if (redacts(&f.entity_type), f.score) > (redacts(last.2), last.3) {
                        last.2 = &f.entity_type;
                        last.3 = f.score;
                    }
                }
                _ => spans.push((f.start, f.end, &f.entity_type, f.score)),
            }
        }
        let mut out = Vec::with_capacity(text.len());
        let mut applied = Vec::with_capacity(spans.len());
        let mut at = 0;
        // the JSON stretch the span stands in, read from its start (stretches and spans in
        // order)
        let mut stretch = 0;
        let mut strings: Option<JsonStrings<'_>> = None;
        // keys of the stretch replaced alike so far (`{"jo@…":1,"ana@…":2}` would become two
        // keys of one name, and a reader keeps one): the second on are numbered
        let mut keys_alike = 0usize;
        // the end of the string the last span stood in: the spans of one string read it once
        let mut string = (0usize, false);
        for (mut s, mut e, entity, _) in spans {
            while json.get(stretch).is_some_and(|&(_, end)| end <= s) {
                stretch += 1;
                strings = None;
                keys_alike = 0;
            }
            let in_json = json.get(stretch).filter(|&&(start, end)| start <= s && e <= end);
            let strings = in_json.map(|&(start, _)| strings.get_or_insert_with(|| JsonStrings::new(text, start)));
            let in_json = strings.is_some();
            let inside_string = strings.map(|j| j.inside(s));
            let outside_strings = inside_string == Some(false);
            if inside_string == Some(true) && e > string.0 {
                string = string_end(text, e);
            }
            let in_key = inside_string == Some(true) && (string.1 || inner_key(text, e));
            let number = outside_strings.then(|| json_number_around(text, at, s, e)).flatten();
            let in_number = number.is_some();
            if let Some(whole) = number {
                (s, e) = whole;
            }
            out.extend_from_slice(&text[at..s]);
            let value = &text[s..e];
            let op = self.operator_for(entity);
            let quote = in_number && *op != Operator::Keep;
            if quote {
                out.push(b'"');
            }
            let key = || {
                self.key
                    .as_ref()
                    .ok_or_else(|| Error::Invalid(format!("the {} operator needs a key", op.name())))
            };
            match op {
                Operator::Keep => out.extend_from_slice(value),
                Operator::Replace => out.extend_from_slice(format!("<{entity}>").as_bytes()),
                Operator::Mask { keep_last } => out.extend_from_slice(mask(value, *keep_last).as_bytes()),
                Operator::Hash => {
                    // a value written with escapes (or an address spelt out) hashes as the
                    // value it stands for, so it joins the same value written plainly
                    // elsewhere
                    let value = meant(entity, value, in_json);
                    out.extend_from_slice(format!("<{entity}:{}>", key()?.keyed_hash(entity, &value.text)).as_bytes())
                }
                Operator::Encrypt => {
                    out.extend_from_slice(format!("[enc:{entity}:{}]", key()?.encrypt(entity, value)?).as_bytes())
                }
                Operator::Tokenize => {
                    let t = tokenizer.as_mut().ok_or_else(|| {
                        Error::Invalid(
                            "the tokenize operator needs the vault: use POST /v1/redact on the server".into(),
                        )
                    })?;
                    // the vault holds the value, not how a query string or JSON wrote it
                    out.extend_from_slice(t(entity, &meant(entity, value, in_json).text)?.as_bytes());
                }
            }
            if quote {
                out.push(b'"');
            }
            if in_key && matches!(op, Operator::Replace | Operator::Mask { .. }) {
                keys_alike += 1;
                if keys_alike > 1 {
                    out.extend_from_slice(format!("#{keys_alike}").as_bytes());
                }
            }
            applied.push(Applied {
                entity_type: entity.to_owned(),
                start: s,
                end: e,
                operator: op.name(),
            });
            at = e;
        }
        out.extend_from_slice(&text[at..]);
        Ok((out, applied))
    }
}

/// Where a JSON text's strings are, read forward once as spans are asked about in order.
struct JsonStrings<'a> {
    text: &'a [u8],
    at: usize,
    in_string: bool,
}

impl<'a> JsonStrings<'a> {
    /// Read from `from`, where a JSON value starts.
    fn new(text: &'a [u8], from: usize) -> Self {
        Self {
            text,
            at: from,
            in_string: false,
        }
    }

    /// Whether `pos` (at or after the last place asked about) is inside a string.
    fn inside(&mut self, pos: usize) -> bool {
        while self.at < pos.min(self.text.len()) {
            match self.text[self.at] {
                b'"' => self.in_string = !self.in_string,
                b'\\' if self.in_string => self.at += 1,
                _ => {}
            }
            self.at += 1;
        }
        self.in_string
    }
}

/// The closing quote of the JSON string a span ending at `e` stands in, and whether the
/// string is an object's key (a `:` follows it).
fn string_end(text: &[u8], e: usize) -> (usize, bool) {
    let mut i = e;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => {
                let next = text[i + 1..]
                    .iter()
                    .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                return (i, next == Some(&b':'));
            }
            _ => i += 1,
        }
    }
    (text.len(), false)
}

/// Whether a span ending at `e` in a JSON string holding JSON (`"{\"jo@…\":1}"`, a JSON
/// message logged in JSON) ends in one of that document's keys, at any depth: the first
/// quote after it is escaped (`\"`, `\\\"`) and a `:` follows it.
fn inner_key(text: &[u8], e: usize) -> bool {
    let mut i = e;
    while i < text.len() {
        match text[i] {
            b'\\' if text.get(i + 1) == Some(&b'"') => {
                let next = text[i + 2..]
                    .iter()
                    .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                return next == Some(&b':');
            }
            b'\\' => i += 2,
            b'"' => return false,
            _ => i += 1,
        }
    }
    false
}

/// The whole JSON number holding `[s, e)` (its sign, fraction and exponent too), not before
/// `floor` (the end of the span replaced before it), if the span lies in one: a value's
/// number, after `:`, `[` or `,` and before `,`, `]`, `}` or the end. Anything else outside
/// a string (a line of an NDJSON file that is no JSON, read as text) is replaced as in text.
fn json_number_around(text: &[u8], floor: usize, s: usize, e: usize) -> Option<(usize, usize)> {
    let part = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    if !text[s..e].iter().all(part) {
        return None;
    }
    let s = text[floor..s]
        .iter()
        .rposition(|b| !part(b))
        .map_or(floor, |i| floor + i + 1);
    let e = e + text[e..].iter().take_while(|b| part(b)).count();
    let json_space = |b: &&u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let before = text[..s].iter().rev().find(|b| !json_space(b));
    let after = text[e..].iter().find(|b| !json_space(b));
    (matches!(before, Some(b':' | b'[' | b',')) && matches!(after, None | Some(b',' | b']' | b'}'))).then_some((s, e))
}

/// The value a found span writes: its JSON escapes decoded when it stands in a JSON string,
/// then its URL escapes and HTML character references (`jo%40example.com`), mapped to the
/// span.
fn written(value: &[u8], in_json: bool) -> crate::mapped::Mapped {
    let json = if in_json {
        crate::input::unescape(value)
    } else {
        let mut as_is = crate::mapped::Mapped::with_capacity(value.len());
        as_is.copy(value, 0);
        as_is.finish(value.len())
    };
    json.then(crate::mapped::decoded_escapes)
}

/// The value a found span of `entity` stands for: as [`written`], and an email address
/// spelt out (`jo(at)example.com`) as the address.
fn meant(entity: &str, value: &[u8], in_json: bool) -> crate::mapped::Mapped {
    let written = written(value, in_json);
    if entity == "EMAIL_ADDRESS" {
        written.then(crate::recognizers::spelled_email::written_plainly)
    } else {
        written
    }
}

/// Letters and digits become `*`. A value found in a JSON string covers whole escapes (`\n`,
/// `\u5c71`), in a JSON file or a JSON log line, and one written URL-encoded its escapes
/// (`%40`): each is masked as the character it writes, so the JSON stays valid (`\u5c71`
/// becomes `*`, not `\*****`) and an escape is no letter and two digits to count.
fn mask(value: &[u8], keep_last: usize) -> String {
    let s = String::from_utf8_lossy(value);
    let decoded = written(s.as_bytes(), true);
    let text = String::from_utf8_lossy(&decoded.text);
    let units: Vec<(&str, char)> = text
        .char_indices()
        .map(|(i, c)| {
            let raw = s.get(decoded.original(i)..decoded.original(i + c.len_utf8()));
            (raw.unwrap_or(""), c)
        })
        .collect();
    let total = units.iter().filter(|(_, c)| c.is_alphanumeric()).count();
    // never more than half: `mask:4` leaves a card's last four, not all of a short name or
    // an IP address
    let keep_last = keep_last.min(total / 2);
    let mut seen = 0;
    let mut out = String::with_capacity(s.len());
    for (raw, c) in units {
        if c.is_alphanumeric() {
            seen += 1;
            if seen <= total.saturating_sub(keep_last) {
                out.push('*');
                continue;
            }
        }
        out.push_str(raw);
    }
    out
}

static SEALED: LazyLock<Option<regex::bytes::Regex>> =
    LazyLock::new(|| regex::bytes::Regex::new(r"\[enc:([A-Z][A-Z0-9_]{0,63}):([A-Za-z0-9_-]{20,})\]").ok());

/// Decrypts every `[enc:ENTITY:…]` that `encrypt` wrote. Fails on the first one the key
/// cannot open, naming its entity type.
pub fn reveal(text: &[u8], key: &RedactKey) -> Result<Vec<u8>> {
    let Some(re) = SEALED.as_ref() else {
        return Err(Error::Invalid("internal pattern error".into()));
    };
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for c in re.captures_iter(text) {
        let (Some(all), Some(entity), Some(sealed)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        out.extend_from_slice(&text[at..all.start()]);
        let entity = std::str::from_utf8(entity.as_bytes()).unwrap_or("");
        let sealed = std::str::from_utf8(sealed.as_bytes()).unwrap_or("");
        out.extend_from_slice(&key.decrypt(entity, sealed)?);
        at = all.end();
    }
    out.extend_from_slice(&text[at..]);
    Ok(out)
}

struct RedactSink<'a> {
    redactor: &'a Redactor,
    out: &'a mut dyn std::io::Write,
    counts: std::collections::BTreeMap<String, u64>,
}

impl crate::input::Sink for RedactSink<'_> {
    fn findings(&mut self, _found: Vec<crate::input::Located>) -> std::io::Result<()> {
        Ok(())
    }

    fn block(&mut self, bytes: &[u8], found: &[Finding], json: &[(usize, usize)]) -> std::io::Result<()> {
        let (text, applied) = self
            .redactor
            .redact(bytes, found, json, None)
            .map_err(std::io::Error::other)?;
        for a in applied {
            *self.counts.entry(a.entity_type).or_default() += 1;
        }
        self.out.write_all(&text)
    }
}

/// Redacts a reader block by block into `out` (gzip input is written decompressed).
/// Returns the input's stats and how many values of each entity type were replaced.
pub fn redact_reader(
    scanner: &crate::Scanner,
    redactor: &Redactor,
    reader: impl std::io::Read,
    format: crate::input::Format,
    out: &mut dyn std::io::Write,
) -> Result<(crate::input::InputStats, std::collections::BTreeMap<String, u64>)> {
    let mut sink = RedactSink {
        redactor,
        out,
        counts: Default::default(),
    };
    let stats = crate::input::scan_reader(scanner, reader, format, &mut sink)?;
    Ok((stats, sink.counts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;

    fn key() -> Result<RedactKey> {
        RedactKey::from_hex(&"ab".repeat(32))
    }

    #[test]
    fn operators() -> Result<()> {
        let scanner = Scanner::builder().build()?;
        let text = b"mail bob@example.com or call +44 20 7123 4567, card 4111 1111 1111 1111.";
        let found = scanner.scan(text);
        let ops: HashMap<String, Operator> = [
            ("EMAIL_ADDRESS".to_owned(), Operator::Hash),
            ("CREDIT_CARD".to_owned(), Operator::Mask { keep_last: 4 }),
            ("PHONE_NUMBER".to_owned(), Operator::Encrypt),
        ]
        .into();
        let r = Redactor::new(ops, Operator::Replace, Some(Arc::new(key()?)))?;
        let (out, applied) = r.redact(text, &found, &[], None)?;
        let out_s = String::from_utf8_lossy(&out).to_string();
        assert!(!out_s.contains("bob@example.com") && !out_s.contains("7123"), "{out_s}");
        assert!(out_s.contains("**** **** **** 1111."), "{out_s}");
        assert!(out_s.contains("<EMAIL_ADDRESS:"), "{out_s}");
        assert_eq!(applied.len(), 3);
        // keyed hashes are stable
        let (again, _) = r.redact(text, &found, &[], None)?;
        let h = |s: &str| s.split("<EMAIL_ADDRESS:").nth(1).map(|x| x[..64].to_owned());
        assert_eq!(h(&out_s), h(&String::from_utf8_lossy(&again)));
        // encryption is reversible with the key and only with it
        assert_eq!(
            reveal(&out, &key()?)?,
            String::from_utf8_lossy(&out)
                .replace(
                    &out_s[out_s.find("[enc:").unwrap_or(0)..out_s.find("], card").map_or(0, |i| i + 1)],
                    "+44 20 7123 4567"
                )
                .into_bytes()
        );
        assert!(reveal(&out, &RedactKey::from_hex(&"cd".repeat(32))?).is_err());
        Ok(())
    }

    /// A value written URL-encoded or with HTML references, or an address spelt out, is
    /// redacted whole, hashed and tokenized as the value it writes (it joins the same value
    /// written plainly), and masked escape by escape.
    #[test]
    fn escaped_values_are_redacted_as_what_they_write() -> Result<()> {
        let scanner = Scanner::builder().build()?;
        let redact = |text: &[u8], op: Operator| -> Result<String> {
            let found = scanner.scan(text);
            let tokenizes = op == Operator::Tokenize;
            let r = Redactor::new(HashMap::new(), op, Some(Arc::new(key()?)))?;
            let mut seen = Vec::new();
            let mut tokenizer = |_: &str, value: &[u8]| {
                seen.push(String::from_utf8_lossy(value).into_owned());
                Ok("tok".to_owned())
            };
            let (out, _) = r.redact(text, &found, &[], Some(&mut tokenizer))?;
            if tokenizes {
                assert_eq!(seen, ["jo.beck@example.com"], "the vault gets the value");
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        let logged = b"GET /s?email=jo.beck%40example.com&x=1";
        assert_eq!(redact(logged, Operator::Replace)?, "GET /s?email=<EMAIL_ADDRESS>&x=1");
        assert_eq!(redact(logged, Operator::Tokenize)?, "GET /s?email=tok&x=1");
        assert_eq!(
            redact(logged, Operator::Hash)?,
            redact(b"GET /s?email=jo.beck@example.com&x=1", Operator::Hash)?
        );
        assert_eq!(
            redact(b"to jo&#64;example.com", Operator::Hash)?,
            redact(b"to jo@example.com", Operator::Hash)?
        );
        assert_eq!(
            redact(logged, Operator::Mask { keep_last: 0 })?,
            "GET /s?email=**.****%40*******.***&x=1"
        );
        // an address spelt out is the address: the vault gets it, a hash joins it
        let spelt = b"Kontakt: jo.beck(at)example[dot]com.";
        assert_eq!(redact(spelt, Operator::Tokenize)?, "Kontakt: tok.");
        assert_eq!(
            redact(spelt, Operator::Hash)?,
            redact(b"Kontakt: jo.beck@example.com.", Operator::Hash)?
        );
        assert_eq!(redact(spelt, Operator::Replace)?, "Kontakt: <EMAIL_ADDRESS>.");
        Ok(())
    }

    /// `hash` digests the normal form with the whole HMAC, and each dataset key differs.
    #[test]
    fn hashes_are_whole_normalized_and_per_dataset() -> Result<()> {
        let k = key()?;
        let h = |k: &RedactKey, e: &str, v: &str| k.keyed_hash(e, v.as_bytes());
        assert_eq!(h(&k, "EMAIL_ADDRESS", "x@y.co").len(), 64, "all 256 bits");
        assert_eq!(
            h(&k, "EMAIL_ADDRESS", " Bob@Example.COM "),
            h(&k, "EMAIL_ADDRESS", "bob@example.com")
        );
        assert_eq!(
            h(&k, "CREDIT_CARD", "4111 1111-1111 1111"),
            h(&k, "CREDIT_CARD", "4111111111111111")
        );
        assert_eq!(h(&k, "US_SSN", "078-05-1120"), h(&k, "US_SSN", "078 05 1120"));
        assert_eq!(
            h(&k, "PHONE_NUMBER", "(212) 555-0100"),
            h(&k, "PHONE_NUMBER", "212.555.0100")
        );
        assert_eq!(
            h(&k, "IBAN_CODE", "gb82 west 1234 5698 7654 32"),
            h(&k, "IBAN_CODE", "GB82WEST12345698765432")
        );
        assert_ne!(h(&k, "US_SSN", "078-05-1120"), h(&k, "US_SSN", "078-05-1121"));
        let (a, b) = (k.for_dataset("release_a")?, k.for_dataset("release_b")?);
        let v = "bob@example.com";
        assert_ne!(h(&a, "EMAIL_ADDRESS", v), h(&b, "EMAIL_ADDRESS", v));
        assert_ne!(h(&a, "EMAIL_ADDRESS", v), h(&k, "EMAIL_ADDRESS", v));
        assert_eq!(
            h(&a, "EMAIL_ADDRESS", v),
            h(&k.for_dataset("release_a")?, "EMAIL_ADDRESS", v)
        );
        let sealed = a.encrypt("EMAIL_ADDRESS", v.as_bytes())?;
        assert!(b.decrypt("EMAIL_ADDRESS", &sealed).is_err());
        assert!(k.for_dataset("Release A").is_err() && k.for_dataset("").is_err());
        Ok(())
    }

    #[test]
    fn keyless_operators_need_no_key_and_keyed_ones_do() {
        assert!(Redactor::new(HashMap::new(), Operator::Hash, None).is_err());
        assert!(Redactor::new(HashMap::new(), Operator::Mask { keep_last: 0 }, None).is_ok());
        assert!(Operator::parse("mask:x").is_err() && Operator::parse("shred").is_err());
        assert!(RedactKey::from_hex("abcd").is_err());
    }

    #[test]
    fn masking_a_json_string_keeps_it_json() -> Result<()> {
        // the address is written with escapes: masked as the characters they write, so the
        // output parses and holds neither the name nor the escapes that spelled it
        let scanner = Scanner::builder().build()?;
        let doc = r#"{"e":"\u5c71\u7530@example.jp","n":"line\n536-90-4399","p":"Jos\u00e9@example.com"}"#;
        for keep_last in [0, 4] {
            let r = Redactor::new(HashMap::new(), Operator::Mask { keep_last }, None)?;
            let mut out = Vec::new();
            redact_reader(&scanner, &r, doc.as_bytes(), crate::input::Format::Json, &mut out)?;
            let v: serde_json::Value = serde_json::from_slice(&out)
                .map_err(|e| Error::Invalid(format!("{e}: {}", String::from_utf8_lossy(&out))))?;
            let e = v["e"].as_str().unwrap_or_default();
            assert!(e.starts_with("**@") && !e.contains("u7530"), "{e}");
            assert_eq!(
                v["n"].as_str(),
                Some(if keep_last == 0 {
                    "line\n***-**-****"
                } else {
                    "line\n***-**-4399"
                })
            );
            assert!(v["p"].as_str().is_some_and(|p| p.starts_with("****@")), "{v}");
        }
        assert_eq!(mask(br"\u5c71\ud83d\ude00-\n1", 0), r"*\ud83d\ude00-\n*");
        // hashed as the value the escapes write: it joins the same value written plainly
        let r = Redactor::new(HashMap::new(), Operator::Hash, Some(Arc::new(key()?)))?;
        let hash_of = |doc: &str| -> Result<String> {
            let mut out = Vec::new();
            redact_reader(&scanner, &r, doc.as_bytes(), crate::input::Format::Json, &mut out)?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        let plain = hash_of(r#"{"e":"jos\u00e9@example.com"}"#)?;
        assert!(plain.contains("<EMAIL_ADDRESS:"), "{plain}");
        assert_eq!(plain, hash_of(r#"{"e":"josé@example.com"}"#)?);
        Ok(())
    }

    #[test]
    fn a_number_redacted_in_json_is_a_string() -> Result<()> {
        // a value in a JSON number is replaced whole and quoted (keep leaves it a number)
        let scanner = Scanner::builder().build()?;
        let doc = r#"{"card":4111111111111111,"neg":-4111111111111111,"cards":[4111111111111111, 5500000000000004]}"#;
        for op in [
            Operator::Replace,
            Operator::Mask { keep_last: 4 },
            Operator::Hash,
            Operator::Keep,
        ] {
            let keep = op == Operator::Keep;
            let r = Redactor::new(HashMap::new(), op, Some(Arc::new(key()?)))?;
            for format in [crate::input::Format::Json, crate::input::Format::Ndjson] {
                let mut out = Vec::new();
                redact_reader(&scanner, &r, doc.as_bytes(), format, &mut out)?;
                let v: serde_json::Value = serde_json::from_slice(&out)
                    .map_err(|e| Error::Invalid(format!("{e}: {}", String::from_utf8_lossy(&out))))?;
                let text = v.to_string();
                assert_eq!(keep, text.contains("4111111111111111"), "{text}");
                assert_eq!(keep, v["card"].is_number(), "{text}");
            }
        }
        // a JSON object read as JSON in a log line is redacted as JSON: numbers quoted, a
        // string hashed as the value its escapes write
        let log = r#"LOG {"a":"\n","c":4111111111111111,"n":-4111111111111111} end"#;
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let mut out = Vec::new();
        redact_reader(&scanner, &r, log.as_bytes(), crate::input::Format::Text, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"LOG {"a":"\n","c":"<CREDIT_CARD>","n":"<CREDIT_CARD>"} end"#
        );
        let r = Redactor::new(HashMap::new(), Operator::Hash, Some(Arc::new(key()?)))?;
        let hash_in = |text: &str, format| -> Result<String> {
            let mut out = Vec::new();
            redact_reader(&scanner, &r, text.as_bytes(), format, &mut out)?;
            let out = String::from_utf8_lossy(&out).into_owned();
            Ok(out
                .split("<EMAIL_ADDRESS:")
                .nth(1)
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect())
        };
        let in_log = hash_in(
            r#"LOG {"a":"\n","e":"jo\u0068n@example.com"}"#,
            crate::input::Format::Text,
        )?;
        assert_eq!(in_log.len(), 64);
        assert_eq!(in_log, hash_in("mail john@example.com", crate::input::Format::Text)?);
        // keys replaced alike are numbered, so that none is lost to a reader
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let mut out = Vec::new();
        let map = r#"{"jo@example.com":1,"ana@example.org":{"x":"bob@example.net"},"eve@example.com":3}"#;
        redact_reader(&scanner, &r, map.as_bytes(), crate::input::Format::Json, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"<EMAIL_ADDRESS>":1,"<EMAIL_ADDRESS>#2":{"x":"<EMAIL_ADDRESS>"},"<EMAIL_ADDRESS>#3":3}"#
        );
        // and so are the keys of a document inside a string (a JSON message logged in JSON),
        // at any depth; a value there, or an escaped quote in prose, is no key
        let mut out = Vec::new();
        let inner = r#"{"m":"{\"jo@example.com\":1, \"ana@example.org\" : \"eve@example.com\"}","n":"{\"d\":\"{\\\"bob@example.net\\\":2}\"}","p":"say \"zoe@example.com\" now"}"#;
        redact_reader(&scanner, &r, inner.as_bytes(), crate::input::Format::Json, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"m":"{\"<EMAIL_ADDRESS>\":1, \"<EMAIL_ADDRESS>#2\" : \"<EMAIL_ADDRESS>\"}","n":"{\"d\":\"{\\\"<EMAIL_ADDRESS>#3\\\":2}\"}","p":"say \"<EMAIL_ADDRESS>\" now"}"#
        );
        // so does Redactor::redact (POST /v1/redact) after a scan of the text as the server
        // makes it
        let mut found = crate::input::Collect::default();
        crate::input::scan_reader(&scanner, log.as_bytes(), crate::input::Format::Text, &mut found)?;
        let findings: Vec<Finding> = found.found.into_iter().map(|l| l.finding).collect();
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let (out, _) = r.redact(log.as_bytes(), &findings, &found.json, None)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"LOG {"a":"\n","c":"<CREDIT_CARD>","n":"<CREDIT_CARD>"} end"#
        );
        // a line of an NDJSON file that is no JSON is redacted as text: nothing quoted
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let mut out = Vec::new();
        let lines = "hello jo@example.com\nx {\"ok\":\"a\"} 4111111111111111 y\n";
        redact_reader(&scanner, &r, lines.as_bytes(), crate::input::Format::Ndjson, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello <EMAIL_ADDRESS>\nx {\"ok\":\"a\"} <CREDIT_CARD> y\n"
        );
        // in text, a value is replaced where it stands, unquoted; an escape of a code is read
        // as the scan reads it (a value hashes alike however it is written)
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let text = b"card 4111111111111111.";
        let (out, _) = r.redact(text, &scanner.scan(text), &[], None)?;
        assert_eq!(out, b"card <CREDIT_CARD>.");
        let r = Redactor::new(HashMap::new(), Operator::Hash, Some(Arc::new(key()?)))?;
        let hashed = |text: &[u8]| -> Result<Vec<u8>> { Ok(r.redact(text, &scanner.scan(text), &[], None)?.0) };
        assert_eq!(
            hashed(br"see https://example.com/a\u0041")?,
            hashed(b"see https://example.com/aA")?
        );
        Ok(())
    }

    /// A card written as a JSON float is replaced whole and quoted (the document stays
    /// JSON); one written in full-width digits is masked as the digits it writes.
    #[test]
    fn floats_and_full_width_forms_are_redacted_whole() -> Result<()> {
        let scanner = Scanner::builder().build()?;
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let mut out = Vec::new();
        let doc = r#"{"card": 4000056655665556.0, "n": [4.000056655665556e15, 2.5]}"#;
        redact_reader(&scanner, &r, doc.as_bytes(), crate::input::Format::Json, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"card": "<CREDIT_CARD>", "n": ["<CREDIT_CARD>", 2.5]}"#
        );
        let r = Redactor::new(HashMap::new(), Operator::Mask { keep_last: 4 }, None)?;
        let text = "card ４０００ ０５６６ ５５６６ ５５５６ ok".as_bytes();
        let (out, _) = r.redact(text, &scanner.scan(text), &[], None)?;
        assert_eq!(String::from_utf8_lossy(&out), "card **** **** **** ５５５６ ok");
        Ok(())
    }

    #[test]
    fn overlapping_findings_leave_nothing() -> Result<()> {
        let f = |e: &str, s, t, score| Finding {
            entity_type: e.into(),
            start: s,
            end: t,
            score,
            evidence: vec![],
        };
        let r = Redactor::new(HashMap::new(), Operator::Replace, None)?;
        let (out, _) = r.redact(b"0123456789", &[f("A", 0, 6, 0.5), f("B", 4, 10, 0.9)], &[], None)?;
        assert_eq!(out, b"<B>");
        // the better-scored one kept as it is: the span is replaced as the other's entity
        let ops = HashMap::from([("B".to_owned(), Operator::Keep)]);
        let r = Redactor::new(ops, Operator::Replace, None)?;
        let (out, _) = r.redact(b"0123456789", &[f("A", 0, 6, 0.5), f("B", 4, 10, 0.9)], &[], None)?;
        assert_eq!(out, b"<A>");
        let (out, _) = r.redact(b"0123456789", &[f("B", 0, 6, 0.9)], &[], None)?;
        assert_eq!(out, b"0123456789");
        Ok(())
    }

    /// `mask:N` leaves the last N letters and digits, never more than half of them: a short
    /// value (a name, an IP address) is never left whole.
    #[test]
    fn masking_never_leaves_a_value_whole() {
        assert_eq!(mask(b"4111 1111 1111 1111", 4), "**** **** **** 1111");
        assert_eq!(mask(b"Jo Ng", 4), "** Ng");
        assert_eq!(mask(b"1.2.3.4", 4), "*.*.3.4");
        assert_eq!(mask(b"jo@example.com", 100), "**@****ple.com");
        assert_eq!(mask(b"a", 1), "*");
    }
}
