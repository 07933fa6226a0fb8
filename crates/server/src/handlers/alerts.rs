//! `PUT /v1/tenants/{id}/alerts/settings` and `GET /v1/tenants/{id}/alerts`: budget alert
//! settings and deliveries (the engine's `alerts`).

use super::tenants::{admin, answer_error, readable};
use crate::api::{audited, read_body, AppState, Auth};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use wabill_engine::{alerts, audit};
use wabill_formats::time::format_instant;
use wabill_store::{AlertRow, AlertSettingsRow};

fn settings_view(s: &AlertSettingsRow) -> Value {
    let thresholds: Value = serde_json::from_str(&s.thresholds).unwrap_or(Value::Null);
    json!({
        "url": s.url,
        "thresholds": thresholds,
        "secret_set": !s.secret.is_empty(),
        "updated_at": format_instant(s.updated_at_ms),
    })
}

fn alert_view(a: &AlertRow) -> Value {
    let mut v: Value = serde_json::from_str(&a.payload).unwrap_or_else(|_| json!({}));
    let state = match (a.delivered_at_ms, a.next_attempt_at_ms) {
        (Some(_), _) => "delivered",
        (None, Some(_)) => "pending",
        (None, None) => "failed",
    };
    v["state"] = json!(state);
    v["attempts"] = json!(a.attempts);
    v["created_at"] = json!(format_instant(a.created_at_ms));
    v["delivered_at"] = json!(a.delivered_at_ms.map(format_instant));
    v["next_attempt_at"] = json!(a.next_attempt_at_ms.map(format_instant));
    v["last_error"] = json!(a.last_error);
    v
}

/// `PUT /v1/tenants/{id}/alerts/settings` (admin).
pub(crate) async fn put_settings(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = admin(&caller) {
        return r;
    }
    let body = match read_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = state.engine.clock.now_ms();
    let store = &**state.engine.store();
    let row = match alerts::put_settings(store, &state.alerts, &id, &body, now).await {
        Ok(row) => row,
        Err(e) => return answer_error(e),
    };
    if let Err(r) = audited(&state, &caller, audit::action::ALERT_SETTINGS_PUT, &id).await {
        return r;
    }
    // What is already due is recorded now rather than at the next evaluation.
    state.engine.notify_rerated();
    let v = json!({"tenant": id, "settings": settings_view(&row)});
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// `GET /v1/tenants/{id}/alerts`.
pub(crate) async fn get_alerts(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = readable(&state, &caller, &id).await {
        return r;
    }
    let store = &**state.engine.store();
    let settings = match store.alert_settings(&id).await {
        Ok(s) => s,
        Err(e) => return answer_error(e.into()),
    };
    let alerts = match store.alerts(&id).await {
        Ok(a) => a,
        Err(e) => return answer_error(e.into()),
    };
    let v = json!({
        "tenant": id,
        "settings": settings.as_ref().map(settings_view),
        "alerts": alerts.iter().map(alert_view).collect::<Vec<_>>(),
    });
    (StatusCode::OK, axum::Json(v)).into_response()
}
