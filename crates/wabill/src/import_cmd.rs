//! `wabill rates import`: Meta's published rate-card and volume-tier CSV files into wabill's
//! `rates.csv`, checked by loading the result before anything is written.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use wabill_formats::meta_csv::{self, CardKind, RateRow};
use wabill_rating::{data, Date, MarketTable, Tariff};

#[derive(clap::Subcommand, Debug)]
pub enum RatesCommand {
    /// Import Meta's rate card and/or volume-tier card CSV files.
    Import(ImportArgs),
    /// What a month's bills in a currency rest on: per market and category the rate in force,
    /// its version date and source, and the known gaps and missing rates.
    List(crate::rates_list_cmd::ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Meta CSV files (rate card: Market, Currency, Marketing, Utility, ...; or the tier card).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The date the cards take effect (YYYY-MM-DD, in each WABA's timezone).
    #[arg(long)]
    pub effective: String,
    /// Merge into DIR/rates.csv (created from the bundled rates if absent) for use with
    /// `--rates DIR`; without it, the imported rows are printed as rates.csv.
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

pub fn run(cmd: &RatesCommand) -> Result<i32> {
    let args = match cmd {
        RatesCommand::Import(args) => args,
        RatesCommand::List(args) => return crate::rates_list_cmd::run(args),
    };
    let Some(effective) = Date::parse(&args.effective) else {
        anyhow::bail!("--effective '{}' is not a date YYYY-MM-DD", args.effective);
    };
    let markets_csv = match &args.into {
        Some(dir) if dir.join("markets.csv").exists() => {
            std::fs::read_to_string(dir.join("markets.csv")).context("reading markets.csv")?
        }
        _ => data::MARKETS_CSV.to_string(),
    };
    let markets = MarketTable::from_csv(&markets_csv)?;
    let names: Vec<&str> = markets.market_names().collect();
    let mut rows: Vec<RateRow> = Vec::new();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let source = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().to_string(),
        );
        let parsed = match meta_csv::detect(&text) {
            Some(CardKind::RateCard) => meta_csv::parse_rate_card(&text, effective, &source, &names),
            Some(CardKind::TierCard) => meta_csv::parse_tier_card(&text, effective, &source, &names),
            None => anyhow::bail!(
                "{}: neither Meta's rate card (Market, Currency, Marketing, ...) nor its volume-tier card",
                file.display()
            ),
        };
        let parsed = parsed.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        eprintln!("{}: {} rows", file.display(), parsed.len());
        rows.extend(parsed);
    }
    match &args.into {
        None => {
            let text = meta_csv::write_rates_csv(&rows);
            check_loads(&markets_csv, &text)?;
            std::io::stdout().write_all(text.as_bytes())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let target = dir.join("rates.csv");
            let from_bundled = !target.exists();
            let existing = if from_bundled {
                data::RATES_CSV.to_string()
            } else {
                std::fs::read_to_string(&target)
                    .with_context(|| format!("reading {}", target.display()))?
            };
            let merged = meta_csv::merge_into_rates_csv(&existing, &rows)?;
            check_loads(&markets_csv, &merged)?;
            let tmp = dir.join(".rates.csv.tmp");
            std::fs::write(&tmp, &merged).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("writing {}", target.display()))?;
            // The bundled rates come with their known gaps: without them, a key whose newer
            // version is a gap would be billed at the older price (decisions.md D61).
            let gaps = dir.join(crate::tariff::GAPS_FILE);
            if from_bundled && !gaps.exists() {
                std::fs::write(&gaps, data::RATE_GAPS_CSV)
                    .with_context(|| format!("writing {}", gaps.display()))?;
            }
            eprintln!(
                "imported {} rows into {}; rate with: wabill rate --rates {} ...",
                rows.len(),
                target.display(),
                dir.display()
            );
        }
    }
    Ok(0)
}

/// The result must load as the rater will load it.
fn check_loads(markets_csv: &str, rates_csv: &str) -> Result<()> {
    Tariff::from_csv(markets_csv, &[("imported rates", rates_csv)])
        .map(|_| ())
        .context("the imported rates do not load")
}
