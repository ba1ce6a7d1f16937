//! `custodia bench-retention`: the sweeper on a large store while reads go on. Stores
//! `--values` sealed values through the vault's create path (each bound to the purpose it was
//! collected for, with the expiry that purpose's rule gives), of which exactly `--expiring`
//! are due at the sweep's instant, then reads records back to back (each read audited, as
//! through the API) before and during one sweep, and prints the sweep's time and rate, the
//! reads' latencies, the process's memory, and checks what was destroyed against the database
//! itself. What "sweeping 100,000 expired values out of 1,000,000 takes seconds and reads stay
//! available" means in figures (issue 13).
//!
//! The data, with `t0` 400 days ago (so that the sweep's instant is in the past and reads run
//! at the real time):
//! - expiring: `payment` records (`name`, `card_number`; 13 months from collection)
//!   collected at `t0`, one millisecond apart. Four in five belong to active customers, one in
//!   five to lapsed customers who have nothing else (two old payments each): the sweeper
//!   removes those subjects, their data keys with them.
//! - kept: orders collected at `t0` + 12 months, each an `order_fulfillment` record (four
//!   values; 2 years from the last update) and a `payment` record (two values; due 13 months
//!   later), about two orders per active customer.
//! - the sweep runs `as_of` `t0` + 13 months + 1 day: only the old payments are due.
//!
//! Readers read random order records under `order_fulfillment`, which the sweep never touches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use custodia_core::{Call, DataDir, Principal, RecordId, SubjectId, SweepOptions, Timestamp, Vault};
use custodia_registry::Period;
use sqlx::Connection;

use crate::measure::{Reads, percentile, report};

const COLLECTION: &str = "customers";
/// Concurrent writers while loading (the store's writer commits what they send in groups).
const LOADERS: usize = 64;
/// How long the readers run before the sweep, for the baseline.
const BASELINE: Duration = Duration::from_secs(5);
const DAY_MS: i64 = 86_400_000;

/// What to measure.
pub struct Options {
    pub values: usize,
    pub expiring: usize,
    pub readers: usize,
    pub data_dir: Option<PathBuf>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if opts.expiring > opts.values {
        bail!("--expiring ({}) is more than --values ({})", opts.expiring, opts.values);
    }
    if opts.values - opts.expiring < 6 {
        bail!("--values must exceed --expiring by at least 6 (one order to read)");
    }
    match &opts.data_dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "{} is not empty: the benchmark needs a fresh data directory",
                    dir.display()
                );
            }
            measure(dir, &opts).await
        }
        None => {
            let dir = std::env::temp_dir().join(format!(
                "custodia-bench-retention-{}",
                custodia_crypto::random_hex::<8>()?
            ));
            let result = measure(&dir, &opts).await;
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
    }
}

/// One record to create.
#[derive(Clone, Copy)]
enum Item {
    /// An old payment (due at the sweep) of an active customer or a lapsed one; `card_only`:
    /// only the card number (when `--expiring` is odd). `n` orders the collection times.
    OldPayment { subject: Subject, n: u32, card_only: bool },
    /// A recent order: its `order_fulfillment` record.
    Order { customer: u32, n: u32 },
    /// A recent order's payment (two values, or only the card number).
    Payment { customer: u32, n: u32, card_only: bool },
}

#[derive(Clone, Copy)]
enum Subject {
    Customer(u32),
    Lapsed(u32),
}

impl Subject {
    fn id(self) -> String {
        match self {
            Self::Customer(c) => format!("cust-{c:07}"),
            Self::Lapsed(c) => format!("lapsed-{c:07}"),
        }
    }
}

/// The records to create, and what the sweep must destroy.
struct Layout {
    items: Vec<Item>,
    /// Old payment records (every one of them destroyed).
    expiring_records: u64,
    /// Lapsed subjects (every one removed).
    lapsed: u64,
    customers: u32,
}

fn layout(values: usize, expiring: usize) -> anyhow::Result<Layout> {
    let kept = values - expiring;
    // Two orders (six values each) per active customer.
    let orders = kept / 6;
    let customers = u32::try_from(orders.div_ceil(2).max(1)).context("too many values")?;
    let mut items = Vec::with_capacity(expiring / 2 + 1 + orders * 2 + 3);
    let old = expiring.div_ceil(2);
    let mut lapsed = std::collections::BTreeSet::new();
    for j in 0..old {
        let n = u32::try_from(j).context("too many values")?;
        // One old payment in five belongs to a lapsed customer (two each, five apart).
        let subject = if j % 5 == 0 {
            lapsed.insert(n / 10);
            Subject::Lapsed(n / 10)
        } else {
            Subject::Customer(n.wrapping_mul(2_654_435_761) % customers)
        };
        let card_only = expiring % 2 == 1 && j + 1 == old;
        items.push(Item::OldPayment { subject, n, card_only });
    }
    let mut n = 0u32;
    for o in 0..orders {
        let customer = u32::try_from(o).context("too many values")? % customers;
        items.push(Item::Order { customer, n });
        items.push(Item::Payment {
            customer,
            n: n + 1,
            card_only: false,
        });
        n += 2;
    }
    // What six-value orders leave over: another order record, then payments.
    let mut rest = kept % 6;
    if rest >= 4 {
        items.push(Item::Order { customer: 0, n });
        n += 1;
        rest -= 4;
    }
    while rest > 0 {
        items.push(Item::Payment {
            customer: 0,
            n,
            card_only: rest == 1,
        });
        n += 1;
        rest = rest.saturating_sub(2);
    }
    Ok(Layout {
        items,
        expiring_records: old as u64,
        lapsed: lapsed.len() as u64,
        customers,
    })
}

/// A card number that passes the Luhn check, distinct per `n`.
fn card(n: u32) -> String {
    let body = format!("4{:014}", u64::from(n) * 7 + 1_000_000);
    let mut sum = 0;
    for (i, c) in body.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The instants the data is laid out on.
#[derive(Clone, Copy)]
struct Clock {
    /// When the old payments were collected.
    t0: i64,
    /// When the orders were placed: `t0` + 12 months.
    late: i64,
    /// The sweep's instant: `t0` + 13 months + 1 day.
    as_of: i64,
}

impl Item {
    /// The record: its subject, purpose, collection time and fields.
    fn record(self, clock: Clock) -> (String, &'static str, i64, std::collections::BTreeMap<String, String>) {
        let field = |k: &str, v: String| (k.to_owned(), v);
        match self {
            Self::OldPayment { subject, n, card_only } => {
                let mut fields = std::collections::BTreeMap::from([field("card_number", card(n))]);
                if !card_only {
                    fields.insert("name".into(), format!("Customer {}", subject.id()));
                }
                (subject.id(), "payment", clock.t0 + i64::from(n), fields)
            }
            Self::Order { customer, n } => (
                Subject::Customer(customer).id(),
                "order_fulfillment",
                clock.late + i64::from(n),
                [
                    field("email", format!("c{customer}.{n}@example.com")),
                    field("name", format!("Customer {customer}")),
                    field("phone", format!("+4420{:08}", (u64::from(n) * 7919) % 100_000_000)),
                    field("shipping_address", format!("{n} High Street\nLondon")),
                ]
                .into(),
            ),
            Self::Payment { customer, n, card_only } => {
                let mut fields = std::collections::BTreeMap::from([field("card_number", card(u32::MAX - n))]);
                if !card_only {
                    fields.insert("name".into(), format!("Customer {customer}"));
                }
                (
                    Subject::Customer(customer).id(),
                    "payment",
                    clock.late + i64::from(n),
                    fields,
                )
            }
        }
    }
}

/// Counts read from the database itself (a separate read-only connection), not from the
/// sweeper's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Census {
    values: i64,
    bindings: i64,
    records: i64,
    subject_keys: i64,
}

async fn census(db: &Path) -> anyhow::Result<Census> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let mut count = async |table: &str| -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut conn)
                .await?,
        )
    };
    let census = Census {
        values: count("record_fields").await?,
        bindings: count("field_bindings").await?,
        records: count("records").await?,
        subject_keys: count("subject_keys").await?,
    };
    conn.close().await?;
    Ok(census)
}

async fn measure(dir: &Path, opts: &Options) -> anyhow::Result<()> {
    let now = Timestamp::now().0;
    let t0 = now - 400 * DAY_MS;
    let clock = Clock {
        t0,
        late: Period::Months(12).after(t0),
        as_of: Period::Days(1).after(Period::Months(13).after(t0)),
    };
    let data = DataDir::new(dir);
    let made = data.init(None, Timestamp(t0)).await?;
    let vault = Arc::new(data.open(None).await?);
    let admin = vault.authenticate(&made.admin_token, Timestamp(t0)).await?;
    let plan = layout(opts.values, opts.expiring)?;
    println!(
        "retention sweep on sqlite: {} values in {} records ({} customers, {} lapsed), {} due; {} readers; data in {}",
        opts.values,
        plan.items.len(),
        plan.customers,
        plan.lapsed,
        opts.expiring,
        opts.readers,
        dir.display()
    );

    let start = Instant::now();
    let orders = load(&vault, &admin, &plan.items, clock).await?;
    let loaded = start.elapsed().as_secs_f64();
    let db = dir.join("custodia.db");
    let before = census(&db).await?;
    let due = vault.store().reader().await?.retention().count_due(clock.as_of).await?;
    let (rss, peak) = crate::audit_bench::memory_mib();
    println!(
        "  loaded through create_record, {LOADERS} writers: {} records, {} values, {} bindings in {loaded:.1} s ({:.0} values/s); due at the sweep: {due}; memory {rss:.0} MiB, peak {peak:.0} MiB",
        before.records,
        before.values,
        before.bindings,
        before.values as f64 / loaded
    );
    if usize::try_from(before.values).ok() != Some(opts.values) || usize::try_from(due).ok() != Some(opts.expiring) {
        bail!(
            "the load stored {} values, {due} due; expected {} and {}",
            before.values,
            opts.values,
            opts.expiring
        );
    }

    // A fresh vault has recorded no rule yet: its first sweep computes every binding's times
    // again (what an upgrade or a changed rule needs). Timed apart, so that the sweep below
    // is the steady state a periodic job sees.
    let start = Instant::now();
    let retimed = vault.reconcile_retention(Timestamp::now()).await?;
    println!(
        "  rules recorded (a fresh vault's first pass over all {} bindings, {retimed} changed): {:.1} s",
        before.bindings,
        start.elapsed().as_secs_f64()
    );

    let orders = Arc::new(orders);
    let stop = Arc::new(AtomicBool::new(false));
    let baseline = read_for(&vault, &admin, &orders, opts.readers, &stop, Some(BASELINE)).await?;
    report("reads before the sweep", &baseline);

    let readers = {
        let (vault, admin, orders, stop) = (
            Arc::clone(&vault),
            admin.clone(),
            Arc::clone(&orders),
            Arc::clone(&stop),
        );
        let n = opts.readers;
        tokio::spawn(async move { read_for(&vault, &admin, &orders, n, &stop, None).await })
    };
    let sweep = SweepOptions {
        as_of: Timestamp(clock.as_of),
        now: Timestamp::now(),
        dry_run: false,
        batch: custodia_core::SWEEP_BATCH,
    };
    let mut batches: Vec<Duration> = Vec::new();
    let mut last = Instant::now();
    let start = last;
    let swept = vault
        .sweep(&sweep, &mut |_: &custodia_types::SweepReport| {
            batches.push(last.elapsed());
            last = Instant::now();
        })
        .await;
    let took = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = readers.await??;
    let swept = swept?;
    println!(
        "  sweep (dry_run = false, batches of {}): {} bindings ended, {} values, {} records, {} subjects removed in {took:.2} s ({:.0} bindings/s, {:.0} values/s)",
        custodia_core::SWEEP_BATCH,
        swept.bindings_ended,
        swept.values_destroyed,
        swept.records_destroyed,
        swept.subjects_removed,
        swept.bindings_ended as f64 / took,
        swept.values_destroyed as f64 / took
    );
    let mut sorted = batches.clone();
    sorted.sort_unstable();
    println!(
        "  per batch: {} batches, median {:.0} ms, max {:.0} ms",
        sorted.len(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 1.0)
    );
    report("reads during the sweep", &during);

    let start = Instant::now();
    let again = vault.sweep(&sweep, &mut |_| {}).await?;
    println!(
        "  a second sweep, nothing due: {:.1} ms ({} values destroyed)",
        start.elapsed().as_secs_f64() * 1000.0,
        again.values_destroyed
    );
    let (rss, peak) = crate::audit_bench::memory_mib();
    println!("  memory {rss:.0} MiB, peak of the whole run {peak:.0} MiB");

    let after = census(&db).await?;
    let due_after = vault.store().reader().await?.retention().count_due(clock.as_of).await?;
    println!(
        "  database before/after: values {} -> {}, bindings {} -> {}, records {} -> {}, subject keys {} -> {}; due after: {due_after}",
        before.values,
        after.values,
        before.bindings,
        after.bindings,
        before.records,
        after.records,
        before.subject_keys,
        after.subject_keys
    );
    let expiring = i64::try_from(opts.expiring)?;
    let checks = [
        ("values destroyed (database)", before.values - after.values, expiring),
        ("bindings ended (database)", before.bindings - after.bindings, expiring),
        (
            "values destroyed (report)",
            i64::try_from(swept.values_destroyed)?,
            expiring,
        ),
        (
            "bindings ended (report)",
            i64::try_from(swept.bindings_ended)?,
            expiring,
        ),
        (
            "records destroyed (database)",
            before.records - after.records,
            i64::try_from(plan.expiring_records)?,
        ),
        (
            "subject keys destroyed (database)",
            before.subject_keys - after.subject_keys,
            i64::try_from(plan.lapsed)?,
        ),
        (
            "subjects removed (report)",
            i64::try_from(swept.subjects_removed)?,
            i64::try_from(plan.lapsed)?,
        ),
        ("due after the sweep", i64::try_from(due_after)?, 0),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: {got}, expected {want}"))
        .collect();
    if !wrong.is_empty() {
        bail!("the sweep did not do what was due: {}", wrong.join("; "));
    }
    println!("  checked: exactly the {expiring} due values are gone, and nothing else");
    Ok(())
}

/// Creates `items` through `create_record`, `LOADERS` at a time, each at its own collection
/// time; returns `(subject, record)` of every order record (what the readers read).
async fn load(
    vault: &Arc<Vault>,
    admin: &Principal,
    items: &[Item],
    clock: Clock,
) -> anyhow::Result<Vec<(SubjectId, RecordId)>> {
    let items: Arc<[Item]> = items.into();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..LOADERS {
        let (vault, admin, items, next) = (Arc::clone(vault), admin.clone(), Arc::clone(&items), Arc::clone(&next));
        tasks.spawn(async move {
            let mut orders = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let (subject, purpose, at, fields) = item.record(clock);
                let subject = SubjectId::parse(&subject)?;
                let call = Call::new(&admin, purpose, Timestamp(at));
                let id = vault.create_record(&call, &subject, COLLECTION, &fields).await?;
                if matches!(item, Item::Order { .. }) {
                    orders.push((subject, id));
                }
            }
            Ok::<_, anyhow::Error>(orders)
        });
    }
    let total = items.len();
    let progress = tokio::spawn({
        let next = Arc::clone(&next);
        async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let done = next.load(Ordering::Relaxed).min(total);
                eprintln!(
                    "  loading: {done}/{total} records, {:.0} s",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    });
    let mut orders = Vec::new();
    while let Some(done) = tasks.join_next().await {
        orders.extend(done??);
    }
    progress.abort();
    Ok(orders)
}

/// `readers` tasks reading random order records back to back under `order_fulfillment`,
/// for `limit` or until `stop`; returns every read's latency and the time they ran.
async fn read_for(
    vault: &Arc<Vault>,
    admin: &Principal,
    orders: &Arc<Vec<(SubjectId, RecordId)>>,
    readers: usize,
    stop: &Arc<AtomicBool>,
    limit: Option<Duration>,
) -> anyhow::Result<Reads> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..readers.max(1) {
        let (vault, admin, orders, stop) = (Arc::clone(vault), admin.clone(), Arc::clone(orders), Arc::clone(stop));
        tasks.spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (r as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| start.elapsed() < l) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let Some((subject, record)) = orders.get((rng % orders.len().max(1) as u64) as usize) else {
                    break;
                };
                let t = Instant::now();
                let call = Call::new(&admin, "order_fulfillment", Timestamp::now());
                vault.get_record(&call, subject, COLLECTION, record, None).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    Ok(Reads {
        elapsed: start.elapsed(),
        latencies,
    })
}
