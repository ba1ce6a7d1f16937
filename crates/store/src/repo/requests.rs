//! Data subject requests: the work queue of the rights the law gives customers.

use crate::sql::{DbRow, Dialect, Stmt, placeholders};
use crate::{ReadWrite, RequestRow, StoreError};

super::repository!(
    /// Data subject requests.
    Requests
);

/// What an erased subject's requests say where an operator's free text was.
pub const FORGOTTEN_TEXT: &str = "(cleared when the subject was erased)";

const COLUMNS: &str = "request_id, subject_id, subject_digest, kind, jurisdiction, received_via, status, \
     received_at, acknowledge_by, due_at, extended_at, extension_reason, verified_via, verified_by, verified_at, \
     denial_reason, outcome, created_by, updated_at, closed_at, keep_until, version";

fn request_row(row: &DbRow) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        request_id: row.text("request_id")?,
        subject_id: row.opt_text("subject_id")?,
        subject_digest: row.text("subject_digest")?,
        kind: row.text("kind")?,
        jurisdiction: row.text("jurisdiction")?,
        received_via: row.text("received_via")?,
        status: row.text("status")?,
        received_at: row.int("received_at")?,
        acknowledge_by: row.opt_int("acknowledge_by")?,
        due_at: row.int("due_at")?,
        extended_at: row.opt_int("extended_at")?,
        extension_reason: row.opt_text("extension_reason")?,
        verified_via: row.opt_text("verified_via")?,
        verified_by: row.opt_text("verified_by")?,
        verified_at: row.opt_int("verified_at")?,
        denial_reason: row.opt_text("denial_reason")?,
        outcome: row.opt_text("outcome")?,
        created_by: row.text("created_by")?,
        updated_at: row.int("updated_at")?,
        closed_at: row.opt_int("closed_at")?,
        keep_until: row.int("keep_until")?,
        version: row.int("version")?,
    })
}

/// Which requests a listing selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestQuery {
    /// Only requests in these states (empty: any).
    pub statuses: Vec<String>,
    /// Only requests due before this time (Unix milliseconds, exclusive).
    pub due_before: Option<i64>,
    /// Only requests about this subject digest.
    pub subject_digest: Option<String>,
    /// At most this many, soonest due first.
    pub limit: i64,
}

impl<A> Requests<'_, A> {
    /// One request.
    pub async fn get(&mut self, request_id: &str) -> Result<Option<RequestRow>, StoreError> {
        let stmt = Stmt::new(format!("SELECT {COLUMNS} FROM requests WHERE request_id = $1")).bind(request_id);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(request_row)
            .transpose()
    }

    /// The requests `query` selects, soonest due first.
    pub async fn list(&mut self, query: &RequestQuery) -> Result<Vec<RequestRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM requests WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if !query.statuses.is_empty() {
            let marks: Vec<String> = query.statuses.iter().map(|_| format!("${}", next())).collect();
            sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
        }
        if query.due_before.is_some() {
            sql.push_str(&format!(" AND due_at < ${}", next()));
        }
        if query.subject_digest.is_some() {
            sql.push_str(&format!(" AND subject_digest = ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY due_at, request_id LIMIT ${}", next()));
        let mut stmt = Stmt::new(sql);
        for s in &query.statuses {
            stmt.push(s);
        }
        if let Some(due) = query.due_before {
            stmt.push(due);
        }
        if let Some(digest) = &query.subject_digest {
            stmt.push(digest);
        }
        stmt.push(query.limit);
        self.conn.fetch_all(stmt).await?.iter().map(request_row).collect()
    }

    /// `(subject digest, jurisdiction)` of every jurisdiction the requests about these
    /// subjects named, each pair once: read through the index by subject, never the whole queue.
    pub async fn jurisdictions_of(&mut self, digests: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in digests.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT DISTINCT subject_digest, jurisdiction FROM requests WHERE subject_digest IN ({})",
                placeholders(1, chunk.len())
            );
            let mut stmt = Stmt::new(sql);
            for d in chunk {
                stmt.push(*d);
            }
            for row in self.conn.fetch_all(stmt).await? {
                out.push((row.text("subject_digest")?, row.text("jurisdiction")?));
            }
        }
        Ok(out)
    }
}

impl Requests<'_, ReadWrite> {
    /// Adds a request. Fails with [`StoreError::Conflict`] if its id is taken.
    pub async fn insert(&mut self, r: &RequestRow) -> Result<(), StoreError> {
        let stmt = Stmt::new(format!(
            "INSERT INTO requests ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22)"
        ));
        self.conn.execute(bind_all(stmt, r)).await?;
        Ok(())
    }

    /// Writes a request's new state, provided no other change came since it was read: the
    /// stored version must still be `r.version` (it becomes `r.version + 1`); `false` when
    /// another change won. The id, subject digest, kind, jurisdiction, receipt and creator
    /// never change.
    pub async fn update(&mut self, r: &RequestRow) -> Result<bool, StoreError> {
        // The columns' placeholders are those of `bind_all`, the insert's.
        let stmt = Stmt::new(
            "UPDATE requests SET subject_id = $2, status = $7, acknowledge_by = $9, due_at = $10, \
             extended_at = $11, extension_reason = $12, verified_via = $13, verified_by = $14, verified_at = $15, \
             denial_reason = $16, outcome = $17, updated_at = $19, closed_at = $20, keep_until = $21, \
             version = $22 + 1 WHERE request_id = $1 AND version = $22",
        );
        Ok(self.conn.execute(bind_all(stmt, r)).await? == 1)
    }

    /// Forgets an erased subject in its requests: the id, and the free texts operators wrote
    /// about it (how the requester was verified, reasons), which may name the person; the
    /// digest and the request's facts stay. `open_too`: in the requests still open as well
    /// (an erasure's; a subject the sweeper removed keeps them in those, which still need
    /// them to be answered).
    pub async fn forget_subject(&mut self, subject_id: &str, open_too: bool) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            "UPDATE requests SET subject_id = NULL, version = version + 1, \
             verified_via = CASE WHEN verified_via IS NULL THEN NULL ELSE $2 END, \
             extension_reason = CASE WHEN extension_reason IS NULL THEN NULL ELSE $2 END, \
             denial_reason = CASE WHEN denial_reason IS NULL THEN NULL ELSE $2 END \
             WHERE subject_id = $1 AND ($3 = 1 OR closed_at IS NOT NULL)",
        )
        .bind(subject_id)
        .bind(FORGOTTEN_TEXT)
        .bind(i64::from(open_too));
        self.conn.execute(stmt).await
    }

    /// Deletes the requests whose keeping time ended before `now`; returns how many.
    pub async fn purge(&mut self, now: i64) -> Result<u64, StoreError> {
        let stmt = Stmt::new("DELETE FROM requests WHERE keep_until < $1").bind(now);
        self.conn.execute(stmt).await
    }
}

fn bind_all<'a>(stmt: Stmt<'a>, r: &'a RequestRow) -> Stmt<'a> {
    stmt.bind(&r.request_id)
        .bind(r.subject_id.as_deref())
        .bind(&r.subject_digest)
        .bind(&r.kind)
        .bind(&r.jurisdiction)
        .bind(&r.received_via)
        .bind(&r.status)
        .bind(r.received_at)
        .bind(r.acknowledge_by)
        .bind(r.due_at)
        .bind(r.extended_at)
        .bind(r.extension_reason.as_deref())
        .bind(r.verified_via.as_deref())
        .bind(r.verified_by.as_deref())
        .bind(r.verified_at)
        .bind(r.denial_reason.as_deref())
        .bind(r.outcome.as_deref())
        .bind(&r.created_by)
        .bind(r.updated_at)
        .bind(r.closed_at)
        .bind(r.keep_until)
        .bind(r.version)
}
