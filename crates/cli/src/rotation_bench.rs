//! `custodia bench-rotation`: a root key rotation over N subjects while their records are
//! read. Stores one record for each of N subjects in a fresh SQLite data directory, reads
//! random subjects back to back (each read audited, as through the API) before and during
//! the rotation, and prints the rotation's time and rate, the reads' latencies, and what
//! `keys status` says after: what "rotation finishes online with reads still working" means
//! in figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use custodia_core::{Call, DataDir, Page, SubjectId, Timestamp, Vault, unmetered};

use crate::erasure_bench::report;

const PURPOSE: &str = "order_fulfillment";
const COLLECTION: &str = "customers";

pub async fn run(subjects: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "custodia-bench-rotation-{}",
        custodia_crypto::random_hex::<8>()?
    ));
    let result = measure(&dir, subjects.max(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn subject(i: usize) -> anyhow::Result<SubjectId> {
    Ok(SubjectId::parse(&format!("bench_{i:07}"))?)
}

async fn measure(dir: &std::path::Path, subjects: usize) -> anyhow::Result<()> {
    let data = DataDir::new(dir);
    let made = data.init(None, Timestamp::now()).await?;
    let vault = Arc::new(data.open(None).await?);
    let admin = vault.authenticate(&made.admin_token, Timestamp::now()).await?;
    println!("rotating the root key over {subjects} subjects on sqlite, while they are read");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..subjects).collect::<Vec<_>>().chunks(subjects.div_ceil(16)) {
        let (vault, admin, chunk) = (Arc::clone(&vault), admin.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                let fields: BTreeMap<String, String> = [("email".to_owned(), format!("c{i}@example.com"))].into();
                let call = Call::new(&admin, PURPOSE, Timestamp::now());
                vault.create_record(&call, &subject(i)?, COLLECTION, &fields).await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    println!("  stored in {:.1} s", start.elapsed().as_secs_f64());

    let baseline = reads(&vault, &admin, subjects, Duration::from_secs(2), None).await?;
    report("reads, before", &baseline);
    let rotating = Arc::new(AtomicBool::new(true));
    let reader = {
        let (vault, admin, rotating) = (Arc::clone(&vault), admin.clone(), Arc::clone(&rotating));
        tokio::spawn(async move { reads(&vault, &admin, subjects, Duration::from_secs(3600), Some(&rotating)).await })
    };
    let start = Instant::now();
    let (version, _) = vault.begin_rotation("bench", Timestamp::now()).await?;
    let rewrapped = vault.rewrap_all(|_| {}).await;
    let took = start.elapsed().as_secs_f64();
    rotating.store(false, Ordering::Relaxed);
    let during = reader.await??;
    let rewrapped = rewrapped?;
    println!(
        "  rotation to version {version}: {rewrapped} subject keys re-wrapped in {took:.2} s ({:.0} keys/s)",
        rewrapped as f64 / took
    );
    report("reads, during the rotation", &during);
    let status = vault.key_status(Timestamp::now()).await?;
    for v in &status.versions {
        println!(
            "  keys status: version {} {}: {} subject keys, {} service keys{}",
            v.version,
            if v.current { "(current)" } else { "" },
            v.subject_keys,
            v.service_keys,
            if v.unused { ", unused" } else { "" }
        );
    }
    anyhow::ensure!(
        status.pending == 0,
        "{} keys were left under an older version",
        status.pending
    );
    Ok(())
}

/// Reads random subjects back to back for `limit`, or while `until` holds; each read's
/// latency. Every value read is checked.
async fn reads(
    vault: &Vault,
    admin: &custodia_core::Principal,
    subjects: usize,
    limit: Duration,
    until: Option<&AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut i: usize = 7;
    while start.elapsed() < limit && until.is_none_or(|u| u.load(Ordering::Relaxed)) {
        i = (i * 7_919 + 13) % subjects;
        let t = Instant::now();
        let call = Call::new(admin, PURPOSE, Timestamp::now());
        let records = vault
            .list_records(
                &call,
                &subject(i)?,
                COLLECTION,
                None,
                &Page::list(None, None)?,
                &unmetered,
            )
            .await?
            .records;
        latencies.push(t.elapsed());
        let email = records.first().and_then(|r| r.fields.get("email"));
        anyhow::ensure!(
            email.is_some_and(|e| *e == format!("c{i}@example.com")),
            "subject {i} read back wrong"
        );
    }
    Ok(latencies)
}
