//! `wabill gen`: a seeded synthetic event stream, so anyone can reproduce tests and benchmarks.

use anyhow::Result;
use std::io::Write;
use wabill_gen::{generate, GenConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Approximate number of event lines (accounts not counted).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Number of WABAs.
    #[arg(long, default_value_t = 50)]
    pub wabas: u32,
    /// Number of distinct users.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    /// Business phone numbers per WABA.
    #[arg(long, default_value_t = 2)]
    pub phones_per_waba: u32,
    /// First day of the stream (UTC), YYYY-MM-DD.
    #[arg(long, default_value = "2026-10-02")]
    pub start: String,
    /// Number of days the stream spans.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Lines repeated later in the stream, per thousand.
    #[arg(long, default_value_t = 5)]
    pub duplicate_permille: u32,
    /// Keep every status after its outbound line (by default some come first).
    #[arg(long)]
    pub ordered_statuses: bool,
}

impl GenArgs {
    pub fn config(&self) -> GenConfig {
        GenConfig {
            seed: self.seed,
            events: self.events,
            wabas: self.wabas,
            users: self.users,
            phones_per_waba: self.phones_per_waba,
            start: self.start.clone(),
            days: self.days,
            duplicate_permille: self.duplicate_permille,
            shuffle_statuses: !self.ordered_statuses,
        }
    }
}

pub fn run(args: &GenArgs) -> Result<i32> {
    anyhow::ensure!(
        wabill_rating::Date::parse(&args.start).is_some(),
        "--start '{}' is not a date YYYY-MM-DD",
        args.start
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let stats = generate(&args.config(), &mut out)?;
    out.flush()?;
    eprintln!(
        "generated {} lines: {} accounts, {} inbound, {} outbound, {} statuses, {} repeated",
        stats.lines,
        stats.accounts,
        stats.inbound,
        stats.outbound,
        stats.statuses,
        stats.duplicates
    );
    Ok(0)
}
