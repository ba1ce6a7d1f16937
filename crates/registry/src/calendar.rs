//! Civil dates (proleptic Gregorian, UTC): the arithmetic legal deadlines are counted in.
//!
//! A [`Date`] covers every day a millisecond timestamp (`i64` since the Unix epoch) can name,
//! so [`Date::of_millis`] never fails; arithmetic past either end stops at that end.

use std::fmt;
use std::str::FromStr;

const MILLIS_PER_DAY: i64 = 86_400_000;
/// The first and last day an `i64` of milliseconds since the epoch names.
const MIN_DAYS: i64 = i64::MIN.div_euclid(MILLIS_PER_DAY);
const MAX_DAYS: i64 = i64::MAX.div_euclid(MILLIS_PER_DAY);

/// A calendar day, e.g. `2026-02-28`. Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01, within `MIN_DAYS..=MAX_DAYS`.
    days: i64,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Whether it is a Saturday or a Sunday.
    #[must_use]
    pub fn is_weekend(self) -> bool {
        matches!(self, Self::Saturday | Self::Sunday)
    }
}

/// Text that is not a date written `YYYY-MM-DD`. Its message does not repeat the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected a calendar date written YYYY-MM-DD, e.g. 2026-02-28")]
pub struct DateError;

/// Whether `year` has a 29 February.
#[must_use]
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days of `month` (1-12) in `year`; `None` for a month outside 1-12.
#[must_use]
pub fn days_in_month(year: i64, month: u32) -> Option<u32> {
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => return None,
    })
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's algorithm); exact for every
/// date of a [`Date`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm); exact for every
/// day of a [`Date`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Date {
    /// The first day a [`Date`] can hold (that of `i64::MIN` milliseconds).
    pub const MIN: Self = Self { days: MIN_DAYS };
    /// The last day a [`Date`] can hold (that of `i64::MAX` milliseconds).
    pub const MAX: Self = Self { days: MAX_DAYS };

    /// The date `year-month-day`; `None` if there is no such day (or it is out of range).
    #[must_use]
    pub fn new(year: i64, month: u32, day: u32) -> Option<Self> {
        let last = days_in_month(year, month)?;
        // Bounds the year so the arithmetic below cannot overflow.
        if day < 1 || day > last || year.unsigned_abs() > 300_000_000 {
            return None;
        }
        Self::from_days_since_epoch(days_from_civil(year, i64::from(month), i64::from(day)))
    }

    /// The day `days` after 1970-01-01 (before it when negative); `None` out of range.
    #[must_use]
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        (MIN_DAYS..=MAX_DAYS).contains(&days).then_some(Self { days })
    }

    /// Days since 1970-01-01 (negative before it).
    #[must_use]
    pub fn days_since_epoch(self) -> i64 {
        self.days
    }

    /// The UTC day of a time in milliseconds since the Unix epoch.
    #[must_use]
    pub fn of_millis(millis: i64) -> Self {
        Self {
            days: millis.div_euclid(MILLIS_PER_DAY),
        }
    }

    /// The first millisecond of the day (00:00:00.000 UTC), since the Unix epoch.
    #[must_use]
    pub fn start_of_day_millis(self) -> i64 {
        self.days.saturating_mul(MILLIS_PER_DAY)
    }

    /// The last millisecond of the day (23:59:59.999 UTC), since the Unix epoch: when a
    /// deadline falling on this day ends.
    #[must_use]
    pub fn end_of_day_millis(self) -> i64 {
        self.start_of_day_millis().saturating_add(MILLIS_PER_DAY - 1)
    }

    fn civil(self) -> (i64, u32, u32) {
        let (y, m, d) = civil_from_days(self.days);
        (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
    }

    /// The year (astronomical numbering: year 0 is 1 BC).
    #[must_use]
    pub fn year(self) -> i64 {
        self.civil().0
    }

    /// The month, 1-12.
    #[must_use]
    pub fn month(self) -> u32 {
        self.civil().1
    }

    /// The day of the month, 1-31.
    #[must_use]
    pub fn day(self) -> u32 {
        self.civil().2
    }

    /// The day of the week.
    #[must_use]
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        match (self.days + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    /// The day `n` days later (earlier when negative), stopping at [`Date::MIN`] or [`Date::MAX`].
    #[must_use]
    pub fn add_days(self, n: i64) -> Self {
        Self {
            days: self.days.saturating_add(n).clamp(MIN_DAYS, MAX_DAYS),
        }
    }

    /// The same day of the month `n` months later (earlier when negative), or the last day
    /// of that month when it has no such day (31 January + 1 month = 28 or 29 February);
    /// stops at [`Date::MIN`] or [`Date::MAX`].
    #[must_use]
    pub fn add_months(self, n: i64) -> Self {
        self.checked_add_months(n)
            .unwrap_or(if n < 0 { Self::MIN } else { Self::MAX })
    }

    /// As [`Date::add_months`], but `None` when the day falls past either end, so that a
    /// caller can tell a real last day from one that only stopped there.
    #[must_use]
    pub fn checked_add_months(self, n: i64) -> Option<Self> {
        let (y, m, d) = self.civil();
        let index = (y * 12 + i64::from(m) - 1).checked_add(n)?;
        let (year, month) = (
            index.div_euclid(12),
            u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1),
        );
        let day = d.min(days_in_month(year, month).unwrap_or(28));
        Self::new(year, month, day)
    }

    /// Parses `YYYY-MM-DD` (four-digit year).
    pub fn parse(text: &str) -> Result<Self, DateError> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(DateError);
        }
        let num = |digits: &[u8]| -> Option<u32> {
            digits
                .iter()
                .try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
        };
        let (Some(y), Some(m), Some(d)) = (num(&b[0..4]), num(&b[5..7]), num(&b[8..10])) else {
            return Err(DateError);
        };
        Self::new(i64::from(y), m, d).ok_or(DateError)
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    /// Milliseconds of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`, computed here apart.
    fn ms(s: &str) -> i64 {
        let (day, time) = s.trim_end_matches('Z').split_once('T').unwrap();
        let hms: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
        d(day).start_of_day_millis() + ((hms[0] * 60 + hms[1]) * 60 + hms[2]) * 1000
    }

    /// Pacific time: UTC-8 in winter, UTC-7 from the second Sunday of March (2026-03-08) to
    /// the first Sunday of November (2026-11-01).
    #[test]
    fn days_in_a_zone_with_summer_time() {
        let la = Zone::named("America/Los_Angeles").unwrap();
        // 05:00 UTC on 1 March is 21:00 on 28 February in California
        assert_eq!(la.date_of(ms("2026-03-01T05:00:00Z")), d("2026-02-28"));
        assert_eq!(la.date_of(ms("2026-03-01T08:00:00Z")), d("2026-03-01"));
        assert_eq!(la.date_of(ms("2026-07-01T06:59:59Z")), d("2026-06-30"));
        assert_eq!(la.date_of(ms("2026-07-01T07:00:00Z")), d("2026-07-01"));
        // the end of a day: the instant before the next local midnight
        assert_eq!(la.end_of_day_millis(d("2026-04-14")), ms("2026-04-15T07:00:00Z") - 1);
        assert_eq!(la.end_of_day_millis(d("2026-12-08")), ms("2026-12-09T08:00:00Z") - 1);
        // the day summer time starts has 23 hours; the day it ends, 25
        assert_eq!(la.end_of_day_millis(d("2026-03-07")), ms("2026-03-08T08:00:00Z") - 1);
        assert_eq!(la.end_of_day_millis(d("2026-03-08")), ms("2026-03-09T07:00:00Z") - 1);
        assert_eq!(la.end_of_day_millis(d("2026-11-01")), ms("2026-11-02T08:00:00Z") - 1);
        // UTC is the plain arithmetic, and east of it days end earlier
        let utc = Zone::utc();
        assert_eq!(
            utc.end_of_day_millis(d("2026-04-14")),
            d("2026-04-14").end_of_day_millis()
        );
        assert_eq!(utc.date_of(ms("2026-03-01T05:00:00Z")), d("2026-03-01"));
        let berlin = Zone::named("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.end_of_day_millis(d("2026-06-30")),
            ms("2026-06-30T22:00:00Z") - 1
        );
        assert_eq!(berlin.date_of(ms("2026-06-30T22:30:00Z")), d("2026-07-01"));
        // beyond the zone database's years, days are UTC's; nothing panics at the ends
        assert_eq!(
            la.end_of_day_millis(d("9999-12-31")),
            d("9999-12-31").end_of_day_millis()
        );
        let _ = la.date_of(i64::MIN);
        let _ = la.date_of(i64::MAX);
        assert!(Zone::named("Mars/Olympus_Mons").is_none());
        // every country's zone is in the database built in
        for (country, name) in COUNTRY_ZONES {
            assert_eq!(
                Zone::of_country(country).map(|z| z.name().to_owned()).as_deref(),
                Some(*name)
            );
        }
        for several in ["US", "ES", "PT", "AU"] {
            assert!(
                Zone::of_country(several).is_none(),
                "{several}: several zones, none chosen"
            );
        }
        assert!(Zone::named("").is_none());
    }

    #[test]
    fn parses_prints_and_counts_days() {
        assert_eq!(d("1970-01-01").days_since_epoch(), 0);
        assert_eq!(d("2000-02-29").days_since_epoch(), 11_016);
        assert_eq!(d("1969-12-31").days_since_epoch(), -1);
        for s in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-29",
            "1969-12-31",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert_eq!(d(s).to_string(), s);
            assert_eq!(Date::from_days_since_epoch(d(s).days_since_epoch()), Some(d(s)));
        }
        let x = d("2028-02-29");
        assert_eq!((x.year(), x.month(), x.day()), (2028, 2, 29));
        for bad in [
            "",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-01 ",
            "２026-01-01",
            "+026-01-01",
        ] {
            assert_eq!(Date::parse(bad), Err(DateError), "{bad}");
        }
        assert!(d("2026-01-31") < d("2026-02-01"));
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let mut expected = (1900, 1, 1);
        let start = d("1900-01-01").days_since_epoch();
        for n in start..start + 146_097 {
            let date = Date::from_days_since_epoch(n).unwrap();
            assert_eq!((date.year(), date.month(), date.day()), expected);
            assert_eq!(Date::new(expected.0, expected.1, expected.2), Some(date));
            let (y, m, dd) = expected;
            expected = if dd < days_in_month(y, m).unwrap() {
                (y, m, dd + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn weekdays() {
        assert_eq!(d("1970-01-01").weekday(), Weekday::Thursday);
        assert_eq!(d("2026-02-28").weekday(), Weekday::Saturday);
        assert_eq!(d("2026-03-01").weekday(), Weekday::Sunday);
        assert_eq!(d("2026-03-02").weekday(), Weekday::Monday);
        assert_eq!(d("1969-12-29").weekday(), Weekday::Monday);
        assert!(d("2026-12-26").weekday().is_weekend() && !d("2026-12-25").weekday().is_weekend());
    }

    #[test]
    fn adding_days_and_months() {
        assert_eq!(d("2026-12-31").add_days(1), d("2027-01-01"));
        assert_eq!(d("2026-11-20").add_days(45), d("2027-01-04"));
        assert_eq!(d("2026-03-01").add_days(-1), d("2026-02-28"));
        assert_eq!(d("2026-01-31").add_months(1), d("2026-02-28"));
        assert_eq!(d("2028-01-31").add_months(1), d("2028-02-29"));
        assert_eq!(d("2026-03-31").add_months(1), d("2026-04-30"));
        assert_eq!(d("2026-01-15").add_months(1), d("2026-02-15"));
        assert_eq!(d("2026-11-30").add_months(3), d("2027-02-28"));
        assert_eq!(d("2026-12-15").add_months(2), d("2027-02-15"));
        assert_eq!(d("2026-03-31").add_months(-1), d("2026-02-28"));
        assert_eq!(Date::MAX.add_days(1), Date::MAX);
        assert_eq!(Date::MAX.add_months(1), Date::MAX);
        assert_eq!(Date::MIN.add_months(-1), Date::MIN);
        assert_eq!(Date::MIN.add_days(i64::MIN), Date::MIN);
        assert_eq!(Date::MAX.checked_add_months(1), None);
        assert_eq!(Date::MIN.checked_add_months(-1), None);
        assert_eq!(Date::MIN.checked_add_months(i64::MIN), None);
        assert_eq!(Date::MAX.checked_add_months(i64::MAX), None);
        assert_eq!(d("2024-02-29").checked_add_months(12), Some(d("2025-02-28")));
    }

    #[test]
    fn days_and_timestamps() {
        assert_eq!(Date::of_millis(0), d("1970-01-01"));
        assert_eq!(Date::of_millis(-1), d("1969-12-31"));
        assert_eq!(Date::of_millis(1_795_948_275_123), d("2026-11-29"));
        assert_eq!(d("2026-11-29").start_of_day_millis(), 1_795_910_400_000);
        assert_eq!(d("2026-11-29").end_of_day_millis(), 1_795_996_799_999);
        assert_eq!(Date::of_millis(d("2026-11-29").end_of_day_millis()), d("2026-11-29"));
        assert_eq!(
            Date::of_millis(d("2026-11-29").end_of_day_millis() + 1),
            d("2026-11-30")
        );
        assert_eq!(Date::of_millis(i64::MAX), Date::MAX);
        assert_eq!(Date::of_millis(i64::MIN), Date::MIN);
        assert_eq!(Date::MAX.end_of_day_millis(), i64::MAX);
        assert_eq!(Date::MIN.start_of_day_millis(), i64::MIN);
        assert!(Date::MAX.to_string().starts_with("292278994-"));
    }
}

/// The time zone a jurisdiction's deadlines are counted in (an IANA name such as
/// `America/Los_Angeles`; `UTC` by default): a request's day of receipt is its local date
/// there, and a deadline ends at the last millisecond of its local day. A period counted in
/// UTC ran up to a day long for a request received in a Californian evening.
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Default for Zone {
    fn default() -> Self {
        Self::utc()
    }
}

/// The time zone of each country of the EEA, the United Kingdom and Switzerland that has one
/// (its overseas parts with ISO codes of their own). Spain (the Canaries) and Portugal (the
/// Azores) have two: a controller there names its own, as one in the United States does, for
/// a receipt day counted in the wrong one ends a day late.
const COUNTRY_ZONES: &[(&str, &str)] = &[
    ("AT", "Europe/Vienna"),
    ("BE", "Europe/Brussels"),
    ("BG", "Europe/Sofia"),
    ("CH", "Europe/Zurich"),
    ("CY", "Asia/Nicosia"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("EE", "Europe/Tallinn"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GR", "Europe/Athens"),
    ("HR", "Europe/Zagreb"),
    ("HU", "Europe/Budapest"),
    ("IE", "Europe/Dublin"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("LI", "Europe/Vaduz"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("MT", "Europe/Malta"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("PL", "Europe/Warsaw"),
    ("RO", "Europe/Bucharest"),
    ("SE", "Europe/Stockholm"),
    ("SI", "Europe/Ljubljana"),
    ("SK", "Europe/Bratislava"),
];

impl Zone {
    /// The zone of a country (ISO 3166-1 alpha-2) whose law counts in one, if this crate
    /// knows it (see [`COUNTRY_ZONES`]).
    #[must_use]
    pub fn of_country(country: &str) -> Option<Self> {
        COUNTRY_ZONES
            .iter()
            .find(|(c, _)| *c == country)
            .and_then(|(_, name)| Self::named(name))
    }

    /// Coordinated Universal Time.
    #[must_use]
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// The zone of an IANA name (from the time zone database built in), if it is one.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        Some(Self {
            name: name.to_owned(),
            tz,
        })
    }

    /// The zone's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local day of a time in milliseconds since the Unix epoch.
    #[must_use]
    pub fn date_of(&self, millis: i64) -> Date {
        let offset = jiff::Timestamp::from_millisecond(millis)
            .map(|at| i64::from(self.tz.to_offset(at).seconds()) * 1000)
            .unwrap_or(0);
        Date::of_millis(millis.saturating_add(offset))
    }

    /// The last millisecond of `day` in this zone (the instant before the next local day
    /// starts), since the Unix epoch: when a deadline falling on `day` ends there.
    #[must_use]
    pub fn end_of_day_millis(&self, day: Date) -> i64 {
        let next = day.add_days(1);
        let civil = (
            i16::try_from(next.year()),
            i8::try_from(next.month()),
            i8::try_from(next.day()),
        );
        let start = match civil {
            (Ok(y), Ok(m), Ok(d)) => jiff::civil::Date::new(y, m, d)
                .and_then(|date| date.to_zoned_datetime(self.tz.clone()))
                .ok()
                .map(|zoned| zoned.timestamp().as_millisecond()),
            _ => None,
        };
        // beyond the zone database's years: UTC's
        start.map_or_else(|| day.end_of_day_millis(), |s| s - 1)
    }
}
