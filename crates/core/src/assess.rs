//! The posture self-assessment: the checks that need the vault (its store, registry and keys),
//! judged from facts gathered once.
//!
//! ```text
//! adapter ── Environment (TLS, data directory, limits) ─┐
//! gather(registry, store, keys, audit trust) ───────────┴─► Facts ─► judge(facts, now) ─► checks
//! ```
//!
//! `judge` is pure: the same facts and `now` give the same checks, so its tests move time
//! instead of waiting. Whatever could not be found out (a store error, an unreadable file)
//! is kept as the reason, and the check it feeds fails with it (fail closed). Details name
//! files, principals, operators, purposes and request ids, never personal data.
//!
//! The adapters add what lives outside the vault: the data directory's permissions and the
//! scan for personal data outside it (`custodia_server::assess`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use custodia_audit::note::VerifierKey;
use custodia_registry::{Capability, LegalBasis, Registry};
use custodia_store::{AuditQuery, OperatorRow, PrincipalRow, RequestQuery, Store, TrainingRow};
use custodia_types::{AssessmentCheck, Severity};

use crate::audit::{Allowed, AuditEvent};
use crate::verify::{AuditTrust, TrustedCheckpoint, verify_audit_log};
use crate::{Principal, STALE_KEY_MS, Timestamp, Vault, VaultError, gate};

/// The log of backups `custodia backup` made, in the data directory: one JSON object a line,
/// `{"at": <Unix ms>, "path": "<absolute path>", "bytes": n}`.
pub const BACKUP_LOG_FILE: &str = "backups.log";
/// The root key rotation period unless told otherwise.
pub const DEFAULT_KEY_MAX_AGE_DAYS: u32 = 365;
/// How old the newest backup may be unless told otherwise.
pub const DEFAULT_BACKUP_MAX_AGE_DAYS: u32 = 7;
/// The name of the principal `init` creates.
pub const BOOTSTRAP_PRINCIPAL: &str = "bootstrap-admin";

const DAY_MS: i64 = 86_400_000;
/// How far the newest checkpoint may lag behind the newest audit entry.
const CHECKPOINT_LAG_MS: i64 = 3_600_000;
/// Open requests due within this are a warning.
const DEADLINE_WARNING_MS: i64 = 7 * DAY_MS;
/// Open requests looked at (soonest due first).
const MAX_REQUESTS: i64 = 10_000;
/// Subjects whose ledgers the consent check reads at most.
const MAX_LEDGER_SUBJECTS: usize = 50_000;
/// Items named in one detail; the rest are counted.
const MAX_NAMED: usize = 10;

/// The server's TLS, as the adapter knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFacts {
    /// Plain HTTP.
    Off,
    /// HTTPS with this certificate (its key goes with it).
    On(Certificate),
    /// A certificate is configured but does not load (`serve` would refuse it).
    Broken { reason: String },
}

/// A certificate served (the first of its chain), as its X.509 fields say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The file it is in.
    pub path: String,
    /// It is the pair `init --dev-tls` made.
    pub dev: bool,
    /// Its issuer is its subject: no CA vouches for it.
    pub self_signed: bool,
    /// Its validity (Unix ms): clients refuse it before and after.
    pub not_before: i64,
    pub not_after: i64,
}

/// A certificate expiring within this is a warning: renewal is due.
const CERTIFICATE_RENEWAL_MS: i64 = 30 * DAY_MS;

/// What the adapter knows of the deployment and the vault cannot.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The data directory (`None`: the vault was opened without one).
    pub data_dir: Option<PathBuf>,
    pub tls: TlsFacts,
    /// Whether `tls` is what this server serves (its own assessment), rather than the files a
    /// local tool was given (`custodia assess`: what `serve` does with the same options, which
    /// says nothing of how a running server was started).
    pub tls_from_server: bool,
    /// The root key rotation period.
    pub key_max_age_days: u32,
    /// How old the newest backup may be.
    pub backup_max_age_days: u32,
}

/// Where the root key comes from and its versions, as the adapter found them.
#[derive(Debug, Clone)]
pub struct KeyFacts {
    /// The provider's name (`file`, `environment`, `passphrase`, `openbao`), or why unknown.
    pub provider: Result<String, String>,
    /// Every version with when it was made (Unix seconds), if its source records it.
    pub versions: Result<Vec<(u32, Option<i64>)>, String>,
    /// The keys themselves, when the adapter could load them: to find a copy of one written
    /// in a file of the data directory in any form, not only as a key file.
    pub keyring: Option<std::sync::Arc<custodia_crypto::Keyring>>,
}

/// The checkpoints kept outside the database, as the adapter found them.
#[derive(Debug, Clone)]
pub struct OutsideCheckpoints {
    /// Where they are kept (the checkpoint log, the witness), named for the detail; empty when
    /// nowhere (`serve --no-checkpoint-log` without a witness).
    pub places: Vec<String>,
    /// The newest checkpoint of each place, under the rules the server starts by (`Err`: why
    /// they cannot vouch for the log, e.g. the checkpoint log deleted while the database holds
    /// checkpoints).
    pub trusted: Result<Vec<TrustedCheckpoint>, String>,
}

/// The checkpoint key and the checkpoints from outside the database the log is verified with.
#[derive(Debug, Clone)]
pub struct AuditSources {
    /// The key (`Err`: why there is none, or why it cannot be used).
    pub key: Result<VerifierKey, String>,
    /// Where the key came from, for the detail (e.g. "the server's own key").
    pub key_source: String,
    pub outside: OutsideCheckpoints,
    /// A verification of the log to use instead of verifying it again (the server's, recent).
    verified: Option<Result<VerifiedLog, String>>,
}

impl AuditSources {
    /// The key, where it came from, and the checkpoints from outside the database.
    #[must_use]
    pub fn new(key: Result<VerifierKey, String>, key_source: String, outside: OutsideCheckpoints) -> Self {
        Self {
            key,
            key_source,
            outside,
            verified: None,
        }
    }
}

/// An operator as the checks see it.
#[derive(Debug, Clone)]
struct OperatorFacts {
    id: String,
    name: String,
    enrolled: bool,
    disabled: bool,
    training: Vec<TrainingRow>,
}

/// One line of the backup log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BackupEntry {
    at: i64,
    path: String,
    bytes: u64,
    /// Whether the file is still there (and its size, if it is).
    found: Option<u64>,
}

#[derive(Debug, Clone)]
enum BackupFacts {
    /// PostgreSQL: backups are the database's own.
    Postgres,
    /// The backup log (absent: no backup was ever made), its bad lines (line numbers).
    Log {
        entries: Vec<BackupEntry>,
        bad_lines: Vec<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct VerifiedLog {
    entries: u64,
    checkpoints: usize,
    trusted: usize,
    unsigned_tail: u64,
    /// When the log was read through (Unix ms).
    at: i64,
}

/// How long the server's assessment reuses its last verification of the whole audit log.
/// Verifying reads every entry (some 350,000 a second here, so minutes for a log of a busy
/// day): a key holding `read_audit` must not make the server do that at every call.
pub const VERIFICATION_REUSE_MS: i64 = 10 * 60 * 1000;

/// The server's last verification of the audit log for the assessment and when it ran; the
/// lock is held while one runs, so that callers at the same time wait for it instead of
/// starting their own.
#[derive(Debug, Default)]
pub(crate) struct LastVerification(tokio::sync::Mutex<Option<(i64, Result<VerifiedLog, String>)>>);

#[derive(Debug, Clone)]
struct AuditFacts {
    key_source: String,
    /// Where checkpoints are kept outside the database (see [`OutsideCheckpoints::places`]).
    places: Vec<String>,
    verified: Result<VerifiedLog, String>,
    /// Size and time (Unix ms) of the newest checkpoint in the database.
    latest_checkpoint: Result<Option<(i64, i64)>, String>,
    /// Sequence number and time of the newest entry.
    newest_entry: Result<Option<(i64, i64)>, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ConsentFacts {
    subjects: usize,
    /// Subjects whose ledgers were read (at most [`MAX_LEDGER_SUBJECTS`]).
    read: usize,
    consents: u64,
    /// Consents naming a version the server never showed, by version (shown or not).
    unknown: BTreeMap<String, u64>,
    /// Versions the server has shown.
    published: usize,
}

#[derive(Debug, Clone)]
struct RequestFacts {
    id: String,
    kind: String,
    due_at: i64,
}

/// Everything the checks judge, gathered once.
#[derive(Debug, Clone)]
struct Facts {
    env: Environment,
    keys: KeyFacts,
    /// When the vault was made (its first audit entry or principal), Unix ms.
    vault_since: Option<i64>,
    /// When each root key version was rotated in (its `keys.rotate` audit entry), Unix ms.
    rotations: BTreeMap<u32, i64>,
    /// Files in the data directory: a plaintext root key, the bootstrap admin token.
    root_key_file: Option<bool>,
    admin_token_file: Option<bool>,
    principals: Result<Vec<PrincipalRow>, String>,
    operators: Result<Vec<OperatorFacts>, String>,
    consents: Result<ConsentFacts, String>,
    audit: AuditFacts,
    backups: Result<BackupFacts, String>,
    requests: Result<Vec<RequestFacts>, String>,
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Vault {
    /// The checks that need the vault, for a caller with `read_audit` (audited as
    /// `assessment.read`). `outside` runs only once the caller is allowed: the adapter's
    /// checkpoints from outside the database and its own checks (files, permissions, the
    /// scan for personal data), appended to the vault's.
    pub async fn assessment<F>(
        &self,
        caller: &Principal,
        now: Timestamp,
        env: &Environment,
        outside: F,
    ) -> Result<Vec<AssessmentCheck>, VaultError>
    where
        F: std::future::Future<Output = (OutsideCheckpoints, Vec<AssessmentCheck>)>,
    {
        let event = AuditEvent::new("assessment.read", caller);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ReadAudit)?;
            let (checkpoints, more) = outside.await;
            let mut sources = AuditSources::new(
                Ok(self.audit_verifier_key()),
                "the server's checkpoint key".to_owned(),
                checkpoints,
            );
            // Checkpoints from outside that cannot vouch for the log fail the check at every
            // call: a reading of the log made before (with them) must not hide that.
            if sources.outside.trusted.is_ok() {
                let mut last = self.last_verification.0.lock().await;
                let verified = match &*last {
                    Some((at, verified)) if (0..VERIFICATION_REUSE_MS).contains(&(now.0 - at)) => verified.clone(),
                    _ => {
                        let verified = verify_log(&self.store, &sources, now).await;
                        *last = Some((now.0, verified.clone()));
                        verified
                    }
                };
                drop(last);
                sources.verified = Some(verified);
            }
            let keyring = self.keys.keyring();
            let keys = KeyFacts {
                provider: Ok(self.key_provider().to_owned()),
                versions: Ok(keyring.versions()),
                keyring: Some(keyring),
            };
            let mut checks = assess_store(&self.registry, &self.store, keys, sources, env, now).await;
            checks.extend(more);
            Ok(Allowed::Read(checks, None))
        })
        .await
    }
}

/// The checks that need the vault, on a store and registry opened by a local tool (read-only,
/// beside a running server; no root key needed but for its versions, in `keys`).
pub async fn assess_store(
    registry: &Registry,
    store: &Store,
    keys: KeyFacts,
    audit: AuditSources,
    env: &Environment,
    now: Timestamp,
) -> Vec<AssessmentCheck> {
    let facts = gather(store, keys, audit, env, now).await;
    judge(registry, &facts, now)
}

async fn gather(store: &Store, keys: KeyFacts, sources: AuditSources, env: &Environment, now: Timestamp) -> Facts {
    let dir = env.data_dir.as_deref();
    let principals = async { store.reader().await?.principals().all().await }
        .await
        .map_err(text);
    let first_entry = async { store.reader().await?.audit().entries(0, 1).await }
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| r.at));
    let first_principal = principals
        .as_ref()
        .ok()
        .and_then(|p| p.iter().map(|p| p.created_at).min());
    let vault_since = match (first_entry, first_principal) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let root_key_file = dir.map(|d| {
        secret_file_in(d, &|bytes| {
            holds_root_key(bytes)
                || keys
                    .keyring
                    .as_ref()
                    .is_some_and(|k| readings(bytes).iter().any(|r| k.written_in(r)))
        })
    });
    Facts {
        env: env.clone(),
        keys,
        vault_since,
        rotations: rotations(store).await,
        // By content, not by name: a renamed copy is as much of a secret.
        root_key_file,
        admin_token_file: dir.map(|d| secret_file_in(d, &holds_api_key)),
        principals,
        operators: operators(store).await,
        consents: consents(store).await,
        audit: audit(store, sources, now).await,
        backups: if store.shared() {
            Ok(BackupFacts::Postgres)
        } else {
            match dir {
                Some(d) => read_backup_log(&d.join(BACKUP_LOG_FILE)),
                None => Err("the data directory is not known to this server".to_owned()),
            }
        },
        requests: requests(store, now).await,
    }
}

/// The largest file looked into for secrets (a key file or a token is a few hundred bytes, but
/// one may be pasted into a log: a file of 1 MiB or more was skipped whole; review).
const SECRET_FILE_MAX: u64 = 16 << 20;

/// A file's bytes as a key written into it may read: as they are; without NUL bytes (UTF-16,
/// as PowerShell writes); without the separators of hex dumps and wrapped lines (spaces, line
/// breaks, `:`, `,`, quotes, `0x`); and each long base64 run decoded once (a Kubernetes
/// Secret holds `base64(1:KEY)`).
fn readings(bytes: &[u8]) -> Vec<std::borrow::Cow<'_, [u8]>> {
    use base64::Engine as _;
    use std::borrow::Cow;
    let mut out = vec![Cow::Borrowed(bytes)];
    if bytes.contains(&0) {
        out.push(Cow::Owned(bytes.iter().copied().filter(|&b| b != 0).collect()));
    }
    let mut joined = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            continue;
        }
        if !(b.is_ascii_whitespace() || matches!(b, b':' | b',' | b'"' | b'\'' | 0)) {
            joined.push(b);
        }
        i += 1;
    }
    let mut decoded = Vec::new();
    let base64_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=');
    // runs as written (a value after its key) and as joined (one wrapped over lines)
    let runs = bytes
        .split(|b| !base64_char(b))
        .chain(joined.split(|b| !base64_char(b)));
    for run in runs {
        if run.len() < 40 {
            continue;
        }
        let text: Vec<u8> = run.iter().copied().filter(|&b| b != b'=').collect();
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            if let Ok(d) = engine.decode(&text) {
                decoded.extend_from_slice(&d);
                decoded.push(b'\n');
            }
        }
    }
    out.push(Cow::Owned(joined));
    if !decoded.is_empty() {
        out.push(Cow::Owned(decoded));
    }
    out
}

/// Whether any regular file of `dir` (recursively; the database files, the sealed key and
/// symbolic links excepted) holds what `holds` recognises.
fn secret_file_in(dir: &std::path::Path, holds: &dyn Fn(&[u8]) -> bool) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(Result::ok).map(|e| e.path()));
            }
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !meta.is_file() || meta.len() > SECRET_FILE_MAX || name.starts_with(crate::DB_FILE) {
            continue;
        }
        if std::fs::read(&path).is_ok_and(|bytes| holds(&bytes)) {
            return true;
        }
    }
    false
}

/// Whether the file at `path` starts as an SQLite database does.
fn sqlite_file(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// A plaintext root key file: its header line.
fn holds_root_key(bytes: &[u8]) -> bool {
    bytes.windows(ROOT_KEY_HEADER.len()).any(|w| w == ROOT_KEY_HEADER)
}

/// The header of a plaintext root key file (`custodia_crypto`'s key file format).
const ROOT_KEY_HEADER: &[u8] = b"custodia-root-key-v1";

/// An API key in clear: `cst_`, 16 hex digits, `_`.
fn holds_api_key(bytes: &[u8]) -> bool {
    bytes
        .windows(21)
        .any(|w| w.starts_with(b"cst_") && w[4..20].iter().all(u8::is_ascii_hexdigit) && w[20] == b'_')
}

/// When each root key version was rotated in, from the `keys.rotate` audit entries.
async fn rotations(store: &Store) -> BTreeMap<u32, i64> {
    let query = AuditQuery {
        action: Some("keys.rotate".to_owned()),
        ..AuditQuery::default()
    };
    let rows = async { store.reader().await?.audit().query(&query, 0, 10_000).await }
        .await
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for row in rows {
        let version = serde_json::from_str::<serde_json::Value>(&row.entry)
            .ok()
            .and_then(|e| e["detail"]["to_version"].as_str().and_then(|v| v.parse::<u32>().ok()));
        if let Some(v) = version {
            out.entry(v).or_insert(row.at);
        }
    }
    out
}

async fn operators(store: &Store) -> Result<Vec<OperatorFacts>, String> {
    let mut reader = store.reader().await.map_err(text)?;
    let rows: Vec<OperatorRow> = reader.operators().all().await.map_err(text)?;
    let training = reader.operators().training_as_stored(None).await.map_err(text)?;
    Ok(rows
        .into_iter()
        .map(|o| OperatorFacts {
            training: training
                .iter()
                .filter(|t| t.operator_id == o.operator_id)
                .cloned()
                .collect(),
            enrolled: o.totp_confirmed_at.is_some(),
            disabled: o.disabled_at.is_some(),
            id: o.operator_id,
            name: o.name,
        })
        .collect())
}

/// A notice version as a detail may repeat it: the server's own versions, a date such as
/// `2026-01` or `2026-01-31`, or a registry-shaped name; anything else could be something a
/// caller typed in the wrong place, and is not repeated.
fn version_shown(version: &str) -> String {
    let ours = version
        .strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let b = version.as_bytes();
    let date = matches!(b.len(), 7 | 10)
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if ours || date || crate::name_shaped(version) {
        format!("`{version}`")
    } else {
        "(a version not repeated here)".to_owned()
    }
}

async fn consents(store: &Store) -> Result<ConsentFacts, String> {
    let mut reader = store.reader().await.map_err(text)?;
    let published: BTreeSet<String> = reader
        .notices()
        .list()
        .await
        .map_err(text)?
        .into_iter()
        .map(|n| n.version)
        .collect();
    let subjects = reader.subjects().all_ids().await.map_err(text)?;
    let mut facts = ConsentFacts {
        subjects: subjects.len(),
        published: published.len(),
        ..ConsentFacts::default()
    };
    for subject in subjects.iter().take(MAX_LEDGER_SUBJECTS) {
        facts.read += 1;
        for entry in reader.ledger().of_subject_as_stored(subject).await.map_err(text)? {
            if entry.kind != "consent" || !entry.value {
                continue;
            }
            facts.consents += 1;
            match &entry.notice_version {
                Some(v) if published.contains(v) => {}
                Some(v) => *facts.unknown.entry(version_shown(v)).or_default() += 1,
                None => *facts.unknown.entry("(none)".to_owned()).or_default() += 1,
            }
        }
    }
    Ok(facts)
}

/// Verifies the whole audit log with the sources' key and checkpoints.
async fn verify_log(store: &Store, sources: &AuditSources, now: Timestamp) -> Result<VerifiedLog, String> {
    match (&sources.key, &sources.outside.trusted) {
        (Err(e), _) => Err(format!("the checkpoint key: {e}")),
        (_, Err(e)) => Err(format!("the checkpoints kept outside the database: {e}")),
        (Ok(key), Ok(trusted)) => {
            let trust = AuditTrust {
                tag_key: None,
                link_key: None,
                key: key.clone(),
                trusted: trusted.clone(),
                now,
                max_unsigned_age: None,
                contiguous: !store.shared(),
            };
            verify_audit_log(store, &trust, &()).await.map(|r| VerifiedLog {
                entries: r.entries,
                checkpoints: r.checkpoints,
                trusted: r.trusted,
                unsigned_tail: r.unsigned_tail,
                at: now.0,
            })
        }
    }
}

async fn audit(store: &Store, sources: AuditSources, now: Timestamp) -> AuditFacts {
    let verified = match (&sources.outside.trusted, sources.verified.clone()) {
        (Err(e), _) => Err(format!("the checkpoints kept outside the database: {e}")),
        (Ok(_), Some(verified)) => verified,
        (Ok(_), None) => verify_log(store, &sources, now).await,
    };
    let latest_checkpoint = async { store.reader().await?.audit().latest_checkpoint().await }
        .await
        .map(|c| c.map(|c| (c.tree_size, c.at)))
        .map_err(text);
    let newest_entry = async {
        let mut reader = store.reader().await?;
        let Some((_, high)) = reader.audit().seq_bounds(0).await? else {
            return Ok(None);
        };
        let rows = reader.audit().entries(high - 1, 1).await?;
        Ok::<_, custodia_store::StoreError>(rows.first().map(|r| (r.seq, r.at)))
    }
    .await
    .map_err(text);
    AuditFacts {
        key_source: sources.key_source,
        places: sources.outside.places,
        verified,
        latest_checkpoint,
        newest_entry,
    }
}

/// Reads the backup log: its entries (each with whether its file is still there) and the
/// numbers of lines that are not entries. A missing log is no backup at all.
fn read_backup_log(path: &Path) -> Result<BackupFacts, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BackupFacts::Log {
                entries: Vec::new(),
                bad_lines: Vec::new(),
            });
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut entries = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| Some((v["at"].as_i64()?, v["path"].as_str()?.to_owned(), v["bytes"].as_u64()?)));
        match parsed {
            Some((at, path, bytes)) => {
                // Still there as written: a regular file of the size recorded that is an SQLite
                // database (a line pointing at any file proves no backup).
                let found = std::fs::metadata(&path)
                    .ok()
                    .filter(|m| m.is_file() && m.len() == bytes && sqlite_file(std::path::Path::new(&path)))
                    .map(|m| m.len());
                entries.push(BackupEntry { at, path, bytes, found });
            }
            None => bad_lines.push(i + 1),
        }
    }
    Ok(BackupFacts::Log { entries, bad_lines })
}

async fn requests(store: &Store, now: Timestamp) -> Result<Vec<RequestFacts>, String> {
    let query = RequestQuery {
        statuses: [
            crate::rights::RECEIVED,
            crate::rights::VERIFYING,
            crate::rights::IN_PROGRESS,
            crate::rights::EXTENDED,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        due_before: Some(now.0.saturating_add(DEADLINE_WARNING_MS)),
        subject_digest: None,
        limit: MAX_REQUESTS,
    };
    let rows = async { store.reader().await?.requests().list(&query).await }
        .await
        .map_err(text)?;
    Ok(rows
        .into_iter()
        .map(|r| RequestFacts {
            id: r.request_id,
            kind: r.kind,
            due_at: r.due_at,
        })
        .collect())
}

/// `items` joined for a detail: at most [`MAX_NAMED`], then how many more.
fn named(items: &[String]) -> String {
    let mut out = items.iter().take(MAX_NAMED).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > MAX_NAMED {
        out.push_str(&format!(" and {} more", items.len() - MAX_NAMED));
    }
    out
}

fn check(
    id: &str,
    title: &str,
    severity: Severity,
    passed: bool,
    detail: impl Into<String>,
    remediation: impl Into<String>,
) -> AssessmentCheck {
    AssessmentCheck {
        id: id.to_owned(),
        title: title.to_owned(),
        passed,
        severity,
        detail: detail.into(),
        remediation: remediation.into(),
    }
}

/// The checks, from the facts, at `now`.
fn judge(registry: &Registry, f: &Facts, now: Timestamp) -> Vec<AssessmentCheck> {
    let dir = f
        .env
        .data_dir
        .as_ref()
        .map_or_else(|| "DATA_DIR".to_owned(), |d| d.display().to_string());
    vec![
        tls_enabled(&f.env, now),
        tls_not_self_signed_dev(&f.env.tls, &dir),
        root_key_location(f, &dir),
        root_key_age(f, now),
        admin_token_file(f, &dir),
        operators_mfa(f),
        operators_training(registry, f, now),
        stale_api_keys(f, now),
        bootstrap_admin_revoked(f, now),
        fields_covered(registry),
        purposes_retention(registry),
        purposes_legal_basis(registry),
        consent_notice_version(f),
        audit_verified(f, now),
        audit_checkpoint_recent(f, now),
        backups_recent(f, &dir, now),
        requests_deadlines(f, now),
        registry_check(registry),
    ]
}

fn tls_enabled(env: &Environment, now: Timestamp) -> AssessmentCheck {
    const SERVE: &str = "Serve HTTPS: `custodia serve --tls-cert CERT.pem --tls-key KEY.pem` (or CUSTODIA_TLS_CERT and CUSTODIA_TLS_KEY) with a certificate for the server's name.";
    const RENEW: &str = "Renew the certificate and write the new pair over the files `serve` was given: it serves them to new connections within two seconds, without a restart.";
    let date = |at: i64| Timestamp(at).to_rfc3339();
    let days = |ms: i64| ms.div_euclid(DAY_MS);
    let (passed, severity, detail, remediation) = match &env.tls {
        TlsFacts::Off if env.tls_from_server => (
            false,
            Severity::Critical,
            "the server speaks plain HTTP: API keys, session tokens and personal data cross the network in clear"
                .to_owned(),
            SERVE,
        ),
        TlsFacts::Off => (
            false,
            Severity::Critical,
            "no certificate was given (--tls-cert and --tls-key, or CUSTODIA_TLS_CERT and CUSTODIA_TLS_KEY) and the data directory has no development pair: `serve` with the same options speaks plain HTTP, and API keys, session tokens and personal data cross the network in clear"
                .to_owned(),
            SERVE,
        ),
        TlsFacts::Broken { reason } => (
            false,
            Severity::Critical,
            format!("the TLS certificate does not load: {reason}"),
            SERVE,
        ),
        TlsFacts::On(c) if now.0 < c.not_before => (
            false,
            Severity::Critical,
            format!(
                "{} is not valid until {}: clients refuse it",
                c.path,
                date(c.not_before)
            ),
            RENEW,
        ),
        TlsFacts::On(c) if now.0 > c.not_after => (
            false,
            Severity::Critical,
            format!(
                "{} expired at {} ({} days ago): clients refuse it",
                c.path,
                date(c.not_after),
                days(now.0 - c.not_after)
            ),
            RENEW,
        ),
        TlsFacts::On(c) if c.not_after - now.0 < CERTIFICATE_RENEWAL_MS => (
            false,
            Severity::Medium,
            format!(
                "{} expires at {} (in {} days): clients refuse it from then on",
                c.path,
                date(c.not_after),
                days(c.not_after - now.0)
            ),
            RENEW,
        ),
        TlsFacts::On(c) if env.tls_from_server => (
            true,
            Severity::Critical,
            format!("HTTPS with {}, valid until {}", c.path, date(c.not_after)),
            SERVE,
        ),
        // A local tool reads the files it was given, not what a running server serves.
        TlsFacts::On(c) => (
            true,
            Severity::Critical,
            format!(
                "{} loads with its key (the key is the certificate's), valid until {}: `serve` given the same options serves HTTPS with them (this checks the files, not a running server: GET /v1/assessment asks the server itself)",
                c.path,
                date(c.not_after)
            ),
            SERVE,
        ),
    };
    check(
        "tls_enabled",
        "The server serves HTTPS with a current certificate",
        severity,
        passed,
        detail,
        remediation,
    )
}

fn tls_not_self_signed_dev(tls: &TlsFacts, dir: &str) -> AssessmentCheck {
    let from_ca = "Serve with a certificate from a CA your clients trust (your organisation's or a public one): `--tls-cert`/`--tls-key` (CUSTODIA_TLS_CERT, CUSTODIA_TLS_KEY)";
    let (passed, severity, detail, remediation) = match tls {
        TlsFacts::On(c) if c.dev => (
            false,
            Severity::Medium,
            format!(
                "{} is the self-signed development certificate `init --dev-tls` made: no client trusts it unless told to",
                c.path
            ),
            format!("{from_ca}, then remove {dir}/tls."),
        ),
        // Not only the development pair: any certificate that is its own issuer has no CA
        // behind it, and each client must be told to trust it (and told again at renewal).
        TlsFacts::On(c) if c.self_signed => (
            false,
            Severity::Low,
            format!(
                "{} is self-signed (its issuer is its subject): no CA vouches for it, so each client must be told to trust it",
                c.path
            ),
            format!("{from_ca}."),
        ),
        TlsFacts::On(c) => (
            true,
            Severity::Medium,
            format!(
                "{} is issued by a CA (its issuer is not its subject), not the development certificate",
                c.path
            ),
            format!("{from_ca}."),
        ),
        TlsFacts::Off | TlsFacts::Broken { .. } => (
            true,
            Severity::Medium,
            "no certificate (see tls_enabled)".to_owned(),
            format!("{from_ca}."),
        ),
    };
    check(
        "tls_not_self_signed_dev",
        "The certificate is issued by a CA (not self-signed, not the development one)",
        severity,
        passed,
        detail,
        remediation,
    )
}

fn root_key_location(f: &Facts, dir: &str) -> AssessmentCheck {
    let (passed, detail) = match (&f.keys.provider, f.root_key_file) {
        (Err(e), _) => (false, format!("where the root key comes from is not known: {e}")),
        (Ok(p), _) if p == "file" => (
            false,
            format!(
                "the root key is the plaintext file {dir}/root.key beside the database: a copy of the directory (a backup, a stolen disk) opens every value"
            ),
        ),
        (Ok(p), Some(true)) => (
            false,
            format!(
                "the root key comes from the {p} source, but a copy of it in clear (root.key or a copy of that file, or the key itself written in a file) is still in {dir}"
            ),
        ),
        (Ok(p), None) if !matches!(p.as_str(), "environment" | "passphrase" | "openbao") => {
            (false, format!("the root key source `{p}` is not one this check knows"))
        }
        (Ok(p), _) => (
            true,
            match p.as_str() {
                "environment" => {
                    "the root key comes from CUSTODIA_ROOT_KEY, not a file in the data directory".to_owned()
                }
                "passphrase" => "the root key is sealed under a passphrase (root.key.sealed)".to_owned(),
                "openbao" => "the root key is sealed by OpenBao transit (root.key.bao)".to_owned(),
                other => format!("the root key comes from the {other} source"),
            },
        ),
    };
    check(
        "root_key_location",
        "The root key is not a plaintext file beside the database",
        Severity::High,
        passed,
        detail,
        format!(
            "Move the root key out of the data directory: put its versions (`V:BASE64,...`, the lines of root.key) in CUSTODIA_ROOT_KEY from a secret manager and delete {dir}/root.key; new vaults can seal it with CUSTODIA_ROOT_KEY_PASSPHRASE or OpenBao transit (CUSTODIA_OPENBAO_ADDR)."
        ),
    )
}

fn root_key_age(f: &Facts, now: Timestamp) -> AssessmentCheck {
    let max_days = i64::from(f.env.key_max_age_days);
    let (passed, detail) = match &f.keys.versions {
        Err(e) => (false, format!("the root key's versions could not be read: {e}")),
        Ok(versions) => match versions.iter().max_by_key(|(v, _)| *v) {
            None => (false, "the root key has no version".to_owned()),
            Some((version, created)) => {
                // The key source's own time; else when the version was rotated in; else, for
                // the first version, when the vault was made (the key is at least that old).
                let (made, how) = match (created, f.rotations.get(version), *version == 1) {
                    (Some(secs), _, _) => (Some(secs.saturating_mul(1000)), "made"),
                    (None, Some(at), _) => (Some(*at), "rotated in"),
                    (None, None, true) => (f.vault_since, "in use since the vault was made"),
                    (None, None, false) => (None, ""),
                };
                match made {
                    None => (
                        false,
                        format!(
                            "version {version} is current, and neither its source nor the audit log says when it was made"
                        ),
                    ),
                    Some(at) => {
                        let days = (now.0 - at).div_euclid(DAY_MS);
                        (
                            days < max_days,
                            format!(
                                "version {version} is current, {how} {} ({days} days ago; the rotation period is {max_days} days)",
                                Timestamp(at).to_rfc3339()
                            ),
                        )
                    }
                }
            }
        },
    };
    check(
        "root_key_age",
        "The root key is younger than its rotation period",
        Severity::Medium,
        passed,
        detail,
        "Rotate the root key: `custodia keys rotate` (or POST /v1/keys/rotate), then `custodia keys retire VERSION` for the old version once nothing uses it.",
    )
}

fn admin_token_file(f: &Facts, dir: &str) -> AssessmentCheck {
    let (passed, detail) = match f.admin_token_file {
        None => (
            false,
            "the data directory is not known, so it could not be looked at".to_owned(),
        ),
        Some(true) => (
            false,
            format!("a file in {dir} (admin-token, or a copy of it) holds an API key in clear"),
        ),
        Some(false) => (true, "no API key in clear in the data directory".to_owned()),
    };
    check(
        "admin_token_file",
        "No admin token file in the data directory",
        Severity::High,
        passed,
        detail,
        format!("Store the key in a secret manager and delete the file: `rm {dir}/admin-token`."),
    )
}

/// Active operators, or why they are not known.
fn active_operators(f: &Facts) -> Result<Vec<&OperatorFacts>, String> {
    f.operators
        .as_ref()
        .map(|ops| ops.iter().filter(|o| !o.disabled).collect())
        .map_err(|e| format!("the operators could not be read: {e}"))
}

fn operators_mfa(f: &Facts) -> AssessmentCheck {
    let (passed, detail) = match active_operators(f) {
        Err(e) => (false, e),
        Ok(ops) if ops.is_empty() => (true, "no active operators".to_owned()),
        Ok(ops) => {
            let missing: Vec<String> = ops
                .iter()
                .filter(|o| !o.enrolled)
                .map(|o| format!("{} ({})", o.id, o.name))
                .collect();
            if missing.is_empty() {
                (
                    true,
                    format!("all {} active operators enrolled a TOTP authenticator", ops.len()),
                )
            } else {
                (
                    false,
                    format!(
                        "{} of {} active operators have not completed TOTP enrolment: {}",
                        missing.len(),
                        ops.len(),
                        named(&missing)
                    ),
                )
            }
        }
    };
    check(
        "operators_mfa",
        "Every active operator has a second factor (TOTP)",
        Severity::High,
        passed,
        detail,
        "Have each listed operator finish enrolment (`custodia operator enrol NAME`), or disable the account (`custodia operator disable ID`).",
    )
}

fn operators_training(registry: &Registry, f: &Facts, now: Timestamp) -> AssessmentCheck {
    let (passed, detail) = match active_operators(f) {
        Err(e) => (false, e),
        Ok(_) if registry.training.is_empty() => (true, "the registry requires no [training] courses".to_owned()),
        Ok(ops) if ops.is_empty() => (true, "no active operators".to_owned()),
        Ok(ops) => {
            let due: Vec<String> = ops
                .iter()
                .filter_map(|o| {
                    let lapsed: Vec<String> = crate::operators::course_statuses(&registry.training, &o.training, now)
                        .into_iter()
                        .filter(|c| matches!(c.status.as_str(), "missing" | "expired"))
                        .map(|c| format!("{} {}", c.course, c.status))
                        .collect();
                    (!lapsed.is_empty()).then(|| format!("{} ({}): {}", o.id, o.name, lapsed.join(", ")))
                })
                .collect();
            if due.is_empty() {
                (true, format!("all {} active operators' courses are current", ops.len()))
            } else {
                (
                    false,
                    format!(
                        "{} of {} active operators have training due: {}",
                        due.len(),
                        ops.len(),
                        named(&due)
                    ),
                )
            }
        }
    };
    check(
        "operators_training",
        "Every active operator's training is current",
        Severity::Medium,
        passed,
        detail,
        "Attest each completed course (`custodia operator train OPERATOR COURSE`), or disable accounts no longer used (`custodia operator disable ID`).",
    )
}

/// Whether a principal's key works at `now`.
fn active(p: &PrincipalRow, now: Timestamp) -> bool {
    p.revoked_at.is_none() && p.expires_at.is_none_or(|at| at > now.0)
}

fn stale_api_keys(f: &Facts, now: Timestamp) -> AssessmentCheck {
    let (passed, detail) = match &f.principals {
        Err(e) => (false, format!("the principals could not be read: {e}")),
        Ok(all) => {
            let stale: Vec<String> = all
                .iter()
                .filter(|p| active(p, now) && now.0 - p.last_used_at.unwrap_or(p.created_at) >= STALE_KEY_MS)
                .map(|p| format!("{} ({})", p.principal_id, p.name))
                .collect();
            let n = all.iter().filter(|p| active(p, now)).count();
            if stale.is_empty() {
                (
                    true,
                    format!("each of the {n} active API keys was used (or made) within 90 days"),
                )
            } else {
                (
                    false,
                    format!(
                        "{} active API keys unused for 90 days or more: {}",
                        stale.len(),
                        named(&stale)
                    ),
                )
            }
        }
    };
    check(
        "stale_api_keys",
        "No active API key unused for 90 days",
        Severity::Medium,
        passed,
        detail,
        "Revoke the keys nobody uses: `custodia principal revoke PRINCIPAL_ID` (or give them a lifetime: `custodia principal rotate ID --expires-in 90d`).",
    )
}

fn bootstrap_admin_revoked(f: &Facts, now: Timestamp) -> AssessmentCheck {
    let (passed, detail) = match &f.principals {
        Err(e) => (false, format!("the principals could not be read: {e}")),
        Ok(all) => {
            let live: Vec<String> = all
                .iter()
                .filter(|p| p.name == BOOTSTRAP_PRINCIPAL && active(p, now))
                .map(|p| p.principal_id.clone())
                .collect();
            if live.is_empty() {
                (true, format!("no active `{BOOTSTRAP_PRINCIPAL}` key"))
            } else {
                (
                    false,
                    format!(
                        "the bootstrap administrator key is active ({}): one shared key with every right, held by nobody in particular",
                        named(&live)
                    ),
                )
            }
        }
    };
    check(
        "bootstrap_admin_revoked",
        "The bootstrap administrator key is revoked",
        Severity::Medium,
        passed,
        detail,
        "Create named operators with MFA (`custodia operator create NAME --role admin`) or named admin keys, then revoke the bootstrap key: `custodia principal revoke PRINCIPAL_ID`.",
    )
}

fn fields_covered(registry: &Registry) -> AssessmentCheck {
    let mut uncovered = Vec::new();
    let mut total = 0usize;
    for c in registry.collections.values() {
        for field in c.fields.keys() {
            total += 1;
            if !registry.purposes.values().any(|p| p.declares(&c.name, field)) {
                uncovered.push(format!("{}.{field}", c.name));
            }
        }
    }
    let passed = uncovered.is_empty();
    let detail = if passed {
        format!("each of the {total} fields is declared by a purpose")
    } else {
        format!(
            "{} fields no purpose declares (they can never be written, or hold dead data): {}",
            uncovered.len(),
            named(&uncovered)
        )
    };
    check(
        "fields_covered",
        "Every field is declared by a purpose",
        Severity::Medium,
        passed,
        detail,
        "Declare each listed field in a purpose's `fields` in the registry, or remove it from its collection; then `custodia check`.",
    )
}

fn purposes_retention(registry: &Registry) -> AssessmentCheck {
    let missing: Vec<String> = registry
        .purposes
        .values()
        .filter(|p| p.retention.is_none())
        .map(|p| p.name.clone())
        .collect();
    let passed = missing.is_empty();
    let detail = if passed {
        format!("each of the {} purposes has a retention rule", registry.purposes.len())
    } else {
        format!("purposes without a retention rule: {}", named(&missing))
    };
    check(
        "purposes_retention",
        "Every purpose has a retention rule",
        Severity::High,
        passed,
        detail,
        "Add `retention = { period = \"...\", from = \"...\" }` to each listed purpose in the registry; then `custodia check`.",
    )
}

fn purposes_legal_basis(registry: &Registry) -> AssessmentCheck {
    let vague: Vec<String> = registry
        .purposes
        .values()
        .filter(
            |p| matches!(&p.legal_basis, LegalBasis::LegitimateInterests { interest } if interest.trim().is_empty()),
        )
        .map(|p| p.name.clone())
        .collect();
    let interests = registry
        .purposes
        .values()
        .filter(|p| matches!(p.legal_basis, LegalBasis::LegitimateInterests { .. }))
        .count();
    let passed = vague.is_empty();
    let detail = if passed {
        format!(
            "each of the {} purposes names its legal basis; the {interests} on legitimate interests state the interest",
            registry.purposes.len()
        )
    } else {
        format!(
            "purposes on legitimate interests that do not state the interest: {}",
            named(&vague)
        )
    };
    check(
        "purposes_legal_basis",
        "Every purpose has a legal basis (and its legitimate interest)",
        Severity::High,
        passed,
        detail,
        "Give each listed purpose `legitimate_interest = \"...\"` (the interest pursued, GDPR Art. 13(1)(d)) or another legal basis; then `custodia check`.",
    )
}

fn consent_notice_version(f: &Facts) -> AssessmentCheck {
    let (passed, detail) = match &f.consents {
        Err(e) => (false, format!("the ledger could not be read: {e}")),
        Ok(c) => {
            let partial = if c.read < c.subjects {
                format!(" (the first {} of {} subjects were read)", c.read, c.subjects)
            } else {
                String::new()
            };
            let bad: u64 = c.unknown.values().sum();
            if bad == 0 {
                (
                    true,
                    format!(
                        "{} consents given, each naming one of the {} notice versions the server showed{partial}; subjects with ledger entries and nothing else stored are not seen",
                        c.consents, c.published
                    ),
                )
            } else {
                let versions: Vec<String> = c.unknown.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                (
                    false,
                    format!(
                        "{bad} of {} consents name no notice version the server showed: {}{partial}",
                        c.consents,
                        named(&versions)
                    ),
                )
            }
        }
    };
    check(
        "consent_notice_version",
        "Every consent names a notice version the server showed",
        Severity::Medium,
        passed,
        detail,
        "Send the `version` of the notice the subject was shown (GET /v1/notice) with each consent; correct the system that sent the listed versions.",
    )
}

fn audit_verified(f: &Facts, now: Timestamp) -> AssessmentCheck {
    const FIX: &str = "Run `custodia audit verify --public-key KEY` (the key init printed) to locate the problem, and investigate before the vault is used further.";
    let (passed, severity, detail, remediation) = match &f.audit.verified {
        Ok(v) => {
            let verified = format!(
                "{} entries verified against {} signed checkpoints and {} from outside the database, with {}{}",
                v.entries,
                v.checkpoints,
                v.trusted,
                f.audit.key_source,
                if v.at == now.0 {
                    String::new()
                } else {
                    format!(
                        " (read through at {}: the server verifies the whole log at most every {} minutes for this report)",
                        Timestamp(v.at).to_rfc3339(),
                        VERIFICATION_REUSE_MS / 60_000
                    )
                }
            );
            // The database's own checkpoints prove nothing against whoever can write it: they
            // go with the entries they cover. Without one kept elsewhere the log verifies
            // however it was rewritten, so this is a warning, not a pass.
            let alone = if f.audit.places.is_empty() {
                Some("no checkpoint is kept outside the database (the server runs with --no-checkpoint-log and no witness)".to_owned())
            } else if v.trusted == 0 && v.checkpoints > 0 {
                Some(format!("no checkpoint was found in {}", f.audit.places.join(" or ")))
            } else {
                None
            };
            match alone {
                None => (true, Severity::High, verified, FIX.to_owned()),
                Some(why) => (
                    false,
                    Severity::Medium,
                    format!(
                        "{verified}; but {why}: whoever can write the database can delete its checkpoints and rewrite what they covered, and the log would still verify"
                    ),
                    "Keep every checkpoint outside the database: a checkpoint log on other storage (`custodia serve --checkpoint-log PATH`; the default is audit-checkpoints.log in the data directory) and a witness on another machine (`--witness URL --witness-key KEY`).".to_owned(),
                ),
            }
        }
        Err(e) => (
            false,
            Severity::High,
            format!("the audit log does not verify: {e}"),
            FIX.to_owned(),
        ),
    };
    check(
        "audit_verified",
        "The audit log verifies",
        severity,
        passed,
        detail,
        remediation,
    )
}

fn audit_checkpoint_recent(f: &Facts, now: Timestamp) -> AssessmentCheck {
    let a = &f.audit;
    let (passed, detail) = match (&a.newest_entry, &a.latest_checkpoint) {
        (Err(e), _) | (_, Err(e)) => (false, format!("the audit log could not be read: {e}")),
        (Ok(None), _) => (true, "the audit log is empty".to_owned()),
        (Ok(Some((seq, _))), Ok(None)) => (false, format!("the log has entries (up to {seq}) and no checkpoint")),
        (Ok(Some((seq, entry_at))), Ok(Some((size, signed_at)))) => {
            // The tail of a verification made now: a reused one (the server's, up to 10 minutes
            // old) says nothing of the entries appended since; the times below still do.
            let tail = a
                .verified
                .as_ref()
                .ok()
                .filter(|v| v.at == now.0)
                .map(|v| v.unsigned_tail);
            let lag = entry_at - signed_at;
            let covered = tail == Some(0);
            let detail = format!(
                "the newest checkpoint covers {size} entries, signed {}; the newest entry ({seq}) is of {}{}",
                Timestamp(*signed_at).to_rfc3339(),
                Timestamp(*entry_at).to_rfc3339(),
                match tail {
                    Some(n) => format!(", {n} entries after the checkpoint"),
                    None => String::new(),
                }
            );
            (covered || lag <= CHECKPOINT_LAG_MS, detail)
        }
    };
    check(
        "audit_checkpoint_recent",
        "The newest checkpoint covers the log (at most an hour behind)",
        Severity::High,
        passed,
        detail,
        "Start the server: it signs a checkpoint at start and every second while the log grows; unsigned entries older than an hour mean checkpoints were lost (run `custodia audit verify`).",
    )
}

/// How far ahead of the clock a recorded time may be before it is taken as no time at all.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

fn backups_recent(f: &Facts, dir: &str, now: Timestamp) -> AssessmentCheck {
    let max_days = i64::from(f.env.backup_max_age_days);
    let remediation = format!(
        "Back up now and on a schedule: `custodia backup --data-dir {dir} --out /backups/custodia-$(date +%F).db` (keep the root key apart from it)."
    );
    let (passed, severity, detail) = match &f.backups {
        Err(e) => (
            false,
            Severity::Medium,
            format!("the backup log could not be read: {e}"),
        ),
        Ok(BackupFacts::Postgres) => (
            true,
            Severity::Info,
            "PostgreSQL: backups are the database's (pg_dump / PITR), outside Custodia".to_owned(),
        ),
        Ok(BackupFacts::Log { entries, bad_lines }) => {
            let bad = if bad_lines.is_empty() {
                String::new()
            } else {
                let lines: Vec<String> = bad_lines.iter().map(ToString::to_string).collect();
                format!("; {BACKUP_LOG_FILE} lines that are not entries: {}", named(&lines))
            };
            let cutoff = now.0 - max_days * DAY_MS;
            // a backup dated ahead of the clock (the log edited, or written under a clock set
            // wrong) proves nothing about today: counted apart, never the newest
            let ahead = |e: &&BackupEntry| e.at > now.0 + CLOCK_SKEW_MS;
            let future = entries.iter().filter(ahead).count();
            let bad = if future > 0 {
                format!("{bad}; {future} backups are dated in the future (the backup log edited, or a clock set wrong)")
            } else {
                bad
            };
            let newest_kept = entries
                .iter()
                .filter(|e| e.found.is_some() && !ahead(e))
                .max_by_key(|e| e.at);
            let gone = entries.iter().filter(|e| e.at >= cutoff && e.found.is_none()).count();
            let gone = if gone > 0 {
                format!("; {gone} recent backups are no longer there as written (missing, changed, or not a database)")
            } else {
                String::new()
            };
            match newest_kept {
                None if entries.is_empty() => (
                    false,
                    Severity::Medium,
                    format!("no backup was ever made with `custodia backup`{bad}"),
                ),
                None => (
                    false,
                    Severity::Medium,
                    format!(
                        "none of the {} backups recorded is still there and made before now{bad}",
                        entries.len()
                    ),
                ),
                Some(e) => {
                    let days = (now.0 - e.at).max(0).div_euclid(DAY_MS);
                    let size = match e.found {
                        Some(n) if n != e.bytes => format!(" (its size changed: {n} bytes, {} when written)", e.bytes),
                        _ => String::new(),
                    };
                    (
                        e.at >= cutoff,
                        Severity::Medium,
                        format!(
                            "the newest backup still there is {} of {} ({days} days ago; at most {max_days} allowed){size}{gone}{bad}",
                            e.path,
                            Timestamp(e.at).to_rfc3339()
                        ),
                    )
                }
            }
        }
    };
    check(
        "backups_recent",
        "A recent backup exists",
        severity,
        passed,
        detail,
        remediation,
    )
}

fn requests_deadlines(f: &Facts, now: Timestamp) -> AssessmentCheck {
    let (passed, severity, detail) = match &f.requests {
        Err(e) => (
            false,
            Severity::High,
            format!("the open requests could not be read: {e}"),
        ),
        Ok(rows) => {
            let show = |r: &RequestFacts| format!("{} ({}, due {})", r.id, r.kind, Timestamp(r.due_at).to_rfc3339());
            let overdue: Vec<String> = rows.iter().filter(|r| r.due_at <= now.0).map(show).collect();
            let soon: Vec<String> = rows.iter().filter(|r| r.due_at > now.0).map(show).collect();
            if !overdue.is_empty() {
                (
                    false,
                    Severity::High,
                    format!(
                        "{} open requests are past their deadline: {}",
                        overdue.len(),
                        named(&overdue)
                    ),
                )
            } else if !soon.is_empty() {
                (
                    false,
                    Severity::Medium,
                    format!("{} open requests are due within 7 days: {}", soon.len(), named(&soon)),
                )
            } else {
                (true, Severity::High, "no open request is due within 7 days".to_owned())
            }
        }
    };
    check(
        "requests_deadlines",
        "No data subject request is past (or near) its deadline",
        severity,
        passed,
        detail,
        "Fulfil (`custodia requests fulfil ID`), extend (`custodia requests extend ID --reason ...`) or deny the listed requests before their deadline.",
    )
}

fn registry_check(registry: &Registry) -> AssessmentCheck {
    let warnings = registry.warnings();
    let passed = warnings.is_empty();
    let detail = if passed {
        "`custodia check` has no warnings".to_owned()
    } else {
        let each: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        format!("{} warnings: {}", warnings.len(), each.join(" | "))
    };
    check(
        "registry_check",
        "The registry has no warnings",
        Severity::Medium,
        passed,
        detail,
        "Run `custodia check` and resolve each warning in the registry.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn registry() -> Registry {
        Registry::parse("registry.toml", custodia_registry::EXAMPLE_REGISTRY).unwrap()
    }

    fn principal(id: &str, name: &str, created_at: i64, last_used_at: Option<i64>) -> PrincipalRow {
        PrincipalRow {
            principal_id: id.into(),
            name: name.into(),
            roles: vec!["admin".into()],
            key_id: format!("key-{id}"),
            key_hash: vec![0; 32],
            created_at,
            revoked_at: None,
            expires_at: None,
            last_used_at,
            created_by: None,
            client_cert: None,
            seal: None,
        }
    }

    /// A certificate from a CA, valid from a year before `NOW` to a year after.
    fn certificate(path: &str) -> Certificate {
        Certificate {
            path: path.into(),
            dev: false,
            self_signed: false,
            not_before: NOW - 365 * DAY_MS,
            not_after: NOW + 365 * DAY_MS,
        }
    }

    /// A well-run vault: every check passes at `NOW`.
    fn good() -> Facts {
        Facts {
            env: Environment {
                data_dir: Some(PathBuf::from("/srv/custodia")),
                tls: TlsFacts::On(certificate("/etc/tls/vault.pem")),
                tls_from_server: true,
                key_max_age_days: DEFAULT_KEY_MAX_AGE_DAYS,
                backup_max_age_days: DEFAULT_BACKUP_MAX_AGE_DAYS,
            },
            keys: KeyFacts {
                provider: Ok("passphrase".into()),
                versions: Ok(vec![
                    (1, Some((NOW - 400 * DAY_MS) / 1000)),
                    (2, Some((NOW - 10 * DAY_MS) / 1000)),
                ]),
                keyring: None,
            },
            vault_since: Some(NOW - 400 * DAY_MS),
            rotations: BTreeMap::new(),
            root_key_file: Some(false),
            admin_token_file: Some(false),
            principals: Ok(vec![principal("prn_1", "shop", NOW - 100 * DAY_MS, Some(NOW - DAY_MS))]),
            operators: Ok(vec![]),
            consents: Ok(ConsentFacts {
                subjects: 3,
                read: 3,
                consents: 2,
                unknown: BTreeMap::new(),
                published: 1,
            }),
            audit: AuditFacts {
                key_source: "the pinned key".into(),
                places: vec!["the checkpoint log /srv/custodia/audit-checkpoints.log".into()],
                verified: Ok(VerifiedLog {
                    entries: 10,
                    checkpoints: 2,
                    trusted: 1,
                    unsigned_tail: 0,
                    at: NOW,
                }),
                latest_checkpoint: Ok(Some((10, NOW - 1000))),
                newest_entry: Ok(Some((10, NOW - 2000))),
            },
            backups: Ok(BackupFacts::Log {
                entries: vec![BackupEntry {
                    at: NOW - DAY_MS,
                    path: "/backups/a.db".into(),
                    bytes: 100,
                    found: Some(100),
                }],
                bad_lines: vec![],
            }),
            requests: Ok(vec![]),
        }
    }

    fn by_id<'a>(checks: &'a [AssessmentCheck], id: &str) -> &'a AssessmentCheck {
        checks.iter().find(|c| c.id == id).unwrap()
    }

    /// The check `id` of `facts` at `now`.
    fn run(facts: &Facts, id: &str, now: i64) -> AssessmentCheck {
        by_id(&judge(&registry(), facts, Timestamp(now)), id).clone()
    }

    #[test]
    fn a_well_run_vault_passes_every_vault_check() {
        let checks = judge(&registry(), &good(), Timestamp(NOW));
        let ids: BTreeSet<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), checks.len(), "ids are unique");
        for c in &checks {
            // The example registry's own warnings are the registry checks' business.
            if matches!(
                c.id.as_str(),
                "registry_check" | "purposes_retention" | "fields_covered"
            ) {
                continue;
            }
            assert!(c.passed, "{}: {}", c.id, c.detail);
            assert!(!c.remediation.is_empty() && !c.title.is_empty());
        }
    }

    #[test]
    fn tls_off_fails_and_the_development_pair_is_named() {
        let mut f = good();
        f.env.tls = TlsFacts::Off;
        assert!(!run(&f, "tls_enabled", NOW).passed);
        let dev = run(&f, "tls_not_self_signed_dev", NOW);
        assert!(dev.passed && dev.detail.contains("no certificate"));
        f.env.tls = TlsFacts::On(Certificate {
            dev: true,
            self_signed: true,
            ..certificate("/srv/custodia/tls/cert.pem")
        });
        assert!(run(&f, "tls_enabled", NOW).passed);
        let dev = run(&f, "tls_not_self_signed_dev", NOW);
        assert!(!dev.passed && dev.severity == Severity::Medium && dev.remediation.contains("/srv/custodia/tls"));
        f.env.tls = TlsFacts::Broken {
            reason: "no PEM".into(),
        };
        assert!(!run(&f, "tls_enabled", NOW).passed);
        assert_eq!(run(&f, "tls_enabled", NOW).severity, Severity::Critical);
    }

    /// What a reviewer found: a self-signed certificate valid only in January 2020 passed both
    /// TLS checks.
    #[test]
    fn an_expired_or_self_signed_certificate_is_no_pass() {
        let mut f = good();
        let jan_2020 = 1_577_836_800_000;
        f.env.tls = TlsFacts::On(Certificate {
            self_signed: true,
            not_before: jan_2020,
            not_after: jan_2020 + 31 * DAY_MS,
            ..certificate("c2.pem")
        });
        let c = run(&f, "tls_enabled", NOW);
        assert!(!c.passed && c.severity == Severity::Critical, "{c:?}");
        assert!(
            c.detail.contains("c2.pem expired at 2020-02-01T00:00:00.000Z"),
            "{}",
            c.detail
        );
        let c = run(&f, "tls_not_self_signed_dev", NOW);
        assert!(
            !c.passed && c.severity == Severity::Low && c.detail.contains("self-signed"),
            "{c:?}"
        );
        // Not valid yet.
        assert!(!run(&f, "tls_enabled", jan_2020 - DAY_MS).passed);
        assert!(
            run(&f, "tls_enabled", jan_2020 + 2 * DAY_MS)
                .detail
                .contains("expires at")
        );
        // From a CA, valid for a year: a pass, then a warning in its last 30 days.
        f.env.tls = TlsFacts::On(certificate("/etc/tls/vault.pem"));
        assert!(run(&f, "tls_enabled", NOW).passed);
        assert!(run(&f, "tls_not_self_signed_dev", NOW).passed);
        let soon = run(&f, "tls_enabled", NOW + 340 * DAY_MS);
        assert!(
            !soon.passed && soon.severity == Severity::Medium && soon.detail.contains("in 25 days"),
            "{soon:?}"
        );
        assert!(soon.remediation.contains("Renew"));
        assert_eq!(run(&f, "tls_enabled", NOW + 366 * DAY_MS).severity, Severity::Critical);
    }

    /// `custodia assess` reads the files it is given: it says so rather than claim what a
    /// running server serves.
    #[test]
    fn the_cli_says_it_checked_files_not_a_running_server() {
        let mut f = good();
        f.env.tls_from_server = false;
        let c = run(&f, "tls_enabled", NOW);
        assert!(c.passed && c.detail.contains("loads with its key") && c.detail.contains("not a running server"));
        f.env.tls = TlsFacts::Off;
        let c = run(&f, "tls_enabled", NOW);
        assert!(!c.passed && c.detail.contains("no certificate was given"));
    }

    #[test]
    fn a_plaintext_root_key_beside_the_database_fails() {
        let mut f = good();
        f.keys.provider = Ok("file".into());
        f.root_key_file = Some(true);
        assert!(!run(&f, "root_key_location", NOW).passed);
        // Moved to the environment, but the file left behind: still a failure.
        f.keys.provider = Ok("environment".into());
        assert!(!run(&f, "root_key_location", NOW).passed);
        f.root_key_file = Some(false);
        assert!(run(&f, "root_key_location", NOW).passed);
        f.keys.provider = Err("two sources set".into());
        assert!(!run(&f, "root_key_location", NOW).passed);
    }

    #[test]
    fn the_root_key_ages_with_the_clock() {
        let mut f = good();
        // Version 2 made 10 days ago: fine until the period is over.
        assert!(run(&f, "root_key_age", NOW).passed);
        assert!(run(&f, "root_key_age", NOW + 354 * DAY_MS).passed);
        assert!(!run(&f, "root_key_age", NOW + 355 * DAY_MS).passed);
        f.env.key_max_age_days = 5;
        assert!(!run(&f, "root_key_age", NOW).passed);
        // A first version without a time is as old as the vault at least.
        f.env.key_max_age_days = 365;
        f.keys.versions = Ok(vec![(1, None)]);
        f.vault_since = Some(NOW - 30 * DAY_MS);
        assert!(run(&f, "root_key_age", NOW).passed);
        assert!(!run(&f, "root_key_age", NOW + 335 * DAY_MS).passed);
        // A later version without a time: its rotation's audit entry, else unknown (fails).
        f.keys.versions = Ok(vec![(1, None), (2, None)]);
        assert!(!run(&f, "root_key_age", NOW).passed);
        f.rotations.insert(2, NOW - DAY_MS);
        assert!(run(&f, "root_key_age", NOW).passed);
        f.keys.versions = Err("no passphrase".into());
        assert!(!run(&f, "root_key_age", NOW).passed);
    }

    #[test]
    fn the_admin_token_file_fails_until_deleted() {
        let mut f = good();
        f.admin_token_file = Some(true);
        let c = run(&f, "admin_token_file", NOW);
        assert!(!c.passed && c.remediation.contains("rm /srv/custodia/admin-token"));
        f.admin_token_file = None;
        assert!(!run(&f, "admin_token_file", NOW).passed);
    }

    fn operator(id: &str, enrolled: bool, disabled: bool, training: Vec<TrainingRow>) -> OperatorFacts {
        OperatorFacts {
            id: id.into(),
            name: format!("name-{id}"),
            enrolled,
            disabled,
            training,
        }
    }

    #[test]
    fn operators_need_totp_and_current_training() {
        let mut f = good();
        assert!(run(&f, "operators_mfa", NOW).detail.contains("no active operators"));
        let completed = |course: &str, at: i64| TrainingRow {
            operator_id: "opr_a".into(),
            course: course.into(),
            completed_at: at,
            attested_by: "prn_1".into(),
            recorded_at: at,
        };
        let reg = registry();
        let courses: Vec<&String> = reg.training.keys().collect();
        assert!(!courses.is_empty(), "the example registry requires training");
        let all = |at: i64| courses.iter().map(|c| completed(c, at)).collect::<Vec<_>>();
        f.operators = Ok(vec![
            operator("opr_a", true, false, all(NOW - DAY_MS)),
            operator("opr_b", false, true, vec![]),
        ]);
        // The disabled, unenrolled operator does not count.
        assert!(run(&f, "operators_mfa", NOW).passed);
        assert!(run(&f, "operators_training", NOW).passed);
        // Years later every course has lapsed.
        let later = run(&f, "operators_training", NOW + 4000 * DAY_MS);
        assert!(!later.passed && later.detail.contains("opr_a") && later.detail.contains("expired"));
        f.operators = Ok(vec![operator("opr_c", false, false, vec![])]);
        let mfa = run(&f, "operators_mfa", NOW);
        assert!(!mfa.passed && mfa.detail.contains("opr_c (name-opr_c)"));
        let training = run(&f, "operators_training", NOW);
        assert!(!training.passed && training.detail.contains("missing"));
        f.operators = Err("database locked".into());
        assert!(!run(&f, "operators_mfa", NOW).passed);
    }

    #[test]
    fn keys_unused_for_90_days_are_stale_and_the_bootstrap_key_should_go() {
        let mut f = good();
        f.principals = Ok(vec![
            principal("prn_1", "shop", NOW - 100 * DAY_MS, Some(NOW - DAY_MS)),
            principal("prn_2", BOOTSTRAP_PRINCIPAL, NOW - 10 * DAY_MS, None),
        ]);
        assert!(run(&f, "stale_api_keys", NOW).passed);
        assert!(!run(&f, "bootstrap_admin_revoked", NOW).passed);
        // 81 days later the bootstrap key, never used, is 91 days old: stale.
        let stale = run(&f, "stale_api_keys", NOW + 81 * DAY_MS);
        assert!(!stale.passed && stale.detail.contains("prn_2 (bootstrap-admin)") && !stale.detail.contains("prn_1"));
        // Revoked, or expired, it is neither.
        if let Ok(all) = &mut f.principals {
            all[1].revoked_at = Some(NOW);
        }
        assert!(run(&f, "bootstrap_admin_revoked", NOW).passed);
        assert!(run(&f, "stale_api_keys", NOW + 81 * DAY_MS).passed);
        if let Ok(all) = &mut f.principals {
            all[1].revoked_at = None;
            all[1].expires_at = Some(NOW + DAY_MS);
        }
        assert!(!run(&f, "bootstrap_admin_revoked", NOW).passed);
        assert!(run(&f, "bootstrap_admin_revoked", NOW + 2 * DAY_MS).passed);
    }

    #[test]
    fn registry_checks_name_fields_purposes_and_warnings() {
        let text = custodia_registry::EXAMPLE_REGISTRY;
        let reg = registry();
        // The example declares every field and a retention rule for every purpose.
        assert!(fields_covered(&reg).passed, "{}", fields_covered(&reg).detail);
        assert!(purposes_retention(&reg).passed, "{}", purposes_retention(&reg).detail);
        assert!(purposes_legal_basis(&reg).passed);
        let mut reg = Registry::parse("registry.toml", text).unwrap();
        let purpose = reg.purposes.keys().next().cloned().unwrap();
        if let Some(p) = reg.purposes.get_mut(&purpose) {
            p.retention = None;
            p.fields.clear();
            p.legal_basis = LegalBasis::LegitimateInterests { interest: " ".into() };
        }
        let retention = purposes_retention(&reg);
        assert!(!retention.passed && retention.detail.contains(&purpose));
        assert!(!purposes_legal_basis(&reg).passed);
        let warnings = registry_check(&reg);
        assert!(!warnings.passed && warnings.detail.contains("no retention rule"));
        let c = reg.collections.values_mut().next().unwrap();
        c.fields
            .insert("shoe_size".into(), c.fields.values().next().cloned().unwrap());
        let name = format!("{}.shoe_size", c.name);
        let fields = fields_covered(&reg);
        assert!(!fields.passed && fields.detail.contains(&name), "{}", fields.detail);
    }

    #[test]
    fn consents_must_name_a_shown_notice_without_repeating_what_callers_typed() {
        let mut f = good();
        let mut unknown = BTreeMap::new();
        unknown.insert(version_shown("2025-01"), 2);
        unknown.insert(version_shown("bob@example.com"), 1);
        f.consents = Ok(ConsentFacts {
            subjects: 60_000,
            read: MAX_LEDGER_SUBJECTS,
            consents: 10,
            unknown,
            published: 1,
        });
        let c = run(&f, "consent_notice_version", NOW);
        assert!(!c.passed);
        assert!(
            c.detail.contains("`2025-01` (2)") && c.detail.contains("3 of 10"),
            "{}",
            c.detail
        );
        assert!(!c.detail.contains("bob@"), "{}", c.detail);
        assert!(c.detail.contains("first 50000 of 60000"));
        assert_eq!(
            version_shown("sha256-0123456789abcdef0123456789abcdef"),
            "`sha256-0123456789abcdef0123456789abcdef`"
        );
        assert_eq!(version_shown("v2_spring"), "`v2_spring`");
        assert_eq!(version_shown("2026-01-31"), "`2026-01-31`");
        assert!(!version_shown("07700 900123").contains("0770"));
    }

    #[test]
    fn the_audit_log_must_verify_and_be_signed_within_the_hour() {
        let mut f = good();
        f.audit.verified = Err("entry 7 does not match its leaf hash".into());
        let c = run(&f, "audit_verified", NOW);
        assert!(!c.passed && c.detail.contains("entry 7"));
        // An unsigned tail of minutes is fine, of more than an hour not.
        f.audit.latest_checkpoint = Ok(Some((10, NOW - 2 * 3_600_000)));
        f.audit.newest_entry = Ok(Some((12, NOW - 3_600_000)));
        assert!(run(&f, "audit_checkpoint_recent", NOW).passed);
        f.audit.newest_entry = Ok(Some((12, NOW)));
        assert!(!run(&f, "audit_checkpoint_recent", NOW).passed);
        // A covered log passes whatever the times.
        f.audit.verified = Ok(VerifiedLog {
            entries: 12,
            checkpoints: 3,
            trusted: 0,
            unsigned_tail: 0,
            at: NOW,
        });
        assert!(run(&f, "audit_checkpoint_recent", NOW).passed);
        // Covered ten minutes ago is not covered now: a reused verification's tail is not read.
        assert!(!run(&f, "audit_checkpoint_recent", NOW + 600_000).passed);
        f.audit.latest_checkpoint = Ok(None);
        assert!(!run(&f, "audit_checkpoint_recent", NOW).passed);
        f.audit.newest_entry = Ok(None);
        assert!(run(&f, "audit_checkpoint_recent", NOW).passed);
    }

    #[test]
    fn a_log_verified_against_the_database_alone_is_a_warning_not_a_pass() {
        let mut f = good();
        let c = run(&f, "audit_verified", NOW);
        assert!(c.passed && c.severity == Severity::High && c.detail.contains("1 from outside"));
        // `serve --no-checkpoint-log` without a witness: nothing outside the database.
        f.audit.places.clear();
        let c = run(&f, "audit_verified", NOW);
        assert!(!c.passed && c.severity == Severity::Medium, "{c:?}");
        assert!(c.detail.contains("--no-checkpoint-log") && c.remediation.contains("--checkpoint-log PATH"));
        // Kept somewhere, but none found there while the database holds checkpoints.
        f.audit.places = vec!["the witness at http://w:8300".into()];
        if let Ok(v) = &mut f.audit.verified {
            v.trusted = 0;
        }
        let c = run(&f, "audit_verified", NOW);
        assert!(
            !c.passed
                && c.detail
                    .contains("no checkpoint was found in the witness at http://w:8300")
        );
        // A log that does not verify is a failure at the check's own severity.
        f.audit.verified = Err("the checkpoints kept outside the database: the checkpoint log x is missing".into());
        let c = run(&f, "audit_verified", NOW);
        assert!(!c.passed && c.severity == Severity::High && c.detail.contains("is missing"));
    }

    /// The server reuses its reading of the whole log for ten minutes; a checkpoint log gone
    /// in between must fail the check all the same (it passed on the reused reading).
    #[tokio::test]
    async fn checkpoints_outside_that_cannot_vouch_fail_even_with_a_reading_reused() {
        let (_dir, vault, admin) = crate::package::tests::vault().await;
        // Entries dated now: the checkpoint refuses a log dated in the future.
        let now = Timestamp::now();
        let subject = crate::SubjectId::parse("s1").unwrap();
        let values = [("email".to_owned(), "p1@example.com".to_owned())].into();
        let call = crate::Call::new(&admin, "order_fulfillment", now);
        vault
            .create_record(&call, &subject, "customers", &values)
            .await
            .unwrap();
        let row = vault.checkpoint(now).await.unwrap().unwrap();
        let log = "the checkpoint log /srv/custodia/audit-checkpoints.log";
        let newest = TrustedCheckpoint::from_note(log, &row.note, &vault.audit_verifier_key()).unwrap();
        let outside = |trusted: Result<Vec<TrustedCheckpoint>, String>| async move {
            let places = vec![log.to_owned()];
            (OutsideCheckpoints { places, trusted }, Vec::new())
        };
        let env = good().env;
        let checks = vault
            .assessment(&admin, now, &env, outside(Ok(vec![newest])))
            .await
            .unwrap();
        let c = by_id(&checks, "audit_verified");
        assert!(c.passed && c.detail.contains("1 from outside"), "{c:?}");
        let missing = "the checkpoint log /srv/custodia/audit-checkpoints.log is missing, but the database holds checkpoints up to size 9";
        let checks = vault
            .assessment(&admin, Timestamp(now.0 + 1000), &env, outside(Err(missing.to_owned())))
            .await
            .unwrap();
        let c = by_id(&checks, "audit_verified");
        assert!(
            !c.passed && c.severity == Severity::High && c.detail.contains(missing),
            "{c:?}"
        );
    }

    #[test]
    fn backups_must_be_recent_and_still_there() {
        let mut f = good();
        assert!(run(&f, "backups_recent", NOW).passed);
        assert!(!run(&f, "backups_recent", NOW + 7 * DAY_MS).passed);
        f.env.backup_max_age_days = 30;
        assert!(run(&f, "backups_recent", NOW + 7 * DAY_MS).passed);
        f.backups = Ok(BackupFacts::Log {
            entries: vec![BackupEntry {
                at: NOW,
                path: "/backups/gone.db".into(),
                bytes: 1,
                found: None,
            }],
            bad_lines: vec![3],
        });
        let c = run(&f, "backups_recent", NOW);
        assert!(!c.passed && c.detail.contains("lines that are not entries: 3"));
        f.backups = Ok(BackupFacts::Log {
            entries: vec![],
            bad_lines: vec![],
        });
        assert!(
            run(&f, "backups_recent", NOW)
                .detail
                .contains("no backup was ever made")
        );
        // one dated in the future passes nothing (it passed as "-1136613 days ago"; review)
        f.backups = Ok(BackupFacts::Log {
            entries: vec![BackupEntry {
                at: NOW + 365 * DAY_MS,
                path: "/backups/later.db".into(),
                bytes: 1,
                found: Some(1),
            }],
            bad_lines: vec![],
        });
        let c = run(&f, "backups_recent", NOW);
        assert!(
            !c.passed && c.detail.contains("1 backups are dated in the future"),
            "{c:?}"
        );
        f.backups = Ok(BackupFacts::Postgres);
        let pg = run(&f, "backups_recent", NOW);
        assert!(pg.passed && pg.severity == Severity::Info);
    }

    #[test]
    fn secrets_are_found_by_content_whatever_the_file_is_called() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!secret_file_in(dir.path(), &holds_root_key));
        assert!(!secret_file_in(dir.path(), &holds_api_key));
        std::fs::create_dir(dir.path().join("old")).unwrap();
        std::fs::write(dir.path().join("old/.root.key.bak"), b"custodia-root-key-v1\n1 AAAA\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"token: cst_0123456789abcdef_s3cr3t\n").unwrap();
        assert!(secret_file_in(dir.path(), &holds_root_key));
        assert!(secret_file_in(dir.path(), &holds_api_key));
        // The database files are not read (they hold no key in clear, and may be large).
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("custodia.db-wal"), b"cst_0123456789abcdef_x").unwrap();
        assert!(!secret_file_in(other.path(), &holds_api_key));
        assert!(!holds_api_key(b"cst_0123456789abcdeg_x"));
    }

    /// The root key written into a file in the forms people paste it (review: each passed):
    /// UTF-16, a hex dump with separators, base64 wrapped over lines, a Kubernetes Secret's
    /// base64 of `1:KEY`; a random string is none of them.
    #[test]
    fn the_root_key_is_read_in_the_forms_it_is_pasted() {
        use base64::Engine as _;
        let raw: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let ring =
            custodia_crypto::Keyring::from_keys(vec![(1, custodia_crypto::SecretKey::from_slice(&raw).unwrap())])
                .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let found = |bytes: &[u8]| readings(bytes).iter().any(|r| ring.written_in(r));
        let utf16: Vec<u8> = format!("CUSTODIA_ROOT_KEY=1:{b64}")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let colons = raw.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let c_array = raw.iter().map(|b| format!("0x{b:02x}")).collect::<Vec<_>>().join(", ");
        let wrapped = format!("{}\n{}\n", &b64[..20], &b64[20..]);
        let secret = format!(
            "data:\n  CUSTODIA_ROOT_KEY: {}\n",
            base64::engine::general_purpose::STANDARD.encode(format!("1:{b64}"))
        );
        for (form, bytes) in [
            ("utf-16", utf16),
            ("hex with colons", colons.into_bytes()),
            ("a C array", c_array.into_bytes()),
            ("wrapped base64", wrapped.into_bytes()),
            ("a Kubernetes Secret", secret.into_bytes()),
        ] {
            assert!(found(&bytes), "{form}");
        }
        let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(!found(format!("key: {other}").as_bytes()));
    }

    #[test]
    fn backup_log_lines_are_read_and_bad_ones_counted() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.db");
        std::fs::write(&kept, b"SQLite format 3\0 and pages").unwrap();
        // Not a database, and a database whose size changed: neither proves a backup.
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, b"root:x:0:0:root:/root:/bin/bash").unwrap();
        let log = dir.path().join(BACKUP_LOG_FILE);
        std::fs::write(
            &log,
            format!(
                "{{\"at\": 5, \"path\": {:?}, \"bytes\": 26}}\nnot json\n{{\"at\": 6, \"path\": \"/nowhere/x.db\", \"bytes\": 1}}\n\
                 {{\"at\": 7, \"path\": {:?}, \"bytes\": 31}}\n{{\"at\": 8, \"path\": {:?}, \"bytes\": 99}}\n",
                kept.display().to_string(),
                passwd.display().to_string(),
                kept.display().to_string()
            ),
        )
        .unwrap();
        let Ok(BackupFacts::Log { entries, bad_lines }) = read_backup_log(&log) else {
            panic!("the log reads");
        };
        assert_eq!(bad_lines, [2]);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].found, Some(26));
        assert_eq!(entries[1].found, None, "gone");
        assert_eq!(entries[2].found, None, "not a database");
        assert_eq!(entries[3].found, None, "not the size written");
        assert!(matches!(
            read_backup_log(&dir.path().join("none.log")),
            Ok(BackupFacts::Log { entries, .. }) if entries.is_empty()
        ));
    }

    #[test]
    fn requests_past_their_deadline_fail_high_and_near_it_medium() {
        let mut f = good();
        f.requests = Ok(vec![RequestFacts {
            id: "req_1".into(),
            kind: "access".into(),
            due_at: NOW + 3 * DAY_MS,
        }]);
        let soon = run(&f, "requests_deadlines", NOW);
        assert!(!soon.passed && soon.severity == Severity::Medium && soon.detail.contains("req_1 (access"));
        let late = run(&f, "requests_deadlines", NOW + 4 * DAY_MS);
        assert!(!late.passed && late.severity == Severity::High);
        f.requests = Ok(vec![]);
        let none = run(&f, "requests_deadlines", NOW);
        assert!(none.passed && none.severity == Severity::High);
    }
}
