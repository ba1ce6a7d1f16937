//! Incident response end to end on a seeded vault: one API key leaks; the incident's scope
//! lists exactly the subjects that key read in the window (checked against what the test
//! made it read, with reads by other keys and outside the window as traps), the 72-hour
//! countdown and the duties follow the risk, the drafts say what was read, containment
//! (revoking the key, read-only collections) takes effect and is on the timeline, and what
//! responders wrote is not in the database files in clear.

use std::collections::BTreeSet;

use custodia_core::Timestamp;
use serde_json::{Value, json};

use crate::support::{Client, Vault, custodia, files_under};

const HOUR_MS: i64 = 3_600_000;
/// Text only the incident's description holds: it must not be in the database in clear.
const SECRET_DESCRIPTION: &str = "Support key pasted into ticket ZX-48213 by Quentin Marlowe";

fn records(subject: &str) -> String {
    format!("/v1/subjects/{subject}/records/customers")
}

async fn principal(admin: &mut Client, name: &str, roles: &[&str]) -> (String, String) {
    let (s, v) = admin
        .post("/v1/principals", json!({"name": name, "roles": roles}))
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["principal_id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

async fn create(client: &mut Client, subject: &str, purpose: &str, fields: Value) -> String {
    let (s, v) = client
        .post(&records(subject), json!({"purpose": purpose, "fields": fields}))
        .await;
    assert_eq!(s, 201, "create under {purpose}: {v}");
    v["record_id"].as_str().unwrap().to_owned()
}

/// Waits until the clock has moved past `t` (audit entries carry milliseconds).
async fn past(t: Timestamp) {
    while Timestamp::now().0 <= t.0 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

fn subjects(scope: &Value) -> BTreeSet<String> {
    scope["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn duty<'a>(incident: &'a Value, law: &str, to: &str) -> &'a Value {
    incident["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["law"] == law && d["to"] == to)
        .unwrap_or_else(|| panic!("no {law} duty to {to}: {incident}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_s_blast_radius_duties_drafts_and_containment() {
    incident_scenario(Vault::init()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_s_blast_radius_on_postgres() {
    let Some(url) = crate::support::postgres_url() else {
        eprintln!("skipping: CUSTODIA_TEST_POSTGRES_URL is not set");
        return;
    };
    incident_scenario(Vault::init_with(Some(crate::support::fresh_postgres_database(&url)))).await;
}

async fn incident_scenario(vault: Vault) {
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (_, warehouse_key) = principal(&mut admin, "warehouse", &["fulfillment_service"]).await;
    let (support_id, support_key) = principal(&mut admin, "support-desk", &["support_agent"]).await;
    let (_, auditor_key) = principal(&mut admin, "auditor", &["auditor"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let mut support = server.client(&support_key).await;

    // Seed: six customers with delivery details, three of them with a card.
    for n in 1..=6 {
        let subject = format!("cust-{n}");
        create(
            &mut warehouse,
            &subject,
            "order_fulfillment",
            json!({"email": format!("person{n}@example.com"), "name": format!("Person {n}"),
                   "phone": "+44 20 7946 0958", "shipping_address": "1 High Street"}),
        )
        .await;
        if n % 2 == 0 {
            create(
                &mut admin,
                &subject,
                "payment",
                json!({"card_number": "4111 1111 1111 1111"}),
            )
            .await;
        }
    }
    // Before the window: the leaked key reads cust-5 (not in the scope).
    let (s, _) = support
        .get(&format!("{}?purpose=customer_support", records("cust-5")))
        .await;
    assert_eq!(s, 200);
    let before = Timestamp::now();
    past(before).await;
    let from = Timestamp::now();
    // In the window: the leaked key lists cust-2's records (email, name, phone, card masked),
    // reads one field of cust-4, and finds cust-3 by email; the warehouse reads cust-1.
    let (s, list) = support
        .get(&format!("{}?purpose=customer_support", records("cust-2")))
        .await;
    assert_eq!(s, 200, "{list}");
    let (s, list4) = support
        .get(&format!("{}?purpose=customer_support", records("cust-4")))
        .await;
    assert_eq!(s, 200, "{list4}");
    let rec4 = list4["records"][0]["record_id"].as_str().unwrap().to_owned();
    let (s, v) = support
        .get(&format!(
            "{}/{rec4}?purpose=customer_support&fields=email",
            records("cust-4")
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = support
        .post(
            "/v1/search",
            json!({"purpose": "customer_support", "collection": "customers", "field": "email", "value": "person3@example.com"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matches"].as_array().unwrap().len(), 1, "{v}");
    let (s, _) = warehouse
        .get(&format!("{}?purpose=order_fulfillment", records("cust-1")))
        .await;
    assert_eq!(s, 200);
    // Lists of subjects with nothing are no exposure (a leaked key cannot inflate the count).
    for ghost in ["ghost-1", "ghost-2"] {
        let (s, v) = support
            .get(&format!("{}?purpose=customer_support", records(ghost)))
            .await;
        assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    }
    // A refused read is no exposure.
    let (s, _) = support.get(&format!("{}?purpose=payment", records("cust-6"))).await;
    assert_eq!(s, 403);
    let to = Timestamp::now();
    past(to).await;
    // After the window: cust-6 read by the leaked key, outside the scope asked for.
    let (s, _) = support
        .get(&format!("{}?purpose=customer_support", records("cust-6")))
        .await;
    assert_eq!(s, 200);

    // cust-3 is known to be Californian: a request of theirs named the CCPA.
    let (s, v) = admin
        .post(
            "/v1/requests",
            json!({"subject_id": "cust-3", "type": "access", "jurisdiction": "ccpa"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // Open the incident: aware an hour ago, so 71 hours are left to tell the authority.
    let aware = Timestamp(Timestamp::now().0 - HOUR_MS);
    let aware_text = aware.to_rfc3339();
    let (s, opened) = admin
        .post(
            "/v1/incidents",
            json!({"title": "Support API key leaked", "description": SECRET_DESCRIPTION,
                   "aware_at": aware_text, "source": "secret scanning alert", "systems": ["help desk"]}),
        )
        .await;
    assert_eq!(s, 201, "{opened}");
    let id = opened["incident_id"].as_str().unwrap().to_owned();
    let aware_ms = Timestamp::parse_rfc3339(opened["aware_at"].as_str().unwrap())
        .unwrap()
        .0;
    let deadline = Timestamp::parse_rfc3339(opened["authority_deadline"].as_str().unwrap()).unwrap();
    assert_eq!(deadline.0, aware_ms + 72 * HOUR_MS, "{opened}");

    // Who may not: an auditor (read_audit only), the leaked key itself, no key at all.
    for key in [&auditor_key, &support_key] {
        let mut c = server.client(key).await;
        let (s, v) = c.get("/v1/incidents").await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = c
            .post(
                &format!("/v1/incidents/{id}/scope"),
                json!({"principals": [support_id], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
    }
    let mut anonymous = server.anonymous().await;
    let (s, _) = anonymous.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 401);

    // The blast radius: exactly the subjects the leaked key read in the window.
    let (s, scope) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"principals": [support_id], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200, "{scope}");
    let expected: BTreeSet<String> = ["cust-2", "cust-3", "cust-4"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(subjects(&scope), expected, "{scope}");
    assert_eq!(scope["subjects_affected"], 3);
    // cust-2's list (its order and payment records: support may read payment's as
    // compatible), cust-4's list (2) and one of its records, cust-3 found (1).
    assert_eq!(scope["records"], 6, "{scope}");
    assert_eq!(scope["entries"], 4, "{scope}");
    let categories: BTreeSet<&str> = scope["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "user.contact.email",
        "user.name",
        "user.contact.phone_number",
        "user.financial.credit_card",
    ] {
        assert!(categories.contains(c), "{c} missing: {scope}");
    }
    assert!(
        !categories.contains("user.contact.address"),
        "support never sees addresses: {scope}"
    );
    assert_eq!(
        scope["exposure"]["masked"],
        json!(["user.financial.credit_card"]),
        "{scope}"
    );
    assert!(
        scope["exposure"]["plaintext"]
            .as_array()
            .unwrap()
            .contains(&json!("user.contact.email"))
    );
    assert_eq!(scope["unintelligible"], false);
    assert_eq!(scope["jurisdictions"], json!({"ccpa": 1, "unknown": 2}), "{scope}");
    // The GDPR does not reach a subject known to be Californian; California's law reaches
    // them and, not knowing where the others live, them too.
    assert_eq!(scope["affected_by_law"]["gdpr"], 2, "{scope}");
    assert_eq!(scope["affected_by_law"]["us_ca"], 3, "{scope}");
    // A window with nothing of the key's: nobody.
    let (s, empty) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"principals": [support_id], "from": Timestamp(from.0 - 10 * HOUR_MS).to_rfc3339(), "to": Timestamp(from.0 - 9 * HOUR_MS).to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200, "{empty}");
    assert_eq!(empty["subjects"], json!([]));
    assert_eq!(
        empty["unintelligible"], false,
        "nothing read is not 'unintelligible': {empty}"
    );
    // Finding no read in the log lifts no duty: a breach may reach people the log does not show.
    let (s, incident) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        duty(&incident, "gdpr", "authority")["owed"],
        "provisionally",
        "{incident}"
    );
    assert_eq!(incident["authority_deadline"], opened["authority_deadline"]);
    // A mistyped principal id is refused, not taken for a key that read nothing.
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"principals": [support_id, "prn_typo"], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("unknown_principal")),
        "{v}"
    );
    // The scope again, so that the latest is the real one.
    let (s, _) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"principals": [support_id], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200);

    // The countdown: the GDPR authority duty, provisionally owed until the risk is assessed.
    let (s, incident) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 200, "{incident}");
    let authority = duty(&incident, "gdpr", "authority");
    assert_eq!(authority["owed"], "provisionally", "{authority}");
    assert_eq!(authority["due"], opened["authority_deadline"]);
    let left = authority["remaining_seconds"].as_i64().unwrap();
    assert!((70 * 3600..=71 * 3600).contains(&left), "{authority}");
    assert!(
        authority["countdown"].as_str().unwrap().ends_with("left"),
        "{authority}"
    );
    assert_eq!(duty(&incident, "gdpr", "subjects")["owed"], "provisionally");
    let ca = duty(&incident, "us_ca", "subjects");
    assert_eq!(ca["due"], Timestamp(aware_ms + 30 * 24 * HOUR_MS).to_rfc3339(), "{ca}");
    // 3 people is under California's 500 for the attorney general.
    assert_eq!(duty(&incident, "us_ca", "attorney_general")["owed"], "no");

    // A high risk: the people must be told too (their emails were read in clear).
    let (s, incident) = admin
        .post(
            &format!("/v1/incidents/{id}/risk"),
            json!({"risk": "high_risk", "reason": "Contact details usable for phishing (Zorblax kit) were read in clear."}),
        )
        .await;
    assert_eq!(s, 200, "{incident}");
    assert_eq!(duty(&incident, "gdpr", "authority")["owed"], "yes");
    assert_eq!(duty(&incident, "gdpr", "subjects")["owed"], "yes");
    assert_eq!(duty(&incident, "gdpr", "subjects")["due"], Value::Null);

    // Drafts: the authority's with the Art. 33(3) contents, a letter to one person affected.
    let (s, draft) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/authority"), "")
        .await;
    assert_eq!(s, 200, "{draft}");
    for part in [
        "Information Commissioner's Office (ICO)",
        "Example Shop Ltd",
        "dpo@shop.example",
        "Approximate number of people concerned: 3",
        "records concerned: 6",
        "credit card",
        "phishing",
        opened["authority_deadline"].as_str().unwrap(),
        "within the deadline",
    ] {
        assert!(draft.contains(part), "{part:?} missing from:\n{draft}");
    }
    assert!(!draft.contains("cust-2"), "the authority's draft names no one: {draft}");
    // A decision naming another person: the authority is told, the people are not.
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/entries"),
            json!({"kind": "decision", "text": "Call Person 4 (person4@example.com) first: she complained to the press"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, draft) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/authority"), "")
        .await;
    assert_eq!(s, 200, "{draft}");
    assert!(draft.contains("Call Person 4"), "{draft}");
    let (s, letter) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/subjects/cust-2"), "")
        .await;
    assert_eq!(s, 200, "{letter}");
    assert!(letter.contains("credit card") && letter.contains("email"), "{letter}");
    for responders_words in ["Person 4", "person4@example.com", "Zorblax", "phishing"] {
        assert!(
            !letter.contains(responders_words),
            "{responders_words:?} in a letter to cust-2:\n{letter}"
        );
    }
    let (s, letter) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/subjects/cust-3"), "")
        .await;
    assert_eq!(s, 200, "{letter}");
    // cust-3 was only found by its email.
    assert!(letter.contains("involved.** email\n"), "{letter}");
    let (s, v) = admin.get(&format!("/v1/incidents/{id}/drafts/subjects/cust-1")).await;
    assert_eq!(s, 404, "cust-1 was read by another key: {v}");

    // Containment: the leaked key stops working, and the collection can be frozen.
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/containment"),
            json!({"action": "revoke_principal", "target": support_id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = support
        .get(&format!("{}?purpose=customer_support", records("cust-2")))
        .await;
    assert_eq!(s, 401, "the revoked key still reads");
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/containment"),
            json!({"action": "read_only", "target": "customers"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = warehouse
        .post(
            &records("cust-9"),
            json!({"purpose": "order_fulfillment", "fields": {"email": "late@example.com"}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "collection_read_only");
    let (s, v) = warehouse
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust-1", "collection": "customers", "field": "email",
                   "purpose": "order_fulfillment", "values": ["other@example.com"]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("collection_read_only")),
        "{v}"
    );
    let (s, _) = warehouse
        .get(&format!("{}?purpose=order_fulfillment", records("cust-1")))
        .await;
    assert_eq!(s, 200, "reads go on while writes are frozen");
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/containment"),
            json!({"action": "read_only", "target": "customers"}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/containment"),
            json!({"action": "read_write", "target": "customers"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    create(
        &mut warehouse,
        "cust-9",
        "order_fulfillment",
        json!({"email": "late@example.com"}),
    )
    .await;

    // Notified: the log of what was sent, in the register.
    let (s, incident) = admin
        .post(
            &format!("/v1/incidents/{id}/notifications"),
            json!({"law": "gdpr", "to": "authority", "reference": "ICO case 123"}),
        )
        .await;
    assert_eq!(s, 200, "{incident}");
    let authority = duty(&incident, "gdpr", "authority");
    assert!(authority["sent_at"].is_string(), "{authority}");
    assert!(
        authority["countdown"].as_str().unwrap().starts_with("sent"),
        "{authority}"
    );
    let kinds: Vec<&str> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "opened",
        "scope",
        "risk",
        "decision",
        "containment",
        "notification_sent",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "containment").count(),
        3,
        "revoke, read-only, read-write: {kinds:?}"
    );
    let (s, register) = admin.get("/v1/incidents").await;
    assert_eq!(s, 200);
    assert_eq!(register["incidents"][0]["incident_id"], id.as_str());
    assert_eq!(register["incidents"][0]["notified"], json!(["gdpr:authority"]));

    // Bad input: clear 4xx, nothing written. Malformed: 400; well-formed but refused (an
    // empty or invisible text, a time in the future): 422.
    for (body, code) in [
        (json!({"title": "", "description": "x", "aware_at": aware_text}), 422),
        (json!({"title": "t", "description": "x", "aware_at": "yesterday"}), 400),
        (
            json!({"title": "t", "description": "x", "aware_at": Timestamp(Timestamp::now().0 + HOUR_MS).to_rfc3339()}),
            422,
        ),
        (
            json!({"title": "t\u{202e}", "description": "x", "aware_at": aware_text}),
            422,
        ),
    ] {
        let (s, v) = admin.post("/v1/incidents", body.clone()).await;
        assert_eq!(s, code, "{body}: {v}");
    }
    let (s, _) = admin.get("/v1/incidents/inc_0123").await;
    assert_eq!(s, 404);
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_scope")), "{v}");
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"collections": ["nope"], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/notifications"),
            json!({"law": "hipaa", "to": "media"}),
        )
        .await;
    assert_eq!(s, 422, "hipaa is not among the organization's laws: {v}");
    // A notification dated before the organization knew of the breach is a typing error.
    let before = Timestamp(aware_ms - HOUR_MS).to_rfc3339();
    let (s, v) = admin
        .post(
            &format!("/v1/incidents/{id}/notifications"),
            json!({"law": "gdpr", "to": "subjects", "sent_at": before}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (422, Some("invalid_time"), Some("sent_at")),
        "{v}"
    );
    let (s, register_after) = admin.get("/v1/incidents").await;
    assert_eq!(s, 200);
    assert_eq!(register_after["incidents"].as_array().unwrap().len(), 1);

    // The CLI shows the same incident.
    let out = custodia()
        .args([
            "incident",
            "show",
            &id,
            "--url",
            &format!("http://{}", server.addr),
            "--token",
            &vault.token,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("gdpr") && text.contains("sent") && text.contains("3 people"),
        "{text}"
    );
    // A draft written to a file is its owner's only, a file there before included.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let letter = vault.path().join("authority.md");
        std::fs::write(&letter, "old").unwrap();
        std::fs::set_permissions(&letter, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("http://{}", server.addr);
        let args = [
            "incident",
            "draft",
            &id,
            "--url",
            &url,
            "--token",
            &vault.token,
            "--out",
        ];
        let out = custodia().args(args).arg(&letter).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let meta = std::fs::metadata(&letter).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&letter).unwrap().len() > 3, "written over");
        std::fs::remove_file(&letter).unwrap();
    }

    // What responders wrote is sealed: not in any file of the data directory in clear.
    server.terminate();
    if vault.database_url.is_none() {
        for file in files_under(vault.path()) {
            let bytes = std::fs::read(&file).unwrap();
            for needle in [SECRET_DESCRIPTION, "Quentin Marlowe", "Zorblax"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle:?} in clear in {}",
                    file.display()
                );
            }
        }
    }
}

/// What a leaked key showed through the preference center links it issued and the consent
/// ledgers it read is in its blast radius (the people's choices, and which of their data is
/// held for what); a link id named that this vault never issued is refused like a mistyped
/// key; a scope narrowed to a collection keeps the access packages (they hand out all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blast_radius_counts_portal_pages_ledger_reads_and_packages() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (shop_id, shop_key) = principal(&mut admin, "account-pages", &["consent_service"]).await;
    let (dpo_id, dpo_key) = principal(&mut admin, "dpo", &["admin"]).await;
    let mut shop = server.client(&shop_key).await;
    let mut dpo = server.client(&dpo_key).await;
    for subject in ["cust-a", "cust-b", "cust-c", "cust-d"] {
        create(
            &mut admin,
            subject,
            "order_fulfillment",
            json!({"email": format!("{subject}@example.com")}),
        )
        .await;
    }
    let (s, v) = admin
        .post(
            "/v1/subjects/cust-b/consents",
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "api"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let from = Timestamp::now();
    past(from).await;
    // the leaked key opens a page about cust-a with a link it makes, and reads cust-b's ledger
    let (s, v) = shop
        .post("/v1/subjects/cust-a/portal-links", json!({"ttl_seconds": 900}))
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    let path = &url[url.find("/portal/").unwrap()..];
    let mut browser = server.anonymous().await;
    let (s, _, page) = browser.page("GET", path, None, &[]).await;
    assert_eq!(s, 200, "{page}");
    // a page about someone the vault never held shows nothing: no one to count
    let (s, v) = shop
        .post("/v1/subjects/cust-phantom/portal-links", json!({"ttl_seconds": 900}))
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    let (s, _, page) = browser
        .page("GET", &url[url.find("/portal/").unwrap()..], None, &[])
        .await;
    assert_eq!(s, 200, "{page}");
    let (s, v) = shop.get("/v1/subjects/cust-b/consents").await;
    assert_eq!(s, 200, "{v}");
    // a history of nothing hands out nothing: no one to count
    let (s, v) = shop.get("/v1/subjects/cust-never-seen/consents").await;
    assert_eq!(s, 200, "{v}");
    // a package of cust-c's data handed out by the DPO's key
    let (s, v) = dpo
        .post(
            "/v1/requests",
            json!({"subject_id": "cust-c", "type": "access", "jurisdiction": "gdpr", "verified_by": "signed-in session"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let request = v["request_id"].as_str().unwrap().to_owned();
    let (s, v) = dpo.post(&format!("/v1/requests/{request}/fulfil"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let to = Timestamp::now();
    past(to).await;

    let aware = Timestamp(Timestamp::now().0 - HOUR_MS).to_rfc3339();
    let (s, opened) = admin
        .post(
            "/v1/incidents",
            json!({"title": "Account pages key leaked", "description": "in a log", "aware_at": aware}),
        )
        .await;
    assert_eq!(s, 201, "{opened}");
    let id = opened["incident_id"].as_str().unwrap().to_owned();
    let scope = |principals: Value, collections: Value| json!({"principals": principals, "collections": collections, "from": from.to_rfc3339(), "to": to.to_rfc3339()});
    let (s, found) = admin
        .post(&format!("/v1/incidents/{id}/scope"), scope(json!([shop_id]), json!([])))
        .await;
    assert_eq!(s, 200, "{found}");
    let expected: BTreeSet<String> = ["cust-a", "cust-b"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(subjects(&found), expected, "{found}");
    assert_eq!(found["categories"], json!(["user.privacy_preferences"]), "{found}");
    assert_eq!(
        (found["subjects_affected"].as_u64(), found["subjects_gone"].as_u64()),
        (Some(2), Some(0)),
        "{found}"
    );
    assert_eq!(found["unintelligible"], false, "{found}");
    // the page's own principal, named: cust-a only
    let (s, log) = admin.get("/v1/audit/events?action=portal.view").await;
    assert_eq!(s, 200, "{log}");
    let page_principal = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["entry"]["principal"].as_str().filter(|p| p.starts_with("portal:")))
        .unwrap_or_else(|| panic!("no portal.view entry: {log}"))
        .to_owned();
    let (s, found) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            scope(json!([page_principal]), json!([])),
        )
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(subjects(&found), BTreeSet::from(["cust-a".to_owned()]), "{found}");
    for unknown in ["portal:not-a-real-link", "portal:0123456789abcdef0123456789abcdef"] {
        let (s, v) = admin
            .post(&format!("/v1/incidents/{id}/scope"), scope(json!([unknown]), json!([])))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("unknown_principal")),
            "{unknown}: {v}"
        );
    }
    // narrowed to a collection, the package is still there
    let (s, found) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            scope(json!([dpo_id]), json!(["customers"])),
        )
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(subjects(&found), BTreeSet::from(["cust-c".to_owned()]), "{found}");
    assert_eq!(found["packages"], 1, "{found}");
    // and what it handed out is named: cust-c's email, in plain text (no choices: its ledger
    // is empty)
    assert_eq!(found["fields"], json!(["customers.email"]), "{found}");
    assert_eq!(found["categories"], json!(["user.contact.email"]), "{found}");
    assert_eq!(found["exposure"]["plaintext"], json!(["user.contact.email"]), "{found}");
    let (s, draft) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/authority"), "")
        .await;
    assert_eq!(s, 200, "{draft}");
    assert!(draft.contains("read in plain text: email;"), "{draft}");
    // and cust-c's letter names what its package held
    let (s, letter) = admin
        .text("GET", &format!("/v1/incidents/{id}/drafts/subjects/cust-c"), "")
        .await;
    assert_eq!(s, 200, "{letter}");
    assert!(
        letter.contains("email") && letter.contains("all the personal data we hold about you"),
        "{letter}"
    );
    // cust-b's package holds its choices too; one of someone the vault holds nothing of
    // hands out nothing, and counts for nothing (it counted as a person affected; review)
    for (subject, kind) in [("cust-b", "portability"), ("cust-nothing", "access")] {
        let (s, v) = dpo
            .post(
                "/v1/requests",
                json!({"subject_id": subject, "type": kind, "jurisdiction": "gdpr", "verified_by": "signed-in session"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let request = v["request_id"].as_str().unwrap().to_owned();
        let (s, v) = dpo.post(&format!("/v1/requests/{request}/fulfil"), json!({})).await;
        assert_eq!(s, 200, "{v}");
    }
    let to = Timestamp::now();
    past(to).await;
    let (s, found) = admin
        .post(
            &format!("/v1/incidents/{id}/scope"),
            json!({"principals": [dpo_id], "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["packages"], 2, "{found}");
    assert_eq!(found["subjects_affected"], 2, "{found}");
    // each package counts the records it held (it counted one, however many)
    assert_eq!(found["records"], 2, "{found}");
    assert_eq!(
        found["exposure"]["plaintext"],
        json!(["user.contact.email", "user.privacy_preferences"]),
        "{found}"
    );
}

/// The time of awareness, the risk and the phase are read from what the vault sealed: the
/// columns changed in the database file (the 72-hour clock moved, the risk lowered, the
/// phase skipped) change nothing the register answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_risk_and_phase_are_read_from_the_sealed_record() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let aware = Timestamp(Timestamp::now().0 - HOUR_MS);
    let (s, opened) = admin
        .post(
            "/v1/incidents",
            json!({"title": "Laptop stolen", "description": "unencrypted export on it", "aware_at": aware.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 201, "{opened}");
    let id = opened["incident_id"].as_str().unwrap().to_owned();
    for (risk, reason) in [("unlikely", "only test data"), ("high_risk", "addresses and cards")] {
        let (s, v) = admin
            .post(
                &format!("/v1/incidents/{id}/risk"),
                json!({"risk": risk, "reason": reason}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = admin
        .post(&format!("/v1/incidents/{id}/phase"), json!({"phase": "contain"}))
        .await;
    assert_eq!(s, 200, "{v}");
    // A key that may not manage incidents is refused, and audited, before its body is read
    // (it was answered 400 for a wrong phase, and no denial written; review).
    let (_, warehouse) = principal(&mut admin, "warehouse", &["fulfillment_service"]).await;
    let mut warehouse = server.client(&warehouse).await;
    for (route, body) in [
        ("phase", json!({"phase": "no-such-phase"})),
        ("risk", json!({"risk": "no-such-risk", "reason": "x"})),
        ("entries", json!({"kind": "no-such-kind", "text": "x"})),
        ("notifications", json!({"law": "no-such-law", "to": "authority"})),
        ("containment", json!({"action": "no-such-action"})),
    ] {
        let (s, v) = warehouse.post(&format!("/v1/incidents/{id}/{route}"), body).await;
        assert_eq!(s, 403, "{route}: {v}");
    }
    assert_eq!(
        admin
            .audit_decisions("incident.update")
            .await
            .iter()
            .filter(|d| *d == "deny")
            .count(),
        5
    );
    // One key per call: a second Authorization header is refused, whichever comes first.
    let (s, v) = warehouse
        .get_with_headers(
            &format!("/v1/incidents/{id}"),
            &[("Authorization", &format!("Bearer {}", vault.token))],
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_authorization")),
        "{v}"
    );
    let (s, before) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 200, "{before}");
    server.terminate();

    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", vault.path().join("custodia.db").display()))
        .await
        .unwrap();
    // (the schema refuses it: someone with the file drops the trigger first)
    sqlx::query("DROP TRIGGER incidents_record_fixed")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE incidents SET aware_at = aware_at + 5 * 86400000, risk = 'unlikely', phase = 'post_incident'")
        .execute(&db)
        .await
        .unwrap();

    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, after) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 200, "{after}");
    for key in ["aware_at", "risk", "phase", "authority_deadline"] {
        assert_eq!(after[key], before[key], "{key}: {after}");
    }
    assert_eq!(after["risk"], "high_risk");
    assert_eq!(after["phase"], "contain");
    assert_eq!(
        duty(&after, "gdpr", "authority")["owed"],
        "yes",
        "the lowered risk lifted no duty: {after}"
    );
    let owed = |incident: &Value| -> Vec<Value> {
        incident["duties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["owed"].clone())
            .collect()
    };
    assert_eq!(owed(&after), owed(&before), "{after}");
    let (s, register) = admin.get("/v1/incidents").await;
    assert_eq!(s, 200);
    assert_eq!(register["incidents"][0]["aware_at"], before["aware_at"], "{register}");
    server.terminate();

    // The older assessment copied last on the timeline (its sealed text is the vault's own)
    // is out of place: the incident says it was altered, and the register still lists it.
    sqlx::query(
        "INSERT INTO incident_entries (incident_id, at, by_principal, kind, sealed)
         SELECT incident_id, at + 1000, by_principal, kind, sealed FROM incident_entries
         WHERE incident_id = ? AND kind = 'risk' ORDER BY entry_id LIMIT 1",
    )
    .bind(&id)
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin.raw_unchecked("GET", &format!("/v1/incidents/{id}"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    let (s, register) = admin.get("/v1/incidents").await;
    assert_eq!(s, 200, "{register}");
    assert!(
        register["incidents"][0]["title"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{register}"
    );
}

/// The newest entries of a timeline removed in the database file (the last risk assessment,
/// to lower the risk) leave every other entry in place: the row's sealed tally of entries
/// says how many there were. Nor can the tally be removed, or one copied from another
/// incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_entries_removed_are_seen_by_the_tally() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let aware = Timestamp(Timestamp::now().0 - HOUR_MS).to_rfc3339();
    let mut ids = Vec::new();
    for title in ["Laptop stolen", "Phishing"] {
        let (s, opened) = admin
            .post(
                "/v1/incidents",
                json!({"title": title, "description": "export on it", "aware_at": aware}),
            )
            .await;
        assert_eq!(s, 201, "{opened}");
        ids.push(opened["incident_id"].as_str().unwrap().to_owned());
    }
    let (id, other) = (ids[0].clone(), ids[1].clone());
    for (risk, reason) in [("unlikely", "only test data"), ("high_risk", "addresses and cards")] {
        let (s, v) = admin
            .post(
                &format!("/v1/incidents/{id}/risk"),
                json!({"risk": risk, "reason": reason}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, before) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!((s, before["risk"].as_str()), (200, Some("high_risk")), "{before}");
    server.terminate();

    let path = vault.path().join("custodia.db");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let run = |sql: &'static str| {
        let db = db.clone();
        let id = id.clone();
        async move {
            sqlx::query(sql).bind(id).execute(&db).await.unwrap();
        }
    };
    let altered = |vault: &Vault, id: String| {
        let server = vault.serve();
        let token = vault.token.clone();
        async move {
            let mut admin = server.client(&token).await;
            let (s, v) = admin.raw_unchecked("GET", &format!("/v1/incidents/{id}"), None).await;
            server.terminate();
            (s, v)
        }
    };
    let saved: Vec<u8> = sqlx::query_scalar("SELECT tally FROM incidents WHERE incident_id = ?")
        .bind(&id)
        .fetch_one(&db)
        .await
        .unwrap();
    // the newest entry (the high risk) removed, the append-only guard dropped first
    run("DROP TRIGGER incident_entries_no_delete").await;
    run("DELETE FROM incident_entries WHERE entry_id = (SELECT MAX(entry_id) FROM incident_entries WHERE incident_id = ?)")
        .await;
    let (s, v) = altered(&vault, id.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds 2 entries where the vault counted 3"),
        "{v}"
    );
    // the tally removed too, or another incident's put in its place
    run("UPDATE incidents SET tally = NULL WHERE incident_id = ?").await;
    let (s, v) = altered(&vault, id.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    sqlx::query(
        "UPDATE incidents SET tally = (SELECT tally FROM incidents WHERE incident_id = ?) WHERE incident_id = ?",
    )
    .bind(&other)
    .bind(&id)
    .execute(&db)
    .await
    .unwrap();
    let (s, v) = altered(&vault, id.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    // the other incident, untouched, still reads
    let (s, v) = altered(&vault, other.clone()).await;
    assert_eq!(s, 200, "{v}");
    // the tally saved before the removal: the vault's own, and it counts 3
    sqlx::query("UPDATE incidents SET tally = ? WHERE incident_id = ?")
        .bind(saved)
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let (s, v) = altered(&vault, id.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");

    // The other incident: an entry's author or kind changed, then the whole incident deleted.
    let other_run = |sql: &'static str| {
        let db = db.clone();
        let other = other.clone();
        async move {
            sqlx::query(sql).bind(other).execute(&db).await.unwrap();
        }
    };
    run("DROP TRIGGER incident_entries_no_update").await;
    other_run("UPDATE incident_entries SET by_principal = 'prn_000000000000000000000000' WHERE incident_id = ?").await;
    let (s, v) = altered(&vault, other.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("author"), "{v}");
    other_run("UPDATE incident_entries SET by_principal = (SELECT opened_by FROM incidents WHERE incident_id = ?1), at = at - 86400000 WHERE incident_id = ?1")
        .await;
    let (s, v) = altered(&vault, other.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("dated"), "{v}");
    other_run("UPDATE incident_entries SET kind = 'note' WHERE incident_id = ?").await;
    let (s, v) = altered(&vault, other.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    run("DROP TRIGGER incidents_no_delete").await;
    other_run("DELETE FROM incident_entries WHERE incident_id = ?").await;
    other_run("DELETE FROM incidents WHERE incident_id = ?").await;
    let (s, v) = altered(&vault, other.clone()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (500, Some("incident_altered")), "{v}");
    // and the register still lists it, as gone
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, register) = admin.get("/v1/incidents").await;
    server.terminate();
    assert_eq!(s, 200, "{register}");
    let listed = register["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["incident_id"] == other.as_str())
        .cloned()
        .unwrap_or_default();
    assert!(
        listed["title"].as_str().unwrap_or_default().contains("gone"),
        "{register}"
    );
    db.close().await;
}

/// An insider with the database, while the server runs, hides the leaked key's reads from the
/// scope: by editing what it selects by (the principal column given to another principal, the
/// subject index's rows deleted), by rewriting the entries whole (text, columns and leaf hash:
/// no key needed for those), by deleting them, or by moving the checkpoints' unsigned times so
/// that the scope's check starts past them. The scope answers from none of these (it would
/// find nobody): it stops the vault as a log that no longer matches its checkpoints does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_over_edited_audit_entries_stops_the_vault_rather_than_finding_nobody() {
    #[derive(Debug, Clone, Copy)]
    enum Edit {
        PrincipalColumn,
        SubjectIndexRows,
        RewrittenWhole,
        Deleted,
        CheckpointTimesMovedBack,
    }
    for edit in [
        Edit::PrincipalColumn,
        Edit::SubjectIndexRows,
        Edit::RewrittenWhole,
        Edit::Deleted,
        Edit::CheckpointTimesMovedBack,
    ] {
        let vault = Vault::init();
        let server = vault.serve();
        let mut admin = server.client(&vault.token).await;
        let (_, warehouse_key) = principal(&mut admin, "warehouse", &["fulfillment_service"]).await;
        let (support_id, support_key) = principal(&mut admin, "desk", &["support_agent"]).await;
        let mut warehouse = server.client(&warehouse_key).await;
        create(
            &mut warehouse,
            "cust-1",
            "order_fulfillment",
            json!({"email": "p1@example.com", "name": "Person One"}),
        )
        .await;
        let from = Timestamp::now();
        past(from).await;
        let mut support = server.client(&support_key).await;
        let (s, v) = support
            .get(&format!("{}?purpose=customer_support", records("cust-1")))
            .await;
        assert_eq!(s, 200, "{v}");
        let to = Timestamp(Timestamp::now().0 + HOUR_MS);
        let (s, opened) = admin
            .post(
                "/v1/incidents",
                json!({"title": "Desk key leaked", "description": "pasted in a chat",
                       "aware_at": Timestamp::now().to_rfc3339()}),
            )
            .await;
        assert_eq!(s, 201, "{opened}");
        let path = format!("/v1/incidents/{}/scope", opened["incident_id"].as_str().unwrap());
        let body = match edit {
            Edit::SubjectIndexRows => json!({"subjects": ["cust-1"]}),
            _ => json!({"principals": [support_id]}),
        };
        let mut body = body;
        body["from"] = json!(from.to_rfc3339());
        body["to"] = json!(to.to_rfc3339());
        let (s, scope) = admin.post(&path, body.clone()).await;
        assert_eq!(
            (s, subjects(&scope)),
            (200, BTreeSet::from(["cust-1".to_owned()])),
            "{scope}"
        );

        let db = crate::audit::attacker(vault.path()).await;
        // (the read indexed by subject and under a checkpoint first, as on a server that ran
        // a while)
        for _ in 0..500 {
            let (indexed, signed): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM audit_subject_index WHERE seq IN \
                 (SELECT seq FROM audit_log WHERE principal = ?1)), \
                 (SELECT COUNT(*) FROM audit_checkpoints WHERE tree_size >= \
                 (SELECT MAX(seq) FROM audit_log WHERE principal = ?1))",
            )
            .bind(&support_id)
            .fetch_one(&db)
            .await
            .unwrap();
            if indexed > 0 && signed > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let run = |sql: &'static str| {
            let (db, id) = (db.clone(), support_id.clone());
            async move { sqlx::query(sql).bind(id).execute(&db).await.unwrap().rows_affected() }
        };
        let changed = match edit {
            Edit::PrincipalColumn => {
                run("UPDATE audit_log SET principal = 'prn_000000000000000000000000' WHERE principal = ?").await
            }
            Edit::SubjectIndexRows => {
                run("DELETE FROM audit_subject_index WHERE seq IN (SELECT seq FROM audit_log WHERE principal = ?)")
                    .await
            }
            Edit::RewrittenWhole => {
                let rows: Vec<(i64, String)> = sqlx::query_as("SELECT seq, entry FROM audit_log WHERE principal = ?")
                    .bind(&support_id)
                    .fetch_all(&db)
                    .await
                    .unwrap();
                for (seq, entry) in &rows {
                    let other = "prn_000000000000000000000000";
                    let text = entry.replace(support_id.as_str(), other);
                    sqlx::query("UPDATE audit_log SET entry = ?, principal = ?, leaf = ? WHERE seq = ?")
                        .bind(&text)
                        .bind(other)
                        .bind(crate::audit::leaf(&text))
                        .bind(seq)
                        .execute(&db)
                        .await
                        .unwrap();
                }
                rows.len() as u64
            }
            Edit::Deleted => run("DELETE FROM audit_log WHERE principal = ?").await,
            Edit::CheckpointTimesMovedBack => {
                sqlx::query("DROP TRIGGER IF EXISTS audit_checkpoints_no_update")
                    .execute(&db)
                    .await
                    .unwrap();
                sqlx::query("UPDATE audit_checkpoints SET at = at - 100000000")
                    .execute(&db)
                    .await
                    .unwrap();
                run("UPDATE audit_log SET at = at - 100000000 WHERE principal = ?").await
            }
        };
        assert!(changed > 0, "{edit:?}");
        db.close().await;
        let (s, v) = admin.raw_unchecked("POST", &path, Some(body)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (503, Some("audit_log_diverged")),
            "{edit:?}: {v}"
        );
        // and the health check says so (it answered ok while every data call was refused)
        let mut anonymous = server.anonymous().await;
        let (s, v) = anonymous.raw_unchecked("GET", "/healthz", None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (503, Some("audit_log_diverged")),
            "{v}"
        );
        server.terminate();
    }
}

/// Responders writing notes on one incident at once each get their note on the timeline: a
/// change that meets another's is decided again on the incident as it now is (17 of 20 were
/// refused with 409 `incident_changed`; review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_written_at_once_all_land() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let aware = Timestamp(Timestamp::now().0 - HOUR_MS).to_rfc3339();
    let (s, opened) = admin
        .post(
            "/v1/incidents",
            json!({"title": "Busy night", "description": "many responders", "aware_at": aware}),
        )
        .await;
    assert_eq!(s, 201, "{opened}");
    let id = opened["incident_id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for n in 0..12 {
        let mut c = server.client(&vault.token).await;
        let path = format!("/v1/incidents/{id}/entries");
        tasks.push(tokio::spawn(async move {
            c.post(&path, json!({"kind": "note", "text": format!("note {n}")}))
                .await
        }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
    }
    let (s, incident) = admin.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(s, 200, "{incident}");
    let notes = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .count();
    assert_eq!(notes, 12, "{incident}");
}
