//! Rating the synthetic month and summing its charges into the estimate: per market ×
//! category, messages, charged ones, free ones by reason, the rates and tiers applied and the
//! amount; and a total per currency. Also which month `--compare` prices the same traffic in.

use crate::error::EstimateError;
use crate::input::EstimateInput;
use crate::synth::{self, ResolvedLine, SynthStats, SyntheticMonth};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use wabill_rating::calls::{rate_calls, CallDirection, CallError, CallType};
use wabill_rating::{
    rate, Category, Charge, Currency, Date, Decimal, Era, Month, PricingModel, PricingType,
    RateOptions, RatingError, Tariff, TierRange,
};

/// What a month of the input's traffic costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub month: Month,
    pub era: Era,
    /// First day of the month's pricing era.
    pub era_start: Date,
    pub currency: Currency,
    pub timezone: Tz,
    pub phones: u32,
    /// Sorted by market, then category.
    pub rows: Vec<Row>,
    /// One per currency (an estimate has one WABA, so one currency).
    pub totals: Vec<Total>,
    /// The traffic as synthesized: each line's users' country and how its messages opened.
    pub lines: Vec<ResolvedLine>,
    pub stats: SynthStats,
    /// The month's calls as priced; None when there are none or, in a comparison month, when
    /// the rate data has no calling rate for them (then `calls_not_priced` says which).
    pub calls: Option<CallRow>,
    /// Why the comparison month shows no calls: the missing calling rate (D163).
    pub calls_not_priced: Option<String>,
}

/// The month's calls: one market (the primary country's), counts, billed minutes and amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    pub market: String,
    /// ISO 3166 alpha-2 of the callees.
    pub country: String,
    pub currency: Currency,
    pub calls: u64,
    /// Placed by the business: charged.
    pub business_initiated: u64,
    /// Placed by the users: free.
    pub user_initiated: u64,
    /// Seconds talked, all calls.
    pub seconds: u64,
    /// Pulses (tenths of a minute) of the charged calls: what the tiers count.
    pub charged_pulses: u64,
    /// The distinct (tier, per-minute rate) pairs charged, by tier then rate.
    pub prices: Vec<CallPrice>,
    pub amount: Decimal,
}

/// Calls charged at one per-minute rate (of one tier, where the card has tiers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPrice {
    pub tier: Option<TierRange>,
    pub rate: Decimal,
    pub calls: u64,
    pub pulses: u64,
    pub amount: Decimal,
}

/// Counts and amount of a row or total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    /// Priced at a rate (`regular`).
    pub charged: u64,
    /// Free inside a customer service window (`free_customer_service`).
    pub free_customer_service: u64,
    /// Free in a free entry point window (`free_entry_point`).
    pub free_entry_point: u64,
    /// Covered by a monthly free allowance (`free_tier`).
    pub free_tier: u64,
    pub amount: Decimal,
}

impl Tally {
    fn add(&mut self, c: &Charge<'_>) {
        self.messages += 1;
        match c.pricing_type {
            PricingType::Regular => self.charged += 1,
            PricingType::FreeCustomerService => self.free_customer_service += 1,
            PricingType::FreeEntryPoint => self.free_entry_point += 1,
            PricingType::FreeTier => self.free_tier += 1,
            PricingType::Undelivered => unreachable!("every synthetic message is delivered"),
        }
        self.amount += c.amount;
    }
}

/// One market × category of the estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub market: String,
    /// The message's own category: marketing, utility, authentication,
    /// authentication_international (as the rating core decided it) or service.
    pub category: Category,
    pub currency: Currency,
    pub tally: Tally,
    /// The distinct (tier, rate) pairs charged, by tier then rate.
    pub prices: Vec<Price>,
}

/// Messages charged at one rate (of one tier, where the rate data has tiers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub tier: Option<TierRange>,
    pub rate: Decimal,
    pub messages: u64,
    pub amount: Decimal,
}

/// The estimate's total in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Total {
    pub currency: Currency,
    /// The messages' counts and amount.
    pub tally: Tally,
    /// The calls' amount (zero without calls).
    pub calls: Decimal,
}

impl Total {
    /// Messages and calls.
    pub fn amount(&self) -> Decimal {
        self.tally.amount + self.calls
    }
}

/// An estimate and the same traffic priced in the last month of the previous era.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub estimate: Estimate,
    pub previous: Estimate,
}

impl Comparison {
    /// Per currency, this month's total minus the previous era's; calls count only when both
    /// months priced them, so that like is compared with like (D163).
    pub fn change(&self) -> Vec<(Currency, Decimal)> {
        let calls = self.estimate.calls.is_some() && self.previous.calls.is_some();
        let amount = |t: &Total| if calls { t.amount() } else { t.tally.amount };
        let mut by: BTreeMap<Currency, Decimal> = BTreeMap::new();
        for t in &self.estimate.totals {
            *by.entry(t.currency).or_default() += amount(t);
        }
        for t in &self.previous.totals {
            *by.entry(t.currency).or_default() += -amount(t);
        }
        by.into_iter().collect()
    }
}

/// The era a month is priced under (eras change on the first of a month, at local midnight, so
/// a month lies in one era) and that era's first day.
pub fn era_of(month: Month) -> Result<(Era, Date), EstimateError> {
    synth::check_month(month)?;
    let first = month.first_day();
    Ok(Era::starts()
        .into_iter()
        .rev()
        .find(|(_, start)| *start <= first)
        .expect("checked: on or after 2023-06"))
}

/// The month `--compare` uses: the last month before the era of `month` began
/// (2026-11 → 2026-09, 2025-12 → 2025-06; decisions.md D22).
pub fn compare_month(month: Month) -> Result<Month, EstimateError> {
    let (era, start) = era_of(month)?;
    if era == Era::Cbp {
        return Err(EstimateError::NoPreviousEra { month });
    }
    Ok(Month(start.month().0 - 1))
}

/// Human name of an era, as in rules.md.
pub fn era_name(era: Era) -> &'static str {
    match era {
        Era::Before => "before conversation categories",
        Era::Cbp => "CBP",
        Era::CbpFreeService => "CBP, free service",
        Era::Pmp => "PMP",
        Era::PmpChargedService => "PMP, charged service",
    }
}

/// The pricing model of an era, as Meta writes it.
pub fn model_name(era: Era) -> &'static str {
    match era.model() {
        PricingModel::Cbp => "CBP",
        PricingModel::Pmp => "PMP",
    }
}

/// Estimates the input's month.
pub fn estimate(tariff: &Tariff, input: &EstimateInput) -> Result<Estimate, EstimateError> {
    estimate_in(tariff, input, input.month)
}

/// Estimates the input's month and the same traffic in [`compare_month`].
pub fn estimate_with_compare(
    tariff: &Tariff,
    input: &EstimateInput,
) -> Result<Comparison, EstimateError> {
    let previous_month = compare_month(input.month)?;
    Ok(Comparison {
        estimate: estimate(tariff, input)?,
        previous: estimate_at(tariff, input, previous_month, false)?,
    })
}

/// Estimates the input's traffic sent in `send_month` (users chosen by the input's month).
pub fn estimate_in(
    tariff: &Tariff,
    input: &EstimateInput,
    send_month: Month,
) -> Result<Estimate, EstimateError> {
    estimate_at(tariff, input, send_month, true)
}

/// [`estimate_in`]; without `calls_required`, calls with no calling rate are left out and said
/// so rather than an error (the comparison month, D163).
fn estimate_at(
    tariff: &Tariff,
    input: &EstimateInput,
    send_month: Month,
    calls_required: bool,
) -> Result<Estimate, EstimateError> {
    let month = synth::synthesize(tariff, input, send_month)?;
    let mut e = price(tariff, input, &month)?;
    match price_calls(tariff, &month) {
        Ok(None) => {}
        Ok(Some(row)) => {
            match e.totals.iter_mut().find(|t| t.currency == row.currency) {
                Some(t) => t.calls += row.amount,
                None => e.totals.push(Total {
                    currency: row.currency,
                    tally: Tally::default(),
                    calls: row.amount,
                }),
            }
            e.calls = Some(row);
        }
        Err(err @ EstimateError::MissingCallRate { .. }) if !calls_required => {
            e.calls_not_priced = Some(err.to_string());
        }
        Err(err) => return Err(err),
    }
    Ok(e)
}

/// Rates the synthetic month's calls with the core's call rater and sums them (one market:
/// the calls go to the primary country).
pub fn price_calls(
    tariff: &Tariff,
    month: &SyntheticMonth,
) -> Result<Option<CallRow>, EstimateError> {
    let Some(country) = &month.call_country else {
        return Ok(None);
    };
    let accounts: Vec<&wabill_rating::Account<'_>> = month.accounts.iter().collect();
    let rated = rate_calls(&tariff.markets, &tariff.call_rates, &accounts, &month.calls);
    if let Some(first) = rated.errors.first() {
        let mut missing: Option<(Currency, String, Date, u64)> = None;
        for e in &rated.errors {
            if let CallError::MissingRate {
                currency,
                market,
                date,
                ..
            } = e
            {
                let m = missing.get_or_insert((*currency, market.clone(), *date, 0));
                m.2 = m.2.min(*date);
                m.3 += 1;
            }
        }
        return Err(match missing {
            Some((currency, market, date, calls)) => EstimateError::MissingCallRate {
                currency,
                market,
                date,
                calls,
            },
            None => EstimateError::Rating {
                code: first.code(),
                message: first.to_string(),
            },
        });
    }
    let mut row = CallRow {
        market: String::new(),
        country: country.clone(),
        currency: month.accounts[0].currency,
        calls: 0,
        business_initiated: 0,
        user_initiated: 0,
        seconds: 0,
        charged_pulses: 0,
        prices: Vec::new(),
        amount: Decimal::ZERO,
    };
    type PriceKey = (Option<(u64, Option<u64>)>, Decimal);
    let mut prices: BTreeMap<PriceKey, CallPrice> = BTreeMap::new();
    for c in &rated.charges {
        if let Some(m) = c.market {
            row.market = tariff.markets.market_name(m).to_string();
        }
        row.calls += 1;
        row.seconds += c.seconds;
        match c.direction {
            CallDirection::BusinessInitiated => row.business_initiated += 1,
            CallDirection::UserInitiated => row.user_initiated += 1,
        }
        if let (CallType::Regular, Some(rate)) = (c.call_type, c.rate) {
            row.charged_pulses += c.pulses;
            let p = prices
                .entry((c.tier.map(|t| (t.min, t.max)), rate))
                .or_insert(CallPrice {
                    tier: c.tier,
                    rate,
                    calls: 0,
                    pulses: 0,
                    amount: Decimal::ZERO,
                });
            p.calls += 1;
            p.pulses += c.pulses;
            p.amount += c.amount;
        }
        row.amount += c.amount;
    }
    row.prices = prices.into_values().collect();
    Ok(Some(row))
}

/// Rates a synthetic month and sums its charges.
pub fn price(
    tariff: &Tariff,
    input: &EstimateInput,
    month: &SyntheticMonth,
) -> Result<Estimate, EstimateError> {
    let (era, era_start) = era_of(month.month)?;
    let rated = rate(
        tariff,
        &month.accounts,
        &month.events,
        RateOptions::default(),
    );
    if !rated.errors.is_empty() {
        return Err(rating_errors(&rated.errors));
    }
    debug_assert_eq!(rated.notes.non_template_outside_window, 0);
    let (rows, totals) = aggregate(tariff, &month.lines, &rated.charges);
    Ok(Estimate {
        month: month.month,
        era,
        era_start,
        currency: input.currency,
        timezone: input.timezone,
        phones: input.phones,
        rows,
        totals,
        lines: month.lines.clone(),
        stats: month.stats.clone(),
        calls: None,
        calls_not_priced: None,
    })
}

/// The row category of a charge: its own category, except where a free window replaced it
/// (`referral_conversion`), where it is the category the line sent (decisions.md D20).
pub fn row_category(c: &Charge<'_>, lines: &[ResolvedLine]) -> Category {
    match c.category {
        Category::Marketing
        | Category::Utility
        | Category::Authentication
        | Category::AuthenticationInternational
        | Category::Service => c.category,
        other => synth::line_of_id(c.id)
            .and_then(|i| lines.get(i))
            .map_or(other, |l| l.category.category()),
    }
}

/// Sums charges per (market, category) and per currency.
pub fn aggregate(
    tariff: &Tariff,
    lines: &[ResolvedLine],
    charges: &[Charge<'_>],
) -> (Vec<Row>, Vec<Total>) {
    type PriceKey = (Option<(u64, Option<u64>)>, Decimal);
    type RowKey<'t> = (&'t str, Category, Currency);
    let mut rows: BTreeMap<RowKey<'_>, (Tally, BTreeMap<PriceKey, Price>)> = BTreeMap::new();
    let mut totals: BTreeMap<Currency, Tally> = BTreeMap::new();
    for c in charges {
        let market = tariff.markets.market_name(c.market);
        let (tally, prices) = rows
            .entry((market, row_category(c, lines), c.currency))
            .or_default();
        tally.add(c);
        totals.entry(c.currency).or_default().add(c);
        if let (PricingType::Regular, Some(rate)) = (c.pricing_type, c.rate) {
            let p = prices
                .entry((c.tier.map(|t| (t.min, t.max)), rate))
                .or_insert(Price {
                    tier: c.tier,
                    rate,
                    messages: 0,
                    amount: Decimal::ZERO,
                });
            p.messages += 1;
            p.amount += c.amount;
        }
    }
    let rows = rows
        .into_iter()
        .map(|((market, category, currency), (tally, prices))| Row {
            market: market.to_string(),
            category,
            currency,
            tally,
            prices: prices.into_values().collect(),
        })
        .collect();
    let totals = totals
        .into_iter()
        .map(|(currency, tally)| Total {
            currency,
            tally,
            calls: Decimal::ZERO,
        })
        .collect();
    (rows, totals)
}

/// The core's errors as one estimate error: missing rates grouped by what is missing (the
/// core's own text, naming currency, model, market, category and the first date), anything
/// else as it came.
fn rating_errors(errors: &[RatingError]) -> EstimateError {
    type Key = (Currency, &'static str, String, &'static str, String);
    let mut missing: BTreeMap<Key, (RatingError, u64)> = BTreeMap::new();
    for e in errors {
        if let RatingError::MissingRate {
            currency,
            model,
            market,
            category,
            date,
            detail,
            ..
        } = e
        {
            let key = (*currency, *model, market.clone(), *category, detail.clone());
            let entry = missing.entry(key).or_insert((e.clone(), 0));
            entry.1 += 1;
            if let RatingError::MissingRate { date: first, .. } = &mut entry.0 {
                *first = (*first).min(*date);
            }
        }
    }
    if missing.is_empty() {
        let e = &errors[0];
        return EstimateError::Rating {
            code: e.code(),
            message: e.to_string(),
        };
    }
    EstimateError::MissingRate {
        causes: missing
            .into_values()
            .map(|(e, n)| {
                let text = e.to_string();
                // Drop "message out.0.12: ": the id is synthetic, the cause is what matters.
                let cause = text
                    .split_once(": ")
                    .map_or(text.clone(), |x| x.1.to_string());
                (cause, n)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    #[test]
    fn compare_picks_the_last_month_before_the_era_began() {
        assert_eq!(compare_month(m("2026-11")), Ok(m("2026-09")));
        assert_eq!(compare_month(m("2026-10")), Ok(m("2026-09")));
        assert_eq!(compare_month(m("2026-09")), Ok(m("2025-06")));
        assert_eq!(compare_month(m("2025-07")), Ok(m("2025-06")));
        assert_eq!(compare_month(m("2025-03")), Ok(m("2024-10")));
        assert_eq!(compare_month(m("2024-11")), Ok(m("2024-10")));
        assert_eq!(
            compare_month(m("2024-10")).unwrap_err().code(),
            "no_previous_era"
        );
        assert_eq!(
            compare_month(m("2023-05")).unwrap_err().code(),
            "unsupported_month"
        );
    }

    #[test]
    fn eras_of_months() {
        assert_eq!(era_of(m("2023-06")).unwrap().0, Era::Cbp);
        assert_eq!(era_of(m("2026-09")).unwrap().0, Era::Pmp);
        let (era, start) = era_of(m("2027-01")).unwrap();
        assert_eq!(
            (era, start.to_string()),
            (Era::PmpChargedService, "2026-10-01".into())
        );
    }
}
