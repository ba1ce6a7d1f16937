//! Audit entries for every decision of the access gate and every change: who, what action,
//! under which purpose, on which collection and fields (names only), allowed or denied and
//! why, and the subject as a keyed HMAC so that "who touched subject X" can be answered by
//! computing it, while the log itself holds no personal data.
//!
//! Fail closed: a write's entry is committed in the write's own transaction; a read's entry
//! is durable before any data is returned; a refusal's entry is durable before the refusal is
//! answered. If the audit log cannot be written, the request fails.

use serde::Serialize;

use custodia_store::{AuditColumns, AuditQuery, AuditRow};
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
        let digest = self.keys.indexer.compute("audit", "subject", subject.as_str())?;
        Ok(AuditEvent {
            subject: Some(hex::encode(digest)),
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
        let index = AuditColumns {
            principal: Some(entry.principal.to_owned()),
            action: Some(entry.action.to_owned()),
            decision: Some(entry.decision.to_owned()),
            purpose: entry.purpose.map(str::to_owned),
            subject: entry.subject.map(str::to_owned),
        };
        let entry = serde_json::to_string(&entry).map_err(|e| VaultError::internal(&e))?;
        let leaf = custodia_audit::leaf_hash(entry.as_bytes()).to_vec();
        Ok(AuditRow {
            seq: 0,
            at: now.0,
            entry,
            leaf,
            index,
        })
    }

    /// Appends a row now; an audit failure fails the request.
    async fn append_audit_row(&self, row: AuditRow) -> Result<(), VaultError> {
        self.append_audit_rows(&[row]).await
    }

    /// Appends rows now; an audit failure fails the request.
    pub(crate) async fn append_audit_rows(&self, rows: &[AuditRow]) -> Result<(), VaultError> {
        self.store.append_audit(rows.to_vec()).await.map_err(|e| {
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

/// The indexed columns an entry's canonical text implies: what `audit verify` checks the
/// stored columns against. `None` when the text is not an entry.
#[must_use]
pub fn audit_columns(entry: &str) -> Option<AuditColumns> {
    let value: serde_json::Value = serde_json::from_str(entry).ok()?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some(AuditColumns {
        principal: text("principal"),
        action: text("action"),
        decision: text("decision"),
        purpose: text("purpose"),
        subject: text("subject"),
    })
}

/// An audit row for a canonical entry text, its leaf hash and columns derived from it (for
/// tools that write entries of their own, such as the benchmark).
#[must_use]
pub fn audit_row_of(at: i64, entry: String) -> AuditRow {
    let leaf = custodia_audit::leaf_hash(entry.as_bytes()).to_vec();
    let index = audit_columns(&entry).unwrap_or_default();
    AuditRow {
        seq: 0,
        at,
        entry,
        leaf,
        index,
    }
}

/// A use of the PII scanner over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScannerUse {
    /// `POST /v1/scan`.
    Scan,
    /// `POST /v1/redact`.
    Redact,
}

impl Vault {
    /// Refuses `principal` the PII scanner unless one of its roles holds `use_scanner`. The
    /// decision is audited (allow and deny) before the scan runs; the scanned text never is.
    pub async fn authorize_scanner(
        &self,
        principal: &Principal,
        now: Timestamp,
        what: ScannerUse,
    ) -> Result<(), VaultError> {
        let action = match what {
            ScannerUse::Scan => "pii.scan",
            ScannerUse::Redact => "pii.redact",
        };
        let event = AuditEvent::new(action, principal);
        let decision = crate::gate::require(&self.policies, principal, custodia_registry::Capability::UseScanner);
        self.audit_read(&event, now, decision).await
    }
}

/// Most audit entries one page returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// What an audit read selects; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries about this subject (matched by its keyed digest).
    pub subject_id: Option<String>,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub purpose: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
}

impl Vault {
    /// The digests entries about `subject` carry.
    fn subject_digests(&self, subject: &SubjectId) -> Result<Vec<String>, VaultError> {
        Ok(vec![hex::encode(self.keys.indexer.compute(
            "audit",
            "subject",
            subject.as_str(),
        )?)])
    }

    /// A page of the audit log, for roles with `read_audit`; this read is itself audited.
    /// Filters are index lookups on the entries' derived columns.
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
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            let subjects = match &filter.subject_id {
                Some(id) => self.subject_digests(&SubjectId::parse(id)?)?,
                None => Vec::new(),
            };
            let query = AuditQuery {
                subjects,
                principal: filter.principal.clone(),
                action: filter.action.clone(),
                purpose: filter.purpose.clone(),
                decision: filter.decision.clone(),
                from: filter.from,
                to: filter.to,
            };
            let limit = limit.clamp(1, MAX_AUDIT_PAGE);
            let rows = self
                .store
                .reader()
                .await?
                .audit()
                .query(&query, after.max(0), i64::from(limit))
                .await?;
            let full = rows.len() == limit as usize;
            let last = rows.last().map(|r| r.seq);
            let events = rows
                .into_iter()
                .map(|r| {
                    let entry = serde_json::from_str(&r.entry).map_err(|e| VaultError::internal(&e))?;
                    Ok(AuditEventView {
                        seq: r.seq,
                        entry,
                        canonical: r.entry,
                    })
                })
                .collect::<Result<Vec<_>, VaultError>>()?;
            Ok(AuditEvents {
                events,
                next_after: if full { last } else { None },
            })
        }
        .await;
        self.audit_read(&event, now, result).await
    }
}
