//! Signed checkpoints of the audit log, and proofs against them.
//!
//! The audit log is an RFC 6962 Merkle tree whose leaves are the canonical entries in log
//! order. A checkpoint commits to the tree's size and root as a C2SP signed note (see
//! `custodia_audit::note`), signed with the vault's Ed25519 audit key:
//!
//! ```text
//! custodia-audit            origin
//! 1234                      tree size
//! <base64 root hash>
//!
//! — custodia-audit <base64(key id (4 bytes) || Ed25519 signature)>
//! ```
//!
//! The server resumes the log only after checking it against its own and outside
//! checkpoints (`verify.rs`), keeps the tree's right edge in memory from then on, and before
//! each new checkpoint checks that the database still holds the newest checkpoint and that
//! the log still extends it. Once the log diverges the vault stops answering (fail closed).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_audit::chain::{Link, START};
use custodia_audit::note::{Checkpoint, VerifierKey};
use custodia_audit::tiles::{HashRead, Plan, TileBuilder, tile_bytes, tile_hashes};
use custodia_audit::{FullTile, Hash, leaf_hash};
use custodia_store::{AuditRow, CheckpointRow, Store, StoreError, TileRow};
use tokio::sync::Mutex;

use crate::audit::Allowed;
use crate::progress::Progress;
use crate::verify::{AuditTrust, TrustedCheckpoint, VerifyReport, verify_audit_log};
use crate::{Timestamp, Vault, VaultError};

/// The origin line and signer name of Custodia audit checkpoints.
pub const CHECKPOINT_ORIGIN: &str = "custodia-audit";
/// Why the log stops when an append finds its newest entry is not the one this process
/// appended last.
pub(crate) const TAIL_DELETED: &str =
    "the newest audit entry is not the one this server appended last: entries were deleted from the database";
/// Entries read from the store per page.
const PAGE: i64 = 10_000;
/// Audit proofs an API key may ask for, per second on average and at once.
pub(crate) const PROOFS_PER_SECOND: f64 = 20.0;
pub(crate) const PROOF_BURST: f64 = 100.0;

/// How far this process has read the log, and how far it is checkpointed. Only the tree's
/// right edge is kept (O(log n) memory: the tile builder's pending hashes); the full tiles it
/// cuts are stored with the next checkpoint, and proofs read those.
#[derive(Default)]
pub(crate) struct LogState {
    tiles: TileBuilder,
    /// Tiles cut but not yet stored (they go in the next checkpoint's transaction).
    pending: Vec<TileRow>,
    last_seq: i64,
    /// The link of the entry `last_seq`, which the next entry's must follow.
    last_link: Link,
    /// The newest checkpoint this process signed or found the log to extend (size, root).
    signed: Option<(u64, Hash)>,
    resumed: bool,
}

/// The log state, behind an async lock (checkpoints are made one at a time), and why the log
/// stopped, once it has: set once, never cleared while the process runs.
#[derive(Default)]
pub(crate) struct LogTracker {
    state: Mutex<LogState>,
    diverged: std::sync::OnceLock<String>,
}

impl LogTracker {
    /// Why appends stopped, if they have.
    pub(crate) fn diverged(&self) -> Option<&str> {
        self.diverged.get().map(String::as_str)
    }

    /// `Ok` while the log takes entries; once it no longer matches its checkpoints, the
    /// error every audited call answers until an operator has looked (fail closed).
    pub(crate) fn accepting(&self) -> Result<(), VaultError> {
        match self.diverged() {
            Some(_) => Err(VaultError::unavailable(
                "audit_log_diverged",
                "the audit log no longer matches its checkpoints; the vault stopped answering",
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn stop(&self, why: String) -> VaultError {
        tracing::error!(problem = %why, "the audit log no longer matches its checkpoints; the vault stops answering");
        let _ = self.diverged.set(why);
        VaultError::unavailable("audit_log_diverged", "the audit log no longer matches its checkpoints")
    }
}

impl Vault {
    /// The audit log's checkpoint key as a verifier key (`custodia-audit+<id>+<key>`): what
    /// operators pin and witnesses are configured with.
    #[must_use]
    pub fn audit_verifier_key(&self) -> VerifierKey {
        self.keys.audit_signer.verifier().clone()
    }

    /// The audit log's public key (Ed25519, 32 bytes), for verifiers.
    #[must_use]
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.keys.audit_signer.verifier().public_key().to_vec()
    }

    /// Stops the audit log for good in this process (fail closed: nothing is answered any
    /// more): for evidence found outside the vault, such as a witness refusing the log.
    pub fn stop_audit_log(&self, why: String) {
        let _ = self.log.stop(why);
    }

    /// Checks the whole log against the checkpoints in the database and `trusted` (from
    /// outside it), signed by this vault's key, and resumes it from there. A server calls this
    /// before it answers anything: an error means the log was tampered with (truncated,
    /// rewritten, its checkpoints deleted) and the server must not start.
    pub async fn resume_audit_log(&self, trusted: Vec<TrustedCheckpoint>) -> Result<VerifyReport, String> {
        let mut state = self.log.state.lock().await;
        let trust = AuditTrust {
            key: self.audit_verifier_key(),
            tag_key: Some(std::sync::Arc::clone(&self.keys.audit_tags)),
            link_key: Some(std::sync::Arc::clone(&self.keys.audit_links)),
            trusted,
            now: Timestamp::now(),
            max_unsigned_age: None,
            contiguous: !self.store.shared(),
        };
        let report = verify_audit_log(&self.store, &trust, &()).await?;
        let (tiles, pending) = self.catch_up_tiles(report.last_seq).await.map_err(|e| e.to_string())?;
        if tiles.size() != report.range.size() || tiles.root() != report.range.root() {
            return Err(format!(
                "the stored audit tiles do not match the log ({} leaves tiled and the root differs): they were changed",
                tiles.size()
            ));
        }
        state.tiles = tiles;
        state.pending = pending;
        state.last_seq = report.last_seq;
        state.last_link = report.last_link;
        state.signed = report.newest;
        state.resumed = true;
        Ok(report)
    }

    /// The tile builder resumed from the stored tiles and brought up to the entry `upto`:
    /// the leaves after the last stored level-0 tile are read from the log (all of them, once,
    /// for a log from before tiles). Tiles completed on the way are stored in batches; the
    /// last few, if any, are returned to go with the next checkpoint.
    async fn catch_up_tiles(&self, upto: i64) -> Result<(TileBuilder, Vec<TileRow>), VaultError> {
        // (another node may have stored tiles of entries it appended after `upto`: not ours)
        let last = self.store.reader().await?.audit().last_leaf_tile(upto).await?;
        let (size, mut after) = match last {
            Some((idx, seq)) => (u64::try_from(idx + 1).unwrap_or(0) * 256, seq),
            None => (0, i64::MIN),
        };
        let reads = custodia_audit::tiles::edge_reads(size);
        let answers = self.read_hashes(&reads).await?;
        let mut tiles = TileBuilder::resume(size, &answers).map_err(|e| VaultError::internal(&e))?;
        let mut pending = Vec::new();
        while after < upto {
            let page = self.store.reader().await?.audit().leaves(after, PAGE).await?;
            let Some(&(last_seq, _)) = page.last() else { break };
            for (seq, leaf) in page.iter().take_while(|(seq, _)| *seq <= upto) {
                let leaf: Hash = leaf
                    .as_slice()
                    .try_into()
                    .map_err(|_| VaultError::internal(&"an audit entry without a leaf hash"))?;
                pending.extend(tiles.push(leaf).into_iter().map(|t| tile_row(t, *seq)));
            }
            after = last_seq;
            if pending.len() >= 1000 {
                let batch = std::mem::take(&mut pending);
                self.store
                    .write(move |mut tx| Box::pin(async move { tx.audit().insert_tiles(&batch).await }))
                    .await?;
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok((tiles, pending))
    }

    /// Reads entries appended since the last call and, if there are any, signs and stores a
    /// checkpoint of the whole log. Returns the new checkpoint. Before signing, checks that
    /// the database still holds the newest checkpoint and that the log extends it; if not,
    /// the vault stops answering.
    pub async fn checkpoint(&self, now: Timestamp) -> Result<Option<CheckpointRow>, VaultError> {
        self.log.accepting()?;
        // (an append inside a write found the tail changed: its request failed alone so far)
        if self.store.audit_tail_broken() {
            return Err(self.log.stop(crate::checkpoint::TAIL_DELETED.to_owned()));
        }
        if !self.log.state.lock().await.resumed {
            self.resume_audit_log(Vec::new())
                .await
                .map_err(|why| self.log.stop(why))?;
        }
        let mut state = self.log.state.lock().await;
        let latest = self.newest_checkpoint().await?;
        let signed_size = state.signed.map_or(0, |(size, _)| size);
        // The newest stored checkpoint must be ours or a later one (another node's).
        let watch = match &latest {
            None if signed_size > 0 => {
                return Err(self.log.stop(format!(
                    "the database holds no checkpoint, but the log was checkpointed at size {signed_size}: checkpoints were deleted"
                )));
            }
            None => None,
            Some(cp) => {
                let size = u64::try_from(cp.tree_size).unwrap_or(0);
                let root: Option<Hash> = cp.root.as_slice().try_into().ok();
                if size < signed_size {
                    return Err(self.log.stop(format!(
                        "the newest checkpoint in the database is at size {size}, but the log was checkpointed at size {signed_size}: checkpoints were deleted"
                    )));
                }
                if size == signed_size && root != state.signed.map(|(_, r)| r) {
                    return Err(self.log.stop(format!(
                        "the checkpoint at size {size} in the database is not the one this server signed"
                    )));
                }
                (size > state.tiles.size()).then_some((size, root))
            }
        };
        let seen = self.read_new_leaves(&mut state, watch.map(|(size, _)| size)).await?;
        if let Some((size, root)) = watch {
            match seen {
                Some(found) if Some(found) == root => state.signed = Some((size, found)),
                Some(_) => {
                    return Err(self.log.stop(format!(
                        "the checkpoint at size {size} in the database does not match the log's entries"
                    )));
                }
                None => {
                    return Err(self.log.stop(format!(
                        "the newest checkpoint covers {size} entries but the log holds only {}: entries were deleted",
                        state.tiles.size()
                    )));
                }
            }
        }
        let size = state.tiles.size();
        if state.signed.is_some_and(|(s, _)| s == size) || size == 0 {
            // Every entry this node knows of is covered by a signed checkpoint.
            custodia_metrics::checkpoint_covered(now.0);
            return Ok(None);
        }
        let root = state.tiles.root();
        let note = self
            .keys
            .audit_signer
            .sign(&Checkpoint::new(CHECKPOINT_ORIGIN, size, root).text())
            .map_err(|e| VaultError::internal(&e))?;
        let row = CheckpointRow {
            tree_size: as_i64(size),
            root: root.to_vec(),
            at: now.0,
            note: note.to_text(),
        };
        // The tiles the new entries completed go with the checkpoint: the stored tiles then
        // always cover the newest checkpoint, which is what proofs are planned against.
        let tiles = state.pending.clone();
        let stored = row.clone();
        let inserted = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.audit().insert_tiles(&tiles).await?;
                    tx.audit().insert_checkpoint(&stored).await
                })
            })
            .await;
        match inserted {
            Ok(()) => {}
            // Another server node checkpointed the same size first: store the tiles alone.
            Err(StoreError::Conflict(_)) => {
                let tiles = state.pending.clone();
                self.store
                    .write(move |mut tx| Box::pin(async move { tx.audit().insert_tiles(&tiles).await }))
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        state.pending.clear();
        state.signed = Some((size, root));
        custodia_metrics::checkpoint_covered(now.0);
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

    /// Extends `state` with the leaves of entries appended since it was last read; returns the
    /// root at size `watch` if the tree passed that size.
    async fn read_new_leaves(&self, state: &mut LogState, watch: Option<u64>) -> Result<Option<Hash>, VaultError> {
        let mut seen = None;
        loop {
            let page = entries(&self.store, state.last_seq, PAGE).await?;
            let Some(last) = page.last() else { break };
            state.last_seq = last.seq;
            for e in &page {
                // No entry is signed that the vault did not write: a row inserted into the
                // database by someone without its keys carries no tag of its key.
                if let Err(why) = self.keys.audit_tags.check(&e.entry) {
                    return Err(self.log.stop(format!(
                        "audit entry {} was not written by this vault ({why}): it was inserted into the database",
                        e.seq
                    )));
                }
                // Nor one the vault wrote but did not append there: a copy of one of its
                // entries inserted again.
                let leaf = leaf_hash(e.entry.as_bytes());
                let link = e.link.as_deref().unwrap_or_default();
                if !self.keys.audit_links.check(&state.last_link, &leaf, link) {
                    return Err(self.log.stop(format!(
                        "audit entry {} is not where this vault appended it (its link does not follow the entry before it): it was copied or inserted into the database",
                        e.seq
                    )));
                }
                state.last_link = custodia_audit::chain::stored_link(Some(link)).unwrap_or(START);
                let done = state.tiles.push(leaf);
                state.pending.extend(done.into_iter().map(|t| tile_row(t, e.seq)));
                if watch == Some(state.tiles.size()) {
                    seen = Some(state.tiles.root());
                }
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok(seen)
    }

    /// An inclusion proof of entry `index` (0-based position in the log) in the tree of the
    /// first `tree_size` entries, with that entry's leaf hash; for roles with `read_audit`.
    /// Reads O(log n) stored tiles, whatever the log's size.
    pub async fn inclusion_proof(
        &self,
        principal: &crate::Principal,
        now: Timestamp,
        index: u64,
        tree_size: u64,
    ) -> Result<(Hash, Vec<Hash>), VaultError> {
        self.proof_limit.take(&principal.id, now, "audit proofs")?;
        let event = crate::audit::AuditEvent::new("audit.proof", principal)
            .detail("index", index.to_string())
            .detail("tree_size", tree_size.to_string());
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            let stored = self.proof_bound(tree_size).await?;
            let plan = Plan::inclusion(index, tree_size, stored).map_err(bad_proof_request)?;
            let proof = plan
                .assemble(&self.read_hashes(plan.reads()).await?)
                .map_err(|e| VaultError::internal(&e))?;
            let leaf = self
                .read_leaves(index, index + 1)
                .await?
                .first()
                .copied()
                .ok_or_else(|| VaultError::internal(&"the entry's leaf is missing"))?;
            Ok(Allowed::Read((leaf, proof), None))
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
        self.proof_limit.take(&principal.id, now, "audit proofs")?;
        let event = crate::audit::AuditEvent::new("audit.proof", principal)
            .detail("from", from.to_string())
            .detail("to", to.to_string());
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            if from == 0 || from > to {
                return Err(VaultError::unprocessable(
                    "invalid_proof_request",
                    "from must be 1 or more and at most to",
                )
                .into());
            }
            Ok(Allowed::Read(self.consistency_hashes(from, to).await?, None))
        })
        .await
    }

    /// The consistency proof between the trees of the first `from` and `to` entries (both
    /// at most the newest checkpoint's size), from the stored tiles.
    pub async fn consistency_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, VaultError> {
        let stored = self.proof_bound(to).await?;
        let plan = Plan::consistency(from, to, stored).map_err(bad_proof_request)?;
        plan.assemble(&self.read_hashes(plan.reads()).await?)
            .map_err(|e| VaultError::internal(&e))
    }

    /// The newest stored checkpoint.
    async fn newest_checkpoint(&self) -> Result<Option<CheckpointRow>, VaultError> {
        Ok(self.store.reader().await?.audit().latest_checkpoint().await?)
    }

    /// The size proofs are planned against: the newest checkpoint's (the stored tiles cover
    /// it). A proof for a larger tree is refused: there is no signed root to check it with.
    async fn proof_bound(&self, tree_size: u64) -> Result<u64, VaultError> {
        let stored = self
            .newest_checkpoint()
            .await?
            .map_or(0, |c| u64::try_from(c.tree_size).unwrap_or(0));
        if tree_size == 0 || tree_size > stored {
            return Err(VaultError::unprocessable(
                "invalid_proof_request",
                format!("tree_size must be from 1 to the newest checkpoint's size ({stored})"),
            ));
        }
        Ok(stored)
    }

    /// Answers a plan's reads from the store: full tiles, tile roots, and leaves past the
    /// last full level-0 tile.
    async fn read_hashes(&self, reads: &[HashRead]) -> Result<Vec<Vec<Hash>>, VaultError> {
        let mut answers = Vec::with_capacity(reads.len());
        for read in reads {
            let hashes = match *read {
                HashRead::Tile(id) => {
                    let bytes = self
                        .store
                        .reader()
                        .await?
                        .audit()
                        .tile(i64::from(id.level()), as_i64(id.index()))
                        .await?
                        .ok_or_else(|| VaultError::internal(&format_args!("audit tile {id} is missing")))?;
                    tile_hashes(&bytes).map_err(|e| VaultError::internal(&e))?
                }
                HashRead::Roots { level, start, end } => self
                    .store
                    .reader()
                    .await?
                    .audit()
                    .tile_roots(i64::from(level), as_i64(start), as_i64(end))
                    .await?
                    .iter()
                    .map(|r| Hash::try_from(r.as_slice()).map_err(|_| VaultError::internal(&"a malformed tile root")))
                    .collect::<Result<Vec<_>, _>>()?,
                HashRead::Leaves { start, end } => self.read_leaves(start, end).await?,
            };
            answers.push(hashes);
        }
        Ok(answers)
    }

    /// The leaf hashes of entries `start..end` (within one level-0 tile's span): from the
    /// stored tile when it is full, else from the log after the previous tile's last entry.
    async fn read_leaves(&self, start: u64, end: u64) -> Result<Vec<Hash>, VaultError> {
        let tile = start / 256;
        let (from, count) = (
            usize::try_from(start % 256).unwrap_or(0),
            usize::try_from(end - start).unwrap_or(0),
        );
        let mut reader = self.store.reader().await?;
        let hashes = if let Some(bytes) = reader.audit().tile(0, as_i64(tile)).await? {
            tile_hashes(&bytes).map_err(|e| VaultError::internal(&e))?
        } else {
            let after = if tile == 0 {
                i64::MIN
            } else {
                reader
                    .audit()
                    .tile_last_seq(as_i64(tile - 1))
                    .await?
                    .ok_or_else(|| VaultError::internal(&"an audit tile is missing"))?
            };
            reader
                .audit()
                .leaves(after, as_i64(end - tile * 256))
                .await?
                .into_iter()
                .map(|(_, leaf)| Hash::try_from(leaf.as_slice()).map_err(|_| VaultError::internal(&"a malformed leaf")))
                .collect::<Result<Vec<_>, _>>()?
        };
        let wanted: Vec<Hash> = hashes.into_iter().skip(from).take(count).collect();
        if wanted.len() == count {
            Ok(wanted)
        } else {
            Err(VaultError::internal(&"the log holds fewer leaves than its tiles say"))
        }
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
                .newest_checkpoint()
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

pub(crate) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn bad_proof_request(e: custodia_audit::TileError) -> VaultError {
    VaultError::unprocessable("invalid_proof_request", e.to_string())
}

/// The row of a tile the builder cut; `seq` is the entry whose leaf completed it.
fn tile_row(tile: FullTile, seq: i64) -> TileRow {
    TileRow {
        level: i64::from(tile.id.level()),
        idx: as_i64(tile.id.index()),
        hashes: tile_bytes(&tile.hashes),
        root: tile.root.to_vec(),
        last_seq: if tile.id.level() == 0 { seq } else { 0 },
    }
}

/// Audit entries with `seq > after`, oldest first, at most `limit`.
async fn entries(store: &Store, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    store.reader().await?.audit().entries(after, limit).await
}

/// Writes the audit log up to its newest checkpoint as JSON lines that a third party can check
/// without database access: first the checkpoint (signed note and public key), then every
/// entry it covers with its leaf hash and inclusion proof against that checkpoint's root.
/// Returns how many entries were written.
///
/// `progress` hears the number of entries, then each page read and each entry written (an
/// entry counts twice: the reading and the proofs are about equal halves of the work).
pub async fn export_audit_log(
    store: &Store,
    public_key: &[u8],
    out: &mut dyn std::io::Write,
    progress: &dyn Progress,
) -> Result<usize, String> {
    let checkpoint = async { store.reader().await?.audit().latest_checkpoint().await }
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the audit log has no checkpoint yet (the server signs one every second and at shutdown)")?;
    let size = usize::try_from(checkpoint.tree_size).map_err(|_| "checkpoint size is invalid".to_owned())?;
    progress.total(u64::try_from(size).unwrap_or(0).saturating_mul(2));
    let mut all = Vec::with_capacity(size);
    let mut after = i64::MIN;
    while all.len() < size {
        let page = entries(store, after, PAGE).await.map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        progress.advance(u64::try_from(page.len()).unwrap_or(0));
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
        progress.advance(1);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use crate::package::tests::vault;

    /// Another node stores the tiles of entries it appended while this one starts: this
    /// one's tiles, of the entries it verified, are built from the tiles up to them only (it
    /// took those beyond for its own and refused to start: "the tiles were changed").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiles_stored_past_the_verified_entries_are_left_for_later() {
        let (_dir, vault, admin) = vault().await;
        let event = AuditEvent::new("test.entry", &admin);
        let rows: Vec<_> = (0..600)
            .map(|i| vault.audit_row(&event, Timestamp(100 + i), None).unwrap())
            .collect();
        vault.append_audit_rows(&rows).await.unwrap();
        let leaves = vault
            .store
            .reader()
            .await
            .unwrap()
            .audit()
            .leaves(0, 10_000)
            .await
            .unwrap();
        // the other node's tiles: every full one of the log as it now is
        let (_, full) = vault.catch_up_tiles(i64::MAX).await.unwrap();
        assert!(full.iter().any(|t| t.level == 0 && t.idx == 1), "two full tiles");
        vault
            .store
            .write(move |mut tx| Box::pin(async move { tx.audit().insert_tiles(&full).await }))
            .await
            .unwrap();
        // this node verified the first 300 entries only
        let (upto, _) = leaves[299];
        let (tiles, _) = vault.catch_up_tiles(upto).await.unwrap();
        assert_eq!(tiles.size(), 300);
    }
}
