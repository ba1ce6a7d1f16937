//! Alerts to the organisation's own security channel (`[operators] alert_webhook`): a
//! break-glass taken, training about to lapse. Signed like Art. 19 notices
//! (`Custodia-Signature`, HMAC-SHA256 under a secret of their own that `custodia
//! webhook-secret --alerts` prints); best effort, sent at once (the audit log is the record).
//! Bodies name operators by id and login name, never customers.

use serde_json::json;

use crate::audit::AuditEvent;
use crate::notify::{Webhook, signature_header};
use crate::{Timestamp, Vault, VaultError};

/// Who writes the reminder entries.
const REMINDER_PRINCIPAL: &str = "training-reminders";
/// Reminders go out at most this often (a little under a day, so a daily job is never early).
const REMIND_EVERY_MS: i64 = 20 * 3_600_000;

impl Vault {
    /// The secret (64 hex digits) alerts are signed with, for the receiver.
    pub fn alert_secret(&self) -> Result<zeroize::Zeroizing<String>, VaultError> {
        Ok(zeroize::Zeroizing::new(hex::encode(self.keys.alert_secret()?.expose())))
    }

    /// `body` as a signed alert to `[operators] alert_webhook`; `None` when none is set.
    pub fn alert(&self, now: Timestamp, body: &serde_json::Value) -> Result<Option<Webhook>, VaultError> {
        let Some(url) = self.registry.operators.alert_webhook.clone() else {
            return Ok(None);
        };
        let body = serde_json::to_string(body).map_err(|e| VaultError::internal(&e))?;
        let signature = signature_header(
            self.keys.alert_secret()?.expose(),
            now.0.div_euclid(1000),
            body.as_bytes(),
        );
        // A fresh id each, so a receiver that drops repeats drops only true repeats.
        let id = i64::from_be_bytes(custodia_crypto::random_array::<8>()?) & i64::MAX;
        Ok(Some(Webhook {
            url,
            notification_id: id,
            signature,
            body,
        }))
    }

    /// The reminders due at `now`: for each active operator with a required course expiring
    /// within its reminder period (or lapsed, or missing), a `training.reminder` audit entry
    /// and an alert (when a webhook is set). Run once a day.
    pub async fn remind_training(&self, now: Timestamp) -> Result<Vec<Webhook>, VaultError> {
        // Once a day, however often the server starts.
        let recent = custodia_store::AuditQuery {
            action: Some("training.reminder".to_owned()),
            from: Some(now.0 - REMIND_EVERY_MS),
            ..custodia_store::AuditQuery::default()
        };
        if !self
            .store
            .reader()
            .await?
            .audit()
            .query(&recent, 0, 1)
            .await?
            .is_empty()
        {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        let mut alerts = Vec::new();
        for (operator, courses) in self.training_reminders(now).await? {
            let names: Vec<String> = courses.iter().map(|c| format!("{}:{}", c.course, c.status)).collect();
            let event = AuditEvent::unauthenticated("training.reminder", REMINDER_PRINCIPAL.to_owned())
                .detail("operator", operator.operator_id.clone())
                .detail("courses", names.join(","));
            rows.push(self.audit_row(&event, now, None)?);
            let body = json!({
                "kind": "training_reminder",
                "operator_id": operator.operator_id,
                "operator": operator.name,
                "courses": courses,
                "at": now.to_rfc3339(),
            });
            alerts.extend(self.alert(now, &body)?);
        }
        if !rows.is_empty() {
            self.append_audit_rows(&rows).await?;
        }
        Ok(alerts)
    }
}
