//! Incidents: the breach register, timelines, the blast radius from the audit log, the
//! notification duties with their countdowns, drafts and containment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/incidents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenIncidentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(min_length = 1, max_length = 10000)]
    pub description: String,
    /// When the organization became aware of the breach (RFC 3339): the 72-hour clock of
    /// GDPR Art. 33(1) starts here. Not in the future.
    pub aware_at: String,
    /// How it was detected (e.g. `customer report`, `alert`, `audit review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub source: Option<String>,
    /// Systems affected, as known so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub systems: Vec<String>,
}

/// Answer to `POST /v1/incidents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenIncidentResponse {
    pub incident_id: String,
    pub aware_at: String,
    /// The earliest fixed deadline to notify an authority under the organization's breach
    /// laws (GDPR: `aware_at` + 72 hours); `null` when none has a fixed period.
    pub authority_deadline: Option<String>,
}

/// One incident in the breach register (GDPR Art. 33(5)).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentSummary {
    pub incident_id: String,
    pub title: String,
    pub aware_at: String,
    pub opened_at: String,
    pub opened_by: String,
    /// `detect`, `analyse`, `contain`, `eradicate`, `recover` or `post_incident` (NIST SP 800-61).
    pub phase: String,
    /// `unassessed`, `unlikely`, `risk` or `high_risk`.
    pub risk: String,
    pub authority_deadline: Option<String>,
    /// The notifications recorded as sent, as `law:to`.
    pub notified: Vec<String>,
    /// People affected according to the latest scope, if one was computed.
    pub subjects_affected: Option<u64>,
}

/// Answer to `GET /v1/incidents`: every incident, notified or not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentRegister {
    pub incidents: Vec<IncidentSummary>,
}

/// One incident with its timeline and duties.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    #[serde(flatten)]
    pub summary: IncidentSummary,
    pub description: String,
    pub source: Option<String>,
    /// Why the risk is what it is, as last assessed.
    pub risk_reason: Option<String>,
    pub systems: Vec<String>,
    pub tasks: Vec<IncidentTask>,
    /// Decisions recorded (e.g. on notification), oldest first.
    pub decisions: Vec<String>,
    pub duties: Vec<NotificationDuty>,
    /// The latest blast radius computed.
    pub scope: Option<ScopeSummary>,
    pub timeline: Vec<TimelineEntry>,
    /// Collections in read-only mode now (any incident's).
    pub read_only_collections: Vec<String>,
}

/// A task of an incident.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentTask {
    /// The task's number in the incident, from 1.
    pub task: u32,
    pub text: String,
    pub done: bool,
    pub done_at: Option<String>,
}

/// One entry of an incident's timeline (append-only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub at: String,
    pub by: String,
    /// `opened`, `note`, `task`, `task_done`, `system`, `decision`, `phase`, `risk`, `scope`,
    /// `notification_sent`, `containment`.
    pub kind: String,
    /// What happened, in words.
    pub text: String,
}

/// One duty to notify, with its countdown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationDuty {
    pub law: String,
    pub law_title: String,
    /// `authority`, `subjects`, `attorney_general`, `regulator` or `media`.
    pub to: String,
    /// Whom, in words.
    pub name: String,
    /// `72 hours`, `30 days`, `without undue delay`.
    pub within: String,
    pub citation: String,
    /// `yes`, `provisionally` (unless the pending assessment finds otherwise) or `no`.
    pub owed: String,
    /// Why not, or why only provisionally.
    pub why: Option<String>,
    /// The deadline, for a fixed period.
    pub due: Option<String>,
    /// Seconds left until `due` (negative once it has passed), at the time of the answer.
    pub remaining_seconds: Option<i64>,
    /// `71h 59m left`, `overdue by 2h 5m`, `as soon as possible`, `sent`, `not owed`.
    pub countdown: String,
    /// When the notification was recorded as sent.
    pub sent_at: Option<String>,
}

/// Body of `POST /v1/incidents/{id}/entries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentEntryRequest {
    /// `note`, `task`, `task_done`, `system` or `decision`.
    pub kind: String,
    /// The text (all kinds but `task_done`; a `system` at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 10000)]
    pub text: Option<String>,
    /// The task's number (`task_done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u32>,
}

/// Body of `POST /v1/incidents/{id}/phase`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPhaseRequest {
    /// `detect`, `analyse`, `contain`, `eradicate`, `recover` or `post_incident`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 10000)]
    pub note: Option<String>,
}

/// Body of `POST /v1/incidents/{id}/risk`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentRiskRequest {
    /// `unlikely`, `risk` or `high_risk` (GDPR Art. 33(1), 34(1)).
    pub risk: String,
    /// Why (likely consequences for the people affected).
    #[schema(min_length = 1, max_length = 10000)]
    pub reason: String,
}

/// Body of `POST /v1/incidents/{id}/scope`: what was compromised and when. Entries of the
/// named principals (API keys or operators), or about the named subjects, or in the named
/// collections, in `[from, to)`; at least one of the three lists.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub collections: Vec<String>,
    /// RFC 3339, inclusive.
    #[schema(format = DateTime)]
    pub from: String,
    /// RFC 3339, exclusive.
    #[schema(format = DateTime)]
    pub to: String,
}

/// Data exposed, by the form it left the vault in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Exposure {
    /// Categories read in plain text (or detokenized).
    pub plaintext: Vec<String>,
    /// Categories read masked only.
    pub masked: Vec<String>,
    /// Categories read as tokens only.
    pub tokenized: Vec<String>,
}

/// The blast radius: answer to `POST /v1/incidents/{id}/scope`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Scope {
    /// Every subject whose data was read, by id.
    pub subjects: Vec<String>,
    #[serde(flatten)]
    pub summary: ScopeSummary,
}

/// The counts of a blast radius.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScopeSummary {
    pub subjects_affected: u64,
    /// Data categories read (fideslang), in any form.
    pub categories: Vec<String>,
    /// Records read (a record listed twice counts twice: these are reads).
    pub records: u64,
    /// Audit entries of data leaving the vault in the window.
    pub entries: u64,
    /// Reads by collection.
    pub collections: BTreeMap<String, u64>,
    /// `collection.field` names read.
    pub fields: Vec<String>,
    pub exposure: Exposure,
    /// Whether everything read left the vault masked or as tokens (GDPR Art. 34(3)(a));
    /// false when nothing was read.
    pub unintelligible: bool,
    /// Access or portability packages handed out (everything held about their subjects).
    pub packages: u64,
    /// Subjects by the jurisdiction their data subject requests named; `unknown` for the
    /// others (counted under every law the organization is under).
    pub jurisdictions: BTreeMap<String, u64>,
    /// People affected that each of the organization's breach laws covers.
    pub affected_by_law: BTreeMap<String, u64>,
    /// Subjects the log names that no longer exist (erased since): not listed by id.
    pub subjects_gone: u64,
    pub principals: Vec<String>,
    pub from: String,
    pub to: String,
    pub computed_at: String,
}

/// Body of `POST /v1/incidents/{id}/notifications`: a notification that was sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSentRequest {
    /// A breach law of the organization, e.g. `gdpr`.
    pub law: String,
    /// `authority`, `subjects`, `attorney_general`, `regulator` or `media`.
    pub to: String,
    /// RFC 3339; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// The authority's case number, a mailing's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
    /// How many were notified (letters sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u64>,
}

/// Body of `POST /v1/incidents/{id}/containment`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainmentRequest {
    /// `revoke_principal` (target: principal id; needs manage_principals and grant on its
    /// roles), `end_operator_sessions` (target: operator id, or none for every operator;
    /// manage_operators), `rotate_root_key` (manage_keys), `read_only` / `read_write`
    /// (target: collection).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Answer to `POST /v1/incidents/{id}/containment`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContainmentResponse {
    pub action: String,
    pub target: Option<String>,
    /// What was done, in words (also on the timeline).
    pub done: String,
}
