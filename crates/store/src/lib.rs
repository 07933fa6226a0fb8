//! wabill's durable storage: the events the service received (append-only, idempotent, each
//! with a sequence number), account versions, the charges computed from them, and API keys,
//! behind one [`Store`] trait with a SQLite implementation (the default: one file) and a
//! PostgreSQL one (`postgres://...`). Both pass the same conformance suite
//! (`tests/conformance.rs`).
//!
//! It also keeps what Meta's status webhooks said about pricing (`meta_pricing`, for
//! reconciliation), the service's re-rating watermark (`engine_state`), and tenant billing:
//! set-up versions per tenant, which tenant owns which WABA, finalized invoices, and budget
//! alerts (settings per tenant, each alert emitted once with its delivery state).
//!
//! The store knows nothing of the wire formats or of rating: it keeps each event's raw line
//! and the few fields it indexes (kind, id, status, instant, WABA, phones), and hands them
//! back for the rating core to re-read. See `migrations/` for the schema.

mod append;
mod common;
mod decode;
mod error;
mod migrations;
pub mod postgres;
mod rows;
pub mod sqlite;
mod store;

pub use error::{redact_url, Backend, StoreError};
pub use postgres::PgStore;
pub use rows::{
    AccountOutcome, AccountRow, AlertAttempt, AlertRow, AlertSettingsRow, ApiKeyRow, AppendResult,
    AuditEntry, AuditRow, CallChargeFilter, CallChargeRow, CallCursor, CallScope, ChargeCount,
    ChargeCursor, ChargeFilter, ChargeRow, EventKind, InvoiceRow, MetaMessageRow, MetaPricingRow,
    NewAccount, NewAlert, NewApiKey, NewCallEvent, NewEvent, NewTenant, OutboundRef,
    ReplaceOutcome, Role, StoredCallEvent, StoredEvent, TenantOutcome, TenantRow, UsageRow,
    WabaRange, USAGE_SLOT_MS,
};
pub use sqlite::SqliteStore;
pub use store::{Store, StoreFuture};

/// Opens the store a URL names, creating and migrating it as needed:
/// - `postgres://...` or `postgresql://...`: PostgreSQL;
/// - `sqlite://path`, `sqlite:path`, or a plain file path: SQLite (the file is created if
///   missing).
///
/// Any other `scheme://` is refused rather than read as a file name.
pub async fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PgStore::open(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open_url(url).await?))
    } else if url.contains("://") {
        Err(StoreError::Url {
            url: error::redact(url),
            why: "expected postgres://..., sqlite://PATH or a file path",
        })
    } else if url.is_empty() {
        Err(StoreError::Url {
            url: String::new(),
            why: "no database given",
        })
    } else {
        Ok(Box::new(SqliteStore::open(url).await?))
    }
}
