//! Why an estimate cannot be made. Every variant names what is wrong, and has a stable code
//! ([`EstimateError::code`]) that scripts and the JSON output can rely on.

use wabill_rating::{Currency, Date, Month};

/// An estimate that cannot be made, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error("unknown market '{market}'; markets are: {known}")]
    UnknownMarket { market: String, known: String },
    #[error("market '{market}' has no country on {date} (markets change over time: see data/markets.csv)")]
    EmptyMarket { market: String, date: Date },
    #[error("unknown country '{country}' (expected an ISO 3166 alpha-2 code of markets.csv, such as BR)")]
    UnknownCountry { country: String },
    #[error("country {country} has no calling code of its own in markets.csv (it shares one with another country); give that country or its market instead")]
    NoCallingCode { country: String },
    #[error("country {country} has no market on {date}")]
    NoMarket { country: String, date: Date },
    #[error(
        "unknown category '{category}' (expected marketing, utility, authentication or service)"
    )]
    UnknownCategory { category: String },
    #[error("{what} '{value}': {why}")]
    InvalidShare {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("the entry point share ({entry_point}) and the utility-in-window share ({utility_in_window}) add up to more than 100 %: they are disjoint parts of the utility messages (see docs/decisions.md)")]
    InconsistentShares {
        entry_point: String,
        utility_in_window: String,
    },
    #[error("month {month}: pricing before 2023-06 (conversation categories) is not supported")]
    UnsupportedMonth { month: Month },
    #[error("month {month} is in the first supported pricing era (from 2023-06-01): there is no previous era to compare with")]
    NoPreviousEra { month: Month },
    #[error("the number of business phone numbers must be at least 1")]
    NoPhones,
    #[error("no traffic: give at least one market or country with a number of messages above 0")]
    NoTraffic,
    #[error("{messages} messages a month is more than an estimate synthesizes ({max} at most)")]
    TooManyMessages { messages: u64, max: u64 },
    #[error("authentication-international eligibility needs the primary country (the business's own country is never international)")]
    MissingPrimaryCountry,
    #[error("{what}: {why}")]
    InvalidInput { what: String, why: String },
    /// The core's `missing_rate` errors, one line per distinct cause (currency, model, market,
    /// category, date), with the number of synthetic messages it stopped.
    #[error("{}", missing_rate_text(.causes))]
    MissingRate { causes: Vec<(String, u64)> },
    #[error(
        "calls need the primary country (--primary-country): the calls are estimated to its users"
    )]
    CallsNeedPrimaryCountry,
    /// No calling rate for the synthetic calls: calling cards are not bundled (D163).
    #[error("no calling rate for currency {currency}, market '{market}' on {date} ({calls} business-initiated calls): Meta's calling cards are not bundled (data/SOURCES.md, 'Calling'); import one with `wabill rates import` and give it with --rates DIR")]
    MissingCallRate {
        currency: Currency,
        market: String,
        date: Date,
        calls: u64,
    },
    /// Any other error of the rating core (not expected from a synthetic month).
    #[error("[{code}] {message}")]
    Rating { code: &'static str, message: String },
}

fn missing_rate_text(causes: &[(String, u64)]) -> String {
    causes
        .iter()
        .map(|(cause, n)| format!("{cause} ({n} messages)"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl EstimateError {
    /// A stable, machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            EstimateError::UnknownMarket { .. } | EstimateError::EmptyMarket { .. } => {
                "unknown_market"
            }
            EstimateError::UnknownCountry { .. } => "unknown_country",
            EstimateError::NoCallingCode { .. } => "no_calling_code",
            EstimateError::NoMarket { .. } => "no_market",
            EstimateError::UnknownCategory { .. } => "unknown_category",
            EstimateError::InvalidShare { .. } => "invalid_share",
            EstimateError::InconsistentShares { .. } => "inconsistent_shares",
            EstimateError::UnsupportedMonth { .. } => "unsupported_month",
            EstimateError::NoPreviousEra { .. } => "no_previous_era",
            EstimateError::NoPhones => "no_phones",
            EstimateError::NoTraffic => "no_traffic",
            EstimateError::TooManyMessages { .. } => "too_many_messages",
            EstimateError::MissingPrimaryCountry | EstimateError::CallsNeedPrimaryCountry => {
                "missing_primary_country"
            }
            EstimateError::MissingCallRate { .. } => "missing_rate",
            EstimateError::InvalidInput { .. } => "invalid_input",
            EstimateError::MissingRate { .. } => "missing_rate",
            EstimateError::Rating { code, .. } => code,
        }
    }

    /// True when the input describes traffic that cannot be priced with the rate data (a
    /// missing rate), rather than being malformed: the CLI exits 3 then, 2 otherwise.
    pub fn is_unratable(&self) -> bool {
        matches!(
            self,
            EstimateError::MissingRate { .. }
                | EstimateError::MissingCallRate { .. }
                | EstimateError::Rating { .. }
        )
    }
}
