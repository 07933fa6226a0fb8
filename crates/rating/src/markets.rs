//! Phone number → country → market.
//!
//! A user's country is the longest calling-code prefix of their number (`1-809` for the
//! Dominican Republic beats `1` for the United States; `7-7` for Kazakhstan beats `7` for
//! Russia). Their market is the `markets.csv` row for that country in force on the send date.

use crate::time::Date;
use rustc_hash::FxHashMap;
use std::fmt;

/// Index of a country in the [`MarketTable`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CountryId(pub u16);

/// Index of a market name in the [`MarketTable`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MarketId(pub u16);

#[derive(Debug)]
struct Country {
    iso2: String,
    /// (from, to inclusive, market), sorted by `from`.
    periods: Vec<(Date, Option<Date>, MarketId)>,
}

/// The country → market table, with its calling-code index.
#[derive(Debug)]
pub struct MarketTable {
    countries: Vec<Country>,
    by_iso2: FxHashMap<String, CountryId>,
    markets: Vec<String>,
    by_market: FxHashMap<String, MarketId>,
    /// Calling-code prefix (its digits as a number; E.164 prefixes never start with 0) → country.
    prefixes: FxHashMap<u64, CountryId>,
    longest_prefix: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum MarketTableError {
    #[error("markets.csv line {line}: {why}")]
    Row { line: u64, why: String },
    #[error("markets.csv: {0}")]
    Csv(#[from] csv::Error),
}

impl MarketTable {
    /// Reads `markets.csv`: `country_iso2,country_name,calling_code,market,effective_from,effective_to,basis`.
    pub fn from_csv(text: &str) -> Result<MarketTable, MarketTableError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let headers = rdr.headers()?.clone();
        let col = |name: &str| -> Result<usize, MarketTableError> {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| MarketTableError::Row {
                    line: 1,
                    why: format!("missing column '{name}'"),
                })
        };
        let (c_iso, c_code, c_market, c_from, c_to, c_basis) = (
            col("country_iso2")?,
            col("calling_code")?,
            col("market")?,
            col("effective_from")?,
            col("effective_to")?,
            col("basis")?,
        );
        let mut t = MarketTable {
            countries: Vec::new(),
            by_iso2: FxHashMap::default(),
            markets: Vec::new(),
            by_market: FxHashMap::default(),
            prefixes: FxHashMap::default(),
            longest_prefix: 0,
        };
        // prefix -> (country, is a territory sharing its owner's code)
        let mut claims: FxHashMap<u64, (CountryId, bool, u64)> = FxHashMap::default();
        for rec in rdr.records() {
            let rec = rec?;
            let line = rec.position().map_or(0, |p| p.line());
            let err = |why: String| MarketTableError::Row { line, why };
            let get = |i: usize| rec.get(i).unwrap_or("").trim();
            let iso2 = get(c_iso);
            if iso2.len() != 2 || !iso2.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(err(format!(
                    "country_iso2 '{iso2}' is not two capital letters"
                )));
            }
            let from = Date::parse(get(c_from)).ok_or_else(|| {
                err(format!(
                    "effective_from '{}' is not YYYY-MM-DD",
                    get(c_from)
                ))
            })?;
            let to = match get(c_to) {
                "" => None,
                s => Some(
                    Date::parse(s)
                        .ok_or_else(|| err(format!("effective_to '{s}' is not YYYY-MM-DD")))?,
                ),
            };
            if to.is_some_and(|to| to < from) {
                return Err(err("effective_to is before effective_from".into()));
            }
            let market_name = get(c_market);
            if market_name.is_empty() {
                return Err(err("market is empty".into()));
            }
            let market = t.market_id_or_insert(market_name);
            let country = match t.by_iso2.get(iso2) {
                Some(&c) => c,
                None => {
                    let c = CountryId(t.countries.len() as u16);
                    t.countries.push(Country {
                        iso2: iso2.to_string(),
                        periods: Vec::new(),
                    });
                    t.by_iso2.insert(iso2.to_string(), c);
                    c
                }
            };
            let periods = &mut t.countries[country.0 as usize].periods;
            if periods.iter().any(|&(f, tt, _)| {
                from <= tt.unwrap_or(Date(i32::MAX)) && f <= to.unwrap_or(Date(i32::MAX))
            }) {
                return Err(err(format!("{iso2} has overlapping periods")));
            }
            periods.push((from, to, market));
            periods.sort_by_key(|p| p.0);
            let shared = get(c_basis).starts_with("shared_calling_code_with");
            for code in get(c_code).split('|') {
                let digits: String = code.chars().filter(|c| *c != '-').collect();
                if digits.is_empty()
                    || digits.starts_with('0')
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                    || digits.len() > 7
                {
                    return Err(err(format!("calling_code '{code}' is not a calling code")));
                }
                let key: u64 = digits.parse().expect("digits");
                t.longest_prefix = t.longest_prefix.max(digits.len() as u32);
                match claims.get(&key) {
                    None => {
                        claims.insert(key, (country, shared, line));
                    }
                    Some(&(other, _, _)) if other == country => {}
                    Some(&(_, true, _)) if !shared => {
                        claims.insert(key, (country, shared, line));
                    }
                    Some(&(_, false, _)) if shared => {}
                    Some(&(_, _, other_line)) => {
                        return Err(err(format!(
                            "calling code '{code}' is also claimed at line {other_line}; mark one as shared_calling_code_with"
                        )))
                    }
                }
            }
        }
        t.prefixes = claims.into_iter().map(|(k, (c, _, _))| (k, c)).collect();
        Ok(t)
    }

    fn market_id_or_insert(&mut self, name: &str) -> MarketId {
        if let Some(&m) = self.by_market.get(name) {
            return m;
        }
        let m = MarketId(self.markets.len() as u16);
        self.markets.push(name.to_string());
        self.by_market.insert(name.to_string(), m);
        m
    }

    /// The country of a phone number given as its digits (E.164 without `+`), by longest prefix.
    pub fn country_of(&self, number: u64) -> Option<CountryId> {
        let len = digit_count(number);
        let max = self.longest_prefix.min(len);
        // The longest prefix first, then one digit shorter each time.
        let mut prefix = number / 10u64.pow(len - max);
        for _ in 0..max {
            if let Some(&c) = self.prefixes.get(&prefix) {
                return Some(c);
            }
            prefix /= 10;
        }
        None
    }

    /// The market a country belongs to on a date.
    pub fn market_on(&self, country: CountryId, date: Date) -> Option<MarketId> {
        self.countries[country.0 as usize]
            .periods
            .iter()
            .find(|&&(from, to, _)| from <= date && to.is_none_or(|to| date <= to))
            .map(|p| p.2)
    }

    pub fn iso2(&self, c: CountryId) -> &str {
        &self.countries[c.0 as usize].iso2
    }
    pub fn country(&self, iso2: &str) -> Option<CountryId> {
        self.by_iso2.get(iso2).copied()
    }
    pub fn market_name(&self, m: MarketId) -> &str {
        &self.markets[m.0 as usize]
    }
    pub fn market(&self, name: &str) -> Option<MarketId> {
        self.by_market.get(name).copied()
    }
    pub fn market_names(&self) -> impl Iterator<Item = &str> {
        self.markets.iter().map(String::as_str)
    }
    /// The markets some country belongs to on a date, by name.
    pub fn markets_on(&self, date: Date) -> Vec<MarketId> {
        let mut out: Vec<MarketId> = self
            .countries
            .iter()
            .filter_map(|c| {
                c.periods
                    .iter()
                    .find(|&&(from, to, _)| from <= date && to.is_none_or(|to| date <= to))
                    .map(|p| p.2)
            })
            .collect();
        out.sort_by(|a, b| self.market_name(*a).cmp(self.market_name(*b)));
        out.dedup();
        out
    }
}

/// Number of decimal digits of `n` (1 for 0).
pub fn digit_count(n: u64) -> u32 {
    n.checked_ilog10().map_or(1, |l| l + 1)
}

impl fmt::Display for CountryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "country#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    fn table() -> MarketTable {
        MarketTable::from_csv(data::MARKETS_CSV).unwrap()
    }
    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }
    fn lookup(t: &MarketTable, number: &str, date: &str) -> (String, String) {
        let c = t.country_of(number.parse().unwrap()).expect("country");
        let m = t.market_on(c, d(date)).expect("market");
        (t.iso2(c).to_string(), t.market_name(m).to_string())
    }

    #[test]
    fn north_american_area_codes_decide_the_country() {
        let t = table();
        assert_eq!(lookup(&t, "18095551234", "2025-01-01").0, "DO");
        assert_eq!(lookup(&t, "17875551234", "2025-01-01").0, "PR");
        assert_eq!(lookup(&t, "18765551234", "2025-01-01").0, "JM");
        assert_eq!(lookup(&t, "14165551234", "2025-01-01").0, "CA");
        assert_eq!(
            lookup(&t, "12125551234", "2025-01-01"),
            ("US".into(), "North America".into())
        );
        assert_eq!(
            lookup(&t, "18095551234", "2025-01-01").1,
            "Rest of Latin America"
        );
    }

    #[test]
    fn kazakhstan_shares_plus_seven_with_russia() {
        let t = table();
        assert_eq!(
            lookup(&t, "77011234567", "2026-09-30"),
            ("KZ".into(), "Rest of Central & Eastern Europe".into())
        );
        assert_eq!(
            lookup(&t, "77011234567", "2026-10-01"),
            ("KZ".into(), "Kazakhstan".into())
        );
        assert_eq!(
            lookup(&t, "79161234567", "2026-10-01"),
            ("RU".into(), "Russia".into())
        );
    }

    #[test]
    fn markets_change_on_their_dates() {
        let t = table();
        assert_eq!(lookup(&t, "263771234567", "2025-09-30").1, "Other");
        assert_eq!(lookup(&t, "263771234567", "2025-10-01").1, "Rest of Africa");
        assert_eq!(
            lookup(&t, "48501234567", "2026-06-30").1,
            "Rest of Central & Eastern Europe"
        );
        assert_eq!(lookup(&t, "48501234567", "2026-07-01").1, "Poland");
        assert_eq!(lookup(&t, "8801712345678", "2026-10-01").1, "Bangladesh");
        assert_eq!(
            lookup(&t, "441234567890", "2026-10-01"),
            ("GB".into(), "United Kingdom".into())
        );
    }

    #[test]
    fn conflicting_calling_codes_are_rejected() {
        let csv =
            "country_iso2,country_name,calling_code,market,effective_from,effective_to,basis\n\
                   AA,A,99,Other,2023-06-01,,meta_list\nBB,B,99,Other,2023-06-01,,meta_list\n";
        let e = MarketTable::from_csv(csv).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("'99'"), "{e}");
    }
}
