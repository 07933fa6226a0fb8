//! `GET /v1/audit`: the audit log of admin actions (the engine's `audit`), admin keys only.

use crate::api::{AppState, Auth, Params, MAX_AUDIT_ROWS};
use crate::errors::{problem, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use wabill_engine::audit;
use wabill_store::Role;

#[derive(serde::Deserialize)]
pub(crate) struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /v1/audit?after=&limit=`.
pub(crate) async fn audit_log(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Params(q): Params<AuditQuery>,
) -> Response {
    if caller.role != Role::Admin {
        return problem(
            ErrorCode::Forbidden,
            "only an admin key reads the audit log",
        );
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_ROWS).contains(&limit) {
        return problem(
            ErrorCode::InvalidParameter,
            format!("limit: 1 to {MAX_AUDIT_ROWS}"),
        );
    }
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return problem(ErrorCode::InvalidParameter, "after: an entry id, 0 or more");
    }
    match state.engine.store().audit_log(after, limit).await {
        Ok(rows) => {
            let next = (rows.len() == limit as usize)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            let body = json!({
                "entries": rows.iter().map(audit::to_json).collect::<Vec<_>>(),
                "next": next,
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the audit log failed");
            problem(ErrorCode::StoreUnavailable, "try again")
        }
    }
}
