//! Calls (WhatsApp Business Calling API): what each call costs under Meta's calling rules
//! (docs/rules.md "Calls", decisions.md D120-D128).
//!
//! Calls are rated beside the message walk, not inside it: they have their own rate cards
//! ([`CallRates`], `data/call_rates.csv`) and their own volume-tier counter, in minutes, per
//! (business portfolio, market, calendar month in the WABA's timezone). Like the message rater
//! this is pure and deterministic: the same set of call events gives the same charges whatever
//! their order or repetition (one call per id; a `connect` and a `terminate` of one call merge).

use crate::event::{Account, Msisdn};
use crate::markets::{CountryId, MarketId, MarketTable};
use crate::money::{Currency, Decimal};
use crate::rates::TierRange;
use crate::time::{local_date, Date, Month, UnixMs};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Seconds in one billing pulse (Meta: "calculated in six-second pulses").
pub const PULSE_SECONDS: u64 = 6;
/// Pulses in a minute: a per-minute rate is charged a tenth per pulse.
pub const PULSES_PER_MINUTE: u64 = 10;

/// Who placed the call.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CallDirection {
    BusinessInitiated,
    UserInitiated,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::BusinessInitiated => "business_initiated",
            CallDirection::UserInitiated => "user_initiated",
        }
    }
    /// wabill's spelling, or Meta's upper-case one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "business_initiated" | "BUSINESS_INITIATED" => Some(CallDirection::BusinessInitiated),
            "user_initiated" | "USER_INITIATED" => Some(CallDirection::UserInitiated),
            _ => None,
        }
    }
}

/// How a call ended. Only a `Completed` call was answered.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CallOutcome {
    Completed,
    Failed,
    Rejected,
    Unanswered,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Completed => "completed",
            CallOutcome::Failed => "failed",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Unanswered => "unanswered",
        }
    }
    /// wabill's spelling, or Meta's upper-case one (`COMPLETED`, `FAILED`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "completed" | "COMPLETED" => CallOutcome::Completed,
            "failed" | "FAILED" => CallOutcome::Failed,
            "rejected" | "REJECTED" => CallOutcome::Rejected,
            "unanswered" | "UNANSWERED" => CallOutcome::Unanswered,
            _ => return None,
        })
    }
}

/// One call event: a wabill `call` line, or one of Meta's `connect` / `terminate` webhooks.
/// Several may name the same call id; [`rate_calls`] merges them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Call<'a> {
    pub id: Cow<'a, str>,
    pub waba: Cow<'a, str>,
    /// The business phone number.
    pub phone: Msisdn,
    /// The user's number; None when the user is known only by BSUID.
    pub user: Option<Msisdn>,
    /// The user's business-scoped user id (BSUID), when given.
    pub user_id: Option<Cow<'a, str>>,
    pub direction: CallDirection,
    /// When the call was connected (or placed, if it never was).
    pub start: UnixMs,
    pub end: Option<UnixMs>,
    /// Whole seconds, as Meta's `duration`.
    pub duration_s: Option<u64>,
    /// None: the call is not over (a `connect` webhook).
    pub outcome: Option<CallOutcome>,
    /// The platform's agent who placed or took the call; never affects the price.
    pub agent: Option<Cow<'a, str>>,
}

impl Call<'_> {
    /// Billed seconds: `duration`, else `end - start` with a started second counting whole
    /// (D122). Zero for a call that was not answered.
    pub fn seconds(&self) -> u64 {
        if self.outcome != Some(CallOutcome::Completed) {
            return 0;
        }
        if let Some(d) = self.duration_s {
            return d;
        }
        match self.end {
            Some(end) if end > self.start => ((end - self.start) as u64).div_ceil(1000),
            _ => 0,
        }
    }
}

/// Started 6-second pulses of `seconds`: 56 s is 10 pulses.
pub fn pulses(seconds: u64) -> u64 {
    seconds.div_ceil(PULSE_SECONDS)
}

/// One calling rate version: (tier, per-minute rate) steps, or one untiered step.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CallRateVersion {
    pub effective_from: Date,
    /// Ascending tiers in minutes, the last unbounded; or one `(None, rate)`.
    pub steps: Vec<(Option<TierRange>, Decimal)>,
    pub source: String,
}

impl CallRateVersion {
    /// The tier and per-minute rate for a call whose last pulse brings the month's counter to
    /// `tenths` tenths of a minute: the first tier whose upper bound is at or above it (D123).
    pub fn price(&self, tenths: u64) -> (Option<TierRange>, Decimal) {
        match self.steps.as_slice() {
            [(None, rate)] => (None, *rate),
            steps => *steps
                .iter()
                .find(|(t, _)| {
                    t.is_some_and(|t| t.max.is_none_or(|m| tenths <= m * PULSES_PER_MINUTE))
                })
                .or(steps.last())
                .expect("a version has a step"),
        }
    }
}

/// The calling rate cards: per (currency, market), versions by date.
#[derive(Clone, Default, Debug)]
pub struct CallRates {
    book: BTreeMap<(Currency, MarketId), Vec<CallRateVersion>>,
}

/// The header of `call_rates.csv`.
pub const CALL_RATES_HEADER: &str =
    "effective_from,currency,market,tier_min,tier_max,rate_per_minute,source";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}: {why}")]
pub struct CallRatesError {
    pub file: String,
    pub line: usize,
    pub why: String,
}

impl CallRates {
    /// Adds a `call_rates.csv` file. Every row is checked: a known market, a date, a
    /// non-negative rate with at most 8 decimals (a pulse is a tenth of it, exactly), tiers in
    /// ascending order without overlap and the last one unbounded.
    pub fn add_csv(
        &mut self,
        markets: &MarketTable,
        file: &str,
        text: &str,
    ) -> Result<(), CallRatesError> {
        let e = |line: usize, why: String| CallRatesError {
            file: file.to_string(),
            line,
            why,
        };
        let mut lines = text.trim_start_matches('\u{feff}').lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end() == CALL_RATES_HEADER => {}
            _ => return Err(e(1, format!("the header must be '{CALL_RATES_HEADER}'"))),
        }
        let mut rows: BTreeMap<(Currency, MarketId, Date), CallRateVersion> = BTreeMap::new();
        for (i, l) in lines {
            let n = i + 1;
            if l.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = l.trim_end().splitn(7, ',').collect();
            if f.len() != 7 {
                return Err(e(n, format!("has {} fields, expected 7", f.len())));
            }
            let date = Date::parse(f[0])
                .ok_or_else(|| e(n, format!("effective_from '{}' is not YYYY-MM-DD", f[0])))?;
            let cur = Currency::parse(f[1])
                .ok_or_else(|| e(n, format!("currency '{}' is not an ISO 4217 code", f[1])))?;
            let market = markets
                .market(f[2])
                .ok_or_else(|| e(n, format!("market '{}' is not in the market table", f[2])))?;
            let rate: Decimal = f[5]
                .parse()
                .map_err(|x| e(n, format!("rate_per_minute: {x}")))?;
            if rate.nanos() < 0 {
                return Err(e(n, "rate_per_minute is negative".into()));
            }
            if rate.nanos() % PULSES_PER_MINUTE as i128 != 0 {
                return Err(e(
                    n,
                    format!("rate_per_minute '{}' has more than 8 decimals (a 6-second pulse is a tenth of it)", f[5]),
                ));
            }
            let tier = match (f[3].trim(), f[4].trim()) {
                ("", "") => None,
                (lo, hi) => {
                    let min = lo.parse::<u64>().map_err(|_| {
                        e(
                            n,
                            format!("tier_min '{lo}' is not a whole number of minutes"),
                        )
                    })?;
                    let max = match hi {
                        "" | "MAX" => None,
                        h => Some(h.parse::<u64>().map_err(|_| {
                            e(
                                n,
                                format!("tier_max '{h}' is not a whole number of minutes"),
                            )
                        })?),
                    };
                    if max.is_some_and(|m| m < min) {
                        return Err(e(n, format!("tier {lo}:{hi} ends before it starts")));
                    }
                    Some(TierRange { min, max })
                }
            };
            let v = rows
                .entry((cur, market, date))
                .or_insert_with(|| CallRateVersion {
                    effective_from: date,
                    steps: Vec::new(),
                    source: f[6].to_string(),
                });
            if v.steps.iter().any(|s| s.0.is_none()) || (tier.is_none() && !v.steps.is_empty()) {
                return Err(e(
                    n,
                    format!(
                        "{} {} {}: an untiered rate and other rows for the same version",
                        f[0], f[1], f[2]
                    ),
                ));
            }
            v.steps.push((tier, rate));
        }
        for ((cur, market, date), mut v) in rows {
            v.steps.sort_by_key(|s| s.0.map(|t| t.min));
            let tiers: Vec<TierRange> = v.steps.iter().filter_map(|s| s.0).collect();
            for w in tiers.windows(2) {
                if w[0].max.is_none_or(|m| m >= w[1].min) {
                    return Err(e(
                        0,
                        format!(
                            "{date} {} {}: tiers {} and {} overlap",
                            cur.as_str(),
                            markets.market_name(market),
                            w[0],
                            w[1]
                        ),
                    ));
                }
            }
            if tiers.last().is_some_and(|t| t.max.is_some()) {
                return Err(e(
                    0,
                    format!(
                        "{date} {} {}: the last tier must be unbounded (tier_max empty or MAX)",
                        cur.as_str(),
                        markets.market_name(market)
                    ),
                ));
            }
            let versions = self.book.entry((cur, market)).or_default();
            if versions.iter().any(|x| x.effective_from == date) {
                return Err(e(
                    0,
                    format!(
                        "{date} {} {}: given in two files",
                        cur.as_str(),
                        markets.market_name(market)
                    ),
                ));
            }
            versions.push(v);
            versions.sort_by_key(|x| x.effective_from);
        }
        Ok(())
    }

    /// The version in force on `date`: the newest on or before it.
    pub fn lookup(
        &self,
        currency: Currency,
        market: MarketId,
        date: Date,
    ) -> Option<&CallRateVersion> {
        self.book
            .get(&(currency, market))?
            .iter()
            .rev()
            .find(|v| v.effective_from <= date)
    }

    pub fn is_empty(&self) -> bool {
        self.book.is_empty()
    }

    /// Every version of (currency, market), oldest first.
    pub fn versions(&self, currency: Currency, market: MarketId) -> &[CallRateVersion] {
        self.book
            .get(&(currency, market))
            .map_or(&[], Vec::as_slice)
    }

    /// Every (currency, market, version), by currency and market, oldest version first.
    pub fn iter(&self) -> impl Iterator<Item = (Currency, MarketId, &CallRateVersion)> {
        self.book
            .iter()
            .flat_map(|(&(c, m), vs)| vs.iter().map(move |v| (c, m, v)))
    }

    /// The currencies some card is in, sorted.
    pub fn currencies(&self) -> Vec<Currency> {
        let mut out: Vec<Currency> = self.book.keys().map(|k| k.0).collect();
        out.dedup();
        out
    }
}

/// Why a call costs what it does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CallType {
    /// A business-initiated call the user answered: charged.
    Regular,
    FreeUserInitiated,
    /// Failed, rejected, unanswered, or answered for zero seconds.
    NotConnected,
    /// No outcome yet (only a `connect`).
    Unterminated,
}

impl CallType {
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Regular => "regular",
            CallType::FreeUserInitiated => "free_user_initiated",
            CallType::NotConnected => "not_connected",
            CallType::Unterminated => "unterminated",
        }
    }
}

/// One call's charge line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CallCharge<'a> {
    pub id: Cow<'a, str>,
    pub waba: Cow<'a, str>,
    pub phone: Msisdn,
    pub user: Option<Msisdn>,
    pub user_id: Option<Cow<'a, str>>,
    pub country: Option<CountryId>,
    pub market: Option<MarketId>,
    pub direction: CallDirection,
    pub call_type: CallType,
    pub seconds: u64,
    pub pulses: u64,
    /// The month's tier counter through this call, in tenths of a minute (charged calls only).
    pub tier_tenths: Option<u64>,
    pub tier: Option<TierRange>,
    /// Per minute; None on free lines.
    pub rate: Option<Decimal>,
    pub amount: Decimal,
    pub currency: Currency,
    pub start: UnixMs,
    /// Recording and transcription: free at Meta for now (D127).
    pub recording: Decimal,
    pub transcription: Decimal,
    pub agent: Option<Cow<'a, str>>,
}

impl CallCharge<'_> {
    pub fn billable(&self) -> bool {
        self.amount.is_positive()
    }
}

/// A call that cannot be rated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(
        "call {id}: WABA '{waba}' has no account (give it with an account event or --accounts)"
    )]
    UnknownAccount { id: String, waba: String },
    #[error("call {id}: two events for it disagree on {field}")]
    Conflicting { id: String, field: &'static str },
    #[error("call {id}: duration {duration_s} s is longer than end - start ({span_s} s)")]
    InconsistentDuration {
        id: String,
        duration_s: u64,
        span_s: u64,
    },
    #[error("call {id}: the user is known only by BSUID '{user_id}'; a charged call needs the user's phone number, whose country code gives the market")]
    NoUserNumber { id: String, user_id: String },
    #[error("call {id}: no country has a calling code that starts {user}")]
    UnknownCountry { id: String, user: Msisdn },
    #[error("call {id}: country {country} has no market on {date}")]
    NoMarket {
        id: String,
        country: String,
        date: Date,
    },
    #[error("call {id}: no calling rate for currency {currency}, market '{market}' on {date} (data/SOURCES.md, 'Calling': Meta's calling cards are not bundled; give them with --rates DIR and its call_rates.csv)")]
    MissingRate {
        id: String,
        currency: Currency,
        market: String,
        date: Date,
    },
}

impl CallError {
    /// The call's id.
    pub fn id(&self) -> &str {
        match self {
            CallError::UnknownAccount { id, .. }
            | CallError::Conflicting { id, .. }
            | CallError::InconsistentDuration { id, .. }
            | CallError::NoUserNumber { id, .. }
            | CallError::UnknownCountry { id, .. }
            | CallError::NoMarket { id, .. }
            | CallError::MissingRate { id, .. } => id,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CallError::UnknownAccount { .. } => "unknown_account",
            CallError::Conflicting { .. } => "conflicting_duplicate",
            CallError::InconsistentDuration { .. } => "invalid_call",
            CallError::NoUserNumber { .. } => "no_user_number",
            CallError::UnknownCountry { .. } => "unknown_country",
            CallError::NoMarket { .. } => "no_market",
            CallError::MissingRate { .. } => "missing_rate",
        }
    }
}

/// The result of rating calls.
#[derive(Debug, Default)]
pub struct RatedCalls<'a> {
    /// Sorted by start, then id.
    pub charges: Vec<CallCharge<'a>>,
    pub errors: Vec<CallError>,
    /// Call events repeated exactly, counted once.
    pub duplicates: u64,
    /// The calls to be charged that could not be priced (each has its error in `errors`, with
    /// its id): as their line would be, with no rate and a zero amount.
    pub unpriced: Vec<CallCharge<'a>>,
}

/// Merges the events of one call: what several events state must agree; the outcome, the
/// times and the duration come from the events that have an outcome (a `terminate`), else
/// from the earliest `connect`.
fn merge<'a>(events: &[&Call<'a>]) -> Result<Call<'a>, CallError> {
    let id = || events[0].id.to_string();
    let conflict = |field| CallError::Conflicting { id: id(), field };
    let finals: Vec<&Call<'a>> = events
        .iter()
        .copied()
        .filter(|c| c.outcome.is_some())
        .collect();
    let base = match finals.as_slice() {
        [] => *events.iter().min_by_key(|c| c.start).expect("one event"),
        [first, rest @ ..] => {
            for r in rest {
                if (r.outcome, r.start, r.end, r.duration_s)
                    != (first.outcome, first.start, first.end, first.duration_s)
                {
                    return Err(conflict("outcome, start, end or duration"));
                }
            }
            *first
        }
    };
    let mut call = base.clone();
    for c in events {
        if c.waba != call.waba {
            return Err(conflict("waba"));
        }
        if c.phone != call.phone {
            return Err(conflict("phone"));
        }
        if c.direction != call.direction {
            return Err(conflict("direction"));
        }
        match (call.user, c.user) {
            (Some(a), Some(b)) if a != b => return Err(conflict("user")),
            (None, Some(b)) => call.user = Some(b),
            _ => {}
        }
        match (&call.user_id, &c.user_id) {
            (Some(a), Some(b)) if a != b => return Err(conflict("user_id")),
            (None, Some(b)) => call.user_id = Some(b.clone()),
            _ => {}
        }
        match (&call.agent, &c.agent) {
            (Some(a), Some(b)) if a != b => return Err(conflict("agent")),
            (None, Some(b)) => call.agent = Some(b.clone()),
            _ => {}
        }
    }
    if let (Some(d), Some(end)) = (call.duration_s, call.end) {
        let span_ms = (end - call.start).max(0) as u64;
        if d.saturating_mul(1000) >= span_ms + 1000 {
            return Err(CallError::InconsistentDuration {
                id: id(),
                duration_s: d,
                span_s: span_ms / 1000,
            });
        }
    }
    Ok(call)
}

/// Rates calls: one charge per call id. `accounts` are every account known (from the event
/// lines and `--accounts`); the first per WABA is used (the message rater reports conflicts).
pub fn rate_calls<'a>(
    markets: &MarketTable,
    rates: &CallRates,
    accounts: &[&Account<'_>],
    calls: &[Call<'a>],
) -> RatedCalls<'a> {
    let mut out = RatedCalls::default();
    let mut by_waba: BTreeMap<&str, &Account<'_>> = BTreeMap::new();
    for a in accounts {
        by_waba.entry(a.waba.as_ref()).or_insert(a);
    }
    // Group by id; exact repeats count once.
    let mut by_id: BTreeMap<&str, Vec<&Call<'a>>> = BTreeMap::new();
    for c in calls {
        let v = by_id.entry(c.id.as_ref()).or_default();
        if v.contains(&c) {
            out.duplicates += 1;
        } else {
            v.push(c);
        }
    }
    struct Pending<'a, 'p> {
        call: Call<'a>,
        portfolio: &'p str,
        currency: Currency,
        date: Date,
        month: Month,
    }
    let mut pending: Vec<Pending<'a, '_>> = Vec::new();
    for events in by_id.values() {
        let call = match merge(events) {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let Some(account) = by_waba.get(call.waba.as_ref()) else {
            out.errors.push(CallError::UnknownAccount {
                id: call.id.to_string(),
                waba: call.waba.to_string(),
            });
            continue;
        };
        let date = local_date(account.timezone, call.start);
        pending.push(Pending {
            call,
            portfolio: account.portfolio.as_ref(),
            currency: account.currency,
            date,
            month: date.month(),
        });
    }
    // Start order, ties by id: the order tiers accrue in.
    pending.sort_by(|a, b| (a.call.start, &a.call.id).cmp(&(b.call.start, &b.call.id)));
    let mut counters: BTreeMap<(&str, MarketId, Month), u64> = BTreeMap::new();
    for p in &pending {
        let c = &p.call;
        let seconds = c.seconds();
        let n_pulses = pulses(seconds);
        let country = c.user.and_then(|u| markets.country_of(u.get()));
        let market = country.and_then(|k| markets.market_on(k, p.date));
        let call_type = match (c.direction, c.outcome) {
            (CallDirection::UserInitiated, _) => CallType::FreeUserInitiated,
            (_, None) => CallType::Unterminated,
            (_, Some(CallOutcome::Completed)) if n_pulses > 0 => CallType::Regular,
            _ => CallType::NotConnected,
        };
        let mut charge = CallCharge {
            id: c.id.clone(),
            waba: c.waba.clone(),
            phone: c.phone,
            user: c.user,
            user_id: c.user_id.clone(),
            country,
            market,
            direction: c.direction,
            call_type,
            seconds,
            pulses: n_pulses,
            tier_tenths: None,
            tier: None,
            rate: None,
            amount: Decimal::ZERO,
            currency: p.currency,
            start: c.start,
            recording: Decimal::ZERO,
            transcription: Decimal::ZERO,
            agent: c.agent.clone(),
        };
        if call_type == CallType::Regular {
            let id = || c.id.to_string();
            let Some(user) = c.user else {
                out.errors.push(CallError::NoUserNumber {
                    id: id(),
                    user_id: c.user_id.as_deref().unwrap_or("").to_string(),
                });
                out.unpriced.push(charge);
                continue;
            };
            let Some(k) = country else {
                out.errors
                    .push(CallError::UnknownCountry { id: id(), user });
                out.unpriced.push(charge);
                continue;
            };
            let Some(m) = market else {
                out.errors.push(CallError::NoMarket {
                    id: id(),
                    country: markets.iso2(k).to_string(),
                    date: p.date,
                });
                out.unpriced.push(charge);
                continue;
            };
            let Some(version) = rates.lookup(p.currency, m, p.date) else {
                out.errors.push(CallError::MissingRate {
                    id: id(),
                    currency: p.currency,
                    market: markets.market_name(m).to_string(),
                    date: p.date,
                });
                out.unpriced.push(charge);
                continue;
            };
            let counter = counters.entry((p.portfolio, m, p.month)).or_default();
            *counter += n_pulses;
            let (tier, rate) = version.price(*counter);
            charge.tier_tenths = Some(*counter);
            charge.tier = tier;
            charge.rate = Some(rate);
            charge.amount =
                Decimal::from_nanos(rate.times(n_pulses).nanos() / PULSES_PER_MINUTE as i128);
        }
        out.charges.push(charge);
    }
    out
}

/// The customer service windows calls open (rules.md "Calls"; Meta: the window "starts or
/// refreshes for calls: when a WhatsApp user calls you, regardless of if you accept the call or
/// not; when a WhatsApp user accepts your call"), as inbound events at the call's start for the
/// message rater: every user-initiated call, and every answered business-initiated call. A call
/// whose user is known only by BSUID opens none (the message walk pairs by number), nor does a
/// call whose events disagree (`rate_calls` reports it). One per call id, whatever the repeats.
pub fn window_openers<'a>(calls: &[Call<'a>]) -> Vec<crate::event::Event<'a>> {
    let mut by_id: BTreeMap<&str, Vec<&Call<'a>>> = BTreeMap::new();
    for c in calls {
        let v = by_id.entry(c.id.as_ref()).or_default();
        if !v.contains(&c) {
            v.push(c);
        }
    }
    let mut out = Vec::new();
    for events in by_id.values() {
        let Ok(call) = merge(events) else { continue };
        let opens = match call.direction {
            CallDirection::UserInitiated => true,
            CallDirection::BusinessInitiated => call.seconds() > 0,
        };
        if let (true, Some(user)) = (opens, call.user) {
            out.push(crate::event::Event::Inbound(crate::event::Inbound {
                // Its own id space: a call id never collides with a message id.
                id: Cow::Owned(format!("call:{}", call.id)),
                at: call.start,
                waba: call.waba.clone(),
                phone: call.phone,
                user: Some(user),
                // A call to be charged needs the number (D125); a BSUID alone opens nothing.
                user_id: None,
                entry_point: None,
                change: None,
            }));
        }
    }
    out
}

/// Tenths of a minute as a decimal string of minutes (`10` → `1`, `15` → `1.5`).
pub fn tenths_as_minutes(tenths: u64) -> impl fmt::Display {
    Decimal::from_nanos(tenths as i128 * 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use proptest::prelude::*;

    fn markets() -> MarketTable {
        MarketTable::from_csv(data::MARKETS_CSV).unwrap()
    }

    fn rates(m: &MarketTable, rows: &str) -> CallRates {
        let mut r = CallRates::default();
        r.add_csv(m, "t", &format!("{CALL_RATES_HEADER}\n{rows}"))
            .unwrap();
        r
    }

    fn account() -> Account<'static> {
        Account {
            waba: "W1".into(),
            portfolio: "B1".into(),
            timezone: chrono_tz::UTC,
            currency: Currency::parse("USD").unwrap(),
            primary_country: None,
            auth_international: None,
        }
    }

    fn call(id: &str, start_s: i64, duration: u64, dir: CallDirection) -> Call<'static> {
        Call {
            id: id.to_string().into(),
            waba: "W1".into(),
            phone: Msisdn::parse("15550001111").unwrap(),
            user: Some(Msisdn::parse("5511988887777").unwrap()),
            user_id: None,
            direction: dir,
            start: start_s * 1000,
            end: None,
            duration_s: Some(duration),
            outcome: Some(CallOutcome::Completed),
            agent: None,
        }
    }

    #[test]
    fn pulses_round_a_started_pulse_up() {
        assert_eq!(
            [0, 1, 5, 6, 7, 56, 60, 61].map(pulses),
            [0, 1, 1, 1, 2, 10, 10, 11]
        );
    }

    #[test]
    fn rate_rows_are_checked() {
        let m = markets();
        let bad = |rows: &str| {
            CallRates::default()
                .add_csv(&m, "t", &format!("{CALL_RATES_HEADER}\n{rows}"))
                .unwrap_err()
                .why
        };
        assert!(bad("2026-04-01,USD,Brazil,,,0.000000001,x").contains("more than 8 decimals"));
        assert!(bad("2026-04-01,USD,Atlantis,,,0.01,x").contains("not in the market table"));
        assert!(bad("2026-04-01,USD,Brazil,0,10,0.01,x").contains("unbounded"));
        assert!(
            bad("2026-04-01,USD,Brazil,0,10,0.01,x\n2026-04-01,USD,Brazil,10,,0.009,x")
                .contains("overlap")
        );
        assert!(bad("2026-04-01,USD,Brazil,,,-0.01,x").contains("negative"));
    }

    #[test]
    fn a_connect_and_a_terminate_merge_and_disagreements_are_errors() {
        let m = markets();
        let r = rates(&m, "2026-04-01,USD,Brazil,,,0.01,x");
        let a = account();
        let mut connect = call("c", 1_778_000_000, 0, CallDirection::BusinessInitiated);
        connect.outcome = None;
        connect.duration_s = None;
        let mut terminate = call("c", 1_778_000_002, 56, CallDirection::BusinessInitiated);
        terminate.user = None;
        terminate.user_id = Some("BR.1".into());
        let out = rate_calls(&m, &r, &[&a], &[terminate.clone(), connect.clone()]);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let c = &out.charges[0];
        assert_eq!((c.pulses, c.amount.to_string().as_str()), (10, "0.01"));
        assert_eq!(c.user, connect.user, "the connect gives the number");
        assert_eq!(c.user_id.as_deref(), Some("BR.1"));
        let mut other = terminate.clone();
        other.duration_s = Some(57);
        let out = rate_calls(&m, &r, &[&a], &[terminate, other]);
        assert_eq!(out.errors[0].code(), "conflicting_duplicate");
    }

    #[test]
    fn a_duration_beyond_end_minus_start_is_refused() {
        let m = markets();
        let a = account();
        let mut c = call("d", 1_778_000_000, 10, CallDirection::BusinessInitiated);
        c.end = Some(c.start + 9_000);
        let out = rate_calls(&m, &CallRates::default(), &[&a], &[c.clone()]);
        assert_eq!(out.errors[0].code(), "invalid_call");
        c.end = Some(c.start + 9_500);
        let out = rate_calls(
            &m,
            &rates(&m, "2026-04-01,USD,Brazil,,,0.01,x"),
            &[&a],
            &[c],
        );
        assert!(out.errors.is_empty(), "within a second: {:?}", out.errors);
    }

    proptest! {
        /// Order independence and idempotency: any arrival order, with repeats, gives the same
        /// charges; the amount is exactly rate x pulses / 10 at the tier reached.
        #[test]
        fn order_and_repeats_do_not_change_the_charges(
            calls in prop::collection::vec((0i64..5_000_000, 0u64..900, any::<bool>()), 1..40),
            seed in any::<u64>(),
        ) {
            let m = markets();
            let r = rates(&m, "2026-04-01,USD,Brazil,0,10,0.0500,x\n2026-04-01,USD,Brazil,11,,0.0400,x");
            let a = account();
            let list: Vec<Call> = calls
                .iter()
                .enumerate()
                .map(|(i, (t, d, b))| {
                    let dir = if *b { CallDirection::BusinessInitiated } else { CallDirection::UserInitiated };
                    call(&format!("c{i}"), 1_776_000_000 + t, *d, dir)
                })
                .collect();
            let base = rate_calls(&m, &r, &[&a], &list);
            prop_assert!(base.errors.is_empty());
            let mut shuffled: Vec<Call> = list.iter().chain(list.iter().take(3)).cloned().collect();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let again = rate_calls(&m, &r, &[&a], &shuffled);
            prop_assert_eq!(&base.charges, &again.charges);
            prop_assert_eq!(again.duplicates, 3.min(list.len()) as u64);
            for c in &base.charges {
                let expect = c.rate.map_or(Decimal::ZERO, |rate| {
                    Decimal::from_nanos(rate.nanos() * c.pulses as i128 / 10)
                });
                prop_assert_eq!(c.amount, expect);
                prop_assert_eq!(c.billable(), c.call_type == CallType::Regular);
            }
        }
    }
}
