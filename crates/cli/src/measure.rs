//! What the bench commands measure of themselves: read latencies and this process's memory.

use std::time::Duration;

/// This process's memory (Linux `/proc/self/status`), in MiB.
#[derive(Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss: f64,
    pub(crate) peak: f64,
    pub(crate) anon: f64,
    pub(crate) file: f64,
}

/// How many file descriptors this process has open (Linux; `None` elsewhere).
pub(crate) fn open_files() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

pub(crate) fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {:.0} MiB (anonymous {:.0} MiB, file-backed {:.0} MiB), VmHWM {:.0} MiB",
            self.rss, self.anon, self.file, self.peak
        )
    }
}

/// Reads timed one by one over `elapsed`.
pub(crate) struct Reads {
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

/// The `q` quantile of sorted durations, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Prints `what`: how many reads, their rate, p50, p99 and the slowest.
pub(crate) fn report(what: &str, reads: &Reads) {
    let mut sorted = reads.latencies.clone();
    sorted.sort_unstable();
    println!(
        "  {what}: {} reads in {:.1} s ({:.0} reads/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        reads.elapsed.as_secs_f64(),
        sorted.len() as f64 / reads.elapsed.as_secs_f64(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        percentile(&sorted, 1.0)
    );
}
