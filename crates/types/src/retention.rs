//! Retention: the sweeper's report, legal holds, the retention review report, and subject
//! activity (what rules running from the last activity count from).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What one run of the sweeper did (or, dry, would do) at `as_of`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SweepReport {
    /// The instant the rules were evaluated at (RFC 3339).
    pub as_of: String,
    /// Nothing was destroyed: this is what a run would do.
    pub dry_run: bool,
    /// Whether every due binding was looked at (false: a bounded run stopped early; run again).
    pub complete: bool,
    /// Bindings ended (a purpose stopped holding a value).
    pub bindings_ended: u64,
    /// Values destroyed (no purpose held them any more).
    pub values_destroyed: u64,
    /// Records destroyed (no value left in them).
    pub records_destroyed: u64,
    /// Subjects with nothing left, removed with their data keys.
    pub subjects_removed: u64,
    /// Token values destroyed: expired under their purpose's rule, counted from when each
    /// token was handed out (those of values stored in records go with those values).
    #[serde(default)]
    pub tokens_destroyed: u64,
    /// Due bindings kept because a legal hold covers their subject or collection.
    pub kept_by_hold: u64,
    /// Due bindings kept because their subject restricted processing (GDPR Art. 18).
    pub kept_by_restriction: u64,
    /// Bindings of purposes the registry no longer declares: never destroyed automatically.
    pub kept_unknown_purpose: u64,
    /// Bindings whose stored expiry was stale (a rule or the subject's state changed) and was
    /// computed again instead.
    pub retimed: u64,
    /// What ended, by field, purpose and rule.
    pub by_rule: Vec<SweepLine>,
}

/// One line of a sweep: bindings of one purpose on one field ended by one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SweepLine {
    pub collection: String,
    pub field: String,
    pub purpose: String,
    /// The rule that ended them, e.g. `2y from last_update`, `consent withdrawn + 30d`,
    /// `objection`, `sale/sharing opt-out`.
    pub rule: String,
    pub bindings_ended: u64,
    /// Of those, values destroyed (this was their last binding).
    pub values_destroyed: u64,
}

/// Body of `POST /v1/retention/holds`: a subject or a collection (exactly one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    pub subject_id: Option<String>,
    #[serde(default)]
    pub collection: Option<String>,
    /// Why (a case or matter reference); the operator's words, kept with the hold.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// Body of `POST /v1/retention/holds/{id}/release`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHold {
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hold {
    pub hold_id: String,
    pub subject_id: Option<String>,
    pub collection: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

/// `GET /v1/retention/holds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldList {
    pub holds: Vec<Hold>,
}

/// Body of `POST /v1/subjects/{id}/activity`: the subject was active (logged in, ordered),
/// which renews what its purposes keep from its last activity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityReport {
    /// The purpose the caller reports under (it must be able to write under it).
    pub purpose: String,
}

/// The retention review report (`custodia retention report`, `GET /v1/retention/report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionReport {
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// Values held, by collection, field (with its category) and purpose.
    pub held: Vec<HeldLine>,
    /// What the sweeper will end within 30 and within 90 days (as the rules and the
    /// subjects' ledgers stand now).
    pub expiring: Vec<ExpiringWindow>,
    /// Fields of a collection no purpose declares: nothing may be written to them.
    pub fields_without_purpose: Vec<String>,
    /// Purposes without a retention rule: kept until a withdrawal, objection or erasure.
    pub purposes_without_retention: Vec<String>,
    /// Values only ended bindings hold (a consent withdrawn, an objection, an opt-out),
    /// waiting for a grace period or the sweeper.
    pub held_only_by_ended: Vec<HeldLine>,
    /// Values bound to purposes the registry no longer declares.
    pub unknown_purposes: Vec<HeldLine>,
    /// Legal holds in force.
    pub holds: Vec<Hold>,
}

/// Values of one field held for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldLine {
    pub collection: String,
    pub field: String,
    /// The field's data category (empty when the registry no longer declares the field).
    pub category: String,
    pub purpose: String,
    /// The purpose's retention rule, or `none`.
    pub rule: String,
    pub values: u64,
    /// Of those bindings, how many a ledger change ended.
    pub ended: u64,
}

/// What ends within a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpiringWindow {
    pub days: u32,
    /// The end of the window (RFC 3339).
    pub until: String,
    pub sweep: SweepReport,
}
