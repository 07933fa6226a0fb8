//! Loading the tariff: the bundled data, or a directory given with `--rates`.

use anyhow::{Context, Result};
use std::path::Path;
use wabill_rating::{data, Tariff};

/// Bundled data, or `dir`: its `markets.csv` if present (else the bundled one), every other
/// `*.csv` file with the `rates.csv` header (in name order) instead of the bundled rates, and its
/// known gaps `rate_gaps.csv` if present (decisions.md D61; `wabill rates import --into` writes
/// the bundled one beside the bundled rates it copies).
pub fn load(dir: Option<&Path>) -> Result<Tariff> {
    let Some(dir) = dir else {
        return Ok(Tariff::bundled());
    };
    let markets_path = dir.join("markets.csv");
    let markets = if markets_path.exists() {
        std::fs::read_to_string(&markets_path)
            .with_context(|| format!("reading {}", markets_path.display()))?
    } else {
        data::MARKETS_CSV.to_string()
    };
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the rates directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "csv")
            && path.file_name() != Some("markets.csv".as_ref())
            && path.file_name() != Some(GAPS_FILE.as_ref())
            && path.file_name() != Some(CALL_RATES_FILE.as_ref())
        {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if text
                .trim_start_matches('\u{feff}')
                .starts_with("effective_from,pricing_model,")
            {
                files.push((path.display().to_string(), text));
            }
        }
    }
    anyhow::ensure!(
        !files.is_empty(),
        "{} has no rates file (a CSV starting with the header '{}')",
        dir.display(),
        wabill_rating::rates::RATES_HEADER
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let mut tariff = Tariff::from_csv(&markets, &refs)?;
    // Calling cards: the directory's own, else the bundled (empty) one (D124).
    let calls_path = dir.join(CALL_RATES_FILE);
    tariff = if calls_path.exists() {
        let text = std::fs::read_to_string(&calls_path)
            .with_context(|| format!("reading {}", calls_path.display()))?;
        tariff.with_call_rates(&calls_path.display().to_string(), &text)?
    } else {
        tariff.with_call_rates("data/call_rates.csv", data::CALL_RATES_CSV)?
    };
    let gaps_path = dir.join(GAPS_FILE);
    if !gaps_path.exists() {
        return Ok(tariff);
    }
    let gaps = std::fs::read_to_string(&gaps_path)
        .with_context(|| format!("reading {}", gaps_path.display()))?;
    Ok(tariff.with_gaps(&gaps_path.display().to_string(), &gaps)?)
}

/// The name of the known-gaps file in a rates directory.
pub const GAPS_FILE: &str = "rate_gaps.csv";

/// The name of the calling rate cards file in a rates directory.
pub const CALL_RATES_FILE: &str = "call_rates.csv";
