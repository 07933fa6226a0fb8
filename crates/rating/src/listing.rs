//! What a month's bills rest on, for one currency: per market and category, the rate version in
//! force (its date, rate or tiers and source), the known gaps, and the markets with no rate a
//! charge needs (`wabill rates list`; decisions.md D63); and the same for calls: per market
//! the calling card version in force, or none (D148).

use crate::calls::CallRateVersion;
use crate::markets::MarketId;
use crate::model::{Category, Era};
use crate::money::Currency;
use crate::rates::{RateKey, RateVersion};
use crate::tariff::Tariff;
use crate::time::{Date, Month};

/// One line of the listing.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub market: MarketId,
    pub category: Category,
    pub what: What<'a>,
}

#[derive(Clone, Debug)]
pub enum What<'a> {
    /// A version with a price in force during the month (from its first day, or from a later
    /// day of the month when a version starts inside it).
    Rate(&'a RateVersion),
    /// A known gap in force: Meta changed the price on its date and no value is bundled.
    Gap(&'a RateVersion),
    /// No version at all for a category every charge of this market may need in this era.
    Missing,
}

/// The categories a market's charges can need a rate of in an era (authentication-international
/// is optional: a market without it bills authentication).
pub fn categories(era: Era) -> &'static [Category] {
    match era {
        Era::Before => &[],
        Era::Cbp | Era::CbpFreeService => &[
            Category::Marketing,
            Category::Utility,
            Category::Authentication,
            Category::AuthenticationInternational,
            Category::Service,
        ],
        Era::Pmp => &[
            Category::Marketing,
            Category::Utility,
            Category::Authentication,
            Category::AuthenticationInternational,
        ],
        Era::PmpChargedService => &[
            Category::Marketing,
            Category::Utility,
            Category::Authentication,
            Category::AuthenticationInternational,
            Category::Service,
        ],
    }
}

/// The era of a local date.
pub fn era_on(date: Date) -> Era {
    Era::starts()
        .iter()
        .rev()
        .find(|(_, start)| *start <= date)
        .map_or(Era::Before, |(e, _)| *e)
}

/// The listing of `month` for `currency`: markets in force on the month's first day, by name,
/// each category in the era's order.
pub fn list(tariff: &Tariff, currency: Currency, month: Month) -> Vec<Entry<'_>> {
    let first = month.first_day();
    let next = month.next().first_day();
    let era = era_on(first);
    let mut out = Vec::new();
    for market in tariff.markets.markets_on(first) {
        for &category in categories(era) {
            let key = RateKey {
                currency,
                model: era.model(),
                market,
                category,
            };
            let versions = tariff.rates.versions(&key);
            let in_force = versions.iter().rev().find(|v| v.effective_from <= first);
            let later = versions
                .iter()
                .filter(|v| first < v.effective_from && v.effective_from < next);
            let mut any = false;
            for v in in_force.into_iter().chain(later) {
                any = true;
                let what = if v.gap.is_some() {
                    What::Gap(v)
                } else {
                    What::Rate(v)
                };
                out.push(Entry {
                    market,
                    category,
                    what,
                });
            }
            if !any && category != Category::AuthenticationInternational {
                out.push(Entry {
                    market,
                    category,
                    what: What::Missing,
                });
            }
        }
    }
    out
}

/// One market's line of the calls listing.
#[derive(Clone, Debug)]
pub struct CallEntry<'a> {
    pub market: MarketId,
    /// The calling card version in force (from the month's first day, or from a later day of
    /// the month when one starts inside it); `None`: an answered business-initiated call to
    /// this market is an error (no calling rate), while free calls need no card.
    pub version: Option<&'a CallRateVersion>,
}

/// The calls listing of `month` for `currency`: markets in force on the month's first day.
pub fn list_calls(tariff: &Tariff, currency: Currency, month: Month) -> Vec<CallEntry<'_>> {
    let first = month.first_day();
    let next = month.next().first_day();
    let mut out = Vec::new();
    for market in tariff.markets.markets_on(first) {
        let versions = tariff.call_rates.versions(currency, market);
        let in_force = versions.iter().rev().find(|v| v.effective_from <= first);
        let later = versions
            .iter()
            .filter(|v| first < v.effective_from && v.effective_from < next);
        let mut any = false;
        for v in in_force.into_iter().chain(later) {
            any = true;
            out.push(CallEntry {
                market,
                version: Some(v),
            });
        }
        if !any {
            out.push(CallEntry {
                market,
                version: None,
            });
        }
    }
    out
}
