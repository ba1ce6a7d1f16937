//! Breach notification laws as data (`breach_rules.toml` and the registry's
//! `[breach_laws.*]`): whom to tell about a personal data breach, by when, on what condition;
//! and the pure arithmetic of an incident's duties ([`duties`]) from the time the organization
//! became aware, the risk assessed, how many people each law covers and whether the exposed
//! data was intelligible.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::parse::Checker;

/// The built-in breach laws, in the registry's format.
pub const BUILTIN_BREACH_LAWS: &str = include_str!("breach_rules.toml");
/// The law an organization is under when `[incidents] laws` does not say.
pub const DEFAULT_BREACH_LAW: &str = "gdpr";

/// One breach notification law, e.g. `gdpr`, `us_ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachLaw {
    pub name: String,
    pub title: String,
    /// Request jurisdictions whose subjects the law covers (see the module's file).
    pub jurisdictions: Vec<String>,
    pub notices: Vec<BreachNotice>,
}

/// Whom a notice goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeTo {
    Authority,
    Subjects,
    AttorneyGeneral,
    Regulator,
    Media,
}

impl NoticeTo {
    pub const NAMES: [&'static str; 5] = ["authority", "subjects", "attorney_general", "regulator", "media"];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authority => "authority",
            Self::Subjects => "subjects",
            Self::AttorneyGeneral => "attorney_general",
            Self::Regulator => "regulator",
            Self::Media => "media",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authority" => Some(Self::Authority),
            "subjects" => Some(Self::Subjects),
            "attorney_general" => Some(Self::AttorneyGeneral),
            "regulator" => Some(Self::Regulator),
            "media" => Some(Self::Media),
            _ => None,
        }
    }
}

/// How long a notice may take from awareness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    Hours(u32),
    Days(u32),
    /// No fixed period: as soon as possible.
    WithoutUndueDelay,
}

impl Within {
    fn parse(s: &str) -> Option<Self> {
        if s == "without undue delay" {
            return Some(Self::WithoutUndueDelay);
        }
        let (n, unit) = s.split_once(' ')?;
        let n: u32 = n.parse().ok().filter(|n| (1..=3650).contains(n))?;
        match unit {
            "hours" | "hour" => Some(Self::Hours(n)),
            "days" | "day" => Some(Self::Days(n)),
            _ => None,
        }
    }

    /// The period in milliseconds, if fixed.
    #[must_use]
    pub fn millis(self) -> Option<i64> {
        match self {
            Self::Hours(h) => Some(i64::from(h) * 3_600_000),
            Self::Days(d) => Some(i64::from(d) * 86_400_000),
            Self::WithoutUndueDelay => None,
        }
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hours(h) => write!(f, "{h} hours"),
            Self::Days(d) => write!(f, "{d} days"),
            Self::WithoutUndueDelay => f.write_str("without undue delay"),
        }
    }
}

/// On what condition a notice is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    Always,
    /// Unless the breach is unlikely to result in a risk (GDPR Art. 33(1)).
    Risk,
    /// Only when it is likely to result in a high risk (GDPR Art. 34(1)).
    HighRisk,
}

/// One duty to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachNotice {
    pub to: NoticeTo,
    /// Whom, in words.
    pub name: String,
    pub within: Within,
    pub when: When,
    pub min_affected: u64,
    pub unless_unintelligible: bool,
    pub citation: String,
}

/// The organization's incident settings (`[incidents]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRules {
    /// The breach laws the organization is under (default `gdpr`).
    pub laws: Vec<String>,
}

/// A risk assessment of a breach (GDPR Art. 33(1), 34(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Not assessed yet: every duty that depends on the risk is taken as owed.
    Unassessed,
    /// Unlikely to result in a risk to people's rights and freedoms.
    Unlikely,
    Risk,
    HighRisk,
}

impl Risk {
    pub const NAMES: [&'static str; 4] = ["unassessed", "unlikely", "risk", "high_risk"];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unassessed" => Some(Self::Unassessed),
            "unlikely" => Some(Self::Unlikely),
            "risk" => Some(Self::Risk),
            "high_risk" => Some(Self::HighRisk),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassessed => "unassessed",
            Self::Unlikely => "unlikely",
            Self::Risk => "risk",
            Self::HighRisk => "high_risk",
        }
    }
}

/// What an incident's duties depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Unix milliseconds: when the organization became aware (the clock starts).
    pub aware_at: i64,
    pub risk: Risk,
    /// People each law covers among those affected, by law name (`None`: not known yet, so
    /// thresholds are taken as met).
    pub affected: Option<&'a BTreeMap<String, u64>>,
    /// Whether the exposed data was unintelligible to whoever got it (`None`: not known).
    pub unintelligible: Option<bool>,
}

/// Whether a notice is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    Yes,
    /// Owed unless the pending assessment finds otherwise (risk not assessed, scope not known).
    Provisionally(&'static str),
    No(&'static str),
}

/// One duty of one incident under one law.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duty<'a> {
    pub law: &'a BreachLaw,
    pub notice: &'a BreachNotice,
    pub owed: Owed,
    /// Unix milliseconds, for a fixed period.
    pub due: Option<i64>,
}

/// The duties of an incident under `laws`, in the order the laws list them.
#[must_use]
pub fn duties<'a>(laws: &[&'a BreachLaw], facts: &Facts<'_>) -> Vec<Duty<'a>> {
    let mut out = Vec::new();
    for law in laws {
        let affected = facts.affected.map(|counts| counts.get(&law.name).copied().unwrap_or(0));
        for notice in &law.notices {
            let owed = owed(notice, facts, affected);
            let due = notice.within.millis().map(|ms| facts.aware_at.saturating_add(ms));
            out.push(Duty { law, notice, owed, due });
        }
    }
    out
}

fn owed(notice: &BreachNotice, facts: &Facts<'_>, affected: Option<u64>) -> Owed {
    match (notice.when, facts.risk) {
        (When::Risk | When::HighRisk, Risk::Unlikely) => {
            return Owed::No("the breach was assessed as unlikely to result in a risk");
        }
        (When::HighRisk, Risk::Risk) => return Owed::No("the breach was not assessed as a high risk"),
        _ => {}
    }
    if notice.unless_unintelligible && facts.unintelligible == Some(true) {
        return Owed::No("the exposed data was unintelligible (encrypted, masked or tokenized)");
    }
    // A count decides only thresholds: a breach may reach people the vault's log does not
    // show (a lost laptop, a dump), so no count ever lifts a duty without one.
    if let Some(n) = affected
        && notice.min_affected > 0
        && n < notice.min_affected
    {
        return Owed::No("fewer people affected than the law's threshold");
    }
    if notice.when != When::Always && facts.risk == Risk::Unassessed {
        return Owed::Provisionally("the risk is not assessed yet");
    }
    if affected.is_none() && notice.min_affected > 0 {
        return Owed::Provisionally("how many people are affected is not known yet (compute the scope)");
    }
    if notice.unless_unintelligible && facts.unintelligible.is_none() {
        return Owed::Provisionally("whether the exposed data was intelligible is not known yet");
    }
    Owed::Yes
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLaws {
    #[serde(default)]
    breach_laws: BTreeMap<Spanned<String>, RawBreachLaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreachLaw {
    title: Spanned<String>,
    #[serde(default)]
    jurisdictions: Vec<Spanned<String>>,
    notices: Vec<RawNotice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    to: Spanned<String>,
    name: Option<Spanned<String>>,
    within: Spanned<String>,
    when: Spanned<String>,
    min_affected: Option<Spanned<i64>>,
    #[serde(default)]
    unless_unintelligible: bool,
    citation: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIncidents {
    laws: Spanned<Vec<Spanned<String>>>,
}

/// Builds the breach laws (built in, then the registry's, which replace built-in laws of the
/// same name) and the organization's `[incidents]` settings.
pub(crate) fn build_breach_laws(
    c: &mut Checker<'_>,
    rows: &BTreeMap<Spanned<String>, RawBreachLaw>,
    incidents: Option<&RawIncidents>,
    authority: &str,
    jurisdictions: &[&str],
) -> (BTreeMap<String, BreachLaw>, IncidentRules) {
    let mut own = Checker::new("breach_rules.toml (built in)", BUILTIN_BREACH_LAWS);
    let builtin = toml::from_str::<RawLaws>(BUILTIN_BREACH_LAWS).unwrap_or_else(|e| {
        own.at(e.span().map_or(0, |s| s.start), e.message().trim().to_owned());
        RawLaws::default()
    });
    let mut laws = BTreeMap::new();
    for (name, raw) in &builtin.breach_laws {
        if let Some(law) = build_law(&mut own, name, raw, authority, jurisdictions) {
            laws.insert(law.name.clone(), law);
        }
    }
    // A mistake in the built-in table is a bug of this crate; a test keeps it at zero.
    c.diagnostics.extend(own.diagnostics);
    for (name, raw) in rows {
        if let Some(law) = build_law(c, name, raw, authority, jurisdictions) {
            laws.insert(law.name.clone(), law);
        }
    }
    let names = match incidents {
        None => vec![DEFAULT_BREACH_LAW.to_owned()],
        Some(raw) => {
            if raw.laws.get_ref().is_empty() {
                c.at(
                    raw.laws.span().start,
                    "incidents.laws must name at least one breach law (e.g. \"gdpr\")",
                );
            }
            let mut names: Vec<String> = Vec::new();
            for law in raw.laws.get_ref() {
                if !laws.contains_key(law.get_ref()) {
                    let known: Vec<&str> = laws.keys().map(String::as_str).collect();
                    c.at(
                        law.span().start,
                        format!(
                            "unknown breach law `{}`; built in: {}, or a law of your own as [breach_laws.{}]",
                            law.get_ref(),
                            known.join(", "),
                            law.get_ref()
                        ),
                    );
                } else if names.contains(law.get_ref()) {
                    c.at(
                        law.span().start,
                        format!("breach law `{}` is listed twice", law.get_ref()),
                    );
                } else {
                    names.push(law.get_ref().clone());
                }
            }
            names
        }
    };
    (laws, IncidentRules { laws: names })
}

fn build_law(
    c: &mut Checker<'_>,
    name: &Spanned<String>,
    raw: &RawBreachLaw,
    authority: &str,
    known: &[&str],
) -> Option<BreachLaw> {
    let mut failed = !c.name("breach law", name);
    let at = format!("breach law `{}`", name.get_ref());
    let title = c.non_empty("breach law title", &raw.title);
    let mut notices = Vec::new();
    if raw.notices.is_empty() {
        c.at(
            name.span().start,
            format!("{at} must have at least one [[notices]] entry"),
        );
        failed = true;
    }
    for n in &raw.notices {
        let to = c.one_of("notice recipient", &n.to, &NoticeTo::NAMES, NoticeTo::parse);
        let within = Within::parse(n.within.get_ref());
        if within.is_none() {
            c.at(
                n.within.span().start,
                format!("{at}: within must be `N hours`, `N days` (1 to 3650) or `without undue delay`"),
            );
        }
        let when = c.one_of(
            "notice condition",
            &n.when,
            &["always", "risk", "high_risk"],
            |s| match s {
                "always" => Some(When::Always),
                "risk" => Some(When::Risk),
                "high_risk" => Some(When::HighRisk),
                _ => None,
            },
        );
        let min_affected = n
            .min_affected
            .as_ref()
            .map_or(0, |v| u64::from(c.within("notice min_affected", v, 0, 100_000_000)));
        let citation = c.non_empty("notice citation", &n.citation);
        let named = c.opt_text("notice name", n.name.as_ref(), false);
        let (Some(to), Some(within), Some(when)) = (to, within, when) else {
            failed = true;
            continue;
        };
        if notices.iter().any(|n: &BreachNotice| n.to == to) {
            c.at(
                n.to.span().start,
                format!("{at}: a second notice to `{}`; one notice per recipient", to.as_str()),
            );
            failed = true;
            continue;
        }
        let name = named.unwrap_or_else(|| match to {
            NoticeTo::Authority => authority.to_owned(),
            NoticeTo::Subjects => "the people affected".to_owned(),
            NoticeTo::AttorneyGeneral => "the attorney general".to_owned(),
            NoticeTo::Regulator => "the regulator".to_owned(),
            NoticeTo::Media => "the media".to_owned(),
        });
        notices.push(BreachNotice {
            to,
            name,
            within,
            when,
            min_affected,
            unless_unintelligible: n.unless_unintelligible,
            citation,
        });
    }
    for j in &raw.jurisdictions {
        if !known.contains(&j.get_ref().as_str()) {
            c.at(
                j.span().start,
                format!(
                    "{at}: unknown request jurisdiction `{}`; known: {}",
                    j.get_ref(),
                    known.join(", ")
                ),
            );
            failed = true;
        }
    }
    let jurisdictions = raw.jurisdictions.iter().map(|j| j.get_ref().clone()).collect();
    (!failed).then(|| BreachLaw {
        name: name.get_ref().clone(),
        title,
        jurisdictions,
        notices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laws() -> BTreeMap<String, BreachLaw> {
        let mut c = Checker::new("test", "");
        let (laws, rules) = build_breach_laws(&mut c, &BTreeMap::new(), None, "ICO", &["gdpr", "ccpa"]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert_eq!(rules.laws, ["gdpr"]);
        laws
    }

    const AWARE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn facts(risk: Risk, unintelligible: Option<bool>, affected: Option<&BTreeMap<String, u64>>) -> Facts<'_> {
        Facts {
            aware_at: AWARE,
            risk,
            affected,
            unintelligible,
        }
    }

    #[test]
    fn builtin_laws_parse_and_name_the_authority() {
        let laws = laws();
        for name in [
            "gdpr", "uk_gdpr", "us_ca", "us_co", "us_fl", "us_or", "us_al", "us_tx", "hipaa",
        ] {
            assert!(laws.contains_key(name), "{name}");
        }
        let gdpr = &laws["gdpr"];
        assert_eq!(gdpr.notices[0].name, "ICO");
        assert_eq!(gdpr.notices[0].within, Within::Hours(72));
    }

    #[test]
    fn gdpr_authority_is_due_72_hours_after_awareness_unless_unlikely_risk() {
        let laws = laws();
        let gdpr = [&laws["gdpr"]];
        let everyone = &BTreeMap::from([("gdpr".to_owned(), 10)]);
        let d = duties(&gdpr, &facts(Risk::Risk, Some(false), Some(everyone)));
        assert_eq!(d[0].notice.to, NoticeTo::Authority);
        assert_eq!(d[0].due, Some(AWARE + 72 * 3_600_000));
        assert_eq!(d[0].owed, Owed::Yes);
        // Subjects only for a high risk.
        assert!(matches!(d[1].owed, Owed::No(_)));
        assert_eq!(d[1].due, None);
        let d = duties(&gdpr, &facts(Risk::HighRisk, Some(false), Some(everyone)));
        assert_eq!(d[1].owed, Owed::Yes);
        // Art. 34(3)(a): unintelligible data lifts the duty to tell subjects, not the authority.
        let d = duties(&gdpr, &facts(Risk::HighRisk, Some(true), Some(everyone)));
        assert_eq!(d[0].owed, Owed::Yes);
        assert!(matches!(d[1].owed, Owed::No(_)));
        let d = duties(&gdpr, &facts(Risk::Unlikely, Some(false), Some(everyone)));
        assert!(d.iter().all(|d| matches!(d.owed, Owed::No(_))));
        // Unassessed: provisionally owed, the clock runs all the same.
        let d = duties(&gdpr, &facts(Risk::Unassessed, None, None));
        assert!(matches!(d[0].owed, Owed::Provisionally(_)));
        assert_eq!(d[0].due, Some(AWARE + 72 * 3_600_000));
    }

    #[test]
    fn thresholds_count_the_people_each_law_covers() {
        let laws = laws();
        let tx = [&laws["us_tx"]];
        let count = |n: u64| BTreeMap::from([("us_tx".to_owned(), n)]);
        let few = count(249);
        let d = duties(&tx, &facts(Risk::Risk, Some(false), Some(&few)));
        assert_eq!(d[0].owed, Owed::Yes);
        assert_eq!(d[0].due, Some(AWARE + 60 * 86_400_000));
        assert!(matches!(d[1].owed, Owed::No(_)));
        let enough = count(250);
        let d = duties(&tx, &facts(Risk::Risk, Some(false), Some(&enough)));
        assert_eq!(d[1].owed, Owed::Yes);
        assert_eq!(d[1].due, Some(AWARE + 30 * 86_400_000));
        // Nobody found in the log lifts a threshold duty, never one without a threshold.
        let none = count(0);
        let d = duties(&tx, &facts(Risk::Risk, Some(false), Some(&none)));
        assert_eq!(d[0].owed, Owed::Yes);
        assert!(matches!(d[1].owed, Owed::No(_)));
    }

    #[test]
    fn registry_laws_are_checked_with_their_line() {
        let text = "[breach_laws.acme]\ntitle = \"x\"\n[[breach_laws.acme.notices]]\nto = \"press\"\nwithin = \"3 weeks\"\nwhen = \"always\"\ncitation = \"s. 1\"\n\
                    [breach_laws.twice]\ntitle = \"y\"\njurisdictions = [\"cppa\"]\n\
                    [[breach_laws.twice.notices]]\nto = \"authority\"\nwithin = \"1 day\"\nwhen = \"always\"\ncitation = \"s. 2\"\n\
                    [[breach_laws.twice.notices]]\nto = \"authority\"\nwithin = \"2 days\"\nwhen = \"always\"\ncitation = \"s. 3\"\n";
        let raw: RawLaws = toml::from_str(text).unwrap_or_default();
        let mut c = Checker::new("registry.toml", text);
        let incidents: RawIncidents =
            toml::from_str("laws = [\"acme\", \"nowhere\"]").unwrap_or_else(|_| RawIncidents {
                laws: Spanned::new(0..0, Vec::new()),
            });
        let (laws, _) = build_breach_laws(&mut c, &raw.breach_laws, Some(&incidents), "ICO", &["gdpr"]);
        let messages: Vec<String> = c.diagnostics.iter().map(ToString::to_string).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("registry.toml:4") && m.contains("press")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("registry.toml:5") && m.contains("N hours")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("unknown breach law `nowhere`")),
            "{messages:?}"
        );
        assert!(!laws.contains_key("acme"));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("registry.toml:10") && m.contains("`cppa`")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("registry.toml:17") && m.contains("second notice")),
            "{messages:?}"
        );
        assert!(!laws.contains_key("twice"));
    }
}
