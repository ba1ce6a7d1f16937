//! The subject ledger through HTTP: consent, withdrawal, objection, opt-out, GPC, restriction.

use serde_json::json;

use crate::support::{Vault, files_under};

const RECORDS: &str = "/v1/subjects/cust_9/records/customers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_needs_live_consent_and_withdrawal_stops_it() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"email": "kim@example.com", "name": "Kim"}}),
        )
        .await;
    assert_eq!(status, 201);

    let marketing_key = admin.principal("newsletter", &["marketing_service"]).await;
    let mut marketing = server.client(&marketing_key).await;
    let consent_key = admin.principal("preference-centre", &["consent_service"]).await;
    let mut prefs = server.client(&consent_key).await;
    let read = format!("{RECORDS}?purpose=marketing_email&fields=email");

    let (status, v) = marketing.get(&read).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{v}"
    );
    // No write under a consent purpose without consent either.
    let (status, v) = marketing
        .post(
            RECORDS,
            json!({"purpose": "marketing_email", "fields": {"name": "Kim"}}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{v}"
    );

    let (status, v) = marketing
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "web_form"}),
        )
        .await;
    assert_eq!(status, 403, "the newsletter service may not record consent: {v}");

    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "method": "web_form"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("notice_version_required"))
    );
    // The notice version stays in the clear, past an erasure: a card or phone number in its
    // place is refused; versions as they are written pass.
    for (version, status) in [
        ("4111111111111111", 422),
        ("020-7946-0958", 422),
        ("2026-11-01", 201),
        ("privacy-v3.2", 201),
        ("2026.11", 201),
    ] {
        let (s, v) = prefs
            .post(
                "/v1/subjects/cust_nv/consents",
                json!({"purpose": "marketing_email", "granted": true, "notice_version": version, "method": "web_form"}),
            )
            .await;
        assert_eq!(s, status, "{version}: {v}");
        if s == 422 {
            assert_eq!(v["error"]["code"], "text_has_personal_data", "{v}");
            assert!(!v.to_string().contains(version), "not echoed: {v}");
        }
    }
    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "2026-11", "method": "web_form",
                   "evidence": {"ip": "203.0.113.77", "user_agent": "Mozilla/5.0 (test)"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    // Collected for orders, the email is not the newsletter's until it is written for it.
    let (status, v) = marketing.get(&read).await;
    assert_eq!((status, &v["records"]), (200, &json!([])), "{v}");
    let (status, v) = marketing
        .post(
            RECORDS,
            json!({"purpose": "marketing_email", "fields": {"email": "kim@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let newsletter_record = v["record_id"].as_str().unwrap().to_owned();
    let (status, v) = marketing
        .post(
            RECORDS,
            json!({"purpose": "marketing_email", "fields": {"email": "kim2@example.com", "name": "Kim"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let second_record = v["record_id"].as_str().unwrap().to_owned();
    let (status, v) = marketing.get(&read).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"][0]["fields"]["email"], "kim@example.com");

    let (status, _) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": false, "method": "email"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, v) = marketing.get(&read).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{v}"
    );
    let (_, v) = admin
        .post("/v1/search", json!({"collection": "customers", "field": "email", "value": "kim@example.com", "purpose": "marketing_email"}))
        .await;
    assert_eq!(
        v["matches"],
        json!([]),
        "search does not find subjects the purpose may not process"
    );
    // What consent held is let go of at once, not only by the sweeper a day later: a
    // withdrawal stops every use but deletion (Art. 17(1)(b)); a write of a value still not.
    let marketing_record = |id: &str| format!("{RECORDS}/{id}?purpose=marketing_email");
    let (status, v) = admin
        .call(
            "PATCH",
            &marketing_record(&second_record),
            Some(json!({"fields": {"name": "Kimberly"}})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{v}"
    );
    let (status, v) = admin
        .call(
            "PATCH",
            &marketing_record(&second_record),
            Some(json!({"fields": {"email": null}})),
        )
        .await;
    assert_eq!(status, 204, "a value set to null under the withdrawn purpose: {v}");
    let (status, v) = admin.call("DELETE", &marketing_record(&newsletter_record), None).await;
    assert_eq!(status, 204, "a record deleted under the withdrawn purpose: {v}");
    let (status, v) = admin.call("DELETE", &marketing_record(&newsletter_record), None).await;
    assert_eq!(status, 404, "and it is gone: {v}");

    let (status, v) = prefs.get("/v1/subjects/cust_9/consents").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["consents"],
        json!([{"purpose": "marketing_email", "granted": false, "method": "email", "at": v["consents"][0]["at"]}])
    );
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "withdrawal appends; it does not rewrite: {v}");
    assert_eq!(history[0]["value"], true);
    assert_eq!(history[0]["notice_version"], "2026-11");
    assert!(history[0]["evidence"]["ip_hash"].as_str().unwrap().len() == 32);
    assert_eq!(history[0]["evidence"]["user_agent"], "Mozilla/5.0 (test)");
    assert!(history[0].get("evidence").unwrap().get("ip").is_none());

    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "order_fulfillment", "granted": true, "notice_version": "1", "method": "api"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("consent_not_applicable"))
    );
    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "1", "method": "pigeon"}),
        )
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_method")));
    // The ledger keeps the notice version in the clear: a version, never an address.
    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "bob@example.com", "method": "api"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("text_has_personal_data"))
    );
    let (status, v) = prefs
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v 1 (draft)", "method": "api"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_notice_version"))
    );
    assert!(!v.to_string().contains("bob@"), "{v}");

    drop((admin, marketing, prefs));
    server.kill();
    for file in files_under(vault.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains("203.0.113.77"),
            "{} holds the raw IP address",
            file.display()
        );
        // The user agent is sealed under the subject's data key: an erasure shreds it.
        assert!(
            !text.contains("Mozilla/5.0 (test)"),
            "{} holds the user agent in clear",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_signal_opts_out_of_sale_and_sharing() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .post(
            "/v1/subjects/cust_9/consents",
            json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "web_form"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, v) = admin
        .post(
            RECORDS,
            json!({"purpose": "analytics", "fields": {"birth_date": "1990-04-01"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, _) = admin.get(&format!("{RECORDS}?purpose=analytics")).await;
    assert_eq!(status, 200);

    // A call on the subject's behalf carrying Sec-GPC: 1 records the opt-out, no questions asked.
    let (status, _) = admin
        .get_with_headers(&format!("{RECORDS}?purpose=order_fulfillment"), &[("Sec-GPC", "1")])
        .await;
    assert_eq!(status, 200);
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=analytics")).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("sale_opted_out")),
        "{v}"
    );
    let (_, v) = admin.get("/v1/subjects/cust_9/consents").await;
    assert_eq!(v["sale_opt_out"], true);
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["method"].as_str()),
        (Some("sale_opt_out"), Some("gpc"))
    );
    // A second signal adds nothing.
    admin
        .get_with_headers(&format!("{RECORDS}?purpose=order_fulfillment"), &[("Sec-GPC", "1")])
        .await;
    let (_, again) = admin.get("/v1/subjects/cust_9/consents").await;
    assert_eq!(
        again["history"].as_array().unwrap().len(),
        v["history"].as_array().unwrap().len()
    );
    // Other purposes go on.
    assert_eq!(admin.get(&format!("{RECORDS}?purpose=order_fulfillment")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objection_and_restriction_stop_processing() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, v) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Kim", "shipping_address": "1 Road"}}),
        )
        .await;
    assert_eq!(status, 201);
    let kept_record = v["record_id"].as_str().unwrap().to_owned();

    let (status, v) = admin
        .post(
            "/v1/subjects/cust_9/objections",
            json!({"purpose": "order_fulfillment", "method": "email"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("objection_not_applicable")),
        "{v}"
    );
    let (status, _) = admin
        .post(
            "/v1/subjects/cust_9/objections",
            json!({"purpose": "customer_support", "method": "email"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=customer_support")).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("subject_objected")));
    let (status, _) = admin
        .post(
            "/v1/subjects/cust_9/objections",
            json!({"purpose": "customer_support", "objected": false, "method": "email"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(admin.get(&format!("{RECORDS}?purpose=customer_support")).await.0, 200);

    let (status, _) = admin
        .post(
            "/v1/subjects/cust_9/restriction",
            json!({"restricted": true, "method": "email"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=order_fulfillment")).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("subject_restricted")));
    let (status, v) = admin
        .post(
            RECORDS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Kim"}}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("subject_restricted")),
        "no new processing either"
    );
    // a restriction is what a customer asks for instead of an erasure: the data stays
    let (status, v) = admin
        .call(
            "DELETE",
            &format!("{RECORDS}/{kept_record}?purpose=order_fulfillment"),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("subject_restricted")),
        "no deletion during a restriction: {v}"
    );
    let (status, v) = admin.get(&format!("{RECORDS}?purpose=tax_records")).await;
    assert_eq!(status, 200, "tax records are exempt during restriction: {v}");
    let (status, _) = admin
        .post(
            "/v1/subjects/cust_9/restriction",
            json!({"restricted": false, "method": "email"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(admin.get(&format!("{RECORDS}?purpose=order_fulfillment")).await.0, 200);
}

/// GPC is recorded only for a request that passes the gate for its subject (or from a role
/// trusted with the ledger): a refused request from any key writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_is_recorded_only_past_the_gate() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let victim = "/v1/subjects/victim-42/records/customers";
    let (status, v) = admin
        .post(victim, json!({"purpose": "order_fulfillment", "fields": {"name": "V"}}))
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, before) = admin.get("/v1/subjects/victim-42/consents").await;
    assert_eq!(before["sale_opt_out"], false);

    let auditor = admin.principal("auditor-gpc", &["auditor"]).await;
    let mut auditor = server.client(&auditor).await;
    let (status, v) = auditor
        .get_with_headers(&format!("{victim}?purpose=analytics"), &[("Sec-GPC", "1")])
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("purpose_not_allowed")),
        "{v}"
    );
    let (_, after) = admin.get("/v1/subjects/victim-42/consents").await;
    assert_eq!(after, before, "a refused request changed the victim's ledger");

    // A service whose call passes the gate records it.
    let shop = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut shop = server.client(&shop).await;
    let (status, v) = shop
        .get_with_headers(&format!("{victim}?purpose=order_fulfillment"), &[("Sec-GPC", "1")])
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, after) = admin.get("/v1/subjects/victim-42/consents").await;
    assert_eq!(after["sale_opt_out"], true, "{after}");
    let last = after["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["method"], "gpc");

    // A read, a change or a deletion about ids that hold nothing records nothing: the ledger
    // does not grow with made-up ids from a key that may read, or change what it cannot find.
    let missing = "rec_00000000000000000000000000000000";
    for made_up in ["made-up-1", "made-up-2", "made-up-3"] {
        let list = format!("/v1/subjects/{made_up}/records/customers?purpose=order_fulfillment");
        let one = format!("/v1/subjects/{made_up}/records/customers/{missing}?purpose=order_fulfillment");
        let gpc = [("Sec-GPC", "1")];
        let (status, v) = match made_up {
            "made-up-1" => shop.get_with_headers(&list, &gpc).await,
            "made-up-2" => {
                shop.send_with_headers("PATCH", &one, Some(json!({"fields": {"name": "X"}})), &gpc)
                    .await
            }
            _ => shop.send_with_headers("DELETE", &one, None, &gpc).await,
        };
        assert!([200, 403, 404].contains(&status), "{made_up}: {status} {v}");
        let (_, ledger) = admin.get(&format!("/v1/subjects/{made_up}/consents")).await;
        assert_eq!(ledger["history"], json!([]), "{made_up}: {ledger}");
    }
    // A subject the vault holds only a ledger of (a consent given, no record) is one it holds
    // something of: a read records the signal.
    let (status, v) = admin
        .post(
            "/v1/subjects/ledger-only/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "web_form"}),
        )
        .await;
    assert!(status < 300, "{v}");
    let (status, v) = shop
        .get_with_headers(
            "/v1/subjects/ledger-only/records/customers?purpose=order_fulfillment",
            &[("Sec-GPC", "1")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, ledger) = admin.get("/v1/subjects/ledger-only/consents").await;
    assert_eq!(ledger["sale_opt_out"], true, "{ledger}");
}

/// A token stores its value for the subject, as a write does: a request for one carrying
/// Sec-GPC: 1 records the opt-out and, under a purpose of sale or sharing, is refused (it was
/// issued, and nothing recorded); a redaction's `tokenize` operator the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_on_a_token_request_opts_out_and_refuses_a_token_for_sale() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (_, notice) = admin.get("/v1/notice").await;
    for (subject, route) in [("gpc-t1", "tokens"), ("gpc-t2", "redact")] {
        let (s, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/consents"),
                json!({"purpose": "analytics", "granted": true, "method": "web_form",
                       "notice_version": notice["version"]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = match route {
            "tokens" => {
                admin
                    .post_with_headers(
                        "/v1/tokens",
                        json!({"subject_id": subject, "collection": "customers", "field": "birth_date",
                               "purpose": "analytics", "values": ["1990-01-01"], "kind": "random"}),
                        &[("Sec-GPC", "1")],
                    )
                    .await
            }
            _ => {
                admin
                    .post_with_headers(
                        "/v1/redact",
                        json!({"text": "born ada@example.com", "entities": ["EMAIL_ADDRESS"],
                               "operators": {"EMAIL_ADDRESS": {"type": "tokenize", "purpose": "analytics",
                               "subject_id": subject, "collection": "customers", "field": "email"}}}),
                        &[("Sec-GPC", "1")],
                    )
                    .await
            }
        };
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("sale_opted_out")),
            "{route}: {v}"
        );
        let (_, state) = admin.get(&format!("/v1/subjects/{subject}/consents")).await;
        assert_eq!(state["sale_opt_out"], true, "{route}: {state}");
    }
}
