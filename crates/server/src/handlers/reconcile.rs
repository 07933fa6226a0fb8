//! `GET /v1/reconciliation`: wabill's charges against Meta's webhook pricing for a WABA's month
//! (the engine's `reconcile`).

use crate::api::{AppState, Auth, Params};
use crate::errors::{problem, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use wabill_engine::reconcile::month_report;
use wabill_engine::Caller;
use wabill_rating::time::local_day_start;
use wabill_rating::Month;

/// `GET /v1/reconciliation?waba=&month=YYYY-MM`.
pub(crate) async fn reconciliation(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Params(q): Params<HashMap<String, String>>,
) -> Response {
    inner(&state, &caller, &q).await
}

async fn inner(state: &AppState, caller: &Caller, q: &HashMap<String, String>) -> Response {
    let Some(waba) = q.get("waba").filter(|w| !w.is_empty()) else {
        return problem(ErrorCode::InvalidParameter, "waba: required");
    };
    if !caller.may_see(waba) {
        return problem(ErrorCode::Forbidden, "this key may not read that WABA");
    }
    let Some(month) = q.get("month").and_then(|m| Month::parse(m)) else {
        return problem(ErrorCode::InvalidParameter, "month: required, YYYY-MM");
    };
    let Some((_, tz)) = state.engine.account_info(waba).await else {
        return problem(
            ErrorCode::UnknownAccount,
            format!("WABA '{waba}' has no account: its months are unknown"),
        );
    };
    let from = local_day_start(tz, month.first_day());
    let to = local_day_start(tz, month.next().first_day());
    match month_report(state.engine.store().as_ref(), waba, from, to).await {
        Ok(report) => {
            let mut body = report.to_json();
            body["waba"] = json!(waba);
            body["month"] = json!(month.to_string());
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reconciliation failed");
            problem(ErrorCode::StoreUnavailable, "try again")
        }
    }
}
