//! The posture self-assessment: `GET /v1/assessment` (`read_audit`, audited as
//! `assessment.read`), and the parts `custodia assess` shares with it: the checks that look
//! outside the vault (the data directory's permissions, personal data in files beside it or in
//! the server's logs), the report with its score, and its HTML page.
//!
//! The vault's own checks are `custodia_core`'s (`Vault::assessment`, `assess_store`).

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use custodia_core::{
    AssessEnvironment, DEFAULT_BACKUP_MAX_AGE_DAYS, DEFAULT_KEY_MAX_AGE_DAYS, Timestamp, TlsCertificate, TlsFacts,
    VaultError,
};
use custodia_pii::Scanner;
use custodia_pii::input::{Format, Located, Sink, looks_binary, scan_reader};
use custodia_pii::walk::{self, Input};
use custodia_types::{Assessment, AssessmentCheck, ErrorBody, Severity};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiQuery, Caller};
use crate::tls::TlsFiles;
use crate::{ApiError, AppState};

/// Identifier entities looked for outside the vault: the ones a checksum, a number plan or a
/// strict shape makes certain (names, places, dates and network addresses are left out:
/// logs are full of them without any person in sight).
pub const SCANNED_ENTITIES: &[&str] = &[
    "EMAIL_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "US_ITIN",
    "PHONE_NUMBER",
    "UK_NHS",
    "UK_NINO",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
];
/// Findings scoring under this are not reported.
pub const MIN_SCORE: f32 = 0.8;
/// Findings named in the detail; the rest are counted.
const MAX_LISTED: usize = 20;

/// Where the server runs, as `serve` knows it: its data directory and paths to scan besides
/// (its log files).
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub data_dir: Option<PathBuf>,
    pub scan: Vec<PathBuf>,
    /// The certificate files it serves HTTPS with (set by `serve`).
    pub(crate) tls: Option<TlsFiles>,
}

impl Deployment {
    /// A server of the data directory `data_dir` that also scans `scan` (its log files).
    #[must_use]
    pub fn new(data_dir: Option<PathBuf>, scan: Vec<PathBuf>) -> Self {
        Self {
            data_dir,
            scan,
            tls: None,
        }
    }
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/assessment", get(assessment))
}

/// The format of the assessment.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AssessmentQuery {
    /// `json` (default) or `html`.
    #[param(pattern = "^(json|html)$")]
    format: Option<String>,
}

/// The assessment running on this server, if any.
static ASSESSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[utoipa::path(get, path = "/v1/assessment", tag = "operators", params(AssessmentQuery),
    responses((status = 200, description = "The posture self-assessment: scored checks (TLS, the root key, keys, operators, the registry, consents, the audit log, backups, request deadlines, personal data outside the vault), each with its remediation; JSON, or an HTML report with ?format=html",
                content((Assessment = "application/json"), (String = "text/html"))),
              (status = 400, description = "Unknown format", body = ErrorBody),
              (status = 401, description = "No valid credentials", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log (`read_audit`)", body = ErrorBody),
              (status = 429, description = "An assessment is running", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn assessment(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<AssessmentQuery>,
) -> Result<Response, ApiError> {
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => {
            return Err(VaultError::bad_request("invalid_format", "format must be json or html")
                .with_field("format")
                .into());
        }
    };
    // Each run verifies the whole audit log and scans the data directory: one at a time, so
    // that a key with read_audit cannot pile them up.
    let Ok(running) = ASSESSING.try_acquire() else {
        return Err(VaultError::too_many_requests(
            "assessment_running",
            "an assessment is running; ask again when it has finished",
        )
        .into());
    };
    let now = Timestamp::now();
    let deployment = &state.deployment;
    let env = AssessEnvironment {
        data_dir: deployment.data_dir.clone(),
        tls: tls_facts(deployment.data_dir.as_deref(), deployment.tls.as_ref()),
        tls_from_server: true,
        key_max_age_days: DEFAULT_KEY_MAX_AGE_DAYS,
        backup_max_age_days: DEFAULT_BACKUP_MAX_AGE_DAYS,
    };
    let outside = async {
        let checkpoints = state
            .publisher
            .outside(state.vault.store(), &state.vault.audit_verifier_key())
            .await;
        let (dir, scan) = (deployment.data_dir.clone(), deployment.scan.clone());
        // The database files this server holds through SQLite are never opened here: closing
        // a file releases every POSIX lock the process holds on it, SQLite's included, and
        // another process could then checkpoint and delete the log under the server.
        let held: Vec<PathBuf> = match (&dir, state.vault.backend()) {
            (Some(dir), "sqlite") => ["custodia.db", "custodia.db-wal", "custodia.db-shm"]
                .iter()
                .map(|name| dir.join(name))
                .collect(),
            _ => Vec::new(),
        };
        // The permit goes with the scan: it runs on when the caller hangs up, and holds the
        // slot until it is done.
        let checks = tokio::task::spawn_blocking(move || {
            let _running = running;
            outside_checks(dir.as_deref(), &scan, &held)
        })
        .await
        .unwrap_or_else(|e| stopped(&e.to_string()));
        (checkpoints, checks)
    };
    let checks = state.vault.assessment(&caller, now, &env, outside).await?;
    let report = report(checks, now);
    Ok(if html {
        crate::web::page(
            StatusCode::OK,
            "text/html; charset=utf-8",
            render_html(&report, false),
            true,
        )
    } else {
        let mut r = Json(report).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    })
}

/// The checks outside the vault, failed, when their work could not finish.
fn stopped(why: &str) -> Vec<AssessmentCheck> {
    let fail = |id: &str, title: &str| AssessmentCheck {
        id: id.to_owned(),
        title: title.to_owned(),
        passed: false,
        severity: Severity::High,
        detail: format!("the check stopped: {why}"),
        remediation: "Run `custodia assess` on the server's machine to see why.".to_owned(),
    };
    vec![
        fail("data_dir_private", "The data directory is private"),
        fail("pii_outside_vault", "No personal data outside the vault"),
    ]
}

/// A severity named on the command line (`critical`, `high`, `medium`, `low`, `info`).
#[must_use]
pub fn parse_severity(text: &str) -> Option<Severity> {
    Some(match text {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        "info" => Severity::Info,
        _ => return None,
    })
}

/// A severity's name.
#[must_use]
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

/// What a check of a severity weighs in the score.
fn weight(s: Severity) -> u64 {
    match s {
        Severity::Critical => 10,
        Severity::High => 5,
        Severity::Medium => 3,
        Severity::Low => 1,
        Severity::Info => 0,
    }
}

/// The report: the checks with their counts and score (the passed checks' weight over all
/// checks', 0-100; 100 when nothing weighs).
#[must_use]
pub fn report(checks: Vec<AssessmentCheck>, now: Timestamp) -> Assessment {
    let total: u64 = checks.iter().map(|c| weight(c.severity)).sum();
    let passed_weight: u64 = checks.iter().filter(|c| c.passed).map(|c| weight(c.severity)).sum();
    let score = (passed_weight * 100)
        .checked_div(total)
        .map_or(100, |s| u32::try_from(s).unwrap_or(100));
    let passed = checks.iter().filter(|c| c.passed).count();
    Assessment {
        generated_at: now.to_rfc3339(),
        score,
        passed: u32::try_from(passed).unwrap_or(u32::MAX),
        failed: u32::try_from(checks.len() - passed).unwrap_or(u32::MAX),
        checks,
    }
}

/// Whether any failed check is at least `severity` (the CLI's exit code 1).
#[must_use]
pub fn fails_at(report: &Assessment, severity: Severity) -> bool {
    report.checks.iter().any(|c| !c.passed && c.severity >= severity)
}

/// The TLS facts of a server serving with `files` (none: plain HTTP) beside `data_dir`: the
/// pair must load (the key the certificate's), its first certificate is read for its validity
/// and issuer, and the development pair of `init --dev-tls` is named as such.
#[must_use]
pub fn tls_facts(data_dir: Option<&Path>, files: Option<&TlsFiles>) -> TlsFacts {
    let Some(files) = files else {
        return TlsFacts::Off;
    };
    let pair = match crate::tls::load_pair(files) {
        Ok(pair) => pair,
        Err(reason) => return TlsFacts::Broken { reason },
    };
    let fields = match pair
        .end_entity_cert()
        .map_err(|e| e.to_string())
        .and_then(crate::tls::certificate_fields)
    {
        Ok(fields) => fields,
        Err(e) => {
            return TlsFacts::Broken {
                reason: format!("{}: {e}", files.cert.display()),
            };
        }
    };
    let dev = data_dir.is_some_and(|dir| {
        let dev_cert = dir.join("tls").join("cert.pem");
        let same_file = matches!(
            (std::fs::canonicalize(&files.cert), std::fs::canonicalize(&dev_cert)),
            (Ok(a), Ok(b)) if a == b
        );
        same_file || first_certificate(&files.cert).is_some_and(|c| first_certificate(&dev_cert) == Some(c))
    });
    TlsFacts::On(TlsCertificate {
        path: files.cert.display().to_string(),
        dev,
        self_signed: fields.self_signed,
        not_before: fields.not_before,
        not_after: fields.not_after,
    })
}

/// The DER of the first certificate in a PEM file.
fn first_certificate(path: &Path) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .ok()?
        .next()?
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// The checks outside the vault: the data directory's permissions, and personal data in its
/// files (the database read as strings) and in `scan`. Blocking: it reads every file but
/// those of `held` (the database files the calling process holds open through SQLite, which
/// it must never open and close itself: `custodia assess`, another process, reads them).
#[must_use]
pub fn outside_checks(data_dir: Option<&Path>, scan: &[PathBuf], held: &[PathBuf]) -> Vec<AssessmentCheck> {
    vec![data_dir_private(data_dir), pii_outside_vault(data_dir, scan, held)]
}

fn data_dir_private(data_dir: Option<&Path>) -> AssessmentCheck {
    let (passed, detail, fix) = match data_dir {
        None => (
            false,
            "the data directory is not known to this server".to_owned(),
            "Run `custodia assess --data-dir DATA_DIR` on the server's machine.".to_owned(),
        ),
        Some(dir) => {
            let fix = format!("`chmod 700 {0} && chmod -R go= {0}`", dir.display());
            match loose_permissions(dir) {
                Err(e) => (false, format!("the permissions could not be read: {e}"), fix),
                Ok(loose) if loose.is_empty() => (
                    true,
                    format!("{} and everything in it is private to its owner", dir.display()),
                    fix,
                ),
                Ok(loose) => (
                    false,
                    format!("{} entries others may read or write: {}", loose.len(), listed(&loose)),
                    fix,
                ),
            }
        }
    };
    AssessmentCheck {
        id: "data_dir_private".to_owned(),
        title: "The data directory is private (0700, files 0600)".to_owned(),
        passed,
        severity: Severity::High,
        detail,
        remediation: fix,
    }
}

/// Files of the data directory that are public by design: readable by others is fine.
fn public_file(relative: &Path) -> bool {
    relative == Path::new(custodia_core::REGISTRY_FILE)
        || locale_file(relative)
        || relative == Path::new("tls").join("cert.pem")
}

/// A locale file of the notice's words (`locales/<language>.toml`): published on purpose.
fn locale_file(relative: &Path) -> bool {
    relative.parent() == Some(Path::new("locales")) && relative.extension().is_some_and(|e| e == "toml")
}

/// Entries of `dir` (itself included) that group or others may enter, read or write; a
/// public file (the registry, the certificate) may be read.
#[cfg(unix)]
fn loose_permissions(dir: &Path) -> std::io::Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        let name = if relative.as_os_str().is_empty() {
            dir.display().to_string()
        } else {
            relative.display().to_string()
        };
        if meta.is_dir() {
            if mode & 0o077 != 0 {
                out.push(format!("{name} (directory, mode {mode:o})"));
            }
            let mut children: Vec<PathBuf> = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            children.sort();
            stack.extend(children.into_iter().rev());
        } else if meta.is_file() {
            let allowed = if public_file(relative) { 0o044 } else { 0 };
            if mode & 0o077 & !allowed != 0 {
                out.push(format!("{name} (mode {mode:o})"));
            }
        } else {
            // A link, a FIFO, a socket: nothing of the vault's; what it leads to is neither
            // checked nor scanned.
            out.push(format!("{name} (not a regular file or directory)"));
        }
    }
    Ok(out)
}

#[cfg(not(unix))]
fn loose_permissions(_dir: &Path) -> std::io::Result<Vec<String>> {
    Err(std::io::Error::other("file modes are checked on Unix only"))
}

/// A finding for the detail: where, and of what type; never the text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    file: String,
    /// `line N` (text) or `byte N` (binary files, read as strings).
    at: String,
    entity: String,
}

/// A matched text reduced to compare with the public ones: letters and digits (lower case)
/// and `@`, so `+44 20 7946 0000` and `+442079460000` are one.
fn normalized(text: &[u8]) -> String {
    text.iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'@')
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

/// Collects one input's findings that are not public, by place; the text is compared with
/// the public set and dropped.
struct Findings<'a> {
    public: &'a HashSet<String>,
    /// Whether each finding of the last block was public, in order.
    pending: VecDeque<bool>,
    binary: bool,
    found: Vec<(String, String)>,
}

impl Sink for Findings<'_> {
    fn block(&mut self, bytes: &[u8], found: &[custodia_pii::Finding], _: &[(usize, usize)]) -> std::io::Result<()> {
        self.pending.clear();
        for f in found {
            let text = bytes.get(f.start..f.end).unwrap_or_default();
            self.pending.push_back(self.public.contains(&normalized(text)));
        }
        Ok(())
    }

    fn findings(&mut self, found: Vec<Located>) -> std::io::Result<()> {
        for l in found {
            if self.pending.pop_front().unwrap_or(false) {
                continue;
            }
            let at = if self.binary {
                format!("byte {}", l.finding.start)
            } else {
                format!("line {}", l.line)
            };
            self.found.push((at, l.finding.entity_type.to_string()));
        }
        Ok(())
    }
}

/// A binary file as text: every byte that is not printable ASCII (or a tab) becomes a line
/// break, so the strings in it are scanned where they are (offsets stay the file's).
struct Strings<R>(R);

impl<R: Read> Read for Strings<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        for b in buf.iter_mut().take(n) {
            if !(b.is_ascii_graphic() || *b == b' ' || *b == b'\t') {
                *b = b'\n';
            }
        }
        Ok(n)
    }
}

fn scanner() -> Result<Scanner, String> {
    Scanner::builder()
        .entities(SCANNED_ENTITIES.iter().copied())
        .min_score(MIN_SCORE)
        .build()
        .map_err(|e| e.to_string())
}

/// What the privacy notice, the record of processing and the pages publish on purpose (the
/// organisation's contact, the DPO, recipients): no finding, wherever it is (the registry, the
/// notices the database keeps, a log). Only what they publish: the notice and the record as
/// the registry builds them in the words of its language, and the values of that language's
/// file. A comment in the registry or a locale file, or a value nothing publishes, is scanned
/// like any other text.
fn public_texts(scanner: &Scanner, data_dir: &Path) -> HashSet<String> {
    let published = published_values(data_dir).join("\n");
    scanner
        .scan(published.as_bytes())
        .iter()
        .map(|f| normalized(published.as_bytes().get(f.start..f.end).unwrap_or_default()))
        .collect()
}

/// The values [`public_texts`] looks in. A registry or a locale that does not load publishes
/// nothing (`serve` refuses them), so its files are then scanned whole.
fn published_values(data_dir: &Path) -> Vec<String> {
    use custodia_transparency::{Locale, Notice, Ropa};
    let mut values = Vec::new();
    let Ok(registry) = custodia_registry::Registry::load(&data_dir.join(custodia_core::REGISTRY_FILE)) else {
        return values;
    };
    let language = &registry.organization.language;
    let Ok(locale) = Locale::load(data_dir, language) else {
        return values;
    };
    let notice = Notice::build(&registry, &locale);
    let ropa = Ropa::build(&registry, &notice.version);
    for document in [serde_json::to_value(&notice), serde_json::to_value(&ropa)]
        .into_iter()
        .flatten()
    {
        json_strings(&document, &mut values);
    }
    // Every value of the language's file is shown on a page (notice, preference center,
    // receipt): the file loaded as a locale, so it has no key that is not.
    if let Ok(text) = std::fs::read_to_string(Locale::path(data_dir, language))
        && let Ok(words) = text.parse::<toml::Table>()
    {
        toml_strings(&toml::Value::Table(words), &mut values);
    }
    values
}

fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

fn toml_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| toml_strings(v, out)),
        toml::Value::Table(fields) => fields.values().for_each(|v| toml_strings(v, out)),
        _ => {}
    }
}

/// Scans one file (text as text, binary as its strings); the findings that are not public.
fn scan_file(scanner: &Scanner, public: &HashSet<String>, path: &Path) -> Result<Vec<(String, String)>, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(fail)?;
    let mut head = vec![0u8; 8192];
    let n = file.read(&mut head).map_err(fail)?;
    head.truncate(n);
    let binary = !head.starts_with(&[0x1f, 0x8b]) && looks_binary(&head);
    let rest = std::io::Cursor::new(head).chain(file);
    let mut sink = Findings {
        public,
        pending: VecDeque::new(),
        binary,
        found: Vec::new(),
    };
    let scanned = if binary {
        scan_reader(scanner, Strings(rest), Format::Text, &mut sink)
    } else {
        scan_reader(scanner, rest, Format::from_path(path), &mut sink)
    };
    scanned.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(sink.found)
}

fn pii_outside_vault(data_dir: Option<&Path>, scan: &[PathBuf], held: &[PathBuf]) -> AssessmentCheck {
    let (passed, mut detail) = match scan_outside(data_dir, scan, held) {
        Err(e) => (false, e),
        Ok((files, places, errors)) if places.is_empty() && errors.is_empty() => (
            true,
            format!(
                "{files} files scanned (the database as strings) for {}: nothing outside what the privacy notice publishes",
                SCANNED_ENTITIES.join(", ")
            ),
        ),
        Ok((files, places, errors)) => {
            let mut parts = Vec::new();
            if !places.is_empty() {
                let shown: Vec<String> = places
                    .iter()
                    .map(|p| format!("{} {}: {}", p.file, p.at, p.entity))
                    .collect();
                parts.push(format!(
                    "{} findings in {files} files scanned: {}",
                    places.len(),
                    listed(&shown)
                ));
            }
            if !errors.is_empty() {
                parts.push(format!("could not be scanned: {}", listed(&errors)));
            }
            (false, parts.join("; "))
        }
    };
    if !held.is_empty() {
        detail.push_str(
            " (the server's own database files are not read by it: `custodia assess` on its machine reads them)",
        );
    }
    AssessmentCheck {
        id: "pii_outside_vault".to_owned(),
        title: "No personal data outside the vault".to_owned(),
        passed,
        severity: Severity::High,
        detail,
        remediation: "Delete or redact the listed files (`custodia redact FILE`; in the registry or a locale file, remove what the notice does not publish, comments included), and stop what wrote personal data there (log levels, exports, copies); scan again with `custodia assess --scan PATH`.".to_owned(),
    }
}

/// Scans the data directory and `scan`: how many files, the findings by place, and what
/// could not be read.
fn scan_outside(
    data_dir: Option<&Path>,
    scan: &[PathBuf],
    held: &[PathBuf],
) -> Result<(usize, BTreeSet<Place>, Vec<String>), String> {
    // the same file however it is named (a link, another path to the directory)
    let identity = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    };
    let held: Vec<(u64, u64)> = held.iter().filter_map(|p| identity(p)).collect();
    let dir = data_dir.ok_or_else(|| "the data directory is not known to this server".to_owned())?;
    let scanner = scanner()?;
    let public = public_texts(&scanner, dir);
    let mut roots = vec![dir.to_path_buf()];
    roots.extend(scan.iter().cloned());
    // A path named to be scanned that is no file or directory (a FIFO, a device) is not
    // scanned, and says so.
    let mut unscannable: Vec<String> = scan
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()))
        .map(|p| format!("{}: not a regular file or a directory", p.display()))
        .collect();
    // (no ignore rules: nothing is left out)
    let walk::Collected { inputs, mut errors, .. } = walk::collect(&roots, true);
    errors.append(&mut unscannable);
    let mut places = BTreeSet::new();
    let mut files = 0;
    for input in inputs {
        let Input::File(path) = input else { continue };
        // (named paths that are no file are reported above, never read: a FIFO blocks)
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) || identity(&path).is_some_and(|id| held.contains(&id))
        {
            continue;
        }
        let relative = path.strip_prefix(dir).ok();
        files += 1;
        let name = relative.map_or_else(|| path.display().to_string(), |r| r.display().to_string());
        let shown = shown_name(&scanner, &public, &name, files);
        match scan_file(&scanner, &public, &path) {
            Ok(found) => places.extend(found.into_iter().map(|(at, entity)| Place {
                file: shown.clone(),
                at,
                entity,
            })),
            Err(e) => errors.push(e),
        }
    }
    Ok((files, places, errors))
}

/// A file's name as a report shows it: withheld when the name itself holds personal data
/// (an export named after a customer), escaped when it holds control characters.
fn shown_name(scanner: &Scanner, public: &HashSet<String>, name: &str, n: usize) -> String {
    let personal = scanner
        .scan(name.as_bytes())
        .iter()
        .any(|f| !public.contains(&normalized(name.as_bytes().get(f.start..f.end).unwrap_or_default())));
    if personal {
        format!("[file {n}: its name holds personal data]")
    } else {
        name.escape_debug().to_string()
    }
}

fn listed(items: &[String]) -> String {
    let mut out = items.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    out
}

/// Escapes text for HTML (element content and quoted attributes).
fn escape(text: &str) -> String {
    crate::package::esc(text)
}

/// The report as a page: plain semantic HTML, every text escaped, no script. The server links
/// its stylesheet (its Content-Security-Policy allows only its own); a file written by the CLI
/// carries it inline (`inline_style`), as no server is there to serve it.
#[must_use]
pub fn render_html(report: &Assessment, inline_style: bool) -> String {
    let style = if inline_style {
        format!("<style>\n{}</style>", custodia_transparency::html::STYLESHEET)
    } else {
        "<link rel=\"stylesheet\" href=\"/assets/custodia.css\">".to_owned()
    };
    let mut rows = String::new();
    let mut ordered: Vec<&AssessmentCheck> = report.checks.iter().collect();
    // Failures first, the gravest first; passes after, in their order.
    ordered.sort_by_key(|c| {
        (
            c.passed,
            std::cmp::Reverse(if c.passed { Severity::Info } else { c.severity }),
        )
    });
    for c in ordered {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><strong>{}</strong><br><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
            if c.passed { "PASS" } else { "<strong>FAIL</strong>" },
            severity_name(c.severity),
            escape(&c.title),
            escape(&c.id),
            escape(&c.detail),
            escape(&c.remediation),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>Custodia posture self-assessment</title>\n{style}\n</head>\n<body>\n<main>\n<h1>Posture self-assessment</h1>\n<p class=\"status\">Score <strong>{}</strong> of 100: {} checks passed, {} failed.</p>\n<p class=\"muted\">Generated {}. Each failed check names what fixes it.</p>\n<table>\n<thead><tr><th>Result</th><th>Severity</th><th>Check</th><th>Found</th><th>Remediation</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n</main>\n</body>\n</html>\n",
        report.score,
        report.passed,
        report.failed,
        escape(&report.generated_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, passed: bool, severity: Severity) -> AssessmentCheck {
        AssessmentCheck {
            id: id.into(),
            title: format!("<{id}>"),
            passed,
            severity,
            detail: "a \"detail\" & more".into(),
            remediation: "fix it".into(),
        }
    }

    #[test]
    fn file_names_holding_personal_data_are_withheld_and_control_characters_escaped() {
        let scanner = scanner().unwrap();
        let public: HashSet<String> = [normalized(b"privacy@shop.example")].into_iter().collect();
        let withheld = shown_name(&scanner, &public, "exports/eve.z@mail.example.csv", 7);
        assert_eq!(withheld, "[file 7: its name holds personal data]");
        assert_eq!(
            shown_name(&scanner, &public, "exports/orders-2026.csv", 1),
            "exports/orders-2026.csv"
        );
        // What the notice publishes may name a file.
        assert_eq!(
            shown_name(&scanner, &public, "privacy@shop.example", 1),
            "privacy@shop.example"
        );
        assert_eq!(
            shown_name(&scanner, &public, "bad\u{1b}[2Jname.log", 2),
            "bad\\u{1b}[2Jname.log"
        );
    }

    /// The pair in `dir` as `name.pem` and `name.key`.
    fn pair_files(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    fn named(cn: &str) -> rcgen::DistinguishedName {
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, cn);
        name
    }

    /// What a reviewer found: a self-signed EC certificate valid only in January 2020 passed
    /// the TLS checks, its dates and issuer never read. They are now, by webpki.
    #[test]
    fn a_certificates_validity_and_issuer_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 2, 1);
        let expired = params.self_signed(&key).unwrap();
        let files = pair_files(dir.path(), "c2", &expired, &key);
        let TlsFacts::On(c) = tls_facts(Some(dir.path()), Some(&files)) else {
            panic!("the pair loads");
        };
        assert!(c.self_signed && !c.dev);
        assert_eq!((c.not_before, c.not_after), (1_577_836_800_000, 1_580_515_200_000));

        // Issued by a CA: not its own issuer.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name = named("Custodia test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["vault.example".to_owned()]).unwrap();
        leaf.distinguished_name = named("vault.example");
        leaf.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let files = pair_files(dir.path(), "vault", &leaf, &leaf_key);
        let TlsFacts::On(c) = tls_facts(Some(dir.path()), Some(&files)) else {
            panic!("the pair loads");
        };
        assert!(!c.self_signed);
        assert_eq!(c.not_after, 2_208_988_800_000);

        // A key that is not the certificate's is no usable pair.
        let mixed = TlsFiles {
            cert: dir.path().join("vault.pem"),
            key: dir.path().join("c2.key"),
        };
        let TlsFacts::Broken { reason } = tls_facts(Some(dir.path()), Some(&mixed)) else {
            panic!("a mismatched pair loads");
        };
        assert!(reason.contains("does not go with"), "{reason}");
        // Not a certificate at all.
        std::fs::write(
            dir.path().join("junk.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let junk = TlsFiles {
            cert: dir.path().join("junk.pem"),
            key: dir.path().join("c2.key"),
        };
        assert!(matches!(tls_facts(None, Some(&junk)), TlsFacts::Broken { .. }));
    }

    #[test]
    fn only_locale_toml_files_are_public() {
        assert!(locale_file(Path::new("locales/de.toml")));
        assert!(!locale_file(Path::new("locales/dump.csv")));
        assert!(!locale_file(Path::new("locales/x/de.toml")));
    }

    #[test]
    fn the_score_weighs_checks_by_severity() {
        let r = report(
            vec![
                check("a", true, Severity::Critical),
                check("b", false, Severity::High),
                check("c", true, Severity::Medium),
                check("d", false, Severity::Info),
            ],
            Timestamp(0),
        );
        // (10 + 3) / (10 + 5 + 3 + 0)
        assert_eq!((r.score, r.passed, r.failed), (72, 2, 2));
        assert!(fails_at(&r, Severity::High) && !fails_at(&r, Severity::Critical));
        assert!(fails_at(&r, Severity::Info));
        assert_eq!(report(vec![], Timestamp(0)).score, 100);
        assert_eq!(parse_severity("medium"), Some(Severity::Medium));
        assert_eq!(parse_severity("severe"), None);
    }

    #[test]
    fn the_page_escapes_every_text_and_has_no_script() {
        let r = report(vec![check("x<script>", false, Severity::High)], Timestamp(0));
        let page = render_html(&r, false);
        assert!(!page.contains("<script") && page.contains("&lt;script&gt;"));
        assert!(page.contains("&quot;detail&quot; &amp; more"));
        assert!(page.contains("/assets/custodia.css") && !page.contains("<style>"));
        assert!(render_html(&r, true).contains("<style>"));
    }

    #[test]
    fn findings_name_file_line_and_type_never_the_text_and_skip_public_texts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The example registry: its contact is privacy@shop.example.
        std::fs::write(
            d.join(custodia_core::REGISTRY_FILE),
            custodia_registry::EXAMPLE_REGISTRY,
        )
        .unwrap();
        std::fs::write(
            d.join("notes.txt"),
            "first line\nwrite to jane.roe@mail.example or privacy@shop.example\ncard 4111 1111 1111 1111\n",
        )
        .unwrap();
        // A binary file: strings among other bytes, found by offset.
        let mut db = vec![0u8, 1, 2, 3];
        db.extend_from_slice(b"PRIVACY@shop.example\x00\x07bob.smith@mail.example\x00");
        std::fs::write(d.join("custodia.db"), &db).unwrap();
        let c = pii_outside_vault(Some(d), &[], &[]);
        assert!(!c.passed);
        assert!(c.detail.contains("notes.txt line 2: EMAIL_ADDRESS"), "{}", c.detail);
        assert!(c.detail.contains("notes.txt line 3: CREDIT_CARD"), "{}", c.detail);
        assert!(c.detail.contains("custodia.db byte 26: EMAIL_ADDRESS"), "{}", c.detail);
        assert!(c.detail.contains("3 findings"), "{}", c.detail);
        // the database a server holds through SQLite is never opened by it (closing it would
        // release the server's locks), however it is named
        std::os::unix::fs::symlink(d.join("custodia.db"), d.join("alias.db")).unwrap();
        let held = pii_outside_vault(Some(d), &[], &[d.join("alias.db")]);
        assert!(!held.detail.contains("custodia.db byte"), "{}", held.detail);
        assert!(
            held.detail.contains("2 findings") && held.detail.contains("not read by it"),
            "{}",
            held.detail
        );
        std::fs::remove_file(d.join("alias.db")).unwrap();
        for secret in ["jane", "bob", "4111", "shop.example"] {
            assert!(!c.detail.contains(secret), "{secret} in {}", c.detail);
        }
        std::fs::remove_file(d.join("notes.txt")).unwrap();
        std::fs::remove_file(d.join("custodia.db")).unwrap();
        let c = pii_outside_vault(Some(d), &[], &[]);
        assert!(c.passed, "{}", c.detail);
        // A path to scan that is not there fails the check (fail closed).
        assert!(!pii_outside_vault(Some(d), &[d.join("missing.log")], &[]).passed);
    }

    /// What a reviewer found: the registry and the locale files were not scanned at all, and
    /// whatever they held was exempt everywhere, so a customer's details in a comment there
    /// passed. Only what the notice, the record and the pages publish is exempt now.
    #[test]
    fn personal_data_in_registry_and_locale_comments_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let planted = "# Customer John Smith, john.smith@gmail.com, phone +44 20 7946 0123, card 4111 1111 1111 1111";
        let registry = format!("{}\n{planted}\n", custodia_registry::EXAMPLE_REGISTRY);
        std::fs::write(d.join(custodia_core::REGISTRY_FILE), &registry).unwrap();
        std::fs::create_dir(d.join("locales")).unwrap();
        // The words of the registry's language: a value shown on a page is published, a
        // comment is not.
        let words = format!(
            "{}\n{planted}\n",
            custodia_transparency::locale::ENGLISH.replacen(
                "title = \"Privacy notice\"",
                "title = \"Privacy notice (write to help@shop.example)\"",
                1
            )
        );
        std::fs::write(d.join("locales/en.toml"), &words).unwrap();
        // Another language's file, not shown: nothing in it is published.
        std::fs::write(d.join("locales/de.toml"), format!("{planted}\n")).unwrap();
        let line = |text: &str| text.lines().position(|l| l == planted).unwrap() + 1;
        let c = pii_outside_vault(Some(d), &[], &[]);
        assert!(!c.passed);
        for (file, at) in [
            ("registry.toml", line(&registry)),
            ("locales/en.toml", line(&words)),
            ("locales/de.toml", 1),
        ] {
            for entity in ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"] {
                let place = format!("{file} line {at}: {entity}");
                assert!(c.detail.contains(&place), "{place} not in {}", c.detail);
            }
        }
        // The registry's contact and DPO, and the address the words show, are no finding.
        assert!(c.detail.contains("9 findings"), "{}", c.detail);
        for secret in ["john", "gmail", "7946", "4111", "shop.example"] {
            assert!(!c.detail.contains(secret), "{secret} in {}", c.detail);
        }
    }

    #[test]
    fn digests_keys_and_certificates_are_not_findings() {
        // What a data directory holds besides the database: hex digests (the tombstone log),
        // base64 keys and notes (root key, checkpoint log), PEM certificates.
        let scanner = scanner().unwrap();
        let mut text = String::new();
        let sha256 = |b: &[u8]| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
                .as_ref()
                .to_vec()
        };
        for i in 0u32..20_000 {
            let digest = sha256(&i.to_be_bytes());
            text.push_str(&hex::encode(&digest));
            text.push(' ');
            use base64::Engine;
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(sha256(&digest)));
            text.push('\n');
        }
        let found = scanner.scan(text.as_bytes());
        assert!(found.is_empty(), "{:?}", found.first());
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_and_directories_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        mode(d, 0o700);
        std::fs::write(d.join(custodia_core::REGISTRY_FILE), "").unwrap();
        mode(&d.join(custodia_core::REGISTRY_FILE), 0o644);
        std::fs::write(d.join("custodia.db"), "").unwrap();
        mode(&d.join("custodia.db"), 0o600);
        assert!(data_dir_private(Some(d)).passed, "{}", data_dir_private(Some(d)).detail);
        mode(&d.join("custodia.db"), 0o640);
        mode(&d.join(custodia_core::REGISTRY_FILE), 0o664);
        std::fs::create_dir(d.join("policies")).unwrap();
        mode(&d.join("policies"), 0o755);
        let c = data_dir_private(Some(d));
        assert!(!c.passed);
        assert!(c.detail.contains("custodia.db (mode 640)"), "{}", c.detail);
        assert!(c.detail.contains("registry.toml (mode 664)"), "{}", c.detail);
        assert!(c.detail.contains("policies (directory, mode 755)"), "{}", c.detail);
        assert!(c.remediation.contains("chmod -R go="));
        // A link out of the directory is named, not followed.
        std::os::unix::fs::symlink("/etc/hostname", d.join("exports.csv")).unwrap();
        let c = data_dir_private(Some(d));
        assert!(
            c.detail.contains("exports.csv (not a regular file or directory)"),
            "{}",
            c.detail
        );
    }
}
