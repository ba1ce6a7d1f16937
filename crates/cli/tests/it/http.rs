//! The HTTP API against a real server process.

use serde_json::{Value, json};

use crate::support::{Client, Server, Vault, files_under, fresh_postgres_database, postgres_url};

const CUSTOMERS: &str = "/v1/subjects/cust_1/records/customers";

fn order_fields() -> Value {
    json!({
        "email": "Zelda.Quartermaine@Example.org",
        "name": "Zelda Quartermaine",
        "phone": "+44 20 7946 0958",
        "shipping_address": "221B Baker Street\nLondon NW1 6XE"
    })
}

/// The whole record life cycle; run against each backend.
pub(crate) async fn record_life_cycle(admin: &mut Client) {
    let (status, v) = admin
        .post(
            CUSTOMERS,
            json!({"purpose": "order_fulfillment", "fields": order_fields()}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["record_id"].as_str().unwrap().to_owned();

    let (status, v) = admin.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!(status, 200, "{v}");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record_id"], id.as_str());
    assert_eq!(records[0]["fields"]["email"], "Zelda.Quartermaine@Example.org");
    assert_eq!(
        records[0]["fields"]["phone"], "+442079460958",
        "phones are stored in E.164"
    );
    assert_eq!(
        records[0]["fields"]["shipping_address"],
        "221B Baker Street\nLondon NW1 6XE"
    );

    // A read returns only what the purpose declares: tax_records sees name and address.
    let (status, v) = admin.get(&format!("{CUSTOMERS}/{id}?purpose=tax_records")).await;
    assert_eq!(status, 200, "{v}");
    let fields: Vec<_> = v["fields"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(fields, ["name", "shipping_address"]);

    let (status, v) = admin
        .get(&format!("{CUSTOMERS}/{id}?purpose=order_fulfillment&fields=email"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["fields"].as_object().unwrap().len(), 1);

    // Search by email is case-insensitive; by phone, format-insensitive.
    let (status, v) = admin
        .post("/v1/search", json!({"collection": "customers", "field": "email", "value": "zelda.quartermaine@EXAMPLE.org", "purpose": "customer_support"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["matches"], json!([{"subject_id": "cust_1", "record_id": id}]));
    let (_, v) = admin
        .post("/v1/search", json!({"collection": "customers", "field": "phone", "value": "+44 (20) 7946-0958", "purpose": "order_fulfillment"}))
        .await;
    assert_eq!(v["matches"].as_array().unwrap().len(), 1);

    // Patch: change the email, erase the phone.
    let (status, v) = admin
        .call(
            "PATCH",
            &format!("{CUSTOMERS}/{id}?purpose=order_fulfillment"),
            Some(json!({"fields": {"email": "z@example.net", "phone": null}})),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let (_, v) = admin.get(&format!("{CUSTOMERS}/{id}?purpose=order_fulfillment")).await;
    assert_eq!(v["fields"]["email"], "z@example.net");
    assert!(v["fields"].get("phone").is_none());
    let (_, v) = admin
        .post("/v1/search", json!({"collection": "customers", "field": "email", "value": "Zelda.Quartermaine@Example.org", "purpose": "order_fulfillment"}))
        .await;
    assert_eq!(v["matches"], json!([]), "the old email's index entry is gone");

    // Delete.
    let (status, _) = admin
        .call("DELETE", &format!("{CUSTOMERS}/{id}?purpose=order_fulfillment"), None)
        .await;
    assert_eq!(status, 204);
    let (status, v) = admin.get(&format!("{CUSTOMERS}/{id}?purpose=order_fulfillment")).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "record_not_found");
    let (status, _) = admin
        .call("DELETE", &format!("{CUSTOMERS}/{id}?purpose=order_fulfillment"), None)
        .await;
    assert_eq!(status, 404);
    let (_, v) = admin
        .post("/v1/search", json!({"collection": "customers", "field": "email", "value": "z@example.net", "purpose": "order_fulfillment"}))
        .await;
    assert_eq!(v["matches"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_life_cycle_on_sqlite() {
    let vault = Vault::init();
    let server = vault.serve();
    record_life_cycle(&mut server.client(&vault.token).await).await;
}

/// A deleted record's value, and a value replaced by a new one, leave the files while the
/// server runs (the subject's key lives on, so their ciphertext opens with a copy of the
/// directory and the root key): `secure_delete` zeroes the database's pages, and the WAL is
/// emptied within about a second, not only where later writes happen to write over its frames.
/// A reader held open while the values are written and changed keeps the log from starting
/// over, after a filler batch: their frames lie past what the writes that follow cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_replaced_values_leave_the_wal_while_the_server_runs() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", vault.path().join("custodia.db").display()))
        .await
        .unwrap();
    let mut reader = db.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *reader).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    let filler: Vec<Value> = (0..200)
        .map(|i| json!({"subject_id": format!("filler-{i}"), "collection": "customers", "fields": {"name": format!("Filler {i}")}}))
        .collect();
    let (s, v) = admin
        .post(
            "/v1/batch/records",
            json!({"purpose": "order_fulfillment", "items": filler}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, kept) = admin
        .post(
            CUSTOMERS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Kept Value"}}),
        )
        .await;
    assert_eq!(s, 201, "{kept}");
    let (s, gone) = admin
        .post(
            CUSTOMERS,
            json!({"purpose": "order_fulfillment", "fields": {"name": "Remy Deleted", "email": "remy@example.org"}}),
        )
        .await;
    assert_eq!(s, 201, "{gone}");
    let (kept, gone) = (kept["record_id"].as_str().unwrap(), gone["record_id"].as_str().unwrap());
    let mut old = Vec::new();
    for (record, field) in [(gone, "name"), (gone, "email"), (kept, "name")] {
        let c: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM record_fields WHERE record_id = ? AND field = ?")
            .bind(record)
            .bind(field)
            .fetch_one(&db)
            .await
            .unwrap();
        old.push(c);
    }
    let (s, v) = admin
        .call(
            "PATCH",
            &format!("{CUSTOMERS}/{kept}?purpose=order_fulfillment"),
            Some(json!({"fields": {"name": "New Value"}})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = admin
        .call("DELETE", &format!("{CUSTOMERS}/{gone}?purpose=order_fulfillment"), None)
        .await;
    assert_eq!(s, 204);
    let holding = || {
        files_under(vault.path())
            .into_iter()
            .filter(|f| {
                let bytes = std::fs::read(f).unwrap_or_default();
                old.iter().any(|c| bytes.windows(c.len()).any(|w| w == &c[..]))
            })
            .collect::<Vec<_>>()
    };
    assert!(
        !holding().is_empty(),
        "the old values are in the log while the reader holds it"
    );
    sqlx::query("ROLLBACK").execute(&mut *reader).await.unwrap();
    drop(reader);
    db.close().await;
    let mut left = holding();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        left = holding();
    }
    assert!(left.is_empty(), "old ciphertext still in {left:?}");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_life_cycle_on_postgres() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    let vault = Vault::init_with(Some(fresh_postgres_database(&url)));
    let server = vault.serve();
    let (status, v) = server.anonymous().await.get("/healthz").await;
    assert_eq!((status, v["store"].as_str()), (200, Some("postgres")));
    record_life_cycle(&mut server.client(&vault.token).await).await;
    server.terminate();
    // The audit log verifies against PostgreSQL too, offline.
    let out = crate::support::custodia()
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path())
        .args(["--database-url", vault.database_url.as_deref().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("0 entries after the last checkpoint"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Search answers a page at a time in record id order, and its cursor never names or hints
/// at a record the purpose may not see: pages are filled past hidden records, and a last page
/// followed only by hidden records has no `next_after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_without_telling_of_hidden_records() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let mut made = Vec::new();
    for i in 0..7 {
        let (status, v) = admin
            .post(
                &format!("/v1/subjects/pg_{i}/records/customers"),
                json!({"purpose": "order_fulfillment", "fields": {"email": "Shared@Example.com"}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        made.push((v["record_id"].as_str().unwrap().to_owned(), format!("pg_{i}")));
    }
    made.sort();
    // Restricted subjects are hidden from order_fulfillment: the last record in id order and
    // one in the middle.
    let hidden = [made[6].clone(), made[3].clone()];
    for (_, subject) in &hidden {
        let (status, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/restriction"),
                json!({"restricted": true, "method": "email"}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let visible: Vec<Value> = made
        .iter()
        .filter(|m| !hidden.contains(m))
        .map(|(record, subject)| json!({"subject_id": subject, "record_id": record}))
        .collect();
    let search = |after: Option<&str>, limit: Option<u32>| {
        let mut body = json!({"collection": "customers", "field": "email", "value": "shared@example.com",
                              "purpose": "order_fulfillment"});
        if let Some(a) = after {
            body["after"] = json!(a);
        }
        if let Some(l) = limit {
            body["limit"] = json!(l);
        }
        body
    };

    let (status, v) = admin.post("/v1/search", search(None, None)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"matches": visible}), "one page when all fit, no cursor");
    let (_, v) = admin.post("/v1/search", search(None, Some(5))).await;
    assert_eq!(v, json!({"matches": visible}), "only hidden records follow: no cursor");

    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (status, v) = admin.post("/v1/search", search(after.as_deref(), Some(2))).await;
        assert_eq!(status, 200, "{v}");
        pages.push(v["matches"].as_array().unwrap().len());
        for (record, _) in &hidden {
            assert!(!v.to_string().contains(record.as_str()), "a hidden record in {v}");
        }
        match v["next_after"].as_str() {
            Some(next) => {
                assert_eq!(v["matches"].as_array().unwrap().last().unwrap()["record_id"], next);
                after = Some(next.to_owned());
            }
            None => break,
        }
        assert!(pages.len() < 10, "pages never end");
    }
    assert_eq!(pages, [2, 2, 1]);

    for (body, says) in [
        (search(None, Some(0)), "limit"),
        (search(None, Some(1001)), "limit"),
        (search(Some("pg_1"), None), "after"),
        (search(Some("rec_XYZ"), None), "after"),
    ] {
        let (status, v) = admin.post("/v1/search", body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("invalid_page")),
            "{v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{v}");
    }
    let end = format!("rec_{}", "f".repeat(32));
    let (status, v) = admin.post("/v1/search", search(Some(&end), None)).await;
    assert_eq!((status, &v), (200, &json!({"matches": []})), "a cursor past the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimization_and_bad_input_are_refused_naming_the_field() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut c = server.client(&vault.token).await;
    let post = |fields: Value| json!({"purpose": "order_fulfillment", "fields": fields});

    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            post(json!({"email": "a@b.co", "birth_date": "1990-01-01"})),
            403,
            "field_not_in_purpose",
            Some("birth_date"),
        ),
        (post(json!({"emial": "a@b.co"})), 422, "unknown_field", Some("emial")),
        (
            post(json!({"email": "not-an-email"})),
            422,
            "invalid_field",
            Some("email"),
        ),
        (
            post(json!({"phone": "020 7946 0958"})),
            422,
            "invalid_field",
            Some("phone"),
        ),
        (post(json!({"name": "two\nlines"})), 422, "invalid_field", Some("name")),
        (post(json!({"name": ""})), 422, "invalid_field", Some("name")),
        (post(json!({})), 400, "no_fields", None),
        (post(json!({"email": 5})), 400, "invalid_json", Some("fields.email")),
        (
            json!({"purpose": "order_fulfillment", "fields": {}, "extra": 1}),
            400,
            "invalid_json",
            None,
        ),
        (json!({"fields": {"email": "a@b.co"}}), 400, "invalid_json", None),
        (
            json!({"purpose": "world_domination", "fields": {"email": "a@b.co"}}),
            403,
            "unknown_purpose",
            None,
        ),
        (
            json!({"purpose": "payment", "fields": {"card_number": "4242 4242 4242 4241"}}),
            422,
            "invalid_field",
            Some("card_number"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, v) = c.post(CUSTOMERS, body.clone()).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} -> {v}"
        );
        if let Some(field) = field {
            assert_eq!(v["error"]["field"], field, "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(field), "{v}");
        }
    }
    let (status, v) = c.post(CUSTOMERS, post(json!({"email": "a@b.co"}))).await;
    assert_eq!(status, 201, "a valid write after all the refusals: {v}");

    let reads: Vec<(String, u16, &str)> = vec![
        (
            format!("{CUSTOMERS}?purpose=order_fulfillment&fields=birth_date"),
            403,
            "field_not_in_purpose",
        ),
        (
            format!("{CUSTOMERS}?purpose=order_fulfillment&fields=nope"),
            422,
            "unknown_field",
        ),
        (CUSTOMERS.to_owned(), 400, "missing_purpose"),
        (
            format!("{CUSTOMERS}?purpose=order_fulfillment&colour=red"),
            400,
            "invalid_query",
        ),
        (
            "/v1/subjects/alice@example.com/records/customers?purpose=order_fulfillment".into(),
            400,
            "invalid_subject_id",
        ),
        (
            "/v1/subjects/cust_1/records/orders?purpose=order_fulfillment".into(),
            404,
            "unknown_collection",
        ),
        (
            format!("{CUSTOMERS}/../../etc?purpose=order_fulfillment"),
            404,
            "no_route",
        ),
        (
            format!("{CUSTOMERS}/rec_nothex?purpose=order_fulfillment"),
            404,
            "record_not_found",
        ),
        (
            format!("{CUSTOMERS}/rec_00000000000000000000000000000000?purpose=order_fulfillment"),
            404,
            "record_not_found",
        ),
    ];
    for (path, status, code) in reads {
        let (got, v) = c.get(&path).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} -> {v}"
        );
    }

    // A query parameter of the wrong type is named, its value not repeated.
    for (path, named) in [
        ("/v1/audit/events?from=yesterday", "`from`"),
        ("/v1/audit/events?limit=9999999999999999999999", "`limit`"),
    ] {
        let (status, v) = c.get(path).await;
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "{v}"
        );
        assert!(
            message.contains(named) && !message.contains("yesterday") && !message.contains("99999"),
            "{path}: {v}"
        );
    }
    let (status, v) = c.raw("POST", CUSTOMERS, Some(b"{\"purpose\": ".to_vec())).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_json")));
    // A field given twice: refused, not the last one kept, and the key is not repeated.
    let twice = br#"{"purpose": "order_fulfillment", "fields": {"email": "a@b.co", "email": "c@d.co"}}"#;
    let (status, v) = c.raw("POST", CUSTOMERS, Some(twice.to_vec())).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("twice") && !message.contains("email") && !message.contains("b.co"),
        "{v}"
    );
    // Headers past 64 KiB: 431, also for one header that hyper's read buffer let through
    // (README: "fit in 64 KiB (431 beyond)"; one of 112 KiB was answered 200)
    for (one, size) in [(true, 70 * 1024), (false, 66 * 1024), (true, 60 * 1024)] {
        let answer = with_headers(server.addr, &vault.token, one, size);
        let refused = answer.starts_with("HTTP/1.1 431");
        assert_eq!(refused, size > 64 * 1024, "{one} {size}: {answer}");
    }
    let answer = announce_large_body(server.addr, &vault.token);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    let (status, _) = c.raw("POST", CUSTOMERS, Some(vec![0xff, 0xfe, 0x00])).await;
    assert_eq!(status, 400);
    let (status, v) = c
        .post(
            "/v1/search",
            json!({"collection": "customers", "field": "name", "value": "x", "purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("field_not_searchable"))
    );

    // Nothing of the refused writes was stored.
    let (_, v) = c.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_roles_deny_by_default() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;

    let mut anon = server.anonymous().await;
    let (status, v) = anon.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unauthenticated")));
    anon.token = Some("cst_0123456789abcdef_".to_owned() + &"0".repeat(64));
    assert_eq!(anon.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await.0, 401);
    anon.token = Some("garbage".into());
    assert_eq!(anon.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await.0, 401);

    let (status, _) = admin
        .post(
            CUSTOMERS,
            json!({"purpose": "payment", "fields": {"name": "Zelda", "card_number": "4242 4242 4242 4242"}}),
        )
        .await;
    assert_eq!(status, 201);

    let shipper_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut shipper = server.client(&shipper_key).await;
    let (status, v) = shipper.get(&format!("{CUSTOMERS}?purpose=payment")).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("purpose_not_allowed")),
        "{v}"
    );
    let (status, v) = shipper.get("/v1/principals").await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = shipper.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!(status, 200, "{v}");

    let agent_key = admin.principal("agent-7", &["support_agent"]).await;
    let mut agent = server.client(&agent_key).await;
    let (status, v) = agent.get(&format!("{CUSTOMERS}?purpose=customer_support")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"][0]["fields"]["card_number"], "**** **** **** 4242");
    let (_, v) = admin.get(&format!("{CUSTOMERS}?purpose=customer_support")).await;
    assert_eq!(
        v["records"][0]["fields"]["card_number"], "4242424242424242",
        "admin's role says plain"
    );

    let (status, v) = admin
        .post("/v1/principals", json!({"name": "x", "roles": ["overlord"]}))
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (422, Some("unknown_role")));
    let (status, _) = admin
        .post("/v1/principals", json!({"name": "warehouse", "roles": ["auditor"]}))
        .await;
    assert_eq!(status, 409);

    let (_, v) = admin.get("/v1/principals").await;
    let list = v["principals"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|p| p.get("api_key").is_none() && p.get("key_hash").is_none())
    );
    let warehouse = list.iter().find(|p| p["name"] == "warehouse").unwrap()["principal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = admin.call("DELETE", &format!("/v1/principals/{warehouse}"), None).await;
    assert_eq!(status, 204);
    let me = list.iter().find(|p| p["name"] == "bootstrap-admin").unwrap()["principal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = admin.call("DELETE", &format!("/v1/principals/{me}"), None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("cannot_revoke_self")));
    let (status, v) = shipper.get(&format!("{CUSTOMERS}?purpose=order_fulfillment")).await;
    assert_eq!(status, 401, "a revoked key stops working at once: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_hold_no_plaintext_personal_data() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut c = server.client(&vault.token).await;
    let values = [
        (
            "order_fulfillment",
            "email",
            "Xylophone.Marmalade@plaintext-canary.example",
        ),
        ("order_fulfillment", "name", "Bartholomew Canaryfeather"),
        ("order_fulfillment", "phone", "+447700900123"),
        ("order_fulfillment", "shipping_address", "77 Canary Wharf Lane"),
        ("payment", "card_number", "5555555555554444"),
        ("analytics", "birth_date", "1983-07-14"),
    ];
    for (i, (purpose, field, value)) in values.iter().enumerate() {
        if *purpose == "analytics" {
            let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
            assert_eq!(c.post(&format!("/v1/subjects/cust_{i}/consents"), consent).await.0, 201);
        }
        let (status, v) = c
            .post(
                &format!("/v1/subjects/cust_{i}/records/customers"),
                json!({"purpose": purpose, "fields": {*field: value}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    // Tokens vault their values under the subject's key, and API keys are stored hashed.
    let (status, v) = c
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_4", "collection": "customers", "field": "card_number", "purpose": "payment",
                   "values": ["4000056655665556"], "kind": "random"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let service_key = c.principal("canary-service", &["support_agent"]).await;
    let secrets = [vault.token.clone(), service_key.clone()];
    let secret_parts: Vec<String> = secrets
        .iter()
        .map(|k| k.rsplit('_').next().unwrap().to_owned())
        .collect();
    drop(c);
    server.kill();
    let files = files_under(vault.path());
    assert!(files.iter().any(|f| f.ends_with("custodia.db")));
    for file in files.iter().filter(|f| !f.ends_with("admin-token")) {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(
            !text.contains("4000056655665556"),
            "{} holds a tokenized value in plaintext",
            file.display()
        );
        for secret in &secret_parts {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds an API key secret",
                file.display()
            );
        }
    }
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let lower = String::from_utf8_lossy(&bytes).to_lowercase();
        for (_, _, value) in values {
            assert!(
                !lower.contains(&value.to_lowercase()),
                "{} holds `{value}` in plaintext",
                file.display()
            );
        }
        assert!(
            !lower.contains("canaryfeather") && !lower.contains("marmalade"),
            "{}",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut c = server.client(&vault.token).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let (status, v) = c
            .post(
                &format!("/v1/subjects/s{i}/records/customers"),
                json!({"purpose": "order_fulfillment", "fields": {"name": format!("N{i}")}}),
            )
            .await;
        assert_eq!(status, 201);
        ids.push(v["record_id"].as_str().unwrap().to_owned());
    }
    drop(c);
    server.kill();
    let server = vault.serve();
    let mut c = server.client(&vault.token).await;
    for (i, id) in ids.iter().enumerate() {
        let (status, v) = c
            .get(&format!(
                "/v1/subjects/s{i}/records/customers/{id}?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["fields"]["name"], format!("N{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route_and_health_answers() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut c = server.anonymous().await;
    let (status, v) = c.get("/healthz").await;
    assert_eq!(
        (status, v["status"].as_str(), v["store"].as_str()),
        (200, Some("ok"), Some("sqlite"))
    );
    let (status, doc) = c.get("/openapi.json").await;
    assert_eq!(status, 200);
    // Anyone sees the purposes (the notice publishes them), not the fields; a key holder both.
    let public = doc.to_string();
    assert!(public.contains("\"order_fulfillment\"") && !public.contains("\"birth_date\""));
    let (status, for_clients) = server.client(&vault.token).await.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(for_clients.to_string().contains("\"birth_date\""));
    let (status, v) = server.client("cst_wrong_key").await.get("/openapi.json").await;
    assert_eq!(status, 401, "{v}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/openapi.json", &["get"]),
        ("/v1/subjects/{subject_id}/records/{collection}", &["get", "post"]),
        (
            "/v1/subjects/{subject_id}/records/{collection}/{record_id}",
            &["get", "patch", "delete"],
        ),
        ("/v1/search", &["post"]),
        ("/v1/principals", &["get", "post"]),
        ("/v1/principals/{principal_id}", &["delete"]),
    ] {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "{m} {path} missing from the OpenAPI document"
            );
        }
    }
    let (status, v) = c.call("PUT", "/v1/search", None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (405, Some("method_not_allowed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_for_one_new_subject_share_one_key() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = server.client(&vault.token).await;
        tasks.push(tokio::spawn(async move {
            c.post(
                "/v1/subjects/racy/records/customers",
                json!({"purpose": "order_fulfillment", "fields": {"name": format!("R{i}")}}),
            )
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().0, 201);
    }
    let (status, v) = server
        .client(&vault.token)
        .await
        .get("/v1/subjects/racy/records/customers?purpose=order_fulfillment")
        .await;
    assert_eq!(status, 200, "every record decrypts under the one stored key: {v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 8);
}

#[test]
fn server_struct_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Server>();
}

/// Announces a 2 MiB body and sends only its first bytes: the server must refuse by the
/// announced length, before reading the body. Returns the raw answer.
fn announce_large_body(addr: std::net::SocketAddr, token: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {CUSTOMERS} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"purpose\": ",
        2 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// The answer to a `GET /healthz` carrying `size` bytes of extra headers: one header (`one`), or
/// many of about 1 KiB.
fn with_headers(addr: std::net::SocketAddr, token: &str, one: bool, size: usize) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut extra = String::new();
    if one {
        extra.push_str(&format!("x-padding: {}\r\n", "a".repeat(size)));
    } else {
        for i in 0..size / 1024 {
            extra.push_str(&format!("x-pad-{i}: {}\r\n", "a".repeat(1024 - 16)));
        }
    }
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n{extra}connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
