//! `custodia bench`: figures for the README, printed with what produced them.
//!
//! 1. Field envelope seal/open per 64-byte value next to raw AES-256-GCM on the same value.
//! 2. HTTP on SQLite: an in-process server on a free loopback port, N keep-alive clients,
//!    timed phases of creates, reads and a 50/50 mix; throughput and latency percentiles.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use custodia_core::{Call, DataDir, Timestamp};
use custodia_crypto::{DataKey, FieldContext, SecretKey, raw_aes_gcm_seal};

use crate::http_client::Connection;

pub async fn run(seconds: u64, clients: usize, crypto_only: bool) -> anyhow::Result<()> {
    crypto()?;
    gate().await?;
    audit().await?;
    if !crypto_only {
        http(Duration::from_secs(seconds), clients.max(1)).await?;
    }
    Ok(())
}

fn time_per_op(iterations: u32, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..iterations / 10 {
        op()?;
    }
    let start = Instant::now();
    for _ in 0..iterations {
        op()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(iterations))
}

fn crypto() -> anyhow::Result<()> {
    const N: u32 = 300_000;
    let value = [0x61u8; 64];
    let secret = SecretKey::generate()?;
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, secret.expose()).map_err(|_| anyhow::anyhow!("aes key"))?);
    let key = DataKey::from_secret(1, &secret)?;
    let ctx = FieldContext {
        collection: "customers",
        subject: "cust_000042",
        record: "rec_0123456789abcdef0123456789abcdef",
        field: "email",
    };
    let sealed = key.seal(&ctx, &value)?;

    let raw_ns = time_per_op(N, || {
        black_box(raw_aes_gcm_seal(&raw, black_box(&value))?);
        Ok(())
    })?;
    let seal_ns = time_per_op(N, || {
        black_box(key.seal(&ctx, black_box(&value))?);
        Ok(())
    })?;
    let open_ns = time_per_op(N, || {
        black_box(key.open(&ctx, black_box(&sealed))?);
        Ok(())
    })?;
    println!("field encryption, 64-byte value, {N} iterations each (custodia bench):");
    println!("  raw aws-lc-rs AES-256-GCM seal (random nonce): {raw_ns:>7.0} ns/op");
    println!(
        "  custodia field seal (header + bound AAD):      {seal_ns:>7.0} ns/op  ({:.2}x raw)",
        seal_ns / raw_ns
    );
    println!(
        "  custodia field open:                           {open_ns:>7.0} ns/op  ({:.2}x raw)",
        open_ns / raw_ns
    );
    Ok(())
}

/// The access gate's cost (Cedar decisions + the subject's ledger state) next to a whole
/// audited single-record read through the vault, in process, one request at a time.
async fn gate() -> anyhow::Result<()> {
    const N: u32 = 2_000;
    let dir = std::env::temp_dir().join(format!("custodia-bench-gate-{}", custodia_crypto::random_hex::<8>()?));
    let result = gate_in(&dir, N).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn gate_in(dir: &std::path::Path, n: u32) -> anyhow::Result<()> {
    let data = DataDir::new(dir);
    let token = data.init(None, Timestamp::now()).await?.admin_token;
    let vault = data.open(None).await?;
    let admin = vault.authenticate(&token, Timestamp::now()).await?;
    let subject = custodia_core::SubjectId::parse("bench-gate")?;
    let fields = std::collections::BTreeMap::from([
        ("email".to_owned(), "ada@example.com".to_owned()),
        ("name".to_owned(), "Ada".to_owned()),
        ("phone".to_owned(), "+442079460958".to_owned()),
        ("shipping_address".to_owned(), "12 Analytical Row".to_owned()),
    ]);
    let purpose = "order_fulfillment";
    let call = |now| Call::new(&admin, purpose, now);
    let id = vault
        .create_record(&call(Timestamp::now()), &subject, "customers", &fields)
        .await?;
    // Warm both paths (policy decisions are memoized; the ledger state is cached).
    vault
        .check_access(&call(Timestamp::now()), &subject, "customers", None)
        .await?;
    vault
        .get_record(&call(Timestamp::now()), &subject, "customers", &id, None)
        .await?;

    let start = Instant::now();
    for _ in 0..n {
        black_box(
            vault
                .check_access(&call(Timestamp::now()), &subject, "customers", None)
                .await?,
        );
    }
    let gate_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let start = Instant::now();
    for _ in 0..n {
        black_box(
            vault
                .get_record(&call(Timestamp::now()), &subject, "customers", &id, None)
                .await?,
        );
    }
    let read_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("access gate, in process, one request at a time, {n} iterations each (custodia bench):");
    println!(
        "  gate (Cedar decisions + ledger state), 4 fields: {gate_us:>8.2} us  ({:.2} us per field)",
        gate_us / 4.0
    );
    println!("  audited single-record read (gate + read + decrypt + durable audit entry): {read_us:>8.1} us");
    println!("  gate share of the audited read: {:.1}%", 100.0 * gate_us / read_us);
    Ok(())
}

/// Audit log appends (batched, and single entries from many writers: group commit) and offline
/// verification, on SQLite.
async fn audit() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("custodia-bench-audit-{}", custodia_crypto::random_hex::<8>()?));
    let result = audit_in(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn audit_in(dir: &std::path::Path) -> anyhow::Result<()> {
    const BATCHES: usize = 200;
    const BATCH: usize = 1000;
    const WRITERS: usize = 64;
    const PER_WRITER: usize = 500;
    let data = DataDir::new(dir);
    data.init(None, Timestamp::now()).await?;
    let vault = std::sync::Arc::new(data.open(None).await?);
    // entries as the vault writes them: tagged, dated as they are written (an unsigned tail
    // dated over more than a minute is refused as one whose checkpoints were deleted)
    let row = |vault: &custodia_core::Vault, i: usize| {
        let at = Timestamp::now().0;
        let entry = format!(
            "{{\"v\":1,\"at\":{at},\"principal\":\"prn_bench\",\"action\":\"record.read\",\"decision\":\"allow\",\"reason\":null,\"purpose\":\"order_fulfillment\",\"collection\":\"customers\",\"subject\":\"{i:032x}\",\"fields\":[\"email\"]}}"
        );
        vault.tagged_audit_row(at, &entry)
    };
    let start = Instant::now();
    for b in 0..BATCHES {
        let rows = (0..BATCH)
            .map(|i| row(&vault, b * BATCH + i))
            .collect::<Result<Vec<_>, _>>()?;
        vault.store().append_audit(rows).await?;
    }
    let batched = (BATCHES * BATCH) as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(WRITERS);
    for w in 0..WRITERS {
        let vault = std::sync::Arc::clone(&vault);
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let one = row(&vault, 10_000_000 + w * PER_WRITER + i)?;
                vault.store().append_audit(vec![one]).await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let single = (WRITERS * PER_WRITER) as f64 / start.elapsed().as_secs_f64();

    vault.checkpoint(Timestamp::now()).await?;
    let start = Instant::now();
    let trust = custodia_core::AuditTrust {
        tag_key: None,
        link_key: None,
        key: vault.audit_verifier_key(),
        trusted: Vec::new(),
        now: Timestamp::now(),
        max_unsigned_age: None,
        contiguous: true,
    };
    let report = custodia_core::verify_audit_log(vault.store(), &trust, &())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let verify = report.entries as f64 / start.elapsed().as_secs_f64();
    // The computation alone, on entries already in memory: leaf hashes and the tree root.
    let mut entries = Vec::new();
    let mut after = i64::MIN;
    loop {
        let page = vault.store().reader().await?.audit().entries(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page.into_iter().map(|e| e.entry));
    }
    let start = Instant::now();
    let mut range = custodia_audit::CompactRange::default();
    for e in &entries {
        range.push(custodia_audit::leaf_hash(e.as_bytes()));
    }
    black_box(range.root());
    let compute = entries.len() as f64 / start.elapsed().as_secs_f64();
    println!("audit log on SQLite (custodia bench):");
    println!("  appends, batches of {BATCH}:                 {batched:>10.0} entries/s");
    println!("  appends, {WRITERS} writers one entry at a time: {single:>10.0} entries/s (group commit)");
    println!(
        "  offline verification of {} entries:  {verify:>10.0} entries/s (read from SQLite, leaf hashes, tree, signature)",
        report.entries
    );
    println!(
        "  of which the Merkle computation alone:       {compute:>10.0} entries/s (leaf hashes and tree, entries in memory)"
    );
    Ok(())
}

struct Phase {
    name: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Phase {
    /// Throughput and latency: "N req/s   p50 ...   p99 ...   (n requests)".
    fn figures(&mut self) -> String {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            f64::from(self.latencies_us.get(i).copied().unwrap_or(0)) / 1000.0
        };
        format!(
            "{:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.requests
        )
    }

    fn print(&mut self) {
        let figures = self.figures();
        println!("  {:<28} {figures}", self.name);
    }
}

/// A soak: `minutes` of mixed create/read load on one server, a line per minute with its
/// throughput, p50/p99, the write-ahead log's size, the process's resident memory and its
/// open file descriptors (the server's and the clients' sockets, the database files).
pub async fn soak(minutes: u64, clients: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("custodia-soak-{}", custodia_crypto::random_hex::<8>()?));
    let result = soak_in(&dir, minutes, clients).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn soak_in(dir: &std::path::Path, minutes: u64, clients: usize) -> anyhow::Result<()> {
    let (addr, token, stop, server) = start_server(dir).await?;
    let wal = dir.join(format!("{}-wal", custodia_core::DB_FILE));
    println!(
        "soak on SQLite (WAL, synchronous=FULL), {clients} keep-alive clients, mixed 50% create of a new subject / \
         50% read of a random subject created before (each holds one record):"
    );
    let (_, mut subjects) = phase("seed", addr, &token, clients, Duration::from_secs(5), Mode::Create).await?;
    // (The clients run in this process: they keep what they created as counts, not names, so
    // that the resident memory printed is the server's.)
    for minute in 1..=minutes {
        let read_from = std::sync::Arc::new(subjects);
        let (mut p, created) = phase(
            "minute",
            addr,
            &token,
            clients,
            Duration::from_secs(60),
            Mode::Mixed(read_from.clone()),
        )
        .await?;
        // The reads of the next minute choose among every subject created so far: the
        // working set grows with the database, as it would in service.
        subjects = std::sync::Arc::try_unwrap(read_from).unwrap_or_else(|shared| (*shared).clone());
        for (mine, new) in subjects.iter_mut().zip(created) {
            mine.extend(new);
        }
        let held: usize = subjects.iter().flatten().map(|m| m.count).sum();
        let wal_mb = std::fs::metadata(&wal).map_or(0.0, |m| m.len() as f64 / 1_048_576.0);
        // Resident memory in two parts: anonymous (the heap: caches, buffers) and file-backed
        // (the database's memory map, bounded by its size).
        let memory = crate::measure::memory();
        println!(
            "  minute {minute:>3}: {}   subjects {held:>8}   WAL {wal_mb:>6.1} MB   RSS {:>6.1} MiB (anon {:>6.1})   open files {:>4}",
            p.figures(),
            memory.rss,
            memory.anon,
            crate::measure::open_files().map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
    }
    let _ = stop.send(());
    server.await.context("server task")??;
    Ok(())
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// A server on a fresh data directory in `dir`, on a free port: its address, the bootstrap
/// key, the sender that stops it and its task.
async fn start_server(
    dir: &std::path::Path,
) -> anyhow::Result<(SocketAddr, String, tokio::sync::oneshot::Sender<()>, ServerTask)> {
    let data = DataDir::new(dir);
    let token = data.init(None, Timestamp::now()).await?.admin_token.to_string();
    let vault = data.open(None).await?;
    let web = custodia_server::Web::english(vault.registry()).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(custodia_server::serve(
        vault,
        custodia_server::Publisher::new(None, None),
        web,
        None,
        custodia_server::assess::Deployment::default(),
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));
    Ok((addr, token, stop_tx, server))
}

async fn http(duration: Duration, clients: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("custodia-bench-{}", custodia_crypto::random_hex::<8>()?));
    let result = http_in(&dir, duration, clients).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn http_in(dir: &std::path::Path, duration: Duration, clients: usize) -> anyhow::Result<()> {
    let (addr, token, stop_tx, server) = start_server(dir).await?;

    println!(
        "HTTP on SQLite (WAL, synchronous=FULL), {clients} keep-alive clients, {}s per phase, server and clients on this machine:",
        duration.as_secs()
    );
    let mut create = phase(
        "create (4 sealed fields)",
        addr,
        &token,
        clients,
        duration,
        Mode::Create,
    )
    .await?;
    create.0.print();
    let subjects = std::sync::Arc::new(create.1);
    let mut read = phase(
        "read (list, 4 fields)",
        addr,
        &token,
        clients,
        duration,
        Mode::Read(subjects.clone()),
    )
    .await?;
    read.0.print();
    let mut mixed = phase(
        "mixed 50% create / 50% read",
        addr,
        &token,
        clients,
        duration,
        Mode::Mixed(subjects),
    )
    .await?;
    mixed.0.print();

    let _ = stop_tx.send(());
    server.await.context("server task")??;
    Ok(())
}

/// The subjects a client created in one phase: `bench-{run}-{client}-{k}` for `k < count`.
#[derive(Clone, Copy)]
struct Made {
    run: usize,
    count: usize,
}

/// What each client created, by client, shared by the clients of a phase.
type Subjects = std::sync::Arc<Vec<Vec<Made>>>;

/// The `k`-th of the subjects `made` names (`k` below their total).
fn nth_subject(made: &[Made], client: usize, mut k: usize) -> Option<String> {
    for m in made {
        if k < m.count {
            return Some(format!("bench-{}-{client}-{k}", m.run));
        }
        k -= m.count;
    }
    None
}

#[derive(Clone)]
enum Mode {
    Create,
    Read(Subjects),
    Mixed(Subjects),
}

/// Phases run so far: a phase's creates name subjects no earlier phase created, so each
/// subject holds one record and a read costs the same in the last minute as in the first.
static PHASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn phase(
    name: &'static str,
    addr: SocketAddr,
    token: &str,
    clients: usize,
    duration: Duration,
    mode: Mode,
) -> anyhow::Result<(Phase, Vec<Vec<Made>>)> {
    let run = PHASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let token = token.to_owned();
        let mode = mode.clone();
        tasks.push(tokio::spawn(async move {
            client_loop(addr, &token, (run, client), deadline, mode).await
        }));
    }
    let mut latencies = Vec::new();
    let mut subjects = Vec::with_capacity(clients);
    for t in tasks {
        let (lat, count) = t.await.context("client task")??;
        latencies.extend(lat);
        subjects.push(vec![Made { run, count }]);
    }
    let elapsed = start.elapsed();
    Ok((
        Phase {
            name,
            requests: latencies.len(),
            elapsed,
            latencies_us: latencies,
        },
        subjects,
    ))
}

async fn client_loop(
    addr: SocketAddr,
    token: &str,
    (run, client): (usize, usize),
    deadline: Instant,
    mode: Mode,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let mut conn = Connection::open(addr).await?;
    let mut latencies = Vec::new();
    let mut created = 0usize;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (client as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut i = 0usize;
    while Instant::now() < deadline {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let read_from = match &mode {
            Mode::Create => None,
            Mode::Read(s) => s.get(client),
            Mode::Mixed(s) => (i % 2 == 1).then(|| s.get(client)).flatten(),
        };
        let held = read_from.map_or(0, |made| made.iter().map(|m| m.count).sum::<usize>());
        let t = Instant::now();
        match read_from.and_then(|made| nth_subject(made, client, (rng as usize) % held.max(1))) {
            Some(subject) => {
                let path = format!("/v1/subjects/{subject}/records/customers?purpose=order_fulfillment");
                let reply = conn.send("GET", &path, Some(token), None, &[]).await?;
                if reply.status != 200 {
                    bail!(
                        "read answered {}: {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    );
                }
            }
            None => {
                let subject = format!("bench-{run}-{client}-{created}");
                let body = serde_json::json!({
                    "purpose": "order_fulfillment",
                    "fields": {
                        "email": format!("customer{i}.{client}@example.com"),
                        "name": format!("Customer {i} of client {client}"),
                        "phone": format!("+4420{:08}", (rng % 100_000_000)),
                        "shipping_address": format!("{i} High Street\nLondon"),
                    }
                });
                let path = format!("/v1/subjects/{subject}/records/customers");
                let reply = conn
                    .send("POST", &path, Some(token), Some(serde_json::to_vec(&body)?), &[])
                    .await?;
                if reply.status != 201 {
                    bail!(
                        "create answered {}: {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    );
                }
                created += 1;
            }
        }
        latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        i += 1;
    }
    Ok((latencies, created))
}
