//! Operators (people): creation, enrolment (password + TOTP), login, training; and the root
//! key's status and rotation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/operators`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    /// Login name: 1-64 characters of A-Z, a-z, 0-9, `_ - .`
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    #[schema(min_items = 1)]
    pub roles: Vec<String>,
}

/// Answer to `POST /v1/operators`: the enrolment code is shown once; the operator enrols
/// with it before it expires.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOperatorResponse {
    pub operator_id: String,
    pub name: String,
    pub enrolment_code: String,
    pub enrolment_expires_at: String,
}

impl std::fmt::Debug for CreateOperatorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateOperatorResponse")
            .field("operator_id", &self.operator_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /v1/operators/enrol`: the first step, setting the password.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub name: String,
    pub enrolment_code: String,
    /// At least 12 characters, not the name.
    pub password: String,
}

impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Answer to `POST /v1/operators/enrol`: what the authenticator app needs.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolResponse {
    /// `otpauth://totp/...` (show it as a QR code).
    pub otpauth_uri: String,
    /// The same secret in base32, to type in by hand.
    pub secret: String,
}

impl std::fmt::Debug for EnrolResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolResponse(<redacted>)")
    }
}

/// Body of `POST /v1/operators/enrol/confirm`: a code from the authenticator completes the
/// enrolment.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEnrolmentRequest {
    pub name: String,
    pub enrolment_code: String,
    /// Six digits from the authenticator.
    pub code: String,
}

impl std::fmt::Debug for ConfirmEnrolmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmEnrolmentRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /v1/login`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub password: String,
    /// Six digits from the authenticator; each code works once.
    pub code: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Answer to `POST /v1/login`: a bearer token for the session.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub operator_id: String,
    /// `Authorization: Bearer <token>` until `expires_at`.
    pub token: String,
    pub expires_at: String,
    /// Required courses missing or lapsed: until they are attested, personal data is refused
    /// (403 `training_expired`).
    pub training_due: Vec<String>,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("operator_id", &self.operator_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /v1/operators/{id}/training`: someone with `manage_operators` attests that
/// the operator completed a course.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    pub course: String,
    /// When it was completed (RFC 3339; now when absent). Not in the future.
    #[serde(default)]
    pub completed_at: Option<String>,
}

/// One required course, for one operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CourseStatus {
    pub course: String,
    /// `current`, `due_soon` (within the course's reminder period), `expired` or `missing`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested_by: Option<String>,
}

/// An operator as listed (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperatorInfo {
    pub operator_id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Whether password and TOTP enrolment are complete.
    pub enrolled: bool,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    pub training: Vec<CourseStatus>,
}

/// Answer to `GET /v1/operators`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorList {
    pub operators: Vec<OperatorInfo>,
}

/// One root key version and what it wraps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyVersionStatus {
    pub version: u32,
    /// When it was made, if the key source says (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Days since it was made, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    /// Whether it wraps every new key.
    pub current: bool,
    /// Subject data keys wrapped under it.
    pub subject_keys: i64,
    /// The vault's own keys (index, audit signing, redaction, receipts) wrapped under it.
    pub service_keys: i64,
    /// Whether nothing uses it any more (it may be retired).
    pub unused: bool,
}

/// Answer to `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyStatus {
    /// Where the root key comes from: `file` or `environment`.
    pub provider: String,
    pub current_version: u32,
    pub versions: Vec<KeyVersionStatus>,
    /// Keys still wrapped under an older version (a rotation's remaining work).
    pub pending: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationProgress>,
}

/// A rotation running in the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotationProgress {
    pub to_version: u32,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub rewrapped: u64,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `POST /v1/break-glass`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRequest {
    /// One of the registry's `[operators] break_glass_roles`.
    pub role: String,
    /// Why (1-200 characters, one line, no personal data: it is kept in the audit log).
    pub reason: String,
    /// How long (default and most: `[operators] break_glass_minutes`).
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// A break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BreakGlassGrant {
    pub grant_id: String,
    pub operator_id: String,
    pub role: String,
    pub reason: String,
    pub started_at: String,
    pub expires_at: String,
}

/// What one principal (service key or operator) did in a review's period, and what it may
/// do but did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrincipalReview {
    pub principal_id: String,
    pub name: String,
    /// `service` (an API key), `operator` (a person), `system` (the vault's own work: the
    /// offline retention sweeper, a restore), `local` (a command run on the server's host),
    /// `portal` (a preference center link), or `unknown` (only in the log).
    pub kind: String,
    pub roles: Vec<String>,
    /// Allowed calls by purpose.
    pub purposes: std::collections::BTreeMap<String, u64>,
    /// Allowed calls by collection.
    pub collections: std::collections::BTreeMap<String, u64>,
    /// Distinct subjects its allowed calls touched.
    pub subjects: u64,
    pub allowed: u64,
    pub denied: u64,
    /// Denials by reason code.
    pub denial_reasons: std::collections::BTreeMap<String, u64>,
    /// Calls made under a break-glass grant.
    pub break_glass_calls: u64,
    pub break_glass: Vec<BreakGlassGrant>,
    /// Purposes its roles may invoke that it never used in the period: candidates for least
    /// privilege.
    pub unused_purposes: Vec<String>,
    /// When its API key last authenticated a request (services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// An active API key not used for 90 days (or never, and older than that).
    pub stale_key: bool,
}

/// Answer to `GET /v1/access-review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessReview {
    pub from: String,
    pub to: String,
    /// Audit entries read.
    pub entries: u64,
    pub principals: Vec<PrincipalReview>,
}
