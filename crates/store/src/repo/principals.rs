//! Principals and the hashes of their API keys.

use super::tally::ACCESS_TABLES;
use crate::changes::{Change, announce};
use crate::model::{join_roles, split_roles};
use crate::sql::{DbRow, Stmt};
use crate::{PrincipalRow, ReadWrite, Sealer, StoreError};

super::repository!(
    /// Principals (services and people).
    Principals
);

pub(crate) fn principal_row(row: &DbRow) -> Result<PrincipalRow, StoreError> {
    Ok(PrincipalRow {
        principal_id: row.text("principal_id")?,
        name: row.text("name")?,
        roles: split_roles(&row.text("roles")?),
        key_id: row.text("key_id")?,
        key_hash: row.bytes("key_hash")?,
        created_at: row.int("created_at")?,
        revoked_at: row.opt_int("revoked_at")?,
        expires_at: row.opt_int("expires_at")?,
        last_used_at: row.opt_int("last_used_at")?,
        created_by: row.opt_text("created_by")?,
        client_cert: row.opt_bytes("client_cert")?,
        seal: row.opt_bytes("seal")?,
    })
}

impl<A> Principals<'_, A> {
    /// The principal owning API key id `key_id` (revoked ones included).
    pub async fn by_key_id(&mut self, key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        self.one_where("key_id", key_id).await
    }

    /// The principal with id `principal_id` (revoked ones included).
    pub async fn by_id(&mut self, principal_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        self.one_where("principal_id", principal_id).await
    }

    /// The principal whose unique `column` holds `value`.
    async fn one_where(&mut self, column: &'static str, value: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let stmt = Stmt::new(format!("SELECT * FROM principals WHERE {column} = $1")).bind(value);
        let row = self.conn.fetch_optional(stmt).await?;
        row.as_ref().map(principal_row).transpose()
    }

    /// Every principal, oldest first.
    pub async fn all(&mut self) -> Result<Vec<PrincipalRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM principals ORDER BY created_at, principal_id");
        self.conn.fetch_all(stmt).await?.iter().map(principal_row).collect()
    }
}

impl Principals<'_, ReadWrite> {
    /// Adds a principal. Fails with [`StoreError::Conflict`] if the name is taken.
    /// Its seal goes into the access rows' tally (sealed with `seal`).
    pub async fn insert(&mut self, row: &PrincipalRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::access_change_allowed(&mut self.conn).await?;
        let roles = join_roles(&row.roles);
        let stmt = Stmt::new(
            "INSERT INTO principals (principal_id, name, roles, key_id, key_hash, created_at, revoked_at, \
             expires_at, created_by, seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.principal_id)
        .bind(&row.name)
        .bind(roles.as_str())
        .bind(&row.key_id)
        .bind(&row.key_hash)
        .bind(row.created_at)
        .bind(row.revoked_at)
        .bind(row.expires_at)
        .bind(row.created_by.as_deref())
        .bind(row.seal.as_deref());
        self.conn.execute(stmt).await?;
        super::tally::access_moved(&mut self.conn, seal, None, row.seal.as_deref()).await
    }

    /// Stores the vault's seal of a principal's row as it is now (after a change the vault
    /// made to it, in the same transaction), and moves the access rows' tally.
    pub async fn set_seal(&mut self, principal_id: &str, row_seal: &[u8], seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::reseal_access_row(&mut self.conn, ACCESS_TABLES[0], principal_id, Some(row_seal), seal).await
    }

    /// Replaces an active principal's API key (its id, hash and expiry): the old key stops
    /// working. Returns false when absent or revoked. Other nodes hear of it when the
    /// transaction commits ([`Change::Principal`]).
    /// `issued_by`: who now holds the new key (the rotator, when it is not the principal
    /// itself), recorded as `created_by`.
    pub async fn rotate(
        &mut self,
        principal_id: &str,
        key_id: &str,
        key_hash: &[u8],
        expires_at: Option<i64>,
        issued_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "UPDATE principals SET key_id = $1, key_hash = $2, expires_at = $3, created_by = COALESCE($4, created_by) \
             WHERE principal_id = $5 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .bind(key_hash)
        .bind(expires_at)
        .bind(issued_by)
        .bind(principal_id);
        let rotated = self.conn.execute(stmt).await? == 1;
        if rotated {
            announce(&mut self.conn, &Change::Principal(principal_id.to_owned())).await?;
        }
        Ok(rotated)
    }

    /// Binds an active principal's key to a client certificate (its SHA-256): from then on the
    /// key works only over a TLS connection that presented it. Returns false when absent or
    /// revoked. Other nodes hear of it when the transaction commits.
    pub async fn bind_client_cert(&mut self, principal_id: &str, sha256: &[u8]) -> Result<bool, StoreError> {
        let stmt = Stmt::new("UPDATE principals SET client_cert = $1 WHERE principal_id = $2 AND revoked_at IS NULL")
            .bind(sha256)
            .bind(principal_id);
        let bound = self.conn.execute(stmt).await? == 1;
        if bound {
            announce(&mut self.conn, &Change::Principal(principal_id.to_owned())).await?;
        }
        Ok(bound)
    }

    /// Notes that `principal_id`'s key authenticated a request at `now` (callers write it
    /// at most once an hour per key, not per request).
    pub async fn touch(&mut self, principal_id: &str, now: i64) -> Result<(), StoreError> {
        let stmt = Stmt::new("UPDATE principals SET last_used_at = $1 WHERE principal_id = $2")
            .bind(now)
            .bind(principal_id);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Marks a principal revoked; returns false when absent or already revoked. Other nodes
    /// hear of it when the transaction commits ([`Change::Principal`]).
    pub async fn revoke(&mut self, principal_id: &str, now: i64) -> Result<bool, StoreError> {
        let stmt = Stmt::new("UPDATE principals SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(principal_id);
        let revoked = self.conn.execute(stmt).await? == 1;
        if revoked {
            announce(&mut self.conn, &Change::Principal(principal_id.to_owned())).await?;
        }
        Ok(revoked)
    }
}
