//! The Art. 19 outbox: notifications to recipients, queued inside the transaction that
//! carries out a request and sent by the delivery job, and the append-only log of every
//! delivery attempt.

use crate::sql::{DbRow, Stmt};
use crate::{AttemptRow, DeliveryAttempt, DeliveryState, NewNotification, NotificationRow, ReadWrite, StoreError};

super::repository!(
    /// Notifications to recipients and their delivery log.
    Notifications
);

fn notification_row(row: &DbRow) -> Result<NotificationRow, StoreError> {
    let status = row.text("status")?;
    Ok(NotificationRow {
        id: row.int("id")?,
        request_id: row.text("request_id")?,
        recipient: row.text("recipient")?,
        action: row.text("action")?,
        payload: row.opt_text("payload")?,
        state: DeliveryState::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("notification status `{status}` is not one")))?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.opt_int("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.int("created_at")?,
        delivered_at: row.opt_int("delivered_at")?,
    })
}

fn attempt_row(row: &DbRow) -> Result<AttemptRow, StoreError> {
    Ok(AttemptRow {
        seq: row.int("seq")?,
        notification_id: row.int("notification_id")?,
        at: row.int("at")?,
        outcome: row.text("outcome")?,
        http_status: row.opt_int("http_status")?,
    })
}

impl<A> Notifications<'_, A> {
    /// The pending notifications due at `now` (Unix ms), soonest first, at most `limit`.
    pub async fn due(&mut self, now: i64, limit: i64) -> Result<Vec<NotificationRow>, StoreError> {
        let stmt = Stmt::new(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit);
        self.conn.fetch_all(stmt).await?.iter().map(notification_row).collect()
    }

    /// The notifications of a request, in the order they were queued.
    pub async fn of_request(&mut self, request_id: &str) -> Result<Vec<NotificationRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM notifications WHERE request_id = $1 ORDER BY id").bind(request_id);
        self.conn.fetch_all(stmt).await?.iter().map(notification_row).collect()
    }

    /// The delivery log of one notification, oldest first.
    pub async fn attempts(&mut self, notification_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM notification_attempts WHERE notification_id = $1 ORDER BY seq")
            .bind(notification_id);
        self.conn.fetch_all(stmt).await?.iter().map(attempt_row).collect()
    }
}

impl Notifications<'_, ReadWrite> {
    /// Queues notifications; returns their ids in order. A pending one is due at once (at its
    /// `created_at`); a [`DeliveryState::NoWebhook`] one is final and never due.
    pub async fn enqueue(&mut self, rows: &[NewNotification]) -> Result<Vec<i64>, StoreError> {
        let mut ids = Vec::with_capacity(rows.len());
        for n in rows {
            let next = (n.state == DeliveryState::Pending).then_some(n.created_at);
            let stmt = Stmt::new(
                "INSERT INTO notifications (request_id, recipient, action, payload, status, attempts, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7) RETURNING id",
            )
            .bind(&n.request_id)
            .bind(&n.recipient)
            .bind(&n.action)
            .bind(n.payload.as_deref())
            .bind(n.state.as_str())
            .bind(next)
            .bind(n.created_at);
            let row = self
                .conn
                .fetch_optional(stmt)
                .await?
                .ok_or_else(|| StoreError::Corrupt("a queued notification has no id".into()))?;
            ids.push(row.int("id")?);
        }
        Ok(ids)
    }

    /// Records an attempt: moves the notification (if it is still pending) to the attempt's
    /// state, clearing its body when that state is final, and appends the attempt to the
    /// delivery log, both in this transaction. Returns false, recording nothing, when the
    /// notification is not pending (absent, or already final).
    pub async fn record_attempt(&mut self, a: &DeliveryAttempt) -> Result<bool, StoreError> {
        let delivered_at = (a.state == DeliveryState::Delivered).then_some(a.at);
        let stmt = Stmt::new(
            "UPDATE notifications SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
             last_error = $3, delivered_at = $4, payload = CASE WHEN $1 = 'pending' THEN payload END \
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(a.state.as_str())
        .bind(a.next_attempt_at)
        .bind(a.error.as_deref())
        .bind(delivered_at)
        .bind(a.notification_id);
        if self.conn.execute(stmt).await? != 1 {
            return Ok(false);
        }
        let stmt = Stmt::new(
            "INSERT INTO notification_attempts (notification_id, at, outcome, http_status) VALUES ($1, $2, $3, $4)",
        )
        .bind(a.notification_id)
        .bind(a.at)
        .bind(a.outcome.as_str())
        .bind(a.http_status);
        self.conn.execute(stmt).await?;
        Ok(true)
    }
}
