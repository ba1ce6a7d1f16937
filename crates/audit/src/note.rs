//! Signed notes (C2SP signed-note), the checkpoints they carry (C2SP tlog-checkpoint) and
//! witness cosignatures (C2SP tlog-cosignature). Pure functions: no clock, no I/O.
//!
//! ```text
//! custodia-audit                                  the checkpoint (the note's text):
//! 1234                                            origin, tree size, base64 root,
//! 9f2c...base64 root...=                          then optional extension lines
//!                                                 a blank line, then signature lines:
//! — custodia-audit <base64(key id(4) || Ed25519 signature(64))>
//! — witness.example <base64(key id(4) || time(8, big-endian) || signature(64))>
//! ```
//!
//! A verifier key is written `name+hex(key id)+base64(type || public key)`, type 0x01 for an
//! Ed25519 signer and 0x04 for a witness cosigner; the key id is the first four bytes of
//! `SHA-256(name || "\n" || type || public key)`. A cosigner signs
//! `"cosignature/v1\ntime <seconds>\n" || checkpoint text`, so one key cannot be made to
//! pass for the other and the time it saw the checkpoint is bound to the signature.

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::Hash;

/// Key type of an Ed25519 note signer.
pub const ED25519_TYPE: u8 = 0x01;
/// Key type of a tlog-cosignature/v1 witness.
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// Notes larger than this are refused unread (a checkpoint is a few hundred bytes).
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// At most this many signature lines are looked at (the spec's own bound).
const MAX_SIGNATURES: usize = 100;

/// Why a note, key or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    #[error("the note has no signature by {0}")]
    NotSigned(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    #[error("the signing key is invalid")]
    BadSigningKey,
}

fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[kind]);
    ctx.update(public);
    let digest = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest.as_ref()[..4]);
    id
}

/// A key name: non-empty, no spaces, no `+`, printable.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A public key that verifies note signatures (a log's) or cosignatures (a witness's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: u8,
    public: [u8; 32],
    id: [u8; 4],
}

impl VerifierKey {
    /// The key of an Ed25519 note signer (`kind` [`ED25519_TYPE`]) or witness
    /// ([`COSIGNATURE_TYPE`]).
    pub fn new(name: &str, kind: u8, public: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "the name must be non-empty, without spaces or '+'",
            ));
        }
        if kind != ED25519_TYPE && kind != COSIGNATURE_TYPE {
            return Err(NoteError::MalformedKey("unknown key type"));
        }
        Ok(Self {
            name: name.to_owned(),
            kind,
            public,
            id: key_id(name, kind, &public),
        })
    }

    /// Parses `name+hex8+base64(type || key)`, checking the key id.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected name+keyid+key"));
        };
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::MalformedKey("the key id must be 8 hex digits"));
        }
        let raw = B64
            .decode(data)
            .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
        let (&kind, key) = raw.split_first().ok_or(NoteError::MalformedKey("the key is empty"))?;
        let public: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 key is 32 bytes"))?;
        let parsed = Self::new(name, kind, public)?;
        if !id_hex.eq_ignore_ascii_case(&hex_id(parsed.id)) {
            return Err(NoteError::MalformedKey("the key id does not match the key"));
        }
        Ok(parsed)
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// The key id as 8 hex digits, as the verifier key text and witness routes write it.
    #[must_use]
    pub fn key_id_hex(&self) -> String {
        hex_id(self.id)
    }

    #[must_use]
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    #[must_use]
    pub fn is_cosigner(&self) -> bool {
        self.kind == COSIGNATURE_TYPE
    }

    /// Checks this key's signature on `note` (a cosignature for a witness key) and returns
    /// the cosignature's time (seconds), or `None` for a plain signature.
    pub fn verify(&self, note: &Note) -> Result<Option<u64>, NoteError> {
        let Some(sig) = note.signatures.iter().find(|s| s.name == self.name && s.id == self.id) else {
            return Err(NoteError::NotSigned(self.name.clone()));
        };
        let bad = || NoteError::BadSignature(self.name.clone());
        let verifier = UnparsedPublicKey::new(&ED25519, &self.public);
        if self.is_cosigner() {
            if sig.bytes.len() != 8 + 64 {
                return Err(bad());
            }
            let mut time = [0u8; 8];
            time.copy_from_slice(&sig.bytes[..8]);
            let time = u64::from_be_bytes(time);
            verifier
                .verify(cosigned_message(time, &note.text).as_bytes(), &sig.bytes[8..])
                .map_err(|_| bad())?;
            Ok(Some(time))
        } else {
            if sig.bytes.len() != 64 {
                return Err(bad());
            }
            verifier.verify(note.text.as_bytes(), &sig.bytes).map_err(|_| bad())?;
            Ok(None)
        }
    }
}

fn hex_id(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut data = Vec::with_capacity(33);
        data.push(self.kind);
        data.extend_from_slice(&self.public);
        write!(f, "{}+{}+{}", self.name, hex_id(self.id), B64.encode(data))
    }
}

fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// An Ed25519 key that signs notes (a log) or cosigns checkpoints (a witness). Its seed never
/// leaves it and is not printed by `Debug`.
pub struct NoteSigner {
    key: VerifierKey,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("key", &self.key.to_string())
            .finish()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, kind: u8, seed: &[u8]) -> Result<Self, NoteError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| NoteError::BadSigningKey)?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::BadSigningKey)?;
        Ok(Self {
            key: VerifierKey::new(name, kind, public)?,
            pair,
        })
    }

    #[must_use]
    pub fn verifier(&self) -> &VerifierKey {
        &self.key
    }

    /// Signs `text` (the note's text, ending in a newline): the signed note.
    pub fn sign(&self, text: &str) -> Result<Note, NoteError> {
        let mut note = Note::unsigned(text)?;
        let bytes = if self.key.is_cosigner() {
            return Err(NoteError::BadSigningKey);
        } else {
            self.pair.sign(text.as_bytes()).as_ref().to_vec()
        };
        note.push(&self.key, bytes);
        Ok(note)
    }

    /// Adds this witness's cosignature, made at `time` (seconds since the epoch), to `note`,
    /// replacing an earlier one by the same key.
    pub fn cosign(&self, note: &mut Note, time: u64) -> Result<(), NoteError> {
        if !self.key.is_cosigner() {
            return Err(NoteError::BadSigningKey);
        }
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(self.pair.sign(cosigned_message(time, &note.text).as_bytes()).as_ref());
        note.signatures
            .retain(|s| !(s.name == self.key.name && s.id == self.key.id));
        note.push(&self.key, bytes);
        Ok(())
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    /// What follows the key id: the signature (and a cosignature's time).
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, without its newline.
    #[must_use]
    pub fn line(&self) -> String {
        let mut data = self.id.to_vec();
        data.extend_from_slice(&self.bytes);
        format!("\u{2014} {} {}", self.name, B64.encode(data))
    }
}

/// A note: its text and signature lines (unverified until a [`VerifierKey`] checks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    fn unsigned(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        Ok(Self {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    fn push(&mut self, key: &VerifierKey, bytes: Vec<u8>) {
        self.signatures.push(NoteSignature {
            name: key.name.clone(),
            id: key.id,
            bytes,
        });
    }

    /// Parses a signed note: text, a blank line, one or more signature lines.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(NoteError::MalformedNote("too long"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::MalformedNote("no blank line before the signatures"))?;
        let text = &note[..=split];
        check_text(text)?;
        let lines = note[split + 2..]
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedNote("the last signature line has no newline"))?;
        let mut signatures = Vec::new();
        for line in lines.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::MalformedNote("too many signatures"));
            }
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::MalformedNote(
                "a signature line must start with an em dash and a space",
            ))?;
            let (name, data) = rest
                .split_once(' ')
                .ok_or(NoteError::MalformedNote("a signature line is `— name signature`"))?;
            if !valid_name(name) {
                return Err(NoteError::MalformedNote("a signature names an invalid key"));
            }
            let raw = B64
                .decode(data)
                .map_err(|_| NoteError::MalformedNote("a signature is not base64"))?;
            if raw.len() < 5 {
                return Err(NoteError::MalformedNote("a signature is too short"));
            }
            let mut id = [0u8; 4];
            id.copy_from_slice(&raw[..4]);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id,
                bytes: raw[4..].to_vec(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text (ending in a newline).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    #[must_use]
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The note as it is written: text, blank line, signature lines.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
            out.push('\n');
        }
        out
    }
}

/// A note's text: non-empty UTF-8 lines, each ending in a newline, no blank line, no control
/// characters but the newlines.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::MalformedNote("the text must end in a newline"));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(NoteError::MalformedNote("the text has a blank line"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::MalformedNote("the text has control characters"));
    }
    Ok(())
}

/// A checkpoint: the text of a log's signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Lines after the root (none in Custodia's own checkpoints).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    #[must_use]
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint from a note's text.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint("must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::MalformedCheckpoint("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0')))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::MalformedCheckpoint("the second line must be the tree size"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "the third line must be a base64 SHA-256 root",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::MalformedCheckpoint("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The note text this checkpoint is written as.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signed-note reference example (Go's golang.org/x/mod/sumdb/note documentation).
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SEED_KEY: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIG: &str =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn reference_signer() -> NoteSigner {
        let seed = B64.decode(SEED_KEY).unwrap();
        NoteSigner::from_seed("PeterNeumann", seed[0], &seed[1..]).unwrap()
    }

    #[test]
    fn known_answer_of_the_reference_example() {
        let signer = reference_signer();
        assert_eq!(signer.verifier().to_string(), VKEY);
        let note = signer.sign(TEXT).unwrap();
        assert_eq!(note.to_text(), format!("{TEXT}\n{SIG}"));
        let key = VerifierKey::parse(VKEY).unwrap();
        let parsed = Note::parse(&format!("{TEXT}\n{SIG}")).unwrap();
        assert_eq!(key.verify(&parsed), Ok(None));
    }

    #[test]
    fn every_changed_byte_of_the_text_or_signature_is_caught() {
        let key = VerifierKey::parse(VKEY).unwrap();
        let good = format!("{TEXT}\n{SIG}");
        for i in 0..good.len() {
            if !good.is_char_boundary(i) || !good.is_char_boundary(i + 1) {
                continue;
            }
            let mut bytes = good.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(text) = String::from_utf8(bytes) else { continue };
            if let Ok(note) = Note::parse(&text) {
                assert!(key.verify(&note).is_err(), "byte {i} flipped still verifies");
            }
        }
    }

    #[test]
    fn keys_parse_strictly() {
        assert!(VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(VerifierKey::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq").is_err());
        assert!(VerifierKey::parse("PeterNeumann+c74f20a3").is_err());
        assert!(VerifierKey::parse("").is_err());
        // The same name with another type is another key id.
        let k = VerifierKey::parse(VKEY).unwrap();
        let other = VerifierKey::new("PeterNeumann", COSIGNATURE_TYPE, *k.public_key()).unwrap();
        assert_ne!(other.key_id(), k.key_id());
    }

    #[test]
    fn malformed_notes_are_refused() {
        for bad in [
            String::new(),
            TEXT.to_owned(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n— PeterNeumann\n"),
            format!(
                "{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{TEXT}\n{}", SIG.trim_end()),
            format!("a\n\nb\n\n{SIG}"),
            format!("a\u{7}\n\n{SIG}"),
            "x".repeat(MAX_NOTE_LEN + 1),
        ] {
            assert!(Note::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_note_by_another_key_is_not_signed_by_this_one() {
        let other = NoteSigner::from_seed("PeterNeumann", ED25519_TYPE, &[9; 32]).unwrap();
        let note = other.sign(TEXT).unwrap();
        let key = VerifierKey::parse(VKEY).unwrap();
        // Same name, other key: the key id differs, so it is not even considered.
        assert_eq!(key.verify(&note), Err(NoteError::NotSigned("PeterNeumann".into())));
        // A signature carrying the right name and key id but made by another key fails.
        let mut forged = Note::parse(&note.to_text()).unwrap();
        forged.signatures[0].id = key.key_id();
        assert_eq!(key.verify(&forged), Err(NoteError::BadSignature("PeterNeumann".into())));
    }

    #[test]
    fn cosignatures_bind_the_time_and_the_checkpoint() {
        let log = NoteSigner::from_seed("example.com/log", ED25519_TYPE, &[1; 32]).unwrap();
        let witness = NoteSigner::from_seed("witness.example", COSIGNATURE_TYPE, &[2; 32]).unwrap();
        let cp = Checkpoint::new("example.com/log", 7, [3; 32]);
        let mut note = log.sign(&cp.text()).unwrap();
        witness.cosign(&mut note, 1_700_000_000).unwrap();
        let parsed = Note::parse(&note.to_text()).unwrap();
        assert_eq!(log.verifier().verify(&parsed), Ok(None));
        assert_eq!(witness.verifier().verify(&parsed), Ok(Some(1_700_000_000)));
        // The cosignature message is the spec's: recompute it independently.
        let sig = &parsed.signatures()[1];
        let msg = format!(
            "cosignature/v1\ntime 1700000000\nexample.com/log\n7\n{}\n",
            B64.encode([3u8; 32])
        );
        UnparsedPublicKey::new(&ED25519, witness.verifier().public_key())
            .verify(msg.as_bytes(), &sig.bytes[8..])
            .unwrap();
        // Another time claimed in the signature fails.
        let mut moved = parsed.clone();
        moved.signatures[1].bytes[7] ^= 1;
        assert!(witness.verifier().verify(&moved).is_err());
        // A log key cannot cosign, a witness key cannot sign.
        assert!(log.cosign(&mut note.clone(), 1).is_err());
        assert!(witness.sign("x\n").is_err());
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_malformed_text() {
        let cp = Checkpoint::new("custodia-audit", 1234, [7; 32]);
        assert_eq!(Checkpoint::parse(&cp.text()), Ok(cp));
        let root = B64.encode([7u8; 32]);
        for bad in [
            format!("custodia-audit\n01\n{root}\n"),
            format!("custodia-audit\n-1\n{root}\n"),
            format!("custodia-audit\n1\n{root}"),
            format!("\n1\n{root}\n"),
            "custodia-audit\n1\nAAAA\n".to_owned(),
            format!("custodia-audit\n18446744073709551616\n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        let with_ext = Checkpoint::parse(&format!("o\n5\n{root}\nextra line\n")).unwrap();
        assert_eq!(with_ext.extensions, vec!["extra line".to_owned()]);
    }
}
