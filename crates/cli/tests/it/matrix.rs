//! The authorization matrix: every role x purpose x field of the example registry, over HTTP,
//! gives exactly what the registry says. Deny by default.

use custodia_registry::{EXAMPLE_REGISTRY, OutputForm, Registry};
use serde_json::json;

use crate::support::Vault;

/// The values the test stores, and how each looks masked.
const VALUES: &[(&str, &str, &str)] = &[
    ("email", "jo@example.com", "j***@example.com"),
    ("name", "Jo Bloggs", "J***"),
    ("phone", "+447700900123", "+44 ******* 123"),
    ("shipping_address", "1 High St", "1***"),
    ("birth_date", "1980-02-03", "1980-**-**"),
    ("card_number", "4242424242424242", "**** **** **** 4242"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_purpose_and_field_matches_the_registry() {
    let registry = Registry::parse("example", EXAMPLE_REGISTRY).unwrap();
    let customers = registry.collection("customers").unwrap();
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;

    // Consent to every consent-based purpose, so that only roles and the registry decide here.
    for (name, purpose) in &registry.purposes {
        if purpose.legal_basis == custodia_registry::LegalBasis::Consent {
            let body = json!({"purpose": name, "granted": true, "notice_version": "v1", "method": "api"});
            assert_eq!(admin.post("/v1/subjects/m1/consents", body).await.0, 201);
        }
    }
    // One record holding every field, written field by field under a purpose declaring it.
    let (status, v) = admin
        .post(
            "/v1/subjects/m1/records/customers",
            json!({"purpose": "order_fulfillment", "fields": {"email": VALUES[0].1}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["record_id"].as_str().unwrap().to_owned();
    // Every purpose declaring a field holds its value (the same value written under each binds
    // it to each), so every read below is decided by the role alone.
    for (field, value, _) in VALUES {
        for purpose in registry.purposes.values().filter(|p| p.declares("customers", field)) {
            let path = format!("/v1/subjects/m1/records/customers/{id}?purpose={}", purpose.name);
            let (status, v) = admin
                .call("PATCH", &path, Some(json!({"fields": {*field: value}})))
                .await;
            assert_eq!(status, 204, "{field} under {}: {v}", purpose.name);
        }
    }

    let mut checked = 0;
    for role in registry.roles.values() {
        let key = admin.principal(&format!("matrix-{}", role.name), &[&role.name]).await;
        let mut client = server.client(&key).await;
        for purpose in registry.purposes.values() {
            for (field, plain, masked) in VALUES {
                let path = format!(
                    "/v1/subjects/m1/records/customers/{id}?purpose={}&fields={field}",
                    purpose.name
                );
                let (status, v) = client.get(&path).await;
                let expected: Result<&str, &str> = if !role.purposes.contains(&purpose.name) {
                    Err("purpose_not_allowed")
                } else if !purpose.declares("customers", field) {
                    Err("field_not_in_purpose")
                } else {
                    match role.output_form(customers, &customers.fields[*field]) {
                        OutputForm::Plain => Ok(plain),
                        OutputForm::Masked => Ok(masked),
                        OutputForm::Token => Ok("<a token>"),
                        OutputForm::Denied => Err("field_denied"),
                    }
                };
                let got = if status == 200 {
                    let value = v["fields"][*field].as_str().unwrap_or("<missing>");
                    // A token is neither the value nor its mask, and holds nothing of it.
                    let is_token = value != *masked && value != "<missing>" && !value.contains(plain);
                    Ok(if is_token { "<a token>" } else { value })
                } else {
                    assert_eq!(status, 403, "{} x {} x {field}: {v}", role.name, purpose.name);
                    Err(v["error"]["code"].as_str().unwrap())
                };
                assert_eq!(got, expected, "{} x {} x {field}", role.name, purpose.name);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, registry.roles.len() * registry.purposes.len() * VALUES.len());

    // Writes and deletes: granted per role and purpose, never implied. Against a record that
    // does not exist, a permitted call gets as far as the lookup (404); a refused one is a 403.
    let missing = "rec_00000000000000000000000000000000";
    for role in registry.roles.values() {
        let key = admin
            .principal(&format!("matrix-w-{}", role.name).replace('_', "-"), &[&role.name])
            .await;
        let mut client = server.client(&key).await;
        for purpose in registry.purposes.values() {
            let path = format!("/v1/subjects/m1/records/customers/{missing}?purpose={}", purpose.name);
            let field = purpose.fields_of("customers").next().unwrap();
            let value = VALUES.iter().find(|(f, _, _)| f == field).unwrap().1;
            let code = |status: u16, v: &serde_json::Value| {
                v["error"]["code"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or(status.to_string())
            };
            let expect = |granted: bool, refusal: &str| {
                if !role.purposes.contains(&purpose.name) {
                    "purpose_not_allowed".to_owned()
                } else if granted {
                    "record_not_found".to_owned()
                } else {
                    refusal.to_owned()
                }
            };
            let (status, v) = client
                .call("PATCH", &path, Some(json!({"fields": {field.as_str(): value}})))
                .await;
            assert_eq!(
                code(status, &v),
                expect(role.write.contains(&purpose.name), "field_write_denied"),
                "write: {} x {}",
                role.name,
                purpose.name
            );
            let (status, v) = client.call("DELETE", &path, None).await;
            assert_eq!(
                code(status, &v),
                expect(role.delete.contains(&purpose.name), "delete_not_allowed"),
                "delete: {} x {}",
                role.name,
                purpose.name
            );
        }
    }

    // Pinned rows, so a registry edit that changes them is noticed here too.
    let pins = [
        (
            "support_agent",
            "customer_support",
            "card_number",
            Ok("**** **** **** 4242"),
        ),
        ("support_agent", "customer_support", "email", Ok("jo@example.com")),
        (
            "support_agent",
            "order_fulfillment",
            "email",
            Err("purpose_not_allowed"),
        ),
        (
            "fulfillment_service",
            "order_fulfillment",
            "birth_date",
            Err("field_not_in_purpose"),
        ),
        ("payment_service", "payment", "card_number", Ok("4242424242424242")),
        ("auditor", "tax_records", "name", Err("purpose_not_allowed")),
        (
            "consent_service",
            "marketing_email",
            "email",
            Err("purpose_not_allowed"),
        ),
    ];
    for (role, purpose, field, expected) in pins {
        let key = admin
            .principal(&format!("pin-{role}-{purpose}-{field}").replace('_', "-"), &[role])
            .await;
        let (status, v) = server
            .client(&key)
            .await
            .get(&format!(
                "/v1/subjects/m1/records/customers/{id}?purpose={purpose}&fields={field}"
            ))
            .await;
        let got = if status == 200 {
            Ok(v["fields"][field].as_str().unwrap().to_owned())
        } else {
            Err(v["error"]["code"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            got,
            expected.map(str::to_owned).map_err(str::to_owned),
            "{role} x {purpose} x {field}"
        );
    }
}
