//! Incident response (GDPR Art. 33/34, NIST SP 800-61): the breach register, each incident's
//! append-only timeline (notes, tasks, systems, decisions, phases, risk assessments,
//! notifications sent, containment), its notification duties with their countdowns (laws as
//! data: `custodia_registry::breach`), the blast radius computed from the audit log, drafts
//! of the notifications, and containment actions.
//!
//! What responders write may name people, so it is sealed (AES-256-GCM under a key derived
//! from the index key, bound to the incident) before it is stored; the store sees times,
//! phase and risk names, principal ids and ciphertext. Everything needs `manage_incidents`
//! (containment also the capability of what it does) and is audited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use custodia_registry::Capability;
use custodia_registry::breach::{self, BreachLaw, NoticeTo, Owed, Risk};
use custodia_store::{AuditQuery, IncidentEntryRow, IncidentRow, ReadOnlyRow, SessionsOf, TimelineChange};
use custodia_types::{
    ContainmentRequest, ContainmentResponse, Exposure, Incident, IncidentEntryRequest, IncidentPhaseRequest,
    IncidentRegister, IncidentRiskRequest, IncidentSummary, IncidentTask, NotificationDuty, NotificationSentRequest,
    OpenIncidentRequest, OpenIncidentResponse, Scope, ScopeRequest, ScopeSummary, TimelineEntry,
};

use crate::audit::{Allowed, AuditEvent};
use crate::cache::READ_ONLY_KEY;
use crate::vocabulary::{CONTAINMENT_ACTIONS, ENTRY_KINDS, PHASES, RISKS};
use crate::{ErrorKind, Principal, SubjectId, Timestamp, Vault, VaultError, gate};

/// The built-in template of the notification to an authority (`{{name}}` placeholders).
pub const AUTHORITY_TEMPLATE: &str = include_str!("incident_templates/authority.md");
/// The built-in template of the letter to each person affected.
pub const SUBJECT_TEMPLATE: &str = include_str!("incident_templates/subject.md");
/// Audit entries read per page while computing a scope.
const PAGE: i64 = 10_000;
/// The oldest awareness an incident may start from (ten years): older is a typo.
const MAX_AWARE_AGE_MS: i64 = 10 * 366 * 86_400_000;
/// Most systems an incident names when opened.
const MAX_SYSTEMS: usize = 100;
/// Most principals, subjects or collections one scope names.
const MAX_SCOPE_NAMES: usize = 1_000;
/// Longest title, and longest text of a description, note or reason.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 10_000;
/// The actions whose `allow` entries mean personal data left the vault.
const EXPOSING: [&str; 8] = [
    "record.read",
    "record.list",
    "record.search",
    "token.detokenize",
    "request.fulfil",
    // a subject's consent history, and the preference center's page and receipt (what is
    // held about them and why, their choices): data about the person, if not their values
    "ledger.read",
    "portal.view",
    "portal.receipt",
];

/// The actions that show a subject's choices (the ledger), counted as [`CHOICES`].
const SHOWING_CHOICES: [&str; 3] = ["ledger.read", "portal.view", "portal.receipt"];

/// Which draft to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draft<'a> {
    /// The notification to the authority under a law (default: the first with one).
    Authority(Option<&'a str>),
    /// The letter to one person affected.
    Subject(&'a str),
}

/// Title, description and source as sealed in the incident's row.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    title: String,
    description: String,
    source: Option<String>,
    systems: Vec<String>,
    /// When the organization became aware (the start of every 72-hour clock), sealed: the
    /// column beside it only orders the register. `None`: an incident opened before it was
    /// sealed, whose columns are its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aware_at: Option<i64>,
    /// Whether the row keeps a sealed [`EntryCount`] of the timeline (false: an incident opened
    /// before it did, whose newest entries removed go unseen).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tallied: bool,
}

/// How many entries an incident's timeline holds, sealed in its row with every change: each
/// entry seals its place, so one removed from the middle leaves the rest out of place, but
/// the newest removed leave nothing out of place, only fewer than were counted.
#[derive(serde::Serialize, serde::Deserialize)]
struct EntryCount {
    entries: usize,
}

/// A timeline entry's content, as sealed.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Body {
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    law: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<StoredScope>,
    /// The entry's place on the timeline (0 for the first), sealed with it: an entry copied
    /// in the database to another place (an old risk assessment repeated last, to lower the
    /// risk) is out of place. `None`: an entry from before places were sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<usize>,
    /// Who wrote the entry, sealed with it (the column beside it only indexes). `None`: an
    /// entry from before it was sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    /// When it was written, sealed with it (the column beside it only orders and indexes).
    /// `None`: an entry from before it was sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
}

/// A scope as kept on the timeline: the counts, and each subject's categories read (for the
/// letters).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoredScope {
    summary: ScopeSummary,
    subjects: BTreeMap<String, Vec<String>>,
}

/// An incident read back and opened.
struct Opened {
    row: IncidentRow,
    header: Header,
    entries: Vec<(IncidentEntryRow, Body)>,
}

fn incident_not_found() -> VaultError {
    VaultError::not_found(
        "incident_not_found",
        "no incident with that id (incident ids look like inc_ and 32 hex digits)",
    )
}

/// An incident whose timeline or tally was changed in the database, `what` saying how.
fn incident_altered(incident_id: &str, what: &str) -> VaultError {
    VaultError::new(
        ErrorKind::Internal,
        "incident_altered",
        format!(
            "incident {incident_id}'s timeline was altered in the database: {what}; the audit log's incident entries say what was recorded"
        ),
    )
}

fn is_incident_id(id: &str) -> bool {
    id.strip_prefix("inc_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Free text a responder wrote: trimmed, bounded, no control characters but line breaks and
/// tabs where `multiline`, no invisible formatting characters.
fn responder_text(field: &'static str, value: &str, max: usize, multiline: bool) -> Result<String, VaultError> {
    // judged as sent too (its length; a form feed trimmed is still one sent), as `rights::text`
    let sent = value.chars().count() > max
        || value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'));
    let value = value.trim();
    let bad = |c: char| {
        (c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
            || crate::rights::is_format(c)
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            )
    };
    if sent || value.is_empty() || value.chars().any(bad) {
        // 422, like `rights::text`.
        return Err(VaultError::unprocessable(
            "invalid_text",
            format!(
                "{field} must be 1-{max} characters without control{} or invisible formatting characters",
                if multiline {
                    " (other than line breaks and tabs)"
                } else {
                    ""
                }
            ),
        )
        .with_field(field));
    }
    Ok(value.to_owned())
}

fn time_field(field: &'static str, value: &str) -> Result<Timestamp, VaultError> {
    Timestamp::parse_rfc3339(value).ok_or_else(|| {
        VaultError::bad_request("invalid_time", format!("{field} must be an RFC 3339 time")).with_field(field)
    })
}

/// `71h 59m left`, `overdue by 2h 5m`.
fn countdown(remaining_ms: i64) -> String {
    let span = span(remaining_ms);
    if remaining_ms >= 0 {
        format!("{span} left")
    } else {
        format!("overdue by {span}")
    }
}

/// How many times a change of an incident is decided and written before another responder's
/// changes, coming first each time, make it answer 409 `incident_changed`.
const CHANGE_TRIES: usize = 8;

/// The category of what an access package handed out: everything held.
const PACKAGE: &str = "*";
/// The category of a subject's consent and privacy choices (Fideslang's), and of what the
/// preference center shows (which categories are held, for what).
const CHOICES: &str = "user.privacy_preferences";

/// A category in words: its last segment (`user.contact.phone_number` -> `phone number`).
fn category_words(category: &str) -> String {
    if category == PACKAGE {
        return "all the personal data we hold about you (a copy was handed out)".to_owned();
    }
    category.rsplit('.').next().unwrap_or(category).replace('_', " ")
}

/// A length of time as people say it: `2d 3h 0m`, `71h 59m` (its sign left out).
fn span(ms: i64) -> String {
    let minutes = ms.unsigned_abs() / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days}d {hours}h {mins}m")
    } else {
        format!("{}h {mins}m", minutes / 60)
    }
}

/// A duty's state once its notice was sent at `at` (as the responder says) and recorded at
/// `recorded`: a notice sent after its deadline says so, and one recorded after it says that
/// too (a date typed in afterwards is the responder's word, not the vault's).
fn sent_words(at: i64, recorded: i64, due: Option<i64>) -> String {
    let mut words = format!("sent {}", Timestamp(at).to_rfc3339());
    if let Some(due) = due {
        if at > due {
            words.push_str(&format!(", {} after the deadline", span(at - due)));
        } else if recorded > due {
            words.push_str(&format!(
                " (recorded {}, after the deadline)",
                Timestamp(recorded).to_rfc3339()
            ));
        }
    }
    words
}

fn list_words(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

impl Vault {
    /// The laws the organization is under, as the registry declares them.
    fn breach_laws(&self) -> Vec<&BreachLaw> {
        self.registry
            .incidents
            .laws
            .iter()
            .filter_map(|name| self.registry.breach_laws.get(name))
            .collect()
    }

    fn incident_event(&self, action: &'static str, caller: &Principal, incident_id: &str) -> AuditEvent {
        let event = AuditEvent::new(action, caller);
        if is_incident_id(incident_id) {
            event.detail("incident", incident_id.to_owned())
        } else {
            event
        }
    }

    fn seal_incident<T: serde::Serialize>(
        &self,
        incident_id: &str,
        part: &str,
        value: &T,
    ) -> Result<Vec<u8>, VaultError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|e| VaultError::internal(&e))?);
        Ok(self.keys.incident_key()?.seal(&context(incident_id, part), &json)?)
    }

    fn open_incident_part<T: serde::de::DeserializeOwned>(
        &self,
        incident_id: &str,
        part: &str,
        sealed: &[u8],
    ) -> Result<T, VaultError> {
        let plain = zeroize::Zeroizing::new(self.keys.incident_key()?.open(&context(incident_id, part), sealed)?);
        serde_json::from_slice(&plain).map_err(|e| VaultError::internal(&e))
    }

    async fn read_incident(&self, incident_id: &str) -> Result<Opened, VaultError> {
        if !is_incident_id(incident_id) {
            return Err(incident_not_found());
        }
        let (mut row, rows) = self.incident_rows(incident_id).await?;
        // What the vault sealed opens only where it was written: a part that does not (moved
        // to another incident or place, its kind changed, swapped) was altered.
        let header: Header = self
            .open_incident_part(incident_id, HEADER_PART, &row.sealed)
            .map_err(|_| incident_altered(incident_id, "its sealed header does not open where it is"))?;
        let entries = rows
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let body: Body = self.open_incident_part(incident_id, &e.kind, &e.sealed).map_err(|_| {
                    incident_altered(
                        incident_id,
                        &format!("entry {} does not open where it is (moved, or its kind changed)", i + 1),
                    )
                })?;
                if body.by.as_ref().is_some_and(|by| *by != e.by_principal) {
                    return Err(incident_altered(
                        incident_id,
                        &format!("entry {} names another author than the one sealed with it", i + 1),
                    ));
                }
                if body.at.is_some_and(|at| at != e.at) {
                    return Err(incident_altered(
                        incident_id,
                        &format!("entry {} is dated otherwise than it was sealed", i + 1),
                    ));
                }
                Ok((e, body))
            })
            .collect::<Result<Vec<_>, VaultError>>()?;
        // Each entry is sealed with its place: one copied in the database to another place
        // (an old risk assessment repeated last), or removed, leaves entries out of place.
        if let Some(first) = entries.iter().position(|(_, b)| b.n.is_some())
            && let Some(i) = (first..entries.len()).find(|i| entries.get(*i).is_some_and(|(_, b)| b.n != Some(*i)))
        {
            return Err(incident_altered(
                incident_id,
                &format!(
                    "entry {} is not where the vault wrote it (copied, inserted or removed)",
                    i + 1
                ),
            ));
        }
        // ... and the row seals how many there are: the newest removed leave fewer.
        let tally = match &row.tally {
            Some(sealed) => Some(
                self.open_incident_part::<EntryCount>(incident_id, TALLY_PART, sealed)
                    .map_err(|_| {
                        incident_altered(incident_id, "its tally of entries is not the one the vault sealed")
                    })?,
            ),
            None => None,
        };
        match tally {
            Some(t) if t.entries != entries.len() => {
                return Err(incident_altered(
                    incident_id,
                    &format!(
                        "it holds {} entries where the vault counted {} (the newest removed?)",
                        entries.len(),
                        t.entries
                    ),
                ));
            }
            None if header.tallied => {
                return Err(incident_altered(incident_id, "its tally of entries was removed"));
            }
            _ => {}
        }
        // The sealed header and timeline are the record; the columns only index it. A column
        // changed in the database (the clock moved, a risk lowered, a phase skipped) changes
        // nothing: each is read again from what the vault sealed.
        if let Some(aware_at) = header.aware_at {
            row.aware_at = aware_at;
            row.phase = PHASES[0].to_owned();
            row.risk = Risk::Unassessed.as_str().to_owned();
            for (e, body) in &entries {
                match (e.kind.as_str(), &body.to) {
                    ("phase", Some(to)) => row.phase.clone_from(to),
                    ("risk", Some(to)) => row.risk.clone_from(to),
                    _ => {}
                }
            }
        }
        Ok(Opened { row, header, entries })
    }

    /// The incidents the audit log says were opened: id to when and by whom.
    async fn opened_incidents(&self) -> Result<BTreeMap<String, (i64, String)>, VaultError> {
        let mut opened = BTreeMap::new();
        let query = AuditQuery {
            action: Some("incident.open".to_owned()),
            decision: Some("allow".to_owned()),
            ..AuditQuery::default()
        };
        self.each_entry(&query, |entry, at| {
            if let Some(id) = entry.detail.get("incident") {
                opened.insert(id.clone(), (at, entry.principal));
            }
        })
        .await?;
        Ok(opened)
    }

    /// An incident's row and timeline as one change left them: a change commits its entries
    /// with a new tally (random nonce, so never the same bytes twice), so a row read before
    /// and after the timeline with the same tally was not changed in between.
    async fn incident_rows(&self, incident_id: &str) -> Result<(IncidentRow, Vec<IncidentEntryRow>), VaultError> {
        let mut reader = self.store.reader().await?;
        for _ in 0..READ_TRIES {
            let Some(row) = reader.incidents().get(incident_id).await? else {
                drop(reader);
                return Err(if self.opened_incidents().await?.contains_key(incident_id) {
                    incident_altered(
                        incident_id,
                        "it is gone from the database, which the audit log says it was opened in",
                    )
                } else {
                    incident_not_found()
                });
            };
            let rows = reader.incidents().entries(incident_id).await?;
            let again = reader.incidents().get(incident_id).await?;
            if again.is_some_and(|again| again.tally == row.tally) {
                return Ok((row, rows));
            }
        }
        Err(custodia_store::StoreError::Conflict("incident".into()).into())
    }

    /// The change that appends `rows` to `opened`'s timeline and moves it to `state` (`None`:
    /// stays where it is), the timeline's new tally sealed.
    fn timeline_change(
        &self,
        opened: &Opened,
        state: Option<(String, String)>,
        rows: Vec<IncidentEntryRow>,
        now: Timestamp,
    ) -> Result<TimelineChange, VaultError> {
        let incident_id = opened.row.incident_id.clone();
        let before = opened.entries.len();
        let tally = EntryCount {
            entries: before + rows.len(),
        };
        let (phase, risk) = state.unwrap_or_else(|| (opened.row.phase.clone(), opened.row.risk.clone()));
        Ok(TimelineChange {
            tally: self.seal_incident(&incident_id, TALLY_PART, &tally)?,
            incident_id,
            phase,
            risk,
            at: now.0,
            entries: before as i64,
            rows,
        })
    }

    /// Opens an incident: the clock of every notification duty starts at `aware_at`.
    #[tracing::instrument(skip_all)]
    pub async fn open_incident(
        &self,
        caller: &Principal,
        now: Timestamp,
        req: &OpenIncidentRequest,
    ) -> Result<OpenIncidentResponse, VaultError> {
        let event = AuditEvent::new("incident.open", caller);
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            let title = responder_text("title", &req.title, MAX_TITLE, false)?;
            let description = responder_text("description", &req.description, MAX_TEXT, true)?;
            let source = req
                .source
                .as_deref()
                .map(|s| responder_text("source", s, MAX_TITLE, false))
                .transpose()?;
            if req.systems.len() > MAX_SYSTEMS {
                return Err(
                    VaultError::bad_request("invalid_text", format!("systems may name at most {MAX_SYSTEMS}"))
                        .with_field("systems")
                        .into(),
                );
            }
            let systems = req
                .systems
                .iter()
                .map(|s| responder_text("systems", s, MAX_TITLE, false))
                .collect::<Result<Vec<_>, _>>()?;
            let aware_at = time_field("aware_at", &req.aware_at)?;
            if aware_at.0 < now.0.saturating_sub(MAX_AWARE_AGE_MS) {
                return Err(VaultError::unprocessable(
                    "invalid_time",
                    "aware_at is more than ten years ago: it is when the organization became aware of the breach",
                )
                .with_field("aware_at")
                .into());
            }
            if aware_at > now {
                return Err(VaultError::unprocessable(
                    "invalid_time",
                    "aware_at is in the future: it is when the organization became aware of the breach",
                )
                .with_field("aware_at")
                .into());
            }
            let incident_id = format!("inc_{}", custodia_crypto::random_hex::<16>()?);
            let header = Header {
                title,
                description,
                source,
                systems,
                aware_at: Some(aware_at.0),
                tallied: true,
            };
            let row = IncidentRow {
                incident_id: incident_id.clone(),
                opened_at: now.0,
                opened_by: caller.id.clone(),
                aware_at: aware_at.0,
                sealed: self.seal_incident(&incident_id, HEADER_PART, &header)?,
                phase: PHASES[0].to_owned(),
                risk: Risk::Unassessed.as_str().to_owned(),
                updated_at: now.0,
                tally: Some(self.seal_incident(&incident_id, TALLY_PART, &EntryCount { entries: 1 })?),
            };
            let opened = self.entry_row(
                &incident_id,
                caller,
                now,
                "opened",
                (
                    Body {
                        text: format!("Incident opened; aware since {}", aware_at.to_rfc3339()),
                        ..Body::default()
                    },
                    0,
                ),
            )?;
            let audit = self.audit_row(&event.detail("incident", incident_id.clone()), now, None)?;
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        tx.incidents().insert(&row).await?;
                        tx.incidents().append(&opened).await?;
                        tx.audit().append(&[audit]).await
                    })
                })
                .await?;
            let duties = breach::duties(
                &self.breach_laws(),
                &breach::Facts {
                    aware_at: aware_at.0,
                    risk: Risk::Unassessed,
                    affected: None,
                    unintelligible: None,
                },
            );
            Ok(Allowed::Written(OpenIncidentResponse {
                incident_id,
                aware_at: aware_at.to_rfc3339(),
                authority_deadline: authority_deadline(&duties).map(|t| Timestamp(t).to_rfc3339()),
            }))
        })
        .await
    }

    /// The row of the entry `body` at place `n` of the incident's timeline.
    fn entry_row(
        &self,
        incident_id: &str,
        caller: &Principal,
        now: Timestamp,
        kind: &str,
        (body, n): (Body, usize),
    ) -> Result<IncidentEntryRow, VaultError> {
        let body = Body {
            n: Some(n),
            by: Some(caller.id.clone()),
            at: Some(now.0),
            ..body
        };
        Ok(IncidentEntryRow {
            entry_id: 0,
            incident_id: incident_id.to_owned(),
            at: now.0,
            by_principal: caller.id.clone(),
            kind: kind.to_owned(),
            sealed: self.seal_incident(incident_id, kind, &body)?,
        })
    }

    /// The timeline entry of a containment action, `done` saying what was done.
    fn containment_row(
        &self,
        opened: &Opened,
        caller: &Principal,
        now: Timestamp,
        done: &str,
    ) -> Result<IncidentEntryRow, VaultError> {
        let body = Body {
            text: done.to_owned(),
            ..Body::default()
        };
        let (id, n) = (&opened.row.incident_id, opened.entries.len());
        self.entry_row(id, caller, now, "containment", (body, n))
    }

    /// The breach register: every incident, notified or not (GDPR Art. 33(5)).
    #[tracing::instrument(skip_all)]
    pub async fn incident_register(&self, caller: &Principal, now: Timestamp) -> Result<IncidentRegister, VaultError> {
        self.audited(AuditEvent::new("incident.list", caller), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            let rows = self.store.reader().await?.incidents().all().await?;
            let mut incidents = Vec::with_capacity(rows.len());
            // Every incident the audit log says was opened is in the register: one deleted
            // from the database (its triggers dropped first) is listed as gone, not left out.
            let held: BTreeSet<&str> = rows.iter().map(|r| r.incident_id.as_str()).collect();
            let gone = self.opened_incidents().await?;
            for (incident_id, (at, opened_by)) in gone.into_iter().filter(|(id, _)| !held.contains(id.as_str())) {
                incidents.push(IncidentSummary {
                    incident_id,
                    title:
                        "[this incident is gone from the database: the audit log records its opening; it was deleted]"
                            .to_owned(),
                    aware_at: String::new(),
                    opened_at: Timestamp(at).to_rfc3339(),
                    opened_by,
                    phase: String::new(),
                    risk: String::new(),
                    authority_deadline: None,
                    notified: Vec::new(),
                    subjects_affected: None,
                });
            }
            for row in rows {
                // An incident that cannot be read (its record altered in the database) stays
                // in the register, saying so: the others are still shown.
                match self.read_incident(&row.incident_id).await {
                    Ok(opened) => incidents.push(self.view(&opened, now)?.summary),
                    Err(e) => incidents.push(IncidentSummary {
                        incident_id: row.incident_id.clone(),
                        title: format!("[this incident cannot be read: {}]", e.message),
                        aware_at: Timestamp(row.aware_at).to_rfc3339(),
                        opened_at: Timestamp(row.opened_at).to_rfc3339(),
                        opened_by: row.opened_by.clone(),
                        phase: row.phase.clone(),
                        risk: row.risk.clone(),
                        authority_deadline: None,
                        notified: Vec::new(),
                        subjects_affected: None,
                    }),
                }
            }
            Ok(Allowed::Read(IncidentRegister { incidents }, None))
        })
        .await
    }

    /// One incident: its timeline, tasks, duties with their countdowns, latest scope.
    #[tracing::instrument(skip_all)]
    pub async fn incident(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
    ) -> Result<Incident, VaultError> {
        self.audited(self.incident_event("incident.read", caller, incident_id), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            let opened = self.read_incident(incident_id).await?;
            Ok(Allowed::Read(self.view(&opened, now)?, None))
        })
        .await
    }

    /// Appends entries to an incident's timeline (and moves its phase or risk) in one
    /// transaction with the audit entry; answers the incident as it now is.
    /// Refuses a caller without `manage_incidents` before its body is read, audited as
    /// [`Self::change_incident`] audits it: a key without the capability was answered 400 for
    /// a body's mistake, and no denial was written (review).
    async fn refuse_unless_managing(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        kind: &'static str,
    ) -> Result<(), VaultError> {
        if gate::require(&self.policies, caller, Capability::ManageIncidents).is_ok() {
            return Ok(());
        }
        let event = self
            .incident_event("incident.update", caller, incident_id)
            .detail("kind", kind);
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            Ok(Allowed::Written(()))
        })
        .await
    }

    async fn change_incident(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        kind: &'static str,
        decide: impl Fn(&Opened) -> Result<(Vec<Body>, Option<(String, String)>), VaultError>,
    ) -> Result<Incident, VaultError> {
        let event = self
            .incident_event("incident.update", caller, incident_id)
            .detail("kind", kind);
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            // One change at a time in this process, and one met by another node's change first
            // is decided again on the incident as it now is, a few times (responders adding
            // notes at once lost 17 of 20 to 409; review).
            let _one_at_a_time = self.incident_writes.lock().await;
            let mut tries = 0;
            loop {
                tries += 1;
                let opened = self.read_incident(incident_id).await?;
                let (bodies, state) = decide(&opened)?;
                let before = opened.entries.len();
                let rows = bodies
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| self.entry_row(incident_id, caller, now, kind, (b, before + i)))
                    .collect::<Result<Vec<_>, _>>()?;
                let audit = self.audit_row(&event, now, None)?;
                let change = self.timeline_change(&opened, state, rows, now)?;
                let written = self
                    .store
                    .write(move |mut tx| {
                        Box::pin(async move {
                            tx.incidents().extend(&change).await?;
                            tx.audit().append(&[audit]).await
                        })
                    })
                    .await;
                match written {
                    Err(custodia_store::StoreError::Conflict(what)) if what == "incident" && tries < CHANGE_TRIES => {}
                    Err(e) => return Err(e.into()),
                    Ok(()) => break,
                }
            }
            let opened = self.read_incident(incident_id).await?;
            Ok(Allowed::Written(self.view(&opened, now)?))
        })
        .await
    }

    /// Adds a note, a task, a task done, an affected system or a decision.
    #[tracing::instrument(skip_all)]
    pub async fn add_incident_entry(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &IncidentEntryRequest,
    ) -> Result<Incident, VaultError> {
        self.refuse_unless_managing(caller, now, incident_id, "entry").await?;
        let kind = crate::vocabulary::one_of(ENTRY_KINDS, &req.kind, "kind", "invalid_entry")?;
        self.change_incident(caller, now, incident_id, kind, |opened| {
            if kind == "task_done" {
                let tasks = tasks(&opened.entries);
                let n = req.task.ok_or_else(|| {
                    VaultError::unprocessable("invalid_entry", "a task_done entry names the task's number")
                        .with_field("task")
                })?;
                let task = tasks.iter().find(|t| t.task == n).ok_or_else(|| {
                    VaultError::not_found("task_not_found", "the incident has no task with that number")
                        .with_field("task")
                })?;
                if task.done {
                    return Err(VaultError::new(
                        ErrorKind::Conflict,
                        "task_done",
                        "that task is already done",
                    ));
                }
                return Ok((
                    vec![Body {
                        text: format!("Task {n} done"),
                        task: Some(n),
                        ..Body::default()
                    }],
                    None,
                ));
            }
            let text = req.text.as_deref().ok_or_else(|| {
                VaultError::unprocessable("invalid_entry", format!("a {kind} entry needs text")).with_field("text")
            })?;
            let max = if kind == "system" { MAX_TITLE } else { MAX_TEXT };
            let text = responder_text("text", text, max, kind != "system")?;
            Ok((
                vec![Body {
                    text,
                    ..Body::default()
                }],
                None,
            ))
        })
        .await
    }

    /// Moves an incident to another phase (NIST SP 800-61; any order: they loop).
    #[tracing::instrument(skip_all)]
    pub async fn set_incident_phase(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &IncidentPhaseRequest,
    ) -> Result<Incident, VaultError> {
        self.refuse_unless_managing(caller, now, incident_id, "phase").await?;
        let phase = crate::vocabulary::one_of(&PHASES, &req.phase, "phase", "invalid_phase")?;
        let note = req
            .note
            .as_deref()
            .map(|n| responder_text("note", n, MAX_TEXT, true))
            .transpose()?;
        self.change_incident(caller, now, incident_id, "phase", |opened| {
            let text = match &note {
                Some(note) => format!("Phase: {} -> {phase}. {note}", opened.row.phase),
                None => format!("Phase: {} -> {phase}", opened.row.phase),
            };
            Ok((
                vec![Body {
                    text,
                    to: Some((*phase).to_owned()),
                    ..Body::default()
                }],
                Some(((*phase).to_owned(), opened.row.risk.clone())),
            ))
        })
        .await
    }

    /// Records a risk assessment (GDPR Art. 33(1): a risk; 34(1): a high risk) and why.
    #[tracing::instrument(skip_all)]
    pub async fn assess_incident_risk(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &IncidentRiskRequest,
    ) -> Result<Incident, VaultError> {
        self.refuse_unless_managing(caller, now, incident_id, "risk").await?;
        let risk = crate::vocabulary::one_of(RISKS, &req.risk, "risk", "invalid_risk")
            .map(Risk::parse)?
            .ok_or_else(|| VaultError::internal(&"a listed risk did not parse"))?;
        let reason = responder_text("reason", &req.reason, MAX_TEXT, true)?;
        self.change_incident(caller, now, incident_id, "risk", |opened| {
            Ok((
                vec![Body {
                    text: reason.clone(),
                    to: Some(risk.as_str().to_owned()),
                    ..Body::default()
                }],
                Some((opened.row.phase.clone(), risk.as_str().to_owned())),
            ))
        })
        .await
    }

    /// Records a notification as sent (the log of what was sent).
    #[tracing::instrument(skip_all)]
    pub async fn record_notification(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &NotificationSentRequest,
    ) -> Result<Incident, VaultError> {
        self.refuse_unless_managing(caller, now, incident_id, "notification_sent")
            .await?;
        let laws = self.breach_laws();
        let law = laws.iter().find(|l| l.name == req.law).ok_or_else(|| {
            VaultError::unprocessable(
                "unknown_law",
                format!(
                    "law must be one of the organization's breach laws ([incidents] laws): {}",
                    self.registry.incidents.laws.join(", ")
                ),
            )
            .with_field("law")
        })?;
        let to = NoticeTo::parse(&req.to)
            .filter(|to| law.notices.iter().any(|n| n.to == *to))
            .ok_or_else(|| {
                let owed: Vec<&str> = law.notices.iter().map(|n| n.to.as_str()).collect();
                VaultError::unprocessable(
                    "unknown_recipient",
                    format!("to must be one of whom {} has notified: {}", law.name, owed.join(", ")),
                )
                .with_field("to")
            })?;
        let sent_at = match &req.sent_at {
            Some(t) => time_field("sent_at", t)?,
            None => now,
        };
        if sent_at > now {
            return Err(VaultError::unprocessable("invalid_time", "sent_at is in the future").with_field("sent_at"));
        }
        let reference = req
            .reference
            .as_deref()
            .map(|r| responder_text("reference", r, MAX_TITLE, false))
            .transpose()?;
        let mut text = format!(
            "Notified {} under {} at {}",
            to.as_str(),
            law.name,
            sent_at.to_rfc3339()
        );
        if let Some(n) = req.recipients {
            text.push_str(&format!(" ({n} recipients)"));
        }
        if let Some(r) = reference {
            text.push_str(&format!("; reference: {r}"));
        }
        let body = Body {
            text,
            law: Some(law.name.clone()),
            to: Some(to.as_str().to_owned()),
            sent_at: Some(sent_at.0),
            ..Body::default()
        };
        self.change_incident(caller, now, incident_id, "notification_sent", |opened| {
            // A breach is notified once known: a notice dated earlier is a typing error that
            // would make a late notification look timely.
            if sent_at.0 < opened.row.aware_at {
                return Err(VaultError::unprocessable(
                    "invalid_time",
                    format!(
                        "sent_at is before the organization became aware of the breach ({})",
                        Timestamp(opened.row.aware_at).to_rfc3339()
                    ),
                )
                .with_field("sent_at"));
            }
            Ok((vec![body.clone()], None))
        })
        .await
    }

    /// The blast radius: from the audit log, exactly which subjects' data the named
    /// principals read in `[from, to)` (or which reads touched the named subjects or
    /// collections), which categories, how many records, in which form, under which laws.
    /// Kept on the timeline (with each subject's categories, for the letters).
    #[tracing::instrument(skip_all)]
    pub async fn incident_scope(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &ScopeRequest,
    ) -> Result<Scope, VaultError> {
        let event = self.incident_event("incident.scope", caller, incident_id);
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            let opened = self.read_incident(incident_id).await?;
            let (summary, subjects) = self.blast_radius(now, req).await?;
            let body = Body {
                text: format!(
                    "Scope computed: {} people, {} records, categories: {}",
                    summary.subjects_affected,
                    summary.records,
                    list_words(&summary.categories)
                ),
                scope: Some(StoredScope {
                    summary: summary.clone(),
                    subjects: subjects.clone(),
                }),
                ..Body::default()
            };
            let row = self.entry_row(incident_id, caller, now, "scope", (body, opened.entries.len()))?;
            let audit = self.audit_row(
                &event.detail("subjects", summary.subjects_affected.to_string()),
                now,
                None,
            )?;
            let change = self.timeline_change(&opened, None, vec![row], now)?;
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        tx.incidents().extend(&change).await?;
                        tx.audit().append(&[audit]).await
                    })
                })
                .await?;
            Ok(Allowed::Written(Scope {
                subjects: subjects.into_keys().collect(),
                summary,
            }))
        })
        .await
    }

    /// Every entry `query` selects, read as a [`ReadEntry`], oldest first, a page at a time.
    async fn each_entry(&self, query: &AuditQuery, mut each: impl FnMut(ReadEntry, i64)) -> Result<(), VaultError> {
        let mut after = 0;
        loop {
            let rows = self.store.reader().await?.audit().query(query, after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                if let Ok(entry) = serde_json::from_str::<ReadEntry>(&row.entry) {
                    each(entry, row.at);
                }
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        Ok(())
    }

    /// The link ids of the preference center links the `portal.link` entries `query` selects.
    async fn portal_links_in(&self, query: &AuditQuery) -> Result<BTreeSet<String>, VaultError> {
        let mut links = BTreeSet::new();
        self.each_entry(query, |entry, _| {
            if let Some(link) = entry.detail.get("link") {
                links.insert(link.clone());
            }
        })
        .await?;
        Ok(links)
    }

    /// A scope selects entries by their indexed columns (principal, subject, time...) and by
    /// the subject index, not by their text: an entry whose columns were edited in the
    /// database (a leaked key's reads given to another principal), or rewritten whole, or
    /// deleted, would drop out of it unseen. So the entries from the window's start to the
    /// log's end are checked first with the vault's keys (`verify::check_range`: columns,
    /// leaves, tags, links) and the subject index against them, and a fault stops the vault as
    /// a log that no longer matches its checkpoints does (the start and `audit verify` name it
    /// too). The window starts at the newest checkpoint signed a minute (clocks) before `from`;
    /// the checkpoints' times are not signed, so the first entry read must be dated before
    /// that by its own (tagged, linked) text, or a checkpoint's time was moved.
    async fn scope_window_holds(&self, from: Timestamp) -> Result<(), VaultError> {
        const SLACK_MS: i64 = 60_000;
        let before = from.0.saturating_sub(SLACK_MS);
        let mut reader = self.store.reader().await?;
        let covered = reader.audit().checkpoint_size_before(before).await?;
        // from the last entry that checkpoint covers (on PostgreSQL, one at or before it)
        let after = covered.saturating_sub(1);
        let upto = reader.audit().seq_bounds(after).await?.map_or(after, |(_, high)| high);
        drop(reader);
        let fault = match crate::verify::check_range(
            &self.store,
            (after, upto),
            &self.keys.audit_tags,
            &self.keys.audit_links,
        )
        .await?
        {
            Err(fault) => Some(fault),
            Ok(Some(first)) if covered > 0 && first >= before => Some(format!(
                "the checkpoint at size {covered} is dated before {} but covers an entry of {} (a checkpoint's time was changed)",
                Timestamp(before).to_rfc3339(),
                Timestamp(first).to_rfc3339()
            )),
            Ok(_) => None,
        };
        if let Some(fault) = fault {
            return Err(self.log.stop(format!("{fault} (found by an incident's scope)")));
        }
        let unindexed = self
            .store
            .reader()
            .await?
            .audit()
            .unindexed_subjects(after, upto)
            .await?;
        if unindexed > 0 {
            return Err(self.log.stop(format!(
                "{unindexed} entries about a subject are missing from the subject index (found by an incident's scope)"
            )));
        }
        Ok(())
    }

    async fn blast_radius(
        &self,
        now: Timestamp,
        req: &ScopeRequest,
    ) -> Result<(ScopeSummary, BTreeMap<String, Vec<String>>), VaultError> {
        let from = time_field("from", &req.from)?;
        let to = time_field("to", &req.to)?;
        if from >= to {
            return Err(VaultError::unprocessable(
                "invalid_period",
                "`from` must be before `to`",
            ));
        }
        if req.principals.is_empty() && req.subjects.is_empty() && req.collections.is_empty() {
            return Err(VaultError::unprocessable(
                "invalid_scope",
                "name what was compromised: principals, subjects or collections (at least one)",
            ));
        }
        for (field, list) in [
            ("principals", &req.principals),
            ("subjects", &req.subjects),
            ("collections", &req.collections),
        ] {
            if list.len() > MAX_SCOPE_NAMES {
                return Err(VaultError::bad_request(
                    "invalid_scope",
                    format!("{field} may name at most {MAX_SCOPE_NAMES}"),
                )
                .with_field(field));
            }
        }
        for c in &req.collections {
            if self.registry.collection(c).is_none() {
                return Err(VaultError::unprocessable(
                    "unknown_collection",
                    format!(
                        "no collection {} is declared in the registry",
                        crate::quoted_name(c, false)
                    ),
                )
                .with_field("collections"));
            }
        }
        let digests = req
            .subjects
            .iter()
            .map(|s| {
                let subject = SubjectId::parse(s).map_err(|e| e.with_field("subjects"))?;
                self.keys.audit_subject(&subject)
            })
            .collect::<Result<BTreeSet<String>, _>>()?;
        // The preference center links a named key issued act as `portal:<link>` principals:
        // whoever held the key could open them (links last a day at most, so one issued up to
        // a day before `from` counts). A named link must be one this vault issued then.
        let issued_since = Timestamp(
            from.0
                .saturating_sub(i64::try_from(crate::PORTAL_LINK_MAX_TTL_SECONDS * 1000).unwrap_or(i64::MAX)),
        );
        let links_issued = |principal: Option<&str>| AuditQuery {
            principal: principal.map(str::to_owned),
            action: Some("portal.link".to_owned()),
            decision: Some("allow".to_owned()),
            from: Some(issued_since.0),
            to: Some(to.0),
            ..AuditQuery::default()
        };
        let named_links: BTreeSet<&str> = req
            .principals
            .iter()
            .filter_map(|p| p.strip_prefix("portal:"))
            .collect();
        let known_links = if named_links.is_empty() {
            BTreeSet::new()
        } else {
            self.portal_links_in(&links_issued(None)).await?
        };
        // A mistyped id would find nothing and look like a harmless key: refused, by position.
        let mut principals: BTreeSet<String> = BTreeSet::new();
        {
            let mut reader = self.store.reader().await?;
            for (i, id) in req.principals.iter().enumerate() {
                let known = match id.strip_prefix("portal:") {
                    Some(link) => known_links.contains(link),
                    None => {
                        reader.principals().by_id(id).await?.is_some() || reader.operators().by_id(id).await?.is_some()
                    }
                };
                if !known {
                    return Err(VaultError::unprocessable(
                        "unknown_principal",
                        format!(
                            "principals[{i}] is no API key's principal id nor operator id of this vault, nor a preference center link it issued from a day before `from` to `to`"
                        ),
                    )
                    .with_field("principals"));
                }
                principals.insert(id.clone());
            }
        }
        for id in req.principals.iter().filter(|p| !p.starts_with("portal:")) {
            for link in self.portal_links_in(&links_issued(Some(id))).await? {
                principals.insert(format!("portal:{link}"));
            }
        }
        self.scope_window_holds(from).await?;
        let collections: BTreeSet<&str> = req.collections.iter().map(String::as_str).collect();
        // The most selective index drives the reading; every named list filters.
        let mut queries = Vec::new();
        let base = AuditQuery {
            decision: Some("allow".to_owned()),
            from: Some(from.0),
            to: Some(to.0),
            ..AuditQuery::default()
        };
        if !principals.is_empty() {
            for p in &principals {
                queries.push(AuditQuery {
                    principal: Some(p.clone()),
                    subjects: digests.iter().cloned().collect(),
                    ..base.clone()
                });
            }
        } else {
            queries.push(AuditQuery {
                subjects: digests.iter().cloned().collect(),
                ..base
            });
        }
        let mut tally = Tally::default();
        for query in &queries {
            self.each_entry(query, |entry, _| {
                let selected = EXPOSING.contains(&entry.action.as_str())
                    && (principals.is_empty() || principals.contains(&entry.principal))
                    // (an access package hands out every collection held)
                    && (collections.is_empty()
                        || entry.action == "request.fulfil"
                        || entry.collection.as_deref().is_some_and(|c| collections.contains(c)))
                    && (digests.is_empty() || entry.subject.as_ref().is_some_and(|s| digests.contains(s)));
                if selected {
                    tally.add(&self.registry, &entry);
                }
            })
            .await?;
        }
        // Subjects are named in the log by keyed digest: computed for every subject held.
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        if !tally.subjects.is_empty() {
            for id in self.store.reader().await?.subjects().all_ids().await? {
                if let Ok(subject) = SubjectId::stored(&id) {
                    let digest = self.keys.audit_subject(&subject)?;
                    if tally.subjects.contains_key(&digest) {
                        ids.insert(digest, id);
                    }
                }
            }
        }
        // Jurisdictions: those the subject's requests named.
        let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let digests: Vec<&str> = tally.subjects.keys().map(String::as_str).collect();
        for (digest, jurisdiction) in self.store.reader().await?.requests().jurisdictions_of(&digests).await? {
            known.entry(digest).or_default().insert(jurisdiction);
        }
        let laws = self.breach_laws();
        let mut jurisdictions: BTreeMap<String, u64> = BTreeMap::new();
        let mut affected_by_law: BTreeMap<String, u64> = laws.iter().map(|l| (l.name.clone(), 0)).collect();
        for digest in tally.subjects.keys() {
            match known.get(digest) {
                Some(js) => {
                    for j in js {
                        *jurisdictions.entry(j.clone()).or_default() += 1;
                    }
                    // Counted under a law unless where the subject is known to be falls
                    // outside it (a law naming no jurisdictions covers everyone).
                    for law in &laws {
                        if law.jurisdictions.is_empty() || law.jurisdictions.iter().any(|j| js.contains(j)) {
                            *affected_by_law.entry(law.name.clone()).or_default() += 1;
                        }
                    }
                }
                None => {
                    // Where an unknown subject lives is not known: counted under every law
                    // the organization is under (over-notifying rather than missing a duty).
                    *jurisdictions.entry("unknown".to_owned()).or_default() += 1;
                    for law in &laws {
                        *affected_by_law.entry(law.name.clone()).or_default() += 1;
                    }
                }
            }
        }
        let mut subjects = BTreeMap::new();
        let mut gone = 0u64;
        for (digest, categories) in &tally.subjects {
            match ids.get(digest) {
                Some(id) => {
                    subjects.insert(id.clone(), categories.iter().cloned().collect());
                }
                None => gone += 1,
            }
        }
        let exposure = tally.exposure();
        let summary = ScopeSummary {
            subjects_affected: u64::try_from(tally.subjects.len()).unwrap_or(u64::MAX),
            categories: tally.forms.keys().cloned().collect(),
            records: tally.records,
            entries: tally.entries,
            collections: tally.collections,
            fields: tally.fields.into_iter().collect(),
            unintelligible: tally.entries > 0 && exposure.plaintext.is_empty() && !tally.opaque,
            packages: tally.packages,
            exposure,
            jurisdictions,
            affected_by_law,
            subjects_gone: gone,
            principals: req.principals.clone(),
            from: from.to_rfc3339(),
            to: to.to_rfc3339(),
            computed_at: now.to_rfc3339(),
        };
        Ok((summary, subjects))
    }

    /// Runs a containment action (all but the root key's rotation, which the server starts
    /// and records with [`Vault::record_containment`]) and records it on the timeline.
    #[tracing::instrument(skip_all)]
    pub async fn contain(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        req: &ContainmentRequest,
    ) -> Result<ContainmentResponse, VaultError> {
        self.refuse_unless_managing(caller, now, incident_id, "containment")
            .await?;
        let target = req.target.as_deref();
        let done = match req.action.as_str() {
            "revoke_principal" => {
                let id = target.ok_or_else(|| needs_target("revoke_principal", "a principal id"))?;
                // Refused before anything is done if there is no such incident.
                self.incident(caller, now, incident_id).await?;
                self.revoke_principal(caller, now, id).await?;
                format!("Revoked principal {}", crate::error::shown(id))
            }
            "end_operator_sessions" => self.end_sessions(caller, now, incident_id, target).await?,
            "read_only" | "read_write" => {
                let collection = target.ok_or_else(|| needs_target(&req.action, "a collection"))?;
                self.set_read_only(caller, now, incident_id, collection, req.action == "read_only")
                    .await?
            }
            "rotate_root_key" => {
                return Err(VaultError::bad_request(
                    "server_action",
                    "rotate_root_key is started by the server (POST /v1/incidents/{id}/containment)",
                ));
            }
            other => {
                crate::vocabulary::one_of(CONTAINMENT_ACTIONS, other, "action", "invalid_action")?;
                return Err(VaultError::internal(&"a listed containment action has no handler"));
            }
        };
        if matches!(req.action.as_str(), "revoke_principal") {
            self.record_containment(caller, now, incident_id, &done).await?;
        }
        Ok(ContainmentResponse {
            action: req.action.clone(),
            target: target.map(crate::error::shown),
            done,
        })
    }

    /// Records a containment action done elsewhere on an incident's timeline.
    pub async fn record_containment(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        done: &str,
    ) -> Result<(), VaultError> {
        let body = Body {
            text: done.to_owned(),
            ..Body::default()
        };
        self.change_incident(caller, now, incident_id, "containment", |_| {
            Ok((vec![body.clone()], None))
        })
        .await
        .map(|_| ())
    }

    async fn end_sessions(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        target: Option<&str>,
    ) -> Result<String, VaultError> {
        let event = self
            .incident_event("incident.contain", caller, incident_id)
            .detail("action", "end_operator_sessions");
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            gate::require(&self.policies, caller, Capability::ManageOperators)?;
            let opened = self.read_incident(incident_id).await?;
            let operator = match target {
                Some(id) => Some(self.operator_by(id).await?.operator_id),
                None => None,
            };
            let done = match &operator {
                Some(id) => format!("Ended every session of operator {id}: they must log in again"),
                None => "Ended every operator session: everyone must log in again".to_owned(),
            };
            let row = self.containment_row(&opened, caller, now, &done)?;
            let audit = self.audit_row(&event, now, None)?;
            let change = self.timeline_change(&opened, None, vec![row], now)?;
            let seal = std::sync::Arc::clone(&self.keys.access_seal);
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        let which = match &operator {
                            Some(o) => SessionsOf::Operator(o),
                            None => SessionsOf::All,
                        };
                        tx.operators().revoke_sessions(which, now.0, &*seal).await?;
                        tx.incidents().extend(&change).await?;
                        tx.audit().append(&[audit]).await
                    })
                })
                .await?;
            Ok(Allowed::Written(done))
        })
        .await
    }

    async fn set_read_only(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        collection: &str,
        read_only: bool,
    ) -> Result<String, VaultError> {
        let action = if read_only { "read_only" } else { "read_write" };
        let mut event = self
            .incident_event("incident.contain", caller, incident_id)
            .detail("action", action);
        if self.registry.collection(collection).is_some() {
            event = event.collection(collection);
        }
        self.audited(event.clone(), now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            if self.registry.collection(collection).is_none() {
                return Err(VaultError::unprocessable(
                    "unknown_collection",
                    "target names no collection of the registry",
                )
                .with_field("target")
                .into());
            }
            let opened = self.read_incident(incident_id).await?;
            let done = if read_only {
                format!("Collection {collection} put in read-only mode: record writes are refused until it is lifted")
            } else {
                format!("Collection {collection} taken out of read-only mode")
            };
            let row = self.containment_row(&opened, caller, now, &done)?;
            let audit = self.audit_row(&event, now, None)?;
            let mode = ReadOnlyRow {
                collection: collection.to_owned(),
                since: now.0,
                incident_id: incident_id.to_owned(),
                set_by: caller.id.clone(),
            };
            let change = self.timeline_change(&opened, None, vec![row], now)?;
            let changed = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        let changed = if read_only {
                            tx.incidents().set_read_only(&mode).await?
                        } else {
                            tx.incidents().clear_read_only(&mode.collection).await?
                        };
                        if changed {
                            tx.incidents().extend(&change).await?;
                            tx.audit().append(&[audit]).await?;
                        }
                        Ok(changed)
                    })
                })
                .await?;
            self.caches.read_only.invalidate(READ_ONLY_KEY);
            if !changed {
                return Err(VaultError::new(
                    ErrorKind::Conflict,
                    "mode_unchanged",
                    if read_only {
                        "the collection is already in read-only mode"
                    } else {
                        "the collection is not in read-only mode"
                    },
                )
                .into());
            }
            Ok(Allowed::Written(done))
        })
        .await
    }

    /// The collections in read-only mode (cached; see `cache.rs`).
    pub(crate) async fn read_only_collections(&self) -> Result<Arc<BTreeSet<String>>, VaultError> {
        if let Some(set) = self.caches.read_only.get(READ_ONLY_KEY) {
            return Ok(set);
        }
        let generation = self.caches.read_only.generation();
        let rows = self.store.reader().await?.incidents().read_only().await?;
        let set = Arc::new(rows.into_iter().map(|r| r.collection).collect::<BTreeSet<_>>());
        self.caches.read_only.put(READ_ONLY_KEY, generation, Arc::clone(&set));
        Ok(set)
    }

    /// Refuses a write to a collection in read-only mode (a containment action): a refusal,
    /// audited like any other.
    pub(crate) async fn refuse_if_read_only(&self, collection: &str) -> Result<(), VaultError> {
        if self.read_only_collections().await?.contains(collection) {
            return Err(VaultError::forbidden(
                "collection_read_only",
                "the collection is in read-only mode while an incident is contained: writes are refused until it is lifted",
            ));
        }
        Ok(())
    }

    /// A draft notification, rendered from `template` (default: the built-in one).
    #[tracing::instrument(skip_all)]
    pub async fn incident_draft(
        &self,
        caller: &Principal,
        now: Timestamp,
        incident_id: &str,
        draft: Draft<'_>,
    ) -> Result<String, VaultError> {
        let mut event = self.incident_event("incident.draft", caller, incident_id);
        let subject = match draft {
            Draft::Subject(s) => {
                let subject = SubjectId::parse(s)?;
                event = self.about(event.detail("draft", "subject"), &subject)?;
                Some(subject)
            }
            Draft::Authority(_) => {
                event = event.detail("draft", "authority");
                None
            }
        };
        self.audited(event, now, async {
            gate::require(&self.policies, caller, Capability::ManageIncidents)?;
            let opened = self.read_incident(incident_id).await?;
            let view = self.view(&opened, now)?;
            let mut values = self.draft_values(&opened, &view, now);
            let template = self.incident_template(draft)?;
            let template = template.as_deref();
            let text = match (draft, subject) {
                (Draft::Subject(_), Some(subject)) => {
                    let scope = latest_scope(&opened.entries).ok_or_else(|| {
                        VaultError::new(
                            ErrorKind::Conflict,
                            "scope_missing",
                            "compute the incident's scope first (POST /v1/incidents/{id}/scope): the letter says what was read",
                        )
                    })?;
                    let categories = scope.subjects.get(subject.as_str()).ok_or_else(|| {
                        VaultError::not_found(
                            "subject_not_affected",
                            "that subject is not among those the incident's latest scope found",
                        )
                    })?;
                    let words: Vec<String> = categories.iter().map(|c| category_words(c)).collect();
                    values.insert("your_categories", list_words(&words));
                    // A letter goes to one person: it copies none of the responders' texts (the
                    // risk's reason, decisions, containment), written for them and free to name
                    // other people (whom to call first, whose address leaked). The writer says
                    // it in plain words, with the incident beside them.
                    values.insert(
                        "consequences",
                        "[describe the likely consequences for this person, in plain words]".to_owned(),
                    );
                    values.insert(
                        "measures",
                        "- [describe what you have done, in plain words]".to_owned(),
                    );
                    render(template.unwrap_or(SUBJECT_TEMPLATE), &values)?
                }
                (Draft::Authority(law), _) => {
                    let laws = self.breach_laws();
                    let duty = view
                        .duties
                        .iter()
                        .filter(|d| d.to == "authority" || d.to == "attorney_general" || d.to == "regulator")
                        .find(|d| law.is_none_or(|l| d.law == l))
                        .ok_or_else(|| {
                            VaultError::unprocessable(
                                "no_authority_duty",
                                "none of the organization's breach laws (or not the one named) has a duty to notify an authority",
                            )
                            .with_field("law")
                        })?;
                    let title = laws.iter().find(|l| l.name == duty.law).map(|l| l.title.clone());
                    values.insert("law", title.unwrap_or_default());
                    values.insert("citation", duty.citation.clone());
                    values.insert("authority", duty.name.clone());
                    values.insert("deadline", duty.due.clone().unwrap_or_else(|| duty.within.clone()));
                    let late = duty.remaining_seconds.is_some_and(|s| s < 0);
                    values.insert(
                        "delay",
                        if late {
                            "This notification is made after the deadline. The reasons for the delay are: [state them, GDPR Art. 33(1)]".to_owned()
                        } else {
                            "This notification is made within the deadline.".to_owned()
                        },
                    );
                    render(template.unwrap_or(AUTHORITY_TEMPLATE), &values)?
                }
                (Draft::Subject(_), None) => return Err(VaultError::internal(&"subject draft without subject").into()),
            };
            Ok(Allowed::Read(text, None))
        })
        .await
    }

    /// The business's own template for `draft`, if the data directory has one.
    fn incident_template(&self, draft: Draft<'_>) -> Result<Option<String>, VaultError> {
        let Some(dir) = &self.incident_templates else {
            return Ok(None);
        };
        let name = match draft {
            Draft::Authority(_) => "authority.md",
            Draft::Subject(_) => "subject.md",
        };
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, template = name, "incident template unreadable");
                let why = if e.kind() == std::io::ErrorKind::InvalidData {
                    "is not UTF-8 text"
                } else {
                    "cannot be read as a file"
                };
                Err(VaultError::unprocessable(
                    "invalid_template",
                    format!("the incident template incident-templates/{name} in the data directory {why}"),
                ))
            }
        }
    }

    fn draft_values(&self, opened: &Opened, view: &Incident, now: Timestamp) -> BTreeMap<&'static str, String> {
        let org = &self.registry.organization;
        let scope = latest_scope(&opened.entries);
        let mut v = BTreeMap::new();
        v.insert("organization", org.name.clone());
        v.insert("contact", org.contact.clone());
        v.insert("dpo", org.dpo.clone().unwrap_or_else(|| org.contact.clone()));
        v.insert("incident_id", opened.row.incident_id.clone());
        v.insert("title", opened.header.title.clone());
        v.insert("description", opened.header.description.clone());
        v.insert("aware_at", Timestamp(opened.row.aware_at).to_rfc3339());
        v.insert("today", now.to_rfc3339());
        v.insert("systems", list_words(&view.systems));
        v.insert("risk", view.summary.risk.replace('_', " "));
        v.insert(
            "consequences",
            view.risk_reason
                .clone()
                .unwrap_or_else(|| "[not assessed yet: describe the likely consequences]".to_owned()),
        );
        let measures: Vec<String> = opened
            .entries
            .iter()
            .filter(|(e, _)| e.kind == "containment" || e.kind == "decision")
            .map(|(e, b)| format!("- {} ({})", b.text, Timestamp(e.at).to_rfc3339()))
            .collect();
        v.insert(
            "measures",
            if measures.is_empty() {
                "- [none recorded yet]".to_owned()
            } else {
                measures.join("\n")
            },
        );
        match scope {
            Some(s) => {
                let words: Vec<String> = s.summary.categories.iter().map(|c| category_words(c)).collect();
                v.insert("subjects_count", s.summary.subjects_affected.to_string());
                v.insert("records_count", s.summary.records.to_string());
                let mut words = words;
                if s.summary.packages > 0 {
                    words.push(format!(
                        "everything held about the people whose access packages were handed out ({})",
                        s.summary.packages
                    ));
                }
                v.insert("categories", list_words(&words));
                let e = &s.summary.exposure;
                let words = |cs: &[String]| list_words(&cs.iter().map(|c| category_words(c)).collect::<Vec<_>>());
                v.insert(
                    "exposure",
                    format!(
                        "read in plain text: {}; read masked only: {}; read as tokens only: {}",
                        words(&e.plaintext),
                        words(&e.masked),
                        words(&e.tokenized)
                    ),
                );
            }
            None => {
                for key in ["subjects_count", "records_count", "categories", "exposure"] {
                    v.insert(key, "[not known yet: compute the scope]".to_owned());
                }
            }
        }
        v
    }

    /// The incident as answered: folds the timeline, computes the duties at `now`.
    fn view(&self, opened: &Opened, now: Timestamp) -> Result<Incident, VaultError> {
        let row = &opened.row;
        let risk = Risk::parse(&row.risk).unwrap_or(Risk::Unassessed);
        let scope = latest_scope(&opened.entries);
        let mut systems = opened.header.systems.clone();
        let mut decisions = Vec::new();
        let mut risk_reason = None;
        // (law, to) -> when it was sent, as the responder says, and when that was recorded
        let mut sent: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        let mut timeline = Vec::with_capacity(opened.entries.len());
        for (e, body) in &opened.entries {
            match e.kind.as_str() {
                "system" => systems.push(body.text.clone()),
                "decision" => decisions.push(body.text.clone()),
                "risk" => risk_reason = Some(body.text.clone()),
                "notification_sent" => {
                    if let (Some(law), Some(to), Some(at)) = (&body.law, &body.to, body.sent_at) {
                        sent.entry((law.clone(), to.clone())).or_insert((at, e.at));
                    }
                }
                _ => {}
            }
            let text = match e.kind.as_str() {
                "risk" => format!("Risk: {}. {}", body.to.as_deref().unwrap_or("?"), body.text),
                "task" => format!("Task: {}", body.text),
                "system" => format!("System affected: {}", body.text),
                "decision" => format!("Decision: {}", body.text),
                _ => body.text.clone(),
            };
            timeline.push(TimelineEntry {
                at: Timestamp(e.at).to_rfc3339(),
                by: e.by_principal.clone(),
                kind: e.kind.clone(),
                text,
            });
        }
        let laws = self.breach_laws();
        let found = scope.filter(|s| s.summary.entries > 0);
        let facts = breach::Facts {
            aware_at: row.aware_at,
            risk,
            // A scope that found no read says nothing of the people a breach reached outside
            // the vault's log: duties stay as they are without one.
            affected: found.map(|s| &s.summary.affected_by_law),
            unintelligible: found.map(|s| s.summary.unintelligible),
        };
        let computed = breach::duties(&laws, &facts);
        let duties = computed
            .iter()
            .map(|d| {
                let sent_at = sent
                    .get(&(d.law.name.clone(), d.notice.to.as_str().to_owned()))
                    .copied();
                let (owed, why) = match &d.owed {
                    Owed::Yes => ("yes", None),
                    Owed::Provisionally(why) => ("provisionally", Some((*why).to_owned())),
                    Owed::No(why) => ("no", Some((*why).to_owned())),
                };
                let remaining = d.due.map(|due| (due - now.0) / 1000);
                let countdown = match (sent_at, &d.owed, d.due) {
                    (Some((at, recorded)), _, due) => sent_words(at, recorded, due),
                    (None, Owed::No(_), _) => "not owed".to_owned(),
                    (None, _, Some(due)) => countdown(due - now.0),
                    (None, _, None) => "as soon as possible (without undue delay)".to_owned(),
                };
                NotificationDuty {
                    law: d.law.name.clone(),
                    law_title: d.law.title.clone(),
                    to: d.notice.to.as_str().to_owned(),
                    name: d.notice.name.clone(),
                    within: d.notice.within.to_string(),
                    citation: d.notice.citation.clone(),
                    owed: owed.to_owned(),
                    why,
                    due: d.due.map(|t| Timestamp(t).to_rfc3339()),
                    remaining_seconds: remaining,
                    countdown,
                    sent_at: sent_at.map(|(t, _)| Timestamp(t).to_rfc3339()),
                }
            })
            .collect();
        let summary = IncidentSummary {
            incident_id: row.incident_id.clone(),
            title: opened.header.title.clone(),
            aware_at: Timestamp(row.aware_at).to_rfc3339(),
            opened_at: Timestamp(row.opened_at).to_rfc3339(),
            opened_by: row.opened_by.clone(),
            phase: row.phase.clone(),
            risk: row.risk.clone(),
            authority_deadline: authority_deadline(&computed).map(|t| Timestamp(t).to_rfc3339()),
            notified: sent.keys().map(|(law, to)| format!("{law}:{to}")).collect(),
            subjects_affected: scope.map(|s| s.summary.subjects_affected),
        };
        Ok(Incident {
            summary,
            description: opened.header.description.clone(),
            source: opened.header.source.clone(),
            risk_reason,
            systems,
            tasks: tasks(&opened.entries),
            decisions,
            duties,
            scope: scope.map(|s| s.summary.clone()),
            timeline,
            read_only_collections: Vec::new(),
        })
    }

    /// One incident with the collections now read-only (for the server's answer).
    pub async fn incident_with_modes(&self, mut incident: Incident) -> Result<Incident, VaultError> {
        incident.read_only_collections = self.read_only_collections().await?.iter().cloned().collect();
        Ok(incident)
    }
}

/// The part of an incident its row seals (title, description, source, systems).
const HEADER_PART: &str = "header";

/// The part of an incident its row's [`EntryCount`] seals (no timeline entry's kind).
const TALLY_PART: &str = "tally";

/// Reads of an incident while changes come before it answers that it changed.
const READ_TRIES: usize = 5;

/// What a sealed part of an incident is bound to: the incident and the part (the header, or
/// a timeline entry's kind), so no ciphertext opens in another place.
fn context<'a>(incident_id: &'a str, part: &'a str) -> custodia_crypto::FieldContext<'a> {
    custodia_crypto::FieldContext {
        collection: "incidents",
        subject: incident_id,
        record: incident_id,
        field: part,
    }
}

fn needs_target(action: &str, what: &str) -> VaultError {
    VaultError::unprocessable("invalid_action", format!("{action} needs a target: {what}")).with_field("target")
}

/// The earliest fixed deadline to tell an authority that is owed (or may be).
fn authority_deadline(duties: &[breach::Duty<'_>]) -> Option<i64> {
    duties
        .iter()
        .filter(|d| d.notice.to == NoticeTo::Authority && !matches!(d.owed, Owed::No(_)))
        .filter_map(|d| d.due)
        .min()
}

fn latest_scope(entries: &[(IncidentEntryRow, Body)]) -> Option<&StoredScope> {
    entries.iter().rev().find_map(|(_, b)| b.scope.as_ref())
}

fn tasks(entries: &[(IncidentEntryRow, Body)]) -> Vec<IncidentTask> {
    let mut tasks: Vec<IncidentTask> = Vec::new();
    for (e, body) in entries {
        match e.kind.as_str() {
            "task" => tasks.push(IncidentTask {
                task: u32::try_from(tasks.len() + 1).unwrap_or(u32::MAX),
                text: body.text.clone(),
                done: false,
                done_at: None,
            }),
            "task_done" => {
                if let Some(t) = tasks.iter_mut().find(|t| Some(t.task) == body.task) {
                    t.done = true;
                    t.done_at = Some(Timestamp(e.at).to_rfc3339());
                }
            }
            _ => {}
        }
    }
    tasks
}

/// What the scope keeps of one audit entry.
#[derive(serde::Deserialize)]
struct ReadEntry {
    principal: String,
    action: String,
    collection: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    detail: BTreeMap<String, String>,
}

/// How one category left the vault, the most revealing form seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Form {
    Token,
    Masked,
    Plain,
}

#[derive(Default)]
struct Tally {
    /// Subject digest -> categories read.
    subjects: BTreeMap<String, BTreeSet<String>>,
    forms: BTreeMap<String, Form>,
    fields: BTreeSet<String>,
    collections: BTreeMap<String, u64>,
    records: u64,
    entries: u64,
    /// Reads whose data cannot be told from the entry (an access package): not unintelligible.
    opaque: bool,
    packages: u64,
}

impl Tally {
    fn add(&mut self, registry: &custodia_registry::Registry, e: &ReadEntry) {
        let listed = |name: &str| -> BTreeSet<String> {
            e.detail
                .get(name)
                .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let (masked, tokens) = (listed("masked"), listed("tokens"));
        let records = e.detail.get("records").and_then(|n| n.parse::<u64>().ok()).unwrap_or(1);
        if SHOWING_CHOICES.contains(&e.action.as_str()) {
            if e.detail.get("entries").is_some_and(|n| n == "0") {
                // a consent history or a page of nothing: nothing left the vault
                return;
            }
            self.entries += 1;
            *self.forms.entry(CHOICES.to_owned()).or_insert(Form::Plain) = Form::Plain;
            if let Some(s) = &e.subject {
                self.subjects.entry(s.clone()).or_default().insert(CHOICES.to_owned());
            }
            return;
        }
        let package = e.action == "request.fulfil";
        if package && !matches!(e.detail.get("type").map(String::as_str), Some("access" | "portability")) {
            // An erasure or a rectification hands nothing out.
            return;
        }
        // A package that held no value and no choice (a subject with nothing, or tokens alone,
        // which it names without their values) handed nothing out either.
        let empty_package = package
            && e.detail.get("fields").is_some_and(String::is_empty)
            && e.detail.get("choices").is_none_or(|c| c != "true");
        if empty_package || (!package && (records == 0 || e.fields.is_empty())) {
            // A read that returned no value (an empty list, a record with nothing this
            // purpose may see): nothing left the vault.
            return;
        }
        self.entries += 1;
        let mut categories = BTreeSet::new();
        if let Some(c) = &e.collection {
            *self.collections.entry(c.clone()).or_default() += records;
            for f in &e.fields {
                self.fields.insert(format!("{c}.{f}"));
                let Some(category) = registry
                    .collection(c)
                    .and_then(|col| col.fields.get(f))
                    .map(|d| d.category.clone())
                else {
                    continue;
                };
                let form = if tokens.contains(f) {
                    Form::Token
                } else if masked.contains(f) {
                    Form::Masked
                } else {
                    Form::Plain
                };
                let seen = self.forms.entry(category.clone()).or_insert(form);
                *seen = (*seen).max(form);
                categories.insert(category);
            }
        } else if package {
            // An access or portability package: everything held about the subject, in plain
            // text, as its entry names it (`collection.field`s and whether choices were in
            // it); the entry of one handed out before entries named it tells nothing.
            self.packages += 1;
            categories.insert(PACKAGE.to_owned());
            match e.detail.get("fields") {
                Some(fields) => {
                    for name in fields.split(',').filter(|s| !s.is_empty()) {
                        self.fields.insert(name.to_owned());
                        let category = name.split_once('.').and_then(|(c, f)| {
                            registry
                                .collection(c)
                                .and_then(|col| col.fields.get(f))
                                .map(|d| d.category.clone())
                        });
                        if let Some(category) = category {
                            self.forms.insert(category.clone(), Form::Plain);
                            categories.insert(category);
                        }
                    }
                    if e.detail.get("choices").is_some_and(|c| c == "true") {
                        self.forms.insert(CHOICES.to_owned(), Form::Plain);
                        categories.insert(CHOICES.to_owned());
                    }
                }
                None => self.opaque = true,
            }
        }
        self.records += records;
        if let Some(s) = &e.subject {
            self.subjects.entry(s.clone()).or_default().extend(categories);
        }
    }

    fn exposure(&self) -> Exposure {
        let pick = |form: Form| -> Vec<String> {
            self.forms
                .iter()
                .filter(|(_, f)| **f == form)
                .map(|(c, _)| c.clone())
                .collect()
        };
        Exposure {
            plaintext: pick(Form::Plain),
            masked: pick(Form::Masked),
            tokenized: pick(Form::Token),
        }
    }
}

/// Fills `{{name}}` placeholders; an unknown name or an unclosed one is refused, naming it.
pub fn render(template: &str, values: &BTreeMap<&'static str, String>) -> Result<String, VaultError> {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| VaultError::unprocessable("invalid_template", "the template has a `{{` without its `}}`"))?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| {
            let known: Vec<&str> = values.keys().copied().collect();
            VaultError::unprocessable(
                "invalid_template",
                format!(
                    "the template names {}, which is no placeholder; placeholders: {}",
                    crate::quoted_name(name, false),
                    known.join(", ")
                ),
            )
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The placeholders of the drafts (the letter's `your_categories` only in the letter; `law`,
/// `citation`, `authority`, `deadline`, `delay` only in the authority's notification).
pub const PLACEHOLDERS: [&str; 22] = [
    "organization",
    "contact",
    "dpo",
    "incident_id",
    "title",
    "description",
    "aware_at",
    "today",
    "systems",
    "risk",
    "consequences",
    "measures",
    "subjects_count",
    "records_count",
    "categories",
    "exposure",
    "your_categories",
    "law",
    "citation",
    "authority",
    "deadline",
    "delay",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_read_as_people_say_them() {
        assert_eq!(countdown(72 * 3_600_000), "3d 0h 0m left");
        assert_eq!(countdown(71 * 3_600_000 + 59 * 60_000 + 59_999), "2d 23h 59m left");
        assert_eq!(countdown(5 * 60_000), "0h 5m left");
        assert_eq!(countdown(-(2 * 3_600_000 + 5 * 60_000)), "overdue by 2h 5m");
    }

    /// A notice sent late says by how much; one dated in time but recorded after the
    /// deadline says when it was recorded (the date is the responder's word).
    #[test]
    fn sent_notices_say_when_they_were_late_or_recorded_late() {
        let day = 86_400_000;
        let at = |d: i64| Timestamp(d * day).to_rfc3339();
        assert_eq!(sent_words(2 * day, 2 * day, Some(3 * day)), format!("sent {}", at(2)));
        assert_eq!(sent_words(2 * day, 2 * day, None), format!("sent {}", at(2)));
        assert_eq!(
            sent_words(5 * day, 5 * day, Some(3 * day)),
            format!("sent {}, 2d 0h 0m after the deadline", at(5))
        );
        assert_eq!(
            sent_words(2 * day, 9 * day, Some(3 * day)),
            format!("sent {} (recorded {}, after the deadline)", at(2), at(9))
        );
    }

    #[test]
    fn templates_fill_known_placeholders_and_refuse_others() {
        let values = BTreeMap::from([("organization", "Shop".to_owned()), ("title", "Leak".to_owned())]);
        assert_eq!(
            render("{{organization}}: {{ title }}.", &values).ok().as_deref(),
            Some("Shop: Leak.")
        );
        let e = render("{{nope}}", &values).err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("`nope`") && e.contains("organization"), "{e}");
        assert!(render("{{title", &values).is_err());
        // A value holding braces is not read again as a placeholder.
        let tricky = BTreeMap::from([("title", "{{organization}}".to_owned())]);
        assert_eq!(render("{{title}}", &tricky).ok().as_deref(), Some("{{organization}}"));
    }

    #[test]
    fn built_in_templates_use_only_known_placeholders() {
        let values: BTreeMap<&'static str, String> = PLACEHOLDERS.iter().map(|p| (*p, String::new())).collect();
        assert!(render(AUTHORITY_TEMPLATE, &values).is_ok());
        assert!(render(SUBJECT_TEMPLATE, &values).is_ok());
    }

    #[test]
    fn the_most_revealing_form_wins_and_decides_intelligibility() {
        let registry = custodia_registry::Registry::parse("example.toml", custodia_registry::EXAMPLE_REGISTRY)
            .unwrap_or_else(|e| panic!("{e}"));
        let entry = |fields: &[&str], detail: &[(&str, &str)]| ReadEntry {
            principal: "prn_x".into(),
            action: "record.read".into(),
            collection: Some("customers".into()),
            subject: Some("d1".into()),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            detail: detail.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        let mut t = Tally::default();
        t.add(&registry, &entry(&["card_number"], &[("masked", "card_number")]));
        assert_eq!(t.exposure().masked, ["user.financial.credit_card"]);
        assert!(t.exposure().plaintext.is_empty());
        t.add(&registry, &entry(&["card_number", "email"], &[("records", "3")]));
        assert_eq!(
            t.exposure().plaintext,
            ["user.contact.email", "user.financial.credit_card"]
        );
        assert_eq!(t.records, 4);
        assert_eq!(t.collections["customers"], 4);
    }
}
