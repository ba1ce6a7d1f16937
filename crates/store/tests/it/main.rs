//! The store conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `CUSTODIA_TEST_POSTGRES_URL` names a server (`.ci/run` starts one; under `CI=true` a
//! missing server is a failure, not a skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod conformance;

use std::sync::Arc;

use custodia_store::{PostgresStore, SqliteStore, Store};

/// Keeps a backend's scratch space alive for the length of a test.
enum Scratch {
    Dir(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    None,
}

async fn sqlite() -> (Arc<dyn Store>, Scratch) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("custodia.db")).await.unwrap();
    (Arc::new(store), Scratch::Dir(dir))
}

/// A fresh database on the test PostgreSQL server, or `None` (skip) when there is none.
async fn postgres() -> Option<(Arc<dyn Store>, Scratch)> {
    let Ok(url) = std::env::var("CUSTODIA_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI is set but CUSTODIA_TEST_POSTGRES_URL is not: the PostgreSQL suite must run in CI"
        );
        eprintln!("skipping PostgreSQL conformance: CUSTODIA_TEST_POSTGRES_URL is not set");
        return None;
    };
    let db = format!("custodia_test_{}", custodia_store_test_id());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    let store = PostgresStore::connect(&format!("{base}/{db}")).await.unwrap();
    Some((Arc::new(store), Scratch::None))
}

fn custodia_store_test_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

macro_rules! conformance_suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (store, _scratch) = super::sqlite().await;
                    assert_eq!(store.backend(), "sqlite");
                    super::conformance::$check(&*store).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some((store, _scratch)) = super::postgres().await else { return };
                    assert_eq!(store.backend(), "postgres");
                    super::conformance::$check(&*store).await;
                }
            )*
        }
    };
}

conformance_suite!(
    meta_is_set_once,
    subject_key_first_writer_wins,
    record_round_trip_and_order,
    records_are_scoped_to_subject_and_collection,
    update_sets_removes_and_reindexes,
    delete_removes_fields_and_index,
    failed_insert_leaves_nothing,
    principals_lifecycle,
    concurrent_writers_all_land,
    racing_first_writes_keep_one_key,
    one_bad_record_fails_alone,
    ledger_appends_in_order_and_refuses_changes,
    audit_entries_land_with_their_writes,
    tokens_and_subject_keys,
    checkpoints_are_stored_once_per_size,
);

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custodia.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.insert_meta("k", b"v").await.unwrap());
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

/// The ledger is append-only in the schema itself, not only in the code that uses it.
#[tokio::test]
async fn sqlite_ledger_and_audit_rows_cannot_be_changed_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custodia.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let entry = custodia_store::LedgerRow {
        seq: 0,
        subject_id: "s1".into(),
        kind: "consent".into(),
        purpose: Some("p".into()),
        value: true,
        notice_version: None,
        method: "api".into(),
        evidence: None,
        principal_id: "p1".into(),
        at: 1,
    };
    store.append_ledger(&entry, None).await.unwrap();
    store
        .append_audit(&[custodia_store::AuditRow {
            seq: 0,
            leaf: vec![7; 32],
            at: 1,
            entry: "{}".into(),
        }])
        .await
        .unwrap();
    drop(store);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let update = sqlx::query("UPDATE subject_ledger SET value = 0").execute(&pool).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM subject_ledger").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    for sql in ["UPDATE audit_log SET entry = 'x'", "DELETE FROM audit_log"] {
        let refused = sqlx::query(sql).execute(&pool).await;
        assert!(refused.unwrap_err().to_string().contains("append-only"), "{sql}");
    }
}

/// `secure_delete` is on: a deleted value's bytes do not linger in free pages of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deleted_ciphertext_does_not_linger_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custodia.db");
    let canary = b"CANARY-CIPHERTEXT-7f3a9c-should-be-gone".to_vec();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        let record = custodia_store::NewRecord {
            subject_key: Some(custodia_store::SubjectKeyRow {
                subject_id: "s1".into(),
                key_version: 1,
                wrapped_key: vec![1],
                created_at: 1,
            }),
            audit: None,
            record_id: "r1".into(),
            subject_id: "s1".into(),
            collection: "customers".into(),
            now: 1,
            fields: vec![custodia_store::FieldValue {
                field: "name".into(),
                ciphertext: canary.clone(),
                purpose: "p".into(),
            }],
            index: vec![],
        };
        store.insert_record(&record).await.unwrap();
        assert!(store.delete_record("s1", "customers", "r1", None).await.unwrap());
    }
    // Fold the WAL into the file, as the server's checkpoints do.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_slice()),
            "deleted bytes are still in the file"
        );
    }
}
