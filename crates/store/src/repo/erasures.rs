//! The tombstone list: every erased subject by keyed digest, append-only. Restoring an older
//! backup re-applies it (with the copy kept outside the database), so an erased subject never
//! comes back.

use crate::sql::Stmt;
use crate::{ErasureRow, ReadWrite, StoreError};

super::repository!(
    /// Tombstones of erased subjects.
    Erasures
);

impl<A> Erasures<'_, A> {
    /// Every tombstone, oldest first.
    pub async fn all(&mut self) -> Result<Vec<ErasureRow>, StoreError> {
        let stmt = Stmt::new("SELECT subject_digest, request_id, at FROM erasures ORDER BY seq");
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(ErasureRow {
                    subject_digest: row.text("subject_digest")?,
                    request_id: row.opt_text("request_id")?,
                    at: row.int("at")?,
                })
            })
            .collect()
    }
}

impl<A> Erasures<'_, A> {
    /// When the subject of `subject_digest` was last erased, if ever.
    pub async fn last_of(&mut self, subject_digest: &str) -> Result<Option<i64>, StoreError> {
        let stmt = Stmt::new("SELECT at FROM erasures WHERE subject_digest = $1 ORDER BY at DESC LIMIT 1")
            .bind(subject_digest);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|row| row.int("at"))
            .transpose()
    }
}

impl Erasures<'_, ReadWrite> {
    /// Appends a tombstone. The schema refuses updates and deletes.
    pub async fn append(&mut self, e: &ErasureRow) -> Result<(), StoreError> {
        let stmt = Stmt::new("INSERT INTO erasures (subject_digest, request_id, at) VALUES ($1, $2, $3)")
            .bind(&e.subject_digest)
            .bind(e.request_id.as_deref())
            .bind(e.at);
        self.conn.execute(stmt).await?;
        Ok(())
    }
}
