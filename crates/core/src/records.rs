//! Record use cases: create, list, get, patch, delete, search, and principal management.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use custodia_crypto::{DataKey, FieldContext};
use custodia_registry::{Field, OutputForm};
use custodia_store::{
    Activity, AuditRow, Binding, DEFAULT_KEY_CLASS, FieldValue, IndexEntry, NewRecord, PageOf, RecordCursor,
    RecordPatch, StoredField, StoredRecord, SubjectKeyRow, Target, UsableBy,
};
use custodia_types::{Record, SearchMatch};
use zeroize::Zeroizing;

use crate::audit::{Allowed, Shown};
use crate::call::Call;
use crate::gate::Grant;
use crate::keys::key_class;
use crate::tokens::{Minter, Pending, TokenKind};
use crate::{RecordId, SubjectId, Timestamp, Vault, VaultError, values};

/// The most fields one read may name.
const MAX_REQUESTED_FIELDS: usize = 64;

/// Which page of a search or a list: the records after record `after` (in record id order,
/// which is the order they were created: an id begins with its creation time), at most
/// `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Page {
    after: Option<RecordId>,
    limit: usize,
}

impl Page {
    /// Matches in a page of a search when the caller names no limit.
    pub const SEARCH_LIMIT: u32 = 100;
    /// Records in a page of a list when the caller names no limit: as many as a page holds,
    /// so that a list that fitted in one answer before pages existed still does.
    pub const LIST_LIMIT: u32 = Self::MAX_LIMIT;
    /// The most matches or records in a page.
    pub const MAX_LIMIT: u32 = 1000;
    /// About the most a page of a list answers (its records' values and names, as JSON
    /// writes them): a page ends at the record that passes it, whatever its `limit`, so
    /// that one read never holds a whole large list (a subject's 22,000 records of 16 KB,
    /// read by a dozen clients at once, held 4-5 GB when lists were read whole).
    pub const MAX_LIST_BYTES: usize = 4 << 20;

    /// A page of a search, checked: `after` must be a record id (the `next_after` of a
    /// previous page), `limit` from 1 to [`Self::MAX_LIMIT`] (default [`Self::SEARCH_LIMIT`]).
    pub fn search(after: Option<&str>, limit: Option<u32>) -> Result<Self, VaultError> {
        Self::new(after, limit.unwrap_or(Self::SEARCH_LIMIT))
    }

    /// A page of a list, checked as [`Self::search`]'s (default [`Self::LIST_LIMIT`]).
    pub fn list(after: Option<&str>, limit: Option<u32>) -> Result<Self, VaultError> {
        Self::new(after, limit.unwrap_or(Self::LIST_LIMIT))
    }

    /// Where the page starts in `collection`'s keyset (the cursor's time is the one its id
    /// begins with).
    pub(crate) fn cursor_in(&self, collection: &str) -> Option<RecordCursor> {
        self.after.as_ref().map(|id| RecordCursor {
            collection: collection.to_owned(),
            created_at: id.created_millis(),
            record_id: id.as_str().to_owned(),
        })
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    fn new(after: Option<&str>, limit: u32) -> Result<Self, VaultError> {
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(VaultError::bad_request(
                "invalid_page",
                format!("`limit` must be from 1 to {}", Self::MAX_LIMIT),
            ));
        }
        let after = after
            .map(|a| {
                RecordId::parse(a).map_err(|_| {
                    VaultError::bad_request(
                        "invalid_page",
                        "`after` must be the `next_after` of a previous page (rec_ and 32 hex digits)",
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            after,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }
}

/// A page of a subject's records in one collection, and the cursor of the next page (given
/// only when a next page holds a record the reader may see).
#[derive(Debug, Clone, Default)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next_after: Option<String>,
}

impl Vault {
    /// Stores a new record of `subject` in `collection`, collected for the call's purpose.
    #[tracing::instrument(skip_all)]
    pub async fn create_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<RecordId, VaultError> {
        let event = self.about(
            call.event("record.create").collection(collection).fields(fields.keys()),
            subject,
        )?;
        let allow = self.audit_row(&event, call.now, None)?;
        self.audited(event, call.now, async {
            Ok(Allowed::Written(
                self.insert_new_record(call, subject, collection, fields, allow).await?,
            ))
        })
        .await
    }

    async fn insert_new_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        fields: &BTreeMap<String, String>,
        allow: AuditRow,
    ) -> Result<RecordId, VaultError> {
        let record_id = RecordId::generate(call.now)?;
        // If a concurrent first write stored another key, seal again under that one. A key
        // that vanished under an existing subject was destroyed by an erasure: the write fails.
        for _ in 0..2 {
            let mut keys = SealingKeys::default();
            let record = self
                .new_record(call, subject, collection, fields, &record_id, &mut keys)
                .await?;
            match self.store.insert_record(record, Some(allow.clone())).await {
                Err(custodia_store::StoreError::SubjectKeyConflict) if keys.any_fresh() => continue,
                Err(custodia_store::StoreError::SubjectKeyConflict) => return Err(subject_erased()),
                other => other?,
            }
            return Ok(record_id);
        }
        Err(VaultError::internal(
            &"the subject's data key kept changing during a write",
        ))
    }

    /// A new record of `subject` in `collection` for the call's purpose, checked against the
    /// gate, the registry and the consent ledger, and sealed under the subject's key of the
    /// purpose's class (from `keys`, which holds the keys of one call's records).
    pub(crate) async fn new_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        fields: &BTreeMap<String, String>,
        record_id: &RecordId,
        keys: &mut SealingKeys,
    ) -> Result<NewRecord, VaultError> {
        let now = call.now;
        let grant = self.authorize(call, collection)?;
        self.refuse_if_read_only(collection).await?;
        if fields.is_empty() {
            return Err(VaultError::bad_request(
                "no_fields",
                "a record needs at least one field",
            ));
        }
        let checked = check_values(&grant, fields.iter().map(|(k, v)| (k, Some(v))))?;
        let state = self.ledger_permits(call, subject, grant.purpose).await?;
        refuse_limited(&state, &grant, &checked)?;
        let binding = crate::retention::new_binding(grant.purpose, now.0, now.0, &state);
        let class = key_class(grant.purpose);
        let (key, sealed_under, fresh_key) = keys.get(self, subject, &class, now).await?;
        let (set, index) = self.seal(&grant, (key, &class), subject, record_id, &checked, &binding)?;
        Ok(NewRecord {
            sealed_under,
            fresh_key,
            record_id: record_id.as_str().to_owned(),
            subject_id: subject.as_str().to_owned(),
            collection: collection.to_owned(),
            now: now.0,
            fields: set,
            index,
            activity: Some(self.activity(subject, now)),
        })
    }

    /// A page of the records of `subject` in `collection`, as the call's purpose may see
    /// them, oldest first: at most `page.limit` after `page.after`, ending early at the
    /// record that passes [`Page::MAX_LIST_BYTES`].
    #[tracing::instrument(skip_all)]
    pub async fn list_records(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        requested: Option<&[String]>,
        page: &Page,
        meter: Meter<'_>,
    ) -> Result<RecordPage, VaultError> {
        let mut event = call
            .event("record.list")
            .collection(collection)
            .detail("limit", page.limit.to_string());
        // (with the count of records shown, the entry tells which records a page disclosed)
        if let Some(after) = &page.after {
            event = event.detail("after", after.as_str());
        }
        let event = self.about(event.fields(requested.unwrap_or_default()), subject)?;
        self.audited(event, call.now, async {
            let grant = self.authorize(call, collection)?;
            let mut selected = select(&grant, requested)?;
            let state = self.ledger_permits_held(call, subject, grant.purpose).await?;
            selected.retain(|(field, _)| !state.hides(grant.purpose, field));
            let stored_keys = self.store.reader().await?.subjects().keys(subject.as_str()).await?;
            let mut keys = OpenKeys::new(self, &grant, &stored_keys, &state, call.now);
            let mut tokens = Vec::new();
            let mut records = Vec::new();
            let mut answered = 0;
            let mut cursor = page.cursor_in(collection);
            // The list is read in chunks (one read holds one chunk of values at a time) until
            // the page is full and one more record the purpose may see is found: `next_after`
            // is given only when a next page holds a record, so it never hints at records
            // held for other purposes alone. The database passes over the records no value of
            // which is bound to a purpose this one may read through (else a read took time,
            // record by record, over what other purposes hold: seconds for 22,000, which told
            // they were there). A chunk holds about a page's bytes at the largest record seen:
            // a few records first, up to [`LIST_CHUNK`] of small ones (64 records of a
            // megabyte each would be held at once otherwise).
            let usable = Usable::new(&self.registry, &grant, Some(&state));
            let mut chunk = (page.limit + 1).min(FIRST_LIST_CHUNK);
            let mut largest = 1;
            let mut more = false;
            'read: loop {
                let stored = self
                    .store
                    .reader()
                    .await?
                    .records()
                    .page_of_subject(PageOf {
                        subject_id: subject.as_str(),
                        collection: Some(collection),
                        usable_by: Some(usable.at(call.now)),
                        after: cursor.as_ref(),
                        limit: i64::try_from(chunk).unwrap_or(i64::MAX),
                    })
                    .await?;
                cursor = stored.last().map(RecordCursor::after);
                largest = stored.iter().map(stored_bytes).fold(largest, usize::max);
                // A record holding no value this purpose may use (erased, expired, or held for
                // other purposes alone) is not shown at all: left out before any is opened, so
                // that the tokens drawn for the others go to the places they were drawn for.
                for r in &stored {
                    if !keys.may_see(r) {
                        continue;
                    }
                    if records.len() == page.limit || answered > Page::MAX_LIST_BYTES {
                        more = true;
                        break 'read;
                    }
                    // what the record holds in the answer, asked as each is opened (counted
                    // from its stored bytes, values of quotes, written twice in JSON, let a
                    // third more pages in than the budget holds)
                    let record = self.open_record(&grant, &mut keys, r, &selected, (records.len(), &mut tokens))?;
                    let weight = answer_weight(&record);
                    meter(weight)?;
                    answered += weight;
                    records.push(record);
                }
                if stored.len() < chunk {
                    break;
                }
                chunk = (Page::MAX_LIST_BYTES / largest).clamp(1, LIST_CHUNK);
            }
            self.vault_tokens(call, subject, keys, tokens, &mut records).await?;
            let shown = shown(&selected, &records, true);
            let next_after = if more {
                records.last().map(|r| r.record_id.clone())
            } else {
                None
            };
            Ok(Allowed::Shown(RecordPage { records, next_after }, shown))
        })
        .await
    }

    /// One record, as the call's purpose may see it.
    #[tracing::instrument(skip_all)]
    pub async fn get_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        requested: Option<&[String]>,
    ) -> Result<Record, VaultError> {
        let event = call.event("record.read").collection(collection);
        let event = self.about(event.fields(requested.unwrap_or_default()), subject)?;
        self.audited(event, call.now, async {
            let grant = self.authorize(call, collection)?;
            let mut selected = select(&grant, requested)?;
            let state = self.ledger_permits_held(call, subject, grant.purpose).await?;
            selected.retain(|(field, _)| !state.hides(grant.purpose, field));
            let found = self
                .store
                .reader()
                .await?
                .records()
                .one(target(subject, collection, record_id))
                .await?
                .ok_or_else(not_found)?;
            let stored = found.records.first().ok_or_else(not_found)?;
            let mut keys = OpenKeys::new(self, &grant, &found.keys, &state, call.now);
            let mut tokens = Vec::new();
            let record = self.open_record(&grant, &mut keys, stored, &selected, (0, &mut tokens))?;
            if !keys.may_see(stored) {
                return Err(not_found().into());
            }
            let mut records = [record];
            self.vault_tokens(call, subject, keys, tokens, &mut records).await?;
            let [record] = records;
            let shown = shown(&selected, std::slice::from_ref(&record), false);
            Ok(Allowed::Shown(record, shown))
        })
        .await
    }

    /// The access gate alone: whether `principal` may read `requested` fields (or the
    /// purpose's default fields) of `subject` in `collection` under `purpose`, and in which
    /// form, with nothing decrypted and nothing audited. For benchmarks and pre-checks.
    pub async fn check_access(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        requested: Option<&[String]>,
    ) -> Result<Vec<(String, OutputForm)>, VaultError> {
        let grant = self.authorize(call, collection)?;
        let selected = select(&grant, requested)?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        Ok(selected.into_iter().map(|(f, form)| (f.name.clone(), form)).collect())
    }

    /// Changes fields of a record; a `None` value erases that field.
    #[tracing::instrument(skip_all)]
    pub async fn patch_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        fields: &BTreeMap<String, Option<String>>,
    ) -> Result<(), VaultError> {
        let event = self.about(
            call.event("record.update").collection(collection).fields(fields.keys()),
            subject,
        )?;
        let allow = self.audit_row(&event, call.now, None)?;
        self.audited(event, call.now, async {
            self.update_record(call, subject, collection, record_id, fields, allow)
                .await?;
            Ok(Allowed::Written(()))
        })
        .await
    }

    async fn update_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        fields: &BTreeMap<String, Option<String>>,
        allow: AuditRow,
    ) -> Result<(), VaultError> {
        let now = call.now;
        let grant = self.authorize(call, collection)?;
        self.refuse_if_read_only(collection).await?;
        if fields.is_empty() {
            return Err(VaultError::bad_request("no_fields", "a patch needs at least one field"));
        }
        let checked = check_values(&grant, fields.iter().map(|(k, v)| (k, v.as_ref())))?;
        // a patch that only sets fields to null lets go of values: no consent withdrawn
        // stops that (see `SubjectState::permits_removal`)
        let state = if checked.iter().all(|c| c.value.is_none()) {
            self.ledger_permits_removal_held(call, subject, grant.purpose).await?
        } else {
            self.ledger_permits_held(call, subject, grant.purpose).await?
        };
        refuse_limited(&state, &grant, &checked)?;
        let class = key_class(grant.purpose);
        let (key, sealed_under, fresh) = self.keys.sealing_key(&self.store, subject, &class, now).await?;
        let binding = crate::retention::new_binding(grant.purpose, now.0, now.0, &state);
        let (set, index) = self.seal(&grant, (&key, &class), subject, record_id, &checked, &binding)?;
        // The subject's keys, to tell a value written again unchanged from a new one.
        let opened = self.subject_keys(subject).await?;
        let change = Change {
            purpose: Arc::clone(&self.registry),
            purpose_name: grant.purpose.name.clone(),
            state,
            now: now.0,
            set,
            index,
            unbind: checked
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| c.field.name.clone())
                .collect(),
            keys: opened,
            class,
            plain: checked
                .iter()
                .filter_map(|c| Some((c.field.name.clone(), c.value.clone()?)))
                .collect(),
            deletes: grant.may_delete(),
        };
        let activity = self.activity(subject, now);
        let name = RecordName::new(subject, collection, record_id);
        let updated = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let t = name.target();
                    // the subject's keys before the record (as an erasure locks them): a
                    // change waiting for an erasure finds its key destroyed, not a deadlock
                    tx.subjects()
                        .lock_keys(t.subject_id, custodia_store::KeyLock::Share)
                        .await?;
                    let Some(held) = tx.records().fields_for_change(t).await? else {
                        return Ok(Err(Refusal::Missing));
                    };
                    let on_hold = !tx.retention().holds_on(t.subject_id, &[t.collection]).await?.is_empty();
                    let (patch, destroyed) = match change.patch(&name, &held, on_hold) {
                        Ok(patch) => patch,
                        Err(refusal) => return Ok(Err(refusal)),
                    };
                    // (after the change is decided: a refused change leaves no key drawn for it)
                    tx.subjects().seal_under(&sealed_under, fresh).await?;
                    let erased = tx.records().update(t, &patch).await?;
                    for field in &destroyed {
                        tx.tokens().erase_field(t.subject_id, t.collection, field).await?;
                    }
                    tx.retention().record_activity(&activity).await?;
                    tx.audit().append(&[allow]).await?;
                    Ok(Ok(!destroyed.is_empty() || erased.is_some_and(|e| e.fields > 0)))
                })
            })
            .await;
        match updated {
            Ok(outcome) => {
                if outcome.map_err(Refusal::into_error)? {
                    // the old values' pages out of the WAL too
                    self.store.want_wal_purge();
                }
                Ok(())
            }
            Err(custodia_store::StoreError::SubjectKeyConflict) => Err(subject_erased()),
            Err(e) => Err(e.into()),
        }
    }

    /// The subject's stored keys, unwrapped, by class.
    async fn subject_keys(&self, subject: &SubjectId) -> Result<Vec<(String, DataKey)>, VaultError> {
        let rows = self.store.reader().await?.subjects().keys(subject.as_str()).await?;
        rows.iter()
            .map(|row| Ok((row.key_class.clone(), self.keys.unwrap(row)?)))
            .collect()
    }

    /// The subject's activity at `now`: the rules that run from it start again.
    pub(crate) fn activity(&self, subject: &SubjectId, now: Timestamp) -> Activity {
        let renew = self
            .registry
            .purposes
            .values()
            .filter_map(|p| {
                let r = p.retention?;
                (r.from == custodia_registry::RetentionStart::LastActivity)
                    .then(|| (p.name.clone(), r.period.after(now.0)))
            })
            .collect();
        Activity {
            subject_id: subject.as_str().to_owned(),
            at: now.0,
            renew,
        }
    }

    /// Deletes a record with all its fields and index entries.
    #[tracing::instrument(skip_all)]
    pub async fn delete_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
    ) -> Result<(), VaultError> {
        let event = self.about(call.event("record.delete").collection(collection), subject)?;
        let allow = self.audit_row(&event, call.now, None)?;
        self.audited(event, call.now, async {
            self.remove_record(call, subject, collection, record_id, allow).await?;
            Ok(Allowed::Written(()))
        })
        .await
    }

    async fn remove_record(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        allow: AuditRow,
    ) -> Result<(), VaultError> {
        let grant = self.authorize(call, collection)?;
        self.refuse_if_read_only(collection).await?;
        grant.may_delete()?;
        self.ledger_permits_removal_held(call, subject, grant.purpose).await?;
        let purpose = grant.purpose.name.clone();
        let name = RecordName::new(subject, collection, record_id);
        let deletion = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let t = name.target();
                    let Some(held) = tx.records().fields_for_change(t).await? else {
                        return Ok(Err(Refusal::Missing));
                    };
                    // The purpose lets go of every value it holds in the record; values other
                    // purposes hold stay for them.
                    let unbind: Vec<(String, String)> = held
                        .iter()
                        .filter(|f| f.bindings.iter().any(|b| b.purpose == purpose))
                        .map(|f| (f.field.clone(), purpose.clone()))
                        .collect();
                    if unbind.is_empty() {
                        return Ok(Err(Refusal::Missing));
                    }
                    if !tx.retention().holds_on(t.subject_id, &[t.collection]).await?.is_empty() {
                        return Ok(Err(Refusal::Held));
                    }
                    let destroyed: Vec<&str> = held
                        .iter()
                        .filter(|f| f.bindings.len() == 1 && f.bindings.iter().all(|b| b.purpose == purpose))
                        .map(|f| f.field.as_str())
                        .collect();
                    for field in destroyed {
                        tx.tokens().erase_field(t.subject_id, t.collection, field).await?;
                    }
                    let patch = custodia_store::RecordPatch {
                        now: allow.at,
                        unbind,
                        ..custodia_store::RecordPatch::default()
                    };
                    let erased = tx.records().update(t, &patch).await?;
                    tx.audit().append(&[allow]).await?;
                    Ok(Ok(erased.is_some_and(|e| e.fields > 0)))
                })
            })
            .await?;
        if deletion.map_err(Refusal::into_error)? {
            // the destroyed values' pages out of the WAL too
            self.store.want_wal_purge();
        }
        Ok(())
    }

    /// Finds the records whose searchable `field` equals `value` (after normalization), a
    /// page at a time in record id order: at most `page.limit` matches after `page.after`,
    /// and the cursor of the next page when there are more.
    #[tracing::instrument(skip_all)]
    pub async fn search(
        &self,
        call: &Call<'_>,
        collection: &str,
        field: &str,
        value: &str,
        page: &Page,
    ) -> Result<(Vec<SearchMatch>, Option<String>), VaultError> {
        let event = call
            .event("record.search")
            .collection(collection)
            .fields([&field.to_owned()]);
        self.audited(event.clone(), call.now, async {
            let (matches, next) = self.find(call, collection, field, value, page).await?;
            // One entry per subject found, so that "who touched subject X" finds searches too.
            let mut subjects: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
            for m in &matches {
                *subjects.entry(m.subject_id.as_str()).or_default() += 1;
            }
            let about = subjects
                .into_iter()
                .map(|(s, n)| self.about(event.clone().detail("records", n.to_string()), &SubjectId::stored(s)?))
                .collect::<Result<Vec<_>, VaultError>>()?;
            Ok(Allowed::ReadAbout((matches, next), about))
        })
        .await
    }

    async fn find(
        &self,
        call: &Call<'_>,
        collection: &str,
        field: &str,
        value: &str,
        page: &Page,
    ) -> Result<(Vec<SearchMatch>, Option<String>), VaultError> {
        let grant = self.authorize(call, collection)?;
        let field_def = grant.declared_field(field)?;
        if !field_def.searchable {
            return Err(VaultError::unprocessable(
                "field_not_searchable",
                format!("field `{collection}.{field}` is not searchable (set searchable = true in the registry)"),
            )
            .with_field(field));
        }
        grant.may_search(field_def)?;
        let normalized =
            Zeroizing::new(values::normalize(field_def.field_type, value).map_err(|why| invalid(field, &why))?);
        let digest = self.keys.field_index(
            collection,
            field,
            &values::index_form(field_def.field_type, &normalized),
        )?;
        // Only values this purpose may use are found: the subject's ledger permits the
        // purpose, and a binding it may use holds the value (else a search would tell what a
        // read would not). The index is read in chunks until the page and one more match are
        // found, so that `next_after` is given only when a next page holds a match: a cursor
        // never names, nor hints at, a record this purpose may not see.
        let want = page.limit + 1;
        let chunk = want.max(64);
        let mut matches = Vec::with_capacity(want.min(128));
        let mut cursor = page.after.as_ref().map(|id| id.as_str().to_owned());
        loop {
            let mut reader = self.store.reader().await?;
            let hits = reader
                .records()
                .find_by_index(
                    collection,
                    field,
                    &digest,
                    cursor.as_deref(),
                    i64::try_from(chunk).unwrap_or(i64::MAX),
                )
                .await?;
            // The bindings of the chunk's records, in one query.
            let ids: Vec<&str> = hits.iter().map(|(_, record_id)| record_id.as_str()).collect();
            let bound = reader
                .retention()
                .of_records(&ids, custodia_store::BindingRows::Sealed)
                .await?;
            drop(reader);
            let mut bindings: HashMap<&str, Vec<&Binding>> = HashMap::new();
            for v in bound.iter().filter(|v| v.field == field_def.name) {
                bindings.entry(v.record_id.as_str()).or_default().push(&v.binding);
            }
            let exhausted = hits.len() < chunk;
            cursor = hits.last().map(|(_, record_id)| record_id.clone());
            for (subject_id, record_id) in &hits {
                let held = bindings.get(record_id.as_str()).map_or(&[][..], Vec::as_slice);
                if self.searchable(call, &grant, field_def, subject_id, held).await? {
                    matches.push(SearchMatch {
                        subject_id: subject_id.clone(),
                        record_id: record_id.clone(),
                    });
                    if matches.len() == want {
                        break;
                    }
                }
            }
            if exhausted || matches.len() == want {
                break;
            }
        }
        let next = (matches.len() > page.limit).then(|| {
            matches.truncate(page.limit);
            matches.last().map(|m| m.record_id.clone())
        });
        Ok((matches, next.flatten()))
    }

    /// Whether the call's purpose may find a record of `subject_id` by `field`, whose value
    /// there is held by `bindings`.
    async fn searchable(
        &self,
        call: &Call<'_>,
        grant: &Grant<'_>,
        field_def: &Field,
        subject_id: &str,
        bindings: &[&Binding],
    ) -> Result<bool, VaultError> {
        let subject = SubjectId::parse(subject_id)?;
        // a subject whose ledger was altered is found by no search (its own reads answer
        // `ledger_altered`): failing the whole search would tell the value is held, and hide
        // the other subjects' matches
        let state = match self.subject_state(&subject).await {
            Err(e) if e.code == crate::error::LEDGER_ALTERED => return Ok(false),
            state => state?,
        };
        if state.permits(grant.purpose).is_err() || state.hides(grant.purpose, field_def) {
            return Ok(false);
        }
        Ok(bindings
            .iter()
            .any(|b| crate::retention::usable(&self.registry, grant.purpose, b, &state, call.now.0)))
    }

    /// Seals each present value and computes index entries for searchable fields.
    fn seal(
        &self,
        grant: &Grant<'_>,
        (key, class): (&DataKey, &str),
        subject: &SubjectId,
        record_id: &RecordId,
        checked: &[CheckedValue<'_>],
        binding: &Binding,
    ) -> Result<(Vec<FieldValue>, Vec<IndexEntry>), VaultError> {
        let collection = grant.collection.name.as_str();
        let mut set = Vec::with_capacity(checked.len());
        let mut index = Vec::new();
        for c in checked {
            let Some(value) = &c.value else { continue };
            let ctx = FieldContext {
                collection,
                subject: subject.as_str(),
                record: record_id.as_str(),
                field: &c.field.name,
            };
            set.push(FieldValue {
                field: c.field.name.clone(),
                ciphertext: key.seal(&ctx, value.as_bytes())?,
                key_class: class.to_owned(),
                binding: Some(binding.clone()),
            });
            if c.field.searchable {
                let form = Zeroizing::new(values::index_form(c.field.field_type, value));
                let digest = self.keys.field_index(collection, &c.field.name, &form)?;
                index.push(IndexEntry {
                    field: c.field.name.clone(),
                    digest: digest.to_vec(),
                });
            }
        }
        Ok((set, index))
    }
}

/// A field checked against the purpose, with its normalized value (`None`: erase).
struct CheckedValue<'a> {
    field: &'a Field,
    value: Option<Zeroizing<String>>,
}

fn check_values<'a, 'v>(
    grant: &Grant<'a>,
    fields: impl Iterator<Item = (&'v String, Option<&'v String>)>,
) -> Result<Vec<CheckedValue<'a>>, VaultError> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let field = grant.declared_field(name)?;
        grant.may_write(field)?;
        let value = match value {
            Some(v) => Some(Zeroizing::new(
                values::normalize(field.field_type, v).map_err(|why| invalid(name, &why))?,
            )),
            None => None,
        };
        out.push(CheckedValue { field, value });
    }
    Ok(out)
}

fn select<'a>(grant: &Grant<'a>, requested: Option<&[String]>) -> Result<Vec<(&'a Field, OutputForm)>, VaultError> {
    if requested.is_some_and(|r| r.len() > MAX_REQUESTED_FIELDS) {
        return Err(VaultError::bad_request(
            "too_many_fields",
            format!("at most {MAX_REQUESTED_FIELDS} fields per read"),
        ));
    }
    grant.readable_fields(requested)
}

impl Vault {
    /// Decrypts the selected fields of a stored record and applies each field's output form;
    /// a token-form field is left for [`Vault::vault_tokens`] to fill in, its value added to
    /// `tokens` (with the record's place `slot`). Fields not selected are never decrypted.
    fn open_record(
        &self,
        grant: &Grant<'_>,
        keys: &mut OpenKeys<'_, '_>,
        stored: &StoredRecord,
        selected: &[(&Field, OutputForm)],
        (slot, tokens): (usize, &mut Vec<(usize, String, Pending)>),
    ) -> Result<Record, VaultError> {
        let collection = grant.collection.name.as_str();
        let mut fields = BTreeMap::new();
        // When a value the reader may see last changed: the record's own time also moves
        // with writes to values other purposes hold, which the reader must not learn of.
        let mut updated_at = stored.created_at;
        for (field, form) in selected {
            let Some(sf) = stored.fields.iter().find(|f| f.field == field.name) else {
                continue;
            };
            let Some(key) = keys.opening(sf)? else {
                continue;
            };
            updated_at = updated_at.max(sf.updated_at);
            let ctx = FieldContext {
                collection,
                subject: &stored.subject_id,
                record: &stored.record_id,
                field: &field.name,
            };
            let plain = Zeroizing::new(key.open(&ctx, &sf.ciphertext)?);
            let text = std::str::from_utf8(&plain).map_err(|_| VaultError::internal(&"stored value is not UTF-8"))?;
            let out = match form {
                OutputForm::Plain => text.to_owned(),
                OutputForm::Masked => values::mask(field.field_type, text),
                OutputForm::Token if keys.erased() => continue,
                OutputForm::Token => {
                    // a read renews nothing: the token's time runs from when the value was
                    // first collected (a role reading tokens would otherwise keep a value's
                    // token alive past the value's own expiry)
                    let collected = sf.bindings.iter().map(|b| b.bound_at).min().unwrap_or(sf.updated_at);
                    let pending =
                        Pending::new(collection, field, TokenKind::Deterministic, false, text).collected(collected);
                    tokens.push((slot, field.name.clone(), pending));
                    continue;
                }
                OutputForm::Denied => continue,
            };
            fields.insert(field.name.clone(), out);
        }
        Ok(Record {
            record_id: stored.record_id.clone(),
            fields,
            created_at: Timestamp(stored.created_at).to_rfc3339(),
            updated_at: Timestamp(updated_at).to_rfc3339(),
        })
    }

    /// Stores the deterministic tokens a read hands out (so they can be detokenized later) and
    /// puts them into `records`, provided the key they are sealed under is still the
    /// subject's (an erasure may have raced the read).
    async fn vault_tokens(
        &self,
        call: &Call<'_>,
        subject: &SubjectId,
        keys: OpenKeys<'_, '_>,
        tokens: Vec<(usize, String, Pending)>,
        records: &mut [Record],
    ) -> Result<(), VaultError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let Some((key, sealed_under)) = keys.into_default()? else {
            return Ok(());
        };
        let (places, pending): (Vec<_>, Vec<_>) = tokens.into_iter().map(|(slot, field, p)| ((slot, field), p)).unzip();
        let minter = Minter {
            keys: self.keys.tokens(),
            key,
            subject: subject.as_str().to_owned(),
            now: call.now,
            pending,
            purpose: call.purpose.to_owned(),
        };
        let drawn = self.store_tokens(minter, sealed_under, false, None).await?;
        for ((slot, field), token) in places.into_iter().zip(drawn) {
            if let Some(record) = records.get_mut(slot) {
                record.fields.insert(field, token);
            }
        }
        Ok(())
    }
}

/// What a read may open: a value some binding lets the read's purpose use now (its own, or
/// one of a purpose it is declared compatible with, not ended by the subject's ledger, not
/// expired; see `retention::usable`), under the subject's stored key of the value's class,
/// unwrapped on first use. A value whose key is gone (erased) is left out, and so is one held
/// only for other purposes (Art. 5(1)(b)): after an erasure only the purposes that survive it
/// hold anything, so a subject that comes back with a new `default` key sees none of it.
struct OpenKeys<'v, 'k> {
    vault: &'v Vault,
    purpose: &'v custodia_registry::Purpose,
    state: &'k crate::consent::SubjectState,
    now: i64,
    stored: &'k [SubjectKeyRow],
    opened: Vec<(&'k str, DataKey)>,
    /// The fields of the collection the purpose declares and the role may read in some form.
    readable: Vec<&'v str>,
}

impl<'v, 'k> OpenKeys<'v, 'k> {
    fn new(
        vault: &'v Vault,
        grant: &Grant<'v>,
        stored: &'k [SubjectKeyRow],
        state: &'k crate::consent::SubjectState,
        now: Timestamp,
    ) -> Self {
        let readable = readable_field_names(grant);
        Self {
            vault,
            purpose: grant.purpose,
            state,
            now: now.0,
            stored,
            opened: Vec::new(),
            readable,
        }
    }

    /// Whether the subject was erased: it has keys or records but no `default` key.
    fn erased(&self) -> bool {
        !self.stored.iter().any(|k| k.key_class == DEFAULT_KEY_CLASS)
    }

    /// Whether this read may open `field`: a binding lets its purpose use it, and the key of
    /// its class is stored.
    fn may_open(&self, field: &StoredField) -> bool {
        field
            .bindings
            .iter()
            .any(|b| crate::retention::usable(&self.vault.registry, self.purpose, b, self.state, self.now))
            && self.stored.iter().any(|k| k.key_class == field.key_class)
    }

    /// Whether a record is shown at all: it has a value of a field the purpose declares (and
    /// the role may read) that this read may open. A record of a purpose this one is
    /// compatible with, holding only fields this one does not declare, is not shown (it was,
    /// with no fields: its id and times told of another purpose's records).
    fn may_see(&self, record: &StoredRecord) -> bool {
        record
            .fields
            .iter()
            .any(|f| self.readable.contains(&f.field.as_str()) && self.may_open(f))
    }

    /// The key to open `field` with, if this read may.
    fn opening(&mut self, field: &StoredField) -> Result<Option<&DataKey>, VaultError> {
        if !self.may_open(field) {
            return Ok(None);
        }
        let class = field.key_class.as_str();
        let Some(row) = self.stored.iter().find(|k| k.key_class == class) else {
            return Ok(None);
        };
        let at = match self.opened.iter().position(|(c, _)| *c == class) {
            Some(at) => at,
            None => {
                self.opened.push((row.key_class.as_str(), self.vault.keys.unwrap(row)?));
                self.opened.len() - 1
            }
        };
        Ok(self.opened.get(at).map(|(_, key)| key))
    }

    /// The `default` key and its row (what tokens handed out by a read are sealed under).
    fn into_default(mut self) -> Result<Option<(DataKey, SubjectKeyRow)>, VaultError> {
        let Some(row) = self.stored.iter().find(|k| k.key_class == DEFAULT_KEY_CLASS) else {
            return Ok(None);
        };
        let key = match self.opened.iter().position(|(c, _)| *c == DEFAULT_KEY_CLASS) {
            Some(at) => self.opened.swap_remove(at).1,
            None => self.vault.keys.unwrap(row)?,
        };
        Ok(Some((key, row.clone())))
    }
}

/// Refuses a write of a sensitive field the subject's limit keeps from this purpose.
fn refuse_limited(
    state: &crate::consent::SubjectState,
    grant: &Grant<'_>,
    checked: &[CheckedValue<'_>],
) -> Result<(), VaultError> {
    // (a field set to null is let go of, which a limit never stops)
    match checked
        .iter()
        .find(|c| c.value.is_some() && state.hides(grant.purpose, c.field))
    {
        Some(c) => Err(VaultError::forbidden(
            "sensitive_use_limited",
            format!(
                "the subject limited the use of its sensitive personal information; purpose `{}` may not use field `{}`",
                grant.purpose.name, c.field.name
            ),
        )
        .with_field(c.field.name.as_str())),
        None => Ok(()),
    }
}

/// What a read may hold of the server's memory while it opens a page: asked for what each
/// record weighs in the answer as it is opened; an error (503 `busy`) ends the read.
pub type Meter<'m> = &'m (dyn Fn(usize) -> Result<(), VaultError> + Sync);

/// A meter that lets every read hold what it reads (a batch bounds its reads itself).
pub fn unmetered(_: usize) -> Result<(), VaultError> {
    Ok(())
}

/// The fields of the grant's collection its purpose declares and its role may read in some
/// form: a record is shown only for a value of one of them.
pub(crate) fn readable_field_names<'a>(grant: &Grant<'a>) -> Vec<&'a str> {
    grant
        .readable_fields(None)
        .map(|fields| fields.into_iter().map(|(f, _)| f.name.as_str()).collect())
        .unwrap_or_default()
}

/// What a read under a grant may use as far as the store can tell ([`UsableBy`]): the
/// purposes it reads through that the subject's ledger has not ended (`None`: as the registry
/// alone says) and the fields it may read. Made once for a list and for a batch's weighing
/// of it alike.
pub(crate) struct Usable<'a> {
    purposes: Vec<&'a str>,
    fields: Vec<&'a str>,
}

impl<'a> Usable<'a> {
    pub(crate) fn new(
        registry: &'a custodia_registry::Registry,
        grant: &Grant<'a>,
        state: Option<&crate::consent::SubjectState>,
    ) -> Self {
        Self {
            purposes: crate::retention::usable_purposes(registry, grant.purpose, state),
            fields: readable_field_names(grant),
        }
    }

    /// The store's filter at `now`.
    pub(crate) fn at(&self, now: Timestamp) -> UsableBy<'_> {
        UsableBy {
            purposes: &self.purposes,
            fields: &self.fields,
            at: now.0,
        }
    }
}

/// A stored record's values' bytes (sealed).
pub(crate) fn stored_bytes(record: &StoredRecord) -> usize {
    record.fields.iter().map(|f| f.ciphertext.len()).sum()
}

/// The most stored records a read of a list holds at once.
const LIST_CHUNK: usize = 64;

/// How many stored records a read of a list reads first, before it knows their size.
const FIRST_LIST_CHUNK: usize = 4;

/// What a record weighs in an answer beside its values: its id, times and the JSON around
/// them (`{"record_id":"rec_…","fields":{…},"created_at":"…","updated_at":"…"}`, 145 bytes),
/// as the memory of the record read holds them. Counted for every record: a list of 20,000
/// one-letter records weighs 3 MB, not 40 KB (counted by their values alone, such lists
/// answered 62 MiB under a batch's 16 MiB bound).
pub(crate) const RECORD_WEIGHT: u64 = 160;

/// What a value weighs in an answer beside its bytes: its name and the JSON around it.
pub(crate) const FIELD_WEIGHT: u64 = 24;

/// A record's weight in an answer: its values' and names' bytes as JSON writes them (a `"`
/// or `\\` twice: values of quotes answered twice their weight otherwise, and 6 bytes of
/// quotes and separators each), and [`RECORD_WEIGHT`].
pub(crate) fn answer_weight(record: &Record) -> usize {
    let json = |s: &str| s.len() + s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
    let fields: usize = record.fields.iter().map(|(k, v)| json(k) + json(v) + 6).sum();
    RECORD_WEIGHT as usize + fields
}

/// The bytes of `value` written as JSON (counted, not written): what it weighs in an answer.
pub(crate) fn json_weight<T: serde::Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // (writing to a counter fails only if the value cannot be written as JSON at all)
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}

/// What a read's entry says it returned: the fields, those masked or as tokens (so a blast
/// radius can tell what left the vault readable), and how many records when a list.
fn shown(selected: &[(&Field, OutputForm)], records: &[Record], list: bool) -> Shown {
    // Only fields some returned record has a value of: a field the purpose covers but the
    // record does not hold was not read.
    let held = |name: &str| records.iter().any(|r| r.fields.contains_key(name));
    let named = |form: Option<OutputForm>| -> Vec<String> {
        selected
            .iter()
            .filter(|(field, f)| form.is_none_or(|form| *f == form) && held(&field.name))
            .map(|(field, _)| field.name.clone())
            .collect()
    };
    Shown {
        fields: named(None),
        masked: named(Some(OutputForm::Masked)),
        tokens: named(Some(OutputForm::Token)),
        records: list.then_some(records.len()),
    }
}

/// A patch as decided before its transaction: the values sealed for the writing purpose, and
/// what is needed to tell, against the record as the transaction finds it, a value written
/// again unchanged (its binding renewed) from a new one (it replaces the old value and its
/// bindings).
struct Change {
    purpose: Arc<custodia_registry::Registry>,
    purpose_name: String,
    state: Arc<crate::consent::SubjectState>,
    now: i64,
    /// Each value sent, sealed under the writing purpose's key class, bound to it.
    set: Vec<FieldValue>,
    index: Vec<IndexEntry>,
    /// Fields the purpose lets go of (sent as `null`).
    unbind: Vec<String>,
    /// The subject's keys by class, to open stored values.
    keys: Vec<(String, DataKey)>,
    /// The writing purpose's key class.
    class: String,
    /// Each value sent, normalized, by field: what a stored value is compared with.
    plain: BTreeMap<String, Zeroizing<String>>,
    /// Whether the caller may delete under the purpose (`Grant::may_delete`): a change that
    /// lets go of every value the purpose holds in the record deletes the record as `DELETE`
    /// does, and needs the same grant (a role without `delete` set every field to null).
    deletes: Result<(), VaultError>,
}

/// Why a change to a record was refused.
enum Refusal {
    Missing,
    /// A value held by another purpose that survives erasure would be replaced.
    Retained(String),
    /// A legal hold covers the subject or the collection.
    Held,
    /// A new value for a field whose value only other purposes hold.
    HeldByOthers(String),
    /// The change would delete the record, which the caller may not.
    Denied(VaultError),
}

impl Refusal {
    fn into_error(self) -> VaultError {
        match self {
            Self::Missing => not_found(),
            Self::Retained(kept) => VaultError::new(
                crate::ErrorKind::Conflict,
                "record_retained",
                format!(
                    "the record holds a value kept for purpose `{kept}`, which survives erasure; only a change under `{kept}` may replace it"
                ),
            ),
            Self::Held => crate::holds::held_error(),
            Self::HeldByOthers(field) => VaultError::new(
                crate::ErrorKind::Conflict,
                "value_held",
                format!(
                    "field `{field}` holds a value other purposes hold and this purpose does not: it may not replace it (write the same value to hold it too, or change it under a purpose that holds it)"
                ),
            )
            .with_field(field.as_str()),
            Self::Denied(e) => e,
        }
    }
}

impl Change {
    /// The store patch for the record whose stored fields are `held` (`on_hold`: a legal hold
    /// covers the subject or the collection), and the fields whose old values it destroys
    /// (their tokens go too).
    fn patch(
        mut self,
        name: &RecordName,
        held: &[StoredField],
        on_hold: bool,
    ) -> Result<(RecordPatch, Vec<String>), Refusal> {
        let registry = Arc::clone(&self.purpose);
        let Some(purpose) = registry.purpose(&self.purpose_name) else {
            return Err(Refusal::Missing);
        };
        let mut patch = RecordPatch {
            now: self.now,
            ..RecordPatch::default()
        };
        let mut destroyed = Vec::new();
        let mut new_fields = std::collections::BTreeSet::new();
        for value in std::mem::take(&mut self.set) {
            let Some(stored) = held.iter().find(|f| f.field == value.field) else {
                new_fields.insert(value.field.clone());
                patch.set.push(value);
                continue;
            };
            let own = stored.bindings.iter().find(|b| b.purpose == purpose.name);
            // A value only purposes that survive erasure hold (what an erasure left, or what
            // such a purpose alone collected) is kept for them alone: no other purpose gains
            // it by writing the same value, and is told so whatever value it sends.
            let kept_alone = own.is_none()
                && !purpose.survives_erasure
                && !stored.bindings.is_empty()
                && stored
                    .bindings
                    .iter()
                    .all(|b| registry.purpose(&b.purpose).is_some_and(|p| p.survives_erasure));
            if !kept_alone && self.same_value(name, stored, &value) {
                // A live binding is renewed; an expired or ended one starts again (this write
                // collects the value again).
                let live = own.filter(|b| crate::retention::usable(&registry, purpose, b, &self.state, self.now));
                let bound_at = live.map_or(self.now, |b| b.bound_at);
                let binding = crate::retention::new_binding(purpose, bound_at, self.now, &self.state);
                // A purpose that survives erasure keeps the value under its own key class.
                let resealed = (purpose.survives_erasure && stored.key_class != self.class).then_some(value.key_class);
                patch.renew.push(custodia_store::Renewal {
                    field: value.field,
                    binding,
                    value: if resealed.is_some() {
                        value.ciphertext
                    } else {
                        stored.ciphertext.clone()
                    },
                    resealed,
                });
                continue;
            }
            // A new value: only a purpose holding the old one may replace it, never one kept
            // by a purpose that survives erasure, and nothing under a legal hold.
            let others: Vec<&str> = stored
                .bindings
                .iter()
                .filter(|b| b.purpose != purpose.name)
                .map(|b| b.purpose.as_str())
                .collect();
            if let Some(kept) = others
                .iter()
                .find(|p| registry.purpose(p).is_some_and(|p| p.survives_erasure))
            {
                return Err(Refusal::Retained((*kept).to_owned()));
            }
            if own.is_none() {
                return Err(Refusal::HeldByOthers(value.field.clone()));
            }
            if on_hold {
                return Err(Refusal::Held);
            }
            // The other purposes keep their bindings (the field is the same datum of the
            // subject); this purpose's starts again with the new value.
            destroyed.push(value.field.clone());
            new_fields.insert(value.field.clone());
            patch.renew.push(custodia_store::Renewal {
                field: value.field.clone(),
                binding: crate::retention::new_binding(purpose, self.now, self.now, &self.state),
                value: value.ciphertext.clone(),
                resealed: None,
            });
            patch.set.push(FieldValue { binding: None, ..value });
        }
        patch.index = std::mem::take(&mut self.index)
            .into_iter()
            .filter(|i| new_fields.contains(&i.field))
            .collect();
        for field in std::mem::take(&mut self.unbind) {
            let Some(stored) = held.iter().find(|s| s.field == field) else {
                continue;
            };
            if !stored.bindings.iter().any(|b| b.purpose == purpose.name) {
                continue;
            }
            if on_hold {
                return Err(Refusal::Held);
            }
            if stored.bindings.len() == 1 {
                destroyed.push(field.clone());
            }
            patch.unbind.push((field, purpose.name.clone()));
        }
        let holds_after = !patch.set.is_empty()
            || !patch.renew.is_empty()
            || held.iter().any(|stored| {
                stored.bindings.iter().any(|b| b.purpose == purpose.name)
                    && !patch.unbind.iter().any(|(field, _)| *field == stored.field)
            });
        if !patch.unbind.is_empty() && !holds_after {
            std::mem::replace(&mut self.deletes, Ok(())).map_err(Refusal::Denied)?;
        }
        // A change that changes nothing (a `null` for values the purpose does not hold) in a
        // record it sees nothing of is answered as for a record that is not there, as a read
        // or a deletion would be: a 204 would tell it that the record exists.
        let unchanged = patch.set.is_empty() && patch.renew.is_empty() && patch.unbind.is_empty();
        let sees = held.iter().any(|stored| {
            stored.bindings.iter().any(|b| {
                b.purpose == purpose.name || crate::retention::usable(&registry, purpose, b, &self.state, self.now)
            })
        });
        if unchanged && !sees {
            return Err(Refusal::Missing);
        }
        Ok((patch, destroyed))
    }

    /// Whether `stored` holds the value sent for `value`'s field (opened with the subject's
    /// key of its class; a value whose key is gone is not the same).
    fn same_value(&self, name: &RecordName, stored: &StoredField, value: &FieldValue) -> bool {
        let ctx = FieldContext {
            collection: &name.collection,
            subject: &name.subject,
            record: &name.record_id,
            field: &value.field,
        };
        let old = self
            .keys
            .iter()
            .find(|(c, _)| *c == stored.key_class)
            .and_then(|(_, key)| key.open(&ctx, &stored.ciphertext).ok())
            .map(Zeroizing::new);
        match (old, self.plain.get(&value.field)) {
            (Some(old), Some(new)) => constant_time_eq(&old, new.as_bytes()),
            _ => false,
        }
    }
}

/// Equality that takes the same time for every pair of equal-length inputs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The store's name of a record, owned (for a write job, which outlives the request's borrows).
struct RecordName {
    subject: String,
    collection: String,
    record_id: String,
}

impl RecordName {
    fn new(subject: &SubjectId, collection: &str, record_id: &RecordId) -> Self {
        Self {
            subject: subject.as_str().to_owned(),
            collection: collection.to_owned(),
            record_id: record_id.as_str().to_owned(),
        }
    }

    fn target(&self) -> Target<'_> {
        Target {
            subject_id: &self.subject,
            collection: &self.collection,
            record_id: &self.record_id,
        }
    }
}

fn target<'a>(subject: &'a SubjectId, collection: &'a str, record_id: &'a RecordId) -> Target<'a> {
    Target {
        subject_id: subject.as_str(),
        collection,
        record_id: record_id.as_str(),
    }
}

/// A write sealed under a key that an erasure destroyed meanwhile.
/// The data keys new records of one call are sealed under, by (subject, class): a subject's
/// stored key, or a fresh one made for its first record, which the call's later records of
/// that subject share (the first carries it into the store; the others find it there).
#[derive(Default)]
pub(crate) struct SealingKeys {
    held: std::collections::HashMap<(String, String), (DataKey, SubjectKeyRow, bool)>,
}

impl SealingKeys {
    /// The key to seal under, its row, and whether this record is the one to store it.
    async fn get(
        &mut self,
        vault: &Vault,
        subject: &SubjectId,
        class: &str,
        now: Timestamp,
    ) -> Result<(&DataKey, SubjectKeyRow, bool), VaultError> {
        use std::collections::hash_map::Entry;
        match self.held.entry((subject.as_str().to_owned(), class.to_owned())) {
            Entry::Occupied(held) => {
                let (key, row, _) = held.into_mut();
                Ok((key, row.clone(), false))
            }
            Entry::Vacant(slot) => {
                let (key, row, fresh) = vault.keys.sealing_key(&vault.store, subject, class, now).await?;
                let (key, row, _) = slot.insert((key, row, fresh));
                Ok((key, row.clone(), fresh))
            }
        }
    }

    /// Whether a key was made by this call (a conflict then means another write stored the
    /// subject's first key meanwhile: seal again, rather than an erasure).
    pub(crate) fn any_fresh(&self) -> bool {
        self.held.values().any(|(_, _, fresh)| *fresh)
    }

    /// Whether the key `row` holds was made by this call.
    pub(crate) fn made_for(&self, row: &SubjectKeyRow) -> bool {
        self.held
            .get(&(row.subject_id.clone(), row.key_class.clone()))
            .is_some_and(|(_, _, fresh)| *fresh)
    }
}

pub(crate) fn subject_erased() -> VaultError {
    VaultError::new(
        crate::ErrorKind::Conflict,
        "subject_erased",
        "the subject's data key was destroyed (erased) while this write was under way; nothing was written",
    )
}

fn not_found() -> VaultError {
    VaultError::not_found("record_not_found", "no such record for this subject in this collection")
}

fn invalid(field: &str, why: &str) -> VaultError {
    VaultError::unprocessable("invalid_field", format!("field `{field}`: {why}")).with_field(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record weighs what JSON writes of it: its JSON text, give or take the bytes of its
    /// times, never much less.
    #[test]
    fn a_record_weighs_what_its_json_holds() {
        for value in ["x", "plain words", "\"\"\"\"\"\"", "a\\b\\c", &"\"".repeat(10_000)] {
            let record = Record {
                record_id: format!("rec_{}", "0".repeat(32)),
                fields: BTreeMap::from([("shipping_address".to_owned(), value.to_owned())]),
                created_at: "2026-12-07T13:00:00.000Z".to_owned(),
                updated_at: "2026-12-07T13:00:00.000Z".to_owned(),
            };
            let written = serde_json::to_vec(&record).map_or(0, |j| j.len());
            let weight = answer_weight(&record);
            assert!(weight >= written, "{value:?}: weighs {weight}, written {written}");
            assert!(weight <= written + 64, "{value:?}: weighs {weight}, written {written}");
        }
    }

    /// A read of a list asks its meter for what each record it shows weighs in the answer,
    /// as it opens it; a meter that refuses ends the read with its error, and the read is
    /// not audited as having shown anything.
    #[tokio::test]
    async fn a_list_asks_its_meter_for_each_record_it_shows() {
        use crate::principal::tests::admin;
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let subject = SubjectId::parse("cus_meter").unwrap();
        for i in 0..3 {
            let fields = BTreeMap::from([("email".to_owned(), format!("m{i}@example.com"))]);
            vault
                .create_record(
                    &Call::new(&admin(), "order_fulfillment", Timestamp(10 + i)),
                    &subject,
                    "customers",
                    &fields,
                )
                .await
                .unwrap();
        }
        async fn list(vault: &Vault, subject: &SubjectId, meter: Meter<'_>) -> Result<RecordPage, VaultError> {
            let admin = admin();
            let call = Call::new(&admin, "order_fulfillment", Timestamp(100));
            let page = Page::list(None, None)?;
            vault
                .list_records(&call, subject, "customers", None, &page, meter)
                .await
        }
        let asked = std::sync::Mutex::new(Vec::new());
        let counting = |bytes: usize| {
            asked.lock().unwrap().push(bytes);
            Ok(())
        };
        let shown = list(&vault, &subject, &counting).await.unwrap().records;
        let weights: Vec<usize> = shown.iter().map(answer_weight).collect();
        assert_eq!(*asked.lock().unwrap(), weights);
        let busy = VaultError::unavailable("busy", "full");
        let taken = std::sync::Mutex::new(0);
        let refusing = |bytes: usize| {
            let mut taken = taken.lock().unwrap();
            *taken += bytes;
            if *taken > weights[0] { Err(busy.clone()) } else { Ok(()) }
        };
        assert_eq!(list(&vault, &subject, &refusing).await.unwrap_err().code, "busy");
        let filter = crate::AuditFilter {
            subject_id: Some("cus_meter".to_owned()),
            conditions: custodia_store::AuditQuery {
                action: Some("record.list".to_owned()),
                ..Default::default()
            },
        };
        let events = vault
            .audit_events(&admin(), Timestamp(200), 0, 100, &filter)
            .await
            .unwrap();
        let decisions: Vec<&str> = events
            .events
            .iter()
            .map(|e| e.entry["decision"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(decisions.first(), Some(&"allow"), "{decisions:?}");
        assert!(decisions.iter().skip(1).all(|d| *d != "allow"), "{decisions:?}");
    }

    /// A list shows exactly the records holding a value its purpose may use now, the store
    /// passing over the others before they are read (by purpose, field and stored expiry,
    /// with purposes the subject's ledger ended left out): a value expired by its rule, or
    /// held for a purpose a restriction stopped, hides its record; another value that is
    /// still usable keeps it shown.
    #[tokio::test]
    async fn a_list_shows_the_records_it_may_use_now() {
        use crate::principal::tests::admin;
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        let t0 = 1_700_000_000_000;
        data.init(None, Timestamp(t0)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = admin();
        let subject = SubjectId::parse("cus_usable").unwrap();
        let create = |purpose: &'static str, fields: &[(&str, &str)]| {
            let fields: BTreeMap<String, String> =
                fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let (vault, admin, subject) = (&vault, &admin, &subject);
            async move {
                vault
                    .create_record(&Call::new(admin, purpose, Timestamp(t0)), subject, "customers", &fields)
                    .await
                    .unwrap()
                    .as_str()
                    .to_owned()
            }
        };
        // 13 months from collection; 2 years from the last update; 10 years from collection
        let card = create("payment", &[("card_number", "4242424242424242")]).await;
        let both = create("payment", &[("card_number", "4000056655665556"), ("name", "Pat")]).await;
        let order = create("order_fulfillment", &[("name", "Ola"), ("email", "ola@example.com")]).await;
        let tax = create("tax_records", &[("name", "Tia")]).await;
        let list = |purpose: &'static str, now: i64| {
            let (vault, admin, subject) = (&vault, &admin, &subject);
            async move {
                let call = Call::new(admin, purpose, Timestamp(now));
                let page = Page::list(None, None).unwrap();
                let mut ids: Vec<String> = vault
                    .list_records(&call, subject, "customers", None, &page, &unmetered)
                    .await
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|r| r.record_id.as_str().to_owned())
                    .collect();
                ids.sort();
                ids
            }
        };
        let sorted = |mut ids: Vec<&String>| {
            ids.sort();
            ids.into_iter().cloned().collect::<Vec<_>>()
        };
        let day = 86_400_000;
        assert_eq!(
            list("customer_support", t0 + day).await,
            sorted(vec![&card, &both, &order])
        );
        assert_eq!(list("tax_records", t0 + day).await, sorted(vec![&both, &order, &tax]));
        // fourteen months on the payment values have expired (13 months from collection):
        // neither support nor tax records see the payment records any more
        let later = t0 + 425 * day;
        assert_eq!(list("customer_support", later).await, sorted(vec![&order]));
        assert_eq!(list("tax_records", later).await, sorted(vec![&order, &tax]));
        // restricted (Art. 18), only tax records stay in use, and only through their own values
        let restrict = custodia_types::RestrictionRequest {
            restricted: true,
            method: "api".to_owned(),
        };
        vault
            .record_restriction(&admin, Timestamp(t0 + 2 * day), &subject, &restrict)
            .await
            .unwrap();
        assert_eq!(list("tax_records", t0 + 3 * day).await, sorted(vec![&tax]));
    }

    /// A page is checked as it is named: `limit` 1 to 1000 (lists default to a full page,
    /// searches to 100), `after` a record id; the cursor's time is the one the id begins with.
    #[test]
    fn pages_are_checked() {
        assert_eq!(Page::list(None, None).ok().map(|p| p.limit), Some(1000));
        assert_eq!(Page::search(None, None).ok().map(|p| p.limit), Some(100));
        for bad in [Some(0), Some(1001), Some(u32::MAX)] {
            assert_eq!(Page::list(None, bad).unwrap_err().code, "invalid_page");
            assert_eq!(Page::search(None, bad).unwrap_err().code, "invalid_page");
        }
        for bad in ["", "rec_", "rec_0123", "x", &format!("rec_{}", "g".repeat(32))] {
            assert_eq!(Page::list(Some(bad), None).unwrap_err().code, "invalid_page", "{bad:?}");
        }
        let id = RecordId::generate(Timestamp(1_765_112_345_678)).unwrap();
        assert_eq!(id.created_millis(), 1_765_112_345_678);
        let page = Page::list(Some(id.as_str()), Some(1)).unwrap();
        assert_eq!(page.after, Some(id));
    }
}
