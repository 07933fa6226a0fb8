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
use wabill_engine::{audit, links, Caller};
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

#[derive(serde::Deserialize)]
pub(crate) struct LinkQuery {
    ttl: Option<i64>,
}

/// `POST /v1/tenants/{id}/invoices/{month}/link`: a signed link to the printable invoice, for
/// any key that may read the tenant (decisions.md D97).
pub(crate) async fn invoice_link(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((id, month)): Path<(String, String)>,
    Params(q): Params<LinkQuery>,
) -> Response {
    if let Err(r) = readable(&state, &caller, &id).await {
        return r;
    }
    let Some(month) = Month::parse(&month) else {
        return problem(
            ErrorCode::InvalidParameter,
            format!("'{month}' is not a month (YYYY-MM)"),
        );
    };
    let ttl = q.ttl.unwrap_or(links::DEFAULT_TTL_S);
    if !(60..=links::MAX_TTL_S).contains(&ttl) {
        return problem(
            ErrorCode::InvalidParameter,
            format!(
                "ttl: {ttl} is not within 60 to {} seconds",
                links::MAX_TTL_S
            ),
        );
    }
    let Some(keys) = state.alerts.secrets.as_ref() else {
        return problem(
            ErrorCode::SecretsKeyMissing,
            "no secrets key is configured (secrets-key), so no link can be signed",
        );
    };
    let expires_s = state.engine.clock.now_ms().div_euclid(1000) + ttl;
    let target = format!("{id}/{month}");
    if let Err(r) = audited(&state, &caller, audit::action::INVOICE_LINK, &target).await {
        return r;
    }
    let path = links::invoice_path(keys, &id, month, expires_s);
    let expires_at = wabill_formats::time::format_instant(expires_s * 1000);
    (
        StatusCode::OK,
        axum::Json(json!({ "path": path, "expires_at": expires_at })),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct SharedQuery {
    expires: i64,
    sig: String,
}

/// `GET /invoices/{id}/{month}`: the printable invoice a signed link opens, without a key.
pub(crate) async fn shared_invoice(
    State(state): State<Arc<AppState>>,
    Path((id, month)): Path<(String, String)>,
    Params(q): Params<SharedQuery>,
) -> Response {
    let Some(month) = Month::parse(&month) else {
        return problem(ErrorCode::LinkInvalid, "not a link this service made");
    };
    let Some(keys) = state.alerts.secrets.as_ref() else {
        return problem(
            ErrorCode::SecretsKeyMissing,
            "no secrets key is configured (secrets-key), so no link can be checked",
        );
    };
    let now = state.engine.clock.now_ms();
    match links::check(keys, &id, month, q.expires, &q.sig, now) {
        Ok(()) => {}
        Err(links::LinkError::Invalid) => {
            return problem(ErrorCode::LinkInvalid, "not a link this service made")
        }
        Err(links::LinkError::Expired) => {
            return problem(
                ErrorCode::LinkExpired,
                "the link has expired: ask for a new one",
            )
        }
    }
    match month_invoice(&**state.engine.store(), &id, month, None).await {
        Ok(inv) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // The link is the credential: no cache or referrer may keep it.
                (header::CACHE_CONTROL, "private, no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            render::html(&inv),
        )
            .into_response(),
        Err(e) => answer_error(e),
    }
}
