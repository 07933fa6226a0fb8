//! `wabill demo`: the main job on bundled data, with nothing to prepare. Generates an example
//! month of traffic, rates it with the bundled rate cards and prints what it cost.

use anyhow::Result;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use wabill_billing::invoice::{fixed, LineKind};
use wabill_billing::{parse_charges, InvoiceInput, TenantSetup};
use wabill_formats::charges;
use wabill_gen::GenConfig;
use wabill_rating::{rate, Charge, Currency, Decimal, Month, RateOptions, Tariff};

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Number of event lines to generate.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Also write the stream (events.jsonl) and its charges (charges.jsonl) into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &DemoArgs) -> Result<i32> {
    let cfg = GenConfig {
        seed: 1,
        events: args.events,
        wabas: 10,
        users: 50_000,
        ..GenConfig::default()
    };
    let t = Instant::now();
    let mut stream = Vec::new();
    let stats = wabill_gen::generate(&cfg, &mut stream)?;
    let text = std::str::from_utf8(&stream)?;
    let tariff = Tariff::bundled();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (parsed, bad) = crate::input::parse_text("demo", text, threads, &|_| {});
    anyhow::ensure!(bad.is_empty(), "the generated stream has malformed lines");
    let rated = rate(&tariff, &[], &parsed.events, RateOptions::default());
    anyhow::ensure!(
        rated.errors.is_empty(),
        "rating failed: {:?}",
        rated.errors.first()
    );
    let elapsed = t.elapsed();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wabill demo: {} WABAs, {} users, {} days from {} (seed {})",
        cfg.wabas, cfg.users, cfg.days, cfg.start, cfg.seed
    )?;
    writeln!(
        out,
        "{} event lines ({} outbound messages, {} inbound, {} statuses, {} repeated) rated in {:.2} s\n",
        stats.lines, stats.outbound, stats.inbound, stats.statuses, stats.duplicates,
        elapsed.as_secs_f64()
    )?;
    write_bill(&mut out, &rated.charges)?;
    let mut all = Vec::new();
    for c in &rated.charges {
        charges::write_json(&mut all, c, &tariff);
    }
    let invoice = tenant_invoice(std::str::from_utf8(&all)?)?;
    write_invoice(&mut out, &invoice)?;
    writeln!(
        out,
        "\nFirst charges (one JSON line per outbound message, docs/events.md):"
    )?;
    let mut buf = Vec::new();
    for c in rated.charges.iter().take(3) {
        charges::write_json(&mut buf, c, &tariff);
    }
    out.write_all(&buf)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("events.jsonl"), &stream)?;
        std::fs::write(dir.join("charges.jsonl"), all)?;
        std::fs::write(dir.join("tenant.json"), DEMO_TENANT)?;
        std::fs::write(
            dir.join("invoice.html"),
            wabill_billing::render::html(&invoice),
        )?;
        writeln!(
            out,
            "\nWrote {0}/events.jsonl, {0}/charges.jsonl, {0}/tenant.json and {0}/invoice.html; rerun with: \
             wabill rate {0}/events.jsonl --summary, and wabill invoice --setup {0}/tenant.json --charges {0}/charges.jsonl --month {DEMO_MONTH}",
            dir.display()
        )?;
    } else {
        writeln!(
            out,
            "\nTo rate your own files: wabill rate EVENTS.jsonl --summary (see README.md)"
        )?;
    }
    Ok(0)
}

/// The platform's customer of the demo: it owns three of the generated WABAs and pays Meta's
/// cost marked up by 10 % (the tenant set-up of `wabill invoice`, README.md "Tenant invoices").
const DEMO_TENANT: &str = r#"{"tenant": {"id": "demo-retail", "name": "Demo Retail", "timezone": "UTC", "currency": "USD", "wabas": ["W1", "W2", "W3"]},
 "plans": [{"effective_from": "2026-01-01", "markup_percent": "10"}]}
"#;
const DEMO_MONTH: &str = "2026-10";

/// What each WABA owes Meta, by category: messages, charged messages and the amount, each line
/// the exact sum of its charges rounded to the currency's minor unit (half away from zero), and
/// each WABA's total the sum of its rounded lines, as on an invoice.
fn write_bill(out: &mut impl Write, charges: &[Charge<'_>]) -> Result<()> {
    #[derive(Default)]
    struct Row {
        messages: u64,
        charged: u64,
        exact: Decimal,
    }
    // WABAs in natural order (W2 before W10): shorter ids first.
    let mut rows: BTreeMap<(usize, &str, &str, &str), Row> = BTreeMap::new();
    for c in charges {
        let r = rows
            .entry((
                c.waba.len(),
                c.waba,
                c.currency.as_str(),
                c.category.as_str(),
            ))
            .or_default();
        r.messages += 1;
        r.charged += u64::from(c.billable());
        r.exact += c.amount;
    }
    writeln!(out, "What each WABA owes Meta for the traffic generated:\n")?;
    writeln!(
        out,
        "{:<6} {:<29} {:>9} {:>9} {:>12}",
        "WABA", "category", "messages", "charged", "amount"
    )?;
    let mut totals: BTreeMap<&str, (u64, u64, Decimal)> = BTreeMap::new();
    let mut last: Option<(&str, &str)> = None;
    let mut waba_total = (0u64, 0u64, Decimal::default());
    let flush = |out: &mut dyn Write, key: (&str, &str), t: (u64, u64, Decimal)| -> Result<()> {
        let digits = Currency::parse(key.1).map_or(2, |c| c.minor_digits());
        writeln!(
            out,
            "{:<6} {:<29} {:>9} {:>9} {:>8} {}\n",
            key.0,
            "total",
            t.0,
            t.1,
            fixed(t.2, digits),
            key.1
        )?;
        Ok(())
    };
    for ((_, waba, cur, cat), r) in &rows {
        if last.is_some_and(|l| l != (*waba, *cur)) {
            flush(out, last.expect("checked"), waba_total)?;
            waba_total = (0, 0, Decimal::default());
        }
        last = Some((waba, cur));
        let digits = Currency::parse(cur).map_or(2, |c| c.minor_digits());
        let amount = r.exact.round_to_scale(digits);
        writeln!(
            out,
            "{waba:<6} {cat:<29} {:>9} {:>9} {:>8} {cur}",
            r.messages,
            r.charged,
            fixed(amount, digits)
        )?;
        waba_total.0 += r.messages;
        waba_total.1 += r.charged;
        waba_total.2 += amount;
        let t = totals.entry(cur).or_default();
        t.0 += r.messages;
        t.1 += r.charged;
        t.2 += amount;
    }
    if let Some(key) = last {
        flush(out, key, waba_total)?;
    }
    for (cur, t) in &totals {
        let digits = Currency::parse(cur).map_or(2, |c| c.minor_digits());
        writeln!(
            out,
            "{:<6} {:<29} {:>9} {:>9} {:>8} {cur}",
            "all",
            "total",
            t.0,
            t.1,
            fixed(t.2, digits)
        )?;
    }
    writeln!(
        out,
        "\n\"charged\" counts the messages Meta bills. The others cost nothing: replies inside the \
         24-hour customer\nservice window, messages inside a free entry point window, the month's \
         free service messages,\nand messages never delivered. Each amount is the exact sum of its \
         messages' prices, rounded\nto the cent once; a WABA's total is the sum of its lines."
    )?;
    Ok(())
}

/// The invoice the platform sends its customer for the month: `wabill invoice` on the demo's
/// charges with [`DEMO_TENANT`].
fn tenant_invoice(charge_lines: &str) -> Result<wabill_billing::Invoice> {
    let setup = TenantSetup::from_json(DEMO_TENANT)
        .map_err(|e| anyhow::anyhow!("the demo's tenant set-up: {e}"))?;
    let charges = parse_charges(charge_lines)
        .map_err(|e| anyhow::anyhow!("the demo's charges do not read back: {:?}", e.first()))?;
    let month = Month::parse(DEMO_MONTH).expect("a month");
    let input = InvoiceInput {
        setup: &setup,
        month,
        charges: &charges,
        previous: &[],
        finalize: false,
    };
    wabill_billing::invoice(&input).map_err(|e| anyhow::anyhow!("the demo's invoice: {e}"))
}

/// The invoice in short: its usage lines summed by category (the invoice has one per category
/// and market), its other lines as they are, and its total.
fn write_invoice(out: &mut impl Write, inv: &wabill_billing::Invoice) -> Result<()> {
    let digits = inv.currency.minor_digits();
    let name = inv.tenant_name.as_deref().unwrap_or(&inv.tenant);
    writeln!(
        out,
        "\nThe platform's invoice to its customer {name} for {} ({}, draft): Meta's cost of\n\
         its WABAs W1, W2 and W3 in the month, 10 % above cost as its plan says:\n",
        inv.month, inv.id
    )?;
    let mut usage: BTreeMap<&str, (usize, u64, Decimal)> = BTreeMap::new();
    for l in &inv.lines {
        if l.kind == LineKind::Usage {
            let u = usage
                .entry(l.category.as_deref().unwrap_or(""))
                .or_default();
            u.0 += 1;
            u.1 += l.quantity.unwrap_or(0);
            u.2 += l.amount;
        }
    }
    for (cat, (markets, messages, amount)) in &usage {
        writeln!(
            out,
            "  WhatsApp usage, {cat:<28} {messages:>7} messages in {markets:>2} markets {:>10} {}",
            fixed(*amount, digits),
            inv.currency
        )?;
    }
    for l in inv.lines.iter().filter(|l| l.kind != LineKind::Usage) {
        writeln!(
            out,
            "  {:<75} {:>10} {}",
            l.description,
            fixed(l.amount, digits),
            inv.currency
        )?;
    }
    writeln!(
        out,
        "  {:<75} {:>10} {}",
        "Total",
        fixed(inv.total, digits),
        inv.currency
    )?;
    writeln!(
        out,
        "(every line in full: wabill demo --out DIR writes it as DIR/invoice.html)"
    )?;
    Ok(())
}
