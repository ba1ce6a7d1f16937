//! Many inputs on all cores: files and directories (recursive, honouring .gitignore and
//! .ignore files, hidden files included, `.git` skipped, binaries skipped) and standard
//! input. Workers take files in turn; results come back in input order.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::input::{Format, InputStats, Located, Sink, looks_binary, scan_reader};
use crate::scanner::Scanner;

/// One thing to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    /// A file, or a path named on the command line that is no directory (`<(cmd)`,
    /// `/dev/stdin`, a FIFO: read as a stream).
    File(PathBuf),
    /// Met in a directory and not read, and why (a symbolic link is not followed; a FIFO
    /// or device would block or never end): reported as skipped, never passed over unsaid.
    Passed(PathBuf, &'static str),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "-".to_owned(),
            Self::File(p) | Self::Passed(p, _) => p.display().to_string(),
        }
    }
}

/// What [`collect`] found to scan, and what it did not.
#[derive(Debug, Default)]
pub struct Collected {
    /// The files to scan, in a stable order.
    pub inputs: Vec<Input>,
    /// Paths that do not exist or could not be read.
    pub errors: Vec<String>,
    /// Files and directories that ignore rules (.gitignore, .ignore) left out, each once (a
    /// directory left out is not walked into): the scan says so, since a log directory kept
    /// out of a repository is where personal data lies about.
    pub left_out: Vec<PathBuf>,
}

/// Expands paths (`-` is standard input) into the files to scan, in a stable order.
/// Paths that do not exist are errors; files a .gitignore excludes are left out unless
/// `no_ignore`, and listed as left out.
pub fn collect(paths: &[PathBuf], no_ignore: bool) -> Collected {
    let Collected {
        mut inputs,
        mut errors,
        mut left_out,
    } = Collected::default();
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                errors.push(format!("{}: no such file or directory", p.display()));
                continue;
            }
            // (a loop of symbolic links, a path through a file, no permission)
            Err(e) => {
                errors.push(format!("{}: {e}", p.display()));
                continue;
            }
            // named, so read whatever it is: a CI gate given `<(git show …)` must not pass
            // it over
            Ok(m) if !m.is_dir() => {
                inputs.push(Input::File(p.clone()));
                continue;
            }
            Ok(_) => {}
        }
        let walker = ignore::WalkBuilder::new(p)
            .hidden(false)
            .git_ignore(!no_ignore)
            .git_exclude(!no_ignore)
            .git_global(false)
            .ignore(!no_ignore)
            .require_git(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        // every entry the walk met, and the directories among them
        let mut met = HashSet::new();
        let mut dirs = Vec::new();
        for entry in walker {
            match entry {
                Ok(e) => {
                    met.insert(e.path().to_path_buf());
                    match e.file_type() {
                        Some(t) if t.is_file() => inputs.push(Input::File(e.into_path())),
                        Some(t) if t.is_dir() => dirs.push(e.into_path()),
                        Some(t) if t.is_symlink() => {
                            inputs.push(Input::Passed(e.into_path(), "symbolic link, not followed"))
                        }
                        _ => inputs.push(Input::Passed(e.into_path(), "not a regular file")),
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        // what the directories hold and the walk did not meet: the ignore rules left it out
        if !no_ignore {
            for dir in dirs {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut here: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.file_name().is_some_and(|n| n != ".git") && !met.contains(p))
                    .collect();
                here.sort();
                left_out.extend(here);
            }
        }
    }
    Collected {
        inputs,
        errors,
        left_out,
    }
}

/// What happened to one input.
#[derive(Debug, Clone)]
pub enum Outcome {
    Scanned(InputStats),
    /// Not scanned, and why (binary).
    Skipped(String),
    Failed(String),
}

/// Messages from workers, reordered into input order for the consumer.
pub trait Consumer {
    fn findings(&mut self, input: &Input, found: Vec<Located>);
    fn done(&mut self, input: &Input, outcome: Outcome);
    /// True once the consumer wants nothing more (its output is gone): the workers stop.
    fn stopped(&self) -> bool {
        false
    }
}

enum Msg {
    Found(usize, Vec<Located>),
    Done(usize, Outcome),
}

struct ChannelSink<'a> {
    index: usize,
    tx: &'a mpsc::SyncSender<Msg>,
    progress: &'a AtomicU64,
    last: u64,
}

impl Sink for ChannelSink<'_> {
    fn findings(&mut self, found: Vec<Located>) -> std::io::Result<()> {
        if !found.is_empty() {
            self.tx
                .send(Msg::Found(self.index, found))
                .map_err(|_| std::io::Error::other("the report writer stopped"))?;
        }
        Ok(())
    }

    fn progress(&mut self, bytes: u64) {
        self.progress.fetch_add(bytes - self.last, Ordering::Relaxed);
        self.last = bytes;
    }
}

fn scan_one(scanner: &Scanner, input: &Input, format: Option<Format>, sink: &mut dyn Sink) -> Outcome {
    let result = match input {
        Input::Passed(_, why) => return Outcome::Skipped((*why).to_owned()),
        Input::Stdin => scan_reader(scanner, std::io::stdin().lock(), format.unwrap_or(Format::Text), sink),
        Input::File(path) => {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => return Outcome::Failed(format!("{}: {e}", path.display())),
            };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let head = match reader.fill_buf() {
                Ok(h) => h,
                Err(e) => return Outcome::Failed(format!("{}: {e}", path.display())),
            };
            let format = format.unwrap_or_else(|| Format::from_path(path));
            if head.starts_with(&[0x1f, 0x8b]) {
                // what it decompresses to is told binary the same way
                let mut content = BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(reader));
                match content.fill_buf() {
                    Ok(head) if looks_binary(&head[..head.len().min(8192)]) => {
                        return Outcome::Skipped("binary, gzip-compressed".to_owned());
                    }
                    Ok(_) => scan_reader(scanner, content, format, sink),
                    Err(e) => return Outcome::Failed(format!("{}: {e}", path.display())),
                }
            } else if looks_binary(&head[..head.len().min(8192)]) {
                return Outcome::Skipped("binary".to_owned());
            } else {
                scan_reader(scanner, reader, format, sink)
            }
        }
    };
    match result {
        Ok(stats) => Outcome::Scanned(stats),
        Err(e) => Outcome::Failed(format!("{}: {e}", input.name())),
    }
}

/// Scans the inputs on `threads` threads; the consumer sees each input's findings and
/// outcome in input order. `progress` counts bytes read.
pub fn scan_all(
    scanner: &Scanner,
    inputs: &[Input],
    format: Option<Format>,
    threads: usize,
    progress: &AtomicU64,
    consumer: &mut dyn Consumer,
) {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<Msg>(256);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(inputs.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    let mut sink = ChannelSink {
                        index: i,
                        tx: &tx,
                        progress,
                        last: 0,
                    };
                    let outcome = scan_one(scanner, input, format, &mut sink);
                    if tx.send(Msg::Done(i, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // reorder: deliver input `current` live, hold the others until their turn
        let mut current = 0usize;
        let mut held: BTreeMap<usize, Vec<Msg>> = BTreeMap::new();
        let mut finished: BTreeMap<usize, Outcome> = BTreeMap::new();
        for msg in rx {
            if consumer.stopped() {
                // dropping the receiver makes every worker's next send fail: they stop
                break;
            }
            match msg {
                Msg::Found(i, f) if i == current => consumer.findings(&inputs[i], f),
                Msg::Done(i, o) if i == current => {
                    consumer.done(&inputs[i], o);
                    current += 1;
                    while let Some(o) = finished.remove(&current) {
                        for m in held.remove(&current).unwrap_or_default() {
                            if let Msg::Found(_, f) = m {
                                consumer.findings(&inputs[current], f);
                            }
                        }
                        consumer.done(&inputs[current], o);
                        current += 1;
                    }
                    for m in held.remove(&current).unwrap_or_default() {
                        if let Msg::Found(_, f) = m {
                            consumer.findings(&inputs[current], f);
                        }
                    }
                }
                Msg::Found(i, f) => held.entry(i).or_default().push(Msg::Found(i, f)),
                Msg::Done(i, o) => {
                    finished.insert(i, o);
                }
            }
        }
    });
}

/// Reads a whole input into memory (for the redactor's non-streaming callers).
pub fn read_input(input: &Input) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match input {
        Input::Stdin => {
            std::io::stdin().lock().read_to_end(&mut out)?;
        }
        Input::File(p) => {
            File::open(Path::new(p))?.read_to_end(&mut out)?;
        }
        Input::Passed(p, why) => {
            return Err(std::io::Error::other(format!("{}: {why}", p.display())));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record(Vec<(String, usize, bool)>);

    impl Consumer for Record {
        fn findings(&mut self, input: &Input, found: Vec<Located>) {
            self.0.push((input.name(), found.len(), false));
        }
        fn done(&mut self, input: &Input, _: Outcome) {
            self.0.push((input.name(), 0, true));
        }
    }

    #[test]
    fn walks_in_order_honours_gitignore_and_skips_binaries() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(d.join(".gitignore"), "ignored.txt\n")?;
        std::fs::write(d.join("ignored.txt"), "bob@example.com")?;
        std::fs::write(d.join("a.txt"), "bob@example.com")?;
        std::fs::write(d.join("b.bin"), b"\0\0bob@example.com")?;
        std::fs::create_dir(d.join("sub"))?;
        std::fs::write(d.join("sub/c.csv"), "email\nbob@example.com\n")?;
        std::fs::create_dir(d.join("logs"))?;
        std::fs::write(d.join("logs/app.log"), "bob@example.com")?;
        std::fs::write(d.join(".ignore"), "logs/\n")?;
        let Collected {
            inputs,
            errors,
            left_out,
        } = collect(&[d.to_path_buf()], false);
        assert!(errors.is_empty());
        // what the rules left out is listed, a directory once
        assert_eq!(left_out, [d.join("ignored.txt"), d.join("logs")]);
        let names: Vec<String> = inputs
            .iter()
            .map(|i| i.name().replace(&d.display().to_string(), ""))
            .collect();
        assert_eq!(names, vec!["/.gitignore", "/.ignore", "/a.txt", "/b.bin", "/sub/c.csv"]);
        let all = collect(&[d.to_path_buf()], true);
        assert_eq!((all.inputs.len(), all.left_out.len()), (7, 0));
        let scanner = Scanner::builder().build().map_err(std::io::Error::other)?;
        let mut rec = Record(Vec::new());
        scan_all(&scanner, &inputs, None, 3, &AtomicU64::new(0), &mut rec);
        let order: Vec<String> = rec
            .0
            .iter()
            .filter(|r| r.2)
            .map(|r| r.0.replace(&d.display().to_string(), ""))
            .collect();
        assert_eq!(order, vec!["/.gitignore", "/.ignore", "/a.txt", "/b.bin", "/sub/c.csv"]);
        let missing = collect(&[d.join("nope")], false);
        assert!(missing.inputs.is_empty() && missing.errors[0].contains("no such file"));
        Ok(())
    }
}
