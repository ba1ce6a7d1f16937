//! Change notifications between server nodes sharing one PostgreSQL database, so that each
//! node's caches of subjects' ledgers and of principals can be invalidated when another node
//! changes them. A change is announced inside the transaction that makes it (`pg_notify`,
//! delivered by PostgreSQL when that transaction commits, never if it rolls back); every node
//! listens on one channel ([`Changes`]). On SQLite there are no other nodes (the data
//! directory admits one process), so nothing is sent.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use crate::StoreError;
use crate::sql::{Conn, Dialect, Stmt};

/// The PostgreSQL channel the notifications travel on.
const CHANNEL: &str = "custodia_changes";
/// How long to wait before subscribing again after the listener's connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// What a node learns from the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A ledger entry was appended for this subject.
    Ledger(String),
    /// This principal was revoked, or its key rotated.
    Principal(String),
    /// A collection was put in read-only mode or taken out of it.
    ReadOnly,
    /// The listener lost its subscription: notifications may be missed until [`Change::Resumed`];
    /// nothing read meanwhile may be cached.
    Down,
    /// The listener is subscribed again; notifications sent while it was away are lost, so
    /// everything cached before may be stale.
    Resumed,
}

impl Change {
    fn payload(&self) -> Option<String> {
        match self {
            Self::Ledger(subject) => Some(format!("ledger:{subject}")),
            Self::Principal(id) => Some(format!("principal:{id}")),
            Self::ReadOnly => Some("read_only:".to_owned()),
            Self::Down | Self::Resumed => None,
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, key) = payload.split_once(':')?;
        match kind {
            "ledger" => Some(Self::Ledger(key.to_owned())),
            "principal" => Some(Self::Principal(key.to_owned())),
            "read_only" => Some(Self::ReadOnly),
            _ => None,
        }
    }
}

/// Announces `change` to every node when the transaction `conn` is in commits (PostgreSQL);
/// nothing on SQLite.
pub(crate) async fn announce(conn: &mut Conn<'_>, change: &Change) -> Result<(), StoreError> {
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let Some(payload) = change.payload() else {
        return Ok(());
    };
    conn.execute(
        Stmt::new("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload.as_str()),
    )
    .await?;
    Ok(())
}

/// The notifications of every node (this one included), in commit order.
pub struct Changes {
    pool: PgPool,
    listener: Option<PgListener>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("subscribed", &self.listener.is_some())
            .finish()
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

impl Changes {
    /// Subscribes; returns once the subscription is in place, so that every change committed
    /// from then on is seen.
    pub(crate) async fn subscribe(pool: PgPool) -> Result<Self, StoreError> {
        let listener = subscribe(&pool).await?;
        Ok(Self {
            pool,
            listener: Some(listener),
        })
    }

    /// The next change. A lost connection is reported ([`Change::Down`], then
    /// [`Change::Resumed`] once subscribed again), never hidden.
    pub async fn next(&mut self) -> Change {
        loop {
            let Some(listener) = &mut self.listener else {
                match subscribe(&self.pool).await {
                    Ok(listener) => {
                        self.listener = Some(listener);
                        return Change::Resumed;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to change notifications; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(change) = Change::parse(notification.payload()) {
                        return change;
                    }
                }
                // The connection dropped and the listener subscribed again on a new one
                // (sqlx's eager reconnect): whatever was sent in between is lost.
                Ok(None) => return Change::Resumed,
                Err(e) => {
                    tracing::warn!(error = %e, "change notifications lost; caches off until subscribed again");
                    self.listener = None;
                    return Change::Down;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [Change::Ledger("cust_42".into()), Change::Principal("prn_1".into())] {
            assert_eq!(Change::parse(&change.payload().unwrap()), Some(change));
        }
        assert_eq!(Change::parse("other:x"), None);
        assert_eq!(Change::parse("nothing"), None);
    }
}
