//! Writes a stream to stdout, or measures generation speed into memory.
//!
//! `cargo run --release -p wabill-gen --example gen -- EVENTS [SEED]` writes the stream;
//! `... -- EVENTS [SEED] --measure` generates it into a `Vec<u8>` and reports lines per second
//! three times
//! (the figure quoted for the generator; a measurement, not a test).

use std::io::Write;
use std::time::Instant;
use wabill_gen::{generate, GenConfig};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let measure = args.iter().any(|a| a == "--measure");
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let cfg = GenConfig {
        events: numbers.first().copied().unwrap_or(1_000_000),
        seed: numbers.get(1).copied().unwrap_or(0),
        ..GenConfig::default()
    };
    if measure {
        // The first run writes into fresh memory, so it also pays the kernel for zeroing the
        // pages the output lands in (about half its time); later runs reuse the same buffer
        // and show the generator's own speed.
        let mut out = Vec::with_capacity(cfg.events as usize * 150);
        for run in 1..=3 {
            out.clear();
            let began = Instant::now();
            let stats = generate(&cfg, &mut out)?;
            let secs = began.elapsed().as_secs_f64();
            eprintln!(
                "run {run} ({}): {} lines, {} MB in {:.3} s: {:.2} M lines/s, {:.0} MB/s",
                if run == 1 {
                    "fresh buffer"
                } else {
                    "reused buffer"
                },
                stats.lines,
                out.len() / 1_000_000,
                secs,
                stats.lines as f64 / secs / 1e6,
                out.len() as f64 / secs / 1e6,
            );
            if run == 3 {
                eprintln!("{stats:?}");
            }
        }
    } else {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        let stats = generate(&cfg, &mut lock)?;
        lock.flush()?;
        eprintln!("{stats:?}");
    }
    Ok(())
}
