//! Integration tests of custodia-pii: Presidio's recognizer cases and hostile inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod cases;
mod hostile;
