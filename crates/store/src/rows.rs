//! The store's row types: what goes in and what comes back, in plain strings, integers and
//! exact decimals, so that the store depends on neither the wire formats nor the rater's
//! internal types. Instants are Unix milliseconds (`*_ms`); sequence numbers are `u64`.

use wabill_rating::Decimal;

/// What an event line is. Accounts are events too (docs/events.md), recorded with
/// [`crate::Store::record_accounts`] because they are versioned by WABA rather than
/// deduplicated by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Account,
    Inbound,
    Outbound,
    Status,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Account => "account",
            EventKind::Inbound => "inbound",
            EventKind::Outbound => "outbound",
            EventKind::Status => "status",
        }
    }
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "account" => EventKind::Account,
            "inbound" => EventKind::Inbound,
            "outbound" => EventKind::Outbound,
            "status" => EventKind::Status,
            _ => return None,
        })
    }
}

/// A message event to append (inbound, outbound or status).
///
/// `raw` is the event's JSON line as received, and it is what decides between a duplicate and
/// a conflict: the same key with the same `raw` bytes is a repeat, with different bytes a
/// conflict. A service that splits a Meta webhook envelope into events should therefore store
/// each event in one canonical form, not the envelope (the same status can arrive in
/// differently batched envelopes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub id: String,
    /// The delivery status (`sent`, `delivered`, ...) for a status; `None` otherwise.
    pub status: Option<String>,
    pub at_ms: i64,
    /// The WABA of an inbound or outbound message; statuses carry none.
    pub waba: Option<String>,
    /// The business phone number (digits), inbound and outbound only.
    pub phone: Option<String>,
    /// The user's number (digits), inbound and outbound only.
    pub user: Option<String>,
    pub raw: String,
}

impl NewEvent {
    pub fn inbound(
        id: impl Into<String>,
        at_ms: i64,
        waba: impl Into<String>,
        phone: impl Into<String>,
        user: impl Into<String>,
        raw: impl Into<String>,
    ) -> NewEvent {
        NewEvent {
            kind: EventKind::Inbound,
            id: id.into(),
            status: None,
            at_ms,
            waba: Some(waba.into()),
            phone: Some(phone.into()),
            user: Some(user.into()),
            raw: raw.into(),
        }
    }

    pub fn outbound(
        id: impl Into<String>,
        at_ms: i64,
        waba: impl Into<String>,
        phone: impl Into<String>,
        user: impl Into<String>,
        raw: impl Into<String>,
    ) -> NewEvent {
        NewEvent {
            kind: EventKind::Outbound,
            ..NewEvent::inbound(id, at_ms, waba, phone, user, raw)
        }
    }

    pub fn status(
        id: impl Into<String>,
        status: impl Into<String>,
        at_ms: i64,
        raw: impl Into<String>,
    ) -> NewEvent {
        NewEvent {
            kind: EventKind::Status,
            id: id.into(),
            status: Some(status.into()),
            at_ms,
            waba: None,
            phone: None,
            user: None,
            raw: raw.into(),
        }
    }

    /// The status part of the idempotency key: `""` for anything but a status.
    pub(crate) fn status_key(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
}

/// An event as stored, with its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Assigned on insert; strictly increasing in commit order, without gaps.
    pub seq: u64,
    pub kind: EventKind,
    /// The message id; for an account version, the WABA.
    pub id: String,
    pub status: Option<String>,
    /// The event's instant; for an account version, when it was recorded.
    pub at_ms: i64,
    pub waba: Option<String>,
    pub phone: Option<String>,
    pub user: Option<String>,
    pub raw: String,
    pub received_at_ms: i64,
}

/// What [`crate::Store::append_events`] did with a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendResult {
    /// Sequence numbers of the events stored, in batch order.
    pub inserted: Vec<u64>,
    /// The position in the batch of each event of `inserted`.
    pub inserted_at: Vec<usize>,
    /// Events already stored (or earlier in the batch) with the same key and the same bytes.
    pub duplicates: usize,
    /// Events whose key is already stored (or earlier in the batch) with different bytes:
    /// (position in the batch, why). They are not stored.
    pub conflicts: Vec<(usize, String)>,
}

/// An account version to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub waba: String,
    pub portfolio: String,
    pub timezone: String,
    pub currency: String,
    /// The account's JSON line as received.
    pub raw: String,
}

/// A recorded account version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub seq: u64,
    pub waba: String,
    pub portfolio: String,
    pub timezone: String,
    pub currency: String,
    pub raw: String,
    pub recorded_at_ms: i64,
}

/// What [`crate::Store::record_accounts`] did with one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountOutcome {
    /// The version now in force for the WABA.
    pub seq: u64,
    /// False when the latest version already had exactly these bytes (nothing was written).
    pub recorded: bool,
}

/// The rating result of one outbound message: the fields of `wabill_rating::Charge` as
/// docs/events.md prints them, plus the send instant the charges are ordered by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRow {
    pub id: String,
    pub sent_at_ms: i64,
    pub waba: String,
    pub phone: String,
    pub user: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub market: String,
    /// `CBP` or `PMP`.
    pub pricing_model: String,
    pub category: String,
    /// Meta's pricing type (`regular`, `free_customer_service`, ...), `type` in the output.
    pub pricing_type: String,
    pub billable: bool,
    /// `"lower:upper"` for a volume-tiered rate.
    pub tier: Option<String>,
    pub rate: Option<Decimal>,
    pub amount: Decimal,
    pub currency: String,
    pub billed_at_ms: Option<i64>,
    pub conversation_id: Option<String>,
    /// The outbound event's `agent` (who sent the message), for tenant billing.
    pub agent: Option<String>,
}

impl ChargeRow {
    /// The keyset cursor that continues after this row.
    pub fn cursor(&self) -> ChargeCursor {
        ChargeCursor {
            sent_at_ms: self.sent_at_ms,
            id: self.id.clone(),
        }
    }
}

/// A position in the (sent_at, id) order of charges. It is a value, not a row reference, so a
/// page continues correctly even if the row it ended on was re-rated away meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeCursor {
    pub sent_at_ms: i64,
    pub id: String,
}

/// Which charges to read. All conditions hold together; rows come ordered by (sent_at, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeFilter {
    pub waba: Option<String>,
    /// Tenant scope: only these WABAs. `Some(vec![])` matches nothing (an empty scope never
    /// means "everything").
    pub wabas: Option<Vec<String>>,
    /// Sent at or after.
    pub from_ms: Option<i64>,
    /// Sent strictly before.
    pub to_ms: Option<i64>,
    /// Rows strictly after this position.
    pub after: Option<ChargeCursor>,
    pub limit: u32,
}

impl Default for ChargeFilter {
    fn default() -> Self {
        ChargeFilter {
            waba: None,
            wabas: None,
            from_ms: None,
            to_ms: None,
            after: None,
            limit: 1000,
        }
    }
}

/// What [`crate::Store::replace_charges`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaceOutcome {
    /// Charges removed: of the ids given without a row.
    pub removed: u64,
    /// Rows inserted or changed; a row equal to the stored one is not written again.
    pub written: u64,
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, every WABA.
    Admin,
    /// Read charges and usage of its WABAs.
    Reader,
    /// Send events for its WABAs (and read them).
    Sender,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
            Role::Sender => "sender",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "reader" => Role::Reader,
            "sender" => Role::Sender,
            _ => return None,
        })
    }
}

/// An API key to create. Only the SHA-256 of the key reaches the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// Empty for an admin; at least one WABA for a reader or a sender.
    pub tenant_wabas: Vec<String>,
    pub key_hash: [u8; 32],
}

/// A stored API key (never its hash or the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Sorted.
    pub tenant_wabas: Vec<String>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Where an outbound message belongs: its WABA and send instant (to know what a late status
/// of it changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRef {
    pub id: String,
    pub waba: String,
    pub at_ms: i64,
}

/// What Meta's status webhook said of its message (decisions.md D110, D114): the WABA (the
/// envelope's `entry[].id`), business phone, recipient and the category Meta bills it in. Kept
/// apart from the canonical status event, as [`MetaPricingRow`] is, so that Meta's status and
/// the platform's plain one stay one event; keyed by (message id, status), the first kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaMessageRow {
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// The status's instant.
    pub at_ms: i64,
    pub waba: String,
    /// The business phone number (digits).
    pub phone: String,
    /// The recipient's number (digits), when the status named one.
    pub user: Option<String>,
    /// The recipient's BSUID, when the status named one (at least one of the two is given).
    pub user_id: Option<String>,
    /// Meta's `pricing.category`, as wabill names it.
    pub category: Option<String>,
}

/// The pricing object Meta attached to one status webhook of a message (docs/pricing-rules.md
/// §7), kept apart from the canonical status event so that the same status arriving with and
/// without it stays one event (decisions.md D24, D25). Keyed by (message id, status); the first
/// one stored is kept, as for events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaPricingRow {
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// The status's instant.
    pub at_ms: i64,
    /// The envelope's `entry[].id`; `None` when the pricing came without one.
    pub waba: Option<String>,
    pub billable: Option<bool>,
    pub pricing_model: Option<String>,
    /// As Meta wrote it (`authentication-international` is not normalised here).
    pub category: Option<String>,
    pub pricing_type: Option<String>,
    pub conversation_id: Option<String>,
    /// Meta's `conversation.expiration_timestamp`: when the conversation or free entry point
    /// window the message opened ends, as Meta says (decisions.md D118).
    pub expires_at_ms: Option<i64>,
}

/// Send instants `[from_ms, to_ms)` of one WABA: counters that span a business portfolio take
/// each WABA's month in its own timezone, so each WABA has its own range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WabaRange {
    pub waba: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Which stored charges to count (see [`crate::Store::count_charges`]). All conditions hold
/// together; an empty `ranges`, `categories` or `pricing_types` counts nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChargeCount {
    pub ranges: Vec<WabaRange>,
    /// The business phone number, when the counter is per number.
    pub phone: Option<String>,
    /// The market's name, when the counter is per market.
    pub market: Option<String>,
    pub pricing_model: String,
    pub categories: Vec<String>,
    pub pricing_types: Vec<String>,
    /// Only messages that opened their conversation (`conversation_id` equal to their id).
    pub openers_only: bool,
    /// Messages not to count (those the caller rates itself).
    pub exclude_ids: Vec<String>,
}

/// Delivered charges of a WABA grouped by 15-minute slot of their delivery instant and by
/// everything usage reports can break them down by (see [`crate::Store::usage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    /// Start of the slot: a multiple of 15 minutes since the epoch. Every UTC offset in use is
    /// a multiple of 15 minutes, so any half-hour, day or month bucket, in UTC or in a WABA's
    /// timezone, is a union of whole slots.
    pub slot_ms: i64,
    pub phone: String,
    pub country: String,
    pub category: String,
    pub pricing_type: String,
    pub tier: Option<String>,
    /// The amount of each message of the group (groups are per amount, so that money is
    /// summed exactly by the caller).
    pub amount: Decimal,
    pub currency: String,
    pub messages: u64,
}

/// Length of a [`UsageRow`] slot.
pub const USAGE_SLOT_MS: i64 = 15 * 60 * 1000;

/// One version of a tenant's billing set-up: the JSON document as given (the billing crate
/// reads it), append-only like account versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRow {
    /// Increases with every version recorded (of any tenant).
    pub version: i64,
    pub tenant: String,
    pub setup: String,
    pub recorded_at_ms: i64,
}

/// A set-up version to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTenant {
    pub tenant: String,
    /// The WABAs the tenant owns in this version (each owned by at most one tenant).
    pub wabas: Vec<String>,
    pub setup: String,
    /// Record only if the tenant's newest version is still this one (`Some(0)`: only if the
    /// tenant has none yet); `None` records whatever the newest is.
    pub expected_version: Option<i64>,
}

/// What [`crate::Store::put_tenant`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantOutcome {
    /// A new version, now in force.
    Recorded(TenantRow),
    /// The newest version already had exactly these bytes: nothing was written.
    Unchanged(TenantRow),
    /// A WABA of the set-up belongs to another tenant: nothing was written.
    WabaTaken { waba: String, tenant: String },
    /// `expected_version` is no longer the newest (another write came first): nothing was
    /// written.
    Stale { newest: i64 },
}

/// A finalized invoice, as stored: the invoice record (JSON), written once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRow {
    pub tenant: String,
    /// `YYYY-MM`.
    pub month: String,
    pub invoice: String,
    pub finalized_at_ms: i64,
}

/// A tenant's budget alert settings. `thresholds` is the JSON array the billing crate reads
/// (`[{"percent":"80"},{"spend":"500"}]`); `secret` signs the webhooks and is never shown by
/// the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSettingsRow {
    pub tenant: String,
    pub thresholds: String,
    pub url: String,
    pub secret: String,
    pub updated_at_ms: i64,
}

/// An alert to record, once per (tenant, month, threshold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub tenant: String,
    /// `YYYY-MM`, tenant calendar.
    pub month: String,
    /// The threshold's key (`percent:80`, `spend:500`).
    pub threshold: String,
    /// The webhook body, exactly as signed and sent at every attempt.
    pub payload: String,
    pub created_at_ms: i64,
}

/// An alert as stored, with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub tenant: String,
    pub month: String,
    pub threshold: String,
    pub payload: String,
    pub created_at_ms: i64,
    pub attempts: u32,
    /// When the next attempt is due; `None` once delivered or given up.
    pub next_attempt_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// The outcome of one delivery attempt (see [`crate::Store::record_alert_attempt`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertAttempt {
    pub tenant: String,
    pub month: String,
    pub threshold: String,
    pub at_ms: i64,
    /// True when the receiver acknowledged it (a 2xx answer).
    pub delivered: bool,
    pub error: Option<String>,
    /// When to try again; `None` to give up (ignored when delivered).
    pub next_attempt_at_ms: Option<i64>,
}

/// One admin action of the audit log, as recorded (decisions.md D88).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// `key:<id>:<name>` for an API key, `cli:<user>` for the command line.
    pub actor: String,
    /// A stable name: `tenant.put`, `licence.add`, `invoice.finalize`, `alert_settings.put`,
    /// `key.create`, `key.revoke`.
    pub action: String,
    /// What it acted on (a tenant id, `tenant/month`, a key id).
    pub target: String,
}

/// A recorded [`AuditEntry`] with its position in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub entry: AuditEntry,
}

/// A call event to append: a wabill `call` line or one of Meta's `connect` / `terminate`
/// webhooks, in its canonical form (`raw`, a `call` line). Its key is (WABA, id, phase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCallEvent {
    pub waba: String,
    pub id: String,
    /// True for an event with an outcome (a `terminate`), false for a `connect`.
    pub terminate: bool,
    pub start_ms: i64,
    pub raw: String,
}

impl NewCallEvent {
    pub(crate) fn phase(&self) -> &'static str {
        if self.terminate {
            "terminate"
        } else {
            "connect"
        }
    }
}

/// A stored call event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCallEvent {
    pub seq: u64,
    pub waba: String,
    pub id: String,
    pub terminate: bool,
    pub start_ms: i64,
    pub raw: String,
}

/// One call's charge line, the fields `wabill rate` prints for it (docs/events.md "Call
/// charges"). `amount` is `None` for a call to be charged that could not be priced; `error`
/// then says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallChargeRow {
    pub waba: String,
    pub id: String,
    pub start_ms: i64,
    pub phone: String,
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub country: Option<String>,
    pub market: Option<String>,
    /// `business_initiated` or `user_initiated`.
    pub direction: String,
    /// `regular`, `free_user_initiated`, `not_connected` or `unterminated`.
    pub call_type: String,
    pub billable: bool,
    pub seconds: u64,
    pub pulses: u64,
    /// Minutes counted for the tier through this call (charged calls only).
    pub tier_minutes: Option<Decimal>,
    /// `"lower:upper"` of the tier the call is priced at.
    pub tier: Option<String>,
    /// Per minute.
    pub rate: Option<Decimal>,
    pub amount: Option<Decimal>,
    pub currency: String,
    pub recording: Decimal,
    pub transcription: Decimal,
    pub agent: Option<String>,
    pub error: Option<String>,
}

impl CallChargeRow {
    pub fn cursor(&self) -> CallCursor {
        CallCursor {
            start_ms: self.start_ms,
            id: self.id.clone(),
            waba: self.waba.clone(),
        }
    }
}

/// A position in the (start, id, WABA) order of call charges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallCursor {
    pub start_ms: i64,
    pub id: String,
    pub waba: String,
}

/// Which call charges to read; rows come ordered by (start, id, WABA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallChargeFilter {
    pub waba: Option<String>,
    /// Tenant scope: only these WABAs (`Some(vec![])` matches nothing).
    pub wabas: Option<Vec<String>>,
    /// Started at or after.
    pub from_ms: Option<i64>,
    /// Started strictly before.
    pub to_ms: Option<i64>,
    pub after: Option<CallCursor>,
    pub limit: u32,
}

/// The calls of one WABA started in `[from_ms, to_ms)`: what one re-rating of a month replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallScope {
    pub waba: String,
    pub from_ms: i64,
    pub to_ms: i64,
}
