//! Output formats: a readable table, JSON lines (one finding a line), SARIF 2.1.0 and GitHub
//! Actions annotations, plus a summary (findings per entity and per file, and what each CSV
//! column holds). No output carries the matched values: offsets say where they are.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde_json::json;

use crate::input::{ColumnSummary, Located};
use crate::walk::{Consumer, Input, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Sarif,
    /// GitHub Actions workflow commands (`::error file=...,line=...::...`), one a finding: a
    /// CI job shows them on the lines of the pull request.
    Github,
}

/// Counts for the summary.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files_scanned: u64,
    pub files_skipped: u64,
    pub errors: Vec<String>,
    pub bytes: u64,
    pub findings: u64,
    pub by_entity: BTreeMap<String, u64>,
    pub by_file: BTreeMap<String, u64>,
    pub columns: BTreeMap<String, Vec<ColumnSummary>>,
    pub notes: Vec<String>,
    /// Findings a baseline knows: neither written nor counted above.
    pub known: u64,
    /// Every finding's fingerprint, when asked for ([`Reporter::record_fingerprints`]).
    #[serde(skip)]
    pub fingerprints: Vec<String>,
}

/// A finding's fingerprint: a digest of its file, entity type, place (JSON pointer or CSV
/// column) and rank among the findings of that entity and place in the file. Never of its
/// value: a baseline committed to a repository must not let anyone test guesses of it.
fn fingerprint(path: &str, entity: &str, place: &str, rank: u64) -> String {
    let path = baseline_path(path);
    let text = format!("custodia-scan-fingerprint-v1\0{path}\0{entity}\0{place}\0{rank}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

/// A file's path as a fingerprint holds it: relative to the working directory, written
/// plainly. `./a.txt`, `a.txt`, `sub/../a.txt` and `$PWD/a.txt` are one file: a baseline
/// written from `scan .` serves `scan a.txt` and `scan "$PWD/a.txt"`.
fn baseline_path(path: &str) -> String {
    use std::path::{Component, Path};
    let p = Path::new(path);
    let relative = match std::env::current_dir() {
        Ok(cwd) if p.is_absolute() => p.strip_prefix(&cwd).unwrap_or(p),
        _ => p,
    };
    let mut parts: Vec<String> = Vec::new();
    for c in relative.components() {
        match c {
            Component::CurDir => {}
            // (`..` after a name cancels it; one leading the path stays)
            Component::ParentDir if parts.last().is_some_and(|l| l != "..") => {
                parts.pop();
            }
            Component::RootDir => parts.push(String::new()),
            c => parts.push(c.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

/// Known findings (`custodia scan --baseline FILE`): `{"version": 1, "fingerprints": [...]}`.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub fingerprints: std::collections::BTreeSet<String>,
}

impl Baseline {
    /// Reads a baseline file's text; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        // (where, not what: a file given by mistake may be data, and serde's message quotes
        // the key or value it refused)
        let b: Self = serde_json::from_str(text).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io | serde_json::error::Category::Eof => "it ends too soon",
                serde_json::error::Category::Syntax => "it is not JSON",
                serde_json::error::Category::Data => {
                    "it is not {\"version\": 1, \"fingerprints\": [...]} and nothing else"
                }
            };
            format!("not a baseline: {what} (line {}, column {})", e.line(), e.column())
        })?;
        if b.version != 1 {
            return Err(format!(
                "baseline version {} (this scanner writes version 1)",
                b.version
            ));
        }
        // each 32 lower-case hex digits, as written; the entry itself is not echoed (a
        // baseline edited by hand may hold anything, a value included)
        let well_formed = |f: &String| f.len() == 32 && f.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let bad = b.fingerprints.iter().filter(|f| !well_formed(f)).count();
        if bad > 0 {
            return Err(format!(
                "{bad} of its {} fingerprint(s) are not fingerprints (32 lower-case hex digits each, as --write-baseline writes them)",
                b.fingerprints.len()
            ));
        }
        Ok(b)
    }

    /// The baseline of these fingerprints, as JSON.
    pub fn render(fingerprints: &[String]) -> String {
        let b = Self {
            version: 1,
            fingerprints: fingerprints.iter().cloned().collect(),
        };
        serde_json::to_string_pretty(&b).unwrap_or_default()
    }
}

/// Writes findings as they arrive and the summary at the end.
pub struct Reporter<W: Write> {
    out: W,
    format: OutputFormat,
    pub summary: Summary,
    /// Entities whose presence fails the run (`--fail-on`); empty: none; "any": all.
    fail_on: Vec<String>,
    pub failed: bool,
    sarif_results: Vec<serde_json::Value>,
    write_error: Option<std::io::Error>,
    /// At most this many findings written per file (all are counted).
    max_per_file: Option<u64>,
    /// Findings counted but not written, per file.
    held_back: BTreeMap<String, u64>,
    /// Fingerprints of known findings, passed over.
    baseline: Option<Baseline>,
    record: bool,
    /// Findings so far per (file, entity, place): the next one's rank.
    ranks: std::collections::HashMap<(String, String, String), u64>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    path: &'a str,
    #[serde(flatten)]
    located: &'a Located,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, format: OutputFormat, fail_on: Vec<String>) -> Self {
        Self {
            out,
            format,
            summary: Summary::default(),
            fail_on,
            failed: false,
            sarif_results: Vec::new(),
            write_error: None,
            max_per_file: None,
            held_back: BTreeMap::new(),
            baseline: None,
            record: false,
            ranks: std::collections::HashMap::new(),
        }
    }

    /// Passes over the findings `baseline` knows: neither written, nor counted, nor failing
    /// the run (the summary says how many).
    #[must_use]
    pub fn baseline(mut self, baseline: Baseline) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Keeps every finding's fingerprint in the summary (to write a baseline).
    #[must_use]
    pub fn record_fingerprints(mut self) -> Self {
        self.record = true;
        self
    }

    /// Writes at most `n` findings per file; the rest are counted, and the summary says how
    /// many were not shown.
    #[must_use]
    pub fn max_per_file(mut self, n: u64) -> Self {
        self.max_per_file = Some(n);
        self
    }

    fn write_finding(&mut self, path: &str, l: &Located) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => {
                serde_json::to_writer(&mut self.out, &JsonLine { path, located: l })?;
                self.out.write_all(b"\n")
            }
            OutputFormat::Table => {
                let evidence: Vec<String> = l
                    .finding
                    .evidence
                    .iter()
                    .map(|e| format!("{}:{}", format!("{:?}", e.kind).to_lowercase(), e.detail))
                    .collect();
                let place = match (&l.pointer, &l.field) {
                    (Some(p), _) => format!(" {}", printable(p)),
                    (None, Some(f)) => format!(" [{}]", printable(f)),
                    _ => String::new(),
                };
                writeln!(
                    self.out,
                    "{}:{}:{}{place}  {}  {:.2}  bytes {}..{}  {}",
                    printable(path),
                    l.line,
                    l.column,
                    l.finding.entity_type,
                    l.finding.score,
                    l.finding.start,
                    l.finding.end,
                    evidence.join(",")
                )
            }
            OutputFormat::Github => {
                // Workflow command escaping: `%`, CR and LF everywhere; `:` and `,` also in
                // the properties.
                let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
                let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
                let level = if l.finding.score >= 0.8 { "error" } else { "warning" };
                let entity = &*l.finding.entity_type;
                writeln!(
                    self.out,
                    "::{level} file={},line={},col={},title={}::{}",
                    property(path.strip_prefix("./").unwrap_or(path)),
                    l.line,
                    l.column,
                    property(&format!("Personal data: {entity}")),
                    data(&format!(
                        "{entity} (score {:.2}), bytes {}..{}: move it into the vault or redact it",
                        l.finding.score, l.finding.start, l.finding.end
                    ))
                )
            }
            OutputFormat::Sarif => {
                let evidence: Vec<String> = l
                    .finding
                    .evidence
                    .iter()
                    .map(|e| format!("{:?} {}", e.kind, e.detail).to_lowercase())
                    .collect();
                let mut props = json!({ "score": l.finding.score, "evidence": l.finding.evidence });
                if let Some(p) = &l.pointer {
                    props["jsonPointer"] = json!(p);
                }
                if let Some(f) = &l.field {
                    props["column"] = json!(f);
                }
                self.sarif_results.push(json!({
                    "ruleId": &*l.finding.entity_type,
                    "level": if l.finding.score >= 0.8 { "error" } else { "warning" },
                    "message": { "text": format!("{} (score {:.2}; {})", l.finding.entity_type, l.finding.score, evidence.join(", ")) },
                    "locations": [{ "physicalLocation": {
                        "artifactLocation": { "uri": sarif_uri(path) },
                        "region": {
                            "startLine": l.line,
                            "startColumn": l.column,
                            "byteOffset": l.finding.start,
                            "byteLength": l.finding.end - l.finding.start,
                        }
                    }}],
                    "properties": props,
                }));
                Ok(())
            }
        }
    }

    /// Writes the summary (table: to the output; otherwise to `err`) and, for SARIF, the
    /// document. Returns the first write error, if any.
    pub fn finish(mut self, err: &mut dyn Write) -> std::io::Result<(Summary, bool)> {
        if let Some(e) = self.write_error.take() {
            return Err(e);
        }
        if self.format == OutputFormat::Sarif {
            let rules: Vec<serde_json::Value> = self
                .summary
                .by_entity
                .keys()
                .map(|e| json!({ "id": e, "shortDescription": { "text": format!("Personal data: {e}") } }))
                .collect();
            let doc = json!({
                "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
                "version": "2.1.0",
                "runs": [{
                    "tool": { "driver": {
                        "name": "custodia-scan",
                        "informationUri": "https://example.invalid/custodia",
                        "version": env!("CARGO_PKG_VERSION"),
                        "rules": rules,
                    }},
                    "columnKind": "unicodeCodePoints",
                    "results": self.sarif_results,
                }]
            });
            serde_json::to_writer_pretty(&mut self.out, &doc)?;
            self.out.write_all(b"\n")?;
        }
        if self.summary.known > 0 {
            let known = self.summary.known;
            self.summary
                .notes
                .push(format!("{known} known finding(s) passed over (--baseline)"));
        } else if let Some(b) = &self.baseline
            && !b.fingerprints.is_empty()
            && self.summary.findings > 0
        {
            self.summary.notes.push(format!(
                "the baseline's {} fingerprint(s) matched none of these findings: a fingerprint holds the file's path relative to where the scan runs (run it from where the baseline was written)",
                b.fingerprints.len()
            ));
        }
        for (file, n) in &self.held_back {
            self.summary
                .notes
                .push(format!("{file}: {n} more finding(s) not shown (--max-per-file)"));
        }
        let s = &self.summary;
        if self.format == OutputFormat::Table {
            write_summary(&mut self.out, s)?;
        } else {
            // standard error is unbuffered: a summary of many columns was a write a line
            let mut buffered = std::io::BufWriter::new(err);
            write_summary(&mut buffered, s)?;
            buffered.flush()?;
        }
        self.out.flush()?;
        Ok((self.summary, self.failed))
    }
}

/// A path as a SARIF artifact URI (RFC 3986 relative reference): every byte outside the
/// unreserved characters and `/` percent-encoded (`?`, `#`, `%`, spaces, line breaks,
/// non-ASCII), and `./` before a first segment with a `:` so that `c:d.txt` is no scheme.
fn sarif_uri(path: &str) -> String {
    let p = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(p.len());
    if p.split('/').next().is_some_and(|first| first.contains(':')) {
        out.push_str("./");
    }
    for &b in p.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text for a terminal: control characters (a file name, a CSV header or a JSON key may hold
/// `ESC [2K` to erase the line a finding was written on) and the bidirectional overrides that
/// make text read otherwise than it is written as escapes, `\u{1b}`.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn write_summary(w: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        w,
        "\n{} finding(s) in {} file(s) scanned ({} bytes), {} skipped, {} error(s)",
        s.findings,
        s.files_scanned,
        s.bytes,
        s.files_skipped,
        s.errors.len()
    )?;
    if !s.by_entity.is_empty() {
        writeln!(w, "by entity:")?;
        for (e, n) in &s.by_entity {
            writeln!(w, "  {e:<28} {n}")?;
        }
        writeln!(w, "by file:")?;
        for (f, n) in &s.by_file {
            writeln!(w, "  {n:>7}  {}", printable(f))?;
        }
    }
    for (file, cols) in &s.columns {
        let held: Vec<&ColumnSummary> = cols.iter().filter(|c| !c.entities.is_empty()).collect();
        if held.is_empty() {
            continue;
        }
        writeln!(w, "columns of {}:", printable(file))?;
        for c in held {
            let what: Vec<String> = c
                .entities
                .iter()
                .map(|(e, n)| format!("{e} in {n} of {} rows", c.rows))
                .collect();
            writeln!(w, "  {:<24} {}", printable(&c.column), what.join(", "))?;
        }
    }
    for n in &s.notes {
        writeln!(w, "note: {}", printable(n))?;
    }
    for e in &s.errors {
        writeln!(w, "error: {}", printable(e))?;
    }
    Ok(())
}

impl<W: Write> Consumer for Reporter<W> {
    fn stopped(&self) -> bool {
        self.write_error.is_some()
    }

    fn findings(&mut self, input: &Input, found: Vec<Located>) {
        let path = input.name();
        for l in &found {
            if self.baseline.is_some() || self.record {
                let place = l.pointer.clone().or_else(|| l.field.clone()).unwrap_or_default();
                let key = (path.clone(), l.finding.entity_type.to_string(), place);
                let rank = self.ranks.entry(key.clone()).or_default();
                let print = fingerprint(&key.0, &key.1, &key.2, *rank);
                *rank += 1;
                if self.baseline.as_ref().is_some_and(|b| b.fingerprints.contains(&print)) {
                    self.summary.known += 1;
                    if self.record {
                        self.summary.fingerprints.push(print);
                    }
                    continue;
                }
                if self.record {
                    self.summary.fingerprints.push(print);
                }
            }
            self.summary.findings += 1;
            *self
                .summary
                .by_entity
                .entry(l.finding.entity_type.to_string())
                .or_default() += 1;
            let in_file = self.summary.by_file.entry(path.clone()).or_default();
            *in_file += 1;
            let shown = self.max_per_file.is_none_or(|max| *in_file <= max);
            if self.fail_on.iter().any(|f| f == "any" || **f == *l.finding.entity_type) {
                self.failed = true;
            }
            if !shown {
                *self.held_back.entry(path.clone()).or_default() += 1;
                continue;
            }
            if self.write_error.is_none()
                && let Err(e) = self.write_finding(&path, l)
            {
                self.write_error = Some(e);
            }
        }
    }

    fn done(&mut self, input: &Input, outcome: Outcome) {
        match outcome {
            Outcome::Scanned(stats) => {
                self.summary.files_scanned += 1;
                self.summary.bytes += stats.bytes;
                if !stats.columns.is_empty() {
                    self.summary.columns.insert(input.name(), stats.columns);
                }
                if let Some(n) = stats.note {
                    self.summary.notes.push(format!("{}: {n}", input.name()));
                }
            }
            Outcome::Skipped(why) => {
                self.summary.files_skipped += 1;
                self.summary.notes.push(format!("{}: skipped ({why})", input.name()));
            }
            Outcome::Failed(e) => self.summary.errors.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(printable("a.txt"), "a.txt");
        assert_eq!(printable("\u{1b}[2K\rcard\u{9b}"), "\\u{1b}[2K\\u{d}card\\u{9b}");
        assert_eq!(printable("invoice\u{202e}txt.exe"), "invoice\\u{202e}txt.exe");
    }

    #[test]
    fn sarif_uris_are_relative_references() {
        assert_eq!(sarif_uri("./logs/app 1.log"), "logs/app%201.log");
        assert_eq!(sarif_uri("c:d.txt"), "./c%3Ad.txt");
        assert_eq!(sarif_uri("a?b#c%d\nе.txt"), "a%3Fb%23c%25d%0A%D0%B5.txt");
        assert_eq!(sarif_uri("dir/sub:x/f.txt"), "dir/sub%3Ax/f.txt");
    }

    #[test]
    fn baseline_paths_are_written_plainly() {
        assert_eq!(baseline_path("./a.txt"), "a.txt");
        assert_eq!(baseline_path("sub/../a.txt"), "a.txt");
        assert_eq!(baseline_path("../a.txt"), "../a.txt");
        assert_eq!(baseline_path("a//b/./c.txt"), "a/b/c.txt");
        if let Ok(cwd) = std::env::current_dir() {
            assert_eq!(baseline_path(&cwd.join("x/y.txt").display().to_string()), "x/y.txt");
        }
    }
}
