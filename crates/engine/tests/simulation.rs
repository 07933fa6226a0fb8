//! A deterministic simulation of the service's engine (decisions.md D93), in the spirit of
//! TigerBeetle's simulator: for each seed, a generated month of traffic for two tenants (two
//! business portfolios) is sent in a random order, in random batches, with repeats and late
//! statuses, through the tenant-scoped ingest path. Between the clients and the service, a
//! network holds the requests on the wire and delivers them in any order, loses some, loses the
//! answer of others (the client sends again what it has no answer for) and delivers some twice.
//! Meanwhile the engine re-rates at random moments, the disk fills up and frees again (real
//! SQLite, `PRAGMA max_page_count`), writes fail or commit and lose their answer, the process
//! crashes (the engine and the store are dropped and opened again from the file, the requests on
//! the wire break), the clock moves on, and a slow reader pages through the charges of its key a
//! few rows at a time. After each run the invariants hold:
//! - every acknowledged event is stored, exactly once, and nothing is stored that was not sent;
//! - no charge is stored twice;
//! - the stored charges equal the rating core's charges of the acknowledged events, exactly;
//! - no cross-tenant answer: a key scoped to one tenant's WABAs has another tenant's statuses
//!   refused, a send check it makes about the other tenant's customer answers as if that
//!   tenant had sent nothing, and its reader is shown only its own charges;
//! - a slow reader is shown no charge twice (unless it moved in the order meanwhile) and every
//!   charge that stayed in place from its first page to its last.
//!
//! Everything is driven by the seed, one step at a time, so a failing seed replays exactly:
//! `SIM_SEED=N cargo test -p wabill-engine --test simulation`. `SIM_SEEDS` sets how many seeds
//! a run takes (CI: the default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wabill_engine::caller::admit;
use wabill_engine::check::{check_from, CheckRequest, Source};
use wabill_engine::engine::charge_row;
use wabill_engine::{Caller, Clock, Engine, ManualClock};
use wabill_formats::{parse_line, Parsed};
use wabill_rating::{rate, Event, RateOptions, Tariff, UnixMs};
use wabill_store::{ChargeCursor, ChargeFilter, ChargeRow, Role, SqliteStore, Store};

/// Seeds a run takes unless `SIM_SEEDS` says otherwise.
const DEFAULT_SEEDS: u64 = 200;

/// xorshift64*: the simulation's only source of choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The traffic of a seed: two portfolios (W1–W5 and W6–W10), a few hundred lines, in one of
/// the eras.
fn traffic(seed: u64) -> String {
    let starts = ["2024-05-20", "2025-06-24", "2025-10-25", "2026-09-26"];
    let cfg = wabill_gen::GenConfig {
        seed,
        events: 250 + seed % 250,
        wabas: 10,
        users: 30,
        phones_per_waba: 1,
        start: starts[(seed % starts.len() as u64) as usize].to_string(),
        days: 9,
        duplicate_permille: 30,
        shuffle_statuses: true,
    };
    let mut out = Vec::new();
    wabill_gen::generate(&cfg, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn waba_of<'e>(e: &'e Event<'_>) -> Option<&'e str> {
    match e {
        Event::Account(a) => Some(&a.waba),
        Event::Inbound(x) => Some(&x.waba),
        Event::Outbound(x) => Some(&x.waba),
        Event::Status(_) => None,
    }
}

fn tenant_of(waba: &str) -> u8 {
    let n: u32 = waba.trim_start_matches('W').parse().unwrap_or(0);
    if n <= 5 {
        1
    } else {
        2
    }
}

async fn open(path: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path).await.unwrap())
}

async fn all_charges(store: &dyn Store, wabas: Option<Vec<String>>) -> Vec<ChargeRow> {
    let mut filter = ChargeFilter {
        wabas,
        limit: 10_000,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let rows = store.charges(&filter).await.unwrap();
        let done = rows.len() < filter.limit as usize;
        if let Some(last) = rows.last() {
            filter.after = Some(last.cursor());
        }
        out.extend(rows);
        if done {
            return out;
        }
    }
}

/// A request on the wire: one tenant's events, sent through its key.
struct Request {
    tenant: u8,
    events: Vec<usize>,
}

/// What the network does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Delivered,
    /// Never reaches the service.
    Lost,
    /// Reaches the service; its answer never reaches the client.
    AnswerLost,
    /// Reaches the service, and again later (a proxy's retry).
    Twice,
}

enum Delivery {
    /// Stored: these events are acknowledged if the answer arrives.
    Stored(Vec<usize>),
    /// A fault: nothing acknowledged.
    Failed(String),
    /// The tenant's own event was refused: an invariant broken.
    Refused(String),
}

/// The service's side of a request: the key's scope, then ingest.
async fn deliver(
    engine: &Engine,
    store: &dyn Store,
    caller: &Caller,
    mine: Vec<(usize, Event<'_>)>,
) -> Delivery {
    let admitted = match admit(caller, store, mine, Vec::new()).await {
        Ok(a) => a,
        Err(e) => return Delivery::Failed(format!("admit: {e}")),
    };
    if let Some(r) = admitted.refused.first() {
        return Delivery::Refused(format!("event {}: {}", r.index, r.reason));
    }
    match engine.ingest(&admitted.events).await {
        Ok(_) => Delivery::Stored(admitted.events.iter().map(|(k, _)| *k).collect()),
        Err(e) => Delivery::Failed(e.to_string()),
    }
}

/// Each stored charge's place in the keyset order (sent at, id) and its WABA.
fn keys_of(rows: &[ChargeRow]) -> BTreeMap<String, (i64, String)> {
    rows.iter()
        .map(|r| (r.id.clone(), (r.sent_at_ms, r.waba.clone())))
        .collect()
}

/// A client paging slowly through `/v1/charges`' rows with its key's scope and a cursor, a few
/// rows at a time, while ingest, re-rating, faults and crashes go on. It must never be shown a
/// charge outside its scope, never a charge twice unless that charge moved, and every charge
/// that stayed in place from its first page to its last.
struct Reader {
    scope: Option<(u8, Vec<String>)>,
    cursor: Option<ChargeCursor>,
    seen: BTreeSet<String>,
    /// In scope when the reading began.
    initial: BTreeSet<String>,
    /// Each charge's place when last observed.
    last: BTreeMap<String, i64>,
    /// Charges that moved in the order, or went away, while the reading went on.
    moved: BTreeSet<String>,
}

impl Reader {
    fn new(scope: Option<(u8, Vec<String>)>, now: BTreeMap<String, (i64, String)>) -> Reader {
        let in_scope = |w: &String| scope.as_ref().is_none_or(|(_, ws)| ws.contains(w));
        Reader {
            initial: now
                .iter()
                .filter(|(_, (_, w))| in_scope(w))
                .map(|(id, _)| id.clone())
                .collect(),
            last: now.into_iter().map(|(id, (at, _))| (id, at)).collect(),
            scope,
            cursor: None,
            seen: BTreeSet::new(),
            moved: BTreeSet::new(),
        }
    }

    /// The charges after a step of the run.
    fn observe(&mut self, now: &BTreeMap<String, (i64, String)>) {
        for (id, at) in &self.last {
            if now.get(id).map(|(a, _)| a) != Some(at) {
                self.moved.insert(id.clone());
            }
        }
        self.last = now.iter().map(|(id, (at, _))| (id.clone(), *at)).collect();
    }

    /// One page; `None` once the last page is read and checked.
    async fn page(mut self, store: &dyn Store, limit: u32) -> Result<Option<Reader>, String> {
        let filter = ChargeFilter {
            wabas: self.scope.as_ref().map(|(_, ws)| ws.clone()),
            after: self.cursor.clone(),
            limit,
            ..Default::default()
        };
        let rows = store.charges(&filter).await.map_err(|e| e.to_string())?;
        let tenant = self.scope.as_ref().map(|(t, _)| *t);
        for r in &rows {
            if let Some((t, ws)) = &self.scope {
                if !ws.contains(&r.waba) {
                    return Err(format!(
                        "a reader scoped to tenant {t} was shown {}'s charge {}",
                        r.waba, r.id
                    ));
                }
            }
            if !self.seen.insert(r.id.clone()) && !self.moved.contains(&r.id) {
                return Err(format!(
                    "a reader (tenant {tenant:?}) was shown charge {} twice",
                    r.id
                ));
            }
        }
        if let Some(last) = rows.last() {
            self.cursor = Some(last.cursor());
        }
        if rows.len() == limit as usize {
            return Ok(Some(self));
        }
        let missed: Vec<&String> = self
            .initial
            .iter()
            .filter(|id| !self.moved.contains(*id) && !self.seen.contains(*id))
            .collect();
        if !missed.is_empty() {
            return Err(format!(
                "a reader (tenant {tenant:?}) missed {} charges that stayed in place, first {}",
                missed.len(),
                missed[0]
            ));
        }
        Ok(None)
    }
}

struct Run {
    /// What happened, for the message of a failing seed.
    log: Vec<String>,
}

impl Run {
    fn step(&mut self, what: impl Into<String>) {
        self.log.push(what.into());
    }
}

async fn simulate(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut run = Run { log: Vec::new() };
    let text = traffic(seed);
    let lines: Vec<&str> = text.lines().collect();
    let mut parsed = Parsed::default();
    for (i, l) in lines.iter().enumerate() {
        parse_line(l, i as u64, &mut parsed).map_err(|e| format!("generated line {i}: {e:?}"))?;
    }
    let events: Vec<Event<'_>> = parsed.events;
    // Which tenant sends each event: its WABA's, or, for a status, its message's.
    let mut message_tenant: BTreeMap<&str, u8> = BTreeMap::new();
    for e in &events {
        if let Event::Outbound(o) = e {
            message_tenant.insert(&o.id, tenant_of(&o.waba));
        }
    }
    let sender = |e: &Event<'_>| match (waba_of(e), e) {
        (Some(w), _) => tenant_of(w),
        (None, Event::Status(s)) => message_tenant.get(s.id.as_ref()).copied().unwrap_or(1),
        _ => 1,
    };
    let callers = [
        Caller {
            role: Role::Sender,
            wabas: Some((1..=5).map(|n| format!("W{n}")).collect()),
            key_id: Some(1),
            key_name: Some("t1".into()),
        },
        Caller {
            role: Role::Sender,
            wabas: Some((6..=10).map(|n| format!("W{n}")).collect()),
            key_id: Some(2),
            key_name: Some("t2".into()),
        },
    ];

    // Accounts first (a platform sets up its WABAs before their traffic), then the rest in a
    // random order, some twice.
    let (mut queue, rest): (Vec<usize>, Vec<usize>) =
        (0..events.len()).partition(|&i| matches!(events[i], Event::Account(_)));
    let mut rest = rest;
    for i in (1..rest.len()).rev() {
        rest.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let repeats: Vec<usize> = rest
        .iter()
        .filter(|_| rng.below(10) == 0)
        .copied()
        .collect();
    queue.extend(rest);
    queue.extend(repeats);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wabill.sqlite");
    let tariff = Arc::new(Tariff::bundled());
    let last_at: UnixMs = events
        .iter()
        .filter_map(|e| match e {
            Event::Outbound(o) => Some(o.at),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let clock = Arc::new(ManualClock::new(last_at - 3 * 86_400_000));
    let start_engine = |store: Arc<SqliteStore>| {
        let clock = clock.clone();
        let tariff = tariff.clone();
        async move {
            Engine::with_clock(store, tariff, Default::default(), move || clock.now_ms()).await
        }
    };
    let mut store = open(&path).await;
    let mut engine = start_engine(store.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut acknowledged: BTreeSet<usize> = BTreeSet::new();
    // Every event the service may have been sent, by index: nothing else may be stored.
    let mut sent: BTreeSet<usize> = BTreeSet::new();
    // Requests on the wire: sent by a client, not yet delivered to the service.
    let mut network: Vec<Request> = Vec::new();
    let mut reader: Option<Reader> = None;
    let mut i = 0;
    let mut disk_full = false;
    while i < queue.len() || !network.is_empty() {
        let choice = match rng.below(100) {
            // With nothing left to send, a client's turn delivers what is on the wire.
            0..=49 if i >= queue.len() => 50,
            // With nothing on the wire, the network's turn is a client's.
            50..=64 if network.is_empty() => 0,
            c => c,
        };
        match choice {
            // A client sends the next events of the queue, each through its own tenant's key;
            // the requests are on the wire until the network delivers them, in any order.
            0..=49 => {
                let n = 1 + rng.below(40) as usize;
                let batch_idx: Vec<usize> = queue[i..(i + n).min(queue.len())].to_vec();
                for t in [1u8, 2] {
                    let mine: Vec<usize> = batch_idx
                        .iter()
                        .copied()
                        .filter(|&k| sender(&events[k]) == t)
                        .collect();
                    if !mine.is_empty() {
                        sent.extend(&mine);
                        network.push(Request {
                            tenant: t,
                            events: mine,
                        });
                    }
                }
                i += batch_idx.len();
                run.step(format!("send {} events", batch_idx.len()));
            }
            // The network delivers one request on the wire: on time, lost, with its answer
            // lost, or twice.
            50..=64 => {
                let req = network.swap_remove(rng.below(network.len() as u64) as usize);
                let fate = match rng.below(20) {
                    0 => Fate::Lost,
                    1 => Fate::AnswerLost,
                    2 => Fate::Twice,
                    _ => Fate::Delivered,
                };
                if fate == Fate::Lost {
                    // The client times out and sends it again later.
                    run.step(format!(
                        "request of {} by tenant {} lost",
                        req.events.len(),
                        req.tenant
                    ));
                    queue.extend(&req.events);
                    continue;
                }
                let caller = &callers[(req.tenant - 1) as usize];
                let mine: Vec<(usize, Event<'_>)> =
                    req.events.iter().map(|&k| (k, events[k].clone())).collect();
                match deliver(&engine, &*store, caller, mine).await {
                    Delivery::Stored(done) => {
                        run.step(format!(
                            "ingest {} by tenant {}: ok, {fate:?}",
                            done.len(),
                            req.tenant
                        ));
                        match fate {
                            Fate::AnswerLost => queue.extend(&req.events),
                            _ => acknowledged.extend(done),
                        }
                    }
                    // Not acknowledged: the client sends it again later.
                    Delivery::Failed(e) => {
                        run.step(format!("ingest by tenant {}: {e}", req.tenant));
                        queue.extend(&req.events);
                    }
                    Delivery::Refused(why) => {
                        return Err(format!(
                            "seed {seed}: tenant {}'s own event refused: {why}\n{}",
                            req.tenant,
                            run.log.join("\n")
                        ));
                    }
                }
                if fate == Fate::Twice {
                    // A proxy's retry: the same request again, later.
                    network.push(req);
                }
            }
            65..=74 => {
                let r = engine.rerate_dirty().await;
                run.step(format!("rerate: {:?}", r.map_err(|e| e.to_string())));
            }
            75..=78 => {
                // The disk fills up, or is freed.
                disk_full = !disk_full;
                let cap = if disk_full { Some(0) } else { None };
                store.limit_pages(cap).await.map_err(|e| e.to_string())?;
                run.step(format!("disk full: {disk_full}"));
            }
            79..=83 => {
                // The next writes fail, or commit and lose their answer.
                let (refused, lost) = (rng.below(3) as u32, rng.below(2) as u32);
                store.inject_write_faults(refused, lost);
                run.step(format!(
                    "faults: {refused} writes refused, then {lost} answers lost"
                ));
            }
            84..=88 => {
                // A crash: nothing in memory survives; the file does. The connections of the
                // requests on the wire break, and their clients send them again.
                drop(engine);
                store.close().await.map_err(|e| e.to_string())?;
                drop(store);
                for req in network.drain(..) {
                    queue.extend(req.events);
                }
                store = open(&path).await;
                disk_full = false;
                engine = start_engine(store.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                run.step("crash and restart");
            }
            // A slow reader pages through the charges of its key, a few rows a step, while
            // everything else goes on (across crashes too: its cursor is a value).
            89..=94 => {
                let r = match reader.take() {
                    Some(r) => r,
                    None => {
                        let scope = match rng.below(3) {
                            0 => None,
                            t => Some((t as u8, callers[t as usize - 1].wabas.clone().unwrap())),
                        };
                        let now = keys_of(&all_charges(&*store, None).await);
                        run.step(format!(
                            "a reader starts, scope {:?}",
                            scope.as_ref().map(|s| s.0)
                        ));
                        Reader::new(scope, now)
                    }
                };
                match r.page(&*store, 1 + rng.below(9) as u32).await {
                    Ok(Some(r)) => reader = Some(r),
                    Ok(None) => run.step("the reader read every page"),
                    Err(e) => return Err(format!("seed {seed}: {e}\n{}", run.log.join("\n"))),
                }
            }
            _ => {
                clock.advance(rng.below(6 * 3_600_000) as i64);
                run.step("clock moves on");
            }
        }
        // What the reader may expect: a charge it must see is one that stayed, unmoved.
        if let Some(r) = reader.as_mut() {
            r.observe(&keys_of(&all_charges(&*store, None).await));
        }
    }
    if let Some(mut r) = reader.take() {
        loop {
            match r.page(&*store, 50).await {
                Ok(Some(next)) => r = next,
                Ok(None) => break,
                Err(e) => return Err(format!("seed {seed}: {e}\n{}", run.log.join("\n"))),
            }
        }
    }
    store.limit_pages(None).await.map_err(|e| e.to_string())?;
    // Often the process dies before the last events are re-rated: the restart must find them.
    if rng.below(2) == 0 {
        drop(engine);
        store.close().await.map_err(|e| e.to_string())?;
        drop(store);
        store = open(&path).await;
        engine = start_engine(store.clone())
            .await
            .map_err(|e| e.to_string())?;
        run.step("crash before the last re-rating, and restart");
    }
    // Faults still pending are spent on retries of the last round, as a client and the
    // service's own worker retry.
    let mut settled = engine.settle().await;
    for _ in 0..8 {
        if settled.is_ok() {
            break;
        }
        settled = engine.settle().await;
    }
    settled.map_err(|e| e.to_string())?;
    let fail = |what: String| Err(format!("seed {seed}: {what}\n{}", run.log.join("\n")));

    // Every acknowledged event is stored, once.
    let stored = store.events_since(0, u32::MAX).await.unwrap();
    let stored_keys: BTreeSet<(String, Option<String>)> = stored
        .iter()
        .map(|e| (e.id.clone(), e.status.clone()))
        .collect();
    if stored_keys.len() != stored.len() {
        return fail("an event is stored twice".into());
    }
    let key_of = |e: &Event<'_>| match e {
        Event::Account(a) => (a.waba.to_string(), None),
        Event::Inbound(x) => (x.id.to_string(), None),
        Event::Outbound(x) => (x.id.to_string(), None),
        Event::Status(s) => (s.id.to_string(), Some(s.status.as_str().to_string())),
    };
    let acked: Vec<Event<'_>> = acknowledged.iter().map(|&k| events[k].clone()).collect();
    for e in &acked {
        if !matches!(e, Event::Account(_)) && !stored_keys.contains(&key_of(e)) {
            return fail(format!("acknowledged {:?} is not stored", key_of(e)));
        }
    }

    // Nothing is stored that no client sent, and every event sent was in the end acknowledged
    // (a client sends again what it has no answer for).
    let sent_keys: BTreeSet<(String, Option<String>)> =
        sent.iter().map(|&k| key_of(&events[k])).collect();
    if let Some(k) = stored_keys.iter().find(|k| !sent_keys.contains(*k)) {
        return fail(format!("{k:?} is stored but was never sent"));
    }
    if let Some(k) = sent.iter().find(|k| !acknowledged.contains(k)) {
        return fail(format!(
            "{:?} was sent and never acknowledged",
            key_of(&events[*k])
        ));
    }

    // No charge twice, and exactly the rating core's charges of what was acknowledged.
    let got = all_charges(&*store, None).await;
    let ids: BTreeSet<&str> = got.iter().map(|c| c.id.as_str()).collect();
    if ids.len() != got.len() {
        return fail("a charge is stored twice".into());
    }
    let rated = rate(&tariff, &[], &acked, RateOptions::default());
    let mut expected: Vec<ChargeRow> = rated
        .charges
        .iter()
        .map(|c| charge_row(c, &tariff))
        .collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    let mut got = got;
    got.sort_by(|a, b| a.id.cmp(&b.id));
    if got != expected {
        let by_id = |rows: &[ChargeRow]| -> BTreeMap<String, ChargeRow> {
            rows.iter().map(|r| (r.id.clone(), r.clone())).collect()
        };
        let (g, x) = (by_id(&got), by_id(&expected));
        let only_stored: Vec<&String> = g.keys().filter(|k| !x.contains_key(*k)).collect();
        let only_rated: Vec<&String> = x.keys().filter(|k| !g.contains_key(*k)).collect();
        let changed = g
            .iter()
            .find(|(k, v)| x.get(*k).is_some_and(|e| e != *v))
            .map(|(k, v)| format!("\nstored {v:?}\nrated  {:?}", x[k]))
            .unwrap_or_default();
        let first = format!(
            "{} stored, {} rated; only stored: {only_stored:?}; only rated: {only_rated:?}{changed}",
            got.len(),
            expected.len()
        );
        return fail(format!("charges differ from the rating core's: {first}"));
    }

    // No cross-tenant answer. Tenant 1's key sends tenant 2's statuses: every one refused.
    let foreign: Vec<(usize, Event<'_>)> = acked
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Status(_)) && sender(e) == 2)
        .map(|(k, e)| (k, e.clone()))
        .collect();
    let n_foreign = foreign.len();
    let admitted = admit(&callers[0], &*store, foreign, Vec::new())
        .await
        .unwrap();
    if !admitted.events.is_empty() || admitted.refused.len() != n_foreign {
        return fail(format!(
            "tenant 1's key had {} of tenant 2's {n_foreign} statuses admitted",
            admitted.events.len()
        ));
    }
    // A send check by tenant 1 about tenant 2's business phone and customer answers as the same
    // check does on a store holding tenant 1's events only.
    let other = acked.iter().find_map(|e| match e {
        Event::Inbound(x) if tenant_of(&x.waba) == 2 => {
            x.user.map(|user| (x.phone.to_string(), user.to_string()))
        }
        _ => None,
    });
    if let Some((phone, user)) = other {
        let req = CheckRequest {
            waba: "W1".into(),
            phone,
            user,
            message_type: "text".into(),
            category: None,
            api: None,
            now: None,
            agent: None,
        };
        let now = clock.now_ms();
        let scoped = check_from(&engine, &callers[0], &req, now, Source::Store).await;
        let alone_dir = tempfile::tempdir().unwrap();
        let alone_store = open(&alone_dir.path().join("alone.sqlite")).await;
        let alone = Engine::with_clock(
            alone_store.clone(),
            tariff.clone(),
            Default::default(),
            move || now,
        )
        .await
        .unwrap();
        let own: Vec<(usize, Event<'_>)> = acked
            .iter()
            .enumerate()
            .filter(|(_, e)| sender(e) == 1)
            .map(|(k, e)| (k, e.clone()))
            .collect();
        alone.ingest(&own).await.unwrap();
        alone.settle().await.unwrap();
        let reference = check_from(&alone, &Caller::admin(), &req, now, Source::Store).await;
        let show = |r: &Result<serde_json::Value, _>| match r {
            Ok(v) => v.to_string(),
            Err(e) => format!("{e:?}"),
        };
        if show(&scoped) != show(&reference) {
            return fail(format!(
                "tenant 1's check about tenant 2's customer answered\n{}\nwhere tenant 1's events alone answer\n{}",
                show(&scoped),
                show(&reference)
            ));
        }
    }
    Ok(())
}

#[test]
fn the_engine_keeps_its_invariants_under_faults() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_SEEDS);
            (1..=n).collect()
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for seed in seeds {
        if let Err(why) = runtime.block_on(simulate(seed)) {
            panic!(
                "{why}\n\nreplay: SIM_SEED={seed} cargo test -p wabill-engine --test simulation"
            );
        }
    }
}
