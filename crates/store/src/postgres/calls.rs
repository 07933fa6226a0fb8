//! Calls in PostgreSQL: call events, keyed by (WABA, call id, phase), and one charge row per
//! call (migration 0008). `ON CONFLICT DO NOTHING` waits for a concurrent insert of the same
//! key, so that two writers of one call event store it once.

use super::PgStore;
use crate::common::{now_ms, seq_from_db, seq_to_db};
use crate::decode::{self, CALL_EVENT_COLUMNS};
use crate::error::StoreError;
use crate::rows::{
    AppendResult, CallChargeFilter, CallChargeRow, CallScope, NewCallEvent, StoredCallEvent,
};
use sqlx::{Postgres, QueryBuilder};

impl PgStore {
    pub(crate) async fn append_calls_impl(
        &self,
        calls: &[NewCallEvent],
    ) -> Result<AppendResult, StoreError> {
        let mut out = AppendResult::default();
        if calls.is_empty() {
            return Ok(out);
        }
        let received_at_ms = now_ms();
        let mut tx = self.pool.begin().await.map_err(StoreError::db(
            "call_events",
            "starting a write transaction",
        ))?;
        for (i, c) in calls.iter().enumerate() {
            let doing = || format!("storing call event '{}' ({})", c.id, c.phase());
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO call_events (waba, id, phase, start_ms, raw, received_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (waba, id, phase) DO NOTHING \
                 RETURNING seq",
            )
            .bind(c.waba.as_str())
            .bind(c.id.as_str())
            .bind(c.phase())
            .bind(c.start_ms)
            .bind(c.raw.as_str())
            .bind(received_at_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("call_events", doing()))?;
            match seq {
                Some(seq) => {
                    out.inserted.push(seq_from_db(seq));
                    out.inserted_at.push(i);
                }
                None => {
                    let raw: String = sqlx::query_scalar(
                        "SELECT raw FROM call_events WHERE waba = $1 AND id = $2 AND phase = $3",
                    )
                    .bind(c.waba.as_str())
                    .bind(c.id.as_str())
                    .bind(c.phase())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db("call_events", doing()))?;
                    if raw == c.raw {
                        out.duplicates += 1;
                    } else {
                        out.conflicts.push((i, crate::common::call_conflict(c)));
                    }
                }
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::db("call_events", "committing call events"))?;
        Ok(out)
    }

    pub(crate) async fn calls_for_impl(
        &self,
        wabas: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredCallEvent>, StoreError> {
        let sql = format!(
            "SELECT {CALL_EVENT_COLUMNS} FROM call_events WHERE waba = ANY($1) AND (waba, id) IN \
             (SELECT waba, id FROM call_events WHERE waba = ANY($1) AND start_ms >= $2 AND \
             start_ms < $3) ORDER BY seq"
        );
        let rows = sqlx::query(&sql)
            .bind(wabas)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(
                "call_events",
                "reading the calls of a month",
            ))?;
        rows.iter().map(decode::call_event).collect()
    }

    pub(crate) async fn unrated_calls_impl(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT waba, start_ms FROM call_events WHERE NOT rated ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("call_events", "reading unrated call events"))
    }

    pub(crate) async fn replace_call_charges_impl(
        &self,
        scopes: &[CallScope],
        rows: &[CallChargeRow],
        rated: &[u64],
    ) -> Result<(), StoreError> {
        crate::common::check_call_rows(rows)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::db(
            "call_charges",
            "starting a write transaction",
        ))?;
        for s in scopes {
            sqlx::query(
                "DELETE FROM call_charges WHERE waba = $1 AND start_ms >= $2 AND start_ms < $3",
            )
            .bind(s.waba.as_str())
            .bind(s.from_ms)
            .bind(s.to_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(
                "call_charges",
                format!("removing the call charges of '{}'", s.waba),
            ))?;
        }
        for r in rows {
            sqlx::query(
                "INSERT INTO call_charges (waba, id, start_ms, phone, user_phone, user_id, \
                 country, market, direction, call_type, billable, seconds, pulses, tier_minutes, \
                 tier, rate, amount, currency, recording, transcription, agent, error) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::numeric, $15, \
                 $16::numeric, $17::numeric, $18, $19::numeric, $20::numeric, $21, $22) \
                 ON CONFLICT (waba, id) DO UPDATE SET start_ms = excluded.start_ms, \
                 phone = excluded.phone, user_phone = excluded.user_phone, \
                 user_id = excluded.user_id, country = excluded.country, \
                 market = excluded.market, direction = excluded.direction, \
                 call_type = excluded.call_type, billable = excluded.billable, \
                 seconds = excluded.seconds, pulses = excluded.pulses, \
                 tier_minutes = excluded.tier_minutes, tier = excluded.tier, \
                 rate = excluded.rate, amount = excluded.amount, currency = excluded.currency, \
                 recording = excluded.recording, transcription = excluded.transcription, \
                 agent = excluded.agent, error = excluded.error",
            )
            .bind(r.waba.as_str())
            .bind(r.id.as_str())
            .bind(r.start_ms)
            .bind(r.phone.as_str())
            .bind(r.user.as_deref())
            .bind(r.user_id.as_deref())
            .bind(r.country.as_deref())
            .bind(r.market.as_deref())
            .bind(r.direction.as_str())
            .bind(r.call_type.as_str())
            .bind(r.billable)
            .bind(seq_to_db(r.seconds))
            .bind(seq_to_db(r.pulses))
            .bind(r.tier_minutes.map(|d| d.to_string()))
            .bind(r.tier.as_deref())
            .bind(r.rate.map(|d| d.to_string()))
            .bind(r.amount.map(|d| d.to_string()))
            .bind(r.currency.as_str())
            .bind(r.recording.to_string())
            .bind(r.transcription.to_string())
            .bind(r.agent.as_deref())
            .bind(r.error.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(
                "call_charges",
                format!("writing the charge of call '{}'", r.id),
            ))?;
        }
        let seqs: Vec<i64> = rated.iter().map(|s| seq_to_db(*s)).collect();
        sqlx::query("UPDATE call_events SET rated = TRUE WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("call_events", "marking call events rated"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("call_charges", "committing call charges"))?;
        Ok(())
    }

    pub(crate) async fn call_charges_impl(
        &self,
        f: &CallChargeFilter,
    ) -> Result<Vec<CallChargeRow>, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {} FROM call_charges WHERE true",
            decode::call_charge_columns(true)
        ));
        if let Some(w) = &f.waba {
            qb.push(" AND waba = ").push_bind(w.as_str());
        }
        if let Some(ws) = &f.wabas {
            qb.push(" AND waba = ANY(")
                .push_bind(ws.as_slice())
                .push(")");
        }
        if let Some(from) = f.from_ms {
            qb.push(" AND start_ms >= ").push_bind(from);
        }
        if let Some(to) = f.to_ms {
            qb.push(" AND start_ms < ").push_bind(to);
        }
        if let Some(c) = &f.after {
            qb.push(" AND (start_ms, id, waba) > (")
                .push_bind(c.start_ms)
                .push(", ")
                .push_bind(c.id.as_str())
                .push(", ")
                .push_bind(c.waba.as_str())
                .push(")");
        }
        qb.push(" ORDER BY start_ms, id, waba LIMIT ")
            .push_bind(i64::from(f.limit));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("call_charges", "reading call charges"))?;
        rows.iter().map(decode::call_charge).collect()
    }
}
