//! Re-rating's memory of the months it rated (decisions.md D47).
//!
//! A (portfolio, month) is re-rated from everything stored for it: its messages, their
//! statuses and the look-back before it. Reading that from the store again at every round made
//! each round cost a whole month of reads, however little had arrived. Instead the engine keeps
//! the month's stored lines here, with the charges the last rating wrote, and a round brings
//! every kept month up to date from the events stored since the last round (the table's tail,
//! read once for all months) before rating it again. It then writes only the charges that
//! changed.
//!
//! The invariant: every kept month holds exactly what [`wabill_store::Store::events_for`]
//! would return for it with only the events up to [`MonthMemory::upto`] stored (and its
//! accounts as of then). Applying the tail in seq order keeps it: a message in the month's
//! range is added; a status is added to the months that hold its message; and a new message's
//! statuses stored before it (a status may come first) are added from the store, as the ones
//! after it are found by the tail itself. An account version in the tail forgets everything,
//! since it may change a portfolio's members or a WABA's calendar (rare, and re-rated whole
//! anyway).
//!
//! The memory is bounded: past its budget the least recently rated months are forgotten and
//! read from the store again when next needed.

use crate::LOOKBACK_MS;
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::Arc;
use wabill_rating::time::local_day_start;
use wabill_rating::{Month, UnixMs};
use wabill_store::{ChargeRow, EventKind, Store, StoreError, StoredEvent};

/// Default budget of the memory, in bytes of lines and charges held: a month of about 700,000
/// events.
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;

/// Rounds after which a month not rated again is forgotten: only months still receiving events
/// stay (about a minute when idle, when a round runs every second or so).
pub const IDLE_ROUNDS: u64 = 50;

/// What a held line costs beyond its bytes (its shared box and vector slot), in the estimate.
const LINE_OVERHEAD: usize = 48;

/// What an outbound message id costs: in the month's list and as a key of the id index, with
/// the index's list of months.
fn outbound_bytes(id: &str) -> usize {
    2 * id.len() + 2 * LINE_OVERHEAD + 96
}

/// What a kept charge costs: the row, its key, and each of its texts as an allocation of its
/// own (allocators round small ones up to 16 bytes).
fn charge_bytes(r: &ChargeRow) -> usize {
    let text = |t: &str| t.len().div_ceil(16) * 16 + 16;
    let optional = |t: &Option<String>| t.as_deref().map_or(0, text);
    std::mem::size_of::<ChargeRow>()
        + 2 * text(&r.id)
        + [
            &r.waba,
            &r.phone,
            &r.user,
            &r.country,
            &r.market,
            &r.pricing_model,
            &r.category,
            &r.pricing_type,
            &r.currency,
        ]
        .iter()
        .map(|t| text(t))
        .sum::<usize>()
        + optional(&r.tier)
        + optional(&r.conversation_id)
        + optional(&r.agent)
}

/// A (portfolio, month) as re-rating names it.
pub type MonthKey = (String, Month);

/// The instants a month's re-rating reads messages from: the month in each member WABA's
/// calendar, from [`LOOKBACK_MS`] before its earliest start to its latest end.
pub fn month_range(members: &[(String, Tz)], month: Month) -> (UnixMs, UnixMs) {
    let from = members
        .iter()
        .map(|(_, tz)| local_day_start(*tz, month.first_day()))
        .min()
        .expect("members")
        - LOOKBACK_MS;
    let to = members
        .iter()
        .map(|(_, tz)| local_day_start(*tz, month.next().first_day()))
        .max()
        .expect("members");
    (from, to)
}

/// One kept month.
pub struct MonthLines {
    /// The portfolio's WABAs with their timezones when the month was read.
    pub members: Vec<(String, Tz)>,
    /// The range of message instants read: the month in its WABAs' calendars and the look-back.
    pub from: UnixMs,
    pub to: UnixMs,
    /// (seq, stored line): the month's events.
    pub lines: Vec<(u64, Arc<str>)>,
    /// The ids of its outbound messages (what the tail's statuses are matched on).
    pub outbound: Vec<Box<str>>,
    /// The charges its last rating wrote, by message id; `None` until a rating wrote them.
    pub charges: Option<HashMap<Box<str>, ChargeRow>>,
}

impl MonthLines {
    /// Reads a month from what [`wabill_store::Store::events_for`] returned, keeping only what
    /// was stored up to `upto`: later events come with the tail.
    pub fn from_stored(
        members: Vec<(String, Tz)>,
        from: UnixMs,
        to: UnixMs,
        stored: Vec<StoredEvent>,
        upto: u64,
    ) -> MonthLines {
        let outbound: Vec<Box<str>> = stored
            .iter()
            .filter(|e| e.kind == EventKind::Outbound && e.seq <= upto)
            .map(|e| e.id.as_str().into())
            .collect();
        let kept_outbound: std::collections::HashSet<&str> =
            outbound.iter().map(|id| &**id).collect();
        // A status stored by `upto` whose message came later is not kept either: the tail
        // brings it back with its message.
        let keep: Vec<bool> = stored
            .iter()
            .map(|e| {
                e.seq <= upto
                    && (e.kind != EventKind::Status || kept_outbound.contains(e.id.as_str()))
            })
            .collect();
        let lines = stored
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(e, _)| (e.seq, Arc::from(e.raw)))
            .collect();
        MonthLines {
            members,
            from,
            to,
            lines,
            outbound,
            charges: None,
        }
    }

    fn bytes(&self) -> usize {
        let lines: usize = self
            .lines
            .iter()
            .map(|(_, l)| l.len() + LINE_OVERHEAD)
            .sum::<usize>()
            + self
                .outbound
                .iter()
                .map(|id| outbound_bytes(id))
                .sum::<usize>();
        let charges = self
            .charges
            .as_ref()
            .map_or(0, |c| c.values().map(charge_bytes).sum::<usize>());
        lines + charges
    }
}

struct Kept {
    month: MonthLines,
    bytes: usize,
    /// The round it was last rated in, for forgetting the least recent first and the idle.
    used: u64,
}

/// The months kept, with the seq they are complete up to.
pub struct MonthMemory {
    kept: HashMap<MonthKey, Kept>,
    /// Outbound message id → the kept months holding it.
    by_outbound: HashMap<Box<str>, Vec<MonthKey>>,
    /// Every kept month holds what was stored of it up to this seq.
    upto: u64,
    bytes: usize,
    budget: usize,
    /// Rounds so far.
    round: u64,
}

/// An event as stored, with what the kept months need of it: ingest hands these over as it
/// commits (see [`MonthMemory::catch_up`]).
#[derive(Clone, Debug)]
pub struct TailEvent {
    pub seq: u64,
    pub kind: EventKind,
    /// The message id (the WABA for an account version).
    pub id: Box<str>,
    pub waba: Option<Box<str>>,
    pub at_ms: UnixMs,
    pub raw: Arc<str>,
}

impl From<StoredEvent> for TailEvent {
    fn from(e: StoredEvent) -> TailEvent {
        TailEvent {
            seq: e.seq,
            kind: e.kind,
            id: e.id.into(),
            waba: e.waba.map(Into::into),
            at_ms: e.at_ms,
            raw: e.raw.into(),
        }
    }
}

/// A line to add to a kept month (and the message id, when it is an outbound message).
struct Push {
    key: MonthKey,
    seq: u64,
    raw: Arc<str>,
    outbound: Option<Box<str>>,
}

/// What applying a page of the tail did.
#[derive(Default)]
struct Applied {
    /// New outbound messages of kept months, (id, seq): their statuses stored before them are
    /// for the caller to add, with [`MonthMemory::add_earlier_statuses`].
    pub new_outbound: Vec<(String, u64)>,
    /// An account version came: everything was forgotten.
    pub reset: bool,
}

impl MonthMemory {
    pub fn new(budget: usize) -> MonthMemory {
        MonthMemory {
            kept: HashMap::new(),
            by_outbound: HashMap::new(),
            upto: 0,
            bytes: 0,
            budget,
            round: 0,
        }
    }

    /// Ends a round: months not rated for [`IDLE_ROUNDS`] rounds are forgotten, so that what
    /// is kept follows the months still receiving events, not the history.
    pub fn end_round(&mut self) {
        self.round += 1;
        let idle: Vec<MonthKey> = self
            .kept
            .iter()
            .filter(|(_, k)| self.round - k.used > IDLE_ROUNDS)
            .map(|(key, _)| key.clone())
            .collect();
        for key in idle {
            self.forget(&key);
        }
    }

    /// Sets the budget, forgetting the least recently rated months while over it.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.shrink();
    }

    /// The seq every kept month is complete up to.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Bytes held (an estimate of lines and charges).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Months kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Forgets everything and starts over at `upto` (nothing is kept, so nothing is missed).
    fn reset(&mut self, upto: u64) {
        self.kept.clear();
        self.by_outbound.clear();
        self.bytes = 0;
        self.upto = upto;
    }

    /// Brings the kept months up to `seq` from the events stored since [`MonthMemory::upto`].
    /// `committed` is what ingest handed over as it committed: when it holds every event of
    /// `(upto, seq]` (seqs have no gaps) nothing is read back; otherwise (the service was not
    /// the only writer, or the hand-over overflowed) the table's tail is read instead, once for
    /// all months.
    pub async fn catch_up(
        &mut self,
        store: &dyn Store,
        seq: u64,
        mut committed: Vec<TailEvent>,
    ) -> Result<(), StoreError> {
        const PAGE: u32 = 20_000;
        if self.kept.is_empty() {
            self.reset(seq);
            return Ok(());
        }
        let after = self.upto;
        committed.retain(|e| e.seq > after && e.seq <= seq);
        committed.sort_unstable_by_key(|e| e.seq);
        committed.dedup_by_key(|e| e.seq);
        if committed.len() as u64 == seq.saturating_sub(after) {
            return self.apply_all(store, &committed, seq).await;
        }
        while self.upto < seq {
            let page: Vec<TailEvent> = store
                .events_since(self.upto, PAGE)
                .await
                .inspect_err(|_| self.reset(seq))?
                .into_iter()
                .map(TailEvent::from)
                .collect();
            let end = page.len() < PAGE as usize || page.last().is_some_and(|e| e.seq >= seq);
            self.apply_all(store, &page, seq).await?;
            if end {
                self.upto = seq;
            }
        }
        Ok(())
    }

    /// Applies events of the tail, then adds the earlier statuses of the new messages.
    async fn apply_all(
        &mut self,
        store: &dyn Store,
        tail: &[TailEvent],
        until: u64,
    ) -> Result<(), StoreError> {
        const IDS_PER_LOOKUP: usize = 10_000;
        let applied = self.apply(tail, until);
        for chunk in applied.new_outbound.chunks(IDS_PER_LOOKUP) {
            // A failure leaves months without some statuses: start over rather than keep them.
            let statuses = store
                .statuses_before(chunk)
                .await
                .inspect_err(|_| self.reset(until))?;
            self.add_earlier_statuses(&statuses);
        }
        Ok(())
    }

    /// The seqs of the lines a kept month holds, sorted.
    pub fn seqs_of(&self, key: &MonthKey) -> Option<Vec<u64>> {
        let mut seqs: Vec<u64> = self
            .kept
            .get(key)?
            .month
            .lines
            .iter()
            .map(|l| l.0)
            .collect();
        seqs.sort_unstable();
        Some(seqs)
    }

    /// Adds a page of the tail (seq order, from `upto`) to the kept months, up to seq
    /// `until`.
    fn apply(&mut self, tail: &[TailEvent], until: u64) -> Applied {
        let mut applied = Applied::default();
        let mut by_waba: HashMap<&str, Vec<MonthKey>> = HashMap::new();
        for (key, k) in &self.kept {
            for (waba, _) in &k.month.members {
                by_waba.entry(waba.as_str()).or_default().push(key.clone());
            }
        }
        let mut pushes: Vec<Push> = Vec::new();
        let after = self.upto;
        for e in tail.iter().filter(|e| e.seq > after && e.seq <= until) {
            self.upto = e.seq;
            match e.kind {
                EventKind::Account => {
                    applied.reset = true;
                    break;
                }
                EventKind::Inbound | EventKind::Outbound => {
                    let waba = e.waba.as_deref().unwrap_or_default();
                    let holders: Vec<MonthKey> = by_waba
                        .get(waba)
                        .into_iter()
                        .flatten()
                        .filter(|key| {
                            let m = &self.kept[*key].month;
                            (m.from..m.to).contains(&e.at_ms)
                        })
                        .cloned()
                        .collect();
                    if holders.is_empty() {
                        continue;
                    }
                    let outbound = (e.kind == EventKind::Outbound).then(|| {
                        applied.new_outbound.push((e.id.to_string(), e.seq));
                        let id: Box<str> = e.id.clone();
                        self.by_outbound.insert(id.clone(), holders.clone());
                        id
                    });
                    for key in holders {
                        pushes.push(Push {
                            key,
                            seq: e.seq,
                            raw: e.raw.clone(),
                            outbound: outbound.clone(),
                        });
                    }
                }
                EventKind::Status => {
                    for key in self.by_outbound.get(&*e.id).into_iter().flatten() {
                        pushes.push(Push {
                            key: key.clone(),
                            seq: e.seq,
                            raw: e.raw.clone(),
                            outbound: None,
                        });
                    }
                }
            }
        }
        drop(by_waba);
        if applied.reset {
            self.reset(until);
            return applied;
        }
        for p in pushes {
            self.push(p);
        }
        applied
    }

    /// Adds the statuses of new messages that were stored before them, as
    /// [`Store::statuses_before`] gives them (the ones stored after a message came with the
    /// tail).
    fn add_earlier_statuses(&mut self, statuses: &[StoredEvent]) {
        let mut pushes = Vec::new();
        for st in statuses {
            for key in self.by_outbound.get(st.id.as_str()).into_iter().flatten() {
                pushes.push(Push {
                    key: key.clone(),
                    seq: st.seq,
                    raw: Arc::from(st.raw.as_str()),
                    outbound: None,
                });
            }
        }
        for p in pushes {
            self.push(p);
        }
    }

    fn push(&mut self, p: Push) {
        if let Some(k) = self.kept.get_mut(&p.key) {
            let mut bytes = p.raw.len() + LINE_OVERHEAD;
            k.month.lines.push((p.seq, p.raw));
            if let Some(id) = p.outbound {
                bytes += outbound_bytes(&id);
                k.month.outbound.push(id);
            }
            k.bytes += bytes;
            self.bytes += bytes;
        }
    }

    /// Takes a kept month out to rate it, if it was read for these members.
    pub fn take(&mut self, key: &MonthKey, members: &[(String, Tz)]) -> Option<MonthLines> {
        if self
            .kept
            .get(key)
            .is_some_and(|k| k.month.members != members)
        {
            self.forget(key);
        }
        let k = self.kept.remove(key)?;
        self.bytes -= k.bytes;
        Some(k.month)
    }

    /// Keeps a month (taken or read) after its rating wrote its charges, then forgets the least
    /// recently rated months while over budget.
    pub fn keep(&mut self, key: MonthKey, month: MonthLines) {
        self.forget(&key);
        for id in &month.outbound {
            let holders = self.by_outbound.entry(id.clone()).or_default();
            if !holders.contains(&key) {
                holders.push(key.clone());
            }
        }
        let bytes = month.bytes();
        self.bytes += bytes;
        self.kept.insert(
            key,
            Kept {
                month,
                bytes,
                used: self.round,
            },
        );
        self.shrink();
    }

    fn shrink(&mut self) {
        while self.bytes > self.budget {
            let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            self.forget(&oldest);
        }
    }

    /// Forgets one month, and its message ids in the id index (found through its own list,
    /// so that forgetting costs the month's size, not the index's).
    pub fn forget(&mut self, key: &MonthKey) {
        if let Some(k) = self.kept.remove(key) {
            self.bytes -= k.bytes;
            for id in &k.month.outbound {
                if let Some(holders) = self.by_outbound.get_mut(id) {
                    holders.retain(|h| h != key);
                    if holders.is_empty() {
                        self.by_outbound.remove(id);
                    }
                }
            }
        }
    }

    /// Forgets every month of a portfolio.
    pub fn forget_portfolio(&mut self, portfolio: &str) {
        let keys: Vec<MonthKey> = self
            .kept
            .keys()
            .filter(|(p, _)| p == portfolio)
            .cloned()
            .collect();
        for key in keys {
            self.forget(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use wabill_formats::{parse_line, Parsed};

    fn month_of(lines: &[(u64, &str)]) -> MonthLines {
        MonthLines {
            members: vec![("W1".into(), chrono_tz::UTC)],
            from: 0,
            to: 1,
            lines: lines.iter().map(|(s, l)| (*s, Arc::from(*l))).collect(),
            outbound: vec![],
            charges: None,
        }
    }

    /// What is kept follows the months still rated: an idle month goes after [`IDLE_ROUNDS`]
    /// rounds, one rated again stays, and the budget forgets the least recently rated first.
    #[test]
    fn idle_and_least_recent_months_are_forgotten() {
        let (a, b) = (("P".to_string(), Month(1)), ("P".to_string(), Month(2)));
        let mut memory = MonthMemory::new(usize::MAX);
        memory.keep(a.clone(), month_of(&[(1, "x")]));
        memory.keep(b.clone(), month_of(&[(2, "y")]));
        for _ in 0..IDLE_ROUNDS {
            memory.end_round();
            let again = memory.take(&b, &[("W1".into(), chrono_tz::UTC)]).unwrap();
            memory.keep(b.clone(), again);
        }
        assert!(memory.seqs_of(&a).is_some(), "not idle long enough yet");
        memory.end_round();
        assert_eq!(memory.seqs_of(&a), None, "idle: forgotten");
        assert_eq!(memory.seqs_of(&b), Some(vec![2]), "rated every round: kept");

        memory.keep(a.clone(), month_of(&[(1, "x")]));
        memory.end_round();
        memory.keep(b.clone(), month_of(&[(2, "y")]));
        let one = memory.bytes() / 2;
        memory.set_budget(one);
        assert_eq!(memory.seqs_of(&a), None, "least recently rated: forgotten");
        assert!(memory.seqs_of(&b).is_some());
        assert!(memory.bytes() <= one);
    }

    /// Whatever order events arrive in and however they are batched, a kept month brought up
    /// to date from the tail holds exactly the lines a fresh read of the store gives.
    #[tokio::test]
    async fn kept_months_hold_what_a_fresh_read_gives() {
        for seed in [1, 2, 3] {
            let (_dir, store, engine) = crate::engine::tests::engine().await;
            let cfg = wabill_gen::GenConfig {
                seed,
                events: 3000,
                wabas: 3,
                users: 150,
                start: "2025-10-22".into(),
                days: 16,
                ..Default::default()
            };
            let mut out = Vec::new();
            wabill_gen::generate(&cfg, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            // Accounts first, so that the rest is not all forgotten at each one.
            let (accounts, mut rest): (Vec<&str>, Vec<&str>) = text
                .lines()
                .partition(|l| l.contains(r#""kind":"account""#));
            let mut x = (seed * 0x9E37_79B9) | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for i in (1..rest.len()).rev() {
                rest.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            let mut batches = vec![accounts];
            let mut i = 0;
            while i < rest.len() {
                let n = 1 + (next() % 300) as usize;
                batches.push(rest[i..(i + n).min(rest.len())].to_vec());
                i += n;
            }
            let mut memory = MonthMemory::new(usize::MAX);
            let mut compared = 0;
            // (seq, key, members, what a read then gave), to read again later as of then.
            let mut then = Vec::new();
            for (round, batch) in batches.into_iter().enumerate() {
                let mut parsed = Parsed::default();
                for (n, line) in batch.iter().enumerate() {
                    parse_line(line, n as u64 + 1, &mut parsed).unwrap();
                }
                let events: Vec<_> = parsed.events.into_iter().enumerate().collect();
                engine.ingest(&events).await.unwrap();
                let seq = store.max_seq().await.unwrap();
                // Every other round, the events come handed over (out of order and repeated,
                // as concurrent ingests may hand them); the others read the store's tail.
                let handed: Vec<TailEvent> = if round % 2 == 0 {
                    let mut v: Vec<TailEvent> = store
                        .events_since(memory.upto(), u32::MAX)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(TailEvent::from)
                        .collect();
                    v.extend(v.clone().into_iter().step_by(7));
                    v.reverse();
                    v
                } else {
                    Vec::new()
                };
                memory.catch_up(store.as_ref(), seq, handed).await.unwrap();
                let portfolios: std::collections::BTreeSet<String> = store
                    .accounts(None)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.portfolio)
                    .collect();
                for portfolio in portfolios {
                    let members = engine.portfolio_members(&portfolio).await;
                    for month in [Month(2025 * 12 + 9), Month(2025 * 12 + 10)] {
                        let key = (portfolio.clone(), month);
                        let (from, to) = month_range(&members, month);
                        let wabas: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
                        let fresh = MonthLines::from_stored(
                            members.clone(),
                            from,
                            to,
                            store.events_for(&wabas, from, to).await.unwrap(),
                            memory.upto(),
                        );
                        let mut want: Vec<u64> = fresh.lines.iter().map(|l| l.0).collect();
                        want.sort_unstable();
                        if let Some(got) = memory.seqs_of(&key) {
                            assert_eq!(got, want, "seed {seed}, {key:?} at seq {seq}");
                            compared += 1;
                        }
                        then.push((seq, key.clone(), members.clone(), want));
                        let kept = memory.take(&key, &members).unwrap_or(fresh);
                        memory.keep(key, kept);
                    }
                }
            }
            assert!(compared > 20, "kept months were compared ({compared})");
            // A read that sees more than was stored at `upto` (ingest goes on during a round)
            // keeps only what it would have given then.
            for (seq, key, members, want) in then {
                let (from, to) = month_range(&members, key.1);
                let wabas: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
                let stored = store.events_for(&wabas, from, to).await.unwrap();
                let late = MonthLines::from_stored(members, from, to, stored, seq);
                let mut got: Vec<u64> = late.lines.iter().map(|l| l.0).collect();
                got.sort_unstable();
                assert_eq!(got, want, "seed {seed}, {key:?} read later as of seq {seq}");
            }
        }
    }
}
