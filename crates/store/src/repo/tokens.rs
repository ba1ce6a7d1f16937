//! Vaulted tokens, sealed under their subject's data key. A token is unique across the vault:
//! `token_names` holds one row per token (by a keyed digest of it, its name), and a
//! deterministic token's row binds the value it stands for, so that only rows of that value
//! may share it.

use std::collections::{HashMap, HashSet};

use crate::sql::{DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{ReadWrite, StoreError, TokenRow};

super::repository!(
    /// Tokens and the sealed values they stand for.
    Tokens
);

fn token_row(row: &DbRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        name: row.bytes("name")?,
        subject_id: row.text("subject_id")?,
        collection: row.text("collection")?,
        field: row.text("field")?,
        kind: row.text("kind")?,
        binding: row.opt_bytes("binding")?,
        ciphertext: row.bytes("ciphertext")?,
        created_at: row.int("created_at")?,
        purpose: row.opt_text("purpose")?,
    })
}

/// A token's value held for a purpose: what the sweeper judges (its time runs from
/// `created_at`, when it was last handed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldToken {
    pub name: Vec<u8>,
    pub subject_id: String,
    pub purpose: String,
    pub collection: String,
    pub field: String,
    pub created_at: i64,
}

/// A subject's token values of one field, kind and purpose ([`Tokens::holdings_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolding {
    pub collection: String,
    pub field: String,
    pub kind: String,
    pub purpose: Option<String>,
    pub count: u64,
    pub first_at: i64,
    pub last_at: i64,
}

/// The owner of a token name: its field and the value it binds, if any.
#[derive(PartialEq, Eq)]
struct Owner {
    collection: String,
    field: String,
    binding: Option<Vec<u8>>,
}

impl Owner {
    fn of(row: &TokenRow) -> Self {
        Self {
            collection: row.collection.clone(),
            field: row.field.clone(),
            binding: row.binding.clone(),
        }
    }

    /// Whether `row` may share this owner's token: only a deterministic row of the same field
    /// bound to the same value.
    fn admits(&self, row: &TokenRow) -> bool {
        row.binding.is_some() && *self == Self::of(row)
    }
}

impl<A> Tokens<'_, A> {
    /// The token values held for a purpose, in `(subject, name, purpose)` order after `after`,
    /// at most `limit` (values of tokens from before purposes were kept have none: they go with
    /// their field's value or the subject).
    pub async fn held(&mut self, after: Option<&HeldToken>, limit: i64) -> Result<Vec<HeldToken>, StoreError> {
        const COLUMNS: &str = "SELECT v.name, v.subject_id, v.purpose, v.created_at, n.collection, n.field \
             FROM token_values v JOIN token_names n ON n.name = v.name WHERE v.purpose IS NOT NULL";
        let stmt = match after {
            None => Stmt::new(format!("{COLUMNS} ORDER BY v.subject_id, v.name, v.purpose LIMIT $1")).bind(limit),
            Some(a) => Stmt::new(format!(
                "{COLUMNS} AND (v.subject_id > $1 OR (v.subject_id = $1 AND (v.name > $2 \
                 OR (v.name = $2 AND v.purpose > $3)))) ORDER BY v.subject_id, v.name, v.purpose LIMIT $4"
            ))
            .bind(a.subject_id.as_str())
            .bind(a.name.as_slice())
            .bind(a.purpose.as_str())
            .bind(limit),
        };
        self.conn
            .fetch_all(stmt.scan())
            .await?
            .iter()
            .map(|r| {
                Ok(HeldToken {
                    name: r.bytes("name")?,
                    subject_id: r.text("subject_id")?,
                    purpose: r.text("purpose")?,
                    collection: r.text("collection")?,
                    field: r.text("field")?,
                    created_at: r.int("created_at")?,
                })
            })
            .collect()
    }

    /// The subject's token values by collection, field, kind and purpose: how many, and the
    /// first and last hand-out (for the subject's access package).
    pub async fn holdings_of(&mut self, subject_id: &str) -> Result<Vec<TokenHolding>, StoreError> {
        let stmt = Stmt::new(
            "SELECT n.collection, n.field, v.kind, v.purpose, COUNT(*) AS n, MIN(v.created_at) AS first_at, \
             MAX(v.created_at) AS last_at FROM token_values v JOIN token_names n ON n.name = v.name \
             WHERE v.subject_id = $1 GROUP BY n.collection, n.field, v.kind, v.purpose \
             ORDER BY n.collection, n.field, v.purpose, v.kind",
        )
        .bind(subject_id);
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| {
                Ok(TokenHolding {
                    collection: r.text("collection")?,
                    field: r.text("field")?,
                    kind: r.text("kind")?,
                    purpose: r.opt_text("purpose")?,
                    count: u64::try_from(r.int("n")?).unwrap_or(0),
                    first_at: r.int("first_at")?,
                    last_at: r.int("last_at")?,
                })
            })
            .collect()
    }

    pub async fn subject_has_values(&mut self, subject_id: &str) -> Result<bool, StoreError> {
        for sql in [
            "SELECT name FROM token_values WHERE subject_id = $1 LIMIT 1",
            "SELECT token FROM tokens_v1 WHERE subject_id = $1 LIMIT 1",
        ] {
            if self
                .conn
                .fetch_optional(Stmt::new(sql).bind(subject_id))
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The stored rows of the tokens with these names (any that exist): one row per subject
    /// that holds the token.
    pub async fn get(&mut self, names: &[Vec<u8>]) -> Result<Vec<TokenRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in names.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT n.name, n.collection, n.field, n.binding, v.subject_id, v.kind, v.ciphertext, v.created_at, v.purpose
                 FROM token_names n JOIN token_values v ON v.name = n.name WHERE n.name IN ({})",
                placeholders(1, chunk.len())
            );
            let mut stmt = Stmt::new(sql);
            for n in chunk {
                stmt.push(n);
            }
            for row in self.conn.fetch_all(stmt).await? {
                out.push(token_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Rows of tokens issued before schema version 8 (stored in clear, keyed by token and
    /// subject, so one token may have rows of several subjects and values): `name` is the
    /// token's text and `binding` is `None`.
    pub async fn get_v1(&mut self, tokens: &[String]) -> Result<Vec<TokenRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in tokens.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT token, subject_id, collection, field, kind, ciphertext, created_at
                 FROM tokens_v1 WHERE token IN ({})",
                placeholders(1, chunk.len())
            );
            let mut stmt = Stmt::new(sql);
            for t in chunk {
                stmt.push(t);
            }
            for row in self.conn.fetch_all(stmt).await? {
                out.push(TokenRow {
                    name: row.text("token")?.into_bytes(),
                    subject_id: row.text("subject_id")?,
                    collection: row.text("collection")?,
                    field: row.text("field")?,
                    kind: row.text("kind")?,
                    binding: None,
                    ciphertext: row.bytes("ciphertext")?,
                    created_at: row.int("created_at")?,
                    purpose: None,
                });
            }
        }
        Ok(out)
    }
}

impl Tokens<'_, ReadWrite> {
    /// Deletes each of `rows` that is still as it was judged (one handed out again since has
    /// a later time, and stays); returns how many.
    pub async fn expire(&mut self, rows: &[HeldToken]) -> Result<u64, StoreError> {
        let mut n = 0;
        for r in rows {
            let stmt = Stmt::new(
                "DELETE FROM token_values WHERE name = $1 AND subject_id = $2 AND purpose = $3 AND created_at = $4",
            )
            .bind(r.name.as_slice())
            .bind(r.subject_id.as_str())
            .bind(r.purpose.as_str())
            .bind(r.created_at);
            n += self.conn.execute(stmt).await?;
        }
        Ok(n)
    }

    /// Deletes a subject's token values of one field (a rectified value's old tokens must not
    /// detokenize to it); returns how many.
    pub async fn erase_field(&mut self, subject_id: &str, collection: &str, field: &str) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            "DELETE FROM token_values WHERE subject_id = $1 AND name IN \
             (SELECT name FROM token_names WHERE collection = $2 AND field = $3)",
        )
        .bind(subject_id)
        .bind(collection)
        .bind(field);
        let mut n = self.conn.execute(stmt).await?;
        let legacy = Stmt::new("DELETE FROM tokens_v1 WHERE subject_id = $1 AND collection = $2 AND field = $3")
            .bind(subject_id)
            .bind(collection)
            .bind(field);
        n += self.conn.execute(legacy).await?;
        Ok(n)
    }

    /// Deletes every token value of a subject (and its tokens of schema versions before 8);
    /// returns how many. The token names stay reserved, so no token is ever reissued to
    /// another value.
    pub async fn erase_subject(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        for sql in [
            "DELETE FROM token_values WHERE subject_id = $1",
            "DELETE FROM tokens_v1 WHERE subject_id = $1",
        ] {
            n += self.conn.execute(Stmt::new(sql).bind(subject_id)).await?;
        }
        Ok(n)
    }

    /// Stores each row whose token is free, or (a deterministic row) held by rows of the same
    /// field bound to the same value; says for each row whether it was stored. A row whose
    /// token is taken (by another value, another field or a random token) is not stored: its
    /// caller draws another token. Within `rows`, the first row of a token claims it first.
    /// A subject's row of a deterministic token it already holds under the same purpose is
    /// kept as it was; under another purpose, the subject gets a row of its own for that one
    /// (what one purpose vaulted never stands for another's).
    pub async fn claim(&mut self, rows: &[TokenRow]) -> Result<Vec<bool>, StoreError> {
        // The first row of each name tries to insert it; a name it did not insert is
        // someone's already (committed, or, on PostgreSQL, waited for until committed).
        let mut first: HashMap<&[u8], usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            first.entry(r.name.as_slice()).or_insert(i);
        }
        let mut fresh: Vec<&TokenRow> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| first.get(r.name.as_slice()) == Some(i))
            .map(|(_, r)| r)
            .collect();
        fresh.sort_by(|a, b| a.name.cmp(&b.name)); // one lock order for concurrent claims
        let mut inserted: HashSet<Vec<u8>> = HashSet::new();
        for chunk in fresh.chunks(Dialect::MAX_PARAMETERS / 4) {
            let sql = values_clause(
                "INSERT INTO token_names (name, collection, field, binding) VALUES ",
                4,
                chunk.len(),
            ) + " ON CONFLICT (name) DO NOTHING RETURNING name";
            let mut stmt = Stmt::new(sql);
            for r in chunk {
                stmt.push(&r.name);
                stmt.push(&r.collection);
                stmt.push(&r.field);
                stmt.push(r.binding.as_deref());
            }
            for row in self.conn.fetch_all(stmt).await? {
                inserted.insert(row.bytes("name")?);
            }
        }
        let held: Vec<&[u8]> = fresh
            .iter()
            .map(|r| r.name.as_slice())
            .filter(|n| !inserted.contains(*n))
            .collect();
        let mut owners: HashMap<Vec<u8>, Owner> = HashMap::new();
        for chunk in held.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!(
                "SELECT name, collection, field, binding FROM token_names WHERE name IN ({})",
                placeholders(1, chunk.len())
            );
            let mut stmt = Stmt::new(sql);
            for n in chunk {
                stmt.push(*n);
            }
            for row in self.conn.fetch_all(stmt).await? {
                let owner = Owner {
                    collection: row.text("collection")?,
                    field: row.text("field")?,
                    binding: row.opt_bytes("binding")?,
                };
                owners.insert(row.bytes("name")?, owner);
            }
        }
        let mut stored = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let claimed = match first.get(r.name.as_slice()) {
                Some(&f) if inserted.contains(&r.name) => f == i || Owner::of(&rows[f]).admits(r),
                _ => owners.get(&r.name).is_some_and(|o| o.admits(r)),
            };
            stored.push(claimed);
        }
        let mut seen = HashSet::new();
        let keep: Vec<&TokenRow> = rows
            .iter()
            .zip(&stored)
            .filter(|(r, s)| **s && seen.insert((r.name.as_slice(), r.subject_id.as_str(), r.purpose.as_deref())))
            .map(|(r, _)| r)
            .collect();
        for chunk in keep.chunks(Dialect::MAX_PARAMETERS / 6) {
            let sql = values_clause(
                "INSERT INTO token_values (name, subject_id, kind, ciphertext, created_at, purpose) VALUES ",
                6,
                chunk.len(),
            ) + " ON CONFLICT (name, subject_id, purpose) DO UPDATE SET created_at = CASE \
                 WHEN excluded.created_at > token_values.created_at THEN excluded.created_at \
                 ELSE token_values.created_at END";
            let mut stmt = Stmt::new(sql);
            for r in chunk {
                stmt.push(&r.name);
                stmt.push(&r.subject_id);
                stmt.push(&r.kind);
                stmt.push(&r.ciphertext);
                stmt.push(r.created_at);
                stmt.push(r.purpose.as_deref());
            }
            self.conn.execute(stmt).await?;
        }
        Ok(stored)
    }
}
