//! `custodia scan` and `custodia redact`: the PII scanner on files, directories, standard
//! input and databases. Exit codes: 0 clean (or nothing that `--fail-on` names), 1 findings
//! that `--fail-on` names, 2 errors (bad arguments, unreadable inputs).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use custodia_pii::Scanner;
use custodia_pii::input::Format;
use custodia_pii::redact::{Operator, RedactKey, Redactor};
use custodia_pii::report::{Baseline, OutputFormat, Reporter};
use custodia_pii::walk::{self, Input};

use crate::progress::Bar;

#[derive(Args)]
pub struct ScannerArgs {
    /// Only these entity types (comma-separated Presidio names, e.g. EMAIL_ADDRESS,US_SSN).
    #[arg(long, value_delimiter = ',')]
    entities: Vec<String>,
    /// Findings scoring under this are not reported (0 reports everything).
    #[arg(long, default_value_t = custodia_pii::DEFAULT_MIN_SCORE, allow_negative_numbers = true)]
    min_score: f32,
    /// TOML file of user-defined recognizers (regex, validator, context words); repeatable.
    #[arg(long = "recognizers")]
    recognizers: Vec<PathBuf>,
    /// Countries whose national phone number plans are tried (international numbers with
    /// `+` or `00` are checked against every plan).
    #[arg(long, value_delimiter = ',', default_values_t = custodia_pii::DEFAULT_PHONE_REGIONS.iter().map(|s| s.to_string()))]
    phone_regions: Vec<String>,
    /// Read inputs as this format instead of guessing from the file name:
    /// text, csv, tsv, json, ndjson.
    #[arg(long)]
    input_format: Option<String>,
}

impl ScannerArgs {
    fn build(&self) -> anyhow::Result<Scanner> {
        let mut b = Scanner::builder()
            .min_score(self.min_score)
            .phone_regions(self.phone_regions.clone());
        for r in &self.recognizers {
            b = b.custom_file(r);
        }
        if !self.entities.is_empty() {
            b = b.entities(self.entities.iter().map(|e| e.trim().to_owned()));
        }
        Ok(b.build()?)
    }

    fn format(&self) -> anyhow::Result<Option<Format>> {
        match &self.input_format {
            None => Ok(None),
            Some(f) => Format::parse(f)
                .map(Some)
                .with_context(|| format!("unknown input format `{f}` (text, csv, tsv, json, ndjson)")),
        }
    }
}

#[derive(Args)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively, honouring .gitignore); `-`
    /// is standard input. Default: standard input when it is piped or a file, else `.` (a
    /// terminal, /dev/null).
    paths: Vec<PathBuf>,
    /// table (default on a terminal), json (one finding a line; the default otherwise), sarif,
    /// or github (GitHub Actions annotations on the lines of a pull request).
    #[arg(long)]
    format: Option<String>,
    /// Write at most N findings per file (all are counted; the summary says how many more).
    #[arg(long, value_name = "N")]
    max_per_file: Option<u64>,
    /// Pass over the findings this baseline (`--write-baseline`) knows: a CI gate on new
    /// findings only. Findings are known by file, entity type, place and rank, never by value.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write the fingerprints of this scan's findings (those of --baseline included) to FILE.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Exit with 1 when any finding of these entity types (comma-separated) or `any` is reported.
    #[arg(long, value_delimiter = ',')]
    fail_on: Vec<String>,
    /// Scan files that .gitignore and .ignore files exclude too.
    #[arg(long)]
    no_ignore: bool,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Show progress on standard error (default: when it is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    #[arg(long)]
    no_progress: bool,
    /// List the entity types this scanner knows and exit.
    #[arg(long)]
    list_entities: bool,
    /// Discover personal data in a database instead of files: `sqlite:PATH` or a
    /// `postgres://` URL. Samples rows of every table, classifies each column and prints
    /// registry entries that would bring that data into the vault.
    #[arg(long, conflicts_with_all = ["paths", "fail_on", "baseline", "write_baseline", "max_per_file", "no_ignore"])]
    db: Option<String>,
    /// Rows sampled per table with --db.
    #[arg(long, default_value_t = 100)]
    sample: u32,
    #[command(flatten)]
    scanner: ScannerArgs,
}

fn output_format(arg: Option<&str>) -> anyhow::Result<OutputFormat> {
    Ok(match arg {
        None if std::io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Json,
        Some("table") => OutputFormat::Table,
        Some("json") | Some("jsonl") => OutputFormat::Json,
        Some("sarif") => OutputFormat::Sarif,
        Some("github") => OutputFormat::Github,
        Some(other) => bail!("unknown output format `{other}` (table, json, sarif, github)"),
    })
}

pub async fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let scanner = args.scanner.build()?;
    if args.list_entities {
        let mut out = std::io::stdout().lock();
        for e in scanner.entities() {
            let _ = writeln!(out, "{e}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    for f in &args.fail_on {
        if f != "any" && !scanner.entities().iter().any(|e| **e == **f) {
            bail!("--fail-on names `{f}`, which this scan does not look for (an entity type, or `any`)");
        }
    }
    let format = output_format(args.format.as_deref())?;
    // Off a terminal, `--progress` writes a line at each tenth.
    let shown = |bar: Bar| match (args.progress, args.no_progress) {
        (_, true) => bar.hidden(),
        (true, false) => bar.lines(),
        (false, false) => bar,
    };
    if let Some(url) = &args.db {
        let bar = shown(Bar::new("sampling", "tables"));
        return crate::discover_db::run(&scanner, url, args.sample, format, &bar).await;
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(if stdin_is_piped() { "-" } else { "." })]
    } else {
        args.paths.clone()
    };
    let walk::Collected {
        inputs,
        errors: walk_errors,
        left_out,
    } = walk::collect(&paths, args.no_ignore);
    let input_format = args.scanner.format()?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => std::fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len()),
            Input::Stdin | Input::Passed(..) => None,
        })
        .sum();
    let bar = shown(Bar::bytes("scanning"));
    if total > 0 {
        bar.set_total(total);
    }
    let stdout = std::io::stdout().lock();
    let mut reporter = Reporter::new(std::io::BufWriter::new(stdout), format, args.fail_on.clone());
    if let Some(n) = args.max_per_file {
        reporter = reporter.max_per_file(n);
    }
    if let Some(path) = &args.baseline {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let known = Baseline::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        reporter = reporter.baseline(known);
    }
    if args.write_baseline.is_some() {
        reporter = reporter.record_fingerprints();
    }
    reporter.summary.errors.extend(walk_errors);
    if let Some(note) = left_out_note(&left_out) {
        reporter.summary.notes.push(note);
    }
    let read = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    // the scan is CPU work on its own threads; keep it off the async runtime's workers
    tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            s.spawn(|| follow(&read, &bar, &done));
            walk::scan_all(&scanner, &inputs, input_format, threads, &read, &mut reporter);
            done.store(true, Ordering::Relaxed);
        })
    });
    bar.finish();
    let mut stderr = std::io::stderr().lock();
    let failed_so_far = reporter.failed;
    let (summary, failed) = match reporter.finish(&mut stderr) {
        Ok(r) => r,
        // the reader went away (`| head`): not an error of the scan
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(if failed_so_far {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        Err(e) => return Err(anyhow::Error::new(e).context("writing the report")),
    };
    if let Some(path) = &args.write_baseline {
        std::fs::write(path, Baseline::render(&summary.fingerprints))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "baseline of {} finding(s) written to {}",
            summary.fingerprints.len(),
            path.display()
        );
    }
    Ok(if !summary.errors.is_empty() {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What ignore rules left out of the walk, said in the summary: a file kept out of a
/// repository is not kept out of a scan unsaid (`--no-ignore` reads it).
fn left_out_note(left_out: &[PathBuf]) -> Option<String> {
    const NAMED: usize = 5;
    let (first, more) = (left_out.iter().take(NAMED), left_out.len().saturating_sub(NAMED));
    let named: Vec<String> = first.map(|p| p.display().to_string()).collect();
    (!named.is_empty()).then(|| {
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "{} path(s) left out by .gitignore or .ignore rules, not scanned (--no-ignore scans them): {}{more}",
            left_out.len(),
            named.join(", ")
        )
    })
}

/// Moves the bar with the bytes the scanning threads have read, until they are done.
fn follow(read: &AtomicU64, bar: &Bar, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        bar.set_position(read.load(Ordering::Relaxed));
    }
}

#[derive(Args)]
pub struct RedactArgs {
    /// The file to redact, or `-` for standard input.
    #[arg(default_value = "-")]
    input: PathBuf,
    /// Operator for an entity type, `ENTITY=OP` (repeatable). OP: mask, mask:N (keep the
    /// last N), replace, hash (keyed HMAC), encrypt (AES-256-GCM), keep.
    #[arg(long = "operator", value_name = "ENTITY=OP")]
    operators: Vec<String>,
    /// Operator for every other entity type.
    #[arg(long, default_value = "replace")]
    default: String,
    /// File holding the key (64 hex digits) for hash and encrypt.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Use the key of this dataset (a release, an export), derived from the key and this id
    /// (a-z, 0-9, _): datasets redacted under different ids cannot be joined.
    #[arg(long)]
    key_id: Option<String>,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Decrypt the values `encrypt` wrote instead of redacting.
    #[arg(long)]
    reveal: bool,
    /// Print a new random key (64 hex digits) and exit.
    #[arg(long)]
    new_key: bool,
    #[command(flatten)]
    scanner: ScannerArgs,
}

fn load_key(path: Option<&PathBuf>) -> anyhow::Result<Option<RedactKey>> {
    if let Some(p) = path {
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?);
        return Ok(Some(
            RedactKey::from_hex(&text).with_context(|| format!("key file {}", p.display()))?,
        ));
    }
    match std::env::var("CUSTODIA_REDACT_KEY") {
        Ok(v) => {
            let v = zeroize::Zeroizing::new(v);
            Ok(Some(RedactKey::from_hex(&v).context("CUSTODIA_REDACT_KEY")?))
        }
        Err(_) => Ok(None),
    }
}

pub fn redact(args: RedactArgs) -> anyhow::Result<ExitCode> {
    if args.new_key {
        let _ = writeln!(std::io::stdout().lock(), "{}", RedactKey::generate_hex()?.as_str());
        return Ok(ExitCode::SUCCESS);
    }
    let key = match (load_key(args.key_file.as_ref())?, &args.key_id) {
        (Some(key), Some(id)) => Some(key.for_dataset(id)?),
        (None, Some(_)) => anyhow::bail!("--key-id needs the key (--key-file or CUSTODIA_REDACT_KEY)"),
        (key, None) => key,
    };
    let stdin = args.input.as_os_str() == "-";
    let input = if stdin {
        Input::Stdin
    } else {
        Input::File(args.input.clone())
    };
    // `--out` is written whole or not at all: into a file beside it, renamed at the end
    let mut out = Output::open(args.out.as_deref())?;
    if args.reveal {
        let key = key.context("--reveal needs the key (--key-file or CUSTODIA_REDACT_KEY)")?;
        let data = walk::read_input(&input).with_context(|| format!("reading {}", input.name()))?;
        out.write_all(&custodia_pii::redact::reveal(&data, &key)?)?;
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }
    let scanner = args.scanner.build()?;
    let mut ops = HashMap::new();
    for spec in &args.operators {
        let (entity, op) = spec
            .split_once('=')
            .with_context(|| format!("--operator `{spec}`: write ENTITY=OP"))?;
        if !scanner.entities().iter().any(|e| **e == *entity) {
            bail!("--operator `{spec}`: `{entity}` is not an entity type this scan looks for");
        }
        ops.insert(entity.to_owned(), Operator::parse(op)?);
    }
    let default = Operator::parse(&args.default)?;
    let redactor = Redactor::new(ops, default, key.map(std::sync::Arc::new))?;
    let format = match args.scanner.format()? {
        Some(f) => f,
        None if stdin => Format::Text,
        None => Format::from_path(&args.input),
    };
    let (stats, counts) = if stdin {
        custodia_pii::redact::redact_reader(&scanner, &redactor, std::io::stdin().lock(), format, &mut out)?
    } else {
        let p = &args.input;
        let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        custodia_pii::redact::redact_reader(&scanner, &redactor, f, format, &mut out)?
    };
    out.finish()?;
    let total: u64 = counts.values().sum();
    let detail: Vec<String> = counts.iter().map(|(e, n)| format!("{e} {n}")).collect();
    eprintln!(
        "redacted {total} value(s) in {} bytes{}",
        stats.bytes,
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {}", detail.join(", "))
        }
    );
    if let Some(n) = stats.note {
        eprintln!("note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether standard input is piped or redirected from a file: a terminal, `/dev/null` or a
/// closed input is none (a CI runner's, where `custodia scan --fail-on any` must scan `.`, not
/// pass on an empty input).
fn stdin_is_piped() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    stdin
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
        .is_some_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_socket() || t.is_file()
        })
}

/// Where `redact` writes: standard output, or `--out FILE` written whole or not at all (into
/// a file beside it, renamed over it once everything is written with the permissions of the
/// file it replaces; removed if the run fails, so a failed reveal or redaction never leaves a
/// partial file where the output belongs). A path that is no regular file (`/dev/stdout`, a
/// device, a FIFO, a symbolic link) is written into as it is, never replaced.
enum Output {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    Into(std::io::BufWriter<std::fs::File>),
    File {
        staging: PathBuf,
        path: PathBuf,
        file: std::io::BufWriter<std::fs::File>,
        done: bool,
    },
}

impl Output {
    fn open(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::Stdout(std::io::BufWriter::new(std::io::stdout().lock())));
        };
        let existing = std::fs::symlink_metadata(path).ok();
        if existing.as_ref().is_some_and(|m| !m.file_type().is_file()) {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            return Ok(Self::Into(std::io::BufWriter::new(file)));
        }
        let name = path
            .file_name()
            .with_context(|| format!("--out {}: not a file name", path.display()))?;
        let mut staging_name = std::ffi::OsString::from(".");
        staging_name.push(name);
        staging_name.push(format!(".custodia-{}.tmp", std::process::id()));
        let staging = path.with_file_name(staging_name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .with_context(|| format!("creating {}", path.display()))?;
        if let Some(m) = &existing {
            // (a failure here leaves the staging file's own, the process's default)
            let _ = file.set_permissions(m.permissions());
        }
        Ok(Self::File {
            staging,
            path: path.to_path_buf(),
            file: std::io::BufWriter::new(file),
            done: false,
        })
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(out) => Ok(out.flush()?),
            Self::Into(out) => Ok(out.flush()?),
            Self::File {
                staging,
                path,
                file,
                done,
            } => {
                file.flush()?;
                std::fs::rename(&*staging, &*path).with_context(|| format!("writing {}", path.display()))?;
                *done = true;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write(buf),
            Self::Into(out) => out.write(buf),
            Self::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::Into(out) => out.flush(),
            Self::File { file, .. } => file.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Self::File {
            staging, done: false, ..
        } = self
        {
            let _ = std::fs::remove_file(staging);
        }
    }
}
