//! Byte regular expressions for the identifier patterns, through regex-automata's meta
//! engine so the literal prefilter can be switched off: for patterns that start with a digit
//! class the prefilter is a search for "any digit", which on number-dense text stops at
//! every byte and made those patterns several times slower than the plain DFA.

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, PatternID};

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
        Self::many(&[pattern], prefilter, unicode)
    }

    /// Several patterns in one automaton, searched in one pass: at a position where more
    /// than one matches, the earliest in `patterns` wins (`find_pattern_at` asks for others).
    pub(crate) fn many(patterns: &[&str], prefilter: bool, unicode: bool) -> Result<Self, String> {
        let inner = Regex::builder()
            .syntax(syntax::Config::new().utf8(false).unicode(unicode))
            .configure(
                Regex::config()
                    .auto_prefilter(prefilter)
                    .utf8_empty(false)
                    .match_kind(MatchKind::LeftmostFirst),
            )
            .build_many(patterns)
            .map_err(|e| e.to_string())?;
        Ok(Self { inner })
    }

    /// The leftmost match at or after `pos`, and which pattern it is.
    pub(crate) fn find_any_at(&self, hay: &[u8], pos: usize) -> Option<(usize, usize, usize)> {
        if pos > hay.len() {
            return None;
        }
        self.inner
            .search(&Input::new(hay).range(pos..))
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
    }

    /// The end of pattern `index`'s match starting exactly at `pos`, if any.
    pub(crate) fn find_pattern_at(&self, hay: &[u8], pos: usize, index: usize) -> Option<usize> {
        let pid = PatternID::new(index).ok()?;
        let input = Input::new(hay).range(pos..).anchored(Anchored::Pattern(pid));
        self.inner.search(&input).map(|m| m.end())
    }

    /// The end of the match starting exactly at `start`, read no further than `end`.
    pub(crate) fn end_of_match_at(&self, hay: &[u8], start: usize, end: usize) -> Option<usize> {
        let input = Input::new(hay).range(start..end.min(hay.len())).anchored(Anchored::Yes);
        self.inner.search(&input).map(|m| m.end())
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

    /// The leftmost match at or after `pos`, searched only in the runs of `hay` that `run`
    /// gives (the first at or after a place, starting there at the earliest), which must
    /// hold every match of the pattern: the text between runs is never searched. A run may
    /// be cut short (`Run::resume` before its `end`): the search reads no further than its
    /// end and, finding nothing, goes on from `resume`.
    pub(crate) fn find_in_runs(
        &self,
        hay: &[u8],
        mut pos: usize,
        run: impl Fn(&[u8], usize) -> Option<Run>,
    ) -> Option<(usize, usize)> {
        loop {
            let Run { start, end, resume } = run(hay, pos)?;
            if start > end || end > hay.len() {
                return None;
            }
            match self.inner.search(&Input::new(hay).range(start..end)) {
                Some(m) => return Some((m.start(), m.end())),
                // runs end after the place they were asked from: this ends
                None => pos = resume.max(pos + 1),
            }
        }
    }
}

/// A stretch of text [`Re::find_in_runs`] searches, and where it goes on when the stretch
/// holds no match (its end, unless the stretch was cut short of its run's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) resume: usize,
}

impl Run {
    /// A whole run: nothing past it can start a match it misses.
    pub(crate) fn whole(start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            resume: end,
        }
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
        let many = Re::many(&["[0-9]{3}-[0-9]{2}", "[0-9]{3}"], false, false)?;
        assert_eq!(many.find_any_at(b"x 123-45", 0), Some((2, 8, 0)));
        assert_eq!(many.find_any_at(b"x 123 45", 0), Some((2, 5, 1)));
        assert_eq!(many.find_pattern_at(b"x 123-45", 2, 1), Some(5));
        assert_eq!(many.find_pattern_at(b"x 12-45", 2, 1), None);
        // runs of digits from a place: "12" holds no match, "3456" does
        let digits = |hay: &[u8], pos: usize| {
            let s = pos + hay.get(pos..)?.iter().position(u8::is_ascii_digit)?;
            let e = s + hay[s..].iter().take_while(|b| b.is_ascii_digit()).count();
            Some(Run::whole(s, e))
        };
        assert_eq!(re.find_in_runs(b"ab12cd3456", 0, digits), Some((6, 9)));
        assert_eq!(re.find_in_runs(b"ab12cd3456", 7, digits), Some((7, 10)));
        assert_eq!(re.find_in_runs(b"ab12cd34", 0, digits), None);
        let re = Re::new(r"(?i)a\xff?b", true)?;
        assert_eq!(re.find_at(b"xxA\xffb", 0), Some((2, 5)));
        Ok(())
    }
}
