//! Writing an estimate for people (an aligned table) and for programs (JSON, CSV). Amounts are
//! written exactly, as the rating core computed them; nothing is rounded here.

use crate::input::Target;
use crate::report::{era_name, model_name, CallRow, Comparison, Estimate, Price, Row, Tally};
use serde_json::{json, Value};
use std::fmt::Write as _;
use wabill_rating::calls::tenths_as_minutes;

/// Output formats of `wabill estimate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Writes an estimate, with its comparison month when there is one.
pub fn render(estimate: &Estimate, previous: Option<&Estimate>, format: Format) -> String {
    match format {
        Format::Table => {
            let mut out = table(estimate);
            if let Some(p) = previous {
                let _ = writeln!(
                    out,
                    "\nCompared with {}, the last month before the era of {} began ({}): the same traffic and users, priced under {}.\n",
                    p.month,
                    estimate.month,
                    estimate.era_start,
                    era_name(p.era)
                );
                out.push_str(&table(p));
                let cmp = Comparison {
                    estimate: estimate.clone(),
                    previous: p.clone(),
                };
                for (currency, change) in cmp.change() {
                    let sign = if change.is_positive() { "+" } else { "" };
                    let _ = writeln!(
                        out,
                        "\nchange from {} to {}: {sign}{change} {currency}",
                        p.month, estimate.month
                    );
                }
            }
            out
        }
        Format::Json => {
            let mut v = json!({ "estimate": estimate_json(estimate) });
            if let Some(p) = previous {
                v["compare"] = estimate_json(p);
                let cmp = Comparison {
                    estimate: estimate.clone(),
                    previous: p.clone(),
                };
                v["change"] = Value::Array(
                    cmp.change()
                        .into_iter()
                        .map(|(c, d)| json!({"currency": c.as_str(), "amount": d.to_string()}))
                        .collect(),
                );
            }
            let mut s = serde_json::to_string_pretty(&v).expect("JSON values serialize");
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            w.write_record([
                "month",
                "pricing_model",
                "currency",
                "market",
                "category",
                "messages",
                "charged",
                "free_customer_service",
                "free_entry_point",
                "free_tier",
                "rates",
                "amount",
            ])
            .expect("writing to memory");
            for e in std::iter::once(estimate).chain(previous) {
                let month = e.month.to_string();
                for r in &e.rows {
                    csv_record(
                        &mut w,
                        e,
                        &month,
                        &r.market,
                        r.category.as_str(),
                        &r.tally,
                        &rates_text(&r.prices, " "),
                    );
                }
                if let Some(c) = &e.calls {
                    // A calls row: messages = calls, charged = business-initiated (D164).
                    let t = Tally {
                        messages: c.calls,
                        charged: c.business_initiated,
                        amount: c.amount,
                        ..Tally::default()
                    };
                    csv_record(
                        &mut w,
                        e,
                        &month,
                        &c.market,
                        "calls",
                        &t,
                        &call_rates_text(c),
                    );
                }
                for t in &e.totals {
                    let tally = Tally {
                        amount: t.amount(),
                        ..t.tally.clone()
                    };
                    csv_record(&mut w, e, &month, "total", "", &tally, "");
                }
            }
            String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8")
        }
    }
}

fn csv_record(
    w: &mut csv::Writer<Vec<u8>>,
    e: &Estimate,
    month: &str,
    market: &str,
    category: &str,
    t: &Tally,
    rates: &str,
) {
    w.write_record([
        month,
        model_name(e.era),
        e.currency.as_str(),
        market,
        category,
        &t.messages.to_string(),
        &t.charged.to_string(),
        &t.free_customer_service.to_string(),
        &t.free_entry_point.to_string(),
        &t.free_tier.to_string(),
        rates,
        &t.amount.to_string(),
    ])
    .expect("writing to memory");
}

/// `0.0625`, or with tiers `0.0014@0:1000 0.0012@1001:5000`.
fn rates_text(prices: &[Price], sep: &str) -> String {
    prices
        .iter()
        .map(|p| match p.tier {
            Some(t) => format!("{}@{t}", p.rate),
            None => p.rate.to_string(),
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// `0.05/min` or with tiers `0.05/min@0:50000 0.04/min@50001:`.
fn call_rates_text(c: &CallRow) -> String {
    c.prices
        .iter()
        .map(|p| match p.tier {
            Some(t) => format!("{}/min@{t}", p.rate),
            None => format!("{}/min", p.rate),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn calls_json(c: &CallRow) -> Value {
    json!({
        "market": c.market,
        "country": c.country,
        "currency": c.currency.as_str(),
        "calls": c.calls,
        "business_initiated": c.business_initiated,
        "user_initiated": c.user_initiated,
        "seconds": c.seconds,
        "charged_minutes": tenths_as_minutes(c.charged_pulses).to_string(),
        "rates": c.prices.iter().map(|p| json!({
            "tier": p.tier.map(|t| t.to_string()),
            "rate_per_minute": p.rate.to_string(),
            "calls": p.calls,
            "minutes": tenths_as_minutes(p.pulses).to_string(),
            "amount": p.amount.to_string(),
        })).collect::<Vec<_>>(),
        "amount": c.amount.to_string(),
    })
}

fn tally_json(t: &Tally) -> Value {
    json!({
        "messages": t.messages,
        "charged": t.charged,
        "free_customer_service": t.free_customer_service,
        "free_entry_point": t.free_entry_point,
        "free_tier": t.free_tier,
        "amount": t.amount.to_string(),
    })
}

fn row_json(r: &Row) -> Value {
    let mut v = json!({
        "market": r.market,
        "category": r.category.as_str(),
        "currency": r.currency.as_str(),
    });
    merge(&mut v, tally_json(&r.tally));
    v["rates"] = Value::Array(
        r.prices
            .iter()
            .map(|p| {
                json!({
                    "tier": p.tier.map(|t| t.to_string()),
                    "rate": p.rate.to_string(),
                    "messages": p.messages,
                    "amount": p.amount.to_string(),
                })
            })
            .collect(),
    );
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

fn estimate_json(e: &Estimate) -> Value {
    let mut v = json!({
        "month": e.month.to_string(),
        "era": era_name(e.era),
        "era_start": e.era_start.to_string(),
        "pricing_model": model_name(e.era),
        "currency": e.currency.as_str(),
        "timezone": e.timezone.name(),
        "phones": e.phones,
        "rows": e.rows.iter().map(row_json).collect::<Vec<_>>(),
        "totals": e.totals.iter().map(|t| {
            let mut v = json!({"currency": t.currency.as_str()});
            merge(&mut v, tally_json(&t.tally));
            v["calls_amount"] = json!(t.calls.to_string());
            v["total_amount"] = json!(t.amount().to_string());
            v
        }).collect::<Vec<_>>(),
        "traffic": e.lines.iter().map(|l| json!({
            "target": match &l.target {
                Target::Market(m) => json!({"market": m}),
                Target::Country(c) => json!({"country": c}),
            },
            "country": l.country,
            "category": l.category.as_str(),
            "messages": l.messages,
            "entry_point": l.entry_point,
            "in_window": l.in_window,
            "cold": l.cold,
        })).collect::<Vec<_>>(),
        "synthetic": {
            "users": e.stats.users,
            "inbound": e.stats.inbound,
            "entry_point_inbound": e.stats.entry_point_inbound,
            "outbound": e.stats.outbound,
            "statuses": e.stats.statuses,
            "calls": e.stats.calls,
        },
    });
    v["calls"] = e.calls.as_ref().map_or(Value::Null, calls_json);
    if let Some(why) = &e.calls_not_priced {
        v["calls_not_priced"] = json!(why);
    }
    v
}

/// The human table: a header line, one line per market × category, a total per currency, and
/// how the traffic was synthesized.
fn table(e: &Estimate) -> String {
    let mut out = String::new();
    let phones = if e.phones == 1 {
        "1 business phone number".to_string()
    } else {
        format!("{} business phone numbers", e.phones)
    };
    let _ = writeln!(
        out,
        "Estimate for {} ({}, era from {}), {}, timezone {}, {phones}",
        e.month,
        era_name(e.era),
        e.era_start,
        e.currency,
        e.timezone.name()
    );
    let header = [
        "market",
        "category",
        "messages",
        "charged",
        "free service window",
        "free entry point",
        "free tier",
        "rate",
        "amount",
    ];
    let mut cells: Vec<[String; 9]> = Vec::new();
    let row = |market: &str, category: &str, t: &Tally, rates: String| {
        [
            market.to_string(),
            category.to_string(),
            t.messages.to_string(),
            t.charged.to_string(),
            t.free_customer_service.to_string(),
            t.free_entry_point.to_string(),
            t.free_tier.to_string(),
            rates,
            t.amount.to_string(),
        ]
    };
    for r in &e.rows {
        let rates = if r.prices.is_empty() {
            "-".to_string()
        } else {
            rates_text(&r.prices, " ")
        };
        cells.push(row(&r.market, r.category.as_str(), &r.tally, rates));
    }
    for t in &e.totals {
        cells.push(row("total", t.currency.as_str(), &t.tally, String::new()));
    }
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let left = [true, true, false, false, false, false, false, true, false];
    let line = |out: &mut String, c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .zip(widths)
            .zip(left)
            .map(|((s, w), l)| {
                if l {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &header.map(String::from));
    for c in &cells {
        line(&mut out, c);
    }
    for (i, l) in e.lines.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}line {}: {}, {} {} messages, users in {}: {} from an entry point, {} in a service window, {} cold",
            if i == 0 { "\n" } else { "" },
            i + 1,
            l.target,
            l.messages,
            l.category.as_str(),
            l.country,
            l.entry_point,
            l.in_window,
            l.cold
        );
    }
    if let Some(c) = &e.calls {
        let _ = writeln!(
            out,
            "calls to users in {} ({}): {} calls, {} talked; {} business-initiated, {} minutes charged at {}: {} {}; {} user-initiated, free",
            c.country,
            c.market,
            c.calls,
            if c.seconds % 60 == 0 {
                format!("{} minutes", c.seconds / 60)
            } else {
                format!("{} seconds", c.seconds)
            },
            c.business_initiated,
            tenths_as_minutes(c.charged_pulses),
            if c.prices.is_empty() { "-".to_string() } else { call_rates_text(c) },
            c.amount,
            c.currency,
            c.user_initiated
        );
        for t in &e.totals {
            let _ = writeln!(
                out,
                "total with calls: {} {} (messages {} + calls {})",
                t.amount(),
                t.currency,
                t.tally.amount,
                t.calls
            );
        }
    }
    if let Some(why) = &e.calls_not_priced {
        let _ = writeln!(out, "calls not priced in {}: {why}", e.month);
    }
    let _ = writeln!(
        out,
        "synthetic month rated by the rating core: {} users, {} inbound ({} from an entry point), {} outbound, {} calls, all delivered",
        e.stats.users, e.stats.inbound, e.stats.entry_point_inbound, e.stats.outbound, e.stats.calls
    );
    out
}
