//! `POST /v1/estimate` and `GET /v1/estimate`: the public calculator, on the engine of
//! `wabill estimate` (`wabill-estimate`). The request is the document of
//! `wabill_estimate::request`, the answer exactly what `wabill estimate --format json` prints
//! for the same input. No API key: it reads and writes nothing of anyone's. When the calculator
//! is turned off (`calculator = false`) both answer 404, as a route the service does not have
//! (decisions.md D170). An estimate rates up to two synthetic months of up to 2,000,000
//! messages: one at a time, on a blocking thread, so that it never holds up the other routes;
//! the others wait their turn within the request timeout (D172).

use crate::api::{read_body, AppState};
use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::Arc;
use wabill_estimate::{answer, parse_request, EstimateError, TrafficCategory};

/// Largest body `POST /v1/estimate` takes (413 `payload_too_large` beyond): a thousand lines
/// of traffic fit in it.
pub const MAX_ESTIMATE_BODY_BYTES: usize = 128 << 10;

/// Estimates computed at once; the others wait.
pub const ESTIMATES_AT_ONCE: usize = 1;

fn off() -> Response {
    problem(
        ErrorCode::NotFound,
        "the calculator is turned off on this service (calculator = false)",
    )
}

/// The answer to an estimate that cannot be made: `missing_rate` (422) when the rate data
/// cannot price the traffic, `invalid_request` (400) naming the estimate's own code otherwise.
fn refused(e: &EstimateError) -> Response {
    if e.code() == "missing_rate" {
        problem(ErrorCode::MissingRate, e.to_string())
    } else if e.is_unratable() {
        tracing::error!(error = %e, "an estimate's synthetic month could not be rated");
        problem(ErrorCode::InternalError, "the estimate could not be rated")
    } else {
        problem(ErrorCode::InvalidRequest, format!("[{}] {e}", e.code()))
    }
}

/// `POST /v1/estimate`.
pub(crate) async fn estimate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.calculator {
        return off();
    }
    let body = match read_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return problem(ErrorCode::InvalidBody, format!("not JSON: {e}")),
    };
    let request = match parse_request(&value) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let Ok(_turn) = state.estimates.acquire().await else {
        return problem(ErrorCode::InternalError, "the calculator is closed");
    };
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || answer(engine.tariff(), &request)).await {
        Ok(Ok(json)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Ok(Err(e)) => refused(&e),
        Err(e) => {
            tracing::error!(error = %e, "an estimate failed");
            problem(ErrorCode::InternalError, "the estimate failed")
        }
    }
}

/// `GET /v1/estimate`: what the calculator can be asked, from the rate data the service runs
/// on: its markets, the currencies it has rates in, the categories and the bounds.
pub(crate) async fn options(State(state): State<Arc<AppState>>) -> Response {
    if !state.calculator {
        return off();
    }
    let tariff = state.engine.tariff();
    let mut markets: Vec<&str> = tariff.markets.market_names().collect();
    markets.sort_unstable();
    markets.dedup();
    let currencies: BTreeSet<&str> = tariff
        .rates
        .iter()
        .map(|(k, _)| k.currency.as_str())
        .collect();
    let body = serde_json::json!({
        "markets": markets,
        "currencies": currencies,
        "categories": TrafficCategory::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "max_messages": wabill_estimate::MAX_MESSAGES,
        "max_traffic_lines": wabill_estimate::MAX_TRAFFIC_LINES,
        "max_phones": wabill_estimate::MAX_PHONES,
        "call_currencies": tariff.call_rates.currencies().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "max_call_minutes": wabill_estimate::MAX_CALL_MINUTES,
        "max_call_seconds": wabill_estimate::MAX_CALL_SECONDS,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}
