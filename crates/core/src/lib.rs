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

mod audit;
mod cache;
mod call;
mod checkpoint;
mod consent;
mod datadir;
mod error;
mod gate;
mod ids;
mod keys;
mod policy;
mod principal;
mod records;
mod time;
mod tokens;
pub mod values;

use std::sync::Arc;

use custodia_registry::Registry;
use custodia_store::Store;

pub use audit::{AuditFilter, ScannerUse, audit_columns, audit_row_of};
pub use cache::CACHE_TTL;
pub use call::Call;
pub use checkpoint::{CHECKPOINT_ORIGIN, VerifyReport, export_audit_log, verify_audit_log};
pub use custodia_store::AuditQuery;
pub use datadir::{ADMIN_TOKEN_FILE, DB_FILE, DataDir, DirLock, LOCK_FILE, POLICIES_DIR, REGISTRY_FILE, SetupError};
pub use error::{ErrorKind, VaultError};
pub use ids::{RecordId, SubjectId};
pub use policy::{Policies, PolicyError, cedar_schema, role_policies};
pub use principal::{ContextValue, Principal, parse_expiry};
pub use time::Timestamp;
pub use tokens::MAX_TOKEN_BATCH;

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
        let policies = policy::Policies::compile(&registry, policies).map_err(|e| SetupError::Other(e.0))?;
        let keys = keys::Keys::load(keyring, &store).await?;
        let caches = Arc::new(cache::Caches::default());
        let follower = store
            .changes()
            .await?
            .map(|changes| Arc::clone(&caches).follow(changes));
        Ok(Self {
            registry: Arc::new(registry),
            store,
            keys,
            policies,
            caches,
            follower,
            log: checkpoint::LogTracker::default(),
            _dir_lock: None,
        })
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

    /// Parses a caller's `Custodia-Context` header (a JSON object) against the registry's
    /// `[policy_context]` declarations.
    pub fn parse_context(&self, header: &str) -> Result<std::collections::BTreeMap<String, ContextValue>, VaultError> {
        let bad = |msg: String| VaultError::bad_request("invalid_context", msg);
        let value: serde_json::Value =
            serde_json::from_str(header).map_err(|_| bad("Custodia-Context must be a JSON object".into()))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("Custodia-Context must be a JSON object".into()))?;
        let mut out = std::collections::BTreeMap::new();
        for (name, v) in object {
            let declared = self.registry.policy_context.get(name).ok_or_else(|| {
                bad(format!(
                    "context attribute `{}` is not declared in the registry's [policy_context]",
                    error::shown(name)
                ))
            })?;
            let parsed = match (declared, v) {
                (custodia_registry::ContextType::Bool, serde_json::Value::Bool(b)) => ContextValue::Bool(*b),
                (custodia_registry::ContextType::String, serde_json::Value::String(s)) if s.len() <= 256 => {
                    ContextValue::String(s.clone())
                }
                (custodia_registry::ContextType::Long, serde_json::Value::Number(n)) if n.is_i64() => {
                    ContextValue::Long(n.as_i64().unwrap_or_default())
                }
                _ => {
                    return Err(bad(format!(
                        "context attribute `{name}` must be a {}",
                        declared.cedar_type()
                    )));
                }
            };
            out.insert(name.clone(), parsed);
        }
        Ok(out)
    }

    /// Checks that the store answers.
    pub async fn health(&self) -> Result<(), VaultError> {
        self.store.reader().await?.meta().get("index_key").await?;
        Ok(())
    }
}
