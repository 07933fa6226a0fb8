//! Instants on the wire: RFC 3339 with an offset, or Unix seconds (as Meta's webhooks send
//! them), in; RFC 3339 UTC out.

use wabill_rating::UnixMs;

/// Parses RFC 3339 (`2025-07-01T10:00:00Z`, `2025-07-01T07:00:00.250-03:00`) or Unix seconds
/// (`"1751364000"`). Returns milliseconds since the epoch.
pub fn parse_instant(s: &str) -> Result<UnixMs, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return unix_seconds(s);
    }
    if let Some(ms) = fast_rfc3339_utc(s.as_bytes()) {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!("'{s}' is not an RFC 3339 time with an offset (2025-07-01T10:00:00Z) or Unix seconds")
        })
}

/// Unix seconds given as a whole number.
pub fn unix_seconds(s: &str) -> Result<UnixMs, String> {
    s.parse::<i64>()
        .ok()
        .filter(|v| (0..=253_402_300_799).contains(v))
        .map(|v| v * 1000)
        .ok_or_else(|| format!("'{s}' is not a Unix time in seconds"))
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
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(format_instant(parse_instant(s).unwrap()), s);
        }
        for days in [-1000, 0, 19_000, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as i64, d as i64), days);
        }
    }
}
