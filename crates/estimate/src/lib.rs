//! `wabill-estimate`: the WhatsApp cost calculator. "What will WhatsApp cost us per month?"
//! answered by building the month of events the expected traffic would produce and rating it
//! with the rating core, so that an estimate and a real bill never disagree on a rule.
//!
//! Pure, like the core: no IO, no clock, no randomness. [`estimate`] takes an [`EstimateInput`]
//! (month, currency, timezone, phone numbers, primary country, authentication-international
//! eligibility, exact shares, and traffic lines per market or country and category) and returns
//! an [`Estimate`] per market × category; [`estimate_with_compare`] also prices the same traffic
//! in the last month of the previous pricing era. Modules: `input` (the question and its
//! parsers), `users` (real numbers per country, found through the market table), `synth` (the
//! synthetic month), `report` (rating and summing), `render` (table, JSON, CSV), `request` (an
//! estimate asked as one JSON document, as `POST /v1/estimate` takes it), `error`.

pub mod error;
pub mod input;
pub mod render;
pub mod report;
pub mod request;
pub mod synth;
pub mod users;

/// The timezone type of [`EstimateInput::timezone`].
pub use chrono_tz::Tz;

pub use error::EstimateError;
pub use input::{
    parse_auth_international, parse_count, parse_currency, parse_month, parse_timezone,
    parse_traffic, parse_traffic_calls, AuthIntl, CallTraffic, EstimateInput, Share, Target,
    TrafficCategory, TrafficLine, DEFAULT_CALL_SECONDS, MAX_CALL_MINUTES, MAX_CALL_SECONDS,
};
pub use render::{render, Format};
pub use report::{
    compare_month, era_of, estimate, estimate_in, estimate_with_compare, price_calls, CallPrice,
    CallRow, Comparison, Estimate, Price, Row, Tally, Total,
};
pub use request::{answer, parse_request, Request, MAX_PHONES, MAX_TRAFFIC_LINES};
pub use synth::{synthesize, Opening, ResolvedLine, SynthStats, SyntheticMonth, MAX_MESSAGES};
