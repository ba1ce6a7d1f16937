use std::path::PathBuf;

/// Errors of the PII library. Messages name what is wrong and never carry scanned content.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("unknown entity type `{0}` (see `custodia scan --list-entities`)")]
    UnknownEntity(String),
    #[error("invalid pattern for {entity}: {message}")]
    Pattern { entity: String, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;
