//! Data subject requests (GDPR Art. 12-22, CCPA/CPRA): the work queue, its steps, and what
//! fulfilling a request returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubjectRequest {
    /// The subject the request is about.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: String,
    /// `access`, `portability`, `rectification`, `erasure`, `restriction`, `objection`,
    /// `opt_out_sale` or `limit_sensitive`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A jurisdiction of the registry's rules: `gdpr`, `ccpa`, or one the registry adds.
    pub jurisdiction: String,
    /// How it was received: `web_form`, `email`, `phone`, `toll_free`, `mail`, `in_person`,
    /// `portal` or `api` (default).
    #[serde(default)]
    pub received_via: Option<String>,
    /// When it was received (RFC 3339; default: now). Deadlines run from this day.
    #[serde(default)]
    pub received_at: Option<String>,
    /// How the caller verified the requester's identity (e.g. "logged-in session"): recorded,
    /// and the request may be fulfilled at once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    pub verified_by: Option<String>,
}

/// Body of `POST /v1/requests/{id}/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// How the requester's identity was (or is being) verified.
    #[schema(min_length = 1, max_length = 1000)]
    pub verified_by: String,
    /// `true`: verification has started but is not complete (status `verifying`).
    #[serde(default)]
    pub pending: bool,
}

/// Body of `POST /v1/requests/{id}/extend` and `/deny`: the reason told to the requester.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// Body of `POST /v1/requests/{id}/fulfil` (optional for most types).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilRequest {
    /// Rectification: the corrected values (at most 100 records).
    #[serde(default, deserialize_with = "crate::object::list")]
    #[schema(max_items = 100)]
    pub corrections: Vec<Correction>,
    /// Objection: the purposes objected to (left out: every purpose an objection applies to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purposes: Option<Vec<String>>,
}

/// One record's corrected values.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub collection: String,
    pub record_id: String,
    /// Field name to its corrected value (the field must hold a value already).
    #[serde(deserialize_with = "crate::object::unique")]
    pub fields: BTreeMap<String, String>,
}

/// A request as the work queue shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubjectRequestView {
    pub request_id: String,
    /// Absent once the subject is erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub jurisdiction: String,
    /// `received`, `verifying`, `in_progress`, `extended`, `completed` or `denied`.
    pub status: String,
    pub received_via: String,
    pub received_at: String,
    /// When receipt must be acknowledged (CCPA: 10 business days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_by: Option<String>,
    /// The deadline in force (RFC 3339, the end of the due day, UTC).
    pub due_at: String,
    /// Open and past its deadline.
    pub overdue: bool,
    /// Past `acknowledge_by` with nothing done yet (still `received`: not verifying, not in
    /// progress): the receipt was due to be confirmed (CCPA: within 10 business days).
    #[serde(default)]
    pub acknowledgement_overdue: bool,
    /// Until when the deadline may still be extended (absent: it may not be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extendable_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<Denial>,
    /// What fulfilling it did (no personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<serde_json::Value>,
    /// Art. 19 notices to recipients, one per recipient.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::NotificationStatus>,
    pub created_by: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// When this request record is deleted (24 months after it closes, CCPA §7101).
    pub keep_until: String,
}

/// A deadline extension and its stated reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Extension {
    pub at: String,
    pub reason: String,
}

/// How the requester's identity was verified, by whom, when (absent `at`: still verifying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub via: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Why a request was denied, and where the requester may complain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Denial {
    pub reason: String,
    pub complain_to: String,
}

/// `GET /v1/requests`: the work queue, soonest due first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectRequestList {
    pub requests: Vec<SubjectRequestView>,
}

/// The answer to fulfilling a request, by its type (for the OpenAPI document: the server
/// sends one of these).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FulfilAnswer {
    /// Rectification, restriction, objection, opt-outs: the request as it now stands.
    Request(Box<SubjectRequestView>),
    /// Erasure: the signed receipt.
    Erasure(Box<ErasureReceipt>),
    /// Access and portability (JSON): the subject's package.
    Package(Box<crate::SubjectPackage>),
}

/// What an erasure destroyed and kept, signed: the response of fulfilling an erasure request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErasureReceipt {
    pub request_id: String,
    pub status: String,
    /// The subject's keyed digest (its id is not kept after an erasure).
    pub subject_digest: String,
    pub erased_at: String,
    /// Key classes destroyed (crypto-shredding): `default`.
    pub destroyed_keys: Vec<String>,
    pub deleted: ErasedCounts,
    /// Data kept because the law requires it (GDPR Art. 17(3)), readable only under its purpose.
    pub kept: Vec<KeptData>,
    /// Whether the SQLite write-ahead log was emptied after the erasure (so no old page of
    /// the destroyed key remains in it); always true on PostgreSQL, whose WAL is its own.
    pub wal_purged: bool,
    /// The receipt as a signed note (C2SP signed-note format): its text lists all of the
    /// above; verify with `custodia receipt verify --public-key KEY FILE`.
    pub signed_note: String,
    /// The receipt signing key (`custodia receipt-key` prints it; pin it out of band).
    pub public_key: String,
}

/// Rows an erasure deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasedCounts {
    pub records: u64,
    pub values: u64,
    pub index_entries: u64,
    pub token_values: u64,
}

/// Values kept after an erasure under a purpose that survives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeptData {
    pub purpose: String,
    /// Why: the purpose's legal basis (e.g. `legal_obligation`, Art. 17(3)(b)).
    pub legal_basis: String,
    /// `collection.field` names.
    pub fields: Vec<String>,
    pub values: u64,
    /// The purpose's retention, e.g. `10y from collection`.
    pub retention: String,
}
