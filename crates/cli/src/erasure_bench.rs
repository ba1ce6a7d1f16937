//! `custodia bench-erasure`: erasing a subject with many records while another subject is
//! read. Stores N records of one subject in a fresh SQLite data directory, then reads another
//! subject's record in a loop (each read audited, as through the API) before and during the
//! erasure request's fulfilment, and prints the erasure's time and the reads' latencies: what
//! "erasing a large subject does not block other requests" means in figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use custodia_core::{Call, DataDir, RecordId, SubjectId, Timestamp, Vault};
use custodia_types::{FulfilRequest, NewSubjectRequest};

const PURPOSE: &str = "order_fulfillment";
const COLLECTION: &str = "customers";

pub async fn run(records: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "custodia-bench-erasure-{}",
        custodia_crypto::random_hex::<8>()?
    ));
    let result = measure(&dir, records).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(dir: &std::path::Path, records: usize) -> anyhow::Result<()> {
    let data = DataDir::new(dir);
    let made = data.init(None, Timestamp::now()).await?;
    let vault = Arc::new(data.open(None).await?);
    let admin = vault.authenticate(&made.admin_token, Timestamp::now()).await?;
    let erased = SubjectId::parse("bench_erased")?;
    let other = SubjectId::parse("bench_other")?;
    let fields = |i: usize| -> BTreeMap<String, String> {
        [
            ("email".to_owned(), format!("erased{i}@example.com")),
            ("name".to_owned(), format!("Customer {i}")),
        ]
        .into()
    };
    println!("erasing a subject with {records} records on sqlite, while another subject is read");
    let start = Instant::now();
    // Created concurrently, as a busy shop would: the writer commits them in groups.
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..records).collect::<Vec<_>>().chunks(records.div_ceil(16).max(1)) {
        let (vault, admin, erased, chunk) = (Arc::clone(&vault), admin.clone(), erased.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                let call = Call::new(&admin, PURPOSE, Timestamp::now());
                vault.create_record(&call, &erased, COLLECTION, &fields(i)).await?;
            }
            Ok::<(), custodia_core::VaultError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!("  stored in {:.1} s", start.elapsed().as_secs_f64());
    let call = Call::new(&admin, PURPOSE, Timestamp::now());
    let record = vault.create_record(&call, &other, COLLECTION, &fields(records)).await?;

    let baseline = reads(&vault, &admin, &other, &record, Duration::from_secs(2), None).await?;
    report("reads of another subject, before", &baseline);

    let erasing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (vault, admin, other, record, erasing) = (
            Arc::clone(&vault),
            admin.clone(),
            other.clone(),
            record.clone(),
            Arc::clone(&erasing),
        );
        tokio::spawn(async move {
            reads(
                &vault,
                &admin,
                &other,
                &record,
                Duration::from_secs(600),
                Some(&erasing),
            )
            .await
        })
    };
    let request = vault
        .create_request(
            &admin,
            Timestamp::now(),
            &NewSubjectRequest {
                subject_id: erased.as_str().to_owned(),
                kind: "erasure".into(),
                jurisdiction: "gdpr".into(),
                received_via: None,
                received_at: None,
                verified_by: Some("benchmark".into()),
            },
        )
        .await?;
    let start = Instant::now();
    let fulfilled = vault
        .fulfil_request(&admin, Timestamp::now(), &request.request_id, &FulfilRequest::default())
        .await;
    let took = start.elapsed().as_secs_f64();
    erasing.store(false, Ordering::Relaxed);
    let during = reader.await??;
    match fulfilled? {
        custodia_core::Fulfilled::Erasure(receipt) => println!(
            "  erasure: {} records, {} values, {} index entries deleted in {took:.2} s ({:.0} records/s); WAL emptied: {}",
            receipt.deleted.records,
            receipt.deleted.values,
            receipt.deleted.index_entries,
            receipt.deleted.records as f64 / took,
            receipt.wal_purged
        ),
        other => anyhow::bail!("an erasure request fulfilled as {other:?}"),
    }
    report("reads of another subject, during the erasure", &during);
    Ok(())
}

/// Reads `record` of `subject` back to back for `limit`, or while `until` holds; returns each
/// read's latency.
async fn reads(
    vault: &Vault,
    admin: &custodia_core::Principal,
    subject: &SubjectId,
    record: &RecordId,
    limit: Duration,
    until: Option<&AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < limit && until.is_none_or(|u| u.load(Ordering::Relaxed)) {
        let t = Instant::now();
        let call = Call::new(admin, PURPOSE, Timestamp::now());
        vault.get_record(&call, subject, COLLECTION, record, None).await?;
        latencies.push(t.elapsed());
    }
    Ok(latencies)
}

pub(crate) fn report(what: &str, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "  {what}: {} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
