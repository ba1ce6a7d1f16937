//! Wire types of the Custodia HTTP API, shared by the server, the CLI and the tests.
//!
//! Everything here is plain data with serde and OpenAPI (utoipa) derives; no behaviour.
//! Field values travel as JSON strings: the vault validates them by the field's declared type.

use std::collections::BTreeMap;

mod package;
pub use package::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod retention;
pub use retention::{
    ActivityReport, ExpiringWindow, HeldLine, Hold, HoldList, NewHold, ReleaseHold, RetentionReport, SweepLine,
    SweepReport,
};

mod operators;
pub use operators::{
    AccessReview, BreakGlassGrant, BreakGlassRequest, ConfirmEnrolmentRequest, CourseStatus, CreateOperatorRequest,
    CreateOperatorResponse, EnrolRequest, EnrolResponse, KeyStatus, KeyVersionStatus, LoginRequest, LoginResponse,
    OperatorInfo, OperatorList, PrincipalReview, RotationProgress, TrainingRequest,
};
mod incidents;
pub use incidents::{
    ContainmentRequest, ContainmentResponse, Exposure, Incident, IncidentEntryRequest, IncidentPhaseRequest,
    IncidentRegister, IncidentRiskRequest, IncidentSummary, IncidentTask, NotificationDuty, NotificationSentRequest,
    OpenIncidentRequest, OpenIncidentResponse, Scope, ScopeRequest, ScopeSummary, TimelineEntry,
};
mod transparency;
pub use transparency::{NoticeVersion, NoticeVersions, PortalLinkRequest, PortalLinkResponse};
pub mod assess;
pub mod object;
pub use assess::{Assessment, AssessmentCheck, Severity};
mod requests;
pub use requests::{
    Correction, Denial, ErasedCounts, ErasureReceipt, Extension, FulfilAnswer, FulfilRequest, KeptData,
    NewSubjectRequest, ReasonRequest, SubjectRequestList, SubjectRequestView, Verification, VerifyRequest,
};

/// The one JSON error shape: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code` and a human-readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `field_not_in_purpose`.
    pub code: String,
    /// What went wrong, naming the offending field or parameter. Never holds personal data.
    pub message: String,
    /// The field the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Body of `POST /v1/subjects/{subject_id}/records/{collection}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecordRequest {
    /// The purpose this data is collected for; it must declare every field sent.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// Field name to value. Every field must belong to the collection and the purpose.
    #[serde(deserialize_with = "object::unique")]
    pub fields: BTreeMap<String, String>,
}

/// Answer to a record creation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRecordResponse {
    pub record_id: String,
}

/// Body of `POST /v1/batch/records`: records created for one purpose in one transaction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCreateRequest {
    /// The purpose every item is collected for.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// 1 to 1000 records to create.
    #[schema(min_items = 1, max_items = 1000)]
    #[serde(deserialize_with = "object::list")]
    pub items: Vec<BatchCreateItem>,
}

/// One record of a [`BatchCreateRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCreateItem {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub collection: String,
    /// Field name to value, as for one record.
    #[serde(deserialize_with = "object::unique")]
    pub fields: BTreeMap<String, String>,
}

/// Answer to a batch creation: one result per item, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchCreateResponse {
    pub results: Vec<BatchCreateResult>,
}

/// One item's outcome: `201` with its `record_id`, or the status and error the same record
/// would have had alone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchCreateResult {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Body of `POST /v1/batch/records/read`: reads for one purpose, each audited on its own.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReadRequest {
    /// The purpose every read is for.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// 1 to 1000 reads.
    #[schema(min_items = 1, max_items = 1000)]
    #[serde(deserialize_with = "object::list")]
    pub items: Vec<BatchReadItem>,
}

/// One read of a [`BatchReadRequest`]: a record, or (without `record_id`) a page of the
/// subject's records in the collection, as `GET .../records/{collection}` reads it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReadItem {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub collection: String,
    #[serde(default)]
    #[schema(pattern = "^rec_[0-9a-f]{32}$")]
    pub record_id: Option<String>,
    /// Only these fields (as the `fields` query parameter of one read).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Of a list (no `record_id`): the `next_after` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^rec_[0-9a-f]{32}$")]
    pub after: Option<String>,
    /// Of a list (no `record_id`): at most this many records (1 to 1000; default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Answer to a batch read: one result per item, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchReadResponse {
    pub results: Vec<BatchReadResult>,
}

/// One read's outcome: `200` with the records, or the status and error it would have had alone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchReadResult {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Record>>,
    /// Of a list: pass as the item's `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Body of `PATCH /v1/subjects/{subject_id}/records/{collection}/{record_id}`.
///
/// A field set to `null` is erased from the record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRecordRequest {
    /// The purpose of the change, if also given here: it must equal the `purpose` query parameter.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: Option<String>,
    /// Field name to new value, or `null` to erase that field's value.
    #[serde(deserialize_with = "object::unique")]
    pub fields: BTreeMap<String, Option<String>>,
}

/// One record as a purpose may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Record {
    pub record_id: String,
    /// Only fields that the purpose declares and the caller's role may see, in the role's
    /// output form (plain or masked).
    pub fields: BTreeMap<String, String>,
    /// RFC 3339 UTC time of creation.
    pub created_at: String,
    /// RFC 3339 UTC time of the last change to a value this read may see (the record's
    /// creation if none changed since): changes to values other purposes hold are not told.
    pub updated_at: String,
}

/// Answer to a record listing: a page of the subject's records in the collection, oldest
/// first (in record id order, the order they were created).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordList {
    pub records: Vec<Record>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Body of `POST /v1/search`: equality search over a searchable field's blind index.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub collection: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub field: String,
    #[schema(min_length = 1)]
    pub value: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// The `next_after` of the previous page: only records after it (in record id order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^rec_[0-9a-f]{32}$")]
    pub after: Option<String>,
    /// At most this many matches (1 to 1000; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One record whose field matched a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchMatch {
    pub subject_id: String,
    pub record_id: String,
}

/// Answer to a search: the matches in record id order (the order records were created).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub matches: Vec<SearchMatch>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Body of `POST /v1/principals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipalRequest {
    /// A label for the service or person, e.g. `checkout-service`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// Role names from the registry.
    #[schema(min_items = 1)]
    pub roles: Vec<String>,
    /// When the API key stops working (RFC 3339, in the future); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Body of `POST /v1/principals/{principal_id}/client-cert`: the key then works only over TLS
/// with this client certificate (mTLS).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindClientCertRequest {
    /// SHA-256 of the certificate's DER form, 64 hex digits
    /// (`openssl x509 -in client.pem -outform der | sha256sum`).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: String,
}

/// Body of `POST /v1/principals/{principal_id}/rotate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// When the new API key stops working (RFC 3339, in the future); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Answer to a principal creation. The API key is shown here once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatePrincipalResponse {
    pub principal_id: String,
    pub api_key: String,
}

/// A principal as listed (never with its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrincipalInfo {
    pub principal_id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// When its API key stops working; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When its API key last authenticated a request (to the hour); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// Who holds its current key: the principal or operator that created or last rotated it
    /// (absent: `custodia init` or a local command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// SHA-256 (hex) of the client certificate its key works with only (mTLS), if bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_sha256: Option<String>,
    /// True when its row was written or changed in the database outside the vault (it does
    /// not carry the vault's seal): its key is refused; revoke it and find out who wrote it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub altered: bool,
}

/// Answer to `GET /v1/principals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PrincipalList {
    pub principals: Vec<PrincipalInfo>,
}

/// Answer to `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// The storage backend in use: `sqlite` or `postgres`.
    pub store: String,
}

/// Output of `custodia init --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitOutput {
    pub admin_token: String,
    /// The audit log's checkpoint key (`custodia-audit+<key id>+<base64 key>`): keep a copy
    /// outside the vault and give it to `custodia audit verify --public-key`.
    pub audit_public_key: String,
    /// With `--service-role`: the service role's connection URL, with its password (shown
    /// once), for `custodia serve --database-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_database_url: Option<String>,
}

/// Evidence of how a choice was made (GDPR Art. 7(1)). The IP address is stored only as a
/// keyed hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// The subject's IP address when they chose; stored as a keyed hash.
    #[serde(default)]
    pub ip: Option<String>,
    /// The subject's browser user agent (at most 512 characters).
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// Body of `POST /v1/subjects/{subject_id}/consents`: give or withdraw consent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// A purpose whose legal basis is consent.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// `true` gives consent, `false` withdraws it.
    pub granted: bool,
    /// The version of the privacy notice the subject was shown (required to give consent):
    /// letters, digits, `. _ : -`, never personal data. The notices this server showed are
    /// listed by `GET /v1/notice/versions`; a version it never showed (a notice on the
    /// controller's own site, consents imported from before the vault) is accepted and listed
    /// by the posture assessment's `consent_notice_version` check.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
    pub notice_version: Option<String>,
    /// How the choice was made: `web_form`, `api`, `import`, `email`, `in_person`.
    pub method: String,
    #[serde(default, deserialize_with = "object::option")]
    pub evidence: Option<EvidenceInput>,
}

/// Body of `POST /v1/subjects/{subject_id}/objections` (GDPR Art. 21).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionRequest {
    /// A purpose based on legitimate interests or a public task, or a direct marketing purpose.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// `true` (default) objects; `false` lifts an objection.
    #[serde(default = "yes")]
    pub objected: bool,
    pub method: String,
    #[serde(default, deserialize_with = "object::option")]
    pub evidence: Option<EvidenceInput>,
}

/// Body of `POST /v1/subjects/{subject_id}/sale-opt-out` (CCPA/CPRA "Do Not Sell or Share").
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleOptOutRequest {
    /// `true` (default) opts out of sale and sharing; `false` opts back in.
    #[serde(default = "yes")]
    pub opted_out: bool,
    pub method: String,
    #[serde(default, deserialize_with = "object::option")]
    pub evidence: Option<EvidenceInput>,
}

/// Body of `POST /v1/subjects/{subject_id}/restriction` (GDPR Art. 18).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionRequest {
    /// `true` restricts processing; `false` lifts the restriction.
    pub restricted: bool,
    pub method: String,
}

fn yes() -> bool {
    true
}

/// Answer to a ledger append.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerAppended {
    /// The entry's sequence number in the ledger.
    pub seq: i64,
}

/// One entry of a subject's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    /// `consent`, `objection`, `sale_opt_out` or `restriction`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Granted, objected, opted out or restricted (`true`), or the reverse.
    pub value: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    pub method: String,
    /// Who recorded it.
    pub principal_id: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// Stored evidence: `ip_hash` and `user_agent`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// The current consent to one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentState {
    pub purpose: String,
    pub granted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    pub method: String,
    /// RFC 3339 UTC time of the entry that set this state.
    pub at: String,
}

/// Answer to `GET /v1/subjects/{subject_id}/consents`: the current state and the full history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PrivacyState {
    pub subject_id: String,
    /// The current consent for every purpose the subject has ever decided on.
    pub consents: Vec<ConsentState>,
    /// Purposes the subject currently objects to.
    pub objections: Vec<String>,
    /// Opted out of sale and sharing (CCPA/CPRA), by request or Global Privacy Control.
    pub sale_opt_out: bool,
    /// Processing restricted (GDPR Art. 18).
    pub restricted: bool,
    /// Use of sensitive personal information limited (CPRA §1798.121).
    #[serde(default)]
    pub limit_sensitive: bool,
    /// Every entry, oldest first. Withdrawals never rewrite history.
    pub history: Vec<LedgerEntry>,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Position in the log.
    pub seq: i64,
    /// The canonical entry: `v`, `at`, `principal`, `action`, `decision` (`allow`/`deny`),
    /// `reason`, `purpose`, `collection`, `subject` (keyed HMAC), `fields` (names only).
    pub entry: serde_json::Value,
    /// The entry's canonical encoding, byte for byte: its RFC 6962 leaf hash is
    /// SHA-256(0x00 || canonical).
    pub canonical: String,
}

/// Answer to `GET /v1/audit/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvents {
    pub events: Vec<AuditEventView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Body of `POST /v1/tokens`: tokenize values of one subject's field.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub collection: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub field: String,
    /// The purpose of this processing; it must declare the field.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    /// The values (at most 1000), validated by the field's type.
    #[schema(min_items = 1, max_items = 1000)]
    pub values: Vec<String>,
    /// `random` (`tok_` and 32 hex digits), `format_preserving` (a random valid value of the
    /// field's type sharing nothing with the value: digits for card numbers, Luhn-valid, phone
    /// numbers and dates, an IBAN with valid check digits, `...@token.invalid` for emails, 16
    /// letters for text) or `deterministic` (the same formats, and the same token for the same
    /// value of this field, so tokens join). Default `random`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Keep the last four digits (format-preserving and deterministic tokens of card numbers
    /// only).
    #[serde(default)]
    pub keep_last4: bool,
}

/// Answer to a tokenization: one token per value, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenizeResponse {
    pub tokens: Vec<String>,
}

/// Body of `POST /v1/tokens/detokenize`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeRequest {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub purpose: String,
    #[schema(min_items = 1, max_items = 1000)]
    pub tokens: Vec<String>,
}

/// One detokenized value; `value` is absent for an unknown token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DetokenizedValue {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Answer to a detokenization, in request order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetokenizeResponse {
    pub values: Vec<DetokenizedValue>,
}

/// A signed checkpoint of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// How many entries the checkpoint covers.
    pub tree_size: i64,
    /// The RFC 6962 Merkle root of those entries, base64.
    pub root: String,
    /// RFC 3339 UTC time it was signed.
    pub at: String,
    /// The C2SP signed note (origin, size, root, signature line).
    pub note: String,
}

/// The key that signs audit checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPublicKey {
    /// `ed25519`.
    pub algorithm: String,
    /// The signer name in checkpoint notes.
    pub name: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// The same key as `custodia audit verify --public-key` takes it (`name+id+key`, the
    /// signed-note verifier key form).
    pub verifier_key: String,
}

/// Answer to `GET /v1/audit/proof/inclusion`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    /// 0-based position of the entry in the log.
    pub index: u64,
    pub tree_size: u64,
    /// The entry's RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// The audit path, base64 hashes, leaf to root.
    pub proof: Vec<String>,
}

/// Answer to `GET /v1/audit/proof/consistency`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// base64 hashes.
    pub proof: Vec<String>,
}

/// Body of `POST /v1/scan`: find personal data in a text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The text to scan (the request body is limited to 1 MiB).
    pub text: String,
    /// Only these entity types (Presidio names, e.g. `EMAIL_ADDRESS`); default: all.
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    /// Findings scoring under this are not returned; default 0.4.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f64>,
}

/// Why a finding was raised.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanEvidence {
    /// `pattern`, `checksum`, `context`, `dictionary` or `field_name`.
    pub kind: String,
    pub detail: String,
}

/// One entity found in a scanned text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanFinding {
    pub entity_type: String,
    /// Byte offset of the first byte (UTF-8).
    pub start: u64,
    /// Byte offset after the last byte.
    pub end: u64,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in characters.
    pub column: u64,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score: f32,
    pub evidence: Vec<ScanEvidence>,
}

/// Answer to `POST /v1/scan`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanResponse {
    pub findings: Vec<ScanFinding>,
    /// Findings per entity type.
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// How to redact one entity type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactOperator {
    /// `mask`, `replace`, `hash` (keyed HMAC, stable), `encrypt` (AES-256-GCM under the
    /// vault's redaction key), `tokenize` (a vault token) or `keep`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `mask`: letters and digits left unmasked at the end, never more than half of the
    /// value's (a short value is never left whole).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 64)]
    pub keep_last: Option<u32>,
    /// `tokenize`: the subject the tokens belong to.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: Option<String>,
    /// `tokenize`: the registry collection and field whose type the values have.
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    /// `tokenize`: the purpose of this processing.
    #[serde(default)]
    pub purpose: Option<String>,
    /// `tokenize`: `random`, `format_preserving` or `deterministic`.
    #[serde(default)]
    pub token_kind: Option<String>,
}

/// Body of `POST /v1/redact`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactRequest {
    pub text: String,
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f64>,
    /// Operator per entity type.
    #[serde(default, deserialize_with = "object::map")]
    pub operators: std::collections::BTreeMap<String, RedactOperator>,
    /// Operator for the other entity types; default `replace`.
    #[serde(default, deserialize_with = "object::option")]
    pub default_operator: Option<RedactOperator>,
    /// The dataset (a release, an export) whose key `hash` and `encrypt` use: a key derived
    /// from the vault's redaction key by this id (`[a-z][a-z0-9_]{0,62}`), so two datasets
    /// redacted under different ids cannot be joined. Default: the vault's own key.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub key_id: Option<String>,
}

/// One replacement, with offsets into the original text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Redaction {
    pub entity_type: String,
    pub start: u64,
    pub end: u64,
    pub operator: String,
}

/// Answer to `POST /v1/redact`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedactResponse {
    pub text: String,
    pub redactions: Vec<Redaction>,
}

/// Where the Art. 19 notification of one recipient stands (part of a request's view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationStatus {
    /// The recipient's name in the registry.
    pub recipient: String,
    /// `pending`, `delivered`, `failed` (given up after the last attempt) or `no_webhook`
    /// (the registry gives the recipient no webhook: not notified).
    pub status: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last failure: an HTTP status (`HTTP 500`) or an error class (`timeout`,
    /// `connection`, ...); never the receiver's answer.
    pub last_error: Option<String>,
    /// When the recipient acknowledged it (RFC 3339).
    pub delivered_at: Option<String>,
}
