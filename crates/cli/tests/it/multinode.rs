//! Several server nodes on one PostgreSQL database (issue 17): three `custodia serve`
//! processes, each with a data directory of its own (the registry and the root key copied
//! from the first, as an operator deploys them), all on one database. Through the HTTP API of
//! different nodes: a write on one reads back exactly on the others; a consent withdrawal and
//! a key revocation made through one node are enforced by the others within the bound
//! ARCHITECTURE.md states ("Caches and their invalidation": when the `pg_notify`
//! notification arrives, and in any case within 5 s), and sooner than the caches' expiry
//! could explain (so by the notification); concurrent creates on every node all read back on
//! every node; and the audit log is one verifiable sequence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Client, Server, Vault, custodia, fresh_postgres_database, postgres_url};

/// The bound ARCHITECTURE.md and the README state for a consent change or a key revocation
/// made through one node to be enforced by every node.
const STATED_BOUND: Duration = Duration::from_secs(5);
/// How often a node is asked again while waiting for a change to reach it.
const POLL: Duration = Duration::from_millis(20);
/// Concurrent writers per node, and creates per writer, in the concurrent phase.
const WRITERS: usize = 5;
const CREATES: usize = 10;

/// The fields a record of `subject` is created with (stored as written: the phone already in
/// E.164), so that what is read back can be compared exactly.
fn fields(subject: &str) -> Value {
    json!({
        "email": format!("{subject}@example.com"),
        "name": format!("Customer {subject}"),
        "phone": "+442079460958",
        "shipping_address": format!("{subject} High Street"),
    })
}

/// A data directory for another node of `vault`: its registry and root key, nothing else.
fn node_dir(vault: &Vault) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for file in ["registry.toml", "root.key"] {
        std::fs::copy(vault.path().join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copying {file} to another node's data directory: {e}"));
    }
    dir
}

/// A client of `addr` with `token`, on a connection of its own.
async fn client(addr: SocketAddr, token: &str) -> Client {
    let mut c = Client::connect(addr).await;
    c.token = Some(token.to_owned());
    c
}

/// Asks `path` of a node until `effective` says the change is in force there; every answer
/// before that must be `before` (what the node said before the change). Returns when the
/// change was seen in force (an upper bound on when it took effect), or the old answer to a
/// request sent at or after `deadline` (proof that it was not in force by then).
async fn poll_until(
    c: &mut Client,
    path: &str,
    deadline: Instant,
    before: impl Fn(u16, &Value) -> bool,
    effective: impl Fn(u16, &Value) -> bool,
) -> Result<Instant, (u16, Value)> {
    loop {
        let sent = Instant::now();
        let (status, v) = c.get(path).await;
        if effective(status, &v) {
            return Ok(Instant::now());
        }
        assert!(
            before(status, &v),
            "neither the old answer nor the new one: {status} {v}"
        );
        if sent >= deadline {
            return Err((status, v));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks that a change made through one node, acknowledged at `changed`, reached another
/// node within the bound. `seen` is when that node was first seen enforcing it, and `first`
/// when that node was first asked anything that could fill its cache entry: the entry cannot
/// expire before `first + CACHE_TTL`, so a change seen well before that came by the change
/// notification, not by the cache's expiry (the safety net).
fn check_in_time(what: &str, node: usize, changed: Instant, first: Instant, seen: Result<Instant, (u16, Value)>) {
    let seen = seen.unwrap_or_else(|(status, v)| {
        panic!("{what} was not enforced by node {node} within {STATED_BOUND:?}: it still answered {status} {v}")
    });
    let after = seen.saturating_duration_since(changed);
    let since_filled = seen.saturating_duration_since(first);
    eprintln!("{what}: enforced by node {node} at most {after:?} after it was acknowledged");
    let net = custodia_core::CACHE_TTL.saturating_sub(Duration::from_millis(500));
    assert!(
        since_filled < net,
        "{what} reached node {node} only {after:?} after it was acknowledged, {since_filled:?} after \
         the node cached what it changed: by the cache's expiry at best, not by the change \
         notification (pg_notify)"
    );
}

/// One writer of the concurrent phase: `CREATES` records through one node, half for subjects
/// of its own, half for subjects every node's writer `w` writes at the same time (so first
/// writes of a subject's data key race across nodes). Returns (subject, record id) of each
/// acknowledged create; any other answer fails the test.
async fn writer(addr: SocketAddr, token: String, node: usize, w: usize) -> Vec<(String, String)> {
    let mut c = client(addr, &token).await;
    let mut acknowledged = Vec::new();
    for i in 0..CREATES {
        let subject = if i % 2 == 0 {
            format!("mn_shared_{w}_{i}")
        } else {
            format!("mn_own_{node}_{w}_{i}")
        };
        let (status, v) = c
            .post(
                &format!("/v1/subjects/{subject}/records/customers"),
                json!({"purpose": "order_fulfillment", "fields": fields(&subject)}),
            )
            .await;
        assert_eq!(status, 201, "create of {subject} on node {node}: {v}");
        let id = v["record_id"].as_str().expect("a record id").to_owned();
        acknowledged.push((subject, id));
    }
    acknowledged
}

/// Every audit sequence number, in order (straight from the database, as the tamper tests
/// read it), and how many allowed record creations the log holds.
async fn audit_sequence(database: &str) -> (Vec<i64>, i64) {
    let db = sqlx::PgPool::connect(database)
        .await
        .expect("connect to the test database");
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq")
        .fetch_all(&db)
        .await
        .expect("read the audit sequence");
    let creates: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'record.create' AND decision = 'allow'")
            .fetch_one(&db)
            .await
            .expect("count the audited creates");
    db.close().await;
    (seqs, creates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgres_database() {
    let Some(url) = postgres_url() else {
        assert!(std::env::var("CI").is_err(), "CI must run the PostgreSQL tests");
        eprintln!("skipping: CUSTODIA_TEST_POSTGRES_URL is not set");
        return;
    };
    assert!(
        custodia_core::CACHE_TTL <= STATED_BOUND,
        "the caches' expiry ({:?}) is past the bound the documentation states",
        custodia_core::CACHE_TTL
    );
    let started = Instant::now();
    let vault = Vault::init_with(Some(fresh_postgres_database(&url)));
    let database = vault.database_url.clone().expect("a PostgreSQL vault");
    let others = [node_dir(&vault), node_dir(&vault)];
    let dirs: Vec<PathBuf> = std::iter::once(vault.path())
        .chain(others.iter().map(tempfile::TempDir::path))
        .map(Path::to_path_buf)
        .collect();
    let nodes: Vec<Server> = dirs.iter().map(|d| Server::start(d, Some(&database))).collect();
    let mut admin = Vec::new();
    for node in &nodes {
        let mut c = client(node.addr, &vault.token).await;
        let (status, v) = c.get("/healthz").await;
        assert_eq!((status, v["store"].as_str()), (200, Some("postgres")), "{v}");
        admin.push(c);
    }
    let mut created = 0;

    // a. A record created on node 1 reads back exactly on nodes 2 and 3, at once: the create
    // was acknowledged after its commit.
    let subject = "mn_a";
    let (status, v) = admin[0]
        .post(
            &format!("/v1/subjects/{subject}/records/customers"),
            json!({"purpose": "order_fulfillment", "fields": fields(subject)}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    created += 1;
    let id = v["record_id"].as_str().expect("a record id").to_owned();
    for n in [1, 2] {
        let (status, v) = admin[n]
            .get(&format!(
                "/v1/subjects/{subject}/records/customers/{id}?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(status, 200, "node {}: {v}", n + 1);
        assert_eq!(v["fields"], fields(subject), "node {} read another record", n + 1);
        let (status, v) = admin[n]
            .get(&format!(
                "/v1/subjects/{subject}/records/customers?purpose=order_fulfillment"
            ))
            .await;
        assert_eq!(status, 200, "node {}: {v}", n + 1);
        let listed: Vec<&str> = v["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["record_id"].as_str())
            .collect();
        assert_eq!(listed, [id.as_str()], "node {} lists the subject's records", n + 1);
    }

    // b. Consent given and used on node 1, read (so cached) on nodes 1 and 3, withdrawn on
    // node 2: node 2 refuses at once, nodes 3 and 1 within the bound. `first` is when each
    // node was first asked anything about the subject (or the key, in c): no cache entry of
    // it there is older.
    let mut first = [started; 3];
    let subject = "mn_b";
    let consents = format!("/v1/subjects/{subject}/consents");
    first[0] = Instant::now();
    let (status, v) = admin[0]
        .post(
            &consents,
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "2026-11", "method": "web_form"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = admin[0]
        .post(
            &format!("/v1/subjects/{subject}/records/customers"),
            json!({"purpose": "marketing_email", "fields": {"email": "mn_b@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    created += 1;
    let read = format!("/v1/subjects/{subject}/records/customers?purpose=marketing_email&fields=email");
    let consented = |status: u16, v: &Value| status == 200 && v["records"][0]["fields"]["email"] == "mn_b@example.com";
    let refused = |status: u16, v: &Value| status == 403 && v["error"]["code"] == "consent_required";
    first[2] = Instant::now();
    for n in [0, 2] {
        for _ in 0..2 {
            let (status, v) = admin[n].get(&read).await;
            assert!(
                consented(status, &v),
                "node {} before the withdrawal: {status} {v}",
                n + 1
            );
        }
    }
    let (status, v) = admin[1]
        .post(
            &consents,
            json!({"purpose": "marketing_email", "granted": false, "method": "email"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let withdrawn = Instant::now();
    let (status, v) = admin[1].get(&read).await;
    assert!(
        refused(status, &v),
        "node 2 enforces its own withdrawal at once: {status} {v}"
    );
    for n in [2, 0] {
        let seen = poll_until(&mut admin[n], &read, withdrawn + STATED_BOUND, consented, refused).await;
        check_in_time(
            "the consent withdrawal made on node 2",
            n + 1,
            withdrawn,
            first[n],
            seen,
        );
    }

    // c. An API key created on node 3 and used on nodes 3 and 2 (so its principal is cached
    // there), revoked on node 1: refused by node 1 at once, by nodes 2 and 3 within the bound.
    let subject = "mn_c";
    let (status, v) = admin[2]
        .post(
            &format!("/v1/subjects/{subject}/records/customers"),
            json!({"purpose": "order_fulfillment", "fields": fields(subject)}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    created += 1;
    first[2] = Instant::now();
    let (status, v) = admin[2]
        .post(
            "/v1/principals",
            json!({"name": "mn-shipper", "roles": ["fulfillment_service"]}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let key = v["api_key"].as_str().expect("an API key").to_owned();
    let principal = v["principal_id"].as_str().expect("a principal id").to_owned();
    let read = format!("/v1/subjects/{subject}/records/customers?purpose=order_fulfillment");
    let mut shipper = Vec::new();
    for node in &nodes {
        shipper.push(client(node.addr, &key).await);
    }
    let allowed = |status: u16, v: &Value| status == 200 && v["records"][0]["fields"]["name"] == "Customer mn_c";
    let unauthorized = |status: u16, _: &Value| status == 401;
    first[1] = Instant::now();
    for n in [2, 1] {
        for _ in 0..2 {
            let (status, v) = shipper[n].get(&read).await;
            assert!(allowed(status, &v), "the new key on node {}: {status} {v}", n + 1);
        }
    }
    let (status, v) = admin[0]
        .call("DELETE", &format!("/v1/principals/{principal}"), None)
        .await;
    assert_eq!(status, 204, "{v}");
    let revoked = Instant::now();
    let (status, v) = shipper[0].get(&read).await;
    assert_eq!(status, 401, "node 1 refuses the key it revoked at once: {v}");
    for n in [1, 2] {
        let seen = poll_until(&mut shipper[n], &read, revoked + STATED_BOUND, allowed, unauthorized).await;
        check_in_time("the key revocation made on node 1", n + 1, revoked, first[n], seen);
    }
    drop(shipper);

    // d. Concurrent creates on all three nodes at once.
    let burst = Instant::now();
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..WRITERS {
            tasks.push((n, tokio::spawn(writer(node.addr, vault.token.clone(), n + 1, w))));
        }
    }
    let mut acknowledged = Vec::new();
    for (n, task) in tasks {
        for (subject, id) in task.await.expect("a writer") {
            acknowledged.push((n, subject, id));
        }
    }
    assert_eq!(acknowledged.len(), nodes.len() * WRITERS * CREATES);
    created += acknowledged.len();
    eprintln!(
        "{} concurrent creates on {} nodes in {:?}",
        acknowledged.len(),
        nodes.len(),
        burst.elapsed()
    );

    // e. Every record acknowledged by any node reads back exactly on every node, and every
    // subject written through all three nodes lists the three records, no more.
    for (made_on, subject, id) in &acknowledged {
        for (n, c) in admin.iter_mut().enumerate() {
            let (status, v) = c
                .get(&format!(
                    "/v1/subjects/{subject}/records/customers/{id}?purpose=order_fulfillment"
                ))
                .await;
            assert_eq!(
                status,
                200,
                "{subject}'s record acknowledged by node {} is not readable on node {}: {v}",
                made_on + 1,
                n + 1
            );
            assert_eq!(
                v["fields"],
                fields(subject),
                "{subject}'s record acknowledged by node {} reads otherwise on node {}",
                made_on + 1,
                n + 1
            );
        }
    }
    for w in 0..WRITERS {
        for i in (0..CREATES).step_by(2) {
            let subject = format!("mn_shared_{w}_{i}");
            let mut expected: Vec<&str> = acknowledged
                .iter()
                .filter(|(_, s, _)| *s == subject)
                .map(|(_, _, id)| id.as_str())
                .collect();
            expected.sort_unstable();
            assert_eq!(expected.len(), nodes.len(), "{subject} was written through every node");
            for (n, c) in admin.iter_mut().enumerate() {
                let (status, v) = c
                    .get(&format!(
                        "/v1/subjects/{subject}/records/customers?purpose=order_fulfillment"
                    ))
                    .await;
                assert_eq!(status, 200, "node {}: {v}", n + 1);
                let mut listed: Vec<&str> = v["records"]
                    .as_array()
                    .expect("records")
                    .iter()
                    .filter_map(|r| r["record_id"].as_str())
                    .collect();
                listed.sort_unstable();
                assert_eq!(listed, expected, "node {} lists {subject}'s records", n + 1);
            }
        }
    }

    // The audit log: one sequence (1..=n: no gap, no duplicate, whichever node appended),
    // every acknowledged create audited once, and `audit verify` passes against the pinned key
    // and every node's checkpoint log (each node signs and publishes the checkpoints it makes).
    drop(admin);
    for node in nodes {
        node.terminate();
    }
    let (seqs, audited_creates) = audit_sequence(&database).await;
    let n = i64::try_from(seqs.len()).expect("a count");
    assert!(
        n > i64::try_from(created).expect("a count"),
        "the log holds {n} entries"
    );
    if let Some((i, pair)) = seqs.windows(2).enumerate().find(|(_, p)| p[1] != p[0] + 1) {
        panic!(
            "the audit sequence is not contiguous: {} follows {} (entry {} of {n})",
            pair[1],
            pair[0],
            i + 2
        );
    }
    assert_eq!(
        (seqs.first().copied(), seqs.last().copied()),
        (Some(1), Some(n)),
        "the audit sequence runs from 1 to its length"
    );
    assert_eq!(
        audited_creates,
        i64::try_from(created).expect("a count"),
        "every acknowledged create is audited once"
    );
    let logs: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("audit-checkpoints.log"))
        .filter(|p| p.exists())
        .collect();
    assert!(!logs.is_empty(), "no node published a checkpoint");
    let mut verify = custodia();
    verify
        .args(["audit", "verify", "--public-key", &vault.audit_key, "--data-dir"])
        .arg(vault.path())
        .args(["--database-url", &database]);
    for log in &logs {
        verify.arg("--trusted-checkpoint").arg(log);
    }
    let out = verify.output().expect("run audit verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "audit verify of the shared log: {text}");
    assert!(
        text.contains(&format!("audit log intact: {n} entries")),
        "audit verify covered every entry: {text}"
    );
    eprintln!(
        "three nodes: {n} audit entries, {} checkpoint logs, {:?} in all",
        logs.len(),
        started.elapsed()
    );
}
