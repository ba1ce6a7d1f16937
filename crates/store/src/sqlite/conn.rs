//! SQLite connections on `rusqlite`, called directly on the thread that awaits them.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends it every statement over a
//! channel: two thread hand-offs per statement, which under load cost more CPU than SQLite
//! itself (an audited read is several statements). Here a statement runs where it is asked
//! for: the writer on its own thread ([`super::writer`]), readers on the request's task.
//! Most reads are short indexed statements on a memory-mapped, cached file, so they block a
//! runtime thread for microseconds, less than a hand-off would cost; statements that may read
//! much of a table are marked (`Stmt::scan`) and run off the runtime's threads
//! ([`off_runtime_if`]), so that a verification or a sweep does not hold up other requests.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::sql::Arg;

/// Statements kept prepared per connection. Multi-row statements with many parameters (one
/// text per batch size) are prepared afresh instead of filling the cache.
const STATEMENT_CACHE: usize = 128;
/// Statements binding more parameters than this are not cached (see [`STATEMENT_CACHE`]).
const CACHED_PARAMETERS: usize = 64;

/// How a connection opens its file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Read and write, creating the file if missing: the writer and the store's own tasks.
    ReadWrite,
    /// Reads only, on a file that must exist; SQLite refuses every write.
    ReadOnly,
}

/// The settings every connection of one database shares.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) path: std::path::PathBuf,
    pub(crate) mode: Mode,
    pub(crate) busy_timeout: Duration,
}

impl Options {
    /// Opens a connection with the store's settings (see `super` for why each is set).
    pub(crate) fn open(&self) -> Result<Connection, StoreError> {
        let flags = match self.mode {
            Mode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Mode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", self.path.display())))?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Pages are read through a memory map and kept in a larger cache: under load the read
        // and write syscalls of the default settings cost more than SQLite itself.
        let mut pragmas = String::from("PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;");
        if let Mode::ReadWrite = self.mode {
            pragmas.push_str(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; \
                 PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
                super::writer::WAL_RESTART_BYTES
            ));
        }
        conn.execute_batch(&pragmas)?;
        Ok(conn)
    }
}

/// The statement text as SQLite should see it. SQLite treats `$N` as a *named* parameter and
/// `?N` as a numbered one, and finds a named parameter's index by a linear search, so a
/// multi-row insert with thousands of placeholders would bind in quadratic time. When the
/// placeholders run `$1, $2, ...` in order, each once (every multi-row statement), they become
/// anonymous `?`; otherwise (a few statements use one out of order) `?N`. Either way the N-th
/// argument binds parameter N.
pub(crate) fn sqlite_text(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let rewrite = |anonymous: bool| {
        let mut out = String::with_capacity(sql.len());
        let mut expected = 1u64;
        let mut in_order = true;
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push('$');
            } else {
                in_order &= after[..digits].parse::<u64>().ok() == Some(expected);
                expected += 1;
                out.push('?');
                if !anonymous {
                    out.push_str(&after[..digits]);
                }
            }
            rest = &after[digits..];
        }
        out.push_str(rest);
        (out, in_order)
    };
    match rewrite(true) {
        (anonymous, true) => std::borrow::Cow::Owned(anonymous),
        _ => std::borrow::Cow::Owned(rewrite(false).0),
    }
}

/// Runs `work` where it is called, or, when `scan` and on a multi-threaded runtime, with the
/// runtime told that this thread blocks (`block_in_place`: its other tasks move to another
/// thread meanwhile). On a single-threaded runtime (the writer's, tests') it runs in place.
pub(crate) fn off_runtime_if<T>(scan: bool, work: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if scan && multi_threaded {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// A prepared statement, from the connection's cache or not (see [`CACHED_PARAMETERS`]).
enum Prepared<'c> {
    Cached(rusqlite::CachedStatement<'c>),
    Fresh(rusqlite::Statement<'c>),
}

impl<'c> std::ops::Deref for Prepared<'c> {
    type Target = rusqlite::Statement<'c>;
    fn deref(&self) -> &Self::Target {
        match self {
            Self::Cached(s) => s,
            Self::Fresh(s) => s,
        }
    }
}

impl std::ops::DerefMut for Prepared<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Cached(s) => s,
            Self::Fresh(s) => s,
        }
    }
}

/// Refuses a text of several statements: SQLite prepares the first and ignores the rest
/// without a word, so a second statement would never run. Such texts go through [`run`].
fn one_statement(sql: &str) -> Result<(), StoreError> {
    match sql.split_once(';') {
        Some((first, rest)) if !rest.trim().is_empty() => Err(StoreError::Backend(format!(
            "a statement text holds more than one statement (the first: {})",
            first.trim()
        ))),
        _ => Ok(()),
    }
}

/// `sql` prepared with `args` bound.
fn prepare<'c>(conn: &'c Connection, sql: &str, args: &[Arg<'_>]) -> Result<Prepared<'c>, StoreError> {
    one_statement(sql)?;
    let text = sqlite_text(sql);
    let mut stmt = if args.len() <= CACHED_PARAMETERS {
        Prepared::Cached(conn.prepare_cached(&text)?)
    } else {
        Prepared::Fresh(conn.prepare(&text)?)
    };
    let expected = stmt.parameter_count();
    if expected != args.len() {
        return Err(StoreError::Backend(format!(
            "a statement with {expected} parameters was given {} arguments",
            args.len()
        )));
    }
    for (i, arg) in args.iter().enumerate() {
        let at = i + 1;
        match *arg {
            Arg::Text(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::OptText(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::Int(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::OptInt(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::Bytes(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::OptBytes(v) => stmt.raw_bind_parameter(at, v)?,
        }
    }
    Ok(stmt)
}

/// Runs a statement to its end; returns how many rows it changed (none for a statement that
/// only reads, whatever ran before it).
pub(crate) fn execute(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
    let mut stmt = prepare(conn, sql, args)?;
    let reads_only = stmt.readonly();
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    Ok(if reads_only { 0 } else { conn.changes() })
}

/// The rows a query returns: all of them, or the first `limit`.
pub(crate) fn fetch(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    limit: Option<usize>,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = prepare(conn, sql, args)?;
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while limit.is_none_or(|n| out.len() < n) {
        let Some(row) = rows.next()? else { break };
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(Cell::from(row.get_ref(i)?));
        }
        out.push(Row {
            columns: Arc::clone(&columns),
            values,
        });
    }
    Ok(out)
}

/// Runs SQL text without arguments, possibly several statements.
pub(crate) fn run(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.execute_batch(sql)?;
    Ok(())
}

/// A value copied out of a result row. Text stays bytes until read as text: a column may
/// hold bytes that are not UTF-8, which is an error to report, not a reason to stop.
enum Cell {
    Null,
    Integer(i64),
    Real,
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for Cell {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(_) => Self::Real,
            ValueRef::Text(t) => Self::Text(t.to_vec()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        }
    }
}

/// A result row: its values, copied out of the statement.
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Cell>,
}

impl Row {
    fn value(&self, column: &str) -> Result<&Cell, StoreError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Backend(format!("no column {column} in the result")))
    }

    fn mismatch(column: &str, wanted: &str) -> StoreError {
        StoreError::Corrupt(format!("column {column} is not {wanted}"))
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            Cell::Null => Ok(None),
            Cell::Integer(v) => Ok(Some(*v)),
            _ => Err(Self::mismatch(column, "an integer")),
        }
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => std::str::from_utf8(v)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| Self::mismatch(column, "UTF-8 text")),
            _ => Err(Self::mismatch(column, "text")),
        }
    }

    pub(crate) fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.value(column)? {
            Cell::Null => Ok(None),
            Cell::Blob(v) | Cell::Text(v) => Ok(Some(v.clone())),
            _ => Err(Self::mismatch(column, "bytes")),
        }
    }
}

/// A connection of the readers' pool, returned to it when dropped.
pub(crate) struct Pooled {
    // Declared before the permit, so dropped before it: whoever holds a permit finds a
    // connection free.
    conn: tokio::sync::OwnedMutexGuard<Connection>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// How long a read waits for a free reader before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// Reader connections: a fixed set opened with the store, one permit each.
pub(crate) struct Pool {
    conns: Vec<Arc<tokio::sync::Mutex<Connection>>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Pool {
    pub(crate) fn open(options: &Options, size: usize) -> Result<Self, StoreError> {
        let conns = (0..size.max(1))
            .map(|_| options.open().map(|c| Arc::new(tokio::sync::Mutex::new(c))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            permits: Arc::new(tokio::sync::Semaphore::new(conns.len())),
            conns,
        })
    }

    /// A free connection, waiting for one if all are in use, at most [`ACQUIRE_TIMEOUT`].
    pub(crate) async fn acquire(&self) -> Result<Pooled, StoreError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| StoreError::Backend("no SQLite reader became free in time".into()))?
            .map_err(|_| StoreError::Backend("the SQLite reader pool is closed".into()))?;
        self.conns
            .iter()
            .find_map(|c| Arc::clone(c).try_lock_owned().ok())
            .map(|conn| Pooled { conn, _permit: permit })
            .ok_or_else(|| StoreError::Backend("no SQLite reader is free although a permit was".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_sees_numbered_placeholders() {
        assert_eq!(
            sqlite_text("SELECT $1, '$' || $12 FROM t"),
            "SELECT ?1, '$' || ?12 FROM t"
        );
        assert_eq!(sqlite_text("SELECT $1, $2"), "SELECT ?, ?");
        assert!(matches!(sqlite_text("SELECT 1"), std::borrow::Cow::Borrowed(_)));
    }

    /// SQLite before 3.51.3 can lose committed pages when a checkpoint on one connection meets
    /// a write that restarts the WAL on another (the "WAL-reset" bug, fixed upstream in
    /// 3.51.3), which is exactly the store's arrangement: a checkpointer thread beside the
    /// writer. A vault under load on 3.46 lost two audit entries, most likely that way. The bundled
    /// library must stay past the fix.
    #[test]
    fn the_linked_sqlite_has_the_wal_reset_fix() {
        assert!(
            rusqlite::version_number() >= 3_051_003,
            "SQLite {} is linked; 3.51.3 or later is required",
            rusqlite::version()
        );
    }

    #[test]
    fn a_text_of_two_statements_is_refused_not_half_run() -> Result<(), StoreError> {
        let conn = Connection::open_in_memory()?;
        run(&conn, "CREATE TABLE t (a INTEGER)")?;
        let both = execute(&conn, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", &[]);
        assert!(matches!(both, Err(StoreError::Backend(_))), "{both:?}");
        assert!(fetch(&conn, "SELECT a FROM t; DELETE FROM t", &[], None).is_err());
        assert!(fetch(&conn, "SELECT a FROM t", &[], None)?.is_empty(), "nothing ran");
        assert_eq!(
            execute(&conn, "INSERT INTO t VALUES (3);  ", &[])?,
            1,
            "a closing `;` is one statement"
        );
        Ok(())
    }

    #[test]
    fn arguments_bind_by_number_and_rows_decode_by_type() -> Result<(), StoreError> {
        let conn = Connection::open_in_memory()?;
        run(&conn, "CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")?;
        let n = execute(
            &conn,
            "INSERT INTO t VALUES ($1, $2, $3), ($4, $5, $6)",
            &[
                Arg::Int(1),
                Arg::Text("one"),
                Arg::Bytes(b"\x00\x01"),
                Arg::OptInt(None),
                Arg::OptText(None),
                Arg::OptBytes(None),
            ],
        )?;
        assert_eq!(n, 2);
        // Out of order: `$2` before `$1`.
        let rows = fetch(
            &conn,
            "SELECT a, b, c FROM t WHERE b = $2 OR a = $1",
            &[Arg::Int(7), Arg::Text("one")],
            None,
        )?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].opt_int("a")?, Some(1));
        assert_eq!(rows[0].opt_text("b")?.as_deref(), Some("one"));
        assert_eq!(rows[0].opt_bytes("c")?, Some(vec![0, 1]));
        let all = fetch(&conn, "SELECT a, b, c FROM t ORDER BY a IS NULL", &[], Some(5))?;
        assert_eq!(all[1].opt_int("a")?, None);
        assert!(matches!(all[0].opt_int("b"), Err(StoreError::Corrupt(_))));
        assert!(matches!(all[0].opt_int("nope"), Err(StoreError::Backend(_))));
        // Text that is not UTF-8 is an error when read as text, and readable as bytes.
        let odd = fetch(&conn, "SELECT CAST(x'ff00' AS TEXT) AS t", &[], None)?;
        assert!(matches!(odd[0].opt_text("t"), Err(StoreError::Corrupt(_))));
        assert_eq!(odd[0].opt_bytes("t")?, Some(vec![0xff, 0]));
        // A read reports no changes, whatever the previous write changed.
        assert_eq!(execute(&conn, "SELECT a FROM t", &[])?, 0);
        assert!(matches!(
            execute(&conn, "SELECT $1, $2", &[Arg::Int(1)]),
            Err(StoreError::Backend(_))
        ));
        Ok(())
    }

    /// A scan must not hold up the runtime's other tasks: on a runtime of one worker thread,
    /// a task spawned beside a blocking scan runs while the scan is still under way.
    #[test]
    fn scans_leave_the_runtime_to_other_tasks() -> Result<(), Box<dyn std::error::Error>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let seen = |scan: bool| -> Result<bool, Box<dyn std::error::Error>> {
            let other_ran = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&other_ran);
            let saw = runtime.block_on(async move {
                let scan_task = tokio::spawn(async move {
                    off_runtime_if(scan, || {
                        // Stands for a long statement: while it runs, has the other task run?
                        for _ in 0..200 {
                            if flag.load(Ordering::SeqCst) {
                                return true;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        false
                    })
                });
                tokio::task::yield_now().await;
                let other = tokio::spawn(async move { other_ran.store(true, Ordering::SeqCst) });
                let saw = scan_task.await;
                let _ = other.await;
                saw
            })?;
            Ok(saw)
        };
        assert!(seen(true)?, "a scan kept the only worker thread");
        // The check itself can fail: a statement run in place does keep it.
        assert!(!seen(false)?);
        Ok(())
    }

    #[test]
    fn unique_violations_are_conflicts() -> Result<(), StoreError> {
        let conn = Connection::open_in_memory()?;
        run(&conn, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT UNIQUE)")?;
        execute(&conn, "INSERT INTO t (b) VALUES ($1)", &[Arg::Text("x")])?;
        let err = execute(&conn, "INSERT INTO t (b) VALUES ($1)", &[Arg::Text("x")]);
        assert!(matches!(err, Err(StoreError::Conflict(ref c)) if c == "t.b"), "{err:?}");
        Ok(())
    }
}
