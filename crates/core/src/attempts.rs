//! Failed authentications (401) in the audit log (PCI DSS 10.2.1.4: invalid access attempts).
//!
//! Each is counted by the key id it presented (the public half of an API key, never its
//! secret), and the counts are written as one `auth.failed` entry per key id and window by a
//! job: a flood of bad keys costs a bounded number of entries per window, never one per
//! request. Beyond [`MAX_KEYS_PER_WINDOW`] distinct key ids in a window, the rest are counted
//! together under `other`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::audit::AuditEvent;
use crate::{Timestamp, Vault, VaultError};

/// Distinct key ids one window records by name.
pub const MAX_KEYS_PER_WINDOW: usize = 64;

/// What was presented, as far as it may be logged.
const NO_KEY: &str = "none";
const MALFORMED: &str = "malformed";
const OTHER: &str = "other";

#[derive(Debug, Clone, Copy)]
struct Tally {
    count: u64,
    first: i64,
    last: i64,
}

/// The failures since the last flush.
#[derive(Default)]
pub(crate) struct AuthFailures(Mutex<BTreeMap<String, Tally>>);

impl AuthFailures {
    fn record(&self, label: &str, now: Timestamp) {
        let Ok(mut window) = self.0.lock() else { return };
        let label = if window.contains_key(label) || window.len() < MAX_KEYS_PER_WINDOW {
            label
        } else {
            OTHER
        };
        window
            .entry(label.to_owned())
            .and_modify(|t| {
                t.count += 1;
                t.last = now.0;
            })
            .or_insert(Tally {
                count: 1,
                first: now.0,
                last: now.0,
            });
    }

    fn take(&self) -> BTreeMap<String, Tally> {
        self.0.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }
}

impl Vault {
    /// Notes a request refused with 401: `presented` is the bearer value it carried (`None`:
    /// no credentials). Only its key id is kept.
    pub fn authentication_failed(&self, presented: Option<&str>, now: Timestamp) {
        let label = match presented {
            None => NO_KEY,
            Some(token) => crate::principal::split_token(token)
                .or_else(|| crate::operators::split_session_token(token))
                .map_or(MALFORMED, |(key_id, _)| key_id),
        };
        self.auth_failures.record(label, now);
    }

    /// Notes a failed login or enrolment that names no known operator (`label`: what was
    /// tried, e.g. `operator`), counted like a bad key.
    pub(crate) fn auth_failed_label(&self, label: &'static str, now: Timestamp) {
        self.auth_failures.record(label, now);
    }

    /// Writes the failures noted since the last call: one `auth.failed` deny entry per key id
    /// with its count and the window's first and last times; the entry names the principal
    /// whose key id it was, when there is one. Returns the number of entries written.
    pub async fn flush_authentication_failures(&self, now: Timestamp) -> Result<usize, VaultError> {
        let window = self.auth_failures.take();
        if window.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(window.len());
        for (label, tally) in &window {
            let known = if label.len() == 16 {
                self.store.reader().await?.principals().by_key_id(label).await?
            } else {
                None
            };
            let principal = known.map_or_else(|| "unknown".to_owned(), |row| row.principal_id);
            let event = AuditEvent::unauthenticated("auth.failed", principal)
                .refused("unauthenticated")
                .detail("key_id", label.clone())
                .detail("count", tally.count.to_string())
                .detail("first", tally.first.to_string())
                .detail("last", tally.last.to_string());
            rows.push(self.audit_row(&event, now, None)?);
        }
        self.append_audit_rows(&rows).await?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_distinct_keys_is_bounded_per_window() {
        let failures = AuthFailures::default();
        for i in 0..10_000u32 {
            failures.record(&format!("{i:016x}"), Timestamp(i64::from(i)));
        }
        let window = failures.take();
        assert_eq!(window.len(), MAX_KEYS_PER_WINDOW + 1);
        assert_eq!(window[OTHER].count, 10_000 - MAX_KEYS_PER_WINDOW as u64);
        assert!(failures.take().is_empty(), "a flush starts a new window");
    }

    #[test]
    fn repeats_of_one_key_are_one_tally() {
        let failures = AuthFailures::default();
        for t in 0..500 {
            failures.record("00000000000000aa", Timestamp(t));
        }
        let window = failures.take();
        let tally = window["00000000000000aa"];
        assert_eq!((window.len(), tally.count, tally.first, tally.last), (1, 500, 0, 499));
    }
}
