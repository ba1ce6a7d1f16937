//! A witness's decisions (C2SP tlog-witness): it keeps the newest checkpoint it cosigned for
//! each log, and cosigns a new one only if a consistency proof shows that the new tree extends
//! it. A log that rewrites or truncates what a witness has seen cannot get that witness's
//! cosignature again, and the witness's copy proves what the log was. Pure: the caller stores
//! the state and supplies the time.
//!
//! An `add-checkpoint` request body:
//!
//! ```text
//! old 1200                       the size of the witness's checkpoint, as the log believes
//! <base64 hash>                  the consistency proof from that size to the new one,
//! ...                            one hash per line
//!                                a blank line
//! custodia-audit                 the new signed checkpoint note
//! 1234
//! ...
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::note::{Checkpoint, Note, NoteError, NoteSigner, VerifierKey};
use crate::{Hash, verify_consistency};

/// At most this many proof lines (a consistency proof of a tree of 2^63 leaves has fewer).
const MAX_PROOF: usize = 63;

/// Why a witness refused a checkpoint; each maps to the status C2SP tlog-witness names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// 400.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 404: no configured log has this origin.
    #[error("unknown log")]
    UnknownLog,
    /// 403: the checkpoint is not signed by the log's key.
    #[error("the checkpoint is not signed by the log's key")]
    NotSigned,
    /// 409: the request's old size is not the witness's; the body tells the log its size.
    #[error("the witness's checkpoint is at size {0}")]
    Conflict(u64),
    /// 422: the new checkpoint does not extend the witness's (or shrinks it).
    #[error("the checkpoint is not consistent with the witness's checkpoint at size {0}")]
    Inconsistent(u64),
}

impl WitnessError {
    /// The HTTP status of this refusal.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::UnknownLog => 404,
            Self::NotSigned => 403,
            Self::Conflict(_) => 409,
            Self::Inconsistent(_) => 422,
        }
    }
}

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub note: String,
}

impl AddCheckpoint {
    /// Parses a request body.
    pub fn parse(body: &str) -> Result<Self, WitnessError> {
        let bad = |why: &str| WitnessError::Malformed(why.to_owned());
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between the proof and the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0')))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF {
                return Err(bad("too many proof lines"));
            }
            let hash = B64
                .decode(line)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| bad("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(hash);
        }
        Ok(Self {
            old_size,
            proof,
            note: note.to_owned(),
        })
    }

    /// The request body.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }
}

/// What a witness holds for one log: the newest checkpoint it cosigned, as a cosigned note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

/// Decides an `add-checkpoint` request for the log `log_key` whose newest witnessed
/// checkpoint is `latest` (`None`: never seen). On success returns the new state to store
/// (durably, before answering) and the cosignature line to answer with.
pub fn add_checkpoint(
    log_key: &VerifierKey,
    latest: Option<&Witnessed>,
    request: &AddCheckpoint,
    witness: &NoteSigner,
    now_seconds: u64,
) -> Result<(Witnessed, String), WitnessError> {
    let mut note = Note::parse(&request.note).map_err(|e| WitnessError::Malformed(e.to_string()))?;
    match log_key.verify(&note) {
        Ok(_) => {}
        Err(NoteError::NotSigned(_) | NoteError::BadSignature(_)) => return Err(WitnessError::NotSigned),
        Err(e) => return Err(WitnessError::Malformed(e.to_string())),
    }
    let checkpoint = Checkpoint::parse(note.text()).map_err(|e| WitnessError::Malformed(e.to_string()))?;
    if checkpoint.origin != log_key.name() {
        return Err(WitnessError::UnknownLog);
    }
    if request.old_size > checkpoint.size {
        return Err(WitnessError::Malformed(
            "old size is larger than the checkpoint's".into(),
        ));
    }
    let (old_size, old_root) = latest.map_or((0, None), |w| (w.size, Some(w.root)));
    if request.old_size != old_size {
        return Err(WitnessError::Conflict(old_size));
    }
    match old_root {
        None => {
            if !request.proof.is_empty() {
                return Err(WitnessError::Malformed("a first checkpoint takes no proof".into()));
            }
        }
        Some(old_root) => {
            if verify_consistency(old_size, checkpoint.size, &request.proof, &old_root, &checkpoint.root).is_err() {
                return Err(WitnessError::Inconsistent(old_size));
            }
        }
    }
    witness
        .cosign(&mut note, now_seconds)
        .map_err(|e| WitnessError::Malformed(e.to_string()))?;
    let line = note
        .signatures()
        .last()
        .map(|s| format!("{}\n", s.line()))
        .unwrap_or_default();
    Ok((
        Witnessed {
            size: checkpoint.size,
            root: checkpoint.root,
            note: note.to_text(),
        },
        line,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{COSIGNATURE_TYPE, ED25519_TYPE};
    use crate::{CompactRange, consistency_proof, leaf_hash};

    fn log() -> NoteSigner {
        NoteSigner::from_seed("custodia-audit", ED25519_TYPE, &[1; 32]).unwrap()
    }

    fn witness() -> NoteSigner {
        NoteSigner::from_seed("witness.example", COSIGNATURE_TYPE, &[2; 32]).unwrap()
    }

    fn leaves(n: usize, salt: u8) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[salt, i as u8, (i >> 8) as u8])).collect()
    }

    fn signed(leaves: &[Hash]) -> String {
        let mut range = CompactRange::default();
        leaves.iter().for_each(|l| range.push(*l));
        let cp = Checkpoint::new("custodia-audit", leaves.len() as u64, range.root());
        log().sign(&cp.text()).unwrap().to_text()
    }

    fn request(old: usize, all: &[Hash]) -> AddCheckpoint {
        AddCheckpoint {
            old_size: old as u64,
            proof: if old == 0 {
                vec![]
            } else {
                consistency_proof(all, old).unwrap()
            },
            note: signed(all),
        }
    }

    #[test]
    fn a_growing_log_is_cosigned_and_a_rewritten_one_is_not() {
        let (log, w) = (log(), witness());
        let all = leaves(300, 0);
        let (first, line) = add_checkpoint(log.verifier(), None, &request(0, &all[..10]), &w, 100).unwrap();
        assert!(line.starts_with("\u{2014} witness.example "));
        // The stored note carries both signatures.
        let stored = Note::parse(&first.note).unwrap();
        assert_eq!(log.verifier().verify(&stored), Ok(None));
        assert_eq!(w.verifier().verify(&stored), Ok(Some(100)));

        let (second, _) = add_checkpoint(log.verifier(), Some(&first), &request(10, &all[..300]), &w, 101).unwrap();
        assert_eq!(second.size, 300);

        // A log rewritten below what the witness saw cannot prove consistency.
        let mut forked = all.clone();
        forked[5] = leaf_hash(b"rewritten");
        let err = add_checkpoint(
            log.verifier(),
            Some(&second),
            &request(300, &[&forked[..], &leaves(5, 9)[..]].concat()),
            &w,
            102,
        );
        assert_eq!(err, Err(WitnessError::Inconsistent(300)));
        // A truncated log: its size is below the witness's.
        let err = add_checkpoint(log.verifier(), Some(&second), &request(200, &all[..200]), &w, 102);
        assert_eq!(err, Err(WitnessError::Conflict(300)));
        let mut shrunk = request(0, &all[..200]);
        shrunk.old_size = 300;
        let err = add_checkpoint(log.verifier(), Some(&second), &shrunk, &w, 102);
        assert!(matches!(err, Err(WitnessError::Malformed(_))));
        // The same size with another root is a fork too.
        let err = add_checkpoint(log.verifier(), Some(&second), &request(300, &forked[..300]), &w, 102);
        assert_eq!(err, Err(WitnessError::Inconsistent(300)));
    }

    #[test]
    fn only_the_logs_key_is_witnessed() {
        let w = witness();
        let stranger = NoteSigner::from_seed("custodia-audit", ED25519_TYPE, &[7; 32]).unwrap();
        let all = leaves(4, 0);
        let mut req = request(0, &all);
        req.note = stranger
            .sign(&Checkpoint::new("custodia-audit", 4, [0; 32]).text())
            .unwrap()
            .to_text();
        assert_eq!(
            add_checkpoint(log().verifier(), None, &req, &w, 1),
            Err(WitnessError::NotSigned)
        );
        let other_origin = NoteSigner::from_seed("other-log", ED25519_TYPE, &[1; 32]).unwrap();
        let mut req = request(0, &all);
        req.note = other_origin
            .sign(&Checkpoint::new("elsewhere", 4, [0; 32]).text())
            .unwrap()
            .to_text();
        assert_eq!(
            add_checkpoint(other_origin.verifier(), None, &req, &w, 1),
            Err(WitnessError::UnknownLog)
        );
    }

    #[test]
    fn requests_round_trip_and_malformed_ones_are_refused() {
        let all = leaves(20, 0);
        let req = request(7, &all);
        assert_eq!(AddCheckpoint::parse(&req.to_text()), Ok(req));
        for bad in [
            "",
            "old 1\n",
            "old x\n\nnote",
            "old 01\n\nn",
            "new 1\n\nn",
            "old 1\nAAAA\n\nn",
        ] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
        let many = format!(
            "old 1\n{}\nn",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
        );
        assert!(AddCheckpoint::parse(&many).is_err());
    }
}
