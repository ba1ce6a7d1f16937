//! `custodia bench-scan`: scanner throughput and accuracy on a corpus made by
//! shared/bench/pii/gen_corpus.py, scored by the same rules as Presidio's timing script
//! (presidio_time.py) so the figures stand side by side.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use custodia_pii::Scanner;
use custodia_pii::accuracy::{Tally, ratio};

struct Doc {
    text: String,
    /// (start, end, label) in characters
    spans: Vec<(usize, usize, String)>,
}

fn load(path: &Path) -> anyhow::Result<Vec<Doc>> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs = Vec::new();
    for (i, line) in raw.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let text = v["text"].as_str().context("a corpus line has no text")?.to_owned();
        let spans = v["spans"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        Some((
                            s[0].as_u64()? as usize,
                            s[1].as_u64()? as usize,
                            s[2].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        docs.push(Doc { text, spans });
    }
    anyhow::ensure!(!docs.is_empty(), "{}: no documents", path.display());
    Ok(docs)
}

/// Scans every document repeatedly for at least `min` and returns MB/s on one core.
fn throughput(scanner: &Scanner, docs: &[Doc], min: Duration) -> f64 {
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    let start = Instant::now();
    let mut rounds = 0usize;
    let mut sink = 0usize;
    while rounds == 0 || start.elapsed() < min {
        for d in docs {
            sink += scanner.scan(d.text.as_bytes()).len();
        }
        rounds += 1;
    }
    std::hint::black_box(sink);
    (bytes * rounds) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// The same, on every core at once, each thread taking a share of the documents.
fn throughput_parallel(scanner: &Scanner, docs: &[Doc], min: Duration, threads: usize) -> f64 {
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    let start = Instant::now();
    let mut rounds = 0usize;
    while rounds == 0 || start.elapsed() < min {
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || {
                    let mut sink = 0;
                    for d in docs.iter().skip(t).step_by(threads) {
                        sink += scanner.scan(d.text.as_bytes()).len();
                    }
                    std::hint::black_box(sink);
                });
            }
        });
        rounds += 1;
    }
    (bytes * rounds) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Throughput of a scanner of these entity types alone, on one core.
pub fn time_only(corpus: &Path, seconds: u64, entities: &[String]) -> anyhow::Result<()> {
    let docs = load(corpus)?;
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    println!("corpus {} docs={} bytes={bytes}", corpus.display(), docs.len());
    let scanner = Scanner::builder().entities(entities).build()?;
    println!(
        "{}, 1 core: {:8.1} MB/s",
        entities.join(","),
        throughput(&scanner, &docs, Duration::from_secs(seconds.max(1)))
    );
    Ok(())
}

pub fn run(corpus: &Path, seconds: u64, threads: usize, per_entity: bool) -> anyhow::Result<()> {
    let docs = load(corpus)?;
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    let min = Duration::from_secs(seconds.max(1));
    println!("corpus {} docs={} bytes={bytes}", corpus.display(), docs.len());
    if per_entity {
        for e in custodia_pii::BUILTIN_ENTITIES {
            let one = Scanner::builder().entities([*e]).build()?;
            println!("  {e:<28} {:8.1} MB/s", throughput(&one, &docs, min));
        }
    }
    let ident = Scanner::builder().language(false).build()?;
    let full = Scanner::builder().build()?;
    let people = Scanner::builder().entities(["PERSON", "LOCATION", "ADDRESS"]).build()?;
    println!(
        "identifier entities, 1 core:          {:8.1} MB/s",
        throughput(&ident, &docs, min)
    );
    if std::env::var_os("PII_BENCH_IDENT_ONLY").is_some() {
        return Ok(());
    }
    println!(
        "PERSON/LOCATION/ADDRESS only, 1 core: {:8.1} MB/s",
        throughput(&people, &docs, min)
    );
    println!(
        "all entities, 1 core:                 {:8.1} MB/s",
        throughput(&full, &docs, min)
    );
    println!(
        "all entities, {threads} threads:              {:8.1} MB/s",
        throughput_parallel(&full, &docs, min, threads)
    );

    // accuracy, at the default minimum score
    let mut tally = Tally::default();
    for d in &docs {
        tally.add(&full, &d.text, &d.spans);
    }
    println!("recall per gold label:");
    for (l, &(a, b)) in &tally.recall {
        println!("  {l:<14} {a:5}/{:<5} = {:.3}", a + b, ratio((a, b)));
    }
    println!("precision per predicted type (correct/predicted):");
    for (t, &(a, b)) in &tally.precision {
        println!("  {t:<17} {a:5}/{:<5} = {:.3}", a + b, ratio((a, b)));
    }
    Ok(())
}
