//! PostgreSQL, for scale: several stateless server nodes share one database (or a
//! PostgreSQL-compatible distributed engine). The SQL is the SQLite store's (`repo/`); here
//! is only how connections and transactions are had.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::mpsc;

use crate::group_commit::{self, Integrity, MAX_BATCH, Op, Writer};
use crate::sql::{Conn, Stmt};
use crate::tx::{BoxFuture, Reader, ReaderConn, Tx};
use crate::{StoreError, schema};

pub(crate) struct Postgres {
    pool: PgPool,
    /// Record creations and audit appends, group-committed ([`group_commit`]). Its batcher
    /// task ends when this is dropped, after the batch in hand: never aborted mid-batch,
    /// which would hand a connection back to the pool inside a transaction (holding the
    /// audit sequencer, on every node's way).
    pub(crate) writer: Writer,
}

/// Commits the creations and audit appends waiting at each moment in one transaction on a
/// connection of the pool: the audit sequencer (an advisory lock held through the commit) is
/// then taken once per batch, not once per request.
async fn batcher(pool: PgPool, mut rx: mpsc::Receiver<Op>, integrity: Integrity) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(error = %e, "no PostgreSQL connection for a batch of writes");
                // Dropping the batch answers each of its requests with an error.
                batch.clear();
                continue;
            }
        };
        if let Err(e) = group_commit::commit(&mut Conn::Postgres(&mut conn), &integrity, batch.drain(..)).await {
            tracing::error!(error = %e, "PostgreSQL batch failed and was rolled back");
            // The connection may be mid-transaction if the rollback failed: not reused.
            conn.detach();
        }
    }
}

impl Postgres {
    fn new(pool: PgPool) -> Self {
        let (writer, rx) = Writer::channel(false);
        tokio::spawn(batcher(pool.clone(), rx, writer.integrity.clone()));
        Self { pool, writer }
    }

    /// Connects to `url` and migrates the schema (serialized across nodes by an advisory lock)
    /// up to `target`.
    pub(crate) async fn connect(url: &str, target: i64) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        let mut tx = pool.begin().await?;
        schema::migrate(&mut Conn::Postgres(&mut tx), target).await?;
        tx.commit().await?;
        Ok(Self::new(pool))
    }

    /// Connects to `url` with every transaction read-only (PostgreSQL refuses every write),
    /// for verification. The schema must be current.
    pub(crate) async fn connect_read_only(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let mut conn = pool.acquire().await?;
        schema::require_current(&mut Conn::Postgres(&mut conn)).await?;
        drop(conn);
        Ok(Self::new(pool))
    }

    /// Runs `job` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    pub(crate) async fn write<T>(
        &self,
        job: impl for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = job(Tx::new(Conn::Postgres(&mut tx), &self.writer.integrity)).await;
        match result {
            Ok(value) => {
                commit(tx).await?;
                Ok(value)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn reader(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: ReaderConn::Postgres(self.pool.acquire().await?),
            bindings: self.writer.integrity.bindings.clone(),
        })
    }

    /// Runs `work` only if no other node runs the job `lock` now: a transaction-scoped advisory
    /// lock, released when the transaction ends (also when this process dies).
    pub(crate) async fn exclusively<T>(
        &self,
        lock: i64,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = Conn::Postgres(&mut tx)
            .fetch_optional(Stmt::new("SELECT pg_try_advisory_xact_lock($1) AS leader").bind(lock))
            .await?;
        let leader = match row {
            Some(crate::sql::DbRow::Postgres(r)) => sqlx::Row::try_get::<bool, _>(&r, "leader")?,
            _ => false,
        };
        let out = if leader { Some(work.await) } else { None };
        commit(tx).await?;
        Ok(out)
    }
}

/// Commits `tx`, or fails if a statement of it failed. PostgreSQL answers `COMMIT` in a
/// transaction that a failed statement aborted with a rollback, not an error, so a job that
/// went on after a statement's error (deciding it did not matter) would be told its writes
/// landed when none did. Any statement in such a transaction fails: one is asked first.
async fn commit(mut tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), StoreError> {
    if let Err(e) = Conn::Postgres(&mut tx).execute(Stmt::new("SELECT 1")).await {
        tx.rollback().await?;
        return Err(e);
    }
    tx.commit().await?;
    Ok(())
}
