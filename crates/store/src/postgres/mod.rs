//! PostgreSQL, for scale: several stateless server nodes share one database (or a
//! PostgreSQL-compatible distributed engine). Same schema and semantics as SQLite; the
//! conformance suite holds both to it.

mod schema;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use crate::model::join_roles;
use crate::rows::{Rows, SUBJECT_RECORDS};
use crate::{
    AuditRow, CheckpointRow, LedgerRow, NewRecord, PrincipalRow, RecordPatch, Store, StoreError, SubjectKeyRow,
    SubjectRecords, TokenRow,
};

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and migrates the schema (serialized across nodes by an advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        schema::migrate(&pool).await?;
        Ok(Self { pool })
    }
}

/// Advisory lock that serializes audit appends across server nodes.
const AUDIT_SEQUENCER_LOCK: i64 = 0x6175_6469_746c_6f67;

/// Appends audit entries inside `tx`. The transaction first takes the audit sequencer lock and
/// holds it until it ends, so entries are numbered in commit order even with several server
/// nodes: a checkpoint can then never be overtaken by an entry with a smaller number. (A
/// rolled-back transaction leaves a gap in the numbers; verification of a shared store does not
/// require them to be contiguous.)
async fn insert_audit(tx: &mut Transaction<'_, Postgres>, rows: &[&AuditRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_SEQUENCER_LOCK)
        .execute(&mut **tx)
        .await?;
    for r in rows {
        sqlx::query("INSERT INTO audit_log (at, entry, leaf) VALUES ($1, $2, $3)")
            .bind(r.at)
            .bind(&r.entry)
            .bind(&r.leaf)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Locks the record row for the rest of the transaction; false when it does not exist.
async fn lock_record(
    tx: &mut Transaction<'_, Postgres>,
    subject_id: &str,
    collection: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    let found =
        sqlx::query("SELECT 1 FROM records WHERE record_id = $1 AND subject_id = $2 AND collection = $3 FOR UPDATE")
            .bind(record_id)
            .bind(subject_id)
            .bind(collection)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn shared(&self) -> bool {
        true
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn subject_key(&self, subject_id: &str) -> Result<Option<SubjectKeyRow>, StoreError> {
        let row = sqlx::query("SELECT key_version, wrapped_key, created_at FROM subject_keys WHERE subject_id = $1")
            .bind(subject_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Rows::key_row(subject_id, &r)).transpose()
    }

    async fn ensure_subject_key(&self, row: &SubjectKeyRow) -> Result<SubjectKeyRow, StoreError> {
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(&row.subject_id)
        .bind(i64::from(row.key_version))
        .bind(&row.wrapped_key)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        let stored = sqlx::query("SELECT key_version, wrapped_key, created_at FROM subject_keys WHERE subject_id = $1")
            .bind(&row.subject_id)
            .fetch_one(&self.pool)
            .await?;
        Rows::key_row(&row.subject_id, &stored)
    }

    async fn insert_record(&self, record: &NewRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &record.subject_key {
            sqlx::query(
                "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (subject_id) DO NOTHING",
            )
            .bind(&key.subject_id)
            .bind(i64::from(key.key_version))
            .bind(&key.wrapped_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
            let stored: Vec<u8> = sqlx::query("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1")
                .bind(&key.subject_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("wrapped_key")?;
            if stored != key.wrapped_key {
                return Err(StoreError::SubjectKeyConflict);
            }
        }
        sqlx::query("INSERT INTO records (record_id, subject_id, collection, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(&record.record_id)
            .bind(&record.subject_id)
            .bind(&record.collection)
            .bind(record.now)
            .execute(&mut *tx)
            .await?;
        for f in &record.fields {
            sqlx::query("INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&record.record_id)
                .bind(&f.field)
                .bind(&f.ciphertext)
                .bind(&f.purpose)
                .bind(record.now)
                .execute(&mut *tx)
                .await?;
        }
        for i in &record.index {
            sqlx::query("INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES ($1, $2, $3, $4, $5)")
                .bind(&record.collection)
                .bind(&i.field)
                .bind(&i.digest)
                .bind(&record.record_id)
                .bind(&record.subject_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(audit) = &record.audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn records(&self, subject_id: &str, collection: &str) -> Result<Option<SubjectRecords>, StoreError> {
        let sql = SUBJECT_RECORDS
            .replace("COLLECTION", "$1")
            .replace("FILTER", "")
            .replace("SUBJECT", "$2");
        let rows = sqlx::query(&sql)
            .bind(collection)
            .bind(subject_id)
            .fetch_all(&self.pool)
            .await?;
        Rows::subject_records(subject_id, &rows)
    }

    async fn record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
    ) -> Result<Option<SubjectRecords>, StoreError> {
        let sql = SUBJECT_RECORDS
            .replace("COLLECTION", "$1")
            .replace("FILTER", "AND r.record_id = $2")
            .replace("SUBJECT", "$3");
        let rows = sqlx::query(&sql)
            .bind(collection)
            .bind(record_id)
            .bind(subject_id)
            .fetch_all(&self.pool)
            .await?;
        Rows::subject_records(subject_id, &rows)
    }

    async fn update_record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
        patch: &RecordPatch,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !lock_record(&mut tx, subject_id, collection, record_id).await? {
            return Ok(false);
        }
        for field in patch.touched_fields() {
            sqlx::query("DELETE FROM blind_index WHERE record_id = $1 AND field = $2")
                .bind(record_id)
                .bind(field)
                .execute(&mut *tx)
                .await?;
        }
        for field in &patch.remove {
            sqlx::query("DELETE FROM record_fields WHERE record_id = $1 AND field = $2")
                .bind(record_id)
                .bind(field)
                .execute(&mut *tx)
                .await?;
        }
        for f in &patch.set {
            sqlx::query(
                "INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (record_id, field) DO UPDATE SET ciphertext = excluded.ciphertext, \
                 purpose = excluded.purpose, updated_at = excluded.updated_at",
            )
            .bind(record_id)
            .bind(&f.field)
            .bind(&f.ciphertext)
            .bind(&f.purpose)
            .bind(patch.now)
            .execute(&mut *tx)
            .await?;
        }
        for i in &patch.index {
            sqlx::query("INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES ($1, $2, $3, $4, $5)")
                .bind(collection)
                .bind(&i.field)
                .bind(&i.digest)
                .bind(record_id)
                .bind(subject_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE records SET updated_at = $1 WHERE record_id = $2")
            .bind(patch.now)
            .bind(record_id)
            .execute(&mut *tx)
            .await?;
        if let Some(audit) = &patch.audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !lock_record(&mut tx, subject_id, collection, record_id).await? {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM blind_index WHERE record_id = $1",
            "DELETE FROM record_fields WHERE record_id = $1",
            "DELETE FROM records WHERE record_id = $1",
        ] {
            sqlx::query(sql).bind(record_id).execute(&mut *tx).await?;
        }
        if let Some(audit) = audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn find_by_index(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, record_id FROM blind_index WHERE collection = $1 AND field = $2 AND digest = $3 \
             ORDER BY subject_id, record_id",
        )
        .bind(collection)
        .bind(field)
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("subject_id")?, r.try_get("record_id")?)))
            .collect()
    }

    async fn append_ledger(&self, e: &LedgerRow, audit: Option<&AuditRow>) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO subject_ledger (subject_id, kind, purpose, value, notice_version, method, evidence, \
             principal_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
        )
        .bind(&e.subject_id)
        .bind(&e.kind)
        .bind(&e.purpose)
        .bind(i64::from(e.value))
        .bind(&e.notice_version)
        .bind(&e.method)
        .bind(&e.evidence)
        .bind(&e.principal_id)
        .bind(e.at)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(row.try_get("seq")?)
    }

    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, entry, leaf FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Rows::audit_row).collect()
    }

    async fn insert_tokens(&self, rows: &[TokenRow], audit: Option<&AuditRow>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO tokens (token, subject_id, collection, field, kind, ciphertext, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token, subject_id) DO NOTHING",
            )
            .bind(&r.token)
            .bind(&r.subject_id)
            .bind(&r.collection)
            .bind(&r.field)
            .bind(&r.kind)
            .bind(&r.ciphertext)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(audit) = audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tokens(&self, tokens: &[String]) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE token = ANY($1)")
            .bind(tokens)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Rows::token_row).collect()
    }

    async fn insert_checkpoint(&self, row: &CheckpointRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_checkpoints (tree_size, root, at, note) VALUES ($1, $2, $3, $4)")
            .bind(row.tree_size)
            .bind(&row.root)
            .bind(row.at)
            .bind(&row.note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY tree_size")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Rows::checkpoint_row).collect()
    }

    async fn ledger(&self, subject_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM subject_ledger WHERE subject_id = $1 ORDER BY seq")
            .bind(subject_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Rows::ledger_row).collect()
    }

    async fn insert_principal(&self, row: &PrincipalRow, audit: Option<&AuditRow>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO principals (principal_id, name, roles, key_id, key_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.principal_id)
        .bind(&row.name)
        .bind(join_roles(&row.roles))
        .bind(&row.key_id)
        .bind(&row.key_hash)
        .bind(row.created_at)
        .bind(row.revoked_at)
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn principal_by_key_id(&self, key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM principals WHERE key_id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Rows::principal_row).transpose()
    }

    async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM principals ORDER BY created_at, principal_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Rows::principal_row).collect()
    }

    async fn revoke_principal(
        &self,
        principal_id: &str,
        now: i64,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE principals SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(principal_id)
            .execute(&mut *tx)
            .await?;
        let revoked = done.rows_affected() == 1;
        if let (true, Some(audit)) = (revoked, audit) {
            insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }
}
