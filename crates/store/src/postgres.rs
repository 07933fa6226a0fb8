//! The PostgreSQL store, chosen with a `postgres://` URL: the same tables and behaviour as the
//! SQLite store, for deployments that want a database server.
//!
//! Durability comes from PostgreSQL's own commit (`synchronous_commit = on`, its default: a
//! commit returns after the WAL is flushed); the store never turns it off.
//!
//! Ordering: writes that assign sequence numbers (events, account versions) take an EXCLUSIVE
//! lock on `events` first. Writers then commit one after another, so `seq = max + 1` is
//! gap-free and follows commit order, and a worker reading `seq > cursor` never skips a row
//! committed late under a smaller number (as it could with a SEQUENCE). Readers are not
//! blocked (EXCLUSIVE still allows SELECT). Batches are sent as arrays and unnested on the
//! server, one statement per batch whatever its size.

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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The lock that orders sequence numbers (see the module comment).
const LOCK_EVENTS: &str = "LOCK TABLE events IN EXCLUSIVE MODE";

/// Charge columns, NUMERIC read as text so that both backends hand decimals over alike.
const CHARGE_SELECT: &str = "SELECT id, sent_at_ms, waba, phone, user_phone, country, market, \
     pricing_model, category, pricing_type, billable, tier, rate::text, amount::text, currency, \
     billed_at_ms, conversation_id, agent FROM charges WHERE true";

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:5432/db`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        Self::open_with(url, None).await
    }

    /// Like [`PgStore::open`], with every table in `schema` (created if missing): one
    /// database can then hold several independent stores, which is how the conformance tests
    /// run in parallel. The name must be lowercase ASCII letters, digits and `_`.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        let plain = !schema.is_empty()
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(StoreError::Url {
                url: format!("{} (schema '{schema}')", redact(url)),
                why: "a schema name must be lowercase ASCII letters, digits and '_'",
            });
        }
        Self::open_with(url, Some(schema)).await
    }

    async fn open_with(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let fail = |source| StoreError::Open {
            backend: Backend::Postgres,
            url: redact(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(fail)?;
        if let Some(s) = schema {
            options = options.options([("search_path", s)]);
        }
        // One plain connection first: it fails at once with the real reason (refused, unknown
        // host, authentication), where the pool would retry until its timeout and then report
        // only that it timed out.
        PgConnection::connect_with(&options)
            .await
            .map_err(fail)?
            .close()
            .await
            .map_err(fail)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(fail)?;
        if let Some(s) = schema {
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
                .execute(&pool)
                .await
                .map_err(fail)?;
        }
        migrations::migrator(migrations::POSTGRES)
            .await
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: Backend::Postgres,
                source,
            })?;
        Ok(PgStore { pool })
    }

    /// A transaction holding the seq lock, and the highest seq under it.
    async fn begin_sequenced(
        &self,
        table: &'static str,
    ) -> Result<(Transaction<'static, Postgres>, u64), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db(table, "starting a write transaction"))?;
        sqlx::query(LOCK_EVENTS)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("events", "locking for new sequence numbers"))?;
        let base: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("events", "reading the last seq"))?;
        Ok((tx, seq_from_db(base)))
    }

    async fn append(
        &self,
        events: &[NewEvent],
        described: &[(usize, MetaMessageRow)],
    ) -> Result<AppendResult, StoreError> {
        let plan = append::plan(events)?;
        if plan.candidates.is_empty() {
            return Ok(append::finish(events, plan, Vec::new(), 0));
        }
        let n = plan.candidates.len();
        let mut ord = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut id = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut at_ms = Vec::with_capacity(n);
        let mut waba = Vec::with_capacity(n);
        let mut phone = Vec::with_capacity(n);
        let mut user = Vec::with_capacity(n);
        let mut raw = Vec::with_capacity(n);
        for (c, &i) in plan.candidates.iter().enumerate() {
            let e = &events[i];
            ord.push(c as i32);
            kind.push(e.kind.as_str());
            id.push(e.id.as_str());
            status.push(e.status_key());
            at_ms.push(e.at_ms);
            waba.push(e.waba.as_deref());
            phone.push(e.phone.as_deref());
            user.push(e.user.as_deref());
            raw.push(e.raw.as_str());
        }
        let received_at_ms = now_ms();
        let (mut tx, base) = self.begin_sequenced("events").await?;
        // One statement: find the candidates already stored (all sub-statements of a WITH see
        // the same snapshot, so `existing` is what was there before), insert the others
        // numbered base + 1, base + 2, ... in batch order, and return the found ones.
        let found: Vec<(i32, bool)> = sqlx::query_as(
            "WITH input AS ( \
               SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::text[], $5::int8[], \
                                    $6::text[], $7::text[], $8::text[], $9::text[]) \
                 AS u(ord, kind, id, status, at_ms, waba, phone, user_phone, raw)), \
             existing AS ( \
               SELECT i.ord, e.raw = i.raw AS same FROM input i JOIN events e \
                 ON e.id = i.id AND e.kind = i.kind AND e.status = i.status \
               WHERE e.kind <> 'account'), \
             inserted AS ( \
               INSERT INTO events (seq, kind, id, status, at_ms, waba, phone, user_phone, raw, received_at_ms) \
               SELECT $10 + row_number() OVER (ORDER BY i.ord), i.kind, i.id, i.status, i.at_ms, \
                      i.waba, i.phone, i.user_phone, i.raw, $11 \
               FROM input i WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.ord = i.ord) \
               RETURNING 1) \
             SELECT ord, same FROM existing",
        )
        .bind(&ord)
        .bind(&kind)
        .bind(&id)
        .bind(&status)
        .bind(&at_ms)
        .bind(&waba)
        .bind(&phone)
        .bind(&user)
        .bind(&raw)
        .bind(seq_to_db(base))
        .bind(received_at_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(
            "events",
            format!("inserting a batch of {} events (the whole batch is rolled back)", events.len()),
        ))?;
        let existing: Vec<Existing> = found
            .into_iter()
            .map(|(ord, same)| Existing {
                candidate: ord as usize,
                same,
            })
            .collect();
        let rows = append::recordable(events, &plan, &existing, described)?;
        insert_messages(&mut tx, &rows, received_at_ms).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("events", "committing a batch"))?;
        Ok(append::finish(events, plan, existing, base))
    }

    async fn record(&self, accounts: &[NewAccount]) -> Result<Vec<AccountOutcome>, StoreError> {
        let now = now_ms();
        let (mut tx, mut last) = self.begin_sequenced("accounts").await?;
        let mut out = Vec::with_capacity(accounts.len());
        for a in accounts {
            let latest: Option<(i64, String)> = sqlx::query_as(
                "SELECT a.seq, e.raw FROM accounts a JOIN events e ON e.seq = a.seq \
                 WHERE a.waba = $1 ORDER BY a.seq DESC LIMIT 1",
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
            last += 1;
            let doing = format!("recording account '{}'", a.waba);
            sqlx::query(
                "INSERT INTO events (seq, kind, id, status, at_ms, waba, raw, received_at_ms) \
                 VALUES ($1, 'account', $2, '', $3, $2, $4, $3)",
            )
            .bind(seq_to_db(last))
            .bind(a.waba.as_str())
            .bind(now)
            .bind(a.raw.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("events", doing.clone()))?;
            sqlx::query(
                "INSERT INTO accounts (seq, waba, portfolio, timezone, currency) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(seq_to_db(last))
            .bind(a.waba.as_str())
            .bind(a.portfolio.as_str())
            .bind(a.timezone.as_str())
            .bind(a.currency.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("accounts", doing))?;
            out.push(AccountOutcome {
                seq: last,
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
            "WHERE waba = ANY($1)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN events e ON e.seq = a.seq \
             WHERE a.seq IN (SELECT max(seq) FROM accounts {filter} GROUP BY waba) ORDER BY a.waba"
        );
        let mut q = sqlx::query(&sql);
        if let Some(w) = wabas {
            q = q.bind(w);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("accounts", "reading the latest accounts"))?;
        rows.iter().map(decode::account).collect()
    }

    async fn history(&self, waba: &str) -> Result<Vec<AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN events e ON e.seq = a.seq \
             WHERE a.waba = $1 ORDER BY a.seq"
        );
        let rows = sqlx::query(&sql)
            .bind(waba)
            .fetch_all(&self.pool)
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
        let sql = format!(
            "WITH msgs AS (SELECT * FROM events WHERE waba = ANY($1) AND at_ms >= $2 AND at_ms < $3 \
                           AND kind IN ('inbound', 'outbound')) \
             SELECT {EVENT_COLUMNS} FROM msgs e \
             UNION ALL \
             SELECT {EVENT_COLUMNS} FROM msgs o JOIN events e \
               ON e.id = o.id AND e.kind = 'status' AND e.kind <> 'account' WHERE o.kind = 'outbound' \
             UNION ALL \
             SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq IN \
               (SELECT max(seq) FROM accounts WHERE waba = ANY($1) GROUP BY waba) \
             ORDER BY 1"
        );
        let rows = sqlx::query(&sql)
            .bind(wabas)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "events",
                format!(
                    "loading events of {} WABAs in [{from_ms}, {to_ms})",
                    wabas.len()
                ),
            ))?;
        rows.iter().map(decode::event).collect()
    }

    async fn refs(&self, ids: &[String]) -> Result<Vec<OutboundRef>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT id, waba, at_ms FROM events WHERE kind = 'outbound' AND id = ANY($1) ORDER BY id")
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("events", format!("finding {} outbound messages", ids.len())))?;
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
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM unnest($1::text[], $2::bigint[]) AS m(id, seq) \
             JOIN events e ON e.id = m.id AND e.kind = 'status' AND e.kind <> 'account' \
               AND e.seq < m.seq \
             ORDER BY e.seq"
        );
        let ids: Vec<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
        let seqs: Vec<i64> = messages.iter().map(|(_, seq)| seq_to_db(*seq)).collect();
        let rows = sqlx::query(&sql)
            .bind(ids)
            .bind(seqs)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "events",
                format!(
                    "reading the earlier statuses of {} messages",
                    messages.len()
                ),
            ))?;
        rows.iter().map(decode::event).collect()
    }

    async fn since(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(seq_to_db(after_seq))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "events",
                format!("reading events after seq {after_seq}"),
            ))?;
        rows.iter().map(decode::event).collect()
    }

    async fn replace(
        &self,
        ids: &[String],
        rows: &[ChargeRow],
    ) -> Result<ReplaceOutcome, StoreError> {
        let gone = check_charge_ids(ids, rows)?;
        let n = rows.len();
        let mut c = ChargeColumns::with_capacity(n);
        for r in rows {
            c.push(r);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("charges", "starting a write transaction"))?;
        let removed = sqlx::query("DELETE FROM charges WHERE id = ANY($1)")
            .bind(&gone)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(
                "charges",
                format!("removing the charges of {} messages", gone.len()),
            ))?
            .rows_affected();
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "{}{}",
                "INSERT INTO charges (id, sent_at_ms, waba, phone, user_phone, country, market, \
               pricing_model, category, pricing_type, billable, tier, rate, amount, currency, \
               billed_at_ms, conversation_id, agent) \
             SELECT id, sent_at_ms, waba, phone, user_phone, country, market, pricing_model, \
               category, pricing_type, billable, tier, rate::numeric, amount::numeric, currency, \
               billed_at_ms, conversation_id, agent \
             FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[], \
               $13::text[], $14::text[], $15::text[], $16::int8[], $17::text[], \
               $18::text[]) \
             AS u(id, sent_at_ms, waba, phone, user_phone, country, market, pricing_model, \
               category, pricing_type, billable, tier, rate, amount, currency, billed_at_ms, \
               conversation_id, agent)",
                crate::common::charge_upsert_clause("IS DISTINCT FROM")
            )
        });
        let written = sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.sent_at_ms)
            .bind(&c.waba)
            .bind(&c.phone)
            .bind(&c.user)
            .bind(&c.country)
            .bind(&c.market)
            .bind(&c.pricing_model)
            .bind(&c.category)
            .bind(&c.pricing_type)
            .bind(&c.billable)
            .bind(&c.tier)
            .bind(&c.rate)
            .bind(&c.amount)
            .bind(&c.currency)
            .bind(&c.billed_at_ms)
            .bind(&c.conversation_id)
            .bind(&c.agent)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("charges", format!("writing {n} charges")))?
            .rows_affected();
        tx.commit()
            .await
            .map_err(StoreError::db("charges", "committing a replacement"))?;
        Ok(ReplaceOutcome { removed, written })
    }

    async fn read_charges(&self, f: &ChargeFilter) -> Result<Vec<ChargeRow>, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(CHARGE_SELECT);
        if let Some(w) = &f.waba {
            qb.push(" AND waba = ").push_bind(w.as_str());
        }
        if let Some(ws) = &f.wabas {
            qb.push(" AND waba = ANY(")
                .push_bind(ws.as_slice())
                .push(")");
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
            .push_bind(i64::from(f.limit));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("charges", "reading charges"))?;
        rows.iter().map(decode::charge).collect()
    }

    async fn new_key(&self, key: &NewApiKey) -> Result<ApiKeyRow, StoreError> {
        check_key(key)?;
        let doing = format!("creating key '{}'", key.name);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("api_keys", doing.clone()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (name, role, key_hash, created_at_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(key.name.as_str())
        .bind(key.role.as_str())
        .bind(&key.key_hash[..])
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("api_keys", doing.clone()))?;
        sqlx::query(
            "INSERT INTO api_key_wabas (key_id, waba) SELECT $1, w FROM UNNEST($2::text[]) AS w \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&key.tenant_wabas)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("api_key_wabas", doing.clone()))?;
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
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("api_keys", "looking a key up"))?;
        Ok(keys_where(&mut conn, KeyWhere::ActiveHash(key_hash))
            .await?
            .into_iter()
            .next())
    }

    async fn all_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("api_keys", "listing keys"))?;
        keys_where(&mut conn, KeyWhere::All).await
    }

    async fn revoke(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("api_keys", format!("revoking key {id}")))?;
        Ok(done.rows_affected() == 1)
    }
}

/// A batch of charges as one array per column, for `UNNEST`.
struct ChargeColumns<'a> {
    id: Vec<&'a str>,
    sent_at_ms: Vec<i64>,
    waba: Vec<&'a str>,
    phone: Vec<&'a str>,
    user: Vec<&'a str>,
    country: Vec<&'a str>,
    market: Vec<&'a str>,
    pricing_model: Vec<&'a str>,
    category: Vec<&'a str>,
    pricing_type: Vec<&'a str>,
    billable: Vec<bool>,
    tier: Vec<Option<&'a str>>,
    rate: Vec<Option<String>>,
    amount: Vec<String>,
    currency: Vec<&'a str>,
    billed_at_ms: Vec<Option<i64>>,
    conversation_id: Vec<Option<&'a str>>,
    agent: Vec<Option<&'a str>>,
}

impl<'a> ChargeColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        ChargeColumns {
            id: Vec::with_capacity(n),
            sent_at_ms: Vec::with_capacity(n),
            waba: Vec::with_capacity(n),
            phone: Vec::with_capacity(n),
            user: Vec::with_capacity(n),
            country: Vec::with_capacity(n),
            market: Vec::with_capacity(n),
            pricing_model: Vec::with_capacity(n),
            category: Vec::with_capacity(n),
            pricing_type: Vec::with_capacity(n),
            billable: Vec::with_capacity(n),
            tier: Vec::with_capacity(n),
            rate: Vec::with_capacity(n),
            amount: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            billed_at_ms: Vec::with_capacity(n),
            conversation_id: Vec::with_capacity(n),
            agent: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, r: &'a ChargeRow) {
        self.id.push(&r.id);
        self.sent_at_ms.push(r.sent_at_ms);
        self.waba.push(&r.waba);
        self.phone.push(&r.phone);
        self.user.push(&r.user);
        self.country.push(&r.country);
        self.market.push(&r.market);
        self.pricing_model.push(&r.pricing_model);
        self.category.push(&r.category);
        self.pricing_type.push(&r.pricing_type);
        self.billable.push(r.billable);
        self.tier.push(r.tier.as_deref());
        self.rate.push(r.rate.map(|d| d.to_string()));
        self.amount.push(r.amount.to_string());
        self.currency.push(&r.currency);
        self.billed_at_ms.push(r.billed_at_ms);
        self.conversation_id.push(r.conversation_id.as_deref());
        self.agent.push(r.agent.as_deref());
    }
}

/// Keys (with their WABAs) matching a condition, by id.
async fn keys_where(
    conn: &mut PgConnection,
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

/// Meta pricing rows per INSERT statement (11 parameters each, under PostgreSQL's 65,535).
const META_ROWS_PER_INSERT: usize = 1000;

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

/// Inserts descriptions of messages in a transaction; a (message id, status) already
/// described keeps its first row. Returns how many were new.
async fn insert_messages(
    tx: &mut PgConnection,
    rows: &[&MetaMessageRow],
    received_at_ms: i64,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in rows.chunks(MESSAGE_ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
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

impl PgStore {
    async fn load_pair(
        &self,
        phone: &str,
        user: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "WITH msgs AS (SELECT * FROM events WHERE phone IS NOT NULL AND phone = $1 \
               AND user_phone = $2 AND at_ms >= $3 AND at_ms < $4 \
               AND kind IN ('inbound', 'outbound')) \
             SELECT {EVENT_COLUMNS} FROM msgs e \
             UNION ALL \
             SELECT {EVENT_COLUMNS} FROM msgs o JOIN events e \
               ON e.id = o.id AND e.kind = 'status' AND e.kind <> 'account' WHERE o.kind = 'outbound' \
             UNION ALL \
             SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq IN \
               (SELECT max(seq) FROM accounts WHERE waba IN (SELECT waba FROM msgs) GROUP BY waba) \
             ORDER BY 1"
        );
        let rows = sqlx::query(&sql)
            .bind(phone)
            .bind(user)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "events",
                format!("loading the events of pair ({phone}, {user}) in [{from_ms}, {to_ms})"),
            ))?;
        rows.iter().map(decode::event).collect()
    }

    async fn count(&self, q: &ChargeCount) -> Result<u64, StoreError> {
        if q.ranges.is_empty() || q.categories.is_empty() || q.pricing_types.is_empty() {
            return Ok(0);
        }
        let mut qb: QueryBuilder<Postgres> =
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
            .push(" AND category = ANY(")
            .push_bind(q.categories.as_slice())
            .push(") AND pricing_type = ANY(")
            .push_bind(q.pricing_types.as_slice())
            .push(")");
        if let Some(p) = &q.phone {
            qb.push(" AND phone = ").push_bind(p.as_str());
        }
        if let Some(m) = &q.market {
            qb.push(" AND market = ").push_bind(m.as_str());
        }
        if q.openers_only {
            // `id` is COLLATE "C"; say which collation compares the two.
            qb.push(" AND conversation_id COLLATE \"C\" = id");
        }
        if !q.exclude_ids.is_empty() {
            qb.push(" AND id <> ALL(")
                .push_bind(q.exclude_ids.as_slice())
                .push(")");
        }
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("charges", "counting charges"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn by_id(&self, ids: &[String]) -> Result<Vec<ChargeRow>, StoreError> {
        let sql = format!("{CHARGE_SELECT} AND id = ANY($1) ORDER BY sent_at_ms, id");
        let rows = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "charges",
                format!("reading the charges of {} messages", ids.len()),
            ))?;
        rows.iter().map(decode::charge).collect()
    }

    async fn read_usage(
        &self,
        waba: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT billed_at_ms / $4 AS slot, phone, country, category, pricing_type, tier, \
               amount::text, currency, count(*) FROM charges \
             WHERE waba = $1 AND billed_at_ms IS NOT NULL AND billed_at_ms >= $2 AND billed_at_ms < $3 \
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
        )
        .bind(waba)
        .bind(from_ms)
        .bind(to_ms)
        .bind(USAGE_SLOT_MS)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(
            "charges",
            format!("summing the usage of '{waba}' in [{from_ms}, {to_ms})"),
        ))?;
        rows.iter().map(decode::usage).collect()
    }

    async fn record_meta(&self, rows: &[MetaPricingRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let received_at_ms = now_ms();
        let mut tx = self.pool.begin().await.map_err(StoreError::db(
            "meta_pricing",
            "starting a write transaction",
        ))?;
        let mut inserted = 0;
        for chunk in rows.chunks(META_ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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
            qb.push(" ON CONFLICT (id, status) DO NOTHING");
            inserted += qb
                .build()
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
        let sql = format!(
            "SELECT {META_PRICING_COLUMNS} FROM meta_pricing WHERE id = ANY($1) ORDER BY id, status"
        );
        let rows = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "meta_pricing",
                format!("reading Meta's pricing of {} messages", ids.len()),
            ))?;
        rows.iter().map(decode::meta_pricing).collect()
    }

    async fn meta_in(
        &self,
        waba: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MetaPricingRow>, StoreError> {
        let sql = format!(
            "SELECT {META_PRICING_COLUMNS} FROM meta_pricing \
             WHERE waba IS NOT NULL AND waba = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY id, status"
        );
        let rows = sqlx::query(&sql)
            .bind(waba)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "meta_pricing",
                format!("reading Meta's pricing of '{waba}' in [{from_ms}, {to_ms})"),
            ))?;
        rows.iter().map(decode::meta_pricing).collect()
    }

    async fn record_messages(&self, rows: &[MetaMessageRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::db(
            "meta_messages",
            "starting a write transaction",
        ))?;
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
            "SELECT {MESSAGE_COLUMNS} FROM meta_messages WHERE id = ANY($1) ORDER BY id, status"
        );
        let rows: Vec<MessageColumns> = sqlx::query_as(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
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
             WHERE waba = ANY($1) AND at_ms >= $2 AND at_ms < $3 ORDER BY id, status"
        );
        let rows: Vec<MessageColumns> = sqlx::query_as(&sql)
            .bind(wabas)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
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
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("engine_state", "reading rated_seq"))?;
        Ok(v.map_or(0, seq_from_db))
    }

    async fn put_rated_seq(&self, seq: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO engine_state (name, value) VALUES ('rated_seq', $1) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value \
             WHERE engine_state.value < excluded.value",
        )
        .bind(seq_to_db(seq))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(
            "engine_state",
            format!("raising rated_seq to {seq}"),
        ))?;
        Ok(())
    }
}

impl PgStore {
    async fn put_tenant_impl(&self, t: &NewTenant) -> Result<TenantOutcome, StoreError> {
        if t.tenant.is_empty() || t.wabas.iter().any(|w| w.is_empty()) {
            return Err(StoreError::Invalid {
                table: "tenant_setups",
                why: format!("tenant '{}': empty tenant id or WABA", t.tenant),
            });
        }
        let doing = format!("recording tenant '{}'", t.tenant);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("tenant_setups", "starting a transaction"))?;
        // Tenant writes are rare: one at a time keeps the version check and the WABA index
        // consistent.
        sqlx::query("LOCK TABLE tenant_setups IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("tenant_setups", "locking"))?;
        let newest: Option<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
             WHERE tenant = $1 ORDER BY version DESC LIMIT 1",
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
                "SELECT tenant FROM tenant_wabas WHERE waba = $1 AND tenant <> $2",
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
            "INSERT INTO tenant_setups (tenant, setup, recorded_at_ms) VALUES ($1, $2, $3) \
             RETURNING version",
        )
        .bind(t.tenant.as_str())
        .bind(t.setup.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("tenant_setups", doing.clone()))?;
        sqlx::query("DELETE FROM tenant_wabas WHERE tenant = $1")
            .bind(t.tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("tenant_wabas", doing.clone()))?;
        for w in &t.wabas {
            sqlx::query(
                "INSERT INTO tenant_wabas (waba, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING",
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
                 WHERE tenant = $1 ORDER BY version DESC LIMIT 1"
            }
            (true, false) => {
                "SELECT version, tenant, setup, recorded_at_ms FROM tenant_setups \
                 WHERE tenant = $1 ORDER BY version"
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
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("tenant_setups", "reading tenant set-ups"))?;
        Ok(rows.into_iter().map(tenant_row).collect())
    }

    async fn owner_of(&self, waba: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT tenant FROM tenant_wabas WHERE waba = $1")
            .bind(waba)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(
                "tenant_wabas",
                format!("finding the tenant of '{waba}'"),
            ))
    }

    async fn store_invoice(&self, inv: &InvoiceRow) -> Result<bool, StoreError> {
        let doing = format!("finalizing {} {}", inv.tenant, inv.month);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("tenant_invoices", "starting a transaction"))?;
        let done = sqlx::query(
            "INSERT INTO tenant_invoices (tenant, month, invoice, finalized_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, month) DO NOTHING",
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
             WHERE tenant = $1 ORDER BY month",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
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

impl PgStore {
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
                "SELECT (SELECT min(at_ms) FROM events WHERE waba IS NOT NULL AND waba = $1 \
                         AND kind IN ('inbound', 'outbound')), \
                        (SELECT max(at_ms) FROM events WHERE waba IS NOT NULL AND waba = $1 \
                         AND kind IN ('inbound', 'outbound')), \
                        (SELECT min(start_ms) FROM call_events WHERE waba = $1), \
                        (SELECT max(start_ms) FROM call_events WHERE waba = $1)",
            )
            .bind(waba)
            .fetch_one(&self.pool)
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
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("events", "reading the last seq"))?;
        Ok(seq_from_db(v))
    }

    async fn probe(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("health", "querying the database"))?;
        Ok(())
    }

    async fn shut(&self) -> Result<(), StoreError> {
        self.pool.close().await;
        Ok(())
    }
}

crate::store::forward_store!(PgStore, Backend::Postgres);

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

impl PgStore {
    async fn record_audit_impl(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let doing = format!("recording the admin action {} on '{}'", e.action, e.target);
        sqlx::query("INSERT INTO audit_log (at_ms, actor, action, target) VALUES ($1, $2, $3, $4)")
            .bind(e.at_ms)
            .bind(e.actor.as_str())
            .bind(e.action.as_str())
            .bind(e.target.as_str())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("audit_log", doing))?;
        Ok(())
    }

    async fn audit_log_impl(&self, after_id: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, String, String, String)>(
            "SELECT id, at_ms, actor, action, target FROM audit_log WHERE id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("audit_log", "reading the audit log"))?;
        Ok(rows.into_iter().map(audit_row).collect())
    }

    async fn put_settings_impl(&self, s: &AlertSettingsRow) -> Result<(), StoreError> {
        let doing = format!("recording the alert settings of '{}'", s.tenant);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("alert_settings", "starting a transaction"))?;
        sqlx::query(
            "INSERT INTO alert_settings (tenant, thresholds, url, secret, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant) DO UPDATE SET \
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
             WHERE tenant = $1"
        } else {
            "SELECT tenant, thresholds, url, secret, updated_at_ms FROM alert_settings \
             ORDER BY tenant"
        };
        let mut q = sqlx::query_as::<_, (String, String, String, String, i64)>(sql);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("alert_settings", "reading alert settings"))?;
        Ok(rows.into_iter().map(settings_row).collect())
    }

    async fn record_alerts_impl(&self, alerts: &[NewAlert]) -> Result<u64, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("alerts", "starting a transaction"))?;
        let mut new = 0;
        for a in alerts {
            let done = sqlx::query(
                "INSERT INTO alerts (tenant, month, threshold, payload, created_at_ms, \
                 next_attempt_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
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
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant = $1 ORDER BY month, threshold"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
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
             AND next_attempt_at_ms <= $1 AND delivered_at_ms IS NULL \
             ORDER BY next_attempt_at_ms, tenant, month, threshold LIMIT $2"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("alerts", "reading the alerts due"))?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    async fn attempt_impl(&self, a: &AlertAttempt) -> Result<bool, StoreError> {
        let doing = format!(
            "recording an attempt of {} {} {}",
            a.tenant, a.month, a.threshold
        );
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("alerts", "starting a transaction"))?;
        let next = if a.delivered {
            None
        } else {
            a.next_attempt_at_ms
        };
        let delivered = a.delivered.then_some(a.at_ms);
        let done = sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, next_attempt_at_ms = $1, \
             delivered_at_ms = $2, last_error = $3 \
             WHERE tenant = $4 AND month = $5 AND threshold = $6 AND delivered_at_ms IS NULL",
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
