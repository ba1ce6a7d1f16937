//! The embedded default: one SQLite file in the data directory, WAL mode, `synchronous=FULL`
//! (an acknowledged write survives power loss), `secure_delete` on (deleted ciphertext is
//! overwritten, not left in free pages). One writer task owns the write connection and
//! commits concurrent writes together ([`writer`]); a pool of readers runs beside it under WAL.

pub(crate) mod batch_insert;
mod schema;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};

use crate::model::join_roles;
use crate::rows::{Rows, SUBJECT_RECORDS};
use crate::{
    AuditRow, CheckpointRow, LedgerRow, NewRecord, PrincipalRow, RecordPatch, Store, StoreError, SubjectKeyRow,
    SubjectRecords, TokenRow,
};

/// The SQLite store.
pub struct SqliteStore {
    writer: writer::Writer,
    reader: SqlitePool,
    checkpointer: tokio::task::JoinHandle<()>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Copies the WAL into the database file in the background with PASSIVE checkpoints, which
/// run beside the writer and readers instead of stalling a commit the way SQLite's automatic
/// checkpoint (run by whichever connection commits past the threshold) does.
async fn checkpointer(mut conn: SqliteConnection) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("secure_delete", "ON")
            // Pages are read through a memory map and kept in a larger cache: under load the
            // read and write syscalls of the default settings cost more than SQLite itself.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "MEMORY")
            // No connection checkpoints as part of a commit; the checkpointer task does it
            // beside the writer (see `checkpointer`).
            .pragma("wal_autocheckpoint", "0");
        let mut conn = options.connect().await?;
        schema::migrate(&mut conn).await?;
        let writer = writer::Writer::start(conn);
        let checkpointer = tokio::spawn(checkpointer(options.connect().await?));
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().clamp(2, 8) * 2);
        let reader = SqlitePoolOptions::new()
            .max_connections(u32::try_from(readers).unwrap_or(4))
            .acquire_timeout(Duration::from_secs(60))
            // A local file does not drop connections: skip the ping (a round trip to the
            // connection's thread) that would otherwise precede every query.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer,
            reader,
            checkpointer,
        })
    }
}

async fn record_exists(
    conn: &mut SqliteConnection,
    subject_id: &str,
    collection: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    let found = sqlx::query("SELECT 1 FROM records WHERE record_id = ? AND subject_id = ? AND collection = ?")
        .bind(record_id)
        .bind(subject_id)
        .bind(collection)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

// The write operations below run on the writer's connection inside a batch transaction
// (see `writer`); each is atomic through its savepoint.

async fn insert_record(conn: &mut SqliteConnection, record: NewRecord) -> Result<(), StoreError> {
    if let Some(key) = &record.subject_key {
        let inserted = sqlx::query(
            "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(&key.subject_id)
        .bind(i64::from(key.key_version))
        .bind(&key.wrapped_key)
        .bind(key.created_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 0 {
            let stored: Vec<u8> = sqlx::query("SELECT wrapped_key FROM subject_keys WHERE subject_id = ?")
                .bind(&key.subject_id)
                .fetch_one(&mut *conn)
                .await?
                .try_get("wrapped_key")?;
            if stored != key.wrapped_key {
                return Err(StoreError::SubjectKeyConflict);
            }
        }
    }
    sqlx::query(
        "INSERT INTO records (record_id, subject_id, collection, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&record.record_id)
    .bind(&record.subject_id)
    .bind(&record.collection)
    .bind(record.now)
    .bind(record.now)
    .execute(&mut *conn)
    .await?;
    // One multi-row statement per table: each statement is a round trip to sqlx's
    // connection thread, and that, not SQLite, is the cost of a write.
    if !record.fields.is_empty() {
        let sql = multi_row(
            "INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES ",
            5,
            record.fields.len(),
        );
        let mut q = sqlx::query(&sql);
        for f in &record.fields {
            q = q
                .bind(&record.record_id)
                .bind(&f.field)
                .bind(&f.ciphertext)
                .bind(&f.purpose)
                .bind(record.now);
        }
        q.execute(&mut *conn).await?;
    }
    if !record.index.is_empty() {
        let sql = multi_row(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES ",
            5,
            record.index.len(),
        );
        let mut q = sqlx::query(&sql);
        for i in &record.index {
            q = q
                .bind(&record.collection)
                .bind(&i.field)
                .bind(&i.digest)
                .bind(&record.record_id)
                .bind(&record.subject_id);
        }
        q.execute(&mut *conn).await?;
    }
    if let Some(audit) = &record.audit {
        insert_audit(conn, &[audit]).await?;
    }
    Ok(())
}

/// Appends audit entries on the writer's connection.
async fn insert_audit(conn: &mut SqliteConnection, rows: &[&AuditRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(batch_insert::MAX_PARAMETERS / 3) {
        let sql = multi_row("INSERT INTO audit_log (at, entry, leaf) VALUES ", 3, chunk.len());
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.at).bind(&r.entry).bind(&r.leaf);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `prefix` followed by `rows` tuples of `columns` placeholders.
fn multi_row(prefix: &str, columns: usize, rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    format!("{prefix}{}", vec![tuple.as_str(); rows].join(", "))
}

/// Which record a write targets.
struct Target {
    subject_id: String,
    collection: String,
    record_id: String,
}

async fn update_record(conn: &mut SqliteConnection, t: Target, patch: RecordPatch) -> Result<bool, StoreError> {
    if !record_exists(conn, &t.subject_id, &t.collection, &t.record_id).await? {
        return Ok(false);
    }
    for field in patch.touched_fields() {
        sqlx::query("DELETE FROM blind_index WHERE record_id = ? AND field = ?")
            .bind(&t.record_id)
            .bind(field)
            .execute(&mut *conn)
            .await?;
    }
    for field in &patch.remove {
        sqlx::query("DELETE FROM record_fields WHERE record_id = ? AND field = ?")
            .bind(&t.record_id)
            .bind(field)
            .execute(&mut *conn)
            .await?;
    }
    for f in &patch.set {
        sqlx::query(
            "INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (record_id, field) DO UPDATE SET ciphertext = excluded.ciphertext, \
             purpose = excluded.purpose, updated_at = excluded.updated_at",
        )
        .bind(&t.record_id)
        .bind(&f.field)
        .bind(&f.ciphertext)
        .bind(&f.purpose)
        .bind(patch.now)
        .execute(&mut *conn)
        .await?;
    }
    for i in &patch.index {
        sqlx::query(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&t.collection)
        .bind(&i.field)
        .bind(&i.digest)
        .bind(&t.record_id)
        .bind(&t.subject_id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE records SET updated_at = ? WHERE record_id = ?")
        .bind(patch.now)
        .bind(&t.record_id)
        .execute(&mut *conn)
        .await?;
    if let Some(audit) = &patch.audit {
        insert_audit(conn, &[audit]).await?;
    }
    Ok(true)
}

async fn delete_record(conn: &mut SqliteConnection, t: Target, audit: Option<AuditRow>) -> Result<bool, StoreError> {
    if !record_exists(conn, &t.subject_id, &t.collection, &t.record_id).await? {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM blind_index WHERE record_id = ?",
        "DELETE FROM record_fields WHERE record_id = ?",
        "DELETE FROM records WHERE record_id = ?",
    ] {
        sqlx::query(sql).bind(&t.record_id).execute(&mut *conn).await?;
    }
    if let Some(audit) = &audit {
        insert_audit(conn, &[audit]).await?;
    }
    Ok(true)
}

fn target(subject_id: &str, collection: &str, record_id: &str) -> Target {
    Target {
        subject_id: subject_id.to_owned(),
        collection: collection.to_owned(),
        record_id: record_id.to_owned(),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
                        .bind(&key)
                        .bind(&value)
                        .execute(conn)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn subject_key(&self, subject_id: &str) -> Result<Option<SubjectKeyRow>, StoreError> {
        let row = sqlx::query("SELECT key_version, wrapped_key, created_at FROM subject_keys WHERE subject_id = ?")
            .bind(subject_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Rows::key_row(subject_id, &r)).transpose()
    }

    async fn ensure_subject_key(&self, row: &SubjectKeyRow) -> Result<SubjectKeyRow, StoreError> {
        let row = row.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (subject_id) DO NOTHING",
                    )
                    .bind(&row.subject_id)
                    .bind(i64::from(row.key_version))
                    .bind(&row.wrapped_key)
                    .bind(row.created_at)
                    .execute(&mut *conn)
                    .await?;
                    let stored = sqlx::query("SELECT key_version, wrapped_key, created_at FROM subject_keys WHERE subject_id = ?")
                        .bind(&row.subject_id)
                        .fetch_one(&mut *conn)
                        .await?;
                    Rows::key_row(&row.subject_id, &stored)
                })
            })
            .await
    }

    async fn insert_record(&self, record: &NewRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.writer.insert_record(record).await
    }

    async fn records(&self, subject_id: &str, collection: &str) -> Result<Option<SubjectRecords>, StoreError> {
        let sql = SUBJECT_RECORDS
            .replace("COLLECTION", "?")
            .replace("FILTER", "")
            .replace("SUBJECT", "?");
        let rows = sqlx::query(&sql)
            .bind(collection)
            .bind(subject_id)
            .fetch_all(&self.reader)
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
            .replace("COLLECTION", "?")
            .replace("FILTER", "AND r.record_id = ?")
            .replace("SUBJECT", "?");
        let rows = sqlx::query(&sql)
            .bind(collection)
            .bind(record_id)
            .bind(subject_id)
            .fetch_all(&self.reader)
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
        let (t, patch) = (target(subject_id, collection, record_id), patch.clone());
        self.writer
            .write(move |conn| Box::pin(update_record(conn, t, patch)))
            .await
    }

    async fn delete_record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError> {
        let (t, audit) = (target(subject_id, collection, record_id), audit.cloned());
        self.writer
            .write(move |conn| Box::pin(delete_record(conn, t, audit)))
            .await
    }

    async fn find_by_index(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, record_id FROM blind_index WHERE collection = ? AND field = ? AND digest = ? \
             ORDER BY subject_id, record_id",
        )
        .bind(collection)
        .bind(field)
        .bind(digest)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("subject_id")?, r.try_get("record_id")?)))
            .collect()
    }

    async fn append_ledger(&self, entry: &LedgerRow, audit: Option<&AuditRow>) -> Result<i64, StoreError> {
        let (e, audit) = (entry.clone(), audit.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO subject_ledger (subject_id, kind, purpose, value, notice_version, method, \
                         evidence, principal_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    .execute(&mut *conn)
                    .await?;
                    if let Some(audit) = &audit {
                        insert_audit(conn, &[audit]).await?;
                    }
                    Ok(done.last_insert_rowid())
                })
            })
            .await
    }

    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        self.writer.append_audit(rows.to_vec()).await
    }

    async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, entry, leaf FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(Rows::audit_row).collect()
    }

    async fn insert_tokens(&self, rows: &[TokenRow], audit: Option<&AuditRow>) -> Result<(), StoreError> {
        let (rows, audit) = (rows.to_vec(), audit.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for chunk in rows.chunks(batch_insert::MAX_PARAMETERS / 7) {
                        let sql = multi_row(
                            "INSERT INTO tokens (token, subject_id, collection, field, kind, ciphertext, created_at) VALUES ",
                            7,
                            chunk.len(),
                        ) + " ON CONFLICT (token, subject_id) DO NOTHING";
                        let mut q = sqlx::query(&sql);
                        for r in chunk {
                            q = q
                                .bind(&r.token)
                                .bind(&r.subject_id)
                                .bind(&r.collection)
                                .bind(&r.field)
                                .bind(&r.kind)
                                .bind(&r.ciphertext)
                                .bind(r.created_at);
                        }
                        q.execute(&mut *conn).await?;
                    }
                    if let Some(audit) = &audit {
                        insert_audit(conn, &[audit]).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn tokens(&self, tokens: &[String]) -> Result<Vec<TokenRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in tokens.chunks(batch_insert::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT * FROM tokens WHERE token IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q.bind(t);
            }
            for row in q.fetch_all(&self.reader).await? {
                out.push(Rows::token_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn insert_checkpoint(&self, row: &CheckpointRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO audit_checkpoints (tree_size, root, at, note) VALUES (?, ?, ?, ?)")
                        .bind(row.tree_size)
                        .bind(&row.root)
                        .bind(row.at)
                        .bind(&row.note)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY tree_size")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(Rows::checkpoint_row).collect()
    }

    async fn ledger(&self, subject_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM subject_ledger WHERE subject_id = ? ORDER BY seq")
            .bind(subject_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(Rows::ledger_row).collect()
    }

    async fn insert_principal(&self, row: &PrincipalRow, audit: Option<&AuditRow>) -> Result<(), StoreError> {
        let (row, audit) = (row.clone(), audit.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO principals (principal_id, name, roles, key_id, key_hash, created_at, revoked_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&row.principal_id)
                    .bind(&row.name)
                    .bind(join_roles(&row.roles))
                    .bind(&row.key_id)
                    .bind(&row.key_hash)
                    .bind(row.created_at)
                    .bind(row.revoked_at)
                    .execute(&mut *conn)
                    .await?;
                    if let Some(audit) = &audit {
                        insert_audit(conn, &[audit]).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn principal_by_key_id(&self, key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM principals WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(Rows::principal_row).transpose()
    }

    async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM principals ORDER BY created_at, principal_id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(Rows::principal_row).collect()
    }

    async fn revoke_principal(
        &self,
        principal_id: &str,
        now: i64,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError> {
        let (principal_id, audit) = (principal_id.to_owned(), audit.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE principals SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(&principal_id)
                    .execute(&mut *conn)
                    .await?;
                    let revoked = done.rows_affected() == 1;
                    if let (true, Some(audit)) = (revoked, &audit) {
                        insert_audit(conn, &[audit]).await?;
                    }
                    Ok(revoked)
                })
            })
            .await
    }
}
