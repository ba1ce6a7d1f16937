//! `custodia bench-audit-query`: the audit log's indexed queries on a large log. Appends N
//! synthetic entries (spread over subjects, principals and 30 days) to a fresh store, then
//! times "every entry of one subject" and "every read by one principal in one hour", the
//! lookups that subject access reports and incident blast radius make, through the same
//! store calls the API uses.

use std::time::Instant;

use custodia_store::{AuditQuery, Store};

/// Entries per append.
const BATCH: usize = 10_000;
/// Distinct principals writing entries.
const PRINCIPALS: usize = 50;
/// The time the synthetic log of the query benchmark spans, in milliseconds.
const SPAN_MS: i64 = 30 * 24 * 3_600_000;

/// The time the synthetic log of a vault spans: less than the unsigned tail a start accepts.
const UNSIGNED_SPAN_MS: i64 = custodia_core::UNSIGNED_TAIL_SPAN_MS / 2;

/// Synthetic entry `i` of `entries`, dated `from` plus its share of `span_ms`: its time and text.
fn entry(i: usize, entries: usize, from: i64, span_ms: i64) -> (i64, String) {
    // About ten entries per subject; times spread evenly over the span.
    let subject = format!("{:064x}", (i.wrapping_mul(2_654_435_761)) % (entries / 10).max(1));
    let principal = format!("prn_{:024x}", i % PRINCIPALS);
    let at = from + (i as i64) * span_ms / (entries as i64).max(1);
    let text = format!(
        "{{\"v\":1,\"at\":{at},\"principal\":\"{principal}\",\"action\":\"record.read\",\"decision\":\"allow\",\"reason\":null,\"purpose\":\"order_fulfillment\",\"collection\":\"customers\",\"subject\":\"{subject}\",\"fields\":[\"email\"]}}"
    );
    (at, text)
}

/// Entry `i` of the query benchmark's log (30 days of entries, in a store of its own).
fn query_row(i: usize, entries: usize) -> custodia_store::AuditRow {
    let (at, text) = entry(i, entries, 0, SPAN_MS);
    custodia_core::audit_row_of(at, text)
}

pub async fn run(entries: usize, database_url: Option<&str>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "custodia-bench-audit-query-{}",
        custodia_crypto::random_hex::<8>()?
    ));
    std::fs::create_dir_all(&dir)?;
    let url = match database_url {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.join("custodia.db").display()),
    };
    let result = measure(&url, entries).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(url: &str, entries: usize) -> anyhow::Result<()> {
    let store = Store::open(url).await?;
    // a throwaway store of synthetic entries: linked with a key of its own
    let secret = zeroize::Zeroizing::new(custodia_crypto::random_array::<32>()?);
    store.link_audit_with(std::sync::Arc::new(custodia_audit::chain::ChainKey::new(&secret)));
    println!("audit queries on {} with {entries} entries", store.backend());
    let start = Instant::now();
    let mut i = 0;
    while i < entries {
        let rows: Vec<_> = (i..(i + BATCH).min(entries)).map(|n| query_row(n, entries)).collect();
        i += rows.len();
        store.append_audit(rows).await?;
    }
    let load = start.elapsed().as_secs_f64();
    println!(
        "  appended in {load:.1} s ({:.0} entries/s, with the indexes)",
        entries as f64 / load
    );

    // What the server's `audit-subject-index` job does every second, here once for the lot.
    let start = Instant::now();
    let indexed: u64 = store
        .write(|mut tx| Box::pin(async move { tx.audit().index_subjects().await }))
        .await?;
    println!(
        "  subject index built in {:.1} s ({indexed} entries; the server's job does this every second for what is new)",
        start.elapsed().as_secs_f64()
    );

    let subjects: Vec<String> = (0..200)
        .map(|k| query_row(k * 7919 % entries.max(1), entries))
        .filter_map(|r| r.index.subject)
        .collect();
    let mut times = Vec::new();
    let mut found = 0;
    for s in &subjects {
        let q = AuditQuery {
            subjects: vec![s.clone()],
            ..AuditQuery::default()
        };
        let t = Instant::now();
        found += store.reader().await?.audit().query(&q, 0, 1000).await?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report("every entry of one subject", &mut times, found, subjects.len());

    let mut times = Vec::new();
    let mut found = 0;
    let queries = 200usize;
    for k in 0..queries {
        let from = (k as i64 * 7_919_000) % (SPAN_MS - 3_600_000);
        let q = AuditQuery {
            principal: Some(format!("prn_{:024x}", k % PRINCIPALS)),
            action: Some("record.read".into()),
            from: Some(from),
            to: Some(from + 3_600_000),
            ..AuditQuery::default()
        };
        let t = Instant::now();
        let mut after = 0;
        loop {
            let page = store.reader().await?.audit().query(&q, after, 1000).await?;
            found += page.len();
            match page.last() {
                Some(last) if page.len() == 1000 => after = last.seq,
                _ => break,
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report("every read by one principal in one hour", &mut times, found, queries);
    Ok(())
}

/// The median and 99th percentile of `times`.
fn percentiles(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (pick(0.5), pick(0.99))
}

fn report(what: &str, times: &mut [f64], found: usize, queries: usize) {
    let (median, p99) = percentiles(times);
    println!(
        "  {what}: median {median:.2} ms, p99 {p99:.2} ms ({queries} queries, {:.1} entries each on average)",
        found as f64 / queries.max(1) as f64
    );
}

/// Resident and peak memory of this process, in MiB (Linux `/proc/self/status`).
pub(crate) fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `custodia bench-audit-log`: a vault whose log holds N entries; times what a large log
/// costs: the server's start (the whole log checked against its checkpoints, tiles caught
/// up), `audit verify`, and inclusion and consistency proofs (O(log n) tiles each), with the
/// process's memory around them.
pub async fn run_log(entries: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "custodia-bench-audit-log-{}",
        custodia_crypto::random_hex::<8>()?
    ));
    let result = measure_log(&dir, entries).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure_log(dir: &std::path::Path, entries: usize) -> anyhow::Result<()> {
    use custodia_core::{DataDir, Timestamp};
    let data = DataDir::new(dir);
    let made = data.init(None, Timestamp::now()).await?;
    let vault = data.open(None).await?;
    let admin = vault.authenticate(&made.admin_token, Timestamp::now()).await?;
    println!("audit log of {entries} entries on sqlite");
    // Entries as the vault writes them (tagged), dated within the last minute: a log whose
    // unsigned tail spans more than a minute (30 days, as the query benchmark's) is one whose
    // checkpoints were deleted, and the start refuses it.
    let from = Timestamp::now().0 - UNSIGNED_SPAN_MS;
    let start = Instant::now();
    let mut i = 0;
    while i < entries {
        let rows = (i..(i + BATCH).min(entries))
            .map(|n| {
                let (at, text) = entry(n, entries, from, UNSIGNED_SPAN_MS);
                vault.tagged_audit_row(at, &text)
            })
            .collect::<Result<Vec<_>, _>>()?;
        i += rows.len();
        vault.store().append_audit(rows).await?;
    }
    println!("  appended in {:.1} s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    vault
        .resume_audit_log(Vec::new())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    vault.checkpoint(Timestamp::now()).await?;
    let (rss, peak) = memory_mib();
    println!(
        "  server start on it (every entry checked, tiles cut and stored, a checkpoint signed): {:.1} s; memory {rss:.0} MiB, peak {peak:.0} MiB",
        start.elapsed().as_secs_f64()
    );

    let trust = custodia_core::AuditTrust {
        tag_key: None,
        link_key: None,
        key: vault.audit_verifier_key(),
        trusted: Vec::new(),
        now: Timestamp::now(),
        max_unsigned_age: None,
        contiguous: true,
    };
    let start = Instant::now();
    let verified = custodia_core::verify_audit_log(vault.store(), &trust, &())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "  audit verify: {} entries in {seconds:.1} s ({:.0} entries/s)",
        verified.entries,
        verified.entries as f64 / seconds
    );

    let size = verified.entries;
    let (before, _) = memory_mib();
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    // Each call a second after the last, as far as the proof rate limit can tell.
    let base = Timestamp::now().0;
    for k in 0..500u64 {
        let index = k.wrapping_mul(2_654_435_761) % size;
        let now = Timestamp(base + i64::try_from(k).unwrap_or(0) * 1000);
        let t = Instant::now();
        vault.inclusion_proof(&admin, now, index, size).await?;
        inclusion.push(t.elapsed().as_secs_f64() * 1000.0);
        let from = 1 + k.wrapping_mul(40_503) % (size - 1);
        let t = Instant::now();
        vault.consistency_proof(&admin, now, from, size).await?;
        consistency.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (after, peak) = memory_mib();
    for (what, times) in [("inclusion", &mut inclusion), ("consistency", &mut consistency)] {
        let (median, p99) = percentiles(times);
        println!(
            "  {what} proof against the whole log: median {median:.2} ms, p99 {p99:.2} ms (500 proofs, each audited)"
        );
    }
    println!(
        "  memory around the 1,000 proofs: {before:.0} MiB before, {after:.0} MiB after (peak of the whole run {peak:.0} MiB; the leaves alone would be {:.0} MiB)",
        size as f64 * 32.0 / 1_048_576.0
    );
    Ok(())
}
