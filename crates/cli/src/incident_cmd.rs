//! `custodia incident`: incident response through a running server's API (the breach
//! register, timelines, the blast radius, notification duties and drafts, containment), and
//! `custodia incident templates`: the built-in notification templates, to edit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use custodia_types::{ContainmentResponse, Incident, IncidentRegister, OpenIncidentResponse, Scope};

use crate::requests_cmd::{ApiArgs, encode};

#[derive(clap::Subcommand)]
pub enum IncidentCommand {
    /// Open an incident; the notification clocks start at --aware-at.
    Open {
        #[arg(long)]
        title: String,
        #[arg(long)]
        description: String,
        /// When the organization became aware of the breach (RFC 3339; default: now).
        #[arg(long)]
        aware_at: Option<String>,
        /// How it was detected (e.g. "customer report").
        #[arg(long)]
        source: Option<String>,
        /// A system affected (repeat).
        #[arg(long = "system")]
        systems: Vec<String>,
    },
    /// The breach register: every incident, notified or not.
    List,
    /// One incident: duties with their countdowns, tasks, scope, timeline.
    Show { incident_id: String },
    /// Add a note, task, affected system or decision to the timeline.
    Note {
        incident_id: String,
        text: String,
        /// note, task, system or decision.
        #[arg(long, default_value = "note")]
        kind: String,
    },
    /// Mark a task done.
    Done { incident_id: String, task: u32 },
    /// Move to a phase: detect, analyse, contain, eradicate, recover, post_incident.
    Phase {
        incident_id: String,
        phase: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Record the risk assessment: unlikely, risk or high_risk, and why.
    Risk {
        incident_id: String,
        risk: String,
        #[arg(long)]
        reason: String,
    },
    /// The blast radius from the audit log: whose data the compromised principals read.
    Scope {
        incident_id: String,
        /// A compromised principal (API key or operator) id (repeat).
        #[arg(long = "principal")]
        principals: Vec<String>,
        /// A subject whose reads to find (repeat).
        #[arg(long = "subject")]
        subjects: Vec<String>,
        /// A collection whose reads to find (repeat).
        #[arg(long = "collection")]
        collections: Vec<String>,
        /// Start of the window (RFC 3339, inclusive).
        #[arg(long)]
        from: String,
        /// End of the window (RFC 3339, exclusive; default: now).
        #[arg(long)]
        to: Option<String>,
    },
    /// Record a notification as sent.
    Sent {
        incident_id: String,
        /// The breach law (e.g. gdpr).
        #[arg(long)]
        law: String,
        /// authority, subjects, attorney_general, regulator or media.
        #[arg(long)]
        to: String,
        /// When (RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        reference: Option<String>,
        #[arg(long)]
        recipients: Option<u64>,
    },
    /// Contain: revoke_principal, end_operator_sessions, rotate_root_key, read_only,
    /// read_write; recorded on the timeline.
    Contain {
        incident_id: String,
        action: String,
        /// The principal, operator or collection.
        #[arg(long)]
        target: Option<String>,
    },
    /// A draft notification (Markdown): to the authority, or a letter to one person.
    Draft {
        incident_id: String,
        /// The letter to this subject (default: the authority's notification).
        #[arg(long)]
        subject: Option<String>,
        /// The breach law whose authority is notified.
        #[arg(long)]
        law: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the built-in notification templates into DIR (the data directory's
    /// `incident-templates/` is where the server reads yours); no server needed.
    Templates {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs an `incident` subcommand.
pub async fn run(action: IncidentCommand, api: ApiArgs) -> anyhow::Result<ExitCode> {
    let now = || custodia_core::Timestamp::now().to_rfc3339();
    let json = |v: serde_json::Value| serde_json::to_vec(&v).map(Some);
    let (method, path, body) = match &action {
        IncidentCommand::Templates { out } => return write_templates(out),
        IncidentCommand::Open {
            title,
            description,
            aware_at,
            source,
            systems,
        } => (
            "POST",
            "/v1/incidents".to_owned(),
            Some(serde_json::to_vec(&custodia_types::OpenIncidentRequest {
                title: title.clone(),
                description: description.clone(),
                aware_at: aware_at.clone().unwrap_or_else(now),
                source: source.clone(),
                systems: systems.clone(),
            })?),
        ),
        IncidentCommand::List => ("GET", "/v1/incidents".to_owned(), None),
        IncidentCommand::Show { incident_id } => ("GET", format!("/v1/incidents/{}", encode(incident_id)), None),
        IncidentCommand::Note {
            incident_id,
            text,
            kind,
        } => (
            "POST",
            format!("/v1/incidents/{}/entries", encode(incident_id)),
            json(serde_json::json!({"kind": kind, "text": text}))?,
        ),
        IncidentCommand::Done { incident_id, task } => (
            "POST",
            format!("/v1/incidents/{}/entries", encode(incident_id)),
            json(serde_json::json!({"kind": "task_done", "task": task}))?,
        ),
        IncidentCommand::Phase {
            incident_id,
            phase,
            note,
        } => (
            "POST",
            format!("/v1/incidents/{}/phase", encode(incident_id)),
            json(serde_json::json!({"phase": phase, "note": note}))?,
        ),
        IncidentCommand::Risk {
            incident_id,
            risk,
            reason,
        } => (
            "POST",
            format!("/v1/incidents/{}/risk", encode(incident_id)),
            json(serde_json::json!({"risk": risk, "reason": reason}))?,
        ),
        IncidentCommand::Scope {
            incident_id,
            principals,
            subjects,
            collections,
            from,
            to,
        } => (
            "POST",
            format!("/v1/incidents/{}/scope", encode(incident_id)),
            Some(serde_json::to_vec(&custodia_types::ScopeRequest {
                principals: principals.clone(),
                subjects: subjects.clone(),
                collections: collections.clone(),
                from: from.clone(),
                to: to.clone().unwrap_or_else(now),
            })?),
        ),
        IncidentCommand::Sent {
            incident_id,
            law,
            to,
            at,
            reference,
            recipients,
        } => (
            "POST",
            format!("/v1/incidents/{}/notifications", encode(incident_id)),
            Some(serde_json::to_vec(&custodia_types::NotificationSentRequest {
                law: law.clone(),
                to: to.clone(),
                sent_at: at.clone(),
                reference: reference.clone(),
                recipients: *recipients,
            })?),
        ),
        IncidentCommand::Contain {
            incident_id,
            action,
            target,
        } => (
            "POST",
            format!("/v1/incidents/{}/containment", encode(incident_id)),
            Some(serde_json::to_vec(&custodia_types::ContainmentRequest {
                action: action.clone(),
                target: target.clone(),
            })?),
        ),
        IncidentCommand::Draft {
            incident_id,
            subject,
            law,
            ..
        } => {
            let path = match (subject, law) {
                (Some(s), _) => format!("/v1/incidents/{}/drafts/subjects/{}", encode(incident_id), encode(s)),
                (None, Some(l)) => format!(
                    "/v1/incidents/{}/drafts/authority?law={}",
                    encode(incident_id),
                    encode(l)
                ),
                (None, None) => format!("/v1/incidents/{}/drafts/authority", encode(incident_id)),
            };
            ("GET", path, None)
        }
    };
    let json = api.json();
    let reply = match crate::api_success(&api.url, api.token, method, &path, body).await? {
        Ok(reply) => reply,
        Err(code) => return Ok(code),
    };
    let mut stdout = std::io::stdout().lock();
    if let IncidentCommand::Draft { out, .. } = &action {
        match out {
            Some(path) => {
                crate::write_private(path, &reply.body)?;
                eprintln!("wrote {}", path.display());
            }
            None => stdout.write_all(&reply.body)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        stdout.write_all(&reply.body)?;
        writeln!(stdout)?;
        return Ok(ExitCode::SUCCESS);
    }
    match &action {
        IncidentCommand::Open { .. } => {
            let opened: OpenIncidentResponse = serde_json::from_slice(&reply.body).context("reading the answer")?;
            writeln!(
                stdout,
                "opened {} (aware since {})",
                opened.incident_id, opened.aware_at
            )?;
            match &opened.authority_deadline {
                Some(due) => writeln!(stdout, "notify the authority by {due}")?,
                None => writeln!(stdout, "no authority deadline under the organization's breach laws")?,
            }
        }
        IncidentCommand::List => {
            let register: IncidentRegister = serde_json::from_slice(&reply.body).context("reading the register")?;
            if register.incidents.is_empty() {
                writeln!(stdout, "no incidents")?;
            }
            for i in &register.incidents {
                writeln!(
                    stdout,
                    "{}  aware {}  {:<13} risk {:<10} notified: {}  {}",
                    i.incident_id,
                    i.aware_at,
                    i.phase,
                    i.risk,
                    if i.notified.is_empty() {
                        "none".to_owned()
                    } else {
                        i.notified.join(", ")
                    },
                    i.title
                )?;
            }
        }
        IncidentCommand::Scope { .. } => {
            let scope: Scope = serde_json::from_slice(&reply.body).context("reading the scope")?;
            let s = &scope.summary;
            writeln!(
                stdout,
                "{} people, {} records ({} reads) from {} to {}",
                s.subjects_affected, s.records, s.entries, s.from, s.to
            )?;
            writeln!(stdout, "categories:   {}", s.categories.join(", "))?;
            writeln!(stdout, "in plain:     {}", s.exposure.plaintext.join(", "))?;
            writeln!(stdout, "masked only:  {}", s.exposure.masked.join(", "))?;
            writeln!(stdout, "tokens only:  {}", s.exposure.tokenized.join(", "))?;
            writeln!(stdout, "unintelligible to the reader: {}", s.unintelligible)?;
            for (j, n) in &s.jurisdictions {
                writeln!(stdout, "jurisdiction {j}: {n}")?;
            }
            for id in &scope.subjects {
                writeln!(stdout, "subject {id}")?;
            }
        }
        IncidentCommand::Contain { .. } => {
            let done: ContainmentResponse = serde_json::from_slice(&reply.body).context("reading the answer")?;
            writeln!(stdout, "{}", done.done)?;
        }
        _ => {
            let incident: Incident = serde_json::from_slice(&reply.body).context("reading the incident")?;
            print_incident(&mut stdout, &incident)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_incident(out: &mut impl Write, i: &Incident) -> std::io::Result<()> {
    let s = &i.summary;
    writeln!(out, "incident  {}  {}", s.incident_id, s.title)?;
    writeln!(
        out,
        "aware     {} (opened {} by {})",
        s.aware_at, s.opened_at, s.opened_by
    )?;
    writeln!(out, "phase     {}", s.phase)?;
    writeln!(
        out,
        "risk      {}{}",
        s.risk,
        i.risk_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
    )?;
    if !i.systems.is_empty() {
        writeln!(out, "systems   {}", i.systems.join(", "))?;
    }
    writeln!(out, "duties")?;
    for d in &i.duties {
        writeln!(
            out,
            "  {:<8} {:<17} {:<13} {}{}  ({})",
            d.law,
            d.to,
            d.owed,
            d.countdown,
            d.due.as_deref().map(|due| format!(", due {due}")).unwrap_or_default(),
            d.citation
        )?;
    }
    if let Some(scope) = &i.scope {
        writeln!(
            out,
            "scope     {} people, {} records; categories: {}",
            scope.subjects_affected,
            scope.records,
            scope.categories.join(", ")
        )?;
    }
    for t in &i.tasks {
        writeln!(
            out,
            "task {:>3} [{}] {}",
            t.task,
            if t.done { "x" } else { " " },
            t.text
        )?;
    }
    if !i.read_only_collections.is_empty() {
        writeln!(out, "read-only {}", i.read_only_collections.join(", "))?;
    }
    writeln!(out, "timeline")?;
    for e in &i.timeline {
        writeln!(out, "  {} {:<17} {}  ({})", e.at, e.kind, e.text, e.by)?;
    }
    Ok(())
}

fn write_templates(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("authority.md", custodia_core::AUTHORITY_TEMPLATE),
        ("subject.md", custodia_core::SUBJECT_TEMPLATE),
    ];
    // Nothing is written unless everything can be.
    if let Some((name, _)) = files.iter().find(|(name, _)| dir.join(name).exists()) {
        anyhow::bail!("{} exists: nothing written", dir.join(name).display());
    }
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    eprintln!("placeholders: {}", custodia_core::PLACEHOLDERS.join(", "));
    Ok(ExitCode::SUCCESS)
}
