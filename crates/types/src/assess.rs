//! The posture self-assessment (`custodia assess`, `GET /v1/assessment`): scored checks of how
//! the vault is deployed and run, each with what fixes it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How much a failed check matters, least first (so `>=` compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// One check: its stable id, whether it passed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssessmentCheck {
    /// Stable identifier, e.g. `tls_enabled`.
    pub id: String,
    /// What is checked, in a few words.
    pub title: String,
    pub passed: bool,
    /// How much it matters (a check may fail at a lower severity than its own: a warning).
    pub severity: Severity,
    /// What was found: names of files, principals, purposes, requests; never personal data.
    pub detail: String,
    /// The command or setting that fixes (or keeps) it.
    pub remediation: String,
}

/// Answer to `GET /v1/assessment` and the JSON of `custodia assess`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assessment {
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// 0-100: the passed checks' weight over all checks' (critical 10, high 5, medium 3,
    /// low 1, info 0).
    pub score: u32,
    pub passed: u32,
    pub failed: u32,
    pub checks: Vec<AssessmentCheck>,
}
