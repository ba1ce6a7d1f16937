//! The Custodia vault service: one method per use case, each taking the authenticated
//! principal, the stated purpose, the time and the input.
//!
//! Personal data leaves the vault only through the access gate in [`gate`]: it checks that
//! the principal's roles may invoke the purpose, that the purpose declares each field, and
//! which output form (plain, masked, denied) applies, before anything is decrypted.

mod audit;
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

pub use datadir::{ADMIN_TOKEN_FILE, DB_FILE, DataDir, POLICIES_DIR, REGISTRY_FILE, SetupError};
pub use error::{ErrorKind, VaultError};
pub use ids::{RecordId, SubjectId};
pub use policy::{Policies, PolicyError, cedar_schema, role_policies};
pub use principal::Principal;
pub use time::Timestamp;

/// The vault: registry, store and keys, shared by every request.
pub struct Vault {
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    keys: keys::Keys,
    policies: policy::Policies,
    principals: principal::PrincipalCache,
    ledger_cache: consent::LedgerCache,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Assembles a vault from its parts: compiles the registry's roles and the operator's
    /// `policies` (file name, Cedar text) and loads (or creates) the blind index key.
    pub async fn new(
        registry: Registry,
        store: Arc<dyn Store>,
        keyring: custodia_crypto::Keyring,
        policies: &[(String, String)],
    ) -> Result<Self, SetupError> {
        let policies = policy::Policies::compile(&registry, policies).map_err(|e| SetupError::Other(e.0))?;
        let keys = keys::Keys::load(keyring, &*store).await?;
        Ok(Self {
            registry: Arc::new(registry),
            store,
            keys,
            policies,
            principals: principal::PrincipalCache::default(),
            ledger_cache: consent::LedgerCache::default(),
        })
    }

    /// The registry in force.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Checks that the store answers.
    pub async fn health(&self) -> Result<(), VaultError> {
        self.store.get_meta("index_key").await?;
        Ok(())
    }
}
