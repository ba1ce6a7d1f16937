//! Art. 19 notifications: when a request rectifies, erases or restricts a subject's data,
//! every recipient the registry lists for the affected purposes is told, through an outbox.
//!
//! - [`Vault::art19_notifications`] makes the outbox rows (one per recipient), which the
//!   request's own transaction queues (`tx.notifications().enqueue(..)`): the notice exists
//!   if and only if the change committed.
//! - [`Vault::deliver_notifications`] (the server's `notifications` job) sends the due ones,
//!   signed, through a [`WebhookSender`], and records each attempt: 2xx is delivered,
//!   anything else is tried again after [`retry_delay`], and given up after [`MAX_ATTEMPTS`].
//!   A notice's body names the subject, so the store clears it once the notice is final.
//! - The signature: header [`SIGNATURE_HEADER`] `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//!   "<t>.<body>")>`, with the recipient's secret from the key hierarchy
//!   (`custodia webhook-secret <recipient>`); receivers check it with [`verify_signature`].

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use custodia_store::{DeliveryAttempt, DeliveryState, NewNotification, NotificationRow};
use custodia_types::NotificationStatus;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::{SubjectId, Timestamp, Vault, VaultError, quoted_name};

/// The header carrying a notice's signature.
pub const SIGNATURE_HEADER: &str = "Custodia-Signature";
/// The header carrying a notice's id (also in its body): receivers deduplicate by it, since
/// a notice whose acknowledgement was lost is sent again.
pub const NOTIFICATION_ID_HEADER: &str = "Custodia-Notification-Id";
/// Attempts before a notice is given up (`failed`).
pub const MAX_ATTEMPTS: i64 = 10;
/// The `type` of every notice body.
pub const NOTICE_TYPE: &str = "custodia.art19";
/// Notices sent per run of the delivery job (concurrently).
const DELIVERY_BATCH: i64 = 64;
/// The principal of the delivery job's audit entries.
const DELIVERY_PRINCIPAL: &str = "system:notifications";
/// Failures no later attempt can mend: the notice is given up at once.
const GIVEN_UP_AT_ONCE: [&str; 2] = ["no_webhook", "invalid_payload"];
/// The changes that are notified (Art. 19: rectification, erasure, restriction).
const ACTIONS: [&str; 3] = ["rectification", "erasure", "restriction"];

/// How long to wait after the `attempts`-th failed attempt: 30 s, doubling, at most 1 h.
#[must_use]
pub fn retry_delay(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    Duration::from_secs((30u64 << doublings).min(3600))
}

/// The body of a notice.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    #[serde(rename = "type")]
    kind: String,
    /// Set when it is sent (the row's id is known only once it is queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notification_id: Option<i64>,
    request_id: String,
    action: String,
    subject_id: String,
    purposes: Vec<String>,
    /// Field names only, never values.
    fields: Vec<String>,
    at: String,
}

/// A signed notice, ready to be POSTed (owned, so sends can run concurrently).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub notification_id: i64,
    /// The value of [`SIGNATURE_HEADER`].
    pub signature: String,
    /// The JSON body, exactly as signed.
    pub body: String,
}

/// What became of one POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The receiver answered with this HTTP status.
    Status(u16),
    /// No answer; the error's class (`timeout`, `connection`, `tls`, ...), a
    /// fixed name, never a receiver's text.
    Failed(&'static str),
}

/// Sends notices over HTTP (the server's client; tests may bring their own).
pub trait WebhookSender: Send + Sync {
    /// POSTs `hook.body` to `hook.url` with [`SIGNATURE_HEADER`] and
    /// [`NOTIFICATION_ID_HEADER`], within a time limit of the sender's choosing.
    fn send(&self, hook: Webhook) -> Pin<Box<dyn Future<Output = SendOutcome> + Send + 'static>>;
}

/// What a run of [`Vault::deliver_notifications`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Notices acknowledged (2xx).
    pub delivered: usize,
    /// Notices that failed and will be tried again.
    pub retrying: usize,
    /// Notices given up for good.
    pub failed: usize,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `t=<seconds>,v1=<64 hex digits>`.
    Malformed,
    /// `t` is further from now than the tolerance (a replay, or a clock far off).
    Stale,
    /// No `v1` signature matches the body under this secret.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed Custodia-Signature header",
            Self::Stale => "Custodia-Signature timestamp outside the tolerance",
            Self::Mismatch => "Custodia-Signature does not match the body",
        })
    }
}

impl std::error::Error for SignatureError {}

fn signing_key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// The signed input: `"<t>.<body>"`.
fn signed_input(t: i64, body: &[u8]) -> Vec<u8> {
    [format!("{t}.").as_bytes(), body].concat()
}

/// The [`SIGNATURE_HEADER`] value of `body` signed at Unix time `t` (seconds).
#[must_use]
pub fn signature_header(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = hmac::sign(&signing_key(secret), &signed_input(t, body));
    format!("t={t},v1={}", hex::encode(tag.as_ref()))
}

/// Checks a [`SIGNATURE_HEADER`] value against the body received, the recipient's secret
/// (the 32 bytes `custodia webhook-secret` prints in hex) and the receiver's clock: `t` must
/// be within `tolerance_secs` of `now_secs`, and one `v1` must be the HMAC-SHA256 of
/// `"<t>.<body>"` (compared in constant time).
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match name {
            "t" if t.is_none() && !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                t = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
            }
            "v1" if value.len() == 64 => tags.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            "t" | "v1" => return Err(SignatureError::Malformed),
            // Other schemes may be added later; they are not ours to judge.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now_secs.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let key = signing_key(secret);
    let input = signed_input(t, body);
    if tags.iter().any(|tag| hmac::verify(&key, &input, tag).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Whether `field` (`collection.field`, or a bare field name) is one `purpose` declares.
fn declared_by(purpose: &custodia_registry::Purpose, field: &str) -> bool {
    match field.split_once('.') {
        Some((collection, name)) => purpose.declares(collection, name),
        None => purpose.fields.values().any(|names| names.contains(field)),
    }
}

impl Vault {
    /// The secret (64 hex digits) notices to registry recipient `recipient` are signed with,
    /// for its operator (`custodia webhook-secret`).
    pub fn webhook_secret(&self, recipient: &str) -> Result<zeroize::Zeroizing<String>, VaultError> {
        if !self.registry.recipients.contains_key(recipient) {
            return Err(VaultError::not_found(
                "unknown_recipient",
                format!(
                    "no recipient {} is named in the registry's [recipients]",
                    quoted_name(recipient, false)
                ),
            ));
        }
        let key = self.keys.webhook_secret(recipient)?;
        Ok(zeroize::Zeroizing::new(hex::encode(key.expose())))
    }

    /// The Art. 19 notices of request `request_id`'s `action` (`rectification`, `erasure`,
    /// `restriction`) on `subject`'s data held under `purposes`, for the request's own
    /// transaction to queue (`tx.notifications().enqueue(&rows)`): one per distinct
    /// recipient the registry lists for those purposes (purposes the registry no longer has
    /// are skipped). Each recipient is told only the purposes it receives data under and
    /// those of `fields` (names, `collection.field` or bare) that they declare. A recipient
    /// without a webhook gets a `no_webhook` row: the request shows it was not notified.
    pub(crate) fn art19_notifications(
        &self,
        request_id: &str,
        action: &str,
        subject: &SubjectId,
        purposes: &[&str],
        fields: &[String],
        now: Timestamp,
    ) -> Result<Vec<NewNotification>, VaultError> {
        if !ACTIONS.contains(&action) {
            return Err(VaultError::internal(&format_args!(
                "Art. 19 notices are for rectification, erasure and restriction, not {}",
                quoted_name(action, false)
            )));
        }
        let purposes: Vec<_> = purposes
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|p| self.registry.purposes.get(*p))
            .collect();
        let recipients: BTreeSet<&String> = purposes.iter().flat_map(|p| &p.recipients).collect();
        let mut rows = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let theirs: Vec<_> = purposes.iter().filter(|p| p.recipients.contains(recipient)).collect();
            let has_webhook = self
                .registry
                .recipients
                .get(recipient)
                .is_some_and(|r| r.webhook.is_some());
            let payload = if has_webhook {
                let notice = Notice {
                    kind: NOTICE_TYPE.to_owned(),
                    notification_id: None,
                    request_id: request_id.to_owned(),
                    action: action.to_owned(),
                    subject_id: subject.as_str().to_owned(),
                    purposes: theirs.iter().map(|p| p.name.clone()).collect(),
                    fields: fields
                        .iter()
                        .filter(|f| theirs.iter().any(|p| declared_by(p, f)))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .cloned()
                        .collect(),
                    at: now.to_rfc3339(),
                };
                Some(serde_json::to_string(&notice).map_err(|e| VaultError::internal(&e))?)
            } else {
                None
            };
            rows.push(NewNotification {
                request_id: request_id.to_owned(),
                recipient: recipient.clone(),
                action: action.to_owned(),
                payload,
                state: if has_webhook {
                    DeliveryState::Pending
                } else {
                    DeliveryState::NoWebhook
                },
                created_at: now.0,
            });
        }
        Ok(rows)
    }

    /// Where each recipient's notice of request `request_id` stands, in the order queued.
    pub async fn notification_status(&self, request_id: &str) -> Result<Vec<NotificationStatus>, VaultError> {
        let rows = self
            .store
            .reader()
            .await?
            .notifications()
            .of_request(request_id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| NotificationStatus {
                recipient: row.recipient,
                status: row.state.as_str().to_owned(),
                attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
                last_error: row.last_error,
                delivered_at: row.delivered_at.map(|at| Timestamp(at).to_rfc3339()),
            })
            .collect())
    }

    /// Sends the notices due at `now` (at most a batch, concurrently) through `sender` and
    /// records each attempt: a 2xx answer delivers the notice; any other outcome schedules
    /// the next attempt after [`retry_delay`], or gives the notice up after [`MAX_ATTEMPTS`]
    /// (or at once when the registry no longer gives its recipient a webhook, or the stored
    /// body is not a notice). Each final
    /// outcome is audited (`notification.deliver`, naming recipient, outcome and request, and
    /// the subject as its keyed digest) in the transaction that records it.
    pub async fn deliver_notifications(
        &self,
        now: Timestamp,
        sender: Arc<dyn WebhookSender>,
    ) -> Result<DeliveryReport, VaultError> {
        // Notices are held while the log takes no entries.
        self.log.accepting()?;
        let due = self
            .store
            .reader()
            .await?
            .notifications()
            .due(now.0, DELIVERY_BATCH)
            .await?;
        let mut sends = tokio::task::JoinSet::new();
        let mut outcomes = Vec::with_capacity(due.len());
        for (i, row) in due.iter().enumerate() {
            match self.webhook_of(row, now) {
                Ok(hook) => {
                    let sent = sender.send(hook);
                    sends.spawn(async move { (i, sent.await) });
                }
                Err(class) => outcomes.push((i, SendOutcome::Failed(class))),
            }
        }
        while let Some(done) = sends.join_next().await {
            outcomes.push(done.map_err(|e| VaultError::internal(&e))?);
        }
        outcomes.sort_by_key(|(i, _)| *i);
        let mut report = DeliveryReport::default();
        let mut records = Vec::with_capacity(outcomes.len());
        for (i, outcome) in outcomes {
            let row = &due[i];
            let attempt = attempt_of(row, outcome, now);
            match attempt.state {
                DeliveryState::Delivered => report.delivered += 1,
                DeliveryState::Pending => report.retrying += 1,
                _ => report.failed += 1,
            }
            let audit = if attempt.state.is_final() {
                Some(self.delivery_audit_row(row, &attempt, now)?)
            } else {
                None
            };
            records.push((attempt, audit));
        }
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    let mut audit = Vec::new();
                    for (attempt, row) in records {
                        if tx.notifications().record_attempt(&attempt).await? {
                            audit.extend(row);
                        }
                    }
                    tx.audit().append(&audit).await
                })
            })
            .await?;
        Ok(report)
    }

    /// The signed request of a due notice, or why it cannot be sent ([`GIVEN_UP_AT_ONCE`]):
    /// its recipient has no webhook now, or its stored body is not a notice. A bad row fails
    /// alone; it never holds up the others.
    fn webhook_of(&self, row: &NotificationRow, now: Timestamp) -> Result<Webhook, &'static str> {
        let recipient = self.registry.recipients.get(&row.recipient);
        let url = recipient.and_then(|r| r.webhook.clone()).ok_or("no_webhook")?;
        let payload = row.payload.as_deref().ok_or("invalid_payload")?;
        let mut notice: Notice = serde_json::from_str(payload).map_err(|_| "invalid_payload")?;
        notice.notification_id = Some(row.id);
        let body = serde_json::to_string(&notice).map_err(|_| "invalid_payload")?;
        let secret = self.keys.webhook_secret(&row.recipient).map_err(|_| "no_webhook")?;
        let signature = signature_header(secret.expose(), now.0.div_euclid(1000), body.as_bytes());
        Ok(Webhook {
            url,
            notification_id: row.id,
            signature,
            body,
        })
    }

    /// The `notification.deliver` entry of a notice's final attempt: no personal data (the
    /// subject as its keyed digest, read from the body before the store clears it).
    fn delivery_audit_row(
        &self,
        row: &NotificationRow,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<custodia_store::AuditRow, VaultError> {
        let mut event = AuditEvent::unauthenticated("notification.deliver", DELIVERY_PRINCIPAL.to_owned())
            .detail("recipient", row.recipient.clone())
            .detail("outcome", attempt.state.as_str())
            .detail("request_id", row.request_id.clone())
            .detail("notification_id", row.id.to_string())
            .detail("attempts", (row.attempts + 1).to_string());
        if let Some(error) = &attempt.error {
            event = event.detail("last_error", error.clone());
        }
        let subject = row
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Notice>(p).ok())
            .and_then(|n| SubjectId::stored(&n.subject_id).ok());
        if let Some(subject) = subject {
            event = self.about(event, &subject)?;
        }
        self.audit_row(&event, now, None)
    }
}

/// The attempt `outcome` makes of notice `row` at `now`, and the state it leaves it in.
fn attempt_of(row: &NotificationRow, outcome: SendOutcome, now: Timestamp) -> DeliveryAttempt {
    let attempts = row.attempts + 1;
    let (outcome, http_status, error) = match outcome {
        SendOutcome::Status(status) if (200..300).contains(&status) => ("delivered", Some(status), None),
        SendOutcome::Status(status) => ("http_status", Some(status), Some(format!("HTTP {status}"))),
        SendOutcome::Failed(class) => (class, None, Some(class.to_owned())),
    };
    let (state, next_attempt_at) = if error.is_none() {
        (DeliveryState::Delivered, None)
    } else if attempts >= MAX_ATTEMPTS || GIVEN_UP_AT_ONCE.contains(&outcome) {
        (DeliveryState::Failed, None)
    } else {
        let delay = i64::try_from(retry_delay(attempts).as_millis()).unwrap_or(i64::MAX);
        (DeliveryState::Pending, Some(now.0.saturating_add(delay)))
    };
    DeliveryAttempt {
        notification_id: row.id,
        at: now.0,
        outcome: outcome.to_owned(),
        http_status: http_status.map(i64::from),
        state,
        next_attempt_at,
        error,
    }
}

#[cfg(test)]
mod tests;
