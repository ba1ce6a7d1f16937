//! SQLite schema migrations: numbered steps, applied in order, each in its own transaction.

use sqlx::{Row, SqliteConnection};

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: the vault core.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE subject_keys (
        subject_id TEXT PRIMARY KEY,
        key_version INTEGER NOT NULL,
        wrapped_key BLOB NOT NULL,
        created_at INTEGER NOT NULL);
     CREATE TABLE records (
        record_id TEXT PRIMARY KEY,
        subject_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL);
     CREATE INDEX records_by_subject ON records (subject_id, collection, created_at);
     CREATE TABLE record_fields (
        record_id TEXT NOT NULL REFERENCES records (record_id),
        field TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        purpose TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (record_id, field)) WITHOUT ROWID;
     CREATE TABLE blind_index (
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        digest BLOB NOT NULL,
        record_id TEXT NOT NULL REFERENCES records (record_id),
        subject_id TEXT NOT NULL,
        PRIMARY KEY (collection, field, digest, record_id)) WITHOUT ROWID;
     CREATE INDEX blind_index_by_record ON blind_index (record_id, field);
     CREATE TABLE principals (
        principal_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,
        key_id TEXT NOT NULL UNIQUE,
        key_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER);",
    // 2: the subject ledger (consents, objections, opt-outs, restrictions), append-only.
    "CREATE TABLE subject_ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT,
        value INTEGER NOT NULL,
        notice_version TEXT,
        method TEXT NOT NULL,
        evidence TEXT,
        principal_id TEXT NOT NULL,
        at INTEGER NOT NULL);
     CREATE INDEX subject_ledger_by_subject ON subject_ledger (subject_id, seq);
     CREATE TRIGGER subject_ledger_no_update BEFORE UPDATE ON subject_ledger
        BEGIN SELECT RAISE(ABORT, 'the subject ledger is append-only'); END;
     CREATE TRIGGER subject_ledger_no_delete BEFORE DELETE ON subject_ledger
        BEGIN SELECT RAISE(ABORT, 'the subject ledger is append-only'); END;",
    // 3: the audit log, append-only.
    "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, entry TEXT NOT NULL);
     CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    // 4: vaulted tokens, sealed under their subject's data key.
    "CREATE TABLE tokens (
        token TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        kind TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (token, subject_id));
     CREATE INDEX tokens_by_subject ON tokens (subject_id);",
    // 5: leaf hashes of audit entries, and signed checkpoints of the audit log's Merkle tree.
    "ALTER TABLE audit_log ADD COLUMN leaf BLOB;
     CREATE TABLE audit_checkpoints (
        tree_size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        at INTEGER NOT NULL,
        note TEXT NOT NULL);
     CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
     CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;",
];

pub(super) async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get("v")?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Schema(format!(
            "database schema version {current} is newer than this binary knows ({known}); upgrade custodia"
        )));
    }
    for (i, step) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(step).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
            .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
