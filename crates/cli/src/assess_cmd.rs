//! `custodia assess`: the posture self-assessment of a data directory, opened read-only and
//! without its lock (beside a running server). Exit codes: 0 when no failed check is at least
//! `--fail-on` severe, 1 when one is, 2 when the assessment cannot run (usage, unreadable
//! directory or database).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use custodia_core::{
    AssessEnvironment, AuditSources, DEFAULT_BACKUP_MAX_AGE_DAYS, DEFAULT_KEY_MAX_AGE_DAYS, DataDir, KeyFacts,
    OutsideCheckpoints, Timestamp, VerifierKey,
};
use custodia_registry::Registry;
use custodia_server::assess::{fails_at, outside_checks, render_html, report, severity_name, tls_facts};
use custodia_server::tls::TlsFiles;
use custodia_types::{Assessment, Severity};

#[derive(Clone, Copy, ValueEnum)]
pub enum AssessFormat {
    Text,
    Json,
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            Self::Critical => Severity::Critical,
            Self::High => Severity::High,
            Self::Medium => Severity::Medium,
            Self::Low => Severity::Low,
            Self::Info => Severity::Info,
        }
    }
}

#[derive(Args)]
pub struct AssessArgs {
    #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
    data_dir: PathBuf,
    /// The PostgreSQL database, when the vault does not use SQLite in the data directory.
    #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// text: a line per check, the remediation of each failure, the score; json:
    /// `{"checks": [{"id", "passed", "severity", "remediation", ...}], "score", ...}`;
    /// html: a report page.
    #[arg(long, value_enum, default_value = "text")]
    format: AssessFormat,
    /// Exit with 1 when a failed check is at least this severe.
    #[arg(long, value_enum, default_value = "high")]
    fail_on: FailOn,
    /// Also scan this file or directory for personal data (the server's logs, exports);
    /// repeat for several.
    #[arg(long = "scan")]
    scan: Vec<PathBuf>,
    /// The root key's rotation period.
    #[arg(long, default_value_t = DEFAULT_KEY_MAX_AGE_DAYS)]
    key_max_age_days: u32,
    /// How old the newest backup (`custodia backup`) may be.
    #[arg(long, default_value_t = DEFAULT_BACKUP_MAX_AGE_DAYS)]
    backup_max_age_days: u32,
    /// The certificate `serve` is given (as `serve --tls-cert`); default: the data
    /// directory's `init --dev-tls` pair when it has one.
    #[arg(long, env = "CUSTODIA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert.
    #[arg(long, env = "CUSTODIA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The checkpoint key `init` printed (`custodia-audit+<id>+<key>`), or a file holding it,
    /// as `audit verify --public-key` takes it. Without it the audit log is verified with the
    /// database's own copy, which whoever can write the database can replace (the report says
    /// so).
    #[arg(long, env = "CUSTODIA_AUDIT_PUBLIC_KEY")]
    public_key: Option<String>,
    /// Where the server keeps checkpoints outside the database: give the options `serve` is
    /// given (the rules it starts by are applied to them).
    #[command(flatten)]
    checkpoints: crate::audit_cmd::CheckpointArgs,
}

/// `custodia assess`.
pub async fn assess(args: AssessArgs) -> anyhow::Result<ExitCode> {
    let dir = DataDir::new(&args.data_dir);
    anyhow::ensure!(
        dir.is_initialised(),
        "{} is not a data directory (it has no {}); give --data-dir",
        args.data_dir.display(),
        custodia_core::REGISTRY_FILE
    );
    let root = std::path::absolute(&args.data_dir).unwrap_or_else(|_| args.data_dir.clone());
    let registry = Registry::load(&dir.registry_path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = dir.store_url(args.database_url.as_deref());
    let store = custodia_store::Store::open_read_only(&url)
        .await
        .with_context(|| format!("opening {} read-only", args.data_dir.display()))?;
    let now = Timestamp::now();
    // The key's versions (their creation times), and the keys to find copies of them: a
    // source that cannot be read fails the checks that need it, not the assessment.
    let keys = match dir.key_provider() {
        Ok(provider) => {
            let keyring = provider.load().map(std::sync::Arc::new);
            KeyFacts {
                provider: Ok(provider.name().to_owned()),
                versions: keyring.as_ref().map(|k| k.versions()).map_err(|e| e.to_string()),
                keyring: keyring.ok(),
            }
        }
        Err(e) => KeyFacts {
            provider: Err(e.to_string()),
            versions: Err(e.to_string()),
            keyring: None,
        },
    };
    let pinned = match &args.public_key {
        Some(value) => Some(crate::audit_cmd::key_arg(value, "--public-key")?),
        None => None,
    };
    let publisher = args.checkpoints.publisher(&root)?;
    let audit = audit_sources(&store, pinned, &publisher).await;
    let files = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => {
            let dev = TlsFiles {
                cert: root.join("tls").join("cert.pem"),
                key: root.join("tls").join("key.pem"),
            };
            (dev.cert.exists() || dev.key.exists()).then_some(dev)
        }
    };
    let env = AssessEnvironment {
        data_dir: Some(root.clone()),
        tls: tls_facts(Some(&root), files.as_ref()),
        // The files `serve` would use with the same options, not what a running server serves.
        tls_from_server: false,
        key_max_age_days: args.key_max_age_days,
        backup_max_age_days: args.backup_max_age_days,
    };
    let mut checks = custodia_core::assess_store(&registry, &store, keys, audit, &env, now).await;
    let scan = args.scan;
    let outside = tokio::task::spawn_blocking(move || outside_checks(Some(&root), &scan, &[]))
        .await
        .context("the scan for personal data stopped")?;
    checks.extend(outside);
    let report = report(checks, now);
    let mut out = std::io::stdout().lock();
    let printed = match args.format {
        AssessFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?),
        AssessFormat::Html => out.write_all(render_html(&report, true).as_bytes()),
        AssessFormat::Text => out.write_all(text(&report).as_bytes()),
    };
    // A closed pipe (`| head`) is the reader's choice, not an error of the assessment.
    if let Err(e) = printed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(anyhow::Error::new(e).context("writing the report"));
    }
    Ok(if fails_at(&report, args.fail_on.severity()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The checkpoint key (the one pinned, else the database's copy) and the checkpoints the
/// server keeps outside the database, judged by the rules it starts by.
async fn audit_sources(
    store: &custodia_store::Store,
    pinned: Option<VerifierKey>,
    publisher: &custodia_server::Publisher,
) -> AuditSources {
    let (key, key_source) = match pinned {
        Some(pinned) => (
            crate::audit_cmd::database_copy_is(store, &pinned).await.map(|()| pinned),
            "the key given with --public-key".to_owned(),
        ),
        None => (
            match crate::audit_cmd::database_copy(store).await {
                Ok(Some(bytes)) => VerifierKey::parse(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| format!("the database's copy: {e}")),
                Ok(None) => Err("the database holds no copy of it; give --public-key (the key init printed)".to_owned()),
                Err(e) => Err(e),
            },
            "the database's own copy of the checkpoint key (its audit_public_key row, which whoever can write the database can replace to re-sign a rewritten log; give --public-key, the key init printed)".to_owned(),
        ),
    };
    let outside = match &key {
        Ok(key) => publisher.outside(store, key).await,
        Err(_) => OutsideCheckpoints {
            places: publisher.places(),
            trusted: Ok(Vec::new()),
        },
    };
    AuditSources::new(key, key_source, outside)
}

/// One line per check (PASS/FAIL, severity, title, id), what was found and the remediation
/// under each failure, then the score.
fn text(report: &Assessment) -> String {
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{}  {:<8}  {} ({})\n",
            if c.passed { "PASS" } else { "FAIL" },
            severity_name(c.severity),
            c.title,
            c.id
        ));
        if !c.passed {
            out.push_str(&format!("      found: {}\n      fix:   {}\n", c.detail, c.remediation));
        }
    }
    out.push_str(&format!(
        "score {}/100: {} passed, {} failed\n",
        report.score, report.passed, report.failed
    ));
    out
}
