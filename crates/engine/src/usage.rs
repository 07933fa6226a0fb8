//! Usage (served as `GET /v1/usage`): delivered messages and their cost per time bucket, shaped like Meta's
//! `pricing_analytics` (docs/pricing-rules.md §9), so that dashboards built for Meta's numbers
//! read wabill's.
//!
//! - A message counts in the bucket of its delivery instant (`billed_at`): Meta's analytics
//!   count delivered messages, and an undelivered one costs nothing and is not counted.
//! - Buckets are aligned in UTC (decisions.md D26): HALF_HOUR on the half hour, DAILY on UTC
//!   midnight, MONTHLY on the first of the month at UTC midnight. `align=WABA` aligns DAILY
//!   and MONTHLY on the WABA's local midnight instead, as its bill's months are; HALF_HOUR is
//!   always UTC. A data point's `start`/`end` are its bucket clipped to the requested range.
//! - Values are Meta's upper-case words (`MARKETING`, `FREE_CUSTOMER_SERVICE`, `REGULAR`);
//!   wabill's own `free_tier` is `FREE_TIER`, and a message free in an entry point window is
//!   `REFERRAL_CONVERSION` / `FREE_ENTRY_POINT`, as its charge says.
//! - `tier` is the charge's tier, `0:MAX` for a charged message without one (Meta writes
//!   marketing so), and absent for a message that cost nothing.
//! - `cost` is an exact decimal string, summed in Rust from per-amount groups the store returns.
//!   There is one `data` element per currency (a WABA has one unless its account changed).

use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use wabill_rating::time::{local_date, local_day_start};
use wabill_rating::{Date, Decimal, UnixMs};
use wabill_store::UsageRow;

const HALF_HOUR_MS: i64 = 30 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    HalfHour,
    Daily,
    Monthly,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Granularity> {
        Some(match s {
            "HALF_HOUR" => Granularity::HalfHour,
            "DAILY" => Granularity::Daily,
            "MONTHLY" => Granularity::Monthly,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            Granularity::HalfHour => "HALF_HOUR",
            Granularity::Daily => "DAILY",
            Granularity::Monthly => "MONTHLY",
        }
    }
}

/// What a data point can be broken down by, in Meta's words.
pub const DIMENSIONS: [&str; 5] = [
    "COUNTRY",
    "PHONE",
    "PRICING_CATEGORY",
    "PRICING_TYPE",
    "TIER",
];

/// The bucket holding instant `at`: `[start, end)`.
pub fn bucket(g: Granularity, tz: Tz, at: UnixMs) -> (UnixMs, UnixMs) {
    match g {
        Granularity::HalfHour => {
            let s = at.div_euclid(HALF_HOUR_MS) * HALF_HOUR_MS;
            (s, s + HALF_HOUR_MS)
        }
        Granularity::Daily => {
            let d = local_date(tz, at);
            (local_day_start(tz, d), local_day_start(tz, Date(d.0 + 1)))
        }
        Granularity::Monthly => {
            let m = local_date(tz, at).month();
            (
                local_day_start(tz, m.first_day()),
                local_day_start(tz, m.next().first_day()),
            )
        }
    }
}

/// The question, checked.
#[derive(Clone, Debug)]
pub struct UsageQuery {
    pub start: UnixMs,
    pub end: UnixMs,
    pub granularity: Granularity,
    pub dimensions: BTreeSet<&'static str>,
    /// The timezone DAILY and MONTHLY buckets are aligned in.
    pub tz: Tz,
    pub phone_numbers: Option<BTreeSet<String>>,
    pub country_codes: Option<BTreeSet<String>>,
    pub pricing_types: Option<BTreeSet<String>>,
    pub pricing_categories: Option<BTreeSet<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct PointKey {
    currency: String,
    start: UnixMs,
    end: UnixMs,
    phone: Option<String>,
    country: Option<String>,
    category: Option<String>,
    pricing_type: Option<String>,
    tier: Option<String>,
}

/// Data points from the store's groups: `{"data":[{"currency","granularity","data_points"}]}`.
pub fn aggregate(q: &UsageQuery, rows: &[UsageRow]) -> Value {
    let mut points: BTreeMap<PointKey, (u64, Decimal)> = BTreeMap::new();
    let keep = |set: &Option<BTreeSet<String>>, v: &str| set.as_ref().is_none_or(|s| s.contains(v));
    for r in rows {
        let category = r.category.to_uppercase();
        let pricing_type = r.pricing_type.to_uppercase();
        if !(keep(&q.phone_numbers, &r.phone)
            && keep(&q.country_codes, &r.country)
            && keep(&q.pricing_types, &pricing_type)
            && keep(&q.pricing_categories, &category))
        {
            continue;
        }
        let (start, end) = bucket(q.granularity, q.tz, r.slot_ms);
        let has = |d: &str| q.dimensions.contains(d);
        let key = PointKey {
            currency: r.currency.clone(),
            start: start.max(q.start),
            end: end.min(q.end),
            phone: has("PHONE").then(|| r.phone.clone()),
            country: has("COUNTRY").then(|| r.country.clone()),
            category: has("PRICING_CATEGORY").then_some(category),
            pricing_type: has("PRICING_TYPE").then_some(pricing_type),
            // Meta omits the tier of free messages and writes an untiered price 0:MAX.
            tier: (has("TIER") && r.amount.is_positive())
                .then(|| r.tier.clone().unwrap_or_else(|| "0:MAX".into())),
        };
        let p = points.entry(key).or_default();
        p.0 += r.messages;
        p.1 += r.amount.times(r.messages);
    }
    let mut by_currency: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, (volume, cost)) in points {
        let mut p = Map::new();
        p.insert("start".into(), json!(k.start.div_euclid(1000)));
        p.insert("end".into(), json!(k.end.div_euclid(1000)));
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                p.insert(name.into(), json!(v));
            }
        };
        opt("phone_number", k.phone);
        opt("country", k.country);
        opt("pricing_category", k.category);
        opt("pricing_type", k.pricing_type);
        opt("tier", k.tier);
        p.insert("volume".into(), json!(volume));
        p.insert("cost".into(), json!(cost.to_string()));
        by_currency
            .entry(k.currency)
            .or_default()
            .push(Value::Object(p));
    }
    let data: Vec<Value> = by_currency
        .into_iter()
        .map(|(currency, points)| {
            json!({"currency": currency, "granularity": q.granularity.as_str(), "data_points": points})
        })
        .collect();
    json!({ "data": data })
}

/// A list parameter: `A,B` or Meta's `["A","B"]`.
pub fn list(v: &str) -> Vec<String> {
    v.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|x| x.trim().trim_matches('"').trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> UnixMs {
        wabill_formats::time::parse_instant(s).unwrap()
    }

    #[test]
    fn buckets_align_in_utc_or_in_the_wabas_timezone() {
        let t = at("2026-10-31T23:45:00Z");
        assert_eq!(
            bucket(Granularity::HalfHour, chrono_tz::UTC, t),
            (at("2026-10-31T23:30:00Z"), at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            bucket(Granularity::Monthly, chrono_tz::UTC, t),
            (at("2026-10-01T00:00:00Z"), at("2026-11-01T00:00:00Z"))
        );
        // 20:45 in Sao Paulo: still October 31 there.
        let sp: Tz = "America/Sao_Paulo".parse().unwrap();
        assert_eq!(
            bucket(Granularity::Daily, sp, t),
            (at("2026-10-31T03:00:00Z"), at("2026-11-01T03:00:00Z"))
        );
        // Kathmandu is UTC+5:45: local midnight is not on a half hour.
        let ktm: Tz = "Asia/Kathmandu".parse().unwrap();
        assert_eq!(
            bucket(Granularity::Daily, ktm, t).0,
            at("2026-10-31T18:15:00Z")
        );
    }

    #[test]
    fn lists_take_commas_or_metas_brackets() {
        assert_eq!(list("COUNTRY, PHONE"), vec!["COUNTRY", "PHONE"]);
        assert_eq!(list(r#"["COUNTRY","TIER"]"#), vec!["COUNTRY", "TIER"]);
        assert!(list("").is_empty());
    }
}

/// What call figures can be broken down by (Meta's `call_analytics` dimensions).
pub const CALL_DIMENSIONS: [&str; 3] = ["COUNTRY", "DIRECTION", "PHONE"];

/// Every dimension `GET /v1/usage` knows, of messages or of calls.
pub const ALL_DIMENSIONS: [&str; 6] = [
    "COUNTRY",
    "DIRECTION",
    "PHONE",
    "PRICING_CATEGORY",
    "PRICING_TYPE",
    "TIER",
];

/// The question about calls, checked.
#[derive(Clone, Debug)]
pub struct CallUsageQuery {
    pub start: UnixMs,
    pub end: UnixMs,
    pub granularity: Granularity,
    pub dimensions: BTreeSet<&'static str>,
    pub tz: Tz,
    pub phone_numbers: Option<BTreeSet<String>>,
    pub country_codes: Option<BTreeSet<String>>,
    /// `BUSINESS_INITIATED`, `USER_INITIATED`.
    pub directions: Option<BTreeSet<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct CallPointKey {
    currency: String,
    start: UnixMs,
    end: UnixMs,
    phone: Option<String>,
    country: Option<String>,
    direction: Option<String>,
}

#[derive(Default)]
struct CallPoint {
    count: u64,
    seconds: u64,
    cost: Decimal,
    unpriced: u64,
}

/// Call figures shaped like Meta's `call_analytics` (decisions.md D134): per bucket of the
/// calls' start, `count` (answered calls: more than zero seconds, as Meta counts completed
/// calls), `cost` (the exact sum of their amounts), `average_duration` (their seconds over
/// their count, in whole seconds, half up); a call that could not be priced counts and adds its
/// seconds but no cost, and the point says how many with `unpriced`. A call with no number has
/// no `country`: it is broken down under none.
pub fn aggregate_calls(q: &CallUsageQuery, rows: &[wabill_store::CallChargeRow]) -> Value {
    let mut points: BTreeMap<CallPointKey, CallPoint> = BTreeMap::new();
    let keep = |set: &Option<BTreeSet<String>>, v: &str| set.as_ref().is_none_or(|s| s.contains(v));
    for r in rows {
        if r.seconds == 0 || r.start_ms < q.start || r.start_ms >= q.end {
            continue;
        }
        let direction = r.direction.to_uppercase();
        let country = r.country.clone().unwrap_or_default();
        if !(keep(&q.phone_numbers, &r.phone)
            && keep(&q.country_codes, &country)
            && keep(&q.directions, &direction))
        {
            continue;
        }
        let (start, end) = bucket(q.granularity, q.tz, r.start_ms);
        let has = |d: &str| q.dimensions.contains(d);
        let key = CallPointKey {
            currency: r.currency.clone(),
            start: start.max(q.start),
            end: end.min(q.end),
            phone: has("PHONE").then(|| r.phone.clone()),
            country: has("COUNTRY").then(|| r.country.clone()).flatten(),
            direction: has("DIRECTION").then_some(direction),
        };
        let p = points.entry(key).or_default();
        p.count += 1;
        p.seconds += r.seconds;
        match r.amount {
            Some(a) => p.cost += a,
            None => p.unpriced += 1,
        }
    }
    let mut by_currency: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in points {
        let mut p = Map::new();
        p.insert("start".into(), json!(k.start.div_euclid(1000)));
        p.insert("end".into(), json!(k.end.div_euclid(1000)));
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                p.insert(name.into(), json!(v));
            }
        };
        opt("phone_number", k.phone);
        opt("country", k.country);
        opt("direction", k.direction);
        p.insert("count".into(), json!(v.count));
        p.insert("cost".into(), json!(v.cost.to_string()));
        p.insert(
            "average_duration".into(),
            json!((2 * v.seconds + v.count) / (2 * v.count)),
        );
        if v.unpriced > 0 {
            p.insert("unpriced".into(), json!(v.unpriced));
        }
        by_currency
            .entry(k.currency)
            .or_default()
            .push(Value::Object(p));
    }
    let data: Vec<Value> = by_currency
        .into_iter()
        .map(|(currency, points)| {
            json!({"currency": currency, "granularity": q.granularity.as_str(), "data_points": points})
        })
        .collect();
    json!({ "data": data })
}
