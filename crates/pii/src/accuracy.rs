//! Recall and precision of a scanner on labelled documents, by the rules of Presidio's
//! timing script (`presidio_time.py`), so that `custodia bench-scan` and Presidio's figures
//! stand side by side: a true span is found when a prediction of a compatible type overlaps
//! it (`ADDRESS` may be found as `LOCATION`); a prediction is right when it overlaps a true
//! span of a compatible type. Offsets are in characters, as the corpora write them.

use std::collections::BTreeMap;

use crate::Scanner;

/// Found and missed true spans by label; right and wrong predictions by entity type.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// label -> (found, missed)
    pub recall: BTreeMap<String, (usize, usize)>,
    /// entity type -> (right, wrong)
    pub precision: BTreeMap<String, (usize, usize)>,
}

fn compatible(gold: &str, pred: &str) -> bool {
    gold == pred || (gold == "ADDRESS" && pred == "LOCATION")
}

/// `found / (found + missed)`, 0 when there is nothing to count.
#[must_use]
pub fn ratio((a, b): (usize, usize)) -> f64 {
    a as f64 / (a + b).max(1) as f64
}

impl Tally {
    /// Scans `text` and counts its findings against `spans` (start, end in characters, label).
    pub fn add(&mut self, scanner: &Scanner, text: &str, spans: &[(usize, usize, String)]) {
        let found = scanner.scan(text.as_bytes());
        let to_char = |b: usize| text.get(..b).map_or(0, |t| t.chars().count());
        let preds: Vec<(usize, usize, &str)> = found
            .iter()
            .map(|f| (to_char(f.start), to_char(f.end), &*f.entity_type))
            .collect();
        for (s, e, label) in spans {
            let hit = preds
                .iter()
                .any(|(ps, pe, pl)| ps < e && s < pe && compatible(label, pl));
            let entry = self.recall.entry(label.clone()).or_default();
            if hit {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        for (ps, pe, pl) in &preds {
            let right = spans
                .iter()
                .any(|(s, e, label)| ps < e && s < pe && compatible(label, pl));
            let entry = self.precision.entry((*pl).to_owned()).or_default();
            if right {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
}
