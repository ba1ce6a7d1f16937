//! Every signed checkpoint leaves the database: appended to the checkpoint log (a file the
//! operator can place on other storage) and sent to the witness, whose cosignature is
//! appended too. At start the newest of each comes back as a trusted checkpoint: the server
//! refuses a log that does not extend them.

use std::io::Write;
use std::path::{Path, PathBuf};

use custodia_audit::witness::AddCheckpoint;
use custodia_core::{OutsideCheckpoints, TrustedCheckpoint, Vault, VerifierKey};
use custodia_store::{CheckpointRow, Store};
use tokio::sync::Mutex;

use crate::witness::{WitnessClient, WitnessFailure};

/// Where checkpoints are published, and what the witness last cosigned.
pub struct Publisher {
    checkpoint_log: Option<PathBuf>,
    /// Whether a missing checkpoint log may begin afresh while the database holds checkpoints.
    afresh: bool,
    witness: Option<WitnessClient>,
    /// The size of the witness's newest checkpoint, as far as this server knows.
    witnessed: Mutex<Option<u64>>,
}

impl Publisher {
    #[must_use]
    pub fn new(checkpoint_log: Option<PathBuf>, witness: Option<WitnessClient>) -> Self {
        Self {
            checkpoint_log,
            afresh: false,
            witness,
            witnessed: Mutex::new(None),
        }
    }

    /// Lets a missing checkpoint log begin afresh although the database holds checkpoints.
    #[must_use]
    pub fn begin_log_afresh(mut self, afresh: bool) -> Self {
        self.afresh = afresh;
        self
    }

    /// Where this server keeps checkpoints outside the database, named (the checkpoint log's
    /// path, the witness's address); empty when it keeps them nowhere (`--no-checkpoint-log`,
    /// no witness).
    #[must_use]
    pub fn places(&self) -> Vec<String> {
        let log = self
            .checkpoint_log
            .iter()
            .map(|p| format!("the checkpoint log {}", p.display()));
        let witness = self.witness.iter().map(|w| format!("the witness at {}", w.url()));
        log.chain(witness).collect()
    }

    /// The rule a server starts by for its checkpoint log: a SQLite vault's log is its own,
    /// written since its first checkpoint, so kept but gone (or emptied) while the database
    /// holds checkpoints, it was deleted, emptied to rewrite what it proves, or moved. `Some`
    /// names the log and the newest checkpoint in the database. A PostgreSQL node's log holds
    /// what that node signed (a new node starts without one), so the rule is SQLite's only.
    pub async fn missing_log(&self, store: &Store) -> Result<Option<MissingLog>, String> {
        let Some(path) = self.checkpoint_log.as_deref() else {
            return Ok(None);
        };
        let emptied = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(format!("the checkpoint log {}: {e}", path.display())),
            // Every line is a checkpoint: a log with none never held one (its server never
            // signed) or was emptied.
            Ok(meta) if meta.len() == 0 => true,
            Ok(_) => return Ok(None),
        };
        if store.shared() {
            return Ok(None);
        }
        let latest = async { store.reader().await?.audit().latest_checkpoint().await }
            .await
            .map_err(|e| e.to_string())?;
        Ok(latest.map(|cp| MissingLog {
            path: path.to_owned(),
            emptied,
            tree_size: cp.tree_size,
        }))
    }

    /// Whether a missing checkpoint log may begin afresh (`--new-checkpoint-log`).
    pub(crate) fn afresh(&self) -> bool {
        self.afresh
    }

    /// The checkpoints kept outside the database, as the assessment judges them: by the rule
    /// the server starts by ([`Publisher::missing_log`], never waived here: until the new log
    /// has a line, nothing outside the database vouches for the checkpoints), then the newest
    /// of each place ([`Publisher::trusted`]).
    pub async fn outside(&self, store: &Store, key: &VerifierKey) -> OutsideCheckpoints {
        let trusted = async {
            if let Some(missing) = self.missing_log(store).await? {
                return Err(missing.refusal());
            }
            self.trusted(key).await
        }
        .await;
        OutsideCheckpoints {
            places: self.places(),
            trusted,
        }
    }

    /// The checkpoints from outside the database a starting server must find its log
    /// extending: the checkpoint log's newest line and the witness's newest cosigned one.
    pub async fn trusted(&self, key: &VerifierKey) -> Result<Vec<TrustedCheckpoint>, String> {
        let mut trusted = Vec::new();
        if let Some(path) = &self.checkpoint_log
            && path.exists()
            && let Some(t) = TrustedCheckpoint::from_file(path, key)?
        {
            trusted.push(t);
        }
        if let Some(witness) = &self.witness {
            // A configured witness must answer at start (fail closed: a log truncated while
            // the witness is away must not be continued); run without `--witness` to start
            // without it.
            match witness.latest(key).await {
                Ok(Some(note)) => {
                    let t = TrustedCheckpoint::from_note(&format!("the witness at {}", witness.url()), &note, key)?;
                    *self.witnessed.lock().await = Some(t.checkpoint.size);
                    trusted.push(t);
                }
                Ok(None) => *self.witnessed.lock().await = Some(0),
                Err(WitnessFailure::Unreachable(e)) => {
                    return Err(format!(
                        "{e}: the witness must be reachable when the server starts (start without --witness to run without it)"
                    ));
                }
                Err(WitnessFailure::Refused(e)) => return Err(e),
            }
        }
        Ok(trusted)
    }

    /// Publishes a checkpoint the vault just signed.
    pub async fn publish(&self, vault: &Vault, row: &CheckpointRow) {
        let mut note = row.note.clone();
        if let Some(witness) = &self.witness {
            match self.witness(vault, witness, row).await {
                Ok(line) => note.push_str(&line),
                // The witness holds a checkpoint this log does not extend: stop (fail closed).
                Err(WitnessFailure::Refused(why)) => vault.stop_audit_log(why),
                Err(WitnessFailure::Unreachable(e)) => {
                    tracing::warn!(error = %e, tree_size = row.tree_size, "checkpoint not witnessed; will retry");
                }
            }
        }
        if let Some(path) = &self.checkpoint_log
            && let Err(e) = append_line(path, row, &note)
        {
            tracing::error!(error = %e, path = %path.display(), "cannot append to the checkpoint log");
        }
    }

    /// Sends the checkpoint to the witness with a consistency proof from the witness's size,
    /// learning that size from a 409 if this server does not know it.
    async fn witness(
        &self,
        vault: &Vault,
        witness: &WitnessClient,
        row: &CheckpointRow,
    ) -> Result<String, WitnessFailure> {
        let size =
            u64::try_from(row.tree_size).map_err(|_| WitnessFailure::Unreachable("a negative tree size".to_owned()))?;
        let mut witnessed = self.witnessed.lock().await;
        for _ in 0..2 {
            let old = witnessed.unwrap_or(0).min(size);
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                vault
                    .consistency_hashes(old, size)
                    .await
                    .map_err(|e| WitnessFailure::Unreachable(format!("consistency proof: {e}")))?
            };
            let request = AddCheckpoint {
                old_size: old,
                proof,
                note: row.note.clone(),
            };
            match witness.submit(&request).await? {
                Ok(line) => {
                    let verified = custodia_audit::note::Note::parse(&format!("{}{line}", row.note))
                        .map_err(|e| e.to_string())
                        .and_then(|n| witness.key.verify(&n).map_err(|e| e.to_string()));
                    if let Err(e) = verified {
                        return Err(WitnessFailure::Unreachable(format!(
                            "the witness's cosignature does not verify: {e}"
                        )));
                    }
                    *witnessed = Some(size);
                    return Ok(line);
                }
                Err(theirs) if theirs > size => {
                    return Err(WitnessFailure::Refused(format!(
                        "the witness holds a checkpoint at size {theirs}, beyond this log's {size}: the log was truncated"
                    )));
                }
                Err(theirs) => *witnessed = Some(theirs),
            }
        }
        Err(WitnessFailure::Unreachable(
            "the witness keeps changing its size".into(),
        ))
    }
}

/// A checkpoint log kept but missing or empty while the database holds checkpoints.
#[derive(Debug)]
pub struct MissingLog {
    path: PathBuf,
    /// It is there, but empty.
    emptied: bool,
    /// The size of the newest checkpoint in the database.
    tree_size: i64,
}

impl MissingLog {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is there but empty (else missing).
    pub fn emptied(&self) -> bool {
        self.emptied
    }

    pub fn tree_size(&self) -> i64 {
        self.tree_size
    }

    /// Why a server refuses to start on it (and the assessment fails it).
    pub(crate) fn refusal(&self) -> String {
        let (state, how) = if self.emptied {
            ("empty", "emptied; restore its lines, or if that was on purpose")
        } else {
            (
                "missing",
                "deleted or moved; put it back, or if it was moved aside on purpose",
            )
        };
        format!(
            "the checkpoint log {} is {state}, but the database holds checkpoints up to size {}: it was {how} (accepting what it no longer proves) start once with --new-checkpoint-log",
            self.path.display(),
            self.tree_size
        )
    }
}

/// Appends one JSON line (size, time, note) to the checkpoint log and syncs it.
fn append_line(path: &Path, row: &CheckpointRow, note: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let line = serde_json::json!({
        "tree_size": row.tree_size,
        "at": custodia_core::Timestamp(row.at).to_rfc3339(),
        "note": note,
    });
    writeln!(file, "{line}")?;
    file.sync_data()
}
