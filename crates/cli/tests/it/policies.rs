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
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("detokenize_not_allowed")),
        "{v}"
    );

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
    assert!(text.contains("permit(principal == Role::\"support_agent\", action in [Action::\"read_masked\", Action::\"read_token\", Action::\"tokenize\"], resource == Field::\"customer_support/customers.card_number\");"), "{text}");
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
    let (status, v) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"open_ticket": true}"#)])
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"][0]["fields"]["name"], "T");
    let (status, _) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"open_ticket": false}"#)])
        .await;
    assert_eq!(status, 403);
    let (status, v) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"open_ticket": "yes"}"#)])
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_context")));
    let (status, v) = agent
        .get_with_headers(path, &[("Custodia-Context", r#"{"vip": true}"#)])
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_context")));
}
