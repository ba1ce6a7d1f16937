//! Storage and purpose limitation (GDPR Art. 5(1)(b),(c),(e), Art. 25(2); CPRA retention per
//! category): every stored value is held by the purposes bound to it, each binding with its own
//! times, and a value no binding holds is destroyed.
//!
//! - A binding's times are a pure function ([`times`]) of the purpose's registry rule (from
//!   collection, from the last update, from the subject's last activity, or while consent
//!   lasts plus a grace period), the binding's own times and the subject's ledger (a consent
//!   withdrawn, an objection, an opt-out end the binding). Every change of an input computes
//!   the subject's bindings again in the change's own transaction ([`retime_subject`]), so the
//!   stored `expires_at` is the sweeper's index; a read does not trust it alone ([`usable`]).
//! - A read under purpose Q returns a value only if a binding of Q, or of a purpose Q is
//!   declared compatible with (`compatible_with`, Art. 6(4)), is usable now.
//! - The sweeper ([`Vault::sweep`]) walks the expiry index in batches, judges each due binding
//!   again, and in one transaction per batch ends the due ones, destroys what no binding holds
//!   any more (the destruction path erasure uses, `Records::destroy_unbound`), removes subjects
//!   left with nothing (their data keys too) and audits each destruction with the rule that
//!   caused it. A legal hold, or the subject's restriction (Art. 18), keeps data from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use custodia_registry::{Purpose, Registry, RetentionStart};
use custodia_store::{
    AuditRow, Binding, BindingTimes, BoundValue, DueCursor, Ending, ErasedRows, HoldRow, Sealer, StoreError, Tx,
};
use custodia_types::{SweepLine, SweepReport};

use crate::audit::AuditEvent;
use crate::consent::SubjectState;
use crate::{SubjectId, Timestamp, Vault, VaultError};

/// The principal audit entries of the sweeper name.
pub const SWEEPER_PRINCIPAL: &str = "custodia:sweeper";
/// Due bindings judged per batch (each batch one transaction).
pub const SWEEP_BATCH: i64 = 1000;
/// Bindings computed again per transaction when a purpose's rule changed.
const RETIME_BATCH: i64 = 1000;

/// What ends a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    /// The purpose's retention period ran out.
    Rule,
    /// The subject withdrew consent (or never gave it).
    ConsentWithdrawn,
    /// The subject objected (GDPR Art. 21).
    Objection,
    /// The subject opted out of sale and sharing (CCPA/CPRA).
    SaleOptOut,
}

impl Cause {
    /// The rule as an audit entry and a report name it.
    fn describe(self, purpose: &Purpose) -> String {
        let grace = purpose
            .retention
            .filter(|r| r.from == RetentionStart::ConsentWithdrawn)
            .map(|r| format!(" + {}", r.period));
        match self {
            Self::Rule => purpose.retention.map_or_else(|| "no rule".to_owned(), |r| r.describe()),
            Self::ConsentWithdrawn => format!("consent withdrawn{}", grace.unwrap_or_default()),
            Self::Objection => "objection".to_owned(),
            Self::SaleOptOut => "sale/sharing opt-out".to_owned(),
        }
    }
}

/// A binding's times as the rules make them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) ended_at: Option<i64>,
    pub(crate) expires_at: Option<i64>,
    /// What `expires_at` comes from.
    pub(crate) cause: Cause,
}

/// The times of binding `b` of `purpose`, from the purpose's rule, the subject's ledger
/// `state` and its last activity. The earlier of the rule's expiry and the ledger's end
/// counts; a consent withdrawn under a `consent_withdrawn` rule ends the binding after the
/// grace period, any other end at once.
pub(crate) fn times(purpose: &Purpose, b: &Binding, state: &SubjectState, last_activity: Option<i64>) -> Times {
    let rule = rule_expiry(purpose, b, last_activity);
    match (rule, ledger_end(purpose, b, state)) {
        (Some(r), Some((ended, end, cause))) => Times {
            ended_at: Some(ended),
            expires_at: Some(end.min(r)),
            cause: if end <= r { cause } else { Cause::Rule },
        },
        (None, Some((ended, end, cause))) => Times {
            ended_at: Some(ended),
            expires_at: Some(end),
            cause,
        },
        (rule, None) => Times {
            ended_at: None,
            expires_at: rule,
            cause: Cause::Rule,
        },
    }
}

/// When the subject's ledger ended binding `b` and when that expires it, and why: an end in
/// force now, or one the ledger took back too late (the binding had expired by then).
/// Computed from the sealed ledger and the binding's sealed times only.
fn ledger_end(purpose: &Purpose, b: &Binding, state: &SubjectState) -> Option<(i64, i64, Cause)> {
    let expiry = |cause: Cause, ended: i64| {
        let grace = purpose
            .retention
            .filter(|r| r.from == RetentionStart::ConsentWithdrawn && cause == Cause::ConsentWithdrawn);
        grace.map_or(ended, |r| r.period.after(ended))
    };
    let now_ended = state.ended(purpose).map(|(at, cause)| {
        let ended = at.unwrap_or(b.bound_at);
        (ended, expiry(cause, ended), cause)
    });
    let lapsed = state.lapsed(purpose, b.renewed_at, expiry);
    match (now_ended, lapsed) {
        (Some(now), Some(past)) => Some(if past.1 < now.1 { past } else { now }),
        (now, past) => now.or(past),
    }
}

/// When the purpose's retention rule alone ends binding `b` (`None`: never by time, or only
/// with consent); a rule running from the last activity counts `last_activity`.
fn rule_expiry(purpose: &Purpose, b: &Binding, last_activity: Option<i64>) -> Option<i64> {
    let r = purpose.retention?;
    let from = match r.from {
        RetentionStart::Collection => b.bound_at,
        RetentionStart::LastUpdate => b.renewed_at,
        RetentionStart::LastActivity => last_activity.unwrap_or(b.renewed_at).max(b.renewed_at),
        RetentionStart::ConsentWithdrawn => return None,
    };
    Some(r.period.after(from))
}

/// Whether a read under `reader` may use a value through binding `b` at `now`: the binding's
/// purpose is the reader's or one the reader is declared compatible with, the ledger has not
/// ended it, and it has not expired (by its stored expiry, by the end the ledger gave it, and
/// by the purpose's rule as the registry says it now, should the stored time be stale). The
/// stored `ended_at` and `expires_at` are not sealed: an end taken back too late is judged
/// from the ledger itself, not from them.
pub(crate) fn usable(registry: &Registry, reader: &Purpose, b: &Binding, state: &SubjectState, now: i64) -> bool {
    if !registry.may_use(&reader.name, &b.purpose) {
        return false;
    }
    let Some(holder) = registry.purpose(&b.purpose) else {
        return false;
    };
    if !ledger_allows(holder, state)
        || b.expires_at.is_some_and(|e| now >= e)
        || ledger_end(holder, b, state).is_some_and(|(_, end, _)| now >= end)
    {
        return false;
    }
    // The activity is not read here: a rule running from it is judged by the stored expiry.
    holder.retention.is_some_and(|r| r.from == RetentionStart::LastActivity)
        || rule_expiry(holder, b, None).is_none_or(|e| now < e)
}

/// The purposes through whose bindings a read under `reader` may use a value (see
/// [`usable`]): its own and those it is declared compatible with, less those the subject's
/// ledger does not let hold their values (`state`; `None`: as the registry alone says).
pub(crate) fn usable_purposes<'r>(
    registry: &'r Registry,
    reader: &'r Purpose,
    state: Option<&SubjectState>,
) -> Vec<&'r str> {
    std::iter::once(reader.name.as_str())
        .chain(reader.compatible_with.iter().map(String::as_str))
        .filter(|p| match (registry.purpose(p), state) {
            (Some(holder), Some(state)) => ledger_allows(holder, state),
            (holder, None) => holder.is_some(),
            (None, Some(_)) => false,
        })
        .collect()
}

/// Whether the subject's ledger lets `holder` hold its values for use: nothing ended its
/// bindings (a withdrawal, an objection, an opt-out), and a restriction (Art. 18) leaves only
/// purposes exempt from it in use, whoever reads through them.
pub(crate) fn ledger_allows(holder: &Purpose, state: &SubjectState) -> bool {
    state.ended(holder).is_none() && (!state.restricted() || holder.allowed_during_restriction)
}

/// The rule text a purpose's stored expiry times were computed with: everything [`times`]
/// reads from the registry.
fn rule_text(p: &Purpose) -> String {
    format!(
        "v1 basis={} sale_or_sharing={} direct_marketing={} retention={}",
        p.legal_basis.name(),
        p.sale_or_sharing,
        p.direct_marketing,
        p.retention.map_or_else(|| "none".to_owned(), |r| r.describe())
    )
}

/// The times of binding `b` as [`times`] makes them at `now`, but an expiry stored that has
/// passed never moves later: a value a legal hold or a restriction kept past it is not brought
/// back into use by an activity, a consent or a longer rule that comes after.
pub(crate) fn times_at(
    purpose: &Purpose,
    b: &Binding,
    state: &SubjectState,
    last_activity: Option<i64>,
    now: i64,
) -> Times {
    let t = times(purpose, b, state, last_activity);
    match b.expires_at {
        Some(passed) if passed <= now && t.expires_at.is_none_or(|e| e > passed) => Times {
            ended_at: b.ended_at.or(t.ended_at),
            expires_at: Some(passed),
            cause: t.cause,
        },
        _ => t,
    }
}

/// The times of a token's value held for `purpose`, handed out (last) at `handed_out`: those of
/// a value written then. A token keeps no times of its own, so a rule from the subject's last
/// activity runs from the hand-out (one that had expired would open again at the subject's
/// next activity). Judged alike by detokenize and the sweeper.
pub(crate) fn token_times(purpose: &Purpose, handed_out: i64, state: &SubjectState) -> Times {
    let written = Binding {
        purpose: purpose.name.clone(),
        bound_at: handed_out,
        renewed_at: handed_out,
        ended_at: None,
        expires_at: None,
    };
    times(purpose, &written, state, None)
}

/// The bindings of `bound` whose stored times differ from what the rules make them at `now`.
fn retimed(
    registry: &Registry,
    bound: &[BoundValue],
    state: &SubjectState,
    last_activity: Option<i64>,
    now: i64,
) -> Vec<BindingTimes> {
    bound
        .iter()
        .filter_map(|v| {
            let purpose = registry.purpose(&v.binding.purpose)?;
            let t = times_at(purpose, &v.binding, state, last_activity, now);
            (t.ended_at != v.binding.ended_at || t.expires_at != v.binding.expires_at).then(|| BindingTimes {
                record_id: v.record_id.clone(),
                field: v.field.clone(),
                purpose: v.binding.purpose.clone(),
                ended_at: t.ended_at,
                expires_at: t.expires_at,
            })
        })
        .collect()
}

/// `None` for work on a subject whose ledger was altered in the database by hand (logged by
/// its entry numbers, with `doing`): the sweeper and an erasure leave it rather than decide on
/// it, and every other read of it is refused.
pub(crate) fn unless_altered<T>(result: Result<T, StoreError>, doing: &'static str) -> Result<Option<T>, StoreError> {
    match result {
        Ok(done) => Ok(Some(done)),
        Err(StoreError::LedgerAltered(what)) => {
            tracing::error!(%what, doing, "a subject's consent ledger was altered in the database: left as it is");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A subject's ledger as the sweeper reads it ([`unless_altered`]).
async fn ledger_for_sweep(
    reader: &mut custodia_store::Reader,
    subject: &str,
    seal: &dyn Sealer,
) -> Result<Option<Vec<custodia_store::LedgerRow>>, StoreError> {
    unless_altered(reader.ledger().of_subject(subject, seal).await, "sweeping")
}

/// Computes a subject's bindings again inside a transaction that changed its ledger or its
/// activity (after the change, at `now`), so the expiry index stays true.
pub(crate) async fn retime_subject(
    tx: &mut Tx<'_>,
    (registry, seal): (&Registry, &dyn Sealer),
    subject: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let entries = tx.ledger().of_subject(subject, seal).await?;
    let state = SubjectState::from_ledger(&entries);
    let last = tx.retention().last_activity(subject).await?;
    let bound = tx.retention().of_subject(subject).await?;
    let changed = retimed(registry, &bound, &state, last, now.0);
    tx.retention().set_times(&changed).await?;
    Ok(())
}

/// A new binding of `purpose` made at `now` (the subject active at `now`).
pub(crate) fn new_binding(purpose: &Purpose, bound_at: i64, now: i64, state: &SubjectState) -> Binding {
    let mut b = Binding {
        purpose: purpose.name.clone(),
        bound_at,
        renewed_at: now,
        ended_at: None,
        expires_at: None,
    };
    let t = times(purpose, &b, state, Some(now));
    b.ended_at = t.ended_at;
    b.expires_at = t.expires_at;
    b
}

/// The bindings of one subject, collection, purpose and cause a batch ends: the fields named,
/// how many bindings ended and how many values went with them.
type Group<'a> = (BTreeSet<&'a str>, u64, u64);

/// How one run goes.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// The instant the rules are evaluated at (a rehearsal may move it).
    pub as_of: Timestamp,
    /// The real time (written beside rules computed again).
    pub now: Timestamp,
    /// Judge and report only; destroy nothing.
    pub dry_run: bool,
    /// Due bindings per batch (one transaction each).
    pub batch: i64,
}

/// One batch judged: what to end, destroy and audit.
#[derive(Default)]
struct Plan {
    endings: Vec<Ending>,
    retimes: Vec<BindingTimes>,
    /// Records that may lose values (the destruction path looks at them).
    records: BTreeSet<String>,
    /// `(subject, collection, field)` of values destroyed: their tokens go too.
    destroyed_fields: BTreeSet<(String, String, String)>,
    /// Subjects that lose a whole record: removed if nothing is left (with the audit entry
    /// that says so).
    subjects: BTreeMap<String, AuditRow>,
    /// Records that lose every value, by subject.
    dead_records: BTreeMap<String, BTreeSet<String>>,
    /// `(subject, collection)` of every binding it ends: a hold placed on one of them after
    /// the plan was made sends the batch back to be judged again.
    covered: BTreeSet<(String, String)>,
    audit: Vec<AuditRow>,
    /// The plan's counts (values, records and subjects are counted when applied).
    counts: SweepReport,
}

impl Vault {
    /// Runs the sweeper: every binding due at `opts.as_of` is judged again and, unless a legal
    /// hold or the subject's restriction keeps it, ended; values no binding holds any more are
    /// destroyed, records left empty and subjects left with nothing (their keys, tokens and
    /// activity) go with them, each batch in one transaction with its audit entries, so a run
    /// stopped half-way leaves nothing half-done and the next run carries on. `progress` is
    /// called after each batch. Rules changed since the last run are applied first.
    #[tracing::instrument(skip_all)]
    pub async fn sweep(
        &self,
        opts: &SweepOptions,
        progress: &mut (dyn FnMut(&SweepReport) + Send),
    ) -> Result<SweepReport, VaultError> {
        // The whole ledger against its sealed tally, as at a start: what a subject's own read
        // cannot see (its whole ledger taken away, head and all, under the running server)
        // stops every decision on the ledger until the next start, which refuses it.
        let tally = self
            .store
            .reader()
            .await?
            .ledger()
            .check_tally(&*self.keys.access_seal)
            .await;
        if let Err(e) = tally {
            if matches!(e, StoreError::LedgerAltered(_)) {
                self.caches.ledger_off.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Err(e.into());
        }
        // the rows that grant access likewise (a revoked key put back from an earlier copy)
        self.check_access_tally().await?;
        // Times only (nothing is destroyed), so a dry run brings them up to date too: what it
        // reports is what a run would do.
        self.reconcile_retention(opts.now).await?;
        let mut report = SweepReport {
            as_of: opts.as_of.to_rfc3339(),
            dry_run: opts.dry_run,
            ..SweepReport::default()
        };
        let mut lines: BTreeMap<(String, String, String, String), SweepLine> = BTreeMap::new();
        // In a dry run, each subject's records destroyed so far (the subject goes when all do).
        let mut dry_records: HashMap<String, BTreeSet<String>> = HashMap::new();
        // In a dry run, the bindings ended so far of records that live on: a value whose
        // bindings fall due in two pages dies with the second, as in a run (a dry run read
        // them as stored, so it counted fewer values, records and subjects the more pages a
        // run took).
        let mut dry_ended: BTreeSet<(String, String, String)> = BTreeSet::new();
        let mut cursor: Option<DueCursor> = None;
        loop {
            let page = self
                .store
                .reader()
                .await?
                .retention()
                .due(opts.as_of.0, cursor.as_ref(), opts.batch.max(1))
                .await?;
            let Some(last) = page.last() else {
                report.complete = true;
                break;
            };
            cursor = Some(DueCursor::after(last));
            let mut attempt = 0;
            let counts = loop {
                let mut plan = self.plan(&page, opts, &dry_ended).await?;
                if opts.dry_run {
                    plan.counts.subjects_removed = self.count_removed(&plan, &mut dry_records).await?;
                    let dead: BTreeSet<&String> = plan.dead_records.values().flatten().collect();
                    dry_ended.extend(
                        plan.endings
                            .iter()
                            .filter(|e| !dead.contains(&e.record_id))
                            .map(|e| (e.record_id.clone(), e.field.clone(), e.purpose.clone())),
                    );
                    break plan.counts;
                }
                let mut counts = std::mem::take(&mut plan.counts);
                match self.apply(plan).await {
                    Ok((erased, removed)) => {
                        counts.values_destroyed = erased.fields;
                        counts.tokens_destroyed = erased.token_values;
                        counts.records_destroyed = erased.records;
                        counts.subjects_removed = removed;
                        break counts;
                    }
                    // A binding changed between the plan and its transaction: judge again.
                    Err(StoreError::Conflict(_)) if attempt < 2 => attempt += 1,
                    Err(e) => return Err(e.into()),
                }
            };
            add(&mut report, &mut lines, counts);
            report.by_rule = lines.values().cloned().collect();
            progress(&report);
        }
        let (tokens, removed) = self.sweep_tokens(opts, &dry_records).await?;
        report.tokens_destroyed += tokens;
        report.subjects_removed += removed;
        if !opts.dry_run && report.values_destroyed + report.tokens_destroyed > 0 {
            self.purge_wal().await;
        }
        Ok(report)
    }

    /// Destroys the token values whose purpose no longer holds them: each is judged as a value
    /// written when the token was handed out (its rule, the ledger; a rule from the subject's
    /// last activity runs from the hand-out, see `tokens.rs`), and kept while a legal hold
    /// covers its subject or collection, or its subject restricted processing. A page at a
    /// time, each in one transaction with one audit entry per subject, purpose and
    /// collection; returns how many, and how many subjects went with their last token (a dry
    /// run: how many would go, `dry_records` being the records its first part destroyed).
    async fn sweep_tokens(
        &self,
        opts: &SweepOptions,
        dry_records: &HashMap<String, BTreeSet<String>>,
    ) -> Result<(u64, u64), VaultError> {
        use custodia_store::HeldToken;
        let mut after: Option<HeldToken> = None;
        let (mut destroyed, mut removed) = (0, 0);
        // In a dry run, each subject's tokens held and due: one whose every token is due, and
        // whose records all go, goes with them.
        let mut dry_tokens: HashMap<String, (u64, u64)> = HashMap::new();
        loop {
            let page = self
                .store
                .reader()
                .await?
                .tokens()
                .held(after.as_ref(), opts.batch.max(1))
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            let mut due: Vec<HeldToken> = Vec::new();
            let mut audit: Vec<(String, AuditRow)> = Vec::new();
            let mut removals: Vec<(String, AuditRow)> = Vec::new();
            let mut reader = self.store.reader().await?;
            for group in page.chunk_by(|a, b| a.subject_id == b.subject_id) {
                let subject = group[0].subject_id.clone();
                if opts.dry_run {
                    dry_tokens.entry(subject.clone()).or_default().0 += group.len() as u64;
                }
                let Some(entries) = ledger_for_sweep(&mut reader, &subject, &*self.keys.access_seal).await? else {
                    continue;
                };
                let state = SubjectState::from_ledger(&entries);
                let collections: BTreeSet<&str> = group.iter().map(|t| t.collection.as_str()).collect();
                let collections: Vec<&str> = collections.into_iter().collect();
                if state.restricted() || !reader.retention().holds_on(&subject, &collections).await?.is_empty() {
                    continue;
                }
                // (purpose, collection) -> fields, tokens, why
                let mut groups: BTreeMap<(&str, &str), (BTreeSet<&str>, u64, Cause)> = BTreeMap::new();
                for t in group {
                    let Some(purpose) = self.registry.purpose(&t.purpose) else {
                        continue;
                    };
                    let when = token_times(purpose, t.created_at, &state);
                    if when.expires_at.is_some_and(|e| e <= opts.as_of.0) {
                        due.push(t.clone());
                        let line =
                            groups
                                .entry((&t.purpose, &t.collection))
                                .or_insert((BTreeSet::new(), 0, when.cause));
                        line.0.insert(&t.field);
                        line.1 += 1;
                    }
                }
                for ((purpose, collection), (fields, n, cause)) in groups {
                    let Some(p) = self.registry.purpose(purpose) else {
                        continue;
                    };
                    let fields: Vec<String> = fields.into_iter().map(str::to_owned).collect();
                    let event = AuditEvent::unauthenticated("retention.expire", SWEEPER_PRINCIPAL.to_owned())
                        .purpose(purpose)
                        .collection(collection)
                        .fields(fields.iter())
                        .detail("rule", cause.describe(p))
                        .detail("tokens_destroyed", n.to_string());
                    let event = self.about(as_of_detail(event, opts), &SubjectId::stored(&subject)?)?;
                    audit.push((subject.clone(), self.audit_row(&event, opts.now, None)?));
                }
                if group.iter().any(|t| due.contains(t)) {
                    removals.push((subject.clone(), self.removed_entry(&subject, opts)?));
                }
            }
            drop(reader);
            if due.is_empty() {
                continue;
            }
            if opts.dry_run {
                destroyed += due.len() as u64;
                for t in &due {
                    dry_tokens.entry(t.subject_id.clone()).or_default().1 += 1;
                }
                continue;
            }
            let (n, gone) = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        // a hold placed since the page was judged keeps its subject's tokens
                        let subjects: BTreeSet<String> = due.iter().map(|t| t.subject_id.clone()).collect();
                        let mut held = BTreeSet::new();
                        for subject in subjects {
                            let collections: BTreeSet<&str> = due
                                .iter()
                                .filter(|t| t.subject_id == subject)
                                .map(|t| t.collection.as_str())
                                .collect();
                            let collections: Vec<&str> = collections.into_iter().collect();
                            if !tx.retention().holds_on(&subject, &collections).await?.is_empty() {
                                held.insert(subject);
                            }
                        }
                        let due: Vec<HeldToken> = due.into_iter().filter(|t| !held.contains(&t.subject_id)).collect();
                        let audit: Vec<AuditRow> = audit
                            .into_iter()
                            .filter(|(s, _)| !held.contains(s))
                            .map(|(_, row)| row)
                            .collect();
                        let n = tx.tokens().expire(&due).await?;
                        let mut audit = audit;
                        // a subject whose last token went, and that holds no record, goes with
                        // its keys as one whose last record went does
                        let mut gone = 0;
                        for (subject, row) in removals.into_iter().filter(|(s, _)| !held.contains(s)) {
                            if remove_if_empty(&mut tx, &subject).await? {
                                audit.push(row);
                                gone += 1;
                            }
                        }
                        tx.audit().append(&audit).await?;
                        Ok((n, gone))
                    })
                })
                .await?;
            destroyed += n;
            removed += gone;
        }
        if opts.dry_run {
            let mut reader = self.store.reader().await?;
            for (subject, (held, due)) in dry_tokens {
                if due < held || due == 0 {
                    continue;
                }
                let destroyed = dry_records.get(&subject).map_or(0, |r| r.len() as u64);
                if reader.retention().record_count(&subject).await? <= destroyed {
                    removed += 1;
                }
            }
        }
        Ok((destroyed, removed))
    }

    /// How many bindings the expiry index says are due at `as_of`: what a run will judge (a
    /// progress bar's whole; a run may find some renewed meanwhile).
    pub async fn due_count(&self, as_of: Timestamp) -> Result<u64, VaultError> {
        Ok(self.store.reader().await?.retention().count_due(as_of.0).await?)
    }

    /// Judges one page of due bindings; `ended` are bindings an earlier page of a dry run
    /// ended (as `(record, field, purpose)`), counted as ended though still stored.
    async fn plan(
        &self,
        page: &[BoundValue],
        opts: &SweepOptions,
        ended: &BTreeSet<(String, String, String)>,
    ) -> Result<Plan, VaultError> {
        let as_of = opts.as_of.0;
        let mut reader = self.store.reader().await?;
        let mut subjects: HashMap<&str, (SubjectState, Option<i64>, Vec<HoldRow>)> = HashMap::new();
        for v in page {
            if subjects.contains_key(v.subject_id.as_str()) {
                continue;
            }
            let Some(entries) = ledger_for_sweep(&mut reader, &v.subject_id, &*self.keys.access_seal).await? else {
                continue;
            };
            let last = reader.retention().last_activity(&v.subject_id).await?;
            let collections: BTreeSet<&str> = page
                .iter()
                .filter(|o| o.subject_id == v.subject_id)
                .map(|o| o.collection.as_str())
                .collect();
            let collections: Vec<&str> = collections.into_iter().collect();
            let holds = reader.retention().holds_on(&v.subject_id, &collections).await?;
            subjects.insert(&v.subject_id, (SubjectState::from_ledger(&entries), last, holds));
        }
        let mut plan = Plan::default();
        let report = &mut plan.counts;
        // (subject, collection, purpose, cause) -> fields, bindings, values
        let mut groups: BTreeMap<(&str, &str, &str, Cause), Group<'_>> = BTreeMap::new();
        let mut ending: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
        let (mut retimes, mut endings, mut records) = (Vec::new(), Vec::new(), BTreeSet::new());
        let mut covered = BTreeSet::new();
        let mut causes: Vec<(&BoundValue, Cause)> = Vec::new();
        for v in page {
            let Some(purpose) = self.registry.purpose(&v.binding.purpose) else {
                report.kept_unknown_purpose += 1;
                continue;
            };
            let Some((state, last, holds)) = subjects.get(v.subject_id.as_str()) else {
                continue;
            };
            let t = times_at(purpose, &v.binding, state, *last, opts.now.0);
            if t.expires_at.is_none_or(|e| e > as_of) {
                if t.ended_at != v.binding.ended_at || t.expires_at != v.binding.expires_at {
                    report.retimed += 1;
                    retimes.push(BindingTimes {
                        record_id: v.record_id.clone(),
                        field: v.field.clone(),
                        purpose: v.binding.purpose.clone(),
                        ended_at: t.ended_at,
                        expires_at: t.expires_at,
                    });
                }
                continue;
            }
            let held = holds.iter().any(|h| {
                h.subject_id.as_deref() == Some(v.subject_id.as_str())
                    || h.collection.as_deref() == Some(v.collection.as_str())
            });
            if held {
                report.kept_by_hold += 1;
                continue;
            }
            if state.restricted() {
                report.kept_by_restriction += 1;
                continue;
            }
            ending.insert((&v.record_id, &v.field, &v.binding.purpose));
            causes.push((v, t.cause));
            covered.insert((v.subject_id.clone(), v.collection.clone()));
            endings.push(Ending {
                record_id: v.record_id.clone(),
                field: v.field.clone(),
                purpose: v.binding.purpose.clone(),
                renewed_at: v.binding.renewed_at,
                expires_at: v.binding.expires_at,
            });
            records.insert(v.record_id.clone());
        }
        plan.retimes = retimes;
        plan.endings = endings;
        plan.covered = covered;
        plan.records = records;
        let report = &mut plan.counts;
        // Which values lose their last binding, and which records their last value.
        let ids: Vec<&str> = plan.records.iter().map(String::as_str).collect();
        let all = reader
            .retention()
            .of_records(&ids, custodia_store::BindingRows::AsStored)
            .await?;
        let mut fields: BTreeMap<(&str, &str), bool> = BTreeMap::new();
        for b in &all {
            let ends = ending.contains(&(b.record_id.as_str(), b.field.as_str(), b.binding.purpose.as_str()))
                || (!ended.is_empty()
                    && ended.contains(&(b.record_id.clone(), b.field.clone(), b.binding.purpose.clone())));
            let dies = fields.entry((&b.record_id, &b.field)).or_insert(true);
            *dies &= ends;
        }
        let mut record_dies: BTreeMap<&str, bool> = BTreeMap::new();
        for ((record, _), dies) in &fields {
            *record_dies.entry(record).or_insert(true) &= *dies;
        }
        let mut bound_values: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (v, cause) in &causes {
            let Some(purpose) = self.registry.purpose(&v.binding.purpose) else {
                continue;
            };
            // The binding that destroys a value is counted once, with the first rule seen.
            let destroys = fields.get(&(v.record_id.as_str(), v.field.as_str())) == Some(&true)
                && bound_values.insert((&v.record_id, &v.field));
            let group = groups
                .entry((&v.subject_id, &v.collection, &v.binding.purpose, *cause))
                .or_default();
            group.0.insert(&v.field);
            group.1 += 1;
            if destroys {
                group.2 += 1;
                plan.destroyed_fields
                    .insert((v.subject_id.clone(), v.collection.clone(), v.field.clone()));
            }
            report.by_rule.push(SweepLine {
                collection: v.collection.clone(),
                field: v.field.clone(),
                purpose: purpose.name.clone(),
                rule: cause.describe(purpose),
                bindings_ended: 1,
                values_destroyed: u64::from(destroys),
            });
            report.bindings_ended += 1;
            report.values_destroyed += u64::from(destroys);
            if record_dies.get(v.record_id.as_str()) == Some(&true) {
                plan.dead_records
                    .entry(v.subject_id.clone())
                    .or_default()
                    .insert(v.record_id.clone());
            }
            if record_dies.get(v.record_id.as_str()) == Some(&true) && !plan.subjects.contains_key(&v.subject_id) {
                plan.subjects
                    .insert(v.subject_id.clone(), self.removed_entry(&v.subject_id, opts)?);
            }
        }
        plan.counts.records_destroyed = plan.dead_records.values().map(|r| r.len() as u64).sum();
        for ((subject, collection, purpose, cause), (names, bindings, values)) in groups {
            let Some(p) = self.registry.purpose(purpose) else {
                continue;
            };
            let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
            let event = AuditEvent::unauthenticated("retention.expire", SWEEPER_PRINCIPAL.to_owned())
                .purpose(purpose)
                .collection(collection)
                .fields(names.iter())
                .detail("rule", cause.describe(p))
                .detail("bindings_ended", bindings.to_string())
                .detail("values_destroyed", values.to_string());
            let event = self.about(as_of_detail(event, opts), &SubjectId::stored(subject)?)?;
            plan.audit.push(self.audit_row(&event, opts.now, None)?);
        }
        Ok(plan)
    }

    /// In a dry run, the subjects a plan would leave with nothing: all their records
    /// destroyed, in this plan or an earlier one of the run (`destroyed`). Also counts the
    /// plan's records.
    async fn count_removed(
        &self,
        plan: &Plan,
        destroyed: &mut HashMap<String, BTreeSet<String>>,
    ) -> Result<u64, VaultError> {
        let mut removed = 0;
        let mut reader = self.store.reader().await?;
        for (subject, records) in &plan.dead_records {
            let all = destroyed.entry(subject.clone()).or_default();
            let before = all.len();
            all.extend(records.iter().cloned());
            let held = reader.retention().record_count(subject).await?;
            // (one that holds token values goes, if at all, with its last one)
            if (before as u64) < held
                && all.len() as u64 >= held
                && !reader.tokens().subject_has_values(subject).await?
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Applies a plan in one transaction: ends its bindings (all still as read, or nothing:
    /// `Conflict`), destroys what nothing holds, removes subjects left with nothing, appends
    /// the audit entries. Returns what was destroyed and how many subjects went.
    async fn apply(&self, plan: Plan) -> Result<(ErasedRows, u64), StoreError> {
        self.store
            .write(move |mut tx| {
                Box::pin(async move {
                    tx.retention().set_times(&plan.retimes).await?;
                    // A hold placed since the plan was made wins: judge the batch again.
                    let holds = tx.retention().active_holds().await?;
                    let newly_held = holds.iter().any(|h| {
                        plan.covered.iter().any(|(subject, collection)| {
                            h.subject_id.as_deref() == Some(subject.as_str())
                                || h.collection.as_deref() == Some(collection.as_str())
                        })
                    });
                    if newly_held {
                        return Err(StoreError::Conflict("hold".into()));
                    }
                    let ended = tx.retention().end(&plan.endings).await?;
                    if ended.iter().any(|ok| !ok) {
                        return Err(StoreError::Conflict("binding".into()));
                    }
                    let records: Vec<&str> = plan.records.iter().map(String::as_str).collect();
                    let mut erased = tx.records().destroy_unbound(&records).await?;
                    for (subject, collection, field) in &plan.destroyed_fields {
                        erased.token_values += tx.tokens().erase_field(subject, collection, field).await?;
                    }
                    let mut audit = plan.audit;
                    let mut removed = 0;
                    for (subject, row) in plan.subjects {
                        if remove_if_empty(&mut tx, &subject).await? {
                            audit.push(row);
                            removed += 1;
                        }
                    }
                    tx.audit().append(&audit).await?;
                    Ok((erased, removed))
                })
            })
            .await
    }

    /// The audit entry of a subject the sweeper removes with its keys.
    fn removed_entry(&self, subject: &str, opts: &SweepOptions) -> Result<AuditRow, VaultError> {
        let event = self.about(
            AuditEvent::unauthenticated("retention.subject_removed", SWEEPER_PRINCIPAL.to_owned())
                .detail("reason", "nothing left to hold"),
            &SubjectId::stored(subject)?,
        )?;
        self.audit_row(&event, opts.now, None)
    }

    /// Computes again the stored times of every binding of a purpose whose rule (or legal
    /// basis, or sale/sharing or direct-marketing mark) changed since they were computed, so
    /// the expiry index matches the registry; returns how many bindings changed.
    pub async fn reconcile_retention(&self, now: Timestamp) -> Result<u64, VaultError> {
        let stored: BTreeMap<String, String> = self
            .store
            .reader()
            .await?
            .retention()
            .rules()
            .await?
            .into_iter()
            .collect();
        let mut changed = 0;
        for purpose in self.registry.purposes.values() {
            let rule = rule_text(purpose);
            if stored.get(&purpose.name) == Some(&rule) {
                continue;
            }
            let mut after: Option<(String, String)> = None;
            loop {
                let page = self
                    .store
                    .reader()
                    .await?
                    .retention()
                    .of_purpose(
                        &purpose.name,
                        after.as_ref().map(|(r, f)| (r.as_str(), f.as_str())),
                        RETIME_BATCH,
                    )
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some((last.record_id.clone(), last.field.clone()));
                let mut states: HashMap<&str, (SubjectState, Option<i64>)> = HashMap::new();
                let mut reader = self.store.reader().await?;
                let mut times_now = Vec::new();
                for v in &page {
                    if !states.contains_key(v.subject_id.as_str()) {
                        let Some(entries) =
                            ledger_for_sweep(&mut reader, &v.subject_id, &*self.keys.access_seal).await?
                        else {
                            continue;
                        };
                        let last = reader.retention().last_activity(&v.subject_id).await?;
                        states.insert(&v.subject_id, (SubjectState::from_ledger(&entries), last));
                    }
                    if let Some((state, last)) = states.get(v.subject_id.as_str()) {
                        times_now.extend(retimed(&self.registry, std::slice::from_ref(v), state, *last, now.0));
                    }
                }
                drop(reader);
                changed += times_now.len() as u64;
                self.store
                    .write(move |mut tx| Box::pin(async move { tx.retention().set_times(&times_now).await }))
                    .await?;
            }
            let name = purpose.name.clone();
            self.store
                .write(move |mut tx| Box::pin(async move { tx.retention().set_rule(&name, &rule, now.0).await }))
                .await?;
        }
        Ok(changed + self.retime_after_ledger(now).await?)
    }

    /// Times again the bindings of every subject whose ledger moved since the last pass. A
    /// write that raced a withdrawal, an objection or an opt-out computed its binding from
    /// the ledger as it was and committed after the change had timed the subject's bindings:
    /// its binding stayed live (a value kept for good). Timing is a function of the ledger,
    /// so timing the subject again ends it as of the change, expiring when it would have. An
    /// entry is looked at again until it is [`LEDGER_SETTLED_MS`] old (writes that began
    /// before it have ended by then); the mark of what is settled is kept in `meta`.
    async fn retime_after_ledger(&self, now: Timestamp) -> Result<u64, VaultError> {
        let mark = self.store.reader().await?.meta().get(LEDGER_MARK).await?;
        let from = mark
            .as_deref()
            .and_then(|m| std::str::from_utf8(m).ok())
            .and_then(|m| m.parse::<i64>().ok())
            .unwrap_or(0);
        let (mut cursor, mut settled, mut unsettled_seen) = (from, from, false);
        let mut subjects = std::collections::BTreeSet::new();
        loop {
            let page = self.store.reader().await?.ledger().after(cursor, RETIME_BATCH).await?;
            let Some(&(last, _, _)) = page.last() else { break };
            for (seq, subject, at) in page.iter() {
                if !unsettled_seen && *at <= now.0.saturating_sub(LEDGER_SETTLED_MS) {
                    settled = *seq;
                } else {
                    unsettled_seen = true;
                }
                subjects.insert(subject.clone());
            }
            cursor = last;
            if (page.len() as i64) < RETIME_BATCH {
                break;
            }
        }
        let count = subjects.len() as u64;
        for subject in subjects {
            let registry = std::sync::Arc::clone(&self.registry);
            let seal = std::sync::Arc::clone(&self.keys.access_seal);
            let retimed = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move { retime_subject(&mut tx, (&registry, &*seal), &subject, now).await })
                })
                .await;
            // the subject's values stay as they are, the others go on
            unless_altered(retimed, "timing bindings again")?;
        }
        if settled != from {
            let (old, new) = (from.to_string(), settled.to_string());
            self.store
                .write(move |mut tx| {
                    Box::pin(async move {
                        let mut meta = tx.meta();
                        if !meta.replace(LEDGER_MARK, old.as_bytes(), new.as_bytes()).await? {
                            meta.insert(LEDGER_MARK, new.as_bytes()).await?;
                        }
                        Ok(())
                    })
                })
                .await?;
        }
        Ok(count)
    }
}

/// Where the re-timing after ledger changes has settled (`meta` key; a sequence number).
const LEDGER_MARK: &str = "retention.ledger_retimed_upto";
/// How old a ledger entry is before no write that began before it can still commit.
const LEDGER_SETTLED_MS: i64 = 10 * 60 * 1000;

/// An entry of a run whose rules were evaluated at another instant than the entry's own time
/// (a rehearsal with `--as-of`) names that instant.
fn as_of_detail(event: AuditEvent, opts: &SweepOptions) -> AuditEvent {
    if opts.as_of == opts.now {
        event
    } else {
        event.detail("as_of", opts.as_of.to_rfc3339())
    }
}

/// Removes a subject that holds nothing any more (no record, no token value) with its keys and
/// activity; whether it did. A subject with a token still held for its own purpose keeps its
/// key (the token's value is sealed under it).
async fn remove_if_empty(tx: &mut Tx<'_>, subject: &str) -> Result<bool, StoreError> {
    if tx.retention().subject_has_records(subject).await? || tx.tokens().subject_has_values(subject).await? {
        return Ok(false);
    }
    for key in tx.subjects().keys(subject).await? {
        tx.subjects().destroy_key(subject, &key.key_class).await?;
    }
    tx.retention().forget_activity(subject).await?;
    // the relationship's traces go as an erasure's do: the id and the texts written about the
    // person on its released holds and closed requests (an open one still needs them)
    tx.retention().forget_subject_in_holds(subject).await?;
    tx.requests().forget_subject(subject, false).await?;
    Ok(true)
}

/// Adds one batch's counts to a run's report; lines of the same field, purpose and rule merge.
fn add(
    report: &mut SweepReport,
    lines: &mut BTreeMap<(String, String, String, String), SweepLine>,
    batch: SweepReport,
) {
    report.bindings_ended += batch.bindings_ended;
    report.values_destroyed += batch.values_destroyed;
    report.records_destroyed += batch.records_destroyed;
    report.subjects_removed += batch.subjects_removed;
    report.tokens_destroyed += batch.tokens_destroyed;
    report.kept_by_hold += batch.kept_by_hold;
    report.kept_by_restriction += batch.kept_by_restriction;
    report.kept_unknown_purpose += batch.kept_unknown_purpose;
    report.retimed += batch.retimed;
    for l in batch.by_rule {
        let key = (l.collection.clone(), l.field.clone(), l.purpose.clone(), l.rule.clone());
        let line = lines.entry(key).or_insert(SweepLine {
            bindings_ended: 0,
            values_destroyed: 0,
            ..l.clone()
        });
        line.bindings_ended += l.bindings_ended;
        line.values_destroyed += l.values_destroyed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_registry::{EXAMPLE_REGISTRY, Period};
    use custodia_store::LedgerRow;

    const DAY: i64 = 86_400_000;
    /// 2026-01-15T00:00:00Z.
    const T0: i64 = 1_768_435_200_000;

    fn registry() -> Registry {
        Registry::parse("example.toml", EXAMPLE_REGISTRY).unwrap()
    }

    fn entry(kind: &str, purpose: Option<&str>, value: bool, at: i64) -> LedgerRow {
        crate::consent::tests::row_at(kind, purpose, value, at)
    }

    fn state(entries: &[LedgerRow]) -> SubjectState {
        SubjectState::from_ledger(entries)
    }

    fn bound(purpose: &str, bound_at: i64, renewed_at: i64) -> Binding {
        Binding {
            purpose: purpose.into(),
            bound_at,
            renewed_at,
            ended_at: None,
            expires_at: None,
        }
    }

    /// Each rule kind, with known answers recomputed by hand from the calendar.
    #[test]
    fn each_rule_kind_runs_from_its_own_time() {
        let reg = registry();
        let p = |n: &str| reg.purpose(n).unwrap();
        let none = state(&[]);
        // payment: 13m from collection. 2026-01-15 + 13 months = 2027-02-15.
        let t = times(p("payment"), &bound("payment", T0, T0 + 100 * DAY), &none, None);
        assert_eq!(t.expires_at, Some(T0 + 396 * DAY));
        assert_eq!((t.ended_at, t.cause), (None, Cause::Rule));
        // order_fulfillment: 2y from the last update. 2026-03-01 + 2y = 2028-03-01 (2028 is a
        // leap year: 731 days).
        let march = T0 + 45 * DAY;
        let t = times(
            p("order_fulfillment"),
            &bound("order_fulfillment", T0, march),
            &none,
            None,
        );
        assert_eq!(t.expires_at, Some(march + 731 * DAY));
        // customer_support: 1y from the subject's last activity (or the binding's last write,
        // whichever is later).
        let support = bound("customer_support", T0, T0);
        let t = times(p("customer_support"), &support, &none, Some(T0 + 10 * DAY));
        assert_eq!(t.expires_at, Some(T0 + 10 * DAY + 365 * DAY));
        let t = times(p("customer_support"), &support, &none, Some(T0 - 10 * DAY));
        assert_eq!(
            t.expires_at,
            Some(T0 + 365 * DAY),
            "an older activity does not shorten it"
        );
        // tax_records: 10y from collection.
        let t = times(p("tax_records"), &bound("tax_records", T0, T0), &none, None);
        assert_eq!(t.expires_at, Some(Period::Years(10).after(T0)));
    }

    /// A consent-based purpose keeps a value while consent lasts; withdrawn, the binding ends
    /// at the withdrawal and expires after the grace period; given again, it is live again.
    #[test]
    fn consent_withdrawal_ends_after_the_grace_period_and_revives_with_consent_given_within_it() {
        let reg = registry();
        let marketing = reg.purpose("marketing_email").unwrap();
        let b = bound("marketing_email", T0, T0);
        let given = state(&[entry("consent", Some("marketing_email"), true, T0 - DAY)]);
        let t = times(marketing, &b, &given, None);
        assert_eq!((t.ended_at, t.expires_at), (None, None), "while consent lasts: no end");
        let w = T0 + 40 * DAY;
        let withdrawn = state(&[
            entry("consent", Some("marketing_email"), true, T0 - DAY),
            entry("consent", Some("marketing_email"), false, w),
        ]);
        let t = times(marketing, &b, &withdrawn, None);
        assert_eq!(
            (t.ended_at, t.expires_at, t.cause),
            (Some(w), Some(w + DAY), Cause::ConsentWithdrawn)
        );
        assert!(!usable(&reg, marketing, &b, &withdrawn, w + DAY), "unusable at once");
        let again = |at: i64| {
            state(&[
                entry("consent", Some("marketing_email"), true, T0 - DAY),
                entry("consent", Some("marketing_email"), false, w),
                entry("consent", Some("marketing_email"), true, at),
            ])
        };
        // given again within the grace period: the value is kept
        assert_eq!(times(marketing, &b, &again(w + DAY / 2), None).expires_at, None);
        assert!(usable(&reg, marketing, &b, &again(w + DAY / 2), w + 2 * DAY));
        // given again once it ran out (a hold, a restriction or a sweep not yet run kept the
        // value): the binding expired for good; a value written after is bound again
        let late = again(w + 3 * DAY);
        let t = times(marketing, &b, &late, None);
        assert_eq!(
            (t.ended_at, t.expires_at, t.cause),
            (Some(w), Some(w + DAY), Cause::ConsentWithdrawn)
        );
        // a read judges it from the ledger, whatever the binding's stored (unsealed) end and
        // expiry say: cleared by hand, it still expired at the end the ledger gave it
        assert!(b.ended_at.is_none() && b.expires_at.is_none());
        assert!(!usable(&reg, marketing, &b, &late, w + 4 * DAY), "expired for good");
        let rewritten = bound("marketing_email", T0, w + 4 * DAY);
        assert_eq!(times(marketing, &rewritten, &late, None).expires_at, None);
        assert!(
            usable(&reg, marketing, &rewritten, &late, w + 5 * DAY),
            "a value written after"
        );
        // a withdrawal repeated starts no grace period again: the first counts
        let twice = state(&[
            entry("consent", Some("marketing_email"), true, T0 - DAY),
            entry("consent", Some("marketing_email"), false, w),
            entry("consent", Some("marketing_email"), false, w + 2 * DAY),
        ]);
        assert_eq!(times(marketing, &b, &twice, None).expires_at, Some(w + DAY));
        let again_after_twice = state(&[
            entry("consent", Some("marketing_email"), true, T0 - DAY),
            entry("consent", Some("marketing_email"), false, w),
            entry("consent", Some("marketing_email"), false, w + 2 * DAY),
            entry("consent", Some("marketing_email"), true, w + 2 * DAY),
        ]);
        assert_eq!(times(marketing, &b, &again_after_twice, None).expires_at, Some(w + DAY));
        // an objection or an opt-out taken back ended for good what it ended
        let support = reg.purpose("customer_support").unwrap();
        let s = bound("customer_support", T0, T0);
        let objected = state(&[
            entry("objection", Some("customer_support"), true, w),
            entry("objection", Some("customer_support"), false, w + DAY),
        ]);
        assert_eq!(times(support, &s, &objected, None).expires_at, Some(w));
        // analytics (consent, 13m from collection): a withdrawal ends it at once.
        let analytics = reg.purpose("analytics").unwrap();
        let a = bound("analytics", T0, T0);
        let off = state(&[entry("consent", Some("analytics"), false, w)]);
        let t = times(analytics, &a, &off, None);
        assert_eq!((t.expires_at, t.cause), (Some(w), Cause::ConsentWithdrawn));
        // A value bound to a consent purpose that never had consent ends from its binding.
        assert_eq!(times(analytics, &a, &state(&[]), None).expires_at, Some(T0));
    }

    /// An objection ends what it applies to, an opt-out the sale/sharing purposes; whichever
    /// comes first (the rule's own expiry included) counts.
    #[test]
    fn objections_and_opt_outs_end_what_they_concern() {
        let reg = registry();
        let support = reg.purpose("customer_support").unwrap();
        let b = bound("customer_support", T0, T0);
        let objected = state(&[entry("objection", Some("customer_support"), true, T0 + 5 * DAY)]);
        let t = times(support, &b, &objected, None);
        assert_eq!((t.expires_at, t.cause), (Some(T0 + 5 * DAY), Cause::Objection));
        // An objection does not reach a contract purpose.
        let orders = reg.purpose("order_fulfillment").unwrap();
        let o = bound("order_fulfillment", T0, T0);
        let objected_orders = state(&[entry("objection", Some("order_fulfillment"), true, T0)]);
        assert_eq!(times(orders, &o, &objected_orders, None).ended_at, None);
        let analytics = reg.purpose("analytics").unwrap();
        let a = bound("analytics", T0, T0);
        let opted = state(&[
            entry("consent", Some("analytics"), true, T0),
            entry("sale_opt_out", None, true, T0 + 3 * DAY),
        ]);
        let t = times(analytics, &a, &opted, None);
        assert_eq!((t.expires_at, t.cause), (Some(T0 + 3 * DAY), Cause::SaleOptOut));
        // An end later than the rule's expiry leaves the rule's.
        let late = state(&[
            entry("consent", Some("analytics"), true, T0),
            entry("sale_opt_out", None, true, T0 + 500 * DAY),
        ]);
        let t = times(analytics, &a, &late, None);
        assert_eq!((t.expires_at, t.cause), (Some(T0 + 396 * DAY), Cause::Rule));
        assert_eq!(t.ended_at, Some(T0 + 500 * DAY));
    }

    /// Art. 6(4): a purpose reads what it holds, and what a purpose it is declared compatible
    /// with holds; never what an unrelated one holds, nor an expired or ended binding.
    #[test]
    fn reads_need_a_usable_binding_of_the_purpose_or_a_compatible_one() {
        let reg = registry();
        let p = |n: &str| reg.purpose(n).unwrap();
        let live = state(&[entry("consent", Some("analytics"), true, T0)]);
        let orders = Binding {
            expires_at: Some(T0 + 700 * DAY),
            ..bound("order_fulfillment", T0, T0)
        };
        let now = T0 + DAY;
        assert!(usable(&reg, p("order_fulfillment"), &orders, &live, now));
        assert!(
            usable(&reg, p("customer_support"), &orders, &live, now),
            "declared compatible"
        );
        assert!(
            !usable(&reg, p("analytics"), &orders, &live, now),
            "collected for orders, not analytics"
        );
        assert!(!usable(&reg, p("marketing_email"), &orders, &live, now));
        assert!(
            !usable(&reg, p("order_fulfillment"), &orders, &live, T0 + 700 * DAY),
            "expired"
        );
        // A stale stored expiry (the rule became shorter) is not trusted.
        let stale = Binding {
            expires_at: Some(T0 + 5000 * DAY),
            ..orders.clone()
        };
        assert!(!usable(&reg, p("order_fulfillment"), &stale, &live, T0 + 800 * DAY));
        // A binding of a purpose the registry no longer declares holds nothing readable.
        let gone = bound("retired_purpose", T0, T0);
        assert!(!usable(&reg, p("order_fulfillment"), &gone, &live, now));
    }

    /// The rule text changes with everything `times` reads from the registry.
    #[test]
    fn the_rule_text_names_what_the_times_depend_on() {
        let reg = registry();
        let mut p = reg.purpose("marketing_email").unwrap().clone();
        let before = rule_text(&p);
        assert!(before.contains("basis=consent") && before.contains("1d"), "{before}");
        p.retention = None;
        assert_ne!(rule_text(&p), before);
        let mut q = reg.purpose("marketing_email").unwrap().clone();
        q.direct_marketing = !q.direct_marketing;
        assert_ne!(rule_text(&q), before);
    }

    mod sweeping {
        use std::collections::BTreeMap;

        use custodia_types::{ConsentRequest, NewHold, RestrictionRequest};

        use super::*;
        use crate::package::tests::vault;
        use crate::{Call, Principal, RecordId};

        fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        }

        async fn create(
            vault: &Vault,
            admin: &Principal,
            s: &SubjectId,
            purpose: &str,
            at: i64,
            v: &[(&str, &str)],
        ) -> RecordId {
            vault
                .create_record(&Call::new(admin, purpose, Timestamp(at)), s, "customers", &values(v))
                .await
                .unwrap()
        }

        async fn patch(
            vault: &Vault,
            admin: &Principal,
            s: &SubjectId,
            id: &RecordId,
            purpose: &str,
            at: i64,
            v: &[(&str, &str)],
        ) {
            let v = v
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .collect();
            vault
                .patch_record(&Call::new(admin, purpose, Timestamp(at)), s, "customers", id, &v)
                .await
                .unwrap();
        }

        async fn consent(vault: &Vault, admin: &Principal, s: &SubjectId, purpose: &str, granted: bool, at: i64) {
            let req = ConsentRequest {
                purpose: purpose.into(),
                granted,
                notice_version: granted.then(|| "2026-01".into()),
                method: "web_form".into(),
                evidence: None,
            };
            vault.record_consent(admin, Timestamp(at), s, &req).await.unwrap();
        }

        /// A subject's whole ledger taken away, head and all, under the running vault: its own
        /// reads see a subject without a ledger (its objections gone); the sweeper's check of
        /// the whole ledger against its tally finds it, and from then on nothing is decided on
        /// any subject's ledger.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_ledger_taken_away_under_the_running_vault_stops_every_decision_on_it() {
            let (dir, vault, admin) = vault().await;
            let (a, b) = (SubjectId::parse("keeps").unwrap(), SubjectId::parse("objects").unwrap());
            consent(&vault, &admin, &a, "marketing_email", true, T0).await;
            consent(&vault, &admin, &b, "marketing_email", true, T0 + 1).await;
            assert!(vault.subject_state(&a).await.is_ok());
            let db = rusqlite::Connection::open(dir.path().join("custodia.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(
                "DROP TRIGGER IF EXISTS subject_ledger_no_delete;
                 DROP TRIGGER IF EXISTS subject_ledger_seals_no_delete;
                 DELETE FROM subject_ledger_seals WHERE seq IN (SELECT seq FROM subject_ledger WHERE subject_id = 'objects');
                 DELETE FROM subject_ledger WHERE subject_id = 'objects';
                 DELETE FROM subject_ledger_heads WHERE subject_id = 'objects';",
            )
            .unwrap();
            drop(db);
            let opts = SweepOptions {
                as_of: Timestamp(T0 + DAY),
                now: Timestamp(T0 + DAY),
                dry_run: false,
                batch: 2,
            };
            let swept = vault.sweep(&opts, &mut |_| {}).await;
            assert_eq!(swept.err().map(|e| e.code), Some(crate::error::LEDGER_ALTERED));
            for s in [&a, &b] {
                let state = vault.subject_state(s).await;
                assert_eq!(state.err().map(|e| e.code), Some(crate::error::LEDGER_ALTERED));
            }
        }

        /// A revoked key's row put back under the running vault as an earlier copy of the
        /// database had it (its revocation undone, the seal it carried then): the row's own
        /// seal holds, so the key would work again; the sweeper's check of the access rows
        /// against their tally finds it, and from then on no key, session or login is taken.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_revoked_key_put_back_under_the_running_vault_stops_every_key() {
            let (dir, vault, admin) = vault().await;
            let now = Timestamp(T0);
            let roles = ["support_agent".to_owned()];
            let (desk, desk_key) = vault.create_principal(&admin, now, "desk", &roles, None).await.unwrap();
            let (_, ops_key) = vault.create_principal(&admin, now, "ops", &roles, None).await.unwrap();
            let db = rusqlite::Connection::open(dir.path().join("custodia.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let before: Vec<u8> = db
                .query_row("SELECT seal FROM principals WHERE principal_id = ?1", [&desk], |r| {
                    r.get(0)
                })
                .unwrap();
            vault.revoke_principal(&admin, now, &desk).await.unwrap();
            assert!(vault.authenticate(&desk_key, now).await.is_err());
            db.execute(
                "UPDATE principals SET revoked_at = NULL, seal = ?1 WHERE principal_id = ?2",
                rusqlite::params![before, desk],
            )
            .unwrap();
            drop(db);
            let opts = SweepOptions {
                as_of: Timestamp(T0 + DAY),
                now: Timestamp(T0 + DAY),
                dry_run: false,
                batch: 2,
            };
            let swept = vault.sweep(&opts, &mut |_| {}).await;
            assert_eq!(swept.err().map(|e| e.code), Some("access_altered"));
            for key in [&*desk_key, &*ops_key] {
                let refused = vault.authenticate(key, now).await;
                assert_eq!(refused.err().map(|e| e.code), Some("access_altered"));
            }
            let login = vault
                .login(now, "nobody", zeroize::Zeroizing::new("pw".to_owned()), "000000")
                .await;
            assert_eq!(login.err().map(|e| e.code), Some("access_altered"));
            let enrol = vault
                .enrol_operator(now, "nobody", "code", zeroize::Zeroizing::new("pw".to_owned()))
                .await;
            assert_eq!(enrol.err().map(|e| e.code), Some("access_altered"));
            // a load balancer sends requests elsewhere
            assert_eq!(vault.health().await.err().map(|e| e.code), Some("access_altered"));
        }

        async fn run(vault: &Vault, as_of: i64, dry_run: bool) -> SweepReport {
            run_in(vault, as_of, dry_run, 2).await
        }

        /// What a sweep ended and destroyed: what a dry run must say as its run does.
        fn destroyed(r: &SweepReport) -> (u64, u64, u64, u64) {
            (
                r.bindings_ended,
                r.values_destroyed,
                r.records_destroyed,
                r.subjects_removed,
            )
        }

        async fn run_in(vault: &Vault, as_of: i64, dry_run: bool, batch: i64) -> SweepReport {
            let opts = SweepOptions {
                as_of: Timestamp(as_of),
                now: Timestamp(T0 + DAY),
                dry_run,
                batch,
            };
            vault.sweep(&opts, &mut |_| {}).await.unwrap()
        }

        /// The fields a purpose reads of a record (`None`: the record is not shown).
        async fn read(
            vault: &Vault,
            admin: &Principal,
            s: &SubjectId,
            id: &RecordId,
            purpose: &str,
            at: i64,
        ) -> Option<Vec<String>> {
            vault
                .get_record(&Call::new(admin, purpose, Timestamp(at)), s, "customers", id, None)
                .await
                .ok()
                .map(|r| r.fields.into_keys().collect())
        }

        /// Review of 2026-12-06 (helper-94): a consent given again once the withdrawal's grace
        /// period had run out brought back the values a legal hold had kept from the sweeper
        /// (and, after a restore, those the sweeper had destroyed since the backup). They
        /// expired for good; a value written after the new consent is read.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn consent_given_again_too_late_brings_back_nothing_a_hold_kept() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("again").unwrap();
            consent(&vault, &admin, &s, "marketing_email", true, T0).await;
            let id = create(&vault, &admin, &s, "marketing_email", T0, &[("email", "a@example.com")]).await;
            let hold = NewHold {
                subject_id: Some("again".into()),
                collection: None,
                reason: "claim 2026-300".into(),
            };
            vault.place_hold(&admin, Timestamp(T0), &hold).await.unwrap();
            consent(&vault, &admin, &s, "marketing_email", false, T0 + DAY).await;
            run(&vault, T0 + 3 * DAY, false).await;
            consent(&vault, &admin, &s, "marketing_email", true, T0 + 3 * DAY).await;
            assert_eq!(
                read(&vault, &admin, &s, &id, "marketing_email", T0 + 3 * DAY).await,
                None,
                "what the hold kept is not in use again"
            );
            // within the grace period, a consent given again keeps the value in use
            let t = SubjectId::parse("soon").unwrap();
            consent(&vault, &admin, &t, "marketing_email", true, T0).await;
            let kept = create(&vault, &admin, &t, "marketing_email", T0, &[("email", "s@example.com")]).await;
            consent(&vault, &admin, &t, "marketing_email", false, T0 + DAY).await;
            consent(&vault, &admin, &t, "marketing_email", true, T0 + DAY + DAY / 2).await;
            assert_eq!(
                read(&vault, &admin, &t, &kept, "marketing_email", T0 + 3 * DAY).await,
                Some(vec!["email".to_owned()])
            );
        }

        /// Review of 2026-12-06 (helper-94): a token of a value stored in no record stayed in
        /// the database for good. The sweeper destroys it once its purpose's rule, counted
        /// from the hand-out, ran out; a legal hold keeps it; a dry run only counts it.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_sweeper_destroys_tokens_their_purpose_no_longer_holds() {
            use custodia_types::TokenizeRequest;
            let (_dir, vault, admin) = vault().await;
            let req = |subject: &str| TokenizeRequest {
                subject_id: subject.into(),
                collection: "customers".into(),
                field: "phone".into(),
                purpose: "customer_support".into(),
                values: vec!["+442079460999".into()],
                kind: Some("random".into()),
                keep_last4: false,
            };
            for subject in ["tok_gone", "tok_held"] {
                vault
                    .tokenize(&admin, Timestamp(T0), &req(subject), false)
                    .await
                    .unwrap();
            }
            let hold = NewHold {
                subject_id: Some("tok_held".into()),
                collection: None,
                reason: "claim 2026-302".into(),
            };
            vault.place_hold(&admin, Timestamp(T0), &hold).await.unwrap();
            let count = || async {
                let mut reader = vault.store.reader().await.unwrap();
                reader.tokens().held(None, 100).await.unwrap().len()
            };
            assert_eq!(run(&vault, T0 + 30 * DAY, false).await.tokens_destroyed, 0, "not yet");
            let dry = run(&vault, T0 + 400 * DAY, true).await;
            assert_eq!(dry.tokens_destroyed, 1, "a dry run counts");
            assert_eq!(count().await, 2, "and destroys nothing");
            let real = run(&vault, T0 + 400 * DAY, false).await;
            assert_eq!(real.tokens_destroyed, 1);
            // tok_gone held nothing but its token: it goes with it, and both say so (the run
            // removed it and said 0; review)
            assert_eq!(
                (dry.subjects_removed, real.subjects_removed),
                (1, 1),
                "{dry:?} {real:?}"
            );
            assert_eq!(count().await, 1, "the held one stays");
            let entries = vault.all_audit_entries().await;
            assert!(
                entries
                    .iter()
                    .any(|e| e.entry.contains("\"tokens_destroyed\":\"1\"") && !e.entry.contains("+44")),
                "audited, without the value"
            );
            // Re-review 97: a subject whose last record expired kept a token of a purpose
            // holding it for years; removed with its key, the token died unaudited. A subject
            // goes only when it holds nothing, tokens included.
            let s = SubjectId::parse("tok_long").unwrap();
            consent(&vault, &admin, &s, "analytics", true, T0).await;
            create(&vault, &admin, &s, "analytics", T0, &[("email", "l@example.com")]).await;
            let long = TokenizeRequest {
                purpose: "tax_records".into(),
                field: "name".into(),
                values: vec!["Long Kept".into()],
                ..req("tok_long")
            };
            let token = vault
                .tokenize(&admin, Timestamp(T0), &long, false)
                .await
                .unwrap()
                .remove(0);
            let dry = run(&vault, T0 + 800 * DAY, true).await;
            let report = run(&vault, T0 + 800 * DAY, false).await;
            assert_eq!(report.subjects_removed, 0, "{report:?}");
            assert_eq!(
                dry.subjects_removed, 0,
                "the token keeps it (a dry run said 1; review): {dry:?}"
            );
            let open = custodia_types::DetokenizeRequest {
                purpose: "tax_records".into(),
                tokens: vec![token],
            };
            let opened = vault
                .detokenize(&admin, Timestamp(T0 + 800 * DAY), &open)
                .await
                .unwrap();
            assert_eq!(opened.values[0].value.as_deref(), Some("Long Kept"));
        }

        /// Re-review of 2026-12-06 (helper-96): a role reading emails as tokens renewed each
        /// token's time at every read, so a value a hold kept past its expiry (analytics: 13
        /// months from collection) opened again through detokenize. A read renews nothing: the
        /// token's time runs from the value's collection.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reading_tokens_keeps_no_value_past_its_expiry() {
            use custodia_types::DetokenizeRequest;
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("analysed").unwrap();
            consent(&vault, &admin, &s, "analytics", true, T0).await;
            let id = create(&vault, &admin, &s, "analytics", T0, &[("email", "a@example.com")]).await;
            let hold = NewHold {
                subject_id: Some("analysed".into()),
                collection: None,
                reason: "claim 2026-303".into(),
            };
            vault.place_hold(&admin, Timestamp(T0), &hold).await.unwrap();
            let analyst = Principal {
                id: "prn_analyst".into(),
                name: "analyst".into(),
                roles: vec!["data_science".into()],
                ..admin.clone()
            };
            let read = |at: i64| {
                let (vault, analyst, s, id) = (&vault, &analyst, &s, &id);
                async move {
                    let call = Call::new(analyst, "analytics", Timestamp(at));
                    let record = vault.get_record(&call, s, "customers", id, None).await.unwrap();
                    record.fields["email"].clone()
                }
            };
            let token = read(T0 + DAY).await;
            assert_eq!(read(T0 + 360 * DAY).await, token, "a deterministic token");
            let later = T0 + 420 * DAY;
            run(&vault, later, false).await;
            let req = DetokenizeRequest {
                purpose: "analytics".into(),
                tokens: vec![token],
            };
            let opened = vault.detokenize(&admin, Timestamp(later), &req).await.unwrap();
            assert_eq!(opened.values[0].value, None, "expired with the value, held or not");
        }

        /// Re-review of 2026-12-06 (helper-95): a value a legal hold kept past its expiry came
        /// back into use with the subject's next activity (a rule from the last activity) or
        /// any write. An expiry that has passed never moves later.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn activity_after_the_expiry_brings_back_nothing_a_hold_kept() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("idle").unwrap();
            let id = create(
                &vault,
                &admin,
                &s,
                "customer_support",
                T0,
                &[("email", "i@example.com")],
            )
            .await;
            let hold = NewHold {
                subject_id: Some("idle".into()),
                collection: None,
                reason: "claim 2026-301".into(),
            };
            vault.place_hold(&admin, Timestamp(T0), &hold).await.unwrap();
            let later = T0 + 400 * DAY;
            run(&vault, later, false).await;
            assert_eq!(read(&vault, &admin, &s, &id, "customer_support", later).await, None);
            vault
                .report_activity(&Call::new(&admin, "customer_support", Timestamp(later)), &s)
                .await
                .unwrap();
            create(&vault, &admin, &s, "order_fulfillment", later, &[("name", "Ida")]).await;
            consent(&vault, &admin, &s, "marketing_email", true, later).await;
            assert_eq!(
                read(&vault, &admin, &s, &id, "customer_support", later + 1).await,
                None,
                "not revived by an activity, a write or a ledger change"
            );
        }

        /// Review of issue 13 (2026-12-06): a record's `updated_at` moved when another purpose
        /// wrote a value the reader may not see, telling it that, and when. A read dates what
        /// it shows.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_read_dates_only_what_it_may_see() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("u1").unwrap();
            let id = create(&vault, &admin, &s, "order_fulfillment", T0, &[("name", "Una")]).await;
            consent(&vault, &admin, &s, "marketing_email", true, T0).await;
            patch(
                &vault,
                &admin,
                &s,
                &id,
                "marketing_email",
                T0 + DAY,
                &[("email", "u@example.com")],
            )
            .await;
            let dated = |purpose: &'static str| {
                let (vault, admin, s, id) = (&vault, &admin, &s, &id);
                async move {
                    let call = Call::new(admin, purpose, Timestamp(T0 + 2 * DAY));
                    let record = vault.get_record(&call, s, "customers", id, None).await.unwrap();
                    (record.fields.into_keys().collect::<Vec<_>>(), record.updated_at)
                }
            };
            assert_eq!(
                dated("order_fulfillment").await,
                (vec!["name".to_owned()], Timestamp(T0).to_rfc3339())
            );
            assert_eq!(
                dated("marketing_email").await,
                (vec!["email".to_owned()], Timestamp(T0 + DAY).to_rfc3339())
            );
        }

        /// Review of issue 13 (2026-12-06): a `null` sent under a purpose that sees nothing of a
        /// record answered 204 where a record that is not there answers 404: the record's
        /// existence told to a purpose a read and a deletion tell nothing.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_change_of_nothing_in_a_record_out_of_sight_is_not_found() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("u2").unwrap();
            let id = create(&vault, &admin, &s, "order_fulfillment", T0, &[("name", "Uno")]).await;
            consent(&vault, &admin, &s, "marketing_email", true, T0).await;
            let nothing: BTreeMap<String, Option<String>> = [("email".to_owned(), None)].into();
            let call = Call::new(&admin, "marketing_email", Timestamp(T0));
            let err = vault
                .patch_record(&call, &s, "customers", &id, &nothing)
                .await
                .unwrap_err();
            let missing = RecordId::parse("rec_00000000000000000000000000000000").unwrap();
            let absent = vault
                .patch_record(&call, &s, "customers", &missing, &nothing)
                .await
                .unwrap_err();
            assert_eq!((err.code, err.message), (absent.code, absent.message));
            // the purpose that holds the record still may (nothing to change is no error)
            let call = Call::new(&admin, "order_fulfillment", Timestamp(T0));
            vault.patch_record(&call, &s, "customers", &id, &nothing).await.unwrap();
        }

        /// The issue's scenario on a moved clock: consent withdrawn ends the marketing binding
        /// (a marketing-only value goes after the grace day, the same email held for orders
        /// stays); five years on the order data is gone and the tax fields stay; a held subject
        /// and a restricted one are kept; a subject with nothing left loses its keys.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_sweeper_destroys_what_no_purpose_justifies_and_keeps_the_rest() {
            let (_dir, vault, admin) = vault().await;
            let (a, b, c, d) = (
                SubjectId::parse("a").unwrap(),
                SubjectId::parse("b").unwrap(),
                SubjectId::parse("c").unwrap(),
                SubjectId::parse("d").unwrap(),
            );
            let order = [
                ("email", "a@example.com"),
                ("name", "Ann"),
                ("shipping_address", "1 Road"),
            ];
            let a_order = create(&vault, &admin, &a, "order_fulfillment", T0, &order).await;
            consent(&vault, &admin, &a, "marketing_email", true, T0).await;
            patch(
                &vault,
                &admin,
                &a,
                &a_order,
                "marketing_email",
                T0,
                &[("email", "a@example.com")],
            )
            .await;
            patch(
                &vault,
                &admin,
                &a,
                &a_order,
                "tax_records",
                T0,
                &[("name", "Ann"), ("shipping_address", "1 Road")],
            )
            .await;
            let a_news = create(
                &vault,
                &admin,
                &a,
                "marketing_email",
                T0,
                &[("email", "a+news@example.com")],
            )
            .await;
            // b: orders only; c: orders, held; d: orders, restricted.
            let b_order = create(&vault, &admin, &b, "order_fulfillment", T0, &order).await;
            let c_order = create(&vault, &admin, &c, "order_fulfillment", T0, &order).await;
            let d_order = create(&vault, &admin, &d, "order_fulfillment", T0, &order).await;
            let hold = NewHold {
                subject_id: Some("c".into()),
                collection: None,
                reason: "case 42".into(),
            };
            vault.place_hold(&admin, Timestamp(T0), &hold).await.unwrap();
            let restrict = RestrictionRequest {
                restricted: true,
                method: "email".into(),
            };
            vault
                .record_restriction(&admin, Timestamp(T0), &d, &restrict)
                .await
                .unwrap();

            // Nothing is due the next day.
            let w = T0 + 10 * DAY;
            consent(&vault, &admin, &a, "marketing_email", false, w).await;
            let report = run(&vault, w + DAY / 2, false).await;
            assert_eq!(report.bindings_ended, 0, "{report:?}");
            assert_eq!(
                read(&vault, &admin, &a, &a_news, "marketing_email", w + 1).await,
                None,
                "unusable at once"
            );

            // The grace day over: the marketing bindings end; the newsletter-only email goes,
            // the order email stays for orders.
            let dry = run(&vault, w + 2 * DAY, true).await;
            let report = run(&vault, w + 2 * DAY, false).await;
            assert_eq!(
                (report.bindings_ended, report.values_destroyed, report.records_destroyed),
                (2, 1, 1),
                "{report:?}"
            );
            assert_eq!(
                destroyed(&dry),
                destroyed(&report),
                "the dry run said exactly what the run did"
            );
            assert!(
                report
                    .by_rule
                    .iter()
                    .all(|l| l.purpose == "marketing_email" && l.rule == "consent withdrawn + 1d"),
                "{report:?}"
            );
            assert_eq!(
                read(&vault, &admin, &a, &a_order, "order_fulfillment", w + 3 * DAY)
                    .await
                    .unwrap(),
                ["email", "name", "shipping_address"]
            );
            assert_eq!(
                read(&vault, &admin, &a, &a_news, "order_fulfillment", w + 3 * DAY).await,
                None
            );

            // Five years on: order data gone but for what tax keeps; held and restricted kept.
            let five = Period::Years(5).after(T0);
            // (dry runs first, in pages of every size: a value's bindings, a record's values
            // and a subject's records fall due in several pages, and what dies with the last
            // of them is counted as a run counts it)
            let mut dry = Vec::new();
            for batch in [1, 2, 3, 5, 100] {
                dry.push((batch, run_in(&vault, five, true, batch).await));
            }
            let report = run(&vault, five, false).await;
            for (batch, dry) in dry {
                assert_eq!(
                    destroyed(&dry),
                    destroyed(&report),
                    "a dry run in pages of {batch} said what the run did"
                );
            }
            assert_eq!(report.kept_by_hold, 3, "{report:?}");
            assert_eq!(report.kept_by_restriction, 3, "{report:?}");
            assert_eq!(report.subjects_removed, 1, "b had nothing else: {report:?}");
            assert_eq!(
                read(&vault, &admin, &a, &a_order, "tax_records", five).await.unwrap(),
                ["name", "shipping_address"]
            );
            assert_eq!(
                read(&vault, &admin, &a, &a_order, "order_fulfillment", five).await,
                None
            );
            let mut reader = vault.store.reader().await.unwrap();
            assert!(
                reader.subjects().keys("b").await.unwrap().is_empty(),
                "b's keys went with its data"
            );
            assert_eq!(reader.retention().record_count("b").await.unwrap(), 0);
            assert_eq!(reader.retention().record_count("c").await.unwrap(), 1);
            assert_eq!(reader.retention().record_count("d").await.unwrap(), 1);
            assert!(!reader.subjects().keys("a").await.unwrap().is_empty());
            drop(reader);
            let _ = (b_order, c_order, d_order);
            // Eleven years on the tax fields go too, and a with them.
            let report = run(&vault, Period::Years(11).after(T0), false).await;
            assert_eq!(report.subjects_removed, 1, "{report:?}");
            assert!(
                vault
                    .store
                    .reader()
                    .await
                    .unwrap()
                    .subjects()
                    .keys("a")
                    .await
                    .unwrap()
                    .is_empty()
            );

            // Every destruction was audited with its rule, by the sweeper, at the real time.
            let entries = vault.all_audit_entries().await;
            let expiries: Vec<&str> = entries
                .iter()
                .filter(|e| e.index.action.as_deref() == Some("retention.expire"))
                .map(|e| e.entry.as_str())
                .collect();
            assert!(
                expiries.iter().any(|e| e.contains("\"rule\":\"2y from last_update\"")),
                "{expiries:?}"
            );
            assert!(
                expiries.iter().any(|e| e.contains("\"rule\":\"10y from collection\"")),
                "{expiries:?}"
            );
            assert!(
                expiries
                    .iter()
                    .all(|e| e.contains(SWEEPER_PRINCIPAL) && e.contains("\"as_of\"") && !e.contains("example.com"))
            );
            let removed: Vec<_> = entries
                .iter()
                .filter(|e| e.index.action.as_deref() == Some("retention.subject_removed"))
                .collect();
            assert_eq!(removed.len(), 2);
            assert!(
                removed.iter().all(|e| e.at == T0 + DAY),
                "dated at the real time, not the run's as-of"
            );
        }

        /// A write that raced a withdrawal (its binding made from the ledger before it, and
        /// committed after the withdrawal timed the subject's bindings) is timed again by the
        /// next run: its binding ends as of the withdrawal, not never.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_binding_written_past_a_withdrawal_is_ended_by_the_next_run() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("racer").unwrap();
            consent(&vault, &admin, &s, "marketing_email", true, T0).await;
            create(
                &vault,
                &admin,
                &s,
                "marketing_email",
                T0 + 1,
                &[("email", "pat@example.com")],
            )
            .await;
            // the withdrawal as the race leaves it: in the ledger, the live binding untouched
            let withdrawal = custodia_store::LedgerRow {
                seq: 0,
                subject_id: s.as_str().to_owned(),
                kind: crate::consent::KIND_CONSENT.to_owned(),
                purpose: Some("marketing_email".to_owned()),
                value: false,
                notice_version: None,
                method: "web_form".to_owned(),
                evidence: None,
                principal_id: admin.id.clone(),
                at: T0 + 2,
            };
            let seal = std::sync::Arc::clone(&vault.keys.access_seal);
            vault
                .store
                .write(move |mut tx| Box::pin(async move { tx.ledger().append(&withdrawal, &*seal).await }))
                .await
                .unwrap();
            let bindings = || async {
                vault
                    .store
                    .reader()
                    .await
                    .unwrap()
                    .retention()
                    .of_subject("racer")
                    .await
                    .unwrap()
            };
            let live = bindings().await;
            assert!(
                !live.is_empty() && live.iter().all(|b| b.binding.ended_at.is_none()),
                "{live:?}"
            );
            run(&vault, T0 + 3, true).await;
            let ended = bindings().await;
            assert!(
                ended
                    .iter()
                    .all(|b| b.binding.ended_at == Some(T0 + 2) && b.binding.expires_at == Some(T0 + 2 + DAY)),
                "{ended:?}"
            );
            // settled: the mark moved past it, and the next run has nothing to time again
            let mark = vault
                .store
                .reader()
                .await
                .unwrap()
                .meta()
                .get(LEDGER_MARK)
                .await
                .unwrap();
            assert!(mark.is_some());
            assert_eq!(vault.retime_after_ledger(Timestamp(T0 + DAY)).await.unwrap(), 0);
        }

        /// A run stopped between batches (here: its later batches not run yet) leaves whole
        /// batches done; the next run finishes the rest, and nothing is destroyed twice.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_run_resumes_where_a_stopped_one_left_off() {
            let (_dir, vault, admin) = vault().await;
            for i in 0..7 {
                let s = SubjectId::parse(&format!("p{i}")).unwrap();
                create(
                    &vault,
                    &admin,
                    &s,
                    "payment",
                    T0,
                    &[("name", "Pat"), ("card_number", "4242424242424242")],
                )
                .await;
            }
            let as_of = T0 + 400 * DAY;
            let mut batches = 0;
            let opts = SweepOptions {
                as_of: Timestamp(as_of),
                now: Timestamp(as_of),
                dry_run: false,
                batch: 4,
            };
            // The first batch is applied before progress is told; a panic there stands for a
            // process killed after it.
            let vault = std::sync::Arc::new(vault);
            let v = std::sync::Arc::clone(&vault);
            let killed =
                tokio::spawn(async move { v.sweep(&opts, &mut |_| panic!("killed after the first batch")).await })
                    .await;
            assert!(killed.is_err());
            let mut reader = vault.store.reader().await.unwrap();
            let left = reader.retention().count_due(as_of).await.unwrap();
            assert_eq!(left, 10, "two of fourteen bindings per record, four ended: {left}");
            drop(reader);
            let report = vault.sweep(&opts, &mut |_| batches += 1).await.unwrap();
            assert_eq!(
                (report.bindings_ended, report.values_destroyed, report.subjects_removed),
                (10, 10, 5)
            );
            assert_eq!(batches, 3);
            assert_eq!(
                vault
                    .store
                    .reader()
                    .await
                    .unwrap()
                    .retention()
                    .count_due(i64::MAX)
                    .await
                    .unwrap(),
                0
            );
        }

        /// A hold placed after a batch was planned wins: the batch's transaction refuses the
        /// plan (to be judged again), and the next judgement keeps the held subject.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_hold_placed_after_the_plan_keeps_the_batch() {
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("late").unwrap();
            create(
                &vault,
                &admin,
                &s,
                "payment",
                T0,
                &[("name", "Lee"), ("card_number", "4242424242424242")],
            )
            .await;
            let as_of = T0 + 400 * DAY;
            let opts = SweepOptions {
                as_of: Timestamp(as_of),
                now: Timestamp(as_of),
                dry_run: false,
                batch: 10,
            };
            let page = vault
                .store
                .reader()
                .await
                .unwrap()
                .retention()
                .due(as_of, None, 10)
                .await
                .unwrap();
            assert_eq!(page.len(), 2);
            let plan = vault.plan(&page, &opts, &BTreeSet::new()).await.unwrap();
            assert_eq!(plan.endings.len(), 2);
            let hold = NewHold {
                subject_id: Some("late".into()),
                collection: None,
                reason: "case 9".into(),
            };
            vault.place_hold(&admin, Timestamp(as_of), &hold).await.unwrap();
            assert!(matches!(vault.apply(plan).await, Err(StoreError::Conflict(_))));
            let report = vault.sweep(&opts, &mut |_| {}).await.unwrap();
            assert_eq!((report.bindings_ended, report.kept_by_hold), (0, 2), "{report:?}");
            assert_eq!(
                vault
                    .store
                    .reader()
                    .await
                    .unwrap()
                    .retention()
                    .record_count("late")
                    .await
                    .unwrap(),
                1
            );
        }

        /// The holes a hostile review found stay closed: a token handed out under one purpose
        /// does not detokenize under another; a purpose holding nothing of a value cannot
        /// replace it (nor destroy it through two calls); a hold keeps values from being
        /// replaced; what survived an erasure gains no binding from a guess; a restriction
        /// leaves only exempt purposes' values in use; an expired binding written again starts
        /// again; a destroyed value's tokens go with it.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn hostile_review_holes_stay_closed() {
            use custodia_types::{DetokenizeRequest, TokenizeRequest};
            let (_dir, vault, admin) = vault().await;
            let s = SubjectId::parse("h1").unwrap();
            let now = T0;
            // 1. An analytics token does not open under orders or support.
            consent(&vault, &admin, &s, "analytics", true, now).await;
            let id = create(&vault, &admin, &s, "analytics", now, &[("email", "h@example.com")]).await;
            let req = TokenizeRequest {
                subject_id: "h1".into(),
                collection: "customers".into(),
                field: "email".into(),
                purpose: "analytics".into(),
                values: vec!["h@example.com".into()],
                kind: Some("random".into()),
                keep_last4: false,
            };
            let token = vault
                .tokenize(&admin, Timestamp(now), &req, false)
                .await
                .unwrap()
                .remove(0);
            for purpose in ["order_fulfillment", "customer_support"] {
                let req = DetokenizeRequest {
                    purpose: purpose.into(),
                    tokens: vec![token.clone()],
                };
                let opened = vault.detokenize(&admin, Timestamp(now), &req).await.unwrap();
                assert_eq!(opened.values[0].value, None, "{purpose}");
            }
            let own = DetokenizeRequest {
                purpose: "analytics".into(),
                tokens: vec![token.clone()],
            };
            let opened = vault.detokenize(&admin, Timestamp(now), &own).await.unwrap();
            assert_eq!(opened.values[0].value.as_deref(), Some("h@example.com"));
            // 2. A deletion that destroys the value takes the subject's tokens of that field.
            vault
                .delete_record(&Call::new(&admin, "analytics", Timestamp(now)), &s, "customers", &id)
                .await
                .unwrap();
            let opened = vault.detokenize(&admin, Timestamp(now), &own).await.unwrap();
            assert_eq!(opened.values[0].value, None, "the token went with its value");

            // 3. Marketing holds nothing of the order email: it may not replace it.
            let order = create(
                &vault,
                &admin,
                &s,
                "order_fulfillment",
                now,
                &[("email", "o@example.com"), ("name", "Ho")],
            )
            .await;
            consent(&vault, &admin, &s, "marketing_email", true, now).await;
            let junk = values(&[("email", "junk@example.com")])
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
            let err = vault
                .patch_record(
                    &Call::new(&admin, "marketing_email", Timestamp(now)),
                    &s,
                    "customers",
                    &order,
                    &junk,
                )
                .await
                .unwrap_err();
            assert_eq!(err.code, "value_held");
            // the refused comparison is logged like a denial (a writer sending guesses leaves
            // a trace of each)
            let log = vault.all_audit_entries().await;
            assert!(
                log.iter().any(|e| e.index.action.as_deref() == Some("record.update")
                    && e.index.decision.as_deref() == Some("deny")
                    && e.entry.contains("\"reason\":\"value_held\"")),
                "no deny entry for the refused write"
            );
            assert_eq!(
                read(&vault, &admin, &s, &order, "order_fulfillment", now)
                    .await
                    .unwrap(),
                ["email", "name"]
            );
            // 4. Under a hold even the holder may not replace a value.
            let hold = NewHold {
                subject_id: Some("h1".into()),
                collection: None,
                reason: "case 7".into(),
            };
            let placed = vault.place_hold(&admin, Timestamp(now), &hold).await.unwrap();
            let new_name = values(&[("name", "Other")])
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
            let err = vault
                .patch_record(
                    &Call::new(&admin, "order_fulfillment", Timestamp(now)),
                    &s,
                    "customers",
                    &order,
                    &new_name,
                )
                .await
                .unwrap_err();
            assert_eq!(err.code, "legal_hold");
            vault
                .release_hold(&admin, Timestamp(now), &placed.hold_id, "settled")
                .await
                .unwrap();

            // 6. Restricted: tax reads only what tax holds, not the orders' values.
            let r = SubjectId::parse("h2").unwrap();
            let rid = create(&vault, &admin, &r, "order_fulfillment", now, &[("name", "Hal")]).await;
            let restrict = RestrictionRequest {
                restricted: true,
                method: "email".into(),
            };
            vault
                .record_restriction(&admin, Timestamp(now), &r, &restrict)
                .await
                .unwrap();
            assert_eq!(read(&vault, &admin, &r, &rid, "tax_records", now).await, None);

            // 7. An expired binding written again starts again.
            let p = SubjectId::parse("h3").unwrap();
            let pay = [("name", "Pay"), ("card_number", "4242424242424242")];
            let pid = create(&vault, &admin, &p, "payment", now, &pay).await;
            let later = now + 400 * DAY;
            assert_eq!(read(&vault, &admin, &p, &pid, "payment", later).await, None, "expired");
            patch(&vault, &admin, &p, &pid, "payment", later, &pay).await;
            assert_eq!(
                read(&vault, &admin, &p, &pid, "payment", later).await.unwrap(),
                ["card_number", "name"]
            );

            // Activity reported for a subject with no data leaves nothing behind.
            let ghost = SubjectId::parse("ghost").unwrap();
            vault
                .report_activity(&Call::new(&admin, "order_fulfillment", Timestamp(later)), &ghost)
                .await
                .unwrap();
            let mut reader = vault.store.reader().await.unwrap();
            assert_eq!(reader.retention().last_activity("ghost").await.unwrap(), None);
            assert_eq!(reader.retention().last_activity("h3").await.unwrap(), Some(later));
        }
    }
}
