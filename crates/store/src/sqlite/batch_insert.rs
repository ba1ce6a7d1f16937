//! The fast path of group commit for record creation: the records waiting in one batch are
//! inserted with a handful of multi-row statements instead of several statements each.
//! Every statement is a round trip to sqlx's connection thread, and under load those round
//! trips, not SQLite itself, bound how many writes one connection can make.
//!
//! If any statement fails, the whole group is rolled back to its savepoint and the writer
//! falls back to inserting the records one at a time, each in its own savepoint, so one bad
//! record fails alone.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};

use crate::{NewRecord, StoreError};

/// SQLite's default limit on bound parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
pub(crate) const MAX_PARAMETERS: usize = 32_766;

/// Inserts `records` together. Returns one result per record: `Err(SubjectKeyConflict)` for
/// a record whose new data key lost to another; `Err` for the whole call when a statement
/// fails (the caller rolls back and retries one by one).
pub(super) async fn insert_many(
    conn: &mut SqliteConnection,
    records: &[NewRecord],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let stored_keys = insert_keys(conn, records).await?;
    let accepted: Vec<bool> = records
        .iter()
        .map(|r| match &r.subject_key {
            Some(key) => stored_keys.get(key.subject_id.as_str()) == Some(&key.wrapped_key),
            None => true,
        })
        .collect();
    let kept: Vec<&NewRecord> = records
        .iter()
        .zip(&accepted)
        .filter(|(_, ok)| **ok)
        .map(|(r, _)| r)
        .collect();

    for chunk in kept.chunks(MAX_PARAMETERS / 5) {
        let sql = super::multi_row(
            "INSERT INTO records (record_id, subject_id, collection, created_at, updated_at) VALUES ",
            5,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.record_id)
                .bind(&r.subject_id)
                .bind(&r.collection)
                .bind(r.now)
                .bind(r.now);
        }
        q.execute(&mut *conn).await?;
    }
    let fields: Vec<_> = kept
        .iter()
        .flat_map(|r| r.fields.iter().map(move |f| (*r, f)))
        .collect();
    for chunk in fields.chunks(MAX_PARAMETERS / 5) {
        let sql = super::multi_row(
            "INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES ",
            5,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for (r, f) in chunk {
            q = q
                .bind(&r.record_id)
                .bind(&f.field)
                .bind(&f.ciphertext)
                .bind(&f.purpose)
                .bind(r.now);
        }
        q.execute(&mut *conn).await?;
    }
    let index: Vec<_> = kept.iter().flat_map(|r| r.index.iter().map(move |i| (*r, i))).collect();
    for chunk in index.chunks(MAX_PARAMETERS / 5) {
        let sql = super::multi_row(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES ",
            5,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for (r, i) in chunk {
            q = q
                .bind(&r.collection)
                .bind(&i.field)
                .bind(&i.digest)
                .bind(&r.record_id)
                .bind(&r.subject_id);
        }
        q.execute(&mut *conn).await?;
    }
    let audits: Vec<_> = kept.iter().filter_map(|r| r.audit.as_ref()).collect();
    super::insert_audit(conn, &audits).await?;
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

/// Stores the new data keys that records carry (first writer wins) and returns the key now
/// stored for each of those subjects.
async fn insert_keys(
    conn: &mut SqliteConnection,
    records: &[NewRecord],
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let keys: Vec<_> = records.iter().filter_map(|r| r.subject_key.as_ref()).collect();
    let mut stored = HashMap::new();
    for chunk in keys.chunks(MAX_PARAMETERS / 4) {
        let sql = super::multi_row(
            "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES ",
            4,
            chunk.len(),
        ) + " ON CONFLICT (subject_id) DO NOTHING";
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q
                .bind(&k.subject_id)
                .bind(i64::from(k.key_version))
                .bind(&k.wrapped_key)
                .bind(k.created_at);
        }
        q.execute(&mut *conn).await?;
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let select = format!("SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN ({placeholders})");
        let mut q = sqlx::query(&select);
        for k in chunk {
            q = q.bind(&k.subject_id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            stored.insert(row.try_get("subject_id")?, row.try_get("wrapped_key")?);
        }
    }
    Ok(stored)
}
