//! Group commit: one task commits the writes of every request waiting at that moment in one
//! transaction, each job in its own savepoint. A request is answered only after the
//! transaction holding its write has committed. One flush then serves a whole batch instead
//! of one request, which is what lets durable writes scale with concurrency.
//!
//! Two writes have a shape known in advance and are merged across requests into multi-row
//! statements: record creations and audit appends. SQLite runs every write this way (one
//! writer thread owns its one write connection, `sqlite::writer`); PostgreSQL runs these two
//! (`postgres`): every audit append there holds the audit sequencer through its commit, so one
//! transaction per request would serialize every node's requests on that lock, one flush each.

use tokio::sync::{mpsc, oneshot};

use crate::repo::audit::Linker;
use crate::repo::{Audit, BindingSeal, Records};
use crate::sql::{Conn, Dialect};
use crate::tx::{BoxFuture, Tx};
use crate::{AuditRow, NewRecord, ReadWrite, StoreError};

/// Most writes committed together.
pub(crate) const MAX_BATCH: usize = 512;

/// Answers a request once its batch's fate is known: `Some(error)` if the commit failed.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One request's job: runs inside the batch transaction, and says whether it succeeded (else
/// its savepoint is rolled back) and how to answer.
type Job = Box<dyn for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, (bool, Completion)> + Send>;
type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A write waiting for the next batch.
pub(crate) enum Op {
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
    /// What the vault installs (shared with the batching loop).
    pub(crate) integrity: Integrity,
}

/// What keeps a writer's writes checkable, installed by the vault once it has read its keys
/// and shared by the writer, its batching loop and (the binding seal) every reader.
#[derive(Clone)]
pub(crate) struct Integrity {
    /// How audit entries are linked.
    pub(crate) linker: Linker,
    /// How purpose bindings are sealed.
    pub(crate) bindings: BindingSeal,
}

fn stopped() -> StoreError {
    StoreError::Backend("the database writer has stopped".into())
}

/// The answer of a write whose own result was `result`, once its batch's commit is known.
fn answer<T>(result: Result<T, StoreError>, commit_error: Option<&StoreError>) -> Result<T, StoreError> {
    match commit_error {
        Some(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
        None => result,
    }
}

impl Writer {
    /// A writer and the receiving end its batching loop reads; `only_writer`: no other
    /// process or connection appends to the log (the audit log's tail is then checked at
    /// each append, [`Linker::tracking_tail`]).
    pub(crate) fn channel(only_writer: bool) -> (Self, mpsc::Receiver<Op>) {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        (
            Self {
                jobs,
                integrity: Integrity {
                    linker: if only_writer {
                        Linker::tracking_tail()
                    } else {
                        Linker::default()
                    },
                    bindings: BindingSeal::default(),
                },
            },
            rx,
        )
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
async fn exec(conn: &mut Conn<'_>, sql: &'static str) -> Result<(), StoreError> {
    conn.execute(crate::sql::Stmt::new(sql)).await.map(drop)
}

/// Commits one batch on `conn`: answers every request of it once the outcome is known, after
/// rolling back if it failed (`Err` then names what failed, for the log).
pub(crate) async fn commit(
    conn: &mut Conn<'_>,
    integrity: &Integrity,
    ops: impl Iterator<Item = Op>,
) -> Result<(), StoreError> {
    let mut completions = Vec::with_capacity(ops.size_hint().0);
    let started = std::time::Instant::now();
    let outcome = run_batch(conn, integrity, ops, &mut completions).await;
    integrity.linker.settle(outcome.is_ok());
    let rolled_back = match &outcome {
        Ok(()) => Ok(()),
        Err(_) => exec(conn, "ROLLBACK").await,
    };
    custodia_metrics::commit_batch(
        conn.dialect().name(),
        completions.len(),
        started.elapsed().as_secs_f64(),
    );
    for complete in completions {
        complete(outcome.as_ref().err());
    }
    outcome.and(rolled_back)
}

async fn run_batch(
    conn: &mut Conn<'_>,
    integrity: &Integrity,
    ops: impl Iterator<Item = Op>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    let Integrity { linker, bindings } = integrity;
    // SQLite: take the write lock now, not at the first write (no upgrade to fail midway).
    let begin = match conn.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    exec(conn, begin).await?;
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
                insert_group(conn, bindings, std::mem::take(&mut inserts), &mut audits, completions).await?;
                exec(conn, "SAVEPOINT request").await?;
                let tail = linker.tentative();
                let (ok, completion) = job(Tx::new(conn.reborrow(), integrity)).await;
                completions.push(completion);
                if !ok {
                    exec(conn, "ROLLBACK TO request").await?;
                    linker.restore(tail);
                }
                exec(conn, "RELEASE request").await?;
            }
        }
    }
    insert_group(conn, bindings, inserts, &mut audits, completions).await?;
    Audit::<ReadWrite>::new(conn.reborrow(), None, Some(linker))
        .append(&audits)
        .await?;
    exec(conn, "COMMIT").await
}

/// Inserts a group of records with multi-row statements, or one by one if that fails; the
/// audit entries of those inserted join `audits`.
async fn insert_group(
    conn: &mut Conn<'_>,
    bindings: &BindingSeal,
    group: Vec<(NewRecord, Option<AuditRow>, Reply)>,
    audits: &mut Vec<AuditRow>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    if group.is_empty() {
        return Ok(());
    }
    exec(conn, "SAVEPOINT insert_group").await?;
    let records: Vec<&NewRecord> = group.iter().map(|(r, _, _)| r).collect();
    let results = match Records::<ReadWrite>::new(conn.reborrow(), bindings.get())
        .insert_many(&records)
        .await
    {
        Ok(results) => results,
        Err(_) => {
            exec(conn, "ROLLBACK TO insert_group").await?;
            let mut results = Vec::with_capacity(records.len());
            for record in records {
                exec(conn, "SAVEPOINT request").await?;
                let result = Records::<ReadWrite>::new(conn.reborrow(), bindings.get())
                    .insert(record)
                    .await;
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
