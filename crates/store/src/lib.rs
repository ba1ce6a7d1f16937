//! Persistence for Custodia as a unit of work: [`Store::write`] runs a job against one
//! transaction ([`Tx`]) offering typed repositories (meta, subjects and their keys, records,
//! ledger, audit, tokens, principals, notifications); [`Store::reader`] hands out the same repositories
//! read-only. Every SQL statement is written once (`repo/`), for SQLite (the embedded
//! default) and PostgreSQL alike (`sql.rs` says how); the schema is described once
//! (`schema.rs`). The conformance suite both must pass is `tests/it/conformance.rs`.
//!
//! The store only ever sees ciphertext, wrapped keys, blind-index digests and identifiers;
//! it knows nothing of registries, purposes' meaning or HTTP. Times are Unix milliseconds
//! passed in by the caller.

mod changes;
mod error;
mod group_commit;
mod model;
mod postgres;
mod repo;
mod roles;
mod schema;
mod sql;
mod sqlite;
mod tx;

use std::path::Path;

pub use changes::{Change, Changes};
pub use error::StoreError;
pub use model::{
    Activity, AttemptRow, AuditColumns, AuditColumnsRef, AuditQuery, AuditRow, AuditRowRef, Binding, CheckpointRow,
    DEFAULT_KEY_CLASS, DeliveryAttempt, DeliveryState, ErasedRows, ErasureRow, FieldValue, IndexEntry, LedgerRow,
    NewNotification, NewRecord, NotificationRow, PrincipalRow, RecordPatch, Renewal, RequestRow, StoredField,
    StoredRecord, SubjectKeyRow, SubjectRecords, TileRow, TokenRow, root_version_of,
};
pub use repo::{
    ACCESS_PENDING, AccessCheck, AccessRow, AccessSealer, Attempt, Audit, AuditChunk, BINDING_SEALS_PENDING,
    BindingRows, BindingTimes, BoundValue, BreakGlassRow, DueCursor, Ending, Erasures, FORGOTTEN_TEXT, HeldCount,
    HeldToken, HeldValues, HoldRow, IncidentEntryRow, IncidentRow, Incidents, KeyCursor, KeyLock, LEDGER_SEALED,
    Ledger, Meta, NoticeRow, Notices, Notifications, OperatorRow, Operators, PageOf, Principals, ReadOnlyRow,
    RecordCursor, Records, RequestQuery, Requests, Retention, Sealer, SessionRow, SessionsOf, StoredWeight, Subjects,
    TRAINING_SEALS_PENDING, Tallies, Target, TimelineChange, TokenHolding, Tokens, TrainingRow, UsableBy,
};
pub use roles::ServiceGrants;
pub use schema::{APPEND_ONLY_PRIVILEGES, SCHEMA_VERSION, TableGrant};
pub use sql::Dialect;
pub use tx::{BoxFuture, ReadOnly, ReadWrite, Reader, Tx};

/// What a restored SQLite database carried over from the one it replaced
/// ([`Store::adopt_audit_log`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Audit entries appended.
    pub audit_entries: u64,
    /// Subjects whose ledger (consents, objections, opt-outs, restrictions) moved since the
    /// backup: their entries are appended, and their bindings must be timed again.
    pub ledger_subjects: Vec<String>,
    /// Data keys the replaced database holds for a subject and class in place of an older
    /// one the backup holds: made after an erasure, when the subject came back. Stored by
    /// `Subjects::restore_keys` once the erasures are made again (which
    /// destroy the older ones): what the subject gave since (consent evidence sealed under
    /// the new key) stays readable.
    pub later_keys: Vec<SubjectKeyRow>,
}

/// A database: SQLite or PostgreSQL behind one interface.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

impl Store {
    /// Opens the store named by `url`: `sqlite://PATH` or a path for SQLite,
    /// `postgres://...` or `postgresql://...` for PostgreSQL. Runs pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_at_version(url, SCHEMA_VERSION).await
    }

    /// Opens the store named by `url` read-only: no migration, no write succeeds (the
    /// database refuses them). For verifying the audit log without changing it.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::Postgres::connect_read_only(url).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Backend::Sqlite(sqlite::Sqlite::open_read_only(Path::new(path)).await?)
        };
        Ok(Self { backend })
    }

    /// Opens the store, migrating no further than schema version `version`: for tests that
    /// build a database as an older release left it. A server never runs on such a store.
    #[doc(hidden)]
    pub async fn open_at_version(url: &str, version: i64) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::Postgres::connect(url, version).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Backend::Sqlite(sqlite::Sqlite::open(Path::new(path), version).await?)
        };
        Ok(Self { backend })
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.dialect().name()
    }

    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether other processes may write to this store (several server nodes on one
    /// PostgreSQL). When false, this process sees every change, so it may cache derived state
    /// and invalidate it on its own writes.
    #[must_use]
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The change notifications of every node sharing this store (PostgreSQL), subscribed
    /// before this returns; `None` on SQLite, whose one process sees every change itself.
    pub async fn changes(&self) -> Result<Option<Changes>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(p) => Ok(Some(Changes::subscribe(p.pool().clone()).await?)),
        }
    }

    /// The one write entry point: runs `job` in a transaction, committed when the job returns
    /// `Ok` and rolled back otherwise; returns once the outcome is durable. On SQLite the
    /// job runs in a savepoint of the writer's next group-commit batch.
    ///
    /// ```ignore
    /// store.write(move |mut tx| Box::pin(async move {
    ///     let seq = tx.ledger().append(&entry).await?;
    ///     tx.audit().append(&[audit]).await?;
    ///     Ok(seq)
    /// })).await?
    /// ```
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.write(job).await,
            Backend::Postgres(p) => p.write(job).await,
        }
    }

    /// Creates a record with its audit entry (see [`Store::insert_records`]).
    pub async fn insert_record(&self, record: NewRecord, audit: Option<AuditRow>) -> Result<(), StoreError> {
        self.insert_records(vec![(record, audit)], Vec::new())
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Corrupt("no result for an inserted record".into())))
    }

    /// Creates records, each with its audit entry, and appends `refusals` (the audit entries
    /// of the same call's refused items), in one transaction: the same as a [`Store::write`]
    /// job calling [`Records::insert_many`] and [`Audit::append`], which the store's group
    /// commit merges with the other creations and audit appends waiting at that moment into
    /// one transaction of a few multi-row statements (on both backends). Each
    /// record's result says whether it was written (a record sealed under a key that is no
    /// longer its subject's is not, and neither is its audit entry); an `Err` for the whole
    /// call means nothing was.
    pub async fn insert_records(
        &self,
        records: Vec<(NewRecord, Option<AuditRow>)>,
        refusals: Vec<AuditRow>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.insert_records(records, refusals).await,
            Backend::Postgres(p) => p.writer.insert_records(records, refusals).await,
        }
    }

    /// Installs the key audit entries are linked with as they are appended
    /// (`custodia_audit::chain`): the vault's, once it has read its keys. No entry can be
    /// appended before.
    pub fn link_audit_with(&self, key: std::sync::Arc<custodia_audit::chain::ChainKey>) {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.integrity.linker.set(key),
            Backend::Postgres(p) => p.writer.integrity.linker.set(key),
        }
    }

    /// Installs the vault's sealer of purpose bindings: every binding written from then on
    /// is sealed, and a binding read is taken as one (a purpose may use the value it binds)
    /// only if it carries the seal. None can be written before, and none read counts.
    pub fn seal_bindings_with(&self, seal: std::sync::Arc<dyn Sealer>) {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.integrity.bindings.set(seal),
            Backend::Postgres(p) => p.writer.integrity.bindings.set(seal),
        }
    }

    /// Declares this store the audit log's one writer (its SQLite file locked for this
    /// process: the data directory's lock): from now on each append checks that the log's
    /// newest entry is the one it appended last. Nothing on PostgreSQL, which several nodes
    /// share.
    pub fn sole_audit_writer(&self) {
        if let Backend::Sqlite(s) = &self.backend {
            s.writer.integrity.linker.check_tail();
        }
    }

    /// Whether an append found the audit log's newest entry is not the one this process
    /// appended last (entries deleted from the database under it): from then on every append
    /// is refused. Only a store that is the log's one writer (SQLite) checks.
    pub fn audit_tail_broken(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.integrity.linker.tail_broken(),
            Backend::Postgres(p) => p.writer.integrity.linker.tail_broken(),
        }
    }

    /// Appends audit entries on their own (reads, refusals); returns once they are durable.
    /// Group-committed with the other appends and creations waiting at that moment (see
    /// [`Store::insert_records`]).
    pub async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.append_audit(rows).await,
            Backend::Postgres(p) => p.writer.append_audit(rows).await,
        }
    }

    /// The service role's privileges on each table of this database (see
    /// [`Store::grant_service_role`]); an error names every table the schema's grant decisions
    /// leave out.
    pub async fn service_grants(&self) -> Result<Vec<TableGrant>, StoreError> {
        let mut reader = self.reader().await?;
        let tables = schema::tables(&mut reader.conn()).await?;
        schema::service_grants(&tables)
    }

    /// PostgreSQL: creates the service role `role` (`LOGIN`, `password`: a SCRAM-SHA-256
    /// verifier or a password), or updates it (its password only when `reset_password`), and
    /// sets its privileges to exactly [`Store::service_grants`]: the DML the server needs, no
    /// DDL, no `TRUNCATE`, no `UPDATE` or `DELETE` on append-only tables. Run as the owner role
    /// (the one that migrated the schema; it needs `CREATEROLE`), in one transaction. Refused
    /// on SQLite, and for a role that is a superuser or acts as the tables' owner.
    pub async fn grant_service_role(
        &self,
        role: &str,
        password: &str,
        reset_password: bool,
    ) -> Result<ServiceGrants, StoreError> {
        let Backend::Postgres(p) = &self.backend else {
            return Err(StoreError::Schema(
                "database roles are for PostgreSQL; a SQLite database is a file of the data directory".into(),
            ));
        };
        let (role, password) = (role.to_owned(), password.to_owned());
        p.write(move |mut tx| {
            Box::pin(async move { roles::grant_service_role(&mut tx.conn, &role, &password, reset_password).await })
        })
        .await
    }

    /// A connection for reads.
    pub async fn reader(&self) -> Result<Reader, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.reader().await,
            Backend::Postgres(p) => p.reader().await,
        }
    }

    /// Asks for SQLite's write-ahead log to be emptied soon (within about a second, by the
    /// checkpointer): after a write that destroyed values (a record deleted, a value replaced),
    /// whose old pages the log holds until written over. PostgreSQL: nothing (its WAL is the
    /// operator's, see [`Store::purge_wal`]).
    pub fn want_wal_purge(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.want_wal_purge(),
            Backend::Postgres(_) => {}
        }
    }

    /// Empties SQLite's write-ahead log into the database file and truncates it, so that
    /// pages deleted before this call (an erased subject's key, a rectified value's old
    /// ciphertext) no longer sit in the log; `secure_delete` has zeroed them in the database
    /// file. Returns whether the log was emptied (readers may hold it for a while; the caller
    /// says so rather than waits forever). PostgreSQL: its WAL and archives are the
    /// operator's (see the README on backups); returns true.
    pub async fn purge_wal(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.purge_wal().await,
            Backend::Postgres(_) => Ok(true),
        }
    }

    /// Writes a consistent copy of the SQLite database to `out` (`VACUUM INTO`: a snapshot,
    /// taken beside running writers; `out` must be absent or an empty file). PostgreSQL has its
    /// own tools (`pg_dump`, base backups and WAL archiving): refused here, naming them.
    pub async fn backup_into(&self, out: &Path) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => {
                let target = out.to_str().ok_or_else(|| {
                    StoreError::Backend(format!("{}: the backup path must be UTF-8", out.display()))
                })?;
                let mut reader = self.reader().await?;
                reader.conn().execute(sql::Stmt::new("VACUUM INTO $1").bind(target)).await?;
                Ok(())
            }
            Backend::Postgres(_) => Err(StoreError::Backend(
                "back up PostgreSQL with its own tools (pg_dump, or base backups with WAL archiving); after a restore, run `custodia erasures reapply`".into(),
            )),
        }
    }

    /// Restoring a SQLite backup keeps the audit log whole and forgets no erasure and no
    /// decision of a subject: appends to this (restored) database's log what the database file
    /// `current` (the one it replaces) holds beyond it, provided this log is a prefix of that
    /// one, and the tombstones, legal holds, ledger entries (consents withdrawn, objections,
    /// opt-outs, restrictions since the backup) and subject keys (which seal the ledger's
    /// evidence) it lacks.
    pub async fn adopt_audit_log(&self, current: &Path) -> Result<Adopted, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.adopt_audit_log(current).await,
            Backend::Postgres(_) => Err(StoreError::Backend("only a SQLite database adopts an audit log".into())),
        }
    }

    /// Runs `work` unless another server node is running the job named `job` right now:
    /// leadership per job on PostgreSQL (a transaction-scoped advisory lock); on SQLite this
    /// process is the only one, so it always runs. `None` when another node leads.
    pub async fn exclusively<T>(
        &self,
        job: &str,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(work.await)),
            Backend::Postgres(p) => p.exclusively(job_lock(job), work).await,
        }
    }
}

/// The advisory lock key of a job: FNV-1a of its name with the top byte `0x00` and the next
/// `0xb0`, apart from the store's own locks (migration, audit sequencer), whose top bytes are
/// ASCII letters.
fn job_lock(job: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let key = (h & 0x0000_ffff_ffff_ffff) | 0x00b0_0000_0000_0000;
    i64::try_from(key).unwrap_or(i64::MAX)
}
