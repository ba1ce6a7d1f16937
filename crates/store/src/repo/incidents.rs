//! Incidents (the breach register), their append-only timelines and the collections put in
//! read-only mode while one is contained. What responders wrote is sealed by the vault before
//! it gets here: the store sees times, phase and risk names, principal ids and ciphertext.

use crate::changes::{Change, announce};
use crate::sql::{DbRow, Stmt};
use crate::{ReadWrite, StoreError};

super::repository!(
    /// Incidents, timelines, read-only collections.
    Incidents
);

/// An incident. Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub incident_id: String,
    pub opened_at: i64,
    pub opened_by: String,
    /// When the organization became aware: the notification clocks start here.
    pub aware_at: i64,
    /// Title, description and detection source, sealed by the vault.
    pub sealed: Vec<u8>,
    pub phase: String,
    pub risk: String,
    pub updated_at: i64,
    /// How many entries the timeline holds, sealed by the vault with every change: entries
    /// removed from its end leave fewer. `None`: an incident from before it was kept.
    pub tally: Option<Vec<u8>>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentEntryRow {
    /// Assigned by the store; 0 when inserting.
    pub entry_id: i64,
    pub incident_id: String,
    pub at: i64,
    pub by_principal: String,
    /// What the entry records, e.g. `note`, `phase`, `scope`, `containment`.
    pub kind: String,
    /// The entry's content (JSON), sealed by the vault.
    pub sealed: Vec<u8>,
}

/// Entries appended to an incident's timeline at once, and the state it moves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineChange {
    pub incident_id: String,
    pub phase: String,
    pub risk: String,
    pub at: i64,
    /// The entries on the timeline before these (those they were numbered after).
    pub entries: i64,
    /// The sealed tally of the timeline with these appended.
    pub tally: Vec<u8>,
    pub rows: Vec<IncidentEntryRow>,
}

/// A collection in read-only mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyRow {
    pub collection: String,
    pub since: i64,
    pub incident_id: String,
    pub set_by: String,
}

fn incident_row(r: &DbRow) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        incident_id: r.text("incident_id")?,
        opened_at: r.int("opened_at")?,
        opened_by: r.text("opened_by")?,
        aware_at: r.int("aware_at")?,
        sealed: r.bytes("sealed")?,
        phase: r.text("phase")?,
        risk: r.text("risk")?,
        updated_at: r.int("updated_at")?,
        tally: r.opt_bytes("tally")?,
    })
}

fn entry_row(r: &DbRow) -> Result<IncidentEntryRow, StoreError> {
    Ok(IncidentEntryRow {
        entry_id: r.int("entry_id")?,
        incident_id: r.text("incident_id")?,
        at: r.int("at")?,
        by_principal: r.text("by_principal")?,
        kind: r.text("kind")?,
        sealed: r.bytes("sealed")?,
    })
}

fn read_only_row(r: &DbRow) -> Result<ReadOnlyRow, StoreError> {
    Ok(ReadOnlyRow {
        collection: r.text("collection")?,
        since: r.int("since")?,
        incident_id: r.text("incident_id")?,
        set_by: r.text("set_by")?,
    })
}

impl<A> Incidents<'_, A> {
    /// The incident with id `incident_id`.
    pub async fn get(&mut self, incident_id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM incidents WHERE incident_id = $1").bind(incident_id);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(incident_row)
            .transpose()
    }

    /// Every incident, the most recently discovered first (the breach register).
    pub async fn all(&mut self) -> Result<Vec<IncidentRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM incidents ORDER BY aware_at DESC, incident_id");
        self.conn.fetch_all(stmt).await?.iter().map(incident_row).collect()
    }

    /// The timeline of `incident_id`, oldest first.
    pub async fn entries(&mut self, incident_id: &str) -> Result<Vec<IncidentEntryRow>, StoreError> {
        let stmt =
            Stmt::new("SELECT * FROM incident_entries WHERE incident_id = $1 ORDER BY entry_id").bind(incident_id);
        self.conn.fetch_all(stmt).await?.iter().map(entry_row).collect()
    }

    /// The collections in read-only mode.
    pub async fn read_only(&mut self) -> Result<Vec<ReadOnlyRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM read_only_collections ORDER BY collection");
        self.conn.fetch_all(stmt).await?.iter().map(read_only_row).collect()
    }
}

impl Incidents<'_, ReadWrite> {
    /// Records a new incident. Fails with [`StoreError::Conflict`] if the id is taken.
    pub async fn insert(&mut self, row: &IncidentRow) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO incidents (incident_id, opened_at, opened_by, aware_at, sealed, phase, risk, updated_at, tally) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.incident_id.as_str())
        .bind(row.opened_at)
        .bind(row.opened_by.as_str())
        .bind(row.aware_at)
        .bind(row.sealed.as_slice())
        .bind(row.phase.as_str())
        .bind(row.risk.as_str())
        .bind(row.updated_at)
        .bind(row.tally.as_deref());
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Moves an incident to `phase` with `risk` and `tally` (the timeline's length after the
    /// entries the caller appends next, sealed); whether the incident exists. Its timeline
    /// must hold `entries` entries (those the caller numbered its new ones after), or
    /// `Conflict("incident")`: another change came first.
    pub async fn set_state(
        &mut self,
        incident_id: &str,
        (phase, risk): (&str, &str),
        at: i64,
        entries: i64,
        tally: &[u8],
    ) -> Result<bool, StoreError> {
        let stmt =
            Stmt::new("UPDATE incidents SET phase = $2, risk = $3, updated_at = $4, tally = $5 WHERE incident_id = $1")
                .bind(incident_id)
                .bind(phase)
                .bind(risk)
                .bind(at)
                .bind(tally);
        let updated = self.conn.execute(stmt).await? == 1;
        // The row is locked now (PostgreSQL), so the count below cannot move before this
        // transaction ends: the entries appended next are numbered from it.
        let count = self
            .conn
            .fetch_optional(
                Stmt::new("SELECT COUNT(*) AS n FROM incident_entries WHERE incident_id = $1").bind(incident_id),
            )
            .await?
            .map_or(Ok(0), |r| r.int("n"))?;
        if count != entries {
            return Err(StoreError::Conflict("incident".into()));
        }
        Ok(updated)
    }

    /// Appends `change`'s entries to its incident's timeline and moves its state with them;
    /// whether the incident exists (see [`Self::set_state`]).
    pub async fn extend(&mut self, change: &TimelineChange) -> Result<bool, StoreError> {
        let state = (change.phase.as_str(), change.risk.as_str());
        let found = self
            .set_state(&change.incident_id, state, change.at, change.entries, &change.tally)
            .await?;
        for row in &change.rows {
            self.append(row).await?;
        }
        Ok(found)
    }

    /// Appends an entry to an incident's timeline.
    pub async fn append(&mut self, row: &IncidentEntryRow) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO incident_entries (incident_id, at, by_principal, kind, sealed) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(row.incident_id.as_str())
        .bind(row.at)
        .bind(row.by_principal.as_str())
        .bind(row.kind.as_str())
        .bind(row.sealed.as_slice());
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Puts a collection in read-only mode; whether it was not already.
    pub async fn set_read_only(&mut self, row: &ReadOnlyRow) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO read_only_collections (collection, since, incident_id, set_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (collection) DO NOTHING",
        )
        .bind(row.collection.as_str())
        .bind(row.since)
        .bind(row.incident_id.as_str())
        .bind(row.set_by.as_str());
        let set = self.conn.execute(stmt).await? == 1;
        if set {
            announce(&mut self.conn, &Change::ReadOnly).await?;
        }
        Ok(set)
    }

    /// Takes a collection out of read-only mode; whether it was in it.
    pub async fn clear_read_only(&mut self, collection: &str) -> Result<bool, StoreError> {
        let stmt = Stmt::new("DELETE FROM read_only_collections WHERE collection = $1").bind(collection);
        let cleared = self.conn.execute(stmt).await? == 1;
        if cleared {
            announce(&mut self.conn, &Change::ReadOnly).await?;
        }
        Ok(cleared)
    }
}
