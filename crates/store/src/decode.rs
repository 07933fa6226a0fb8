//! Reading rows back into the store's types, once for both backends: every query selects its
//! columns in the order of the `*_COLUMNS` lists here, and PostgreSQL returns NUMERIC as text
//! (`amount::text`) so that both backends hand over decimals the same way.

use crate::common::{decimal, role, seq_from_db};
use crate::error::StoreError;
use crate::rows::{
    AccountRow, ApiKeyRow, CallChargeRow, ChargeRow, EventKind, MetaPricingRow, StoredCallEvent,
    StoredEvent, UsageRow,
};
use sqlx::{ColumnIndex, Decode, Row, Type};
use wabill_rating::Decimal;

/// Columns of [`StoredEvent`], for a query on `events e`.
pub(crate) const EVENT_COLUMNS: &str =
    "e.seq, e.kind, e.id, e.status, e.at_ms, e.waba, e.phone, e.user_phone, e.raw, e.received_at_ms";

/// Columns of [`AccountRow`], for a query on `accounts a JOIN events e ON e.seq = a.seq`.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "a.seq, a.waba, a.portfolio, a.timezone, a.currency, e.raw, e.received_at_ms";

/// Columns of [`MetaPricingRow`], for a query on `meta_pricing`.
pub(crate) const META_PRICING_COLUMNS: &str =
    "id, status, at_ms, waba, billable, pricing_model, category, pricing_type, conversation_id, \
     expires_at_ms";

/// Which API keys to read. The SQL uses `$1`, which both SQLite and PostgreSQL accept.
#[derive(Clone, Copy)]
pub(crate) enum KeyWhere<'a> {
    Id(i64),
    /// The key with this hash, unless revoked.
    ActiveHash(&'a [u8; 32]),
    All,
}

impl KeyWhere<'_> {
    pub(crate) fn sql(self) -> String {
        let condition = match self {
            KeyWhere::Id(_) => "WHERE k.id = $1",
            KeyWhere::ActiveHash(_) => "WHERE k.key_hash = $1 AND k.revoked_at_ms IS NULL",
            KeyWhere::All => "",
        };
        format!(
            "SELECT k.id, k.name, k.role, k.created_at_ms, k.revoked_at_ms, w.waba \
             FROM api_keys k LEFT JOIN api_key_wabas w ON w.key_id = k.id \
             {condition} ORDER BY k.id, w.waba"
        )
    }
    pub(crate) fn doing(self) -> String {
        match self {
            KeyWhere::Id(id) => format!("reading key {id}"),
            KeyWhere::ActiveHash(_) => "looking a key up by its hash".into(),
            KeyWhere::All => "listing keys".into(),
        }
    }
}

fn get<'r, R, T>(row: &'r R, i: usize, table: &'static str) -> Result<T, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(i).map_err(|source| StoreError::Db {
        table,
        doing: format!("reading column {i}"),
        source,
    })
}

pub(crate) fn event<'r, R>(row: &'r R) -> Result<StoredEvent, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "events";
    event_from_columns((
        get(row, 0, T)?,
        get(row, 1, T)?,
        get(row, 2, T)?,
        get(row, 3, T)?,
        get(row, 4, T)?,
        get(row, 5, T)?,
        get(row, 6, T)?,
        get(row, 7, T)?,
        get(row, 8, T)?,
        get(row, 9, T)?,
    ))
}

/// The values of [`EVENT_COLUMNS`], in order.
pub(crate) type EventColumns = (
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
);

/// A stored event from the values of [`EVENT_COLUMNS`].
pub(crate) fn event_from_columns(
    (seq, kind, id, status, at_ms, waba, phone, user, raw, received_at_ms): EventColumns,
) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: seq_from_db(seq),
        kind: EventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            table: "events",
            key: seq.to_string(),
            why: format!("unknown kind '{kind}'"),
        })?,
        id,
        status: (!status.is_empty()).then_some(status),
        at_ms,
        waba,
        phone,
        user,
        raw,
        received_at_ms,
    })
}

pub(crate) fn account<'r, R>(row: &'r R) -> Result<AccountRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "accounts";
    Ok(AccountRow {
        seq: seq_from_db(get(row, 0, T)?),
        waba: get(row, 1, T)?,
        portfolio: get(row, 2, T)?,
        timezone: get(row, 3, T)?,
        currency: get(row, 4, T)?,
        raw: get(row, 5, T)?,
        recorded_at_ms: get(row, 6, T)?,
    })
}

pub(crate) fn charge<'r, R>(row: &'r R) -> Result<ChargeRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "charges";
    let id: String = get(row, 0, T)?;
    let rate: Option<String> = get(row, 12, T)?;
    let amount: String = get(row, 13, T)?;
    Ok(ChargeRow {
        sent_at_ms: get(row, 1, T)?,
        waba: get(row, 2, T)?,
        phone: get(row, 3, T)?,
        user: get(row, 4, T)?,
        country: get(row, 5, T)?,
        market: get(row, 6, T)?,
        pricing_model: get(row, 7, T)?,
        category: get(row, 8, T)?,
        pricing_type: get(row, 9, T)?,
        billable: get(row, 10, T)?,
        tier: get(row, 11, T)?,
        rate: rate.map(|r| decimal(T, &id, &r)).transpose()?,
        amount: decimal(T, &id, &amount)?,
        currency: get(row, 14, T)?,
        billed_at_ms: get(row, 15, T)?,
        conversation_id: get(row, 16, T)?,
        agent: get(row, 17, T)?,
        id,
    })
}

/// The values of a charge row in [`charge`]'s column order, as a JSON array of them reads
/// (`billable` is SQLite's integer 0 or 1).
#[derive(serde::Deserialize)]
pub(crate) struct ChargeColumns {
    pub id: String,
    pub sent_at_ms: i64,
    waba: String,
    phone: String,
    user: String,
    country: String,
    market: String,
    pricing_model: String,
    category: String,
    pricing_type: String,
    billable: i64,
    tier: Option<String>,
    rate: Option<String>,
    amount: String,
    currency: String,
    billed_at_ms: Option<i64>,
    conversation_id: Option<String>,
    agent: Option<String>,
}

/// A charge from the values of its row, as [`charge`] reads them from the row itself.
pub(crate) fn charge_from_columns(c: ChargeColumns) -> Result<ChargeRow, StoreError> {
    const T: &str = "charges";
    let billable = match c.billable {
        0 => false,
        1 => true,
        other => {
            return Err(StoreError::Corrupt {
                table: T,
                key: c.id,
                why: format!("billable is {other}, not 0 or 1"),
            })
        }
    };
    Ok(ChargeRow {
        sent_at_ms: c.sent_at_ms,
        waba: c.waba,
        phone: c.phone,
        user: c.user,
        country: c.country,
        market: c.market,
        pricing_model: c.pricing_model,
        category: c.category,
        pricing_type: c.pricing_type,
        billable,
        tier: c.tier,
        rate: c.rate.map(|r| decimal(T, &c.id, &r)).transpose()?,
        amount: decimal(T, &c.id, &c.amount)?,
        currency: c.currency,
        billed_at_ms: c.billed_at_ms,
        conversation_id: c.conversation_id,
        agent: c.agent,
        id: c.id,
    })
}

/// Folds rows of [`KeyWhere::sql`], ordered by key id, into keys with their WABAs.
pub(crate) fn keys<'r, R>(rows: &'r [R]) -> Result<Vec<ApiKeyRow>, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "api_keys";
    let mut out: Vec<ApiKeyRow> = Vec::new();
    for row in rows {
        let id: i64 = get(row, 0, T)?;
        let waba: Option<String> = get(row, 5, T)?;
        if out.last().is_none_or(|k| k.id != id) {
            let role_text: String = get(row, 2, T)?;
            out.push(ApiKeyRow {
                id,
                name: get(row, 1, T)?,
                role: role(&id.to_string(), &role_text)?,
                tenant_wabas: Vec::new(),
                created_at_ms: get(row, 3, T)?,
                revoked_at_ms: get(row, 4, T)?,
            });
        }
        if let (Some(w), Some(k)) = (waba, out.last_mut()) {
            k.tenant_wabas.push(w);
        }
    }
    Ok(out)
}

pub(crate) fn meta_pricing<'r, R>(row: &'r R) -> Result<MetaPricingRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<bool>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "meta_pricing";
    Ok(MetaPricingRow {
        id: get(row, 0, T)?,
        status: get(row, 1, T)?,
        at_ms: get(row, 2, T)?,
        waba: get(row, 3, T)?,
        billable: get(row, 4, T)?,
        pricing_model: get(row, 5, T)?,
        category: get(row, 6, T)?,
        pricing_type: get(row, 7, T)?,
        conversation_id: get(row, 8, T)?,
        expires_at_ms: get(row, 9, T)?,
    })
}

/// The values of [`META_PRICING_COLUMNS`], in order (`billable` is SQLite's 0, 1 or NULL).
pub(crate) type MetaPricingColumns = (
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Meta's pricing of a message from the values of [`META_PRICING_COLUMNS`].
pub(crate) fn meta_pricing_from_columns(
    (
        id,
        status,
        at_ms,
        waba,
        billable,
        pricing_model,
        category,
        pricing_type,
        conversation_id,
        expires_at_ms,
    ): MetaPricingColumns,
) -> Result<MetaPricingRow, StoreError> {
    let billable = match billable {
        None => None,
        Some(0) => Some(false),
        Some(1) => Some(true),
        Some(other) => {
            return Err(StoreError::Corrupt {
                table: "meta_pricing",
                key: id,
                why: format!("billable is {other}, not 0, 1 or NULL"),
            })
        }
    };
    Ok(MetaPricingRow {
        id,
        status,
        at_ms,
        waba,
        billable,
        pricing_model,
        category,
        pricing_type,
        conversation_id,
        expires_at_ms,
    })
}

/// The values of a row of the usage query, in order: slot, phone, country, category,
/// pricing_type, tier, amount (as text), currency, count.
pub(crate) type UsageColumns = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
);

/// A usage group from the values of its row.
pub(crate) fn usage_from_columns(
    (slot, phone, country, category, pricing_type, tier, amount, currency, messages): UsageColumns,
) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        slot_ms: slot * crate::rows::USAGE_SLOT_MS,
        amount: decimal("charges", &format!("usage slot {slot}"), &amount)?,
        phone,
        country,
        category,
        pricing_type,
        tier,
        currency,
        messages: u64::try_from(messages).unwrap_or(0),
    })
}

/// A row of the usage query: slot, phone, country, category, pricing_type, tier, amount (as
/// text), currency, count.
pub(crate) fn usage<'r, R>(row: &'r R) -> Result<UsageRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "charges";
    let slot: i64 = get(row, 0, T)?;
    let amount: String = get(row, 6, T)?;
    let messages: i64 = get(row, 8, T)?;
    Ok(UsageRow {
        slot_ms: slot * crate::rows::USAGE_SLOT_MS,
        phone: get(row, 1, T)?,
        country: get(row, 2, T)?,
        category: get(row, 3, T)?,
        pricing_type: get(row, 4, T)?,
        tier: get(row, 5, T)?,
        amount: decimal(T, &format!("usage slot {slot}"), &amount)?,
        currency: get(row, 7, T)?,
        messages: u64::try_from(messages).unwrap_or(0),
    })
}

/// Columns of [`CallChargeRow`], for a query on `call_charges` (`$n` marks a NUMERIC column:
/// PostgreSQL reads it `::text`).
pub(crate) fn call_charge_columns(numeric_as_text: bool) -> String {
    let n = |c: &str| {
        if numeric_as_text {
            format!("{c}::text")
        } else {
            c.to_string()
        }
    };
    format!(
        "waba, id, start_ms, phone, user_phone, user_id, country, market, direction, call_type, \
         billable, seconds, pulses, {}, tier, {}, {}, currency, {}, {}, agent, error",
        n("tier_minutes"),
        n("rate"),
        n("amount"),
        n("recording"),
        n("transcription"),
    )
}

pub(crate) fn call_charge<'r, R>(row: &'r R) -> Result<CallChargeRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "call_charges";
    let id: String = get(row, 1, T)?;
    let dec = |i: usize| -> Result<Option<Decimal>, StoreError> {
        let v: Option<String> = get(row, i, T)?;
        v.map(|v| decimal(T, &id, &v)).transpose()
    };
    let count = |i: usize| -> Result<u64, StoreError> {
        let v: i64 = get(row, i, T)?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt {
            table: T,
            key: id.clone(),
            why: format!("column {i} is negative"),
        })
    };
    let required = |i: usize| -> Result<Decimal, StoreError> {
        dec(i)?.ok_or_else(|| StoreError::Corrupt {
            table: T,
            key: id.clone(),
            why: format!("column {i} is null"),
        })
    };
    Ok(CallChargeRow {
        waba: get(row, 0, T)?,
        start_ms: get(row, 2, T)?,
        phone: get(row, 3, T)?,
        user: get(row, 4, T)?,
        user_id: get(row, 5, T)?,
        country: get(row, 6, T)?,
        market: get(row, 7, T)?,
        direction: get(row, 8, T)?,
        call_type: get(row, 9, T)?,
        billable: get(row, 10, T)?,
        seconds: count(11)?,
        pulses: count(12)?,
        tier_minutes: dec(13)?,
        tier: get(row, 14, T)?,
        rate: dec(15)?,
        amount: dec(16)?,
        currency: get(row, 17, T)?,
        recording: required(18)?,
        transcription: required(19)?,
        agent: get(row, 20, T)?,
        error: get(row, 21, T)?,
        id: id.clone(),
    })
}

pub(crate) fn call_event<'r, R>(row: &'r R) -> Result<StoredCallEvent, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "call_events";
    let phase: String = get(row, 3, T)?;
    Ok(StoredCallEvent {
        seq: seq_from_db(get(row, 0, T)?),
        waba: get(row, 1, T)?,
        id: get(row, 2, T)?,
        terminate: phase == "terminate",
        start_ms: get(row, 4, T)?,
        raw: get(row, 5, T)?,
    })
}

/// Columns of [`StoredCallEvent`], for a query on `call_events`.
pub(crate) const CALL_EVENT_COLUMNS: &str = "seq, waba, id, phase, start_ms, raw";
