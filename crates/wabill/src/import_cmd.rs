//! `wabill rates import`: Meta's published rate-card and volume-tier CSV files into wabill's
//! `rates.csv`, and its calling cards into `call_rates.csv`, checked by loading the result
//! before anything is written.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use wabill_formats::meta_call_csv::{self, CallRateRow};
use wabill_formats::meta_csv::{self, CardKind, RateRow};
use wabill_rating::calls::CallRates;
use wabill_rating::{data, Date, MarketTable, Tariff};

#[derive(clap::Subcommand, Debug)]
pub enum RatesCommand {
    /// Import Meta's rate card, volume-tier card and/or calling card CSV files.
    Import(ImportArgs),
    /// What a month's bills in a currency rest on: per market and category the rate in force,
    /// its version date and source, and the known gaps and missing rates.
    List(crate::rates_list_cmd::ListArgs),
    /// What the rate data covers, for messages and calls: currencies with a card and without,
    /// versions, tiers and gaps.
    Check(crate::rates_check_cmd::CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Meta CSV files (rate card: Market, Currency, Marketing, Utility, ...; the tier card; or
    /// the calling card: Market, Currency, Rate per minute, with From / To for its tiers).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The date the cards take effect (YYYY-MM-DD, in each WABA's timezone).
    #[arg(long)]
    pub effective: String,
    /// Merge into DIR/rates.csv and, for calling cards, DIR/call_rates.csv (created from the
    /// bundled data if absent) for use with `--rates DIR`; without it, the imported rows are
    /// printed as rates.csv (or call_rates.csv).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

pub fn run(cmd: &RatesCommand) -> Result<i32> {
    let args = match cmd {
        RatesCommand::Import(args) => args,
        RatesCommand::List(args) => return crate::rates_list_cmd::run(args),
        RatesCommand::Check(args) => return crate::rates_check_cmd::run(args),
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
    let mut call_rows: Vec<CallRateRow> = Vec::new();
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        // Meta serves its 2026 cards as workbooks too (D149): a ZIP container, not CSV text.
        anyhow::ensure!(
            !bytes.starts_with(b"PK\x03\x04"),
            "{}: a workbook (.xlsx), not CSV: save each of its sheets (\"List rates\", the \
             volume tiers, the calling card) as CSV and import those files",
            file.display()
        );
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not UTF-8 text (byte {} is not valid UTF-8): Meta's cards are CSV text; \
                 save the file as CSV UTF-8",
                file.display(),
                e.utf8_error().valid_up_to() + 1
            )
        })?;
        let source = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().to_string(),
        );
        let failed = |e: meta_csv::ImportError| anyhow::anyhow!("{}: {e}", file.display());
        let n = match meta_csv::detect(&text) {
            Some(CardKind::RateCard) => {
                let parsed = meta_csv::parse_rate_card(&text, effective, &source, &names)
                    .map_err(failed)?;
                let n = parsed.len();
                rows.extend(parsed);
                n
            }
            Some(CardKind::TierCard) => {
                let parsed = meta_csv::parse_tier_card(&text, effective, &source, &names)
                    .map_err(failed)?;
                let n = parsed.len();
                rows.extend(parsed);
                n
            }
            Some(CardKind::CallCard) => {
                let parsed = meta_call_csv::parse_call_card(&text, effective, &source, &names)
                    .map_err(failed)?;
                eprintln!("{}: {} calling rows", file.display(), parsed.len());
                call_rows.extend(parsed);
                continue;
            }
            None => anyhow::bail!(
                "{}: none of Meta's cards: neither the rate card (Market, Currency, Marketing, ...), \
                 nor the volume-tier card (Utility / Authentication groups of From, To, Rate), \
                 nor the calling card (Market, Currency, Rate per minute, with From and To for \
                 its tiers)",
                file.display()
            ),
        };
        eprintln!("{}: {n} rows", file.display());
    }
    match &args.into {
        None => {
            // Two layouts cannot share standard output: mixing them needs a directory.
            anyhow::ensure!(
                rows.is_empty() || call_rows.is_empty(),
                "messaging and calling cards were given together: use --into DIR, which \
                 writes rates.csv and call_rates.csv"
            );
            let text = if call_rows.is_empty() {
                let text = meta_csv::write_rates_csv(&rows);
                check_loads(&markets_csv, &text)?;
                text
            } else {
                let text = meta_call_csv::write_call_rates_csv(&call_rows)?;
                check_call_rates_load(&markets, &text)?;
                text
            };
            std::io::stdout().write_all(text.as_bytes())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let target = dir.join("rates.csv");
            // A directory for `--rates` needs a rates file: a first import of calling cards
            // alone starts it from the bundled messaging rates too (decisions.md D147).
            let from_bundled = !target.exists();
            if !rows.is_empty() || from_bundled {
                let existing = if from_bundled {
                    data::RATES_CSV.to_string()
                } else {
                    std::fs::read_to_string(&target)
                        .with_context(|| format!("reading {}", target.display()))?
                };
                let merged = meta_csv::merge_into_rates_csv(&existing, &rows)?;
                check_loads(&markets_csv, &merged)?;
                write_atomically(dir, &target, &merged)?;
            }
            // The bundled rates come with their known gaps: without them, a key whose newer
            // version is a gap would be billed at the older price (decisions.md D61).
            let gaps = dir.join(crate::tariff::GAPS_FILE);
            if from_bundled && !gaps.exists() {
                std::fs::write(&gaps, data::RATE_GAPS_CSV)
                    .with_context(|| format!("writing {}", gaps.display()))?;
            }
            if !call_rows.is_empty() {
                let calls = dir.join(crate::tariff::CALL_RATES_FILE);
                let existing = if calls.exists() {
                    std::fs::read_to_string(&calls)
                        .with_context(|| format!("reading {}", calls.display()))?
                } else {
                    data::CALL_RATES_CSV.to_string()
                };
                let merged = meta_call_csv::merge_into_call_rates_csv(&existing, &call_rows)?;
                check_call_rates_load(&markets, &merged)?;
                write_atomically(dir, &calls, &merged)?;
                eprintln!(
                    "imported {} calling rows into {}",
                    call_rows.len(),
                    calls.display()
                );
            }
            if !rows.is_empty() {
                eprintln!("imported {} rows into {}", rows.len(), target.display());
            }
            eprintln!("rate with: wabill rate --rates {} ...", dir.display());
        }
    }
    Ok(0)
}

fn write_atomically(dir: &Path, target: &Path, text: &str) -> Result<()> {
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string());
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, target).with_context(|| format!("writing {}", target.display()))
}

/// Imported calling rows must load as `--rates DIR` will load them.
fn check_call_rates_load(markets: &MarketTable, text: &str) -> Result<()> {
    CallRates::default()
        .add_csv(markets, "imported call rates", text)
        .context("the imported calling rates do not load")
}

/// The result must load as the rater will load it.
fn check_loads(markets_csv: &str, rates_csv: &str) -> Result<()> {
    Tariff::from_csv(markets_csv, &[("imported rates", rates_csv)])
        .map(|_| ())
        .context("the imported rates do not load")
}
