//! Persistence for Custodia: the [`Store`] trait, its SQLite (embedded default) and
//! PostgreSQL implementations. The conformance suite both must pass is `tests/it/conformance.rs`.
//!
//! The store only ever sees ciphertext, wrapped keys, blind-index digests and identifiers;
//! it knows nothing of registries, purposes' meaning or HTTP. Times are Unix milliseconds
//! passed in by the caller.

mod error;
mod model;
mod postgres;
mod rows;
mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use model::{
    AuditRow, CheckpointRow, FieldValue, IndexEntry, LedgerRow, NewRecord, PrincipalRow, RecordPatch, StoredField,
    StoredRecord, SubjectKeyRow, SubjectRecords, TokenRow,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What the vault needs from a database. Every method that changes more than one row does
/// so in one transaction: it happens whole or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Whether other processes may write to this store (several server nodes on one
    /// PostgreSQL). When false, this process sees every change, so it may cache derived state
    /// and invalidate it on its own writes.
    fn shared(&self) -> bool;

    /// A value of the key-value metadata table (schema facts, wrapped index key).
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` if it is absent; returns whether this call set it.
    async fn insert_meta(&self, key: &str, value: &[u8]) -> Result<bool, StoreError>;

    /// The wrapped data key of a subject.
    async fn subject_key(&self, subject_id: &str) -> Result<Option<SubjectKeyRow>, StoreError>;

    /// Stores a subject's wrapped data key unless it has one; returns the key now stored
    /// (this one, or the one stored first).
    async fn ensure_subject_key(&self, row: &SubjectKeyRow) -> Result<SubjectKeyRow, StoreError>;

    /// Inserts a record with its sealed fields and blind-index entries (and the subject's
    /// data key, for a first record; see [`NewRecord::subject_key`]).
    async fn insert_record(&self, record: &NewRecord) -> Result<(), StoreError>;
    /// A subject's data key and every record of it in a collection, oldest first; `None`
    /// when the subject has no data at all.
    async fn records(&self, subject_id: &str, collection: &str) -> Result<Option<SubjectRecords>, StoreError>;
    /// A subject's data key and one record of it (`records` is empty when there is no such
    /// record); `None` when the subject has no data at all.
    async fn record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
    ) -> Result<Option<SubjectRecords>, StoreError>;
    /// Applies a patch; returns false when no such record exists.
    async fn update_record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
        patch: &RecordPatch,
    ) -> Result<bool, StoreError>;
    /// Deletes a record, its fields and its index entries; returns false when absent.
    /// With `audit`, the entry is appended in the same transaction (when the record exists).
    async fn delete_record(
        &self,
        subject_id: &str,
        collection: &str,
        record_id: &str,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError>;
    /// `(subject_id, record_id)` of every record whose `field` has blind index `digest`.
    async fn find_by_index(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Appends an entry to the subject ledger; returns its sequence number. The ledger is
    /// append-only: the schema refuses updates and deletes of its rows.
    async fn append_ledger(&self, entry: &LedgerRow, audit: Option<&AuditRow>) -> Result<i64, StoreError>;

    /// Appends audit entries; returns once they are durable.
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError>;
    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError>;
    /// Stores a signed checkpoint (append-only; a second one for the same size conflicts).
    async fn insert_checkpoint(&self, row: &CheckpointRow) -> Result<(), StoreError>;
    /// Every checkpoint, smallest tree first.
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError>;
    /// Every ledger entry of a subject, oldest first.
    async fn ledger(&self, subject_id: &str) -> Result<Vec<LedgerRow>, StoreError>;

    /// Stores tokens (with `audit`, in the same transaction); a token already stored for the
    /// same subject is kept as it is (deterministic tokens repeat).
    async fn insert_tokens(&self, rows: &[TokenRow], audit: Option<&AuditRow>) -> Result<(), StoreError>;
    /// The stored rows of the given tokens (any that exist).
    async fn tokens(&self, tokens: &[String]) -> Result<Vec<TokenRow>, StoreError>;

    /// Adds a principal. Fails with [`StoreError::Conflict`] if the name is taken.
    /// With `audit`, the entry is appended in the same transaction.
    async fn insert_principal(&self, row: &PrincipalRow, audit: Option<&AuditRow>) -> Result<(), StoreError>;
    /// The principal owning API key id `key_id` (revoked ones included).
    async fn principal_by_key_id(&self, key_id: &str) -> Result<Option<PrincipalRow>, StoreError>;
    /// Every principal, oldest first.
    async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError>;
    /// Marks a principal revoked; returns false when absent or already revoked.
    /// With `audit`, the entry is appended in the same transaction (when something was revoked).
    async fn revoke_principal(
        &self,
        principal_id: &str,
        now: i64,
        audit: Option<&AuditRow>,
    ) -> Result<bool, StoreError>;
}

/// Opens the store named by `url`: `sqlite://PATH` or a path for SQLite,
/// `postgres://...` or `postgresql://...` for PostgreSQL. Runs pending migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}
