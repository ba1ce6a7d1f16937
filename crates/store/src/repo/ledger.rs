//! The append-only subject ledger (consents, objections, opt-outs, restrictions), sealed by
//! the vault.
//!
//! Whoever can write the database could otherwise give a subject's consent themselves (a
//! `consent` row inserted, a withdrawal changed or deleted) and have every read honour it.
//! Each entry is sealed with its number (`subject_ledger_seals`): an entry inserted, changed
//! or copied to another number by hand is refused. Each subject's head
//! (`subject_ledger_heads`) seals how many entries it has and the number of the newest: an
//! entry removed anywhere leaves too few. The whole ledger's tally (`ledger_tally` in `meta`)
//! seals how many entries there are in all and the fold of every head's seal: a subject's
//! ledger taken away with its head, or a head moved or put back from an earlier copy, leaves
//! it off ([`Ledger::check_tally`], at every start and sweeper run). The seals are MACs under
//! a key the vault holds ([`Sealer`]); the store never sees it. What they cannot tell: the
//! whole ledger, heads and tally put back as an earlier copy of the database had them.

use super::tally::{self, LEDGER, Message, Tally};
use crate::changes::{Change, announce};
use crate::sql::{DbRow, Dialect, Stmt};
use crate::{LedgerRow, ReadWrite, Sealer, StoreError};

super::repository!(
    /// Subjects' ledger entries.
    Ledger
);

/// The `meta` key set once every entry is sealed: at a vault's first start, or the start that
/// sealed the entries written before seals (schema version 22).
pub const LEDGER_SEALED: &str = "ledger_sealed";

/// What an entry's seal covers: its number and everything it records, each part length-prefixed
/// after a domain label.
fn entry_message(seq: i64, e: &LedgerRow) -> Vec<u8> {
    let mut m = Message::new("custodia.ledger-entry.v1");
    m.int(seq)
        .text(Some(&e.subject_id))
        .text(Some(&e.kind))
        .text(e.purpose.as_deref())
        .int(i64::from(e.value))
        .text(e.notice_version.as_deref())
        .text(Some(&e.method))
        .text(e.evidence.as_deref())
        .text(Some(&e.principal_id))
        .int(e.at);
    m.0
}

/// What a subject's head seal covers.
fn head_message(subject_id: &str, head: Head) -> Vec<u8> {
    let mut m = Message::new("custodia.ledger-head.v1");
    m.text(Some(subject_id)).int(head.entries).int(head.last_seq);
    m.0.extend_from_slice(&head.chain);
    m.0
}

/// A subject's head: how many entries it has and the newest's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    entries: i64,
    last_seq: i64,
    /// The chain of the subject's entry seals, oldest first ([`Head::then`]): an entry put in
    /// another's place at its number, even one the vault sealed, leaves the chain another.
    chain: [u8; CHAIN],
}

/// The bytes of a head's chain (SHA-256).
const CHAIN: usize = 32;

impl Head {
    /// The head of a subject with no entry.
    const NONE: Self = Self {
        entries: 0,
        last_seq: 0,
        chain: [0; CHAIN],
    };

    /// The head once the entry `seq`, sealed `entry_seal`, follows.
    fn then(self, seq: i64, entry_seal: &[u8]) -> Self {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(&self.chain);
        ctx.update(entry_seal);
        let mut chain = [0; CHAIN];
        chain.copy_from_slice(ctx.finish().as_ref());
        Self {
            entries: self.entries + 1,
            last_seq: seq,
            chain,
        }
    }
}

fn altered(what: String) -> StoreError {
    StoreError::LedgerAltered(what)
}

fn ledger_row(row: &DbRow) -> Result<LedgerRow, StoreError> {
    Ok(LedgerRow {
        seq: row.int("seq")?,
        subject_id: row.text("subject_id")?,
        kind: row.text("kind")?,
        purpose: row.opt_text("purpose")?,
        value: row.int("value")? != 0,
        notice_version: row.opt_text("notice_version")?,
        method: row.text("method")?,
        evidence: row.opt_text("evidence")?,
        principal_id: row.text("principal_id")?,
        at: row.int("at")?,
    })
}

/// A head read back, with its seal, checked against `seal` (a column of another type than the
/// vault writes is an alteration too).
fn sealed_head(subject_id: &str, row: &DbRow, seal: &dyn Sealer) -> Result<Option<(Head, Vec<u8>)>, StoreError> {
    let not_sealed = || altered("its head (how many entries it has) is not the one the vault sealed".into());
    let columns = (|| {
        Ok::<_, StoreError>((
            row.opt_int("head_entries")?,
            row.opt_int("head_last_seq")?,
            row.opt_bytes("head_chain")?,
            row.opt_bytes("head_seal")?,
        ))
    })()
    .map_err(|_| not_sealed())?;
    match columns {
        (None, None, None, None) => Ok(None),
        (Some(entries), Some(last_seq), Some(chain), Some(s)) => {
            let chain = <[u8; CHAIN]>::try_from(chain.as_slice()).map_err(|_| not_sealed())?;
            let head = Head {
                entries,
                last_seq,
                chain,
            };
            if seal.holds(&head_message(subject_id, head), &s) {
                Ok(Some((head, s)))
            } else {
                Err(not_sealed())
            }
        }
        _ => Err(not_sealed()),
    }
}

/// What a ledger entry read holds beyond its texts (numbers, its seal, the head's columns
/// joined to it, the allocations), for [`Ledger::stored_weight`].
const ROW_BYTES: u64 = 256;

/// How many reads of a subject's entries may find its head moved between two statements
/// before one gives up (appends to one subject are rare and short).
const READ_TRIES: usize = 3;

impl<A> Ledger<'_, A> {
    /// The sequence number of the subject's last entry, if it has one.
    pub async fn last_seq(&mut self, subject_id: &str) -> Result<Option<i64>, StoreError> {
        let stmt = Stmt::new("SELECT seq FROM subject_ledger WHERE subject_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(subject_id);
        self.conn.fetch_optional(stmt).await?.map(|r| r.int("seq")).transpose()
    }

    /// The entries after `after` (by sequence number), oldest first, at most `limit`: each
    /// one's sequence number, subject and time.
    pub async fn after(&mut self, after: i64, limit: i64) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let stmt = Stmt::new("SELECT seq, subject_id, at FROM subject_ledger WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit);
        // (an entry whose columns do not decode was written by hand: its subject's reads
        // refuse it; the entries listed here are those the sweeper times again)
        let rows = self.conn.fetch_all(stmt).await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.int("seq").ok()?, r.text("subject_id").ok()?, r.int("at").ok()?)))
            .collect())
    }

    /// Every ledger entry of a subject, oldest first, each checked against its seal and all
    /// of them against the subject's head ([`StoreError::LedgerAltered`] when one is not as
    /// the vault wrote it).
    pub async fn of_subject(&mut self, subject_id: &str, seal: &dyn Sealer) -> Result<Vec<LedgerRow>, StoreError> {
        for attempt in 1..=READ_TRIES {
            // one statement: the entries, their seals and the head as one commit left them
            let stmt = Stmt::new(
                "SELECT l.*, s.seal AS entry_seal, h.entries AS head_entries, h.last_seq AS head_last_seq, \
                 h.chain AS head_chain, h.seal AS head_seal FROM subject_ledger l \
                 LEFT JOIN subject_ledger_seals s ON s.seq = l.seq \
                 LEFT JOIN subject_ledger_heads h ON h.subject_id = l.subject_id \
                 WHERE l.subject_id = $1 ORDER BY l.seq",
            )
            .bind(subject_id);
            let rows = self.conn.fetch_all(stmt).await?;
            let Some(first) = rows.first() else {
                // no entry: nor may the subject have a head that counts some (all removed),
                // unless its first entry was appended between the two reads
                match self.head(subject_id, seal).await? {
                    Some(_) if attempt < READ_TRIES => continue,
                    Some(_) => {
                        return Err(altered(
                            "its head counts entries but none is there (removed by hand)".into(),
                        ));
                    }
                    None => return Ok(Vec::new()),
                }
            };
            let (head, _) = sealed_head(subject_id, first, seal)?
                .ok_or_else(|| altered("it has entries but no head (the vault seals one with each entry)".into()))?;
            let mut entries = Vec::with_capacity(rows.len());
            let mut chained = Head::NONE;
            for row in &rows {
                // a column written by hand with another type (a blob for `value`, a fraction
                // for `at`) is an alteration like any other, not a reason to fail the read
                let e = ledger_row(row)
                    .map_err(|_| altered("an entry holds a value of a type the vault never writes".into()))?;
                let sealed = row
                    .opt_bytes("entry_seal")
                    .ok()
                    .flatten()
                    .filter(|s| seal.holds(&entry_message(e.seq, &e), s))
                    .ok_or_else(|| {
                        altered(format!(
                            "entry {} is not one the vault sealed (inserted, changed or copied by hand)",
                            e.seq
                        ))
                    })?;
                chained = chained.then(e.seq, &sealed);
                entries.push(e);
            }
            let last_seq = entries.last().map_or(0, |e| e.seq);
            if head.entries != entries.len() as i64 || head.last_seq != last_seq || head.chain != chained.chain {
                return Err(altered(format!(
                    "it holds {} entries up to number {last_seq} where the vault counted {} up to number {} (removed, or put in another's place, by hand)",
                    entries.len(),
                    head.entries,
                    head.last_seq
                )));
            }
            return Ok(entries);
        }
        Err(StoreError::Conflict("subject ledger".into()))
    }

    /// What a subject's entries weigh as stored, in bytes: their texts, and a row's worth of
    /// the rest for each. What reading the ledger whole will hold, asked before it is read
    /// (a consent history of 12,000 entries holds megabytes as it is built).
    pub async fn stored_weight(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            "SELECT COUNT(*) AS entries, COALESCE(SUM(LENGTH(kind) + COALESCE(LENGTH(purpose), 0) \
             + COALESCE(LENGTH(notice_version), 0) + LENGTH(method) + COALESCE(LENGTH(evidence), 0) \
             + LENGTH(principal_id)), 0) AS bytes FROM subject_ledger WHERE subject_id = $1",
        )
        .bind(subject_id);
        let Some(row) = self.conn.fetch_optional(stmt).await? else {
            return Ok(0);
        };
        let count = |name: &str| -> Result<u64, StoreError> { Ok(u64::try_from(row.int(name)?).unwrap_or(0)) };
        Ok(count("bytes")?.saturating_add(count("entries")?.saturating_mul(ROW_BYTES)))
    }

    /// Every ledger entry of a subject as stored, unchecked: for what a tool without the
    /// vault's key reports (`assess` counts consents); whatever decides on consent reads
    /// [`Self::of_subject`].
    pub async fn of_subject_as_stored(&mut self, subject_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM subject_ledger WHERE subject_id = $1 ORDER BY seq").bind(subject_id);
        self.conn.fetch_all(stmt).await?.iter().map(ledger_row).collect()
    }

    /// A subject's head and its seal, checked against it.
    async fn head(&mut self, subject_id: &str, seal: &dyn Sealer) -> Result<Option<(Head, Vec<u8>)>, StoreError> {
        let stmt = Stmt::new(
            "SELECT entries AS head_entries, last_seq AS head_last_seq, chain AS head_chain, seal AS head_seal \
             FROM subject_ledger_heads WHERE subject_id = $1",
        )
        .bind(subject_id);
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => sealed_head(subject_id, &row, seal),
            None => Ok(None),
        }
    }

    /// Checks the whole ledger against its sealed tally: an entry deleted or added by hand
    /// leaves the count off, a subject's head deleted, moved to another subject or put back
    /// as an earlier copy had it leaves the fold of head seals off (a whole subject's ledger
    /// moved away with its head, which would lift its objections, included). Everything read
    /// in one statement, as one commit left it. A ledger without a tally is checked as one of
    /// no entry. Read at every start: the heads once each.
    pub async fn check_tally(&mut self, seal: &dyn Sealer) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "SELECT c.entries AS total, c.last_seq AS newest, (SELECT value FROM meta WHERE key = $1) AS tally, \
             h.subject_id, h.entries AS head_entries, h.last_seq AS head_last_seq, h.chain AS head_chain, \
             h.seal AS head_seal \
             FROM (SELECT COUNT(*) AS entries, COALESCE(MAX(seq), 0) AS last_seq FROM subject_ledger) c \
             LEFT JOIN subject_ledger_heads h ON 1 = 1",
        )
        .bind(LEDGER.key);
        let rows = self.conn.fetch_all(stmt).await?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the ledger's tally could not be read".into()))?;
        let (entries, last_seq) = (first.int("total")?, first.int("newest")?);
        let tally = match first.opt_bytes("tally") {
            Ok(Some(bytes)) => Tally::open(&bytes, &LEDGER, seal)?,
            Ok(None) => Tally::EMPTY,
            Err(_) => return Err(tally::not_sealed(&LEDGER)),
        };
        let mut heads = Tally::EMPTY;
        let mut heads_sealed = true;
        for row in &rows {
            let Ok(Some(subject_id)) = row.opt_text("subject_id") else {
                heads_sealed &= row.opt_bytes("head_seal").ok().flatten().is_none();
                continue;
            };
            match sealed_head(&subject_id, row, seal) {
                Ok(Some((_, s))) => heads.fold(&s),
                _ => heads_sealed = false,
            }
        }
        if tally.count != entries || tally.newest != last_seq || tally.fold != heads.fold || !heads_sealed {
            // where: read only now, the whole ledger once
            let found = self.alterations(seal).await?;
            return Err(altered(format!(
                "the ledger holds {entries} entries up to number {last_seq} where the vault counted {} up to number {}{} (entries or subjects' heads deleted, added or moved by hand){}",
                tally.count,
                tally.newest,
                if tally.fold == heads.fold && heads_sealed {
                    ""
                } else {
                    ", and its subjects' heads are not those it sealed"
                },
                if found.is_empty() {
                    String::new()
                } else {
                    format!("; {}", found.join("; "))
                }
            )));
        }
        Ok(())
    }

    /// What is not as the vault sealed it, by entry number, the whole ledger read once (at
    /// most [`SHOWN`] findings): entries without their seal (inserted, changed), and heads
    /// that count other entries than their subject holds (entries deleted; a subject named by
    /// its head's newest number, never by its id).
    async fn alterations(&mut self, seal: &dyn Sealer) -> Result<Vec<String>, StoreError> {
        const SHOWN: usize = 10;
        let mut found = Vec::new();
        let mut held: std::collections::BTreeMap<String, Head> = std::collections::BTreeMap::new();
        let mut after = i64::MIN;
        loop {
            let stmt = Stmt::new(
                "SELECT l.*, s.seal AS entry_seal FROM subject_ledger l \
                 LEFT JOIN subject_ledger_seals s ON s.seq = l.seq WHERE l.seq > $1 ORDER BY l.seq LIMIT 1000",
            )
            .bind(after);
            let rows = self.conn.fetch_all(stmt).await?;
            let Some(last) = rows.last() else { break };
            after = last.int("seq")?;
            for row in &rows {
                let seq = row.int("seq")?;
                let Ok(e) = ledger_row(row) else {
                    found.push(format!("entry {seq} holds a value of a type the vault never writes"));
                    continue;
                };
                let sealed = row.opt_bytes("entry_seal").ok().flatten().unwrap_or_default();
                if !seal.holds(&entry_message(seq, &e), &sealed) {
                    found.push(format!("entry {seq} is not one the vault sealed"));
                }
                let head = held.entry(e.subject_id).or_insert(Head::NONE);
                *head = head.then(seq, &sealed);
            }
        }
        let stmt = Stmt::new(
            "SELECT subject_id, entries AS head_entries, last_seq AS head_last_seq, chain AS head_chain, \
             seal AS head_seal FROM subject_ledger_heads ORDER BY last_seq",
        );
        for row in self.conn.fetch_all(stmt).await? {
            let newest = row.opt_int("head_last_seq").ok().flatten().unwrap_or_default();
            let head = row.text("subject_id").ok().and_then(|id| {
                let sealed = sealed_head(&id, &row, seal).ok().flatten()?;
                Some((id, sealed.0))
            });
            let Some((subject_id, head)) = head else {
                found.push(format!(
                    "the head of the subject whose newest entry was {newest} is not one the vault sealed (changed or moved)"
                ));
                continue;
            };
            let holds = held.get(&subject_id).copied().unwrap_or(Head::NONE);
            if holds.entries != head.entries {
                found.push(format!(
                    "the subject whose newest entry was {newest} holds {} of the {} entries counted",
                    holds.entries, head.entries
                ));
            } else if holds.chain != head.chain {
                found.push(format!(
                    "the subject whose newest entry was {newest} holds other entries than its head sealed (one put in another's place)"
                ));
            }
        }
        let more = found.len().saturating_sub(SHOWN);
        found.truncate(SHOWN);
        if more > 0 {
            found.push(format!("and {more} more"));
        }
        Ok(found)
    }

    /// Whether any entry or head carries a seal.
    pub async fn any_sealed(&mut self) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM subject_ledger_seals) \
             OR EXISTS (SELECT 1 FROM subject_ledger_heads)",
        );
        Ok(self.conn.fetch_optional(stmt).await?.is_some())
    }
}

impl Ledger<'_, ReadWrite> {
    /// Appends an entry, sealed, and moves its subject's head; returns its sequence number.
    /// The schema refuses updates and deletes of entries and seals. A head that is not as the
    /// vault sealed it refuses the append (a new head would cover what was done to it). Other
    /// nodes hear of it when the transaction commits ([`Change::Ledger`]).
    pub async fn append(&mut self, e: &LedgerRow, seal: &dyn Sealer) -> Result<i64, StoreError> {
        // The subject's keys locked first, as a write locks them: an erasure (which locks
        // them for itself) reads the ledger after this entry commits, and withdraws a consent
        // given while it ran, or this entry waits for the erasure and follows it.
        crate::repo::Subjects::<ReadWrite>::new(self.conn.reborrow())
            .lock_keys(&e.subject_id, crate::repo::KeyLock::Share)
            .await?;
        // Appends to one subject's ledger one at a time (SQLite: one writer anyway), each
        // moving the head the one before left.
        if self.conn.dialect() == Dialect::Postgres {
            self.conn
                .execute(Stmt::new("SELECT pg_advisory_xact_lock(7362, hashtext($1))").bind(&e.subject_id))
                .await?;
        }
        let before = self.head(&e.subject_id, seal).await?;
        let stmt = Stmt::new(
            "INSERT INTO subject_ledger (subject_id, kind, purpose, value, notice_version, method, \
             evidence, principal_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
        )
        .bind(&e.subject_id)
        .bind(&e.kind)
        .bind(e.purpose.as_deref())
        .bind(i64::from(e.value))
        .bind(e.notice_version.as_deref())
        .bind(&e.method)
        .bind(e.evidence.as_deref())
        .bind(&e.principal_id)
        .bind(e.at);
        let row = self
            .conn
            .fetch_optional(stmt)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an appended ledger entry has no number".into()))?;
        let seq = row.int("seq")?;
        let entry_seal = self.seal_entry(seq, e, seal).await?;
        let head = before.as_ref().map_or(Head::NONE, |(h, _)| *h).then(seq, &entry_seal);
        let head_seal = self.set_head(&e.subject_id, head, seal).await?;
        tally::moved(&mut self.conn, &LEDGER, seal, |t| {
            t.count += 1;
            // (appends of two nodes may lock it in the other order than they numbered)
            t.newest = t.newest.max(seq);
            if let Some((_, old)) = &before {
                t.fold(old);
            }
            t.fold(&head_seal);
        })
        .await?;
        announce(&mut self.conn, &Change::Ledger(e.subject_id.clone())).await?;
        Ok(seq)
    }

    /// Seals entry `seq`; returns its seal.
    async fn seal_entry(&mut self, seq: i64, e: &LedgerRow, seal: &dyn Sealer) -> Result<Vec<u8>, StoreError> {
        let sealed = seal.seal(&entry_message(seq, e));
        let stmt = Stmt::new("INSERT INTO subject_ledger_seals (seq, seal) VALUES ($1, $2)")
            .bind(seq)
            .bind(&sealed[..]);
        self.conn.execute(stmt).await?;
        Ok(sealed)
    }

    /// Writes a subject's head, sealed; returns its seal.
    async fn set_head(&mut self, subject_id: &str, head: Head, seal: &dyn Sealer) -> Result<Vec<u8>, StoreError> {
        let sealed = seal.seal(&head_message(subject_id, head));
        let stmt = Stmt::new(
            "INSERT INTO subject_ledger_heads (subject_id, entries, last_seq, chain, seal) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (subject_id) DO UPDATE SET entries = excluded.entries, last_seq = excluded.last_seq, \
             chain = excluded.chain, seal = excluded.seal",
        )
        .bind(subject_id)
        .bind(head.entries)
        .bind(head.last_seq)
        .bind(&head.chain[..])
        .bind(&sealed[..]);
        self.conn.execute(stmt).await?;
        Ok(sealed)
    }

    /// Seals every entry and head there is, as they are: the entries written before seals, at
    /// the start that makes the vault seal them (its caller sees that none is sealed yet).
    /// Returns how many entries it sealed.
    pub async fn seal_every_entry(&mut self, seal: &dyn Sealer) -> Result<usize, StoreError> {
        let mut heads: std::collections::BTreeMap<String, Head> = std::collections::BTreeMap::new();
        let mut sealed = 0;
        let mut after = 0;
        loop {
            let stmt = Stmt::new("SELECT * FROM subject_ledger WHERE seq > $1 ORDER BY seq LIMIT 1000").bind(after);
            let page = self
                .conn
                .fetch_all(stmt)
                .await?
                .iter()
                .map(ledger_row)
                .collect::<Result<Vec<_>, _>>()?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for e in &page {
                let entry_seal = self.seal_entry(e.seq, e, seal).await?;
                let head = heads.entry(e.subject_id.clone()).or_insert(Head::NONE);
                *head = head.then(e.seq, &entry_seal);
                sealed += 1;
            }
        }
        let mut folded = Tally::EMPTY;
        for (subject_id, head) in heads {
            folded.fold(&self.set_head(&subject_id, head, seal).await?);
        }
        let entries = i64::try_from(sealed).unwrap_or(i64::MAX);
        tally::moved(&mut self.conn, &LEDGER, seal, |t| {
            t.count += entries;
            t.newest = t.newest.max(after);
            t.fold(&folded.fold);
        })
        .await?;
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LedgerRow {
        LedgerRow {
            seq: 0,
            subject_id: "cust_1".into(),
            kind: "consent".into(),
            purpose: Some("marketing_email".into()),
            value: true,
            notice_version: Some("v1".into()),
            method: "api".into(),
            evidence: None,
            principal_id: "p_1".into(),
            at: 1_700_000_000_000,
        }
    }

    /// Every part of an entry, its number included, is in what its seal covers: changing one
    /// changes the message, and moving a byte between two parts does too.
    #[test]
    fn an_entry_message_covers_every_part() {
        let e = entry();
        let base = entry_message(7, &e);
        let changed: Vec<Vec<u8>> = vec![
            entry_message(8, &e),
            entry_message(
                7,
                &LedgerRow {
                    subject_id: "cust_2".into(),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    kind: "objection".into(),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    purpose: None,
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    purpose: Some("analytics".into()),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    value: false,
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    notice_version: None,
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    method: "portal".into(),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    evidence: Some(String::new()),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    principal_id: "p_2".into(),
                    ..e.clone()
                },
            ),
            entry_message(
                7,
                &LedgerRow {
                    at: e.at + 1,
                    ..e.clone()
                },
            ),
            // a byte moved from one part to the next
            entry_message(
                7,
                &LedgerRow {
                    kind: "consen".into(),
                    purpose: Some("tmarketing_email".into()),
                    ..e.clone()
                },
            ),
        ];
        for (i, m) in changed.iter().enumerate() {
            assert_ne!(m, &base, "change {i} left the message as it was");
        }
        assert_eq!(
            entry_message(7, &LedgerRow { seq: 99, ..e.clone() }),
            base,
            "the stored number is what counts"
        );
        let head = Head {
            entries: 3,
            last_seq: 9,
            chain: [3; CHAIN],
        };
        assert_ne!(
            head_message("cust_1", head),
            head_message("cust_1", Head { entries: 2, ..head })
        );
        assert_ne!(
            head_message("cust_1", head),
            head_message("cust_1", Head { last_seq: 8, ..head })
        );
        assert_ne!(head_message("cust_1", head), head_message("cust_2", head));
        assert_ne!(
            head_message("cust_1", head),
            head_message(
                "cust_1",
                Head {
                    chain: [4; CHAIN],
                    ..head
                }
            )
        );
        // the chain follows each entry's seal: another seal at the same number, another chain
        assert_ne!(Head::NONE.then(1, b"one").chain, Head::NONE.then(1, b"two").chain);
        assert_ne!(
            Head::NONE.then(1, b"one").then(2, b"two"),
            Head::NONE.then(1, b"two").then(2, b"two")
        );
    }
}
