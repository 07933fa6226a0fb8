//! The send check (`POST /v1/sends/check`): may this message be sent now, and what would it cost if it were
//! delivered now?
//!
//! The answer is the rating core's, never a second implementation of the rules: the pair's
//! stored events of the last [`LOOKBACK_MS`] (windows, conversations and entry points depend on
//! at most 96 hours, decisions.md D23) are rated together with the hypothetical message,
//! sent and delivered at "now", under an id that sorts after every real id ([`CHECK_ID`]), so
//! that it comes last among messages of the same instant.
//!
//! Three counters span more than one (business phone, user) pair, and a pair's events alone
//! cannot say where the message falls in them. Each is offset by the stored charges of the same
//! counter, sent up to now, that are not among the pair's messages rated here (those the core
//! just counted itself):
//! - volume tiers (PMP utility, and authentication with authentication-international): the
//!   message's place `n` = stored charged messages of the portfolio × market × counter in the
//!   month (each WABA's month in its own timezone) + its place among the pair's; it is priced
//!   with the tier holding `n` of the rate version the core used;
//! - the free service allowance from 2026-10-01 (1,000 free delivered service messages per
//!   business number and month): used = stored `free_tier` service messages of the number +
//!   the pair's; the message is charged at the service rate once 1,000 are used;
//! - the CBP free tier until 2024-10-31 (1,000 service conversations per WABA and month).
//!
//! A check as of the present reads all of this from the engine's working set in memory
//! ([`crate::working_set`], decisions.md D45): the pair's lines, the statuses of its messages, and the
//! counters of the portfolio's month as its last re-rating left them, to which the pair's own
//! messages stored since are added. [`Source::Store`] reads the store instead; so does a check
//! the working set cannot answer for (an earlier instant, a month not re-rated since the start).
//!
//! Where it can differ from the final bill: stored charges are those of the last re-rating, so
//! events stored but not yet re-rated (a second or so) are not counted, nor are messages other
//! pairs send after the check; the hypothetical is delivered "now" while the real one may be
//! delivered later (delivery confirms, the send instant decides, rules.md); and events older
//! than the look-back that still matter (D23's pathological chain) are not seen.

use crate::caller::Caller;
use crate::engine::Engine;
use crate::tenants::TenantError;
use crate::working_set::{CounterKey, Line};
use crate::LOOKBACK_MS;
use chrono_tz::Tz;
use rustc_hash::FxHashMap;
use serde_json::{json, Value};
use std::sync::Arc;
use wabill_formats::time::format_instant;
use wabill_formats::{parse_line, Parsed};
use wabill_rating::rater::{
    CBP_FREE_SERVICE_CONVERSATIONS, FEP_WINDOW_MS, FREE_SERVICE_MESSAGES, WINDOW_MS,
};
use wabill_rating::time::{local_date, local_day_start};
use wabill_rating::{
    rate, Category, Charge, Decimal, DeliveryStatus, Event, MessageKind, Month, PricingModel,
    PricingType, RateKey, RateOptions, RatingError, Status, UnixMs,
};
use wabill_store::{ChargeCount, StoreError, WabaRange};

/// The hypothetical message's id: U+10FFFF sorts after every other character, so the message
/// is rated after every real message sent at the same instant (ties are ordered by id).
pub const CHECK_ID: &str = "\u{10FFFF}check";

/// Meta's error code for a free-form message outside the customer service window.
pub const META_WINDOW_CLOSED: u32 = 131_047;

/// What the caller asks.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub waba: String,
    pub phone: String,
    pub user: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub category: Option<String>,
    pub api: Option<String>,
    /// Check as of this instant instead of the server's clock.
    pub now: Option<String>,
    /// The agent of the tenant owning the WABA who would send: only a licensed agent may
    /// (`license_required`, decisions.md D41).
    pub agent: Option<String>,
}

/// Why no answer could be given.
#[derive(Debug)]
pub enum CheckError {
    /// The request is not a message wabill can read (the field and why).
    Invalid {
        field: String,
        why: String,
    },
    UnknownAccount(String),
    /// The rating core cannot price the message: its stable code and text.
    Unratable {
        code: &'static str,
        message: String,
    },
    Store(StoreError),
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Store(e)
    }
}

/// Where a check reads the pair's events and the counters from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The engine's working set in memory ([`crate::working_set`]) where it can answer, else the store.
    Auto,
    /// The store only: the reference the working set is tested against.
    Store,
}

/// The answer, as JSON (see the OpenAPI schema `SendCheckAnswer`), from what `caller` may
/// see: events of the pair under WABAs outside its scope are not read into the answer (a
/// business phone or a user of another tenant's is, to this caller, one it never messaged).
pub async fn check(
    engine: &Engine,
    caller: &Caller,
    req: &CheckRequest,
    now: UnixMs,
) -> Result<Value, CheckError> {
    check_from(engine, caller, req, now, Source::Auto).await
}

/// [`check`], reading from `source`.
pub async fn check_from(
    engine: &Engine,
    caller: &Caller,
    req: &CheckRequest,
    now: UnixMs,
    source: Source,
) -> Result<Value, CheckError> {
    let mut read_store = false;
    let answer = match answer(engine, caller, req, now, source, &mut read_store).await {
        Ok(a) => cheapest(engine, caller, req, now, source, &mut read_store, a).await,
        Err(e) => Err(e),
    };
    engine.metrics.add_check(!read_store);
    answer
}

/// The amount of an allowed answer's charge.
fn amount_of(answer: &Value) -> Option<Decimal> {
    if answer["allowed"] != true {
        return None;
    }
    answer["charge"]["amount"].as_str()?.parse().ok()
}

/// Adds `cheapest` to an answer: the cheapest allowed way to reach the user now when it is not
/// the message asked about, else null (decisions.md D98). Each way is priced by the same check,
/// so by the rating core: a free-form message instead of a template while the customer
/// service window is open (free, or the service rate once the month's free service messages
/// are used), and a utility template instead of a free-form message (the only way once the
/// window is closed; free inside it under per-message pricing). Nothing is looked at when the
/// message asked about is allowed and free.
async fn cheapest(
    engine: &Engine,
    caller: &Caller,
    req: &CheckRequest,
    now: UnixMs,
    source: Source,
    read_store: &mut bool,
    mut asked: Value,
) -> Result<Value, CheckError> {
    asked["cheapest"] = Value::Null;
    let asked_amount = amount_of(&asked);
    if asked_amount.is_some_and(Decimal::is_zero) {
        return Ok(asked);
    }
    let window_open = asked["windows"]["customer_service"]["open"] == true;
    let template = req.message_type == "template";
    let (way, requires) = if template && window_open {
        (
            CheckRequest {
                message_type: "text".into(),
                category: None,
                api: None,
                ..req.clone()
            },
            "a free-form message (the customer service window is open until its ends_at)",
        )
    } else if !template {
        (
            CheckRequest {
                message_type: "template".into(),
                category: Some("utility".into()),
                api: None,
                ..req.clone()
            },
            "an approved utility template: Meta bills a template in the category it approved, \
             and only transactional content is utility",
        )
    } else {
        return Ok(asked);
    };
    let other = match answer(engine, caller, &way, now, source, read_store).await {
        Ok(a) => a,
        // A way that cannot be priced is not offered; the answer asked for stands.
        Err(CheckError::Unratable { .. }) => return Ok(asked),
        Err(e) => return Err(e),
    };
    let Some(other_amount) = amount_of(&other) else {
        return Ok(asked);
    };
    if asked_amount.is_some_and(|a| a <= other_amount) {
        return Ok(asked);
    }
    let charge = &other["charge"];
    asked["cheapest"] = json!({
        "type": way.message_type,
        "category": charge["category"],
        "pricing_type": charge["type"],
        "amount": charge["amount"],
        "currency": charge["currency"],
        "saving": asked_amount.map(|a| (a - other_amount).to_string()),
        "requires": requires,
    });
    Ok(asked)
}

async fn answer(
    engine: &Engine,
    caller: &Caller,
    req: &CheckRequest,
    now: UnixMs,
    source: Source,
    read_store: &mut bool,
) -> Result<Value, CheckError> {
    let tariff = engine.tariff();
    let store = engine.store();

    // The hypothetical message, read by the same parser as every event, so that a check
    // refuses exactly what POST /v1/events would.
    let mut line = json!({
        "kind": "outbound", "id": CHECK_ID, "at": format_instant(now), "waba": req.waba,
        "phone": req.phone, "user": req.user, "type": req.message_type,
    });
    if let Some(c) = &req.category {
        line["category"] = json!(c);
    }
    if let Some(a) = &req.api {
        line["api"] = json!(a);
    }
    let line = line.to_string();
    let mut hypothetical = Parsed::default();
    parse_line(&line, 1, &mut hypothetical).map_err(|e| CheckError::Invalid {
        field: e.field,
        why: e.why,
    })?;
    let Some(Event::Outbound(outbound)) = hypothetical.events.pop() else {
        unreachable!("an outbound line reads as one outbound event")
    };
    let non_template = outbound.kind == MessageKind::NonTemplate;

    let account: Option<Arc<str>> = match source {
        Source::Auto => engine.account_line(&req.waba).await,
        Source::Store => {
            *read_store = true;
            store
                .accounts(Some(std::slice::from_ref(&req.waba)))
                .await?
                .into_iter()
                .next()
                .map(|a| a.raw.into())
        }
    };
    let Some(account) = account else {
        return Err(CheckError::UnknownAccount(req.waba.clone()));
    };
    let phone = outbound.phone.to_string();
    // The request's `user` is required (a phone number), so the message names one.
    let user_number = outbound.user.expect("a check names the user's number");
    let user = user_number.to_string();
    let from = now - LOOKBACK_MS;
    let held = match source {
        Source::Auto => {
            engine
                .working_set
                .pair((outbound.phone.get(), user_number.get()), from, now + 1)
        }
        Source::Store => None,
    };
    let in_memory = held.is_some();
    *read_store |= !in_memory;
    let lines: Vec<Line> = match held {
        Some(lines) => lines,
        None => store
            .pair_events(&phone, &user, from, now + 1)
            .await?
            .into_iter()
            .map(|e| Line {
                at: e.at_ms,
                seq: e.seq,
                raw: e.raw.into(),
            })
            .collect(),
    };

    let mut parsed = Parsed::default();
    parse_line(&account, 0, &mut parsed)
        .unwrap_or_else(|e| panic!("stored account of '{}' does not read back: {e}", req.waba));
    let (portfolio, tz): (String, Tz) = match parsed.events.first() {
        Some(Event::Account(a)) => (a.portfolio.to_string(), a.timezone),
        _ => unreachable!("an account line reads as an account"),
    };
    // Stored lines were written by wabill itself; one that no longer reads is a bug.
    let mut pair = Parsed::default();
    let mut seq_of: FxHashMap<String, u64> = FxHashMap::default();
    for (i, l) in lines.iter().enumerate() {
        let before = pair.events.len();
        parse_line(&l.raw, i as u64 + 1, &mut pair)
            .unwrap_or_else(|err| panic!("stored event {} does not read back: {err}", l.seq));
        for e in &pair.events[before..] {
            if let Event::Outbound(o) = e {
                if caller.may_see(&o.waba) {
                    seq_of.insert(o.id.to_string(), l.seq);
                }
            }
        }
    }
    // The tenant scope: the pair's messages under WABAs the caller may not see, and their
    // statuses, are left out before anything is rated or answered.
    if caller.wabas.is_some() {
        pair.events.retain(|e| match e {
            Event::Inbound(i) => caller.may_see(&i.waba),
            Event::Outbound(o) => caller.may_see(&o.waba),
            Event::Status(s) => seq_of.contains_key(s.id.as_ref()),
            Event::Account(a) => caller.may_see(&a.waba),
        });
    }
    // The working set holds statuses by message id; the store gave them with the pair.
    let status_lines: Vec<Line> = if in_memory {
        seq_of
            .keys()
            .flat_map(|id| engine.working_set.statuses(id))
            .collect()
    } else {
        Vec::new()
    };
    let mut statuses = Parsed::default();
    for (i, l) in status_lines.iter().enumerate() {
        parse_line(&l.raw, i as u64 + 1, &mut statuses)
            .unwrap_or_else(|err| panic!("stored event {} does not read back: {err}", l.seq));
    }
    // The store gives the account of every WABA among the pair's events; so does the working
    // set (a business number that moved between WABAs has events of both).
    let mut others: Vec<Arc<str>> = Vec::new();
    if in_memory {
        let mut wabas: Vec<&str> = pair
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Inbound(i) => Some(i.waba.as_ref()),
                Event::Outbound(o) => Some(o.waba.as_ref()),
                _ => None,
            })
            .filter(|w| *w != req.waba)
            .collect();
        wabas.sort_unstable();
        wabas.dedup();
        for w in wabas {
            others.extend(engine.account_line(w).await);
        }
    }
    let mut other_accounts = Parsed::default();
    for a in &others {
        parse_line(a, 0, &mut other_accounts)
            .unwrap_or_else(|e| panic!("a stored account does not read back: {e}"));
    }
    let mut events = parsed.events;
    events.append(&mut other_accounts.events);
    events.append(&mut pair.events);
    events.append(&mut statuses.events);

    let pair_ids: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Outbound(o) => Some(o.id.to_string()),
            _ => None,
        })
        .collect();
    let last_inbound = events
        .iter()
        .filter_map(|e| match e {
            Event::Inbound(i) if i.at <= now => Some(i.at),
            _ => None,
        })
        .max();
    events.push(Event::Outbound(outbound));
    events.push(Event::Status(Status {
        id: CHECK_ID.into(),
        at: now,
        status: DeliveryStatus::Delivered,
        message: None,
    }));

    let rated = rate(tariff, &[], &events, RateOptions::default());
    let Some(h) = rated.charges.iter().find(|c| c.id == CHECK_ID) else {
        return Err(unratable(&rated.errors, &req.waba));
    };
    let mut charge = h.clone();
    let month = local_date(tz, now).month();
    let date = local_date(tz, now);
    let same_month = |c: &Charge<'_>| local_date(tz, c.sent_at).month() == month;
    // The counters: the working set's, when the pair came from it and its re-rating counted
    // nothing sent after `now`; else the store's.
    let counters = if in_memory {
        engine
            .working_set
            .counters(&portfolio, month)
            .filter(|s| now >= s.max_at)
    } else {
        None
    };
    // A pair's message the counters do not count yet (the store's never do: it is left out
    // of the query by id).
    let fresh = |c: &Charge<'_>| match &counters {
        None => true,
        Some(set) => c.id == CHECK_ID || seq_of.get(c.id).is_none_or(|&seq| seq > set.seq),
    };
    let ranges = match counters {
        Some(_) => Vec::new(),
        None => {
            let members = engine.portfolio_members(&portfolio).await;
            month_ranges(&members, &req.waba, tz, month, now)
        }
    };
    let mut tier_position = None;

    // Volume tiers.
    let tiered = [
        Category::Utility,
        Category::Authentication,
        Category::AuthenticationInternational,
    ];
    if h.pricing_model == PricingModel::Pmp
        && h.pricing_type == PricingType::Regular
        && tiered.contains(&h.category)
    {
        let counter: &[Category] = if h.category == Category::Utility {
            &[Category::Utility]
        } else {
            &[
                Category::Authentication,
                Category::AuthenticationInternational,
            ]
        };
        let key = CounterKey::of(h).expect("a regular PMP tiered message counts in its tier");
        let in_pair = rated
            .charges
            .iter()
            .filter(|c| CounterKey::of(c).as_ref() == Some(&key) && same_month(c) && fresh(c))
            .count() as u64;
        let stored = match &counters {
            Some(set) => set.get(&key),
            None => {
                *read_store = true;
                store
                    .count_charges(&ChargeCount {
                        ranges: ranges.clone(),
                        market: Some(tariff.markets.market_name(h.market).to_string()),
                        pricing_model: "PMP".into(),
                        categories: counter.iter().map(|c| c.as_str().to_string()).collect(),
                        pricing_types: vec!["regular".into()],
                        exclude_ids: pair_ids.clone(),
                        ..ChargeCount::default()
                    })
                    .await?
            }
        };
        let n = stored + in_pair;
        let key = RateKey {
            currency: h.currency,
            model: PricingModel::Pmp,
            market: h.market,
            category: h.category,
        };
        let Some((tier, rate)) = tariff.rates.lookup(&key, date).and_then(|v| v.price(n)) else {
            return Err(missing_rate(tariff, &key, date, Some(n)));
        };
        charge.tier = tier;
        charge.rate = Some(rate);
        charge.amount = rate;
        tier_position = Some(n);
    }

    // The monthly free service allowance (per business number, from 2026-10-01) and the CBP
    // free tier (per WABA, until 2024-10-31).
    let pmp_allowance = h.pricing_model == PricingModel::Pmp
        && h.category == Category::Service
        && h.pricing_type == PricingType::FreeTier;
    let cbp_allowance = h.pricing_model == PricingModel::Cbp
        && h.category == Category::Service
        && h.pricing_type == PricingType::FreeTier
        && h.conversation_id == Some(CHECK_ID);
    if pmp_allowance || cbp_allowance {
        let key = CounterKey::of(h).expect("a free-tier service message counts in its allowance");
        // The pair's other messages of the same allowance (the store's count leaves them out).
        let in_pair = rated
            .charges
            .iter()
            .filter(|c| {
                c.id != CHECK_ID
                    && CounterKey::of(c).as_ref() == Some(&key)
                    && same_month(c)
                    && fresh(c)
            })
            .count() as u64;
        let (count, limit) = if pmp_allowance {
            let q = ChargeCount {
                ranges: ranges.clone(),
                phone: Some(phone.clone()),
                pricing_model: "PMP".into(),
                categories: vec!["service".into()],
                pricing_types: vec!["free_tier".into()],
                exclude_ids: pair_ids.clone(),
                ..ChargeCount::default()
            };
            (q, u64::from(FREE_SERVICE_MESSAGES))
        } else {
            let own: Vec<WabaRange> = ranges
                .iter()
                .filter(|r| r.waba == req.waba)
                .cloned()
                .collect();
            let q = ChargeCount {
                ranges: own,
                pricing_model: "CBP".into(),
                categories: vec!["service".into()],
                pricing_types: vec!["free_tier".into(), "regular".into()],
                openers_only: true,
                exclude_ids: pair_ids.clone(),
                ..ChargeCount::default()
            };
            (q, u64::from(CBP_FREE_SERVICE_CONVERSATIONS))
        };
        let used = in_pair
            + match &counters {
                Some(set) => set.get(&key),
                None => {
                    *read_store = true;
                    store.count_charges(&count).await?
                }
            };
        if used >= limit {
            let key = RateKey {
                currency: h.currency,
                model: h.pricing_model,
                market: h.market,
                category: Category::Service,
            };
            let Some(rate) = tariff
                .rates
                .lookup(&key, date)
                .and_then(|v| v.steps.first().map(|s| s.1))
            else {
                return Err(missing_rate(tariff, &key, date, None));
            };
            charge.pricing_type = PricingType::Regular;
            charge.rate = Some(rate);
            charge.amount = rate;
        }
    }

    // Windows as of now.
    let csw_open = last_inbound.is_some_and(|l| now - l < WINDOW_MS);
    let free_entry_point = if h.pricing_type == PricingType::FreeEntryPoint {
        let opener = h.conversation_id.unwrap_or(CHECK_ID);
        let opened_at = rated
            .charges
            .iter()
            .find(|c| c.id == opener)
            .map_or(now, |c| c.sent_at);
        json!({"open": opener != CHECK_ID, "ends_at": format_instant(opened_at + FEP_WINDOW_MS),
               "opened_by_this_message": opener == CHECK_ID})
    } else {
        json!({"open": false, "ends_at": null, "opened_by_this_message": false})
    };
    let fep_openers: Vec<UnixMs> = rated
        .charges
        .iter()
        .filter(|c| {
            c.id != CHECK_ID
                && c.pricing_type == PricingType::FreeEntryPoint
                && c.conversation_id == Some(c.id)
        })
        .map(|c| c.sent_at)
        .collect();
    let conversations: Vec<Value> = rated
        .charges
        .iter()
        .filter(|c| {
            c.id != CHECK_ID
                && c.pricing_model == PricingModel::Cbp
                && c.conversation_id == Some(c.id)
                && c.billed_at.is_some()
                && !matches!(
                    c.pricing_type,
                    PricingType::FreeEntryPoint | PricingType::Undelivered
                )
                && c.sent_at <= now
                && now < c.sent_at + WINDOW_MS
                // A free entry point conversation opened since closed it.
                && !fep_openers.iter().any(|&f| c.sent_at <= f && f <= now)
        })
        .map(|c| {
            json!({"conversation_id": c.id, "category": c.category.as_str(),
                   "type": c.pricing_type.as_str(), "opened_at": format_instant(c.sent_at),
                   "expires_at": format_instant(c.sent_at + WINDOW_MS)})
        })
        .collect();
    let windows = json!({
        "customer_service": {
            "open": csw_open,
            "ends_at": if csw_open { json!(format_instant(last_inbound.unwrap_or(now) + WINDOW_MS)) } else { Value::Null },
        },
        "free_entry_point": free_entry_point,
        "conversations": conversations,
    });

    if non_template && !csw_open {
        return Ok(json!({
            "allowed": false,
            "reason": {
                "code": "window_closed",
                "meta_error": META_WINDOW_CLOSED,
                "message": "a non-template message can only be sent within 24 hours of the \
                            user's last message; send a template instead",
            },
            "at": format_instant(now),
            "charge": null,
            "windows": windows,
        }));
    }
    let opens_conversation = charge.conversation_id == Some(CHECK_ID)
        && charge.pricing_type != PricingType::FreeEntryPoint;
    Ok(json!({
        "allowed": true,
        "reason": null,
        "at": format_instant(now),
        "charge": {
            "pricing_model": charge.pricing_model.as_str(),
            "category": charge.category.as_str(),
            "type": charge.pricing_type.as_str(),
            "billable": charge.billable(),
            "tier": charge.tier.map(|t| t.to_string()),
            "rate": charge.rate.filter(|_| charge.billable()).map(|r| r.to_string()),
            "amount": charge.amount.to_string(),
            "currency": charge.currency.as_str(),
            "country": tariff.markets.iso2(charge.country),
            "market": tariff.markets.market_name(charge.market),
            "conversation_id": charge.conversation_id.filter(|c| *c != CHECK_ID),
            "opens_conversation": opens_conversation,
            "tier_position": tier_position,
        },
        "windows": windows,
    }))
}

/// Each portfolio member's month `month` (in its own timezone) up to `now` included. The asking
/// WABA is always there, in case its account arrived after the engine's cache was filled.
fn month_ranges(
    members: &[(String, Tz)],
    waba: &str,
    tz: Tz,
    month: Month,
    now: UnixMs,
) -> Vec<WabaRange> {
    let mut all: Vec<(String, Tz)> = members.to_vec();
    if !all.iter().any(|(w, _)| w == waba) {
        all.push((waba.to_string(), tz));
    }
    all.into_iter()
        .map(|(w, tz)| WabaRange {
            waba: w,
            from_ms: local_day_start(tz, month.first_day()),
            to_ms: local_day_start(tz, month.next().first_day()).min(now + 1),
        })
        .filter(|r| r.from_ms < r.to_ms)
        .collect()
}

/// The core's reason for not pricing the hypothetical message.
fn unratable(errors: &[RatingError], waba: &str) -> CheckError {
    let mine = errors.iter().find(|e| match e {
        RatingError::UnknownAccount { id, .. }
        | RatingError::UnsupportedDate { id, .. }
        | RatingError::UnknownCountry { id, .. }
        | RatingError::UnknownUserIdCountry { id, .. }
        | RatingError::NoMarket { id, .. }
        | RatingError::MissingRate { id, .. } => id == CHECK_ID,
        RatingError::InvalidAccount { waba: w, .. }
        | RatingError::ConflictingAccount { waba: w } => w == waba,
        RatingError::ConflictingDuplicate { id, .. } | RatingError::UnknownCategory { id } => {
            id == CHECK_ID
        }
    });
    match mine {
        Some(e) => CheckError::Unratable {
            code: e.code(),
            message: e.to_string().replace(CHECK_ID, "to check"),
        },
        None => CheckError::Unratable {
            code: "invalid_account",
            message: format!("WABA '{waba}' could not be rated"),
        },
    }
}

fn missing_rate(
    tariff: &wabill_rating::Tariff,
    key: &RateKey,
    date: wabill_rating::Date,
    n: Option<u64>,
) -> CheckError {
    CheckError::Unratable {
        code: "missing_rate",
        message: format!(
            "no {} rate for currency {}, market '{}', category {} on {date}{}",
            key.model.as_str(),
            key.currency,
            tariff.markets.market_name(key.market),
            key.category.as_str(),
            n.map(|n| format!(" (no tier holds message #{n} of the month)"))
                .unwrap_or_default()
        ),
    }
}

/// The answer for an agent without a licence at `now`, of the tenant owning the WABA; `None`
/// when the agent may send (or no tenant owns the WABA: licences are a tenant's). The WABA's
/// tenant set-up is read from the store at most once a second ([`crate::cache::KEY_CACHE_TTL`]): a licence
/// change takes effect within a second.
pub async fn licence_answer(
    engine: &Engine,
    waba: &str,
    agent: &str,
    now: UnixMs,
) -> Result<Option<Value>, TenantError> {
    let setup = match engine.licences.get(waba) {
        Some(setup) => setup,
        None => {
            let store = &**engine.store();
            let setup = match store.tenant_of_waba(waba).await? {
                None => None,
                Some(tenant) => Some(Arc::new(crate::tenants::load(store, &tenant).await?.1)),
            };
            engine.licences.put(waba.to_string(), setup.clone());
            setup
        }
    };
    // Licences are a tenant's: a WABA no tenant owns has none to check.
    let Some(setup) = setup else {
        return Ok(None);
    };
    Ok(setup.may_send(agent, now).err().map(|e| {
        json!({
            "allowed": false,
            "reason": {"code": e.code(), "agent": e.agent, "date": e.date.to_string(),
                       "message": e.to_string()},
            "at": format_instant(now),
            "charge": null,
            "windows": null,
        })
    }))
}
