//! The vault's keys at run time: the root keyring, the keyed digests under the index key
//! (each with its own domain, named by a method here so no caller spells a label), and
//! per-subject data keys fetched (or created) from the store and unwrapped on demand.

use std::sync::Arc;

use custodia_audit::chain::ChainKey;
use custodia_audit::note::{ED25519_TYPE, NoteSigner};
use custodia_audit::tag::TagKey;
use custodia_crypto::{BLIND_INDEX_LEN, BlindIndexer, DataKey, Domain, IndexKey, Keyring, SecretKey};
use custodia_registry::Purpose;
use custodia_store::{DEFAULT_KEY_CLASS, LEDGER_SEALED, Store, SubjectKeyRow};

use crate::{SetupError, SubjectId, Timestamp, VaultError};

pub(crate) const INDEX_KEY_META: &str = "index_key";
pub(crate) const AUDIT_KEY_META: &str = "audit_signing_key";
pub(crate) const AUDIT_KEY_LABEL: &str = "custodia.audit-signing-key.v1";
/// What the audit entry tag key is derived with from the checkpoint key's seed.
const AUDIT_TAG_LABEL: &str = "custodia.audit-entry-tag.v1";
/// What the audit entry link key is derived with from the checkpoint key's seed.
const AUDIT_LINK_LABEL: &str = "custodia.audit-entry-link.v1";
/// The checkpoint key's public half as a verifier key, for `audit verify --trust-database-key`
/// (which needs no root key); checked against the signing key at every start.
pub const AUDIT_PUBLIC_KEY_META: &str = "audit_public_key";
pub(crate) const REDACTION_KEY_META: &str = "redaction_key";
pub(crate) const REDACTION_KEY_LABEL: &str = "custodia.redaction-key.v1";
pub(crate) const ACCESS_SEAL_KEY_META: &str = "access_seal_key";
pub(crate) const ACCESS_SEAL_KEY_LABEL: &str = "custodia.access-seal-key.v1";
/// Set (`0x01`) by the schema step that added the seals of access rows: the principals and
/// operators from before are sealed at the next start, then it is set to `0x00`.
const ACCESS_SEALS_PENDING: &str = "access_seals_pending";
/// The mark of an access tally still to be made (never obeyed while a tally exists: a tally is never
/// made anew over one).
const ACCESS_TALLY_PENDING: &str = custodia_store::ACCESS_PENDING;
pub(crate) const RECEIPT_KEY_META: &str = "erasure_receipt_key";
pub(crate) const RECEIPT_KEY_LABEL: &str = "custodia.erasure-receipt-key.v1";
/// The name of the key that signs erasure receipts (the first part of its verifier key).
pub const RECEIPT_KEY_NAME: &str = "custodia-erasure-receipts";

/// The class of subject key a value written under `purpose` is sealed under: `default`
/// (destroyed by an erasure) or, for a purpose whose data survives erasure (Art. 17(3)), a
/// class of its own, `purpose:<name>` (no registry name contains a colon, so no purpose's
/// class is `default`).
pub(crate) fn key_class(purpose: &Purpose) -> String {
    if purpose.survives_erasure {
        format!("purpose:{}", purpose.name)
    } else {
        DEFAULT_KEY_CLASS.to_owned()
    }
}

/// How long a keyring found current stays so before a new data key loads it again.
const KEYRING_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The purpose whose data a key class holds, when it is not `default`.
pub(crate) fn class_purpose(class: &str) -> Option<&str> {
    class.strip_prefix("purpose:")
}

pub(crate) struct Keys {
    /// The root keyring; replaced whole when a rotation adds a version or a retirement
    /// removes one (here, or on another node: see [`Keys::unwrap`]).
    keyring: std::sync::RwLock<Arc<Keyring>>,
    /// When a new data key last found the keyring current ([`Keys::reload_if_behind`]).
    pub(crate) checked: std::sync::Mutex<Option<std::time::Instant>>,
    /// Where the keyring comes from; `None` for a vault given a keyring directly (tests,
    /// tools), which cannot rotate.
    pub(crate) provider: Option<Arc<dyn custodia_crypto::KeyProvider>>,
    /// Keyed digests under the index key; reached through the domain methods below.
    indexer: Arc<BlindIndexer>,
    /// Signs audit log checkpoints (Ed25519); its seed is stored wrapped by the root key.
    pub(crate) audit_signer: NoteSigner,
    /// Tags every audit entry the vault writes (derived from the checkpoint key's seed, so a
    /// row of the database deleted or replaced cannot take it away without the checkpoint
    /// key going too): a checkpoint signs no entry without a tag of this key after one with.
    pub(crate) audit_tags: Arc<custodia_audit::tag::TagKey>,
    /// Links every audit entry to the one before it as the store appends it (derived like
    /// `audit_tags`): a checkpoint signs no entry that is not where the vault appended it.
    pub(crate) audit_links: Arc<ChainKey>,
    /// Keys the `hash` and `encrypt` operators of `/v1/redact` (stable across nodes and
    /// restarts, so keyed hashes join); stored wrapped by the root key. A key of its own,
    /// random and unrelated to the index key, so no digest of one can match the other's.
    pub(crate) redaction: SecretKey,
    /// Signs erasure receipts (Ed25519; a key of its own, so a receipt can never pass for a
    /// checkpoint); its seed is stored wrapped by the root key.
    pub(crate) receipt_signer: Arc<NoteSigner>,
    /// Seals the rows that grant access ([`AccessSeal`]); stored wrapped by the root key.
    pub(crate) access_seal: Arc<AccessSeal>,
}

/// The vault's MAC over the rows that grant access (HMAC-SHA256 under a key of its own, a
/// domain label per kind of row): principals, operators, operators' sessions and break-glass
/// grants. Whoever can write the database but holds no root key cannot make a row the vault
/// accepts, nor change what one grants (a principal inserted by hand was honoured at once: an
/// admin key for anyone with write access to the database; a session row, an admin's session).
pub(crate) struct AccessSeal(aws_lc_rs::hmac::Key);

/// A message to seal: a domain label, then each part length-prefixed, each time as a presence
/// byte and 8 bytes big endian.
struct Message(Vec<u8>);

impl Message {
    fn new(domain: &str) -> Self {
        Self(domain.as_bytes().to_vec())
    }

    fn bytes(mut self, part: &[u8]) -> Self {
        self.0.extend_from_slice(&(part.len() as u64).to_be_bytes());
        self.0.extend_from_slice(part);
        self
    }

    fn opt_bytes(mut self, part: Option<&[u8]>) -> Self {
        match part {
            Some(p) => {
                self.0.push(1);
                self.bytes(p)
            }
            None => {
                self.0.push(0);
                self
            }
        }
    }

    fn time(mut self, t: Option<i64>) -> Self {
        match t {
            Some(t) => {
                self.0.push(1);
                self.0.extend_from_slice(&t.to_be_bytes());
            }
            None => self.0.push(0),
        }
        self
    }
}

impl AccessSeal {
    fn new(secret: &SecretKey) -> Self {
        Self(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose()))
    }

    fn sign(&self, m: &Message) -> Vec<u8> {
        aws_lc_rs::hmac::sign(&self.0, &m.0).as_ref().to_vec()
    }

    fn verify(&self, m: &Message, seal: Option<&[u8]>) -> bool {
        seal.is_some_and(|seal| aws_lc_rs::hmac::verify(&self.0, &m.0, seal).is_ok())
    }

    /// A principal: what its key may do and who holds it (not `last_used_at`, written as keys
    /// are used).
    fn principal_message(row: &custodia_store::PrincipalRow) -> Message {
        Message::new("custodia.principal.v1")
            .bytes(row.principal_id.as_bytes())
            .bytes(row.name.as_bytes())
            .bytes(row.roles.join(",").as_bytes())
            .bytes(row.key_id.as_bytes())
            .bytes(&row.key_hash)
            .time(Some(row.created_at))
            .time(row.revoked_at)
            .time(row.expires_at)
            .opt_bytes(row.client_cert.as_deref())
            .opt_bytes(row.created_by.as_deref().map(str::as_bytes))
    }

    /// An operator: who it is, its roles, who made it, its credentials and enrolment, and
    /// whether it is disabled (not the lockout counters nor the last TOTP step, written at
    /// each login).
    fn operator_message(row: &custodia_store::OperatorRow) -> Message {
        Message::new("custodia.operator.v1")
            .bytes(row.operator_id.as_bytes())
            .bytes(row.name.as_bytes())
            .bytes(row.roles.join(",").as_bytes())
            .time(Some(row.created_at))
            .bytes(row.created_by.as_bytes())
            .opt_bytes(row.password_hash.as_deref().map(str::as_bytes))
            .opt_bytes(row.totp_sealed.as_deref())
            .time(row.totp_confirmed_at)
            .opt_bytes(row.enrol_hash.as_deref())
            .time(row.enrol_expires_at)
            .time(row.disabled_at)
    }

    /// A session as opened (its revocation is checked as before).
    fn session_message(row: &custodia_store::SessionRow) -> Message {
        Message::new("custodia.session.v1")
            .bytes(row.session_id.as_bytes())
            .bytes(&row.secret_hash)
            .bytes(row.operator_id.as_bytes())
            .time(Some(row.created_at))
            .time(Some(row.expires_at))
    }

    /// A break-glass grant.
    fn grant_message(row: &custodia_store::BreakGlassRow) -> Message {
        Message::new("custodia.break-glass.v1")
            .bytes(row.grant_id.as_bytes())
            .bytes(row.operator_id.as_bytes())
            .bytes(row.session_id.as_bytes())
            .bytes(row.role.as_bytes())
            .time(Some(row.started_at))
            .time(Some(row.expires_at))
    }

    /// The seal of a principal's row as it is.
    pub(crate) fn of(&self, row: &custodia_store::PrincipalRow) -> Vec<u8> {
        self.sign(&Self::principal_message(row))
    }

    /// Whether a principal's row carries the vault's seal of what it holds.
    pub(crate) fn holds(&self, row: &custodia_store::PrincipalRow) -> bool {
        self.verify(&Self::principal_message(row), row.seal.as_deref())
    }

    pub(crate) fn of_operator(&self, row: &custodia_store::OperatorRow) -> Vec<u8> {
        self.sign(&Self::operator_message(row))
    }

    pub(crate) fn holds_operator(&self, row: &custodia_store::OperatorRow) -> bool {
        self.verify(&Self::operator_message(row), row.seal.as_deref())
    }

    pub(crate) fn of_session(&self, row: &custodia_store::SessionRow) -> Vec<u8> {
        self.sign(&Self::session_message(row))
    }

    pub(crate) fn holds_session(&self, row: &custodia_store::SessionRow) -> bool {
        self.verify(&Self::session_message(row), row.seal.as_deref())
    }

    pub(crate) fn of_grant(&self, row: &custodia_store::BreakGlassRow) -> Vec<u8> {
        self.sign(&Self::grant_message(row))
    }

    pub(crate) fn holds_grant(&self, row: &custodia_store::BreakGlassRow) -> bool {
        self.verify(&Self::grant_message(row), row.seal.as_deref())
    }
}

/// The subject ledger's entries and heads are sealed under the same key (each message names
/// what it is first: `custodia.ledger-entry.v1`, `custodia.ledger-head.v1`).
impl custodia_store::Sealer for AccessSeal {
    fn seal(&self, message: &[u8]) -> Vec<u8> {
        aws_lc_rs::hmac::sign(&self.0, message).as_ref().to_vec()
    }

    fn holds(&self, message: &[u8], seal: &[u8]) -> bool {
        aws_lc_rs::hmac::verify(&self.0, message, seal).is_ok()
    }
}

/// Seals the row of operator `id` as it is now, inside the transaction that changed it.
pub(crate) async fn reseal_operator(
    tx: &mut custodia_store::Tx<'_>,
    seal: &AccessSeal,
    id: &str,
) -> Result<(), custodia_store::StoreError> {
    if let Some(row) = tx.operators().by_id(id).await? {
        tx.operators().set_seal(id, &seal.of_operator(&row), seal).await?;
    }
    Ok(())
}

/// Seals the row of principal `id` as it is now, inside the transaction that changed it.
pub(crate) async fn reseal_principal(
    tx: &mut custodia_store::Tx<'_>,
    seal: &AccessSeal,
    id: &str,
) -> Result<(), custodia_store::StoreError> {
    if let Some(row) = tx.principals().by_id(id).await? {
        tx.principals().set_seal(id, &seal.of(&row), seal).await?;
    }
    Ok(())
}

/// Makes sure every entry of the subject ledger is sealed ([`LEDGER_SEALED`] marks it).
/// A new vault's empty ledger is marked at its first start. Entries without seals and no mark
/// are either a database from before seals (schema version 22) or seals deleted by hand, which
/// nothing in the database can tell apart: they are sealed only when the operator says so
/// (`seal_unsealed`, `serve --seal-ledger`, once after the upgrade), else the start is refused.
/// Seals with the mark gone mean it was deleted by hand: always refused.
pub(crate) async fn settle_ledger_seals(
    store: &Store,
    seal: &Arc<AccessSeal>,
    seal_unsealed: bool,
) -> Result<(), SetupError> {
    if store.reader().await?.meta().get(LEDGER_SEALED).await?.is_some() {
        // a whole subject's ledger deleted, head and all, leaves no trace in the subject:
        // the whole ledger's tally tells
        return match store.reader().await?.ledger().check_tally(&**seal).await {
            Err(custodia_store::StoreError::LedgerAltered(what)) => Err(SetupError::Other(format!(
                "the subject ledger was altered in the database: {what}; refusing to start. The audit log's consent entries say what subjects chose. To go on: take out by hand the entries named here that the vault did not seal, or move this database aside and restore a backup (`custodia restore` refuses to restore over it; moved aside, what changed since the backup is not carried over: revoked keys, requests, the audit log's newer entries)"
            ))),
            other => Ok(other?),
        };
    }
    if store.reader().await?.ledger().any_sealed().await? {
        return Err(SetupError::Other(
            "the subject ledger holds sealed entries but its mark (ledger_sealed) is missing from the database: the row was deleted by hand; refusing to seal the ledger anew (it would seal entries written by hand)".into(),
        ));
    }
    let seal = Arc::clone(seal);
    let sealed = store
        .write(move |mut tx| {
            Box::pin(async move {
                let empty = tx.ledger().after(0, 1).await?.is_empty();
                if !empty && !seal_unsealed {
                    return Err(custodia_store::StoreError::Aborted(UNSEALED_LEDGER.to_owned()));
                }
                if !tx.meta().insert(LEDGER_SEALED, &[1]).await? {
                    // another node marked it first, in its transaction
                    return Ok(0);
                }
                tx.ledger().seal_every_entry(&*seal).await
            })
        })
        .await;
    match sealed {
        Err(custodia_store::StoreError::Aborted(why)) if why == UNSEALED_LEDGER => Err(SetupError::Other(
            "the subject ledger holds entries without seals and no mark that it was sealed: either this database comes from a version before ledger seals (schema version 22), and then start once with `serve --seal-ledger` to seal them, or their seals were deleted by hand, and then do not: restore the database from a backup (sealing would seal whatever was written by hand)".into(),
        )),
        Err(e) => Err(e.into()),
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::warn!(
                entries = n,
                "sealed the subject ledger's entries found without seals, as --seal-ledger asked (once, after the upgrade to schema version 22)"
            );
            Ok(())
        }
    }
}

impl custodia_store::AccessSealer for AccessSeal {
    fn holds_row(&self, row: custodia_store::AccessRow<'_>) -> bool {
        use custodia_store::AccessRow;
        match row {
            AccessRow::Principal(r) => self.holds(r),
            AccessRow::Operator(r) => self.holds_operator(r),
            AccessRow::Session(r) => self.holds_session(r),
            AccessRow::Grant(r) => self.holds_grant(r),
        }
    }
}

/// Why an upgrade step undid what it did: it counted rows, and the operator did not say to
/// take them as they are.
const NEEDS_THE_WORD: &str = "upgrade needs --seal-access";

/// A step of an upgrade over the rows already there: how many it counted.
type UpgradeStep = for<'t, 'c> fn(
    &'t mut custodia_store::Tx<'c>,
    &'t AccessSeal,
) -> custodia_store::BoxFuture<'t, Result<u64, custodia_store::StoreError>>;

/// The access rows checked against their seals and tally, and whether the upgrade's mark
/// asks for the tally still to be made (read in the same transaction).
async fn access_checked(
    tx: &mut custodia_store::Tx<'_>,
    seal: &AccessSeal,
) -> Result<(custodia_store::AccessCheck, bool), custodia_store::StoreError> {
    let pending = tx.meta().get(ACCESS_TALLY_PENDING).await?.as_deref() == Some(&[1u8][..]);
    Ok((tx.tallies().check_access(seal).await?, pending))
}

/// The refusal of a start on access rows found altered.
fn access_refusal(what: &str) -> SetupError {
    SetupError::Other(format!(
        "the rows that grant access were altered in the database: {what}; refusing to start. The audit log's principal and operator entries say what the vault did. To go on: put the rows back as the vault left them, or move this database aside and restore a backup (`custodia restore` refuses to restore over it; moved aside, what changed since the backup is not carried over: keys revoked since work again until revoked anew, operators disabled since, requests, the audit log's newer entries, and the checkpoint log begins afresh)"
    ))
}

impl crate::Vault {
    /// Checks the rows that grant access against their seals and their sealed tally at every
    /// opening: a row changed by hand, or put back as an earlier copy of the database had it
    /// (a revoked key, a disabled operator or a closed session that would otherwise be
    /// honoured again), refuses it. A tally missing without the upgrade's mark refuses it too.
    /// After the upgrade that added the tally (schema version 23) a database with no sealed
    /// row is tallied at once; one with rows waits for the server's start told to tally them
    /// (`serve --seal-access`, [`Self::settle_upgrades`], after its audit log was checked),
    /// and until then changes of access rows are refused.
    pub(crate) async fn settle_access_tally(&self) -> Result<(), SetupError> {
        let seal = Arc::clone(&self.keys.access_seal);
        let checked = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let (check, pending) = access_checked(&mut tx, &seal).await?;
                    match check {
                        custodia_store::AccessCheck::Holds if pending => {
                            // the schema step that sealed the rows from before (version 21)
                            // moved it as it sealed, or another node's start tallied them
                            tx.meta().set(ACCESS_TALLY_PENDING, &[0]).await?;
                        }
                        custodia_store::AccessCheck::NoTally { rows: 0 } if pending => {
                            // nothing to take as the vault's: a new vault
                            tx.tallies().tally_access_rows(&*seal).await?;
                            tx.meta().set(ACCESS_TALLY_PENDING, &[0]).await?;
                        }
                        _ => {}
                    }
                    Ok((check, pending))
                })
            })
            .await;
        match checked {
            Ok((custodia_store::AccessCheck::NoTally { .. }, false)) => Err(SetupError::Other(
                "the tally of the rows that grant access (access_tally) is missing from the database: the row was deleted by hand; refusing to start (a tally made anew would take whatever rows are there now as the vault's)".into(),
            )),
            Ok(_) => Ok(()),
            Err(custodia_store::StoreError::AccessAltered(what)) => Err(access_refusal(&what)),
            Err(e) => Err(e.into()),
        }
    }

    /// What the server's start does once its audit log has been checked against its
    /// checkpoints (and before it signs one): the upgrades to schema versions 23 and 24's work
    /// over rows already there, each step audited in its transaction so that the entry is
    /// signed at once; a start refused before this (a log that does not match) makes nothing.
    /// The access rows' tally made from the rows as they are (`access.tally`), the training
    /// completions from before seals sealed (`training.seal`) and the purpose bindings too
    /// (`binding.seal`), only on the operator's word (`serve --seal-access`, `seal_access`):
    /// the mark that asks for it is in the database, where whoever deletes the tally to have a
    /// row put back taken as the vault's (or inserts completions or bindings) can set it
    /// again. Without it such a start is refused and says why.
    pub async fn settle_upgrades(&self, seal_access: bool) -> Result<(), VaultError> {
        let rows = self
            .upgrade_step(ACCESS_TALLY_PENDING, "access.tally", seal_access, |tx, seal| {
                Box::pin(async move { tx.tallies().tally_access_rows(seal).await.map(i64::unsigned_abs) })
            })
            .await?;
        if rows > 0 {
            tracing::warn!(
                rows,
                "tallied the rows that grant access as they are, as --seal-access asked (once, after the upgrade to schema version 23)"
            );
        }
        let sealed = self
            .upgrade_step(
                custodia_store::TRAINING_SEALS_PENDING,
                "training.seal",
                seal_access,
                |tx, seal| Box::pin(async move { tx.operators().seal_unsealed_training(seal).await.map(|n| n as u64) }),
            )
            .await?;
        if sealed > 0 {
            tracing::warn!(
                completions = sealed,
                "sealed the training completions recorded before seals, as --seal-access asked (once, after the upgrade to schema version 23)"
            );
        }
        let bindings = self
            .upgrade_step(
                custodia_store::BINDING_SEALS_PENDING,
                "binding.seal",
                seal_access,
                |tx, seal| Box::pin(async move { tx.records().seal_unsealed_bindings(seal).await }),
            )
            .await?;
        if bindings > 0 {
            tracing::warn!(
                bindings,
                "sealed the purpose bindings stored before seals, as --seal-access asked (once, after the upgrade to schema version 24)"
            );
        }
        Ok(())
    }

    /// Runs an upgrade's `step` once for the mark `mark` (of two nodes starting at once, the
    /// first to clear it), with the audit entry `action` in its transaction when it counted
    /// any row; a step that counted rows without the operator's word (`allowed`) is undone
    /// and refused. Returns how many rows it counted.
    async fn upgrade_step(
        &self,
        mark: &'static str,
        action: &'static str,
        allowed: bool,
        step: UpgradeStep,
    ) -> Result<u64, VaultError> {
        let event = crate::audit::AuditEvent::unauthenticated(action, crate::LOCAL_CREATOR.to_owned());
        let entry = self.audit_row(&event, crate::Timestamp::now(), None)?;
        let seal = Arc::clone(&self.keys.access_seal);
        let done = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    if !tx.meta().replace(mark, &[1], &[0]).await? {
                        return Ok(0);
                    }
                    let rows = step(&mut tx, &seal).await?;
                    if rows > 0 && !allowed {
                        return Err(custodia_store::StoreError::Aborted(NEEDS_THE_WORD.to_owned()));
                    }
                    if rows > 0 {
                        tx.audit().append(&[entry]).await?;
                    }
                    Ok(rows)
                })
            })
            .await;
        match done {
            Err(custodia_store::StoreError::Aborted(why)) if why == NEEDS_THE_WORD => Err(VaultError::unavailable(
                "upgrade_pending",
                "the database holds rows that grant access without a tally, training completions or purpose bindings without seals, and the mark that asks for them to be taken as they are: either it was just upgraded to schema version 23 or 24, and then start once with `custodia serve --seal-access`, or the tally was deleted (or completions or bindings inserted) by hand, and then do not: put the database back as the vault left it or restore a backup",
            )),
            other => Ok(other?),
        }
    }

    /// Checks the rows that grant access against their seals and tally while the server runs
    /// (a job of its own, every minute, and each sweeper run): found off (a revoked key's row
    /// put back under the running server, which the row's own seal does not tell), or the
    /// tally gone, no key, session or login is accepted from then on, and the next start
    /// refuses. Found whole, the sessions that expired a week or more ago are deleted
    /// ([`Self::prune_sessions`]): each check reads every row.
    pub async fn check_access_tally(&self) -> Result<(), VaultError> {
        let seal = Arc::clone(&self.keys.access_seal);
        let checked = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    match access_checked(&mut tx, &seal).await? {
                        (custodia_store::AccessCheck::NoTally { .. }, false) => Err(
                            custodia_store::StoreError::AccessAltered("its tally was deleted".into()),
                        ),
                        (check, _) => Ok(check),
                    }
                })
            })
            .await;
        if let Ok(custodia_store::AccessCheck::Holds) = checked {
            // in a transaction of its own: a service role not yet granted the deletion (an
            // upgrade whose `migrate --service-role` is still to run) keeps its checks
            if let Err(e) = self.prune_sessions(crate::Timestamp::now()).await {
                tracing::warn!(error = %e, "expired sessions not deleted; will retry");
            }
        }
        if let Err(e @ custodia_store::StoreError::AccessAltered(_)) = checked {
            self.caches.access_off.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(e.into());
        }
        checked.map(drop).map_err(VaultError::from)
    }

    /// Deletes the sessions that expired a week or more before `now` (at most
    /// [`SESSIONS_PRUNED`] at a time), taken out of the access rows' tally, audited as
    /// `operator.sessions_pruned` with how many. Returns how many.
    pub(crate) async fn prune_sessions(&self, now: crate::Timestamp) -> Result<u64, VaultError> {
        let seal = Arc::clone(&self.keys.access_seal);
        let tags = Arc::clone(&self.keys.audit_tags);
        Ok(self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let before = now.0.saturating_sub(SESSIONS_KEPT_MS);
                    let pruned = tx.operators().prune_sessions(before, SESSIONS_PRUNED, &*seal).await?;
                    if pruned > 0 {
                        let event = crate::audit::AuditEvent::unauthenticated(
                            "operator.sessions_pruned",
                            crate::LOCAL_CREATOR.to_owned(),
                        )
                        .detail("sessions", pruned.to_string());
                        let entry = crate::audit::event_row(&event, now, None, &tags)
                            .map_err(|e| custodia_store::StoreError::Backend(e.message))?;
                        tx.audit().append(&[entry]).await?;
                    }
                    Ok(pruned)
                })
            })
            .await?)
    }
}

/// How long an expired session is kept before the access check deletes it.
const SESSIONS_KEPT_MS: i64 = 7 * 24 * 3_600_000;

/// At most this many sessions deleted by one check.
const SESSIONS_PRUNED: i64 = 500;

/// Why [`settle_ledger_seals`] stopped its transaction.
const UNSEALED_LEDGER: &str = "unsealed ledger";

/// The access seal key, made with the vault or by the schema step that added seals (the
/// principals and operators from before are sealed now, once): missing next to principals
/// otherwise, its row was deleted, and a new key would seal whatever the tables hold.
async fn load_access_seal(store: &Store, keyring: &Keyring) -> Result<AccessSeal, SetupError> {
    let pending = store.reader().await?.meta().get(ACCESS_SEALS_PENDING).await?.as_deref() == Some(&[1u8][..]);
    let stored = store.reader().await?.meta().get(ACCESS_SEAL_KEY_META).await?;
    if let Some(wrapped) = stored {
        if pending {
            // the upgrade's sealing is made in the transaction that makes the key: with the
            // key there, the flag was set again by hand (to have rows written by hand sealed)
            tracing::error!(
                "access_seals_pending was set again in the database by hand: ignored (no row is sealed anew)"
            );
            store
                .write(|mut tx| Box::pin(async move { tx.meta().set(ACCESS_SEALS_PENDING, &[0]).await }))
                .await?;
        }
        let secret = keyring
            .unwrap(ACCESS_SEAL_KEY_LABEL, b"", &wrapped)
            .map_err(|_| mismatch(keyring, &wrapped))?;
        return Ok(AccessSeal::new(&secret));
    }
    let principals = store.reader().await?.principals().all().await?;
    let operators = store.reader().await?.operators().all().await?;
    let sealed_before = principals.iter().any(|r| r.seal.is_some()) || operators.iter().any(|r| r.seal.is_some());
    if (!pending && !principals.is_empty()) || sealed_before {
        return Err(SetupError::Other(
            "the access seal key is missing from the database, but it holds principals (or rows sealed by it): the key row was deleted; refusing to make a new one (it would seal rows written by hand)".into(),
        ));
    }
    // A new vault, or the upgrade to schema 21: the key is made, and the rows from before
    // sealed, in one transaction (a key alone would leave them refused; a second start
    // never seals anew)
    let secret = SecretKey::generate()?;
    let wrapped = keyring.wrap(ACCESS_SEAL_KEY_LABEL, b"", &secret)?.0;
    let seal = AccessSeal::new(&secret);
    let principal_seals: Vec<(String, Vec<u8>)> = principals
        .iter()
        .map(|r| (r.principal_id.clone(), seal.of(r)))
        .collect();
    let operator_seals: Vec<(String, Vec<u8>)> = operators
        .iter()
        .map(|r| (r.operator_id.clone(), seal.of_operator(r)))
        .collect();
    let ids: Vec<String> = principal_seals
        .iter()
        .chain(&operator_seals)
        .map(|(id, _)| id.clone())
        .collect();
    let tally_seal = AccessSeal::new(&secret);
    let made = store
        .write(move |mut tx| {
            Box::pin(async move {
                if !tx.meta().insert(ACCESS_SEAL_KEY_META, &wrapped).await? {
                    // another node made it first: its transaction sealed the rows
                    return Ok(false);
                }
                // no row holds a seal yet: the tally begins here, empty, and each seal below
                // moves it (the rows from before sealed now are counted as they are)
                tx.tallies().tally_access_rows(&tally_seal).await?;
                for (id, s) in &principal_seals {
                    tx.principals().set_seal(id, s, &tally_seal).await?;
                }
                for (id, s) in &operator_seals {
                    tx.operators().set_seal(id, s, &tally_seal).await?;
                }
                tx.meta().set(ACCESS_SEALS_PENDING, &[0]).await?;
                Ok(true)
            })
        })
        .await?;
    if !made {
        return Box::pin(load_access_seal(store, keyring)).await;
    }
    if !ids.is_empty() {
        tracing::warn!(
            sealed = %ids.join(", "),
            "sealed the principals and operators written before schema version 21 (once, at this upgrade): check the list holds only those you created; operators log in again"
        );
    }
    Ok(seal)
}

/// The metadata value `meta`, storing `make()`'s first if absent (a concurrent node may win
/// that race; every node then reads the winner).
async fn meta_or_insert(
    store: &Store,
    meta: &'static str,
    make: impl FnOnce() -> Result<Vec<u8>, SetupError>,
) -> Result<Vec<u8>, SetupError> {
    if let Some(value) = store.reader().await?.meta().get(meta).await? {
        return Ok(value);
    }
    let value = make()?;
    store
        .write(move |mut tx| Box::pin(async move { tx.meta().insert(meta, &value).await }))
        .await?;
    store
        .reader()
        .await?
        .meta()
        .get(meta)
        .await?
        .ok_or_else(|| SetupError::Other(format!("{meta} vanished after being stored")))
}

/// Loads a wrapped key from the store's metadata, creating and storing it first if absent.
async fn load_or_create(
    store: &Store,
    keyring: &Keyring,
    meta: &'static str,
    label: &str,
) -> Result<SecretKey, SetupError> {
    let wrapped = meta_or_insert(store, meta, || {
        let secret = SecretKey::generate()?;
        Ok(keyring.wrap(label, b"", &secret)?.0)
    })
    .await?;
    keyring
        .unwrap(label, b"", &wrapped)
        .map_err(|_| mismatch(keyring, &wrapped))
}

/// Why `wrapped` does not open with `keyring`: a version it no longer holds (retired), or
/// another key altogether.
fn mismatch(keyring: &Keyring, wrapped: &[u8]) -> SetupError {
    match custodia_store::root_version_of(wrapped) {
        // (a retirement removes only versions older than the current one)
        Some(v) if v > keyring.current_version() => SetupError::RootKeyBehind(v),
        Some(v) if !keyring.versions().iter().any(|(held, _)| *held == v) => SetupError::RetiredRootKey(v),
        _ => SetupError::KeyMismatch,
    }
}

/// The checkpoint signer. Created only with the log: a missing key next to a log that has
/// entries or checkpoints means the row was deleted (a new key would sign whatever the log
/// holds now), and a public key row that does not match means it was replaced.
async fn load_audit_signer(store: &Store, keyring: &Keyring) -> Result<(NoteSigner, EntryKeys), SetupError> {
    let reader = || async { store.reader().await };
    if reader().await?.meta().get(AUDIT_KEY_META).await?.is_none() {
        let mut r = reader().await?;
        let used = !r.audit().entries(i64::MIN, 1).await?.is_empty() || r.audit().latest_checkpoint().await?.is_some();
        if used {
            return Err(SetupError::Other(
                "the audit signing key is missing from the database, but its audit log has entries: the key row was deleted; refusing to sign the log with a new key".into(),
            ));
        }
    }
    let seed = load_or_create(store, keyring, AUDIT_KEY_META, AUDIT_KEY_LABEL).await?;
    let signer = NoteSigner::from_seed(crate::CHECKPOINT_ORIGIN, ED25519_TYPE, seed.expose())
        .map_err(|_| SetupError::Other("the audit signing key is malformed".into()))?;
    let entries = EntryKeys::of(&seed);
    let public = signer.verifier().to_string();
    let stored = meta_or_insert(store, AUDIT_PUBLIC_KEY_META, || Ok(public.clone().into_bytes())).await?;
    if stored != public.as_bytes() {
        return Err(SetupError::Other(
            "the audit public key stored in the database does not match the audit signing key: the row was replaced"
                .into(),
        ));
    }
    Ok((signer, entries))
}

/// The keys audit entries are tagged and linked with.
struct EntryKeys {
    tags: TagKey,
    links: ChainKey,
}

impl EntryKeys {
    /// Both derived from the checkpoint key's seed: HMAC-SHA256(seed, label), a label each.
    fn of(seed: &SecretKey) -> Self {
        let derive = |label: &str| {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, seed.expose());
            let mut secret = zeroize::Zeroizing::new([0u8; 32]);
            secret.copy_from_slice(aws_lc_rs::hmac::sign(&key, label.as_bytes()).as_ref());
            secret
        };
        Self {
            tags: TagKey::new(&derive(AUDIT_TAG_LABEL)),
            links: ChainKey::new(&derive(AUDIT_LINK_LABEL)),
        }
    }
}

impl Keys {
    /// Loads the index key from the store (creating it on first use) and checks that the
    /// root key is the one this database was initialised with.
    pub(crate) async fn load(keyring: Keyring, store: &Store) -> Result<Self, SetupError> {
        // Made with the vault, before its first audit entry: missing next to a log with entries,
        // the row was deleted (a new key would hide every search match, token and audit
        // lookup by subject, silently)
        if store.reader().await?.meta().get(INDEX_KEY_META).await?.is_none()
            && !store.reader().await?.audit().entries(i64::MIN, 1).await?.is_empty()
        {
            return Err(SetupError::Other(
                "the blind index key is missing from the database, but its audit log has entries: the key row was deleted; refusing to make a new one (searches, tokens and audit lookups by subject would stop matching)".into(),
            ));
        }
        let wrapped = meta_or_insert(store, INDEX_KEY_META, || Ok(IndexKey::generate(&keyring)?.1.0)).await?;
        let index_key = IndexKey::unwrap(&keyring, &wrapped).map_err(|_| mismatch(&keyring, &wrapped))?;
        let (audit_signer, entry_keys) = load_audit_signer(store, &keyring).await?;
        let redaction = load_or_create(store, &keyring, REDACTION_KEY_META, REDACTION_KEY_LABEL).await?;
        let receipt_seed = load_or_create(store, &keyring, RECEIPT_KEY_META, RECEIPT_KEY_LABEL).await?;
        let receipt_signer = NoteSigner::from_seed(RECEIPT_KEY_NAME, ED25519_TYPE, receipt_seed.expose())
            .map_err(|_| SetupError::Other("the erasure receipt key is malformed".into()))?;
        let access_seal = Arc::new(load_access_seal(store, &keyring).await?);
        Ok(Self {
            keyring: std::sync::RwLock::new(Arc::new(keyring)),
            checked: std::sync::Mutex::new(None),
            provider: None,
            indexer: Arc::new(BlindIndexer::new(index_key)),
            audit_signer,
            audit_tags: Arc::new(entry_keys.tags),
            audit_links: Arc::new(entry_keys.links),
            redaction,
            receipt_signer: Arc::new(receipt_signer),
            access_seal,
        })
    }

    /// The blind index of `collection.field` for a value already in its index form.
    pub(crate) fn field_index(
        &self,
        collection: &str,
        field: &str,
        index_form: &str,
    ) -> Result<[u8; BLIND_INDEX_LEN], VaultError> {
        Ok(self.indexer.digest(Domain::Field { collection, field }, index_form)?)
    }

    /// The keyed digest (hex) that stands for `subject` in audit entries.
    pub(crate) fn audit_subject(&self, subject: &SubjectId) -> Result<String, VaultError> {
        Ok(hex::encode(
            self.indexer.digest(Domain::AuditSubject, subject.as_str())?,
        ))
    }

    /// The audit subject digest (hex) that v0.1 wrote: the blind index of a field `subject`
    /// of a collection `audit`. Only for finding entries written before domains were separate.
    pub(crate) fn legacy_audit_subject(&self, subject: &SubjectId) -> Result<String, VaultError> {
        let domain = Domain::Field {
            collection: "audit",
            field: "subject",
        };
        Ok(hex::encode(self.indexer.digest(domain, subject.as_str())?))
    }

    /// The keyed digest (hex) of an IP address in subject `subject`'s consent ledger evidence
    /// (a subject id holds no line break: the two cannot run into each other).
    pub(crate) fn ledger_ip(&self, subject: &SubjectId, ip: &std::net::IpAddr) -> Result<String, VaultError> {
        let input = format!("{}\n{ip}", subject.as_str());
        Ok(hex::encode(self.indexer.digest(Domain::LedgerIp, &input)?))
    }

    /// The keyed digests of tokens, owned (a write job draws tokens with them).
    pub(crate) fn tokens(&self) -> TokenKeys {
        TokenKeys(Arc::clone(&self.indexer))
    }

    /// The key registry context signer `signer` signs `Custodia-Context` with.
    pub(crate) fn context_signer(&self, signer: &str) -> Result<SecretKey, VaultError> {
        Ok(self.indexer.derived_key(Domain::ContextSigner { signer })?)
    }

    /// The secret Art. 19 notifications to registry recipient `recipient` are signed with.
    pub(crate) fn webhook_secret(&self, recipient: &str) -> Result<SecretKey, VaultError> {
        Ok(self.indexer.derived_key(Domain::WebhookSecret { recipient })?)
    }

    /// The key preference center links are sealed with.
    pub(crate) fn portal_link_key(&self) -> Result<custodia_crypto::DataKey, VaultError> {
        let secret = self.indexer.derived_key(Domain::PortalLink)?;
        Ok(custodia_crypto::DataKey::from_secret(0, &secret)?)
    }

    /// The secret alerts to `[operators] alert_webhook` are signed with.
    pub(crate) fn alert_secret(&self) -> Result<SecretKey, VaultError> {
        Ok(self.indexer.derived_key(Domain::AlertSecret)?)
    }

    /// The key operators' TOTP secrets are sealed with.
    pub(crate) fn operator_totp_key(&self) -> Result<custodia_crypto::DataKey, VaultError> {
        let secret = self.indexer.derived_key(Domain::OperatorTotp)?;
        Ok(custodia_crypto::DataKey::from_secret(0, &secret)?)
    }

    /// The key incident texts and timelines are sealed with.
    pub(crate) fn incident_key(&self) -> Result<custodia_crypto::DataKey, VaultError> {
        let secret = self.indexer.derived_key(Domain::IncidentText)?;
        Ok(custodia_crypto::DataKey::from_secret(0, &secret)?)
    }

    /// The CSRF token (hex) of the forms of preference center link `link_id`.
    pub(crate) fn portal_csrf(&self, link_id: &str) -> Result<String, VaultError> {
        Ok(hex::encode(self.indexer.digest(Domain::PortalCsrf, link_id)?))
    }

    /// The data key of `subject` of `class` and its stored row, if the subject has one.
    pub(crate) async fn subject_key(
        &self,
        store: &Store,
        subject: &SubjectId,
        class: &str,
    ) -> Result<Option<(DataKey, SubjectKeyRow)>, VaultError> {
        match store.reader().await?.subjects().key(subject.as_str(), class).await? {
            Some(row) => Ok(Some((self.unwrap(&row)?, row))),
            None => Ok(None),
        }
    }

    /// The key a write seals under: the subject's stored key of `class`, or a fresh one
    /// (`true`) when the subject has none. The write's transaction checks it is still the
    /// stored key.
    pub(crate) async fn sealing_key(
        &self,
        store: &Store,
        subject: &SubjectId,
        class: &str,
        now: Timestamp,
    ) -> Result<(DataKey, SubjectKeyRow, bool), VaultError> {
        match self.subject_key(store, subject, class).await? {
            Some((key, row)) => Ok((key, row, false)),
            None => {
                self.reload_if_behind(store).await?;
                let (key, row) = self.new_subject_key(subject, class, now)?;
                Ok((key, row, true))
            }
        }
    }

    /// A new data key of `class` for `subject`, and its row to store with the first value
    /// sealed under it.
    pub(crate) fn new_subject_key(
        &self,
        subject: &SubjectId,
        class: &str,
        now: Timestamp,
    ) -> Result<(DataKey, SubjectKeyRow), VaultError> {
        let (key, wrapped) = DataKey::generate(&self.keyring(), subject.as_str())?;
        let row = SubjectKeyRow {
            subject_id: subject.as_str().to_owned(),
            key_class: class.to_owned(),
            key_version: key.version(),
            wrapped_key: wrapped.0,
            created_at: now.0,
            first_wrap: None,
        };
        Ok((key, row))
    }

    /// Unwraps a stored data key. A key wrapped under a version this keyring lacks was
    /// re-wrapped by a rotation elsewhere (another node, or the CLI): the keyring is loaded
    /// again from its source once, and the unwrap retried.
    pub(crate) fn unwrap(&self, row: &SubjectKeyRow) -> Result<DataKey, VaultError> {
        let open = |keyring: &Keyring| DataKey::unwrap(keyring, &row.subject_id, row.key_version, &row.wrapped_key);
        match open(&self.keyring()) {
            Err(custodia_crypto::CryptoError::UnknownKeyVersion(_)) if self.reload()? => Ok(open(&self.keyring())?),
            other => Ok(other?),
        }
    }

    /// The root keyring in force.
    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `keyring` in force.
    pub(crate) fn replace_keyring(&self, keyring: Keyring) {
        let mut slot = match self.keyring.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(keyring);
    }

    /// Loads the keyring again when a rotation elsewhere (another node sharing the key source,
    /// or the CLI) added a version: looked at, at most once per [`KEYRING_FRESH`], in the
    /// database (a rotation re-wraps the index key first), so the key source itself (a
    /// passphrase's Argon2id, an OpenBao round trip) is read only when it changed. A new data
    /// key is then wrapped under the newest version; this node would otherwise load it only
    /// when it met a key wrapped under it, meanwhile wrapping new keys under the old one,
    /// which a retirement then takes away (their data unreadable).
    async fn reload_if_behind(&self, store: &Store) -> Result<(), VaultError> {
        if self.provider.is_none() {
            return Ok(());
        }
        {
            let mut checked = match self.checked.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            if checked.is_some_and(|at| at.elapsed() < KEYRING_FRESH) {
                return Ok(());
            }
            *checked = Some(std::time::Instant::now());
        }
        let wrapped = store.reader().await?.meta().get(INDEX_KEY_META).await?;
        let newest = wrapped.as_deref().and_then(custodia_store::root_version_of);
        if newest.is_some_and(|v| v > self.keyring().current_version()) {
            self.reload()?;
        }
        Ok(())
    }

    /// Loads the keyring again from its source; returns whether it now has a version the
    /// one in force lacked.
    fn reload(&self) -> Result<bool, VaultError> {
        let Some(provider) = &self.provider else {
            return Ok(false);
        };
        let fresh = provider.load()?;
        let grew = fresh.current_version() > self.keyring().current_version();
        if grew {
            tracing::info!(
                version = fresh.current_version(),
                "root key: a newer version was loaded"
            );
            self.replace_keyring(fresh);
        }
        Ok(grew)
    }
}

/// The keyed digests tokens are made of, each in its own domain.
#[derive(Clone)]
pub(crate) struct TokenKeys(Arc<BlindIndexer>);

impl TokenKeys {
    /// Block `counter` of the keyed byte stream a deterministic token of `value` in
    /// `collection.field` is drawn from.
    pub(crate) fn block(
        &self,
        collection: &str,
        field: &str,
        counter: u32,
        value: &str,
    ) -> Result<[u8; BLIND_INDEX_LEN], VaultError> {
        let domain = Domain::DeterministicToken {
            collection,
            field,
            counter,
        };
        Ok(self.0.digest(domain, value)?)
    }

    /// The name a token is stored and looked up under (the token itself is not stored).
    pub(crate) fn name(&self, token: &str) -> Result<Vec<u8>, VaultError> {
        Ok(self.0.digest(Domain::TokenName, token)?.to_vec())
    }

    /// What binds a deterministic token of `collection.field` to `value`: only rows with the
    /// same binding may share the token.
    pub(crate) fn binding(&self, collection: &str, field: &str, value: &str) -> Result<Vec<u8>, VaultError> {
        Ok(self.0.digest(Domain::TokenValue { collection, field }, value)?.to_vec())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn keys() -> Keys {
        let root = SecretKey::from_slice(&[9; 32]).unwrap();
        Keys {
            keyring: std::sync::RwLock::new(Arc::new(Keyring::from_keys(vec![(1, root)]).unwrap())),
            checked: std::sync::Mutex::new(None),
            provider: None,
            indexer: Arc::new(BlindIndexer::new(IndexKey::from_secret(
                SecretKey::from_slice(&[1; 32]).unwrap(),
            ))),
            audit_signer: NoteSigner::from_seed(crate::CHECKPOINT_ORIGIN, ED25519_TYPE, &[2; 32]).unwrap(),
            audit_tags: Arc::new(EntryKeys::of(&SecretKey::from_slice(&[2; 32]).unwrap()).tags),
            audit_links: Arc::new(EntryKeys::of(&SecretKey::from_slice(&[2; 32]).unwrap()).links),
            redaction: SecretKey::from_slice(&[3; 32]).unwrap(),
            receipt_signer: Arc::new(NoteSigner::from_seed(RECEIPT_KEY_NAME, ED25519_TYPE, &[4; 32]).unwrap()),
            access_seal: Arc::new(AccessSeal::new(&SecretKey::from_slice(&[5; 32]).unwrap())),
        }
    }

    /// The seal covers every field that decides what a key may do and who holds it (each
    /// changed alone breaks it), not the last use; its value is HMAC-SHA256 over the
    /// documented layout, recomputed with Python's `hmac`.
    #[test]
    fn a_principal_seal_covers_what_a_key_may_do() {
        let seal = AccessSeal::new(&SecretKey::from_slice(&[5; 32]).unwrap());
        let mut row = custodia_store::PrincipalRow {
            principal_id: "prn_1".into(),
            name: "svc".into(),
            roles: vec!["admin".into(), "support_agent".into()],
            key_id: "k1".into(),
            key_hash: vec![7; 32],
            created_at: 1,
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
            created_by: None,
            client_cert: None,
            seal: None,
        };
        assert!(!seal.holds(&row), "an unsealed row");
        row.seal = Some(seal.of(&row));
        assert_eq!(
            hex::encode(row.seal.as_deref().unwrap()),
            "f1c9ed657a069c565b4af7e6c34eee140342d3685b9bda3136093b9c3471a739"
        );
        assert!(seal.holds(&row));
        type Change = Box<dyn Fn(&mut custodia_store::PrincipalRow)>;
        let changes: Vec<Change> = vec![
            Box::new(|r| r.principal_id = "prn_2".into()),
            Box::new(|r| r.name = "svd".into()),
            Box::new(|r| r.roles = vec!["admin".into()]),
            Box::new(|r| r.key_id = "k2".into()),
            Box::new(|r| r.key_hash[0] ^= 1),
            Box::new(|r| r.created_at = 2),
            Box::new(|r| r.revoked_at = Some(1)),
            Box::new(|r| r.expires_at = Some(1)),
            Box::new(|r| r.client_cert = Some(vec![])),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = row.clone();
            change(&mut changed);
            assert!(!seal.holds(&changed), "change {i} kept the seal");
        }
        let mut forged_creator = row.clone();
        forged_creator.created_by = Some("prn_x".into());
        assert!(!seal.holds(&forged_creator), "who holds the key");
        let mut noted = row.clone();
        noted.last_used_at = Some(5);
        assert!(seal.holds(&noted));
        let other = AccessSeal::new(&SecretKey::from_slice(&[6; 32]).unwrap());
        assert!(!other.holds(&row), "another vault's key");
    }

    /// A key wrapped by a version the keyring no longer holds is named as such (a backup from
    /// before a retirement), apart from a key of another root key altogether.
    #[test]
    fn a_retired_version_is_told_from_another_key() {
        let v1 = Keyring::from_keys(vec![(1, SecretKey::from_slice(&[9; 32]).unwrap())]).unwrap();
        let wrapped = v1
            .wrap("label", b"", &SecretKey::from_slice(&[5; 32]).unwrap())
            .unwrap()
            .0;
        let v2 = Keyring::from_keys(vec![(2, SecretKey::from_slice(&[8; 32]).unwrap())]).unwrap();
        assert!(matches!(mismatch(&v2, &wrapped), SetupError::RetiredRootKey(1)));
        let other = Keyring::from_keys(vec![(1, SecretKey::from_slice(&[7; 32]).unwrap())]).unwrap();
        assert!(matches!(mismatch(&other, &wrapped), SetupError::KeyMismatch));
        // a version newer than any the key holds was never retired: another vault's key, or
        // an old copy of this one's
        let wrapped_v3 = Keyring::from_keys(vec![(3, SecretKey::from_slice(&[9; 32]).unwrap())])
            .unwrap()
            .wrap("label", b"", &SecretKey::from_slice(&[5; 32]).unwrap())
            .unwrap()
            .0;
        assert!(matches!(mismatch(&v2, &wrapped_v3), SetupError::RootKeyBehind(3)));
    }

    /// Each named digest uses its own domain; the vectors are those of
    /// `custodia_crypto`'s `blind_index::tests::known_answers` (index key `[0x01; 32]`).
    #[test]
    fn named_digests_use_their_domains() {
        let keys = keys();
        let id = SubjectId::parse("cus_123").unwrap();
        assert_eq!(keys.audit_subject(&id).unwrap(), "80d6d9c7c52beb46069a715c73b90a23");
        // What v0.1 wrote into audit entries, and what a field `audit.subject` indexes.
        assert_eq!(
            keys.legacy_audit_subject(&id).unwrap(),
            "8db266054af9dce2b8eea038f846a863"
        );
        assert_eq!(
            hex::encode(keys.field_index("audit", "subject", "cus_123").unwrap()),
            "8db266054af9dce2b8eea038f846a863"
        );
        let ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        // (HMAC of `cus_123\n203.0.113.7` with the domain's HKDF key, recomputed in Python)
        assert_eq!(keys.ledger_ip(&id, &ip).unwrap(), "3200b31b059a1984093b53aac07b2b6e");
        // one address, two subjects: two digests (a package cannot link them)
        let other = SubjectId::parse("cus_124").unwrap();
        assert_ne!(keys.ledger_ip(&id, &ip).unwrap(), keys.ledger_ip(&other, &ip).unwrap());
        let tokens = keys.tokens();
        assert_eq!(
            hex::encode(tokens.block("customers", "email", 0, "alice@example.com").unwrap()),
            "bcbd505399d8fa1eb965f4a77a9cdf80"
        );
        assert_eq!(
            hex::encode(tokens.name("Xqvbmrtkelzpdawn").unwrap()),
            "88f703a81ee68a3d2dc04dbff68faff3"
        );
        assert_eq!(
            hex::encode(tokens.binding("customers", "email", "alice@example.com").unwrap()),
            "298a39b181d30927e5c9eb6e9a71624a"
        );
        // The handed-out keys: `custodia_crypto`'s `derived_key_known_answers`.
        assert_eq!(
            hex::encode(keys.context_signer("ticketing").unwrap().expose()),
            "1f01493027bee2cfd11f0f8cf481715a74395b690908d4ac579d009f47ec3536"
        );
        assert_eq!(
            hex::encode(keys.webhook_secret("parcel_carrier").unwrap().expose()),
            "0a8a3d24a4a5393c731e13e417c83de7f2984b7270a3b24e5e6750a7dfd69ef5"
        );
    }
}
