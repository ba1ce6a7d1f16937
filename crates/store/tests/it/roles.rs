//! PostgreSQL's owner and service roles (`Store::grant_service_role`): someone holding the
//! service role's credential cannot change the schema, drop or disable the append-only
//! triggers, or cut or rewrite the append-only tables; the server runs as it all the same.
//!
//! The test server trusts local connections, so passwords are never checked here: these tests
//! are about privileges, not authentication.

use custodia_store::{APPEND_ONLY_PRIVILEGES, AuditColumns, AuditRow, CheckpointRow, LedgerRow, Store, StoreError};

use crate::{Db, ops, postgres_service_db, postgres_service_db_at, role_of};

/// Runs SQL as whoever `url` logs in as.
async fn raw_as(url: &str, sql: &str) -> Result<(), String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let out = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    pool.close().await;
    out
}

async fn count_as(url: &str, sql: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn owner(db: &Db) -> &str {
    db.owner_url.as_deref().unwrap()
}

async fn fill(store: &Store) {
    let ledger = LedgerRow {
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
    let audit = AuditRow {
        seq: 0,
        at: 1,
        entry: "{}".into(),
        leaf: vec![7; 32],
        index: AuditColumns {
            principal: Some("p1".into()),
            action: Some("record.read".into()),
            decision: Some("allow".into()),
            purpose: None,
            subject: None,
        },
        link: None,
        metric: None,
    };
    ops::append_ledger(store, &ledger, Some(&audit)).await.unwrap();
    let checkpoint = CheckpointRow {
        tree_size: 1,
        root: vec![1; 32],
        at: 1,
        note: "n".into(),
    };
    ops::insert_checkpoint(store, &checkpoint).await.unwrap();
}

/// What an insider with the service credential would try first. Each is refused by the
/// privilege system (not only by a trigger, which the owner could drop), and the rows stay.
pub async fn the_service_role_cannot_change_the_schema_or_cut_the_append_only_tables() {
    let Some(db) = postgres_service_db().await else { return };
    let store = db.open().await;
    fill(&store).await;
    let append_only: Vec<String> = store
        .service_grants()
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.append_only)
        .map(|g| g.table)
        .collect();
    assert!(append_only.len() >= 3, "{append_only:?}");
    drop(store);
    let service = role_of(&db.url);
    let mut refused: Vec<String> = [
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "DROP TRIGGER audit_log_no_truncate ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE subject_ledger DISABLE TRIGGER USER",
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$",
        "DROP FUNCTION audit_log_append_only() CASCADE",
        "SET session_replication_role = replica",
        "ALTER TABLE audit_log ADD COLUMN x INT",
        "DROP TABLE audit_log",
        "CREATE TABLE evil (x INT)",
        "UPDATE audit_log SET entry = 'x'",
        "UPDATE subject_ledger SET value = 0",
        "UPDATE audit_checkpoints SET note = 'x'",
        "SELECT setval('audit_log_seq_seq', 1)",
        "INSERT INTO schema_version (version) VALUES (999)",
        "DELETE FROM schema_version",
    ]
    .map(str::to_owned)
    .to_vec();
    refused.push(format!("ALTER TABLE audit_log OWNER TO {service}"));
    for table in &append_only {
        refused.push(format!("TRUNCATE {table}"));
        refused.push(format!("DELETE FROM {table}"));
    }
    for sql in &refused {
        let err = raw_as(&db.url, sql).await.expect_err(sql);
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: refused by a privilege, not by a trigger: {err}"
        );
    }
    // The rows are all there, and it is the role that stops these: the owner can disable a
    // trigger (which is why servers do not log in as the owner).
    assert_eq!(count_as(owner(&db), "SELECT COUNT(*) FROM audit_log").await, 1);
    assert_eq!(count_as(owner(&db), "SELECT COUNT(*) FROM subject_ledger").await, 1);
    assert_eq!(count_as(owner(&db), "SELECT COUNT(*) FROM audit_checkpoints").await, 1);
    raw_as(
        owner(&db),
        "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change; ROLLBACK;",
    )
    .await
    .unwrap();
}

/// A server opens a database whose schema is current without any DDL: the service role has
/// no CREATE on the schema, and opening (which checks the schema version) works.
pub async fn the_service_role_opens_a_current_schema_without_ddl() {
    let Some(db) = postgres_service_db().await else { return };
    assert_eq!(
        count_as(
            &db.url,
            "SELECT COUNT(*) FROM (SELECT 1 WHERE has_schema_privilege(current_schema(), 'CREATE')) c"
        )
        .await,
        0,
        "the service role may not create tables"
    );
    let store = crate::linked(Store::open(&db.url).await.unwrap());
    fill(&store).await;
    assert_eq!(ops::audit_entries(&store, 0, 10).await.unwrap().len(), 1);
}

/// A schema behind this binary is not migrated by the service role: opening fails naming the
/// command to run as the owner, and leaves the database as it was. After the owner migrates
/// and grants again, the service role opens it.
pub async fn a_schema_behind_is_refused_to_the_service_role_naming_the_command() {
    for version in [0, 5] {
        let Some(db) = postgres_service_db_at(version).await else {
            return;
        };
        let err = Store::open(&db.url).await.unwrap_err();
        assert!(matches!(err, StoreError::Schema(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("at version {version}")) && message.contains("custodia migrate"),
            "{message}"
        );
        let at = if version == 0 {
            0
        } else {
            count_as(owner(&db), "SELECT MAX(version)::BIGINT FROM schema_version").await
        };
        assert_eq!(at, version, "nothing was migrated");
        let store = Store::open(owner(&db)).await.unwrap();
        store
            .grant_service_role(&role_of(&db.url), "unused", false)
            .await
            .unwrap();
        drop(store);
        fill(&db.open().await).await;
    }
}

/// Granting again (after an upgrade, or someone's manual GRANT) leaves the service role with
/// exactly the decided privileges on every table, no more, no fewer, and keeps its password
/// unless told to reset it.
pub async fn granting_again_keeps_the_privileges_exact() {
    let Some(db) = postgres_service_db().await else { return };
    let service = role_of(&db.url);
    raw_as(
        owner(&db),
        &format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {service}"),
    )
    .await
    .unwrap();
    let has = |table: &str, privilege: &str| {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 WHERE has_table_privilege('{service}', '{table}', '{privilege}')) p"
        );
        let url = db.url.clone();
        async move { count_as(&url, &sql).await == 1 }
    };
    assert!(has("audit_log", "TRUNCATE").await, "the manual grant took");
    let admin = std::env::var("CUSTODIA_TEST_POSTGRES_URL").unwrap();
    let password_of = |admin: String, role: String| async move {
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        let verifier: Option<String> = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        verifier.unwrap()
    };
    let before = password_of(admin.clone(), service.clone()).await;
    let store = Store::open(owner(&db)).await.unwrap();
    let granted = store.grant_service_role(&service, "another", false).await.unwrap();
    assert!(!granted.password_set);
    assert_eq!(
        password_of(admin.clone(), service.clone()).await,
        before,
        "the password is kept"
    );
    let verifier = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE=";
    assert!(
        store
            .grant_service_role(&service, verifier, true)
            .await
            .unwrap()
            .password_set
    );
    assert_eq!(
        password_of(admin, service.clone()).await,
        verifier,
        "a SCRAM verifier is stored as given, never as a password"
    );
    let grants = granted.tables;
    assert!(!grants.is_empty());
    for grant in &grants {
        if grant.append_only {
            assert_eq!(grant.privileges, APPEND_ONLY_PRIVILEGES);
        }
        for privilege in [
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
            "TRIGGER",
        ] {
            assert_eq!(
                has(&grant.table, privilege).await,
                grant.privileges.split(", ").any(|p| p == privilege),
                "{} {privilege}",
                grant.table
            );
        }
    }
}

/// A role that could act as the tables' owner (the owner itself, a member of it, a superuser)
/// is refused as the service role, and nothing about it changes.
pub async fn a_role_that_acts_as_the_owner_is_refused_as_service_role() {
    let Some(db) = postgres_service_db().await else { return };
    let owner_role = role_of(owner(&db));
    let member = format!("{}_member", role_of(&db.url));
    let admin = std::env::var("CUSTODIA_TEST_POSTGRES_URL").unwrap();
    raw_as(&admin, &format!("CREATE ROLE {member} NOLOGIN IN ROLE {owner_role}"))
        .await
        .unwrap();
    let store = Store::open(owner(&db)).await.unwrap();
    for role in [owner_role.clone(), member.clone(), role_of(&admin)] {
        let err = store.grant_service_role(&role, "unused", true).await.unwrap_err();
        assert!(err.to_string().contains("could drop"), "{role}: {err}");
    }
    assert_eq!(
        count_as(
            &admin,
            &format!("SELECT COUNT(*) FROM pg_roles WHERE rolname = '{member}' AND NOT rolcanlogin")
        )
        .await,
        1,
        "the refused grant was rolled back"
    );
}
