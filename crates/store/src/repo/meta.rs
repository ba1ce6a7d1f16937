//! The key-value metadata table (schema facts, wrapped service keys).

use crate::sql::Stmt;
use crate::{ReadWrite, StoreError};

super::repository!(
    /// Metadata by key.
    Meta
);

impl<A> Meta<'_, A> {
    /// The value of `key`.
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .conn
            .fetch_optional(Stmt::new("SELECT value FROM meta WHERE key = $1").bind(key))
            .await?;
        row.map(|r| r.bytes("value")).transpose()
    }
}

impl Meta<'_, ReadWrite> {
    /// Sets `key` if it is absent; returns whether this call set it.
    pub async fn insert(&mut self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let stmt = Stmt::new("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value);
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Sets `key` to `value`, whether or not it was set.
    pub async fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Replaces `key`'s value if it is still `old` (a wrapped key re-wrapped under a new root
    /// key version); returns whether it was.
    pub async fn replace(&mut self, key: &str, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        let stmt = Stmt::new("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
            .bind(new)
            .bind(key)
            .bind(old);
        Ok(self.conn.execute(stmt).await? == 1)
    }
}
