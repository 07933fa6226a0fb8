//! The handlers of the original routes (Meta's webhook, generic ingest, charges, unratable
//! messages, health and metrics) and what every handler shares: the state, API keys and tenant
//! scope, request bodies. The list of routes is `routes.rs`; every route but the webhook
//! (authenticated by Meta's signature), the probes and the OpenAPI document needs an API key.

use crate::engine::Engine;
use crate::errors::problem;
use crate::meta;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use wabill_billing::TenantSetup;
use wabill_formats::body::BodyError;
use wabill_formats::charges::json_str;
use wabill_formats::{parse_envelope, parse_line, MetaPricing, Parsed};
use wabill_rating::{Event, UnixMs};
use wabill_store::{ChargeCursor, ChargeFilter, ChargeRow, MetaPricingRow, Role};

pub use crate::routes::router;

/// Most events one `POST /v1/events` may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Largest request body accepted by default (413 above).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The service's "now": the system clock in production, a fixed instant in tests. Only the
/// send check reads it, and hands the instant to the rating core as an event's time (the core
/// itself never reads a clock).
pub type Clock = fn() -> UnixMs;

/// The system clock, in Unix milliseconds.
pub fn system_now() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the routes share.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// App secrets accepted for `X-Hub-Signature-256` (two during a rotation). Empty: the
    /// webhook route refuses every post.
    pub app_secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    /// Largest request body accepted; larger ones get 413 `payload_too_large`.
    pub max_body_bytes: usize,
    pub clock: Clock,
    /// API keys looked up recently, by hash: a request within [`KEY_CACHE_TTL`] of the lookup
    /// reads no store, so a revoked key (or a changed tenant) takes effect within that time.
    /// Unknown keys are not kept.
    pub keys: TtlCache<[u8; 32], Caller>,
    /// The tenant set-up owning each WABA a send check named an agent for, looked up at most
    /// once per [`KEY_CACHE_TTL`] (`None`: no tenant owns the WABA).
    pub licences: TtlCache<String, Option<Arc<TenantSetup>>>,
    /// Requests per second per API key, taken by the [`Caller`] extractor (none by default).
    pub rate_limit: crate::limits::RateLimiter,
    /// The last readiness answer, reused for a moment (`health`).
    pub readiness: crate::health::Readiness,
}

/// How long an API key (or a tenant set-up read for a send check) is trusted.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Values read from the store, trusted for [`KEY_CACHE_TTL`] after the read.
pub struct TtlCache<K, V>(std::sync::Mutex<rustc_hash::FxHashMap<K, (Instant, V)>>);

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache(std::sync::Mutex::default())
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    /// The value, if it was read less than [`KEY_CACHE_TTL`] ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let cache = self.0.lock().expect("not poisoned");
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(_, v)| v.clone())
    }

    /// Keeps a value just read (and lets go of the stale ones).
    pub fn put(&self, key: K, value: V) {
        let mut cache = self.0.lock().expect("not poisoned");
        cache.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
        cache.insert(key, (Instant::now(), value));
    }

    /// Forgets everything (after a write that changes what was read).
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }
}

impl AppState {
    /// A state with the default body limit and the system clock.
    pub fn new(engine: Arc<Engine>, app_secrets: Vec<Vec<u8>>, verify_token: String) -> AppState {
        AppState {
            app_secrets,
            verify_token,
            max_body_bytes: MAX_BODY_BYTES,
            clock: engine.clock,
            keys: TtlCache::default(),
            licences: TtlCache::default(),
            rate_limit: crate::limits::RateLimiter::default(),
            readiness: crate::health::Readiness::default(),
            engine,
        }
    }
}

pub(crate) fn observe(
    state: &AppState,
    route: &'static str,
    started: Instant,
    resp: Response,
) -> Response {
    state.engine.metrics.observe(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// The body, or the answer to give when it could not be read: 413 over the limit.
#[allow(clippy::result_large_err)]
pub(crate) fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            problem(
                "payload_too_large",
                "the request body is larger than the service accepts",
            )
        } else {
            problem("invalid_body", rejection.body_text())
        }
    })
}

/// The rows to store for the pricing objects one input line carried. The WABA of each comes
/// from the envelope's `entry[].id` that holds the status (MetaPricing does not carry it), so
/// that reconciliation can scope Meta's side by tenant even for messages wabill never saw.
pub(crate) fn meta_rows(line: &str, pricing: &[MetaPricing<'_>]) -> Vec<MetaPricingRow> {
    if pricing.is_empty() {
        return Vec::new();
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        entry: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: Option<String>,
        #[serde(default)]
        changes: Vec<Change>,
    }
    #[derive(serde::Deserialize)]
    struct Change {
        value: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct Value {
        #[serde(default)]
        statuses: Vec<St>,
    }
    #[derive(serde::Deserialize)]
    struct St {
        id: Option<String>,
        status: Option<String>,
    }
    let mut waba_of: HashMap<(String, String), String> = HashMap::new();
    if let Ok(env) = serde_json::from_str::<Envelope>(line) {
        for e in env.entry {
            let Some(waba) = e.id else { continue };
            for st in e
                .changes
                .into_iter()
                .filter_map(|c| c.value)
                .flat_map(|v| v.statuses)
            {
                if let (Some(id), Some(status)) = (st.id, st.status) {
                    waba_of.insert((id, status), waba.clone());
                }
            }
        }
    }
    pricing
        .iter()
        .map(|p| MetaPricingRow {
            id: p.id.to_string(),
            status: p.status.as_str().to_string(),
            at_ms: p.at,
            waba: waba_of
                .get(&(p.id.to_string(), p.status.as_str().to_string()))
                .cloned(),
            billable: p.billable,
            pricing_model: p.pricing_model.as_deref().map(str::to_string),
            category: p.category.as_deref().map(str::to_string),
            pricing_type: p.pricing_type.as_deref().map(str::to_string),
            conversation_id: p.conversation_id.as_deref().map(str::to_string),
        })
        .collect()
}

pub(crate) async fn webhook_verify(
    State(state): State<Arc<AppState>>,
    Params(q): Params<HashMap<String, String>>,
) -> Response {
    match meta::verify_subscription(
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
        &state.verify_token,
    ) {
        Some(challenge) => (StatusCode::OK, challenge.to_string()).into_response(),
        None => problem(
            "verification_failed",
            "hub.mode or hub.verify_token does not match",
        ),
    }
}

pub(crate) async fn webhook_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match read_body(body) {
        Ok(body) => webhook_inner(&state, &headers, &body).await,
        Err(r) => r,
    }
}

async fn webhook_inner(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    if state.app_secrets.is_empty() {
        return problem(
            "webhook_disabled",
            "no app secret is configured (WABILL_APP_SECRET): unsigned posts are never accepted",
        );
    }
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = meta::verify_signature(&state.app_secrets, body, sig) {
        state.engine.metrics.add_unauthorized_webhook();
        return problem("bad_signature", e.to_string());
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return problem("invalid_body", "the body is not UTF-8");
    };
    let mut parsed = Parsed::default();
    if let Err(e) = parse_envelope(text.trim(), 1, &mut parsed) {
        state.engine.metrics.add_rejected(1);
        return problem("invalid_webhook", e.to_string());
    }
    let pricing = meta_rows(text.trim(), &parsed.meta_pricing);
    let batch: Vec<(usize, Event<'_>)> = parsed.events.into_iter().enumerate().collect();
    // Events first, then Meta's pricing; the 200 only once both are stored. A failure of the
    // second leaves stored events that Meta's retry finds again as duplicates.
    let stored = match state.engine.ingest(&batch).await {
        Ok(_) => state.engine.store().record_meta_pricing(&pricing).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(_) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "storing a webhook failed");
            problem(
                "store_unavailable",
                "the event could not be stored; Meta will retry",
            )
        }
    }
}

/// The caller, from `Authorization: Bearer KEY`.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: Role,
    /// None: every WABA (admin).
    pub wabas: Option<Vec<String>>,
    /// The API key's id; `None` for the service's own calls.
    pub key_id: Option<i64>,
}

impl Caller {
    /// An admin: every WABA (the service's own reads, and tests).
    pub fn admin() -> Caller {
        Caller {
            role: Role::Admin,
            wabas: None,
            key_id: None,
        }
    }

    /// Whether this caller may read or write what belongs to `waba`. This is the one test of
    /// tenant scope: every route, ingest and the send check ask it of each WABA they are about to
    /// read, write or answer from (decisions.md D50).
    pub fn may_see(&self, waba: &str) -> bool {
        self.wabas
            .as_ref()
            .is_none_or(|w| w.iter().any(|x| x == waba))
    }
}

/// Routes with an API key take the [`Caller`] as an extractor, so that a handler cannot run
/// without authentication having passed; it is listed before the query string and the body, so
/// an unauthenticated request learns nothing about their shape. It also takes the key's token
/// of the per-key rate limit: `429 rate_limited` with `Retry-After` when there is none, which
/// counts only that key's requests and names nothing else (decisions.md D85).
impl axum::extract::FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = authenticate(state, &parts.headers).await?;
        if let Some(id) = caller.key_id {
            if let Err(wait_s) = state.rate_limit.admit(id) {
                return Err(crate::errors::problem_retry(
                    "rate_limited",
                    "this API key sent more requests than its rate limit allows",
                    wait_s,
                ));
            }
        }
        Ok(caller)
    }
}

/// A query string read into `T`, refused as our JSON problem (`invalid_parameter`) rather
/// than axum's plain text.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(rejection) => Err(problem(
                "invalid_parameter",
                format!("the query string: {}", rejection.body_text()),
            )),
        }
    }
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

// A handler helper's natural error is the response to send; boxing it would only add noise.
#[allow(clippy::result_large_err)]
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| problem("missing_api_key", "send Authorization: Bearer <api key>"))?;
    let hash = hash_key(key.trim());
    if let Some(caller) = state.keys.get(&hash) {
        return Ok(caller);
    }
    match state.engine.store().key_by_hash(&hash).await {
        Ok(Some(k)) => {
            let caller = Caller {
                role: k.role,
                wabas: (k.role != Role::Admin).then_some(k.tenant_wabas),
                key_id: Some(k.id),
            };
            state.keys.put(hash, caller.clone());
            Ok(caller)
        }
        Ok(None) => Err(problem("invalid_api_key", "unknown or revoked API key")),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(problem("store_unavailable", "try again"))
        }
    }
}

pub(crate) async fn ingest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match read_body(body) {
        Ok(body) => ingest_inner(&state, &caller, &body).await,
        Err(r) => r,
    }
}

async fn ingest_inner(state: &AppState, caller: &Caller, body: &[u8]) -> Response {
    if caller.role == Role::Reader {
        return problem("forbidden", "a reader key cannot send events");
    }
    // A JSON array of events, or JSON Lines, read item by item (wabill_formats::body): an
    // item's index counts blank lines, a line that is not UTF-8 is refused alone, and reading
    // stops at the first item, or the first event of an envelope, beyond the limit, so that a
    // body never costs more than the limit whatever it holds (decisions.md D73, D74).
    let lines = wabill_formats::body::shape(body) == wabill_formats::body::Shape::Lines;
    let error = |i: usize, field: &str, reason: &str| {
        let mut e = serde_json::json!({"index": i, "field": field, "reason": reason});
        if lines {
            e["line"] = serde_json::json!(i + 1);
        }
        e
    };
    let mut errors: Vec<serde_json::Value> = Vec::new();
    let mut parsed = Parsed::default();
    let mut index_of = Vec::new();
    // Meta's pricing, with the index of the line that carried it.
    let mut pricing: Vec<(usize, MetaPricingRow)> = Vec::new();
    let mut last_item_events = 0;
    let read = wabill_formats::body::items(body, MAX_EVENTS_PER_REQUEST, |i, item| {
        let line = match item {
            Ok(line) => line,
            Err(why) => {
                errors.push(error(i, "", &why));
                return true;
            }
        };
        let before = parsed.events.len();
        let before_pricing = parsed.meta_pricing.len();
        match parse_line(line, i as u64, &mut parsed) {
            Ok(()) => {
                last_item_events = parsed.events.len() - before;
                index_of.extend(std::iter::repeat_n(i, last_item_events));
                for row in meta_rows(line, &parsed.meta_pricing[before_pricing..]) {
                    let visible = match &row.waba {
                        Some(w) => caller.may_see(w),
                        None => caller.role == Role::Admin,
                    };
                    if visible {
                        pricing.push((i, row));
                    } else {
                        errors.push(error(
                            i,
                            "entry.id",
                            "this key may not send Meta's pricing for that WABA",
                        ));
                    }
                }
            }
            Err(e) => errors.push(error(i, &e.field, &e.why)),
        }
        parsed.events.len() <= MAX_EVENTS_PER_REQUEST
    });
    let at = |i: usize| {
        if lines {
            format!("line {}", i + 1)
        } else {
            format!("the element at index {i}")
        }
    };
    match read {
        Ok(_) => {}
        Err(BodyError::Empty) => {
            return problem(
                "empty_body",
                "the body holds no event: send JSON Lines or a JSON array of events",
            )
        }
        Err(BodyError::TooManyItems { limit, index }) => {
            return problem(
                "too_many_events",
                format!(
                    "at most {limit} events per request: {} is the {}th item",
                    at(index),
                    limit + 1
                ),
            )
        }
        Err(BodyError::Stopped { index }) => {
            return problem(
                "too_many_events",
                format!(
                    "at most {MAX_EVENTS_PER_REQUEST} events per request: with {} (which holds \
                     {last_item_events} events) the request holds {}",
                    at(index),
                    parsed.events.len()
                ),
            )
        }
        Err(BodyError::Invalid(why)) => return problem("invalid_body", why),
    }
    let mut batch = Vec::with_capacity(parsed.events.len());
    for (e, i) in parsed.events.into_iter().zip(index_of) {
        let waba = match &e {
            Event::Account(a) => Some(a.waba.as_ref()),
            Event::Inbound(x) => Some(x.waba.as_ref()),
            Event::Outbound(x) => Some(x.waba.as_ref()),
            // A status that names its message's WABA (decisions.md D110) is that WABA's.
            Event::Status(x) => x.message.as_deref().map(|m| m.waba.as_ref()),
        };
        if let Some(w) = waba {
            if !caller.may_see(w) {
                errors.push(error(
                    i,
                    "waba",
                    "this key may not send events for that WABA",
                ));
                continue;
            }
        }
        batch.push((i, e));
    }
    // A status and Meta's pricing name only a message id: a scoped key may send those of its
    // own WABAs' messages (in this batch or stored), never another tenant's (decisions.md D46,
    // D50). The refusal names neither the other WABA nor anything stored of it.
    if let Some(wabas) = &caller.wabas {
        let own: std::collections::HashSet<&str> = batch
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Outbound(o) => Some(o.id.as_ref()),
                _ => None,
            })
            .collect();
        let mut ask: Vec<String> = batch
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Status(s) => Some(s.id.as_ref()),
                _ => None,
            })
            .chain(pricing.iter().map(|(_, p)| p.id.as_str()))
            .filter(|id| !own.contains(id))
            .map(str::to_string)
            .collect();
        ask.sort_unstable();
        ask.dedup();
        let foreign: std::collections::HashSet<String> = if ask.is_empty() {
            Default::default()
        } else {
            match state.engine.store().outbound_refs(&ask).await {
                Ok(refs) => refs
                    .into_iter()
                    .filter(|r| !wabas.contains(&r.waba))
                    .map(|r| r.id)
                    .collect(),
                Err(e) => {
                    tracing::error!(error = %e, "looking up the messages of statuses failed");
                    return problem("store_unavailable", "nothing was stored; send it again");
                }
            }
        };
        if !foreign.is_empty() {
            let refused = "no message of this key's WABAs has this id";
            batch.retain(|(i, e)| match e {
                Event::Status(s) if foreign.contains(s.id.as_ref()) => {
                    errors.push(error(*i, "id", refused));
                    false
                }
                _ => true,
            });
            pricing.retain(|(i, p)| {
                let keep = !foreign.contains(&p.id);
                if !keep {
                    errors.push(error(
                        *i,
                        "pricing",
                        &format!("Meta's pricing of a message: {refused}"),
                    ));
                }
                keep
            });
        }
    }
    let pricing: Vec<MetaPricingRow> = pricing.into_iter().map(|(_, p)| p).collect();
    state.engine.metrics.add_rejected(errors.len() as u64);
    let stored = match state.engine.ingest(&batch).await {
        Ok(out) => match state.engine.store().record_meta_pricing(&pricing).await {
            Ok(_) => Ok(out),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match stored {
        Ok(out) => {
            for (i, why) in out.conflicts {
                errors.push(error(i, "id", &why));
            }
            errors.sort_by_key(|e| e["index"].as_u64());
            let body = serde_json::json!({
                "stored": out.stored,
                "duplicates": out.duplicates,
                "rejected": errors.len(),
                "errors": errors,
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "storing events failed");
            problem(
                "store_unavailable",
                "the batch was not (entirely) stored; send it again: what was stored comes back \
                 as duplicates",
            )
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ChargesQuery {
    waba: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
    format: Option<String>,
}

#[allow(clippy::result_large_err)]
fn instant_param(v: &Option<String>, name: &str) -> Result<Option<UnixMs>, Response> {
    v.as_deref()
        .map(|s| {
            wabill_formats::time::parse_instant(s)
                .map_err(|why| problem("invalid_parameter", format!("{name}: {why}")))
        })
        .transpose()
}

pub(crate) async fn charges(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(q): Params<ChargesQuery>,
) -> Response {
    let (from_ms, to_ms) = match (instant_param(&q.from, "from"), instant_param(&q.to, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let after = match q.after.as_deref().map(parse_cursor) {
        Some(None) => {
            return problem(
                "invalid_parameter",
                "after: not a cursor from a previous page",
            )
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let filter = ChargeFilter {
        waba: q.waba.clone(),
        wabas: caller.wabas.clone(),
        from_ms,
        to_ms,
        after,
        limit,
    };
    let rows = match state.engine.store().charges(&filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading charges failed");
            return problem("store_unavailable", "try again");
        }
    };
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| format_cursor(&r.cursor())))
        .flatten();
    if q.format.as_deref() == Some("csv") {
        let mut out = wabill_formats::charges::csv_header().into_bytes();
        for r in &rows {
            write_row_csv(&mut out, r);
        }
        let mut resp = (StatusCode::OK, out).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().expect("valid"),
        );
        if let Some(n) = next {
            resp.headers_mut()
                .insert("x-next-cursor", n.parse().expect("ascii cursor"));
        }
        return resp;
    }
    let mut out = Vec::with_capacity(rows.len() * 340 + 64);
    out.extend_from_slice(b"{\"charges\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row_json(&mut out, r);
    }
    out.extend_from_slice(b"],\"next\":");
    match next {
        Some(n) => json_str(&mut out, &n),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    resp
}

fn format_cursor(c: &ChargeCursor) -> String {
    format!("{}.{}", c.sent_at_ms, hex::encode(c.id.as_bytes()))
}

fn parse_cursor(s: &str) -> Option<ChargeCursor> {
    let (at, id) = s.split_once('.')?;
    Some(ChargeCursor {
        sent_at_ms: at.parse().ok()?,
        id: String::from_utf8(hex::decode(id).ok()?).ok()?,
    })
}

/// A stored charge in exactly the JSON of `wabill rate` (docs/events.md field order).
pub fn write_row_json(out: &mut Vec<u8>, r: &ChargeRow) {
    let s = |out: &mut Vec<u8>, k: &str, v: &str| {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
        out.push(b',');
    };
    let opt = |out: &mut Vec<u8>, k: &str, v: Option<&str>| {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        match v {
            Some(v) => json_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    };
    out.push(b'{');
    s(out, "id", &r.id);
    s(out, "waba", &r.waba);
    s(out, "phone", &r.phone);
    s(out, "user", &r.user);
    s(out, "country", &r.country);
    s(out, "market", &r.market);
    s(out, "pricing_model", &r.pricing_model);
    s(out, "category", &r.category);
    s(out, "type", &r.pricing_type);
    out.extend_from_slice(if r.billable {
        b"\"billable\":true,"
    } else {
        b"\"billable\":false,"
    });
    opt(out, "tier", r.tier.as_deref());
    out.push(b',');
    opt(out, "rate", r.rate.map(|d| d.to_string()).as_deref());
    out.push(b',');
    s(out, "amount", &r.amount.to_string());
    s(out, "currency", &r.currency);
    opt(
        out,
        "billed_at",
        r.billed_at_ms
            .map(wabill_formats::time::format_instant)
            .as_deref(),
    );
    out.push(b',');
    opt(out, "conversation_id", r.conversation_id.as_deref());
    // As `wabill rate` writes it: `agent` only when the message named one (D44).
    if let Some(a) = r.agent.as_deref() {
        out.push(b',');
        opt(out, "agent", Some(a));
    }
    out.push(b'}');
}

fn write_row_csv(out: &mut Vec<u8>, r: &ChargeRow) {
    let cells = [
        r.id.clone(),
        r.waba.clone(),
        r.phone.clone(),
        r.user.clone(),
        r.country.clone(),
        r.market.clone(),
        r.pricing_model.clone(),
        r.category.clone(),
        r.pricing_type.clone(),
        r.billable.to_string(),
        r.tier.clone().unwrap_or_default(),
        r.rate.map(|d| d.to_string()).unwrap_or_default(),
        r.amount.to_string(),
        r.currency.clone(),
        r.billed_at_ms
            .map(wabill_formats::time::format_instant)
            .unwrap_or_default(),
        r.conversation_id.clone().unwrap_or_default(),
        r.agent.clone().unwrap_or_default(),
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(c.as_bytes());
        }
    }
    out.push(b'\n');
}

pub(crate) async fn unratable(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if caller.role != Role::Admin {
        return problem(
            "forbidden",
            "only an admin key sees rating errors across portfolios",
        );
    }
    let list = state.engine.unratable().await;
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "unratable": list })),
    )
        .into_response()
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.engine.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4".parse().expect("valid"),
    );
    resp
}
