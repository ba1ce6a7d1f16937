//! `GET /metrics`: the families Prometheus needs, only for `read_metrics` (each reading
//! audited), also unauthenticated on `--metrics-listen`; and never a subject id, a value, a
//! key or a caller's text in a label, whatever the requests were.

use serde_json::json;

use crate::support::{Client, Vault};

const SUBJECT: &str = "metrics-subject-4417";
const VALUES: [&str; 3] = [
    "Quentin.Metricsworth@canary.example",
    "Quentin Metricsworth",
    "+447700900417",
];

#[tokio::test]
async fn metrics_show_the_families_to_read_metrics_and_nothing_personal() {
    let vault = Vault::init();
    let mut server = crate::support::Server::try_start(vault.path(), None, &["--metrics-listen", "127.0.0.1:0"])
        .unwrap_or_else(|e| panic!("server did not start: {e}"));
    let line = server.next_line();
    let metrics_addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"));

    // Traffic: a create, a read, a consent change, a scan, a refusal, hostile paths and labels.
    let mut admin = server.client(&vault.token).await;
    let records = format!("/v1/subjects/{SUBJECT}/records/customers");
    let (status, v) = admin
        .post(
            &records,
            json!({"purpose": "order_fulfillment", "fields": {"email": VALUES[0], "name": VALUES[1], "phone": VALUES[2]}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(admin.get(&format!("{records}?purpose=order_fulfillment")).await.0, 200);
    let consent = json!({"purpose": "analytics", "granted": true, "notice_version": "v1", "method": "api"});
    assert_eq!(
        admin.post(&format!("/v1/subjects/{SUBJECT}/consents"), consent).await.0,
        201
    );
    // A ledger entry written by fulfilling a request is a consent change too.
    let (status, v) = admin
        .post(
            "/v1/requests",
            json!({"subject_id": SUBJECT, "type": "opt_out_sale", "jurisdiction": "ccpa"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let request = v["request_id"].as_str().unwrap().to_owned();
    let (status, v) = admin
        .post(
            &format!("/v1/requests/{request}/verify"),
            json!({"verified_by": "signed-in account"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin.post(&format!("/v1/requests/{request}/fulfil"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    let scanned = format!("write to {} today", VALUES[0]);
    let (status, v) = admin.post("/v1/scan", json!({ "text": scanned })).await;
    assert_eq!(status, 200, "{v}");
    // A purpose nobody declared, in the query, and a subject id in a path no route matches.
    let (status, _) = admin.get(&format!("{records}?purpose=label_canary_purpose")).await;
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(admin.get("/v1/nowhere/label-canary-subject").await.0, 404);
    let shipper_key = admin.principal("shipper", &["fulfillment_service"]).await;
    let mut shipper = server.client(&shipper_key).await;
    let (status, v) = shipper.get(&format!("{records}?purpose=analytics")).await;
    assert_eq!(status, 403, "{v}");
    // Refused and failed requests count no `allow`: the decision counted is the one written.
    let (status, v) = shipper
        .post("/v1/principals", json!({"name": "mallory", "roles": ["admin"]}))
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = admin
        .post(
            "/v1/principals",
            json!({"name": "shipper", "roles": ["fulfillment_service"]}),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    // A method a route does not serve is counted under one label, whatever the route.
    assert_eq!(admin.text("DELETE", "/v1/scan", "").await.0, 405);
    assert_eq!(admin.text("PUT", "/v1/search", "").await.0, 405);

    // Only read_metrics: none without a key, a JSON 403 for a role without it.
    let (status, v) = server.anonymous().await.get("/metrics").await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = shipper.get("/metrics").await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("not_allowed")), "{v}");

    let (status, headers, text) = admin.page("GET", "/metrics", None, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{headers:?}"
    );
    let scanned_bytes = format!("custodia_scanner_bytes_total {}", scanned.len());
    for family in [
        r#"custodia_http_requests_total{method="POST",route="/v1/subjects/{subject_id}/records/{collection}",status="201"} 1"#,
        r#"custodia_http_requests_total{method="GET",route="(no route)",status="404"} 1"#,
        r#"custodia_http_request_duration_seconds_count{method="GET",route="/v1/subjects/{subject_id}/records/{collection}"} 3"#,
        r#"custodia_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/scan"} 1"#,
        r#"custodia_gate_decisions_total{action="record.create",purpose="order_fulfillment",decision="allow"} 1"#,
        r#"custodia_gate_decisions_total{action="record.list",purpose="analytics",decision="deny"} 1"#,
        // The undeclared purpose is counted, under `(other)`.
        r#"custodia_gate_decisions_total{action="record.list",purpose="(other)",decision="deny"} 1"#,
        r#"custodia_gate_decisions_total{action="metrics.read",purpose="(none)",decision="deny"} 1"#,
        r#"custodia_gate_decisions_total{action="principal.create",purpose="(none)",decision="allow"} 1"#,
        // the shipper's (403) and the name taken (409: a refusal decided on the state, audited)
        r#"custodia_gate_decisions_total{action="principal.create",purpose="(none)",decision="deny"} 2"#,
        r#"custodia_http_requests_total{method="DELETE",route="(method not allowed)",status="405"} 1"#,
        r#"custodia_http_requests_total{method="PUT",route="(method not allowed)",status="405"} 1"#,
        r#"custodia_consent_changes_total{kind="consent",purpose="analytics",state="on"} 1"#,
        r#"custodia_consent_changes_total{kind="sale_opt_out",purpose="(none)",state="on"} 1"#,
        "custodia_audit_appends_total ",
        "custodia_audit_checkpoint_age_seconds ",
        r#"custodia_store_commit_batch_size_count{backend="sqlite"}"#,
        r#"custodia_store_commit_duration_seconds_bucket{le="+Inf",backend="sqlite"}"#,
        &scanned_bytes,
        r#"custodia_scanner_findings_total{entity="EMAIL_ADDRESS"} 1"#,
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    assert!(
        !text.contains(r#"action="record.list",purpose="analytics",decision="allow""#),
        "a refused read counted as allowed:\n{text}"
    );
    let audit_appends: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("custodia_audit_appends_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(audit_appends >= 5, "{audit_appends}");

    // The same families, unauthenticated, on the metrics listener; nothing else there.
    let mut open = Client::connect(metrics_addr).await;
    let (status, open_text) = open.text("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(open_text.contains("custodia_gate_decisions_total{"), "{open_text}");
    assert_eq!(open.text("GET", "/v1/subjects/x/records/customers", "").await.0, 404);

    // Nothing personal, no key, no caller's text: in either answer.
    for body in [&text, &open_text] {
        for secret in VALUES.iter().copied().chain([
            SUBJECT,
            "label_canary_purpose",
            "label-canary-subject",
            vault.token.as_str(),
            shipper_key.as_str(),
        ]) {
            assert!(!body.contains(secret), "{secret} in the metrics");
        }
    }

    // Each reading through the API is audited, the refusal too.
    let decisions = admin.audit_decisions("metrics.read").await;
    assert!(
        decisions.iter().any(|d| d == "allow") && decisions.iter().any(|d| d == "deny"),
        "{decisions:?}"
    );
    server.terminate();
}
