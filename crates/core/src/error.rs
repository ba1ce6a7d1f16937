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

impl From<custodia_store::StoreError> for VaultError {
    fn from(e: custodia_store::StoreError) -> Self {
        match e {
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

/// A name from the request, fit to repeat in an error message: registry names are short
/// identifiers, so anything else (which could be personal data pasted in the wrong place)
/// is not echoed back.
pub(crate) fn shown(name: &str) -> String {
    let identifier = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if identifier {
        name.to_owned()
    } else {
        "<not a valid name>".to_owned()
    }
}
