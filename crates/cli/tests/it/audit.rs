//! Every gate decision is audited, allow and deny, without personal data; and the vault fails
//! closed when the audit log cannot be written.

use serde_json::{Value, json};

use crate::support::Vault;

const RECORDS: &str = "/v1/subjects/cust_audit/records/customers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_audited_without_personal_data() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"email": "audit.me@example.com", "name": "Audrey"}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        admin
            .get(&format!("{RECORDS}?purpose=order_fulfillment&fields=email"))
            .await
            .0,
        200
    );
    assert_eq!(admin.get(&format!("{RECORDS}?purpose=marketing_email")).await.0, 403);
    let auditor_key = admin.principal("the-auditor", &["auditor"]).await;
    let mut auditor = server.client(&auditor_key).await;
    assert_eq!(
        auditor.get(&format!("{RECORDS}?purpose=order_fulfillment")).await.0,
        403
    );

    let (status, v) = admin.get("/v1/audit/events").await;
    assert_eq!(status, 200, "admin reads the audit log: {v}");
    let (status, v) = auditor.get("/v1/audit/events?limit=1000").await;
    assert_eq!(status, 200, "{v}");
    let entries: Vec<Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].clone())
        .collect();
    let find = |action: &str, decision: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["decision"] == decision)
            .cloned()
            .unwrap_or_else(|| panic!("no {action}/{decision} in {entries:#?}"))
    };
    let create = find("record.create", "allow");
    assert_eq!(create["purpose"], "order_fulfillment");
    assert_eq!(create["collection"], "customers");
    assert_eq!(create["fields"], json!(["email", "name"]));
    let list = find("record.list", "allow");
    assert_eq!(list["fields"], json!(["email"]));
    let denied = entries
        .iter()
        .find(|e| e["action"] == "record.list" && e["decision"] == "deny" && e["reason"] == "consent_required")
        .unwrap();
    assert_eq!(denied["purpose"], "marketing_email");
    assert!(
        entries.iter().any(|e| e["reason"] == "purpose_not_allowed"),
        "the auditor's refused read is audited"
    );
    // The subject appears only as a keyed hash, the same in every entry about it.
    let subject = create["subject"].as_str().unwrap();
    assert_eq!(subject.len(), 32);
    assert_eq!(denied["subject"], subject);
    let text = serde_json::to_string(&v).unwrap();
    for secret in ["audit.me@example.com", "Audrey", "cust_audit"] {
        assert!(!text.contains(secret), "the audit log holds `{secret}`");
    }
    // Reading the log is audited too, and the log pages by sequence number.
    let (_, page) = auditor.get("/v1/audit/events?limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_i64().unwrap();
    let (_, rest) = auditor.get(&format!("/v1/audit/events?after={next}&limit=1000")).await;
    assert!(rest["events"][0]["seq"].as_i64().unwrap() > next);
    assert!(
        rest["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["entry"]["action"] == "audit.read")
    );

    let shipper_key = admin.principal("shipper", &["fulfillment_service"]).await;
    let (status, v) = server.client(&shipper_key).await.get("/v1/audit/events").await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("not_allowed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_closed_when_the_audit_log_cannot_be_written() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, v) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Before"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    // Break the audit log from outside, as a full disk or a broken replica would.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", vault.path().join("custodia.db").display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER injected_failure BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    )
    .execute(&db)
    .await
    .unwrap();

    let reply = admin
        .raw_unchecked("GET", &format!("{RECORDS}?purpose=order_fulfillment"), None)
        .await;
    assert_eq!(reply.0, 500);
    assert_eq!(reply.1["error"]["code"], "audit_unavailable");
    assert!(
        !serde_json::to_string(&reply.1).unwrap().contains("Before"),
        "no data without an audit entry"
    );
    let reply = admin
        .raw_unchecked(
            "POST",
            RECORDS,
            Some(json!({"purpose": "order_fulfillment", "fields": {"name": "During"}})),
        )
        .await;
    assert_eq!(reply.0, 500, "{}", reply.1);
    let reply = admin
        .raw_unchecked("GET", &format!("{RECORDS}?purpose=marketing_email"), None)
        .await;
    assert_eq!(reply.0, 500, "a refusal that cannot be audited fails too: {}", reply.1);

    sqlx::query("DROP TRIGGER injected_failure").execute(&db).await.unwrap();
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=order_fulfillment")).await;
    assert_eq!(status, 200);
    let names: Vec<_> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fields"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("Before")],
        "the write refused for want of an audit entry left nothing behind"
    );
}
