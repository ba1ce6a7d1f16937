//! Notices to a real HTTP receiver (axum on a free port), sent by the `notifications` job
//! run on a moved clock.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use custodia_core::{DataDir, Timestamp, verify_signature};
use custodia_store::{DeliveryState, NewNotification};
use custodia_types::NotificationStatus;

use super::*;
use crate::AppState;
use crate::jobs::{NOTIFICATIONS_JOB, jobs};

/// What a receiver was sent, and the statuses it answers with (the last repeats).
struct Receiver {
    url: String,
    answers: Mutex<Vec<u16>>,
    got: Mutex<Vec<(HeaderMap, String)>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Arc::new(Self {
            url: format!("http://127.0.0.1:{port}/hooks/art19"),
            answers: Mutex::new(answers.iter().rev().copied().collect()),
            got: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hooks/art19", post(receive))
            .with_state(Arc::clone(&receiver));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn got(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: String) -> StatusCode {
    r.got.lock().unwrap().push((headers, body));
    let mut answers = r.answers.lock().unwrap();
    let code = if answers.len() > 1 {
        answers.pop().unwrap()
    } else {
        answers[0]
    };
    StatusCode::from_u16(code).unwrap()
}

/// A server state over a fresh data directory whose `parcel_carrier` posts to `carrier_url`
/// and `payment_processor` to an https URL; `ad_partner` has no webhook.
async fn state(carrier_url: &str) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    data.init(None, Timestamp(1)).await.unwrap();
    let path = data.registry_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "[recipients.parcel_carrier]\n",
            &format!("[recipients.parcel_carrier]\nwebhook = \"{carrier_url}\"\n"),
        )
        .replace(
            "[recipients.payment_processor]\n",
            "[recipients.payment_processor]\nwebhook = \"https://payments.example/art19\"\n",
        );
    std::fs::write(&path, text).unwrap();
    let vault = data.open(None).await.unwrap();
    let web = crate::Web::english(vault.registry()).unwrap();
    (dir, AppState::new(vault, crate::Publisher::new(None, None), web))
}

/// Queues notices of `req_1` (an erasure of `cus_42`) for `recipients`, through the store.
async fn enqueue(state: &AppState, recipients: &[(&str, DeliveryState)], at: Timestamp) -> Vec<i64> {
    let rows: Vec<NewNotification> = recipients
        .iter()
        .map(|&(recipient, state)| NewNotification {
            request_id: "req_1".into(),
            recipient: recipient.into(),
            action: "erasure".into(),
            payload: (state == DeliveryState::Pending).then(|| {
                serde_json::json!({
                    "type": "custodia.art19",
                    "request_id": "req_1",
                    "action": "erasure",
                    "subject_id": "cus_42",
                    "purposes": ["order_fulfillment"],
                    "fields": [],
                    "at": at.to_rfc3339(),
                })
                .to_string()
            }),
            state,
            created_at: at.0,
        })
        .collect();
    state
        .vault
        .store()
        .write(move |mut tx| Box::pin(async move { tx.notifications().enqueue(&rows).await }))
        .await
        .unwrap()
}

/// Runs the server's `notifications` job once at `now`.
async fn run_job(state: &AppState, now: Timestamp) {
    let jobs = jobs();
    let job = jobs.iter().find(|j| j.name == NOTIFICATIONS_JOB).unwrap();
    (job.run)(state, now).await.unwrap();
}

/// Checks one received notice: signed for `now` with `parcel_carrier`'s secret, its id in
/// the header and the body.
fn assert_signed(state: &AppState, (headers, body): &(HeaderMap, String), id: i64, now: Timestamp) {
    let secret = hex::decode(state.vault.webhook_secret("parcel_carrier").unwrap().as_str()).unwrap();
    let signature = headers["custodia-signature"].to_str().unwrap();
    assert_eq!(
        verify_signature(&secret, signature, body.as_bytes(), now.0 / 1000, 300),
        Ok(()),
        "{signature}"
    );
    assert!(verify_signature(&[0; 32], signature, body.as_bytes(), now.0 / 1000, 300).is_err());
    assert_eq!(headers["custodia-notification-id"], id.to_string().as_str());
    assert_eq!(headers["content-type"], "application/json");
    let notice: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(notice["type"], "custodia.art19");
    assert_eq!(notice["notification_id"], id);
    assert_eq!(notice["subject_id"], "cus_42");
    assert_eq!(notice["action"], "erasure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_a_correctly_signed_notice() {
    let receiver = Receiver::start(&[204]).await;
    let (_dir, state) = state(&receiver.url).await;
    let t0 = Timestamp(1_767_225_600_000);
    let ids = enqueue(&state, &[("parcel_carrier", DeliveryState::Pending)], t0).await;
    run_job(&state, t0).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_signed(&state, &got[0], ids[0], t0);
    let status = state.vault.notification_status("req_1").await.unwrap();
    assert_eq!(
        status,
        [NotificationStatus {
            recipient: "parcel_carrier".into(),
            status: "delivered".into(),
            attempts: 1,
            last_error: None,
            delivered_at: Some(t0.to_rfc3339()),
        }]
    );
    run_job(&state, Timestamp(t0.0 + 86_400_000)).await;
    assert_eq!(receiver.got().len(), 1, "a delivered notice is not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_notice_again_after_the_backoff() {
    let receiver = Receiver::start(&[500, 200]).await;
    let (_dir, state) = state(&receiver.url).await;
    let t0 = Timestamp(1_767_225_600_000);
    let ids = enqueue(
        &state,
        &[
            ("parcel_carrier", DeliveryState::Pending),
            ("payment_processor", DeliveryState::Pending),
            ("ad_partner", DeliveryState::NoWebhook),
        ],
        t0,
    )
    .await;
    run_job(&state, t0).await;
    assert_eq!(receiver.got().len(), 1);
    let status = |s: &[NotificationStatus]| {
        s.iter()
            .map(|n| (n.recipient.clone(), n.status.clone(), n.attempts, n.last_error.clone()))
            .collect::<Vec<_>>()
    };
    let row = |r: &str, s: &str, n: u32, e: Option<&str>| (r.to_owned(), s.to_owned(), n, e.map(str::to_owned));
    assert_eq!(
        status(&state.vault.notification_status("req_1").await.unwrap()),
        [
            row("parcel_carrier", "pending", 1, Some("HTTP 500")),
            row("payment_processor", "pending", 1, Some("connection")),
            row("ad_partner", "no_webhook", 0, None),
        ]
    );

    // Before the backoff (30 s) has passed nothing is sent; then the notice goes again.
    run_job(&state, Timestamp(t0.0 + 29_999)).await;
    assert_eq!(receiver.got().len(), 1);
    let t1 = Timestamp(t0.0 + 30_000);
    run_job(&state, t1).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_signed(&state, &got[0], ids[0], t0);
    assert_signed(&state, &got[1], ids[0], t1);
    let now = state.vault.notification_status("req_1").await.unwrap();
    assert_eq!(
        status(&now),
        [
            row("parcel_carrier", "delivered", 2, None),
            row("payment_processor", "pending", 2, Some("connection")),
            row("ad_partner", "no_webhook", 0, None),
        ]
    );
    assert_eq!(now[0].delivered_at, Some(t1.to_rfc3339()));
    let log = state
        .vault
        .store()
        .reader()
        .await
        .unwrap()
        .notifications()
        .attempts(ids[0])
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .map(|a| (a.at, a.outcome.as_str(), a.http_status))
            .collect::<Vec<_>>(),
        [(t0.0, "http_status", Some(500)), (t1.0, "delivered", Some(200))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_is_a_connection_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let hook = Webhook {
        url: format!("http://127.0.0.1:{port}/hook"),
        notification_id: 1,
        signature: "t=0,v1=00".into(),
        body: "{}".into(),
    };
    assert_eq!(HttpSender.send(hook).await, SendOutcome::Failed("connection"));
}
