//! The privacy notice, the record of processing and the preference center end to end: every
//! element the law asks for on the served pages, the same version from the server and the
//! CLI, who may read the record, who may make links, and what a customer holding a link
//! can and cannot do (forged, expired, cross-site and replayed-form attempts included).

use serde_json::{Value, json};

use crate::support::{Client, Server, Vault, custodia, files_under};

const SUBJECT: &str = "cust-7f3a";

fn records(subject: &str) -> String {
    format!("/v1/subjects/{subject}/records/customers")
}

/// A vault with one customer record and marketing consent given through the API; the
/// server and an admin client.
async fn shop() -> (Vault, Server, Client) {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin
        .post(
            &records(SUBJECT),
            json!({"purpose": "order_fulfillment", "fields": {"email": "ann@example.com", "name": "Ann Example"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/consents"),
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1", "method": "api"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    (vault, server, admin)
}

/// A preference center link's path (`/portal/...`) for `subject`.
async fn link(admin: &mut Client, subject: &str, body: Value) -> String {
    let (s, v) = admin.post(&format!("/v1/subjects/{subject}/portal-links"), body).await;
    assert_eq!(s, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'), "{v}");
    let path = &url[url.find("/portal/").unwrap()..];
    path.to_owned()
}

/// The value of hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// Posts a form to the page at `path` (the same origin, as a browser would).
async fn post_form(
    client: &mut Client,
    path: &str,
    form: &str,
    extra: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, String) {
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("sec-fetch-site", "same-origin"),
    ];
    headers.extend_from_slice(extra);
    client.page("POST", path, Some(form), &headers).await
}

/// The subject's ledger history.
async fn history(admin: &mut Client, subject: &str) -> Vec<Value> {
    let (s, v) = admin.get(&format!("/v1/subjects/{subject}/consents")).await;
    assert_eq!(s, 200, "{v}");
    v["history"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_notice_says_what_the_law_asks_and_the_cli_agrees_with_the_server() {
    let (vault, server, _admin) = shop().await;
    let mut anon = server.anonymous().await;
    let (s, headers, html) = anon.page("GET", "/privacy-notice", None, &[]).await;
    assert_eq!(s, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!html.contains("<script"), "no script on the page");
    assert!(!html.contains(".."), "sentences joined without doubled full stops");
    // Each element of GDPR Art. 13 and CCPA §1798.100, as a reader finds it.
    for expected in [
        "<html lang=\"en\">",
        "Example Shop Ltd is the controller",
        "privacy@shop.example",
        "Data Protection Officer, dpo@shop.example",
        "To deliver what you ordered",
        "Our contract with you (GDPR Art. 6(1)(b))",
        "Our legitimate interests (GDPR Art. 6(1)(f))",
        "Helping customers who contact us",
        "Mail Sender Inc.",
        "EU Standard Contractual Clauses",
        "Protected by an adequacy decision",
        "2 years from its last update",
        "While you consent, and 1 day after you withdraw",
        "Have your data erased",
        "Opt out of the sale or sharing",
        "You can withdraw this consent at any time",
        "complain to a supervisory authority: Information Commissioner",
        "California Privacy Protection Agency",
        "We sell or share personal information for",
        "Global Privacy Control",
        "Payment card number",
        "Kept even after an erasure request",
        "Do you have to give it?",
        "Yes, to enter into or carry out our contract with you",
        "No, it is up to you.",
        "Yes, the law requires it.",
        "We make no decisions about you by automated means alone",
        "we will not treat you differently for using them",
        "For a copy of the safeguards that protect a transfer, write to privacy@shop.example.",
    ] {
        assert!(html.contains(expected), "`{expected}` missing from the notice");
    }
    let (s, notice) = anon.get("/v1/notice").await;
    assert_eq!(s, 200);
    let version = notice["version"].as_str().unwrap().to_owned();
    assert!(html.contains(&version), "the page shows its version");
    // Every version shown stays answerable, the one in force among them.
    let (s, versions) = anon.get("/v1/notice/versions").await;
    assert_eq!(s, 200);
    assert_eq!(
        versions["versions"].as_array().unwrap().last().unwrap()["version"],
        version.as_str()
    );
    let (s, stored) = anon.get(&format!("/v1/notice/{version}")).await;
    assert_eq!((s, &stored), (200, &notice));
    let (s, _, stored_html) = anon.page("GET", &format!("/privacy-notice/{version}"), None, &[]).await;
    assert_eq!((s, stored_html.as_str()), (200, html.as_str()));
    let (s, v) = anon.get("/v1/notice/sha256-00000000000000000000000000000000").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("notice_version_not_found"))
    );
    let (s, v) = anon.get("/v1/notice/..%2Fetc").await;
    assert_eq!(s, 404, "{v}");
    // The page of an unknown version says so; no form was sent (it said "The form could
    // not be read").
    for unknown in ["sha256-00000000000000000000000000000000", "2026-01"] {
        let (s, _, page) = anon.page("GET", &format!("/privacy-notice/{unknown}"), None, &[]).await;
        assert_eq!(s, 404, "{page}");
        assert!(
            page.contains("id=\"notice-version-unknown\"")
                && page.contains("There is no privacy notice of this version")
                && !page.contains("form"),
            "{page}"
        );
    }
    // The notice says when it was last updated: the day its version was first shown
    // (CCPA regulations §7011(e)(4)), in the controller's zone (Europe/London).
    let published = versions["versions"].as_array().unwrap().last().unwrap()["published_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let millis = custodia_core::Timestamp::parse_rfc3339(&published).unwrap().0;
    let day = custodia_registry::Zone::named("Europe/London")
        .unwrap()
        .date_of(millis)
        .to_string();
    assert_eq!(notice["last_updated"], day.as_str(), "{notice}");
    assert!(
        html.contains(&format!(
            "<p class=\"muted\" id=\"notice-updated\">Last updated: {day}</p>"
        )),
        "{html}"
    );
    // Plain HTTP: the answer's defaults, never HSTS.
    let (_, headers, _) = anon.page("GET", "/v1/notice", None, &[]).await;
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("strict-transport-security").is_none());
    let (s, _, markdown) = anon.page("GET", "/privacy-notice.md", None, &[]).await;
    assert_eq!(s, 200);
    assert!(
        markdown.starts_with("# Privacy notice\n") && markdown.contains("## Your rights"),
        "{markdown}"
    );
    // Markdown escapes `:` and `-` (they could start an autolink or a list).
    let escaped = day.replace('-', "\\-");
    assert!(markdown.contains(&format!("_Last updated\\: {escaped}_")), "{markdown}");

    // The CLI generates the same notice from the registry file, offline; it knows no day a
    // version was first shown, so it gives one only when told.
    let registry = vault.path().join("registry.toml");
    let notice_cli = |format: &str, date: Option<&str>| {
        let mut cmd = custodia();
        cmd.arg("notice").arg(&registry).args(["--format", format]);
        if let Some(date) = date {
            cmd.args(["--last-updated", date]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let offline: Value = serde_json::from_str(&notice_cli("json", Some(&day))).unwrap();
    assert_eq!(offline, notice, "one registry, one notice");
    assert_eq!(notice_cli("markdown", Some(&day)), markdown);
    assert_eq!(notice_cli("html", Some(&day)), html);
    let undated: Value = serde_json::from_str(&notice_cli("json", None)).unwrap();
    assert_eq!(
        undated["version"], notice["version"],
        "the date is not part of the version"
    );
    assert!(undated.get("last_updated").is_none(), "{undated}");
    assert!(!notice_cli("html", None).contains("Last updated"));
    let out = custodia()
        .arg("notice")
        .arg(&registry)
        .args(["--last-updated", "2026-02-30"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "not a day");
}

#[tokio::test]
async fn the_record_of_processing_is_for_auditors_and_lists_article_30() {
    let (vault, server, mut admin) = shop().await;
    let (s, ropa) = admin.get("/v1/ropa").await;
    assert_eq!(s, 200, "{ropa}");
    let marketing = ropa["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["purpose"] == "marketing_email")
        .unwrap();
    for key in [
        "legal_basis",
        "data_subjects",
        "data_categories",
        "recipients",
        "transfers",
        "retention",
        "security_measures",
    ] {
        assert!(!marketing[key].is_null(), "{key} in {marketing}");
    }
    assert_eq!(ropa["controller"]["name"], "Example Shop Ltd");
    let (s, _, csv) = admin.page("GET", "/v1/ropa?format=csv", None, &[]).await;
    assert_eq!(s, 200);
    assert!(
        csv.starts_with("controller_name,controller_contact,representative,dpo,purpose,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + ropa["activities"].as_array().unwrap().len());
    let (s, v) = admin.get("/v1/ropa?format=xml").await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_format")));

    // Roles without read_audit, and no key at all, are refused.
    let support = admin.principal("agent", &["support_agent"]).await;
    let auditor = admin.principal("auditor", &["auditor"]).await;
    let (s, v) = server.client(&support).await.get("/v1/ropa").await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = server.client(&auditor).await.get("/v1/ropa").await;
    assert_eq!(s, 200);
    let (s, _) = server.anonymous().await.get("/v1/ropa").await;
    assert_eq!(s, 401);

    // The CLI's CSV is the server's.
    let out = custodia()
        .arg("ropa")
        .arg(vault.path().join("registry.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), csv);
}

#[tokio::test]
async fn links_are_made_by_consent_managers_only_and_checked_on_every_use() {
    let (_vault, server, mut admin) = shop().await;
    let consent_service = admin.principal("prefs", &["consent_service"]).await;
    let support = admin.principal("agent", &["support_agent"]).await;
    let mut prefs = server.client(&consent_service).await;
    let path = link(&mut prefs, SUBJECT, json!({})).await;
    assert!(!path.contains(SUBJECT), "the subject id is sealed inside the link");

    let (s, v) = server
        .client(&support)
        .await
        .post(&format!("/v1/subjects/{SUBJECT}/portal-links"), json!({}))
        .await;
    assert_eq!(s, 403, "{v}");
    for (body, code) in [
        (json!({"ttl_seconds": 0}), "invalid_ttl"),
        (json!({"ttl_seconds": 86_401}), "invalid_ttl"),
        (json!({"jurisdiction": "atlantis"}), "unknown_jurisdiction"),
        (json!({"ttl": 60}), "invalid_json"),
    ] {
        let (s, v) = prefs
            .post(&format!("/v1/subjects/{SUBJECT}/portal-links"), body.clone())
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some(code)), "{body}: {v}");
    }
    let (s, _) = prefs.post("/v1/subjects/not%20ok/portal-links", json!({})).await;
    assert_eq!(s, 400);
    // a link lives no longer than its issuer's key, and says so
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let soon = custodia_core::Timestamp(i64::try_from(now).unwrap() + 3_600_000);
    let (s, v) = admin
        .post(
            "/v1/principals",
            json!({"name": "prefs-short", "roles": ["consent_service"], "expires_at": soon.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = server
        .client(v["api_key"].as_str().unwrap())
        .await
        .post(
            &format!("/v1/subjects/{SUBJECT}/portal-links"),
            json!({"ttl_seconds": 86_400}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        custodia_core::Timestamp::parse_rfc3339(v["expires_at"].as_str().unwrap()),
        Some(soon),
        "{v}"
    );

    let mut browser = server.anonymous().await;
    let (s, headers, page) = browser.page("GET", &path, None, &[]).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(
        !page.contains("<script") && !page.contains("javascript:"),
        "the page needs no script"
    );
    assert!(
        page.contains("Email address")
            && page.contains("To deliver what you ordered")
            // Support may read what was collected for orders (compatible_with): it is said.
            && page.contains("To answer your questions"),
        "{page}"
    );
    assert!(
        !page.contains("ann@example.com") && !page.contains("Ann Example"),
        "categories, never values"
    );
    assert!(!page.contains(SUBJECT));

    // Every single changed character of the token is refused, as is another prefix.
    let token_start = "/portal/".len();
    for i in [token_start + 4, token_start + 20, path.len() - 1] {
        let mut bytes = path.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        let (s, _, page) = browser.page("GET", &forged, None, &[]).await;
        assert_eq!(s, 403, "{forged}");
        assert!(
            page.contains("id=\"link-error\"") && page.contains("not valid"),
            "{page}"
        );
    }
    for junk in ["/portal/x", "/portal/cp1_", "/portal/cp1_!!!!", "/portal/cp2_AAAA"] {
        let (s, _, _) = browser.page("GET", junk, None, &[]).await;
        assert_eq!(s, 403, "{junk}");
    }
    let (s, _, page) = browser
        .page("GET", &format!("/portal/cp1_{}", "A".repeat(2000)), None, &[])
        .await;
    assert_eq!(s, 403, "{page}");

    // A customer whose card number the vault holds as a token alone is told so, and why.
    let (s, v) = admin
        .post(
            "/v1/tokens",
            json!({"subject_id": "cust_card_only", "collection": "customers", "field": "card_number",
                   "purpose": "payment", "values": ["4242 4242 4242 4242"], "kind": "random"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let path = link(&mut prefs, "cust_card_only", json!({})).await;
    let (s, _, page) = browser.page("GET", &path, None, &[]).await;
    assert_eq!(s, 200, "{page}");
    assert!(!page.contains("id=\"held-none\""), "{page}");
    assert!(page.contains("To take payment for what you ordered"), "{page}");
}

#[tokio::test]
async fn a_customer_changes_choices_on_the_page_and_the_ledger_records_them() {
    let (vault, server, mut admin) = shop().await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    assert!(
        page.contains("id=\"consent-marketing_email\" name=\"consent\" value=\"marketing_email\" checked"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let version = hidden(&page, "notice_version");
    let (_, notice) = browser.get("/v1/notice").await;
    assert_eq!(notice["version"], version.as_str());
    let before = history(&mut admin, SUBJECT).await.len();

    // Without the CSRF token, from another site, or for a notice no longer in force: refused,
    // nothing recorded.
    let form = format!(
        "csrf={csrf}&notice_version={version}&shown=marketing_email&shown=analytics&consent=analytics&sale_shown=1"
    );
    let (s, _, page) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &form.replace(&csrf, "0000"),
        &[],
    )
    .await;
    assert_eq!(s, 403, "{page}");
    assert!(page.contains("id=\"form-error\""));
    let cross = [("sec-fetch-site", "cross-site")];
    let (s, _, _) = browser
        .page("POST", &format!("{path}/choices"), Some(&form), &cross)
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &form,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(s, 403);
    let stale = form.replace(&version, "sha256-00000000000000000000000000000000");
    let (s, _, _) = post_form(&mut browser, &format!("{path}/choices"), &stale, &[]).await;
    assert_eq!(s, 409);
    // A purpose that is not consent-based, or one not shown: refused, nothing recorded.
    let wrong = format!("{form}&shown=order_fulfillment");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/choices"), &wrong, &[]).await;
    assert_eq!(s, 422, "{page}");
    let unshown = format!("csrf={csrf}&notice_version={version}&consent=analytics");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/choices"), &unshown, &[]).await;
    assert_eq!(s, 400);
    assert!(page.contains("`analytics`"), "a purpose's name is repeated: {page}");
    // what is typed in its place is not repeated (it could be an email, a card number)
    let typed = format!("csrf={csrf}&notice_version={version}&consent=zelda%40example.com");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/choices"), &typed, &[]).await;
    assert_eq!(s, 400);
    assert!(!page.contains("zelda") && page.contains("(name withheld)"), "{page}");
    assert_eq!(history(&mut admin, SUBJECT).await.len(), before, "no partial write");

    // Marketing off, analytics on, opted out of sale: three entries, one transaction.
    let (s, headers, _) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &format!("{form}&sale_opt_out=1"),
        &[("user-agent", "TestBrowser/1.0 (ua-marker-91c2)")],
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(headers["location"], format!("{path}?saved=3").as_str());
    let entries = history(&mut admin, SUBJECT).await;
    let new: Vec<&Value> = entries[before..].iter().collect();
    assert_eq!(new.len(), 3, "{new:?}");
    for e in &new {
        assert_eq!(e["method"], "web_form", "{e}");
        assert!(e["principal_id"].as_str().unwrap().starts_with("portal:"), "{e}");
    }
    let marketing = new.iter().find(|e| e["purpose"] == "marketing_email").unwrap();
    assert_eq!(
        (marketing["value"].as_bool(), marketing["notice_version"].as_str()),
        (Some(false), Some(version.as_str()))
    );
    assert_eq!(marketing["evidence"]["user_agent"], "TestBrowser/1.0 (ua-marker-91c2)");
    // The page now says so, and the same form again changes nothing.
    let (_, _, page) = browser.page("GET", &format!("{path}?saved=3"), None, &[]).await;
    assert!(page.contains("id=\"status\"") && page.contains("Your choices are saved."));
    assert!(
        page.contains("id=\"consent-marketing_email\" name=\"consent\" value=\"marketing_email\">"),
        "{page}"
    );
    assert!(
        page.contains("id=\"state-sale-opt-out\" aria-hidden=\"true\">(On)"),
        "{page}"
    );
    let (s, headers, _) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &format!("{form}&sale_opt_out=1"),
        &[],
    )
    .await;
    assert_eq!(
        (s, headers["location"].to_str().unwrap().ends_with("saved=0")),
        (303, true)
    );
    assert_eq!(history(&mut admin, SUBJECT).await.len(), before + 3);

    // The receipt, readable and as JSON, says what was chosen and when.
    let (s, headers, receipt) = browser.page("GET", &format!("{path}/receipt.json"), None, &[]).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    let m = receipt["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "marketing_email")
        .unwrap();
    assert_eq!(
        (m["granted"].as_bool(), m["method"].as_str()),
        (Some(false), Some("web_form"))
    );
    assert_eq!(m["notice_version"], version.as_str());
    assert_eq!(receipt["sale_opt_out"]["opted_out"], true);
    assert_eq!(receipt["subject_id"], SUBJECT);
    let (s, _, readable) = browser.page("GET", &format!("{path}/receipt"), None, &[]).await;
    assert_eq!(s, 200);
    assert!(readable.contains("Consent receipt") && readable.contains("Withdrawn") && readable.contains("Opted out"));

    // The user agent is evidence sealed under the subject's key: never in the files.
    drop(server);
    for file in files_under(vault.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(b"ua-marker-91c2".len()).any(|w| w == b"ua-marker-91c2"),
            "user agent in clear in {}",
            file.display()
        );
    }
}

#[tokio::test]
async fn gpc_is_honoured_and_shown_and_wins_over_the_form() {
    let (_vault, server, mut admin) = shop().await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let gpc = [("sec-gpc", "1")];
    let (_, _, page) = browser.page("GET", &path, None, &gpc).await;
    assert!(page.contains("id=\"gpc-note\"") && page.contains("disabled"), "{page}");
    assert!(
        page.contains("id=\"state-sale-opt-out\" aria-hidden=\"true\">(On)"),
        "{page}"
    );
    let entries = history(&mut admin, SUBJECT).await;
    let last = entries.last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["method"].as_str()),
        (Some("sale_opt_out"), Some("gpc"))
    );
    // Opting back in while the browser still sends GPC does nothing.
    let form = format!(
        "csrf={}&notice_version={}&sale_shown=1",
        hidden(&page, "csrf"),
        hidden(&page, "notice_version")
    );
    let (s, headers, _) = post_form(&mut browser, &format!("{path}/choices"), &form, &gpc).await;
    assert_eq!(
        (s, headers["location"].to_str().unwrap().ends_with("saved=0")),
        (303, true)
    );
    assert_eq!(history(&mut admin, SUBJECT).await.len(), entries.len());
}

#[tokio::test]
async fn request_buttons_open_one_request_each_for_the_operators_to_verify() {
    let (_vault, server, mut admin) = shop().await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    let csrf = hidden(&page, "csrf");
    let kinds = [
        "access",
        "portability",
        "rectification",
        "erasure",
        "restriction",
        "objection",
    ];
    for kind in kinds {
        assert!(page.contains(&format!("id=\"request-{kind}\"")), "{kind}");
        let (s, _, page) = post_form(
            &mut browser,
            &format!("{path}/requests"),
            &format!("csrf={csrf}&type={kind}"),
            &[],
        )
        .await;
        assert_eq!(s, 200, "{page}");
        assert!(
            page.contains("id=\"status\"") && page.contains("We received your request"),
            "{page}"
        );
    }
    let (s, again) = {
        let (s, _, page) = post_form(
            &mut browser,
            &format!("{path}/requests"),
            &format!("csrf={csrf}&type=erasure"),
            &[],
        )
        .await;
        (s, page)
    };
    assert_eq!(s, 200, "{again}");
    for bad in ["opt_out_sale", "limit_sensitive", "", "erasure%00"] {
        let (s, _, _) = post_form(
            &mut browser,
            &format!("{path}/requests"),
            &format!("csrf={csrf}&type={bad}"),
            &[],
        )
        .await;
        assert_eq!(s, 400, "{bad}");
    }
    let (s, list) = admin.get("/v1/requests").await;
    assert_eq!(s, 200);
    let mine: Vec<&Value> = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject_id"] == SUBJECT)
        .collect();
    assert_eq!(
        mine.len(),
        kinds.len(),
        "one per kind, a second click opens none: {mine:?}"
    );
    for r in &mine {
        assert_eq!(
            (r["received_via"].as_str(), r["status"].as_str()),
            (Some("portal"), Some("received")),
            "{r}"
        );
    }
    // the objection, verified and fulfilled, objects to the purpose open to one: its reads stop
    let objection = mine.iter().find(|r| r["type"] == "objection").unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{objection}/verify"),
            json!({"verified_by": "the portal link sent to the account's address"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin.post(&format!("/v1/requests/{objection}/fulfil"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin
        .get(&format!("{}?purpose=customer_support", records(SUBJECT)))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = admin
        .get(&format!("{}?purpose=order_fulfillment", records(SUBJECT)))
        .await;
    assert_eq!(s, 200, "{v}");
}

/// A registry with no purpose open to an objection offers none on the page, and refuses one
/// posted anyway, naming the requests it offers.
#[tokio::test]
async fn the_page_offers_no_objection_when_no_purpose_is_open_to_one() {
    let vault = Vault::init();
    let file = vault.path().join("registry.toml");
    let example = std::fs::read_to_string(&file).unwrap();
    let registry = example
        .replace(
            "legal_basis = \"legitimate_interests\"\nlegitimate_interest = \"Helping customers who contact us, and keeping a record of what we told them.\"",
            "legal_basis = \"contract\"",
        )
        .replace("direct_marketing = true\n", "");
    assert_ne!(registry, example);
    std::fs::write(&file, registry).unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    assert!(page.contains("id=\"request-restriction\""), "{page}");
    assert!(!page.contains("id=\"request-objection\""), "{page}");
    let csrf = hidden(&page, "csrf");
    let (s, _, page) = post_form(
        &mut browser,
        &format!("{path}/requests"),
        &format!("csrf={csrf}&type=objection"),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{page}");
    assert!(
        page.contains("type must be one of: access, portability, rectification, erasure, restriction"),
        "{page}"
    );
}

#[test]
fn check_warns_of_what_the_notice_lacks_and_needs_the_registrys_language() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    let text = custodia_registry::EXAMPLE_REGISTRY
        .replacen("dpo = \"Data Protection Officer, dpo@shop.example\"\n", "", 1)
        .replacen(
            "safeguard = \"EU Standard Contractual Clauses (2021/914) and the UK Addendum\"\n",
            "",
            1,
        );
    std::fs::write(&registry, &text).unwrap();
    let out = custodia().arg("check").arg(&registry).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("names no `dpo`") && err.contains("30(1)(a)"), "{err}");
    assert!(
        err.contains("recipient `email_provider` is in US") && err.contains("names no `safeguard`"),
        "{err}"
    );

    // A registry in German needs German words beside it.
    std::fs::write(
        &registry,
        custodia_registry::EXAMPLE_REGISTRY.replacen("language = \"en\"", "language = \"de\"", 1),
    )
    .unwrap();
    let out = custodia().arg("check").arg(&registry).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no words for language `de`") && err.contains("locales/de.toml"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("locales")).unwrap();
    let german = custodia_transparency::locale::ENGLISH
        .replacen("title = \"Privacy notice\"", "title = \"Datenschutzhinweis\"", 1)
        .replacen("[portal]\n", "[portal]\nunbekannt = \"x\"\n", 1);
    std::fs::write(dir.path().join("locales/de.toml"), &german).unwrap();
    let out = custodia().arg("check").arg(&registry).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown field `unbekannt`") && err.contains("de.toml"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("locales/de.toml"),
        german.replacen("unbekannt = \"x\"\n", "", 1),
    )
    .unwrap();
    let out = custodia().arg("check").arg(&registry).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = custodia()
        .arg("notice")
        .arg(&registry)
        .args(["--format", "html"])
        .output()
        .unwrap();
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("<h1>Datenschutzhinweis</h1>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_link_dies_with_its_issuer_or_its_subjects_erasure() {
    let (_vault, server, mut admin) = shop().await;
    let (s, created) = admin
        .post(
            "/v1/principals",
            json!({"name": "account-pages", "roles": ["consent_service"]}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let mut pages = server.client(created["api_key"].as_str().unwrap()).await;
    let path = link(&mut pages, SUBJECT, json!({"ttl_seconds": 3600})).await;
    let mut browser = server.anonymous().await;
    let (s, _, _) = browser.page("GET", &path, None, &[]).await;
    assert_eq!(s, 200);
    // The issuer's key is revoked: its links stop working at once.
    let (s, _) = admin
        .call(
            "DELETE",
            &format!("/v1/principals/{}", created["principal_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _, page) = browser.page("GET", &path, None, &[]).await;
    assert_eq!(s, 403);
    assert!(
        page.contains("id=\"link-error\"") && page.contains("withdrawn"),
        "{page}"
    );

    // The subject is erased: a link made before does not bring them back.
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let (s, req) = admin
        .post(
            "/v1/requests",
            json!({"subject_id": SUBJECT, "type": "erasure", "jurisdiction": "gdpr", "verified_by": "signed-in session"}),
        )
        .await;
    assert_eq!(s, 201, "{req}");
    let (s, v) = admin
        .post(
            &format!("/v1/requests/{}/fulfil", req["request_id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for (method, suffix, body) in [
        ("GET", "", None),
        ("GET", "/receipt.json", None),
        ("POST", "/choices", Some("csrf=x")),
    ] {
        let (s, _, page) = browser.page(method, &format!("{path}{suffix}"), body, &[]).await;
        assert_eq!(s, 403, "{method} {suffix}");
        assert!(page.contains("withdrawn"), "{page}");
    }
}

#[tokio::test]
async fn refused_forms_are_audited_and_a_double_click_opens_one_request() {
    let (_vault, server, mut admin) = shop().await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    let csrf = hidden(&page, "csrf");
    let (s, _, _) = post_form(&mut browser, &format!("{path}/requests"), "csrf=wrong&type=access", &[]).await;
    assert_eq!(s, 403);
    let (s, _, _) = browser
        .page(
            "POST",
            &format!("{path}/requests"),
            Some(&format!("csrf={csrf}&type=access")),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(s, 403);
    let (s, events) = admin.get("/v1/audit/events?action=portal.form").await;
    assert_eq!(s, 200, "{events}");
    let refusals: Vec<&Value> = events["events"].as_array().unwrap().iter().collect();
    assert_eq!(refusals.len(), 2, "{events}");
    for e in refusals {
        let text = e.to_string();
        assert!(text.contains("deny") || text.contains("refus"), "{text}");
        assert!(!text.contains(SUBJECT), "the subject only as its keyed digest: {text}");
    }

    // Five clicks at once: one request.
    let addr = server.addr;
    let form = format!("csrf={csrf}&type=erasure");
    let clicks = (0..5).map(|_| {
        let (path, form) = (path.clone(), form.clone());
        tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            post_form(&mut c, &format!("{path}/requests"), &form, &[]).await.0
        })
    });
    for click in clicks {
        assert_eq!(click.await.unwrap(), 200);
    }
    // Ten saves of the same choice at once: one ledger entry.
    let before = history(&mut admin, SUBJECT).await.len();
    let form = format!(
        "csrf={csrf}&notice_version={}&shown=marketing_email",
        hidden(&page, "notice_version")
    );
    let saves = (0..10).map(|_| {
        let (path, form) = (path.clone(), form.clone());
        tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            post_form(&mut c, &format!("{path}/choices"), &form, &[]).await.0
        })
    });
    for save in saves {
        assert_eq!(save.await.unwrap(), 303);
    }
    let after = history(&mut admin, SUBJECT).await;
    assert_eq!(after.len(), before + 1, "{:?}", &after[before..]);
    assert_eq!(after[before]["value"], false);

    let (_, list) = admin.get("/v1/requests").await;
    let erasures = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject_id"] == SUBJECT && r["type"] == "erasure")
        .count();
    assert_eq!(erasures, 1, "{list}");
}

#[tokio::test]
async fn behind_a_proxy_the_public_address_is_the_pages_origin() {
    let vault = Vault::init();
    let server = Server::try_start(vault.path(), None, &["--public-url", "https://privacy.shop.example/"]).unwrap();
    let mut admin = server.client(&vault.token).await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let (s, v) = admin
        .post(&format!("/v1/subjects/{SUBJECT}/portal-links"), json!({}))
        .await;
    assert_eq!(s, 201);
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .starts_with("https://privacy.shop.example/portal/cp1_"),
        "{v}"
    );
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    let form = format!(
        "csrf={}&notice_version={}&shown=marketing_email&consent=marketing_email",
        hidden(&page, "csrf"),
        hidden(&page, "notice_version")
    );
    let (s, _, page) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &form,
        &[("origin", "https://privacy.shop.example")],
    )
    .await;
    assert_eq!(s, 303, "{page}");
    let (s, _, _) = post_form(
        &mut browser,
        &format!("{path}/choices"),
        &form,
        &[("origin", "https://privacy.shop.example.evil")],
    )
    .await;
    assert_eq!(s, 403);
}

/// A Californian customer limits the use of their sensitive personal information from the
/// page the notice sends them to (it offered only access, portability, rectification and
/// erasure: the right could not be used where the notice says); a GDPR page does not offer it.
#[tokio::test]
async fn a_ccpa_page_offers_the_limit_on_sensitive_information() {
    let (_vault, server, mut admin) = shop().await;
    let label = "Limit the use of my sensitive personal information";
    let gdpr = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &gdpr, None, &[]).await;
    assert!(!page.contains(label), "{page}");
    let ccpa = link(&mut admin, SUBJECT, json!({"jurisdiction": "ccpa"})).await;
    let (s, _, page) = browser.page("GET", &ccpa, None, &[]).await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains(label) && page.contains("value=\"limit_sensitive\""),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let (s, _, answer) = post_form(
        &mut browser,
        &format!("{ccpa}/requests"),
        &format!("csrf={csrf}&type=limit_sensitive"),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{answer}");
    let (_, list) = admin.get("/v1/requests").await;
    assert!(
        list["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["subject_id"] == SUBJECT && r["type"] == "limit_sensitive" && r["jurisdiction"] == "ccpa"),
        "{list}"
    );
}

/// What the ledger stopped is no use the page lists: an objection ends the purpose's uses
/// and is said; a restriction keeps the data, is said, and is not offered again (review: the
/// page listed purposes the server refused and offered the restriction in force).
#[tokio::test]
async fn the_page_shows_what_the_ledger_stopped() {
    let (_vault, server, mut admin) = shop().await;
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let support = "To answer your questions";
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    assert!(page.contains(support), "{page}");
    assert!(
        !page.contains("id=\"objected\"") && !page.contains("id=\"restricted\""),
        "{page}"
    );
    assert!(page.contains("id=\"request-restriction\""), "{page}");

    let (s, v) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/objections"),
            json!({"purpose": "customer_support", "method": "email"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    let held = &page[page.find("id=\"held-categories\"").unwrap()..page.find("id=\"choices-heading\"").unwrap()];
    let objected = held.find("id=\"objected\"").expect("the objection is said");
    assert!(!held[..objected].contains(support), "no longer listed as a use: {held}");
    assert!(held[objected..].contains(support), "{held}");

    let (s, v) = admin
        .post(
            &format!("/v1/subjects/{SUBJECT}/restriction"),
            json!({"restricted": true, "method": "email"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    assert!(page.contains("id=\"restricted\""), "{page}");
    assert!(
        page.contains("To deliver what you ordered"),
        "the data is kept for its purposes: {page}"
    );
    assert!(!page.contains("id=\"request-restriction\""), "{page}");
    // and one posted anyway opens nothing
    let csrf = hidden(&page, "csrf");
    let form = format!("csrf={csrf}&type=restriction");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/requests"), &form, &[]).await;
    assert_eq!(s, 409, "{page}");
    let (_, v) = admin.get("/v1/requests?status=open").await;
    assert!(
        !v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "restriction"),
        "{v}"
    );
}

/// A consent given under a notice of this vault counts for what that notice said of its
/// purpose: once the purpose's terms change (a recipient added), it permits nothing until the
/// customer consents again, which the page asks for; what it collected stays. A consent
/// naming a business's own notice version is not compared (review: an old consent authorized
/// new processing, and saving the page again recorded nothing).
#[tokio::test]
async fn a_consent_counts_for_the_terms_it_was_given_under() {
    let vault = Vault::init();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, notice) = admin.get("/v1/notice").await;
    assert_eq!(s, 200, "{notice}");
    let version = notice["version"].as_str().unwrap().to_owned();
    for (subject, version) in [(SUBJECT, version.as_str()), ("cust_own_notice", "2026-11")] {
        let (s, v) = admin
            .post(
                &format!("/v1/subjects/{subject}/consents"),
                json!({"purpose": "marketing_email", "granted": true, "notice_version": version, "method": "web_form"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = admin
            .post(
                &records(subject),
                json!({"purpose": "marketing_email", "fields": {"email": "ann@example.com"}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let marketing = |subject: &str| format!("{}?purpose=marketing_email", records(subject));
    assert_eq!(admin.get(&marketing(SUBJECT)).await.0, 200);
    server.terminate();

    let file = vault.path().join("registry.toml");
    let example = std::fs::read_to_string(&file).unwrap();
    let changed = example.replacen(
        "recipients = [\"email_provider\"]\ndirect_marketing = true",
        "recipients = [\"email_provider\", \"ad_partner\"]\ndirect_marketing = true",
        1,
    );
    assert_ne!(changed, example);
    std::fs::write(&file, changed).unwrap();
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let (s, v) = admin.get(&marketing(SUBJECT)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("consent_outdated")), "{v}");
    let (s, v) = admin.get(&marketing("cust_own_notice")).await;
    assert_eq!(s, 200, "a business's own notice version is not compared: {v}");
    let (s, v) = admin
        .get(&format!("{}?purpose=order_fulfillment", records(SUBJECT)))
        .await;
    assert_eq!(s, 200, "other purposes go on: {v}");

    // The page shows the consent off, says why, and a tick records it under the notice in force.
    let path = link(&mut admin, SUBJECT, json!({})).await;
    let mut browser = server.anonymous().await;
    let (_, _, page) = browser.page("GET", &path, None, &[]).await;
    assert!(page.contains("id=\"changed-marketing_email\""), "{page}");
    assert!(
        !page.contains("id=\"consent-marketing_email\" name=\"consent\" value=\"marketing_email\" checked"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let shown = hidden(&page, "notice_version");
    // Saved as shown (off), it is withdrawn: left granted, it would count again were the terms
    // to go back.
    let off = format!("csrf={csrf}&notice_version={shown}&shown=marketing_email");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/choices"), &off, &[]).await;
    assert!(s == 303 || s == 200, "{s}: {page}");
    let last = history(&mut admin, SUBJECT).await.last().cloned().unwrap();
    assert_eq!(
        (last["purpose"].as_str(), last["value"].as_bool()),
        (Some("marketing_email"), Some(false)),
        "{last}"
    );
    let form = format!("csrf={csrf}&notice_version={shown}&shown=marketing_email&consent=marketing_email");
    let (s, _, page) = post_form(&mut browser, &format!("{path}/choices"), &form, &[]).await;
    assert!(s == 303 || s == 200, "{s}: {page}");
    let (s, v) = admin.get(&marketing(SUBJECT)).await;
    assert_eq!(s, 200, "consented again under the notice in force: {v}");
    assert_eq!(
        v["records"][0]["fields"]["email"], "ann@example.com",
        "what it collected stayed"
    );
}
