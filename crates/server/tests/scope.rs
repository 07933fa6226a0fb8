//! The tenant scope (decisions.md D46, D50), probed as another tenant would: a key scoped to
//! W1 reads and writes nothing of W2's, whether it names W2, W2's business phone and
//! customers, or W2's message ids; refusals come after authentication, in JSON, and tell
//! nothing of W2. A real SQLite store, axum's router called in process.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use wabill_engine::meta;
use wabill_rating::Tariff;
use wabill_server::{api, hash_key, AppState, Engine};
use wabill_store::{NewApiKey, Role, SqliteStore, Store};

const SECRET: &[u8] = b"app-secret-1";
const ADMIN: &str = "admin-key-123";
/// W2's business phone and customer: W1's key knows them (they are no secret), but must not
/// learn W2's messages and windows through them.
const W2_PHONE: &str = "15550002222";
const W2_USER: &str = "5511977776666";
const W2_MSG: &str = "wamid.W2-secret-message";

struct Service {
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

async fn service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite").to_str().unwrap())
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    for (name, role, wabas) in [
        (ADMIN, Role::Admin, vec![]),
        ("reader-w1", Role::Reader, vec!["W1".to_string()]),
        ("sender-w1", Role::Sender, vec!["W1".to_string()]),
        ("sender-w2", Role::Sender, vec!["W2".to_string()]),
    ] {
        store
            .create_key(&NewApiKey {
                name: name.into(),
                role,
                tenant_wabas: wabas,
                key_hash: hash_key(name),
            })
            .await
            .unwrap();
    }
    let engine = Engine::new(store, Arc::new(Tariff::bundled()), Default::default())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(engine, vec![SECRET.to_vec()], "tok".into()));
    Service { state, _dir: dir }
}

async fn call(s: &Service, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string(), ctype)
}

fn authed(method: &str, uri: &str, key: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

async fn post_events(s: &Service, key: &str, body: String) -> Value {
    let (status, text, _) = call(s, authed("POST", "/v1/events", key, body)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    // A batch of which nothing was stored is a 422 with the same body (decisions.md D96).
    let nothing = v["stored"] == 0 && v["duplicates"] == 0 && v["rejected"] != 0;
    let expected = if nothing {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    assert_eq!(status, expected, "{text}");
    v
}

fn account(waba: &str, portfolio: &str) -> String {
    format!(
        r#"{{"kind":"account","waba":"{waba}","portfolio":"{portfolio}","timezone":"UTC","currency":"USD","primary_country":"BR"}}"#
    )
}

/// W1 and W2 are two tenants' accounts; W2's customer wrote at 10:00 and got a marketing
/// template at 10:05.
fn two_tenants() -> String {
    [
        account("W1", "P1"),
        account("W2", "P2"),
        format!(
            r#"{{"kind":"inbound","id":"wamid.W2-in","at":"2026-10-03T10:00:00Z","waba":"W2","phone":"{W2_PHONE}","user":"{W2_USER}"}}"#
        ),
        format!(
            r#"{{"kind":"outbound","id":"{W2_MSG}","at":"2026-10-03T10:05:00Z","waba":"W2","phone":"{W2_PHONE}","user":"{W2_USER}","type":"template","category":"marketing"}}"#
        ),
        format!(r#"{{"kind":"status","id":"{W2_MSG}","at":"2026-10-03T10:05:02Z","status":"delivered"}}"#),
    ]
    .join("\n")
}

async fn send_check(s: &Service, key: &str, body: &Value) -> (StatusCode, Value) {
    let (status, text, _) = call(s, authed("POST", "/v1/sends/check", key, body.to_string())).await;
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn a_send_check_under_w1_learns_nothing_of_w2s_pair() {
    // Asked under W1 about W2's phone and customer, the check must answer exactly as if W2
    // had never sent or received anything: W2's id, times and window are not W1's to see.
    let ask = json!({"waba": "W1", "phone": W2_PHONE, "user": W2_USER, "type": "template",
                     "category": "marketing", "now": "2026-10-03T11:00:00Z"});
    let blank = service().await;
    post_events(&blank, ADMIN, account("W1", "P1")).await;
    blank.state.engine.settle().await.unwrap();
    let (status, expected) = send_check(&blank, ADMIN, &ask).await;
    assert_eq!(status, StatusCode::OK, "{expected}");

    let s = service().await;
    post_events(&s, ADMIN, two_tenants()).await;
    s.state.engine.settle().await.unwrap();
    for key in ["reader-w1", "sender-w1"] {
        let (status, answer) = send_check(&s, key, &ask).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(!answer.to_string().contains("W2-"), "{key}: {answer}");
        assert_eq!(answer, expected, "{key} saw W2's pair");
    }
    // The admin, and W2's own key, do see it (so the check above can fail).
    let w2_ask = json!({"waba": "W2", "phone": W2_PHONE, "user": W2_USER, "type": "text",
                        "now": "2026-10-03T11:00:00Z"});
    let (_, admin) = send_check(&s, ADMIN, &w2_ask).await;
    assert!(admin.to_string().contains("2026-10-04T10:00:00"), "{admin}");
    let (status, _) = send_check(&s, "sender-w1", &w2_ask).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn pricing_envelope(waba: &str, message: &str, status: &str, category: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": W2_PHONE, "phone_number_id": "100000000000002"},
        "statuses": [{"id": message, "status": status, "timestamp": "1759485902",
                      "recipient_id": W2_USER,
                      "pricing": {"billable": true, "pricing_model": "PMP", "category": category,
                                  "type": "regular"}}]}}]}]})
    .to_string()
}

#[tokio::test]
async fn meta_pricing_of_another_tenants_message_is_refused_and_not_stored() {
    let s = service().await;
    post_events(&s, ADMIN, two_tenants()).await;
    s.state.engine.settle().await.unwrap();
    // W1's sender forges Meta's word on W2's message: under its own WABA id, and under W2's.
    for waba in ["W1", "W2"] {
        let r = post_events(
            &s,
            "sender-w1",
            pricing_envelope(waba, W2_MSG, "read", "utility"),
        )
        .await;
        assert_eq!(r["stored"], 0, "{r}");
        assert!(r["rejected"].as_u64().unwrap() >= 1, "{r}");
        assert!(!r.to_string().contains("W2"), "{r}");
    }
    let stored = s
        .state
        .engine
        .store()
        .meta_pricing_by_id(&[W2_MSG.to_string()])
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let (status, text, _) = call(
        &s,
        authed(
            "GET",
            "/v1/reconciliation?waba=W2&month=2026-10",
            ADMIN,
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        !text.contains("utility"),
        "W2's reconciliation was forged: {text}"
    );
    // W2's own key may send it (so the refusal above can fail).
    let r = post_events(
        &s,
        "sender-w2",
        pricing_envelope("W2", W2_MSG, "sent", "utility"),
    )
    .await;
    assert_eq!(r["rejected"], 0, "{r}");
    let stored = s
        .state
        .engine
        .store()
        .meta_pricing_by_id(&[W2_MSG.to_string()])
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test]
async fn the_signed_webhook_takes_metas_envelopes_only() {
    let s = service().await;
    for line in [
        account("W9", "P9"),
        r#"{"kind":"inbound","id":"x1","at":"2026-10-03T10:00:00Z","waba":"W9","phone":"1","user":"2"}"#.to_string(),
    ] {
        let body = line.into_bytes();
        let req = Request::post("/webhooks/whatsapp")
            .header("x-hub-signature-256", meta::sign(SECRET, &body))
            .body(Body::from(body))
            .unwrap();
        let (status, text, ctype) = call(&s, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        assert!(text.contains("object"), "{text}");
    }
    let stored = s.state.engine.store().max_seq().await.unwrap();
    assert_eq!(stored, 0, "the webhook stored wabill's own lines");
}

#[tokio::test]
async fn bad_query_strings_are_json_and_come_after_authentication() {
    let s = service().await;
    let uri = "/v1/charges?limit=lots";
    let (status, text, ctype) = call(&s, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let (status, text, ctype) = call(&s, authed("GET", uri, "nope", Body::empty())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let (status, text, ctype) = call(&s, authed("GET", uri, ADMIN, Body::empty())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "invalid_parameter", "{text}");
    assert!(text.contains("limit"), "{text}");
    // Refusals by authentication are counted under their route.
    let (_, metrics, _) = call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let series = r#"wabill_http_requests_total{route="/v1/charges",status="401"} 2"#;
    assert!(metrics.contains(series), "{metrics}");
}

/// Every keyed route of the route table, aimed at W2 and its tenant in every way a request
/// can name them, answers W1's keys with nothing of W2: the scope is applied by the one
/// extractor every keyed route takes, so a route added later is probed here too.
#[tokio::test]
async fn every_keyed_route_refuses_without_a_key_and_shows_w1_nothing_of_w2() {
    use wabill_server::routes::{Access, ROUTES};
    let s = service().await;
    post_events(&s, ADMIN, two_tenants()).await;
    s.state.engine.settle().await.unwrap();
    let setup = json!({"tenant": {"id": "t2", "timezone": "UTC", "currency": "USD", "wabas": ["W2"]},
                       "plans": [{"effective_from": "2026-01-01"}]});
    let (status, text, _) = call(
        &s,
        authed("PUT", "/v1/tenants/t2", ADMIN, setup.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let keyed: Vec<_> = ROUTES.iter().filter(|r| r.auth == Access::ApiKey).collect();
    assert!(keyed.len() >= 10, "the route table lost its keyed routes");
    for route in keyed {
        let path = route
            .path
            .replace("{id}", "t2")
            .replace("{month}", "2026-10");
        let uri = format!("{path}?waba=W2&month=2026-10&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&bucket=day&format=json");
        let method = route.method.as_str().to_uppercase();
        let method = method.as_str();
        let body = match method {
            "GET" => String::new(),
            _ if path == "/v1/sends/check" => {
                json!({"waba": "W2", "phone": W2_PHONE, "user": W2_USER,
                "type": "text", "now": "2026-10-03T11:00:00Z"})
                .to_string()
            }
            _ if path == "/v1/events" => two_tenants(),
            _ if path.ends_with("/licences") => {
                json!({"id": "L1", "target": {"agent": "a1"}, "from": "2026-10-01"}).to_string()
            }
            _ if path.ends_with("/settings") => {
                json!({"url": "http://hooks.example:8080/x", "secret": "s",
                "thresholds": [{"percent": "50"}]})
                .to_string()
            }
            _ => setup.to_string(),
        };
        for key in [None, Some("nope")] {
            let mut req = Request::builder().method(method).uri(&uri);
            if let Some(k) = key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let (status, text, ctype) = call(&s, req.body(Body::from(body.clone())).unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {key:?}: {text}"
            );
            assert!(
                ctype.starts_with("application/json"),
                "{method} {uri}: {ctype}"
            );
        }
        for key in ["reader-w1", "sender-w1"] {
            let (status, text, _) = call(&s, authed(method, &uri, key, body.clone())).await;
            assert!(
                !text.contains("W2") && !text.contains("t2") && !text.contains(W2_USER),
                "{key} {method} {uri} answered {status}: {text}"
            );
            if path == "/v1/events" && status.is_success() {
                let r: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(r["stored"], 0, "{key} wrote W2's events: {text}");
            } else if status.is_success() && method != "GET" && path != "/v1/sends/check" {
                panic!("{key} {method} {uri} wrote: {text}");
            }
        }
    }
}
