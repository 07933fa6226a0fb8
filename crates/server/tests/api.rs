//! The service over real HTTP semantics (axum's router, called in process) and a real store:
//! SQLite in a temp dir, and PostgreSQL on 127.0.0.1:5432 (required when CI is set).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use wabill_rating::{rate, RateOptions, Tariff};
use wabill_server::{api, hash_key, meta, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const SECRET: &[u8] = b"app-secret-1";

struct Service {
    state: Arc<AppState>,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn service_on(store: Box<dyn Store>, dir: tempfile::TempDir) -> Service {
    let store: Arc<dyn Store> = Arc::from(store);
    let admin = "admin-key-123".to_string();
    store
        .create_key(&NewApiKey {
            name: "admin".into(),
            role: Role::Admin,
            tenant_wabas: vec![],
            key_hash: hash_key(&admin),
        })
        .await
        .unwrap();
    let engine = Engine::new(store, Arc::new(Tariff::bundled()), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState {
        engine,
        app_secrets: vec![b"old".to_vec(), SECRET.to_vec()],
        verify_token: "tok".into(),
    });
    Service {
        state,
        admin,
        _dir: dir,
    }
}

async fn sqlite_service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite").to_str().unwrap())
        .await
        .unwrap();
    service_on(Box::new(store), dir).await
}

/// A PostgreSQL-backed service in a fresh schema, or None (with a loud note) outside CI when
/// the server cannot be reached.
async fn postgres_service(test: &str) -> Option<Service> {
    let url = std::env::var("WABILL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("srv_{test}_{}", std::process::id());
    match wabill_store::PgStore::open_in_schema(&url, &schema).await {
        Ok(store) => Some(service_on(Box::new(store), tempfile::tempdir().unwrap()).await),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI and unreachable at {url}: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED postgres half of {test}: {e}");
            None
        }
    }
}

async fn call(s: &Service, req: Request<Body>) -> (StatusCode, String, axum::http::HeaderMap) {
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string(), headers)
}

fn post_events(key: &str, body: String) -> Request<Body> {
    Request::post("/v1/events")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap()
}

/// Every charge, all pages, as JSON lines.
async fn all_charges(s: &Service, key: &str, extra: &str) -> String {
    let mut out = String::new();
    let mut after = String::new();
    loop {
        let uri = format!("/v1/charges?limit=97{extra}{after}");
        let (status, body, _) = call(
            s,
            Request::get(uri)
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
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

fn batch_rating(lines: &str) -> String {
    let tariff = Tariff::bundled();
    let mut parsed = wabill_formats::Parsed::default();
    for (i, l) in lines.lines().enumerate() {
        wabill_formats::parse_line(l, i as u64 + 1, &mut parsed).unwrap();
    }
    let rated = rate(&tariff, &[], &parsed.events, RateOptions::default());
    assert!(rated.errors.is_empty(), "{:?}", rated.errors);
    let mut out = Vec::new();
    for c in &rated.charges {
        wabill_formats::charges::write_json(&mut out, c, &tariff);
    }
    // Normalise through serde_json like the API's pages are.
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap()
                .to_string()
                + "\n"
        })
        .collect()
}

/// A generated stream across a month boundary of the per-message era before 2026-10-01, where
/// an open service window makes utility templates free: so windows still open when a month
/// starts change charges, and re-rating must see them.
fn generated(seed: u64, events: u64) -> String {
    let cfg = wabill_gen::GenConfig {
        seed,
        events,
        wabas: 4,
        users: 200,
        start: "2025-10-20".into(),
        days: 20,
        ..Default::default()
    };
    let mut out = Vec::new();
    wabill_gen::generate(&cfg, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Sends the lines in a seeded random order, in batches of random size, with some repeated.
async fn send_shuffled(s: &Service, lines: &str, seed: u64) {
    let mut v: Vec<&str> = lines.lines().collect();
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    let repeats: Vec<&str> = v.iter().step_by(11).copied().collect();
    v.extend(repeats);
    let mut i = 0;
    while i < v.len() {
        let n = 1 + (next() % 400) as usize;
        let chunk = v[i..(i + n).min(v.len())].join("\n");
        let (status, body, _) = call(s, post_events(&s.admin, chunk)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let r: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["rejected"], 0, "{body}");
        if next() % 3 == 0 {
            s.state.engine.rerate_dirty().await.unwrap();
        }
        i += n;
    }
}

async fn converges(s: Service, seed: u64) {
    let lines = generated(seed, 4000);
    let expected = batch_rating(&lines);
    assert!(expected.lines().count() > 500);
    send_shuffled(&s, &lines, seed).await;
    s.state.engine.settle().await.unwrap();
    let got = all_charges(&s, &s.admin, "").await;
    assert_eq!(got.lines().count(), expected.lines().count());
    assert!(
        got == expected,
        "stored charges differ from the batch rating"
    );
}

#[tokio::test]
async fn stored_charges_converge_to_the_batch_result_on_sqlite() {
    for seed in [1, 2] {
        converges(sqlite_service().await, seed).await;
    }
}

#[tokio::test]
async fn stored_charges_converge_to_the_batch_result_on_postgres() {
    if let Some(s) = postgres_service("converge").await {
        converges(s, 3).await;
    }
}

const ACCOUNT: &str = r#"{"kind":"account","waba":"102290129340398","timezone":"UTC","currency":"USD","primary_country":"US"}"#;

#[tokio::test]
async fn meta_webhooks_are_verified_stored_and_rated() {
    let s = sqlite_service().await;
    // Handshake.
    let (status, body, _) = call(
        &s,
        Request::get(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=8841",
        )
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "8841"));
    let (status, _, _) = call(
        &s,
        Request::get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=no&hub.challenge=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, _) = call(&s, post_events(&s.admin, ACCOUNT.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    let outbound = r#"{"kind":"outbound","id":"wamid.OUT1","at":"2025-11-03T10:00:30Z","waba":"102290129340398","phone":"15550001111","user":"5511988887777","type":"text"}"#;
    call(&s, post_events(&s.admin, outbound.to_string())).await;

    let inbound = include_bytes!("fixtures/webhook_inbound.json").to_vec();
    let status_hook = br#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"100000000000001"},"statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1762164032","recipient_id":"5511988887777","pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"service"}}]}}]}]}"#.to_vec();
    for (body, sig, expect) in [
        (
            inbound.clone(),
            meta::sign(b"wrong", &inbound),
            StatusCode::UNAUTHORIZED,
        ),
        (
            inbound.clone(),
            meta::sign(SECRET, &inbound),
            StatusCode::OK,
        ),
        (
            status_hook.clone(),
            meta::sign(b"old", &status_hook),
            StatusCode::OK,
        ),
    ] {
        let req = Request::post("/webhooks/whatsapp")
            .header("x-hub-signature-256", sig)
            .body(Body::from(body))
            .unwrap();
        let (status, text, _) = call(&s, req).await;
        assert_eq!(status, expect, "{text}");
    }
    let req = Request::post("/webhooks/whatsapp")
        .body(Body::from(inbound.clone()))
        .unwrap();
    assert_eq!(
        call(&s, req).await.0,
        StatusCode::UNAUTHORIZED,
        "unsigned posts are refused"
    );

    s.state.engine.settle().await.unwrap();
    let charges = all_charges(&s, &s.admin, "").await;
    let c: serde_json::Value = serde_json::from_str(charges.lines().next().unwrap()).unwrap();
    // The user wrote at 10:00:00 (webhook), the reply went at 10:00:30 and was delivered.
    assert_eq!(c["id"], "wamid.OUT1");
    assert_eq!(c["type"], "free_customer_service");
    assert_eq!(c["billed_at"], "2025-11-03T10:00:32Z");
}

#[tokio::test]
async fn ingest_is_idempotent_and_reports_each_bad_line() {
    let s = sqlite_service().await;
    let good = r#"{"kind":"inbound","id":"i1","at":"2025-11-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777"}"#;
    let body = format!(
        "{ACCOUNT}\n{good}\n{{\"kind\":\"inbound\",\"id\":\"i2\",\"at\":\"later\"}}\nnot json\n"
    );
    let (status, text, _) = call(&s, post_events(&s.admin, body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{text}"
    );
    assert_eq!(r["errors"][0]["index"], 2);
    assert_eq!(r["errors"][0]["field"], "at");
    assert_eq!(r["errors"][1]["index"], 3);
    let (_, text, _) = call(&s, post_events(&s.admin, body)).await;
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{text}"
    );
    // Same id, different content: refused with its index, nothing else lost.
    let changed = good.replace("10:00:00", "11:00:00");
    let (_, text, _) = call(&s, post_events(&s.admin, format!("[{changed}]"))).await;
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["errors"][0]["index"], 0, "{text}");
    assert_eq!(r["stored"], 0);
    // Limits.
    let too_many = vec![good; api::MAX_EVENTS_PER_REQUEST + 1].join("\n");
    assert_eq!(
        call(&s, post_events(&s.admin, too_many)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        call(&s, post_events("nope", good.into())).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_tenant_key_never_sees_or_writes_another_tenants_wabas() {
    let s = sqlite_service().await;
    let lines = generated(5, 1500);
    call(&s, post_events(&s.admin, lines.clone())).await;
    s.state.engine.settle().await.unwrap();
    let store = s.state.engine.store().clone();
    for (key, role) in [("reader-w1", Role::Reader), ("sender-w1", Role::Sender)] {
        store
            .create_key(&NewApiKey {
                name: key.into(),
                role,
                tenant_wabas: vec!["W1".into()],
                key_hash: hash_key(key),
            })
            .await
            .unwrap();
        let mine = all_charges(&s, key, "").await;
        assert!(!mine.is_empty());
        assert!(
            mine.lines().all(|l| l.contains(r#""waba":"W1""#)),
            "{key} saw another WABA"
        );
        let asked = all_charges(&s, key, "&waba=W2").await;
        assert!(asked.is_empty(), "{key} read W2 by asking for it");
        let (status, _, _) = call(
            &s,
            Request::get("/v1/unratable")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let w2 = r#"{"kind":"inbound","id":"x9","at":"2026-10-03T10:00:00Z","waba":"W2","phone":"15550001111","user":"5511988887777"}"#;
    let (_, text, _) = call(&s, post_events("sender-w1", w2.into())).await;
    assert!(text.contains("may not send events for WABA 'W2'"), "{text}");
    assert_eq!(
        call(&s, post_events("reader-w1", w2.into())).await.0,
        StatusCode::FORBIDDEN
    );
    let all = all_charges(&s, &s.admin, "").await;
    assert!(all.lines().any(|l| l.contains(r#""waba":"W2""#)));
}

#[tokio::test]
async fn charges_export_as_csv_and_probes_answer() {
    let s = sqlite_service().await;
    call(&s, post_events(&s.admin, generated(9, 800))).await;
    s.state.engine.settle().await.unwrap();
    let (status, csv, _) = call(
        &s,
        Request::get("/v1/charges?format=csv&limit=10000")
            .header("authorization", format!("Bearer {}", s.admin))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("id,waba,phone,user,country,market,pricing_model"));
    assert!(csv.lines().count() > 100);
    let (status, body, _) = call(&s, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, metrics, _) = call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let ingested: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wabill_events_ingested_total "))
        .and_then(|v| v.parse().ok())
        .expect("the ingest counter is exported");
    assert!(ingested > 700, "{metrics}");
    assert!(metrics.contains("wabill_charges_rated_total"));
}

#[tokio::test]
async fn a_month_rerated_alone_still_sees_windows_opened_the_month_before() {
    let s = sqlite_service().await;
    let acc = r#"{"kind":"account","waba":"W1","timezone":"UTC","currency":"USD"}"#;
    let inbound = r#"{"kind":"inbound","id":"i1","at":"2025-10-31T23:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777"}"#;
    call(&s, post_events(&s.admin, format!("{acc}\n{inbound}"))).await;
    s.state.engine.settle().await.unwrap();
    // Only November is dirty now; the window the user opened on October 31 makes it free.
    let utility = r#"{"kind":"outbound","id":"m1","at":"2025-11-01T01:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}
{"kind":"status","id":"m1","at":"2025-11-01T01:00:01Z","status":"delivered"}"#;
    call(&s, post_events(&s.admin, utility.to_string())).await;
    s.state.engine.settle().await.unwrap();
    let got = all_charges(&s, &s.admin, "").await;
    assert!(got.contains(r#""type":"free_customer_service""#), "{got}");
}
