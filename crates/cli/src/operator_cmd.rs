//! `custodia operator ...` and `custodia login`: people who operate the vault. Creation and
//! training attestations work on a data directory (server stopped, or PostgreSQL) or through
//! a server's API; enrolment and login always go through the server (the operator is
//! usually on another machine).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use custodia_core::{DataDir, Timestamp};
use custodia_types::{
    ConfirmEnrolmentRequest, CreateOperatorRequest, CreateOperatorResponse, EnrolRequest, EnrolResponse, LoginRequest,
    LoginResponse, OperatorInfo, OperatorList, TrainingRequest,
};
use zeroize::Zeroizing;

use crate::requests_cmd::{ApiArgs, encode};
use crate::retention_cmd::{call, print_json};

/// Where an administrative command acts.
#[derive(clap::Args)]
pub struct Target {
    /// Act on this data directory instead of asking a server (on SQLite, with the server
    /// stopped).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: use this PostgreSQL database instead of SQLite.
    #[arg(long, env = "CUSTODIA_DATABASE_URL", hide_env_values = true, requires = "data_dir")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

impl Target {
    /// The data directory's vault, opened for writing.
    pub async fn open(&self, dir: &std::path::Path) -> anyhow::Result<custodia_core::Vault> {
        DataDir::new(dir)
            .open(self.database_url.as_deref())
            .await
            .with_context(|| {
                format!(
                    "opening {} (while a server runs on it, use --url instead of --data-dir)",
                    dir.display()
                )
            })
    }
}

#[derive(clap::Subcommand)]
pub enum OperatorCommand {
    /// Create an operator (a person); prints the one-time enrolment code to give them.
    Create {
        /// Login name.
        name: String,
        /// A registry role; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Enrol as an operator: set your password and add the TOTP secret (shown as a QR code)
    /// to an authenticator app. Prompts for the enrolment code, the password and a code.
    Enrol {
        /// Your login name.
        name: String,
        /// The server's base URL.
        #[arg(long, default_value = crate::requests_cmd::DEFAULT_ADDR, env = crate::requests_cmd::ADDR_ENV)]
        url: String,
    },
    /// Operators with their enrolment and training state.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Attest that an operator completed a course (you attest it; nobody attests their own).
    Train {
        /// Operator id (`opr_...`) or name.
        operator: String,
        /// A course of the registry's [training].
        course: String,
        /// When it was completed (RFC 3339; default: now).
        #[arg(long)]
        completed_at: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Disable an operator at once: no login, and their sessions end.
    Disable {
        /// Operator id (`opr_...`) or name.
        operator: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `custodia login`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// Your login name.
    pub name: String,
    /// The server's base URL.
    #[arg(long, default_value = crate::requests_cmd::DEFAULT_ADDR, env = crate::requests_cmd::ADDR_ENV)]
    pub url: String,
}

pub async fn run(action: OperatorCommand) -> anyhow::Result<ExitCode> {
    match action {
        OperatorCommand::Create { name, roles, target } => create(name, roles, target).await,
        OperatorCommand::Enrol { name, url } => enrol(&name, &url).await,
        OperatorCommand::List { target } => list(target).await,
        OperatorCommand::Train {
            operator,
            course,
            completed_at,
            target,
        } => train(operator, course, completed_at, target).await,
        OperatorCommand::Disable { operator, api } => {
            let path = format!("/v1/operators/{}/disable", encode(&operator));
            call(&api, "POST", path, None, |out, _| {
                writeln!(out, "Disabled {operator}; their sessions ended.")?;
                Ok(())
            })
            .await
        }
    }
}

async fn create(name: String, roles: Vec<String>, target: Target) -> anyhow::Result<ExitCode> {
    let created = match &target.data_dir {
        Some(dir) => {
            let vault = target.open(dir).await?;
            let log = crate::audit_cmd::OfflineLog::resume(&vault, dir, "creating an operator").await?;
            let created = vault.insert_operator(Timestamp::now(), &name, &roles).await;
            log.sign(&vault).await?;
            let created = created.map_err(|e| anyhow::anyhow!("{e}"))?;
            CreateOperatorResponse {
                operator_id: created.operator_id,
                name,
                enrolment_code: created.enrolment_code.to_string(),
                enrolment_expires_at: created.enrolment_expires_at.to_rfc3339(),
            }
        }
        None => {
            let body = serde_json::to_vec(&CreateOperatorRequest { name, roles })?;
            let reply = match crate::api_success(
                &target.api.url,
                target.api.token.clone(),
                "POST",
                "/v1/operators",
                Some(body),
            )
            .await?
            {
                Ok(reply) => reply,
                Err(code) => return Ok(code),
            };
            serde_json::from_slice(&reply.body).context("reading the server's answer")?
        }
    };
    if target.api.json() {
        print_json(&serde_json::to_value(&created)?)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "Created operator {} ({}).", created.name, created.operator_id)?;
        writeln!(
            out,
            "Enrolment code (shown once; give it to them in person): {}",
            created.enrolment_code
        )?;
        writeln!(out, "It expires at {}. They run:", created.enrolment_expires_at)?;
        writeln!(out, "  custodia operator enrol {} --url <server>", created.name)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(target: Target) -> anyhow::Result<ExitCode> {
    let operators = match &target.data_dir {
        Some(dir) => target
            .open(dir)
            .await?
            .operator_infos(Timestamp::now())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => {
            let reply =
                match crate::api_success(&target.api.url, target.api.token.clone(), "GET", "/v1/operators", None)
                    .await?
                {
                    Ok(reply) => reply,
                    Err(code) => return Ok(code),
                };
            serde_json::from_slice::<OperatorList>(&reply.body)
                .context("reading the server's answer")?
                .operators
        }
    };
    if target.api.json() {
        print_json(&serde_json::to_value(OperatorList { operators })?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if operators.is_empty() {
        writeln!(out, "No operators.")?;
    }
    for o in &operators {
        print_operator(&mut out, o)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_operator(out: &mut dyn Write, o: &OperatorInfo) -> anyhow::Result<()> {
    let mut state = vec![if o.enrolled { "enrolled" } else { "not enrolled" }.to_owned()];
    if let Some(until) = &o.locked_until {
        state.push(format!("locked until {until}"));
    }
    if let Some(at) = &o.disabled_at {
        state.push(format!("disabled {at}"));
    }
    writeln!(
        out,
        "{} ({}) roles: {}; {}",
        o.name,
        o.operator_id,
        o.roles.join(", "),
        state.join(", ")
    )?;
    for c in &o.training {
        let until = c
            .valid_until
            .as_deref()
            .map(|u| format!(" until {u}"))
            .unwrap_or_default();
        writeln!(out, "  {:<24} {}{until}", c.course, c.status)?;
    }
    Ok(())
}

async fn train(
    operator: String,
    course: String,
    completed_at: Option<String>,
    target: Target,
) -> anyhow::Result<ExitCode> {
    let info = match &target.data_dir {
        Some(dir) => {
            let when = completed_at
                .as_deref()
                .map(|t| Timestamp::parse_rfc3339(t).with_context(|| format!("--completed-at `{t}` is not RFC 3339")))
                .transpose()?;
            // From the server's machine, the attestation is by whoever runs the command.
            let by = format!("local:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            let vault = target.open(dir).await?;
            let log = crate::audit_cmd::OfflineLog::resume(&vault, dir, "recording training").await?;
            let info = vault
                .insert_training(&by, Timestamp::now(), &operator, &course, when)
                .await;
            log.sign(&vault).await?;
            info.map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => {
            let body = serde_json::to_vec(&TrainingRequest { course, completed_at })?;
            let path = format!("/v1/operators/{}/training", encode(&operator));
            let reply =
                match crate::api_success(&target.api.url, target.api.token.clone(), "POST", &path, Some(body)).await? {
                    Ok(reply) => reply,
                    Err(code) => return Ok(code),
                };
            serde_json::from_slice(&reply.body).context("reading the server's answer")?
        }
    };
    if target.api.json() {
        print_json(&serde_json::to_value(&info)?)?;
    } else {
        print_operator(&mut std::io::stdout().lock(), &info)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one answer: without echo from a terminal (`secret`), else a line of standard input.
fn prompt(question: &str, secret: bool) -> anyhow::Result<Zeroizing<String>> {
    if secret && std::io::stdin().is_terminal() {
        return Ok(Zeroizing::new(rpassword::prompt_password(question)?));
    }
    eprint!("{question}");
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line)?;
    anyhow::ensure!(
        read > 0,
        "standard input ended before: {}",
        question.trim_end_matches([':', ' '])
    );
    let answer = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned());
    Ok(answer)
}

/// Posts `body` to an unauthenticated route; the server's error is printed as it came.
async fn post_public(url: &str, path: &str, body: Vec<u8>) -> anyhow::Result<Result<Vec<u8>, ExitCode>> {
    let reply = crate::api_request(url, None, "POST", path, Some(body)).await?;
    if (200..300).contains(&reply.status) {
        Ok(Ok(reply.body.to_vec()))
    } else {
        eprintln!(
            "error: the server answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        Ok(Err(ExitCode::FAILURE))
    }
}

async fn enrol(name: &str, url: &str) -> anyhow::Result<ExitCode> {
    let code = prompt("Enrolment code: ", true)?;
    let password = prompt("New password (at least 12 characters): ", true)?;
    if std::io::stdin().is_terminal() {
        let again = prompt("The same password again: ", true)?;
        anyhow::ensure!(again == password, "the passwords differ");
    }
    let body = serde_json::to_vec(&EnrolRequest {
        name: name.to_owned(),
        enrolment_code: code.to_string(),
        password: password.to_string(),
    })?;
    let answer = match post_public(url, "/v1/operators/enrol", body).await? {
        Ok(body) => body,
        Err(exit) => return Ok(exit),
    };
    let enrolled: EnrolResponse = serde_json::from_slice(&answer).context("reading the server's answer")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "Scan this with an authenticator app (any RFC 6238 TOTP app):")?;
        writeln!(out, "{}", qr(&enrolled.otpauth_uri)?)?;
        writeln!(out, "or enter the secret by hand: {}", enrolled.secret)?;
        writeln!(out, "otpauth URI: {}", enrolled.otpauth_uri)?;
        out.flush()?;
    }
    let totp = prompt("Code shown by the app: ", false)?;
    let body = serde_json::to_vec(&ConfirmEnrolmentRequest {
        name: name.to_owned(),
        enrolment_code: code.to_string(),
        code: totp.to_string(),
    })?;
    if let Err(exit) = post_public(url, "/v1/operators/enrol/confirm", body).await? {
        return Ok(exit);
    }
    writeln!(
        std::io::stdout().lock(),
        "Enrolled. Log in with: custodia login {name} --url {url}"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A QR code of `text` for a terminal: two modules per character, light on dark so that it
/// scans on a dark terminal too.
fn qr(text: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).context("making the QR code")?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// `custodia login NAME`: prints the session token on standard output (one line), so that
/// `export CUSTODIA_TOKEN=$(custodia login ana)` works; what it means goes to standard error.
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let password = prompt("Password: ", true)?;
    let code = prompt("Code from your authenticator: ", false)?;
    let body = serde_json::to_vec(&LoginRequest {
        name: args.name.clone(),
        password: password.to_string(),
        code: code.to_string(),
    })?;
    let answer = match post_public(&args.url, "/v1/login", body).await? {
        Ok(body) => body,
        Err(exit) => return Ok(exit),
    };
    let session: LoginResponse = serde_json::from_slice(&answer).context("reading the server's answer")?;
    eprintln!("Logged in as {} until {}.", args.name, session.expires_at);
    if !session.training_due.is_empty() {
        eprintln!(
            "Training due ({}): personal data stays closed until a completion is attested.",
            session.training_due.join(", ")
        );
    }
    eprintln!("Send a Custodia-Justification header (e.g. a ticket number) with every personal-data request.");
    writeln!(std::io::stdout().lock(), "{}", session.token)?;
    Ok(ExitCode::SUCCESS)
}

/// `custodia access-review`.
#[derive(clap::Args)]
pub struct ReviewArgs {
    /// Start of the period, RFC 3339 (default: 30 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period, RFC 3339, exclusive (default: now).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// `custodia break-glass`.
#[derive(clap::Args)]
pub struct BreakGlassArgs {
    /// One of the registry's `[operators] break_glass_roles`.
    pub role: String,
    /// Why (kept in the audit log: a reference, no personal data).
    #[arg(long)]
    pub reason: String,
    /// How long, in minutes (default and most: `[operators] break_glass_minutes`).
    #[arg(long)]
    pub minutes: Option<u32>,
    /// The server and your session token (`custodia login`).
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn break_glass(args: BreakGlassArgs) -> anyhow::Result<ExitCode> {
    let body = serde_json::to_vec(&custodia_types::BreakGlassRequest {
        role: args.role,
        reason: args.reason,
        minutes: args.minutes,
    })?;
    call(&args.api, "POST", "/v1/break-glass".to_owned(), Some(body), |out, body| {
        let grant: custodia_types::BreakGlassGrant =
            serde_json::from_slice(body).context("reading the server's answer")?;
        writeln!(
            out,
            "Break-glass {}: role {} until {}. Every call is flagged in the audit log and listed in access reviews.",
            grant.grant_id, grant.role, grant.expires_at
        )?;
        Ok(())
    })
    .await
}

pub async fn access_review(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let review = match &args.target.data_dir {
        Some(dir) => {
            let now = Timestamp::now();
            let at = |name: &str, t: &Option<String>| {
                t.as_deref()
                    .map(|t| Timestamp::parse_rfc3339(t).with_context(|| format!("--{name} `{t}` is not RFC 3339")))
                    .transpose()
            };
            let to = at("to", &args.to)?.unwrap_or(now);
            let from = at("from", &args.from)?.unwrap_or(Timestamp(to.0 - 30 * 86_400_000));
            args.target
                .open(dir)
                .await?
                .review_access(now, from, to)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => {
            let mut query = Vec::new();
            if let Some(f) = &args.from {
                query.push(format!("from={}", encode(f)));
            }
            if let Some(t) = &args.to {
                query.push(format!("to={}", encode(t)));
            }
            let path = format!("/v1/access-review?{}", query.join("&"));
            match crate::api_success(&args.target.api.url, args.target.api.token.clone(), "GET", &path, None).await? {
                Ok(reply) => serde_json::from_slice(&reply.body).context("reading the server's answer")?,
                Err(code) => return Ok(code),
            }
        }
    };
    if args.target.api.json() {
        print_json(&serde_json::to_value(&review)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_review(&mut std::io::stdout().lock(), &review)?;
    Ok(ExitCode::SUCCESS)
}

fn print_review(out: &mut dyn Write, review: &custodia_types::AccessReview) -> anyhow::Result<()> {
    writeln!(
        out,
        "Access review {} to {} ({} audit entries)",
        review.from, review.to, review.entries
    )?;
    let counts = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    };
    for p in &review.principals {
        writeln!(
            out,
            "\n{} {} ({}) roles: {}",
            p.kind,
            p.name,
            p.principal_id,
            p.roles.join(", ")
        )?;
        writeln!(
            out,
            "  {} allowed, {} denied; {} subjects touched",
            p.allowed, p.denied, p.subjects
        )?;
        if !p.purposes.is_empty() {
            writeln!(out, "  purposes: {}", counts(&p.purposes))?;
        }
        if !p.collections.is_empty() {
            writeln!(out, "  collections: {}", counts(&p.collections))?;
        }
        if !p.denial_reasons.is_empty() {
            writeln!(out, "  denials: {}", counts(&p.denial_reasons))?;
        }
        for g in &p.break_glass {
            writeln!(
                out,
                "  BREAK-GLASS {}: role {} from {} to {}: {}",
                g.grant_id, g.role, g.started_at, g.expires_at, g.reason
            )?;
        }
        if p.break_glass_calls > 0 {
            writeln!(out, "  calls under break-glass: {}", p.break_glass_calls)?;
        }
        if !p.unused_purposes.is_empty() {
            writeln!(
                out,
                "  never used (least-privilege candidates): {}",
                p.unused_purposes.join(", ")
            )?;
        }
        if p.stale_key {
            writeln!(
                out,
                "  STALE KEY: not used for 90 days (last used {})",
                p.last_used_at.as_deref().unwrap_or("never")
            )?;
        }
    }
    Ok(())
}
