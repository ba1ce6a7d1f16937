//! The preference center link, and the notice and record of processing as served.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/subjects/{subject_id}/portal-links` (may be empty: `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalLinkRequest {
    /// How long the link lasts, in seconds: 1 to 86400 (default 900, 15 minutes).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub ttl_seconds: Option<u64>,
    /// The jurisdiction requests made on the page are opened under (default `gdpr` when the
    /// registry has it).
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// A signed, short-lived link to one subject's preference center.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PortalLinkResponse {
    /// Give this to the customer (it is their credential until it expires; send it only to them).
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// One version of the privacy notice that was shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoticeVersion {
    /// `sha256-` and 32 hex digits: what consents name as `notice_version`.
    pub version: String,
    pub language: String,
    /// When this server first showed it (RFC 3339).
    pub published_at: String,
}

/// `GET /v1/notice/versions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoticeVersions {
    /// First published first; the last is the one in force.
    pub versions: Vec<NoticeVersion>,
}
