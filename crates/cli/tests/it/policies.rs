//! Operator Cedar policies beside the registry: enforced, validated, refused when wrong.

use serde_json::json;

use crate::support::{Vault, custodia};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbid_policy_file_overrides_the_roles() {
    let vault = Vault::init();
    std::fs::create_dir(vault.path().join("policies")).unwrap();
    std::fs::write(
        vault.path().join("policies/no-plain-cards.cedar"),
        "// No plain card numbers, ever.\n\
         forbid(principal, action == Action::\"read_plain\", resource) when { resource.field_type == \"card_number\" };\n",
    )
    .unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .post(
            "/v1/subjects/p1/records/customers",
            json!({"purpose": "payment", "fields": {"name": "P", "card_number": "4242424242424242"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, v) = admin.get("/v1/subjects/p1/records/customers?purpose=payment").await;
    assert_eq!(
        v["records"][0]["fields"]["card_number"], "**** **** **** 4242",
        "admin is plain by role, masked by policy"
    );
    assert_eq!(v["records"][0]["fields"]["name"], "P");
    let (status, v) = admin
        .post("/v1/tokens", json!({"subject_id": "p1", "collection": "customers", "field": "card_number", "purpose": "payment", "values": ["4242424242424242"]}))
        .await;
    assert_eq!(status, 201, "{v}");
    let token = v["tokens"][0].clone();
    let (status, v) = admin
        .post(
            "/v1/tokens/detokenize",
            json!({"purpose": "payment", "tokens": [token]}),
        )
        .await;
    // the forbidden plain form turns the token back to nothing (a refusal would tell the
    // caller the token is live)
    assert_eq!(status, 200, "{v}");
    assert!(v["values"][0].get("value").is_none(), "{v}");

    let ok = custodia()
        .arg("check")
        .arg(vault.path().join("registry.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 policy files"));
}

#[test]
fn a_policy_that_does_not_fit_the_registry_stops_the_server_and_fails_check() {
    let vault = Vault::init();
    std::fs::create_dir(vault.path().join("policies")).unwrap();
    std::fs::write(
        vault.path().join("policies/typo.cedar"),
        "forbid(principal, action == Action::\"read_plain\", resource) when { resource.feild_type == \"card_number\" };\n",
    )
    .unwrap();
    let out = custodia()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("policies/typo.cedar"), "{stderr}");
    let check = custodia()
        .arg("check")
        .arg(vault.path().join("registry.toml"))
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("typo.cedar"));
}

#[test]
fn policies_prints_the_schema_and_the_compiled_roles() {
    let vault = Vault::init();
    let out = custodia()
        .arg("policies")
        .arg(vault.path().join("registry.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entity Field in [Purpose]"));
    assert!(text.contains("permit(principal == Role::\"support_agent\", action in [Action::\"read_masked\", Action::\"read_token\"], resource == Field::\"customer_support/customers.card_number\");"), "{text}");
    assert!(
        text.contains("entity Vault;") && text.contains("\"use_scanner\""),
        "{text}"
    );
    assert!(text.contains("@role(\"auditor\") @description(\"Auditors: the audit log only, no personal data.\")\npermit(principal == Role::\"auditor\", action in [Action::\"read_audit\"], resource == Vault::\"vault\");"), "{text}");
    assert!(text.contains("permit(principal == Role::\"admin\", action == Action::\"delete\", resource == Purpose::\"order_fulfillment\");"), "{text}");
    assert!(
        !text.contains("permit(principal == Role::\"fulfillment_service\", action == Action::\"delete\""),
        "{text}"
    );
    assert!(!text.contains("// role"), "no comments: descriptions are annotations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_attribute_gates_support_agents() {
    let vault = Vault::init();
    std::fs::create_dir(vault.path().join("policies")).unwrap();
    std::fs::write(
        vault.path().join("policies/open-ticket.cedar"),
        "// Support agents read a subject's data only while that subject has an open ticket.\n\
         forbid(principal == Role::\"support_agent\", action, resource)\n  unless { context has open_ticket && context.open_ticket };\n",
    )
    .unwrap();
    let out = custodia()
        .args(["context-key", "ticketing", "--data-dir"])
        .arg(vault.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = hex::decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(key.len(), 32);
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, _) = admin
        .post(
            "/v1/subjects/t1/records/customers",
            json!({"purpose": "customer_support", "fields": {"name": "T"}}),
        )
        .await;
    assert_eq!(status, 201);
    let agent = admin.principal("agent-9", &["support_agent"]).await;
    let mut agent = server.client(&agent).await;
    let path = "/v1/subjects/t1/records/customers?purpose=customer_support";
    let (status, v) = agent.get(path).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("purpose_not_allowed")),
        "{v}"
    );
    // the refusal says a policy decided it (the registry grants the purpose), not which: the
    // file's name is the operator's (the server's log names it)
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a policy of this vault forbids it for this request"),
        "{v}"
    );
    assert!(!v.to_string().contains("open-ticket"), "{v}");
    let (status, v) = agent
        .post("/v1/scan", serde_json::json!({"text": "nothing here"}))
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("not_allowed")), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a policy of this vault forbids it"),
        "{v}"
    );
    // The agent cannot assert the ticket itself: the policy would mean nothing.
    let open = r#"{"open_ticket": true}"#;
    let (status, v) = agent.get_with_headers(path, &[("Custodia-Context", open)]).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("context_not_allowed")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("assert_context"),
        "{v}"
    );
    // The ticketing system signs it for the subject, and the agent passes it on.
    let now = unix_now();
    let signed = |t: i64, subject: &str| format!("signer=ticketing, t={t}, sig={}", sign(&key, t, subject, open));
    let good = signed(now, "t1");
    let (status, v) = agent
        .get_with_headers(
            path,
            &[("Custodia-Context", open), ("Custodia-Context-Signature", &good)],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"][0]["fields"]["name"], "T");
    // Not for another subject, not stale, not with another context, not from another signer.
    let refused = [
        (open.to_owned(), signed(now, "t2")),
        (open.to_owned(), signed(now - 301, "t1")),
        (r#"{"open_ticket":true}"#.to_owned(), good.clone()),
        (open.to_owned(), good.replace("signer=ticketing", "signer=billing")),
        // times at the ends of the range: no overflow, a refusal like any other
        (open.to_owned(), signed(i64::MIN, "t1")),
        (open.to_owned(), signed(i64::MAX, "t1")),
        (open.to_owned(), signed(-9_223_372_036_000_000_000, "t1")),
    ];
    for (context, signature) in refused {
        let (status, v) = agent
            .get_with_headers(
                path,
                &[
                    ("Custodia-Context", &context),
                    ("Custodia-Context-Signature", &signature),
                ],
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (403, Some("context_not_allowed")),
            "{signature}: {v}"
        );
    }
    // A signature naming a key twice is malformed, whichever value would have been read.
    let (status, v) = agent
        .get_with_headers(
            path,
            &[
                ("Custodia-Context", open),
                ("Custodia-Context-Signature", &format!("{good}, t={now}")),
            ],
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_context_signature")),
        "{v}"
    );
    // Every refusal is audited, naming the attribute, never its value.
    let (_, page) = admin.get("/v1/audit/events?action=context.assert&decision=deny").await;
    let denied = page["events"].as_array().unwrap();
    assert_eq!(denied.len(), 8, "{page}");
    assert_eq!(denied[0]["entry"]["fields"], json!(["open_ticket"]));
    // A role trusted to assert it (the admin holds assert_context) sends it unsigned.
    let (status, v) = admin
        .get_with_headers(path, &[("Custodia-Context", r#"{"open_ticket": false}"#)])
        .await;
    assert_eq!(status, 200, "{v}");
    let mut agent = admin;
    let (status, v) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"open_ticket": "yes"}"#)])
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_context")));
    let (status, v) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"vip": true}"#)])
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_context")));
    // A key given twice, or a header sent twice, would mean one thing here and maybe another
    // to whoever signed it: refused.
    let twice = r#"{"open_ticket": false, "open_ticket": true}"#;
    let (status, v) = agent.get_with_headers(path, &[("Custodia-Context", twice)]).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_context")),
        "{v}"
    );
    let (status, v) = agent
        .get_with_headers(
            path,
            &[
                ("Custodia-Context", r#"{"open_ticket": false}"#),
                ("Custodia-Context", r#"{"open_ticket": true}"#),
            ],
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_context")),
        "{v}"
    );
}

fn unix_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_secs()).unwrap()
}

/// What the ticketing system computes (README, "Policies").
fn sign(key: &[u8], t: i64, subject: &str, context: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let input = format!("custodia-context-v1\n{t}\n{subject}\n{context}");
    hex::encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
}

/// A role that reads a field as a token writes none of it, even when a policy file grants the
/// write the registry would refuse: a guess written and read back would be told apart from
/// every subject's value by its deterministic token (review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_cannot_let_a_token_reader_write_guesses() {
    let vault = Vault::init();
    std::fs::create_dir(vault.path().join("policies")).unwrap();
    std::fs::write(
        vault.path().join("policies/analysts-write.cedar"),
        "permit(principal == Role::\"data_science\", action == Action::\"write\", resource in Purpose::\"analytics\");\n",
    )
    .unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let analyst = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst).await;
    let (status, v) = admin
        .post(
            "/v1/subjects/probe_1/consents",
            json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = analyst
        .post(
            "/v1/subjects/probe_1/records/customers",
            json!({"purpose": "analytics", "fields": {"email": "guess@example.com"}}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (403, Some("field_write_denied"), Some("email")),
        "{v}"
    );
    // what it reads in another form it may write
    let (status, v) = analyst
        .post(
            "/v1/subjects/probe_1/records/customers",
            json!({"purpose": "analytics", "fields": {"birth_date": "1990-01-01"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // A write under a selling purpose carrying the GPC signal, for an id the vault holds
    // nothing of, is refused by it and records nothing (a writer filled the ledger with
    // made-up ids; review); for a subject it holds, the signal is recorded.
    for (subject, recorded) in [("ghost_1", 0), ("probe_1", 1)] {
        let (status, v) = analyst
            .post_with_headers(
                &format!("/v1/subjects/{subject}/records/customers"),
                json!({"purpose": "analytics", "fields": {"birth_date": "1990-04-01"}}),
                &[("Sec-GPC", "1")],
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (403, Some("sale_opted_out")),
            "{v}"
        );
        let (_, v) = admin.get(&format!("/v1/subjects/{subject}/consents")).await;
        let gpc = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "gpc")
            .count();
        assert_eq!(gpc, recorded, "{subject}: {v}");
    }
}

/// Nor a key of two roles, each valid alone: one writing a field it sees masked, one reading
/// it as a token under a purpose that reuses what the first writes (review: the guess was
/// read back as a token where it was reused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_roles_of_one_key_cannot_write_guesses_and_read_their_tokens() {
    let vault = Vault::init();
    let file = vault.path().join("registry.toml");
    let mut registry = std::fs::read_to_string(&file).unwrap();
    registry.push_str(
        "\n[roles.masked_writer]\ndescription = \"Writes delivery emails, sees them masked.\"\n\
         purposes = [\"order_fulfillment\"]\nwrite = [\"order_fulfillment\"]\n\
         [roles.masked_writer.output]\n\"customers.email\" = \"masked\"\n\
         \n[roles.token_reader]\ndescription = \"Reads emails as tokens in support.\"\n\
         purposes = [\"customer_support\"]\n[roles.token_reader.output]\n\"customers.email\" = \"token\"\n",
    );
    std::fs::write(&file, registry).unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (status, v) = admin
        .post(
            "/v1/principals",
            json!({"name": "both", "roles": ["masked_writer", "token_reader"]}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let mut both = server.client(v["api_key"].as_str().unwrap()).await;
    let (status, v) = both
        .post(
            "/v1/subjects/probe_2/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "guess@example.com"}}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (403, Some("field_write_denied"), Some("email")),
        "{v}"
    );
    // each role alone writes what it may
    let (status, v) = admin
        .post("/v1/principals", json!({"name": "one", "roles": ["masked_writer"]}))
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = server
        .client(v["api_key"].as_str().unwrap())
        .await
        .post(
            "/v1/subjects/probe_2/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": "real@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
}
