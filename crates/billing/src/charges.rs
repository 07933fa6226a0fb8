//! Usage: the charge lines of `wabill rate` (docs/events.md, "Output: charges") or of the
//! service's stored charges, as billing reads them.
//!
//! Only what billing needs is read: `id`, `waba`, `category`, `market`, `amount`, `currency`,
//! `billed_at`; other fields are ignored. Two optional fields may be added by the platform:
//! `sent_at` (the send instant; stored charges have it) and `agent` (the agent who sent the
//! message). A charge's instant is `sent_at` when present, else `billed_at` (docs/decisions.md
//! D35).

use serde::Deserialize;
use wabill_rating::{Currency, Decimal, UnixMs};

/// One charge line of a tenant's usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageCharge {
    pub id: String,
    pub waba: String,
    pub category: String,
    pub market: String,
    /// Meta's exact cost, in `currency` (the WABA's).
    pub amount: Decimal,
    pub currency: Currency,
    pub sent_at: Option<UnixMs>,
    pub billed_at: Option<UnixMs>,
    pub agent: Option<String>,
}

impl UsageCharge {
    /// The instant that places the charge in a month: the send instant if known, else the
    /// delivery instant; `None` for an undelivered line of `wabill rate` output.
    pub fn instant(&self) -> Option<UnixMs> {
        self.sent_at.or(self.billed_at)
    }
}

/// A malformed charge line: its number (from 1), the field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: field '{field}': {why}")]
pub struct ChargeLineError {
    pub line: usize,
    pub field: String,
    pub why: String,
}

#[derive(Deserialize)]
struct RawCharge {
    id: Option<String>,
    waba: Option<String>,
    category: Option<String>,
    market: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    billed_at: Option<String>,
    #[serde(default)]
    sent_at: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// Parses charge lines (JSON Lines; blank lines are skipped). Every bad line is reported.
pub fn parse_charges(text: &str) -> Result<Vec<UsageCharge>, Vec<ChargeLineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(c) => out.push(c),
            Err((field, why)) => errors.push(ChargeLineError {
                line: i + 1,
                field,
                why,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn parse_line(line: &str) -> Result<UsageCharge, (String, String)> {
    let raw: RawCharge =
        serde_json::from_str(line).map_err(|e| ("(line)".to_string(), e.to_string()))?;
    fn need(v: Option<String>, field: &str) -> Result<String, (String, String)> {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| (field.to_string(), "missing".to_string()))
    }
    let amount = need(raw.amount, "amount")?;
    let amount: Decimal = amount
        .parse()
        .map_err(|e| ("amount".to_string(), format!("{e}")))?;
    if amount.nanos() < 0 {
        return Err(("amount".to_string(), "is negative".to_string()));
    }
    let currency = need(raw.currency, "currency")?;
    let currency = Currency::parse(&currency).ok_or_else(|| {
        (
            "currency".to_string(),
            format!("'{currency}' is not a currency code"),
        )
    })?;
    let instant = |v: Option<String>, field: &str| -> Result<Option<UnixMs>, (String, String)> {
        v.map(|s| parse_instant(&s).map_err(|why| (field.to_string(), why)))
            .transpose()
    };
    Ok(UsageCharge {
        id: need(raw.id, "id")?,
        waba: need(raw.waba, "waba")?,
        category: need(raw.category, "category")?,
        market: need(raw.market, "market")?,
        amount,
        currency,
        billed_at: instant(raw.billed_at, "billed_at")?,
        sent_at: instant(raw.sent_at, "sent_at")?,
        agent: raw.agent.filter(|a| !a.is_empty()),
    })
}

/// RFC 3339 with an offset, as `wabill rate` writes instants.
pub fn parse_instant(s: &str) -> Result<UnixMs, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("'{s}' is not an RFC 3339 time with an offset (2026-02-01T10:00:00Z)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rate_output_and_extra_fields() {
        let text = concat!(
            r#"{"id":"m1","waba":"W1","phone":"1","user":"2","country":"BR","market":"Brazil","pricing_model":"PMP","category":"marketing","type":"regular","billable":true,"tier":null,"rate":"0.0625","amount":"0.0625","currency":"USD","billed_at":"2026-02-01T10:00:02Z","conversation_id":null}"#,
            "\n\n",
            r#"{"id":"m2","waba":"W1","market":"Brazil","category":"service","amount":"0","currency":"USD","billed_at":null,"sent_at":"2026-02-01T09:00:00-03:00","agent":"a1"}"#,
            "\n"
        );
        let c = parse_charges(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].instant(), Some(1_769_940_002_000));
        assert_eq!(c[1].instant(), Some(1_769_947_200_000));
        assert_eq!(c[1].agent.as_deref(), Some("a1"));
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "{\"id\":\"m1\"}\nnot json\n";
        let e = parse_charges(text).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].to_string(), "line 1: field 'amount': missing");
        assert_eq!(e[1].line, 2);
    }
}
