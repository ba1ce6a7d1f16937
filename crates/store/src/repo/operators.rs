//! Operators (people who sign in with a password and a TOTP code), their sessions and their
//! training completions. Secrets are stored only as hashes (passwords: Argon2id PHC strings;
//! session and enrolment secrets: SHA-256) or sealed (TOTP secrets, by the vault).

use super::tally::{ACCESS_TABLES, Message};
use crate::model::{join_roles, split_roles};
use crate::sql::{DbRow, Stmt};
use crate::{ReadWrite, Sealer, StoreError};

super::repository!(
    /// Operators, sessions and training completions.
    Operators
);

/// An operator. Unix milliseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub operator_id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Argon2id PHC string; `None` until the operator enrols.
    pub password_hash: Option<String>,
    /// The TOTP secret, sealed by the vault; `None` until the operator enrols.
    pub totp_sealed: Option<Vec<u8>>,
    /// When the operator proved the authenticator works (enrolment is complete).
    pub totp_confirmed_at: Option<i64>,
    /// The last TOTP step a code was accepted for: no code of it or before works again.
    pub totp_last_step: Option<i64>,
    /// SHA-256 of the one-time enrolment code; `None` once enrolled.
    pub enrol_hash: Option<Vec<u8>>,
    pub enrol_expires_at: Option<i64>,
    /// Failed logins since the last success.
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// The principal (or `local`, the CLI on the server's machine) that created it.
    pub created_by: String,
    pub disabled_at: Option<i64>,
    /// The vault's MAC over its id, name, roles and creation (`None`: written before schema
    /// version 21 and not yet sealed).
    pub seal: Option<Vec<u8>>,
}

impl std::fmt::Debug for OperatorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRow")
            .field("operator_id", &self.operator_id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("totp_confirmed_at", &self.totp_confirmed_at)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// An operator's session: the bearer token's public id and its secret's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub session_id: String,
    pub secret_hash: Vec<u8>,
    pub operator_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The vault's MAC over the session as opened (`None`: opened before schema version 21).
    pub seal: Option<Vec<u8>>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("session_id", &self.session_id)
            .field("operator_id", &self.operator_id)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// One completion of a course by an operator, as someone attested it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRow {
    pub operator_id: String,
    pub course: String,
    pub completed_at: i64,
    /// The principal or operator who attested the completion.
    pub attested_by: String,
    pub recorded_at: i64,
}

/// An emergency grant of a role to one operator session, for minutes, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRow {
    pub grant_id: String,
    pub operator_id: String,
    pub session_id: String,
    pub role: String,
    pub reason: String,
    pub started_at: i64,
    pub expires_at: i64,
    /// The vault's MAC over the grant (`None`: granted before schema version 21).
    pub seal: Option<Vec<u8>>,
}

pub(crate) fn break_glass_row(r: &DbRow) -> Result<BreakGlassRow, StoreError> {
    Ok(BreakGlassRow {
        grant_id: r.text("grant_id")?,
        operator_id: r.text("operator_id")?,
        session_id: r.text("session_id")?,
        role: r.text("role")?,
        reason: r.text("reason")?,
        started_at: r.int("started_at")?,
        expires_at: r.int("expires_at")?,
        seal: r.opt_bytes("seal")?,
    })
}

pub(crate) fn operator_row(r: &DbRow) -> Result<OperatorRow, StoreError> {
    Ok(OperatorRow {
        operator_id: r.text("operator_id")?,
        name: r.text("name")?,
        roles: split_roles(&r.text("roles")?),
        password_hash: r.opt_text("password_hash")?,
        totp_sealed: r.opt_bytes("totp_sealed")?,
        totp_confirmed_at: r.opt_int("totp_confirmed_at")?,
        totp_last_step: r.opt_int("totp_last_step")?,
        enrol_hash: r.opt_bytes("enrol_hash")?,
        enrol_expires_at: r.opt_int("enrol_expires_at")?,
        failed_logins: r.int("failed_logins")?,
        locked_until: r.opt_int("locked_until")?,
        created_at: r.int("created_at")?,
        created_by: r.text("created_by")?,
        disabled_at: r.opt_int("disabled_at")?,
        seal: r.opt_bytes("seal")?,
    })
}

pub(crate) fn session_row(r: &DbRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        session_id: r.text("session_id")?,
        secret_hash: r.bytes("secret_hash")?,
        operator_id: r.text("operator_id")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
        seal: r.opt_bytes("seal")?,
    })
}

fn training_row(r: &DbRow) -> Result<TrainingRow, StoreError> {
    Ok(TrainingRow {
        operator_id: r.text("operator_id")?,
        course: r.text("course")?,
        completed_at: r.int("completed_at")?,
        attested_by: r.text("attested_by")?,
        recorded_at: r.int("recorded_at")?,
    })
}

/// The `meta` key set (`0x01`) by the schema step that sealed training completions (schema
/// version 23): the completions from before are sealed at the vault's next start, once.
pub const TRAINING_SEALS_PENDING: &str = "training_seals_pending";

/// What a completion's seal covers: every column it records.
fn training_message(t: &TrainingRow) -> Vec<u8> {
    let mut m = Message::new("custodia.training.v1");
    m.text(Some(&t.operator_id))
        .text(Some(&t.course))
        .int(t.completed_at)
        .text(Some(&t.attested_by))
        .int(t.recorded_at);
    m.0
}

/// A stored completion and whether it carries the vault's seal (a column of another type than
/// the vault writes: not a completion the vault recorded).
fn sealed_training(r: &DbRow, seal: &dyn Sealer) -> Option<(TrainingRow, bool)> {
    let row = training_row(r).ok()?;
    let sealed = r
        .opt_bytes("seal")
        .ok()
        .flatten()
        .is_some_and(|s| seal.holds(&training_message(&row), &s));
    Some((row, sealed))
}

impl<A> Operators<'_, A> {
    /// The operator called `name`.
    pub async fn by_name(&mut self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM operators WHERE name = $1").bind(name);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(operator_row)
            .transpose()
    }

    /// The operator with id `operator_id`.
    pub async fn by_id(&mut self, operator_id: &str) -> Result<Option<OperatorRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM operators WHERE operator_id = $1").bind(operator_id);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(operator_row)
            .transpose()
    }

    /// Every operator, oldest first.
    pub async fn all(&mut self) -> Result<Vec<OperatorRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM operators ORDER BY created_at, operator_id");
        self.conn.fetch_all(stmt).await?.iter().map(operator_row).collect()
    }

    /// The session with public id `session_id`.
    pub async fn session(&mut self, session_id: &str) -> Result<Option<SessionRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM operator_sessions WHERE session_id = $1").bind(session_id);
        self.conn
            .fetch_optional(stmt)
            .await?
            .as_ref()
            .map(session_row)
            .transpose()
    }

    /// Every training completion of `operator_id` (all operators when `None`) that carries
    /// the vault's seal, by operator, course and completion time: one written into the
    /// database by hand is no training.
    pub async fn training(
        &mut self,
        operator_id: Option<&str>,
        seal: &dyn Sealer,
    ) -> Result<Vec<TrainingRow>, StoreError> {
        let rows = self.conn.fetch_all(training_of(operator_id)).await?;
        Ok(rows
            .iter()
            .filter_map(|r| sealed_training(r, seal))
            .filter_map(|(row, sealed)| sealed.then_some(row))
            .collect())
    }

    /// Every training completion of `operator_id` (all operators when `None`) as stored,
    /// sealed or not: for `assess`, which runs without the vault's keys.
    pub async fn training_as_stored(&mut self, operator_id: Option<&str>) -> Result<Vec<TrainingRow>, StoreError> {
        let rows = self.conn.fetch_all(training_of(operator_id)).await?;
        rows.iter().map(training_row).collect()
    }
}

/// The completions of `operator_id` (all when `None`), by operator, course and completion time.
fn training_of(operator_id: Option<&str>) -> Stmt<'_> {
    match operator_id {
        Some(id) => Stmt::new(
            "SELECT * FROM training_completions WHERE operator_id = $1 ORDER BY operator_id, course, completed_at",
        )
        .bind(id),
        None => Stmt::new("SELECT * FROM training_completions ORDER BY operator_id, course, completed_at"),
    }
}

impl<A> Operators<'_, A> {
    /// The break-glass grants of a session, oldest first.
    pub async fn break_glass_of_session(&mut self, session_id: &str) -> Result<Vec<BreakGlassRow>, StoreError> {
        let stmt = Stmt::new("SELECT * FROM break_glass WHERE session_id = $1 ORDER BY started_at").bind(session_id);
        self.conn.fetch_all(stmt).await?.iter().map(break_glass_row).collect()
    }

    /// The break-glass grants started in `[from, to)`, oldest first.
    pub async fn break_glass_between(&mut self, from: i64, to: i64) -> Result<Vec<BreakGlassRow>, StoreError> {
        let stmt =
            Stmt::new("SELECT * FROM break_glass WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at")
                .bind(from)
                .bind(to);
        self.conn.fetch_all(stmt).await?.iter().map(break_glass_row).collect()
    }
}

impl Operators<'_, ReadWrite> {
    /// Records a break-glass grant; its seal goes into the access rows' tally.
    pub async fn open_break_glass(&mut self, row: &BreakGlassRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::access_change_allowed(&mut self.conn).await?;
        let stmt = Stmt::new(
            "INSERT INTO break_glass (grant_id, operator_id, session_id, role, reason, started_at, expires_at, seal) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row.grant_id.as_str())
        .bind(row.operator_id.as_str())
        .bind(row.session_id.as_str())
        .bind(row.role.as_str())
        .bind(row.reason.as_str())
        .bind(row.started_at)
        .bind(row.expires_at)
        .bind(row.seal.as_deref());
        self.conn.execute(stmt).await?;
        super::tally::access_moved(&mut self.conn, seal, None, row.seal.as_deref()).await
    }

    /// Adds an operator. Fails with [`StoreError::Conflict`] if the name is taken. Its seal
    /// goes into the access rows' tally.
    pub async fn insert(&mut self, row: &OperatorRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::access_change_allowed(&mut self.conn).await?;
        let roles = join_roles(&row.roles);
        let stmt = Stmt::new(
            "INSERT INTO operators (operator_id, name, roles, password_hash, totp_sealed, totp_confirmed_at, \
             totp_last_step, enrol_hash, enrol_expires_at, failed_logins, locked_until, created_at, created_by, \
             disabled_at, seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(row.operator_id.as_str())
        .bind(row.name.as_str())
        .bind(roles.as_str())
        .bind(row.password_hash.as_deref())
        .bind(row.totp_sealed.as_deref())
        .bind(row.totp_confirmed_at)
        .bind(row.totp_last_step)
        .bind(row.enrol_hash.as_deref())
        .bind(row.enrol_expires_at)
        .bind(row.failed_logins)
        .bind(row.locked_until)
        .bind(row.created_at)
        .bind(row.created_by.as_str())
        .bind(row.disabled_at)
        .bind(row.seal.as_deref());
        self.conn.execute(stmt).await?;
        super::tally::access_moved(&mut self.conn, seal, None, row.seal.as_deref()).await
    }

    /// Stores the vault's seal of an operator's row as it is now (after a change the vault
    /// made to it, in the same transaction), and moves the access rows' tally.
    pub async fn set_seal(&mut self, operator_id: &str, row_seal: &[u8], seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::reseal_access_row(&mut self.conn, ACCESS_TABLES[1], operator_id, Some(row_seal), seal).await
    }

    /// Sets the password and (unconfirmed) TOTP secret of an operator still enrolling with
    /// the enrolment code whose hash is `enrol_hash`; returns whether it was.
    pub async fn enrol(
        &mut self,
        operator_id: &str,
        enrol_hash: &[u8],
        password_hash: &str,
        totp_sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "UPDATE operators SET password_hash = $1, totp_sealed = $2 \
             WHERE operator_id = $3 AND enrol_hash = $4 AND totp_confirmed_at IS NULL",
        )
        .bind(password_hash)
        .bind(totp_sealed)
        .bind(operator_id)
        .bind(enrol_hash);
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Completes an enrolment: the authenticator gave a code of `step`. The enrolment code
    /// stops working. Returns whether the operator was still enrolling with `enrol_hash`.
    pub async fn confirm(
        &mut self,
        operator_id: &str,
        enrol_hash: &[u8],
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "UPDATE operators SET totp_confirmed_at = $1, totp_last_step = $2, enrol_hash = NULL, \
             enrol_expires_at = NULL, failed_logins = 0, locked_until = NULL \
             WHERE operator_id = $3 AND enrol_hash = $4 AND totp_confirmed_at IS NULL AND totp_sealed IS NOT NULL",
        )
        .bind(now)
        .bind(step)
        .bind(operator_id)
        .bind(enrol_hash);
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Records a successful login with a code of `step`, unless a code of that step or a
    /// later one was accepted meanwhile (a replay racing the first use): returns whether it
    /// was recorded. Failures are forgiven.
    pub async fn login_succeeded(&mut self, operator_id: &str, step: i64) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            "UPDATE operators SET totp_last_step = $1, failed_logins = 0, locked_until = NULL \
             WHERE operator_id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)",
        )
        .bind(step)
        .bind(operator_id)
        .bind(step);
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Counts a login attempt as failed before it is checked (a success forgives it), unless
    /// the account is locked at `now`, and sets the lockout the count earns (`lockout`: the
    /// lock's end for `n` failures, if any) at once: attempts racing each other are counted
    /// one by one in this transaction, so none is checked once the allowance is spent,
    /// whichever node it reaches.
    pub async fn begin_attempt(
        &mut self,
        operator_id: &str,
        now: i64,
        lockout: impl FnOnce(i64) -> Option<i64> + Send,
    ) -> Result<Attempt, StoreError> {
        let stmt = Stmt::new(
            "UPDATE operators SET failed_logins = failed_logins + 1 \
             WHERE operator_id = $1 AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(operator_id)
        .bind(now);
        let counted = self.conn.execute(stmt).await? == 1;
        let row = self
            .conn
            .fetch_optional(
                Stmt::new("SELECT failed_logins, locked_until FROM operators WHERE operator_id = $1").bind(operator_id),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("an operator vanished during a login".into()))?;
        if !counted {
            return Ok(Attempt::Locked(row.opt_int("locked_until")?.unwrap_or(now)));
        }
        let failures = row.int("failed_logins")?;
        if let Some(until) = lockout(failures) {
            self.lock(operator_id, until).await?;
        }
        Ok(Attempt::Counted(failures))
    }

    /// Locks an operator's logins until `until` (never shortening a longer lock).
    pub async fn lock(&mut self, operator_id: &str, until: i64) -> Result<(), StoreError> {
        let stmt = Stmt::new(
            "UPDATE operators SET locked_until = $1 WHERE operator_id = $2 AND (locked_until IS NULL OR locked_until < $3)",
        )
        .bind(until)
        .bind(operator_id)
        .bind(until);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Disables an operator (no login, no session works); returns whether it was active.
    pub async fn disable(&mut self, operator_id: &str, now: i64) -> Result<bool, StoreError> {
        let stmt = Stmt::new("UPDATE operators SET disabled_at = $1 WHERE operator_id = $2 AND disabled_at IS NULL")
            .bind(now)
            .bind(operator_id);
        Ok(self.conn.execute(stmt).await? == 1)
    }

    /// Opens a session; its seal goes into the access rows' tally.
    pub async fn open_session(&mut self, row: &SessionRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        super::tally::access_change_allowed(&mut self.conn).await?;
        let stmt = Stmt::new(
            "INSERT INTO operator_sessions (session_id, secret_hash, operator_id, created_at, expires_at, revoked_at, seal) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.session_id.as_str())
        .bind(row.secret_hash.as_slice())
        .bind(row.operator_id.as_str())
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.revoked_at)
        .bind(row.seal.as_deref());
        self.conn.execute(stmt).await?;
        super::tally::access_moved(&mut self.conn, seal, None, row.seal.as_deref()).await
    }

    /// Revokes one session (`session_id`), every open session of `operator_id`, or every
    /// open session; returns how many were open. Their seals go with them (out of the access
    /// rows' tally too): a revocation undone by hand (`revoked_at` set back) leaves a session
    /// the vault refuses, and one put back with its old seal leaves the tally off.
    pub async fn revoke_sessions(
        &mut self,
        which: SessionsOf<'_>,
        now: i64,
        seal: &dyn Sealer,
    ) -> Result<u64, StoreError> {
        let stmt = match which {
            SessionsOf::Session(id) => {
                Stmt::new("SELECT session_id FROM operator_sessions WHERE session_id = $1 AND revoked_at IS NULL")
                    .bind(id)
            }
            SessionsOf::Operator(id) => {
                Stmt::new("SELECT session_id FROM operator_sessions WHERE operator_id = $1 AND revoked_at IS NULL")
                    .bind(id)
            }
            SessionsOf::All => Stmt::new("SELECT session_id FROM operator_sessions WHERE revoked_at IS NULL"),
        };
        let open = self
            .conn
            .fetch_all(stmt)
            .await?
            .iter()
            .map(|r| r.text("session_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut revoked = 0;
        for id in open {
            let stmt =
                Stmt::new("UPDATE operator_sessions SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id.as_str());
            if self.conn.execute(stmt).await? == 1 {
                super::tally::reseal_access_row(&mut self.conn, ACCESS_TABLES[2], &id, None, seal).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Deletes at most `limit` sessions that expired before `before`, revoked (unsealed) or
    /// carrying the vault's seal (its term taken out of the access rows' tally, the rows
    /// locked as they are read): past its expiry a session opens nothing either way, and every
    /// session kept is one more row each check of the tally reads. One whose seal does not
    /// hold is left for the check to name. Returns how many it deleted.
    pub async fn prune_sessions(
        &mut self,
        before: i64,
        limit: i64,
        seal: &dyn super::AccessSealer,
    ) -> Result<u64, StoreError> {
        let lock = self.conn.dialect().row_lock();
        super::tally::access_change_allowed(&mut self.conn).await?;
        let stmt = Stmt::new(format!(
            "SELECT * FROM operator_sessions WHERE expires_at < $1 ORDER BY expires_at, session_id LIMIT $2{lock}"
        ))
        .bind(before)
        .bind(limit);
        let expired = self.conn.fetch_all(stmt).await?;
        let mut pruned = 0;
        for row in expired.iter().map(session_row) {
            let row = row?;
            // (a revoked session is unsealed, outside the tally)
            if row.seal.is_some() && !seal.holds_row(super::AccessRow::Session(&row)) {
                continue;
            }
            let stmt = Stmt::new("DELETE FROM operator_sessions WHERE session_id = $1").bind(row.session_id.as_str());
            self.conn.execute(stmt).await?;
            super::tally::access_moved(&mut self.conn, seal, row.seal.as_deref(), None).await?;
            pruned += 1;
        }
        Ok(pruned)
    }

    /// Records a training completion.
    /// Sealed with `seal`.
    pub async fn record_training(&mut self, row: &TrainingRow, seal: &dyn Sealer) -> Result<(), StoreError> {
        let sealed = seal.seal(&training_message(row));
        let stmt = Stmt::new(
            "INSERT INTO training_completions (operator_id, course, completed_at, attested_by, recorded_at, seal) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.operator_id.as_str())
        .bind(row.course.as_str())
        .bind(row.completed_at)
        .bind(row.attested_by.as_str())
        .bind(row.recorded_at)
        .bind(&sealed[..]);
        self.conn.execute(stmt).await?;
        Ok(())
    }

    /// Seals the completions found without the vault's seal, as sealed copies (the table is
    /// append-only; the unsealed rows stay and are never read as training), except those
    /// with a sealed copy already: at the start after the upgrade that sealed completions
    /// (schema version 23). Returns how many it sealed.
    pub async fn seal_unsealed_training(&mut self, seal: &dyn Sealer) -> Result<usize, StoreError> {
        let rows = self.conn.fetch_all(training_of(None)).await?;
        let stored: Vec<(TrainingRow, bool)> = rows.iter().filter_map(|r| sealed_training(r, seal)).collect();
        let mut sealed = 0;
        for (row, _) in stored.iter().filter(|(_, s)| !s) {
            if stored.iter().any(|(other, s)| *s && other == row) {
                continue;
            }
            self.record_training(row, seal).await?;
            sealed += 1;
        }
        Ok(sealed)
    }
}

/// A login attempt, as [`Operators::begin_attempt`] counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted: the failures (this attempt included) since the last success.
    Counted(i64),
    /// Not counted: the account is locked until this time.
    Locked(i64),
}

/// Which sessions [`Operators::revoke_sessions`] ends.
#[derive(Debug, Clone, Copy)]
pub enum SessionsOf<'a> {
    Session(&'a str),
    Operator(&'a str),
    /// Every operator's.
    All,
}
