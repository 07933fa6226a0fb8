//! The audit log of admin actions (decisions.md D88): who did what to which tenant or key,
//! and when. Each action that changed something is recorded once it has been done, by the one
//! function its route or subcommand calls; reads and refused requests are not recorded (the
//! request metrics count those).

use crate::caller::Caller;
use wabill_store::{AuditEntry, AuditRow, Store, StoreError};

/// The actions recorded, by their stable names.
pub mod action {
    pub const TENANT_PUT: &str = "tenant.put";
    pub const LICENCE_ADD: &str = "licence.add";
    pub const INVOICE_FINALIZE: &str = "invoice.finalize";
    pub const INVOICE_LINK: &str = "invoice.link";
    pub const ALERT_SETTINGS_PUT: &str = "alert_settings.put";
    pub const KEY_CREATE: &str = "key.create";
    pub const KEY_REVOKE: &str = "key.revoke";
}

/// Records that `actor` did `action` to `target` at `at_ms`.
pub async fn record(
    store: &dyn Store,
    actor: String,
    action: &str,
    target: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    store
        .record_audit(&AuditEntry {
            at_ms,
            actor,
            action: action.to_string(),
            target: target.to_string(),
        })
        .await
}

/// [`record`] for an API caller.
pub async fn record_by(
    store: &dyn Store,
    caller: &Caller,
    action: &str,
    target: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    record(store, caller.actor(), action, target, at_ms).await
}

/// The command line's actor: `cli:<user>` (the `USER` of its environment, or `unknown`).
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

/// The log as JSON lines' values: `{"id","at","actor","action","target"}`.
pub fn to_json(row: &AuditRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "at": wabill_formats::time::format_instant(row.entry.at_ms),
        "actor": row.entry.actor,
        "action": row.entry.action,
        "target": row.entry.target,
    })
}
