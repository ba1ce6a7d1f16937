use std::sync::Mutex;

use super::*;
use crate::DataDir;

const SECRET: &[u8] = &[7; 32];

// --- Signatures ---

#[test]
fn a_signed_body_verifies() {
    let body = br#"{"type":"custodia.art19"}"#;
    let header = signature_header(SECRET, 1_700_000_000, body);
    assert!(header.starts_with("t=1700000000,v1="), "{header}");
    assert_eq!(verify_signature(SECRET, &header, body, 1_700_000_000, 300), Ok(()));
    assert_eq!(verify_signature(SECRET, &header, body, 1_700_000_300, 300), Ok(()));
    assert_eq!(verify_signature(SECRET, &header, body, 1_699_999_700, 300), Ok(()));
    // Another scheme beside ours, and a second `v1` (a secret being rotated), are fine.
    let v1 = header.split_once(",v1=").unwrap().1;
    let rotated = format!("t=1700000000,v0=abc,v1={},v1={v1}", "0".repeat(64));
    assert_eq!(verify_signature(SECRET, &rotated, body, 1_700_000_000, 300), Ok(()));
}

/// The signature is HMAC-SHA256(secret, "<t>.<body>"), hex: pinned with Python's `hmac`:
/// `hmac.new(bytes([7]*32), b"1700000000.{}", hashlib.sha256).hexdigest()`.
#[test]
fn the_signature_is_an_hmac_of_time_and_body() {
    assert_eq!(
        signature_header(SECRET, 1_700_000_000, b"{}"),
        "t=1700000000,v1=7b24748c9a3d39ed07b08d270a9c3b5ae3b420a0cba2eb3337b0fd8b739e40cd"
    );
}

#[test]
fn a_tampered_body_or_another_secret_does_not_verify() {
    let body = br#"{"action":"erasure"}"#;
    let header = signature_header(SECRET, 1_000, body);
    let tampered = br#"{"action":"rectification"}"#;
    assert_eq!(
        verify_signature(SECRET, &header, tampered, 1_000, 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&[8; 32], &header, body, 1_000, 300),
        Err(SignatureError::Mismatch)
    );
    // The time is signed too: moving `t` breaks the signature.
    let moved = header.replacen("t=1000", "t=1001", 1);
    assert_eq!(
        verify_signature(SECRET, &moved, body, 1_000, 300),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_stale_timestamp_is_refused() {
    let body = b"{}";
    let header = signature_header(SECRET, 1_000, body);
    assert_eq!(
        verify_signature(SECRET, &header, body, 1_301, 300),
        Err(SignatureError::Stale)
    );
    assert_eq!(
        verify_signature(SECRET, &header, body, 699, 300),
        Err(SignatureError::Stale)
    );
}

#[test]
fn a_malformed_header_is_refused() {
    let body = b"{}";
    let good = signature_header(SECRET, 1_000, body);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    for header in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={v1}"),
        "t=1000".to_owned(),
        format!("t=,v1={v1}"),
        format!("t=-5,v1={v1}"),
        format!("t=1e3,v1={v1}"),
        format!("t=1000,t=1000,v1={v1}"),
        format!("t=1000,v1={}", &v1[..63]),
        format!("t=1000,v1={}zz", &v1[..62]),
        format!("t=99999999999999999999,v1={v1}"),
    ] {
        assert_eq!(
            verify_signature(SECRET, &header, body, 1_000, 300),
            Err(SignatureError::Malformed),
            "{header:?}"
        );
    }
}

// --- Retries ---

#[test]
fn retries_back_off_from_30_s_doubling_to_an_hour() {
    let secs: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
    assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert_eq!(retry_delay(0).as_secs(), 30);
    assert_eq!(retry_delay(i64::MAX).as_secs(), 3600);
}

fn row(attempts: i64) -> NotificationRow {
    NotificationRow {
        id: 5,
        request_id: "req_1".into(),
        recipient: "parcel_carrier".into(),
        action: "erasure".into(),
        payload: Some("{}".into()),
        state: DeliveryState::Pending,
        attempts,
        next_attempt_at: Some(0),
        last_error: None,
        created_at: 0,
        delivered_at: None,
    }
}

#[test]
fn an_attempt_delivers_retries_or_gives_up() {
    let now = Timestamp(1_000_000);
    let ok = attempt_of(&row(0), SendOutcome::Status(204), now);
    assert_eq!(
        (
            ok.state,
            ok.outcome.as_str(),
            ok.http_status,
            ok.error,
            ok.next_attempt_at
        ),
        (DeliveryState::Delivered, "delivered", Some(204), None, None)
    );
    let first = attempt_of(&row(0), SendOutcome::Status(500), now);
    assert_eq!(
        (
            first.state,
            first.outcome.as_str(),
            first.error.as_deref(),
            first.next_attempt_at
        ),
        (DeliveryState::Pending, "http_status", Some("HTTP 500"), Some(1_030_000))
    );
    let redirect = attempt_of(&row(0), SendOutcome::Status(302), now);
    assert_eq!(redirect.state, DeliveryState::Pending, "only 2xx delivers");
    let third = attempt_of(&row(2), SendOutcome::Failed("timeout"), now);
    assert_eq!(
        (third.outcome.as_str(), third.http_status, third.next_attempt_at),
        ("timeout", None, Some(1_120_000))
    );
    let last = attempt_of(&row(MAX_ATTEMPTS - 1), SendOutcome::Failed("connection"), now);
    assert_eq!((last.state, last.next_attempt_at), (DeliveryState::Failed, None));
    let gone = attempt_of(&row(0), SendOutcome::Failed("no_webhook"), now);
    assert_eq!(gone.state, DeliveryState::Failed, "no webhook: given up at once");
    let bad = attempt_of(&row(0), SendOutcome::Failed("invalid_payload"), now);
    assert_eq!(
        bad.state,
        DeliveryState::Failed,
        "a body that is not a notice: given up at once"
    );
}

// --- The vault ---

/// A vault whose `parcel_carrier` and `payment_processor` have webhooks (the example's
/// recipients have none).
async fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    data.init(None, Timestamp(1)).await.unwrap();
    let path = data.registry_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "[recipients.parcel_carrier]\n",
            "[recipients.parcel_carrier]\nwebhook = \"http://127.0.0.1:9/carrier\"\n",
        )
        .replace(
            "[recipients.payment_processor]\n",
            "[recipients.payment_processor]\nwebhook = \"https://payments.example/hooks/art19\"\n",
        );
    std::fs::write(&path, text).unwrap();
    let vault = data.open(None).await.unwrap();
    (dir, vault)
}

/// Answers each POST from a script of outcomes (the last repeats) and keeps what it got.
struct Scripted {
    outcomes: Mutex<Vec<SendOutcome>>,
    got: Mutex<Vec<Webhook>>,
}

impl Scripted {
    fn new(outcomes: &[SendOutcome]) -> Arc<Self> {
        Arc::new(Self {
            outcomes: Mutex::new(outcomes.iter().rev().copied().collect()),
            got: Mutex::new(Vec::new()),
        })
    }

    fn got(&self) -> Vec<Webhook> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

impl WebhookSender for Scripted {
    fn send(&self, hook: Webhook) -> Pin<Box<dyn Future<Output = SendOutcome> + Send + 'static>> {
        self.got.lock().unwrap().push(hook);
        let mut outcomes = self.outcomes.lock().unwrap();
        let outcome = if outcomes.len() > 1 {
            outcomes.pop().unwrap()
        } else {
            outcomes[0]
        };
        Box::pin(async move { outcome })
    }
}

async fn enqueue(vault: &Vault, rows: Vec<NewNotification>) -> Vec<i64> {
    vault
        .store
        .write(move |mut tx| Box::pin(async move { tx.notifications().enqueue(&rows).await }))
        .await
        .unwrap()
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notice_per_recipient_of_the_purposes_with_what_it_received() {
    let (_dir, vault) = vault().await;
    let subject = SubjectId::parse("cus_42").unwrap();
    let now = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
    let rows = vault
        .art19_notifications(
            "req_1",
            "rectification",
            &subject,
            &[
                "payment",
                "order_fulfillment",
                "marketing_email",
                "payment",
                "no_such_purpose",
            ],
            &fields(&[
                "customers.name",
                "customers.card_number",
                "shipping_address",
                "customers.email",
            ]),
            now,
        )
        .unwrap();
    let recipients: Vec<_> = rows.iter().map(|r| (r.recipient.as_str(), r.state)).collect();
    assert_eq!(
        recipients,
        [
            ("email_provider", DeliveryState::NoWebhook),
            ("parcel_carrier", DeliveryState::Pending),
            ("payment_processor", DeliveryState::Pending),
        ],
        "one per distinct recipient, a recipient without a webhook marked so"
    );
    assert!(rows[0].payload.is_none());
    assert!(
        rows.iter()
            .all(|r| r.request_id == "req_1" && r.action == "rectification" && r.created_at == now.0)
    );
    let body: serde_json::Value = serde_json::from_str(rows[1].payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "custodia.art19",
            "request_id": "req_1",
            "action": "rectification",
            "subject_id": "cus_42",
            "purposes": ["order_fulfillment"],
            "fields": ["customers.email", "customers.name", "shipping_address"],
            "at": "2026-01-01T00:00:00.000Z",
        }),
        "the carrier hears of its own purpose's fields only, each once, sorted"
    );
    let body: serde_json::Value = serde_json::from_str(rows[2].payload.as_deref().unwrap()).unwrap();
    assert_eq!(body["purposes"], serde_json::json!(["payment"]));
    assert_eq!(
        body["fields"],
        serde_json::json!(["customers.card_number", "customers.name"])
    );

    assert!(
        vault
            .art19_notifications("req_1", "access", &subject, &["payment"], &[], now)
            .is_err(),
        "only rectification, erasure and restriction are notified"
    );
    let none = vault
        .art19_notifications("req_1", "erasure", &subject, &["customer_support"], &[], now)
        .unwrap();
    assert!(none.is_empty(), "a purpose without recipients notifies no one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_signed_retried_on_a_moved_clock_and_audited_when_final() {
    let (_dir, vault) = vault().await;
    let subject = SubjectId::parse("cus_42").unwrap();
    let t0 = Timestamp(1_767_225_600_000);
    let rows = vault
        .art19_notifications("req_1", "erasure", &subject, &["order_fulfillment"], &[], t0)
        .unwrap();
    let ids = enqueue(&vault, rows).await;
    assert_eq!(ids.len(), 1);

    // The receiver fails once, then acknowledges.
    let sender = Scripted::new(&[SendOutcome::Status(500), SendOutcome::Status(200)]);
    let report = vault.deliver_notifications(t0, sender.clone()).await.unwrap();
    assert_eq!(
        report,
        DeliveryReport {
            retrying: 1,
            ..DeliveryReport::default()
        }
    );
    let got = sender.got();
    assert_eq!(got.len(), 1);
    let hook = &got[0];
    assert_eq!(
        (hook.url.as_str(), hook.notification_id),
        ("http://127.0.0.1:9/carrier", ids[0])
    );
    let secret = hex::decode(vault.webhook_secret("parcel_carrier").unwrap().as_str()).unwrap();
    let t0_secs = t0.0 / 1000;
    assert_eq!(
        verify_signature(&secret, &hook.signature, hook.body.as_bytes(), t0_secs, 300),
        Ok(())
    );
    let body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["notification_id"], ids[0]);
    assert_eq!(body["subject_id"], "cus_42");
    let status = vault.notification_status("req_1").await.unwrap();
    assert_eq!(
        status,
        [NotificationStatus {
            recipient: "parcel_carrier".into(),
            status: "pending".into(),
            attempts: 1,
            last_error: Some("HTTP 500".into()),
            delivered_at: None,
        }]
    );

    // Not due again before the backoff has passed.
    let early = vault
        .deliver_notifications(Timestamp(t0.0 + 29_999), sender.clone())
        .await
        .unwrap();
    assert_eq!(early, DeliveryReport::default());
    assert!(sender.got().is_empty());
    let t1 = Timestamp(t0.0 + 30_000);
    let report = vault.deliver_notifications(t1, sender.clone()).await.unwrap();
    assert_eq!(
        report,
        DeliveryReport {
            delivered: 1,
            ..DeliveryReport::default()
        }
    );
    let got = sender.got();
    assert_eq!(
        verify_signature(&secret, &got[0].signature, got[0].body.as_bytes(), t1.0 / 1000, 300),
        Ok(()),
        "signed again at the time it is sent"
    );
    let status = vault.notification_status("req_1").await.unwrap();
    assert_eq!(
        (
            status[0].status.as_str(),
            status[0].attempts,
            status[0].last_error.as_deref()
        ),
        ("delivered", 2, None)
    );
    assert_eq!(status[0].delivered_at.as_deref(), Some("2026-01-01T00:00:30.000Z"));
    let stored = vault
        .store
        .reader()
        .await
        .unwrap()
        .notifications()
        .of_request("req_1")
        .await
        .unwrap();
    assert_eq!(stored[0].payload, None, "the body naming the subject is gone");

    // One audit entry, for the final outcome, with no personal data.
    let entries = vault.all_audit_entries().await;
    let delivered: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.contains("notification.deliver"))
        .collect();
    assert_eq!(delivered.len(), 1);
    let entry: serde_json::Value = serde_json::from_str(&delivered[0].entry).unwrap();
    assert_eq!(entry["principal"], "system:notifications");
    assert_eq!(entry["subject"], vault.keys.audit_subject(&subject).unwrap());
    assert_eq!(
        entry["detail"],
        serde_json::json!({
            "recipient": "parcel_carrier",
            "outcome": "delivered",
            "request_id": "req_1",
            "notification_id": ids[0].to_string(),
            "attempts": "2",
        })
    );
    assert!(!delivered[0].entry.contains("cus_42"));
    // Nothing is due any more.
    let after = vault
        .deliver_notifications(Timestamp(t1.0 + 3_600_000), sender.clone())
        .await
        .unwrap();
    assert_eq!(after, DeliveryReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_is_given_up_after_the_last_attempt() {
    let (_dir, vault) = vault().await;
    let subject = SubjectId::parse("cus_7").unwrap();
    let mut now = Timestamp(1_000_000);
    let rows = vault
        .art19_notifications("req_9", "restriction", &subject, &["payment"], &[], now)
        .unwrap();
    enqueue(&vault, rows).await;
    let sender = Scripted::new(&[SendOutcome::Failed("timeout")]);
    for attempt in 1..=MAX_ATTEMPTS {
        let report = vault.deliver_notifications(now, sender.clone()).await.unwrap();
        let expected = if attempt < MAX_ATTEMPTS {
            DeliveryReport {
                retrying: 1,
                ..DeliveryReport::default()
            }
        } else {
            DeliveryReport {
                failed: 1,
                ..DeliveryReport::default()
            }
        };
        assert_eq!(report, expected, "attempt {attempt}");
        now = Timestamp(now.0 + i64::try_from(retry_delay(attempt).as_millis()).unwrap());
    }
    assert_eq!(sender.got().len(), usize::try_from(MAX_ATTEMPTS).unwrap());
    let status = vault.notification_status("req_9").await.unwrap();
    assert_eq!(
        (
            status[0].status.as_str(),
            status[0].attempts,
            status[0].last_error.as_deref()
        ),
        ("failed", 10, Some("timeout"))
    );
    let log = vault
        .store
        .reader()
        .await
        .unwrap()
        .notifications()
        .attempts(1)
        .await
        .unwrap();
    assert_eq!(log.len(), 10);
    let entries = vault.all_audit_entries().await;
    let failed: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.contains("notification.deliver"))
        .collect();
    assert_eq!(failed.len(), 1, "only the final outcome is audited");
    assert!(
        failed[0].entry.contains("\"outcome\":\"failed\""),
        "{}",
        failed[0].entry
    );
    assert!(
        vault
            .deliver_notifications(Timestamp(i64::MAX / 2), sender.clone())
            .await
            .unwrap()
            == DeliveryReport::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_secret_is_per_recipient_and_only_for_known_ones() {
    let (_dir, vault) = vault().await;
    let a = vault.webhook_secret("parcel_carrier").unwrap();
    let b = vault.webhook_secret("ad_partner").unwrap();
    assert_eq!(a.len(), 64);
    assert_ne!(*a, *b);
    assert_eq!(
        *a,
        hex::encode(vault.keys.webhook_secret("parcel_carrier").unwrap().expose())
    );
    let err = vault.webhook_secret("nobody").unwrap_err();
    assert_eq!(err.code, "unknown_recipient");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_fails_alone_and_a_recipient_without_webhook_is_given_up() {
    let (_dir, vault) = vault().await;
    let now = Timestamp(5_000);
    let row = |recipient: &str, payload: &str| NewNotification {
        request_id: "req_3".into(),
        recipient: recipient.into(),
        action: "erasure".into(),
        payload: Some(payload.into()),
        state: DeliveryState::Pending,
        created_at: now.0,
    };
    let good = vault
        .art19_notifications(
            "req_3",
            "erasure",
            &SubjectId::parse("s").unwrap(),
            &["payment"],
            &[],
            now,
        )
        .unwrap();
    let mut rows = vec![row("parcel_carrier", "not json"), row("ad_partner", "{}")];
    rows.extend(good);
    enqueue(&vault, rows).await;
    let sender = Scripted::new(&[SendOutcome::Status(200)]);
    let report = vault.deliver_notifications(now, sender.clone()).await.unwrap();
    assert_eq!(
        report,
        DeliveryReport {
            delivered: 1,
            failed: 2,
            ..DeliveryReport::default()
        }
    );
    assert_eq!(sender.got().len(), 1, "only the good notice went out");
    let status = vault.notification_status("req_3").await.unwrap();
    let got: Vec<_> = status
        .iter()
        .map(|s| (s.recipient.as_str(), s.status.as_str(), s.last_error.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("parcel_carrier", "failed", Some("invalid_payload")),
            ("ad_partner", "failed", Some("no_webhook")),
            ("payment_processor", "delivered", None),
        ]
    );
}
