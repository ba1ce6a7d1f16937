//! Signed checkpoints of the audit log and its offline verification.
//!
//! The audit log is an RFC 6962 Merkle tree whose leaves are the canonical entries in log
//! order. A checkpoint commits to the tree's size and root in the C2SP signed-note format,
//! signed with the vault's Ed25519 audit key:
//!
//! ```text
//! custodia-audit            origin
//! 1234                      tree size
//! <base64 root hash>
//!
//! — custodia-audit <base64(key id (4 bytes) || Ed25519 signature)>
//! ```
//!
//! The key id is the first four bytes of SHA-256(name || "\n" || 0x01 || public key). Anyone
//! with the entries and the public key can recompute every root and check every signature, so
//! an edit, deletion, insertion or reordering of checkpointed entries cannot go unnoticed.

use aws_lc_rs::signature::{ED25519, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_audit::{Hash, leaf_hash};
use custodia_store::{AuditRow, CheckpointRow, Store, StoreError};
use tokio::sync::Mutex;

use crate::audit::Allowed;
use crate::{Timestamp, Vault, VaultError};

/// The origin line and signer name of Custodia audit checkpoints.
pub const CHECKPOINT_ORIGIN: &str = "custodia-audit";
/// Entries read from the store per page.
const PAGE: i64 = 10_000;

/// How far this process has read the log, and how far it is checkpointed. Only the tree's
/// right edge is kept (O(log n) memory); proofs read the leaves they need from the store.
#[derive(Default)]
pub(crate) struct LogState {
    range: custodia_audit::CompactRange,
    last_seq: i64,
    checkpointed: u64,
}

/// The log state, behind an async lock (checkpoints are made one at a time).
#[derive(Default)]
pub(crate) struct LogTracker(Mutex<LogState>);

fn key_id(public_key: &[u8]) -> [u8; 4] {
    let mut data = Vec::with_capacity(CHECKPOINT_ORIGIN.len() + 2 + public_key.len());
    data.extend_from_slice(CHECKPOINT_ORIGIN.as_bytes());
    data.push(b'\n');
    data.push(0x01);
    data.extend_from_slice(public_key);
    let digest = custodia_crypto::sha256(&data);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The signed body of a checkpoint note.
fn note_body(size: u64, root: &Hash) -> String {
    format!("{CHECKPOINT_ORIGIN}\n{size}\n{}\n", B64.encode(root))
}

impl Vault {
    /// The audit log's public key (Ed25519, 32 bytes), for verifiers.
    #[must_use]
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.keys.audit_signer.public_key().as_ref().to_vec()
    }

    /// Reads entries appended since the last call and, if there are any, signs and stores a
    /// checkpoint of the whole log. Returns the new checkpoint.
    pub async fn checkpoint(&self, now: Timestamp) -> Result<Option<CheckpointRow>, VaultError> {
        let mut state = self.log.0.lock().await;
        self.read_new_leaves(&mut state).await?;
        if state.range.size() == state.checkpointed {
            return Ok(None);
        }
        let size = state.range.size();
        let root = state.range.root();
        let body = note_body(size as u64, &root);
        let signature = self.keys.audit_signer.sign(body.as_bytes());
        let public_key = self.audit_public_key();
        let mut sig = key_id(&public_key).to_vec();
        sig.extend_from_slice(signature.as_ref());
        let note = format!("{body}\n\u{2014} {CHECKPOINT_ORIGIN} {}\n", B64.encode(&sig));
        let row = CheckpointRow {
            tree_size: size as i64,
            root: root.to_vec(),
            at: now.0,
            note,
        };
        let stored = row.clone();
        let inserted = self
            .store
            .write(move |mut tx| Box::pin(async move { tx.audit().insert_checkpoint(&stored).await }))
            .await;
        match inserted {
            // Another server node checkpointed the same size first: fine.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        state.checkpointed = size;
        Ok(Some(row))
    }

    /// Adds the audit entries appended since the last run to the subject index (a periodic job:
    /// subject lookups read the entries after it from the log, so they stay exact meanwhile).
    pub async fn index_audit_subjects(&self) -> Result<u64, VaultError> {
        Ok(self
            .store
            .write(|mut tx| Box::pin(async move { tx.audit().index_subjects().await }))
            .await?)
    }

    /// Extends `state` with the leaves of entries appended since it was last read.
    async fn read_new_leaves(&self, state: &mut LogState) -> Result<(), VaultError> {
        loop {
            let page = entries(&self.store, state.last_seq, PAGE).await?;
            let Some(last) = page.last() else { break };
            state.last_seq = last.seq;
            for e in &page {
                state.range.push(leaf_hash(e.entry.as_bytes()));
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok(())
    }

    /// An inclusion proof of entry `index` (0-based position in the log) in the tree of the
    /// first `tree_size` entries, with that entry's leaf hash; for roles with `read_audit`.
    pub async fn inclusion_proof(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        index: u64,
        tree_size: u64,
    ) -> Result<(Hash, Vec<Hash>), VaultError> {
        let event = crate::audit::AuditEvent::new("audit.proof", principal);
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            let leaves = self.leaves_up_to(tree_size).await?;
            let i = usize::try_from(index).unwrap_or(usize::MAX);
            let proof = custodia_audit::inclusion_proof(&leaves, i)
                .map_err(|e| VaultError::bad_request("invalid_proof_request", e.to_string()))?;
            Ok(Allowed::Read((leaves[i], proof), None))
        })
        .await
    }

    /// A consistency proof between the trees of the first `from` and `to` entries.
    pub async fn consistency_proof(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, VaultError> {
        let event = crate::audit::AuditEvent::new("audit.proof", principal);
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            if from == 0 || from > to {
                return Err(
                    VaultError::bad_request("invalid_proof_request", "from must be 1 or more and at most to").into(),
                );
            }
            let leaves = self.leaves_up_to(to).await?;
            let proof = custodia_audit::consistency_proof(&leaves, usize::try_from(from).unwrap_or(usize::MAX))
                .map_err(|e| VaultError::bad_request("invalid_proof_request", e.to_string()))?;
            Ok(Allowed::Read(proof, None))
        })
        .await
    }

    /// The first `size` leaves of the log, read from the store.
    async fn leaves_up_to(&self, size: u64) -> Result<Vec<Hash>, VaultError> {
        let wanted = usize::try_from(size).unwrap_or(usize::MAX);
        let mut leaves = Vec::new();
        let mut after = 0i64;
        while leaves.len() < wanted {
            let page = entries(&self.store, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            leaves.extend(
                page.iter()
                    .take(wanted - leaves.len())
                    .map(|e| leaf_hash(e.entry.as_bytes())),
            );
        }
        if size == 0 || leaves.len() < wanted {
            return Err(VaultError::bad_request(
                "invalid_proof_request",
                format!("tree_size must be from 1 to the log's size ({})", leaves.len()),
            ));
        }
        Ok(leaves)
    }

    /// The newest checkpoint, for roles with `read_audit`; this read is itself audited.
    pub async fn audit_checkpoint(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
    ) -> Result<custodia_types::Checkpoint, VaultError> {
        let event = crate::audit::AuditEvent::new("audit.checkpoint", principal);
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            let cp = self
                .store
                .reader()
                .await?
                .audit()
                .latest_checkpoint()
                .await?
                .ok_or_else(|| VaultError::not_found("no_checkpoint", "the audit log has no checkpoint yet"))?;
            let checkpoint = custodia_types::Checkpoint {
                tree_size: cp.tree_size,
                root: B64.encode(&cp.root),
                at: Timestamp(cp.at).to_rfc3339(),
                note: cp.note,
            };
            Ok(Allowed::Read(checkpoint, None))
        })
        .await
    }
}

/// Audit entries with `seq > after`, oldest first, at most `limit`.
async fn entries(store: &Store, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    store.reader().await?.audit().entries(after, limit).await
}

async fn checkpoints_of(store: &Store) -> Result<Vec<CheckpointRow>, StoreError> {
    store.reader().await?.audit().checkpoints().await
}

/// What verification found in an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: usize,
    pub checkpoints: usize,
    /// Entries after the last checkpoint: intact as far as their leaf hashes go, but not yet
    /// covered by a signature.
    pub unsigned_tail: usize,
}

/// Recomputes the whole audit log offline: every entry's leaf hash, the order of entries, every
/// checkpoint's signature and root. `contiguous` also requires sequence numbers without gaps
/// (true for SQLite, whose one writer numbers entries in commit order). The error names the
/// first bad entry, or the first checkpoint that no longer matches and the entries it covers.
pub async fn verify_audit_log(store: &Store, public_key: &[u8], contiguous: bool) -> Result<VerifyReport, String> {
    let mut leaves: Vec<Hash> = Vec::new();
    // Read from the very start, so that an entry slipped in below 1 is seen too. (Entry times
    // are not checked for order: concurrent requests may commit in another order than the one
    // they were stamped in. The signed roots catch a reordering.)
    let (mut after, mut last_seq) = (i64::MIN, 0i64);
    loop {
        let page = entries(store, after, PAGE).await.map_err(|e| e.to_string())?;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        for e in &page {
            if contiguous && e.seq != last_seq + 1 {
                return Err(if e.seq > last_seq + 1 {
                    format!("entry {} is missing (the next entry is {})", last_seq + 1, e.seq)
                } else {
                    format!("entry {} is out of sequence", e.seq)
                });
            }
            let leaf = leaf_hash(e.entry.as_bytes());
            if e.leaf.as_slice() != leaf.as_slice() {
                return Err(format!(
                    "entry {} was changed: its content does not match its leaf hash",
                    e.seq
                ));
            }
            if crate::audit::audit_columns(&e.entry) != Some((Some(e.at), e.index.clone())) {
                return Err(format!(
                    "entry {} has indexed columns (at, principal, action, decision, purpose, subject) that do not match its content",
                    e.seq
                ));
            }
            last_seq = e.seq;
            leaves.push(leaf);
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    let checkpoints = checkpoints_of(store).await.map_err(|e| e.to_string())?;
    // Roots at every checkpoint size, in one pass over the leaves.
    let mut range = custodia_audit::CompactRange::default();
    let mut roots_at = std::collections::HashMap::new();
    let sizes: std::collections::HashSet<u64> = checkpoints
        .iter()
        .filter_map(|c| u64::try_from(c.tree_size).ok())
        .collect();
    for leaf in &leaves {
        range.push(*leaf);
        if sizes.contains(&range.size()) {
            roots_at.insert(range.size(), range.root());
        }
    }
    let verifier = UnparsedPublicKey::new(&ED25519, public_key);
    let expected_id = key_id(public_key);
    let mut previous = 0usize;
    for cp in &checkpoints {
        let size = usize::try_from(cp.tree_size).map_err(|_| format!("checkpoint size {} is invalid", cp.tree_size))?;
        let bad = |why: &str| format!("checkpoint at size {size} {why}");
        let (body, signature_line) = cp.note.split_once("\n\n").ok_or_else(|| bad("is not a signed note"))?;
        let body = format!("{body}\n");
        let sig_b64 = signature_line
            .trim_end()
            .strip_prefix(&format!("\u{2014} {CHECKPOINT_ORIGIN} "))
            .ok_or_else(|| bad("has no signature by custodia-audit"))?;
        let sig = B64.decode(sig_b64).map_err(|_| bad("has a malformed signature"))?;
        if sig.len() != 4 + 64 || sig[..4] != expected_id {
            return Err(bad("is signed by another key"));
        }
        verifier
            .verify(body.as_bytes(), &sig[4..])
            .map_err(|_| bad("has a signature that does not verify"))?;
        let root_bytes: Hash = cp.root.as_slice().try_into().map_err(|_| bad("has a malformed root"))?;
        if body != note_body(size as u64, &root_bytes) {
            return Err(bad("does not match its signed note"));
        }
        if size > leaves.len() {
            return Err(bad(&format!(
                "covers {size} entries but the log holds only {}: entries were deleted",
                leaves.len()
            )));
        }
        if roots_at.get(&(size as u64)) != Some(&root_bytes) {
            return Err(bad(&format!(
                "does not match the entries: one of entries at positions {} to {size} was changed, inserted, removed or moved",
                previous + 1
            )));
        }
        previous = size;
    }
    // The subject index must say what the log says, or subject lookups could hide entries.
    let (missing, extra, beyond) = store
        .reader()
        .await
        .map_err(|e| e.to_string())?
        .audit()
        .subject_index_faults()
        .await
        .map_err(|e| e.to_string())?;
    if missing > 0 || extra > 0 || beyond {
        return Err(format!(
            "the audit subject index does not match the log ({missing} entries missing from it, {extra} rows no entry has{}): lookups by subject could hide entries",
            if beyond { ", its mark beyond the log" } else { "" }
        ));
    }
    Ok(VerifyReport {
        entries: leaves.len(),
        checkpoints: checkpoints.len(),
        unsigned_tail: leaves.len() - previous,
    })
}

/// Writes the audit log up to its newest checkpoint as JSON lines that a third party can check
/// without database access: first the checkpoint (signed note and public key), then every
/// entry it covers with its leaf hash and inclusion proof against that checkpoint's root.
/// Returns how many entries were written.
pub async fn export_audit_log(store: &Store, public_key: &[u8], out: &mut dyn std::io::Write) -> Result<usize, String> {
    let checkpoint = checkpoints_of(store)
        .await
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the audit log has no checkpoint yet (the server signs one every second and at shutdown)")?;
    let size = usize::try_from(checkpoint.tree_size).map_err(|_| "checkpoint size is invalid".to_owned())?;
    let mut all = Vec::with_capacity(size);
    let mut after = i64::MIN;
    while all.len() < size {
        let page = entries(store, after, PAGE).await.map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page);
    }
    all.truncate(size);
    if all.len() < size {
        return Err(format!(
            "the checkpoint covers {size} entries but the log holds {}",
            all.len()
        ));
    }
    let tree = custodia_audit::Tree::new(all.iter().map(|e| leaf_hash(e.entry.as_bytes())).collect());
    let io = |e: std::io::Error| e.to_string();
    let header = serde_json::json!({
        "type": "checkpoint",
        "tree_size": checkpoint.tree_size,
        "root": B64.encode(&checkpoint.root),
        "note": checkpoint.note,
        "algorithm": "ed25519",
        "public_key": B64.encode(public_key),
    });
    writeln!(out, "{header}").map_err(io)?;
    for (index, e) in all.iter().enumerate() {
        let proof = tree.inclusion_proof(index).map_err(|e| e.to_string())?;
        let line = serde_json::json!({
            "type": "entry",
            "index": index,
            "seq": e.seq,
            "entry": e.entry,
            "leaf_hash": B64.encode(leaf_hash(e.entry.as_bytes())),
            "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}").map_err(io)?;
    }
    Ok(size)
}
