//! National number plans from libphonenumber's metadata (the `phonenumber` crate ships it),
//! compiled once per region into one anchored automaton that tells, in one walk over a
//! number's digits, which of the plan's descriptions (the general one and each number type)
//! it matches. The crate's own parser goes through an LRU cache of 100 regexes shared behind
//! a mutex, which made number-plan checks most of a scan's time; one regex per description
//! (the next step) still cost a regex search each, up to 30 per candidate number.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

/// A region's plan: its valid national significant numbers.
pub(crate) struct Plan {
    pub(crate) region: String,
    country_code: u16,
    /// The country code as written (`49`).
    calling_code: String,
    national_prefix: Option<String>,
    /// The descriptions' patterns: 0 is the general description, then each number type
    /// (fixed line, mobile, toll free, ...), each matched only by a whole number.
    dfa: dense::DFA<Vec<u32>>,
    /// Possible lengths of each description, in pattern order (empty: any).
    lengths: Vec<Vec<u16>>,
    /// Bit `n`: a national significant number of `n` digits may be valid (of a general
    /// length and of one of a number type's).
    valid_lengths: u64,
    /// Bit `n`: a digit string of `n` digits may be a national number, with or without the
    /// trunk prefix or the country code (see [`length_sets`]). Most candidates of a scan
    /// are refused by this alone: a number of text dense with numbers was checked against
    /// every region's plan up to four ways, once for each digit group dropped.
    national_lengths: u64,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("region", &self.region).finish()
    }
}

/// The metadata's patterns are laid out over several lines; the whitespace is not part of them.
fn whole(src: &str) -> String {
    let src: String = src.chars().filter(|c| !c.is_whitespace()).collect();
    format!("(?:{src})$")
}

/// A region's descriptions of numbers: the general one, then each number type (fixed line,
/// mobile, toll free, ...).
fn descriptions(m: &Metadata) -> impl Iterator<Item = &Descriptor> {
    let d = m.descriptors();
    std::iter::once(d.general()).chain(
        [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten(),
    )
}

impl Plan {
    fn from_metadata(m: &Metadata) -> Option<Self> {
        let (sources, lengths): (Vec<String>, Vec<Vec<u16>>) = descriptions(m)
            .map(|desc| (whole(desc.national_number().as_str()), desc.possible_length().to_vec()))
            .unzip();
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                dense::DFA::config()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored),
            )
            .build_many(&sources)
            .ok()?;
        let calling_code = m.country_code().to_string();
        let national_prefix = m.national_prefix().map(str::to_owned);
        let (valid_lengths, national_lengths) = length_sets(&lengths, national_prefix.as_deref(), &calling_code);
        Some(Self {
            region: m.id().to_owned(),
            country_code: m.country_code(),
            valid_lengths,
            national_lengths,
            calling_code,
            national_prefix,
            dfa,
            lengths,
        })
    }

    /// Whether a digit string of `n` digits may pass [`Self::is_valid_national`] or
    /// [`Self::is_possible_national`].
    fn may_be_national(&self, n: usize) -> bool {
        n >= 64 || self.national_lengths & (1 << n) != 0
    }

    /// Whether a national significant number of `n` digits may pass [`Self::is_valid`].
    fn may_be_valid(&self, n: usize) -> bool {
        n >= 64 || self.valid_lengths & (1 << n) != 0
    }

    /// Which descriptions the whole of `nsn` matches, as a bit set by pattern number.
    fn descriptions(&self, nsn: &str) -> u64 {
        let Ok(mut sid) = self.dfa.start_state(&start::Config::new().anchored(Anchored::Yes)) else {
            return 0;
        };
        for &b in nsn.as_bytes() {
            sid = self.dfa.next_state(sid, b);
            if self.dfa.is_dead_state(sid) {
                return 0;
            }
        }
        sid = self.dfa.next_eoi_state(sid);
        let mut set = 0u64;
        if self.dfa.is_match_state(sid) {
            for k in 0..self.dfa.match_len(sid) {
                set |= 1u64.checked_shl(self.dfa.match_pattern(sid, k).as_u32()).unwrap_or(0);
            }
        }
        set
    }
    pub(crate) fn country_code(&self) -> u16 {
        self.country_code
    }

    /// Whether `nsn` (digits only, no prefix) is a valid number of this region.
    pub(crate) fn is_valid(&self, nsn: &str) -> bool {
        let len_ok = |lens: &[u16]| lens.is_empty() || lens.contains(&(nsn.len() as u16));
        // of a general length and of some type's: the walk below only for those
        if !self.may_be_valid(nsn.len()) {
            return false;
        }
        let matched = self.descriptions(nsn);
        matched & 1 != 0
            && self
                .lengths
                .iter()
                .enumerate()
                .skip(1)
                .any(|(i, lens)| matched & (1u64.checked_shl(i as u32).unwrap_or(0)) != 0 && len_ok(lens))
    }

    /// Whether `nsn` has a length the plan allows, whatever its range (unassigned and
    /// reserved ranges included: numbers for fiction, `+44 1632 960...`, are still written
    /// as phone numbers).
    pub(crate) fn is_possible(&self, nsn: &str) -> bool {
        let n = nsn.len() as u16;
        // The general description's lengths, or (where the metadata leaves them out) those
        // of the number types
        let general = self.lengths.first().map_or(&[][..], Vec::as_slice);
        !nsn.is_empty()
            && (general.contains(&n)
                || (general.is_empty() && self.lengths.iter().skip(1).any(|lens| lens.contains(&n))))
    }

    /// Whether a number written nationally with its trunk prefix (`0371 569023`) has a
    /// possible length.
    pub(crate) fn is_possible_national(&self, digits: &str) -> bool {
        self.may_be_national(digits.len())
            && self
                .national_prefix
                .as_deref()
                .and_then(|p| digits.strip_prefix(p))
                .is_some_and(|rest| self.is_possible(rest))
    }

    /// Whether a number written nationally (or with the country code but no `+`) is valid.
    pub(crate) fn is_valid_national(&self, digits: &str) -> bool {
        if !self.may_be_national(digits.len()) {
            return false;
        }
        // Written without the trunk prefix: the norm in the NANP (the `1` is optional) and
        // for Indian mobiles (10 digits from 6-9); elsewhere a national number starts with
        // its prefix, so a bare digit string is not taken for one.
        let bare_ok = match self.national_prefix.as_deref() {
            None => true,
            Some(_) if self.country_code == 1 => true,
            Some(_) => self.country_code == 91 && digits.len() == 10 && digits.as_bytes()[0] >= b'6',
        };
        if bare_ok && self.is_valid(digits) {
            return true;
        }
        if let Some(p) = &self.national_prefix
            && let Some(rest) = digits.strip_prefix(p.as_str())
            && self.is_valid(rest)
        {
            return true;
        }
        let cc = self.calling_code.as_str();
        digits.len() > cc.len() + 6 && digits.strip_prefix(cc).is_some_and(|rest| self.is_valid(rest))
    }
}

/// Plans by region id, compiled on first use.
/// For a plan whose descriptions have these possible `lengths` (the general one first, then
/// each type's; empty: any): the lengths of a valid number ([`Plan::is_valid`]: of a general
/// length and of one of a type's), and those of digit strings that may be a national number
/// (valid bare, after the trunk prefix or after the country code, or of a possible length
/// ([`Plan::is_possible`]) after the trunk prefix). Supersets: the checks themselves decide.
fn length_sets(lengths: &[Vec<u16>], national_prefix: Option<&str>, calling_code: &str) -> (u64, u64) {
    let of = |lens: &[u16]| {
        lens.iter()
            .fold(0u64, |m, &l| m | 1u64.checked_shl(u32::from(l)).unwrap_or(0))
    };
    let any_if_empty = |lens: &[u16]| if lens.is_empty() { u64::MAX } else { of(lens) };
    let (general, types) = match lengths {
        [general, types @ ..] => (general.as_slice(), types),
        [] => (&[][..], &[][..]),
    };
    let valid = any_if_empty(general) & types.iter().fold(0, |m, lens| m | any_if_empty(lens));
    let possible = if general.is_empty() {
        types.iter().fold(0, |m, lens| m | of(lens))
    } else {
        of(general)
    };
    let shifted = |set: u64, by: usize| u32::try_from(by).map_or(0, |by| set.checked_shl(by).unwrap_or(0));
    let prefix = national_prefix.map_or(0, str::len);
    let after_prefix = if national_prefix.is_some() {
        shifted(valid | possible, prefix)
    } else {
        0
    };
    (valid, valid | after_prefix | shifted(valid, calling_code.len()))
}

static PLANS: LazyLock<HashMap<String, OnceLock<Option<Plan>>>> =
    LazyLock::new(|| DATABASE.iter().map(|m| (m.id().to_owned(), OnceLock::new())).collect());

pub(crate) fn plan(region: &str) -> Option<&'static Plan> {
    PLANS
        .get(region)?
        .get_or_init(|| DATABASE.by_id(region).and_then(Plan::from_metadata))
        .as_ref()
}

/// `number_plan:XX` and `possible_length:XX`, the evidence a phone number of region `XX`
/// carries, made once for every region (not once per number found).
static EVIDENCE: LazyLock<HashMap<&'static str, [Arc<str>; 2]>> = LazyLock::new(|| {
    PLANS
        .keys()
        .map(|r| {
            let made = [format!("number_plan:{r}"), format!("possible_length:{r}")].map(Arc::from);
            (r.as_str(), made)
        })
        .collect()
});

/// The evidence of a number of `region`: valid there, or of a possible length only.
pub(crate) fn evidence(region: &str, valid: bool) -> Arc<str> {
    let kind = if valid { "number_plan" } else { "possible_length" };
    match EVIDENCE.get(region) {
        Some(made) => made[usize::from(!valid)].clone(),
        None => Arc::from(format!("{kind}:{region}")),
    }
}

/// The region of an international number (digits after `+` or `00`) whose national
/// number `fits` its plan, if any.
fn international_where(digits: &str, fits: impl Fn(&Plan, &str) -> bool) -> Option<&'static str> {
    for cc_len in 1..=3 {
        let (cc, nsn) = (digits.get(..cc_len)?, digits.get(cc_len..)?);
        let Ok(code) = cc.parse::<u16>() else { continue };
        let Some(regions) = DATABASE.by_code(&code) else {
            continue;
        };
        return regions
            .iter()
            .filter_map(|m| plan(m.id()))
            .find(|p| fits(p, nsn))
            .map(|p| p.region.as_str());
    }
    None
}

/// The region of an international number (digits after `+` or `00`), if it is valid.
pub(crate) fn international(digits: &str) -> Option<&'static str> {
    international_where(digits, Plan::is_valid)
}

/// The region of an international number whose length its country's plan allows, if any.
pub(crate) fn international_possible(digits: &str) -> Option<&'static str> {
    international_where(digits, Plan::is_possible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_numbers() {
        let us = plan("US");
        assert!(us.is_some_and(|p| p.is_valid_national("4155550132")));
        assert!(us.is_some_and(|p| p.is_valid_national("14155550132")));
        assert!(
            !us.is_some_and(|p| p.is_valid_national("0155550132")),
            "no area code starts with 0"
        );
        assert!(plan("GB").is_some_and(|p| p.is_valid_national("02071234567")));
        assert!(plan("DE").is_some_and(|p| p.is_valid_national("0301234567")));
        assert!(plan("FR").is_some_and(|p| p.is_valid_national("0142685300")));
        assert!(plan("IN").is_some_and(|p| p.is_valid_national("9876543210")));
        assert_eq!(international("442071234567"), Some("GB"));
        assert_eq!(international("5511984565666"), Some("BR"));
        assert_eq!(international("999123"), None);
        // Reserved for fiction, so not valid, but written as a British number is.
        assert_eq!(international("441632960668"), None);
        assert_eq!(international_possible("441632960668"), Some("GB"));
        assert!(plan("DE").is_some_and(|p| p.is_possible_national("0371569023")));
        assert!(
            !plan("DE").is_some_and(|p| p.is_possible_national("371569023")),
            "no trunk prefix"
        );
        assert!(plan("XX").is_none());
    }

    /// The plan's answer as the metadata states it: the general description and one number
    /// type match the whole number (each its own regex), both of a possible length.
    fn valid_by_regexes(descriptions: &[(regex::Regex, Vec<u16>)], nsn: &str) -> bool {
        let len_ok = |lens: &[u16]| lens.is_empty() || lens.contains(&(nsn.len() as u16));
        descriptions
            .first()
            .is_some_and(|(re, lens)| len_ok(lens) && re.is_match(nsn))
            && descriptions[1..]
                .iter()
                .any(|(re, lens)| len_ok(lens) && re.is_match(nsn))
    }

    fn regexes(m: &Metadata) -> Vec<(regex::Regex, Vec<u16>)> {
        descriptions(m)
            .filter_map(|desc| {
                let src: String = desc
                    .national_number()
                    .as_str()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                Some((
                    regex::Regex::new(&format!("^(?:{src})$")).ok()?,
                    desc.possible_length().to_vec(),
                ))
            })
            .collect()
    }

    /// A fixed generator (xorshift): `next(n)` draws a number below `n`.
    fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        }
    }

    #[test]
    fn one_automaton_answers_as_the_regexes_do() {
        // numbers drawn from a fixed generator, with prefixes that reach assigned ranges
        let mut next = draws(0x2545_f491_4f6c_dd1d);
        let regions = [
            "US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR", "AU", "CH", "PL", "SE", "JP",
        ];
        let prefixes = [
            "", "1", "2", "3", "4", "6", "7", "8", "9", "15", "17", "20", "30", "61", "79", "212", "415",
        ];
        let (mut valid, mut total) = (0, 0);
        let mut by_region = HashMap::new();
        for _ in 0..20_000 {
            let region = regions[next(regions.len() as u64) as usize];
            let len = 3 + next(10) as usize;
            let rest: String = (0..len).map(|_| char::from(b'0' + next(10) as u8)).collect();
            let nsn = format!("{}{rest}", prefixes[next(prefixes.len() as u64) as usize]);
            let (Some(m), Some(p)) = (DATABASE.by_id(region), plan(region)) else {
                panic!("no plan for {region}");
            };
            let want = valid_by_regexes(by_region.entry(region).or_insert_with(|| regexes(m)), &nsn);
            assert_eq!(p.is_valid(&nsn), want, "{region} {nsn}");
            valid += usize::from(want);
            total += 1;
        }
        assert!(
            valid * 20 > total,
            "only {valid} of {total} numbers valid: the test proves little"
        );
    }

    /// The length filter refuses no number that the checks themselves would take, written
    /// bare, after the trunk prefix or after the country code; and it refuses many.
    #[test]
    fn the_length_filter_refuses_only_what_the_plan_refuses() {
        let mut next = draws(0x9e37_79b9_7f4a_7c15);
        let (mut taken, mut refused) = (0, 0);
        for region in [
            "US", "GB", "DE", "FR", "IT", "NL", "IN", "IL", "CA", "BR", "AU", "JP", "SE",
        ] {
            let Some(p) = plan(region) else {
                panic!("no plan for {region}");
            };
            let prefixes = [
                String::new(),
                p.national_prefix.clone().unwrap_or_default(),
                p.calling_code.clone(),
            ];
            for _ in 0..5_000 {
                let len = 2 + next(14) as usize;
                let rest: String = (0..len).map(|_| char::from(b'0' + next(10) as u8)).collect();
                let digits = format!("{}{rest}", prefixes[next(3) as usize]);
                let after = |cut: Option<&str>| cut.and_then(|c| digits.strip_prefix(c));
                let prefix = p.national_prefix.as_deref();
                let unfiltered = p.is_valid(&digits)
                    || after(prefix).is_some_and(|r| p.is_valid(r) || p.is_possible(r))
                    || after(Some(p.calling_code.as_str())).is_some_and(|r| p.is_valid(r));
                if unfiltered {
                    assert!(p.may_be_national(digits.len()), "{region} {digits}");
                    taken += 1;
                }
                refused += usize::from(!p.may_be_national(digits.len()));
            }
        }
        assert!(taken > 5_000 && refused > 20_000, "taken {taken}, refused {refused}");
    }

    #[test]
    fn every_region_of_the_metadata_has_a_plan() {
        let mut missing = Vec::new();
        for m in DATABASE.iter() {
            if plan(m.id()).is_none() && m.descriptors().general().national_number().as_str() != "NA" {
                missing.push(m.id().to_owned());
            }
        }
        assert!(missing.is_empty(), "no plan for {missing:?}");
    }
}
