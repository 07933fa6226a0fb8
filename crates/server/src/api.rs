//! What every handler shares: the state, the [`Auth`] extractor (API key, tenant scope and the
//! per-key rate limit), query strings read as our errors ([`Params`]), request bodies. The
//! handlers are in `handlers/`, the list of routes in `routes.rs`; every route but the webhook
//! (authenticated by Meta's signature), the probes, the OpenAPI document, the console's files
//! and the public calculator needs an API key.

use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;
use wabill_engine::cache::TtlCache;
use wabill_engine::{hash_key, Caller, Engine};
use wabill_store::Role;

pub use crate::routes::router;

/// Most events one `POST /v1/events` may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Most rows one page of `GET /v1/charges` may ask for (`limit`, 1 to this).
pub const MAX_PAGE_ROWS: u32 = 10_000;
/// Most entries one page of `GET /v1/audit` may ask for (`limit`, 1 to this).
pub const MAX_AUDIT_ROWS: u32 = 1000;
/// Largest request body accepted by default (413 above).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// What the routes share.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// App secrets accepted for `X-Hub-Signature-256` (two during a rotation). Empty: the
    /// webhook route refuses every post.
    pub app_secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    /// Largest request body accepted; larger ones get 413 `payload_too_large`.
    pub max_body_bytes: usize,
    /// API keys looked up recently, by hash: a request within [`wabill_engine::cache::KEY_CACHE_TTL`] of the lookup
    /// reads no store, so a revoked key (or a changed tenant) takes effect within that time.
    /// Unknown keys are not kept.
    pub keys: TtlCache<[u8; 32], Caller>,
    /// Requests per second per API key, taken by the [`Auth`] extractor (none by default).
    pub rate_limit: crate::limits::RateLimiter,
    /// How budget alerts are sealed, checked and delivered (the alert settings route and the
    /// alert worker share it).
    pub alerts: wabill_engine::alerts::AlertConfig,
    /// The last readiness answer, reused for a moment (`health`).
    pub readiness: crate::health::Readiness,
    /// The public calculator (`/v1/estimate`) is on; off, its routes answer 404.
    pub calculator: bool,
    /// Turns of the calculator: estimates computed at once.
    pub estimates: tokio::sync::Semaphore,
}

impl AppState {
    /// A state with the default body limit.
    pub fn new(engine: Arc<Engine>, app_secrets: Vec<Vec<u8>>, verify_token: String) -> AppState {
        AppState {
            app_secrets,
            verify_token,
            max_body_bytes: MAX_BODY_BYTES,
            keys: TtlCache::default(),
            alerts: wabill_engine::alerts::AlertConfig::default(),
            rate_limit: crate::limits::RateLimiter::default(),
            readiness: crate::health::Readiness::default(),
            calculator: true,
            estimates: tokio::sync::Semaphore::new(crate::handlers::estimate::ESTIMATES_AT_ONCE),
            engine,
        }
    }
}

pub(crate) fn observe(
    state: &AppState,
    route: &'static str,
    started: Instant,
    mut resp: Response,
) -> Response {
    state.engine.metrics.observe(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp.extensions_mut().insert(RouteTemplate(route));
    resp
}

/// The route template ("/v1/tenants/{id}") that answered, for the request log.
#[derive(Clone, Copy)]
pub(crate) struct RouteTemplate(pub &'static str);

/// Logs one line per request once it is answered: method, route template (never the path, which
/// may carry a tenant's or a WABA's id; `-` for a path no route has), status and duration in
/// milliseconds. The query string, headers and bodies are never logged: they hold keys and
/// tenants' data.
pub(crate) async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map_or("-", |r| r.0);
    tracing::info!(
        method = %method,
        route,
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// The body, or the answer to give when it could not be read: 413 over the limit.
#[allow(clippy::result_large_err)]
pub(crate) fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            problem(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the service accepts",
            )
        } else {
            problem(ErrorCode::InvalidBody, rejection.body_text())
        }
    })
}

/// The caller of a request with an API key, taken as an extractor.
pub struct Auth(pub Caller);

/// Routes with an API key take [`Auth`] as an extractor, so that a handler cannot run
/// without authentication having passed; it is listed before the query string and the body, so
/// an unauthenticated request learns nothing about their shape. It also takes the key's token
/// of the per-key rate limit: `429 rate_limited` with `Retry-After` when there is none, which
/// counts only that key's requests and names nothing else (decisions.md D85).
impl axum::extract::FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = authenticate(state, &parts.headers).await?;
        if let Some(id) = caller.key_id {
            if let Err(wait_s) = state.rate_limit.admit(id) {
                return Err(crate::errors::problem_retry(
                    ErrorCode::RateLimited,
                    "this API key sent more requests than its rate limit allows",
                    wait_s,
                ));
            }
        }
        Ok(Auth(caller))
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
                ErrorCode::InvalidParameter,
                format!("the query string: {}", rejection.body_text()),
            )),
        }
    }
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
        .ok_or_else(|| {
            problem(
                ErrorCode::MissingApiKey,
                "send Authorization: Bearer <api key>",
            )
        })?;
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
                key_name: Some(k.name.clone()),
            };
            state.keys.put(hash, caller.clone());
            Ok(caller)
        }
        Ok(None) => Err(problem(
            ErrorCode::InvalidApiKey,
            "unknown or revoked API key",
        )),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(problem(ErrorCode::StoreUnavailable, "try again"))
        }
    }
}

/// Records an admin action of `caller` in the audit log once it is done; the answer to give
/// when the log cannot be written (`503`: the action stays done, and doing it again records it).
#[allow(clippy::result_large_err)]
pub(crate) async fn audited(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
) -> Result<(), Response> {
    let now = state.engine.clock.now_ms();
    wabill_engine::audit::record_by(&**state.engine.store(), caller, action, target, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, action, target, "recording an admin action failed");
            problem(
                ErrorCode::StoreUnavailable,
                "done, but not recorded in the audit log: send it again",
            )
        })
}
