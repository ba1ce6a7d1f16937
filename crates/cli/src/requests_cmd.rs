//! `custodia requests`: the data subject request work queue through a running server's API,
//! and `custodia receipt verify`: checking an erasure receipt offline.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use custodia_core::VerifierKey;
use custodia_types::{ErasureReceipt, SubjectRequestList, SubjectRequestView};

use crate::http_client::Reply;

/// Where the server is and who asks.
/// The environment variable every command that talks to a server reads its address from,
/// as `VAULT_ADDR` is for Vault and OpenBao (`--url` overrides it).
pub const ADDR_ENV: &str = "CUSTODIA_ADDR";
/// The address `custodia serve` listens on by default.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

#[derive(clap::Args)]
pub struct ApiArgs {
    /// The server's base URL.
    #[arg(long, global = true, default_value = crate::requests_cmd::DEFAULT_ADDR, env = crate::requests_cmd::ADDR_ENV)]
    pub url: String,
    /// An API key (default: custodia-data/admin-token).
    #[arg(long, global = true, env = "CUSTODIA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--output table|json` (and `--json`, and `CUSTODIA_OUTPUT`): every command that reads
/// takes them.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// `table` (default): a readable summary; `json`: JSON (a server's answer as it came),
    /// for scripts and `jq`.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table, env = OUTPUT_ENV)]
    output: Output,
    /// Same as `--output json`.
    #[arg(long, global = true)]
    json: bool,
}

impl OutputArgs {
    /// Whether to print JSON (`--output json` or `--json`).
    pub fn json(&self) -> bool {
        self.json || self.output == Output::Json
    }
}

/// How a command that reads prints its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A readable summary.
    #[default]
    Table,
    /// The server's JSON, unchanged.
    Json,
}

/// The environment variable that sets `--output` for every command.
pub const OUTPUT_ENV: &str = "CUSTODIA_OUTPUT";

impl ApiArgs {
    /// Whether to print the server's JSON (`--output json` or `--json`).
    pub fn json(&self) -> bool {
        self.output.json()
    }
}

#[derive(clap::Subcommand)]
pub enum RequestsCommand {
    /// The work queue: open requests (or those in `--status`), soonest due first.
    List {
        /// `open` (default) or one status: received, verifying, in_progress, extended,
        /// completed, denied.
        #[arg(long)]
        status: Option<String>,
        /// Only those due before this time (RFC 3339).
        #[arg(long)]
        due_before: Option<String>,
    },
    /// Open a request.
    Create {
        #[arg(long)]
        subject: String,
        /// access, portability, rectification, erasure, restriction, objection, opt_out_sale,
        /// limit_sensitive.
        #[arg(long = "type")]
        kind: String,
        /// gdpr, ccpa, or one the registry adds.
        #[arg(long)]
        jurisdiction: String,
        /// web_form, email, phone, toll_free, mail, in_person, portal, api.
        #[arg(long)]
        received_via: Option<String>,
        /// When it was received (RFC 3339; default: now).
        #[arg(long)]
        received_at: Option<String>,
        /// How you verified the requester's identity (records the verification).
        #[arg(long)]
        verified_by: Option<String>,
    },
    /// One request.
    Show { request_id: String },
    /// Record how the requester's identity was verified.
    Verify {
        request_id: String,
        /// How (e.g. "signed-in account", "ID document checked").
        #[arg(long)]
        by: String,
        /// Verification has started, not finished (status `verifying`).
        #[arg(long)]
        pending: bool,
    },
    /// Extend the deadline once, with the reason told to the requester.
    Extend {
        request_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Deny a request, with the reason told to the requester.
    Deny {
        request_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Carry a request out. Access/portability: the package (to --out or standard output);
    /// erasure: the signed receipt; rectification: --correct COLLECTION/RECORD/FIELD=VALUE.
    Fulfil {
        request_id: String,
        /// Access/portability package format: json or html.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write the package or receipt here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A corrected value: `collection/record_id/field=value` (repeat).
        #[arg(long = "correct")]
        corrections: Vec<String>,
        /// Objection: a purpose objected to (repeat; default: every one an objection applies to).
        #[arg(long = "purpose")]
        purposes: Vec<String>,
    },
}

/// Runs a `requests` subcommand against the server.
pub async fn run(action: RequestsCommand, api: ApiArgs) -> anyhow::Result<ExitCode> {
    let (method, path, body) = match &action {
        RequestsCommand::List { status, due_before } => {
            let mut query = Vec::new();
            if let Some(s) = status {
                query.push(format!("status={}", encode(s)));
            }
            if let Some(d) = due_before {
                query.push(format!("due_before={}", encode(d)));
            }
            let q = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            ("GET", format!("/v1/requests{q}"), None)
        }
        RequestsCommand::Create {
            subject,
            kind,
            jurisdiction,
            received_via,
            received_at,
            verified_by,
        } => (
            "POST",
            "/v1/requests".to_owned(),
            Some(serde_json::to_vec(&custodia_types::NewSubjectRequest {
                subject_id: subject.clone(),
                kind: kind.clone(),
                jurisdiction: jurisdiction.clone(),
                received_via: received_via.clone(),
                received_at: received_at.clone(),
                verified_by: verified_by.clone(),
            })?),
        ),
        RequestsCommand::Show { request_id } => ("GET", format!("/v1/requests/{}", encode(request_id)), None),
        RequestsCommand::Verify {
            request_id,
            by,
            pending,
        } => (
            "POST",
            format!("/v1/requests/{}/verify", encode(request_id)),
            Some(serde_json::to_vec(&custodia_types::VerifyRequest {
                verified_by: by.clone(),
                pending: *pending,
            })?),
        ),
        RequestsCommand::Extend { request_id, reason } | RequestsCommand::Deny { request_id, reason } => {
            let step = if matches!(action, RequestsCommand::Extend { .. }) {
                "extend"
            } else {
                "deny"
            };
            (
                "POST",
                format!("/v1/requests/{}/{step}", encode(request_id)),
                Some(serde_json::to_vec(&custodia_types::ReasonRequest {
                    reason: reason.clone(),
                })?),
            )
        }
        RequestsCommand::Fulfil {
            request_id,
            format,
            corrections,
            purposes,
            ..
        } => (
            "POST",
            format!("/v1/requests/{}/fulfil?format={}", encode(request_id), encode(format)),
            Some(serde_json::to_vec(&custodia_types::FulfilRequest {
                corrections: parse_corrections(corrections)?,
                purposes: (!purposes.is_empty()).then(|| purposes.clone()),
            })?),
        ),
    };
    let json = api.json();
    let reply = match crate::api_success(&api.url, api.token, method, &path, body).await? {
        Ok(reply) => reply,
        Err(code) => return Ok(code),
    };
    if let RequestsCommand::Fulfil { out: Some(path), .. } = &action {
        crate::write_private(path, &reply.body)?;
        eprintln!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    print_reply(&action, &reply, json)?;
    Ok(ExitCode::SUCCESS)
}

/// The server's answer, readable (or as it came with `--json`, and always for a package).
fn print_reply(action: &RequestsCommand, reply: &Reply, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let raw = || -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&reply.body)?;
        writeln!(stdout)?;
        Ok(())
    };
    if json {
        return raw();
    }
    match action {
        RequestsCommand::List { .. } => {
            let list: SubjectRequestList = serde_json::from_slice(&reply.body).context("reading the server's list")?;
            if list.requests.is_empty() {
                writeln!(stdout, "no requests")?;
            }
            for r in &list.requests {
                writeln!(
                    stdout,
                    "{}  {:<15} {:<6} {:<11} due {}{}",
                    r.request_id,
                    r.kind,
                    r.jurisdiction,
                    r.status,
                    r.due_at,
                    flags(r)
                )?;
            }
        }
        RequestsCommand::Fulfil { .. } => {
            if let Ok(receipt) = serde_json::from_slice::<ErasureReceipt>(&reply.body) {
                writeln!(
                    stdout,
                    "erased: {} records, {} values, {} index entries, {} token values; keys destroyed: {}",
                    receipt.deleted.records,
                    receipt.deleted.values,
                    receipt.deleted.index_entries,
                    receipt.deleted.token_values,
                    receipt.destroyed_keys.join(", ")
                )?;
                for k in &receipt.kept {
                    writeln!(
                        stdout,
                        "kept under {} ({}): {} ({} values, {})",
                        k.purpose,
                        k.legal_basis,
                        k.fields.join(", "),
                        k.values,
                        k.retention
                    )?;
                }
                writeln!(stdout, "\nsigned receipt:\n{}", receipt.signed_note)?;
            } else if let Ok(view) = serde_json::from_slice::<SubjectRequestView>(&reply.body) {
                print_view(&mut stdout, &view)?;
            } else {
                drop(stdout);
                return raw();
            }
        }
        _ => {
            let view: SubjectRequestView =
                serde_json::from_slice(&reply.body).context("reading the server's answer")?;
            print_view(&mut stdout, &view)?;
        }
    }
    Ok(())
}

fn print_view(out: &mut impl Write, r: &SubjectRequestView) -> std::io::Result<()> {
    writeln!(out, "request      {}", r.request_id)?;
    writeln!(out, "subject      {}", r.subject_id.as_deref().unwrap_or("(erased)"))?;
    writeln!(out, "type         {} ({})", r.kind, r.jurisdiction)?;
    writeln!(out, "status       {}{}", r.status, flags(r))?;
    writeln!(out, "received     {} via {}", r.received_at, r.received_via)?;
    if let Some(ack) = &r.acknowledge_by {
        writeln!(out, "acknowledge  by {ack}")?;
    }
    writeln!(out, "due          {}", r.due_at)?;
    if let Some(until) = &r.extendable_until {
        writeln!(out, "extendable   until {until}")?;
    }
    if let Some(e) = &r.extension {
        writeln!(out, "extended     {}: {}", e.at, e.reason)?;
    }
    match &r.verification {
        Some(v) => writeln!(
            out,
            "verified     {} by {}{}",
            v.via,
            v.by,
            v.at.as_deref()
                .map_or(" (pending)".to_owned(), |at| format!(" at {at}"))
        )?,
        None => writeln!(out, "verified     no")?,
    }
    if let Some(d) = &r.denial {
        writeln!(out, "denied       {} (complaints: {})", d.reason, d.complain_to)?;
    }
    for n in &r.notifications {
        writeln!(
            out,
            "notice       {}: {} after {} attempt(s){}",
            n.recipient,
            n.status,
            n.attempts,
            n.last_error
                .as_deref()
                .map(|e| format!(", last error {e}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(closed) = &r.closed_at {
        writeln!(out, "closed       {closed}")?;
    }
    writeln!(out, "kept until   {}", r.keep_until)
}

/// `collection/record_id/field=value` arguments, grouped by record.
fn parse_corrections(args: &[String]) -> anyhow::Result<Vec<custodia_types::Correction>> {
    let mut out: Vec<custodia_types::Correction> = Vec::new();
    for arg in args {
        let (place, value) = arg
            .split_once('=')
            .with_context(|| "--correct takes collection/record_id/field=value".to_owned())?;
        let mut parts = place.splitn(3, '/');
        let (Some(collection), Some(record_id), Some(field)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("--correct takes collection/record_id/field=value");
        };
        match out
            .iter_mut()
            .find(|c| c.collection == collection && c.record_id == record_id)
        {
            Some(c) => {
                c.fields.insert(field.to_owned(), value.to_owned());
            }
            None => out.push(custodia_types::Correction {
                collection: collection.to_owned(),
                record_id: record_id.to_owned(),
                fields: [(field.to_owned(), value.to_owned())].into(),
            }),
        }
    }
    Ok(out)
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `custodia receipt verify`: checks an erasure receipt's signature against a pinned key and
/// prints what it says. The file holds the signed note, or the receipt JSON the server
/// answered (its `signed_note` is checked; its other fields are not trusted).
pub fn verify_receipt(public_key: &str, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let key_text = match std::fs::read_to_string(public_key) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => public_key.trim().to_owned(),
    };
    let key = VerifierKey::parse(&key_text).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let json = serde_json::from_str::<serde_json::Value>(&text).ok();
    let note_text = match &json {
        Some(value) => value
            .get("signed_note")
            .and_then(|n| n.as_str())
            .context("the JSON has no signed_note")?
            .to_owned(),
        None => text,
    };
    let note = custodia_audit::note::Note::parse(&note_text).map_err(|e| anyhow::anyhow!("not a signed note: {e}"))?;
    if let Some(json) = &json {
        let unsigned = unsigned_claims(json, note.text());
        if !unsigned.is_empty() {
            eprintln!(
                "error: the receipt's JSON says what its signed note does not ({}): trust only the note",
                unsigned.join(", ")
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if !note.text().starts_with(custodia_core::RECEIPT_HEADER) {
        eprintln!("error: the note is not an erasure receipt");
        return Ok(ExitCode::FAILURE);
    }
    match key.verify(&note) {
        Ok(_) => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "valid erasure receipt signed by {}", key.name())?;
            stdout.write_all(note.text().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: the receipt's signature does not verify with this key: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The fields of a receipt's JSON whose values its signed text does not state.
fn unsigned_claims(json: &serde_json::Value, signed: &str) -> Vec<&'static str> {
    let lines: Vec<&str> = signed.lines().collect();
    let says = |line: String| lines.contains(&line.as_str());
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let count = |key: &str| {
        json["deleted"]
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(u64::MAX)
    };
    let mut wrong = Vec::new();
    let request = text("request_id");
    if !says(format!(
        "request {}",
        if request.is_empty() { "none" } else { &request }
    )) {
        wrong.push("request_id");
    }
    if !says(format!("subject {}", text("subject_digest"))) {
        wrong.push("subject_digest");
    }
    if !says(format!("erased-at {}", text("erased_at"))) {
        wrong.push("erased_at");
    }
    for (key, line) in [
        ("records", "records"),
        ("values", "values"),
        ("index_entries", "index-entries"),
        ("token_values", "token-values"),
    ] {
        if !says(format!("deleted {line} {}", count(key))) {
            wrong.push("deleted");
            break;
        }
    }
    let kept = json["kept"].as_array().map_or(0, Vec::len);
    let kept_lines = lines.iter().filter(|l| l.starts_with("kept ")).count();
    let kept_match = kept == kept_lines
        && json["kept"].as_array().into_iter().flatten().all(|k| {
            let purpose = k["purpose"].as_str().unwrap_or_default();
            let fields: Vec<&str> = k["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .collect();
            lines.iter().any(|l| {
                l.starts_with(&format!("kept {purpose} "))
                    && l.contains(&format!(
                        " {} values {} ",
                        fields.join(","),
                        k["values"].as_u64().unwrap_or(u64::MAX)
                    ))
            })
        });
    if !kept_match {
        wrong.push("kept");
    }
    wrong
}

/// What a request's line says of its deadlines: `OVERDUE`, and `ACKNOWLEDGEMENT OVERDUE`
/// while its receipt is past due to be confirmed with nothing done yet.
fn flags(r: &custodia_types::SubjectRequestView) -> String {
    let mut out = String::new();
    if r.overdue {
        out.push_str("  OVERDUE");
    }
    if r.acknowledgement_overdue {
        out.push_str("  ACKNOWLEDGEMENT OVERDUE");
    }
    out
}
