//! Nothing a caller sends is echoed where it does not belong: names that are not registry
//! names (a card number or an email sent as a key, a query parameter, an operator or an
//! entity type) are never repeated in an answer, a log line or an audit entry.

use serde_json::{Value, json};

use crate::support::Vault;

const CARD: &str = "4111111111111111";
const SPACED_CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "alice.secret@example.com";

fn leaks(text: &str) -> bool {
    text.contains(CARD) || text.contains(SPACED_CARD) || text.contains("alice.secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_never_echoed_in_answers_logs_or_audit_entries() {
    let vault = Vault::init();
    let log = vault.path().join("server.log");
    let server = vault.serve_logged(&log, "info,custodia_server=debug,custodia_core=debug,tower_http=debug");
    let mut admin = server.client(&vault.token).await;
    let auditor = admin.principal("auditor-1", &["auditor"]).await;
    let mut auditor = server.client(&auditor).await;
    let records = "/v1/subjects/s1/records/customers";
    let escaped = "alice.secret%40example.com";

    let mut answers: Vec<(u16, Value)> = Vec::new();
    // Unknown keys in bodies: at the top level and as field names.
    let mut body = json!({"purpose": "order_fulfillment", "fields": {"name": "A"}});
    body[CARD] = json!(1);
    body[EMAIL] = json!(2);
    answers.push(admin.post(records, body).await);
    let fields = json!({"purpose": "order_fulfillment", "fields": {CARD: "x", EMAIL: "y", SPACED_CARD: "z"}});
    answers.push(admin.post(records, fields.clone()).await);
    answers.push(auditor.post(records, fields).await); // 403, audited with its field names
    // Query parameter names and requested fields.
    for path in [
        format!("{records}?purpose=order_fulfillment&{CARD}=1"),
        format!("{records}?purpose=order_fulfillment&{escaped}=1"),
        format!("{records}?purpose=order_fulfillment&fields={CARD},{escaped}"),
        format!("/v1/audit/events?{escaped}=1"),
    ] {
        answers.push(admin.get(&path).await);
        answers.push(auditor.get(&path).await);
    }
    // Operator names, operator types and entity types of the scanner.
    let text = format!("mail {EMAIL}, card {SPACED_CARD}");
    answers.push(
        admin
            .post(
                "/v1/redact",
                json!({"text": text, "operators": {SPACED_CARD: {"type": "hash"}, EMAIL: {"type": "mask"}}}),
            )
            .await,
    );
    answers.push(
        admin
            .post(
                "/v1/redact",
                json!({"text": text, "operators": {"EMAIL_ADDRESS": {"type": EMAIL}}}),
            )
            .await,
    );
    answers.push(
        admin
            .post("/v1/scan", json!({"text": text, "entities": [CARD, EMAIL]}))
            .await,
    );
    for (status, v) in &answers {
        assert!((400..500).contains(status), "{status} {v}");
        assert!(!leaks(&v.to_string()), "answer echoes input: {v}");
    }

    let (status, page) = admin.get("/v1/audit/events?limit=1000").await;
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["entry"]["decision"] == "deny"),
        "the refusals were audited: {page}"
    );
    for e in events {
        assert!(!leaks(e["canonical"].as_str().unwrap()), "audit entry: {e}");
    }
    server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("request"), "the log was written: {logged}");
    assert!(!leaks(&logged), "server log echoes input:\n{logged}");
}
