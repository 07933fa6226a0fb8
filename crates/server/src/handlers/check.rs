//! `POST /v1/sends/check`: the engine's send check, answered with its code's status.

use crate::api::{read_body, AppState, Auth};
use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use wabill_engine::check::{check, licence_answer, CheckError, CheckRequest};
use wabill_engine::Caller;

/// `POST /v1/sends/check`. Any key may check a WABA it sees: a check writes nothing, so a
/// reader key may ask too.
pub(crate) async fn send_check(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match read_body(body) {
        Ok(body) => check_inner(&state, &caller, &body).await,
        Err(r) => r,
    }
}

async fn check_inner(state: &AppState, caller: &Caller, body: &[u8]) -> Response {
    let req: CheckRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return problem(ErrorCode::InvalidRequest, format!("not a send check: {e}")),
    };
    if !caller.may_see(&req.waba) {
        return problem(ErrorCode::Forbidden, "this key may not use that WABA");
    }
    let now = match req.now.as_deref() {
        Some(s) => match wabill_formats::time::parse_instant(s) {
            Ok(t) => t,
            Err(why) => return problem(ErrorCode::InvalidRequest, format!("now: {why}")),
        },
        None => state.engine.clock.now_ms(),
    };
    if let Some(agent) = &req.agent {
        match licence_answer(&state.engine, &req.waba, agent, now).await {
            Ok(Some(answer)) => {
                return (ErrorCode::LicenseRequired.status(), axum::Json(answer)).into_response()
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading the tenant of a send check failed");
                return problem(ErrorCode::StoreUnavailable, "try again");
            }
        }
    }
    match check(&state.engine, caller, &req, now).await {
        Ok(answer) => {
            // A "no" is an answer: its status comes from its code's row of the error table.
            let status = match answer["reason"]["code"].as_str() {
                Some(code) => ErrorCode::of(code).status(),
                None => StatusCode::OK,
            };
            (status, axum::Json(answer)).into_response()
        }
        Err(CheckError::Invalid { field, why }) => {
            problem(ErrorCode::InvalidRequest, format!("{field}: {why}"))
        }
        Err(CheckError::UnknownAccount(w)) => problem(
            ErrorCode::UnknownAccount,
            format!("WABA '{w}' has no account event: nothing can be rated for it"),
        ),
        Err(CheckError::Unratable { code, message }) => problem(ErrorCode::of(code), message),
        Err(CheckError::Store(e)) => {
            tracing::error!(error = %e, "send check failed");
            problem(ErrorCode::StoreUnavailable, "try again")
        }
    }
}
