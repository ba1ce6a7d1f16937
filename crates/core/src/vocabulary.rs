//! The fixed vocabularies of request fields: each list is exactly what the vault accepts, and
//! the served OpenAPI document gives the same names as the field's `enum`, so a request valid
//! by the document is never refused for naming something outside these lists.

/// How a consent, objection or restriction choice was made.
pub const CHOICE_METHODS: &[&str] = &["web_form", "api", "import", "email", "in_person"];
/// How a sale/sharing opt-out was made: also a browser's Global Privacy Control signal.
pub const OPT_OUT_METHODS: &[&str] = &["web_form", "api", "import", "email", "in_person", "gpc"];
/// How a data subject request arrived.
pub const RECEIVED_VIA: &[&str] = &[
    "api",
    "web_form",
    "email",
    "phone",
    "toll_free",
    "mail",
    "in_person",
    "portal",
];
/// The kinds of entry a responder adds to an incident's timeline.
pub const ENTRY_KINDS: &[&str] = &["note", "task", "task_done", "system", "decision"];
/// The phases of an incident (NIST SP 800-61), in order.
pub const PHASES: [&str; 6] = ["detect", "analyse", "contain", "eradicate", "recover", "post_incident"];
/// The risk assessments a responder may record (GDPR Art. 33(1), 34(1)).
pub const RISKS: &[&str] = &["unlikely", "risk", "high_risk"];
/// Containment actions on an incident.
pub const CONTAINMENT_ACTIONS: &[&str] = &[
    "revoke_principal",
    "end_operator_sessions",
    "rotate_root_key",
    "read_only",
    "read_write",
];
/// The kinds of token.
pub const TOKEN_KINDS: &[&str] = &["random", "format_preserving", "deterministic"];

/// The types of data subject request.
#[must_use]
pub fn request_types() -> Vec<&'static str> {
    custodia_registry::RequestType::ALL.iter().map(|t| t.as_str()).collect()
}

/// `name` if it is one of `names`, else a 400 naming the field and listing them.
pub(crate) fn one_of<'a>(
    names: &[&'a str],
    name: &str,
    field: &'static str,
    code: &'static str,
) -> Result<&'a str, crate::VaultError> {
    names.iter().find(|n| **n == name).copied().ok_or_else(|| {
        crate::VaultError::bad_request(code, format!("{field} must be one of: {}", names.join(", "))).with_field(field)
    })
}
