//! Time as a value. The vault never reads the clock itself: callers pass `now`, so tests
//! can move time instead of sleeping. Calendar arithmetic is the registry's
//! ([`custodia_registry::Date`]), written once for timestamps and legal deadlines.

use custodia_registry::Date;

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
        let millis = self.0.rem_euclid(1000);
        let rem = self.0.div_euclid(1000).rem_euclid(86_400);
        format!(
            "{}T{:02}:{:02}:{:02}.{millis:03}Z",
            Date::of_millis(self.0),
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

impl Timestamp {
    /// Parses RFC 3339 (`2027-01-31T00:00:00Z`, fractions of a second and a `+hh:mm` or
    /// `-hh:mm` offset allowed); `None` if it is not one. As JSON Schema's `date-time` reads
    /// it: `T` (or `t`) between date and time, never a space; a leap second (`:60`) is the
    /// last millisecond of its minute (Unix time has no leap seconds).
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
        if b.len() < 20 || !sep(4, b"-") || !sep(7, b"-") || !sep(10, b"Tt") || !sep(13, b":") || !sep(16, b":") {
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
        let date = Date::new(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?)?;
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let leap = s == 60;
        let s = s.min(59);
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
        let secs = date.days_since_epoch() * 86_400 + h * 3600 + mi * 60 + s - offset * 60;
        Some(Self(secs * 1000 + if leap { 999 } else { millis }))
    }
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
        assert_eq!(
            Timestamp::parse_rfc3339("2016-12-31T23:59:60Z"),
            Timestamp::parse_rfc3339("2016-12-31T23:59:59.999Z"),
            "a leap second"
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
            "2026-11-29 10:31:15Z",
            "2026-11-29T10:31:61Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
