//! The built-in pattern recognizers of one buffer as one automaton. Run one after another,
//! each recognizer's own automaton searched the whole buffer and stopped at every number
//! (most identifiers are digits), so a scan of text dense with numbers cost about twenty
//! searches and restarts per number. Here every pattern of every member is one anchored
//! DFA with all-matches semantics, walked once from each place an identifier can start (the
//! start of a word, or a digit after a letter); the walk reports every pattern that matches
//! there and the longest end of each. Each member then takes, in its own priority order,
//! the first of its patterns that its boundary rule and validator accept, exactly as its
//! own search would have (`tests::same_as_each_recognizer_alone` holds the two together).
//!
//! Only patterns whose matches start where a word starts (boundary `Word` or `Number`) or
//! where digits start (`NoDigits`) can join; a pattern that can start anywhere (boundary
//! `None`) keeps its own search, as do the recognizers written as code (phones, cards).

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson;
use regex_automata::util::alphabet::ByteClasses;
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

use super::{Hit, PatternRecognizer, word_before};
use crate::error::{Error, Result};

pub(crate) struct Joint {
    dfa: dense::DFA<Vec<u32>>,
    /// The members' patterns: member `m` owns automaton patterns `first[m]..first[m + 1]`,
    /// in its priority order.
    first: Vec<usize>,
    /// Each pattern's member.
    owner: Vec<usize>,
    /// Whether a match can start with this byte (the others are skipped without a walk).
    starts: [bool; 256],
    /// The start state, when no pattern looks behind its start (so it is the same for
    /// every byte before).
    start: Option<StateID>,
    /// The state after a walk's first two bytes, by their byte classes (`None`: take them
    /// one at a time): a walk is about six transitions, each a load from a table larger than
    /// the L1 cache waiting on the one before, and the first two are one load here.
    pairs: Vec<Option<StateID>>,
    /// The automaton's byte classes (bytes that every state treats alike).
    classes: ByteClasses,
}

impl std::fmt::Debug for Joint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joint").field("patterns", &self.first.last()).finish()
    }
}

/// What [`Joint::find`] writes as it goes, kept from one call to the next.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The hits, by member.
    pub(crate) out: Vec<Vec<Hit>>,
    ends: Vec<usize>,
    matched: Vec<usize>,
    next: Vec<usize>,
}

impl Scratch {
    /// The bytes the tables hold on to.
    pub(crate) fn held(&self) -> usize {
        use std::mem::size_of;
        let hits: usize = self.out.iter().map(|v| v.capacity() * size_of::<Hit>()).sum();
        hits + self.out.capacity() * size_of::<Vec<Hit>>()
            + (self.ends.capacity() + self.matched.capacity() + self.next.capacity()) * size_of::<usize>()
    }
}

impl Joint {
    /// One automaton of the members' patterns, in member order.
    pub(crate) fn new(members: &[&PatternRecognizer]) -> Result<Self> {
        let mut sources: Vec<&str> = Vec::new();
        let mut first = vec![0];
        for m in members {
            sources.extend(m.sources.iter().map(String::as_str));
            first.push(sources.len());
        }
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().utf8(false).unicode(false))
            .thompson(thompson::Config::new().utf8(false))
            .configure(
                dense::DFA::config()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .accelerate(false),
            )
            .build_many(&sources)
            .map_err(|e| Error::Pattern {
                entity: "built-in identifiers".to_owned(),
                message: e.to_string(),
            })?;
        let mut starts = [false; 256];
        let sid = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| Error::Pattern {
                entity: "built-in identifiers".to_owned(),
                message: e.to_string(),
            })?;
        for (b, live) in starts.iter_mut().enumerate() {
            let next = dfa.next_state(sid, b as u8);
            *live = !dfa.is_dead_state(next);
        }
        let same_after_any = [Some(b' '), Some(b'a'), Some(b'0'), Some(b'\n'), Some(0x80)]
            .into_iter()
            .all(|behind| {
                dfa.start_state(&start::Config::new().anchored(Anchored::Yes).look_behind(behind))
                    .is_ok_and(|other| other == sid)
            });
        let start = same_after_any.then_some(sid);
        let classes = *dfa.byte_classes();
        let pairs = start.map_or_else(Vec::new, |sid| two_byte_states(&dfa, &classes, sid));
        let owner = (0..members.len())
            .flat_map(|m| std::iter::repeat_n(m, first[m + 1] - first[m]))
            .collect();
        Ok(Self {
            owner,
            start,
            pairs,
            classes,
            dfa,
            first,
            starts,
        })
    }

    /// Every member's hits in `hay`, by member, into `scratch.out`.
    pub(crate) fn find(&self, hay: &[u8], members: &[&PatternRecognizer], scratch: &mut Scratch) {
        let patterns = self.first.last().copied().unwrap_or(0);
        let Scratch {
            out,
            ends,
            matched,
            next,
        } = scratch;
        out.iter_mut().for_each(Vec::clear);
        out.resize_with(members.len(), Vec::new);
        // the longest end of each pattern at the current start (0: no match; no match ends
        // at 0 since none is empty), and the patterns that matched
        ends.clear();
        ends.resize(patterns, 0);
        matched.clear();
        // where each member's next match may start (its matches do not overlap)
        next.clear();
        next.resize(members.len(), 0);
        let mut prev: Option<u8> = None;
        for (s, &b) in hay.iter().enumerate() {
            let at_start = match prev {
                None => true,
                Some(p) if p < 0x80 => !p.is_ascii_alphanumeric() || (!p.is_ascii_digit() && b.is_ascii_digit()),
                // beyond ASCII: after punctuation or a script written without spaces too
                Some(_) => b.is_ascii_digit() || (self.starts[usize::from(b)] && !word_before(hay, s)),
            };
            prev = Some(b);
            if !at_start || !self.starts[usize::from(b)] {
                continue;
            }
            self.walk(hay, s, ends, matched);
            if matched.is_empty() {
                continue;
            }
            // the members with a match here, each with its matching patterns in its
            // priority order (pattern numbers run member by member)
            matched.sort_unstable();
            for group in matched.chunk_by(|&a, &b| self.owner[a] == self.owner[b]) {
                let m = self.owner[group[0]];
                let Some(member) = members.get(m).filter(|_| next[m] <= s) else {
                    continue;
                };
                let lo = self.first[m];
                if let Some(hit) = group.iter().find_map(|&p| member.accept(hay, s, ends[p], p - lo)) {
                    next[m] = hit.end;
                    out[m].push(hit);
                }
            }
            for p in matched.drain(..) {
                ends[p] = 0;
            }
        }
    }

    /// The state after `hay[s]` and `hay[s + 1]` from the start, if [`Self::pairs`] has it.
    fn after_two(&self, hay: &[u8], s: usize) -> Option<StateID> {
        let (&b0, &b1) = (hay.get(s)?, hay.get(s + 1)?);
        let n = self.classes.alphabet_len() - 1;
        let at = usize::from(self.classes.get(b0)) * n + usize::from(self.classes.get(b1));
        self.pairs.get(at).copied().flatten()
    }

    /// Walks the automaton from `s`, recording each pattern's longest match.
    fn walk(&self, hay: &[u8], s: usize, ends: &mut [usize], matched: &mut Vec<usize>) {
        let mut sid = match self.start {
            Some(sid) => sid,
            None => {
                let config = start::Config::new()
                    .anchored(Anchored::Yes)
                    .look_behind(s.checked_sub(1).map(|i| hay[i]));
                match self.dfa.start_state(&config) {
                    Ok(sid) => sid,
                    Err(_) => return,
                }
            }
        };
        let mut record = |sid, end: usize| {
            for k in 0..self.dfa.match_len(sid) {
                let p = self.dfa.match_pattern(sid, k).as_usize();
                if ends[p] == 0 {
                    matched.push(p);
                }
                ends[p] = end;
            }
        };
        let mut from = s;
        if let Some(after_two) = self.after_two(hay, s) {
            // as the loop below would have found it at `s + 1`
            if self.dfa.is_special_state(after_two) {
                if self.dfa.is_match_state(after_two) {
                    record(after_two, s + 1);
                } else if self.dfa.is_dead_state(after_two) || self.dfa.is_quit_state(after_two) {
                    return;
                }
            }
            sid = after_two;
            from = s + 2;
        }
        for (i, &b) in hay.iter().enumerate().skip(from) {
            sid = self.dfa.next_state(sid, b);
            if self.dfa.is_special_state(sid) {
                if self.dfa.is_match_state(sid) {
                    // matches are reported one byte late: this one ended before `b`
                    record(sid, i);
                } else if self.dfa.is_dead_state(sid) || self.dfa.is_quit_state(sid) {
                    return;
                }
            }
        }
        sid = self.dfa.next_eoi_state(sid);
        if self.dfa.is_match_state(sid) {
            record(sid, hay.len());
        }
    }
}

/// For each pair of byte classes, the state two transitions from `start`; `None` where the
/// first transition ends in a special state (dead, or a match), which a walk must see.
fn two_byte_states(dfa: &dense::DFA<Vec<u32>>, classes: &ByteClasses, start: StateID) -> Vec<Option<StateID>> {
    // the last class of the alphabet is the end of input, not a byte
    let n = classes.alphabet_len() - 1;
    let mut sample = vec![0u8; n];
    for b in 0..=255u8 {
        if let Some(slot) = sample.get_mut(usize::from(classes.get(b))) {
            *slot = b;
        }
    }
    let mut pairs = vec![None; n * n];
    for (c0, &b0) in sample.iter().enumerate() {
        let one = dfa.next_state(start, b0);
        if dfa.is_special_state(one) {
            continue;
        }
        for (c1, &b1) in sample.iter().enumerate() {
            if let Some(slot) = pairs.get_mut(c0 * n + c1) {
                *slot = Some(dfa.next_state(one, b1));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::recognizers::{Recognizer, builtin};

    type Fixture = (Vec<Box<dyn Recognizer>>, Joint);

    /// The joinable built-in recognizers and their automaton, built once for every case.
    fn fixture() -> std::result::Result<&'static Fixture, String> {
        static FIXTURE: std::sync::OnceLock<std::result::Result<Fixture, String>> = std::sync::OnceLock::new();
        FIXTURE
            .get_or_init(|| {
                let regions: Vec<String> = crate::recognizers::numbers::DEFAULT_PHONE_REGIONS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                let mut all = builtin::all(&regions).map_err(|e| e.to_string())?;
                all.retain(|r| r.as_joinable().is_some());
                let joinable: Vec<&PatternRecognizer> = all.iter().filter_map(|r| r.as_joinable()).collect();
                let joint = Joint::new(&joinable).map_err(|e| e.to_string())?;
                Ok((all, joint))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn spans(hits: &[Hit]) -> Vec<(usize, usize, String)> {
        hits.iter()
            .map(|h| (h.start, h.end, format!("{:.2} {:?}", h.score, h.evidence)))
            .collect()
    }

    fn both_ways(members: &[Box<dyn Recognizer>], joint: &Joint, text: &[u8]) -> std::result::Result<(), String> {
        let joinable: Vec<&PatternRecognizer> = members.iter().filter_map(|r| r.as_joinable()).collect();
        let mut scratch = Scratch::default();
        joint.find(text, &joinable, &mut scratch);
        for (r, got) in joinable.iter().zip(&scratch.out) {
            let mut alone = Vec::new();
            r.find(text, &mut alone);
            if spans(&alone) != spans(got) {
                return Err(format!(
                    "{} in {:?}: alone {:?}, together {:?}",
                    r.entity(),
                    String::from_utf8_lossy(text),
                    spans(&alone),
                    spans(got)
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn finds_what_each_finds() -> std::result::Result<(), String> {
        let (members, joint) = fixture()?;
        assert!(members.len() >= 12, "the numeric recognizers join");
        for text in [
            "ssn 078-05-1123, nhs 943 476 5919, 21 May 2021, AB 12 34 56 C",
            "9123456789 12345678901 BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ",
            "is030594W903B 12345678Z X1234567L MRTMTT25D09F205Z 1977 2021-05-21T10:00:00Z",
            "00:1A:2B:3C:4D:5E 0a1b.2c3d.4e5f A12345678 AB1234567 19/05/2021",
        ] {
            both_ways(members, joint, text.as_bytes())?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn same_as_each_recognizer_alone(
            text in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(b"0123456789".to_vec()),
                    3 => proptest::sample::select(b" -./:,+()#\n".to_vec()),
                    2 => proptest::sample::select(b"ABCDLMXYZabcdefstnhrMay".to_vec()),
                    1 => proptest::sample::select(vec![0xc3u8, 0xa9, b'T', b'W', b'U']),
                ],
                0..80,
            )
        ) {
            let (members, joint) = fixture().map_err(TestCaseError::fail)?;
            both_ways(members, joint, &text).map_err(TestCaseError::fail)?;
        }
    }
}
