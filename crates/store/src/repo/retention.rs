//! Purpose bindings as the sweeper and the ledger see them (the expiry index, a subject's
//! bindings, their times), the rules the expiry times were computed with, subjects' last
//! activity, and legal holds. What a binding means is the core's business: this repository
//! only finds and moves rows.

use crate::repo::Target;
use crate::repo::records::{binding_holds, binding_of};
use crate::sql::{DbRow, Dialect, Stmt, placeholders};
use crate::{Activity, Binding, ReadWrite, StoreError};

super::repository!(
    /// Bindings by expiry and by subject, retention rules, activity, legal holds.
    Retention,
    sealing bindings
);

/// A binding with the value it holds: which record and field, whose, in which collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundValue {
    pub record_id: String,
    pub field: String,
    pub subject_id: String,
    pub collection: String,
    pub binding: Binding,
}

/// Where a page of [`Retention::due`] ended: its last binding's position in the expiry index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub expires_at: i64,
    pub record_id: String,
    pub field: String,
    pub purpose: String,
}

impl DueCursor {
    /// The position of `value`, to read the page after it.
    #[must_use]
    pub fn after(value: &BoundValue) -> Self {
        Self {
            expires_at: value.binding.expires_at.unwrap_or(i64::MAX),
            record_id: value.record_id.clone(),
            field: value.field.clone(),
            purpose: value.binding.purpose.clone(),
        }
    }
}

/// New times of one binding, computed again (a ledger change, an activity, a changed rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingTimes {
    pub record_id: String,
    pub field: String,
    pub purpose: String,
    pub ended_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// A binding to end if it is still as it was read: same renewal and expiry times (a write or
/// a ledger change since then moved them, and the binding is judged again later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub record_id: String,
    pub field: String,
    pub purpose: String,
    pub renewed_at: i64,
    pub expires_at: Option<i64>,
}

/// A legal hold: a subject's data, or a whole collection's, kept from the sweeper and from
/// erasure while it lasts. `reason` is the operator's text (a case reference), never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub hold_id: String,
    pub subject_id: Option<String>,
    pub collection: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

/// How many values one purpose holds of one field, and how many of those bindings a ledger
/// change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCount {
    pub collection: String,
    pub field: String,
    pub purpose: String,
    pub values: u64,
    pub ended: u64,
}

const BOUND_COLUMNS: &str = "b.record_id, b.field, b.subject_id, b.collection, b.purpose, b.bound_at, \
     b.renewed_at, b.ended_at, b.expires_at, b.seal AS binding_seal";
const HOLD_COLUMNS: &str = "hold_id, subject_id, collection, reason, created_by, created_at, released_at, \
     released_by, release_reason";

/// Which of the stored bindings a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingRows {
    /// Those that carry the vault's seal: what a purpose's use of a value may go by.
    Sealed,
    /// Every row as stored, sealed or not: what the sweeper ends and deletes.
    AsStored,
}

pub(crate) fn bound_value(row: &DbRow) -> Result<BoundValue, StoreError> {
    Ok(BoundValue {
        record_id: row.text("record_id")?,
        field: row.text("field")?,
        subject_id: row.text("subject_id")?,
        collection: row.text("collection")?,
        binding: binding_of(row)?.ok_or_else(|| StoreError::Corrupt("a binding row without a purpose".into()))?,
    })
}

impl BoundValue {
    /// The record its value is in.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            subject_id: &self.subject_id,
            collection: &self.collection,
            record_id: &self.record_id,
        }
    }
}

fn hold_row(row: &DbRow) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        hold_id: row.text("hold_id")?,
        subject_id: row.opt_text("subject_id")?,
        collection: row.opt_text("collection")?,
        reason: row.text("reason")?,
        created_by: row.text("created_by")?,
        created_at: row.int("created_at")?,
        released_at: row.opt_int("released_at")?,
        released_by: row.opt_text("released_by")?,
        release_reason: row.opt_text("release_reason")?,
    })
}

fn count(row: &DbRow, column: &str) -> Result<u64, StoreError> {
    Ok(u64::try_from(row.int(column)?).unwrap_or(0))
}

impl<A> Retention<'_, A> {
    /// At most `limit` bindings whose expiry is at or before `as_of`, in expiry order, from the
    /// start or after `after` (one range of the expiry index: what is due, not what is stored).
    pub async fn due(
        &mut self,
        as_of: i64,
        after: Option<&DueCursor>,
        limit: i64,
    ) -> Result<Vec<BoundValue>, StoreError> {
        let cursor = match after {
            Some(_) => "AND (b.expires_at, b.record_id, b.field, b.purpose) > ($3, $4, $5, $6)",
            None => "",
        };
        let mut stmt = Stmt::new(format!(
            "SELECT {BOUND_COLUMNS} FROM field_bindings b WHERE b.expires_at IS NOT NULL AND b.expires_at <= $1 \
             {cursor} ORDER BY b.expires_at, b.record_id, b.field, b.purpose LIMIT $2"
        ))
        .bind(as_of)
        .bind(limit)
        .scan();
        if let Some(c) = after {
            stmt.push(c.expires_at);
            stmt.push(c.record_id.as_str());
            stmt.push(c.field.as_str());
            stmt.push(c.purpose.as_str());
        }
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter().map(bound_value).collect()
    }

    /// How many bindings expire at or before `as_of`.
    pub async fn count_due(&mut self, as_of: i64) -> Result<u64, StoreError> {
        let stmt =
            Stmt::new("SELECT COUNT(*) AS n FROM field_bindings WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(as_of)
                .scan();
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => count(&row, "n"),
            None => Ok(0),
        }
    }

    /// Every binding of the values of `records` (all their fields): those that carry the
    /// vault's seal (`BindingRows::Sealed`, what a read may go by), or every row as stored
    /// (what the sweeper ends and deletes).
    pub async fn of_records(&mut self, records: &[&str], which: BindingRows) -> Result<Vec<BoundValue>, StoreError> {
        let mut out = Vec::new();
        // a seal covers the value's bytes: the sealed read joins them
        let from = match which {
            BindingRows::AsStored => " FROM field_bindings b",
            BindingRows::Sealed => {
                ", f.ciphertext FROM field_bindings b JOIN record_fields f ON f.record_id = b.record_id \
                 AND f.field = b.field"
            }
        };
        for chunk in records.chunks(Dialect::MAX_PARAMETERS) {
            let mut stmt = Stmt::new(format!(
                "SELECT {BOUND_COLUMNS}{from} WHERE b.record_id IN ({}) ORDER BY b.record_id, b.field, b.purpose",
                placeholders(1, chunk.len())
            ));
            for id in chunk {
                stmt.push(*id);
            }
            for row in self.conn.fetch_all(stmt).await? {
                let v = bound_value(&row)?;
                let kept = match which {
                    BindingRows::AsStored => true,
                    BindingRows::Sealed => {
                        let stored = row.opt_bytes("binding_seal")?;
                        let value = (v.target(), v.field.as_str(), &row.bytes("ciphertext")?[..]);
                        binding_holds(self.bindings.as_deref(), stored.as_deref(), value, &v.binding)
                    }
                };
                if kept {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Every binding of a subject's values.
    pub async fn of_subject(&mut self, subject_id: &str) -> Result<Vec<BoundValue>, StoreError> {
        let stmt = Stmt::new(format!(
            "SELECT {BOUND_COLUMNS} FROM field_bindings b WHERE b.subject_id = $1 ORDER BY b.record_id, b.field, b.purpose"
        ))
        .bind(subject_id);
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter().map(bound_value).collect()
    }

    /// At most `limit` bindings of `purpose`, in `(record_id, field)` order after `after`.
    pub async fn of_purpose(
        &mut self,
        purpose: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<BoundValue>, StoreError> {
        let cursor = match after {
            Some(_) => "AND (b.record_id, b.field) > ($3, $4)",
            None => "",
        };
        let mut stmt = Stmt::new(format!(
            "SELECT {BOUND_COLUMNS} FROM field_bindings b WHERE b.purpose = $1 {cursor} \
             ORDER BY b.record_id, b.field LIMIT $2"
        ))
        .bind(purpose)
        .bind(limit);
        if let Some((record_id, field)) = after {
            stmt.push(record_id);
            stmt.push(field);
        }
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter().map(bound_value).collect()
    }

    /// Whether the subject still has a record.
    pub async fn subject_has_records(&mut self, subject_id: &str) -> Result<bool, StoreError> {
        let stmt = Stmt::new("SELECT record_id FROM records WHERE subject_id = $1 LIMIT 1").bind(subject_id);
        Ok(self.conn.fetch_optional(stmt).await?.is_some())
    }

    /// How many records the subject has.
    pub async fn record_count(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        let stmt = Stmt::new("SELECT COUNT(*) AS n FROM records WHERE subject_id = $1").bind(subject_id);
        match self.conn.fetch_optional(stmt).await? {
            Some(row) => count(&row, "n"),
            None => Ok(0),
        }
    }

    /// The subject's last activity (Unix ms), if any was recorded.
    pub async fn last_activity(&mut self, subject_id: &str) -> Result<Option<i64>, StoreError> {
        let stmt = Stmt::new("SELECT last_active_at FROM subject_activity WHERE subject_id = $1").bind(subject_id);
        self.conn
            .fetch_optional(stmt)
            .await?
            .map(|row| row.int("last_active_at"))
            .transpose()
    }

    /// The rule text each purpose's expiry times were last computed with.
    pub async fn rules(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let stmt = Stmt::new("SELECT purpose, rule FROM retention_rules ORDER BY purpose");
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|row| Ok((row.text("purpose")?, row.text("rule")?)))
            .collect()
    }

    /// Values held by each purpose, by `(collection, field, purpose)`, with how many of those
    /// bindings a ledger change ended (a full pass: for reports, not for requests).
    pub async fn held_counts(&mut self) -> Result<Vec<HeldCount>, StoreError> {
        let stmt = Stmt::new(
            "SELECT collection, field, purpose, COUNT(*) AS n, COUNT(ended_at) AS ended FROM field_bindings \
             GROUP BY collection, field, purpose ORDER BY collection, field, purpose",
        )
        .scan();
        self.held(stmt).await
    }

    /// Values that only ended bindings hold any more (a consent withdrawn, an objection, an
    /// opt-out: kept for a grace period or until the sweeper comes), by the purposes of those
    /// bindings (`ended` = `values`).
    pub async fn held_only_by_ended(&mut self) -> Result<Vec<HeldCount>, StoreError> {
        let stmt = Stmt::new(
            "SELECT b.collection, b.field, b.purpose, COUNT(*) AS n, COUNT(*) AS ended FROM field_bindings b \
             WHERE b.ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM field_bindings o WHERE \
             o.record_id = b.record_id AND o.field = b.field AND o.ended_at IS NULL) \
             GROUP BY b.collection, b.field, b.purpose ORDER BY b.collection, b.field, b.purpose",
        )
        .scan();
        self.held(stmt).await
    }

    async fn held(&mut self, stmt: Stmt<'_>) -> Result<Vec<HeldCount>, StoreError> {
        self.conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(HeldCount {
                    collection: row.text("collection")?,
                    field: row.text("field")?,
                    purpose: row.text("purpose")?,
                    values: count(row, "n")?,
                    ended: count(row, "ended")?,
                })
            })
            .collect()
    }

    /// The legal holds in force (not released), oldest first.
    pub async fn active_holds(&mut self) -> Result<Vec<HoldRow>, StoreError> {
        self.holds_where("released_at IS NULL").await
    }

    /// Every legal hold, released ones too, oldest first.
    pub async fn all_holds(&mut self) -> Result<Vec<HoldRow>, StoreError> {
        self.holds_where("1 = 1").await
    }

    async fn holds_where(&mut self, condition: &str) -> Result<Vec<HoldRow>, StoreError> {
        let stmt = Stmt::new(format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE {condition} ORDER BY created_at, hold_id"
        ));
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter().map(hold_row).collect()
    }

    /// The holds in force on a subject, or on one of `collections`.
    pub async fn holds_on(&mut self, subject_id: &str, collections: &[&str]) -> Result<Vec<HoldRow>, StoreError> {
        let on_collection = if collections.is_empty() {
            String::new()
        } else {
            format!(" OR collection IN ({})", placeholders(2, collections.len()))
        };
        let mut stmt = Stmt::new(format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE released_at IS NULL AND (subject_id = $1{on_collection}) \
             ORDER BY created_at, hold_id"
        ))
        .bind(subject_id);
        for c in collections {
            stmt.push(*c);
        }
        let rows = self.conn.fetch_all(stmt).await?;
        rows.iter().map(hold_row).collect()
    }

    /// One hold by id.
    pub async fn hold(&mut self, hold_id: &str) -> Result<Option<HoldRow>, StoreError> {
        let stmt = Stmt::new(format!("SELECT {HOLD_COLUMNS} FROM legal_holds WHERE hold_id = $1")).bind(hold_id);
        self.conn.fetch_optional(stmt).await?.as_ref().map(hold_row).transpose()
    }
}

impl Retention<'_, ReadWrite> {
    /// Sets bindings' times computed again; returns how many rows changed.
    pub async fn set_times(&mut self, times: &[BindingTimes]) -> Result<u64, StoreError> {
        let mut n = 0;
        for t in times {
            let stmt = Stmt::new(
                "UPDATE field_bindings SET ended_at = $1, expires_at = $2 WHERE record_id = $3 AND field = $4 \
                 AND purpose = $5",
            )
            .bind(t.ended_at)
            .bind(t.expires_at)
            .bind(t.record_id.as_str())
            .bind(t.field.as_str())
            .bind(t.purpose.as_str());
            n += self.conn.execute(stmt).await?;
        }
        Ok(n)
    }

    /// Ends each binding that is still as it was read; says for each whether it ended.
    pub async fn end(&mut self, endings: &[Ending]) -> Result<Vec<bool>, StoreError> {
        let mut out = Vec::with_capacity(endings.len());
        for e in endings {
            let stmt = Stmt::new(
                "DELETE FROM field_bindings WHERE record_id = $1 AND field = $2 AND purpose = $3 \
                 AND renewed_at = $4 AND ((expires_at IS NULL AND $5 IS NULL) OR expires_at = $5)",
            )
            .bind(e.record_id.as_str())
            .bind(e.field.as_str())
            .bind(e.purpose.as_str())
            .bind(e.renewed_at)
            .bind(e.expires_at);
            out.push(self.conn.execute(stmt).await? == 1);
        }
        Ok(out)
    }

    /// Moves a subject's last activity forward to `at` (never back).
    pub async fn touch_activity(&mut self, subject_id: &str, at: i64) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO subject_activity (subject_id, last_active_at) VALUES ($1, $2) ON CONFLICT (subject_id) \
             DO UPDATE SET last_active_at = CASE WHEN excluded.last_active_at > subject_activity.last_active_at \
             THEN excluded.last_active_at ELSE subject_activity.last_active_at END",
        )
        .bind(subject_id)
        .bind(at);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Records a subject's activity: its last activity moves forward, and the bindings of the
    /// purposes whose retention runs from it get their new expiry (unless the ledger ended
    /// them, or they had expired by then: a value a legal hold or a restriction kept past its
    /// expiry is not brought back into use by the subject's next activity).
    pub async fn record_activity(&mut self, a: &Activity) -> Result<(), StoreError> {
        self.touch_activity(&a.subject_id, a.at).await?;
        for (purpose, expires_at) in &a.renew {
            let stmt = Stmt::new(
                "UPDATE field_bindings SET expires_at = $1 WHERE subject_id = $2 AND purpose = $3 \
                 AND ended_at IS NULL AND (expires_at IS NULL OR (expires_at < $1 AND expires_at > $4))",
            )
            .bind(*expires_at)
            .bind(a.subject_id.as_str())
            .bind(purpose.as_str())
            .bind(a.at);
            self.conn.execute(stmt).await?;
        }
        Ok(())
    }

    /// Forgets a subject's activity (a subject with nothing left).
    pub async fn forget_activity(&mut self, subject_id: &str) -> Result<(), StoreError> {
        let stmt = Stmt::new("DELETE FROM subject_activity WHERE subject_id = $1").bind(subject_id);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Clears an erased subject's id from the holds released on it (a hold in force forbids
    /// the erasure), and the free texts written about them (the reasons, which may name the
    /// person: "claim by ..."), as an erasure clears those of its requests; the rows stay, as
    /// evidence that the holds were, who placed them and when.
    pub async fn forget_subject_in_holds(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            "UPDATE legal_holds SET subject_id = NULL, reason = $2, \
             release_reason = CASE WHEN release_reason IS NULL THEN NULL ELSE $2 END \
             WHERE subject_id = $1 AND released_at IS NOT NULL",
        )
        .bind(subject_id)
        .bind(crate::repo::FORGOTTEN_TEXT);
        self.conn.execute(stmt).await
    }

    /// Records the rule a purpose's expiry times are now computed with.
    pub async fn set_rule(&mut self, purpose: &str, rule: &str, at: i64) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "INSERT INTO retention_rules (purpose, rule, applied_at) VALUES ($1, $2, $3) ON CONFLICT (purpose) \
             DO UPDATE SET rule = excluded.rule, applied_at = excluded.applied_at",
        )
        .bind(purpose)
        .bind(rule)
        .bind(at);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Places a hold.
    pub async fn place_hold(&mut self, hold: &HoldRow) -> Result<(), StoreError> {
        let stmt = Stmt::new(format!(
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(hold.hold_id.as_str())
        .bind(hold.subject_id.as_deref())
        .bind(hold.collection.as_deref())
        .bind(hold.reason.as_str())
        .bind(hold.created_by.as_str())
        .bind(hold.created_at)
        .bind(hold.released_at)
        .bind(hold.released_by.as_deref())
        .bind(hold.release_reason.as_deref());
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Releases a hold in force; false when there is none by that id (or it was released).
    pub async fn release_hold(&mut self, hold_id: &str, by: &str, at: i64, reason: &str) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "UPDATE legal_holds SET released_at = $1, released_by = $2, release_reason = $3 \
             WHERE hold_id = $4 AND released_at IS NULL",
        )
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(hold_id);
        Ok(self.conn.execute(stmt).await? == 1)
    }
}
