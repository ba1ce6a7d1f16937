//! The subject ledger: consents (GDPR Art. 7), objections (Art. 21), restriction (Art. 18)
//! and sale/sharing opt-outs (CCPA/CPRA, Global Privacy Control), as an append-only history,
//! and the legal-basis check every read and write of personal data passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custodia_crypto::FieldContext;
use custodia_registry::{Capability, LegalBasis, Purpose};
use custodia_store::{DEFAULT_KEY_CLASS, LedgerRow};
use custodia_types::{
    ConsentRequest, ConsentState, EvidenceInput, LedgerEntry, ObjectionRequest, PrivacyState, RestrictionRequest,
    SaleOptOutRequest,
};
use zeroize::Zeroizing;

use crate::audit::{Allowed, AuditEvent};
use crate::records::Meter;
use crate::{Call, Principal, SubjectId, Timestamp, Vault, VaultError, gate};

pub(crate) const KIND_CONSENT: &str = "consent";
const KIND_OBJECTION: &str = "objection";
pub(crate) const KIND_SALE_OPT_OUT: &str = "sale_opt_out";
const KIND_RESTRICTION: &str = "restriction";
/// A limit on the use of sensitive personal information (CPRA §1798.121, §7027).
const KIND_LIMIT_SENSITIVE: &str = "limit_sensitive";
/// Why an append decided from an older ledger was not written.
pub(crate) const LEDGER_MOVED: &str = "ledger_moved";
/// The method of ledger entries a fulfilled subject request appends.
const METHOD_REQUEST: &str = "request";
/// The method of the consent withdrawals an erasure appends.
const METHOD_ERASURE: &str = "erasure";
const MAX_USER_AGENT: usize = 512;

/// Ledger states by subject (see `cache.rs` for how they stay true).
#[cfg(test)]
type LedgerCache = crate::cache::Cache<Arc<SubjectState>>;

/// What a subject's ledger currently says, folded from its entries in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SubjectState {
    /// Purpose to the entry that last decided consent for it.
    consents: BTreeMap<String, LedgerRow>,
    /// Purpose to when its consent was withdrawn, while it stays withdrawn: the first
    /// withdrawal counts (one repeated later starts no grace period again).
    withdrawn_since: BTreeMap<String, i64>,
    /// Purpose to when the subject objected to it.
    objections: BTreeMap<String, i64>,
    /// When the subject opted out of sale and sharing.
    sale_opt_out: Option<i64>,
    restricted: bool,
    limit_sensitive: bool,
    /// Whether the ledger holds any entry.
    recorded: bool,
    /// Stretches of time in which the ledger ended what a purpose may hold and then allowed
    /// it again (a consent withdrawn then given again, an objection or an opt-out taken
    /// back), in ledger order.
    lapses: Vec<Lapse>,
    /// Purposes whose live consent was given under a notice of this vault that said other
    /// things of them than the one in force (`crate::terms`): no processing on it until the
    /// subject consents again. Left out of what the ledger ended (`ended`): a registry edit
    /// destroys nothing.
    outdated: BTreeSet<String>,
}

/// A stretch in which the ledger ended a purpose's bindings, then allowed them again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lapse {
    /// The purpose it concerns (`None`: an opt-out of sale and sharing, which concerns every
    /// purpose that sells or shares).
    purpose: Option<String>,
    from: i64,
    to: i64,
    cause: crate::retention::Cause,
}

impl SubjectState {
    pub(crate) fn from_ledger(entries: &[LedgerRow]) -> Self {
        use crate::retention::Cause;
        let mut state = Self {
            recorded: !entries.is_empty(),
            ..Self::default()
        };
        for e in entries {
            let purpose = e.purpose.clone().unwrap_or_default();
            let lapse = |purpose: Option<&String>, from: i64, cause| Lapse {
                purpose: purpose.cloned(),
                from,
                to: e.at,
                cause,
            };
            match e.kind.as_str() {
                KIND_CONSENT => {
                    if e.value {
                        if let Some(since) = state.withdrawn_since.remove(&purpose) {
                            state.lapses.push(lapse(Some(&purpose), since, Cause::ConsentWithdrawn));
                        }
                    } else {
                        state.withdrawn_since.entry(purpose.clone()).or_insert(e.at);
                    }
                    state.consents.insert(purpose, e.clone());
                }
                KIND_OBJECTION if e.value => {
                    state.objections.entry(purpose).or_insert(e.at);
                }
                KIND_OBJECTION => {
                    if let Some(from) = state.objections.remove(&purpose) {
                        state.lapses.push(lapse(Some(&purpose), from, Cause::Objection));
                    }
                }
                KIND_SALE_OPT_OUT if e.value => {
                    state.sale_opt_out.get_or_insert(e.at);
                }
                KIND_SALE_OPT_OUT => {
                    if let Some(from) = state.sale_opt_out.take() {
                        state.lapses.push(lapse(None, from, Cause::SaleOptOut));
                    }
                }
                KIND_RESTRICTION => state.restricted = e.value,
                KIND_LIMIT_SENSITIVE => state.limit_sensitive = e.value,
                _ => {}
            }
        }
        state
    }

    /// Marks the live consents given under earlier terms of their purposes.
    pub(crate) fn outdate(mut self, terms: &crate::terms::Terms) -> Self {
        self.outdated = self
            .consents
            .iter()
            .filter(|(purpose, e)| e.value && terms.outdated(purpose, e.notice_version.as_deref()))
            .map(|(purpose, _)| purpose.clone())
            .collect();
        self
    }

    /// Whether the live consent to `purpose` was given under earlier terms (see `outdate`).
    pub(crate) fn consent_outdated(&self, purpose: &str) -> bool {
        self.outdated.contains(purpose)
    }

    /// The entry that last decided consent to `purpose`, if any did.
    pub(crate) fn consent_entry(&self, purpose: &str) -> Option<&LedgerRow> {
        self.consents.get(purpose)
    }

    /// Whether an opt-out of sale and sharing is in force.
    pub(crate) fn sale_opted_out(&self) -> bool {
        self.sale_opt_out.is_some()
    }

    /// The purposes with an objection in force.
    pub(crate) fn objected(&self) -> impl Iterator<Item = &String> {
        self.objections.keys()
    }

    fn consent_live(&self, purpose: &str) -> bool {
        self.consents.get(purpose).is_some_and(|e| e.value)
    }

    /// The gate of a call that only lets go of what `purpose` holds (a record deleted, fields
    /// set to null): a consent withdrawn, an objection or an opt-out ends what the purpose
    /// may hold, so they never stop the business from deleting it at once (GDPR Art.
    /// 17(1)(b), (c)) rather than wait for the sweeper. A restriction does: it is what a
    /// customer asks for instead of an erasure (Art. 18(1)(b)), keeping the data stored.
    pub(crate) fn permits_removal(&self, purpose: &Purpose) -> Result<(), VaultError> {
        self.refuse_restricted(purpose)
    }

    fn refuse_restricted(&self, purpose: &Purpose) -> Result<(), VaultError> {
        if self.restricted && !purpose.allowed_during_restriction {
            return Err(VaultError::forbidden(
                "subject_restricted",
                format!(
                    "processing of this subject is restricted (GDPR Art. 18); purpose `{}` is not exempt",
                    purpose.name
                ),
            ));
        }
        Ok(())
    }

    /// The legal-basis gate for one purpose: refuses, with the reason, whatever the ledger
    /// says may not happen. Run on every read and write naming a subject.
    pub(crate) fn permits(&self, purpose: &Purpose) -> Result<(), VaultError> {
        self.refuse_restricted(purpose)?;
        if purpose.sale_or_sharing && self.sale_opt_out.is_some() {
            return Err(sale_opted_out(purpose));
        }
        if purpose.legal_basis == LegalBasis::Consent && self.consent_outdated(&purpose.name) {
            let version = self
                .consents
                .get(&purpose.name)
                .and_then(|e| e.notice_version.clone())
                .unwrap_or_default();
            return Err(VaultError::forbidden(
                "consent_outdated",
                format!(
                    "the subject consented to purpose `{}` under notice version {version}, and what the notice says of the purpose changed since: ask for consent again under the notice in force",
                    purpose.name
                ),
            ));
        }
        if purpose.legal_basis == LegalBasis::Consent && !self.consent_live(&purpose.name) {
            return Err(VaultError::forbidden(
                "consent_required",
                format!(
                    "purpose `{}` needs the subject's consent, and it has not been given or was withdrawn",
                    purpose.name
                ),
            ));
        }
        if self.objections.contains_key(&purpose.name) && purpose.objectable() {
            return Err(VaultError::forbidden(
                "subject_objected",
                format!("the subject objected to purpose `{}` (GDPR Art. 21)", purpose.name),
            ));
        }
        Ok(())
    }
}

fn sale_opted_out(purpose: &Purpose) -> VaultError {
    VaultError::forbidden(
        "sale_opted_out",
        format!(
            "the subject opted out of sale and sharing; purpose `{}` sells or shares",
            purpose.name
        ),
    )
}

impl SubjectState {
    /// When the ledger ended what `purpose` may hold of this subject, and why: a consent
    /// withdrawn (or never given: the time is `None` then, and the binding's own start
    /// counts), an objection that applies, a sale/sharing opt-out. `None` while nothing did.
    pub(crate) fn ended(&self, purpose: &Purpose) -> Option<(Option<i64>, crate::retention::Cause)> {
        use crate::retention::Cause;
        let mut ends = Vec::new();
        if purpose.legal_basis == LegalBasis::Consent && !self.consent_live(&purpose.name) {
            ends.push((
                self.withdrawn_since.get(&purpose.name).copied(),
                Cause::ConsentWithdrawn,
            ));
        }
        if purpose.objectable()
            && let Some(at) = self.objections.get(&purpose.name)
        {
            ends.push((Some(*at), Cause::Objection));
        }
        if purpose.sale_or_sharing
            && let Some(at) = self.sale_opt_out
        {
            ends.push((Some(at), Cause::SaleOptOut));
        }
        ends.into_iter().min_by_key(|(at, _)| at.unwrap_or(i64::MIN))
    }

    /// The first stretch that ended for good what `purpose` holds of a value written last at
    /// `written` (before the stretch began): one that lasted until the binding expired
    /// (`expiry`: when a binding ended at a time by a cause expires), though the ledger
    /// allowed the purpose again later. A consent given again after its withdrawal's grace
    /// period ran out allows new values, not the old ones a legal hold, a restriction or a
    /// sweeper not yet run had kept: `(ended at, expired at, why)`.
    pub(crate) fn lapsed(
        &self,
        purpose: &Purpose,
        written: i64,
        expiry: impl Fn(crate::retention::Cause, i64) -> i64,
    ) -> Option<(i64, i64, crate::retention::Cause)> {
        use crate::retention::Cause;
        self.lapses
            .iter()
            .filter(|l| match l.cause {
                Cause::ConsentWithdrawn => {
                    purpose.legal_basis == LegalBasis::Consent && l.purpose.as_deref() == Some(&purpose.name)
                }
                Cause::Objection => purpose.objectable() && l.purpose.as_deref() == Some(&purpose.name),
                Cause::SaleOptOut => purpose.sale_or_sharing,
                Cause::Rule => false,
            })
            .filter(|l| l.from >= written)
            .map(|l| (l.from, expiry(l.cause, l.from), l.to, l.cause))
            .filter(|&(_, expired, to, _)| to >= expired)
            .map(|(from, expired, _, cause)| (from, expired, cause))
            .min_by_key(|&(_, expired, _)| expired)
    }

    /// Whether the subject restricted processing (GDPR Art. 18): its data is kept, not swept.
    pub(crate) fn restricted(&self) -> bool {
        self.restricted
    }

    /// Ledger entries withdrawing every consent still given at `given_by` or before (an
    /// erasure ends them; one given since came after it).
    pub(crate) fn consent_withdrawals(
        &self,
        subject: &SubjectId,
        principal_id: &str,
        given_by: i64,
        now: Timestamp,
    ) -> Vec<LedgerRow> {
        self.consents
            .iter()
            .filter(|(_, e)| e.value && e.at <= given_by)
            .map(|(purpose, _)| LedgerRow {
                seq: 0,
                subject_id: subject.as_str().to_owned(),
                kind: KIND_CONSENT.to_owned(),
                purpose: Some(purpose.clone()),
                value: false,
                notice_version: None,
                method: METHOD_ERASURE.to_owned(),
                evidence: None,
                principal_id: principal_id.to_owned(),
                at: now.0,
            })
            .collect()
    }

    /// Whether `field` is kept from `purpose` for this subject: the subject limited the use of
    /// its sensitive personal information (CPRA §1798.121), the field's category is sensitive,
    /// and the purpose is not one the limit leaves (§7027(m): providing what the subject
    /// asked for, complying with the law, protecting life; in registry terms a `contract`,
    /// `legal_obligation` or `vital_interests` basis).
    pub(crate) fn hides(&self, purpose: &Purpose, field: &custodia_registry::Field) -> bool {
        self.limit_sensitive
            && custodia_registry::is_sensitive_category(&field.category)
            && !matches!(
                purpose.legal_basis,
                LegalBasis::Contract | LegalBasis::LegalObligation | LegalBasis::VitalInterests
            )
    }
}

/// A notice version as the API takes it (`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`): what the
/// preference center publishes (`sha256-...`) and any version scheme of words and numbers,
/// but no address, name or phone number in words, as the ledger keeps it in the clear.
/// Whether `v` reads as a notice's version: 1-64 letters, digits and `. _ : -`, starting with
/// a letter or digit, holding a digit (`v1`, `2026-11`, `1.2`), and shaped as no phone number
/// (more than [`VERSION_MAX_DIGITS`] digits in a row, separators between them included) nor
/// domain name (`name.example.org`). The ledger keeps it in the clear past an erasure: a
/// version written where a phone number or an address went in by mistake would outlive the
/// subject. The vault's own versions (`sha256-` and 32 hex digits) always are versions.
fn is_version(v: &str) -> bool {
    if v.strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return true;
    }
    let charset = version_charset(v);
    // a domain: a last dot-separated label of letters only, after a dot (`example.org`)
    let domain = v
        .rsplit_once('.')
        .is_some_and(|(head, tld)| !head.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    charset && v.bytes().any(|b| b.is_ascii_digit()) && longest_number(v) <= VERSION_MAX_DIGITS && !domain
}

/// Whether `v` is written with a version's characters: 1-64 letters, digits and `. _ : -`,
/// starting with a letter or digit (what the API's schema says of it).
fn version_charset(v: &str) -> bool {
    v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// The most digits in a row a notice version holds ([`is_version`]): a date (`20261102`) fits,
/// a phone number does not.
const VERSION_MAX_DIGITS: usize = 8;

/// The length in digits of the longest run of digits in `text`, a separator (`. _ : -`) between
/// two digits joining the run (`0770-0900-123` is eleven).
fn longest_number(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut longest, mut run) = (0, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            longest = longest.max(run);
        } else {
            let joins = matches!(b, b'.' | b'_' | b':' | b'-')
                && i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !joins {
                run = 0;
            }
        }
    }
    longest
}

fn method(m: &str, allow_gpc: bool) -> Result<String, VaultError> {
    let names = if allow_gpc {
        crate::vocabulary::OPT_OUT_METHODS
    } else {
        crate::vocabulary::CHOICE_METHODS
    };
    crate::vocabulary::one_of(names, m, "method", "invalid_method").map(str::to_owned)
}

impl Vault {
    /// Counts written ledger entries for the metrics (`custodia_consent_changes_total`),
    /// whichever path wrote them: the API, the preference center, a fulfilled request or an
    /// erasure's withdrawals.
    pub(crate) fn count_ledger_entries(&self, rows: &[LedgerRow]) {
        const KINDS: [&str; 5] = [
            KIND_CONSENT,
            KIND_OBJECTION,
            KIND_SALE_OPT_OUT,
            KIND_RESTRICTION,
            KIND_LIMIT_SENSITIVE,
        ];
        for row in rows {
            let kind = KINDS.into_iter().find(|k| *k == row.kind).unwrap_or("(other)");
            custodia_metrics::consent_change(kind, self.purpose_label(row.purpose.as_deref()), row.value);
        }
    }
}

impl Vault {
    /// The ledger state of `subject`, cached (see `cache.rs`).
    pub(crate) async fn subject_state(&self, subject: &SubjectId) -> Result<Arc<SubjectState>, VaultError> {
        if self.caches.ledger_off.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(custodia_store::StoreError::LedgerAltered(
                "the whole ledger is off its sealed tally (found by the sweeper)".into(),
            )
            .into());
        }
        if let Some(state) = self.caches.ledger.get(subject.as_str()) {
            return Ok(state);
        }
        let generation = self.caches.ledger.generation();
        let state = Arc::new(SubjectState::from_ledger(&self.ledger_of(subject).await?).outdate(&self.terms()));
        self.caches.ledger.put(subject.as_str(), generation, Arc::clone(&state));
        Ok(state)
    }

    /// Every ledger entry of `subject`, oldest first.
    async fn ledger_of(&self, subject: &SubjectId) -> Result<Vec<LedgerRow>, VaultError> {
        Ok(self
            .store
            .reader()
            .await?
            .ledger()
            .of_subject(subject.as_str(), &*self.keys.access_seal)
            .await?)
    }

    fn purpose_for_signal(&self, name: &str) -> Result<&Purpose, VaultError> {
        self.registry().purpose(name).ok_or_else(|| {
            VaultError::unprocessable(
                "unknown_purpose",
                format!(
                    "no purpose {} is declared in the registry",
                    crate::error::quoted_name(name, false)
                ),
            )
            .with_field("purpose")
        })
    }

    /// Checks request evidence: the IP address becomes a keyed hash of it and `subject` (the
    /// same address hashes apart for two subjects: an access package cannot be used to link
    /// them, or to test a guess with another subject's); the user agent is kept only to be
    /// sealed under the subject's data key when the entry is appended.
    pub(crate) fn evidence(&self, subject: &SubjectId, input: Option<&EvidenceInput>) -> Result<Evidence, VaultError> {
        let mut out = Evidence::default();
        let Some(input) = input else { return Ok(out) };
        if let Some(ip) = &input.ip {
            let ip: std::net::IpAddr = ip.trim().parse().map_err(|_| {
                VaultError::unprocessable("invalid_evidence", "evidence.ip is not an IP address")
                    .with_field("evidence.ip")
            })?;
            out.ip_hash = Some(self.keys.ledger_ip(subject, &ip)?);
        }
        if let Some(ua) = &input.user_agent {
            if ua.len() > MAX_USER_AGENT || ua.chars().any(char::is_control) {
                return Err(VaultError::unprocessable(
                    "invalid_evidence",
                    format!(
                        "evidence.user_agent must be at most {MAX_USER_AGENT} characters without control characters"
                    ),
                )
                .with_field("evidence.user_agent"));
            }
            out.user_agent = Some(Zeroizing::new(ua.clone()));
        }
        Ok(out)
    }

    /// The stored text of `evidence`: the IP hash in clear, the user agent sealed under
    /// `key`, the subject's data key (so an erasure, destroying the key, shreds it).
    fn seal_evidence(
        subject: &SubjectId,
        evidence: &Evidence,
        key: Option<&custodia_crypto::DataKey>,
    ) -> Result<Option<String>, VaultError> {
        let mut out = serde_json::Map::new();
        let Some(key) = key else {
            return Ok(None);
        };
        for (member, value) in [
            ("ip_hash", evidence.ip_hash.as_deref()),
            ("user_agent", evidence.user_agent.as_deref().map(String::as_str)),
        ] {
            if let Some(value) = value {
                let sealed = key.seal(&evidence_context(subject, member), value.as_bytes())?;
                out.insert(format!("{member}{SEALED}"), B64.encode(sealed).into());
            }
        }
        Ok((!out.is_empty()).then(|| serde_json::Value::Object(out).to_string()))
    }

    /// Stored evidence as shown to a reader: the user agent opened with the subject's key, or
    /// left out when that key is gone (erased).
    async fn shown_evidence(&self, subject: &SubjectId, text: &str) -> Result<Option<serde_json::Value>, VaultError> {
        let sealed = text.contains(SEALED);
        let key = if sealed {
            self.keys.subject_key(&self.store, subject, DEFAULT_KEY_CLASS).await?
        } else {
            None
        };
        Ok(open_evidence(subject, text, key.as_ref().map(|(key, _)| key)))
    }

    /// Appends `entries`, in order, with the audit entry of `event` in the same transaction
    /// (sealing their evidence first; a first key for the subject is stored in that
    /// transaction too). Returns the last entry's sequence number. With `expect_last`, the
    /// entries were decided from the ledger as it stood at that entry (`None`: empty): if the
    /// subject's ledger has moved since, nothing is written and the answer is 409
    /// `ledger_moved` (decide again).
    pub(crate) async fn append(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        entries: &[Entry],
        event: &AuditEvent,
        expect_last: Option<Option<i64>>,
    ) -> Result<i64, VaultError> {
        let audit = self.audit_row(event, now, None)?;
        let sealing = entries
            .iter()
            .any(|e| e.evidence.user_agent.is_some() || e.evidence.ip_hash.is_some());
        for _ in 0..2 {
            let key = if sealing {
                Some(
                    self.keys
                        .sealing_key(&self.store, subject, DEFAULT_KEY_CLASS, now)
                        .await?,
                )
            } else {
                None
            };
            let fresh = key.as_ref().is_some_and(|(_, _, fresh)| *fresh);
            let rows = entries
                .iter()
                .map(|entry| {
                    Ok(LedgerRow {
                        seq: 0,
                        subject_id: subject.as_str().to_owned(),
                        kind: entry.kind.to_owned(),
                        purpose: entry.purpose.clone(),
                        value: entry.value,
                        notice_version: entry.notice_version.clone(),
                        method: entry.method.clone(),
                        evidence: Self::seal_evidence(subject, &entry.evidence, key.as_ref().map(|(k, _, _)| k))?,
                        principal_id: principal.id.clone(),
                        at: now.0,
                    })
                })
                .collect::<Result<Vec<_>, VaultError>>()?;
            let sealed_under = key.map(|(_, row, fresh)| (row, fresh));
            let audit = audit.clone();
            let registry = Arc::clone(&self.registry);
            let seal = Arc::clone(&self.keys.access_seal);
            let subject_id = subject.as_str().to_owned();
            let counted = rows.clone();
            // Invalidate before and after: a read that raced this append cannot re-insert what
            // it read before the append (see `LedgerCache::put`).
            self.caches.ledger.invalidate(subject.as_str());
            let appended = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        if let Some((key, fresh)) = &sealed_under {
                            tx.subjects().seal_under(key, *fresh).await?;
                        }
                        if let Some(expected) = expect_last {
                            // The audit entry first: on PostgreSQL it takes the audit
                            // sequencer, which every audited write takes, so the ledger read
                            // next sees every write committed before this one (SQLite has
                            // one writer at a time anyway).
                            tx.audit().append(std::slice::from_ref(&audit)).await?;
                            if tx.ledger().last_seq(&subject_id).await? != expected {
                                return Err(custodia_store::StoreError::Aborted(LEDGER_MOVED.to_owned()));
                            }
                        }
                        let mut seq = 0;
                        for row in &rows {
                            seq = tx.ledger().append(row, &*seal).await?;
                        }
                        // A withdrawal, an objection or an opt-out ends the bindings it
                        // concerns (a consent given again revives them): the subject's
                        // bindings are timed again in the same transaction.
                        if let Some(row) = rows.first() {
                            crate::retention::retime_subject(&mut tx, (&registry, &*seal), &row.subject_id, now)
                                .await?;
                        }
                        if expect_last.is_none() {
                            tx.audit().append(&[audit]).await?;
                        }
                        Ok(seq)
                    })
                })
                .await;
            self.caches.ledger.invalidate(subject.as_str());
            match appended {
                // A concurrent first write stored another key: seal again under that one.
                Err(custodia_store::StoreError::SubjectKeyConflict) if fresh => continue,
                Err(custodia_store::StoreError::SubjectKeyConflict) => return Err(crate::records::subject_erased()),
                Err(custodia_store::StoreError::Aborted(reason)) if reason == LEDGER_MOVED => {
                    return Err(VaultError::new(
                        crate::ErrorKind::Conflict,
                        LEDGER_MOVED,
                        "the subject's choices changed meanwhile; decide again",
                    ));
                }
                other => {
                    let seq = other?;
                    self.count_ledger_entries(&counted);
                    return Ok(seq);
                }
            }
        }
        Err(VaultError::internal(
            &"the subject's data key kept changing during a ledger append",
        ))
    }

    /// Records that `subject` gave or withdrew consent to a consent-based purpose.
    pub async fn record_consent(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        req: &ConsentRequest,
    ) -> Result<i64, VaultError> {
        let event = self.about(
            AuditEvent::new("consent.record", principal).purpose(&req.purpose),
            subject,
        )?;
        self.record_signal(principal, now, subject, event, || {
            let purpose = self.purpose_for_signal(&req.purpose)?;
            if purpose.legal_basis != LegalBasis::Consent {
                return Err(VaultError::unprocessable(
                    "consent_not_applicable",
                    format!(
                        "purpose `{}` is based on {}, not consent",
                        purpose.name,
                        purpose.legal_basis.name()
                    ),
                )
                .with_field("purpose"));
            }
            let notice_version = match (&req.notice_version, req.granted) {
                (Some(v), _) if is_version(v) => Some(v.clone()),
                // Kept in the ledger as written: a version, never personal data. Its letters
                // are the schema's (400); its shape is this rule's (422: the schema allows it).
                (Some(v), _) if !version_charset(v) => {
                    return Err(VaultError::bad_request(
                        "invalid_notice_version",
                        "notice_version must be a version: 1-64 letters, digits, `. _ : -`, starting with a letter or digit",
                    )
                    .with_field("notice_version"));
                }
                (Some(_), _) => {
                    return Err(VaultError::unprocessable(
                        "invalid_notice_version",
                        "notice_version must read as a version: holding a digit, with at most 8 digits in a row and not shaped as a domain name (`v1`, `2026-11`)",
                    )
                    .with_field("notice_version"));
                }
                (None, true) => {
                    return Err(VaultError::unprocessable(
                        "notice_version_required",
                        "giving consent needs the version of the notice the subject was shown (GDPR Art. 7(1))",
                    )
                    .with_field("notice_version"));
                }
                (None, false) => None,
            };
            Ok(Entry {
                kind: KIND_CONSENT,
                purpose: Some(purpose.name.clone()),
                value: req.granted,
                notice_version,
                method: method(&req.method, false)?,
                evidence: self.evidence(subject, req.evidence.as_ref())?,
            })
        })
        .await
    }

    /// Records an objection (or its withdrawal) to a purpose.
    pub async fn record_objection(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        req: &ObjectionRequest,
    ) -> Result<i64, VaultError> {
        let event = self.about(
            AuditEvent::new("objection.record", principal).purpose(&req.purpose),
            subject,
        )?;
        self.record_signal(principal, now, subject, event, || {
            let purpose = self.purpose_for_signal(&req.purpose)?;
            if !purpose.objectable() {
                return Err(VaultError::unprocessable(
                    "objection_not_applicable",
                    format!(
                        "purpose `{}` is based on {}; the right to object (Art. 21) covers legitimate interests, public tasks and direct marketing",
                        purpose.name,
                        purpose.legal_basis.name()
                    ),
                )
                .with_field("purpose"));
            }
            Ok(Entry {
                kind: KIND_OBJECTION,
                purpose: Some(purpose.name.clone()),
                value: req.objected,
                notice_version: None,
                method: method(&req.method, false)?,
                evidence: self.evidence(subject, req.evidence.as_ref())?,
            })
        })
        .await
    }

    /// Records an opt-out of (or back into) sale and sharing.
    pub async fn record_sale_opt_out(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        req: &SaleOptOutRequest,
    ) -> Result<i64, VaultError> {
        let event = self.about(AuditEvent::new("sale_opt_out.record", principal), subject)?;
        self.record_signal(principal, now, subject, event, || {
            Ok(Entry {
                kind: KIND_SALE_OPT_OUT,
                purpose: None,
                value: req.opted_out,
                notice_version: None,
                method: method(&req.method, true)?,
                evidence: self.evidence(subject, req.evidence.as_ref())?,
            })
        })
        .await
    }

    /// Restricts processing of a subject, or lifts the restriction.
    pub async fn record_restriction(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        req: &RestrictionRequest,
    ) -> Result<i64, VaultError> {
        let event = self.about(AuditEvent::new("restriction.record", principal), subject)?;
        self.record_signal(principal, now, subject, event, || {
            Ok(Entry {
                kind: KIND_RESTRICTION,
                purpose: None,
                value: req.restricted,
                notice_version: None,
                method: method(&req.method, false)?,
                evidence: Evidence::default(),
            })
        })
        .await
    }

    /// Records one ledger entry for a caller with `manage_consent`: `entry` validates the
    /// request and builds it; the entry and its audit entry commit together.
    async fn record_signal(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        event: AuditEvent,
        entry: impl FnOnce() -> Result<Entry, VaultError>,
    ) -> Result<i64, VaultError> {
        let allowed = event.clone();
        self.audited(event, now, async {
            gate::require(&self.policies, principal, Capability::ManageConsent)?;
            let entry = entry()?;
            Ok(Allowed::Written(
                self.append(principal, now, subject, &[entry], &allowed, None).await?,
            ))
        })
        .await
    }

    /// The ledger entries that fulfil a subject request of `kind` (restriction, objection,
    /// opt-out of sale/sharing, limit on sensitive data), appended by the request's own
    /// transaction. An objection covers `purposes` (each must be one an objection applies to:
    /// legitimate interests, public task, direct marketing; duplicates count once), or every
    /// such purpose when they are left out.
    pub(crate) fn request_ledger_entries(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        kind: custodia_registry::RequestType,
        purposes: Option<&[String]>,
    ) -> Result<Vec<LedgerRow>, VaultError> {
        use custodia_registry::RequestType;
        let row = |kind: &str, purpose: Option<String>| LedgerRow {
            seq: 0,
            subject_id: subject.as_str().to_owned(),
            kind: kind.to_owned(),
            purpose,
            value: true,
            notice_version: None,
            method: METHOD_REQUEST.to_owned(),
            evidence: None,
            principal_id: principal.id.clone(),
            at: now.0,
        };
        Ok(match kind {
            RequestType::Restriction => vec![row(KIND_RESTRICTION, None)],
            RequestType::OptOutSale => vec![row(KIND_SALE_OPT_OUT, None)],
            RequestType::LimitSensitive => vec![row(KIND_LIMIT_SENSITIVE, None)],
            RequestType::Objection if purposes.is_some_and(<[String]>::is_empty) => {
                return Err(VaultError::bad_request(
                    "no_purposes",
                    "`purposes` names no purpose; leave it out to object to every purpose an objection applies to",
                )
                .with_field("purposes"));
            }
            RequestType::Objection if purposes.is_none() => self
                .registry
                .purposes
                .values()
                .filter(|p| p.objectable())
                .map(|p| row(KIND_OBJECTION, Some(p.name.clone())))
                .collect(),
            RequestType::Objection => purposes
                .unwrap_or_default()
                .iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|name| match self.registry.purposes.get(name) {
                    Some(p) if p.objectable() => Ok(row(KIND_OBJECTION, Some(p.name.clone()))),
                    Some(_) => Err(VaultError::unprocessable(
                        "objection_not_applicable",
                        format!(
                            "purpose `{name}` is not based on legitimate interests or a public task and is not direct marketing: an objection (Art. 21) does not apply"
                        ),
                    )
                    .with_field("purposes")),
                    None => Err(VaultError::unprocessable(
                        "unknown_purpose",
                        format!("purpose {} is not in the registry", crate::error::quoted_name(name, false)),
                    )
                    .with_field("purposes")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        })
    }

    /// Honours a Global Privacy Control signal sent with a request about `subject` by a caller
    /// trusted with the subject's ledger whatever the request's fate: a role that may
    /// `manage_consent`, or one the registry marks `forward_user_agent` (a front end relaying
    /// the customer's browser). From anyone else it does nothing here: a data call records
    /// the signal only once it has passed the gate ([`Call::with_gpc`]).
    pub async fn honour_gpc(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
    ) -> Result<(), VaultError> {
        let trusted = [Capability::ManageConsent, Capability::ForwardUserAgent]
            .into_iter()
            .any(|c| gate::require(&self.policies, principal, c).is_ok());
        if trusted {
            self.record_gpc(principal, now, subject).await?;
        }
        Ok(())
    }

    /// The ledger check of a call that has passed the gate: records the call's GPC signal
    /// first (so the call itself is held to it), then refuses what the ledger does not permit.
    pub(crate) async fn ledger_permits(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Arc<SubjectState>, VaultError> {
        if call.gpc {
            if purpose.sale_or_sharing && !self.gpc_held(call, subject).await? {
                // refused by the very opt-out it carries, a call about an id the vault holds
                // nothing of creates nothing, and records nothing either (a sale purpose's
                // writer filled the ledger with made-up ids; review)
                return Err(sale_opted_out(purpose));
            }
            self.record_gpc(call.principal, call.now, subject).await?;
        }
        let state = self.subject_state(subject).await?;
        state.permits(purpose)?;
        Ok(state)
    }

    /// [`Self::ledger_permits`] of a call that creates nothing (a read, a change or deletion
    /// of a record): its GPC signal is recorded only for a subject the vault holds something
    /// of (a key, or a ledger entry). A call about an id that holds nothing finds nothing to opt out of, and its
    /// signal recorded would grow the ledger, each id with a key made for it, from any key
    /// that may read, or change what it cannot find.
    pub(crate) async fn ledger_permits_held(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Arc<SubjectState>, VaultError> {
        let gpc = self.gpc_held(call, subject).await?;
        self.ledger_permits(&call.with_gpc(gpc), subject, purpose).await
    }

    /// [`Self::ledger_permits_held`] of a call that only lets go of values (a record deleted,
    /// fields set to null under `purpose`): see [`SubjectState::permits_removal`].
    pub(crate) async fn ledger_permits_removal_held(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Arc<SubjectState>, VaultError> {
        if self.gpc_held(call, subject).await? {
            self.record_gpc(call.principal, call.now, subject).await?;
        }
        let state = self.subject_state(subject).await?;
        state.permits_removal(purpose)?;
        Ok(state)
    }

    /// Whether the call's GPC signal is to be recorded for a subject it creates nothing of.
    async fn gpc_held(&self, call: &Call<'_>, subject: &SubjectId) -> Result<bool, VaultError> {
        Ok(call.gpc
            && (self.subject_state(subject).await?.recorded
                || !self
                    .store
                    .reader()
                    .await?
                    .subjects()
                    .keys(subject.as_str())
                    .await?
                    .is_empty()))
    }

    /// Records an opt-out of sale and sharing (method `gpc`) unless one is already in force.
    pub(crate) async fn record_gpc(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
    ) -> Result<(), VaultError> {
        if self.subject_state(subject).await?.sale_opt_out.is_some() {
            return Ok(());
        }
        let entry = Entry {
            kind: KIND_SALE_OPT_OUT,
            purpose: None,
            value: true,
            notice_version: None,
            method: "gpc".into(),
            evidence: Evidence::default(),
        };
        let event = self.about(AuditEvent::new("gpc.opt_out", principal), subject)?;
        self.append(principal, now, subject, &[entry], &event, None).await?;
        Ok(())
    }

    /// The subject's current choices and their full history. `meter` is asked first for what
    /// the ledger holds as read and the history estimated at as much (three times the ledger's
    /// stored weight), then for what the history weighs beyond that as it is built (a history
    /// of 12,000 entries answered 15 MB, built whole and answered whatever the server held): an
    /// error from it ends the read.
    pub async fn privacy_state(
        &self,
        principal: &Principal,
        now: Timestamp,
        subject: &SubjectId,
        meter: Meter<'_>,
    ) -> Result<PrivacyState, VaultError> {
        let event = self.about(AuditEvent::new("ledger.read", principal), subject)?;
        self.audited(event.clone(), now, async {
            let state = self.privacy_state_inner(principal, subject, meter).await?;
            // how many entries were shown: a history of nothing handed out nothing (a blast
            // radius counts only reads that did)
            let shown = event.detail("entries", state.history.len().to_string());
            Ok(Allowed::ReadAbout(state, vec![shown]))
        })
        .await
    }

    async fn privacy_state_inner(
        &self,
        principal: &Principal,
        subject: &SubjectId,
        meter: Meter<'_>,
    ) -> Result<PrivacyState, VaultError> {
        gate::require(&self.policies, principal, Capability::ManageConsent)?;
        // The ledger is read whole, as rows and then as entries, before the first entry is
        // built: what they hold is asked first (48 histories of 12,000 entries read at once
        // held 1.3 GB before any was metered).
        let stored = self
            .store
            .reader()
            .await?
            .ledger()
            .stored_weight(subject.as_str())
            .await?;
        // ... and the history as built, estimated at what the ledger holds, in the same one
        // ask: histories asked for at once each get their place whole or are refused at once
        // (asking entry by entry, three of one key each held part and all were refused)
        let estimate = usize::try_from(stored).unwrap_or(usize::MAX);
        meter(estimate.saturating_mul(3))?;
        let mut built = 0usize;
        let entries = self.ledger_of(subject).await?;
        let state = SubjectState::from_ledger(&entries);
        let mut history = Vec::with_capacity(entries.len());
        for e in &entries {
            let evidence = match &e.evidence {
                Some(text) => self.shown_evidence(subject, text).await?,
                None => None,
            };
            let entry = LedgerEntry {
                seq: e.seq,
                kind: e.kind.clone(),
                purpose: e.purpose.clone(),
                value: e.value,
                notice_version: e.notice_version.clone(),
                method: e.method.clone(),
                principal_id: e.principal_id.clone(),
                at: Timestamp(e.at).to_rfc3339(),
                evidence,
            };
            // what the history weighs beyond the estimate is asked as it is built
            let weight = crate::records::json_weight(&entry);
            let beyond = built.saturating_add(weight).saturating_sub(built.max(estimate));
            built = built.saturating_add(weight);
            if beyond > 0 {
                meter(beyond)?;
            }
            history.push(entry);
        }
        Ok(PrivacyState {
            subject_id: subject.as_str().to_owned(),
            consents: state
                .consents
                .iter()
                .map(|(purpose, e)| ConsentState {
                    purpose: purpose.clone(),
                    granted: e.value,
                    notice_version: e.notice_version.clone(),
                    method: e.method.clone(),
                    at: Timestamp(e.at).to_rfc3339(),
                })
                .collect(),
            objections: state.objections.keys().cloned().collect(),
            sale_opt_out: state.sale_opt_out.is_some(),
            restricted: state.restricted,
            limit_sensitive: state.limit_sensitive,
            history,
        })
    }
}

pub(crate) struct Entry {
    pub(crate) kind: &'static str,
    pub(crate) purpose: Option<String>,
    pub(crate) value: bool,
    pub(crate) notice_version: Option<String>,
    pub(crate) method: String,
    pub(crate) evidence: Evidence,
}

/// Checked request evidence, before it is stored.
#[derive(Default)]
pub(crate) struct Evidence {
    ip_hash: Option<String>,
    user_agent: Option<Zeroizing<String>>,
}

/// What ends the name in stored evidence of a member sealed under the subject's key
/// (`user_agent_sealed`, `ip_hash_sealed`): an erasure, destroying the key, shreds it from the
/// append-only ledger. (Evidence from before IP hashes were sealed holds `ip_hash` as is.)
const SEALED: &str = "_sealed";

/// A ledger entry's stored evidence (`text`, JSON) as shown to a reader: its sealed members
/// opened with the subject's `default` key, or left out without it (erased); `None` when the
/// text is no JSON object.
pub(crate) fn open_evidence(
    subject: &SubjectId,
    text: &str,
    key: Option<&custodia_crypto::DataKey>,
) -> Option<serde_json::Value> {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return None;
    };
    for member in ["ip_hash", "user_agent"] {
        let Some(value) = map.remove(&format!("{member}{SEALED}")) else {
            continue;
        };
        let opened = value
            .as_str()
            .and_then(|b| B64.decode(b).ok())
            .zip(key)
            .and_then(|(bytes, key)| key.open(&evidence_context(subject, member), &bytes).ok())
            .and_then(|plain| String::from_utf8(plain).ok());
        if let Some(plain) = opened {
            map.insert(member.to_owned(), plain.into());
        }
    }
    Some(serde_json::Value::Object(map))
}

/// Where a sealed member of a subject's ledger evidence lives.
fn evidence_context<'a>(subject: &'a SubjectId, member: &'a str) -> FieldContext<'a> {
    FieldContext {
        collection: "custodia:ledger",
        subject: subject.as_str(),
        record: "evidence",
        field: member,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use custodia_registry::{EXAMPLE_REGISTRY, Registry};

    #[test]
    fn notice_versions_are_versions_and_never_a_phone_number_a_name_or_a_domain() {
        for ok in [
            "v1",
            "1",
            "2026-11",
            "2026-11-02",
            "v1.2.3",
            "privacy-2026.3",
            "20261102",
            "sha256-0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in [
            "447700900987",
            "07700900987",
            "0770-0900-987",
            "Zebulon_Quixotic-Marchbanks",
            "zz-unique-83.example.org",
            "final",
            "v 1 (draft)",
            "",
        ] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    fn row(kind: &str, purpose: Option<&str>, value: bool) -> LedgerRow {
        row_at(kind, purpose, value, 0)
    }

    /// A ledger entry of subject `s` appended at `at`.
    pub(crate) fn row_at(kind: &str, purpose: Option<&str>, value: bool, at: i64) -> LedgerRow {
        LedgerRow {
            seq: 0,
            subject_id: "s".into(),
            kind: kind.into(),
            purpose: purpose.map(Into::into),
            value,
            notice_version: None,
            method: "api".into(),
            evidence: None,
            principal_id: "p".into(),
            at,
        }
    }

    /// A read that raced an append (it read the ledger before the append and tries to cache
    /// what it read after the append's invalidation) must not cache its stale state; a read
    /// that raced nothing is cached.
    #[test]
    fn the_ledger_cache_never_keeps_a_state_read_before_a_racing_append() {
        let cache = LedgerCache::default();
        let stale = Arc::new(SubjectState::default());
        let fresh = Arc::new(SubjectState::from_ledger(&[row(KIND_RESTRICTION, None, true)]));

        // Reader starts: notes the generation, reads the (old) ledger...
        let read_at = cache.generation();
        // ...meanwhile an append lands and invalidates (before and after, as `append` does)...
        cache.invalidate("s1");
        cache.invalidate("s1");
        // ...then the reader tries to cache what it read.
        cache.put("s1", read_at, Arc::clone(&stale));
        assert!(cache.get("s1").is_none(), "a state read before the append was cached");

        // A read that started after the append caches normally, and is what later reads get.
        let read_at = cache.generation();
        cache.put("s1", read_at, Arc::clone(&fresh));
        assert_eq!(cache.get("s1").as_deref(), Some(&*fresh));

        // An append for another subject also keeps racing reads from caching (the counter is
        // global), and drops only its own subject's entry.
        let read_at = cache.generation();
        cache.invalidate("s2");
        cache.put("s3", read_at, Arc::clone(&stale));
        assert!(cache.get("s3").is_none());
        assert_eq!(cache.get("s1").as_deref(), Some(&*fresh));
    }

    /// A history asks its meter for each entry's weight in the answer as it is built (its
    /// JSON, user agents of quotes written twice); a meter that refuses ends the read.
    #[tokio::test]
    async fn a_history_asks_its_meter_for_the_ledger_then_each_entry() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = crate::principal::tests::admin();
        let subject = SubjectId::parse("s-meter").unwrap();
        for i in 0..4 {
            let req = ConsentRequest {
                purpose: "marketing_email".into(),
                granted: i % 2 == 0,
                notice_version: Some("v1".into()),
                method: "web_form".into(),
                evidence: Some(EvidenceInput {
                    ip: None,
                    user_agent: Some("\"".repeat(400)),
                }),
            };
            vault
                .record_consent(&admin, Timestamp(2 + i), &subject, &req)
                .await
                .unwrap();
        }
        let asked = std::sync::Mutex::new(Vec::new());
        let counting = |bytes: usize| {
            asked.lock().unwrap().push(bytes);
            Ok(())
        };
        let state = vault
            .privacy_state(&admin, Timestamp(10), &subject, &counting)
            .await
            .unwrap();
        let asked = asked.into_inner().unwrap();
        // first what the ledger holds as read (rows, then entries: texts and a row's worth
        // each) and the history estimated at as much, at once; then what the history weighs
        // beyond the estimate, as it is built
        let stored = vault
            .store
            .reader()
            .await
            .unwrap()
            .ledger()
            .stored_weight("s-meter")
            .await
            .unwrap();
        let stored = usize::try_from(stored).unwrap();
        assert!(stored > 4 * (256 + 400), "{stored}");
        let (first, beyond) = asked.split_first().unwrap();
        assert_eq!(*first, 3 * stored);
        let weights: Vec<usize> = state
            .history
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len())
            .collect();
        let total: usize = weights.iter().sum();
        assert!(
            !beyond.is_empty(),
            "escaped quotes weigh more than stored: {weights:?} {stored}"
        );
        assert_eq!(
            beyond.iter().sum::<usize>(),
            total.saturating_sub(stored),
            "{weights:?} {beyond:?}"
        );
        assert!(weights.iter().all(|w| *w > 800), "quotes count twice: {weights:?}");
        let refusing = |_: usize| Err(VaultError::unavailable("busy", "full"));
        let err = vault
            .privacy_state(&admin, Timestamp(11), &subject, &refusing)
            .await
            .unwrap_err();
        assert_eq!(err.code, "busy");
    }

    /// The user agent in consent evidence is sealed under the subject's data key: once the
    /// key is destroyed (an erasure) it can no longer be read; the IP hash stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn destroying_the_subject_key_shreds_the_user_agent() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = Principal {
            id: "prn_admin".into(),
            name: "admin".into(),
            roles: vec!["admin".into()],
            context: BTreeMap::new(),
            operator: None,
        };
        let subject = SubjectId::parse("s1").unwrap();
        let req = ConsentRequest {
            purpose: "marketing_email".into(),
            granted: true,
            notice_version: Some("v1".into()),
            method: "web_form".into(),
            evidence: Some(EvidenceInput {
                ip: Some("203.0.113.7".into()),
                user_agent: Some("Mozilla/5.0 (shred me)".into()),
            }),
        };
        vault
            .record_consent(&admin, Timestamp(2), &subject, &req)
            .await
            .unwrap();
        let evidence = |state: PrivacyState| state.history[0].evidence.clone().unwrap();
        let before = evidence(
            vault
                .privacy_state(&admin, Timestamp(3), &subject, &crate::unmetered)
                .await
                .unwrap(),
        );
        assert_eq!(before["user_agent"], "Mozilla/5.0 (shred me)");
        let stored = vault.ledger_of(&subject).await.unwrap()[0].evidence.clone().unwrap();
        assert!(!stored.contains("shred me"), "{stored}");
        vault
            .store
            .write(|mut tx| Box::pin(async move { tx.subjects().destroy_key("s1", "default").await }))
            .await
            .unwrap();
        let after = evidence(
            vault
                .privacy_state(&admin, Timestamp(4), &subject, &crate::unmetered)
                .await
                .unwrap(),
        );
        assert!(after.get("user_agent").is_none(), "{after}");
        // the IP's keyed hash is shredded too: a consent recorded for another subject from a
        // guessed address would otherwise tell whether the erased subject used it
        assert!(before["ip_hash"].is_string(), "{before}");
        assert!(after.get("ip_hash").is_none(), "{after}");
        assert!(!stored.contains(before["ip_hash"].as_str().unwrap()), "{stored}");
    }

    fn code(r: Result<(), VaultError>) -> Option<&'static str> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn legal_basis_decisions() {
        let reg = Registry::parse("r", EXAMPLE_REGISTRY).unwrap();
        let p = |n: &str| reg.purpose(n).unwrap();
        let none = SubjectState::default();
        assert_eq!(code(none.permits(p("marketing_email"))), Some("consent_required"));
        assert_eq!(code(none.permits(p("order_fulfillment"))), None);

        let granted = SubjectState::from_ledger(&[row(KIND_CONSENT, Some("marketing_email"), true)]);
        assert_eq!(code(granted.permits(p("marketing_email"))), None);
        let withdrawn = SubjectState::from_ledger(&[
            row(KIND_CONSENT, Some("marketing_email"), true),
            row(KIND_CONSENT, Some("marketing_email"), false),
        ]);
        assert_eq!(code(withdrawn.permits(p("marketing_email"))), Some("consent_required"));

        // An objection to direct marketing is absolute, even with consent given.
        let objected = SubjectState::from_ledger(&[
            row(KIND_CONSENT, Some("marketing_email"), true),
            row(KIND_OBJECTION, Some("marketing_email"), true),
            row(KIND_OBJECTION, Some("customer_support"), true),
        ]);
        assert_eq!(code(objected.permits(p("marketing_email"))), Some("subject_objected"));
        assert_eq!(code(objected.permits(p("customer_support"))), Some("subject_objected"));
        assert_eq!(code(objected.permits(p("order_fulfillment"))), None);

        let opted_out = SubjectState::from_ledger(&[
            row(KIND_CONSENT, Some("analytics"), true),
            row(KIND_SALE_OPT_OUT, None, true),
        ]);
        assert_eq!(code(opted_out.permits(p("analytics"))), Some("sale_opted_out"));
        assert_eq!(code(opted_out.permits(p("order_fulfillment"))), None);

        let restricted = SubjectState::from_ledger(&[row(KIND_RESTRICTION, None, true)]);
        assert_eq!(
            code(restricted.permits(p("order_fulfillment"))),
            Some("subject_restricted")
        );
        assert_eq!(
            code(restricted.permits(p("tax_records"))),
            None,
            "exempt during restriction"
        );
        let lifted =
            SubjectState::from_ledger(&[row(KIND_RESTRICTION, None, true), row(KIND_RESTRICTION, None, false)]);
        assert_eq!(code(lifted.permits(p("order_fulfillment"))), None);
    }
}
