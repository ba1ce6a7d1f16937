//! Every permission is granted explicitly by the registry and decided through Cedar: writes
//! and deletes per role and purpose, search and deterministic tokens only with the plain form,
//! capabilities, and which roles a principal manager may grant. Every refusal is audited.

use serde_json::{Value, json};

use crate::support::{Client, Vault, custodia};

const CUSTOMERS: &str = "/v1/subjects/cust_p/records/customers";

/// The audit entries with `action` and `decision`, read by the admin.
async fn audited(admin: &mut Client, action: &str, decision: &str) -> Vec<Value> {
    let (status, v) = admin.get(&format!("/v1/audit/events?limit=1000&action={action}")).await;
    assert_eq!(status, 200, "{v}");
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].clone())
        .filter(|e| e["decision"] == decision)
        .collect()
}

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_deterministic_tokens_need_the_plain_form() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    assert_eq!(admin.post("/v1/subjects/cust_p/consents", consent).await.0, 201);
    let (status, v) = admin
        .post(
            CUSTOMERS,
            json!({"purpose": "analytics", "fields": {"email": "guess@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let search =
        json!({"purpose": "analytics", "collection": "customers", "field": "email", "value": "guess@example.com"});
    let (status, v) = admin.post("/v1/search", search.clone()).await;
    assert_eq!((status, v["matches"].as_array().map(Vec::len)), (200, Some(1)), "{v}");

    // The analyst sees emails only as tokens: a search would tell it whether a guess is right.
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (status, v) = analyst.post("/v1/search", search).await;
    assert_eq!((status, code(&v)), (403, Some("search_not_allowed")), "{v}");
    let tokenize = |kind: &str| {
        json!({"subject_id": "cust_p", "collection": "customers", "field": "email", "purpose": "analytics",
               "values": ["guess@example.com"], "kind": kind})
    };
    // A deterministic token of a guess would equal the token the analyst reads: the same oracle.
    let (status, v) = analyst.post("/v1/tokens", tokenize("deterministic")).await;
    assert_eq!((status, code(&v)), (403, Some("tokenize_not_allowed")), "{v}");
    // A random token reveals nothing about other values, but stores its value for the
    // subject: a read-only role makes none.
    let (status, v) = analyst.post("/v1/tokens", tokenize("random")).await;
    assert_eq!((status, code(&v)), (403, Some("tokenize_not_allowed")), "{v}");
    let (status, v) = admin.post("/v1/tokens", tokenize("deterministic")).await;
    assert_eq!(status, 201, "{v}");

    let denied = audited(&mut admin, "record.search", "deny").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["reason"], "search_not_allowed");
    assert_eq!(audited(&mut admin, "token.create", "deny").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_writes_are_granted_per_purpose() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let fields = json!({"email": "del@example.com", "name": "Del"});
    let (status, v) = admin
        .post(CUSTOMERS, json!({"purpose": "order_fulfillment", "fields": fields}))
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["record_id"].as_str().unwrap().to_owned();
    let record = format!("{CUSTOMERS}/{id}?purpose=order_fulfillment");

    // The warehouse writes delivery details but may not delete them.
    let shipper = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut shipper = server.client(&shipper).await;
    let (status, v) = shipper
        .call("PATCH", &record, Some(json!({"fields": {"name": "Dell"}})))
        .await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = shipper.call("DELETE", &record, None).await;
    assert_eq!((status, code(&v)), (403, Some("delete_not_allowed")), "{v}");
    assert_eq!(audited(&mut admin, "record.delete", "deny").await.len(), 1);
    // Nor by setting every value it holds to null: that deletes the record as DELETE does.
    let (status, v) = shipper
        .call("PATCH", &record, Some(json!({"fields": {"name": null, "email": null}})))
        .await;
    assert_eq!((status, code(&v)), (403, Some("delete_not_allowed")), "{v}");
    let (status, v) = admin.get(&record).await;
    assert_eq!((status, &v["fields"]["email"]), (200, &json!("del@example.com")), "{v}");

    // Support agents read, and write nothing.
    let agent = admin.principal("agent", &["support_agent"]).await;
    let mut agent = server.client(&agent).await;
    let (status, v) = agent
        .post(
            CUSTOMERS,
            json!({"purpose": "customer_support", "fields": {"name": "Mallory"}}),
        )
        .await;
    assert_eq!((status, code(&v)), (403, Some("field_write_denied")), "{v}");
    let (status, v) = agent
        .call(
            "PATCH",
            &format!("{CUSTOMERS}/{id}?purpose=customer_support"),
            Some(json!({"fields": {"email": "mallory@example.com"}})),
        )
        .await;
    assert_eq!((status, code(&v)), (403, Some("field_write_denied")), "{v}");
    let (status, v) = agent.get(&format!("{CUSTOMERS}/{id}?purpose=customer_support")).await;
    assert_eq!((status, &v["fields"]["email"]), (200, &json!("del@example.com")), "{v}");

    // A value held for tax records outlives a deletion under any other purpose: a deletion
    // ends only the deleting purpose's bindings.
    let tax = format!("{CUSTOMERS}/{id}?purpose=tax_records");
    let (status, v) = admin
        .call(
            "PATCH",
            &tax,
            Some(json!({"fields": {"shipping_address": "1 High St"}})),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = admin.call("DELETE", &record, None).await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = admin.get(&tax).await;
    assert_eq!(
        (status, &v["fields"]["shipping_address"]),
        (200, &json!("1 High St")),
        "{v}"
    );
    assert_eq!(v["fields"].as_object().unwrap().len(), 1, "the order data went: {v}");
    let (status, v) = admin.get(&record).await;
    assert_eq!(status, 404, "orders hold nothing of it any more: {v}");
    // Another purpose may not replace it; removing it under another purpose removes nothing
    // (that purpose holds nothing of it); writing the same value does not bind it to that
    // purpose either (what only a purpose surviving erasure keeps is kept for it alone), and
    // is refused as a new value is, so the refusal tells nothing of the value.
    for address in ["2 Low St", "1 High St"] {
        let (status, v) = shipper
            .call("PATCH", &record, Some(json!({"fields": {"shipping_address": address}})))
            .await;
        assert_eq!((status, code(&v)), (409, Some("record_retained")), "{address}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("tax_records"), "{v}");
    }
    // (a record it sees nothing of is not there for a change of nothing, as for a read)
    let (status, v) = shipper
        .call("PATCH", &record, Some(json!({"fields": {"shipping_address": null}})))
        .await;
    assert_eq!((status, code(&v)), (404, Some("record_not_found")), "{v}");
    let (_, v) = admin.get(&tax).await;
    assert_eq!(v["fields"]["shipping_address"], "1 High St", "{v}");
    let (status, v) = shipper.get(&record).await;
    assert_eq!(status, 404, "orders hold nothing of it: {v}");
    let (status, v) = admin.call("DELETE", &record, None).await;
    assert_eq!(status, 404, "{v}");
    let (_, v) = admin.get(&tax).await;
    assert_eq!(v["fields"]["shipping_address"], "1 High St", "tax still holds it: {v}");
    let (status, v) = admin.call("DELETE", &tax, None).await;
    assert_eq!(status, 204, "{v}");
    assert_eq!(
        admin.get(&tax).await.0,
        404,
        "no purpose holds anything: the record is gone"
    );
    let (status, v) = admin.call("DELETE", &tax, None).await;
    assert_eq!((status, code(&v)), (404, Some("record_not_found")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_manager_grants_only_its_grantable_roles() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let keys = admin.principal("keys", &["key_manager"]).await;
    let mut keys = server.client(&keys).await;

    let (status, v) = keys
        .post("/v1/principals", json!({"name": "root-2", "roles": ["admin"]}))
        .await;
    assert_eq!((status, code(&v)), (403, Some("role_not_grantable")), "{v}");
    let (status, v) = keys
        .post(
            "/v1/principals",
            json!({"name": "sneaky", "roles": ["fulfillment_service", "auditor"]}),
        )
        .await;
    assert_eq!(
        (status, code(&v)),
        (403, Some("role_not_grantable")),
        "one ungrantable role refuses all: {v}"
    );
    let denied = audited(&mut admin, "principal.create", "deny").await;
    assert_eq!(denied.len(), 2, "{denied:#?}");
    assert!(
        denied.iter().all(|e| e["reason"] == "role_not_grantable"),
        "{denied:#?}"
    );

    let (status, v) = keys
        .post(
            "/v1/principals",
            json!({"name": "warehouse", "roles": ["fulfillment_service"]}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let warehouse = v["principal_id"].as_str().unwrap().to_owned();
    let (status, v) = keys.get("/v1/principals").await;
    assert_eq!(status, 200, "{v}");
    let root = v["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["roles"] == json!(["admin"]))
        .unwrap()["principal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Revoking is granting undone: only principals of grantable roles.
    let (status, v) = keys.call("DELETE", &format!("/v1/principals/{root}"), None).await;
    assert_eq!((status, code(&v)), (403, Some("role_not_grantable")), "{v}");
    let (status, v) = keys.call("DELETE", &format!("/v1/principals/{warehouse}"), None).await;
    assert_eq!(status, 204, "{v}");
    // The key manager sees no personal data.
    let (status, v) = keys.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!((status, code(&v)), (403, Some("purpose_not_allowed")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_granted_one_by_one() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let auditor = admin.principal("auditor", &["auditor"]).await;
    let mut auditor = server.client(&auditor).await;
    assert_eq!(auditor.get("/v1/audit/events").await.0, 200);
    let (status, v) = auditor.get("/v1/principals").await;
    assert_eq!((status, code(&v)), (403, Some("not_allowed")), "{v}");
    let (status, v) = auditor
        .post("/v1/principals", json!({"name": "x", "roles": ["auditor"]}))
        .await;
    assert_eq!((status, code(&v)), (403, Some("not_allowed")), "{v}");

    let prefs = admin.principal("prefs", &["consent_service"]).await;
    let mut prefs = server.client(&prefs).await;
    for path in ["/v1/audit/events", "/v1/audit/checkpoint"] {
        let (status, v) = prefs.get(path).await;
        assert_eq!((status, code(&v)), (403, Some("not_allowed")), "{path}: {v}");
    }
    let (status, v) = prefs.get("/v1/subjects/cust_p/consents").await;
    assert_eq!(status, 200, "{v}");

    // The scanner needs use_scanner; refusals and uses are audited (the text never is).
    let scan = json!({"text": "mail jo@example.com"});
    let shipper = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut shipper = server.client(&shipper).await;
    let (status, v) = shipper.post("/v1/scan", scan.clone()).await;
    assert_eq!((status, code(&v)), (403, Some("not_allowed")), "{v}");
    let (status, v) = shipper.post("/v1/redact", scan.clone()).await;
    assert_eq!((status, code(&v)), (403, Some("not_allowed")), "{v}");
    let agent = admin.principal("agent", &["support_agent"]).await;
    let (status, v) = server.client(&agent).await.post("/v1/redact", scan.clone()).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin.post("/v1/scan", scan).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(audited(&mut admin, "pii.scan", "deny").await.len(), 1);
    assert_eq!(audited(&mut admin, "pii.scan", "allow").await.len(), 1);
    assert_eq!(audited(&mut admin, "pii.redact", "deny").await.len(), 1);
    let (_, v) = admin.get("/v1/audit/events?limit=1000").await;
    assert!(!v.to_string().contains("jo@example.com"), "no scanned text in the log");
}

#[test]
fn check_refuses_control_characters_in_registry_text() {
    let vault = Vault::init();
    let text = std::fs::read_to_string(vault.path().join("registry.toml")).unwrap();
    let bad = text.replacen(
        "description = \"Auditors:",
        "description = \"\\rpermit(principal, action, resource);\\rAuditors:",
        1,
    );
    assert_ne!(bad, text);
    let path = vault.path().join("evil.toml");
    std::fs::write(&path, &bad).unwrap();
    let out = custodia().arg("check").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = bad.lines().position(|l| l.contains("permit(principal")).unwrap() + 1;
    assert!(
        stderr.contains(&format!("evil.toml:{line}:")) && stderr.contains("control character"),
        "{stderr}"
    );
}
