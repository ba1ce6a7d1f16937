//! Batches: many record creations or reads in one call, the way OpenBao's transit batch
//! works. Each item is decided, answered and audited as if it came alone (its own `allow` or
//! `deny` entry), so a batch grants nothing its items would not be granted one by one; the
//! creations that pass are written in one transaction with their entries and those of the
//! items refused.

use std::collections::{BTreeMap, HashMap};

use custodia_store::{AuditRow, NewRecord, PageOf, StoreError};

use crate::audit::AuditEvent;
use crate::call::Call;
use crate::records::{FIELD_WEIGHT, Meter, RECORD_WEIGHT, SealingKeys, Usable, answer_weight, subject_erased};
use crate::{Page, RecordId, RecordPage, SubjectId, Vault, VaultError};

/// The most items one batch may hold.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// How much a batch read answers at most (the values' and names' bytes): the items after the
/// one that passes it are not read, so one small request cannot make the server hold
/// gigabytes (a subject's records listed a thousand times).
pub const MAX_BATCH_READ_BYTES: usize = 16 << 20;

/// How many of a batch's reads run at once.
const READS_AT_ONCE: usize = 8;

/// What a record named alone is counted to weigh before it is read (a record of a few
/// values; a larger one takes what more it needs as it is answered, if there is room).
const ONE_RECORD_WEIGHT: usize = 4 << 10;

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
    ///
    /// Before anything is read, `reserve` is asked for what the batch will answer, as its
    /// items weigh as stored (at most [`MAX_BATCH_READ_BYTES`] and a page): an error from it
    /// refuses the whole batch, unread and unaudited. Once reads have answered more than
    /// that (values JSON writes longer than they are stored: quotes, backslashes), it is
    /// asked for the rest before more items are read; refused then, the items not yet read
    /// are answered with its error and the batch with what was read.
    pub async fn read_records(
        &self,
        call: &Call<'_>,
        items: &[BatchRead],
        reserve: Meter<'_>,
    ) -> Result<Vec<Result<RecordPage, VaultError>>, VaultError> {
        check_size(items.len())?;
        self.log.accepting()?;
        let mut results = Vec::with_capacity(items.len());
        let mut answered = 0usize;
        // each list's weight, asked once (a batch may list one subject many times, and an
        // item weighed but left to the next chunk is weighed again otherwise)
        let mut weights = HashMap::new();
        let mut reserved = self.planned_weight(call, items, &mut weights).await?;
        reserve(reserved)?;
        let mut rest = items;
        while !rest.is_empty() {
            if answered > MAX_BATCH_READ_BYTES {
                let first = results.len();
                results.extend(rest.iter().map(|_| Err(too_large(first))));
                break;
            }
            if answered > reserved {
                if let Err(e) = reserve(answered - reserved) {
                    results.extend(rest.iter().map(|_| Err(e.clone())));
                    break;
                }
                reserved = answered;
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
                total = total.saturating_add(self.list_weight(call, item, weights).await?);
            }
            if n > 0 && total > MAX_BATCH_READ_BYTES {
                break;
            }
            n += 1;
        }
        Ok(n.max(1))
    }

    /// What a batch of `items` will answer, as they weigh as stored (a record named alone
    /// counted as [`ONE_RECORD_WEIGHT`]), weighed in order until the most a batch answers
    /// ([`MAX_BATCH_READ_BYTES`] and a page) is reached: a small batch holds little of the
    /// server's budget of unsent answers (each held 20 MiB: one key's fifth large batch at
    /// once was refused).
    async fn planned_weight<'a>(
        &self,
        call: &Call<'_>,
        items: &'a [BatchRead],
        weights: &mut HashMap<(&'a str, &'a str, &'a Page), usize>,
    ) -> Result<usize, VaultError> {
        const MOST: usize = MAX_BATCH_READ_BYTES + Page::MAX_LIST_BYTES;
        let mut total = 0usize;
        for item in items {
            if total >= MOST {
                break;
            }
            let weight = if item.record_id.is_some() {
                ONE_RECORD_WEIGHT
            } else {
                self.list_weight(call, item, weights).await?
            };
            total = total.saturating_add(weight);
        }
        Ok(total.min(MOST))
    }

    /// [`Self::page_weight`] of the list `item`, asked once per batch (`weights`).
    async fn list_weight<'a>(
        &self,
        call: &Call<'_>,
        item: &'a BatchRead,
        weights: &mut HashMap<(&'a str, &'a str, &'a Page), usize>,
    ) -> Result<usize, VaultError> {
        let at = (item.subject.as_str(), item.collection.as_str(), &item.page);
        if let Some(&weight) = weights.get(&at) {
            return Ok(weight);
        }
        let weight = self.page_weight(call, item).await?;
        weights.insert(at, weight);
        Ok(weight)
    }

    /// What the list `item` reads weighs as stored: the records a read of it would not pass
    /// over, as far as the store can tell them (see [`Usable`]); a read the gate refuses
    /// weighs nothing.
    async fn page_weight(&self, call: &Call<'_>, item: &BatchRead) -> Result<usize, VaultError> {
        let Ok(grant) = self.authorize(call, &item.collection) else {
            return Ok(0);
        };
        // (a ledger that cannot be read refuses the read itself; weighed without it)
        let state = self.subject_state(&item.subject).await.ok();
        let usable = Usable::new(&self.registry, &grant, state.as_deref());
        let cursor = item.page.cursor_in(&item.collection);
        let stored = self
            .store
            .reader()
            .await?
            .records()
            .page_weight(PageOf {
                subject_id: item.subject.as_str(),
                collection: Some(&item.collection),
                usable_by: Some(usable.at(call.now)),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::principal::tests::admin;
    use crate::{RecordId, Timestamp};

    /// A batch read asks, once and before it reads anything, for what its items weigh as
    /// stored: a record named alone its nominal weight, a list what its records hold; a
    /// refusal refuses the whole batch, read and audited for no item.
    #[tokio::test]
    async fn a_batch_reserves_what_it_will_answer_before_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::DataDir::new(dir.path());
        data.init(None, Timestamp(1)).await.unwrap();
        let vault = data.open(None).await.unwrap();
        let admin = admin();
        let subject = SubjectId::parse("cus_batch").unwrap();
        let mut ids = Vec::new();
        for i in 0..3 {
            let fields = BTreeMap::from([("shipping_address".to_owned(), format!("{i} {}", "x".repeat(3000)))]);
            let call = Call::new(&admin, "order_fulfillment", Timestamp(10 + i));
            ids.push(
                vault
                    .create_record(&call, &subject, "customers", &fields)
                    .await
                    .unwrap(),
            );
        }
        let call = Call::new(&admin, "order_fulfillment", Timestamp(100));
        let item = |record_id: Option<RecordId>| BatchRead {
            subject: subject.clone(),
            collection: "customers".to_owned(),
            record_id,
            fields: None,
            page: Page::list(None, None).unwrap(),
        };
        let asked = Mutex::new(Vec::new());
        let counting = |bytes: usize| {
            asked.lock().unwrap().push(bytes);
            Ok(())
        };
        let one = [item(ids.first().cloned())];
        assert!(vault.read_records(&call, &one, &counting).await.unwrap()[0].is_ok());
        assert_eq!(*asked.lock().unwrap(), [ONE_RECORD_WEIGHT]);
        asked.lock().unwrap().clear();
        let list = [item(None), item(None)];
        let answered: usize = vault
            .read_records(&call, &list, &counting)
            .await
            .unwrap()
            .iter()
            .map(|r| r.as_ref().unwrap().records.iter().map(answer_weight).sum::<usize>())
            .sum();
        let asked_for = asked.lock().unwrap().clone();
        // one list weighed once, counted for both items: about what they answered
        assert_eq!(asked_for.len(), 1, "{asked_for:?}");
        assert!(
            asked_for[0] >= 2 * 9000 && asked_for[0] < 2 * answered,
            "{asked_for:?} for {answered} answered"
        );
        // refused: nothing read, nothing audited
        let reads = || async {
            let mut n = 0;
            for action in ["record.list", "record.read"] {
                let filter = crate::AuditFilter {
                    subject_id: Some("cus_batch".to_owned()),
                    conditions: custodia_store::AuditQuery {
                        action: Some(action.to_owned()),
                        ..Default::default()
                    },
                };
                n += vault
                    .audit_events(&admin, Timestamp(200), 0, 1000, &filter)
                    .await
                    .unwrap()
                    .events
                    .len();
            }
            n
        };
        let before = reads().await;
        assert_eq!(before, 3, "one read and two lists");
        let refusing = |_: usize| Err(VaultError::unavailable("busy", "full"));
        let err = vault.read_records(&call, &list, &refusing).await.unwrap_err();
        assert_eq!(err.code, "busy");
        assert_eq!(reads().await, before, "a refused batch is not audited");

        // Values JSON writes twice as long as they are stored (quotes) answer more than
        // their stored weight: the rest is asked before more items are read, and refused,
        // the items not yet read answer its error.
        let mut quoted = Vec::new();
        for i in 0..3 {
            let fields = BTreeMap::from([("shipping_address".to_owned(), "\"".repeat(4000))]);
            let call = Call::new(&admin, "order_fulfillment", Timestamp(20 + i));
            quoted.push(
                vault
                    .create_record(&call, &subject, "customers", &fields)
                    .await
                    .unwrap(),
            );
        }
        let items: Vec<BatchRead> = (0..24).map(|i| item(quoted.get(i % 3).cloned())).collect();
        asked.lock().unwrap().clear();
        let first_only = |bytes: usize| {
            let mut asked = asked.lock().unwrap();
            asked.push(bytes);
            if asked.len() == 1 {
                Ok(())
            } else {
                Err(VaultError::unavailable("busy", "full"))
            }
        };
        let results = vault.read_records(&call, &items, &first_only).await.unwrap();
        let asked_for = asked.lock().unwrap().clone();
        assert_eq!(asked_for[0], 24 * ONE_RECORD_WEIGHT, "{asked_for:?}");
        assert_eq!(
            asked_for.len(),
            2,
            "the rest asked once, before the third chunk: {asked_for:?}"
        );
        let read = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(read, 2 * READS_AT_ONCE, "two chunks read");
        assert!(
            results[read..]
                .iter()
                .all(|r| r.as_ref().err().map(|e| e.code) == Some("busy")),
            "the rest answer the refusal"
        );
    }
}
