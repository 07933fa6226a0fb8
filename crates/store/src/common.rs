//! Small conversions both backends share: the clock for `received_at_ms`, sequence numbers
//! between `u64` and the databases' signed integers, decimals from their stored text, and the
//! rules an API key must follow before it is stored.

use crate::error::StoreError;
use crate::rows::{NewApiKey, Role};
use std::time::{SystemTime, UNIX_EPOCH};
use wabill_rating::Decimal;

/// Now, in Unix milliseconds. Only bookkeeping instants (`received_at_ms`, `recorded_at_ms`,
/// key creation and revocation) come from the clock; rating never sees them, so they are the one
/// reading of the wall clock outside `wabill_engine::clock` (decisions.md D92).
pub(crate) fn now_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // Bookkeeping stamps, never a rating input.
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn seq_from_db(v: i64) -> u64 {
    // Sequence numbers start at 1 and only grow; a negative one would be corruption.
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn seq_to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn decimal(table: &'static str, key: &str, text: &str) -> Result<Decimal, StoreError> {
    text.parse().map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        why: format!("{e}"),
    })
}

pub(crate) fn role(key: &str, text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt {
        table: "api_keys",
        key: key.to_string(),
        why: format!("unknown role '{text}'"),
    })
}

/// An admin key sees every WABA; a scoped key must name the WABAs it sees, because an empty
/// scope read as "no restriction" would hand a tenant everyone's data.
pub(crate) fn check_key(key: &NewApiKey) -> Result<(), StoreError> {
    let why = match (key.role, key.tenant_wabas.is_empty()) {
        (Role::Admin, false) => "an admin key sees every WABA and takes no tenant list",
        (Role::Reader | Role::Sender, true) => "a reader or sender key needs at least one WABA",
        _ if key.name.trim().is_empty() => "a key needs a name",
        _ if key.tenant_wabas.iter().any(|w| w.is_empty()) => "a tenant WABA is empty",
        _ => return Ok(()),
    };
    Err(StoreError::Invalid {
        table: "api_keys",
        why: format!("key '{}': {why}", key.name),
    })
}

/// A charge row refused before it reaches the database (the schema checks the same).
pub(crate) fn check_charge_ids(
    ids: &[String],
    rows: &[crate::rows::ChargeRow],
) -> Result<Vec<String>, StoreError> {
    let mut seen = rustc_hash::FxHashSet::default();
    for r in rows {
        if !seen.insert(r.id.as_str()) {
            return Err(StoreError::Invalid {
                table: "charges",
                why: format!("message '{}' has two charge rows in one replacement", r.id),
            });
        }
    }
    let mut gone: Vec<String> = ids
        .iter()
        .filter(|id| !seen.contains(id.as_str()))
        .cloned()
        .collect();
    gone.sort_unstable();
    gone.dedup();
    Ok(gone)
}

/// The charge columns but `id`, in the order of the INSERT statements.
pub(crate) const CHARGE_VALUE_COLUMNS: [&str; 17] = [
    "sent_at_ms",
    "waba",
    "phone",
    "user_phone",
    "country",
    "market",
    "pricing_model",
    "category",
    "pricing_type",
    "billable",
    "tier",
    "rate",
    "amount",
    "currency",
    "billed_at_ms",
    "conversation_id",
    "agent",
];

/// ` ON CONFLICT (id) DO UPDATE SET ... WHERE <the row differs>`: a re-rating rewrites only
/// the charges that changed. `distinct` is the dialect's null-safe inequality of row values.
pub(crate) fn charge_upsert_clause(distinct: &str) -> String {
    let cols = CHARGE_VALUE_COLUMNS;
    let set: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let old: Vec<String> = cols.iter().map(|c| format!("charges.{c}")).collect();
    let new: Vec<String> = cols.iter().map(|c| format!("excluded.{c}")).collect();
    format!(
        " ON CONFLICT (id) DO UPDATE SET {} WHERE ({}) {distinct} ({})",
        set.join(", "),
        old.join(", "),
        new.join(", ")
    )
}

/// Why a call event was refused: its key is stored with another line.
pub(crate) fn call_conflict(c: &crate::rows::NewCallEvent) -> String {
    format!(
        "call '{}' already has a {} event with other content",
        c.id,
        c.phase()
    )
}

/// What every call charge row must hold before it is written: one row per (WABA, id), an
/// amount exactly when there is no error, billable exactly when the amount is positive.
pub(crate) fn check_call_rows(rows: &[crate::rows::CallChargeRow]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        let bad = |why: &str| StoreError::Invalid {
            table: "call_charges",
            why: format!("call '{}': {why}", r.id),
        };
        if !seen.insert((r.waba.as_str(), r.id.as_str())) {
            return Err(bad("two rows for one call"));
        }
        if r.amount.is_some() == r.error.is_some() {
            return Err(bad("a row has an amount or an error, not both"));
        }
        if r.billable != r.amount.is_some_and(|a| a.is_positive()) {
            return Err(bad("billable must be exactly a positive amount"));
        }
    }
    Ok(())
}
