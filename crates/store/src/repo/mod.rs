//! Typed repositories, one per table family, each written once for both backends over
//! [`Conn`](crate::sql::Conn). Read methods exist on every access; write methods only on
//! [`ReadWrite`](crate::ReadWrite), which only a [`Tx`](crate::Tx) hands out.

pub(crate) mod audit;
mod erasures;
mod incidents;
mod ledger;
mod meta;
mod notices;
mod notifications;
mod operators;
mod principals;
mod records;
mod requests;
mod retention;
pub(crate) mod subjects;
pub(crate) mod tally;
mod tokens;

pub use audit::{Audit, AuditChunk};
pub use erasures::Erasures;
pub use incidents::{IncidentEntryRow, IncidentRow, Incidents, ReadOnlyRow, TimelineChange};
pub use ledger::{LEDGER_SEALED, Ledger};
pub use meta::Meta;
pub use notices::{NoticeRow, Notices};
pub use notifications::Notifications;
pub use operators::{
    Attempt, BreakGlassRow, OperatorRow, Operators, SessionRow, SessionsOf, TRAINING_SEALS_PENDING, TrainingRow,
};
pub use principals::Principals;
pub use records::{BINDING_SEALS_PENDING, HeldValues, PageOf, RecordCursor, Records, StoredWeight, Target, UsableBy};
pub use requests::{FORGOTTEN_TEXT, RequestQuery, Requests};
pub use retention::{BindingRows, BindingTimes, BoundValue, DueCursor, Ending, HeldCount, HoldRow, Retention};
pub use subjects::{KeyCursor, KeyLock, Subjects};
pub use tally::{ACCESS_PENDING, AccessCheck, AccessRow, AccessSealer, Sealer, Tallies};
pub use tokens::{HeldToken, TokenHolding, Tokens};

/// Declares a repository: a connection borrowed for its lifetime, and its access.
macro_rules! repository {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a, A> {
            conn: crate::sql::Conn<'a>,
            _access: std::marker::PhantomData<A>,
        }

        impl<'a, A> $name<'a, A> {
            pub(crate) fn new(conn: crate::sql::Conn<'a>) -> Self {
                Self {
                    conn,
                    _access: std::marker::PhantomData,
                }
            }
        }
    };
    // A repository that reads or writes purpose bindings: it holds the vault's binding sealer
    // as installed when it was made (`BindingSeal::get`; `None`: none installed yet).
    ($(#[$doc:meta])* $name:ident, sealing bindings) => {
        $(#[$doc])*
        pub struct $name<'a, A> {
            conn: crate::sql::Conn<'a>,
            bindings: Option<std::sync::Arc<dyn crate::repo::Sealer>>,
            _access: std::marker::PhantomData<A>,
        }

        impl<'a, A> $name<'a, A> {
            pub(crate) fn new(
                conn: crate::sql::Conn<'a>,
                bindings: Option<std::sync::Arc<dyn crate::repo::Sealer>>,
            ) -> Self {
                Self {
                    conn,
                    bindings,
                    _access: std::marker::PhantomData,
                }
            }
        }
    };
}
pub(crate) use repository;

/// The vault's sealer of purpose bindings, installed once the vault has read its keys
/// ([`crate::Store::seal_bindings_with`]) and shared by the writer and every reader. Until
/// then no binding can be written, and none read is taken as one (fail closed).
#[derive(Clone, Default)]
pub(crate) struct BindingSeal(std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn Sealer>>>>);

impl BindingSeal {
    pub(crate) fn set(&self, seal: std::sync::Arc<dyn Sealer>) {
        // a poisoned lock only means a panic elsewhere while holding an `Arc`: the value is whole
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seal);
    }

    pub(crate) fn get(&self) -> Option<std::sync::Arc<dyn Sealer>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
