//! National number plans from libphonenumber's metadata (the `phonenumber` crate ships it),
//! compiled once per region into one anchored regular expression per number type. The
//! crate's own parser goes through an LRU cache of 100 regexes shared behind a mutex, which
//! made number-plan checks most of a scan's time; this keeps the data and drops the cache.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{DATABASE, Metadata};
use regex::Regex;

/// A region's plan: its valid national significant numbers.
pub(crate) struct Plan {
    pub(crate) region: String,
    country_code: u16,
    national_prefix: Option<String>,
    /// (pattern, possible lengths) of the general description
    general: (Regex, Vec<u16>),
    /// (pattern, possible lengths) of each number type (fixed line, mobile, toll free, ...)
    types: Vec<(Regex, Vec<u16>)>,
}

/// The metadata's patterns are laid out over several lines; the whitespace is not part of them.
fn anchored(src: &str) -> Option<Regex> {
    let src: String = src.chars().filter(|c| !c.is_whitespace()).collect();
    Regex::new(&format!("^(?:{src})$")).ok()
}

impl Plan {
    fn from_metadata(m: &Metadata) -> Option<Self> {
        let d = m.descriptors();
        let general = (
            anchored(d.general().national_number().as_str())?,
            d.general().possible_length().to_vec(),
        );
        let mut types = Vec::new();
        for desc in [
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
        .flatten()
        {
            if let Some(re) = anchored(desc.national_number().as_str()) {
                types.push((re, desc.possible_length().to_vec()));
            }
        }
        Some(Self {
            region: m.id().to_owned(),
            country_code: m.country_code(),
            national_prefix: m.national_prefix().map(str::to_owned),
            general,
            types,
        })
    }

    pub(crate) fn country_code(&self) -> u16 {
        self.country_code
    }

    /// Whether `nsn` (digits only, no prefix) is a valid number of this region.
    pub(crate) fn is_valid(&self, nsn: &str) -> bool {
        let len_ok = |lens: &[u16]| lens.is_empty() || lens.contains(&(nsn.len() as u16));
        len_ok(&self.general.1)
            && self.general.0.is_match(nsn)
            && self.types.iter().any(|(re, lens)| len_ok(lens) && re.is_match(nsn))
    }

    /// Whether `nsn` has a length the plan allows, whatever its range (unassigned and
    /// reserved ranges included: numbers for fiction, `+44 1632 960...`, are still written
    /// as phone numbers).
    pub(crate) fn is_possible(&self, nsn: &str) -> bool {
        let n = nsn.len() as u16;
        // The general description's lengths, or (where the metadata leaves them out) those
        // of the number types
        !nsn.is_empty()
            && (self.general.1.contains(&n)
                || (self.general.1.is_empty() && self.types.iter().any(|(_, lens)| lens.contains(&n))))
    }

    /// Whether a number written nationally with its trunk prefix (`0371 569023`) has a
    /// possible length.
    pub(crate) fn is_possible_national(&self, digits: &str) -> bool {
        self.national_prefix
            .as_deref()
            .and_then(|p| digits.strip_prefix(p))
            .is_some_and(|rest| self.is_possible(rest))
    }

    /// Whether a number written nationally (or with the country code but no `+`) is valid.
    pub(crate) fn is_valid_national(&self, digits: &str) -> bool {
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
        let cc = self.country_code.to_string();
        digits.len() > cc.len() + 6 && digits.strip_prefix(cc.as_str()).is_some_and(|rest| self.is_valid(rest))
    }
}

/// Plans by region id, compiled on first use.
static PLANS: LazyLock<HashMap<String, OnceLock<Option<Plan>>>> =
    LazyLock::new(|| DATABASE.iter().map(|m| (m.id().to_owned(), OnceLock::new())).collect());

pub(crate) fn plan(region: &str) -> Option<&'static Plan> {
    PLANS
        .get(region)?
        .get_or_init(|| DATABASE.by_id(region).and_then(Plan::from_metadata))
        .as_ref()
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
}
