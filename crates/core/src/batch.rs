//! Batches: many record creations or reads in one call, the way OpenBao's transit batch
//! works. Each item is decided, answered and audited as if it came alone (its own `allow` or
//! `deny` entry), so a batch grants nothing its items would not be granted one by one; the
//! creations that pass are written in one transaction with their entries and those of the
//! items refused.

use std::collections::{BTreeMap, HashMap};

use custodia_store::{AuditRow, NewRecord, PageOf, StoreError, UsableBy};

use crate::audit::AuditEvent;
use crate::call::Call;
use crate::records::{FIELD_WEIGHT, RECORD_WEIGHT, SealingKeys, answer_weight, readable_field_names, subject_erased};
use crate::{Page, RecordId, RecordPage, SubjectId, Vault, VaultError};

/// The most items one batch may hold.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// How much a batch read answers at most (the values' and names' bytes): the items after the
/// one that passes it are not read, so one small request cannot make the server hold
/// gigabytes (a subject's records listed a thousand times).
pub const MAX_BATCH_READ_BYTES: usize = 16 << 20;

/// How many of a batch's reads run at once.
const READS_AT_ONCE: usize = 8;

/// One record to create.
#[derive(Debug)]
pub struct BatchCreate {
    pub subject: SubjectId,
    pub collection: String,
    pub fields: BTreeMap<String, String>,
}

/// One read: a record (`record_id`), or a page of the subject's records in the collection.
#[derive(Debug)]
pub struct BatchRead {
    pub subject: SubjectId,
    pub collection: String,
    pub record_id: Option<RecordId>,
    pub fields: Option<Vec<String>>,
    /// The page read when no `record_id` is named.
    pub page: Page,
}

fn check_size(items: usize) -> Result<(), VaultError> {
    if items == 0 || items > MAX_BATCH_ITEMS {
        return Err(VaultError::bad_request(
            "batch_size",
            format!("a batch holds 1 to {MAX_BATCH_ITEMS} items; this one holds {items}"),
        ));
    }
    Ok(())
}

/// A creation that passed its checks, waiting for the batch's transaction.
struct Ready {
    item: usize,
    event: AuditEvent,
    record_id: RecordId,
    record: NewRecord,
    allow: AuditRow,
}

impl Vault {
    /// Creates each item's record for the call's purpose. The answer has one result per item,
    /// in order; an `Err` for the whole call (a batch too large, the audit log unavailable)
    /// means nothing was written.
    #[tracing::instrument(skip_all, fields(items = items.len()))]
    pub async fn create_records(
        &self,
        call: &Call<'_>,
        items: &[BatchCreate],
    ) -> Result<Vec<Result<RecordId, VaultError>>, VaultError> {
        check_size(items.len())?;
        self.log.accepting()?;
        let mut results: Vec<Option<Result<RecordId, VaultError>>> = Vec::with_capacity(items.len());
        let mut keys = SealingKeys::default();
        let mut ready = Vec::new();
        let mut refusals = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let event = call
                .event("record.create")
                .collection(&item.collection)
                .fields(item.fields.keys());
            let event = self.about(event, &item.subject)?;
            let record_id = RecordId::generate(call.now)?;
            match self
                .new_record(
                    call,
                    &item.subject,
                    &item.collection,
                    &item.fields,
                    &record_id,
                    &mut keys,
                )
                .await
            {
                Ok(record) => {
                    let allow = self.audit_row(&event, call.now, None)?;
                    ready.push(Ready {
                        item: i,
                        event,
                        record_id,
                        record,
                        allow,
                    });
                    results.push(None);
                }
                Err(error) => {
                    refusals.extend(self.refusal_row(&event, call.now, &error)?);
                    results.push(Some(Err(error)));
                }
            }
        }
        // The checks a concurrent change can overturn (the consent ledger, read-only
        // collections) ran item by item while the batch was prepared: they are made again
        // just before the write, so the gap is no longer than a single creation's.
        let purpose = self.registry.purposes.get(call.purpose);
        let mut kept = Vec::with_capacity(ready.len());
        for done in ready {
            let item = &items[done.item];
            let again = async {
                self.refuse_if_read_only(&item.collection).await?;
                if let Some(purpose) = purpose {
                    self.subject_state(&item.subject).await?.permits(purpose)?;
                }
                Ok::<(), VaultError>(())
            }
            .await;
            match again {
                Ok(()) => kept.push(done),
                Err(error) => {
                    refusals.extend(self.refusal_row(&done.event, call.now, &error)?);
                    results[done.item] = Some(Err(error));
                }
            }
        }
        // Whether a record's key was made for this batch (a conflict then means another write
        // stored the subject's first key meanwhile, not an erasure).
        let fresh: Vec<bool> = kept
            .iter()
            .map(|done| keys.made_for(&done.record.sealed_under))
            .collect();
        let (places, records): (Vec<_>, Vec<_>) = kept
            .into_iter()
            .map(|done| ((done.item, done.record_id), (done.record, Some(done.allow))))
            .unzip();
        let written = self
            .store
            .insert_records(records, refusals)
            .await
            .map_err(|e| match e {
                StoreError::SubjectKeyConflict => subject_erased(),
                e => VaultError::from(e),
            })?;
        for (((i, record_id), outcome), fresh) in places.into_iter().zip(written).zip(fresh) {
            let item = &items[i];
            results[i] = Some(match outcome {
                Ok(()) => Ok(record_id),
                // Another write stored this subject's first key meanwhile: this item goes
                // again on its own, sealed under that key.
                Err(StoreError::SubjectKeyConflict) if fresh => {
                    self.create_record(call, &item.subject, &item.collection, &item.fields)
                        .await
                }
                Err(StoreError::SubjectKeyConflict) => Err(subject_erased()),
                Err(e) => Err(e.into()),
            });
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| VaultError::internal(&"a batch item was left without a result")))
            .collect()
    }
    /// Reads each item for the call's purpose: one record, or all of a subject's records in a
    /// collection. One result per item, in order; each read is audited as it would be alone.
    #[tracing::instrument(skip_all, fields(items = items.len()))]
    pub async fn read_records(
        &self,
        call: &Call<'_>,
        items: &[BatchRead],
    ) -> Result<Vec<Result<RecordPage, VaultError>>, VaultError> {
        check_size(items.len())?;
        self.log.accepting()?;
        let mut results = Vec::with_capacity(items.len());
        let mut answered = 0usize;
        // each list's weight, asked once (a batch may list one subject many times, and an
        // item weighed but left to the next chunk is weighed again otherwise)
        let mut weights = HashMap::new();
        let mut rest = items;
        while !rest.is_empty() {
            if answered > MAX_BATCH_READ_BYTES {
                let first = results.len();
                results.extend(rest.iter().map(|_| Err(too_large(first))));
                break;
            }
            let (chunk, after) = rest.split_at(self.reads_at_once(call, rest, answered, &mut weights).await?);
            rest = after;
            // A chunk's reads run concurrently: their audit entries then reach the store
            // together and are made durable by one commit.
            for result in futures_util::future::join_all(chunk.iter().map(|item| self.read_one(call, item))).await {
                answered += result
                    .as_ref()
                    .map_or(0, |page| page.records.iter().map(answer_weight).sum());
                results.push(result);
            }
        }
        Ok(results)
    }
}

impl Vault {
    /// How many of the `rest` of a batch to read at once, `answered` bytes having been
    /// answered before: up to [`READS_AT_ONCE`], while what the lists among them weigh as
    /// stored (asked of the store before they are read: their values' bytes, and
    /// [`RECORD_WEIGHT`] and [`FIELD_WEIGHT`] for each record and value, at most what a page
    /// holds) fits in what is left of [`MAX_BATCH_READ_BYTES`]; at least one. The bound is
    /// then passed by about one item, whatever the lists' sizes (estimated from those read
    /// before, a small list first let eight large ones be read together: 115 MiB answered).
    /// One record weighs little: it is not asked.
    async fn reads_at_once<'a>(
        &self,
        call: &Call<'_>,
        rest: &'a [BatchRead],
        answered: usize,
        weights: &mut HashMap<(&'a str, &'a str, &'a Page), usize>,
    ) -> Result<usize, VaultError> {
        let mut total = answered;
        let mut n = 0;
        for item in rest.iter().take(READS_AT_ONCE) {
            if item.record_id.is_none() {
                let at = (item.subject.as_str(), item.collection.as_str(), &item.page);
                let weight = match weights.get(&at) {
                    Some(&w) => w,
                    None => {
                        let weight = self.page_weight(call, item).await?;
                        weights.insert(at, weight);
                        weight
                    }
                };
                total = total.saturating_add(weight);
            }
            if n > 0 && total > MAX_BATCH_READ_BYTES {
                break;
            }
            n += 1;
        }
        Ok(n.max(1))
    }

    /// What the list `item` reads weighs as stored: the records a read of it would not pass
    /// over, as far as the store can tell them (see [`UsableBy`]); a read the gate refuses
    /// weighs nothing.
    async fn page_weight(&self, call: &Call<'_>, item: &BatchRead) -> Result<usize, VaultError> {
        let Ok(grant) = self.authorize(call, &item.collection) else {
            return Ok(0);
        };
        // (a ledger that cannot be read refuses the read itself; weighed without it)
        let state = self.subject_state(&item.subject).await.ok();
        let purposes = crate::retention::usable_purposes(&self.registry, grant.purpose, state.as_deref());
        let fields = readable_field_names(&grant);
        let cursor = item.page.cursor_in(&item.collection);
        let stored = self
            .store
            .reader()
            .await?
            .records()
            .page_weight(PageOf {
                subject_id: item.subject.as_str(),
                collection: Some(&item.collection),
                usable_by: Some(UsableBy {
                    purposes: &purposes,
                    fields: &fields,
                    at: call.now.0,
                }),
                after: cursor.as_ref(),
                limit: i64::try_from(item.page.limit()).unwrap_or(i64::MAX),
            })
            .await?;
        let weight = stored
            .bytes
            .saturating_add(stored.records.saturating_mul(RECORD_WEIGHT))
            .saturating_add(stored.fields.saturating_mul(FIELD_WEIGHT));
        Ok(usize::try_from(weight).unwrap_or(usize::MAX).min(Page::MAX_LIST_BYTES))
    }

    /// One item of a batch read, as the single read it stands for.
    async fn read_one(&self, call: &Call<'_>, item: &BatchRead) -> Result<RecordPage, VaultError> {
        let fields = item.fields.as_deref();
        match &item.record_id {
            Some(id) => self
                .get_record(call, &item.subject, &item.collection, id, fields)
                .await
                .map(|r| RecordPage {
                    records: vec![r],
                    next_after: None,
                }),
            None => {
                // (a batch bounds what its reads hold itself)
                self.list_records(
                    call,
                    &item.subject,
                    &item.collection,
                    fields,
                    &item.page,
                    &crate::unmetered,
                )
                .await
            }
        }
    }
}

fn too_large(from: usize) -> VaultError {
    VaultError::bad_request(
        "batch_answer_too_large",
        format!(
            "this batch's answers passed {MAX_BATCH_READ_BYTES} bytes before item {from}, which was not read; read the remaining items in another batch"
        ),
    )
}
