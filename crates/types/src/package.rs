//! The data subject's access and portability package (GDPR Art. 15(1)(a)-(h), Art. 20): every
//! record the vault holds about them, in plain text, with why it is held, on what basis, for
//! how long, who receives it and where it came from; their consent history; who accessed
//! their data; and their rights.
//!
//! The server streams it (`custodia_server::package`) in exactly this JSON shape, section by
//! section in this field order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The whole package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubjectPackage {
    pub subject_id: String,
    /// RFC 3339 UTC.
    pub generated_at: String,
    /// Who controls the data (Art. 13(1)(a)-(b), 15(1)(f)).
    pub controller: PackageController,
    /// Every record of the subject in every collection, by collection, oldest first.
    pub records: Vec<PackageRecord>,
    /// The subject's values held as tokens, by collection, field and purpose: each value is
    /// sealed to its token, which the vault does not keep (the system that asked for the token
    /// does), so the package names what is held and since when, not the value.
    pub tokens: Vec<PackageTokens>,
    /// Each purpose that holds any of the subject's fields, has an entry in their ledger, or
    /// under which their data was processed (an allowed audit entry about them), with its
    /// legal basis (Art. 15(1)(a)-(d), (g)).
    pub purposes: Vec<PackagePurpose>,
    /// The subject's consents, objections, opt-outs and restrictions, oldest first.
    pub consent_history: Vec<PackageConsent>,
    /// Who accessed the subject's data, when and why, from the audit log, oldest first.
    pub access_history: Vec<PackageAccess>,
    /// The subject's rights and where to complain (Art. 15(1)(e)-(f)).
    pub rights: PackageRights,
}

/// The controller, from the registry's `[organization]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageController {
    pub name: String,
    pub contact: String,
    /// The data protection officer, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpo: Option<String>,
    pub supervisory_authority: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// One record, every stored field decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRecord {
    pub collection: String,
    pub record_id: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Sorted by name.
    pub fields: Vec<PackageField>,
}

/// One stored field of a record, in plain text (the subject's own copy: no role's output
/// form applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageField {
    pub name: String,
    /// The data category (e.g. `user.contact.email`); absent when the registry no longer
    /// declares the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub value: String,
    /// The purposes the value is held for (each one bound to it).
    pub purposes: Vec<String>,
}

/// Values of one field held as tokens for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageTokens {
    pub collection: String,
    pub field: String,
    /// The data category (e.g. `user.contact.email`); absent when the registry no longer
    /// declares the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The purpose they are held for (absent: tokens from before purposes were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `random`, `format_preserving` or `deterministic`.
    pub kind: String,
    /// How many values.
    pub count: u64,
    /// When the first and the last were handed out (RFC 3339 UTC).
    pub first_at: String,
    pub last_at: String,
}

/// A purpose, as the registry declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackagePurpose {
    pub name: String,
    pub description: String,
    /// `consent`, `contract`, `legal_obligation`, `vital_interests`, `public_task` or
    /// `legitimate_interests` (GDPR Art. 6(1)(a)-(f)).
    pub legal_basis: String,
    /// The interest pursued, when the basis is `legitimate_interests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legitimate_interest: Option<String>,
    pub retention: PackageRetention,
    pub recipients: Vec<PackageRecipient>,
    /// Where the data comes from: `provided by you` unless the registry names a source.
    pub source: String,
}

/// How long a purpose keeps data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRetention {
    /// `Nd`, `Nm` or `Ny` (days, months, years).
    pub period: String,
    /// `collection` or `last_update`: what the period runs from.
    pub from: String,
}

/// Someone the data of a purpose is disclosed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRecipient {
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `processor`, `controller` or `joint_controller`.
    pub role: String,
    /// The transfer safeguard (Art. 46), for a recipient in a third country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguard: Option<String>,
}

/// One entry of the subject's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageConsent {
    /// `consent`, `objection`, `sale_opt_out` or `restriction`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Given, objected, opted out or restricted (`true`), or the reverse.
    pub value: bool,
    /// How it was given: `web_form`, `api`, `import`, `email`, `in_person` or `gpc`.
    pub method: String,
    /// RFC 3339 UTC.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// What was recorded with it, when anything was: `user_agent` (the browser or app it came
    /// from) and `ip_hash` (a keyed hash of the IP address; the address itself is never kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// One access to (or refused attempt at) the subject's data, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageAccess {
    /// RFC 3339 UTC.
    pub at: String,
    /// The name of the service or person (its id when the vault no longer knows it).
    pub principal: String,
    /// What was done, e.g. `record.read`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fields involved (names only).
    pub fields: Vec<String>,
}

/// The subject's rights and the authority to complain to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRights {
    pub rights: Vec<PackageRight>,
    /// The supervisory authority (Art. 77), from the registry.
    pub complain_to: String,
}

/// One right, in a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageRight {
    /// e.g. `erasure`.
    pub name: String,
    /// Where the law grants it, e.g. `GDPR Art. 17`.
    pub law: String,
    pub explanation: String,
}
