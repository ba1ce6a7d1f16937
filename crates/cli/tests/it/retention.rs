//! Purpose bindings and retention end to end, with the example registry and a moved clock
//! (`custodia retention run --as-of`, never a sleep): consent withdrawal against a purpose
//! that still holds the value, purpose compatibility on reads and searches, legal holds, the
//! review report against what a run then does, the routes' refusals, and a sweeper killed
//! half-way and run again.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use custodia_core::Timestamp;
use serde_json::{Value, json};

use crate::support::{Client, Vault, custodia};

const DAY_MS: i64 = 86_400_000;

/// An RFC 3339 instant `days` from now.
fn days_ahead(days: i64) -> String {
    Timestamp(Timestamp::now().0 + days * DAY_MS).to_rfc3339()
}

fn records(subject: &str) -> String {
    format!("/v1/subjects/{subject}/records/customers")
}

/// Runs `custodia` with `args` plus the vault's `--data-dir` (and `--database-url`); returns
/// success, standard output and standard error.
fn cli_on(vault: &Vault, args: &[&str]) -> (bool, String, String) {
    let mut cmd = custodia();
    cmd.args(args).arg("--data-dir").arg(vault.path());
    if let Some(url) = &vault.database_url {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `custodia retention run --json` with `extra` options: the sweep report.
fn sweep(vault: &Vault, extra: &[&str]) -> Value {
    let mut args = vec!["retention", "run", "--json"];
    args.extend_from_slice(extra);
    let (ok, out, err) = cli_on(vault, &args);
    assert!(ok, "retention run {extra:?} failed: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A sweep report's counts, without its instant and mode.
fn counts(report: &Value) -> Value {
    let mut r = report.clone();
    let o = r.as_object_mut().unwrap();
    o.remove("as_of");
    o.remove("dry_run");
    r
}

/// `custodia <args> --url <server> --token <token>` (an API command).
fn api_cli(server: &crate::support::Server, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = custodia()
        .args(args)
        .args(["--url", &format!("http://{}", server.addr), "--token", token])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn create(client: &mut Client, subject: &str, purpose: &str, fields: Value) -> String {
    let (s, v) = client
        .post(&records(subject), json!({"purpose": purpose, "fields": fields}))
        .await;
    assert_eq!(s, 201, "create under {purpose}: {v}");
    v["record_id"].as_str().unwrap().to_owned()
}

async fn patch(client: &mut Client, subject: &str, id: &str, purpose: &str, fields: Value) {
    let (s, v) = client
        .call(
            "PATCH",
            &format!("{}/{id}?purpose={purpose}", records(subject)),
            Some(json!({"fields": fields})),
        )
        .await;
    assert_eq!(s, 204, "patch under {purpose}: {v}");
}

async fn consent(client: &mut Client, subject: &str, purpose: &str, granted: bool) {
    let (s, v) = client
        .post(
            &format!("/v1/subjects/{subject}/consents"),
            json!({"purpose": purpose, "granted": granted, "notice_version": "2026-11", "method": "web_form"}),
        )
        .await;
    assert_eq!(s, 201, "consent {purpose} {granted}: {v}");
}

/// The line of a sweep (or report window) for one field, purpose and rule.
fn line<'a>(report: &'a Value, field: &str, purpose: &str) -> Option<&'a Value> {
    report["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["field"] == field && l["purpose"] == purpose)
}

/// The report's held line of one field and purpose.
fn held<'a>(report: &'a Value, field: &str, purpose: &str) -> Option<&'a Value> {
    report["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["field"] == field && l["purpose"] == purpose)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_withdrawal_ends_the_marketing_binding_while_order_fulfillment_keeps_the_email() {
    withdrawal_scenario(Vault::init()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_withdrawal_ends_the_marketing_binding_on_postgres() {
    let Some(url) = crate::support::postgres_url() else {
        eprintln!("skipping: CUSTODIA_TEST_POSTGRES_URL is not set");
        return;
    };
    withdrawal_scenario(Vault::init_with(Some(crate::support::fresh_postgres_database(&url)))).await;
}

async fn withdrawal_scenario(vault: Vault) {
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let newsletter_key = admin.principal("newsletter", &["marketing_service"]).await;
    let prefs_key = admin.principal("preference-centre", &["consent_service"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let mut newsletter = server.client(&newsletter_key).await;
    let mut prefs = server.client(&prefs_key).await;

    // Ann orders, then signs up for the newsletter with the same email: a second binding.
    let order = create(
        &mut warehouse,
        "cust_ann",
        "order_fulfillment",
        json!({"email": "ann@example.com", "name": "Ann Order"}),
    )
    .await;
    consent(&mut prefs, "cust_ann", "marketing_email", true).await;
    patch(
        &mut newsletter,
        "cust_ann",
        &order,
        "marketing_email",
        json!({"email": "ann@example.com"}),
    )
    .await;
    let (s, v) = newsletter
        .get(&format!("{}/{order}?purpose=marketing_email", records("cust_ann")))
        .await;
    assert_eq!(
        (s, v["fields"]["email"].as_str()),
        (200, Some("ann@example.com")),
        "{v}"
    );
    // Max only ever signed up for the newsletter.
    consent(&mut prefs, "cust_max", "marketing_email", true).await;
    let max = create(
        &mut newsletter,
        "cust_max",
        "marketing_email",
        json!({"email": "max@example.com", "name": "Max Mail"}),
    )
    .await;

    // Both withdraw: the marketing reads stop at once.
    consent(&mut prefs, "cust_ann", "marketing_email", false).await;
    consent(&mut prefs, "cust_max", "marketing_email", false).await;
    let (s, v) = newsletter
        .get(&format!("{}/{max}?purpose=marketing_email", records("cust_max")))
        .await;
    assert_eq!(s, 403, "{v}");

    // The review report (through the CLI and the API) before the run.
    let (ok, out, err) = api_cli(&server, &vault.token, &["retention", "report", "--json"]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let email = held(&report, "email", "marketing_email").expect("marketing holds emails");
    assert_eq!(
        (email["values"].as_u64(), email["ended"].as_u64()),
        (Some(2), Some(2)),
        "{report}"
    );
    assert_eq!(email["category"], "user.contact.email");
    assert_eq!(
        held(&report, "email", "order_fulfillment").unwrap()["rule"],
        "2y from last_update"
    );
    let only_ended: Vec<(&str, &str)> = report["held_only_by_ended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["field"].as_str().unwrap(), l["purpose"].as_str().unwrap()))
        .collect();
    assert_eq!(
        only_ended,
        [("email", "marketing_email"), ("name", "marketing_email")],
        "Max's values wait for the sweeper; Ann's email does not: {report}"
    );
    assert!(
        report["fields_without_purpose"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(report["purposes_without_retention"], json!([]), "{report}");
    let window30 = &report["expiring"][0];
    assert_eq!(window30["days"], 30);
    let due30 = &window30["sweep"];
    assert_eq!(
        (
            due30["bindings_ended"].as_u64(),
            due30["values_destroyed"].as_u64(),
            due30["records_destroyed"].as_u64(),
            due30["subjects_removed"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(1)),
        "Ann's and Max's marketing bindings end; Max's values, record and self go: {report}"
    );
    assert_eq!(
        counts(&report["expiring"][1]["sweep"]),
        counts(due30),
        "nothing else ends within 90 days"
    );
    let (ok, text, err) = api_cli(&server, &vault.token, &["retention", "report"]);
    assert!(ok, "{err}");
    for section in [
        "Held, by field (category) and purpose:",
        "customers.email (user.contact.email)  marketing_email  [1d after consent is withdrawn]: 2 values (2 ended",
        "Expiring within 30 days",
        "customers.email  marketing_email  consent withdrawn + 1d: 2 ended, 1 destroyed",
        "Fields no purpose declares",
        "Purposes without a retention rule",
        "Held only by ended bindings",
        "Legal holds in force:",
    ] {
        assert!(text.contains(section), "`{section}` missing from:\n{text}");
    }
    server.terminate();

    // A dry run at the end of each window, the same instant, says the same.
    for window in report["expiring"].as_array().unwrap() {
        let until = window["until"].as_str().unwrap();
        let dry = sweep(&vault, &["--dry-run", "--as-of", until]);
        assert_eq!(dry["as_of"], until);
        assert_eq!(counts(&dry), counts(&window["sweep"]), "{} days", window["days"]);
    }

    // Within the grace period (a day) nothing of it is due.
    let early = sweep(
        &vault,
        &[
            "--dry-run",
            "--as-of",
            &Timestamp(Timestamp::now().0 + DAY_MS / 2).to_rfc3339(),
        ],
    );
    assert_eq!(early["bindings_ended"], 0, "{early}");
    assert_eq!(early["dry_run"], true);

    // 31 days on (the 30-day window's end and a day), the readable summary says what goes;
    // then the run does exactly that.
    let as_of = days_ahead(31);
    let (ok, text, err) = cli_on(&vault, &["retention", "run", "--dry-run", "--as-of", &as_of]);
    assert!(ok, "{err}");
    assert!(text.starts_with("dry run (nothing destroyed): sweep as of"), "{text}");
    assert!(
        text.contains("3 bindings ended; 2 values destroyed; 1 record destroyed; 1 subject removed"),
        "{text}"
    );
    assert!(
        text.contains("customers.email  marketing_email  consent withdrawn + 1d: 2 ended, 1 destroyed"),
        "{text}"
    );
    let run = sweep(&vault, &["--as-of", &as_of]);
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["complete"], true);
    assert_eq!(
        counts(&run),
        counts(due30),
        "the report listed exactly what the run did"
    );
    let l = line(&run, "email", "marketing_email").unwrap();
    assert_eq!(l["rule"], "consent withdrawn + 1d");
    assert_eq!(
        (l["bindings_ended"].as_u64(), l["values_destroyed"].as_u64()),
        (Some(2), Some(1)),
        "both marketing bindings end, only Max's email goes: {run}"
    );
    assert!(line(&run, "email", "order_fulfillment").is_none(), "{run}");
    // A second run finds nothing more.
    let again = sweep(&vault, &["--as-of", &as_of]);
    assert_eq!(again["bindings_ended"], 0, "{again}");

    // After a restart, Ann's email is still there for her order; Max is gone.
    let server = vault.serve();
    let mut warehouse = server.client(&warehouse_key).await;
    let mut admin = server.client(&vault.token).await;
    let (s, v) = warehouse
        .get(&format!("{}/{order}?purpose=order_fulfillment", records("cust_ann")))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fields"]["email"], "ann@example.com", "{v}");
    assert_eq!(v["fields"]["name"], "Ann Order", "{v}");
    let (s, v) = admin
        .get(&format!("{}/{max}?purpose=order_fulfillment", records("cust_max")))
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = admin.get("/v1/retention/report").await;
    assert_eq!(s, 200, "{v}");
    assert!(
        held(&v, "email", "marketing_email").is_none(),
        "the marketing binding is gone: {v}"
    );
    assert_eq!(held(&v, "email", "order_fulfillment").unwrap()["values"], 1, "{v}");
    assert_eq!(v["held_only_by_ended"], json!([]), "{v}");

    // Each destruction is audited with its rule, dated when it happened (not at --as-of).
    let (s, v) = admin.get("/v1/audit/events?action=retention.expire").await;
    assert_eq!(s, 200, "{v}");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "one entry per subject, purpose and rule: {v}");
    let now = Timestamp::now().0;
    for e in events {
        let entry = &e["entry"];
        assert_eq!(entry["principal"], custodia_core::SWEEPER_PRINCIPAL, "{entry}");
        assert_eq!(entry["purpose"], "marketing_email", "{entry}");
        assert_eq!(entry["detail"]["rule"], "consent withdrawn + 1d", "{entry}");
        assert_eq!(entry["detail"]["as_of"], as_of.as_str(), "{entry}");
        assert!(entry["at"].as_i64().unwrap() <= now, "{entry}");
        assert!(!entry.to_string().contains("example.com"), "{entry}");
    }
    let (s, v) = admin.get("/v1/audit/events?action=retention.subject_removed").await;
    assert_eq!((s, v["events"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    server.terminate();
    let (ok, out, err) = cli_on(&vault, &["audit", "verify", "--public-key", &vault.audit_key]);
    assert!(ok, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_collected_for_orders_is_not_readable_or_searchable_under_analytics() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let analyst_key = admin.principal("analyst", &["data_science"]).await;
    let agent_key = admin.principal("agent", &["support_agent"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let mut analyst = server.client(&analyst_key).await;
    let mut agent = server.client(&agent_key).await;

    let order = create(
        &mut warehouse,
        "cust_bea",
        "order_fulfillment",
        json!({"email": "bea@example.com", "name": "Bea Buyer"}),
    )
    .await;
    // Bea allows analytics; another customer gives an email for analytics itself.
    consent(&mut admin, "cust_bea", "analytics", true).await;
    consent(&mut admin, "cust_cal", "analytics", true).await;
    create(&mut admin, "cust_cal", "analytics", json!({"email": "cal@example.com"})).await;

    // Under analytics Bea's order record is not shown at all, nor its email.
    let (s, v) = analyst.get(&format!("{}?purpose=analytics", records("cust_bea"))).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = analyst
        .get(&format!("{}/{order}?purpose=analytics", records("cust_bea")))
        .await;
    assert!(s == 404 || (s == 200 && v["fields"].get("email").is_none()), "{s} {v}");
    let (s, v) = admin
        .get(&format!("{}/{order}?purpose=analytics", records("cust_bea")))
        .await;
    assert!(s == 404 || (s == 200 && v["fields"].get("email").is_none()), "{s} {v}");
    // ... and a search under analytics does not find it, while one under its purpose does.
    let search = |purpose: &str, value: &str| json!({"collection": "customers", "field": "email", "value": value, "purpose": purpose});
    let (s, v) = admin.post("/v1/search", search("analytics", "bea@example.com")).await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = admin
        .post("/v1/search", search("order_fulfillment", "bea@example.com"))
        .await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let (s, v) = admin.post("/v1/search", search("analytics", "cal@example.com")).await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    // What was collected for analytics is readable under it (as the role's tokens).
    let (s, v) = analyst.get(&format!("{}?purpose=analytics", records("cust_cal"))).await;
    assert_eq!(s, 200, "{v}");
    let shown = v["records"][0]["fields"]["email"].as_str().unwrap();
    assert_ne!(shown, "cal@example.com", "the analyst sees a token: {v}");

    // Customer support is declared compatible with order fulfillment: the agent reads it.
    let (s, v) = agent
        .get(&format!("{}/{order}?purpose=customer_support", records("cust_bea")))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fields"]["email"], "bea@example.com", "{v}");
    assert_eq!(v["fields"]["name"], "Bea Buyer", "{v}");
    // Marketing is not (and Bea gave no consent to it): nothing there either.
    let (s, v) = admin
        .get(&format!("{}?purpose=customer_support", records("cust_cal")))
        .await;
    assert_eq!(
        (s, v["records"].as_array().map(Vec::len)),
        (200, Some(0)),
        "analytics data is not support's: {v}"
    );
}

/// Whoever can write the database binds Bea's email, collected to deliver her order, to
/// analytics (which she allowed): a binding inserted by hand, without a seal or with the seal
/// of her order's binding copied in, opens it to no read and no search under analytics; the
/// order's own binding, its renewal moved by hand to keep the value longer, stops opening it
/// too. The upgrade's mark set again by hand does not have the forged rows sealed: the start
/// is refused; only the operator's word (`serve --seal-access`) takes them as they are, and
/// the audit log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_written_into_the_database_by_hand_opens_nothing() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let analyst_key = admin.principal("analyst", &["data_science"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let mut analyst = server.client(&analyst_key).await;
    let order = create(
        &mut warehouse,
        "cust_bea",
        "order_fulfillment",
        json!({"email": "bea@example.com", "name": "Bea Buyer"}),
    )
    .await;
    consent(&mut admin, "cust_bea", "analytics", true).await;
    let search = |purpose: &str| json!({"collection": "customers", "field": "email", "value": "bea@example.com", "purpose": purpose});
    let under_analytics = format!("{}?purpose=analytics", records("cust_bea"));
    let (s, v) = analyst.get(&under_analytics).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");

    crate::tamper::sql(
        vault.path(),
        &[
            "INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at, seal) \
             SELECT record_id, field, 'analytics', subject_id, collection, bound_at, renewed_at, seal \
             FROM field_bindings WHERE subject_id = 'cust_bea' AND field = 'email'",
            "INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at) \
             SELECT record_id, field, 'marketing_email', subject_id, collection, bound_at, renewed_at \
             FROM field_bindings WHERE subject_id = 'cust_bea' AND field = 'email' AND purpose = 'order_fulfillment'",
        ],
    )
    .await;
    consent(&mut admin, "cust_bea", "marketing_email", true).await;
    for purpose in ["analytics", "marketing_email"] {
        let (s, v) = admin
            .get(&format!("{}/{order}?purpose={purpose}", records("cust_bea")))
            .await;
        assert!(
            s == 404 || (s == 200 && v["fields"].get("email").is_none()),
            "{purpose}: {s} {v}"
        );
        let (s, v) = admin.post("/v1/search", search(purpose)).await;
        assert_eq!(
            (s, v["matches"].as_array().map(Vec::len)),
            (200, Some(0)),
            "{purpose}: {v}"
        );
    }
    let (s, v) = analyst.get(&under_analytics).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    // the value's own binding still opens it under its purpose, by a read and by a search
    let (s, v) = warehouse
        .get(&format!("{}/{order}?purpose=order_fulfillment", records("cust_bea")))
        .await;
    assert_eq!(
        (s, v["fields"]["email"].as_str()),
        (200, Some("bea@example.com")),
        "{v}"
    );
    let (s, v) = admin.post("/v1/search", search("order_fulfillment")).await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(1)), "{v}");

    // its renewal moved a year on by hand (to outlive the two-year rule): it opens nothing
    crate::tamper::sql(
        vault.path(),
        &["UPDATE field_bindings SET renewed_at = renewed_at + 31536000000 \
           WHERE subject_id = 'cust_bea' AND field = 'email' AND purpose = 'order_fulfillment'"],
    )
    .await;
    let (s, v) = warehouse
        .get(&format!("{}/{order}?purpose=order_fulfillment", records("cust_bea")))
        .await;
    assert!(s == 404 || (s == 200 && v["fields"].get("email").is_none()), "{s} {v}");
    assert_eq!(v["fields"]["name"], "Bea Buyer", "the name's binding is untouched: {v}");

    server.terminate();
    crate::tamper::sql(
        vault.path(),
        &["UPDATE meta SET value = X'01' WHERE key = 'binding_seals_pending'"],
    )
    .await;
    let printed = match crate::support::Server::try_start(vault.path(), None, &[]) {
        Ok(_) => panic!("started on bindings without seals and the mark set by hand"),
        Err(printed) => printed,
    };
    assert!(printed.contains("--seal-access"), "{printed}");
    let server = crate::support::Server::try_start(vault.path(), None, &["--seal-access"]).unwrap();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin.get("/v1/audit/events?action=binding.seal").await;
    assert_eq!((s, v["events"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    assert!(!v.to_string().contains("example.com"), "{v}");
}

/// A withdrawal of consent ends analytics' hold on what was collected for it; consent given
/// again does not bring that back. The binding's stored end and expiry (which the sweeper
/// rewrites in bulk, unsealed) cleared by hand do not either: a read judges by the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_cleared_by_hand_from_a_binding_still_holds() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let analyst_key = admin.principal("analyst", &["data_science"]).await;
    let mut analyst = server.client(&analyst_key).await;
    consent(&mut admin, "cust_q1", "analytics", true).await;
    create(&mut admin, "cust_q1", "analytics", json!({"birth_date": "1990-02-02"})).await;
    let path = format!("{}?purpose=analytics", records("cust_q1"));
    let (s, v) = analyst.get(&path).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    consent(&mut admin, "cust_q1", "analytics", false).await;
    consent(&mut admin, "cust_q1", "analytics", true).await;
    let (s, v) = analyst.get(&path).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    crate::tamper::sql(
        vault.path(),
        &["UPDATE field_bindings SET ended_at = NULL, expires_at = NULL WHERE subject_id = 'cust_q1'"],
    )
    .await;
    let (s, v) = analyst.get(&path).await;
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_subject_is_kept_five_years_on_and_tax_records_last_ten_years() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let books_key = admin.principal("books", &["accounting"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let mut books = server.client(&books_key).await;

    let mut ids = Vec::new();
    for (subject, name) in [("cust_held", "Hal Held"), ("cust_free", "Fay Free")] {
        let email = format!("{subject}@example.com");
        let id = create(
            &mut warehouse,
            subject,
            "order_fulfillment",
            json!({"email": email, "name": name, "shipping_address": "1 Ledger Row"}),
        )
        .await;
        // The sale's record for tax law: the same values, now also held for ten years.
        patch(
            &mut books,
            subject,
            &id,
            "tax_records",
            json!({"name": name, "shipping_address": "1 Ledger Row"}),
        )
        .await;
        ids.push(id);
    }
    let (ok, out, err) = api_cli(
        &server,
        &vault.token,
        &[
            "retention",
            "hold",
            "--subject",
            "cust_held",
            "--reason",
            "litigation 2026-17",
            "--json",
        ],
    );
    assert!(ok, "{out}{err}");
    let hold: Value = serde_json::from_str(&out).unwrap();
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    assert_eq!(hold["subject_id"], "cust_held");
    let (ok, out, _) = api_cli(&server, &vault.token, &["retention", "holds"]);
    assert!(
        ok && out.contains(&hold_id) && out.contains("subject cust_held"),
        "{out}"
    );

    let (s, report) = admin.get("/v1/retention/report").await;
    assert_eq!(s, 200, "{report}");
    for (field, purpose) in [
        ("email", "order_fulfillment"),
        ("name", "order_fulfillment"),
        ("name", "tax_records"),
        ("shipping_address", "order_fulfillment"),
        ("shipping_address", "tax_records"),
    ] {
        let l = held(&report, field, purpose).unwrap_or_else(|| panic!("no {field} {purpose}: {report}"));
        assert_eq!(l["values"], 2, "{field} {purpose}: {report}");
    }
    assert_eq!(
        held(&report, "name", "tax_records").unwrap()["rule"],
        "10y from collection"
    );
    assert_eq!(report["holds"][0]["hold_id"], hold_id.as_str());
    server.terminate();

    // Five years on: the free subject's order bindings end (its email with them), its tax
    // record stays; the held subject loses nothing. A dry run said exactly that.
    let five = days_ahead(5 * 366);
    let dry = sweep(&vault, &["--dry-run", "--as-of", &five]);
    let run = sweep(&vault, &["--as-of", &five]);
    assert_eq!(counts(&dry), counts(&run), "dry {dry}\nrun {run}");
    assert_eq!(
        (
            run["bindings_ended"].as_u64(),
            run["values_destroyed"].as_u64(),
            run["records_destroyed"].as_u64(),
            run["subjects_removed"].as_u64(),
            run["kept_by_hold"].as_u64()
        ),
        (Some(3), Some(1), Some(0), Some(0), Some(3)),
        "{run}"
    );
    for field in ["email", "name", "shipping_address"] {
        let l = line(&run, field, "order_fulfillment").unwrap();
        assert_eq!(l["rule"], "2y from last_update", "{l}");
    }
    assert!(line(&run, "name", "tax_records").is_none(), "{run}");

    let server = vault.serve();
    let mut warehouse = server.client(&warehouse_key).await;
    let mut books = server.client(&books_key).await;
    let mut admin = server.client(&vault.token).await;
    let free = format!("{}/{}", records("cust_free"), ids[1]);
    let (s, v) = warehouse.get(&format!("{free}?purpose=order_fulfillment")).await;
    assert_eq!(s, 404, "the order data is gone: {v}");
    let (s, v) = books.get(&format!("{free}?purpose=tax_records")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["fields"],
        json!({"name": "Fay Free", "shipping_address": "1 Ledger Row"}),
        "the tax record keeps its fields: {v}"
    );
    let (s, v) = admin
        .post(
            "/v1/search",
            json!({"collection": "customers", "field": "email", "value": "cust_free@example.com", "purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!((s, v["matches"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let (s, v) = warehouse
        .get(&format!(
            "{}/{}?purpose=order_fulfillment",
            records("cust_held"),
            ids[0]
        ))
        .await;
    assert_eq!(
        (s, v["fields"]["email"].as_str()),
        (200, Some("cust_held@example.com")),
        "{v}"
    );
    server.terminate();

    // Eleven years on the tax record goes too, and with it the free subject; the hold keeps
    // everything of the other.
    let eleven = days_ahead(11 * 366);
    let run = sweep(&vault, &["--as-of", &eleven]);
    assert_eq!(
        (
            run["bindings_ended"].as_u64(),
            run["values_destroyed"].as_u64(),
            run["records_destroyed"].as_u64(),
            run["subjects_removed"].as_u64(),
            run["kept_by_hold"].as_u64()
        ),
        (Some(2), Some(2), Some(1), Some(1), Some(5)),
        "{run}"
    );
    assert_eq!(
        line(&run, "name", "tax_records").unwrap()["rule"],
        "10y from collection"
    );

    // Released, the held subject is swept as the rules say.
    let server = vault.serve();
    let mut books = server.client(&books_key).await;
    let (s, v) = books.get(&format!("{free}?purpose=tax_records")).await;
    assert_eq!(s, 404, "{v}");
    let (ok, out, err) = api_cli(
        &server,
        &vault.token,
        &["retention", "release", &hold_id, "--reason", "case closed"],
    );
    assert!(ok && out.contains("released"), "{out}{err}");
    let (ok, out, _) = api_cli(&server, &vault.token, &["retention", "holds"]);
    assert!(ok && out.contains("no legal holds in force"), "{out}");
    let (ok, out, _) = api_cli(&server, &vault.token, &["retention", "holds", "--all", "--json"]);
    let all: Value = serde_json::from_str(&out).unwrap();
    assert!(ok && all["holds"][0]["release_reason"] == "case closed", "{out}");
    server.terminate();
    let run = sweep(&vault, &["--as-of", &eleven]);
    assert_eq!(
        (
            run["bindings_ended"].as_u64(),
            run["values_destroyed"].as_u64(),
            run["records_destroyed"].as_u64(),
            run["subjects_removed"].as_u64(),
            run["kept_by_hold"].as_u64()
        ),
        (Some(5), Some(3), Some(1), Some(1), Some(0)),
        "{run}"
    );
    // Removed by the sweeper, the subject is forgotten on its released hold as an erasure
    // forgets it: its id and the texts written about it.
    let server = vault.serve();
    let (ok, out, _) = api_cli(&server, &vault.token, &["retention", "holds", "--all", "--json"]);
    let all: Value = serde_json::from_str(&out).unwrap();
    let hold = all["holds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hold_id"] == hold_id.as_str())
        .unwrap();
    assert!(ok && hold["subject_id"].is_null(), "{out}");
    assert_eq!(hold["release_reason"], "(cleared when the subject was erased)", "{out}");
    server.terminate();

    // A bad --as-of is refused, naming the option.
    let (ok, _, err) = cli_on(&vault, &["retention", "run", "--as-of", "next tuesday"]);
    assert!(!ok && err.contains("--as-of"), "{err}");
    let (ok, _, err) = cli_on(&vault, &["retention", "run", "--batch", "0"]);
    assert!(!ok && err.contains("--batch"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_routes_refuse_weak_roles_bad_bodies_and_destruction_under_a_hold() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let warehouse_key = admin.principal("warehouse", &["fulfillment_service"]).await;
    let mut warehouse = server.client(&warehouse_key).await;
    let order = create(
        &mut warehouse,
        "cust_dee",
        "order_fulfillment",
        json!({"email": "dee@example.com", "name": "Dee"}),
    )
    .await;
    let other = create(
        &mut warehouse,
        "cust_eve",
        "order_fulfillment",
        json!({"email": "eve@example.com"}),
    )
    .await;
    let (s, hold) = admin
        .post(
            "/v1/retention/holds",
            json!({"subject_id": "cust_dee", "reason": "case 9"}),
        )
        .await;
    assert_eq!(s, 201, "{hold}");
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    assert!(hold_id.starts_with("hold_") && hold_id.len() == 37, "{hold}");

    // The weakest roles may touch none of it.
    for (role, own_purpose) in [
        ("support_agent", "customer_support"),
        ("data_science", "analytics"),
        ("consent_service", "marketing_email"),
    ] {
        let key = admin.principal(&format!("weak-{role}"), &[role]).await;
        let mut weak = server.client(&key).await;
        for (method, path, body) in [
            (
                "POST",
                "/v1/retention/holds".to_owned(),
                Some(json!({"subject_id": "cust_dee", "reason": "x"})),
            ),
            (
                "POST",
                "/v1/retention/holds".to_owned(),
                Some(json!({"collection": "customers", "reason": "x"})),
            ),
            ("GET", "/v1/retention/holds".to_owned(), None),
            ("GET", "/v1/retention/holds?all=true".to_owned(), None),
            (
                "POST",
                format!("/v1/retention/holds/{hold_id}/release"),
                Some(json!({"reason": "x"})),
            ),
            ("GET", "/v1/retention/report".to_owned(), None),
            (
                "POST",
                "/v1/subjects/cust_dee/activity".to_owned(),
                Some(json!({"purpose": own_purpose})),
            ),
            (
                "POST",
                "/v1/subjects/cust_dee/activity".to_owned(),
                Some(json!({"purpose": "order_fulfillment"})),
            ),
        ] {
            let (s, v) = weak.call(method, &path, body).await;
            assert_eq!(s, 403, "{role}: {method} {path}: {v}");
            assert!(!v.to_string().contains("dee@example.com"), "{v}");
        }
        // under its own purpose, which it may read and not write: the refusal says so
        let (s, v) = weak
            .post("/v1/subjects/cust_dee/activity", json!({"purpose": own_purpose}))
            .await;
        if role != "consent_service" {
            assert_eq!(
                (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
                (403, Some("purpose_write_denied"), None),
                "{role}: {v}"
            );
        }
    }
    let (s, v) = admin
        .get("/v1/audit/events?action=retention.report&decision=deny")
        .await;
    assert_eq!(
        (s, v["events"].as_array().map(Vec::len)),
        (200, Some(3)),
        "refusals are audited: {v}"
    );
    let (s, v) = admin.get("/v1/retention/holds").await;
    assert_eq!((s, v["holds"].as_array().map(Vec::len)), (200, Some(1)), "{v}");

    // Activity: the writer of a purpose may report it; not under a purpose it cannot write.
    let (s, v) = warehouse
        .post(
            "/v1/subjects/cust_dee/activity",
            json!({"purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (ok, out, err) = api_cli(
        &server,
        &warehouse_key,
        &["activity", "cust_dee", "--purpose", "order_fulfillment"],
    );
    assert!(ok && out.contains("activity recorded"), "{out}{err}");
    let (ok, _, err) = api_cli(
        &server,
        &warehouse_key,
        &["retention", "activity", "cust_dee", "--purpose", "marketing_email"],
    );
    assert!(!ok && err.contains("403"), "{err}");
    for (body, status, code) in [
        (json!({"purpose": "marketing_email"}), 403, None),
        (json!({"purpose": "no_such_purpose"}), 403, None),
        (json!({"purpose": ""}), 400, Some("missing_purpose")),
        (json!({}), 400, Some("invalid_json")),
        (
            json!({"purpose": "order_fulfillment", "when": "now"}),
            400,
            Some("invalid_json"),
        ),
    ] {
        let (s, v) = warehouse.post("/v1/subjects/cust_dee/activity", body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
        if let Some(code) = code {
            assert_eq!(v["error"]["code"], code, "{v}");
        }
    }
    let (s, v) = warehouse
        .post(
            "/v1/subjects/not%20an%20id/activity",
            json!({"purpose": "order_fulfillment"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let mut anonymous = server.anonymous().await;
    let (s, _) = anonymous.get("/v1/retention/report").await;
    assert_eq!(s, 401);

    // Bad bodies: 4xx in the JSON error shape, naming the field.
    let long = "r".repeat(1001);
    for (body, status, code, names) in [
        (
            json!({"subject_id": "cust_dee", "collection": "customers", "reason": "x"}),
            422,
            "invalid_hold",
            "subject_id",
        ),
        (json!({"reason": "x"}), 422, "invalid_hold", "collection"),
        (
            json!({"collection": "nope", "reason": "x"}),
            422,
            "unknown_collection",
            "collection",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": ""}),
            422,
            "invalid_text",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": "  \t "}),
            422,
            "invalid_text",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": long}),
            422,
            "invalid_text",
            "reason",
        ),
        (json!({"subject_id": "cust_dee"}), 400, "invalid_json", "reason"),
        // The reason is kept in the clear: it must name no one.
        (
            json!({"subject_id": "cust_dee", "reason": "claim by Dee Dawson, dee.dawson@example.com"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        // Nor written to slip past the scanner: two spaces, a middle dot, full-width signs,
        // spelled out, a Cyrillic letter among Latin ones.
        (
            json!({"subject_id": "cust_dee", "reason": "Dee  Dawson"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": "Dee·Dawson"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": "dee.dawson＠example．com"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": "dee dot dawson at example dot com"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        (
            json!({"subject_id": "cust_dee", "reason": "D\u{435}e Dawson"}),
            422,
            "text_has_personal_data",
            "reason",
        ),
        (
            json!({"subject_id": "a b", "reason": "x"}),
            400,
            "invalid_subject_id",
            "subject_id",
        ),
        (
            json!({"subject": "cust_dee", "reason": "x"}),
            400,
            "invalid_json",
            "subject",
        ),
    ] {
        let (s, v) = admin.post("/v1/retention/holds", body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
        assert!(!v.to_string().contains("dawson"), "the error echoes no text: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            v["error"]["code"] == code || (code == "invalid_subject_id" && v["error"]["field"] == "subject_id"),
            "{body}: {v}"
        );
        assert!(
            message.contains(names) || v["error"]["field"] == names,
            "{body}: the error names `{names}`: {v}"
        );
        assert!(!message.contains("rrrrrrrrrr"), "no echo: {v}");
    }
    let (s, v) = admin.get("/v1/retention/holds?all=maybe").await;
    assert_eq!(s, 400, "{v}");
    let release = |id: &str| format!("/v1/retention/holds/{id}/release");
    let (s, v) = admin
        .post(
            &release("hold_00000000000000000000000000000000"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("hold_not_found")), "{v}");
    let (s, v) = admin.post(&release("not-a-hold"), json!({"reason": "x"})).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = admin.post(&release(&hold_id), json!({"reason": ""})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("reason")), "{v}");
    let (s, v) = admin.post(&release(&hold_id), json!({})).await;
    assert_eq!(s, 400, "{v}");

    // Under the hold, neither a delete nor an erasure destroys the subject.
    let (s, v) = admin
        .call(
            "DELETE",
            &format!("{}/{order}?purpose=order_fulfillment", records("cust_dee")),
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("legal_hold")), "{v}");
    let (s, request) = admin
        .post(
            "/v1/requests",
            json!({"subject_id": "cust_dee", "type": "erasure", "jurisdiction": "gdpr", "verified_by": "passport"}),
        )
        .await;
    assert_eq!(s, 201, "{request}");
    let request_id = request["request_id"].as_str().unwrap();
    let (s, v) = admin
        .post(&format!("/v1/requests/{request_id}/fulfil"), json!({}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("legal_hold")), "{v}");
    let (s, v) = admin
        .get(&format!("{}/{order}?purpose=order_fulfillment", records("cust_dee")))
        .await;
    assert_eq!(
        (s, v["fields"]["email"].as_str()),
        (200, Some("dee@example.com")),
        "{v}"
    );
    // A hold on the collection covers every subject in it.
    let (s, coll) = admin
        .post(
            "/v1/retention/holds",
            json!({"collection": "customers", "reason": "audit 2026"}),
        )
        .await;
    assert_eq!(s, 201, "{coll}");
    let (s, v) = admin
        .call(
            "DELETE",
            &format!("{}/{other}?purpose=order_fulfillment", records("cust_eve")),
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("legal_hold")), "{v}");
    // An erasure the collection's hold stopped (in its first step) leaves the request open to
    // its other steps: it may be extended (or denied) at once, not refused as being fulfilled.
    let (s, eve) = admin
        .post(
            "/v1/requests",
            json!({"subject_id": "cust_eve", "type": "erasure", "jurisdiction": "gdpr", "verified_by": "passport"}),
        )
        .await;
    assert_eq!(s, 201, "{eve}");
    let eve = eve["request_id"].as_str().unwrap();
    let (s, v) = admin.post(&format!("/v1/requests/{eve}/fulfil"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("legal_hold")), "{v}");
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{eve}/extend"),
            json!({"reason": "records under a tax audit"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Released (once: a second release finds no hold in force), the erasure goes ahead.
    for id in [hold_id.as_str(), coll["hold_id"].as_str().unwrap()] {
        let (s, v) = admin.post(&release(id), json!({"reason": "done"})).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["released_at"].is_string() && v["released_by"].is_string(), "{v}");
        let (s, v) = admin.post(&release(id), json!({"reason": "done"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("hold_not_found")), "{v}");
    }
    let (s, v) = admin
        .post(&format!("/v1/requests/{request_id}/fulfil"), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin
        .call(
            "DELETE",
            &format!("{}/{other}?purpose=order_fulfillment", records("cust_eve")),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = admin.get("/v1/retention/holds?all=true").await;
    assert_eq!((s, v["holds"].as_array().map(Vec::len)), (200, Some(2)), "{v}");
    let (s, v) = admin.get("/v1/audit/events?action=retention.release").await;
    assert_eq!(s, 200, "{v}");
    assert!(v["events"].as_array().unwrap().len() >= 2, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeper_killed_half_way_finishes_on_the_next_run() {
    const SUBJECTS: usize = 30;
    const PER_SUBJECT: usize = 100;
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    // 3000 order records (6000 bindings due in three years), written by four clients.
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = server.client(&vault.token).await;
        writers.push(tokio::spawn(async move {
            for s in (w..SUBJECTS).step_by(4) {
                for r in 0..PER_SUBJECT {
                    create(
                        &mut client,
                        &format!("cust_bulk{s}"),
                        "order_fulfillment",
                        json!({"email": format!("b{s}.{r}@example.com"), "name": format!("Bulk {s} {r}")}),
                    )
                    .await;
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    // And what is not due then: ten years of tax records.
    for r in 0..20 {
        create(
            &mut admin,
            "cust_taxed",
            "tax_records",
            json!({"name": format!("Tax {r}"), "shipping_address": "2 Keep Street"}),
        )
        .await;
    }
    server.terminate();

    let as_of = days_ahead(3 * 366);
    let pending = sweep(&vault, &["--dry-run", "--as-of", &as_of]);
    assert_eq!(
        pending["bindings_ended"],
        6000,
        "{}",
        counts(&pending)["bindings_ended"]
    );

    // The first run is killed once its progress shows batches done.
    let mut cmd = custodia();
    cmd.args(["retention", "run", "--batch", "50", "--as-of", &as_of, "--data-dir"])
        .arg(vault.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = loop {
        let line = lines.next().expect("the run printed no progress").unwrap();
        if line.starts_with("sweeping: ") {
            break line;
        }
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed, not finished ({first})");
    assert!(first.ends_with(" of 6000 due bindings judged"), "{first}");

    let left = sweep(&vault, &["--dry-run", "--as-of", &as_of]);
    let left_n = left["bindings_ended"].as_u64().unwrap();
    assert!(
        left_n > 0 && left_n < 6000,
        "killed half-way: {left_n} bindings still due"
    );

    // The next run carries on and finishes; nothing is left due, nothing else went.
    let out = custodia()
        .args([
            "retention",
            "run",
            "--batch",
            "50",
            "--json",
            "--as-of",
            &as_of,
            "--data-dir",
        ])
        .arg(vault.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("sweeping: {left_n} of {left_n} due bindings judged")),
        "{stderr}"
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["complete"], true);
    assert_eq!(run["bindings_ended"].as_u64(), Some(left_n), "{run}");
    let after = sweep(&vault, &["--dry-run", "--as-of", &as_of]);
    assert_eq!(after["bindings_ended"], 0, "{after}");
    let later = sweep(&vault, &["--dry-run", "--as-of", &days_ahead(9 * 366)]);
    assert_eq!(
        later["bindings_ended"], 0,
        "the tax records are not due for years: {later}"
    );

    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        vault.path().join("custodia.db").display()
    ))
    .await
    .unwrap();
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(records, 20, "only the tax records are left");
    let subjects: Vec<String> = sqlx::query_scalar("SELECT DISTINCT subject_id FROM subject_keys")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(subjects, ["cust_taxed"], "the swept subjects' keys went with them");
    db.close().await;

    // The audit log verifies, and its entries account for every binding exactly once.
    let (ok, out, err) = cli_on(&vault, &["audit", "verify", "--public-key", &vault.audit_key]);
    assert!(ok, "{out}{err}");
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (mut after_seq, mut ended, mut entries) = (0i64, 0u64, 0usize);
    loop {
        let (s, v) = admin
            .get(&format!(
                "/v1/audit/events?action=retention.expire&limit=1000&after={after_seq}"
            ))
            .await;
        assert_eq!(s, 200, "{v}");
        for e in v["events"].as_array().unwrap() {
            assert_eq!(e["entry"]["detail"]["rule"], "2y from last_update", "{e}");
            ended += e["entry"]["detail"]["bindings_ended"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
            entries += 1;
        }
        match v["next_after"].as_i64() {
            Some(n) => after_seq = n,
            None => break,
        }
    }
    assert_eq!(ended, 6000, "every ended binding is audited once ({entries} entries)");
    let (s, v) = admin
        .get("/v1/audit/events?action=retention.subject_removed&limit=1000")
        .await;
    assert_eq!((s, v["events"].as_array().map(Vec::len)), (200, Some(SUBJECTS)), "{v}");
}

/// One sweep at a time over a PostgreSQL database: `retention run` while a server node (here
/// the test, holding the job's leadership) sweeps says so and leaves the database alone; once
/// it is done, the run goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_while_another_runs_is_refused_plainly() {
    let Some(url) = crate::support::postgres_url() else {
        eprintln!("skipping: CUSTODIA_TEST_POSTGRES_URL is not set");
        return;
    };
    let vault = Vault::init_with(Some(crate::support::fresh_postgres_database(&url)));
    let store = custodia_store::Store::open(vault.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = tokio::spawn(async move {
        store
            .exclusively("retention-sweep", async move {
                let _ = started_tx.send(());
                let _ = done_rx.await;
            })
            .await
            .unwrap()
    });
    started_rx.await.unwrap();
    let cli = {
        let path = vault.path().to_owned();
        let url = vault.database_url.clone().unwrap();
        tokio::task::spawn_blocking(move || {
            custodia()
                .args(["retention", "run", "--data-dir"])
                .arg(path)
                .args(["--database-url", &url])
                .output()
                .unwrap()
        })
    };
    let out = cli.await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is sweeping this database now"), "{err}");
    let _ = done_tx.send(());
    assert!(leader.await.unwrap().is_some());
    sweep(&vault, &[]);
}
