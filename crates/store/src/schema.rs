//! The schema, described once for both backends, and its migrations: numbered steps applied
//! in order, each recorded in `schema_version`. Step texts use three type words that
//! [`Dialect::ddl`] spells per backend (`BLOB`/`BYTEA`, `INTEGER`/`BIGINT`, and the
//! auto-numbered key); what cannot be said the same way in both (the append-only triggers,
//! rewriting a table's primary key) is a [`Part::Dialect`] part with one text per backend.
//!
//! A database whose schema is newer than this binary knows is refused, never touched.

use crate::StoreError;
use crate::sql::{Conn, Dialect, Stmt};

/// A part of a migration step.
enum Part {
    /// The same DDL for both backends, with `{blob}`, `{int}` and `{serial}` type words.
    Common(&'static str),
    /// Rows of an append-only table cannot be changed or deleted (a database error names the
    /// table); on PostgreSQL neither can the table be truncated.
    AppendOnly(&'static str),
    /// Text that differs: (SQLite, PostgreSQL).
    Dialect(&'static str, &'static str),
}

/// The migration steps, oldest first; step N (1-based) brings the schema to version N.
const STEPS: &[&[Part]] = &[
    // 1: the vault core.
    &[Part::Common(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value {blob} NOT NULL);
         CREATE TABLE subject_keys (
            subject_id TEXT PRIMARY KEY,
            key_version {int} NOT NULL,
            wrapped_key {blob} NOT NULL,
            created_at {int} NOT NULL);
         CREATE TABLE records (
            record_id TEXT PRIMARY KEY,
            subject_id TEXT NOT NULL,
            collection TEXT NOT NULL,
            created_at {int} NOT NULL,
            updated_at {int} NOT NULL);
         CREATE INDEX records_by_subject ON records (subject_id, collection, created_at);
         CREATE TABLE record_fields (
            record_id TEXT NOT NULL REFERENCES records (record_id),
            field TEXT NOT NULL,
            ciphertext {blob} NOT NULL,
            purpose TEXT NOT NULL,
            updated_at {int} NOT NULL,
            PRIMARY KEY (record_id, field)) {without_rowid};
         CREATE TABLE blind_index (
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            digest {blob} NOT NULL,
            record_id TEXT NOT NULL REFERENCES records (record_id),
            subject_id TEXT NOT NULL,
            PRIMARY KEY (collection, field, digest, record_id)) {without_rowid};
         CREATE INDEX blind_index_by_record ON blind_index (record_id, field);
         CREATE TABLE principals (
            principal_id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            roles TEXT NOT NULL,
            key_id TEXT NOT NULL UNIQUE,
            key_hash {blob} NOT NULL,
            created_at {int} NOT NULL,
            revoked_at {int});",
    )],
    // 2: the subject ledger (consents, objections, opt-outs, restrictions), append-only.
    &[
        Part::Common(
            "CREATE TABLE subject_ledger (
                seq {serial},
                subject_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                purpose TEXT,
                value {int} NOT NULL,
                notice_version TEXT,
                method TEXT NOT NULL,
                evidence TEXT,
                principal_id TEXT NOT NULL,
                at {int} NOT NULL);
             CREATE INDEX subject_ledger_by_subject ON subject_ledger (subject_id, seq);",
        ),
        Part::AppendOnly("subject_ledger"),
    ],
    // 3: the audit log, append-only.
    &[
        Part::Common("CREATE TABLE audit_log (seq {serial}, at {int} NOT NULL, entry TEXT NOT NULL);"),
        Part::AppendOnly("audit_log"),
    ],
    // 4: vaulted tokens, sealed under their subject's data key.
    &[Part::Common(
        "CREATE TABLE tokens (
            token TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            kind TEXT NOT NULL,
            ciphertext {blob} NOT NULL,
            created_at {int} NOT NULL,
            PRIMARY KEY (token, subject_id));
         CREATE INDEX tokens_by_subject ON tokens (subject_id);",
    )],
    // 5: leaf hashes of audit entries, and signed checkpoints of the audit log's Merkle tree.
    &[
        Part::Common(
            "ALTER TABLE audit_log ADD COLUMN leaf {blob};
             CREATE TABLE audit_checkpoints (
                tree_size {int} PRIMARY KEY,
                root {blob} NOT NULL,
                at {int} NOT NULL,
                note TEXT NOT NULL);",
        ),
        Part::AppendOnly("audit_checkpoints"),
    ],
    // 6: audit entries get indexed columns derived from their canonical text (the text and
    // its leaf hash stay the source of truth; `audit verify` checks the columns against it).
    // Existing entries are filled from their text, with the append-only guard lifted for
    // that one statement inside this step's transaction.
    &[
        Part::Common(
            "ALTER TABLE audit_log ADD COLUMN principal TEXT;
             ALTER TABLE audit_log ADD COLUMN action TEXT;
             ALTER TABLE audit_log ADD COLUMN decision TEXT;
             ALTER TABLE audit_log ADD COLUMN purpose TEXT;
             ALTER TABLE audit_log ADD COLUMN subject TEXT;",
        ),
        Part::Dialect(
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET principal = json_extract(entry, '$.principal'),
                action = json_extract(entry, '$.action'), decision = json_extract(entry, '$.decision'),
                purpose = json_extract(entry, '$.purpose'), subject = json_extract(entry, '$.subject')
                WHERE json_valid(entry);
             CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
             UPDATE audit_log SET principal = entry::jsonb->>'principal', action = entry::jsonb->>'action',
                decision = entry::jsonb->>'decision', purpose = entry::jsonb->>'purpose',
                subject = entry::jsonb->>'subject';
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;
             CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
             CREATE TRIGGER subject_ledger_no_truncate BEFORE TRUNCATE ON subject_ledger
                FOR EACH STATEMENT EXECUTE FUNCTION subject_ledger_append_only();
             CREATE OR REPLACE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'audit_checkpoints is append-only'; END; $$;
             CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
                FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();",
        ),
        // By principal: an ordinary index (few principals, times increasing: appends stay at
        // the right edge). By subject: subjects are random, so an ordinary index would dirty a
        // page per entry in every commit; `audit_subject_index` is filled in batches by a job
        // instead (`Audit::index_subjects`), and queries read the entries after its
        // `audit_index_state.upto` from the log itself.
        Part::Common(
            "CREATE INDEX audit_by_principal ON audit_log (principal, at);
             CREATE TABLE audit_subject_index (
                subject TEXT NOT NULL,
                seq {int} NOT NULL,
                PRIMARY KEY (subject, seq)) {without_rowid};
             CREATE TABLE audit_index_state (id {int} PRIMARY KEY, upto {int} NOT NULL);
             INSERT INTO audit_subject_index (subject, seq) SELECT subject, seq FROM audit_log WHERE subject IS NOT NULL;
             INSERT INTO audit_index_state (id, upto) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;",
        ),
    ],
    // 7: data keys by class. A subject has one key per class: `default` for its data, and one
    // per retention class that outlives an erasure (see ARCHITECTURE.md, "Erasure and the
    // data that survives it"); each sealed field names the class of the key it is sealed under.
    &[
        Part::Dialect(
            "CREATE TABLE subject_keys_v7 (
                subject_id TEXT NOT NULL,
                key_class TEXT NOT NULL DEFAULT 'default',
                key_version INTEGER NOT NULL,
                wrapped_key BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (subject_id, key_class)) WITHOUT ROWID;
             INSERT INTO subject_keys_v7 (subject_id, key_class, key_version, wrapped_key, created_at)
                SELECT subject_id, 'default', key_version, wrapped_key, created_at FROM subject_keys;
             DROP TABLE subject_keys;
             ALTER TABLE subject_keys_v7 RENAME TO subject_keys;",
            "ALTER TABLE subject_keys ADD COLUMN key_class TEXT NOT NULL DEFAULT 'default';
             ALTER TABLE subject_keys DROP CONSTRAINT subject_keys_pkey;
             ALTER TABLE subject_keys ADD PRIMARY KEY (subject_id, key_class);",
        ),
        Part::Common("ALTER TABLE record_fields ADD COLUMN key_class TEXT NOT NULL DEFAULT 'default';"),
    ],
    // 8: API keys may expire (Unix milliseconds; none when null).
    &[Part::Common("ALTER TABLE principals ADD COLUMN expires_at {int};")],
];

impl Dialect {
    /// DDL text with the type words spelt for this backend.
    fn ddl(self, text: &str) -> String {
        let (blob, int, serial, without_rowid) = match self {
            Self::Sqlite => ("BLOB", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT", "WITHOUT ROWID"),
            Self::Postgres => ("BYTEA", "BIGINT", "BIGSERIAL PRIMARY KEY", ""),
        };
        text.replace("{blob}", blob)
            .replace("{int}", int)
            .replace("{serial}", serial)
            .replace("{without_rowid}", without_rowid)
    }

    /// The triggers that make `table` append-only.
    fn append_only(self, table: &str) -> String {
        match self {
            Self::Sqlite => format!(
                "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
                 CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
            ),
            Self::Postgres => format!(
                "CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$;
                 CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();"
            ),
        }
    }

    fn step(self, parts: &[Part]) -> String {
        parts
            .iter()
            .map(|part| match part {
                Part::Common(text) => self.ddl(text),
                Part::AppendOnly(table) => self.append_only(table),
                Part::Dialect(sqlite, postgres) => match self {
                    Self::Sqlite => (*sqlite).to_owned(),
                    Self::Postgres => (*postgres).to_owned(),
                },
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Advisory lock key held while migrating PostgreSQL ("custodia" in ASCII, truncated), so
/// several server nodes can start at once.
const MIGRATION_LOCK: i64 = 0x6375_7374_6f64_6961;

/// Brings the schema to [`SCHEMA_VERSION`] inside the transaction `conn` is in (the caller
/// begins and commits it), up to `target` steps (tests stop early to build old databases).
pub(crate) async fn migrate(conn: &mut Conn<'_>, target: i64) -> Result<(), StoreError> {
    let dialect = conn.dialect();
    if dialect == Dialect::Postgres {
        conn.execute(Stmt::new("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK))
            .await?;
    }
    conn.run(&dialect.ddl("CREATE TABLE IF NOT EXISTS schema_version (version {int} NOT NULL)"))
        .await?;
    let current = current_version(conn).await?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "database schema version {current} is newer than this binary knows ({SCHEMA_VERSION}); upgrade custodia"
        )));
    }
    for (i, parts) in STEPS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current || version > target {
            continue;
        }
        conn.run(&dialect.step(parts)).await?;
        conn.execute(Stmt::new("INSERT INTO schema_version (version) VALUES ($1)").bind(version))
            .await?;
    }
    Ok(())
}

/// The schema version a database is at (0 when new).
pub(crate) async fn current_version(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let row = conn
        .fetch_optional(Stmt::new("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version"))
        .await?;
    row.map_or(Ok(0), |r| r.int("v"))
}
