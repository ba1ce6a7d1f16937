//! The append-only subject ledger (consents, objections, opt-outs, restrictions).

use crate::changes::{Change, announce};
use crate::sql::{DbRow, Stmt};
use crate::{LedgerRow, ReadWrite, StoreError};

super::repository!(
    /// Subjects' ledger entries.
    Ledger
);

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
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| Ok((r.int("seq")?, r.text("subject_id")?, r.int("at")?)))
            .collect()
    }

    /// Every ledger entry of a subject, oldest first.
    pub async fn of_subject(&mut self, subject_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM subject_ledger WHERE subject_id = $1 ORDER BY seq").bind(subject_id);
        self.conn.fetch_all(stmt).await?.iter().map(ledger_row).collect()
    }
}

impl Ledger<'_, ReadWrite> {
    /// Appends an entry; returns its sequence number. The schema refuses updates and deletes.
    /// Other nodes hear of it when the transaction commits ([`Change::Ledger`]).
    pub async fn append(&mut self, e: &LedgerRow) -> Result<i64, StoreError> {
        // The subject's keys locked first, as a write locks them: an erasure (which locks
        // them for itself) reads the ledger after this entry commits, and withdraws a consent
        // given while it ran, or this entry waits for the erasure and follows it.
        crate::repo::Subjects::<ReadWrite>::new(self.conn.reborrow())
            .lock_keys(&e.subject_id, crate::repo::KeyLock::Share)
            .await?;
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
        announce(&mut self.conn, &Change::Ledger(e.subject_id.clone())).await?;
        Ok(seq)
    }
}
