//! The SQLite store, wabill's default: one file, created and migrated on first open, in WAL
//! mode with `synchronous=FULL`.
//!
//! Durability: a write call returns only after its transaction's WAL frames are fsynced, so an
//! event that the service acknowledged survives not only a crash of the process (which
//! `synchronous=NORMAL` would already give in WAL mode) but also a crash of the machine or a
//! power cut, which NORMAL does not: it syncs only at checkpoints, and a webhook Meta saw
//! acknowledged is never sent again. The price is one fsync per transaction, which batching
//! makes small (10,000 events per append call cost one fsync).
//!
//! Concurrency: SQLite has one writer at a time, so writes go through a pool of one
//! connection and start with `BEGIN IMMEDIATE` (take the write lock first, never upgrade a
//! read lock, which can fail with SQLITE_BUSY under contention with another process). Reads
//! use their own small pool and, thanks to WAL, never wait for the writer. Holding the write
//! lock is also what makes `seq` (the rowid, max + 1) follow commit order.

mod calls;

use crate::append::{self, Existing};
use crate::common::{check_charge_ids, check_key, now_ms, seq_from_db, seq_to_db};
use crate::decode::{self, KeyWhere, ACCOUNT_COLUMNS, EVENT_COLUMNS, META_PRICING_COLUMNS};
use crate::error::{redact, Backend, StoreError};
use crate::migrations;
use crate::rows::{
    AccountOutcome, AccountRow, AlertAttempt, AlertRow, AlertSettingsRow, ApiKeyRow, AppendResult,
    AuditEntry, AuditRow, CallChargeFilter, CallChargeRow, CallScope, ChargeCount, ChargeFilter,
    ChargeRow, InvoiceRow, MetaMessageRow, MetaPricingRow, NewAccount, NewAlert, NewApiKey,
    NewCallEvent, NewEvent, NewTenant, OutboundRef, ReplaceOutcome, StoredCallEvent, StoredEvent,
    TenantOutcome, TenantRow, UsageRow, USAGE_SLOT_MS,
};
use crate::store::StoreFuture;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder, Sqlite, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Events per INSERT statement: 9 parameters each, well under SQLite's limit of 32,766, and
/// large enough that the per-statement cost (a round trip to sqlx's SQLite worker thread)
/// disappears in a batch.
const EVENT_ROWS_PER_INSERT: usize = 1000;
/// Rows per statement when looking up which events of a batch were already stored.
const LOOKUP_ROWS: usize = 1000;
/// Charges per INSERT statement (18 parameters each).
const CHARGE_ROWS_PER_INSERT: usize = 500;

/// SQLite's page cache for the writer, in KiB (negative `cache_size` means KiB): index pages
/// of a large events table stay in memory during batch inserts.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Page size of a new database file. Larger than SQLite's 4 KiB default because the store is
/// append-heavy: fewer B-tree splits and WAL frames per event (measured with
/// `examples/append_throughput`: about +20% events/s over 4 KiB pages). Fixed once the file
/// exists.
const PAGE_SIZE: u32 = 16 * 1024;
/// WAL pages after which a commit checkpoints (32 MiB at 16 KiB pages): checkpointing less
/// often writes pages that several batches touched only once.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 2000;
/// SQLite's default `max_page_count`.
const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// The largest the database file may grow to, in pages (`PRAGMA max_page_count` of the
    /// writer, set again on every writer connection the pool opens); 0: SQLite's own limit.
    page_limit: Arc<AtomicU64>,
    faults: Arc<Faults>,
    /// Why the last append of events failed, until a write succeeds again: readiness then
    /// probes with a write that must grow the file (see `probe`).
    write_fault: Mutex<Option<String>>,
}

/// A write transaction on the writer connection, begun and ended by the store itself rather
/// than by sqlx's `Transaction`: when a COMMIT fails (SQLITE_FULL, an I/O error) SQLite may
/// already have rolled the transaction back, sqlx's ROLLBACK on drop then fails with "no
/// transaction is active", and sqlx believes the connection is still in a transaction for
/// good, refusing every later `BEGIN` ("attempted to call begin_with at non-zero transaction
/// depth"). Here every way out (commit, a failed commit, an error or a cancellation before the
/// commit) ends with the connection outside any transaction, or with the connection closed
/// (which rolls back) so that the pool opens a fresh one for the next write.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Sqlite>>,
    faults: Arc<Faults>,
}

/// Faults injected on purpose (the simulation and the fault tests), one-shot each: the next
/// `refuse_writes` write transactions fail before writing, and the next `lose_commits` commits
/// succeed but report a failure, as when a disk error or a dropped connection loses the answer
/// of a commit that happened.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    refuse_writes: AtomicU32,
    lose_commits: AtomicU32,
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl WriteTx {
    async fn begin(pool: &SqlitePool, faults: &Arc<Faults>) -> Result<WriteTx, sqlx::Error> {
        if take(&faults.refuse_writes) {
            return Err(sqlx::Error::Io(std::io::Error::other(
                "injected fault: the write was refused",
            )));
        }
        let mut conn = pool.acquire().await?;
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            if !e.to_string().contains("within a transaction") {
                return Err(e);
            }
            // An orphan: a write cancelled while its BEGIN was under way (SQLite ran it, the
            // future was dropped before a `WriteTx` held it) gave the connection back inside a
            // transaction. Nothing of it was committed or acknowledged, and a live `WriteTx`
            // holds the one writer connection alone, so it is rolled back and this write
            // begins, rather than failing an innocent write.
            let again = match conn.execute("ROLLBACK").await {
                Ok(_) => conn.execute("BEGIN IMMEDIATE").await,
                Err(e) => Err(e),
            };
            if let Err(e) = again {
                conn.close_on_drop();
                return Err(e);
            }
        }
        Ok(WriteTx {
            conn: Some(conn),
            faults: faults.clone(),
        })
    }

    /// Commits; on failure nothing of the transaction is stored and the writer is ready for
    /// the next one.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut conn = self.conn.take().expect("an open transaction");
        match conn.execute("COMMIT").await {
            Ok(_) if take(&self.faults.lose_commits) => Err(sqlx::Error::Io(
                std::io::Error::other("injected fault: committed, but the answer was lost"),
            )),
            Ok(_) => Ok(()),
            Err(e) => {
                end(conn).await;
                Err(e)
            }
        }
    }
}

/// Rolls back what is left of a transaction and gives the connection back to the pool, or
/// closes it when SQLite cannot say that it is out of the transaction.
async fn end(mut conn: PoolConnection<Sqlite>) {
    match conn.execute("ROLLBACK").await {
        Ok(_) => {}
        // SQLite rolled it back itself (after SQLITE_FULL, an I/O error, ...).
        Err(e) if e.to_string().contains("no transaction is active") => {}
        Err(_) => conn.close_on_drop(),
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_deref().expect("an open transaction")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_deref_mut().expect("an open transaction")
    }
}

impl Drop for WriteTx {
    /// An error or a cancellation before the commit: the rollback runs on a task of its own,
    /// which holds the writer until it is done, so the next write waits for it. Outside a
    /// runtime the connection is closed, which rolls back.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(end(conn));
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database file at `path` and brings
    /// its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        Self::open_with(
            SqliteConnectOptions::new().filename(path),
            &path.display().to_string(),
        )
        .await
    }

    /// Opens a `sqlite:` URL (`sqlite://data/wabill.db`, `sqlite:wabill.db?mode=rwc`).
    pub async fn open_url(url: &str) -> Result<SqliteStore, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(in_memory(url));
        }
        let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            backend: Backend::Sqlite,
            url: redact(url),
            source,
        })?;
        Self::open_with(options, url).await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        shown: &str,
    ) -> Result<SqliteStore, StoreError> {
        let fail = |source| StoreError::Open {
            backend: Backend::Sqlite,
            url: redact(shown),
            source,
        };
        let path = options.get_filename().to_path_buf();
        if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
            return Err(in_memory(shown));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(sqlx::Error::Io(e)))?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .page_size(PAGE_SIZE)
            .busy_timeout(Duration::from_secs(10));
        let page_limit = Arc::new(AtomicU64::new(0));
        let limit = page_limit.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let pages = limit.load(Ordering::Acquire);
                Box::pin(async move {
                    if pages > 0 {
                        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", (-WRITER_CACHE_KIB).to_string())
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string()),
            )
            .await
            .map_err(fail)?;
        migrations::migrator(migrations::SQLITE)
            .await
            .run(&write)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: Backend::Sqlite,
                source,
            })?;
        backfill_id_hashes(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(fail)?;
        Ok(SqliteStore {
            write,
            read,
            page_limit,
            faults: Arc::default(),
            write_fault: Mutex::default(),
        })
    }

    /// Caps the database file at `pages` pages of 16 KiB (`PRAGMA max_page_count`; SQLite
    /// never lowers it below the pages already used), or lifts the cap (`None`). A write that
    /// would grow the file beyond it fails as on a full disk (SQLITE_FULL), which is what the
    /// tests of recovery from a full disk use it for.
    pub async fn limit_pages(&self, pages: Option<u64>) -> Result<u64, StoreError> {
        let pages = pages.unwrap_or(SQLITE_MAX_PAGES);
        self.page_limit.store(pages, Ordering::Release);
        let (now,): (i64,) = sqlx::query_as(&format!("PRAGMA max_page_count = {pages}"))
            .fetch_one(&self.write)
            .await
            .map_err(StoreError::db("pragma", "setting max_page_count"))?;
        Ok(now as u64)
    }

    /// Injects faults into the next write transactions (the simulation's failing writes): the
    /// next `refused` fail before writing anything, and after them the next `lost` commit but
    /// answer with an error.
    pub fn inject_write_faults(&self, refused: u32, lost: u32) {
        self.faults
            .refuse_writes
            .fetch_add(refused, Ordering::AcqRel);
        self.faults.lose_commits.fetch_add(lost, Ordering::AcqRel);
    }

    async fn begin_write(&self, table: &'static str) -> Result<WriteTx, StoreError> {
        WriteTx::begin(&self.write, &self.faults)
            .await
            .map_err(StoreError::db(table, "starting a write transaction"))
    }

    async fn append(
        &self,
        events: &[NewEvent],
        described: &[(usize, MetaMessageRow)],
    ) -> Result<AppendResult, StoreError> {
        let r = self.append_batch(events, described).await;
        self.note_write(r.as_ref().err());
        r
    }

    fn note_write(&self, failed: Option<&StoreError>) {
        let mut fault = self.write_fault.lock().expect("not poisoned");
        match failed {
            Some(e @ StoreError::Db { .. }) => *fault = Some(e.to_string()),
            Some(_) => {}
            None => *fault = None,
        }
    }

    async fn append_batch(
        &self,
        events: &[NewEvent],
        described: &[(usize, MetaMessageRow)],
    ) -> Result<AppendResult, StoreError> {
        let plan = append::plan(events)?;
        if plan.candidates.is_empty() {
            return Ok(append::finish(events, plan, Vec::new(), 0));
        }
        let received_at_ms = now_ms();
        let mut tx = self.begin_write("events").await?;
        let base = max_seq(&mut tx).await?;
        // The idempotency key has no unique index (schema v6): this writer enforces it, by
        // looking the batch's keys up inside its write transaction, where nothing else writes.
        let existing = find_existing(&mut tx, events, &plan.candidates).await?;
        let mut stored = vec![false; plan.candidates.len()];
        for x in &existing {
            stored[x.candidate] = true;
        }
        let new: Vec<usize> = plan
            .candidates
            .iter()
            .zip(&stored)
            .filter(|(_, s)| !**s)
            .map(|(&i, _)| i)
            .collect();
        for chunk in new.chunks(EVENT_ROWS_PER_INSERT) {
            let sql = insert_events_sql(chunk.len());
            // Only the full chunk's statement is kept prepared: one per remainder size would
            // fill the statement cache with statements of thousands of parameters each.
            let mut q = sqlx::query(&sql).persistent(chunk.len() == EVENT_ROWS_PER_INSERT);
            for &i in chunk {
                let e = &events[i];
                q = q
                    .bind(e.kind.as_str())
                    .bind(e.id.as_str())
                    .bind(id_hash(&e.id))
                    .bind(e.status_key())
                    .bind(e.at_ms)
                    .bind(e.waba.as_deref())
                    .bind(e.phone.as_deref())
                    .bind(e.user.as_deref())
                    .bind(e.raw.as_str())
                    .bind(received_at_ms);
            }
            q.execute(&mut *tx).await.map_err(StoreError::db(
                "events",
                format!(
                    "inserting the batch's events {}..={} (the whole batch is rolled back)",
                    chunk[0],
                    chunk[chunk.len() - 1]
                ),
            ))?;
        }
        let rows = append::recordable(events, &plan, &existing, described)?;
        insert_messages(&mut tx, &rows, received_at_ms).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("events", "committing a batch"))?;
        Ok(append::finish(events, plan, existing, base))
    }

    async fn record(&self, accounts: &[NewAccount]) -> Result<Vec<AccountOutcome>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write("accounts").await?;
        let mut out = Vec::with_capacity(accounts.len());
        for a in accounts {
            let latest: Option<(i64, String)> = sqlx::query_as(
                "SELECT a.seq, e.raw FROM accounts a JOIN events e ON e.seq = a.seq \
                 WHERE a.waba = ? ORDER BY a.seq DESC LIMIT 1",
            )
            .bind(a.waba.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(
                "accounts",
                format!("reading account '{}'", a.waba),
            ))?;
            if let Some((seq, _)) = latest.filter(|(_, raw)| *raw == a.raw) {
                out.push(AccountOutcome {
                    seq: seq_from_db(seq),
                    recorded: false,
                });
                continue;
            }
            let doing = format!("recording account '{}'", a.waba);
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO events (kind, id, status, at_ms, waba, raw, received_at_ms) \
                 VALUES ('account', ?1, '', ?2, ?1, ?3, ?2) RETURNING seq",
            )
            .bind(a.waba.as_str())
            .bind(now)
            .bind(a.raw.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("events", doing.clone()))?;
            sqlx::query(
                "INSERT INTO accounts (seq, waba, portfolio, timezone, currency) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(seq)
            .bind(a.waba.as_str())
            .bind(a.portfolio.as_str())
            .bind(a.timezone.as_str())
            .bind(a.currency.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("accounts", doing))?;
            out.push(AccountOutcome {
                seq: seq_from_db(seq),
                recorded: true,
            });
        }
        tx.commit()
            .await
            .map_err(StoreError::db("accounts", "committing account versions"))?;
        Ok(out)
    }

    async fn latest_accounts(
        &self,
        wabas: Option<&[String]>,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let filter = if wabas.is_some() {
            "WHERE waba IN (SELECT value FROM json_each(?))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN events e ON e.seq = a.seq \
             WHERE a.seq IN (SELECT max(seq) FROM accounts {filter} GROUP BY waba) ORDER BY a.waba"
        );
        let mut q = sqlx::query(&sql);
        if let Some(w) = wabas {
            q = q.bind(json_list(w));
        }
        let rows = q
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db("accounts", "reading the latest accounts"))?;
        rows.iter().map(decode::account).collect()
    }

    async fn history(&self, waba: &str) -> Result<Vec<AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN events e ON e.seq = a.seq \
             WHERE a.waba = ? ORDER BY a.seq"
        );
        let rows = sqlx::query(&sql)
            .bind(waba)
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db(
                "accounts",
                format!("reading the history of '{waba}'"),
            ))?;
        rows.iter().map(decode::account).collect()
    }

    async fn load_for(
        &self,
        wabas: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            // `waba IS NOT NULL` repeats the partial index's condition so that SQLite's
            // planner can prove it may use it.
            as_one_row(&format!(
                "WITH w(waba) AS (SELECT value FROM json_each(?1)), \
                 msgs AS (SELECT * FROM events WHERE waba IS NOT NULL AND waba IN (SELECT waba FROM w) \
                          AND at_ms >= ?2 AND at_ms < ?3 AND kind IN ('inbound', 'outbound')) \
                 SELECT {EVENT_COLUMNS} FROM msgs e \
                 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM msgs o JOIN events e \
                   ON e.id_hash = o.id_hash AND e.id = o.id AND e.kind = 'status' WHERE o.kind = 'outbound' \
                 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq IN \
                   (SELECT max(seq) FROM accounts WHERE waba IN (SELECT waba FROM w) GROUP BY waba)"
            ))
        });
        let rows = sqlx::query_scalar::<_, String>(sql)
            .bind(json_list(wabas))
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                format!(
                    "loading events of {} WABAs in [{from_ms}, {to_ms})",
                    wabas.len()
                ),
            ))?;
        events_from_json(&rows)
    }

    async fn refs(&self, ids: &[String]) -> Result<Vec<OutboundRef>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(OUTBOUND_REFS_SQL)
            .bind(json_hashed(ids))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                format!("finding {} outbound messages", ids.len()),
            ))?;
        rows.iter()
            .map(|r| {
                Ok(OutboundRef {
                    id: r.try_get(0).map_err(StoreError::db(
                        "events",
                        "reading an outbound id".to_string(),
                    ))?,
                    waba: r.try_get(1).map_err(StoreError::db(
                        "events",
                        "reading an outbound WABA".to_string(),
                    ))?,
                    at_ms: r.try_get(2).map_err(StoreError::db(
                        "events",
                        "reading an outbound instant".to_string(),
                    ))?,
                })
            })
            .collect()
    }

    async fn statuses(&self, messages: &[(String, u64)]) -> Result<Vec<StoredEvent>, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| as_one_row(statuses_before_sql()));
        let list = serde_json::to_string(
            &messages
                .iter()
                .map(|(id, seq)| (id.as_str(), seq_to_db(*seq), id_hash(id)))
                .collect::<Vec<_>>(),
        )
        .expect("ids and numbers serialise");
        let rows = sqlx::query_scalar::<_, String>(sql)
            .bind(list)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                format!(
                    "reading the earlier statuses of {} messages",
                    messages.len()
                ),
            ))?;
        events_from_json(&rows)
    }

    async fn since(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            as_one_row(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?"
            ))
        });
        let rows = sqlx::query_scalar::<_, String>(sql)
            .bind(seq_to_db(after_seq))
            .bind(i64::from(limit))
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                format!("reading events after seq {after_seq}"),
            ))?;
        events_from_json(&rows)
    }

    async fn replace(
        &self,
        ids: &[String],
        rows: &[ChargeRow],
    ) -> Result<ReplaceOutcome, StoreError> {
        let gone = check_charge_ids(ids, rows)?;
        let mut tx = self.begin_write("charges").await?;
        let removed =
            sqlx::query("DELETE FROM charges WHERE id IN (SELECT value FROM json_each(?))")
                .bind(json_list(&gone))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(
                    "charges",
                    format!("removing the charges of {} messages", gone.len()),
                ))?
                .rows_affected();
        static UPSERT: OnceLock<String> = OnceLock::new();
        // `OR FAIL`: a rejected row fails the statement without SQLite copying every page it
        // touches into a statement journal first; the transaction is then rolled back whole.
        let upsert = UPSERT.get_or_init(|| crate::common::charge_upsert_clause("IS NOT"));
        let mut written = 0;
        for chunk in rows.chunks(CHARGE_ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR FAIL INTO charges (id, sent_at_ms, waba, phone, user_phone, country, \
                 market, pricing_model, category, pricing_type, billable, tier, rate, amount, \
                 currency, billed_at_ms, conversation_id, agent) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.as_str())
                    .push_bind(r.sent_at_ms)
                    .push_bind(r.waba.as_str())
                    .push_bind(r.phone.as_str())
                    .push_bind(r.user.as_str())
                    .push_bind(r.country.as_str())
                    .push_bind(r.market.as_str())
                    .push_bind(r.pricing_model.as_str())
                    .push_bind(r.category.as_str())
                    .push_bind(r.pricing_type.as_str())
                    .push_bind(r.billable)
                    .push_bind(r.tier.as_deref())
                    .push_bind(r.rate.map(|d| d.to_string()))
                    .push_bind(r.amount.to_string())
                    .push_bind(r.currency.as_str())
                    .push_bind(r.billed_at_ms)
                    .push_bind(r.conversation_id.as_deref())
                    .push_bind(r.agent.as_deref());
            });
            qb.push(upsert.as_str());
            written += qb
                .build()
                .persistent(chunk.len() == CHARGE_ROWS_PER_INSERT)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(
                    "charges",
                    format!(
                        "writing charges '{}'..'{}'",
                        chunk[0].id,
                        chunk[chunk.len() - 1].id
                    ),
                ))?
                .rows_affected();
        }
        tx.commit()
            .await
            .map_err(StoreError::db("charges", "committing a replacement"))?;
        Ok(ReplaceOutcome { removed, written })
    }

    async fn read_charges(&self, f: &ChargeFilter) -> Result<Vec<ChargeRow>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("{CHARGES_AS_ONE_ROW} ({CHARGE_SELECT} WHERE 1 = 1"));
        if let Some(w) = &f.waba {
            qb.push(" AND waba = ").push_bind(w.as_str());
        }
        if let Some(ws) = &f.wabas {
            qb.push(" AND waba IN (SELECT value FROM json_each(")
                .push_bind(json_list(ws))
                .push("))");
        }
        if let Some(from) = f.from_ms {
            qb.push(" AND sent_at_ms >= ").push_bind(from);
        }
        if let Some(to) = f.to_ms {
            qb.push(" AND sent_at_ms < ").push_bind(to);
        }
        if let Some(c) = &f.after {
            qb.push(" AND (sent_at_ms, id) > (")
                .push_bind(c.sent_at_ms)
                .push(", ")
                .push_bind(c.id.as_str())
                .push(")");
        }
        qb.push(" ORDER BY sent_at_ms, id LIMIT ")
            .push_bind(i64::from(f.limit))
            .push(")");
        let (text,): (String,) = qb
            .build_query_as()
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db("charges", "reading charges"))?;
        charges_from_json(&text)
    }

    async fn new_key(&self, key: &NewApiKey) -> Result<ApiKeyRow, StoreError> {
        check_key(key)?;
        let doing = format!("creating key '{}'", key.name);
        let mut tx = self.begin_write("api_keys").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (name, role, key_hash, created_at_ms) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(key.name.as_str())
        .bind(key.role.as_str())
        .bind(&key.key_hash[..])
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("api_keys", doing.clone()))?;
        for w in &key.tenant_wabas {
            sqlx::query("INSERT OR IGNORE INTO api_key_wabas (key_id, waba) VALUES (?, ?)")
                .bind(id)
                .bind(w.as_str())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("api_key_wabas", doing.clone()))?;
        }
        let found = keys_where(&mut tx, KeyWhere::Id(id)).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("api_keys", doing))?;
        found.into_iter().next().ok_or_else(|| StoreError::Corrupt {
            table: "api_keys",
            key: id.to_string(),
            why: "not found right after it was created".into(),
        })
    }

    async fn find_key(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKeyRow>, StoreError> {
        let mut conn = self
            .read
            .acquire()
            .await
            .map_err(StoreError::db("api_keys", "looking a key up"))?;
        let found = keys_where(&mut conn, KeyWhere::ActiveHash(key_hash)).await?;
        Ok(found.into_iter().next())
    }

    async fn all_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let mut conn = self
            .read
            .acquire()
            .await
            .map_err(StoreError::db("api_keys", "listing keys"))?;
        keys_where(&mut conn, KeyWhere::All).await
    }

    async fn revoke(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(StoreError::db("api_keys", format!("revoking key {id}")))?;
        Ok(done.rows_affected() == 1)
    }
}

/// Gives the events stored before schema v6 their `id_hash` (a no-op on a database created
/// since). Runs at open, before anything reads or writes events.
async fn backfill_id_hashes(write: &SqlitePool) -> Result<(), StoreError> {
    const PAGE: i64 = 10_000;
    loop {
        let mut tx = WriteTx::begin(write, &Arc::default())
            .await
            .map_err(StoreError::db(
                "events",
                "starting to hash the ids of stored events",
            ))?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, id FROM events WHERE id_hash IS NULL AND kind <> 'account' \
             ORDER BY seq LIMIT ?",
        )
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(
            "events",
            "reading stored events without an id hash",
        ))?;
        for (seq, id) in &rows {
            sqlx::query("UPDATE events SET id_hash = ? WHERE seq = ?")
                .bind(id_hash(id))
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(
                    "events",
                    format!("hashing the id of event {seq}"),
                ))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("events", "committing id hashes"))?;
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

fn in_memory(url: &str) -> StoreError {
    StoreError::Url {
        url: url.to_string(),
        why: "an in-memory SQLite database would lose every event on exit; give a file",
    }
}

async fn max_seq(tx: &mut WriteTx) -> Result<u64, StoreError> {
    let v: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("events", "reading the last seq"))?;
    Ok(seq_from_db(v))
}

/// The outbound messages among some ids, given as `[id, hash]` pairs (`json_hashed`).
const OUTBOUND_REFS_SQL: &str =
    "WITH m(id, h) AS (SELECT value ->> 0, value ->> 1 FROM json_each(?1)) \
     SELECT e.id, e.waba, e.at_ms FROM m CROSS JOIN events e \
       ON e.id_hash = m.h AND e.id = m.id AND e.kind = 'outbound' \
     ORDER BY e.id";

/// The statuses of messages stored before them, for `[id, seq, hash]` triples as JSON. The
/// seq test reads the rowid from `events_id` itself: only the rows that qualify are fetched.
fn statuses_before_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH m(id, seq, h) AS (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1)) \
             SELECT {EVENT_COLUMNS} FROM m CROSS JOIN events e \
               ON e.id_hash = m.h AND e.seq < m.seq AND e.id = m.id AND e.kind = 'status' \
             ORDER BY e.seq"
        )
    })
}

/// `INSERT ... VALUES (...), ...` for `rows` events. The text for a full chunk is built once;
/// sqlx caches the prepared statement per text.
fn insert_events_sql(rows: usize) -> std::borrow::Cow<'static, str> {
    fn build(rows: usize) -> String {
        let mut s = String::with_capacity(160 + rows * 24);
        // `OR FAIL` keeps SQLite from journalling every page the statement touches (see
        // `replace`); a violation still fails the batch, which is rolled back whole.
        s.push_str(
            "INSERT OR FAIL INTO events (kind, id, id_hash, status, at_ms, waba, phone, user_phone, raw, received_at_ms) VALUES ",
        );
        for i in 0..rows {
            if i > 0 {
                s.push(',');
            }
            s.push_str("(?,?,?,?,?,?,?,?,?,?)");
        }
        s
    }
    static FULL: OnceLock<String> = OnceLock::new();
    if rows == EVENT_ROWS_PER_INSERT {
        FULL.get_or_init(|| build(rows)).as_str().into()
    } else {
        build(rows).into()
    }
}

/// The hash by which events are found (schema v6): FNV-1a, 64 bits, of the id's UTF-8 bytes,
/// as the signed integer SQLite stores. Stored in every database: it must never change.
pub(crate) fn id_hash(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// A query of [`EVENT_COLUMNS`] as one row of one JSON array of the rows (put in seq order by
/// [`events_from_json`]: an `ORDER BY` in the aggregate would sort them again in a temporary
/// B-tree).
/// sqlx hands each row of a result from its SQLite thread to the caller on its own, with a
/// wake-up and a copy of every value: about 7 µs a row, most of the cost of reading a month or
/// the table's tail. One row costs that once.
fn as_one_row(query: &str) -> String {
    format!(
        "SELECT json_group_array(json_array(seq, kind, id, status, at_ms, waba, phone, \
         user_phone, raw, received_at_ms)) FROM ({query})"
    )
}

/// The rows of a query read as one JSON array of arrays (each a row's values, in order).
fn json_rows<T: serde::de::DeserializeOwned>(
    text: &str,
    table: &'static str,
) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        key: String::new(),
        why: format!("rows read as JSON do not decode: {e}"),
    })
}

/// The rows of an [`as_one_row`] query.
fn events_from_json(text: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let mut rows: Vec<decode::EventColumns> = json_rows(text, "events")?;
    rows.sort_unstable_by_key(|r| r.0);
    rows.into_iter().map(decode::event_from_columns).collect()
}

/// Ids with their hashes, as a JSON array of `[id, hash]` for `json_each(?)`.
fn json_hashed(ids: &[String]) -> String {
    let list: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), id_hash(id))).collect();
    serde_json::to_string(&list).expect("ids and numbers serialise")
}

/// What follows the candidates' `VALUES` in [`find_existing`].
const EXISTING_JOIN: &str = ") SELECT v.pos, e.raw FROM v JOIN events e \
     ON e.id_hash = v.h AND e.id = v.id AND e.kind = v.kind AND e.status = v.status";

/// Which planned candidates the database already holds, and whether their bytes match.
async fn find_existing(
    tx: &mut WriteTx,
    events: &[NewEvent],
    candidates: &[usize],
) -> Result<Vec<Existing>, StoreError> {
    let mut found = Vec::new();
    for (k, chunk) in candidates.chunks(LOOKUP_ROWS).enumerate() {
        let offset = k * LOOKUP_ROWS;
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("WITH v(pos, h, kind, id, status) AS (");
        qb.push_values(chunk.iter().enumerate(), |mut b, (j, &i)| {
            let e = &events[i];
            b.push_bind((offset + j) as i64)
                .push_bind(id_hash(&e.id))
                .push_bind(e.kind.as_str())
                .push_bind(e.id.as_str())
                .push_bind(e.status_key());
        });
        qb.push(EXISTING_JOIN);
        let rows: Vec<(i64, String)> = qb
            .build_query_as()
            .persistent(chunk.len() == LOOKUP_ROWS)
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::db(
                "events",
                "looking up which of the batch's events are stored",
            ))?;
        found.extend(rows.into_iter().map(|(pos, raw)| Existing {
            candidate: pos as usize,
            same: raw == events[candidates[pos as usize]].raw,
        }));
    }
    Ok(found)
}

/// Keys (with their WABAs) matching a condition, by id.
async fn keys_where(
    conn: &mut sqlx::SqliteConnection,
    which: KeyWhere<'_>,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let sql = which.sql();
    let q = sqlx::query(&sql);
    let q = match which {
        KeyWhere::Id(id) => q.bind(id),
        KeyWhere::ActiveHash(h) => q.bind(&h[..]),
        KeyWhere::All => q,
    };
    let rows = q
        .fetch_all(conn)
        .await
        .map_err(StoreError::db("api_keys", which.doing()))?;
    decode::keys(&rows)
}

/// A list of strings as a JSON array, for `json_each(?)`: one parameter whatever the list's
/// length, so the statement text (and its cached plan) stays the same.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings always serialises")
}

/// The columns of [`ChargeRow`], in `decode::charge` order.
const CHARGE_SELECT: &str = "SELECT id, sent_at_ms, waba, phone, user_phone, country, market, \
     pricing_model, category, pricing_type, billable, tier, rate, amount, currency, billed_at_ms, \
     conversation_id, agent FROM charges";

/// The start of a query that reads the rows of a [`CHARGE_SELECT`] in parentheses after it as
/// one row of one JSON array (see [`as_one_row`]; [`charges_from_json`] puts them in order).
const CHARGES_AS_ONE_ROW: &str = "SELECT json_group_array(json_array(id, sent_at_ms, waba, \
     phone, user_phone, country, market, pricing_model, category, pricing_type, billable, tier, \
     rate, amount, currency, billed_at_ms, conversation_id, agent)) FROM";

/// The charges of a [`CHARGES_AS_ONE_ROW`] query, in (sent_at_ms, id) order: the order its
/// inner query selected them by (the aggregate keeps no order of its own). Rust compares
/// strings by their bytes, as SQLite's default collation does.
fn charges_from_json(text: &str) -> Result<Vec<ChargeRow>, StoreError> {
    let mut rows: Vec<decode::ChargeColumns> = json_rows(text, "charges")?;
    rows.sort_unstable_by(|a, b| (a.sent_at_ms, &a.id).cmp(&(b.sent_at_ms, &b.id)));
    rows.into_iter().map(decode::charge_from_columns).collect()
}

/// A read of [`META_PRICING_COLUMNS`] rows (`from_where`: the query after its column list) as
/// one row of one JSON array (see [`as_one_row`]; [`meta_from_json`] puts them in order).
fn meta_as_one_row(from_where: &str) -> String {
    format!("SELECT json_group_array(json_array({META_PRICING_COLUMNS})) {from_where}")
}

/// The rows of a [`meta_as_one_row`] query in (id, status) order, by bytes as SQLite's default
/// collation compares.
fn meta_from_json(text: &str) -> Result<Vec<MetaPricingRow>, StoreError> {
    let mut rows: Vec<decode::MetaPricingColumns> = json_rows(text, "meta_pricing")?;
    rows.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows.into_iter()
        .map(decode::meta_pricing_from_columns)
        .collect()
}

/// Message description rows per INSERT statement (9 parameters each).
const MESSAGE_ROWS_PER_INSERT: usize = 1000;

/// The columns of [`MetaMessageRow`], in [`message_row`] order.
const MESSAGE_COLUMNS: &str = "id, status, at_ms, waba, phone, user_phone, user_id, category";

type MessageColumns = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn message_row(
    (id, status, at_ms, waba, phone, user, user_id, category): MessageColumns,
) -> MetaMessageRow {
    MetaMessageRow {
        id,
        status,
        at_ms,
        waba,
        phone,
        user,
        user_id,
        category,
    }
}

/// Inserts descriptions of messages in a write transaction; a (message id, status) already
/// described keeps its first row. Returns how many were new.
async fn insert_messages(
    tx: &mut SqliteConnection,
    rows: &[&MetaMessageRow],
    received_at_ms: i64,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in rows.chunks(MESSAGE_ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "INSERT INTO meta_messages ({MESSAGE_COLUMNS}, received_at_ms) "
        ));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.id.as_str())
                .push_bind(r.status.as_str())
                .push_bind(r.at_ms)
                .push_bind(r.waba.as_str())
                .push_bind(r.phone.as_str())
                .push_bind(r.user.as_deref())
                .push_bind(r.user_id.as_deref())
                .push_bind(r.category.as_deref())
                .push_bind(received_at_ms);
        });
        qb.push(" ON CONFLICT (id, status) DO NOTHING");
        inserted += qb
            .build()
            .persistent(chunk.len() == MESSAGE_ROWS_PER_INSERT)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(
                "meta_messages",
                format!(
                    "storing the description of '{}'..'{}'",
                    chunk[0].id,
                    chunk[chunk.len() - 1].id
                ),
            ))?
            .rows_affected();
    }
    Ok(inserted)
}

/// Meta pricing rows per INSERT statement (11 parameters each).
const META_ROWS_PER_INSERT: usize = 1000;

impl SqliteStore {
    async fn load_pair(
        &self,
        phone: &str,
        user: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            // `phone IS NOT NULL` repeats the partial index's condition for the planner.
            as_one_row(&format!(
                "WITH msgs AS (SELECT * FROM events WHERE phone IS NOT NULL AND phone = ?1 \
                   AND user_phone = ?2 AND at_ms >= ?3 AND at_ms < ?4 \
                   AND kind IN ('inbound', 'outbound')) \
                 SELECT {EVENT_COLUMNS} FROM msgs e \
                 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM msgs o JOIN events e \
                   ON e.id_hash = o.id_hash AND e.id = o.id AND e.kind = 'status' WHERE o.kind = 'outbound' \
                 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq IN \
                   (SELECT max(seq) FROM accounts WHERE waba IN (SELECT waba FROM msgs) GROUP BY waba)"
            ))
        });
        let rows = sqlx::query_scalar::<_, String>(sql)
            .bind(phone)
            .bind(user)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                format!("loading the events of pair ({phone}, {user}) in [{from_ms}, {to_ms})"),
            ))?;
        events_from_json(&rows)
    }

    async fn count(&self, q: &ChargeCount) -> Result<u64, StoreError> {
        if q.ranges.is_empty() || q.categories.is_empty() || q.pricing_types.is_empty() {
            return Ok(0);
        }
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT count(*) FROM charges WHERE (");
        for (i, r) in q.ranges.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push("(waba = ")
                .push_bind(r.waba.as_str())
                .push(" AND sent_at_ms >= ")
                .push_bind(r.from_ms)
                .push(" AND sent_at_ms < ")
                .push_bind(r.to_ms)
                .push(")");
        }
        qb.push(") AND pricing_model = ")
            .push_bind(q.pricing_model.as_str())
            .push(" AND category IN (SELECT value FROM json_each(")
            .push_bind(json_list(&q.categories))
            .push(")) AND pricing_type IN (SELECT value FROM json_each(")
            .push_bind(json_list(&q.pricing_types))
            .push("))");
        if let Some(p) = &q.phone {
            qb.push(" AND phone = ").push_bind(p.as_str());
        }
        if let Some(m) = &q.market {
            qb.push(" AND market = ").push_bind(m.as_str());
        }
        if q.openers_only {
            qb.push(" AND conversation_id = id");
        }
        if !q.exclude_ids.is_empty() {
            qb.push(" AND id NOT IN (SELECT value FROM json_each(")
                .push_bind(json_list(&q.exclude_ids))
                .push("))");
        }
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db("charges", "counting charges"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn by_id(&self, ids: &[String]) -> Result<Vec<ChargeRow>, StoreError> {
        let sql = format!(
            "{CHARGES_AS_ONE_ROW} ({CHARGE_SELECT} WHERE id IN (SELECT value FROM json_each(?)))"
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(json_list(ids))
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "charges",
                format!("reading the charges of {} messages", ids.len()),
            ))?;
        charges_from_json(&text)
    }

    async fn read_usage(
        &self,
        waba: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        // One JSON row of the groups (see `as_one_row`), put in the order of their columns
        // below, as `ORDER BY 1, ..., 8` would (NULL tiers first, texts by their bytes).
        let (text,): (String,) = sqlx::query_as(
            "SELECT json_group_array(json_array(slot, phone, country, category, pricing_type, \
               tier, amount, currency, n)) FROM ( \
             SELECT billed_at_ms / ?4 AS slot, phone, country, category, pricing_type, tier, \
               amount, currency, count(*) AS n FROM charges \
             WHERE waba = ?1 AND billed_at_ms IS NOT NULL AND billed_at_ms >= ?2 AND billed_at_ms < ?3 \
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)",
        )
        .bind(waba)
        .bind(from_ms)
        .bind(to_ms)
        .bind(USAGE_SLOT_MS)
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::db(
            "charges",
            format!("summing the usage of '{waba}' in [{from_ms}, {to_ms})"),
        ))?;
        let mut rows: Vec<decode::UsageColumns> = json_rows(&text, "charges")?;
        rows.sort_unstable_by(|a, b| {
            (&a.0, &a.1, &a.2, &a.3, &a.4, &a.5, &a.6, &a.7)
                .cmp(&(&b.0, &b.1, &b.2, &b.3, &b.4, &b.5, &b.6, &b.7))
        });
        rows.into_iter().map(decode::usage_from_columns).collect()
    }

    async fn record_meta(&self, rows: &[MetaPricingRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let received_at_ms = now_ms();
        let mut tx = self.begin_write("meta_pricing").await?;
        let mut inserted = 0;
        for chunk in rows.chunks(META_ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO meta_pricing (id, status, at_ms, waba, billable, pricing_model, \
                 category, pricing_type, conversation_id, expires_at_ms, received_at_ms) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(r.at_ms)
                    .push_bind(r.waba.as_deref())
                    .push_bind(r.billable)
                    .push_bind(r.pricing_model.as_deref())
                    .push_bind(r.category.as_deref())
                    .push_bind(r.pricing_type.as_deref())
                    .push_bind(r.conversation_id.as_deref())
                    .push_bind(r.expires_at_ms)
                    .push_bind(received_at_ms);
            });
            // Only the key is absorbed: the first pricing of a (message, status) stays.
            qb.push(" ON CONFLICT (id, status) DO NOTHING");
            inserted += qb
                .build()
                .persistent(chunk.len() == META_ROWS_PER_INSERT)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(
                    "meta_pricing",
                    format!(
                        "storing the pricing of '{}'..'{}'",
                        chunk[0].id,
                        chunk[chunk.len() - 1].id
                    ),
                ))?
                .rows_affected();
        }
        tx.commit()
            .await
            .map_err(StoreError::db("meta_pricing", "committing Meta's pricing"))?;
        Ok(inserted)
    }

    async fn meta_by_id(&self, ids: &[String]) -> Result<Vec<MetaPricingRow>, StoreError> {
        let sql = meta_as_one_row("FROM meta_pricing WHERE id IN (SELECT value FROM json_each(?))");
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(json_list(ids))
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "meta_pricing",
                format!("reading Meta's pricing of {} messages", ids.len()),
            ))?;
        meta_from_json(&text)
    }

    async fn meta_in(
        &self,
        waba: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MetaPricingRow>, StoreError> {
        let sql = meta_as_one_row(
            "FROM meta_pricing WHERE waba IS NOT NULL AND waba = ? AND at_ms >= ? AND at_ms < ?",
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(waba)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "meta_pricing",
                format!("reading Meta's pricing of '{waba}' in [{from_ms}, {to_ms})"),
            ))?;
        meta_from_json(&text)
    }

    async fn record_messages(&self, rows: &[MetaMessageRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write("meta_messages").await?;
        let refs: Vec<&MetaMessageRow> = rows.iter().collect();
        let inserted = insert_messages(&mut tx, &refs, now_ms()).await?;
        tx.commit().await.map_err(StoreError::db(
            "meta_messages",
            "committing Meta's descriptions of messages",
        ))?;
        Ok(inserted)
    }

    async fn messages_by_id(&self, ids: &[String]) -> Result<Vec<MetaMessageRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM meta_messages \
             WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id, status"
        );
        let rows: Vec<MessageColumns> = sqlx::query_as(&sql)
            .bind(json_list(ids))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db(
                "meta_messages",
                format!("reading Meta's descriptions of {} messages", ids.len()),
            ))?;
        Ok(rows.into_iter().map(message_row).collect())
    }

    async fn messages_in(
        &self,
        wabas: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MetaMessageRow>, StoreError> {
        if wabas.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM meta_messages \
             WHERE waba IN (SELECT value FROM json_each(?)) AND at_ms >= ? AND at_ms < ? \
             ORDER BY id, status"
        );
        let rows: Vec<MessageColumns> = sqlx::query_as(&sql)
            .bind(json_list(wabas))
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db(
                "meta_messages",
                format!(
                    "reading Meta's descriptions of messages of {} WABAs in [{from_ms}, {to_ms})",
                    wabas.len()
                ),
            ))?;
        Ok(rows.into_iter().map(message_row).collect())
    }

    async fn get_rated_seq(&self) -> Result<u64, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT value FROM engine_state WHERE name = 'rated_seq'")
                .fetch_optional(&self.read)
                .await
                .map_err(StoreError::db("engine_state", "reading rated_seq"))?;
        Ok(v.map_or(0, seq_from_db))
    }

    async fn put_rated_seq(&self, seq: u64) -> Result<(), StoreError> {
        let mut tx = self.begin_write("engine_state").await?;
        sqlx::query(
            "INSERT INTO engine_state (name, value) VALUES ('rated_seq', ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value \
             WHERE engine_state.value < excluded.value",
        )
        .bind(seq_to_db(seq))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(
            "engine_state",
            format!("raising rated_seq to {seq}"),
        ))?;
        tx.commit()
            .await
            .map_err(StoreError::db("engine_state", "committing rated_seq"))?;
        Ok(())
    }
}

impl SqliteStore {
    async fn put_tenant_impl(&self, t: &NewTenant) -> Result<TenantOutcome, StoreError> {
        if t.tenant.is_empty() || t.wabas.iter().any(|w| w.is_empty()) {
            return Err(StoreError::Invalid {
                table: "tenant_setups",
                why: format!("tenant '{}': empty tenant id or WABA", t.tenant),
            });
        }
        let doing = format!("recording tenant '{}'", t.tenant);
        let mut tx = self.begin_write("tenant_setups").await?;
        let newest: Option<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
             WHERE tenant = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(t.tenant.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("tenant_setups", doing.clone()))?;
        let newest = newest.map(tenant_row);
        let newest_version = newest.as_ref().map_or(0, |r| r.version);
        if t.expected_version.is_some_and(|v| v != newest_version) {
            return Ok(TenantOutcome::Stale {
                newest: newest_version,
            });
        }
        if let Some(row) = newest.filter(|r| r.setup == t.setup) {
            return Ok(TenantOutcome::Unchanged(row));
        }
        for w in &t.wabas {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT tenant FROM tenant_wabas WHERE waba = ? AND tenant <> ?",
            )
            .bind(w.as_str())
            .bind(t.tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("tenant_wabas", doing.clone()))?;
            if let Some(tenant) = owner {
                return Ok(TenantOutcome::WabaTaken {
                    waba: w.clone(),
                    tenant,
                });
            }
        }
        let now = now_ms();
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_setups (tenant, setup, recorded_at_ms) VALUES (?, ?, ?) \
             RETURNING version",
        )
        .bind(t.tenant.as_str())
        .bind(t.setup.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("tenant_setups", doing.clone()))?;
        sqlx::query("DELETE FROM tenant_wabas WHERE tenant = ?")
            .bind(t.tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("tenant_wabas", doing.clone()))?;
        for w in &t.wabas {
            sqlx::query(
                "INSERT INTO tenant_wabas (waba, tenant) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(w.as_str())
            .bind(t.tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("tenant_wabas", doing.clone()))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("tenant_setups", doing))?;
        Ok(TenantOutcome::Recorded(TenantRow {
            version,
            tenant: t.tenant.clone(),
            setup: t.setup.clone(),
            recorded_at_ms: now,
        }))
    }

    async fn tenant_versions(
        &self,
        tenant: Option<&str>,
        newest_only: bool,
    ) -> Result<Vec<TenantRow>, StoreError> {
        let sql = match (tenant.is_some(), newest_only) {
            (true, true) => {
                "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
                 WHERE tenant = ? ORDER BY version DESC LIMIT 1"
            }
            (true, false) => {
                "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
                 WHERE tenant = ? ORDER BY version"
            }
            (false, _) => {
                "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
                 WHERE version IN (SELECT max(version) FROM tenant_setups GROUP BY tenant) \
                 ORDER BY tenant"
            }
        };
        let mut q = sqlx::query_as::<_, (i64, String, String, i64)>(sql);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db("tenant_setups", "reading tenant set-ups"))?;
        Ok(rows.into_iter().map(tenant_row).collect())
    }

    async fn owner_of(&self, waba: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT tenant FROM tenant_wabas WHERE waba = ?")
            .bind(waba)
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db(
                "tenant_wabas",
                format!("finding the tenant of '{waba}'"),
            ))
    }

    async fn store_invoice(&self, inv: &InvoiceRow) -> Result<bool, StoreError> {
        let doing = format!("finalizing {} {}", inv.tenant, inv.month);
        let mut tx = self.begin_write("tenant_invoices").await?;
        let done = sqlx::query(
            "INSERT INTO tenant_invoices (tenant, month, invoice, finalized_at_ms) \
             VALUES (?, ?, ?, ?) ON CONFLICT (tenant, month) DO NOTHING",
        )
        .bind(inv.tenant.as_str())
        .bind(inv.month.as_str())
        .bind(inv.invoice.as_str())
        .bind(inv.finalized_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("tenant_invoices", doing.clone()))?;
        tx.commit()
            .await
            .map_err(StoreError::db("tenant_invoices", doing))?;
        Ok(done.rows_affected() == 1)
    }

    async fn read_invoices(&self, tenant: &str) -> Result<Vec<InvoiceRow>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT tenant, month, invoice, finalized_at_ms FROM tenant_invoices \
             WHERE tenant = ? ORDER BY month",
        )
        .bind(tenant)
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db(
            "tenant_invoices",
            format!("reading the invoices of '{tenant}'"),
        ))?;
        Ok(rows
            .into_iter()
            .map(|(tenant, month, invoice, finalized_at_ms)| InvoiceRow {
                tenant,
                month,
                invoice,
                finalized_at_ms,
            })
            .collect())
    }
}

fn tenant_row((version, tenant, setup, recorded_at_ms): (i64, String, String, i64)) -> TenantRow {
    TenantRow {
        version,
        tenant,
        setup,
        recorded_at_ms,
    }
}

impl SqliteStore {
    async fn span(&self, wabas: &[String]) -> Result<Option<(i64, i64)>, StoreError> {
        let mut span: Option<(i64, i64)> = None;
        for waba in wabas {
            // Two single-aggregate subqueries, each walking the (waba, at_ms) index from one end.
            // Calls count too (their own table, its (waba, start_ms) index).
            let (first, last, call_first, call_last): (
                Option<i64>,
                Option<i64>,
                Option<i64>,
                Option<i64>,
            ) = sqlx::query_as(
                "SELECT (SELECT min(at_ms) FROM events WHERE waba IS NOT NULL AND waba = ?1 \
                         AND kind IN ('inbound', 'outbound')), \
                        (SELECT max(at_ms) FROM events WHERE waba IS NOT NULL AND waba = ?1 \
                         AND kind IN ('inbound', 'outbound')), \
                        (SELECT min(start_ms) FROM call_events WHERE waba = ?1), \
                        (SELECT max(start_ms) FROM call_events WHERE waba = ?1)",
            )
            .bind(waba)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db(
                "events",
                "reading the span of a WABA's events",
            ))?;
            let first = first.into_iter().chain(call_first).min();
            let last = last.into_iter().chain(call_last).max();
            if let (Some(f), Some(l)) = (first, last) {
                span = Some(span.map_or((f, l), |(a, b)| (a.min(f), b.max(l))));
            }
        }
        Ok(span)
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        let v: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db("events", "reading the last seq"))?;
        Ok(seq_from_db(v))
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let faulted = self.write_fault.lock().expect("not poisoned").is_some();
        let r = self.probe_write(faulted).await;
        if faulted || r.is_err() {
            self.note_write(r.as_ref().err());
        }
        r
    }

    /// Commits a row larger than a page and deletes it in the same transaction: its pages
    /// are allocated (from the free list, else by growing the file) and the commit writes WAL
    /// frames. After a failed append (`grow`), the row is larger than the free list (up to
    /// 64 pages, 1 MiB), so that it succeeds only once the file can grow again.
    async fn probe_write(&self, grow: bool) -> Result<(), StoreError> {
        const MAX_PROBE_PAGES: i64 = 64;
        let doing = "writing the health probe";
        let mut tx = self.begin_write("engine_state").await?;
        let pages = if grow {
            let (free,): (i64,) = sqlx::query_as("PRAGMA freelist_count")
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db("engine_state", doing))?;
            (free + 1).min(MAX_PROBE_PAGES)
        } else {
            1
        };
        let name = format!(
            "health-probe:{}",
            "-".repeat(pages as usize * PAGE_SIZE as usize + 1024)
        );
        sqlx::query("INSERT OR REPLACE INTO engine_state (name, value) VALUES (?, 0)")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("engine_state", doing))?;
        sqlx::query("DELETE FROM engine_state WHERE name = ?")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("engine_state", doing))?;
        tx.commit().await.map_err(StoreError::db(
            "engine_state",
            "committing the health probe",
        ))
    }

    async fn shut(&self) -> Result<(), StoreError> {
        self.read.close().await;
        self.write.close().await;
        Ok(())
    }
}

crate::store::forward_store!(SqliteStore, Backend::Sqlite);

// ---------------------------------------------------------------------------------------------
// Budget alerts

type AlertTuple = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

const ALERT_COLUMNS: &str = "tenant, month, threshold, payload, created_at_ms, attempts, \
                             next_attempt_at_ms, delivered_at_ms, last_error";

fn alert_row(t: AlertTuple) -> AlertRow {
    AlertRow {
        tenant: t.0,
        month: t.1,
        threshold: t.2,
        payload: t.3,
        created_at_ms: t.4,
        attempts: u32::try_from(t.5).unwrap_or(u32::MAX),
        next_attempt_at_ms: t.6,
        delivered_at_ms: t.7,
        last_error: t.8,
    }
}

fn audit_row((id, at_ms, actor, action, target): (i64, i64, String, String, String)) -> AuditRow {
    AuditRow {
        id,
        entry: AuditEntry {
            at_ms,
            actor,
            action,
            target,
        },
    }
}

fn settings_row(
    (tenant, thresholds, url, secret, updated_at_ms): (String, String, String, String, i64),
) -> AlertSettingsRow {
    AlertSettingsRow {
        tenant,
        thresholds,
        url,
        secret,
        updated_at_ms,
    }
}

impl SqliteStore {
    async fn record_audit_impl(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let doing = format!("recording the admin action {} on '{}'", e.action, e.target);
        let mut tx = self.begin_write("audit_log").await?;
        sqlx::query("INSERT INTO audit_log (at_ms, actor, action, target) VALUES (?, ?, ?, ?)")
            .bind(e.at_ms)
            .bind(e.actor.as_str())
            .bind(e.action.as_str())
            .bind(e.target.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("audit_log", doing.clone()))?;
        tx.commit()
            .await
            .map_err(StoreError::db("audit_log", doing))?;
        Ok(())
    }

    async fn audit_log_impl(&self, after_id: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, String, String, String)>(
            "SELECT id, at_ms, actor, action, target FROM audit_log WHERE id > ? \
             ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db("audit_log", "reading the audit log"))?;
        Ok(rows.into_iter().map(audit_row).collect())
    }

    async fn put_settings_impl(&self, s: &AlertSettingsRow) -> Result<(), StoreError> {
        let doing = format!("recording the alert settings of '{}'", s.tenant);
        let mut tx = self.begin_write("alert_settings").await?;
        sqlx::query(
            "INSERT INTO alert_settings (tenant, thresholds, url, secret, updated_at_ms) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET \
             thresholds = excluded.thresholds, url = excluded.url, secret = excluded.secret, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(s.tenant.as_str())
        .bind(s.thresholds.as_str())
        .bind(s.url.as_str())
        .bind(s.secret.as_str())
        .bind(s.updated_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("alert_settings", doing.clone()))?;
        tx.commit()
            .await
            .map_err(StoreError::db("alert_settings", doing))?;
        Ok(())
    }

    async fn settings_impl(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<AlertSettingsRow>, StoreError> {
        let sql = if tenant.is_some() {
            "SELECT tenant, thresholds, url, secret, updated_at_ms FROM alert_settings \
             WHERE tenant = ?"
        } else {
            "SELECT tenant, thresholds, url, secret, updated_at_ms FROM alert_settings \
             ORDER BY tenant"
        };
        let mut q = sqlx::query_as::<_, (String, String, String, String, i64)>(sql);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db("alert_settings", "reading alert settings"))?;
        Ok(rows.into_iter().map(settings_row).collect())
    }

    async fn record_alerts_impl(&self, alerts: &[NewAlert]) -> Result<u64, StoreError> {
        let mut tx = self.begin_write("alerts").await?;
        let mut new = 0;
        for a in alerts {
            let done = sqlx::query(
                "INSERT INTO alerts (tenant, month, threshold, payload, created_at_ms, \
                 next_attempt_at_ms) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant, month, threshold) DO NOTHING",
            )
            .bind(a.tenant.as_str())
            .bind(a.month.as_str())
            .bind(a.threshold.as_str())
            .bind(a.payload.as_str())
            .bind(a.created_at_ms)
            .bind(a.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(
                "alerts",
                format!("recording alert {} {} {}", a.tenant, a.month, a.threshold),
            ))?;
            new += done.rows_affected();
        }
        tx.commit()
            .await
            .map_err(StoreError::db("alerts", "committing alerts"))?;
        Ok(new)
    }

    async fn alerts_impl(&self, tenant: &str) -> Result<Vec<AlertRow>, StoreError> {
        let rows: Vec<AlertTuple> = sqlx::query_as(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant = ? ORDER BY month, threshold"
        ))
        .bind(tenant)
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db(
            "alerts",
            format!("reading the alerts of '{tenant}'"),
        ))?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    async fn alerts_due_impl(&self, now_ms: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let rows: Vec<AlertTuple> = sqlx::query_as(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE next_attempt_at_ms IS NOT NULL \
             AND next_attempt_at_ms <= ? AND delivered_at_ms IS NULL \
             ORDER BY next_attempt_at_ms, tenant, month, threshold LIMIT ?"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db("alerts", "reading the alerts due"))?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    async fn attempt_impl(&self, a: &AlertAttempt) -> Result<bool, StoreError> {
        let doing = format!(
            "recording an attempt of {} {} {}",
            a.tenant, a.month, a.threshold
        );
        let mut tx = self.begin_write("alerts").await?;
        let next = if a.delivered {
            None
        } else {
            a.next_attempt_at_ms
        };
        let delivered = a.delivered.then_some(a.at_ms);
        let done = sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, next_attempt_at_ms = ?, \
             delivered_at_ms = ?, last_error = ? \
             WHERE tenant = ? AND month = ? AND threshold = ? AND delivered_at_ms IS NULL",
        )
        .bind(next)
        .bind(delivered)
        .bind(a.error.as_deref())
        .bind(a.tenant.as_str())
        .bind(a.month.as_str())
        .bind(a.threshold.as_str())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("alerts", doing.clone()))?;
        tx.commit().await.map_err(StoreError::db("alerts", doing))?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan_of(store: &SqliteStore, sql: &str) -> Vec<String> {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind("[]")
                .fetch_all(&store.read)
                .await
                .unwrap();
        plan.into_iter().map(|p| p.3).collect()
    }

    /// Lookups made at every ingest go through the id index, never a scan of the events.
    #[tokio::test]
    async fn ingest_lookups_use_the_id_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("plan.sqlite"))
            .await
            .unwrap();
        let existing = format!(
            "WITH v(pos, h, kind, id, status) AS (VALUES (0, 1, 'status', 'x', 'read'){EXISTING_JOIN}"
        );
        for sql in [OUTBOUND_REFS_SQL, statuses_before_sql(), &existing] {
            let steps = plan_of(&store, sql).await;
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with("SEARCH e USING INDEX events_id (id_hash=?")),
                "{sql}: {steps:?}"
            );
            assert!(!steps.iter().any(|s| s.starts_with("SCAN e")), "{steps:?}");
        }
    }

    /// Two ids with one hash stay two events, each found by its own id.
    #[tokio::test]
    async fn ids_that_share_a_hash_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("c.sqlite"))
            .await
            .unwrap();
        let a = NewEvent::outbound("wamid.A", 1, "W1", "1", "2", "a");
        let a_read = NewEvent::status("wamid.A", "read", 2, "ar");
        store
            .append(&[a.clone(), a_read.clone()], &[])
            .await
            .unwrap();
        // As if "wamid.B" hashed the same as "wamid.A".
        sqlx::query("UPDATE events SET id_hash = ?")
            .bind(id_hash("wamid.B"))
            .execute(&store.write)
            .await
            .unwrap();
        let b = NewEvent::outbound("wamid.B", 3, "W2", "1", "3", "b");
        let b_read = NewEvent::status("wamid.B", "read", 4, "br");
        let r = store.append(&[b, b_read], &[]).await.unwrap();
        assert_eq!(
            (r.inserted.len(), r.duplicates, r.conflicts.len()),
            (2, 0, 0)
        );
        let refs = store.refs(&["wamid.B".to_string()]).await.unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].waba, "W2");
        let statuses = store
            .statuses(&[("wamid.B".to_string(), 99)])
            .await
            .unwrap();
        assert_eq!(
            statuses.iter().map(|e| e.raw.as_str()).collect::<Vec<_>>(),
            ["br"]
        );
        // The stored B is a duplicate of itself, not of A.
        let b = NewEvent::outbound("wamid.B", 3, "W2", "1", "3", "b");
        assert_eq!(store.append(&[b], &[]).await.unwrap().duplicates, 1);
    }

    /// Events read back as one JSON row are exactly what was stored, whatever their text holds.
    #[tokio::test]
    async fn events_read_as_json_come_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.sqlite"))
            .await
            .unwrap();
        let odd = "wamid.\"q\"\\ \t\n é 🙂 \u{7f}";
        let events = vec![
            NewEvent::outbound(odd, -5, "W\"1", "1", "2é", format!("{{\"id\":{odd:?}}}")),
            NewEvent::status(odd, "read", i64::MAX / 2, "\\u0000 \u{1}".to_string()),
        ];
        store.append(&events, &[]).await.unwrap();
        let got = store.since(0, 10).await.unwrap();
        assert_eq!(got.len(), 2);
        for (g, e) in got.iter().zip(&events) {
            assert_eq!(
                (&g.id, g.kind, &g.status, g.at_ms, &g.waba, &g.phone, &g.user, &g.raw),
                (&e.id, e.kind, &e.status, e.at_ms, &e.waba, &e.phone, &e.user, &e.raw)
            );
        }
        assert_eq!((got[0].seq, got[1].seq), (1, 2));
        let month = store.load_for(&["W\"1".to_string()], -10, 0).await.unwrap();
        assert_eq!(month.len(), 2, "the message and its status");
        assert!(store.since(2, 10).await.unwrap().is_empty());
    }

    /// The hash is part of the file format: it must not change.
    #[tokio::test]
    async fn charges_read_as_json_come_back_exactly_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("c.sqlite"))
            .await
            .unwrap();
        let charge = |id: &str, sent_at_ms: i64, amount: &str| {
            let amount: wabill_rating::Decimal = amount.parse().unwrap();
            let paid = amount.is_positive();
            ChargeRow {
                id: id.into(),
                sent_at_ms,
                waba: "W\"1".into(),
                phone: "15550001111".into(),
                user: "5511988887777".into(),
                country: "BR".into(),
                market: "Brazil".into(),
                pricing_model: "PMP".into(),
                category: "utility".into(),
                pricing_type: if paid {
                    "regular"
                } else {
                    "free_customer_service"
                }
                .into(),
                billable: paid,
                tier: paid.then(|| "0:250000".to_string()),
                rate: paid.then_some(amount),
                amount,
                currency: "USD".into(),
                billed_at_ms: paid.then_some(sent_at_ms + 1),
                conversation_id: (!paid).then(|| "c\t\"é\"".to_string()),
                agent: paid.then(|| "agent \\ 🙂 \n \u{1}".to_string()),
            }
        };
        // Four charges sent at one instant, their ids in an order where bytes and letters
        // disagree, and one earlier: the order is (sent_at_ms, id bytes), as SQLite's.
        let rows = vec![
            charge("wamid.é", 1_000, "0.0625"),
            charge("wamid.Z", 1_000, "0"),
            charge("wamid.\"q\"\\", 1_000, "0.01"),
            charge("wamid.a", 1_000, "1.000000001"),
            charge("wamid.later?", 999, "0.5"),
        ];
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        store.replace(&ids, &rows).await.unwrap();
        let mut expected = rows.clone();
        expected
            .sort_by(|a, b| (a.sent_at_ms, a.id.as_bytes()).cmp(&(b.sent_at_ms, b.id.as_bytes())));
        let all = store
            .read_charges(&ChargeFilter {
                limit: 10,
                ..ChargeFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all, expected);
        // A page takes the first rows in SQLite's own order.
        let page = store
            .read_charges(&ChargeFilter {
                limit: 3,
                ..ChargeFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(page, expected[..3]);
        let some = store
            .by_id(&[ids[3].clone(), ids[0].clone(), "none".to_string()])
            .await
            .unwrap();
        assert_eq!(some, vec![expected[3].clone(), expected[4].clone()]);
        // Usage groups come back in the order of their columns, amounts by their text.
        let usage = store.read_usage("W\"1", 0, 10_000).await.unwrap();
        let amounts: Vec<(String, u64)> = usage
            .iter()
            .map(|u| (u.amount.to_string(), u.messages))
            .collect();
        assert_eq!(
            amounts,
            [("0.01", 1), ("0.0625", 1), ("0.5", 1), ("1.000000001", 1)]
                .map(|(a, n)| (a.to_string(), n))
        );
    }

    #[tokio::test]
    async fn meta_pricing_read_as_json_comes_back_exactly_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.sqlite"))
            .await
            .unwrap();
        let row = |id: &str, status: &str, billable: Option<bool>| MetaPricingRow {
            id: id.into(),
            status: status.into(),
            at_ms: 5_000,
            waba: Some("W\"1".into()),
            billable,
            pricing_model: billable.map(|_| "PMP".to_string()),
            category: Some("authentication-international \\ é".into()),
            pricing_type: billable.map(|_| "regular".to_string()),
            conversation_id: billable.is_none().then(|| "c\n🙂\u{1}".to_string()),
            expires_at_ms: billable.map(|b| i64::from(b) * 86_400_000),
        };
        let rows = vec![
            row("wamid.é", "sent", Some(true)),
            row("wamid.Z", "read", None),
            row("wamid.Z", "delivered", Some(false)),
            row("wamid.a", "sent", Some(true)),
        ];
        assert_eq!(store.record_meta(&rows).await.unwrap(), 4);
        let mut expected = rows.clone();
        expected.sort_by(|a, b| {
            (a.id.as_bytes(), a.status.as_bytes()).cmp(&(b.id.as_bytes(), b.status.as_bytes()))
        });
        assert_eq!(store.meta_in("W\"1", 0, 10_000).await.unwrap(), expected);
        assert!(store.meta_in("W\"1", 0, 5_000).await.unwrap().is_empty());
        let some = store
            .meta_by_id(&["wamid.Z".to_string(), "none".to_string()])
            .await
            .unwrap();
        assert_eq!(some, expected[..2]);
    }

    #[test]
    fn id_hash_is_fnv1a_64() {
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(id_hash("foobar"), 0x8594_4171_f739_67e8_u64 as i64);
    }

    /// A database of schema v5 gets its events' id hashes on open, and its events are then
    /// found as duplicates.
    #[tokio::test]
    async fn events_stored_before_the_id_hash_get_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let store = SqliteStore::open(&path).await.unwrap();
        let events: Vec<NewEvent> = (0..25_000)
            .map(|i| {
                let id = format!("wamid.{i}");
                NewEvent::status(&id, "delivered", i, format!("{{\"id\":\"{id}\"}}"))
            })
            .collect();
        assert_eq!(
            store.append(&events, &[]).await.unwrap().inserted.len(),
            25_000
        );
        // As a database of schema v5 holds them.
        sqlx::query("UPDATE events SET id_hash = NULL")
            .execute(&store.write)
            .await
            .unwrap();
        store.write.close().await;
        store.read.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let (unhashed,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM events WHERE id_hash IS NULL")
                .fetch_one(&store.read)
                .await
                .unwrap();
        assert_eq!(unhashed, 0);
        let again = store.append(&events, &[]).await.unwrap();
        assert_eq!(again.duplicates, 25_000);
        assert!(again.inserted.is_empty());
    }
}
