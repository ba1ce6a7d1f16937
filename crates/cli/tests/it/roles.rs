//! PostgreSQL's owner and service roles end to end: `init --service-role` as the owner, then
//! servers as the service role. The test server trusts local connections, so the service
//! role's password is never checked here (its SCRAM verifier is checked in the store's tests).

use std::process::Command;

use serde_json::Value;

use crate::support::{Server, custodia, fresh_postgres_database, postgres_url};

/// Runs SQL through psql as whoever `url` logs in as.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql must be installed to run the PostgreSQL tests");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `url` logging in as `role` (no password: the test server trusts it).
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_a_service_role_the_server_runs_as() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        return;
    };
    // An owner role that is no superuser: what an operator would create for custodia.
    let database = fresh_postgres_database(&url);
    let name = database.rsplit_once('/').unwrap().1.to_owned();
    let (owner, service) = (format!("{name}_owner"), format!("{name}_service"));
    psql(
        &url,
        &format!("CREATE ROLE {owner} LOGIN CREATEROLE; ALTER DATABASE {name} OWNER TO {owner};"),
    )
    .unwrap();
    let owner_url = as_role(&database, &owner);

    let dir = tempfile::tempdir().unwrap();
    let out = custodia()
        .args(["init", "--json", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", &owner_url, "--service-role", &service])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = v["admin_token"].as_str().unwrap().to_owned();
    let service_url = v["service_database_url"].as_str().unwrap().to_owned();
    let audit_key = v["audit_public_key"].as_str().unwrap().to_owned();
    let (user, rest) = service_url
        .strip_prefix("postgres://")
        .unwrap()
        .split_once('@')
        .unwrap();
    let (user, password) = user.split_once(':').unwrap();
    assert_eq!(user, service);
    assert_eq!(password.len(), 64, "a random password");
    assert!(database.ends_with(rest), "same host and database: {rest}");

    // The server runs as the service role: records are written, read, changed and erased.
    let server = Server::start(dir.path(), Some(&service_url));
    let (status, v) = server.anonymous().await.get("/healthz").await;
    assert_eq!((status, v["store"].as_str()), (200, Some("postgres")));
    crate::http::record_life_cycle(&mut server.client(&token).await).await;
    server.terminate();
    let out = custodia()
        .args(["audit", "verify", "--public-key", &audit_key, "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", &service_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify as the service role: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone with the service credential cannot cut the audit log or lift its guards.
    for sql in [
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "UPDATE subject_ledger SET value = 0",
    ] {
        let err = psql(&service_url, sql).expect_err(sql);
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    assert_ne!(psql(&owner_url, "SELECT COUNT(*) FROM audit_log").unwrap(), "0");

    // After an upgrade the owner migrates and grants again; the password is kept.
    let out = custodia()
        .args(["migrate", "--database-url", &owner_url, "--service-role", &service])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("append-only: ") && text.contains("audit_log") && !text.contains(password),
        "{text}"
    );
    let server = Server::start(dir.path(), Some(&service_url));
    let (status, _) = server.client(&token).await.get("/v1/principals").await;
    assert_eq!(status, 200);
}
