//! Each operation the suite checks, as one unit of work through the store's public API
//! ([`Store::write`], [`Store::reader`], the batched [`Store::insert_record`] and
//! [`Store::append_audit`]), so the assertions read as plain calls. A write that takes an
//! audit entry appends it in the same job, as the vault does.

use custodia_store::{
    AuditRow, CheckpointRow, LedgerRow, NewRecord, PrincipalRow, RecordPatch, Store, StoreError, SubjectKeyRow,
    SubjectRecords, Target, TokenRow,
};

type R<T> = Result<T, StoreError>;

fn target<'a>(subject_id: &'a str, collection: &'a str, record_id: &'a str) -> Target<'a> {
    Target {
        subject_id,
        collection,
        record_id,
    }
}

pub async fn get_meta(s: &Store, key: &str) -> R<Option<Vec<u8>>> {
    s.reader().await?.meta().get(key).await
}

pub async fn insert_meta(s: &Store, key: &str, value: &[u8]) -> R<bool> {
    let (key, value) = (key.to_owned(), value.to_vec());
    s.write(move |mut tx| Box::pin(async move { tx.meta().insert(&key, &value).await }))
        .await
}

pub async fn subject_key(s: &Store, subject: &str) -> R<Option<SubjectKeyRow>> {
    s.reader().await?.subjects().key(subject, "default").await
}

pub async fn ensure_subject_key(s: &Store, row: &SubjectKeyRow) -> R<SubjectKeyRow> {
    let row = row.clone();
    s.write(move |mut tx| Box::pin(async move { tx.subjects().ensure_key(&row).await }))
        .await
}

pub async fn insert_record(s: &Store, record: &NewRecord) -> R<()> {
    s.insert_record(record.clone(), None).await
}

pub async fn insert_record_audited(s: &Store, record: &NewRecord, audit: AuditRow) -> R<()> {
    s.insert_record(record.clone(), Some(audit)).await
}

/// A record creation as a plain unit of work (not the batched path).
pub async fn insert_record_job(s: &Store, record: &NewRecord) -> R<()> {
    let record = record.clone();
    s.write(move |mut tx| Box::pin(async move { tx.records().insert(&record).await }))
        .await
}

/// A subject's keys and every record of it in `collection`, oldest first; `None` when the
/// subject has neither keys nor records there.
pub async fn records(s: &Store, subject: &str, collection: &str) -> R<Option<SubjectRecords>> {
    let mut reader = s.reader().await?;
    let keys = reader.subjects().keys(subject).await?;
    let page = custodia_store::PageOf {
        subject_id: subject,
        collection: Some(collection),
        usable_by: None,
        after: None,
        limit: i64::MAX,
    };
    let records = reader.records().page_of_subject(page).await?;
    Ok((!keys.is_empty() || !records.is_empty()).then_some(SubjectRecords { keys, records }))
}

pub async fn record(s: &Store, subject: &str, collection: &str, id: &str) -> R<Option<SubjectRecords>> {
    s.reader().await?.records().one(target(subject, collection, id)).await
}

pub async fn update_record(s: &Store, subject: &str, collection: &str, id: &str, patch: &RecordPatch) -> R<bool> {
    update(s, subject, collection, id, patch, None).await
}

pub async fn update_record_audited(
    s: &Store,
    subject: &str,
    collection: &str,
    id: &str,
    patch: &RecordPatch,
    audit: AuditRow,
) -> R<bool> {
    update(s, subject, collection, id, patch, Some(audit)).await
}

async fn update(
    s: &Store,
    subject: &str,
    collection: &str,
    id: &str,
    patch: &RecordPatch,
    audit: Option<AuditRow>,
) -> R<bool> {
    let (subject, collection, id, patch) = (subject.to_owned(), collection.to_owned(), id.to_owned(), patch.clone());
    s.write(move |mut tx| {
        Box::pin(async move {
            let found = tx
                .records()
                .update(target(&subject, &collection, &id), &patch)
                .await?
                .is_some();
            if found {
                tx.audit().append(audit.as_slice()).await?;
            }
            Ok(found)
        })
    })
    .await
}

pub async fn delete_record(s: &Store, subject: &str, collection: &str, id: &str, audit: Option<&AuditRow>) -> R<bool> {
    let (subject, collection, id, audit) = (subject.to_owned(), collection.to_owned(), id.to_owned(), audit.cloned());
    s.write(move |mut tx| {
        Box::pin(async move {
            // Every purpose lets go of every value: the record goes with its last value.
            let t = target(&subject, &collection, &id);
            let Some(fields) = tx.records().fields_for_change(t).await? else {
                return Ok(false);
            };
            let unbind = fields
                .iter()
                .flat_map(|f| f.bindings.iter().map(|b| (f.field.clone(), b.purpose.clone())))
                .collect();
            let patch = RecordPatch {
                now: 0,
                unbind,
                ..RecordPatch::default()
            };
            let found = tx.records().update(t, &patch).await?.is_some();
            if found {
                tx.audit().append(audit.as_slice()).await?;
            }
            Ok(found)
        })
    })
    .await
}

pub async fn find_by_index(s: &Store, collection: &str, field: &str, digest: &[u8]) -> R<Vec<(String, String)>> {
    s.reader()
        .await?
        .records()
        .find_by_index(collection, field, digest, None, i64::MAX)
        .await
}

pub async fn append_ledger(s: &Store, entry: &LedgerRow, audit: Option<&AuditRow>) -> R<i64> {
    let (entry, audit) = (entry.clone(), audit.cloned());
    s.write(move |mut tx| {
        Box::pin(async move {
            let seq = tx.ledger().append(&entry, &crate::TestSeal).await?;
            tx.audit().append(audit.as_slice()).await?;
            Ok(seq)
        })
    })
    .await
}

pub async fn ledger(s: &Store, subject: &str) -> R<Vec<LedgerRow>> {
    s.reader().await?.ledger().of_subject(subject, &crate::TestSeal).await
}

pub async fn append_audit(s: &Store, rows: &[AuditRow]) -> R<()> {
    s.append_audit(rows.to_vec()).await
}

pub async fn audit_entries(s: &Store, after: i64, limit: i64) -> R<Vec<AuditRow>> {
    s.reader().await?.audit().entries(after, limit).await
}

pub async fn claim_tokens(s: &Store, rows: &[TokenRow], audit: Option<&AuditRow>) -> R<Vec<bool>> {
    let (rows, audit) = (rows.to_vec(), audit.cloned());
    s.write(move |mut tx| {
        Box::pin(async move {
            let stored = tx.tokens().claim(&rows).await?;
            tx.audit().append(audit.as_slice()).await?;
            Ok(stored)
        })
    })
    .await
}

pub async fn tokens(s: &Store, names: &[Vec<u8>]) -> R<Vec<TokenRow>> {
    s.reader().await?.tokens().get(names).await
}

pub async fn tokens_v1(s: &Store, tokens: &[String]) -> R<Vec<TokenRow>> {
    s.reader().await?.tokens().get_v1(tokens).await
}

pub async fn insert_principal(s: &Store, row: &PrincipalRow, audit: Option<&AuditRow>) -> R<()> {
    let (row, audit) = (row.clone(), audit.cloned());
    s.write(move |mut tx| {
        Box::pin(async move {
            tx.principals().insert(&row, &crate::TestSeal).await?;
            tx.audit().append(audit.as_slice()).await
        })
    })
    .await
}

pub async fn principal_by_key_id(s: &Store, key_id: &str) -> R<Option<PrincipalRow>> {
    s.reader().await?.principals().by_key_id(key_id).await
}

pub async fn principals(s: &Store) -> R<Vec<PrincipalRow>> {
    s.reader().await?.principals().all().await
}

pub async fn revoke_principal(s: &Store, id: &str, now: i64, audit: Option<&AuditRow>) -> R<bool> {
    let (id, audit) = (id.to_owned(), audit.cloned());
    s.write(move |mut tx| {
        Box::pin(async move {
            let revoked = tx.principals().revoke(&id, now).await?;
            if revoked {
                tx.audit().append(audit.as_slice()).await?;
            }
            Ok(revoked)
        })
    })
    .await
}

pub async fn rotate_principal(s: &Store, id: &str, key_id: &str, expires_at: Option<i64>) -> R<bool> {
    let (id, key_id) = (id.to_owned(), key_id.to_owned());
    s.write(move |mut tx| {
        Box::pin(async move { tx.principals().rotate(&id, &key_id, &[9; 32], expires_at, None).await })
    })
    .await
}

pub async fn insert_checkpoint(s: &Store, row: &CheckpointRow) -> R<()> {
    let row = row.clone();
    s.write(move |mut tx| Box::pin(async move { tx.audit().insert_checkpoint(&row).await }))
        .await
}

pub async fn checkpoints(s: &Store) -> R<Vec<CheckpointRow>> {
    s.reader().await?.audit().checkpoints_after(i64::MIN, i64::MAX).await
}
