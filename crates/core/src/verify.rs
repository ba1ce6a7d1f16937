//! Verification of the audit log against trust held outside the database: the checkpoint key
//! the operator pinned at `init`, and checkpoints obtained earlier (a checkpoint log on other
//! storage, a witness, a note saved by hand). The database's own checkpoints are checked too,
//! but alone they prove nothing against someone who can write the database: they can be
//! deleted with the entries they cover.
//!
//! One pass over the log, O(log n) memory: every entry's leaf hash and indexed columns, the
//! order of entries, then the tree's root at the size of every checkpoint, database and
//! trusted alike, each signature checked with the pinned key. The server runs the same pass
//! when it starts, and refuses to continue a log that fails it.

use std::collections::BTreeMap;
use std::path::Path;

use custodia_audit::chain::{ChainKey, Link, START};
use custodia_audit::note::{Checkpoint, Note, VerifierKey};
use custodia_audit::tiles::{TileBuilder, tile_bytes};
use custodia_audit::{FullTile, Hash, leaf_hash};
use custodia_store::{AuditRowRef, CheckpointRow, Store};

use crate::Timestamp;
use crate::checkpoint::CHECKPOINT_ORIGIN;
use crate::progress::Progress;

/// Sequence numbers per chunk, the entries read as one row (see `AuditChunk`).
const CHUNK: i64 = 8192;

/// A checkpoint obtained outside the database, with where it came from (named in errors).
#[derive(Debug, Clone)]
pub struct TrustedCheckpoint {
    pub source: String,
    pub checkpoint: Checkpoint,
}

impl TrustedCheckpoint {
    /// A signed note, checked against the pinned key.
    pub fn from_note(source: &str, text: &str, key: &VerifierKey) -> Result<Self, String> {
        let bad = |e: custodia_audit::note::NoteError| format!("the checkpoint from {source}: {e}");
        let note = Note::parse(text).map_err(bad)?;
        key.verify(&note).map_err(bad)?;
        let checkpoint = Checkpoint::parse(note.text()).map_err(bad)?;
        if checkpoint.origin != CHECKPOINT_ORIGIN {
            return Err(format!(
                "the checkpoint from {source} is of another log (origin `{}`)",
                checkpoint.origin.escape_default()
            ));
        }
        Ok(Self {
            source: source.to_owned(),
            checkpoint,
        })
    }

    /// The newest checkpoint in `path`: a file holding one signed note, or a checkpoint log
    /// (one JSON object per line with a `note`, newest last, as `serve --checkpoint-log`
    /// writes it). `None` for an empty checkpoint log.
    pub fn from_file(path: &Path, key: &VerifierKey) -> Result<Option<Self>, String> {
        let source = path.display().to_string();
        let text = read_tail(path).map_err(|e| format!("{source}: {e}"))?;
        if text.trim_start().starts_with('{') || text.trim().is_empty() {
            let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
                // Empty: nothing was ever published. A file with bytes but no whole line in
                // its tail is not that.
                return if std::fs::metadata(path).map_err(|e| format!("{source}: {e}"))?.len() == 0 {
                    Ok(None)
                } else {
                    Err(format!("{source}: its last line is not a checkpoint log entry"))
                };
            };
            let entry: serde_json::Value = serde_json::from_str(line)
                .map_err(|_| format!("{source}: the last line is not a checkpoint log entry"))?;
            let note = entry["note"]
                .as_str()
                .ok_or_else(|| format!("{source}: the last line has no note"))?;
            Self::from_note(&source, note, key).map(Some)
        } else {
            // A note ends with one newline; one saved with another after it (`jq -r .note`,
            // an editor) is the same note.
            let note = format!("{}\n", text.trim_end_matches(['\n', '\r']));
            Self::from_note(&source, &note, key).map(Some)
        }
    }
}

/// The end of a file (its last 64 KiB, from the first whole line): a checkpoint log grows by a
/// line per checkpoint, and only its newest line matters.
fn read_tail(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    // At most the tail: a device or a growing file is not read without end.
    file.take(TAIL).read_to_end(&mut bytes)?;
    if start > 0 {
        let first_newline = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
        bytes.drain(..first_newline);
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// What verification trusts, and how strict it is.
#[derive(Debug, Clone)]
pub struct AuditTrust {
    /// The checkpoint key, pinned by the operator (or, told so explicitly, the database's).
    pub key: VerifierKey,
    /// The key the vault tags its entries with, when the verifier holds the vault's keys (the
    /// server at start): every entry no checkpoint covers must then carry a tag of it.
    /// Without it (offline, no root key), an entry no checkpoint covers must carry a tag once
    /// one before it does (a log written before tags carries none).
    pub tag_key: Option<std::sync::Arc<custodia_audit::tag::TagKey>>,
    /// The key the vault links its entries with (`custodia_audit::chain`), held with
    /// `tag_key`: every entry no checkpoint covers must then be linked to the one before it.
    /// Without it, an entry no checkpoint covers must carry a link once one before it does.
    pub link_key: Option<std::sync::Arc<ChainKey>>,
    /// Checkpoints from outside the database; each must be a prefix of today's log.
    pub trusted: Vec<TrustedCheckpoint>,
    /// The time verification runs at. Entries no checkpoint covers may not be dated in the
    /// future, nor long after the first of them ([`UNSIGNED_TAIL_SPAN_MS`]).
    pub now: Timestamp,
    /// Entries older than this many milliseconds must be covered by a checkpoint, and a log
    /// with entries must have one. `None` when the server starts (it signs the tail of a log
    /// it stopped without signing).
    pub max_unsigned_age: Option<i64>,
    /// Sequence numbers without gaps (SQLite's one writer numbers entries in commit order).
    pub contiguous: bool,
}

/// What verification found in an intact log.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub entries: u64,
    /// Signed checkpoints in the database.
    pub checkpoints: usize,
    /// Checkpoints from outside the database that the log extends.
    pub trusted: usize,
    /// Entries after the newest checkpoint (intact as far as their leaf hashes go, not yet
    /// covered by a signature).
    pub unsigned_tail: u64,
    /// The newest checkpoint the log was found to extend (size, root).
    pub(crate) newest: Option<(u64, Hash)>,
    /// The tree's right edge and the last sequence number read, for a server resuming the log.
    pub(crate) range: TileBuilder,
    pub(crate) last_seq: i64,
    /// The last entry's link, which the next entry's must follow.
    pub(crate) last_link: Link,
}

/// Compares the tiles the walk cut with the stored ones (tiles not stored yet are skipped: the
/// server stores them with its next checkpoint). A stored tile is derived data, but proofs are
/// read from it: one that disagrees with the log would hand out proofs that fail.
async fn check_tiles(store: &Store, cut: &mut Vec<FullTile>, last: &BTreeMap<i64, i64>) -> Result<(), String> {
    for tile in cut.drain(..) {
        let (level, idx) = (i64::from(tile.id.level()), crate::checkpoint::as_i64(tile.id.index()));
        let stored = store
            .reader()
            .await
            .map_err(|e| e.to_string())?
            .audit()
            .tile_and_root(level, idx)
            .await
            .map_err(|e| e.to_string())?;
        match stored {
            Some((hashes, root)) if hashes != tile_bytes(&tile.hashes) || root != tile.root => {
                return Err(format!(
                    "the stored audit tile at level {level}, index {idx} does not match the log: proofs read from it would not verify"
                ));
            }
            // Tiles are stored in order: one missing below a stored one was deleted.
            None if last.get(&level).is_some_and(|&l| idx < l) => {
                return Err(format!(
                    "the stored audit tile at level {level}, index {idx} is missing while later ones are stored: tiles were deleted"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// How far the entries no checkpoint covers may be dated after the first of them, or ahead of
/// the clock. The server signs every second while the log grows, so a genuine unsigned tail (a
/// crash before the next checkpoint, however long after the last one) spans seconds; a tail
/// rewritten by someone without the key would otherwise stay unsigned forever, hide behind
/// dates in the future, or (checkpoints deleted) be signed again by the server at its next
/// start. Measured within the tail, not from a checkpoint row's time, which the database file
/// alone could rewrite; the entries' own dates can be rewritten too (README: what the
/// checkpoint log and the witness are for).
pub const UNSIGNED_TAIL_SPAN_MS: i64 = 60 * 1000;

/// The rules for an entry no checkpoint covers (when `trust` asks for them): not older than
/// the bound, not dated in the future, not dated long after the first of them.
fn unsigned_tail_rule(trust: &AuditTrust, seq: i64, at: i64, since: i64) -> Result<(), String> {
    let now = trust.now;
    if let Some(max_age) = trust.max_unsigned_age
        && now.0.saturating_sub(at) > max_age
    {
        return Err(format!(
            "entry {seq} is older than {} s and no checkpoint covers it: checkpoints were deleted, or the server stopped without signing its last entries (start it to sign them)",
            max_age / 1000
        ));
    }
    if at.saturating_sub(now.0) > UNSIGNED_TAIL_SPAN_MS {
        return Err(format!(
            "entry {seq} is dated in the future and no checkpoint covers it: the log's tail was rewritten"
        ));
    }
    if at.saturating_sub(since) > UNSIGNED_TAIL_SPAN_MS {
        return Err(format!(
            "entry {seq} is dated more than {} s after the first entry no checkpoint covers, and no checkpoint covers it either: checkpoints were deleted or the tail rewritten",
            UNSIGNED_TAIL_SPAN_MS / 1000
        ));
    }
    Ok(())
}

/// Recomputes the whole audit log: every entry's leaf hash and indexed columns, the order of
/// entries, every database checkpoint's signature, and the root at the size of every
/// checkpoint (database and trusted). The error names the first bad entry, or the first
/// checkpoint the entries no longer match (with its source and the entries it covers).
///
/// `progress` hears the number of entries once known, and each chunk checked.
pub async fn verify_audit_log(
    store: &Store,
    trust: &AuditTrust,
    progress: &dyn Progress,
) -> Result<VerifyReport, String> {
    verify_paged(store, trust, progress, CHECKPOINT_PAGE).await
}

/// [`verify_audit_log`], reading the database's checkpoints `page` at a time.
async fn verify_paged(
    store: &Store,
    trust: &AuditTrust,
    progress: &dyn Progress,
    page: i64,
) -> Result<VerifyReport, String> {
    let stored = async { store.reader().await?.audit().checkpoint_count().await }
        .await
        .map_err(|e| e.to_string())?;
    let largest_stored = async { store.reader().await?.audit().latest_checkpoint().await }
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |c| u64::try_from(c.tree_size).unwrap_or(0));
    let mut targets = Targets {
        store,
        key: &trust.key,
        ahead: BTreeMap::new(),
        page,
        read_upto: i64::MIN,
        exhausted: false,
    };
    for t in &trust.trusted {
        targets.add(t.checkpoint.size, t.checkpoint.root, t.source.clone())?;
    }
    let covered = trust
        .trusted
        .iter()
        .map(|t| t.checkpoint.size)
        .fold(largest_stored, u64::max);
    let last_tiles = async { store.reader().await?.audit().last_tiles().await }
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut walk = Walk {
        contiguous: trust.contiguous,
        trust,
        tail_since: None,
        last_tiles,
        covered,
        targets,
        range: TileBuilder::new(),
        cut: Vec::new(),
        last_seq: 0,
        previous: 0,
        newest: None,
        tagged: false,
        last_link: None,
        covered_link_fault: None,
    };

    // The log is read a chunk (one row) per range of sequence numbers, by several connections
    // at once; each round's chunks are checked on blocking threads while the next round is
    // read, and the results are walked in order. Memory stays a few chunks.
    let readers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut pending: Vec<Pending> = Vec::new();
    let mut after = i64::MIN;
    let mut bounds = seq_bounds(store, after).await?;
    if let Some((low, high)) = bounds {
        progress.total(u64::try_from(high.saturating_sub(low).saturating_add(1)).unwrap_or(0));
    } else if async { store.reader().await?.audit().data_written().await }
        .await
        .map_err(|e| e.to_string())?
    {
        // everything deleted, checkpoints, tiles and checkpoint log with it, reads as a vault
        // never used; but records and consents are written with their entries (review)
        return Err(
            "the audit log has no entry, but the vault holds records or consents, each written with one: its entries were deleted"
                .to_owned(),
        );
    }
    while let Some((low, high)) = bounds {
        let mut ranges = Vec::with_capacity(readers);
        let mut lo = after.max(low.saturating_sub(1));
        while ranges.len() < readers && lo < high {
            let hi = lo.saturating_add(CHUNK).min(high);
            ranges.push((lo, hi));
            lo = hi;
        }
        let chunks = join_all(
            ranges
                .iter()
                .map(|&(lo, hi)| async move { store.reader().await?.audit().chunk(lo, hi).await })
                .collect(),
        )
        .await;
        for p in pending.drain(..) {
            walk.take(p, store, progress).await?;
        }
        // A range with fewer entries than numbers holds a gap: look for where entries resume
        // rather than stepping through it.
        let mut gap = false;
        for (&(lo, hi), chunk) in ranges.iter().zip(chunks) {
            gap |= chunk
                .as_ref()
                .map_or(true, |c| i64::try_from(c.len()).ok() != Some(hi - lo));
            pending.push(Pending {
                after: lo,
                upto: hi,
                checked: chunk.ok().map(|c| {
                    let (tags, links) = (trust.tag_key.clone(), trust.link_key.clone());
                    tokio::task::spawn_blocking(move || {
                        c.rows()
                            .map(|rows| check(&rows, tags.as_deref(), links.as_deref(), covered))
                    })
                }),
            });
        }
        after = lo;
        if gap || after >= high {
            bounds = seq_bounds(store, after).await?;
        }
    }
    for p in pending.drain(..) {
        walk.take(p, store, progress).await?;
    }
    let Walk {
        range,
        last_seq,
        last_link,
        covered_link_fault,
        newest,
        mut targets,
        ..
    } = walk;
    targets.read_upto(range.size().saturating_add(1)).await?;
    if let Some((size, (_, source))) = targets.ahead.first_key_value() {
        return Err(format!(
            "checkpoint at size {size} from {source} covers {size} entries but the log holds only {}: entries were deleted",
            range.size()
        ));
    }
    // The server stores each checkpoint before it publishes it: one published beyond the
    // database's newest means the database lost checkpoints (deleted, or a backup restored).
    if let Some(t) = trust.trusted.iter().max_by_key(|t| t.checkpoint.size)
        && t.checkpoint.size > largest_stored
    {
        return Err(format!(
            "the newest checkpoint in the database is at size {largest_stored}, but {} holds one at size {}: checkpoints were deleted from the database, or it was restored from a backup",
            t.source, t.checkpoint.size
        ));
    }
    if trust.max_unsigned_age.is_some() && range.size() > 0 && stored == 0 && trust.trusted.is_empty() {
        return Err(format!(
            "the log has {} entries and no checkpoint: its checkpoints were deleted, or the server never signed it",
            range.size()
        ));
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
    if let Some(fault) = covered_link_fault {
        return Err(fault);
    }
    Ok(VerifyReport {
        entries: range.size(),
        checkpoints: usize::try_from(stored).unwrap_or(0),
        trusted: trust.trusted.len(),
        unsigned_tail: range.size() - covered,
        newest,
        range,
        last_seq,
        last_link: last_link.unwrap_or(START),
    })
}

async fn seq_bounds(store: &Store, after: i64) -> Result<Option<(i64, i64)>, String> {
    let mut reader = store.reader().await.map_err(|e| e.to_string())?;
    reader.audit().seq_bounds(after).await.map_err(|e| e.to_string())
}

/// What checking a run of entries found: each entry's sequence number, time, leaf hash and
/// whether it is tagged, up to the first entry whose leaf hash, columns or tag do not match
/// its text (its sequence number, and what is wrong).
struct Checked {
    entries: Vec<(i64, i64, Hash, Tag, Option<Link>)>,
    /// The first entry after the chunk's first whose link does not follow the one before it
    /// (the walk decides what that means, by whether a checkpoint covers the entry).
    link_fault: Option<(i64, String)>,
    fault: Option<(i64, String)>,
}

/// An entry's tag: none, or one its key made (or not checked, without the key), or not.
type Tag = Option<Result<(), custodia_audit::tag::TagError>>;

/// Checks every entry's leaf hash, indexed columns and tag (with `tags`, when given) against
/// its text. An entry numbered at most `covered` (the largest checkpoint's size) is covered by
/// it (numbers start at 1 and only gaps come between), so its tag is not checked: its
/// checkpoint's signature vouches for it.
fn check(
    rows: &[AuditRowRef<'_>],
    tags: Option<&custodia_audit::tag::TagKey>,
    links: Option<&ChainKey>,
    covered: u64,
) -> Checked {
    let mut entries = Vec::with_capacity(rows.len());
    // The link of the entry before (none for the chunk's first: the walk checks that one)
    let mut previous: Option<Option<Link>> = None;
    let mut link_fault_at = None;
    for e in rows {
        let leaf = leaf_hash(e.entry.as_bytes());
        let signed = u64::try_from(e.seq).is_ok_and(|seq| seq <= covered);
        let tag = custodia_audit::tag::is_tagged(e.entry).then(|| match tags {
            Some(key) if !signed => key.check(e.entry),
            _ => Ok(()),
        });
        let fault = if e.leaf != leaf.as_slice() {
            format!("entry {} was changed: its content does not match its leaf hash", e.seq)
        } else if !crate::audit::columns_match(e.entry, e.at, &e.index) {
            format!(
                "entry {} has indexed columns (at, principal, action, decision, purpose, subject) that do not match its content",
                e.seq
            )
        } else {
            let link = custodia_audit::chain::stored_link(e.link);
            if link_fault_at.is_none() {
                link_fault_at = previous
                    .and_then(|before| link_fault(e.seq, &leaf, link, before, links))
                    .map(|fault| (e.seq, fault));
            }
            previous = Some(link);
            entries.push((e.seq, e.at, leaf, tag, link));
            continue;
        };
        return Checked {
            entries,
            link_fault: link_fault_at,
            fault: Some((e.seq, fault)),
        };
    }
    Checked {
        entries,
        link_fault: link_fault_at,
        fault: None,
    }
}

/// The entries with `after < seq <= upto`, checked with the vault's keys as they are read a
/// chunk at a time: each one's leaf hash and indexed columns against its text, its tag (if it
/// carries one) with `tags`, and its link with `links` against the entry before it in the
/// range, so that an entry rewritten whole (text, columns and leaf), inserted or deleted breaks
/// the run. Not the checkpoints' tree (that is `audit verify`'s whole-log walk): what a reading
/// of a stretch of the log by its indexed columns relies on (an incident's scope). `Ok` with
/// the time the range's first entry's text gives (`None`: no entry), or the first fault.
pub(crate) async fn check_range(
    store: &Store,
    (after, upto): (i64, i64),
    tags: &custodia_audit::tag::TagKey,
    links: &ChainKey,
) -> Result<Result<Option<i64>, String>, custodia_store::StoreError> {
    let mut first_at = None;
    // the link of the last entry checked, for the first of the next chunk
    let mut previous: Option<Option<Link>> = None;
    let mut lo = after;
    while lo < upto {
        let hi = lo.saturating_add(CHUNK).min(upto);
        let chunk = store.reader().await?.audit().chunk(lo, hi).await?;
        // (a chunk the aggregate cannot split with certainty, or with gaps: a row at a time)
        let rows = match chunk.rows() {
            Some(rows) => check(&rows, Some(tags), Some(links), 0),
            None => {
                let rows = store.reader().await?.audit().entries(lo, hi - lo).await?;
                let rows: Vec<AuditRowRef<'_>> = rows.iter().filter(|r| r.seq <= hi).map(|r| r.as_ref()).collect();
                check(&rows, Some(tags), Some(links), 0)
            }
        };
        if let Some((_, fault)) = rows.fault.or(rows.link_fault) {
            return Ok(Err(fault));
        }
        // (`check` follows the links inside the chunk; its first entry follows the last read)
        if let (Some(before), Some((seq, _, leaf, _, link))) = (previous, rows.entries.first())
            && let Some(fault) = link_fault(*seq, leaf, *link, before, Some(links))
        {
            return Ok(Err(fault));
        }
        for (seq, at, _, tag, _) in &rows.entries {
            if let Some(Err(why)) = tag {
                return Ok(Err(format!(
                    "entry {seq} was not written by this vault ({why}): it was rewritten or inserted into the database"
                )));
            }
            first_at.get_or_insert(*at);
        }
        if let Some((_, _, _, _, link)) = rows.entries.last() {
            previous = Some(*link);
        }
        lo = hi;
    }
    Ok(Ok(first_at))
}

/// An entry no checkpoint covers was written by the vault: tagged with its key (when the
/// verifier holds it), and tagged at all when `must_be_tagged` (the verifier holds the key,
/// or an entry before it was tagged).
fn tag_rule(seq: i64, tag: Tag, must_be_tagged: bool) -> Result<(), String> {
    match tag {
        Some(Err(why)) => Err(format!(
            "entry {seq} was not written by this vault ({why}): it was inserted into the database"
        )),
        None if must_be_tagged => Err(format!(
            "entry {seq} carries no tag and no checkpoint covers it: it was inserted into the database, or written by a version before entry tags that stopped without signing its log (start that version once and stop it: it signs what it wrote)"
        )),
        _ => Ok(()),
    }
}

/// Whether an entry's link says the vault appended it right after the entry before it, whose
/// link is `previous` (none: unlinked, or no entry before): a linked entry's link follows that
/// one (checked when the verifier holds the key), and no unlinked entry comes after a linked
/// one. Every entry is held to it, checkpointed or not: the link is beside the entry's text,
/// outside what a checkpoint signs, so a covered entry's link rewritten (to make a copy after
/// it look appended there) is caught here.
fn link_fault(
    seq: i64,
    leaf: &Hash,
    link: Option<Link>,
    previous: Option<Link>,
    key: Option<&ChainKey>,
) -> Option<String> {
    match link {
        None if previous.is_some() => Some(format!(
            "entry {seq} carries no link after entries that do: it was inserted into the database"
        )),
        Some(link) if key.is_some_and(|k| !k.check(&previous.unwrap_or(START), leaf, &link)) => Some(format!(
            "entry {seq} is not where this vault appended it (its link does not follow the entry before it): it was copied or inserted into the database, or a link was rewritten"
        )),
        _ => None,
    }
}

/// An entry no checkpoint covers, with the vault's keys held, is linked at all (an unlinked
/// one is refused: the vault links every entry it appends).
fn unlinked_tail_rule(seq: i64, link: Option<Link>, key: Option<&ChainKey>) -> Result<(), String> {
    match (link, key) {
        (None, Some(_)) => Err(format!(
            "entry {seq} carries no link and no checkpoint covers it: it was inserted into the database, or written by a version before entry links that stopped without signing its log (start that version once and stop it: it signs what it wrote)"
        )),
        _ => Ok(()),
    }
}

/// A chunk being checked: the range of sequence numbers it holds, and its check (`None` when
/// it could not be read as a chunk).
struct Pending {
    after: i64,
    upto: i64,
    checked: Option<tokio::task::JoinHandle<Option<Checked>>>,
}

impl Pending {
    /// The check's result; a chunk that could not be read or split with certainty is read
    /// again a row per entry, and checked the same way.
    async fn finish(
        self,
        store: &Store,
        tags: Option<&custodia_audit::tag::TagKey>,
        links: Option<&ChainKey>,
        covered: u64,
    ) -> Result<Checked, String> {
        if let Some(handle) = self.checked
            && let Some(checked) = handle.await.map_err(|e| e.to_string())?
        {
            return Ok(checked);
        }
        let limit = self.upto.saturating_sub(self.after);
        let mut reader = store.reader().await.map_err(|e| e.to_string())?;
        let mut rows = reader
            .audit()
            .entries(self.after, limit)
            .await
            .map_err(|e| e.to_string())?;
        rows.retain(|r| r.seq <= self.upto);
        Ok(check(
            &rows.iter().map(custodia_store::AuditRow::as_ref).collect::<Vec<_>>(),
            tags,
            links,
            covered,
        ))
    }
}

/// A database checkpoint, checked: a signed note under the audit key that says what its row says.
fn stored_checkpoint(row: &CheckpointRow, key: &VerifierKey) -> Result<Checkpoint, String> {
    let bad = |why: String| format!("checkpoint at size {} in the database {why}", row.tree_size);
    let note = Note::parse(&row.note).map_err(|e| bad(format!("is not a signed note ({e})")))?;
    key.verify(&note).map_err(|e| match e {
        custodia_audit::note::NoteError::NotSigned(_) => bad("is signed by another key".into()),
        _ => bad("has a signature that does not verify".into()),
    })?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| bad(e.to_string()))?;
    if cp.origin != CHECKPOINT_ORIGIN
        || Some(cp.size) != u64::try_from(row.tree_size).ok()
        || cp.root.as_slice() != row.root
    {
        return Err(bad("does not match its signed note".into()));
    }
    Ok(cp)
}

/// Checkpoints read from the database at a time by [`verify_audit_log`].
const CHECKPOINT_PAGE: i64 = 4096;

/// The sizes some checkpoint commits to, with its root and where it came from, smallest first,
/// for the walk to reach: the trusted ones (a few) from the start, the database's a page at a
/// time as the walk nears them, each checked against its signature as it is read. The server
/// signs one a second while the log grows: a year's would not fit in memory.
struct Targets<'a> {
    store: &'a Store,
    key: &'a VerifierKey,
    ahead: BTreeMap<u64, (Hash, String)>,
    /// Checkpoints read from the database at a time.
    page: i64,
    /// The size of the last checkpoint read from the database.
    read_upto: i64,
    /// Whether the database has no checkpoint after `read_upto`.
    exhausted: bool,
}

impl Targets<'_> {
    /// Adds a checkpoint; two of one size with different roots are a forked log.
    fn add(&mut self, size: u64, root: Hash, source: String) -> Result<(), String> {
        match self.ahead.get(&size) {
            Some((other, first)) if *other != root => Err(format!(
                "the checkpoints at size {size} from {first} and from {source} have different roots: the log was forked"
            )),
            Some(_) => Ok(()),
            None => {
                self.ahead.insert(size, (root, source));
                Ok(())
            }
        }
    }

    /// Reads the database's checkpoints up to size `size` at least (a page past it).
    async fn read_upto(&mut self, size: u64) -> Result<(), String> {
        while !self.exhausted && u64::try_from(self.read_upto).map_or(true, |read| read < size) {
            let page = async {
                self.store
                    .reader()
                    .await?
                    .audit()
                    .checkpoints_after(self.read_upto, self.page)
                    .await
            }
            .await
            .map_err(|e| e.to_string())?;
            self.exhausted = page.len() < usize::try_from(self.page).unwrap_or(usize::MAX);
            for row in &page {
                let cp = stored_checkpoint(row, self.key)?;
                self.add(cp.size, cp.root, "the database".into())?;
                self.read_upto = row.tree_size;
            }
        }
        Ok(())
    }
}

/// The walk through the log in order: sequence numbers, the unsigned tail's age, and the
/// tree at every checkpoint's size.
struct Walk<'t> {
    contiguous: bool,
    /// For the rules of the unsigned tail.
    trust: &'t AuditTrust,
    /// The time of the first entry no checkpoint covers: the unsigned tail is measured from it.
    tail_since: Option<i64>,
    /// The largest stored tile index of each level.
    last_tiles: BTreeMap<i64, i64>,
    /// The size of the largest checkpoint.
    covered: u64,
    /// The checkpoints not reached yet.
    targets: Targets<'t>,
    range: TileBuilder,
    /// Full tiles the walk has cut, to compare with the stored ones.
    cut: Vec<FullTile>,
    last_seq: i64,
    /// The size of the last checkpoint reached.
    previous: u64,
    newest: Option<(u64, Hash)>,
    /// Whether an entry walked so far carries a tag (`custodia_audit::tag`).
    tagged: bool,
    /// The link of the last entry walked (none: unlinked, or none walked yet).
    last_link: Option<Link>,
    /// The first fault in the links of entries checkpoints cover, told once the walk found
    /// nothing else.
    covered_link_fault: Option<String>,
}

impl Walk<'_> {
    /// Walks a checked chunk, the checkpoints it may reach read first, then compares the tiles
    /// it completed with the stored ones.
    async fn take(&mut self, p: Pending, store: &Store, progress: &dyn Progress) -> Result<(), String> {
        let checked = p
            .finish(
                store,
                self.trust.tag_key.as_deref(),
                self.trust.link_key.as_deref(),
                self.covered,
            )
            .await?;
        let reach = self
            .range
            .size()
            .saturating_add(u64::try_from(checked.entries.len()).unwrap_or(u64::MAX));
        self.targets.read_upto(reach).await?;
        self.apply(checked, progress)?;
        check_tiles(store, &mut self.cut, &self.last_tiles).await
    }

    fn apply(&mut self, checked: Checked, progress: &dyn Progress) -> Result<(), String> {
        progress.advance(u64::try_from(checked.entries.len()).unwrap_or(0));
        let mut first = true;
        for &(seq, at, leaf, tag, link) in &checked.entries {
            self.sequence(seq)?;
            if self.range.size() >= self.covered {
                let since = *self.tail_since.get_or_insert(at);
                unsigned_tail_rule(self.trust, seq, at, since)?;
                // (what a checkpoint covers, its signature vouches for: a changed entry there
                // is named by the checkpoint it no longer matches)
                tag_rule(seq, tag, self.tagged || self.trust.tag_key.is_some())?;
                unlinked_tail_rule(seq, link, self.trust.link_key.as_deref())?;
            }
            // (the chunk's check held every entry but its first to the link before it)
            let fault = if first {
                link_fault(seq, &leaf, link, self.last_link, self.trust.link_key.as_deref())
            } else {
                checked
                    .link_fault
                    .as_ref()
                    .filter(|(at, _)| *at == seq)
                    .map(|(_, fault)| fault.clone())
            };
            first = false;
            if let Some(fault) = fault {
                // An entry no checkpoint covers stops the walk; a covered one's link was
                // rewritten (outside what its checkpoint signs): said once the checkpoints
                // have had their say, so that what they catch is named by them.
                if self.range.size() >= self.covered {
                    return Err(fault);
                }
                self.covered_link_fault.get_or_insert(fault);
            }
            self.tagged |= tag.is_some();
            self.last_link = link;
            self.last_seq = seq;
            self.cut.extend(self.range.push(leaf));
            if let Some(entry) = self.targets.ahead.first_entry()
                && *entry.key() == self.range.size()
            {
                let (size, (root, source)) = entry.remove_entry();
                if self.range.root() != root {
                    return Err(format!(
                        "checkpoint at size {size} from {source} does not match the entries: one of entries at positions {} to {size} was changed, inserted, removed or moved",
                        self.previous + 1
                    ));
                }
                self.previous = size;
                self.newest = Some((size, root));
            }
        }
        match checked.fault {
            Some((seq, fault)) => {
                self.sequence(seq)?;
                Err(fault)
            }
            None => Ok(()),
        }
    }

    /// Entries follow each other without gaps (when the log must be contiguous).
    fn sequence(&self, seq: i64) -> Result<(), String> {
        let last = self.last_seq;
        if self.contiguous && seq != last + 1 {
            return Err(if seq > last + 1 {
                format!("entry {} is missing (the next entry is {seq})", last + 1)
            } else {
                format!("entry {seq} is out of sequence")
            });
        }
        Ok(())
    }
}

/// Runs `futures` concurrently; their outputs, in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn create_at(vault: &crate::Vault, admin: &crate::Principal, n: u32, at: i64) {
        let subject = crate::SubjectId::parse(&format!("s{n}")).unwrap();
        let values = [("email".to_owned(), format!("p{n}@example.com"))].into();
        let call = crate::Call::new(admin, "order_fulfillment", Timestamp(at));
        vault
            .create_record(&call, &subject, "customers", &values)
            .await
            .unwrap();
    }

    async fn verify_at(vault: &crate::Vault, now: i64) -> Result<VerifyReport, String> {
        let trust = AuditTrust {
            tag_key: None,
            link_key: None,
            key: vault.audit_verifier_key(),
            trusted: Vec::new(),
            now: Timestamp(now),
            max_unsigned_age: None,
            contiguous: true,
        };
        verify_audit_log(vault.store(), &trust, &()).await
    }

    /// The unsigned tail may span a minute from its first entry, however long after the last
    /// checkpoint it begins (a crash after an idle hour); a tail spanning more is refused.
    #[tokio::test]
    async fn an_unsigned_tail_spans_at_most_a_minute_from_its_first_entry() {
        let (_dir, vault, admin) = crate::package::tests::vault().await;
        let t = Timestamp::now().0;
        let later = t + 7_200_000;
        vault.checkpoint(Timestamp(t)).await.unwrap();
        create_at(&vault, &admin, 0, t + 10_000).await;
        create_at(&vault, &admin, 1, t + 40_000).await;
        verify_at(&vault, later).await.unwrap();
        create_at(&vault, &admin, 2, t + 100_000).await;
        let err = verify_at(&vault, later).await.unwrap_err();
        assert!(
            err.contains("more than 60 s after the first entry no checkpoint covers"),
            "{err}"
        );
        vault.checkpoint(Timestamp(t + 200_000)).await.unwrap();
        verify_at(&vault, later).await.unwrap();
        // An hour idle, then entries a crash left unsigned: a tail of ten seconds.
        create_at(&vault, &admin, 3, t + 3_600_000).await;
        create_at(&vault, &admin, 4, t + 3_610_000).await;
        let report = verify_at(&vault, later).await.unwrap();
        assert!(report.unsigned_tail >= 2, "{}", report.unsigned_tail);
    }

    /// A log of eight records with a checkpoint after each, verified reading the checkpoints
    /// two at a time: every one is reached; one forged past the log is caught by its note.
    #[tokio::test]
    async fn checkpoints_are_read_a_page_at_a_time() {
        let (_dir, vault, admin) = crate::package::tests::vault().await;
        for n in 0..8 {
            create_at(&vault, &admin, n, Timestamp::now().0).await;
            vault.checkpoint(Timestamp::now()).await.unwrap();
        }
        let trust = AuditTrust {
            tag_key: None,
            link_key: None,
            key: vault.audit_verifier_key(),
            trusted: Vec::new(),
            now: Timestamp::now(),
            max_unsigned_age: None,
            contiguous: true,
        };
        let whole = verify_paged(vault.store(), &trust, &(), CHECKPOINT_PAGE).await.unwrap();
        let paged = verify_paged(vault.store(), &trust, &(), 2).await.unwrap();
        assert_eq!(paged.checkpoints, 8);
        assert_eq!((paged.entries, paged.newest), (whole.entries, whole.newest));
        assert_eq!(
            paged.newest.map(|(size, _)| size),
            Some(whole.entries),
            "the last checkpoint is reached"
        );

        let mut forged = vault
            .store()
            .reader()
            .await
            .unwrap()
            .audit()
            .latest_checkpoint()
            .await
            .unwrap()
            .unwrap();
        forged.tree_size += 100;
        forged.note = forged.note.replace("custodia-audit", "someone-else");
        let row = forged.clone();
        vault
            .store()
            .write(move |mut tx| Box::pin(async move { tx.audit().insert_checkpoint(&row).await }))
            .await
            .unwrap();
        let err = verify_paged(vault.store(), &trust, &(), 2).await.unwrap_err();
        assert!(
            err.starts_with(&format!("checkpoint at size {} in the database", forged.tree_size)),
            "{err}"
        );
    }
}
