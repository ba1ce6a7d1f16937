//! `custodia audit verify|export`, `custodia witness`, and the checkpoint publishing options
//! of `serve`.
//!
//! Verification opens the database read-only and needs no root key: the trust comes from the
//! checkpoint key the operator pinned at `init` and from checkpoints kept outside the
//! database, never from the database alone.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use custodia_audit::note::{COSIGNATURE_TYPE, NoteSigner};
use custodia_core::{AuditTrust, DataDir, Timestamp, TrustedCheckpoint, VerifierKey};
use custodia_server::Publisher;
use custodia_server::witness::{WitnessClient, WitnessService};

/// The default checkpoint log, in the data directory (point it at other storage).
pub const CHECKPOINT_LOG_FILE: &str = "audit-checkpoints.log";
/// The witness's signing key, in its state directory.
const WITNESS_KEY_FILE: &str = "witness.key";

/// A verifier key given on the command line, or the path of a file holding one.
pub(crate) fn key_arg(value: &str, what: &str) -> anyhow::Result<VerifierKey> {
    if let Ok(key) = VerifierKey::parse(value) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(value)
        .with_context(|| format!("{what}: `{value}` is neither a key (name+id+key) nor a readable file"))?;
    VerifierKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("{what} in {value}: {e}"))
}

/// A duration such as `90s`, `10m`, `2h` or `1d`, in milliseconds.
fn duration_ms(text: &str) -> Result<i64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90s, 10m, 2h or 1d"))?;
    let unit_ms = match unit {
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` is not a duration such as 90s, 10m, 2h or 1d")),
    };
    n.checked_mul(unit_ms).ok_or_else(|| format!("`{text}` is too long"))
}

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
    data_dir: PathBuf,
    #[arg(long, env = "CUSTODIA_DATABASE_URL")]
    database_url: Option<String>,
    /// The checkpoint key `init` printed (`custodia-audit+<id>+<key>`), or a file holding it.
    #[arg(long, env = "CUSTODIA_AUDIT_PUBLIC_KEY")]
    public_key: Option<String>,
    /// Use the database's own copy of the key instead (anyone who can write the database can
    /// replace it, and re-sign a rewritten log with their own key).
    #[arg(long, conflicts_with = "public_key")]
    trust_database_key: bool,
    /// A checkpoint obtained earlier (a signed note, or a checkpoint log whose newest line is
    /// taken): the log must extend it. Repeat for several.
    #[arg(long = "trusted-checkpoint")]
    trusted_checkpoints: Vec<PathBuf>,
    /// The server keeps no checkpoint log in the data directory (`serve --no-checkpoint-log`,
    /// a witness keeps its checkpoints): its absence is then no finding.
    #[arg(long)]
    no_checkpoint_log: bool,
    /// Entries older than this must be covered by a checkpoint (the server signs one every
    /// second while the log grows, and one when it stops).
    #[arg(long, default_value = "60s", value_parser = duration_ms)]
    max_unsigned_age: i64,
    /// With JSON: `{"intact": true, "entries", "signed_checkpoints", "trusted_checkpoints",
    /// "unsigned_tail"}`, `{"intact": false, "problem"}`, or `{"intact": null, "error"}` when
    /// it cannot run.
    #[command(flatten)]
    output: crate::requests_cmd::OutputArgs,
}

/// `custodia audit verify`: exit 0 when intact, 1 when not (naming the first problem), 2 when
/// it cannot run (with JSON, `{"intact": null, "error"}` on standard output too, so that a
/// script reading it always gets an object).
pub async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let json = args.output.json();
    let verified = verify_log(args).await;
    if json && let Err(e) = &verified {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::json!({"intact": null, "error": format!("{e:#}")})
        )?;
    }
    verified
}

/// The database's copy of the checkpoint key (its `audit_public_key` row), if it has one.
pub(crate) async fn database_copy(store: &custodia_store::Store) -> Result<Option<Vec<u8>>, String> {
    async {
        store
            .reader()
            .await?
            .meta()
            .get(custodia_core::AUDIT_PUBLIC_KEY_META)
            .await
    }
    .await
    .map_err(|e| format!("the database's copy could not be read: {e}"))
}

/// The database's copy of the checkpoint key (its `audit_public_key` row) against the key
/// pinned. The server refuses to start when the row is not its key, so a row that differs was
/// replaced (or the key given is another vault's); the vault writes it when it makes its keys,
/// so a row that is not there was deleted.
pub(crate) async fn database_copy_is(store: &custodia_store::Store, pinned: &VerifierKey) -> Result<(), String> {
    match database_copy(store).await? {
        Some(row) if row != pinned.to_string().into_bytes() => Err(
            "the database's copy of the checkpoint key (its audit_public_key row) is not the key given with --public-key: the row was replaced (the server refuses to start on it), or the key given is another vault's"
                .to_owned(),
        ),
        Some(_) => Ok(()),
        None => Err(
            "the database's copy of the checkpoint key (its audit_public_key row) is missing: deleted by hand (the vault writes it with its keys; the server writes it again from its signing key at its next start)"
                .to_owned(),
        ),
    }
}

async fn verify_log(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let url = DataDir::new(&args.data_dir).store_url(args.database_url.as_deref());
    let store = custodia_store::Store::open_read_only(&url)
        .await
        .with_context(|| format!("opening {} read-only", args.data_dir.display()))?;
    // A finding before the log is read: exit 1, not "cannot run"
    let mut problem = None;
    let key = match (&args.public_key, args.trust_database_key) {
        (Some(value), _) => {
            let key = key_arg(value, "--public-key")?;
            problem = database_copy_is(&store, &key).await.err();
            key
        }
        (None, true) => {
            eprintln!(
                "warning: trusting the database's own copy of the checkpoint key: whoever can write the database can replace it; pin the key init printed with --public-key"
            );
            let stored = database_copy(&store)
                .await
                .map_err(anyhow::Error::msg)?
                .context("the database holds no audit public key")?;
            VerifierKey::parse(&String::from_utf8_lossy(&stored))
                .map_err(|e| anyhow::anyhow!("the database's audit public key: {e}"))?
        }
        (None, false) => anyhow::bail!(
            "name the checkpoint key you pinned at init: --public-key KEY|FILE (or --trust-database-key to use the database's own copy, which anyone who can write the database can replace)"
        ),
    };
    let mut trusted = Vec::new();
    let mut sources = args.trusted_checkpoints.clone();
    // The server's default checkpoint log is checked too when it is there.
    let default_log = args.data_dir.join(CHECKPOINT_LOG_FILE);
    if sources.is_empty() && default_log.is_file() {
        eprintln!("checking against the checkpoint log {}", default_log.display());
        sources.push(default_log.clone());
    }
    // something else in its place (a directory) is no log: the server refuses to start on it
    if sources.is_empty() && !args.no_checkpoint_log && default_log.exists() && !default_log.is_file() {
        problem = problem.or(Some(format!(
            "the checkpoint log {} is not a file: the server does not start on it",
            default_log.display()
        )));
    }
    if sources.is_empty() && !args.no_checkpoint_log {
        // The server's default checkpoint log gone while the database holds checkpoints: what
        // a server refuses to start on is no intact log (a log cut back passed with the
        // checkpoint log deleted beside it; review).
        let publisher = Publisher::new(Some(default_log.clone()), None);
        if let Some(missing) = publisher.missing_log(&store).await.map_err(anyhow::Error::msg)? {
            problem = problem.or(Some(format!(
                "the checkpoint log {} is {}, but the database holds checkpoints up to size {}: it was deleted or emptied with them, or the log cut back; give it, a saved checkpoint or the witness's with --trusted-checkpoint FILE (or --no-checkpoint-log if the server keeps none)",
                missing.path().display(),
                if missing.emptied() { "empty" } else { "missing" },
                missing.tree_size()
            )));
        }
    }
    if sources.is_empty() {
        eprintln!(
            "warning: no checkpoint from outside the database: a log cut back to one of its own checkpoints cannot be told from a whole one (give --trusted-checkpoint FILE: a checkpoint log or a saved checkpoint)"
        );
    }
    // A checkpoint kept outside that the pinned key did not sign is a finding, not a reason
    // the check cannot run: the wrong key, or a log signed anew by another (exit 1)
    for path in &sources {
        if problem.is_some() {
            break;
        }
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        match TrustedCheckpoint::from_file(path, &key) {
            Ok(Some(t)) => trusted.push(t),
            // the server's own log emptied is a finding (exit 1), as a missing one is
            Ok(None) if *path == default_log => {
                problem = Some(format!(
                    "the checkpoint log {} holds no checkpoint: it was emptied (the server writes one with each checkpoint it signs)",
                    path.display()
                ));
                break;
            }
            Ok(None) => anyhow::bail!("{} holds no checkpoint", path.display()),
            Err(e) => {
                problem = Some(format!(
                    "{e}: no checkpoint there that the pinned key {} signed (the wrong key, or checkpoints changed or signed anew by another)",
                    key.name()
                ));
                break;
            }
        }
    }
    let trust = AuditTrust {
        tag_key: None,
        link_key: None,
        key,
        trusted,
        now: Timestamp::now(),
        max_unsigned_age: Some(args.max_unsigned_age),
        contiguous: !store.shared(),
    };
    let verified = match problem {
        Some(problem) => Err(problem),
        None => {
            let bar = crate::progress::Bar::new("verifying the audit log", "entries");
            let verified = custodia_core::verify_audit_log(&store, &trust, &bar).await;
            bar.finish();
            verified
        }
    };
    let mut out = std::io::stdout().lock();
    match verified {
        Ok(report) if args.output.json() => {
            let json = serde_json::json!({
                "intact": true,
                "entries": report.entries,
                "signed_checkpoints": report.checkpoints,
                "trusted_checkpoints": report.trusted,
                "unsigned_tail": report.unsigned_tail,
            });
            writeln!(out, "{json}")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(report) => {
            writeln!(
                out,
                "audit log intact: {} entries, {} signed checkpoints, {} trusted checkpoints extended, {} entries after the last checkpoint",
                report.entries, report.checkpoints, report.trusted, report.unsigned_tail
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            if args.output.json() {
                writeln!(out, "{}", serde_json::json!({"intact": false, "problem": problem}))?;
            }
            eprintln!("audit log NOT intact: {problem}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Checks the log against its checkpoints as a server's start does, the data directory's
/// default checkpoint log too if the server keeps one there (a server publishing elsewhere
/// finds the checkpoint in the database); the publisher of that log.
pub async fn checked(vault: &custodia_core::Vault, data_dir: &Path) -> Result<Publisher, custodia_server::Resumed> {
    let log = data_dir.join(CHECKPOINT_LOG_FILE);
    // A log no server has signed yet (a vault never served) begins the default checkpoint
    // log, where a server started with the defaults looks: signed into the database alone,
    // its checkpoints made that server refuse to start ("the checkpoint log is missing").
    let fresh = async { vault.store().reader().await?.audit().latest_checkpoint().await }
        .await
        .map_err(|e| custodia_server::Resumed::Diverged(e.to_string()))?
        .is_none();
    let publisher = Publisher::new((log.is_file() || fresh).then_some(log), None);
    custodia_server::resume(vault, &publisher, false, false).await?;
    Ok(publisher)
}

/// The audit log as a command that writes with the server stopped (a sweep, a key
/// rotation, erasing again) continues it: checked against its checkpoints first, as a
/// server does before it writes, and signed after, so that `audit verify` finds the new
/// entries covered however long the server stays stopped.
pub struct OfflineLog {
    publisher: Publisher,
}

impl OfflineLog {
    /// Checks the log before `what` writes to it.
    pub async fn resume(vault: &custodia_core::Vault, data_dir: &Path, what: &str) -> anyhow::Result<Self> {
        let publisher = checked(vault, data_dir)
            .await
            .map_err(|why| anyhow::anyhow!("{}", why.refusal(what)))?;
        Ok(Self { publisher })
    }

    /// Signs (and publishes) a checkpoint of what was written.
    pub async fn sign(&self, vault: &custodia_core::Vault) -> anyhow::Result<()> {
        match vault.checkpoint(Timestamp::now()).await {
            Ok(Some(row)) => {
                self.publisher.publish(vault, &row).await;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => anyhow::bail!("signing a checkpoint of the audit log: {e}"),
        }
    }
}

/// Where `serve` keeps its checkpoints outside the database; `assess` takes the same options
/// to look where the server does.
#[derive(Args)]
pub struct CheckpointArgs {
    /// The checkpoint log: every signed checkpoint is appended to it (default:
    /// audit-checkpoints.log in the data directory; place it on other storage). At start the
    /// log must extend its newest.
    #[arg(long, env = "CUSTODIA_CHECKPOINT_LOG")]
    checkpoint_log: Option<PathBuf>,
    /// Keep no checkpoint log.
    #[arg(long, conflicts_with = "checkpoint_log")]
    no_checkpoint_log: bool,
    /// A witness (`custodia witness`) to cosign every checkpoint: http://host:port.
    #[arg(long, env = "CUSTODIA_WITNESS_URL", requires = "witness_key")]
    witness: Option<String>,
    /// The witness's key, as `custodia witness` prints it (or a file holding it).
    #[arg(long, env = "CUSTODIA_WITNESS_KEY", requires = "witness")]
    witness_key: Option<String>,
}

impl CheckpointArgs {
    pub fn publisher(&self, data_dir: &Path) -> anyhow::Result<Publisher> {
        let log = if self.no_checkpoint_log {
            None
        } else {
            Some(
                self.checkpoint_log
                    .clone()
                    .unwrap_or_else(|| data_dir.join(CHECKPOINT_LOG_FILE)),
            )
        };
        let witness = match (&self.witness, &self.witness_key) {
            (Some(url), Some(key)) => Some(
                WitnessClient::new(url, key_arg(key, "--witness-key")?)
                    .map_err(|e| anyhow::anyhow!("--witness: {e}"))?,
            ),
            _ => None,
        };
        Ok(Publisher::new(log, witness))
    }
}

/// The checkpoint publishing options of `serve`.
#[derive(Args)]
pub struct PublishArgs {
    #[command(flatten)]
    checkpoints: CheckpointArgs,
    /// Begin the checkpoint log afresh although the database holds checkpoints: after moving
    /// the old one aside on purpose (accepting what it no longer proves), or on its first use
    /// at a new place. Without it, SQLite's server refuses to start on a missing (or empty) log.
    #[arg(long, conflicts_with = "no_checkpoint_log")]
    new_checkpoint_log: bool,
}

impl PublishArgs {
    pub fn publisher(&self, data_dir: &Path) -> anyhow::Result<Publisher> {
        Ok(self
            .checkpoints
            .publisher(data_dir)?
            .begin_log_afresh(self.new_checkpoint_log))
    }
}

#[derive(Args)]
pub struct WitnessArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8300")]
    listen: SocketAddr,
    /// Where the witness keeps its key and the newest checkpoint of each log (created 0700).
    #[arg(long, default_value = "custodia-witness")]
    state_dir: PathBuf,
    /// The checkpoint key of a vault to witness (as its init printed it, or a file); repeat
    /// for several vaults.
    #[arg(long = "log-key", required = true)]
    log_keys: Vec<String>,
    /// The witness's name in its cosignatures.
    #[arg(long, default_value = "custodia-witness")]
    name: String,
}

/// Loads the witness's seed from its state directory, creating it (0600) the first time.
fn witness_seed(dir: &Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    let path = dir.join(WITNESS_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => Ok(zeroize::Zeroizing::new(bytes)),
        Ok(_) => anyhow::bail!("{} is not a 32-byte key", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = zeroize::Zeroizing::new(vec![0u8; 32]);
            aws_lc_rs::rand::fill(&mut seed).map_err(|_| anyhow::anyhow!("no randomness for the witness key"))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&seed)?;
            file.sync_all()?;
            Ok(seed)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `custodia witness`: serves until interrupted.
pub async fn witness(
    args: WitnessArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir).with_context(|| format!("creating {}", args.state_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.state_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let seed = witness_seed(&args.state_dir)?;
    let signer =
        NoteSigner::from_seed(&args.name, COSIGNATURE_TYPE, &seed).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let logs = args
        .log_keys
        .iter()
        .map(|k| key_arg(k, "--log-key"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(bad) = logs.iter().find(|k| k.is_cosigner()) {
        anyhow::bail!("--log-key {} is a witness key, not a log's checkpoint key", bad.name());
    }
    let service = Arc::new(WitnessService::open(signer, logs, &args.state_dir).map_err(|e| anyhow::anyhow!(e))?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        // Tests and scripts read these lines.
        let _ = writeln!(out, "witness key: {}", service.verifier_key());
        let _ = writeln!(out, "custodia witness listening on http://{addr}");
    }
    axum::serve(listener, custodia_server::witness::router(service))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
