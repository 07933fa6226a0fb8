//! Instants on the wire: RFC 3339 with an offset, or Unix seconds (as Meta's webhooks send
//! them), in; RFC 3339 UTC out.

use wabill_rating::UnixMs;

/// The first instant accepted, 2000-01-01T00:00:00Z, in Unix seconds (decisions.md D70).
pub const MIN_UNIX_S: i64 = 946_684_800;
/// The first instant refused after the range, 2100-01-01T00:00:00Z, in Unix seconds.
pub const END_UNIX_S: i64 = 4_102_444_800;
/// The accepted range, as error messages state it.
pub const RANGE: &str = "2000-01-01T00:00:00Z <= t < 2100-01-01T00:00:00Z";

/// Parses RFC 3339 (`2025-07-01T10:00:00Z`, `2025-07-01T07:00:00.250-03:00`) or Unix seconds
/// (`"1751364000"`). Returns milliseconds since the epoch.
///
/// Both forms take the same range, [`RANGE`], and an instant is kept exactly as given: a
/// fraction more precise than a millisecond (a non-zero digit after the third) and a leap
/// second (`:60`) are refused rather than rounded (decisions.md D70, D71).
pub fn parse_instant(s: &str) -> Result<UnixMs, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return unix_seconds(s);
    }
    if let Some(ms) = fast_rfc3339_utc(s.as_bytes()) {
        return in_range(s, ms);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
        format!(
            "'{s}' is not an RFC 3339 time with an offset (2025-07-01T10:00:00Z) or Unix seconds"
        )
    })?;
    use chrono::Timelike;
    if t.nanosecond() >= 1_000_000_000 {
        return Err(format!(
            "'{s}' is a leap second (:60), which is not taken: Meta's timestamps are Unix \
             seconds, which have none"
        ));
    }
    // chrono reads at most nanoseconds and drops further digits, so the text is looked at.
    let fraction = s.split_once('.').map(|(_, f)| {
        f.bytes()
            .take_while(u8::is_ascii_digit)
            .skip(3)
            .any(|d| d != b'0')
    });
    if fraction == Some(true) {
        return Err(format!(
            "'{s}' is more precise than a millisecond, which is what wabill keeps: give at \
             most three digits of fraction"
        ));
    }
    in_range(s, t.timestamp_millis())
}

fn in_range(s: &str, ms: UnixMs) -> Result<UnixMs, String> {
    if (MIN_UNIX_S * 1000..END_UNIX_S * 1000).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("'{s}' is outside the accepted range {RANGE}"))
    }
}

/// Unix seconds given as a whole number, in [`RANGE`].
pub fn unix_seconds(s: &str) -> Result<UnixMs, String> {
    let v = s
        .parse::<i64>()
        .map_err(|_| format!("'{s}' is not a Unix time in seconds"))?;
    if (MIN_UNIX_S..END_UNIX_S).contains(&v) {
        Ok(v * 1000)
    } else {
        Err(format!(
            "'{s}' (Unix seconds) is outside the accepted range {RANGE}"
        ))
    }
}

/// The common case, `YYYY-MM-DDTHH:MM:SSZ`, without a general parser.
fn fast_rfc3339_utc(b: &[u8]) -> Option<UnixMs> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |i: usize, len: usize| -> Option<i64> {
        b[i..i + len].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (y, mo, d) = (n(0, 4)?, n(5, 2)?, n(8, 2)?);
    let (h, mi, s) = (n(11, 2)?, n(14, 2)?, n(17, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes an instant as RFC 3339 UTC, with milliseconds only when there are some.
pub fn write_instant(out: &mut Vec<u8>, ms: UnixMs) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut buf = *b"0000-00-00T00:00:00";
    let put = |buf: &mut [u8; 19], at: usize, v: i64, len: usize| {
        let mut v = v;
        for i in (0..len).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, y, 4);
    put(&mut buf, 5, m as i64, 2);
    put(&mut buf, 8, d as i64, 2);
    put(&mut buf, 11, sod / 3600, 2);
    put(&mut buf, 14, sod % 3600 / 60, 2);
    put(&mut buf, 17, sod % 60, 2);
    out.extend_from_slice(&buf);
    if milli != 0 {
        out.push(b'.');
        out.extend_from_slice(format!("{milli:03}").as_bytes());
    }
    out.push(b'Z');
}

pub fn format_instant(ms: UnixMs) -> String {
    let mut v = Vec::with_capacity(24);
    write_instant(&mut v, ms);
    String::from_utf8(v).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            parse_instant("2025-07-01T10:00:00Z").unwrap(),
            1_751_364_000_000
        );
        assert_eq!(
            parse_instant("2025-07-01T07:00:00-03:00").unwrap(),
            1_751_364_000_000
        );
        assert_eq!(
            parse_instant("2025-07-01T10:00:00.250Z").unwrap(),
            1_751_364_000_250
        );
        assert_eq!(parse_instant("1751364000").unwrap(), 1_751_364_000_000);
        assert!(parse_instant("2025-07-01 10:00:00").is_err());
        assert!(parse_instant("2025-02-30T10:00:00Z").is_err());
        assert!(
            parse_instant("2025-07-01T10:00:00").is_err(),
            "an offset is required"
        );
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "2025-07-01T10:00:00Z",
            "2024-02-29T23:59:59Z",
            "2026-10-01T00:00:00.500Z",
            "2000-01-01T00:00:00Z",
            "2099-12-31T23:59:59.999Z",
        ] {
            assert_eq!(format_instant(parse_instant(s).unwrap()), s);
        }
        for days in [-1000, 0, 19_000, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as i64, d as i64), days);
        }
    }

    #[test]
    fn both_forms_take_one_range() {
        for bad in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1969-12-31T23:59:59Z",
            "1999-12-31T23:59:59.999Z",
            "2000-01-01T00:59:59+01:00",
            "2100-01-01T00:00:00Z",
            "0",
            "946684799",
            "4102444800",
            "253402300799",
        ] {
            let e = parse_instant(bad).unwrap_err();
            assert!(e.contains("outside the accepted range"), "{bad}: {e}");
            assert!(e.contains(RANGE), "{e}");
        }
        assert!(unix_seconds("-1").unwrap_err().contains(RANGE));
        assert_eq!(parse_instant("946684800").unwrap(), 946_684_800_000);
        assert_eq!(
            parse_instant("2000-01-01T00:00:00Z").unwrap(),
            946_684_800_000
        );
        assert_eq!(
            parse_instant("2099-12-31T23:59:59Z").unwrap(),
            parse_instant("4102444799").unwrap()
        );
    }

    #[test]
    fn precision_is_kept_or_refused() {
        for bad in [
            "2025-07-01T10:00:00.0001Z",
            "2025-07-01T10:00:00.2501Z",
            "2025-07-01T10:00:00.000000001Z",
            "2025-07-01T10:00:00.0000000000001Z",
            "2025-07-01T07:00:00.1234-03:00",
        ] {
            let e = parse_instant(bad).unwrap_err();
            assert!(e.contains("more precise than a millisecond"), "{bad}: {e}");
        }
        // Zeros after the millisecond lose nothing.
        assert_eq!(
            parse_instant("2025-07-01T10:00:00.250000000Z").unwrap(),
            1_751_364_000_250
        );
        assert_eq!(
            parse_instant("2025-07-01T10:00:00.1Z").unwrap(),
            1_751_364_000_100
        );
    }

    #[test]
    fn a_leap_second_is_refused() {
        for bad in [
            "2016-12-31T23:59:60Z",
            "2025-07-01T10:00:60Z",
            "2025-07-01T10:00:60.5Z",
        ] {
            let e = parse_instant(bad).unwrap_err();
            assert!(e.contains("leap second"), "{bad}: {e}");
        }
    }
}
