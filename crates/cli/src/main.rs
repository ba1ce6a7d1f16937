//! `custodia`: the vault server and its operator commands. A thin layer over the library
//! crates; `anyhow` lives only here, at the binary's edge.

/// mimalloc instead of glibc's allocator: a profile of audited reads under load spent about a
/// tenth of the server's CPU in glibc's malloc and free (per-request buffers, rows, JSON).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A line on standard output. A closed pipe (`custodia policies | head`) is not an error
/// worth a panic (`println!` would panic): the reader has what it wanted, so the rest is
/// dropped quietly. Defined before the modules so that every command uses it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            crate::stdout_failed(&e);
        }
    }};
}

/// A write to standard output failed: a reader that went away is no error (the rest is
/// dropped); anything else (a full disk behind `> file`) ends the command with exit 2, so
/// that a secret printed to a file is never lost silently.
fn stdout_failed(e: &std::io::Error) {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(2);
    }
}

mod assess_cmd;
mod audit_bench;
mod audit_cmd;
mod bench;
mod discover_db;
mod erasure_bench;
mod fides_cmd;
mod http_client;
mod incident_cmd;
mod keys_cmd;
mod measure;
mod operator_cmd;
mod progress;
mod requests_cmd;
mod retention_bench;
mod retention_cmd;
mod rotation_bench;
mod scale_bench;
mod scan_bench;
mod scan_cmd;
mod tls_cmd;
mod transparency_cmd;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use custodia_core::{DataDir, Timestamp};
use custodia_registry::Registry;

#[derive(Parser)]
#[command(
    name = "custodia",
    version,
    about = "Customer-data privacy vault: purpose-bound, encrypted personal data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The log's format on standard error, for commands that log (serve, witness): `text`
    /// for people, `json` (one object per line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CUSTODIA_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Fides interop: the registry as fideslang manifests, and manifests as a registry.
    Fides {
        #[command(subcommand)]
        action: fides_cmd::FidesCommand,
    },
    /// Print a completion script for a shell: `custodia completions bash > /etc/bash_completion.d/custodia`,
    /// `custodia completions zsh > "${fpath[1]}/_custodia"`, `custodia completions fish > ~/.config/fish/completions/custodia.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Create a data directory: example registry, root key, database and bootstrap admin key.
    #[command(
        after_help = "Examples:\n  custodia init --data-dir custodia-data\n  custodia init --data-dir custodia-data --json | jq -r .admin_token"
    )]
    Init {
        /// The data directory to create.
        #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: Option<String>,
        /// PostgreSQL: also create this service role (LOGIN, a random password) or update its
        /// grants, for servers to log in as; `--database-url` is then the owner role's, which
        /// migrates the schema and owns the tables. Prints the service role's URL.
        #[arg(long, requires = "database_url")]
        service_role: Option<String>,
        /// Print `{"admin_token", "audit_public_key", "service_database_url"?}` as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also make a self-signed certificate for localhost in the data directory
        /// (`tls/cert.pem`, `tls/key.pem`): `serve` then speaks HTTPS only. For development.
        #[arg(long)]
        dev_tls: bool,
    },
    /// Migrate a database's schema to this version of custodia, as the role that owns it; with
    /// `--service-role`, set that role's privileges again (an upgrade may add tables).
    Migrate {
        /// The database, logged in as the owner role.
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: String,
        /// The service role whose privileges to set (created with a random password if new).
        #[arg(long)]
        service_role: Option<String>,
        /// Also give the service role a new random password (prints its URL).
        #[arg(long, requires = "service_role")]
        new_password: bool,
    },
    /// Serve the HTTP API (initialising the data directory first if it is new).
    #[command(
        after_help = "Examples:\n  custodia serve\n  custodia serve --data-dir /var/lib/custodia --listen 0.0.0.0:8200 --metrics-listen 127.0.0.1:9200\n  CUSTODIA_LOG_FORMAT=json custodia serve"
    )]
    Serve {
        #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
        data_dir: PathBuf,
        /// Address to listen on; port 0 picks a free port (the address is printed).
        #[arg(long, default_value = "127.0.0.1:8200", env = "CUSTODIA_LISTEN")]
        listen: SocketAddr,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: Option<String>,
        #[command(flatten)]
        publish: audit_cmd::PublishArgs,
        /// Serve HTTPS only, with this PEM certificate chain (with --tls-key); the files are
        /// watched and a renewed pair is served without a restart. Default: the data
        /// directory's `tls/cert.pem` and `tls/key.pem` when `init --dev-tls` made them.
        #[arg(long, env = "CUSTODIA_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "CUSTODIA_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Ask clients for a certificate issued by a CA in this PEM file (mTLS): API keys bound
        /// to a certificate (`custodia principal bind-cert`) then work only with theirs.
        #[arg(long, env = "CUSTODIA_TLS_CLIENT_CA")]
        tls_client_ca: Option<PathBuf>,
        /// The address customers reach this server at (e.g. https://privacy.example.com):
        /// preference center links are made with it. Default: the address the caller used.
        #[arg(long, env = "CUSTODIA_PUBLIC_URL")]
        public_url: Option<String>,
        /// Seal the subject ledger's entries found without seals: once, at the first start
        /// after upgrading from a version before ledger seals (the start without it says so).
        /// Never otherwise: entries without seals in a sealed ledger were written by hand.
        #[arg(long)]
        seal_ledger: bool,
        /// Tally the rows that grant access and seal the training completions and purpose
        /// bindings found there: once, at the first start after upgrading to schema version 23
        /// or 24 (the start without it says so). Never otherwise: nothing in the database
        /// tells an upgrade from a tally deleted by hand (to have a key put back taken as the
        /// vault's) or from bindings inserted by hand.
        #[arg(long)]
        seal_access: bool,
        /// Also serve `GET /metrics` (Prometheus) without authentication on this address, for
        /// the monitoring network only. Without it, `/metrics` is on the API address for a key
        /// whose role has `read_metrics`.
        #[arg(long, env = "CUSTODIA_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// The privacy notice generated from a registry (GDPR Art. 13/14, CCPA §1798.100):
    /// Markdown for your website, HTML (as `/privacy-notice` serves it) or JSON.
    Notice(transparency_cmd::NoticeArgs),
    /// The record of processing activities (GDPR Art. 30(1)) generated from a registry, as
    /// CSV or JSON.
    Ropa(transparency_cmd::RopaArgs),
    /// An independent witness of vaults' audit logs: cosigns each checkpoint only if it
    /// extends the last one it saw (C2SP tlog-witness). Run it on other hardware.
    Witness(audit_cmd::WitnessArgs),
    /// Validate a registry file; prints every problem as file:line:column.
    #[command(after_help = "Examples:\n  custodia check\n  custodia check my-registry.toml")]
    Check {
        /// The registry file (default: custodia-data/registry.toml).
        file: Option<PathBuf>,
    },
    /// The tamper-evident audit log.
    #[command(
        after_help = "Examples:\n  custodia audit verify --public-key \"$(cat audit-public-key.txt)\"\n  custodia audit export --help"
    )]
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Manage principals (API keys) through a running server's API.
    #[command(
        after_help = "Examples:\n  custodia principal create --name checkout --role payment_service --expires-in 90d\n  custodia principal list\n  custodia principal list --output json | jq -r '.principals[].name'\n  custodia principal rotate prn_0123456789abcdef01234567"
    )]
    Principal {
        #[command(subcommand)]
        action: PrincipalCommand,
        /// The server's base URL.
        #[arg(long, global = true, default_value = crate::requests_cmd::DEFAULT_ADDR, env = crate::requests_cmd::ADDR_ENV)]
        url: String,
        /// An API key of a role with manage_principals (default: custodia-data/admin-token).
        #[arg(long, global = true, env = "CUSTODIA_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// `list` prints a table unless JSON is asked for; create and rotate print the new
        /// key's JSON either way.
        #[command(flatten)]
        output: requests_cmd::OutputArgs,
    },
    /// Operators (people): create, enrol with password + TOTP, list, attest training, disable.
    Operator {
        #[command(subcommand)]
        action: operator_cmd::OperatorCommand,
    },
    /// Log in as an operator (password + TOTP code); prints a session token for
    /// `CUSTODIA_TOKEN` / `--token`.
    Login(operator_cmd::LoginArgs),
    /// Break-glass: take an emergency role for minutes by stating a reason (an operator's
    /// session; loud: flagged in the audit log and listed in access reviews).
    BreakGlass(operator_cmd::BreakGlassArgs),
    /// Access review: per principal, what it touched in a period, its denials and break-glass
    /// uses, permissions it never used, keys unused for 90 days.
    AccessReview(operator_cmd::ReviewArgs),
    /// The root key: status, rotation, retirement of unused versions.
    #[command(after_help = "Examples:\n  custodia keys status\n  custodia keys status --output json")]
    Keys {
        #[command(subcommand)]
        action: keys_cmd::KeysCommand,
    },
    /// Data subject requests (access, erasure, ...) through a running server's API: the work
    /// queue and its steps.
    #[command(
        after_help = "Examples:\n  custodia requests create --subject cust_42 --type erasure --jurisdiction gdpr --received-via email\n  custodia requests list\n  custodia requests list --output json | jq '.requests[] | select(.overdue)'"
    )]
    Requests {
        #[command(subcommand)]
        action: requests_cmd::RequestsCommand,
        #[command(flatten)]
        api: requests_cmd::ApiArgs,
    },
    /// Incident response through a running server's API: the breach register, the blast
    /// radius from the audit log, notification duties with their countdowns and drafts,
    /// containment.
    #[command(
        after_help = "Examples:\n  custodia incident open --title \"Leaked support key\" --description \"Found in a public repository\" --aware-at 2026-12-01T09:00:00Z\n  custodia incident list\n  custodia incident show inc_0123456789abcdef0123456789abcdef --output json"
    )]
    Incident {
        #[command(subcommand)]
        action: incident_cmd::IncidentCommand,
        #[command(flatten)]
        api: requests_cmd::ApiArgs,
    },
    /// Retention: the sweeper (`run`), the review report, legal holds, subject activity.
    #[command(
        after_help = "Examples:\n  custodia retention run --dry-run\n  custodia retention run --as-of 2031-01-31T00:00:00Z --dry-run --json\n  custodia retention report"
    )]
    Retention {
        #[command(subcommand)]
        action: retention_cmd::RetentionCommand,
    },
    /// Record that a subject was active (logged in, ordered) under a purpose, through a
    /// running server's API: what its purposes keep from its last activity is kept from now.
    Activity(retention_cmd::ActivityArgs),
    /// Write a consistent copy of the SQLite database (beside a running server). The root key
    /// is not in it: back that up apart. The tombstone log stays outside it. Each backup is
    /// recorded in the data directory's backups.log (`custodia assess` looks for a recent one).
    Backup {
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// The backup file to create (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the data directory's SQLite database with a backup (stop the server first),
    /// then erase again every subject erased since (from the tombstone log).
    Restore {
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// The backup file (`custodia backup`).
        #[arg(long)]
        from: PathBuf,
        /// A copy of the tombstone log kept elsewhere, erased by as well (repeatable): needed
        /// when the data directory has neither a database nor its own log (a new machine).
        #[arg(long = "tombstones", value_name = "FILE")]
        tombstones: Vec<PathBuf>,
        /// Restore into a directory without a database or a tombstone log although no copy of
        /// the log was kept: whoever was erased since the backup comes back.
        #[arg(long, conflicts_with = "tombstones")]
        no_tombstones: bool,
    },
    /// Erasures: re-apply the tombstone log to a database (after restoring PostgreSQL with
    /// its own tools, or any time: erased subjects have nothing left to erase).
    Erasures {
        #[command(subcommand)]
        action: ErasuresCommand,
    },
    /// Erasure receipts: print the key that signs them, or check one.
    Receipt {
        #[command(subcommand)]
        action: ReceiptCommand,
    },
    /// Print the key a system of the registry's [context_signers] signs `Custodia-Context`
    /// with (64 hex digits): give it to that system alone.
    ContextKey {
        /// The signer's name in the registry.
        signer: String,
        #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Print the secret (64 hex digits) Art. 19 notifications to a registry recipient are
    /// signed with: give it to that recipient alone, to verify `Custodia-Signature`.
    WebhookSecret {
        /// The recipient's name in the registry's [recipients].
        #[arg(required_unless_present = "alerts")]
        recipient: Option<String>,
        /// The secret of alerts to `[operators] alert_webhook` instead.
        #[arg(long, conflicts_with = "recipient")]
        alerts: bool,
        #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Print the Cedar schema and the policies the registry's roles compile to.
    Policies {
        /// The registry file (default: custodia-data/registry.toml).
        file: Option<PathBuf>,
    },
    /// Measure field encryption against raw AES-GCM and HTTP throughput on SQLite.
    Bench {
        /// Seconds per HTTP phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Only the in-process crypto benchmark.
        #[arg(long)]
        crypto_only: bool,
        /// Instead of the phases: this many minutes of mixed create/read load, printing each
        /// minute's throughput, p50/p99, the SQLite write-ahead log's size and the resident
        /// memory (they must stay flat).
        #[arg(long)]
        soak_minutes: Option<u64>,
    },
    /// Time the audit log's indexed queries (one subject's entries, one principal's reads in
    /// an hour) on a log of N synthetic entries in a fresh store.
    BenchAuditQuery {
        /// Entries in the log.
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// A PostgreSQL database to fill instead of a temporary SQLite file (it must be empty).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Populate a fresh vault with N subjects of K records each through the create path, then
    /// print the records/s, the database's size, resident memory (VmRSS, VmHWM) and the
    /// latency of audited reads of random subjects, one at a time and 16 at once.
    BenchScale {
        /// Subjects (each with its own data key).
        #[arg(long, default_value_t = 1_000_000)]
        subjects: usize,
        /// Records per subject (orders under order_fulfillment and payments, alternately).
        #[arg(long, default_value_t = 5)]
        records_per_subject: usize,
        /// Build the data here (new or empty) instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Leave the data directory in place at the end (it is removed otherwise).
        #[arg(long)]
        keep: bool,
        /// A PostgreSQL database to fill instead of the data directory's SQLite file (it must
        /// be empty; it is never emptied afterwards).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Time the server's start, `audit verify` and audit proofs on a vault whose log holds N
    /// synthetic entries (a temporary SQLite data directory).
    BenchAuditLog {
        /// Entries in the log (at least 2: a consistency proof spans two sizes).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(2..))]
        entries: u64,
    },
    /// Time the erasure of a subject with N records while another subject is read (a
    /// temporary SQLite data directory): the erasure's time and the reads' latencies.
    BenchErasure {
        /// Records of the erased subject.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
    /// Time a root key rotation over N subjects while their records are read (a fresh
    /// SQLite data directory): the rotation's rate, the reads' latencies before and during.
    BenchRotation {
        /// Subjects (one record and one data key each).
        #[arg(long, default_value_t = 100_000)]
        subjects: usize,
    },
    /// Time the retention sweeper on a store of N values of which M are due, while records
    /// are read (a fresh SQLite data directory): the sweep's time and rate, the reads'
    /// latencies before and during it, memory; checks exactly the M values are destroyed.
    BenchRetention {
        /// Values stored.
        #[arg(long, default_value_t = 1_000_000)]
        values: usize,
        /// Of those, values due at the sweep.
        #[arg(long, default_value_t = 100_000)]
        expiring: usize,
        /// Concurrent readers during the sweep.
        #[arg(long, default_value_t = 8)]
        readers: usize,
        /// Build the data here (new or empty; kept afterwards) instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Posture self-assessment of a data directory (read-only, beside a running server):
    /// scored checks with remediations; exit 1 when a failed check is at least --fail-on.
    Assess(assess_cmd::AssessArgs),
    /// Find personal data in files, directories, standard input or a database (--db).
    Scan(scan_cmd::ScanArgs),
    /// Redact personal data from a file or standard input (to standard output).
    Redact(scan_cmd::RedactArgs),
    /// Time the PII scanner on a corpus from shared/bench/pii/gen_corpus.py and score its
    /// precision and recall per entity, by the rules of Presidio's timing script.
    BenchScan {
        /// corpus.jsonl (one {"text", "spans"} a line).
        corpus: PathBuf,
        /// Least seconds per throughput figure.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Threads for the all-cores figure (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Also time each entity type alone.
        #[arg(long)]
        per_entity: bool,
        /// Time only these entity types (comma-separated) and stop: no accuracy figures.
        #[arg(long, value_delimiter = ',')]
        entities: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write the log up to its newest checkpoint as JSON lines, each entry with its inclusion
    /// proof, for verification without database access.
    Export {
        #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, env = "CUSTODIA_DATABASE_URL")]
        database_url: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute the whole audit log from the database (read-only, no root key): every entry,
    /// every checkpoint, against the key pinned at init and checkpoints kept elsewhere. Exit 0
    /// when intact; otherwise name the first problem and exit 1.
    Verify(audit_cmd::VerifyArgs),
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Print the public key erasure receipts are signed with (pin it where receipts are checked).
    Key {
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Check an erasure receipt (the signed note, or the JSON the server answered) against a
    /// pinned key; prints what it lists. Exit 1 if it does not verify.
    Verify {
        /// The receipt key (`custodia-erasure-receipts+...`) or a file holding it.
        #[arg(long)]
        public_key: String,
        file: PathBuf,
    },
}

#[derive(clap::Subcommand)]
enum ErasuresCommand {
    /// Erase again every subject of the database that the tombstone log (or the database's own
    /// list) names.
    Reapply {
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead of SQLite in the data directory.
        #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Another tombstone log to re-apply as well (repeatable): with several nodes on one
        /// PostgreSQL each node logs the erasures it made in its own data directory, so pass
        /// every other node's `erasures.log`.
        #[arg(long = "tombstones", value_name = "FILE")]
        tombstones: Vec<PathBuf>,
    },
}

#[derive(clap::Subcommand)]
enum PrincipalCommand {
    /// Create a principal; prints its id and API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// A registry role; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// List principals (never their keys).
    List,
    /// Bind a principal's key to a client certificate: it then works only over TLS with that
    /// certificate (mTLS; the server needs --tls-client-ca).
    BindCert {
        /// The principal id (`prn_...`).
        principal_id: String,
        /// The client certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Revoke a principal's key at once.
    Revoke { principal_id: String },
    /// Give a principal a new API key (printed once); its old key stops working at once.
    Rotate {
        /// A principal id (`prn_...`) or a key id (the 16 hex digits after `cst_`).
        id: String,
        #[command(flatten)]
        expiry: Expiry,
    },
}

/// When a new API key stops working (default: never).
#[derive(clap::Args)]
struct Expiry {
    /// A lifetime from now: a number and a unit, `d`, `h`, `m` or `s` (e.g. `90d`).
    #[arg(long, conflicts_with = "expires_at", value_parser = parse_lifetime)]
    expires_in: Option<std::time::Duration>,
    /// A time, RFC 3339 (e.g. `2027-01-31T00:00:00Z`).
    #[arg(long)]
    expires_at: Option<String>,
}

impl Expiry {
    /// The `expires_at` to send, if any.
    fn expires_at(&self) -> anyhow::Result<Option<String>> {
        match (&self.expires_at, self.expires_in) {
            (Some(at), _) => Ok(Some(at.clone())),
            (None, Some(lifetime)) => {
                let ms = i64::try_from(lifetime.as_millis()).context("--expires-in is too long")?;
                let at = Timestamp::now().0.checked_add(ms).context("--expires-in is too long")?;
                Ok(Some(Timestamp(at).to_rfc3339()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// `90d`, `12h`, `30m`, `45s`.
fn parse_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a lifetime such as 90d, 12h, 30m or 45s");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (n, unit) = (text.get(..split).ok_or_else(bad)?, text.get(split..).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

fn main() -> ExitCode {
    // The address variable was CUSTODIA_URL before it became CUSTODIA_ADDR: a command that
    // still finds only the old one would quietly talk to the default address instead, with
    // the key or password it was given. Refuse instead.
    if std::env::var_os("CUSTODIA_URL").is_some() && std::env::var_os(requests_cmd::ADDR_ENV).is_none() {
        eprintln!(
            "error: CUSTODIA_URL is no longer read: the server's address is {} now (like VAULT_ADDR); rename the variable",
            requests_cmd::ADDR_ENV
        );
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", said(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, as `{:#}` writes them but each said once: an error whose message
/// already holds its cause's (`root.key: No such file or directory` over the I/O error) wrote
/// it again for every layer (`File exists (os error 17): File exists (os error 17)`).
fn said(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log_format = cli.log_format;
    match cli.command {
        Command::Init {
            data_dir,
            database_url,
            service_role,
            json,
            dev_tls,
        } => {
            let dir = DataDir::new(&data_dir);
            let made = dir.init(database_url.as_deref(), Timestamp::now()).await?;
            if dev_tls {
                let files = tls_cmd::make_dev_pair(&data_dir)?;
                eprintln!(
                    "A self-signed TLS certificate for localhost is in {} (trust it in your client for development): serve speaks HTTPS only.",
                    files.cert.display()
                );
            }
            let service = match (&service_role, &database_url) {
                (Some(role), Some(url)) => Some(
                    custodia_core::provision_service_role(url, role, true)
                        .await
                        .with_context(|| {
                            format!("creating the service role {role} (the vault is initialised: `custodia migrate --service-role {role} --new-password` retries this)")
                        })?,
                ),
                _ => None,
            };
            let service_url = service.as_ref().and_then(|s| s.database_url.as_deref());
            if json {
                out!(
                    "{}",
                    serde_json::to_string(&custodia_types::InitOutput {
                        admin_token: made.admin_token.to_string(),
                        audit_public_key: made.audit_public_key.clone(),
                        service_database_url: service_url.map(ToString::to_string),
                    })?
                );
            } else {
                out!("Initialised {}.", data_dir.display());
                out!("Bootstrap admin API key (shown once; store it in a secret manager):");
                out!("{}", made.admin_token.as_str());
                out!(
                    "Audit log checkpoint key (keep a copy outside the vault; `custodia audit verify --public-key` checks against it):"
                );
                out!("{}", made.audit_public_key);
                if let (Some(role), Some(url)) = (&service_role, service_url) {
                    out!(
                        "Service role {role}: serve with this database URL (shown once; store it in a secret manager):"
                    );
                    out!("{url}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            database_url,
            service_role,
            new_password,
        } => {
            let store = custodia_store::Store::open(&database_url)
                .await
                .context("migrating the database (as its owner role)")?;
            drop(store);
            out!("Database schema at version {}.", custodia_store::SCHEMA_VERSION);
            if let Some(role) = service_role {
                let service = custodia_core::provision_service_role(&database_url, &role, new_password).await?;
                let append_only: Vec<&str> = service
                    .grants
                    .iter()
                    .filter(|g| g.append_only)
                    .map(|g| g.table.as_str())
                    .collect();
                out!(
                    "Service role {role}: privileges set on {} tables (append-only: {}).",
                    service.grants.len(),
                    append_only.join(", ")
                );
                if let Some(url) = service.database_url {
                    out!("Its new password is in this database URL (shown once; store it in a secret manager):");
                    out!("{}", url.as_str());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            data_dir,
            listen,
            database_url,
            publish,
            public_url,
            tls_cert,
            tls_key,
            tls_client_ca,
            metrics_listen,
            seal_ledger,
            seal_access,
        } => {
            init_logging(log_format);
            let tls = tls_cmd::certificates(&data_dir, tls_cert, tls_key)?;
            if let Some(ca) = &tls_client_ca {
                let certificates = tls
                    .as_ref()
                    .context("--tls-client-ca needs HTTPS (--tls-cert and --tls-key, or init --dev-tls)")?;
                certificates
                    .ask_client_certificates(ca)
                    .map_err(|e| anyhow::anyhow!("--tls-client-ca: {e}"))?;
            }
            serve(
                &data_dir,
                (listen, metrics_listen),
                (database_url.as_deref(), seal_ledger, seal_access),
                &publish,
                public_url,
                tls,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Notice(args) => transparency_cmd::notice(&args).map(|()| ExitCode::SUCCESS),
        Command::Ropa(args) => transparency_cmd::ropa(&args).map(|()| ExitCode::SUCCESS),
        Command::Witness(args) => {
            init_logging(log_format);
            audit_cmd::witness(args, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => Ok(check(file.as_deref())),
        Command::Fides { action } => Ok(fides_cmd::run(action)),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            // Into a buffer first: `generate` panics when its writer fails (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "custodia", &mut script);
            let mut stdout = std::io::stdout().lock();
            if let Err(e) =
                std::io::Write::write_all(&mut stdout, &script).and_then(|()| std::io::Write::flush(&mut stdout))
            {
                stdout_failed(&e);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Principal {
            action,
            url,
            token,
            output,
        } => principal(action, &url, token, output).await,
        Command::Requests { action, api } => requests_cmd::run(action, api).await,
        Command::Incident { action, api } => incident_cmd::run(action, api).await,
        Command::Operator { action } => operator_cmd::run(action).await,
        Command::Login(args) => operator_cmd::login(args).await,
        Command::BreakGlass(args) => operator_cmd::break_glass(args).await,
        Command::AccessReview(args) => operator_cmd::access_review(args).await,
        Command::Keys { action } => keys_cmd::run(action).await,
        Command::Retention { action } => retention_cmd::run(action).await,
        Command::Activity(args) => retention_cmd::activity(args).await,
        Command::Backup { data_dir, out } => {
            DataDir::new(&data_dir)
                .backup(None, &out)
                .await
                .with_context(|| format!("backing up {}", data_dir.display()))?;
            eprintln!(
                "wrote {} (keep the root key apart from it; restore with `custodia restore --from`)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            data_dir,
            from,
            tombstones,
            no_tombstones,
        } => {
            let tombstones = custodia_core::RestoreTombstones {
                elsewhere: tombstones,
                none_kept: no_tombstones,
            };
            if no_tombstones {
                eprintln!(
                    "warning: restoring without a tombstone log (--no-tombstones): whoever was erased since the backup \
                     comes back unless the log is re-applied later (`custodia erasures reapply --tombstones FILE`)"
                );
            }
            let report = DataDir::new(&data_dir)
                .restore(&from, &tombstones, Timestamp::now())
                .await
                .with_context(|| format!("restoring {} from {}", data_dir.display(), from.display()))?;
            out!(
                "restored {} from {}; {} tombstones known, {} subjects erased again",
                data_dir.display(),
                from.display(),
                report.reapplied.tombstones,
                report.reapplied.erased
            );
            // Erasing again wrote to the audit log: signed now, as any offline writer does.
            if report.reapplied.erased > 0 {
                let vault = DataDir::new(&data_dir).open(None).await?;
                audit_cmd::OfflineLog::resume(&vault, &data_dir, "the restore")
                    .await?
                    .sign(&vault)
                    .await?;
            }
            match report.audit_entries_adopted {
                Some(n) => out!("the audit log is whole: {n} entries since the backup carried over"),
                None => eprintln!(
                    "warning: there was no database to carry the audit log over from: the audit log is the backup's, \
                     shorter than the checkpoints published since; `serve` will refuse it (see the README, \
                     \"Backups\")"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Erasures {
            action:
                ErasuresCommand::Reapply {
                    data_dir,
                    database_url,
                    tombstones,
                },
        } => {
            let dir = DataDir::new(&data_dir);
            // Every log is read before anything opens: a damaged or missing one stops the run.
            let mut log = custodia_core::read_tombstones(&dir.tombstone_path()).map_err(|e| anyhow::anyhow!(e))?;
            for other in &tombstones {
                if !other.is_file() {
                    anyhow::bail!("{}: no such tombstone log", other.display());
                }
                log.extend(custodia_core::read_tombstones(other).map_err(|e| anyhow::anyhow!(e))?);
            }
            let vault = dir
                .open(database_url.as_deref())
                .await
                .with_context(|| format!("opening {}", data_dir.display()))?;
            let audit = audit_cmd::OfflineLog::resume(&vault, &data_dir, "erasing again").await?;
            let bar = progress::Bar::new("erasing again", "subjects");
            let report = vault.reapply_erasures(&log, Timestamp::now(), &bar).await;
            bar.finish();
            audit.sign(&vault).await?;
            let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;
            out!(
                "{} tombstones known, {} subjects erased again",
                report.tombstones,
                report.erased
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Receipt {
            action: ReceiptCommand::Verify { public_key, file },
        } => requests_cmd::verify_receipt(&public_key, &file),
        Command::Receipt {
            action: ReceiptCommand::Key { data_dir, database_url },
        } => {
            let vault = read_only_vault(&data_dir, database_url.as_deref()).await?;
            out!("{}", vault.receipt_public_key());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            action:
                AuditCommand::Export {
                    data_dir,
                    database_url,
                    out,
                },
        } => {
            let vault = DataDir::new(&data_dir)
                .open(database_url.as_deref())
                .await
                .with_context(|| format!("opening {}", data_dir.display()))?;
            // Checked first, as a server's start checks it: proofs of a log changed under its
            // checkpoints would all fail, and the file would pass for evidence
            audit_cmd::checked(&vault, &data_dir).await.map_err(|why| match why {
                custodia_server::Resumed::Diverged(why) => anyhow::anyhow!(
                    "the audit log does not match its checkpoints, so it is not exported: {why} \
                     (`custodia audit verify` names what changed)"
                ),
                upgrade => anyhow::anyhow!("{}", upgrade.refusal("the export")),
            })?;
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(private_file(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let bar = progress::Bar::new("exporting the audit log", "steps");
            let written = custodia_core::export_audit_log(vault.store(), &vault.audit_public_key(), &mut *sink, &bar)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            bar.finish();
            sink.flush()?;
            eprintln!("exported {written} entries with their inclusion proofs");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            action: AuditCommand::Verify(args),
        } => match audit_cmd::verify(args).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {}", said(&e));
                Ok(ExitCode::from(2))
            }
        },
        Command::ContextKey {
            signer,
            data_dir,
            database_url,
        } => {
            let vault = read_only_vault(&data_dir, database_url.as_deref()).await?;
            let key = vault.context_signer_key(&signer).map_err(|e| anyhow::anyhow!("{e}"))?;
            out!("{}", key.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::WebhookSecret {
            recipient,
            alerts,
            data_dir,
            database_url,
        } => {
            let vault = read_only_vault(&data_dir, database_url.as_deref()).await?;
            let secret = match (&recipient, alerts) {
                (Some(recipient), false) => vault.webhook_secret(recipient),
                _ => vault.alert_secret(),
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            out!("{}", secret.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Policies { file } => {
            let path = file.unwrap_or_else(|| DataDir::new("custodia-data").registry_path());
            let registry = Registry::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            out!("// Cedar schema\n{}", custodia_core::cedar_schema(&registry));
            out!(
                "// Policies compiled from the roles of {}\n{}",
                path.display(),
                custodia_core::role_policies(&registry)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            seconds,
            clients,
            crypto_only,
            soak_minutes,
        } => {
            // The server inside logs only when asked (`CUSTODIA_LOG=custodia_store=debug` shows
            // each write batch's commit and write-ahead-log times): the figures stay on stdout.
            if std::env::var_os("CUSTODIA_LOG").is_some() {
                init_logging(log_format);
            }
            match soak_minutes {
                Some(minutes) => bench::soak(minutes.max(1), clients.max(1)).await?,
                None => bench::run(seconds, clients, crypto_only).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchAuditLog { entries } => {
            audit_bench::run_log(usize::try_from(entries).unwrap_or(usize::MAX)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchErasure { records } => {
            erasure_bench::run(records).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchRotation { subjects } => {
            rotation_bench::run(subjects).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchRetention {
            values,
            expiring,
            readers,
            data_dir,
        } => {
            retention_bench::run(retention_bench::Options {
                values,
                expiring,
                readers,
                data_dir,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchAuditQuery { entries, database_url } => {
            audit_bench::run(entries, database_url.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchScale {
            subjects,
            records_per_subject,
            data_dir,
            keep,
            database_url,
        } => {
            scale_bench::run(scale_bench::Options {
                subjects,
                records_per_subject,
                data_dir,
                keep,
                database_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        // Errors exit with 2 here: 1 means "a failed check at least --fail-on severe".
        Command::Assess(args) => Ok(assess_cmd::assess(args).await.unwrap_or_else(|e| {
            eprintln!("error: {}", said(&e));
            ExitCode::from(2)
        })),
        // Errors exit with 2 here: 1 means "findings that --fail-on names".
        Command::Scan(args) => Ok(scan_cmd::scan(args).await.unwrap_or_else(|e| {
            eprintln!("error: {}", said(&e));
            ExitCode::from(2)
        })),
        Command::Redact(args) => Ok(scan_cmd::redact(args).unwrap_or_else(|e| {
            eprintln!("error: {}", said(&e));
            ExitCode::from(2)
        })),
        Command::BenchScan {
            corpus,
            seconds,
            threads,
            per_entity,
            entities,
        } => {
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if entities.is_empty() {
                scan_bench::run(&corpus, seconds, threads, per_entity)?;
            } else {
                scan_bench::time_only(&corpus, seconds, &entities)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTODIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().flatten_event(true).with_current_span(false).init(),
    }
}

async fn serve(
    data_dir: &Path,
    (listen, metrics_listen): (SocketAddr, Option<SocketAddr>),
    (database_url, seal_ledger, seal_access): (Option<&str>, bool, bool),
    publish: &audit_cmd::PublishArgs,
    public_url: Option<String>,
    tls: Option<std::sync::Arc<custodia_server::tls::Certificates>>,
) -> anyhow::Result<()> {
    if let Some(url) = &public_url {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        anyhow::ensure!(ok, "--public-url must be an http:// or https:// address, got `{url}`");
    }
    let dir = DataDir::new(data_dir);
    if !dir.is_initialised() {
        let made = dir
            .init(database_url, Timestamp::now())
            .await
            .context("initialising the data directory")?;
        let path = dir
            .write_admin_token(&made.admin_token)
            .context("writing the admin token")?;
        eprintln!("Initialised a new data directory at {}.", data_dir.display());
        eprintln!(
            "The bootstrap admin API key is in {} (readable only by you).",
            path.display()
        );
        eprintln!(
            "Audit log checkpoint key (keep a copy outside the vault): {}",
            made.audit_public_key
        );
    }
    let vault = if seal_ledger {
        dir.open_sealing_ledger(database_url).await
    } else {
        dir.open(database_url).await
    }
    .with_context(|| format!("opening {}", data_dir.display()))?;
    let locale = transparency_cmd::locale_beside(&dir.registry_path(), vault.registry())?;
    if public_url.is_none() {
        tracing::warn!(
            "no --public-url: preference center links are made with the address the caller used; set --public-url (CUSTODIA_PUBLIC_URL) to the https address customers reach"
        );
    }
    let web = custodia_server::Web::new(vault.registry(), locale, public_url)
        .map_err(anyhow::Error::msg)?
        .over_https(tls.is_some());
    let publisher = publish.publisher(data_dir)?;
    let report = custodia_server::resume(&vault, &publisher, seal_access, true)
        .await
        .map_err(|why| anyhow::anyhow!("{}", why.refusal("the server")))?;
    tracing::info!(
        entries = report.entries,
        trusted = report.trusted,
        key = %vault.audit_verifier_key(),
        "audit log checked against its checkpoints"
    );
    // An erasure the database does not list (its last transaction never committed, or the
    // database was restored by other means) is carried out before anything is answered.
    let log = custodia_core::read_tombstones(&dir.tombstone_path())
        .map_err(|e| anyhow::anyhow!("the tombstone log cannot be read, so erasures cannot be vouched for: {e}"))?;
    let missing = vault
        .tombstones_missing(&log)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !missing.is_empty() {
        let done = vault
            .reapply_erasures(&missing, Timestamp::now(), &())
            .await
            .map_err(|e| anyhow::anyhow!("re-applying erasures: {e}"))?;
        tracing::warn!(
            tombstones = missing.len(),
            erased = done.erased,
            "the tombstone log named erasures the database did not list; they were carried out"
        );
    }
    let backend = vault.backend();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    let scheme = if tls.is_some() { "https" } else { "http" };
    out!("custodia listening on {scheme}://{addr} (store: {backend})");
    tracing::info!(%addr, backend, "listening");
    let metrics = match metrics_listen {
        None => None,
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding --metrics-listen {at}"))?;
            let addr = listener.local_addr()?;
            out!("custodia metrics on http://{addr}/metrics (unauthenticated)");
            Some(tokio::spawn(custodia_server::metrics::serve_metrics_only(listener)))
        }
    };
    let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let deployment = custodia_server::assess::Deployment::new(Some(absolute), Vec::new());
    let served = custodia_server::serve(vault, publisher, web, tls, deployment, listener, shutdown_signal()).await;
    if let Some(task) = metrics {
        task.abort();
    }
    served?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

fn check(file: Option<&Path>) -> ExitCode {
    let path = file.map_or_else(|| DataDir::new("custodia-data").registry_path(), Path::to_path_buf);
    match Registry::load(&path) {
        Ok(reg) => {
            // The operator's Cedar policies beside the registry must fit it too.
            let dir = DataDir::new(path.parent().unwrap_or_else(|| Path::new(".")));
            let policies = match dir.policy_files() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = custodia_core::Policies::compile(&reg, &policies) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
            // The notice and the preference center speak the registry's language.
            if let Err(e) = transparency_cmd::locale_beside(&path, &reg) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
            for warning in reg.warnings() {
                eprintln!("{}: warning: {}", warning.location(), warning.message);
            }
            let out = format!(
                "{}: ok ({} collections, {} purposes, {} recipients, {} roles, {} policy files)",
                path.display(),
                reg.collections.len(),
                reg.purposes.len(),
                reg.recipients.len(),
                reg.roles.len(),
                policies.len()
            );
            if std::io::stdout().is_terminal() {
                out!("\u{2714} {out}");
            } else {
                out!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: {} problem(s)", path.display(), e.diagnostics.len());
            ExitCode::FAILURE
        }
    }
}

/// Runs a principal command against the server's API and prints the JSON answer.
async fn principal(
    action: PrincipalCommand,
    url: &str,
    token: Option<String>,
    output: requests_cmd::OutputArgs,
) -> anyhow::Result<ExitCode> {
    let table = matches!(action, PrincipalCommand::List) && !output.json();
    // what an answer without a body (204) did, said so: silence read as nothing done
    let done = match &action {
        PrincipalCommand::BindCert { principal_id, .. } => Some(format!(
            "{principal_id}: client certificate bound (its key now works only with it)"
        )),
        PrincipalCommand::Revoke { principal_id } => Some(format!("{principal_id}: revoked")),
        _ => None,
    };
    let (method, path, body) = match action {
        PrincipalCommand::Create { name, roles, expiry } => (
            "POST",
            "/v1/principals".to_owned(),
            Some(serde_json::to_vec(&custodia_types::CreatePrincipalRequest {
                name,
                roles,
                expires_at: expiry.expires_at()?,
            })?),
        ),
        PrincipalCommand::Rotate { id, expiry } => (
            "POST",
            format!("/v1/principals/{id}/rotate"),
            Some(serde_json::to_vec(&custodia_types::RotateKeyRequest {
                expires_at: expiry.expires_at()?,
            })?),
        ),
        PrincipalCommand::List => ("GET", "/v1/principals".to_owned(), None),
        PrincipalCommand::BindCert { principal_id, cert } => (
            "POST",
            format!("/v1/principals/{principal_id}/client-cert"),
            Some(serde_json::to_vec(&custodia_types::BindClientCertRequest {
                sha256: tls_cmd::certificate_sha256(&cert)?,
            })?),
        ),
        PrincipalCommand::Revoke { principal_id } => ("DELETE", format!("/v1/principals/{principal_id}"), None),
    };
    let reply = api_call(url, token, method, &path, body).await?;
    let text = String::from_utf8_lossy(&reply.body);
    if (200..300).contains(&reply.status) {
        if table {
            let list: custodia_types::PrincipalList = serde_json::from_slice(&reply.body)?;
            if list.principals.is_empty() {
                out!("no principals");
            }
            for p in &list.principals {
                out!(
                    "{}  {:<24} {:<40} created {}{}",
                    p.principal_id,
                    p.name,
                    p.roles.join(","),
                    p.created_at,
                    match (&p.revoked_at, &p.expires_at) {
                        // a row written outside the vault first: its key is refused, and
                        // someone wrote it who could write the database
                        _ if p.altered => "  ALTERED outside the vault: refused, revoke it".to_owned(),
                        // a dead key says so first: the list is what an access review reads
                        (Some(r), _) => format!("  REVOKED {r}"),
                        (None, Some(e)) => format!("  expires {e}"),
                        (None, None) => String::new(),
                    }
                );
            }
        } else if !text.is_empty() {
            out!("{text}");
        } else if let Some(done) = done {
            out!("{done}");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the server answered {}: {text}", reply.status);
        Ok(ExitCode::FAILURE)
    }
}

/// Creates (or empties) `path` readable by its owner only (0600, an existing file's mode
/// tightened first): what the CLI writes there names people (an access package, a letter to
/// one of them) or tells about them (the audit log).
fn private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", path.display()))?;
        }
    }
    let file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_len(0)
        .with_context(|| format!("emptying {}", path.display()))?;
    Ok(file)
}

/// Writes `bytes` to [`private_file`] `path`.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = private_file(path)?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("writing {}", path.display()))
}

/// One call to a running server's API with an API key (`token`, default: the data
/// directory's admin token).
/// [`api_call`], with any answer outside 2xx printed to standard error as the server gave it:
/// `Err` holds the exit code to return then.
async fn api_success(
    url: &str,
    token: Option<String>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<Result<http_client::Reply, ExitCode>> {
    let reply = api_call(url, token, method, path, body).await?;
    if (200..300).contains(&reply.status) {
        return Ok(Ok(reply));
    }
    eprintln!(
        "error: the server answered {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(Err(ExitCode::FAILURE))
}

async fn api_call(
    url: &str,
    token: Option<String>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<http_client::Reply> {
    let token = match token {
        Some(t) => t,
        None => {
            let path = DataDir::new("custodia-data").admin_token_path();
            std::fs::read_to_string(&path)
                .with_context(|| format!("no --token given and {} cannot be read", path.display()))?
                .trim()
                .to_owned()
        }
    };
    api_request(url, Some(&token), method, path, body).await
}

/// One call to a running server's API, with `token` as the bearer credential if given.
async fn api_request(
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<http_client::Reply> {
    let (https, authority) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => anyhow::bail!("--url must be an http:// or https:// URL, got `{url}`"),
    };
    let authority = authority.trim_end_matches('/');
    let addr: SocketAddr = tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    let mut conn = if https {
        // The host the certificate must name: the authority without its port (or brackets).
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        http_client::Connection::open_tls(addr, host, authority, &tls_cmd::client()?).await
    } else {
        http_client::Connection::open(addr).await
    }
    .with_context(|| format!("cannot connect to {url}"))?;
    // An operator's session says why it reaches personal data (`Custodia-Justification`):
    // from the environment, for every command that calls the server.
    let justification = std::env::var("CUSTODIA_JUSTIFICATION")
        .ok()
        .filter(|j| !j.trim().is_empty());
    let headers: Vec<(&str, &str)> = justification
        .as_deref()
        .map(|j| ("custodia-justification", j))
        .into_iter()
        .collect();
    conn.send(method, path, token, body, &headers)
        .await
        .with_context(|| format!("{method} {path}"))
}

/// The data directory's vault opened read-only, beside a running server (for commands that
/// print a key derived from the vault's).
async fn read_only_vault(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<custodia_core::Vault> {
    DataDir::new(data_dir)
        .open_read_only(database_url)
        .await
        .with_context(|| format!("opening {}", data_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::said;

    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "File exists (os error 17)");
        #[derive(Debug)]
        struct Writing(std::io::Error);
        impl std::fmt::Display for Writing {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "backup.db: {}", self.0)
            }
        }
        impl std::error::Error for Writing {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Writing(io)).context("writing the backup");
        assert_eq!(said(&e), "writing the backup: backup.db: File exists (os error 17)");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(said(&plain), "outer: inner");
    }

    use clap::{CommandFactory as _, Parser as _};

    /// A shell line's words (quotes grouped, `$(...)` taken as one word), up to a pipe.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        for c in line.chars() {
            match (quote, c) {
                (None, '|') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                (_, c) => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    /// Every `Examples:` line of every command's help parses as a command line: the help
    /// cannot drift from the flags.
    #[test]
    fn help_examples_parse() {
        let mut pending = vec![super::Cli::command()];
        let mut seen = 0;
        while let Some(command) = pending.pop() {
            if let Some(help) = command.get_after_help() {
                for line in help.to_string().lines().map(str::trim) {
                    let Some(rest) = line.strip_prefix("custodia ") else {
                        continue;
                    };
                    let rest = rest.trim_start_matches(|c: char| c.is_ascii_uppercase() || c == '_' || c == '=');
                    let mut argv = vec!["custodia".to_owned()];
                    argv.extend(words(rest));
                    if argv.iter().any(|w| w == "--help") {
                        continue;
                    }
                    seen += 1;
                    if let Err(e) = super::Cli::try_parse_from(&argv) {
                        panic!("{line}: {e}");
                    }
                }
            }
            pending.extend(command.get_subcommands().cloned());
        }
        assert!(seen >= 20, "only {seen} examples found");
    }
}
