//! `wabill estimate`: what a month of expected WhatsApp traffic will cost. Options in, an
//! `EstimateInput` out to `wabill-estimate` (which synthesizes the month and rates it with the
//! rating core), and its table, JSON or CSV printed. No pricing rule lives here.

use crate::rate_cmd::{EXIT_INVALID, EXIT_UNRATABLE};
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
use wabill_estimate::{
    parse_auth_international, parse_count, parse_currency, parse_month, parse_timezone,
    parse_traffic, parse_traffic_calls, render, AuthIntl, CallTraffic, EstimateError,
    EstimateInput, Format, Share, Target, TrafficCategory, TrafficLine, Tz, DEFAULT_CALL_SECONDS,
};
use wabill_rating::{Currency, Month};

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    wabill estimate --month 2026-11 --market Brazil --marketing 100000\n  \
    wabill estimate --month 2026-11 --country IN --authentication 50000 --primary-country BR --auth-international\n  \
    wabill estimate --month 2026-11 --market Brazil --service 20000 --phones 3 --compare\n  \
    wabill estimate --month 2026-11 --input traffic.csv --format json   (CSV: market,category,messages)\n  \
    wabill estimate --month 2026-11 --market Brazil --marketing 1000 --primary-country BR --call-minutes 5000 --business-initiated-share 80% --average-call-seconds 150 --rates DIR")]
pub struct EstimateArgs {
    /// The month to estimate, YYYY-MM (calendar of --timezone).
    #[arg(long, value_parser = typed(parse_month))]
    pub month: Month,
    /// The WABA's currency, which picks the rate card.
    #[arg(long, default_value = "USD", value_parser = typed(parse_currency))]
    pub currency: Currency,
    /// The WABA's timezone (IANA name): months, allowances and tiers follow it.
    #[arg(long, default_value = "UTC", value_parser = typed(parse_timezone))]
    pub timezone: Tz,
    /// Business phone numbers the messages are spread over.
    #[arg(long, default_value_t = 1)]
    pub phones: u32,
    /// The business's country (ISO 3166 alpha-2); needed with --auth-international.
    #[arg(long, value_name = "ISO2")]
    pub primary_country: Option<String>,
    /// Eligible for authentication-international rates: all month, or from START (YYYY-MM-DD).
    #[arg(long, value_name = "START", num_args = 0..=1, default_missing_value = "",
          value_parser = typed(parse_auth_international))]
    pub auth_international: Option<AuthIntl>,
    /// Share of utility templates sent inside a customer service window (40%, 125‰).
    #[arg(long, value_name = "SHARE", default_value = "0%", value_parser = typed(share),
          allow_hyphen_values = true)]
    pub utility_in_window: Share,
    /// Share of conversations started from a free entry point, a click-to-WhatsApp ad (10%).
    #[arg(long, value_name = "SHARE", default_value = "0%", value_parser = typed(share),
          allow_hyphen_values = true)]
    pub entry_point_share: Share,
    /// Minutes of WhatsApp calls a month, to users of --primary-country; priced with the
    /// calling card of --rates DIR (none is bundled).
    #[arg(long, value_name = "N", value_parser = count)]
    pub call_minutes: Option<u64>,
    /// Share of the calls the business places (charged); the rest are user-initiated, free.
    #[arg(long, value_name = "SHARE", value_parser = typed(share), allow_hyphen_values = true,
          requires = "call_minutes")]
    pub business_initiated_share: Option<Share>,
    /// Average call length in seconds.
    #[arg(long, value_name = "S", requires = "call_minutes")]
    pub average_call_seconds: Option<u64>,
    /// Also price the same traffic in the last month before this month's pricing era began.
    #[arg(long)]
    pub compare: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// A directory of rate data to use instead of the bundled data (see `wabill rates import`).
    #[arg(long, value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// The users' market (a Meta market name, e.g. Brazil, "Rest of Africa").
    #[arg(long, conflicts_with = "country")]
    pub market: Option<String>,
    /// The users' country (ISO 3166 alpha-2, e.g. BR).
    #[arg(long, value_name = "ISO2")]
    pub country: Option<String>,
    /// Marketing templates a month (to --market or --country).
    #[arg(long, value_name = "N", value_parser = count)]
    pub marketing: Option<u64>,
    /// Utility templates a month.
    #[arg(long, value_name = "N", value_parser = count)]
    pub utility: Option<u64>,
    /// Authentication templates (one-time passwords) a month.
    #[arg(long, value_name = "N", value_parser = count)]
    pub authentication: Option<u64>,
    /// Non-template (service) replies a month, each inside a customer service window.
    #[arg(long, value_name = "N", value_parser = count)]
    pub service: Option<u64>,
    /// Traffic of many markets: CSV `market,category,messages` (or `country,...`) or a JSON
    /// array of objects with those fields; `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

fn count(s: &str) -> Result<u64, String> {
    parse_count(s)
}

fn share(s: &str) -> Result<Share, EstimateError> {
    Share::parse("share", s)
}

/// A library parser as a clap value parser: clap names the option and exits 2; the message
/// carries the error's stable code.
fn typed<T: 'static>(
    parse: fn(&str) -> Result<T, EstimateError>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s| parse(s).map_err(|e| format!("[{}] {e}", e.code()))
}

pub fn run(args: &EstimateArgs) -> Result<i32> {
    let input = match build_input(args)? {
        Ok(input) => input,
        Err(e) => return report(&e),
    };
    let tariff = crate::tariff::load(args.rates.as_deref())?;
    let format = match args.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Json => Format::Json,
        OutputFormat::Csv => Format::Csv,
    };
    let text = if args.compare {
        match wabill_estimate::estimate_with_compare(&tariff, &input) {
            Ok(c) => render(&c.estimate, Some(&c.previous), format),
            Err(e) => return report(&e),
        }
    } else {
        match wabill_estimate::estimate(&tariff, &input) {
            Ok(e) => render(&e, None, format),
            Err(e) => return report(&e),
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// Exit 3 when the traffic cannot be priced with the rate data, 2 when the input is wrong.
fn report(e: &EstimateError) -> Result<i32> {
    let mut err = std::io::stderr().lock();
    match e {
        EstimateError::MissingRate { causes } => {
            for (cause, n) in causes {
                writeln!(err, "error: [missing_rate] {cause} ({n} messages)")?;
            }
            writeln!(
                err,
                "error: the estimate needs rates the rate data does not have (see data/SOURCES.md; add them with `wabill rates import` and --rates DIR)"
            )?;
        }
        e => writeln!(err, "error: [{}] {e}", e.code())?,
    }
    Ok(if e.is_unratable() {
        EXIT_UNRATABLE
    } else {
        EXIT_INVALID
    })
}

/// The options as an `EstimateInput`; the outer error is IO (reading --input).
fn build_input(args: &EstimateArgs) -> Result<Result<EstimateInput, EstimateError>> {
    let mut traffic = Vec::new();
    let mut file_calls = None;
    if let Some(path) = &args.input {
        let source = crate::input::read_source(path)?;
        match parse_traffic(&source.text) {
            Ok(lines) => traffic.extend(lines),
            Err(e) => return Ok(Err(e)),
        }
        match parse_traffic_calls(&source.text) {
            Ok(calls) => file_calls = calls,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(assemble(args, traffic).and_then(|mut input| {
        input.calls = match (args.call_minutes, file_calls) {
            (Some(_), Some(_)) => {
                return Err(EstimateError::InvalidInput {
                    what: "--call-minutes".into(),
                    why: "the --input file describes calls too: give them in one place".into(),
                })
            }
            (Some(minutes), None) => Some(CallTraffic {
                minutes,
                business_initiated: args.business_initiated_share.unwrap_or(Share::ALL),
                average_seconds: args.average_call_seconds.unwrap_or(DEFAULT_CALL_SECONDS),
            }),
            (None, calls) => calls,
        };
        Ok(input)
    }))
}

fn assemble(
    args: &EstimateArgs,
    mut traffic: Vec<TrafficLine>,
) -> Result<EstimateInput, EstimateError> {
    let mut input = EstimateInput::new(args.month, args.currency);
    input.timezone = args.timezone;
    input.phones = args.phones;
    input.primary_country = args.primary_country.clone();
    input.auth_international = args.auth_international.unwrap_or(AuthIntl::No);
    input.utility_in_window = args.utility_in_window;
    input.entry_point_share = args.entry_point_share;

    let counts = [
        (TrafficCategory::Marketing, args.marketing),
        (TrafficCategory::Utility, args.utility),
        (TrafficCategory::Authentication, args.authentication),
        (TrafficCategory::Service, args.service),
    ];
    let target = match (&args.market, &args.country) {
        (Some(m), _) => Some(Target::Market(m.clone())),
        (None, Some(c)) => Some(Target::Country(c.clone())),
        (None, None) => None,
    };
    let any_count = counts.iter().any(|(_, n)| n.is_some());
    match target {
        Some(target) => {
            if !any_count {
                return Err(EstimateError::InvalidInput {
                    what: format!("{target}"),
                    why: "give its traffic with --marketing, --utility, --authentication or --service".into(),
                });
            }
            for (category, n) in counts {
                if let Some(messages) = n {
                    traffic.push(TrafficLine {
                        target: target.clone(),
                        category,
                        messages,
                    });
                }
            }
        }
        None if any_count => {
            return Err(EstimateError::InvalidInput {
                what: "--marketing, --utility, --authentication, --service".into(),
                why: "say whose traffic it is with --market or --country".into(),
            })
        }
        None => {}
    }
    input.traffic = traffic;
    Ok(input)
}
