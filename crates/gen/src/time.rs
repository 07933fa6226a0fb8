//! Calendar arithmetic and RFC 3339 formatting for the generator.
//!
//! Done by hand (Howard Hinnant's days/civil algorithms) because the generator needs only UTC
//! dates, and formatting a timestamp must cost a few byte copies on the hot path: the date part
//! is cached per day, the time of day comes from a two-digit table.

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses a strict `YYYY-MM-DD` (years 1970 to 9999, a real calendar day) into days since the
/// epoch. Anything else is `None`: the caller turns that into a configuration error.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    // A day past the month's end (e.g. 02-30) round-trips to another date.
    (civil_from_days(days) == (i64::from(y), m, d)).then_some(days)
}

/// "00" to "99", so that two digits are one two-byte copy.
const TWO_DIGITS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn push2(out: &mut Vec<u8>, n: u32) {
    let i = (n as usize) * 2;
    out.extend_from_slice(&TWO_DIGITS[i..i + 2]);
}

/// `YYYY-MM-DD` of a day; years are four digits (1970 to 9999, see [`parse_date`]).
pub(crate) fn push_date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    push2(out, y / 100);
    push2(out, y % 100);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
}

/// Formats instants given as seconds after a fixed midnight (`t0`), the representation the
/// generator uses everywhere; remembers the last day's `YYYY-MM-DDT` because the stream is
/// mostly in time order, so the civil conversion runs about once per day of output.
pub(crate) struct Clock {
    day0: i64,
    cached_day: u32,
    cached: [u8; 11],
}

impl Clock {
    pub(crate) fn new(day0: i64) -> Clock {
        let mut c = Clock {
            day0,
            cached_day: 0,
            cached: [0; 11],
        };
        c.fill(0);
        c
    }

    fn fill(&mut self, day: u32) {
        let mut v = Vec::with_capacity(11);
        push_date(&mut v, self.day0 + i64::from(day));
        v.push(b'T');
        self.cached.copy_from_slice(&v);
        self.cached_day = day;
    }

    /// Appends `YYYY-MM-DDTHH:MM:SSZ` for `t0 + offset_s`.
    #[inline]
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, offset_s: u32) {
        let day = offset_s / 86_400;
        if day != self.cached_day {
            self.fill(day);
        }
        out.extend_from_slice(&self.cached);
        let sod = offset_s % 86_400;
        push2(out, sod / 3600);
        out.push(b':');
        push2(out, sod / 60 % 60);
        out.push(b':');
        push2(out, sod % 60);
        out.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 10, 1), 20_727);
        for z in -1_000..200_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn parse_date_is_strict() {
        assert_eq!(parse_date("2026-10-01"), Some(20_727));
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-10-01",
            "2026-10-01T",
            "1969-12-31",
            "2026/10/01",
            "２０２６-10-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn clock_formats_rfc3339_utc() {
        let mut c = Clock::new(days_from_civil(2026, 10, 1));
        let mut out = Vec::new();
        c.push(&mut out, 10 * 3600 + 5 * 60 + 7);
        out.push(b' ');
        c.push(&mut out, 31 * 86_400 + 86_399);
        out.push(b' ');
        c.push(&mut out, 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-10-01T10:05:07Z 2026-11-01T23:59:59Z 2026-10-01T00:00:00Z"
        );
    }
}
