//! Erasure (GDPR Art. 17, CCPA deletion) and rectification (Art. 16), as fulfilments of a
//! subject's request.
//!
//! Erasure deletes the subject's records, field values, blind-index entries and token values,
//! and destroys its `default` data key (crypto-shredding: every copy of its ciphertext, in the
//! WAL, replicas and backups, becomes unreadable without that key; the ledger's sealed
//! evidence with it). Values written under a purpose that survives erasure (Art. 17(3)) are
//! sealed under a key of their own class and stay, readable only under that purpose. Records
//! go in batches of [`ERASE_BATCH`], each its own short transaction, so that erasing a large
//! subject does not hold up other writes; the last transaction deletes what was written
//! meanwhile, destroys the key, appends the tombstone and closes the request with its signed
//! receipt and audit entry. The SQLite WAL is then emptied, so no page of the destroyed key
//! stays in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use custodia_crypto::FieldContext;
use custodia_registry::Registry;
use custodia_store::{
    AuditRow, DEFAULT_KEY_CLASS, ErasedRows, ErasureRow, HeldValues, RecordPatch, RequestRow, StoreError, Target,
};
use custodia_types::{Correction, ErasedCounts, ErasureReceipt, KeptData};
use zeroize::Zeroizing;

use crate::keys::class_purpose;
use crate::{RecordId, SubjectId, Timestamp, Vault, VaultError, values};

/// What a rectification's transaction says when a legal hold covers a record it corrects.
const HELD: &str = "legal_hold";

/// Locks the subject's keys for the rest of this step of an erasure (writes sealing under
/// them, and holds placed on the subject, wait) and, for an erasure asked for now (`held_by`:
/// the collections a hold may name), refuses the step if a legal hold now covers the subject
/// or one of them: a hold placed while the erasure runs stops it (what earlier steps erased
/// went before the hold existed). An erasure re-applied by a restore happened already.
async fn lock_and_refuse_if_held(
    tx: &mut custodia_store::Tx<'_>,
    subject: &str,
    held_by: Option<&[String]>,
) -> Result<(), StoreError> {
    tx.subjects()
        .lock_keys(subject, custodia_store::KeyLock::Update)
        .await?;
    let Some(collections) = held_by else { return Ok(()) };
    let collections: Vec<&str> = collections.iter().map(String::as_str).collect();
    if tx.retention().holds_on(subject, &collections).await?.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Conflict(HELD.into()))
    }
}

/// A step refused for a hold as the hold's error; any other as the store's.
fn held_or_store_error(e: StoreError) -> VaultError {
    match e {
        StoreError::Conflict(what) if what == HELD => crate::holds::held_error(),
        e => e.into(),
    }
}

/// The principal audit entries of re-applied erasures name.
pub(crate) const RESTORE_PRINCIPAL: &str = "custodia:restore";

/// An erasure request to close with the erasure.
struct Closing {
    done: RequestRow,
    /// Its Art. 19 notices, queued with it.
    notices: Vec<custodia_store::NewNotification>,
}

/// The most records one rectification corrects.
const MAX_CORRECTIONS: usize = 100;

/// Records erased per transaction.
const ERASE_BATCH: i64 = 500;
/// The first line of an erasure receipt's signed text.
pub const RECEIPT_HEADER: &str = "custodia erasure receipt v1";

impl Vault {
    /// The key erasure receipts are signed with, as a verifier key
    /// (`custodia-erasure-receipts+<id>+<key>`).
    #[must_use]
    pub fn receipt_public_key(&self) -> String {
        self.keys.receipt_signer.verifier().to_string()
    }

    /// Erases `subject` for `principal` and closes its (claimed) erasure request `done` with
    /// `audit` and its Art. 19 `notices`; returns the signed receipt.
    pub(crate) async fn erase(
        &self,
        subject: &SubjectId,
        principal: &crate::Principal,
        done: RequestRow,
        audit: AuditRow,
        notices: Vec<custodia_store::NewNotification>,
        now: Timestamp,
    ) -> Result<ErasureReceipt, VaultError> {
        let tombstone = ErasureRow {
            subject_digest: done.subject_digest.clone(),
            request_id: Some(done.request_id.clone()),
            at: now.0,
        };
        let closing = Closing { done, notices };
        self.erase_subject(subject, &principal.id, tombstone, audit, Some(closing), now)
            .await
    }

    /// Erases `subject` again: a tombstone found after a restore names it (`tombstone`, already
    /// in the tombstone log; appended to the database's list when it lacks it).
    pub(crate) async fn erase_again(
        &self,
        subject: &SubjectId,
        tombstone: ErasureRow,
        now: Timestamp,
    ) -> Result<ErasureReceipt, VaultError> {
        let event = self.about(
            crate::audit::AuditEvent::unauthenticated("subject.erase", RESTORE_PRINCIPAL.to_owned())
                .detail("reason", "tombstone re-applied after a restore"),
            subject,
        )?;
        let audit = self.audit_row(&event, now, None)?;
        self.erase_subject(subject, RESTORE_PRINCIPAL, tombstone, audit, None, now)
            .await
    }

    /// The erasure: batches of records, then one transaction that finishes the deletion,
    /// destroys the key, records the tombstone, signs the receipt and (for a request) closes it.
    async fn erase_subject(
        &self,
        subject: &SubjectId,
        principal_id: &str,
        tombstone: ErasureRow,
        audit: AuditRow,
        closing: Option<Closing>,
        now: Timestamp,
    ) -> Result<ErasureReceipt, VaultError> {
        // The tombstone goes to the log outside the database first: should the erasure fail
        // after this, a restore erases the subject (whose erasure was asked for) anyway.
        if let Some(log) = &self.tombstone_log {
            crate::tombstones::append(log, &tombstone)?;
        }
        let surviving: Vec<String> = self
            .registry
            .purposes
            .values()
            .filter(|p| p.survives_erasure)
            .map(|p| p.name.clone())
            .collect();
        // (a restore's re-applied erasure has no request to close, and no hold stops it)
        let held_by: Option<Vec<String>> = closing
            .is_some()
            .then(|| self.registry.collections.keys().cloned().collect());
        let mut deleted = ErasedRows::default();
        let mut after = String::new();
        loop {
            let (id, from, kept) = (subject.as_str().to_owned(), after.clone(), surviving.clone());
            let held_by = held_by.clone();
            let (rows, last) = self
                .store
                .write(move |mut tx| {
                    Box::pin(async move {
                        lock_and_refuse_if_held(&mut tx, &id, held_by.as_deref()).await?;
                        tx.records().erase_batch(&id, &from, ERASE_BATCH, &kept).await
                    })
                })
                .await
                .map_err(held_or_store_error)?;
            deleted.add(rows);
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        let kept_rules = kept_rules(&self.registry);
        let registry = Arc::clone(&self.registry);
        let seal = Arc::clone(&self.keys.access_seal);
        let signer = Arc::clone(&self.keys.receipt_signer);
        let id = subject.as_str().to_owned();
        let (subject_id, by) = (subject.clone(), principal_id.to_owned());
        self.caches.ledger.invalidate(subject.as_str());
        let closed = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    // The keys locked first: a write sealing under them commits before this
                    // (and its records are erased below) or finds them destroyed.
                    lock_and_refuse_if_held(&mut tx, &id, held_by.as_deref()).await?;
                    let mut after = String::new();
                    loop {
                        let (rows, last) = tx.records().erase_batch(&id, &after, ERASE_BATCH, &surviving).await?;
                        deleted.add(rows);
                        match last {
                            Some(last) => after = last,
                            None => break,
                        }
                    }
                    deleted.token_values += tx.tokens().erase_subject(&id).await?;
                    let destroyed = tx.subjects().destroy_key(&id, DEFAULT_KEY_CLASS).await?;
                    let held = tx.records().held_values(&id).await?;
                    let listed = tx.erasures().all().await?;
                    if !listed
                        .iter()
                        .any(|e| e.subject_digest == tombstone.subject_digest && e.at >= tombstone.at)
                    {
                        tx.erasures().append(&tombstone).await?;
                    }
                    // Consent given before the erasure ends with it: withdrawn in the ledger
                    // (which keeps the history, the proof that past processing was lawful),
                    // read here, under the key's lock, so a consent given while the erasure
                    // ran is withdrawn too.
                    // A ledger altered in the database by hand does not stop an erasure: nothing
                    // is decided on it (no withdrawal appended, no binding timed by it), and
                    // every read of it is refused after as before.
                    let ledger =
                        crate::retention::unless_altered(tx.ledger().of_subject(&id, &*seal).await, "erasing")?;
                    // An erasure re-applied after a restore ends only the consents given by the
                    // time it was asked for: the ledger carried over from the replaced database
                    // holds those the subject gave after it, which still stand.
                    let given_by = if closing.is_some() { i64::MAX } else { tombstone.at };
                    let withdrawals = match &ledger {
                        Some(ledger) => crate::consent::SubjectState::from_ledger(ledger).consent_withdrawals(
                            &subject_id,
                            &by,
                            given_by,
                            now,
                        ),
                        None => Vec::new(),
                    };
                    for withdrawal in &withdrawals {
                        tx.ledger().append(withdrawal, &*seal).await?;
                    }
                    // The relationship ends: no activity to run from, no id on released holds.
                    tx.retention().forget_activity(&id).await?;
                    tx.retention().forget_subject_in_holds(&id).await?;
                    if ledger.is_some() {
                        crate::retention::retime_subject(&mut tx, (&registry, &*seal), &id, now).await?;
                    }
                    let request_id = closing.as_ref().map(|c| c.done.request_id.as_str());
                    let receipt = receipt(
                        request_id,
                        &tombstone.subject_digest,
                        now,
                        destroyed,
                        deleted,
                        kept(&held, &kept_rules),
                        &signer,
                    )
                    .map_err(StoreError::Corrupt)?;
                    if let Some(Closing { mut done, notices }) = closing {
                        done.subject_id = None;
                        for text in [
                            &mut done.verified_via,
                            &mut done.extension_reason,
                            &mut done.denial_reason,
                        ] {
                            if text.is_some() {
                                *text = Some(custodia_store::FORGOTTEN_TEXT.to_owned());
                            }
                        }
                        done.outcome = Some(outcome_of(&receipt));
                        if !tx.requests().update(&done).await? {
                            // Rolls the erasure's last step back: another step closed the
                            // request meanwhile.
                            return Err(StoreError::Conflict("request".into()));
                        }
                        if !notices.is_empty() {
                            tx.notifications().enqueue(&notices).await?;
                        }
                    }
                    // After the request's own change: its other requests lose the id too.
                    tx.requests().forget_subject(&id, true).await?;
                    tx.audit().append(&[audit]).await?;
                    Ok((receipt, withdrawals))
                })
            })
            .await;
        self.caches.ledger.invalidate(subject.as_str());
        let mut receipt = match closed {
            Ok((receipt, withdrawals)) => {
                self.count_ledger_entries(&withdrawals);
                receipt
            }
            Err(StoreError::Conflict(what)) if what == HELD => return Err(crate::holds::held_error()),
            Err(StoreError::Conflict(_)) => {
                return Err(VaultError::new(
                    crate::ErrorKind::Conflict,
                    "request_changed",
                    "the request changed while it was being fulfilled; read it again",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        receipt.wal_purged = self.purge_wal().await;
        if receipt.wal_purged && !receipt.request_id.is_empty() {
            self.store_outcome(&receipt).await;
        }
        Ok(receipt)
    }

    /// Stores the receipt as its request's outcome again once the write-ahead log was emptied
    /// (which comes after the erasure committed, so the copy it stored says it was not). Best
    /// effort: the erasure is done whatever this write's fate.
    async fn store_outcome(&self, receipt: &ErasureReceipt) {
        let (id, outcome) = (receipt.request_id.clone(), outcome_of(receipt));
        let stored = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    let Some(mut row) = tx.requests().get(&id).await? else {
                        return Ok(false);
                    };
                    row.outcome = Some(outcome);
                    tx.requests().update(&row).await
                })
            })
            .await;
        if !matches!(stored, Ok(true)) {
            tracing::warn!("the erasure receipt stored with its request still says the WAL was not emptied");
        }
    }

    /// Replaces values of the subject's records with corrected ones (Art. 16) and closes the
    /// rectification request `done` with `audit`, in one transaction. The old ciphertext is
    /// overwritten (and zeroed on SQLite, whose WAL is emptied afterwards); tokens handed out
    /// for the old values are deleted, so they no longer detokenize.
    pub(crate) async fn rectify(
        &self,
        subject: &SubjectId,
        mut done: RequestRow,
        audit: AuditRow,
        corrections: &[Correction],
        now: Timestamp,
    ) -> Result<(), VaultError> {
        if corrections.is_empty() {
            return Err(VaultError::unprocessable(
                "no_corrections",
                "a rectification needs `corrections`: the records and fields to correct, with their values",
            )
            .with_field("corrections"));
        }
        if corrections.len() > MAX_CORRECTIONS {
            return Err(VaultError::bad_request(
                "too_many_corrections",
                format!("a rectification corrects at most {MAX_CORRECTIONS} records"),
            )
            .with_field("corrections"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(c) = corrections
            .iter()
            .find(|c| !seen.insert((c.collection.as_str(), c.record_id.as_str())))
        {
            return Err(VaultError::unprocessable(
                "duplicate_correction",
                format!(
                    "a record of collection {} is corrected twice; give each record once, with all its fields",
                    crate::error::quoted_name(&c.collection, false)
                ),
            )
            .with_field("corrections"));
        }
        let mut changes = Vec::with_capacity(corrections.len());
        let mut corrected = Vec::with_capacity(corrections.len());
        let (mut purposes, mut fields) = (Vec::new(), Vec::new());
        for c in corrections {
            let (patch, keys, held_for) = self.correction(subject, c, now).await?;
            purposes.extend(held_for);
            for f in &patch.set {
                fields.push(format!("{}.{}", c.collection, f.field));
            }
            corrected.push(serde_json::json!({
                "collection": c.collection,
                "record_id": c.record_id,
                "fields": c.fields.keys().collect::<Vec<_>>(),
            }));
            changes.push((c.collection.clone(), c.record_id.clone(), patch, keys));
        }
        done.outcome = Some(serde_json::json!({ "corrected": corrected }).to_string());
        let purposes: Vec<&str> = purposes.iter().map(String::as_str).collect();
        let notices = self.art19_notifications(&done.request_id, "rectification", subject, &purposes, &fields, now)?;
        let id = subject.as_str().to_owned();
        let written = self
            .store
            .write(move |mut tx| {
                Box::pin(async move {
                    // a legal hold keeps the values as they are, as it does against a PATCH
                    let collections: Vec<&str> = changes.iter().map(|(c, ..)| c.as_str()).collect();
                    if !tx.retention().holds_on(&id, &collections).await?.is_empty() {
                        return Err(StoreError::Conflict(HELD.into()));
                    }
                    for (collection, record_id, patch, keys) in &changes {
                        for key in keys {
                            tx.subjects().seal_under(key, false).await?;
                        }
                        let t = Target {
                            subject_id: &id,
                            collection,
                            record_id,
                        };
                        if tx.records().update(t, patch).await?.is_none() {
                            return Err(StoreError::Conflict("record".into()));
                        }
                        for f in &patch.set {
                            tx.tokens().erase_field(&id, collection, &f.field).await?;
                        }
                    }
                    if !tx.requests().update(&done).await? {
                        return Err(StoreError::Conflict("request".into()));
                    }
                    if !notices.is_empty() {
                        tx.notifications().enqueue(&notices).await?;
                    }
                    tx.audit().append(&[audit]).await
                })
            })
            .await;
        match written {
            Ok(()) => {
                self.purge_wal().await;
                Ok(())
            }
            Err(StoreError::SubjectKeyConflict) => Err(crate::records::subject_erased()),
            Err(StoreError::Conflict(what)) if what == HELD => Err(crate::holds::held_error()),
            Err(StoreError::Conflict(what)) if what == "record" => Err(VaultError::not_found(
                "record_not_found",
                "a record to correct was deleted meanwhile",
            )),
            Err(StoreError::Conflict(_)) => Err(VaultError::new(
                crate::ErrorKind::Conflict,
                "request_changed",
                "the request changed while it was being fulfilled; read it again",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// One record's corrected values, checked (the collection, the record, each field held
    /// and valid for its type) and sealed under the key class of the value they correct (held
    /// for the same purposes), with the keys they were sealed under and those purposes.
    async fn correction(
        &self,
        subject: &SubjectId,
        c: &Correction,
        now: Timestamp,
    ) -> Result<(RecordPatch, Vec<custodia_store::SubjectKeyRow>, Vec<String>), VaultError> {
        let collection = self.registry.collections.get(&c.collection).ok_or_else(|| {
            VaultError::unprocessable(
                "unknown_collection",
                format!(
                    "collection {} is not in the registry",
                    crate::error::quoted_name(&c.collection, false)
                ),
            )
            .with_field("collection")
        })?;
        self.refuse_if_read_only(&c.collection).await?;
        let record_id = RecordId::parse(&c.record_id)?;
        if c.fields.is_empty() {
            return Err(
                VaultError::bad_request("no_fields", "a correction needs at least one field").with_field("fields"),
            );
        }
        let target = Target {
            subject_id: subject.as_str(),
            collection: &c.collection,
            record_id: record_id.as_str(),
        };
        let found = self.store.reader().await?.records().one(target).await?;
        let (Some(found), true) = (found.as_ref(), found.as_ref().is_some_and(|f| !f.records.is_empty())) else {
            return Err(VaultError::not_found(
                "record_not_found",
                "no such record for this subject in this collection",
            ));
        };
        let stored = found
            .records
            .first()
            .ok_or_else(|| VaultError::internal(&"a found record vanished"))?;
        let mut patch = RecordPatch {
            now: now.0,
            ..RecordPatch::default()
        };
        let mut keys: Vec<custodia_store::SubjectKeyRow> = Vec::new();
        let mut purposes = Vec::new();
        for (name, value) in &c.fields {
            let field = collection.fields.get(name).ok_or_else(|| {
                VaultError::unprocessable(
                    "unknown_field",
                    format!(
                        "collection `{}` has no field {}",
                        c.collection,
                        crate::error::quoted_name(name, false)
                    ),
                )
                .with_field(crate::error::shown(name))
            })?;
            let held = stored.fields.iter().find(|f| &f.field == name).ok_or_else(|| {
                VaultError::new(
                    crate::ErrorKind::Conflict,
                    "field_not_held",
                    format!("field `{name}` holds no value in this record; rectification corrects values held"),
                )
                .with_field(name.as_str())
            })?;
            let normalized = Zeroizing::new(values::normalize(field.field_type, value).map_err(|why| {
                VaultError::unprocessable("invalid_field", format!("field `{name}`: {why}")).with_field(name.as_str())
            })?);
            // The corrected value stays under its key class, held for the same purposes.
            let class = held.key_class.clone();
            let row = found.key(&class).ok_or_else(crate::records::subject_erased)?;
            let key = self.keys.unwrap(row)?;
            if !keys.iter().any(|k| k.key_class == row.key_class) {
                keys.push(row.clone());
            }
            let ctx = FieldContext {
                collection: &c.collection,
                subject: subject.as_str(),
                record: record_id.as_str(),
                field: name,
            };
            purposes.extend(held.bindings.iter().map(|b| b.purpose.clone()));
            patch.set.push(custodia_store::FieldValue {
                field: name.clone(),
                ciphertext: key.seal(&ctx, normalized.as_bytes())?,
                key_class: class,
                binding: None,
            });
            if field.searchable {
                let form = Zeroizing::new(values::index_form(field.field_type, &normalized));
                patch.index.push(custodia_store::IndexEntry {
                    field: name.clone(),
                    digest: self.keys.field_index(&c.collection, name, &form)?.to_vec(),
                });
            }
        }
        Ok((patch, keys, purposes))
    }

    /// Empties SQLite's WAL after a deletion; a failure is logged, and reported as `false`.
    pub(crate) async fn purge_wal(&self) -> bool {
        match self.store.purge_wal().await {
            Ok(purged) => purged,
            Err(e) => {
                tracing::warn!(error = %e, "could not empty the WAL after a deletion");
                false
            }
        }
    }
}

/// Why and how long each purpose keeps data past an erasure: legal basis and retention.
fn kept_rules(registry: &Registry) -> BTreeMap<String, (String, String)> {
    registry
        .purposes
        .values()
        .filter(|p| p.survives_erasure)
        .map(|p| {
            // `10y from collection`, `2y from last update`; the receipt's signed text joins
            // the words with `_`.
            let retention = p.retention.map_or_else(
                || "no retention period declared".to_owned(),
                |r| r.describe().replace('_', " "),
            );
            (p.name.clone(), (p.legal_basis.name().to_owned(), retention))
        })
        .collect()
}

/// What survived, by purpose.
fn kept(held: &[HeldValues], rules: &BTreeMap<String, (String, String)>) -> Vec<KeptData> {
    let mut out: Vec<KeptData> = Vec::new();
    for h in held {
        let purpose = class_purpose(&h.key_class).unwrap_or(&h.purpose).to_owned();
        let (basis, retention) = rules.get(&purpose).cloned().unwrap_or_default();
        let name = format!("{}.{}", h.collection, h.field);
        match out.iter_mut().find(|k| k.purpose == purpose) {
            Some(k) => {
                if !k.fields.contains(&name) {
                    k.fields.push(name);
                }
                k.values += h.values;
            }
            None => out.push(KeptData {
                purpose,
                legal_basis: basis,
                fields: vec![name],
                values: h.values,
                retention,
            }),
        }
    }
    out
}

/// The receipt and its signed text.
fn receipt(
    request_id: Option<&str>,
    subject_digest: &str,
    now: Timestamp,
    destroyed: bool,
    deleted: ErasedRows,
    kept: Vec<KeptData>,
    signer: &custodia_audit::note::NoteSigner,
) -> Result<ErasureReceipt, String> {
    let destroyed_keys = if destroyed {
        vec![DEFAULT_KEY_CLASS.to_owned()]
    } else {
        Vec::new()
    };
    let mut text = format!(
        "{RECEIPT_HEADER}\nrequest {}\nsubject {}\nerased-at {}\ndestroyed-keys {}\n\
         deleted records {}\ndeleted values {}\ndeleted index-entries {}\ndeleted token-values {}\n",
        request_id.unwrap_or("none"),
        subject_digest,
        now.to_rfc3339(),
        if destroyed_keys.is_empty() {
            "none".to_owned()
        } else {
            destroyed_keys.join(",")
        },
        deleted.records,
        deleted.fields,
        deleted.index_entries,
        deleted.token_values,
    );
    for k in &kept {
        text.push_str(&format!(
            "kept {} {} {} values {} retention {}\n",
            k.purpose,
            k.legal_basis,
            k.fields.join(","),
            k.values,
            k.retention.replace(' ', "_")
        ));
    }
    let note = signer.sign(&text).map_err(|e| e.to_string())?;
    Ok(ErasureReceipt {
        request_id: request_id.unwrap_or_default().to_owned(),
        status: crate::rights::COMPLETED.to_owned(),
        subject_digest: subject_digest.to_owned(),
        erased_at: now.to_rfc3339(),
        destroyed_keys,
        deleted: ErasedCounts {
            records: deleted.records,
            values: deleted.fields,
            index_entries: deleted.index_entries,
            token_values: deleted.token_values,
        },
        kept,
        wal_purged: false,
        signed_note: note.to_text(),
        public_key: signer.verifier().to_string(),
    })
}

/// The receipt as the request's stored outcome.
fn outcome_of(receipt: &ErasureReceipt) -> String {
    serde_json::json!({ "receipt": receipt }).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use custodia_types::{NewHold, NewSubjectRequest};

    use super::*;
    use crate::Call;
    use crate::audit::AuditEvent;
    use crate::package::tests::vault;

    /// A legal hold placed once an erasure is under way (after the check fulfilling makes
    /// first) stops it at its next step: each step looks again, under the lock a hold on the
    /// subject takes too. Nothing of the subject goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hold_placed_while_an_erasure_runs_stops_it() {
        let (_dir, vault, admin) = vault().await;
        let now = Timestamp(10);
        let s = SubjectId::parse("held-late").unwrap();
        let fields: BTreeMap<String, String> = [("email".to_owned(), "late@example.com".to_owned())].into();
        let record = vault
            .create_record(&Call::new(&admin, "order_fulfillment", now), &s, "customers", &fields)
            .await
            .unwrap();
        let req = NewSubjectRequest {
            subject_id: s.as_str().to_owned(),
            kind: "erasure".to_owned(),
            jurisdiction: "gdpr".to_owned(),
            received_via: None,
            received_at: None,
            verified_by: Some("signed-in session".to_owned()),
        };
        let request = vault.create_request(&admin, now, &req).await.unwrap();
        // fulfilling checked for holds and found none; then the hold arrives
        let hold = NewHold {
            subject_id: Some(s.as_str().to_owned()),
            collection: None,
            reason: "litigation 2026-114".to_owned(),
        };
        vault.place_hold(&admin, now, &hold).await.unwrap();
        let done = vault.request_row(&request.request_id).await.unwrap();
        let audit = vault
            .audit_row(&AuditEvent::new("request.fulfil", &admin), now, None)
            .unwrap();
        let refused = vault.erase(&s, &admin, done, audit, Vec::new(), now).await;
        assert_eq!(refused.err().map(|e| e.code), Some("legal_hold"));
        let mut reader = vault.store.reader().await.unwrap();
        assert_eq!(
            reader.retention().record_count(s.as_str()).await.unwrap(),
            1,
            "{record:?} kept"
        );
        assert!(
            !reader.subjects().keys(s.as_str()).await.unwrap().is_empty(),
            "its key kept"
        );
    }
}
