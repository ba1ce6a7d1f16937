//! Custodia's PII discovery and redaction library: finds personal data outside the vault
//! (logs, exports, CSV dumps, JSON, databases) and redacts it. It depends on none of the
//! vault crates.
//!
//! Entity names are Presidio's, so results compare one to one. Every finding carries byte
//! offsets, a score in [0, 1] and the evidence that raised it (pattern, checksum, context
//! word, dictionary, field name).

pub mod accuracy;
mod context;
mod custom;
pub mod discover;
mod error;
mod finding;
mod html_entities;
pub mod input;
mod lexer;
mod mapped;
mod re;
mod recognizers;
pub mod redact;
pub mod report;
mod scanner;
pub mod screen;
pub mod validate;
pub mod walk;

pub use error::{Error, Result};
pub use finding::{Evidence, EvidenceKind, Finding};
pub use recognizers::builtin::BUILTIN_ENTITIES;
pub use recognizers::numbers::DEFAULT_PHONE_REGIONS;
pub use scanner::{DEFAULT_MIN_SCORE, Scanner, ScannerBuilder};
