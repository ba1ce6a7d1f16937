//! Audit entries for every decision of the access gate and every change: who, what action,
//! under which purpose, on which collection and fields (names only), allowed or denied and
//! why, and the subject as a keyed HMAC so that "who touched subject X" can be answered by
//! computing it, while the log itself holds no personal data.
//!
//! Fail closed: a write's entry is committed in the write's own transaction; a read's entry
//! is durable before any data is returned; a refusal's entry is durable before the refusal is
//! answered. If the audit log cannot be written, the request fails.

use serde::Serialize;

use custodia_store::AuditRow;
use custodia_types::{AuditEventView, AuditEvents};

use crate::error::shown;
use crate::{ErrorKind, Principal, SubjectId, Timestamp, Vault, VaultError};

/// Version of the canonical entry encoding.
const ENTRY_VERSION: u32 = 1;

/// What is being done, before the decision is known.
#[derive(Debug, Clone)]
pub(crate) struct AuditEvent {
    action: &'static str,
    principal: String,
    purpose: Option<String>,
    collection: Option<String>,
    subject: Option<String>,
    fields: Vec<String>,
}

/// The canonical encoding of an entry: a fixed key order, names only, never values.
#[derive(Serialize)]
struct Entry<'a> {
    v: u32,
    at: i64,
    principal: &'a str,
    action: &'a str,
    decision: &'a str,
    reason: Option<&'a str>,
    purpose: Option<&'a str>,
    collection: Option<&'a str>,
    subject: Option<&'a str>,
    fields: &'a [String],
}

impl AuditEvent {
    pub(crate) fn new(action: &'static str, principal: &Principal) -> Self {
        Self {
            action,
            principal: principal.id.clone(),
            purpose: None,
            collection: None,
            subject: None,
            fields: Vec::new(),
        }
    }

    pub(crate) fn purpose(mut self, purpose: &str) -> Self {
        self.purpose = Some(shown(purpose));
        self
    }

    pub(crate) fn collection(mut self, collection: &str) -> Self {
        self.collection = Some(shown(collection));
        self
    }

    /// Names of the fields involved; names that are not identifiers are not logged as given.
    pub(crate) fn fields<'a>(mut self, names: impl IntoIterator<Item = &'a String>) -> Self {
        self.fields = names.into_iter().map(|n| shown(n)).collect();
        self
    }
}

impl Vault {
    /// Adds the subject, as a keyed HMAC, to an event.
    pub(crate) fn about(&self, event: AuditEvent, subject: &SubjectId) -> Result<AuditEvent, VaultError> {
        Ok(AuditEvent {
            subject: Some(self.keys.audit_subject(subject)?),
            ..event
        })
    }

    /// The audit row of `event` with its decision.
    pub(crate) fn audit_row(
        &self,
        event: &AuditEvent,
        now: Timestamp,
        denied: Option<&VaultError>,
    ) -> Result<AuditRow, VaultError> {
        let entry = Entry {
            v: ENTRY_VERSION,
            at: now.0,
            principal: &event.principal,
            action: event.action,
            decision: if denied.is_some() { "deny" } else { "allow" },
            reason: denied.map(|e| e.code),
            purpose: event.purpose.as_deref(),
            collection: event.collection.as_deref(),
            subject: event.subject.as_deref(),
            fields: &event.fields,
        };
        let entry = serde_json::to_string(&entry).map_err(|e| VaultError::internal(&e))?;
        let leaf = custodia_audit::leaf_hash(entry.as_bytes()).to_vec();
        Ok(AuditRow {
            seq: 0,
            at: now.0,
            entry,
            leaf,
        })
    }

    /// Appends a row now; an audit failure fails the request.
    async fn append_audit_row(&self, row: AuditRow) -> Result<(), VaultError> {
        self.append_audit_rows(&[row]).await
    }

    /// Appends rows now; an audit failure fails the request.
    pub(crate) async fn append_audit_rows(&self, rows: &[AuditRow]) -> Result<(), VaultError> {
        self.store.append_audit(rows).await.map_err(|e| {
            tracing::error!(error = %e, "audit log write failed; refusing the request");
            VaultError::new(
                ErrorKind::Internal,
                "audit_unavailable",
                "the audit log cannot be written, so the request was refused",
            )
        })
    }

    /// Audits a refusal by the gate (a 403); other outcomes pass through untouched (allowed
    /// writes carry their own entry in their transaction).
    pub(crate) async fn audit_refusal<T>(
        &self,
        event: &AuditEvent,
        now: Timestamp,
        result: Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        match result {
            Err(e) if e.kind == ErrorKind::Forbidden => {
                self.append_audit_row(self.audit_row(event, now, Some(&e))?).await?;
                Err(e)
            }
            other => other,
        }
    }

    /// Audits a read that reports which fields it selected: the allow entry names them (a read
    /// that asked for no particular fields still records the ones it returned).
    pub(crate) async fn audit_read_fields<T>(
        &self,
        event: AuditEvent,
        now: Timestamp,
        result: Result<(T, Vec<String>), VaultError>,
    ) -> Result<T, VaultError> {
        match result {
            Ok((data, fields)) => self.audit_read(&event.fields(&fields), now, Ok(data)).await,
            Err(e) => self.audit_read(&event, now, Err(e)).await,
        }
    }

    /// Audits a read: the allow entry is durable before the data is handed back; a refusal is
    /// audited as in [`Vault::audit_refusal`].
    pub(crate) async fn audit_read<T>(
        &self,
        event: &AuditEvent,
        now: Timestamp,
        result: Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        match result {
            Ok(data) => {
                self.append_audit_row(self.audit_row(event, now, None)?).await?;
                Ok(data)
            }
            other => self.audit_refusal(event, now, other).await,
        }
    }
}

/// Most audit entries one page returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;
/// Most entries one filtered read scans before it returns a page (and where to go on).
const SCAN_LIMIT: usize = 100_000;

/// What an audit read selects; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries about this subject (matched by its keyed HMAC).
    pub subject_id: Option<String>,
    pub principal: Option<String>,
    pub action: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
}

impl AuditFilter {
    /// Whether `entry` passes the filter; its subject must be one of `subject_hmacs`, if given.
    fn matches(&self, entry: &serde_json::Value, subject_hmacs: Option<&[String]>) -> bool {
        let at = entry["at"].as_i64().unwrap_or(0);
        subject_hmacs.is_none_or(|hs| entry["subject"].as_str().is_some_and(|s| hs.iter().any(|h| h == s)))
            && self
                .principal
                .as_deref()
                .is_none_or(|p| entry["principal"].as_str() == Some(p))
            && self
                .action
                .as_deref()
                .is_none_or(|a| entry["action"].as_str() == Some(a))
            && self.from.is_none_or(|f| at >= f)
            && self.to.is_none_or(|t| at < t)
    }
}

impl Vault {
    /// A page of the audit log, for roles with `read_audit`; this read is itself audited.
    pub async fn audit_events(
        &self,
        principal: &Principal,
        now: Timestamp,
        after: i64,
        limit: u32,
        filter: &AuditFilter,
    ) -> Result<AuditEvents, VaultError> {
        let event = AuditEvent::new("audit.read", principal);
        let result = async {
            self.require_audit_reader(principal)?;
            // Entries written by v0.1 carry the legacy digest of the subject; match both.
            let subject_hmacs = match &filter.subject_id {
                Some(id) => {
                    let id = SubjectId::parse(id)?;
                    Some([self.keys.audit_subject(&id)?, self.keys.legacy_audit_subject(&id)?])
                }
                None => None,
            };
            let limit = limit.clamp(1, MAX_AUDIT_PAGE) as usize;
            let mut events = Vec::new();
            let (mut cursor, mut scanned) = (after.max(0), 0usize);
            let mut more = false;
            // Filters apply to the entries; scan in pages, at most SCAN_LIMIT entries per call.
            loop {
                let rows = self.store.audit_entries(cursor, 1000).await?;
                let Some(last) = rows.last() else { break };
                let full = rows.len() == 1000;
                let last_seq = last.seq;
                for r in rows {
                    cursor = r.seq;
                    scanned += 1;
                    let entry: serde_json::Value =
                        serde_json::from_str(&r.entry).map_err(|e| VaultError::internal(&e))?;
                    if filter.matches(&entry, subject_hmacs.as_ref().map(|h| h.as_slice())) {
                        events.push(AuditEventView {
                            seq: r.seq,
                            entry,
                            canonical: r.entry,
                        });
                        if events.len() == limit {
                            break;
                        }
                    }
                }
                if events.len() == limit || scanned >= SCAN_LIMIT {
                    more = cursor < last_seq || full || scanned >= SCAN_LIMIT;
                    break;
                }
                if !full {
                    break;
                }
            }
            Ok(AuditEvents {
                events,
                next_after: more.then_some(cursor),
            })
        }
        .await;
        self.audit_read(&event, now, result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject filter matches entries carrying either digest of the subject: the current one
    /// and the one v0.1 wrote (`Keys::legacy_audit_subject`), and no other.
    #[test]
    fn subject_filter_matches_current_and_legacy_digests() {
        let filter = AuditFilter::default();
        let digests = ["new".to_owned(), "legacy".to_owned()];
        let entry = |subject: &str| serde_json::json!({"at": 1, "subject": subject});
        assert!(filter.matches(&entry("new"), Some(&digests)));
        assert!(filter.matches(&entry("legacy"), Some(&digests)));
        assert!(!filter.matches(&entry("other"), Some(&digests)));
        assert!(!filter.matches(&serde_json::json!({"at": 1}), Some(&digests)));
        assert!(filter.matches(&serde_json::json!({"at": 1}), None));
    }
}
