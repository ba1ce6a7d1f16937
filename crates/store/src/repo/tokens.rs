//! Vaulted tokens, sealed under their subject's data key.

use crate::sql::{DbRow, Dialect, Stmt, placeholders, values_clause};
use crate::{ReadWrite, StoreError, TokenRow};

super::repository!(
    /// Tokens and the sealed values they stand for.
    Tokens
);

fn token_row(row: &DbRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        token: row.text("token")?,
        subject_id: row.text("subject_id")?,
        collection: row.text("collection")?,
        field: row.text("field")?,
        kind: row.text("kind")?,
        ciphertext: row.bytes("ciphertext")?,
        created_at: row.int("created_at")?,
    })
}

impl<A> Tokens<'_, A> {
    /// The stored rows of the given tokens (any that exist).
    pub async fn get(&mut self, tokens: &[String]) -> Result<Vec<TokenRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in tokens.chunks(Dialect::MAX_PARAMETERS) {
            let sql = format!("SELECT * FROM tokens WHERE token IN ({})", placeholders(1, chunk.len()));
            let mut stmt = Stmt::new(sql);
            for t in chunk {
                stmt.push(t);
            }
            for row in self.conn.fetch_all(stmt).await? {
                out.push(token_row(&row)?);
            }
        }
        Ok(out)
    }
}

impl Tokens<'_, ReadWrite> {
    /// Stores tokens; a token already stored for the same subject is kept as it is
    /// (deterministic tokens repeat).
    pub async fn insert(&mut self, rows: &[TokenRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(Dialect::MAX_PARAMETERS / 7) {
            let sql = values_clause(
                "INSERT INTO tokens (token, subject_id, collection, field, kind, ciphertext, created_at) VALUES ",
                7,
                chunk.len(),
            ) + " ON CONFLICT (token, subject_id) DO NOTHING";
            let mut stmt = Stmt::new(sql);
            for r in chunk {
                stmt.push(&r.token);
                stmt.push(&r.subject_id);
                stmt.push(&r.collection);
                stmt.push(&r.field);
                stmt.push(&r.kind);
                stmt.push(&r.ciphertext);
                stmt.push(r.created_at);
            }
            self.conn.execute(stmt).await?;
        }
        Ok(())
    }
}
