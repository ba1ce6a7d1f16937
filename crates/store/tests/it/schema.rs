//! Promises of the schema itself and of several stores on one database: append-only tables,
//! the upgrade path from v0.1's schema, refusal of a newer schema, audit sequencing across
//! nodes, job leadership.

use custodia_store::{AuditColumns, AuditRow, Change, Dialect, LedgerRow, SCHEMA_VERSION, Store, StoreError};

use crate::Db;
use crate::ops;

/// Runs SQL on the database behind the store's back (as someone with the database would).
async fn raw(db: &Db, sql: &str) -> Result<(), String> {
    if db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let out = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
        pool.close().await;
        out
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let out = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
        pool.close().await;
        out
    }
}

fn ledger_entry(subject: &str) -> LedgerRow {
    LedgerRow {
        seq: 0,
        subject_id: subject.into(),
        kind: "consent".into(),
        purpose: Some("p".into()),
        value: true,
        notice_version: None,
        method: "api".into(),
        evidence: None,
        principal_id: "p1".into(),
        at: 1,
    }
}

fn audit(n: i64, principal: &str) -> AuditRow {
    AuditRow {
        seq: 0,
        at: n,
        entry: format!("{{\"n\":{n}}}"),
        leaf: vec![7; 32],
        index: AuditColumns {
            principal: Some(principal.into()),
            action: Some("record.read".into()),
            decision: Some("allow".into()),
            purpose: None,
            subject: None,
        },
        link: None,
        metric: None,
    }
}

pub async fn reopen_keeps_data_and_schema(db: &Db) {
    {
        let store = db.open().await;
        assert!(ops::insert_meta(&store, "k", b"v").await.unwrap());
    }
    let store = db.open().await;
    assert_eq!(ops::get_meta(&store, "k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

/// The ledger, the audit log and its checkpoints are append-only in the schema itself, not
/// only in the code that uses it: UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused.
pub async fn append_only_tables_refuse_changes_in_the_schema_itself(db: &Db) {
    let store = db.open().await;
    ops::append_ledger(&store, &ledger_entry("s1"), None).await.unwrap();
    ops::append_audit(&store, &[audit(1, "p1")]).await.unwrap();
    ops::insert_checkpoint(
        &store,
        &custodia_store::CheckpointRow {
            tree_size: 1,
            root: vec![1; 32],
            at: 1,
            note: "n".into(),
        },
    )
    .await
    .unwrap();
    notification_attempt(&store).await;
    let notice = custodia_store::NoticeRow {
        version: "sha256-1".into(),
        language: "en".into(),
        published_at: 1,
        notice: "{}".into(),
        html: "<p>".into(),
    };
    store
        .write(move |mut tx| Box::pin(async move { tx.notices().publish(&notice).await }))
        .await
        .unwrap();
    let entry = custodia_store::IncidentEntryRow {
        entry_id: 0,
        incident_id: "inc_1".into(),
        at: 1,
        by_principal: "p1".into(),
        kind: "note".into(),
        sealed: vec![1],
    };
    let incident = custodia_store::IncidentRow {
        incident_id: "inc_1".into(),
        opened_at: 1,
        opened_by: "p1".into(),
        aware_at: 1,
        sealed: vec![1],
        phase: "detect".into(),
        risk: "unassessed".into(),
        updated_at: 1,
        tally: None,
    };
    store
        .write(move |mut tx| {
            Box::pin(async move {
                tx.incidents().insert(&incident).await?;
                tx.incidents().append(&entry).await
            })
        })
        .await
        .unwrap();
    let dialect = store.dialect();
    drop(store);
    let mut refused = vec![
        "UPDATE notification_attempts SET outcome = 'delivered'",
        "DELETE FROM notification_attempts",
        "UPDATE subject_ledger SET value = 0",
        "DELETE FROM subject_ledger",
        "UPDATE audit_log SET entry = 'x'",
        "UPDATE audit_log SET principal = 'someone else'",
        "DELETE FROM audit_log",
        "UPDATE audit_checkpoints SET note = 'x'",
        "DELETE FROM audit_checkpoints",
        "UPDATE notices SET html = '<p>changed'",
        "DELETE FROM notices",
        "UPDATE incident_entries SET kind = 'x'",
        "DELETE FROM incident_entries",
    ];
    if dialect == Dialect::Postgres {
        refused.extend([
            "TRUNCATE subject_ledger",
            "TRUNCATE audit_log",
            "TRUNCATE audit_checkpoints",
            "TRUNCATE notification_attempts",
            "TRUNCATE notices",
            "TRUNCATE incident_entries",
        ]);
    }
    let mut never_deleted = vec![
        "DELETE FROM incidents",
        "UPDATE incidents SET incident_id = 'inc_x'",
        "UPDATE incidents SET aware_at = aware_at + 1",
    ];
    if dialect == Dialect::Postgres {
        never_deleted.push("TRUNCATE incidents");
    }
    for sql in never_deleted {
        let err = raw(db, sql).await.expect_err(sql);
        assert!(err.contains("incidents are never deleted"), "{sql}: {err}");
    }
    raw(db, "UPDATE incidents SET phase = 'contain', risk = 'risk'")
        .await
        .expect("the phase and risk columns move");
    for sql in refused {
        let err = raw(db, sql).await.expect_err(sql);
        // The table is the word after UPDATE or TRUNCATE, or after DELETE FROM.
        let words: Vec<&str> = sql.split_whitespace().collect();
        let table = if words[0] == "DELETE" { words[2] } else { words[1] };
        assert!(err.contains(&format!("{table} is append-only")), "{sql}: {err}");
    }
    let store = db.open().await;
    assert_eq!(ops::ledger(&store, "s1").await.unwrap().len(), 1);
    assert_eq!(ops::audit_entries(&store, 0, 10).await.unwrap().len(), 1);
}

pub async fn a_newer_schema_is_refused_untouched(db: &Db) {
    drop(Store::open_at_version(&db.url, 5).await.unwrap());
    raw(db, "INSERT INTO schema_version (version) VALUES (999)")
        .await
        .unwrap();
    let err = Store::open(&db.url).await.unwrap_err();
    assert!(matches!(err, StoreError::Schema(_)), "{err:?}");
    assert!(err.to_string().contains("999"), "{err}");
    assert!(
        raw(db, "SELECT principal FROM audit_log").await.is_err(),
        "no step after version 5 was applied"
    );
}

/// A database as v0.1 left it (schema version 5, its rows) opens, is migrated in place, and
/// keeps its data: keys become default-class keys, audit entries get their indexed columns.
pub async fn upgrade_from_v0_1_fills_the_new_columns(db: &Db) {
    drop(Store::open_at_version(&db.url, 5).await.unwrap());
    let blob = |hex: &str| {
        if db.url.starts_with("postgres") {
            format!("'\\x{hex}'::bytea")
        } else {
            format!("X'{hex}'")
        }
    };
    let v01 = format!(
        "INSERT INTO subject_keys (subject_id, key_version, wrapped_key, created_at) VALUES ('s1', 1, {k}, 10);
         INSERT INTO records (record_id, subject_id, collection, created_at, updated_at) VALUES ('r1', 's1', 'customers', 10, 10);
         INSERT INTO record_fields (record_id, field, ciphertext, purpose, updated_at) VALUES ('r1', 'email', {ct}, 'p', 10);
         INSERT INTO principals (principal_id, name, roles, key_id, key_hash, created_at) VALUES ('prn_1', 'svc', 'admin', 'k1', {k}, 10);
         INSERT INTO audit_log (at, entry, leaf) VALUES (10, '{{\"v\":1,\"at\":10,\"principal\":\"prn_1\",\"action\":\"record.create\",\"decision\":\"allow\",\"reason\":null,\"purpose\":\"p\",\"collection\":\"customers\",\"subject\":\"abcd\",\"fields\":[\"email\"]}}', {leaf});
         INSERT INTO audit_log (at, entry, leaf) VALUES (11, '{{\"v\":1,\"at\":11,\"principal\":\"prn_2\",\"action\":\"audit.read\",\"decision\":\"deny\",\"reason\":\"not_allowed\",\"purpose\":null,\"collection\":null,\"subject\":null,\"fields\":[]}}', {leaf});
         INSERT INTO tokens (token, subject_id, collection, field, kind, ciphertext, created_at) VALUES ('Jv', 's1', 'customers', 'name', 'format_preserving', {ct}, 10);
         INSERT INTO tokens (token, subject_id, collection, field, kind, ciphertext, created_at) VALUES ('Jv', 's2', 'customers', 'name', 'format_preserving', {leaf}, 10);",
        k = blob("0102"),
        ct = blob("0a0b"),
        leaf = blob("00"),
    );
    raw(db, &v01).await.unwrap();
    let store = db.open().await;
    let key = ops::subject_key(&store, "s1").await.unwrap().unwrap();
    assert_eq!(
        (key.key_class.as_str(), key.wrapped_key.as_slice()),
        ("default", &[1u8, 2][..])
    );
    let rec = ops::record(&store, "s1", "customers", "r1").await.unwrap().unwrap();
    assert_eq!(rec.records[0].fields[0].ciphertext, [10, 11]);
    assert_eq!(rec.records[0].fields[0].key_class, "default");
    // The binding the upgrade made carries no seal: no purpose may use the value until the
    // vault's start told to seals the bindings from before (schema version 24).
    assert!(
        rec.records[0].fields[0].bindings.is_empty(),
        "{:?}",
        rec.records[0].fields[0]
    );
    let pending = store
        .reader()
        .await
        .unwrap()
        .meta()
        .get(custodia_store::BINDING_SEALS_PENDING)
        .await
        .unwrap();
    assert_eq!(pending.as_deref(), Some(&[1u8][..]));
    let sealed = store
        .write(|mut tx| Box::pin(async move { tx.records().seal_unsealed_bindings(&crate::TestSeal).await }))
        .await
        .unwrap();
    assert_eq!(sealed, 1);
    let rec = ops::record(&store, "s1", "customers", "r1").await.unwrap().unwrap();
    assert_eq!(
        rec.records[0].fields[0].bindings,
        [custodia_store::Binding {
            purpose: "p".into(),
            bound_at: 10,
            renewed_at: 10,
            ended_at: None,
            expires_at: None,
        }],
        "the field's one purpose becomes its binding, from its last write (times computed by the core)"
    );
    let principal = ops::principal_by_key_id(&store, "k1").await.unwrap().unwrap();
    assert_eq!(
        principal.expires_at, None,
        "keys issued before expiry existed never expire"
    );
    let entries = ops::audit_entries(&store, 0, 10).await.unwrap();
    let columns: Vec<_> = entries.iter().map(|e| e.index.clone()).collect();
    assert_eq!(
        columns,
        [
            AuditColumns {
                principal: Some("prn_1".into()),
                action: Some("record.create".into()),
                decision: Some("allow".into()),
                purpose: Some("p".into()),
                subject: Some("abcd".into()),
            },
            AuditColumns {
                principal: Some("prn_2".into()),
                action: Some("audit.read".into()),
                decision: Some("deny".into()),
                purpose: None,
                subject: None,
            },
        ]
    );
    let found = store
        .reader()
        .await
        .unwrap()
        .audit()
        .query(
            &custodia_store::AuditQuery {
                subjects: vec!["abcd".into()],
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    // Tokens issued before version 8 stay readable, every row of a token (the caller tells
    // a token two subjects' values shared from one that was never issued twice).
    let mut v1 = ops::tokens_v1(&store, &["Jv".into(), "nope".into()]).await.unwrap();
    v1.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
    let v1: Vec<_> = v1
        .iter()
        .map(|r| {
            (
                r.name.as_slice(),
                r.subject_id.as_str(),
                r.ciphertext.as_slice(),
                r.binding.is_none(),
            )
        })
        .collect();
    assert_eq!(
        v1,
        [
            (&b"Jv"[..], "s1", &[10u8, 11][..], true),
            (&b"Jv"[..], "s2", &[0u8][..], true)
        ]
    );
    assert!(
        ops::tokens(&store, &[b"Jv".to_vec()]).await.unwrap().is_empty(),
        "not in the new tables"
    );
    // The rows that grant access are tallied, and training completions sealed, by the vault
    // at its next start (it holds the key).
    for mark in [custodia_store::ACCESS_PENDING, custodia_store::TRAINING_SEALS_PENDING] {
        let pending = store.reader().await.unwrap().meta().get(mark).await.unwrap();
        assert_eq!(pending.as_deref(), Some(&[1u8][..]), "{mark}");
    }
    // The guard lifted for the backfill is back.
    drop(store);
    let err = raw(db, "UPDATE audit_log SET principal = 'x'").await.unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(SCHEMA_VERSION, 25, "this test builds the database of schema version 5");
}

/// Two stores (two server nodes) appending at once: an entry never becomes visible with a
/// number below one a reader has already seen, so a checkpoint of what is visible can never
/// be overtaken.
pub async fn two_stores_on_one_database_number_audit_entries_in_commit_order(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    let writers = |store: Store, who: &'static str| {
        tokio::spawn(async move {
            for i in 0..60 {
                store.append_audit(vec![audit(i, who), audit(i, who)]).await.unwrap();
            }
        })
    };
    let (wa, wb) = (writers(a, "a"), writers(b, "b"));
    let observer = db.open().await;
    let mut seen = std::collections::BTreeSet::new();
    let mut max_seen = 0;
    loop {
        let done = wa.is_finished() && wb.is_finished();
        let now: Vec<i64> = ops::audit_entries(&observer, 0, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        for seq in &now {
            assert!(
                *seq > max_seen || seen.contains(seq),
                "entry {seq} appeared after entry {max_seen} was already visible"
            );
        }
        seen.extend(now.iter().copied());
        max_seen = now.last().copied().unwrap_or(0).max(max_seen);
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    wa.await.unwrap();
    wb.await.unwrap();
    assert_eq!(seen.len(), 240);
    // two nodes appending at once: each entry linked to the one committed before it
    crate::assert_links_chain(&ops::audit_entries(&observer, 0, 100_000).await.unwrap());
}

/// On PostgreSQL one node at a time runs a given job; another job runs beside it. On SQLite
/// the one process always leads.
pub async fn only_one_node_leads_a_job_at_a_time(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = tokio::spawn(async move {
        a.exclusively("checkpoint", async move {
            started_tx.send(()).unwrap();
            go_rx.await.unwrap();
            "a ran"
        })
        .await
        .unwrap()
    });
    started_rx.await.unwrap();
    let other = b.exclusively("checkpoint", async { "b ran" }).await.unwrap();
    let beside = b.exclusively("sweeper", async { "b ran the sweeper" }).await.unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), Some("a ran"));
    assert_eq!(beside, Some("b ran the sweeper"));
    match b.dialect() {
        Dialect::Postgres => {
            assert_eq!(other, None, "a second node must not run a job another node runs");
            assert_eq!(
                b.exclusively("checkpoint", async { "b ran" }).await.unwrap(),
                Some("b ran"),
                "once the leader is done, another node may lead"
            );
        }
        Dialect::Sqlite => assert_eq!(other, Some("b ran")),
    }
}

/// Every table of the migrated schema has a grant decision for the service role (a table
/// added without one fails here, and granting refuses it), and every append-only table the
/// schema declares refuses TRUNCATE on PostgreSQL by its own trigger, even to its owner.
pub async fn every_table_has_a_service_grant_decision(db: &Db) {
    let store = db.open().await;
    let grants = store.service_grants().await.unwrap();
    for table in [
        "audit_log",
        "subject_ledger",
        "audit_checkpoints",
        "records",
        "schema_version",
    ] {
        assert!(grants.iter().any(|g| g.table == table), "{table} is decided");
    }
    for table in ["audit_log", "subject_ledger", "audit_checkpoints"] {
        assert!(
            grants.iter().any(|g| g.table == table && g.append_only),
            "{table} is append-only"
        );
    }
    let dialect = store.dialect();
    drop(store);
    if dialect == Dialect::Postgres {
        for grant in grants.iter().filter(|g| g.append_only) {
            let err = raw(db, &format!("TRUNCATE {}", grant.table)).await.unwrap_err();
            assert!(err.contains(&format!("{} is append-only", grant.table)), "{err}");
        }
    }
}

/// Ledger appends and principal revocations are announced to every node listening, when (and
/// only if) their transaction commits; SQLite, with one process, has no announcements.
pub async fn committed_changes_are_announced_to_every_node(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    let Some(mut changes) = b.changes().await.unwrap() else {
        assert_eq!(b.dialect(), Dialect::Sqlite);
        return;
    };
    // Rolled back: never announced.
    let entry = ledger_entry("rolled_back");
    let failed = a
        .write(move |mut tx| {
            Box::pin(async move {
                tx.ledger().append(&entry, &crate::TestSeal).await?;
                Err::<(), _>(StoreError::Conflict("rolled back".into()))
            })
        })
        .await;
    assert!(failed.is_err());
    ops::append_ledger(&a, &ledger_entry("s1"), None).await.unwrap();
    assert_eq!(changes.next().await, Change::Ledger("s1".into()));
    let principal = custodia_store::PrincipalRow {
        principal_id: "p1".into(),
        name: "svc".into(),
        roles: vec!["r".into()],
        key_id: "k1".into(),
        key_hash: vec![1; 32],
        created_at: 1,
        revoked_at: None,
        expires_at: None,
        last_used_at: None,
        created_by: None,
        client_cert: None,
        seal: None,
    };
    ops::insert_principal(&a, &principal, None).await.unwrap();
    assert!(ops::revoke_principal(&a, "p1", 2, None).await.unwrap());
    assert_eq!(changes.next().await, Change::Principal("p1".into()));
}

/// A notification and one logged attempt at delivering it.
async fn notification_attempt(store: &Store) {
    store
        .write(|mut tx| {
            Box::pin(async move {
                let ids = tx
                    .notifications()
                    .enqueue(&[custodia_store::NewNotification {
                        request_id: "req_1".into(),
                        recipient: "r".into(),
                        action: "erasure".into(),
                        payload: Some("{}".into()),
                        state: custodia_store::DeliveryState::Pending,
                        created_at: 1,
                    }])
                    .await?;
                let attempt = custodia_store::DeliveryAttempt {
                    notification_id: ids[0],
                    at: 2,
                    outcome: "timeout".into(),
                    http_status: None,
                    state: custodia_store::DeliveryState::Pending,
                    next_attempt_at: Some(3),
                    error: Some("timeout".into()),
                };
                tx.notifications().record_attempt(&attempt).await.map(drop)
            })
        })
        .await
        .unwrap();
}

/// Under sustained writes with readers always busy, the write-ahead log stays bounded: the
/// writer restarts it once it passes its limit (64 MiB), and SQLite truncates the file back.
/// Without that, the background checkpoints copy the log but it never starts over, and the
/// file grows by everything written (here about 140 MB).
pub async fn the_write_ahead_log_stays_bounded_under_sustained_reads_and_writes(db: &Db) {
    const LIMIT: u64 = 64 << 20;
    const BATCHES: i64 = 280;
    const ROWS: i64 = 500;
    let store = std::sync::Arc::new(db.open().await);
    let wal = format!("{}-wal", db.url.trim_start_matches("sqlite://"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (store, stop) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&stop));
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ops::audit_entries(&store, 0, 5).await.unwrap();
                reads += 1;
            }
            reads
        }));
    }
    let padding = "x".repeat(900);
    let mut largest = 0;
    for b in 0..BATCHES {
        let rows: Vec<AuditRow> = (0..ROWS)
            .map(|i| AuditRow {
                entry: format!("{{\"n\":{},\"pad\":\"{padding}\"}}", b * ROWS + i),
                ..audit(b * ROWS + i, "p1")
            })
            .collect();
        ops::append_audit(&store, &rows).await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 0, "the readers ran");
    // The limit, plus a batch, plus a few restarts that readers held off (each lets the log
    // grow 4 MiB more before the next try) on a loaded machine.
    assert!(
        largest <= LIMIT + (24 << 20),
        "the write-ahead log reached {largest} bytes (limit {LIMIT})"
    );
    let last = ops::audit_entries(&store, BATCHES * ROWS - 1, 5).await.unwrap();
    assert_eq!(last.len(), 1, "every entry is there");
}

/// A consent recorded for a subject with no key (no data, only ledger entries) while another
/// node's erasure holds the subject locked waits for the erasure, so the erasure's read of
/// the ledger cannot miss it (there is no key row to lock).
pub async fn a_ledger_entry_waits_for_the_erasure_of_a_subject_without_keys(db: &Db) {
    use custodia_store::KeyLock;
    let (a, b) = (std::sync::Arc::new(db.open().await), db.open().await);
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let erasure = {
        let a = std::sync::Arc::clone(&a);
        tokio::spawn(async move {
            a.write(move |mut tx| {
                Box::pin(async move {
                    tx.subjects().lock_keys("nokey", KeyLock::Update).await?;
                    let _ = locked_tx.send(());
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    // what the erasure reads last: the ledger, with nothing in it yet
                    let seen = tx.ledger().of_subject("nokey", &crate::TestSeal).await?.len();
                    Ok((seen, std::time::Instant::now()))
                })
            })
            .await
        })
    };
    locked_rx.await.unwrap();
    let entry = custodia_store::LedgerRow {
        seq: 0,
        subject_id: "nokey".into(),
        kind: "consent".into(),
        purpose: Some("marketing_email".into()),
        value: true,
        notice_version: Some("v3".into()),
        method: "web_form".into(),
        evidence: None,
        principal_id: "p1".into(),
        at: 1,
    };
    b.write(move |mut tx| Box::pin(async move { tx.ledger().append(&entry, &crate::TestSeal).await }))
        .await
        .unwrap();
    let appended = std::time::Instant::now();
    let (seen, erased) = erasure.await.unwrap().unwrap();
    assert_eq!(seen, 0);
    assert!(appended >= erased, "the entry waited for the erasure's transaction");
}

/// A write sealing under a subject's key while another node's erasure holds that key locked
/// waits for the erasure, then finds the key destroyed and writes nothing (on PostgreSQL its
/// check read the key unlocked and committed a record no key opens); both record paths.
pub async fn a_write_waits_for_the_erasure_that_locked_its_key(db: &Db) {
    use custodia_store::KeyLock;
    let (a, b) = (std::sync::Arc::new(db.open().await), db.open().await);
    let first = crate::conformance::new_record("r1", "s9", 1);
    ops::insert_record(&a, &first).await.unwrap();
    for (n, batched) in [(2, true), (3, false)] {
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let erasure = {
            let a = std::sync::Arc::clone(&a);
            tokio::spawn(async move {
                a.write(move |mut tx| {
                    Box::pin(async move {
                        tx.subjects().lock_keys("s9", KeyLock::Update).await?;
                        let _ = locked_tx.send(());
                        // the racing write runs meanwhile
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        tx.subjects().destroy_key("s9", "default").await?;
                        Ok(())
                    })
                })
                .await
            })
        };
        locked_rx.await.unwrap();
        let mut late = crate::conformance::new_record(&format!("r{n}"), "s9", n);
        late.fresh_key = false;
        let written = if batched {
            ops::insert_record(&b, &late).await
        } else {
            ops::insert_record_job(&b, &late).await
        };
        erasure.await.unwrap().unwrap();
        assert!(matches!(written, Err(StoreError::SubjectKeyConflict)), "{written:?}");
        assert!(
            ops::record(&b, "s9", "customers", &format!("r{n}"))
                .await
                .unwrap()
                .is_none_or(|r| r.records.is_empty()),
            "nothing written under the destroyed key"
        );
        // the subject back, for the second path
        ops::insert_record(&a, &crate::conformance::new_record(&format!("back{n}"), "s9", 9))
            .await
            .unwrap();
    }
}

/// The bindings of `r1`'s fields as a read a purpose's use goes by returns them, and as
/// stored (what the sweeper reads): `(field, purpose)` each.
async fn bindings_of_r1(store: &Store) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let rec = ops::record(store, "s1", "customers", "r1").await.unwrap().unwrap();
    let read: Vec<(String, String)> = rec.records[0]
        .fields
        .iter()
        .flat_map(|f| f.bindings.iter().map(|b| (f.field.clone(), b.purpose.clone())))
        .collect();
    let mut reader = store.reader().await.unwrap();
    let sealed: Vec<(String, String)> = reader
        .retention()
        .of_records(&["r1"], custodia_store::BindingRows::Sealed)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.field, v.binding.purpose))
        .collect();
    assert_eq!(read, sealed, "a record's read and a search see the same bindings");
    let stored = reader
        .retention()
        .of_records(&["r1"], custodia_store::BindingRows::AsStored)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.field, v.binding.purpose))
        .collect();
    (read, stored)
}

/// Whoever can write the database gives a purpose a value it was never collected for: a
/// binding inserted by hand (with no seal, or with the seal of another binding copied in) is
/// no binding to the reads a purpose's use goes by, nor is one whose collection or renewal
/// time was moved by hand (to keep a value past its rule); the sweeper still reads every row
/// as stored, to end and delete them. A store the vault has not given its sealer writes none.
pub async fn a_binding_written_or_changed_by_hand_is_no_binding(db: &Db) {
    let bare = Store::open(&db.url).await.unwrap();
    bare.link_audit_with(std::sync::Arc::new(crate::test_link_key()));
    let refused = ops::insert_record(&bare, &crate::conformance::new_record("r0", "s0", 1)).await;
    assert!(
        matches!(&refused, Err(StoreError::Backend(m)) if m.contains("sealer")),
        "{refused:?}"
    );
    drop(bare);
    let store = db.open().await;
    ops::insert_record(&store, &crate::conformance::new_record("r1", "s1", 1))
        .await
        .unwrap();
    let p = |f: &str, p: &str| (f.to_owned(), p.to_owned());
    let written = vec![p("email", "p"), p("name", "p")];
    assert_eq!(bindings_of_r1(&store).await, (written.clone(), written.clone()));

    raw(
        db,
        "INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at) \
         VALUES ('r1', 'email', 'q', 's1', 'customers', 1, 1); \
         INSERT INTO field_bindings (record_id, field, purpose, subject_id, collection, bound_at, renewed_at, seal) \
         SELECT record_id, field, 'z', subject_id, collection, bound_at, renewed_at, seal FROM field_bindings \
         WHERE record_id = 'r1' AND field = 'name' AND purpose = 'p';",
    )
    .await
    .unwrap();
    let (read, stored) = bindings_of_r1(&store).await;
    assert_eq!(
        read, written,
        "neither a binding without a seal nor one with another's counts"
    );
    assert_eq!(
        stored,
        [p("email", "p"), p("email", "q"), p("name", "p"), p("name", "z")]
    );

    raw(
        db,
        "UPDATE field_bindings SET renewed_at = renewed_at + 1 WHERE field = 'email' AND purpose = 'p'; \
         UPDATE field_bindings SET bound_at = 5 WHERE field = 'name' AND purpose = 'p';",
    )
    .await
    .unwrap();
    let (read, _) = bindings_of_r1(&store).await;
    assert!(read.is_empty(), "times moved by hand: {read:?}");
    // the times the sweeper rewrites in bulk are not sealed: moved back, the bindings count again
    raw(
        db,
        "UPDATE field_bindings SET renewed_at = renewed_at - 1 WHERE field = 'email' AND purpose = 'p'; \
         UPDATE field_bindings SET bound_at = 0, expires_at = 99, ended_at = 5 WHERE field = 'name' AND purpose = 'p';",
    )
    .await
    .unwrap();
    assert_eq!(bindings_of_r1(&store).await.0, written);

    // The seal covers the value's bytes. A correction (new bytes, same bindings) and a
    // renewal keep them counting: the store seals them again.
    let value = |field: &str, bytes: &[u8], purpose: Option<&str>| custodia_store::FieldValue {
        field: field.into(),
        ciphertext: bytes.to_vec(),
        key_class: "default".into(),
        binding: purpose.map(|p| custodia_store::Binding {
            purpose: p.into(),
            bound_at: 7,
            renewed_at: 7,
            ended_at: None,
            expires_at: None,
        }),
    };
    let corrected = custodia_store::RecordPatch {
        now: 7,
        set: vec![value("name", b"ct-name-corrected", None)],
        renew: vec![custodia_store::Renewal {
            field: "email".into(),
            binding: custodia_store::Binding {
                purpose: "p".into(),
                bound_at: 1,
                renewed_at: 7,
                ended_at: None,
                expires_at: None,
            },
            value: b"ct-email-resealed".to_vec(),
            resealed: Some("default".into()),
        }],
        ..custodia_store::RecordPatch::default()
    };
    assert!(
        ops::update_record(&store, "s1", "customers", "r1", &corrected)
            .await
            .unwrap()
    );
    assert_eq!(
        bindings_of_r1(&store).await.0,
        written,
        "corrected and resealed values stay bound"
    );
    // A new value for purpose `n` ends `p`'s binding of the field (`p` never collected it);
    // `p`'s row put back by hand, with the seal it carried, opens nothing.
    raw(
        db,
        "CREATE TABLE saved_binding AS SELECT * FROM field_bindings WHERE field = 'email' AND purpose = 'p'",
    )
    .await
    .unwrap();
    let new_value = custodia_store::RecordPatch {
        now: 8,
        set: vec![value("email", b"ct-email-new", Some("n"))],
        ..custodia_store::RecordPatch::default()
    };
    assert!(
        ops::update_record(&store, "s1", "customers", "r1", &new_value)
            .await
            .unwrap()
    );
    raw(db, "INSERT INTO field_bindings SELECT * FROM saved_binding")
        .await
        .unwrap();
    let (read, stored) = bindings_of_r1(&store).await;
    assert_eq!(read, [p("email", "n"), p("name", "p")]);
    assert!(stored.contains(&p("email", "p")), "{stored:?}");
}
