//! Turning result rows into store values, once for both backends. The SQL differs between
//! SQLite and PostgreSQL (placeholders, types); the columns the queries return do not.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::CheckpointRow;
use crate::model::{group_records, split_roles};
use crate::{
    AuditRow, LedgerRow, PrincipalRow, StoreError, StoredField, StoredRecord, SubjectKeyRow, SubjectRecords, TokenRow,
};

/// A subject's key joined with its records and their fields. COLLECTION and SUBJECT stand
/// for parameters; FILTER for the extra join condition of a single-record read.
pub(crate) const SUBJECT_RECORDS: &str = "SELECT k.key_version, k.wrapped_key, k.created_at AS key_created_at, \
     r.record_id, r.subject_id, r.collection, r.created_at, r.updated_at, \
     f.field, f.ciphertext, f.purpose, f.updated_at AS field_updated_at \
     FROM subject_keys k \
     LEFT JOIN records r ON r.subject_id = k.subject_id AND r.collection = COLLECTION FILTER \
     LEFT JOIN record_fields f ON f.record_id = r.record_id \
     WHERE k.subject_id = SUBJECT ORDER BY r.created_at, r.record_id, f.field";

/// The row decoding both backends share, for any row type that can decode the column types
/// the schema uses.
pub(crate) struct Rows<R>(std::marker::PhantomData<R>);

impl<R> Rows<R>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn record_row(row: &R) -> Result<(Option<StoredRecord>, Option<StoredField>), StoreError> {
        let record_id: Option<String> = row.try_get("record_id")?;
        let Some(record_id) = record_id else {
            return Ok((None, None));
        };
        let record = StoredRecord {
            record_id,
            subject_id: row.try_get("subject_id")?,
            collection: row.try_get("collection")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            fields: Vec::new(),
        };
        let field: Option<String> = row.try_get("field")?;
        let field = match field {
            Some(field) => Some(StoredField {
                field,
                ciphertext: row.try_get("ciphertext")?,
                purpose: row.try_get("purpose")?,
                updated_at: row.try_get("field_updated_at")?,
            }),
            None => None,
        };
        Ok((Some(record), field))
    }

    /// Assembles a [`SubjectRecords`] from the rows of [`SUBJECT_RECORDS`].
    pub(crate) fn subject_records(subject_id: &str, rows: &[R]) -> Result<Option<SubjectRecords>, StoreError> {
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let key = SubjectKeyRow {
            subject_id: subject_id.to_owned(),
            key_version: key_version(first.try_get("key_version")?)?,
            wrapped_key: first.try_get("wrapped_key")?,
            created_at: first.try_get("key_created_at")?,
        };
        let rows = rows.iter().map(Self::record_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SubjectRecords {
            key,
            records: group_records(rows),
        }))
    }

    /// A `subject_keys` row (`key_version`, `wrapped_key`, `created_at`).
    pub(crate) fn key_row(subject_id: &str, row: &R) -> Result<SubjectKeyRow, StoreError> {
        Ok(SubjectKeyRow {
            subject_id: subject_id.to_owned(),
            key_version: key_version(row.try_get("key_version")?)?,
            wrapped_key: row.try_get("wrapped_key")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// A `subject_ledger` row.
    pub(crate) fn ledger_row(row: &R) -> Result<LedgerRow, StoreError> {
        Ok(LedgerRow {
            seq: row.try_get("seq")?,
            subject_id: row.try_get("subject_id")?,
            kind: row.try_get("kind")?,
            purpose: row.try_get("purpose")?,
            value: row.try_get::<i64, _>("value")? != 0,
            notice_version: row.try_get("notice_version")?,
            method: row.try_get("method")?,
            evidence: row.try_get("evidence")?,
            principal_id: row.try_get("principal_id")?,
            at: row.try_get("at")?,
        })
    }

    /// An `audit_log` row.
    pub(crate) fn audit_row(row: &R) -> Result<AuditRow, StoreError> {
        let leaf: Option<Vec<u8>> = row.try_get("leaf")?;
        Ok(AuditRow {
            seq: row.try_get("seq")?,
            at: row.try_get("at")?,
            entry: row.try_get("entry")?,
            leaf: leaf.unwrap_or_default(),
        })
    }

    /// An `audit_checkpoints` row.
    pub(crate) fn checkpoint_row(row: &R) -> Result<CheckpointRow, StoreError> {
        Ok(CheckpointRow {
            tree_size: row.try_get("tree_size")?,
            root: row.try_get("root")?,
            at: row.try_get("at")?,
            note: row.try_get("note")?,
        })
    }

    /// A `tokens` row.
    pub(crate) fn token_row(row: &R) -> Result<TokenRow, StoreError> {
        Ok(TokenRow {
            token: row.try_get("token")?,
            subject_id: row.try_get("subject_id")?,
            collection: row.try_get("collection")?,
            field: row.try_get("field")?,
            kind: row.try_get("kind")?,
            ciphertext: row.try_get("ciphertext")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// A `principals` row.
    pub(crate) fn principal_row(row: &R) -> Result<PrincipalRow, StoreError> {
        let roles: String = row.try_get("roles")?;
        Ok(PrincipalRow {
            principal_id: row.try_get("principal_id")?,
            name: row.try_get("name")?,
            roles: split_roles(&roles),
            key_id: row.try_get("key_id")?,
            key_hash: row.try_get("key_hash")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

fn key_version(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt("subject key version out of range".into()))
}
