//! `custodia keys status|rotate|retire`: the root key's versions and what each wraps; a
//! rotation (new version, every key re-wrapped in batches, resumable), locally with a
//! progress bar or through a running server; retiring a version nothing uses.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use custodia_core::Timestamp;
use custodia_types::KeyStatus;

use crate::operator_cmd::Target;
use crate::retention_cmd::print_json;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Versions, their ages, and how many keys each wraps.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// A new root key version, and every key re-wrapped under it (reads go on meanwhile).
    /// An interrupted rotation is resumed by running this again.
    Rotate {
        #[command(flatten)]
        target: Target,
    },
    /// Split the data directory's root key file into shares (Shamir, any THRESHOLD of
    /// SHARES give it back), one per line on standard output, for several people to keep.
    /// With --remove the key file is then deleted: the vault opens only after `keys combine`.
    Split {
        #[arg(long)]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 5)]
        shares: u8,
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        /// Delete the key file once the shares are printed.
        #[arg(long)]
        remove: bool,
    },
    /// Write the data directory's root key file back from shares of `keys split`, read from
    /// standard input, one per line (each person pastes theirs).
    Combine {
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// Remove a version from the key source; refused while anything is wrapped under it.
    Retire {
        version: u32,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(action: KeysCommand) -> anyhow::Result<ExitCode> {
    match action {
        KeysCommand::Split {
            data_dir,
            shares,
            threshold,
            remove,
        } => split(&data_dir, shares, threshold, remove),
        KeysCommand::Combine { data_dir } => combine(&data_dir),
        KeysCommand::Status { target } => {
            let status = match &target.data_dir {
                Some(dir) => target
                    .open(dir)
                    .await?
                    .key_status(Timestamp::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                None => match fetch_status(&target).await? {
                    Ok(status) => status,
                    Err(code) => return Ok(code),
                },
            };
            show(&target, &status)
        }
        KeysCommand::Rotate { target } => match &target.data_dir {
            Some(dir) => rotate_local(&target, dir).await,
            None => rotate_remote(&target).await,
        },
        KeysCommand::Retire { version, target } => {
            let status = match &target.data_dir {
                Some(dir) => {
                    let vault = target.open(dir).await?;
                    let log = crate::audit_cmd::OfflineLog::resume(&vault, dir, "retiring a key").await?;
                    let retired = vault
                        .retire_key_version(custodia_core::LOCAL_CREATOR, Timestamp::now(), version)
                        .await;
                    log.sign(&vault).await?;
                    retired.map_err(|e| anyhow::anyhow!("{e}"))?
                }
                None => {
                    let path = format!("/v1/keys/versions/{version}/retire");
                    match crate::api_success(&target.api.url, target.api.token.clone(), "POST", &path, None).await? {
                        Ok(reply) => serde_json::from_slice(&reply.body).context("reading the server's answer")?,
                        Err(code) => return Ok(code),
                    }
                }
            };
            eprintln!("Retired root key version {version}.");
            show(&target, &status)
        }
    }
}

async fn fetch_status(target: &Target) -> anyhow::Result<Result<KeyStatus, ExitCode>> {
    Ok(
        match crate::api_success(&target.api.url, target.api.token.clone(), "GET", "/v1/keys", None).await? {
            Ok(reply) => Ok(serde_json::from_slice(&reply.body).context("reading the server's answer")?),
            Err(code) => Err(code),
        },
    )
}

fn show(target: &Target, status: &KeyStatus) -> anyhow::Result<ExitCode> {
    if target.api.json() {
        print_json(&serde_json::to_value(status)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Root key: {} provider, current version {}; {} key(s) still under older versions.",
        status.provider, status.current_version, status.pending
    )?;
    writeln!(
        out,
        "{:>7}  {:<22} {:>8}  {:>12}  {:>12}  state",
        "version", "created", "age (d)", "subject keys", "service keys"
    )?;
    for v in &status.versions {
        let state = match (v.current, v.unused) {
            (true, _) => "current",
            (false, true) => "unused (may be retired)",
            (false, false) => "in use",
        };
        writeln!(
            out,
            "{:>7}  {:<22} {:>8}  {:>12}  {:>12}  {state}",
            v.version,
            v.created_at.as_deref().unwrap_or("-"),
            v.age_days.map_or_else(|| "-".to_owned(), |d| d.to_string()),
            v.subject_keys,
            v.service_keys
        )?;
    }
    if let Some(r) = &status.rotation {
        writeln!(
            out,
            "Rotation to version {}: {} ({} re-wrapped since {}){}",
            r.to_version,
            r.state,
            r.rewrapped,
            r.started_at,
            r.error.as_deref().map(|e| format!("; {e}")).unwrap_or_default()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bar(total: u64) -> crate::progress::Bar {
    let bar = crate::progress::Bar::new("re-wrapping", "keys");
    bar.set_total(total);
    bar
}

async fn rotate_local(target: &Target, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let vault = target.open(dir).await?;
    let log = crate::audit_cmd::OfflineLog::resume(&vault, dir, "the rotation").await?;
    let now = Timestamp::now();
    let before = vault.key_status(now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (version, resumed) = vault
        .begin_rotation(custodia_core::LOCAL_CREATOR, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if resumed {
        eprintln!(
            "Resuming the rotation to version {version}: {} key(s) to go.",
            before.pending
        );
    } else {
        eprintln!("Root key version {version} is in force; re-wrapping every subject key under it.");
    }
    let total: i64 = before.versions.iter().map(|v| v.subject_keys).sum();
    let bar = bar(u64::try_from(total).unwrap_or(0));
    let rewrapped = vault.rewrap_all(|batch| bar.inc(batch.seen)).await;
    bar.finish();
    log.sign(&vault).await?;
    let rewrapped = rewrapped.map_err(|e| anyhow::anyhow!("{e} (run `custodia keys rotate` again to resume)"))?;
    eprintln!("Re-wrapped {rewrapped} subject key(s).");
    let status = vault
        .key_status(Timestamp::now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    show(target, &status)
}

async fn rotate_remote(target: &Target) -> anyhow::Result<ExitCode> {
    let started: KeyStatus = match crate::api_success(
        &target.api.url,
        target.api.token.clone(),
        "POST",
        "/v1/keys/rotate",
        None,
    )
    .await?
    {
        Ok(reply) => serde_json::from_slice(&reply.body).context("reading the server's answer")?,
        Err(code) => return Ok(code),
    };
    let version = started.current_version;
    eprintln!("Root key version {version} is in force; the server re-wraps every key while it serves.");
    let bar = bar(u64::try_from(started.pending).unwrap_or(0));
    let status = loop {
        let status = match fetch_status(target).await? {
            Ok(status) => status,
            Err(code) => return Ok(code),
        };
        let done = u64::try_from(started.pending - status.pending).unwrap_or(0);
        bar.set_position(done);
        match status.rotation.as_ref().map(|r| r.state.as_str()) {
            Some("running") => tokio::time::sleep(Duration::from_millis(200)).await,
            Some("failed") => {
                bar.finish();
                let why = status
                    .rotation
                    .as_ref()
                    .and_then(|r| r.error.clone())
                    .unwrap_or_default();
                anyhow::bail!("the rotation stopped: {why} (run `custodia keys rotate` again to resume)");
            }
            _ => break status,
        }
    };
    bar.finish();
    show(target, &status)
}

/// The data directory's plain root key file (shares are of it; other key sources keep their
/// key elsewhere).
fn key_file(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join(custodia_crypto::KEY_FILE_NAME)
}

fn split(data_dir: &std::path::Path, shares: u8, threshold: u8, remove: bool) -> anyhow::Result<ExitCode> {
    let path = key_file(data_dir);
    let text = custodia_crypto::read_private(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Only a file that loads is split: shares of a damaged file would give it back damaged.
    custodia_crypto::Keyring::load_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parts =
        custodia_crypto::shamir::split(text.as_bytes(), threshold, shares).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    for share in &parts {
        writeln!(out, "{}", share.as_str())?;
    }
    out.flush()?;
    eprintln!(
        "{shares} shares of {}; any {threshold} give it back (`custodia keys combine`). Give each to one person.",
        path.display()
    );
    if remove {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        eprintln!(
            "{} removed: the vault opens once {threshold} people have combined their shares.",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn combine(data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let path = key_file(data_dir);
    anyhow::ensure!(!path.exists(), "{} exists already; nothing to combine", path.display());
    let mut lines = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = zeroize::Zeroizing::new(line?);
        if !line.trim().is_empty() {
            lines.push(line);
        }
    }
    let shares: Vec<&str> = lines.iter().map(|l| l.as_str()).collect();
    let secret = custodia_crypto::shamir::combine(&shares).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = std::str::from_utf8(&secret).context("the combined key file is not text")?;
    custodia_crypto::replace_private(&path, text).map_err(|e| anyhow::anyhow!("{e}"))?;
    custodia_crypto::Keyring::load_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("{} written from {} shares.", path.display(), shares.len());
    Ok(ExitCode::SUCCESS)
}
