//! Byte regular expressions for the identifier patterns, through regex-automata's meta
//! engine so the literal prefilter can be switched off: for patterns that start with a digit
//! class the prefilter is a search for "any digit", which on number-dense text stops at
//! every byte and made those patterns several times slower than the plain DFA.

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

#[derive(Debug)]
pub(crate) struct Re {
    inner: Regex,
}

impl Re {
    /// `prefilter`: keep the literal prefilter (worth it when the pattern holds a rare
    /// literal such as `@` or `://`).
    pub(crate) fn new(pattern: &str, prefilter: bool) -> Result<Self, String> {
        Self::with_unicode(pattern, prefilter, false)
    }

    /// As `new`; `unicode` makes classes such as `\w` and `\d` Unicode-aware (user patterns).
    pub(crate) fn with_unicode(pattern: &str, prefilter: bool, unicode: bool) -> Result<Self, String> {
        let inner = Regex::builder()
            .syntax(syntax::Config::new().utf8(false).unicode(unicode))
            .configure(
                Regex::config()
                    .auto_prefilter(prefilter)
                    .utf8_empty(false)
                    .match_kind(MatchKind::LeftmostFirst),
            )
            .build(pattern)
            .map_err(|e| e.to_string())?;
        Ok(Self { inner })
    }

    /// The leftmost match starting at or after `pos`.
    pub(crate) fn find_at(&self, hay: &[u8], pos: usize) -> Option<(usize, usize)> {
        if pos > hay.len() {
            return None;
        }
        self.inner
            .search(&Input::new(hay).range(pos..))
            .map(|m| (m.start(), m.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_from_a_position() -> Result<(), String> {
        let re = Re::new("[0-9]{3}", false)?;
        assert_eq!(re.find_at(b"ab123cd456", 0), Some((2, 5)));
        assert_eq!(re.find_at(b"ab123cd456", 3), Some((7, 10)));
        assert_eq!(re.find_at(b"ab123cd456", 11), None);
        let re = Re::new(r"(?i)a\xff?b", true)?;
        assert_eq!(re.find_at(b"xxA\xffb", 0), Some((2, 5)));
        Ok(())
    }
}
