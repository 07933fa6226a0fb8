//! `wabill rates list`: what a month's bills in one currency rest on, per market and category:
//! the rate version in force (date, rate or tiers, source), the known gaps and the missing rates
//! (decisions.md D63), and per market the calling card in force or its absence (D148). The
//! listings themselves are the core's (`wabill_rating::listing`).

use anyhow::Result;
use std::fmt::Write as _;
use std::path::PathBuf;
use wabill_rating::calls::CallRateVersion;
use wabill_rating::listing::{self, CallEntry, Entry, What};
use wabill_rating::{Currency, Month, RateVersion, Tariff};

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The billing currency (ISO 4217, for example USD).
    #[arg(long)]
    pub currency: String,
    /// The month (YYYY-MM, in the WABA's timezone).
    #[arg(long)]
    pub month: String,
    /// Rate data from DIR (its rates files, markets.csv and rate_gaps.csv) instead of the bundled data.
    #[arg(long, value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
    pub format: String,
}

pub fn run(args: &ListArgs) -> Result<i32> {
    let Some(month) = Month::parse(&args.month) else {
        eprintln!("error: --month '{}' is not a month YYYY-MM", args.month);
        return Ok(2);
    };
    let Some(currency) = Currency::parse(&args.currency.to_ascii_uppercase()) else {
        eprintln!(
            "error: --currency '{}' is not an ISO 4217 code",
            args.currency
        );
        return Ok(2);
    };
    let tariff = crate::tariff::load(args.rates.as_deref())?;
    let mut priced = wabill_rating::changes::currencies(&tariff.rates);
    priced.extend(tariff.call_rates.currencies());
    priced.sort();
    priced.dedup();
    if !priced.contains(&currency) {
        let names: Vec<String> = priced.iter().map(|c| c.to_string()).collect();
        eprintln!(
            "error: the rate data has no rate in {currency}; it prices {}",
            names.join(", ")
        );
        return Ok(2);
    }
    let era = listing::era_on(month.first_day());
    if listing::categories(era).is_empty() {
        eprintln!("error: {month} is before 2023-06, the first month wabill prices");
        return Ok(2);
    }
    let entries = listing::list(&tariff, currency, month);
    let calls = listing::list_calls(&tariff, currency, month);
    let data = match &args.rates {
        None => "bundled data (data/rates.csv, data/rate_gaps.csv; sources in data/SOURCES.md)"
            .to_string(),
        Some(d) => format!("rate data of {}", d.display()),
    };
    let out = match args.format.as_str() {
        "json" => json(&tariff, &entries, &calls),
        "csv" => csv(&tariff, &entries, &calls),
        _ => {
            let mut out = table(
                &tariff,
                &entries,
                currency,
                month,
                era.model().as_str(),
                &data,
            );
            calls_table(
                &mut out,
                &tariff,
                &calls,
                currency,
                month,
                args.rates.is_none(),
            );
            out
        }
    };
    out!("{out}");
    Ok(0)
}

fn status(e: &Entry<'_>) -> &'static str {
    match e.what {
        What::Rate(_) => "rate",
        What::Gap(_) => "gap",
        What::Missing => "missing",
    }
}

/// The rate as the card writes it: the flat rate, or each tier `min:max=rate`.
fn rate_text(v: &RateVersion) -> String {
    if !v.is_tiered() {
        return v.steps.first().map_or(String::new(), |s| s.1.to_string());
    }
    v.steps
        .iter()
        .map(|(t, r)| match t {
            Some(t) => format!("{t}={r}"),
            None => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// (rate, from, source or reason) of an entry.
fn cells(e: &Entry<'_>) -> (String, String, String) {
    match e.what {
        What::Rate(v) => (rate_text(v), v.effective_from.to_string(), v.source.clone()),
        What::Gap(v) => (
            String::new(),
            v.effective_from.to_string(),
            v.gap.clone().unwrap_or_default(),
        ),
        What::Missing => (String::new(), String::new(), String::new()),
    }
}

fn table(
    tariff: &Tariff,
    entries: &[Entry<'_>],
    currency: Currency,
    month: Month,
    model: &str,
    data: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Rates in force in {month} for {currency} ({model}), from the {data}"
    );
    let rows: Vec<[String; 5]> = entries
        .iter()
        .filter(|e| matches!(e.what, What::Rate(_)))
        .map(|e| {
            let (rate, from, source) = cells(e);
            [
                tariff.markets.market_name(e.market).to_string(),
                e.category.as_str().to_string(),
                rate,
                from,
                source,
            ]
        })
        .collect();
    write_aligned(
        &mut out,
        ["market", "category", "rate", "from", "source"],
        &rows,
    );
    let gaps: Vec<&Entry<'_>> = entries
        .iter()
        .filter(|e| matches!(e.what, What::Gap(_)))
        .collect();
    let _ = writeln!(
        out,
        "\nGaps: {} (Meta changed the rate on that date and no value is bundled; a message priced here is an error until a row of that date is added: `wabill rates import --into DIR` for Meta's PMP cards)",
        gaps.len()
    );
    for e in gaps {
        let (_, from, reason) = cells(e);
        let _ = writeln!(
            out,
            "  {} {} from {from}: {reason}",
            tariff.markets.market_name(e.market),
            e.category.as_str()
        );
    }
    let missing: Vec<&Entry<'_>> = entries
        .iter()
        .filter(|e| matches!(e.what, What::Missing))
        .collect();
    let _ = writeln!(
        out,
        "\nMissing: {} (no rate at all; a message priced here is an error)",
        missing.len()
    );
    for e in missing {
        let _ = writeln!(
            out,
            "  {} {}",
            tariff.markets.market_name(e.market),
            e.category.as_str()
        );
    }
    out
}

fn write_aligned(out: &mut String, head: [&str; 5], rows: &[[String; 5]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: [&str; 5]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = width[i] - c.chars().count();
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, head);
    for r in rows {
        line(out, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
}

fn csv(tariff: &Tariff, entries: &[Entry<'_>], calls: &[CallEntry<'_>]) -> String {
    // RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from("market,category,status,rate,effective_from,source_or_reason\n");
    for e in entries {
        let (rate, from, source) = cells(e);
        let row = [
            tariff.markets.market_name(e.market),
            e.category.as_str(),
            status(e),
            &rate,
            &from,
            &source,
        ];
        let row: Vec<String> = row.iter().map(|c| field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    // Calls: category `call`, the per-minute rate or tiers.
    for e in calls {
        let (status, rate, from, source) = call_cells(e);
        let row = [
            tariff.markets.market_name(e.market),
            "call",
            status,
            &rate,
            &from,
            &source,
        ];
        let row: Vec<String> = row.iter().map(|c| field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn json(tariff: &Tariff, entries: &[Entry<'_>], calls: &[CallEntry<'_>]) -> String {
    let mut items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut o = serde_json::json!({
                "market": tariff.markets.market_name(e.market),
                "category": e.category.as_str(),
                "status": status(e),
            });
            match e.what {
                What::Rate(v) => {
                    o["effective_from"] = v.effective_from.to_string().into();
                    o["source"] = v.source.clone().into();
                    if v.is_tiered() {
                        o["tiers"] = v
                            .steps
                            .iter()
                            .map(|(t, r)| {
                                serde_json::json!({
                                    "tier": t.map(|t| t.to_string()),
                                    "rate": r.to_string(),
                                })
                            })
                            .collect::<Vec<_>>()
                            .into();
                    } else {
                        o["rate"] = rate_text(v).into();
                    }
                }
                What::Gap(v) => {
                    o["effective_from"] = v.effective_from.to_string().into();
                    o["reason"] = v.gap.clone().unwrap_or_default().into();
                }
                What::Missing => {}
            }
            o
        })
        .collect();
    items.extend(calls.iter().map(|e| {
        let mut o = serde_json::json!({
            "market": tariff.markets.market_name(e.market),
            "category": "call",
            "status": call_cells(e).0,
        });
        if let Some(v) = e.version {
            o["effective_from"] = v.effective_from.to_string().into();
            o["source"] = v.source.clone().into();
            if v.steps.iter().any(|s| s.0.is_some()) {
                o["tiers"] = v
                    .steps
                    .iter()
                    .map(|(t, r)| {
                        serde_json::json!({
                            "tier": t.map(|t| t.to_string()),
                            "rate_per_minute": r.to_string(),
                        })
                    })
                    .collect::<Vec<_>>()
                    .into();
            } else {
                o["rate_per_minute"] = call_rate_text(v).into();
            }
        }
        o
    }));
    serde_json::to_string_pretty(&items).expect("json") + "\n"
}

/// The per-minute rate as the card writes it: one rate, or each tier `min:max=rate`.
fn call_rate_text(v: &CallRateVersion) -> String {
    v.steps
        .iter()
        .map(|(t, r)| match t {
            Some(t) => format!("{t}={r}"),
            None => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// (status, rate, from, source) of a calls entry.
fn call_cells(e: &CallEntry<'_>) -> (&'static str, String, String, String) {
    match e.version {
        Some(v) => (
            "rate",
            call_rate_text(v),
            v.effective_from.to_string(),
            v.source.clone(),
        ),
        None => ("missing", String::new(), String::new(), String::new()),
    }
}

/// The calls section of the table: the cards in force, and the markets without one. With no
/// card at all in the currency, one paragraph says so instead of listing every market.
fn calls_table(
    out: &mut String,
    tariff: &Tariff,
    calls: &[CallEntry<'_>],
    currency: Currency,
    month: Month,
    bundled: bool,
) {
    let missing: Vec<&CallEntry<'_>> = calls.iter().filter(|e| e.version.is_none()).collect();
    let markets = tariff.markets.markets_on(month.first_day()).len();
    if !tariff.call_rates.currencies().contains(&currency) {
        let holds = if bundled {
            "the bundled data holds none: data/SOURCES.md, \"Calling\""
        } else {
            "its call_rates.csv has none in this currency"
        };
        let _ = writeln!(
            out,
            "\nCalls: no calling card in {currency} ({holds}). In {month} an answered business-initiated call to any of the {markets} \
             markets is an error (no calling rate) until Meta's calling card is imported: \
             `wabill rates import CARD.csv --effective DATE --into DIR`, then `--rates DIR`. \
             User-initiated and unanswered calls are free and need no card."
        );
        return;
    }
    let _ = writeln!(
        out,
        "\nCalls in force in {month} for {currency} (business-initiated, per minute; tiers in minutes a month): {} of {markets} markets",
        markets - missing.len()
    );
    let rows: Vec<[String; 5]> = calls
        .iter()
        .filter(|e| e.version.is_some())
        .map(|e| {
            let (_, rate, from, source) = call_cells(e);
            [
                tariff.markets.market_name(e.market).to_string(),
                "call".to_string(),
                rate,
                from,
                source,
            ]
        })
        .collect();
    write_aligned(out, ["market", "category", "rate", "from", "source"], &rows);
    let _ = writeln!(
        out,
        "\nCalls missing: {} (no calling card; an answered business-initiated call here is an error, free calls need none)",
        missing.len()
    );
    for e in missing {
        let _ = writeln!(out, "  {}", tariff.markets.market_name(e.market));
    }
}
