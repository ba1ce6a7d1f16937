use thiserror::Error;

/// Errors of the store. Messages name tables and constraints, never stored values.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. a principal name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A record came with a new data key but the subject already has another one.
    #[error("the subject already has a data key")]
    SubjectKeyConflict,
    /// The database holds something this version cannot read.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The schema is newer than this binary, or a migration failed.
    #[error("schema: {0}")]
    Schema(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Backend(String),
    /// A job given to [`Store::write`](crate::Store::write) gave up for a reason of its own
    /// (named without values); everything it wrote was rolled back.
    #[error("write aborted: {0}")]
    Aborted(String),
    /// A subject's ledger is not as the vault sealed it (an entry inserted, changed, copied
    /// or removed in the database by hand), `0` saying how (entry numbers, never values).
    #[error("the subject's ledger was altered in the database: {0}")]
    LedgerAltered(String),
    /// The rows that grant access (principals, operators, sessions, break-glass grants) are
    /// not as the vault left them: a row put back as an earlier copy had it, deleted, or
    /// copied in (their sealed tally is off); `0` says how, never a secret.
    #[error("the rows that grant access were altered in the database: {0}")]
    AccessAltered(String),
    /// A change of an access row before their tally is made: the server's first start after
    /// the upgrade to schema version 23 makes it.
    #[error(
        "the rows that grant access are tallied at the server's first start after the upgrade to schema version 23: start `custodia serve` once, then retry"
    )]
    AccessUntallied,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.constraint().unwrap_or("unique constraint").to_owned())
            }
            sqlx::Error::ColumnDecode { index, .. } => Self::Corrupt(format!("column {index} could not be decoded")),
            // sqlx's Display of these variants names the operation and database message,
            // never a bound value.
            _ => Self::Backend(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(code, message)
                if code.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || code.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                // SQLite's message names the columns ("UNIQUE constraint failed: t.c"), never
                // the value.
                let columns = message
                    .as_deref()
                    .and_then(|m| m.split_once(": "))
                    .map_or("unique constraint", |(_, columns)| columns);
                Self::Conflict(columns.to_owned())
            }
            // SQLite's messages name statements, tables and constraints; rusqlite binds
            // values as parameters, which no message repeats.
            _ => Self::Backend(e.to_string()),
        }
    }
}
