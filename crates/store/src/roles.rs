//! PostgreSQL's two roles. The **owner** runs the migrations and owns the tables, their
//! triggers and functions. The **service** role is what servers log in as: it gets the DML
//! the repositories need on each table ([`crate::schema`]'s grant decisions) and `USAGE` on the
//! sequences, and nothing else. It owns nothing, so it cannot drop or disable the append-only
//! triggers, alter or drop a table; it has no `TRUNCATE`, and no `UPDATE` or `DELETE` on the
//! append-only tables. Someone holding the service credential (a leaked server config, an
//! insider on an application host) can append, but cannot rewrite or cut the audit log.
//!
//! Grants are rewritten from scratch each time (everything revoked, then granted), so a
//! table that became append-only loses what it had.

use crate::StoreError;
use crate::schema::{self, TableGrant};
use crate::sql::{Conn, Stmt};

/// What [`grant_service_role`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGrants {
    /// Whether the role's password was set (a new role, or a reset).
    pub password_set: bool,
    /// The privileges granted, table by table.
    pub tables: Vec<TableGrant>,
}

/// Creates the service role `role` (LOGIN, `password`) or, when it exists, makes it a login
/// role (setting `password` only when `reset_password`), then sets its privileges on every
/// table of the current schema. `password` is passed as PostgreSQL's `PASSWORD` takes it: a SCRAM-SHA-256 verifier
/// keeps the password itself off the wire and out of the server's logs.
///
/// Refused when a table has no grant decision, and when the role could act as the owner of
/// a table (a superuser, the owner itself or a member of it): that role could drop the
/// triggers, which is what having two roles is for.
pub(crate) async fn grant_service_role(
    conn: &mut Conn<'_>,
    role: &str,
    password: &str,
    reset_password: bool,
) -> Result<ServiceGrants, StoreError> {
    check_role_name(role)?;
    let grants = schema::service_grants(&schema::tables(conn).await?)?;
    let exists = conn
        .fetch_optional(Stmt::new("SELECT COUNT(*) AS n FROM pg_catalog.pg_roles WHERE rolname = $1").bind(role))
        .await?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0)
        > 0;
    if exists {
        let row = conn
            .fetch_optional(
                Stmt::new(
                    "SELECT COUNT(*) AS n FROM pg_catalog.pg_roles r WHERE r.rolname = $1 AND (r.rolsuper OR r.rolbypassrls
                        OR pg_has_role(r.oid, current_user, 'USAGE') OR EXISTS (SELECT 1 FROM pg_catalog.pg_tables t WHERE t.schemaname = current_schema()
                                   AND pg_has_role(r.oid, t.tableowner, 'USAGE')))",
                )
                .bind(role),
            )
            .await?;
        if row.map(|r| r.int("n")).transpose()?.unwrap_or(0) > 0 {
            return Err(StoreError::Schema(format!(
                "the database role {role} is a superuser or acts as the owner of the tables, so it could drop the \
                 append-only triggers: choose a role of its own for the service"
            )));
        }
    }
    let quoted = quote_ident(role);
    let password_set = reset_password || !exists;
    let password = format!(" PASSWORD '{}'", password.replace('\'', "''"));
    let create = match (exists, password_set) {
        (false, _) => format!("CREATE ROLE {quoted} LOGIN{password}"),
        (true, true) => format!("ALTER ROLE {quoted} LOGIN{password}"),
        (true, false) => format!("ALTER ROLE {quoted} LOGIN"),
    };
    conn.run(&create).await?;
    let row = conn
        .fetch_optional(Stmt::new("SELECT current_schema() AS name"))
        .await?
        .ok_or_else(|| StoreError::Schema("no current schema".into()))?;
    let schema_name = quote_ident(&row.text("name")?);
    let mut sql = format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema_name} FROM {quoted};
         REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_name} FROM {quoted};
         GRANT USAGE ON SCHEMA {schema_name} TO {quoted};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema_name} TO {quoted};"
    );
    for grant in &grants {
        sql.push_str(&format!(
            "\nGRANT {} ON TABLE {schema_name}.{} TO {quoted};",
            grant.privileges,
            quote_ident(&grant.table)
        ));
    }
    conn.run(&sql).await?;
    Ok(ServiceGrants {
        password_set,
        tables: grants,
    })
}

/// Role names are plain identifiers: lower-case letters, digits and `_`, not starting with a
/// digit, at most 63 bytes (PostgreSQL's limit), so the name in a URL and in SQL is the same.
fn check_role_name(role: &str) -> Result<(), StoreError> {
    let ok = !role.is_empty()
        && role.len() <= 63
        && !role.starts_with(|c: char| c.is_ascii_digit())
        && !role.starts_with("pg_")
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Schema(
            "a service role name is 1 to 63 lower-case letters, digits and `_`, not starting with a digit or `pg_`"
                .into(),
        ))
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_identifiers() {
        for good in ["custodia_service", "svc2", "_x"] {
            assert!(check_role_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["", "Service", "svc-1", "1svc", "pg_svc", "svc\"; DROP", long.as_str()] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }
}
