//! Tokenization and detokenization over HTTP, and token output forms.

use serde_json::json;

use crate::support::Vault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stand_for_values_and_only_plain_readers_detokenize() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;

    let tokenize = |kind: &str, values: &[&str], keep_last4: bool| {
        json!({"subject_id": "cust_t", "collection": "customers", "field": "card_number", "purpose": "payment",
               "values": values, "kind": kind, "keep_last4": keep_last4})
    };
    let (status, v) = admin
        .post(
            "/v1/tokens",
            tokenize("format_preserving", &["4242 4242 4242 4242"], true),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let fp = v["tokens"][0].as_str().unwrap().to_owned();
    assert_eq!(
        fp.len(),
        16,
        "normalized card numbers are 16 digits, and so is the token: {fp}"
    );
    assert!(fp.ends_with("4242") && fp != "4242424242424242");
    assert!(luhn(&fp), "{fp} is Luhn-valid");

    let (_, a) = admin
        .post("/v1/tokens", tokenize("deterministic", &["5555 5555 5555 4444"], false))
        .await;
    let (_, b) = admin
        .post("/v1/tokens", tokenize("deterministic", &["5555-5555-5555-4444"], false))
        .await;
    assert_eq!(
        a["tokens"], b["tokens"],
        "deterministic tokens repeat for the same value"
    );
    let (_, r) = admin
        .post(
            "/v1/tokens",
            tokenize("random", &["5555 5555 5555 4444", "4242424242424242"], false),
        )
        .await;
    let random: Vec<String> = r["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(random.iter().all(|t| t.starts_with("tok_") && t.len() == 36));

    let (status, v) = admin
        .post(
            "/v1/tokens",
            tokenize("format_preserving", &["4242 4242 4242 4241"], false),
        )
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (422, Some("invalid_field")));
    let (status, v) = admin
        .post("/v1/tokens", tokenize("rot13", &["4242424242424242"], false))
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_kind")));

    // Detokenize: the payment service sees card numbers plain; the support agent masked.
    let all = json!([fp, random[0], "tok_00000000000000000000000000000000"]);
    let payments = admin.principal("checkout", &["payment_service"]).await;
    let (status, v) = server
        .client(&payments)
        .await
        .post("/v1/tokens/detokenize", json!({"purpose": "payment", "tokens": all}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["values"][0]["value"], "4242424242424242");
    assert_eq!(v["values"][1]["value"], "5555555555554444");
    assert!(v["values"][2].get("value").is_none(), "an unknown token has no value");

    // The support agent may not see card numbers plain: the live token answers as an unknown
    // one does (a refusal would tell it the token is live, its customer not erased).
    let agent = admin.principal("agent", &["support_agent"]).await;
    let mut answers = Vec::new();
    for token in [fp.as_str(), "tok_00000000000000000000000000000001"] {
        let (status, v) = server
            .client(&agent)
            .await
            .post(
                "/v1/tokens/detokenize",
                json!({"purpose": "customer_support", "tokens": [token]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        answers.push(v["values"][0].get("value").cloned());
    }
    assert_eq!(answers, [None, None]);

    // A key whose role has no grant under the purpose is refused the same for a live token
    // and an unknown one (before any lookup): it cannot tell which tokens are still live.
    let auditor = admin.principal("books", &["auditor"]).await;
    let mut answers = Vec::new();
    for token in [random[0].as_str(), "tok_00000000000000000000000000000000"] {
        let (status, v) = server
            .client(&auditor)
            .await
            .post(
                "/v1/tokens/detokenize",
                json!({"purpose": "customer_support", "tokens": [token]}),
            )
            .await;
        answers.push((status, v["error"]["code"].clone()));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0].0, 403, "{answers:?}");

    // Every refusal is audited, also one the gate makes before any token is looked up (an
    // undeclared purpose); tokens that open to nothing are counted.
    let (status, v) = server
        .client(&agent)
        .await
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "no_such_purpose", "tokens": [fp]}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("unknown_purpose")),
        "{v}"
    );
    let (_, log) = admin
        .get("/v1/audit/events?action=token.detokenize&decision=deny")
        .await;
    let reasons: Vec<_> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entry"]["reason"].as_str().unwrap().to_owned(),
                e["entry"]["subject"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            // The payment service's batch held one unknown token: a probe, counted.
            ("unknown_token".to_owned(), false),
            ("unknown_token".to_owned(), false),
            ("unknown_token".to_owned(), false),
            ("purpose_not_allowed".to_owned(), false),
            ("purpose_not_allowed".to_owned(), false),
            ("unknown_purpose".to_owned(), false)
        ],
        "{log}"
    );
    let (_, about) = admin
        .get("/v1/audit/events?action=token.detokenize&decision=deny&subject_id=cust_t")
        .await;
    assert_eq!(
        about["events"].as_array().unwrap().len(),
        0,
        "a token passed over names no one: {about}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_output_form_gives_joinable_tokens() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    for subject in ["a1", "a2"] {
        let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
        assert_eq!(
            admin.post(&format!("/v1/subjects/{subject}/consents"), consent).await.0,
            201
        );
        let (status, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/records/customers"),
                json!({"purpose": "analytics", "fields": {"email": "same@example.com"}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (_, one) = analyst.get("/v1/subjects/a1/records/customers?purpose=analytics").await;
    let (_, two) = analyst.get("/v1/subjects/a2/records/customers?purpose=analytics").await;
    let t1 = one["records"][0]["fields"]["email"].as_str().unwrap().to_owned();
    let t2 = two["records"][0]["fields"]["email"].as_str().unwrap();
    assert_ne!(t1, "same@example.com");
    assert!(
        t1.ends_with("@token.invalid") && !t1.contains("same"),
        "an email, nothing of the value's: {t1}"
    );
    assert_eq!(t1, t2, "the same value gives the same token, so datasets still join");
    // The analyst may not turn it back (it opens to no value for that role, as a token no one
    // holds does: a refusal would tell that someone holds the value); an admin (plain) may.
    let (status, v) = analyst
        .post("/v1/tokens/detokenize", json!({"purpose": "analytics", "tokens": [t1]}))
        .await;
    assert_eq!(
        (status, &v["values"][0]["value"]),
        (200, &serde_json::Value::Null),
        "{v}"
    );
    let (status, v) = admin
        .post("/v1/tokens/detokenize", json!({"purpose": "analytics", "tokens": [t1]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["values"][0]["value"], "same@example.com");
}

/// Review of issue 18's session: in a list or batch read, records the purpose may not see
/// were left out after the tokens were drawn by each record's place in the whole list, so a
/// token landed in another record (the one after a record left out) or was lost. Each record
/// carries the token of its own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_land_in_their_own_records_when_some_are_not_shown() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    assert_eq!(admin.post("/v1/subjects/mix/consents", consent).await.0, 201);
    // first a record analytics may not see, then two it may
    let order = json!({"purpose": "order_fulfillment", "fields": {"email": "hidden@example.com", "name": "Ada"}});
    assert_eq!(admin.post("/v1/subjects/mix/records/customers", order).await.0, 201);
    let mut ids = Vec::new();
    for email in ["first.aaa@example.com", "second.ccc@example.com"] {
        let (status, v) = admin
            .post(
                "/v1/subjects/mix/records/customers",
                json!({"purpose": "analytics", "fields": {"email": email}}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        ids.push((v["record_id"].as_str().unwrap().to_owned(), email));
    }
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (status, listed) = analyst
        .get("/v1/subjects/mix/records/customers?purpose=analytics")
        .await;
    assert_eq!(status, 200, "{listed}");
    let (status, batch) = analyst
        .post(
            "/v1/batch/records/read",
            json!({"purpose": "analytics", "items": [{"subject_id": "mix", "collection": "customers"}]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let batch_records = &batch["results"][0]["records"];
    for records in [&listed["records"], batch_records] {
        let records = records
            .as_array()
            .unwrap_or_else(|| panic!("records: {listed} {batch}"));
        assert_eq!(records.len(), 2, "{records:?}");
        for (id, email) in &ids {
            let record = records.iter().find(|r| r["record_id"] == id.as_str()).unwrap();
            let token = record["fields"]["email"].as_str().unwrap_or_else(|| panic!("{record}"));
            let (status, v) = admin
                .post(
                    "/v1/tokens/detokenize",
                    json!({"purpose": "analytics", "tokens": [token]}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["values"][0]["value"], *email, "record {id}");
        }
    }
}

/// Review of issue 18's session: detokenizing refused the whole call when any stored row of
/// a token was not the purpose's (another subject's consent missing, a row handed out under a
/// purpose it may not use). A deterministic token is the same for the same value of a field,
/// whoever draws it, so a writer that may not read a value kept for tax law drew the token of
/// a guess and learned from 403 against 200 whether anyone's kept value matched; and an admin
/// could not turn back an analytics token because another subject held the same value for
/// orders. A row the purpose may not use is now passed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_a_purpose_may_not_use_neither_refuse_nor_answer_a_detokenize() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let tokenize = |subject: &str, purpose: &str, field: &str, value: &str| {
        json!({"subject_id": subject, "collection": "customers", "field": field, "purpose": purpose,
               "values": [value], "kind": "deterministic"})
    };
    // A value kept for tax law, and its token there.
    let (s, v) = admin
        .post(
            "/v1/subjects/taxed/records/customers",
            json!({"purpose": "tax_records", "fields": {"name": "Tess Taxed", "shipping_address": "1 Main St"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens",
            tokenize("taxed", "tax_records", "shipping_address", "1 Main St"),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // A warehouse key guesses, through a subject of its own: right and wrong guesses answer
    // alike, each with its own subject's value.
    let warehouse = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut warehouse = server.client(&warehouse).await;
    for guess in ["1 Main St", "4 Main St"] {
        let (s, v) = warehouse
            .post(
                "/v1/tokens",
                tokenize("guesser", "order_fulfillment", "shipping_address", guess),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let token = v["tokens"][0].as_str().unwrap().to_owned();
        let (s, v) = warehouse
            .post(
                "/v1/tokens/detokenize",
                json!({"purpose": "order_fulfillment", "tokens": [token]}),
            )
            .await;
        assert_eq!(
            (s, v["values"][0]["value"].as_str()),
            (200, Some(guess)),
            "{guess}: {v}"
        );
    }
    // An analytics token whose value another subject holds for orders turns back under
    // analytics to the consenting subject's value.
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    assert_eq!(admin.post("/v1/subjects/t4/consents", consent).await.0, 201);
    let (s, v) = admin
        .post(
            "/v1/subjects/t4/records/customers",
            json!({"purpose": "analytics", "fields": {"email": "ana4@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            "/v1/tokens",
            tokenize("other", "order_fulfillment", "email", "ana4@example.com"),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (_, listed) = analyst.get("/v1/subjects/t4/records/customers?purpose=analytics").await;
    let token = listed["records"][0]["fields"]["email"]
        .as_str()
        .unwrap_or_else(|| panic!("{listed}"))
        .to_owned();
    let (s, v) = admin
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "analytics", "tokens": [token]}),
        )
        .await;
    assert_eq!(
        (s, v["values"][0]["value"].as_str()),
        (200, Some("ana4@example.com")),
        "{v}"
    );
    // A role that may not see the field in plain form gets the same answer for a
    // deterministic token someone holds as for one no one does: no value.
    for probe in [token.as_str(), "qzpzn7b965jjotti@token.invalid"] {
        let (s, v) = analyst
            .post(
                "/v1/tokens/detokenize",
                json!({"purpose": "analytics", "tokens": [probe]}),
            )
            .await;
        assert_eq!(
            (s, &v["values"][0]["value"]),
            (200, &serde_json::Value::Null),
            "{probe}: {v}"
        );
    }
}

/// Review of issue 11 (2026-12-06): a deterministic token's value was vaulted once per
/// subject, under the first purpose that drew it. A support key tokenized guesses of a
/// subject's email under its own purpose: a wrong guess was stored and detokenized to itself,
/// the right one found the analytics row already there, stored nothing, and detokenized to
/// nothing (1,000 guesses a call). And a read-only key that tokenized a value first kept the
/// service that holds it from turning its own token back. Each purpose now vaults its own row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_tokenized_under_another_purpose_answers_as_any_other() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let tokenize = |subject: &str, purpose: &str, values: &[&str]| {
        json!({"subject_id": subject, "collection": "customers", "field": "email", "purpose": purpose,
               "values": values, "kind": "deterministic"})
    };
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    assert_eq!(admin.post("/v1/subjects/cust_70/consents", consent).await.0, 201);
    let (s, v) = admin
        .post(
            "/v1/subjects/cust_70/records/customers",
            json!({"purpose": "analytics", "fields": {"email": "hidden70@example.org"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // the analyst's read vaults the deterministic token under analytics
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (s, listed) = analyst
        .get("/v1/subjects/cust_70/records/customers?purpose=analytics")
        .await;
    assert_eq!(s, 200, "{listed}");
    assert!(listed["records"][0]["fields"]["email"].is_string(), "{listed}");

    let support = admin.principal("support", &["support_agent"]).await;
    let mut support = server.client(&support).await;
    let guesses = ["wrong70@example.org", "hidden70@example.org", "other70@example.org"];
    // (a read-only key makes no tokens: a token stores its value; the guesses are drawn by a
    // key that may write under the purpose, and turned back by the support key)
    let (s, v) = support
        .post("/v1/tokens", tokenize("cust_70", "customer_support", &guesses))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("tokenize_not_allowed")),
        "{v}"
    );
    let (s, v) = admin
        .post("/v1/tokens", tokenize("cust_70", "customer_support", &guesses))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = support
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "customer_support", "tokens": v["tokens"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for (i, guess) in guesses.iter().enumerate() {
        assert_eq!(v["values"][i]["value"].as_str(), Some(*guess), "guess {i}: {v}");
    }

    // Whoever draws a value's token first, the service holding it turns its own token back.
    let (s, v) = admin
        .post(
            "/v1/tokens",
            tokenize("cust_80", "customer_support", &["victim80@example.com"]),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let fulfillment = admin.principal("shipping", &["fulfillment_service"]).await;
    let mut fulfillment = server.client(&fulfillment).await;
    let (s, v) = fulfillment
        .post(
            "/v1/tokens",
            tokenize("cust_80", "order_fulfillment", &["victim80@example.com"]),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = fulfillment
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "order_fulfillment", "tokens": v["tokens"]}),
        )
        .await;
    assert_eq!(
        (s, v["values"][0]["value"].as_str()),
        (200, Some("victim80@example.com")),
        "{v}"
    );
}

/// Issue 11: format-preserving tokens of short values collided, and detokenizing returned
/// whichever subject's row came first. "Al" 300 times for one subject and "Bo" 300 times for
/// another, then ["Al", "Bo"] x 150 for a third: every token detokenizes to its own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_short_values_never_detokenize_to_another_value() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let mut issued: Vec<(String, &str)> = Vec::new();
    let batches: [(&str, Vec<&str>); 4] = [
        ("victim_a", vec!["Al"; 300]),
        ("victim_b", vec!["Bo"; 300]),
        ("victim_c", ["Al", "Bo"].repeat(150)),
        ("victim_d", ["Al", "Bo"].repeat(50)),
    ];
    for (n, (subject, values)) in batches.iter().enumerate() {
        let kind = if n == 3 { "deterministic" } else { "format_preserving" };
        let (status, v) = admin
            .post(
                "/v1/tokens",
                json!({"subject_id": subject, "collection": "customers", "field": "name", "purpose": "payment",
                       "values": values, "kind": kind}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let tokens = v["tokens"].as_array().unwrap();
        issued.extend(
            tokens
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .zip(values.iter().copied()),
        );
    }
    for chunk in issued.chunks(1000) {
        let tokens: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let (status, v) = admin
            .post("/v1/tokens/detokenize", json!({"purpose": "payment", "tokens": tokens}))
            .await;
        assert_eq!(status, 200, "{v}");
        let wrong = chunk
            .iter()
            .zip(v["values"].as_array().unwrap())
            .filter(|((_, value), got)| got["value"].as_str() != Some(value))
            .count();
        assert_eq!(
            wrong,
            0,
            "{wrong} of {} tokens detokenized to another value",
            chunk.len()
        );
    }
}

/// Issue 11: format-preserving and deterministic tokens copied every character outside ASCII
/// letters and digits, and kept word lengths ("Zoë Ødegård-Ñúñez" became "Jvë Øqqbåwe-Ñúñji").
/// Neither the tokens nor the database hold anything of the value now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_no_letter_script_or_word_length_of_the_value() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let values = ["Zoë Ødegård-Ñúñez", "Алексей Smith"];
    let mut all = Vec::new();
    for kind in ["format_preserving", "deterministic"] {
        let (status, v) = admin
            .post(
                "/v1/tokens",
                json!({"subject_id": "cust_zoe", "collection": "customers", "field": "name", "purpose": "payment",
                       "values": values, "kind": kind}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        for t in v["tokens"].as_array().unwrap() {
            let t = t.as_str().unwrap().to_owned();
            assert!(t.bytes().all(|b| b.is_ascii_alphabetic()), "{kind}: {t}");
            all.push(t);
        }
    }
    let lengths: std::collections::BTreeSet<usize> = all.iter().map(String::len).collect();
    assert_eq!(lengths.len(), 1, "one length for every value: {all:?}");
    // The card number's last four survive only when asked for, and only for card numbers.
    let (status, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_zoe", "collection": "customers", "field": "name", "purpose": "payment",
                   "values": ["Zoë"], "kind": "format_preserving", "keep_last4": true}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_keep_last4")),
        "{v}"
    );
    // Tokens are stored under a keyed digest: no file of the data directory holds one.
    let (_, v) = admin
        .post("/v1/tokens/detokenize", json!({"purpose": "payment", "tokens": all}))
        .await;
    let got: Vec<_> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].clone())
        .collect();
    assert_eq!(
        got,
        [json!(values[0]), json!(values[1]), json!(values[0]), json!(values[1])]
    );
    server.terminate();
    for file in crate::support::files_under(vault.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for t in &all {
            assert!(
                !bytes.windows(t.len()).any(|w| w == t.as_bytes()),
                "{} holds token {t}",
                file.display()
            );
        }
    }
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}
