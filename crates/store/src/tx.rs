//! The unit of work: a [`Tx`] is one transaction (on SQLite, one savepoint of a group-commit
//! batch) offering typed repositories that read and write; a [`Reader`] is a connection
//! offering the same repositories read-only. A repository's write methods exist only on
//! [`ReadWrite`] access, so nothing can write outside a transaction.

use std::future::Future;
use std::pin::Pin;

use crate::group_commit::Integrity;
use crate::repo::BindingSeal;
use crate::repo::{
    Audit, Erasures, Incidents, Ledger, Meta, Notices, Notifications, Operators, Principals, Records, Requests,
    Retention, Subjects, Tallies, Tokens,
};
use crate::sql::{Conn, Dialect};

/// A boxed future, as write jobs return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Read-only access: a [`Reader`]'s repositories.
#[derive(Debug)]
pub struct ReadOnly;
/// Read and write access: a [`Tx`]'s repositories.
#[derive(Debug)]
pub struct ReadWrite;

/// One transaction. Everything done through it commits together, or not at all: the
/// store commits it after the job returns `Ok`, and rolls it back on `Err`.
pub struct Tx<'c> {
    pub(crate) conn: Conn<'c>,
    /// Whether this transaction holds the audit sequencer (PostgreSQL; see `repo::audit`).
    pub(crate) sequenced: bool,
    /// How its audit entries are linked and its purpose bindings sealed.
    integrity: &'c Integrity,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: Conn<'c>, integrity: &'c Integrity) -> Self {
        Self {
            conn,
            sequenced: false,
            integrity,
        }
    }

    /// The backend.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    pub fn meta(&mut self) -> Meta<'_, ReadWrite> {
        Meta::new(self.conn.reborrow())
    }

    pub fn subjects(&mut self) -> Subjects<'_, ReadWrite> {
        Subjects::new(self.conn.reborrow())
    }

    pub fn records(&mut self) -> Records<'_, ReadWrite> {
        Records::new(self.conn.reborrow(), self.integrity.bindings.get())
    }

    pub fn ledger(&mut self) -> Ledger<'_, ReadWrite> {
        Ledger::new(self.conn.reborrow())
    }

    pub fn audit(&mut self) -> Audit<'_, ReadWrite> {
        Audit::new(
            self.conn.reborrow(),
            Some(&mut self.sequenced),
            Some(&self.integrity.linker),
        )
    }

    pub fn tokens(&mut self) -> Tokens<'_, ReadWrite> {
        Tokens::new(self.conn.reborrow())
    }

    pub fn principals(&mut self) -> Principals<'_, ReadWrite> {
        Principals::new(self.conn.reborrow())
    }

    pub fn requests(&mut self) -> Requests<'_, ReadWrite> {
        Requests::new(self.conn.reborrow())
    }

    pub fn erasures(&mut self) -> Erasures<'_, ReadWrite> {
        Erasures::new(self.conn.reborrow())
    }

    pub fn notifications(&mut self) -> Notifications<'_, ReadWrite> {
        Notifications::new(self.conn.reborrow())
    }

    pub fn retention(&mut self) -> Retention<'_, ReadWrite> {
        Retention::new(self.conn.reborrow(), self.integrity.bindings.get())
    }

    pub fn operators(&mut self) -> Operators<'_, ReadWrite> {
        Operators::new(self.conn.reborrow())
    }

    pub fn notices(&mut self) -> Notices<'_, ReadWrite> {
        Notices::new(self.conn.reborrow())
    }

    pub fn tallies(&mut self) -> Tallies<'_, ReadWrite> {
        Tallies::new(self.conn.reborrow())
    }

    pub fn incidents(&mut self) -> Incidents<'_, ReadWrite> {
        Incidents::new(self.conn.reborrow())
    }
}

/// The connection a [`Reader`] holds.
pub(crate) enum ReaderConn {
    Sqlite(crate::sqlite::conn::Pooled),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// A pooled connection for reads (outside any transaction: each statement sees the data
/// committed when it starts).
pub struct Reader {
    pub(crate) conn: ReaderConn,
    /// How purpose bindings read are checked.
    pub(crate) bindings: BindingSeal,
}

impl Reader {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.conn {
            ReaderConn::Sqlite(c) => Conn::Sqlite(c.conn()),
            ReaderConn::Postgres(c) => Conn::Postgres(c),
        }
    }

    pub fn meta(&mut self) -> Meta<'_, ReadOnly> {
        Meta::new(self.conn())
    }

    pub fn subjects(&mut self) -> Subjects<'_, ReadOnly> {
        Subjects::new(self.conn())
    }

    pub fn records(&mut self) -> Records<'_, ReadOnly> {
        let bindings = self.bindings.get();
        Records::new(self.conn(), bindings)
    }

    pub fn ledger(&mut self) -> Ledger<'_, ReadOnly> {
        Ledger::new(self.conn())
    }

    pub fn audit(&mut self) -> Audit<'_, ReadOnly> {
        Audit::new(self.conn(), None, None)
    }

    pub fn tokens(&mut self) -> Tokens<'_, ReadOnly> {
        Tokens::new(self.conn())
    }

    pub fn principals(&mut self) -> Principals<'_, ReadOnly> {
        Principals::new(self.conn())
    }

    pub fn requests(&mut self) -> Requests<'_, ReadOnly> {
        Requests::new(self.conn())
    }

    pub fn erasures(&mut self) -> Erasures<'_, ReadOnly> {
        Erasures::new(self.conn())
    }

    pub fn notifications(&mut self) -> Notifications<'_, ReadOnly> {
        Notifications::new(self.conn())
    }

    pub fn retention(&mut self) -> Retention<'_, ReadOnly> {
        let bindings = self.bindings.get();
        Retention::new(self.conn(), bindings)
    }

    pub fn operators(&mut self) -> Operators<'_, ReadOnly> {
        Operators::new(self.conn())
    }

    pub fn notices(&mut self) -> Notices<'_, ReadOnly> {
        Notices::new(self.conn())
    }

    pub fn tallies(&mut self) -> Tallies<'_, ReadOnly> {
        Tallies::new(self.conn())
    }

    pub fn incidents(&mut self) -> Incidents<'_, ReadOnly> {
        Incidents::new(self.conn())
    }
}
