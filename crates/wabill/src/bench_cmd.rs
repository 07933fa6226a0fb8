//! `wabill bench`: generates a stream in memory and times each stage of rating it, so that the
//! figures in BENCHMARKS.md can be reproduced with one command.

use crate::gen_cmd::GenArgs;
use anyhow::Result;
use std::time::Instant;
use wabill_formats::charges;
use wabill_rating::{rate_keyed_chunks, RateOptions, Tariff};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    /// Timed repetitions of the rating core (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
}

pub fn run(args: &BenchArgs) -> Result<i32> {
    let tariff = Tariff::bundled();
    let cfg = args.gen.config();
    let t = Instant::now();
    let mut stream = Vec::with_capacity((cfg.events * 200) as usize);
    let stats = wabill_gen::generate(&cfg, &mut stream)?;
    let gen_s = t.elapsed().as_secs_f64();
    let text = std::str::from_utf8(&stream)?;
    outln!(
        "stream: {} lines ({} outbound, {} inbound, {} statuses, {} repeated), {} users, {} WABAs, {:.1} MB, generated in {:.2} s",
        stats.lines, stats.outbound, stats.inbound, stats.statuses, stats.duplicates,
        cfg.users, cfg.wabas, stream.len() as f64 / 1e6, gen_s
    );

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let (mut parsed, bad) = crate::input::parse_text_chunks("bench", text, threads, &|_| {});
    let parse_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        bad.is_empty(),
        "generated stream has {} malformed lines",
        bad.len()
    );
    // The parser threads computed the join keys (as `wabill rate`'s do); each run takes a copy.
    let keys = parsed.take_keys();
    let chunks = parsed.events();
    let events = chunks.iter().map(|c| c.len()).sum::<usize>() as f64;
    outln!(
        "parse ({threads} threads):      {:>8.2} s  {:>12.0} events/s",
        parse_s,
        events / parse_s
    );

    let mut best = f64::INFINITY;
    let mut rated = None;
    for _ in 0..args.repeat.max(1) {
        drop(rated.take());
        let keys = keys.clone();
        let t = Instant::now();
        let r = rate_keyed_chunks(&tariff, &[], &chunks, keys, RateOptions::default());
        best = best.min(t.elapsed().as_secs_f64());
        rated = Some(r);
    }
    let rated = rated.expect("ran at least once");
    anyhow::ensure!(
        rated.errors.is_empty(),
        "rating errors: {:?}",
        &rated.errors[..rated.errors.len().min(5)]
    );
    outln!(
        "rate (core, 1 thread):  {:>8.2} s  {:>12.0} events/s  ({} charges)",
        best,
        events / best,
        rated.charges.len()
    );

    let t = Instant::now();
    let mut out = Vec::with_capacity(rated.charges.len() * 330);
    for c in &rated.charges {
        charges::write_json(&mut out, c, &tariff);
    }
    let write_s = t.elapsed().as_secs_f64();
    outln!(
        "write JSONL (1 thread):  {:>8.2} s  {:>12.0} charges/s  ({:.1} MB)",
        write_s,
        rated.charges.len() as f64 / write_s,
        out.len() as f64 / 1e6
    );
    let end_to_end = parse_s + best + write_s;
    outln!(
        "parse + rate + write:    {:>8.2} s  {:>12.0} events/s",
        end_to_end,
        events / end_to_end
    );
    let s = &rated.state;
    outln!(
        "state: {} (phone, user) pairs; pair table {:.1} MB = {:.1} bytes/pair; other state {:.1} MB",
        s.pairs,
        s.pair_bytes as f64 / 1e6,
        s.pair_bytes as f64 / s.pairs.max(1) as f64,
        s.other_bytes as f64 / 1e6
    );
    Ok(0)
}
