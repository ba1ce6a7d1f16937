//! The Custodia vault service: one method per use case, each taking its call context (the
//! authenticated principal, the stated purpose, the time: [`Call`]) and its input, grouped by
//! capability: records (`records.rs`: write, read, search, values), subjects (`consent.rs`: the
//! ledger; `keys.rs`: data keys), tokens (`tokens.rs`), audit (`audit.rs`: entries, queries and
//! the one audited path; `checkpoint.rs`: checkpoints, proofs, verify), principals
//! (`principal.rs`: authentication and management). Every use case runs through
//! `Vault::audited`, which writes its allow or deny entry.
//!
//! Personal data leaves the vault only through the access gate in [`gate`]: it checks that
//! the principal's roles may invoke the purpose, that the purpose declares each field, and
//! which output form (plain, masked, denied) applies, before anything is decrypted.

mod access_review;
mod alerts;
mod assess;
mod attempts;
mod audit;
mod batch;
mod cache;
mod call;
mod checkpoint;
mod consent;
mod context;
mod datadir;
mod erasure;
mod error;
mod gate;
mod holds;
mod ids;
mod incidents;
mod keys;
mod limit;
mod metrics;
mod notify;
mod openbao;
mod operators;
mod package;
mod policy;
mod portal;
mod principal;
mod progress;
mod records;
mod registry_log;
mod retention;
mod review;
mod rights;
mod rotation;
mod service_role;
mod terms;
mod time;
mod tokens;
mod tombstones;
mod transparency;
pub mod values;
mod verify;
pub mod vocabulary;

use std::sync::Arc;

use custodia_registry::Registry;
use custodia_store::Store;

pub use access_review::STALE_KEY_MS;
pub use assess::{
    AuditSources, BACKUP_LOG_FILE, BOOTSTRAP_PRINCIPAL, Certificate as TlsCertificate, DEFAULT_BACKUP_MAX_AGE_DAYS,
    DEFAULT_KEY_MAX_AGE_DAYS, Environment as AssessEnvironment, KeyFacts, OutsideCheckpoints, TlsFacts, assess_store,
};
pub use audit::{AuditFilter, ScannerUse, audit_columns, audit_row_of};
pub use batch::{BatchCreate, BatchRead, MAX_BATCH_ITEMS, MAX_BATCH_READ_BYTES};
pub use cache::CACHE_TTL;
pub use call::Call;
pub use checkpoint::{CHECKPOINT_ORIGIN, export_audit_log};
pub use context::{MAX_CONTEXT_SKEW_SECS, context_signing_input};
pub use custodia_audit::note::VerifierKey;
pub use custodia_store::AuditQuery;
pub use datadir::{
    ADMIN_TOKEN_FILE, DB_FILE, DataDir, DirLock, INCIDENT_TEMPLATES_DIR, Initialised, LOCK_FILE, POLICIES_DIR,
    REGISTRY_FILE, RestoreTombstones, Restored, SetupError,
};
pub use erasure::RECEIPT_HEADER;
pub use error::{ErrorKind, UNKNOWN_FIELD, VaultError, WITHHELD_NAME, name_shaped, nameable, quoted_name};
pub use ids::{RecordId, SubjectId, names_subject};
pub use incidents::{AUTHORITY_TEMPLATE, Draft, PLACEHOLDERS, SUBJECT_TEMPLATE};
pub use keys::{AUDIT_PUBLIC_KEY_META, RECEIPT_KEY_NAME};
pub use notify::{
    DeliveryReport, MAX_ATTEMPTS, NOTICE_TYPE, NOTIFICATION_ID_HEADER, SIGNATURE_HEADER, SendOutcome, SignatureError,
    Webhook, WebhookSender, retry_delay, signature_header, verify_signature,
};
pub use openbao::{OPENBAO_ADDR_ENV, OPENBAO_KEY_FILE};
pub use operators::{
    CreatedOperator, LOCAL_CREATOR, MAX_JUSTIFICATION_CHARS, OpenedSession, OperatorSession, check_justification,
};
pub use package::{PACKAGE_ACCESS_PAGE, PACKAGE_RECORD_PAGE, PROVIDED_BY_YOU, PackagePart, PackageReader};
pub use policy::{Policies, PolicyError, cedar_schema, role_policies};
pub use portal::{
    ConsentChoice, PORTAL_LINK_DEFAULT_TTL_SECONDS, PORTAL_LINK_MAX_TTL_SECONDS, PORTAL_REQUESTS, PortalChanges,
    PortalLink, PortalSession, PortalState, SaleChoice, portal_requests,
};
pub use principal::{ContextValue, Principal, parse_expiry};
pub use progress::Progress;
pub use records::{Meter, Page, RecordPage, unmetered};
pub use registry_log::{CHECKPOINT_LOG_BEGUN, REGISTRY_LOADED, RegistryChange};
pub use retention::{SWEEP_BATCH, SWEEPER_PRINCIPAL, SweepOptions};
pub use rights::Fulfilled;
pub use rotation::{REWRAP_BATCH, RewrapBatch};
pub use service_role::{ServiceRole, provision_service_role};
pub use time::Timestamp;
pub use tokens::MAX_TOKEN_BATCH;
pub use tombstones::{Reapplied, TOMBSTONE_FILE, read as read_tombstones};
pub use transparency::NoticeRow;
pub use verify::{AuditTrust, TrustedCheckpoint, UNSIGNED_TAIL_SPAN_MS, VerifyReport, verify_audit_log};
pub use vocabulary::PHASES;

/// The vault: registry, store and keys, shared by every request.
pub struct Vault {
    registry: Arc<Registry>,
    store: Arc<Store>,
    keys: keys::Keys,
    policies: policy::Policies,
    caches: Arc<cache::Caches>,
    /// Applies other nodes' changes to `caches` (PostgreSQL); aborted when the vault drops.
    follower: Option<tokio::task::JoinHandle<()>>,
    log: checkpoint::LogTracker,
    auth_failures: attempts::AuthFailures,
    /// When each API key's use was last noted.
    key_use: principal::KeyUse,
    /// Failed logins of names that are no operator's.
    phantom_logins: operators::PhantomLogins,
    /// Audit proofs per API key (each reads tiles and writes an audit entry).
    proof_limit: limit::RateLimit,
    /// Uses of the preference center, per subject: each is audited and a choice appends to
    /// the subject's ledger, which a link holder could otherwise grow without end (every read
    /// of the subject then reads the longer ledger).
    portal_limit: limit::RateLimit,
    /// The assessment's last verification of the whole audit log, reused for a while.
    last_verification: assess::LastVerification,
    /// The registry file's text and the policy files the vault was opened with (`None`
    /// without a data directory): what a start records as served (`registry_log`).
    sources: Option<registry_log::Sources>,
    /// Changes of incidents, one at a time in this process: responders writing at once
    /// otherwise met each other's changes (a node's meet other nodes' and are decided again).
    incident_writes: tokio::sync::Mutex<()>,
    /// Each purpose's terms in every notice version shown, set when the notice in force is
    /// published: a consent counts for the terms it was given under (`terms`).
    terms: std::sync::RwLock<Arc<terms::Terms>>,
    /// Where erasures are logged outside the database (the data directory's tombstone log);
    /// none for a vault opened without a data directory.
    tombstone_log: Option<std::path::PathBuf>,
    /// Where the business's own incident notification templates are (`authority.md`,
    /// `subject.md`; the built-in ones otherwise): the data directory's `incident-templates`.
    incident_templates: Option<std::path::PathBuf>,
    /// The data directory's lock, held as long as the vault (SQLite only).
    _dir_lock: Option<datadir::DirLock>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

impl Vault {
    /// Assembles a vault from its parts: compiles the registry's roles and the operator's
    /// `policies` (file name, Cedar text) and loads (or creates) the blind index key.
    pub async fn new(
        registry: Registry,
        store: Arc<Store>,
        keyring: custodia_crypto::Keyring,
        policies: &[(String, String)],
    ) -> Result<Self, SetupError> {
        Self::assemble(registry, store, keyring, policies, false).await
    }

    /// [`Self::new`]; `seal_unsealed_ledger`: seal ledger entries found without seals (the
    /// operator's word, once after the upgrade to schema version 22; see
    /// `keys::settle_ledger_seals`).
    pub(crate) async fn assemble(
        registry: Registry,
        store: Arc<Store>,
        keyring: custodia_crypto::Keyring,
        policies: &[(String, String)],
        seal_unsealed_ledger: bool,
    ) -> Result<Self, SetupError> {
        let policies = policy::Policies::compile(&registry, policies).map_err(|e| SetupError::Other(e.0))?;
        let keys = keys::Keys::load(keyring, &store).await?;
        keys::settle_ledger_seals(&store, &keys.access_seal, seal_unsealed_ledger).await?;
        store.link_audit_with(Arc::clone(&keys.audit_links));
        store.seal_bindings_with(Arc::clone(&keys.access_seal) as Arc<dyn custodia_store::Sealer>);
        let caches = Arc::new(cache::Caches::default());
        let follower = store
            .changes()
            .await?
            .map(|changes| Arc::clone(&caches).follow(changes));
        let vault = Self {
            registry: Arc::new(registry),
            store,
            keys,
            policies,
            caches,
            follower,
            log: checkpoint::LogTracker::default(),
            auth_failures: attempts::AuthFailures::default(),
            key_use: principal::KeyUse::default(),
            phantom_logins: operators::PhantomLogins::default(),
            proof_limit: limit::RateLimit::new(checkpoint::PROOFS_PER_SECOND, checkpoint::PROOF_BURST, "per API key"),
            portal_limit: limit::RateLimit::new(portal::REQUESTS_PER_SECOND, portal::REQUEST_BURST, "per subject"),
            last_verification: assess::LastVerification::default(),
            incident_writes: tokio::sync::Mutex::new(()),
            terms: std::sync::RwLock::default(),
            sources: None,
            tombstone_log: None,
            incident_templates: None,
            _dir_lock: None,
        };
        vault.settle_access_tally().await?;
        Ok(vault)
    }

    /// The registry in force.
    #[must_use]
    /// The key of the redaction operators that need one (`hash`, `encrypt`).
    pub fn redaction_key(&self) -> &custodia_crypto::SecretKey {
        &self.keys.redaction
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store, for offline tools such as `custodia audit verify`.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Checks that the store answers, and that the vault has not stopped accepting keys (the
    /// rows that grant access found altered) nor deciding on subjects' ledgers (the ledger
    /// found off its tally): a load balancer then sends requests elsewhere.
    pub async fn health(&self) -> Result<(), VaultError> {
        self.accepting_access()?;
        // a log found not to match its checkpoints stops every audited call: said here too
        self.log.accepting()?;
        if self.caches.ledger_off.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(VaultError::unavailable(
                crate::error::LEDGER_ALTERED,
                "the subject ledger was found altered while the server ran; nothing is decided on it",
            ));
        }
        self.store.reader().await?.meta().get("index_key").await?;
        Ok(())
    }

    /// `Err` (503 `access_altered`) once the rows that grant access were found altered while
    /// the server ran: no key, session, login or enrolment is accepted from then on.
    pub(crate) fn accepting_access(&self) -> Result<(), VaultError> {
        if self.caches.access_off.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(crate::error::access_altered());
        }
        Ok(())
    }
}
