//! PostgreSQL schema migrations, serialized across server nodes by an advisory lock.

use sqlx::{PgPool, Row};

use crate::StoreError;

/// Advisory lock key held while migrating ("custodia" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x6375_7374_6f64_6961;

const MIGRATIONS: &[&str] = &[
    // 1: the vault core.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
     CREATE TABLE subject_keys (
        subject_id TEXT PRIMARY KEY,
        key_version BIGINT NOT NULL,
        wrapped_key BYTEA NOT NULL,
        created_at BIGINT NOT NULL);
     CREATE TABLE records (
        record_id TEXT PRIMARY KEY,
        subject_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL);
     CREATE INDEX records_by_subject ON records (subject_id, collection, created_at);
     CREATE TABLE record_fields (
        record_id TEXT NOT NULL REFERENCES records (record_id),
        field TEXT NOT NULL,
        ciphertext BYTEA NOT NULL,
        purpose TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (record_id, field));
     CREATE TABLE blind_index (
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        digest BYTEA NOT NULL,
        record_id TEXT NOT NULL REFERENCES records (record_id),
        subject_id TEXT NOT NULL,
        PRIMARY KEY (collection, field, digest, record_id));
     CREATE INDEX blind_index_by_record ON blind_index (record_id, field);
     CREATE TABLE principals (
        principal_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,
        key_id TEXT NOT NULL UNIQUE,
        key_hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT);",
    // 2: the subject ledger (consents, objections, opt-outs, restrictions), append-only.
    "CREATE TABLE subject_ledger (
        seq BIGSERIAL PRIMARY KEY,
        subject_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT,
        value BIGINT NOT NULL,
        notice_version TEXT,
        method TEXT NOT NULL,
        evidence TEXT,
        principal_id TEXT NOT NULL,
        at BIGINT NOT NULL);
     CREATE INDEX subject_ledger_by_subject ON subject_ledger (subject_id, seq);
     CREATE FUNCTION subject_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the subject ledger is append-only'; END; $$;
     CREATE TRIGGER subject_ledger_no_change BEFORE UPDATE OR DELETE ON subject_ledger
        FOR EACH ROW EXECUTE FUNCTION subject_ledger_append_only();",
    // 3: the audit log, append-only.
    "CREATE TABLE audit_log (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, entry TEXT NOT NULL);
     CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$;
     CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();",
    // 4: vaulted tokens, sealed under their subject's data key.
    "CREATE TABLE tokens (
        token TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        kind TEXT NOT NULL,
        ciphertext BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (token, subject_id));
     CREATE INDEX tokens_by_subject ON tokens (subject_id);",
    // 5: leaf hashes of audit entries, and signed checkpoints of the audit log's Merkle tree.
    "ALTER TABLE audit_log ADD COLUMN leaf BYTEA;
     CREATE TABLE audit_checkpoints (
        tree_size BIGINT PRIMARY KEY,
        root BYTEA NOT NULL,
        at BIGINT NOT NULL,
        note TEXT NOT NULL);
     CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();",
];

pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
        .fetch_one(&mut *tx)
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
        sqlx::raw_sql(step).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
