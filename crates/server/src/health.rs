//! The probes: liveness (`GET /healthz`: the process answers, whatever the store's state) and
//! readiness (`GET /readyz`: the store can be read and written now, else `503
//! store_unavailable`). A load balancer takes an unready instance out of rotation and a
//! supervisor restarts only one that is not live: a full disk or a database gone is waited
//! out, since writes resume by themselves when the fault clears (decisions.md D81).

use crate::api::AppState;
use crate::errors::{problem, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one readiness answer is reused: the SQLite probe is a write, which probes in a
/// tight loop must not turn into load on the writer.
pub const READINESS_TTL: Duration = Duration::from_secs(1);
/// Longest a readiness probe waits for the store.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// The last readiness answer: when, and the store's reason if it was not ready.
#[derive(Default)]
pub struct Readiness(Mutex<Option<(Instant, Result<(), String>)>>);

pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "store": state.engine.store().backend().to_string(),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let cached = state
        .readiness
        .0
        .lock()
        .expect("not poisoned")
        .clone()
        .filter(|(at, _)| at.elapsed() < READINESS_TTL);
    let outcome =
        match cached {
            Some((_, outcome)) => outcome,
            None => {
                let outcome =
                    match tokio::time::timeout(READINESS_TIMEOUT, state.engine.store().health())
                        .await
                    {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!(
                            "no answer from the store within {} s",
                            READINESS_TIMEOUT.as_secs()
                        )),
                    };
                *state.readiness.0.lock().expect("not poisoned") =
                    Some((Instant::now(), outcome.clone()));
                outcome
            }
        };
    let backend = state.engine.store().backend().to_string();
    match outcome {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready", "store": backend})),
        )
            .into_response(),
        Err(why) => {
            tracing::warn!(error = %why, "not ready: the store is unavailable");
            problem(
                ErrorCode::StoreUnavailable,
                format!("the {backend} store cannot be written now: {why}"),
            )
        }
    }
}
