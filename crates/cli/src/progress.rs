//! Progress of long operations (verifying and exporting the audit log, sweeps, key rotation,
//! erasing again, scans and database discovery), on standard error so that standard output
//! stays the operation's result.
//!
//! On a terminal: an `indicatif` bar. Elsewhere, nothing by default (a script's log is no
//! place for a redrawn bar); an operation that asks for [`Bar::lines`] writes a plain line at
//! each tenth instead, so that a cron job's log shows how far a run that was killed got.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the bar counts.
#[derive(Clone, Copy)]
enum Unit {
    /// Things, named (`entries`, `keys`, `due bindings judged`).
    Count(&'static str),
    /// Bytes, shown in MB.
    Bytes,
}

/// One operation's progress.
pub struct Bar {
    bar: ProgressBar,
    what: &'static str,
    unit: Unit,
    /// Off a terminal, the tenths written so far (`None`: write nothing).
    tenths: Option<AtomicU64>,
}

impl Bar {
    /// Counts `unit`s of the operation `what` (`verifying the audit log`).
    pub fn new(what: &'static str, unit: &'static str) -> Self {
        Self::with(what, Unit::Count(unit))
    }

    /// Counts bytes.
    pub fn bytes(what: &'static str) -> Self {
        Self::with(what, Unit::Bytes)
    }

    fn with(what: &'static str, unit: Unit) -> Self {
        // Hidden until the total is known; `indicatif` draws nothing where standard error is
        // not a terminal.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style(what, unit, false));
        Self {
            bar,
            what,
            unit,
            tenths: None,
        }
    }

    /// Off a terminal, writes a line at each tenth of the total.
    pub fn lines(mut self) -> Self {
        if !std::io::stderr().is_terminal() {
            self.tenths = Some(AtomicU64::new(0));
        }
        self
    }

    /// Shows nothing at all.
    pub fn hidden(mut self) -> Self {
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
        self.tenths = None;
        self
    }

    /// The amount of work (raised, never lowered, when the steps pass an estimate).
    pub fn set_total(&self, total: u64) {
        self.bar.set_style(style(self.what, self.unit, true));
        self.bar.set_length(total);
    }

    /// `n` more done.
    pub fn inc(&self, n: u64) {
        self.set_position(self.bar.position().saturating_add(n));
    }

    /// `done` so far.
    pub fn set_position(&self, done: u64) {
        if let Some(len) = self.bar.length()
            && done > len
        {
            self.bar.set_length(done);
        }
        self.bar.set_position(done);
        self.line(done);
    }

    fn line(&self, done: u64) {
        let (Some(tenths), Some(len)) = (&self.tenths, self.bar.length()) else {
            return;
        };
        let now = done.saturating_mul(10).checked_div(len).unwrap_or(10);
        if tenths.fetch_max(now, Ordering::Relaxed) < now {
            let text = match self.unit {
                Unit::Count(unit) => format!("{}: {done} of {len} {unit}", self.what),
                Unit::Bytes => format!("{}: {} of {} MB", self.what, mb(done), mb(len)),
            };
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// Takes the bar off the screen (the operation prints its own summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A bar an error cut short leaves the screen too.
impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl custodia_core::Progress for Bar {
    fn total(&self, total: u64) {
        self.set_total(total);
    }
    fn advance(&self, n: u64) {
        self.inc(n);
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn template(what: &str, unit: Unit, known: bool) -> String {
    match (unit, known) {
        (Unit::Count(unit), true) => format!("{what} {{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}"),
        (Unit::Bytes, true) => format!("{what} {{bar:40}} {{bytes}}/{{total_bytes}}  {{bytes_per_sec}}  eta {{eta}}"),
        (Unit::Count(unit), false) => format!("{what} {{spinner}} {{pos}} {unit}  {{per_sec}}"),
        (Unit::Bytes, false) => format!("{what} {{spinner}} {{bytes}}  {{bytes_per_sec}}"),
    }
}

fn style(what: &str, unit: Unit, known: bool) -> ProgressStyle {
    // A test checks that every template parses; the default style is only a fallback.
    ProgressStyle::with_template(&template(what, unit, known)).unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for unit in [Unit::Count("due bindings judged"), Unit::Bytes] {
            for known in [true, false] {
                let t = template("sweeping", unit, known);
                assert!(ProgressStyle::with_template(&t).is_ok(), "{t}");
            }
        }
    }

    #[test]
    fn the_total_rises_with_the_steps() {
        let bar = Bar::new("testing", "things").hidden();
        bar.set_total(3);
        bar.inc(2);
        bar.inc(2);
        assert_eq!(bar.bar.length(), Some(4));
        assert_eq!(bar.bar.position(), 4);
    }
}
