//! Group commit: one task owns SQLite's single write connection and commits the writes of
//! every request waiting at that moment in one transaction, each in its own savepoint. A
//! request is answered only after the transaction holding its write has committed (with
//! `synchronous=FULL`, after the WAL is on disk). One fsync then serves a whole batch instead
//! of one request, which is what lets durable writes scale with concurrency.

use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{AuditRow, NewRecord, StoreError};

/// Most writes committed together.
const MAX_BATCH: usize = 512;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// Answers a request once its batch's fate is known: `Some(error)` if the commit failed.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One request's write: runs on the connection inside the batch transaction, and says
/// whether it succeeded (else its savepoint is rolled back) and how to answer.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

/// A write waiting for the next batch.
enum Op {
    /// A record creation: the common write, batched with multi-row statements.
    Insert(Box<NewRecord>, oneshot::Sender<Result<(), StoreError>>),
    /// Audit entries on their own (reads and refusals): all of a batch's go in one statement.
    Audit(Vec<AuditRow>, oneshot::Sender<Result<(), StoreError>>),
    /// Any other write, run in its own savepoint.
    Job(Job),
}

/// The sending side: cheap to share between request tasks.
pub(super) struct Writer {
    jobs: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the writer task on `conn`.
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(conn, rx));
        Self { jobs }
    }

    /// Inserts a record in the next batch; returns once that batch has committed.
    pub(super) async fn insert_record(&self, record: NewRecord) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Op::Insert(Box::new(record), tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Appends audit entries in the next batch; returns once that batch has committed.
    pub(super) async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(Op::Audit(rows, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `op` in the next batch and returns its result once that batch has committed.
    pub(super) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                let ok = result.is_ok();
                let completion: Completion = Box::new(move |commit_error| {
                    let answer = match commit_error {
                        Some(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
                        None => result,
                    };
                    let _ = tx.send(answer);
                });
                (ok, completion)
            })
        });
        self.jobs.send(Op::Job(job)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite writer has stopped".into())
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
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
    let mut audit_replies = Vec::new();
    for op in ops {
        match op {
            Op::Insert(record, reply) => inserts.push((*record, reply)),
            Op::Audit(rows, reply) => {
                audits.extend(rows);
                audit_replies.push(reply);
            }
            Op::Job(job) => {
                // Keep the order of writes: pending inserts go first.
                insert_group(conn, std::mem::take(&mut inserts), completions).await?;
                exec(conn, "SAVEPOINT request").await?;
                let (ok, completion) = job(conn).await;
                completions.push(completion);
                if !ok {
                    exec(conn, "ROLLBACK TO request").await?;
                }
                exec(conn, "RELEASE request").await?;
            }
        }
    }
    insert_group(conn, inserts, completions).await?;
    // Audit-only entries cannot fail one by one: they are plain appends. If the statement
    // fails, the whole batch fails, and with it every request waiting on it (fail closed).
    // Their answers are registered first, so that a failure reaches them too.
    for reply in audit_replies {
        completions.push(Box::new(move |commit_error: Option<&StoreError>| {
            let _ = reply.send(match commit_error {
                Some(e) => Err(StoreError::Backend(format!("audit append failed: {e}"))),
                None => Ok(()),
            });
        }));
    }
    let refs: Vec<&AuditRow> = audits.iter().collect();
    super::insert_audit(conn, &refs).await?;
    exec(conn, "COMMIT").await
}

/// Inserts a group of records with multi-row statements, or one by one if that fails.
async fn insert_group(
    conn: &mut SqliteConnection,
    group: Vec<(NewRecord, oneshot::Sender<Result<(), StoreError>>)>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    if group.is_empty() {
        return Ok(());
    }
    let (records, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
    exec(conn, "SAVEPOINT insert_group").await?;
    let results = match super::batch_insert::insert_many(conn, &records).await {
        Ok(results) => results,
        Err(_) => {
            exec(conn, "ROLLBACK TO insert_group").await?;
            let mut results = Vec::with_capacity(records.len());
            for record in records {
                exec(conn, "SAVEPOINT request").await?;
                let result = super::insert_record(conn, record).await;
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
    for (result, reply) in results.into_iter().zip(replies) {
        completions.push(Box::new(move |commit_error: Option<&StoreError>| {
            let answer = match commit_error {
                Some(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
                None => result,
            };
            let _ = reply.send(answer);
        }));
    }
    Ok(())
}
