//! End-to-end tests of the `custodia` binary: the CLI verbs, and the HTTP API against a real
//! server process on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../src/http_client.rs"]
#[allow(dead_code, reason = "shared with the bench; tests use part of it")]
mod http_client;

mod assess;
mod audit;
mod batch;
mod browser;
mod cli;
mod consent;
mod crash;
mod fides;
mod http;
mod incidents;
mod key_providers;
mod lists;
mod matrix;
mod metrics;
mod multinode;
mod no_echo;
mod operators;
mod permissions;
mod policies;
mod recipients;
mod requests;
mod retention;
mod roles;
mod scan;
mod support;
mod tamper;
mod tls;
mod tokens;
mod transparency;
