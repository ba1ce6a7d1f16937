//! Parsing the jurisdictions and holiday calendars: the built-in tables first, then the
//! registry's `[holidays.*]` (dates added) and `[jurisdictions.*]` (rows added or replaced).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::calendar::Date;
use crate::jurisdiction::{
    BUILTIN_HOLIDAYS, BUILTIN_JURISDICTIONS, HolidaySource, Holidays, Jurisdiction, RequestType, Rule, TimeLimit,
    TimeUnit,
};
use crate::model::Organization;
use crate::parse::Checker;

/// The tables of the built-in files (the registry has the same two).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    jurisdictions: BTreeMap<Spanned<String>, RawJurisdiction>,
    #[serde(default)]
    holidays: BTreeMap<Spanned<String>, RawHolidays>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJurisdiction {
    title: Option<Spanned<String>>,
    respond_within: Spanned<String>,
    acknowledge_within: Option<Spanned<String>>,
    extension: Option<Spanned<String>>,
    extensions_allowed: Option<Spanned<i64>>,
    #[serde(default)]
    next_working_day: bool,
    holidays: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    retain_records: Option<Spanned<String>>,
    authority: Option<Spanned<String>>,
    request_types: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    types: BTreeMap<Spanned<String>, RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    respond_within: Spanned<String>,
    acknowledge_within: Option<Spanned<String>>,
    extension: Option<Spanned<String>>,
    extensions_allowed: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHolidays {
    description: Option<Spanned<String>>,
    dates: Vec<Spanned<String>>,
}

/// The built-in file `text` (named `file`), parsed with its own diagnostics.
fn builtin(file: &'static str, text: &'static str) -> (RawRules, Checker<'static>) {
    let mut own = Checker::new(file, text);
    let raw = match toml::from_str::<RawRules>(text) {
        Ok(raw) => raw,
        Err(e) => {
            own.at(e.span().map_or(0, |s| s.start), e.message().trim().to_owned());
            RawRules::default()
        }
    };
    (raw, own)
}

/// Builds the holiday calendars (built in, then the registry's dates) and the jurisdictions
/// (built in, then the registry's rows, which replace built-in rows of the same name).
/// `organization`'s country and time zone are those of `holidays = "controller"` and
/// `time_zone = "controller"`.
pub(crate) fn build_rules(
    c: &mut Checker<'_>,
    rows: &BTreeMap<Spanned<String>, RawJurisdiction>,
    calendars: &BTreeMap<Spanned<String>, RawHolidays>,
    organization: &Organization,
) -> (BTreeMap<String, Jurisdiction>, BTreeMap<String, Holidays>) {
    let (builtin_holidays, mut hc) = builtin("holidays.toml (built in)", BUILTIN_HOLIDAYS);
    let mut holidays = BTreeMap::new();
    add_holidays(&mut hc, &builtin_holidays.holidays, &mut holidays);
    add_holidays(c, calendars, &mut holidays);

    let (builtin_rows, mut jc) = builtin("jurisdictions.toml (built in)", BUILTIN_JURISDICTIONS);
    let mut jurisdictions = BTreeMap::new();
    for (name, row) in &builtin_rows.jurisdictions {
        if let Some(j) = build_jurisdiction(&mut jc, &holidays, organization, name, row) {
            jurisdictions.insert(j.name.clone(), j);
        }
    }
    for (name, row) in rows {
        if let Some(j) = build_jurisdiction(c, &holidays, organization, name, row) {
            jurisdictions.insert(j.name.clone(), j);
        }
    }
    // A mistake in a built-in table is a bug of this crate; a test keeps them at zero.
    c.diagnostics.extend(hc.diagnostics);
    c.diagnostics.extend(jc.diagnostics);
    (jurisdictions, holidays)
}

/// Whether `name` is a calendar name: an ISO 3166-1 alpha-2 country, optionally with an
/// ISO 3166-2 subdivision (`GB`, `US-CA`, `DE-BY`).
fn calendar_name(name: &str) -> bool {
    let (country, sub) = match name.split_once('-') {
        Some((country, sub)) => (country, Some(sub)),
        None => (name, None),
    };
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && sub.is_none_or(|s| {
            (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

fn add_holidays(
    c: &mut Checker<'_>,
    calendars: &BTreeMap<Spanned<String>, RawHolidays>,
    holidays: &mut BTreeMap<String, Holidays>,
) {
    for (name, table) in calendars {
        if !calendar_name(name.get_ref()) {
            c.at(
                name.span().start,
                format!(
                    "holiday calendar name `{}` must be a country code such as `GB`, or a country and a subdivision such as `US-CA`",
                    name.get_ref()
                ),
            );
            continue;
        }
        let calendar = holidays
            .entry(name.get_ref().clone())
            .or_insert_with(|| Holidays::weekends_only(name.get_ref().clone()));
        if let Some(description) = c.opt_text("holiday calendar description", table.description.as_ref(), true) {
            calendar.description = description;
        }
        let mut seen = BTreeSet::new();
        for day in &table.dates {
            match Date::parse(day.get_ref()) {
                Ok(date) if seen.insert(date) => {
                    calendar.dates.insert(date);
                }
                Ok(_) => c.at(
                    day.span().start,
                    format!(
                        "holiday `{}` is listed twice in [holidays.{}]",
                        day.get_ref(),
                        name.get_ref()
                    ),
                ),
                Err(e) => c.at(
                    day.span().start,
                    format!("holiday `{}` in [holidays.{}]: {e}", day.get_ref(), name.get_ref()),
                ),
            }
        }
    }
}

fn time_limit(c: &mut Checker<'_>, what: &str, text: &Spanned<String>) -> Option<TimeLimit> {
    match text.get_ref().parse::<TimeLimit>() {
        Ok(limit) => Some(limit),
        Err(e) => {
            c.at(text.span().start, format!("{what} `{}`: {e}", text.get_ref()));
            None
        }
    }
}

/// A rule's keys, of a `[jurisdictions.*]` row or of one of its `types`.
struct RuleKeys<'a> {
    respond_within: &'a Spanned<String>,
    acknowledge_within: Option<&'a Spanned<String>>,
    extension: Option<&'a Spanned<String>>,
    extensions_allowed: Option<&'a Spanned<i64>>,
}

impl RawRule {
    fn keys(&self) -> RuleKeys<'_> {
        RuleKeys {
            respond_within: &self.respond_within,
            acknowledge_within: self.acknowledge_within.as_ref(),
            extension: self.extension.as_ref(),
            extensions_allowed: self.extensions_allowed.as_ref(),
        }
    }
}

/// A rule, or `None` after reporting every mistake in it.
fn build_rule(c: &mut Checker<'_>, at: &str, raw: &RuleKeys<'_>) -> Option<Rule> {
    let mut failed = false;
    let mut limit = |c: &mut Checker<'_>, key: &str, text: &Spanned<String>| {
        let parsed = time_limit(c, &format!("{at}: {key}"), text);
        failed |= parsed.is_none();
        parsed
    };
    let respond_within = limit(c, "respond_within", raw.respond_within);
    let acknowledge_within = raw
        .acknowledge_within
        .and_then(|text| limit(c, "acknowledge_within", text));
    let extension = raw.extension.and_then(|text| limit(c, "extension", text));
    let extensions_allowed = match raw.extensions_allowed {
        None => u32::from(raw.extension.is_some()),
        Some(n) => match u32::try_from(*n.get_ref()).ok().filter(|n| *n <= 12) {
            None => {
                c.at(n.span().start, format!("{at}: extensions_allowed must be from 0 to 12"));
                failed = true;
                0
            }
            Some(count) if count > 0 && raw.extension.is_none() => {
                c.at(
                    n.span().start,
                    format!("{at}: extensions_allowed needs `extension`, how much longer each one gives"),
                );
                failed = true;
                0
            }
            Some(count) => count,
        },
    };
    if failed {
        return None;
    }
    Some(Rule {
        respond_within: respond_within?,
        acknowledge_within,
        extension,
        extensions_allowed,
    })
}

fn request_type(c: &mut Checker<'_>, value: &Spanned<String>) -> Option<RequestType> {
    let names: Vec<&str> = RequestType::ALL.iter().map(|t| t.as_str()).collect();
    c.one_of("request type", value, &names, |s| s.parse().ok())
}

fn build_jurisdiction(
    c: &mut Checker<'_>,
    holidays: &BTreeMap<String, Holidays>,
    organization: &Organization,
    name: &Spanned<String>,
    raw: &RawJurisdiction,
) -> Option<Jurisdiction> {
    let country = organization.country.as_str();
    let mut failed = !c.name("jurisdiction", name);
    let jname = name.get_ref();
    let at = format!("jurisdiction `{jname}`");
    let keys = RuleKeys {
        respond_within: &raw.respond_within,
        acknowledge_within: raw.acknowledge_within.as_ref(),
        extension: raw.extension.as_ref(),
        extensions_allowed: raw.extensions_allowed.as_ref(),
    };
    let rule = build_rule(c, &at, &keys);
    let mut by_type = BTreeMap::new();
    for (kind, raw_rule) in &raw.types {
        let Some(kind) = request_type(c, kind) else { continue };
        if let Some(rule) = build_rule(c, &format!("{at}, {kind} requests"), &raw_rule.keys()) {
            by_type.insert(kind, rule);
        }
    }
    let request_types = match &raw.request_types {
        None => RequestType::ALL.into_iter().collect(),
        Some(list) => {
            let mut out = BTreeSet::new();
            for value in list {
                if let Some(kind) = request_type(c, value)
                    && !out.insert(kind)
                {
                    c.at(value.span().start, format!("request type `{kind}` is listed twice"));
                }
            }
            out
        }
    };
    let (source, calendar) = match &raw.holidays {
        None => (HolidaySource::Controller, country.to_owned()),
        Some(v) if v.get_ref() == "controller" => (HolidaySource::Controller, country.to_owned()),
        Some(v) if holidays.contains_key(v.get_ref()) => {
            (HolidaySource::Named(v.get_ref().clone()), v.get_ref().clone())
        }
        Some(v) => {
            let known: Vec<&str> = holidays.keys().map(String::as_str).collect();
            c.at(
                v.span().start,
                format!(
                    "{at}: unknown holiday calendar `{}`; use `controller` (the calendar of [organization] country), one of: {}, or a calendar of your own given as [holidays.{}] dates = [...]",
                    v.get_ref(),
                    known.join(", "),
                    v.get_ref()
                ),
            );
            failed = true;
            (HolidaySource::Named(v.get_ref().clone()), v.get_ref().clone())
        }
    };
    let own_zone = raw.time_zone.as_ref().filter(|v| v.get_ref() != "controller");
    let counts_controller_time = own_zone.is_none();
    let zone = match own_zone {
        None => organization.zone(),
        Some(v) => c.time_zone(&format!("{at}: time_zone"), v).unwrap_or_else(|| {
            failed = true;
            crate::calendar::Zone::utc()
        }),
    };
    let retain_records = raw.retain_records.as_ref().and_then(|text| {
        let limit = time_limit(c, &format!("{at}: retain_records"), text);
        if limit.is_some_and(|l| l.unit == TimeUnit::BusinessDays) {
            c.at(
                text.span().start,
                format!("{at}: retain_records must be in days or months"),
            );
            failed = true;
            return None;
        }
        failed |= limit.is_none();
        limit
    });
    let authority = raw
        .authority
        .as_ref()
        .map(|text| c.non_empty(&format!("{at}: authority"), text));
    let title = match &raw.title {
        Some(text) => c.non_empty(&format!("{at}: title"), text),
        None => jname.clone(),
    };
    if failed {
        return None;
    }
    Some(Jurisdiction {
        name: jname.clone(),
        title,
        rule: rule?,
        by_type,
        request_types,
        next_working_day: raw.next_working_day,
        holidays: source,
        calendar,
        zone,
        counts_controller_time,
        retain_records,
        authority,
    })
}
