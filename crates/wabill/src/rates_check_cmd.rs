//! `wabill rates check`: what the rate data covers, before anything is billed with it: for
//! messages and for calls, the currencies with a card and the ones Meta bills in without one,
//! every version (date, model, currency, markets, tiers), the known gaps, and, for calls,
//! whether there is any card at all (decisions.md D148).

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use wabill_rating::{data, Currency, Date, Tariff};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Rate data from DIR (its rates files, markets.csv, rate_gaps.csv and call_rates.csv)
    /// instead of the bundled data.
    #[arg(long, value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// One messaging version: the rows sharing (effective_from, model, currency).
#[derive(Default)]
struct Version {
    markets: BTreeSet<String>,
    rates: usize,
    tiered: usize,
    gaps: usize,
}

/// One calling card version: the markets of (effective_from, currency).
#[derive(Default)]
struct CallVersion {
    markets: BTreeSet<String>,
    tiered: usize,
}

struct Coverage {
    data: String,
    currencies: Vec<Currency>,
    versions: BTreeMap<(Date, &'static str, Currency), Version>,
    call_currencies: Vec<Currency>,
    call_versions: BTreeMap<(Date, Currency), CallVersion>,
}

impl Coverage {
    fn of(tariff: &Tariff, data: String) -> Coverage {
        let mut versions: BTreeMap<(Date, &'static str, Currency), Version> = BTreeMap::new();
        for (key, v) in tariff.rates.iter() {
            let e = versions
                .entry((v.effective_from, key.model.as_str(), key.currency))
                .or_default();
            if v.gap.is_some() {
                e.gaps += 1;
                continue;
            }
            e.markets
                .insert(tariff.markets.market_name(key.market).to_string());
            e.rates += 1;
            if v.is_tiered() {
                e.tiered += 1;
            }
        }
        let mut call_versions: BTreeMap<(Date, Currency), CallVersion> = BTreeMap::new();
        for (currency, market, v) in tariff.call_rates.iter() {
            let e = call_versions
                .entry((v.effective_from, currency))
                .or_default();
            e.markets
                .insert(tariff.markets.market_name(market).to_string());
            if v.steps.iter().any(|s| s.0.is_some()) {
                e.tiered += 1;
            }
        }
        Coverage {
            data,
            currencies: wabill_rating::changes::currencies(&tariff.rates),
            versions,
            call_currencies: tariff.call_rates.currencies(),
            call_versions,
        }
    }
}

/// Meta's billing currencies the data has no card in.
fn uncovered(covered: &[Currency]) -> Vec<&'static str> {
    let have: BTreeSet<&str> = covered.iter().map(|c| c.as_str()).collect();
    let mut out: Vec<&str> = data::META_CURRENCIES
        .iter()
        .copied()
        .filter(|c| !have.contains(c))
        .collect();
    out.sort_unstable();
    out
}

fn codes(cs: &[Currency]) -> String {
    cs.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

fn table(c: &Coverage) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What the {} covers", c.data);
    let _ = writeln!(out, "\nMessages");
    let _ = writeln!(out, "  currencies: {}", codes(&c.currencies));
    let missing = uncovered(&c.currencies);
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "  no card in {} of Meta's {} billing currencies: {} (a message of a WABA billed in \
             one of them is an error; `wabill rates import --into DIR` of Meta's card fills it)",
            missing.len(),
            data::META_CURRENCIES.len(),
            missing.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  versions (effective_from model currency: markets, rates, tiered rates, gaps):"
    );
    for ((from, model, currency), v) in &c.versions {
        let _ = writeln!(
            out,
            "    {from} {model} {currency}: {} markets, {} rates, {} tiered, {} gaps",
            v.markets.len(),
            v.rates,
            v.tiered,
            v.gaps
        );
    }
    let gaps: usize = c.versions.values().map(|v| v.gaps).sum();
    let tiered: usize = c.versions.values().map(|v| v.tiered).sum();
    let _ = writeln!(
        out,
        "  known gaps: {gaps} (a message priced by one is an error; `wabill rates list` names them)"
    );
    if tiered == 0 {
        let _ = writeln!(
            out,
            "  volume tiers: none (the list rate applies to every message, however many; Meta's \
             volume-tier cards are imported with `wabill rates import`)"
        );
    } else {
        let _ = writeln!(out, "  volume tiers: {tiered} tiered rates");
    }
    let _ = writeln!(out, "\nCalls (business-initiated, per minute)");
    if c.call_versions.is_empty() {
        let _ = writeln!(
            out,
            "  no calling card in any currency: every answered business-initiated call is an \
             error (no calling rate) until Meta's calling card is imported (`wabill rates import \
             CARD.csv --effective DATE --into DIR`, then `--rates DIR`; data/SOURCES.md, \
             \"Calling\"). User-initiated and unanswered calls are free and need no card."
        );
        return out;
    }
    let _ = writeln!(out, "  currencies: {}", codes(&c.call_currencies));
    let missing = uncovered(&c.call_currencies);
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "  no card in {} of Meta's {} billing currencies: {}",
            missing.len(),
            data::META_CURRENCIES.len(),
            missing.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  versions (effective_from currency: markets, tiered markets):"
    );
    for ((from, currency), v) in &c.call_versions {
        let _ = writeln!(
            out,
            "    {from} {currency}: {} markets, {} tiered",
            v.markets.len(),
            v.tiered
        );
    }
    out
}

fn json(c: &Coverage) -> String {
    let strs = |cs: &[Currency]| cs.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let messages: Vec<serde_json::Value> = c
        .versions
        .iter()
        .map(|((from, model, currency), v)| {
            serde_json::json!({
                "effective_from": from.to_string(),
                "pricing_model": model,
                "currency": currency.as_str(),
                "markets": v.markets.len(),
                "rates": v.rates,
                "tiered": v.tiered,
                "gaps": v.gaps,
            })
        })
        .collect();
    let calls: Vec<serde_json::Value> = c
        .call_versions
        .iter()
        .map(|((from, currency), v)| {
            serde_json::json!({
                "effective_from": from.to_string(),
                "currency": currency.as_str(),
                "markets": v.markets.len(),
                "tiered": v.tiered,
            })
        })
        .collect();
    let o = serde_json::json!({
        "data": c.data,
        "messages": {
            "currencies": strs(&c.currencies),
            "currencies_without_card": uncovered(&c.currencies),
            "versions": messages,
            "gaps": c.versions.values().map(|v| v.gaps).sum::<usize>(),
            "tiered": c.versions.values().map(|v| v.tiered).sum::<usize>(),
        },
        "calls": {
            "currencies": strs(&c.call_currencies),
            "currencies_without_card": uncovered(&c.call_currencies),
            "versions": calls,
        },
    });
    serde_json::to_string_pretty(&o).expect("json") + "\n"
}

pub fn run(args: &CheckArgs) -> Result<i32> {
    let tariff = crate::tariff::load(args.rates.as_deref())?;
    let data = match &args.rates {
        None => "bundled data (data/rates.csv, data/rate_gaps.csv, data/call_rates.csv; \
                 sources in data/SOURCES.md)"
            .to_string(),
        Some(d) => format!("rate data of {}", d.display()),
    };
    let c = Coverage::of(&tariff, data);
    let out = match args.format.as_str() {
        "json" => json(&c),
        _ => table(&c),
    };
    out!("{out}");
    Ok(0)
}
