//! The vault's one error type: a kind (which the HTTP layer maps to a status), a stable
//! machine-readable code, and a message that names what is wrong but never holds a value.

use std::fmt;

/// The class of an error; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed or missing input.
    BadRequest,
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: authenticated, but the registry or a policy denies it.
    Forbidden,
    /// 404: no such thing.
    NotFound,
    /// 409: conflicts with existing state.
    Conflict,
    /// 422: a field's value is invalid for its type, or the field is unknown.
    Unprocessable,
    /// 429: too many requests of a rate-limited kind from this caller.
    TooManyRequests,
    /// 500: our fault; details are logged, not returned.
    Internal,
    /// 503: the vault stopped answering on purpose (the audit log no longer matches its
    /// checkpoints), until an operator has looked.
    Unavailable,
}

/// An error of a vault operation.
#[derive(Debug, Clone)]
pub struct VaultError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl VaultError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the field the error is about.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, "unauthenticated", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, code, message)
    }

    pub fn too_many_requests(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooManyRequests, code, message)
    }

    /// An internal failure. `detail` is logged; the caller sees a generic message.
    pub fn internal(detail: &dyn fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorKind::Internal, "internal", "internal error; see the server log")
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for VaultError {}

/// The code of a refusal to decide on a subject's ledger altered in the database.
pub(crate) const LEDGER_ALTERED: &str = "ledger_altered";

/// The refusal of every key, session and login once the rows that grant access were found
/// altered in the database while the server ran.
pub(crate) fn access_altered() -> VaultError {
    VaultError::unavailable(
        "access_altered",
        "the rows that grant access were altered in the database; the vault accepts no key, session or login until an operator has looked (the server's log says how)",
    )
}

impl From<custodia_store::StoreError> for VaultError {
    fn from(e: custodia_store::StoreError) -> Self {
        match e {
            custodia_store::StoreError::Conflict(what) if what == "incident" => Self::new(
                ErrorKind::Conflict,
                "incident_changed",
                "the incident changed meanwhile (another responder's entry came first): read it again and retry",
            ),
            custodia_store::StoreError::LedgerAltered(what) => {
                // how it was altered goes to the log, for the operator; the caller (of any
                // role, or a customer's portal link) learns only that it was
                tracing::error!(%what, "a subject's consent ledger was altered in the database");
                Self::new(
                    ErrorKind::Conflict,
                    LEDGER_ALTERED,
                    "this subject's consent ledger was altered in the database: nothing is decided on it until an operator repairs it (the server's log says how it was altered; the audit log's consent entries say what the subject chose)",
                )
            }
            custodia_store::StoreError::AccessUntallied => Self::unavailable(
                "upgrade_pending",
                "the rows that grant access are tallied at the server's first start after the upgrade to schema version 23: start `custodia serve` once, then retry",
            ),
            custodia_store::StoreError::AccessAltered(what) => {
                tracing::error!(%what, "the rows that grant access were altered in the database");
                access_altered()
            }
            custodia_store::StoreError::Conflict(what) => {
                Self::new(ErrorKind::Conflict, "conflict", format!("already exists ({what})"))
            }
            other => Self::internal(&other),
        }
    }
}

impl From<custodia_crypto::CryptoError> for VaultError {
    fn from(e: custodia_crypto::CryptoError) -> Self {
        Self::internal(&e)
    }
}

/// What stands in a message, log line or audit entry for a name from a request that may
/// not be repeated (see [`nameable`]).
pub const UNKNOWN_FIELD: &str = "an unknown field";

/// Whether `name` has the shape of a registry name: a lower-case identifier
/// `[a-z][a-z0-9_]{0,62}`, such as `favourite_colour`.
#[must_use]
pub fn name_shaped(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// The one rule for names taken from a request (keys, query parameters, operator and entity
/// names) before they are written into an error message, a log line or an audit entry: a
/// name the registry or a schema knows (`known`), or one shaped like a registry name, may be
/// repeated; anything else could be personal data sent in the wrong place (a card number as
/// a key, an email as a query parameter) and is never repeated: it is [`UNKNOWN_FIELD`].
#[must_use]
pub fn nameable(name: &str, known: bool) -> bool {
    known || name_shaped(name)
}

/// What stands in a message for a name that may not be repeated, where the message names
/// what kind of name it is ("no role (name withheld) in the registry").
pub const WITHHELD_NAME: &str = "(name withheld)";

/// `name` quoted for a message when [`nameable`], else [`WITHHELD_NAME`].
#[must_use]
pub fn quoted_name(name: &str, known: bool) -> String {
    if nameable(name, known) {
        format!("`{name}`")
    } else {
        WITHHELD_NAME.to_owned()
    }
}

/// A name from the request as an audit entry or a message holds it: itself when
/// [`nameable`] (not otherwise known), else [`UNKNOWN_FIELD`].
pub(crate) fn shown(name: &str) -> String {
    if nameable(name, false) {
        name.to_owned()
    } else {
        UNKNOWN_FIELD.to_owned()
    }
}

/// A name a schema knows (an entity type of the scanner, say), checked against the rule's
/// other half anyway: upper-case identifiers pass too, nothing else.
pub(crate) fn shown_known(name: &str) -> String {
    let upper_identifier = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if nameable(name, upper_identifier) {
        name.to_owned()
    } else {
        UNKNOWN_FIELD.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_are_repeated() {
        for name in ["favourite_colour", "email", "a", "customers2"] {
            assert_eq!(shown(name), name);
        }
        for value in [
            "alice.secret@example.com",
            "4111 1111 1111 1111",
            "4111111111111111",
            "Alice",
            "",
            "_x",
            "x-y",
            &"a".repeat(64),
        ] {
            assert_eq!(shown(value), UNKNOWN_FIELD, "{value:?}");
        }
        assert!(nameable("EMAIL_ADDRESS", true), "a name the schema knows is named");
        assert_eq!(quoted_name("4111111111111111", false), WITHHELD_NAME);
        assert_eq!(quoted_name("favourite_colour", false), "`favourite_colour`");
    }
}
