//! The send check's working set, in memory: what rating one (business phone, user) pair as of
//! now needs, so that a check reads no store.
//!
//! - **Recent events.** Every inbound and outbound message sent at or after the *horizon*
//!   (the clock less [`LOOKBACK_MS`] and an hour), by pair, and every status of a message by
//!   its id, as the canonical lines the store holds, each with its seq. Ingest adds what it
//!   stored; [`WorkingSet::evict`] drops what falls behind the horizon as the clock moves on. Memory is
//!   therefore bounded by the pairs active in the last week and their messages, not by history.
//!   On start the set is loaded from the store (every WABA with an account); a WABA whose
//!   account arrives after the start is loaded then.
//! - **Counters** that span pairs (volume tiers, free allowances), per business portfolio and
//!   month: each re-rating of a (portfolio, month) rebuilds its [`CounterSet`] from the charges
//!   it computed, and records the seq up to which they count every event.
//!
//! A check as of an instant the set cannot answer for (before the horizon allows, or before the
//! newest charge a counter counts) reads the store instead; so does a month whose counters
//! are not built yet. The answer is the same either way (tested).

use crate::LOOKBACK_MS;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use wabill_rating::markets::MarketId;
use wabill_rating::{Category, Charge, Month, PricingModel, PricingType, UnixMs};
use wabill_store::{EventKind, StoredEvent};

/// How much older than the look-back events are kept, so that a check as of "now" never
/// needs one the set let go.
pub const MARGIN_MS: UnixMs = 3_600_000;

const SHARDS: usize = 64;

/// One stored event line.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: UnixMs,
    pub seq: u64,
    pub raw: std::sync::Arc<str>,
}

#[derive(Default)]
struct Shard {
    /// (business phone, user) → its inbound and outbound lines, in arrival order.
    pairs: FxHashMap<(u64, u64), Vec<Line>>,
    /// Message id → its status lines.
    statuses: FxHashMap<Box<str>, Vec<Line>>,
}

/// A counter the send check offsets its pair's own count by.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum CounterKey {
    /// PMP regular charged messages of a market in the volume-tier counter: utility, or
    /// authentication with authentication-international (`auth`).
    Tier { market: MarketId, auth: bool },
    /// PMP service messages within the free allowance of a business number.
    FreeService { phone: u64 },
    /// CBP service conversations of a WABA within (or beyond) its free tier.
    CbpService { waba: Box<str> },
}

impl CounterKey {
    /// The counter a charge counts in, if any: the one classification both the re-rating that
    /// builds the counters and the send check that reads them use.
    pub fn of(c: &Charge<'_>) -> Option<CounterKey> {
        use Category::*;
        match (c.pricing_model, c.category, c.pricing_type) {
            (PricingModel::Pmp, Utility, PricingType::Regular) => Some(CounterKey::Tier {
                market: c.market,
                auth: false,
            }),
            (
                PricingModel::Pmp,
                Authentication | AuthenticationInternational,
                PricingType::Regular,
            ) => Some(CounterKey::Tier {
                market: c.market,
                auth: true,
            }),
            (PricingModel::Pmp, Service, PricingType::FreeTier) => Some(CounterKey::FreeService {
                phone: c.phone.get(),
            }),
            (PricingModel::Cbp, Service, PricingType::FreeTier | PricingType::Regular)
                if c.conversation_id == Some(c.id) =>
            {
                Some(CounterKey::CbpService {
                    waba: c.waba.into(),
                })
            }
            _ => None,
        }
    }
}

/// The counters of one business portfolio and month, as its last re-rating left them.
#[derive(Clone, Debug, Default)]
pub struct CounterSet {
    /// Every event with a seq up to this one is counted (later ones may be).
    pub seq: u64,
    /// The latest send instant counted: a check as of an earlier instant cannot use the set.
    pub max_at: UnixMs,
    pub counts: FxHashMap<CounterKey, u64>,
}

impl CounterSet {
    pub fn get(&self, key: &CounterKey) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

/// (portfolio, month) → its counters.
type CounterSets = FxHashMap<(Box<str>, Month), Arc<CounterSet>>;

pub struct WorkingSet {
    shards: Box<[Mutex<Shard>]>,
    /// Events sent before this instant are not held.
    horizon: AtomicI64,
    counters: RwLock<CounterSets>,
}

/// The (business phone, user) key of an event's stored digits; `None` for a status.
pub fn pair_key(phone: Option<&str>, user: Option<&str>) -> Option<(u64, u64)> {
    phone?.parse().ok().zip(user?.parse().ok())
}

fn shard_of<T: Hash>(key: &T) -> usize {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    (h.finish() >> 32) as usize % SHARDS
}

impl WorkingSet {
    /// An empty set holding events from `clock_now - LOOKBACK_MS - MARGIN_MS` on.
    pub fn new(clock_now: UnixMs) -> WorkingSet {
        WorkingSet {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            horizon: AtomicI64::new(clock_now - LOOKBACK_MS - MARGIN_MS),
            counters: RwLock::default(),
        }
    }

    pub fn horizon(&self) -> UnixMs {
        self.horizon.load(Ordering::Acquire)
    }

    /// Adds a stored inbound, outbound or status line (accounts are not held).
    pub fn add(&self, kind: EventKind, id: &str, pair: Option<(u64, u64)>, line: Line) {
        if line.at < self.horizon() {
            return;
        }
        match (kind, pair) {
            (EventKind::Status, _) => {
                let mut s = self.shards[shard_of(&id)].lock().expect("not poisoned");
                s.statuses.entry(id.into()).or_default().push(line);
            }
            (EventKind::Inbound | EventKind::Outbound, Some(pair)) => {
                let mut s = self.shards[shard_of(&pair)].lock().expect("not poisoned");
                s.pairs.entry(pair).or_default().push(line);
            }
            _ => {}
        }
    }

    /// Adds stored events as the store gives them back (accounts are skipped), keeping only
    /// those with a seq up to `max_seq` (what ingest has not added already).
    pub fn load(&self, events: &[StoredEvent], max_seq: u64) {
        for e in events.iter().filter(|e| e.seq <= max_seq) {
            let pair = pair_key(e.phone.as_deref(), e.user.as_deref());
            self.add(
                e.kind,
                &e.id,
                pair,
                Line {
                    at: e.at_ms,
                    seq: e.seq,
                    raw: e.raw.as_str().into(),
                },
            );
        }
    }

    /// Adds stored events the set may lack (after a write whose outcome was unknown): an
    /// event whose seq the set holds already is skipped, so nothing is held twice.
    pub fn load_missing(&self, events: &[StoredEvent]) {
        for e in events {
            let pair = pair_key(e.phone.as_deref(), e.user.as_deref());
            let held = match (e.kind, pair) {
                (EventKind::Status, _) => {
                    let s = self.shards[shard_of(&e.id.as_str())]
                        .lock()
                        .expect("not poisoned");
                    s.statuses
                        .get(e.id.as_str())
                        .is_some_and(|l| l.iter().any(|l| l.seq == e.seq))
                }
                (EventKind::Inbound | EventKind::Outbound, Some(pair)) => {
                    let s = self.shards[shard_of(&pair)].lock().expect("not poisoned");
                    s.pairs
                        .get(&pair)
                        .is_some_and(|l| l.iter().any(|l| l.seq == e.seq))
                }
                _ => true,
            };
            if !held {
                self.load(std::slice::from_ref(e), u64::MAX);
            }
        }
    }

    /// The pair's inbound and outbound lines sent in `[from, to)`, or `None` when `from` is
    /// before the horizon (the set may have let some go).
    pub fn pair(&self, pair: (u64, u64), from: UnixMs, to: UnixMs) -> Option<Vec<Line>> {
        if from < self.horizon() {
            return None;
        }
        let s = self.shards[shard_of(&pair)].lock().expect("not poisoned");
        Some(s.pairs.get(&pair).map_or_else(Vec::new, |lines| {
            lines
                .iter()
                .filter(|l| from <= l.at && l.at < to)
                .cloned()
                .collect()
        }))
    }

    /// The status lines held for a message.
    pub fn statuses(&self, id: &str) -> Vec<Line> {
        let s = self.shards[shard_of(&id)].lock().expect("not poisoned");
        s.statuses.get(id).cloned().unwrap_or_default()
    }

    /// Moves the horizon to `clock_now - LOOKBACK_MS - MARGIN_MS` (never back) and lets go of
    /// what falls behind it, one shard at a time. Returns the lines dropped.
    pub fn evict(&self, clock_now: UnixMs) -> usize {
        let horizon = clock_now - LOOKBACK_MS - MARGIN_MS;
        // Raised first: from now on no check relies on what is about to go.
        if self.horizon.fetch_max(horizon, Ordering::AcqRel) >= horizon {
            return 0;
        }
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut s = shard.lock().expect("not poisoned");
            let mut keep = |lines: &mut Vec<Line>| {
                let before = lines.len();
                lines.retain(|l| l.at >= horizon);
                dropped += before - lines.len();
                !lines.is_empty()
            };
            s.pairs.retain(|_, lines| keep(lines));
            s.statuses.retain(|_, lines| keep(lines));
            s.pairs.shrink_to_fit();
            s.statuses.shrink_to_fit();
        }
        dropped
    }

    /// Pairs and status lists held, and lines in all (for metrics and tests).
    pub fn size(&self) -> (usize, usize, usize) {
        let (mut pairs, mut statuses, mut lines) = (0, 0, 0);
        for shard in self.shards.iter() {
            let s = shard.lock().expect("not poisoned");
            pairs += s.pairs.len();
            statuses += s.statuses.len();
            lines += s.pairs.values().map(Vec::len).sum::<usize>();
            lines += s.statuses.values().map(Vec::len).sum::<usize>();
        }
        (pairs, statuses, lines)
    }

    /// The counters of a portfolio's month, if a re-rating built them.
    pub fn counters(&self, portfolio: &str, month: Month) -> Option<Arc<CounterSet>> {
        self.counters
            .read()
            .expect("not poisoned")
            .get(&(Box::from(portfolio), month))
            .cloned()
    }

    /// Sets the counters of a portfolio's month, as a re-rating of it computed them.
    pub fn set_counters(&self, portfolio: &str, month: Month, set: CounterSet) {
        self.counters
            .write()
            .expect("not poisoned")
            .insert((portfolio.into(), month), Arc::new(set));
    }

    /// Forgets every month's counters of a portfolio (its WABAs changed).
    pub fn forget_portfolio(&self, portfolio: &str) {
        self.counters
            .write()
            .expect("not poisoned")
            .retain(|(p, _), _| &**p != portfolio);
    }

    /// Drops the counters of months that ended before `month` (they no longer serve a check
    /// as of now).
    pub fn forget_months_before(&self, month: Month) {
        self.counters
            .write()
            .expect("not poisoned")
            .retain(|(_, m), _| *m >= month);
    }
}
