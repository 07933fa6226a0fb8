//! What an estimate is asked: the month, the business's settings and its expected traffic, and
//! the parsers for the ways a user writes them (shares such as `40%` or `125‰`, message counts
//! such as `100,000`, a traffic file in CSV or JSON). Shares are exact: parts per billion in an
//! integer, never a float.

use crate::error::EstimateError;
use chrono_tz::Tz;
use wabill_rating::{Category, Currency, Date, Decimal, MessageKind, Month};

/// The expected traffic and settings of one WhatsApp Business Account for one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstimateInput {
    /// The calendar month to price (in the WABA's timezone).
    pub month: Month,
    /// The currency of the WABA, which picks the rate card.
    pub currency: Currency,
    /// The WABA's timezone: months, free allowances, tiers and eras follow its calendar.
    pub timezone: Tz,
    /// Business phone numbers the messages are spread over (each has its own monthly free
    /// service allowance from 2026-10-01).
    pub phones: u32,
    /// The business's country (ISO 3166 alpha-2): authentication to it is never international.
    pub primary_country: Option<String>,
    pub auth_international: AuthIntl,
    /// Share of utility templates sent inside an open customer service window.
    pub utility_in_window: Share,
    /// Share of conversations started by the user from a free entry point (click-to-WhatsApp
    /// ad), for every line of traffic.
    pub entry_point_share: Share,
    pub traffic: Vec<TrafficLine>,
    /// Calls a month (WhatsApp Business Calling), to users of the primary country (D160).
    pub calls: Option<CallTraffic>,
}

/// The month's calls: total minutes talked, the share the business placed (the rest the users
/// placed, free) and the average length of a call (decisions.md D160-D162).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTraffic {
    /// Minutes talked a month, all calls together.
    pub minutes: u64,
    /// Share of the calls the business placed (charged); the rest are user-initiated (free).
    pub business_initiated: Share,
    /// Average call length in whole seconds.
    pub average_seconds: u64,
}

/// Most call minutes one estimate synthesizes (a call is its own user, like a message).
pub const MAX_CALL_MINUTES: u64 = 10_000_000;
/// Longest average call taken, in seconds (one day).
pub const MAX_CALL_SECONDS: u64 = 86_400;
/// The average call length when none is given (D161).
pub const DEFAULT_CALL_SECONDS: u64 = 120;

impl EstimateInput {
    /// An input with the defaults: UTC, one phone number, no primary country, not eligible for
    /// authentication-international, no shares, no traffic yet.
    pub fn new(month: Month, currency: Currency) -> EstimateInput {
        EstimateInput {
            month,
            currency,
            timezone: Tz::UTC,
            phones: 1,
            primary_country: None,
            auth_international: AuthIntl::No,
            utility_in_window: Share::ZERO,
            entry_point_share: Share::ZERO,
            traffic: Vec::new(),
            calls: None,
        }
    }
}

/// Authentication-international eligibility of the business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthIntl {
    No,
    /// Eligible for the whole month (and for the month `--compare` uses).
    Yes,
    /// Eligible from local midnight of this date (in the WABA's timezone).
    From(Date),
}

/// One line of expected traffic: where the users are, what is sent, how much a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficLine {
    pub target: Target,
    pub category: TrafficCategory,
    /// Delivered messages a month.
    pub messages: u64,
}

/// Where a line's users are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Meta market name, as in the rate card (`Brazil`, `Rest of Africa`).
    Market(String),
    /// A country, ISO 3166 alpha-2 (`BR`).
    Country(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Market(m) => write!(f, "market '{m}'"),
            Target::Country(c) => write!(f, "country {c}"),
        }
    }
}

/// What a line sends: a template of a category, or non-template (service) messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrafficCategory {
    Marketing,
    Utility,
    Authentication,
    Service,
}

impl TrafficCategory {
    pub const ALL: [TrafficCategory; 4] = [
        TrafficCategory::Marketing,
        TrafficCategory::Utility,
        TrafficCategory::Authentication,
        TrafficCategory::Service,
    ];
    pub fn as_str(self) -> &'static str {
        self.category().as_str()
    }
    pub fn parse(s: &str) -> Result<TrafficCategory, EstimateError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "marketing" => Ok(TrafficCategory::Marketing),
            "utility" => Ok(TrafficCategory::Utility),
            "authentication" => Ok(TrafficCategory::Authentication),
            "service" => Ok(TrafficCategory::Service),
            _ => Err(EstimateError::UnknownCategory {
                category: s.to_string(),
            }),
        }
    }
    /// The rating core's category of the message.
    pub fn category(self) -> Category {
        match self {
            TrafficCategory::Marketing => Category::Marketing,
            TrafficCategory::Utility => Category::Utility,
            TrafficCategory::Authentication => Category::Authentication,
            TrafficCategory::Service => Category::Service,
        }
    }
    /// Service messages are non-template messages (a reply in a customer service window).
    pub fn message_kind(self) -> MessageKind {
        match self {
            TrafficCategory::Service => MessageKind::NonTemplate,
            c => MessageKind::Template(c.category()),
        }
    }
}

const BILLION: u64 = 1_000_000_000;

/// An exact share between 0 and 100 %, in parts per billion (so `12.5%` and `125‰` are the
/// same value, and `33.3333333%` is still exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Share {
    ppb: u32,
}

impl Share {
    pub const ZERO: Share = Share { ppb: 0 };
    pub const ALL: Share = Share { ppb: 1_000_000_000 };

    /// From per mille, 0 to 1000.
    pub fn from_permille(permille: u32) -> Result<Share, EstimateError> {
        Self::from_decimal_permille("share", Decimal::from_int(permille.into()), "‰")
    }

    /// From an exact decimal percentage, 0 to 100.
    pub fn from_percent(percent: Decimal) -> Result<Share, EstimateError> {
        Self::from_decimal(
            "share",
            percent,
            10_000_000,
            &format!("{percent}%"),
            "100 %",
        )
    }

    fn from_decimal_permille(
        what: &'static str,
        permille: Decimal,
        unit: &str,
    ) -> Result<Share, EstimateError> {
        Self::from_decimal(
            what,
            permille,
            1_000_000,
            &format!("{permille}{unit}"),
            "1000 ‰",
        )
    }

    /// `value` in units of `ppb_per_unit` parts per billion (10⁷ for per cent, 10⁶ for per mille).
    fn from_decimal(
        what: &'static str,
        value: Decimal,
        ppb_per_unit: u64,
        shown: &str,
        max: &str,
    ) -> Result<Share, EstimateError> {
        let bad = |why: String| EstimateError::InvalidShare {
            what,
            value: shown.to_string(),
            why,
        };
        if value.nanos() < 0 {
            return Err(bad("a share cannot be negative".into()));
        }
        // value (in 10⁻⁹ units) × ppb_per_unit / 10⁹ must be a whole number of ppb.
        let scaled = value.nanos() * i128::from(ppb_per_unit);
        if scaled % i128::from(BILLION) != 0 {
            return Err(bad(
                "more decimals than a share keeps (parts per billion)".into()
            ));
        }
        let ppb = scaled / i128::from(BILLION);
        if ppb > i128::from(BILLION) {
            return Err(bad(format!("a share cannot be more than {max}")));
        }
        Ok(Share { ppb: ppb as u32 })
    }

    /// Parses `40%`, `12.5%`, `125‰` or `125permille`; `what` names the option in errors.
    pub fn parse(what: &'static str, s: &str) -> Result<Share, EstimateError> {
        let t = s.trim();
        let (number, per_unit, unit) = if let Some(n) = t.strip_suffix('%') {
            (n, 10_000_000, "%")
        } else if let Some(n) = t.strip_suffix('‰').or_else(|| t.strip_suffix("permille")) {
            (n, 1_000_000, "‰")
        } else {
            return Err(EstimateError::InvalidShare {
                what,
                value: s.to_string(),
                why: "give a percentage (40%, 12.5%) or per mille (125‰, 125permille)".into(),
            });
        };
        let value: Decimal = number
            .trim()
            .parse()
            .map_err(|e| EstimateError::InvalidShare {
                what,
                value: s.to_string(),
                why: format!("{e}"),
            })?;
        let max = if unit == "%" { "100 %" } else { "1000 ‰" };
        Self::from_decimal(what, value, per_unit, s.trim(), max)
    }

    pub fn parts_per_billion(self) -> u32 {
        self.ppb
    }

    /// The whole number of messages out of `n` this share is: floor(n × share).
    pub fn of(self, n: u64) -> u64 {
        (u128::from(n) * u128::from(self.ppb) / u128::from(BILLION)) as u64
    }

    /// The share as an exact percentage.
    pub fn percent(self) -> Decimal {
        Decimal::from_nanos(i128::from(self.ppb) * 100)
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

/// Parses a month `YYYY-MM`.
pub fn parse_month(s: &str) -> Result<Month, EstimateError> {
    Month::parse(s.trim()).ok_or_else(|| EstimateError::InvalidInput {
        what: format!("month '{s}'"),
        why: "expected YYYY-MM, such as 2026-11".into(),
    })
}

/// Parses an ISO 4217 currency code (`usd` is read as `USD`).
pub fn parse_currency(s: &str) -> Result<Currency, EstimateError> {
    Currency::parse(&s.trim().to_ascii_uppercase()).ok_or_else(|| EstimateError::InvalidInput {
        what: format!("currency '{s}'"),
        why: "expected an ISO 4217 code such as USD, EUR or INR".into(),
    })
}

/// Parses an IANA timezone name (`America/Sao_Paulo`, `UTC`).
pub fn parse_timezone(s: &str) -> Result<Tz, EstimateError> {
    s.trim().parse().map_err(|_| EstimateError::InvalidInput {
        what: format!("timezone '{s}'"),
        why: "expected an IANA timezone name such as UTC or America/Sao_Paulo".into(),
    })
}

/// Parses authentication-international eligibility: empty, `yes` or `true` (eligible), `no` or
/// `false`, or the date eligibility starts (`YYYY-MM-DD`, WABA time).
pub fn parse_auth_international(s: &str) -> Result<AuthIntl, EstimateError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "yes" | "true" => Ok(AuthIntl::Yes),
        "no" | "false" => Ok(AuthIntl::No),
        t => Date::parse(t)
            .map(AuthIntl::From)
            .ok_or_else(|| EstimateError::InvalidInput {
                what: format!("authentication-international start '{s}'"),
                why: "expected a date YYYY-MM-DD (or nothing: eligible all month)".into(),
            }),
    }
}

/// Parses a count of messages: digits, optionally grouped with `,` or `_` (`100,000`).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits: String = t.chars().filter(|c| *c != ',' && *c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{s}' is not a whole number of messages (digits, optionally grouped: 100,000)"
        ));
    }
    digits
        .parse()
        .map_err(|_| format!("'{s}' is too large a number of messages"))
}

/// Reads a traffic file: JSON (an array of objects, or an object whose `traffic` is one) or CSV
/// with a header. Either way each line has `market` or `country` (exactly one), `category` and
/// `messages`.
pub fn parse_traffic(text: &str) -> Result<Vec<TrafficLine>, EstimateError> {
    let text = text.trim_start_matches('\u{feff}');
    match text.trim_start().as_bytes().first() {
        Some(b'[' | b'{') => parse_traffic_json(text),
        _ => parse_traffic_csv(text),
    }
}

/// The calls of a traffic file: a JSON object's `call_minutes`, `business_initiated_share` and
/// `average_call_seconds` (as in `POST /v1/estimate`); None for a CSV file, a JSON array or an
/// object without them.
pub fn parse_traffic_calls(text: &str) -> Result<Option<CallTraffic>, EstimateError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| invalid("traffic file", format!("not JSON: {e}")))?;
    let serde_json::Value::Object(o) = &value else {
        return Ok(None);
    };
    let whole = |k: &str, min: u64, max: u64| -> Result<Option<u64>, EstimateError> {
        let n = match o.get(k) {
            None => return Ok(None),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => parse_count(s).ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                format!("traffic file: {k}"),
                format!("must be a whole number from {min} to {max}"),
            )),
        }
    };
    let minutes = whole("call_minutes", 0, MAX_CALL_MINUTES)?;
    let average = whole("average_call_seconds", 1, MAX_CALL_SECONDS)?;
    let share = match o.get("business_initiated_share") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(Share::parse("business_initiated_share", s)?),
        Some(_) => {
            return Err(invalid(
                "traffic file: business_initiated_share",
                "must be a string such as \"80%\"",
            ))
        }
    };
    match minutes {
        None if average.is_some() || share.is_some() => Err(invalid(
            "traffic file: business_initiated_share, average_call_seconds",
            "describe calls: give call_minutes too",
        )),
        None => Ok(None),
        Some(minutes) => Ok(Some(CallTraffic {
            minutes,
            business_initiated: share.unwrap_or(Share::ALL),
            average_seconds: average.unwrap_or(DEFAULT_CALL_SECONDS),
        })),
    }
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> EstimateError {
    EstimateError::InvalidInput {
        what: what.into(),
        why: why.into(),
    }
}

fn line_of(
    what: &str,
    market: Option<&str>,
    country: Option<&str>,
    category: Option<&str>,
    messages: Result<u64, String>,
) -> Result<TrafficLine, EstimateError> {
    let target = match (
        market.map(str::trim).filter(|s| !s.is_empty()),
        country.map(str::trim).filter(|s| !s.is_empty()),
    ) {
        (Some(m), None) => Target::Market(m.to_string()),
        (None, Some(c)) => Target::Country(c.to_ascii_uppercase()),
        (Some(_), Some(_)) => return Err(invalid(what, "give market or country, not both")),
        (None, None) => return Err(invalid(what, "market or country is required")),
    };
    let category = match category.map(str::trim).filter(|s| !s.is_empty()) {
        Some(c) => TrafficCategory::parse(c)?,
        None => return Err(invalid(what, "category is required")),
    };
    let messages = messages.map_err(|why| invalid(what, format!("messages: {why}")))?;
    Ok(TrafficLine {
        target,
        category,
        messages,
    })
}

fn parse_traffic_csv(text: &str) -> Result<Vec<TrafficLine>, EstimateError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| invalid("traffic file", e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (market, country, category, messages) = (
        col("market"),
        col("country"),
        col("category"),
        col("messages"),
    );
    if (market.is_none() && country.is_none()) || category.is_none() || messages.is_none() {
        return Err(invalid(
            "traffic file",
            format!(
                "the CSV header must name market (or country), category and messages; it is '{}'",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| invalid("traffic file", e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |c: Option<usize>| c.and_then(|i| rec.get(i));
        out.push(line_of(
            &format!("traffic file line {line}"),
            get(market),
            get(country),
            get(category),
            parse_count(get(messages).unwrap_or("")),
        )?);
    }
    Ok(out)
}

fn parse_traffic_json(text: &str) -> Result<Vec<TrafficLine>, EstimateError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| invalid("traffic file", format!("not JSON: {e}")))?;
    let items = match &value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("traffic") {
            Some(serde_json::Value::Array(a)) => a,
            _ => {
                return Err(invalid(
                    "traffic file",
                    "a JSON object must have a \"traffic\" array",
                ))
            }
        },
        _ => return Err(invalid("traffic file", "expected a JSON array of lines")),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let what = format!("traffic line {}", i + 1);
        let serde_json::Value::Object(o) = item else {
            return Err(invalid(what, "is not a JSON object"));
        };
        for key in o.keys() {
            if !["market", "country", "category", "messages"].contains(&key.as_str()) {
                return Err(invalid(
                    what,
                    format!(
                        "unknown field '{key}' (expected market or country, category, messages)"
                    ),
                ));
            }
        }
        let text_field = |k: &str| -> Result<Option<&str>, EstimateError> {
            match o.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(invalid(&what, format!("{k} must be a string"))),
            }
        };
        let messages = match o.get("messages") {
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("{n} is not a whole number of messages")),
            Some(serde_json::Value::String(s)) => parse_count(s),
            _ => Err("is required (a whole number)".to_string()),
        };
        out.push(line_of(
            &what,
            text_field("market")?,
            text_field("country")?,
            text_field("category")?,
            messages,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_exact_in_percent_and_per_mille() {
        let a = Share::parse("share", "12.5%").unwrap();
        let b = Share::parse("share", "125‰").unwrap();
        let c = Share::parse("share", "125permille").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.of(1000), 125);
        assert_eq!(a.of(7), 0, "floor(7 × 12.5 %) = 0");
        assert_eq!(a.to_string(), "12.5%");
        assert_eq!(Share::parse("share", "100%").unwrap(), Share::ALL);
        assert_eq!(Share::parse("share", "33.3333333%").unwrap().of(3), 0);
        assert_eq!(Share::from_permille(400).unwrap().to_string(), "40%");
        assert_eq!(Share::ALL.of(u64::MAX), u64::MAX);
    }

    #[test]
    fn impossible_shares_are_refused_with_a_reason() {
        for (s, why) in [
            ("150%", "more than 100 %"),
            ("1001‰", "more than 1000 ‰"),
            ("-5%", "negative"),
            ("40", "percentage"),
            ("0.4", "percentage"),
            ("4o%", "not a decimal"),
            ("12.345678912%", "decimals"),
        ] {
            let e = Share::parse("--entry-point-share", s).unwrap_err();
            assert_eq!(e.code(), "invalid_share");
            let text = e.to_string();
            assert!(
                text.contains(why) && text.contains("--entry-point-share"),
                "{s}: {text}"
            );
        }
        assert!(Share::from_permille(1001).is_err());
    }

    #[test]
    fn counts_accept_grouping() {
        assert_eq!(parse_count("100,000"), Ok(100_000));
        assert_eq!(parse_count("1_000"), Ok(1000));
        assert!(parse_count("1e5").is_err());
        assert!(parse_count("-3").is_err());
        assert!(parse_count("").is_err());
    }

    #[test]
    fn traffic_files_in_csv_and_json() {
        let csv =
            "market,category,messages\nBrazil,marketing,\"100,000\"\nRest of Africa,utility,20\n";
        let lines = parse_traffic(csv).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].target, Target::Market("Brazil".into()));
        assert_eq!(lines[0].messages, 100_000);
        let csv = "country,category,messages\nin,authentication,5\n";
        assert_eq!(
            parse_traffic(csv).unwrap()[0].target,
            Target::Country("IN".into())
        );
        let json = r#"[{"market":"Brazil","category":"service","messages":3},
                       {"country":"IN","category":"authentication","messages":"1,000"}]"#;
        let lines = parse_traffic(json).unwrap();
        assert_eq!(lines[1].messages, 1000);
        assert_eq!(lines[0].category, TrafficCategory::Service);
        let wrapped = r#"{"traffic":[{"market":"Brazil","category":"utility","messages":3}]}"#;
        assert_eq!(parse_traffic(wrapped).unwrap().len(), 1);
    }

    #[test]
    fn traffic_file_errors_name_the_line_and_field() {
        let e = parse_traffic("market,category,messages\nBrazil,promo,3\n").unwrap_err();
        assert_eq!(e.code(), "unknown_category");
        assert!(e.to_string().contains("'promo'"), "{e}");
        let e = parse_traffic("market,category,messages\nBrazil,utility,lots\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("lots"),
            "{e}"
        );
        let e = parse_traffic("market,kind,messages\n").unwrap_err();
        assert!(e.to_string().contains("header"), "{e}");
        let e =
            parse_traffic(r#"[{"market":"Brazil","category":"utility","mesages":3}]"#).unwrap_err();
        assert!(e.to_string().contains("'mesages'"), "{e}");
        let e = parse_traffic(
            r#"[{"market":"Brazil","country":"BR","category":"utility","messages":3}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }
}
