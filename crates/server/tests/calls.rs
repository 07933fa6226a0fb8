//! Calls through the service (issue 15): call lines by `POST /v1/events` and Meta's calls
//! webhooks by `POST /webhooks/whatsapp`, shuffled and repeated among a month's messages, are
//! stored, rated and listed exactly as `wabill rate` rates the same lines; on SQLite and on
//! PostgreSQL (required when CI is set).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;
use wabill_engine::meta;
use wabill_rating::calls::{rate_calls, window_openers, CALL_RATES_HEADER};
use wabill_rating::{rate, RateOptions, Tariff};
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const SECRET: &[u8] = b"app-secret-1";
const ADMIN: &str = "admin-key-123";

mod support;

struct Service {
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

async fn service(store: Arc<dyn Store>, dir: tempfile::TempDir, tariff: Tariff) -> Service {
    if store.key_by_hash(&hash_key(ADMIN)).await.unwrap().is_none() {
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
    let engine = Engine::new(store, Arc::new(tariff), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(engine, vec![SECRET.to_vec()], "tok".into()));
    Service { state, _dir: dir }
}

async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite").to_str().unwrap())
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// A PostgreSQL store in a fresh schema, or None (with a loud note) outside CI when the server
/// cannot be reached.
/// The schema is dropped with the guard, at the test's end.
async fn postgres_store(test: &str) -> Option<(Arc<dyn Store>, support::PgSchema)> {
    let schema = support::PgSchema::new("cal", test).await;
    let url = schema.url.clone();
    match wabill_store::PgStore::open_in_schema(&url, &schema.name).await {
        Ok(store) => Some((Arc::new(store), schema)),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI and unreachable at {url}: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED postgres half of {test}: {e}");
            None
        }
    }
}

async fn call(s: &Service, req: Request<Body>) -> (StatusCode, String) {
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

fn post_events(key: &str, body: String) -> Request<Body> {
    Request::post("/v1/events")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap()
}

fn signed_webhook(body: &str) -> Request<Body> {
    Request::post("/webhooks/whatsapp")
        .header("x-hub-signature-256", meta::sign(SECRET, body.as_bytes()))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(key: &str, uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

/// Every charge line of `extra` (`&unit=call`, ...), all pages, normalised through serde_json.
async fn all_charges(s: &Service, key: &str, extra: &str) -> String {
    let mut out = String::new();
    let mut after = String::new();
    loop {
        let (status, body) = call(s, get(key, &format!("/v1/charges?limit=7{extra}{after}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        for c in v["charges"].as_array().unwrap() {
            out.push_str(&c.to_string());
            out.push('\n');
        }
        match v["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => return out,
        }
    }
}

fn normalised(jsonl: &[u8]) -> String {
    String::from_utf8(jsonl.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string() + "\n")
        .collect()
}

/// A small deterministic generator (xorshift), so that a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A test-only calling card (no public source gives Meta's, decisions.md D124): every market
/// of the table in each currency, in two tiers whose first ends at 20 minutes, so that a
/// month's calls cross it. Rates are made up, different per market.
fn call_card(tariff: &Tariff, currencies: &[String]) -> String {
    let mut csv = format!("{CALL_RATES_HEADER}\n");
    for cur in currencies {
        for (i, m) in tariff.markets.market_names().enumerate() {
            let first = 100 + i as u64 * 7;
            csv.push_str(&format!(
                "2025-01-01,{cur},{m},0,20,0.{first:06},test-only\n2025-01-01,{cur},{m},21,,0.{:06},test-only\n",
                first - 40
            ));
        }
    }
    csv
}

/// A month of messages (wabill_gen, across a month boundary) and calls among the same WABAs,
/// phones and users: as wabill `call` lines and as Meta's `connect` / `terminate` webhooks.
/// Returns (every line as `wabill rate` reads it, the lines for POST /v1/events, the webhook
/// envelopes, the calling card).
fn stream(seed: u64) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let cfg = wabill_gen::GenConfig {
        seed,
        events: 1500,
        wabas: 2,
        users: 60,
        start: "2025-10-20".into(),
        days: 20,
        ..Default::default()
    };
    let mut out = Vec::new();
    wabill_gen::generate(&cfg, &mut out).unwrap();
    let messages: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut currencies = Vec::new();
    // (waba, phone, user) of the stream's outbound messages: who the calls are between.
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for l in &messages {
        let v: Value = serde_json::from_str(l).unwrap();
        match v["kind"].as_str() {
            Some("account") => currencies.push(v["currency"].as_str().unwrap().to_string()),
            Some("outbound") => {
                let p = (
                    v["waba"].as_str().unwrap().to_string(),
                    v["phone"].as_str().unwrap().to_string(),
                    v["user"].as_str().unwrap_or_default().to_string(),
                );
                if !p.2.is_empty() && !pairs.contains(&p) {
                    pairs.push(p);
                }
            }
            _ => {}
        }
    }
    currencies.sort();
    currencies.dedup();
    assert!(pairs.len() > 10);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let start0: i64 = 1_760_918_400; // 2025-10-20T00:00:00Z
    let mut events = Vec::new();
    let mut webhooks = Vec::new();
    for n in 0..160 {
        let (waba, phone, user) = pairs[rng.below(pairs.len() as u64) as usize].clone();
        let id = format!("wacid.{seed}.{n}");
        let start = start0 + rng.below(20 * 86_400) as i64;
        let business = rng.below(3) > 0;
        let outcome = match rng.below(10) {
            0 => "failed",
            1 => "rejected",
            2 => "unanswered",
            _ => "completed",
        };
        let duration = if outcome == "completed" {
            1 + rng.below(900)
        } else {
            0
        };
        let end = start + duration as i64;
        let direction = if business {
            "business_initiated"
        } else {
            "user_initiated"
        };
        match rng.below(5) {
            // A wabill call line, with an agent now and then.
            0 | 1 => {
                let agent = if rng.below(2) == 0 {
                    format!(r#","agent":"agent-{}""#, rng.below(4))
                } else {
                    String::new()
                };
                let times = if outcome == "completed" {
                    format!(r#","end":{end},"duration":{duration}"#)
                } else {
                    String::new()
                };
                events.push(format!(
                    r#"{{"kind":"call","id":"{id}","waba":"{waba}","phone":"{phone}","user":"{user}","direction":"{direction}","start":{start}{times},"outcome":"{outcome}"{agent}}}"#
                ));
            }
            // Meta's connect and terminate (sometimes the connect alone: not over yet).
            k => {
                let (from, to) = if business {
                    (&phone, &user)
                } else {
                    (&user, &phone)
                };
                let dir = direction.to_uppercase();
                let envelope = |item: String| {
                    format!(
                        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"field":"calls","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"{phone}","phone_number_id":"1065"}},"calls":[{item}]}}}}]}}]}}"#
                    )
                };
                webhooks.push(envelope(format!(
                    r#"{{"id":"{id}","to":"{to}","from":"{from}","event":"connect","timestamp":"{start}","direction":"{dir}","session":{{"sdp_type":"offer","sdp":"v=0"}}}}"#
                )));
                if k != 4 {
                    let times = if outcome == "completed" {
                        format!(
                            r#","start_time":"{start}","end_time":"{end}","duration":{duration}"#
                        )
                    } else {
                        String::new()
                    };
                    webhooks.push(envelope(format!(
                        r#"{{"id":"{id}","to":"{to}","from":"{from}","event":"terminate","timestamp":"{}","direction":"{dir}","status":"{}"{times},"biz_opaque_callback_data":"x"}}"#,
                        end + 2,
                        outcome.to_uppercase()
                    )));
                }
            }
        }
    }
    let tariff = Tariff::bundled();
    let card = call_card(&tariff, &currencies);
    let mut posted = messages.clone();
    posted.extend(events);
    let mut all = posted.clone();
    all.extend(webhooks.iter().cloned());
    (all, posted, webhooks, card)
}

/// What `wabill rate` gives for the lines (rate_cmd's path: the windows calls open join the
/// message walk; calls are rated with every account of the input): (message lines, call
/// lines), as JSON lines.
fn batch(tariff: &Tariff, lines: &[String]) -> (String, String) {
    let mut parsed = wabill_formats::Parsed::default();
    for (i, l) in lines.iter().enumerate() {
        wabill_formats::parse_line(l, i as u64 + 1, &mut parsed).unwrap();
    }
    let mut events = parsed.events.clone();
    events.extend(window_openers(&parsed.calls));
    let rated = rate(tariff, &[], &events, RateOptions::default());
    assert!(rated.errors.is_empty(), "{:?}", rated.errors);
    let accounts: Vec<&wabill_rating::Account<'_>> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            wabill_rating::Event::Account(a) => Some(&**a),
            _ => None,
        })
        .collect();
    let calls = rate_calls(
        &tariff.markets,
        &tariff.call_rates,
        &accounts,
        &parsed.calls,
    );
    assert!(calls.errors.is_empty(), "{:?}", calls.errors);
    let (mut m, mut c) = (Vec::new(), Vec::new());
    for x in &rated.charges {
        wabill_formats::charges::write_json(&mut m, x, tariff);
    }
    for x in &calls.charges {
        wabill_formats::calls::write_call_json(&mut c, x, tariff);
    }
    (normalised(&m), normalised(&c))
}

/// Sends the lines and envelopes in a seeded random order, in batches of random size, some
/// repeated, re-rating now and then.
async fn send_shuffled(s: &Service, posted: &[String], webhooks: &[String], seed: u64) {
    enum Item<'a> {
        Line(&'a str),
        Webhook(&'a str),
    }
    let mut v: Vec<Item> = posted
        .iter()
        .map(|l| Item::Line(l))
        .chain(webhooks.iter().map(|w| Item::Webhook(w)))
        .collect();
    let mut rng = Rng(seed | 1);
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let repeats: Vec<Item> = v
        .iter()
        .step_by(9)
        .map(|x| match x {
            Item::Line(l) => Item::Line(l),
            Item::Webhook(w) => Item::Webhook(w),
        })
        .collect();
    v.extend(repeats);
    let mut lines: Vec<&str> = Vec::new();
    for (k, item) in v.iter().enumerate() {
        match item {
            Item::Line(l) => lines.push(l),
            Item::Webhook(w) => {
                let (status, body) = call(s, signed_webhook(w)).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
        if lines.len() > rng.below(300) as usize || k + 1 == v.len() {
            let (status, body) = call(s, post_events(ADMIN, lines.join("\n"))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let r: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(r["rejected"], 0, "{body}");
            lines.clear();
            if rng.below(3) == 0 {
                s.state.engine.rerate_dirty().await.unwrap();
            }
        }
    }
}

/// THE test of issue 15 in the service: the stored call charges (and the message charges,
/// which the windows of calls change) equal `wabill rate`'s of the same lines.
async fn calls_converge(store: Arc<dyn Store>, dir: tempfile::TempDir, seed: u64) {
    let (all, posted, webhooks, card) = stream(seed);
    let tariff = Tariff::bundled()
        .with_call_rates("test/call_rates.csv", &card)
        .unwrap();
    let (messages, calls) = batch(&tariff, &all);
    assert!(calls.lines().count() > 100, "{calls}");
    let charged = calls
        .lines()
        .filter(|l| l.contains(r#""type":"regular""#))
        .count();
    assert!(charged > 30, "charged calls: {charged}");
    assert!(
        calls
            .lines()
            .any(|l| l.contains(r#""type":"unterminated""#)),
        "a connect alone"
    );
    assert!(
        calls
            .lines()
            .any(|l| l.contains(r#""tier":"21:MAX""#) || l.contains(r#""tier":"21:""#)),
        "some calls reach the second tier: {calls}"
    );
    // Without the windows calls open, the messages would be charged otherwise: the test sees it.
    let mut alone = wabill_formats::Parsed::default();
    for (i, l) in all.iter().enumerate() {
        wabill_formats::parse_line(l, i as u64 + 1, &mut alone).unwrap();
    }
    let mut m = Vec::new();
    for x in &rate(&tariff, &[], &alone.events, RateOptions::default()).charges {
        wabill_formats::charges::write_json(&mut m, x, &tariff);
    }
    assert_ne!(
        normalised(&m),
        messages,
        "calls open windows in this stream"
    );

    let s = service(store, dir, tariff).await;
    send_shuffled(&s, &posted, &webhooks, seed).await;
    s.state.engine.settle().await.unwrap();
    let got_calls = all_charges(&s, ADMIN, "&unit=call").await;
    assert_eq!(got_calls.lines().count(), calls.lines().count());
    assert!(
        got_calls == calls,
        "stored call charges differ from wabill rate"
    );
    let got_messages = all_charges(&s, ADMIN, "").await;
    assert!(
        got_messages == messages,
        "stored message charges differ from wabill rate"
    );
    let (status, body) = call(&s, get(ADMIN, "/v1/unratable")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"unratable":[]}"#);

    usage_matches_the_lines(&s, &calls).await;

    // The CSV call table is `wabill rate --format csv`'s.
    let (status, csv) = call(
        &s,
        get(ADMIN, "/v1/charges?unit=call&format=csv&limit=10000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv.lines().next().unwrap(),
        wabill_formats::calls::call_csv_header().trim_end()
    );
    assert_eq!(csv.lines().count(), calls.lines().count() + 1);
    // Without a limit, the download is every call line, the same bytes (decisions.md D95).
    let (status, all) = call(&s, get(ADMIN, "/v1/charges?unit=call&format=csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all, csv);
}

/// (WABA, month, direction, country, phone) of a call usage point.
type PointKey = (String, String, String, String, String);

/// `GET /v1/usage?unit=call` (Meta's call_analytics shape): per (month, WABA, direction,
/// country, phone), the answered calls, the exact sum of their amounts and their average
/// duration, all derived here from the call lines.
async fn usage_matches_the_lines(s: &Service, calls: &str) {
    use std::collections::BTreeMap;
    let lines: Vec<Value> = calls
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut expected: BTreeMap<PointKey, (u64, u64, wabill_rating::Decimal)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["seconds"].as_u64().unwrap() > 0) {
        let month = l["start"].as_str().unwrap()[..7].to_string();
        let key = (
            l["waba"].as_str().unwrap().to_string(),
            month,
            l["direction"].as_str().unwrap().to_uppercase(),
            l["country"].as_str().unwrap_or_default().to_string(),
            l["phone"].as_str().unwrap().to_string(),
        );
        let e = expected.entry(key).or_default();
        e.0 += 1;
        e.1 += l["seconds"].as_u64().unwrap();
        e.2 += l["amount"]
            .as_str()
            .unwrap()
            .parse::<wabill_rating::Decimal>()
            .unwrap();
    }
    assert!(expected.len() > 4);
    let wabas: std::collections::BTreeSet<String> = expected.keys().map(|k| k.0.clone()).collect();
    let mut got = BTreeMap::new();
    for waba in wabas {
        let uri = format!(
            "/v1/usage?unit=call&waba={waba}&start=2025-10-01T00:00:00Z&end=2025-12-01T00:00:00Z&granularity=MONTHLY&dimensions=DIRECTION,COUNTRY,PHONE"
        );
        let (status, body) = call(s, get(ADMIN, &uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        for d in v["data"].as_array().unwrap() {
            for p in d["data_points"].as_array().unwrap() {
                let start = p["start"].as_i64().unwrap();
                let month = if start < 1_761_955_200 {
                    "2025-10"
                } else {
                    "2025-11"
                };
                let key = (
                    waba.clone(),
                    month.to_string(),
                    p["direction"].as_str().unwrap().to_string(),
                    p["country"].as_str().unwrap_or_default().to_string(),
                    p["phone_number"].as_str().unwrap().to_string(),
                );
                got.insert(
                    key,
                    (
                        p["count"].as_u64().unwrap(),
                        p["average_duration"].as_u64().unwrap(),
                        p["cost"]
                            .as_str()
                            .unwrap()
                            .parse::<wabill_rating::Decimal>()
                            .unwrap(),
                    ),
                );
            }
        }
    }
    let expected: BTreeMap<_, _> = expected
        .into_iter()
        .map(|(k, (n, secs, cost))| (k, (n, (2 * secs + n) / (2 * n), cost)))
        .collect();
    assert_eq!(got, expected);
    let (status, _) = call(
        s,
        get(
            ADMIN,
            "/v1/usage?unit=call&waba=W1&start=0&end=1&granularity=DAILY&dimensions=TIER",
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "TIER is not a call dimension"
    );
}

#[tokio::test]
async fn calls_through_the_service_equal_wabill_rate_on_sqlite() {
    for seed in [1, 2] {
        let (store, dir) = sqlite_store().await;
        calls_converge(store, dir, seed).await;
    }
}

#[tokio::test]
async fn calls_through_the_service_equal_wabill_rate_on_postgres() {
    if let Some((store, _schema)) = postgres_store("calls_converge").await {
        calls_converge(store, tempfile::tempdir().unwrap(), 3).await;
    }
}

const ACCOUNT: &str =
    r#"{"kind":"account","waba":"W1","portfolio":"B1","timezone":"UTC","currency":"USD"}"#;
const ACCOUNT2: &str =
    r#"{"kind":"account","waba":"W2","portfolio":"B2","timezone":"UTC","currency":"USD"}"#;

fn call_line(id: &str, waba: &str, user: &str, duration: u64) -> String {
    format!(
        r#"{{"kind":"call","id":"{id}","waba":"{waba}","phone":"15550001111","user":"{user}","direction":"business_initiated","start":"2026-05-04T10:00:00Z","duration":{duration},"outcome":"completed"}}"#
    )
}

/// A call to be charged that cannot be priced (here: no calling rate for Mexico) is no zero:
/// its line has no amount and the error, and `GET /v1/unratable` names currency, market and
/// date.
/// A repeated call line is a duplicate; another line under the same key, a conflict by index.
#[tokio::test]
async fn a_call_without_a_rate_is_listed_unpriced_not_charged_zero() {
    let (store, dir) = sqlite_store().await;
    let brazil_only = format!("{CALL_RATES_HEADER}\n2026-04-01,USD,Brazil,,,0.0100,test-only\n");
    let tariff = Tariff::bundled()
        .with_call_rates("t", &brazil_only)
        .unwrap();
    let s = service(store, dir, tariff).await;
    let body = [
        ACCOUNT.to_string(),
        call_line("wacid.br", "W1", "5511988887777", 56),
        call_line("wacid.mx", "W1", "5215512345678", 56),
        call_line("wacid.mx", "W1", "5215512345678", 56),
        call_line("wacid.mx", "W1", "5215512345678", 57),
    ]
    .join("\n");
    let (status, text) = call(&s, post_events(ADMIN, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["duplicates"].as_u64()),
        (Some(3), Some(1)),
        "{text}"
    );
    assert_eq!(r["rejected"], 1, "{text}");
    assert_eq!(r["errors"][0]["index"], 4, "{text}");
    s.state.engine.settle().await.unwrap();

    let lines: Vec<Value> = all_charges(&s, ADMIN, "&unit=call")
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let br = lines.iter().find(|l| l["id"] == "wacid.br").unwrap();
    assert_eq!(
        (br["amount"].as_str(), br["pulses"].as_u64()),
        (Some("0.01"), Some(10))
    );
    assert!(br.get("error").is_none());
    let mx = lines.iter().find(|l| l["id"] == "wacid.mx").unwrap();
    assert_eq!(mx["amount"], Value::Null, "{mx}");
    assert_eq!(mx["billable"], false);
    assert_eq!(mx["market"], "Mexico");
    let why = mx["error"].as_str().unwrap();
    let (status, body) = call(&s, get(ADMIN, "/v1/unratable")).await;
    assert_eq!(status, StatusCode::OK);
    let u: Value = serde_json::from_str(&body).unwrap();
    let listed = u["unratable"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["code"], "missing_rate");
    assert_eq!(listed[0]["month"], "2026-05");
    let error = listed[0]["error"].as_str().unwrap();
    assert_eq!(error, why);
    for part in ["wacid.mx", "USD", "'Mexico'", "2026-05-04"] {
        assert!(error.contains(part), "{error}");
    }
}

/// A key scoped to W1 sends and reads W1's calls only: W2's are refused by index and never
/// listed to it.
#[tokio::test]
async fn a_tenant_key_sends_and_sees_its_own_calls_only() {
    let (store, dir) = sqlite_store().await;
    let card = format!("{CALL_RATES_HEADER}\n2026-04-01,USD,Brazil,,,0.0100,test-only\n");
    let s = service(
        store.clone(),
        dir,
        Tariff::bundled().with_call_rates("t", &card).unwrap(),
    )
    .await;
    store
        .create_key(&NewApiKey {
            name: "w1".into(),
            role: Role::Sender,
            tenant_wabas: vec!["W1".into()],
            key_hash: hash_key("w1-key"),
        })
        .await
        .unwrap();
    let (status, _) = call(&s, post_events(ADMIN, format!("{ACCOUNT}\n{ACCOUNT2}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = call(
        &s,
        post_events(
            "w1-key",
            [
                call_line("wacid.1", "W1", "5511988887777", 30),
                call_line("wacid.2", "W2", "5511988887777", 30),
            ]
            .join("\n"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{text}"
    );
    assert_eq!(
        (
            r["errors"][0]["index"].as_u64(),
            r["errors"][0]["field"].as_str()
        ),
        (Some(1), Some("waba"))
    );
    let (status, _) = call(
        &s,
        post_events(ADMIN, call_line("wacid.3", "W2", "5511988887777", 30)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.state.engine.settle().await.unwrap();
    let mine = all_charges(&s, "w1-key", "&unit=call").await;
    assert_eq!(mine.lines().count(), 1, "{mine}");
    assert!(mine.contains("wacid.1"));
    let of_w2 = all_charges(&s, "w1-key", "&unit=call&waba=W2").await;
    assert!(of_w2.is_empty());
    assert_eq!(
        all_charges(&s, ADMIN, "&unit=call").await.lines().count(),
        2
    );
    let (status, _) = call(&s, get(ADMIN, "/v1/charges?unit=minutes")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&s, get(ADMIN, "/v1/charges?unit=call&after=12.zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Any value of the cursor's shape is a position: hex of a plain id too.
    let (status, body) = call(
        &s,
        get(
            ADMIN,
            &format!("/v1/charges?unit=call&after=0.{}", hex_of("wacid.1")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = v["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["wacid.1", "wacid.3"],
        "start 0 is before every call"
    );
}

/// Call events stored but never rated (a crash between the acknowledgement and the re-rating)
/// are rated after a start: the store remembers which are not.
#[tokio::test]
async fn calls_stored_before_a_crash_are_rated_after_the_start() {
    let (store, dir) = sqlite_store().await;
    let card = format!("{CALL_RATES_HEADER}\n2026-04-01,USD,Brazil,,,0.0100,test-only\n");
    let tariff = || Tariff::bundled().with_call_rates("t", &card).unwrap();
    // The database's directory outlives both engines.
    let _dir = dir;
    let s = service(store.clone(), tempfile::tempdir().unwrap(), tariff()).await;
    let (status, _) = call(
        &s,
        post_events(
            ADMIN,
            [
                ACCOUNT.to_string(),
                call_line("wacid.1", "W1", "5511988887777", 61),
            ]
            .join("\n"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.state.engine.settle().await.unwrap();
    // Stored, not rated: then the engine is gone.
    let (status, _) = call(
        &s,
        post_events(ADMIN, call_line("wacid.2", "W1", "5511988887777", 6)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    drop(s);
    let s2 = service(store, tempfile::tempdir().unwrap(), tariff()).await;
    s2.state.engine.settle().await.unwrap();
    let got = all_charges(&s2, ADMIN, "&unit=call").await;
    assert_eq!(got.lines().count(), 2, "{got}");
    assert!(
        got.contains(r#""id":"wacid.2""#) && got.contains(r#""amount":"0.001""#),
        "{got}"
    );
    assert!(got.contains(r#""pulses":11"#), "61 s is 11 pulses: {got}");
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Calls count toward a request's event limit: an envelope of more calls than the limit is
/// refused whole, nothing stored.
#[tokio::test]
async fn calls_count_toward_the_event_limit() {
    let (store, dir) = sqlite_store().await;
    let s = service(store, dir, Tariff::bundled()).await;
    let items: Vec<String> = (0..=api::MAX_EVENTS_PER_REQUEST)
        .map(|n| {
            format!(
                r#"{{"id":"wacid.{n}","to":"15550001111","from":"5511988887777","event":"connect","timestamp":"1793700000","direction":"USER_INITIATED"}}"#
            )
        })
        .collect();
    let envelope = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"calls","value":{{"metadata":{{"display_phone_number":"15550001111"}},"calls":[{}]}}}}]}}]}}"#,
        items.join(",")
    );
    let (status, body) = call(&s, post_events(ADMIN, envelope)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("too_many_events"), "{body}");
    s.state.engine.settle().await.unwrap();
    assert!(all_charges(&s, ADMIN, "&unit=call").await.is_empty());
}

/// `POST /v1/estimate` with calls: the answer is the estimate's (calls priced by the service's
/// calling card); without a card, `422 missing_rate` naming currency, market and date;
/// `GET /v1/estimate` names the calling cards' currencies.
#[tokio::test]
async fn the_calculator_prices_calls_with_the_services_calling_card() {
    let card = format!("{CALL_RATES_HEADER}\n2026-04-01,USD,Brazil,,,0.0100,test-only\n");
    let tariff = || Tariff::bundled().with_call_rates("t", &card).unwrap();
    let body = r#"{"month":"2026-11","primary_country":"BR","call_minutes":600,"business_initiated_share":"50%","average_call_seconds":60,"traffic":[{"market":"Brazil","category":"marketing","messages":10}]}"#;
    let post = || {
        Request::post("/v1/estimate")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let (store, dir) = sqlite_store().await;
    let s = service(store, dir, tariff()).await;
    let (status, answer) = call(&s, post()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let request = wabill_estimate::parse_request(&serde_json::from_str(body).unwrap()).unwrap();
    assert_eq!(
        answer,
        wabill_estimate::answer(&tariff(), &request).unwrap()
    );
    let v: Value = serde_json::from_str(&answer).unwrap();
    // 600 calls of a minute, 300 business-initiated, at 0.01 a minute.
    assert_eq!(v["estimate"]["calls"]["business_initiated"], 300);
    assert_eq!(v["estimate"]["calls"]["amount"], "3");
    let (status, options) = call(
        &s,
        Request::get("/v1/estimate").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let o: Value = serde_json::from_str(&options).unwrap();
    assert_eq!(o["call_currencies"], serde_json::json!(["USD"]));

    let (store, dir) = sqlite_store().await;
    let s = service(store, dir, Tariff::bundled()).await;
    let (status, answer) = call(&s, post()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    for part in ["missing_rate", "USD", "Brazil", "2026-11-01"] {
        assert!(answer.contains(part), "{answer}");
    }
}
