//! Rate cards: what one message (PMP) or conversation (CBP) costs, by currency, pricing model,
//! market, category and date, with Meta's volume tiers where a card has them.
//!
//! A lookup takes the newest version whose `effective_from` is on or before the send date for
//! that exact (currency, model, market, category). A missing row is an error for the caller to
//! report, never a zero.
//!
//! A version may also be a known gap (`rate_gaps.csv`): Meta changed the price on that date and
//! no value is bundled for it. Looking it up finds the gap, which rating reports as a missing
//! rate, so that no bill rests on the price Meta replaced (decisions.md D61).

use crate::markets::{MarketId, MarketTable};
use crate::model::{Category, PricingModel};
use crate::money::{Currency, Decimal};
use crate::time::Date;
use rustc_hash::FxHashMap;
use std::fmt;

/// A volume-tier range, inclusive, as Meta writes it (`lower:upper`, `MAX` when unbounded).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TierRange {
    pub min: u64,
    pub max: Option<u64>,
}

impl fmt::Display for TierRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}:{}", self.min, max),
            None => write!(f, "{}:MAX", self.min),
        }
    }
}

/// One version of the price of a (currency, model, market, category): a flat rate, or tiers,
/// or a known gap.
#[derive(Clone, Debug)]
pub struct RateVersion {
    pub effective_from: Date,
    /// Sorted by `min`; a single entry with `tier: None` is a flat rate; empty for a gap.
    pub steps: Vec<(Option<TierRange>, Decimal)>,
    /// The rows' `source` column (keys of `data/SOURCES.md`, `;`-separated; the distinct values
    /// of a tiered version joined the same way); empty when the file has no such column.
    pub source: String,
    /// `Some(reason)` when this version is a known gap: Meta changed the price on
    /// `effective_from` and the data holds no value for it. `steps` is then empty.
    pub gap: Option<String>,
}

impl RateVersion {
    /// The price of the `n`-th (1-based) charged message of the month in this tiered series.
    /// `None` when the card's tiers do not cover `n` (a gap in the data).
    pub fn price(&self, n: u64) -> Option<(Option<TierRange>, Decimal)> {
        match self.steps.as_slice() {
            [(None, rate)] => Some((None, *rate)),
            steps => steps
                .iter()
                .find(|(t, _)| t.is_some_and(|t| t.min <= n && t.max.is_none_or(|max| n <= max)))
                .copied(),
        }
    }
    pub fn is_tiered(&self) -> bool {
        self.steps.iter().any(|s| s.0.is_some())
    }
    /// Why a gap has no price, as rating reports it: the date Meta changed it and the reason.
    pub fn gap_detail(&self) -> Option<String> {
        self.gap.as_ref().map(|why| {
            format!(
                " (Meta changed this rate on {}; no value for it is bundled: {why})",
                self.effective_from
            )
        })
    }
}

/// A key of the rate book.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RateKey {
    pub currency: Currency,
    pub model: PricingModel,
    pub market: MarketId,
    pub category: Category,
}

/// All rate cards, indexed for lookup.
#[derive(Debug, Default)]
pub struct RateBook {
    versions: FxHashMap<RateKey, Vec<RateVersion>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RateBookError {
    #[error("{file} line {line}: {why}")]
    Row {
        file: String,
        line: u64,
        why: String,
    },
    #[error("{file}: {source}")]
    Csv { file: String, source: csv::Error },
}

/// The column layout of `rates.csv`.
pub const RATES_HEADER: &str =
    "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source";

/// The column layout of `rate_gaps.csv`.
pub const GAPS_HEADER: &str = "effective_from,pricing_model,currency,market,category,reason";

/// Reads the key columns shared by `rates.csv` and `rate_gaps.csv`: date, model, currency,
/// market, category (`f` holds them in that order), or why not.
fn parse_key(markets: &MarketTable, f: &[&str]) -> Result<(RateKey, Date), String> {
    let date =
        Date::parse(f[0]).ok_or_else(|| format!("effective_from '{}' is not YYYY-MM-DD", f[0]))?;
    let model = PricingModel::parse(f[1])
        .ok_or_else(|| format!("pricing_model '{}' is not CBP or PMP", f[1]))?;
    let currency = Currency::parse(f[2])
        .ok_or_else(|| format!("currency '{}' is not an ISO 4217 code", f[2]))?;
    let market = markets
        .market(f[3])
        .ok_or_else(|| format!("market '{}' is not a market of markets.csv", f[3]))?;
    let category = Category::parse(f[4])
        .filter(|c| !matches!(c, Category::ReferralConversion | Category::MarketingLite))
        .ok_or_else(|| {
            format!(
                "category '{}' is not one of marketing, utility, authentication, authentication_international, service",
                f[4]
            )
        })?;
    Ok((
        RateKey {
            currency,
            model,
            market,
            category,
        },
        date,
    ))
}

impl RateBook {
    /// Adds the rows of a `rates.csv` file (see `data/SOURCES.md` for the layout). `file` names
    /// the source in errors. Rows for a key and date already present are an error.
    pub fn add_csv(
        &mut self,
        markets: &MarketTable,
        file: &str,
        text: &str,
    ) -> Result<(), RateBookError> {
        let csv_err = |source| RateBookError::Csv {
            file: file.to_string(),
            source,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let headers = rdr.headers().map_err(csv_err)?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| RateBookError::Row {
                    file: file.to_string(),
                    line: 1,
                    why: format!("missing column '{name}' (expected {RATES_HEADER})"),
                })
        };
        let cols = [
            col("effective_from")?,
            col("pricing_model")?,
            col("currency")?,
            col("market")?,
            col("category")?,
            col("tier_min")?,
            col("tier_max")?,
            col("rate")?,
        ];
        let source_col = headers.iter().position(|h| h.trim() == "source");
        // (key, effective date) → its rows as (tier, rate, line, source).
        type Staged = FxHashMap<(RateKey, Date), Vec<(Option<TierRange>, Decimal, u64, String)>>;
        let mut staged = Staged::default();
        for rec in rdr.records() {
            let rec = rec.map_err(csv_err)?;
            let line = rec.position().map_or(0, |p| p.line());
            let err = |why: String| RateBookError::Row {
                file: file.to_string(),
                line,
                why,
            };
            let f: Vec<&str> = cols
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").trim())
                .collect();
            let (key, date) = parse_key(markets, &f).map_err(err)?;
            let tier = match (f[5], f[6]) {
                ("", "") => None,
                (lo, hi) => {
                    let min: u64 = lo
                        .parse()
                        .map_err(|_| err(format!("tier_min '{lo}' is not a whole number")))?;
                    let max = match hi {
                        "" | "MAX" => None,
                        hi => Some(hi.parse::<u64>().map_err(|_| {
                            err(format!("tier_max '{hi}' is not a whole number or MAX"))
                        })?),
                    };
                    if max.is_some_and(|m| m < min) {
                        return Err(err(format!("tier {lo}:{hi} ends before it starts")));
                    }
                    Some(TierRange { min, max })
                }
            };
            let rate: Decimal = f[7].parse().map_err(|e| err(format!("rate: {e}")))?;
            if rate.nanos() < 0 {
                return Err(err(format!("rate '{}' is negative", f[7])));
            }
            let source = source_col.and_then(|i| rec.get(i)).unwrap_or("").trim();
            staged
                .entry((key, date))
                .or_default()
                .push((tier, rate, line, source.to_string()));
        }
        for ((key, date), mut steps) in staged {
            let first_line = steps.iter().map(|s| s.2).min().unwrap_or(0);
            let err = |why: String| RateBookError::Row {
                file: file.to_string(),
                line: first_line,
                why: format!(
                    "{} {} {} {} from {date}: {why}",
                    key.currency,
                    key.model.as_str(),
                    markets.market_name(key.market),
                    key.category.as_str()
                ),
            };
            steps.sort_by_key(|s| s.0.map(|t| t.min));
            if steps.len() > 1 {
                if steps.iter().any(|s| s.0.is_none()) {
                    return Err(err("several rows, not all of them tiers".into()));
                }
                for w in steps.windows(2) {
                    let (a, b) = (w[0].0.expect("tier"), w[1].0.expect("tier"));
                    if a.max.is_none_or(|m| m >= b.min) {
                        return Err(err(format!("tiers {a} and {b} overlap")));
                    }
                }
            }
            let versions = self.versions.entry(key).or_default();
            // A row fills a known gap of the same date (an imported card, for example).
            versions.retain(|v| !(v.effective_from == date && v.gap.is_some()));
            if versions.iter().any(|v| v.effective_from == date) {
                return Err(err("defined twice".into()));
            }
            let mut sources: Vec<&str> = Vec::new();
            for s in &steps {
                if !s.3.is_empty() && !sources.contains(&s.3.as_str()) {
                    sources.push(&s.3);
                }
            }
            let source = sources.join(";");
            versions.push(RateVersion {
                effective_from: date,
                steps: steps.into_iter().map(|(t, r, _, _)| (t, r)).collect(),
                source,
                gap: None,
            });
            versions.sort_by_key(|v| v.effective_from);
        }
        Ok(())
    }

    /// Adds the known gaps of a `rate_gaps.csv` file (`GAPS_HEADER`): versions Meta published
    /// for which the data holds no value. A gap where a rate row of the same key and date exists
    /// is ignored (the row fills it), whatever order the files are added in.
    pub fn add_gaps_csv(
        &mut self,
        markets: &MarketTable,
        file: &str,
        text: &str,
    ) -> Result<(), RateBookError> {
        let csv_err = |source| RateBookError::Csv {
            file: file.to_string(),
            source,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = rdr.headers().map_err(csv_err)?.clone();
        let names: Vec<&str> = GAPS_HEADER.split(',').collect();
        let mut cols = Vec::new();
        for name in &names {
            cols.push(
                headers
                    .iter()
                    .position(|h| h.trim() == *name)
                    .ok_or_else(|| RateBookError::Row {
                        file: file.to_string(),
                        line: 1,
                        why: format!("missing column '{name}' (expected {GAPS_HEADER})"),
                    })?,
            );
        }
        let mut seen: FxHashMap<(RateKey, Date), u64> = FxHashMap::default();
        for rec in rdr.records() {
            let rec = rec.map_err(csv_err)?;
            let line = rec.position().map_or(0, |p| p.line());
            let err = |why: String| RateBookError::Row {
                file: file.to_string(),
                line,
                why,
            };
            let f: Vec<&str> = cols
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").trim())
                .collect();
            let (key, date) = parse_key(markets, &f).map_err(err)?;
            if f[5].is_empty() {
                return Err(err("a gap needs its reason".into()));
            }
            if let Some(first) = seen.insert((key, date), line) {
                return Err(err(format!("the same gap as line {first}")));
            }
            let versions = self.versions.entry(key).or_default();
            if versions.iter().any(|v| v.effective_from == date) {
                continue;
            }
            versions.push(RateVersion {
                effective_from: date,
                steps: Vec::new(),
                source: String::new(),
                gap: Some(f[5].to_string()),
            });
            versions.sort_by_key(|v| v.effective_from);
        }
        Ok(())
    }

    /// Every version of a key, oldest first (gaps included).
    pub fn versions(&self, key: &RateKey) -> &[RateVersion] {
        self.versions.get(key).map_or(&[], Vec::as_slice)
    }

    /// The version in force on `date`: the newest whose `effective_from` is on or before it.
    pub fn lookup(&self, key: &RateKey, date: Date) -> Option<&RateVersion> {
        self.versions
            .get(key)?
            .iter()
            .rev()
            .find(|v| v.effective_from <= date)
    }

    pub fn len(&self) -> usize {
        self.versions.values().map(Vec::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
    /// Every (key, version), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&RateKey, &RateVersion)> {
        self.versions
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    fn markets() -> MarketTable {
        MarketTable::from_csv(data::MARKETS_CSV).unwrap()
    }

    #[test]
    fn bundled_rates_load_and_pick_the_newest_version_on_or_before_the_date() {
        let m = markets();
        let mut book = RateBook::default();
        book.add_csv(&m, "rates.csv", data::RATES_CSV).unwrap();
        let key = RateKey {
            currency: Currency::parse("USD").unwrap(),
            model: PricingModel::Cbp,
            market: m.market("Brazil").unwrap(),
            category: Category::Marketing,
        };
        let v = book
            .lookup(&key, Date::parse("2023-06-01").unwrap())
            .unwrap();
        assert_eq!(v.effective_from.to_string(), "2023-06-01");
        assert_eq!(v.price(1), Some((None, "0.0625".parse().unwrap())));
        assert!(book
            .lookup(&key, Date::parse("2023-05-31").unwrap())
            .is_none());
        let later = book
            .lookup(&key, Date::parse("2025-06-30").unwrap())
            .unwrap();
        assert!(later.effective_from > v.effective_from);
    }

    #[test]
    fn tiers_price_by_position_in_the_month() {
        let m = markets();
        let mut book = RateBook::default();
        book.add_csv(
            &m,
            "t.csv",
            "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
             2025-07-01,PMP,USD,India,utility,0,1000,0.0014,made-up\n\
             2025-07-01,PMP,USD,India,utility,1001,5000,0.0012,made-up\n\
             2025-07-01,PMP,USD,India,utility,5001,,0.001,made-up\n",
        )
        .unwrap();
        let key = RateKey {
            currency: Currency::parse("USD").unwrap(),
            model: PricingModel::Pmp,
            market: m.market("India").unwrap(),
            category: Category::Utility,
        };
        let v = book
            .lookup(&key, Date::parse("2025-07-15").unwrap())
            .unwrap();
        assert_eq!(v.price(1000).unwrap().1.to_string(), "0.0014");
        assert_eq!(v.price(1001).unwrap().0.unwrap().to_string(), "1001:5000");
        assert_eq!(
            v.price(9_999_999).unwrap().0.unwrap().to_string(),
            "5001:MAX"
        );
    }

    #[test]
    fn bad_rows_name_file_line_and_reason() {
        let m = markets();
        let mut book = RateBook::default();
        let e = book
            .add_csv(
                &m,
                "x.csv",
                "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
                 2025-07-01,PMP,USD,Atlantis,utility,,,0.1,x\n",
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.csv line 2") && e.contains("Atlantis"), "{e}");
        let e = book
            .add_csv(
                &m,
                "y.csv",
                "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
                 2025-07-01,PMP,USD,India,utility,,,0.1f,x\n",
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.csv line 2") && e.contains("rate"), "{e}");
    }
}
