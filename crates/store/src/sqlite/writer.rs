//! Group commit: one task owns SQLite's single write connection and commits the writes of
//! every request waiting at that moment in one transaction, each job in its own savepoint. A
//! request is answered only after the transaction holding its write has committed (with
//! `synchronous=FULL`, after the WAL is on disk). One fsync then serves a whole batch instead
//! of one request, which is what lets durable writes scale with concurrency.
//!
//! Two writes have a shape known in advance and are merged across requests into multi-row
//! statements: record creations and audit appends. Every statement is a round trip to sqlx's
//! connection thread, and under load those round trips, not SQLite itself, bound how many
//! writes one connection can make.

use std::path::{Path, PathBuf};

use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::repo::{Audit, Records};
use crate::sql::Conn;
use crate::tx::{BoxFuture, Tx};
use crate::{AuditRow, NewRecord, ReadWrite, StoreError};

/// Most writes committed together.
const MAX_BATCH: usize = 512;

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

/// Answers a request once its batch's fate is known: `Some(error)` if the commit failed.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One request's job: runs inside the batch transaction, and says whether it succeeded (else
/// its savepoint is rolled back) and how to answer.
type Job = Box<dyn for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, (bool, Completion)> + Send>;
type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A write waiting for the next batch.
enum Op {
    /// Record creations with their audit entries, batched with multi-row statements, and
    /// audit entries of refusals of the same call: all in one transaction.
    /// The last reply answers once the batch committed, whatever the records' fate.
    Inserts(Vec<(NewRecord, Option<AuditRow>, Reply)>, Vec<AuditRow>, Reply),
    /// Audit entries on their own (reads and refusals): all of a batch's go in one statement.
    Audit(Vec<AuditRow>, Reply),
    /// Any other write, run in its own savepoint.
    Job(Job),
}

/// The sending side: cheap to share between request tasks.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Op>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite writer has stopped".into())
}

/// The answer of a write whose own result was `result`, once its batch's commit is known.
fn answer<T>(result: Result<T, StoreError>, commit_error: Option<&StoreError>) -> Result<T, StoreError> {
    match commit_error {
        Some(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
        None => result,
    }
}

impl Writer {
    /// Starts the writer task on `conn`; `wal` is the write-ahead log it keeps bounded (none
    /// for a read-only store).
    pub(crate) fn start(conn: SqliteConnection, wal: Option<PathBuf>) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(conn, rx, wal));
        Self { jobs }
    }

    async fn send(&self, op: Op) -> Result<(), StoreError> {
        self.jobs.send(op).await.map_err(|_| stopped())
    }

    /// Inserts records with their audit entries, and `refusals` (audit entries on their own),
    /// all in the next batch; returns each record's result once that batch committed.
    pub(crate) async fn insert_records(
        &self,
        records: Vec<(NewRecord, Option<AuditRow>)>,
        refusals: Vec<AuditRow>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let (items, answers): (Vec<_>, Vec<_>) = records
            .into_iter()
            .map(|(record, audit)| {
                let (tx, rx) = oneshot::channel();
                ((record, audit, tx), rx)
            })
            .unzip();
        let (tx, committed) = oneshot::channel();
        self.send(Op::Inserts(items, refusals, tx)).await?;
        committed.await.map_err(|_| stopped())??;
        let mut results = Vec::with_capacity(answers.len());
        for rx in answers {
            results.push(rx.await.map_err(|_| stopped())?);
        }
        Ok(results)
    }

    /// Appends audit entries in the next batch; returns once that batch has committed.
    pub(crate) async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Audit(rows, tx)).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `job` in the next batch and returns its result once that batch has committed.
    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |t| {
            Box::pin(async move {
                let result = job(t).await;
                let ok = result.is_ok();
                let completion: Completion = Box::new(move |commit_error| {
                    let _ = tx.send(answer(result, commit_error));
                });
                (ok, completion)
            })
        });
        self.send(Op::Job(job)).await?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Runs a transaction-control statement (prepared once and cached, like every statement).
async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    Conn::Sqlite(conn).execute(crate::sql::Stmt::new(sql)).await.map(drop)
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Op>, wal: Option<PathBuf>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut next_try = WAL_RESTART_BYTES;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut completions = Vec::with_capacity(batch.len());
        let outcome = run_batch(&mut conn, batch.drain(..), &mut completions).await;
        let error = match outcome {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "SQLite batch failed; rolling back");
                let _ = exec(&mut conn, "ROLLBACK").await;
                Some(e)
            }
        };
        for complete in completions {
            complete(error.as_ref());
        }
        if let Some(wal) = &wal {
            next_try = bound_wal(&mut conn, wal, next_try).await;
        }
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
async fn bound_wal(conn: &mut SqliteConnection, wal: &Path, next_try: u64) -> u64 {
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

async fn run_batch(
    conn: &mut SqliteConnection,
    ops: impl Iterator<Item = Op>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let mut inserts = Vec::new();
    let mut audits = Vec::new();
    for op in ops {
        match op {
            Op::Inserts(records, refusals, reply) => {
                inserts.extend(records);
                audits.extend(refusals);
                completions.push(Box::new(move |e: Option<&StoreError>| {
                    let _ = reply.send(answer(Ok(()), e));
                }));
            }
            Op::Audit(rows, reply) => {
                audits.extend(rows);
                // Audit-only entries cannot fail one by one: they are plain appends. If the
                // statement fails, the whole batch fails, and with it every request waiting
                // on it (fail closed).
                completions.push(Box::new(move |e: Option<&StoreError>| {
                    let _ = reply.send(answer(Ok(()), e));
                }));
            }
            Op::Job(job) => {
                // Keep the order of writes: pending inserts go first.
                insert_group(conn, std::mem::take(&mut inserts), &mut audits, completions).await?;
                exec(conn, "SAVEPOINT request").await?;
                let (ok, completion) = job(Tx::new(Conn::Sqlite(conn))).await;
                completions.push(completion);
                if !ok {
                    exec(conn, "ROLLBACK TO request").await?;
                }
                exec(conn, "RELEASE request").await?;
            }
        }
    }
    insert_group(conn, inserts, &mut audits, completions).await?;
    Audit::<ReadWrite>::new(Conn::Sqlite(conn), None)
        .append(&audits)
        .await?;
    exec(conn, "COMMIT").await
}

/// Inserts a group of records with multi-row statements, or one by one if that fails; the
/// audit entries of those inserted join `audits`.
async fn insert_group(
    conn: &mut SqliteConnection,
    group: Vec<(NewRecord, Option<AuditRow>, Reply)>,
    audits: &mut Vec<AuditRow>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    if group.is_empty() {
        return Ok(());
    }
    exec(conn, "SAVEPOINT insert_group").await?;
    let records: Vec<&NewRecord> = group.iter().map(|(r, _, _)| r).collect();
    let results = match Records::<ReadWrite>::new(Conn::Sqlite(conn))
        .insert_many(&records)
        .await
    {
        Ok(results) => results,
        Err(_) => {
            exec(conn, "ROLLBACK TO insert_group").await?;
            let mut results = Vec::with_capacity(records.len());
            for record in records {
                exec(conn, "SAVEPOINT request").await?;
                let result = Records::<ReadWrite>::new(Conn::Sqlite(conn)).insert(record).await;
                if result.is_err() {
                    exec(conn, "ROLLBACK TO request").await?;
                }
                exec(conn, "RELEASE request").await?;
                results.push(result);
            }
            results
        }
    };
    exec(conn, "RELEASE insert_group").await?;
    for (result, (_, audit, reply)) in results.into_iter().zip(group) {
        if result.is_ok() {
            audits.extend(audit);
        }
        completions.push(Box::new(move |e: Option<&StoreError>| {
            let _ = reply.send(answer(result, e));
        }));
    }
    Ok(())
}
