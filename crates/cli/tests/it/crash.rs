//! Crash safety: write load on a real server, `kill -9` at moments that vary by round, start
//! again, and check that every acknowledged write is readable as written, that a write in
//! flight at the crash is there whole or not at all, and that the audit log verifies against
//! the pinned key (on SQLite and PostgreSQL).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_client::Connection;
use crate::support::{Vault, custodia};

/// Rounds of load and crash.
const ROUNDS: u64 = 4;
/// Concurrent writers.
const WRITERS: usize = 8;

/// The fields each record is created with, from its subject.
fn fields(subject: &str) -> Value {
    json!({
        "email": format!("{subject}@example.com"),
        "name": format!("Customer {subject}"),
        // Stored as normalized (E.164), so written that way to compare as read.
        "phone": "+442079460958",
        "shipping_address": format!("{subject} High Street"),
    })
}

/// What the writers did: subjects whose creation was acknowledged (with the record id), and
/// those attempted without an answer.
#[derive(Default)]
struct Ledger {
    acknowledged: BTreeMap<String, String>,
    in_flight: Vec<String>,
}

/// One writer: creates records until the server goes away.
async fn writer(addr: std::net::SocketAddr, token: String, prefix: String, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut conn) = Connection::open(addr).await else {
        return;
    };
    for i in 0.. {
        let subject = format!("{prefix}-{i}");
        let body = serde_json::to_vec(&json!({"purpose": "order_fulfillment", "fields": fields(&subject)})).unwrap();
        let path = format!("/v1/subjects/{subject}/records/customers");
        match conn.send("POST", &path, Some(&token), Some(body), &[]).await {
            Ok(reply) if reply.status == 201 => {
                let v: Value = serde_json::from_slice(&reply.body).unwrap();
                let id = v["record_id"].as_str().unwrap().to_owned();
                ledger.lock().unwrap().acknowledged.insert(subject, id);
            }
            Ok(reply) => panic!(
                "create answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ),
            Err(_) => {
                // The server died with this write in flight: it may or may not have landed.
                ledger.lock().unwrap().in_flight.push(subject);
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_the_audit_log_verifies() {
    crash_rounds(Vault::init()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_postgres() {
    let Some(url) = crate::support::postgres_url() else {
        eprintln!("skipping: CUSTODIA_TEST_POSTGRES_URL is not set");
        return;
    };
    crash_rounds(Vault::init_with(Some(crate::support::fresh_postgres_database(&url)))).await;
}

async fn crash_rounds(vault: Vault) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        let server = vault.serve();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    server.addr,
                    vault.token.clone(),
                    format!("r{round}w{w}"),
                    Arc::clone(&ledger),
                ))
            })
            .collect();
        // The load is under way (a write of this round acknowledged: on a busy machine the
        // first can take a while), then the crash comes at a different moment each round,
        // 150 to 600 ms later.
        let before = ledger.lock().unwrap().acknowledged.len();
        for _ in 0..600 {
            if ledger.lock().unwrap().acknowledged.len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 + (round * 337) % 450)).await;
        server.kill();
        for w in writers {
            w.await.unwrap();
        }
    }
    let server = vault.serve();
    let mut admin = server.client(&vault.token).await;
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    eprintln!(
        "{} writes acknowledged, {} in flight at a crash",
        ledger.acknowledged.len(),
        ledger.in_flight.len()
    );
    assert!(
        ledger.acknowledged.len() > WRITERS,
        "the load ran: {} writes acknowledged",
        ledger.acknowledged.len()
    );
    for (subject, id) in &ledger.acknowledged {
        let (s, v) = admin
            .get(&format!(
                "/v1/subjects/{subject}/records/customers/{id}?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(s, 200, "acknowledged write of {subject} lost: {v}");
        assert_eq!(v["fields"], fields(subject), "acknowledged write of {subject} changed");
    }
    for subject in &ledger.in_flight {
        let (s, v) = admin
            .get(&format!(
                "/v1/subjects/{subject}/records/customers?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(s, 200, "{v}");
        match v["records"].as_array().unwrap().as_slice() {
            [] => {}
            [one] => assert_eq!(one["fields"], fields(subject), "half-written record of {subject}"),
            more => panic!("{subject} has {} records from one write", more.len()),
        }
    }
    drop(admin);
    server.terminate();
    let mut verify = custodia();
    verify
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path());
    if let Some(url) = &vault.database_url {
        verify.args(["--database-url", url]);
    }
    let out = verify.output().unwrap();
    assert!(
        out.status.success(),
        "audit verify after the crashes: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
