//! The service's rating engine. Events are stored first (that is what makes an acknowledgement
//! safe), then the business portfolios and months they touch are marked dirty, and a worker
//! re-rates each dirty (portfolio, month) from the stored events with the pure rating core,
//! replacing its charges. Because a month is always re-rated from everything stored for it,
//! the stored charges converge to exactly what `wabill rate` gives for the same events,
//! whatever order they arrived in. What is stored for a month is read once and then kept up to
//! date in memory from what ingest commits (see [`crate::months`]).
//!
//! A month's charges depend on the month's own events (volume tiers and free allowances reset
//! monthly) and on windows and conversations still open at its start. Those last at most
//! 72 hours and their openers look back at most 24 hours, so each month is rated from
//! [`LOOKBACK_MS`] before its start; an event near a month's end also dirties the next month.
//!
//! Dirty marks live in memory, so a crash would lose them. The store therefore keeps a
//! watermark, `rated_seq`: every event up to it is reflected in the stored charges. A re-rating
//! round reads the highest seq under a gate that waits for ingests in flight (commit and
//! marking happen together under it), so what it takes as work covers every event up to that
//! seq; once the round succeeds the watermark rises to it. On start, events stored after the
//! watermark are marked dirty again.

use crate::cache::TtlCache;
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::months::{month_range, MonthKey, MonthLines, MonthMemory, TailEvent};
use crate::working_set::{pair_key, CounterKey, CounterSet, Line, WorkingSet};
use crate::LOOKBACK_MS;
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, Notify, RwLock};
use wabill_billing::TenantSetup;
use wabill_formats::events::write_event;
use wabill_formats::{parse_line, Parsed};
use wabill_rating::calls::Call;
use wabill_rating::time::{local_date, local_day_start};
use wabill_rating::{
    rate, Bsuid, Category, Charge, DeliveryStatus, Event, Month, Msisdn, RateOptions, RatingError,
    StatusMessage, Tariff, UnixMs,
};
use wabill_store::{
    CallChargeRow, CallScope, ChargeRow, EventKind, MetaMessageRow, NewAccount, NewCallEvent,
    NewEvent, OutboundRef, Store, StoreError, StoredCallEvent, StoredEvent,
};

/// Events ingest hands over to re-rating between two rounds at most; past it the hand-over is
/// dropped and the round reads them from the store.
const MAX_HANDED_OVER: usize = 250_000;

/// What ingesting a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored now (accounts included).
    pub stored: usize,
    /// Events already stored with the same content: acknowledged, not counted twice.
    pub duplicates: usize,
    /// (index in the request, why) for events refused: an id already stored with other content.
    pub conflicts: Vec<(usize, String)>,
}

#[derive(Clone)]
struct AccountInfo {
    portfolio: String,
    tz: Tz,
    /// The latest version's canonical line.
    raw: Arc<str>,
}

#[derive(Default)]
struct Dirty {
    /// Portfolio → months (in each WABA's own calendar) to re-rate.
    months: BTreeMap<String, BTreeSet<Month>>,
    /// WABAs with events but no account yet: the instants seen, re-rated when it arrives.
    waiting: HashMap<String, Vec<UnixMs>>,
    /// Message ids of stored statuses whose message ingest could not look up (a store read
    /// failed after their commit): the next round looks them up before it moves the watermark.
    unresolved: Vec<String>,
}

/// A message that could not be rated at the last re-rating of its month.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unratable {
    pub portfolio: String,
    pub month: String,
    pub code: &'static str,
    pub error: String,
}

pub struct Engine {
    store: Arc<dyn Store>,
    tariff: Arc<Tariff>,
    accounts: Mutex<HashMap<String, AccountInfo>>,
    dirty: Mutex<Dirty>,
    unratable: Mutex<BTreeMap<(String, Month), Vec<Unratable>>>,
    wake: Notify,
    /// Signalled after a re-rating round that re-rated something (budget alerts listen).
    rerated: Notify,
    /// Held shared by an ingest from its commit until its marks are made, and exclusively by a
    /// re-rating round while it reads the highest seq and takes the dirty set.
    gate: RwLock<()>,
    /// The watermark last written to the store (to skip writing the same value again).
    rated_seq: AtomicU64,
    /// Set when a write of ingest failed: the store may have committed it all the same (a
    /// commit whose answer was lost), so what it holds after the watermark is no longer known
    /// to be marked. The next round looks, as a start does (decisions.md D94).
    unsure: AtomicBool,
    /// The months re-rating keeps between rounds (see [`crate::months`]). Held for a whole
    /// round, which also keeps rounds from running at once.
    months: Mutex<MonthMemory>,
    /// What ingest committed since the last round, for the kept months (at most
    /// [`MAX_HANDED_OVER`]; a round reads the store's tail when something is missing).
    committed: std::sync::Mutex<Vec<TailEvent>>,
    /// The send check's working set (see [`crate::working_set`]).
    pub working_set: WorkingSet,
    /// The highest seq stored when the engine started: what ingest has not added to the working set.
    start_seq: u64,
    pub clock: Arc<dyn Clock>,
    /// The tenant set-up owning each WABA a send check named an agent for, read at most once
    /// per [`crate::cache::KEY_CACHE_TTL`] (`None`: no tenant owns the WABA).
    pub licences: TtlCache<String, Option<Arc<TenantSetup>>>,
    pub metrics: Arc<Metrics>,
    /// Lookups of late statuses' messages left to fail, to test what a failed read does.
    #[cfg(test)]
    fail_refs: std::sync::atomic::AtomicU32,
}

impl Engine {
    /// An engine over a store, loading the accounts it already holds and marking dirty what
    /// was stored after the store's re-rating watermark (what a crash left unrated); the
    /// worker (or [`Engine::settle`]) re-rates it.
    pub async fn new(
        store: Arc<dyn Store>,
        tariff: Arc<Tariff>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Engine>, StoreError> {
        Engine::with_clock(store, tariff, metrics, SystemClock).await
    }

    /// [`Engine::new`] with another clock (the send check's working set follows it).
    pub async fn with_clock(
        store: Arc<dyn Store>,
        tariff: Arc<Tariff>,
        metrics: Arc<Metrics>,
        clock: impl Clock,
    ) -> Result<Arc<Engine>, StoreError> {
        let mut accounts = HashMap::new();
        for row in store.accounts(None).await? {
            if let Ok(tz) = row.timezone.parse::<Tz>() {
                accounts.insert(
                    row.waba.clone(),
                    AccountInfo {
                        portfolio: row.portfolio,
                        tz,
                        raw: row.raw.into(),
                    },
                );
            }
        }
        let watermark = store.rated_seq().await?;
        let start_seq = store.max_seq().await?;
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let working_set = WorkingSet::new(clock.now_ms());
        // One WABA at a time, so that loading holds one WABA's week, not everyone's.
        for waba in accounts.keys() {
            let recent = store
                .events_for(
                    std::slice::from_ref(waba),
                    working_set.horizon(),
                    i64::MAX / 2,
                )
                .await?;
            working_set.load(&recent, start_seq);
        }
        let engine = Arc::new(Engine {
            store,
            tariff,
            accounts: Mutex::new(accounts),
            dirty: Mutex::new(Dirty::default()),
            unratable: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            rerated: Notify::new(),
            gate: RwLock::new(()),
            rated_seq: AtomicU64::new(watermark),
            unsure: AtomicBool::new(false),
            months: Mutex::new(MonthMemory::new(crate::months::DEFAULT_BUDGET_BYTES)),
            committed: std::sync::Mutex::new(Vec::new()),
            working_set,
            start_seq,
            clock,
            licences: TtlCache::default(),
            metrics,
            #[cfg(test)]
            fail_refs: Default::default(),
        });
        engine.metrics.stored_upto(start_seq);
        engine.metrics.set_rated_seq(watermark);
        engine.recover(watermark).await?;
        engine.recover_calls().await?;
        engine.mark_current_months().await;
        Ok(engine)
    }

    /// Marks every portfolio's current month dirty, so that re-rating builds the counters the
    /// send check needs (until then checks read them from the store).
    async fn mark_current_months(&self) {
        let now = self.clock.now_ms();
        let cache = self.accounts.lock().await;
        let mut dirty = self.dirty.lock().await;
        for info in cache.values() {
            dirty
                .months
                .entry(info.portfolio.clone())
                .or_default()
                .insert(local_date(info.tz, now).month());
        }
    }

    /// After a failed write of ingest, what the store committed all the same: the accounts it
    /// holds that the cache does not (or holds otherwise), and the events after the watermark,
    /// marked for re-rating and added to the working set where it lacks them. Called by a round
    /// under the exclusive gate, so no ingest is between its commit and its marks.
    async fn recover_unsure(&self) -> Result<(), StoreError> {
        let rows = self.store.accounts(None).await?;
        {
            let mut cache = self.accounts.lock().await;
            let mut dirty = self.dirty.lock().await;
            for row in rows {
                let Ok(tz) = row.timezone.parse::<Tz>() else {
                    continue;
                };
                if cache.get(&row.waba).is_some_and(|c| *c.raw == *row.raw) {
                    continue;
                }
                let old = cache.insert(
                    row.waba.clone(),
                    AccountInfo {
                        portfolio: row.portfolio.clone(),
                        tz,
                        raw: row.raw.as_str().into(),
                    },
                );
                for p in [Some(row.portfolio.clone()), old.map(|o| o.portfolio)]
                    .into_iter()
                    .flatten()
                {
                    dirty.months.entry(p).or_default().insert(Month(i32::MIN));
                }
                if let Some(times) = dirty.waiting.remove(&row.waba) {
                    for at in times {
                        mark(&mut dirty, &row.portfolio, tz, at);
                    }
                }
            }
        }
        let watermark = self.rated_seq.load(Ordering::SeqCst);
        let mut after = watermark;
        loop {
            let page = self.store.events_since(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            self.working_set.load_missing(&page);
            if page.len() < 10_000 {
                break;
            }
        }
        self.recover(watermark).await?;
        self.recover_calls().await
    }

    /// Marks dirty the months of the call events no re-rating has included yet (what a crash,
    /// or a failed write of ingest, left unmarked; decisions.md D131).
    async fn recover_calls(&self) -> Result<(), StoreError> {
        let unrated = self.store.unrated_calls().await?;
        if unrated.is_empty() {
            return Ok(());
        }
        let cache = self.accounts.lock().await;
        let mut dirty = self.dirty.lock().await;
        let n = unrated.len();
        for (waba, at) in unrated {
            mark_waba(&mut dirty, &cache, waba, at);
        }
        tracing::info!(
            call_events = n,
            "call events not yet rated are marked for re-rating"
        );
        Ok(())
    }

    /// Marks dirty what every event stored after `watermark` touches.
    async fn recover(&self, watermark: u64) -> Result<(), StoreError> {
        const PAGE: u32 = 10_000;
        let mut after = watermark;
        let mut recovered = 0u64;
        loop {
            let page = self.store.events_since(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            recovered += page.len() as u64;
            let status_ids: Vec<String> = page
                .iter()
                .filter(|e| e.kind == EventKind::Status)
                .map(|e| e.id.clone())
                .collect();
            let refs = self.message_refs(&status_ids).await?;
            let cache = self.accounts.lock().await;
            let mut dirty = self.dirty.lock().await;
            for e in &page {
                let waba = e.waba.clone().unwrap_or_default();
                match (e.kind, cache.get(&waba)) {
                    (EventKind::Status, _) => {}
                    // A new account version re-rates its whole portfolio, as at ingest.
                    (EventKind::Account, Some(info)) => {
                        dirty
                            .months
                            .entry(info.portfolio.clone())
                            .or_default()
                            .insert(Month(i32::MIN));
                    }
                    (_, Some(info)) => mark(&mut dirty, &info.portfolio, info.tz, e.at_ms),
                    (_, None) => dirty.waiting.entry(waba).or_default().push(e.at_ms),
                }
            }
            for r in refs {
                mark_waba(&mut dirty, &cache, r.waba, r.at_ms);
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if recovered > 0 {
            tracing::info!(
                events = recovered,
                after_seq = watermark,
                "events stored after the last re-rating are marked for re-rating"
            );
        }
        Ok(())
    }

    /// The portfolio and timezone of a WABA with an account.
    pub async fn account_info(&self, waba: &str) -> Option<(String, Tz)> {
        self.accounts
            .lock()
            .await
            .get(waba)
            .map(|i| (i.portfolio.clone(), i.tz))
    }

    /// Lets the send check's working set go of what the clock has left behind (events older
    /// than the look-back, counters of months long ended) and reports its size.
    pub fn maintain(&self) {
        let now = self.clock.now_ms();
        self.working_set.evict(now);
        self.working_set
            .forget_months_before(local_date(chrono_tz::UTC, now - 35 * 86_400_000).month());
        let (pairs, _, lines) = self.working_set.size();
        self.metrics.set_working_set(pairs as u64, lines as u64);
    }

    /// The latest account line of a WABA, as stored.
    pub async fn account_line(&self, waba: &str) -> Option<Arc<str>> {
        self.accounts.lock().await.get(waba).map(|i| i.raw.clone())
    }

    /// The WABAs of a business portfolio with their timezones, by WABA.
    pub async fn portfolio_members(&self, portfolio: &str) -> Vec<(String, Tz)> {
        let cache = self.accounts.lock().await;
        let mut m: Vec<(String, Tz)> = cache
            .iter()
            .filter(|(_, i)| i.portfolio == portfolio)
            .map(|(w, i)| (w.clone(), i.tz))
            .collect();
        m.sort_by(|a, b| a.0.cmp(&b.0));
        m
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn tariff(&self) -> &Tariff {
        &self.tariff
    }

    /// Stores a batch of parsed events (each with its index in the request), durably, then
    /// marks what they touch for re-rating. Returns once the store has committed.
    pub async fn ingest(&self, batch: &[(usize, Event<'_>)]) -> Result<IngestOutcome, StoreError> {
        // Commit and marks under one shared hold of the gate (see the module comment).
        let _gate = self.gate.read().await;
        let mut out = IngestOutcome::default();
        let mut accounts = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut positions = Vec::with_capacity(batch.len());
        // (position in `events`, description) of the statuses that describe their message.
        let mut described: Vec<(usize, MetaMessageRow)> = Vec::new();
        for (index, e) in batch {
            // Room for a typical canonical line, so that writing it rarely grows the buffer.
            let mut raw = Vec::with_capacity(256);
            match e {
                // What a status says of its message is stored beside it, not in it
                // (decisions.md D114): like its pricing, that is no part of the event, so that
                // the same status from Meta and from the platform is one event (D24, D25).
                Event::Status(s) if s.message.is_some() => {
                    let m = s.message.as_deref().expect("matched");
                    described.push((
                        events.len(),
                        MetaMessageRow {
                            id: s.id.to_string(),
                            status: s.status.as_str().to_string(),
                            at_ms: s.at,
                            waba: m.waba.to_string(),
                            phone: m.phone.to_string(),
                            user: m.user.map(|u| u.to_string()),
                            user_id: m.user_id.as_ref().map(|b| b.to_string()),
                            category: m.category.map(|c| c.as_str().to_string()),
                        },
                    ));
                    let plain = Event::Status(wabill_rating::Status {
                        message: None,
                        ..s.clone()
                    });
                    write_event(&mut raw, &plain);
                }
                _ => write_event(&mut raw, e),
            }
            let raw = String::from_utf8(raw).expect("written as UTF-8");
            match e {
                Event::Account(a) => accounts.push(NewAccount {
                    waba: a.waba.to_string(),
                    portfolio: a.portfolio.to_string(),
                    timezone: a.timezone.name().to_string(),
                    currency: a.currency.as_str().to_string(),
                    raw,
                }),
                Event::Inbound(i) => {
                    positions.push(*index);
                    events.push(NewEvent::inbound(
                        i.id.as_ref(),
                        i.at,
                        i.waba.as_ref(),
                        i.phone.to_string(),
                        user_key(i.user, i.user_id.as_ref()),
                        raw,
                    ));
                }
                Event::Outbound(o) => {
                    positions.push(*index);
                    events.push(NewEvent::outbound(
                        o.id.as_ref(),
                        o.at,
                        o.waba.as_ref(),
                        o.phone.to_string(),
                        user_key(o.user, o.user_id.as_ref()),
                        raw,
                    ));
                }
                Event::Status(s) => {
                    positions.push(*index);
                    events.push(NewEvent::status(
                        s.id.as_ref(),
                        s.status.as_str(),
                        s.at,
                        raw,
                    ));
                }
            }
        }
        // WABAs seen for the first time since the start: what was stored of them before it is
        // not in the send check's working set yet. It is read before anything is committed,
        // so that a failed read fails the request cleanly (a retry finds nothing stored).
        let mut earlier: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        if self.start_seq > 0 && !accounts.is_empty() {
            let unseen: Vec<String> = {
                let cache = self.accounts.lock().await;
                accounts
                    .iter()
                    .filter(|a| !cache.contains_key(&a.waba))
                    .map(|a| a.waba.clone())
                    .collect()
            };
            for waba in unseen {
                let recent = self
                    .store
                    .events_for(
                        std::slice::from_ref(&waba),
                        self.working_set.horizon(),
                        i64::MAX / 2,
                    )
                    .await?;
                earlier.insert(waba, recent);
            }
        }
        if !accounts.is_empty() {
            let outcomes = self
                .store
                .record_accounts(&accounts)
                .await
                .inspect_err(|_| self.unsure.store(true, Ordering::SeqCst))?;
            if let Some(seq) = outcomes.iter().filter(|o| o.recorded).map(|o| o.seq).max() {
                self.metrics.stored_upto(seq);
            }
            let mut cache = self.accounts.lock().await;
            let mut dirty = self.dirty.lock().await;
            for (a, o) in accounts.iter().zip(outcomes) {
                if !o.recorded {
                    out.duplicates += 1;
                    continue;
                }
                out.stored += 1;
                self.hand_over(std::iter::once(TailEvent {
                    seq: o.seq,
                    kind: EventKind::Account,
                    id: a.waba.as_str().into(),
                    waba: Some(a.waba.as_str().into()),
                    at_ms: 0,
                    raw: a.raw.as_str().into(),
                }));
                let tz: Tz = a.timezone.parse().expect("written from a parsed timezone");
                let old = cache.insert(
                    a.waba.clone(),
                    AccountInfo {
                        portfolio: a.portfolio.clone(),
                        tz,
                        raw: a.raw.as_str().into(),
                    },
                );
                if old.is_none() {
                    // Only the ingest that added the WABA to the cache loads it.
                    if let Some(recent) = earlier.remove(&a.waba) {
                        self.working_set.load(&recent, self.start_seq);
                    }
                }
                // A changed account re-rates every month of its portfolio (and of the one it
                // left): rare, and nothing less is exact.
                for p in [Some(a.portfolio.clone()), old.map(|o| o.portfolio)]
                    .into_iter()
                    .flatten()
                {
                    dirty.months.entry(p).or_default().insert(Month(i32::MIN));
                }
                if let Some(times) = dirty.waiting.remove(&a.waba) {
                    for at in times {
                        mark(&mut dirty, &a.portfolio, tz, at);
                    }
                }
            }
        }
        if !events.is_empty() {
            let result = self
                .store
                .append_described(&events, &described)
                .await
                .inspect_err(|_| self.unsure.store(true, Ordering::SeqCst))?;
            if let Some(&seq) = result.inserted.iter().max() {
                self.metrics.stored_upto(seq);
            }
            let mut handed = Vec::with_capacity(result.inserted.len());
            for (&seq, &i) in result.inserted.iter().zip(&result.inserted_at) {
                let e = &events[i];
                let pair = pair_key(e.phone.as_deref(), e.user.as_deref());
                let raw: Arc<str> = e.raw.as_str().into();
                self.working_set.add(
                    e.kind,
                    &e.id,
                    pair,
                    Line {
                        at: e.at_ms,
                        seq,
                        raw: raw.clone(),
                    },
                );
                handed.push(TailEvent {
                    seq,
                    kind: e.kind,
                    id: e.id.as_str().into(),
                    waba: e.waba.as_deref().map(Into::into),
                    at_ms: e.at_ms,
                    raw,
                });
            }
            self.hand_over(handed);
            out.stored += result.inserted.len();
            out.duplicates += result.duplicates;
            for (pos, why) in &result.conflicts {
                out.conflicts.push((positions[*pos], why.clone()));
            }
            let refused: BTreeSet<usize> = result.conflicts.iter().map(|c| c.0).collect();
            // A status whose message is in the same batch (the common case: statuses follow
            // their message within seconds) marks that message's month with the rest of the
            // batch; only the others are looked up in the store.
            let in_batch: std::collections::HashSet<&str> = events
                .iter()
                .enumerate()
                .filter(|(i, e)| e.kind == EventKind::Outbound && !refused.contains(i))
                .map(|(_, e)| e.id.as_str())
                .collect();
            let status_ids: Vec<String> = events
                .iter()
                .enumerate()
                .filter(|(i, e)| {
                    e.kind == EventKind::Status
                        && !refused.contains(i)
                        && !in_batch.contains(e.id.as_str())
                })
                .map(|(_, e)| e.id.clone())
                .collect();
            // The events are committed: a failed lookup must not lose their marks (the sender
            // would retry, find duplicates and mark nothing). The next round looks them up,
            // and does not move the watermark past them until it has.
            let (refs, unresolved) = match self.message_refs(&status_ids).await {
                Ok(refs) => (refs, Vec::new()),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        statuses = status_ids.len(),
                        "looking up the messages of late statuses failed; the next re-rating \
                         round looks them up"
                    );
                    (Vec::new(), status_ids)
                }
            };
            let cache = self.accounts.lock().await;
            let mut dirty = self.dirty.lock().await;
            dirty.unresolved.extend(unresolved);
            let touched = events
                .iter()
                .enumerate()
                .filter(|(i, e)| e.kind != EventKind::Status && !refused.contains(i))
                .map(|(_, e)| (e.waba.clone().unwrap_or_default(), e.at_ms))
                .chain(refs.into_iter().map(|r| (r.waba, r.at_ms)))
                // A described message's month, with or without an outbound event (D114).
                .chain(
                    described
                        .iter()
                        .filter(|(i, _)| !refused.contains(i))
                        .map(|(_, d)| (d.waba.clone(), d.at_ms)),
                );
            for (waba, at) in touched {
                mark_waba(&mut dirty, &cache, waba, at);
            }
        }
        self.metrics.add_ingested(
            out.stored as u64,
            out.duplicates as u64,
            out.conflicts.len() as u64,
        );
        self.wake.notify_one();
        Ok(out)
    }

    /// Stores a batch of call events (each with its index in the request), durably, in their
    /// canonical form (a `call` line), then marks their months for re-rating. Keys are (WABA,
    /// call id, phase): a repeat is a duplicate, other content under a stored key a conflict
    /// (decisions.md D129). Returns once the store has committed.
    pub async fn ingest_calls(
        &self,
        calls: &[(usize, Call<'_>)],
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        if calls.is_empty() {
            return Ok(out);
        }
        let _gate = self.gate.read().await;
        let rows: Vec<NewCallEvent> = calls
            .iter()
            .map(|(_, c)| {
                let mut raw = Vec::with_capacity(256);
                wabill_formats::calls::write_call_event(&mut raw, c);
                NewCallEvent {
                    waba: c.waba.to_string(),
                    id: c.id.to_string(),
                    terminate: c.outcome.is_some(),
                    start_ms: c.start,
                    raw: String::from_utf8(raw).expect("written as UTF-8"),
                }
            })
            .collect();
        let result = self
            .store
            .append_calls(&rows)
            .await
            .inspect_err(|_| self.unsure.store(true, Ordering::SeqCst))?;
        {
            let cache = self.accounts.lock().await;
            let mut dirty = self.dirty.lock().await;
            for &i in &result.inserted_at {
                mark_waba(&mut dirty, &cache, rows[i].waba.clone(), rows[i].start_ms);
            }
        }
        out.stored = result.inserted.len();
        out.duplicates = result.duplicates;
        out.conflicts = result
            .conflicts
            .into_iter()
            .map(|(i, why)| (calls[i].0, why))
            .collect();
        self.metrics.add_ingested(
            out.stored as u64,
            out.duplicates as u64,
            out.conflicts.len() as u64,
        );
        self.wake.notify_one();
        Ok(out)
    }

    /// Hands committed events over to the next round (called under the gate, so that a round
    /// that took the gate finds every event up to its seq here, unless the hand-over
    /// overflowed).
    fn hand_over(&self, events: impl IntoIterator<Item = TailEvent>) {
        let mut committed = self.committed.lock().expect("not poisoned");
        committed.extend(events);
        if committed.len() > MAX_HANDED_OVER {
            committed.clear();
            committed.shrink_to_fit();
        }
    }

    /// Waits until there may be something to re-rate.
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    /// Waits until a re-rating round has re-rated something (or [`Engine::notify_rerated`]).
    pub async fn rerated(&self) {
        self.rerated.notified().await
    }

    /// Wakes what waits on [`Engine::rerated`] (budget alerts, after their settings change).
    pub fn notify_rerated(&self) {
        self.rerated.notify_one();
    }

    /// Sets what re-rating may keep of the months it rated, in bytes (see [`crate::months`]).
    pub async fn set_month_memory_budget(&self, bytes: usize) {
        self.months.lock().await.set_budget(bytes);
    }

    /// Re-rates everything marked dirty so far. Returns the number of (portfolio, month) sets
    /// re-rated.
    pub async fn rerate_dirty(&self) -> Result<usize, StoreError> {
        let result = self.rerate_round().await;
        self.metrics.add_round(result.is_ok());
        let unratable = self
            .unratable
            .lock()
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>();
        self.metrics.set_unratable(unratable as u64);
        result
    }

    async fn rerate_round(&self) -> Result<usize, StoreError> {
        let mut memory = self.months.lock().await;
        let (work, seq, committed) = {
            let _gate = self.gate.write().await;
            if self.unsure.swap(false, Ordering::SeqCst) {
                if let Err(e) = self.recover_unsure().await {
                    self.unsure.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
            self.resolve_deferred().await?;
            let seq = self.store.max_seq().await?;
            self.metrics.stored_upto(seq);
            let committed = std::mem::take(&mut *self.committed.lock().expect("not poisoned"));
            (
                std::mem::take(&mut self.dirty.lock().await.months),
                seq,
                committed,
            )
        };
        let n = work.len();
        let mut work = work.into_iter();
        let mut result = memory.catch_up(self.store.as_ref(), seq, committed).await;
        if result.is_ok() {
            for (portfolio, months) in work.by_ref() {
                if let Err(e) = self.rerate(&mut memory, &portfolio, &months, seq).await {
                    // Put it back with what was not reached, so that it is tried again.
                    self.dirty
                        .lock()
                        .await
                        .months
                        .entry(portfolio)
                        .or_default()
                        .extend(months);
                    result = Err(e);
                    break;
                }
            }
        }
        memory.end_round();
        self.metrics
            .set_rerate_memory(memory.len() as u64, memory.bytes() as u64);
        if let Err(e) = result {
            let mut dirty = self.dirty.lock().await;
            for (p, m) in work {
                dirty.months.entry(p).or_default().extend(m);
            }
            return Err(e);
        }
        // Everything up to `seq` was in this round's work or in an earlier one's.
        if seq > self.rated_seq.load(Ordering::Relaxed) {
            self.store.set_rated_seq(seq).await?;
            self.rated_seq.store(seq, Ordering::Relaxed);
            self.metrics.set_rated_seq(seq);
        }
        if n > 0 {
            self.rerated.notify_one();
        }
        Ok(n)
    }

    /// The outbound messages among the ids of some statuses (none for none).
    async fn outbound_refs(&self, ids: &[String]) -> Result<Vec<OutboundRef>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(test)]
        if self
            .fail_refs
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Invalid {
                table: "events",
                why: "a read failure made for a test".into(),
            });
        }
        self.store.outbound_refs(ids).await
    }

    /// Where the messages of some statuses belong: their outbound events, and every stored
    /// description of them (a message known from its statuses alone, D114, belongs where its
    /// statuses are; a late status may change its charge, or make one).
    async fn message_refs(&self, ids: &[String]) -> Result<Vec<OutboundRef>, StoreError> {
        let mut refs = self.outbound_refs(ids).await?;
        if !ids.is_empty() {
            refs.extend(
                self.store
                    .meta_messages_by_id(ids)
                    .await?
                    .into_iter()
                    .map(|d| OutboundRef {
                        id: d.id,
                        waba: d.waba,
                        at_ms: d.at_ms,
                    }),
            );
        }
        Ok(refs)
    }

    /// Marks the messages of the statuses ingest could not look up (called under the gate, so
    /// that the round's work includes them). On failure they stay for the next round.
    async fn resolve_deferred(&self) -> Result<(), StoreError> {
        let ids = std::mem::take(&mut self.dirty.lock().await.unresolved);
        if ids.is_empty() {
            return Ok(());
        }
        let refs = match self.message_refs(&ids).await {
            Ok(refs) => refs,
            Err(e) => {
                self.dirty.lock().await.unresolved.extend(ids);
                return Err(e);
            }
        };
        let cache = self.accounts.lock().await;
        let mut dirty = self.dirty.lock().await;
        for r in refs {
            mark_waba(&mut dirty, &cache, r.waba, r.at_ms);
        }
        Ok(())
    }

    /// Re-rates until nothing is dirty (for tests and shutdown).
    pub async fn settle(&self) -> Result<(), StoreError> {
        while self.rerate_dirty().await? > 0 {}
        Ok(())
    }

    /// Messages that could not be rated, by portfolio and month.
    pub async fn unratable(&self) -> Vec<Unratable> {
        self.unratable
            .lock()
            .await
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Re-rates a portfolio's dirty months, one month at a time, so that a round holds at most
    /// one month of a portfolio (and its look-back) in memory. "Everything" (an account
    /// changed) is every month from the portfolio's first message to its last, and the
    /// current one.
    async fn rerate(
        &self,
        memory: &mut MonthMemory,
        portfolio: &str,
        months: &BTreeSet<Month>,
        seq: u64,
    ) -> Result<(), StoreError> {
        let members = self.portfolio_members(portfolio).await;
        if members.is_empty() {
            return Ok(());
        }
        let mut list: BTreeSet<Month> = months.clone();
        if list.remove(&Month(i32::MIN)) {
            let wabas: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
            let now = self.clock.now_ms();
            for (_, tz) in &members {
                list.insert(local_date(*tz, now).month());
            }
            if let Some((first, last)) = self.store.event_span(&wabas).await? {
                let month_of = |at: UnixMs, pick: fn(Month, Month) -> Month| {
                    members
                        .iter()
                        .map(|(_, tz)| local_date(*tz, at).month())
                        .reduce(pick)
                        .expect("members")
                };
                let last = month_of(last, Month::max);
                let mut m = month_of(first, Month::min);
                while m <= last {
                    list.insert(m);
                    m = m.next();
                }
            }
            // What the portfolio had before (a WABA may have left it) goes; each month re-rated
            // below puts its own back.
            self.working_set.forget_portfolio(portfolio);
            memory.forget_portfolio(portfolio);
            self.unratable
                .lock()
                .await
                .retain(|(p, _), _| p != portfolio);
        }
        for month in list {
            self.rerate_month(memory, portfolio, &members, month, seq)
                .await?;
        }
        Ok(())
    }

    async fn rerate_month(
        &self,
        memory: &mut MonthMemory,
        portfolio: &str,
        members: &[(String, Tz)],
        month: Month,
        seq: u64,
    ) -> Result<(), StoreError> {
        let key: MonthKey = (portfolio.to_string(), month);
        let lines = match memory.take(&key, members) {
            Some(lines) => lines,
            None => {
                let (from, to) = month_range(members, month);
                let wabas: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
                let stored = self.store.events_for(&wabas, from, to).await?;
                tracing::debug!(
                    portfolio,
                    month = %month,
                    events = stored.len(),
                    "re-rating reads a month from the store"
                );
                MonthLines::from_stored(members.to_vec(), from, to, stored, memory.upto())
            }
        };
        let described = self.described(&lines).await?;
        // The month's calls (and its look-back's, for the windows they open), read each time:
        // they are few next to messages (decisions.md D131).
        let calls = {
            let (from, to) = month_range(members, month);
            let wabas: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
            self.store.calls_for(&wabas, from, to).await?
        };
        // Parsing and rating a month is CPU work of up to seconds: off the async workers, so
        // that requests (send checks above all) are not queued behind it.
        let tariff = self.tariff.clone();
        let (rating, lines, calls) = tokio::task::spawn_blocking(move || {
            let mut lines = lines;
            let rating = rate_month(&tariff, month, seq, &mut lines, &described, &calls);
            (rating, lines, calls)
        })
        .await
        .expect("rating a month does not panic");
        // A month not kept (a failed write) is read from the store again next time.
        self.store
            .replace_charges(&rating.ids, &rating.rows)
            .await?;
        if !calls.is_empty() {
            let scopes: Vec<CallScope> = members
                .iter()
                .map(|(waba, tz)| CallScope {
                    waba: waba.clone(),
                    from_ms: local_day_start(*tz, month.first_day()),
                    to_ms: local_day_start(*tz, month.next().first_day()),
                })
                .collect();
            self.store
                .replace_call_charges(&scopes, &rating.call_rows, &rating.calls_rated)
                .await?;
            self.metrics.add_rated(rating.call_rows.len() as u64);
        }
        memory.keep(key, lines);
        self.metrics.add_rated(rating.rows.len() as u64);
        self.working_set
            .set_counters(portfolio, month, rating.counters);
        let mut unratable = self.unratable.lock().await;
        unratable.remove(&(portfolio.to_string(), month));
        if !rating.errors.is_empty() {
            unratable.insert(
                (portfolio.to_string(), month),
                rating
                    .errors
                    .into_iter()
                    .map(|(code, error)| Unratable {
                        portfolio: portfolio.to_string(),
                        month: month.to_string(),
                        code,
                        error,
                    })
                    .collect(),
            );
        }
        Ok(())
    }
}

/// Meta's descriptions of a month's messages (decisions.md D114, D115), read for each rating.
#[derive(Default)]
struct Described {
    /// (id, status, the message part to put back on that status, its instant).
    messages: Vec<(String, DeliveryStatus, UnixMs, StatusMessage<'static>)>,
    /// The stored statuses (plain lines) of described messages whose outbound event is not in
    /// the month's lines: their other statuses, which the month's lines do not hold.
    plain: Vec<String>,
}

impl Engine {
    /// What Meta said of the messages of a month (D114, D115): the descriptions of every
    /// message with a described status in the month's range (and a look-back after it), and
    /// of the month's outbound messages, so that the rating core sees each status as
    /// `wabill rate` does. Nothing is read beyond one query when the month has no
    /// description. A described message whose outbound event is stored outside the month's
    /// range is the outbound's month's.
    async fn described(&self, lines: &MonthLines) -> Result<Described, StoreError> {
        let wabas: Vec<String> = lines.members.iter().map(|m| m.0.clone()).collect();
        // Up to a look-back past the month's end too: a message sent in its last seconds
        // whose statuses Meta sent after it.
        let in_range = self
            .store
            .meta_messages_in(&wabas, lines.from, lines.to + LOOKBACK_MS)
            .await?;
        if in_range.is_empty() {
            return Ok(Described::default());
        }
        let outbound: std::collections::HashSet<&str> =
            lines.outbound.iter().map(|id| &**id).collect();
        let mut ids: Vec<String> = in_range
            .into_iter()
            .map(|d| d.id)
            .chain(lines.outbound.iter().map(|id| id.to_string()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = self.store.meta_messages_by_id(&ids).await?;
        let mut only: Vec<String> = rows
            .iter()
            .filter(|d| !outbound.contains(d.id.as_str()))
            .map(|d| d.id.clone())
            .collect();
        only.dedup();
        let elsewhere: std::collections::HashSet<String> = self
            .store
            .outbound_refs(&only)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        only.retain(|id| !elsewhere.contains(id));
        let mut messages = Vec::with_capacity(rows.len());
        for d in rows {
            if elsewhere.contains(&d.id) {
                continue;
            }
            let bad = |field: &str, why: &str| StoreError::Invalid {
                table: "meta_messages",
                why: format!(
                    "the description of status '{}' of '{}' has {field} that does not read \
                     back: {why}",
                    d.status, d.id
                ),
            };
            let status = DeliveryStatus::parse(&d.status).ok_or_else(|| bad("a status", ""))?;
            let message = StatusMessage {
                waba: d.waba.clone().into(),
                phone: Msisdn::parse(&d.phone).map_err(|w| bad("a phone", w))?,
                user: d
                    .user
                    .as_deref()
                    .map(Msisdn::parse)
                    .transpose()
                    .map_err(|w| bad("a user", w))?,
                user_id: d
                    .user_id
                    .clone()
                    .map(|b| Bsuid::parse(b.into()))
                    .transpose()
                    .map_err(|w| bad("a user_id", w))?,
                category: d
                    .category
                    .as_deref()
                    .map(|c| Category::parse(c).ok_or_else(|| bad("a category", c)))
                    .transpose()?,
            };
            messages.push((d.id, status, d.at_ms, message));
        }
        let plain = if only.is_empty() {
            Vec::new()
        } else {
            let all: Vec<(String, u64)> =
                only.into_iter().map(|id| (id, i64::MAX as u64)).collect();
            self.store
                .statuses_before(&all)
                .await?
                .into_iter()
                .map(|e| e.raw)
                .collect()
        };
        Ok(Described { messages, plain })
    }
}

/// What re-rating one portfolio's month produced.
struct MonthRating {
    /// What to write: the charges that changed (`rows`), and the ids whose charges change or
    /// go (every outbound message of the month when nothing was written before).
    ids: Vec<String>,
    rows: Vec<ChargeRow>,
    counters: CounterSet,
    /// (code, message) of what could not be rated.
    errors: Vec<(&'static str, String)>,
    /// The month's call charges (every call started in it), and the seqs of the call events
    /// they include.
    call_rows: Vec<CallChargeRow>,
    calls_rated: Vec<u64>,
}

/// Rates a portfolio's month from its stored lines (the month and its look-back), and records
/// in `month` the charges it writes.
fn rate_month(
    tariff: &Tariff,
    month: Month,
    seq: u64,
    lines: &mut MonthLines,
    described: &Described,
    calls: &[StoredCallEvent],
) -> MonthRating {
    let mut parsed = Parsed::default();
    for (i, (line_seq, raw)) in lines.lines.iter().enumerate() {
        // Stored lines were written by wabill itself; one that no longer reads is a bug.
        parse_line(raw, i as u64 + 1, &mut parsed)
            .unwrap_or_else(|err| panic!("stored event {line_seq} does not read back: {err}"));
    }
    for raw in &described.plain {
        parse_line(raw, 0, &mut parsed)
            .unwrap_or_else(|err| panic!("a stored status does not read back: {err}"));
    }
    restore_messages(&mut parsed.events, described);
    for c in calls {
        parse_line(&c.raw, c.seq, &mut parsed)
            .unwrap_or_else(|err| panic!("stored call event {} does not read back: {err}", c.seq));
    }
    // The windows calls open, as inbound events for the message walk (rules.md "Calls").
    let openers = wabill_rating::calls::window_openers(&parsed.calls);
    parsed.events.extend(openers);
    let tz_of: HashMap<&str, Tz> = lines
        .members
        .iter()
        .map(|(w, tz)| (w.as_str(), *tz))
        .collect();
    let in_scope = |waba: &str, at: UnixMs| -> bool {
        tz_of
            .get(waba)
            .is_some_and(|tz| local_date(*tz, at).month() == month)
    };
    // Messages known from their statuses alone (D110): where each is rated, as the core
    // picks its instant (the `sent` status that describes it, else the earliest that does).
    let outbound_ids: std::collections::HashSet<&str> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Outbound(o) => Some(o.id.as_ref()),
            _ => None,
        })
        .collect();
    let mut status_only: HashMap<&str, (bool, UnixMs, &str)> = HashMap::new();
    for e in &parsed.events {
        let Event::Status(s) = e else { continue };
        let Some(m) = s.message.as_deref() else {
            continue;
        };
        if outbound_ids.contains(s.id.as_ref()) {
            continue;
        }
        let sent = s.status == DeliveryStatus::Sent;
        let entry = status_only
            .entry(s.id.as_ref())
            .or_insert((sent, s.at, m.waba.as_ref()));
        if (sent, std::cmp::Reverse(s.at)) > (entry.0, std::cmp::Reverse(entry.1)) {
            *entry = (sent, s.at, m.waba.as_ref());
        }
    }
    let rated = rate(tariff, &[], &parsed.events, RateOptions::default());
    let rows: Vec<ChargeRow> = rated
        .charges
        .iter()
        .filter(|c| in_scope(c.waba, c.sent_at))
        .map(|c| charge_row(c, tariff))
        .collect();
    // Only what changed since the month's last rating is written.
    let (ids, changed) = match &lines.charges {
        None => {
            let ids = parsed
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Outbound(o) if in_scope(&o.waba, o.at) => Some(o.id.to_string()),
                    _ => None,
                })
                .chain(
                    status_only
                        .iter()
                        .filter(|(_, (_, at, waba))| in_scope(waba, *at))
                        .map(|(id, _)| id.to_string()),
                )
                .collect();
            (ids, rows.clone())
        }
        Some(before) => {
            let now: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            // A message known from its statuses that now belongs to another month (a late
            // `sent`, D111) is that month's to write, not this one's to remove.
            let gone = before
                .keys()
                .filter(|id| !now.contains(&***id))
                .filter(|id| {
                    status_only
                        .get(&***id)
                        .is_none_or(|(_, at, waba)| in_scope(waba, *at))
                })
                .map(|id| id.to_string());
            let changed: Vec<ChargeRow> = rows
                .iter()
                .filter(|r| before.get(r.id.as_str()) != Some(r))
                .cloned()
                .collect();
            (gone.collect(), changed)
        }
    };
    // The month's counters, empty ones too.
    let mut counters = CounterSet {
        seq,
        ..CounterSet::default()
    };
    for c in rated.charges.iter().filter(|c| in_scope(c.waba, c.sent_at)) {
        let Some(key) = CounterKey::of(c) else {
            continue;
        };
        *counters.counts.entry(key).or_default() += 1;
        counters.max_at = counters.max_at.max(c.sent_at);
    }
    // Messages of the look-back belong to the month before: their errors are its own.
    let elsewhere: std::collections::HashSet<&str> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Outbound(o) if !in_scope(&o.waba, o.at) => Some(o.id.as_ref()),
            _ => None,
        })
        .chain(
            status_only
                .iter()
                .filter(|(_, (_, at, waba))| !in_scope(waba, *at))
                .map(|(id, _)| *id),
        )
        .collect();
    let errors = rated
        .errors
        .iter()
        .filter(|e| match e {
            RatingError::UnknownAccount { id, .. }
            | RatingError::ConflictingDuplicate { id, .. }
            | RatingError::UnknownCategory { id }
            | RatingError::UnsupportedDate { id, .. }
            | RatingError::UnknownCountry { id, .. }
            | RatingError::UnknownUserIdCountry { id, .. }
            | RatingError::NoMarket { id, .. }
            | RatingError::MissingRate { id, .. } => !elsewhere.contains(id.as_str()),
            RatingError::InvalidAccount { .. } | RatingError::ConflictingAccount { .. } => true,
        })
        .map(|e| (e.code(), e.to_string()))
        .collect();
    let mut errors: Vec<(&'static str, String)> = errors;
    let (call_rows, calls_rated) = rate_month_calls(tariff, &parsed, calls, &in_scope, &mut errors);
    drop(parsed);
    lines.charges = Some(
        rows.into_iter()
            .map(|r| (r.id.as_str().into(), r))
            .collect(),
    );
    MonthRating {
        ids,
        rows: changed,
        counters,
        errors,
        call_rows,
        calls_rated,
    }
}

/// Rates the calls of a portfolio's month with the rating core (`wabill_rating::calls`, as
/// `wabill rate` does): the rows of the calls started in the month, those that could not be
/// priced among them with their error (also added to `errors`), and the seqs of the month's
/// call events.
fn rate_month_calls(
    tariff: &Tariff,
    parsed: &Parsed<'_>,
    stored: &[StoredCallEvent],
    in_scope: &dyn Fn(&str, UnixMs) -> bool,
    errors: &mut Vec<(&'static str, String)>,
) -> (Vec<CallChargeRow>, Vec<u64>) {
    if parsed.calls.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let accounts: Vec<&wabill_rating::Account<'_>> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Account(a) => Some(&**a),
            _ => None,
        })
        .collect();
    let rated = wabill_rating::calls::rate_calls(
        &tariff.markets,
        &tariff.call_rates,
        &accounts,
        &parsed.calls,
    );
    // Where each call belongs: the start of its merged charge, else of its earliest event.
    let mut start_of: HashMap<(&str, &str), UnixMs> = HashMap::new();
    for c in &parsed.calls {
        let e = start_of
            .entry((c.waba.as_ref(), c.id.as_ref()))
            .or_insert(c.start);
        *e = (*e).min(c.start);
    }
    for c in rated.charges.iter().chain(&rated.unpriced) {
        start_of.insert((c.waba.as_ref(), c.id.as_ref()), c.start);
    }
    let mut why: HashMap<&str, String> = HashMap::new();
    for e in &rated.errors {
        // The month's calls all belong to the portfolio's WABAs: an id names one call there,
        // unless two WABAs use it (then both are named).
        let scoped = parsed
            .calls
            .iter()
            .filter(|c| c.id == e.id())
            .any(|c| in_scope(&c.waba, start_of[&(c.waba.as_ref(), c.id.as_ref())]));
        if scoped {
            errors.push((e.code(), e.to_string()));
            why.entry(e.id()).or_insert_with(|| e.to_string());
        }
    }
    let mut rows: Vec<CallChargeRow> = rated
        .charges
        .iter()
        .filter(|c| in_scope(&c.waba, c.start))
        .map(|c| call_charge_row(c, tariff, None))
        .collect();
    for c in rated.unpriced.iter().filter(|c| in_scope(&c.waba, c.start)) {
        let error = why
            .get(c.id.as_ref())
            .cloned()
            .unwrap_or_else(|| format!("call {}: could not be priced", c.id));
        rows.push(call_charge_row(c, tariff, Some(error)));
    }
    let seqs = stored
        .iter()
        .filter(|c| in_scope(&c.waba, c.start_ms))
        .map(|c| c.seq)
        .collect();
    (rows, seqs)
}

/// The stored form of a call charge: the fields of its `wabill rate` line; with `error`, a
/// call to be charged that could not be priced (no amount, no rate).
pub fn call_charge_row(
    c: &wabill_rating::calls::CallCharge<'_>,
    tariff: &Tariff,
    error: Option<String>,
) -> CallChargeRow {
    let priced = error.is_none();
    CallChargeRow {
        waba: c.waba.to_string(),
        id: c.id.to_string(),
        start_ms: c.start,
        phone: c.phone.to_string(),
        user: c.user.map(|u| u.to_string()),
        user_id: c.user_id.as_deref().map(str::to_string),
        country: c.country.map(|k| tariff.markets.iso2(k).to_string()),
        market: c.market.map(|m| tariff.markets.market_name(m).to_string()),
        direction: c.direction.as_str().to_string(),
        call_type: c.call_type.as_str().to_string(),
        billable: priced && c.billable(),
        seconds: c.seconds,
        pulses: c.pulses,
        tier_minutes: c
            .tier_tenths
            .map(|t| wabill_rating::Decimal::from_nanos(t as i128 * 100_000_000)),
        tier: c.tier.map(|t| t.to_string()),
        rate: c.rate.filter(|_| priced),
        amount: priced.then_some(c.amount),
        currency: c.currency.as_str().to_string(),
        recording: c.recording,
        transcription: c.transcription,
        agent: c.agent.as_deref().map(str::to_string),
        error,
    }
}

/// Puts Meta's description of each message back on its statuses (D114): the stored line is
/// the plain status; a described status stored after the month's lines were read is added.
fn restore_messages<'a>(events: &mut Vec<Event<'a>>, described: &'a Described) {
    if described.messages.is_empty() {
        return;
    }
    let mut by_key: HashMap<(&str, DeliveryStatus), usize> = described
        .messages
        .iter()
        .enumerate()
        .map(|(i, (id, status, _, _))| ((id.as_str(), *status), i))
        .collect();
    for e in events.iter_mut() {
        if let Event::Status(s) = e {
            if let Some(i) = by_key.remove(&(s.id.as_ref(), s.status)) {
                s.message = Some(Box::new(described.messages[i].3.clone()));
            }
        }
    }
    let mut rest: Vec<usize> = by_key.into_values().collect();
    rest.sort_unstable();
    for i in rest {
        let (id, status, at, message) = &described.messages[i];
        events.push(Event::Status(wabill_rating::Status {
            id: id.as_str().into(),
            at: *at,
            status: *status,
            message: Some(Box::new(message.clone())),
        }));
    }
}

/// Marks the month of `at` (in the WABA's calendar) dirty, and the next month too when `at` is
/// within the look-back of its start.
/// [`mark`] for a WABA's event, or keeps the instant until the WABA's account arrives.
fn mark_waba(dirty: &mut Dirty, accounts: &HashMap<String, AccountInfo>, waba: String, at: UnixMs) {
    match accounts.get(&waba) {
        Some(info) => mark(dirty, &info.portfolio, info.tz, at),
        None => dirty.waiting.entry(waba).or_default().push(at),
    }
}

fn mark(dirty: &mut Dirty, portfolio: &str, tz: Tz, at: UnixMs) {
    let month = local_date(tz, at).month();
    let set = dirty.months.entry(portfolio.to_string()).or_default();
    set.insert(month);
    let next = month.next();
    if local_day_start(tz, next.first_day()) - at <= LOOKBACK_MS {
        set.insert(next);
    }
}

/// The stored user of an inbound or outbound event (the pair a send check reads): the phone
/// number, else the BSUID (decisions.md D104).
fn user_key(user: Option<wabill_rating::Msisdn>, user_id: Option<&wabill_rating::Bsuid>) -> String {
    match (user, user_id) {
        (Some(u), _) => u.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => String::new(),
    }
}

/// The stored form of a charge: exactly the fields `wabill rate` prints.
pub fn charge_row(c: &Charge<'_>, tariff: &Tariff) -> ChargeRow {
    ChargeRow {
        id: c.id.to_string(),
        sent_at_ms: c.sent_at,
        waba: c.waba.to_string(),
        phone: c.phone.to_string(),
        user: c.user_text().into_owned(),
        country: tariff.markets.iso2(c.country).to_string(),
        market: tariff.markets.market_name(c.market).to_string(),
        pricing_model: c.pricing_model.as_str().to_string(),
        category: c.category.as_str().to_string(),
        pricing_type: c.pricing_type.as_str().to_string(),
        billable: c.billable(),
        tier: c.tier.map(|t| t.to_string()),
        rate: c.rate.filter(|_| c.billable()),
        amount: c.amount,
        currency: c.currency.as_str().to_string(),
        billed_at_ms: c.billed_at,
        conversation_id: c.conversation_id.map(str::to_string),
        agent: c.agent.map(str::to_string),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wabill_formats::{parse_line, Parsed};
    use wabill_store::SqliteStore;

    const ACCOUNT: &str = r#"{"kind":"account","waba":"W1","currency":"USD"}"#;
    const SENT: &str = r#"{"kind":"outbound","id":"wamid.A","at":"2025-08-04T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}"#;
    const DELIVERED: &str =
        r#"{"kind":"status","id":"wamid.A","at":"2025-08-04T10:00:05Z","status":"delivered"}"#;

    /// An engine over a fresh SQLite store in a temporary directory (kept alive by the first).
    pub(crate) async fn engine() -> (tempfile::TempDir, Arc<dyn Store>, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("wabill.sqlite"))
                .await
                .unwrap(),
        );
        let engine = Engine::new(
            store.clone(),
            Arc::new(Tariff::bundled()),
            Default::default(),
        )
        .await
        .unwrap();
        (dir, store, engine)
    }

    /// Ingests lines as a sender would: a request that fails is sent again.
    async fn send(engine: &Engine, lines: &[&str]) {
        let mut parsed = Parsed::default();
        for (n, line) in lines.iter().enumerate() {
            parse_line(line, n as u64 + 1, &mut parsed).unwrap();
        }
        let events: Vec<_> = parsed.events.into_iter().enumerate().collect();
        if engine.ingest(&events).await.is_err() {
            engine.ingest(&events).await.unwrap();
        }
    }

    async fn billed(store: &Arc<dyn Store>) -> Option<i64> {
        let rows = store.charges_by_id(&["wamid.A".to_string()]).await.unwrap();
        assert_eq!(rows.len(), 1, "one charge for the message");
        rows[0].billed_at_ms
    }

    /// A late status whose message cannot be looked up after its commit (a failed store read)
    /// still re-rates the message's month: its mark waits for the next round, which does not
    /// move the watermark past it until the lookup succeeds.
    #[tokio::test]
    async fn a_failed_lookup_after_commit_loses_no_mark() {
        let (_dir, store, engine) = engine().await;
        send(&engine, &[ACCOUNT, SENT]).await;
        engine.settle().await.unwrap();
        assert_eq!(billed(&store).await, None, "not delivered yet");
        let before = store.rated_seq().await.unwrap();

        // The lookup at ingest fails, and so does the next round's.
        engine.fail_refs.store(2, Ordering::Relaxed);
        send(&engine, &[DELIVERED]).await;
        assert!(
            engine.rerate_dirty().await.is_err(),
            "the round's lookup fails"
        );
        assert_eq!(
            store.rated_seq().await.unwrap(),
            before,
            "the watermark stays before the unresolved status"
        );
        let metrics = engine.metrics.render();
        assert!(
            metrics.contains("wabill_rerate_rounds_total{result=\"failed\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("wabill_rerate_lag_events 1\n"),
            "the delivery is stored, not rated: {metrics}"
        );
        engine.settle().await.unwrap();
        assert!(billed(&store).await.is_some(), "the delivery is rated");
        assert!(store.rated_seq().await.unwrap() > before);
        assert!(engine
            .metrics
            .render()
            .contains("wabill_rerate_lag_events 0\n"));
    }
}
