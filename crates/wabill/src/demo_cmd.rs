//! `wabill demo`: the main job on bundled data, with nothing to prepare. Generates an example
//! month of traffic, rates it with the bundled rate cards and prints what it cost.

use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use wabill_formats::charges;
use wabill_gen::GenConfig;
use wabill_rating::{rate, RateOptions, Tariff};

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
    crate::rate_cmd::write_summary(&mut out, &rated.charges, &tariff)?;
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
        let mut all = Vec::new();
        for c in &rated.charges {
            charges::write_json(&mut all, c, &tariff);
        }
        std::fs::write(dir.join("charges.jsonl"), all)?;
        writeln!(
            out,
            "\nWrote {0}/events.jsonl and {0}/charges.jsonl; rerun with: wabill rate {0}/events.jsonl --summary",
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
