//! The embedded default: one SQLite file in the data directory, WAL mode, `synchronous=FULL`
//! (an acknowledged write survives power loss), `secure_delete` on (deleted ciphertext is
//! overwritten, not left in free pages). One writer task owns the write connection and
//! commits concurrent writes together ([`writer`]); a pool of readers runs beside it under WAL.
//! The SQL is the PostgreSQL store's (`repo/`); here is only how connections are had.

mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::sql::Conn;
use crate::tx::{Reader, ReaderConn};
use crate::{StoreError, schema};

pub(crate) use writer::Writer;

pub(crate) struct Sqlite {
    pub(crate) writer: Writer,
    reader: SqlitePool,
    checkpointer: tokio::task::JoinHandle<()>,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Copies the WAL into the database file in the background with PASSIVE checkpoints, which
/// run beside the writer and readers instead of stalling a commit the way SQLite's automatic
/// checkpoint (run by whichever connection commits past the threshold) does.
async fn checkpointer(mut conn: SqliteConnection) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = Conn::Sqlite(&mut conn).run("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

/// Makes the database file readable and writable by its owner only (0600), creating it so if
/// it is new; SQLite creates its `-wal` and `-shm` files with the database file's mode. Files
/// a looser release left behind are tightened.
fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
        }
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files.iter().filter(|f| f.exists()) {
            let mode = std::fs::metadata(file).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
        }
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed, mode 0600) the database file at `path` and migrates it up to
    /// `target`.
    pub(crate) async fn open(path: &Path, target: i64) -> Result<Self, StoreError> {
        make_private(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("secure_delete", "ON")
            // Pages are read through a memory map and kept in a larger cache: under load the
            // read and write syscalls of the default settings cost more than SQLite itself.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "MEMORY")
            // No connection checkpoints as part of a commit; the checkpointer task does it
            // beside the writer (see `checkpointer`).
            .pragma("wal_autocheckpoint", "0");
        let mut conn = options.connect().await?;
        {
            let mut tx = conn.begin().await?;
            schema::migrate(&mut Conn::Sqlite(&mut tx), target).await?;
            tx.commit().await?;
        }
        let writer = Writer::start(conn);
        let checkpointer = tokio::spawn(checkpointer(options.connect().await?));
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().clamp(2, 8) * 2);
        let reader = SqlitePoolOptions::new()
            .max_connections(u32::try_from(readers).unwrap_or(4))
            .acquire_timeout(Duration::from_secs(60))
            // A local file does not drop connections: skip the ping (a round trip to the
            // connection's thread) that would otherwise precede every query.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer,
            reader,
            checkpointer,
        })
    }

    /// Opens the database file at `path` read-only (SQLite refuses every write): for
    /// verification, which must not change what it verifies. The schema must be current.
    pub(crate) async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Schema(format!("{} does not exist", path.display())));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(30))
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384");
        let mut conn = options.connect().await?;
        schema::require_current(&mut Conn::Sqlite(&mut conn)).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer: Writer::start(conn),
            reader,
            checkpointer: tokio::spawn(async {}),
        })
    }

    pub(crate) async fn reader(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: ReaderConn::Sqlite(self.reader.acquire().await?),
        })
    }
}
