//! Subjects' data keys, one per key class. Destroying a key is crypto-shredding: every value
//! sealed under it, here, in replicas and in backups, becomes unreadable.

use std::collections::HashMap;

use crate::sql::{DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{ReadWrite, StoreError, SubjectKeyRow};

super::repository!(
    /// Subjects and their wrapped data keys.
    Subjects
);

const KEY_COLUMNS: &str = "subject_id, key_class, key_version, wrapped_key, created_at";

pub(crate) fn key_row(row: &DbRow) -> Result<SubjectKeyRow, StoreError> {
    Ok(SubjectKeyRow {
        subject_id: row.text("subject_id")?,
        key_class: row.text("key_class")?,
        key_version: u32::try_from(row.int("key_version")?)
            .map_err(|_| StoreError::Corrupt("subject key version out of range".into()))?,
        wrapped_key: row.bytes("wrapped_key")?,
        created_at: row.int("created_at")?,
    })
}

/// Stored keys by `(subject, class)`.
pub(crate) type StoredKeys = HashMap<(String, String), SubjectKeyRow>;

impl<A> Subjects<'_, A> {
    /// The subject's data key of `class`.
    pub async fn key(&mut self, subject_id: &str, class: &str) -> Result<Option<SubjectKeyRow>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject_id = $1 AND key_class = $2");
        let row = self
            .conn
            .fetch_optional(Stmt::new(sql).bind(subject_id).bind(class))
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    /// Every subject id the store holds anything of (keys, records, token values, open
    /// requests), sorted.
    pub async fn all_ids(&mut self) -> Result<Vec<String>, StoreError> {
        let stmt = Stmt::new(
            "SELECT subject_id FROM subject_keys UNION SELECT subject_id FROM records \
             UNION SELECT subject_id FROM token_values UNION SELECT subject_id FROM tokens_v1 \
             UNION SELECT subject_id FROM requests WHERE subject_id IS NOT NULL ORDER BY 1",
        );
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| r.text("subject_id"))
            .collect()
    }

    /// The subject's stored keys of every class, by class.
    pub async fn keys(&mut self, subject_id: &str) -> Result<Vec<SubjectKeyRow>, StoreError> {
        let mut keys: Vec<_> = self.keys_of(&[subject_id]).await?.into_values().collect();
        keys.sort_by(|a, b| a.key_class.cmp(&b.key_class));
        Ok(keys)
    }

    /// The stored keys of every class of these subjects.
    pub(crate) async fn keys_of(&mut self, subjects: &[&str]) -> Result<StoredKeys, StoreError> {
        let mut stored = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut select = Stmt::new(sql);
            for s in chunk {
                select.push(*s);
            }
            for row in self.conn.fetch_all(select).await? {
                let key = key_row(&row)?;
                stored.insert((key.subject_id.clone(), key.key_class.clone()), key);
            }
        }
        Ok(stored)
    }
}

/// Whether `key` is the stored key of its subject and class.
pub(crate) fn is_stored(stored: &StoredKeys, key: &SubjectKeyRow) -> bool {
    stored
        .get(&(key.subject_id.clone(), key.key_class.clone()))
        .is_some_and(|s| s.wrapped_key == key.wrapped_key)
}

impl Subjects<'_, ReadWrite> {
    /// Stores a subject's key unless it has one of that class; returns the key now stored
    /// (this one, or the one stored first).
    pub async fn ensure_key(&mut self, row: &SubjectKeyRow) -> Result<SubjectKeyRow, StoreError> {
        self.insert_keys(&[row]).await?;
        self.keys_of(&[row.subject_id.as_str()])
            .await?
            .remove(&(row.subject_id.clone(), row.key_class.clone()))
            .ok_or_else(|| StoreError::Corrupt("a subject key vanished after being stored".into()))
    }

    /// Checks, inside this transaction, that `key` is the subject's stored key of its class
    /// (a `fresh` key is stored first when the subject has none): data sealed under any other
    /// key (one a racing first write lost, or one an erasure destroyed) must not be written.
    pub async fn seal_under(&mut self, key: &SubjectKeyRow, fresh: bool) -> Result<(), StoreError> {
        if fresh {
            self.insert_keys(&[key]).await?;
        }
        if is_stored(&self.keys_of(&[key.subject_id.as_str()]).await?, key) {
            Ok(())
        } else {
            Err(StoreError::SubjectKeyConflict)
        }
    }

    /// Stores each key unless its subject has one of that class (first writer wins).
    pub(crate) async fn insert_keys(&mut self, keys: &[&SubjectKeyRow]) -> Result<(), StoreError> {
        for chunk in keys.chunks(Dialect::MAX_PARAMETERS / 5) {
            let sql = values_clause(
                &format!("INSERT INTO subject_keys ({KEY_COLUMNS}) VALUES "),
                5,
                chunk.len(),
            ) + " ON CONFLICT (subject_id, key_class) DO NOTHING";
            let mut insert = Stmt::new(sql);
            for k in chunk {
                insert.push(&k.subject_id);
                insert.push(&k.key_class);
                insert.push(i64::from(k.key_version));
                insert.push(&k.wrapped_key);
                insert.push(k.created_at);
            }
            self.conn.execute(insert).await?;
        }
        Ok(())
    }

    /// Destroys a subject's key of one class (crypto-shredding); returns whether it existed.
    pub async fn destroy_key(&mut self, subject_id: &str, key_class: &str) -> Result<bool, StoreError> {
        let stmt = Stmt::new("DELETE FROM subject_keys WHERE subject_id = $1 AND key_class = $2")
            .bind(subject_id)
            .bind(key_class);
        Ok(self.conn.execute(stmt).await? == 1)
    }
}
