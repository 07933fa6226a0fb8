//! Instants, calendar dates and WABA-local calendars.
//!
//! An instant is milliseconds since the Unix epoch (UTC). Meta decides eras, months and rate
//! card versions by the calendar of the WABA's timezone, so every account carries a
//! [`LocalCalendar`] that turns instants into local dates and months, caching the current day
//! because events arrive mostly in time order.

use chrono::{Datelike, LocalResult, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use std::fmt;

pub const SECOND_MS: i64 = 1_000;
pub const HOUR_MS: i64 = 3_600 * SECOND_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type UnixMs = i64;

/// A calendar date, as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

impl Date {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        NaiveDate::from_ymd_opt(y, m, d).map(Date::from_naive)
    }
    pub fn from_naive(n: NaiveDate) -> Date {
        Date(n.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
    }
    pub fn naive(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0 + EPOCH_DAYS_FROM_CE).expect("date in range")
    }
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 10)
            .map(Date::from_naive)
    }
    pub fn month(self) -> Month {
        let n = self.naive();
        Month(n.year() * 12 + n.month0() as i32)
    }
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.naive().format("%Y-%m-%d"))
    }
}
impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A calendar month, as `year * 12 + month0`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(pub i32);

impl Month {
    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }
    pub fn month1(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }
    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year(), self.month1(), 1).expect("valid month")
    }
    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let y: i32 = y.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        (1..=12).contains(&m).then_some(Month(y * 12 + m - 1))
    }
}
impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month1())
    }
}
impl fmt::Debug for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The instant a local calendar day starts in `tz`: local midnight, or, where a DST jump skips
/// midnight, the first instant of that date that exists.
pub fn local_day_start(tz: Tz, date: Date) -> UnixMs {
    let naive = date.naive();
    match tz.from_local_datetime(&naive.and_time(NaiveTime::MIN)) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
        LocalResult::None => {
            // Midnight falls in a gap; gaps last at most a few hours. Find the first valid minute.
            (1..=24 * 60)
                .find_map(|min| {
                    let t = NaiveTime::from_num_seconds_from_midnight_opt(min * 60, 0)?;
                    tz.from_local_datetime(&naive.and_time(t)).earliest()
                })
                .expect("a local day has at least one valid minute")
                .timestamp_millis()
        }
    }
}

/// The local date of an instant in `tz`.
pub fn local_date(tz: Tz, at: UnixMs) -> Date {
    let dt = tz
        .timestamp_millis_opt(at)
        .single()
        .expect("instants map to one local time");
    Date::from_naive(dt.date_naive())
}

/// Local date and month of instants in one timezone, caching the day last asked for.
#[derive(Clone)]
pub struct LocalCalendar {
    tz: Tz,
    day_start: UnixMs,
    day_end: UnixMs,
    date: Date,
    month: Month,
}

impl LocalCalendar {
    pub fn new(tz: Tz) -> Self {
        LocalCalendar {
            tz,
            day_start: 0,
            day_end: 0,
            date: Date(0),
            month: Month(0),
        }
    }
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Local date and month of `at`.
    #[inline]
    pub fn date_month(&mut self, at: UnixMs) -> (Date, Month) {
        if at < self.day_start || at >= self.day_end {
            self.refill(at);
        }
        (self.date, self.month)
    }

    #[cold]
    fn refill(&mut self, at: UnixMs) {
        let date = local_date(self.tz, at);
        self.date = date;
        self.month = date.month();
        self.day_start = local_day_start(self.tz, date);
        self.day_end = local_day_start(self.tz, Date(date.0 + 1));
        debug_assert!(self.day_start <= at && at < self.day_end);
    }

    /// The instant local midnight of `date` happens in this timezone.
    pub fn start_of(&self, date: Date) -> UnixMs {
        local_day_start(self.tz, date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_follow_the_timezone() {
        let tz: Tz = "America/Sao_Paulo".parse().unwrap();
        let mut cal = LocalCalendar::new(tz);
        // 2025-07-01T02:59:59Z is still June 30 in Sao Paulo (UTC-3).
        let (d, m) = cal.date_month(1_751_338_799_000);
        assert_eq!(d.to_string(), "2025-06-30");
        assert_eq!(m.to_string(), "2025-06");
        let (d, _) = cal.date_month(1_751_338_800_000);
        assert_eq!(d.to_string(), "2025-07-01");
        assert_eq!(
            cal.start_of(Date::parse("2025-07-01").unwrap()),
            1_751_338_800_000
        );
    }

    #[test]
    fn day_start_skips_a_dst_gap_at_midnight() {
        // Sao Paulo started DST at local midnight on 2018-11-04: 00:00 did not exist.
        let tz: Tz = "America/Sao_Paulo".parse().unwrap();
        let start = local_day_start(tz, Date::parse("2018-11-04").unwrap());
        assert_eq!(local_date(tz, start).to_string(), "2018-11-04");
        assert_eq!(local_date(tz, start - 1).to_string(), "2018-11-03");
    }

    #[test]
    fn months_parse_and_print() {
        let m = Month::parse("2026-10").unwrap();
        assert_eq!(m.to_string(), "2026-10");
        assert_eq!(m.next().to_string(), "2026-11");
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert!(Month::parse("2026-13").is_none());
    }
}
