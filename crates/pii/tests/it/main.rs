//! Integration tests of custodia-pii: Presidio's recognizer cases, file formats, redaction.

mod cases;
mod hostile;
