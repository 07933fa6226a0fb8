//! Tenant billing through the service: set-ups kept as versions, licence history, invoices of
//! stored charges, finalized once, tenant isolation on every read route, and the send check's
//! `license_required`. In-process router over SQLite in a temp dir and PostgreSQL in a fresh
//! schema (required when CI is set).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use wabill_rating::Tariff;
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const ADMIN: &str = "admin-key-123";
const ACME: &str = "acme-reader-key";
const GLOBEX: &str = "globex-reader-key";
const PHONE: &str = "15550001111";
const USER: &str = "5511988887777";

mod support;

struct Service {
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
    /// Dropped last: the PostgreSQL schema goes once the service has.
    _schema: Option<support::PgSchema>,
}

async fn service_on(store: Box<dyn Store>, dir: tempfile::TempDir) -> Service {
    let store: Arc<dyn Store> = Arc::from(store);
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
    let engine = Engine::new(store, Arc::new(Tariff::bundled()), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(engine, vec![b"s".to_vec()], "tok".into()));
    Service {
        state,
        _dir: dir,
        _schema: None,
    }
}

async fn sqlite_service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite"))
        .await
        .unwrap();
    service_on(Box::new(store), dir).await
}

async fn postgres_service(test: &str) -> Option<Service> {
    let schema = support::PgSchema::new("ten", test).await;
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

async fn call(
    s: &Service,
    method: &str,
    uri: &str,
    key: &str,
    body: &str,
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string(), ct)
}

async fn json_call(
    s: &Service,
    method: &str,
    uri: &str,
    key: &str,
    body: &str,
) -> (StatusCode, Value) {
    let (status, text, _) = call(s, method, uri, key, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}: {text}")),
    )
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn sent(id: &str, when: &str, waba: &str) -> String {
    let delivered = wabill_formats::time::format_instant(
        wabill_formats::time::parse_instant(when).unwrap() + 2000,
    );
    format!(
        "{{\"kind\":\"outbound\",\"id\":\"{id}\",\"at\":\"{when}\",\"waba\":\"{waba}\",\"phone\":\"{PHONE}\",\"user\":\"{USER}\",\"type\":\"template\",\"category\":\"marketing\"}}\n{{\"kind\":\"status\",\"id\":\"{id}\",\"at\":\"{delivered}\",\"status\":\"delivered\"}}\n"
    )
}

async fn ingest(s: &Service, lines: String) {
    let (status, text, _) = call(s, "POST", "/v1/events", ADMIN, &lines).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    s.state.engine.settle().await.unwrap();
}

fn acme_setup(licences: Value) -> String {
    json!({
        "tenant": {"id": "acme", "timezone": "UTC", "currency": "USD", "wabas": ["W1"]},
        "agents": [{"id": "a1"}, {"id": "a2"}],
        "licences": licences,
        "plans": [{"effective_from": "2026-01-01", "licence_price": "10"}],
    })
    .to_string()
}

fn amount(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

async fn scenario(s: &Service) {
    let account = |w: &str, p: &str| {
        format!(
            r#"{{"kind":"account","waba":"{w}","portfolio":"{p}","timezone":"UTC","currency":"USD","primary_country":"BR"}}"#
        )
    };
    ingest(
        s,
        format!(
            "{}\n{}\n{}{}",
            account("W1", "P1"),
            account("W2", "P2"),
            sent("m1", "2026-02-10T12:00:00Z", "W1"),
            sent("m2", "2026-02-11T12:00:00Z", "W2"),
        ),
    )
    .await;

    // Set-ups: admin only; a WABA belongs to one tenant.
    let l1 = json!([{"id": "L1", "target": {"agent": "a1"}, "from": "2026-02-01", "to": null}]);
    let (st, v) = json_call(s, "PUT", "/v1/tenants/acme", ACME, &acme_setup(l1.clone())).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (st, v) = json_call(s, "PUT", "/v1/tenants/acme", ADMIN, &acme_setup(l1.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["recorded"], true);
    let v1 = v["version"].as_i64().unwrap();
    let (st, v) = json_call(s, "PUT", "/v1/tenants/acme", ADMIN, &acme_setup(l1.clone())).await;
    assert_eq!(
        (st, &v["recorded"], v["version"].as_i64()),
        (StatusCode::OK, &json!(false), Some(v1))
    );
    let globex = |wabas: Value| {
        json!({"tenant": {"id": "globex", "timezone": "UTC", "currency": "USD", "wabas": wabas},
               "plans": [{"effective_from": "2026-01-01"}]})
        .to_string()
    };
    let (st, v) = json_call(
        s,
        "PUT",
        "/v1/tenants/globex",
        ADMIN,
        &globex(json!(["W1"])),
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "waba_taken"));
    let (st, _) = json_call(
        s,
        "PUT",
        "/v1/tenants/globex",
        ADMIN,
        &globex(json!(["W2"])),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = json_call(s, "PUT", "/v1/tenants/other", ADMIN, &globex(json!(["W3"]))).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "path and body ids differ"
    );

    // Isolation: every read route answers a tenant's key for its tenant only, and another's
    // tenant exactly as a missing one.
    for uri in [
        "/v1/tenants/acme",
        "/v1/tenants/acme/invoices/2026-02",
        "/v1/tenants/acme/invoices/2026-02?format=csv",
        "/v1/tenants/acme/invoices/2026-02?format=html",
    ] {
        let (st, _, _) = call(s, "GET", uri, ACME, "").await;
        assert_eq!(st, StatusCode::OK, "{uri}");
        let (st, text, _) = call(s, "GET", uri, GLOBEX, "").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{uri}: {text}");
        assert!(text.contains("unknown_tenant"), "{text}");
        assert!(!text.contains("W1") && !text.contains("a1"), "{text}");
    }
    let (st, _) = json_call(s, "GET", "/v1/tenants/globex", GLOBEX, "").await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = json_call(s, "GET", "/v1/tenants/nobody", ADMIN, "").await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "unknown_tenant"));
    for (method, uri) in [
        ("POST", "/v1/tenants/acme/invoices/2026-02/finalize"),
        ("POST", "/v1/tenants/acme/licences"),
    ] {
        let (st, _, _) = call(s, method, uri, GLOBEX, "{}").await;
        assert!(
            st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN,
            "{uri}: {st}"
        );
        let (st, _, _) = call(s, method, uri, ACME, "{}").await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{uri}: a reader key never writes"
        );
    }

    // The draft: a1's licence for the whole month and W1's charge, nothing of W2.
    let (_, charges) = json_call(s, "GET", "/v1/charges?waba=W1", ADMIN, "").await;
    let m1 = amount(&charges["charges"][0]["amount"]);
    assert!(m1 > 0.0);
    let (st, draft) = json_call(s, "GET", "/v1/tenants/acme/invoices/2026-02", ACME, "").await;
    assert_eq!(st, StatusCode::OK, "{draft}");
    assert_eq!(draft["status"], "draft");
    let kinds: Vec<&str> = draft["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["licence", "usage"], "{draft}");
    assert!(
        (amount(&draft["total"]) - (10.0 + m1)).abs() < 0.006,
        "{draft}"
    );
    let (_, csv, ct) = call(
        s,
        "GET",
        "/v1/tenants/acme/invoices/2026-02?format=csv",
        ADMIN,
        "",
    )
    .await;
    assert!(
        ct.starts_with("text/csv") && csv.contains("acme-2026-02"),
        "{ct}: {csv}"
    );
    let (st, v) = json_call(s, "GET", "/v1/tenants/acme/invoices/2026-13", ADMIN, "").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );

    // Licence history: records are added and ended, never removed or rewritten.
    let l2 = r#"{"id":"L2","target":{"agent":"a2"},"from":"2026-03-10","to":null}"#;
    let (st, v) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, l2).await;
    assert_eq!((st, &v["recorded"]), (StatusCode::OK, &json!(true)), "{v}");
    assert!(v["version"].as_i64().unwrap() > v1);
    let (_, v) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, l2).await;
    assert_eq!(
        v["recorded"], false,
        "the same record again changes nothing"
    );
    let (st, v) = json_call(s, "PUT", "/v1/tenants/acme", ADMIN, &acme_setup(l1.clone())).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "licence_conflict"),
        "L2 dropped"
    );
    let moved = r#"{"id":"L2","target":{"agent":"a2"},"from":"2026-03-01","to":null}"#;
    let (st, v) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, moved).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "licence_conflict"));
    let ended = r#"{"id":"L2","target":{"agent":"a2"},"from":"2026-03-10","to":"2026-03-19"}"#;
    let (st, v) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, ended).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["setup"]["licences"][1]["to"], "2026-03-19");
    let unknown = r#"{"id":"L3","target":{"agent":"zed"},"from":"2026-03-10"}"#;
    let (st, _) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, unknown).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Send check: an unlicensed agent of the WABA's tenant may not send; a licensed one gets
    // the ordinary answer.
    let ask = |agent: &str, now: &str| {
        json!({"waba": "W1", "phone": PHONE, "user": USER, "type": "template",
               "category": "marketing", "now": now, "agent": agent})
        .to_string()
    };
    let (st, v) = json_call(
        s,
        "POST",
        "/v1/sends/check",
        ACME,
        &ask("a2", "2026-03-05T10:00:00Z"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (&v["allowed"], v["reason"]["code"].as_str()),
        (&json!(false), Some("license_required")),
        "{v}"
    );
    let (_, v) = json_call(
        s,
        "POST",
        "/v1/sends/check",
        ACME,
        &ask("a2", "2026-03-12T10:00:00Z"),
    )
    .await;
    assert_eq!(v["allowed"], true, "{v}");
    let (_, v) = json_call(
        s,
        "POST",
        "/v1/sends/check",
        ACME,
        &ask("a2", "2026-03-20T10:00:00Z"),
    )
    .await;
    assert_eq!(
        v["reason"]["code"], "license_required",
        "ended on the 19th: {v}"
    );
    // A licence given through the API counts in the very next check.
    let again = r#"{"id":"L4","target":{"agent":"a2"},"from":"2026-03-20"}"#;
    let (st, v) = json_call(s, "POST", "/v1/tenants/acme/licences", ADMIN, again).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = json_call(
        s,
        "POST",
        "/v1/sends/check",
        ACME,
        &ask("a2", "2026-03-20T10:00:00Z"),
    )
    .await;
    assert_eq!(v["allowed"], true, "licensed again from the 20th: {v}");
    let (_, v) = json_call(
        s,
        "POST",
        "/v1/sends/check",
        ACME,
        &ask("a1", "2026-03-05T10:00:00Z"),
    )
    .await;
    assert_eq!(v["allowed"], true, "{v}");
    assert!(v["charge"]["amount"].is_string(), "{v}");
    // Reading stays open to an unlicensed agent's key.
    let (st, _) = json_call(s, "GET", "/v1/charges", ACME, "").await;
    assert_eq!(st, StatusCode::OK);

    // Finalize once; the record never changes; late usage is adjusted next month.
    let (st, fin) = json_call(
        s,
        "POST",
        "/v1/tenants/acme/invoices/2026-02/finalize",
        ADMIN,
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{fin}");
    assert_eq!(fin["status"], "final");
    assert_eq!(fin["total"], draft["total"]);
    let (st, v) = json_call(
        s,
        "POST",
        "/v1/tenants/acme/invoices/2026-02/finalize",
        ADMIN,
        "",
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "already_finalized"));
    ingest(s, sent("m3", "2026-02-20T12:00:00Z", "W1")).await;
    let (_, again) = json_call(s, "GET", "/v1/tenants/acme/invoices/2026-02", ACME, "").await;
    assert_eq!(again, fin, "a finalized invoice never changes");
    let (_, march) = json_call(s, "GET", "/v1/tenants/acme/invoices/2026-03", ACME, "").await;
    let adjustments: Vec<&Value> = march["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "adjustment")
        .collect();
    assert_eq!(adjustments.len(), 1, "{march}");
    assert_eq!(adjustments[0]["month"], "2026-02");
    let (st, v) = json_call(
        s,
        "POST",
        "/v1/tenants/acme/invoices/2026-01/finalize",
        ADMIN,
        "",
    )
    .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "finalized_later"));

    // The API document lists the routes.
    let (_, doc) = json_call(s, "GET", "/openapi.json", ADMIN, "").await;
    assert!(doc["paths"]["/v1/tenants/{id}"]["put"].is_object());
    assert_eq!(
        doc["paths"]["/v1/tenants/{id}/invoices/{month}"]["get"]["parameters"][1]["in"],
        "path"
    );
}

/// Under a plan whose active-agent rule is `sent`, the agents named on the month's stored
/// charges are the active ones (decisions.md D36, D44): the outbound events' `agent` is kept on
/// the charges, shown by `/v1/charges`, and read back by the tenant's invoice.
async fn sent_agents(s: &Service) {
    let with_agent = |id: &str, when: &str, agent: Option<&str>| {
        let line = sent(id, when, "W1");
        match agent {
            Some(a) => line.replacen(
                "\"category\":\"marketing\"}",
                &format!("\"category\":\"marketing\",\"agent\":\"{a}\"}}"),
                1,
            ),
            None => line,
        }
    };
    ingest(
        s,
        format!(
            "{}\n{}{}{}{}",
            r#"{"kind":"account","waba":"W1","portfolio":"P1","timezone":"UTC","currency":"USD","primary_country":"BR"}"#,
            with_agent("s1", "2026-02-10T12:00:00Z", Some("a1")),
            with_agent("s2", "2026-02-11T12:00:00Z", Some("a3")),
            with_agent("s3", "2026-02-12T12:00:00Z", Some("a1")),
            with_agent("s4", "2026-02-13T12:00:00Z", None),
        ),
    )
    .await;
    let (_, charges) = json_call(s, "GET", "/v1/charges?waba=W1", ADMIN, "").await;
    let agents: Vec<Value> = charges["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["agent"].clone())
        .collect();
    assert_eq!(
        agents,
        [json!("a1"), json!("a3"), json!("a1"), Value::Null],
        "{charges}"
    );
    let (_, csv, _) = call(s, "GET", "/v1/charges?waba=W1&format=csv", ADMIN, "").await;
    assert!(csv.lines().nth(1).unwrap().ends_with(",a1"), "{csv}");

    let setup = json!({
        "tenant": {"id": "acme", "timezone": "UTC", "currency": "USD", "wabas": ["W1"]},
        "agents": [{"id": "a1"}, {"id": "a2"}, {"id": "a3"}],
        "licences": [],
        "plans": [{"effective_from": "2026-01-01", "active_agent_rule": "sent",
                   "budget": {"per_agents": 1, "amount": "7", "currency": "USD"}}],
    })
    .to_string();
    let (st, v) = json_call(s, "PUT", "/v1/tenants/acme", ADMIN, &setup).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, inv) = json_call(s, "GET", "/v1/tenants/acme/invoices/2026-02", ACME, "").await;
    assert_eq!(st, StatusCode::OK, "{inv}");
    // a1 and a3 sent (a1 twice), a2 did not: two agents, two blocks of 7 USD.
    assert_eq!(inv["budget"]["active_agent_rule"], "sent", "{inv}");
    assert_eq!(inv["budget"]["active_agents"], 2, "{inv}");
    assert_eq!(inv["budget"]["blocks"], 2, "{inv}");
    assert_eq!(inv["budget"]["included"], "14", "{inv}");
    // The line without an agent is counted in a note, not silently.
    assert!(
        inv["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["code"] == "charges_without_agent"),
        "{inv}"
    );
}

#[tokio::test]
async fn sent_agents_are_counted_from_stored_charges_on_sqlite() {
    sent_agents(&sqlite_service().await).await;
}

#[tokio::test]
async fn sent_agents_are_counted_from_stored_charges_on_postgres() {
    if let Some(s) = postgres_service("sent").await {
        sent_agents(&s).await;
    }
}

#[tokio::test]
async fn tenants_are_billed_from_stored_charges_on_sqlite() {
    scenario(&sqlite_service().await).await;
}

#[tokio::test]
async fn tenants_are_billed_from_stored_charges_on_postgres() {
    if let Some(s) = postgres_service("billed").await {
        scenario(&s).await;
    }
}

/// A signed link opens the tenant's printable invoice without a key, until it expires, and
/// opens nothing else: not another month or tenant, not after an edit, not under another
/// secrets key (decisions.md D97).
#[tokio::test]
async fn a_signed_link_opens_the_printable_invoice_without_a_key_until_it_expires() {
    use wabill_engine::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("wabill.sqlite"))
            .await
            .unwrap(),
    );
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
    let clock = Arc::new(ManualClock::new(
        wabill_formats::time::parse_instant("2026-03-02T09:00:00Z").unwrap(),
    ));
    let c = clock.clone();
    let engine = Engine::with_clock(
        store,
        Arc::new(Tariff::bundled()),
        Default::default(),
        move || wabill_engine::clock::Clock::now_ms(&*c),
    )
    .await
    .unwrap();
    let mut state = AppState::new(engine, vec![b"s".to_vec()], "tok".into());
    let keys = wabill_engine::secrets::SecretKeys::new(vec![[9; 32]]);
    state.alerts.secrets = Some(keys);
    let s = Service {
        state: Arc::new(state),
        _dir: dir,
        _schema: None,
    };
    ingest(
        &s,
        format!(
            "{{\"kind\":\"account\",\"waba\":\"W1\",\"portfolio\":\"P1\",\"timezone\":\"UTC\",\"currency\":\"USD\"}}\n{}",
            sent("m1", "2026-02-10T12:00:00Z", "W1")
        ),
    )
    .await;
    s.state.engine.settle().await.unwrap();
    let l1 = json!([{"id": "L1", "target": {"agent": "a1"}, "from": "2026-02-01", "to": null}]);
    let (st, v) = json_call(&s, "PUT", "/v1/tenants/acme", ADMIN, &acme_setup(l1)).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Another tenant's key cannot ask for a link to acme's invoice.
    let uri = "/v1/tenants/acme/invoices/2026-02/link";
    let (st, v) = json_call(&s, "POST", uri, GLOBEX, "").await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "unknown_tenant"));
    let (st, v) = json_call(&s, "POST", &format!("{uri}?ttl=3600"), ACME, "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["expires_at"], "2026-03-02T10:00:00Z");
    let path = v["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/invoices/acme/2026-02?expires="),
        "{path}"
    );

    // Opened without any key: the same page as the keyed HTML invoice.
    let open = |uri: String| {
        let s = &s;
        async move {
            let req = Request::get(uri).body(Body::empty()).unwrap();
            let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
            let st = resp.status();
            let headers = resp.headers().clone();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (st, String::from_utf8_lossy(&body).to_string(), headers)
        }
    };
    let (st, page, headers) = open(path.clone()).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "private, no-store");
    let (_, keyed, _) = call(
        &s,
        "GET",
        "/v1/tenants/acme/invoices/2026-02?format=html",
        ACME,
        "",
    )
    .await;
    assert_eq!(page, keyed);

    // Edited links open nothing: another month, another tenant, a later expiry, no signature.
    let (expires, sig) = {
        let q = path.split_once('?').unwrap().1;
        let (e, sg) = q.split_once('&').unwrap();
        (e.to_string(), sg.to_string())
    };
    for edited in [
        path.replace("2026-02", "2026-01"),
        path.replace("/acme/", "/globex/"),
        format!("/invoices/acme/2026-02?expires=1900000000&{sig}"),
    ] {
        let (st, text, _) = open(edited.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{edited}: {text}");
        assert!(text.contains("link_invalid"), "{text}");
        assert!(!text.contains("a1") && !text.contains("W1"), "{text}");
    }
    let (st, _, _) = open(format!("/invoices/acme/2026-02?{expires}")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Past its expiry the link says so.
    clock.advance(3_600_000);
    let (st, text, _) = open(path).await;
    assert_eq!(st, StatusCode::GONE, "{text}");
    assert!(text.contains("link_expired"), "{text}");
    // And asking for one is in the audit log.
    let (st, v) = json_call(&s, "GET", "/v1/audit", ADMIN, "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(v.to_string().contains("invoice.link"), "{v}");
}
