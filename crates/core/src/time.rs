//! Time as a value. The vault never reads the clock itself: callers pass `now`, so tests
//! can move time instead of sleeping.

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The system clock's current time.
    #[must_use]
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(ms)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-29T10:31:15.123Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

impl Timestamp {
    /// Parses RFC 3339 (`2027-01-31T00:00:00Z`, fractions of a second and a `+hh:mm` or
    /// `-hh:mm` offset allowed); `None` if it is not one.
    #[must_use]
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let digits = b.get(from..from + len)?;
            digits
                .iter()
                .try_fold(0i64, |n, d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
        };
        let sep = |at: usize, chars: &[u8]| b.get(at).is_some_and(|c| chars.contains(c));
        if b.len() < 20 || !sep(4, b"-") || !sep(7, b"-") || !sep(10, b"Tt ") || !sep(13, b":") || !sep(16, b":") {
            return None;
        }
        let (y, mo, d, h, mi, s) = (
            num(0, 4)?,
            num(5, 2)?,
            num(8, 2)?,
            num(11, 2)?,
            num(14, 2)?,
            num(17, 2)?,
        );
        let days_in_month = match mo {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            _ => return None,
        };
        if d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 59 {
            return None;
        }
        let mut at = 19;
        let mut millis = 0;
        if sep(at, b".") {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            let digits = at - start;
            if digits == 0 {
                return None;
            }
            let kept = digits.min(3);
            millis = num(start, kept)? * 10i64.pow(u32::try_from(3 - kept).ok()?);
        }
        let offset = match b.get(at..)? {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let minutes = oh * 60 + om;
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset * 60;
        Some(Self(secs * 1000 + millis))
    }
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(951_782_400_000).to_rfc3339(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Timestamp(1_795_948_275_123).to_rfc3339(), "2026-11-29T10:31:15.123Z");
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339_parses_what_it_prints_and_offsets() {
        for t in [0, 951_782_400_000, 1_795_948_275_123, -1, 4_102_444_800_000] {
            let ts = Timestamp(t);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Some(ts));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-29T12:31:15+02:00"),
            Timestamp::parse_rfc3339("2026-11-29T10:31:15Z")
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-29T10:31:15.1Z"),
            Some(Timestamp(1_795_948_275_100))
        );
        for bad in [
            "",
            "2026-11-29",
            "2026-02-30T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T10:31:15",
            "2026-11-29T10:31:15.Z",
            "2026-11-29T10:31:15+2:00",
            "２026-11-29T10:31:15Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
