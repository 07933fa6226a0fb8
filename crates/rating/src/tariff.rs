//! The tariff: the market table and the rate book that rating reads, loaded once.

use crate::calls::{CallRates, CallRatesError};
use crate::data;
use crate::markets::{MarketTable, MarketTableError};
use crate::rates::{RateBook, RateBookError};

/// Markets and rates, as one value passed to the rater.
#[derive(Debug)]
pub struct Tariff {
    pub markets: MarketTable,
    pub rates: RateBook,
    /// Calling rate cards (per minute, by currency and market).
    pub call_rates: CallRates,
}

#[derive(Debug, thiserror::Error)]
pub enum TariffError {
    #[error(transparent)]
    Markets(#[from] MarketTableError),
    #[error(transparent)]
    Rates(#[from] RateBookError),
    #[error(transparent)]
    CallRates(#[from] CallRatesError),
}

impl Tariff {
    /// The data bundled at build time (`data/markets.csv`, `data/rates.csv` and its known gaps,
    /// `data/rate_gaps.csv`).
    pub fn bundled() -> Tariff {
        Tariff::from_csv(data::MARKETS_CSV, &[("data/rates.csv", data::RATES_CSV)])
            .and_then(|t| t.with_gaps("data/rate_gaps.csv", data::RATE_GAPS_CSV))
            .and_then(|t| t.with_call_rates("data/call_rates.csv", data::CALL_RATES_CSV))
            .expect("bundled rate data is valid (checked by tests)")
    }

    /// Adds a `rate_gaps.csv` file (name, text): versions that exist at Meta with no value in
    /// the rate files, which rating then reports as missing instead of using the older price.
    pub fn with_gaps(mut self, name: &str, text: &str) -> Result<Tariff, TariffError> {
        self.rates.add_gaps_csv(&self.markets, name, text)?;
        Ok(self)
    }

    /// Adds a `call_rates.csv` file (name, text).
    pub fn with_call_rates(mut self, name: &str, text: &str) -> Result<Tariff, TariffError> {
        self.call_rates.add_csv(&self.markets, name, text)?;
        Ok(self)
    }

    /// Loads a market table and any number of rate files (name, text).
    pub fn from_csv(markets_csv: &str, rate_files: &[(&str, &str)]) -> Result<Tariff, TariffError> {
        let markets = MarketTable::from_csv(markets_csv)?;
        let mut rates = RateBook::default();
        for (name, text) in rate_files {
            rates.add_csv(&markets, name, text)?;
        }
        Ok(Tariff {
            markets,
            rates,
            call_rates: CallRates::default(),
        })
    }
}
