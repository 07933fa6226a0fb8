//! The `Store` trait: everything the service persists, as one object-safe interface that the
//! SQLite and PostgreSQL implementations share and one conformance suite checks.
//!
//! Why boxed futures rather than `async fn` in the trait: the service picks its backend at
//! run time from a URL and holds the store as `Arc<dyn Store>` (in axum state, in a worker
//! task), and a trait with `async fn` is not object-safe. The alternative, making the whole
//! server generic over the store, would monomorphise every handler twice for no gain. The
//! cost of the box is one allocation per call, nothing next to a database round trip, and it
//! needs no macro crate (`async_trait` does the same thing behind a proc macro).

use crate::error::{Backend, StoreError};
use crate::rows::{
    AccountOutcome, AccountRow, AlertAttempt, AlertRow, AlertSettingsRow, ApiKeyRow, AppendResult,
    AuditEntry, AuditRow, CallChargeFilter, CallChargeRow, CallScope, ChargeCount, ChargeFilter,
    ChargeRow, InvoiceRow, MetaMessageRow, MetaPricingRow, NewAccount, NewAlert, NewApiKey,
    NewCallEvent, NewEvent, NewTenant, OutboundRef, ReplaceOutcome, StoredCallEvent, StoredEvent,
    TenantOutcome, TenantRow, UsageRow,
};
use std::future::Future;
use std::pin::Pin;

/// A store call in flight. `Send` so that axum handlers and spawned tasks can await it.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Durable storage for wabill. Every method that writes does so in one transaction: when it
/// returns `Ok`, what it wrote survives a crash; when it returns `Err`, nothing of it is stored.
pub trait Store: Send + Sync {
    fn backend(&self) -> Backend;

    /// Appends message events, idempotently, in one transaction. Keys (docs/events.md): an
    /// inbound id, an outbound id, and a status's (id, status) pair each count once. A repeated
    /// key with the same `raw` bytes is a duplicate; with other bytes a conflict, reported and
    /// not stored. Any other failure (a row the schema rejects) stores nothing of the batch.
    /// Account events are refused here: use [`Store::record_accounts`].
    fn append_events<'a>(&'a self, events: &'a [NewEvent]) -> StoreFuture<'a, AppendResult> {
        self.append_described(events, &[])
    }

    /// [`Store::append_events`], recording in the same transaction what Meta said of the
    /// messages of some of the statuses (`(position in events, description)`, decisions.md
    /// D114): a description is recorded when its status is stored or a duplicate (not when it
    /// is refused as a conflict), and a (message id, status) already described keeps its first.
    fn append_described<'a>(
        &'a self,
        events: &'a [NewEvent],
        described: &'a [(usize, MetaMessageRow)],
    ) -> StoreFuture<'a, AppendResult>;

    /// Records account versions in one transaction, in order. A version whose bytes equal the
    /// WABA's latest is not written again; any other becomes the latest (history is kept).
    fn record_accounts<'a>(
        &'a self,
        accounts: &'a [NewAccount],
    ) -> StoreFuture<'a, Vec<AccountOutcome>>;

    /// The latest version of each account, of these WABAs (all WABAs with `None`), by WABA.
    fn accounts<'a>(&'a self, wabas: Option<&'a [String]>) -> StoreFuture<'a, Vec<AccountRow>>;

    /// Every version of one account, oldest first.
    fn account_history<'a>(&'a self, waba: &'a str) -> StoreFuture<'a, Vec<AccountRow>>;

    /// What re-rating these WABAs over `[from_ms, to_ms)` needs, ordered by seq: their inbound
    /// and outbound events in the range, every status of those outbound messages (whenever it
    /// came), and the latest account version of each WABA (kind `account`).
    fn events_for<'a>(
        &'a self,
        wabas: &'a [String],
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<StoredEvent>>;

    /// The earliest and the latest instant of the inbound and outbound events and of the call
    /// events (their start) of these WABAs (`None` when none is stored): the months a
    /// re-rating of everything must cover.
    fn event_span<'a>(&'a self, wabas: &'a [String]) -> StoreFuture<'a, Option<(i64, i64)>>;

    /// The stored outbound messages among these ids (ids with none are left out), by id.
    fn outbound_refs<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<OutboundRef>>;
    /// The statuses of these messages stored before them (a status may come before its
    /// message): for each (message id, seq), the statuses of that id with a lower seq; in seq
    /// order.
    fn statuses_before<'a>(
        &'a self,
        messages: &'a [(String, u64)],
    ) -> StoreFuture<'a, Vec<StoredEvent>>;
    /// Events and account versions with `seq > after_seq`, in seq order, at most `limit`.
    fn events_since(&self, after_seq: u64, limit: u32) -> StoreFuture<'_, Vec<StoredEvent>>;

    /// The highest sequence number stored, 0 for an empty store.
    fn max_seq(&self) -> StoreFuture<'_, u64>;

    /// Whether the store can be read and written now (the service's readiness): `Err` with
    /// the database's reason when it cannot. SQLite commits a transaction that writes a row
    /// of a page and deletes it (an I/O error fails it, where reads would not notice); after
    /// a failed append, until a write succeeds, the row is larger than the file's free pages,
    /// so that a full disk keeps failing it until the file can grow again. PostgreSQL runs a
    /// query on a pooled connection (a dropped one is replaced first).
    fn health(&self) -> StoreFuture<'_, ()>;

    /// Replaces charges in one transaction: afterwards every id in `ids` or in `rows` has
    /// exactly the row given for it in `rows`, or no charge at all (a message that now fails
    /// to rate loses its old charge). Two rows with one id are refused.
    fn replace_charges<'a>(
        &'a self,
        ids: &'a [String],
        rows: &'a [ChargeRow],
    ) -> StoreFuture<'a, ReplaceOutcome>;

    /// Charges matching the filter, ordered by (sent_at, id), after the cursor, at most `limit`.
    fn charges<'a>(&'a self, filter: &'a ChargeFilter) -> StoreFuture<'a, Vec<ChargeRow>>;

    /// Creates an API key from its SHA-256. An admin key has no WABAs; a reader or sender key
    /// has at least one.
    fn create_key<'a>(&'a self, key: &'a NewApiKey) -> StoreFuture<'a, ApiKeyRow>;

    /// The key with this SHA-256, if it exists and is not revoked.
    fn key_by_hash<'a>(&'a self, key_hash: &'a [u8; 32]) -> StoreFuture<'a, Option<ApiKeyRow>>;

    /// Every key, revoked ones too, by id.
    fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRow>>;

    /// Revokes a key. True if it was active; false if it was already revoked or never existed.
    fn revoke_key(&self, id: i64) -> StoreFuture<'_, bool>;

    /// What rating one (business phone, user) pair as of an instant needs: the pair's inbound
    /// and outbound events sent in `[from_ms, to_ms)`, every status of those outbound messages
    /// (whenever it came), and the latest account version of each WABA among them, ordered by
    /// seq. Used by the send check, which rates the pair with a hypothetical message.
    fn pair_events<'a>(
        &'a self,
        phone: &'a str,
        user: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<StoredEvent>>;

    /// How many stored charges match (see [`ChargeCount`]): the send check's offset for
    /// counters that span more than one (phone, user) pair (volume tiers, free allowances).
    fn count_charges<'a>(&'a self, q: &'a ChargeCount) -> StoreFuture<'a, u64>;

    /// The charges of these message ids (ids without one are left out), by (sent_at, id).
    fn charges_by_id<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<ChargeRow>>;

    /// Charges of `waba` delivered (`billed_at`) in `[from_ms, to_ms)`, grouped by 15-minute
    /// slot, phone, country, category, pricing type, tier, amount and currency, in that order.
    /// Undelivered messages have no delivery instant and are never counted. Amounts come back
    /// exactly, per group, for the caller to sum (never a SQL sum: SQLite would use floats).
    fn usage<'a>(
        &'a self,
        waba: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<UsageRow>>;

    /// Stores Meta's pricing objects in one transaction, idempotently: a (message id, status)
    /// already stored keeps its first row. Returns how many rows were new.
    fn record_meta_pricing<'a>(&'a self, rows: &'a [MetaPricingRow]) -> StoreFuture<'a, u64>;

    /// Meta's pricing rows of these message ids, by (id, status).
    fn meta_pricing_by_id<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<MetaPricingRow>>;

    /// Meta's pricing rows of `waba` whose status instant is in `[from_ms, to_ms)`, by
    /// (id, status).
    fn meta_pricing_in<'a>(
        &'a self,
        waba: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<MetaPricingRow>>;

    /// Records descriptions of messages in one transaction, idempotently: a (message id,
    /// status) already described keeps its first row. Returns how many rows were new.
    fn record_meta_messages<'a>(&'a self, rows: &'a [MetaMessageRow]) -> StoreFuture<'a, u64>;

    /// The descriptions of these message ids, by (id, status).
    fn meta_messages_by_id<'a>(&'a self, ids: &'a [String])
        -> StoreFuture<'a, Vec<MetaMessageRow>>;

    /// The descriptions of messages of these WABAs whose status instant is in
    /// `[from_ms, to_ms)`, by (id, status).
    fn meta_messages_in<'a>(
        &'a self,
        wabas: &'a [String],
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<MetaMessageRow>>;

    /// The highest event seq whose effects the stored charges are known to include (0 when
    /// never set). The service advances it after re-rating and, on start, re-rates what was
    /// stored after it: dirty marks live in memory and a crash would otherwise lose them.
    fn rated_seq(&self) -> StoreFuture<'_, u64>;

    /// Raises [`Store::rated_seq`] to `seq` (never lowers it).
    fn set_rated_seq(&self, seq: u64) -> StoreFuture<'_, ()>;

    /// Records a version of a tenant's set-up in one transaction, and makes its WABAs the
    /// tenant's (and only its). Versions are never changed or removed; a version whose bytes
    /// equal the newest is not written again. See [`TenantOutcome`] for the refusals.
    fn put_tenant<'a>(&'a self, t: &'a NewTenant) -> StoreFuture<'a, TenantOutcome>;

    /// The newest set-up version of a tenant.
    fn tenant<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Option<TenantRow>>;

    /// Every set-up version of a tenant, oldest first.
    fn tenant_history<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<TenantRow>>;

    /// The newest version of every tenant, by tenant id.
    fn tenants(&self) -> StoreFuture<'_, Vec<TenantRow>>;

    /// The tenant that owns a WABA (in its newest set-up), if any.
    fn tenant_of_waba<'a>(&'a self, waba: &'a str) -> StoreFuture<'a, Option<String>>;

    /// Stores a finalized invoice. False, and nothing written, when the tenant's month is
    /// already finalized: a finalized invoice never changes.
    fn finalize_invoice<'a>(&'a self, inv: &'a InvoiceRow) -> StoreFuture<'a, bool>;

    /// The tenant's finalized invoices, by month.
    fn invoices<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<InvoiceRow>>;

    /// Records (or replaces) a tenant's budget alert settings.
    fn put_alert_settings<'a>(&'a self, s: &'a AlertSettingsRow) -> StoreFuture<'a, ()>;

    /// A tenant's budget alert settings, if any.
    fn alert_settings<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Option<AlertSettingsRow>>;

    /// Every tenant's budget alert settings, by tenant.
    fn all_alert_settings(&self) -> StoreFuture<'_, Vec<AlertSettingsRow>>;

    /// Records alerts in one transaction, each due at once (`next_attempt_at_ms` =
    /// `created_at_ms`). An alert whose (tenant, month, threshold) is already stored is left as
    /// it is: each is emitted once. Returns how many were new.
    fn record_alerts<'a>(&'a self, alerts: &'a [NewAlert]) -> StoreFuture<'a, u64>;

    /// A tenant's alerts, by (month, threshold).
    fn alerts<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<AlertRow>>;

    /// Alerts not delivered and not given up whose next attempt is due at `now_ms`, oldest
    /// first, at most `limit`.
    fn alerts_due<'a>(&'a self, now_ms: i64, limit: u32) -> StoreFuture<'a, Vec<AlertRow>>;

    /// Records one delivery attempt: attempts + 1, the error, and either delivered (at
    /// `at_ms`) or the next attempt. An alert already delivered is left as it is; false then.
    fn record_alert_attempt<'a>(&'a self, a: &'a AlertAttempt) -> StoreFuture<'a, bool>;

    /// Appends an admin action to the audit log.
    fn record_audit<'a>(&'a self, entry: &'a AuditEntry) -> StoreFuture<'a, ()>;

    /// The audit log after position `after_id` (0: from the start), oldest first, at most
    /// `limit` rows.
    fn audit_log(&self, after_id: i64, limit: u32) -> StoreFuture<'_, Vec<AuditRow>>;

    /// Appends call events idempotently, in one transaction, by their key (WABA, call id,
    /// phase): a key stored with the same `raw` is a duplicate, with another `raw` a conflict,
    /// reported and not stored (decisions.md D129). `inserted` holds the new events' seqs.
    fn append_calls<'a>(&'a self, calls: &'a [NewCallEvent]) -> StoreFuture<'a, AppendResult>;

    /// Every stored event of each call of these WABAs that has an event started in
    /// `[from_ms, to_ms)` (so that a call's `connect` and `terminate` come together even when
    /// their instants lie on either side of a bound), by seq.
    fn calls_for<'a>(
        &'a self,
        wabas: &'a [String],
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<StoredCallEvent>>;

    /// The (WABA, start) of every call event not yet marked rated: what a crash left unrated.
    fn unrated_calls(&self) -> StoreFuture<'_, Vec<(String, i64)>>;

    /// Replaces the call charges of `scopes` in one transaction: every call charge of a scope's
    /// WABA started in its range goes, the `rows` are written (replacing any row of the same
    /// (WABA, id), wherever it started), and the call events of `rated` (seqs) are marked rated.
    fn replace_call_charges<'a>(
        &'a self,
        scopes: &'a [CallScope],
        rows: &'a [CallChargeRow],
        rated: &'a [u64],
    ) -> StoreFuture<'a, ()>;

    /// Call charges matching the filter, by (start, id, WABA), after the cursor, at most `limit`.
    fn call_charges<'a>(
        &'a self,
        filter: &'a CallChargeFilter,
    ) -> StoreFuture<'a, Vec<CallChargeRow>>;

    /// Closes the connections, waiting for calls in flight.
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// The `Store` impl of a backend: every method forwards to the backend's inherent async method
/// of the same purpose, boxed. Both backends share it, so their trait surface cannot drift.
macro_rules! forward_store {
    ($ty:ty, $backend:expr) => {
        impl $crate::store::Store for $ty {
            fn backend(&self) -> Backend {
                $backend
            }
            fn append_described<'a>(
                &'a self,
                events: &'a [NewEvent],
                described: &'a [(usize, MetaMessageRow)],
            ) -> StoreFuture<'a, AppendResult> {
                Box::pin(self.append(events, described))
            }
            fn record_accounts<'a>(
                &'a self,
                accounts: &'a [NewAccount],
            ) -> StoreFuture<'a, Vec<AccountOutcome>> {
                Box::pin(self.record(accounts))
            }
            fn accounts<'a>(
                &'a self,
                wabas: Option<&'a [String]>,
            ) -> StoreFuture<'a, Vec<AccountRow>> {
                Box::pin(self.latest_accounts(wabas))
            }
            fn account_history<'a>(&'a self, waba: &'a str) -> StoreFuture<'a, Vec<AccountRow>> {
                Box::pin(self.history(waba))
            }
            fn events_for<'a>(
                &'a self,
                wabas: &'a [String],
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<StoredEvent>> {
                Box::pin(self.load_for(wabas, from_ms, to_ms))
            }
            fn event_span<'a>(
                &'a self,
                wabas: &'a [String],
            ) -> StoreFuture<'a, Option<(i64, i64)>> {
                Box::pin(self.span(wabas))
            }
            fn outbound_refs<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<OutboundRef>> {
                Box::pin(self.refs(ids))
            }
            fn statuses_before<'a>(
                &'a self,
                messages: &'a [(String, u64)],
            ) -> StoreFuture<'a, Vec<StoredEvent>> {
                Box::pin(self.statuses(messages))
            }
            fn events_since(
                &self,
                after_seq: u64,
                limit: u32,
            ) -> StoreFuture<'_, Vec<StoredEvent>> {
                Box::pin(self.since(after_seq, limit))
            }
            fn max_seq(&self) -> StoreFuture<'_, u64> {
                Box::pin(self.last_seq())
            }
            fn health(&self) -> StoreFuture<'_, ()> {
                Box::pin(self.probe())
            }
            fn replace_charges<'a>(
                &'a self,
                ids: &'a [String],
                rows: &'a [ChargeRow],
            ) -> StoreFuture<'a, ReplaceOutcome> {
                Box::pin(self.replace(ids, rows))
            }
            fn charges<'a>(&'a self, filter: &'a ChargeFilter) -> StoreFuture<'a, Vec<ChargeRow>> {
                Box::pin(self.read_charges(filter))
            }
            fn create_key<'a>(&'a self, key: &'a NewApiKey) -> StoreFuture<'a, ApiKeyRow> {
                Box::pin(self.new_key(key))
            }
            fn key_by_hash<'a>(
                &'a self,
                key_hash: &'a [u8; 32],
            ) -> StoreFuture<'a, Option<ApiKeyRow>> {
                Box::pin(self.find_key(key_hash))
            }
            fn list_keys(&self) -> StoreFuture<'_, Vec<ApiKeyRow>> {
                Box::pin(self.all_keys())
            }
            fn revoke_key(&self, id: i64) -> StoreFuture<'_, bool> {
                Box::pin(self.revoke(id))
            }
            fn pair_events<'a>(
                &'a self,
                phone: &'a str,
                user: &'a str,
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<StoredEvent>> {
                Box::pin(self.load_pair(phone, user, from_ms, to_ms))
            }
            fn count_charges<'a>(&'a self, q: &'a ChargeCount) -> StoreFuture<'a, u64> {
                Box::pin(self.count(q))
            }
            fn charges_by_id<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<ChargeRow>> {
                Box::pin(self.by_id(ids))
            }
            fn usage<'a>(
                &'a self,
                waba: &'a str,
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<UsageRow>> {
                Box::pin(self.read_usage(waba, from_ms, to_ms))
            }
            fn record_meta_pricing<'a>(
                &'a self,
                rows: &'a [MetaPricingRow],
            ) -> StoreFuture<'a, u64> {
                Box::pin(self.record_meta(rows))
            }
            fn meta_pricing_by_id<'a>(
                &'a self,
                ids: &'a [String],
            ) -> StoreFuture<'a, Vec<MetaPricingRow>> {
                Box::pin(self.meta_by_id(ids))
            }
            fn meta_pricing_in<'a>(
                &'a self,
                waba: &'a str,
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<MetaPricingRow>> {
                Box::pin(self.meta_in(waba, from_ms, to_ms))
            }
            fn record_meta_messages<'a>(
                &'a self,
                rows: &'a [MetaMessageRow],
            ) -> StoreFuture<'a, u64> {
                Box::pin(self.record_messages(rows))
            }
            fn meta_messages_by_id<'a>(
                &'a self,
                ids: &'a [String],
            ) -> StoreFuture<'a, Vec<MetaMessageRow>> {
                Box::pin(self.messages_by_id(ids))
            }
            fn meta_messages_in<'a>(
                &'a self,
                wabas: &'a [String],
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<MetaMessageRow>> {
                Box::pin(self.messages_in(wabas, from_ms, to_ms))
            }
            fn rated_seq(&self) -> StoreFuture<'_, u64> {
                Box::pin(self.get_rated_seq())
            }
            fn set_rated_seq(&self, seq: u64) -> StoreFuture<'_, ()> {
                Box::pin(self.put_rated_seq(seq))
            }
            fn put_tenant<'a>(&'a self, t: &'a NewTenant) -> StoreFuture<'a, TenantOutcome> {
                Box::pin(self.put_tenant_impl(t))
            }
            fn tenant<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Option<TenantRow>> {
                Box::pin(async move {
                    Ok(self
                        .tenant_versions(Some(tenant), true)
                        .await?
                        .into_iter()
                        .next())
                })
            }
            fn tenant_history<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<TenantRow>> {
                Box::pin(self.tenant_versions(Some(tenant), false))
            }
            fn tenants(&self) -> StoreFuture<'_, Vec<TenantRow>> {
                Box::pin(self.tenant_versions(None, true))
            }
            fn tenant_of_waba<'a>(&'a self, waba: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin(self.owner_of(waba))
            }
            fn finalize_invoice<'a>(&'a self, inv: &'a InvoiceRow) -> StoreFuture<'a, bool> {
                Box::pin(self.store_invoice(inv))
            }
            fn invoices<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<InvoiceRow>> {
                Box::pin(self.read_invoices(tenant))
            }
            fn put_alert_settings<'a>(&'a self, s: &'a AlertSettingsRow) -> StoreFuture<'a, ()> {
                Box::pin(self.put_settings_impl(s))
            }
            fn alert_settings<'a>(
                &'a self,
                tenant: &'a str,
            ) -> StoreFuture<'a, Option<AlertSettingsRow>> {
                Box::pin(
                    async move { Ok(self.settings_impl(Some(tenant)).await?.into_iter().next()) },
                )
            }
            fn all_alert_settings(&self) -> StoreFuture<'_, Vec<AlertSettingsRow>> {
                Box::pin(self.settings_impl(None))
            }
            fn record_alerts<'a>(&'a self, alerts: &'a [NewAlert]) -> StoreFuture<'a, u64> {
                Box::pin(self.record_alerts_impl(alerts))
            }
            fn alerts<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<AlertRow>> {
                Box::pin(self.alerts_impl(tenant))
            }
            fn alerts_due<'a>(&'a self, now_ms: i64, limit: u32) -> StoreFuture<'a, Vec<AlertRow>> {
                Box::pin(self.alerts_due_impl(now_ms, limit))
            }
            fn record_alert_attempt<'a>(&'a self, a: &'a AlertAttempt) -> StoreFuture<'a, bool> {
                Box::pin(self.attempt_impl(a))
            }
            fn record_audit<'a>(&'a self, entry: &'a AuditEntry) -> StoreFuture<'a, ()> {
                Box::pin(self.record_audit_impl(entry))
            }
            fn audit_log(&self, after_id: i64, limit: u32) -> StoreFuture<'_, Vec<AuditRow>> {
                Box::pin(self.audit_log_impl(after_id, limit))
            }
            fn append_calls<'a>(
                &'a self,
                calls: &'a [NewCallEvent],
            ) -> StoreFuture<'a, AppendResult> {
                Box::pin(self.append_calls_impl(calls))
            }
            fn calls_for<'a>(
                &'a self,
                wabas: &'a [String],
                from_ms: i64,
                to_ms: i64,
            ) -> StoreFuture<'a, Vec<StoredCallEvent>> {
                Box::pin(self.calls_for_impl(wabas, from_ms, to_ms))
            }
            fn unrated_calls(&self) -> StoreFuture<'_, Vec<(String, i64)>> {
                Box::pin(self.unrated_calls_impl())
            }
            fn replace_call_charges<'a>(
                &'a self,
                scopes: &'a [CallScope],
                rows: &'a [CallChargeRow],
                rated: &'a [u64],
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.replace_call_charges_impl(scopes, rows, rated))
            }
            fn call_charges<'a>(
                &'a self,
                filter: &'a CallChargeFilter,
            ) -> StoreFuture<'a, Vec<CallChargeRow>> {
                Box::pin(self.call_charges_impl(filter))
            }
            fn close(&self) -> StoreFuture<'_, ()> {
                Box::pin(self.shut())
            }
        }
    };
}
pub(crate) use forward_store;
