//! Meta's change log as data (`data/meta_changes.csv`): on which date Meta changed which
//! market's price of which category, and the check that the rate book holds every such version
//! for every currency it prices, or knows it as a gap (decisions.md D60, D62).
//!
//! A version missing from the data does not make a bill fail by itself: the lookup finds the
//! older version and the bill rests on the price Meta replaced. `stale` finds exactly those.

use crate::markets::{MarketId, MarketTable};
use crate::model::{Category, PricingModel};
use crate::money::Currency;
use crate::rates::{RateBook, RateBookError, RateKey, RateVersion};
use crate::time::Date;

/// The column layout of `meta_changes.csv`.
pub const CHANGES_HEADER: &str = "effective_from,pricing_model,market,category,change,source";

/// One line of Meta's change log: a market's price of a category changed on a date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaChange {
    pub effective_from: Date,
    pub model: PricingModel,
    pub market: MarketId,
    pub category: Category,
    /// `up`, `down` or `new`, as the change log words it.
    pub change: String,
    /// Keys of `data/SOURCES.md`, `;`-separated.
    pub source: String,
    pub line: u64,
}

/// Reads `meta_changes.csv`; `file` names it in errors.
pub fn parse_changes(
    markets: &MarketTable,
    file: &str,
    text: &str,
) -> Result<Vec<MetaChange>, RateBookError> {
    let err = |line: u64, why: String| RateBookError::Row {
        file: file.to_string(),
        line,
        why,
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim_start_matches('\u{feff}');
    if header.trim() != CHANGES_HEADER {
        return Err(err(1, format!("the header must be {CHANGES_HEADER}")));
    }
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        let line = i as u64 + 2;
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() != 6 {
            return Err(err(line, format!("{} fields, expected 6", f.len())));
        }
        let effective_from = Date::parse(f[0])
            .ok_or_else(|| err(line, format!("effective_from '{}' is not YYYY-MM-DD", f[0])))?;
        let model = PricingModel::parse(f[1])
            .ok_or_else(|| err(line, format!("pricing_model '{}' is not CBP or PMP", f[1])))?;
        let market = markets.market(f[2]).ok_or_else(|| {
            err(
                line,
                format!("market '{}' is not a market of markets.csv", f[2]),
            )
        })?;
        let category = Category::parse(f[3])
            .filter(|c| !matches!(c, Category::ReferralConversion | Category::MarketingLite))
            .ok_or_else(|| err(line, format!("category '{}' is not a rate category", f[3])))?;
        if !matches!(f[4], "up" | "down" | "new") {
            return Err(err(
                line,
                format!("change '{}' is not up, down or new", f[4]),
            ));
        }
        if f[5].is_empty() {
            return Err(err(line, "a change needs its source".into()));
        }
        out.push(MetaChange {
            effective_from,
            model,
            market,
            category,
            change: f[4].to_string(),
            source: f[5].to_string(),
            line,
        });
    }
    Ok(out)
}

/// A version Meta published that the rate book lacks for a currency it prices: from
/// `change.effective_from` on, bills would rest on `in_force`, the older price.
#[derive(Clone, Debug)]
pub struct Stale<'a> {
    pub change: &'a MetaChange,
    pub currency: Currency,
    pub in_force: &'a RateVersion,
}

/// Every (change, currency) where the book holds an older version of the changed key but none
/// of the change's date, neither a rate nor a known gap, for each currency of `currencies`.
pub fn stale<'a>(
    book: &'a RateBook,
    changes: &'a [MetaChange],
    currencies: &[Currency],
) -> Vec<Stale<'a>> {
    let mut out = Vec::new();
    for change in changes {
        for &currency in currencies {
            let key = RateKey {
                currency,
                model: change.model,
                market: change.market,
                category: change.category,
            };
            let versions = book.versions(&key);
            if versions
                .iter()
                .any(|v| v.effective_from == change.effective_from)
            {
                continue;
            }
            if let Some(older) = versions
                .iter()
                .rev()
                .find(|v| v.effective_from < change.effective_from)
            {
                out.push(Stale {
                    change,
                    currency,
                    in_force: older,
                });
            }
        }
    }
    out
}

/// The currencies the book prices anything in, in code order.
pub fn currencies(book: &RateBook) -> Vec<Currency> {
    let mut out: Vec<Currency> = book.iter().map(|(k, _)| k.currency).collect();
    out.sort();
    out.dedup();
    out
}
