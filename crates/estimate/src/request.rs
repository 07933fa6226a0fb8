//! An estimate asked as one JSON document, as `POST /v1/estimate` takes it: the options of
//! `wabill estimate` under their flags' names in snake_case, and its traffic as the `traffic`
//! array of an `--input` JSON file (so the same document, given to `wabill estimate --input`,
//! is read for its traffic). Read strictly, exactly as the service's OpenAPI document states it
//! (decisions.md D171): no unknown field, no `null`, no whitespace around a value, numbers as
//! JSON integers, categories in lower case; the few rules between values (a share above 100 %,
//! an unknown market, too many messages) are the estimate's own errors.
//!
//! ```json
//! {"month":"2026-11","currency":"USD","timezone":"UTC","phones":1,
//!  "primary_country":"BR","auth_international":true,
//!  "utility_in_window":"40%","entry_point_share":"10%","compare":true,
//!  "call_minutes":5000,"business_initiated_share":"80%","average_call_seconds":150,
//!  "traffic":[{"market":"Brazil","category":"marketing","messages":100000},
//!             {"country":"IN","category":"authentication","messages":5000}]}
//! ```

use crate::error::EstimateError;
use crate::input::{
    parse_timezone, AuthIntl, CallTraffic, EstimateInput, Share, Target, TrafficCategory,
    TrafficLine, DEFAULT_CALL_SECONDS, MAX_CALL_MINUTES, MAX_CALL_SECONDS,
};
use crate::render::{render, Format};
use crate::synth::MAX_MESSAGES;
use serde_json::{Map, Value};
use wabill_rating::{Currency, Date, Month, Tariff};

/// Most traffic lines one request may carry (every market × category is far fewer).
pub const MAX_TRAFFIC_LINES: usize = 1000;
/// Most business phone numbers one request may spread its messages over.
pub const MAX_PHONES: u32 = 1000;
/// Longest market name taken, in characters (Meta's longest is under 40).
pub const MAX_MARKET_CHARS: usize = 100;
/// Fields of the document, in the order the OpenAPI document lists them.
pub const FIELDS: [&str; 13] = [
    "month",
    "currency",
    "timezone",
    "phones",
    "primary_country",
    "auth_international",
    "utility_in_window",
    "entry_point_share",
    "compare",
    "traffic",
    "call_minutes",
    "business_initiated_share",
    "average_call_seconds",
];

/// An estimate asked: the input, and whether to price the previous era's month too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub input: EstimateInput,
    pub compare: bool,
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> EstimateError {
    EstimateError::InvalidInput {
        what: what.into(),
        why: why.into(),
    }
}

fn string<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, EstimateError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(key, "must be a string")),
    }
}

fn boolean(o: &Map<String, Value>, key: &str) -> Result<Option<bool>, EstimateError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(key, "must be true or false")),
    }
}

fn integer(
    o: &Map<String, Value>,
    key: &str,
    what: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, EstimateError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(invalid(
                what,
                format!("{n} is not a whole number from {min} to {max}"),
            )),
        },
        Some(_) => Err(invalid(what, "must be a whole number (a JSON integer)")),
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM`, nothing around it.
fn month(s: &str) -> Result<Month, EstimateError> {
    let ok = s.len() == 7 && digits(&s[..4]) && &s[4..5] == "-" && digits(&s[5..]);
    ok.then(|| Month::parse(s))
        .flatten()
        .ok_or_else(|| invalid(format!("month '{s}'"), "expected YYYY-MM, such as 2026-11"))
}

/// `YYYY-MM-DD`, nothing around it.
fn date(what: &str, s: &str) -> Result<Date, EstimateError> {
    let b = s.as_bytes();
    let ok = b.len() == 10
        && digits(&s[..4])
        && b[4] == b'-'
        && digits(&s[5..7])
        && b[7] == b'-'
        && digits(&s[8..]);
    ok.then(|| Date::parse(s))
        .flatten()
        .ok_or_else(|| invalid(format!("{what} '{s}'"), "expected a date YYYY-MM-DD"))
}

/// Two upper-case letters.
fn iso2(what: &str, s: &str) -> Result<String, EstimateError> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(s.to_string())
    } else {
        Err(invalid(
            format!("{what} '{s}'"),
            "expected an ISO 3166 alpha-2 code in upper case, such as BR",
        ))
    }
}

/// `40%`, `12.5%`, `125‰`: digits, an optional fraction, the unit; nothing around it.
fn share(what: &'static str, s: &str) -> Result<Share, EstimateError> {
    let number = s.strip_suffix('%').or_else(|| s.strip_suffix('‰'));
    let well_formed = number.is_some_and(|n| {
        let (whole, fraction) = n.split_once('.').unwrap_or((n, "1"));
        (1..=4).contains(&whole.len())
            && digits(whole)
            && (1..=9).contains(&fraction.len())
            && digits(fraction)
    });
    if !well_formed {
        return Err(EstimateError::InvalidShare {
            what,
            value: s.to_string(),
            why: "give a percentage (40%, 12.5%) or per mille (125‰)".into(),
        });
    }
    Share::parse(what, s)
}

fn category(what: &str, s: &str) -> Result<TrafficCategory, EstimateError> {
    TrafficCategory::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| {
            invalid(
                what,
                format!(
                    "unknown category '{s}' (expected marketing, utility, authentication or service, in lower case)"
                ),
            )
        })
}

fn traffic_line(i: usize, item: &Value) -> Result<TrafficLine, EstimateError> {
    let what = format!("traffic line {}", i + 1);
    let Value::Object(o) = item else {
        return Err(invalid(what, "is not a JSON object"));
    };
    if let Some(key) = o
        .keys()
        .find(|k| !["market", "country", "category", "messages"].contains(&k.as_str()))
    {
        return Err(invalid(
            what,
            format!("unknown field '{key}' (expected market or country, category, messages)"),
        ));
    }
    let field = |k: &str| format!("{what}: {k}");
    let target = match (
        string(o, "market").map_err(|_| invalid(field("market"), "must be a string"))?,
        string(o, "country").map_err(|_| invalid(field("country"), "must be a string"))?,
    ) {
        (Some(m), None) => {
            let n = m.chars().count();
            if n == 0 || n > MAX_MARKET_CHARS || m.trim() != m {
                return Err(invalid(
                    field("market"),
                    format!(
                        "a market name of 1 to {MAX_MARKET_CHARS} characters, without spaces around it"
                    ),
                ));
            }
            Target::Market(m.to_string())
        }
        (None, Some(c)) => Target::Country(iso2(&field("country"), c)?),
        (Some(_), Some(_)) => return Err(invalid(what, "give market or country, not both")),
        (None, None) => return Err(invalid(what, "market or country is required")),
    };
    let category =
        match string(o, "category").map_err(|_| invalid(field("category"), "must be a string"))? {
            Some(c) => category(&field("category"), c)?,
            None => return Err(invalid(what, "category is required")),
        };
    let messages = integer(o, "messages", &field("messages"), 0, MAX_MESSAGES)?
        .ok_or_else(|| invalid(&what, "messages is required (a whole number)"))?;
    Ok(TrafficLine {
        target,
        category,
        messages,
    })
}

/// Reads a request document (see the module's documentation).
pub fn parse_request(value: &Value) -> Result<Request, EstimateError> {
    let Value::Object(o) = value else {
        return Err(invalid("the request", "must be a JSON object"));
    };
    if let Some(key) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(
            "the request",
            format!("unknown field '{key}' (expected {})", FIELDS.join(", ")),
        ));
    }
    let month = month(string(o, "month")?.ok_or_else(|| invalid("month", "is required"))?)?;
    let currency = match string(o, "currency")? {
        None => Currency::parse("USD").expect("a currency"),
        Some(c) => Currency::parse(c).ok_or_else(|| {
            invalid(
                format!("currency '{c}'"),
                "expected an ISO 4217 code in upper case, such as USD, EUR or INR",
            )
        })?,
    };
    let mut input = EstimateInput::new(month, currency);
    if let Some(tz) = string(o, "timezone")? {
        input.timezone = parse_timezone(tz)?;
    }
    if let Some(p) = integer(o, "phones", "phones", 1, MAX_PHONES.into())? {
        input.phones = p as u32;
    }
    if let Some(c) = string(o, "primary_country")? {
        input.primary_country = Some(iso2("primary_country", c)?);
    }
    input.auth_international = match o.get("auth_international") {
        None | Some(Value::Bool(false)) => AuthIntl::No,
        Some(Value::Bool(true)) => AuthIntl::Yes,
        Some(Value::String(s)) => AuthIntl::From(date("auth_international", s)?),
        Some(_) => {
            return Err(invalid(
                "auth_international",
                "true, false, or the date eligibility starts (YYYY-MM-DD)",
            ))
        }
    };
    if let Some(s) = string(o, "utility_in_window")? {
        input.utility_in_window = share("utility_in_window", s)?;
    }
    if let Some(s) = string(o, "entry_point_share")? {
        input.entry_point_share = share("entry_point_share", s)?;
    }
    let compare = boolean(o, "compare")?.unwrap_or(false);
    let minutes = integer(o, "call_minutes", "call_minutes", 0, MAX_CALL_MINUTES)?;
    let bi = string(o, "business_initiated_share")?;
    let average = integer(
        o,
        "average_call_seconds",
        "average_call_seconds",
        1,
        MAX_CALL_SECONDS,
    )?;
    input.calls = match (minutes, bi, average) {
        (None, None, None) => None,
        (None, _, _) => {
            return Err(invalid(
                "business_initiated_share, average_call_seconds",
                "describe calls: give call_minutes too",
            ))
        }
        (Some(minutes), bi, average) => Some(CallTraffic {
            minutes,
            business_initiated: match bi {
                Some(s) => share("business_initiated_share", s)?,
                None => Share::ALL,
            },
            average_seconds: average.unwrap_or(DEFAULT_CALL_SECONDS),
        }),
    };
    let traffic = match o.get("traffic") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("traffic", "must be an array of lines")),
        None => return Err(invalid("traffic", "is required")),
    };
    if traffic.len() > MAX_TRAFFIC_LINES {
        return Err(invalid(
            "traffic",
            format!(
                "{} lines; at most {MAX_TRAFFIC_LINES} are taken",
                traffic.len()
            ),
        ));
    }
    input.traffic = traffic
        .iter()
        .enumerate()
        .map(|(i, item)| traffic_line(i, item))
        .collect::<Result<_, _>>()?;
    Ok(Request { input, compare })
}

/// The estimate of a request as `wabill estimate --format json` prints it (with `--compare`
/// when the request asks for it).
pub fn answer(tariff: &Tariff, request: &Request) -> Result<String, EstimateError> {
    if request.compare {
        let c = crate::report::estimate_with_compare(tariff, &request.input)?;
        Ok(render(&c.estimate, Some(&c.previous), Format::Json))
    } else {
        let e = crate::report::estimate(tariff, &request.input)?;
        Ok(render(&e, None, Format::Json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Request, EstimateError> {
        parse_request(&v)
    }

    #[test]
    fn a_full_request_reads_as_the_command_lines_options() {
        let r = parse(json!({
            "month": "2026-11", "currency": "EUR", "timezone": "America/Sao_Paulo",
            "phones": 3, "primary_country": "BR", "auth_international": "2026-11-10",
            "utility_in_window": "12.5%", "entry_point_share": "100‰", "compare": true,
            "traffic": [{"market": "Brazil", "category": "marketing", "messages": 1000},
                        {"country": "IN", "category": "service", "messages": 0}],
        }))
        .unwrap();
        assert!(r.compare);
        let i = &r.input;
        assert_eq!(i.month, Month::parse("2026-11").unwrap());
        assert_eq!(i.currency.as_str(), "EUR");
        assert_eq!(i.timezone.name(), "America/Sao_Paulo");
        assert_eq!(i.phones, 3);
        assert_eq!(i.primary_country.as_deref(), Some("BR"));
        assert_eq!(
            i.auth_international,
            AuthIntl::From(Date::parse("2026-11-10").unwrap())
        );
        assert_eq!(i.utility_in_window, Share::parse("s", "12.5%").unwrap());
        assert_eq!(i.entry_point_share, Share::parse("s", "10%").unwrap());
        assert_eq!(i.traffic.len(), 2);
        assert_eq!(i.traffic[1].target, Target::Country("IN".into()));
        let minimal = parse(json!({"month": "2026-11", "traffic": []})).unwrap();
        assert_eq!(
            minimal.input,
            EstimateInput::new(minimal.input.month, Currency::parse("USD").unwrap())
        );
        assert!(!minimal.compare);
    }

    #[test]
    fn what_the_document_does_not_allow_is_refused_with_its_field() {
        let base = || json!({"month": "2026-11", "traffic": []});
        for (key, value, named) in [
            ("month", json!(" 2026-11"), "month"),
            ("month", json!(null), "month"),
            ("currency", json!("usd"), "currency"),
            ("phones", json!(0), "phones"),
            ("phones", json!(1.5), "phones"),
            ("phones", json!(MAX_PHONES + 1), "phones"),
            ("primary_country", json!("br"), "primary_country"),
            ("auth_international", json!("yes"), "auth_international"),
            (
                "auth_international",
                json!("2026-02-30"),
                "auth_international",
            ),
            ("utility_in_window", json!(" 40%"), "utility_in_window"),
            ("utility_in_window", json!("40"), "utility_in_window"),
            ("entry_point_share", json!("1e1%"), "entry_point_share"),
            ("compare", json!("yes"), "compare"),
            ("colour", json!(1), "colour"),
            ("traffic", json!({}), "traffic"),
            (
                "traffic",
                json!([{"market": "Brazil", "category": "Marketing", "messages": 1}]),
                "category",
            ),
            (
                "traffic",
                json!([{"market": "Brazil", "category": "utility", "messages": "1,000"}]),
                "messages",
            ),
            (
                "traffic",
                json!([{"market": "Brazil", "category": "utility", "messages": MAX_MESSAGES + 1}]),
                "messages",
            ),
            (
                "traffic",
                json!([{"market": "Brazil", "country": "BR", "category": "utility", "messages": 1}]),
                "not both",
            ),
            (
                "traffic",
                json!([{"market": null, "category": "utility", "messages": 1}]),
                "market",
            ),
            (
                "traffic",
                json!([{"country": "BR", "category": "utility", "messages": 1, "x": 1}]),
                "'x'",
            ),
        ] {
            let mut v = base();
            v[key] = value.clone();
            let e = parse(v).expect_err(&format!("{key}: {value}"));
            assert!(e.to_string().contains(named), "{key}: {value}: {e}");
        }
        let many = vec![json!({"market": "Brazil", "category": "utility", "messages": 1}); 1001];
        let e = parse(json!({"month": "2026-11", "traffic": many})).unwrap_err();
        assert!(e.to_string().contains("at most 1000"), "{e}");
        assert!(parse(json!([])).is_err());
    }
}
