//! What a scan reports: an entity found at byte offsets, its score and why it was raised.

use std::sync::Arc;

use serde::Serialize;

/// Why a finding was raised. Serialized as `{"kind": "checksum", "detail": "luhn"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub detail: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A named pattern (regular expression or shape) matched.
    Pattern,
    /// A checksum or number-plan check passed.
    Checksum,
    /// A context word stood near the value (whole word, before or after).
    Context,
    /// A dictionary (names, places) knew the word.
    Dictionary,
    /// A CSV header or JSON key named the column or field.
    FieldName,
}

impl Evidence {
    pub fn new(kind: EvidenceKind, detail: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// One entity found in a text. `start` and `end` are byte offsets into the scanned bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub entity_type: Arc<str>,
    pub start: usize,
    pub end: usize,
    /// Confidence in [0, 1].
    pub score: f32,
    pub evidence: Vec<Evidence>,
}

impl Finding {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    pub fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && other.start < self.end
    }
}
