//! SQL written once for both backends.
//!
//! Every statement is one text with `$1`, `$2`, ... placeholders, numbered in order of first
//! use: PostgreSQL reads them natively; the SQLite connection rewrites them to SQLite's
//! numbered parameters (`sqlite::conn`). Upserts (`ON CONFLICT`), `RETURNING` and the types the statements bind (text,
//! 64-bit integers, bytes, and their nulls) mean the same in both. What differs lives in
//! [`Dialect`]: column type names in the schema, the append-only triggers, and how audit
//! appends are sequenced.
//!
//! [`Conn`] is a borrowed connection of either backend; [`DbRow`] a row of either. Repository
//! code (`repo/`) is written against these two alone.

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Decode, Postgres, Row, Type};

use crate::StoreError;
use crate::sqlite::conn as sqlite;
use crate::tx::BoxFuture;

/// The backend a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The most parameters one statement may bind (SQLite's default limit is the lower).
    pub(crate) const MAX_PARAMETERS: usize = 32_766;

    /// What ends a `SELECT` that locks the rows it reads until its transaction ends: ` FOR
    /// UPDATE` on PostgreSQL; nothing on SQLite, whose write transaction holds the database.
    pub(crate) fn row_lock(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(&'a [u8]),
    OptBytes(Option<&'a [u8]>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::OptText(v)
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Self::OptInt(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Bytes(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Self::OptBytes(v)
    }
}

/// A statement and its arguments.
pub(crate) struct Stmt<'a> {
    sql: std::borrow::Cow<'a, str>,
    args: Vec<Arg<'a>>,
    /// Whether it may read a large part of a table (see [`Stmt::scan`]).
    scan: bool,
}

impl<'a> Stmt<'a> {
    pub(crate) fn new(sql: impl Into<std::borrow::Cow<'a, str>>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
            scan: false,
        }
    }

    /// Marks a statement that may read a large part of a table (verification, counts, sweeps,
    /// audit queries): SQLite runs it off the runtime's threads, as a point read would not be
    /// worth the hand-off. Unmarked statements run where they are awaited.
    pub(crate) fn scan(mut self) -> Self {
        self.scan = true;
        self
    }

    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Binds the next placeholder, in place (for loops).
    pub(crate) fn push(&mut self, arg: impl Into<Arg<'a>>) {
        self.args.push(arg.into());
    }
}

/// `prefix` followed by `rows` tuples of `columns` placeholders, numbered from `$1`.
pub(crate) fn values_clause(prefix: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 5);
    sql.push_str(prefix);
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            n += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

/// `$first, $first+1, ...` for `count` placeholders (an `IN (...)` list).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A borrowed connection of either backend.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(&'c mut PgConnection),
}

/// `$stmt`'s text (`$sql`, as the backend should see it) with its arguments bound.
// `AssertSqlSafe`: every statement's text is put together from this crate's own constants by the
// dialect; values only ever travel as bound arguments.
macro_rules! bound {
    ($db:ty, $stmt:expr, $sql:expr) => {{
        let mut q = sqlx::query::<$db>(sqlx::AssertSqlSafe($sql));
        for arg in &$stmt.args {
            q = match *arg {
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::OptInt(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
                Arg::OptBytes(v) => q.bind(v),
            };
        }
        q
    }};
}

impl Conn<'_> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A shorter-lived borrow of the same connection.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// Runs a statement; returns how many rows it changed.
    // The methods below return boxed futures: sqlx's executor traits are implemented for
    // `&mut Connection` with a lifetime, and an `async fn` holding one cannot be proven `Send`
    // for every lifetime (rustc's "not general enough"); a boxed future states it once here.
    pub(crate) fn execute<'s>(&'s mut self, stmt: Stmt<'s>) -> BoxFuture<'s, Result<u64, StoreError>> {
        Box::pin(async move {
            Ok(match self {
                Self::Sqlite(c) => sqlite::off_runtime_if(stmt.scan, || sqlite::execute(c, &stmt.sql, &stmt.args))?,
                Self::Postgres(c) => bound!(Postgres, stmt, &*stmt.sql)
                    .execute(&mut **c)
                    .await?
                    .rows_affected(),
            })
        })
    }

    /// Every row a query returns.
    pub(crate) fn fetch_all<'s>(&'s mut self, stmt: Stmt<'s>) -> BoxFuture<'s, Result<Vec<DbRow>, StoreError>> {
        Box::pin(async move {
            Ok(match self {
                Self::Sqlite(c) => sqlite::off_runtime_if(stmt.scan, || sqlite::fetch(c, &stmt.sql, &stmt.args, None))?
                    .into_iter()
                    .map(DbRow::Sqlite)
                    .collect(),
                Self::Postgres(c) => bound!(Postgres, stmt, &*stmt.sql)
                    .fetch_all(&mut **c)
                    .await?
                    .into_iter()
                    .map(DbRow::Postgres)
                    .collect(),
            })
        })
    }

    /// The first row a query returns, if any.
    pub(crate) fn fetch_optional<'s>(&'s mut self, stmt: Stmt<'s>) -> BoxFuture<'s, Result<Option<DbRow>, StoreError>> {
        Box::pin(async move {
            Ok(match self {
                Self::Sqlite(c) => {
                    sqlite::off_runtime_if(stmt.scan, || sqlite::fetch(c, &stmt.sql, &stmt.args, Some(1)))?
                        .pop()
                        .map(DbRow::Sqlite)
                }
                Self::Postgres(c) => bound!(Postgres, stmt, &*stmt.sql)
                    .fetch_optional(&mut **c)
                    .await?
                    .map(DbRow::Postgres),
            })
        })
    }

    /// Runs SQL text without arguments, possibly several statements (schema, transactions).
    pub(crate) fn run<'s>(&'s mut self, sql: &'s str) -> BoxFuture<'s, Result<(), StoreError>> {
        Box::pin(async move {
            match self {
                Self::Sqlite(c) => sqlite::run(c, sql)?,
                Self::Postgres(c) => sqlx::Executor::execute(&mut **c, sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
                    .await
                    .map(drop)?,
            }
            Ok(())
        })
    }
}

/// A result row of either backend.
pub(crate) enum DbRow {
    Sqlite(sqlite::Row),
    Postgres(PgRow),
}

/// The error for a NULL where a value was required.
fn null(column: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column} is null"))
}

impl DbRow {
    fn pg<T>(row: &PgRow, column: &str) -> Result<T, StoreError>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        Ok(row.try_get(column)?)
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, StoreError> {
        self.opt_text(column)?.ok_or_else(|| null(column))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Sqlite(r) => r.opt_text(column),
            Self::Postgres(r) => Self::pg(r, column),
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?.ok_or_else(|| null(column))
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Sqlite(r) => r.opt_int(column),
            Self::Postgres(r) => Self::pg(r, column),
        }
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.opt_bytes(column)?.ok_or_else(|| null(column))
    }

    pub(crate) fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sqlite(r) => r.opt_bytes(column),
            Self::Postgres(r) => Self::pg(r, column),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_clauses_number_placeholders_in_order() {
        assert_eq!(
            values_clause("INSERT INTO t VALUES ", 2, 2),
            "INSERT INTO t VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
