//! The send check's working set in memory (`working_set.rs`): a check answered from it equals the
//! check answered from the store, across ingest, re-rating, restarts and eviction; events
//! count the moment they are stored; and it lets go of what the clock leaves behind.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;
use wabill_engine::check::{check_from, CheckRequest, Source};
use wabill_engine::Caller;
use wabill_rating::{Tariff, UnixMs};
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const ADMIN: &str = "admin-key-123";

fn at(s: &str) -> UnixMs {
    wabill_formats::time::parse_instant(s).unwrap()
}

async fn open_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let store = SqliteStore::open(dir.path().join("wabill.sqlite").to_str().unwrap())
        .await
        .unwrap();
    Arc::new(store)
}

async fn engine(store: Arc<dyn Store>, clock: fn() -> UnixMs) -> Arc<Engine> {
    Engine::with_clock(
        store,
        Arc::new(Tariff::bundled()),
        Default::default(),
        clock,
    )
    .await
    .unwrap()
}

async fn add_admin(store: &Arc<dyn Store>) {
    store
        .create_key(&NewApiKey {
            name: "admin".into(),
            role: Role::Admin,
            tenant_wabas: vec![],
            key_hash: hash_key(ADMIN),
        })
        .await
        .unwrap();
}

async fn post(engine: &Arc<Engine>, path: &str, body: String) -> (StatusCode, Value) {
    let state = Arc::new(AppState::new(engine.clone(), vec![], String::new()));
    let resp = api::router(state)
        .oneshot(
            Request::post(path)
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn ingest(engine: &Arc<Engine>, lines: &[&str]) {
    for chunk in lines.chunks(700) {
        let (status, r) = post(engine, "/v1/events", chunk.join("\n")).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(r["rejected"], 0, "{r}");
    }
}

/// Two weeks of traffic of four WABAs (in several timezones) from `start`.
fn stream(start: &str) -> String {
    let cfg = wabill_gen::GenConfig {
        seed: 7,
        events: 6000,
        wabas: 4,
        users: 300,
        start: start.into(),
        days: 14,
        ..Default::default()
    };
    let mut out = Vec::new();
    wabill_gen::generate(&cfg, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn request(waba: &str, phone: &str, user: &str, kind: &str) -> CheckRequest {
    let (message_type, category) = match kind {
        "text" => ("text", None),
        c => ("template", Some(c.to_string())),
    };
    CheckRequest {
        waba: waba.into(),
        phone: phone.into(),
        user: user.into(),
        message_type: message_type.into(),
        category,
        api: None,
        now: None,
        agent: None,
    }
}

/// A check's answer, or its error as text.
async fn answer(engine: &Engine, req: &CheckRequest, now: UnixMs, source: Source) -> Value {
    match check_from(engine, &Caller::admin(), req, now, source).await {
        Ok(v) => v,
        Err(e) => json!(format!("{e:?}")),
    }
}

/// Asks about every (WABA, phone, user) of the stream's outbound messages, with each kind of
/// message, from memory and from the store; they must agree, and the memory ones must not
/// have read the store. Returns the answers.
async fn agree(engine: &Engine, lines: &str, now: UnixMs) -> Vec<Value> {
    let mut triples: Vec<(String, String, String)> = lines
        .lines()
        .filter(|l| l.contains(r#""kind":"outbound""#))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("waba"), s("phone"), s("user"))
        })
        .collect();
    triples.sort();
    triples.dedup();
    assert!(triples.len() > 100, "{}", triples.len());
    let mut answers = Vec::new();
    let mut allowed = 0;
    for (i, (waba, phone, user)) in triples.iter().enumerate().step_by(3) {
        let kind = ["text", "marketing", "utility", "authentication"][i % 4];
        let req = request(waba, phone, user, kind);
        let (memory_before, store_before) = engine.metrics.checks();
        let from_memory = answer(engine, &req, now, Source::Auto).await;
        assert_eq!(
            engine.metrics.checks(),
            (memory_before + 1, store_before),
            "{waba} {phone} {user} {kind}: the check read the store"
        );
        let from_store = answer(engine, &req, now, Source::Store).await;
        assert_eq!(from_memory, from_store, "{waba} {phone} {user} {kind}");
        allowed += usize::from(from_memory["allowed"] == true);
        answers.push(from_memory);
    }
    // The sample holds both answers, and open windows and conversations.
    assert!(allowed > 0 && allowed < answers.len(), "{allowed}");
    answers
}

static CLOCK_A: AtomicI64 = AtomicI64::new(0);
fn clock_a() -> UnixMs {
    CLOCK_A.load(Ordering::Relaxed)
}

static CLOCK_CBP: AtomicI64 = AtomicI64::new(0);
fn clock_cbp() -> UnixMs {
    CLOCK_CBP.load(Ordering::Relaxed)
}

#[tokio::test]
async fn checks_from_memory_equal_checks_from_the_store_and_survive_a_restart() {
    // Late in the stream: windows of its last days are still open.
    CLOCK_A.store(at("2026-10-19T18:00:00Z"), Ordering::Relaxed);
    memory_equals_store("2026-10-05", clock_a).await;
}

#[tokio::test]
async fn checks_from_memory_equal_checks_from_the_store_in_the_conversation_era() {
    // Conversations (opened by delivered messages: statuses matter) are still open.
    CLOCK_CBP.store(at("2024-05-19T18:00:00Z"), Ordering::Relaxed);
    memory_equals_store("2024-05-05", clock_cbp).await;
}

async fn memory_equals_store(start: &str, clock: fn() -> UnixMs) {
    let now = clock();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    add_admin(&store).await;
    let e = engine(store.clone(), clock).await;
    let lines = stream(start);
    // Only what was sent up to the clock: a check as of now sees nothing later.
    let upto: Vec<&str> = lines
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["at"].as_str().is_none_or(|a| at(a) <= now)
        })
        .collect();
    ingest(&e, &upto).await;
    e.settle().await.unwrap();
    let (pairs, _, held) = e.working_set.size();
    assert!(pairs > 50 && held > 500, "{pairs} pairs, {held} lines");
    let first = agree(&e, &lines, now).await;

    // The route answers from memory too.
    let before = e.metrics.checks();
    let (status, a) = post(
        &e,
        "/v1/sends/check",
        json!({"waba": "W1", "phone": "15550000101", "user": "5511900000001", "type": "text"})
            .to_string(),
    )
    .await;
    assert!(
        status.is_success() || status.as_u16() == 422,
        "{status} {a}"
    );
    assert_eq!(e.metrics.checks(), (before.0 + 1, before.1), "{a}");

    // A new engine over the same store loads the working set and answers the same.
    drop(e);
    let e = engine(store.clone(), clock).await;
    e.settle().await.unwrap();
    let again = agree(&e, &lines, now).await;
    assert_eq!(first, again);
}

static CLOCK_B: AtomicI64 = AtomicI64::new(0);
fn clock_b() -> UnixMs {
    CLOCK_B.load(Ordering::Relaxed)
}

fn account(waba: &str) -> String {
    format!(
        r#"{{"kind":"account","waba":"{waba}","portfolio":"P9","timezone":"UTC","currency":"USD","primary_country":"BR"}}"#
    )
}

fn inbound(id: &str, when: UnixMs, waba: &str) -> String {
    let when = wabill_formats::time::format_instant(when);
    format!(
        r#"{{"kind":"inbound","id":"{id}","at":"{when}","waba":"{waba}","phone":"15550009999","user":"5511987654321"}}"#
    )
}

#[tokio::test]
async fn an_event_counts_as_soon_as_it_is_stored_and_the_clock_lets_it_go() {
    CLOCK_B.store(at("2026-11-10T12:00:00Z"), Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    add_admin(&store).await;
    let e = engine(store.clone(), clock_b).await;
    let text = request("W9", "15550009999", "5511987654321", "text");
    let now = clock_b();
    ingest(&e, &[&account("W9")]).await;
    e.settle().await.unwrap();
    let closed = answer(&e, &text, now, Source::Auto).await;
    assert_eq!(closed["reason"]["code"], "window_closed", "{closed}");

    // The user writes: the next check, before any re-rating, sees the window open.
    ingest(&e, &[&inbound("in1", now - 60_000, "W9")]).await;
    let open = answer(&e, &text, now, Source::Auto).await;
    assert_eq!(open["allowed"], true, "{open}");
    assert_eq!(open, answer(&e, &text, now, Source::Store).await);
    assert_eq!(e.working_set.size(), (1, 0, 1));

    // Eight days on, the inbound has left the working set, and the check (now from an empty
    // pair) still equals the store's.
    CLOCK_B.store(now + 8 * 86_400_000, Ordering::Relaxed);
    e.maintain();
    assert_eq!(e.working_set.size(), (0, 0, 0));
    let later = clock_b();
    let before = e.metrics.checks();
    let closed = answer(&e, &text, later, Source::Auto).await;
    assert_eq!(closed["reason"]["code"], "window_closed", "{closed}");
    assert_eq!(e.metrics.checks().0, before.0 + 1);
    assert_eq!(closed, answer(&e, &text, later, Source::Store).await);
    // An event older than the working set's horizon is stored but not held.
    ingest(&e, &[&inbound("in0", now - 86_400_000, "W9")]).await;
    assert_eq!(e.working_set.size(), (0, 0, 0));
}

static CLOCK_C: AtomicI64 = AtomicI64::new(0);
fn clock_c() -> UnixMs {
    CLOCK_C.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_wabas_events_stored_before_its_account_and_a_restart_are_loaded_with_the_account() {
    CLOCK_C.store(at("2026-11-10T12:00:00Z"), Ordering::Relaxed);
    let now = clock_c();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    add_admin(&store).await;
    let e = engine(store.clone(), clock_c).await;
    // Events of a WABA whose account has not arrived yet.
    ingest(&e, &[&inbound("in1", now - 3_600_000, "W7")]).await;
    drop(e);
    let e = engine(store.clone(), clock_c).await;
    assert_eq!(
        e.working_set.size(),
        (0, 0, 0),
        "no account, nothing loaded"
    );
    ingest(&e, &[&account("W7")]).await;
    assert_eq!(e.working_set.size(), (1, 0, 1));
    let text = request("W7", "15550009999", "5511987654321", "text");
    let open = answer(&e, &text, now, Source::Auto).await;
    assert_eq!(open["allowed"], true, "{open}");
    assert_eq!(open, answer(&e, &text, now, Source::Store).await);
}

static CLOCK_D: AtomicI64 = AtomicI64::new(0);
fn clock_d() -> UnixMs {
    CLOCK_D.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_number_that_moved_between_wabas_is_checked_with_both_accounts() {
    // In the conversation era, where a message opens a conversation for the (number, user).
    CLOCK_D.store(at("2024-05-10T12:00:00Z"), Ordering::Relaxed);
    let now = clock_d();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    add_admin(&store).await;
    let e = engine(store.clone(), clock_d).await;
    // The number sent a marketing template for W5 an hour ago; it now sends for W6.
    let sent = wabill_formats::time::format_instant(now - 3_600_000);
    let delivered = wabill_formats::time::format_instant(now - 3_590_000);
    let out = format!(
        r#"{{"kind":"outbound","id":"o1","at":"{sent}","waba":"W5","phone":"15550009999","user":"5511987654321","type":"template","category":"marketing"}}"#
    );
    let status =
        format!(r#"{{"kind":"status","id":"o1","at":"{delivered}","status":"delivered"}}"#);
    ingest(&e, &[&account("W5"), &account("W6")]).await;
    ingest(&e, &[&out, &status]).await;
    e.settle().await.unwrap();
    let again = request("W6", "15550009999", "5511987654321", "marketing");
    let from_store = answer(&e, &again, now, Source::Store).await;
    let before = e.metrics.checks();
    let from_memory = answer(&e, &again, now, Source::Auto).await;
    assert_eq!(e.metrics.checks().0, before.0 + 1);
    assert_eq!(from_memory, from_store);
}
