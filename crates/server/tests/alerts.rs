//! Budget alerts through the service: settings per tenant, alerts emitted once per threshold
//! and month as re-rated charges cross them, delivered to a real HTTP listener on 127.0.0.1,
//! signed with the tenant's secret, retried with backoff after a failure, never resent after a
//! restart, and visible only to keys that may read the tenant. In-process router over SQLite
//! in a temp dir and PostgreSQL in a fresh schema (required when CI is set).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use wabill_engine::alerts::{run_once, seal_stored_secrets, AlertConfig};
use wabill_engine::destinations::AllowedNetworks;
use wabill_engine::meta::verify_signature;
use wabill_engine::secrets::{is_sealed, SecretKeys};
use wabill_formats::time::parse_instant;
use wabill_rating::Tariff;
use wabill_server::alert_http::ReqwestPoster;
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{AlertSettingsRow, NewApiKey, PgStore, Role, SqliteStore, Store};

const ADMIN: &str = "admin-key-123";
const ACME: &str = "acme-reader-key";
const GLOBEX: &str = "globex-reader-key";
const PHONE: &str = "15550001111";
const USER: &str = "5511988887777";
const SECRET: &str = "hook-secret-1";

mod support;

enum Db {
    Sqlite(tempfile::TempDir),
    /// The schema is dropped with the `Db`, at the test's end.
    Postgres(support::PgSchema),
}

impl Db {
    async fn open(&self) -> Box<dyn Store> {
        match self {
            Db::Sqlite(dir) => Box::new(
                SqliteStore::open(dir.path().join("wabill.sqlite"))
                    .await
                    .unwrap(),
            ),
            Db::Postgres(schema) => Box::new(
                PgStore::open_in_schema(&schema.url, &schema.name)
                    .await
                    .unwrap(),
            ),
        }
    }
}

struct Service {
    db: Db,
    state: Arc<AppState>,
}

async fn start(db: Db, create_keys: bool) -> Service {
    let store: Arc<dyn Store> = Arc::from(db.open().await);
    if create_keys {
        for (name, role, wabas, key) in [
            ("admin", Role::Admin, vec![], ADMIN),
            ("acme", Role::Reader, vec!["W1".to_string()], ACME),
            ("globex", Role::Reader, vec!["W2".to_string()], GLOBEX),
        ] {
            store
                .create_key(&NewApiKey {
                    name: name.into(),
                    role,
                    tenant_wabas: wabas,
                    key_hash: hash_key(key),
                })
                .await
                .unwrap();
        }
    }
    let engine = Engine::new(store, Arc::new(Tariff::bundled()), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState {
        alerts: config(),
        ..AppState::new(engine, vec![b"s".to_vec()], "tok".into())
    });
    Service { db, state }
}

/// The service's secrets key in these tests.
fn secrets() -> SecretKeys {
    SecretKeys::new(vec![[7; 32]])
}

async fn postgres_db(test: &str) -> Option<Db> {
    let schema = support::PgSchema::new("alr", test).await;
    let url = schema.url.clone();
    match PgStore::open_in_schema(&url, &schema.name).await {
        Ok(store) => {
            store.close().await.unwrap();
            Some(Db::Postgres(schema))
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

async fn call(s: &Service, method: &str, uri: &str, key: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body).to_string();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}: {text}")),
    )
}

fn sent(id: &str, when: &str) -> String {
    let delivered = wabill_formats::time::format_instant(parse_instant(when).unwrap() + 2000);
    format!(
        "{{\"kind\":\"outbound\",\"id\":\"{id}\",\"at\":\"{when}\",\"waba\":\"W1\",\"phone\":\"{PHONE}\",\"user\":\"{USER}\",\"type\":\"template\",\"category\":\"marketing\"}}\n{{\"kind\":\"status\",\"id\":\"{id}\",\"at\":\"{delivered}\",\"status\":\"delivered\"}}\n"
    )
}

async fn ingest(s: &Service, lines: String) {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/events")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(lines))
        .unwrap();
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.state.engine.settle().await.unwrap();
}

/// A webhook receiver on 127.0.0.1: records every request, answers 500 while `fail` > 0.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(HeaderMap, Bytes)>>,
    fail: AtomicU32,
}

impl Receiver {
    fn keys(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h["x-wabill-alert"].to_str().unwrap().to_string())
            .collect()
    }
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let shared = r.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let r = shared.clone();
            async move {
                r.got.lock().unwrap().push((headers, body));
                let failing = r
                    .fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, format!("http://{addr}/hook"))
}

fn config() -> AlertConfig {
    AlertConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        max_attempts: 4,
        timeout: Duration::from_secs(5),
        secrets: Some(secrets()),
        // The receivers of these tests listen on 127.0.0.1.
        networks: AllowedNetworks::parse("127.0.0.0/8").unwrap(),
        ..AlertConfig::default()
    }
}

async fn round(s: &Service, now: i64) {
    let poster = ReqwestPoster::new(config().timeout, config().networks).unwrap();
    run_once(&**s.state.engine.store(), &config(), &poster, now)
        .await
        .unwrap();
}

async fn scenario(db: Db) {
    let s = start(db, true).await;
    let (hook, url) = receiver().await;
    let account = |w: &str, p: &str| {
        format!(
            r#"{{"kind":"account","waba":"{w}","portfolio":"{p}","timezone":"UTC","currency":"USD","primary_country":"BR"}}"#
        )
    };
    ingest(
        &s,
        format!(
            "{}\n{}\n{}",
            account("W1", "P1"),
            account("W2", "P2"),
            sent("m1", "2026-02-10T12:00:00Z")
        ),
    )
    .await;
    let (_, charges) = call(&s, "GET", "/v1/charges?waba=W1", ADMIN, "").await;
    let c1: f64 = charges["charges"][0]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(c1 > 0.0, "{charges}");
    // One licensed agent, one block: a budget between one and two messages' cost, and an
    // absolute threshold between two and three.
    let budget = (c1 * 150.0).ceil() / 100.0;
    assert!(c1 < budget && budget <= 2.0 * c1, "{c1} {budget}");
    let spend_limit = format!("{:.4}", 2.5 * c1);
    let setup = json!({
        "tenant": {"id": "acme", "timezone": "UTC", "currency": "USD", "wabas": ["W1"]},
        "agents": [{"id": "a1"}],
        "licences": [{"id": "L1", "target": {"agent": "a1"}, "from": "2026-01-01", "to": null}],
        "plans": [{"effective_from": "2026-01-01", "active_agent_rule": "licensed",
                   "budget": {"per_agents": 10, "amount": format!("{budget:.2}"), "currency": "USD"}}],
    });
    let (st, v) = call(&s, "PUT", "/v1/tenants/acme", ADMIN, &setup.to_string()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let globex = json!({"tenant": {"id": "globex", "timezone": "UTC", "currency": "USD", "wabas": ["W2"]},
                        "plans": [{"effective_from": "2026-01-01"}]});
    let (st, _) = call(&s, "PUT", "/v1/tenants/globex", ADMIN, &globex.to_string()).await;
    assert_eq!(st, StatusCode::OK);

    // Settings: admin only, validated, the secret never shown.
    let settings = json!({"url": url, "secret": SECRET,
        "thresholds": [{"percent": "100"}, {"percent": "50"}, {"spend": spend_limit}]})
    .to_string();
    let put = "/v1/tenants/acme/alerts/settings";
    let (st, _) = call(&s, "PUT", put, ACME, &settings).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    for bad in [
        json!({"url": "ftp://example.com/", "secret": "x", "thresholds": [{"percent": "50"}]}),
        json!({"url": "https://u:p@example.com/", "secret": "x", "thresholds": [{"percent": "50"}]}),
        json!({"url": url, "thresholds": [{"percent": "50"}]}),
        json!({"url": url, "secret": "x", "thresholds": []}),
        json!({"url": url, "secret": "x", "thresholds": [{"percent": "50"}], "extra": 1}),
    ] {
        let (st, v) = call(&s, "PUT", put, ADMIN, &bad.to_string()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, v) = call(
        &s,
        "PUT",
        "/v1/tenants/nobody/alerts/settings",
        ADMIN,
        &settings,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = call(&s, "PUT", put, ADMIN, &settings).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["settings"]["secret_set"], true);
    assert!(!v.to_string().contains(SECRET), "{v}");

    // m1 reaches 50 % only: one alert, delivered once, signed with the tenant's secret.
    let now = parse_instant("2026-02-15T00:00:00Z").unwrap();
    round(&s, now).await;
    round(&s, now + 10).await;
    assert_eq!(hook.keys(), ["2026-02/percent:50"]);
    {
        let (headers, body) = hook.got.lock().unwrap()[0].clone();
        let body = &body;
        let sig = headers["x-wabill-signature-256"].to_str().unwrap();
        verify_signature(&[SECRET.as_bytes().to_vec()], body, Some(sig)).unwrap();
        assert!(verify_signature(&[b"other".to_vec()], body, Some(sig)).is_err());
        let p: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (&p["tenant"], &p["month"], &p["threshold"], &p["currency"]),
            (
                &json!("acme"),
                &json!("2026-02"),
                &json!({"percent": "50"}),
                &json!("USD")
            ),
            "{p}"
        );
        assert_eq!(p["budget"], format!("{budget:.2}").trim_end_matches('0'));
        let (_, inv) = call(&s, "GET", "/v1/tenants/acme/invoices/2026-02", ADMIN, "").await;
        assert_eq!(p["spend"], inv["budget"]["used"], "{inv}");
        assert_eq!(p["budget"], inv["budget"]["included"], "{inv}");
        assert_eq!(p["at"], "2026-02-15T00:00:00Z");
    }

    // m2 reaches 100 %; the receiver fails the first attempt: retried after the backoff, not
    // before, then delivered with the same bytes.
    hook.fail.store(1, Ordering::SeqCst);
    ingest(&s, sent("m2", "2026-02-11T12:00:00Z")).await;
    round(&s, now + 1000).await;
    assert_eq!(hook.keys().len(), 2);
    let (_, v) = call(&s, "GET", "/v1/tenants/acme/alerts", ACME, "").await;
    let pending = &v["alerts"][0];
    assert_eq!(
        (
            &pending["key"],
            &pending["state"],
            &pending["attempts"],
            &pending["last_error"]
        ),
        (
            &json!("2026-02/percent:100"),
            &json!("pending"),
            &json!(1),
            &json!("HTTP 500")
        ),
        "{v}"
    );
    round(&s, now + 1050).await;
    assert_eq!(hook.keys().len(), 2, "not before the backoff");
    round(&s, now + 1100).await;
    assert_eq!(
        hook.keys(),
        [
            "2026-02/percent:50",
            "2026-02/percent:100",
            "2026-02/percent:100"
        ]
    );
    {
        let got = hook.got.lock().unwrap();
        assert_eq!(got[1].1, got[2].1, "every attempt sends the same bytes");
        for (headers, body) in got.iter() {
            let sig = headers["x-wabill-signature-256"].to_str().unwrap();
            verify_signature(&[SECRET.as_bytes().to_vec()], body, Some(sig)).unwrap();
        }
    }

    // m3 crosses the absolute spend; a repeat round sends nothing more.
    ingest(&s, sent("m3", "2026-02-12T12:00:00Z")).await;
    round(&s, now + 2000).await;
    round(&s, now + 3000).await;
    let keys = hook.keys();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(
        keys[3],
        format!("2026-02/spend:{}", spend_limit.trim_end_matches('0'))
    );

    // A restart (new store connection, new engine) resends nothing: it is all stored.
    let db = {
        let Service { db, state } = s;
        state.engine.store().close().await.unwrap();
        db
    };
    let s = start(db, false).await;
    round(&s, now + 4000).await;
    round(&s, now + 60_000).await;
    assert_eq!(hook.keys().len(), 4);
    let (st, v) = call(&s, "GET", "/v1/tenants/acme/alerts", ACME, "").await;
    assert_eq!(st, StatusCode::OK);
    let states: Vec<(&str, &str, u64)> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap(),
                a["state"].as_str().unwrap(),
                a["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    let spend_key = keys[3].clone();
    assert_eq!(
        states,
        [
            ("2026-02/percent:100", "delivered", 2),
            ("2026-02/percent:50", "delivered", 1),
            (spend_key.as_str(), "delivered", 1),
        ]
    );
    assert!(v["alerts"][0]["delivered_at"].is_string(), "{v}");
    assert!(!v.to_string().contains(SECRET), "{v}");
    assert_eq!(v["settings"]["url"], url);

    // Another tenant's key reads nothing of it, exactly as a missing tenant.
    let (st, v) = call(&s, "GET", "/v1/tenants/acme/alerts", GLOBEX, "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_tenant");
    assert!(!v.to_string().contains("percent"), "{v}");
    let (st, v) = call(&s, "GET", "/v1/tenants/globex/alerts", GLOBEX, "").await;
    assert_eq!(
        (st, &v["alerts"], &v["settings"]),
        (StatusCode::OK, &json!([]), &Value::Null)
    );

    // The document lists both routes.
    let (_, doc) = call(&s, "GET", "/openapi.json", ADMIN, "").await;
    assert!(doc["paths"]["/v1/tenants/{id}/alerts/settings"]["put"].is_object());
    assert!(doc["paths"]["/v1/tenants/{id}/alerts"]["get"].is_object());
}

#[tokio::test]
async fn budget_alerts_are_delivered_once_on_sqlite() {
    scenario(Db::Sqlite(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn budget_alerts_are_delivered_once_on_postgres() {
    if let Some(db) = postgres_db("once").await {
        scenario(db).await;
    }
}

/// The service's worker (as `wabill serve` runs it), on the real clock: an alert reached by a
/// charge of the current month is evaluated after re-rating and delivered without a call.
#[tokio::test]
async fn the_alert_worker_delivers_after_rerating() {
    let s = start(Db::Sqlite(tempfile::tempdir().unwrap()), true).await;
    let (hook, url) = receiver().await;
    let worker = tokio::spawn(wabill_engine::alerts::alert_loop(
        s.state.engine.clone(),
        AlertConfig {
            tick: Duration::from_millis(20),
            evaluate_every: Duration::from_millis(50),
            ..config()
        },
        std::sync::Arc::new(ReqwestPoster::new(config().timeout, config().networks).unwrap()),
    ));
    let setup = json!({
        "tenant": {"id": "acme", "timezone": "UTC", "currency": "USD", "wabas": ["W1"]},
        "plans": [{"effective_from": "2023-06-01"}],
    });
    let (st, _) = call(&s, "PUT", "/v1/tenants/acme", ADMIN, &setup.to_string()).await;
    assert_eq!(st, StatusCode::OK);
    let settings = json!({"url": url, "secret": SECRET, "thresholds": [{"spend": "0.000000001"}]});
    let (st, _) = call(
        &s,
        "PUT",
        "/v1/tenants/acme/alerts/settings",
        ADMIN,
        &settings.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let at = wabill_formats::time::format_instant(wabill_engine::clock::system_now() - 1000);
    ingest(
        &s,
        format!(
            "{}\n{}",
            r#"{"kind":"account","waba":"W1","portfolio":"P1","timezone":"UTC","currency":"USD","primary_country":"BR"}"#,
            sent("m1", &at)
        ),
    )
    .await;
    for _ in 0..250 {
        if !hook.keys().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.abort();
    let keys = hook.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("/spend:0.000000001"), "{keys:?}");
}

/// `PUT /v1/tenants/acme/alerts/settings` with `body` by the admin key.
async fn put_settings(s: &Service, body: &Value) -> (StatusCode, Value) {
    call(
        s,
        "PUT",
        "/v1/tenants/acme/alerts/settings",
        ADMIN,
        &body.to_string(),
    )
    .await
}

/// The same engine and store as `s`, served with other alert settings.
fn with_alerts(s: &Service, alerts: AlertConfig) -> Service {
    Service {
        db: Db::Sqlite(tempfile::tempdir().unwrap()),
        state: Arc::new(AppState {
            alerts,
            ..AppState::new(s.state.engine.clone(), vec![], String::new())
        }),
    }
}

async fn put_acme(s: &Service) {
    let setup = json!({
        "tenant": {"id": "acme", "timezone": "UTC", "currency": "USD", "wabas": ["W1"]},
        "agents": [{"id": "a1"}],
        "plans": [{"effective_from": "2023-06-01"}],
    });
    let (st, _) = call(s, "PUT", "/v1/tenants/acme", ADMIN, &setup.to_string()).await;
    assert_eq!(st, StatusCode::OK);
}

/// A signing secret is stored sealed under the configured key, bound to its tenant, never as
/// given; deliveries are still signed with the secret itself. Without a key, settings with a
/// secret are refused and nothing is stored (decisions.md D86).
#[tokio::test]
async fn signing_secrets_are_sealed_at_rest() {
    let s = start(Db::Sqlite(tempfile::tempdir().unwrap()), true).await;
    put_acme(&s).await;
    let (hook, url) = receiver().await;
    let settings = json!({"url": url, "secret": SECRET, "thresholds": [{"spend": "0.000000001"}]});
    let (st, body) = put_settings(&s, &settings).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let stored = s
        .state
        .engine
        .store()
        .alert_settings("acme")
        .await
        .unwrap()
        .unwrap();
    assert!(is_sealed(&stored.secret), "{}", stored.secret);
    assert!(!stored.secret.contains(SECRET));
    assert_eq!(secrets().open("acme", &stored.secret).unwrap(), SECRET);
    // Moved to another tenant's row, it does not open.
    assert!(secrets().open("globex", &stored.secret).is_err());
    // Omitting the secret keeps the sealed one.
    let keep = json!({"url": url, "thresholds": [{"spend": "0.000000001"}]});
    let (st, _) = put_settings(&s, &keep).await;
    assert_eq!(st, StatusCode::OK);
    let again = s
        .state
        .engine
        .store()
        .alert_settings("acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.secret, stored.secret);
    // A delivery is signed with the secret itself.
    ingest(&s, account_w1()).await;
    ingest(&s, sent("m1", "2026-11-10T10:00:00Z")).await;
    round(&s, parse_instant("2026-11-10T12:00:00Z").unwrap()).await;
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let sig = got[0].0["x-wabill-signature-256"].to_str().unwrap();
    verify_signature(&[SECRET.as_bytes().to_vec()], &got[0].1, Some(sig)).unwrap();

    // The same service without a key refuses to store a new secret.
    let bare = with_alerts(
        &s,
        AlertConfig {
            secrets: None,
            ..config()
        },
    );
    let other = json!({"url": url, "secret": "new-secret", "thresholds": [{"percent": "80"}]});
    let (st, body) = put_settings(&bare, &other).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "secrets_key_missing");
    let unchanged = s
        .state
        .engine
        .store()
        .alert_settings("acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.secret, stored.secret);
}

/// A secret stored plain (before sealing existed) is sealed when the service starts with a
/// key, and still signs deliveries.
#[tokio::test]
async fn secrets_stored_plain_are_sealed_at_start() {
    let s = start(Db::Sqlite(tempfile::tempdir().unwrap()), true).await;
    put_acme(&s).await;
    let store = s.state.engine.store();
    store
        .put_alert_settings(&AlertSettingsRow {
            tenant: "acme".into(),
            thresholds: r#"[{"spend":"0.000000001"}]"#.into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: SECRET.into(),
            updated_at_ms: 1,
        })
        .await
        .unwrap();
    assert_eq!(seal_stored_secrets(&**store, &secrets()).await.unwrap(), 1);
    let row = store.alert_settings("acme").await.unwrap().unwrap();
    assert!(is_sealed(&row.secret));
    assert_eq!(secrets().open("acme", &row.secret).unwrap(), SECRET);
    assert_eq!(seal_stored_secrets(&**store, &secrets()).await.unwrap(), 0);
}

/// Alert URLs on loopback, private or link-local addresses are refused unless the
/// configuration allows their network, when set and again at each delivery (D87).
#[tokio::test]
async fn alerts_go_to_public_addresses_unless_allowed() {
    let s = start(Db::Sqlite(tempfile::tempdir().unwrap()), true).await;
    put_acme(&s).await;
    let strict = with_alerts(
        &s,
        AlertConfig {
            networks: AllowedNetworks::default(),
            ..config()
        },
    );
    for url in [
        "http://127.0.0.1:8080/h",
        "http://localhost/h",
        "http://[::1]:80/h",
        "http://10.0.0.1/h",
        "http://169.254.169.254/latest/meta-data",
        "https://192.168.1.10/h",
    ] {
        let body = json!({"url": url, "secret": SECRET, "thresholds": [{"percent": "80"}]});
        let (st, answer) = put_settings(&strict, &body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("alert-allow-networks"),
            "{answer}"
        );
    }
    assert!(s
        .state
        .engine
        .store()
        .alert_settings("acme")
        .await
        .unwrap()
        .is_none());
    // Allowed where the configuration says so (the test's receiver on 127.0.0.1)...
    let (hook, url) = receiver().await;
    let body = json!({"url": url, "secret": SECRET, "thresholds": [{"spend": "0.000000001"}]});
    let (st, _) = put_settings(&s, &body).await;
    assert_eq!(st, StatusCode::OK);
    // ... but a delivery under a stricter policy is refused, and recorded as a failed attempt.
    ingest(&s, account_w1()).await;
    ingest(&s, sent("m1", "2026-11-10T10:00:00Z")).await;
    let strict_config = AlertConfig {
        networks: AllowedNetworks::default(),
        ..config()
    };
    let poster = ReqwestPoster::new(strict_config.timeout, strict_config.networks.clone()).unwrap();
    run_once(
        &**s.state.engine.store(),
        &strict_config,
        &poster,
        parse_instant("2026-11-10T12:00:00Z").unwrap(),
    )
    .await
    .unwrap();
    assert!(hook.got.lock().unwrap().is_empty());
    let alerts = s.state.engine.store().alerts("acme").await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attempts, 1);
    assert!(
        alerts[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("loopback"),
        "{:?}",
        alerts[0].last_error
    );
}

/// Admin actions are in the audit log, who, what and when, in order; what changed nothing is
/// not; only admin keys read it (D88).
#[tokio::test]
async fn admin_actions_are_audited() {
    let s = start(Db::Sqlite(tempfile::tempdir().unwrap()), true).await;
    put_acme(&s).await;
    // The same set-up again changes nothing.
    put_acme(&s).await;
    let licence = json!({"id": "L1", "target": {"agent": "a1"}, "from": "2026-11-01"});
    let (st, body) = call(
        &s,
        "POST",
        "/v1/tenants/acme/licences",
        ADMIN,
        &licence.to_string(),
    )
    .await;
    assert_ne!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (hook, url) = receiver().await;
    drop(hook);
    let settings = json!({"url": url, "secret": SECRET, "thresholds": [{"percent": "80"}]});
    let (st, _) = put_settings(&s, &settings).await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = call(
        &s,
        "POST",
        "/v1/tenants/acme/invoices/2026-10/finalize",
        ADMIN,
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, log) = call(&s, "GET", "/v1/audit", ADMIN, "").await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    let mut expected = vec![("tenant.put", "acme")];
    if st == StatusCode::OK && actions.iter().any(|a| a.0 == "licence.add") {
        expected.push(("licence.add", "acme"));
    }
    expected.extend([
        ("alert_settings.put", "acme"),
        ("invoice.finalize", "acme/2026-10"),
    ]);
    assert_eq!(actions, expected);
    for e in entries {
        assert!(
            e["actor"].as_str().unwrap().starts_with("key:")
                && e["actor"].as_str().unwrap().ends_with(":admin"),
            "{e}"
        );
        assert!(parse_instant(e["at"].as_str().unwrap()).is_ok());
    }
    // Paging.
    let first = entries[0]["id"].as_i64().unwrap();
    let (_, page) = call(
        &s,
        "GET",
        &format!("/v1/audit?after={first}&limit=1"),
        ADMIN,
        "",
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0], entries[1]);
    // A reader key may not read it.
    let (st, body) = call(&s, "GET", "/v1/audit", ACME, "").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
}

fn account_w1() -> String {
    r#"{"kind":"account","waba":"W1","portfolio":"P1","timezone":"UTC","currency":"USD","primary_country":"BR"}"#.to_string() + "\n"
}
