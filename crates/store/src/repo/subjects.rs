//! Subjects' data keys, one per key class. Destroying a key is crypto-shredding: every value
//! sealed under it, here, in replicas and in backups, becomes unreadable.

use std::collections::HashMap;

use crate::sql::{DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{ReadWrite, StoreError, SubjectKeyRow};

super::repository!(
    /// Subjects and their wrapped data keys.
    Subjects
);

const KEY_COLUMNS: &str = "subject_id, key_class, key_version, wrapped_key, created_at, first_wrap";

pub(crate) fn key_row(row: &DbRow) -> Result<SubjectKeyRow, StoreError> {
    Ok(SubjectKeyRow {
        subject_id: row.text("subject_id")?,
        key_class: row.text("key_class")?,
        key_version: u32::try_from(row.int("key_version")?)
            .map_err(|_| StoreError::Corrupt("subject key version out of range".into()))?,
        wrapped_key: row.bytes("wrapped_key")?,
        created_at: row.int("created_at")?,
        first_wrap: row.opt_bytes("first_wrap")?,
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
        )
        .scan();
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| r.text("subject_id"))
            .collect()
    }

    /// How many subject keys each root key version wraps, oldest version first (read from
    /// each wrapped form's header, bytes 1..5; a key of another format counts under 0).
    pub async fn count_by_root_version(&mut self) -> Result<Vec<(u32, i64)>, StoreError> {
        let stmt = Stmt::new(
            "SELECT substr(wrapped_key, 1, 5) AS head, COUNT(*) AS n FROM subject_keys GROUP BY substr(wrapped_key, 1, 5)",
        )
        .scan();
        let mut counts = std::collections::BTreeMap::<u32, i64>::new();
        for row in self.conn.fetch_all(stmt).await? {
            let version = crate::model::root_version_of(&row.bytes("head")?).unwrap_or(0);
            *counts.entry(version).or_default() += row.int("n")?;
        }
        Ok(counts.into_iter().collect())
    }

    /// Up to `limit` subject keys after `after` in `(subject, class)` order, with the cursor
    /// of the last one: a walk over every key that a restart can resume.
    pub async fn keys_after(&mut self, after: &KeyCursor, limit: usize) -> Result<Vec<SubjectKeyRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let stmt = match after {
            None => Stmt::new(format!(
                "SELECT {KEY_COLUMNS} FROM subject_keys ORDER BY subject_id, key_class LIMIT $1"
            ))
            .bind(limit),
            Some((subject, class)) => Stmt::new(format!(
                "SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject_id > $1 OR (subject_id = $2 AND key_class > $3) \
                 ORDER BY subject_id, key_class LIMIT $4"
            ))
            .bind(subject.as_str())
            .bind(subject.as_str())
            .bind(class.as_str())
            .bind(limit),
        };
        self.conn.fetch_all(stmt).await?.iter().map(key_row).collect()
    }

    /// The subject's stored keys of every class, by class.
    pub async fn keys(&mut self, subject_id: &str) -> Result<Vec<SubjectKeyRow>, StoreError> {
        let mut keys: Vec<_> = self.keys_of(&[subject_id]).await?.into_values().collect();
        keys.sort_by(|a, b| a.key_class.cmp(&b.key_class));
        Ok(keys)
    }

    /// The stored keys of every class of these subjects.
    pub(crate) async fn keys_of(&mut self, subjects: &[&str]) -> Result<StoredKeys, StoreError> {
        self.select_keys(subjects, "").await
    }

    /// The stored keys of these subjects, with `lock` (a PostgreSQL row lock clause, or
    /// nothing) after the query.
    async fn select_keys(&mut self, subjects: &[&str], lock: &str) -> Result<StoredKeys, StoreError> {
        let mut stored = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM subject_keys WHERE subject_id IN ({}){lock}",
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
        .is_some_and(|s| s.identity() == key.identity())
}

/// Where a walk over every subject key goes on from: the last `(subject, class)` seen.
pub type KeyCursor = Option<(String, String)>;

/// How a write transaction locks subjects' keys on PostgreSQL (SQLite's one writer runs one
/// transaction at a time: nothing to lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLock {
    /// A write sealing under a key: many at once, none while the key is being destroyed.
    Share,
    /// An erasure destroying the keys (or a hold placed against it): alone.
    Update,
}

impl Subjects<'_, ReadWrite> {
    /// The stored keys of these subjects, locked until this transaction ends ([`KeyLock`]).
    /// A write checks the key it sealed under this way: an erasure that locked the key first
    /// has, when the write gets the lock, destroyed it (the write is refused); one that comes
    /// after waits for the write, then sees its records and erases them too.
    pub(crate) async fn keys_locked(&mut self, subjects: &[&str], lock: KeyLock) -> Result<StoredKeys, StoreError> {
        let clause = match (self.conn.dialect(), lock) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, KeyLock::Share) => " FOR SHARE",
            (Dialect::Postgres, KeyLock::Update) => " FOR UPDATE",
        };
        self.select_keys(subjects, clause).await
    }

    /// Locks a subject's keys until this transaction ends ([`KeyLock`]), first of all (a
    /// transaction that locks records too locks the key before them, as the erasure does).
    /// A subject with no key (no data, only ledger entries) has no row to lock: on PostgreSQL
    /// a lock on the subject's id is taken first, the same way, so a consent recorded while
    /// such a subject is erased waits for the erasure or is seen by it.
    pub async fn lock_keys(&mut self, subject_id: &str, lock: KeyLock) -> Result<(), StoreError> {
        if self.conn.dialect() == Dialect::Postgres {
            // (two 32-bit keys: a key space apart from the one-key locks of jobs and the
            // audit sequencer; a hash shared by two subjects only makes them wait in turn)
            let sql = match lock {
                KeyLock::Share => "SELECT pg_advisory_xact_lock_shared(7361, hashtext($1))",
                KeyLock::Update => "SELECT pg_advisory_xact_lock(7361, hashtext($1))",
            };
            self.conn.execute(Stmt::new(sql).bind(subject_id)).await?;
        }
        self.keys_locked(&[subject_id], lock).await.map(|_| ())
    }

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
        if is_stored(
            &self.keys_locked(&[key.subject_id.as_str()], KeyLock::Share).await?,
            key,
        ) {
            Ok(())
        } else {
            Err(StoreError::SubjectKeyConflict)
        }
    }

    /// Stores each of `keys` (as another database stored them) whose subject has no key of
    /// that class: after a restore, the keys made since the backup of subjects erased meanwhile
    /// (their older keys destroyed by the erasure made again).
    pub async fn restore_keys(&mut self, keys: &[SubjectKeyRow]) -> Result<(), StoreError> {
        let keys: Vec<&SubjectKeyRow> = keys.iter().collect();
        self.insert_keys(&keys).await
    }

    /// Stores each key unless its subject has one of that class (first writer wins).
    pub(crate) async fn insert_keys(&mut self, keys: &[&SubjectKeyRow]) -> Result<(), StoreError> {
        for chunk in keys.chunks(Dialect::MAX_PARAMETERS / 6) {
            let sql = values_clause(
                &format!("INSERT INTO subject_keys ({KEY_COLUMNS}) VALUES "),
                6,
                chunk.len(),
            ) + " ON CONFLICT (subject_id, key_class) DO NOTHING";
            let mut insert = Stmt::new(sql);
            for k in chunk {
                insert.push(&k.subject_id);
                insert.push(&k.key_class);
                insert.push(i64::from(k.key_version));
                insert.push(&k.wrapped_key);
                insert.push(k.created_at);
                insert.push(k.first_wrap.as_deref());
            }
            self.conn.execute(insert).await?;
        }
        Ok(())
    }

    /// Replaces `key`'s wrapped form with `rewrapped` (the same data key under another root
    /// key version) if it is still stored as read; returns whether it was. Its identity
    /// stays: the digest of its first wrapped form is kept beside the new one.
    pub async fn rewrap(&mut self, key: &SubjectKeyRow, rewrapped: &[u8]) -> Result<bool, StoreError> {
        let identity = key.identity();
        let stmt = Stmt::new(
            "UPDATE subject_keys SET wrapped_key = $1, first_wrap = $2 \
             WHERE subject_id = $3 AND key_class = $4 AND wrapped_key = $5",
        )
        .bind(rewrapped)
        .bind(identity.as_slice())
        .bind(key.subject_id.as_str())
        .bind(key.key_class.as_str())
        .bind(key.wrapped_key.as_slice());
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Destroys a subject's key of one class (crypto-shredding); returns whether it existed.
    pub async fn destroy_key(&mut self, subject_id: &str, key_class: &str) -> Result<bool, StoreError> {
        let stmt = Stmt::new("DELETE FROM subject_keys WHERE subject_id = $1 AND key_class = $2")
            .bind(subject_id)
            .bind(key_class);
        Ok(self.conn.execute(stmt).await? == 1)
    }
}
