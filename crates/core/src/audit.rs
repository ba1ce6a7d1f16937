//! Audit entries for every decision of the access gate and every change: who, what action,
//! under which purpose, on which collection and fields (names only), allowed or denied and
//! why, and the subject as a keyed HMAC so that "who touched subject X" can be answered by
//! computing it, while the log itself holds no personal data.
//!
//! Fail closed: a write's entry is committed in the write's own transaction; a read's entry
//! is durable before any data is returned; a refusal's entry is durable before the refusal is
//! answered. If the audit log cannot be written, the request fails.

use std::borrow::Cow;

use serde::Serialize;

use custodia_store::{AuditColumns, AuditColumnsRef, AuditQuery, AuditRow};
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
    /// Named facts beyond the columns (a query's filter, a count of attempts): names fixed in
    /// code, values identifiers, numbers or digests, never personal data.
    detail: std::collections::BTreeMap<&'static str, String>,
    /// A refusal the event records by itself (an unknown token probed), not through an error.
    refusal: Option<&'static str>,
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
    /// Absent when empty, so entries without detail keep the encoding they always had.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    detail: &'a std::collections::BTreeMap<&'static str, String>,
}

impl AuditEvent {
    /// An operator's entries name the session and carry the reason they gave.
    pub(crate) fn new(action: &'static str, principal: &Principal) -> Self {
        let event = Self::unauthenticated(action, principal.id.clone());
        match &principal.operator {
            None => event,
            Some(session) => {
                let mut event = event.detail("session", session.session_id.clone());
                if let Some(grant) = &session.break_glass {
                    event = event.detail("break_glass", grant.clone());
                }
                match &session.justification {
                    Some(reason) => event.detail("justification", reason.clone()),
                    None => event,
                }
            }
        }
    }

    /// An event named by a principal id alone; for a failed authentication, the principal
    /// that was claimed, as far as that is known.
    pub(crate) fn unauthenticated(action: &'static str, principal: String) -> Self {
        Self {
            action,
            principal,
            purpose: None,
            collection: None,
            subject: None,
            fields: Vec::new(),
            detail: std::collections::BTreeMap::new(),
            refusal: None,
        }
    }

    /// Adds a named fact; `value` must hold no personal data (names, numbers, digests).
    pub(crate) fn detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.detail.insert(name, value.into());
        self
    }

    /// The same event under another action name.
    pub(crate) fn renamed(mut self, action: &'static str) -> Self {
        self.action = action;
        self
    }

    /// Names the subject by its keyed digest (as stored beside a request).
    pub(crate) fn about_digest(mut self, digest: String) -> Self {
        self.subject = Some(digest);
        self
    }

    /// Records the event as a refusal with this reason, without an error being answered.
    pub(crate) fn refused(mut self, reason: &'static str) -> Self {
        self.refusal = Some(reason);
        self
    }

    pub(crate) fn purpose(mut self, purpose: &str) -> Self {
        self.purpose = Some(shown(purpose));
        self
    }

    pub(crate) fn collection(mut self, collection: &str) -> Self {
        self.collection = Some(shown(collection));
        self
    }

    /// Names the vault itself vouches for (no request text): logged as given.
    fn known_fields(mut self, names: Vec<String>) -> Self {
        self.fields = names;
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
        // an operator's reason naming the subject would put its id in the clear beside the
        // digest that names it (routes with the subject in the body as in the path; review)
        if event
            .detail
            .get("justification")
            .is_some_and(|reason| crate::names_subject(reason, subject.as_str()))
        {
            return Err(VaultError::unprocessable(
                "text_has_personal_data",
                "the justification names the subject of the call, and the audit log keeps it in the clear (it names subjects by keyed digest): give a ticket number instead",
            )
            .with_field("justification"));
        }
        Ok(AuditEvent {
            subject: Some(self.keys.audit_subject(subject)?),
            ..event
        })
    }

    /// The `deny` entry `error` gets about `event`: a refusal (403) was decided and is logged,
    /// and so is a write refused because other purposes hold the value (409 `value_held`,
    /// `record_retained`: the value was compared with what was sent, so a writer sending
    /// guesses leaves a trace of each); other failures (400, 404, 409, 422) decided nothing
    /// and get none.
    pub(crate) fn refusal_row(
        &self,
        event: &AuditEvent,
        now: Timestamp,
        error: &VaultError,
    ) -> Result<Option<AuditRow>, VaultError> {
        // A refusal decided on the state of things is a decision too (a legal hold stopping an
        // erasure, a request closed or not verified, a consent the purpose does not take, a
        // text that names someone): a 409, or these 422s. Malformed input decides nothing.
        let compared = matches!(error.code, "value_held" | "record_retained");
        let decided = matches!(
            error.code,
            "consent_not_applicable" | "objection_not_applicable" | "text_has_personal_data" | "field_not_held"
        );
        if error.kind != ErrorKind::Forbidden && error.kind != ErrorKind::Conflict && !compared && !decided {
            return Ok(None);
        }
        self.audit_row(event, now, Some(error)).map(Some)
    }

    /// The audit row of `event` with its decision.
    pub(crate) fn audit_row(
        &self,
        event: &AuditEvent,
        now: Timestamp,
        denied: Option<&VaultError>,
    ) -> Result<AuditRow, VaultError> {
        let mut row = event_row(event, now, denied.map(|e| e.code), &self.keys.audit_tags)?;
        row.metric = Some(custodia_metrics::Decision::new(
            event.action,
            self.purpose_label(event.purpose.as_deref()),
            denied.is_none() && event.refusal.is_none(),
        ));
        Ok(row)
    }

    /// Audits a refusal made before a route's own work began: a text the caller gave
    /// (`field`: a reason, a justification) that holds personal data, on `route` (its path
    /// template): `text.refused`, `deny`, `text_has_personal_data`, naming the field and the
    /// route, never the text. README: a refusal for a text naming someone is an audit entry.
    pub async fn audit_refused_text(
        &self,
        principal: &Principal,
        now: Timestamp,
        field: &str,
        route: &str,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("text.refused", principal)
            .detail("field", field.to_owned())
            .detail("route", route.to_owned());
        let refusal = VaultError::unprocessable("text_has_personal_data", "the text holds personal data");
        let row = self.audit_row(&event, now, Some(&refusal))?;
        self.append_audit_rows(&[row]).await
    }

    /// [`audit_row_of`] with the entry tagged as the vault tags its own (for tools that
    /// write entries of their own into a vault's log, such as the benchmark).
    pub fn tagged_audit_row(&self, at: i64, entry: &str) -> Result<AuditRow, VaultError> {
        let entry = self.keys.audit_tags.tag(entry).map_err(|e| VaultError::internal(&e))?;
        Ok(audit_row_of(at, entry))
    }

    /// A purpose as a metrics label: its name if the registry declares it, else `(other)`
    /// (a caller's text never becomes a label).
    pub(crate) fn purpose_label(&self, purpose: Option<&str>) -> custodia_metrics::Purpose {
        custodia_metrics::Purpose::checked(purpose, |p| self.registry.purpose(p).is_some())
    }

    /// Appends rows now; an audit failure fails the request.
    pub(crate) async fn append_audit_rows(&self, rows: &[AuditRow]) -> Result<(), VaultError> {
        self.store.append_audit(rows.to_vec()).await.map_err(|e| {
            if self.store.audit_tail_broken() {
                return self.log.stop(crate::checkpoint::TAIL_DELETED.to_owned());
            }
            tracing::error!(error = %e, "audit log write failed; refusing the request");
            VaultError::new(
                ErrorKind::Internal,
                "audit_unavailable",
                "the audit log cannot be written, so the request was refused",
            )
        })
    }

    /// The one audited path every use case takes: runs `work`, then writes the decision.
    ///
    /// - A refusal (403) gets a `deny` entry, durable before the refusal is answered: about
    ///   the event, or about what [`Refused::about`] names (a subject found along the way).
    /// - [`Allowed::Written`]: the use case committed its `allow` entry in its own write's
    ///   transaction (built with [`Vault::audit_row`] before the work began).
    /// - [`Allowed::Read`] / [`Allowed::ReadAbout`]: the `allow` entries (naming the fields
    ///   returned, or one per subject touched) are durable before the value is handed back.
    ///
    /// - A refusal decided on the state of things (409, and the 422s [`Vault::refusal_row`]
    ///   names) gets a `deny` entry too, with its code.
    ///
    /// Other failures (400, 404, 422 on malformed input) are answered without an entry:
    /// nothing was decided.
    /// If the audit log cannot be written, the request fails (fail closed).
    pub(crate) async fn audited<T>(
        &self,
        event: AuditEvent,
        now: Timestamp,
        work: impl std::future::Future<Output = Result<Allowed<T>, Refused>>,
    ) -> Result<T, VaultError> {
        // A log that no longer matches its checkpoints takes no more entries: nothing is
        // answered until an operator has looked (fail closed).
        self.log.accepting()?;
        match work.await {
            Ok(Allowed::Written(value)) => Ok(value),
            Ok(Allowed::Read(value, fields)) => {
                let event = match fields {
                    Some(fields) => event.fields(&fields),
                    None => event,
                };
                self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await?;
                Ok(value)
            }
            Ok(Allowed::Shown(value, shown)) => {
                let mut event = event.fields(&shown.fields);
                if !shown.masked.is_empty() {
                    event = event.detail("masked", shown.masked.join(","));
                }
                if !shown.tokens.is_empty() {
                    event = event.detail("tokens", shown.tokens.join(","));
                }
                if let Some(n) = shown.records {
                    event = event.detail("records", n.to_string());
                }
                self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await?;
                Ok(value)
            }
            Ok(Allowed::ReadAbout(value, events)) if events.is_empty() => {
                self.append_audit_rows(&[self.audit_row(&event, now, None)?]).await?;
                Ok(value)
            }
            Ok(Allowed::ReadAbout(value, events)) => {
                let rows = events
                    .iter()
                    .map(|e| self.audit_row(e, now, None))
                    .collect::<Result<Vec<_>, _>>()?;
                self.append_audit_rows(&rows).await?;
                Ok(value)
            }
            Err(Refused { error, about }) => {
                if let Some(row) = self.refusal_row(about.as_ref().unwrap_or(&event), now, &error)? {
                    self.append_audit_rows(&[row]).await?;
                }
                Err(error)
            }
        }
    }
}

/// The audit row of `event` at `now`, a refusal with the error code `denied` when given: the
/// canonical entry text tagged with `tags` (`custodia_audit::tag`), its leaf hash and the
/// indexed columns (which [`audit_columns`] derives again from the text).
pub(crate) fn event_row(
    event: &AuditEvent,
    now: Timestamp,
    denied: Option<&'static str>,
    tags: &custodia_audit::tag::TagKey,
) -> Result<AuditRow, VaultError> {
    let entry = Entry {
        v: ENTRY_VERSION,
        at: now.0,
        principal: &event.principal,
        action: event.action,
        decision: if denied.is_some() || event.refusal.is_some() {
            "deny"
        } else {
            "allow"
        },
        reason: denied.or(event.refusal),
        purpose: event.purpose.as_deref(),
        collection: event.collection.as_deref(),
        subject: event.subject.as_deref(),
        fields: &event.fields,
        detail: &event.detail,
    };
    let index = AuditColumns {
        principal: Some(entry.principal.to_owned()),
        action: Some(entry.action.to_owned()),
        decision: Some(entry.decision.to_owned()),
        purpose: entry.purpose.map(str::to_owned),
        subject: entry.subject.map(str::to_owned),
    };
    let entry = serde_json::to_string(&entry).map_err(|e| VaultError::internal(&e))?;
    let entry = tags.tag(&entry).map_err(|e| VaultError::internal(&e))?;
    let leaf = custodia_audit::leaf_hash(entry.as_bytes()).to_vec();
    Ok(AuditRow {
        seq: 0,
        at: now.0,
        entry,
        leaf,
        index,
        link: None,
        metric: None,
    })
}

/// How an allowed use case's `allow` entry is written (see [`Vault::audited`]).
pub(crate) enum Allowed<T> {
    /// Committed with the use case's own write.
    Written(T),
    /// A read; its entry names these fields (when given) and is appended now.
    Read(T, Option<Vec<String>>),
    /// A read touching several subjects: one entry each (the event's own when none).
    ReadAbout(T, Vec<AuditEvent>),
    /// A read of records; its entry says what was returned (see [`Shown`]).
    Shown(T, Shown),
}

/// What a read of records returned, for its entry: the fields returned with a value (names),
/// those of them masked or as tokens (the others left the vault readable), and how many
/// records a list returned. Names and a count only.
pub(crate) struct Shown {
    pub fields: Vec<String>,
    pub masked: Vec<String>,
    pub tokens: Vec<String>,
    pub records: Option<usize>,
}

/// A use case's failure, and (for a refusal about something more specific than the event,
/// such as one token's subject) the event its `deny` entry describes.
pub(crate) struct Refused {
    pub error: VaultError,
    pub about: Option<AuditEvent>,
}

impl From<VaultError> for Refused {
    fn from(error: VaultError) -> Self {
        Self { error, about: None }
    }
}

impl From<custodia_store::StoreError> for Refused {
    fn from(error: custodia_store::StoreError) -> Self {
        VaultError::from(error).into()
    }
}

impl From<custodia_crypto::CryptoError> for Refused {
    fn from(error: custodia_crypto::CryptoError) -> Self {
        VaultError::from(error).into()
    }
}

/// The time and indexed columns an entry's canonical text implies: what `audit verify`
/// checks the stored `at` and columns against. `None` when the text is not an entry.
#[must_use]
pub fn audit_columns(entry: &str) -> Option<(Option<i64>, AuditColumns)> {
    let e = Indexed::of(entry)?;
    let owned = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
    let columns = AuditColumns {
        principal: owned(e.principal),
        action: owned(e.action),
        decision: owned(e.decision),
        purpose: owned(e.purpose),
        subject: owned(e.subject),
    };
    Some((e.at, columns))
}

/// Whether the stored time and indexed columns of an entry are those its text implies
/// ([`audit_columns`], without copying them).
pub(crate) fn columns_match(entry: &str, at: i64, columns: &AuditColumnsRef<'_>) -> bool {
    Indexed::of(entry).is_some_and(|e| {
        e.at == Some(at)
            && e.principal.as_deref() == columns.principal
            && e.action.as_deref() == columns.action
            && e.decision.as_deref() == columns.decision
            && e.purpose.as_deref() == columns.purpose
            && e.subject.as_deref() == columns.subject
    })
}

/// The fields the columns come from, borrowed where the text has no escapes.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
struct Indexed<'a> {
    at: Option<i64>,
    #[serde(borrow)]
    principal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    decision: Option<Cow<'a, str>>,
    #[serde(borrow)]
    purpose: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
}

impl<'a> Indexed<'a> {
    /// What serde reads from `entry`, read directly when the text is laid out as [`Entry`]
    /// writes it (the keys in order, no whitespace, strings without escapes), else by serde.
    fn of(entry: &'a str) -> Option<Self> {
        match Self::canonical(entry) {
            Some(e) => Some(e),
            None => serde_json::from_str(entry).ok(),
        }
    }

    /// `entry` read as [`Entry`] lays it out, or `None` for any other text (serde then
    /// decides). Accepts only texts serde reads the same way: an object with exactly these
    /// keys, once each, in order; strings with no escape and no control character; integers
    /// without a leading zero, `at` within 18 digits.
    fn canonical(entry: &'a str) -> Option<Self> {
        let mut c = Canonical { text: entry, at: 0 };
        c.literal("{\"v\":")?;
        c.natural()?;
        c.literal(",\"at\":")?;
        let at = if c.eat("null") { None } else { Some(c.integer()?) };
        c.literal(",\"principal\":")?;
        let principal = c.optional_string()?;
        c.literal(",\"action\":")?;
        let action = c.optional_string()?;
        c.literal(",\"decision\":")?;
        let decision = c.optional_string()?;
        c.literal(",\"reason\":")?;
        c.optional_string()?;
        c.literal(",\"purpose\":")?;
        let purpose = c.optional_string()?;
        c.literal(",\"collection\":")?;
        c.optional_string()?;
        c.literal(",\"subject\":")?;
        let subject = c.optional_string()?;
        c.literal(",\"fields\":[")?;
        if !c.eat("]") {
            loop {
                c.string()?;
                if c.eat("]") {
                    break;
                }
                c.literal(",")?;
            }
        }
        if c.eat(",\"detail\":{") && !c.eat("}") {
            loop {
                c.string()?;
                c.literal(":")?;
                c.string()?;
                if c.eat("}") {
                    break;
                }
                c.literal(",")?;
            }
        }
        // the tag, last (custodia_audit::tag)
        if c.eat(",\"tag\":") {
            c.string()?;
        }
        c.literal("}")?;
        (c.at == entry.len()).then_some(Self {
            at,
            principal: principal.map(Cow::Borrowed),
            action: action.map(Cow::Borrowed),
            decision: decision.map(Cow::Borrowed),
            purpose: purpose.map(Cow::Borrowed),
            subject: subject.map(Cow::Borrowed),
        })
    }
}

/// A reader of the canonical entry layout ([`Indexed::canonical`]).
struct Canonical<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Canonical<'a> {
    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.at..).unwrap_or_default()
    }

    /// Whether `s` comes next (and if so, steps over it).
    fn eat(&mut self, s: &str) -> bool {
        let found = self.rest().starts_with(s.as_bytes());
        if found {
            self.at += s.len();
        }
        found
    }

    fn literal(&mut self, s: &str) -> Option<()> {
        self.eat(s).then_some(())
    }

    /// Digits without a leading zero (or `0`); how many.
    fn natural(&mut self) -> Option<usize> {
        let digits = self.rest().iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && self.rest().first() == Some(&b'0')) {
            return None;
        }
        self.at += digits;
        Some(digits)
    }

    /// An integer of at most 18 digits (so within `i64`); not `-0`.
    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        self.eat("-");
        let digits = self.natural()?;
        let text = self.text.get(start..self.at)?;
        if digits > 18 || text == "-0" {
            return None;
        }
        text.parse().ok()
    }

    /// A string without escapes or control characters: its text.
    fn string(&mut self) -> Option<&'a str> {
        self.literal("\"")?;
        let start = self.at;
        let len = self.rest().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if self.text.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    fn optional_string(&mut self) -> Option<Option<&'a str>> {
        if self.eat("null") {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }
}

/// An audit row for a canonical entry text, its leaf hash and columns derived from it (for
/// tools that write entries of their own into a store, such as the benchmarks). Untagged: a
/// vault signs such rows only before its first tagged entry ([`crate::Vault::tagged_audit_row`]
/// tags one).
#[must_use]
pub fn audit_row_of(at: i64, entry: String) -> AuditRow {
    let leaf = custodia_audit::leaf_hash(entry.as_bytes()).to_vec();
    let index = audit_columns(&entry).map(|(_, columns)| columns).unwrap_or_default();
    AuditRow {
        seq: 0,
        at,
        entry,
        leaf,
        index,
        link: None,
        metric: None,
    }
}

/// A use of the PII scanner over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScannerUse {
    /// `POST /v1/scan`.
    Scan,
    /// `POST /v1/redact`.
    Redact,
    /// `POST /v1/redact` with a keyed operator (`hash`, `encrypt`): the server's redaction
    /// key, which needs `use_redaction_key` too.
    RedactionKey,
}

impl Vault {
    /// Refuses `principal` the PII scanner unless one of its roles holds `use_scanner` (and,
    /// for the redaction key, `use_redaction_key`). The decision is audited (allow and deny)
    /// before the scan runs; the scanned text never is.
    pub async fn authorize_scanner(
        &self,
        principal: &Principal,
        now: Timestamp,
        what: ScannerUse,
    ) -> Result<(), VaultError> {
        let (action, capability) = scanner_use(what);
        let event = AuditEvent::new(action, principal);
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, capability)?;
            Ok(Allowed::Read((), None))
        })
        .await
    }
}

impl Vault {
    /// Whether `principal` holds what `what` needs, decided as [`Self::authorize_scanner`]
    /// decides but neither audited nor refused: a caller that does not is refused (and
    /// audited) at once, before its request takes any of the scanner's places.
    pub fn holds_scanner_capability(&self, principal: &Principal, what: ScannerUse) -> bool {
        crate::gate::require(&self.policies, principal, scanner_use(what).1).is_ok()
    }
}

/// The audit action and the capability of a use of the scanner.
fn scanner_use(what: ScannerUse) -> (&'static str, custodia_registry::Capability) {
    use custodia_registry::Capability;
    match what {
        ScannerUse::Scan => ("pii.scan", Capability::UseScanner),
        ScannerUse::Redact => ("pii.redact", Capability::UseScanner),
        ScannerUse::RedactionKey => ("pii.redact.key", Capability::UseRedactionKey),
    }
}

impl Vault {
    /// Records that a redaction used a keyed operator (`hash`, `encrypt`): one `pii.redact.keyed`
    /// entry naming each `operator:ENTITY_TYPE` applied and the dataset key id (`key_id:id`, or
    /// none for the server's own key), never a value. Durable before the redacted text is
    /// returned (fail closed). `keyed` holds the scanner's entity type names only.
    pub async fn audit_keyed_redaction(
        &self,
        principal: &Principal,
        now: Timestamp,
        keyed: &std::collections::BTreeSet<(&'static str, String)>,
        key_id: Option<&str>,
    ) -> Result<(), VaultError> {
        let mut names: Vec<String> = keyed
            .iter()
            .map(|(op, entity)| format!("{op}:{}", crate::error::shown_known(entity)))
            .collect();
        if let Some(id) = key_id {
            names.push(format!("key_id:{}", crate::error::shown(id)));
        }
        let event = AuditEvent::new("pii.redact.keyed", principal).known_fields(names);
        self.audited(event, now, async { Ok(Allowed::Read((), None)) }).await
    }
}

/// Most audit entries one page returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// What an audit read selects; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries about this subject (matched by its keyed digests; the log holds no ids).
    pub subject_id: Option<String>,
    /// The other conditions (its `subjects` are ignored: they come from `subject_id`).
    pub conditions: AuditQuery,
}

impl Vault {
    /// The digests entries about `subject` carry.
    /// (Entries written by v0.1 carry the legacy digest; both are looked up.)
    pub(crate) fn subject_digests(&self, subject: &SubjectId) -> Result<Vec<String>, VaultError> {
        Ok(vec![
            self.keys.audit_subject(subject)?,
            self.keys.legacy_audit_subject(subject)?,
        ])
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
        // The filter is part of the entry, so "who looked up subject X" is itself answered by
        // a lookup of X (the subject as its keyed digest, like every entry about X).
        let subject = filter.subject_id.as_deref().map(SubjectId::parse).transpose()?;
        let mut event = AuditEvent::new("audit.read", principal);
        if let Some(subject) = &subject {
            event = self.about(event, subject)?;
        }
        let c = &filter.conditions;
        for (name, value) in [
            ("principal", &c.principal),
            ("action", &c.action),
            ("purpose", &c.purpose),
            ("decision", &c.decision),
        ] {
            if let Some(v) = value {
                // Action names are dotted identifiers (`record.read`).
                let dotted = v.split('.').all(|part| shown(part) == part);
                event = event.detail(name, if dotted { v.clone() } else { shown(v) });
            }
        }
        for (name, value) in [
            ("from", c.from),
            ("to", c.to),
            ("after", Some(after).filter(|a| *a > 0)),
        ] {
            if let Some(v) = value {
                event = event.detail(name, v.to_string());
            }
        }
        self.audited(event, now, async {
            crate::gate::require(&self.policies, principal, custodia_registry::Capability::ReadAudit)?;
            let subjects = match &subject {
                Some(subject) => self.subject_digests(subject)?,
                None => Vec::new(),
            };
            let query = AuditQuery {
                subjects,
                ..filter.conditions.clone()
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
            let page = AuditEvents {
                events,
                next_after: if full { last } else { None },
            };
            Ok(Allowed::Read(page, None))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde reads from `text`: the reference [`Indexed::of`] must agree with.
    fn by_serde(text: &str) -> Option<Indexed<'_>> {
        serde_json::from_str(text).ok()
    }

    /// Strings of every kind an entry may hold: identifiers, any Unicode, and the characters
    /// JSON escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_.0-9]{0,12}",
            any::<String>(),
            "[\\x00-\\x1f\"\\\\\\u{7f}é\\u{1F600}a]{0,6}",
        ]
    }

    proptest! {
        /// The direct reading of the canonical layout derives exactly what serde derives, for
        /// entries as [`Entry`] writes them and for the same texts with one character changed
        /// or removed (which it must leave to serde, or read the same way).
        #[test]
        fn the_direct_reading_derives_what_serde_derives(
            at in prop_oneof![any::<i64>(), -1000i64..1000],
            principal in text(),
            action in text(),
            decision in text(),
            reason in proptest::option::of(text()),
            purpose in proptest::option::of(text()),
            collection in proptest::option::of(text()),
            subject in proptest::option::of(text()),
            fields in proptest::collection::vec(text(), 0..3),
            detail in proptest::collection::btree_map(
                prop::sample::select(vec!["filter", "count", "from", "to"]), text(), 0..3),
            at_char in any::<prop::sample::Index>(),
            replacement in prop_oneof![Just(None), any::<char>().prop_map(Some), Just(Some(' ')), Just(Some('"'))],
        ) {
            let entry = Entry {
                v: ENTRY_VERSION,
                at,
                principal: &principal,
                action: &action,
                decision: &decision,
                reason: reason.as_deref(),
                purpose: purpose.as_deref(),
                collection: collection.as_deref(),
                subject: subject.as_deref(),
                fields: &fields,
                detail: &detail,
            };
            let text = serde_json::to_string(&entry).unwrap();
            prop_assert_eq!(Indexed::of(&text), by_serde(&text));
            prop_assert!(by_serde(&text).is_some());
            // Without escapes, the direct reading is the one taken.
            let plain = |s: &str| !s.contains(['"', '\\']) && !s.chars().any(|c| c < ' ');
            let all_plain = [&principal, &action, &decision].iter().all(|s| plain(s))
                && [&reason, &purpose, &collection, &subject].iter().all(|s| s.as_deref().is_none_or(plain))
                && fields.iter().all(|s| plain(s))
                && detail.values().all(|s| plain(s))
                && at.unsigned_abs() < 10u64.pow(18);
            prop_assert_eq!(Indexed::canonical(&text).is_some(), all_plain);

            let mut chars: Vec<char> = text.chars().collect();
            let i = at_char.index(chars.len());
            match replacement {
                Some(c) => chars[i] = c,
                None => {
                    chars.remove(i);
                }
            }
            let changed: String = chars.into_iter().collect();
            prop_assert_eq!(Indexed::of(&changed), by_serde(&changed));
        }
    }

    /// Texts near the canonical layout that serde reads differently or refuses: the direct
    /// reading leaves each to serde, or reads it as serde does.
    #[test]
    fn near_canonical_texts_are_read_as_serde_reads_them() {
        let tail = r#","principal":"p","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[]}"#;
        for head in [
            r#"{"v":1,"at":5"#,
            r#"{"v":1,"at":-0"#,
            r#"{"v":1,"at":05"#,
            r#"{"v":01,"at":5"#,
            r#"{"v":1,"at":5.0"#,
            r#"{"v":1,"at":null"#,
            r#"{"v":1,"at":9223372036854775807"#,
            r#"{"v":1,"at":99999999999999999999"#,
            r#"{"v":1, "at":5"#,
            r#"{"v":1,"at":5,"at":6"#,
            r#"{"v":1,"at":5"#,
        ] {
            let text = format!("{head}{tail}");
            assert_eq!(Indexed::of(&text), by_serde(&text), "{text}");
        }
        for text in [
            r#"{"v":1,"at":5,"principal":"p","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[]} "#,
            r#"{"v":1,"at":5,"principal":"p","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[],"detail":{"a":"b","a":"c"}}"#,
            r#"{"v":1,"at":5,"principal":"p","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[],"detail":{}}"#,
            r#"{"v":1,"at":5,"principal":"p","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[],"principal":"q"}"#,
            r#"{"v":1,"at":5,"principal":"p\u0000","action":"a","decision":"allow","reason":null,"purpose":null,"collection":null,"subject":"s","fields":[]}"#,
            "{\"v\":1,\"at\":5,\"principal\":\"p\u{1e}\",\"action\":\"a\",\"decision\":\"allow\",\"reason\":null,\"purpose\":null,\"collection\":null,\"subject\":\"s\",\"fields\":[]}",
        ] {
            assert_eq!(Indexed::of(text), by_serde(text), "{text}");
        }
    }

    /// A subject filter finds entries carrying either digest of the subject: the current one
    /// and the one v0.1 wrote (`Keys::legacy_audit_subject`), and no other subject's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subject_filter_finds_current_and_legacy_digests() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = Principal {
            id: "prn_admin".into(),
            name: "admin".into(),
            roles: vec!["admin".into()],
            context: std::collections::BTreeMap::new(),
            operator: None,
        };
        let (s1, s2) = (SubjectId::parse("s1").unwrap(), SubjectId::parse("s2").unwrap());
        let entry = |n: i64, digest: String| {
            audit_row_of(
                n,
                format!(
                    "{{\"v\":1,\"at\":{n},\"principal\":\"p\",\"action\":\"record.read\",\"decision\":\"allow\",\"reason\":null,\"purpose\":null,\"collection\":null,\"subject\":\"{digest}\",\"fields\":[]}}"
                ),
            )
        };
        let rows = vec![
            entry(10, vault.keys.legacy_audit_subject(&s1).unwrap()),
            entry(11, vault.keys.audit_subject(&s1).unwrap()),
            entry(12, vault.keys.audit_subject(&s2).unwrap()),
            entry(13, vault.keys.legacy_audit_subject(&s2).unwrap()),
        ];
        vault.store.append_audit(rows).await.unwrap();
        let filter = AuditFilter {
            subject_id: Some("s1".into()),
            ..AuditFilter::default()
        };
        let page = vault
            .audit_events(&admin, Timestamp(20), 0, 100, &filter)
            .await
            .unwrap();
        let ats: Vec<i64> = page.events.iter().map(|e| e.entry["at"].as_i64().unwrap()).collect();
        assert_eq!(ats, [10, 11]);
    }
}

/// Fuzzing as plain tests (issue 17): the audit entry parser ([`audit_columns`],
/// [`columns_match`], [`Indexed`]) over arbitrary text and mutations of entries, and entries
/// as [`event_row`] writes them round-tripping to the columns stored beside them.
/// `PROPTEST_CASES=20000 cargo test -p custodia-core audit::fuzz` fuzzes longer.
#[cfg(test)]
impl Vault {
    /// Every audit entry, oldest first: what a test reads the log with.
    pub(crate) async fn all_audit_entries(&self) -> Vec<custodia_store::AuditRow> {
        let mut reader = self.store.reader().await.unwrap_or_else(|e| panic!("{e}"));
        reader
            .audit()
            .entries(i64::MIN, i64::MAX)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// Cases per property: `default`, or `PROPTEST_CASES` when it is set.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Strings of every kind an entry may hold: names, any Unicode, JSON's escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_.0-9]{0,12}",
            any::<String>(),
            "[\\x00-\\x1f\"\\\\\\u{7f}é\\u{1F600}a]{0,6}",
        ]
    }

    /// An event as the vault builds one: any claimed principal, any purpose, collection and
    /// field names (through the builders, which withhold the ones that are not names), any
    /// subject digest and detail values, a refusal or not.
    fn event() -> impl Strategy<Value = AuditEvent> {
        (
            prop::sample::select(vec!["record.read", "record.create", "auth", "a\"b", "é\u{0}", ""]),
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3),
            proptest::collection::btree_map(
                prop::sample::select(vec!["session", "justification", "filter", "count", "q\"uote"]),
                text(),
                0..3,
            ),
            proptest::option::of(prop::sample::select(vec!["unknown_token", "x\\y"])),
        )
            .prop_map(
                |(action, principal, purpose, collection, subject, fields, detail, refusal)| {
                    let mut event = AuditEvent::unauthenticated(action, principal).fields(&fields);
                    if let Some(p) = purpose {
                        event = event.purpose(&p);
                    }
                    if let Some(c) = collection {
                        event = event.collection(&c);
                    }
                    if let Some(s) = subject {
                        event = event.about_digest(s);
                    }
                    for (name, value) in detail {
                        event = event.detail(name, value);
                    }
                    match refusal {
                        Some(reason) => event.refused(reason),
                        None => event,
                    }
                },
            )
    }

    /// One change to an entry's text, by character.
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(Index, char),
        Remove(Index, usize),
        Insert(Index, String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let json = prop::sample::select(vec![
            "\"",
            "\\",
            ",",
            ":",
            "{",
            "}",
            "[",
            "]",
            " ",
            "null",
            "-",
            "0",
            "\\u0000",
            "\"at\":1,",
            "\u{0}",
        ]);
        prop_oneof![
            (
                any::<Index>(),
                prop_oneof![
                    any::<char>(),
                    json.clone().prop_map(|s| s.chars().next().unwrap_or('"'))
                ]
            )
                .prop_map(|(i, c)| Edit::Replace(i, c)),
            (any::<Index>(), 1usize..10).prop_map(|(i, n)| Edit::Remove(i, n)),
            (
                any::<Index>(),
                prop_oneof![json.prop_map(str::to_owned), any::<String>()]
            )
                .prop_map(|(i, s)| Edit::Insert(i, s)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for edit in edits {
            match edit {
                Edit::Replace(i, c) if !chars.is_empty() => {
                    let at = i.index(chars.len());
                    chars[at] = *c;
                }
                Edit::Replace(..) => {}
                Edit::Remove(i, n) => {
                    let at = i.index(chars.len() + 1);
                    let end = (at + n).min(chars.len());
                    chars.drain(at..end);
                }
                Edit::Insert(i, s) => {
                    let at = i.index(chars.len() + 1);
                    chars.splice(at..at, s.chars());
                }
            }
        }
        chars.into_iter().collect()
    }

    fn test_tags() -> custodia_audit::tag::TagKey {
        custodia_audit::tag::TagKey::new(&[5; 32])
    }

    /// What the two readers of an entry say, which must agree: [`columns_match`] holds for
    /// exactly the time and columns [`audit_columns`] derives.
    fn check_readers(text: &str) -> Result<(), TestCaseError> {
        let derived = audit_columns(text);
        prop_assert_eq!(Indexed::of(text), serde_json::from_str::<Indexed<'_>>(text).ok());
        match &derived {
            Some((Some(at), columns)) => {
                prop_assert!(columns_match(text, *at, &columns.as_ref()));
                prop_assert!(!columns_match(text, at.wrapping_add(1), &columns.as_ref()));
                let other = AuditColumns {
                    decision: Some("neither".into()),
                    ..columns.clone()
                };
                prop_assert_eq!(
                    columns_match(text, *at, &other.as_ref()),
                    columns.decision == other.decision
                );
            }
            Some((None, columns)) => prop_assert!(!columns_match(text, 0, &columns.as_ref())),
            None => prop_assert!(!columns_match(text, 0, &AuditColumns::default().as_ref())),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

        /// Arbitrary text (and arbitrary bytes read as UTF-8) never makes the entry parser
        /// panic, and its two readers agree with each other and with serde.
        #[test]
        fn arbitrary_entries_are_read_or_refused(
            text in prop_oneof![
                any::<String>(),
                proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                "\\{(\"[a-z]{1,9}\":(null|-?[0-9]{1,20}|\"[ -~]{0,6}\"|\\[\\]|\\{\\}),?){0,12}\\}",
            ],
        ) {
            check_readers(&text)?;
        }

        /// Entries as the vault writes them give back, read from their text, exactly the time
        /// and columns stored beside them, and their leaf hash is the text's.
        #[test]
        fn written_entries_give_back_their_columns(
            event in event(),
            at in prop_oneof![any::<i64>(), -1000i64..1000, Just(i64::MIN), Just(i64::MAX)],
            denied in proptest::option::of(prop::sample::select(vec!["forbidden", "purpose_not_allowed"])),
        ) {
            let row = event_row(&event, Timestamp(at), denied, &test_tags()).unwrap();
            prop_assert_eq!(row.at, at);
            prop_assert_eq!(audit_columns(&row.entry), Some((Some(at), row.index.clone())));
            prop_assert!(columns_match(&row.entry, at, &row.index.as_ref()));
            prop_assert_eq!(row.leaf, custodia_audit::leaf_hash(row.entry.as_bytes()).to_vec());
            let deny = denied.is_some() || event.refusal.is_some();
            prop_assert_eq!(row.index.decision.as_deref(), Some(if deny { "deny" } else { "allow" }));
            prop_assert_eq!(audit_row_of(at, row.entry.clone()).index, row.index);
            check_readers(&row.entry)?;
        }

        /// Mutations of written entries (characters replaced, removed, inserted) never make
        /// the parser panic, and its readers still agree with each other and with serde.
        #[test]
        fn mutated_entries_are_read_as_serde_reads_them(
            event in event(),
            at in any::<i64>(),
            edits in proptest::collection::vec(edit(), 1..4),
        ) {
            let row = event_row(&event, Timestamp(at), None, &test_tags()).unwrap();
            check_readers(&apply(&row.entry, &edits))?;
        }
    }
}
