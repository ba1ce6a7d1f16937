//! Data subject requests and their legal deadlines: the request types, the jurisdictions'
//! rules (data: `jurisdictions.toml` and the registry's `[jurisdictions.*]`), holiday
//! calendars (`holidays.toml` and `[holidays.*]`) and the deadline arithmetic. Pure: the
//! caller passes the day of receipt.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::calendar::Date;

/// The built-in jurisdictions (`gdpr`, `ccpa`), in the registry's format.
pub const BUILTIN_JURISDICTIONS: &str = include_str!("jurisdictions.toml");
/// The built-in holiday calendars (`GB`, `IE`, `DE`, `FR`, `US-CA`, 2025-2030), in the
/// registry's format.
pub const BUILTIN_HOLIDAYS: &str = include_str!("holidays.toml");

/// What a data subject asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// GDPR Art. 15; CCPA right to know.
    Access,
    /// GDPR Art. 20.
    Portability,
    /// GDPR Art. 16; CPRA right to correct.
    Rectification,
    /// GDPR Art. 17; CCPA right to delete.
    Erasure,
    /// GDPR Art. 18.
    Restriction,
    /// GDPR Art. 21.
    Objection,
    /// CCPA right to opt out of sale or sharing (§7026).
    OptOutSale,
    /// CPRA right to limit the use of sensitive personal information (§7027).
    LimitSensitive,
}

impl RequestType {
    /// Every request type, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Access,
        Self::Portability,
        Self::Rectification,
        Self::Erasure,
        Self::Restriction,
        Self::Objection,
        Self::OptOutSale,
        Self::LimitSensitive,
    ];

    /// The name used in the API and the registry, e.g. `opt_out_sale`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Portability => "portability",
            Self::Rectification => "rectification",
            Self::Erasure => "erasure",
            Self::Restriction => "restriction",
            Self::Objection => "objection",
            Self::OptOutSale => "opt_out_sale",
            Self::LimitSensitive => "limit_sensitive",
        }
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no request type. The message lists the names, not the text given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown request type; expected one of: access, portability, rectification, erasure, restriction, objection, opt_out_sale, limit_sensitive"
)]
pub struct UnknownRequestType;

impl FromStr for RequestType {
    type Err = UnknownRequestType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownRequestType)
    }
}

/// The unit of a [`TimeLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Calendar days.
    Days,
    /// Monday to Friday, except the holidays of the jurisdiction's calendar.
    BusinessDays,
    /// Months, counted to the same day of the month (or the month's last day).
    Months,
}

/// A legal period, written `1 month`, `45 days` or `15 business_days` in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    /// 1 to 999.
    pub count: u32,
    pub unit: TimeUnit,
}

/// Text that is not a [`TimeLimit`]. The message does not repeat the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a number from 1 to 999 and a unit: `N days`, `N business_days` or `N months` (e.g. `1 month`, `45 days`, `15 business_days`)"
)]
pub struct TimeLimitError;

impl FromStr for TimeLimit {
    type Err = TimeLimitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split(' ').filter(|w| !w.is_empty());
        let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Err(TimeLimitError);
        };
        let count = count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or(TimeLimitError)?;
        let unit = match unit {
            "day" | "days" => TimeUnit::Days,
            "business_day" | "business_days" => TimeUnit::BusinessDays,
            "month" | "months" => TimeUnit::Months,
            _ => return Err(TimeLimitError),
        };
        Ok(Self { count, unit })
    }
}

impl fmt::Display for TimeLimit {
    /// As written in the registry, e.g. `1 month`, `15 business_days`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            TimeUnit::Days => "day",
            TimeUnit::BusinessDays => "business_day",
            TimeUnit::Months => "month",
        };
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {unit}{plural}", self.count)
    }
}

impl TimeLimit {
    /// The last day of this period running from `from` (the day of the event, not counted),
    /// before any move to a working day: `from` + N days; the Nth working day after `from`;
    /// or the same day N months later (the last day of that month when it has none).
    #[must_use]
    pub fn end(self, from: Date, holidays: &Holidays) -> Date {
        match self.unit {
            TimeUnit::Days => from.add_days(i64::from(self.count)),
            TimeUnit::BusinessDays => holidays.add_business_days(from, self.count),
            TimeUnit::Months => from.add_months(i64::from(self.count)),
        }
    }
}

/// A public holiday calendar, e.g. `GB`. Saturdays and Sundays are never working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holidays {
    /// The calendar's name, e.g. `GB`, `US-CA`.
    pub name: String,
    pub description: String,
    pub dates: BTreeSet<Date>,
}

/// The calendar of a country with none: weekends only.
static WEEKENDS_ONLY: Holidays = Holidays::weekends_only(String::new());

impl Holidays {
    /// A calendar without holidays: only Saturdays and Sundays are not working days.
    #[must_use]
    pub const fn weekends_only(name: String) -> Self {
        Self {
            name,
            description: String::new(),
            dates: BTreeSet::new(),
        }
    }

    /// Whether `day` is one of the calendar's holidays.
    #[must_use]
    pub fn is_holiday(&self, day: Date) -> bool {
        self.dates.contains(&day)
    }

    /// Whether `day` is Monday to Friday and no holiday.
    #[must_use]
    pub fn is_working_day(&self, day: Date) -> bool {
        !day.weekday().is_weekend() && !self.is_holiday(day)
    }

    /// `day` if it is a working day, else the first working day after it.
    #[must_use]
    pub fn next_working_day(&self, day: Date) -> Date {
        let mut d = day;
        while !self.is_working_day(d) && d < Date::MAX {
            d = d.add_days(1);
        }
        d
    }

    /// The `n`th working day after `from` (`from` itself not counted): counting starts the
    /// day after.
    #[must_use]
    pub fn add_business_days(&self, from: Date, n: u32) -> Date {
        let mut d = from;
        for _ in 0..n {
            d = self.next_working_day(d.add_days(1));
        }
        d
    }

    /// The last holiday listed: past it, only weekends are skipped (the built-in calendars
    /// run to 2030).
    #[must_use]
    pub fn last_listed(&self) -> Option<Date> {
        self.dates.last().copied()
    }
}

/// Which holidays a jurisdiction's working days skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolidaySource {
    /// The calendar of the controller's country (`[organization] country`).
    Controller,
    /// A named calendar, e.g. `US-CA`.
    Named(String),
}

/// The periods for one type of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub respond_within: TimeLimit,
    pub acknowledge_within: Option<TimeLimit>,
    /// How much longer each extension gives, counted from the end of the first period.
    pub extension: Option<TimeLimit>,
    /// How many extensions may be taken (0 without `extension`).
    pub extensions_allowed: u32,
}

/// The deadlines of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Deadlines {
    /// Receipt must be confirmed by this day (CCPA §7021(a)), if the law asks.
    pub acknowledge_by: Option<Date>,
    /// The request must be answered by this day.
    pub respond_by: Date,
    /// The last day when every extension allowed is taken, if any is.
    pub extended_respond_by: Option<Date>,
    /// An extension (with its reasons) must be notified by this day: the end of the first
    /// period.
    pub extend_notice_by: Option<Date>,
}

/// A law's rules for data subject requests: a row of `jurisdictions.toml` or of the
/// registry's `[jurisdictions.*]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jurisdiction {
    /// The row's name, e.g. `gdpr`.
    pub name: String,
    /// What it is, with its citation.
    pub title: String,
    /// The rule of every request type without one of its own.
    pub rule: Rule,
    /// Rules of their own for some request types (CCPA `opt_out_sale`: 15 business days).
    pub by_type: BTreeMap<RequestType, Rule>,
    /// The rights the law grants.
    pub request_types: BTreeSet<RequestType>,
    /// A deadline on a weekend or holiday moves to the next working day (Reg. 1182/71 Art. 3(4)).
    pub next_working_day: bool,
    pub holidays: HolidaySource,
    /// The calendar counted: `holidays` resolved (`Controller`: the organization's country).
    pub calendar: String,
    /// The time zone days are counted in (`time_zone`; `controller`, the default: the
    /// organization's).
    pub zone: crate::calendar::Zone,
    /// Whether `zone` is the organization's (`time_zone = "controller"`, the default).
    pub counts_controller_time: bool,
    /// How long request records are kept (CCPA §7101: 24 months).
    pub retain_records: Option<TimeLimit>,
    /// Where a data subject may complain; `None`: the organization's supervisory authority.
    pub authority: Option<String>,
}

impl Jurisdiction {
    /// The rule for `kind`: its own, else the row's.
    #[must_use]
    pub fn rule(&self, kind: RequestType) -> &Rule {
        self.by_type.get(&kind).unwrap_or(&self.rule)
    }

    /// Whether the law grants requests of `kind`.
    #[must_use]
    pub fn grants(&self, kind: RequestType) -> bool {
        self.request_types.contains(&kind)
    }

    /// The deadlines of a request of `kind` received on `received`, counting working days
    /// with `holidays` (the calendar [`Registry::holidays_of`](crate::Registry::holidays_of)
    /// gives). Each period runs from the day of receipt, not counted; with
    /// `next_working_day`, a last day on a weekend or holiday moves to the next working day.
    /// An extension runs from the end of the first period (before that move) and must be
    /// notified within the first period.
    #[must_use]
    pub fn deadlines(&self, kind: RequestType, received: Date, holidays: &Holidays) -> Deadlines {
        let rule = self.rule(kind);
        let settle = |day: Date| {
            if self.next_working_day {
                holidays.next_working_day(day)
            } else {
                day
            }
        };
        let first_end = rule.respond_within.end(received, holidays);
        let respond_by = settle(first_end);
        let extended = rule.extension.filter(|_| rule.extensions_allowed > 0).map(|extension| {
            let mut end = first_end;
            for _ in 0..rule.extensions_allowed {
                end = extension.end(end, holidays);
            }
            settle(end)
        });
        Deadlines {
            acknowledge_by: rule.acknowledge_within.map(|p| settle(p.end(received, holidays))),
            respond_by,
            extended_respond_by: extended,
            extend_notice_by: extended.map(|_| respond_by),
        }
    }

    /// Where a data subject may complain about how their request was handled.
    #[must_use]
    pub fn complaint_authority<'a>(&'a self, organization: &'a crate::Organization) -> &'a str {
        self.authority.as_deref().unwrap_or(&organization.supervisory_authority)
    }
}

impl crate::Registry {
    /// The jurisdiction called `name` (built in, or the registry's).
    #[must_use]
    pub fn jurisdiction(&self, name: &str) -> Option<&Jurisdiction> {
        self.jurisdictions.get(name)
    }

    /// The holiday calendar called `name` (built in, with the registry's dates added).
    #[must_use]
    pub fn calendar(&self, name: &str) -> Option<&Holidays> {
        self.holidays.get(name)
    }

    /// The holidays `jurisdiction` counts; weekends only when its calendar is the
    /// controller's and there is none for that country (`custodia check` warns).
    #[must_use]
    pub fn holidays_of(&self, jurisdiction: &Jurisdiction) -> &Holidays {
        self.holidays.get(&jurisdiction.calendar).unwrap_or(&WEEKENDS_ONLY)
    }

    /// The holidays of the controller's country (`[organization] country`); weekends only
    /// when there is no calendar for it.
    #[must_use]
    pub fn controller_holidays(&self) -> &Holidays {
        self.holidays.get(&self.organization.country).unwrap_or(&WEEKENDS_ONLY)
    }

    /// The deadlines of a request of `kind` under `jurisdiction` received on `received`;
    /// `None` if there is no such jurisdiction.
    #[must_use]
    pub fn deadlines(&self, jurisdiction: &str, kind: RequestType, received: Date) -> Option<Deadlines> {
        let j = self.jurisdiction(jurisdiction)?;
        Some(j.deadlines(kind, received, self.holidays_of(j)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Weekday;
    use crate::{EXAMPLE_REGISTRY, Registry};

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn example() -> Registry {
        Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap()
    }

    /// `respond_by` of a request of `kind` under `jurisdiction` of `reg`.
    fn due(reg: &Registry, jurisdiction: &str, kind: RequestType, received: &str) -> Deadlines {
        reg.deadlines(jurisdiction, kind, d(received)).unwrap()
    }

    #[test]
    fn request_types_have_names() {
        for kind in RequestType::ALL {
            assert_eq!(kind.as_str().parse::<RequestType>(), Ok(kind));
            let json = format!("\"{}\"", kind.as_str());
            assert_eq!(serde_json_like(kind), json);
        }
        assert_eq!("opt_out_sale".parse(), Ok(RequestType::OptOutSale));
        let e = "delete".parse::<RequestType>().unwrap_err().to_string();
        assert!(!e.contains("delete"), "the text given is not repeated: {e}");
        for kind in RequestType::ALL {
            assert!(e.contains(kind.as_str()), "{e}");
        }
    }

    /// How serde names a request type (through the `toml` serializer, the only one here).
    fn serde_json_like(kind: RequestType) -> String {
        #[derive(serde::Serialize)]
        struct W {
            k: RequestType,
        }
        toml::to_string(&W { k: kind })
            .unwrap()
            .trim()
            .trim_start_matches("k = ")
            .to_owned()
    }

    #[test]
    fn time_limits_parse_and_print() {
        for (text, count, unit, printed) in [
            ("1 month", 1, TimeUnit::Months, "1 month"),
            ("2 months", 2, TimeUnit::Months, "2 months"),
            ("45 days", 45, TimeUnit::Days, "45 days"),
            ("1 day", 1, TimeUnit::Days, "1 day"),
            ("15 business_days", 15, TimeUnit::BusinessDays, "15 business_days"),
            (" 10  business_days ", 10, TimeUnit::BusinessDays, "10 business_days"),
        ] {
            let limit: TimeLimit = text.parse().unwrap();
            assert_eq!(limit, TimeLimit { count, unit }, "{text}");
            assert_eq!(limit.to_string(), printed);
        }
        for bad in [
            "",
            "month",
            "1",
            "0 days",
            "1000 days",
            "-1 days",
            "1 fortnight",
            "15 business days",
            "1 month later",
            "1.5 months",
        ] {
            assert_eq!(bad.parse::<TimeLimit>(), Err(TimeLimitError), "{bad}");
        }
    }

    #[test]
    fn built_in_rows() {
        let reg = example();
        let gdpr = reg.jurisdiction("gdpr").unwrap();
        assert_eq!(gdpr.rule.respond_within, "1 month".parse().unwrap());
        assert_eq!(gdpr.rule.extension, Some("2 months".parse().unwrap()));
        assert_eq!((gdpr.rule.extensions_allowed, gdpr.rule.acknowledge_within), (1, None));
        assert!(gdpr.next_working_day && gdpr.holidays == HolidaySource::Controller);
        assert_eq!(gdpr.calendar, "GB", "the example's controller is in GB");
        assert!(gdpr.grants(RequestType::Restriction) && !gdpr.grants(RequestType::OptOutSale));
        assert_eq!(
            gdpr.complaint_authority(&reg.organization),
            "Information Commissioner's Office (ICO)"
        );
        let ccpa = reg.jurisdiction("ccpa").unwrap();
        assert_eq!(ccpa.rule.acknowledge_within, Some("10 business_days".parse().unwrap()));
        assert_eq!(ccpa.retain_records, Some("24 months".parse().unwrap()));
        assert_eq!(ccpa.holidays, HolidaySource::Named("US-CA".to_owned()));
        assert!(!ccpa.next_working_day && !ccpa.grants(RequestType::Objection));
        assert!(
            ccpa.complaint_authority(&reg.organization)
                .starts_with("California Privacy Protection Agency")
        );
        assert!(
            reg.jurisdiction("lgpd").is_none() && reg.deadlines("lgpd", RequestType::Access, d("2026-01-01")).is_none()
        );
        assert!(reg.warnings().is_empty(), "{:?}", reg.warnings());
    }

    #[test]
    fn gdpr_one_month_to_the_same_day_or_the_months_last() {
        let reg = example();
        let access = |received| due(&reg, "gdpr", RequestType::Access, received).respond_by;
        assert_eq!(access("2026-01-15"), d("2026-02-16"), "15 February 2026 is a Sunday");
        assert_eq!(access("2026-03-10"), d("2026-04-10"));
        // 28 February 2026 (no 31st) is a Saturday: Monday 2 March.
        assert_eq!(d("2026-01-31").add_months(1), d("2026-02-28"));
        assert_eq!(access("2026-01-31"), d("2026-03-02"));
        assert_eq!(access("2028-01-31"), d("2028-02-29"), "a leap year, a Tuesday");
        assert_eq!(
            access("2027-01-31"),
            d("2027-02-28").add_days(1),
            "Sunday 28 February 2027: Monday"
        );
        assert_eq!(access("2026-03-31"), d("2026-04-30"));
        // Received on a Saturday, due on a Monday's date that is no holiday.
        assert_eq!(access("2026-05-16"), d("2026-06-16"));
    }

    #[test]
    fn gdpr_moves_past_weekends_and_bank_holidays() {
        let reg = example();
        let access = |received| due(&reg, "gdpr", RequestType::Access, received).respond_by;
        // Friday 25 December 2026, the weekend, then Monday 28 (Boxing Day's substitute).
        assert_eq!(d("2026-12-25").weekday(), Weekday::Friday);
        assert_eq!(access("2026-11-25"), d("2026-12-29"));
        // Good Friday 3 April 2026, the weekend, Easter Monday 6 April.
        assert_eq!(access("2026-03-03"), d("2026-04-07"));
        // Saturday 2 May 2026, the weekend, the early May bank holiday on Monday 4.
        assert_eq!(access("2026-04-02"), d("2026-05-05"));
    }

    #[test]
    fn gdpr_extension_two_further_months() {
        let reg = example();
        let x = due(&reg, "gdpr", RequestType::Erasure, "2026-01-15");
        assert_eq!(x.respond_by, d("2026-02-16"));
        assert_eq!(
            x.extend_notice_by,
            Some(d("2026-02-16")),
            "notified within the first month"
        );
        assert_eq!(
            x.extended_respond_by,
            Some(d("2026-04-15")),
            "two months after 15 February"
        );
        assert_eq!(x.acknowledge_by, None);
        // From the end of the first period (28 February), before its move to 2 March.
        let x = due(&reg, "gdpr", RequestType::Access, "2026-01-31");
        assert_eq!(
            (x.respond_by, x.extended_respond_by),
            (d("2026-03-02"), Some(d("2026-04-28")))
        );
        // The extended deadline moves too: 2026-10-25 is a Sunday.
        let x = due(&reg, "gdpr", RequestType::Access, "2026-07-25");
        assert_eq!(x.extended_respond_by, Some(d("2026-10-26")));
    }

    #[test]
    fn ccpa_45_days_and_10_business_days_to_acknowledge() {
        let reg = example();
        // Friday 20 November 2026: Thanksgiving (26) and the day after (27), a weekend between.
        let x = due(&reg, "ccpa", RequestType::Erasure, "2026-11-20");
        assert_eq!(x.respond_by, d("2027-01-04"));
        assert_eq!(
            x.acknowledge_by,
            Some(d("2026-12-08")),
            "23,24,25,30 Nov, 1,2,3,4,7,8 Dec"
        );
        assert_eq!(x.extended_respond_by, Some(d("2027-02-18")), "90 days from receipt");
        assert_eq!(x.extend_notice_by, Some(d("2027-01-04")), "within the first 45 days");
        // Christmas and New Year's Day.
        let x = due(&reg, "ccpa", RequestType::Access, "2026-12-18");
        assert_eq!(x.acknowledge_by, Some(d("2027-01-05")), "21-24, 28-31 Dec, 4, 5 Jan");
        // Calendar days: a 45th day on a holiday (1 January 2027) is not moved.
        assert_eq!(
            due(&reg, "ccpa", RequestType::Access, "2026-11-17").respond_by,
            d("2027-01-01")
        );
    }

    #[test]
    fn ccpa_opt_out_of_sale_15_business_days() {
        let reg = example();
        for kind in [RequestType::OptOutSale, RequestType::LimitSensitive] {
            let x = due(&reg, "ccpa", kind, "2026-11-20");
            // 23,24,25,30 Nov, 1,2,3,4,7,8,9,10,11,14,15 Dec.
            assert_eq!(x.respond_by, d("2026-12-15"), "{kind}");
            assert_eq!(
                (x.acknowledge_by, x.extended_respond_by, x.extend_notice_by),
                (None, None, None)
            );
        }
    }

    #[test]
    fn business_days_count_from_the_day_after() {
        let none = Holidays::weekends_only("XX".to_owned());
        assert_eq!(
            none.add_business_days(d("2026-11-20"), 1),
            d("2026-11-23"),
            "Friday to Monday"
        );
        assert_eq!(
            none.add_business_days(d("2026-11-21"), 1),
            d("2026-11-23"),
            "Saturday to Monday"
        );
        assert_eq!(none.add_business_days(d("2026-11-23"), 1), d("2026-11-24"));
        assert_eq!(none.add_business_days(d("2026-11-23"), 5), d("2026-11-30"));
        assert_eq!(none.add_business_days(d("2026-11-23"), 0), d("2026-11-23"));
        assert_eq!(none.next_working_day(d("2026-11-22")), d("2026-11-23"));
        assert_eq!(none.next_working_day(d("2026-11-24")), d("2026-11-24"));
        assert_eq!(none.last_listed(), None);
        assert_eq!(
            Holidays::weekends_only(String::new()).next_working_day(Date::MAX),
            Date::MAX
        );
    }

    #[test]
    fn the_controllers_country_decides_the_holidays() {
        let reg = Registry::parse(
            "r.toml",
            &EXAMPLE_REGISTRY.replacen("country = \"GB\"", "country = \"DE\"", 1),
        )
        .unwrap();
        assert_eq!(reg.controller_holidays().name, "DE");
        // 25 and 26 December 2026 (Friday, Saturday) are the German holidays: no Monday off.
        assert_eq!(
            due(&reg, "gdpr", RequestType::Access, "2026-11-25").respond_by,
            d("2026-12-28")
        );
        // Whit Monday, 25 May 2026 (Sunday 24 before it).
        assert_eq!(
            due(&reg, "gdpr", RequestType::Access, "2026-04-24").respond_by,
            d("2026-05-26")
        );

        // A country without a calendar: weekends only, and a warning.
        let reg = Registry::parse(
            "r.toml",
            &EXAMPLE_REGISTRY.replacen("country = \"GB\"", "country = \"NL\"", 1),
        )
        .unwrap();
        assert_eq!(
            due(&reg, "gdpr", RequestType::Access, "2026-11-25").respond_by,
            d("2026-12-25")
        );
        assert!(reg.controller_holidays().dates.is_empty());
        let w = reg.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("`NL`") && w[0].message.contains("[holidays.NL]"),
            "{w:?}"
        );
        // The controller's time zone: its country's when it has one (GB: Europe/London), and
        // a warning when it is not known and none is named (US: several).
        assert_eq!(reg.organization.zone().name(), "Europe/Amsterdam");
        let gb = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        assert_eq!(gb.jurisdiction("gdpr").unwrap().zone.name(), "Europe/London");
        assert_eq!(gb.jurisdiction("ccpa").unwrap().zone.name(), "America/Los_Angeles");
        let us = EXAMPLE_REGISTRY.replacen("country = \"GB\"", "country = \"US\"", 1);
        let w = Registry::parse("r.toml", &us).unwrap().warnings();
        assert!(
            w.iter()
                .any(|w| w.message.contains("names no time_zone") && w.message.contains("`US`")),
            "{w:?}"
        );
        let named = us.replacen(
            "country = \"US\"",
            "country = \"US\"\ntime_zone = \"America/New_York\"",
            1,
        );
        let reg = Registry::parse("r.toml", &named).unwrap();
        assert!(
            !reg.warnings().iter().any(|w| w.message.contains("time_zone")),
            "{:?}",
            reg.warnings()
        );
        assert_eq!(reg.jurisdiction("gdpr").unwrap().zone.name(), "America/New_York");
    }

    #[test]
    fn a_registry_adds_rows_and_holidays() {
        let text = format!(
            "{EXAMPLE_REGISTRY}
[holidays.GB]
dates = [\"2027-01-04\"]

[holidays.US-VA]
description = \"Virginia state holidays\"
dates = [\"2026-11-26\", \"2026-11-27\", \"2026-12-24\", \"2026-12-25\"]

[jurisdictions.vcdpa]
title = \"Virginia Consumer Data Protection Act, Va. Code 59.1-577\"
respond_within = \"45 days\"
extension = \"45 days\"
holidays = \"US-VA\"
request_types = [\"access\", \"portability\", \"rectification\", \"erasure\", \"opt_out_sale\"]

[jurisdictions.vcdpa.types.opt_out_sale]
respond_within = \"15 business_days\"

[jurisdictions.ccpa]
respond_within = \"30 days\"
next_working_day = true
"
        );
        let reg = Registry::parse("r.toml", &text).unwrap();
        // GB has the registry's date besides the built-in ones: Monday 4 January 2027.
        assert!(reg.calendar("GB").unwrap().is_holiday(d("2027-01-04")));
        assert!(reg.calendar("GB").unwrap().is_holiday(d("2026-12-25")));
        assert_eq!(
            due(&reg, "gdpr", RequestType::Access, "2026-12-04").respond_by,
            d("2027-01-05")
        );
        let v = due(&reg, "vcdpa", RequestType::Access, "2026-11-20");
        assert_eq!(
            (v.respond_by, v.extended_respond_by, v.acknowledge_by),
            (d("2027-01-04"), Some(d("2027-02-18")), None)
        );
        let vj = reg.jurisdiction("vcdpa").unwrap();
        assert_eq!(
            (vj.calendar.as_str(), vj.rule.extensions_allowed, vj.retain_records),
            ("US-VA", 1, None)
        );
        assert!(vj.grants(RequestType::OptOutSale) && !vj.grants(RequestType::LimitSensitive));
        // 23,24,25, 30 Nov, 1-4, 7-11, 14 Dec, 15 Dec: Thanksgiving and the day after skipped.
        assert_eq!(
            due(&reg, "vcdpa", RequestType::OptOutSale, "2026-11-20").respond_by,
            d("2026-12-15")
        );
        // The registry's ccpa replaces the built-in row whole.
        let ccpa = reg.jurisdiction("ccpa").unwrap();
        assert_eq!((ccpa.rule.acknowledge_within, ccpa.rule.extension), (None, None));
        assert!(ccpa.by_type.is_empty() && ccpa.holidays == HolidaySource::Controller);
        // 30 days from 2026-11-25 is Christmas Day (GB, the controller's): Tuesday 29.
        assert_eq!(
            due(&reg, "ccpa", RequestType::OptOutSale, "2026-11-25").respond_by,
            d("2026-12-29")
        );
    }

    #[test]
    fn mistakes_in_rules_are_reported_at_their_line() {
        let text = format!(
            "{EXAMPLE_REGISTRY}
[holidays.GB]
dates = [\"2027-02-30\", \"2027-01-04\", \"2027-01-04\"]

[holidays.uk]
dates = []

[jurisdictions.vcdpa]
respond_within = \"45 calendar days\"
acknowledge_within = \"0 business_days\"
holidays = \"US-XX\"
extensions_allowed = 1
retain_records = \"10 business_days\"

[jurisdictions.vcdpa.types.opt_out]
respond_within = \"15 business_days\"

[jurisdictions.VA]
respond_within = \"45 days\"
request_types = [\"access\", \"erase\", \"access\"]

[jurisdictions.cpa]
respond_within = \"45 days\"
time_zone = \"America/Denvr\"
"
        );
        let e: Vec<String> = Registry::parse("r.toml", &text)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        for (needle, at, message) in [
            ("2027-02-30", "2027-02-30", "YYYY-MM-DD"),
            ("listed twice in [holidays.GB]", "\"2027-01-04\"]", "listed twice"),
            ("`uk`", "[holidays.uk]", "country code"),
            ("45 calendar days", "45 calendar days", "`N business_days`"),
            ("0 business_days", "0 business_days", "from 1 to 999"),
            ("US-XX", "US-XX", "[holidays.US-XX]"),
            ("extensions_allowed", "extensions_allowed = 1", "needs `extension`"),
            ("retain_records", "retain_records", "days or months"),
            ("`opt_out`", "types.opt_out]", "opt_out_sale, limit_sensitive"),
            ("`VA`", "[jurisdictions.VA]", "jurisdiction name"),
            ("`erase`", "\"erase\"", "expected one of"),
            ("`access` is listed twice", "\"erase\"", "listed twice"),
            ("`America/Denvr`", "America/Denvr", "IANA time zone name"),
        ] {
            let line = line_of(at);
            assert!(
                e.iter()
                    .any(|m| m.contains(needle) && m.contains(message) && m.starts_with(&format!("r.toml:{line}:"))),
                "no error naming {needle} at line {line}: {e:#?}"
            );
        }
        assert_eq!(e.len(), 13, "{e:#?}");
        // The unknown calendar is named with the ones there are.
        assert!(e.iter().any(|m| m.contains("one of: DE, FR, GB, IE, US-CA,")), "{e:#?}");
    }

    /// Easter Sunday by the anonymous Gregorian computus (Meeus/Jones/Butcher).
    fn easter(y: i64) -> Date {
        let (a, b, c) = (y % 19, y / 100, y % 100);
        let (dd, e) = (b / 4, b % 4);
        let f = (b + 8) / 25;
        let g = (b - f + 1) / 3;
        let h = (19 * a + b - dd - g + 15) % 30;
        let (i, k) = (c / 4, c % 4);
        let l = (32 + 2 * e + 2 * i - h - k) % 7;
        let m = (a + 11 * h + 22 * l) / 451;
        let month = (h + l - 7 * m + 114) / 31;
        let day = (h + l - 7 * m + 114) % 31 + 1;
        Date::new(y, u32::try_from(month).unwrap(), u32::try_from(day).unwrap()).unwrap()
    }

    /// The `n`th (1-based) `weekday` of a month.
    fn nth(y: i64, m: u32, weekday: Weekday, n: i64) -> Date {
        let first = Date::new(y, m, 1).unwrap();
        let mut day = first;
        while day.weekday() != weekday {
            day = day.add_days(1);
        }
        day.add_days(7 * (n - 1))
    }

    /// The last `weekday` of a month.
    fn last(y: i64, m: u32, weekday: Weekday) -> Date {
        let mut day = Date::new(y, m, 1).unwrap().add_months(1).add_days(-1);
        while day.weekday() != weekday {
            day = day.add_days(-1);
        }
        day
    }

    /// The holidays of `calendar` in `y` by its rules, computed independently of the table.
    fn by_rule(calendar: &str, y: i64) -> BTreeSet<Date> {
        use Weekday::{Friday, Monday, Saturday, Sunday, Thursday};
        let day = |m, dd| Date::new(y, m, dd).unwrap();
        let e = easter(y);
        let mut out: Vec<Date> = Vec::new();
        match calendar {
            "GB" => {
                let ny = day(1, 1);
                out.push(match ny.weekday() {
                    Saturday => ny.add_days(2),
                    Sunday => ny.add_days(1),
                    _ => ny,
                });
                out.extend([
                    e.add_days(-2),
                    e.add_days(1),
                    nth(y, 5, Monday, 1),
                    last(y, 5, Monday),
                    last(y, 8, Monday),
                ]);
                // Christmas and Boxing Day, each on a weekend moved to the next free weekday.
                for xmas_or_boxing in [day(12, 25), day(12, 26)] {
                    let mut d = xmas_or_boxing;
                    while d.weekday().is_weekend() || out.contains(&d) {
                        d = d.add_days(1);
                    }
                    out.push(d);
                }
            }
            "IE" => {
                let feb1 = day(2, 1);
                let brigid = if feb1.weekday() == Friday {
                    feb1
                } else {
                    nth(y, 2, Monday, 1)
                };
                out.extend([day(1, 1), brigid, day(3, 17), e.add_days(1), nth(y, 5, Monday, 1)]);
                out.extend([
                    nth(y, 6, Monday, 1),
                    nth(y, 8, Monday, 1),
                    last(y, 10, Monday),
                    day(12, 25),
                    day(12, 26),
                ]);
            }
            "DE" => {
                out.extend([
                    day(1, 1),
                    e.add_days(-2),
                    e.add_days(1),
                    day(5, 1),
                    e.add_days(39),
                    e.add_days(50),
                ]);
                out.extend([day(10, 3), day(12, 25), day(12, 26)]);
            }
            "FR" => {
                out.extend([
                    day(1, 1),
                    e.add_days(1),
                    day(5, 1),
                    day(5, 8),
                    e.add_days(39),
                    e.add_days(50),
                ]);
                out.extend([day(7, 14), day(8, 15), day(11, 1), day(11, 11), day(12, 25)]);
            }
            "US-CA" => {
                // Sunday: the Monday; Saturday: not observed, except Veterans Day on the Friday.
                let observed = |d: Date, saturday_to_friday: bool| match d.weekday() {
                    Sunday => Some(d.add_days(1)),
                    Saturday if saturday_to_friday => Some(d.add_days(-1)),
                    Saturday => None,
                    _ => Some(d),
                };
                let thanksgiving = nth(y, 11, Thursday, 4);
                out.extend(observed(day(1, 1), false));
                out.extend([nth(y, 1, Monday, 3), nth(y, 2, Monday, 3)]);
                out.extend(observed(day(3, 31), false));
                out.push(last(y, 5, Monday));
                out.extend(observed(day(7, 4), false));
                out.push(nth(y, 9, Monday, 1));
                out.extend(observed(day(11, 11), true));
                out.extend([thanksgiving, thanksgiving.add_days(1)]);
                out.extend(observed(day(12, 25), false));
            }
            _ => unreachable!(),
        }
        out.into_iter().collect()
    }

    #[test]
    fn built_in_holidays_follow_their_rules() {
        let reg = example();
        assert_eq!(easter(2025), d("2025-04-20"));
        assert_eq!(easter(2026), d("2026-04-05"));
        assert_eq!(easter(2027), d("2027-03-28"));
        assert_eq!(easter(2028), d("2028-04-16"));
        assert_eq!(easter(2029), d("2029-04-01"));
        assert_eq!(easter(2030), d("2030-04-21"));
        let names: Vec<&str> = reg.holidays.keys().map(String::as_str).collect();
        assert_eq!(names, ["DE", "FR", "GB", "IE", "US-CA"]);
        for (name, calendar) in &reg.holidays {
            assert!(!calendar.description.is_empty(), "{name}");
            assert_eq!(calendar.name, *name);
            for y in 2025..=2030 {
                let listed: BTreeSet<Date> = calendar.dates.iter().copied().filter(|d| d.year() == y).collect();
                assert_eq!(listed, by_rule(name, y), "{name} {y}");
            }
            assert_eq!(calendar.dates.first().map(|d| d.year()), Some(2025), "{name}");
            assert_eq!(calendar.last_listed().map(|d| d.year()), Some(2030), "{name}");
        }
        // Published figures: gov.uk for England and Wales 2026, CalHR's Thanksgiving.
        let gb: Vec<String> = reg.holidays["GB"]
            .dates
            .iter()
            .filter(|d| d.year() == 2026)
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            gb,
            [
                "2026-01-01",
                "2026-04-03",
                "2026-04-06",
                "2026-05-04",
                "2026-05-25",
                "2026-08-31",
                "2026-12-25",
                "2026-12-28"
            ]
        );
        assert!(reg.holidays["US-CA"].is_holiday(d("2026-11-27")) && reg.holidays["US-CA"].is_holiday(d("2028-11-10")));
    }
}
