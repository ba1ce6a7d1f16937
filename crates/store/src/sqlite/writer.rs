//! SQLite's writer: a thread of its own, running its own single-threaded runtime, owns the
//! one write connection and commits the writes waiting at each moment together
//! ([`crate::group_commit`]). Its statements (and each batch's fsync) run there directly,
//! never on the server's runtime threads, and a request crosses threads once per batch (the
//! write in, the answer out), not once per statement. Between batches it keeps the
//! write-ahead log bounded ([`bound_wal`]).

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tokio::sync::mpsc;

use crate::StoreError;
use crate::group_commit::{self, Integrity, MAX_BATCH, Op, Writer};
use crate::sql::Conn;

/// The write-ahead log's size past which the writer restarts it (see [`bound_wal`]); also
/// the size SQLite truncates the file back to when it restarts (`journal_size_limit`).
pub(crate) const WAL_RESTART_BYTES: u64 = 64 << 20;
/// How long a restart waits for readers to leave the old log before trying again later: the
/// writes of that moment wait this long at most.
const WAL_RESTART_WAIT_MS: u32 = 100;
/// How long a connection waits on a lock otherwise (the connection's own setting).
const BUSY_TIMEOUT_MS: u32 = 30_000;
/// After a restart that could not finish, how much more the log may grow before the next try:
/// the log's growth stays bounded in bytes whatever the size of the batches.
const WAL_RESTART_STEP: u64 = 4 << 20;

/// Starts the writer thread on `conn`; `wal` is the write-ahead log it keeps bounded (none
/// for a read-only store).
pub(crate) fn start(conn: Connection, wal: Option<PathBuf>) -> Result<Writer, StoreError> {
    let (writer, rx) = Writer::channel(true);
    let integrity = writer.integrity.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Backend(format!("starting the SQLite writer: {e}")))?;
    // The thread ends when every sender is gone (the store dropped) and the last batch is
    // answered; it closes the connection.
    std::thread::Builder::new()
        .name("custodia-sqlite-writer".into())
        .spawn(move || runtime.block_on(run(conn, rx, wal, integrity)))
        .map_err(|e| StoreError::Backend(format!("starting the SQLite writer: {e}")))?;
    Ok(writer)
}

async fn run(mut conn: Connection, mut rx: mpsc::Receiver<Op>, wal: Option<PathBuf>, integrity: Integrity) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut next_try = WAL_RESTART_BYTES;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Timings at debug level (`CUSTODIA_LOG=custodia_store=debug`): where the writes'
        // latency goes, batch by batch (counts and durations only).
        let (ops, started) = (batch.len(), std::time::Instant::now());
        if let Err(e) = group_commit::commit(&mut Conn::Sqlite(&mut conn), &integrity, batch.drain(..)).await {
            tracing::error!(error = %e, "SQLite batch failed and was rolled back");
        }
        let committed = started.elapsed();
        if let Some(wal) = &wal {
            next_try = bound_wal(&mut conn, wal, next_try).await;
        }
        tracing::debug!(
            ops,
            commit_us = committed.as_micros(),
            wal_us = started.elapsed().saturating_sub(committed).as_micros(),
            "SQLite batch"
        );
    }
}

/// Keeps the write-ahead log bounded under sustained load: restarts it once it is larger than
/// `next_try`; returns the size at which to look again.
///
/// The background PASSIVE checkpoints copy the log into the database, but SQLite starts the
/// log over only when a write begins with all of it copied and no reader on it, which never
/// happens while writes and reads keep coming: the file grew without end (hundreds of MB a
/// minute of audited reads). So when it passes [`WAL_RESTART_BYTES`], the writer, between
/// batches (the requests of the last one already answered), runs a RESTART checkpoint: it
/// copies what is left, waits at most [`WAL_RESTART_WAIT_MS`] for readers still on the old
/// log (reads are short statements), and the next batch writes from the log's start, the
/// file truncated back to the limit. If readers stay, it tries again once the log has grown
/// another [`WAL_RESTART_STEP`].
async fn bound_wal(conn: &mut Connection, wal: &Path, next_try: u64) -> u64 {
    let size = std::fs::metadata(wal).map_or(0, |m| m.len());
    if size <= next_try {
        return next_try;
    }
    let mut c = Conn::Sqlite(conn);
    let restarted = async {
        c.run(&format!("PRAGMA busy_timeout = {WAL_RESTART_WAIT_MS}")).await?;
        let row = c
            .fetch_optional(crate::sql::Stmt::new("PRAGMA wal_checkpoint(RESTART)"))
            .await;
        c.run(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")).await?;
        // The first column is 1 when readers kept the log from being restarted.
        Ok::<_, StoreError>(row?.map(|r| r.int("busy")).transpose()? == Some(0))
    }
    .await;
    match restarted {
        Ok(true) => WAL_RESTART_BYTES,
        Ok(false) => size + WAL_RESTART_STEP,
        Err(e) => {
            tracing::warn!(error = %e, "restarting the write-ahead log failed; will retry");
            size + WAL_RESTART_STEP
        }
    }
}
