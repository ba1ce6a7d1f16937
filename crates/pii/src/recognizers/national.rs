//! National identifiers beyond the first set: each a pattern, a validator (a checksum where
//! the number has one) and context words in its country's languages.

use super::builtin::Spec;

/// The specs of the national identifiers (see [`super::builtin::all`]).
pub(crate) fn specs() -> Vec<Spec> {
    Vec::new()
}
