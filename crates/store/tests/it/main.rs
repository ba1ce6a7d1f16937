//! The store conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `CUSTODIA_TEST_POSTGRES_URL` names a server (`.ci/run` starts one; under `CI=true` a
//! missing server is a failure, not a skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod conformance;
mod ops;
mod roles;
mod schema;

use custodia_store::Store;

/// A database for one test; keeps its scratch space alive for the length of the test.
pub struct Db {
    pub url: String,
    /// When `url` logs in as the service role: the URL of the owner role, which migrated
    /// the schema and granted the service role its privileges.
    pub owner_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    /// The store, ready to append audit entries (linked with [`test_link_key`]).
    pub async fn open(&self) -> Store {
        linked(Store::open(&self.url).await.unwrap())
    }
}

/// What seals ledger entries in these tests (a vault seals with an HMAC under a key of its
/// own): SHA-256 over a key and the message, which no one without the key makes.
pub struct TestSeal;

impl custodia_store::Sealer for TestSeal {
    fn seal(&self, message: &[u8]) -> Vec<u8> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"test ledger seal key");
        ctx.update(message);
        ctx.finish().as_ref().to_vec()
    }

    fn holds(&self, message: &[u8], seal: &[u8]) -> bool {
        self.seal(message) == seal
    }
}

/// Access rows in these tests carry made-up seals: every one holds but `forged`.
impl custodia_store::AccessSealer for TestSeal {
    fn holds_row(&self, row: custodia_store::AccessRow<'_>) -> bool {
        let seal = match row {
            custodia_store::AccessRow::Principal(r) => r.seal.as_deref(),
            custodia_store::AccessRow::Operator(r) => r.seal.as_deref(),
            custodia_store::AccessRow::Session(r) => r.seal.as_deref(),
            custodia_store::AccessRow::Grant(r) => r.seal.as_deref(),
        };
        seal != Some(b"forged")
    }
}

/// The key tests link audit entries with (a vault installs its own).
pub fn test_link_key() -> custodia_audit::chain::ChainKey {
    custodia_audit::chain::ChainKey::new(&[0x11; 32])
}

/// Each entry's link follows the one before it (`entries`: the whole log, oldest first).
pub fn assert_links_chain(entries: &[custodia_store::AuditRow]) {
    let key = test_link_key();
    let mut previous = custodia_audit::chain::START;
    for e in entries {
        let link = e
            .link
            .as_deref()
            .unwrap_or_else(|| panic!("entry {} has no link", e.seq));
        assert!(
            key.check(&previous, &e.leaf, link),
            "entry {}'s link does not follow",
            e.seq
        );
        previous = link.try_into().unwrap();
    }
}

/// `store`, its audit entries linked with [`test_link_key`].
/// A store as the vault leaves it once it has read its keys: audit entries linked, purpose
/// bindings sealed.
pub fn linked(store: Store) -> Store {
    store.link_audit_with(std::sync::Arc::new(test_link_key()));
    store.seal_bindings_with(std::sync::Arc::new(TestSeal));
    store
}

pub fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}", dir.path().join("custodia.db").display()),
        owner_url: None,
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
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(Db {
        url: format!("{base}/{db}"),
        owner_url: None,
        _dir: None,
    })
}

/// A fresh database on the test PostgreSQL server owned by a new owner role (LOGIN,
/// CREATEROLE, no superuser) that migrates it and creates a new service role with
/// [`Store::grant_service_role`]; `url` logs in as the service role, `owner_url` as the owner.
/// `None` (skip) when there is no server, as [`postgres_db`]. Role names are global to the
/// PostgreSQL server, so each test makes its own. The test server trusts local connections
/// (no password is checked), so the password given here is never verified: these tests
/// check privileges, not authentication.
pub async fn postgres_service_db() -> Option<Db> {
    postgres_service_db_at(custodia_store::SCHEMA_VERSION).await
}

/// [`postgres_service_db`] with the schema migrated only to `version` (0: not at all).
pub async fn postgres_service_db_at(version: i64) -> Option<Db> {
    let db = postgres_db().await?;
    let id = custodia_store_test_id();
    let (owner, service) = (format!("custodia_owner_{id}"), format!("custodia_service_{id}"));
    let (base, name) = db.url.rsplit_once('/').unwrap();
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {owner} LOGIN CREATEROLE; ALTER DATABASE {name} OWNER TO {owner};"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let as_role = |role: &str| {
        let (scheme, rest) = base.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{role}@{host}/{name}")
    };
    let owner_url = as_role(&owner);
    let store = Store::open_at_version(&owner_url, version).await.unwrap();
    let granted = store
        .grant_service_role(&service, "unchecked-under-trust-auth", false)
        .await
        .unwrap();
    assert!(granted.password_set, "a new role gets its password");
    drop(store);
    Some(Db {
        url: as_role(&service),
        owner_url: Some(owner_url),
        _dir: None,
    })
}

/// The role name a PostgreSQL URL logs in as.
pub fn role_of(url: &str) -> String {
    let (_, rest) = url.split_once("://").unwrap();
    let (user, _) = rest.rsplit_once('@').unwrap();
    user.split(':').next().unwrap().to_owned()
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
        /// The same contracts on PostgreSQL, logged in as the service role: every statement
        /// the server runs is within the privileges it is granted.
        mod postgres_service_role {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(db) = crate::postgres_service_db().await else { return };
                    super::opened::$check(&db).await;
                }
            )*
        }
    };
}

on_store!(
    meta_is_set_once,
    subject_key_first_writer_wins,
    record_round_trip_and_order,
    records_are_scoped_to_subject_and_collection,
    subject_records_page_by_keyset,
    page_weight_of_a_subjects_records,
    pages_pass_over_what_no_read_may_use,
    blind_index_pages_in_record_order,
    update_sets_removes_and_reindexes,
    delete_removes_fields_and_index,
    failed_insert_leaves_nothing,
    principals_lifecycle,
    concurrent_writers_all_land,
    racing_first_writes_keep_one_key,
    one_bad_record_fails_alone,
    ledger_appends_in_order_and_refuses_changes,
    concurrent_ledger_appends_keep_the_head,
    access_rows_keep_their_tally,
    training_is_read_only_as_sealed,
    audit_entries_land_with_their_writes,
    tokens_and_subject_keys,
    racing_claims_of_one_token_store_one,
    checkpoints_are_stored_once_per_size,
    a_failed_job_rolls_back_everything_it_did,
    a_job_that_ignores_a_failed_statement_is_told_the_truth,
    a_write_under_a_destroyed_key_fails,
    audit_queries_use_the_indexed_columns,
    audit_purposes_about_a_subject_are_those_allowed,
    audit_chunks_carry_entries_exactly,
    requests_queue_and_steps,
    erasure_deletes_what_the_default_key_sealed,
    notifications_are_queued_attempted_and_logged,
    bindings_hold_values_until_the_last_goes,
    due_bindings_come_by_expiry_and_end_only_as_read,
    activity_moves_forward_and_renews,
    legal_holds_are_placed_found_and_released,
    notice_versions_are_kept_once_each,
    incidents_timelines_and_read_only_collections,
);

/// What only the embedded SQLite store has to keep.
mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_stays_bounded_under_sustained_reads_and_writes() {
        let db = crate::sqlite_db();
        crate::schema::the_write_ahead_log_stays_bounded_under_sustained_reads_and_writes(&db).await;
    }
}

mod db_checks {
    use crate::schema as on_db;

    backend_suite!(on_db:
        reopen_keeps_data_and_schema,
        append_only_tables_refuse_changes_in_the_schema_itself,
        a_newer_schema_is_refused_untouched,
        upgrade_from_v0_1_fills_the_new_columns,
        a_binding_written_or_changed_by_hand_is_no_binding,
        two_stores_on_one_database_number_audit_entries_in_commit_order,
        a_write_waits_for_the_erasure_that_locked_its_key,
        a_ledger_entry_waits_for_the_erasure_of_a_subject_without_keys,
        only_one_node_leads_a_job_at_a_time,
        every_table_has_a_service_grant_decision,
        committed_changes_are_announced_to_every_node,
    );
}

/// The two PostgreSQL roles: what the service role may not do, and what it still can.
mod service_role {
    macro_rules! on_service_role {
        ($($check:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    crate::roles::$check().await;
                }
            )*
        };
    }

    on_service_role!(
        the_service_role_cannot_change_the_schema_or_cut_the_append_only_tables,
        the_service_role_opens_a_current_schema_without_ddl,
        a_schema_behind_is_refused_to_the_service_role_naming_the_command,
        granting_again_keeps_the_privileges_exact,
        a_role_that_acts_as_the_owner_is_refused_as_service_role,
    );

    mod several_nodes {
        use crate::schema as on_db;
        macro_rules! on_service_db {
            ($($check:ident),* $(,)?) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let Some(db) = crate::postgres_service_db().await else { return };
                        on_db::$check(&db).await;
                    }
                )*
            };
        }
        on_service_db!(
            reopen_keeps_data_and_schema,
            two_stores_on_one_database_number_audit_entries_in_commit_order,
            only_one_node_leads_a_job_at_a_time,
        );
    }
}

/// `secure_delete` is on: a deleted value's bytes do not linger in free pages of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deleted_ciphertext_does_not_linger_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custodia.db");
    let canary = b"CANARY-CIPHERTEXT-7f3a9c-should-be-gone".to_vec();
    {
        let store = linked(Store::open(&format!("sqlite://{}", path.display())).await.unwrap());
        let record = custodia_store::NewRecord {
            fresh_key: true,
            sealed_under: custodia_store::SubjectKeyRow {
                subject_id: "s1".into(),
                key_class: custodia_store::DEFAULT_KEY_CLASS.into(),
                key_version: 1,
                wrapped_key: vec![1],
                created_at: 1,
                first_wrap: None,
            },
            record_id: "r1".into(),
            subject_id: "s1".into(),
            collection: "customers".into(),
            now: 1,
            fields: vec![custodia_store::FieldValue {
                field: "name".into(),
                ciphertext: canary.clone(),
                key_class: "default".into(),
                binding: Some(custodia_store::Binding {
                    purpose: "p".into(),
                    bound_at: 1,
                    renewed_at: 1,
                    ended_at: None,
                    expires_at: None,
                }),
            }],
            index: vec![],
            activity: None,
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
