//! Integration tests of custodia-pii: Presidio's recognizer cases, hostile inputs and fuzzing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod cases;
mod corpora;
mod fuzz;
mod hostile;
