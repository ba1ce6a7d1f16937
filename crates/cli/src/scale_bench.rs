//! `custodia bench-scale`: a vault holding N subjects, K records each, and what that costs in
//! memory. Populates a fresh data directory through the real create path (`create_record`
//! with the example registry's `customers` collection: orders under `order_fulfillment`,
//! payments under `payment`; each create audited, each subject's first record carrying its
//! new data key), many creates in flight so that the store's writer commits them in groups,
//! printing progress every 10%; then prints the database's size, the process's resident
//! memory, and the latency of audited reads (`list_records` of random subjects under
//! `order_fulfillment`) one at a time and with concurrent readers, and the memory after them.
//!
//! Data keys are not cached in memory: every read loads the subject's wrapped key with its
//! records and unwraps it. So resident memory should not grow with the number of subjects;
//! this is the figure that shows it. The values are synthetic (`user{n}@example.org`, phone
//! numbers of Ofcom's drama range, the well-known test card number).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use custodia_core::{Call, DataDir, Page, Principal, SubjectId, Timestamp, Vault, unmetered};
use sqlx::Connection;

use crate::measure::{Reads, memory, report};

const COLLECTION: &str = "customers";
const ORDERS: &str = "order_fulfillment";
const PAYMENTS: &str = "payment";
/// Creates in flight at once.
const IN_FLIGHT: usize = 256;
/// Reads one at a time, for the latency figures.
const SERIAL_READS: usize = 20_000;
/// Concurrent readers, and how long they read.
const READERS: usize = 16;
const READ_FOR: Duration = Duration::from_secs(10);

/// What to measure.
pub struct Options {
    pub subjects: usize,
    pub records_per_subject: usize,
    pub data_dir: Option<PathBuf>,
    pub keep: bool,
    pub database_url: Option<String>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if opts.subjects == 0 || opts.records_per_subject == 0 {
        bail!("--subjects and --records-per-subject must be at least 1");
    }
    opts.subjects
        .checked_mul(opts.records_per_subject)
        .context("--subjects times --records-per-subject is too large")?;
    let dir = match &opts.data_dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "{} is not empty: the benchmark needs a fresh data directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => std::env::temp_dir().join(format!("custodia-bench-scale-{}", custodia_crypto::random_hex::<8>()?)),
    };
    let result = measure(&dir, &opts).await;
    if opts.keep {
        println!("  data directory kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn subject(i: usize) -> anyhow::Result<SubjectId> {
    Ok(SubjectId::parse(&format!("sub_{i:08}"))?)
}

/// Record `k` of subject `i`: even ones are orders, odd ones payments.
fn record(i: usize, k: usize) -> (&'static str, BTreeMap<String, String>) {
    let field = |name: &str, value: String| (name.to_owned(), value);
    if k.is_multiple_of(2) {
        (
            ORDERS,
            [
                field("email", format!("user{i}@example.org")),
                field("name", format!("User {i}")),
                field("phone", format!("+44207946{:04}", i % 1000)),
                field("shipping_address", format!("{k} Example Street\nTestville")),
            ]
            .into(),
        )
    } else {
        (
            PAYMENTS,
            [
                field("name", format!("User {i}")),
                field("card_number", "4242424242424242".to_owned()),
            ]
            .into(),
        )
    }
}

/// Orders among a subject's `k` records (what a read under `order_fulfillment` shows).
fn orders_of(k: usize) -> usize {
    k.div_ceil(2)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The database's size in bytes, with what the WAL holds apart (SQLite), or the whole
/// database's (PostgreSQL).
async fn database_size(dir: &Path, database_url: Option<&str>) -> anyhow::Result<String> {
    match database_url {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await?;
            conn.close().await?;
            Ok(format!("{:.0} MiB (pg_database_size)", mib(u64::try_from(size)?)))
        }
        None => {
            let file = |suffix: &str| {
                std::fs::metadata(dir.join(format!("{}{suffix}", custodia_core::DB_FILE))).map_or(0, |m| m.len())
            };
            let (db, wal) = (file(""), file("-wal"));
            Ok(format!(
                "{:.0} MiB ({} plus {:.0} MiB of WAL)",
                mib(db + wal),
                custodia_core::DB_FILE,
                mib(wal)
            ))
        }
    }
}

async fn measure(dir: &Path, opts: &Options) -> anyhow::Result<()> {
    let (subjects, per) = (opts.subjects, opts.records_per_subject);
    let total = subjects * per;
    let url = opts.database_url.as_deref();
    let data = DataDir::new(dir);
    let made = data.init(url, Timestamp::now()).await?;
    let vault = Arc::new(data.open(url).await?);
    let admin = vault.authenticate(&made.admin_token, Timestamp::now()).await?;
    println!(
        "{subjects} subjects, {per} records each ({total} records: {} orders of 4 fields under {ORDERS}, {} payments of 2 under {PAYMENTS}) on {}; data in {}",
        subjects * orders_of(per),
        subjects * (per - orders_of(per)),
        vault.store().backend(),
        dir.display()
    );
    println!("  memory of the fresh vault: {}", memory());

    let start = Instant::now();
    populate(&vault, &admin, subjects, per).await?;
    let took = start.elapsed().as_secs_f64();
    println!(
        "  populated through create_record, {IN_FLIGHT} in flight: {total} records in {took:.1} s ({:.0} records/s)",
        total as f64 / took
    );
    println!("  database: {}", database_size(dir, url).await?);
    println!("  memory after the population: {}", memory());

    let serial = serial_reads(&vault, &admin, subjects, per).await?;
    report(&format!("reads one at a time ({SERIAL_READS})"), &serial);
    let concurrent = concurrent_reads(&vault, &admin, subjects, per).await?;
    report(&format!("reads, {READERS} concurrent readers"), &concurrent);
    println!("  memory after the reads: {}", memory());
    println!("  database after the reads: {}", database_size(dir, url).await?);
    Ok(())
}

/// Creates every record, `IN_FLIGHT` at a time: first every subject's first record, then
/// every subject's second, and so on (so no two creates race to make a subject's key).
async fn populate(vault: &Arc<Vault>, admin: &Principal, subjects: usize, per: usize) -> anyhow::Result<()> {
    let total = subjects * per;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let step = total.div_ceil(10).max(1);
    let start = Instant::now();
    let last = Arc::new(Mutex::new((start, 0usize)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT.min(total) {
        let (vault, admin) = (Arc::clone(vault), admin.clone());
        let (next, done, last) = (Arc::clone(&next), Arc::clone(&done), Arc::clone(&last));
        tasks.spawn(async move {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= total {
                    break;
                }
                let (i, k) = (j % subjects, j / subjects);
                let (purpose, fields) = record(i, k);
                let call = Call::new(&admin, purpose, Timestamp::now());
                vault.create_record(&call, &subject(i)?, COLLECTION, &fields).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % step == 0 || n == total {
                    let now = Instant::now();
                    let since = match last.lock() {
                        Ok(mut mark) => std::mem::replace(&mut *mark, (now, n)),
                        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), (now, n)),
                    };
                    let rate = (n - since.1) as f64 / now.duration_since(since.0).as_secs_f64();
                    let mem = memory();
                    println!(
                        "  {:>3}%: {n} records in {:.0} s ({:.0} records/s overall, {rate:.0} over the last step); VmRSS {:.0} MiB (anonymous {:.0} MiB)",
                        n * 100 / total,
                        now.duration_since(start).as_secs_f64(),
                        n as f64 / now.duration_since(start).as_secs_f64(),
                        mem.rss,
                        mem.anon
                    );
                }
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished??;
    }
    Ok(())
}

/// A xorshift step: the random subjects read.
fn step(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// One audited read of subject `i`'s orders, checked against what was stored.
async fn read(vault: &Vault, admin: &Principal, i: usize, per: usize) -> anyhow::Result<Duration> {
    let id = subject(i)?;
    let t = Instant::now();
    let call = Call::new(admin, ORDERS, Timestamp::now());
    let records = vault
        .list_records(&call, &id, COLLECTION, None, &Page::list(None, None)?, &unmetered)
        .await?
        .records;
    let took = t.elapsed();
    let email = format!("user{i}@example.org");
    anyhow::ensure!(
        records.len() == orders_of(per) && records.iter().all(|r| r.fields.get("email") == Some(&email)),
        "subject {i} read back wrong: {} records",
        records.len()
    );
    Ok(took)
}

async fn serial_reads(vault: &Vault, admin: &Principal, subjects: usize, per: usize) -> anyhow::Result<Reads> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(SERIAL_READS);
    for _ in 0..SERIAL_READS {
        let i = (step(&mut rng) % subjects as u64) as usize;
        latencies.push(read(vault, admin, i, per).await?);
    }
    Ok(Reads {
        elapsed: start.elapsed(),
        latencies,
    })
}

async fn concurrent_reads(vault: &Arc<Vault>, admin: &Principal, subjects: usize, per: usize) -> anyhow::Result<Reads> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..READERS {
        let (vault, admin, stop) = (Arc::clone(vault), admin.clone(), Arc::clone(&stop));
        tasks.spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (r as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = (step(&mut rng) % subjects as u64) as usize;
                latencies.push(read(&vault, &admin, i, per).await?);
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    tokio::time::sleep(READ_FOR).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    while let Some(finished) = tasks.join_next().await {
        latencies.extend(finished??);
    }
    Ok(Reads {
        elapsed: start.elapsed(),
        latencies,
    })
}
