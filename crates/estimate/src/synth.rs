//! The synthetic month: the events a business with the given traffic would produce, built so
//! that rating them answers "what will this cost?" under exactly the rules of a real bill.
//!
//! Shape (decisions.md D18-D20):
//! - one WABA (`estimate`, its own portfolio) with the input's timezone, currency, primary
//!   country and authentication-international eligibility;
//! - every outbound message goes to its own user, so messages never share a window or a CBP
//!   conversation by accident and the shares hold exactly;
//! - a line's messages are spread evenly over the month in the WABA's timezone: message `k` of
//!   `n` is sent in the middle of the `k`-th of `n` equal slots, on a whole second;
//! - `floor(n × entry point share)` of them answer a click-to-WhatsApp inbound sent a minute
//!   before; of a utility line, `floor(n × utility-in-window share)` more answer a plain inbound
//!   (an open customer service window); every other service message does too, since Meta only
//!   delivers non-template messages inside a window; the rest are sent cold. Each kind is spread
//!   evenly through the line (the `k`-th message is of a kind when `floor((k+1)·c/n)` steps);
//! - messages of each category and kind are dealt round-robin over the business phone numbers;
//! - every message is delivered one second after it is sent.
//!
//! No randomness: the same input gives the same events.

use crate::error::EstimateError;
use crate::input::{AuthIntl, EstimateInput, Target, TrafficCategory};
use crate::users::NumberPlan;
use chrono::{DateTime, SecondsFormat};
use std::borrow::Cow;
use std::fmt::Write as _;
use wabill_rating::time::local_day_start;
use wabill_rating::{
    Account, AuthInternational, CountryId, DeliveryStatus, EntryPoint, Event, Inbound, MessageKind,
    Month, Msisdn, Outbound, Status, Tariff, UnixMs,
};

/// The synthetic WABA's id (and portfolio).
pub const WABA: &str = "estimate";
/// The most messages one estimate synthesizes. Tiers and allowances need the whole month in
/// one rating run, so every message's events and charge are in memory at once: about 700 bytes
/// a message, 1.3 GB and 5 s (release build) at this limit.
pub const MAX_MESSAGES: u64 = 2_000_000;
/// The user writes this long before the business answers.
const INBOUND_LEAD_MS: UnixMs = 60_000;
/// Delivery follows the send by this much.
const DELIVERY_DELAY_MS: UnixMs = 1_000;
/// Business phone numbers: this + 1, + 2, ... (a US test range; never a user's market).
const FIRST_PHONE: u64 = 15_550_100_000;

/// How a synthetic message reaches its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opening {
    /// No inbound from the user: a business-initiated template.
    Cold,
    /// The user wrote a minute before: a customer service window is open.
    Window,
    /// The user came from a click-to-WhatsApp ad a minute before: a free entry point.
    EntryPoint,
}

/// A traffic line as synthesized: its users' country and how its messages open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedLine {
    pub target: Target,
    pub category: TrafficCategory,
    pub messages: u64,
    /// ISO 3166 alpha-2 of the line's users.
    pub country: String,
    pub entry_point: u64,
    pub in_window: u64,
    pub cold: u64,
}

/// Counts of what was synthesized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthStats {
    pub users: u64,
    pub inbound: u64,
    pub entry_point_inbound: u64,
    pub outbound: u64,
    pub statuses: u64,
}

/// One month of synthetic events, ready for `wabill_rating::rate`.
#[derive(Debug)]
pub struct SyntheticMonth {
    pub month: Month,
    pub accounts: Vec<Account<'static>>,
    pub events: Vec<Event<'static>>,
    pub lines: Vec<ResolvedLine>,
    pub stats: SynthStats,
}

/// Checks what does not depend on the rate data.
pub fn validate(
    tariff: &Tariff,
    input: &EstimateInput,
) -> Result<Option<CountryId>, EstimateError> {
    check_month(input.month)?;
    if input.phones == 0 {
        return Err(EstimateError::NoPhones);
    }
    let total = input
        .traffic
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.messages));
    if total == 0 {
        return Err(EstimateError::NoTraffic);
    }
    if total > MAX_MESSAGES {
        return Err(EstimateError::TooManyMessages {
            messages: total,
            max: MAX_MESSAGES,
        });
    }
    if u64::from(input.entry_point_share.parts_per_billion())
        + u64::from(input.utility_in_window.parts_per_billion())
        > 1_000_000_000
    {
        return Err(EstimateError::InconsistentShares {
            entry_point: input.entry_point_share.to_string(),
            utility_in_window: input.utility_in_window.to_string(),
        });
    }
    let primary = match &input.primary_country {
        None => None,
        Some(iso) => Some(
            tariff
                .markets
                .country(&iso.to_ascii_uppercase())
                .ok_or_else(|| EstimateError::UnknownCountry {
                    country: iso.clone(),
                })?,
        ),
    };
    if input.auth_international != AuthIntl::No && primary.is_none() {
        return Err(EstimateError::MissingPrimaryCountry);
    }
    Ok(primary)
}

/// Months before conversation categories (2023-06) cannot be priced.
pub fn check_month(month: Month) -> Result<(), EstimateError> {
    if month < Month::parse("2023-06").expect("month") {
        return Err(EstimateError::UnsupportedMonth { month });
    }
    Ok(())
}

/// Builds the synthetic month of `input`: users are chosen by the markets of `input.month` and
/// sent to in `send_month` (the same month, or the month `--compare` prices the same traffic in).
pub fn synthesize(
    tariff: &Tariff,
    input: &EstimateInput,
    send_month: Month,
) -> Result<SyntheticMonth, EstimateError> {
    let primary = validate(tariff, input)?;
    check_month(send_month)?;
    let markets = &tariff.markets;
    let plan = NumberPlan::scan(markets);
    let chosen_date = input.month.first_day();
    let tz = input.timezone;
    let start = local_day_start(tz, send_month.first_day());
    let end = local_day_start(tz, send_month.next().first_day());

    let account = Account {
        waba: Cow::Borrowed(WABA),
        portfolio: Cow::Borrowed(WABA),
        timezone: tz,
        currency: input.currency,
        primary_country: primary.map(|c| Cow::Owned(markets.iso2(c).to_string())),
        auth_international: match input.auth_international {
            AuthIntl::No => None,
            AuthIntl::Yes => Some(start),
            AuthIntl::From(d) => Some(local_day_start(tz, d)),
        }
        .map(|start| AuthInternational {
            start,
            exception_countries: Vec::new(),
        }),
    };

    let phones: Vec<Msisdn> = (1..=u64::from(input.phones))
        .map(|i| Msisdn::from_u64(FIRST_PHONE + i).expect("valid number"))
        .collect();
    // Round-robin position per (category, opening), so every kind is balanced over phones.
    let mut deal = [[0u64; 3]; 4];
    let mut users: Vec<(CountryId, crate::users::Numbers<'_>)> = Vec::new();
    let mut events: Vec<Event<'static>> = Vec::new();
    let mut lines = Vec::new();
    let mut stats = SynthStats::default();
    let total: u64 = input.traffic.iter().map(|l| l.messages).sum();
    events.reserve(total as usize * 2);

    for (li, line) in input.traffic.iter().enumerate() {
        let country = plan.resolve(markets, &line.target, primary, chosen_date)?;
        let n = line.messages;
        let entry_point = input.entry_point_share.of(n);
        let in_window = match line.category {
            TrafficCategory::Utility => input.utility_in_window.of(n),
            TrafficCategory::Service => n - entry_point,
            _ => 0,
        };
        lines.push(ResolvedLine {
            target: line.target.clone(),
            category: line.category,
            messages: n,
            country: markets.iso2(country).to_string(),
            entry_point,
            in_window,
            cold: n - entry_point - in_window,
        });
        let numbers = match users.iter().position(|(c, _)| *c == country) {
            Some(i) => i,
            None => {
                users.push((country, plan.numbers(markets, country)));
                users.len() - 1
            }
        };
        let cat = line.category as usize;
        for k in 0..n {
            let opening = opening_of(k, n, entry_point, in_window);
            let at = spread(start, end, k, n);
            let slot = &mut deal[cat][opening as usize];
            let phone = phones[(*slot % u64::from(input.phones)) as usize];
            *slot += 1;
            let user = users[numbers]
                .1
                .next()
                .ok_or(EstimateError::TooManyMessages {
                    messages: total,
                    max: MAX_MESSAGES,
                })?;
            stats.users += 1;
            if opening != Opening::Cold {
                stats.inbound += 1;
                let entry_point = (opening == Opening::EntryPoint).then_some(EntryPoint::Ctwa);
                stats.entry_point_inbound += u64::from(entry_point.is_some());
                events.push(Event::Inbound(Inbound {
                    id: Cow::Owned(format!("in.{li}.{k}")),
                    at: at - INBOUND_LEAD_MS,
                    waba: Cow::Borrowed(WABA),
                    phone,
                    user: Some(user),
                    user_id: None,
                    entry_point,
                    change: None,
                }));
            }
            let id = format!("out.{li}.{k}");
            events.push(Event::Status(Status {
                id: Cow::Owned(id.clone()),
                at: at + DELIVERY_DELAY_MS,
                status: DeliveryStatus::Delivered,
                message: None,
            }));
            events.push(Event::Outbound(Outbound {
                id: Cow::Owned(id),
                at,
                waba: Cow::Borrowed(WABA),
                phone,
                user: Some(user),
                user_id: None,
                kind: line.category.message_kind(),
                marketing_messages_api: false,
                agent: None,
            }));
            stats.outbound += 1;
            stats.statuses += 1;
        }
    }
    Ok(SyntheticMonth {
        month: send_month,
        accounts: vec![account],
        events,
        lines,
        stats,
    })
}

/// The traffic line an outbound (or inbound) id of the synthetic month belongs to.
pub fn line_of_id(id: &str) -> Option<usize> {
    id.split('.').nth(1)?.parse().ok()
}

/// Send instant of message `k` of `n`: the middle of the `k`-th of `n` equal slots of
/// [start, end), rounded down to a whole second.
fn spread(start: UnixMs, end: UnixMs, k: u64, n: u64) -> UnixMs {
    let span = i128::from(end - start);
    let offset = (2 * i128::from(k) + 1) * span / (2 * i128::from(n));
    let at = start + offset as i64;
    at - at.rem_euclid(1000)
}

/// How message `k` of `n` opens, with `e` entry point and `w` window messages among them:
/// the entry point ones are spread evenly through the line, the window ones evenly through
/// the rest.
fn opening_of(k: u64, n: u64, e: u64, w: u64) -> Opening {
    let (k, n, e, w) = (u128::from(k), u128::from(n), u128::from(e), u128::from(w));
    let before = k * e / n;
    if (k + 1) * e / n > before {
        return Opening::EntryPoint;
    }
    let (j, m) = (k - before, n - e);
    if (j + 1) * w / m > j * w / m {
        Opening::Window
    } else {
        Opening::Cold
    }
}

impl SyntheticMonth {
    /// The month as `docs/events.md` JSON lines (account first), for rating with `wabill rate`
    /// or reading by a person.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::with_capacity(self.events.len() * 170 + 300);
        for a in &self.accounts {
            let _ = write!(
                out,
                "{{\"kind\":\"account\",\"waba\":{},\"portfolio\":{},\"timezone\":{},\"currency\":\"{}\"",
                json(&a.waba),
                json(&a.portfolio),
                json(a.timezone.name()),
                a.currency
            );
            if let Some(p) = &a.primary_country {
                let _ = write!(out, ",\"primary_country\":{}", json(p));
            }
            if let Some(ai) = &a.auth_international {
                let _ = write!(
                    out,
                    ",\"auth_international\":{{\"start\":\"{}\"}}",
                    instant(ai.start)
                );
            }
            out.push_str("}\n");
        }
        for e in &self.events {
            match e {
                Event::Account(_) => unreachable!("accounts are kept apart"),
                Event::Inbound(i) => {
                    let _ = write!(
                        out,
                        "{{\"kind\":\"inbound\",\"id\":{},\"at\":\"{}\",\"waba\":{},\"phone\":\"{}\",\"user\":\"{}\"",
                        json(&i.id),
                        instant(i.at),
                        json(&i.waba),
                        i.phone,
                        i.user.expect("synthetic users have numbers")
                    );
                    if let Some(ep) = i.entry_point {
                        let _ = write!(out, ",\"entry_point\":\"{}\"", ep.as_str());
                    }
                    out.push_str("}\n");
                }
                Event::Outbound(o) => {
                    let kind = match o.kind {
                        MessageKind::Template(c) => {
                            format!("\"type\":\"template\",\"category\":\"{}\"", c.as_str())
                        }
                        MessageKind::NonTemplate => "\"type\":\"text\"".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "{{\"kind\":\"outbound\",\"id\":{},\"at\":\"{}\",\"waba\":{},\"phone\":\"{}\",\"user\":\"{}\",{kind}}}",
                        json(&o.id),
                        instant(o.at),
                        json(&o.waba),
                        o.phone,
                        o.user.expect("synthetic users have numbers")
                    );
                }
                Event::Status(s) => {
                    let _ = writeln!(
                        out,
                        "{{\"kind\":\"status\",\"id\":{},\"at\":\"{}\",\"status\":\"{}\"}}",
                        json(&s.id),
                        instant(s.at),
                        s.status.as_str()
                    );
                }
            }
        }
        out
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn instant(ms: UnixMs) -> String {
    DateTime::from_timestamp_millis(ms)
        .expect("instant in range")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_have_exact_counts_and_are_spread() {
        for (n, e, w) in [
            (10u64, 1u64, 4u64),
            (7, 0, 7),
            (1000, 100, 450),
            (3, 3, 0),
            (5, 0, 0),
        ] {
            let kinds: Vec<Opening> = (0..n).map(|k| opening_of(k, n, e, w)).collect();
            let count = |o| kinds.iter().filter(|&&x| x == o).count() as u64;
            assert_eq!(count(Opening::EntryPoint), e, "{n} {e} {w}");
            assert_eq!(count(Opening::Window), w, "{n} {e} {w}");
            assert_eq!(count(Opening::Cold), n - e - w, "{n} {e} {w}");
        }
        // One in ten, evenly: the 10th, 20th, ...
        let kinds: Vec<Opening> = (0..20).map(|k| opening_of(k, 20, 2, 0)).collect();
        assert_eq!(kinds[9], Opening::EntryPoint);
        assert_eq!(kinds[19], Opening::EntryPoint);
    }

    #[test]
    fn messages_are_spread_over_the_month_on_whole_seconds() {
        let tz: chrono_tz::Tz = "America/Sao_Paulo".parse().unwrap();
        let m = Month::parse("2026-11").unwrap();
        let start = local_day_start(tz, m.first_day());
        let end = local_day_start(tz, m.next().first_day());
        let n = 1000;
        let ats: Vec<UnixMs> = (0..n).map(|k| spread(start, end, k, n)).collect();
        assert!(ats.windows(2).all(|w| w[0] < w[1]));
        assert!(ats[0] >= start && ats[n as usize - 1] < end);
        assert!(ats.iter().all(|a| a % 1000 == 0));
        assert_eq!(spread(start, end, 0, 1), start + (end - start) / 2);
    }

    #[test]
    fn ids_name_their_line() {
        assert_eq!(line_of_id("out.3.17"), Some(3));
        assert_eq!(line_of_id("in.0.0"), Some(0));
        assert_eq!(line_of_id("wamid.x"), None);
    }
}
