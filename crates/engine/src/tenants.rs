//! Tenant billing in the service: tenant set-ups kept as append-only versions,
//! licence records added to them, invoices of a month computed from the stored charges of the
//! tenant's WABAs, and finalized invoices stored once. Everything billing decides is
//! `wabill-billing`'s; this module reads and writes the store, and is shared by the routes
//! under `/v1/tenants` and by `wabill tenants` / `wabill invoice --tenant` (decisions.md D41).

use wabill_billing::{
    render, BillingError, CallUsage, Invoice, InvoiceInput, LicenceAssignment, Note, TenantSetup,
    UsageCharge, CALL_CATEGORY,
};
use wabill_rating::time::local_day_start;
use wabill_rating::{Currency, Month};
use wabill_store::{
    CallChargeFilter, ChargeFilter, InvoiceRow, NewTenant, Store, StoreError, TenantOutcome,
    TenantRow,
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
    #[error(
        "{count} call(s) of the tenant in {month} could not be priced (first: {first}): an \
         invoice with an unpriced call is not finalized; import the calling rates, then the \
         calls are rated again"
    )]
    UnpricedCalls {
        month: Month,
        count: u64,
        first: String,
    },
    #[error("the set-up was changed meanwhile; try again")]
    Busy,
    #[error(
        "no secrets key is configured (secrets-key, WABILL_SECRETS_KEY: 64 hex digits, \
         `openssl rand -hex 32`): a signing secret is never stored unsealed"
    )]
    NoSecretsKey,
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
            TenantError::UnpricedCalls { .. } => "unpriced_calls",
            TenantError::Busy | TenantError::Store(_) => "store_unavailable",
            TenantError::NoSecretsKey => "secrets_key_missing",
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

pub fn parse_setup(text: &str) -> Result<TenantSetup, TenantError> {
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

/// The stored charges of the tenant's WABAs sent in `[from, to)`, as billing reads them: the
/// message lines, then the call lines started in it; calls that could not be priced are put
/// in `unpriced` instead.
async fn usage(
    store: &dyn Store,
    setup: &TenantSetup,
    from_ms: i64,
    to_ms: i64,
    unpriced: &mut Vec<Unpriced>,
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
                call: None,
            });
        }
        match rows.last() {
            Some(last) if rows.len() as u32 == filter.limit => filter.after = Some(last.cursor()),
            _ => break,
        }
    }
    // Calls: their stored charge lines (D131), a call placed in a month by its start (D135).
    let mut filter = CallChargeFilter {
        waba: None,
        wabas: Some(setup.tenant.wabas.clone()),
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        after: None,
        limit: 5000,
    };
    loop {
        let rows = store.call_charges(&filter).await?;
        for r in &rows {
            let corrupt = |why: String| {
                TenantError::Store(StoreError::Corrupt {
                    table: "call_charges",
                    key: format!("{} {}", r.waba, r.id),
                    why,
                })
            };
            let currency = Currency::parse(&r.currency)
                .ok_or_else(|| corrupt(format!("'{}' is not a currency", r.currency)))?;
            if let Some(why) = &r.error {
                unpriced.push(Unpriced {
                    id: r.id.clone(),
                    start_ms: r.start_ms,
                    why: why.clone(),
                });
                continue;
            }
            let amount = r
                .amount
                .ok_or_else(|| corrupt("no amount and no error".into()))?;
            if r.market.is_none() && !amount.is_zero() {
                return Err(corrupt("a charged call without a market".into()));
            }
            out.push(UsageCharge {
                id: r.id.clone(),
                waba: r.waba.clone(),
                category: CALL_CATEGORY.to_string(),
                market: r.market.clone().unwrap_or_default(),
                amount,
                currency,
                sent_at: Some(r.start_ms),
                billed_at: None,
                agent: r.agent.clone(),
                call: Some(CallUsage { pulses: r.pulses }),
            });
        }
        match rows.last() {
            Some(last) if rows.len() as u32 == filter.limit => filter.after = Some(last.cursor()),
            _ => return Ok(out),
        }
    }
}

/// A stored call the rating core could not price (D130).
struct Unpriced {
    id: String,
    start_ms: i64,
    why: String,
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
/// stored charges; with `finalize_at_ms`, the draft is made final, stamped with that instant, and
/// stored (once).
///
/// Charges read: those of the tenant's WABAs sent from the first day of the earliest
/// finalized month (or of `month`, if earlier) to the end of `month`, tenant calendar, so
/// that late usage of finalized months becomes adjustments (D38).
pub async fn month_invoice(
    store: &dyn Store,
    id: &str,
    month: Month,
    finalize_at_ms: Option<i64>,
) -> Result<Invoice, TenantError> {
    let finalize = finalize_at_ms.is_some();
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
    let mut unpriced = Vec::new();
    let charges = usage(store, &setup, from_ms, to_ms, &mut unpriced).await?;
    let mut inv = wabill_billing::invoice(&InvoiceInput {
        setup: &setup,
        month,
        charges: &charges,
        previous: &previous,
        finalize,
    })?;
    // Unpriced calls of the month (D136): a draft says so, finalizing is refused. Those of
    // earlier months are billed as adjustments once priced.
    let month_start = local_day_start(tz, month.first_day());
    unpriced.retain(|u| u.start_ms >= month_start);
    unpriced.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    if let Some(first) = unpriced.first() {
        let first = format!("{}: {}", first.id, first.why);
        if finalize {
            return Err(TenantError::UnpricedCalls {
                month,
                count: unpriced.len() as u64,
                first,
            });
        }
        inv.notes.push(Note {
            code: "unpriced_calls".to_string(),
            message: format!(
                "{} call(s) of {month} could not be priced and are not on this invoice (first: {first}); the invoice cannot be finalized until they are",
                unpriced.len()
            ),
        });
    }
    if finalize {
        let stored = store
            .finalize_invoice(&InvoiceRow {
                tenant: id.to_string(),
                month: month.to_string(),
                invoice: render::json(&inv),
                finalized_at_ms: finalize_at_ms.expect("finalizing"),
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
