//! Tenant billing in the service (issue #4): tenant set-ups kept as append-only versions,
//! licence records added to them, invoices of a month computed from the stored charges of the
//! tenant's WABAs, and finalized invoices stored once. Everything billing decides is
//! `wabill-billing`'s; this module reads and writes the store, and is shared by the routes
//! under `/v1/tenants` and by `wabill tenants` / `wabill invoice --tenant` (decisions.md D41).

use crate::api::{read_body, AppState, Caller, Params};
use crate::errors::problem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use wabill_billing::{
    render, BillingError, Invoice, InvoiceInput, LicenceAssignment, TenantSetup, UsageCharge,
};
use wabill_rating::time::local_day_start;
use wabill_rating::{Currency, Month};
use wabill_store::{
    ChargeFilter, InvoiceRow, NewTenant, Role, Store, StoreError, TenantOutcome, TenantRow,
};

/// Why a tenant operation was refused; each has a stable code of `errors.rs`.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{0}")]
    Invalid(String),
    #[error("no tenant '{0}'")]
    UnknownTenant(String),
    #[error("WABA '{waba}' belongs to tenant '{tenant}'")]
    WabaTaken { waba: String, tenant: String },
    #[error("{0}")]
    LicenceConflict(String),
    #[error("{tenant} {month} is already finalized; a finalized invoice never changes")]
    AlreadyFinalized { tenant: String, month: Month },
    #[error(
        "{later} is already finalized: months are finalized in order, {month} cannot be any more"
    )]
    FinalizedLater { month: Month, later: Month },
    #[error("the set-up was changed meanwhile; try again")]
    Busy,
    #[error("{0}")]
    Billing(#[from] BillingError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl TenantError {
    pub fn code(&self) -> &'static str {
        match self {
            TenantError::Invalid(_) => "invalid_request",
            TenantError::UnknownTenant(_) => "unknown_tenant",
            TenantError::WabaTaken { .. } => "waba_taken",
            TenantError::LicenceConflict(_) => "licence_conflict",
            TenantError::AlreadyFinalized { .. } => "already_finalized",
            TenantError::FinalizedLater { .. } => "finalized_later",
            TenantError::Busy | TenantError::Store(_) => "store_unavailable",
            TenantError::Billing(e) => e.code(),
        }
    }
}

/// A tenant id: 1 to 64 ASCII letters, digits, `.`, `_`, `-` (it is part of URLs and invoice
/// ids).
pub fn valid_tenant_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn parse_setup(text: &str) -> Result<TenantSetup, TenantError> {
    TenantSetup::from_json(text).map_err(|e| TenantError::Invalid(format!("set-up: {e}")))
}

/// Licence records are history: a new version keeps every record of the previous one, with
/// the same target and start; only an open record may be ended (its `to` set).
fn check_licence_history(old: &TenantSetup, new: &TenantSetup) -> Result<(), TenantError> {
    for o in &old.licences {
        let Some(n) = new.licences.iter().find(|n| n.id == o.id) else {
            return Err(TenantError::LicenceConflict(format!(
                "licence '{}' is missing: licence records are never removed (end one by setting its 'to')",
                o.id
            )));
        };
        if n.target != o.target || n.from != o.from || (o.to.is_some() && n.to != o.to) {
            return Err(TenantError::LicenceConflict(format!(
                "licence '{}' changes: a record keeps its target and start, and only an open one may be ended",
                o.id
            )));
        }
    }
    Ok(())
}

/// The newest set-up of a tenant, read.
pub async fn load(store: &dyn Store, id: &str) -> Result<(TenantRow, TenantSetup), TenantError> {
    let row = store
        .tenant(id)
        .await?
        .ok_or_else(|| TenantError::UnknownTenant(id.to_string()))?;
    let setup = TenantSetup::from_json(&row.setup).map_err(|e| {
        TenantError::Store(StoreError::Corrupt {
            table: "tenant_setups",
            key: row.version.to_string(),
            why: e.to_string(),
        })
    })?;
    Ok((row, setup))
}

async fn record(
    store: &dyn Store,
    old: Option<(&TenantRow, &TenantSetup)>,
    setup: &TenantSetup,
) -> Result<(TenantRow, bool), TenantError> {
    if let Some((_, o)) = old {
        check_licence_history(o, setup)?;
    }
    let text = serde_json::to_string(setup).expect("a set-up serializes");
    let outcome = store
        .put_tenant(&NewTenant {
            tenant: setup.tenant.id.clone(),
            wabas: setup.tenant.wabas.clone(),
            setup: text,
            expected_version: Some(old.map_or(0, |(r, _)| r.version)),
        })
        .await?;
    match outcome {
        TenantOutcome::Recorded(r) => Ok((r, true)),
        TenantOutcome::Unchanged(r) => Ok((r, false)),
        TenantOutcome::WabaTaken { waba, tenant } => Err(TenantError::WabaTaken { waba, tenant }),
        TenantOutcome::Stale { .. } => Err(TenantError::Busy),
    }
}

/// Records a set-up (JSON) as the tenant's newest version; true when a version was written.
pub async fn put_setup(
    store: &dyn Store,
    id: &str,
    body: &str,
) -> Result<(TenantRow, bool), TenantError> {
    if !valid_tenant_id(id) {
        return Err(TenantError::Invalid(format!(
            "'{id}' is not a tenant id (1 to 64 letters, digits, '.', '_', '-')"
        )));
    }
    let setup = parse_setup(body)?;
    if setup.tenant.id != id {
        return Err(TenantError::Invalid(format!(
            "tenant.id '{}' is not '{id}'",
            setup.tenant.id
        )));
    }
    // A lost race with another writer is retried on the new newest version.
    for _ in 0..5 {
        let old = match load(store, id).await {
            Ok(o) => Some(o),
            Err(TenantError::UnknownTenant(_)) => None,
            Err(e) => return Err(e),
        };
        match record(store, old.as_ref().map(|(r, s)| (r, s)), &setup).await {
            Err(TenantError::Busy) => continue,
            other => return other,
        }
    }
    Err(TenantError::Busy)
}

/// Adds a licence record (JSON) to the tenant's set-up as a new version. The same record
/// again changes nothing; the same id with an end date for an open record ends it; any other
/// reuse of an id is `licence_conflict`.
pub async fn add_licence(
    store: &dyn Store,
    id: &str,
    body: &str,
) -> Result<(TenantRow, bool), TenantError> {
    let licence: LicenceAssignment = serde_json::from_str(body)
        .map_err(|e| TenantError::Invalid(format!("not a licence record: {e}")))?;
    for _ in 0..5 {
        let (row, old) = load(store, id).await?;
        let mut setup = old.clone();
        match setup.licences.iter_mut().find(|l| l.id == licence.id) {
            Some(l) if *l == licence => return Ok((row, false)),
            Some(l) => *l = licence.clone(), // checked against the history below
            None => setup.licences.push(licence.clone()),
        }
        setup
            .validate()
            .map_err(|e| TenantError::Invalid(format!("set-up with this licence: {e}")))?;
        match record(store, Some((&row, &old)), &setup).await {
            Err(TenantError::Busy) => continue,
            other => return other,
        }
    }
    Err(TenantError::Busy)
}

/// The stored charges of the tenant's WABAs sent in `[from, to)`, as billing reads them.
async fn usage(
    store: &dyn Store,
    setup: &TenantSetup,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<UsageCharge>, TenantError> {
    let mut out = Vec::new();
    if setup.tenant.wabas.is_empty() {
        return Ok(out);
    }
    let mut filter = ChargeFilter {
        wabas: Some(setup.tenant.wabas.clone()),
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        limit: 5000,
        ..ChargeFilter::default()
    };
    loop {
        let rows = store.charges(&filter).await?;
        for r in &rows {
            let currency = Currency::parse(&r.currency).ok_or_else(|| {
                TenantError::Store(StoreError::Corrupt {
                    table: "charges",
                    key: r.id.clone(),
                    why: format!("'{}' is not a currency", r.currency),
                })
            })?;
            out.push(UsageCharge {
                id: r.id.clone(),
                waba: r.waba.clone(),
                category: r.category.clone(),
                market: r.market.clone(),
                amount: r.amount,
                currency,
                sent_at: Some(r.sent_at_ms),
                billed_at: r.billed_at_ms,
                agent: r.agent.clone(),
            });
        }
        match rows.last() {
            Some(last) if rows.len() as u32 == filter.limit => filter.after = Some(last.cursor()),
            _ => return Ok(out),
        }
    }
}

/// The tenant's finalized invoices.
pub async fn finalized(store: &dyn Store, id: &str) -> Result<Vec<Invoice>, TenantError> {
    store
        .invoices(id)
        .await?
        .into_iter()
        .map(|r| {
            Invoice::from_json(&r.invoice).map_err(|why| {
                TenantError::Store(StoreError::Corrupt {
                    table: "tenant_invoices",
                    key: format!("{} {}", r.tenant, r.month),
                    why,
                })
            })
        })
        .collect()
}

/// The tenant's invoice of `month`: the stored record once finalized, else a draft from the
/// stored charges; with `finalize`, the draft is made final and stored (once).
///
/// Charges read: those of the tenant's WABAs sent from the first day of the earliest
/// finalized month (or of `month`, if earlier) to the end of `month`, tenant calendar, so
/// that late usage of finalized months becomes adjustments (D38).
pub async fn month_invoice(
    store: &dyn Store,
    id: &str,
    month: Month,
    finalize: bool,
) -> Result<Invoice, TenantError> {
    let (_, setup) = load(store, id).await?;
    let finals = finalized(store, id).await?;
    if let Some(done) = finals.iter().find(|i| i.month == month) {
        if finalize {
            return Err(TenantError::AlreadyFinalized {
                tenant: id.to_string(),
                month,
            });
        }
        return Ok(done.clone());
    }
    if finalize {
        if let Some(later) = finals.iter().map(|i| i.month).filter(|m| *m > month).max() {
            return Err(TenantError::FinalizedLater { month, later });
        }
    }
    let previous: Vec<Invoice> = finals.into_iter().filter(|i| i.month < month).collect();
    let first = previous
        .iter()
        .map(|i| i.month)
        .min()
        .unwrap_or(month)
        .min(month);
    let tz = setup.tenant.timezone;
    let from_ms = local_day_start(tz, first.first_day());
    let to_ms = local_day_start(tz, month.next().first_day());
    let charges = usage(store, &setup, from_ms, to_ms).await?;
    let inv = wabill_billing::invoice(&InvoiceInput {
        setup: &setup,
        month,
        charges: &charges,
        previous: &previous,
        finalize,
    })?;
    if finalize {
        let stored = store
            .finalize_invoice(&InvoiceRow {
                tenant: id.to_string(),
                month: month.to_string(),
                invoice: render::json(&inv),
                finalized_at_ms: crate::api::system_now(),
            })
            .await?;
        if !stored {
            return Err(TenantError::AlreadyFinalized {
                tenant: id.to_string(),
                month,
            });
        }
    }
    Ok(inv)
}

// ---------------------------------------------------------------------------------------------
// Routes

pub(crate) fn answer_error(e: TenantError) -> Response {
    if let TenantError::Store(s) = &e {
        tracing::error!(error = %s, "tenant store call failed");
        return problem("store_unavailable", "try again");
    }
    problem(e.code(), e.to_string())
}

/// Admin keys see every tenant; a reader or sender key sees a tenant whose every WABA is in
/// its scope (a tenant without WABAs only to admins), so that no invoice shows it usage of a
/// WABA it may not read.
fn may_read(caller: &Caller, setup: &TenantSetup) -> bool {
    match &caller.wabas {
        None => true,
        Some(_) => {
            !setup.tenant.wabas.is_empty() && setup.tenant.wabas.iter().all(|w| caller.may_see(w))
        }
    }
}

#[allow(clippy::result_large_err)]
pub(crate) fn admin(caller: &Caller) -> Result<(), Response> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(problem("forbidden", "only an admin key manages tenants"))
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
        Ok((row, setup)) if may_read(caller, &setup) => Ok((row, setup)),
        Ok(_) | Err(TenantError::UnknownTenant(_)) => Err(problem(
            "unknown_tenant",
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
        return problem("invalid_body", "the body is not UTF-8");
    };
    let store = &**state.engine.store();
    let done = if licence {
        add_licence(store, id, text).await
    } else {
        put_setup(store, id, text).await
    };
    // The send check's licence answers see a change made here at once (others, made from
    // the command line, within a second).
    state.licences.clear();
    match done {
        Ok((row, recorded)) => match parse_setup(&row.setup) {
            Ok(setup) => tenant_body(&row, &setup, Some(recorded)),
            Err(e) => answer_error(e),
        },
        Err(e) => answer_error(e),
    }
}

/// `PUT /v1/tenants/{id}` (admin).
pub(crate) async fn put_tenant(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_route(&state, &caller, body, &id, false).await
}

/// `POST /v1/tenants/{id}/licences` (admin).
pub(crate) async fn post_licence(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_route(&state, &caller, body, &id, true).await
}

/// `GET /v1/tenants/{id}`.
pub(crate) async fn get_tenant(
    State(state): State<Arc<AppState>>,
    caller: Caller,
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
    caller: Caller,
    Path((id, month)): Path<(String, String)>,
    Params(q): Params<InvoiceQuery>,
) -> Response {
    invoice_route(&state, &caller, &id, &month, q.format.as_deref(), false).await
}

/// `POST /v1/tenants/{id}/invoices/{month}/finalize` (admin).
pub(crate) async fn finalize_invoice(
    State(state): State<Arc<AppState>>,
    caller: Caller,
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
            "invalid_parameter",
            format!("'{month}' is not a month (YYYY-MM)"),
        );
    };
    let text = format.unwrap_or("json");
    if !matches!(text, "json" | "csv" | "html") {
        return problem(
            "invalid_parameter",
            format!("format: '{text}' is not json, csv or html"),
        );
    }
    match month_invoice(&**state.engine.store(), id, month, finalize).await {
        Ok(inv) => {
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
