//! Data subject requests through HTTP: the work queue and its deadlines, verification,
//! erasure by crypto-shredding with its signed receipt, rectification, restriction and the
//! other ledger rights, and who may do any of it.

use serde_json::{Value, json};

use crate::support::{Client, Vault, custodia, files_under};

const CUST: &str = "/v1/subjects/cust_e/records/customers";

/// Opens a request; returns its view.
async fn open(admin: &mut Client, subject: &str, kind: &str, jurisdiction: &str, extra: Value) -> Value {
    let mut body = json!({"subject_id": subject, "type": kind, "jurisdiction": jurisdiction});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, v) = admin.post("/v1/requests", body).await;
    assert_eq!(status, 201, "{v}");
    v
}

async fn fulfil(admin: &mut Client, id: &str, body: Value) -> (u16, Value) {
    admin.post(&format!("/v1/requests/{id}/fulfil"), body).await
}

/// Every byte of every file of the data directory.
fn all_bytes(vault: &Vault) -> Vec<(String, Vec<u8>)> {
    files_under(vault.path())
        .into_iter()
        .filter_map(|f| Some((f.display().to_string(), std::fs::read(&f).ok()?)))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The subject's stored data key of `class` and the ciphertexts of its values, read from the
/// database file (read-only) before an erasure.
async fn stored_secrets(vault: &Vault, subject: &str) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let url = format!("sqlite://{}?mode=ro", vault.path().join("custodia.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let key: Vec<u8> =
        sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE subject_id = ? AND key_class = 'default'")
            .bind(subject)
            .fetch_one(&db)
            .await
            .unwrap();
    let values: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT f.field, f.ciphertext FROM record_fields f JOIN records r ON r.record_id = f.record_id \
         WHERE r.subject_id = ? AND f.key_class = 'default'",
    )
    .bind(subject)
    .fetch_all(&db)
    .await
    .unwrap();
    db.close().await;
    (key, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_shreds_the_subject_keeps_tax_records_and_signs_a_receipt() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, created) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "erin@example.com", "name": "Erin Eraseme", "phone": "+44 20 7946 0958"}}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let order = created["record_id"].as_str().unwrap().to_owned();
    let (s, tax) = admin
        .post(
            CUST,
            json!({"purpose": "tax_records", "fields": {"name": "Erin Eraseme", "shipping_address": "1 Shred Lane"}}),
        )
        .await;
    assert_eq!(s, 201, "{tax}");
    let tax = tax["record_id"].as_str().unwrap().to_owned();
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_e/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "web_form",
                   "evidence": {"user_agent": "EraseAgent/1.0"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_e", "collection": "customers", "field": "email", "purpose": "order_fulfillment",
                   "values": ["erin@example.com"], "kind": "deterministic"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = v["tokens"][0].as_str().unwrap().to_owned();
    // Another subject, untouched by the erasure.
    let (s, _) = admin
        .post(
            "/v1/subjects/cust_keep/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "kept@example.com"}}),
        )
        .await;
    assert_eq!(s, 201);

    let request = open(
        &mut admin,
        "cust_e",
        "erasure",
        "gdpr",
        json!({"verified_by": "passport checked at the desk"}),
    )
    .await;
    assert_eq!(request["status"], "in_progress", "{request}");
    let id = request["request_id"].as_str().unwrap().to_owned();
    let (key, ciphertexts) = stored_secrets(&vault, "cust_e").await;
    assert!(
        ciphertexts.len() >= 3,
        "the order record's values are under the default key"
    );

    // A body meant for another type is refused, not ignored, and nothing is erased.
    for body in [
        json!({"corrections": [{"collection": "customers", "record_id": "rec_x", "fields": {"email": "e@example.com"}}]}),
        json!({"purposes": ["analytics"]}),
    ] {
        let (status, v) = fulfil(&mut admin, &id, body.clone()).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("not_for_this_type")),
            "{body}: {v}"
        );
    }
    assert_eq!(stored_secrets(&vault, "cust_e").await.1.len(), ciphertexts.len());

    let (status, receipt) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["destroyed_keys"], json!(["default"]), "{receipt}");
    assert!(receipt["deleted"]["records"].as_u64() >= Some(1), "{receipt}");
    assert!(receipt["deleted"]["index_entries"].as_u64() >= Some(2), "{receipt}");
    assert!(receipt["deleted"]["token_values"].as_u64() >= Some(1), "{receipt}");
    assert_eq!(receipt["wal_purged"], true, "{receipt}");
    // the receipt kept with the request says so too (the log is emptied after the erasure
    // commits, so the copy stored with it said it was not)
    let (_, stored) = admin.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(stored["outcome"]["receipt"]["wal_purged"], true, "{stored}");
    assert_eq!(
        stored["outcome"]["receipt"]["signed_note"], receipt["signed_note"],
        "{stored}"
    );
    let kept = &receipt["kept"][0];
    assert_eq!(kept["purpose"], "tax_records", "{receipt}");
    assert_eq!(kept["legal_basis"], "legal_obligation");
    assert_eq!(
        kept["fields"],
        json!(["customers.name", "customers.shipping_address"]),
        "{receipt}"
    );

    // Every later read finds nothing, except the tax record under its own purpose.
    let (s, v) = admin.get(&format!("{CUST}?purpose=order_fulfillment")).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = admin.get(&format!("{CUST}/{order}?purpose=order_fulfillment")).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = admin.get(&format!("{CUST}/{tax}?purpose=order_fulfillment")).await;
    assert_eq!(s, 404, "the tax record is not readable under another purpose: {v}");
    let (s, v) = admin.get(&format!("{CUST}/{tax}?purpose=tax_records")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fields"]["shipping_address"], "1 Shred Lane", "{v}");
    let (s, v) = admin
        .post(
            "/v1/search",
            json!({"collection": "customers", "field": "email", "value": "erin@example.com", "purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "order_fulfillment", "tokens": [token]}),
        )
        .await;
    assert!(
        s != 200 || v["values"][0].get("value").is_none(),
        "an erased subject's token no longer stands for anything: {v}"
    );
    let (s, v) = admin.get("/v1/subjects/cust_e/consents").await;
    assert_eq!(s, 200, "{v}");
    assert!(
        !v.to_string().contains("EraseAgent"),
        "the sealed user agent is shredded: {v}"
    );
    assert_eq!(v["consents"][0]["granted"], false, "consent ends with the erasure: {v}");
    let (s, v) = admin
        .get("/v1/subjects/cust_keep/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(v["records"][0]["fields"]["email"], "kept@example.com", "{s} {v}");

    // The request is closed; its subject is known only by digest; it cannot run again.
    let (s, v) = admin.get(&format!("/v1/requests/{id}")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    assert!(v.get("subject_id").is_none(), "{v}");
    assert!(
        !v.to_string().contains("Erin"),
        "what the operator wrote about the person goes too: {v}"
    );
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("request_closed")), "{v}");

    // Neither the destroyed key nor the deleted ciphertext is left in any file (WAL included);
    // no plaintext ever was.
    for (file, bytes) in all_bytes(&vault) {
        assert!(!contains(&bytes, &key), "{file} still holds the destroyed data key");
        for (field, ct) in &ciphertexts {
            assert!(
                !contains(&bytes, ct),
                "{file} still holds the deleted ciphertext of {field}"
            );
        }
        for plain in ["erin@example.com", "Erin Eraseme", "EraseAgent"] {
            assert!(!contains(&bytes, plain.as_bytes()), "{file} holds {plain}");
        }
    }

    // The receipt verifies against the receipt key, and a doctored one does not.
    let out = custodia()
        .args(["receipt", "key", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let receipt_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(receipt["public_key"], receipt_key.as_str());
    let file = vault.path().join("receipt.json");
    std::fs::write(&file, receipt.to_string()).unwrap();
    let out = custodia()
        .args(["receipt", "verify", "--public-key", &receipt_key])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("deleted records"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doctored = receipt.clone();
    doctored["deleted"]["records"] = json!(300);
    std::fs::write(&file, doctored.to_string()).unwrap();
    let out = custodia()
        .args(["receipt", "verify", "--public-key", &receipt_key])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "JSON that says more than its note is refused"
    );
    let forged = receipt["signed_note"]
        .as_str()
        .unwrap()
        .replace("deleted records", "deleted  records");
    std::fs::write(&file, forged).unwrap();
    let out = custodia()
        .args(["receipt", "verify", "--public-key", &receipt_key])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an edited receipt is refused");

    // No write under another purpose binds them again, before the subject comes back or
    // after: the same value and a new one are refused alike (a refused write left the new
    // key it drew behind, and then the same value was taken).
    let rebind = |address: &'static str| json!({"fields": {"shipping_address": address}});
    let tax_under_orders = format!("{CUST}/{tax}?purpose=order_fulfillment");
    for address in ["9 Wrong Way", "1 Shred Lane", "1 Shred Lane"] {
        let (s, v) = admin.call("PATCH", &tax_under_orders, Some(rebind(address))).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("record_retained")),
            "{address}: {v}"
        );
    }
    // The subject comes back: its tax records stay readable only under tax_records.
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "back@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, v) = admin.get(&format!("{CUST}?purpose=order_fulfillment")).await;
    assert_eq!(
        v["records"].as_array().map(Vec::len),
        Some(1),
        "only the new record: {v}"
    );
    assert!(!v.to_string().contains("Shred Lane"), "{v}");
    for address in ["1 Shred Lane", "9 Wrong Way"] {
        let (s, v) = admin.call("PATCH", &tax_under_orders, Some(rebind(address))).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("record_retained")),
            "{address}: {v}"
        );
    }
    let (s, v) = admin.get(&tax_under_orders).await;
    assert_eq!(s, 404, "{v}");

    // The audit log still verifies.
    server.terminate();
    let out = custodia()
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_queue_verification_extension_and_denial() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;

    // GDPR: one month, clamped to the month's end (31 March -> 30 April), moved past weekends
    // and holidays (31 January -> Saturday 28 February -> Monday 2 March); days are the
    // controller's (GB: London's, an hour ahead of UTC in summer).
    let v = open(
        &mut admin,
        "cust_d",
        "access",
        "gdpr",
        json!({"received_at": "2026-03-31T10:00:00Z"}),
    )
    .await;
    assert_eq!(v["due_at"], "2026-04-30T22:59:59.999Z", "{v}");
    let v = open(
        &mut admin,
        "cust_d",
        "access",
        "gdpr",
        json!({"received_at": "2026-01-31T10:00:00Z"}),
    )
    .await;
    assert_eq!(v["due_at"], "2026-03-02T23:59:59.999Z", "{v}");
    assert!(
        v.get("extendable_until").is_none(),
        "an extension is long too late: {v}"
    );
    assert_eq!(v["status"], "received");
    assert_eq!(v["overdue"], true, "{v}");
    let old = v["request_id"].as_str().unwrap().to_owned();
    // CCPA: acknowledge within 10 business days (Thanksgiving and the day after are
    // California holidays), respond within 45 calendar days; days are California's (Pacific
    // time, UTC-8 in winter), each deadline the end of a Californian day.
    let v = open(
        &mut admin,
        "cust_d",
        "access",
        "ccpa",
        json!({"received_at": "2026-11-20T09:00:00Z"}),
    )
    .await;
    assert_eq!(v["acknowledge_by"], "2026-12-09T07:59:59.999Z", "{v}");
    assert_eq!(v["due_at"], "2027-01-05T07:59:59.999Z", "{v}");
    let ccpa = v["request_id"].as_str().unwrap().to_owned();
    // Opt-out of sale: 15 business days.
    let v = open(
        &mut admin,
        "cust_d",
        "opt_out_sale",
        "ccpa",
        json!({"received_at": "2026-11-20T09:00:00Z"}),
    )
    .await;
    assert_eq!(v["due_at"], "2026-12-16T07:59:59.999Z", "{v}");
    // Received on a Californian evening (21:00 on 28 February, 05:00 UTC on 1 March): the
    // 45 days run from 28 February, to the end of 14 April there (summer time, UTC-7).
    let v = open(
        &mut admin,
        "cust_d",
        "access",
        "ccpa",
        json!({"received_at": "2026-03-01T05:00:00Z"}),
    )
    .await;
    assert_eq!(v["due_at"], "2026-04-15T06:59:59.999Z", "{v}");
    // Its receipt was due to be confirmed in March and nothing was done: flagged (the duty
    // was computed and never tracked; review), until the request moves on.
    assert_eq!(v["acknowledgement_overdue"], true, "{v}");
    let march = v["request_id"].as_str().unwrap().to_owned();
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{march}/verify"),
            json!({"verified_by": "signed-in account"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["acknowledgement_overdue"], false, "{v}");

    // The queue: open requests, soonest due first; due_before narrows it.
    let (s, v) = admin.get("/v1/requests?status=open").await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&old.as_str()), "{v}");
    let (s, v) = admin.get("/v1/requests?due_before=2026-04-01T00:00:00Z").await;
    assert_eq!((s, v["requests"].as_array().map(Vec::len)), (200, Some(1)), "{v}");

    // No fulfilment before verification; verification is recorded, by whom and how.
    let (s, v) = fulfil(&mut admin, &ccpa, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("request_not_verified")),
        "{v}"
    );
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{ccpa}/verify"),
            json!({"verified_by": "matched two data points", "pending": true}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("verifying")), "{v}");
    let (s, v) = fulfil(&mut admin, &ccpa, json!({})).await;
    assert_eq!(s, 409, "pending verification is not verification: {v}");

    // CCPA extension: once, within the first 45 days, 45 more days.
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{ccpa}/extend"),
            json!({"reason": "We need to search archived order systems."}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("extended")), "{v}");
    assert_eq!(v["due_at"], "2027-02-19T07:59:59.999Z", "{v}");
    let (s, v) = admin
        .post(&format!("/v1/requests/{ccpa}/extend"), json!({"reason": "again"}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("request_extended")), "{v}");
    // GDPR: the extension must be notified within the first month; long past here.
    let (s, v) = admin
        .post(&format!("/v1/requests/{old}/extend"), json!({"reason": "complex"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("extension_too_late")),
        "{v}"
    );

    // Reasons are told to the requester and kept with the request, in the clear: no one is
    // named in them.
    for path in ["extend", "deny"] {
        let (s, v) = admin
            .post(
                &format!("/v1/requests/{old}/{path}"),
                json!({"reason": "Call Mr Henry Higgins on +44 20 7946 0958."}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (422, Some("text_has_personal_data"), Some("reason")),
            "{v}"
        );
    }

    // Denial names the reason and where to complain.
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{old}/deny"),
            json!({"reason": "Identity could not be verified."}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("denied")), "{v}");
    assert!(v["denial"]["complain_to"].as_str().unwrap().contains("ICO"), "{v}");
    assert_eq!(v["overdue"], false, "a closed request is not overdue");
    let (s, v) = admin
        .post(&format!("/v1/requests/{old}/verify"), json!({"verified_by": "late"}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("request_closed")), "{v}");

    // Bad input: clear 4xx naming what is wrong.
    let (_, before) = admin.get("/v1/requests").await;
    for (body, status, code) in [
        (
            json!({"subject_id": "cust_d", "type": "delete_everything", "jurisdiction": "gdpr"}),
            400,
            "invalid_request_type",
        ),
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "mars"}),
            400,
            "unknown_jurisdiction",
        ),
        (
            json!({"subject_id": "a@b", "type": "access", "jurisdiction": "gdpr"}),
            400,
            "invalid_subject_id",
        ),
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "gdpr", "received_at": "2999-01-01T00:00:00Z"}),
            422,
            "invalid_received_at",
        ),
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "gdpr", "received_via": "pigeon"}),
            400,
            "invalid_received_via",
        ),
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "gdpr", "verified_by": ""}),
            422,
            "invalid_text",
        ),
        // How the requester was verified is kept in the clear with the request: it must name
        // no one.
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "gdpr", "verified_by": "passport of Diana Prince"}),
            422,
            "text_has_personal_data",
        ),
        (
            json!({"subject_id": "cust_d", "type": "access", "jurisdiction": "gdpr", "verified_by": "replied from diana@example.com"}),
            422,
            "text_has_personal_data",
        ),
    ] {
        let (s, v) = admin.post("/v1/requests", body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{v}");
        assert!(
            !v.to_string().to_lowercase().contains("diana"),
            "the error echoes no text: {v}"
        );
    }
    let (_, after) = admin.get("/v1/requests").await;
    assert_eq!(after, before, "no refused request was opened");
    let (s, v) = admin.get("/v1/requests/req_nope").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("request_not_found")),
        "{v}"
    );
    let (s, v) = admin.get("/v1/requests?status=everything").await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_fulfil_requests_roles_touch_requests_and_refusals_are_audited() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let v = open(&mut admin, "cust_r", "erasure", "gdpr", json!({})).await;
    let id = v["request_id"].as_str().unwrap().to_owned();
    let support = admin.principal("desk", &["support_agent"]).await;
    let mut support = server.client(&support).await;
    for (method, path, body) in [
        (
            "POST",
            "/v1/requests".to_owned(),
            Some(json!({"subject_id": "cust_r", "type": "access", "jurisdiction": "gdpr"})),
        ),
        ("GET", "/v1/requests".to_owned(), None),
        ("GET", format!("/v1/requests/{id}"), None),
        (
            "POST",
            format!("/v1/requests/{id}/verify"),
            Some(json!({"verified_by": "trust me"})),
        ),
        ("POST", format!("/v1/requests/{id}/fulfil"), Some(json!({}))),
        ("POST", format!("/v1/requests/{id}/deny"), Some(json!({"reason": "no"}))),
    ] {
        let (s, v) = support.call(method, &path, body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("not_allowed")),
            "{method} {path}: {v}"
        );
    }
    let (_, v) = admin.get("/v1/audit/events?decision=deny&action=request.fulfil").await;
    let entries = v["events"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{v}");
    assert!(
        entries[0]["entry"]["subject"].is_string(),
        "the refusal names the subject's digest: {v}"
    );
    // Nothing happened to the request.
    let (_, v) = admin.get(&format!("/v1/requests/{id}")).await;
    assert_eq!(v["status"], "received", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rectification_replaces_values_and_kills_old_tokens_and_index_entries() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "old@example.com", "name": "Old Name"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let record = v["record_id"].as_str().unwrap().to_owned();
    let (_, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_e", "collection": "customers", "field": "email", "purpose": "order_fulfillment",
                   "values": ["old@example.com"], "kind": "deterministic"}),
        )
        .await;
    let old_token = v["tokens"][0].as_str().unwrap().to_owned();
    let (_, old_ct) = stored_secrets(&vault, "cust_e").await;
    let id = open(
        &mut admin,
        "cust_e",
        "rectification",
        "gdpr",
        json!({"verified_by": "signed-in account"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bad corrections change nothing.
    for (body, status, code) in [
        (json!({}), 422, "no_corrections"),
        (
            json!({"corrections": [{"collection": "customers", "record_id": record, "fields": {"phone": "+44 20 7946 0000"}}]}),
            409,
            "field_not_held",
        ),
        (
            json!({"corrections": [{"collection": "customers", "record_id": record, "fields": {"email": "not an email"}}]}),
            422,
            "invalid_field",
        ),
        (
            json!({"corrections": [{"collection": "customers", "record_id": record, "fields": {"shoe_size": "9"}}]}),
            422,
            "unknown_field",
        ),
    ] {
        let (s, v) = fulfil(&mut admin, &id, body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{v}");
    }
    // A legal hold keeps the values as they are, as it does against a PATCH, until released.
    let correct = json!({"corrections": [{"collection": "customers", "record_id": record, "fields": {"email": "new@example.com"}}]});
    let (s, hold) = admin
        .post(
            "/v1/retention/holds",
            json!({"subject_id": "cust_e", "reason": "claim 2026-114"}),
        )
        .await;
    assert_eq!(s, 201, "{hold}");
    let (s, v) = fulfil(&mut admin, &id, correct.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("legal_hold")), "{v}");
    // the refusal is a decision, audited with its reason
    let (_, v) = admin.get("/v1/audit/events?action=request.fulfil&decision=deny").await;
    assert!(
        v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["entry"]["reason"] == "legal_hold")),
        "{v}"
    );
    let (_, v) = admin.get(&format!("{CUST}/{record}?purpose=order_fulfillment")).await;
    assert_eq!(v["fields"]["email"], "old@example.com", "{v}");
    let hold_id = hold["hold_id"].as_str().unwrap_or_else(|| panic!("{hold}"));
    let (s, v) = admin
        .post(
            &format!("/v1/retention/holds/{hold_id}/release"),
            json!({"reason": "claim settled"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = fulfil(&mut admin, &id, correct).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");

    let (_, v) = admin.get(&format!("{CUST}/{record}?purpose=order_fulfillment")).await;
    assert_eq!(v["fields"]["email"], "new@example.com", "{v}");
    assert_eq!(v["fields"]["name"], "Old Name", "{v}");
    let search = |value: &str| json!({"collection": "customers", "field": "email", "value": value, "purpose": "order_fulfillment"});
    let (_, v) = admin.post("/v1/search", search("old@example.com")).await;
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = admin.post("/v1/search", search("new@example.com")).await;
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(1), "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "order_fulfillment", "tokens": [old_token]}),
        )
        .await;
    assert!(
        s != 200 || v["values"][0].get("value").is_none(),
        "the old value's token no longer detokenizes: {v}"
    );
    // The email's old ciphertext is gone from every file (WAL included); the name's, not
    // corrected, is still there (the check can see ciphertext).
    let files = all_bytes(&vault);
    for (field, ct) in &old_ct {
        let found = files.iter().any(|(_, bytes)| contains(bytes, ct));
        assert_eq!(found, field == "name", "ciphertext of {field} found: {found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restriction_objection_and_limits_take_effect_when_fulfilled() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "customer_support", "fields": {"email": "lim@example.com", "card_number": "4242 4242 4242 4242"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let support = admin.principal("desk", &["support_agent"]).await;
    let mut support = server.client(&support).await;
    let (_, v) = support.get(&format!("{CUST}?purpose=customer_support")).await;
    assert!(v["records"][0]["fields"]["card_number"].is_string(), "{v}");

    // A limit on sensitive data needs no verification (CCPA §7027) and hides card numbers
    // from a legitimate-interests purpose; the payment purpose (contract) still sees them.
    let id = open(&mut admin, "cust_e", "limit_sensitive", "ccpa", json!({})).await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    let (_, v) = support.get(&format!("{CUST}?purpose=customer_support")).await;
    assert!(v["records"][0]["fields"].get("card_number").is_none(), "{v}");
    assert_eq!(v["records"][0]["fields"]["email"], "lim@example.com", "{v}");
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "customer_support", "fields": {"card_number": "5555 5555 5555 4444"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("sensitive_use_limited")),
        "{v}"
    );
    let (s, _) = admin.get(&format!("{CUST}?purpose=payment")).await;
    assert_eq!(s, 200);

    // An objection to a legitimate-interests purpose stops it; objecting to a contract
    // purpose is refused by name.
    let id = open(
        &mut admin,
        "cust_e",
        "objection",
        "gdpr",
        json!({"verified_by": "email reply"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({"purposes": []})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("no_purposes")), "{v}");
    let (s, v) = fulfil(&mut admin, &id, json!({"purposes": ["payment"]})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("objection_not_applicable")),
        "{v}"
    );
    let (s, v) = fulfil(&mut admin, &id, json!({"purposes": ["customer_support"]})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = support.get(&format!("{CUST}?purpose=customer_support")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("subject_objected")), "{v}");

    // A restriction stops everything but the purposes allowed during one.
    let id = open(
        &mut admin,
        "cust_e",
        "restriction",
        "gdpr",
        json!({"verified_by": "email reply"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin.get(&format!("{CUST}?purpose=order_fulfillment")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("subject_restricted")),
        "{v}"
    );
    let (s, v) = admin.get(&format!("{CUST}?purpose=tax_records")).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = admin.get("/v1/subjects/cust_e/consents").await;
    assert_eq!(
        (v["restricted"].as_bool(), v["limit_sensitive"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_backup_taken_before_an_erasure_does_not_bring_the_subject_back() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for (subject, email) in [("cust_gone", "gone@example.com"), ("cust_stays", "stays@example.com")] {
        let (s, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/records/customers"),
                json!({"purpose": "order_fulfillment", "fields": {"email": email, "name": "Backed Up"}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    // A hold in force when the backup is taken, released after it.
    let (s, hold) = admin
        .post(
            "/v1/retention/holds",
            json!({"subject_id": "cust_stays", "reason": "claim 2026-299"}),
        )
        .await;
    assert_eq!(s, 201, "{hold}");
    let released_id = hold["hold_id"].as_str().unwrap().to_owned();
    // An online backup, taken while the server runs.
    let backup = vault.path().join("before-erasure.db");
    let out = custodia()
        .args(["backup", "--data-dir"])
        .arg(vault.path())
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = custodia()
        .args(["backup", "--data-dir"])
        .arg(vault.path())
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an existing backup file is never overwritten");
    // Legal holds placed after the backup (and one released after it) are carried over: a
    // restore does not let held data be erased or swept.
    let (s, hold) = admin
        .post(
            "/v1/retention/holds",
            json!({"subject_id": "cust_stays", "reason": "claim 2026-300"}),
        )
        .await;
    assert_eq!(s, 201, "{hold}");
    let held_id = hold["hold_id"].as_str().unwrap().to_owned();
    let (s, v) = admin
        .post(
            &format!("/v1/retention/holds/{released_id}/release"),
            json!({"reason": "claim settled"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // What a subject decided after the backup is carried over too: an objection, an opt-out
    // of sale, and the consent (with evidence) of a subject new since the backup.
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_stays/objections",
            json!({"purpose": "customer_support", "objected": true, "method": "email"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_stays/sale-opt-out",
            json!({"opted_out": true, "method": "email"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let consent = json!({"purpose": "marketing_email", "granted": true, "notice_version": "2026-11",
                         "method": "web_form", "evidence": {"ip": "203.0.113.7", "user_agent": "Restored/1.0"}});
    let (s, v) = admin.post("/v1/subjects/cust_new/consents", consent).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .get("/v1/subjects/cust_stays/records/customers?purpose=customer_support")
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("subject_objected")), "{v}");

    let id = open(
        &mut admin,
        "cust_gone",
        "erasure",
        "gdpr",
        json!({"verified_by": "account"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let log = std::fs::read_to_string(vault.path().join("erasures.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        !log.contains("cust_gone"),
        "the tombstone log holds digests, never ids: {log}"
    );
    // The disk is lost: a new directory with the key and the registry but neither a database
    // nor a tombstone log cannot tell who was erased since the backup, and refuses (review:
    // the erased subject came back, "0 tombstones known"); the copy of the log kept elsewhere
    // erases again, and a restore without one must be asked for by name.
    let holder = tempfile::tempdir().unwrap();
    let kept = holder.path().join("erasures.log.copy");
    std::fs::write(&kept, &log).unwrap();
    let fresh = |name: &str| {
        let dir = holder.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        for file in ["root.key", "registry.toml"] {
            std::fs::copy(vault.path().join(file), dir.join(file)).unwrap();
        }
        dir
    };
    let restore = |dir: &std::path::Path, more: &[&std::ffi::OsStr]| {
        let out = custodia()
            .args(["restore", "--data-dir"])
            .arg(dir)
            .arg("--from")
            .arg(&backup)
            .args(more)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    };
    let lost = fresh("lost");
    let (ok, said) = restore(&lost, &[]);
    assert!(!ok && said.contains("--tombstones FILE"), "{said}");
    assert!(!lost.join("custodia.db").exists(), "nothing restored: {said}");
    // nor does a log that holds no tombstone (the log is written with the first erasure: an
    // empty one was made by hand), or a copy given that holds none (review)
    let emptied = fresh("emptied");
    std::fs::write(emptied.join("erasures.log"), "").unwrap();
    let (ok, said) = restore(&emptied, &[]);
    assert!(!ok && said.contains("--tombstones FILE"), "{said}");
    let blank = holder.path().join("blank.log");
    std::fs::write(&blank, "").unwrap();
    let (ok, said) = restore(&emptied, &["--tombstones".as_ref(), blank.as_os_str()]);
    assert!(!ok && said.contains("nor in the copies given"), "{said}");
    let (ok, said) = restore(&lost, &["--tombstones".as_ref(), kept.as_os_str()]);
    assert!(ok && said.contains("1 subjects erased again"), "{said}");
    // the restored log is whole and signed (the backup's tail before the erasure made again):
    // a start accepting the lost checkpoint log serves it
    let (ok, verified) = crate::audit::verify_with(&lost, &vault.audit_key, &["--no-checkpoint-log"]);
    assert!(
        ok && verified.contains("0 entries after the last checkpoint"),
        "{verified}"
    );
    crate::support::Server::try_start(&lost, None, &["--new-checkpoint-log"])
        .unwrap()
        .terminate();
    let (ok, said) = restore(&fresh("no-copy"), &["--no-tombstones".as_ref()]);
    assert!(
        ok && said.contains("0 subjects erased again") && said.contains("comes back"),
        "{said}"
    );

    // The subject comes back after its erasure, and consents anew; the backup taken before
    // is restored below.
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_gone/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "returned@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let consent_again = json!({"purpose": "marketing_email", "granted": true, "notice_version": "2026-11",
                               "method": "web_form", "evidence": {"user_agent": "ComebackUA/1"}});
    let (s, v) = admin.post("/v1/subjects/cust_gone/consents", consent_again).await;
    assert_eq!(s, 201, "{v}");
    // Restoring needs the server stopped.
    let out = custodia()
        .args(["restore", "--data-dir"])
        .arg(vault.path())
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "restore refuses while the server holds the directory"
    );
    server.terminate();
    // The tombstone log and the database's list deleted together (an insider with the data
    // directory): the audit log, which the checkpoints vouch for, still names the erasure,
    // and the subject stays erased (it came back; review).
    {
        let copy = crate::audit::copy_of(vault.path());
        std::fs::remove_file(copy.path().join("erasures.log")).unwrap();
        let db = crate::audit::attacker(copy.path()).await;
        for sql in ["DROP TRIGGER erasures_no_delete", "DELETE FROM erasures"] {
            sqlx::query(sql).execute(&db).await.unwrap();
        }
        db.close().await;
        let out = custodia()
            .args(["restore", "--data-dir"])
            .arg(copy.path())
            .arg("--from")
            .arg(&backup)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("1 subjects erased again"),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A damaged tombstone log stops the restore before anything changed.
    let log_path = vault.path().join("erasures.log");
    std::fs::write(&log_path, "garbage\n").unwrap();
    let db_before = std::fs::read(vault.path().join("custodia.db")).unwrap();
    let out = custodia()
        .args(["restore", "--data-dir"])
        .arg(vault.path())
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a damaged tombstone log refuses the restore");
    assert_eq!(
        std::fs::read(vault.path().join("custodia.db")).unwrap(),
        db_before,
        "untouched"
    );
    // Without the log, the tombstones of the database being replaced still count.
    std::fs::remove_file(&log_path).unwrap();
    let out = custodia()
        .args(["restore", "--data-dir"])
        .arg(vault.path())
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 subjects erased again"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The erasure made again is in the audit log, signed: the log verifies at once.
    let (ok, verified) = crate::audit::verify_with(vault.path(), &vault.audit_key, &["--max-unsigned-age", "0s"]);
    assert!(
        ok && verified.contains("0 entries after the last checkpoint"),
        "{verified}"
    );

    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .get("/v1/subjects/cust_gone/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    // The consent given after the erasure stands: the erasure made again ends only what was
    // given before it (before, it appended a withdrawal after the new consent).
    let (_, v) = admin.get("/v1/subjects/cust_gone/consents").await;
    assert_eq!(
        (
            v["consents"][0]["purpose"].as_str(),
            v["consents"][0]["granted"].as_bool()
        ),
        (Some("marketing_email"), Some(true)),
        "{v}"
    );
    // and its evidence, sealed under the key the subject got when it came back, still reads
    // (the backup's older key stood in its way and the erasure made again left none; review)
    let last = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["evidence"]["user_agent"], "ComebackUA/1", "{v}");
    let (_, holds) = admin.get("/v1/retention/holds").await;
    assert_eq!(holds["holds"][0]["hold_id"], held_id.as_str(), "{holds}");
    assert_eq!(
        holds["holds"].as_array().map(Vec::len),
        Some(1),
        "the one released stays released: {holds}"
    );
    let (s, v) = admin
        .get("/v1/subjects/cust_stays/records/customers?purpose=customer_support")
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("subject_objected")), "{v}");
    let (_, v) = admin.get("/v1/subjects/cust_stays/consents").await;
    assert_eq!(v["sale_opt_out"], true, "{v}");
    let (_, v) = admin.get("/v1/subjects/cust_new/consents").await;
    assert!(v.to_string().contains("Restored/1.0"), "the evidence opens: {v}");
    let release = json!({"reason": "claim settled"});
    let (s, v) = admin
        .post(&format!("/v1/retention/holds/{held_id}/release"), release)
        .await;
    assert_eq!(s, 200, "{v}");
    // Re-applying on a database holding what the subject gave after its erasure keeps that.
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_gone/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "returned@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    server.terminate();
    let out = custodia()
        .args(["erasures", "reapply", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 tombstones known, 0 subjects erased again"),
        "{text}"
    );
    // Another node's tombstone log joins this one's; a missing or damaged one stops the run.
    let other_node = vault.path().join("other-node-erasures.log");
    std::fs::write(
        &other_node,
        "{\"subject_digest\":\"00112233445566778899aabbccddeeff\",\"at\":1}\n",
    )
    .unwrap();
    let reapply = |extra: &std::path::Path| {
        custodia()
            .args(["erasures", "reapply", "--data-dir"])
            .arg(vault.path())
            .arg("--tombstones")
            .arg(extra)
            .output()
            .unwrap()
    };
    let out = reapply(&other_node);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("2 tombstones known, 0 subjects erased again"),
        "{text}"
    );
    let out = reapply(&vault.path().join("no-such.log"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.log: no such tombstone log"));
    std::fs::write(&other_node, "garbage\n").unwrap();
    let out = reapply(&other_node);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("other-node-erasures.log:1: not a tombstone line"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (_, v) = admin
        .get("/v1/subjects/cust_gone/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(v["records"][0]["fields"]["email"], "returned@example.com", "{v}");
    let (_, v) = admin
        .post(
            "/v1/search",
            json!({"collection": "customers", "field": "email", "value": "gone@example.com", "purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = admin
        .get("/v1/subjects/cust_stays/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(v["records"][0]["fields"]["email"], "stays@example.com", "{v}");
    // A backup of another vault (another root key) is refused, and the database is untouched.
    let other = Vault::init();
    let foreign = other.path().join("other.db");
    let out = custodia()
        .args(["backup", "--data-dir"])
        .arg(other.path())
        .arg("--out")
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(out.status.success());
    server.terminate();
    let out = custodia()
        .args(["restore", "--data-dir"])
        .arg(vault.path())
        .arg("--from")
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a foreign backup is refused");
    let server = vault.serve();
    let (_, v) = server
        .client(&vault.token)
        .await
        .get("/v1/subjects/cust_stays/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(v["records"][0]["fields"]["email"], "stays@example.com", "{v}");
    // The audit log stayed whole across the restore: it verifies against the pinned key and
    // the checkpoints published before it.
    server.terminate();
    let out = custodia()
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_on_postgres_and_a_second_erasure_request_closes_as_already_done() {
    let Some(url) = crate::support::postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    let vault = Vault::init_with(Some(crate::support::fresh_postgres_database(&url)));
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "pg@example.com", "name": "Pg Erased"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "tax_records", "fields": {"name": "Pg Erased", "shipping_address": "2 Ledger Row"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let first = open(
        &mut admin,
        "cust_e",
        "erasure",
        "gdpr",
        json!({"verified_by": "account"}),
    )
    .await;
    let second = open(
        &mut admin,
        "cust_e",
        "erasure",
        "ccpa",
        json!({"verified_by": "account"}),
    )
    .await;
    let (s, receipt) = fulfil(&mut admin, first["request_id"].as_str().unwrap(), json!({})).await;
    assert_eq!(s, 200, "{receipt}");
    assert_eq!(receipt["kept"][0]["purpose"], "tax_records", "{receipt}");
    let (s, v) = admin.get(&format!("{CUST}?purpose=order_fulfillment")).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = admin.get(&format!("{CUST}?purpose=tax_records")).await;
    assert_eq!(v["records"][0]["fields"]["shipping_address"], "2 Ledger Row", "{s} {v}");
    let (s, v) = fulfil(&mut admin, second["request_id"].as_str().unwrap(), json!({})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    assert_eq!(v["outcome"]["already_erased"], true, "{v}");
}

/// A webhook receiver: what it was sent.
pub(crate) type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

pub(crate) async fn start_receiver() -> (String, Received) {
    let got: Received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/art19", listener.local_addr().unwrap().port());
    let store = std::sync::Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hooks/art19",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = std::sync::Arc::clone(&store);
            async move {
                store.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_get_a_signed_art19_notice_of_an_erasure() {
    let (url, got) = start_receiver().await;
    let vault = Vault::init();
    let registry = vault.path().join("registry.toml");
    let text = std::fs::read_to_string(&registry).unwrap().replace(
        "[recipients.parcel_carrier]\nname = \"Parcel Carrier Ltd\"",
        &format!("[recipients.parcel_carrier]\nname = \"Parcel Carrier Ltd\"\nwebhook = \"{url}\""),
    );
    assert!(text.contains(&url), "the example registry names the parcel carrier");
    std::fs::write(&registry, text).unwrap();
    let out = custodia()
        .args(["webhook-secret", "parcel_carrier", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = hex::decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();

    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "hook@example.com", "name": "Hooked"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "payment", "fields": {"card_number": "4242 4242 4242 4242"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // analytics holds cust_e's email only as a token: its recipient is told too (it was not)
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    let (s, v) = admin.post("/v1/subjects/cust_e/consents", consent).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_e", "collection": "customers", "field": "email", "purpose": "analytics",
                   "values": ["hook@example.com"], "kind": "deterministic"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = open(
        &mut admin,
        "cust_e",
        "erasure",
        "gdpr",
        json!({"verified_by": "account"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(s, 200, "{v}");

    // The notifications job delivers it within a few of its runs.
    let mut view = Value::Null;
    for _ in 0..100 {
        view = admin.get(&format!("/v1/requests/{id}")).await.1;
        let delivered = view["notifications"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n["recipient"] == "parcel_carrier" && n["status"] == "delivered")
        });
        if delivered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let notices = view["notifications"].as_array().cloned().unwrap_or_default();
    let status = |name: &str| {
        notices
            .iter()
            .find(|n| n["recipient"] == name)
            .map(|n| n["status"].clone())
    };
    assert_eq!(status("parcel_carrier"), Some(json!("delivered")), "{view}");
    assert_eq!(
        status("payment_processor"),
        Some(json!("no_webhook")),
        "a recipient without a webhook is listed as not notified: {view}"
    );
    assert_eq!(status("ad_partner"), Some(json!("no_webhook")), "{view}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one notice, to the one recipient with a webhook");
    let (headers, body) = &got[0];
    let notice: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (
            notice["action"].as_str(),
            notice["subject_id"].as_str(),
            notice["request_id"].as_str()
        ),
        (Some("erasure"), Some("cust_e"), Some(id.as_str())),
        "{notice}"
    );
    assert!(!body.contains("hook@example.com"), "names, never values: {body}");
    let signature = headers.get("custodia-signature").unwrap().to_str().unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    custodia_core::verify_signature(&secret, signature, body.as_bytes(), now, 300).unwrap();
    let mut forged = body.clone();
    forged.push(' ');
    assert!(custodia_core::verify_signature(&secret, signature, forged.as_bytes(), now, 300).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_request_returns_the_subjects_data_purposes_consents_and_access_history() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "acc@example.com", "name": "<script>alert(1)</script>"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_e/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "web_form"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let desk = admin.principal("desk", &["support_agent"]).await;
    let (s, _) = server
        .client(&desk)
        .await
        .get(&format!("{CUST}?purpose=customer_support"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = admin
        .post(
            "/v1/subjects/someone_else/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "other@example.com"}}),
        )
        .await;
    assert_eq!(s, 201);

    // a value held as a token only: the package names it (it cannot show it: the value is
    // sealed to its token, which the vault does not keep)
    let (s, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_e", "collection": "customers", "field": "email",
                   "purpose": "order_fulfillment", "values": ["tok.only@example.com"], "kind": "random"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = open(&mut admin, "cust_e", "access", "gdpr", json!({})).await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("request_not_verified")),
        "{v}"
    );
    let (s, _) = admin
        .post(
            &format!("/v1/requests/{id}/verify"),
            json!({"verified_by": "signed-in account"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, package) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!(s, 200, "{package}");
    let text = package.to_string();
    assert_eq!(package["subject_id"], "cust_e");
    let tokens = package["tokens"].as_array().unwrap_or_else(|| panic!("{package}"));
    assert!(
        tokens.iter().any(|t| t["collection"] == "customers"
            && t["field"] == "email"
            && t["purpose"] == "order_fulfillment"
            && t["count"] == 1
            && t["category"] == "user.contact.email"),
        "{package}"
    );
    assert!(!text.contains("tok.only@example.com"), "{package}");
    assert!(text.contains("acc@example.com"), "the subject's values: {package}");
    assert!(
        !text.contains("other@example.com"),
        "never another subject's: {package}"
    );
    let purposes: Vec<&str> = package["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        purposes.contains(&"order_fulfillment") && purposes.contains(&"marketing_email"),
        "{purposes:?}"
    );
    // Support holds none of the subject's values but read them: a purpose of the processing
    // (Art. 15(1)(a)), with its legal basis and the interest pursued.
    let support = package["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "customer_support")
        .unwrap_or_else(|| panic!("customer_support missing: {purposes:?}"));
    assert_eq!(support["legal_basis"], "legitimate_interests", "{support}");
    assert!(support["legitimate_interest"].is_string(), "{support}");
    assert!(
        text.contains("contract") && text.contains("Parcel Carrier Ltd"),
        "legal basis and recipients: {package}"
    );
    assert_eq!(package["consent_history"][0]["purpose"], "marketing_email", "{package}");
    let accessed = package["access_history"].as_array().unwrap();
    assert!(
        accessed
            .iter()
            .any(|a| a["principal"] == "desk" && a["purpose"] == "customer_support"),
        "who read the data, under which purpose: {package}"
    );
    // A package is given once: the completed request is no standing handle on the subject's
    // data (a value written since would come with it).
    let (s, _) = admin
        .post(
            CUST,
            json!({"purpose": "order_fulfillment", "fields": {"email": "written.after@example.com"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = fulfil(&mut admin, &id, json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("request_closed")), "{v}");
    assert!(!v.to_string().contains("written.after"), "{v}");
    // The readable page (another request) escapes every value.
    let again = open(
        &mut admin,
        "cust_e",
        "access",
        "gdpr",
        json!({"verified_by": "signed-in account"}),
    )
    .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, page) = admin
        .text("POST", &format!("/v1/requests/{again}/fulfil?format=html"), "{}")
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>alert"),
        "values are escaped"
    );
    assert!(page.contains("Values held as tokens"), "{page}");
    let (s, v) = admin
        .post(&format!("/v1/requests/{id}/fulfil?format=pdf"), json!({}))
        .await;
    assert_eq!(s, 400, "{v}");
    // The disclosure is audited, about the subject.
    let (_, v) = admin
        .get("/v1/audit/events?action=request.fulfil&subject_id=cust_e")
        .await;
    assert!(v["events"].as_array().is_some_and(|e| e.len() >= 2), "{v}");
}

/// A restore undoes no decision about access or duties taken since the backup: a key
/// revoked or rotated stays dead (the rotated one's new key works), an incident opened since
/// stays in the breach register with its whole timeline, a request keeps its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_backup_brings_back_no_dead_key_and_loses_no_incident_or_request() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let mut keys = Vec::new();
    for name in ["revoked-desk", "rotated-desk"] {
        let (s, v) = admin
            .post("/v1/principals", json!({"name": name, "roles": ["support_agent"]}))
            .await;
        assert_eq!(s, 201, "{v}");
        keys.push((
            v["principal_id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        ));
    }
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_kept/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "kept@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let backup = vault.path().join("before-the-decisions.db");
    let out = custodia()
        .args(["backup", "--data-dir"])
        .arg(vault.path())
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (revoked, rotated) = (&keys[0], &keys[1]);
    let (s, _) = admin
        .call("DELETE", &format!("/v1/principals/{}", revoked.0), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = admin
        .post(&format!("/v1/principals/{}/rotate", rotated.0), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let new_key = v["api_key"].as_str().unwrap().to_owned();
    let aware = custodia_core::Timestamp::now().to_rfc3339();
    let (s, v) = admin
        .post(
            "/v1/incidents",
            json!({"title": "Laptop stolen", "description": "export on it", "aware_at": aware}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let incident = v["incident_id"].as_str().unwrap().to_owned();
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{incident}/risk"),
            json!({"risk": "high_risk", "reason": "addresses and cards"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let request = open(
        &mut admin,
        "cust_kept",
        "access",
        "gdpr",
        json!({"verified_by": "account"}),
    )
    .await;
    let request = request["request_id"].as_str().unwrap().to_owned();
    let (s, v) = fulfil(&mut admin, &request, json!({})).await;
    assert_eq!(s, 200, "{v}");
    server.terminate();

    let out = custodia()
        .args(["restore", "--data-dir"])
        .arg(vault.path())
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let path = "/v1/subjects/cust_kept/records/customers?purpose=customer_support";
    for (key, live) in [(&revoked.1, false), (&rotated.1, false), (&new_key, true)] {
        let mut client = server.client(key).await;
        let (s, v) = client.raw_unchecked("GET", path, None).await;
        assert_eq!(s == 200, live, "{s} {v}");
        if !live {
            assert_eq!(s, 401, "{v}");
        }
    }
    let (s, v) = admin.get(&format!("/v1/incidents/{incident}")).await;
    assert_eq!((s, v["risk"].as_str()), (200, Some("high_risk")), "{v}");
    let (s, v) = admin.get("/v1/incidents").await;
    assert_eq!((s, v["incidents"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let (s, v) = admin.get(&format!("/v1/requests/{request}")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    // and what comes next is numbered after what the replaced database held
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{incident}/entries"),
            json!({"kind": "note", "text": "restored from the backup of the day"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}
