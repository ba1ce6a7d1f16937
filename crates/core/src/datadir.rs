//! The data directory: registry, root key file and (by default) the SQLite database.
//!
//! ```text
//! custodia-data/          (0700)
//!   registry.toml         the registry; edit and `custodia check` it
//!   root.key              the root key (0600), unless CUSTODIA_ROOT_KEY is set
//!   custodia.db           SQLite (WAL), unless a PostgreSQL URL is given
//!   admin-token           only when `serve` initialised the directory itself (0600)
//!   erasures.log          the tombstone log: every erased subject's keyed digest, kept
//!                         outside the database so a restored backup is erased again
//!   backups.log           one JSON line per `custodia backup` (time, absolute path, bytes)
//!   lock                  held (an OS file lock) by the one process using the SQLite
//!                         database; it holds that process's pid
//!   policies/*.cedar      the operator's own Cedar policies (optional)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custodia_crypto::{CryptoError, KEY_FILE_NAME, Keyring, ROOT_KEY_ENV};
use custodia_registry::{EXAMPLE_REGISTRY, Registry, RegistryError};
use custodia_store::StoreError;
use zeroize::Zeroizing;

use crate::{Timestamp, Vault, VaultError};

pub const REGISTRY_FILE: &str = "registry.toml";
pub const DB_FILE: &str = "custodia.db";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The lock file of the one process writing the directory's SQLite database.
pub const LOCK_FILE: &str = "lock";
/// Folder of the operator's own Cedar policies, added to those the roles compile to.
pub const POLICIES_DIR: &str = "policies";
/// Folder of the business's own incident notification templates (`authority.md`,
/// `subject.md`; `custodia incident templates` writes the built-in ones to start from).
pub const INCIDENT_TEMPLATES_DIR: &str = "incident-templates";
/// Name and role of the principal `init` creates.
const BOOTSTRAP_NAME: &str = crate::assess::BOOTSTRAP_PRINCIPAL;
const BOOTSTRAP_ROLE: &str = "admin";

/// Why the vault could not be initialised or opened.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0} is already initialised")]
    AlreadyInitialised(String),
    #[error("the root key does not match this database (it was initialised with another key)")]
    KeyMismatch,
    #[error(
        "this database's keys are wrapped by root key version {0}, which the root key no longer \
         holds (it was retired): a copy taken before the retirement (a backup) opens only with a \
         root key that still holds that version; keep each retired version with the backups it opens"
    )]
    RetiredRootKey(u32),
    #[error(
        "this database's keys are wrapped by root key version {0}, newer than any version this root \
         key holds: it is another vault's key, or a copy of this vault's key file from before a \
         rotation (every node must read the same key source)"
    )]
    RootKeyBehind(u32),
    #[error(
        "{dir} is in use by another custodia process (pid {pid}): one process at a time may open a \
         data directory's SQLite database; stop that process first (several server nodes need PostgreSQL)"
    )]
    Locked { dir: String, pid: String },
    #[error(
        "{dir} is writable by its group or others (mode {mode:o}): anyone who can write there can \
         replace the registry, the policies or the database; make it private (chmod 700)"
    )]
    LooseDirectory { dir: String, mode: u32 },
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Other(String),
}

/// What `init` made: the bootstrap administrator's API key (shown once) and the audit
/// log's checkpoint key, which the operator pins (`audit verify --public-key`).
pub struct Initialised {
    pub admin_token: Zeroizing<String>,
    /// `custodia-audit+<key id>+<base64 key>`.
    pub audit_public_key: String,
}

impl std::fmt::Debug for Initialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initialised")
            .field("audit_public_key", &self.audit_public_key)
            .finish_non_exhaustive()
    }
}

/// The exclusive lock of a data directory's SQLite database, held while this value lives (the
/// operating system releases it when the process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// A data directory on disk.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    #[must_use]
    pub fn registry_path(&self) -> PathBuf {
        self.root.join(REGISTRY_FILE)
    }

    #[must_use]
    pub fn key_path(&self) -> PathBuf {
        self.root.join(KEY_FILE_NAME)
    }

    #[must_use]
    pub fn admin_token_path(&self) -> PathBuf {
        self.root.join(ADMIN_TOKEN_FILE)
    }

    /// The store URL: the given PostgreSQL URL, or the SQLite file in this directory.
    #[must_use]
    pub fn store_url(&self, database_url: Option<&str>) -> String {
        database_url.map_or_else(
            || format!("sqlite://{}", self.root.join(DB_FILE).display()),
            str::to_owned,
        )
    }

    /// Takes the directory's exclusive lock (`lock`, an OS file lock) and writes this
    /// process's id into it; refuses, naming the holder's pid, when another process holds it.
    pub fn lock(&self) -> Result<DirLock, SetupError> {
        use std::io::{Read, Seek, Write};
        let path = self.root.join(LOCK_FILE);
        let io = |source| SetupError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                // The holder may not have written its pid yet; "unknown" then.
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                    pid.to_owned()
                } else {
                    "unknown".to_owned()
                };
                return Err(SetupError::Locked {
                    dir: self.root.display().to_string(),
                    pid,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DirLock { _file: file })
    }

    /// The directory's lock when the store is its SQLite file; none for PostgreSQL, which
    /// several nodes share (each with a data directory of its own, or one in common).
    fn lock_for(&self, database_url: Option<&str>) -> Result<Option<DirLock>, SetupError> {
        // Only PostgreSQL is shared by design; a `sqlite://` URL is one process's file too.
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(None),
            _ => self.lock().map(Some),
        }
    }

    /// Whether `init` has run here (the registry exists).
    #[must_use]
    pub fn is_initialised(&self) -> bool {
        self.registry_path().exists()
    }

    /// Creates the directory, the example registry, the root key (unless supplied by the
    /// environment), the database and the bootstrap admin principal. Returns its API key and
    /// the audit checkpoint key.
    pub async fn init(&self, database_url: Option<&str>, now: Timestamp) -> Result<Initialised, SetupError> {
        if self.is_initialised() {
            return Err(SetupError::AlreadyInitialised(self.root.display().to_string()));
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| SetupError::Io { path, source }
        };
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700)).map_err(io(&self.root))?;
        }
        let _lock = self.lock_for(database_url)?;
        if self.is_initialised() {
            return Err(SetupError::AlreadyInitialised(self.root.display().to_string()));
        }
        let keyring = self.key_provider()?.load_or_create(now.0.div_euclid(1000))?;
        let registry = Registry::parse(REGISTRY_FILE, EXAMPLE_REGISTRY)?;
        let store = Arc::new(custodia_store::Store::open(&self.store_url(database_url)).await?);
        if !store.reader().await?.principals().all().await?.is_empty() {
            return Err(SetupError::AlreadyInitialised(format!(
                "the database at {}",
                store.backend()
            )));
        }
        let vault = Vault::new(registry, store, keyring, &[]).await?;
        let (_, token) = vault
            .insert_principal(now, BOOTSTRAP_NAME, &[BOOTSTRAP_ROLE.to_owned()])
            .await?;
        // Written last: its presence marks a complete initialisation.
        std::fs::write(self.registry_path(), EXAMPLE_REGISTRY).map_err(io(&self.registry_path()))?;
        Ok(Initialised {
            admin_token: token,
            audit_public_key: vault.audit_verifier_key().to_string(),
        })
    }

    /// Writes the bootstrap token to `admin-token` (0600), for `serve`'s first-run convenience.
    pub fn write_admin_token(&self, token: &str) -> Result<PathBuf, SetupError> {
        let path = self.admin_token_path();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |source| SetupError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = options.open(&path).map_err(io)?;
        std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes()).map_err(io)?;
        Ok(path)
    }

    /// Loads the root key: from `CUSTODIA_ROOT_KEY` when set, else from the key file.
    pub fn keyring(&self) -> Result<Keyring, SetupError> {
        Ok(self.key_provider()?.load()?)
    }

    /// Where the root key comes from: `CUSTODIA_ROOT_KEY` when set; else the passphrase-sealed
    /// `root.key.sealed` when `CUSTODIA_ROOT_KEY_PASSPHRASE` is set; else OpenBao's transit
    /// engine when `CUSTODIA_OPENBAO_ADDR` is set (the sealed versions in `root.key.bao`);
    /// else the key file.
    pub fn key_provider(&self) -> Result<Arc<dyn custodia_crypto::KeyProvider>, SetupError> {
        let sources = [
            ROOT_KEY_ENV,
            custodia_crypto::ROOT_KEY_PASSPHRASE_ENV,
            crate::openbao::OPENBAO_ADDR_ENV,
        ];
        let set: Vec<&str> = sources.into_iter().filter(|v| std::env::var_os(v).is_some()).collect();
        if set.len() > 1 {
            return Err(SetupError::Other(format!(
                "{} are all set: set one, so that it is clear where the root key comes from",
                set.join(" and ")
            )));
        }
        Ok(if std::env::var_os(ROOT_KEY_ENV).is_some() {
            Arc::new(custodia_crypto::EnvProvider)
        } else if let Ok(passphrase) = std::env::var(custodia_crypto::ROOT_KEY_PASSPHRASE_ENV) {
            Arc::new(custodia_crypto::PassphraseProvider::new(
                self.root.join(custodia_crypto::PASSPHRASE_KEY_FILE),
                Zeroizing::new(passphrase),
            )?)
        } else if std::env::var_os(crate::openbao::OPENBAO_ADDR_ENV).is_some() {
            Arc::new(crate::openbao::OpenBaoProvider::from_env(
                self.root.join(crate::openbao::OPENBAO_KEY_FILE),
            )?)
        } else {
            // A key kept another way, and nothing said where: name the setting, not the file
            // that is not there.
            let sealed = [
                (
                    custodia_crypto::PASSPHRASE_KEY_FILE,
                    custodia_crypto::ROOT_KEY_PASSPHRASE_ENV,
                    "a passphrase",
                ),
                (
                    crate::openbao::OPENBAO_KEY_FILE,
                    crate::openbao::OPENBAO_ADDR_ENV,
                    "OpenBao",
                ),
            ];
            if !self.key_path().exists()
                && let Some((file, env, how)) = sealed.iter().find(|(file, _, _)| self.root.join(file).exists())
            {
                return Err(SetupError::Other(format!(
                    "{} holds this vault's root key sealed with {how}: set {env} (there is no {})",
                    self.root.join(file).display(),
                    self.key_path().display()
                )));
            }
            Arc::new(custodia_crypto::FileProvider(self.key_path()))
        })
    }

    /// The operator's Cedar policy files: every `*.cedar` file in `policies/`, by name.
    pub fn policy_files(&self) -> Result<Vec<(String, String)>, SetupError> {
        let dir = self.root.join(POLICIES_DIR);
        let mut files = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(source) => {
                return Err(SetupError::Io {
                    path: dir.display().to_string(),
                    source,
                });
            }
        };
        for entry in entries {
            let path = entry
                .map_err(|source| SetupError::Io {
                    path: dir.display().to_string(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "cedar") {
                let text = std::fs::read_to_string(&path).map_err(|source| SetupError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                let name = format!(
                    "{POLICIES_DIR}/{}",
                    path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
                );
                files.push((name, text));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Refuses a directory that its group or others may write to.
    fn check_private(&self) -> Result<(), SetupError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.root)
                .map_err(|source| SetupError::Io {
                    path: self.root.display().to_string(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o022 != 0 {
                return Err(SetupError::LooseDirectory {
                    dir: self.root.display().to_string(),
                    mode: mode & 0o7777,
                });
            }
        }
        Ok(())
    }

    /// Opens the vault of this directory (refusing one its group or others may write to).
    pub async fn open(&self, database_url: Option<&str>) -> Result<Vault, SetupError> {
        self.open_as(database_url, false, false).await
    }

    /// Opens the vault of this directory over a read-only store and without the directory's
    /// lock, beside a running server: for tools that only read (`custodia context-key`). Any
    /// write is refused by the database.
    pub async fn open_read_only(&self, database_url: Option<&str>) -> Result<Vault, SetupError> {
        self.open_as(database_url, true, false).await
    }

    /// [`Self::open`], sealing subject ledger entries found without seals: once, the first
    /// start after the upgrade from a version before ledger seals (`serve --seal-ledger`).
    pub async fn open_sealing_ledger(&self, database_url: Option<&str>) -> Result<Vault, SetupError> {
        self.open_as(database_url, false, true).await
    }

    async fn open_as(
        &self,
        database_url: Option<&str>,
        read_only: bool,
        seal_ledger: bool,
    ) -> Result<Vault, SetupError> {
        self.check_private()?;
        // read once: what is enforced is what a start records (`registry_log`); a file read
        // again to be recorded could be swapped back in between (review)
        let path = self.registry_path();
        let registry_text = std::fs::read_to_string(&path);
        let registry = match &registry_text {
            Ok(text) => Registry::parse(&path.display().to_string(), text)?,
            Err(_) => Registry::load(&path)?,
        };
        for warning in registry.warnings() {
            tracing::warn!(registry = %warning.location(), "{}", warning.message);
        }
        let policies = self.policy_files()?;
        let keyring = self.keyring()?;
        let url = self.store_url(database_url);
        let (lock, store) = if read_only {
            (None, custodia_store::Store::open_read_only(&url).await?)
        } else {
            (self.lock_for(database_url)?, custodia_store::Store::open(&url).await?)
        };
        if lock.is_some() {
            // this process alone writes the file, so its log's tail is what it appended last
            store.sole_audit_writer();
        }
        let mut vault = Vault::assemble(registry, Arc::new(store), keyring, &policies, seal_ledger).await?;
        vault.sources = registry_text
            .ok()
            .map(|registry| crate::registry_log::Sources { registry, policies });
        vault.set_key_provider(self.key_provider()?);
        vault._dir_lock = lock;
        vault.tombstone_log = Some(self.tombstone_path());
        vault.incident_templates = Some(self.path().join(INCIDENT_TEMPLATES_DIR));
        Ok(vault)
    }

    /// The tombstone log (see `tombstones.rs`).
    #[must_use]
    pub fn tombstone_path(&self) -> PathBuf {
        self.root.join(crate::TOMBSTONE_FILE)
    }

    /// Writes a consistent copy of the directory's database to `out` (created 0600; refused if
    /// it exists), beside a running server. The copy holds no key: the root key is backed up
    /// apart from it, and the tombstone log stays outside it. Once the copy is on disk, a line
    /// `{"at", "path", "bytes"}` is appended to `backups.log` (0600) for the assessment.
    pub async fn backup(&self, database_url: Option<&str>, out: &Path) -> Result<(), SetupError> {
        self.check_private()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(out).map_err(|source| SetupError::Io {
            path: out.display().to_string(),
            source,
        })?;
        let store = custodia_store::Store::open_read_only(&self.store_url(database_url)).await?;
        let written = store.backup_into(out).await;
        if written.is_err() {
            let _ = std::fs::remove_file(out);
        }
        written?;
        self.log_backup(out, Timestamp::now())
    }

    /// Syncs the backup `out` to disk and appends its line to `backups.log` (0600).
    fn log_backup(&self, out: &Path, now: Timestamp) -> Result<(), SetupError> {
        use std::io::Write;
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| SetupError::Io { path, source }
        };
        let file = std::fs::File::open(out).map_err(io(out))?;
        file.sync_all().map_err(io(out))?;
        let bytes = file.metadata().map_err(io(out))?.len();
        let path = std::fs::canonicalize(out).map_err(io(out))?;
        let line = serde_json::json!({"at": now.0, "path": path.display().to_string(), "bytes": bytes});
        let log = self.root.join(crate::BACKUP_LOG_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&log).map_err(io(&log))?;
        file.write_all(format!("{line}\n").as_bytes()).map_err(io(&log))?;
        file.sync_all().map_err(io(&log))?;
        Ok(())
    }

    /// Replaces the directory's SQLite database with the backup `from` (no server may be
    /// running), after checking that the backup is this vault's (it opens with this root key)
    /// and carrying over the audit log, the tombstones and the legal holds (placed or
    /// released since the backup) of the database it replaces (the
    /// backup's log must be a prefix of it: the log stays whole, and its checkpoints and
    /// witness still agree), then erases again every subject a tombstone names (the log's,
    /// the backup's and the replaced database's).
    pub async fn restore(
        &self,
        from: &Path,
        tombstones: &RestoreTombstones,
        now: Timestamp,
    ) -> Result<Restored, SetupError> {
        self.check_private()?;
        let lock = self.lock_for(None)?;
        let db = self.root.join(DB_FILE);
        let staging = self.root.join(format!("{DB_FILE}.restoring"));
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| SetupError::Io { path, source }
        };
        // The tombstone logs are read first: a damaged or missing one stops the restore
        // before anything changed.
        let own = self.tombstone_path();
        let mut log = crate::tombstones::read(&own).map_err(SetupError::Other)?;
        for other in &tombstones.elsewhere {
            if !other.is_file() {
                return Err(SetupError::Other(format!("{}: no such tombstone log", other.display())));
            }
            log.extend(crate::tombstones::read(other).map_err(SetupError::Other)?);
        }
        // A directory with neither a database nor a tombstone (a new machine after a disk was
        // lost; a log there, or a copy given, that holds none: the log is written with the
        // first erasure) cannot tell who was erased since the backup: restored without a copy
        // of the log, they would come back.
        if !db.exists() && log.is_empty() && !tombstones.none_kept {
            return Err(SetupError::Other(format!(
                "{} has no database, and no tombstone log holding a tombstone ({}{}): whoever was erased since the backup would come back. \
                 Give the copy of the log kept elsewhere with --tombstones FILE, or --no-tombstones if no one was ever \
                 erased or no copy was kept (erasures since the backup are then not made again)",
                self.root.display(),
                crate::TOMBSTONE_FILE,
                if tombstones.elsewhere.is_empty() {
                    ""
                } else {
                    ", nor in the copies given"
                }
            )));
        }
        remove_database_files(&staging, ALL_FILES).map_err(io(&staging))?;
        std::fs::copy(from, &staging).map_err(io(from))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600)).map_err(io(&staging))?;
        }
        let current = db.exists().then_some(db.as_path());
        let (adopted, later_keys) = match self.check_backup(&staging, current, now).await {
            Ok(adopted) => adopted,
            Err(e) => {
                let _ = remove_database_files(&staging, ALL_FILES);
                return Err(e);
            }
        };
        // The old database's log must not be applied to the new file; the rename replaces the
        // database file itself atomically.
        remove_database_files(&db, &["-wal", "-shm"]).map_err(io(&db))?;
        std::fs::rename(&staging, &db).map_err(io(&db))?;
        remove_database_files(&staging, ALL_FILES).map_err(io(&staging))?;
        drop(lock);
        let vault = self.open(None).await?;
        // The log as restored is checked and its unsigned tail (what the backup's server wrote
        // in its last second) signed before the erasures made again are appended, dated now:
        // after it, they made a tail spanning more than the minute a start accepts, and no
        // start, not even with a new checkpoint log, took it (review).
        vault.resume_audit_log(Vec::new()).await.map_err(SetupError::Other)?;
        vault.checkpoint(now).await?;
        let reapplied = vault
            .reapply_erasures(&log, now, &())
            .await
            .map_err(|e| SetupError::Other(e.message))?;
        // the keys of subjects who came back after an erasure, now that their older keys are
        // destroyed again (before, the backup's older key stood in the way and the erasure
        // made again left none: the consent evidence given since was shredded)
        if !later_keys.is_empty() {
            vault
                .store
                .write(move |mut tx| Box::pin(async move { tx.subjects().restore_keys(&later_keys).await }))
                .await?;
        }
        Ok(Restored {
            reapplied,
            audit_entries_adopted: adopted,
        })
    }

    /// Opens a copy of a database as this directory's vault (which checks it was made with
    /// this root key), brings its schema up to date, appends the audit log of `current` beyond
    /// its own (returning how many entries), and leaves its WAL empty.
    async fn check_backup(
        &self,
        path: &Path,
        current: Option<&Path>,
        now: Timestamp,
    ) -> Result<(Option<u64>, Vec<custodia_store::SubjectKeyRow>), SetupError> {
        let store = Arc::new(custodia_store::Store::open(&format!("sqlite://{}", path.display())).await?);
        let adopted = match current {
            Some(current) => Some(store.adopt_audit_log(current).await?),
            None => None,
        };
        let registry = Registry::load(&self.registry_path())?;
        let vault = Vault::new(registry, Arc::clone(&store), self.keyring()?, &self.policy_files()?).await?;
        // What the subjects decided since the backup (withdrawals, objections, opt-outs) ends
        // the bindings it concerns, as it did when they decided it.
        for subject in adopted.iter().flat_map(|a| &a.ledger_subjects) {
            let (registry, subject) = (Arc::clone(&vault.registry), subject.clone());
            let seal = Arc::clone(&vault.keys.access_seal);
            store
                .write(move |mut tx| {
                    Box::pin(async move {
                        crate::retention::retime_subject(&mut tx, (&registry, &*seal), &subject, now).await
                    })
                })
                .await?;
        }
        drop(vault);
        let later_keys = adopted.as_ref().map(|a| a.later_keys.clone()).unwrap_or_default();
        let adopted = adopted.map(|a| a.audit_entries);
        if !store.purge_wal().await? {
            return Err(SetupError::Other(format!(
                "{}: its write-ahead log could not be emptied",
                path.display()
            )));
        }
        Ok((adopted, later_keys))
    }
}

/// The tombstone logs a restore erases by beside the data directory's own.
#[derive(Debug, Clone, Default)]
pub struct RestoreTombstones {
    /// Copies of the log kept elsewhere (the data directory's own was lost with its disk; or
    /// other nodes' logs).
    pub elsewhere: Vec<PathBuf>,
    /// No copy was kept: restore into a directory without a database or a log anyway.
    pub none_kept: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub reapplied: crate::Reapplied,
    /// Audit entries carried over from the database the backup replaced (`None`: there was
    /// none, so the audit log is the backup's, and the checkpoints published since are ahead
    /// of it: `serve` refuses it until they are dealt with, see the README).
    pub audit_entries_adopted: Option<u64>,
}

/// A SQLite database's files: the database, its log and its shared memory.
const ALL_FILES: &[&str] = &["", "-wal", "-shm"];

/// Removes those of a SQLite database's files (by suffix) that exist.
fn remove_database_files(path: &Path, suffixes: &[&str]) -> std::io::Result<()> {
    for suffix in suffixes {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
