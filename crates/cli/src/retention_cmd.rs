//! `custodia retention`: the sweeper run on a data directory (`run`), the review report (on a
//! data directory or through the API), legal holds and subject activity through a running
//! server's API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use custodia_core::{DataDir, SweepOptions, Timestamp};
use custodia_types::{Hold, HoldList, RetentionReport, SweepReport};

use crate::requests_cmd::{ApiArgs, encode};

#[derive(clap::Subcommand)]
pub enum RetentionCommand {
    /// Run the sweeper on a data directory: end the purpose bindings that are due, destroy
    /// what no purpose holds any more, audit each destruction with its rule. On SQLite, stop
    /// the server first (the data directory admits one process; the server's own job sweeps
    /// every 10 minutes). Safe to stop and run again: each batch is one transaction.
    Run(RunArgs),
    /// The retention review report: what is held per field and purpose, what expires within
    /// 30 and 90 days, fields without a purpose, purposes without retention, values held only
    /// by ended bindings, the holds. Through a running server's API, or from a data directory
    /// (`--data-dir`; on SQLite with the server stopped).
    Report {
        /// Read the data directory instead of asking a server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// With --data-dir: use this PostgreSQL database instead of SQLite.
        #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true, requires = "data_dir")]
        database_url: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Place a legal hold on a subject or a collection: nothing it covers is swept, erased or
    /// deleted until it is released.
    Hold {
        #[arg(long, required_unless_present = "collection", conflicts_with = "collection")]
        subject: Option<String>,
        #[arg(long)]
        collection: Option<String>,
        /// Why (a case or matter reference).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The legal holds in force (with --all, released ones too).
    Holds {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Release a legal hold.
    Release {
        hold_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Record that a subject was active (logged in, ordered): what its purposes keep from
    /// its last activity is kept from now. Same as `custodia activity`.
    Activity(ActivityArgs),
}

/// `custodia retention run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long, default_value = "custodia-data", env = "CUSTODIA_DATA_DIR")]
    data_dir: PathBuf,
    /// Use this PostgreSQL database instead of SQLite in the data directory.
    #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Judge and report only; destroy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Evaluate the rules at this instant instead of now (RFC 3339, e.g.
    /// 2031-01-31T00:00:00Z): a rehearsal, or a test with a moved clock. Without --dry-run
    /// it really destroys what is due then.
    #[arg(long)]
    as_of: Option<String>,
    /// Due bindings judged per batch (one transaction each).
    #[arg(long, default_value_t = custodia_core::SWEEP_BATCH, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch: i64,
    #[command(flatten)]
    output: crate::requests_cmd::OutputArgs,
}

/// `custodia activity` / `custodia retention activity`.
#[derive(clap::Args)]
pub struct ActivityArgs {
    subject: String,
    /// The purpose the activity is reported under (the key must be able to write under it).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs a `retention` subcommand.
pub async fn run(action: RetentionCommand) -> anyhow::Result<ExitCode> {
    match action {
        RetentionCommand::Run(args) => sweep(args).await,
        RetentionCommand::Report {
            data_dir: Some(dir),
            database_url,
            api,
        } => {
            // The report rehearses the sweeper, which brings stored expiry times up to date:
            // the store is opened for writing (on SQLite, with the server stopped).
            let vault = DataDir::new(&dir)
                .open(database_url.as_deref())
                .await
                .with_context(|| format!("opening {}", dir.display()))?;
            let report = vault
                .review(Timestamp::now())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if api.json() {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                print_report(&mut std::io::stdout().lock(), &report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RetentionCommand::Report {
            data_dir: None, api, ..
        } => {
            call(&api, "GET", "/v1/retention/report".to_owned(), None, |out, body| {
                let report: RetentionReport = serde_json::from_slice(body).context("reading the server's report")?;
                print_report(out, &report)?;
                Ok(())
            })
            .await
        }
        RetentionCommand::Hold {
            subject,
            collection,
            reason,
            api,
        } => {
            let body = serde_json::to_vec(&custodia_types::NewHold {
                subject_id: subject,
                collection,
                reason,
            })?;
            call(
                &api,
                "POST",
                "/v1/retention/holds".to_owned(),
                Some(body),
                |out, body| {
                    let hold: Hold = serde_json::from_slice(body).context("reading the server's answer")?;
                    print_hold(out, &hold)?;
                    Ok(())
                },
            )
            .await
        }
        RetentionCommand::Holds { all, api } => {
            call(
                &api,
                "GET",
                format!("/v1/retention/holds?all={all}"),
                None,
                |out, body| {
                    let list: HoldList = serde_json::from_slice(body).context("reading the server's list")?;
                    if list.holds.is_empty() {
                        writeln!(out, "no legal holds{}", if all { "" } else { " in force" })?;
                    }
                    for h in &list.holds {
                        print_hold(out, h)?;
                    }
                    Ok(())
                },
            )
            .await
        }
        RetentionCommand::Release { hold_id, reason, api } => {
            let body = serde_json::to_vec(&custodia_types::ReleaseHold { reason })?;
            let path = format!("/v1/retention/holds/{}/release", encode(&hold_id));
            call(&api, "POST", path, Some(body), |out, body| {
                let hold: Hold = serde_json::from_slice(body).context("reading the server's answer")?;
                print_hold(out, &hold)?;
                Ok(())
            })
            .await
        }
        RetentionCommand::Activity(args) => activity(args).await,
    }
}

/// `custodia activity SUBJECT --purpose P`.
pub async fn activity(args: ActivityArgs) -> anyhow::Result<ExitCode> {
    let body = serde_json::to_vec(&custodia_types::ActivityReport { purpose: args.purpose })?;
    let path = format!("/v1/subjects/{}/activity", encode(&args.subject));
    call(&args.api, "POST", path, Some(body), |out, _| {
        writeln!(out, "activity recorded")?;
        Ok(())
    })
    .await
}

/// One API call; prints the answer with `readable` (or as it came with `--json`).
pub(crate) async fn call(
    api: &ApiArgs,
    method: &str,
    path: String,
    body: Option<Vec<u8>>,
    readable: impl FnOnce(&mut dyn Write, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let reply = match crate::api_success(&api.url, api.token.clone(), method, &path, body).await? {
        Ok(reply) => reply,
        Err(code) => return Ok(code),
    };
    let mut stdout = std::io::stdout().lock();
    if api.json() {
        stdout.write_all(&reply.body)?;
        writeln!(stdout)?;
    } else {
        readable(&mut stdout, &reply.body)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// `custodia retention run`.
async fn sweep(args: RunArgs) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now();
    let as_of = match args.as_of.as_deref() {
        None => now,
        Some(text) => {
            Timestamp::parse_rfc3339(text).context("--as-of must be an RFC 3339 time, such as 2031-01-31T00:00:00Z")?
        }
    };
    let opts = SweepOptions {
        as_of,
        now,
        dry_run: args.dry_run,
        batch: args.batch,
    };
    // A dry run destroys nothing, but it too brings stored expiry times up to date with the
    // registry's rules: it opens the store for writing as well.
    let vault = DataDir::new(&args.data_dir)
        .open(args.database_url.as_deref())
        .await
        .with_context(|| format!("opening {}", args.data_dir.display()))?;
    let log = if args.dry_run {
        None
    } else {
        Some(crate::audit_cmd::OfflineLog::resume(&vault, &args.data_dir, "the sweeper").await?)
    };
    let due = vault.due_count(as_of).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Off a terminal too, a line at each tenth: a cron job's log shows how far a killed run got.
    let bar = crate::progress::Bar::new("sweeping", "due bindings judged").lines();
    bar.set_total(due);
    // One sweep at a time over a database: the server nodes' job and this command take the
    // same leadership (on PostgreSQL; SQLite admits one process anyway). Two at once judged
    // the same bindings and one failed on the other's changes.
    let mut judged = |r: &SweepReport| {
        // Every binding judged ends up in one of these counts.
        bar.set_position(
            r.bindings_ended + r.kept_by_hold + r.kept_by_restriction + r.kept_unknown_purpose + r.retimed,
        );
    };
    let sweep = vault.sweep(&opts, &mut judged);
    let led = vault
        .store()
        .exclusively(custodia_server::jobs::RETENTION_JOB, sweep)
        .await;
    bar.finish();
    let result = match led {
        Ok(Some(result)) => result,
        Ok(None) => anyhow::bail!(
            "another server node or `custodia retention run` is sweeping this database now; run again once it is done"
        ),
        Err(e) => Err(e.into()),
    };
    // What was written is signed, a sweep cut short included.
    if let Some(log) = &log {
        log.sign(&vault).await?;
    }
    let report = result.map_err(|e| anyhow::anyhow!("sweeping: {e} (what was done so far is kept; run again)"))?;
    if args.output.json() {
        print_json(&serde_json::to_value(&report)?)?;
    } else {
        print_sweep(&mut std::io::stdout().lock(), &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A sweep report, readable.
fn print_sweep(out: &mut dyn Write, r: &SweepReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{}sweep as of {}",
        if r.dry_run { "dry run (nothing destroyed): " } else { "" },
        r.as_of
    )?;
    writeln!(
        out,
        "  {} ended; {} destroyed; {} destroyed; {} removed with their keys",
        plural(r.bindings_ended, "binding", "bindings"),
        plural(r.values_destroyed, "value", "values"),
        plural(r.records_destroyed, "record", "records"),
        plural(r.subjects_removed, "subject", "subjects"),
    )?;
    if r.tokens_destroyed > 0 {
        writeln!(
            out,
            "  {} destroyed (expired under their purpose's rule)",
            plural(r.tokens_destroyed, "token value", "token values")
        )?;
    }
    if r.kept_by_hold + r.kept_by_restriction + r.kept_unknown_purpose > 0 {
        writeln!(
            out,
            "  kept: {} by a legal hold, {} by a restriction (Art. 18), {} of purposes the registry no longer declares",
            r.kept_by_hold, r.kept_by_restriction, r.kept_unknown_purpose
        )?;
    }
    if r.retimed > 0 {
        writeln!(
            out,
            "  {} not due after all (their times were computed again)",
            plural(r.retimed, "binding", "bindings")
        )?;
    }
    if !r.by_rule.is_empty() {
        writeln!(out, "  by field, purpose and rule:")?;
    }
    for l in &r.by_rule {
        writeln!(
            out,
            "    {}.{}  {}  {}: {} ended, {} destroyed",
            l.collection, l.field, l.purpose, l.rule, l.bindings_ended, l.values_destroyed
        )?;
    }
    if !r.complete {
        writeln!(out, "  the run stopped before every due binding was judged: run again")?;
    }
    Ok(())
}

fn print_hold(out: &mut dyn Write, h: &Hold) -> std::io::Result<()> {
    let on = match (&h.subject_id, &h.collection) {
        (Some(s), _) => format!("subject {s}"),
        (None, Some(c)) => format!("collection {c}"),
        (None, None) => "(nothing)".to_owned(),
    };
    writeln!(
        out,
        "{}  {on}  placed {} by {}: {}",
        h.hold_id, h.created_at, h.created_by, h.reason
    )?;
    if let Some(at) = &h.released_at {
        writeln!(
            out,
            "    released {at} by {}: {}",
            h.released_by.as_deref().unwrap_or("?"),
            h.release_reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// The review report, readable.
fn print_report(out: &mut dyn Write, r: &RetentionReport) -> std::io::Result<()> {
    writeln!(out, "Retention review at {}", r.generated_at)?;
    writeln!(out, "\nHeld, by field (category) and purpose:")?;
    if r.held.is_empty() {
        writeln!(out, "  nothing")?;
    }
    for h in &r.held {
        let ended = if h.ended > 0 {
            format!(" ({} ended by the subject's ledger)", h.ended)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {}.{} ({})  {}  [{}]: {}{ended}",
            h.collection,
            h.field,
            h.category,
            h.purpose,
            h.rule,
            plural(h.values, "value", "values")
        )?;
    }
    for w in &r.expiring {
        let s = &w.sweep;
        writeln!(
            out,
            "\nExpiring within {} days (by {}): {} ended, {} destroyed, {} destroyed, {} removed",
            w.days,
            w.until,
            plural(s.bindings_ended, "binding", "bindings"),
            plural(s.values_destroyed, "value", "values"),
            plural(s.records_destroyed, "record", "records"),
            plural(s.subjects_removed, "subject", "subjects"),
        )?;
        if s.kept_by_hold + s.kept_by_restriction > 0 {
            writeln!(
                out,
                "  kept: {} by a legal hold, {} by a restriction",
                s.kept_by_hold, s.kept_by_restriction
            )?;
        }
        for l in &s.by_rule {
            writeln!(
                out,
                "  {}.{}  {}  {}: {} ended, {} destroyed",
                l.collection, l.field, l.purpose, l.rule, l.bindings_ended, l.values_destroyed
            )?;
        }
    }
    let list = |out: &mut dyn Write, title: &str, items: &[String]| -> std::io::Result<()> {
        writeln!(out, "\n{title}:")?;
        if items.is_empty() {
            writeln!(out, "  none")?;
        }
        for i in items {
            writeln!(out, "  {i}")?;
        }
        Ok(())
    };
    list(
        out,
        "Fields no purpose declares (nothing may be written to them)",
        &r.fields_without_purpose,
    )?;
    list(
        out,
        "Purposes without a retention rule (kept until a withdrawal, objection or erasure)",
        &r.purposes_without_retention,
    )?;
    let lines = |out: &mut dyn Write, title: &str, items: &[custodia_types::HeldLine]| -> std::io::Result<()> {
        writeln!(out, "\n{title}:")?;
        if items.is_empty() {
            writeln!(out, "  none")?;
        }
        for h in items {
            writeln!(
                out,
                "  {}.{}  {}  [{}]: {}",
                h.collection,
                h.field,
                h.purpose,
                h.rule,
                plural(h.values, "value", "values")
            )?;
        }
        Ok(())
    };
    lines(
        out,
        "Held only by ended bindings (a consent withdrawn, an objection, an opt-out; waiting for the sweeper)",
        &r.held_only_by_ended,
    )?;
    lines(
        out,
        "Bound to purposes the registry no longer declares",
        &r.unknown_purposes,
    )?;
    writeln!(out, "\nLegal holds in force:")?;
    if r.holds.is_empty() {
        writeln!(out, "  none")?;
    }
    for h in &r.holds {
        print_hold(out, h)?;
    }
    Ok(())
}
