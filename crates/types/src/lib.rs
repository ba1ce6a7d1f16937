//! Wire types of the Custodia HTTP API, shared by the server, the CLI and the tests.
//!
//! Everything here is plain data with serde and OpenAPI (utoipa) derives; no behaviour.
//! Field values travel as JSON strings: the vault validates them by the field's declared type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    pub fields: BTreeMap<String, String>,
}

/// Answer to a record creation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRecordResponse {
    pub record_id: String,
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
    /// RFC 3339 UTC time of the last change.
    pub updated_at: String,
}

/// Answer to a record listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordList {
    pub records: Vec<Record>,
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
}

/// One record whose field matched a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchMatch {
    pub subject_id: String,
    pub record_id: String,
}

/// Answer to a search.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub matches: Vec<SearchMatch>,
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
}
