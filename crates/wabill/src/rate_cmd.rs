//! `wabill rate`: events in, one charge per outbound message out.

use crate::input;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use wabill_formats::{calls as call_format, charges};
use wabill_rating::calls::{rate_calls, CallCharge, RatedCalls};
use wabill_rating::{rate_keyed_chunks, Charge, Decimal, RateOptions, Rated, Tariff};

#[derive(clap::Args, Debug, Clone)]
pub struct RateArgs {
    /// Event files (JSON Lines or Meta webhook envelopes, one per line); `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// A file of `account` events, in addition to those in the event files.
    #[arg(long)]
    pub accounts: Option<String>,
    /// A directory of rate data to use instead of the bundled data (see `wabill rates import`).
    #[arg(long, value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// Rate messages with no delivery status as delivered at their send time (unless failed).
    #[arg(long)]
    pub assume_delivered: bool,
    /// Skip malformed lines (each is listed on stderr) instead of failing the run.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Print a summary table (by category × market) to stderr.
    #[arg(long)]
    pub summary: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// Exit code for malformed input.
pub const EXIT_INVALID: i32 = 2;
/// Exit code for events that cannot be rated (unknown account, missing rate, ...).
pub const EXIT_UNRATABLE: i32 = 3;

pub fn run(args: &RateArgs) -> Result<i32> {
    let tariff = crate::tariff::load(args.rates.as_deref())?;
    let mut sources = input::open_sources(args.accounts.as_deref(), &args.files)?;
    let total: u64 = sources.iter().map(input::Pending::len).sum();
    let progress = progress_bar(total);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut parsed, separate_accounts, bad) =
        input::read_and_parse(&mut sources, args.accounts.is_some(), &|n| progress.inc(n))?;
    progress.finish_and_clear();

    let stderr = &mut std::io::stderr().lock();
    if let Some(code) = input::report_bad_lines(stderr, &bad, args.skip_invalid, "rated")? {
        return Ok(code);
    }

    let template_errors = parsed.resolve_templates();
    if !template_errors.is_empty() {
        for e in &template_errors {
            writeln!(stderr, "error: {e}")?;
        }
        writeln!(
            stderr,
            "error: {} message(s) could not be given their template's category; nothing was written",
            template_errors.len()
        )?;
        return Ok(EXIT_UNRATABLE);
    }
    let mut keys = parsed.take_keys();
    let mut chunks = parsed.events();
    // The windows calls open, as inbound events of their own chunk (rules.md "Calls").
    let calls = parsed.calls();
    let call_windows = wabill_rating::calls::window_openers(&calls);
    if !call_windows.is_empty() {
        keys.push(wabill_rating::ChunkKeys::new(&call_windows));
        chunks.push(&call_windows);
    }
    let rated = rate_keyed_chunks(
        &tariff,
        &separate_accounts,
        &chunks,
        keys,
        RateOptions {
            assume_delivered: args.assume_delivered,
        },
    );
    let rated_calls = rate_parsed_calls(&tariff, &separate_accounts, &parsed, &calls);
    if !rated.errors.is_empty() || !rated_calls.errors.is_empty() {
        if !rated.errors.is_empty() {
            report_rating_errors(stderr, &rated)?;
        }
        for e in &rated_calls.errors {
            writeln!(stderr, "error: {e}")?;
        }
        if !rated_calls.errors.is_empty() {
            writeln!(
                stderr,
                "error: {} call(s) could not be rated; nothing was written",
                rated_calls.errors.len()
            )?;
        }
        return Ok(EXIT_UNRATABLE);
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.format == Format::Csv {
        out.write_all(charges::csv_header().as_bytes())?;
    }
    write_charges(&mut out, &rated.charges, &tariff, args.format, threads)?;
    write_call_charges(&mut out, &rated_calls.charges, &tariff, args.format)?;
    out.flush()?;

    report_notes(stderr, &rated, parsed.ignored_webhook_items())?;
    if rated_calls.duplicates > 0 {
        writeln!(
            stderr,
            "note: {} repeated call event(s) counted once",
            rated_calls.duplicates
        )?;
    }
    if args.summary {
        write_summary(stderr, &rated.charges, &tariff)?;
        write_call_summary(stderr, &rated_calls.charges, &tariff)?;
    }
    // The process ends right after this: let the OS reclaim the input, events and charges
    // rather than freeing millions of allocations one by one.
    std::mem::forget(rated);
    std::mem::forget(parsed);
    std::mem::forget(call_windows);
    std::mem::forget(calls);
    std::mem::forget(sources);
    Ok(0)
}

/// Formats charges on `threads` threads, a block at a time, and writes them in order. Each
/// thread keeps its buffer from block to block: fresh memory costs more than formatting into
/// memory already in use.
fn write_charges(
    out: &mut impl Write,
    charges: &[Charge<'_>],
    tariff: &Tariff,
    format: Format,
    threads: usize,
) -> Result<()> {
    const BLOCK: usize = 1 << 14;
    let threads = threads.max(1);
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); threads];
    for blocks in charges.chunks(BLOCK * threads) {
        std::thread::scope(|s| {
            for (block, buf) in blocks.chunks(BLOCK).zip(bufs.iter_mut()) {
                s.spawn(move || {
                    buf.clear();
                    for c in block {
                        match format {
                            Format::Jsonl => charges::write_json(buf, c, tariff),
                            Format::Csv => charges::write_csv(buf, c, tariff),
                        }
                    }
                });
            }
        });
        for b in bufs.iter().take(blocks.len().div_ceil(BLOCK)) {
            out.write_all(b)?;
        }
    }
    Ok(())
}

/// Rates the calls of the input (docs/rules.md "Calls"), with every account the input and
/// `--accounts` give.
pub fn rate_parsed_calls<'a>(
    tariff: &Tariff,
    separate_accounts: &[wabill_rating::Account<'_>],
    parsed: &input::ParsedChunks<'a>,
    calls: &[wabill_rating::calls::Call<'a>],
) -> RatedCalls<'a> {
    if calls.is_empty() {
        return RatedCalls::default();
    }
    let mut accounts: Vec<&wabill_rating::Account<'_>> = separate_accounts.iter().collect();
    for events in parsed.events() {
        for e in events {
            if let wabill_rating::Event::Account(a) = e {
                accounts.push(a);
            }
        }
    }
    rate_calls(&tariff.markets, &tariff.call_rates, &accounts, calls)
}

/// One line per call, after the message lines; in CSV a second table with its own header
/// (decisions.md D128), written only when there are calls.
fn write_call_charges(
    out: &mut impl Write,
    calls: &[CallCharge<'_>],
    tariff: &Tariff,
    format: Format,
) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    if format == Format::Csv {
        buf.extend_from_slice(call_format::call_csv_header().as_bytes());
    }
    for c in calls {
        match format {
            Format::Jsonl => call_format::write_call_json(&mut buf, c, tariff),
            Format::Csv => call_format::write_call_csv(&mut buf, c, tariff),
        }
    }
    out.write_all(&buf)?;
    Ok(())
}

/// Calls, charged calls, billed minutes and amount by currency × direction × market.
pub fn write_call_summary(
    w: &mut impl Write,
    calls: &[CallCharge<'_>],
    tariff: &Tariff,
) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    #[derive(Default)]
    struct Row {
        calls: u64,
        charged: u64,
        pulses: u64,
        amount: Decimal,
    }
    let mut rows: BTreeMap<(&str, &str, &str), Row> = BTreeMap::new();
    let mut totals: BTreeMap<&str, Row> = BTreeMap::new();
    for c in calls {
        let market = c
            .market
            .map_or("(unknown)", |m| tariff.markets.market_name(m));
        let r = rows
            .entry((c.currency.as_str(), c.direction.as_str(), market))
            .or_default();
        let t = totals.entry(c.currency.as_str()).or_default();
        for x in [r, t] {
            x.calls += 1;
            x.charged += u64::from(c.billable());
            x.pulses += if c.billable() { c.pulses } else { 0 };
            x.amount += c.amount;
        }
    }
    let minutes = |p: u64| wabill_rating::calls::tenths_as_minutes(p).to_string();
    writeln!(
        w,
        "{:<8} {:<29} {:<34} {:>10} {:>10} {:>12} {:>16}",
        "currency", "direction", "market", "calls", "charged", "minutes", "amount"
    )?;
    for ((cur, dir, market), r) in &rows {
        writeln!(
            w,
            "{cur:<8} {dir:<29} {market:<34} {:>10} {:>10} {:>12} {:>16}",
            r.calls,
            r.charged,
            minutes(r.pulses),
            r.amount.to_string()
        )?;
    }
    for (cur, r) in &totals {
        writeln!(
            w,
            "{cur:<8} {:<29} {:<34} {:>10} {:>10} {:>12} {:>16}",
            "total calls",
            "",
            r.calls,
            r.charged,
            minutes(r.pulses),
            r.amount.to_string()
        )?;
    }
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total < 8 << 20 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("reading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template"),
    );
    pb
}

fn report_rating_errors(w: &mut impl Write, rated: &Rated<'_>) -> Result<()> {
    // Missing rates repeat per message: show each distinct cause once, with a count.
    let mut by_cause: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for e in &rated.errors {
        let text = e.to_string();
        let cause = match text.split_once(": ") {
            Some((msg, rest)) if msg.starts_with("message ") => rest.to_string(),
            _ => text.clone(),
        };
        let entry = by_cause
            .entry(format!("[{}] {}", e.code(), cause))
            .or_insert((0, text));
        entry.0 += 1;
    }
    for (cause, (n, example)) in &by_cause {
        if *n == 1 {
            writeln!(w, "error: {example}")?;
        } else {
            writeln!(
                w,
                "error: {cause} ({n} messages, e.g. {})",
                example.split(':').next().unwrap_or("")
            )?;
        }
    }
    writeln!(
        w,
        "error: {} message(s) or account(s) could not be rated; nothing was written",
        rated.errors.len()
    )?;
    Ok(())
}

fn report_notes(w: &mut impl Write, rated: &Rated<'_>, ignored_webhook_items: u64) -> Result<()> {
    let n = &rated.notes;
    if n.duplicates > 0 {
        writeln!(w, "note: {} repeated event(s) counted once", n.duplicates)?;
    }
    if n.orphan_statuses > 0 {
        writeln!(w, "note: {} message id(s) have statuses but no outbound event, so no charge line (give their outbound events to rate them)", n.orphan_statuses)?;
    }
    if n.from_statuses > 0 {
        writeln!(w, "note: {} message(s) with no outbound event were rated from Meta's status webhooks (decisions.md D110)", n.from_statuses)?;
    }
    if n.sent_missing > 0 {
        writeln!(w, "note: {} of them have no 'sent' status and were taken as sent at their earliest status (D111)", n.sent_missing)?;
    }
    if n.category_overridden > 0 {
        writeln!(w, "note: {} message(s) were rated in the template category Meta's statuses bill, not the outbound event's (D112)", n.category_overridden)?;
    }
    if n.non_template_outside_window > 0 {
        writeln!(w, "note: {} delivered non-template message(s) were sent with no customer service window open in the input (an inbound message is probably missing)", n.non_template_outside_window)?;
    }
    if ignored_webhook_items > 0 {
        writeln!(w, "note: {ignored_webhook_items} webhook item(s) carry nothing to rate (other fields, warning/deleted statuses, system messages that are no identity change)")?;
    }
    Ok(())
}

/// Messages, charged messages and amount by currency × category × market, with totals.
pub fn write_summary(w: &mut impl Write, charges: &[Charge<'_>], tariff: &Tariff) -> Result<()> {
    #[derive(Default)]
    struct Row {
        messages: u64,
        charged: u64,
        amount: Decimal,
    }
    let mut rows: BTreeMap<(&str, &str, &str), Row> = BTreeMap::new();
    let mut totals: BTreeMap<&str, Row> = BTreeMap::new();
    for c in charges {
        let r = rows
            .entry((
                c.currency.as_str(),
                c.category.as_str(),
                tariff.markets.market_name(c.market),
            ))
            .or_default();
        let t = totals.entry(c.currency.as_str()).or_default();
        for x in [r, t] {
            x.messages += 1;
            x.charged += u64::from(c.billable());
            x.amount += c.amount;
        }
    }
    writeln!(
        w,
        "{:<8} {:<29} {:<34} {:>10} {:>10} {:>16}",
        "currency", "category", "market", "messages", "charged", "amount"
    )?;
    for ((cur, cat, market), r) in &rows {
        writeln!(
            w,
            "{cur:<8} {cat:<29} {market:<34} {:>10} {:>10} {:>16}",
            r.messages,
            r.charged,
            r.amount.to_string()
        )?;
    }
    for (cur, r) in &totals {
        writeln!(
            w,
            "{cur:<8} {:<29} {:<34} {:>10} {:>10} {:>16}",
            "total",
            "",
            r.messages,
            r.charged,
            r.amount.to_string()
        )?;
    }
    Ok(())
}
