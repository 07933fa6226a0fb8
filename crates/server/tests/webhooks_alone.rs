//! Meta's webhooks alone are enough in the service (issue 14, point 1; decisions.md D110-D112,
//! D114-D116): a month of generated traffic given (a) as wabill's own events and (b) as Meta's
//! status webhooks only (no outbound event; the accounts and inbound messages are given as
//! before), shuffled, batched and repeated, through the service's real router and a real store
//! (SQLite, and PostgreSQL on 127.0.0.1:5432, required when CI is set), gives the same stored
//! charges as each other and as `wabill rate` of (b).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tower::ServiceExt;
use wabill_engine::meta;
use wabill_formats::time::parse_instant;
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
    let state = Arc::new(AppState::new(engine, vec![SECRET.to_vec()], "tok".into()));
    Service {
        state,
        admin,
        _dir: dir,
        _schema: None,
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
    let schema = support::PgSchema::new("wha", test).await;
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

async fn call(s: &Service, req: Request<Body>) -> (StatusCode, String) {
    let resp = api::router(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

async fn post_events(s: &Service, lines: &[String]) {
    let req = Request::post("/v1/events")
        .header("authorization", format!("Bearer {}", s.admin))
        .body(Body::from(lines.join("\n")))
        .unwrap();
    let (status, body) = call(s, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["rejected"], 0, "{body}");
}

async fn post_webhook(s: &Service, body: String) {
    let body = body.into_bytes();
    let req = Request::post("/webhooks/whatsapp")
        .header("x-hub-signature-256", meta::sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap();
    let (status, text) = call(s, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

async fn get_json(s: &Service, uri: &str) -> Value {
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {}", s.admin))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(s, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Every stored charge, all pages, as JSON lines.
async fn all_charges(s: &Service) -> String {
    let mut out = String::new();
    let mut after = String::new();
    loop {
        let v = get_json(s, &format!("/v1/charges?limit=97{after}")).await;
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

/// `wabill rate` of some lines (wabill events and Meta's envelopes alike), as the API's JSON.
fn batch_rating(lines: &[String]) -> String {
    let tariff = Tariff::bundled();
    let mut parsed = wabill_formats::Parsed::default();
    for (i, l) in lines.iter().enumerate() {
        wabill_formats::parse_line(l, i as u64 + 1, &mut parsed).unwrap();
    }
    let rated = rate(&tariff, &[], &parsed.events, RateOptions::default());
    assert!(rated.errors.is_empty(), "{:?}", rated.errors);
    let mut out = Vec::new();
    for c in &rated.charges {
        wabill_formats::charges::write_json(&mut out, c, &tariff);
    }
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string() + "\n")
        .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// One month's traffic in both forms.
struct Traffic {
    accounts: Vec<String>,
    inbound: Vec<String>,
    /// (a): the outbound events and their statuses as wabill lines.
    platform: Vec<String>,
    /// (b): each status as Meta's webhook sends it, `(waba, phone, status object)`.
    meta: Vec<(String, String, String)>,
}

impl Traffic {
    fn as_events(&self) -> Vec<String> {
        [&self.accounts, &self.inbound, &self.platform]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// (b) as lines: one envelope per status.
    fn as_webhooks(&self) -> Vec<String> {
        let hooks = self.meta.iter().map(|m| envelope(std::slice::from_ref(m)));
        [&self.accounts, &self.inbound]
            .into_iter()
            .flatten()
            .cloned()
            .chain(hooks)
            .collect()
    }
}

/// Meta's envelope of some statuses, one entry each (Meta batches entries of several WABAs).
fn envelope(statuses: &[(String, String, String)]) -> String {
    let entries: Vec<String> = statuses
        .iter()
        .map(|(waba, phone, st)| {
            format!(
                r#"{{"id":"{waba}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"{phone}","phone_number_id":"1{phone}"}},"statuses":[{st}]}}}}]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{}]}}"#,
        entries.join(",")
    )
}

/// A generated month (and a little of the next, in the per-message era where an open service
/// window makes utility templates free) in both forms. Every outbound message gets a `sent`
/// status at its send instant, as Meta sends one when it accepts a message; (b) describes each
/// status's message as Meta does (WABA, business phone, recipient) and puts Meta's pricing
/// (the category charged for (a), Meta agreeing) on `sent` and `delivered`.
fn traffic(seed: u64, events: u64) -> Traffic {
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
    let text = String::from_utf8(out).unwrap();
    let mut seen = HashSet::new();
    let (mut accounts, mut inbound, mut outbound, mut statuses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().filter(|l| seen.insert(*l)) {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["kind"].as_str().unwrap() {
            "account" => accounts.push(line.to_string()),
            "inbound" => inbound.push(line.to_string()),
            "outbound" => outbound.push(v),
            "status" => statuses.push(v),
            k => panic!("unexpected kind {k}"),
        }
    }
    let by_id: HashMap<&str, &Value> = outbound
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o))
        .collect();
    let str_of = |v: &Value, f: &str| v[f].as_str().unwrap().to_string();
    // (id, status, at): the generated statuses, with `sent` at the send instant.
    let mut all: Vec<(String, String, String)> = statuses
        .iter()
        .filter(|s| s["status"] != "sent" && by_id.contains_key(s["id"].as_str().unwrap()))
        .map(|s| (str_of(s, "id"), str_of(s, "status"), str_of(s, "at")))
        .collect();
    all.extend(
        outbound
            .iter()
            .map(|o| (str_of(o, "id"), "sent".to_string(), str_of(o, "at"))),
    );
    let mut platform: Vec<String> = outbound.iter().map(|o| o.to_string()).collect();
    platform.extend(all.iter().map(|(id, status, at)| {
        format!(r#"{{"kind":"status","id":"{id}","at":"{at}","status":"{status}"}}"#)
    }));
    let mut t = Traffic {
        accounts,
        inbound,
        platform,
        meta: Vec::new(),
    };
    let billed: HashMap<String, String> = batch_rating(&t.as_events())
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (str_of(&v, "id"), str_of(&v, "category"))
        })
        .collect();
    for (id, status, at) in &all {
        let o = by_id[id.as_str()];
        let seconds = parse_instant(at).unwrap() / 1000;
        let user = o["user"].as_str().unwrap();
        let pricing = match (status.as_str(), billed.get(id)) {
            ("sent" | "delivered", Some(c)) => {
                format!(r#","pricing":{{"pricing_model":"PMP","category":"{c}"}}"#)
            }
            _ => String::new(),
        };
        t.meta.push((
            str_of(o, "waba"),
            str_of(o, "phone"),
            format!(
                r#"{{"id":"{id}","status":"{status}","timestamp":"{seconds}","recipient_id":"{user}"{pricing}}}"#
            ),
        ));
    }
    t
}

/// (a) through `POST /v1/events`: accounts first, then everything shuffled, in batches of
/// random size, some lines repeated, with re-rating rounds in between.
async fn send_events(s: &Service, t: &Traffic, seed: u64) {
    let mut rng = Rng(seed | 1);
    post_events(s, &t.accounts).await;
    let mut rest: Vec<String> = t.inbound.iter().chain(&t.platform).cloned().collect();
    rng.shuffle(&mut rest);
    let repeats: Vec<String> = rest.iter().step_by(11).cloned().collect();
    rest.extend(repeats);
    let mut i = 0;
    while i < rest.len() {
        let n = 1 + (rng.next() % 300) as usize;
        post_events(s, &rest[i..(i + n).min(rest.len())]).await;
        if rng.next().is_multiple_of(3) {
            s.state.engine.rerate_dirty().await.unwrap();
        }
        i += n;
    }
}

/// (b): accounts first through `POST /v1/events`, then the inbound lines (there) and Meta's
/// statuses (signed, through `POST /webhooks/whatsapp`, several to an envelope) shuffled
/// together, some repeated, with re-rating rounds in between.
async fn send_webhooks(s: &Service, t: &Traffic, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(31) | 1);
    post_events(s, &t.accounts).await;
    // None: an inbound line; Some(i): Meta's status i.
    let mut items: Vec<Option<usize>> = (0..t.inbound.len())
        .map(|_| None)
        .chain((0..t.meta.len()).map(Some))
        .collect();
    rng.shuffle(&mut items);
    let repeats: Vec<Option<usize>> = items.iter().step_by(9).copied().collect();
    items.extend(repeats);
    let mut inbound = t.inbound.iter().cycle();
    let mut i = 0;
    while i < items.len() {
        let n = 1 + (rng.next() % 40) as usize;
        let chunk = &items[i..(i + n).min(items.len())];
        let lines: Vec<String> = chunk
            .iter()
            .filter(|x| x.is_none())
            .map(|_| inbound.next().unwrap().clone())
            .collect();
        if !lines.is_empty() {
            post_events(s, &lines).await;
        }
        let statuses: Vec<(String, String, String)> =
            chunk.iter().flatten().map(|&k| t.meta[k].clone()).collect();
        if !statuses.is_empty() {
            post_webhook(s, envelope(&statuses)).await;
        }
        if rng.next().is_multiple_of(4) {
            s.state.engine.rerate_dirty().await.unwrap();
        }
        i += n;
    }
}

async fn webhooks_alone_give_the_charges_of_the_events(a: Service, b: Service, seed: u64) {
    let t = traffic(seed, 3000);
    let expected = batch_rating(&t.as_events());
    assert!(expected.lines().count() > 400, "a month of traffic");
    let from_webhooks = batch_rating(&t.as_webhooks());
    assert!(
        from_webhooks == expected,
        "`wabill rate` of the webhooks differs from that of the events"
    );
    send_events(&a, &t, seed).await;
    a.state.engine.settle().await.unwrap();
    let got_a = all_charges(&a).await;
    assert_eq!(got_a.lines().count(), expected.lines().count());
    assert!(
        got_a == expected,
        "(a): stored charges differ from `wabill rate`"
    );
    send_webhooks(&b, &t, seed).await;
    b.state.engine.settle().await.unwrap();
    assert!(b.state.engine.unratable().await.is_empty());
    let got_b = all_charges(&b).await;
    assert_eq!(got_b.lines().count(), expected.lines().count());
    assert!(
        got_b == got_a,
        "(b): the charges of Meta's webhooks alone differ from those of the events"
    );
}

#[tokio::test]
async fn webhooks_alone_give_the_charges_of_the_events_on_sqlite() {
    for seed in [1, 2] {
        let (a, b) = (sqlite_service().await, sqlite_service().await);
        webhooks_alone_give_the_charges_of_the_events(a, b, seed).await;
    }
}

#[tokio::test]
async fn webhooks_alone_give_the_charges_of_the_events_on_postgres() {
    let (Some(a), Some(b)) = (
        postgres_service("alone_a").await,
        postgres_service("alone_b").await,
    ) else {
        return;
    };
    webhooks_alone_give_the_charges_of_the_events(a, b, 3).await;
}

const ACCOUNT: &str = r#"{"kind":"account","waba":"W1","portfolio":"P1","timezone":"UTC","currency":"USD","primary_country":"US"}"#;
const UTILITY: &str = r#"{"kind":"outbound","id":"wamid.U1","at":"2025-11-04T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}"#;

/// Meta's statuses of wamid.U1: billed as marketing.
fn marketing_statuses() -> String {
    let sent = parse_instant("2025-11-04T10:00:00Z").unwrap() / 1000;
    let st = |status: &str, at: i64| {
        (
            "W1".to_string(),
            "15550001111".to_string(),
            format!(
                r#"{{"id":"wamid.U1","status":"{status}","timestamp":"{at}","recipient_id":"5511988887777","pricing":{{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}}}}"#
            ),
        )
    };
    envelope(&[st("sent", sent), st("delivered", sent + 3)])
}

/// The platform's outbound says utility and Meta bills marketing: the charge is marketing, as
/// `wabill rate` gives, whichever comes first, and reconciliation lists the platform's
/// category beside Meta's (D112, D116).
async fn metas_category_is_charged(s: Service) {
    let hooks = marketing_statuses();
    let expected = batch_rating(&[ACCOUNT.to_string(), UTILITY.to_string(), hooks.clone()]);
    let v: Value = serde_json::from_str(expected.lines().next().unwrap()).unwrap();
    assert_eq!(v["category"], "marketing", "{expected}");
    let utility = batch_rating(&[
        ACCOUNT.to_string(),
        UTILITY.to_string(),
        r#"{"kind":"status","id":"wamid.U1","at":"2025-11-04T10:00:03Z","status":"delivered"}"#
            .to_string(),
    ]);
    assert_ne!(utility, expected, "utility and marketing are priced apart");

    post_events(&s, &[ACCOUNT.to_string()]).await;
    post_webhook(&s, hooks).await;
    s.state.engine.settle().await.unwrap();
    // Meta's statuses alone already give the marketing charge.
    assert_eq!(all_charges(&s).await, expected);
    post_events(&s, &[UTILITY.to_string()]).await;
    s.state.engine.settle().await.unwrap();
    assert_eq!(all_charges(&s).await, expected, "the outbound event agrees");
    let rep = get_json(&s, "/v1/reconciliation?waba=W1&month=2025-11").await;
    assert_eq!(rep["totals"]["disagreeing"], 0, "{rep}");
    assert_eq!(
        rep["platform_categories"],
        serde_json::json!([{
            "id": "wamid.U1",
            "differences": [{"field": "platform_category", "platform": "utility", "meta": "marketing"}],
            "note": "the outbound event's template category; charged in Meta's (decisions.md D112)",
        }]),
        "{rep}"
    );
}

#[tokio::test]
async fn metas_category_is_charged_where_the_outbound_event_disagrees() {
    metas_category_is_charged(sqlite_service().await).await;
    if let Some(s) = postgres_service("meta_category").await {
        metas_category_is_charged(s).await;
    }
}

/// A status that names the recipient by number and BSUID links them (D101, D114): the user who
/// wrote by BSUID alone has a window open, and the utility template Meta describes (to the
/// number) is free in it, as `wabill rate` gives.
async fn statuses_link_identities(s: Service) {
    let inbound = r#"{"kind":"inbound","id":"wamid.IN1","at":"2025-11-04T09:00:00Z","waba":"W1","phone":"15550001111","user_id":"BR.1502576394655843"}"#;
    let sent = parse_instant("2025-11-04T10:00:00Z").unwrap() / 1000;
    let st = |status: &str, at: i64| {
        (
            "W1".to_string(),
            "15550001111".to_string(),
            format!(
                r#"{{"id":"wamid.U2","status":"{status}","timestamp":"{at}","recipient_id":"5511988887777","recipient_user_id":"BR.1502576394655843","pricing":{{"pricing_model":"PMP","category":"utility"}}}}"#
            ),
        )
    };
    let hooks = envelope(&[st("sent", sent), st("delivered", sent + 2)]);
    let lines = [ACCOUNT.to_string(), inbound.to_string(), hooks.clone()];
    let expected = batch_rating(&lines);
    let v: Value = serde_json::from_str(expected.lines().next().unwrap()).unwrap();
    assert_eq!(v["type"], "free_customer_service", "{expected}");
    post_events(&s, &[ACCOUNT.to_string()]).await;
    post_webhook(&s, hooks).await;
    s.state.engine.settle().await.unwrap();
    let before: Value =
        serde_json::from_str(all_charges(&s).await.lines().next().unwrap()).unwrap();
    assert_eq!(before["type"], "regular", "no window yet: {before}");
    post_events(&s, &[inbound.to_string()]).await;
    s.state.engine.settle().await.unwrap();
    assert_eq!(all_charges(&s).await, expected);
}

#[tokio::test]
async fn a_status_naming_number_and_bsuid_links_them() {
    statuses_link_identities(sqlite_service().await).await;
    if let Some(s) = postgres_service("link").await {
        statuses_link_identities(s).await;
    }
}

/// Meta's conversation expiry is kept and compared (D118): through Meta's webhooks alone, in
/// the CBP era, the conversation Meta ends at wabill's end rounded up to the minute agrees,
/// one Meta ends an hour later is a `window_end` difference.
async fn conversation_expiry_is_compared(s: Service) {
    let sent = parse_instant("2024-06-03T10:00:07Z").unwrap() / 1000;
    let st = |id: &str, user: &str, status: &str, at: i64, expires: Option<i64>| {
        let conversation = expires
            .map(|e| format!(r#""conversation":{{"id":"c-{id}","expiration_timestamp":"{e}","origin":{{"type":"marketing"}}}},"#))
            .unwrap_or_default();
        (
            "W1".to_string(),
            "15550001111".to_string(),
            format!(
                r#"{{"id":"{id}","status":"{status}","timestamp":"{at}","recipient_id":"{user}",{conversation}"pricing":{{"billable":true,"pricing_model":"CBP","category":"marketing"}}}}"#
            ),
        )
    };
    let rounded = (sent + 86_400 + 59) / 60 * 60;
    let hooks = envelope(&[
        st("wamid.C1", "5511988887777", "sent", sent, Some(rounded)),
        st("wamid.C1", "5511988887777", "delivered", sent + 2, None),
        st(
            "wamid.C2",
            "5511977776666",
            "sent",
            sent,
            Some(sent + 86_400 + 3_600),
        ),
        st("wamid.C2", "5511977776666", "delivered", sent + 2, None),
    ]);
    post_events(&s, &[ACCOUNT.to_string()]).await;
    post_webhook(&s, hooks).await;
    s.state.engine.settle().await.unwrap();
    assert_eq!(all_charges(&s).await.lines().count(), 2);
    let rep = get_json(&s, "/v1/reconciliation?waba=W1&month=2024-06").await;
    assert_eq!(rep["totals"]["compared"], 2, "{rep}");
    let d = rep["disagreements"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{rep}");
    assert_eq!(d[0]["id"], "wamid.C2");
    assert_eq!(
        d[0]["differences"],
        serde_json::json!([{"field": "window_end", "wabill": "2024-06-04T10:00:07Z", "meta": "2024-06-04T11:00:07Z"}]),
        "{rep}"
    );
}

#[tokio::test]
async fn metas_conversation_expiry_is_compared_with_the_window_end() {
    conversation_expiry_is_compared(sqlite_service().await).await;
    if let Some(s) = postgres_service("expiry").await {
        conversation_expiry_is_compared(s).await;
    }
}
