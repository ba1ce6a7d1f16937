//! The tombstone log: every erased subject, by keyed digest only, one JSON line each, in a
//! file of the data directory beside (not inside) the database. A backup is a copy of the
//! database; restoring an older one re-applies every tombstone logged since (and those the
//! backup's own list holds), so an erased customer never comes back.
//!
//! ```text
//! {"subject_digest":"80d6d9c7c52beb46069a715c73b90a23","request_id":"req_…","at":1796200000000}
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use custodia_store::ErasureRow;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::{SubjectId, Timestamp, Vault, VaultError};

/// The tombstone log's file name in the data directory.
pub const TOMBSTONE_FILE: &str = "erasures.log";

#[derive(Serialize, Deserialize)]
struct Line {
    subject_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    at: i64,
}

/// Appends a tombstone and syncs it to disk (the file is created 0600).
pub(crate) fn append(path: &Path, row: &ErasureRow) -> Result<(), VaultError> {
    let line = serde_json::to_string(&Line {
        subject_digest: row.subject_digest.clone(),
        request_id: row.request_id.clone(),
        at: row.at,
    })
    .map_err(|e| VaultError::internal(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let failed = |e: std::io::Error| {
        tracing::error!(path = %path.display(), error = %e, "the tombstone log cannot be written; refusing the erasure");
        VaultError::internal(&"the tombstone log cannot be written")
    };
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(format!("{line}\n").as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// Every tombstone of the log (none when there is no log yet). A line that is not a tombstone
/// is an error naming its number: a damaged log must not quietly forget an erasure.
pub fn read(path: &Path) -> Result<Vec<ErasureRow>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: Line =
                serde_json::from_str(l).map_err(|_| format!("{}:{}: not a tombstone line", path.display(), i + 1))?;
            Ok(ErasureRow {
                subject_digest: line.subject_digest,
                request_id: line.request_id,
                at: line.at,
            })
        })
        .collect()
}

/// What re-applying the tombstones did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reapplied {
    /// Tombstones known (the log's and the database's, by subject).
    pub tombstones: usize,
    /// Subjects found in the database and erased again.
    pub erased: usize,
}

impl Vault {
    /// Erases again every subject of the database that a tombstone names: those of the
    /// tombstone log (`log`, kept outside the database) and of the database's own list. Run
    /// after restoring a backup; safe to run any time: a subject erased already has nothing
    /// left to erase, and one that came back after its erasure keeps what it gave since.
    ///
    /// `progress` hears the number of subjects, then each one looked at.
    pub async fn reapply_erasures(
        &self,
        log: &[ErasureRow],
        now: Timestamp,
        progress: &dyn Progress,
    ) -> Result<Reapplied, VaultError> {
        let listed = self.store.reader().await?.erasures().all().await?;
        let audited = self.audited_tombstones().await?;
        let latest = latest(log.iter().chain(&listed).chain(&audited));
        let mut report = Reapplied {
            tombstones: latest.len(),
            erased: 0,
        };
        if latest.is_empty() {
            return Ok(report);
        }
        let subjects = self.store.reader().await?.subjects().all_ids().await?;
        progress.total(u64::try_from(subjects.len()).unwrap_or(0));
        for id in subjects {
            progress.advance(1);
            let subject = SubjectId::stored(&id)?;
            let digest = self.keys.audit_subject(&subject)?;
            if let Some(tombstone) = latest.get(&digest) {
                if !self.holds_erased_data(&id, tombstone.at).await? {
                    continue;
                }
                self.erase_again(&subject, tombstone.clone(), now).await?;
                report.erased += 1;
            }
        }
        Ok(report)
    }

    /// The erasures the audit log records (`subject.erase`, written in the erasure's last
    /// transaction): a third list beside the tombstone log and the database's own, which the
    /// checkpoints vouch for (the log and the list deleted together brought the erased back
    /// through a restore; review).
    async fn audited_tombstones(&self) -> Result<Vec<ErasureRow>, VaultError> {
        let query = custodia_store::AuditQuery {
            action: Some("subject.erase".to_owned()),
            decision: Some("allow".to_owned()),
            ..custodia_store::AuditQuery::default()
        };
        let mut reader = self.store.reader().await?;
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = reader.audit().query(&query, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.iter().filter_map(|row| {
                let entry: serde_json::Value = serde_json::from_str(&row.entry).ok()?;
                // (an erasure made again after a restore is dated then, not when the subject
                // was erased: a key the subject got when it came back, carried over by the
                // restore, is no erased data; the erasure's own entry is there)
                if entry["principal"] == crate::erasure::RESTORE_PRINCIPAL {
                    return None;
                }
                Some(ErasureRow {
                    subject_digest: entry["subject"].as_str()?.to_owned(),
                    request_id: None,
                    at: row.at,
                })
            }));
        }
        Ok(out)
    }

    /// Whether a subject holds data from before its erasure at `erased_at`: a `default` key
    /// made before then (after it, the subject came back and gave new data, which the erasure
    /// did not cover), or values under `default` while there is no key at all.
    async fn holds_erased_data(&self, subject_id: &str, erased_at: i64) -> Result<bool, VaultError> {
        let mut reader = self.store.reader().await?;
        if let Some(key) = reader
            .subjects()
            .key(subject_id, custodia_store::DEFAULT_KEY_CLASS)
            .await?
        {
            return Ok(key.created_at <= erased_at);
        }
        Ok(reader
            .records()
            .held_values(subject_id)
            .await?
            .iter()
            .any(|h| h.key_class == custodia_store::DEFAULT_KEY_CLASS))
    }

    /// The tombstones of `log` that the database's own list lacks (an erasure whose last
    /// transaction never committed, or a database restored by other means): what `serve`
    /// re-applies before it answers.
    pub async fn tombstones_missing(&self, log: &[ErasureRow]) -> Result<Vec<ErasureRow>, VaultError> {
        let listed = self.store.reader().await?.erasures().all().await?;
        let known = latest(listed.iter());
        Ok(latest(log.iter())
            .into_values()
            .filter(|t| known.get(&t.subject_digest).is_none_or(|k| k.at < t.at))
            .collect())
    }
}

/// The latest tombstone of each subject.
fn latest<'a>(rows: impl Iterator<Item = &'a ErasureRow>) -> BTreeMap<String, ErasureRow> {
    let mut latest: BTreeMap<String, ErasureRow> = BTreeMap::new();
    for row in rows {
        match latest.get(&row.subject_digest) {
            Some(known) if known.at >= row.at => {}
            _ => {
                latest.insert(row.subject_digest.clone(), row.clone());
            }
        }
    }
    latest
}
