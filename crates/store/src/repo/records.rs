//! Records, their sealed fields and their blind-index entries.

use crate::model::group_records;
use crate::repo::Sealer;
use crate::repo::retention::bound_value;
use crate::repo::subjects::is_stored;
use crate::repo::tally::Message;
use crate::sql::{Arg, DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{
    Binding, DEFAULT_KEY_CLASS, ErasedRows, FieldValue, IndexEntry, NewRecord, ReadWrite, RecordPatch, StoreError,
    StoredField, StoredRecord, SubjectRecords,
};

super::repository!(
    /// Records of subjects by collection.
    Records,
    sealing bindings
);

/// One record of a subject in a collection with its fields.
const ONE_RECORD: &str = "SELECT r.record_id, r.subject_id, r.collection, r.created_at AS record_created_at, \
     r.updated_at, f.field, f.ciphertext, f.key_class AS field_key_class, f.updated_at AS field_updated_at, \
     {binding_columns} FROM records r LEFT JOIN record_fields f ON f.record_id = r.record_id {join_bindings} \
     WHERE r.subject_id = $1 AND r.collection = $2 AND r.record_id = $3 ORDER BY f.field, b.purpose";

/// The columns of a field's binding, from `b` (one row per binding of a field).
const BINDING_COLUMNS: &str = "b.purpose, b.bound_at, b.renewed_at, b.ended_at, b.expires_at, b.seal AS binding_seal";
/// Joins each field's bindings as `b`.
const JOIN_BINDINGS: &str = "LEFT JOIN field_bindings b ON b.record_id = f.record_id AND b.field = f.field";

/// A query text with the binding columns and join filled in.
fn with_bindings(sql: &str) -> String {
    sql.replace("{binding_columns}", BINDING_COLUMNS)
        .replace("{join_bindings}", JOIN_BINDINGS)
}

/// A binding to store: the record, the field, the value's bytes as stored, the binding.
type Bound<'a> = (Target<'a>, &'a str, &'a [u8], &'a Binding);

/// Every column a binding's seal covers, for `b` joined with its value `f`.
const BINDINGS_WITH_VALUES: &str = "SELECT b.record_id, b.field, b.purpose, b.subject_id, b.collection, b.bound_at, \
     b.renewed_at, b.ended_at, b.expires_at, b.seal AS binding_seal, f.ciphertext FROM field_bindings b \
     JOIN record_fields f ON f.record_id = b.record_id AND f.field = b.field";

/// The `meta` key set (`0x01`) by the schema step that sealed purpose bindings (schema
/// version 24): the bindings from before are sealed at the vault's next start told to
/// (`serve --seal-access`), once.
pub const BINDING_SEALS_PENDING: &str = "binding_seals_pending";

/// What a binding's seal covers: the value it binds (where it is: record, field, whose and
/// which collection; and what it is: its sealed bytes as stored), the purpose, and when the
/// value was collected and last written for it. The value's bytes: a binding a purpose let
/// go of, put back by hand once the field has another value, opens nothing; a new value or a
/// correction (Art. 16), which keeps the field's other bindings, seals them again. Not the
/// times the ledger and the rules set (`ended_at`, `expires_at`), which the sweeper rewrites
/// in bulk: a read goes by the sealed ledger and by the rule's expiry computed from these
/// sealed times as well as by the stored one.
fn binding_message(t: Target<'_>, field: &str, ciphertext: &[u8], b: &Binding) -> Vec<u8> {
    let mut m = Message::new("custodia.binding.v1");
    m.text(Some(t.record_id))
        .text(Some(field))
        .text(Some(t.subject_id))
        .text(Some(t.collection))
        .bytes(ciphertext)
        .text(Some(&b.purpose))
        .int(b.bound_at)
        .int(b.renewed_at);
    m.0
}

/// The binding on a joined row, if it has one, as stored (sealed or not).
pub(crate) fn binding_of(row: &DbRow) -> Result<Option<Binding>, StoreError> {
    let Some(purpose) = row.opt_text("purpose")? else {
        return Ok(None);
    };
    Ok(Some(Binding {
        purpose,
        bound_at: row.int("bound_at")?,
        renewed_at: row.int("renewed_at")?,
        ended_at: row.opt_int("ended_at")?,
        expires_at: row.opt_int("expires_at")?,
    }))
}

/// Whether `stored` is `seal`'s seal of binding `b` of the value `ciphertext` in `field` of
/// record `t`: one written or changed by hand (or read before the vault installed its
/// sealer) lets no purpose use the value. One whose seal does not hold is logged.
pub(crate) fn binding_holds(
    seal: Option<&dyn Sealer>,
    stored: Option<&[u8]>,
    (t, field, ciphertext): (Target<'_>, &str, &[u8]),
    b: &Binding,
) -> bool {
    let Some(seal) = seal else {
        return false;
    };
    let holds = stored.is_some_and(|stored| seal.holds(&binding_message(t, field, ciphertext, b), stored));
    if !holds {
        // (field and purpose only, escaped: ids and values are not logged)
        tracing::warn!(
            field = ?field,
            purpose = ?b.purpose,
            "a purpose binding without the vault's seal was passed over (written or changed outside the vault)"
        );
    }
    holds
}

fn record_row(
    row: &DbRow,
    seal: Option<&dyn Sealer>,
) -> Result<(Option<StoredRecord>, Option<StoredField>), StoreError> {
    let record = StoredRecord {
        record_id: row.text("record_id")?,
        subject_id: row.text("subject_id")?,
        collection: row.text("collection")?,
        created_at: row.int("record_created_at")?,
        updated_at: row.int("updated_at")?,
        fields: Vec::new(),
    };
    let field = match row.opt_text("field")? {
        Some(field) => {
            let ciphertext = row.bytes("ciphertext")?;
            let stored = row.opt_bytes("binding_seal")?;
            let value = (record.target(), field.as_str(), &ciphertext[..]);
            let bindings = binding_of(row)?
                .filter(|b| binding_holds(seal, stored.as_deref(), value, b))
                .into_iter()
                .collect();
            Some(StoredField {
                field,
                ciphertext,
                key_class: row.text("field_key_class")?,
                updated_at: row.int("field_updated_at")?,
                bindings,
            })
        }
        None => None,
    };
    Ok((Some(record), field))
}

/// What a page of a subject's records weighs as stored ([`Records::page_weight`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredWeight {
    pub records: u64,
    pub fields: u64,
    /// The values' bytes as stored (sealed).
    pub bytes: u64,
}

/// How many values of one field, held for one purpose and sealed under one key class, a
/// subject holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldValues {
    pub collection: String,
    pub field: String,
    pub purpose: String,
    pub key_class: String,
    pub values: u64,
}

/// A page of a subject's records with their fields, in keyset order `(collection,
/// created_at, record_id)`; `{records}` is the page's records ([`PageOf::stmt`]).
const SUBJECT_RECORD_PAGE: &str = "SELECT r.record_id, r.subject_id, r.collection, \
     r.created_at AS record_created_at, r.updated_at, f.field, f.ciphertext, \
     f.key_class AS field_key_class, f.updated_at AS field_updated_at, {binding_columns} \
     FROM ({records}) r LEFT JOIN record_fields f ON f.record_id = r.record_id {join_bindings} \
     ORDER BY r.collection, r.created_at, r.record_id, f.field, b.purpose";

/// What a page of a subject's records weighs: its records, their values and the values' bytes.
const PAGE_WEIGHT: &str = "SELECT COUNT(DISTINCT r.record_id) AS records, COUNT(f.field) AS fields, \
     COALESCE(SUM(LENGTH(f.ciphertext)), 0) AS bytes FROM ({records}) r \
     LEFT JOIN record_fields f ON f.record_id = r.record_id";

/// Which of a subject's records a page holds: at most `limit`, in keyset order `(collection,
/// created_at, record_id)`, from the start or after the cursor `after` (a record written or
/// deleted meanwhile does not shift the pages; each record read appears once).
#[derive(Debug, Clone, Copy)]
pub struct PageOf<'a> {
    pub subject_id: &'a str,
    /// Only the records of this collection (`None`: of every collection).
    pub collection: Option<&'a str>,
    /// Only the records holding a value a read could use through one of these bindings
    /// (`None`: every record): the database passes over those a read could never show, so
    /// that a read does not take time, one by one, over what other purposes hold or over
    /// what its own can no longer use.
    pub usable_by: Option<UsableBy<'a>>,
    pub after: Option<&'a RecordCursor>,
    pub limit: i64,
}

impl<'a> PageOf<'a> {
    /// `sql` with `{records}` replaced by the query of the page's records (their columns of
    /// `records`), and its arguments.
    fn stmt(&self, sql: &str, dialect: Dialect) -> Stmt<'a> {
        // the arguments, in the order of their places: `$1` the subject, `$2` the limit
        let mut args: Vec<Arg<'a>> = vec![self.subject_id.into(), self.limit.into()];
        let mut place = |arg: Arg<'a>| {
            args.push(arg);
            format!("${}", args.len())
        };
        let mut filter = String::new();
        let mut source = "records".to_owned();
        if let Some(usable) = self.usable_by {
            match usable.records(&mut place, dialect) {
                Some(usable) => source = usable,
                None => filter.push_str(" AND 1 = 0"),
            }
        }
        if let Some(collection) = self.collection {
            filter.push_str(&format!(" AND collection = {}", place(collection.into())));
        }
        if let Some(c) = self.after {
            let (c, t, r) = (
                place(c.collection.as_str().into()),
                place(c.created_at.into()),
                place(c.record_id.as_str().into()),
            );
            filter.push_str(&format!(" AND (collection, created_at, record_id) > ({c}, {t}, {r})"));
        }
        let records = format!(
            "SELECT records.record_id, records.subject_id, records.collection, records.created_at, \
             records.updated_at FROM {source} WHERE records.subject_id = $1{filter} \
             ORDER BY collection, created_at, record_id LIMIT $2"
        );
        let mut stmt = Stmt::new(sql.replace("{records}", &records));
        for arg in args {
            stmt.push(arg);
        }
        stmt
    }
}

/// The bindings through which a read may use a value, as far as their stored columns tell:
/// of one of `purposes`, of one of `fields`, and not expired at `at` by their stored expiry
/// (an expiry stored that has passed is never moved later, so such a binding stays unusable).
/// What the columns cannot tell (an end the ledger took back too late, a rule's expiry not
/// yet stored, a key erased) the reader still judges, record by record.
#[derive(Debug, Clone, Copy)]
pub struct UsableBy<'a> {
    pub purposes: &'a [&'a str],
    pub fields: &'a [&'a str],
    pub at: i64,
}

impl UsableBy<'_> {
    /// The records of the page's subject (`$1`) with a value that has such a binding, as a
    /// source of `records` rows (`None`: there can be none), its arguments given their places
    /// by `place`. Read from the bindings, not by walking the subject's records: the usable
    /// bindings are two ranges of the index `field_bindings_by_subject` (subject, purpose,
    /// field, expiry, record) for each purpose and field, no expiry and one not passed, read
    /// without the table; each record is then found by its id (SQLite is told to loop in
    /// that order). So a page costs what the reader may see, not what it may not: walking the
    /// subject's records cost 0.1-0.5 ms per 1,000 passed over, which a batch of 1,000 list
    /// items turned into a count of them (4.3 s against 0.4 s).
    fn records<'a>(&self, place: &mut impl FnMut(Arg<'a>) -> String, dialect: Dialect) -> Option<String>
    where
        Self: 'a,
    {
        if self.purposes.is_empty() || self.fields.is_empty() {
            return None;
        }
        let mut list =
            |items: &[&'a str]| -> String { items.iter().map(|p| place((*p).into())).collect::<Vec<_>>().join(", ") };
        let (purposes, fields) = (list(self.purposes), list(self.fields));
        let at = place(self.at.into());
        let bound = format!(
            "SELECT pb.record_id AS usable_id FROM field_bindings pb WHERE pb.subject_id = $1 \
             AND pb.purpose IN ({purposes}) AND pb.field IN ({fields}) AND pb.expires_at"
        );
        let join = match dialect {
            Dialect::Sqlite => "CROSS JOIN",
            Dialect::Postgres => "JOIN",
        };
        Some(format!(
            "({bound} IS NULL UNION {bound} > {at}) usable {join} records ON records.record_id = usable.usable_id"
        ))
    }
}

/// Where a page of [`Records::page_of_subject`] ended: its last record's keyset position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor {
    pub collection: String,
    pub created_at: i64,
    pub record_id: String,
}

impl RecordCursor {
    /// The position of `record`, to read the page after it.
    #[must_use]
    pub fn after(record: &StoredRecord) -> Self {
        Self {
            collection: record.collection.clone(),
            created_at: record.created_at,
            record_id: record.record_id.clone(),
        }
    }
}

/// Which record a change targets.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub subject_id: &'a str,
    pub collection: &'a str,
    pub record_id: &'a str,
}

impl StoredRecord {
    /// The record, as a change would target it.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            subject_id: &self.subject_id,
            collection: &self.collection,
            record_id: &self.record_id,
        }
    }
}

impl<A> Records<'_, A> {
    /// The records of a page of a subject's records, with their fields (sorted by name). The
    /// subject's keys are not read.
    pub async fn page_of_subject(&mut self, page: PageOf<'_>) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = self
            .conn
            .fetch_all(page.stmt(&with_bindings(SUBJECT_RECORD_PAGE), self.conn.dialect()))
            .await?;
        let rows = rows
            .iter()
            .map(|r| record_row(r, self.bindings.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(group_records(rows))
    }

    /// A subject's data keys and one record of it (`records` is empty when there is no such
    /// record); `None` when the subject has neither keys nor that record.
    pub async fn one(&mut self, target: Target<'_>) -> Result<Option<SubjectRecords>, StoreError> {
        let stmt = Stmt::new(with_bindings(ONE_RECORD))
            .bind(target.subject_id)
            .bind(target.collection)
            .bind(target.record_id);
        self.subject_records(stmt, target.subject_id).await
    }

    async fn subject_records(
        &mut self,
        records: Stmt<'_>,
        subject_id: &str,
    ) -> Result<Option<SubjectRecords>, StoreError> {
        let rows = self.conn.fetch_all(records).await?;
        let records = group_records(
            rows.iter()
                .map(|r| record_row(r, self.bindings.as_deref()))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let keys = crate::repo::Subjects::<A>::new(self.conn.reborrow())
            .keys(subject_id)
            .await?;
        if keys.is_empty() && records.is_empty() {
            return Ok(None);
        }
        Ok(Some(SubjectRecords { keys, records }))
    }

    /// What a page of a subject's records weighs as stored: how many records, how many
    /// values, and the values' bytes. What a list weighs before it is read, so a batch can
    /// tell how many lists to read at once.
    pub async fn page_weight(&mut self, page: PageOf<'_>) -> Result<StoredWeight, StoreError> {
        let stmt = page.stmt(PAGE_WEIGHT, self.conn.dialect());
        let Some(row) = self.conn.fetch_optional(stmt).await? else {
            return Ok(StoredWeight::default());
        };
        let count = |name: &str| -> Result<u64, StoreError> { Ok(u64::try_from(row.int(name)?).unwrap_or(0)) };
        Ok(StoredWeight {
            records: count("records")?,
            fields: count("fields")?,
            bytes: count("bytes")?,
        })
    }

    /// What a subject still holds, by `(collection, field, purpose, key class)`, with the
    /// number of values of each held for that purpose: after an erasure, what survived it.
    pub async fn held_values(&mut self, subject_id: &str) -> Result<Vec<HeldValues>, StoreError> {
        let stmt = Stmt::new(
            "SELECT b.collection, b.field, b.purpose, f.key_class, COUNT(*) AS n FROM field_bindings b \
             JOIN record_fields f ON f.record_id = b.record_id AND f.field = b.field WHERE b.subject_id = $1 \
             GROUP BY b.collection, b.field, b.purpose, f.key_class ORDER BY b.purpose, b.collection, b.field",
        )
        .bind(subject_id);
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(HeldValues {
                    collection: row.text("collection")?,
                    field: row.text("field")?,
                    purpose: row.text("purpose")?,
                    key_class: row.text("key_class")?,
                    values: u64::try_from(row.int("n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// `(subject_id, record_id)` of the records whose `field` has blind index `digest`, in
    /// record id order (creation order), those after record `after` only, at most `limit`.
    pub async fn find_by_index(
        &mut self,
        collection: &str,
        field: &str,
        digest: &[u8],
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // Ordered as the primary key is: a page is a range of it, never a sort of all matches.
        let stmt = Stmt::new(
            "SELECT subject_id, record_id FROM blind_index WHERE collection = $1 AND field = $2 AND digest = $3 \
             AND record_id > $4 ORDER BY record_id LIMIT $5",
        )
        .bind(collection)
        .bind(field)
        .bind(digest)
        .bind(after.unwrap_or(""))
        .bind(limit);
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter()
            .map(|r| Ok((r.text("subject_id")?, r.text("record_id")?)))
            .collect()
    }

    /// The stored fields of the record with their bindings, for a change to decide on (the
    /// record locked for the rest of the transaction on PostgreSQL); `None` when there is no
    /// such record.
    pub async fn fields_for_change(&mut self, t: Target<'_>) -> Result<Option<Vec<StoredField>>, StoreError> {
        if !self.lock(t).await? {
            return Ok(None);
        }
        let stmt = Stmt::new(with_bindings(
            "SELECT r.record_id, r.subject_id, r.collection, r.created_at AS record_created_at, r.updated_at, \
             f.field, f.ciphertext, f.key_class AS field_key_class, f.updated_at AS field_updated_at, \
             {binding_columns} FROM records r JOIN record_fields f ON f.record_id = r.record_id {join_bindings} \
             WHERE r.record_id = $1 ORDER BY f.field, b.purpose",
        ))
        .bind(t.record_id);
        let rows = self.conn.fetch_all(stmt).await?;
        let rows = rows
            .iter()
            .map(|r| record_row(r, self.bindings.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(group_records(rows).pop().map(|r| r.fields).unwrap_or_default()))
    }

    /// Whether the record exists; on PostgreSQL the row is locked for the transaction.
    async fn lock(&mut self, t: Target<'_>) -> Result<bool, StoreError> {
        let lock = self.conn.dialect().row_lock();
        let sql =
            format!("SELECT record_id FROM records WHERE record_id = $1 AND subject_id = $2 AND collection = $3{lock}");
        let stmt = Stmt::new(sql).bind(t.record_id).bind(t.subject_id).bind(t.collection);
        Ok(self.conn.fetch_optional(stmt).await?.is_some())
    }
}

impl Records<'_, ReadWrite> {
    /// Inserts one record (see [`Records::insert_many`]).
    pub async fn insert(&mut self, record: &NewRecord) -> Result<(), StoreError> {
        self.insert_many(&[record])
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Corrupt("no result for an inserted record".into())))
    }

    /// Inserts records with a handful of multi-row statements. Returns one result per record:
    /// `Err(SubjectKeyConflict)` for a record sealed under a key that is not its subject's
    /// stored key (nothing of it is written); `Err` for the whole call when a statement fails.
    pub async fn insert_many(&mut self, records: &[&NewRecord]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut subjects = crate::repo::Subjects::<ReadWrite>::new(self.conn.reborrow());
        let fresh: Vec<_> = records
            .iter()
            .filter(|r| r.fresh_key)
            .map(|r| &r.sealed_under)
            .collect();
        subjects.insert_keys(&fresh).await?;
        let ids: Vec<&str> = records.iter().map(|r| r.subject_id.as_str()).collect();
        let stored = subjects.keys_locked(&ids, crate::repo::KeyLock::Share).await?;
        let accepted: Vec<bool> = records
            .iter()
            .map(|r| r.subject_id == r.sealed_under.subject_id && is_stored(&stored, &r.sealed_under))
            .collect();
        let kept: Vec<&NewRecord> = records
            .iter()
            .zip(&accepted)
            .filter(|(_, ok)| **ok)
            .map(|(r, _)| *r)
            .collect();
        for chunk in kept.chunks(Dialect::MAX_PARAMETERS / 5) {
            let sql = values_clause(
                "INSERT INTO records (record_id, subject_id, collection, created_at, updated_at) VALUES ",
                5,
                chunk.len(),
            );
            let mut stmt = Stmt::new(sql);
            for r in chunk {
                stmt.push(&r.record_id);
                stmt.push(&r.subject_id);
                stmt.push(&r.collection);
                stmt.push(r.now);
                stmt.push(r.now);
            }
            self.conn.execute(stmt).await?;
        }
        let fields: Vec<_> = kept
            .iter()
            .flat_map(|r| {
                let t = Target {
                    subject_id: &r.subject_id,
                    collection: &r.collection,
                    record_id: &r.record_id,
                };
                r.fields.iter().map(move |f| (t, r.now, f))
            })
            .collect();
        self.insert_fields(&fields, false).await?;
        for r in &kept {
            if let Some(activity) = &r.activity {
                crate::repo::Retention::<ReadWrite>::new(self.conn.reborrow(), self.bindings.clone())
                    .record_activity(activity)
                    .await?;
            }
        }
        let index: Vec<_> = kept.iter().flat_map(|r| r.index.iter().map(move |i| (*r, i))).collect();
        for chunk in index.chunks(Dialect::MAX_PARAMETERS / 5) {
            let mut stmt = Stmt::new(index_insert(chunk.len()));
            for (r, i) in chunk {
                push_index(&mut stmt, &r.collection, i, &r.record_id, &r.subject_id);
            }
            self.conn.execute(stmt).await?;
        }
        Ok(accepted
            .into_iter()
            .map(|ok| {
                if ok {
                    Ok(())
                } else {
                    Err(StoreError::SubjectKeyConflict)
                }
            })
            .collect())
    }

    /// Inserts sealed field values `(record, time, value)` with their bindings; with
    /// `replace`, a value a field already has is replaced (without, it is a conflict, as is one
    /// field given twice): a value with a binding replaces the field's bindings with it, one
    /// without keeps them.
    async fn insert_fields(
        &mut self,
        fields: &[(Target<'_>, i64, &FieldValue)],
        replace: bool,
    ) -> Result<(), StoreError> {
        for chunk in fields.chunks(Dialect::MAX_PARAMETERS / 5) {
            let mut sql = values_clause(
                "INSERT INTO record_fields (record_id, field, ciphertext, key_class, updated_at) VALUES ",
                5,
                chunk.len(),
            );
            if replace {
                sql.push_str(
                    " ON CONFLICT (record_id, field) DO UPDATE SET ciphertext = excluded.ciphertext, \
                     key_class = excluded.key_class, updated_at = excluded.updated_at",
                );
            }
            let mut stmt = Stmt::new(sql);
            for (t, now, f) in chunk {
                stmt.push(t.record_id);
                stmt.push(&f.field);
                stmt.push(&f.ciphertext);
                stmt.push(&f.key_class);
                stmt.push(*now);
            }
            self.conn.execute(stmt).await?;
        }
        let bound: Vec<Bound<'_>> = fields
            .iter()
            .filter_map(|(t, _, f)| f.binding.as_ref().map(|b| (*t, f.field.as_str(), &f.ciphertext[..], b)))
            .collect();
        if replace {
            for (t, field, _, _) in &bound {
                let stmt = Stmt::new("DELETE FROM field_bindings WHERE record_id = $1 AND field = $2")
                    .bind(t.record_id)
                    .bind(*field);
                self.conn.execute(stmt).await?;
            }
        }
        self.upsert_bindings(&bound).await
    }

    /// The vault's binding sealer, or the refusal of a write that needs it.
    fn binding_sealer(&self) -> Result<std::sync::Arc<dyn Sealer>, StoreError> {
        self.bindings.clone().ok_or_else(|| {
            StoreError::Backend("no purpose binding can be written before the vault installed its sealer".into())
        })
    }

    /// Stores bindings `(record, field, the value's stored bytes, binding)`, replacing one of
    /// the same purpose, each sealed by the vault's binding sealer (refused before it is
    /// installed).
    async fn upsert_bindings(&mut self, bindings: &[Bound<'_>]) -> Result<(), StoreError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let seal = self.binding_sealer()?;
        for chunk in bindings.chunks(Dialect::MAX_PARAMETERS / 10) {
            let mut sql = values_clause(
                "INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at, \
                 ended_at, expires_at, seal) VALUES ",
                10,
                chunk.len(),
            );
            sql.push_str(
                " ON CONFLICT (record_id, field, purpose) DO UPDATE SET bound_at = excluded.bound_at, \
                 renewed_at = excluded.renewed_at, ended_at = excluded.ended_at, expires_at = excluded.expires_at, \
                 seal = excluded.seal",
            );
            let seals: Vec<Vec<u8>> = chunk
                .iter()
                .map(|(t, field, value, b)| seal.seal(&binding_message(*t, field, value, b)))
                .collect();
            let mut stmt = Stmt::new(sql);
            for ((t, field, _, b), sealed) in chunk.iter().zip(&seals) {
                stmt.push(t.record_id);
                stmt.push(*field);
                stmt.push(&b.purpose);
                stmt.push(t.subject_id);
                stmt.push(t.collection);
                stmt.push(b.bound_at);
                stmt.push(b.renewed_at);
                stmt.push(b.ended_at);
                stmt.push(b.expires_at);
                stmt.push(&sealed[..]);
            }
            self.conn.execute(stmt).await?;
        }
        Ok(())
    }

    /// The bindings of `fields` of record `t` as stored, joined with their values.
    fn bindings_with_values<'s>(t: Target<'s>, fields: &[&'s str]) -> Stmt<'s> {
        let mut stmt = Stmt::new(format!(
            "{BINDINGS_WITH_VALUES} WHERE b.record_id = $1 AND b.field IN ({})",
            placeholders(2, fields.len())
        ))
        .bind(t.record_id);
        for field in fields {
            stmt.push(*field);
        }
        stmt
    }

    /// `(field, purpose)` of the bindings of `fields` of record `t` whose seal holds now: the
    /// ones a change that gives these fields other bytes seals again ([`Self::seal_bindings`]),
    /// and no other (a binding written by hand would be sealed with them).
    async fn sealed_bindings(&mut self, t: Target<'_>, fields: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let seal = self.binding_sealer()?;
        let rows = self.conn.fetch_all(Self::bindings_with_values(t, fields)).await?;
        let mut held = Vec::new();
        for row in &rows {
            let v = bound_value(row)?;
            let stored = row.opt_bytes("binding_seal")?;
            let value = (v.target(), v.field.as_str(), &row.bytes("ciphertext")?[..]);
            if binding_holds(Some(&*seal), stored.as_deref(), value, &v.binding) {
                held.push((v.field, v.binding.purpose));
            }
        }
        Ok(held)
    }

    /// Seals again, as stored now (the value's bytes included), the bindings `(field,
    /// purpose)` of record `t` in `held`: after a change that gave their fields other bytes
    /// and kept their bindings (a correction, a value sealed again under another key class).
    async fn seal_bindings(&mut self, t: Target<'_>, held: &[(String, String)]) -> Result<u64, StoreError> {
        if held.is_empty() {
            return Ok(0);
        }
        let seal = self.binding_sealer()?;
        let mut fields: Vec<&str> = held.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort_unstable();
        fields.dedup();
        let rows = self.conn.fetch_all(Self::bindings_with_values(t, &fields)).await?;
        let mut sealed = 0;
        for row in &rows {
            let (field, purpose) = (row.text("field")?, row.text("purpose")?);
            if held.iter().any(|(f, p)| *f == field && *p == purpose) {
                self.seal_row(row, &*seal).await?;
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Seals the bindings stored without a seal, as they are: at the start after the upgrade
    /// that sealed bindings (schema version 24), on the operator's word. Logs how many of each
    /// collection, field and purpose it sealed (for the operator to look for one no write
    /// of theirs made). Returns how many.
    pub async fn seal_unsealed_bindings(&mut self, seal: &dyn Sealer) -> Result<u64, StoreError> {
        let stmt = Stmt::new(format!("{BINDINGS_WITH_VALUES} WHERE b.seal IS NULL"));
        let rows = self.conn.fetch_all(stmt).await?;
        let mut sealed: std::collections::BTreeMap<(String, String, String), u64> = Default::default();
        for row in &rows {
            self.seal_row(row, seal).await?;
            let kind = (row.text("collection")?, row.text("field")?, row.text("purpose")?);
            *sealed.entry(kind).or_default() += 1;
        }
        for ((collection, field, purpose), bindings) in sealed {
            tracing::warn!(collection = ?collection, field = ?field, purpose = ?purpose, bindings, "sealed purpose bindings stored before seals, as they were");
        }
        Ok(rows.len() as u64)
    }

    /// Seals the binding on `row` (of a [`BINDINGS_WITH_VALUES`] query) as it is stored.
    async fn seal_row(&mut self, row: &DbRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        let v = bound_value(row)?;
        let sealed = seal.seal(&binding_message(
            v.target(),
            &v.field,
            &row.bytes("ciphertext")?,
            &v.binding,
        ));
        let stmt =
            Stmt::new("UPDATE field_bindings SET seal = $1 WHERE record_id = $2 AND field = $3 AND purpose = $4")
                .bind(&sealed[..])
                .bind(v.record_id.as_str())
                .bind(v.field.as_str())
                .bind(v.binding.purpose.as_str());
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Applies a patch; returns what it destroyed (values left with no binding, and the record
    /// itself when it was left with no value), or `None` when no such record exists.
    pub async fn update(&mut self, t: Target<'_>, patch: &RecordPatch) -> Result<Option<ErasedRows>, StoreError> {
        if !self.lock(t).await? {
            return Ok(None);
        }
        // A correction keeps a field's bindings and a value sealed again under another key
        // class keeps its bytes no more: the seals cover the bytes, so those that hold now are
        // made again after the change; a binding whose seal does not hold stays unsealed. A
        // renewed binding is written sealed over the bytes the patch names.
        let rebytes: Vec<&str> = patch
            .set
            .iter()
            .filter(|f| f.binding.is_none())
            .map(|f| f.field.as_str())
            .chain(
                patch
                    .renew
                    .iter()
                    .filter(|r| r.resealed.is_some())
                    .map(|r| r.field.as_str()),
            )
            .collect();
        let mut reseal = self.sealed_bindings(t, &rebytes).await?;
        reseal.retain(|(field, purpose)| {
            !patch
                .renew
                .iter()
                .any(|r| r.field == *field && r.binding.purpose == *purpose)
        });
        for f in &patch.set {
            let stmt = Stmt::new("DELETE FROM blind_index WHERE record_id = $1 AND field = $2")
                .bind(t.record_id)
                .bind(&f.field);
            self.conn.execute(stmt).await?;
        }
        let set: Vec<_> = patch.set.iter().map(|f| (t, patch.now, f)).collect();
        self.insert_fields(&set, true).await?;
        for r in &patch.renew {
            if let Some(class) = &r.resealed {
                let stmt = Stmt::new(
                    "UPDATE record_fields SET ciphertext = $1, key_class = $2 WHERE record_id = $3 AND field = $4",
                )
                .bind(&r.value)
                .bind(class)
                .bind(t.record_id)
                .bind(&r.field);
                self.conn.execute(stmt).await?;
            }
        }
        let renewed: Vec<Bound<'_>> = patch
            .renew
            .iter()
            .map(|r| (t, r.field.as_str(), &r.value[..], &r.binding))
            .collect();
        self.upsert_bindings(&renewed).await?;
        self.seal_bindings(t, &reseal).await?;
        for (field, purpose) in &patch.unbind {
            let stmt = Stmt::new("DELETE FROM field_bindings WHERE record_id = $1 AND field = $2 AND purpose = $3")
                .bind(t.record_id)
                .bind(field)
                .bind(purpose);
            self.conn.execute(stmt).await?;
        }
        if !patch.index.is_empty() {
            let mut stmt = Stmt::new(index_insert(patch.index.len()));
            for i in &patch.index {
                push_index(&mut stmt, t.collection, i, t.record_id, t.subject_id);
            }
            self.conn.execute(stmt).await?;
        }
        let stmt = Stmt::new("UPDATE records SET updated_at = $1 WHERE record_id = $2")
            .bind(patch.now)
            .bind(t.record_id);
        self.conn.execute(stmt).await?;
        self.destroy_unbound(&[t.record_id]).await.map(Some)
    }

    /// The one destruction path of values (expiry, unbinding, erasure): in `records`, deletes
    /// every value no binding holds (with its blind-index entries), then every record left
    /// with no value.
    pub async fn destroy_unbound(&mut self, records: &[&str]) -> Result<ErasedRows, StoreError> {
        let mut erased = ErasedRows::default();
        for chunk in records.chunks(Dialect::MAX_PARAMETERS) {
            let marks = crate::sql::placeholders(1, chunk.len());
            let unbound = "NOT EXISTS (SELECT 1 FROM field_bindings b WHERE b.record_id = record_fields.record_id \
                           AND b.field = record_fields.field)";
            let statements = [
                format!(
                    "DELETE FROM blind_index WHERE record_id IN ({marks}) AND EXISTS (SELECT 1 FROM record_fields \
                     WHERE record_fields.record_id = blind_index.record_id AND record_fields.field = blind_index.field \
                     AND {unbound})"
                ),
                format!("DELETE FROM record_fields WHERE record_id IN ({marks}) AND {unbound}"),
                format!(
                    "DELETE FROM records WHERE record_id IN ({marks}) AND NOT EXISTS \
                     (SELECT 1 FROM record_fields f WHERE f.record_id = records.record_id)"
                ),
            ];
            let mut counts = [0; 3];
            for (sql, count) in statements.iter().zip(&mut counts) {
                let mut stmt = Stmt::new(sql.as_str());
                for id in chunk {
                    stmt.push(*id);
                }
                *count = self.conn.execute(stmt).await?;
            }
            erased.add(ErasedRows {
                index_entries: counts[0],
                fields: counts[1],
                records: counts[2],
                token_values: 0,
            });
        }
        Ok(erased)
    }

    /// Erases up to `limit` records of a subject, in record id order after `after`: their
    /// blind-index entries go, and so does every binding of a purpose not in `surviving` (the
    /// purposes whose data outlives an erasure) and every binding of a value sealed under the
    /// `default` key (which the erasure destroys); values and records left with nothing holding
    /// them go with them. Returns what was deleted and the last record id seen (`None` when
    /// there were none left), so that a large subject is erased in short transactions.
    pub async fn erase_batch(
        &mut self,
        subject_id: &str,
        after: &str,
        limit: i64,
        surviving: &[String],
    ) -> Result<(ErasedRows, Option<String>), StoreError> {
        let stmt = Stmt::new(
            "SELECT record_id FROM records WHERE subject_id = $1 AND record_id > $2 ORDER BY record_id LIMIT $3",
        )
        .bind(subject_id)
        .bind(after)
        .bind(limit);
        let ids = self
            .conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| r.text("record_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut erased = ErasedRows::default();
        for chunk in ids.chunks(Dialect::MAX_PARAMETERS - surviving.len().max(1) - 2) {
            let mut stmt = Stmt::new(format!(
                "DELETE FROM blind_index WHERE subject_id = $1 AND record_id IN ({})",
                crate::sql::placeholders(2, chunk.len())
            ))
            .bind(subject_id);
            for id in chunk {
                stmt.push(id.as_str());
            }
            let index_entries = self.conn.execute(stmt).await?;
            // $1 the subject, $2 the default class, then the purposes that survive, then ids.
            let ending = if surviving.is_empty() {
                "1 = 1".to_owned()
            } else {
                format!("purpose NOT IN ({})", crate::sql::placeholders(3, surviving.len()))
            };
            let mut stmt = Stmt::new(format!(
                "DELETE FROM field_bindings WHERE subject_id = $1 AND record_id IN ({}) AND ({ending} OR EXISTS \
                 (SELECT 1 FROM record_fields f WHERE f.record_id = field_bindings.record_id \
                 AND f.field = field_bindings.field AND f.key_class = $2))",
                crate::sql::placeholders(3 + surviving.len(), chunk.len())
            ))
            .bind(subject_id)
            .bind(DEFAULT_KEY_CLASS);
            for p in surviving {
                stmt.push(p.as_str());
            }
            for id in chunk {
                stmt.push(id.as_str());
            }
            self.conn.execute(stmt).await?;
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let mut rows = self.destroy_unbound(&ids).await?;
            rows.index_entries += index_entries;
            erased.add(rows);
        }
        Ok((erased, ids.last().cloned()))
    }
}

fn index_insert(rows: usize) -> String {
    values_clause(
        "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES ",
        5,
        rows,
    )
}

fn push_index<'a>(
    stmt: &mut Stmt<'a>,
    collection: &'a str,
    i: &'a IndexEntry,
    record_id: &'a str,
    subject_id: &'a str,
) {
    stmt.push(collection);
    stmt.push(&i.field);
    stmt.push(&i.digest);
    stmt.push(record_id);
    stmt.push(subject_id);
}
