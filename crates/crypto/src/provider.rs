//! Where the root key comes from. A provider loads the keyring and, when it can store keys,
//! adds a version (a rotation) and removes one nothing uses any more (a retirement).
//!
//! | provider | source | rotation |
//! |---|---|---|
//! | [`FileProvider`] | the data directory's `root.key` (0600) | adds a line, atomically |
//! | [`EnvProvider`] | `CUSTODIA_ROOT_KEY` (`V:BASE64,...`) | the operator adds the version to the variable and restarts; the vault then re-wraps |

use std::path::PathBuf;

use crate::{CryptoError, Keyring, ROOT_KEY_ENV};

/// A source of the root keyring.
pub trait KeyProvider: Send + Sync {
    /// Its name in `keys status`: `file`, `environment`.
    fn name(&self) -> &'static str;
    /// The keyring as the source holds it now (every version).
    fn load(&self) -> Result<Keyring, CryptoError>;
    /// Adds a fresh version above the newest, made at `now_secs`, and returns the keyring.
    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError>;
    /// Removes `version` (never the newest) and returns the keyring.
    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError>;
    /// The keyring, making its first version at `now_secs` when the source has none yet
    /// (`custodia init`). Sources custodia cannot write only load.
    fn load_or_create(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        self.load()
    }
}

/// The key file in the data directory.
#[derive(Debug, Clone)]
pub struct FileProvider(pub PathBuf);

impl KeyProvider for FileProvider {
    fn name(&self) -> &'static str {
        "file"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        Keyring::load_file(&self.0)
    }

    fn add_version(&self, now_secs: i64) -> Result<Keyring, CryptoError> {
        Keyring::add_version_to_file(&self.0, now_secs)
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        Keyring::remove_version_from_file(&self.0, version)
    }

    fn load_or_create(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        if self.0.exists() {
            Keyring::load_file(&self.0)
        } else {
            Keyring::create_file(&self.0)
        }
    }
}

/// The `CUSTODIA_ROOT_KEY` environment variable. A process cannot change its parent's
/// environment, so versions are added and removed by the operator; the vault re-wraps.
#[derive(Debug, Clone, Copy)]
pub struct EnvProvider;

impl KeyProvider for EnvProvider {
    fn name(&self) -> &'static str {
        "environment"
    }

    fn load(&self) -> Result<Keyring, CryptoError> {
        let value = std::env::var(ROOT_KEY_ENV)
            .map_err(|_| CryptoError::InvalidRootKey(format!("{ROOT_KEY_ENV} is not set")))?;
        Keyring::parse_env(&value)
    }

    fn add_version(&self, _now_secs: i64) -> Result<Keyring, CryptoError> {
        Err(CryptoError::InvalidRootKey(format!(
            "the root key comes from {ROOT_KEY_ENV}, which custodia cannot change: add a new version to it \
             (`1:OLD,2:NEW`, NEW from `openssl rand -base64 32`), restart, and rotate again to re-wrap every key"
        )))
    }

    fn remove_version(&self, version: u32) -> Result<Keyring, CryptoError> {
        Err(CryptoError::InvalidRootKey(format!(
            "the root key comes from {ROOT_KEY_ENV}, which custodia cannot change: nothing uses version {version} \
             any more, so remove it from the variable and restart"
        )))
    }
}
