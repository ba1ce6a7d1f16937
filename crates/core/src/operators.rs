//! Operators: the people who work with the vault, apart from the services' API keys.
//!
//! ```text
//! create (manage_operators) ── enrolment code, shown once, 72 h
//!   └─ enrol (code + password) ── TOTP secret (otpauth URI), sealed, not yet trusted
//!        └─ confirm (code + a TOTP code) ── enrolled; the enrolment code is spent
//!             └─ login (name + password + TOTP code) ── session token `css_<id>_<secret>`
//! ```
//!
//! Passwords are Argon2id; TOTP codes work once each (the last accepted step is stored and
//! compared in the login's own transaction, so two racing uses of one code cannot both
//! pass); consecutive failures lock the account for a time that doubles with each further
//! one; every login, failed or not, is in the audit log. A session authenticates as a
//! [`Principal`] carrying [`OperatorSession`]: the gate refuses it personal data while a
//! required course is missing or lapsed (403 `training_expired`) and, for purpose-bound
//! calls, without a justification (403 `justification_required`), which every audit entry of
//! the request then carries.

use std::collections::BTreeMap;

use custodia_crypto::{FieldContext, TotpRefusal, TotpSecret, constant_time_eq, random_hex, sha256};
use custodia_registry::{Capability, Course};
use custodia_store::{Attempt, BreakGlassRow, OperatorRow, SessionRow, SessionsOf, TrainingRow};
use custodia_types::{CourseStatus, OperatorInfo};
use zeroize::Zeroizing;

use crate::audit::{Allowed, AuditEvent};
use crate::{ErrorKind, Principal, Timestamp, Vault, VaultError, gate};

/// How long an enrolment code works.
const ENROLMENT_MS: i64 = 72 * 3_600_000;
/// The longest lockout, however many failures.
const MAX_LOCKOUT_MS: i64 = 3_600_000;
/// The buckets unknown names' failed logins are counted in ([`PhantomLogins`]).
const PHANTOM_BUCKETS: usize = 65_536;
/// The issuer an authenticator app shows beside the account.
const TOTP_ISSUER: &str = "Custodia";
/// Where a TOTP secret is sealed: bound to its operator.
const TOTP_FIELD: &str = "totp_secret";
/// Longest justification kept (characters).
pub const MAX_JUSTIFICATION_CHARS: usize = 200;
/// Who created an operator from the server's own machine (`custodia operator create
/// --data-dir`).
pub const LOCAL_CREATOR: &str = "local";

/// What an operator's session adds to a principal.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorSession {
    pub session_id: String,
    /// Required courses missing or lapsed when the request was authenticated.
    pub training_due: Vec<String>,
    /// The reason given for this request (`Custodia-Justification`).
    pub justification: Option<String>,
    /// The break-glass grant in force for this session, if any (its roles are added).
    pub break_glass: Option<String>,
    /// The roles the grant added (not the operator's own): they reach data, never the
    /// capabilities that hand out access (principals, operators, keys).
    pub glass_roles: Vec<String>,
}

impl std::fmt::Debug for OperatorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSession")
            .field("session_id", &self.session_id)
            .field("training_due", &self.training_due)
            .field("justified", &self.justification.is_some())
            .field("break_glass", &self.break_glass)
            .finish()
    }
}

/// A new operator and the code they enrol with (shown once).
pub struct CreatedOperator {
    pub operator_id: String,
    pub enrolment_code: Zeroizing<String>,
    pub enrolment_expires_at: Timestamp,
}

/// A session opened by a login.
pub struct OpenedSession {
    pub operator_id: String,
    pub token: Zeroizing<String>,
    pub expires_at: Timestamp,
    pub training_due: Vec<String>,
}

/// Checks a justification's shape: 1-200 characters, one line, no control characters.
pub fn check_justification(text: &str) -> Result<String, VaultError> {
    check_reason(text, "invalid_justification", "the justification")
}

/// Characters that change how text is laid out without being seen (line and paragraph
/// separators, bidirectional overrides and isolates, zero-width marks): a reason shown to a
/// reviewer must read as it was written.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A free-text reason an operator gives (`what`): trimmed, 1-200 characters, one visible line.
fn check_reason(text: &str, code: &'static str, what: &str) -> Result<String, VaultError> {
    let text = text.trim();
    let bad = |message: String| VaultError::bad_request(code, message);
    if text.is_empty() {
        return Err(bad(format!("{what} must not be empty")));
    }
    if text.chars().count() > MAX_JUSTIFICATION_CHARS {
        return Err(bad(format!("{what} must be at most 200 characters")));
    }
    if text.chars().any(invisible) {
        return Err(bad(format!(
            "{what} must be one line without control, layout or invisible characters"
        )));
    }
    Ok(text.to_owned())
}

/// Refuses an operator personal data while a required course is missing or lapsed, and, for
/// a purpose-bound call, without a justification. Service principals pass.
pub(crate) fn may_see_personal_data(principal: &Principal, purpose_bound: bool) -> Result<(), VaultError> {
    let Some(session) = &principal.operator else {
        return Ok(());
    };
    if !session.training_due.is_empty() {
        return Err(VaultError::forbidden(
            "training_expired",
            format!(
                "your training is missing or has lapsed ({}); personal data and administration stay closed until a completion is attested",
                session.training_due.join(", ")
            ),
        ));
    }
    if purpose_bound && session.justification.is_none() {
        return Err(VaultError::forbidden(
            "justification_required",
            "an operator must say why with every personal-data request: send a Custodia-Justification header (e.g. a ticket number)",
        ));
    }
    Ok(())
}

/// Each required course's state for one operator at `now`, from their completions.
pub(crate) fn course_statuses(
    courses: &BTreeMap<String, Course>,
    completions: &[TrainingRow],
    now: Timestamp,
) -> Vec<CourseStatus> {
    courses
        .values()
        .map(|course| {
            let latest = completions
                .iter()
                .filter(|t| t.course == course.name)
                .max_by_key(|t| t.completed_at);
            match latest {
                None => CourseStatus {
                    course: course.name.clone(),
                    status: "missing".into(),
                    completed_at: None,
                    valid_until: None,
                    attested_by: None,
                },
                Some(t) => {
                    let day = 86_400_000;
                    let until = t.completed_at.saturating_add(i64::from(course.valid_days) * day);
                    let remind_from = until.saturating_sub(i64::from(course.remind_days) * day);
                    let status = if now.0 >= until {
                        "expired"
                    } else if now.0 >= remind_from {
                        "due_soon"
                    } else {
                        "current"
                    };
                    CourseStatus {
                        course: course.name.clone(),
                        status: status.into(),
                        completed_at: Some(Timestamp(t.completed_at).to_rfc3339()),
                        valid_until: Some(Timestamp(until).to_rfc3339()),
                        attested_by: Some(t.attested_by.clone()),
                    }
                }
            }
        })
        .collect()
}

/// The courses that keep personal data closed: missing or expired.
fn due(statuses: &[CourseStatus]) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| matches!(s.status.as_str(), "missing" | "expired"))
        .map(|s| s.course.clone())
        .collect()
}

/// The lockout `failed` consecutive failures earn: none below `max`, then one minute,
/// doubling with each further failure, at most a day.
pub(crate) fn lockout_ms(failed: i64, max: u32) -> Option<i64> {
    let over = failed - i64::from(max);
    (over >= 0).then(|| 60_000i64.saturating_mul(1i64 << over.min(20)).min(MAX_LOCKOUT_MS))
}

/// Splits a session token `css_<16 hex>_<64 hex>` into id and secret.
pub(crate) fn split_session_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("css_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some((id, secret))
}

fn locked(until: i64) -> VaultError {
    VaultError::too_many_requests(
        "login_locked",
        format!(
            "too many failed logins; try again after {}",
            Timestamp(until).to_rfc3339()
        ),
    )
}

/// Failed logins of names that are no operator's, counted and locked like an operator's, so
/// that a lockout does not tell which names exist: (failures, locked until) in a fixed table
/// of [`PHANTOM_BUCKETS`], each name in the bucket of its keyed hash (the key random per
/// process). Nothing is ever evicted: a flood of new names cannot clear a lock (a map
/// cleared when full let it, and a name still locked after the flood was then a real one);
/// names sharing a bucket share a count, which locks only names that do not exist.
pub(crate) struct PhantomLogins {
    buckets: std::sync::Mutex<Vec<(i64, i64)>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for PhantomLogins {
    fn default() -> Self {
        Self {
            buckets: std::sync::Mutex::new(vec![(0, 0); PHANTOM_BUCKETS]),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl PhantomLogins {
    /// Counts an attempt on `name` as an operator's is counted (and locks as it would);
    /// `Err(until)` while it is locked.
    fn begin(&self, name: &str, now: Timestamp, max: u32) -> Result<(), i64> {
        use std::hash::BuildHasher;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let at = usize::try_from(self.hasher.hash_one(name) % PHANTOM_BUCKETS as u64).unwrap_or(0);
        let Some((failures, until)) = buckets.get_mut(at) else {
            return Ok(());
        };
        if now.0 < *until {
            return Err(*until);
        }
        *failures += 1;
        if let Some(ms) = lockout_ms(*failures, max) {
            *until = now.0 + ms;
        }
        Ok(())
    }
}

fn invalid_enrolment() -> VaultError {
    VaultError::unauthenticated("invalid name or enrolment code, or the code has expired")
}

fn invalid_login() -> VaultError {
    VaultError::unauthenticated("invalid name, password or code")
}

fn totp_context(operator_id: &str) -> FieldContext<'_> {
    FieldContext {
        collection: "operators",
        subject: operator_id,
        record: operator_id,
        field: TOTP_FIELD,
    }
}

/// Runs an Argon2id verification off the async threads.
async fn verify_password(password: Zeroizing<String>, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => custodia_crypto::verify_password(&password, &stored),
        None => {
            custodia_crypto::verify_nobody(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// The longest chain of creators [`Vault::made_by`] follows (operators and keys made by one
/// another); a longer one counts as made by the operator asked about.
const MAX_CREATOR_CHAIN: usize = 64;

impl Vault {
    /// Creates an operator with `roles` and returns the enrolment code (shown once). Needs
    /// `manage_operators` and `grant` on each role.
    pub async fn create_operator(
        &self,
        caller: &Principal,
        now: Timestamp,
        name: &str,
        roles: &[String],
    ) -> Result<CreatedOperator, VaultError> {
        let event = AuditEvent::new("operator.create", caller).fields(roles);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageOperators)?;
            for role in roles.iter().filter(|r| self.registry.role(r).is_some()) {
                gate::require_grantable(&self.policies, caller, role)?;
            }
            Ok(Allowed::Written(
                self.add_operator(now, name, roles, &caller.id, Some(allow)).await?,
            ))
        })
        .await
    }

    /// Creates an operator without an authenticated caller: `custodia operator create
    /// --data-dir` on the server's own machine. Audited as the API's creation is, by
    /// [`LOCAL_CREATOR`].
    pub async fn insert_operator(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
    ) -> Result<CreatedOperator, VaultError> {
        let event = AuditEvent::unauthenticated("operator.create", LOCAL_CREATOR.to_owned()).fields(roles);
        let allow = self.audit_row(&event, now, None)?;
        self.add_operator(now, name, roles, LOCAL_CREATOR, Some(allow)).await
    }

    async fn add_operator(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
        created_by: &str,
        audit: Option<custodia_store::AuditRow>,
    ) -> Result<CreatedOperator, VaultError> {
        crate::principal::check_name(name)?;
        if ["opr_", "prn_"]
            .iter()
            .any(|p| name.to_ascii_lowercase().starts_with(p))
        {
            return Err(VaultError::bad_request(
                "invalid_name",
                "an operator's name must not look like an id (opr_..., prn_...)",
            ));
        }
        // Names differing only in case would be told apart by nobody reading a log.
        let taken = self.store.reader().await?.operators().all().await?;
        if taken.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
            return Err(VaultError::new(
                ErrorKind::Conflict,
                "operator_exists",
                format!("an operator named `{name}` (in some case) already exists"),
            ));
        }
        let roles = self.known_roles(roles)?;
        let code = Zeroizing::new(random_hex::<16>()?);
        let row = OperatorRow {
            operator_id: format!("opr_{}", random_hex::<12>()?),
            name: name.to_owned(),
            roles,
            password_hash: None,
            totp_sealed: None,
            totp_confirmed_at: None,
            totp_last_step: None,
            enrol_hash: Some(sha256(code.as_bytes()).to_vec()),
            enrol_expires_at: Some(now.0 + ENROLMENT_MS),
            failed_logins: 0,
            locked_until: None,
            created_at: now.0,
            created_by: created_by.to_owned(),
            disabled_at: None,
            seal: None,
        };
        let row = OperatorRow {
            seal: Some(self.keys.access_seal.of_operator(&row)),
            ..row
        };
        let stored = row.clone();
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.operators().insert(&stored, &*seal).await?;
                    tx.audit().append(audit.as_slice()).await
                })
            })
            .await
            .map_err(|e| match e {
                custodia_store::StoreError::Conflict(_) => VaultError::new(
                    ErrorKind::Conflict,
                    "operator_exists",
                    format!("an operator named `{name}` already exists"),
                ),
                other => other.into(),
            })?;
        Ok(CreatedOperator {
            operator_id: row.operator_id,
            enrolment_code: code,
            enrolment_expires_at: Timestamp(now.0 + ENROLMENT_MS),
        })
    }

    /// Roles as given, each known to the registry, sorted and without repeats.
    fn known_roles(&self, roles: &[String]) -> Result<Vec<String>, VaultError> {
        if roles.is_empty() {
            return Err(VaultError::bad_request(
                "no_roles",
                "an operator needs at least one role",
            ));
        }
        for role in roles {
            if self.registry.role(role).is_none() {
                return Err(VaultError::unprocessable(
                    "unknown_role",
                    format!("no role {} in the registry", crate::error::quoted_name(role, false)),
                )
                .with_field("roles"));
            }
        }
        let mut unique = roles.to_vec();
        unique.sort();
        unique.dedup();
        Ok(unique)
    }

    /// The operator still enrolling as `name` with `code`, or 401.
    async fn enrolling(&self, name: &str, code: &str, now: Timestamp) -> Result<OperatorRow, VaultError> {
        self.accepting_access()?;
        let row = self.store.reader().await?.operators().by_name(name).await?;
        let Some(row) = row else {
            self.auth_failed_label("enrolment", now);
            return Err(invalid_enrolment());
        };
        let matches = row
            .enrol_hash
            .as_deref()
            .is_some_and(|h| constant_time_eq(h, &sha256(code.trim().as_bytes())));
        // (an enrolment code written into the row by hand would hand its roles to whoever chose it)
        let live = row.enrol_expires_at.is_some_and(|at| now.0 < at)
            && row.disabled_at.is_none()
            && self.keys.access_seal.holds_operator(&row);
        if matches && live && row.totp_confirmed_at.is_none() {
            Ok(row)
        } else {
            self.auth_failed_label("enrolment", now);
            Err(invalid_enrolment())
        }
    }

    /// First enrolment step: sets the password and returns a fresh TOTP secret as an
    /// `otpauth://` URI and in base32. Repeating it (before confirming) starts over.
    pub async fn enrol_operator(
        &self,
        now: Timestamp,
        name: &str,
        code: &str,
        password: Zeroizing<String>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), VaultError> {
        let row = self.enrolling(name, code, now).await?;
        let org = &self.registry.organization;
        let context = [org.name.as_str(), org.contact.as_str()];
        custodia_crypto::check_new_password(&password, &row.name, &context)
            .map_err(|m| VaultError::unprocessable("weak_password", m).with_field("password"))?;
        let hash = tokio::task::spawn_blocking(move || custodia_crypto::hash_password(&password))
            .await
            .map_err(|e| VaultError::internal(&e))??;
        let secret = TotpSecret::generate()?;
        let sealed = self
            .keys
            .operator_totp_key()?
            .seal(&totp_context(&row.operator_id), secret.expose())?;
        let event = AuditEvent::unauthenticated("operator.enrol", row.operator_id.clone());
        let allow = self.audit_row(&event, now, None)?;
        let (id, enrol_hash) = (row.operator_id.clone(), row.enrol_hash.clone().unwrap_or_default());
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        let enrolled = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let enrolled = tx.operators().enrol(&id, &enrol_hash, &hash, &sealed).await?;
                    if enrolled {
                        crate::keys::reseal_operator(&mut tx, &seal, &id).await?;
                        tx.audit().append(&[allow]).await?;
                    }
                    Ok(enrolled)
                })
            })
            .await?;
        if !enrolled {
            return Err(invalid_enrolment());
        }
        Ok((secret.otpauth_uri(TOTP_ISSUER, &row.name), secret.to_base32()))
    }

    /// Second enrolment step: a code from the authenticator proves it holds the secret;
    /// the operator may log in from then on.
    pub async fn confirm_enrolment(
        &self,
        now: Timestamp,
        name: &str,
        code: &str,
        totp: &str,
    ) -> Result<(), VaultError> {
        let row = self.enrolling(name, code, now).await?;
        let secret = self.totp_secret(&row)?.ok_or_else(|| {
            VaultError::new(
                ErrorKind::Conflict,
                "enrolment_not_started",
                "set a password first (POST /v1/operators/enrol)",
            )
        })?;
        let step = secret.verify(totp, now.0.div_euclid(1000), None).map_err(|_| {
            self.auth_failed_label("enrolment", now);
            VaultError::unauthenticated("the code does not match the authenticator's secret")
        })?;
        let event = AuditEvent::unauthenticated("operator.enrol.confirm", row.operator_id.clone());
        let allow = self.audit_row(&event, now, None)?;
        let (id, enrol_hash) = (row.operator_id.clone(), row.enrol_hash.clone().unwrap_or_default());
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        let confirmed = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let confirmed = tx.operators().confirm(&id, &enrol_hash, step, now.0).await?;
                    if confirmed {
                        crate::keys::reseal_operator(&mut tx, &seal, &id).await?;
                        tx.audit().append(&[allow]).await?;
                    }
                    Ok(confirmed)
                })
            })
            .await?;
        if confirmed { Ok(()) } else { Err(invalid_enrolment()) }
    }

    /// The operator's TOTP secret, unsealed, if enrolment has set one.
    fn totp_secret(&self, row: &OperatorRow) -> Result<Option<TotpSecret>, VaultError> {
        let Some(sealed) = &row.totp_sealed else {
            return Ok(None);
        };
        let plain = Zeroizing::new(
            self.keys
                .operator_totp_key()?
                .open(&totp_context(&row.operator_id), sealed)?,
        );
        Ok(Some(TotpSecret::from_bytes(&plain)))
    }

    /// Logs an operator in with password and TOTP code: a session token (shown once). A
    /// wrong password or code, a reused code, a disabled or unenrolled account all answer
    /// the same 401; each attempt on a known operator is an `operator.login` entry naming the
    /// reason. Every attempt is counted before it is checked (a success forgives it), so of
    /// racing attempts no more are checked than `[operators] max_failed_logins`; beyond it the
    /// account locks (429 `login_locked`) for a minute, doubling per further failure, at most
    /// an hour. Unknown names are counted and locked alike, in memory.
    pub async fn login(
        &self,
        now: Timestamp,
        name: &str,
        password: Zeroizing<String>,
        totp: &str,
    ) -> Result<OpenedSession, VaultError> {
        self.accepting_access()?;
        let max = self.registry.operators.max_failed_logins;
        let row = self.store.reader().await?.operators().by_name(name).await?;
        let Some(row) = row else {
            self.phantom_logins.begin(name, now, max).map_err(|until| {
                self.auth_failed_label("operator", now);
                locked(until)
            })?;
            // As slow as a wrong password, so timing does not tell which names exist.
            verify_password(password, None).await;
            self.auth_failed_label("operator", now);
            return Err(invalid_login());
        };
        // A locked account answers from the row just read, as an unknown name answers from
        // memory: no write, and one grouped `auth.failed` count, not an entry per attempt
        // (so neither the time taken nor the log's growth tells which names exist, and no
        // one floods the log through a locked name).
        if let Some(until) = row.locked_until.filter(|until| now.0 < *until) {
            self.auth_failed_label("operator", now);
            return Err(locked(until));
        }
        let id = row.operator_id.clone();
        let lockout = move |n| lockout_ms(n, max).map(|ms| now.0 + ms);
        let attempt = self
            .store
            .write(move |mut tx| Box::pin(async move { tx.operators().begin_attempt(&id, now.0, lockout).await }))
            .await?;
        if let Attempt::Locked(until) = attempt {
            self.login_refused(&row, now, "locked").await?;
            return Err(locked(until));
        }
        let password_ok = verify_password(password, row.password_hash.clone()).await;
        let reason = if !password_ok {
            Some("invalid_password")
        } else if row.disabled_at.is_some() {
            Some("operator_disabled")
        } else if !self.keys.access_seal.holds_operator(&row) {
            // written or changed in the database by hand (roles): no session from it
            Some("operator_altered")
        } else if row.totp_confirmed_at.is_none() {
            Some("not_enrolled")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.login_refused(&row, now, reason).await?;
            return Err(invalid_login());
        }
        let Some(secret) = self.totp_secret(&row)? else {
            self.login_refused(&row, now, "not_enrolled").await?;
            return Err(invalid_login());
        };
        let step = match secret.verify(totp, now.0.div_euclid(1000), row.totp_last_step) {
            Ok(step) => step,
            Err(refusal) => {
                let reason = match refusal {
                    TotpRefusal::Reused => "totp_reused",
                    TotpRefusal::Malformed | TotpRefusal::Wrong => "invalid_totp",
                };
                self.login_refused(&row, now, reason).await?;
                return Err(invalid_login());
            }
        };
        let session_id = random_hex::<8>()?;
        let secret_part = Zeroizing::new(random_hex::<32>()?);
        let token = Zeroizing::new(format!("css_{session_id}_{}", secret_part.as_str()));
        let expires_at = Timestamp(now.0 + i64::from(self.registry.operators.session_minutes) * 60_000);
        let session = SessionRow {
            session_id: session_id.clone(),
            secret_hash: sha256(secret_part.as_bytes()).to_vec(),
            operator_id: row.operator_id.clone(),
            created_at: now.0,
            expires_at: expires_at.0,
            revoked_at: None,
            seal: None,
        };
        let session = SessionRow {
            seal: Some(self.keys.access_seal.of_session(&session)),
            ..session
        };
        let event =
            AuditEvent::unauthenticated("operator.login", row.operator_id.clone()).detail("session", &session_id);
        let allow = self.audit_row(&event, now, None)?;
        let replayed = self.audit_row(&event.clone().refused("totp_reused"), now, None)?;
        let id = row.operator_id.clone();
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        let opened = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    // The step is checked again here: of two logins racing with one code,
                    // only the first to commit gets a session.
                    if tx.operators().login_succeeded(&id, step).await? {
                        tx.operators().open_session(&session, &*seal).await?;
                        tx.audit().append(&[allow]).await?;
                        Ok(true)
                    } else {
                        tx.audit().append(&[replayed]).await?;
                        Ok(false)
                    }
                })
            })
            .await?;
        if !opened {
            return Err(invalid_login());
        }
        let completions = self
            .store
            .reader()
            .await?
            .operators()
            .training(Some(&row.operator_id), &*self.keys.access_seal)
            .await?;
        Ok(OpenedSession {
            operator_id: row.operator_id,
            token,
            expires_at,
            training_due: due(&course_statuses(&self.registry.training, &completions, now)),
        })
    }

    /// Writes a refused login's entry.
    async fn login_refused(&self, row: &OperatorRow, now: Timestamp, reason: &'static str) -> Result<(), VaultError> {
        let event = AuditEvent::unauthenticated("operator.login", row.operator_id.clone()).refused(reason);
        self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await
    }

    /// Authenticates a session token at `now`.
    pub(crate) async fn authenticate_session(&self, token: &str, now: Timestamp) -> Result<Principal, VaultError> {
        let (session_id, secret) =
            split_session_token(token).ok_or_else(|| VaultError::unauthenticated("malformed session token"))?;
        let invalid = || VaultError::unauthenticated("invalid or expired session; log in again");
        let mut reader = self.store.reader().await?;
        let session = reader.operators().session(session_id).await?.ok_or_else(invalid)?;
        if !constant_time_eq(&sha256(secret.as_bytes()), &session.secret_hash)
            || session.revoked_at.is_some()
            || now.0 >= session.expires_at
        {
            return Err(invalid());
        }
        let seal = &self.keys.access_seal;
        if !seal.holds_session(&session) {
            tracing::error!(
                session = %session.session_id,
                "an operator session does not carry the vault's seal: it was written or changed in the database by hand (or opened before seals); refused"
            );
            return Err(invalid());
        }
        let operator = reader
            .operators()
            .by_id(&session.operator_id)
            .await?
            .filter(|o| o.disabled_at.is_none())
            .ok_or_else(invalid)?;
        if !seal.holds_operator(&operator) {
            tracing::error!(
                operator = %operator.operator_id,
                "an operator's row does not carry the vault's seal: it was written or changed in the database by hand; refused"
            );
            return Err(invalid());
        }
        let completions = reader
            .operators()
            .training(Some(&operator.operator_id), &**seal)
            .await?;
        let mut grants = reader.operators().break_glass_of_session(&session.session_id).await?;
        grants.retain(|g| seal.holds_grant(g));
        let mut roles = operator.roles;
        let mut break_glass = None;
        let mut glass_roles = Vec::new();
        // A grant counts while it lasts and while the registry still allows its role.
        for grant in grants.iter().filter(|g| now.0 < g.expires_at) {
            if self.registry.operators.break_glass_roles.contains(&grant.role) {
                if !roles.contains(&grant.role) {
                    glass_roles.push(grant.role.clone());
                }
                roles.push(grant.role.clone());
                break_glass = Some(grant.grant_id.clone());
            }
        }
        roles.sort();
        roles.dedup();
        Ok(Principal {
            id: operator.operator_id,
            name: operator.name,
            roles,
            context: BTreeMap::new(),
            operator: Some(OperatorSession {
                session_id: session.session_id,
                training_due: due(&course_statuses(&self.registry.training, &completions, now)),
                justification: None,
                break_glass,
                glass_roles,
            }),
        })
    }

    /// Break-glass: the caller (an operator's session) takes `role`, one of the registry's
    /// `[operators] break_glass_roles`, for `minutes` (at most `break_glass_minutes`) by
    /// stating `reason`. Loud: the grant's own entry is flagged, every entry of the session
    /// while it lasts names it, an error-level log line goes out, and access reviews list it.
    pub async fn break_glass(
        &self,
        caller: &Principal,
        now: Timestamp,
        role: &str,
        reason: &str,
        minutes: Option<u32>,
    ) -> Result<BreakGlassRow, VaultError> {
        let event = AuditEvent::new("break_glass.start", caller)
            .fields([&crate::error::shown(role)])
            .detail("flag", "break_glass");
        self.audited(event.clone(), now, async {
            let Some(session) = &caller.operator else {
                return Err(VaultError::forbidden(
                    "break_glass_for_operators",
                    "break-glass is for an operator's session (a person), not an API key",
                )
                .into());
            };
            // Emergencies do not excuse training, and one grant at a time.
            may_see_personal_data(caller, false)?;
            if session.break_glass.is_some() {
                return Err(VaultError::new(
                    ErrorKind::Conflict,
                    "break_glass_active",
                    "this session already holds a break-glass grant; it must expire first",
                )
                .into());
            }
            let rules = &self.registry.operators;
            if !rules.break_glass_roles.iter().any(|r| r == role) {
                return Err(VaultError::forbidden(
                    "break_glass_role_not_allowed",
                    format!(
                        "role {} is not one the registry's [operators] break_glass_roles allows ({})",
                        crate::error::quoted_name(role, false),
                        if rules.break_glass_roles.is_empty() {
                            "none".to_owned()
                        } else {
                            rules.break_glass_roles.join(", ")
                        }
                    ),
                )
                .into());
            }
            let minutes = minutes.unwrap_or(rules.break_glass_minutes);
            if minutes == 0 || minutes > rules.break_glass_minutes {
                return Err(VaultError::unprocessable(
                    "invalid_minutes",
                    format!("minutes must be between 1 and {}", rules.break_glass_minutes),
                )
                .with_field("minutes")
                .into());
            }
            // In a body the schema calls a string: a refused text is a 422 (as a header it is
            // a malformed request).
            let reason = check_reason(reason, "invalid_reason", "the reason")
                .map_err(|e| VaultError::unprocessable(e.code, e.message).with_field("reason"))?;
            let row = BreakGlassRow {
                grant_id: format!("bg_{}", random_hex::<12>()?),
                operator_id: caller.id.clone(),
                session_id: session.session_id.clone(),
                role: role.to_owned(),
                reason: reason.clone(),
                started_at: now.0,
                expires_at: now.0 + i64::from(minutes) * 60_000,
                seal: None,
            };
            let row = BreakGlassRow {
                seal: Some(self.keys.access_seal.of_grant(&row)),
                ..row
            };
            let entry = self.audit_row(
                &event
                    .clone()
                    .detail("break_glass", row.grant_id.clone())
                    .detail("reason", reason)
                    .detail("minutes", minutes.to_string()),
                now,
                None,
            )?;
            let stored = row.clone();
            let seal = std::sync::Arc::clone(&self.keys.access_seal);
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        tx.operators().open_break_glass(&stored, &*seal).await?;
                        tx.audit().append(&[entry]).await
                    })
                })
                .await?;
            tracing::error!(
                operator = %row.operator_id,
                grant = %row.grant_id,
                role = %row.role,
                minutes,
                "BREAK-GLASS: an operator took an emergency role"
            );
            Ok(Allowed::Written(row))
        })
        .await
    }

    /// Ends the caller's session (an operator's; a service key has none).
    pub async fn logout(&self, caller: &Principal, now: Timestamp) -> Result<(), VaultError> {
        let Some(session) = &caller.operator else {
            return Err(VaultError::unprocessable(
                "not_a_session",
                "only an operator's session can log out; API keys are revoked instead",
            ));
        };
        let event = AuditEvent::new("operator.logout", caller);
        let allow = self.audit_row(&event, now, None)?;
        let id = session.session_id.clone();
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.operators()
                        .revoke_sessions(SessionsOf::Session(&id), now.0, &*seal)
                        .await?;
                    tx.audit().append(&[allow]).await
                })
            })
            .await?;
        Ok(())
    }

    /// Every operator with their training state. Needs `manage_operators`.
    pub async fn list_operators(&self, caller: &Principal, now: Timestamp) -> Result<Vec<OperatorInfo>, VaultError> {
        let event = AuditEvent::new("operator.list", caller);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageOperators)?;
            Ok(Allowed::Read(self.operator_infos(now).await?, None))
        })
        .await
    }

    /// Every operator with their training state, for local tools.
    pub async fn operator_infos(&self, now: Timestamp) -> Result<Vec<OperatorInfo>, VaultError> {
        let mut reader = self.store.reader().await?;
        let operators = reader.operators().all().await?;
        let training = reader.operators().training(None, &*self.keys.access_seal).await?;
        Ok(operators
            .into_iter()
            .map(|o| {
                let mine: Vec<TrainingRow> = training
                    .iter()
                    .filter(|t| t.operator_id == o.operator_id)
                    .cloned()
                    .collect();
                OperatorInfo {
                    enrolled: o.totp_confirmed_at.is_some(),
                    training: course_statuses(&self.registry.training, &mine, now),
                    operator_id: o.operator_id,
                    name: o.name,
                    roles: o.roles,
                    created_at: Timestamp(o.created_at).to_rfc3339(),
                    locked_until: o.locked_until.filter(|t| *t > now.0).map(|t| Timestamp(t).to_rfc3339()),
                    disabled_at: o.disabled_at.map(|t| Timestamp(t).to_rfc3339()),
                }
            })
            .collect())
    }

    /// Records that operator `id` (an `opr_` id or a name) completed `course` at
    /// `completed_at`, attested by the caller. Needs `manage_operators`; nobody attests their
    /// own training.
    pub async fn record_training(
        &self,
        caller: &Principal,
        now: Timestamp,
        id: &str,
        course: &str,
        completed_at: Option<Timestamp>,
    ) -> Result<OperatorInfo, VaultError> {
        let event = AuditEvent::new("operator.training", caller).fields([&crate::error::shown(course)]);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageOperators)?;
            Ok(Allowed::Written(
                self.add_training(&caller.id, now, id, course, completed_at, Some(allow))
                    .await?,
            ))
        })
        .await
    }

    /// [`Vault::record_training`] from the server's own machine, attested by `attested_by`.
    pub async fn insert_training(
        &self,
        attested_by: &str,
        now: Timestamp,
        id: &str,
        course: &str,
        completed_at: Option<Timestamp>,
    ) -> Result<OperatorInfo, VaultError> {
        let event = AuditEvent::unauthenticated("operator.training", attested_by.to_owned())
            .fields([&crate::error::shown(course)]);
        let allow = self.audit_row(&event, now, None)?;
        self.add_training(attested_by, now, id, course, completed_at, Some(allow))
            .await
    }

    async fn add_training(
        &self,
        attested_by: &str,
        now: Timestamp,
        id: &str,
        course: &str,
        completed_at: Option<Timestamp>,
        audit: Option<custodia_store::AuditRow>,
    ) -> Result<OperatorInfo, VaultError> {
        if !self.registry.training.contains_key(course) {
            let known: Vec<&str> = self.registry.training.keys().map(String::as_str).collect();
            return Err(VaultError::unprocessable(
                "unknown_course",
                format!(
                    "no course {} in the registry's [training]; courses: {}",
                    crate::error::quoted_name(course, false),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .with_field("course"));
        }
        let completed_at = completed_at.unwrap_or(now);
        if completed_at > now {
            return Err(VaultError::unprocessable(
                "completion_in_the_future",
                "completed_at must not be in the future",
            )
            .with_field("completed_at"));
        }
        let operator = self.operator_by(id).await?;
        if self.made_by(attested_by, &operator.operator_id).await? {
            return Err(VaultError::forbidden(
                "self_attestation",
                "an operator cannot attest their own training, nor can an account they created (directly or through others); ask another administrator",
            ));
        }
        let row = TrainingRow {
            operator_id: operator.operator_id.clone(),
            course: course.to_owned(),
            completed_at: completed_at.0,
            attested_by: attested_by.to_owned(),
            recorded_at: now.0,
        };
        let seal = std::sync::Arc::clone(&self.keys.access_seal);
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.operators().record_training(&row, &*seal).await?;
                    tx.audit().append(audit.as_slice()).await
                })
            })
            .await?;
        self.operator_infos(now)
            .await?
            .into_iter()
            .find(|o| o.operator_id == operator.operator_id)
            .ok_or_else(|| VaultError::internal(&"an operator vanished after its training was recorded"))
    }

    /// Whether `account` is `operator`, or was created by it, directly or through a chain of
    /// operators and API keys it created: such an account may act for it. A chain that loops
    /// (a key rotation names the rotator as the key's creator, so two keys can name each
    /// other) or runs past [`MAX_CREATOR_CHAIN`] cannot show where it began, and counts as
    /// made by the operator (the check fails closed).
    async fn made_by(&self, account: &str, operator: &str) -> Result<bool, VaultError> {
        let mut reader = self.store.reader().await?;
        let mut current = account.to_owned();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_CREATOR_CHAIN {
            if current == operator || !seen.insert(current.clone()) {
                return Ok(true);
            }
            let creator = if current.starts_with("prn_") {
                reader.principals().by_id(&current).await?.and_then(|p| p.created_by)
            } else {
                reader.operators().by_id(&current).await?.map(|o| o.created_by)
            };
            match creator {
                Some(creator) => current = creator,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The operator with id (`opr_...`) or name `id`, or 404.
    pub(crate) async fn operator_by(&self, id: &str) -> Result<OperatorRow, VaultError> {
        let mut reader = self.store.reader().await?;
        let row = if id.starts_with("opr_") {
            reader.operators().by_id(id).await?
        } else {
            reader.operators().by_name(id).await?
        };
        row.ok_or_else(|| VaultError::not_found("operator_not_found", "no operator with that id or name"))
    }

    /// Disables an operator and ends their sessions at once. Needs `manage_operators` and
    /// `grant` on each of their roles.
    pub async fn disable_operator(&self, caller: &Principal, now: Timestamp, id: &str) -> Result<(), VaultError> {
        let event = AuditEvent::new("operator.disable", caller).fields([&crate::error::shown(id)]);
        let allow = self.audit_row(&event, now, None)?;
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageOperators)?;
            let operator = self.operator_by(id).await?;
            for role in &operator.roles {
                gate::require_grantable(&self.policies, caller, role)?;
            }
            let target = operator.operator_id.clone();
            let seal = std::sync::Arc::clone(&self.keys.access_seal);
            let disabled = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        let disabled = tx.operators().disable(&target, now.0).await?;
                        if disabled {
                            crate::keys::reseal_operator(&mut tx, &seal, &target).await?;
                        }
                        tx.operators()
                            .revoke_sessions(SessionsOf::Operator(&target), now.0, &*seal)
                            .await?;
                        if disabled {
                            tx.audit().append(&[allow]).await?;
                        }
                        Ok(disabled)
                    })
                })
                .await?;
            if disabled {
                Ok(Allowed::Written(()))
            } else {
                Err(VaultError::new(
                    ErrorKind::Conflict,
                    "operator_disabled",
                    "the operator is already disabled",
                )
                .into())
            }
        })
        .await
    }

    /// Courses lapsing within their reminder period (or lapsed), per enrolled, active
    /// operator: what the reminder job sends.
    pub async fn training_reminders(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(OperatorInfo, Vec<CourseStatus>)>, VaultError> {
        Ok(self
            .operator_infos(now)
            .await?
            .into_iter()
            .filter(|o| o.disabled_at.is_none())
            .filter_map(|o| {
                let pending: Vec<CourseStatus> = o.training.iter().filter(|c| c.status != "current").cloned().collect();
                (!pending.is_empty()).then_some((o, pending))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course(name: &str, valid_days: u32, remind_days: u32) -> (String, Course) {
        (
            name.to_owned(),
            Course {
                name: name.to_owned(),
                description: "d".into(),
                valid_days,
                remind_days,
            },
        )
    }

    #[test]
    fn course_states_follow_the_clock() {
        let day = 86_400_000;
        let courses: BTreeMap<_, _> = [course("a", 10, 3), course("b", 10, 3)].into_iter().collect();
        let done = |at| TrainingRow {
            operator_id: "opr_1".into(),
            course: "a".into(),
            completed_at: at,
            attested_by: "prn_x".into(),
            recorded_at: at,
        };
        let rows = [done(0), done(day)];
        let at = |d: i64| course_statuses(&courses, &rows, Timestamp(d * day));
        let states = |d| at(d).into_iter().map(|s| s.status).collect::<Vec<_>>();
        // The latest completion counts: valid from day 1 to day 11, reminders from day 8.
        assert_eq!(states(5), ["current", "missing"]);
        assert_eq!(states(8), ["due_soon", "missing"]);
        assert_eq!(states(11), ["expired", "missing"]);
        assert_eq!(due(&at(8)), ["b"]);
        assert_eq!(due(&at(11)), ["a", "b"]);
        assert_eq!(at(5)[0].valid_until.as_deref(), Some("1970-01-12T00:00:00.000Z"));
    }

    #[test]
    fn lockout_doubles_and_is_capped() {
        assert_eq!(lockout_ms(4, 5), None);
        assert_eq!(lockout_ms(5, 5), Some(60_000));
        assert_eq!(lockout_ms(6, 5), Some(120_000));
        assert_eq!(lockout_ms(9, 5), Some(16 * 60_000));
        assert_eq!(lockout_ms(500, 5), Some(MAX_LOCKOUT_MS));
    }

    #[test]
    fn justifications_and_tokens_are_checked() {
        assert_eq!(check_justification("  ticket 4411 ").unwrap(), "ticket 4411");
        for bad in [
            "",
            "   ",
            "two\nlines",
            &"x".repeat(201),
            "a\u{2028}b",
            "x \u{202E}live",
            "zero\u{200B}width",
        ] {
            assert!(check_justification(bad).is_err(), "{bad:?}");
        }
        let token = format!("css_{}_{}", "a".repeat(16), "b".repeat(64));
        assert!(split_session_token(&token).is_some());
        for bad in [
            "css_",
            "cst_0123456789abcdef_00",
            &format!("css_{}_{}", "a".repeat(15), "b".repeat(64)),
        ] {
            assert!(split_session_token(bad).is_none(), "{bad}");
        }
    }

    const DAY: i64 = 86_400_000;
    /// A fixed start, on a TOTP step boundary.
    const T0: i64 = 1_800_000_010_000 - 1_800_000_010_000 % 30_000;

    use crate::principal::tests::admin;

    async fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        (dir, vault)
    }

    fn code_at(secret: &str, at: i64) -> String {
        let secret = TotpSecret::from_base32(secret).unwrap();
        secret.code_at_step(custodia_crypto::totp_step(at.div_euclid(1000)))
    }

    /// Enrols `name` (support_agent) at T0 and returns its base32 TOTP secret.
    async fn enrolled(vault: &Vault, name: &str) -> String {
        let created = vault
            .create_operator(&admin(), Timestamp(T0), name, &["support_agent".into()])
            .await
            .unwrap();
        let code = created.enrolment_code.to_string();
        let pw = || Zeroizing::new("correct horse battery staple".to_owned());
        // A wrong enrolment code and a weak password are refused.
        assert_eq!(
            vault
                .enrol_operator(Timestamp(T0), name, "0".repeat(32).as_str(), pw())
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Unauthenticated
        );
        let weak = vault
            .enrol_operator(Timestamp(T0), name, &code, Zeroizing::new("short".into()))
            .await
            .unwrap_err();
        assert_eq!(weak.code, "weak_password");
        let (uri, secret) = vault.enrol_operator(Timestamp(T0), name, &code, pw()).await.unwrap();
        assert!(uri.starts_with("otpauth://totp/Custodia:"), "{}", uri.as_str());
        // Not enrolled until a code confirms the authenticator.
        let early = vault.login(Timestamp(T0), name, pw(), &code_at(&secret, T0)).await;
        assert_eq!(early.err().map(|e| e.kind), Some(ErrorKind::Unauthenticated));
        vault
            .confirm_enrolment(Timestamp(T0 + 30_000), name, &code, &code_at(&secret, T0 + 30_000))
            .await
            .unwrap();
        // The enrolment code is spent.
        assert!(
            vault
                .enrol_operator(Timestamp(T0 + 60_000), name, &code, pw())
                .await
                .is_err()
        );
        secret.to_string()
    }

    /// A session that expired a week ago is deleted by the access check's prune, its term
    /// taken out of the access rows' tally (the check after it holds), audited with how many;
    /// a live session stays and opens as before.
    #[tokio::test]
    async fn sessions_expired_a_week_ago_are_pruned_and_the_tally_still_holds() {
        let (_dir, vault) = vault().await;
        let secret = enrolled(&vault, "ana").await;
        let pw = || Zeroizing::new("correct horse battery staple".to_owned());
        let t1 = T0 + 60_000;
        let old = vault
            .login(Timestamp(t1), "ana", pw(), &code_at(&secret, t1))
            .await
            .unwrap();
        let t2 = t1 + 8 * 86_400_000;
        let live = vault
            .login(Timestamp(t2), "ana", pw(), &code_at(&secret, t2))
            .await
            .unwrap();
        assert_eq!(vault.prune_sessions(Timestamp(t2)).await.unwrap(), 1);
        assert_eq!(vault.prune_sessions(Timestamp(t2)).await.unwrap(), 0);
        vault.check_access_tally().await.unwrap();
        assert!(vault.authenticate(&live.token, Timestamp(t2 + 1000)).await.is_ok());
        assert!(vault.authenticate(&old.token, Timestamp(t2 + 1000)).await.is_err());
        let entries = vault.all_audit_entries().await;
        let pruned: Vec<_> = entries
            .iter()
            .filter(|e| e.entry.contains("\"operator.sessions_pruned\""))
            .collect();
        assert_eq!(pruned.len(), 1, "{pruned:?}");
        assert!(pruned[0].entry.contains("\"sessions\":\"1\""), "{}", pruned[0].entry);
    }

    #[tokio::test]
    async fn an_operator_enrols_logs_in_reads_with_a_reason_and_loses_access_when_training_lapses() {
        let (_dir, vault) = vault().await;
        let secret = enrolled(&vault, "ana").await;
        let pw = || Zeroizing::new("correct horse battery staple".to_owned());
        // The confirming code (step T0+30 s) cannot log in; the next step's can, once.
        let t1 = T0 + 60_000;
        let replay = vault
            .login(Timestamp(t1), "ana", pw(), &code_at(&secret, T0 + 30_000))
            .await;
        assert!(replay.is_err(), "the confirmation code is spent");
        let session = vault
            .login(Timestamp(t1), "ana", pw(), &code_at(&secret, t1))
            .await
            .unwrap();
        assert_eq!(session.training_due, ["privacy_basics", "security_awareness"]);
        let again = vault
            .login(Timestamp(t1 + 1000), "ana", pw(), &code_at(&secret, t1))
            .await;
        assert_eq!(
            again.err().map(|e| e.kind),
            Some(ErrorKind::Unauthenticated),
            "a code works once"
        );

        let subject = crate::SubjectId::parse("cus_1").unwrap();
        let fields: BTreeMap<String, String> = [("card_number".to_owned(), "4242424242424242".to_owned())]
            .into_iter()
            .collect();
        vault
            .create_record(
                &crate::Call::new(&admin(), "payment", Timestamp(t1)),
                &subject,
                "customers",
                &fields,
            )
            .await
            .unwrap();

        let mut ana = vault.authenticate(&session.token, Timestamp(t1 + 1000)).await.unwrap();
        let read = |p: &Principal, at: i64| {
            let p = p.clone();
            let vault = &vault;
            let subject = subject.clone();
            async move {
                vault
                    .list_records(
                        &crate::Call::new(&p, "customer_support", Timestamp(at)),
                        &subject,
                        "customers",
                        None,
                        &crate::Page::list(None, None).unwrap(),
                        &crate::unmetered,
                    )
                    .await
            }
        };
        assert_eq!(read(&ana, t1 + 1000).await.unwrap_err().code, "training_expired");
        // Nobody attests their own training; an administrator does.
        let own = vault
            .record_training(&ana, Timestamp(t1), "ana", "privacy_basics", None)
            .await
            .unwrap_err();
        assert_eq!(own.kind, ErrorKind::Forbidden);
        for course in ["privacy_basics", "security_awareness"] {
            vault
                .record_training(&admin(), Timestamp(t1), "ana", course, Some(Timestamp(t1)))
                .await
                .unwrap();
        }
        ana = vault.authenticate(&session.token, Timestamp(t1 + 2000)).await.unwrap();
        assert_eq!(read(&ana, t1 + 2000).await.unwrap_err().code, "justification_required");
        if let Some(s) = ana.operator.as_mut() {
            s.justification = Some("ticket 4411".into());
        }
        let records = read(&ana, t1 + 2000).await.unwrap().records;
        let card = &records[0].fields["card_number"];
        assert!(
            card.ends_with("4242") && card.contains('*'),
            "support agents see cards masked: {records:?}"
        );
        // The read's audit entry names the session and carries the reason.
        let mut reader = vault.store.reader().await.unwrap();
        let entries = reader.audit().entries(i64::MIN, 10_000).await.unwrap();
        let last = entries.iter().rev().find(|e| e.entry.contains("record.list")).unwrap();
        assert!(
            last.entry.contains("\"justification\":\"ticket 4411\""),
            "{}",
            last.entry
        );
        assert!(!last.entry.contains("4242424242424242"), "no value in the log");

        // A year and a day later (sessions last an hour, so a new login), training has lapsed.
        let later = t1 + 366 * DAY;
        let session = vault
            .login(Timestamp(later), "ana", pw(), &code_at(&secret, later))
            .await
            .unwrap();
        assert_eq!(session.training_due, ["privacy_basics", "security_awareness"]);
        let mut lapsed = vault.authenticate(&session.token, Timestamp(later)).await.unwrap();
        if let Some(s) = lapsed.operator.as_mut() {
            s.justification = Some("ticket 4412".into());
        }
        assert_eq!(read(&lapsed, later).await.unwrap_err().code, "training_expired");
        // Non-personal functions stay: the scanner capability needs no training.
        assert!(crate::gate::require(&vault.policies, &lapsed, Capability::UseScanner).is_ok());
        // The old session expired long ago; logging out ends the new one.
        assert!(
            vault
                .authenticate(&session.token, Timestamp(later + 61 * 60_000))
                .await
                .is_err()
        );
        vault.logout(&lapsed, Timestamp(later)).await.unwrap();
        assert!(vault.authenticate(&session.token, Timestamp(later + 1)).await.is_err());
    }

    /// Runs futures at once on this task, as racing requests would arrive.
    async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut set = Vec::new();
        for f in futures {
            set.push(Box::pin(f));
        }
        let mut out = Vec::with_capacity(set.len());
        // Polled together: each yields at its awaits, so their store work interleaves.
        let mut pending: Vec<_> = set.into_iter().map(Some).collect();
        let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut all = true;
            for (i, slot) in pending.iter_mut().enumerate() {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            results[i] = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => all = false,
                    }
                }
            }
            if all {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        out.extend(results.into_iter().flatten());
        out
    }

    #[tokio::test]
    async fn failures_lock_the_account_with_backoff_and_every_attempt_is_audited() {
        let (_dir, vault) = vault().await;
        let secret = enrolled(&vault, "bo").await;
        let t = T0 + 120_000;
        for i in 0..5 {
            let wrong = vault
                .login(
                    Timestamp(t + i),
                    "bo",
                    Zeroizing::new("not the password!".into()),
                    "000000",
                )
                .await;
            assert_eq!(wrong.err().map(|e| e.kind), Some(ErrorKind::Unauthenticated));
        }
        // Locked for a minute: even the right password and code are refused (429).
        let pw = Zeroizing::new("correct horse battery staple".to_owned());
        let locked = vault
            .login(Timestamp(t + 10), "bo", pw.clone(), &code_at(&secret, t + 10))
            .await;
        assert_eq!(locked.err().map(|e| e.code), Some("login_locked"));
        // A minute later the right ones work, and the count starts again.
        let after = t + 61_000;
        assert!(
            vault
                .login(Timestamp(after), "bo", pw.clone(), &code_at(&secret, after))
                .await
                .is_ok()
        );
        assert!(vault.flush_authentication_failures(Timestamp(after)).await.unwrap() >= 1);
        let mut reader = vault.store.reader().await.unwrap();
        let entries = reader.audit().entries(i64::MIN, 10_000).await.unwrap();
        let logins: Vec<&str> = entries
            .iter()
            .filter(|e| e.entry.contains("\"operator.login\""))
            .map(|e| e.entry.as_str())
            .collect();
        assert_eq!(
            logins.len(),
            7,
            "one before enrolment was confirmed, five failures, one success: {logins:?}"
        );
        assert!(logins[0].contains("not_enrolled"));
        assert!(logins[1].contains("invalid_password"));
        assert!(logins[6].contains("\"allow\""));
        // the attempt refused while locked is counted in the grouped entry, as an unknown
        // name's would be (no entry of its own: the log's growth tells no name)
        assert!(
            entries
                .iter()
                .any(|e| e.entry.contains("\"auth.failed\"") && e.entry.contains("operator")),
            "{entries:?}"
        );
        assert!(
            !entries.iter().any(|e| e.entry.contains("horse")),
            "no password in the log"
        );
        // Twenty attempts racing each other: five are checked, the rest find the lock.
        let race = Timestamp(after + 1_000);
        let attempts = (0..20).map(|_| vault.login(race, "bo", Zeroizing::new("a wrong password".into()), "000000"));
        let outcomes = futures_join_all(attempts).await;
        let codes: Vec<&str> = outcomes
            .iter()
            .map(|o| o.as_ref().err().map_or("ok", |e| e.code))
            .collect();
        assert_eq!(
            codes.iter().filter(|c| **c == "unauthenticated").count(),
            5,
            "{codes:?}"
        );
        assert_eq!(codes.iter().filter(|c| **c == "login_locked").count(), 15, "{codes:?}");
        // An unknown name answers like a wrong password, and locks like a known one.
        for i in 0..5 {
            let nobody = vault.login(Timestamp(after + i), "nobody", pw.clone(), "123456").await;
            assert_eq!(nobody.err().map(|e| e.message), Some(invalid_login().message));
        }
        let nobody = vault.login(Timestamp(after + 10), "nobody", pw, "123456").await;
        assert_eq!(nobody.err().map(|e| e.code), Some("login_locked"));
    }

    /// A flood of new unknown names never clears an unknown name's lock (a map cleared when
    /// full did, and a name still locked after the flood was then a real operator's).
    #[test]
    fn a_flood_of_unknown_names_keeps_their_locks() {
        let phantoms = PhantomLogins::default();
        let now = Timestamp(1_000_000);
        for _ in 0..5 {
            assert!(phantoms.begin("nobody77", now, 5).is_ok());
        }
        assert!(phantoms.begin("nobody77", now, 5).is_err(), "locked after five");
        for i in 0..20_000 {
            let _ = phantoms.begin(&format!("flood{i}"), now, 5);
        }
        assert!(phantoms.begin("nobody77", now, 5).is_err(), "still locked");
    }

    #[test]
    fn operators_need_training_and_a_reason() {
        let mut p = Principal {
            id: "opr_1".into(),
            name: "ana".into(),
            roles: vec!["support_agent".into()],
            context: BTreeMap::new(),
            operator: Some(OperatorSession {
                session_id: "s".into(),
                training_due: vec!["privacy_basics".into()],
                justification: Some("ticket 1".into()),
                break_glass: None,
                glass_roles: vec![],
            }),
        };
        assert_eq!(may_see_personal_data(&p, false).unwrap_err().code, "training_expired");
        if let Some(s) = p.operator.as_mut() {
            s.training_due.clear();
            s.justification = None;
        }
        assert!(may_see_personal_data(&p, false).is_ok());
        assert_eq!(
            may_see_personal_data(&p, true).unwrap_err().code,
            "justification_required"
        );
        p.operator = None;
        assert!(may_see_personal_data(&p, true).is_ok(), "service keys need neither");
        assert!(
            !format!(
                "{:?}",
                OperatorSession {
                    session_id: "s".into(),
                    training_due: vec![],
                    justification: Some("secret reason".into()),
                    break_glass: None,
                    glass_roles: vec![],
                }
            )
            .contains("secret reason")
        );
    }
}
