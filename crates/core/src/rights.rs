//! Data subject requests (GDPR Art. 12-22, CCPA/CPRA): the work queue with legal deadlines,
//! identity verification, extension, denial and fulfilment. Every step needs the
//! `fulfil_requests` capability and is audited (allow and deny) with the subject as its keyed
//! digest; a step commits with its audit entry in one transaction.
//!
//! ```text
//!  received ──verify(pending)──▶ verifying ──verify──▶ in_progress ──fulfil──▶ completed
//!     │                              │                    │  ▲
//!     └──────────verify──────────────┴────────────────────┘  └─extend─▶ extended ─fulfil─▶ completed
//!  any open state ──deny──▶ denied (with the reason and the authority to complain to)
//! ```
//!
//! Fulfilling needs a verified identity, except an opt-out of sale/sharing or a limit on
//! sensitive data (CCPA §7026(d), §7027(e): no verification may be required for those).

use custodia_registry::{Capability, Date, Jurisdiction, RequestType};
use custodia_store::{RequestQuery, RequestRow};
use custodia_types::{
    Denial, Extension, FulfilRequest, NewSubjectRequest, SubjectRequestList, SubjectRequestView, Verification,
    VerifyRequest,
};
use std::sync::Arc;

use crate::audit::{Allowed, AuditEvent, Refused};
use crate::{Principal, SubjectId, Timestamp, Vault, VaultError, gate};

pub(crate) const RECEIVED: &str = "received";
pub(crate) const VERIFYING: &str = "verifying";
pub(crate) const IN_PROGRESS: &str = "in_progress";
pub(crate) const EXTENDED: &str = "extended";
pub(crate) const COMPLETED: &str = "completed";
pub(crate) const DENIED: &str = "denied";
const STATUSES: &[&str] = &[RECEIVED, VERIFYING, IN_PROGRESS, EXTENDED, COMPLETED, DENIED];

use crate::vocabulary::RECEIVED_VIA;

/// The longest free text a step takes (a reason, how identity was verified).
const MAX_TEXT: usize = 1000;
/// The most requests one listing returns.
const MAX_LISTED: i64 = 1000;
/// How long a request record is kept after it closes (CCPA §7101: 24 months), when the
/// jurisdiction's rule does not say.
const KEEP_MONTHS: i64 = 24;
/// How far back a request may say it was received.
const MAX_BACKDATE_MS: i64 = 366 * 86_400_000;

/// What fulfilling a request produced.
#[derive(Debug)]
pub enum Fulfilled {
    /// The request as it now stands (rectification, restriction, objection, opt-outs).
    Request(SubjectRequestView),
    /// An erasure's signed receipt.
    Erasure(custodia_types::ErasureReceipt),
    /// Access or portability: the subject whose package the adapter renders now (the
    /// request is completed and the disclosure audited).
    Package(SubjectId, SubjectRequestView),
}

impl Vault {
    /// Opens a request: computes its deadlines from the jurisdiction's rules and the day it
    /// was received; with `verified_by`, records the caller's verification too.
    #[tracing::instrument(skip_all)]
    pub async fn create_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        req: &NewSubjectRequest,
    ) -> Result<SubjectRequestView, VaultError> {
        let subject = SubjectId::parse(&req.subject_id).map_err(|e| e.with_field("subject_id"))?;
        let event = self.about(AuditEvent::new("request.create", principal), &subject)?;
        let event_for_row = event.clone();
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::FulfilRequests)?;
            Ok(Allowed::Written(
                self.insert_request(principal, now, &subject, req, event_for_row)
                    .await?,
            ))
        })
        .await
    }

    /// Validates and stores a new request about `subject` for a caller already allowed to
    /// open it (a `fulfil_requests` role, or the subject through a preference center link),
    /// with its audit entry `event` in the same transaction.
    pub(crate) async fn insert_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        req: &NewSubjectRequest,
        event_for_row: AuditEvent,
    ) -> Result<SubjectRequestView, Refused> {
        let kind = request_type(&req.kind)?;
        let jurisdiction = self.jurisdiction(&req.jurisdiction)?;
        if !jurisdiction.grants(kind) {
            return Err(VaultError::unprocessable(
                "right_not_granted",
                format!(
                    "jurisdiction `{}` grants no `{}` requests",
                    jurisdiction.name,
                    kind.as_str()
                ),
            )
            .with_field("type")
            .into());
        }
        let via = match &req.received_via {
            Some(v) => crate::vocabulary::one_of(RECEIVED_VIA, v, "received_via", "invalid_received_via")?.to_owned(),
            None => "api".to_owned(),
        };
        let received = match &req.received_at {
            None => now,
            Some(text) => received_at(text, now)?,
        };
        let verified = req.verified_by.as_deref().map(|v| text("verified_by", v)).transpose()?;
        let due = self.deadlines(jurisdiction, kind, received)?;
        let request_id = format!("req_{}", custodia_crypto::random_hex::<16>()?);
        let row = RequestRow {
            request_id: request_id.clone(),
            subject_id: Some(subject.as_str().to_owned()),
            subject_digest: self.keys.audit_subject(subject)?,
            kind: kind.as_str().to_owned(),
            jurisdiction: jurisdiction.name.clone(),
            received_via: via,
            status: if verified.is_some() { IN_PROGRESS } else { RECEIVED }.to_owned(),
            received_at: received.0,
            acknowledge_by: due.acknowledge_by,
            due_at: due.respond_by,
            extended_at: None,
            extension_reason: None,
            verified_by: verified.as_ref().map(|_| principal.id.clone()),
            verified_at: verified.as_ref().map(|_| now.0),
            verified_via: verified,
            denial_reason: None,
            outcome: None,
            created_by: principal.id.clone(),
            updated_at: now.0,
            closed_at: None,
            keep_until: keep_until(due.respond_by, jurisdiction),
            version: 0,
        };
        let audit = self.audit_row(&request_event(event_for_row, &row), now, None)?;
        let stored = row.clone();
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.requests().insert(&stored).await?;
                    tx.audit().append(&[audit]).await
                })
            })
            .await
            .map_err(|e| match VaultError::from(e) {
                // One open request of a kind per subject from the preference center.
                e if e.kind == crate::ErrorKind::Conflict => VaultError::new(
                    crate::ErrorKind::Conflict,
                    "request_open",
                    format!(
                        "a {} request from the portal is already open for this subject",
                        row.kind
                    ),
                ),
                e => e,
            })?;
        Ok(self.request_view(&row, now).await?)
    }

    /// One request.
    #[tracing::instrument(skip_all)]
    pub async fn get_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
    ) -> Result<SubjectRequestView, VaultError> {
        let mut event = AuditEvent::new("request.read", principal).detail("request", shown_id(request_id));
        let found = self.request_row(request_id).await;
        if let Ok(row) = &found {
            event = event.about_digest(row.subject_digest.clone());
        }
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::FulfilRequests)?;
            let row = found?;
            Ok(Allowed::Read(self.request_view(&row, now).await?, None))
        })
        .await
    }

    /// The work queue: requests in `status` (default: every open one), due before
    /// `due_before` when given, soonest due first.
    #[tracing::instrument(skip_all)]
    pub async fn list_requests(
        &self,
        principal: &Principal,
        now: Timestamp,
        status: Option<&str>,
        due_before: Option<Timestamp>,
    ) -> Result<SubjectRequestList, VaultError> {
        let mut event = AuditEvent::new("request.list", principal);
        if let Some(s) = status.filter(|s| STATUSES.contains(s)) {
            event = event.detail("status", s);
        }
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::FulfilRequests)?;
            let statuses = match status {
                None => vec![RECEIVED, VERIFYING, IN_PROGRESS, EXTENDED],
                Some("open") => vec![RECEIVED, VERIFYING, IN_PROGRESS, EXTENDED],
                Some(s) if STATUSES.contains(&s) => vec![s],
                Some(_) => {
                    return Err(VaultError::bad_request(
                        "invalid_status",
                        format!("status must be open or one of: {}", STATUSES.join(", ")),
                    )
                    .with_field("status")
                    .into());
                }
            };
            let query = RequestQuery {
                statuses: statuses.into_iter().map(str::to_owned).collect(),
                due_before: due_before.map(|t| t.0),
                subject_digest: None,
                limit: MAX_LISTED,
            };
            let rows = self.store.reader().await?.requests().list(&query).await?;
            let mut requests = Vec::with_capacity(rows.len());
            for row in &rows {
                requests.push(self.request_view(row, now).await?);
            }
            Ok(Allowed::Read(SubjectRequestList { requests }, None))
        })
        .await
    }

    /// Records how the requester's identity was verified (or that verification started).
    #[tracing::instrument(skip_all)]
    pub async fn verify_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
        req: &VerifyRequest,
    ) -> Result<SubjectRequestView, VaultError> {
        self.request_step(principal, now, request_id, "request.verify", |row| {
            open(row)?;
            if row.verified_at.is_some() {
                return Err(conflict(
                    "request_verified",
                    "the requester's identity is already verified",
                ));
            }
            row.verified_via = Some(text("verified_by", &req.verified_by)?);
            row.verified_by = Some(principal.id.clone());
            if req.pending {
                if row.status != EXTENDED {
                    row.status = VERIFYING.to_owned();
                }
            } else {
                row.verified_at = Some(now.0);
                if row.status != EXTENDED {
                    row.status = IN_PROGRESS.to_owned();
                }
            }
            Ok(())
        })
        .await
    }

    /// Extends the deadline once, with the reason told to the requester, while the
    /// jurisdiction still allows it (GDPR: within the first month; CCPA: within 45 days).
    #[tracing::instrument(skip_all)]
    pub async fn extend_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
        reason: &str,
    ) -> Result<SubjectRequestView, VaultError> {
        self.request_step(principal, now, request_id, "request.extend", |row| {
            open(row)?;
            if row.extended_at.is_some() {
                return Err(conflict("request_extended", "the deadline was already extended once"));
            }
            let jurisdiction = self.jurisdiction(&row.jurisdiction)?;
            let due = self.deadlines(jurisdiction, request_type(&row.kind)?, Timestamp(row.received_at))?;
            let (Some(extended), Some(notice_by)) = (due.extended_respond_by, due.extend_notice_by) else {
                return Err(conflict(
                    "not_extendable",
                    format!(
                        "jurisdiction `{}` allows no extension for this type of request",
                        jurisdiction.name
                    ),
                ));
            };
            if now.0 > notice_by {
                return Err(conflict(
                    "extension_too_late",
                    format!(
                        "an extension must be notified by {}; that time has passed",
                        Timestamp(notice_by).to_rfc3339()
                    ),
                ));
            }
            row.extension_reason = Some(text("reason", reason)?);
            row.extended_at = Some(now.0);
            row.due_at = extended;
            row.keep_until = keep_until(extended, jurisdiction);
            row.status = EXTENDED.to_owned();
            Ok(())
        })
        .await
    }

    /// Denies a request, with the reason; the requester may complain to the authority the
    /// registry names.
    #[tracing::instrument(skip_all)]
    pub async fn deny_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
        reason: &str,
    ) -> Result<SubjectRequestView, VaultError> {
        self.request_step(principal, now, request_id, "request.deny", |row| {
            open(row)?;
            row.denial_reason = Some(text("reason", reason)?);
            row.status = DENIED.to_owned();
            row.closed_at = Some(now.0);
            row.keep_until = keep_until(now.0, self.jurisdiction(&row.jurisdiction)?);
            Ok(())
        })
        .await
    }

    /// The entry of a package handed out, naming what it holds as the registry names it (the
    /// fields the subject holds, `collection.field`, how many records, and whether its ledger
    /// has choices): the
    /// blast radius of an incident counts the categories a package disclosed, not only that
    /// one was (a draft to the authority said nothing was read in plain text).
    async fn package_event(&self, event: AuditEvent, subject: &SubjectId) -> Result<AuditEvent, VaultError> {
        let mut reader = self.store.reader().await?;
        let held = reader.records().held_values(subject.as_str()).await?;
        let fields: std::collections::BTreeSet<String> =
            held.iter().map(|h| format!("{}.{}", h.collection, h.field)).collect();
        let choices = reader.ledger().last_seq(subject.as_str()).await?.is_some();
        let records = if fields.is_empty() {
            0
        } else {
            reader.retention().record_count(subject.as_str()).await?
        };
        Ok(event
            .detail("fields", fields.into_iter().collect::<Vec<_>>().join(","))
            .detail("choices", choices.to_string())
            .detail("records", records.to_string()))
    }

    /// Carries a request out (see [`Fulfilled`]).
    #[tracing::instrument(skip_all)]
    pub async fn fulfil_request(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
        req: &FulfilRequest,
    ) -> Result<Fulfilled, VaultError> {
        let event = AuditEvent::new("request.fulfil", principal).detail("request", shown_id(request_id));
        let mut about = event.clone();
        let row = match self.request_row(request_id).await {
            Ok(row) => {
                about = about
                    .detail("type", row.kind.clone())
                    .about_digest(row.subject_digest.clone());
                Some(row)
            }
            Err(_) => None,
        };
        self.audited(about.clone(), now, async {
            gate::require(&self.policies, principal, Capability::FulfilRequests)?;
            let Some(row) = row else {
                return Err(request_not_found().into());
            };
            let kind = request_type(&row.kind)?;
            // A closed request stays closed, an access request too: fulfilled again it would
            // be a standing handle on the subject's data, written since included.
            open(&row)?;
            // A body meant for another type of request is refused, not ignored: corrections
            // sent with an erasure would otherwise vanish without a word.
            for (given, field, only) in [
                (!req.corrections.is_empty(), "corrections", RequestType::Rectification),
                (req.purposes.is_some(), "purposes", RequestType::Objection),
            ] {
                if given && kind != only {
                    return Err(VaultError::unprocessable(
                        "not_for_this_type",
                        format!("`{field}` is for {} requests only", only.as_str()),
                    )
                    .with_field(field)
                    .into());
                }
            }
            if row.verified_at.is_none() && !matches!(kind, RequestType::OptOutSale | RequestType::LimitSensitive) {
                return Err(conflict(
                    "request_not_verified",
                    "the requester's identity must be verified first (POST /v1/requests/{id}/verify)",
                )
                .into());
            }
            let mut done = row.clone();
            done.status = COMPLETED.to_owned();
            done.updated_at = now.0;
            done.closed_at = Some(row.closed_at.unwrap_or(now.0));
            done.keep_until = keep_until(now.0, self.jurisdiction(&row.jurisdiction)?);
            let audit = self.audit_row(&about, now, None)?;
            let Some(subject) = row.subject_id.as_deref().map(SubjectId::stored).transpose()? else {
                // Erased meanwhile (by another request): an erasure has nothing left to do;
                // anything else can only be denied.
                if kind == RequestType::Erasure {
                    done.outcome = Some(serde_json::json!({ "already_erased": true }).to_string());
                    self.close_request(done.clone(), audit, Vec::new(), Vec::new()).await?;
                    return Ok(Allowed::Written(Fulfilled::Request(
                        self.request_view(&done, now).await?,
                    )));
                }
                return Err(conflict(
                    "subject_erased",
                    "the subject of this request was erased; deny it, naming the erasure",
                )
                .into());
            };
            let fulfilled = match kind {
                RequestType::Access | RequestType::Portability => {
                    let audit = self.audit_row(&self.package_event(about.clone(), &subject).await?, now, None)?;
                    self.close_request(done.clone(), audit, Vec::new(), Vec::new()).await?;
                    Fulfilled::Package(subject, self.request_view(&done, now).await?)
                }
                RequestType::Erasure => {
                    // A legal hold keeps the subject's data: the erasure waits for its release
                    // (or is denied, Art. 17(3)(e)).
                    self.refuse_held_subject(&subject).await?;
                    // Claimed first (its audit entry with the claim), so that no other step
                    // changes the request while its data goes in batches.
                    let claimed = self.claim(&row, audit, now).await?;
                    done.version = claimed.version;
                    done.outcome = None;
                    let erased = async {
                        let notices = self.notices_of_held(&row.request_id, "erasure", &subject, now).await?;
                        let erase = self.audit_row(&about_erasure(&about), now, None)?;
                        self.erase(&subject, principal, done, erase, notices, now).await
                    }
                    .await;
                    if erased.is_err() {
                        // (a hold placed meanwhile stopped it: the request may be denied or
                        // extended now, or fulfilled again once the hold is released)
                        self.release_claim(&row, &claimed).await;
                    }
                    Fulfilled::Erasure(erased?)
                }
                RequestType::Rectification => {
                    self.rectify(&subject, done.clone(), audit, &req.corrections, now)
                        .await?;
                    done.version += 1;
                    Fulfilled::Request(self.request_view(&done, now).await?)
                }
                RequestType::Restriction
                | RequestType::Objection
                | RequestType::OptOutSale
                | RequestType::LimitSensitive => {
                    let entries =
                        self.request_ledger_entries(principal, now, &subject, kind, req.purposes.as_deref())?;
                    let outcome = serde_json::json!({ "ledger_entries": entries.len() });
                    done.outcome = Some(outcome.to_string());
                    // Art. 19: a restriction is told to every recipient of the subject's data.
                    let notices = if kind == RequestType::Restriction {
                        self.notices_of_held(&row.request_id, "restriction", &subject, now)
                            .await?
                    } else {
                        Vec::new()
                    };
                    self.caches.ledger.invalidate(subject.as_str());
                    let closed = self.close_request(done.clone(), audit, entries, notices).await;
                    self.caches.ledger.invalidate(subject.as_str());
                    closed?;
                    Fulfilled::Request(self.request_view(&done, now).await?)
                }
            };
            Ok(Allowed::Written(fulfilled))
        })
        .await
    }

    /// Writes a fulfilled request, its audit entry, any ledger entries and Art. 19 notices in
    /// one transaction.
    async fn close_request(
        &self,
        done: RequestRow,
        audit: custodia_store::AuditRow,
        ledger: Vec<custodia_store::LedgerRow>,
        notices: Vec<custodia_store::NewNotification>,
    ) -> Result<(), VaultError> {
        let registry = Arc::clone(&self.registry);
        let seal = Arc::clone(&self.keys.access_seal);
        let counted = ledger.clone();
        let now = Timestamp(done.updated_at);
        let written = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    if !tx.requests().update(&done).await? {
                        return Ok(false);
                    }
                    for entry in &ledger {
                        tx.ledger().append(entry, &*seal).await?;
                    }
                    // What the entries end (an objection, an opt-out) ends for the sweeper too.
                    let subjects: std::collections::BTreeSet<&str> =
                        ledger.iter().map(|e| e.subject_id.as_str()).collect();
                    for subject in subjects {
                        crate::retention::retime_subject(&mut tx, (&registry, &*seal), subject, now).await?;
                    }
                    if !notices.is_empty() {
                        tx.notifications().enqueue(&notices).await?;
                    }
                    tx.audit().append(&[audit]).await?;
                    Ok(true)
                })
            })
            .await?;
        if written {
            self.count_ledger_entries(&counted);
            Ok(())
        } else {
            Err(request_changed())
        }
    }

    /// Claims a request for a fulfilment that takes several transactions (an erasure): marks
    /// it (`outcome` names the claim's time) with the fulfilment's audit entry, so that other
    /// steps refuse it meanwhile (409 `request_being_fulfilled`) and a second fulfilment does
    /// not run beside it. A claim older than [`STALE_CLAIM_MS`] (its server stopped midway)
    /// may be taken over: erasing again is harmless. Returns the claimed row.
    async fn claim(
        &self,
        row: &RequestRow,
        audit: custodia_store::AuditRow,
        now: Timestamp,
    ) -> Result<RequestRow, VaultError> {
        if claimed_since(row).is_some_and(|since| now.0 - since < STALE_CLAIM_MS) {
            return Err(being_fulfilled());
        }
        let mut claim = row.clone();
        claim.outcome = Some(serde_json::json!({ CLAIM_MARK: now.0 }).to_string());
        claim.updated_at = now.0;
        let stored = claim.clone();
        let written = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    if !tx.requests().update(&stored).await? {
                        return Ok(false);
                    }
                    tx.audit().append(&[audit]).await?;
                    Ok(true)
                })
            })
            .await?;
        if !written {
            return Err(being_fulfilled());
        }
        claim.version += 1;
        Ok(claim)
    }

    /// Takes back the claim `claimed` on `row` after its fulfilment failed, so that the
    /// request's other steps are open again at once rather than after [`STALE_CLAIM_MS`]. If
    /// the request changed meanwhile (another fulfilment took a stale claim over), it is left.
    async fn release_claim(&self, row: &RequestRow, claimed: &RequestRow) {
        let mut open = claimed.clone();
        open.outcome.clone_from(&row.outcome);
        let released = self
            .store
            .write(move |mut tx| Box::pin(async move { tx.requests().update(&open).await }))
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "a failed fulfilment's claim was not taken back: other steps wait 10 minutes");
        }
    }

    /// The Art. 19 notices of `action` on everything the subject holds under the `default`
    /// key (what an erasure destroys, a restriction holds back): one per recipient of those
    /// purposes, naming the fields.
    async fn notices_of_held(
        &self,
        request_id: &str,
        action: &str,
        subject: &SubjectId,
        now: Timestamp,
    ) -> Result<Vec<custodia_store::NewNotification>, VaultError> {
        let mut reader = self.store.reader().await?;
        let held = reader.records().held_values(subject.as_str()).await?;
        // values held as tokens too: their purposes' recipients were given what the tokens
        // open to (an erasure destroyed analytics' token values and told no ad partner; review)
        let tokens = reader.tokens().holdings_of(subject.as_str()).await?;
        drop(reader);
        let held: Vec<_> = held
            .iter()
            .filter(|h| h.key_class == custodia_store::DEFAULT_KEY_CLASS || action == "restriction")
            .collect();
        let purposes: Vec<&str> = held
            .iter()
            .map(|h| h.purpose.as_str())
            .chain(tokens.iter().filter_map(|t| t.purpose.as_deref()))
            .collect();
        let fields: Vec<String> = held
            .iter()
            .map(|h| format!("{}.{}", h.collection, h.field))
            .chain(tokens.iter().map(|t| format!("{}.{}", t.collection, t.field)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.art19_notifications(request_id, action, subject, &purposes, &fields, now)
    }

    /// One step of a request: `change` validates and changes the stored request, which is
    /// written with the step's audit entry, provided no other step changed it meanwhile.
    async fn request_step(
        &self,
        principal: &Principal,
        now: Timestamp,
        request_id: &str,
        action: &'static str,
        change: impl FnOnce(&mut RequestRow) -> Result<(), VaultError>,
    ) -> Result<SubjectRequestView, VaultError> {
        let mut event = AuditEvent::new(action, principal).detail("request", shown_id(request_id));
        let found = self.request_row(request_id).await;
        if let Ok(row) = &found {
            event = event
                .detail("type", row.kind.clone())
                .about_digest(row.subject_digest.clone());
        }
        let allowed = event.clone();
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::FulfilRequests)?;
            let mut row = found?;
            idle(&row, now)?;
            change(&mut row)?;
            row.updated_at = now.0;
            let audit = self.audit_row(&allowed, now, None)?;
            let stored = row.clone();
            let written = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        if !tx.requests().update(&stored).await? {
                            return Ok(false);
                        }
                        tx.audit().append(&[audit]).await?;
                        Ok(true)
                    })
                })
                .await?;
            if !written {
                return Err(request_changed().into());
            }
            row.version += 1;
            Ok(Allowed::Written(self.request_view(&row, now).await?))
        })
        .await
    }

    pub(crate) async fn request_row(&self, request_id: &str) -> Result<RequestRow, VaultError> {
        if !is_request_id(request_id) {
            return Err(request_not_found());
        }
        self.store
            .reader()
            .await?
            .requests()
            .get(request_id)
            .await?
            .ok_or_else(request_not_found)
    }

    /// The jurisdiction's rules, by name.
    pub(crate) fn jurisdiction(&self, name: &str) -> Result<&Jurisdiction, VaultError> {
        self.registry.jurisdiction(name).ok_or_else(|| {
            VaultError::bad_request(
                "unknown_jurisdiction",
                format!(
                    "jurisdiction {} is not one of the registry's: {}",
                    crate::error::quoted_name(name, false),
                    self.registry
                        .jurisdictions
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_field("jurisdiction")
        })
    }

    /// The deadlines of a request of `kind` received at `received`, as Unix milliseconds:
    /// days counted from the local day of receipt in the jurisdiction's time zone, each
    /// deadline the end of its local day there.
    fn deadlines(
        &self,
        jurisdiction: &Jurisdiction,
        kind: RequestType,
        received: Timestamp,
    ) -> Result<Due, VaultError> {
        let zone = &jurisdiction.zone;
        let received = zone.date_of(received.0);
        let d = jurisdiction.deadlines(kind, received, self.registry.holidays_of(jurisdiction));
        let end = |day: Date| zone.end_of_day_millis(day);
        Ok(Due {
            acknowledge_by: d.acknowledge_by.map(end),
            respond_by: end(d.respond_by),
            extended_respond_by: d.extended_respond_by.map(end),
            extend_notice_by: d.extend_notice_by.map(end),
        })
    }

    /// A request as the API shows it.
    pub(crate) async fn request_view(
        &self,
        row: &RequestRow,
        now: Timestamp,
    ) -> Result<SubjectRequestView, VaultError> {
        let open = !matches!(row.status.as_str(), COMPLETED | DENIED);
        let extendable_until = match (
            open && row.extended_at.is_none(),
            self.registry.jurisdiction(&row.jurisdiction),
        ) {
            (true, Some(j)) => request_type(&row.kind)
                .ok()
                .and_then(|kind| self.deadlines(j, kind, Timestamp(row.received_at)).ok())
                .and_then(|d| d.extend_notice_by.zip(d.extended_respond_by))
                .filter(|(by, _)| *by >= now.0)
                .map(|(by, _)| Timestamp(by).to_rfc3339()),
            _ => None,
        };
        let notifications = self.notification_status(&row.request_id).await?;
        Ok(SubjectRequestView {
            request_id: row.request_id.clone(),
            subject_id: row.subject_id.clone(),
            kind: row.kind.clone(),
            jurisdiction: row.jurisdiction.clone(),
            status: row.status.clone(),
            received_via: row.received_via.clone(),
            received_at: Timestamp(row.received_at).to_rfc3339(),
            acknowledge_by: row.acknowledge_by.map(|t| Timestamp(t).to_rfc3339()),
            due_at: Timestamp(row.due_at).to_rfc3339(),
            overdue: open && now.0 > row.due_at,
            acknowledgement_overdue: row.status == RECEIVED && row.acknowledge_by.is_some_and(|by| now.0 > by),
            extendable_until,
            extension: row
                .extended_at
                .zip(row.extension_reason.clone())
                .map(|(at, reason)| Extension {
                    at: Timestamp(at).to_rfc3339(),
                    reason,
                }),
            verification: row.verified_via.clone().map(|via| Verification {
                via,
                by: row.verified_by.clone().unwrap_or_default(),
                at: row.verified_at.map(|t| Timestamp(t).to_rfc3339()),
            }),
            denial: row.denial_reason.clone().map(|reason| Denial {
                reason,
                complain_to: self.complaint_authority(&row.jurisdiction),
            }),
            outcome: row.outcome.as_deref().and_then(|o| serde_json::from_str(o).ok()),
            notifications,
            created_by: row.created_by.clone(),
            updated_at: Timestamp(row.updated_at).to_rfc3339(),
            closed_at: row.closed_at.map(|t| Timestamp(t).to_rfc3339()),
            keep_until: Timestamp(row.keep_until).to_rfc3339(),
        })
    }

    /// Where a requester may complain: the jurisdiction's authority when its rule names one,
    /// else the registry's supervisory authority.
    fn complaint_authority(&self, jurisdiction: &str) -> String {
        match self.registry.jurisdiction(jurisdiction) {
            Some(j) => j.complaint_authority(&self.registry.organization).to_owned(),
            None => self.registry.organization.supervisory_authority.clone(),
        }
    }

    /// Deletes request records whose keeping time has ended (a job).
    pub async fn purge_requests(&self, now: Timestamp) -> Result<u64, VaultError> {
        Ok(self
            .store
            .write(move |mut tx| Box::pin(async move { tx.requests().purge(now.0).await }))
            .await?)
    }
}

/// A request's deadlines in Unix milliseconds.
struct Due {
    acknowledge_by: Option<i64>,
    respond_by: i64,
    extended_respond_by: Option<i64>,
    extend_notice_by: Option<i64>,
}

/// The event with the request's identity and type (what every step's entry names).
fn request_event(event: AuditEvent, row: &RequestRow) -> AuditEvent {
    event
        .detail("request", row.request_id.clone())
        .detail("type", row.kind.clone())
        .detail("jurisdiction", row.jurisdiction.clone())
}

fn request_type(name: &str) -> Result<RequestType, VaultError> {
    name.parse::<RequestType>().map_err(|_| {
        VaultError::bad_request(
            "invalid_request_type",
            format!("type must be one of: {}", crate::vocabulary::request_types().join(", ")),
        )
        .with_field("type")
    })
}

/// Request records are kept 24 months (or the jurisdiction's period) after they close; an
/// open request is kept at least that long after its deadline.
fn keep_until(from: i64, jurisdiction: &Jurisdiction) -> i64 {
    let from = Date::of_millis(from);
    let until = match jurisdiction.retain_records {
        Some(limit) => limit.end(from, &custodia_registry::Holidays::weekends_only(String::new())),
        None => from.add_months(KEEP_MONTHS),
    };
    until.end_of_day_millis()
}

fn received_at(text: &str, now: Timestamp) -> Result<Timestamp, VaultError> {
    let at = Timestamp::parse_rfc3339(text).ok_or_else(|| {
        VaultError::bad_request("invalid_received_at", "received_at must be an RFC 3339 time").with_field("received_at")
    })?;
    // A well-formed time the server refuses for when it is: 422, as no schema can say "now".
    let refused =
        |why: &str| VaultError::unprocessable("invalid_received_at", why.to_owned()).with_field("received_at");
    if at.0 > now.0 + 60_000 {
        return Err(refused("received_at is in the future"));
    }
    if now.0 - at.0 > MAX_BACKDATE_MS {
        return Err(refused("received_at is more than a year ago"));
    }
    Ok(at)
}

/// A free text of a step: trimmed, not empty, at most [`MAX_TEXT`] characters, no control
/// characters.
pub(crate) fn text(field: &'static str, value: &str) -> Result<String, VaultError> {
    // judged as sent (the schema's length is the text's as sent; a form feed is no space to
    // trim), then kept without the spaces and line breaks around it
    let sent = value.chars().count() > MAX_TEXT
        || value
            .chars()
            .any(|c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_format(c));
    let value = value.trim();
    if sent || value.is_empty() || value.chars().any(|c| c.is_control() || is_format(c)) {
        // 422: the body is well-formed; its text is refused (no schema can say "no invisible
        // characters").
        return Err(VaultError::unprocessable(
            "invalid_text",
            format!("{field} must be 1-{MAX_TEXT} characters without control or invisible formatting characters"),
        )
        .with_field(field));
    }
    Ok(value.to_owned())
}

/// The key of the claim mark in a request's `outcome` while a fulfilment runs.
const CLAIM_MARK: &str = "fulfilling_since";
/// After this long a claim is taken to belong to a fulfilment that stopped (10 minutes).
const STALE_CLAIM_MS: i64 = 10 * 60 * 1000;

/// When the request was claimed by a running fulfilment, if it is.
fn claimed_since(row: &RequestRow) -> Option<i64> {
    let outcome: serde_json::Value = serde_json::from_str(row.outcome.as_deref()?).ok()?;
    outcome.get(CLAIM_MARK)?.as_i64()
}

/// Refuses a step while a fulfilment runs (a claim [`STALE_CLAIM_MS`] old belongs to one that
/// stopped).
fn idle(row: &RequestRow, now: Timestamp) -> Result<(), VaultError> {
    let running = claimed_since(row).is_some_and(|since| now.0 - since < STALE_CLAIM_MS);
    if running && !matches!(row.status.as_str(), COMPLETED | DENIED) {
        return Err(being_fulfilled());
    }
    Ok(())
}

fn being_fulfilled() -> VaultError {
    conflict(
        "request_being_fulfilled",
        "the request is being fulfilled; no other step may change it until that ends",
    )
}

/// The audit entry of the erasure itself (the fulfilment's own was written with its claim).
fn about_erasure(fulfil: &AuditEvent) -> AuditEvent {
    fulfil.clone().renamed("subject.erase")
}

/// Invisible formatting characters (zero-width, bidirectional overrides and isolates, the
/// byte order mark, tags, variation selectors, fillers, interlinear annotation, line and
/// paragraph separators): they can make a text read as something else on an operator's
/// screen, or hide from the screen for personal data what a reader of the file sees.
pub(crate) fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Refuses a step on a closed request.
fn open(row: &RequestRow) -> Result<(), VaultError> {
    if matches!(row.status.as_str(), COMPLETED | DENIED) {
        return Err(conflict(
            "request_closed",
            format!("the request is {}; it cannot change any more", row.status),
        ));
    }
    Ok(())
}

fn is_request_id(id: &str) -> bool {
    id.len() == 36 && id.starts_with("req_") && id.bytes().skip(4).all(|b| b.is_ascii_hexdigit())
}

/// A request id as an audit entry may show it (anything else is not logged as given).
fn shown_id(id: &str) -> String {
    if is_request_id(id) {
        id.to_owned()
    } else {
        "(invalid request id)".to_owned()
    }
}

fn conflict(code: &'static str, message: impl Into<String>) -> VaultError {
    VaultError::new(crate::ErrorKind::Conflict, code, message)
}

fn request_changed() -> VaultError {
    conflict(
        "request_changed",
        "the request changed while this step ran; read it again and retry",
    )
}

fn request_not_found() -> VaultError {
    VaultError::not_found(
        "request_not_found",
        "no such request (request ids look like req_ and 32 hex digits)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, outcome: Option<&str>) -> RequestRow {
        RequestRow {
            request_id: "req_00000000000000000000000000000000".into(),
            subject_id: Some("s".into()),
            subject_digest: "d".into(),
            kind: "erasure".into(),
            jurisdiction: "gdpr".into(),
            received_via: "api".into(),
            status: status.into(),
            received_at: 0,
            acknowledge_by: None,
            due_at: 0,
            extended_at: None,
            extension_reason: None,
            verified_via: None,
            verified_by: None,
            verified_at: None,
            denial_reason: None,
            outcome: outcome.map(str::to_owned),
            created_by: "p".into(),
            updated_at: 0,
            closed_at: None,
            keep_until: 0,
            version: 0,
        }
    }

    #[test]
    fn a_claimed_request_refuses_other_steps_until_it_closes() {
        let claimed = format!("{{\"{CLAIM_MARK}\":1000}}");
        assert_eq!(claimed_since(&row(IN_PROGRESS, Some(&claimed))), Some(1000));
        assert_eq!(claimed_since(&row(IN_PROGRESS, None)), None);
        assert_eq!(claimed_since(&row(COMPLETED, Some("{\"receipt\":{}}"))), None);
        let soon = Timestamp(1000 + STALE_CLAIM_MS - 1);
        assert_eq!(
            idle(&row(IN_PROGRESS, Some(&claimed)), soon).map_err(|e| e.code),
            Err("request_being_fulfilled")
        );
        assert!(idle(&row(IN_PROGRESS, None), soon).is_ok());
        // the claim of a fulfilment that stopped (its server did) holds no step back for good
        let stale = Timestamp(1000 + STALE_CLAIM_MS);
        assert!(idle(&row(IN_PROGRESS, Some(&claimed)), stale).is_ok());
    }

    #[test]
    fn free_text_refuses_control_and_invisible_characters() {
        assert_eq!(
            text("reason", "  ID checked at the desk ").unwrap(),
            "ID checked at the desk"
        );
        for bad in [
            "",
            "   ",
            "a\u{0007}b",
            "\u{202e}evil",
            "zero\u{200b}width",
            // invisible characters that hide an email from the screen (re-review 97): tags,
            // interlinear annotation, a grapheme joiner, variation selectors
            "claim \u{e0061}\u{e0064}\u{e0061}",
            "ada@exam\u{fff9}ple.com",
            "a\u{34f}b",
            "\u{fe0f}",
            "x\u{e0100}",
            "para\u{2029}graph",
            &"x".repeat(MAX_TEXT + 1),
            // what schemathesis sent: a text within bounds once its form feeds are trimmed
            &format!(" 7\u{213fa}{}", "\u{c}".repeat(MAX_TEXT)),
            &format!("ok{}", " ".repeat(MAX_TEXT)),
        ] {
            assert!(text("reason", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_checked_before_they_reach_a_query_or_a_log() {
        assert!(is_request_id("req_0123456789abcdef0123456789abcdef"));
        for bad in ["req_nope", "../req", "req_0123456789abcdef0123456789abcdeg", ""] {
            assert!(!is_request_id(bad), "{bad}");
            assert_eq!(shown_id(bad), "(invalid request id)");
        }
    }
}
