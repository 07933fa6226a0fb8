//! Usage: the charge lines of `wabill rate` (docs/events.md, "Output: charges") or of the
//! service's stored charges, as billing reads them.
//!
//! Only what billing needs is read: `id`, `waba`, `category`, `market`, `amount`, `currency`,
//! `billed_at`; other fields are ignored. Two optional fields may be added by the platform:
//! `sent_at` (the send instant; stored charges have it) and `agent` (the agent who sent the
//! message). A charge's instant is `sent_at` when present, else `billed_at` (docs/decisions.md
//! D35).
//!
//! Call lines (`"unit":"call"`, docs/events.md "Call charges") are read too: `id`, `waba`,
//! `market`, `amount`, `currency`, `start` (the call's instant), `pulses` and `agent`. A
//! call's billed minutes are its pulses / 10 (a pulse is 6 seconds; docs/decisions.md D135).

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
    /// Set on a call (`category` is then `call`); `None` on a message.
    pub call: Option<CallUsage>,
}

/// What a call line adds to a charge: the started 6-second pulses billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallUsage {
    pub pulses: u64,
}

impl CallUsage {
    /// Billed minutes: pulses × 6 s / 60 s, exactly.
    pub fn minutes(self) -> Decimal {
        Decimal::from_nanos(self.pulses as i128 * 100_000_000)
    }
}

/// The category of a call's charge.
pub const CALL_CATEGORY: &str = "call";

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
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    pulses: Option<u64>,
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
    let call = match raw.unit.as_deref() {
        None | Some("message") => false,
        Some("call") => true,
        Some(other) => {
            return Err((
                "unit".to_string(),
                format!("'{other}' is not a unit (message or call)"),
            ))
        }
    };
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
    if call {
        let pulses = raw
            .pulses
            .ok_or_else(|| ("pulses".to_string(), "missing".to_string()))?;
        let start = need(raw.start, "start")?;
        let start = parse_instant(&start).map_err(|why| ("start".to_string(), why))?;
        let market = raw.market.filter(|m| !m.is_empty());
        if market.is_none() && !amount.is_zero() {
            return Err((
                "market".to_string(),
                "missing on a charged call".to_string(),
            ));
        }
        return Ok(UsageCharge {
            id: need(raw.id, "id")?,
            waba: need(raw.waba, "waba")?,
            category: CALL_CATEGORY.to_string(),
            market: market.unwrap_or_default(),
            amount,
            currency,
            sent_at: Some(start),
            billed_at: None,
            agent: raw.agent.filter(|a| !a.is_empty()),
            call: Some(CallUsage { pulses }),
        });
    }
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
        call: None,
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
    fn reads_call_lines() {
        let text = concat!(
            r#"{"id":"wacid.1","unit":"call","waba":"W1","phone":"1","user":"2","country":"BR","market":"Brazil","direction":"business_initiated","type":"regular","billable":true,"seconds":56,"pulses":10,"tier_minutes":"1","tier":"0:50000","rate":"0.0100","amount":"0.01","currency":"USD","start":"2026-11-03T10:00:00Z","recording":"0","transcription":"0","agent":"a1"}"#,
            "\n",
            r#"{"id":"wacid.2","unit":"call","waba":"W1","phone":"1","user":null,"user_id":"BR.1","country":null,"market":null,"direction":"user_initiated","type":"free_user_initiated","billable":false,"seconds":30,"pulses":5,"tier_minutes":null,"tier":null,"rate":null,"amount":"0","currency":"USD","start":"2026-11-03T11:00:00Z","recording":"0","transcription":"0"}"#,
            "\n"
        );
        let c = parse_charges(text).unwrap();
        assert_eq!(c[0].category, CALL_CATEGORY);
        assert_eq!(c[0].instant(), Some(1_793_700_000_000));
        assert_eq!(c[0].call.unwrap().minutes().to_string(), "1");
        assert_eq!(c[0].agent.as_deref(), Some("a1"));
        assert_eq!(c[1].market, "");
        assert_eq!(CallUsage { pulses: 7 }.minutes().to_string(), "0.7");
        let bad = r#"{"id":"wacid.3","unit":"call","waba":"W1","market":null,"amount":"0.01","currency":"USD","pulses":1,"start":"2026-11-03T10:00:00Z"}"#;
        assert_eq!(
            parse_charges(bad).unwrap_err()[0].to_string(),
            "line 1: field 'market': missing on a charged call"
        );
        let bad = r#"{"id":"wacid.3","unit":"sms","waba":"W1","amount":"0","currency":"USD"}"#;
        assert_eq!(parse_charges(bad).unwrap_err()[0].field, "unit");
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
