//! The service over real HTTP semantics (axum's router, called in process) and a real store:
//! SQLite in a temp dir, and PostgreSQL on 127.0.0.1:5432 (required when CI is set).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use wabill_engine::meta;
use wabill_rating::{rate, RateOptions, Tariff};
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const SECRET: &[u8] = b"app-secret-1";

mod support;

struct Service {
    state: Arc<AppState>,
    admin: String,
    _dir: tempfile::TempDir,
    /// Dropped last: the PostgreSQL schema goes once the service has.
    _schema: Option<support::PgSchema>,
}

async fn service_on(store: Box<dyn Store>, dir: tempfile::TempDir) -> Service {
    service_with(store, dir, Tariff::bundled()).await
}

async fn service_with(store: Box<dyn Store>, dir: tempfile::TempDir, tariff: Tariff) -> Service {
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
    let engine = Engine::new(store, Arc::new(tariff), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(
        engine,
        vec![b"old".to_vec(), SECRET.to_vec()],
        "tok".into(),
    ));
    Service {
        state,
        admin,
        _dir: dir,
        _schema: None,
    }
}

async fn sqlite_service() -> Service {
    sqlite_service_with(Tariff::bundled()).await
}

async fn sqlite_service_with(tariff: Tariff) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite").to_str().unwrap())
        .await
        .unwrap();
    service_with(Box::new(store), dir, tariff).await
}

/// A PostgreSQL-backed service in a fresh schema, or None (with a loud note) outside CI when
/// the server cannot be reached.
async fn postgres_service(test: &str) -> Option<Service> {
    let schema = support::PgSchema::new("srv", test).await;
    let url = schema.url.clone();
    match wabill_store::PgStore::open_in_schema(&url, &schema.name).await {
        Ok(store) => {
            let mut s = service_on(Box::new(store), tempfile::tempdir().unwrap()).await;
            s._schema = Some(schema);
            Some(s)
        }
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
/// With `accounts_first`, the accounts go in the first batch, as when a platform sets up its
/// WABAs before their traffic (every later round then re-rates from the months kept in
/// memory, since no account version makes it forget them).
async fn send_shuffled(s: &Service, lines: &str, seed: u64, accounts_first: bool) {
    let (accounts, mut v): (Vec<&str>, Vec<&str>) = lines
        .lines()
        .partition(|l| accounts_first && l.contains(r#""kind":"account""#));
    if !accounts.is_empty() {
        let (status, body, _) = call(s, post_events(&s.admin, accounts.join("\n"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
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

async fn converges(s: Service, seed: u64, accounts_first: bool) {
    let lines = generated(seed, 4000);
    let expected = batch_rating(&lines);
    assert!(expected.lines().count() > 500);
    send_shuffled(&s, &lines, seed, accounts_first).await;
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
    for (seed, accounts_first) in [(1, false), (2, false), (4, true), (5, true)] {
        converges(sqlite_service().await, seed, accounts_first).await;
    }
    // Re-rating's memory holding less than a month: months are forgotten and read again.
    let s = sqlite_service().await;
    s.state.engine.set_month_memory_budget(64 << 10).await;
    converges(s, 6, true).await;
}

#[tokio::test]
async fn stored_charges_converge_to_the_batch_result_on_postgres() {
    if let Some(s) = postgres_service("converge").await {
        converges(s, 3, true).await;
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

fn signed_webhook(body: Vec<u8>) -> Request<Body> {
    Request::post("/webhooks/whatsapp")
        .header("x-hub-signature-256", meta::sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_signed_webhook_has_the_bounds_of_v1_events() {
    let s = sqlite_service().await;
    let json = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };
    let envelope = |statuses: &[String]| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"metadata":{{"display_phone_number":"15550001111"}},"statuses":[{}]}}}}]}}]}}"#,
            statuses.join(",")
        )
    };
    let status = |i: usize| {
        format!(r#"{{"id":"wamid.S{i}","status":"delivered","timestamp":"1762164000"}}"#)
    };

    // More than 10,000 events in the envelope: 413 too_many_events, nothing stored.
    let over: Vec<String> = (0..api::MAX_EVENTS_PER_REQUEST + 1).map(status).collect();
    let (code, text, _) = call(&s, signed_webhook(envelope(&over).into_bytes())).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(json(&text)["error"]["code"], "too_many_events", "{text}");
    assert!(
        text.contains("more than 10000 messages and statuses"),
        "{text}"
    );
    assert_eq!(s.state.engine.store().max_seq().await.unwrap(), 0);

    // Exactly the limit is taken.
    let full: Vec<String> = (0..api::MAX_EVENTS_PER_REQUEST).map(status).collect();
    let (code, text, _) = call(&s, signed_webhook(envelope(&full).into_bytes())).await;
    assert_eq!(code, StatusCode::OK, "{text}");

    // A signed body with nothing in it is refused, not answered 200.
    for empty in ["", "  \r\n"] {
        let (code, text, _) = call(&s, signed_webhook(empty.into())).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{empty:?}: {text}");
        assert_eq!(json(&text)["error"]["code"], "empty_body", "{text}");
    }

    // A string over its bound names the field and the limit, never the value.
    let long = envelope(&[format!(
        r#"{{"id":"{}","status":"delivered","timestamp":"1762164000"}}"#,
        "x".repeat(300_000)
    )]);
    let (code, text, _) = call(&s, signed_webhook(long.into_bytes())).await;
    assert_eq!(
        code,
        StatusCode::BAD_REQUEST,
        "{}",
        &text[..text.len().min(300)]
    );
    let e = json(&text);
    assert_eq!(e["error"]["code"], "invalid_webhook");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("statuses[0].id") && message.contains("limit of 256 characters"),
        "{message}"
    );
    assert!(text.len() < 1000, "the value is not echoed");

    // A byte that is not UTF-8 is named by its place.
    let mut bad = envelope(&[status(1)]).into_bytes();
    bad[20] = 0xff;
    let (code, text, _) = call(&s, signed_webhook(bad)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(json(&text)["error"]["code"], "invalid_body", "{text}");
    assert!(text.contains("byte 21"), "{text}");
    assert_eq!(
        s.state.engine.store().max_seq().await.unwrap(),
        api::MAX_EVENTS_PER_REQUEST as u64,
        "only the envelope within the limit was stored"
    );
}

#[tokio::test]
async fn messages_naming_a_template_and_template_lines_are_refused_alone() {
    let s = sqlite_service().await;
    let good = r#"{"kind":"outbound","id":"m1","at":"2025-11-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}"#;
    let named = r#"{"kind":"outbound","id":"m2","at":"2025-11-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","template_id":"111"}"#;
    let line = r#"{"kind":"template","waba":"W1","id":"111","name":"a","language":"en","category":"utility","at":"2025-11-01T00:00:00Z"}"#;
    let body = format!("{ACCOUNT}\n{good}\n{named}\n{line}\n");
    let (status, text, _) = call(&s, post_events(&s.admin, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{text}"
    );
    assert_eq!(
        (&r["errors"][0]["index"], &r["errors"][0]["field"]),
        (&json!(2), &json!("template"))
    );
    assert_eq!(
        (&r["errors"][1]["index"], &r["errors"][1]["field"]),
        (&json!(3), &json!("kind"))
    );
    assert!(text.contains("give the message's category"), "{text}");
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
    // Nothing of that batch was taken: 422, with the items' errors in the same body.
    let (status, text, _) = call(&s, post_events(&s.admin, format!("[{changed}]"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["error"]["code"], "all_rejected", "{text}");
    assert_eq!(r["errors"][0]["index"], 0, "{text}");
    assert_eq!((&r["stored"], &r["rejected"]), (&0.into(), &1.into()));
    // One good item beside a bad one is a success that names the bad one.
    let other = good.replace("\"i1\"", "\"i9\"");
    let (status, text, _) = call(&s, post_events(&s.admin, format!("[{changed},{other}]"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // A batch of repeats only is a success too: everything in it is stored.
    let (status, text, _) = call(&s, post_events(&s.admin, format!("[{other}]"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
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

fn post_bytes(key: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/events")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn bodies_are_read_item_by_item_within_their_bounds() {
    let s = sqlite_service().await;
    let inbound = |id: &str| {
        format!(
            r#"{{"kind":"inbound","id":"{id}","at":"2025-11-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777"}}"#
        )
    };
    let json = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };

    // The index counts blank lines: it is the line number less one, and the line is given.
    let body = format!(
        "{ACCOUNT}


{{\"kind\":\"inbound\",\"id\":\"i2\",\"at\":\"later\"}}\n"
    );
    let (status, text, _) = call(&s, post_events(&s.admin, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let r = json(&text);
    assert_eq!(
        (
            r["errors"][0]["index"].as_u64(),
            r["errors"][0]["line"].as_u64()
        ),
        (Some(3), Some(4)),
        "{text}"
    );

    // An empty body is refused, whatever its shape.
    for empty in ["", "\n\n \r\n", "[]", " [ ]"] {
        let (status, text, _) = call(&s, post_events(&s.admin, empty.into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{empty:?}");
        assert_eq!(json(&text)["error"]["code"], "empty_body", "{text}");
    }

    // One byte that is not UTF-8 refuses its line only, with the line's index.
    let mut body = format!("{}\n", inbound("u1")).into_bytes();
    body.extend_from_slice(b"{\"kind\":\"inbound\",\"id\":\"\xff\"}\n\n");
    body.extend_from_slice(inbound("u2").as_bytes());
    let (status, text, _) = call(&s, post_bytes(&s.admin, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let r = json(&text);
    assert_eq!(
        (r["stored"].as_u64(), r["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{text}"
    );
    assert_eq!(r["errors"][0]["index"], 1, "{text}");
    assert!(
        r["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("line 2 is not UTF-8"),
        "{text}"
    );

    // A 300,000-character id is refused, naming the field and the limit, and not stored.
    let long = inbound(&"x".repeat(300_000));
    let (status, text, _) = call(&s, post_events(&s.admin, long)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing stored: {text}"
    );
    let r = json(&text);
    assert_eq!(
        (r["stored"].as_u64(), r["errors"][0]["field"].as_str()),
        (Some(0), Some("id"))
    );
    assert!(
        r["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("limit of 256 characters"),
        "{text}"
    );
    assert!(text.len() < 1000, "the value is not echoed");

    // Instants out of the range are refused alike, in either form.
    for at in [
        r#""1969-12-31T23:59:59Z""#,
        "-1",
        r#""0000-01-01T00:00:00Z""#,
        r#""9999-12-31T23:59:59Z""#,
    ] {
        let line = inbound("t1").replace(r#""2025-11-03T10:00:00Z""#, at);
        let r = json(&call(&s, post_events(&s.admin, line)).await.1);
        assert_eq!(r["errors"][0]["field"], "at", "{at}: {r}");
    }

    // An envelope counts its events: one line of 10,002 statuses is refused whole.
    let statuses: Vec<String> = (0..api::MAX_EVENTS_PER_REQUEST + 2)
        .map(|i| format!(r#"{{"id":"wamid.S{i}","status":"delivered","timestamp":"1762164000"}}"#))
        .collect();
    let envelope = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"metadata":{{"display_phone_number":"15550001111"}},"statuses":[{}]}}}}]}}]}}"#,
        statuses.join(",")
    );
    let (status, text, _) = call(&s, post_events(&s.admin, envelope)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(json(&text)["error"]["code"], "too_many_events");
    assert!(text.contains("10002 events"), "{text}");

    // An array is read element by element: the reading stops at the element after the limit,
    // so what follows it is never read (here, it is not even JSON).
    let mut body = b"[".to_vec();
    body.extend(std::iter::repeat_n(&b"{},"[..], api::MAX_EVENTS_PER_REQUEST + 1).flatten());
    body.extend_from_slice(b" this is never read");
    let (status, text, _) = call(&s, post_bytes(&s.admin, body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(json(&text)["error"]["code"], "too_many_events");
    assert_eq!(
        s.state.engine.store().max_seq().await.unwrap(),
        3,
        "nothing more was stored"
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
    assert!(
        text.contains("may not send events for that WABA") && !text.contains("W2"),
        "{text}"
    );
    assert_eq!(
        call(&s, post_events("reader-w1", w2.into())).await.0,
        StatusCode::FORBIDDEN
    );
    let all = all_charges(&s, &s.admin, "").await;
    assert!(all.lines().any(|l| l.contains(r#""waba":"W2""#)));

    // Statuses name only a message: a scoped key may send those of its own WABAs' messages,
    // not of another tenant's stored message (a failed status would make it free).
    let id_of = |waba: &str| -> String {
        let l = lines
            .lines()
            .find(|l| {
                l.contains(r#""kind":"outbound""#) && l.contains(&format!(r#""waba":"{waba}""#))
            })
            .unwrap();
        serde_json::from_str::<Value>(l).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let failed = |id: &str| {
        format!(r#"{{"kind":"status","id":"{id}","at":"2026-10-03T10:00:00Z","status":"failed"}}"#)
    };
    let body = [
        failed(&id_of("W2")),
        failed(&id_of("W1")),
        failed("wamid.not-yet-stored"),
    ]
    .join("\n");
    let (status, text, _) = call(&s, post_events("sender-w1", body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["stored"].as_u64(), r["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{text}"
    );
    assert_eq!(r["errors"][0]["index"], 0, "{text}");
    assert!(
        text.contains("no message of this key's WABAs has this id") && !text.contains("W2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_csv_download_without_a_limit_is_every_row_in_order() {
    let s = sqlite_service().await;
    let (status, text, _) = call(&s, post_events(&s.admin, generated(17, 9000))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    s.state.engine.settle().await.unwrap();
    let paged = all_charges(&s, &s.admin, "").await;
    let ids: Vec<String> = paged
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .map(|id| id.trim_matches('"').to_string())
        .collect();
    // More rows than one store read of the download, and than the default page.
    assert!(ids.len() > 2000, "{} charges", ids.len());
    let (status, csv, headers) = call(
        &s,
        Request::get("/v1/charges?format=csv")
            .header("authorization", format!("Bearer {}", s.admin))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("x-next-cursor").is_none());
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,waba,phone"));
    let csv_ids: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(
        csv_ids, ids,
        "the download is every row, once, in the pages' order"
    );
    // With a limit it stays one page, its cursor in the header.
    let (_, page, headers) = call(
        &s,
        Request::get("/v1/charges?format=csv&limit=10")
            .header("authorization", format!("Bearer {}", s.admin))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.lines().count(), 11);
    assert!(headers.get("x-next-cursor").is_some());
}

#[tokio::test]
async fn charges_export_as_csv_and_probes_answer() {
    let s = sqlite_service().await;
    call(&s, post_events(&s.admin, generated(9, 800))).await;
    // Stored, not yet re-rated: the lag is every event stored.
    let (_, metrics, _) = call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let stored = metric(&metrics, "wabill_events_stored_seq");
    assert!(stored > 700, "{metrics}");
    assert_eq!(
        metric(&metrics, "wabill_rerate_lag_events"),
        stored,
        "{metrics}"
    );
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
    let ingested = metric(&metrics, "wabill_events_ingested_total");
    assert!(ingested > 700, "{metrics}");
    assert!(
        metric(&metrics, "wabill_charges_rated_total") > 100,
        "{metrics}"
    );
    // Re-rated: the watermark reached what is stored.
    assert_eq!(metric(&metrics, "wabill_rated_seq"), stored, "{metrics}");
    assert_eq!(metric(&metrics, "wabill_rerate_lag_events"), 0, "{metrics}");
    assert!(metric(&metrics, "wabill_rerate_rounds_total{result=\"ok\"}") >= 1);
    assert_eq!(
        metric(&metrics, "wabill_rerate_rounds_total{result=\"failed\"}"),
        0
    );
    // Each request answered is in its route's duration histogram: the ingest, and the export.
    assert_eq!(
        metric(
            &metrics,
            "wabill_http_request_duration_seconds_count{route=\"/v1/events\"}"
        ),
        1,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "wabill_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"+Inf\"}"
        ),
        1,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "wabill_http_request_duration_seconds_count{route=\"/v1/charges\"}"
        ),
        1,
        "{metrics}"
    );
}

/// The value of a series in `/metrics`' text.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} is not exported:\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
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

// ---------------------------------------------------------------------------------------------
// Send checks, usage, reconciliation, the OpenAPI document, body limits, crash recovery.

use serde_json::{json, Value};
use wabill_rating::UnixMs;

const BR_USER: &str = "5511988887777";
const PHONE: &str = "15550001111";

fn at(s: &str) -> UnixMs {
    wabill_formats::time::parse_instant(s).unwrap()
}

fn account_line(waba: &str, portfolio: &str, tz: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"account","waba":"{waba}","portfolio":"{portfolio}","timezone":"{tz}","currency":"USD","primary_country":"BR"{extra}}}"#
    )
}

fn inbound_line(id: &str, when: &str, waba: &str, phone: &str, user: &str, ctwa: bool) -> String {
    let ep = if ctwa { r#","entry_point":"ctwa""# } else { "" };
    format!(
        r#"{{"kind":"inbound","id":"{id}","at":"{when}","waba":"{waba}","phone":"{phone}","user":"{user}"{ep}}}"#
    )
}

/// An outbound message (`kind` is a template category, or a non-template type such as `text`)
/// delivered two seconds later.
fn sent_line(id: &str, when: &str, waba: &str, phone: &str, user: &str, kind: &str) -> String {
    let what = match kind {
        "marketing" | "utility" | "authentication" => {
            format!(r#""type":"template","category":"{kind}""#)
        }
        other => format!(r#""type":"{other}""#),
    };
    let delivered = wabill_formats::time::format_instant(at(when) + 2000);
    format!(
        "{{\"kind\":\"outbound\",\"id\":\"{id}\",\"at\":\"{when}\",\"waba\":\"{waba}\",\"phone\":\"{phone}\",\"user\":\"{user}\",{what}}}\n{{\"kind\":\"status\",\"id\":\"{id}\",\"at\":\"{delivered}\",\"status\":\"delivered\"}}"
    )
}

async fn post_ok(s: &Service, body: String) -> Value {
    let (status, text, _) = call(s, post_events(&s.admin, body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rejected"], 0, "{text}");
    v
}

async fn get_json(s: &Service, key: &str, uri: &str) -> (StatusCode, Value) {
    let (status, text, _) = call(
        s,
        Request::get(uri)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}: {text}")),
    )
}

async fn check(s: &Service, key: &str, body: Value) -> (StatusCode, Value) {
    let (status, text, _) = call(
        s,
        Request::post("/v1/sends/check")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap())
}

fn ask(waba: &str, user: &str, kind: &str, now: &str) -> Value {
    let mut v = json!({"waba": waba, "phone": PHONE, "user": user, "now": now});
    match kind {
        "marketing" | "utility" | "authentication" => {
            v["type"] = json!("template");
            v["category"] = json!(kind);
        }
        other => v["type"] = json!(other),
    }
    v
}

/// What the rating core says of the same message when it is really sent (under a real id)
/// and delivered at `now`, rated with `events`: (model, category, type, tier, rate, amount).
fn core_says(tariff: &Tariff, events: &str, ask: &Value) -> Value {
    let now = ask["now"].as_str().unwrap();
    let kind = ask["category"]
        .as_str()
        .unwrap_or(ask["type"].as_str().unwrap());
    let mut lines = events.to_string();
    lines.push('\n');
    lines.push_str(
        &sent_line(
            "~real",
            now,
            ask["waba"].as_str().unwrap(),
            ask["phone"].as_str().unwrap(),
            ask["user"].as_str().unwrap(),
            kind,
        )
        .replace(&wabill_formats::time::format_instant(at(now) + 2000), now),
    );
    let mut parsed = wabill_formats::Parsed::default();
    for (i, l) in lines.lines().enumerate() {
        wabill_formats::parse_line(l, i as u64 + 1, &mut parsed).unwrap();
    }
    let rated = rate(tariff, &[], &parsed.events, RateOptions::default());
    let c = rated
        .charges
        .iter()
        .find(|c| c.id == "~real")
        .unwrap_or_else(|| panic!("{:?}", rated.errors));
    json!({
        "pricing_model": c.pricing_model.as_str(), "category": c.category.as_str(),
        "type": c.pricing_type.as_str(), "tier": c.tier.map(|t| t.to_string()),
        "rate": c.rate.filter(|_| c.billable()).map(|r| r.to_string()),
        "amount": c.amount.to_string(),
    })
}

fn priced(answer: &Value) -> Value {
    let c = &answer["charge"];
    json!({
        "pricing_model": c["pricing_model"], "category": c["category"], "type": c["type"],
        "tier": c["tier"], "rate": c["rate"], "amount": c["amount"],
    })
}

async fn send_check_scenario(s: &Service) {
    let tariff = Tariff::bundled();
    let events = [
        account_line("W1", "P1", "UTC", ""),
        inbound_line("i1", "2025-11-03T10:00:00Z", "W1", PHONE, BR_USER, false),
        // An ad click from another user, an entry point.
        inbound_line(
            "i2",
            "2025-11-10T08:00:00Z",
            "W1",
            PHONE,
            "5511977770002",
            true,
        ),
        // Under CBP: an open marketing conversation.
        sent_line(
            "c1",
            "2024-03-10T10:00:00Z",
            "W1",
            PHONE,
            "5511977770003",
            "marketing",
        ),
        // From 2026-10-01, utility templates inside the window are charged.
        inbound_line(
            "i4",
            "2026-10-05T10:00:00Z",
            "W1",
            PHONE,
            "5511977770004",
            false,
        ),
    ]
    .join("\n");
    post_ok(s, events.clone()).await;
    s.state.engine.settle().await.unwrap();

    // A utility template inside the window before 2026-10-01: free, and the window's end.
    let q = ask("W1", BR_USER, "utility", "2025-11-03T12:00:00Z");
    let (status, a) = check(s, &s.admin, q.clone()).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["allowed"], true);
    assert_eq!(a["charge"]["type"], "free_customer_service");
    assert_eq!(a["charge"]["category"], "utility");
    assert_eq!(a["charge"]["amount"], "0");
    assert_eq!(a["charge"]["rate"], Value::Null);
    assert_eq!(
        a["windows"]["customer_service"],
        json!({"open": true, "ends_at": "2025-11-04T10:00:00Z"})
    );
    assert_eq!(priced(&a), core_says(&tariff, &events, &q));

    // A text outside the window cannot be sent (Meta's 131047): an answer, 200.
    let (status, a) = check(
        s,
        &s.admin,
        ask("W1", BR_USER, "text", "2025-11-05T12:00:00Z"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["allowed"], false);
    assert_eq!(a["reason"]["code"], "window_closed");
    assert_eq!(a["reason"]["meta_error"], 131047);
    assert_eq!(a["charge"], Value::Null);
    assert_eq!(a["windows"]["customer_service"]["open"], false);

    // An authentication template is charged at its rate, whatever the window.
    let q = ask("W1", BR_USER, "authentication", "2025-11-05T12:00:00Z");
    let (_, a) = check(s, &s.admin, q.clone()).await;
    assert_eq!(
        (
            &a["charge"]["type"],
            &a["charge"]["rate"],
            &a["charge"]["amount"]
        ),
        (&json!("regular"), &json!("0.0068"), &json!("0.0068")),
        "{a}"
    );
    assert_eq!(
        (&a["charge"]["market"], &a["charge"]["country"]),
        (&json!("Brazil"), &json!("BR"))
    );
    assert_eq!(a["charge"]["billable"], true);
    assert_eq!(a["charge"]["tier_position"], 1);
    assert_eq!(priced(&a), core_says(&tariff, &events, &q));

    // A marketing template answering an ad click opens a free entry point window.
    let q = ask("W1", "5511977770002", "marketing", "2025-11-10T09:00:00Z");
    let (_, a) = check(s, &s.admin, q.clone()).await;
    assert_eq!(a["charge"]["type"], "free_entry_point", "{a}");
    assert_eq!(a["charge"]["category"], "referral_conversion");
    assert_eq!(
        a["windows"]["free_entry_point"],
        json!({"open": false, "ends_at": "2025-11-13T09:00:00Z", "opened_by_this_message": true})
    );
    assert_eq!(priced(&a), core_says(&tariff, &events, &q));
    // Once such a message is really sent, the next ones ride its window.
    let fep = sent_line(
        "m-fep",
        "2025-11-10T09:00:00Z",
        "W1",
        PHONE,
        "5511977770002",
        "marketing",
    );
    post_ok(s, fep.clone()).await;
    s.state.engine.settle().await.unwrap();
    let (_, a) = check(
        s,
        &s.admin,
        ask("W1", "5511977770002", "utility", "2025-11-11T09:00:00Z"),
    )
    .await;
    assert_eq!(a["charge"]["type"], "free_entry_point", "{a}");
    assert_eq!(a["charge"]["conversation_id"], "m-fep");
    assert_eq!(
        a["windows"]["free_entry_point"],
        json!({"open": true, "ends_at": "2025-11-13T09:00:00Z", "opened_by_this_message": false})
    );

    // Under CBP a marketing template joins the open marketing conversation; a utility one opens
    // its own, charged at the conversation rate.
    let q = ask("W1", "5511977770003", "marketing", "2024-03-10T12:00:00Z");
    let (_, a) = check(s, &s.admin, q.clone()).await;
    assert_eq!(
        (
            &a["charge"]["pricing_model"],
            &a["charge"]["amount"],
            &a["charge"]["conversation_id"]
        ),
        (&json!("CBP"), &json!("0"), &json!("c1")),
        "{a}"
    );
    assert_eq!(a["charge"]["opens_conversation"], false);
    assert_eq!(a["windows"]["conversations"][0]["conversation_id"], "c1");
    assert_eq!(
        a["windows"]["conversations"][0]["expires_at"],
        "2024-03-11T10:00:00Z"
    );
    let all_events = format!("{events}\n{fep}");
    assert_eq!(priced(&a), core_says(&tariff, &all_events, &q));
    let q = ask("W1", "5511977770003", "utility", "2024-03-10T12:00:00Z");
    let (_, a) = check(s, &s.admin, q.clone()).await;
    assert_eq!(a["charge"]["opens_conversation"], true, "{a}");
    assert_eq!(a["charge"]["billable"], true);
    assert_eq!(priced(&a), core_says(&tariff, &all_events, &q));

    // From 2026-10-01 a utility template inside the window is charged, and a service reply is
    // in the number's free monthly allowance.
    for kind in ["utility", "text"] {
        let q = ask("W1", "5511977770004", kind, "2026-10-05T11:00:00Z");
        let (_, a) = check(s, &s.admin, q.clone()).await;
        assert_eq!(
            priced(&a),
            core_says(&tariff, &all_events, &q),
            "{kind}: {a}"
        );
    }
    let (_, a) = check(
        s,
        &s.admin,
        ask("W1", "5511977770004", "utility", "2026-10-05T11:00:00Z"),
    )
    .await;
    assert_eq!(
        (&a["charge"]["type"], &a["charge"]["rate"]),
        (&json!("regular"), &json!("0.0068"))
    );

    // What cannot be answered, with its code and status from the one table.
    let mut no_category = ask("W1", BR_USER, "utility", "2025-11-03T12:00:00Z");
    no_category.as_object_mut().unwrap().remove("category");
    let (status, a) = check(s, &s.admin, no_category).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(a["error"]["code"], "invalid_request");
    assert!(
        a["error"]["message"].as_str().unwrap().contains("category"),
        "{a}"
    );
    let (status, a) = check(
        s,
        &s.admin,
        ask("W9", BR_USER, "utility", "2025-11-03T12:00:00Z"),
    )
    .await;
    assert_eq!(
        (status, &a["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("unknown_account"))
    );
    let (status, a) = check(
        s,
        &s.admin,
        ask("W1", BR_USER, "utility", "2022-01-03T12:00:00Z"),
    )
    .await;
    assert_eq!(
        (status, &a["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("unsupported_date")),
        "{a}"
    );
    let (status, a) = check(s, &s.admin, ask("W1", BR_USER, "utility", "soon")).await;
    assert_eq!(
        (status, &a["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
}

#[tokio::test]
async fn send_checks_answer_what_the_rating_core_says_on_sqlite() {
    send_check_scenario(&sqlite_service().await).await;
}

#[tokio::test]
async fn send_checks_answer_what_the_rating_core_says_on_postgres() {
    if let Some(s) = postgres_service("check").await {
        send_check_scenario(&s).await;
    }
}

#[tokio::test]
async fn a_send_check_without_now_uses_the_services_clock() {
    let s = sqlite_service().await;
    post_ok(
        &s,
        [
            account_line("W1", "P1", "UTC", ""),
            inbound_line("i1", "2025-11-03T10:00:00Z", "W1", PHONE, BR_USER, false),
        ]
        .join("\n"),
    )
    .await;
    fn fixed() -> UnixMs {
        1_762_171_200_000 // 2025-11-03T12:00:00Z
    }
    // The same store under an engine whose clock stands still.
    let engine = Engine::with_clock(
        s.state.engine.store().clone(),
        Arc::new(Tariff::bundled()),
        Arc::new(Default::default()),
        fixed,
    )
    .await
    .unwrap();
    let state = Arc::new(AppState::new(engine, vec![], String::new()));
    let body = json!({"waba": "W1", "phone": PHONE, "user": BR_USER, "type": "template", "category": "utility"});
    let resp = api::router(state)
        .oneshot(
            Request::post("/v1/sends/check")
                .header("authorization", format!("Bearer {}", s.admin))
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let a: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(a["at"], "2025-11-03T12:00:00Z");
    assert_eq!(a["charge"]["type"], "free_customer_service", "{a}");
}

const TIERED: &str =
    "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source
2026-11-01,PMP,USD,Brazil,utility,0,2,0.0068,test
2026-11-01,PMP,USD,Brazil,utility,3,MAX,0.005,test
";

#[tokio::test]
async fn tier_positions_count_the_portfolios_charged_messages_of_the_month() {
    let tariff = || {
        Tariff::from_csv(
            wabill_rating::data::MARKETS_CSV,
            &[
                ("rates.csv", wabill_rating::data::RATES_CSV),
                ("tiers.csv", TIERED),
            ],
        )
        .unwrap()
    };
    let s = sqlite_service_with(tariff()).await;
    const P2: &str = "15550002222";
    let events = [
        account_line("W1", "P1", "UTC", ""),
        account_line("W2", "P1", "America/Sao_Paulo", ""),
        // Another WABA of the portfolio, in its own timezone, two other users.
        sent_line(
            "a1",
            "2026-11-02T12:00:00Z",
            "W2",
            P2,
            "5511900000001",
            "utility",
        ),
        sent_line(
            "b1",
            "2026-11-02T13:00:00Z",
            "W2",
            P2,
            "5511900000002",
            "utility",
        ),
        // The asking pair's own earlier message.
        sent_line(
            "c1",
            "2026-11-03T12:00:00Z",
            "W1",
            PHONE,
            "5511900000003",
            "utility",
        ),
        // Another month and another market do not count.
        sent_line(
            "z1",
            "2026-10-30T12:00:00Z",
            "W1",
            PHONE,
            "5511900000009",
            "utility",
        ),
        sent_line(
            "z2",
            "2026-11-03T12:00:00Z",
            "W1",
            PHONE,
            "919800000001",
            "utility",
        ),
    ]
    .join("\n");
    post_ok(&s, events.clone()).await;
    s.state.engine.settle().await.unwrap();
    let t = tariff();
    for (user, now, n, tier, rate) in [
        // Three charged before it (two of W2, the pair's own c1): the fourth.
        ("5511900000003", "2026-11-04T12:00:00Z", 4, "3:MAX", "0.005"),
        ("5511900000004", "2026-11-04T12:00:00Z", 4, "3:MAX", "0.005"),
        // Only what was sent up to now counts: between a1 and b1 it is the second.
        ("5511900000004", "2026-11-02T12:30:00Z", 2, "0:2", "0.0068"),
    ] {
        let q = ask("W1", user, "utility", now);
        let (_, a) = check(&s, &s.admin, q.clone()).await;
        assert_eq!(a["charge"]["tier_position"], n, "{user} {now}: {a}");
        assert_eq!(
            (&a["charge"]["tier"], &a["charge"]["rate"]),
            (&json!(tier), &json!(rate))
        );
        // The core, rating everything with the message really sent, agrees.
        assert_eq!(priced(&a), core_says(&t, &events, &q), "{user} {now}");
    }
}

#[tokio::test]
async fn the_free_service_allowance_counts_the_whole_numbers_month() {
    let s = sqlite_service().await;
    let mut lines = vec![account_line("W1", "P1", "UTC", "")];
    let base = at("2026-11-02T00:00:00Z");
    let iso = wabill_formats::time::format_instant;
    for k in 0..1000i64 {
        let user = format!("55119{:08}", k);
        lines.push(inbound_line(
            &format!("in{k}"),
            &iso(base + k * 10_000),
            "W1",
            PHONE,
            &user,
            false,
        ));
        lines.push(sent_line(
            &format!("out{k}"),
            &iso(base + k * 10_000 + 1000),
            "W1",
            PHONE,
            &user,
            "text",
        ));
    }
    lines.push(inbound_line(
        "inX",
        "2026-11-05T10:00:00Z",
        "W1",
        PHONE,
        BR_USER,
        false,
    ));
    lines.push(inbound_line(
        "inY",
        "2026-11-05T10:00:00Z",
        "W1",
        "15550002222",
        BR_USER,
        false,
    ));
    post_ok(&s, lines.join("\n")).await;
    s.state.engine.settle().await.unwrap();
    // The number used its 1,000 free service messages this month with other users: the
    // 1,001st is charged at the service rate, though the pair alone would be free.
    let (_, a) = check(
        &s,
        &s.admin,
        ask("W1", BR_USER, "text", "2026-11-05T11:00:00Z"),
    )
    .await;
    assert_eq!(
        (
            &a["charge"]["type"],
            &a["charge"]["rate"],
            &a["charge"]["amount"]
        ),
        (&json!("regular"), &json!("0.0068"), &json!("0.0068")),
        "{a}"
    );
    // Another number of the same WABA has its own allowance.
    let mut other = ask("W1", BR_USER, "text", "2026-11-05T11:00:00Z");
    other["phone"] = json!("15550002222");
    let (_, a) = check(&s, &s.admin, other).await;
    assert_eq!(a["charge"]["type"], "free_tier", "{a}");
}

/// Usage per WABA: volumes and costs equal the delivered charges, whatever the granularity.
async fn usage_scenario(s: &Service, seed: u64) {
    post_ok(s, generated(seed, 2500)).await;
    s.state.engine.settle().await.unwrap();
    let charges = all_charges(s, &s.admin, "").await;
    let start = at("2025-10-01T00:00:00Z") / 1000;
    let end = at("2025-12-01T00:00:00Z") / 1000;
    for waba in ["W1", "W2", "W3", "W4"] {
        let mine: Vec<Value> = charges
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|c| c["waba"] == waba && !c["billed_at"].is_null())
            .collect();
        assert!(!mine.is_empty());
        let expected_cost: wabill_rating::Decimal = mine
            .iter()
            .map(|c| {
                c["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<wabill_rating::Decimal>()
                    .unwrap()
            })
            .sum();
        for (granularity, align) in [
            ("HALF_HOUR", "UTC"),
            ("DAILY", "UTC"),
            ("MONTHLY", "UTC"),
            ("MONTHLY", "WABA"),
        ] {
            let uri = format!(
                "/v1/usage?waba={waba}&start={start}&end={end}&granularity={granularity}&align={align}&dimensions=COUNTRY,PHONE,PRICING_CATEGORY,PRICING_TYPE,TIER"
            );
            let (status, u) = get_json(s, &s.admin, &uri).await;
            assert_eq!(status, StatusCode::OK, "{u}");
            assert_eq!(u["data"].as_array().unwrap().len(), 1, "one currency");
            assert_eq!(u["data"][0]["currency"], "USD");
            let points = u["data"][0]["data_points"].as_array().unwrap();
            let volume: u64 = points.iter().map(|p| p["volume"].as_u64().unwrap()).sum();
            let cost: wabill_rating::Decimal = points
                .iter()
                .map(|p| {
                    p["cost"]
                        .as_str()
                        .unwrap()
                        .parse::<wabill_rating::Decimal>()
                        .unwrap()
                })
                .sum();
            assert_eq!(volume, mine.len() as u64, "{waba} {granularity}");
            assert_eq!(cost, expected_cost, "{waba} {granularity}");
            for p in points {
                let t = p["pricing_type"].as_str().unwrap();
                let c = p["pricing_category"].as_str().unwrap();
                assert_eq!(t, t.to_uppercase());
                assert_eq!(c, c.to_uppercase());
                let free = p["cost"] == "0";
                assert_eq!(
                    p.get("tier").is_none(),
                    free,
                    "tier omitted exactly for free: {p}"
                );
                let st = p["start"].as_i64().unwrap();
                match (granularity, align) {
                    ("HALF_HOUR", _) => assert_eq!(st % 1800, 0),
                    ("MONTHLY", "UTC") => assert!(
                        [at("2025-10-01T00:00:00Z"), at("2025-11-01T00:00:00Z")]
                            .contains(&(st * 1000)),
                        "{p}"
                    ),
                    _ => {}
                }
            }
            if (granularity, align, waba) == ("MONTHLY", "WABA", "W1") {
                // W1 is in Sao Paulo: its months start at 03:00 UTC.
                assert!(
                    points
                        .iter()
                        .any(|p| p["start"] == at("2025-11-01T03:00:00Z") / 1000),
                    "{u}"
                );
            }
        }
        // Without dimensions: one point per bucket, just volume and cost; filters keep a part.
        let (_, u) = get_json(
            s,
            &s.admin,
            &format!("/v1/usage?waba={waba}&start={start}&end={end}&granularity=MONTHLY"),
        )
        .await;
        let p = &u["data"][0]["data_points"][0];
        assert!(p.get("country").is_none() && p.get("tier").is_none(), "{p}");
        let (_, u) = get_json(s, &s.admin, &format!("/v1/usage?waba={waba}&start={start}&end={end}&granularity=DAILY&dimensions=PRICING_CATEGORY&pricing_categories=MARKETING")).await;
        for p in u["data"][0]["data_points"].as_array().unwrap() {
            assert_eq!(p["pricing_category"], "MARKETING");
        }
    }
    for (uri, code) in [
        (
            format!("/v1/usage?start={start}&end={end}&granularity=DAILY"),
            "invalid_parameter",
        ),
        (
            format!("/v1/usage?waba=W1&start={start}&end={end}&granularity=WEEKLY"),
            "invalid_parameter",
        ),
        (
            format!("/v1/usage?waba=W1&start={end}&end={start}&granularity=DAILY"),
            "invalid_parameter",
        ),
        (
            format!("/v1/usage?waba=W1&start={start}&end={end}&granularity=DAILY&dimensions=COLOR"),
            "invalid_parameter",
        ),
    ] {
        let (status, v) = get_json(s, &s.admin, &uri).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!(code)),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn usage_sums_equal_the_charges_on_sqlite() {
    usage_scenario(&sqlite_service().await, 5).await;
}

#[tokio::test]
async fn usage_sums_equal_the_charges_on_postgres() {
    if let Some(s) = postgres_service("usage").await {
        usage_scenario(&s, 6).await;
    }
}

fn status_envelope(waba: &str, statuses: &[Value]) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": PHONE, "phone_number_id": "100000000000001"},
        "statuses": statuses}}]}]})
    .to_string()
    .into_bytes()
}

fn meta_status(id: &str, status: &str, when: &str, pricing: Value) -> Value {
    json!({"id": id, "status": status, "timestamp": (at(when) / 1000).to_string(),
           "recipient_id": BR_USER, "pricing": pricing})
}

async fn post_webhook(s: &Service, body: Vec<u8>) {
    let req = Request::post("/webhooks/whatsapp")
        .header("x-hub-signature-256", meta::sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap();
    let (status, text, _) = call(s, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

async fn reconciliation_scenario(s: &Service) {
    let india = "919800000001";
    let events = [
        account_line(
            "W1",
            "P1",
            "UTC",
            r#","auth_international":{"start":"2025-01-01T00:00:00Z"}"#,
        ),
        // m1: a marketing template; Meta will (wrongly) call it utility on delivery.
        format!(r#"{{"kind":"outbound","id":"m1","at":"2025-11-05T10:00:00Z","waba":"W1","phone":"{PHONE}","user":"{BR_USER}","type":"template","category":"marketing"}}"#),
        // m2: a utility template inside the window: free.
        inbound_line("i2", "2025-11-06T09:00:00Z", "W1", PHONE, BR_USER, false),
        format!(r#"{{"kind":"outbound","id":"m2","at":"2025-11-06T10:00:00Z","waba":"W1","phone":"{PHONE}","user":"{BR_USER}","type":"template","category":"utility"}}"#),
        // m4: delivered, but no webhook pricing reached wabill.
        sent_line("m4", "2025-11-07T10:00:00Z", "W1", PHONE, BR_USER, "marketing"),
        // m5: authentication to India from a Brazilian business: international.
        format!(r#"{{"kind":"outbound","id":"m5","at":"2025-11-08T10:00:00Z","waba":"W1","phone":"{PHONE}","user":"{india}","type":"template","category":"authentication"}}"#),
    ]
    .join("\n");
    post_ok(s, events).await;
    let pmp = |category: &str, t: &str, billable: bool| json!({"billable": billable, "pricing_model": "PMP", "category": category, "type": t});
    post_webhook(
        s,
        status_envelope(
            "W1",
            &[
                meta_status(
                    "m1",
                    "sent",
                    "2025-11-05T10:00:01Z",
                    pmp("marketing", "regular", true),
                ),
                meta_status(
                    "m1",
                    "delivered",
                    "2025-11-05T10:00:02Z",
                    pmp("utility", "regular", true),
                ),
                meta_status(
                    "m2",
                    "delivered",
                    "2025-11-06T10:00:02Z",
                    pmp("utility", "free_customer_service", false),
                ),
                // m3: Meta priced a message wabill has no outbound event for: it is rated
                // from its status (decisions.md D110, D114), and agrees.
                meta_status(
                    "m3",
                    "delivered",
                    "2025-11-09T10:00:02Z",
                    pmp("marketing", "regular", true),
                ),
                meta_status(
                    "m5",
                    "delivered",
                    "2025-11-08T10:00:02Z",
                    pmp("authentication-international", "regular", true),
                ),
                // m6: a status that names no recipient does not describe its message: only
                // Meta priced it.
                {
                    let mut v = meta_status(
                        "m6",
                        "delivered",
                        "2025-11-10T10:00:02Z",
                        pmp("marketing", "regular", true),
                    );
                    v.as_object_mut().unwrap().remove("recipient_id");
                    v
                },
            ],
        ),
    )
    .await;
    // The same status without its pricing object is the same event (D24, D25).
    let (_, text, _) = call(
        s,
        post_events(
            &s.admin,
            r#"{"kind":"status","id":"m2","at":"2025-11-06T10:00:02Z","status":"delivered"}"#
                .into(),
        ),
    )
    .await;
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&r["stored"], &r["duplicates"], &r["rejected"]),
        (&json!(0), &json!(1), &json!(0)),
        "{text}"
    );
    s.state.engine.settle().await.unwrap();

    let (status, rep) = get_json(s, &s.admin, "/v1/reconciliation?waba=W1&month=2025-11").await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(
        rep["totals"],
        json!({"compared": 4, "agreeing": 3, "disagreeing": 1, "wabill_only": 1, "meta_only": 1}),
        "{rep}"
    );
    let d = &rep["disagreements"][0];
    assert_eq!(d["id"], "m1");
    assert_eq!(
        d["differences"],
        json!([{"field": "category", "wabill": "marketing", "meta": "utility"}])
    );
    assert_eq!(d["wabill"]["amount"], "0.0625");
    assert_eq!(d["meta"]["status"], "delivered");
    assert_eq!(rep["meta_only"][0]["id"], "m6");
    assert_eq!(
        rep["platform_categories"],
        json!([]),
        "the platform agreed on m1's sent"
    );
    let (_, dec) = get_json(s, &s.admin, "/v1/reconciliation?waba=W1&month=2025-12").await;
    assert_eq!(dec["totals"]["compared"], 0);
    assert_eq!(dec["totals"]["meta_only"], 0);
    for (uri, status, code) in [
        (
            "/v1/reconciliation?waba=W1&month=2025-13",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/reconciliation?month=2025-11",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/reconciliation?waba=W9&month=2025-11",
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
    ] {
        let (got, v) = get_json(s, &s.admin, uri).await;
        assert_eq!((got, &v["error"]["code"]), (status, &json!(code)), "{uri}");
    }
}

#[tokio::test]
async fn reconciliation_finds_a_wrong_meta_category_on_sqlite() {
    reconciliation_scenario(&sqlite_service().await).await;
}

#[tokio::test]
async fn reconciliation_finds_a_wrong_meta_category_on_postgres() {
    if let Some(s) = postgres_service("recon").await {
        reconciliation_scenario(&s).await;
    }
}

#[tokio::test]
async fn every_new_read_route_keeps_tenants_apart() {
    let s = sqlite_service().await;
    post_ok(
        &s,
        [
            account_line("W1", "P1", "UTC", ""),
            account_line("W2", "P2", "UTC", ""),
            sent_line(
                "a",
                "2025-11-05T10:00:00Z",
                "W1",
                PHONE,
                BR_USER,
                "marketing",
            ),
            sent_line(
                "b",
                "2025-11-05T10:00:00Z",
                "W2",
                "15550002222",
                BR_USER,
                "marketing",
            ),
        ]
        .join("\n"),
    )
    .await;
    s.state.engine.settle().await.unwrap();
    let store = s.state.engine.store().clone();
    let range = format!(
        "start={}&end={}",
        at("2025-11-01T00:00:00Z") / 1000,
        at("2025-12-01T00:00:00Z") / 1000
    );
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
        for (waba, expected) in [("W1", StatusCode::OK), ("W2", StatusCode::FORBIDDEN)] {
            let (status, v) = get_json(
                &s,
                key,
                &format!("/v1/usage?waba={waba}&{range}&granularity=MONTHLY"),
            )
            .await;
            assert_eq!(status, expected, "{key} usage {waba}: {v}");
            let (status, v) = get_json(
                &s,
                key,
                &format!("/v1/reconciliation?waba={waba}&month=2025-11"),
            )
            .await;
            assert_eq!(status, expected, "{key} reconciliation {waba}: {v}");
            let mut q = ask(waba, BR_USER, "marketing", "2025-11-05T12:00:00Z");
            if waba == "W2" {
                q["phone"] = json!("15550002222");
            }
            let (status, v) = check(&s, key, q).await;
            assert_eq!(status, expected, "{key} send check {waba}: {v}");
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(v["error"]["code"], "forbidden");
            }
        }
    }
    let (status, _) = get_json(&s, "nope", "/v1/reconciliation?waba=W1&month=2025-11").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let s = sqlite_service().await;
    let (status, text, _) = call(
        &s,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, ops) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(path.as_str())
                .body(Body::from("{}"))
                .unwrap();
            let (status, body, _) = call(&s, req).await;
            if ops.get(method).is_some() {
                documented += 1;
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                    "documented {method} {path} answers {status}"
                );
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "method_not_allowed");
            }
        }
    }
    // Every route of the router's list is documented, and nothing else.
    assert_eq!(documented, wabill_server::routes::ROUTES.len());
    for r in wabill_server::routes::ROUTES {
        assert!(paths[r.path].get(r.method.as_str()).is_some(), "{}", r.path);
    }
    let (status, body, _) =
        call(&s, Request::get("/v2/nothing").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not_found"), "{body}");
    // Error statuses in the document are those of the error table.
    let check_op = &paths["/v1/sends/check"]["post"]["responses"];
    assert!(check_op["422"]["description"]
        .as_str()
        .unwrap()
        .contains("missing_rate"));
    assert!(check_op["404"]["description"]
        .as_str()
        .unwrap()
        .contains("unknown_account"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let s = sqlite_service().await;
    let small = Arc::new(AppState {
        max_body_bytes: 1024,
        ..AppState::new(s.state.engine.clone(), vec![SECRET.to_vec()], "tok".into())
    });
    let big = "x".repeat(2048);
    for uri in ["/v1/events", "/v1/sends/check", "/webhooks/whatsapp"] {
        let resp = api::router(small.clone())
            .oneshot(
                Request::post(uri)
                    .header("authorization", format!("Bearer {}", s.admin))
                    .header("x-hub-signature-256", meta::sign(SECRET, big.as_bytes()))
                    .body(Body::from(big.clone()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        let v: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["error"]["code"], "payload_too_large", "{uri}");
    }
    // The default limit holds on the real state too.
    let too_big = "x".repeat(api::MAX_BODY_BYTES + 1);
    let (status, _, _) = call(&s, post_events(&s.admin, too_big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_restart_rerates_what_a_crash_left_unrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wabill.sqlite");
    let lines = generated(11, 1500);
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let engine = Engine::new(
            store.clone(),
            Arc::new(Tariff::bundled()),
            Default::default(),
        )
        .await
        .unwrap();
        let mut parsed = wabill_formats::Parsed::default();
        for (i, l) in lines.lines().enumerate() {
            wabill_formats::parse_line(l, i as u64 + 1, &mut parsed).unwrap();
        }
        let batch: Vec<(usize, wabill_rating::Event<'_>)> =
            parsed.events.into_iter().enumerate().collect();
        let half = batch.len() / 2;
        engine.ingest(&batch[..half]).await.unwrap();
        engine.settle().await.unwrap();
        assert_eq!(
            store.rated_seq().await.unwrap(),
            store.max_seq().await.unwrap()
        );
        // The rest is acknowledged, then the process dies before re-rating it.
        engine.ingest(&batch[half..]).await.unwrap();
        store.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let s = service_on(Box::new(store), dir).await;
    s.state.engine.settle().await.unwrap();
    let got = all_charges(&s, &s.admin, "").await;
    assert!(
        got == batch_rating(&lines),
        "charges after the restart differ from the batch"
    );
}

/// API keys are cached for at most `KEY_CACHE_TTL`: a revoked key stops working once it has
/// passed, however recently the key was used.
#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_time() {
    let s = sqlite_service().await;
    let store = s.state.engine.store().clone();
    let key = store
        .create_key(&NewApiKey {
            name: "soon-revoked".into(),
            role: Role::Reader,
            tenant_wabas: vec!["W1".into()],
            key_hash: hash_key("soon-revoked"),
        })
        .await
        .unwrap();
    let ask = || {
        Request::get("/v1/charges")
            .header("authorization", "Bearer soon-revoked")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&s, ask()).await.0, StatusCode::OK);
    assert!(store.revoke_key(key.id).await.unwrap());
    tokio::time::sleep(wabill_engine::cache::KEY_CACHE_TTL + std::time::Duration::from_millis(50))
        .await;
    let (status, body, _) = call(&s, ask()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("invalid_api_key"), "{body}");
}

/// The `--- events` lines of a golden scenario (tests/scenarios/), comments left out.
fn scenario_events(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if let Some(section) = l.strip_prefix("--- ") {
            inside = section.trim() == "events";
        } else if inside && !l.starts_with('#') && !l.trim().is_empty() {
            lines.push(l);
        }
    }
    lines.join("\n") + "\n"
}

/// Users known by BSUID (issue 14, point 3): Meta's envelopes with `from_user_id` and no `from`,
/// identity changes, and the platform's outbound lines naming `user_id`, sent in any order,
/// give through the service the charges `wabill rate` gives (decisions.md D101, D105).
#[tokio::test]
async fn users_known_by_bsuid_are_rated_through_the_service_as_in_the_batch() {
    for (name, seed) in [
        ("bsuid_username_inbound_opens_window.scn", 3),
        ("bsuid_link_learned_later.scn", 5),
        ("bsuid_number_change.scn", 7),
    ] {
        let lines = scenario_events(name);
        let expected = batch_rating(&lines);
        assert!(
            ["BR.", "MX."].iter().any(|b| expected.contains(b)),
            "{name}: some charge names a BSUID"
        );
        let s = sqlite_service().await;
        // Meta's envelopes through the signed webhook, the platform's lines through the API.
        let (hooks, own): (Vec<&str>, Vec<&str>) =
            lines.lines().partition(|l| l.starts_with(r#"{"object""#));
        send_shuffled(&s, &(own.join("\n") + "\n"), seed, false).await;
        for h in hooks {
            let req = Request::post("/webhooks/whatsapp")
                .header("x-hub-signature-256", meta::sign(SECRET, h.as_bytes()))
                .body(Body::from(h.to_string()))
                .unwrap();
            let (status, text, _) = call(&s, req).await;
            assert_eq!(status, StatusCode::OK, "{name}: {text}");
        }
        s.state.engine.settle().await.unwrap();
        let got = all_charges(&s, &s.admin, "").await;
        assert_eq!(
            got, expected,
            "{name}: stored charges differ from the batch rating"
        );
    }
}

/// A status that names its message's WABA (decisions.md D110) is that WABA's event: a key
/// scoped to W1 may not send one naming W2, even for an id no message of either has.
#[tokio::test]
async fn a_scoped_key_may_not_send_a_status_naming_another_waba() {
    let s = sqlite_service().await;
    let store = s.state.engine.store().clone();
    store
        .create_key(&NewApiKey {
            name: "sender-w1".into(),
            role: Role::Sender,
            tenant_wabas: vec!["W1".into()],
            key_hash: hash_key("sender-w1"),
        })
        .await
        .unwrap();
    let w2 = r#"{"kind":"status","id":"wamid.NEW","at":"2026-08-03T10:05:00Z","status":"sent","waba":"W2","phone":"15550001111","user":"5511988887777","category":"marketing"}"#;
    let (_, text, _) = call(&s, post_events("sender-w1", w2.into())).await;
    assert!(
        text.contains("may not send events for that WABA") && !text.contains("W2"),
        "{text}"
    );
    let w1 = w2.replace(r#""waba":"W2""#, r#""waba":"W1""#);
    let (status, text, _) = call(&s, post_events("sender-w1", w1)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""stored":1"#), "{text}");
}

/// What the OpenAPI document allows is what the service takes, and nothing else (decisions.md
/// D77): schemathesis checks it at large (scripts/schemathesis.sh); these are the cases it
/// found, pinned.
#[tokio::test]
async fn the_document_states_what_the_service_takes() {
    let s = sqlite_service().await;
    let get = |uri: String| {
        Request::get(uri)
            .header("authorization", format!("Bearer {}", s.admin))
            .body(Body::empty())
            .unwrap()
    };
    // A limit out of 1..=10000 and an unknown format are refused, not replaced.
    for q in ["limit=0", "limit=10001", "format=xml"] {
        let (status, text, _) = call(&s, get(format!("/v1/charges?{q}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {text}");
        assert!(text.contains("invalid_parameter"), "{text}");
    }
    for q in ["limit=1", "limit=10000", "format=json", "format=csv"] {
        let (status, text, _) = call(&s, get(format!("/v1/charges?{q}"))).await;
        assert_eq!(status, StatusCode::OK, "{q}: {text}");
    }
    // Sent as application/json, the events body is JSON: one value, or refused whole.
    let post_json = |body: &str| {
        Request::post("/v1/events")
            .header("authorization", format!("Bearer {}", s.admin))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, text, _) = call(&s, post_json("\u{0}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("invalid_body"), "{text}");
    let pretty = "{\n  \"kind\": \"account\",\n  \"waba\": \"W9\",\n  \"currency\": \"USD\"\n}";
    let (status, text, _) = call(&s, post_json(pretty)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        json(&text)["stored"],
        1,
        "one JSON value is one item: {text}"
    );

    // Every instant the document's pattern allows is taken, at the edges of the pattern.
    let pattern = wabill_server::openapi::INSTANT_PATTERN;
    for at in [
        "2001-01-01T00:00:00+13:59",
        "2099-12-28T23:59:59.999-13:59",
        "2050-02-28T12:00:00.5Z",
        "1000000000",
        "3999999999",
    ] {
        assert!(
            wabill_formats::time::parse_instant(at).is_ok(),
            "{at} matches {pattern} and must be taken"
        );
    }

    // The document: the JSON array alternative, other renderings, nullable answers, closed
    // request objects.
    let doc = wabill_server::openapi::document();
    let events = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"];
    assert!(events["application/json"].is_object(), "{events}");
    assert!(
        doc["paths"]["/v1/charges"]["get"]["responses"]["200"]["content"]["text/csv"].is_object()
    );
    let invoice =
        &doc["paths"]["/v1/tenants/{id}/invoices/{month}"]["get"]["responses"]["200"]["content"];
    assert!(invoice["text/html"].is_object() && invoice["text/csv"].is_object());
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Charge"]["properties"]["rate"]["nullable"], true);
    assert_eq!(
        schemas["Charge"]["properties"]["billed_at"]["nullable"],
        true
    );
    for name in [
        "SendCheckRequest",
        "TenantSetup",
        "LicenceRecord",
        "AlertSettingsRequest",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    // A send check with an unknown field, or an empty phone, is refused as the schema says.
    let check = |body: &str| {
        Request::post("/v1/sends/check")
            .header("authorization", format!("Bearer {}", s.admin))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    for body in [
        r#"{"waba":"W1","phone":"15550001111","user":"5511988887777","type":"text","colour":"red"}"#,
        r#"{"waba":"W1","phone":"","user":"5511988887777","type":"text"}"#,
        r#"{"waba":" ","phone":"15550001111","user":"5511988887777","type":"text"}"#,
    ] {
        let (status, text, _) = call(&s, check(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// The send check names the cheapest allowed way to reach the user now, priced by the rating
/// core like the message asked about (decisions.md D98).
#[tokio::test]
async fn the_send_check_names_the_cheapest_allowed_way() {
    let s = sqlite_service().await;
    let tariff = Tariff::bundled();
    let events = [
        account_line("W1", "P1", "UTC", ""),
        inbound_line("i1", "2025-11-03T10:00:00Z", "W1", PHONE, BR_USER, false),
        inbound_line(
            "i4",
            "2026-10-05T10:00:00Z",
            "W1",
            PHONE,
            "5511977770004",
            false,
        ),
    ]
    .join("\n");
    post_ok(&s, events.clone()).await;
    s.state.engine.settle().await.unwrap();
    let amount = |v: &Value| -> wabill_rating::Decimal { v.as_str().unwrap().parse().unwrap() };

    // A marketing template inside the window: a free-form message reaches the user for less.
    let q = ask("W1", BR_USER, "marketing", "2025-11-03T11:00:00Z");
    let (st, a) = check(&s, &s.admin, q.clone()).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(priced(&a), core_says(&tariff, &events, &q));
    let text = core_says(
        &tariff,
        &events,
        &ask("W1", BR_USER, "text", "2025-11-03T11:00:00Z"),
    );
    let c = &a["cheapest"];
    assert_eq!(
        (&c["type"], &c["amount"]),
        (&json!("text"), &text["amount"]),
        "{a}"
    );
    assert_eq!(c["pricing_type"], text["type"]);
    let saving = amount(&a["charge"]["amount"]) - amount(&text["amount"]);
    assert!(saving.is_positive(), "{a}");
    assert_eq!(c["saving"], json!(saving.to_string()));

    // A free-form message after the window closed is not allowed: a utility template is the
    // way, at the core's utility price.
    let q = ask("W1", BR_USER, "text", "2025-11-05T11:00:00Z");
    let (_, a) = check(&s, &s.admin, q).await;
    assert_eq!(a["allowed"], false, "{a}");
    let utility = core_says(
        &tariff,
        &events,
        &ask("W1", BR_USER, "utility", "2025-11-05T11:00:00Z"),
    );
    let c = &a["cheapest"];
    assert_eq!(
        (&c["type"], &c["category"], &c["amount"], &c["saving"]),
        (
            &json!("template"),
            &json!("utility"),
            &utility["amount"],
            &Value::Null
        ),
        "{a}"
    );

    // A marketing template outside the window has no cheaper allowed way; a free message none.
    let (_, a) = check(
        &s,
        &s.admin,
        ask("W1", BR_USER, "marketing", "2025-11-05T11:00:00Z"),
    )
    .await;
    assert!(
        a["charge"]["billable"] == true && a["cheapest"].is_null(),
        "{a}"
    );
    let (_, a) = check(
        &s,
        &s.admin,
        ask("W1", BR_USER, "text", "2025-11-03T11:00:00Z"),
    )
    .await;
    assert!(a["allowed"] == true && a["cheapest"].is_null(), "{a}");

    // From 2026-10-01 a utility template inside the window is charged, while a service message
    // is among the month's free ones: the free-form message is cheaper.
    let now = "2026-10-05T11:00:00Z";
    let q = ask("W1", "5511977770004", "utility", now);
    let (_, a) = check(&s, &s.admin, q.clone()).await;
    assert_eq!(priced(&a), core_says(&tariff, &events, &q));
    let service = core_says(&tariff, &events, &ask("W1", "5511977770004", "text", now));
    if amount(&a["charge"]["amount"]) > amount(&service["amount"]) {
        assert_eq!(a["cheapest"]["amount"], service["amount"], "{a}");
        assert_eq!(a["cheapest"]["type"], "text");
    } else {
        assert!(a["cheapest"].is_null(), "{a}");
    }
}
