//! The store conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `CUSTODIA_TEST_POSTGRES_URL` names a server (`.ci/run` starts one; under `CI=true` a
//! missing server is a failure, not a skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod conformance;
mod ops;
mod schema;

use custodia_store::Store;

/// A database for one test; keeps its scratch space alive for the length of the test.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

pub fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}", dir.path().join("custodia.db").display()),
        _dir: Some(dir),
    }
}

/// A fresh database on the test PostgreSQL server, or `None` (skip) when there is none.
pub async fn postgres_db() -> Option<Db> {
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
    Some(Db {
        url: format!("{base}/{db}"),
        _dir: None,
    })
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

/// Runs each check against a fresh database of every backend. Checks take the `Db` (those
/// that reopen it, or open it twice) or the opened `&Store`.
macro_rules! backend_suite {
    ($module:ident: $($check:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = crate::sqlite_db();
                    super::$module::$check(&db).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(db) = crate::postgres_db().await else { return };
                    super::$module::$check(&db).await;
                }
            )*
        }
    };
}

/// Adapts a check on an opened store to [`backend_suite`].
macro_rules! on_store {
    ($($check:ident),* $(,)?) => {
        mod opened {
            $(
                pub async fn $check(db: &crate::Db) {
                    let store = db.open().await;
                    super::conformance::$check(&store).await;
                }
            )*
        }
        backend_suite!(opened: $($check),*);
    };
}

on_store!(
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
    a_failed_job_rolls_back_everything_it_did,
    a_write_under_a_destroyed_key_fails,
    audit_queries_use_the_indexed_columns,
);

mod db_checks {
    use crate::schema as on_db;

    backend_suite!(on_db:
        reopen_keeps_data_and_schema,
        append_only_tables_refuse_changes_in_the_schema_itself,
        a_newer_schema_is_refused_untouched,
        upgrade_from_v0_1_fills_the_new_columns,
        two_stores_on_one_database_number_audit_entries_in_commit_order,
        only_one_node_leads_a_job_at_a_time,
        committed_changes_are_announced_to_every_node,
    );
}

/// `secure_delete` is on: a deleted value's bytes do not linger in free pages of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deleted_ciphertext_does_not_linger_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custodia.db");
    let canary = b"CANARY-CIPHERTEXT-7f3a9c-should-be-gone".to_vec();
    {
        let store = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
        let record = custodia_store::NewRecord {
            fresh_key: true,
            sealed_under: custodia_store::SubjectKeyRow {
                subject_id: "s1".into(),
                key_class: custodia_store::DEFAULT_KEY_CLASS.into(),
                key_version: 1,
                wrapped_key: vec![1],
                created_at: 1,
            },
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
        ops::insert_record(&store, &record).await.unwrap();
        assert!(ops::delete_record(&store, "s1", "customers", "r1", None).await.unwrap());
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
