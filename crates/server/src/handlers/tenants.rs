//! `/v1/tenants`: set-ups, licences and invoices (the engine's `tenants`), with the tenant scope
//! of the caller: a tenant a key may not read is answered exactly as a missing one.

use crate::api::{audited, read_body, AppState, Auth, Params};
use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use wabill_billing::{render, TenantSetup};
use wabill_engine::tenants::{
    add_licence, load, month_invoice, parse_setup, put_setup, TenantError,
};
use wabill_engine::{audit, Caller};
use wabill_rating::Month;
use wabill_store::{Role, TenantRow};

pub(crate) fn answer_error(e: TenantError) -> Response {
    if let TenantError::Store(s) = &e {
        tracing::error!(error = %s, "tenant store call failed");
        return problem(ErrorCode::StoreUnavailable, "try again");
    }
    problem(ErrorCode::of(e.code()), e.to_string())
}

#[allow(clippy::result_large_err)]
pub(crate) fn admin(caller: &Caller) -> Result<(), Response> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(problem(
            ErrorCode::Forbidden,
            "only an admin key manages tenants",
        ))
    }
}

/// Reads the tenant for a caller; a tenant the caller may not read is answered exactly as a
/// missing one, so that a key learns nothing of other tenants.
pub(crate) async fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(TenantRow, TenantSetup), Response> {
    match load(&**state.engine.store(), id).await {
        Ok((row, setup)) if caller.may_read(&setup) => Ok((row, setup)),
        Ok(_) | Err(TenantError::UnknownTenant(_)) => Err(problem(
            ErrorCode::UnknownTenant,
            "no tenant of that id this key may read",
        )),
        Err(e) => Err(answer_error(e)),
    }
}

fn tenant_body(row: &TenantRow, setup: &TenantSetup, recorded: Option<bool>) -> Response {
    let mut v = json!({
        "tenant": row.tenant,
        "version": row.version,
        "recorded_at_ms": row.recorded_at_ms,
        "setup": setup,
    });
    if let Some(r) = recorded {
        v["recorded"] = json!(r);
    }
    (StatusCode::OK, axum::Json(v)).into_response()
}

async fn write_route(
    state: &AppState,
    caller: &Caller,
    body: Result<Bytes, BytesRejection>,
    id: &str,
    licence: bool,
) -> Response {
    if let Err(r) = admin(caller) {
        return r;
    }
    let body = match read_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return problem(ErrorCode::InvalidBody, "the body is not UTF-8");
    };
    let store = &**state.engine.store();
    let done = if licence {
        add_licence(store, id, text).await
    } else {
        put_setup(store, id, text).await
    };
    // The send check's licence answers see a change made here at once (others, made from
    // the command line, within a second).
    state.engine.licences.clear();
    match done {
        Ok((row, recorded)) => {
            if recorded {
                let action = if licence {
                    audit::action::LICENCE_ADD
                } else {
                    audit::action::TENANT_PUT
                };
                if let Err(r) = audited(state, caller, action, id).await {
                    return r;
                }
            }
            match parse_setup(&row.setup) {
                Ok(setup) => tenant_body(&row, &setup, Some(recorded)),
                Err(e) => answer_error(e),
            }
        }
        Err(e) => answer_error(e),
    }
}

/// `PUT /v1/tenants/{id}` (admin).
pub(crate) async fn put_tenant(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_route(&state, &caller, body, &id, false).await
}

/// `POST /v1/tenants/{id}/licences` (admin).
pub(crate) async fn post_licence(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_route(&state, &caller, body, &id, true).await
}

/// `GET /v1/tenants/{id}`.
pub(crate) async fn get_tenant(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Response {
    match readable(&state, &caller, &id).await {
        Ok((row, setup)) => tenant_body(&row, &setup, None),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct InvoiceQuery {
    format: Option<String>,
}

/// `GET /v1/tenants/{id}/invoices/{month}`.
pub(crate) async fn get_invoice(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((id, month)): Path<(String, String)>,
    Params(q): Params<InvoiceQuery>,
) -> Response {
    invoice_route(&state, &caller, &id, &month, q.format.as_deref(), false).await
}

/// `POST /v1/tenants/{id}/invoices/{month}/finalize` (admin).
pub(crate) async fn finalize_invoice(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((id, month)): Path<(String, String)>,
) -> Response {
    invoice_route(&state, &caller, &id, &month, None, true).await
}

async fn invoice_route(
    state: &AppState,
    caller: &Caller,
    id: &str,
    month: &str,
    format: Option<&str>,
    finalize: bool,
) -> Response {
    if let Err(r) = readable(state, caller, id).await {
        return r;
    }
    if finalize {
        if let Err(r) = admin(caller) {
            return r;
        }
    }
    let Some(month) = Month::parse(month) else {
        return problem(
            ErrorCode::InvalidParameter,
            format!("'{month}' is not a month (YYYY-MM)"),
        );
    };
    let text = format.unwrap_or("json");
    if !matches!(text, "json" | "csv" | "html") {
        return problem(
            ErrorCode::InvalidParameter,
            format!("format: '{text}' is not json, csv or html"),
        );
    }
    let finalize_at = finalize.then(|| state.engine.clock.now_ms());
    match month_invoice(&**state.engine.store(), id, month, finalize_at).await {
        Ok(inv) => {
            if finalize {
                let target = format!("{id}/{month}");
                if let Err(r) =
                    audited(state, caller, audit::action::INVOICE_FINALIZE, &target).await
                {
                    return r;
                }
            }
            let (body, ct) = match text {
                "csv" => (render::csv(&inv), "text/csv; charset=utf-8"),
                "html" => (render::html(&inv), "text/html; charset=utf-8"),
                _ => (render::json(&inv), "application/json"),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(e) => answer_error(e),
    }
}
